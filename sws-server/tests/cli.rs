//! The command line of `sws-server` as a user meets it, run as a process: exit status and
//! the first error line checked. The worker cap refuses the fork-bomb command of issue 29,
//! and an N-copy parent stopped by SIGTERM, during its start-up or after it, is gone with
//! every child reaped within a second. `--trace` writes a trace the checker accepts, one per
//! process in N-copy mode.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_sws-server");

/// A temporary directory with a document root `www` holding one file.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("sws-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("www")).unwrap();
        std::fs::write(d.join("www/index.html"), "<html>hi</html>\n").unwrap();
        Dir(d)
    }

    fn www(&self) -> PathBuf {
        self.0.join("www")
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(args: &[&str]) -> Output {
    edge::testing::run_program(BIN, args)
}

use edge::testing::first_stderr_line;

/// Processes (other than this test) whose command line mentions `marker`.
fn processes_mentioning(marker: &Path) -> Vec<u32> {
    let marker = marker.to_string_lossy().into_owned();
    let me = std::process::id();
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        if pid != me && String::from_utf8_lossy(&cmd).contains(&marker) {
            pids.push(pid);
        }
    }
    pids
}

fn sigterm(child: &Child) {
    // SAFETY: kill(2) on the pid of our own unreaped child.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
}

/// Waits for `child` to exit; its exit status and how long that took, or None after `limit`
/// (the child is then killed).
fn wait_within(child: &mut Child, limit: Duration) -> Option<(std::process::ExitStatus, Duration)> {
    let t = Instant::now();
    while t.elapsed() < limit * 5 {
        if let Some(st) = child.try_wait().unwrap() {
            return Some((st, t.elapsed())).filter(|(_, d)| *d <= limit);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Waits up to a second for every process mentioning `marker` to be gone.
fn assert_no_process_left(marker: &Path) {
    let t = Instant::now();
    loop {
        let left = processes_mentioning(marker);
        if left.is_empty() {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "processes left behind: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_fork_bomb_command_is_refused_before_anything_starts() {
    let d = Dir::new("bomb");
    let www = d.www();
    let t = Instant::now();
    let o = run(&[
        "--root",
        www.to_str().unwrap(),
        "--listen",
        "127.0.0.1:27001",
        "--workers",
        "100000",
        "--runtime",
        "mely",
        "--stealing",
        "off",
        "--mode",
        "ncopy",
    ]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let line = first_stderr_line(&o);
    assert!(
        line.starts_with("sws-server: error: --workers 100000 is more than the"),
        "{line}"
    );
    assert!(line.contains("--allow-many-workers"), "{line}");
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(processes_mentioning(&www).is_empty());
    // Even with the override, the runtime's own limit holds.
    let o = run(&[
        "--root",
        www.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--workers",
        "100000",
        "--allow-many-workers",
        "--mode",
        "ncopy",
    ]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(
        first_stderr_line(&o).contains("at most 65535"),
        "{}",
        first_stderr_line(&o)
    );
}

/// SIGTERM while a large (allowed by the override) N-copy group is still starting: no
/// further child is started, and the parent exits with every child reaped within a second.
/// 96 processes: above the default cap on this 2-CPU machine, small enough not to hurt it.
#[test]
fn sigterm_during_a_large_ncopy_start_reaps_every_child_within_a_second() {
    let d = Dir::new("start");
    let www = d.www();
    let mut child = Command::new(BIN)
        .args(["--root", www.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .args(["--workers", "96", "--allow-many-workers", "--mode", "ncopy"])
        .args(["--no-pin"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Until some children run, then SIGTERM in the middle of the start-up.
    let t = Instant::now();
    while processes_mentioning(&www).len() < 6 && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let started_before = processes_mentioning(&www).len();
    assert!(started_before >= 6, "the N-copy children never started");
    sigterm(&child);
    let Some((status, took)) = wait_within(&mut child, Duration::from_secs(1)) else {
        panic!("the N-copy parent did not exit within a second of SIGTERM");
    };
    assert_no_process_left(&www);
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    let line = err
        .lines()
        .find(|l| l.starts_with("sws-server:"))
        .unwrap_or("");
    if status.success() {
        // The whole group had come up before the signal: a normal stop.
        assert!(line.is_empty(), "{err}");
    } else {
        assert_eq!(status.code(), Some(1), "{err}");
        assert!(
            line.starts_with("sws-server: error: stopped by signal 15 while starting"),
            "{err}"
        );
    }
    eprintln!("exited {took:?} after SIGTERM ({started_before}+ children had started)");
}

/// SIGTERM once every child listens: all stop, are reaped and the statistics are written,
/// within a second.
#[test]
fn sigterm_after_an_ncopy_start_stops_everything_within_a_second() {
    let d = Dir::new("run");
    let www = d.www();
    let stats = d.0.join("stats.json");
    let mut child = Command::new(BIN)
        .args(["--root", www.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .args([
            "--workers",
            "8",
            "--mode",
            "ncopy",
            "--no-pin",
            "--stats-json",
        ])
        .arg(&stats)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("listening on"), "{line:?}");
    assert_eq!(
        processes_mentioning(&www).len(),
        9,
        "a parent and 8 children"
    );
    sigterm(&child);
    let Some((status, _)) = wait_within(&mut child, Duration::from_secs(1)) else {
        panic!("the N-copy parent did not exit within a second of SIGTERM");
    };
    assert!(status.success());
    assert_no_process_left(&www);
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    assert_eq!(doc["children"].as_array().unwrap().len(), 8);
}

#[test]
fn an_unwritable_stats_path_is_refused_before_serving() {
    let d = Dir::new("stats");
    let o = run(&[
        "--root",
        d.www().to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--stats-json",
        "/nonexistent/s.json",
    ]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert_eq!(
        first_stderr_line(&o),
        "sws-server: error: --stats-json /nonexistent/s.json: directory /nonexistent does not exist"
    );
    assert!(o.stdout.is_empty(), "it started serving");
}

#[test]
fn usage_errors_say_what_and_exit_2() {
    let d = Dir::new("usage");
    let www = d.www();
    let w = www.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "--root",
                w,
                "--listen",
                "127.0.0.1:0",
                "--runtime",
                "libasync",
                "--stealing",
                "all",
            ],
            "sws-server: error: the libasync queues support only stealing off or base, not all",
        ),
        (
            &["--root", w, "--listen", "nope"],
            "sws-server: error: invalid value 'nope' for '--listen <ADDR>'",
        ),
        (
            &["--root", "/nonexistent-root", "--listen", "127.0.0.1:0"],
            "sws-server: error: --root /nonexistent-root:",
        ),
        (
            &["--listen", "127.0.0.1:0"],
            "sws-server: error: the following required",
        ),
    ];
    for (args, want) in cases {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {o:?}");
        let line = first_stderr_line(&o);
        assert!(line.starts_with(want), "{args:?}: {line}");
    }
}

#[test]
fn version_and_help_with_examples() {
    let o = run(&["--version"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("sws-server "));
    let o = run(&["--help"]);
    assert!(o.status.success());
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(help.contains("EXAMPLES:"), "{help}");
    for flag in [
        "--workers",
        "--runtime",
        "--stealing",
        "--allow-many-workers",
        "--no-pin",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
}

#[test]
fn an_empty_root_is_warned_about() {
    let d = Dir::new("empty");
    std::fs::remove_file(d.www().join("index.html")).unwrap();
    let mut child = Command::new(BIN)
        .args([
            "--root",
            d.www().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--workers", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("listening on"), "{line:?}");
    sigterm(&child);
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    assert!(
        first_stderr_line(&o).starts_with("sws-server: warning: --root"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Starts `sws-server` with `extra` flags, waits for its listening line, sends `requests`
/// GETs over loopback, stops it with SIGTERM and checks it exited 0.
fn serve_some_requests(d: &Dir, extra: &[&str], requests: usize) {
    use std::io::{Read, Write};
    let mut child = Command::new(BIN)
        .args([
            "--root",
            d.www().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--no-pin"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split_whitespace()
        .nth(3)
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    for _ in 0..requests {
        let mut c = std::net::TcpStream::connect(&addr).unwrap();
        c.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").unwrap();
        let mut reply = String::new();
        c.read_to_string(&mut reply).unwrap();
        assert!(
            reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200"),
            "{reply}"
        );
    }
    sigterm(&child);
    let Some((status, _)) = wait_within(&mut child, Duration::from_secs(10)) else {
        panic!("sws-server did not exit within 10 s of SIGTERM");
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{status}: {err}");
}

/// The trace at `path` parses, has runs of `at_least` events, and passes the color check.
fn assert_checked_trace(path: &Path, at_least: u64) {
    let report = colored_trace::check::check_path(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(report.passed(), "{}: {report:?}", path.display());
    assert!(report.runs >= at_least, "{}: {report:?}", path.display());
}

#[test]
fn trace_is_written_at_shutdown_and_passes_the_checker() {
    let d = Dir::new("trace");
    let t = d.0.join("t.json");
    let t_arg = t.to_str().unwrap().to_string();
    serve_some_requests(
        &d,
        &["--workers", "2", "--runtime", "mely", "--trace", &t_arg],
        20,
    );
    // Each request is at least an accept, a read, a parse and a write: several runs each.
    assert_checked_trace(&t, 20);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&t).unwrap()).unwrap();
    assert!(
        v["otherData"].to_string().contains("sws-server"),
        "{}",
        v["otherData"]
    );
}

#[test]
fn ncopy_children_each_write_their_trace() {
    let d = Dir::new("trace-ncopy");
    let t = d.0.join("t.json");
    let t_arg = t.to_str().unwrap().to_string();
    serve_some_requests(
        &d,
        &[
            "--workers",
            "2",
            "--mode",
            "ncopy",
            "--trace",
            &t_arg,
            "--trace-records",
            "4096",
        ],
        20,
    );
    assert!(
        !t.exists(),
        "the parent runs no runtime: it writes no trace of its own"
    );
    for i in 0..2 {
        // SO_REUSEPORT spreads connections by hash: a child may have served none, but its
        // runtime still ran (the acceptor), so its trace exists and checks.
        assert_checked_trace(&d.0.join(format!("t.c{i}.json")), 1);
    }
}

#[test]
fn an_unwritable_trace_path_is_refused_before_serving() {
    let d = Dir::new("trace-bad");
    let o = run(&[
        "--root",
        d.www().to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--trace",
        "/nonexistent/t.json",
    ]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert_eq!(
        first_stderr_line(&o),
        "sws-server: error: --trace /nonexistent/t.json: directory /nonexistent does not exist"
    );
    assert!(o.stdout.is_empty(), "it started serving");
}
