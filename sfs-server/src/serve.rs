//! What the `sfs-server` program runs: one server until a stop signal (colored mode), or N
//! single-worker copies of it on one port (N-copy mode), and the statistics file of either.
//!
//! Invariants:
//! 1. The listening line (`sfs-server listening on ADDR ...`) is written, and flushed,
//!    only once the server accepts connections: scripts and tests wait for it.
//! 2. The statistics file is written on a clean stop, after the runtime (or every copy) has
//!    stopped, so its counters are final. Colored: the server's counters ([`ConnStats`])
//!    and the runtime's (`runtime_stats`) with the configuration they ran with. N-copy: the
//!    sum over the copies; a copy that wrote none is named on standard error.
//! 3. An N-copy child is this program, started with the same options but one worker, no
//!    stealing, no coloring, and `--ncopy-child I`: it binds with `SO_REUSEPORT` and pins
//!    itself to the I-th allowed CPU (unless `--no-pin`). A child that exits stops the
//!    others ([`edge::supervisor`]) and is reported as the error.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use colored_runtime::args::RuntimeArgs;
use edge::signals::StopSignals;
use edge::supervisor::{Stop, Supervisor};
use serde_json::{json, Value};

use crate::server::{bind, Coloring, ConnStats, Server, ServerConfig};

/// How the program serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One process, the runtime's workers, connections colored by `--coloring`.
    Colored,
    /// N single-worker processes (the uniprocessor original, color 0 only) on one port
    /// with `SO_REUSEPORT`: fast, but each has its own lease table.
    NCopy,
}

impl Mode {
    /// The name `--mode` takes for it (also the `mode` field of the statistics file).
    pub fn name(self) -> &'static str {
        match self {
            Mode::Colored => "colored",
            Mode::NCopy => "ncopy",
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "colored" => Ok(Mode::Colored),
            "ncopy" => Ok(Mode::NCopy),
            _ => Err(format!("unknown mode {s:?} (colored|ncopy)")),
        }
    }
}

/// Everything `sfs-server` serves with, checked (see [`ServeOptions::check`]).
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The directory exported.
    pub export: PathBuf,
    /// The address listened on (port 0: ephemeral).
    pub listen: SocketAddr,
    /// The key table.
    pub keys: PathBuf,
    /// The runtime options: workers (in N-copy mode, the number of processes), queue
    /// design, stealing, pinning.
    pub runtime: RuntimeArgs,
    /// How connections are colored (colored mode; N-copy copies use none).
    pub coloring: Coloring,
    /// Colored or N-copy.
    pub mode: Mode,
    /// The attribute lease.
    pub lease: Duration,
    /// Time a connection has to authenticate.
    pub handshake_timeout: Duration,
    /// Connections not authenticated yet, at most (per process).
    pub max_unauthenticated: usize,
    /// Where the statistics are written on exit.
    pub stats_json: Option<PathBuf>,
    /// Set in an N-copy child: its index among the copies.
    pub ncopy_child: Option<usize>,
}

impl ServeOptions {
    /// Checks the options before any work: the runtime options (the runtime's own rules),
    /// the export, the key table, and the directory of the statistics file. Every error is
    /// a usage error ([`edge::cli::usage`]: the program exits with status 2).
    pub fn check(&self) -> Result<()> {
        self.runtime
            .config()
            .map_err(|e| edge::cli::usage(e.to_string()))?;
        if !self.export.is_dir() {
            return Err(edge::cli::usage(format!(
                "--export {}: not a directory",
                self.export.display()
            )));
        }
        if !self.keys.is_file() {
            return Err(edge::cli::usage(format!(
                "--keys {}: no such key table (create it with `sfs-server keygen`)",
                self.keys.display()
            )));
        }
        if let Some(p) = &self.stats_json {
            edge::cli::check_output_path("--stats-json", p)?;
        }
        if let Some(p) = &self.runtime.trace {
            edge::cli::check_output_path("--trace", p)?;
        }
        Ok(())
    }

    /// The server's configuration for these options.
    pub fn server_config(&self) -> Result<ServerConfig> {
        Ok(ServerConfig {
            export: self.export.clone(),
            keys: self.keys.clone(),
            runtime: self.runtime.config()?,
            coloring: self.coloring,
            lease: self.lease,
            handshake_timeout: self.handshake_timeout,
            max_unauthenticated: self.max_unauthenticated,
        })
    }
}

/// Serves as `opts` say until SIGINT or SIGTERM: N-copy mode starts the copies (unless this
/// is one), colored mode one server. The listening line goes to `out`.
pub fn run(opts: &ServeOptions, out: &mut dyn Write) -> Result<()> {
    if opts.mode == Mode::NCopy && opts.ncopy_child.is_none() {
        ncopy(opts, out)
    } else {
        serve(opts, out)
    }
}

/// One server on the runtime until a stop signal, then its statistics file.
fn serve(opts: &ServeOptions, out: &mut dyn Write) -> Result<()> {
    let mut signals = StopSignals::hook()?;
    if let Err(e) = edge::limits::raise_nofile() {
        eprintln!("sfs-server: could not raise the open-file limit: {e}");
    }
    if let (Some(i), false) = (opts.ncopy_child, opts.runtime.no_pin) {
        edge::cpu::pin_process_to(i).context("pinning an N-copy server")?;
    }
    let trace_out = opts.runtime.trace_output()?;
    let listener = bind(opts.listen, opts.ncopy_child.is_some())?;
    let started = Instant::now();
    let server = Server::start(opts.server_config()?, listener)?;
    writeln!(
        out,
        "sfs-server listening on {} (pid {}, workers {}, runtime {}, stealing {}, coloring {})",
        server.local_addr(),
        std::process::id(),
        opts.runtime.workers,
        opts.runtime.runtime,
        opts.runtime.stealing,
        opts.coloring.name()
    )?;
    out.flush()?;
    signals.wait();
    let conn = server.conn_stats();
    let listen = server.local_addr();
    let (stats, trace) = server.shutdown_traced();
    if let (Some(t_out), Some(mut trace)) = (&trace_out, trace) {
        let conf = &mut trace.meta.configuration;
        conf.insert(0, ("server".into(), "sfs-server".into()));
        conf.push(("mode".into(), opts.mode.name().into()));
        conf.push(("coloring".into(), opts.coloring.name().into()));
        if let Some(i) = opts.ncopy_child {
            conf.push(("ncopy child".into(), i.to_string()));
        }
        t_out
            .write(&trace)
            .with_context(|| format!("writing the trace {}", t_out.path().display()))?;
    }
    if let Some(p) = &opts.stats_json {
        let doc = stats_doc(opts, listen, started.elapsed(), conn, &stats)?;
        edge::stats_file::write_json(p, &doc)?;
    }
    Ok(())
}

/// The statistics file of one server: its configuration, the connection layer's counters
/// at the top level, and the runtime's under `runtime_stats`.
pub fn stats_doc(
    opts: &ServeOptions,
    listen: SocketAddr,
    elapsed: Duration,
    conn: ConnStats,
    runtime: &colored_runtime::RuntimeStats,
) -> Result<Value> {
    let mut doc = json!({
        "mode": opts.mode.name(),
        "runtime": opts.runtime.runtime.to_string(),
        "stealing": opts.runtime.stealing.to_string(),
        "steal_amount": opts.runtime.steal_amount.to_string(),
        "coloring": opts.coloring,
        "workers": opts.runtime.workers,
        "listen": listen.to_string(),
        "pid": std::process::id(),
        "elapsed_secs": elapsed.as_secs_f64(),
    });
    if let (Value::Object(d), Value::Object(c)) = (&mut doc, serde_json::to_value(conn)?) {
        d.extend(c);
    }
    doc["runtime_stats"] = serde_json::to_value(runtime)?;
    Ok(doc)
}

/// The command line of N-copy child `index`: this program's options for one worker, no
/// stealing and no coloring, its statistics written to `stats_file` (invariant 3).
fn child_command(
    exe: &Path,
    opts: &ServeOptions,
    addr: SocketAddr,
    index: usize,
    stats_file: &Path,
) -> Command {
    let mut cmd = Command::new(exe);
    cmd.arg("--export")
        .arg(&opts.export)
        .args(["--listen", &addr.to_string()])
        .arg("--keys")
        .arg(&opts.keys)
        .args([
            "--workers",
            "1",
            "--runtime",
            &opts.runtime.runtime.to_string(),
        ])
        .args(["--stealing", "off", "--coloring", "none", "--mode", "ncopy"])
        .args(["--lease-ms", &opts.lease.as_millis().to_string()])
        .args([
            "--steal-amount",
            &opts.runtime.steal_amount.to_string(),
            "--handshake-timeout-ms",
            &opts.handshake_timeout.as_millis().to_string(),
        ])
        .args([
            "--max-unauthenticated",
            &opts.max_unauthenticated.to_string(),
        ])
        .args(["--ncopy-child", &index.to_string()])
        .arg("--stats-json")
        .arg(stats_file);
    if opts.runtime.no_pin {
        cmd.arg("--no-pin");
    }
    cmd.args(opts.runtime.fidelity_args());
    cmd.args(opts.runtime.child_trace_args(index));
    cmd
}

/// N independent single-worker servers on one port under the shared N-copy supervisor,
/// until a stop signal or a copy's exit; then the summed statistics file.
fn ncopy(opts: &ServeOptions, out: &mut dyn Write) -> Result<()> {
    let exe = std::env::current_exe().context("finding this program to start its copies")?;
    let mut sup = Supervisor::start(opts.listen, opts.runtime.workers, |slot| {
        child_command(&exe, opts, slot.addr, slot.index, slot.stats_file)
    })?;
    writeln!(
        out,
        "sfs-server listening on {} (ncopy: {} processes, pid {})",
        sup.addr(),
        opts.runtime.workers,
        std::process::id()
    )?;
    out.flush()?;
    let stop = sup.wait();
    if let Stop::ChildExited { index, status } = &stop {
        eprintln!("sfs-server: N-copy server {index} exited: {status}; stopping the others");
    }
    let finished = sup.stop();
    if let Some(p) = &opts.stats_json {
        for i in finished.without_stats() {
            eprintln!("sfs-server: N-copy server {i} wrote no statistics");
        }
        let merged = finished.merged_stats(&[("workers", Value::from(opts.runtime.workers))]);
        edge::stats_file::write_json(p, &merged)?;
    }
    finished.outcome()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// The runtime options as a command line gives them.
    #[derive(Parser)]
    struct Rt {
        #[command(flatten)]
        rt: RuntimeArgs,
    }

    fn options(args: &[&str]) -> ServeOptions {
        let mut argv = vec!["sfs-server"];
        argv.extend_from_slice(args);
        ServeOptions {
            export: "export".into(),
            listen: "127.0.0.1:0".parse().unwrap(),
            keys: "keys".into(),
            runtime: Rt::parse_from(argv).rt,
            coloring: Coloring::PerClient,
            mode: Mode::NCopy,
            lease: Duration::from_millis(1500),
            handshake_timeout: Duration::from_millis(250),
            max_unauthenticated: 7,
            stats_json: None,
            ncopy_child: None,
        }
    }

    fn args(cmd: &Command) -> Vec<String> {
        cmd.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    /// The value following `flag` in `args`.
    fn value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
        let i = args.iter().position(|a| a == flag)?;
        args.get(i + 1).map(String::as_str)
    }

    #[test]
    fn an_ncopy_child_is_one_uncolored_worker_with_the_parents_options() {
        let opts = options(&[
            "--workers",
            "3",
            "--runtime",
            "libasync",
            "--stealing",
            "base",
        ]);
        let addr: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let cmd = child_command(Path::new("/bin/sfs"), &opts, addr, 2, Path::new("s2.json"));
        assert_eq!(cmd.get_program(), "/bin/sfs");
        let a = args(&cmd);
        for (flag, want) in [
            ("--export", "export"),
            ("--listen", "127.0.0.1:4000"),
            ("--keys", "keys"),
            ("--workers", "1"),
            ("--runtime", "libasync"),
            ("--stealing", "off"),
            ("--coloring", "none"),
            ("--mode", "ncopy"),
            ("--lease-ms", "1500"),
            ("--handshake-timeout-ms", "250"),
            ("--max-unauthenticated", "7"),
            ("--ncopy-child", "2"),
            ("--stats-json", "s2.json"),
        ] {
            assert_eq!(value(&a, flag), Some(want), "{flag} in {a:?}");
        }
        assert!(!a.iter().any(|x| x == "--no-pin"), "{a:?}");
        let unpinned = options(&["--no-pin"]);
        let cmd = child_command(
            Path::new("/bin/sfs"),
            &unpinned,
            addr,
            0,
            Path::new("s.json"),
        );
        assert!(args(&cmd).iter().any(|x| x == "--no-pin"));
        // The parent's fidelity options and trace reach the child (its own trace file).
        let paper = options(&[
            "--fidelity",
            "paper",
            "--lock",
            "backoff",
            "--trace",
            "t.json",
        ]);
        let a = args(&child_command(
            Path::new("/bin/sfs"),
            &paper,
            addr,
            1,
            Path::new("s.json"),
        ));
        for (flag, want) in [
            ("--fidelity", "paper"),
            ("--lock", "backoff"),
            ("--trace", "t.c1.json"),
        ] {
            assert_eq!(value(&a, flag), Some(want), "{flag} in {a:?}");
        }
    }

    #[test]
    fn modes_are_named_as_the_command_line_names_them() {
        for m in [Mode::Colored, Mode::NCopy] {
            assert_eq!(m.name().parse::<Mode>(), Ok(m));
        }
        assert!("both".parse::<Mode>().is_err());
    }
}
