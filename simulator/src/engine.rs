//! The discrete-event engine: virtual cores on a virtual cycle clock, driving the runtime's real
//! queues and stealing decisions through `colored_runtime::stepped::SimRuntime`.
//!
//! Each virtual core runs the worker's own step machine (`colored_runtime::stepped::Step`, the
//! machine the worker threads run: `Work`, `Search`, `Nap`, `FallAsleep`, `LastLook`, `Park`,
//! and every decision between them). The engine performs each step in virtual time, cut into
//! phases where a worker takes or waits for a lock (one pending phase in the agenda at a
//! time, or parked):
//! 1. `Work`: `Pop` (under its own lock): what the previous batch posted to this core is
//!    enqueued and the next batch popped, which becomes the core's running set
//!    (`Owner::flush_and_pop`); or nothing, which ends the step (`SimRuntime::queue_empty`:
//!    the machine says whether the core searches or goes to sleep).
//!    `Run` each event: the runtime runs its closure, which hands over the event's [`Job`]; the
//!    event lasts the runtime's per-event cost plus its work plus its cache misses (the cache
//!    model, from the data it touches), plus the lines of the event itself when another core
//!    posted it and of the shared atomics it updates when another core wrote them last.
//!    `AfterWork`: its continuation runs ([`Effects`]), then its posts go out in order
//!    (`Posts`): local ones into the core's buffer (a flush under the own lock at the
//!    runtime's `post_batch`, as `Ctx` does: 32 by default, every post with `--post-batch 1`;
//!    the rest waits for the next `Pop`), remote ones under the target's lock after a flush.
//!    `Done`: the next event, or the next `Pop`.
//! 2. `Search` and `LastLook`: a round over the policy's core set, one victim per phase
//!    (both locks; a design that peeks skips empty victims unlocked in a search, never in the
//!    last look); then the machine decides (`SimRuntime::round_ended`): work, the next round at
//!    once (spinning), a nap, sleep once the search interval is over, or, after a last look,
//!    the park. `Nap` ends after the calibrated nap. `FallAsleep` is under the own lock.
//!    `Park`: a sleeping core is woken when a post claims it (the real post path, or a
//!    stealable post waking a thief) and resumes after the calibrated wake-up latency; the
//!    poster pays the wake-up.
//!
//! Locks: each core's lock is free from a virtual cycle on; a step that needs a held lock is put
//! back until it is free (the wait and the hold count as locking time), so a victim locked by a
//! thief until cycle T makes its owner and every other thief wait until T, and an owner that
//! takes its lock after another core held it pulls the lines that core wrote back. The real
//! operation runs when the lock is acquired, so it sees the queues as they are at that virtual
//! time. With `--lock tas` a waiter spins with atomic read-modify-writes that each take the
//! lock's line, so every core that spins during a hold delays the lock's release by one line
//! transfer from the spinner to the holder (once per spinner and hold): the victim's own pops
//! and posts wait behind its thieves' spinning. With the backoff lock waiters read a shared
//! copy and cost nothing until the release.
//!
//! Paper-mode costs beyond the calibrated steps (from measurement: the line transfer of this
//! machine from `simulate calibrate`, or a topology file's latencies, Table II for `e5410`):
//! each queue node a libasync steal reads with `--steal-walk from-head` is a line the victim's
//! core wrote (one transfer each; the ours walk keeps the calibrated per-queued-event cost);
//! a spinning round that locked no victim (a peeking design passing over empty queues) costs
//! one uncontended lock operation; `--event-overhead-cycles N` replaces the calibrated
//! per-event runtime cost.
//!
//! Where the simulator still differs from the threads (each decision above is the runtime's
//! code; these are the engine's driving of it):
//! - The machine's `Work` and stealing rounds are cut into phases here (`Phase`) where a thread
//!   performs them in one go: the engine stops at every lock to order cores in virtual time.
//!   Inside `Work` the phases follow `worker::Worker::run_batch` and `Ctx`'s posting; inside a
//!   round, `steal::try_steal`'s loop. Which step follows which is the machine's alone.
//! - A core that may not steal (`--thieves`) and sleeps while idle cores spin polls its own
//!   queue instead: it resumes one pop after a post claims it and the poster pays no wake-up
//!   (the threaded runtime has no such cores).
//! - A thief waits until both locks of a steal are free at once; the runtime takes them in
//!   core order and holds the first while it waits for the second (`core::lock_pair`). Holding
//!   it would need a phase per lock of the pair; the difference is a lock wait counted on one
//!   core instead of two.
//! - An event's posts go out after its work (`Posts`), where a closure posts as it runs: the
//!   workload model hands the engine an event's work and its posts, not their interleaving.
//! - Locking time is counted on every lock operation; the threads time one in `LOCK_SAMPLE`
//!   (reading the cycle counter costs there, not here).
//! - Profiles are fed at every event (a virtual clock costs nothing to read); the threads time
//!   a sample.
//! - The cost of a step is charged from the calibration, not measured on the virtual core.
//!
//! Checked on every event: no two cores run one color at once in virtual time (a color is busy
//! from an event's start to its end, posts included), and events one core posted to one color
//! start in the order posted ([`vctx`]). A run is deterministic: the agenda orders equal times by
//! insertion, and the only randomness, the jitter of the runtime's step costs, comes from the
//! seed.

use super::cache::{Caches, Served};
use super::calibrate::{Calibration, DesignCosts};
use super::vctx::{self, Effects, Held, Job, Then};
use super::workload::Workload;
use anyhow::{bail, Result};
use colored_runtime::stepped::{Round, SimRuntime, StealTry, Step};
use colored_runtime::{Color, HandlerId, LockKind, QueueKind, StealWalk};
use colored_trace::record::{sat16, sat32};
use colored_trace::{Bound, Record, Recorder, State, StealOutcome, TraceBuf, NO_SEQ};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

/// Cache lines an owner pulls back when it takes its lock after another core held it: the lock
/// word and the queue's head, which a steal or a remote post wrote (the steal is charged the
/// same two lines on its way in).
const OWNER_LINES_BACK: f64 = 2.0;

/// Cache lines of an event itself (its queue node and its closure's box), written by the core
/// that posted it and read by the core that runs it.
const EVENT_LINES: f64 = 2.0;

/// Virtual time allowed past `seconds` for the round in progress to finish (the real
/// benchmarks' `Control::run_for` waits 120 s).
const GRACE_SECONDS: f64 = 120.0;

/// What one virtual core counted, in virtual cycles.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CoreStats {
    pub events: u64,
    pub steal_attempts: u64,
    pub steals: u64,
    pub stolen_colors: u64,
    /// Cycles victims stayed locked by successful steals.
    pub steal_cost_cycles: u64,
    /// Processing cycles of stolen events.
    pub stolen_time_cycles: u64,
    pub stolen_events: u64,
    /// Waiting for and holding queue locks.
    pub lock_cycles: u64,
    pub busy_cycles: u64,
    pub idle_cycles: u64,
    pub parks: u64,
    pub wakeups: u64,
    /// Queue nodes successful steals read on their victims.
    pub steal_nodes: u64,
    /// Cycles lock holders lost to waiters spinning on a test-and-set lock (`--lock tas`).
    pub spin_transfer_cycles: u64,
    /// Cache lines missed in L1, and in L1 and L2.
    pub l1_misses: u64,
    pub l2_misses: u64,
    /// Cycles the misses cost.
    pub miss_cycles: u64,
}

impl CoreStats {
    fn add(&mut self, o: &CoreStats) {
        self.events += o.events;
        self.steal_attempts += o.steal_attempts;
        self.steals += o.steals;
        self.stolen_colors += o.stolen_colors;
        self.steal_cost_cycles += o.steal_cost_cycles;
        self.stolen_time_cycles += o.stolen_time_cycles;
        self.stolen_events += o.stolen_events;
        self.lock_cycles += o.lock_cycles;
        self.busy_cycles += o.busy_cycles;
        self.idle_cycles += o.idle_cycles;
        self.parks += o.parks;
        self.wakeups += o.wakeups;
        self.steal_nodes += o.steal_nodes;
        self.spin_transfer_cycles += o.spin_transfer_cycles;
        self.l1_misses += o.l1_misses;
        self.l2_misses += o.l2_misses;
        self.miss_cycles += o.miss_cycles;
    }
}

/// The costs the engine charges, from the calibration (cycles).
#[derive(Clone, Debug)]
pub struct StepCosts {
    pub design: DesignCosts,
    pub lock: f64,
    /// Moving one cache line from core `a`'s caches to core `b` (`transfer[a * cores + b]`):
    /// what a steal (the victim's lock and queue: two lines) and a post to another core (one)
    /// add for the lines that live on the other core.
    pub transfer: Vec<f64>,
    pub cores: usize,
    pub wake_latency: f64,
    pub wake_post: f64,
    pub search_nap: f64,
    /// The runtime's search interval before parking (`search_us`), in cycles.
    pub search: f64,
}

impl StepCosts {
    pub fn new(
        cal: &Calibration,
        queue: QueueKind,
        search_cycles: f64,
        transfer: Vec<f64>,
    ) -> StepCosts {
        let cores = (transfer.len() as f64).sqrt() as usize;
        assert_eq!(cores * cores, transfer.len(), "a square transfer matrix");
        StepCosts {
            design: cal.design(queue).clone(),
            lock: cal.lock,
            transfer,
            cores,
            wake_latency: cal.wake_latency,
            wake_post: cal.wake_post,
            search_nap: cal.search_nap,
            search: search_cycles,
        }
    }
}

/// The event a core is running.
struct Current {
    /// When the event started (its trace record's start).
    start: u64,
    color: Color,
    handler: HandlerId,
    stolen: bool,
    /// Cycles of the event so far, without the runtime's per-event cost (what a worker's
    /// profile measures).
    exec: f64,
    then: Option<Then>,
}

#[derive(Debug)]
enum Phase {
    Pop,
    Run,
    AfterWork,
    /// Retry moving colors that were running (`Effects::place_all`), then post.
    Place(Vec<(Color, usize)>),
    Posts,
    /// Flush the local buffer, then go on with the given phase.
    Flush(Box<Phase>),
    Remote,
    Done,
    /// One victim of a stealing round (the machine's `Search` or `LastLook`).
    Search {
        order: Option<Vec<usize>>,
        next: usize,
    },
    /// The search nap is over (the machine's `Nap`).
    Nap,
    /// Go to sleep under the own lock (the machine's `FallAsleep`).
    Sleep,
    Parked,
    Wake,
}

struct VCore {
    phase: Phase,
    stats: CoreStats,
    /// Lock wait of the step in progress (added to the locking time when the lock is taken).
    waited: u64,
    /// When the current idle period began (its search time counts from there).
    idle_since: Option<u64>,
    current: Option<Current>,
    held: VecDeque<Held>,
    /// Local posts in the buffer since the last flush.
    buffered: usize,
    /// Asleep in `Phase::Parked` (until the wake-up's latency has passed).
    parked: bool,
    /// Woken, waiting for the wake-up latency to pass.
    waking: bool,
    /// This core's trace (off without `--trace`), in virtual cycles.
    rec: Recorder,
}

/// The outcome of a simulation.
#[derive(Debug)]
pub struct Outcome {
    /// Events of completed rounds (what the benchmarks count).
    pub events: u64,
    pub rounds: u64,
    /// Virtual cycles until the last round finished.
    pub cycles: u64,
    pub cores: Vec<CoreStats>,
    pub total: CoreStats,
    /// The time-left threshold at the end.
    pub steal_threshold: u64,
    /// Broken color guarantees and workload errors (none in a correct run).
    pub violations: Vec<String>,
    /// Each core's trace, in virtual cycles (empty without a trace bound).
    pub traces: Vec<TraceBuf>,
    /// The registered handlers' names, by id.
    pub handler_names: Vec<String>,
}

pub struct Engine<'w> {
    rt: SimRuntime,
    work: &'w mut dyn Workload,
    caches: Caches,
    costs: StepCosts,
    agenda: BinaryHeap<Reverse<(u64, u64, usize)>>,
    seq: u64,
    now: u64,
    cores: Vec<VCore>,
    /// Per core lock: free from this cycle on.
    locks: Vec<u64>,
    /// Shared atomics' lines (workload ids): the core that wrote each last.
    shared_lines: HashMap<u64, usize>,
    /// Per core lock: the cores (bit `core % 64`) that spun on it during its current hold
    /// (`--lock tas`; each is charged once per hold).
    spun: Vec<u64>,
    /// Per core lock: the core that held it last (its line, and the queue lines written under
    /// it, sit in that core's cache).
    last_holder: Vec<usize>,
    rng: SmallRng,
    jitter: f64,
    /// Per color: busy until (u64::MAX while an event runs) and on which core.
    busy: HashMap<u32, (u64, usize)>,
    violations: Vec<String>,
    /// The step in progress claimed a wake-up (the stepping core pays for it).
    claimed_wake: bool,
    /// The queue locks are test-and-set spin locks (`LockKind::Tas`): every try of a waiter
    /// moves the lock's line.
    tas: bool,
    /// libasync's steal walks the victim's list again from its head (`StealWalk::FromHead`):
    /// every node it reads is a line the victim's core wrote.
    walk_from_head: bool,
}

impl<'w> Engine<'w> {
    /// An engine over `rt`; `trace`: what each virtual core records (`None`: no trace).
    pub fn new(
        rt: SimRuntime,
        work: &'w mut dyn Workload,
        caches: Caches,
        costs: StepCosts,
        seed: u64,
        jitter: f64,
        trace: Option<Bound>,
    ) -> Engine<'w> {
        let n = rt.workers();
        let fidelity = rt.fidelity();
        let cores = (0..n)
            .map(|w| VCore {
                phase: Phase::Pop,
                stats: CoreStats::default(),
                waited: 0,
                idle_since: None,
                current: None,
                held: VecDeque::new(),
                buffered: 0,
                parked: false,
                waking: false,
                rec: Recorder::new(w, trace),
            })
            .collect();
        Engine {
            rt,
            work,
            caches,
            costs,
            agenda: BinaryHeap::new(),
            seq: 0,
            now: 0,
            cores,
            locks: vec![0; n],
            last_holder: (0..n).collect(),
            spun: vec![0; n],
            shared_lines: HashMap::new(),
            rng: SmallRng::seed_from_u64(seed),
            jitter,
            busy: HashMap::new(),
            violations: Vec::new(),
            claimed_wake: false,
            tas: fidelity.lock == LockKind::Tas,
            walk_from_head: fidelity.steal_walk == StealWalk::FromHead,
        }
    }

    /// Trace a state change of core `w` at the current cycle, with its queue length.
    fn record_state(&mut self, w: usize, state: State) {
        if self.cores[w].rec.is_on() {
            let queue_len = sat32(self.rt.queued(w) as u64);
            let at = self.now;
            self.cores[w].rec.record(Record::State {
                at,
                queue_len,
                state,
            });
        }
    }

    fn schedule(&mut self, w: usize, at: u64, phase: Phase) {
        self.cores[w].phase = phase;
        self.seq += 1;
        self.agenda.push(Reverse((at, self.seq, w)));
    }

    /// A step cost with the seeded jitter applied.
    fn jit(&mut self, cycles: f64) -> u64 {
        let f = if self.jitter > 0.0 {
            1.0 + self.jitter * (2.0 * self.rng.gen::<f64>() - 1.0)
        } else {
            1.0
        };
        (cycles * f).max(0.0).round() as u64
    }

    /// When `locks` are all free: `None` if now, else the cycle to retry at (the wait counts).
    ///
    /// On a test-and-set lock (`--lock tas`) the waiter spins with atomic read-modify-writes,
    /// each of which takes the lock's line: the holder's unlock must take it back, so each hold
    /// of a lock ends one line transfer later per core that spun on it during the hold (each
    /// spinner counted once per hold).
    fn wait_for(&mut self, w: usize, locks: &[usize]) -> Option<u64> {
        let free = locks.iter().map(|&l| self.locks[l]).max().unwrap_or(0);
        if free <= self.now {
            return None;
        }
        if self.tas {
            for &l in locks {
                if self.locks[l] > self.now && self.spun[l] & (1 << (w % 64)) == 0 {
                    self.spun[l] |= 1 << (w % 64);
                    let holder = self.last_holder[l];
                    let t = self.jit(self.costs.transfer[w * self.costs.cores + holder]);
                    self.locks[l] += t;
                    self.cores[holder].stats.spin_transfer_cycles += t;
                }
            }
        }
        let free = locks.iter().map(|&l| self.locks[l]).max().unwrap_or(0);
        self.cores[w].waited += free - self.now;
        Some(free)
    }

    /// Core `w` holds `locks` from now for `hold` cycles, plus, when `w` takes its own lock
    /// after another core held it (a thief, a remote poster), the transfer of the lines that
    /// core wrote under it back to `w` ([`OWNER_LINES_BACK`]); returns the whole hold. A
    /// caller taking another core's lock charges its own transfers (a steal's, a remote
    /// post's).
    fn hold(&mut self, w: usize, locks: &[usize], hold: u64) -> u64 {
        let mut hold = hold;
        if locks.contains(&w) && self.last_holder[w] != w {
            let from = self.last_holder[w];
            let back = OWNER_LINES_BACK * self.costs.transfer[from * self.costs.cores + w];
            hold += self.jit(back);
        }

        for &l in locks {
            self.locks[l] = self.now + hold;
            self.last_holder[l] = w;
            self.spun[l] = 0;
        }
        let c = &mut self.cores[w];
        c.stats.lock_cycles += c.waited + hold;
        c.waited = 0;
        hold
    }

    /// Run the workload until it has finished its last round after `seconds` of virtual time at
    /// `hz` (or, for a workload that ends by itself, until it drained).
    pub fn run(mut self, seconds: f64, hz: f64) -> Result<Outcome> {
        vctx::open();
        let result = self.run_inner(seconds, hz);
        let fifo = vctx::close();
        let mut out = result?;
        out.violations.extend(fifo);
        Ok(out)
    }

    fn run_inner(&mut self, seconds: f64, hz: f64) -> Result<Outcome> {
        self.work.start(&self.rt)?;
        for w in 0..self.cores.len() {
            self.schedule(w, 0, Phase::Pop);
        }
        let stop_at = (seconds * hz) as u64;
        let deadline = stop_at + (GRACE_SECONDS * hz) as u64;
        loop {
            let Some(Reverse((t, _, w))) = self.agenda.pop() else {
                if self.work.drained() {
                    break;
                }
                bail!(
                    "every virtual core is parked at cycle {} and the workload is not done",
                    self.now
                );
            };
            self.now = t;
            if t >= stop_at {
                self.work
                    .rounds()
                    .stop
                    .store(true, std::sync::atomic::Ordering::Release);
            }
            if t > deadline {
                bail!("the last round did not finish within {GRACE_SECONDS} s of virtual time");
            }
            self.claimed_wake = false;
            let phase = std::mem::replace(&mut self.cores[w].phase, Phase::Parked);
            let next = self.step(w, phase)?;
            let extra = self.wake_claimed(w);
            match next {
                Some((_, Phase::Parked)) => {
                    self.record_state(w, State::Sleep);
                    let c = &mut self.cores[w];
                    c.stats.parks += 1;
                    c.phase = Phase::Parked;
                    c.parked = true;
                }
                Some((at, phase)) => self.schedule(w, at + extra, phase),
                None => {}
            }
            let r = self.work.rounds();
            if r.finished.load(std::sync::atomic::Ordering::Acquire) {
                break;
            }
            // A workload that ends by itself is over once its last event is done, whether the
            // idle cores park or spin (spinning cores never leave the agenda empty).
            if self.work.drained() && self.cores.iter().all(|c| c.current.is_none()) {
                break;
            }
        }
        Ok(self.outcome())
    }

    /// Wake every parked core a post claimed; returns what the claim costs the poster `w`.
    /// With spinning idle cores (`--idle spin`) a core that may not steal (`--thieves`) polls
    /// its own queue instead of sleeping: it sees the post one pop later, and the poster pays
    /// no wake-up.
    fn wake_claimed(&mut self, w: usize) -> u64 {
        let mut claimed = false;
        let spins = self.rt.idle_spins();
        for v in 0..self.cores.len() {
            if self.cores[v].parked && !self.cores[v].waking && !self.rt.is_asleep(v) {
                self.cores[v].waking = true;
                self.cores[v].stats.wakeups += 1;
                let latency = if spins {
                    self.costs.design.pop
                } else {
                    claimed |= v != w;
                    self.costs.wake_latency
                };
                let at = self.now + self.jit(latency);
                self.schedule(v, at, Phase::Wake);
            }
        }
        if claimed && self.claimed_wake {
            self.jit(self.costs.wake_post)
        } else {
            0
        }
    }

    fn step(&mut self, w: usize, phase: Phase) -> Result<Option<(u64, Phase)>> {
        let now = self.now;
        Ok(Some(match phase {
            Phase::Pop => return Ok(Some(self.pop(w))),
            Phase::Run => self.run_event(w)?,
            Phase::AfterWork => self.after_work(w),
            Phase::Place(colors) => self.place(w, colors),
            Phase::Posts => self.posts(w),
            Phase::Flush(then) => {
                if let Some(at) = self.wait_for(w, &[w]) {
                    return Ok(Some((at, Phase::Flush(then))));
                }
                let n = self.rt.flush(w);
                self.claimed_wake = true;
                let d = &self.costs.design;
                let cost = d.flush_one + d.push * n.saturating_sub(1) as f64;
                let hold = self.jit(cost);
                let hold = self.hold(w, &[w], hold);
                self.cores[w].buffered = 0;
                if let Some(c) = self.cores[w].current.as_mut() {
                    c.exec += hold as f64;
                }
                (now + hold, *then)
            }
            Phase::Remote => return Ok(Some(self.remote(w))),
            Phase::Done => self.done(w),
            Phase::Search { order, next } => return Ok(Some(self.search(w, order, next))),
            Phase::Sleep => {
                if let Some(at) = self.wait_for(w, &[w]) {
                    return Ok(Some((at, Phase::Sleep)));
                }
                let hold = self.jit(self.costs.lock);
                let hold = self.hold(w, &[w], hold);
                let next = self.rt.fall_asleep(w);
                (now + hold, self.phase_for(w, next))
            }
            Phase::Nap => {
                let next = self.rt.napped(w);
                self.record_state(w, State::Search);
                (now, self.phase_for(w, next))
            }
            Phase::Wake => {
                let next = self.rt.woke(w);
                self.cores[w].waking = false;
                self.cores[w].parked = false;
                self.record_state(w, State::Wake);
                (now, self.phase_for(w, next))
            }
            Phase::Parked => bail!("core {w}: a parked core was scheduled"),
        }))
    }

    /// The engine's phase that performs step `step` of core `w`'s machine, now. `Park` is
    /// `Phase::Parked` unless a post claimed the wake-up already (during the last look): then
    /// the core never parks and the machine's park ends at once, as a worker's `park` returns
    /// at once for a claimed wake-up.
    fn phase_for(&mut self, w: usize, step: Step) -> Phase {
        match step {
            Step::Work => Phase::Pop,
            Step::Search | Step::LastLook => Phase::Search {
                order: None,
                next: 0,
            },
            Step::Nap => Phase::Nap,
            Step::FallAsleep => Phase::Sleep,
            Step::Park if self.rt.is_asleep(w) => Phase::Parked,
            Step::Park => {
                let next = self.rt.woke(w);
                self.phase_for(w, next)
            }
        }
    }

    /// Enqueue what the finished batch posted to this core and pop the next, under one lock.
    fn pop(&mut self, w: usize) -> (u64, Phase) {
        if let Some(at) = self.wait_for(w, &[w]) {
            return (at, Phase::Pop);
        }
        let d = &self.costs.design;
        let flushed = std::mem::take(&mut self.cores[w].buffered);
        let hold = self.jit(d.pop + d.push * flushed as f64);
        let hold = self.hold(w, &[w], hold);
        let at = self.now + hold;
        if self.rt.pop(w).is_some() {
            let core = &mut self.cores[w];
            if let Some(since) = core.idle_since.take() {
                core.stats.idle_cycles += self.now - since;
                self.record_state(w, State::Busy);
            }
            return (at, Phase::Run);
        }
        if self.cores[w].idle_since.is_none() {
            self.cores[w].idle_since = Some(self.now);
            self.record_state(w, State::Idle);
        }
        let next = self.rt.queue_empty(w);
        if next == Step::Search {
            self.record_state(w, State::Search);
        }
        (at, self.phase_for(w, next))
    }

    fn run_event(&mut self, w: usize) -> Result<(u64, Phase)> {
        vctx::begin(w, self.now);
        let Some(ran) = self.rt.run_next(w) else {
            bail!("core {w}: Run with an empty batch");
        };
        let (job, poster) = vctx::end().unwrap_or_else(|| (Job::work(0.0), None));
        if ran.panicked {
            self.violations
                .push(format!("an event of color {} panicked", ran.color.0));
        }
        if let Some(&(until, core)) = self.busy.get(&ran.color.0) {
            if until > self.now && core != w {
                self.violations.push(format!(
                    "color {} started on core {w} at cycle {} while core {core} ran it until {}",
                    ran.color.0,
                    self.now,
                    if until == u64::MAX {
                        "later".to_string()
                    } else {
                        until.to_string()
                    }
                ));
            }
        }
        self.busy.insert(ran.color.0, (u64::MAX, w));
        let mut served = Served::default();
        for a in &job.accesses {
            served += self.caches.access(w, a.array, a.offset, a.bytes, a.how);
        }
        // An event posted on another core (stolen, or posted remotely): its node and closure
        // were written there, so their lines come over when it runs here.
        if let Some(p) = poster.filter(|&p| p != w) {
            served.cycles += EVENT_LINES * self.costs.transfer[p * self.costs.cores + w];
        }
        for &line in &job.shared {
            match self.shared_lines.insert(line, w) {
                Some(last) if last != w => {
                    served.cycles += self.costs.transfer[last * self.costs.cores + w];
                }
                _ => {}
            }
        }
        let s = &mut self.cores[w].stats;
        s.l1_misses += served.l1_misses;
        s.l2_misses += served.l2_misses;
        s.miss_cycles += served.cycles as u64;
        let exec = job.work + served.cycles;
        let cost = self.jit(self.costs.design.run_event) + exec.round() as u64;
        self.cores[w].current = Some(Current {
            start: self.now,
            color: ran.color,
            handler: ran.handler,
            stolen: ran.stolen,
            exec,
            then: job.then,
        });
        Ok((self.now + cost, Phase::AfterWork))
    }

    fn after_work(&mut self, w: usize) -> (u64, Phase) {
        let cur = self.cores[w].current.as_mut().expect("an event is running");
        let Some(then) = cur.then.take() else {
            return (self.now, Phase::Posts);
        };
        let color = cur.color;
        let place = self.costs.design.place;
        let mut fx = Effects::new(self.rt.handle(), w, color, place);
        then(&mut fx);
        let (posts, work, errors, unplaced) = (fx.posts, fx.work, fx.errors, fx.unplaced);
        self.violations.extend(errors);
        let core = &mut self.cores[w];
        core.held.extend(posts);
        let cur = core.current.as_mut().expect("running");
        cur.exec += work;
        let at = self.now + work.round() as u64;
        if unplaced.is_empty() {
            (at, Phase::Posts)
        } else {
            (at, Phase::Place(unplaced))
        }
    }

    /// One more attempt for each color that was running, as `place_all`'s retry loop.
    fn place(&mut self, w: usize, colors: Vec<(Color, usize)>) -> (u64, Phase) {
        let color = self.cores[w].current.as_ref().expect("running").color;
        let place = self.costs.design.place;
        let mut fx = Effects::new(self.rt.handle(), w, color, place);
        let left: Vec<(Color, usize)> = colors
            .into_iter()
            .filter(|&(c, core)| !fx.place(c, core))
            .collect();
        let (work, errors) = (fx.work, fx.errors);
        let dt = self.jit(work);
        self.violations.extend(errors);
        if let Some(c) = self.cores[w].current.as_mut() {
            c.exec += dt as f64;
        }
        let phase = if left.is_empty() {
            Phase::Posts
        } else {
            Phase::Place(left)
        };
        (self.now + dt.max(1), phase)
    }

    /// Send the event's next posts: as many local ones as fit before the next flush, or one
    /// remote (after flushing the buffer, which keeps each color's order), or finish.
    fn posts(&mut self, w: usize) -> (u64, Phase) {
        let mut local = 0;
        let post_batch = self.rt.post_batch();
        while self.cores[w].buffered < post_batch {
            let Some(h) = self.cores[w].held.front() else {
                break;
            };
            if self.rt.handle().core_of(h.color) != w {
                break;
            }
            let h = self.cores[w].held.pop_front().expect("front exists");
            let task = vctx::closure(h.color, w, h.job);
            self.rt.post_local(w, h.color, h.handler, task);
            self.cores[w].buffered += 1;
            local += 1;
        }
        let dt = self.jit(self.costs.design.post_local * local as f64);
        if let Some(c) = self.cores[w].current.as_mut() {
            c.exec += dt as f64;
        }
        let at = self.now + dt;
        let core = &self.cores[w];
        let more = !core.held.is_empty();
        if core.buffered >= post_batch {
            return (at, Phase::Flush(Box::new(Phase::Posts)));
        }
        match (more, core.buffered > 0) {
            (true, true) => (at, Phase::Flush(Box::new(Phase::Remote))),
            (true, false) => (at, Phase::Remote),
            // What is left in the buffer is enqueued by the next pop, under the same lock.
            (false, _) => (at, Phase::Done),
        }
    }

    fn remote(&mut self, w: usize) -> (u64, Phase) {
        let color = self.cores[w]
            .held
            .front()
            .expect("a remote post is held")
            .color;
        let target = self.rt.handle().core_of(color);
        if let Some(at) = self.wait_for(w, &[target]) {
            return (at, Phase::Remote);
        }
        let h = self.cores[w].held.pop_front().expect("front exists");
        let task = vctx::closure(h.color, w, h.job);
        if !self.rt.post_from(w, h.color, h.handler, task) {
            self.violations
                .push(format!("a post to color {} was refused", h.color.0));
        }
        self.claimed_wake = true;
        let line = self.costs.transfer[target * self.costs.cores + w];
        let hold = self.jit(self.costs.design.post_remote + line);
        let hold = self.hold(w, &[target], hold);
        if let Some(c) = self.cores[w].current.as_mut() {
            c.exec += hold as f64;
        }
        (self.now + hold, Phase::Posts)
    }

    fn done(&mut self, w: usize) -> (u64, Phase) {
        let cur = self.cores[w].current.take().expect("an event ran");
        self.busy.insert(cur.color.0, (self.now, w));
        let now = self.now;
        self.cores[w].rec.record_with(|| Record::Run {
            start: cur.start,
            end: now,
            color: cur.color.0,
            handler: cur.handler.index() as u16,
            seq: NO_SEQ,
        });
        let exec = cur.exec.round() as u64;
        self.rt.profile(w, cur.handler, exec);
        let s = &mut self.cores[w].stats;
        s.events += 1;
        if cur.stolen {
            s.stolen_time_cycles += exec;
            s.stolen_events += 1;
        }
        if self.rt.batch_left(w) > 0 {
            (self.now, Phase::Run)
        } else {
            (self.now, Phase::Pop)
        }
    }

    /// One victim of a stealing round, or the round's end: in a search, a nap, sleep, or the own
    /// work; after the last look, sleep (or the wake-up claimed meanwhile).
    fn search(&mut self, w: usize, order: Option<Vec<usize>>, mut next: usize) -> (u64, Phase) {
        let fresh = order.is_none();
        let round = self.rt.round(w);
        let order = order.unwrap_or_else(|| self.rt.core_set(w));
        while next < order.len() {
            let v = order[next];
            if self.rt.skips(v, round) {
                next += 1;
                continue;
            }
            if let Some(at) = self.wait_for(w, &[v, w]) {
                let phase = Phase::Search {
                    order: Some(order),
                    next,
                };
                return (at, phase);
            }
            self.cores[w].stats.steal_attempts += 1;
            let d = &self.costs.design;
            let line = self.costs.transfer[v * self.costs.cores + w];
            let transfer = 2.0 * line;
            let waited = self.cores[w].waited;
            match self.rt.steal_from(w, v, round) {
                StealTry::Skipped => next += 1,
                StealTry::Failed { victim_len } => {
                    let hold = self.jit(d.steal_fail + transfer);
                    let hold = self.hold(w, &[v, w], hold);
                    let outcome = if victim_len == 0 {
                        StealOutcome::Empty
                    } else {
                        StealOutcome::Nothing
                    };
                    self.record_steal(w, v, waited, hold, (0, 0, 0), outcome);
                    let phase = Phase::Search {
                        order: Some(order),
                        next: next + 1,
                    };
                    return (self.now + hold, phase);
                }
                StealTry::Stole {
                    colors,
                    events,
                    victim_len,
                    nodes,
                } => {
                    // libasync-smp's walk from the head reads every node it passes on the
                    // victim, lines the victim's core wrote; ours is the calibrated steal.
                    let walk = if self.walk_from_head {
                        nodes as f64 * line
                    } else {
                        0.0
                    };
                    let cost = d.steal_base
                        + d.steal_per_color * colors as f64
                        + d.steal_per_event * events as f64
                        + d.steal_per_queued * victim_len as f64
                        + transfer
                        + walk;
                    let hold = self.jit(cost);
                    let hold = self.hold(w, &[v, w], hold);
                    self.rt.record_steal(hold, colors);
                    self.record_steal(
                        w,
                        v,
                        waited,
                        hold,
                        (events, colors, nodes),
                        StealOutcome::Stolen,
                    );
                    let s = &mut self.cores[w].stats;
                    s.steals += 1;
                    s.stolen_colors += colors as u64;
                    s.steal_nodes += nodes as u64;
                    s.steal_cost_cycles += hold;
                    let step = self.rt.round_ended(w, true, 0, 0);
                    self.record_state_at(w, self.now + hold, State::Busy);
                    return (self.now + hold, self.phase_for(w, step));
                }
            }
        }
        let searched = self.cores[w].idle_since.map_or(0, |since| self.now - since);
        let step = self
            .rt
            .round_ended(w, false, searched, self.costs.search as u64);
        match (round, step) {
            // A spinning search's next round starts at once: its cost is its steps', or, for a
            // round that locked no victim (a peeking design passing over empty queues), one
            // uncontended lock operation's, for the peeks and the loop.
            (Round::Search, Step::Search) => {
                let dt = if fresh {
                    self.jit(self.costs.lock).max(1)
                } else {
                    0
                };
                (self.now + dt, self.phase_for(w, step))
            }
            (_, Step::Nap) => {
                let nap = self.jit(self.costs.search_nap);
                self.record_state(w, State::Nap);
                (self.now + nap, Phase::Nap)
            }
            _ => (self.now, self.phase_for(w, step)),
        }
    }

    /// Trace a state change of core `w` at cycle `at` (the end of the current step).
    fn record_state_at(&mut self, w: usize, at: u64, state: State) {
        if self.cores[w].rec.is_on() {
            let queue_len = sat32(self.rt.queued(w) as u64);
            self.cores[w].rec.record(Record::State {
                at,
                queue_len,
                state,
            });
        }
    }

    /// Trace core `w`'s steal attempt on `v` that ends now + `hold`, after waiting `waited`
    /// cycles for the locks; `moved`: events, colors and nodes read.
    fn record_steal(
        &mut self,
        w: usize,
        v: usize,
        waited: u64,
        hold: u64,
        moved: (usize, usize, usize),
        outcome: StealOutcome,
    ) {
        let now = self.now;
        self.cores[w].rec.record_with(|| Record::Steal {
            start: now - waited,
            dur: sat32(waited + hold),
            lock_wait: sat32(waited),
            lock_hold: sat32(hold),
            events: sat32(moved.0 as u64),
            victim: sat16(v as u64),
            colors: sat16(moved.1 as u64),
            nodes: sat16(moved.2 as u64),
            outcome,
        });
    }

    fn outcome(&mut self) -> Outcome {
        let now = self.now;
        let mut total = CoreStats::default();
        for c in &mut self.cores {
            if let Some(since) = c.idle_since.take() {
                c.stats.idle_cycles += now - since;
            }
            c.stats.busy_cycles = now.saturating_sub(c.stats.idle_cycles);
            total.add(&c.stats);
        }
        let r = self.work.rounds();
        Outcome {
            events: r.events.load(std::sync::atomic::Ordering::Relaxed),
            rounds: r.rounds.load(std::sync::atomic::Ordering::Relaxed),
            cycles: now,
            cores: self.cores.iter().map(|c| c.stats.clone()).collect(),
            total,
            steal_threshold: self.rt.steal_threshold(),
            violations: std::mem::take(&mut self.violations),
            traces: self.cores.iter_mut().filter_map(|c| c.rec.take()).collect(),
            handler_names: self.rt.handler_names(),
        }
    }
}
