//! `microbenches simulate` with the paper options, run as a process: the done-when command of
//! the simulator's paper mode writes a trace that the color-guarantee checker passes, with its
//! metadata (simulated, fidelity, the simulated clock); the JSON result says the fidelity and
//! the nodes a steal read; bad option values are refused before anything runs.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

/// The committed calibration of the baseline results (so no test calibrates this machine).
fn calibration() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../results/baseline/sim/calibration.json")
}

#[test]
fn a_paper_mode_simulation_writes_a_trace_that_passes_the_check() {
    let dir = std::env::temp_dir().join(format!("sim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let t = dir.join("t.json");
    let out = Command::new(env!("CARGO_BIN_EXE_microbenches"))
        .args(["simulate", "unbalanced", "--runtime", "libasync"])
        .args(["--stealing", "base", "--cores", "8", "--topology", "e5410"])
        .args([
            "--fidelity",
            "paper",
            "--trace-for",
            "0.002",
            "--format",
            "json",
        ])
        .args(["--seconds", "0.05", "--trace"])
        .arg(&t)
        .arg("--calibration")
        .arg(calibration())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = if r.is_array() { &r[0] } else { &r };
    assert_eq!(r["simulated"], true);
    assert_eq!(r["fidelity"], "paper");
    assert!(r["steal_nodes_visited"].as_f64().unwrap() >= 1.0, "{r}");
    assert!(r["steal_cost_cycles"].as_f64().unwrap() > 0.0, "{r}");
    let report = colored_trace::check::check_path(&t).expect("read the trace");
    assert!(report.passed(), "{report}");
    assert!(report.runs > 0 && report.steals > 0, "{report}");
    let v: Value = serde_json::from_slice(&std::fs::read(&t).unwrap()).unwrap();
    let meta = &v["otherData"];
    assert_eq!(meta["simulated"], true, "{meta}");
    assert_eq!(meta["fidelity"], "paper", "{meta}");
    assert_eq!(meta["cycles_per_us"], 2333.0, "{meta}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_paper_options_are_refused() {
    let cases: [(&[&str], &str); 3] = [
        (&["--post-batch", "0"], "post batch must be 1 to 32, not 0"),
        (
            &["--thieves", "9"],
            "--thieves 9: more than the 8 simulated cores",
        ),
        (
            &["--event-overhead-cycles=-1"],
            "--event-overhead-cycles must be a number of cycles, 0 or more",
        ),
    ];
    for (extra, want) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_microbenches"))
            .args(["simulate", "unbalanced", "--runtime", "libasync"])
            .args(["--stealing", "base", "--cores", "8"])
            .args(extra)
            .arg("--calibration")
            .arg(calibration())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(want), "{extra:?}: {err}");
    }
}
