//! The runtime driven step by step on virtual cores: the simulator's seam (the `simulator`
//! crate, `microbenches simulate`). Not a stable API.
//!
//! Every step runs the runtime's real code on its real shared state (the color map, the handler
//! registry, each core's queue design behind its lock) through the handles of `core`: an
//! `Owner` claimed for the step, as the loom model (`model`) claims one, a `Stealer` per
//! victim, the post protocol of `shared`, and each virtual core's own copy of the worker's step
//! machine (`worker::machine`: which step comes next, and the idle protocol's decisions), the
//! one the worker threads run. There are no worker threads and nothing here reads the cycle
//! counter. The caller (the simulator's engine) owns the virtual clock: it performs the step
//! the machine names when the virtual time and the locks allow, charges what it costs, and
//! feeds the two inputs the policies take from measurements with virtual values: the
//! time-left threshold ([`SimRuntime::record_steal`] runs `steal::next_estimate` on a virtual
//! cost) and the handler profiles ([`SimRuntime::profile`], the worker's moving average of a
//! virtual duration).
//!
//! The machine's steps ([`Step`]), for virtual core `w`, and the calls that perform them:
//! - `Work`, cut where a worker takes a lock: [`pop`](SimRuntime::pop) (`Owner::flush_and_pop`:
//!   what the finished batch posted to `w`'s own colors is enqueued and the next batch popped
//!   under one lock, the batch becoming `w`'s running set), [`run_next`](SimRuntime::run_next)
//!   (one event of the batch with a real [`Ctx`]), [`post_local`](SimRuntime::post_local) (an
//!   event built in `w`'s local buffer, as `Ctx::post` builds it), [`flush`](SimRuntime::flush)
//!   (that buffer under one lock, `Shared::flush_local`), [`post_from`](SimRuntime::post_from)
//!   (a post to another core, `Shared::push`), [`finish_batch`](SimRuntime::finish_batch)
//!   (flush, then the running set cleared, for a caller that does not pop next); a pop that
//!   finds nothing ends the step: [`queue_empty`](SimRuntime::queue_empty);
//! - `Search` and `LastLook`, one stealing round, victim by victim:
//!   [`core_set`](SimRuntime::core_set) (`steal::core_set`: the policy's victim order, the
//!   topology's for locality), [`skips`](SimRuntime::skips) (`steal::skips`: an empty victim a
//!   peeking design passes over unlocked), [`steal_from`](SimRuntime::steal_from)
//!   (`Stealer::steal_into` with the policy's `StealChoice`, the moved colors remapped while
//!   both locks are held: one iteration of `steal::try_steal`'s loop), in the round
//!   [`round`](SimRuntime::round) names; then [`round_ended`](SimRuntime::round_ended);
//! - `Nap`: [`napped`](SimRuntime::napped) when it is over; `FallAsleep`:
//!   [`fall_asleep`](SimRuntime::fall_asleep) (under the own lock); `Park`: once
//!   [`is_asleep`](SimRuntime::is_asleep) is false (a poster or a thief-waking post claimed the
//!   wake-up), [`woke`](SimRuntime::woke).
//!
//! With [`set_thieves`](SimRuntime::set_thieves)`(k)` only cores `0..k` search or take the
//! last look (a simulator experiment; the threaded runtime lets every worker steal).
//!
//! Invariant (the color guarantee, as in the threaded runtime): from `pop` to the next `pop`
//! (or `finish_batch`) the batch's colors are `w`'s running set, so no thief takes them. The
//! engine pops again only once the batch's last event has ended in virtual time, and runs a
//! stolen color's events only after the steal's virtual end, so one color never runs on two
//! virtual cores at once; the simulator checks this on every event.

use crate::color::Color;
use crate::config::{BuildError, FidelityOptions, RuntimeConfig, StealPolicy};
use crate::core::{CoreQueue, Owner};
use crate::ctx::{self, Ctx, Lent};
use crate::event::{Event, Task, FLAG_STOLEN};
use crate::handler::{ewma, HandlerId, HandlerSpec, MAX_HANDLERS};
use crate::loom::Ordering;
use crate::queue::Design;
use crate::shared::{with_queues, Handle, Shared};
use crate::stats::Counters;
use crate::steal::{self, Look, MAX_CORE_SET};
use crate::topology::{Machine, Topology};
use crate::worker::{Machine as StepMachine, Ops};
use crossbeam_utils::CachePadded;
use std::collections::VecDeque;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

pub use crate::worker::Step;

/// How long an idle worker naps between two steal attempts while it searches (the worker's
/// constant).
pub const SEARCH_NAP: Duration = crate::worker::SEARCH_NAP;

/// Local posts a `Ctx` buffers before it flushes them (`ctx::LOCAL_FLUSH`).
pub const LOCAL_FLUSH: usize = crate::ctx::LOCAL_FLUSH;

/// One event that [`SimRuntime::run_next`] ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ran {
    /// Its handler.
    pub handler: HandlerId,
    /// Its color.
    pub color: Color,
    /// It reached this core by a steal (its time counts as stolen time).
    pub stolen: bool,
    /// Its closure panicked (caught, as a worker catches it).
    pub panicked: bool,
}

/// Which stealing round a thief is in (`steal::Look`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Round {
    /// A search's ordinary round: a design that peeks skips empty victims unlocked.
    Search,
    /// The last searcher's round before it sleeps: every victim is locked.
    LastLook,
}

impl Round {
    fn look(self) -> Look {
        match self {
            Round::Search => Look::AsDesigned,
            Round::LastLook => Look::LockEvery,
        }
    }
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
        /// Colors moved.
        colors: usize,
        /// Events moved.
        events: usize,
        /// Events queued on the victim before the steal.
        victim_len: usize,
        /// Queue nodes the steal read on the victim (the design's count: libasync's scan
        /// plus its walk, which starts over from the head with `StealWalk::FromHead`).
        nodes: usize,
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
    /// Posts of the running batch to this core's own colors, until the next flush or pop.
    local_buf: Vec<Event>,
    /// Per-handler moving average of virtual cycles per event (the worker's profile).
    ewma: Box<[u64]>,
    /// The worker's step machine: which step the core takes next, and the idle protocol's
    /// decisions between steps (the threads' own, `worker::machine`).
    machine: StepMachine,
}

/// A runtime's shared state with virtual cores instead of worker threads (see the module doc).
pub struct SimRuntime {
    /// The runtime's handle (its shared state).
    handle: Handle,
    /// Each virtual core's private state.
    cores: Vec<SimCore>,
    /// Cores `0..thieves` may steal; the others never search nor take the last look (the
    /// simulator's thief-count sweep; all cores by default).
    thieves: usize,
}

impl SimRuntime {
    /// The shared state for `cfg` (validated like `Runtime::new`; never pinned) on `machine`: its
    /// topology gives the locality order of `cfg.workers` virtual cores.
    pub fn new(mut cfg: RuntimeConfig, machine: &Machine) -> Result<SimRuntime, BuildError> {
        cfg.pin = false;
        cfg.validate()?;
        let topology = Topology::for_machine(machine, cfg.workers);
        let (n, batch) = (cfg.workers, cfg.batch);
        let queues = Shared::local_queues(&cfg);
        let handle = Handle {
            sh: Shared::new(cfg, queues, topology),
        };
        let cores = (0..n)
            .map(|w| SimCore {
                counters: Counters::default(),
                batch: VecDeque::with_capacity(batch),
                pop_buf: Vec::with_capacity(batch),
                local_buf: Vec::with_capacity(LOCAL_FLUSH),
                ewma: vec![0; MAX_HANDLERS].into_boxed_slice(),
                machine: StepMachine::new(w, true),
            })
            .collect();
        Ok(SimRuntime {
            handle,
            cores,
            thieves: n,
        })
    }

    /// The runtime's handle: register handlers, post from outside, place colors, read the map.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Register a handler.
    pub fn register(&self, spec: HandlerSpec) -> HandlerId {
        self.handle.register(spec)
    }

    /// Virtual cores.
    pub fn workers(&self) -> usize {
        self.cores.len()
    }

    /// The registered handlers' names, by id (a trace's handler names).
    pub fn handler_names(&self) -> Vec<String> {
        let reg = self.handle.sh.registry();
        (0..reg.len())
            .map(|i| reg.get(HandlerId(i as u16)).name.clone())
            .collect()
    }

    /// Let only cores `0..k` steal: the others never search and never take the last look.
    pub fn set_thieves(&mut self, k: usize) {
        self.thieves = k.min(self.cores.len());
        for (w, core) in self.cores.iter_mut().enumerate() {
            core.machine.set_may_steal(w < self.thieves);
        }
    }

    /// Whether core `w` may steal (see [`set_thieves`](Self::set_thieves)).
    pub fn is_thief(&self, w: usize) -> bool {
        w < self.thieves
    }

    /// The paper-fidelity options the runtime was built with.
    pub fn fidelity(&self) -> FidelityOptions {
        FidelityOptions::of_config(self.handle.sh.config())
    }

    /// Whether idle cores spin (`IdleMode::Spin` with stealing on): they never nap or sleep
    /// while they may search.
    pub fn idle_spins(&self) -> bool {
        self.handle.sh.stealing().spin
    }

    /// Local posts an event buffers before it flushes them under its core's lock
    /// (`RuntimeConfig::post_batch`; 1: a lock per post).
    pub fn post_batch(&self) -> usize {
        self.handle.sh.post_batch()
    }

    /// The configured stealing policy.
    pub fn stealing(&self) -> StealPolicy {
        self.handle.sh.stealing().policy
    }

    /// Events queued on core `w` (its published length).
    pub fn queued(&self, w: usize) -> usize {
        self.handle.sh.state(w).len()
    }

    /// Owner step: under core `w`'s lock, enqueue what the previous batch posted to `w`'s own
    /// colors (see [`buffered`](Self::buffered); events whose color moved away go to their new
    /// core after the lock), then pop the next batch (`cfg.batch` events at most) and make its
    /// colors `w`'s running set. Returns how many events the batch holds; `None` when the queue
    /// was empty (the running set is then empty). The previous batch must have been run.
    pub fn pop(&mut self, w: usize) -> Option<usize> {
        let sh: &Shared = &self.handle.sh;
        let core = &mut self.cores[w];
        assert!(
            core.batch.is_empty(),
            "core {w}: the previous batch is not finished"
        );
        let p = sh.params();
        let mut spill = Vec::new();
        let (popped, stealable) = with_queues!(sh.queues(), q => {
            let r = owner(sh, q, w).flush_and_pop(
                &mut core.local_buf,
                |slot| sh.map().get(slot) == w,
                |ev| spill.push(ev),
                &mut core.pop_buf,
                sh.config().batch,
                &p,
            );
            for ev in spill {
                sh.push_to_owner(q, ev, Some(&mut core.counters));
            }
            r
        });
        core.counters.lock_ops += 1;
        if stealable {
            sh.wake_thief_for(w);
        }
        if !popped {
            return None;
        }
        core.batch.extend(core.pop_buf.drain(..));
        Some(core.batch.len())
    }

    /// Events of the popped batch not run yet.
    pub fn batch_left(&self, w: usize) -> usize {
        self.cores[w].batch.len()
    }

    /// Owner step: run the batch's next event on core `w` with a real `Ctx`. Its posts to colors
    /// `w` owns stay in `w`'s local buffer (the next [`pop`](Self::pop) or
    /// [`flush`](Self::flush) enqueues them), unless the `Ctx` flushes them itself (a full
    /// buffer, or a post to another core, which goes straight through the post path). `None`
    /// when the batch is done.
    pub fn run_next(&mut self, w: usize) -> Option<Ran> {
        let sh: &Shared = &self.handle.sh;
        let handle = &self.handle;
        let core = &mut self.cores[w];
        let ev = core.batch.pop_front()?;
        let (handler, flags, color) = (ev.handler(), ev.flags(), ev.color());
        // The task is consumed below; the rest of an event is plain data, so not dropping it
        // leaks nothing.
        let mut ev = ManuallyDrop::new(ev);
        let task: *mut Task = &mut ev.task;
        let pending = core.batch.len();
        let ok = with_queues!(sh.queues(), q => {
            let mut owner = owner(sh, q, w);
            let mut rec = colored_trace::Recorder::off();
            let mut ops = Ops {
                sh,
                queues: q,
                owner: &mut owner,
                rec: &mut rec,
            };
            let lent = Lent {
                counters: &mut core.counters,
                local_buf: &mut core.local_buf,
                ops: &mut ops,
            };
            let mut ctx = Ctx::new(sh, handle, w, color, pending, lent);
            // SAFETY: `task` points into `ev`, a live event this function owns and never
            // touches again (it is `ManuallyDrop`), so the task is run exactly once and never
            // dropped after; a panicking closure is dropped by the unwinding inside
            // `run_in_place`.
            catch_unwind(AssertUnwindSafe(|| unsafe {
                Task::run_in_place(task, &mut ctx)
            }))
            .is_ok()
        });
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
    /// go to their new core), as `Ctx` does when the buffer is full or before a post to another
    /// core. Returns how many events it held.
    pub fn flush(&mut self, w: usize) -> usize {
        let core = &mut self.cores[w];
        let n = core.local_buf.len();
        self.handle
            .sh
            .flush_local(w, &mut core.local_buf, &mut core.counters);
        n
    }

    /// A post from a handler on core `w` to a color `w` owns: the event is built in `w`'s local
    /// buffer, as `Ctx::post` builds it; [`pop`](Self::pop) or [`flush`](Self::flush) enqueues
    /// it.
    pub fn post_local<F>(&mut self, w: usize, color: Color, handler: HandlerId, f: F)
    where
        F: FnOnce(&mut Ctx<'_>) + Send + 'static,
    {
        let sh: &Shared = &self.handle.sh;
        ctx::push_event(sh, &mut self.cores[w].local_buf, color, handler, f);
    }

    /// A post from a handler on core `w` to a color another core owns: the real post path (map
    /// read, lock, re-read, enqueue, wake claims), as `Ctx::post` does for such a post after its
    /// flush. False if the runtime was shut down (the event is dropped).
    pub fn post_from<F>(&mut self, w: usize, color: Color, handler: HandlerId, f: F) -> bool
    where
        F: FnOnce(&mut Ctx<'_>) + Send + 'static,
    {
        let sh: &Shared = &self.handle.sh;
        let core = &mut self.cores[w];
        let ev = ctx::event(sh, color, handler, f);
        let ok = sh.push(ev, Some(&mut core.counters)).is_ok();
        if !ok {
            core.counters.dropped += 1;
        }
        ok
    }

    /// Owner step for a caller that does not pop next (as the model's `run_batch` ends): flush
    /// core `w`'s local buffer, then let the finished batch's colors be stolen again.
    pub fn finish_batch(&mut self, w: usize) {
        assert!(
            self.cores[w].batch.is_empty(),
            "core {w}: batch finished with events left"
        );
        self.flush(w);
        let sh: &Shared = &self.handle.sh;
        with_queues!(sh.queues(), q => owner(sh, q, w).finish_batch());
    }

    /// Feed a handler's profile: core `w` ran an event of `handler` for `cycles` virtual cycles.
    /// The worker's moving average, published to the registry at every event (a worker times
    /// a sample of the events because reading the clock costs; a virtual clock costs nothing).
    /// Annotated handlers keep their annotation, as in the threaded runtime.
    pub fn profile(&mut self, w: usize, handler: HandlerId, cycles: u64) {
        let e = &mut self.cores[w].ewma[handler.index()];
        *e = ewma(*e, cycles);
        self.handle
            .sh
            .registry()
            .get(handler)
            .avg_cycles
            .store(*e, Ordering::Relaxed);
    }

    /// Thief step: the victims core `thief` examines in one stealing round, in order, itself
    /// left out (`steal::core_set` on the published lengths).
    pub fn core_set(&self, thief: usize) -> Vec<usize> {
        let sh: &Shared = &self.handle.sh;
        let mut buf = [0usize; MAX_CORE_SET];
        steal::core_set(
            sh.stealing().policy,
            thief,
            self.cores.len(),
            |v| sh.state(v).len(),
            sh.topology(),
            &mut buf,
        )
        .iter()
        .copied()
        .filter(|&v| v != thief)
        .collect()
    }

    /// Whether a thief in `round` passes over `victim` without locking it (`steal::skips`).
    pub fn skips(&self, victim: usize, round: Round) -> bool {
        let sh: &Shared = &self.handle.sh;
        with_queues!(sh.queues(), q => skips_in(sh, q, victim, round.look()))
    }

    /// Thief step: core `thief` tries victim `victim` once, as one iteration of the runtime's
    /// stealing round (a victim [`skips`](Self::skips) passes over is not locked; else both
    /// locks in index order, the design's steal with the policy's choice, the moved colors
    /// remapped to the thief under both locks, both lengths published). Counts and costs are
    /// left to the caller (virtual time).
    pub fn steal_from(&mut self, thief: usize, victim: usize, round: Round) -> StealTry {
        assert_ne!(thief, victim, "a core does not steal from itself");
        let sh: &Shared = &self.handle.sh;
        if self.skips(victim, round) {
            return StealTry::Skipped;
        }
        let choice = sh.stealing().choice;
        let p = sh.params();
        let victim_len = sh.state(victim).len();
        let stolen = with_queues!(sh.queues(), q => {
            let mut owner = owner(sh, q, thief);
            sh.stealer(q, victim)
                .steal_into(&mut owner, choice, &p, || 0, &mut |slot| sh.map().set(slot, thief))
                .stolen
        });
        match stolen {
            Some(s) => StealTry::Stole {
                colors: s.colors,
                events: s.events,
                victim_len,
                nodes: s.nodes,
            },
            None => StealTry::Failed { victim_len },
        }
    }

    /// A successful steal kept the victim locked `cost` virtual cycles and moved `colors` colors:
    /// update the time-left threshold with the runtime's moving average.
    pub fn record_steal(&mut self, cost: u64, colors: usize) {
        let sh: &Shared = &self.handle.sh;
        sh.set_steal_threshold(steal::next_estimate(sh.steal_threshold(), cost, colors));
    }

    /// The time-left threshold now (the estimated cost of stealing one color, cycles).
    pub fn steal_threshold(&self) -> u64 {
        self.handle.sh.steal_threshold()
    }

    /// The step core `w` takes now (its worker's step machine, `worker::machine`).
    pub fn step(&self, w: usize) -> Step {
        self.cores[w].machine.step()
    }

    /// Whether core `w` counts as a searcher now.
    pub fn is_searching(&self, w: usize) -> bool {
        self.cores[w].machine.is_searching()
    }

    /// The round core `w`'s step takes (`Step::Search` or `Step::LastLook`).
    pub fn round(&self, w: usize) -> Round {
        match self.step(w) {
            Step::Search => Round::Search,
            Step::LastLook => Round::LastLook,
            s => panic!("core {w} is not in a stealing round ({s:?})"),
        }
    }

    /// Step `Work` ended: core `w`'s pop found nothing. It searches if it may (rule 1 of
    /// `idle`: at most half the cores search, every core when idle cores spin, none when
    /// stealing is off or past [`set_thieves`](Self::set_thieves)); else it goes to sleep.
    pub fn queue_empty(&mut self, w: usize) -> Step {
        self.cores[w].machine.queue_empty(&self.handle.sh)
    }

    /// Step `Search` or `LastLook` ended: core `w`'s round stole (`stole`) or not; a search
    /// that stole nothing after `searched` virtual cycles of idleness, against a search time
    /// of `search_cycles`, naps, sleeps, spins on or stops (the worker's own rule).
    pub fn round_ended(
        &mut self,
        w: usize,
        stole: bool,
        searched: u64,
        search_cycles: u64,
    ) -> Step {
        let sh: &Shared = &self.handle.sh;
        let m = &mut self.cores[w].machine;
        with_queues!(sh.queues(), q => {
            m.round_ended(sh, &mut owner(sh, q, w), stole, searched, search_cycles)
        })
    }

    /// Step `Nap` ended: core `w` searches again.
    pub fn napped(&mut self, w: usize) -> Step {
        self.cores[w].machine.napped()
    }

    /// Step `FallAsleep`: core `w` goes to sleep under its own lock if its queue is still
    /// empty (rule 3 of `idle`); next: `Work` (it did not), `LastLook` or `Park`.
    pub fn fall_asleep(&mut self, w: usize) -> Step {
        let sh: &Shared = &self.handle.sh;
        let core = &mut self.cores[w];
        let next = with_queues!(sh.queues(), q => {
            core.machine.fall_asleep(sh, &mut owner(sh, q, w))
        });
        if next != Step::Work {
            core.counters.parks += 1;
        }
        next
    }

    /// Whether core `w` is a sleeper whose core is still marked asleep: false once a poster
    /// (or a post waking a thief) claimed its wake-up.
    pub fn is_asleep(&self, w: usize) -> bool {
        let sh: &Shared = &self.handle.sh;
        self.cores[w].machine.is_sleeper() && sh.state(w).is_asleep()
    }

    /// Step `Park` ended: sleeping core `w` resumes.
    pub fn woke(&mut self, w: usize) -> Step {
        let sh: &Shared = &self.handle.sh;
        let m = &mut self.cores[w].machine;
        with_queues!(sh.queues(), q => m.woke(sh, &mut owner(sh, q, w)))
    }
}

/// Core `w`'s owner handle, claimed for one step of the virtual core (given back when the step
/// drops it).
fn owner<'a, D: Design>(
    sh: &'a Shared,
    q: &'a [CachePadded<CoreQueue<D>>],
    w: usize,
) -> Owner<'a, D> {
    Owner::claim(w, &q[w], sh.state(w))
}

/// `steal::skips` for the concrete design of `queues`.
fn skips_in<D: Design>(
    sh: &Shared,
    _queues: &[CachePadded<CoreQueue<D>>],
    victim: usize,
    look: Look,
) -> bool {
    steal::skips::<D>(sh, victim, look)
}

#[cfg(test)]
mod tests;
