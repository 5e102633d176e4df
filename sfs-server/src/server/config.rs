//! The server's configuration: what is served, how connections are colored, and the
//! limits on connections, parsed once at the edge (the `sfs-server` command line, or a
//! test) and read-only afterwards.
//!
//! Invariants:
//! 1. A [`ServerConfig`] is complete: every field has a value (the defaults are the
//!    constants here), and nothing else configures a running server.
//! 2. The runtime configuration is the runtime's own ([`RuntimeConfig`]), validated by
//!    the runtime when the server starts.

use std::path::PathBuf;
use std::time::Duration;

use colored_runtime::RuntimeConfig;

/// How connections are colored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Coloring {
    /// Each connection's crypto in its own color (libasync-smp's SFS).
    PerClient,
    /// Everything in color 0 (the uniprocessor original).
    None,
}

impl Coloring {
    /// The name `--coloring` takes for it.
    pub fn name(self) -> &'static str {
        match self {
            Coloring::PerClient => "per-client",
            Coloring::None => "none",
        }
    }
}

impl std::str::FromStr for Coloring {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "per-client" => Ok(Coloring::PerClient),
            "none" => Ok(Coloring::None),
            _ => Err(format!("unknown coloring {s:?} (per-client|none)")),
        }
    }
}

/// Server configuration (parsed once at the edge).
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Export directory.
    pub export: PathBuf,
    /// Key table file.
    pub keys: PathBuf,
    /// Runtime configuration (workers, queue design, stealing).
    pub runtime: RuntimeConfig,
    /// Coloring.
    pub coloring: Coloring,
    /// Attribute lease duration.
    pub lease: Duration,
    /// Connections not authenticated within this time are closed.
    pub handshake_timeout: Duration,
    /// Connections accepted but not authenticated yet, at most; past it new connections are
    /// refused (closed at once), counted and logged. [`MAX_UNAUTHENTICATED`] by default.
    pub max_unauthenticated: usize,
}

/// Default time a connection has to authenticate.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cap on connections that have not authenticated yet (see
/// [`ServerConfig::max_unauthenticated`]).
pub const MAX_UNAUTHENTICATED: usize = 4096;
