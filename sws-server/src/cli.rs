//! The command line (fixed: docs/ARCHITECTURE.md), parsed once into configuration data.
//!
//! ```text
//! sws-server --root DIR --listen ADDR [--workers N] [--runtime libasync|mely]
//!            [--stealing POLICY] [--steal-amount one|half] [--no-pin] [--allow-many-workers]
//!            [--mode colored|ncopy] [--max-clients N] [--stats-json FILE] [--conn-penalty N]
//! ```
//! The runtime options are the runtime's own ([`colored_runtime::args::RuntimeArgs`]).
//! Hidden flags: `--idle-timeout-ms` (408 after this much inactivity; tests shorten it),
//! `--search-us`, and the ones the N-copy parent passes to its children.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use colored_runtime::args::RuntimeArgs;
use colored_runtime::RuntimeConfig;

use crate::http::Limits;
use crate::server::ServerConfig;

/// How the server runs its workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// One process, one colored runtime with `--workers` workers.
    Colored,
    /// `--workers` single-worker processes sharing the port with SO_REUSEPORT.
    Ncopy,
}

impl Mode {
    /// The flag value.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Colored => "colored",
            Mode::Ncopy => "ncopy",
        }
    }
}

/// What `--help` ends with.
const EXAMPLES: &str = "\
EXAMPLES:
  # Serve ./www on port 8080 with 2 worker threads, Mely queues, time-left stealing:
  sws-server --root www --listen 127.0.0.1:8080 --workers 2 --runtime mely --stealing time-left

  # The N-copy upper bound: 2 single-worker processes sharing the port; counters on exit:
  sws-server --root www --listen 127.0.0.1:8080 --workers 2 --mode ncopy --stats-json stats.json

  # Record what each worker does, written on exit as a Chrome/Perfetto trace (in ncopy mode
  # one file per process: t.c0.json, t.c1.json, ...), then check the color guarantee on it:
  sws-server --root www --listen 127.0.0.1:8080 --workers 2 --trace t.json --trace-records 100000
  colored-report trace-check t.json

  # Stop it with Ctrl-C or SIGTERM (kill PID): it stops, then writes --stats-json.";

/// SWS: the nine-handler static web server on the colored runtime, colored or N-copy.
///
/// Prints `sws-server listening on ADDR` on stdout once it accepts connections and serves
/// until SIGINT or SIGTERM.
#[derive(Clone, Debug, Parser)]
#[command(name = "sws-server", version, after_help = EXAMPLES)]
pub struct Cli {
    /// Document root: every file under it is loaded and prebuilt at start-up.
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,
    /// Address to listen on, e.g. 127.0.0.1:8080 (port 0: any free port, printed at start).
    #[arg(long, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// The runtime: workers, queue design, stealing, pinning.
    #[command(flatten)]
    pub rt: RuntimeArgs,
    /// colored: one process, one colored runtime with --workers workers; ncopy: --workers
    /// single-worker processes sharing the port with SO_REUSEPORT.
    #[arg(long, value_enum, default_value_t = Mode::Colored)]
    pub mode: Mode,
    /// Most clients served at once; past it, connections are answered 503 and closed.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_clients: usize,
    /// Write the statistics (server and runtime counters) as JSON here on shutdown; the
    /// directory is checked at start-up.
    #[arg(long, value_name = "FILE")]
    pub stats_json: Option<PathBuf>,
    /// Idle time after which a connection is answered 408 and closed.
    #[arg(long, default_value_t = 30_000, hide = true)]
    pub idle_timeout_ms: u64,
    /// Stealing penalty of the per-connection handlers and CheckInCache under the `penalty` and
    /// `all` policies: their queued time counts 1/N toward making a color worth stealing, so a
    /// connection moves to another core only with a large backlog (1: no penalty). See
    /// sws-server/bench/RESULTS.md for the measurements behind the default.
    #[arg(long, value_name = "N", default_value_t = crate::server::DEFAULT_CONN_PENALTY, value_parser = clap::value_parser!(u32).range(1..))]
    pub conn_penalty: u32,
    /// Internal: this process is child number N of an N-copy parent.
    #[arg(long, hide = true)]
    pub ncopy_child: Option<usize>,
}

impl Cli {
    /// The runtime configuration with `workers` workers (checked by the runtime's rules).
    pub fn runtime_config(&self, workers: usize) -> anyhow::Result<RuntimeConfig> {
        Ok(self.rt.config_with_workers(workers)?)
    }

    pub fn server_config(&self, max_clients: usize, reuse_port: bool) -> ServerConfig {
        ServerConfig {
            listen: self.listen,
            max_clients,
            idle_timeout: Duration::from_millis(self.idle_timeout_ms.max(1)),
            limits: Limits::default(),
            reuse_port,
            conn_penalty: self.conn_penalty,
        }
    }

    /// Checks what clap cannot, before any work: the runtime options (the runtime's own
    /// rules and the worker cap), the client limit, and that `--stats-json` can be written.
    /// Every error is a usage error (exit status 2).
    pub fn validate(&self) -> anyhow::Result<()> {
        self.rt
            .config()
            .map_err(|e| edge::cli::usage(e.to_string()))?;
        if self.max_clients == 0 {
            return Err(edge::cli::usage("--max-clients must be at least 1"));
        }
        if let Some(p) = &self.stats_json {
            edge::cli::check_output_path("--stats-json", p)?;
        }
        if let Some(p) = &self.rt.trace {
            edge::cli::check_output_path("--trace", p)?;
        }
        Ok(())
    }
}
