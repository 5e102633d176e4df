//! Handler registration and automatic profiling.
//!
//! A handler is registered once with a name, an optional cost annotation (Mely's time-left
//! annotation, in cycles) and a stealing penalty (Mely's penalty annotation, default 1).
//! Handlers without an annotation are profiled: every worker keeps an exponential moving average
//! of the measured cycles per event of each handler and publishes it to the registry, where
//! posters read it to account the processing time queued on each color.
//!
//! Invariant: a `HandlerId` is only ever handed out after its entry is initialised, and entries
//! are never removed, so looking one up never fails.

use crate::loom::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// Most handlers a runtime can register.
#[cfg(not(loom))]
pub const MAX_HANDLERS: usize = 512;
/// Most handlers a runtime can register (small under loom, to keep the models' state small).
#[cfg(loom)]
pub const MAX_HANDLERS: usize = 8;

/// A registered handler.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct HandlerId(pub(crate) u16);

impl HandlerId {
    /// The runtime's reactor event ("Epoll"), color 0.
    pub const EPOLL: HandlerId = HandlerId(0);

    /// Index of the handler in registration order.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// What a handler is registered with.
#[derive(Clone, Debug)]
pub struct HandlerSpec {
    pub(crate) name: String,
    pub(crate) cost_cycles: Option<u64>,
    pub(crate) penalty: u32,
}

impl HandlerSpec {
    /// A handler called `name`, profiled automatically, with penalty 1.
    pub fn new(name: impl Into<String>) -> Self {
        HandlerSpec {
            name: name.into(),
            cost_cycles: None,
            penalty: 1,
        }
    }
    /// Annotate the handler's processing time in cycles (overrides the automatic profile).
    pub fn cost_cycles(mut self, cycles: u64) -> Self {
        self.cost_cycles = Some(cycles);
        self
    }
    /// Stealing penalty (>= 1): events of this handler look `penalty` times cheaper to steal.
    pub fn penalty(mut self, penalty: u32) -> Self {
        self.penalty = penalty.max(1);
        self
    }
}

pub(crate) struct HandlerInfo {
    pub(crate) name: String,
    pub(crate) cost: Option<u64>,
    pub(crate) penalty: u32,
    /// Published moving average of measured cycles (0 until measured).
    pub(crate) avg_cycles: AtomicU64,
}

pub(crate) struct Registry {
    entries: Box<[OnceLock<HandlerInfo>]>,
    len: AtomicUsize,
    lock: Mutex<()>,
}

/// Weight of a new sample in the moving average: 1/8.
pub(crate) const EWMA_SHIFT: u32 = 3;

/// The profile's moving average (weight 1/2^EWMA_SHIFT) after a run of `sample` cycles, from
/// `prev` (0: no run yet).
#[inline]
pub(crate) fn ewma(prev: u64, sample: u64) -> u64 {
    if prev == 0 {
        sample
    } else {
        prev - (prev >> EWMA_SHIFT) + (sample >> EWMA_SHIFT)
    }
}

impl Registry {
    pub(crate) fn new() -> Self {
        let entries = (0..MAX_HANDLERS).map(|_| OnceLock::new()).collect();
        let r = Registry {
            entries,
            len: AtomicUsize::new(0),
            lock: Mutex::new(()),
        };
        let epoll = r.register(HandlerSpec::new("Epoll"));
        debug_assert_eq!(epoll, HandlerId::EPOLL);
        r
    }

    /// Registers a handler. Panics past [`MAX_HANDLERS`] (a programming error, like a
    /// too-long static table).
    pub(crate) fn register(&self, spec: HandlerSpec) -> HandlerId {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let idx = self.len.load(Ordering::Relaxed);
        assert!(
            idx < MAX_HANDLERS,
            "more than {MAX_HANDLERS} handlers registered"
        );
        let info = HandlerInfo {
            name: spec.name,
            cost: spec.cost_cycles,
            penalty: spec.penalty.max(1),
            avg_cycles: AtomicU64::new(0),
        };
        if self.entries[idx].set(info).is_err() {
            unreachable!("registry slot {idx} initialised twice");
        }
        self.len.store(idx + 1, Ordering::Release);
        HandlerId(idx as u16)
    }

    #[inline]
    pub(crate) fn get(&self, id: HandlerId) -> &HandlerInfo {
        self.entries[id.0 as usize]
            .get()
            .expect("handler id from another runtime")
    }

    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Estimated cycles of one event of `id` and its penalty-weighted value.
    #[inline]
    pub(crate) fn estimate(&self, id: HandlerId) -> (u32, u32) {
        let h = self.get(id);
        let c = h
            .cost
            .unwrap_or_else(|| h.avg_cycles.load(Ordering::Relaxed))
            .min(u32::MAX as u64) as u32;
        (c, if h.penalty == 1 { c } else { c / h.penalty })
    }
}
