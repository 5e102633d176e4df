//! The command line (fixed by DESIGN.md section 4), parsed once into configuration data.
//!
//! ```text
//! sws-server --root DIR --listen ADDR --workers N --runtime <libasync|mely> --stealing POLICY
//!            [--mode colored|ncopy] [--max-clients N] [--stats-json FILE]
//!            [--steal-amount one|half] [--conn-penalty N]
//! ```
//! Hidden flags: `--idle-timeout-ms` (408 after this much inactivity; tests shorten it) and
//! the ones the N-copy parent passes to its children.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use colored_runtime::{QueueKind, RuntimeConfig, StealAmount, StealPolicy};

use crate::http::Limits;
use crate::server::ServerConfig;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// One process, one colored runtime with `--workers` workers.
    Colored,
    /// `--workers` single-worker processes sharing the port with SO_REUSEPORT.
    Ncopy,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Colored => "colored",
            Mode::Ncopy => "ncopy",
        }
    }
}

/// SWS: the nine-handler static web server on the colored runtime, colored or N-copy.
#[derive(Clone, Debug, Parser)]
#[command(name = "sws-server", version)]
pub struct Cli {
    /// Document root: every file under it is loaded and prebuilt at start-up.
    #[arg(long)]
    pub root: PathBuf,
    /// Address to listen on, e.g. 127.0.0.1:8080 (port 0: any free port, printed at start).
    #[arg(long)]
    pub listen: SocketAddr,
    /// Worker threads (colored) or processes (ncopy).
    #[arg(long)]
    pub workers: usize,
    /// Queue design of the runtime: libasync or mely.
    #[arg(long, value_parser = clap::value_parser!(QueueKind))]
    pub runtime: QueueKind,
    /// Stealing policy: off, base, time-left, penalty, locality or all (libasync: off, base).
    #[arg(long, value_parser = clap::value_parser!(StealPolicy))]
    pub stealing: StealPolicy,
    /// What a time-left steal (time-left, penalty, all) takes: `one`, the best worthy color
    /// (the Mely paper's), or `half`, worthy colors until the thief holds half of the victim's
    /// queued time, at most 32 (ours).
    #[arg(long, default_value_t = StealAmount::One, value_parser = clap::value_parser!(StealAmount))]
    pub steal_amount: StealAmount,
    #[arg(long, value_enum, default_value_t = Mode::Colored)]
    pub mode: Mode,
    /// Most clients served at once; past it, connections are answered 503 and closed.
    #[arg(long, default_value_t = 10_000)]
    pub max_clients: usize,
    /// Write the statistics (server and runtime counters) here on shutdown.
    #[arg(long)]
    pub stats_json: Option<PathBuf>,
    /// Idle time after which a connection is answered 408 and closed.
    #[arg(long, default_value_t = 30_000, hide = true)]
    pub idle_timeout_ms: u64,
    /// Runtime tuning: how long an idle worker searches for work to steal (attempts separated
    /// by naps) before it sleeps (microseconds; default: the runtime's).
    #[arg(long, alias = "steal-spin-us", hide = true)]
    pub search_us: Option<u64>,
    /// Stealing penalty of the per-connection handlers and CheckInCache under the `penalty` and
    /// `all` policies: their queued time counts 1/N toward making a color worth stealing, so a
    /// connection moves to another core only with a large backlog (1: no penalty). See
    /// sws-server/bench/RESULTS.md for the measurements behind the default.
    #[arg(long, default_value_t = crate::server::DEFAULT_CONN_PENALTY, value_parser = clap::value_parser!(u32).range(1..))]
    pub conn_penalty: u32,
    /// Internal: this process is child number N of an N-copy parent.
    #[arg(long, hide = true)]
    pub ncopy_child: Option<usize>,
}

impl Cli {
    pub fn runtime_config(&self, workers: usize) -> RuntimeConfig {
        let d = RuntimeConfig::default();
        RuntimeConfig {
            workers,
            queue: self.runtime,
            stealing: self.stealing,
            steal_amount: self.steal_amount,
            search_us: self.search_us.unwrap_or(d.search_us),
            ..d
        }
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

    /// Checks what clap cannot: worker count and the runtime/policy combination.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.workers >= 1, "--workers must be at least 1");
        anyhow::ensure!(self.max_clients >= 1, "--max-clients must be at least 1");
        if self.runtime == QueueKind::Libasync {
            anyhow::ensure!(
                matches!(self.stealing, StealPolicy::Off | StealPolicy::Base),
                "--runtime libasync supports --stealing off or base, not {}",
                self.stealing
            );
        }
        Ok(())
    }
}
