//! `cache-efficient` (Mely paper, Table VI): fork/join rounds; for each pair of cores, the first
//! core of the pair gets 100 type-A events. An A allocates an array and posts two B events
//! (different colors, same core) that sort its two halves; each B then posts a C (the array's
//! color); when both Cs of an array ran, the merge finishes the sort. Locality-aware stealing
//! should keep an array's B events on cores that share a cache with the A's core.

use crate::common::{measure_fork_join, runtime, Control, Outcome, Setup};
use crate::perf::LlcCounter;
use colored_runtime::{Color, Ctx, HandlerId, HandlerSpec};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug)]
pub struct Params {
    pub a_per_pair: usize,
    /// Array elements (u32).
    pub elements: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            a_per_pair: 100,
            elements: 1024,
        }
    }
}

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

/// Colors of round items: A (and its C) = 1 + 3k, the two Bs = 2 + 3k and 3 + 3k.
fn colors(k: u32) -> (Color, Color, Color) {
    (Color(1 + 3 * k), Color(2 + 3 * k), Color(3 + 3 * k))
}

fn pairs(workers: usize) -> usize {
    (workers / 2).max(1)
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
            let n = st.p.elements;
            let mut x = 0x9E37_79B9u32.wrapping_mul(k + 1);
            let data: Vec<u32> = (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x
                })
                .collect();
            let (lo, hi) = data.split_at(n / 2);
            let arr = Arc::new(Array {
                halves: Mutex::new([lo.to_vec(), hi.to_vec()]),
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

fn merge(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i] <= b[j] {
            out.push(a[i]);
            i += 1;
        } else {
            out.push(b[j]);
            j += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
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
        a: rt.register(HandlerSpec::new("A").cost_cycles(10_000)),
        b: rt.register(HandlerSpec::new("B").cost_cycles(30_000)),
        c: rt.register(HandlerSpec::new("C").cost_cycles(5_000)),
    }));
    measure_fork_join(rt, ctl, seconds, llc, |rt| {
        rt.post(Color(0), st.fork, move |ctx| fork(ctx, st))?;
        Ok(())
    })
}
