//! A worker: one thread per core, pinned, running its core's queue through the core's
//! [`Owner`] handle.
//!
//! The loop is the worker's step machine (`machine`: the steps and the idle protocol's
//! decisions, shared with the loom model and the simulator), performed on a thread. Working:
//! pop a batch (Mely: up to `batch` events of one color; libasync: one event) under the
//! core lock and mark its slot running; run the batch, timing a sample of the events with the
//! cycle counter (all stolen ones); clear the running set. With nothing queued the worker is
//! idle and follows the idle protocol (`idle`): search for work to steal if fewer than half the
//! workers search, for up to `search_us`, napping between attempts; then sleep. (With the
//! papers' `IdleMode::Spin` and stealing on, every idle worker searches without nap or end
//! until it finds work: it never sleeps.)
//!
//! Sleeping: the worker marks its core parked under its own lock after seeing its queue empty
//! (see `core`), counts itself a sleeper, and, if no worker searches any more, runs one last
//! steal round that locks every victim; then it parks until its core is no longer asleep. A
//! poster reads the state under the same lock, so either it sees it parked (and unparks; the
//! unpark token makes a late `park` return at once) or the worker sees the event. Nothing spins
//! while idle, except by `IdleMode::Spin`'s choice.

use crate::core::{CoreQueue, Owner, Sleep};
use crate::ctx::{Ctx, Lent, WorkerOps};
use crate::event::{Event, FLAG_STOLEN};
use crate::handler::{ewma, HandlerId, MAX_HANDLERS};
use crate::loom::Ordering;
use crate::queue::Design;
use crate::shared::{Handle, Shared};
use crate::stats::{Counters, LOCK_SAMPLE};
use crate::steal::{self, Look};
use crate::tsc;
use colored_trace::{Record, Recorder, State, NO_SEQ};
use crossbeam_utils::CachePadded;
use std::panic::{catch_unwind, AssertUnwindSafe};

mod machine;
pub(crate) use machine::Machine;
pub use machine::Step;
use machine::{end_sleep, last_look_due};

/// Publish counters after this many batches (and always before idling).
const PUBLISH_EVERY: u32 = 64;
/// Every handler's first runs on a worker are all timed, then one in `SAMPLE_EVERY`: reading the
/// cycle counter costs ~20 ns on some virtual machines, more than a whole short event, so timing
/// every event would double the dispatch cost.
const SAMPLE_WARMUP: u32 = 16;
const SAMPLE_EVERY: u32 = 64;
/// A spinning search (`IdleMode::Spin`) publishes its counters after this many rounds.
const SPIN_PUBLISH_EVERY: u32 = 1024;
/// How long a searching thief sleeps between steal attempts.
pub(crate) const SEARCH_NAP: std::time::Duration = std::time::Duration::from_micros(20);

/// A worker's state. Owned by its thread (or by one step of the model); nothing in it is shared
/// except through `sh`.
pub(crate) struct Worker<'a, D: Design> {
    /// A handle to the runtime, lent to the events this worker runs.
    h: &'a Handle,
    /// The runtime's shared state (`h`'s).
    sh: &'a Shared,
    /// Every core's queue (this worker steals from the others').
    queues: &'a [CachePadded<CoreQueue<D>>],
    /// The handle on this worker's own core: only this worker pops from it.
    owner: Owner<'a, D>,
    /// Private counters, published to `sh.published(w)` every `PUBLISH_EVERY` batches and
    /// before idling.
    counters: Counters,
    /// The batch being run (reused: it keeps its capacity).
    batch: Vec<Event>,
    /// Per-handler moving average of cycles per event, published on every timed run during the
    /// warm-up, then on every fourth.
    ewma: Box<[u64]>,
    /// Runs per handler on this worker (decides which runs are timed).
    runs: Box<[u32]>,
    /// Runs per handler not yet added to the published per-handler counts (they are published
    /// with each timed run and whenever the worker publishes its counters).
    unrecorded: Box<[u32]>,
    /// Batches run since the counters were last published.
    since_publish: u32,
    /// How long an idle search lasts before the worker sleeps, in cycles (`search_us`).
    search_cycles: u64,
    /// Events the running handler posted to colors this core owns, flushed under one lock.
    local_buf: Vec<Event>,
    /// When the worker started: busy cycles are wall cycles minus idle cycles.
    start: u64,
    /// This worker's trace buffer (off unless the configuration's `trace` is set: each record
    /// point is then one predictable branch).
    rec: Recorder,
}

impl<'a, D: Design> Worker<'a, D> {
    /// A worker for the core `owner` owns (claimed once, when the worker starts; a step of the
    /// model claims it for the step). Allocates its tables: call it on the worker's thread after
    /// pinning, so they are local to its core.
    pub(crate) fn new(
        h: &'a Handle,
        queues: &'a [CachePadded<CoreQueue<D>>],
        owner: Owner<'a, D>,
    ) -> Self {
        let sh = &*h.sh;
        let owner_index = owner.index();
        Worker {
            h,
            sh,
            queues,
            owner,
            counters: Counters::default(),
            batch: Vec::with_capacity(sh.config().batch.max(1)),
            ewma: vec![0; MAX_HANDLERS].into_boxed_slice(),
            runs: vec![0; MAX_HANDLERS].into_boxed_slice(),
            unrecorded: vec![0; MAX_HANDLERS].into_boxed_slice(),
            since_publish: 0,
            local_buf: Vec::with_capacity(crate::ctx::LOCAL_FLUSH),
            search_cycles: (sh.config().search_us as f64 * tsc::cycles_per_sec() / 1e6) as u64,
            start: tsc::now(),
            rec: Recorder::new(owner_index, sh.trace_bound()),
        }
    }

    /// This worker's core.
    fn w(&self) -> usize {
        self.owner.index()
    }

    /// Run the worker's step machine until shutdown, then drop what is still queued here.
    pub(crate) fn run(mut self) {
        let sh = self.sh;
        let mut m = Machine::new(self.w(), true);
        // When the current idle period began (the search time and the idle cycles count from
        // it), and the spinning search's rounds since it last published.
        let (mut idle_since, mut rounds) = (0u64, 0u32);
        loop {
            let prev = m.step();
            let next = match prev {
                Step::Work => {
                    if sh.is_shutdown() {
                        break;
                    }
                    if self.run_batch() {
                        continue;
                    }
                    idle_since = tsc::now();
                    self.record_state(idle_since, State::Idle);
                    self.publish();
                    m.queue_empty(sh)
                }
                Step::Search => {
                    let stole = self.steal_once();
                    let searched = if sh.stealing().spin {
                        0
                    } else {
                        tsc::now().wrapping_sub(idle_since)
                    };
                    let next =
                        m.round_ended(sh, &mut self.owner, stole, searched, self.search_cycles);
                    if next == Step::Search {
                        // A spinning search can last the whole run: its attempts are published
                        // as it goes, not only when it ends.
                        rounds = rounds.wrapping_add(1);
                        if rounds % SPIN_PUBLISH_EVERY == 0 {
                            self.publish();
                        }
                    }
                    next
                }
                Step::Nap => {
                    std::thread::park_timeout(SEARCH_NAP);
                    m.napped()
                }
                Step::FallAsleep => m.fall_asleep(sh, &mut self.owner),
                Step::LastLook => {
                    let stole = self.last_look();
                    m.round_ended(sh, &mut self.owner, stole, 0, 0)
                }
                Step::Park => {
                    while self.owner.is_asleep() && !sh.is_shutdown() {
                        std::thread::park();
                    }
                    let next = m.woke(sh, &mut self.owner);
                    self.record_state(tsc::now(), State::Wake);
                    next
                }
            };
            if next != prev {
                self.entered(next, idle_since);
            }
        }
        let dropped = self.owner.clear() + self.local_buf.len();
        self.local_buf.clear();
        self.counters.dropped += dropped as u64;
        self.publish();
        if let Some(buf) = self.rec.take() {
            self.sh.deposit_trace(buf);
        }
    }

    /// The idle protocol's accounting on entering step `next` (another step than before) of an
    /// idle period that began at `idle_since`: the trace's state, the idle cycles when the
    /// period ends, the park count.
    fn entered(&mut self, next: Step, idle_since: u64) {
        match next {
            Step::Work => {
                let now = tsc::now();
                self.counters.idle_cycles += now.wrapping_sub(idle_since);
                self.record_state(now, State::Busy);
            }
            Step::Search => self.record_state(tsc::now(), State::Search),
            Step::Nap => self.record_state(tsc::now(), State::Nap),
            Step::Park => {
                self.counters.parks += 1;
                self.record_state(tsc::now(), State::Sleep);
                self.publish();
            }
            Step::FallAsleep | Step::LastLook => {}
        }
    }

    /// End the batch without popping the next: enqueue what it posted to this core, then let
    /// its colors be stolen (the model's steps end here; the worker's loop does both in its
    /// next pop).
    pub(crate) fn finish_batch(&mut self) {
        self.sh
            .flush_local(self.w(), &mut self.local_buf, &mut self.counters);
        self.owner.finish_batch();
    }

    /// The worker's counters so far (for the step-by-step model).
    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Publish the counters and the pending per-handler counts.
    pub(crate) fn publish(&mut self) {
        self.since_publish = 0;
        let published = self.sh.published(self.w());
        let n = self.sh.registry().len().min(MAX_HANDLERS);
        for (h, pending) in self.unrecorded[..n].iter_mut().enumerate() {
            if *pending > 0 {
                published.record_handler(h, *pending as u64, None, false);
                *pending = 0;
            }
        }
        self.counters.busy_cycles = tsc::now()
            .wrapping_sub(self.start)
            .saturating_sub(self.counters.idle_cycles);
        published.counters.publish(&self.counters);
    }

    /// Flush what the previous batch posted to this core and pop the next batch, under one
    /// lock; run it. False if the queue was empty (then nothing is left buffered either). The
    /// events the batch posts to this core stay in `local_buf` until the next call (or
    /// [`Worker::flush_local`]). Always inlined into `run`: with libasync's one-event batches
    /// a call per batch is a measurable share of the dispatch cost.
    #[inline(always)]
    pub(crate) fn run_batch(&mut self) -> bool {
        let p = self.sh.params();
        let timed = self.counters.lock_ops & (LOCK_SAMPLE - 1) == 0;
        self.counters.lock_ops += 1;
        let t0 = if timed { tsc::now() } else { 0 };
        let (sh, w) = (self.sh, self.w());
        let mut spill = Vec::new();
        let (popped, stealable) = self.owner.flush_and_pop(
            &mut self.local_buf,
            |slot| sh.map().get(slot) == w,
            |ev| spill.push(ev),
            &mut self.batch,
            sh.config().batch,
            &p,
        );
        if timed {
            self.counters.lock_cycles += tsc::since(t0) * LOCK_SAMPLE;
        }
        if stealable {
            sh.wake_thief_for(w);
        }
        for ev in spill {
            sh.push_to_owner(self.queues, ev, Some(&mut self.counters));
        }
        if !popped {
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
        let traced = self.rec.is_on();
        let start = if sample || traced { tsc::now() } else { 0 };
        let w = self.w();
        let (ok, blocked) = {
            let mut ops = Ops {
                sh: self.sh,
                queues: self.queues,
                owner: &mut self.owner,
                rec: &mut self.rec,
            };
            let lent = Lent {
                counters: &mut self.counters,
                local_buf: &mut self.local_buf,
                ops: &mut ops,
            };
            let mut ctx = Ctx::new(self.sh, self.h, w, color, local_pending, lent);
            // SAFETY: the task is live and consumed here exactly once (caller's contract).
            let task = unsafe { std::ptr::addr_of_mut!((*ev).task) };
            // SAFETY: `task` is live and run exactly once, here; nothing touches it afterwards.
            let ok = catch_unwind(AssertUnwindSafe(|| unsafe {
                crate::event::Task::run_in_place(task, &mut ctx)
            }))
            .is_ok();
            (ok, ctx.blocked_cycles)
        };
        if traced {
            self.rec.record(Record::Run {
                start,
                end: tsc::now(),
                color: color.0,
                handler: h as u16,
                seq: NO_SEQ,
            });
        }
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
            self.sh.published(w).record_handler(h, events, dt, !ok);
        }
        if let Some(dt) = dt {
            if stolen {
                c.stolen_time_cycles += dt;
                c.stolen_events += 1;
            }
            let e = &mut self.ewma[h];
            *e = ewma(*e, dt);
            if runs <= SAMPLE_WARMUP || runs % (SAMPLE_EVERY * 4) == 0 {
                self.sh
                    .registry()
                    .get(HandlerId(h as u16))
                    .avg_cycles
                    .store(*e, Ordering::Relaxed);
            }
        }
    }

    /// Trace a state transition of this core, with its queue length (not read when off).
    #[inline]
    fn record_state(&mut self, at: u64, state: State) {
        if self.rec.is_on() {
            let queue_len = colored_trace::record::sat32(self.sh.state(self.w()).len() as u64);
            self.rec.record(Record::State {
                at,
                queue_len,
                state,
            });
        }
    }

    /// The idle protocol up to the actual sleep, for the loom model: the step machine from an
    /// empty queue with one stealing round as the whole search (as if the search time were over
    /// after it), up to where the worker would park. [`IdleEnd::Asleep`]: the caller must wait
    /// until the owner is no longer asleep, then call [`Worker::end_sleep`]. The bounded idle
    /// protocol only (a spinning search never ends by itself).
    pub(crate) fn idle_step(&mut self) -> IdleEnd {
        let sh = self.sh;
        assert!(
            !sh.stealing().spin,
            "the model drives the bounded idle protocol"
        );
        let mut m = Machine::new(self.w(), true);
        let mut step = m.queue_empty(sh);
        loop {
            step = match step {
                Step::Search | Step::LastLook => {
                    let stole = if step == Step::Search {
                        self.steal_once()
                    } else {
                        self.last_look()
                    };
                    let next = m.round_ended(sh, &mut self.owner, stole, 1, 0);
                    if next == Step::Work {
                        return if stole {
                            IdleEnd::Stole
                        } else {
                            IdleEnd::Awake
                        };
                    }
                    next
                }
                Step::FallAsleep => match m.fall_asleep(sh, &mut self.owner) {
                    Step::Work => return IdleEnd::Awake,
                    next => next,
                },
                Step::Park => return IdleEnd::Asleep,
                Step::Work | Step::Nap => unreachable!("a search that has timed out naps no more"),
            };
        }
    }

    /// One steal attempt over the core set, as a search makes it.
    pub(crate) fn steal_once(&mut self) -> bool {
        steal::try_steal(
            self.sh,
            self.queues,
            &mut self.owner,
            &mut self.counters,
            &mut self.rec,
            Look::AsDesigned,
        )
    }

    /// Before sleeping, when no worker searches any more: one steal round locking every victim
    /// (rule 3 of `idle`). True if it stole.
    fn last_look(&mut self) -> bool {
        steal::try_steal(
            self.sh,
            self.queues,
            &mut self.owner,
            &mut self.counters,
            &mut self.rec,
            Look::LockEvery,
        )
    }

    /// Still asleep (for the model, which cannot park)?
    pub(crate) fn is_asleep(&self) -> bool {
        self.owner.is_asleep()
    }

    /// Back from a sleep `idle_step` or `begin_polling` began (for the model).
    pub(crate) fn end_sleep(&mut self) {
        end_sleep(self.sh, &mut self.owner);
    }

    /// The reactor's path to blocking in its poll, as its Epoll event takes it (for the model):
    /// true if the worker is now marked polling.
    pub(crate) fn begin_polling(&mut self) -> bool {
        let mut ops = Ops {
            sh: self.sh,
            queues: self.queues,
            owner: &mut self.owner,
            rec: &mut self.rec,
        };
        ops.begin_polling(&mut self.counters)
    }
}

/// Where the model's `Model::idle_step` (`Worker::idle_step`) left a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdleEnd {
    /// It stole work (in the search or the last look).
    Stole,
    /// It did not sleep: work arrived in its queue, or shutdown.
    Awake,
    /// Its core is marked asleep: it must wait for a wake-up.
    Asleep,
}

/// What an event running on this worker may ask of the worker ([`WorkerOps`]), without knowing
/// the queue design.
pub(crate) struct Ops<'r, 'a, D: Design> {
    /// The runtime's shared state.
    pub(crate) sh: &'a Shared,
    /// Every core's queue.
    pub(crate) queues: &'a [CachePadded<CoreQueue<D>>],
    /// The handle on the running worker's core.
    pub(crate) owner: &'r mut Owner<'a, D>,
    /// The worker's trace buffer (steal attempts an event makes are recorded there).
    pub(crate) rec: &'r mut Recorder,
}

impl<D: Design> WorkerOps for Ops<'_, '_, D> {
    fn recorder(&mut self) -> Option<&mut Recorder> {
        self.rec.is_on().then_some(&mut *self.rec)
    }

    fn try_steal(&mut self, counters: &mut Counters) -> bool {
        steal::try_steal(
            self.sh,
            self.queues,
            self.owner,
            counters,
            self.rec,
            Look::AsDesigned,
        )
    }

    fn begin_polling(&mut self, counters: &mut Counters) -> bool {
        let sh = self.sh;
        if !self.owner.begin_sleep(Sleep::Polling, || !sh.is_shutdown()) {
            return false;
        }
        sh.idle().begin_sleep();
        if last_look_due(sh)
            && steal::try_steal(
                sh,
                self.queues,
                self.owner,
                counters,
                self.rec,
                Look::LockEvery,
            )
        {
            self.end_polling();
            return false;
        }
        true
    }

    fn end_polling(&mut self) {
        end_sleep(self.sh, self.owner);
    }
}
