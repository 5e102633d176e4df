//! The color guarantee under stress, for every queue design and stealing policy, and with the
//! papers' options (`--fidelity paper`, and each of its four options alone).
//!
//! Producers on their own threads post to many colors and to a few hot ones; handlers burn a
//! random number of cycles and some post children; there are more workers than cores; hot
//! colors are placed on core 0 and annotated as expensive so that every policy steals often.
//! Checked: no two events of one color ever run at once; events one producer posted to one
//! color run exactly in posting order, each exactly once; children that the events of one color
//! post to one color (from handlers: the worker's local buffer, its flush, the spill to another
//! core when the child's color was stolen meanwhile) run in the order they were posted; every
//! event posted runs. Traced configurations (`*_traced`) also pass their trace through the
//! trace checker (`colored_trace::check`: no two runs of one color overlap on any two cores'
//! tracks, and the runs and steals it counts agree with the runtime's counters).
//!
//! `COLORED_STRESS_EVENTS` sets the events posted per configuration (default 1 000 000; run
//! 100 000 000 outside CI with `--release`).

use colored_runtime::{
    Color, EventStorage, Fidelity, HandlerSpec, IdleMode, LockKind, QueueKind, Runtime,
    RuntimeConfig, StealAmount, StealPolicy, StealWalk,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const COLORS: usize = 512;
const HOT: usize = 4;
const PRODUCERS: usize = 4;
/// Handler-posted children go to colors `0..CHILD_COLORS` (the hot ones included, so children
/// often target a color that is being stolen).
const CHILD_COLORS: usize = 32;

struct Checks {
    in_use: Vec<AtomicU32>,
    next_seq: Vec<AtomicU64>, // [producer * COLORS + color]
    /// Children posted by parent color P to child color C so far: [P * CHILD_COLORS + C].
    /// Written only by P's events, which the runtime serialises.
    child_posted: Vec<AtomicU64>,
    /// Children of (P, C) run so far: a child posted n-th must run n-th.
    child_ran: Vec<AtomicU64>,
    overlaps: AtomicU64,
    fifo_violations: AtomicU64,
    ran: AtomicU64,
}

fn events_per_config() -> u64 {
    std::env::var("COLORED_STRESS_EVENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}

fn run_config(queue: QueueKind, stealing: StealPolicy, seed: u64) {
    run_config_taking(queue, stealing, StealAmount::One, seed)
}

/// Like `run_config`, with time-left steals taking `amount`.
fn run_config_taking(queue: QueueKind, stealing: StealPolicy, amount: StealAmount, seed: u64) {
    run_config_stored(queue, stealing, amount, EventStorage::Inline, seed)
}

/// Like `run_config_taking`, with event closures stored as `storage` says.
fn run_config_stored(
    queue: QueueKind,
    stealing: StealPolicy,
    amount: StealAmount,
    storage: EventStorage,
    seed: u64,
) {
    run_config_with(queue, stealing, amount, seed, |c| c.event_storage = storage)
}

/// Like `run_config_taking`, with the configuration changed by `tune` (the paper-faithful
/// options).
fn run_config_with(
    queue: QueueKind,
    stealing: StealPolicy,
    amount: StealAmount,
    seed: u64,
    tune: impl FnOnce(&mut RuntimeConfig),
) {
    let mut cfg = RuntimeConfig {
        workers: 4,
        queue,
        stealing,
        steal_amount: amount,
        search_us: 20,
        ..Default::default()
    };
    tune(&mut cfg);
    // A traced run is exported and checked whole: a fifth of the events keeps that quick.
    let total = if cfg.trace.is_some() {
        events_per_config() / 5
    } else {
        events_per_config()
    };
    let fidelity = match cfg.fidelity() {
        Some(f) => f.to_string(),
        None => format!(
            "idle {} lock {} post-batch {} walk {}",
            cfg.idle, cfg.lock, cfg.post_batch, cfg.steal_walk
        ),
    };
    let amount = format!("{amount}/{fidelity}");
    let rt = Runtime::new(cfg).expect("runtime");
    let h = rt.handle();
    let light = rt.register(HandlerSpec::new("light"));
    let heavy = rt.register(HandlerSpec::new("heavy").cost_cycles(200_000));
    let child = rt.register(HandlerSpec::new("child").penalty(4));
    let checks = Arc::new(Checks {
        in_use: (0..COLORS).map(|_| AtomicU32::new(0)).collect(),
        next_seq: (0..PRODUCERS * COLORS).map(|_| AtomicU64::new(0)).collect(),
        child_posted: (0..COLORS * CHILD_COLORS)
            .map(|_| AtomicU64::new(0))
            .collect(),
        child_ran: (0..COLORS * CHILD_COLORS)
            .map(|_| AtomicU64::new(0))
            .collect(),
        overlaps: AtomicU64::new(0),
        fifo_violations: AtomicU64::new(0),
        ran: AtomicU64::new(0),
    });
    let children = Arc::new(AtomicU64::new(0));
    // Hot colors all start on core 0 so there is imbalance to steal.
    h.place_all((0..HOT).map(|c| Color(c as u32)), 0).unwrap();

    let per_producer = total / PRODUCERS as u64;
    let start = Instant::now();
    std::thread::scope(|s| {
        for p in 0..PRODUCERS {
            let h = h.clone();
            let checks = checks.clone();
            let children = children.clone();
            s.spawn(move || {
                let mut rng = SmallRng::seed_from_u64(seed ^ (p as u64 * 0x9E37_79B9));
                let mut seqs = vec![0u64; COLORS];
                for i in 0..per_producer {
                    let c = if rng.gen_bool(0.5) {
                        rng.gen_range(0..HOT)
                    } else {
                        rng.gen_range(0..COLORS)
                    };
                    let seq = seqs[c];
                    seqs[c] += 1;
                    let work = if rng.gen_ratio(1, 64) {
                        rng.gen_range(1_000..20_000)
                    } else {
                        rng.gen_range(0..300)
                    };
                    let spawn_child = rng.gen_ratio(1, 16);
                    let burst = rng.gen_range(1..=3);
                    let child_color = if rng.gen_bool(0.5) {
                        rng.gen_range(0..HOT)
                    } else {
                        rng.gen_range(0..CHILD_COLORS)
                    };
                    let handler = if c < HOT { heavy } else { light };
                    let checks_ev = checks.clone();
                    let children_ev = children.clone();
                    h.post(Color(c as u32), handler, move |ctx| {
                        let (checks, children) = (checks_ev, children_ev);
                        let k = ctx.color().0 as usize;
                        if checks.in_use[k].swap(1, Ordering::AcqRel) != 0 {
                            checks.overlaps.fetch_add(1, Ordering::Relaxed);
                        }
                        let slot = &checks.next_seq[p * COLORS + k];
                        if slot.load(Ordering::Relaxed) != seq {
                            checks.fifo_violations.fetch_add(1, Ordering::Relaxed);
                        }
                        slot.store(seq + 1, Ordering::Relaxed);
                        colored_runtime::tsc::spin_cycles(work);
                        if spawn_child {
                            // Children of one parent color to one child color must run in the
                            // order the parent's (serialised) events posted them, also when the
                            // child color is stolen between the post and the flush of the
                            // worker's local buffer.
                            // A burst of children to one color, with a little work between
                            // posts so the color can be stolen in the middle of the burst.
                            for b in 0..burst {
                                if b > 0 {
                                    colored_runtime::tsc::spin_cycles(20_000);
                                }
                                children.fetch_add(1, Ordering::Relaxed);
                                let pair = k * CHILD_COLORS + child_color;
                                let n = checks.child_posted[pair].load(Ordering::Relaxed);
                                checks.child_posted[pair].store(n + 1, Ordering::Relaxed);
                                let checks2 = checks.clone();
                                ctx.post(Color(child_color as u32), child, move |ctx| {
                                    let k = ctx.color().0 as usize;
                                    if checks2.in_use[k].swap(1, Ordering::AcqRel) != 0 {
                                        checks2.overlaps.fetch_add(1, Ordering::Relaxed);
                                    }
                                    let ran = &checks2.child_ran[pair];
                                    if ran.load(Ordering::Relaxed) != n {
                                        checks2.fifo_violations.fetch_add(1, Ordering::Relaxed);
                                    }
                                    ran.store(n + 1, Ordering::Relaxed);
                                    checks2.in_use[k].store(0, Ordering::Release);
                                    checks2.ran.fetch_add(1, Ordering::Relaxed);
                                });
                            }
                        }
                        checks.in_use[k].store(0, Ordering::Release);
                        checks.ran.fetch_add(1, Ordering::Relaxed);
                    })
                    .unwrap();
                    if i % 4096 == 0 {
                        // Keep the backlog bounded so memory stays small at 10^8 events.
                        while (i * PRODUCERS as u64)
                            .saturating_sub(checks.ran.load(Ordering::Relaxed))
                            > 400_000
                        {
                            std::thread::yield_now();
                        }
                    }
                }
            });
        }
    });
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let ran = checks.ran.load(Ordering::Relaxed);
        let expected = per_producer * PRODUCERS as u64 + children.load(Ordering::Relaxed);
        if ran == expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{queue}/{stealing}/{amount}: only {ran} of {expected} events ran"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let (stats, trace) = rt.shutdown_traced();
    let posted = per_producer * PRODUCERS as u64 + children.load(Ordering::Relaxed);
    if let Some(trace) = trace {
        check_trace(&trace, &format!("{queue}/{stealing}/{amount}"));
    }
    eprintln!(
        "{queue:>8}/{stealing:<9}/{amount} events={posted} in {:?}: steals={} attempts={} steal_cost_estimate={} overlaps={} fifo_violations={}",
        start.elapsed(),
        stats.total.steals,
        stats.total.steal_attempts,
        stats.steal_cost_estimate_cycles,
        checks.overlaps.load(Ordering::Relaxed),
        checks.fifo_violations.load(Ordering::Relaxed)
    );
    assert_eq!(
        checks.overlaps.load(Ordering::Relaxed),
        0,
        "{queue}/{stealing}/{amount}: two events of one color ran at once"
    );
    assert_eq!(
        checks.fifo_violations.load(Ordering::Relaxed),
        0,
        "{queue}/{stealing}/{amount}: FIFO order broken"
    );
    assert_eq!(
        stats.total.events, posted,
        "{queue}/{stealing}/{amount}: runtime counted a different number of events"
    );
    assert_eq!(stats.total.panics, 0);
    if stealing.enabled() {
        assert!(
            stats.total.steals > 0,
            "{queue}/{stealing}/{amount}: stealing never happened"
        );
    }
}

#[test]
fn libasync_off() {
    run_config(QueueKind::Libasync, StealPolicy::Off, 1);
}
#[test]
fn libasync_base() {
    run_config(QueueKind::Libasync, StealPolicy::Base, 2);
}
#[test]
fn mely_off() {
    run_config(QueueKind::Mely, StealPolicy::Off, 3);
}
#[test]
fn mely_base() {
    run_config(QueueKind::Mely, StealPolicy::Base, 4);
}
#[test]
fn mely_time_left() {
    run_config(QueueKind::Mely, StealPolicy::TimeLeft, 5);
}
#[test]
fn mely_penalty() {
    run_config(QueueKind::Mely, StealPolicy::Penalty, 6);
}
#[test]
fn mely_time_left_half() {
    run_config_taking(QueueKind::Mely, StealPolicy::TimeLeft, StealAmount::Half, 9);
}
#[test]
fn mely_penalty_half() {
    run_config_taking(QueueKind::Mely, StealPolicy::Penalty, StealAmount::Half, 10);
}
#[test]
fn mely_all_half() {
    run_config_taking(QueueKind::Mely, StealPolicy::All, StealAmount::Half, 11);
}
#[test]
fn mely_locality() {
    run_config(QueueKind::Mely, StealPolicy::Locality, 7);
}
#[test]
fn mely_all() {
    run_config(QueueKind::Mely, StealPolicy::All, 8);
}

// Every closure boxed (`EventStorage::Heap`): the boxed tasks go through the same posts, steals
// and spills as inline ones.
#[test]
fn libasync_base_heap() {
    run_config_stored(
        QueueKind::Libasync,
        StealPolicy::Base,
        StealAmount::One,
        EventStorage::Heap,
        12,
    );
}
#[test]
fn mely_all_half_heap() {
    run_config_stored(
        QueueKind::Mely,
        StealPolicy::All,
        StealAmount::Half,
        EventStorage::Heap,
        13,
    );
}

// The papers' options: all four at once on both designs, and each alone.
#[test]
fn libasync_base_paper() {
    run_config_with(
        QueueKind::Libasync,
        StealPolicy::Base,
        StealAmount::One,
        14,
        |c| Fidelity::Paper.apply(c),
    );
}
#[test]
fn mely_base_paper() {
    run_config_with(
        QueueKind::Mely,
        StealPolicy::Base,
        StealAmount::One,
        15,
        |c| Fidelity::Paper.apply(c),
    );
}
#[test]
fn mely_penalty_paper() {
    run_config_with(
        QueueKind::Mely,
        StealPolicy::Penalty,
        StealAmount::One,
        16,
        |c| Fidelity::Paper.apply(c),
    );
}
#[test]
fn libasync_off_paper() {
    run_config_with(
        QueueKind::Libasync,
        StealPolicy::Off,
        StealAmount::One,
        17,
        |c| Fidelity::Paper.apply(c),
    );
}
#[test]
fn mely_all_spin() {
    run_config_with(
        QueueKind::Mely,
        StealPolicy::All,
        StealAmount::Half,
        18,
        |c| c.idle = IdleMode::Spin,
    );
}
#[test]
fn libasync_base_tas_lock() {
    run_config_with(
        QueueKind::Libasync,
        StealPolicy::Base,
        StealAmount::One,
        19,
        |c| c.lock = LockKind::Tas,
    );
}
#[test]
fn mely_time_left_unbatched_posts() {
    run_config_with(
        QueueKind::Mely,
        StealPolicy::TimeLeft,
        StealAmount::One,
        20,
        |c| c.post_batch = 1,
    );
}
#[test]
fn libasync_base_walk_from_head() {
    run_config_with(
        QueueKind::Libasync,
        StealPolicy::Base,
        StealAmount::One,
        21,
        |c| c.steal_walk = StealWalk::FromHead,
    );
}

/// The trace of a stress run, exported as a viewer reads it and parsed back, passes the
/// checker, and its runs are the events the workers ran while tracing.
fn check_trace(trace: &colored_trace::Trace, what: &str) {
    let json = colored_trace::export::to_json(trace).expect("export");
    let parsed = colored_trace::parse::ParsedTrace::from_value(&json).expect("parse");
    let report = colored_trace::check::check(&parsed);
    eprintln!("{what}: trace checked: {report:?}");
    assert!(
        report.passed(),
        "{what}: the trace checker found {report:?}"
    );
    assert!(
        report.runs > 10_000,
        "{what}: only {} runs traced",
        report.runs
    );
    assert!(
        report.tracks >= 2,
        "{what}: runs on {} track(s) only",
        report.tracks
    );
}

// Traced: the whole run recorded (a ring large enough for every record of the run) and checked.
#[test]
fn mely_all_traced() {
    run_config_with(
        QueueKind::Mely,
        StealPolicy::All,
        StealAmount::One,
        22,
        |c| c.trace = Some(colored_runtime::TraceSpec::Ring { capacity: 1 << 20 }),
    );
}
#[test]
fn libasync_base_paper_traced() {
    run_config_with(
        QueueKind::Libasync,
        StealPolicy::Base,
        StealAmount::One,
        23,
        |c| {
            Fidelity::Paper.apply(c);
            c.trace = Some(colored_runtime::TraceSpec::Ring { capacity: 1 << 20 });
        },
    );
}
