//! The benchmarks as the simulator runs them: the same event graphs, handlers, annotations,
//! penalties, colors and placements as `unbalanced`, `penalty` and `cache-efficient` (and their
//! `Params`), each event a [`Job`]: its work in cycles (the calibrated kernels), the data it
//! touches (for the cache model), and what it does at its end. A random workload exercises the
//! color guarantee in the tests.

use super::cache::Use;
use super::calibrate::Kernels;
use super::vctx::{self, Effects, Job};
use colored_runtime::stepped::SimRuntime;
use colored_runtime::{Color, HandlerId, HandlerSpec};
use microbench_defs::unbalanced::Costs;
use microbench_defs::{cache_efficient, penalty, unbalanced};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// The line of a round's join counter (`remaining`), which the events that end a piece of the
/// round decrement, as the real benchmarks' do (one `fetch_sub` on a shared atomic).
pub const JOIN_LINE: u64 = 0;

/// Fork/join control, as `common::Control`: the fork checks `stop`; `finished` once it saw it.
#[derive(Default)]
pub struct Rounds {
    pub stop: AtomicBool,
    pub finished: AtomicBool,
    pub rounds: AtomicU64,
    /// Events of completed rounds (what the real benchmarks count).
    pub events: AtomicU64,
}

impl Rounds {
    /// An event that ends a piece of the round counts down its join counter `remaining`; the
    /// last one credits the round's `events` and returns true (it then posts the next fork).
    fn piece_done(&self, remaining: &AtomicU64, events: u64) -> bool {
        let last = remaining.fetch_sub(1, Ordering::AcqRel) == 1;
        if last {
            self.events.fetch_add(events, Ordering::Relaxed);
        }
        last
    }

    /// The fork's check: after `stop`, mark the run finished and start no round.
    fn stopping(&self) -> bool {
        let stop = self.stop.load(Ordering::Acquire);
        if stop {
            self.finished.store(true, Ordering::Release);
        }
        stop
    }
}

/// A simulated benchmark.
pub trait Workload {
    /// Register the handlers and post the first event.
    fn start(&mut self, rt: &SimRuntime) -> anyhow::Result<()>;
    /// Fork/join progress.
    fn rounds(&self) -> &Rounds;
    /// Its parameters, printed with the results.
    fn params(&self) -> Value;
    /// Whether everything it posted has run (for workloads that end by themselves).
    fn drained(&self) -> bool {
        false
    }
}

// ---------------------------------------------------------------------------------------------

/// `unbalanced`: fork/join rounds of 50 000 events on core 0, 98% of 100 cycles, 2% of 10-50
/// Kcycles (`unbalanced::plan`).
pub struct Unbalanced {
    p: unbalanced::Params,
    costs: Costs,
    k: Kernels,
    st: Option<Arc<UnbalancedState>>,
    ctl: Arc<Rounds>,
}

struct UnbalancedState {
    ctl: Arc<Rounds>,
    plan: Vec<(u32, u32, bool)>,
    remaining: AtomicU64,
    k: Kernels,
    fork: HandlerId,
    short: HandlerId,
    long: HandlerId,
}

impl Unbalanced {
    pub fn new(p: unbalanced::Params, costs: Costs, k: Kernels) -> Self {
        Unbalanced {
            p,
            costs,
            k,
            st: None,
            ctl: Arc::default(),
        }
    }
}

/// The fork: a color-0 event of no declared work (its cost is its posts and placements).
fn unbalanced_fork(st: Arc<UnbalancedState>) -> Job {
    Job::work(0.0).then(move |fx| {
        if st.ctl.stopping() {
            return;
        }
        // Every round starts with all its colors on core 0 (steals of the last round moved some).
        fx.place_all(st.plan.iter().map(|&(c, _, _)| Color(c)), 0);
        st.remaining.store(st.plan.len() as u64, Ordering::Relaxed);
        st.ctl.rounds.fetch_add(1, Ordering::Relaxed);
        for &(color, cycles, long) in &st.plan {
            let h = if long { st.long } else { st.short };
            let st = st.clone();
            let job = Job::work(cycles as f64 + st.k.spin_overshoot)
                .shared(JOIN_LINE)
                .then(move |fx| {
                    if st.ctl.piece_done(&st.remaining, st.plan.len() as u64) {
                        fx.post(Color(0), st.fork, unbalanced_fork(st.clone()));
                    }
                });
            fx.post(Color(color), h, job);
        }
    })
}

impl Workload for Unbalanced {
    fn start(&mut self, rt: &SimRuntime) -> anyhow::Result<()> {
        let [short, long] = unbalanced::handler_specs(self.costs, &self.p).map(|h| rt.register(h));
        let st = Arc::new(UnbalancedState {
            ctl: self.ctl.clone(),
            plan: unbalanced::plan(&self.p),
            remaining: AtomicU64::new(0),
            k: self.k.clone(),
            fork: rt.register(HandlerSpec::new("fork")),
            short,
            long,
        });
        vctx::post_external(rt, Color(0), st.fork, unbalanced_fork(st.clone()))?;
        self.st = Some(st);
        Ok(())
    }
    fn rounds(&self) -> &Rounds {
        &self.ctl
    }
    fn params(&self) -> Value {
        let p = &self.p;
        json!({
            "events_per_round": p.events_per_round,
            "long_fraction": p.long_fraction,
            "short_cycles": p.short_cycles,
            "long_cycles": [p.long_cycles.0, p.long_cycles.1],
            "plan_seed": p.seed,
            "costs": if self.costs == Costs::Annotated { "annotated" } else { "profiled" },
        })
    }
}

// ---------------------------------------------------------------------------------------------

/// `penalty`: core 0 starts each round with A events of distinct colors; A creates its color's
/// array, chains of B events (penalty 1000) walk it slice by slice.
pub struct Penalty {
    p: penalty::Params,
    k: Kernels,
    ctl: Arc<Rounds>,
}

struct PenaltyState {
    ctl: Arc<Rounds>,
    p: penalty::Params,
    k: Kernels,
    remaining: AtomicU64,
    events_per_round: u64,
    fork: HandlerId,
    a: HandlerId,
    b: HandlerId,
}

impl Penalty {
    pub fn new(p: penalty::Params, k: Kernels) -> Self {
        Penalty {
            p,
            k,
            ctl: Arc::default(),
        }
    }
}

fn penalty_fork(st: Arc<PenaltyState>) -> Job {
    Job::work(0.0).then(move |fx| {
        if st.ctl.stopping() {
            return;
        }
        fx.place_all((1..=st.p.a_events as u32).map(Color), 0);
        st.remaining.store(st.p.a_events as u64, Ordering::Relaxed);
        st.ctl.rounds.fetch_add(1, Ordering::Relaxed);
        for c in 1..=st.p.a_events as u32 {
            let bytes = st.p.array_bytes as u64;
            let s = st.clone();
            // A creates its color's array (writes every element), then starts the B chain.
            let a = Job::work(st.k.penalty_fill_per_byte * bytes as f64)
                .access(c as u64, 0, bytes, Use::Write)
                .then(move |fx: &mut Effects<'_>| {
                    let b = s.b;
                    fx.post(Color(c), b, penalty_touch(s, Color(c), 0));
                });
            fx.post(Color(c), st.a, a);
        }
    })
}

/// A B event: the running sum over the slice at `offset` of `color`'s array, then the next B
/// (or, for the last slice, the end of the chain).
fn penalty_touch(st: Arc<PenaltyState>, color: Color, offset: u64) -> Job {
    let (slice, len) = (st.p.slice_bytes as u64, st.p.array_bytes as u64);
    let end = (offset + slice).min(len);
    let job = Job::work(st.k.penalty_touch_per_byte * (end - offset) as f64).access(
        color.0 as u64,
        offset,
        end - offset,
        Use::Write,
    );
    // The chain's last B counts down the round's join counter.
    let job = if end < len {
        job
    } else {
        job.shared(JOIN_LINE)
    };
    job.then(move |fx| {
        if end < len {
            let b = st.b;
            fx.post(color, b, penalty_touch(st, color, end));
            return;
        }
        if st.ctl.piece_done(&st.remaining, st.events_per_round) {
            let fork = st.fork;
            fx.post(Color(0), fork, penalty_fork(st));
        }
    })
}

impl Workload for Penalty {
    fn start(&mut self, rt: &SimRuntime) -> anyhow::Result<()> {
        let p = &self.p;
        let slices = p.array_bytes.div_ceil(p.slice_bytes);
        let st = Arc::new(PenaltyState {
            ctl: self.ctl.clone(),
            p: p.clone(),
            k: self.k.clone(),
            remaining: AtomicU64::new(0),
            events_per_round: (p.a_events * (1 + slices)) as u64,
            fork: rt.register(HandlerSpec::new("fork")),
            a: rt.register(HandlerSpec::new("A").cost_cycles(self.p.a_cost_cycles())),
            b: rt.register(
                HandlerSpec::new("B")
                    .cost_cycles(self.p.b_cost_cycles())
                    .penalty(p.b_penalty),
            ),
        });
        let fork = st.fork;
        vctx::post_external(rt, Color(0), fork, penalty_fork(st))
    }
    fn rounds(&self) -> &Rounds {
        &self.ctl
    }
    fn params(&self) -> Value {
        let p = &self.p;
        json!({
            "a_events": p.a_events,
            "array_bytes": p.array_bytes,
            "slice_bytes": p.slice_bytes,
            "b_penalty": p.b_penalty,
            "a_cost_annotation": self.p.a_cost_cycles(),
            "b_cost_annotation": self.p.b_cost_cycles(),
        })
    }
}

// ---------------------------------------------------------------------------------------------

/// `cache-efficient`: per pair of cores, 100 A events on the pair's first core; A creates an
/// array and posts two sorting B events (other colors, same core); each B posts a C of the
/// array's color; the second C merges.
pub struct CacheEfficient {
    p: cache_efficient::Params,
    k: Kernels,
    cores: usize,
    ctl: Arc<Rounds>,
}

struct CeState {
    ctl: Arc<Rounds>,
    p: cache_efficient::Params,
    k: Kernels,
    cores: usize,
    remaining: AtomicU64,
    events_per_round: u64,
    fork: HandlerId,
    a: HandlerId,
    b: HandlerId,
    c: HandlerId,
}

impl CacheEfficient {
    pub fn new(p: cache_efficient::Params, k: Kernels, cores: usize) -> Self {
        CacheEfficient {
            p,
            k,
            cores,
            ctl: Arc::default(),
        }
    }
}

/// Data-set ids of array `k` of round `r`: its two halves and the merged array.
fn ce_ids(round: u64, k: u32) -> [u64; 3] {
    let base = (round << 24) | (k as u64) << 2;
    [base, base + 1, base + 2]
}

fn ce_fork(st: Arc<CeState>) -> Job {
    Job::work(0.0).then(move |fx| {
        if st.ctl.stopping() {
            return;
        }
        let total = st.p.a_per_pair * cache_efficient::pairs(st.cores);
        for k in 0..total as u32 {
            let core = 2 * (k as usize / st.p.a_per_pair);
            let (a, b1, b2) = cache_efficient::colors(k);
            fx.place_all([a, b1, b2], core);
        }
        st.remaining.store(total as u64, Ordering::Relaxed);
        let round = st.ctl.rounds.fetch_add(1, Ordering::Relaxed);
        for k in 0..total as u32 {
            let (a, _, _) = cache_efficient::colors(k);
            fx.post(a, st.a, ce_a(st.clone(), round, k));
        }
    })
}

/// A: create array `k` (two halves, freshly allocated) and post the two sorting Bs.
fn ce_a(st: Arc<CeState>, round: u64, k: u32) -> Job {
    let ids = ce_ids(round, k);
    let half = (st.p.elements * 4 / 2) as u64;
    Job::work(st.k.ce_generate)
        .access(ids[0], 0, half, Use::Fresh)
        .access(ids[1], 0, half, Use::Fresh)
        .then(move |fx| {
            let (a, b1, b2) = cache_efficient::colors(k);
            let sorted = Arc::new(AtomicU64::new(0));
            for (h, color) in [(0usize, b1), (1, b2)] {
                let (st, sorted, b_handler) = (st.clone(), sorted.clone(), st.b);
                let b = Job::work(st.k.ce_sort)
                    .access(ids[h], 0, half, Use::Write)
                    .then(move |fx| {
                        let c = st.c;
                        fx.post(a, c, ce_merge(st, sorted, ids, half));
                    });
                fx.post(color, b_handler, b);
            }
        })
}

/// C: the first of an array's two Cs only counts; the second merges the halves.
fn ce_merge(st: Arc<CeState>, sorted: Arc<AtomicU64>, ids: [u64; 3], half: u64) -> Job {
    if sorted.fetch_add(1, Ordering::AcqRel) != 1 {
        return Job::work(0.0);
    }
    Job::work(st.k.ce_merge)
        .access(ids[0], 0, half, Use::Read)
        .access(ids[1], 0, half, Use::Read)
        .access(ids[2], 0, 2 * half, Use::Fresh)
        .shared(JOIN_LINE)
        .then(move |fx| {
            if st.ctl.piece_done(&st.remaining, st.events_per_round) {
                let fork = st.fork;
                fx.post(Color(0), fork, ce_fork(st));
            }
        })
}

impl Workload for CacheEfficient {
    fn start(&mut self, rt: &SimRuntime) -> anyhow::Result<()> {
        let total = self.p.a_per_pair * cache_efficient::pairs(self.cores);
        let st = Arc::new(CeState {
            ctl: self.ctl.clone(),
            p: self.p.clone(),
            k: self.k.clone(),
            cores: self.cores,
            remaining: AtomicU64::new(0),
            events_per_round: (total * 5) as u64,
            fork: rt.register(HandlerSpec::new("fork")),
            a: rt.register(HandlerSpec::new("A").cost_cycles(self.p.a_cost_cycles())),
            b: rt.register(HandlerSpec::new("B").cost_cycles(self.p.b_cost_cycles())),
            c: rt.register(HandlerSpec::new("C").cost_cycles(self.p.c_cost_cycles())),
        });
        let fork = st.fork;
        vctx::post_external(rt, Color(0), fork, ce_fork(st))
    }
    fn rounds(&self) -> &Rounds {
        &self.ctl
    }
    fn params(&self) -> Value {
        json!({
            "a_per_pair": self.p.a_per_pair,
            "elements": self.p.elements,
            "pairs": cache_efficient::pairs(self.cores),
            "a_cost_annotation": self.p.a_cost_cycles(),
            "b_cost_annotation": self.p.b_cost_cycles(),
            "c_cost_annotation": self.p.c_cost_cycles(),
        })
    }
}

// ---------------------------------------------------------------------------------------------

/// A random event graph for the tests: `roots` events on random colors, each spawning up to
/// `fanout` children on random colors (a third of them on its own color) with random costs
/// and data, to `depth` generations; some handlers annotated, some with penalties. Ends by
/// itself: `drained` once every posted event ran.
pub struct Random {
    pub seed: u64,
    pub roots: usize,
    pub fanout: u32,
    pub depth: u32,
    pub colors: u32,
    ctl: Arc<Rounds>,
    pending: Arc<AtomicU64>,
}

impl Random {
    pub fn new(seed: u64, roots: usize, fanout: u32, depth: u32, colors: u32) -> Self {
        Random {
            seed,
            roots,
            fanout,
            depth,
            colors,
            ctl: Arc::default(),
            pending: Arc::default(),
        }
    }
}

#[derive(Clone)]
struct RandomEnv {
    handlers: Arc<Vec<HandlerId>>,
    pending: Arc<AtomicU64>,
    fanout: u32,
    colors: u32,
}

fn random_job(env: RandomEnv, seed: u64, depth: u32) -> Job {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut job = Job::work(rng.gen_range(50..20_000) as f64);
    if rng.gen_bool(0.5) {
        let array = rng.gen_range(0..64u64);
        let how = if rng.gen_bool(0.5) {
            Use::Write
        } else {
            Use::Read
        };
        job = job.access(array, rng.gen_range(0..8) * 4096, 4096, how);
    }
    job.then(move |fx| {
        if depth > 0 {
            for _ in 0..rng.gen_range(0..=env.fanout) {
                let color = if rng.gen_bool(0.33) {
                    fx.color()
                } else {
                    Color(rng.gen_range(0..env.colors))
                };
                let h = env.handlers[rng.gen_range(0..env.handlers.len())];
                env.pending.fetch_add(1, Ordering::Relaxed);
                fx.post(color, h, random_job(env.clone(), rng.gen(), depth - 1));
            }
        }
        env.pending.fetch_sub(1, Ordering::AcqRel);
    })
}

impl Workload for Random {
    fn start(&mut self, rt: &SimRuntime) -> anyhow::Result<()> {
        let handlers = vec![
            rt.register(HandlerSpec::new("plain")),
            rt.register(HandlerSpec::new("annotated").cost_cycles(5_000)),
            rt.register(
                HandlerSpec::new("penalised")
                    .cost_cycles(10_000)
                    .penalty(100),
            ),
        ];
        let env = RandomEnv {
            handlers: Arc::new(handlers),
            pending: self.pending.clone(),
            fanout: self.fanout,
            colors: self.colors,
        };
        let mut rng = SmallRng::seed_from_u64(self.seed);
        for _ in 0..self.roots {
            let color = Color(rng.gen_range(0..self.colors));
            let h = env.handlers[rng.gen_range(0..env.handlers.len())];
            self.pending.fetch_add(1, Ordering::Relaxed);
            vctx::post_external(rt, color, h, random_job(env.clone(), rng.gen(), self.depth))?;
        }
        Ok(())
    }
    fn rounds(&self) -> &Rounds {
        &self.ctl
    }
    fn params(&self) -> Value {
        json!({"seed": self.seed, "roots": self.roots, "fanout": self.fanout, "depth": self.depth, "colors": self.colors})
    }
    fn drained(&self) -> bool {
        self.pending.load(Ordering::Acquire) == 0
    }
}
