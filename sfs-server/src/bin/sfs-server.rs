//! `sfs-server`: the SFS-like encrypted file server (colored or N-copy), and `keygen`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use colored_runtime::args::RuntimeArgs;
use edge::signals::StopSignals;
use edge::supervisor::{Stop, Supervisor};
use serde_json::{json, Value};
use sfs_server::server::{
    bind, Coloring, Server, ServerConfig, HANDSHAKE_TIMEOUT, MAX_UNAUTHENTICATED,
};

const PROGRAM: &str = "sfs-server";

const EXAMPLES: &str = "\
EXAMPLES:
  # A key for user alice (key table ./keys, key file ./alice.key, both mode 0600):
  sfs-server keygen --user alice --keys keys --key-file alice.key

  # Export ./export on port 4000 with 2 workers; counters written on SIGTERM:
  sfs-server --export export --listen 127.0.0.1:4000 --keys keys --workers 2 --stats-json s.json

  # Then, as alice:
  sfs-client --server 127.0.0.1:4000 --user alice --key-file alice.key ls";

/// SFS-like encrypted NFS-style file server on the colored runtime.
///
/// Prints `sfs-server listening on ADDR ...` on stdout once it accepts connections and
/// serves until SIGINT or SIGTERM.
#[derive(Parser, Debug)]
#[command(name = "sfs-server", version, after_help = EXAMPLES)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    serve: Serve,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create a user's random key, write it to the key file (0600), add it to the key table
    /// (created if missing). Refuses to replace an existing user or key file without --force.
    #[command(
        after_help = "EXAMPLES:\n  sfs-server keygen --user alice --keys keys --key-file alice.key\n  \
                            sfs-server keygen --user bob --keys keys --key-file bob.key --uid 1001 --gid 1001"
    )]
    Keygen(KeygenArgs),
}

#[derive(Args, Debug)]
struct KeygenArgs {
    /// The user name ([A-Za-z0-9._-], at most 64 bytes).
    #[arg(long, value_name = "NAME")]
    user: String,
    /// The server's key table.
    #[arg(long, value_name = "FILE")]
    keys: PathBuf,
    /// Where to write the user's key.
    #[arg(long, value_name = "FILE")]
    key_file: PathBuf,
    /// Local uid the user acts as on the server (default: the uid running keygen).
    #[arg(long)]
    uid: Option<u32>,
    /// Local gid the user acts as on the server (default: the gid running keygen).
    #[arg(long)]
    gid: Option<u32>,
    /// Replace the user's existing key and overwrite an existing key file.
    #[arg(long)]
    force: bool,
    /// Trust this key to act for the local users of the client host (NFS's trusted-host
    /// model, root squashing off): a mount made with it is usable by every local user, each
    /// checked as itself.
    #[arg(long)]
    trusted: bool,
}

#[derive(Args, Debug, Clone)]
struct Serve {
    /// Directory to export.
    #[arg(long, value_name = "DIR")]
    export: Option<PathBuf>,
    /// Address to listen on (port 0: ephemeral, printed on stdout).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Key table (see `keygen`).
    #[arg(long)]
    keys: Option<PathBuf>,
    /// The runtime: workers (in ncopy mode, the number of processes), queue design,
    /// stealing, pinning.
    #[command(flatten)]
    rt: RuntimeArgs,
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
    /// Write the server's counters and the runtime's (`runtime_stats`) as JSON here on exit;
    /// in ncopy mode, the sum over the processes. The directory is checked at start-up.
    #[arg(long)]
    stats_json: Option<PathBuf>,
    /// (internal) N-copy child I: listen with SO_REUSEPORT, pin to the I-th allowed CPU.
    #[arg(long, hide = true)]
    ncopy_child: Option<usize>,
}

fn main() -> ExitCode {
    let cli: Cli = edge::cli::parse(PROGRAM);
    edge::cli::finish(PROGRAM, run(cli))
}

fn run(cli: Cli) -> Result<()> {
    match (cli.cmd, cli.serve) {
        (Some(Cmd::Keygen(k)), _) => keygen(&k),
        (None, s) => {
            let t = check(&s)?;
            if s.mode == "ncopy" && s.ncopy_child.is_none() {
                ncopy(s, t)
            } else {
                serve(s, t)
            }
        }
    }
}

fn keygen(k: &KeygenArgs) -> Result<()> {
    let (uid, gid) = sfs_server::keys::own_ids();
    let added = sfs_server::keys::Keygen {
        user: &k.user,
        keys: &k.keys,
        key_file: &k.key_file,
        uid: k.uid.unwrap_or(uid),
        gid: k.gid.unwrap_or(gid),
        force: k.force,
        trusted: k.trusted,
    }
    .run()?;
    println!(
        "{} user {} (uid {}, gid {}) in {}; key written to {} (mode 0600)",
        if added.replaced { "replaced" } else { "added" },
        k.user,
        k.uid.unwrap_or(uid),
        k.gid.unwrap_or(gid),
        k.keys.display(),
        k.key_file.display()
    );
    if k.trusted {
        println!(
            "{}'s key is trusted to act for the client host's local users",
            k.user
        );
    }
    Ok(())
}

/// What a server serves, where: `--export`, `--listen`, `--keys`, all given.
struct Target {
    export: PathBuf,
    listen: SocketAddr,
    keys: PathBuf,
}

/// Checks the command line before any work: the three required options, the runtime
/// options, the export, the key table, the statistics path. Every error is a usage error
/// (exit status 2).
fn check(s: &Serve) -> Result<Target> {
    let (Some(export), Some(listen), Some(keys)) = (s.export.clone(), s.listen, s.keys.clone())
    else {
        return Err(edge::cli::usage(
            "either `keygen` or --export DIR --listen ADDR --keys FILE; see --help",
        ));
    };
    s.rt.config().map_err(|e| edge::cli::usage(e.to_string()))?;
    if !export.is_dir() {
        return Err(edge::cli::usage(format!(
            "--export {}: not a directory",
            export.display()
        )));
    }
    if !keys.is_file() {
        return Err(edge::cli::usage(format!(
            "--keys {}: no such key table (create it with `sfs-server keygen`)",
            keys.display()
        )));
    }
    if let Some(p) = &s.stats_json {
        edge::cli::check_output_path("--stats-json", p)?;
    }
    Ok(Target {
        export,
        listen,
        keys,
    })
}

/// The `--coloring` value as it is spelled on the command line.
fn coloring_name(c: Coloring) -> &'static str {
    match c {
        Coloring::PerClient => "per-client",
        Coloring::None => "none",
    }
}

fn serve(s: Serve, t: Target) -> Result<()> {
    let mut signals = StopSignals::hook()?;
    if let Err(e) = edge::limits::raise_nofile() {
        eprintln!("sfs-server: could not raise the open-file limit: {e}");
    }
    if let (Some(i), false) = (s.ncopy_child, s.rt.no_pin) {
        edge::cpu::pin_process_to(i).context("pinning an N-copy server")?;
    }
    let listener = bind(t.listen, s.ncopy_child.is_some())?;
    let cfg = ServerConfig {
        export: t.export,
        keys: t.keys,
        runtime: s.rt.config()?,
        coloring: s.coloring,
        lease: Duration::from_millis(s.lease_ms),
        handshake_timeout: Duration::from_millis(s.handshake_timeout_ms),
        max_unauthenticated: s.max_unauthenticated,
    };
    let started = Instant::now();
    let server = Server::start(cfg, listener)?;
    println!(
        "sfs-server listening on {} (pid {}, workers {}, runtime {}, stealing {}, coloring {})",
        server.local_addr(),
        std::process::id(),
        s.rt.workers,
        s.rt.runtime,
        s.rt.stealing,
        coloring_name(s.coloring)
    );
    std::io::stdout().flush()?;
    signals.wait();
    let conn = server.conn_stats();
    let listen = server.local_addr();
    let stats = server.shutdown();
    if let Some(p) = s.stats_json {
        let mut doc = json!({
            "mode": s.mode,
            "runtime": s.rt.runtime.to_string(),
            "stealing": s.rt.stealing.to_string(),
            "steal_amount": s.rt.steal_amount.to_string(),
            "coloring": s.coloring,
            "workers": s.rt.workers,
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
fn ncopy(s: Serve, t: Target) -> Result<()> {
    let exe = std::env::current_exe()?;
    let mut sup = Supervisor::start(t.listen, s.rt.workers, |slot| {
        let mut cmd = Command::new(&exe);
        cmd.arg("--export")
            .arg(&t.export)
            .args(["--listen", &slot.addr.to_string()])
            .arg("--keys")
            .arg(&t.keys)
            .args(["--workers", "1", "--runtime", &s.rt.runtime.to_string()])
            .args(["--stealing", "off", "--coloring", "none", "--mode", "ncopy"])
            .args(["--lease-ms", &s.lease_ms.to_string()])
            .args([
                "--steal-amount",
                &s.rt.steal_amount.to_string(),
                "--handshake-timeout-ms",
                &s.handshake_timeout_ms.to_string(),
            ])
            .args(["--max-unauthenticated", &s.max_unauthenticated.to_string()])
            .args(["--ncopy-child", &slot.index.to_string()])
            .arg("--stats-json")
            .arg(slot.stats_file);
        if s.rt.no_pin {
            cmd.arg("--no-pin");
        }
        cmd
    })?;
    println!(
        "sfs-server listening on {} (ncopy: {} processes, pid {})",
        sup.addr(),
        s.rt.workers,
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
        let merged = finished.merged_stats(&[("workers", Value::from(s.rt.workers))]);
        edge::stats_file::write_json(p, &merged)?;
    }
    finished.outcome()
}
