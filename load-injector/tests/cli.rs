//! The command line of `load-injector` as a user meets it, run as a process: exit status
//! and the first line of stderr checked.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_load-injector");

fn run(args: &[&str]) -> Output {
    edge::testing::run_program(BIN, args)
}

use edge::testing::first_stderr_line as first_err;

/// A loopback port nothing listens on.
fn dead_port() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// A loopback HTTP server answering every request with 200 and a small body, until the
/// test process ends.
fn http_server() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            std::thread::spawn(move || {
                use std::io::Write;
                let mut c = c;
                let mut buf = [0u8; 4096];
                let mut pending = Vec::new();
                loop {
                    let n = match c.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    pending.extend_from_slice(&buf[..n]);
                    while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        pending.drain(..end + 4);
                        let r = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
                        if r.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn a_run_in_which_no_request_succeeded_fails_with_the_reason() {
    let target = dead_port();
    let o = run(&[
        "run",
        "--server",
        &target,
        "--clients",
        "2",
        "--seconds",
        "0.3",
        "--warmup",
        "0",
        "--runs",
        "1",
        "--path",
        "/",
        "--error-backoff",
        "20",
    ]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let line = first_err(&o);
    assert!(
        line.starts_with("load-injector: error: run 1 (2 clients): no request succeeded (refused="),
        "{line}"
    );
    assert!(
        line.ends_with(&format!("is a server listening on {target}?")),
        "{line}"
    );
    // The report is still printed.
    assert!(String::from_utf8_lossy(&o.stdout).contains("req/s"));
}

#[test]
fn a_closed_stdout_ends_the_program_quietly() {
    let target = http_server();
    let mut child = Command::new(BIN)
        .args([
            "run",
            "--target",
            &target,
            "--clients",
            "1",
            "--duration",
            "0.2",
        ])
        .args([
            "--warmup", "0", "--runs", "1", "--path", "/", "--format", "json",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before anything is written (`load-injector ... | true`).
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn the_output_path_is_checked_before_the_run() {
    let target = dead_port();
    let t = Instant::now();
    let o = run(&[
        "run",
        "--server",
        &target,
        "--seconds",
        "30",
        "--path",
        "/",
        "--output",
        "/nonexistent/x.json",
    ]);
    assert!(t.elapsed() < Duration::from_secs(10), "it ran first");
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert_eq!(
        first_err(&o),
        "load-injector: error: --output /nonexistent/x.json: directory /nonexistent does not exist"
    );
}

#[test]
fn usage_errors_exit_2_with_one_prefix() {
    for (args, want) in [
        (
            vec!["run", "--server", "nonsense", "--path", "/"],
            "load-injector: error: --server \"nonsense\": expected HOST:PORT",
        ),
        (
            vec![
                "run",
                "--server",
                "127.0.0.1:80",
                "--path",
                "/",
                "--seconds",
                "0",
            ],
            "load-injector: error: --seconds must be a positive number",
        ),
        (
            vec!["run", "--path", "/"],
            "load-injector: error: the following required arguments were not provided:",
        ),
        (
            vec!["nosuch"],
            "load-injector: error: unrecognized subcommand 'nosuch'",
        ),
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {o:?}");
        assert!(
            first_err(&o).starts_with(want),
            "{args:?}: {}",
            first_err(&o)
        );
    }
}

#[test]
fn version_help_examples_and_units() {
    let o = run(&["--version"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("load-injector "));
    for sub in [&[][..], &["run"][..], &["master"][..], &["slave"][..]] {
        let mut a = sub.to_vec();
        a.push("--help");
        let o = run(&a);
        assert!(o.status.success(), "{a:?}");
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("EXAMPLES:"),
            "{a:?}"
        );
    }
    let target = http_server();
    let o = run(&[
        "run",
        "--server",
        &target,
        "--clients",
        "1",
        "--seconds",
        "0.2",
        "--warmup",
        "0",
        "--runs",
        "1",
        "--path",
        "/",
    ]);
    assert!(o.status.success(), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("cpu us/req"));
}

/// One `run --format json` of `clients` clients against `server`, into `file`.
fn json_report(server: &str, clients: &str, file: &std::path::Path) {
    let o = run(&[
        "run",
        "--server",
        server,
        "--clients",
        clients,
        "--seconds",
        "0.2",
        "--warmup",
        "0",
        "--runs",
        "1",
        "--path",
        "/",
        "--format",
        "json",
        "--output",
        file.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", first_err(&o));
}

#[test]
fn merge_joins_reports_of_separate_server_starts_and_refuses_different_loads() {
    let dir = std::env::temp_dir().join(format!("li-merge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b, c) = (dir.join("a.json"), dir.join("b.json"), dir.join("c.json"));
    // Two server starts, as rounds against separately started servers are.
    json_report(&http_server(), "2", &a);
    json_report(&http_server(), "2", &b);
    json_report(&http_server(), "3", &c);
    let o = run(&[
        "merge",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", first_err(&o));
    let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let runs = m["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(
        (runs[0]["run"].as_u64(), runs[1]["run"].as_u64()),
        (Some(1), Some(2))
    );
    let rps: Vec<f64> = runs
        .iter()
        .map(|r| r["requests_per_sec"].as_f64().unwrap())
        .collect();
    let med = m["median"]["requests_per_sec"].as_f64().unwrap();
    assert!(
        (med - (rps[0] + rps[1]) / 2.0).abs() < 1e-6 * med.max(1.0),
        "{med} {rps:?}"
    );
    assert_eq!(m["spread"]["min"].as_f64().unwrap(), rps[0].min(rps[1]));
    assert_eq!(m["config"]["runs"].as_u64(), Some(2));

    let o = run(&["merge", a.to_str().unwrap(), c.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        first_err(&o),
        "load-injector: error: report 2 ran a different load than report 1 (differs in: clients)"
    );
    let o = run(&["merge", dir.join("missing.json").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(first_err(&o).contains("missing.json"), "{}", first_err(&o));
    let _ = std::fs::remove_dir_all(&dir);
}
