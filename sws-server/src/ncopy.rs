//! N-copy mode: `--workers N` independent single-worker servers (child processes of this
//! binary) sharing one port with SO_REUSEPORT, the upper bound of both papers.
//!
//! The parent:
//! 1. resolves the port: with port 0 it binds (without listening) an SO_REUSEPORT socket to
//!    learn a free port and holds it until every child listens, so no other program can take
//!    the port in between; a bound socket that does not listen receives no connections;
//! 2. re-executes itself N times with the hidden `--ncopy-child I` flag (child I pins itself
//!    to the I-th allowed CPU and writes its statistics to a private file) and waits for each
//!    child's `listening` line;
//! 3. prints its own `sws-server listening on ADDR` line and waits for SIGINT/SIGTERM (or a
//!    child dying), forwards SIGTERM to every child, waits for them (SIGKILL after
//!    `CHILD_EXIT_TIMEOUT` (10 s)), and sums their statistics into `--stats-json`.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use signal_hook::consts::{SIGCHLD, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::cli::Cli;
use crate::run::write_json;
use crate::stats::merge_children;

/// How long a child may take to start listening.
const CHILD_START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long children get to exit after SIGTERM before SIGKILL.
const CHILD_EXIT_TIMEOUT: Duration = Duration::from_secs(10);

struct Children {
    procs: Vec<Child>,
    /// `reaped[i]`: child i was waited for; its pid must not be signalled any more.
    reaped: Vec<bool>,
}

impl Children {
    fn push(&mut self, c: Child) {
        self.procs.push(c);
        self.reaped.push(false);
    }

    fn signal_all(&self, sig: i32) {
        for (c, _) in self.procs.iter().zip(&self.reaped).filter(|(_, &r)| !r) {
            // SAFETY: kill(2) has no memory-safety preconditions. The pid is one we spawned
            // and have not reaped, so it cannot name another process (an exited child stays
            // a zombie until reaped, and signalling a zombie does nothing).
            unsafe {
                libc::kill(c.id() as libc::pid_t, sig);
            }
        }
    }

    /// Reaps child `i` if it exited.
    fn poll(&mut self, i: usize) -> Option<std::process::ExitStatus> {
        match self.procs[i].try_wait() {
            Ok(Some(st)) => {
                self.reaped[i] = true;
                Some(st)
            }
            _ => None,
        }
    }

    /// Waits for every child, SIGKILL past the deadline. Returns how many exited non-zero.
    fn wait_all(&mut self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut failed = 0;
        for i in 0..self.procs.len() {
            if self.reaped[i] {
                continue;
            }
            loop {
                if let Some(st) = self.poll(i) {
                    failed += usize::from(!st.success());
                    break;
                }
                if Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                } else {
                    let _ = self.procs[i].kill();
                    let _ = self.procs[i].wait();
                    self.reaped[i] = true;
                    failed += 1;
                    break;
                }
            }
        }
        failed
    }

    /// True when some child has exited (it is reaped).
    fn any_exited(&mut self) -> bool {
        (0..self.procs.len()).any(|i| !self.reaped[i] && self.poll(i).is_some())
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        // On an error path: do not leave children behind.
        self.signal_all(libc::SIGTERM);
        self.wait_all(CHILD_EXIT_TIMEOUT);
    }
}

/// Runs the N-copy parent until SIGINT/SIGTERM.
pub fn run_parent(cli: &Cli) -> anyhow::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGCHLD])?;
    let started = Instant::now();
    // 1. The port.
    let placeholder = reserve_port(cli.listen)?;
    let addr = placeholder
        .local_addr()?
        .as_socket()
        .ok_or_else(|| anyhow::anyhow!("not an inet address"))?;

    let stats_dir = std::env::temp_dir().join(format!("sws-ncopy-{}", std::process::id()));
    std::fs::create_dir_all(&stats_dir)?;
    let exe = std::env::current_exe()?;
    let n = cli.workers;
    // The client limit is split between the children (each enforces its share).
    let per_child_max = cli.max_clients.div_ceil(n).max(1);

    // 2. The children.
    let mut children = Children {
        procs: Vec::with_capacity(n),
        reaped: Vec::with_capacity(n),
    };
    let (tx, rx) = mpsc::channel::<(usize, Option<String>)>();
    for i in 0..n {
        let mut cmd = Command::new(&exe);
        cmd.arg("--root")
            .arg(&cli.root)
            .args(["--listen", &addr.to_string(), "--workers", "1"])
            .args([
                "--runtime",
                &cli.runtime.to_string(),
                "--stealing",
                &cli.stealing.to_string(),
                "--steal-amount",
                &cli.steal_amount.to_string(),
            ])
            .args([
                "--mode",
                "ncopy",
                "--max-clients",
                &per_child_max.to_string(),
            ])
            .args([
                "--idle-timeout-ms",
                &cli.idle_timeout_ms.to_string(),
                "--conn-penalty",
                &cli.conn_penalty.to_string(),
                "--ncopy-child",
                &i.to_string(),
            ])
            .arg("--stats-json")
            .arg(stats_dir.join(format!("child-{i}.json")))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn()?;
        let stdout = child.stdout.take().expect("piped stdout");
        children.push(child);
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            let mut r = BufReader::new(stdout);
            let ok = r.read_line(&mut line).map(|n| n > 0).unwrap_or(false);
            let _ = tx.send((i, ok.then_some(line)));
            // Keep draining so a chatty child never blocks on a full pipe.
            let mut sink = String::new();
            while r.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                sink.clear();
            }
        });
    }
    drop(tx);
    let deadline = Instant::now() + CHILD_START_TIMEOUT;
    for _ in 0..n {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((_, Some(line))) if line.contains("listening on") => {}
            Ok((i, other)) => anyhow::bail!("ncopy child {i} failed to start: {other:?}"),
            Err(_) => anyhow::bail!("ncopy children did not start within {CHILD_START_TIMEOUT:?}"),
        }
    }
    drop(placeholder);

    // 3. Serve until a signal.
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "sws-server listening on {addr} (ncopy, {n} processes)")?;
        out.flush()?;
    }
    let mut child_died = false;
    for sig in signals.forever() {
        if sig == SIGCHLD {
            if children.any_exited() {
                child_died = true;
                break;
            }
            continue;
        }
        break;
    }
    children.signal_all(libc::SIGTERM);
    let failed = children.wait_all(CHILD_EXIT_TIMEOUT);
    let elapsed = started.elapsed().as_secs_f64();

    if let Some(path) = &cli.stats_json {
        let mut docs = Vec::new();
        for i in 0..n {
            let p = stats_dir.join(format!("child-{i}.json"));
            match std::fs::read(&p)
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            {
                Some(v) => docs.push(v),
                None => eprintln!("sws: ncopy child {i} wrote no statistics"),
            }
        }
        let mut merged = merge_children(&docs);
        merged["mode"] = Value::from("ncopy");
        merged["workers"] = Value::from(n);
        merged["max_clients"] = Value::from(cli.max_clients);
        merged["listen"] = Value::from(addr.to_string());
        merged["elapsed_secs"] = Value::from(elapsed);
        write_json(path, &merged)?;
    }
    let _ = std::fs::remove_dir_all(&stats_dir);
    anyhow::ensure!(!child_died, "an ncopy child exited unexpectedly");
    anyhow::ensure!(failed == 0, "{failed} ncopy children did not exit cleanly");
    Ok(())
}

/// Binds (without listening) an SO_REUSEPORT socket to `addr`, fixing the port.
fn reserve_port(addr: SocketAddr) -> anyhow::Result<socket2::Socket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    sock.set_reuse_port(true)?;
    sock.bind(&addr.into())
        .map_err(|e| anyhow::anyhow!("bind {addr}: {e}"))?;
    Ok(sock)
}
