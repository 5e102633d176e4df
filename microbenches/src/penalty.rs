//! `penalty` (Mely paper, Table V): core 0 starts each round with many type-A events of distinct
//! colors. An A creates an array that fits in the core's cache (writes every element) and posts a
//! B of its color; each B touches the next slice of the array and posts the next B, until the
//! array is done. B has a stealing penalty of 1000, so penalty-aware stealing takes A events
//! (arrays not yet in any cache) and leaves the B chains, whose arrays are warm in their core's
//! cache, where they are.
//!
//! Each color's array is allocated once, before the first round, and A *creates* it by writing
//! every element: that is what puts it in the cache of A's core. (Allocating a fresh 128 KB
//! vector per A made every A an mmap, 32 page faults and, when the chain ended, an munmap whose
//! TLB shootdown interrupted the other core: on a virtual machine those costs, not cache
//! locality, decided the benchmark.)

use crate::common::{measure_fork_join, runtime, Control, Outcome, Setup};
use crate::perf::LlcCounter;
use colored_runtime::{Color, Ctx, HandlerId, HandlerSpec};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

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
    /// Color `c`'s array, at index `c - 1`: taken by A, handed down its B chain, put back by the
    /// last B (so each lock is uncontended: one color's events never run at once).
    arrays: Vec<Mutex<Option<Vec<u64>>>>,
}

impl State {
    /// Color `color`'s array slot (colors 1..=a_events).
    fn array(&self, color: Color) -> std::sync::MutexGuard<'_, Option<Vec<u64>>> {
        self.arrays[color.0 as usize - 1]
            .lock()
            .expect("array lock")
    }
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
            let color = ctx.color();
            let mut arr = st
                .array(color)
                .take()
                .expect("a color's array is back before its next A");
            for (i, v) in arr.iter_mut().enumerate() {
                *v = i as u64;
            }
            ctx.post(color, st.b, move |ctx| touch(ctx, st, arr, 0));
        });
    }
}

fn touch(ctx: &mut Ctx<'_>, st: &'static State, mut arr: Vec<u64>, offset: usize) {
    let n = (st.p.slice_bytes / 8).max(1);
    let end = (offset + n).min(arr.len());
    let mut acc = 0u64;
    for v in &mut arr[offset..end] {
        acc = acc.wrapping_add(*v);
        *v = acc;
    }
    std::hint::black_box(acc);
    let color = ctx.color();
    if end < arr.len() {
        ctx.post(color, st.b, move |ctx| touch(ctx, st, arr, end));
        return;
    }
    *st.array(color) = Some(arr);
    if st.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
        st.ctl
            .events
            .fetch_add(st.events_per_round, Ordering::Relaxed);
        ctx.post(Color(0), st.fork, move |ctx| fork(ctx, st));
    }
}

pub fn run(setup: &Setup, seconds: f64, p: &Params) -> anyhow::Result<Outcome> {
    let llc = LlcCounter::open();
    let rt = runtime(setup)?;
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
        arrays: (0..p.a_events)
            .map(|_| Mutex::new(Some(vec![0u64; p.array_bytes / 8])))
            .collect(),
    }));
    measure_fork_join(rt, ctl, seconds, llc, |rt| {
        rt.post(Color(0), st.fork, move |ctx| fork(ctx, st))?;
        Ok(())
    })
}
