//! The server's counters: one set per worker on its own cache lines, summed on demand into
//! [`ServerStats`], the server's part of the `--stats-json` document.
//!
//! Invariant: a worker adds only to its own set (`counters[worker % len]`), so a plain load
//! and store (no read-modify-write) is enough, and readers only ever sum.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::response::ErrorKind;

/// One worker's counters, on its own cache lines.
#[derive(Default)]
#[repr(align(128))]
pub struct WorkerCounters {
    /// 200 responses queued.
    pub requests: AtomicU64,
    /// Bytes of responses queued.
    pub bytes: AtomicU64,
    /// Error responses, by [`ErrorKind::index`].
    pub errors: [AtomicU64; ErrorKind::ALL.len()],
    /// Connections accepted (admitted or answered 503).
    pub accepted: AtomicU64,
    /// Connections closed without an answer past `--max-clients`.
    pub refused_unanswered: AtomicU64,
    /// Connections closed.
    pub closed: AtomicU64,
    /// Connections whose peer vanished.
    pub client_gone: AtomicU64,
    /// Hard accept errors (out of descriptors or memory); each one backs off and retries.
    pub accept_errors: AtomicU64,
}

/// Adds `n` to a counter of the calling worker's own set (see the module invariant).
pub fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Ordering::Relaxed) + n, Ordering::Relaxed);
}

/// The server's own statistics (the runtime's are reported beside them).
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ServerStats {
    /// 200 responses queued.
    pub requests_served: u64,
    /// Bytes of responses queued, errors included.
    pub bytes_queued: u64,
    /// Error responses by kind (name -> count).
    pub errors: std::collections::BTreeMap<String, u64>,
    /// Connections accepted (admitted or answered 503).
    pub connections_accepted: u64,
    /// Connections closed.
    pub connections_closed: u64,
    /// Connections refused past `--max-clients` while too many refusals were in progress,
    /// closed without a 503.
    pub refused_unanswered: u64,
    /// Connections whose peer vanished (reset or broken pipe while reading or writing).
    pub client_gone: u64,
    /// Hard accept errors (EMFILE, ENFILE, ENOMEM...): each one backed off and retried.
    #[serde(default)]
    pub accept_errors: u64,
}

impl ServerStats {
    /// The sum over every worker's counters.
    pub fn sum(counters: &[WorkerCounters]) -> ServerStats {
        let sum = |f: &dyn Fn(&WorkerCounters) -> &AtomicU64| {
            counters
                .iter()
                .map(|c| f(c).load(Ordering::Relaxed))
                .sum::<u64>()
        };
        ServerStats {
            requests_served: sum(&|c| &c.requests),
            bytes_queued: sum(&|c| &c.bytes),
            errors: ErrorKind::ALL
                .iter()
                .map(|k| (k.name().to_string(), sum(&|c| &c.errors[k.index()])))
                .collect(),
            connections_accepted: sum(&|c| &c.accepted),
            connections_closed: sum(&|c| &c.closed),
            refused_unanswered: sum(&|c| &c.refused_unanswered),
            client_gone: sum(&|c| &c.client_gone),
            accept_errors: sum(&|c| &c.accept_errors),
        }
    }
}
