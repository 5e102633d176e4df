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
//! (their closures' destructors run) and counted in `dropped`, and so are timers still pending
//! (dropped by the thread that asks for the shutdown).

use crate::blocking::BlockingPool;
use crate::color::{Color, ColorMap};
use crate::config::{IdleMode, QueueKind, RuntimeConfig, StealPolicy, StealWalk};
use crate::core::{CoreQueue, CoreState, Poster, Sleep, Stealer};
use crate::error::PlaceError;
use crate::event::Event;
use crate::handler::{HandlerId, Registry};
use crate::idle::Idle;
use crate::loom::{AtomicBool, AtomicU64, Ordering};
use crate::queue::libasync::LibasyncQueue;
use crate::queue::mely::MelyQueue;
use crate::queue::{Design, QueueParams, StealChoice};
use crate::reactor::Reactor;
use crate::stats::{handler_stats, Counters, RuntimeStats, Unpinned, WorkerPublished, LOCK_SAMPLE};
use crate::topology::Topology;
use crate::tsc;
use crossbeam_utils::CachePadded;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::Thread;

/// The queues of every core, of one design.
pub(crate) type Queues<D> = Box<[CachePadded<CoreQueue<D>>]>;

/// The cores' queues, of the configured design.
pub(crate) enum CoreSet {
    /// libasync-smp's design.
    Libasync(Queues<LibasyncQueue>),
    /// Mely's design.
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

/// A handle to a runtime: post events, register handlers and I/O, read statistics. Cheap to
/// clone, usable from any thread. (Its methods are in `handle`; the type is here, beside the
/// state it counts a reference to, so that `ctx` can lend one without importing `handle`.)
///
/// ```
/// use colored_runtime::{Color, HandlerSpec, Runtime, RuntimeConfig};
/// use std::sync::mpsc;
///
/// let rt = Runtime::new(RuntimeConfig { workers: 2, ..Default::default() }).unwrap();
/// let handle = rt.handle();
/// let work = handle.register(HandlerSpec::new("work"));
/// let (tx, rx) = mpsc::channel();
/// std::thread::spawn(move || {
///     // From any thread: runs on the core that owns color 3.
///     handle.post(Color(3), work, move |ctx| tx.send(ctx.worker()).unwrap()).unwrap();
/// });
/// assert!(rx.recv().unwrap() < 2);
/// ```
#[derive(Clone)]
pub struct Handle {
    /// The runtime's shared state.
    pub(crate) sh: Arc<Shared>,
}

/// What the stealing policy means for one runtime, worked out from the configuration once (in
/// [`Shared::new`]); every path that steals, wakes a thief or keeps per-color time reads it
/// from here.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stealing {
    /// Workers steal: a policy is on and there is another core to steal from.
    pub(crate) on: bool,
    /// The policy (its victim order is `steal::core_set`'s).
    pub(crate) policy: StealPolicy,
    /// Which colors of a victim a steal takes.
    pub(crate) choice: StealChoice,
    /// The queues keep per-color processing time (time-left, penalty, all).
    pub(crate) time_left: bool,
    /// That time is penalty-weighted (penalty, all).
    pub(crate) weighted: bool,
    /// Idle workers spin in the steal loop (`IdleMode::Spin`, and the runtime steals).
    pub(crate) spin: bool,
    /// How a libasync steal collects the chosen color's events.
    pub(crate) walk: StealWalk,
}

impl Stealing {
    /// The stealing of a runtime of `cfg.workers` cores under `cfg`'s policy.
    fn of(cfg: &RuntimeConfig) -> Stealing {
        let policy = cfg.stealing;
        let on = policy.enabled() && cfg.workers > 1;
        Stealing {
            on,
            policy,
            choice: StealChoice::of(policy, cfg.steal_amount),
            time_left: policy.time_left(),
            weighted: policy.penalty_weighted(),
            spin: on && cfg.idle == IdleMode::Spin,
            walk: cfg.steal_walk,
        }
    }
}

/// What all threads of a runtime share. Built once (by `Runtime::new`, the model or the
/// simulator) and never replaced; every field but the ones noted is immutable after start-up.
/// The fields are private: each role reaches what it needs through the accessors below.
pub(crate) struct Shared {
    /// The validated configuration.
    cfg: RuntimeConfig,
    /// The stealing policy, worked out once.
    stealing: Stealing,
    /// The color-to-core map (see `color`).
    map: ColorMap,
    /// Registered handlers and their profiles.
    registry: Registry,
    /// Each core's queue, of the configured design.
    queues: CoreSet,
    /// Each core's published queue length and owner's sleep state.
    states: Box<[CachePadded<CoreState>]>,
    /// What each worker publishes: counters and per-handler counts.
    published: Box<[WorkerPublished]>,
    /// Each worker's thread, set once the worker started (for unparking it).
    threads: Box<[OnceLock<Thread>]>,
    /// True once the runtime was asked to stop.
    shutdown: AtomicBool,
    /// Moving average of the measured cost of stealing one color (cycles): the time-left
    /// threshold.
    steal_cost_est: CachePadded<AtomicU64>,
    /// Searching and sleeping workers (the idle protocol).
    idle: Idle,
    /// CPU of each worker and victim order for locality-aware stealing.
    topology: Topology,
    /// The reactor, created by the first I/O registration or timer.
    reactor: OnceLock<Reactor>,
    /// The blocking-work pool, started on first use.
    blocking: OnceLock<BlockingPool>,
    /// Events dropped outside the workers: timers pending at shutdown.
    dropped_external: AtomicU64,
    /// Workers whose pinning failed (set once at start-up).
    unpinned: Mutex<Vec<Unpinned>>,
    /// Box every closure (the configuration's `EventStorage::Heap`).
    force_heap: bool,
    /// The cycle a trace window's seconds count from (the runtime's start).
    trace_origin: u64,
    /// The trace buffers of the workers that finished (each worker adds its own once, as it
    /// exits; read once by the runtime after joining them).
    traces: Mutex<Vec<colored_trace::TraceBuf>>,
}

/// Initial steal-cost estimate before any steal was measured (cycles).
const INITIAL_STEAL_COST: u64 = 2_000;

impl Shared {
    /// Shared state for a validated configuration, around core queues allocated by their
    /// workers (or by the caller, for the model). `topology` is the one the workers pin by.
    pub(crate) fn new(cfg: RuntimeConfig, queues: CoreSet, topology: Topology) -> Arc<Shared> {
        let n = cfg.workers;
        Arc::new(Shared {
            stealing: Stealing::of(&cfg),
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
            unpinned: Mutex::new(Vec::new()),
            force_heap: cfg.event_storage == crate::EventStorage::Heap,
            trace_origin: tsc::now(),
            traces: Mutex::new(Vec::new()),
            cfg,
        })
    }

    /// Core queues allocated on the calling thread (the model, which has no workers).
    pub(crate) fn local_queues(cfg: &RuntimeConfig) -> CoreSet {
        fn make<D: Design>(cfg: &RuntimeConfig) -> Queues<D> {
            (0..cfg.workers)
                .map(|_| CachePadded::new(CoreQueue::new(D::new(), cfg.lock)))
                .collect()
        }
        match cfg.queue {
            QueueKind::Libasync => CoreSet::Libasync(make(cfg)),
            QueueKind::Mely => CoreSet::Mely(make(cfg)),
        }
    }

    // Start-up (the runtime's, once).

    /// Record the workers whose pinning failed.
    pub(crate) fn set_unpinned(&self, unpinned: Vec<Unpinned>) {
        *self.unpinned.lock().unwrap_or_else(|e| e.into_inner()) = unpinned;
    }

    /// Record worker `w`'s thread (for unparking it).
    pub(crate) fn set_thread(&self, w: usize, t: Thread) {
        let _ = self.threads[w].set(t);
    }

    // Read-only parts.

    /// The validated configuration.
    pub(crate) fn config(&self) -> &RuntimeConfig {
        &self.cfg
    }

    /// The stealing policy, worked out once.
    #[inline]
    pub(crate) fn stealing(&self) -> &Stealing {
        &self.stealing
    }

    /// The color-to-core map.
    #[inline]
    pub(crate) fn map(&self) -> &ColorMap {
        &self.map
    }

    /// The handler registry.
    #[inline]
    /// The bound of a worker's trace buffer, or `None` when tracing is off.
    pub(crate) fn trace_bound(&self) -> Option<colored_trace::Bound> {
        Some(match self.cfg.trace? {
            crate::config::TraceSpec::Ring { capacity } => colored_trace::Bound::Ring { capacity },
            crate::config::TraceSpec::Window {
                from_secs,
                for_secs,
                capacity,
            } => colored_trace::Bound::window_secs(
                self.trace_origin,
                from_secs,
                for_secs,
                tsc::cycles_per_sec(),
                capacity,
            ),
        })
    }

    /// A finished worker's trace buffer.
    pub(crate) fn deposit_trace(&self, buf: colored_trace::TraceBuf) {
        self.traces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(buf);
    }

    /// The deposited trace buffers, ordered by core, taken once.
    pub(crate) fn take_traces(&self) -> Vec<colored_trace::TraceBuf> {
        let mut v = std::mem::take(&mut *self.traces.lock().unwrap_or_else(|e| e.into_inner()));
        v.sort_by_key(|b| b.core());
        v
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The cores' queues (run code on them with `with_queues!`).
    #[inline]
    pub(crate) fn queues(&self) -> &CoreSet {
        &self.queues
    }

    /// Core `w`'s published state (its queue length, a hint; its owner's sleep state).
    #[inline]
    pub(crate) fn state(&self, w: usize) -> &CoreState {
        &self.states[w]
    }

    /// Where worker `w` publishes its counters.
    #[inline]
    pub(crate) fn published(&self, w: usize) -> &WorkerPublished {
        &self.published[w]
    }

    /// Searching and sleeping workers.
    #[inline]
    pub(crate) fn idle(&self) -> &Idle {
        &self.idle
    }

    /// The machine's topology as the workers see it.
    pub(crate) fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Box every closure?
    #[inline]
    pub(crate) fn force_heap(&self) -> bool {
        self.force_heap
    }

    /// Local posts a running event buffers before flushing them under one lock.
    #[inline]
    pub(crate) fn post_batch(&self) -> usize {
        self.cfg.post_batch
    }

    // The steal-cost threshold.

    /// The time-left threshold now: the estimated cost of stealing one color (cycles).
    #[inline]
    pub(crate) fn steal_threshold(&self) -> u64 {
        self.steal_cost_est.load(Ordering::Relaxed)
    }

    /// Replace the threshold (by the thief that measured a steal: `steal::next_estimate`).
    pub(crate) fn set_steal_threshold(&self, est: u64) {
        self.steal_cost_est.store(est, Ordering::Relaxed);
    }

    // The reactor and the blocking pool, started on first use.

    /// The reactor, if one was started.
    #[inline]
    pub(crate) fn reactor(&self) -> Option<&Reactor> {
        self.reactor.get()
    }

    /// Install `r` as the reactor unless another thread did first; the reactor either way.
    pub(crate) fn install_reactor(&self, r: Reactor) -> &Reactor {
        let _ = self.reactor.set(r);
        self.reactor.get().expect("just set")
    }

    /// The blocking pool, started now if it was not.
    pub(crate) fn blocking_pool(&self) -> &BlockingPool {
        self.blocking
            .get_or_init(|| BlockingPool::start(self.cfg.blocking_threads))
    }

    // Shutdown.

    /// True once the runtime was asked to stop.
    #[inline]
    pub(crate) fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    /// Ask the runtime to stop: wake every worker, close the blocking pool, drop the pending
    /// timers (counted as dropped). False if it was asked before.
    pub(crate) fn begin_shutdown(&self) -> bool {
        if self.shutdown.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.wake_all();
        if let Some(b) = self.blocking.get() {
            b.close();
        }
        self.close_timers();
        true
    }

    /// Drop the pending timers and refuse new ones, counting them as dropped (at shutdown, and
    /// after a timer added while the runtime was stopping).
    pub(crate) fn close_timers(&self) {
        if let Some(r) = self.reactor.get() {
            let n = r.timers().close();
            self.dropped_external.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    // Role handles.

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

    // Events and the post protocol.

    /// What a push or a steal needs to know from the configuration and the threshold now.
    #[inline]
    pub(crate) fn params(&self) -> QueueParams {
        QueueParams {
            time_left: self.stealing.time_left,
            weighted: self.stealing.weighted,
            threshold: self.steal_threshold(),
            walk: self.stealing.walk,
        }
    }

    /// The cost estimates a new event of `handler` carries: they only feed time-left
    /// accounting, so the lookup is skipped otherwise.
    #[inline]
    pub(crate) fn costs(&self, handler: HandlerId) -> (u32, u32) {
        if self.stealing.time_left {
            self.registry.estimate(handler)
        } else {
            (0, 0)
        }
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
        // The worker flushing is awake: `pushed.wake` is `None` (its own state is running).
        if pushed.stealable {
            self.wake_thief_for(w);
        }
        for ev in spill {
            self.push_to_owner(queues, ev, Some(counters));
        }
    }

    /// Wake worker `w`, which was seen sleeping `how` (now marked notified).
    pub(crate) fn wake(&self, w: usize, how: Sleep) {
        match how {
            Sleep::Polling => {
                if let Some(r) = self.reactor.get() {
                    r.wake();
                }
            }
            Sleep::Parked => {
                if let Some(t) = self.threads[w].get() {
                    t.unpark();
                }
            }
        }
    }

    /// Core `c`'s queue now holds something to steal: wake a sleeping worker to take it, unless
    /// a worker is searching already (the rules are in `idle`).
    #[inline]
    pub(crate) fn wake_thief_for(&self, c: usize) {
        if self.stealing.on && self.idle.should_wake_thief() {
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

    /// Wake every worker, whatever it is doing (shutdown).
    fn wake_all(&self) {
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

    /// A snapshot of every counter.
    pub(crate) fn stats(&self) -> RuntimeStats {
        let mut workers: Vec<Counters> = self.published.iter().map(|p| p.counters.read()).collect();
        if let Some(w) = workers.first_mut() {
            w.dropped += self.dropped_external.load(Ordering::Relaxed);
        }
        RuntimeStats::from_parts(
            self.cfg.queue.as_str(),
            self.stealing.policy.as_str(),
            workers,
            handler_stats(&self.registry, &self.published),
            self.steal_cost_est.load(Ordering::Relaxed),
            self.unpinned
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            self.blocking.get().map_or(0, BlockingPool::panics),
        )
    }

    /// Move `color`'s slot (and its queued events, in order) to `core`.
    pub(crate) fn place(&self, color: Color, core: usize) -> Result<(), PlaceError> {
        if core >= self.cfg.workers {
            return Err(PlaceError::NoSuchCore(core));
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
                Some(Err(())) => return Err(PlaceError::Running(color)),
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
