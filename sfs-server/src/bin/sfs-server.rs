//! `sfs-server`: the SFS-like encrypted file server (colored or N-copy), and `keygen`.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use colored_runtime::{QueueKind, RuntimeConfig, StealAmount, StealPolicy};
use sfs_server::server::{bind, Coloring, Server, ServerConfig};

#[derive(Parser, Debug)]
#[command(
    name = "sfs-server",
    about = "SFS-like encrypted NFS-style file server on the colored runtime"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    serve: Option<Serve>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create a user's random key, write it to the key file (0600), add it to the key table.
    Keygen {
        #[arg(long)]
        user: String,
        /// The server's key table.
        #[arg(long)]
        keys: PathBuf,
        /// Where to write the user's key.
        #[arg(long)]
        key_file: PathBuf,
    },
}

#[derive(Args, Debug, Clone)]
struct Serve {
    /// Directory to export.
    #[arg(long)]
    export: PathBuf,
    /// Address to listen on (port 0: ephemeral, printed on stdout).
    #[arg(long)]
    listen: SocketAddr,
    /// Key table (see `keygen`).
    #[arg(long)]
    keys: PathBuf,
    /// Worker threads (one per core); in ncopy mode, the number of processes.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Queue design.
    #[arg(long, value_parser = clap::value_parser!(QueueKind), default_value = "mely")]
    runtime: QueueKind,
    /// Stealing policy.
    #[arg(long, value_parser = clap::value_parser!(StealPolicy), default_value = "off")]
    stealing: StealPolicy,
    /// What a time-left steal (time-left, penalty, all) takes: `one`, the best worthy color
    /// (the Mely paper's), or `half`, worthy colors until the thief holds half of the victim's
    /// queued time, at most 32 (ours).
    #[arg(long, value_parser = clap::value_parser!(StealAmount), default_value = "one")]
    steal_amount: StealAmount,
    /// per-client: each connection's crypto in its own color; none: all in color 0.
    #[arg(long, value_parser = clap::value_parser!(Coloring), default_value = "per-client")]
    coloring: Coloring,
    /// colored: one process; ncopy: N single-worker processes sharing the port.
    #[arg(long, default_value = "colored", value_parser = ["colored", "ncopy"])]
    mode: String,
    /// Attribute lease duration in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    lease_ms: u64,
    /// Do not pin workers to CPUs (the runtime pins by default).
    #[arg(long)]
    no_pin: bool,
    /// Write the runtime counters as JSON here on exit.
    #[arg(long)]
    stats_json: Option<PathBuf>,
    /// (internal, N-copy children) listen with SO_REUSEPORT.
    #[arg(long, hide = true)]
    reuseport: bool,
    /// (internal, N-copy children) restrict this process to one CPU.
    #[arg(long, hide = true)]
    pin_cpu: Option<usize>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match (cli.cmd, cli.serve) {
        (
            Some(Cmd::Keygen {
                user,
                keys,
                key_file,
            }),
            _,
        ) => {
            sfs_server::keys::keygen(&user, &keys, &key_file)?;
            println!(
                "added user {user} to {}; key written to {} (mode 0600)",
                keys.display(),
                key_file.display()
            );
            Ok(())
        }
        (None, Some(s)) if s.mode == "ncopy" => ncopy(s),
        (None, Some(s)) => serve(s),
        (None, None) => bail!("either `keygen` or --export/--listen/--keys; see --help"),
    }
}

fn term_flag() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    Ok(stop)
}

fn serve(s: Serve) -> Result<()> {
    if let (Some(cpu), false) = (s.pin_cpu, s.no_pin) {
        pin_to(cpu)?;
    }
    let stop = term_flag()?;
    let listener = bind(s.listen, s.reuseport)?;
    let cfg = ServerConfig {
        export: s.export.clone(),
        keys: s.keys.clone(),
        runtime: RuntimeConfig {
            workers: s.workers,
            queue: s.runtime,
            stealing: s.stealing,
            steal_amount: s.steal_amount,
            pin: !s.no_pin,
            ..RuntimeConfig::default()
        },
        coloring: s.coloring,
        lease: Duration::from_millis(s.lease_ms),
        handshake_timeout: sfs_server::server::HANDSHAKE_TIMEOUT,
    };
    let server = Server::start(cfg, listener)?;
    println!(
        "sfs-server listening on {} (pid {}, workers {}, runtime {}, stealing {}, coloring {:?})",
        server.local_addr(),
        std::process::id(),
        s.workers,
        s.runtime,
        s.stealing,
        s.coloring
    );
    std::io::stdout().flush()?;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let stats = server.shutdown();
    if let Some(p) = s.stats_json {
        let mut doc = serde_json::to_value(&stats)?;
        doc["steal_amount"] = s.steal_amount.to_string().into();
        std::fs::write(&p, serde_json::to_string_pretty(&doc)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

fn pin_to(cpu: usize) -> Result<()> {
    let n = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    // SAFETY: cpu_set_t is plain old data; CPU_ZERO/CPU_SET only write inside it, and
    // sched_setaffinity reads it for this process (pid 0).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu % n, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error()).context("sched_setaffinity");
        }
    }
    Ok(())
}

/// N independent single-worker servers (the uniprocessor original, color 0 only) on one
/// port with SO_REUSEPORT: fast, but each has its own lease table.
fn ncopy(s: Serve) -> Result<()> {
    let stop = term_flag()?;
    // Reserve the port (bound, never listening, so it receives no connections).
    let reserve = socket2::Socket::new(
        socket2::Domain::for_address(s.listen),
        socket2::Type::STREAM,
        None,
    )?;
    reserve.set_reuse_address(true)?;
    reserve.set_reuse_port(true)?;
    reserve
        .bind(&s.listen.into())
        .with_context(|| format!("binding {}", s.listen))?;
    let addr = reserve
        .local_addr()?
        .as_socket()
        .context("not an inet address")?;
    let exe = std::env::current_exe()?;
    let mut children: Vec<Child> = Vec::new();
    let kill_all = |children: &mut Vec<Child>| {
        for c in children.iter_mut() {
            // SAFETY: kill with a pid we spawned.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        }
        for c in children.iter_mut() {
            let _ = c.wait();
        }
    };
    for i in 0..s.workers {
        let mut cmd = Command::new(&exe);
        cmd.arg("--export")
            .arg(&s.export)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--keys")
            .arg(&s.keys)
            .args([
                "--workers",
                "1",
                "--runtime",
                &s.runtime.to_string(),
                "--stealing",
                "off",
                "--steal-amount",
                &s.steal_amount.to_string(),
            ])
            .args(["--coloring", "none", "--mode", "colored", "--reuseport"])
            .arg("--pin-cpu")
            .arg(i.to_string())
            .arg("--lease-ms")
            .arg(s.lease_ms.to_string())
            .stdout(Stdio::piped());
        if let Some(p) = &s.stats_json {
            cmd.arg("--stats-json").arg(format!("{}.{i}", p.display()));
        }
        if s.no_pin {
            cmd.arg("--no-pin");
        }
        // SAFETY: prctl in the forked child before exec only sets its parent-death signal.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                kill_all(&mut children);
                return Err(e).context("spawning an N-copy server");
            }
        };
        let out = child.stdout.take().context("child stdout")?;
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line)?;
        children.push(child);
        if !line.starts_with("sfs-server listening") {
            kill_all(&mut children);
            bail!("N-copy server {i} failed to start");
        }
    }
    println!(
        "sfs-server listening on {addr} (ncopy: {} processes, pid {})",
        s.workers,
        std::process::id()
    );
    std::io::stdout().flush()?;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        for c in children.iter_mut() {
            if let Ok(Some(st)) = c.try_wait() {
                eprintln!("sfs-server: N-copy server {} exited: {st}", c.id());
                stop.store(true, Ordering::Relaxed);
            }
        }
    }
    kill_all(&mut children);
    drop(reserve);
    Ok(())
}
