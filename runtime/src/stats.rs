//! Per-worker counters and their read-out.
//!
//! Each worker owns plain `u64` counters ([`Counters`]) and publishes them with `Relaxed` stores
//! into its own 128-byte-aligned [`PublishedCounters`] after every batch and before parking;
//! readers sum the published copies. Per-handler event counts and cycles are published the same
//! way into a per-worker table. Cycle counts come from [`crate::tsc`].

use crate::config::{QueueKind, StealPolicy};
use crate::handler::MAX_HANDLERS;
use crate::loom::{AtomicU64, Ordering};
use crossbeam_utils::CachePadded;
use std::borrow::Cow;

/// One lock acquisition in this many is timed (power of two).
pub const LOCK_SAMPLE: u64 = 64;

macro_rules! counters {
    ($($(#[$m:meta])* $name:ident),* $(,)?) => {
        /// A worker's private counters.
        #[derive(Clone, Copy, Default, Debug, serde::Serialize, serde::Deserialize)]
        pub struct Counters { $($(#[$m])* pub $name: u64,)* }

        /// The published copy, written only by the owning worker.
        #[derive(Default)]
        pub(crate) struct PublishedCounters { $($name: AtomicU64,)* }

        impl PublishedCounters {
            pub(crate) fn publish(&self, c: &Counters) {
                $(self.$name.store(c.$name, Ordering::Relaxed);)*
            }
            pub(crate) fn read(&self) -> Counters {
                Counters { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }

        impl Counters {
            pub(crate) fn add(&mut self, o: &Counters) {
                $(self.$name += o.$name;)*
            }

            /// Field by field `self - earlier` (saturating).
            pub(crate) fn since(&self, earlier: &Counters) -> Counters {
                Counters { $($name: self.$name.saturating_sub(earlier.$name),)* }
            }
        }
    };
}

counters! {
    /// Events run.
    events,
    /// Victims examined under their lock.
    steal_attempts,
    /// Successful steals.
    steals,
    /// Colors moved by successful steals (one per steal, except time-left steals, which can take
    /// several).
    stolen_colors,
    /// Cycles victims stayed locked while a steal built and moved its event set.
    steal_cost_cycles,
    /// Nodes of the victims' queues successful steals visited (libasync: list nodes whose
    /// color they read; Mely: color-queues taken). Absent (0) in results written before it.
    #[serde(default)]
    steal_nodes,
    /// Measured processing cycles of stolen events.
    stolen_time_cycles,
    /// Stolen events.
    stolen_events,
    /// Cycles spent waiting for and holding queue locks. Steals are always timed; of the other
    /// acquisitions one in 64 is timed and scaled, since reading the cycle counter
    /// costs more than an uncontended lock on some virtual machines.
    lock_cycles,
    /// Queue lock acquisitions by this worker (pops, posts, steals).
    lock_ops,
    /// Cycles not idle: running handlers and the runtime's own work between them.
    busy_cycles,
    /// Cycles spent with nothing to run (searching, parked, or blocked in the reactor).
    idle_cycles,
    /// Handlers that panicked (caught; the worker kept running).
    panics,
    /// Events dropped because the runtime was shutting down.
    dropped,
    /// Times the worker parked.
    parks,
    /// Reactor polls that failed (other than by a signal), each followed by a back-off.
    poll_errors,
}

pub(crate) struct HandlerCounters {
    events: AtomicU64,
    /// Events whose run time was measured, and their cycles.
    sampled: AtomicU64,
    cycles: AtomicU64,
    panics: AtomicU64,
}

/// Everything one worker publishes.
pub(crate) struct WorkerPublished {
    pub(crate) counters: CachePadded<PublishedCounters>,
    pub(crate) handlers: Box<[HandlerCounters]>,
}

impl WorkerPublished {
    pub(crate) fn new() -> Self {
        let handlers = (0..MAX_HANDLERS)
            .map(|_| HandlerCounters {
                events: AtomicU64::new(0),
                sampled: AtomicU64::new(0),
                cycles: AtomicU64::new(0),
                panics: AtomicU64::new(0),
            })
            .collect();
        WorkerPublished {
            counters: CachePadded::new(PublishedCounters::default()),
            handlers,
        }
    }

    /// Owner only: account `events` runs of handler `h`, with the cycles of the last one if they
    /// were measured.
    #[inline]
    pub(crate) fn record_handler(
        &self,
        h: usize,
        events: u64,
        cycles: Option<u64>,
        panicked: bool,
    ) {
        let e = &self.handlers[h];
        // Single writer: load + store instead of a read-modify-write.
        e.events
            .store(e.events.load(Ordering::Relaxed) + events, Ordering::Relaxed);
        if let Some(c) = cycles {
            e.sampled
                .store(e.sampled.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            e.cycles
                .store(e.cycles.load(Ordering::Relaxed) + c, Ordering::Relaxed);
        }
        if panicked {
            e.panics
                .store(e.panics.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
    }
}

/// One handler's statistics summed over workers.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct HandlerStats {
    /// The name it was registered with.
    pub name: String,
    /// Events run.
    pub events: u64,
    /// Estimated cycles spent in the handler: `avg_cycles * events`.
    pub cycles: u64,
    /// Mean measured cycles per event (the first 16 runs per worker and one in 64 after that
    /// are timed).
    pub avg_cycles: f64,
    /// Events whose cycles were measured.
    pub sampled_events: u64,
    /// Cycles of the measured events.
    pub sampled_cycles: u64,
    /// Recent moving average used by time-left stealing (0 when annotated or not yet measured).
    #[serde(deserialize_with = "whole_cycles")]
    pub profiled_cycles: u64,
    /// The cost annotation, when the handler has one.
    pub cost_annotation: Option<u64>,
    /// Its stealing penalty.
    pub penalty: u32,
    /// Runs that panicked (caught).
    pub panics: u64,
}

/// A worker that runs unpinned because pinning it failed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Unpinned {
    /// The worker.
    pub worker: usize,
    /// The CPU it should have been pinned to.
    pub cpu: usize,
    /// Why pinning failed.
    pub error: String,
}

/// A snapshot of the runtime's counters.
///
/// Read back (`Deserialize`) from a server's `--stats-json`: `queue` and `stealing` must name a
/// [`QueueKind`] and a [`StealPolicy`]; the fields added after the first results were written
/// (`steal_nodes_avg`, `blocking_panics`, [`Counters::steal_nodes`]) read as 0 when absent.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RuntimeStats {
    /// The queue design ([`QueueKind::as_str`]).
    #[serde(deserialize_with = "queue_name")]
    pub queue: Cow<'static, str>,
    /// The stealing policy ([`StealPolicy::as_str`]).
    #[serde(deserialize_with = "policy_name")]
    pub stealing: Cow<'static, str>,
    /// Each worker's counters.
    pub workers: Vec<Counters>,
    /// The workers' counters summed.
    pub total: Counters,
    /// lock cycles / (busy + idle cycles), in percent.
    pub locking_time_pct: f64,
    /// Mean cycles a victim stayed locked per steal (0 without steals).
    pub steal_cost_cycles_avg: f64,
    /// Mean measured processing cycles stolen per steal (a time-left steal can take several
    /// colors).
    pub stolen_time_cycles_avg: f64,
    /// Mean nodes of the victim's queue visited per steal (`Counters::steal_nodes` over
    /// `steals`; 0 without steals).
    #[serde(default)]
    pub steal_nodes_avg: f64,
    /// Current estimate of the cost of stealing one color, the time-left threshold.
    #[serde(deserialize_with = "whole_cycles")]
    pub steal_cost_estimate_cycles: u64,
    /// Every registered handler's statistics, in registration order.
    pub handlers: Vec<HandlerStats>,
    /// Rate of the cycle counter the cycle figures are in.
    pub cycles_per_sec: f64,
    /// Workers whose pinning failed at start-up (empty when all are pinned or pinning is off).
    pub unpinned: Vec<Unpinned>,
    /// Blocking jobs ([`Handle::spawn_blocking`](crate::Handle::spawn_blocking)) whose work
    /// panicked: caught on the helper thread (which keeps serving), their completions never
    /// posted.
    #[serde(default)]
    pub blocking_panics: u64,
}

/// `RuntimeStats::queue` read back: the name of a [`QueueKind`], as the static string it was
/// written from.
fn queue_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Cow<'static, str>, D::Error> {
    let s = <String as serde::Deserialize>::deserialize(d)?;
    s.parse::<QueueKind>()
        .map(|q| Cow::Borrowed(q.as_str()))
        .map_err(serde::de::Error::custom)
}

/// `RuntimeStats::stealing` read back: the name of a [`StealPolicy`], as the static string it
/// was written from.
fn policy_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Cow<'static, str>, D::Error> {
    let s = <String as serde::Deserialize>::deserialize(d)?;
    s.parse::<StealPolicy>()
        .map(|p| Cow::Borrowed(p.as_str()))
        .map_err(serde::de::Error::custom)
}

/// A cycle figure that is an estimate ([`HandlerStats::profiled_cycles`],
/// [`RuntimeStats::steal_cost_estimate_cycles`]) read back: a whole number as written, or the
/// mean an N-copy parent wrote over its children (`edge::stats_file`), rounded to the nearest
/// cycle.
fn whole_cycles<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let x = <f64 as serde::Deserialize>::deserialize(d)?;
    if x.is_finite() && x >= 0.0 && x <= u64::MAX as f64 {
        Ok(x.round() as u64)
    } else {
        Err(serde::de::Error::custom(format!(
            "{x} is not a number of cycles"
        )))
    }
}

impl RuntimeStats {
    pub(crate) fn from_parts(
        queue: impl Into<Cow<'static, str>>,
        stealing: impl Into<Cow<'static, str>>,
        workers: Vec<Counters>,
        handlers: Vec<HandlerStats>,
        steal_cost_estimate_cycles: u64,
        unpinned: Vec<Unpinned>,
        blocking_panics: u64,
    ) -> Self {
        let mut total = Counters::default();
        for w in &workers {
            total.add(w);
        }
        let denom = (total.busy_cycles + total.idle_cycles) as f64;
        let pct = if denom > 0.0 {
            100.0 * total.lock_cycles as f64 / denom
        } else {
            0.0
        };
        let per_steal = |x: u64| {
            if total.steals > 0 {
                x as f64 / total.steals as f64
            } else {
                0.0
            }
        };
        RuntimeStats {
            queue: queue.into(),
            stealing: stealing.into(),
            locking_time_pct: pct,
            steal_cost_cycles_avg: per_steal(total.steal_cost_cycles),
            stolen_time_cycles_avg: per_steal(total.stolen_time_cycles),
            steal_nodes_avg: per_steal(total.steal_nodes),
            steal_cost_estimate_cycles,
            workers,
            total,
            handlers,
            cycles_per_sec: crate::tsc::cycles_per_sec(),
            unpinned,
            blocking_panics,
        }
    }

    /// The statistics of the handler registered under `name`.
    pub fn handler(&self, name: &str) -> Option<&HandlerStats> {
        self.handlers.iter().find(|h| h.name == name)
    }

    /// Counters accumulated between `earlier` and `self` (for measuring an interval).
    pub fn since(&self, earlier: &RuntimeStats) -> RuntimeStats {
        let workers: Vec<Counters> = self
            .workers
            .iter()
            .zip(&earlier.workers)
            .map(|(a, b)| a.since(b))
            .collect();
        let handlers = self
            .handlers
            .iter()
            .map(|h| {
                let (e, se, sc, p) = earlier
                    .handler(&h.name)
                    .map(|o| (o.events, o.sampled_events, o.sampled_cycles, o.panics))
                    .unwrap_or((0, 0, 0, 0));
                let events = h.events - e;
                let sampled_events = h.sampled_events - se;
                let sampled_cycles = h.sampled_cycles - sc;
                let avg = if sampled_events > 0 {
                    sampled_cycles as f64 / sampled_events as f64
                } else {
                    0.0
                };
                HandlerStats {
                    events,
                    cycles: (avg * events as f64) as u64,
                    avg_cycles: avg,
                    sampled_events,
                    sampled_cycles,
                    panics: h.panics - p,
                    ..h.clone()
                }
            })
            .collect();
        RuntimeStats::from_parts(
            self.queue.clone(),
            self.stealing.clone(),
            workers,
            handlers,
            self.steal_cost_estimate_cycles,
            self.unpinned.clone(),
            self.blocking_panics - earlier.blocking_panics,
        )
    }
}

pub(crate) fn handler_stats(
    registry: &crate::handler::Registry,
    published: &[WorkerPublished],
) -> Vec<HandlerStats> {
    (0..registry.len())
        .map(|i| {
            let info = registry.get(crate::HandlerId(i as u16));
            let (mut events, mut sampled, mut scycles, mut panics) = (0, 0, 0, 0);
            for w in published {
                events += w.handlers[i].events.load(Ordering::Relaxed);
                sampled += w.handlers[i].sampled.load(Ordering::Relaxed);
                scycles += w.handlers[i].cycles.load(Ordering::Relaxed);
                panics += w.handlers[i].panics.load(Ordering::Relaxed);
            }
            let avg = if sampled > 0 {
                scycles as f64 / sampled as f64
            } else {
                0.0
            };
            HandlerStats {
                name: info.name.clone(),
                events,
                cycles: (avg * events as f64) as u64,
                avg_cycles: avg,
                sampled_events: sampled,
                sampled_cycles: scycles,
                profiled_cycles: info.avg_cycles.load(Ordering::Relaxed),
                cost_annotation: info.cost,
                penalty: info.penalty,
                panics,
            }
        })
        .collect()
}
