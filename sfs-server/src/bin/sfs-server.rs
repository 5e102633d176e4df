//! `sfs-server`: the SFS-like encrypted file server (colored or N-copy), and `keygen`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use colored_runtime::{QueueKind, RuntimeConfig, StealAmount, StealPolicy};
use edge::signals::StopSignals;
use edge::supervisor::{Stop, Supervisor};
use serde_json::{json, Value};
use sfs_server::server::{
    bind, Coloring, Server, ServerConfig, HANDSHAKE_TIMEOUT, MAX_UNAUTHENTICATED,
};

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
        /// Trust this key to act for the local users of the client host (NFS's
        /// trusted-host model, root squashing off): a mount made with it is usable by
        /// every local user, each checked as itself.
        #[arg(long)]
        trusted: bool,
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
    /// A connection that has not authenticated within this many milliseconds is closed.
    #[arg(long, default_value_t = HANDSHAKE_TIMEOUT.as_millis() as u64, value_parser = clap::value_parser!(u64).range(1..))]
    handshake_timeout_ms: u64,
    /// Connections that have not authenticated yet, at most (per process); past it new
    /// connections are closed at once, counted (`refused_unauthenticated` in --stats-json)
    /// and logged.
    #[arg(long, default_value_t = MAX_UNAUTHENTICATED, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_unauthenticated: usize,
    /// Do not pin workers to CPUs (the runtime pins by default).
    #[arg(long)]
    no_pin: bool,
    /// Write the server's counters and the runtime's (`runtime_stats`) as JSON here on exit;
    /// in ncopy mode, the sum over the processes.
    #[arg(long)]
    stats_json: Option<PathBuf>,
    /// (internal) N-copy child I: listen with SO_REUSEPORT, pin to the I-th allowed CPU.
    #[arg(long, hide = true)]
    ncopy_child: Option<usize>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match (cli.cmd, cli.serve) {
        (
            Some(Cmd::Keygen {
                user,
                keys,
                key_file,
                trusted,
            }),
            _,
        ) => {
            sfs_server::keys::keygen(&user, &keys, &key_file)?;
            if trusted {
                let mut t = sfs_server::keys::KeyTable::load(&keys)?;
                t.set_trusted(&user, true)?;
                t.save(&keys)?;
                println!("{user}'s key is trusted to act for the client host's local users");
            }
            println!(
                "added user {user} to {}; key written to {} (mode 0600)",
                keys.display(),
                key_file.display()
            );
            Ok(())
        }
        (None, Some(s)) if s.mode == "ncopy" && s.ncopy_child.is_none() => ncopy(s),
        (None, Some(s)) => serve(s),
        (None, None) => bail!("either `keygen` or --export/--listen/--keys; see --help"),
    }
}

fn serve(s: Serve) -> Result<()> {
    let mut signals = StopSignals::hook()?;
    if let Err(e) = edge::limits::raise_nofile() {
        eprintln!("sfs-server: could not raise the open-file limit: {e}");
    }
    if let (Some(i), false) = (s.ncopy_child, s.no_pin) {
        edge::cpu::pin_process_to(i).context("pinning an N-copy server")?;
    }
    let listener = bind(s.listen, s.ncopy_child.is_some())?;
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
        handshake_timeout: Duration::from_millis(s.handshake_timeout_ms),
        max_unauthenticated: s.max_unauthenticated,
    };
    let started = Instant::now();
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
    signals.wait();
    let conn = server.conn_stats();
    let listen = server.local_addr();
    let stats = server.shutdown();
    if let Some(p) = s.stats_json {
        let mut doc = json!({
            "mode": s.mode,
            "runtime": s.runtime.to_string(),
            "stealing": s.stealing.to_string(),
            "steal_amount": s.steal_amount.to_string(),
            "coloring": s.coloring,
            "workers": s.workers,
            "listen": listen.to_string(),
            "pid": std::process::id(),
            "elapsed_secs": started.elapsed().as_secs_f64(),
        });
        if let (Value::Object(d), Value::Object(c)) = (&mut doc, serde_json::to_value(conn)?) {
            d.extend(c);
        }
        doc["runtime_stats"] = serde_json::to_value(&stats)?;
        edge::stats_file::write_json(&p, &doc)?;
    }
    Ok(())
}

/// N independent single-worker servers (the uniprocessor original, color 0 only) on one
/// port with SO_REUSEPORT, under the shared N-copy supervisor: fast, but each has its own
/// lease table.
fn ncopy(s: Serve) -> Result<()> {
    let exe = std::env::current_exe()?;
    let mut sup = Supervisor::start(s.listen, s.workers, |slot| {
        let mut cmd = Command::new(&exe);
        cmd.arg("--export")
            .arg(&s.export)
            .args(["--listen", &slot.addr.to_string()])
            .arg("--keys")
            .arg(&s.keys)
            .args(["--workers", "1", "--runtime", &s.runtime.to_string()])
            .args(["--stealing", "off", "--coloring", "none", "--mode", "ncopy"])
            .args(["--lease-ms", &s.lease_ms.to_string()])
            .args([
                "--steal-amount",
                &s.steal_amount.to_string(),
                "--handshake-timeout-ms",
                &s.handshake_timeout_ms.to_string(),
            ])
            .args(["--max-unauthenticated", &s.max_unauthenticated.to_string()])
            .args(["--ncopy-child", &slot.index.to_string()])
            .arg("--stats-json")
            .arg(slot.stats_file);
        if s.no_pin {
            cmd.arg("--no-pin");
        }
        cmd
    })?;
    println!(
        "sfs-server listening on {} (ncopy: {} processes, pid {})",
        sup.addr(),
        s.workers,
        std::process::id()
    );
    std::io::stdout().flush()?;
    let stop = sup.wait();
    if let Stop::ChildExited { index, status } = &stop {
        eprintln!("sfs-server: N-copy server {index} exited: {status}; stopping the others");
    }
    let finished = sup.stop();
    if let Some(p) = &s.stats_json {
        for i in finished.without_stats() {
            eprintln!("sfs-server: N-copy server {i} wrote no statistics");
        }
        let merged = finished.merged_stats(&[("workers", Value::from(s.workers))]);
        edge::stats_file::write_json(p, &merged)?;
    }
    finished.outcome()
}
