//! The runtime: shared state, the post path (libasync-smp's `cpucb`), the public `Runtime` and
//! `Handle`.
//!
//! Post protocol (see `color` for the map invariant): read the slot's core from the map, lock
//! that core, re-read the map; if the slot moved meanwhile, unlock and retry; otherwise enqueue.
//! Under the same lock the poster reads the owner's sleep state and, if it is parked or blocked
//! in the reactor, marks it notified and wakes it after unlocking. Because the owner only decides
//! to sleep under its own lock after seeing an empty queue, no wake-up is lost.
//!
//! Shutdown: `shutdown` is set once; posts from outside the runtime then fail with
//! [`PostError::Shutdown`], posts from handlers are dropped and counted; every worker is woken,
//! finishes the batch it is running and exits; events still queued are dropped (their closures'
//! destructors run) and counted in `dropped`.

use crate::blocking::BlockingPool;
use crate::color::{Color, ColorMap};
use crate::config::{BuildError, QueueKind, RuntimeConfig};
use crate::ctx::Ctx;
use crate::event::{Event, Task};
use crate::handler::{HandlerId, HandlerSpec, Registry};
use crate::loom::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use crate::queue::libasync::LibasyncQueue;
use crate::queue::mely::MelyQueue;
use crate::queue::{state, CoreShared, Design, QueueParams};
use crate::reactor::Reactor;
use crate::stats::{handler_stats, Counters, RuntimeStats, WorkerPublished, LOCK_SAMPLE};
use crate::topology::Topology;
use crate::{tsc, worker};
use crossbeam_utils::CachePadded;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{JoinHandle, Thread};

/// Why an event could not be posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    #[error("the runtime is shut down")]
    Shutdown,
    #[error("the reactor could not be created: {0}")]
    Reactor(std::io::ErrorKind),
}

/// Why a color could not be placed on a core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PlaceError {
    #[error("core {0} does not exist")]
    NoSuchCore(usize),
    #[error("color {0} is running; it cannot move now")]
    Running(Color),
}

/// Called with `core`'s lock held after giving it work: if its worker sleeps (parked or blocked
/// in the reactor), mark it notified and return the state it slept in, for `Shared::wake` once
/// the lock is released. Only one poster gets `Some` per sleep.
fn claim_wake<D>(core: &CoreShared<D>) -> Option<u8> {
    let st = core.state.load(Ordering::Relaxed);
    if st == state::PARKED || st == state::POLLING {
        core.state.store(state::NOTIFIED, Ordering::Relaxed);
        Some(st)
    } else {
        None
    }
}

pub(crate) type Cores<D> = Box<[CachePadded<CoreShared<D>>]>;

pub(crate) enum CoreSet {
    Libasync(Cores<LibasyncQueue>),
    Mely(Cores<MelyQueue>),
}

/// Runs `$body` with `$c` bound to the concrete core slice.
macro_rules! with_cores {
    ($set:expr, $c:ident => $body:expr) => {
        match $set {
            $crate::runtime::CoreSet::Libasync($c) => $body,
            $crate::runtime::CoreSet::Mely($c) => $body,
        }
    };
}
pub(crate) use with_cores;

pub(crate) struct Shared {
    pub(crate) cfg: RuntimeConfig,
    pub(crate) map: ColorMap,
    pub(crate) registry: Registry,
    pub(crate) cores: CoreSet,
    pub(crate) published: Box<[WorkerPublished]>,
    pub(crate) threads: Box<[OnceLock<Thread>]>,
    pub(crate) shutdown: AtomicBool,
    /// Moving average of the measured cost of stealing one color (cycles): the time-left
    /// threshold.
    pub(crate) steal_cost_est: CachePadded<AtomicU64>,
    /// Workers parked in `thread::park`.
    pub(crate) parked: CachePadded<AtomicUsize>,
    pub(crate) topology: Topology,
    pub(crate) reactor: OnceLock<Reactor>,
    pub(crate) blocking: OnceLock<BlockingPool>,
    /// Events dropped by posts from outside workers after shutdown.
    pub(crate) dropped_external: AtomicU64,
    pub(crate) force_heap: bool,
    /// The stealing policy keeps per-color processing time (time-left, penalty, all).
    pub(crate) track_time: bool,
}

/// Initial steal-cost estimate before any steal was measured (cycles).
const INITIAL_STEAL_COST: u64 = 2_000;

impl Shared {
    /// Shared state for a validated configuration (no threads yet).
    pub(crate) fn new(cfg: RuntimeConfig) -> Arc<Shared> {
        let topology = Topology::detect(cfg.workers, cfg.pin);
        Shared::with_topology(cfg, topology)
    }

    /// Like `new`, on a given topology (the simulator's machine instead of this one).
    pub(crate) fn with_topology(cfg: RuntimeConfig, topology: Topology) -> Arc<Shared> {
        let n = cfg.workers;
        let cores = match cfg.queue {
            QueueKind::Libasync => CoreSet::Libasync(
                (0..n)
                    .map(|_| CachePadded::new(CoreShared::new()))
                    .collect(),
            ),
            QueueKind::Mely => CoreSet::Mely(
                (0..n)
                    .map(|_| CachePadded::new(CoreShared::new()))
                    .collect(),
            ),
        };
        Arc::new(Shared {
            map: ColorMap::new(n),
            registry: Registry::new(),
            cores,
            published: (0..n).map(|_| WorkerPublished::new()).collect(),
            threads: (0..n).map(|_| OnceLock::new()).collect(),
            shutdown: AtomicBool::new(false),
            steal_cost_est: CachePadded::new(AtomicU64::new(INITIAL_STEAL_COST)),
            parked: CachePadded::new(AtomicUsize::new(0)),
            topology,
            reactor: OnceLock::new(),
            blocking: OnceLock::new(),
            dropped_external: AtomicU64::new(0),
            force_heap: cfg.event_storage == crate::EventStorage::Heap,
            track_time: cfg.stealing.time_left(),
            cfg,
        })
    }

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
        with_cores!(&self.cores, c => self.push_on(c, ev, counters));
        Ok(())
    }

    #[inline]
    fn push_on<D: Design>(
        &self,
        cores: &[CachePadded<CoreShared<D>>],
        ev: Event,
        counters: Option<&mut Counters>,
    ) {
        let slot = ev.color().slot();
        let p = self.params();
        let timed = match &counters {
            Some(c) => c.lock_ops & (LOCK_SAMPLE - 1) == 0,
            None => false,
        };
        let t0 = if timed { tsc::now() } else { 0 };
        let mut c = self.map.get(slot);
        loop {
            let core = &cores[c];
            let mut q = core.queue.lock();
            let now_c = self.map.get(slot);
            if now_c != c {
                drop(q);
                c = now_c;
                continue;
            }
            let hint = q.push(ev, &p);
            core.len.store(q.len(), Ordering::Relaxed);
            let wake = claim_wake(core);
            drop(q);
            if let Some(c) = counters {
                c.lock_ops += 1;
                if timed {
                    c.lock_cycles += tsc::since(t0) * LOCK_SAMPLE;
                }
            }
            if let Some(st) = wake {
                self.wake(c, st);
            }
            if hint && self.cfg.stealing.enabled() && self.parked.load(Ordering::Relaxed) > 0 {
                self.wake_thief(c);
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
        with_cores!(&self.cores, c => self.flush_on(c, w, buf, counters))
    }

    fn flush_on<D: Design>(
        &self,
        cores: &[CachePadded<CoreShared<D>>],
        w: usize,
        buf: &mut Vec<Event>,
        counters: &mut Counters,
    ) {
        let p = self.params();
        let core = &cores[w];
        let timed = counters.lock_ops & (LOCK_SAMPLE - 1) == 0;
        counters.lock_ops += 1;
        let t0 = if timed { tsc::now() } else { 0 };
        let mut spill: Vec<Event> = Vec::new();
        let mut hint = false;
        {
            let mut q = core.queue.lock();
            for ev in buf.drain(..) {
                if self.map.get(ev.color().slot()) == w {
                    hint |= q.push(ev, &p);
                } else {
                    spill.push(ev);
                }
            }
            core.len.store(q.len(), Ordering::Relaxed);
        }
        if timed {
            counters.lock_cycles += tsc::since(t0) * LOCK_SAMPLE;
        }
        if hint && self.cfg.stealing.enabled() && self.parked.load(Ordering::Relaxed) > 0 {
            self.wake_thief(w);
        }
        for ev in spill {
            self.push_on(cores, ev, Some(counters));
        }
    }

    /// Wake worker `w`, which was seen in sleep state `st` (now marked notified).
    pub(crate) fn wake(&self, w: usize, st: u8) {
        if st == state::POLLING {
            if let Some(r) = self.reactor.get() {
                r.wake();
            }
        } else if let Some(t) = self.threads[w].get() {
            t.unpark();
        }
    }

    /// Wake one parked worker other than `except`, so it can try to steal.
    pub(crate) fn wake_thief(&self, except: usize) {
        with_cores!(&self.cores, c => {
            for (w, core) in c.iter().enumerate() {
                if w != except
                    && core.state.compare_exchange(state::PARKED, state::NOTIFIED, Ordering::AcqRel, Ordering::Relaxed).is_ok()
                {
                    self.wake(w, state::PARKED);
                    return;
                }
            }
        })
    }

    pub(crate) fn wake_all(&self) {
        with_cores!(&self.cores, c => {
            for (w, core) in c.iter().enumerate() {
                core.state.store(state::NOTIFIED, Ordering::Release);
                // Unpark unconditionally: a worker about to park consumes the token.
                if let Some(t) = self.threads[w].get() {
                    t.unpark();
                }
            }
        });
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
        )
    }

    /// Move `color`'s slot (and its queued events, in order) to `core`.
    fn place(&self, color: Color, core: usize) -> Result<(), PlaceError> {
        if core >= self.cfg.workers {
            return Err(PlaceError::NoSuchCore(core));
        }
        let slot = color.slot();
        let p = self.params();
        with_cores!(&self.cores, c => {
            loop {
                let from = self.map.get(slot);
                if from == core {
                    return Ok(());
                }
                let (mut g_src, mut g_dst) = crate::queue::lock_pair(c, from, core);
                if self.map.get(slot) != from {
                    continue;
                }
                if c[from].running.load(Ordering::Acquire) == slot as u32 {
                    return Err(PlaceError::Running(color));
                }
                let (src, dst) = (&mut *g_src, &mut *g_dst);
                let moved = Design::move_slot(src, dst, slot, &p);
                self.map.set(slot, core);
                c[from].len.store(src.len(), Ordering::Relaxed);
                c[core].len.store(dst.len(), Ordering::Relaxed);
                let wake = if moved > 0 { claim_wake(&c[core]) } else { None };
                drop(g_dst);
                drop(g_src);
                if let Some(st) = wake {
                    self.wake(core, st);
                }
                return Ok(());
            }
        })
    }
}

/// A handle to a runtime: post events, register handlers and I/O, read statistics. Cheap to
/// clone, usable from any thread.
#[derive(Clone)]
pub struct Handle {
    pub(crate) sh: Arc<Shared>,
}

impl Handle {
    /// Register a handler (at any time, from any thread).
    pub fn register(&self, spec: HandlerSpec) -> HandlerId {
        self.sh.registry.register(spec)
    }

    /// Post an event: `f` runs on the core that owns `color`, never at the same time as another
    /// event of `color`, after the events of `color` this thread posted before.
    #[inline]
    pub fn post<F>(&self, color: Color, handler: HandlerId, f: F) -> Result<(), PostError>
    where
        F: FnOnce(&mut Ctx<'_>) + Send + 'static,
    {
        let ev = self.sh.make_event(color, handler, f);
        self.sh.push(ev, None).map_err(|_| PostError::Shutdown)
    }

    /// Move a color (and its queued events) to `core`; new events of the color go there too.
    /// Fails if the color is running right now.
    pub fn place(&self, color: Color, core: usize) -> Result<(), PlaceError> {
        self.sh.place(color, core)
    }

    /// Place many colors, retrying those that are running until they are not.
    pub fn place_all(
        &self,
        colors: impl IntoIterator<Item = Color>,
        core: usize,
    ) -> Result<(), PlaceError> {
        for c in colors {
            loop {
                match self.place(c, core) {
                    Err(PlaceError::Running(_)) => std::thread::yield_now(),
                    other => {
                        other?;
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// The core that currently owns `color`.
    pub fn core_of(&self, color: Color) -> usize {
        self.sh.map.get(color.slot())
    }

    pub fn workers(&self) -> usize {
        self.sh.cfg.workers
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.sh.cfg
    }

    /// Where the cache topology used by locality-aware stealing came from ("hwloc" or "sysfs").
    pub fn topology_source(&self) -> &'static str {
        self.sh.topology.source()
    }

    /// A snapshot of every counter.
    pub fn stats(&self) -> RuntimeStats {
        self.sh.stats()
    }

    /// Ask the runtime to stop (idempotent, from any thread or handler).
    pub fn shutdown(&self) {
        if !self.sh.shutdown.swap(true, Ordering::AcqRel) {
            self.sh.wake_all();
            if let Some(b) = self.sh.blocking.get() {
                b.close();
            }
        }
    }

    pub fn is_shutdown(&self) -> bool {
        self.sh.is_shutdown()
    }
}

/// A running colored runtime. Dropping it shuts it down and joins its workers.
pub struct Runtime {
    handle: Handle,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Runtime {
    /// Build and start a runtime: one pinned worker per configured core.
    pub fn new(cfg: RuntimeConfig) -> Result<Runtime, BuildError> {
        cfg.validate()?;
        let n = cfg.workers;
        let sh = Shared::new(cfg);
        tsc::cycles_per_sec();
        tsc::overhead();
        let handle = Handle { sh };
        let mut threads = Vec::with_capacity(n);
        for w in 0..n {
            let h = handle.clone();
            let t = std::thread::Builder::new()
                .name(format!("colored-worker-{w}"))
                .spawn(move || worker::run(h, w));
            match t {
                Ok(t) => {
                    let _ = handle.sh.threads[w].set(t.thread().clone());
                    threads.push(t);
                }
                Err(e) => {
                    handle.shutdown();
                    for t in threads {
                        let _ = t.join();
                    }
                    return Err(BuildError::Spawn(e));
                }
            }
        }
        Ok(Runtime {
            handle,
            threads: Mutex::new(threads),
        })
    }

    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    pub fn register(&self, spec: HandlerSpec) -> HandlerId {
        self.handle.register(spec)
    }

    #[inline]
    pub fn post<F>(&self, color: Color, handler: HandlerId, f: F) -> Result<(), PostError>
    where
        F: FnOnce(&mut Ctx<'_>) + Send + 'static,
    {
        self.handle.post(color, handler, f)
    }

    pub fn stats(&self) -> RuntimeStats {
        self.handle.stats()
    }

    /// Wait until the runtime has been asked to stop (by [`Handle::shutdown`]) and its workers
    /// exited.
    pub fn join(&self) {
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }

    /// Stop the runtime and wait for its workers.
    pub fn shutdown(self) -> RuntimeStats {
        self.handle.shutdown();
        self.join();
        self.handle.stats()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.handle.shutdown();
        self.join();
    }
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("workers", &self.sh.cfg.workers)
            .finish()
    }
}
