//! A worker: one thread per core, pinned, running its core's queue.
//!
//! Loop: pop a batch (Mely: up to `batch` events of one color; libasync: one event) under the
//! core lock and mark its slot running; run the batch, timing a sample of the events with the
//! cycle counter (all stolen ones); clear the running slot. With nothing queued, try to steal (if a policy is on) for up
//! to `steal_spin_us`, then park.
//!
//! Parking: the worker takes its own lock, checks the queue is empty, stores `PARKED` and
//! releases the lock; then it parks until its state is no longer `PARKED`. A poster reads the
//! state under the same lock, so either it sees `PARKED` (and unparks; the unpark token makes a
//! late `park` return at once) or the worker sees the event. Nothing spins while idle.

use crate::ctx::Ctx;
use crate::event::{Event, FLAG_STOLEN};
use crate::handler::{HandlerId, EWMA_SHIFT, MAX_HANDLERS};
use crate::loom::Ordering;
use crate::queue::{state, CoreShared, Design, NOT_RUNNING};
use crate::runtime::{with_cores, Handle, Shared};
use crate::stats::{Counters, LOCK_SAMPLE};
use crate::{steal, tsc};
use crossbeam_utils::CachePadded;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Publish counters after this many batches (and always before idling).
const PUBLISH_EVERY: u32 = 64;
/// Every handler's first runs on a worker are all timed, then one in `SAMPLE_EVERY`: reading the
/// cycle counter costs ~20 ns on some virtual machines, more than a whole short event, so timing
/// every event would double the dispatch cost.
const SAMPLE_WARMUP: u32 = 16;
const SAMPLE_EVERY: u32 = 64;
/// How long a searching thief sleeps between steal attempts.
pub(crate) const SEARCH_NAP: std::time::Duration = std::time::Duration::from_micros(20);

pub(crate) fn run(h: Handle, w: usize) {
    // Pin first, then allocate this worker's state so it is local to its core.
    h.sh.topology.pin_current(w);
    with_cores!(&h.sh.cores, c => Worker::new(&h, c, w).run());
}

pub(crate) struct Worker<'a, D: Design> {
    h: &'a Handle,
    sh: &'a Shared,
    cores: &'a [CachePadded<CoreShared<D>>],
    w: usize,
    counters: Counters,
    batch: Vec<Event>,
    /// Per-handler moving average of cycles per event, published on every timed run during the
    /// warm-up, then on every fourth.
    ewma: Box<[u64]>,
    runs: Box<[u32]>,
    /// Runs per handler not yet added to the published per-handler counts (they are published
    /// with each timed run and whenever the worker publishes its counters).
    unrecorded: Box<[u32]>,
    since_publish: u32,
    spin_cycles: u64,
    local_buf: Vec<Event>,
    /// When the worker started: busy cycles are wall cycles minus idle cycles.
    start: u64,
}

impl<'a, D: Design> Worker<'a, D> {
    pub(crate) fn new(h: &'a Handle, cores: &'a [CachePadded<CoreShared<D>>], w: usize) -> Self {
        let sh = &*h.sh;
        Worker {
            h,
            sh,
            cores,
            w,
            counters: Counters::default(),
            batch: Vec::with_capacity(sh.cfg.batch.max(1)),
            ewma: vec![0; MAX_HANDLERS].into_boxed_slice(),
            runs: vec![0; MAX_HANDLERS].into_boxed_slice(),
            unrecorded: vec![0; MAX_HANDLERS].into_boxed_slice(),
            since_publish: 0,
            local_buf: Vec::with_capacity(crate::ctx::LOCAL_FLUSH),
            spin_cycles: (sh.cfg.steal_spin_us as f64 * tsc::cycles_per_sec() / 1e6) as u64,
            start: tsc::now(),
        }
    }

    fn run(mut self) {
        while !self.sh.is_shutdown() {
            if !self.run_batch() {
                self.idle();
            }
        }
        // Shutdown: drop what is still queued here.
        let dropped = {
            let mut q = self.cores[self.w].queue.lock();
            let n = q.clear();
            self.cores[self.w].len.store(0, Ordering::Relaxed);
            n
        };
        self.counters.dropped += dropped as u64;
        self.publish();
    }

    /// The worker's counters so far (for the step-by-step model).
    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    pub(crate) fn publish(&mut self) {
        self.since_publish = 0;
        let published = &self.sh.published[self.w];
        let n = self.sh.registry.len().min(MAX_HANDLERS);
        for (h, pending) in self.unrecorded[..n].iter_mut().enumerate() {
            if *pending > 0 {
                published.record_handler(h, *pending as u64, None, false);
                *pending = 0;
            }
        }
        self.counters.busy_cycles = tsc::now()
            .wrapping_sub(self.start)
            .saturating_sub(self.counters.idle_cycles);
        self.sh.published[self.w].counters.publish(&self.counters);
    }

    /// Pop and run one batch; false if the queue was empty.
    pub(crate) fn run_batch(&mut self) -> bool {
        let core = &self.cores[self.w];
        let p = self.sh.params();
        let timed = self.counters.lock_ops & (LOCK_SAMPLE - 1) == 0;
        self.counters.lock_ops += 1;
        let t0 = if timed { tsc::now() } else { 0 };
        let popped = {
            let mut q = core.queue.lock();
            let s = q.pop(&mut self.batch, self.sh.cfg.batch, &p);
            if let Some(s) = s {
                core.running.store(s as u32, Ordering::Relaxed);
                core.len.store(q.len(), Ordering::Relaxed);
            }
            s
        };
        if timed {
            self.counters.lock_cycles += tsc::since(t0) * LOCK_SAMPLE;
        }
        if popped.is_none() {
            return false;
        }
        let n = self.batch.len();
        let base = self.batch.as_mut_ptr();
        // SAFETY: the length drops to 0 before any event runs, so the vector no longer owns the
        // `n` events; `run_event` consumes each exactly once, in place (its task runs where the
        // pop put it; the rest of an event is plain data). Nothing touches `self.batch` while
        // they run (handlers post into `local_buf`; only this function and the pop above use
        // the batch), so `base` stays valid. A panic escaping between events (not a handler's:
        // those are caught) would leak the rest, never drop them twice. (The vector stays in
        // place: moving it out and back cost a stack round trip per batch.)
        unsafe { self.batch.set_len(0) };
        for i in 0..n {
            // SAFETY: `i < n`: element `i` is initialised and not consumed yet.
            unsafe { self.run_event(base.add(i), n - 1 - i) };
        }
        core.running.store(NOT_RUNNING, Ordering::Release);
        self.since_publish += 1;
        if self.since_publish >= PUBLISH_EVERY {
            self.publish();
        }
        true
    }

    /// Run the event at `ev` and account it.
    ///
    /// # Safety
    /// `ev` points to an initialised event the caller owns and never reads, runs or drops again.
    #[inline]
    unsafe fn run_event(&mut self, ev: *mut Event, local_pending: usize) {
        // SAFETY: `ev` is initialised (caller's contract); these fields are plain data.
        let (h, flags, color) = unsafe { ((*ev).handler() as usize, (*ev).flags(), (*ev).color()) };
        let stolen = flags & FLAG_STOLEN != 0;
        let runs = self.runs[h].wrapping_add(1);
        self.runs[h] = runs;
        // Stolen events are always timed (stolen time is a reported figure); others sampled.
        let sample = stolen || runs <= SAMPLE_WARMUP || runs % SAMPLE_EVERY == 0;
        let start = if sample { tsc::now() } else { 0 };
        let ok = {
            let mut ctx = Ctx::new(
                self.sh,
                self.h,
                self.w,
                color,
                &mut self.counters,
                local_pending,
                &mut self.local_buf,
            );
            // SAFETY: the task is live and consumed here exactly once (caller's contract).
            let task = unsafe { std::ptr::addr_of_mut!((*ev).task) };
            // SAFETY: `task` is live and run exactly once, here; nothing touches it afterwards.
            let ok = catch_unwind(AssertUnwindSafe(|| unsafe {
                crate::event::Task::run_in_place(task, &mut ctx)
            }))
            .is_ok();
            ctx.flush();
            (ok, ctx.blocked_cycles)
        };
        let (ok, blocked) = ok;
        let dt = if sample {
            Some(tsc::since(start).saturating_sub(blocked))
        } else {
            None
        };
        let c = &mut self.counters;
        c.events += 1;
        if !ok {
            c.panics += 1;
        }
        self.unrecorded[h] += 1;
        if dt.is_some() || !ok {
            let events = std::mem::take(&mut self.unrecorded[h]) as u64;
            self.sh.published[self.w].record_handler(h, events, dt, !ok);
        }
        if let Some(dt) = dt {
            if stolen {
                c.stolen_time_cycles += dt;
                c.stolen_events += 1;
            }
            let e = &mut self.ewma[h];
            *e = if *e == 0 {
                dt
            } else {
                *e - (*e >> EWMA_SHIFT) + (dt >> EWMA_SHIFT)
            };
            if runs <= SAMPLE_WARMUP || runs % (SAMPLE_EVERY * 4) == 0 {
                self.sh
                    .registry
                    .get(HandlerId(h as u16))
                    .avg_cycles
                    .store(*e, Ordering::Relaxed);
            }
        }
    }

    fn idle(&mut self) {
        let t0 = tsc::now();
        self.publish();
        if self.sh.cfg.stealing.enabled() && self.cores.len() > 1 {
            // Search for work to steal for up to `steal_spin_us`. Between attempts the worker
            // naps (SEARCH_NAP) instead of spinning: on virtual machines a spinning vCPU slows
            // its sibling, and a searching worker is not PARKED, so posters never pay a futex
            // wake-up (an IPI, several microseconds in a VM) for it. A post to its own queue
            // waits at most one nap.
            loop {
                if steal::try_steal(self.sh, self.cores, self.w, &mut self.counters) {
                    self.counters.idle_cycles += tsc::now().wrapping_sub(t0);
                    return;
                }
                if self.cores[self.w].len.load(Ordering::Relaxed) > 0 || self.sh.is_shutdown() {
                    self.counters.idle_cycles += tsc::now().wrapping_sub(t0);
                    return;
                }
                if tsc::now().wrapping_sub(t0) > self.spin_cycles {
                    break;
                }
                std::thread::park_timeout(SEARCH_NAP);
            }
        }
        self.park();
        self.counters.idle_cycles += tsc::now().wrapping_sub(t0);
    }

    fn park(&mut self) {
        let core = &self.cores[self.w];
        {
            let q = core.queue.lock();
            if q.len() > 0 || self.sh.is_shutdown() {
                return;
            }
            core.state.store(state::PARKED, Ordering::Relaxed);
            self.sh.parked.fetch_add(1, Ordering::SeqCst);
        }
        self.counters.parks += 1;
        self.publish();
        while core.state.load(Ordering::Acquire) == state::PARKED && !self.sh.is_shutdown() {
            std::thread::park();
        }
        self.sh.parked.fetch_sub(1, Ordering::SeqCst);
        core.state.store(state::RUNNING, Ordering::Relaxed);
    }
}
