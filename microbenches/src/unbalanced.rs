//! The real run of `unbalanced` (its definition: [`microbench_defs::unbalanced`]): the round
//! on the colored runtime and on tokio.

use crate::common::{measure_fork_join, runtime, Control, Outcome, Setup};
use crate::perf::LlcCounter;
use colored_runtime::{tsc, Color, Ctx, HandlerId, HandlerSpec};
use microbench_defs::unbalanced::{handler_specs, plan};
pub use microbench_defs::unbalanced::{Costs, Params};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

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
