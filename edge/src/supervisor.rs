//! The N-copy parent: N single-worker server processes sharing one port with
//! `SO_REUSEPORT`, the upper bound of both papers, supervised by one process.
//!
//! [`Supervisor::start`]:
//! 1. hooks SIGINT, SIGTERM and SIGCHLD first, so a signal during start-up is not lost;
//! 2. reserves the port with [`crate::listener::reserve`] (bound, never listening: it fixes
//!    the port, port 0 included, and receives no connections), held until every child
//!    listens so no other program can take the port in between;
//! 3. starts the children the caller's closure builds, each told its index, the address and
//!    a private statistics file; their stdin is closed, their stdout read (each must print a
//!    line containing `listening on` within [`CHILD_START_TIMEOUT`], and the rest is drained
//!    so a chatty child never blocks), stderr is inherited; each child gets SIGKILL should
//!    the supervisor die first (`PR_SET_PDEATHSIG`; call `start` from the main thread, since
//!    the signal follows the thread that spawned the child).
//!
//! A SIGINT or SIGTERM during start-up stops it between two children: no further child is
//! started, the ones started get SIGKILL and are reaped, and `start` returns [`Interrupted`]
//! (the signal is looked at before every spawn and every few milliseconds while the children
//! come up, so the whole group is gone well within a second whatever the count).
//!
//! [`Supervisor::wait`] returns on SIGINT/SIGTERM or when a child exits;
//! [`Supervisor::stop`] forwards SIGTERM to every child, waits for them (SIGKILL after
//! [`CHILD_EXIT_TIMEOUT`], or at once on a second SIGINT/SIGTERM) and reads their statistics
//! files back. Children are polled together, so the wait is that of the slowest child, not
//! the sum.
//!
//! Invariant: a child's pid is signalled only while it is unreaped (`reaped[i]` is false), so
//! a signal can never reach a recycled pid.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::Value;
use signal_hook::consts::{SIGCHLD, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// How long a child may take to start listening.
pub const CHILD_START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long children get to exit after SIGTERM before SIGKILL.
pub const CHILD_EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the supervisor looks at its children and its signals while it waits.
const REAP_POLL: Duration = Duration::from_millis(5);
/// What a child prints on stdout once it accepts connections.
pub const LISTENING: &str = "listening on";

/// What the caller's closure gets to build child `index`'s command.
#[derive(Clone, Copy, Debug)]
pub struct ChildSlot<'a> {
    /// 0 to N-1; pin the child to the `index`-th allowed CPU with
    /// [`crate::cpu::pin_process_to`].
    pub index: usize,
    /// The reserved address: the child listens on it with `SO_REUSEPORT`.
    pub addr: SocketAddr,
    /// Where the child writes its `--stats-json` document.
    pub stats_file: &'a Path,
}

/// Why [`Supervisor::wait`] returned.
#[derive(Debug)]
pub enum Stop {
    /// SIGINT or SIGTERM.
    Signal(i32),
    /// A child exited on its own (it is reaped).
    ChildExited {
        /// Its index.
        index: usize,
        /// How it ended.
        status: ExitStatus,
    },
}

/// [`Supervisor::start`] was stopped by SIGINT or SIGTERM before every child listened; the
/// children it had started are killed and reaped before this error is returned.
#[derive(Debug)]
pub struct Interrupted {
    /// The signal.
    pub signal: i32,
    /// Children started when it arrived.
    pub started: usize,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stopped by signal {} while starting the N-copy children ({} started, all killed)",
            self.signal, self.started
        )
    }
}

impl std::error::Error for Interrupted {}

/// The end of an N-copy run.
#[derive(Debug)]
pub struct Finished {
    /// Children that exited non-zero, were killed, or exited before being asked to.
    pub failed: usize,
    /// A child exited before it was asked to.
    pub child_died: bool,
    /// Each child's statistics document, `None` when it wrote none.
    pub stats: Vec<Option<Value>>,
    /// From [`Supervisor::start`] to the last child's exit.
    pub elapsed: Duration,
    /// The address the children listened on.
    pub addr: SocketAddr,
}

impl Finished {
    /// The children's statistics summed ([`crate::stats_file::merge_children`]), with the
    /// parent's own `mode` (`ncopy`), `listen`, `elapsed_secs` and the `fields` given.
    pub fn merged_stats(&self, fields: &[(&str, Value)]) -> Value {
        let docs: Vec<Value> = self.stats.iter().flatten().cloned().collect();
        let mut merged = crate::stats_file::merge_children(&docs);
        merged["mode"] = Value::from("ncopy");
        merged["listen"] = Value::from(self.addr.to_string());
        merged["elapsed_secs"] = Value::from(self.elapsed.as_secs_f64());
        for (k, v) in fields {
            merged[*k] = v.clone();
        }
        merged
    }

    /// The children that wrote no statistics.
    pub fn without_stats(&self) -> Vec<usize> {
        (0..self.stats.len())
            .filter(|&i| self.stats[i].is_none())
            .collect()
    }

    /// Ok when every child ran until asked to stop and then exited cleanly.
    pub fn outcome(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.child_died, "an N-copy child exited unexpectedly");
        anyhow::ensure!(
            self.failed == 0,
            "{} N-copy children did not exit cleanly",
            self.failed
        );
        Ok(())
    }
}

struct Children {
    procs: Vec<Child>,
    /// `reaped[i]`: child i was waited for; its pid must not be signalled any more.
    reaped: Vec<bool>,
}

impl Children {
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
    fn poll(&mut self, i: usize) -> Option<ExitStatus> {
        match self.procs[i].try_wait() {
            Ok(Some(st)) => {
                self.reaped[i] = true;
                Some(st)
            }
            _ => None,
        }
    }

    /// Waits for every child; past `timeout`, or as soon as `hurry` says so, the ones left
    /// get SIGKILL. Returns how many exited non-zero or were killed.
    fn wait_all(&mut self, timeout: Duration, mut hurry: impl FnMut() -> bool) -> usize {
        let deadline = Instant::now() + timeout;
        let mut failed = 0;
        loop {
            let mut left = 0;
            for i in 0..self.procs.len() {
                if self.reaped[i] {
                    continue;
                }
                match self.poll(i) {
                    Some(st) => failed += usize::from(!st.success()),
                    None => left += 1,
                }
            }
            if left == 0 {
                return failed;
            }
            if Instant::now() >= deadline || hurry() {
                return failed + self.kill_all();
            }
            std::thread::sleep(REAP_POLL);
        }
    }

    /// SIGKILL to every unreaped child, then reaps them. Returns how many there were.
    fn kill_all(&mut self) -> usize {
        self.signal_all(libc::SIGKILL);
        let mut killed = 0;
        for i in 0..self.procs.len() {
            if !self.reaped[i] {
                let _ = self.procs[i].wait();
                self.reaped[i] = true;
                killed += 1;
            }
        }
        killed
    }

    /// The first unreaped child that has exited (it is reaped now).
    fn exited(&mut self) -> Option<(usize, ExitStatus)> {
        (0..self.procs.len()).find_map(|i| {
            if self.reaped[i] {
                None
            } else {
                self.poll(i).map(|st| (i, st))
            }
        })
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        // On an error path (a failed or interrupted start-up): do not leave children behind.
        // They have not served anything yet, so there is nothing to wait for.
        self.kill_all();
    }
}

/// A running N-copy group.
pub struct Supervisor {
    addr: SocketAddr,
    children: Children,
    signals: Signals,
    stats_dir: PathBuf,
    stats_files: Vec<PathBuf>,
    started: Instant,
    /// A child exited before [`Supervisor::stop`] asked it to.
    child_died: bool,
}

impl Supervisor {
    /// Starts `copies` children on `listen` (see the module documentation); `command`
    /// builds child `slot.index`'s command line.
    pub fn start(
        listen: SocketAddr,
        copies: usize,
        mut command: impl FnMut(ChildSlot<'_>) -> Command,
    ) -> anyhow::Result<Supervisor> {
        let started = Instant::now();
        let signals = Signals::new([SIGINT, SIGTERM, SIGCHLD]).context("hooking signals")?;
        let reservation = crate::listener::reserve(listen).context("reserving the port")?;
        let addr = reservation
            .local_addr()?
            .as_socket()
            .context("the reserved address is not an inet address")?;
        let exe = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "server".into());
        // Private to this group: pid and a per-process sequence number.
        static GROUPS: AtomicUsize = AtomicUsize::new(0);
        let stats_dir = std::env::temp_dir().join(format!(
            "{exe}-ncopy-{}-{}",
            std::process::id(),
            GROUPS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&stats_dir)
            .with_context(|| format!("creating {}", stats_dir.display()))?;
        let mut sup = Supervisor {
            addr,
            children: Children {
                procs: Vec::with_capacity(copies),
                reaped: Vec::with_capacity(copies),
            },
            signals,
            stats_files: (0..copies)
                .map(|i| stats_dir.join(format!("child-{i}.json")))
                .collect(),
            stats_dir,
            started,
            child_died: false,
        };
        let (tx, rx) = mpsc::channel::<(usize, Option<String>)>();
        for index in 0..copies {
            // A stop asked for during start-up stops the spawning at once; the children
            // already started are killed and reaped when `sup` drops.
            sup.check_stop_signal()?;
            let mut cmd = command(ChildSlot {
                index,
                addr,
                stats_file: &sup.stats_files[index],
            });
            cmd.stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit());
            // SAFETY: the closure runs in the forked child before exec and only calls
            // prctl(2), which is async-signal-safe and touches no memory of ours.
            unsafe {
                use std::os::unix::process::CommandExt;
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            let mut child = cmd
                .spawn()
                .with_context(|| format!("starting N-copy child {index} of {copies}"))?;
            let stdout = child.stdout.take().context("child stdout")?;
            sup.children.procs.push(child);
            sup.children.reaped.push(false);
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(stdout);
                let mut line = String::new();
                let ok = r.read_line(&mut line).map(|n| n > 0).unwrap_or(false);
                let _ = tx.send((index, ok.then_some(line)));
                let mut sink = String::new();
                while r.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                    sink.clear();
                }
            });
        }
        drop(tx);
        let deadline = Instant::now() + CHILD_START_TIMEOUT;
        let mut listening = 0;
        while listening < copies {
            sup.check_stop_signal()?;
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("N-copy children did not start within {CHILD_START_TIMEOUT:?}");
            }
            match rx.recv_timeout(left.min(REAP_POLL * 4)) {
                Ok((_, Some(line))) if line.contains(LISTENING) => listening += 1,
                Ok((i, other)) => bail!("N-copy child {i} failed to start (it printed {other:?})"),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    bail!("N-copy children exited before they all listened")
                }
            }
        }
        drop(reservation);
        Ok(sup)
    }

    /// An error when SIGINT or SIGTERM arrived (a SIGCHLD alone is not one).
    fn check_stop_signal(&mut self) -> anyhow::Result<()> {
        let stop = self.signals.pending().find(|&s| s != SIGCHLD);
        match stop {
            Some(signal) => Err(anyhow::Error::new(Interrupted {
                signal,
                started: self.children.procs.len(),
            })),
            None => Ok(()),
        }
    }

    /// The address every child listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Children started.
    pub fn copies(&self) -> usize {
        self.children.procs.len()
    }

    /// Blocks until SIGINT/SIGTERM or until a child exits on its own.
    pub fn wait(&mut self) -> Stop {
        loop {
            // A child may have died before SIGCHLD was ever read.
            if let Some((index, status)) = self.children.exited() {
                self.child_died = true;
                return Stop::ChildExited { index, status };
            }
            for sig in self.signals.wait() {
                if sig != SIGCHLD {
                    return Stop::Signal(sig);
                }
            }
        }
    }

    /// Stops every child (SIGTERM, then SIGKILL past [`CHILD_EXIT_TIMEOUT`]) and collects
    /// their statistics.
    pub fn stop(mut self) -> Finished {
        self.children.signal_all(libc::SIGTERM);
        // A second SIGINT/SIGTERM while the children stop: kill them now.
        let signals = &mut self.signals;
        let mut hurry = || signals.pending().any(|s| s != SIGCHLD);
        let failed =
            self.children.wait_all(CHILD_EXIT_TIMEOUT, &mut hurry) + usize::from(self.child_died);
        let elapsed = self.started.elapsed();
        let stats = self
            .stats_files
            .iter()
            .map(|p| {
                std::fs::read(p)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            })
            .collect();
        let _ = std::fs::remove_dir_all(&self.stats_dir);
        Finished {
            failed,
            child_died: self.child_died,
            stats,
            elapsed,
            addr: self.addr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A child that prints the listening line, writes its statistics on SIGTERM and exits.
    fn shell_child(slot: ChildSlot<'_>, script: &str) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(script)
            .arg("child")
            .arg(slot.index.to_string())
            .arg(slot.stats_file);
        c
    }

    /// Serializes with the tests that raise signals in this process.
    fn no_stray_signals() -> std::sync::MutexGuard<'static, ()> {
        crate::PROCESS_SIGNALS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// `Supervisor::start`, again should a signal raised outside this crate's tests
    /// interrupt it.
    fn start_retrying(
        copies: usize,
        mut command: impl FnMut(ChildSlot<'_>) -> Command,
    ) -> anyhow::Result<Supervisor> {
        loop {
            match Supervisor::start("127.0.0.1:0".parse().unwrap(), copies, &mut command) {
                Err(e) if e.is::<Interrupted>() => continue,
                r => return r,
            }
        }
    }

    #[test]
    fn starts_stops_and_collects_statistics() {
        let _serial = no_stray_signals();
        let script = r#"trap 'printf "{\"n\": %s}" "$1" >"$2"; exit 0' TERM
            echo "child $1 listening on x"; while :; do sleep 0.05; done"#;
        let sup = start_retrying(2, |s| shell_child(s, script)).unwrap();
        assert_ne!(sup.addr().port(), 0);
        assert_eq!(sup.copies(), 2);
        let f = sup.stop();
        assert_eq!(f.failed, 0);
        let ns: Vec<_> = f
            .stats
            .iter()
            .map(|v| v.as_ref().unwrap()["n"].clone())
            .collect();
        assert_eq!(ns, [0, 1]);
    }

    #[test]
    fn a_child_that_dies_is_reported() {
        let _serial = no_stray_signals();
        let script = r#"echo "listening on x"; if [ "$1" = 1 ]; then exit 3; fi
            trap 'exit 0' TERM; while :; do sleep 0.05; done"#;
        let mut sup = start_retrying(2, |s| shell_child(s, script)).unwrap();
        loop {
            if let Stop::ChildExited { index, status } = sup.wait() {
                assert_eq!((index, status.code()), (1, Some(3)));
                break;
            }
        }
        let f = sup.stop();
        assert_eq!(f.failed, 1);
        assert!(f.outcome().is_err());
        assert_eq!(f.without_stats(), [0, 1]);
    }

    #[test]
    fn a_child_that_never_listens_fails_the_start() {
        let _serial = no_stray_signals();
        let r = start_retrying(1, |s| shell_child(s, "echo nope"));
        let Err(e) = r else {
            panic!("a child that never listens was accepted")
        };
        assert!(e.to_string().contains("failed to start"), "{e}");
    }
}
