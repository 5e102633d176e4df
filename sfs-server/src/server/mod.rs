//! The SFS server on the colored runtime.
//!
//! Coloring, as libasync-smp did it for SFS:
//! - Each connection has a color `c` (65535 distinct ones, never 0) with
//!   `--coloring per-client`, or 0 with `--coloring none`. Everything touching the
//!   connection's socket and ciphers runs in `c`: reading and decrypting requests
//!   (`ConnIo`), encrypting and writing replies and callbacks (`Encrypt`). So the crypto
//!   of different clients runs in parallel.
//! - Everything else runs in color 0 and is therefore serial: accepting (`Accept`), the
//!   export (file system), the lease table and the uid mapping (`Dispatch`,
//!   `Disconnect`, `LeaseTimer`, `SyncDone`), which [`crate::dispatch`] implements. Color
//!   0 owns the serial part in a `ColorCell`; each connection owns its state in a
//!   `ColorCell` of its color, so the color discipline is checked at run time, and no
//!   lock is taken on either.
//!
//! Modules, one concept each, with their invariants:
//! - `config`: what a server is configured with ([`ServerConfig`], [`Coloring`]).
//! - `conn`: a connection's handshake, sealed channel and output budget (its color).
//! - `serial`: the dispatcher and the routing of its frames (color 0).
//! - `admission`: the accept loop and the cap on unauthenticated connections (color 0).
//! - `start`: start-up, the running [`Server`] and its counters.
//!
//! A connection hands what it decoded to the serial part, and the serial part hands its
//! frames back, always as events posted to the other's color, never as calls: the two
//! sides share no state but `Shared`'s atomics and its read-only fields.

mod admission;
mod config;
mod conn;
mod serial;
mod start;

use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::time::{Duration, Instant};

use colored_runtime::{ColorCell, HandlerId};
use edge::accept::Acceptor;
use mio::net::TcpListener;

pub use self::config::{Coloring, ServerConfig, HANDSHAKE_TIMEOUT, MAX_UNAUTHENTICATED};
pub use self::conn::OUT_CAP;
use self::serial::Serial;
pub use self::start::Server;
pub use crate::dispatch::ConnId;
use crate::keytable::KeyTable;

/// Bind a listening socket (with `SO_REUSEPORT` for N-copy servers): the shared listener
/// set-up.
pub use edge::listener::bind;

/// The server's event handlers (names in the runtime's statistics).
#[derive(Clone, Copy)]
struct Handlers {
    /// `Accept` (color 0, [`admission`]).
    accept: HandlerId,
    /// `ConnIo`: a connection's readiness and handshake timeout (its color, [`conn`]).
    conn_io: HandlerId,
    /// `Dispatch`: a message or an authentication (color 0, [`serial`]).
    dispatch: HandlerId,
    /// `Encrypt`: seal and write a frame (the connection's color, [`conn`]).
    encrypt: HandlerId,
    /// `Disconnect` (color 0, [`serial`]).
    disconnect: HandlerId,
    /// `LeaseTimer` (color 0, [`serial`]).
    lease_timer: HandlerId,
    /// `SyncDone`: an fsync finished on the blocking pool (color 0, [`serial`]).
    sync_done: HandlerId,
}

/// What every event of the server reaches: read-only configuration, the color-0 state,
/// and counters any color adds to.
struct Shared {
    /// The handlers events are posted to.
    h: Handlers,
    /// The key table: keys for the handshake, identities for the dispatcher.
    keys: KeyTable,
    /// How connections are colored.
    coloring: Coloring,
    /// The attribute lease, as `AuthOk` announces it.
    lease_ms: u32,
    /// Time a connection has to authenticate.
    handshake_timeout: Duration,
    /// This process's id, as `AuthOk` announces it (tells N-copy servers apart).
    server_id: u32,
    /// The next connection's id (from 1).
    next_conn: AtomicU64,
    /// The serial part (color 0).
    serial: ColorCell<Serial>,
    /// The listening socket (non-blocking, registered in color 0).
    listener: TcpListener,
    /// The accept loop's state (color 0).
    acceptor: ColorCell<Acceptor>,
    /// Connections accepted and not authenticated or closed yet ([`admission`], invariant 1).
    unauthenticated: AtomicUsize,
    /// The cap on `unauthenticated`.
    max_unauthenticated: usize,
    /// When a refusal was last logged (color 0).
    refusal_log: ColorCell<Option<Instant>>,
    /// The connection layer's counters.
    counters: Counters,
}

/// The connection layer's counters; any color adds to them (relaxed: only summed).
#[derive(Default)]
struct Counters {
    /// See [`ConnStats::connections_accepted`].
    accepted: AtomicU64,
    /// See [`ConnStats::refused_unauthenticated`].
    refused_unauthenticated: AtomicU64,
    /// See [`ConnStats::accept_errors`].
    accept_errors: AtomicU64,
    /// See [`ConnStats::handshake_timeouts`].
    handshake_timeouts: AtomicU64,
    /// See [`ConnStats::reads_paused`].
    reads_paused: AtomicU64,
    /// See [`ConnStats::closed_over_output`].
    closed_over_output: AtomicU64,
}

/// The connection layer's counters, as `--stats-json` reports them beside the runtime's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConnStats {
    /// Connections accepted and admitted.
    pub connections_accepted: u64,
    /// Connections refused because too many had not authenticated yet.
    pub refused_unauthenticated: u64,
    /// Hard accept errors (EMFILE, ENFILE, ENOMEM...): each one backed off and retried.
    pub accept_errors: u64,
    /// Connections closed for not authenticating in time.
    pub handshake_timeouts: u64,
    /// Times a connection's requests stopped being read because its output budget
    /// ([`OUT_CAP`]) was spent.
    pub reads_paused: u64,
    /// Connections closed with more than 4 x [`OUT_CAP`] of output queued.
    pub closed_over_output: u64,
}
