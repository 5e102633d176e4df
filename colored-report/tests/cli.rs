//! The command line of `colored-report` as a user meets it, run as a process: exit status, the
//! first line of stderr, `--version` and `--help`, and `trace-check`'s exit statuses on a trace
//! written by `microbenches unbalanced --runtime libasync --stealing base --workers 2
//! --trace-records 60 --trace` (tests/fixtures/trace) and on a corrupted copy of it.

use edge::testing::{first_stderr_line as first_err, run_program as run};
use serde_json::Value;
use std::path::{Path, PathBuf};

const REPORT: &str = env!("CARGO_BIN_EXE_colored-report");

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("report-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn colored_report_refuses_a_directory_with_no_results_and_leaves_it_untouched() {
    let d = temp_dir("www");
    std::fs::write(d.join("index.html"), "<html></html>").unwrap();
    let o = run(REPORT, &["report", d.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(
        first_err(&o).starts_with(&format!(
            "colored-report: error: {} holds no results (no experiment and no recorded failure)",
            d.display()
        )),
        "{}",
        first_err(&o)
    );
    let names: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["index.html"], "the directory was written into");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn version_and_examples() {
    let o = run(REPORT, &["--version"]);
    assert!(o.status.success(), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("colored-report "));
    let o = run(REPORT, &["--help"]);
    assert!(o.status.success(), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("EXAMPLES:"));
}

#[test]
fn trace_check_exits_0_on_a_good_trace_and_1_on_overlapping_runs_of_one_color() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/trace/unbalanced-libasync-base-w2.json");
    let ok = run(REPORT, &["trace-check", fixture.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(ok.status.code(), Some(0), "{text}");
    assert!(text.starts_with("passed: 56 runs"), "{text}");

    let mut v: Value = serde_json::from_slice(&std::fs::read(&fixture).unwrap()).unwrap();
    let events = v["traceEvents"].as_array_mut().unwrap();
    let mut copy = events
        .iter()
        .find(|e| e["cat"] == "run" && e["tid"] == 1)
        .cloned()
        .expect("a run on core 0");
    copy["tid"] = Value::from(2);
    events.push(copy);
    let d = temp_dir("trace");
    let bad = d.join("bad.json");
    std::fs::write(&bad, serde_json::to_vec(&v).unwrap()).unwrap();
    let failed = run(REPORT, &["trace-check", bad.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&failed.stdout);
    assert_eq!(failed.status.code(), Some(1), "{text}");
    assert!(text.contains("FAILED"), "{text}");

    let missing = d.join("missing.json");
    let o = run(REPORT, &["trace-check", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(
        first_err(&o).starts_with(&format!(
            "colored-report: error: reading the trace {}",
            missing.display()
        )),
        "{}",
        first_err(&o)
    );
    std::fs::remove_dir_all(&d).unwrap();
}
