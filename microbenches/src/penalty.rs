//! `penalty` (Mely paper, Table V): core 0 starts each round with many type-A events of distinct
//! colors. An A allocates an array that fits in the core's cache and posts a B of its color; each
//! B touches the next slice of the array and posts the next B, until the array is done. B has a
//! stealing penalty of 1000, so penalty-aware stealing takes A events (fresh arrays) and leaves
//! the B chains, whose arrays are warm in their core's cache, where they are.

use crate::common::{measure_fork_join, runtime, Control, Outcome};
use crate::perf::LlcCounter;
use colored_runtime::{Color, Ctx, HandlerId, HandlerSpec, QueueKind, StealPolicy};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone, Debug)]
pub struct Params {
    /// A events per round.
    pub a_events: usize,
    /// Array size in bytes (fits in one core's L2).
    pub array_bytes: usize,
    /// Bytes each B touches.
    pub slice_bytes: usize,
    pub b_penalty: u32,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            a_events: 64,
            array_bytes: 128 * 1024,
            slice_bytes: 4 * 1024,
            b_penalty: 1000,
        }
    }
}

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
            let words = st.p.array_bytes / 8;
            let arr: Vec<u64> = (0..words as u64).collect();
            let color = ctx.color();
            ctx.post(color, st.b, move |ctx| touch(ctx, st, arr, 0));
        });
    }
}

fn touch(ctx: &mut Ctx<'_>, st: &'static State, mut arr: Vec<u64>, offset: usize) {
    let n = st.p.slice_bytes / 8;
    let end = (offset + n).min(arr.len());
    let mut acc = 0u64;
    for v in &mut arr[offset..end] {
        acc = acc.wrapping_add(*v);
        *v = acc;
    }
    std::hint::black_box(acc);
    if end < arr.len() {
        let color = ctx.color();
        ctx.post(color, st.b, move |ctx| touch(ctx, st, arr, end));
    } else if st.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
        st.ctl
            .events
            .fetch_add(st.events_per_round, Ordering::Relaxed);
        ctx.post(Color(0), st.fork, move |ctx| fork(ctx, st));
    }
}

pub fn run(
    queue: QueueKind,
    stealing: StealPolicy,
    workers: usize,
    seconds: f64,
    p: &Params,
) -> anyhow::Result<Outcome> {
    let llc = LlcCounter::open();
    let rt = runtime(queue, stealing, workers)?;
    let slices = p.array_bytes.div_ceil(p.slice_bytes);
    let ctl = Control::leak();
    let st: &'static State = Box::leak(Box::new(State {
        ctl,
        p: p.clone(),
        remaining: AtomicU64::new(0),
        events_per_round: (p.a_events * (1 + slices)) as u64,
        fork: rt.register(HandlerSpec::new("fork")),
        a: rt.register(HandlerSpec::new("A").cost_cycles(30_000)),
        b: rt.register(
            HandlerSpec::new("B")
                .cost_cycles(2_000)
                .penalty(p.b_penalty),
        ),
    }));
    measure_fork_join(rt, ctl, seconds, llc, |rt| {
        rt.post(Color(0), st.fork, move |ctx| fork(ctx, st))?;
        Ok(())
    })
}
