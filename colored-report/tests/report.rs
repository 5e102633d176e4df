//! `colored-report` on small fixed result files (tests/fixtures/base, a results directory in the
//! layout `scripts/reproduce.sh` writes). Each test copies the fixture into a fresh temporary
//! directory, changes what it is about (a slower configuration, a missing experiment, a value
//! that is null), and runs the real binary. No server, no network.

use serde_json::Value;
use sfs_client::multiio::{ReadFilesResult, WriteFilesResult};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

const BIN: &str = env!("CARGO_BIN_EXE_colored-report");

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/base")
}

/// A fresh copy of the base fixture.
fn copy_of_base(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "colored-report-test-{}-{}-{tag}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&fixture(), &dir);
    dir
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

fn read(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn write(p: &Path, v: &Value) {
    std::fs::write(p, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

/// Multiply the median requests/s of one SWS result file.
fn scale_sws(dir: &Path, file: &str, factor: f64) {
    let p = dir.join("sws").join(file);
    let mut v = read(&p);
    let rps = v["median"]["requests_per_sec"].as_f64().unwrap();
    v["median"]["requests_per_sec"] = (rps * factor).into();
    write(&p, &v);
}

/// Apply `f` to every paper-tables result of one configuration (annotated costs, and the
/// paper's one-color steal where the policy has a steal amount).
fn edit_micro(dir: &Path, bench: &str, runtime: &str, stealing: &str, f: impl Fn(&mut Value)) {
    let p = dir.join("microbench/paper-tables.json");
    let mut v = read(&p);
    let mut hit = 0;
    for item in v.as_array_mut().unwrap() {
        if item["bench"] == bench
            && item["runtime"] == runtime
            && item["stealing"] == stealing
            && item.get("costs").and_then(Value::as_str) != Some("profiled")
            && item.get("steal_amount").and_then(Value::as_str) != Some("half")
        {
            f(item);
            hit += 1;
        }
    }
    assert!(hit > 0, "no {bench} {runtime} {stealing} in the fixture");
    write(&p, &v);
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run colored-report")
}

fn compare(base: &Path, new: &Path, extra: &[&str]) -> (bool, String) {
    let mut args = vec!["compare", base.to_str().unwrap(), new.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = run(&args);
    let out = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    (o.status.success(), out)
}

/// The Markdown row of the comparison whose first cell is `name`.
fn row<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(&format!("| {name} |")))
        .unwrap_or_else(|| panic!("no row {name:?} in:\n{out}"))
}

#[test]
fn identical_runs_pass() {
    let (ok, out) = compare(&fixture(), &fixture(), &[]);
    assert!(ok, "{out}");
    assert!(out.contains("PASS: 0 ratio(s) regressed"), "{out}");
    // Ratios computed from the fixture: 1500/1000 (median of 1400, 1500, 1600), 48000/40000.
    assert!(
        row(
            &out,
            "unbalanced: mely time-left (one color per steal) / libasync off (KEvents/s)"
        )
        .contains("| 1.50 | 1.50 | +0.0% | ok |"),
        "{out}"
    );
    assert!(
        row(
            &out,
            "SWS: mely all, conn penalty 1 / libasync off (peak req/s)"
        )
        .contains("| 1.20 | 1.20 |"),
        "{out}"
    );
    assert!(
        row(&out, "dispatch, 1 worker: tokio ns / mely ns").contains("| 2.50 | 2.50 |"),
        "{out}"
    );
}

#[test]
fn regressed_ratio_fails() {
    let new = copy_of_base("regressed");
    // mely all (conn penalty 1) 20% slower at both client counts: its ratio to libasync off
    // falls from 1.20 to 0.96.
    scale_sws(&new, "mely-all-p1-w2-c200.json", 0.8);
    scale_sws(&new, "mely-all-p1-w2-c50.json", 0.8);
    let (ok, out) = compare(&fixture(), &new, &[]);
    assert!(!ok, "a 20% fall must fail:\n{out}");
    let r = row(
        &out,
        "SWS: mely all, conn penalty 1 / libasync off (peak req/s)",
    );
    assert!(r.contains("| 1.20 | 0.96 | -20.0% | REGRESSED"), "{r}");
    // Ratios not involving mely all with conn penalty 1 are untouched.
    assert!(
        row(
            &out,
            "SWS: colored (mely all, conn penalty 1000) / N-copy (peak req/s)"
        )
        .contains("| ok |"),
        "{out}"
    );
    assert!(
        row(&out, "SFS: colored / none (MB/s)").contains("| ok |"),
        "{out}"
    );
    assert!(out.contains("FAIL:"), "{out}");
    // The figure itself is listed with its change; same machine (the fixture's env on both
    // sides), so it is gated and regressed too.
    assert!(
        row(&out, "sws/mely-all-p1-w2-c200 req/s")
            .contains("| 48000 | 38400 | -20.0% | REGRESSED |"),
        "{out}"
    );
    std::fs::remove_dir_all(new).ok();
}

#[test]
fn improved_ratio_passes() {
    let new = copy_of_base("improved");
    edit_micro(&new, "unbalanced", "mely", "time-left", |v| {
        let k = v["kevents_per_sec"].as_f64().unwrap();
        v["kevents_per_sec"] = (k * 1.3).into();
    });
    let (ok, out) = compare(&fixture(), &new, &[]);
    assert!(ok, "an improvement must pass:\n{out}");
    assert!(
        row(
            &out,
            "unbalanced: mely time-left (one color per steal) / libasync off (KEvents/s)"
        )
        .contains("| 1.50 | 1.95 | +30.0% | improved |"),
        "{out}"
    );
}

#[test]
fn threshold_decides() {
    let new = copy_of_base("threshold");
    // SFS colored 3% slower: colored / none falls 3%.
    let p = new.join("sfs/colored-w2.json");
    let mut v = read(&p);
    v["mbytes_per_sec"] = 582.0.into();
    write(&p, &v);
    let (ok, out) = compare(&fixture(), &new, &[]);
    assert!(ok, "3% is within the default 5%:\n{out}");
    let (ok, out) = compare(&fixture(), &new, &["--threshold", "2"]);
    assert!(!ok, "3% is past 2%:\n{out}");
    assert!(
        row(&out, "SFS: colored / none (MB/s)").contains("-3.0% | REGRESSED"),
        "{out}"
    );
    std::fs::remove_dir_all(new).ok();
}

#[test]
fn missing_experiments_are_reported_and_fail() {
    let new = copy_of_base("missing");
    // nginx failed (the script wrote the error), SFS N-copy left nothing at all.
    std::fs::remove_file(new.join("sws/nginx-w2-c200.json")).unwrap();
    std::fs::write(
        new.join("sws/nginx-w2-c200.error"),
        "nginx did not start: bind() to 127.0.0.1 failed\n",
    )
    .unwrap();
    std::fs::remove_file(new.join("sfs/ncopy-w2.json")).unwrap();
    let (ok, out) = compare(&fixture(), &new, &[]);
    assert!(!ok, "{out}");
    assert!(
        out.contains(
            "- MISSING sws/nginx-w2-c200: nginx did not start: bind() to 127.0.0.1 failed"
        ),
        "{out}"
    );
    assert!(
        out.contains("- MISSING sfs/ncopy-w2: no result in NEW"),
        "{out}"
    );
    assert!(out.contains("2 experiment(s) missing"), "{out}");
    // The ratio that needed N-copy is n/a in NEW and not compared (never taken as 0).
    assert!(
        row(&out, "SFS: colored / N-copy (MB/s)")
            .contains("| 0.92 | n/a | n/a | not compared (n/a) |"),
        "{out}"
    );
    // Missing the other way round (an experiment only in NEW) is not a failure.
    let (ok, out) = compare(&new, &fixture(), &[]);
    assert!(ok, "{out}");
    assert!(row(&out, "sfs/ncopy-w2 MB/s").contains("| new |"), "{out}");
    std::fs::remove_dir_all(new).ok();
}

/// Results from before a row was redefined: SWS `mely-all` (no explicit connection penalty),
/// time-left steals without their amount, sftp without its session count. Comparing them with
/// today's is no failure: the old rows are listed as redefined and today's are new figures.
#[test]
fn redefined_rows_are_new_figures_not_regressions() {
    let old = copy_of_base("redefined");
    for f in std::fs::read_dir(old.join("sws")).unwrap() {
        let p = f.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        if let Some(rest) = name.strip_prefix("mely-all-p1000-w") {
            std::fs::rename(&p, old.join(format!("sws/mely-all-w{rest}"))).unwrap();
        } else if name.starts_with("mely-all-p1") {
            std::fs::remove_file(&p).unwrap();
        }
    }
    let p = old.join("microbench/paper-tables.json");
    let mut v = read(&p);
    for item in v.as_array_mut().unwrap() {
        item.as_object_mut().unwrap().remove("steal_amount");
    }
    write(&p, &v);
    let sftp = read(&old.join("sfs/sftp.json"));
    let mut sftp_old = sftp.clone();
    sftp_old.as_object_mut().unwrap().remove("clients");
    write(&old.join("sfs/sftp.json"), &sftp_old);

    let (ok, out) = compare(&old, &fixture(), &[]);
    assert!(ok, "{out}");
    for e in [
        "sws/mely-all-w2-c200",
        "microbench/unbalanced/mely/time-left",
        "sfs/sftp",
    ] {
        assert!(
            out.contains(&format!("- REDEFINED {e}: now ")),
            "{e}: {out}"
        );
    }
    assert!(!out.contains("- MISSING"), "{out}");
    assert!(
        row(&out, "sws/mely-all-p1000-w2-c200 req/s").contains("| new |"),
        "{out}"
    );
    // An experiment of an unchanged name that is gone still fails, beside redefined ones.
    let gone = old.with_extension("gone");
    copy_dir(&old, &gone);
    std::fs::remove_file(gone.join("sws/nginx-w2-c200.json")).unwrap();
    let (ok, out) = compare(&old, &gone, &[]);
    assert!(!ok, "{out}");
    assert!(out.contains("- MISSING sws/nginx-w2-c200"), "{out}");
    assert!(out.contains("1 experiment(s) missing"), "{out}");
    std::fs::remove_dir_all(old).ok();
    std::fs::remove_dir_all(gone).ok();
}

#[test]
fn na_stays_na() {
    let new = copy_of_base("na");
    // No steals in NEW: the steal cost becomes null.
    edit_micro(&new, "unbalanced", "mely", "time-left", |v| {
        v["steal_cost_cycles"] = Value::Null
    });
    let (ok, out) = compare(&fixture(), &new, &[]);
    assert!(ok, "a null figure is not a regression:\n{out}");
    assert!(
        row(&out, "microbench/unbalanced/mely/time-left-one steal cost")
            .contains("| cycles | 1234 | n/a | n/a |"),
        "{out}"
    );
    // L2 misses are null on both sides: n/a, never 0.
    let l2 = row(
        &out,
        "microbench/penalty-l2/mely/penalty-one L2 misses/event",
    );
    assert!(l2.contains("| n/a | n/a | n/a |"), "{l2}");
    // A ratio absent from both runs (no 2-worker dispatch in the fixture) stays n/a.
    assert!(
        row(&out, "dispatch, 2 workers: tokio ns / mely ns")
            .contains("| n/a | n/a | n/a | not compared (n/a) |"),
        "{out}"
    );
    std::fs::remove_dir_all(new).ok();
}

#[test]
fn report_has_the_papers_figures_beside_ours() {
    let dir = copy_of_base("report");
    std::fs::write(
        dir.join("sws/apache-w1-c200.error"),
        "apache2 is not installed and apt-get failed\n",
    )
    .unwrap();
    let o = run(&["report", dir.to_str().unwrap(), "--no-plots"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    // Table III: the paper's 1310 and 122 KEvents/s beside ours (1000, 150), ratios to row 1.
    assert!(
        md.contains("**Table III: Impact of the base workstealing (unbalanced)**"),
        "{md}"
    );
    assert!(
        md.contains("| Libasync-smp | 1310 | 1.00 | 1000 (1000-1000) | 1.00 | n/a | n/a |"),
        "{md}"
    );
    assert!(
        md.contains("| Libasync-smp - WS | 122 | 0.09 | 150 (150-150) | 0.15 | 28329 | 30000 |"),
        "{md}"
    );
    // The fixture's results predate the fidelity field.
    assert!(
        md.contains("Fidelity: not recorded (these results predate"),
        "{md}"
    );
    // Table IV: median and spread of three repetitions.
    assert!(
        md.contains(
            "| Mely - time-aware WS | 2042 | 1.56 | 1500 (1400-1600) | 1.50 | 49987 | 50000 |"
        ),
        "{md}"
    );
    // Table V: the paper's L2 misses beside our n/a (no counters in the fixture).
    assert!(
        md.contains(
            "| Mely - penalty-aware WS | 2122 | 1.92 | 1000 (1000-1000) | 1.43 | 2000 | n/a |"
        ),
        "{md}"
    );
    // The ratios that matter: paper, ours, ours / paper.
    assert!(
        md.contains(
            "| SWS: mely all, conn penalty 1 / libasync off (peak req/s) | 1.25 | 1.20 | 0.96 |"
        ),
        "{md}"
    );
    assert!(
        md.contains("| SFS: libasync base / libasync off (MB/s) | 1.35 | 1.31 | 0.97 |"),
        "{md}"
    );
    // Table I from the servers' counters.
    assert!(
        md.contains(
            "| ours: Web server, libasync base WS, `--fidelity ours` | n/a | n/a | 190000 | 21000 | 300 |"
        ),
        "{md}"
    );
    assert!(
        md.contains(
            "| ours: SFS, mely all (one color per steal), `--fidelity ours` | n/a | n/a | 3500 | 760000 | 325 |"
        ),
        "{md}"
    );
    // Figure 7 table with the peers, sftp beside SFS.
    assert!(
        md.contains(
            "| clients | libasync-off | libasync-base | mely-all-p1 | mely-all-p1000 | \
             mely-all-p1000-half | ncopy | nginx | apache |"
        ),
        "{md}"
    );
    assert!(
        md.contains("| 200 | 40000 | 30000 | 48000 | 52000 | 54600 | 60000 | 55000 | 35000 |"),
        "{md}"
    );
    assert!(
        md.contains("| 50 | 38000 | n/a | 45000 | 46000 | n/a | n/a | n/a | n/a |"),
        "{md}"
    );
    // p99 latency in ms beside the injector's CPU time per request.
    assert!(
        md.contains("| 200 | 4.00 | 4.00 | 4.00 | 4.00 | 4.00 | 4.00 | 4.00 | 4.00 | 17.0 |"),
        "{md}"
    );
    assert!(
        md.contains("| OpenSSH sftp, chacha20-poly1305 (16 sessions) | 200 |"),
        "{md}"
    );
    // Scaling with workers.
    assert!(
        md.contains("| SWS mely-all-p1 (req/s) | 30000 | 48000 | 1.60 | n/a |"),
        "{md}"
    );
    assert!(
        md.contains("| SFS colored (MB/s) | 330 | 600 | 1.82 | 2.50 |"),
        "{md}"
    );
    // Environment and the missing experiment with its error.
    assert!(
        md.contains("- commit: fixture0")
            && md.contains("- CPU: Fixture CPU")
            && md.contains("- kernel: 6.0.0-fixture"),
        "{md}"
    );
    assert!(
        md.contains("- **sws/apache-w1-c200**: apache2 is not installed and apt-get failed"),
        "{md}"
    );
    // CSVs: n/a stays n/a there too.
    let figures = std::fs::read_to_string(dir.join("csv/figures.csv")).unwrap();
    assert!(
        figures.contains("microbench/penalty-l2/mely/penalty-one,L2 misses/event,n/a,misses,false"),
        "{figures}"
    );
    assert!(
        figures.contains("sws/mely-all-p1-w2-c200,req/s,48000,req/s,true"),
        "{figures}"
    );
    let sws = std::fs::read_to_string(dir.join("csv/sws.csv")).unwrap();
    assert_eq!(sws.lines().count(), 1 + 14, "{sws}");
    std::fs::remove_dir_all(dir).ok();
}

/// The rows the papers defined beside the variants of ours, each labelled, with our gains; the
/// sizes the cache-sized benchmarks ran with; where servers and clients ran.
#[test]
fn report_has_the_paper_defined_rows_beside_ours() {
    let dir = copy_of_base("rows");
    let o = run(&["report", dir.to_str().unwrap(), "--no-plots"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let has = |line: &str| assert!(md.contains(line), "{line:?} not in:\n{md}");
    // Table IV and V: the paper's one-color steal, ours beside it, our measured gain.
    has(
        "| ours: time-aware WS taking colors up to half the victim's queued time | n/a | n/a \
         | 1650 (1540-1760) | 1.65 | n/a | 400000 |",
    );
    has(
        "Measured gain of \"ours: time-aware WS taking colors up to half the victim's queued \
         time\" over \"Mely - time-aware WS\" (the paper's): 1.10x KEvents/s.",
    );
    has(
        "Measured gain of \"ours: penalty-aware WS taking colors up to half the victim's queued \
         time\" over \"Mely - penalty-aware WS\" (the paper's): 1.10x KEvents/s.",
    );
    has(
        "Arrays sized to the L2: 64 arrays of 16.0 KB per round, at most 1024.0 KB in flight on a \
         core, against an L2 of 2048.0 KB per core (from the topology in sysfs).",
    );
    // Table I: the paper's Mely (conn penalty 1), our tuned penalty, our multi-color steal.
    // The paper's rows read the servers run with the papers' mechanisms (none in the fixture).
    has("| Web server, mely all, conn penalty 1 (the paper's) | 6000 | 23000 | n/a | n/a | n/a |");
    has("| ours: Web server, mely all, conn penalty 1, `--fidelity ours` | n/a | n/a | 6100 | 23000 | 1400 |");
    has("| ours: Web server, mely all, conn penalty 1000 | n/a | n/a | 9000 | 40000 | 700 |");
    has(
        "| ours: Web server, mely all, conn penalty 1000, colors up to half | n/a | n/a | 15000 \
         | 300000 | 120 |",
    );
    has(
        "| ours: SFS, mely all, colors up to half the victim's queued time | n/a | n/a | 5200 \
         | 1900000 | 150 |",
    );
    has(
        "Measured gain of our multi-color steal (half) over the paper's one-color steal: SWS \
         (conn penalty 1000) 1.05x peak req/s, SFS 1.02x MB/s.",
    );
    // SFS: libasync-smp's 2.5x as it defined it (over the uncolored server on one worker).
    has("| colored on 2 workers / none on 1 worker | 2.50 | 2.50 |");
    has("| SFS: colored on N workers / none on 1 worker (MB/s) | 2.50 | 2.50 | 1.00 |");
    // Where it ran.
    has("- server workers: 2\n- server CPUs: 0,1\n- client CPUs: 0,1");
    has("load injectors and clients share its cores with the servers");
    // A run with clients on their own CPUs, oversubscribed, says so.
    let p = dir.join("env.json");
    let mut env = read(&p);
    env["workers"] = 4.into();
    env["oversubscribed"] = true.into();
    env["cpu_split"] = "disjoint".into();
    env["server_cpus"] = serde_json::json!([0, 1]);
    env["client_cpus"] = serde_json::json!([2, 3]);
    write(&p, &env);
    assert!(run(&["report", dir.to_str().unwrap(), "--no-plots"])
        .status
        .success());
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains(
            "- server workers: 4 (oversubscribed: more workers than the server's CPUs, 0,1)"
        ),
        "{md}"
    );
    assert!(
        md.contains(
            "Load injectors and clients ran on CPUs 2,3 and the servers on CPUs 0,1, disjoint"
        ),
        "{md}"
    );
    assert!(
        md.contains("here the injector runs on CPUs disjoint from the server"),
        "{md}"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn unreadable_result_is_missing_not_zero() {
    let dir = copy_of_base("broken");
    std::fs::write(dir.join("sfs/none-w2.json"), "{\"mbytes_per_sec\": ").unwrap();
    let o = run(&["report", dir.to_str().unwrap(), "--no-plots"]);
    assert!(o.status.success());
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("- **sfs/none-w2**: parsing "), "{md}");
    assert!(
        md.contains("| SFS: colored / none (MB/s) | n/a | n/a | n/a |"),
        "{md}"
    );
    assert!(
        md.contains("| none (everything in color 0) | n/a | n/a |"),
        "{md}"
    );
    std::fs::remove_dir_all(dir).ok();
}

/// A result is read through the struct that wrote it (`BenchResult`): one without a field the
/// writer always writes is a missing experiment whose reason names the file and the field.
#[test]
fn a_result_without_a_written_field_is_missing_with_the_file_and_field_named() {
    let dir = copy_of_base("no-field");
    edit_micro(&dir, "unbalanced", "mely", "time-left", |item| {
        item.as_object_mut().unwrap().remove("kevents_per_sec");
    });
    let o = run(&["report", dir.to_str().unwrap(), "--no-plots"]);
    assert!(o.status.success(), "{o:?}");
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let file = dir.join("microbench/paper-tables.json");
    assert!(
        md.contains(&format!(
            "- **microbench/paper-tables**: parsing {}: missing field `kevents_per_sec`",
            file.display()
        )),
        "{md}"
    );
    std::fs::remove_dir_all(dir).ok();
}

/// An SWS result is read through the load injector's `Median`: a median without its
/// requests/s is a missing experiment naming the file and the field, not a figure of n/a.
#[test]
fn an_sws_median_without_requests_per_sec_is_missing_with_the_field_named() {
    let dir = copy_of_base("sws-field");
    let p = dir.join("sws/mely-all-p1-w2-c200.json");
    let mut v = read(&p);
    v["median"]
        .as_object_mut()
        .unwrap()
        .remove("requests_per_sec");
    write(&p, &v);
    let o = run(&["report", dir.to_str().unwrap(), "--no-plots"]);
    assert!(o.status.success(), "{o:?}");
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains(&format!(
            "- **sws/mely-all-p1-w2-c200**: parsing {}: missing field `requests_per_sec`",
            p.display()
        )),
        "{md}"
    );
    std::fs::remove_dir_all(dir).ok();
}

/// Every SFS result is read through the struct of the program that wrote it (sfs-bench's
/// `BenchResult`, `ReadFilesResult`, `WriteFilesResult`; the sftp rows' `SftpResult`): one
/// without a field its writer always writes is a missing experiment naming the file and the
/// field.
#[test]
fn an_sfs_result_without_a_written_field_is_missing_with_the_field_named() {
    let dir = copy_of_base("sfs-field");
    let mount = serde_json::to_value(ReadFilesResult {
        mbytes_per_sec: 150.0,
        readers: 16,
        ..Default::default()
    })
    .unwrap();
    let mut mount_no_readers = mount.clone();
    mount_no_readers["mode"] = "read-files".into();
    mount_no_readers.as_object_mut().unwrap().remove("readers");
    write(&dir.join("sfs/mount-colored-w2.json"), &mount_no_readers);
    let mut write_no_mbps = mount;
    write_no_mbps["mode"] = "write-files".into();
    write(&dir.join("sfs/mount-write-colored-w2.json"), &write_no_mbps);
    for (file, field) in [("sfs/colored-w2.json", "ops"), ("sfs/sftp.json", "seconds")] {
        let p = dir.join(file);
        let mut v = read(&p);
        v.as_object_mut().unwrap().remove(field);
        write(&p, &v);
    }
    let o = run(&["report", dir.to_str().unwrap(), "--no-plots"]);
    assert!(o.status.success(), "{o:?}");
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    for (name, field) in [
        ("sfs/colored-w2", "ops"),
        ("sfs/sftp", "seconds"),
        ("sfs/mount-colored-w2", "readers"),
        // A write result lacks what a read result does not write.
        ("sfs/mount-write-colored-w2", "writers"),
    ] {
        let file = dir.join(format!("{name}.json"));
        assert!(
            md.contains(&format!(
                "- **{name}**: parsing {}: missing field `{field}`",
                file.display()
            )),
            "{name}: {md}"
        );
    }
    // The others still read: colored at one worker is a figure.
    assert!(!md.contains("- **sfs/colored-w1**"), "{md}");
    std::fs::remove_dir_all(dir).ok();
}

/// A server's `--stats-json` is read through `RuntimeStats`: one without a field the runtime
/// always writes, or with a queue design that does not exist, makes the run a missing
/// experiment naming the file and the field; a field added later (`blocking_panics`) may be
/// absent; N-copy's merged file, whose estimates are means over children, reads.
#[test]
fn server_stats_are_read_through_runtime_stats() {
    let dir = copy_of_base("stats-field");
    let edit = |file: &str, f: &dyn Fn(&mut Value)| {
        let p = dir.join(file);
        let mut v = read(&p);
        f(&mut v["runtime_stats"]);
        write(&p, &v);
        p
    };
    let no_locking = edit("sws/mely-all-p1-w2-c200.stats.json", &|rs| {
        rs.as_object_mut().unwrap().remove("locking_time_pct");
    });
    let bad_queue = edit("sfs/colored-w2.stats.json", &|rs| {
        rs["queue"] = "fifo".into();
    });
    edit("sws/mely-all-p1000-w2-c200.stats.json", &|rs| {
        let o = rs.as_object_mut().unwrap();
        o.remove("blocking_panics");
        o.remove("steal_nodes_avg");
        o["total"].as_object_mut().unwrap().remove("steal_nodes");
        o["steal_cost_estimate_cycles"] = 2500.5.into();
    });
    let o = run(&["report", dir.to_str().unwrap(), "--no-plots"]);
    assert!(o.status.success(), "{o:?}");
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains(&format!(
            "- **sws/mely-all-p1-w2-c200**: parsing {}: missing field `locking_time_pct`",
            no_locking.display()
        )),
        "{md}"
    );
    assert!(
        md.contains(&format!(
            "- **sfs/colored-w2**: parsing {}: unknown runtime \"fifo\"",
            bad_queue.display()
        )),
        "{md}"
    );
    assert!(!md.contains("- **sws/mely-all-p1000-w2-c200**"), "{md}");
    let csv = std::fs::read_to_string(dir.join("csv/figures.csv")).unwrap();
    assert!(
        csv.contains("sws/mely-all-p1000-w2-c200,steal cost,9000,cycles,false"),
        "{csv}"
    );
    std::fs::remove_dir_all(dir).ok();
}

/// The stats a running runtime reports, written as a server writes them and read back by the
/// report: every field round-trips.
#[test]
fn runtime_stats_round_trip_through_json() {
    use colored_runtime::{QueueKind, Runtime, RuntimeConfig, RuntimeStats, StealPolicy};
    let rt = Runtime::new(RuntimeConfig {
        workers: 2,
        queue: QueueKind::Mely,
        stealing: StealPolicy::TimeLeft,
        ..Default::default()
    })
    .expect("runtime");
    let written = serde_json::to_string(&rt.shutdown()).unwrap();
    let back: RuntimeStats = serde_json::from_str(&written).unwrap();
    assert_eq!(back.queue, "mely");
    assert_eq!(back.stealing, "time-left");
    // Every field as written; floats to their last digit or so (serde_json's default parser
    // is not exact in the last bit).
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
                let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                (x - y).abs() <= 1e-12 * x.abs().max(y.abs())
            }
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
            }
            _ => a == b,
        }
    }
    let written: Value = serde_json::from_str(&written).unwrap();
    let again = serde_json::to_value(&back).unwrap();
    assert!(same(&again, &written), "{again}\n{written}");
    assert!(
        written["workers"].as_array().unwrap().len() == 2,
        "{written}"
    );
}

/// Instruction counts are read through `instr_counts::CountRecord`: a count without its
/// number is a missing experiment naming the file and the field.
#[test]
fn instruction_counts_are_read_through_their_records() {
    let dir = copy_of_base("instr-field");
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/instr/base/instr");
    std::fs::create_dir_all(dir.join("instr")).unwrap();
    let mut records: Vec<instr_counts::CountRecord> =
        serde_json::from_str(&std::fs::read_to_string(base.join("counts.json")).unwrap()).unwrap();
    assert!(!records.is_empty());
    let p = dir.join("instr/counts.json");
    write(&p, &serde_json::to_value(&records).unwrap());
    let o = run(&["report", dir.to_str().unwrap(), "--no-plots"]);
    assert!(o.status.success(), "{o:?}");
    let csv = std::fs::read_to_string(dir.join("csv/figures.csv")).unwrap();
    let first = records.remove(0);
    assert!(
        csv.contains(&format!(
            "instr/{},instructions/op,{},instructions,false",
            first.op, first.instructions_per_op
        )),
        "{csv}"
    );
    let mut v = serde_json::to_value(&records).unwrap();
    v[0].as_object_mut().unwrap().remove("instructions_per_op");
    write(&p, &v);
    let o = run(&["report", dir.to_str().unwrap(), "--no-plots"]);
    assert!(o.status.success(), "{o:?}");
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains(&format!(
            "- **instr/counts**: parsing {}: missing field `instructions_per_op`",
            p.display()
        )),
        "{md}"
    );
    std::fs::remove_dir_all(dir).ok();
}

/// The simulator's calibration and validation (the repository's baseline files) are read
/// through `Calibration` and `Validation`; a validation without its entries is unreadable, named
/// with the missing field, and its figures are not printed.
#[test]
fn simulator_files_are_read_through_their_structs() {
    let baseline = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/baseline/sim");
    let dir = copy_of_base("sim");
    let sim = dir.join("sim");
    std::fs::create_dir_all(&sim).unwrap();
    for f in ["calibration.json", "validate.json"] {
        std::fs::copy(baseline.join(f), sim.join(f)).unwrap();
    }
    let o = run(&["report", dir.to_str().unwrap(), "--no-plots"]);
    assert!(o.status.success(), "{o:?}");
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("Calibration (this machine, "), "{md}");
    assert!(md.contains("**Validation** (`simulate validate`)"), "{md}");
    assert!(
        md.contains("| unbalanced | libasync | off | ours | 1 | "),
        "{md}"
    );
    assert!(!md.contains("unreadable"), "{md}");

    let mut v = read(&sim.join("validate.json"));
    v.as_object_mut().unwrap().remove("entries");
    write(&sim.join("validate.json"), &v);
    let o = run(&["report", dir.to_str().unwrap(), "--no-plots"]);
    assert!(o.status.success(), "{o:?}");
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains(
            "- unreadable: **sim/validate.json**: not a Validation: missing field `entries`"
        ),
        "{md}"
    );
    assert!(!md.contains("**Validation** (`simulate validate`)"), "{md}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn plots_are_written_as_svg_and_png() {
    let dir = copy_of_base("plots");
    let o = run(&["report", dir.to_str().unwrap()]);
    assert!(o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    let font = std::env::var_os("COLORED_REPORT_FONT").is_some()
        || [
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        ]
        .iter()
        .any(|p| Path::new(p).exists());
    if !font {
        // Without a font the report says why there are no plots instead of failing.
        assert!(stderr.contains("no TrueType font"), "{stderr}");
        edge::testing::skip(
            "plots_are_written_as_svg_and_png",
            "no TrueType font (apt-get install fonts-dejavu-core)",
        );
        return;
    }
    for stem in [
        "sws-throughput",
        "speedup-workers",
        "ncopy-vs-colored",
        "steal-cost",
    ] {
        let svg = std::fs::read_to_string(dir.join(format!("plots/{stem}.svg")))
            .unwrap_or_else(|e| panic!("{stem}.svg: {e}; {stderr}"));
        assert!(svg.contains("<svg") && svg.len() > 2000, "{stem}.svg");
        let png = std::fs::read(dir.join(format!("plots/{stem}.png"))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{stem}.png");
    }
    // The throughput plot has a line per configuration, peers included.
    let svg = std::fs::read_to_string(dir.join("plots/sws-throughput.svg")).unwrap();
    for c in ["mely-all", "libasync-off", "nginx", "apache", "ncopy"] {
        assert!(svg.contains(c), "legend lacks {c}");
    }
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains("- [plots/sws-throughput.svg](plots/sws-throughput.svg)"),
        "{md}"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn comparing_with_no_results_directory_is_an_error_not_a_pass() {
    let o = run(&[
        "compare",
        fixture().to_str().unwrap(),
        "/nonexistent/results",
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not a results directory"));
}

#[test]
fn sfs_through_the_kernel_has_its_table_and_plots() {
    let dir = copy_of_base("mounts");
    let runs = [
        ("mount-colored-w2", 150.0, 1.8),
        ("mount-none-w2", 90.0, 2.5),
        ("mount-sshfs", 100.0, 3.2),
    ];
    for (name, mbps, cpu) in runs {
        let mut v = serde_json::to_value(ReadFilesResult {
            mbytes_per_sec: mbps,
            readers: 16,
            server_cpu_ms_per_mb: Some(cpu),
            ..Default::default()
        })
        .unwrap();
        v["mode"] = "read-files".into();
        write(&dir.join(format!("sfs/{name}.json")), &v);
    }
    let writes = [
        ("mount-write-colored-w2", 80.0, Some(2.0)),
        ("mount-write-sshfs", 40.0, Some(4.0)),
        ("mount-write-local", 100.0, None),
    ];
    for (name, mbps, cpu) in writes {
        let mut v = serde_json::to_value(WriteFilesResult {
            mbytes_per_sec: mbps,
            writers: 16,
            server_cpu_ms_per_mb: cpu,
            ..Default::default()
        })
        .unwrap();
        v["mode"] = "write-files".into();
        write(&dir.join(format!("sfs/{name}.json")), &v);
    }
    std::fs::write(
        dir.join("sfs/mount-ncopy-w2.error"),
        "sfs-client mount failed\n",
    )
    .unwrap();
    let o = run(&["report", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains("**SFS through the kernel (multiio)**: reading, 16 reader processes"),
        "{md}"
    );
    assert!(
        md.contains("Quick mode"),
        "the report says the file is smaller in quick mode"
    );
    assert!(
        md.contains("| read | SFS colored (mely all, per-client colors) | 150 | 1.50 | 1.80 |"),
        "{md}"
    );
    assert!(
        md.contains("| read | SFS N-copy | n/a | n/a | n/a |"),
        "{md}"
    );
    assert!(
        md.contains("| write | SFS colored (mely all, per-client colors) | 80.0 | 2.00 | 2.00 |"),
        "{md}"
    );
    assert!(
        md.contains("| write | sshfs (OpenSSH sftp, chacha20-poly1305) | 40.0 | 1.00 | 4.00 |"),
        "{md}"
    );
    assert!(
        md.contains("| write | the export's disk, no mount | 100 | 2.50 | n/a |"),
        "{md}"
    );
    assert!(
        md.contains("reach 100.0 MB/s") && md.contains("SFS colored writes at 0.80 of it"),
        "{md}"
    );
    assert!(
        md.contains("colored / none through the kernel: 1.67"),
        "{md}"
    );
    assert!(
        md.contains("- **sfs/mount-ncopy-w2**: sfs-client mount failed"),
        "{md}"
    );
    assert!(
        row(&md, "SFS through FUSE: colored / sshfs (MB/s)").contains("| 1.50 |"),
        "{md}"
    );
    if Path::new("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf").exists() {
        for stem in ["sfs-mounts", "sfs-mounts-cpu"] {
            let svg = std::fs::read_to_string(dir.join(format!("plots/{stem}.svg"))).unwrap();
            assert!(svg.contains("sshfs") && svg.contains("colored"), "{stem}");
        }
    }
    std::fs::remove_dir_all(dir).ok();
}

/// The tables say which fidelity preset their colored rows ran with, from the results.
#[test]
fn report_says_which_fidelity_the_rows_ran_with() {
    let dir = copy_of_base("fidelity");
    let path = dir.join("microbench/paper-tables.json");
    let set = |f: &dyn Fn(usize) -> &'static str| {
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for (i, item) in v.as_array_mut().unwrap().iter_mut().enumerate() {
            item["fidelity"] = f(i).into();
        }
        std::fs::write(&path, v.to_string()).unwrap();
    };
    let report = || {
        let o = run(&["report", dir.to_str().unwrap(), "--no-plots"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read_to_string(dir.join("report.md")).unwrap()
    };
    set(&|_| "ours");
    let md = report();
    assert!(
        md.contains("Fidelity: every colored row of these tables, the ones named as the paper's included, ran with `--fidelity ours`"),
        "{md}"
    );
    assert!(
        md.contains("these results hold no run with the papers' mechanisms"),
        "{md}"
    );
    assert!(!md.contains("**With the papers' mechanisms**"), "{md}");
    set(&|i| if i == 0 { "mixed" } else { "ours" });
    let md = report();
    assert!(
        md.contains("Fidelity of the colored rows' runs: `mixed`, `ours`"),
        "{md}"
    );
    // A run with the papers' mechanisms: its rows are another configuration, shown in tables
    // of their own (the rows named as the paper's), never mixed into ours.
    set(&|_| "ours");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let items = v.as_array_mut().unwrap();
    let mut paper: Vec<serde_json::Value> = items
        .iter()
        .filter(|i| {
            i["bench"] == "unbalanced" && i["runtime"] == "libasync" && i["stealing"] == "base"
        })
        .cloned()
        .collect();
    assert!(
        !paper.is_empty(),
        "the fixture has unbalanced libasync base"
    );
    for p in &mut paper {
        p["fidelity"] = "paper".into();
        p["kevents_per_sec"] = 77.0.into();
    }
    items.extend(paper);
    std::fs::write(&path, v.to_string()).unwrap();
    let md = report();
    assert!(
        md.contains("the rows named as the paper's ran with the papers' mechanisms too"),
        "{md}"
    );
    assert!(
        md.contains(
            "**With the papers' mechanisms** (`microbenches paper-tables --fidelity paper`"
        ),
        "{md}"
    );
    assert!(
        md.contains(
            "**Table III, `--fidelity paper`: Impact of the base workstealing (unbalanced)**"
        ),
        "{md}"
    );
    assert!(
        md.contains("| Libasync-smp - WS | 122 | 0.09 | 77 (77-77) | n/a |"),
        "{md}"
    );
    // Ours keeps its own figure for the same row.
    assert!(
        md.contains("| Libasync-smp - WS | 122 | 0.09 | 150 (150-150) | 0.15 | 28329 | 30000 |"),
        "{md}"
    );
    std::fs::remove_dir_all(dir).ok();
}

/// Table I's rows named as the paper's read the servers run with the papers' mechanisms (the
/// `-paper` configurations); ours keep their own.
#[test]
fn table_one_reads_the_paper_rows_from_the_paper_fidelity_servers() {
    let dir = copy_of_base("table-one-paper");
    for ext in ["json", "stats.json"] {
        std::fs::copy(
            dir.join(format!("sws/libasync-base-w2-c200.{ext}")),
            dir.join(format!("sws/libasync-base-paper-w2-c200.{ext}")),
        )
        .unwrap();
    }
    let stats = dir.join("sws/libasync-base-paper-w2-c200.stats.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    let avg = &mut v["runtime_stats"]["steal_cost_cycles_avg"];
    assert!(
        avg.is_number(),
        "the fixture's stats have a steal cost: {v}"
    );
    *avg = 777777.0.into();
    std::fs::write(&stats, v.to_string()).unwrap();
    let o = run(&["report", dir.to_str().unwrap(), "--no-plots"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains("| Web server, libasync base WS | 197000 | 20000 | 777777 |"),
        "{md}"
    );
    assert!(
        md.contains(
            "| ours: Web server, libasync base WS, `--fidelity ours` | n/a | n/a | 190000 | 21000 | 300 |"
        ),
        "{md}"
    );
    std::fs::remove_dir_all(dir).ok();
}
