//! The real run of `penalty` (its definition, sizing and kernels:
//! [`microbench_defs::penalty`]) on the colored runtime.

use crate::common::{measure_fork_join, runtime, Control, Outcome, Setup};
use crate::perf::LlcCounter;
use colored_runtime::{Color, Ctx, HandlerId, HandlerSpec};
use microbench_defs::penalty::touch_slice;
pub use microbench_defs::penalty::Params;
use std::sync::atomic::{AtomicU64, Ordering};

struct State {
    ctl: &'static Control,
    p: Params,
    remaining: AtomicU64,
    events_per_round: u64,
    fork: HandlerId,
    a: HandlerId,
    b: HandlerId,
}

fn fork(ctx: &mut Ctx<'_>, st: &'static State) {
    if st.ctl.stop.load(Ordering::Acquire) {
        st.ctl.finished.store(true, Ordering::Release);
        return;
    }
    let colors = (1..=st.p.a_events as u32).map(Color);
    ctx.handle().place_all(colors, 0).expect("core 0 exists");
    st.remaining.store(st.p.a_events as u64, Ordering::Relaxed);
    st.ctl.rounds.fetch_add(1, Ordering::Relaxed);
    for c in 1..=st.p.a_events as u32 {
        ctx.post(Color(c), st.a, move |ctx| {
            // A allocates its array and writes every element: the first touch.
            let n = st.p.array_bytes / 8;
            let arr: Vec<u64> = (0..n as u64).collect();
            let color = ctx.color();
            ctx.post(color, st.b, move |ctx| touch(ctx, st, arr, 0));
        });
    }
}

fn touch(ctx: &mut Ctx<'_>, st: &'static State, mut arr: Vec<u64>, offset: usize) {
    let n = (st.p.slice_bytes / 8).max(1);
    let end = (offset + n).min(arr.len());
    std::hint::black_box(touch_slice(&mut arr[offset..end]));
    let color = ctx.color();
    if end < arr.len() {
        ctx.post(color, st.b, move |ctx| touch(ctx, st, arr, end));
        return;
    }
    drop(arr);
    if st.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
        st.ctl
            .events
            .fetch_add(st.events_per_round, Ordering::Relaxed);
        ctx.post(Color(0), st.fork, move |ctx| fork(ctx, st));
    }
}

pub fn run(setup: &Setup, seconds: f64, p: &Params) -> anyhow::Result<Outcome> {
    anyhow::ensure!(
        p.a_events >= 1 && p.a_events < u32::MAX as usize && p.slice_bytes >= 8,
        "penalty needs at least one A event and slices of at least 8 bytes"
    );
    let llc = LlcCounter::open();
    let rt = runtime(setup)?;
    let ctl = Control::leak();
    let st: &'static State = Box::leak(Box::new(State {
        ctl,
        p: p.clone(),
        remaining: AtomicU64::new(0),
        events_per_round: (p.a_events * (1 + p.slices())) as u64,
        fork: rt.register(HandlerSpec::new("fork")),
        a: rt.register(HandlerSpec::new("A").cost_cycles(p.a_cost_cycles())),
        b: rt.register(
            HandlerSpec::new("B")
                .cost_cycles(p.b_cost_cycles())
                .penalty(p.b_penalty),
        ),
    }));
    let mut out = measure_fork_join(rt, ctl, seconds, llc, |rt| {
        rt.post(Color(0), st.fork, move |ctx| fork(ctx, st))?;
        Ok(())
    })?;
    out.extra.extend(p.describe());
    Ok(out)
}
