//! `scripts/track.sh` end to end on a throwaway repository: a temporary git repository whose
//! commits carry a stand-in `scripts/reproduce.sh` (it writes a results directory with one
//! microbenchmark figure at the level the commit's `level` file says, with 2% noise, and one
//! instruction count), and this checkout's `track.sh` and `lib.sh`. A regression is planted in
//! one commit; `run` + `report` must show the change point and `bisect` must find the commit.
//! Needs git and jq (scripts/test.sh installs them); no build, no server.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_colored-report");
const FIGURE: &str = "microbench/unbalanced/mely/time-left KEvents/s";

/// The stand-in reproduce.sh: one sample per run (REPRO_RUNS=1 from track.sh).
const FAKE_REPRODUCE: &str = r#"#!/usr/bin/env bash
set -euo pipefail
cd "$(dirname "$0")/.."
out=$REPRO_OUT
mkdir -p "$out/microbench" "$out/instr"
level=$(cat level)
seed=$(( $(date +%s%N) % 1000000 + RANDOM ))
kev=$(awk -v l="$level" -v s="$seed" 'BEGIN { srand(s); u = rand(); v = rand(); z = sqrt(-2 * log(u + 1e-12)) * cos(6.283185 * v); printf "%.3f", l * (1 + 0.02 * z) }')
cat >"$out/env.json" <<EOT
{"commit": "$(git rev-parse --short HEAD)", "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "mode": "quick",
 "cpu_model": "Test CPU", "cores": 2, "kernel": "6.0.0-test", "rustc": "rustc test"}
EOT
cat >"$out/microbench/paper-tables.json" <<EOT
[{"bench": "unbalanced", "runtime": "mely", "stealing": "time-left", "workers": 2,
  "seconds": 1.0, "events": 1000, "kevents_per_sec": $kev, "steals": 0, "steal_attempts": 0, "stolen_colors": 0,
  "steal_cost_cycles": null, "stolen_time_cycles": null, "locking_time_pct": null, "l2_misses_per_event": null,
  "costs": "annotated"}]
EOT
cat >"$out/instr/counts.json" <<EOT
[{"instructions_per_op": $(cat instr), "iters": 5000, "op": "http-parse", "tool": "callgrind",
  "valgrind": "valgrind-3.19.0", "what": "sws_server::http::parse of a GET"}]
EOT
"#;

fn git(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("git is installed");
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// A repository of `levels.len()` commits; commit i has `level` = levels[i].
fn throwaway_repo(tag: &str, levels: &[u32]) -> (PathBuf, Vec<String>) {
    let dir = std::env::temp_dir().join(format!("track-test-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("scripts")).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for f in ["track.sh", "lib.sh"] {
        std::fs::copy(root.join("scripts").join(f), dir.join("scripts").join(f)).unwrap();
    }
    std::fs::write(dir.join("scripts/reproduce.sh"), FAKE_REPRODUCE).unwrap();
    std::fs::write(dir.join(".gitignore"), "/target\n/results/\n").unwrap();
    git(&dir, &["init", "-q", "-b", "main"]);
    git(&dir, &["config", "user.email", "test@example.invalid"]);
    git(&dir, &["config", "user.name", "test"]);
    let mut shas = Vec::new();
    for (i, l) in levels.iter().enumerate() {
        std::fs::write(dir.join("level"), l.to_string()).unwrap();
        std::fs::write(dir.join("instr"), "1342").unwrap();
        git(&dir, &["add", "-A"]);
        // Distinct, increasing commit dates: the history is ordered by them.
        let date = format!("2026-01-01T00:{i:02}:00Z");
        let o = Command::new("git")
            .current_dir(&dir)
            .env("GIT_COMMITTER_DATE", &date)
            .env("GIT_AUTHOR_DATE", &date)
            .args([
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                &format!("commit {i} (level {l})"),
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        shas.push(git(&dir, &["rev-parse", "HEAD"]));
    }
    (dir, shas)
}

fn track(dir: &Path, args: &[&str]) -> (bool, String) {
    let o = Command::new("bash")
        .current_dir(dir)
        .arg("scripts/track.sh")
        .args(args)
        .env("COLORED_REPORT", BIN)
        .output()
        .expect("bash");
    let out = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    (o.status.success(), out)
}

#[test]
fn run_then_report_shows_the_planted_step() {
    // 12 commits; commit 6 makes the figure 20% slower.
    let levels: Vec<u32> = (0..12).map(|i| if i < 6 { 1000 } else { 800 }).collect();
    let (dir, shas) = throwaway_repo("run", &levels);
    let h = dir.join("results/history/history.jsonl");
    let (ok, out) = track(
        &dir,
        &[
            "run",
            "--commits",
            &format!("{}..HEAD", shas[0]),
            "--samples",
            "3",
            "--experiments",
            "micro",
        ],
    );
    assert!(ok, "{out}");
    let (ok, out) = track(
        &dir,
        &[
            "run",
            "--commits",
            &shas[0],
            "--samples",
            "3",
            "--experiments",
            "micro",
        ],
    );
    assert!(ok, "{out}");
    // One line per experiment per commit (the figure's, the instruction count's, the ratios' is
    // absent: no ratio can be formed from one configuration).
    let lines = std::fs::read_to_string(&h).unwrap();
    assert_eq!(lines.lines().count(), 12 * 2, "{lines}");
    let (ok, out) = track(&dir, &["report", "--no-plots"]);
    assert!(ok, "{out}");
    let md = std::fs::read_to_string(dir.join("results/history/report.md")).unwrap();
    let step = format!(
        "- **{FIGURE}**: between `{}` and `{}`:",
        &shas[5][..8],
        &shas[6][..8]
    );
    assert!(md.contains(&step), "{md}");
    // The instruction count did not move.
    assert!(
        md.contains(
            "| instr/http-parse instructions/op | instructions | 12 | 1342 | 1342 | +0.0% | none |"
        ),
        "{md}"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn bisect_finds_the_planted_regression() {
    let levels: Vec<u32> = (0..10).map(|i| if i < 7 { 1000 } else { 800 }).collect();
    let (dir, shas) = throwaway_repo("bisect", &levels);
    let (ok, out) = track(
        &dir,
        &[
            "bisect",
            &shas[0],
            &shas[9],
            "--figure",
            FIGURE,
            "--samples",
            "5",
        ],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!(
            "== first commit where '{FIGURE}' moved: {} commit 7 (level 800)",
            shas[7]
        )),
        "{out}"
    );
    // Every step printed its evidence.
    assert!(out.contains("vs GOOD:") && out.contains("vs BAD:"), "{out}");
    // A figure that does not move: nothing to bisect, and the script says so.
    let (ok, out) = track(
        &dir,
        &[
            "bisect",
            &shas[0],
            &shas[9],
            "--figure",
            "instr/http-parse instructions/op",
            "--samples",
            "5",
        ],
    );
    assert!(!ok && out.contains("no significant move"), "{out}");
    std::fs::remove_dir_all(dir).ok();
}
