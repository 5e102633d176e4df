//! `colored-report compare` on real recorded samples, from the project's shared 2-vCPU machine
//! (logs, plots, CSVs and per-item env objects removed, JSON compacted):
//! - `tests/fixtures/aa/{base,new}`: a same-commit A/A of the microbenchmarks, interleaved:
//!   `REPRO_SECONDS=0.5 scripts/compare.sh --ab HEAD HEAD --experiments micro --pairs 8`
//!   (8 samples per side, run A B A B ...);
//! - `tests/fixtures/instr/{base,new}`: the instruction counts of two `REPRO_RUNS=5` runs of one
//!   build (5 samples each);
//! - `tests/fixtures/aa-runs/{1..6}`: six `REPRO_ONLY=micro REPRO_RUNS=5 scripts/reproduce.sh
//!   quick` runs of one build (55a076a, microbenchmarks in rounds), one after another on
//!   2026-12-06 while three other sessions compiled on the machine (1-minute load 4.1 to 10.1
//!   at the runs' starts): the samples of every microbenchmark, for the A/A calibration;
//! - `tests/fixtures/aa-runs-quiet/{1..6}`: the same command's runs of one build (43dc093) on
//!   the quiet machine (nothing else running; 1-minute load 1.4 to 1.8 at the runs' starts,
//!   the previous run's own two workers).
//!
//! Each test copies them, changes what it is about (a real figure's samples scaled, fewer
//! samples kept, another machine), and runs the real binary.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

const BIN: &str = env!("CARGO_BIN_EXE_colored-report");

fn fixture(side: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/aa")
        .join(side)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A fresh copy of one side of the fixture.
fn copy_of(side: &str, tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "colored-compare-test-{}-{}-{tag}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&fixture(side), &dir);
    dir
}

fn read(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn write(p: &Path, v: &Value) {
    std::fs::write(p, serde_json::to_string(v).unwrap()).unwrap();
}

/// Every copy of the results file `rel` in `dir`: the top level's and each sample's.
fn copies(dir: &Path, rel: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = vec![dir.join(rel)];
    if let Ok(rd) = std::fs::read_dir(dir.join("samples")) {
        for e in rd.flatten() {
            v.push(e.path().join(rel));
        }
    }
    v.into_iter().filter(|p| p.is_file()).collect()
}

/// Multiply one paper-tables configuration's KEvents/s in every sample; returns how many
/// results were changed.
fn scale_micro(dir: &Path, bench: &str, runtime: &str, stealing: &str, factor: f64) -> usize {
    let mut hit = 0;
    for p in copies(dir, "microbench/paper-tables.json") {
        let mut v = read(&p);
        for item in v.as_array_mut().unwrap() {
            if item["bench"] == bench
                && item["runtime"] == runtime
                && item["stealing"] == stealing
                && item.get("costs").and_then(Value::as_str) != Some("profiled")
            {
                let k = item["kevents_per_sec"].as_f64().unwrap();
                item["kevents_per_sec"] = (k * factor).into();
                hit += 1;
            }
        }
        write(&p, &v);
    }
    assert!(
        hit > 0,
        "no {bench} {runtime} {stealing} in {}",
        dir.display()
    );
    hit
}

/// Multiply one synthetic configuration's KEvents/s in every sample.
fn scale_synthetic(dir: &Path, config: &str, factor: f64) {
    let mut hit = 0;
    for p in copies(dir, "microbench/paper-tables.json") {
        let mut v = read(&p);
        for item in v.as_array_mut().unwrap() {
            if item["bench"] == "synthetic" && item["config"] == config {
                let k = item["kevents_per_sec"].as_f64().unwrap();
                item["kevents_per_sec"] = (k * factor).into();
                hit += 1;
            }
        }
        write(&p, &v);
    }
    assert!(hit > 0, "no synthetic {config} in {}", dir.display());
}

/// Multiply one instruction count, at the top level and in every sample.
fn scale_instr(dir: &Path, op: &str, factor: f64) {
    for p in copies(dir, "instr/counts.json") {
        let mut v = read(&p);
        for item in v.as_array_mut().unwrap() {
            if item["op"] == op {
                let k = item["instructions_per_op"].as_f64().unwrap();
                item["instructions_per_op"] = (k * factor).into();
            }
        }
        write(&p, &v);
    }
}

/// Keep the first `n` samples (sample directories) of a copy.
fn keep_samples(dir: &Path, n: usize) {
    for e in std::fs::read_dir(dir.join("samples")).unwrap().flatten() {
        let i: usize = e.file_name().to_str().unwrap().parse().unwrap_or(0);
        if i > n {
            std::fs::remove_dir_all(e.path()).unwrap();
        }
    }
}

fn compare(base: &Path, new: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let o = Command::new(BIN)
        .args(["compare", base.to_str().unwrap(), new.to_str().unwrap()])
        .args(extra)
        .output()
        .expect("run colored-report");
    let out = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    (o.status.code(), out)
}

fn row<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(&format!("| {name} |")))
        .unwrap_or_else(|| panic!("no row {name:?} in:\n{out}"))
}

/// Rows whose verdict is a regression and that are gated (ratios always are).
fn gated_regressions(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| l.contains("| REGRESSED |") && !l.ends_with("| no |"))
        .collect()
}

/// The fixture's time-left steals took one color (the runtime's default when it was recorded).
const TIME_LEFT: &str = "microbench/unbalanced/mely/time-left-one KEvents/s";
const TIME_LEFT_RATIO: &str =
    "unbalanced: mely time-left (one color per steal) / libasync off (KEvents/s)";

/// The least noisy timed figure of the A/A (99% interval of the A/A change about +-7%).
const SYN: &str = "base (one shared queue)";
const SYN_KEY: &str = "microbench/synthetic/base (one shared queue) KEvents/s";

#[test]
fn same_commit_a_a_is_clean_at_the_defaults() {
    let (code, out) = compare(&fixture("base"), &fixture("new"), &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(gated_regressions(&out).is_empty(), "{out}");
    // Real samples, tested: eight per side, with a p-value and an interval.
    let r = row(&out, TIME_LEFT);
    assert!(r.contains("| 8/8 |") && r.contains("p="), "{r}");
    let r = row(&out, TIME_LEFT_RATIO);
    assert!(r.contains("p=") && r.ends_with("| 8/8 |"), "{r}");
    // Paired (as they ran), every absolute figure is gated too, and it stays clean.
    let (code, out) = compare(&fixture("base"), &fixture("new"), &["--paired"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("- same machine: absolute figures are gated"),
        "{out}"
    );
    assert!(!out.contains("| REGRESSED |"), "{out}");
}

/// Copies of both sides with `n` samples each, both marked as started on a quiet machine (so
/// their absolute figures are gated).
fn quiet_pair(tag: &str, n: usize) -> (PathBuf, PathBuf) {
    let (base, new) = (
        copy_of("base", &format!("{tag}-b")),
        copy_of("new", &format!("{tag}-n")),
    );
    for d in [&base, &new] {
        keep_samples(d, n);
        edit_env(d, |e| e["loadavg_start"] = 0.1.into());
    }
    (base, new)
}

#[test]
fn a_twenty_percent_drop_with_five_samples_is_flagged() {
    let (base, new) = quiet_pair("drop20", 5);
    scale_synthetic(&new, SYN, 0.8);
    let (code, out) = compare(&base, &new, &[]);
    assert_eq!(code, Some(1), "{out}");
    let r = row(&out, SYN_KEY);
    assert!(
        r.contains("| REGRESSED | p=0.008 |") && r.ends_with("| 5/5 | yes |"),
        "{r}"
    );
    for d in [base, new] {
        std::fs::remove_dir_all(d).ok();
    }
}

#[test]
fn a_one_percent_drop_is_not_flagged() {
    let (base, new) = quiet_pair("drop1", 5);
    scale_synthetic(&new, SYN, 0.99);
    let (_, out) = compare(&base, &new, &[]);
    let r = row(&out, SYN_KEY);
    assert!(r.contains("| ok |") && r.ends_with("| 5/5 | yes |"), "{r}");
    for d in [base, new] {
        std::fs::remove_dir_all(d).ok();
    }
}

#[test]
fn single_samples_are_warned_and_fall_back_to_the_threshold() {
    let (base, new) = quiet_pair("one", 1);
    scale_synthetic(&new, SYN, 0.7);
    let (code, out) = compare(&base, &new, &[]);
    assert!(
        out.contains("WARNING: ") && out.contains("with a single sample per side"),
        "{out}"
    );
    let r = row(&out, SYN_KEY);
    assert!(
        r.contains("| REGRESSED | untested: one sample per side |"),
        "{r}"
    );
    assert_eq!(code, Some(1), "{out}");
    for d in [base, new] {
        std::fs::remove_dir_all(d).ok();
    }
}

#[test]
fn paired_runs_gate_absolute_figures_and_test_the_pair_ratios() {
    let new = copy_of("new", "paired");
    scale_synthetic(&new, SYN, 0.8);
    let (code, out) = compare(&fixture("base"), &new, &["--paired"]);
    assert_eq!(code, Some(1), "{out}");
    let r = row(&out, SYN_KEY);
    assert!(
        r.contains("| REGRESSED | p=0.008 |") && r.ends_with("| 8/8 | yes |"),
        "{r}"
    );
    assert!(
        out.contains("FAIL: 0 ratio(s) regressed, 1 gated figure(s) regressed"),
        "{out}"
    );
    std::fs::remove_dir_all(new).ok();
}

#[test]
fn a_figure_only_in_new_is_new_never_a_regression() {
    let new = copy_of("new", "added");
    // NEW has a configuration BASE never ran (a renamed or added table row).
    for p in copies(&new, "microbench/paper-tables.json") {
        let mut v = read(&p);
        let extra: Vec<Value> = v
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["bench"] == "unbalanced" && i["stealing"] == "time-left")
            .map(|i| {
                let mut i = i.clone();
                i["steal_amount"] = "half".into();
                i["kevents_per_sec"] = 1.0.into();
                i
            })
            .collect();
        v.as_array_mut().unwrap().extend(extra);
        write(&p, &v);
    }
    let (code, out) = compare(&fixture("base"), &new, &[]);
    assert_eq!(code, Some(0), "{out}");
    let r = row(&out, "microbench/unbalanced/mely/time-left-half KEvents/s");
    assert!(r.contains("| n/a | 1.00 | n/a | new |"), "{r}");
    assert!(
        out.contains("New in NEW (not compared): microbench/unbalanced/mely/time-left-half"),
        "{out}"
    );
    std::fs::remove_dir_all(new).ok();
}

/// Edit env.json of a copy and of each of its samples.
fn edit_env(dir: &Path, f: impl Fn(&mut Value)) {
    for p in copies(dir, "env.json") {
        let mut env = read(&p);
        f(&mut env);
        write(&p, &env);
    }
}

#[test]
fn across_machines_only_ratios_are_gated() {
    let new = copy_of("new", "machine");
    edit_env(&new, |e| e["kernel"] = "another-kernel".into());
    scale_synthetic(&new, SYN, 0.8);
    let (code, out) = compare(&fixture("base"), &new, &["--paired"]);
    assert_eq!(code, Some(0), "{out}");
    let r = row(&out, SYN_KEY);
    assert!(r.contains("| REGRESSED |") && r.ends_with("| no |"), "{r}");
    assert!(out.contains("only the ratios are gated"), "{out}");
    // A ratio is gated whatever the machine (halved: this ratio is noisy on a busy machine).
    scale_micro(&new, "unbalanced", "mely", "time-left", 0.5);
    let (code, out) = compare(&fixture("base"), &new, &["--paired"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(row(&out, TIME_LEFT_RATIO).contains("REGRESSED"), "{out}");
    std::fs::remove_dir_all(new).ok();
}

#[test]
fn separate_runs_on_a_busy_machine_gate_only_the_ratios() {
    let (base, new) = (copy_of("base", "busy-b"), copy_of("new", "busy-n"));
    edit_env(&base, |e| e["loadavg_start"] = 0.1.into());
    edit_env(&new, |e| e["loadavg_start"] = 0.2.into());
    let (_, out) = compare(&base, &new, &[]);
    assert!(
        out.contains("- same machine: absolute figures are gated"),
        "{out}"
    );
    assert!(row(&out, TIME_LEFT).ends_with("| yes |"), "{out}");
    edit_env(&new, |e| e["loadavg_start"] = 3.5.into());
    let (_, out) = compare(&base, &new, &[]);
    assert!(
        out.contains("a run started with the machine loaded (1-minute load average 0.1 and 3.5, at least half the cores"),
        "{out}"
    );
    assert!(row(&out, TIME_LEFT).ends_with("| no |"), "{out}");
    for d in [base, new] {
        std::fs::remove_dir_all(d).ok();
    }
}

#[test]
fn instruction_counts_are_compared_like_figures() {
    let instr = |side: &str| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/instr")
            .join(side)
    };
    let (code, out) = compare(&instr("base"), &instr("new"), &[]);
    assert_eq!(code, Some(0), "{out}");
    let r = row(&out, "instr/http-parse instructions/op");
    assert!(
        r.contains("| +0.0% | ok |") && r.ends_with("| 5/5 | yes |"),
        "{r}"
    );
    let new = std::env::temp_dir().join(format!("colored-compare-instr-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&new);
    copy_dir(&instr("new"), &new);
    scale_instr(&new, "http-parse", 1.10);
    let (code, out) = compare(&instr("base"), &new, &[]);
    assert_eq!(code, Some(1), "{out}");
    let r = row(&out, "instr/http-parse instructions/op");
    assert!(
        r.contains("| instructions |") && r.contains("| +10.0% | REGRESSED | p=0.008 |"),
        "{r}"
    );
    std::fs::remove_dir_all(new).ok();
}

#[test]
fn bad_options_are_tool_errors() {
    let (code, out) = compare(&fixture("base"), &fixture("new"), &["--alpha", "2"]);
    assert_eq!(code, Some(2), "{out}");
    let one = copy_of("new", "paired-count");
    keep_samples(&one, 3);
    let (code, out) = compare(&fixture("base"), &one, &["--paired"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("--paired needs as many samples"), "{out}");
    std::fs::remove_dir_all(one).ok();
}

fn aa_run(i: usize) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/aa-runs/{i}"))
}

fn quiet_run(i: usize) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/aa-runs-quiet/{i}"))
}

fn temp_file(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("colored-compare-test-{}-{tag}", std::process::id()))
}

/// `colored-report calibrate` of the fixture runs `runs` into a file; returns it and stdout.
fn calibrate(runs: &[usize], tag: &str) -> (PathBuf, String) {
    let dirs: Vec<PathBuf> = runs.iter().map(|&i| aa_run(i)).collect();
    calibrate_dirs(&dirs, tag)
}

/// `colored-report calibrate` of the runs in `dirs` into a file; returns it and stdout.
fn calibrate_dirs(dirs: &[PathBuf], tag: &str) -> (PathBuf, String) {
    let out = temp_file(&format!("{tag}.json"));
    let o = Command::new(BIN)
        .arg("calibrate")
        .args(dirs)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run colored-report");
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    (out, text)
}

/// Multiply the cache-efficient mely locality KEvents/s in every sample of a copy of `run`
/// (its ratio over mely base moves by the same factor).
fn lowered_locality(run: usize, factor: f64, tag: &str) -> PathBuf {
    lowered_locality_of(&aa_run(run), factor, tag)
}

/// [`lowered_locality`] of the run in `run`.
fn lowered_locality_of(run: &Path, factor: f64, tag: &str) -> PathBuf {
    let dir = temp_file(tag);
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(run, &dir);
    assert_eq!(
        scale_micro(&dir, "cache-efficient", "mely", "locality", factor),
        5
    );
    dir
}

const LOCALITY_RATIO: &str =
    "cache-efficient (arrays sized to the L2): mely locality / mely base (KEvents/s)";

#[test]
fn calibration_of_six_aa_runs_measures_false_alarms_and_power() {
    let (file, out) = calibrate(&[1, 2, 3, 4, 5, 6], "cal6");
    // 15 pairs, each against a calibration of the other four runs.
    assert!(
        out.contains("False alarms over 15 A/A pairs of 6 runs (each pair against a calibration of the other 4 runs)"),
        "{out}"
    );
    let line = out
        .lines()
        .find(|l| l.starts_with("- all gated: "))
        .unwrap_or_else(|| panic!("no false-alarm line in {out}"));
    // "- all gated: F of C (..); without the calibration (...): U (..)"
    let nums: Vec<f64> = line
        .split(|c: char| !c.is_ascii_digit() && c != '.')
        .filter_map(|w| w.parse().ok())
        .collect();
    let (flagged, compared, uncalibrated) = (nums[0], nums[1], nums[3]);
    assert!(compared >= 15.0 * 5.0, "{line}");
    // The goal: at most 1 false alarm in 100 gated comparisons; the rank test alone on these
    // runs flags many more (the runs' samples are not independent draws of the build).
    assert!(flagged / compared <= 0.01, "{line}");
    assert!(uncalibrated > 10.0 * flagged.max(1.0), "{line}");
    // Power: every calibrated figure has its detectable change (or "> 75%"), 30 trials each.
    let ratio_row = out
        .lines()
        .find(|l| l.starts_with(&format!("| {LOCALITY_RATIO} |")))
        .unwrap_or_else(|| panic!("no {LOCALITY_RATIO} row in {out}"));
    assert!(ratio_row.contains("(30 trials)"), "{ratio_row}");
    let cal: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(cal["runs"].as_array().unwrap().len(), 6);
    let f = &cal["figures"][LOCALITY_RATIO];
    assert_eq!(f["runs"], 6);
    assert_eq!(f["ratio"], true);
    assert!(f["sd_log"].as_f64().unwrap() > 0.0);
    let _ = std::fs::remove_file(file);
}

#[test]
fn with_the_calibration_an_aa_pair_passes_and_only_a_change_past_the_spread_fails() {
    // The calibration of runs 3-6 holds the pair 1, 2 (two runs back to back) against it.
    let (cal, _) = calibrate(&[3, 4, 5, 6], "cal36");
    let noise = ["--noise", cal.to_str().unwrap()];
    let (code, out) = compare(&aa_run(1), &aa_run(2), &noise);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("A/A noise of this machine from 4 run(s)"),
        "{out}"
    );
    // Lowered 1%: not flagged.
    let d = lowered_locality(2, 0.99, "low1");
    let (code, out) = compare(&aa_run(1), &d, &noise);
    assert_eq!(code, Some(0), "{out}");
    // Lowered 20%: past the threshold and ... within this busy machine's A/A spread of the
    // ratio (-31%..+46% from these runs): printed with the spread, not failed.
    let d = lowered_locality(2, 0.8, "low20");
    let (code, out) = compare(&aa_run(1), &d, &noise);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.lines().any(
            |l| l.starts_with(&format!("- ~ within A/A noise {LOCALITY_RATIO}: "))
                && l.contains("A/A spread -31.3%..+45.6% (99%, from 4 runs")
        ),
        "{out}"
    );
    // Lowered 40%: past the spread: a regression, printed with the spread it passed.
    let d = lowered_locality(2, 0.6, "low40");
    let (code, out) = compare(&aa_run(1), &d, &noise);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.lines().any(
            |l| l.starts_with(&format!("- REGRESSED {LOCALITY_RATIO}: "))
                && l.contains("A/A spread")
        ),
        "{out}"
    );
    assert!(row(&out, LOCALITY_RATIO).contains("| REGRESSED |"), "{out}");
    let _ = std::fs::remove_file(cal);
}

/// The check on the quiet machine: a pair of runs of one build passes against a calibration of
/// four other runs; one gated figure lowered 1% in every sample passes, lowered 20% is a
/// regression, printed with the A/A spread it passed.
#[test]
fn on_a_quiet_machine_a_20_percent_drop_is_flagged_and_1_percent_is_not() {
    let dirs: Vec<PathBuf> = [3, 4, 5, 6].iter().map(|&i| quiet_run(i)).collect();
    let (cal, text) = calibrate_dirs(&dirs, "quiet36");
    let spread = text
        .lines()
        .find(|l| l.starts_with(&format!("| {LOCALITY_RATIO} |")))
        .unwrap_or_else(|| panic!("no {LOCALITY_RATIO} row in {text}"))
        .to_string();
    let noise = ["--noise", cal.to_str().unwrap()];
    let (code, out) = compare(&quiet_run(1), &quiet_run(2), &noise);
    assert_eq!(code, Some(0), "{out}");
    let d = lowered_locality_of(&quiet_run(2), 0.99, "quiet-low1");
    let (code, out) = compare(&quiet_run(1), &d, &noise);
    assert_eq!(code, Some(0), "{out}");
    std::fs::remove_dir_all(d).ok();
    let d = lowered_locality_of(&quiet_run(2), 0.8, "quiet-low20");
    let (code, out) = compare(&quiet_run(1), &d, &noise);
    // The lowered figure itself is gated on one machine: flagged past its spread (the ratio's
    // samples of this pair overlap once, p = 0.016, so the ratio alone is not significant).
    assert_eq!(code, Some(1), "{spread}\n{out}");
    assert!(
        out.lines().any(|l| l
            .starts_with("- REGRESSED microbench/cache-efficient-l2/mely/locality KEvents/s: ")
            && l.contains("A/A spread")),
        "{out}"
    );
    std::fs::remove_dir_all(d).ok();
    let _ = std::fs::remove_file(cal);
}

#[test]
fn a_calibration_of_another_machine_is_not_used() {
    let (cal, _) = calibrate(&[3, 4, 5, 6], "calother");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&cal).unwrap()).unwrap();
    v["cpu_model"] = "Some Other CPU".into();
    std::fs::write(&cal, v.to_string()).unwrap();
    let (code, out) = compare(&aa_run(1), &aa_run(2), &["--noise", cal.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("not of these runs' machine: not used"),
        "{out}"
    );
    assert!(
        out.contains("no A/A calibration of this machine used"),
        "{out}"
    );
    let _ = std::fs::remove_file(cal);
}
