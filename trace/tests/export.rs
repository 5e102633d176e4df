//! Record -> export -> parse -> check, and the checker failing on corrupted traces.

mod common;

use colored_trace::check::{check, Count, Counts, Violation};
use colored_trace::export::{tid, to_json, write_file};
use colored_trace::parse::ParsedTrace;
use colored_trace::{Bound, Record, Trace, TraceBuf, TraceMeta};
use serde_json::{json, Value};

fn exported(t: &Trace) -> Value {
    to_json(t).expect("export")
}

fn events(v: &Value) -> &Vec<Value> {
    v["traceEvents"].as_array().expect("traceEvents")
}

fn events_mut(v: &mut Value) -> &mut Vec<Value> {
    v["traceEvents"].as_array_mut().expect("traceEvents")
}

fn of<'a>(v: &'a Value, ph: &'a str, cat: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    events(v)
        .iter()
        .filter(move |e| e["ph"] == ph && (cat.is_empty() || e["cat"] == cat))
}

#[test]
fn round_trip_through_a_file_passes_the_checker() {
    let trace = common::full_sample();
    let dir = std::env::temp_dir().join(format!("colored-trace-rt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.json");
    write_file(&trace, &path).expect("write");
    let report = colored_trace::check::check_path(&path).expect("read back");
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(report.passed(), "{report:#?}");
    assert!(
        report.to_string().starts_with("passed: 45 runs"),
        "{report}"
    );
    assert_eq!(report.runs, 45);
    assert_eq!(report.sequenced_runs, 45);
    assert_eq!(report.colors, 4);
    assert_eq!(report.tracks, 2);
    assert_eq!(report.steals, 1);
    assert_eq!(
        report.counts,
        Counts::Compared {
            events: 45,
            steals: 1,
            tolerance: 0
        }
    );
}

#[test]
fn mapping_to_the_viewer() {
    let v = exported(&common::full_sample());
    assert_eq!(v["displayTimeUnit"], "ns");
    let other = &v["otherData"];
    assert_eq!(other["simulated"], false);
    assert_eq!(other["fidelity"], "real");
    assert_eq!(other["cycles_per_us"], common::RATE);
    assert_eq!(other["configuration"]["workers"], "3");
    assert_eq!(other["bound"]["mode"], "ring");
    // One named track per core.
    let names: Vec<(u64, String)> = of(&v, "M", "")
        .filter(|e| e["name"] == "thread_name")
        .map(|e| {
            (
                e["tid"].as_u64().unwrap(),
                e["args"]["name"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            (1, "core 0".into()),
            (2, "core 1".into()),
            (3, "core 2".into())
        ]
    );
    // Runs: named by handler, color in args, microseconds at 1000 cycles per microsecond.
    let first = of(&v, "X", "run").next().unwrap();
    assert_eq!(first["name"], "even");
    assert_eq!(first["args"]["color"], 0);
    assert_eq!(first["ts"], 0.1);
    assert_eq!(first["dur"], 1.0);
    // The steal: a slice on the thief, a robbed slice on the victim, a flow between them.
    let steal = of(&v, "X", "steal")
        .find(|e| e["args"]["outcome"] == "stolen")
        .unwrap();
    assert_eq!(steal["tid"], tid(1));
    assert_eq!(steal["args"]["victim"], 0);
    let robbed = of(&v, "X", "robbed").next().unwrap();
    assert_eq!(robbed["tid"], tid(0));
    let s = of(&v, "s", "steal").next().unwrap();
    let f = of(&v, "f", "steal").next().unwrap();
    assert_eq!(
        (s["tid"].as_u64(), f["tid"].as_u64()),
        (Some(tid(0)), Some(tid(1)))
    );
    assert_eq!(s["id"], f["id"]);
    assert_eq!(f["bp"], "e");
    let within = |e: &Value, t: f64| {
        let ts = e["ts"].as_f64().unwrap();
        ts <= t && t <= ts + e["dur"].as_f64().unwrap()
    };
    assert!(within(robbed, s["ts"].as_f64().unwrap()));
    // Lock parts inside the steal, states as slices, queue lengths as counters.
    assert_eq!(of(&v, "X", "lock").count(), 5);
    let states: Vec<&str> = of(&v, "X", "state")
        .filter(|e| e["tid"] == tid(2))
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["idle", "search", "nap", "search", "sleep"]);
    assert!(of(&v, "C", "").any(|e| e["name"] == "queue core 1" && e["args"]["len"] == 5));
    assert!(of(&v, "i", "post").any(|e| e["args"]["target"] == 1));
    assert!(of(&v, "i", "remap").any(|e| e["args"]["to"] == 1));
    assert!(of(&v, "i", "state").any(|e| e["name"] == "wake"));
}

/// The complete events of each track nest (what the viewers require).
#[test]
fn every_track_nests() {
    assert_nests(&exported(&common::full_sample()));
    for seed in 1..=10 {
        assert_nests(&exported(&random_trace(seed, 3, 5, 300)));
    }
}

fn assert_nests(v: &Value) {
    let mut by_tid: std::collections::BTreeMap<u64, Vec<(f64, f64)>> = Default::default();
    for e in of(v, "X", "") {
        let ts = e["ts"].as_f64().unwrap();
        by_tid
            .entry(e["tid"].as_u64().unwrap())
            .or_default()
            .push((ts, ts + e["dur"].as_f64().unwrap()));
    }
    for (tid, mut s) in by_tid {
        s.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
        let mut open: Vec<f64> = Vec::new();
        for (a, b) in s {
            while open.last().is_some_and(|&e| e <= a + 1e-9) {
                open.pop();
            }
            if let Some(&e) = open.last() {
                assert!(b <= e + 1e-9, "tid {tid}: [{a}, {b}) crosses an end at {e}");
            }
            open.push(b);
        }
    }
}

/// A state that crosses a run (a recorder's mistake) is cut at the run; the run is kept whole.
#[test]
fn a_slice_crossing_a_run_is_clipped() {
    let mut b = TraceBuf::new(0, Bound::Ring { capacity: 8 });
    b.push(Record::State {
        at: 0,
        queue_len: 0,
        state: colored_trace::State::Search,
    });
    b.push(Record::State {
        at: 1000,
        queue_len: 1,
        state: colored_trace::State::Busy,
    });
    b.push(Record::Run {
        start: 500,
        end: 1500,
        color: 1,
        handler: 0,
        seq: 0,
    });
    let trace = Trace {
        meta: TraceMeta {
            cycles_per_us: 1000.0,
            end: Some(2000),
            ..TraceMeta::default()
        },
        cores: vec![b],
    };
    let v = exported(&trace);
    let search = of(&v, "X", "state").next().unwrap();
    assert_eq!(
        (search["ts"].as_f64(), search["dur"].as_f64()),
        (Some(0.0), Some(0.5))
    );
    assert_eq!(search["args"]["clipped"], true);
    let run = of(&v, "X", "run").next().unwrap();
    assert_eq!(
        (run["ts"].as_f64(), run["dur"].as_f64()),
        (Some(0.5), Some(1.0))
    );
    assert_eq!(run["name"], "handler 0");
}

#[test]
fn a_bad_rate_is_refused() {
    let mut t = common::full_sample();
    t.meta.cycles_per_us = 0.0;
    assert!(to_json(&t).is_err());
}

/// Two overlapping runs of one color on two tracks: a copy of a color-3 run of core 1 moved
/// to core 2, starting in the middle of the original.
#[test]
fn checker_fails_on_overlapping_runs_of_one_color() {
    let mut v = exported(&common::full_sample());
    let run = of(&v, "X", "run")
        .find(|e| e["args"]["color"] == 3 && e["tid"] == tid(1))
        .unwrap()
        .clone();
    let mut copy = run.clone();
    copy["tid"] = json!(tid(2));
    copy["ts"] = json!(run["ts"].as_f64().unwrap() + run["dur"].as_f64().unwrap() / 2.0);
    copy["dur"] = json!(run["dur"].as_f64().unwrap() / 4.0);
    copy["args"] = json!({"color": 3});
    events_mut(&mut v).push(copy);
    let report = check(&ParsedTrace::from_value(&v).unwrap());
    assert!(!report.passed());
    let overlaps: Vec<_> = report
        .violations
        .iter()
        .filter_map(|x| match x {
            Violation::Overlap {
                color,
                first,
                second,
            } => Some((*color, first.tid, second.tid, second.ts)),
            _ => None,
        })
        .collect();
    assert_eq!(overlaps.len(), 1, "{report:#?}");
    let text = report.to_string();
    assert!(text.starts_with("FAILED: 46 runs"), "{text}");
    assert!(
        text.contains("color 3 overlaps: odd on core 1 (tid 2)"),
        "{text}"
    );
    let (color, a, b, ts) = overlaps[0];
    assert_eq!((color, a, b), (3, tid(1), tid(2)));
    assert!(ts > run["ts"].as_f64().unwrap());
    // The extra run also breaks the count, which the report says too.
    assert!(report.violations.iter().any(|x| matches!(
        x,
        Violation::CountMismatch {
            what: Count::Events,
            in_trace: 46,
            counter: 45,
            ..
        }
    )));
}

/// Runs that touch (one ends when the next starts) do not overlap.
#[test]
fn touching_runs_pass() {
    let mut v = exported(&common::full_sample());
    let evs = events_mut(&mut v);
    let i = evs
        .iter()
        .position(|e| e["cat"] == "run" && e["args"]["color"] == 3 && e["tid"] == tid(1))
        .unwrap();
    let mut copy = evs[i].clone();
    copy["tid"] = json!(tid(2));
    copy["ts"] = json!(evs[i]["ts"].as_f64().unwrap() + evs[i]["dur"].as_f64().unwrap());
    copy["dur"] = json!(0.01);
    copy["args"] = json!({"color": 3});
    evs.push(copy);
    v["otherData"]["counters"]["tolerance"] = json!(1);
    let report = check(&ParsedTrace::from_value(&v).unwrap());
    assert!(report.passed(), "{report:#?}");
}

/// Two runs of one color whose sequence numbers are swapped.
#[test]
fn checker_fails_on_runs_out_of_posting_order() {
    let mut v = exported(&common::full_sample());
    let evs = events_mut(&mut v);
    let idx: Vec<usize> = evs
        .iter()
        .enumerate()
        .filter(|(_, e)| e["cat"] == "run" && e["args"]["color"] == 0)
        .map(|(i, _)| i)
        .take(2)
        .collect();
    let (a, b) = (idx[0], idx[1]);
    let (sa, sb) = (evs[a]["args"]["seq"].clone(), evs[b]["args"]["seq"].clone());
    evs[a]["args"]["seq"] = sb;
    evs[b]["args"]["seq"] = sa;
    let report = check(&ParsedTrace::from_value(&v).unwrap());
    assert_eq!(report.violations_total, 1, "{report:#?}");
    match &report.violations[0] {
        Violation::OutOfOrder {
            color,
            earlier,
            later,
        } => {
            assert_eq!(*color, 0);
            assert_eq!((earlier.seq, later.seq), (Some(1), Some(0)));
            assert!(earlier.ts < later.ts);
        }
        other => panic!("expected an order violation, got {other:?}"),
    }
}

#[test]
fn counts_are_compared_only_when_complete() {
    let mut v = exported(&common::full_sample());
    v["otherData"]["counters"]["steals"] = json!(3);
    let report = check(&ParsedTrace::from_value(&v).unwrap());
    assert_eq!(
        report.violations,
        [Violation::CountMismatch {
            what: Count::Steals,
            in_trace: 1,
            counter: 3,
            tolerance: 0
        }]
    );
    v["otherData"]["counters"]["tolerance"] = json!(2);
    assert!(check(&ParsedTrace::from_value(&v).unwrap()).passed());
    // A ring too small for the run: the counts cannot be compared, and are not.
    let small = common::sample(Bound::Ring { capacity: 10 });
    let report = check(&ParsedTrace::from_value(&exported(&small)).unwrap());
    assert!(report.passed(), "{report:#?}");
    assert!(matches!(report.counts, Counts::NotComparable { .. }));
}

/// A window keeps what starts inside it, and the trace of the window still checks.
#[test]
fn window_trace_checks() {
    let w = common::sample(Bound::Window {
        from: 4_000,
        len: 10_000,
        capacity: 1024,
    });
    for b in &w.cores {
        assert!(b.records().all(|r| (4_000..14_000).contains(&r.start())));
    }
    let v = exported(&w);
    assert_eq!(v["otherData"]["bound"]["mode"], "window");
    assert_eq!(v["otherData"]["bound"]["for_us"], 10.0);
    let report = check(&ParsedTrace::from_value(&v).unwrap());
    assert!(report.passed(), "{report:#?}");
    assert_eq!(report.steals, 1);
    // 9 runs of core 0 start in [4000, 14000) (at 100 + 1100 k, k = 4..=12), and core 1's 5.
    assert_eq!(report.runs, 9 + 5);
}

#[test]
fn malformed_traces_are_errors() {
    for text in [
        "not json",
        "{\"x\": 1}",
        "[{\"ph\": \"X\", \"pid\": 1, \"tid\": 0, \"ts\": 0}]",
        "[{\"pid\": 1}]",
        "[{\"ph\": \"X\", \"pid\": 1, \"tid\": 0, \"ts\": 0, \"dur\": -1}]",
    ] {
        assert!(ParsedTrace::from_str(text).is_err(), "{text}");
    }
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// A random run that keeps the color guarantee: each color's events run one after another in
/// posting order, on the core that owns the color; a color moves to another core by a steal
/// that core records (with its search before it) while the color is not running.
fn random_trace(seed: u64, cores: usize, colors: usize, events: usize) -> Trace {
    use colored_trace::{State, StealOutcome};
    let mut rng = Rng(seed | 1);
    let mut bufs: Vec<TraceBuf> = (0..cores)
        .map(|c| {
            TraceBuf::new(
                c,
                Bound::Ring {
                    capacity: 8 * events,
                },
            )
        })
        .collect();
    let mut core_free = vec![0u64; cores];
    let mut color_done = vec![0u64; colors];
    let mut owner: Vec<usize> = (0..colors).map(|c| c % cores).collect();
    let mut seq = vec![0u64; colors];
    let (mut runs, mut steals) = (0, 0);
    for _ in 0..events {
        let c = rng.below(colors as u64) as usize;
        if rng.below(8) == 0 {
            let thief = rng.below(cores as u64) as usize;
            if thief != owner[c] {
                // The thief searches from when it is free, then steals once the color is done.
                let from = core_free[thief];
                let start = from.max(color_done[c]) + 10 + rng.below(200);
                let (wait, hold) = (rng.below(50) as u32, 20 + rng.below(100) as u32);
                let st = |at, state| Record::State {
                    at,
                    queue_len: 0,
                    state,
                };
                bufs[thief].push(st(from, State::Search));
                bufs[thief].push(Record::Steal {
                    start,
                    dur: wait + hold + 5,
                    lock_wait: wait,
                    lock_hold: hold,
                    events: 1,
                    victim: owner[c] as u16,
                    colors: 1,
                    nodes: 3,
                    outcome: StealOutcome::Stolen,
                });
                let done = start + u64::from(wait + hold) + 5;
                bufs[thief].push(st(done, State::Busy));
                core_free[thief] = done;
                owner[c] = thief;
                steals += 1;
            }
        }
        let k = owner[c];
        let start = core_free[k].max(color_done[c]) + rng.below(3) * rng.below(100);
        let end = start + 1 + rng.below(1000);
        bufs[k].push(Record::Run {
            start,
            end,
            color: c as u32,
            handler: (c % 3) as u16,
            seq: seq[c],
        });
        seq[c] += 1;
        core_free[k] = end;
        color_done[c] = end;
        runs += 1;
    }
    Trace {
        meta: TraceMeta {
            cycles_per_us: 3000.0,
            handler_names: vec!["a".into(), "b".into(), "c".into()],
            counters: Some(colored_trace::WindowCounters {
                events: runs,
                steals,
                tolerance: 0,
            }),
            ..TraceMeta::default()
        },
        cores: bufs,
    }
}

/// Random runs that keep the guarantee pass; moving one run onto another core so that it
/// overlaps a run of its color, or swapping two of a color's sequence numbers, fails.
#[test]
fn random_traces_pass_and_their_corruptions_fail() {
    for seed in 1..=20u64 {
        let v = exported(&random_trace(seed, 1 + (seed % 4) as usize, 6, 400));
        let t = ParsedTrace::from_value(&v).unwrap();
        let report = check(&t);
        assert!(report.passed(), "seed {seed}: {report}");
        assert_eq!(report.runs, 400);

        // Overlap: a copy of a run with a successor of its color, on another track, starting
        // inside the successor.
        let runs: Vec<&Value> = of(&v, "X", "run").collect();
        let mut rng = Rng(seed * 7919);
        let a = runs[rng.below(runs.len() as u64) as usize];
        let next = runs
            .iter()
            .filter(|r| r["args"]["color"] == a["args"]["color"])
            .find(|r| r["args"]["seq"].as_u64() > a["args"]["seq"].as_u64());
        if let Some(next) = next {
            let mut bad = v.clone();
            let mut copy = (*next).clone();
            copy["tid"] = json!(next["tid"].as_u64().unwrap() + 100);
            copy["ts"] = json!(next["ts"].as_f64().unwrap() + next["dur"].as_f64().unwrap() / 2.0);
            copy["args"] = json!({"color": next["args"]["color"]});
            events_mut(&mut bad).push(copy);
            let report = check(&ParsedTrace::from_value(&bad).unwrap());
            assert!(
                report
                    .violations
                    .iter()
                    .any(|x| matches!(x, Violation::Overlap { .. })),
                "seed {seed}: {report}"
            );
        }

        // Order: swap the sequence numbers of a color's first two runs.
        let mut bad = v.clone();
        let color = a["args"]["color"].clone();
        let idx: Vec<usize> = events(&bad)
            .iter()
            .enumerate()
            .filter(|(_, e)| e["cat"] == "run" && e["args"]["color"] == color)
            .map(|(i, _)| i)
            .take(2)
            .collect();
        if idx.len() == 2 {
            let evs = events_mut(&mut bad);
            let s0 = evs[idx[0]]["args"]["seq"].clone();
            evs[idx[0]]["args"]["seq"] = evs[idx[1]]["args"]["seq"].clone();
            evs[idx[1]]["args"]["seq"] = s0;
            let report = check(&ParsedTrace::from_value(&bad).unwrap());
            assert!(
                report
                    .violations
                    .iter()
                    .any(|x| matches!(x, Violation::OutOfOrder { .. })),
                "seed {seed}: {report}"
            );
        }
    }
}
