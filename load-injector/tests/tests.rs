//! Integration tests: the injector against a small in-test HTTP server, and a
//! master with slaves (loopback, plus a network namespace when root).
//! Every run is bounded: sub-second durations, a handful of clients, loopback
//! or test-made netns addresses only.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{closed_port, TestServer, SLOW};
use load_injector::master::{run_master, MasterOptions};
use load_injector::output::{render, Format};
use load_injector::plan::{Plan, Ramp, WeightedPath};
use load_injector::progress::Progress;
use load_injector::stats::RunSummary;
use load_injector::{run_local, slave, Report};

fn plan(addr: SocketAddr, paths: &[(&str, f64)]) -> Plan {
    Plan {
        target: addr.to_string(),
        addr,
        host_header: addr.to_string(),
        clients: 4,
        threads: 2,
        duration_s: 0.6,
        warmup_s: 0.0,
        runs: 1,
        requests_per_conn: 150,
        think_time_ms: 0.0,
        timeout_ms: 2_000,
        error_backoff_ms: 1.0,
        expect_status: None,
        paths: paths
            .iter()
            .map(|(p, w)| WeightedPath {
                path: p.to_string(),
                weight: *w,
            })
            .collect(),
        ramp: None,
    }
}

fn errs(r: &RunSummary, kind: &str) -> u64 {
    r.errors[kind]
}

fn total_errors(r: &RunSummary) -> u64 {
    r.errors.values().sum()
}

/// requests sent = responses checked + errors, exactly.
fn assert_accounting(r: &RunSummary) {
    assert_eq!(
        r.requests,
        r.responses_ok + total_errors(r),
        "accounting broken: {r:?}"
    );
}

fn run(p: &Plan) -> Report {
    run_local(p, Progress::hidden()).expect("run")
}

#[test]
fn exact_counts_and_reconnect_after_requests_per_conn() {
    let srv = TestServer::start("127.0.0.1:0");
    let p = plan(srv.addr, &[("/ok", 1.0)]);
    let rep = run(&p);
    let r = &rep.runs[0];
    assert_accounting(r);
    assert_eq!(total_errors(r), 0, "{r:?}");
    assert!(
        r.responses_ok > 600,
        "too few responses to test reconnects: {}",
        r.responses_ok
    );
    // No warm-up: every request the server saw was measured, and every measured
    // request was followed to its end, so the two counts agree exactly.
    assert_eq!(srv.requests(), r.requests);
    // Reconnect after exactly 150 requests, the last one asking to close.
    assert_eq!(srv.stats.max_per_conn.load(Ordering::SeqCst), 150);
    let closes = srv.stats.close_requests.load(Ordering::SeqCst);
    let conns = srv.stats.connections.load(Ordering::SeqCst);
    // Every connection but those still open at the end carried 150 requests.
    assert!(
        closes >= 1 && conns >= closes && conns <= closes + p.clients as u64,
        "conns {conns}, closes {closes}"
    );
    assert_eq!(r.connections, conns);
    // Wire bytes: head (41 bytes, 19 more with Connection: close) + 1 KiB body.
    assert_eq!(r.bytes, r.responses_ok * (1024 + 41) + closes * 19);
    assert!(r.latency_us.p50 > 0 && r.latency_us.p50 <= r.latency_us.p99);
}

#[test]
fn warmup_is_excluded() {
    let srv = TestServer::start("127.0.0.1:0");
    let mut p = plan(srv.addr, &[("/ok", 1.0)]);
    p.warmup_s = 0.3;
    p.duration_s = 0.3;
    p.requests_per_conn = 10;
    let r = run(&p).runs[0].clone();
    assert_accounting(&r);
    assert!(r.requests > 0);
    assert!(
        srv.requests() > r.requests + 50,
        "warm-up requests must not be counted: server {} vs {}",
        srv.requests(),
        r.requests
    );
    assert_eq!(srv.stats.max_per_conn.load(Ordering::SeqCst), 10);
}

#[test]
fn errors_are_classified() {
    let srv = TestServer::start("127.0.0.1:0");
    let cases: &[(&str, &str)] = &[
        ("/bad", "bad_status"),
        ("/missing", "bad_status"),
        ("/short", "short_body"),
        ("/reset", "reset"),
        ("/garbage", "parse"),
        ("/hang", "timeout"),
    ];
    for (path, kind) in cases {
        let mut p = plan(srv.addr, &[(path, 1.0)]);
        p.duration_s = 0.4;
        p.clients = 2;
        // Short only where a timeout is the point: elsewhere a loaded machine
        // must not turn a slow answer into a timeout.
        p.timeout_ms = if *path == "/hang" { 100 } else { 3_000 };
        let r = run(&p).runs[0].clone();
        assert_accounting(&r);
        assert_eq!(
            r.responses_ok, 0,
            "{path}: a failure counted as success: {r:?}"
        );
        assert!(errs(&r, kind) > 0, "{path}: expected {kind}: {r:?}");
        assert_eq!(
            errs(&r, kind),
            total_errors(&r),
            "{path}: all errors should be {kind}: {r:?}"
        );
        assert_eq!(
            r.latency_us.p50, 0,
            "{path}: failures must not enter the latency histogram"
        );
    }
    // Refused: nothing listens.
    let mut p = plan(closed_port(), &[("/ok", 1.0)]);
    p.duration_s = 0.3;
    let r = run(&p).runs[0].clone();
    assert_accounting(&r);
    assert!(
        errs(&r, "refused") > 0 && errs(&r, "refused") == r.requests,
        "{r:?}"
    );
    assert_eq!(r.connections, 0);
}

#[test]
fn expected_status_and_weighted_mix() {
    let srv = TestServer::start("127.0.0.1:0");
    let mut p = plan(srv.addr, &[("/ok", 3.0), ("/bad", 1.0)]);
    p.duration_s = 0.5;
    let r = run(&p).runs[0].clone();
    assert_accounting(&r);
    let bad = errs(&r, "bad_status") as f64 / r.requests as f64;
    assert!((0.2..0.3).contains(&bad), "bad fraction {bad}");
    assert_eq!(total_errors(&r), errs(&r, "bad_status"));
    // Bad statuses keep the connection: no more connections than the reconnect rule needs.
    // A 200 is not the expected 201: every response is bad_status.
    let mut p = plan(srv.addr, &[("/ok", 1.0)]);
    p.duration_s = 0.3;
    p.expect_status = Some(201);
    let r = run(&p).runs[0].clone();
    assert_accounting(&r);
    assert_eq!(r.responses_ok, 0);
    assert_eq!(errs(&r, "bad_status"), r.requests);
    // A response arriving in pieces is assembled, not cut short.
    let mut p = plan(srv.addr, &[("/pieces", 1.0)]);
    p.duration_s = 1.0;
    p.requests_per_conn = 5;
    let r = run(&p).runs[0].clone();
    assert_accounting(&r);
    assert_eq!(total_errors(&r), 0, "{r:?}");
    assert!(r.responses_ok > 10 && r.bytes > r.responses_ok * 3000);
    assert!(
        r.latency_us.p50 >= 4_000,
        "two 2 ms pauses per response: p50 {}",
        r.latency_us.p50
    );
    // Chunked bodies are complete responses.
    let mut p = plan(srv.addr, &[("/chunked", 1.0)]);
    p.duration_s = 0.3;
    let r = run(&p).runs[0].clone();
    assert_accounting(&r);
    assert_eq!(total_errors(&r), 0, "{r:?}");
}

#[test]
fn latency_from_intended_send_and_think_time() {
    let srv = TestServer::start("127.0.0.1:0");
    let mut p = plan(srv.addr, &[("/slow", 1.0)]);
    p.clients = 2;
    p.duration_s = 0.5;
    let r = run(&p).runs[0].clone();
    assert_accounting(&r);
    let slow = SLOW.as_micros() as u64;
    assert!(
        r.latency_us.p50 >= slow && r.latency_us.p50 < 4 * slow,
        "p50 {}",
        r.latency_us.p50
    );
    // Closed loop: at most one request per client per SLOW.
    assert!(
        r.requests_per_sec <= 2.0 * 1e6 / slow as f64 + 5.0,
        "{}",
        r.requests_per_sec
    );
    // Think time slows the loop down but is not latency.
    let mut p = plan(srv.addr, &[("/ok", 1.0)]);
    p.clients = 2;
    p.duration_s = 0.5;
    p.think_time_ms = 50.0;
    let r = run(&p).runs[0].clone();
    assert_accounting(&r);
    assert!(
        r.requests <= 2 * 11 + 2,
        "think time ignored: {} requests",
        r.requests
    );
    assert!(
        r.latency_us.p99 < 50_000,
        "think time counted as latency: {}",
        r.latency_us.p99
    );
}

#[test]
fn runs_ramp_and_formats() {
    let srv = TestServer::start("127.0.0.1:0");
    let mut p = plan(srv.addr, &[("/ok", 1.0)]);
    p.duration_s = 0.2;
    p.runs = 2;
    p.ramp = Some(Ramp::parse("1:3:2").unwrap());
    p.clients = 1;
    let rep = run(&p);
    assert_eq!(rep.runs.len(), 4);
    let steps = rep.steps.as_ref().expect("ramp rows");
    assert_eq!(
        steps.iter().map(|s| s.clients).collect::<Vec<_>>(),
        vec![1, 3]
    );
    assert_eq!(
        rep.runs.iter().map(|r| r.clients).collect::<Vec<_>>(),
        vec![1, 1, 3, 3]
    );
    assert!(rep.complete);
    for r in &rep.runs {
        assert_accounting(r);
    }
    let json: serde_json::Value =
        serde_json::from_str(&render(&rep, Format::Json).unwrap()).unwrap();
    for ptr in [
        "/runs/0/requests_per_sec",
        "/median/requests_per_sec",
        "/median/mbytes_per_sec",
        "/median/latency_us/p50",
        "/median/latency_us/p90",
        "/median/latency_us/p99",
        "/median/latency_us/p999",
        "/median/connections",
        "/median/errors/refused",
        "/median/errors/short_body",
        "/spread/stdev",
        "/steps/1/requests_per_sec",
        "/config/clients",
        "/config/duration_s",
        "/env/cores",
        "/env/kernel",
    ] {
        assert!(json.pointer(ptr).is_some(), "JSON lacks {ptr}");
    }
    // The median of the last step is the median of its two runs.
    let last: Vec<f64> = rep.runs[2..].iter().map(|r| r.requests_per_sec).collect();
    assert!((rep.median.requests_per_sec - (last[0] + last[1]) / 2.0).abs() < 1e-6);
    let csv = render(&rep, Format::Csv).unwrap();
    assert!(csv.lines().any(|l| l.starts_with("# env.cores=")));
    assert!(csv.lines().any(|l| l.starts_with("# config.target=")));
    let header = csv.lines().find(|l| !l.starts_with('#')).unwrap();
    let cols = header.split(',').count();
    assert!(
        csv.lines()
            .filter(|l| !l.starts_with('#'))
            .all(|l| l.split(',').count() == cols),
        "ragged CSV:\n{csv}"
    );
    assert_eq!(csv.lines().filter(|l| l.starts_with("run,")).count(), 4);
    assert_eq!(csv.lines().filter(|l| l.starts_with("median,")).count(), 2);
    let table = render(&rep, Format::Table).unwrap();
    assert!(table.contains("ramp") && table.contains("env:"));
}

fn start_slave() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    std::thread::spawn(move || slave::serve(l, Some(1)));
    a
}

fn master_opts(slaves: &[SocketAddr]) -> MasterOptions {
    let mut o = MasterOptions::new(slaves.iter().map(|a| a.to_string()).collect());
    o.start_delay = Duration::from_millis(100);
    // Slack for a loaded CI machine; still well below the silent fake slave's 5 s.
    o.grace = Duration::from_secs(2);
    o.connect_timeout = Duration::from_secs(2);
    o
}

#[test]
fn master_with_two_loopback_slaves_merges_exactly() {
    let srv = TestServer::start("127.0.0.1:0");
    let slaves = [start_slave(), start_slave()];
    let mut p = plan(srv.addr, &[("/ok", 1.0)]);
    p.clients = 5;
    p.threads = 1;
    p.runs = 2;
    p.duration_s = 0.4;
    p.requests_per_conn = 50;
    let rep = run_master(&p, &master_opts(&slaves), Progress::hidden()).unwrap();
    assert!(rep.complete, "{:?}", rep.runs);
    assert_eq!(rep.runs.len(), 2);
    let merged: u64 = rep.runs.iter().map(|r| r.requests).sum();
    for r in &rep.runs {
        assert_accounting(r);
        assert_eq!(total_errors(r), 0);
    }
    // Every request any slave sent was measured (no warm-up) and reached the
    // server: the merged totals are the sum of the slaves' work.
    assert_eq!(srv.requests(), merged);
    for r in &rep.runs {
        assert_eq!(r.slaves.len(), 2);
        assert_eq!(r.slaves.iter().map(|s| s.requests).sum::<u64>(), r.requests);
        assert_eq!(
            r.slaves.iter().map(|s| s.responses_ok).sum::<u64>(),
            r.responses_ok
        );
        assert!(r
            .slaves
            .iter()
            .all(|s| s.requests > 0 && s.latency_count == s.responses_ok));
    }
    assert_eq!(srv.stats.max_per_conn.load(Ordering::SeqCst), 50);
    assert_eq!(
        rep.config
            .slaves
            .iter()
            .map(|s| s.clients)
            .collect::<Vec<_>>(),
        vec![3, 2]
    );
    assert!(rep
        .config
        .slaves
        .iter()
        .all(|s| s.env.is_some() && s.failure.is_none()));
}

/// A fake slave that accepts the plan and then misbehaves.
fn fake_slave(die: bool) -> SocketAddr {
    use load_injector::control::{read_msg, write_msg, Msg};
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let _ = read_msg(&mut s);
        write_msg(
            &mut s,
            &Msg::Ready {
                env: Box::new(load_injector::environment()),
            },
            &[],
        )
        .unwrap();
        loop {
            match read_msg(&mut s) {
                Ok((Msg::Ping { seq }, _)) => write_msg(&mut s, &Msg::Pong { seq }, &[]).unwrap(),
                Ok((Msg::Start { .. }, _)) if die => return, // dies mid-run: connection closes
                Ok((Msg::Start { .. }, _)) => {
                    // never answers; keep the connection open past the master's deadline
                    std::thread::sleep(Duration::from_secs(5));
                    return;
                }
                _ => return,
            }
        }
    });
    a
}

#[test]
fn failed_slaves_are_reported_not_averaged() {
    let srv = TestServer::start("127.0.0.1:0");
    let good = start_slave();
    let dead = fake_slave(true);
    let silent = fake_slave(false);
    let absent = closed_port();
    let mut p = plan(srv.addr, &[("/ok", 1.0)]);
    p.clients = 8;
    p.threads = 1;
    p.duration_s = 0.3;
    p.timeout_ms = 200;
    let rep = run_master(
        &p,
        &master_opts(&[good, dead, silent, absent]),
        Progress::hidden(),
    )
    .unwrap();
    assert!(!rep.complete);
    let r = &rep.runs[0];
    assert!(!r.complete);
    assert_eq!(r.missing_slaves.len(), 3, "{:?}", r.missing_slaves);
    for a in [dead, silent, absent] {
        assert!(
            r.missing_slaves
                .iter()
                .any(|m| m.starts_with(&a.to_string())),
            "{a} not reported: {:?}",
            r.missing_slaves
        );
    }
    // Only the good slave's share is in the figures, nothing is extrapolated.
    assert_accounting(r);
    assert_eq!(srv.requests(), r.requests);
    assert_eq!(r.clients, 8);
    let table = render(&rep, Format::Table).unwrap();
    assert!(table.contains("INCOMPLETE"));
    // No slave at all is an error, not an empty report.
    assert!(run_master(&p, &master_opts(&[closed_port()]), Progress::hidden()).is_err());
}

/// Network namespace with a veth pair; removed on drop.
struct Netns {
    name: String,
    host_if: String,
    child: Option<std::process::Child>,
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
    }
}

fn sh(args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn make_netns() -> Result<(Netns, String, String), String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root".into());
    }
    let id = std::process::id() % 10_000;
    let ns = Netns {
        name: format!("li-test-{id}"),
        host_if: format!("lih{id}"),
        child: None,
    };
    let peer = format!("lin{id}");
    let net = format!("10.231.{}", id % 250);
    let (host_ip, ns_ip) = (format!("{net}.1"), format!("{net}.2"));
    sh(&["ip", "netns", "add", &ns.name])?;
    sh(&[
        "ip",
        "link",
        "add",
        &ns.host_if,
        "type",
        "veth",
        "peer",
        "name",
        &peer,
    ])?;
    sh(&["ip", "link", "set", &peer, "netns", &ns.name])?;
    sh(&[
        "ip",
        "addr",
        "add",
        &format!("{host_ip}/24"),
        "dev",
        &ns.host_if,
    ])?;
    sh(&["ip", "link", "set", &ns.host_if, "up"])?;
    sh(&[
        "ip",
        "netns",
        "exec",
        &ns.name,
        "ip",
        "addr",
        "add",
        &format!("{ns_ip}/24"),
        "dev",
        &peer,
    ])?;
    sh(&[
        "ip", "netns", "exec", &ns.name, "ip", "link", "set", &peer, "up",
    ])?;
    sh(&[
        "ip", "netns", "exec", &ns.name, "ip", "link", "set", "lo", "up",
    ])?;
    Ok((ns, host_ip, ns_ip))
}

#[test]
fn master_with_loopback_slaves_and_one_in_a_netns() {
    let (mut ns, host_ip, ns_ip) = match make_netns() {
        Ok(x) => x,
        Err(why) => {
            edge::testing::skip(
                "master_with_loopback_slaves_and_one_in_a_netns",
                &format!("cannot create a network namespace ({why})"),
            );
            return;
        }
    };
    // The server listens on the host end of the veth: reachable from the netns
    // slave through the veth and from the loopback slaves locally.
    let srv = TestServer::start(&format!("{host_ip}:0"));
    let ctl = format!("{ns_ip}:7171");
    let child = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.name,
            env!("CARGO_BIN_EXE_load-injector"),
            "slave",
            "--listen",
            &ctl,
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn the netns slave");
    ns.child = Some(child);
    let ctl_addr: SocketAddr = ctl.parse().unwrap();
    let mut up = false;
    for _ in 0..100 {
        if std::net::TcpStream::connect_timeout(&ctl_addr, Duration::from_millis(100)).is_ok() {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(up, "netns slave never listened on {ctl}");
    let slaves = [start_slave(), start_slave(), ctl_addr];
    let mut p = plan(srv.addr, &[("/ok", 1.0)]);
    p.clients = 6;
    p.threads = 1;
    p.duration_s = 0.4;
    let rep = run_master(&p, &master_opts(&slaves), Progress::hidden()).unwrap();
    assert!(rep.complete, "{:?}", rep.runs[0].missing_slaves);
    let r = &rep.runs[0];
    assert_accounting(r);
    assert_eq!(total_errors(r), 0, "{r:?}");
    assert_eq!(
        srv.requests(),
        r.requests,
        "merged totals must equal the sum of the slaves' requests"
    );
    assert!(rep.config.slaves.iter().all(|s| s.env.is_some()));
    assert_eq!(r.slaves.len(), 3);
    assert_eq!(
        r.slaves.iter().map(|s| s.requests).sum::<u64>(),
        r.requests,
        "merged = sum of the slaves"
    );
    assert_eq!(
        r.slaves.iter().map(|s| s.responses_ok).sum::<u64>(),
        r.responses_ok
    );
    assert!(
        r.slaves.iter().all(|s| s.requests > 0),
        "every slave, the netns one included, did work: {:?}",
        r.slaves
    );
}

fn cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_load-injector"))
        .args(args)
        .output()
        .expect("run the load-injector binary")
}

#[test]
fn cli_run_json_and_clear_errors() {
    let srv = TestServer::start("127.0.0.1:0");
    let target = srv.addr.to_string();
    let out = cli(&[
        "run",
        "--target",
        &target,
        "--clients",
        "3",
        "--duration",
        "0.3",
        "--warmup",
        "0.1",
        "--runs",
        "2",
        "--path",
        "/a",
        "--path",
        "/b",
        "--requests-per-conn",
        "7",
        "--format",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON object");
    assert_eq!(j["runs"].as_array().unwrap().len(), 2);
    assert_eq!(j["config"]["requests_per_conn"], 7);
    assert_eq!(j["config"]["paths"].as_array().unwrap().len(), 2);
    assert!(j["median"]["requests_per_sec"].as_f64().unwrap() > 0.0);
    assert!(j["median"]["latency_us"]["p999"].as_u64().unwrap() > 0);
    assert!(j.get("steps").is_none());
    assert_eq!(srv.stats.max_per_conn.load(Ordering::SeqCst), 7);

    // A weighted paths file.
    let dir = std::env::temp_dir().join(format!("li-paths-{}", std::process::id()));
    std::fs::write(&dir, "# weights\n/a 9\n/bad 1\n").unwrap();
    let out = cli(&[
        "run",
        "--target",
        &target,
        "--clients",
        "2",
        "--duration",
        "0.3",
        "--warmup",
        "0",
        "--runs",
        "1",
        "--paths",
        dir.to_str().unwrap(),
        "--format",
        "csv",
    ]);
    let _ = std::fs::remove_file(&dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8(out.stdout).unwrap();
    assert!(csv.contains("# config.paths.1.path=/bad"), "{csv}");

    for (args, needle) in [
        (
            vec!["run", "--target", "nonsense", "--path", "/"],
            "--server",
        ),
        (
            vec!["run", "--target", "127.0.0.1:80/x", "--path", "/"],
            "HOST:PORT",
        ),
        (vec!["run", "--target", "127.0.0.1:80"], "--path"),
        (
            vec!["run", "--target", "127.0.0.1:80", "--path", "x"],
            "must start with '/'",
        ),
        (
            vec![
                "run",
                "--target",
                "127.0.0.1:80",
                "--path",
                "/",
                "--clients",
                "0",
            ],
            "--clients",
        ),
        (
            vec![
                "run",
                "--target",
                "127.0.0.1:80",
                "--path",
                "/",
                "--ramp",
                "5:1:1",
            ],
            "--ramp",
        ),
        (
            vec![
                "run",
                "--target",
                "127.0.0.1:80",
                "--paths",
                "/nonexistent/paths.txt",
            ],
            "/nonexistent/paths.txt",
        ),
        (vec!["slave", "--listen", "256.0.0.1:1"], "--listen"),
    ] {
        let out = cli(&args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(needle),
            "{args:?}: error should mention {needle:?}: {err}"
        );
    }
    let help = String::from_utf8(cli(&["--help"]).stdout).unwrap();
    for sub in ["run", "slave", "master"] {
        assert!(help.contains(sub), "--help lacks {sub}");
    }
    let help = String::from_utf8(cli(&["master", "--help"]).stdout).unwrap();
    assert!(
        help.contains("--slaves")
            && help.contains("--requests-per-conn")
            && help.contains("--ramp")
    );
}

#[test]
fn cli_master_exit_code_reflects_incomplete_runs() {
    let srv = TestServer::start("127.0.0.1:0");
    let good = start_slave();
    let absent = closed_port();
    let out = cli(&[
        "master",
        "--slaves",
        &format!("{good},{absent}"),
        "--target",
        &srv.addr.to_string(),
        "--clients",
        "4",
        "--duration",
        "0.3",
        "--warmup",
        "0",
        "--runs",
        "1",
        "--path",
        "/ok",
        "--format",
        "json",
        "--slave-timeout",
        "1",
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["complete"], false);
    assert_eq!(j["runs"][0]["complete"], false);
    assert!(j["runs"][0]["missing_slaves"][0]
        .as_str()
        .unwrap()
        .starts_with(&absent.to_string()));
    assert_eq!(j["config"]["mode"], "master");
    assert_eq!(j["runs"][0]["requests"].as_u64().unwrap(), srv.requests());
}

#[test]
fn interruption_keeps_completed_runs_only() {
    use std::sync::atomic::AtomicBool;
    let srv = TestServer::start("127.0.0.1:0");
    let mut p = plan(srv.addr, &[("/ok", 1.0)]);
    p.duration_s = 0.25;
    p.runs = 10;
    let stop = AtomicBool::new(false);
    let rep = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(650));
            stop.store(true, Ordering::Relaxed);
        });
        load_injector::run_local_until(&p, Progress::hidden(), &stop).unwrap()
    });
    assert!(rep.interrupted);
    assert!((1..10).contains(&rep.runs.len()), "{} runs", rep.runs.len());
    for r in &rep.runs {
        assert_accounting(r);
        assert_eq!(
            total_errors(r),
            0,
            "an abandoned run leaked into the report: {r:?}"
        );
    }
    let json: serde_json::Value =
        serde_json::from_str(&render(&rep, Format::Json).unwrap()).unwrap();
    assert_eq!(json["interrupted"], true);
    // Stopped before anything completed: an error, not an empty report.
    let stop = AtomicBool::new(true);
    assert!(load_injector::run_local_until(&p, Progress::hidden(), &stop).is_err());
}

#[test]
fn master_starts_slaves_together_and_ramps() {
    // One client per slave and a think time longer than the run: each slave
    // sends exactly one request, at the common start instant.
    let srv = TestServer::start("127.0.0.1:0");
    let slaves = [start_slave(), start_slave()];
    let mut p = plan(srv.addr, &[("/stamp", 1.0)]);
    p.clients = 2;
    p.threads = 1;
    p.duration_s = 0.3;
    p.think_time_ms = 60_000.0;
    let mut opts = master_opts(&slaves);
    // The slaves get their Start messages one after the other; a long common
    // delay makes the gap between the sends irrelevant only if it is honoured.
    opts.start_delay = Duration::from_millis(400);
    let t0 = std::time::Instant::now();
    let rep = run_master(&p, &opts, Progress::hidden()).unwrap();
    assert!(rep.complete);
    assert_eq!(rep.runs[0].requests, 2);
    let stamps = srv.stats.stamps.lock().unwrap().clone();
    assert_eq!(stamps.len(), 2);
    let skew = if stamps[0] > stamps[1] {
        stamps[0] - stamps[1]
    } else {
        stamps[1] - stamps[0]
    };
    // A bound about correctness, not a figure of precision: both slaves start at the common
    // instant the master announced, not one of them a start delay (400 ms) later or early.
    // Half the delay separates the two with a margin a loaded 2-vCPU machine cannot eat (a
    // slave's thread may wait several scheduler quanta to run); how close the starts are is a
    // measurement, not an assertion.
    assert!(
        skew < Duration::from_millis(200),
        "slaves started {skew:?} apart"
    );
    // ... and not before the announced delay (less half a loopback round trip of estimate).
    for s in &stamps {
        assert!(
            *s >= t0 + Duration::from_millis(350),
            "a slave started {:?} after the master began, before the 400 ms delay",
            s.duration_since(t0)
        );
    }

    // A ramp through the master: one row per step, each run the merge of both slaves.
    let srv = TestServer::start("127.0.0.1:0");
    let slaves = [start_slave(), start_slave()];
    let mut p = plan(srv.addr, &[("/ok", 1.0)]);
    p.threads = 1;
    p.duration_s = 0.2;
    p.ramp = Some(Ramp::parse("2:4:2").unwrap());
    p.clients = 2;
    let rep = run_master(&p, &master_opts(&slaves), Progress::hidden()).unwrap();
    assert!(rep.complete);
    let steps = rep.steps.as_ref().unwrap();
    assert_eq!(
        steps.iter().map(|s| s.clients).collect::<Vec<_>>(),
        vec![2, 4]
    );
    assert_eq!(
        rep.runs.iter().map(|r| r.requests).sum::<u64>(),
        srv.requests()
    );
    for r in &rep.runs {
        assert_accounting(r);
        assert_eq!(r.slaves.iter().map(|s| s.requests).sum::<u64>(), r.requests);
    }
}
