//! The state every thread of a runtime shares, and the post protocol (libasync-smp's `cpucb`).
//!
//! Post protocol (see `color` for the map invariant): read the slot's core from the map, lock
//! that core, re-read the map; if the slot moved meanwhile, unlock and retry; otherwise enqueue.
//! Under the same lock the poster reads the owner's sleep state and, if it is parked or blocked
//! in the reactor, marks it notified and wakes it after unlocking. Because the owner only decides
//! to sleep under its own lock after seeing an empty queue, no wake-up of an owner is lost. A
//! post that leaves its queue with something to steal may also wake a sleeping thief (the rules
//! are in `idle`).
//!
//! Shutdown: `shutdown` is set once; posts from outside the runtime then fail with
//! [`PostError::Shutdown`](crate::PostError), posts from handlers are dropped and counted; every
//! worker is woken, finishes the batch it is running and exits; events still queued are dropped
//! (their closures' destructors run) and counted in `dropped`.

use crate::blocking::BlockingPool;
use crate::color::{Color, ColorMap};
use crate::config::RuntimeConfig;
use crate::core::{sleep, CoreQueue, CoreState, Owner, Poster, Stealer};
use crate::ctx::Ctx;
use crate::event::{Event, Task};
use crate::handler::{HandlerId, Registry};
use crate::idle::Idle;
use crate::loom::{AtomicBool, AtomicU64, Ordering};
use crate::queue::libasync::LibasyncQueue;
use crate::queue::mely::MelyQueue;
use crate::queue::{Design, QueueParams};
use crate::reactor::Reactor;
use crate::stats::{handler_stats, Counters, RuntimeStats, WorkerPublished, LOCK_SAMPLE};
use crate::topology::Topology;
use crate::tsc;
use crossbeam_utils::CachePadded;
use std::sync::{Arc, OnceLock};
use std::thread::Thread;

/// The queues of every core, of one design.
pub(crate) type Queues<D> = Box<[CachePadded<CoreQueue<D>>]>;

/// The cores' queues, of the configured design.
pub(crate) enum CoreSet {
    Libasync(Queues<LibasyncQueue>),
    Mely(Queues<MelyQueue>),
}

/// Runs `$body` with `$q` bound to the concrete slice of core queues.
macro_rules! with_queues {
    ($set:expr, $q:ident => $body:expr) => {
        match $set {
            $crate::shared::CoreSet::Libasync($q) => $body,
            $crate::shared::CoreSet::Mely($q) => $body,
        }
    };
}
pub(crate) use with_queues;

/// What all threads of a runtime share. Built once (by `Runtime::new` or the model) and never
/// replaced; every field but the ones noted is immutable after start-up.
pub(crate) struct Shared {
    /// The validated configuration.
    pub(crate) cfg: RuntimeConfig,
    /// The color-to-core map (see `color`).
    pub(crate) map: ColorMap,
    /// Registered handlers and their profiles.
    pub(crate) registry: Registry,
    /// Each core's queue, of the configured design.
    pub(crate) queues: CoreSet,
    /// Each core's published length, running slot and sleep state.
    pub(crate) states: Box<[CachePadded<CoreState>]>,
    /// What each worker publishes: counters and per-handler counts.
    pub(crate) published: Box<[WorkerPublished]>,
    /// Each worker's thread, set once the worker started (for unparking it).
    pub(crate) threads: Box<[OnceLock<Thread>]>,
    /// True once the runtime was asked to stop.
    pub(crate) shutdown: AtomicBool,
    /// Moving average of the measured cost of stealing one color (cycles): the time-left
    /// threshold.
    pub(crate) steal_cost_est: CachePadded<AtomicU64>,
    /// Searching and sleeping workers (the idle protocol).
    pub(crate) idle: Idle,
    /// CPU of each worker and victim order for locality-aware stealing.
    pub(crate) topology: Topology,
    /// The reactor, created by the first I/O registration or timer.
    pub(crate) reactor: OnceLock<Reactor>,
    /// The blocking-work pool, started on first use.
    pub(crate) blocking: OnceLock<BlockingPool>,
    /// Events dropped by posts from outside workers after shutdown.
    pub(crate) dropped_external: AtomicU64,
    /// Workers whose pinning failed (set once at start-up).
    pub(crate) unpinned: std::sync::Mutex<Vec<crate::stats::Unpinned>>,
    /// Box every closure (the configuration's `EventStorage::Heap`).
    pub(crate) force_heap: bool,
    /// The stealing policy keeps per-color processing time (time-left, penalty, all).
    pub(crate) track_time: bool,
}

/// Initial steal-cost estimate before any steal was measured (cycles).
const INITIAL_STEAL_COST: u64 = 2_000;

impl Shared {
    /// Shared state for a validated configuration, around core queues allocated by their
    /// workers (or by the caller, for the model). `topology` is the one the workers pin by.
    pub(crate) fn new(cfg: RuntimeConfig, queues: CoreSet, topology: Topology) -> Arc<Shared> {
        let n = cfg.workers;
        Arc::new(Shared {
            map: ColorMap::new(n),
            registry: Registry::new(),
            queues,
            states: (0..n).map(|_| CachePadded::new(CoreState::new())).collect(),
            published: (0..n).map(|_| WorkerPublished::new()).collect(),
            threads: (0..n).map(|_| OnceLock::new()).collect(),
            shutdown: AtomicBool::new(false),
            steal_cost_est: CachePadded::new(AtomicU64::new(INITIAL_STEAL_COST)),
            idle: Idle::new(n),
            topology,
            reactor: OnceLock::new(),
            blocking: OnceLock::new(),
            dropped_external: AtomicU64::new(0),
            unpinned: std::sync::Mutex::new(Vec::new()),
            force_heap: cfg.event_storage == crate::EventStorage::Heap,
            track_time: cfg.stealing.time_left(),
            cfg,
        })
    }

    /// Core queues allocated on the calling thread (the model, which has no workers).
    pub(crate) fn local_queues(cfg: &RuntimeConfig) -> CoreSet {
        fn make<D: Design>(n: usize) -> Queues<D> {
            (0..n)
                .map(|_| CachePadded::new(CoreQueue::new(D::new())))
                .collect()
        }
        match cfg.queue {
            crate::QueueKind::Libasync => CoreSet::Libasync(make(cfg.workers)),
            crate::QueueKind::Mely => CoreSet::Mely(make(cfg.workers)),
        }
    }

    /// What a push or a steal needs to know from the configuration and the threshold now.
    #[inline]
    pub(crate) fn params(&self) -> QueueParams {
        QueueParams {
            time_left: self.cfg.stealing.time_left(),
            weighted: self.cfg.stealing.penalty_weighted(),
            threshold: self.steal_cost_est.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    /// The owner handle of core `w` (callers make one per core, see [`Owner::new`]).
    pub(crate) fn owner<'a, D: Design>(
        &'a self,
        q: &'a [CachePadded<CoreQueue<D>>],
        w: usize,
    ) -> Owner<'a, D> {
        Owner::new(w, &q[w], &self.states[w])
    }

    /// The thief's handle on core `v`.
    pub(crate) fn stealer<'a, D: Design>(
        &'a self,
        q: &'a [CachePadded<CoreQueue<D>>],
        v: usize,
    ) -> Stealer<'a, D> {
        Stealer::new(v, &q[v], &self.states[v])
    }

    /// The poster's handle on core `c`.
    #[inline]
    pub(crate) fn poster<'a, D: Design>(
        &'a self,
        q: &'a [CachePadded<CoreQueue<D>>],
        c: usize,
    ) -> Poster<'a, D> {
        Poster::new(c, &q[c], &self.states[c])
    }

    /// The event's cost estimates: they only feed time-left accounting, so the lookup is skipped
    /// otherwise.
    #[inline]
    fn costs(&self, handler: HandlerId) -> (u32, u32) {
        if self.track_time {
            self.registry.estimate(handler)
        } else {
            (0, 0)
        }
    }

    #[inline]
    pub(crate) fn make_event<F>(&self, color: Color, handler: HandlerId, f: F) -> Event
    where
        F: FnOnce(&mut Ctx<'_>) + Send + 'static,
    {
        let (cost, wcost) = self.costs(handler);
        Event::new(handler.0, color, cost, wcost, Task::new(f, self.force_heap))
    }

    /// Like `make_event`, building the event at the end of `buf`.
    #[inline]
    pub(crate) fn push_new_event<F>(
        &self,
        buf: &mut Vec<Event>,
        color: Color,
        handler: HandlerId,
        f: F,
    ) where
        F: FnOnce(&mut Ctx<'_>) + Send + 'static,
    {
        let (cost, wcost) = self.costs(handler);
        Event::push_new(buf, handler.0, color, cost, wcost, f, self.force_heap);
    }

    /// Enqueue `ev` on the core owning its color. When the caller is a worker, `counters`
    /// accounts its lock use (one acquisition in `LOCK_SAMPLE` timed).
    #[inline]
    pub(crate) fn push(&self, ev: Event, counters: Option<&mut Counters>) -> Result<(), Event> {
        if self.is_shutdown() {
            return Err(ev);
        }
        with_queues!(&self.queues, q => self.push_to_owner(q, ev, counters));
        Ok(())
    }

    /// Enqueue `ev` on the core that owns its color (the post protocol), with `queues` the
    /// concrete queues.
    #[inline]
    pub(crate) fn push_to_owner<D: Design>(
        &self,
        queues: &[CachePadded<CoreQueue<D>>],
        ev: Event,
        counters: Option<&mut Counters>,
    ) {
        let slot = ev.color().slot();
        let p = self.params();
        let timed = counters
            .as_ref()
            .is_some_and(|k| k.lock_ops & (LOCK_SAMPLE - 1) == 0);
        let t0 = if timed { tsc::now() } else { 0 };
        let mut core = self.map.get(slot);
        let mut ev = Some(ev);
        loop {
            let pushed = self.poster(queues, core).push_owned(
                ev.take().into_iter(),
                &p,
                |s| self.map.get(s) == core,
                |back| ev = Some(back),
            );
            if ev.is_some() {
                // The color moved between reading the map and locking the core: follow it.
                core = self.map.get(slot);
                continue;
            }
            if let Some(k) = counters {
                k.lock_ops += 1;
                if timed {
                    k.lock_cycles += tsc::since(t0) * LOCK_SAMPLE;
                }
            }
            if let Some(how) = pushed.wake {
                self.wake(core, how);
            }
            if pushed.stealable {
                self.wake_thief_for(core);
            }
            return;
        }
    }

    /// Flush the events a worker's handler posted to its own core: one lock for all of them.
    /// Events whose color moved away meanwhile (a steal) are posted to their new core after the
    /// lock is released, in order.
    pub(crate) fn flush_local(&self, w: usize, buf: &mut Vec<Event>, counters: &mut Counters) {
        if buf.is_empty() {
            return;
        }
        with_queues!(&self.queues, q => self.flush_on(q, w, buf, counters))
    }

    fn flush_on<D: Design>(
        &self,
        queues: &[CachePadded<CoreQueue<D>>],
        w: usize,
        buf: &mut Vec<Event>,
        counters: &mut Counters,
    ) {
        let p = self.params();
        let timed = counters.lock_ops & (LOCK_SAMPLE - 1) == 0;
        counters.lock_ops += 1;
        let t0 = if timed { tsc::now() } else { 0 };
        let mut spill: Vec<Event> = Vec::new();
        let pushed = self.poster(queues, w).push_owned(
            buf.drain(..),
            &p,
            |s| self.map.get(s) == w,
            |ev| spill.push(ev),
        );
        if timed {
            counters.lock_cycles += tsc::since(t0) * LOCK_SAMPLE;
        }
        // The worker flushing is awake: `pushed.wake` is `None` (its own state is RUNNING).
        if pushed.stealable {
            self.wake_thief_for(w);
        }
        for ev in spill {
            self.push_to_owner(queues, ev, Some(counters));
        }
    }

    /// Wake worker `w`, which was seen in sleep state `st` (now marked notified).
    pub(crate) fn wake(&self, w: usize, st: u8) {
        if st == sleep::POLLING {
            if let Some(r) = self.reactor.get() {
                r.wake();
            }
        } else if let Some(t) = self.threads[w].get() {
            t.unpark();
        }
    }

    /// Core `c`'s queue now holds something to steal: wake a sleeping worker to take it, unless
    /// a worker is searching already (the rules are in `idle`).
    #[inline]
    pub(crate) fn wake_thief_for(&self, c: usize) {
        if self.cfg.stealing.enabled() && self.idle.should_wake_thief() {
            self.wake_thief(c);
        }
    }

    /// Wake one sleeping worker other than `except`, so it can try to steal.
    #[cold]
    pub(crate) fn wake_thief(&self, except: usize) {
        for (w, st) in self.states.iter().enumerate() {
            if w == except {
                continue;
            }
            if let Some(how) = st.claim_sleeper() {
                self.wake(w, how);
                return;
            }
        }
    }

    pub(crate) fn wake_all(&self) {
        for (w, st) in self.states.iter().enumerate() {
            st.notify();
            // Unpark unconditionally: a worker about to park consumes the token.
            if let Some(t) = self.threads[w].get() {
                t.unpark();
            }
        }
        if let Some(r) = self.reactor.get() {
            r.wake();
        }
    }

    pub(crate) fn stats(&self) -> RuntimeStats {
        let mut workers: Vec<Counters> = self.published.iter().map(|p| p.counters.read()).collect();
        if let Some(w) = workers.first_mut() {
            w.dropped += self.dropped_external.load(Ordering::Relaxed);
        }
        RuntimeStats::from_parts(
            self.cfg.queue.as_str(),
            self.cfg.stealing.as_str(),
            workers,
            handler_stats(&self.registry, &self.published),
            self.steal_cost_est.load(Ordering::Relaxed),
            self.unpinned
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }

    /// Move `color`'s slot (and its queued events, in order) to `core`.
    pub(crate) fn place(&self, color: Color, core: usize) -> Result<(), crate::PlaceError> {
        if core >= self.cfg.workers {
            return Err(crate::PlaceError::NoSuchCore(core));
        }
        let slot = color.slot();
        let p = self.params();
        with_queues!(&self.queues, q => loop {
            let from = self.map.get(slot);
            if from == core {
                return Ok(());
            }
            let (src, dst) = (self.poster(q, from), self.poster(q, core));
            match src.move_slot_to(&dst, slot, &p, || self.map.get(slot) == from, || self.map.set(slot, core)) {
                None => continue,
                Some(Err(())) => return Err(crate::PlaceError::Running(color)),
                Some(Ok(wake)) => {
                    if let Some(st) = wake {
                        self.wake(core, st);
                    }
                    return Ok(());
                }
            }
        })
    }
}
