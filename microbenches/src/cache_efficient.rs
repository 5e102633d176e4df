//! The real run of `cache-efficient` (its definition, sizing and kernels:
//! [`microbench_defs::cache_efficient`]) on the colored runtime.

use crate::common::{measure_fork_join, runtime, Control, Outcome, Setup};
use crate::perf::LlcCounter;
use colored_runtime::{Color, Ctx, HandlerId, HandlerSpec};
pub use microbench_defs::cache_efficient::Params;
use microbench_defs::cache_efficient::{colors, generate, merge, pairs};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

struct State {
    ctl: &'static Control,
    p: Params,
    workers: usize,
    remaining: AtomicU64,
    events_per_round: u64,
    fork: HandlerId,
    a: HandlerId,
    b: HandlerId,
    c: HandlerId,
}

struct Array {
    halves: Mutex<[Vec<u32>; 2]>,
    sorted: AtomicU32,
}

fn fork(ctx: &mut Ctx<'_>, st: &'static State) {
    if st.ctl.stop.load(Ordering::Acquire) {
        st.ctl.finished.store(true, Ordering::Release);
        return;
    }
    let total = st.p.a_per_pair * pairs(st.workers);
    for k in 0..total as u32 {
        let core = 2 * (k as usize / st.p.a_per_pair);
        let (a, b1, b2) = colors(k);
        ctx.handle()
            .place_all([a, b1, b2], core)
            .expect("core exists");
    }
    st.remaining.store(total as u64, Ordering::Relaxed);
    st.ctl.rounds.fetch_add(1, Ordering::Relaxed);
    for k in 0..total as u32 {
        let (a, b1, b2) = colors(k);
        ctx.post(a, st.a, move |ctx| {
            let arr = Arc::new(Array {
                halves: Mutex::new(generate(k, st.p.elements)),
                sorted: AtomicU32::new(0),
            });
            for (half, color) in [(0usize, b1), (1, b2)] {
                let arr = arr.clone();
                ctx.post(color, st.b, move |ctx| {
                    let mut v = std::mem::take(&mut arr.halves.lock().unwrap()[half]);
                    v.sort_unstable();
                    arr.halves.lock().unwrap()[half] = v;
                    ctx.post(a, st.c, move |ctx| {
                        if arr.sorted.fetch_add(1, Ordering::AcqRel) == 1 {
                            let h = arr.halves.lock().unwrap();
                            let merged = merge(&h[0], &h[1]);
                            debug_assert!(merged.windows(2).all(|w| w[0] <= w[1]));
                            std::hint::black_box(&merged);
                            drop(h);
                            if st.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                                st.ctl
                                    .events
                                    .fetch_add(st.events_per_round, Ordering::Relaxed);
                                ctx.post(Color(0), st.fork, move |ctx| fork(ctx, st));
                            }
                        }
                    });
                });
            }
        });
    }
}

pub fn run(setup: &Setup, seconds: f64, p: &Params) -> anyhow::Result<Outcome> {
    let llc = LlcCounter::open();
    let rt = runtime(setup)?;
    let ctl = Control::leak();
    let total = p.a_per_pair * pairs(setup.workers);
    let st: &'static State = Box::leak(Box::new(State {
        ctl,
        p: p.clone(),
        workers: setup.workers,
        remaining: AtomicU64::new(0),
        // A + 2 B + 2 C per array.
        events_per_round: (total * 5) as u64,
        fork: rt.register(HandlerSpec::new("fork")),
        a: rt.register(HandlerSpec::new("A").cost_cycles(p.a_cost_cycles())),
        b: rt.register(HandlerSpec::new("B").cost_cycles(p.b_cost_cycles())),
        c: rt.register(HandlerSpec::new("C").cost_cycles(p.c_cost_cycles())),
    }));
    let mut out = measure_fork_join(rt, ctl, seconds, llc, |rt| {
        rt.post(Color(0), st.fork, move |ctx| fork(ctx, st))?;
        Ok(())
    })?;
    out.extra.extend(p.describe());
    Ok(out)
}
