//! `unbalanced` (Mely paper, section V-B, Tables III and IV): fork/join rounds; each round posts
//! 50 000 independent events (distinct colors) on core 0; 98% cost 100 cycles, 2% cost 10-50
//! Kcycles (busy work measured with the cycle counter); the next round starts when all are done.
//! Short and long events use two handlers, so time-left stealing can tell them apart, either from
//! cost annotations (`--costs annotated`) or from the runtime's automatic profiling
//! (`--costs profiled`).

use crate::common::{measure_fork_join, runtime, Control, Outcome, Setup};
use crate::perf::LlcCounter;
use colored_runtime::{tsc, Color, Ctx, HandlerId, HandlerSpec};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Costs {
    /// Handlers carry cost annotations (Mely's time-left annotations).
    Annotated,
    /// No annotations: time-left stealing uses the runtime's automatic handler profiles.
    Profiled,
}

#[derive(Clone, Debug)]
pub struct Params {
    pub events_per_round: usize,
    pub long_fraction: f64,
    pub short_cycles: u64,
    pub long_cycles: (u64, u64),
    pub seed: u64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            events_per_round: 50_000,
            long_fraction: 0.02,
            short_cycles: 100,
            long_cycles: (10_000, 50_000),
            seed: 42,
        }
    }
}

/// The short and long events' handlers: annotated with their costs (the long ones' mean), or
/// left to the runtime's profiling.
pub fn handler_specs(costs: Costs, p: &Params) -> [HandlerSpec; 2] {
    let mean_long = (p.long_cycles.0 + p.long_cycles.1) / 2;
    match costs {
        Costs::Annotated => [
            HandlerSpec::new("short").cost_cycles(p.short_cycles),
            HandlerSpec::new("long").cost_cycles(mean_long),
        ],
        Costs::Profiled => [HandlerSpec::new("short"), HandlerSpec::new("long")],
    }
}

/// One round's events, identical every round: (color, cycles, long?).
pub fn plan(p: &Params) -> Vec<(u32, u32, bool)> {
    let mut rng = SmallRng::seed_from_u64(p.seed);
    (0..p.events_per_round)
        .map(|i| {
            let long = rng.gen_bool(p.long_fraction);
            let cycles = if long {
                rng.gen_range(p.long_cycles.0..=p.long_cycles.1)
            } else {
                p.short_cycles
            };
            (i as u32 + 1, cycles as u32, long)
        })
        .collect()
}

struct State {
    ctl: &'static Control,
    plan: Vec<(u32, u32, bool)>,
    remaining: AtomicU64,
    fork: HandlerId,
    short: HandlerId,
    long: HandlerId,
}

fn fork(ctx: &mut Ctx<'_>, st: &'static State) {
    if st.ctl.stop.load(Ordering::Acquire) {
        st.ctl.finished.store(true, Ordering::Release);
        return;
    }
    // Every round starts with all its colors on core 0 (steals of the last round moved some).
    let moved = st.plan.iter().map(|&(c, _, _)| Color(c));
    ctx.handle().place_all(moved, 0).expect("core 0 exists");
    st.remaining.store(st.plan.len() as u64, Ordering::Relaxed);
    st.ctl.rounds.fetch_add(1, Ordering::Relaxed);
    for &(color, cycles, long) in &st.plan {
        let h = if long { st.long } else { st.short };
        ctx.post(Color(color), h, move |ctx| {
            tsc::spin_cycles(cycles as u64);
            if st.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                st.ctl
                    .events
                    .fetch_add(st.plan.len() as u64, Ordering::Relaxed);
                ctx.post(Color(0), st.fork, move |ctx| fork(ctx, st));
            }
        });
    }
}

pub fn run_colored(
    setup: &Setup,
    seconds: f64,
    costs: Costs,
    p: &Params,
) -> anyhow::Result<Outcome> {
    let llc = LlcCounter::open();
    let rt = runtime(setup)?;
    let [short, long] = handler_specs(costs, p).map(|h| rt.register(h));
    let ctl = Control::leak();
    let st: &'static State = Box::leak(Box::new(State {
        ctl,
        plan: plan(p),
        remaining: AtomicU64::new(0),
        fork: rt.register(HandlerSpec::new("fork")),
        short,
        long,
    }));
    measure_fork_join(rt, ctl, seconds, llc, |rt| {
        rt.post(Color(0), st.fork, move |ctx| fork(ctx, st))?;
        Ok(())
    })
}

/// The same fork/join on tokio's multi-thread runtime: one task spawns the round's tasks, tokio's
/// work stealing spreads them.
pub fn run_tokio(workers: usize, seconds: f64, p: &Params) -> anyhow::Result<Outcome> {
    let llc = LlcCounter::open();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .build()?;
    let plan: &'static Vec<(u32, u32, bool)> = Box::leak(Box::new(plan(p)));
    let start = Instant::now();
    let deadline = start + std::time::Duration::from_secs_f64(seconds);
    let (rounds, events) = rt.block_on(async move {
        tokio::spawn(async move {
            let (mut rounds, mut events) = (0u64, 0u64);
            while Instant::now() < deadline {
                let remaining: &'static AtomicU64 =
                    Box::leak(Box::new(AtomicU64::new(plan.len() as u64)));
                let done = std::sync::Arc::new(tokio::sync::Notify::new());
                for &(_, cycles, _) in plan.iter() {
                    let done = done.clone();
                    drop(tokio::spawn(async move {
                        tsc::spin_cycles(cycles as u64);
                        if remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                            done.notify_one();
                        }
                    }));
                }
                done.notified().await;
                rounds += 1;
                events += plan.len() as u64;
            }
            (rounds, events)
        })
        .await
        .expect("fork/join task")
    });
    let elapsed = start.elapsed();
    drop(rt);
    Ok(Outcome {
        events,
        elapsed,
        stats: None,
        llc_misses_per_event: llc
            .and_then(|c| c.read())
            .map(|m| m as f64 / events.max(1) as f64),
        rounds,
        extra: Default::default(),
        trace: None,
    })
}
