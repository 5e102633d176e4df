//! Loom models of the post / steal / run protocol, on the runtime's real code (the hidden
//! [`Model`] drives `Handle::post`, `steal::try_steal` and a worker's `run_batch` without worker
//! threads). Run with
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p colored-runtime --test loom --release
//! ```
//!
//! Under `cfg(loom)` the crate's atomics and core locks are loom's, the color map has 16 slots
//! and the handler table 8 entries. Colors used below (2 workers, map initialised to
//! `slot % 2`): even colors start on core 0, odd colors on core 1.
//!
//! What the models check, after every interleaving loom explores:
//! - `post_races_steal_*`: a post that reads the map just before a steal remaps its color
//!   retries, so every event of the color ends up on the one core the map names, and the color's
//!   events run once each, in posting order.
//! - `two_thieves_*`: two workers stealing from each other at once lock in core order (loom
//!   reports a deadlock otherwise) and lose or duplicate nothing.
//! - `steal_during_run_*`: a thief never takes the color its victim is running, so events of
//!   one color never overlap and keep their order even when the color moves mid-run.
//! - `idle_race_*`: a post that leaves something to steal, racing a worker on its way to sleep
//!   (parking, or the reactor about to block in its poll), never leaves that worker asleep
//!   beside the stealable work (the idle protocol's last look, or the post's thief wake-up).
//! - `owner_wake_race_*`: a post to a core racing its owner on its way to sleep never leaves
//!   the owner asleep on a queued event.
//! - `handler_post_races_steal_*`: an event a handler posts to a color of its own core (the
//!   worker's local buffer) while a thief steals that color runs after the color's earlier
//!   events, on the color's core.
//! - `*_steal_during_run` (time-left one and half, penalty, all): a time-left steal whose best
//!   color is the one running on the victim never takes it.
//! - `*_paper`: the same races with `Fidelity::Paper`'s options: the core locks are the
//!   test-and-set spin lock (loom explores each try), a handler's post to its own core takes
//!   the lock at once instead of being buffered, and libasync's steal walks the victim's list
//!   from its head. (Its fourth option, spinning idle workers, is the worker's search loop,
//!   which the model replaces by single steal rounds.)
//!
//! Events record what ran where in a plain `std` mutex: it is instrumentation, not part of the
//! protocol under test, and a loom lock there would only add branch points. The per-color
//! "in use" flags that detect overlapping runs are loom atomics, so loom can interleave inside an
//! event.
#![cfg(loom)]

use colored_runtime::model::{IdleEnd, Model};
use colored_runtime::{
    Color, Fidelity, HandlerId, HandlerSpec, QueueKind, RuntimeConfig, StealAmount, StealPolicy,
};
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// The color every model watches; starts on core 0.
const A: Color = Color(2);
/// Other colors of core 0.
const B: Color = Color(4);
const C: Color = Color(6);
const D: Color = Color(8);
/// Colors of core 1.
const E: Color = Color(3);
const F: Color = Color(5);

/// Cost annotation of the watched color's handler: far above the initial steal-cost estimate
/// (2 000 cycles), so under time-left stealing its color-queue is worthy and the others are not.
const HEAVY_CYCLES: u64 = 1 << 30;

/// Explores every interleaving of `f` (up to `preemptions` preemptions, unless
/// `LOOM_MAX_PREEMPTIONS` says otherwise) and reports how many there were (`--nocapture`).
fn explore(name: &str, preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(preemptions);
    }
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = runs.clone();
    let start = std::time::Instant::now();
    b.check(move || {
        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f()
    });
    let n = runs.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "{name}: {n} interleavings in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    // A model whose threads never interleave would check nothing concurrent.
    assert!(n > 1, "{name}: loom explored a single interleaving");
}

fn model(queue: QueueKind, stealing: StealPolicy, batch: usize) -> Model {
    model_taking(queue, stealing, StealAmount::One, batch)
}

/// A model whose time-left steals take `amount`.
fn model_taking(
    queue: QueueKind,
    stealing: StealPolicy,
    amount: StealAmount,
    batch: usize,
) -> Model {
    model_as(queue, stealing, amount, batch, Fidelity::Ours)
}

/// A model of `queue` under base stealing with `fidelity`'s options.
fn base_model(queue: QueueKind, batch: usize, fidelity: Fidelity) -> Model {
    model_as(queue, StealPolicy::Base, StealAmount::One, batch, fidelity)
}

/// A model with `fidelity`'s options (`Paper`: the test-and-set core locks, which loom then
/// explores try by try; a handler's every post taking the lock; libasync's steal walk from
/// the head).
fn model_as(
    queue: QueueKind,
    stealing: StealPolicy,
    amount: StealAmount,
    batch: usize,
    fidelity: Fidelity,
) -> Model {
    let mut cfg = RuntimeConfig {
        workers: 2,
        queue,
        stealing,
        steal_amount: amount,
        batch,
        pin: false,
        ..Default::default()
    };
    fidelity.apply(&mut cfg);
    Model::new(cfg).expect("valid model configuration")
}

/// One event's run: (color, sequence number within its color, worker that ran it).
type Run = (u32, u32, usize);

/// What the events of a model did.
#[derive(Default)]
struct Log {
    runs: Mutex<Vec<Run>>,
    /// Runs that started while another event of their color was running.
    overlaps: AtomicUsize,
    /// One "in use" flag per color (indexed by color number; the models use colors < 16).
    in_use: [AtomicBool; 16],
}

impl Log {
    fn runs(&self) -> Vec<Run> {
        self.runs.lock().unwrap().clone()
    }
}

/// Post event `seq` of `color`; when it runs it flags itself in use, logs itself and clears
/// the flag (a second event of the color running meanwhile is counted in `overlaps`).
fn post(m: &Model, log: &Arc<Log>, color: Color, h: HandlerId, seq: u32) {
    let log = log.clone();
    m.post(color, h, move |ctx| {
        let flag = &log.in_use[color.0 as usize];
        if flag.swap(true, Ordering::AcqRel) {
            log.overlaps.fetch_add(1, Ordering::Relaxed);
        }
        log.runs.lock().unwrap().push((color.0, seq, ctx.worker()));
        flag.store(false, Ordering::Release);
    })
    .expect("post to a live model");
}

/// Run everything still queued: core 0 until empty, then core 1, again until both are empty
/// (an event may post to the other core). Nothing steals meanwhile, so each event runs on the
/// core it was queued on.
fn drain(m: &Model) {
    loop {
        let mut ran = false;
        for w in 0..2 {
            while m.run_batch(w) {
                ran = true;
            }
        }
        if !ran {
            break;
        }
    }
    for w in 0..2 {
        assert_eq!(m.queued(w), 0, "core {w} empty after draining");
    }
}

/// Every color in `expected` (color, events posted) ran each of its events exactly once, in
/// sequence order, and no two of its events overlapped. Every run from index `drained_from` of
/// the log on (the runs of [`drain`]) of a color in `owners` was on the core the map named for
/// it before draining: a color's queued events all sit on the core that owns it.
fn check(
    m: &Model,
    log: &Log,
    expected: &[(Color, u32)],
    owners: &BTreeMap<u32, usize>,
    drained_from: usize,
) {
    let runs = log.runs();
    assert_eq!(
        log.overlaps.load(Ordering::Relaxed),
        0,
        "two events of one color ran at once: {runs:?}"
    );
    for &(color, n) in expected {
        let seqs: Vec<u32> = runs
            .iter()
            .filter(|r| r.0 == color.0)
            .map(|r| r.1)
            .collect();
        assert_eq!(
            seqs,
            (0..n).collect::<Vec<_>>(),
            "color {color}: each event once, in order; runs {runs:?}"
        );
    }
    assert_eq!(
        runs.len(),
        expected.iter().map(|e| e.1 as usize).sum::<usize>(),
        "no stray runs: {runs:?}"
    );
    for &(color, _, w) in &runs[drained_from..] {
        if let Some(&owner) = owners.get(&color) {
            assert_eq!(w, owner, "color {color} was queued on core {w}, but the map names core {owner}; runs {runs:?}");
        }
    }
    for w in 0..2 {
        assert_eq!(m.queued(w), 0);
    }
}

/// Snapshot of the map for `colors`.
fn owners(m: &Model, colors: &[Color]) -> BTreeMap<u32, usize> {
    colors.iter().map(|&c| (c.0, m.core_of(c))).collect()
}

// ---------------------------------------------------------------------------------------------
// a. A post racing a steal of its color.
// ---------------------------------------------------------------------------------------------

/// Thread 1 posts `posts` (color, handler, sequence number) from outside the runtime while thread
/// 2, as worker 1, steals; returns whether the steal succeeded.
fn posts_race_steal(m: &Arc<Model>, log: &Arc<Log>, posts: Vec<(Color, HandlerId, u32)>) -> bool {
    let poster = {
        let (m, log) = (m.clone(), log.clone());
        thread::spawn(move || {
            for (color, h, seq) in posts {
                post(&m, &log, color, h, seq);
            }
        })
    };
    let thief = {
        let m = m.clone();
        thread::spawn(move || m.steal(1))
    };
    poster.join().unwrap();
    thief.join().unwrap()
}

/// Core 0 holds A#0, B#0, C#0, D#0. Thread 1 posts A#1 and A#2 from outside the runtime; thread 2
/// is worker 1 stealing. With this mix the steal always takes A (base: A is first and never holds
/// more than half of the queue; time-left: only A's handler is heavy), so the posts race the
/// remap of their own color.
fn post_races_steal(queue: QueueKind, stealing: StealPolicy, fidelity: Fidelity) {
    explore(
        &format!("post_races_steal {queue} {stealing} {fidelity}"),
        3,
        move || {
            let m = Arc::new(model_as(queue, stealing, StealAmount::One, 10, fidelity));
            let heavy = m.register_spec(HandlerSpec::new("heavy").cost_cycles(HEAVY_CYCLES));
            let light = m.register("light");
            let log = Arc::new(Log::default());
            post(&m, &log, A, heavy, 0);
            for c in [B, C, D] {
                post(&m, &log, c, light, 0);
            }
            assert_eq!(m.queued(0), 4);

            let stole = posts_race_steal(&m, &log, vec![(A, heavy, 1), (A, heavy, 2)]);
            assert!(stole, "core 0 holds four colors: the steal succeeds");
            assert_eq!(m.core_of(A), 1, "the steal took A");
            assert_eq!(m.queued(0) + m.queued(1), 6);

            let owned = owners(&m, &[A, B, C, D]);
            drain(&m);
            check(&m, &log, &[(A, 3), (B, 1), (C, 1), (D, 1)], &owned, 0);
        },
    );
}

#[test]
fn post_races_steal_libasync_base() {
    post_races_steal(QueueKind::Libasync, StealPolicy::Base, Fidelity::Ours);
}

#[test]
fn post_races_steal_mely_base() {
    post_races_steal(QueueKind::Mely, StealPolicy::Base, Fidelity::Ours);
}

#[test]
fn post_races_steal_mely_time_left() {
    post_races_steal(QueueKind::Mely, StealPolicy::TimeLeft, Fidelity::Ours);
}

/// Locality-aware stealing: the same race with the victims ordered by cache distance (the
/// topology's order) instead of from the most loaded core.
#[test]
fn post_races_steal_mely_locality() {
    post_races_steal(QueueKind::Mely, StealPolicy::Locality, Fidelity::Ours);
}

/// Core 0 holds A#0 and B#0 (both heavy) and C#0, D#0 (light). Thread 1 posts A#1 and B#1;
/// thread 2 is worker 1 stealing under time-left with our multi-color steal
/// ([`StealAmount::Half`]), which takes worthy colors until it holds half of the victim's queued
/// time: A, and B as well unless A#1 landed first (then A alone is half).
/// The posts race the remap of both colors; every color keeps its order and its events stay on
/// the core that owns it.
#[test]
fn post_races_multi_color_steal() {
    explore("post_races_multi_color_steal", 3, move || {
        let m = Arc::new(model_taking(
            QueueKind::Mely,
            StealPolicy::TimeLeft,
            StealAmount::Half,
            10,
        ));
        let heavy = m.register_spec(HandlerSpec::new("heavy").cost_cycles(HEAVY_CYCLES));
        let light = m.register("light");
        let log = Arc::new(Log::default());
        post(&m, &log, A, heavy, 0);
        post(&m, &log, B, heavy, 0);
        for c in [C, D] {
            post(&m, &log, c, light, 0);
        }

        let stole = posts_race_steal(&m, &log, vec![(A, heavy, 1), (B, heavy, 1)]);
        assert!(stole, "two worthy colors: the steal succeeds");
        assert_eq!(m.core_of(A), 1, "the steal took A first");
        assert_eq!(m.core_of(C), 0, "light colors are not worth a steal");
        assert_eq!(m.core_of(D), 0, "light colors are not worth a steal");
        assert_eq!(m.queued(0) + m.queued(1), 6);

        let owned = owners(&m, &[A, B, C, D]);
        drain(&m);
        check(&m, &log, &[(A, 2), (B, 2), (C, 1), (D, 1)], &owned, 0);
    });
}

// ---------------------------------------------------------------------------------------------
// b. Two thieves stealing from each other.
// ---------------------------------------------------------------------------------------------

/// Core 0 holds A#0, A#1, B#0; core 1 holds E#0, E#1, F#0. Worker 0 and worker 1 steal at the
/// same time, each from the other (both cores hold two colors whatever happens first, so both
/// steals succeed). Then everything drains.
fn two_thieves(queue: QueueKind, fidelity: Fidelity) {
    let name = format!("two_thieves {queue} {fidelity}");
    explore(&name, 3, move || {
        let m = Arc::new(base_model(queue, 10, fidelity));
        let h = m.register("h");
        let log = Arc::new(Log::default());
        for (c, n) in [(A, 2), (B, 1), (E, 2), (F, 1)] {
            for seq in 0..n {
                post(&m, &log, c, h, seq);
            }
        }
        assert_eq!((m.queued(0), m.queued(1)), (3, 3));

        let thieves: Vec<_> = (0..2)
            .map(|w| {
                let m = m.clone();
                thread::spawn(move || m.steal(w))
            })
            .collect();
        for t in thieves {
            assert!(
                t.join().unwrap(),
                "the other core always holds two colors: the steal succeeds"
            );
        }
        assert_eq!(m.queued(0) + m.queued(1), 6);

        let owned = owners(&m, &[A, B, E, F]);
        drain(&m);
        check(&m, &log, &[(A, 2), (B, 1), (E, 2), (F, 1)], &owned, 0);
    });
}

#[test]
fn two_thieves_libasync() {
    two_thieves(QueueKind::Libasync, Fidelity::Ours);
}

#[test]
fn two_thieves_mely() {
    two_thieves(QueueKind::Mely, Fidelity::Ours);
}

// ---------------------------------------------------------------------------------------------
// c. A worker running a batch while another steals.
// ---------------------------------------------------------------------------------------------

/// Batches of one event. Core 0 holds A#0, A#1, B#0, B#1, B#2. Worker 0 (thread 1) runs two
/// batches (A#0 first unless A was stolen). Worker 1 (thread 2) steals once and runs one batch.
///
/// A is the color a thief would choose whenever it may (it is first and holds at most half of the
/// queue, while B holds more than half once A#0 is popped), so the only thing that keeps the
/// thief off A#1 while A#0 runs is the running check. If it failed, worker 1 would run A#1 while
/// A#0 runs (an overlap) or before it (out of order).
fn steal_during_run(queue: QueueKind, fidelity: Fidelity) {
    let name = format!("steal_during_run {queue} {fidelity}");
    explore(&name, 3, move || {
        let m = Arc::new(base_model(queue, 1, fidelity));
        let h = m.register("h");
        let log = Arc::new(Log::default());
        for (c, n) in [(A, 2), (B, 3)] {
            for seq in 0..n {
                post(&m, &log, c, h, seq);
            }
        }

        let owner = {
            let m = m.clone();
            thread::spawn(move || {
                assert!(m.run_batch(0), "core 0 had events");
                // Core 0 still holds events whatever was stolen (at most one color of two).
                assert!(m.run_batch(0), "core 0 had events left");
            })
        };
        let thief = {
            let m = m.clone();
            thread::spawn(move || {
                let stole = m.steal(1);
                let ran = m.run_batch(1);
                assert_eq!(stole, ran, "worker 1 runs what it stole");
            })
        };
        owner.join().unwrap();
        thief.join().unwrap();
        let before_drain = log.runs().len();

        let owned = owners(&m, &[A, B]);
        drain(&m);
        check(&m, &log, &[(A, 2), (B, 3)], &owned, before_drain);
    });
}

#[test]
fn steal_during_run_libasync() {
    steal_during_run(QueueKind::Libasync, Fidelity::Ours);
}

#[test]
fn steal_during_run_mely() {
    steal_during_run(QueueKind::Mely, Fidelity::Ours);
}

// ---------------------------------------------------------------------------------------------
// d. The idle protocol: a post racing a worker on its way to sleep.
// ---------------------------------------------------------------------------------------------

/// How the sleeping worker gets there.
#[derive(Clone, Copy, Debug)]
enum Sleep {
    /// An idle worker: it searches (one steal attempt), then marks its core parked and takes
    /// the last look.
    Park,
    /// The reactor's Epoll event about to block in its poll.
    Poll,
}

/// Worker `w` on its way to sleep, as `how` says; true if it ended up asleep.
fn go_to_sleep(m: &Model, w: usize, how: Sleep) -> bool {
    match how {
        Sleep::Park => m.idle_step(w) == IdleEnd::Asleep,
        Sleep::Poll => m.begin_polling(w),
    }
}

/// Core 0's owner is busy (it never sleeps here). Thread 1 posts A#0 and B#0 to core 0 from
/// outside the runtime, which leaves core 0 with two colors, something to steal; thread 2 is
/// worker 1 finding nothing and going to sleep. Whatever the interleaving, worker 1 must not end
/// up asleep (parked or polling, not notified) while core 0 holds both colors: it either stole
/// one (its search or its last look saw the posts), or a post saw it asleep with nobody
/// searching and woke it. (Before the idle protocol, a thief's sleep rechecked only its own
/// queue and posters woke a thief only if one was already counted parked: the post landing
/// between the thief's last attempt and its sleep left it asleep beside stealable work.)
fn idle_race(queue: QueueKind, how: Sleep) {
    explore(&format!("idle_race {queue} {how:?}"), 3, move || {
        let m = Arc::new(model(queue, StealPolicy::Base, 10));
        let h = m.register("h");
        let log = Arc::new(Log::default());
        let poster = {
            let (m, log) = (m.clone(), log.clone());
            thread::spawn(move || {
                post(&m, &log, A, h, 0);
                post(&m, &log, B, h, 0);
            })
        };
        let sleeper = {
            let m = m.clone();
            thread::spawn(move || go_to_sleep(&m, 1, how))
        };
        poster.join().unwrap();
        let slept = sleeper.join().unwrap();
        assert!(
            !(slept && m.is_asleep(1) && m.queued(0) == 2),
            "worker 1 sleeps while core 0 holds two colors to steal"
        );
        if slept {
            m.end_sleep(1);
        }
        let owned = owners(&m, &[A, B]);
        drain(&m);
        check(&m, &log, &[(A, 1), (B, 1)], &owned, 0);
    });
}

#[test]
fn idle_race_park_libasync() {
    idle_race(QueueKind::Libasync, Sleep::Park);
}

#[test]
fn idle_race_park_mely() {
    idle_race(QueueKind::Mely, Sleep::Park);
}

#[test]
fn idle_race_poll_mely() {
    idle_race(QueueKind::Mely, Sleep::Poll);
}

/// Thread 1 posts A#0 to core 0; thread 2 is core 0's own worker finding its queue empty and
/// going to sleep (stealing off). Its core must not end up asleep with the event queued: either
/// it saw the event under its lock and did not sleep, or the post saw it asleep and notified it.
fn owner_wake_race(queue: QueueKind, how: Sleep) {
    explore(&format!("owner_wake_race {queue} {how:?}"), 3, move || {
        let m = Arc::new(model(queue, StealPolicy::Off, 10));
        let h = m.register("h");
        let log = Arc::new(Log::default());
        let poster = {
            let (m, log) = (m.clone(), log.clone());
            thread::spawn(move || post(&m, &log, A, h, 0))
        };
        let owner = {
            let m = m.clone();
            thread::spawn(move || go_to_sleep(&m, 0, how))
        };
        poster.join().unwrap();
        let slept = owner.join().unwrap();
        assert!(
            !(slept && m.is_asleep(0) && m.queued(0) == 1),
            "core 0's worker sleeps on a queued event"
        );
        if slept {
            m.end_sleep(0);
        }
        drain(&m);
        check(&m, &log, &[(A, 1)], &owners(&m, &[A]), 0);
    });
}

#[test]
fn owner_wake_race_park() {
    owner_wake_race(QueueKind::Mely, Sleep::Park);
}

#[test]
fn owner_wake_race_poll() {
    owner_wake_race(QueueKind::Libasync, Sleep::Poll);
}

// ---------------------------------------------------------------------------------------------
// e. Events posted by a handler while their color is stolen; time-left steals beside a running
//    color.
// ---------------------------------------------------------------------------------------------

/// Core 0 holds A#0, B#0, C#0; A#0's handler posts B#1 (B belongs to core 0, so the post goes to
/// worker 0's local buffer and is flushed when A#0 returns, or spills to B's new core if B was
/// stolen meanwhile). Worker 0 (thread 1) runs one batch; worker 1 (thread 2) steals once. B#1
/// must run after B#0 and on the core that owns B, whichever color the thief took.
fn handler_post_races_steal(queue: QueueKind, fidelity: Fidelity) {
    let name = format!("handler_post_races_steal {queue} {fidelity}");
    explore(&name, 3, move || {
        let m = Arc::new(base_model(queue, 1, fidelity));
        let h = m.register("h");
        let log = Arc::new(Log::default());
        {
            let log = log.clone();
            m.post(A, h, move |ctx| {
                log.runs.lock().unwrap().push((A.0, 0, ctx.worker()));
                let log = log.clone();
                ctx.post(B, h, move |ctx| {
                    let flag = &log.in_use[B.0 as usize];
                    if flag.swap(true, Ordering::AcqRel) {
                        log.overlaps.fetch_add(1, Ordering::Relaxed);
                    }
                    log.runs.lock().unwrap().push((B.0, 1, ctx.worker()));
                    flag.store(false, Ordering::Release);
                });
            })
            .expect("post to a live model");
        }
        post(&m, &log, B, h, 0);
        post(&m, &log, C, h, 0);
        let owner = {
            let m = m.clone();
            thread::spawn(move || assert!(m.run_batch(0), "core 0 had events"))
        };
        let thief = {
            let m = m.clone();
            thread::spawn(move || m.steal(1))
        };
        owner.join().unwrap();
        thief.join().unwrap();
        let before_drain = log.runs().len();
        let owned = owners(&m, &[A, B, C]);
        drain(&m);
        check(&m, &log, &[(A, 1), (B, 2), (C, 1)], &owned, before_drain);
    });
}

#[test]
fn handler_post_races_steal_libasync() {
    handler_post_races_steal(QueueKind::Libasync, Fidelity::Ours);
}

#[test]
fn handler_post_races_steal_mely() {
    handler_post_races_steal(QueueKind::Mely, Fidelity::Ours);
}

/// Batches of one event. Core 0 holds A#0, A#1 (heavy: A is the only color worth a time-left
/// steal) and B#0, B#1 (light). Worker 0 (thread 1) runs two batches, A#0 first; worker 1
/// (thread 2) steals once under time-left (`amount`) and runs what it took. A is what the thief
/// wants, so only the running check keeps it off A#1 while A#0 runs: A must never overlap or
/// reorder.
fn time_left_steal_during_run(amount: StealAmount, stealing: StealPolicy) {
    explore(
        &format!("time_left_steal_during_run {stealing} {amount}"),
        3,
        move || {
            let m = Arc::new(model_taking(QueueKind::Mely, stealing, amount, 1));
            let heavy = m.register_spec(HandlerSpec::new("heavy").cost_cycles(HEAVY_CYCLES));
            let light = m.register("light");
            let log = Arc::new(Log::default());
            for seq in 0..2 {
                post(&m, &log, A, heavy, seq);
            }
            for seq in 0..2 {
                post(&m, &log, B, light, seq);
            }
            let owner = {
                let m = m.clone();
                thread::spawn(move || {
                    assert!(m.run_batch(0), "core 0 had events");
                    let _ = m.run_batch(0);
                })
            };
            let thief = {
                let m = m.clone();
                thread::spawn(move || {
                    if m.steal(1) {
                        assert!(m.run_batch(1), "worker 1 runs what it stole");
                    }
                })
            };
            owner.join().unwrap();
            thief.join().unwrap();
            let before_drain = log.runs().len();
            let owned = owners(&m, &[A, B]);
            drain(&m);
            check(&m, &log, &[(A, 2), (B, 2)], &owned, before_drain);
        },
    );
}

#[test]
fn time_left_one_steal_during_run() {
    time_left_steal_during_run(StealAmount::One, StealPolicy::TimeLeft);
}

#[test]
fn time_left_half_steal_during_run() {
    time_left_steal_during_run(StealAmount::Half, StealPolicy::TimeLeft);
}

#[test]
fn penalty_steal_during_run() {
    time_left_steal_during_run(StealAmount::One, StealPolicy::Penalty);
}

#[test]
fn all_steal_during_run() {
    time_left_steal_during_run(StealAmount::Half, StealPolicy::All);
}

// ---------------------------------------------------------------------------------------------
// f. The papers' options (`Fidelity::Paper`): test-and-set locks, unbuffered posts, the list
//    walk from the head.
// ---------------------------------------------------------------------------------------------

#[test]
fn post_races_steal_libasync_paper() {
    post_races_steal(QueueKind::Libasync, StealPolicy::Base, Fidelity::Paper);
}

#[test]
fn post_races_steal_mely_paper() {
    post_races_steal(QueueKind::Mely, StealPolicy::TimeLeft, Fidelity::Paper);
}

#[test]
fn two_thieves_libasync_paper() {
    two_thieves(QueueKind::Libasync, Fidelity::Paper);
}

#[test]
fn steal_during_run_libasync_paper() {
    steal_during_run(QueueKind::Libasync, Fidelity::Paper);
}

/// With a post batch of 1 the handler's post of B#1 takes core 0's lock while the handler
/// runs, racing the thief's steal of B, instead of waiting in the local buffer.
#[test]
fn handler_post_races_steal_libasync_paper() {
    handler_post_races_steal(QueueKind::Libasync, Fidelity::Paper);
}

#[test]
fn handler_post_races_steal_mely_paper() {
    handler_post_races_steal(QueueKind::Mely, Fidelity::Paper);
}
