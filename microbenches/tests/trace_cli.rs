//! `microbenches unbalanced ... --trace t.json --trace-for 0.05`, run as a process, writes a
//! trace that the color-guarantee checker (`colored_trace::check`, the one `colored-report
//! trace-check` runs) passes, and a copy with one run of a color copied onto the other core's
//! track at the same time (two overlapping runs of one color) fails it. The exit statuses of
//! `colored-report trace-check` are tested in the colored-report package.

use serde_json::Value;
use std::process::Command;

#[test]
fn a_traced_unbalanced_run_passes_trace_check_and_a_corrupted_copy_fails() {
    let dir = std::env::temp_dir().join(format!("trace-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let t = dir.join("t.json");
    let out = Command::new(env!("CARGO_BIN_EXE_microbenches"))
        .args(["unbalanced", "--runtime", "libasync", "--stealing", "base"])
        .args([
            "--workers",
            "2",
            "--seconds",
            "1",
            "--trace-for",
            "0.05",
            "--trace",
        ])
        .arg(&t)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let check = |p: &std::path::Path| colored_trace::check::check_path(p).expect("read the trace");
    let ok = check(&t);
    assert!(ok.passed(), "{ok}");
    assert!(ok.runs > 0, "{ok}");
    let mut v: Value = serde_json::from_slice(&std::fs::read(&t).unwrap()).unwrap();
    let events = v["traceEvents"].as_array_mut().unwrap();
    let run = events
        .iter()
        .find(|e| e["cat"] == "run" && e["tid"] == 1)
        .cloned()
        .expect("a run on core 0");
    let mut copy = run.clone();
    copy["tid"] = Value::from(2);
    events.push(copy);
    let bad = dir.join("bad.json");
    std::fs::write(&bad, serde_json::to_vec(&v).unwrap()).unwrap();
    let failed = check(&bad);
    assert!(!failed.passed(), "{failed}");
    assert!(failed.to_string().contains("FAILED"), "{failed}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn synthetic_refuses_trace_without_creating_the_file() {
    let dir = std::env::temp_dir().join(format!("mb-syn-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let t = dir.join("t.json");
    let out = Command::new(env!("CARGO_BIN_EXE_microbenches"))
        .args(["synthetic", "--trace"])
        .arg(&t)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--trace is for dispatch"), "{err}");
    assert!(!t.exists(), "the refused run left an empty trace file");
    let _ = std::fs::remove_dir_all(&dir);
}
