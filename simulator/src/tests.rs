//! The simulator's own guarantees: the color guarantee holds inside the simulation for every
//! design and policy over many seeds, a seed reproduces a run exactly, and the results carry
//! what the interface promises.

use super::calibrate::Calibration;
use super::workload::{Random, Workload};
use super::*;
use colored_runtime::{FidelityOptions, QueueKind, StealPolicy};

fn policies(q: QueueKind) -> Vec<StealPolicy> {
    match q {
        QueueKind::Libasync => vec![StealPolicy::Off, StealPolicy::Base],
        QueueKind::Mely => StealPolicy::ALL.to_vec(),
    }
}

fn spec(
    bench: SimBench,
    q: QueueKind,
    p: StealPolicy,
    cores: usize,
    topo: &str,
    seed: u64,
) -> SimSpec {
    SimSpec {
        bench,
        queue: q,
        stealing: p,
        cores,
        topology: topo.into(),
        seconds: 0.002,
        seed,
        jitter: JITTER,
    }
}

/// Random event graphs (chains on one color, children on other cores' colors, several posters
/// per color, data accesses) on the paper's machine and on the NUMA one: no color ever runs on
/// two virtual cores at once, each poster's events of a color start in order and none is lost,
/// everything posted runs; and the stealing policies did steal, so the check saw steals.
#[test]
fn color_guarantee_holds_for_every_design_and_policy() {
    let cal = Calibration::example();
    for q in [QueueKind::Libasync, QueueKind::Mely] {
        for p in policies(q) {
            let mut steals = 0;
            for seed in 0..12u64 {
                let (topo, cores) = if seed % 3 == 2 {
                    ("numa2", 16)
                } else {
                    ("e5410", 8)
                };
                let s = spec(SimBench::Penalty, q, p, cores, topo, seed);
                let mut w = Random::new(seed, 150, 3, 4, 24);
                let run = simulate_with(&s, &cal, &mut w)
                    .unwrap_or_else(|e| panic!("{q}/{p}/{seed}: {e:#}"));
                assert!(w.drained(), "{q}/{p}/{seed}: events left");
                assert_eq!(
                    run.outcome.violations,
                    Vec::<String>::new(),
                    "{q}/{p} seed {seed}"
                );
                assert!(run.outcome.total.events > 150, "{q}/{p}/{seed}");
                steals += run.outcome.total.steals;
            }
            assert_eq!(steals > 0, p.enabled(), "{q}/{p}: {steals} steals");
        }
    }
}

/// `spec`'s workload, with `unbalanced` rounds of 5 000 events instead of 50 000 (libasync-smp's
/// steal rescans the whole queue: full rounds take minutes of the test's time).
fn small(s: &SimSpec, cal: &Calibration) -> Box<dyn Workload> {
    match s.bench {
        SimBench::Unbalanced(costs) => {
            let p = microbench_defs::unbalanced::Params {
                events_per_round: 5_000,
                seed: s.seed,
                ..Default::default()
            };
            Box::new(workload::Unbalanced::new(p, costs, cal.kernels.clone()))
        }
        _ => workload_of(s, cal).unwrap(),
    }
}

/// The three benchmarks on 8 virtual cores, every design and policy, a few seeds: whole rounds,
/// no violation.
#[test]
fn benchmarks_keep_the_color_guarantee() {
    let cal = Calibration::example();
    for bench in [
        SimBench::Unbalanced(microbench_defs::unbalanced::Costs::Annotated),
        SimBench::Unbalanced(microbench_defs::unbalanced::Costs::Profiled),
        SimBench::Penalty,
        SimBench::CacheEfficient,
    ] {
        for q in [QueueKind::Libasync, QueueKind::Mely] {
            for p in policies(q) {
                for seed in 0..3 {
                    let s = spec(bench, q, p, 8, "e5410", seed);
                    let mut w = small(&s, &cal);
                    let run = simulate_with(&s, &cal, w.as_mut())
                        .unwrap_or_else(|e| panic!("{} {q}/{p}/{seed}: {e:#}", bench.name()));
                    assert_eq!(run.outcome.violations, Vec::<String>::new());
                    assert!(run.outcome.rounds >= 1 && run.outcome.events > 0);
                }
            }
        }
    }
}

/// 64 cores: a round's last event posts the next fork while other cores still finish their
/// batches, so the fork's placements have to wait for running colors, as `place_all` does.
#[test]
fn forks_wait_for_running_colors_on_many_cores() {
    let cal = Calibration::example();
    for p in [
        StealPolicy::Penalty,
        StealPolicy::All,
        StealPolicy::TimeLeft,
    ] {
        for seed in 0..3 {
            let s = spec(SimBench::Penalty, QueueKind::Mely, p, 64, "e5410", seed);
            let run = simulate(&s, &cal).unwrap_or_else(|e| panic!("{p}/{seed}: {e:#}"));
            assert!(run.outcome.rounds >= 2, "{p}/{seed}");
        }
    }
}

/// A seed reproduces a run exactly (every counter of every core); another seed changes it.
#[test]
fn a_seed_reproduces_a_run() {
    let cal = Calibration::example();
    let run = |seed| {
        let s = spec(
            SimBench::Unbalanced(microbench_defs::unbalanced::Costs::Annotated),
            QueueKind::Mely,
            StealPolicy::All,
            8,
            "e5410",
            seed,
        );
        let r = simulate(&s, &cal).unwrap();
        (
            r.outcome.cycles,
            r.outcome.events,
            format!("{:?}", r.outcome.cores),
            r.outcome.steal_threshold,
        )
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7).2, run(8).2);
    let random = |seed| {
        let s = spec(
            SimBench::Penalty,
            QueueKind::Libasync,
            StealPolicy::Base,
            4,
            "e5410",
            seed,
        );
        let r = simulate_with(&s, &cal, &mut Random::new(seed, 100, 3, 3, 16)).unwrap();
        (r.outcome.cycles, format!("{:?}", r.outcome.cores))
    };
    assert_eq!(random(3), random(3));
    assert_ne!(random(3), random(4));
}

/// The JSON of `simulate`: the microbenchmarks' fields, `simulated`, `cores`, `topology` and
/// the parameters (platform latencies, calibration costs, engine settings).
#[test]
fn results_say_they_are_simulated_and_carry_their_parameters() {
    let cal = Calibration::example();
    let s = spec(
        SimBench::Penalty,
        QueueKind::Mely,
        StealPolicy::Penalty,
        8,
        "e5410",
        1,
    );
    let run = simulate(&s, &cal).unwrap();
    let v = serde_json::to_value(to_result(&run, "example")).unwrap();
    for k in [
        "bench",
        "runtime",
        "stealing",
        "kevents_per_sec",
        "steals",
        "steal_cost_cycles",
        "stolen_time_cycles",
        "locking_time_pct",
        "l2_misses_per_event",
        "env",
    ] {
        assert!(v.get(k).is_some(), "{k} missing");
    }
    assert_eq!(v["simulated"], true);
    assert_eq!(v["cores"], 8);
    assert_eq!(v["topology"], "e5410");
    let p = &v["parameters"];
    assert_eq!(p["platform"]["latency_cycles"]["memory"], 110.0);
    assert_eq!(p["platform"]["latency_cycles"]["2"], 15.0);
    assert_eq!(p["platform"]["hz"], 2.333e9);
    assert_eq!(p["runtime_costs_cycles"]["design"]["pop"], 45.0);
    assert_eq!(p["engine"]["seed"], 1);
    assert_eq!(p["calibration"], "example");
    assert!(v["kevents_per_sec"].as_f64().unwrap() > 0.0);
}

/// `this` machine's cache costs are the calibrated sequential costs; a topology file's
/// latencies are charged as they are; a machine without latencies takes this machine's.
#[test]
fn platforms_take_their_costs_where_the_model_says() {
    let cal = Calibration::example();
    let e = Platform::resolve("e5410", 8, &cal).unwrap();
    assert_eq!(e.line_cost["2"], 15.0);
    assert_eq!(e.line_cost["memory"], 110.0);
    assert_eq!(e.hz, 2.333e9);
    assert!(!e.replicated);
    let n = Platform::resolve("numa2", 16, &cal).unwrap();
    assert_eq!(n.line_cost["3"], 6.0);
    assert_eq!(n.line_cost["memory"], 8.0);
    assert_eq!(n.hz, cal.cycles_per_sec);
    // Lines between cores: Table II's L2 latency within a pair, memory's across pairs; this
    // machine's measured transfer where the topology gives no latencies.
    let t = e.transfers(8, &cal);
    assert_eq!(
        &t[..8],
        &[0.0, 15.0, 110.0, 110.0, 110.0, 110.0, 110.0, 110.0]
    );
    assert_eq!(t[5 * 8 + 4], 15.0);
    assert!(n
        .transfers(16, &cal)
        .iter()
        .all(|&x| x == 0.0 || x == cal.line_transfer));
    let big = Platform::resolve("e5410", 64, &cal).unwrap();
    assert!(big.replicated);
    assert_eq!(big.machine.cpus.len(), 64);
    assert!(Platform::resolve("nonexistent.xml", 2, &cal).is_err());
    assert!(Platform::resolve("e5410", 0, &cal).is_err());
}

/// Validation ratios: each row over its table's first row, real and simulated, and the error.
#[test]
fn validation_ratios_follow_the_tables() {
    use super::validate::{configs, ratios, Entry};
    let cs = configs();
    assert!(cs
        .iter()
        .any(|c| c.bench == "penalty" && c.stealing == "penalty-one"));
    assert!(cs.iter().all(|c| c.runtime != "tokio"));
    // Every configuration with our options and with the papers'.
    let paper = cs
        .iter()
        .filter(|c| c.fidelity == colored_runtime::Fidelity::Paper)
        .count();
    assert_eq!(2 * paper, cs.len());
    let entries: Vec<Entry> = cs
        .iter()
        .flat_map(|c| {
            [1usize, 2].map(|cores| Entry {
                bench: c.bench.to_string(),
                runtime: c.runtime.to_string(),
                stealing: c.stealing.clone(),
                fidelity: c.fidelity.as_str().to_string(),
                cores,
                real: 100.0,
                simulated: if c.stealing == "off" { 100.0 } else { 110.0 },
                error_pct: None,
                real_runs: vec![100.0],
                load_after: vec![0.5],
                cpu_per_wall: vec![1.0],
                other_cpus: vec![0.0],
            })
        })
        .collect();
    let r = ratios(&entries);
    let base = r
        .iter()
        .find(|r| {
            r.table == "V"
                && r.stealing == "base"
                && r.runtime == "mely"
                && r.cores == 2
                && r.fidelity == "paper"
        })
        .expect("Table V's mely base ratio");
    assert_eq!(base.over, "Libasync-smp");
    assert!((base.real - 1.0).abs() < 1e-9 && (base.simulated - 1.1).abs() < 1e-9);
    assert!((base.error_pct.unwrap() - 10.0).abs() < 1e-9);
    // Table III-locking repeats Table III's ratios: counted once.
    let n = r
        .iter()
        .filter(|r| {
            r.table.starts_with("III")
                && r.stealing == "base"
                && r.runtime == "mely"
                && r.cores == 1
        })
        .count();
    // Once per fidelity.
    assert_eq!(n, 2);
}

/// The fidelity options to check: both presets and each of the four paper options alone.
fn fidelity_options() -> Vec<FidelityOptions> {
    use colored_runtime::{Fidelity, IdleMode, LockKind, StealWalk};
    let ours = FidelityOptions::of(Fidelity::Ours);
    vec![
        ours,
        FidelityOptions::of(Fidelity::Paper),
        FidelityOptions {
            idle: IdleMode::Spin,
            ..ours
        },
        FidelityOptions {
            lock: LockKind::Tas,
            ..ours
        },
        FidelityOptions {
            post_batch: 1,
            ..ours
        },
        FidelityOptions {
            steal_walk: StealWalk::FromHead,
            ..ours
        },
    ]
}

/// The color and FIFO checks of the random event graphs in every fidelity option, for both
/// designs with stealing: no violation, nothing lost, and steals happened.
#[test]
fn color_guarantee_holds_in_every_fidelity_option() {
    let cal = Calibration::example();
    for fidelity in fidelity_options() {
        for (q, p) in [
            (QueueKind::Libasync, StealPolicy::Base),
            (QueueKind::Mely, StealPolicy::All),
            (QueueKind::Mely, StealPolicy::TimeLeft),
        ] {
            let opts = SimOptions {
                fidelity,
                ..Default::default()
            };
            let mut steals = 0;
            for seed in 0..4u64 {
                let s = spec(SimBench::Penalty, q, p, 8, "e5410", seed);
                let mut w = Random::new(seed, 150, 3, 4, 24);
                let run = simulate_with_options(&s, &opts, &cal, &mut w)
                    .unwrap_or_else(|e| panic!("{fidelity:?} {q}/{p}/{seed}: {e:#}"));
                assert!(w.drained(), "{fidelity:?} {q}/{p}/{seed}: events left");
                assert_eq!(
                    run.outcome.violations,
                    Vec::<String>::new(),
                    "{fidelity:?} {q}/{p} seed {seed}"
                );
                steals += run.outcome.total.steals;
            }
            assert!(steals > 0, "{fidelity:?} {q}/{p}: no steal");
        }
    }
}

/// What the paper options change in the simulation, on `unbalanced` (one loaded core, seven
/// thieves): spinning thieves never sleep; spinners on a test-and-set lock delay its
/// release (none with backoff); libasync's walk from the head reads more nodes per steal; one
/// lock per post takes more locks for the same events; `--thieves 2` leaves the steals to
/// cores 0 and 1; `--event-overhead-cycles` changes the per-event cost.
#[test]
fn paper_options_change_what_they_model() {
    use colored_runtime::{Fidelity, IdleMode, LockKind, StealWalk};
    let cal = Calibration::example();
    let s = spec(
        SimBench::Unbalanced(microbench_defs::unbalanced::Costs::Annotated),
        QueueKind::Libasync,
        StealPolicy::Base,
        8,
        "e5410",
        1,
    );
    let run = |f: FidelityOptions, thieves: Option<usize>, overhead: Option<f64>| {
        let opts = SimOptions {
            fidelity: f,
            thieves,
            event_overhead_cycles: overhead,
            ..Default::default()
        };
        let mut w = small(&s, &cal);
        let r = simulate_with_options(&s, &opts, &cal, w.as_mut()).unwrap();
        assert_eq!(r.outcome.violations, Vec::<String>::new());
        r
    };
    let ours = FidelityOptions::of(Fidelity::Ours);
    let base = run(ours, None, None);
    let spin = run(
        FidelityOptions {
            idle: IdleMode::Spin,
            ..ours
        },
        None,
        None,
    );
    assert!(base.outcome.total.parks > 0, "bounded idle cores sleep");
    assert_eq!(spin.outcome.total.parks, 0, "spinning cores never sleep");
    assert_eq!(base.outcome.total.spin_transfer_cycles, 0);
    let tas = run(
        FidelityOptions {
            lock: LockKind::Tas,
            idle: IdleMode::Spin,
            ..ours
        },
        None,
        None,
    );
    assert!(tas.outcome.total.spin_transfer_cycles > 0);
    assert!(tas.outcome.total.lock_cycles > spin.outcome.total.lock_cycles);
    let head = run(
        FidelityOptions {
            steal_walk: StealWalk::FromHead,
            ..ours
        },
        None,
        None,
    );
    let nodes = |r: &SimRun| r.outcome.total.steal_nodes as f64 / r.outcome.total.steals as f64;
    assert!(
        nodes(&head) > nodes(&base),
        "{} {}",
        nodes(&head),
        nodes(&base)
    );
    let v = serde_json::to_value(to_result(&head, "example")).unwrap();
    assert_eq!(v["fidelity"], "mixed");
    assert!(v["steal_nodes_visited"].as_f64().unwrap() > 0.0);
    // Without stealing, the locks are the owners' pops and flushes and the fork's posts.
    let off = SimSpec {
        stealing: StealPolicy::Off,
        ..s.clone()
    };
    let locked = |post_batch: usize| {
        let opts = SimOptions {
            fidelity: FidelityOptions { post_batch, ..ours },
            ..Default::default()
        };
        let mut w = small(&off, &cal);
        let r = simulate_with_options(&off, &opts, &cal, w.as_mut()).unwrap();
        r.outcome.total.lock_cycles as f64 / r.outcome.events as f64
    };
    let (one, batched) = (locked(1), locked(32));
    assert!(one > batched, "{one} {batched}");
    let two = run(ours, Some(2), None);
    assert!(two.outcome.total.steals > 0);
    for c in &two.outcome.cores[2..] {
        assert_eq!((c.steals, c.steal_attempts), (0, 0));
    }
    let heavy = run(ours, None, Some(5_000.0));
    assert!(heavy.kevents_per_sec() < base.kevents_per_sec());
    let paper = run(FidelityOptions::of(Fidelity::Paper), None, None);
    let v = serde_json::to_value(to_result(&paper, "example")).unwrap();
    assert_eq!(v["fidelity"], "paper");
    assert_eq!(v["parameters"]["engine"]["fidelity"]["lock"], "tas");
}

/// A simulated trace (virtual cycles, simulated = true) passes the color check of
/// `colored-report trace-check`, and a copy with one run moved onto another core, overlapping
/// a run of its color, fails it.
#[test]
fn a_simulated_trace_passes_the_check_and_a_corrupted_copy_fails() {
    use colored_trace::check::check;
    use colored_trace::parse::ParsedTrace;
    let cal = Calibration::example();
    let s = spec(
        SimBench::Unbalanced(microbench_defs::unbalanced::Costs::Annotated),
        QueueKind::Libasync,
        StealPolicy::Base,
        8,
        "e5410",
        1,
    );
    let opts = SimOptions {
        fidelity: FidelityOptions::of(colored_runtime::Fidelity::Paper),
        trace: Some(colored_runtime::TraceSpec::Window {
            from_secs: 0.0,
            for_secs: 0.001,
            capacity: 100_000,
        }),
        ..Default::default()
    };
    let mut w = small(&s, &cal);
    let mut run = simulate_with_options(&s, &opts, &cal, w.as_mut()).unwrap();
    let trace = trace_of(&mut run).expect("traced");
    assert!(trace.meta.simulated);
    assert_eq!(trace.meta.fidelity, "paper");
    assert_eq!(trace.meta.cycles_per_us, 2333.0);
    let mut v = colored_trace::export::to_json(&trace).unwrap();
    let report = check(&ParsedTrace::from_value(&v).unwrap());
    assert!(report.passed(), "{report}");
    assert!(report.runs > 100 && report.steals > 10, "{report}");
    let events = v["traceEvents"].as_array_mut().unwrap();
    let run = events
        .iter()
        .find(|e| e["cat"] == "run" && e["dur"].as_f64().unwrap() > 0.0)
        .unwrap()
        .clone();
    let mut copy = run.clone();
    let other = if run["tid"] == events[1]["tid"] { 3 } else { 1 };
    copy["tid"] = serde_json::json!(colored_trace::export::tid(other));
    copy["ts"] =
        serde_json::json!(run["ts"].as_f64().unwrap() + run["dur"].as_f64().unwrap() / 2.0);
    events.push(copy);
    let report = check(&ParsedTrace::from_value(&v).unwrap());
    assert!(!report.passed(), "{report}");
}
