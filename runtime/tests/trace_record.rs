//! Tracing in the real runtime: a traced run hands back one buffer per worker whose runs are
//! exactly the events the counters report, whose steals are the counted steals, and which the
//! color-guarantee checker accepts; an untraced run hands back nothing.

use colored_runtime::{
    Color, HandlerSpec, QueueKind, Runtime, RuntimeConfig, StealPolicy, TraceSpec,
};
use colored_trace::{check, export, parse::ParsedTrace, Record, StealOutcome};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Events posted per run: enough for steals on two workers, few enough for a ring that keeps
/// them all.
const EVENTS: u64 = 4_000;

fn traced_run(
    queue: QueueKind,
    stealing: StealPolicy,
) -> (colored_runtime::RuntimeStats, colored_trace::Trace) {
    let rt = Runtime::new(RuntimeConfig {
        workers: 2,
        queue,
        stealing,
        search_us: 50,
        trace: Some(TraceSpec::Ring { capacity: 1 << 16 }),
        ..Default::default()
    })
    .expect("runtime");
    let work = rt.register(HandlerSpec::new("work"));
    let done = Arc::new(AtomicU64::new(0));
    for i in 0..EVENTS {
        let done = done.clone();
        // All colors start on core 0 (color c maps to c % 2: even colors only), so core 1
        // has to steal to get work.
        let color = Color(2 * (i % 8) as u32 + 2);
        rt.post(color, work, move |_| {
            let t = std::time::Instant::now();
            while t.elapsed() < std::time::Duration::from_micros(5) {}
            done.fetch_add(1, Ordering::Relaxed);
        })
        .expect("post");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while done.load(Ordering::Relaxed) < EVENTS {
        assert!(
            std::time::Instant::now() < deadline,
            "events not run in 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let (stats, trace) = rt.shutdown_traced();
    (stats, trace.expect("tracing was on"))
}

fn assert_consistent(stats: &colored_runtime::RuntimeStats, trace: &colored_trace::Trace) {
    assert_eq!(trace.cores.len(), 2, "one buffer per worker");
    let runs: u64 = trace
        .cores
        .iter()
        .map(|b| {
            b.records()
                .filter(|r| matches!(r, Record::Run { .. }))
                .count() as u64
        })
        .sum();
    assert_eq!(runs, stats.total.events, "a run record per event run");
    assert_eq!(runs, EVENTS);
    let steals: u64 = trace
        .cores
        .iter()
        .map(|b| {
            b.records()
                .filter(|r| {
                    matches!(
                        r,
                        Record::Steal {
                            outcome: StealOutcome::Stolen,
                            ..
                        }
                    )
                })
                .count() as u64
        })
        .sum();
    assert_eq!(
        steals, stats.total.steals,
        "a stolen record per counted steal"
    );
    assert_eq!(
        trace
            .meta
            .handler_names
            .iter()
            .filter(|n| *n == "work")
            .count(),
        1
    );
    // Every steal moved at least one color: a remap from the victim to the thief per color.
    let (remaps, stolen_colors): (u64, u64) = trace.cores.iter().fold((0, 0), |(m, c), b| {
        let mine = b.core() as u16;
        let m2 = b
            .records()
            .filter(|r| matches!(r, Record::Remap { to, from, .. } if *to == mine && *from != mine))
            .count() as u64;
        let c2: u64 = b
            .records()
            .map(|r| match r {
                Record::Steal {
                    outcome: StealOutcome::Stolen,
                    colors,
                    ..
                } => u64::from(*colors),
                _ => 0,
            })
            .sum();
        (m + m2, c + c2)
    });
    // (The colors here fall in distinct map slots, so each stolen color is one remap.)
    assert_eq!(remaps, stolen_colors, "a remap per stolen color");
    assert!(remaps >= steals, "{remaps} remaps for {steals} steals");
    assert_eq!(trace.meta.fidelity, "ours");
    assert!(!trace.meta.simulated);
    let json = export::to_json(trace).expect("export");
    let report = check::check(&ParsedTrace::from_value(&json).expect("parse"));
    assert!(report.passed(), "checker: {:?}", report.violations);
    assert_eq!(report.runs, EVENTS);
    assert!(
        matches!(report.counts, check::Counts::Compared { .. }),
        "counts compared: {:?}",
        report.counts
    );
}

#[test]
fn a_traced_libasync_run_with_stealing_records_every_run_and_steal() {
    let (stats, trace) = traced_run(QueueKind::Libasync, StealPolicy::Base);
    assert_consistent(&stats, &trace);
}

#[test]
fn a_traced_mely_run_with_stealing_records_every_run_and_steal() {
    let (stats, trace) = traced_run(QueueKind::Mely, StealPolicy::Locality);
    assert_consistent(&stats, &trace);
}

#[test]
fn an_untraced_run_hands_back_no_trace() {
    let rt = Runtime::new(RuntimeConfig {
        workers: 2,
        ..Default::default()
    })
    .expect("runtime");
    let (_, trace) = rt.shutdown_traced();
    assert!(trace.is_none());
}

/// A handler's post to a color another core owns is recorded as a post to that core.
#[test]
fn a_post_to_another_core_is_recorded_with_its_target() {
    let rt = Runtime::new(RuntimeConfig {
        workers: 2,
        trace: Some(TraceSpec::Ring { capacity: 1 << 12 }),
        ..Default::default()
    })
    .expect("runtime");
    let h = rt.register(HandlerSpec::new("hop"));
    rt.handle().place(Color(10), 0).unwrap();
    rt.handle().place(Color(11), 1).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    rt.post(Color(10), h, move |ctx| {
        ctx.post(Color(11), h, move |_| tx.send(()).unwrap());
    })
    .unwrap();
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .expect("the posted event ran");
    let (_, trace) = rt.shutdown_traced();
    let trace = trace.expect("tracing was on");
    let posts: Vec<(usize, u32, u16)> = trace
        .cores
        .iter()
        .flat_map(|b| {
            b.records().filter_map(move |r| match *r {
                Record::Post { color, target, .. } => Some((b.core(), color, target)),
                _ => None,
            })
        })
        .collect();
    assert_eq!(posts, [(0, 11, 1)], "core 0 posted color 11 to core 1");
}
