//! The runtime driven step by step on virtual cores: the simulator's seam (`microbenches
//! simulate`). Not a stable API.
//!
//! Every step runs the runtime's real code on its real shared state (the color map, the handler
//! registry, each core's queue design behind its lock); there are no worker threads and nothing
//! here reads the cycle counter. The caller (the simulator's engine) owns the virtual clock: it
//! decides when each step happens, charges what it costs, and feeds the two inputs the policies
//! take from measurements with virtual values: the time-left threshold ([`SimRuntime::record_steal`]
//! runs `steal::next_estimate` on a virtual cost) and the handler profiles
//! ([`SimRuntime::profile`], the worker's moving average of a virtual duration).
//!
//! Steps, for virtual core `w`:
//! - owner: [`pop`](SimRuntime::pop) (the design's pop under `w`'s lock; the batch's slot becomes
//!   `w`'s running slot), [`run_next`](SimRuntime::run_next) (one event of the batch with a real
//!   [`Ctx`]: its posts to `w`'s own colors wait in `w`'s local buffer, as a worker's do),
//!   [`post_local`](SimRuntime::post_local) (an event built in that buffer, as `Ctx::post` does),
//!   [`flush`](SimRuntime::flush) (that buffer under one lock, `Shared::flush_local`),
//!   [`post_from`](SimRuntime::post_from) (a post from `w` to another core, `Shared::push`),
//!   [`finish_batch`](SimRuntime::finish_batch) (the running slot cleared);
//! - thief: [`core_set`](SimRuntime::core_set) (`steal::core_set`: the policy's victim order,
//!   the topology's for locality), [`steal_from`](SimRuntime::steal_from) (one victim: both
//!   locks, the design's steal with the policy's [`StealChoice`], the colors remapped while both
//!   are held: one iteration of `steal::try_steal`'s loop);
//! - idle: [`try_park`](SimRuntime::try_park), [`notified`](SimRuntime::notified),
//!   [`unpark`](SimRuntime::unpark): the worker's parking protocol; posters claim wake-ups through
//!   the real post path (`claim_wake`, `wake_thief`), and the engine sees the claim as a state
//!   that is no longer `PARKED`.
//!
//! Invariant (the color guarantee, as in the threaded runtime): between `pop` and `finish_batch`
//! the batch's slot is the core's running slot, so no thief takes it. The engine calls
//! `finish_batch` when the batch's last event has ended in virtual time, and runs a stolen
//! color's events only after the steal's virtual end, so one color never runs on two virtual
//! cores at once; the simulator checks this on every event.

use crate::color::Color;
use crate::config::{BuildError, RuntimeConfig, StealPolicy};
use crate::ctx::Ctx;
use crate::event::{Event, Task, FLAG_STOLEN};
use crate::handler::{HandlerId, HandlerSpec, EWMA_SHIFT, MAX_HANDLERS};
use crate::loom::Ordering;
use crate::queue::{lock_pair, state, CoreShared, Design, StealChoice, NOT_RUNNING};
use crate::runtime::{with_cores, Handle, Shared};
use crate::stats::Counters;
use crate::steal::{self, MAX_CORE_SET};
use crate::topology::{Machine, Topology};
use crossbeam_utils::CachePadded;
use std::collections::VecDeque;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

/// How long an idle worker naps between two steal attempts while it searches (the worker's
/// constant).
pub const SEARCH_NAP: Duration = crate::worker::SEARCH_NAP;

/// Local posts a `Ctx` buffers before it flushes them (`ctx::LOCAL_FLUSH`).
pub const LOCAL_FLUSH: usize = crate::ctx::LOCAL_FLUSH;

/// One event that [`SimRuntime::run_next`] ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ran {
    pub handler: HandlerId,
    pub color: Color,
    /// It reached this core by a steal (its time counts as stolen time).
    pub stolen: bool,
    /// Its closure panicked (caught, as a worker catches it).
    pub panicked: bool,
}

/// What one victim gave a thief ([`SimRuntime::steal_from`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StealTry {
    /// Not locked: the design reads the published length first and it was 0 (Mely).
    Skipped,
    /// Both locks taken, nothing worth taking.
    Failed {
        /// Events queued on the victim when it was examined.
        victim_len: usize,
    },
    /// Both locks taken, colors moved and remapped to the thief.
    Stole {
        colors: usize,
        events: usize,
        /// Events queued on the victim before the steal.
        victim_len: usize,
    },
}

/// A virtual core's private state: what a worker keeps on its stack and in `Worker`.
struct SimCore {
    /// The counters the real paths account into (lock operations, drops).
    counters: Counters,
    /// The popped batch not yet run, oldest first.
    batch: VecDeque<Event>,
    /// Where the design's pop writes the batch.
    pop_buf: Vec<Event>,
    /// Posts of the running event to this core's own colors, until [`SimRuntime::flush`].
    local_buf: Vec<Event>,
    /// Per-handler moving average of virtual cycles per event (the worker's profile).
    ewma: Box<[u64]>,
    /// True while this core is parked (between `try_park` and `unpark`).
    parked: bool,
}

/// A runtime's shared state with virtual cores instead of worker threads (see the module doc).
pub struct SimRuntime {
    handle: Handle,
    cores: Vec<SimCore>,
}

impl SimRuntime {
    /// The shared state for `cfg` (validated like `Runtime::new`; never pinned) on `machine`: its
    /// topology gives the locality order of `cfg.workers` virtual cores.
    pub fn new(mut cfg: RuntimeConfig, machine: &Machine) -> Result<SimRuntime, BuildError> {
        cfg.pin = false;
        cfg.validate()?;
        let topology = Topology::for_machine(machine, cfg.workers);
        let n = cfg.workers;
        let batch = cfg.batch;
        let handle = Handle {
            sh: Shared::with_topology(cfg, topology),
        };
        let cores = (0..n)
            .map(|_| SimCore {
                counters: Counters::default(),
                batch: VecDeque::with_capacity(batch),
                pop_buf: Vec::with_capacity(batch),
                local_buf: Vec::new(),
                ewma: vec![0; MAX_HANDLERS].into_boxed_slice(),
                parked: false,
            })
            .collect();
        Ok(SimRuntime { handle, cores })
    }

    /// The runtime's handle: register handlers, post from outside, place colors, read the map.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    pub fn register(&self, spec: HandlerSpec) -> HandlerId {
        self.handle.register(spec)
    }

    pub fn workers(&self) -> usize {
        self.cores.len()
    }

    pub fn stealing(&self) -> StealPolicy {
        self.handle.sh.cfg.stealing
    }

    /// Whether the design's thieves skip a victim whose published length is 0 without locking
    /// it (`Design::PEEKS_LENGTH`).
    pub fn peeks_length(&self) -> bool {
        with_cores!(&self.handle.sh.cores, c => peeks(c))
    }

    /// Events queued on core `w` (its published length).
    pub fn queued(&self, w: usize) -> usize {
        with_cores!(&self.handle.sh.cores, c => c[w].len.load(Ordering::Relaxed))
    }

    /// The slot core `w` is running, if any.
    pub fn running(&self, w: usize) -> Option<usize> {
        let r = with_cores!(&self.handle.sh.cores, c => c[w].running.load(Ordering::Relaxed));
        (r != NOT_RUNNING).then_some(r as usize)
    }

    /// Owner step: pop core `w`'s next batch (the design's pop, `cfg.batch` at most, under `w`'s
    /// lock) and mark its slot running. Returns how many events it holds; `None` when the queue
    /// was empty. The previous batch must have been finished.
    pub fn pop(&mut self, w: usize) -> Option<usize> {
        let sh: &Shared = &self.handle.sh;
        let core = &mut self.cores[w];
        assert!(
            core.batch.is_empty(),
            "core {w}: the previous batch is not finished"
        );
        let p = sh.params();
        let slot = with_cores!(&sh.cores, c => {
            let cs = &c[w];
            let mut q = cs.queue.lock();
            let s = q.pop(&mut core.pop_buf, sh.cfg.batch, &p);
            if let Some(s) = s {
                cs.running.store(s as u32, Ordering::Relaxed);
                cs.len.store(q.len(), Ordering::Relaxed);
            }
            s
        });
        slot?;
        core.batch.extend(core.pop_buf.drain(..));
        Some(core.batch.len())
    }

    /// Events of the popped batch not run yet.
    pub fn batch_left(&self, w: usize) -> usize {
        self.cores[w].batch.len()
    }

    /// Owner step: run the batch's next event on core `w` with a real `Ctx`. Its posts to colors
    /// `w` owns stay in `w`'s local buffer ([`flush`](Self::flush) enqueues them), unless the
    /// `Ctx` flushes them itself (a full buffer, or a post to another core, which goes straight
    /// through the post path). `None` when the batch is done.
    pub fn run_next(&mut self, w: usize) -> Option<Ran> {
        let sh: &Shared = &self.handle.sh;
        let core = &mut self.cores[w];
        let ev = core.batch.pop_front()?;
        let (handler, flags, color) = (ev.handler(), ev.flags(), ev.color());
        // The task is consumed below; the rest of an event is plain data, so not dropping it
        // leaks nothing.
        let mut ev = ManuallyDrop::new(ev);
        let task: *mut Task = &mut ev.task;
        let ok = {
            let mut ctx = Ctx::new(
                sh,
                &self.handle,
                w,
                color,
                &mut core.counters,
                core.batch.len(),
                &mut core.local_buf,
            );
            // SAFETY: `task` points into `ev`, a live event this function owns and never
            // touches again (it is `ManuallyDrop`), so the task is run exactly once and never
            // dropped after; a panicking closure is dropped by the unwinding inside
            // `run_in_place`.
            catch_unwind(AssertUnwindSafe(|| unsafe {
                Task::run_in_place(task, &mut ctx)
            }))
            .is_ok()
        };
        if !ok {
            core.counters.panics += 1;
        }
        core.counters.events += 1;
        Some(Ran {
            handler: HandlerId(handler),
            color,
            stolen: flags & FLAG_STOLEN != 0,
            panicked: !ok,
        })
    }

    /// Posts waiting in core `w`'s local buffer.
    pub fn buffered(&self, w: usize) -> usize {
        self.cores[w].local_buf.len()
    }

    /// Owner step: enqueue core `w`'s local buffer under one lock (events whose color moved away
    /// go to their new core). Returns how many events it held.
    pub fn flush(&mut self, w: usize) -> usize {
        let core = &mut self.cores[w];
        let n = core.local_buf.len();
        self.handle
            .sh
            .flush_local(w, &mut core.local_buf, &mut core.counters);
        n
    }

    /// A post from a handler on core `w` to a color `w` owns: the event is built in `w`'s local
    /// buffer, as `Ctx::post` builds it; [`flush`](Self::flush) enqueues it.
    pub fn post_local<F>(&mut self, w: usize, color: Color, handler: HandlerId, f: F)
    where
        F: FnOnce(&mut Ctx<'_>) + Send + 'static,
    {
        let sh: &Shared = &self.handle.sh;
        sh.push_new_event(&mut self.cores[w].local_buf, color, handler, f);
    }

    /// A post from a handler on core `w` to a color another core owns: the real post path (map
    /// read, lock, re-read, enqueue, wake claim), as `Ctx::post` does for such a post. False if
    /// the runtime was shut down (the event is dropped).
    pub fn post_from<F>(&mut self, w: usize, color: Color, handler: HandlerId, f: F) -> bool
    where
        F: FnOnce(&mut Ctx<'_>) + Send + 'static,
    {
        let sh: &Shared = &self.handle.sh;
        let core = &mut self.cores[w];
        let ev = sh.make_event(color, handler, f);
        let ok = sh.push(ev, Some(&mut core.counters)).is_ok();
        if !ok {
            core.counters.dropped += 1;
        }
        ok
    }

    /// Owner step: the batch's last event ended; clear core `w`'s running slot.
    pub fn finish_batch(&mut self, w: usize) {
        assert!(
            self.cores[w].batch.is_empty(),
            "core {w}: batch finished with events left"
        );
        with_cores!(&self.handle.sh.cores, c => c[w].running.store(NOT_RUNNING, Ordering::Release));
    }

    /// Feed a handler's profile: core `w` ran an event of `handler` for `cycles` virtual cycles.
    /// The worker's moving average (weight 1/2^EWMA_SHIFT), published to the registry at every
    /// event (a worker times one event in 64 because reading the clock costs; a virtual clock
    /// costs nothing). Annotated handlers keep their annotation, as in the threaded runtime.
    pub fn profile(&mut self, w: usize, handler: HandlerId, cycles: u64) {
        let h = handler.index();
        let e = &mut self.cores[w].ewma[h];
        *e = if *e == 0 {
            cycles
        } else {
            *e - (*e >> EWMA_SHIFT) + (cycles >> EWMA_SHIFT)
        };
        self.handle
            .sh
            .registry
            .get(handler)
            .avg_cycles
            .store(*e, Ordering::Relaxed);
    }

    /// Thief step: the victims core `thief` examines in one stealing round, in order, itself
    /// left out (`steal::core_set` on the published lengths).
    pub fn core_set(&self, thief: usize) -> Vec<usize> {
        let sh: &Shared = &self.handle.sh;
        let mut buf = [0usize; MAX_CORE_SET];
        with_cores!(&sh.cores, c => {
            steal::core_set(
                sh.cfg.stealing,
                thief,
                c.len(),
                |v| c[v].len.load(Ordering::Relaxed),
                &sh.topology,
                &mut buf,
            )
            .iter()
            .copied()
            .filter(|&v| v != thief)
            .collect()
        })
    }

    /// Thief step: core `thief` tries victim `victim` once, as one iteration of the runtime's
    /// stealing round (skip an empty victim unlocked if the design peeks; lock both in index
    /// order; the design's steal with the policy's choice; remap the moved colors to the thief
    /// under both locks; publish both lengths). Counts are left to the caller (virtual costs).
    pub fn steal_from(&mut self, thief: usize, victim: usize) -> StealTry {
        let sh: &Shared = &self.handle.sh;
        assert_ne!(thief, victim, "a core does not steal from itself");
        with_cores!(&sh.cores, c => steal_one(sh, c, thief, victim))
    }

    /// A successful steal kept the victim locked `cost` virtual cycles and moved `colors` colors:
    /// update the time-left threshold with the runtime's moving average.
    pub fn record_steal(&mut self, cost: u64, colors: usize) {
        let est = &self.handle.sh.steal_cost_est;
        let next = steal::next_estimate(est.load(Ordering::Relaxed), cost, colors);
        est.store(next, Ordering::Relaxed);
    }

    /// The time-left threshold now (the estimated cost of stealing one color, cycles).
    pub fn steal_threshold(&self) -> u64 {
        self.handle.sh.steal_cost_est.load(Ordering::Relaxed)
    }

    /// Idle step: the worker's parking check (under `w`'s lock: nothing queued, so `w` becomes
    /// `PARKED` and counts as parked). False when there is work (the caller runs it instead).
    pub fn try_park(&mut self, w: usize) -> bool {
        let sh: &Shared = &self.handle.sh;
        let parked = with_cores!(&sh.cores, c => {
            let q = c[w].queue.lock();
            if q.len() > 0 || sh.is_shutdown() {
                false
            } else {
                c[w].state.store(state::PARKED, Ordering::Relaxed);
                sh.parked.fetch_add(1, Ordering::SeqCst);
                true
            }
        });
        self.cores[w].parked = parked;
        parked
    }

    /// Whether parked core `w` has been woken (a poster or a stealable post claimed it).
    pub fn notified(&self, w: usize) -> bool {
        let st = with_cores!(&self.handle.sh.cores, c => c[w].state.load(Ordering::Acquire));
        self.cores[w].parked && st != state::PARKED
    }

    /// Parked core `w` resumes (the end of the worker's `park`).
    pub fn unpark(&mut self, w: usize) {
        assert!(self.cores[w].parked, "core {w} is not parked");
        self.cores[w].parked = false;
        let sh: &Shared = &self.handle.sh;
        sh.parked.fetch_sub(1, Ordering::SeqCst);
        with_cores!(&sh.cores, c => c[w].state.store(state::RUNNING, Ordering::Relaxed));
    }
}

fn peeks<D: Design>(_: &[CachePadded<CoreShared<D>>]) -> bool {
    D::PEEKS_LENGTH
}

/// One victim of a stealing round (see [`SimRuntime::steal_from`]); the body of `try_steal`'s
/// loop without its clock readings.
fn steal_one<D: Design>(
    sh: &Shared,
    cores: &[CachePadded<CoreShared<D>>],
    thief: usize,
    victim: usize,
) -> StealTry {
    if D::PEEKS_LENGTH && cores[victim].len.load(Ordering::Relaxed) == 0 {
        return StealTry::Skipped;
    }
    let choice = StealChoice::of(sh.cfg.stealing, sh.cfg.steal_amount);
    let p = sh.params();
    let (mut g_victim, mut g_thief) = lock_pair(cores, victim, thief);
    let (v, t) = (&mut *g_victim, &mut *g_thief);
    let victim_len = v.len();
    let running = cores[victim].running.load(Ordering::Acquire);
    let res = D::steal(v, t, running, choice, &p, &mut |slot| {
        sh.map.set(slot, thief)
    });
    match res {
        Some(s) => {
            cores[victim].len.store(v.len(), Ordering::Relaxed);
            cores[thief].len.store(t.len(), Ordering::Relaxed);
            StealTry::Stole {
                colors: s.colors,
                events: s.events,
                victim_len,
            }
        }
        None => StealTry::Failed { victim_len },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::QueueKind;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    fn sim(queue: QueueKind, stealing: StealPolicy, machine: &str, n: usize) -> SimRuntime {
        let cfg = RuntimeConfig {
            workers: n,
            queue,
            stealing,
            ..Default::default()
        };
        SimRuntime::new(cfg, &Machine::builtin(machine).unwrap()).unwrap()
    }

    /// Run every batch queued on `w` to the end (pop, run, flush, finish).
    fn drain(s: &mut SimRuntime, w: usize) -> usize {
        let mut ran = 0;
        while s.pop(w).is_some() {
            while s.run_next(w).is_some() {
                s.flush(w);
                ran += 1;
            }
            s.finish_batch(w);
        }
        ran
    }

    /// `locality` and `all` examine victims in the topology's neighbour order (the paper's
    /// machine: the L2 partner, the package, the other package); `base` and `time-left` start at
    /// the most loaded core.
    #[test]
    fn locality_policies_use_the_topology_order() {
        for policy in [StealPolicy::Locality, StealPolicy::All] {
            let s = sim(QueueKind::Mely, policy, "e5410", 8);
            assert_eq!(s.core_set(0), vec![1, 2, 3, 4, 5, 6, 7], "{policy}");
            assert_eq!(s.core_set(6), vec![7, 4, 5, 0, 1, 2, 3], "{policy}");
        }
        let m = Machine::builtin("numa2").unwrap();
        let s = sim(QueueKind::Mely, StealPolicy::All, "numa2", 16);
        assert_eq!(s.core_set(9), m.neighbours(16, 9));
        for policy in [StealPolicy::Base, StealPolicy::TimeLeft] {
            let mut s = sim(QueueKind::Mely, policy, "e5410", 8);
            let h = s.register(HandlerSpec::new("h"));
            // Colors 5 and 13 map to core 5: it becomes the most loaded core.
            for c in [5, 13] {
                s.handle().post(Color(c), h, |_| {}).unwrap();
            }
            assert_eq!(s.core_set(0), vec![5, 6, 7, 1, 2, 3, 4], "{policy}");
            drain(&mut s, 5);
        }
    }

    /// A locality thief takes from its L2 partner although a distant core holds more.
    #[test]
    fn locality_thief_prefers_the_l2_partner() {
        let mut s = sim(QueueKind::Mely, StealPolicy::Locality, "e5410", 8);
        let h = s.register(HandlerSpec::new("h"));
        for c in [1u32, 9, 4, 12, 20, 28] {
            s.handle().post(Color(c), h, |_| {}).unwrap();
        }
        assert_eq!((s.queued(1), s.queued(4)), (2, 4));
        assert_eq!(
            s.steal_from(0, 2),
            StealTry::Skipped,
            "empty victim, not locked"
        );
        let order = s.core_set(0);
        let victim = order.iter().copied().find(|&v| s.queued(v) > 0).unwrap();
        assert_eq!(victim, 1);
        assert!(matches!(
            s.steal_from(0, victim),
            StealTry::Stole { colors: 1, .. }
        ));
        assert_eq!(
            s.handle().core_of(Color(1)),
            0,
            "the stolen color is remapped"
        );
    }

    /// A popped batch's color is running until `finish_batch`: no thief takes it, and its
    /// children posted meanwhile stay behind it.
    #[test]
    fn a_running_batch_is_never_stolen() {
        for queue in [QueueKind::Libasync, QueueKind::Mely] {
            let mut s = sim(queue, StealPolicy::Base, "e5410", 2);
            let h = s.register(HandlerSpec::new("h"));
            let order = Arc::new(std::sync::Mutex::new(Vec::new()));
            for i in 0..3 {
                let o = order.clone();
                s.handle()
                    .post(Color(2), h, move |_| o.lock().unwrap().push(i))
                    .unwrap();
            }
            for c in [4, 6] {
                s.handle().post(Color(c), h, |_| {}).unwrap();
            }
            let n = s.pop(0).unwrap();
            assert_eq!(s.running(0), Some(2));
            // Steal until nothing is left to take: colors 4 (and, from libasync's FIFO, 6) go,
            // color 2 never does, although libasync still queues two of its events.
            let mut stolen = 0;
            while let StealTry::Stole { colors: 1, .. } = s.steal_from(1, 0) {
                stolen += 1;
            }
            assert!(stolen >= 1, "{queue:?}");
            assert_eq!(s.handle().core_of(Color(4)), 1, "{queue:?}");
            assert_eq!(
                s.handle().core_of(Color(2)),
                0,
                "{queue:?}: running color stolen"
            );
            for _ in 0..n {
                s.run_next(0).unwrap();
            }
            s.finish_batch(0);
            assert_eq!(s.running(0), None);
            drain(&mut s, 0);
            drain(&mut s, 1);
            assert_eq!(*order.lock().unwrap(), vec![0, 1, 2], "{queue:?}");
        }
    }

    /// Children go to the local buffer and reach the queue at `flush`; a post to another core's
    /// color goes through the post path at once.
    #[test]
    fn local_posts_wait_for_the_flush() {
        let mut s = sim(QueueKind::Mely, StealPolicy::Off, "e5410", 2);
        let h = s.register(HandlerSpec::new("h"));
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        s.handle()
            .post(Color(2), h, move |ctx| {
                for c in [4u32, 6, 8] {
                    let r = r.clone();
                    ctx.post(
                        Color(c),
                        ctx.handle().register(HandlerSpec::new("x")),
                        move |_| {
                            r.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        },
                    );
                }
            })
            .unwrap();
        s.pop(0).unwrap();
        let ev = s.run_next(0).unwrap();
        assert_eq!((ev.color, ev.stolen, ev.panicked), (Color(2), false, false));
        assert_eq!((s.buffered(0), s.queued(0)), (3, 0));
        assert_eq!(s.flush(0), 3);
        assert_eq!(s.queued(0), 3);
        s.finish_batch(0);
        let r = ran.clone();
        assert!(s.post_from(0, Color(3), h, move |_| {
            r.fetch_add(10, std::sync::atomic::Ordering::Relaxed);
        }));
        assert_eq!(s.queued(1), 1);
        assert_eq!(drain(&mut s, 0) + drain(&mut s, 1), 4);
        assert_eq!(ran.load(std::sync::atomic::Ordering::Relaxed), 13);
    }

    /// Parking: refused while work is queued; a post to a parked core's color claims its
    /// wake-up; with stealing on, a stealable post also wakes a parked thief.
    #[test]
    fn park_and_wake() {
        let mut s = sim(QueueKind::Mely, StealPolicy::Base, "e5410", 2);
        let h = s.register(HandlerSpec::new("h"));
        assert!(s.try_park(1));
        assert!(!s.notified(1));
        s.handle().post(Color(1), h, |_| {}).unwrap();
        assert!(s.notified(1), "a post to its color wakes it");
        s.unpark(1);
        assert!(!s.try_park(1), "work queued: no parking");
        drain(&mut s, 1);
        assert!(s.try_park(1));
        s.handle().post(Color(2), h, |_| {}).unwrap();
        assert!(!s.notified(1), "one color on core 0: nothing to steal");
        s.handle().post(Color(4), h, |_| {}).unwrap();
        assert!(s.notified(1), "two colors on core 0: the thief is woken");
        s.unpark(1);
    }

    /// The threshold follows the runtime's moving average of the virtual costs fed to it, and
    /// unannotated handlers get their profile from virtual durations.
    #[test]
    fn virtual_costs_feed_the_policies() {
        let mut s = sim(QueueKind::Mely, StealPolicy::TimeLeft, "e5410", 2);
        let t0 = s.steal_threshold();
        s.record_steal(800, 1);
        assert_eq!(s.steal_threshold(), steal::next_estimate(t0, 800, 1));
        let h = s.register(HandlerSpec::new("profiled"));
        let a = s.register(HandlerSpec::new("annotated").cost_cycles(500));
        s.profile(0, h, 40_000);
        s.profile(0, h, 40_000);
        s.profile(0, a, 40_000);
        let reg = &s.handle().sh.registry;
        assert_eq!(reg.estimate(h).0, 40_000);
        assert_eq!(reg.estimate(a).0, 500);
    }
}
