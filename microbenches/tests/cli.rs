//! The command line of `microbenches` as a user meets it, run as a process: exit status and the
//! first line of stderr checked.

use std::path::PathBuf;
use std::time::{Duration, Instant};

const BENCH: &str = env!("CARGO_BIN_EXE_microbenches");

use edge::testing::{first_stderr_line as first_err, run_program as run};

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mb-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn usage_errors_exit_2_before_any_benchmark_runs() {
    let t = Instant::now();
    let cases: &[(&[&str], &str)] = &[
        (
            &["dispatch", "--runtime", "libasync", "--stealing", "all", "--seconds", "30"],
            "microbenches: error: the libasync queues support only stealing off or base, not all",
        ),
        (
            &["unbalanced", "--runtime", "all", "--stealing", "time-left", "--seconds", "30"],
            "microbenches: error: the libasync queues support only stealing off or base",
        ),
        (
            &["dispatch", "--seconds", "30", "--output", "/nonexistent/x.json"],
            "microbenches: error: --output /nonexistent/x.json: directory /nonexistent does not exist",
        ),
        (
            &["dispatch", "--seconds", "30", "--json-out", "/nonexistent/x.json"],
            "microbenches: error: --output /nonexistent/x.json: directory /nonexistent does not exist",
        ),
        (
            &["paper-tables", "--seconds", "30", "--markdown-out", "/nonexistent/t.md"],
            "microbenches: error: --markdown-out /nonexistent/t.md: directory /nonexistent",
        ),
        (
            &["unbalanced", "--fidelity", "paper", "--post-batch", "0", "--seconds", "30"],
            "microbenches: error: post batch must be 1 to 32, not 0",
        ),
        (
            &["dispatch", "--workers", "100000"],
            "microbenches: error: --workers 100000 is more than the",
        ),
        (
            &["simulate", "penalty", "--runtime", "mely", "--stealing", "off", "--cores", "65"],
            "microbenches: error: invalid value '65' for '--cores <CORES>': 65 is not in 1..=64",
        ),
        (
            &["simulate", "penalty", "--runtime", "libasync", "--stealing", "locality", "--cores", "2"],
            "microbenches: error: the libasync queues support only stealing off or base, not locality",
        ),
        (
            &["simulate", "penalty", "--runtime", "mely", "--stealing", "off", "--cores", "2", "--topology", "nosuch"],
            "microbenches: error: --topology nosuch: neither a known machine (this, e5410, numa2) nor an hwloc XML file",
        ),
    ];
    for (args, want) in cases {
        let o = run(BENCH, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {o:?}");
        assert_eq!(
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .filter(|l| l.contains("error"))
                .count(),
            1,
            "{args:?}: the error is said once: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            first_err(&o).starts_with(want),
            "{args:?}: {}",
            first_err(&o)
        );
    }
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "a benchmark ran before the checks"
    );
}

/// The paper-faithful run of the issue: libasync's stealing with `--fidelity paper` says so in
/// its JSON and reports the nodes each steal visited (libasync-smp's walk from the head reads
/// the head twice at least: the choice's scan, then the walk).
#[test]
fn a_paper_fidelity_run_reports_the_nodes_each_steal_visited() {
    let o = run(
        BENCH,
        &[
            "unbalanced",
            "--runtime",
            "libasync",
            "--stealing",
            "base",
            "--workers",
            "2",
            "--fidelity",
            "paper",
            "--seconds",
            "0.3",
            "--format",
            "json",
        ],
    );
    assert!(o.status.success(), "{o:?}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["fidelity"], "paper");
    assert!(v["steals"].as_u64().unwrap() > 0, "{v}");
    let nodes = v["steal_nodes_visited"]
        .as_f64()
        .expect("a number with steals");
    assert!(nodes >= 2.0, "{nodes} nodes per steal");
}

#[test]
fn a_run_writes_its_output_under_the_old_and_new_names() {
    let d = temp_dir("out");
    for flag in ["--output", "--json-out"] {
        let out = d.join(format!("{}.json", flag.trim_start_matches('-')));
        let o = run(
            BENCH,
            &[
                "dispatch",
                "--runtime",
                "mely",
                "--workers",
                "1",
                "--seconds",
                "0.1",
                flag,
                out.to_str().unwrap(),
            ],
        );
        assert!(o.status.success(), "{flag}: {o:?}");
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        assert_eq!(v[0]["bench"], "dispatch");
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn version_and_examples_everywhere() {
    for (bin, sub) in [(BENCH, &[][..]), (BENCH, &["dispatch"][..])] {
        let name = std::path::Path::new(bin)
            .file_name()
            .unwrap()
            .to_str()
            .unwrap();
        if sub.is_empty() {
            let o = run(bin, &["--version"]);
            assert!(o.status.success());
            assert!(String::from_utf8_lossy(&o.stdout).starts_with(&format!("{name} ")));
        }
        let mut a = sub.to_vec();
        a.push("--help");
        let o = run(bin, &a);
        assert!(o.status.success(), "{a:?}");
        let help = String::from_utf8_lossy(&o.stdout);
        if sub.is_empty() {
            assert!(help.contains("EXAMPLES:"), "{name} {a:?}");
        } else {
            // The runtime options come from the runtime crate, with tokio added to --runtime.
            assert!(help.contains("--allow-many-workers"), "{help}");
            assert!(help.contains("tokio"), "{help}");
            assert!(!help.contains("--no-pin"), "{help}");
        }
    }
}

#[test]
fn the_table_has_no_json_blob_column() {
    let o = run(BENCH, &["unbalanced", "--workers", "2", "--seconds", "0.2"]);
    assert!(o.status.success(), "{o:?}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!out.contains('{'), "{out}");
    let widest = out.lines().map(str::len).max().unwrap_or(0);
    assert!(widest <= 170, "a {widest}-character line:\n{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("unbalanced mely off: handler_cycles: ")),
        "{out}"
    );
}

/// `paper-tables --fidelity paper` runs only the rows named as the paper's (colored, with the
/// paper's figures), each with the papers' mechanisms, and records the fidelity in every result.
#[test]
fn paper_tables_with_the_papers_mechanisms_runs_the_papers_rows() {
    let d = temp_dir("pt-paper");
    let out = d.join("pt.json");
    let o = run(
        BENCH,
        &[
            "paper-tables",
            "--fidelity",
            "paper",
            "--workers",
            "2",
            "--seconds",
            "0.1",
            "--output",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("--fidelity paper."), "{stdout}");
    assert!(!stdout.contains("synthetic"), "{stdout}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let items = v.as_array().unwrap();
    let mut configs: Vec<String> = items
        .iter()
        .map(|i| {
            assert_eq!(i["fidelity"], "paper", "{i}");
            format!("{} {} {}", i["bench"], i["runtime"], i["stealing"])
        })
        .collect();
    configs.sort();
    configs.dedup();
    // Tables III-VI's paper rows: unbalanced 5, penalty 4, cache-efficient 4 configurations.
    assert_eq!(configs.len(), 13, "{configs:?}");
    assert!(
        !configs
            .iter()
            .any(|c| c.contains("tokio") || c.contains("synthetic")),
        "{configs:?}"
    );
    let _ = std::fs::remove_dir_all(d);
}
