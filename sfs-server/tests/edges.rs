//! The server's edges under attack and under pressure: a flood of unauthenticated
//! connections, the cap on them, running out of descriptors, and a reader that stops
//! reading. Memory is the server process's resident anonymous memory (`RssAnon`), read from
//! `/proc`; everything stays on 127.0.0.1 and every wait is bounded.

use std::io::Write;
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sfs_client::client::Client;
use sfs_proto::messages::{Reply, Request, ServerMsg, MAX_IO};
use sfs_proto::session;
use sfs_server::server::OUT_CAP;

use crate::util::{closed_within, data, nofile_at_least, BinServer, Env, Raw};

fn rss_kib(srv: &BinServer) -> u64 {
    edge::testing::rss_anon_kib(srv.pid()).unwrap()
}

/// One legitimate session: connect, authenticate, read a small file.
fn legit(srv: &BinServer, env: &Env) -> Duration {
    let t = Instant::now();
    let c = Client::connect(srv.addr, "alice", &env.alice).expect("a legitimate client");
    assert_eq!(c.get("small").unwrap(), b"hello");
    t.elapsed()
}

/// 1,000 connections that never send a byte and 1,000 that send half a ClientHello cost the
/// server at most 16 kB each, and a legitimate client is served during the flood within a
/// second.
#[test]
fn unauthenticated_flood_is_cheap_and_does_not_lock_out_clients() {
    const IDLE: usize = 1000;
    const HALF: usize = 1000;
    if !nofile_at_least(2 * (IDLE + HALF) as u64 + 200) {
        edge::testing::skip(
            "unauthenticated_flood_is_cheap_and_does_not_lock_out_clients",
            "cannot raise the open-file limit to hold 2,000 connections",
        );
        return;
    }
    let env = Env::new();
    std::fs::write(env.export.join("small"), b"hello").unwrap();
    let srv = BinServer::start(
        &env,
        &["--workers", "2", "--handshake-timeout-ms", "60000"],
        "flood",
    );
    legit(&srv, &env);
    std::thread::sleep(Duration::from_millis(200));
    let (fds0, rss0) = (edge::testing::open_fds(srv.pid()).unwrap(), rss_kib(&srv));
    let mut flood: Vec<TcpStream> = (0..IDLE)
        .map(|_| TcpStream::connect(srv.addr).unwrap())
        .collect();
    let hello = session::client_hello("alice", &session::fresh_nonce());
    let mut frame = (hello.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&hello);
    for _ in 0..HALF {
        let mut s = TcpStream::connect(srv.addr).unwrap();
        s.write_all(&frame[..frame.len() / 2]).unwrap();
        flood.push(s);
    }
    // Every flood connection accepted, and what they sent read.
    edge::testing::wait_fds_settle(srv.pid(), fds0 + IDLE + HALF, Duration::from_secs(30)).unwrap();
    let t = Instant::now();
    let during = legit(&srv, &env);
    let served = t.elapsed();
    let rss1 = rss_kib(&srv);
    let per_conn = rss1.saturating_sub(rss0) as f64 / (IDLE + HALF) as f64;
    eprintln!(
        "flood: {} idle + {} half-hello connections: RssAnon {rss0} -> {rss1} KiB, \
         {per_conn:.2} KiB per connection; a legitimate client served in {:.1} ms",
        IDLE,
        HALF,
        served.as_secs_f64() * 1e3
    );
    assert!(
        per_conn <= 16.0,
        "{per_conn:.1} KiB per unauthenticated connection"
    );
    assert!(
        during < Duration::from_secs(1),
        "served in {during:?} during the flood"
    );
    assert!(!srv.log().contains("refused a connection"), "under the cap");
    drop(flood);
}

/// Past `--max-unauthenticated`, new connections are closed at once, counted and logged;
/// authenticating frees a place.
#[test]
fn unauthenticated_connections_past_the_cap_are_refused() {
    let env = Env::new();
    std::fs::write(env.export.join("small"), b"hello").unwrap();
    let stats = env.dir.path().join("cap.stats.json");
    let mut srv = BinServer::start(
        &env,
        &[
            "--max-unauthenticated",
            "8",
            "--stats-json",
            stats.to_str().unwrap(),
        ],
        "cap",
    );
    let fds0 = edge::testing::open_fds(srv.pid()).unwrap();
    let held: Vec<TcpStream> = (0..8)
        .map(|_| TcpStream::connect(srv.addr).unwrap())
        .collect();
    edge::testing::wait_fds_settle(srv.pid(), fds0 + 8, Duration::from_secs(10)).unwrap();
    let mut refused = TcpStream::connect(srv.addr).unwrap();
    assert!(
        closed_within(&mut refused, Duration::from_secs(2)),
        "not refused"
    );
    assert!(srv.wait_log("refused a connection from 127.0.0.1"));
    assert!(srv
        .log()
        .contains("8 connections have not authenticated yet"));
    drop(held);
    // The places are free again once the held connections are gone.
    let t = Instant::now();
    loop {
        match Client::connect(srv.addr, "alice", &env.alice) {
            Ok(c) => {
                assert_eq!(c.get("small").unwrap(), b"hello");
                break;
            }
            Err(e) => assert!(t.elapsed() < Duration::from_secs(5), "{e}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    srv.terminate();
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    assert!(
        doc["refused_unauthenticated"].as_u64().unwrap() >= 1,
        "{doc}"
    );
    assert!(doc["runtime_stats"]["total"]["events"].as_u64().unwrap() > 0);
}

/// Out of descriptors: the connections already accepted stay, the next ones wait in the
/// backlog, and once descriptors are free the waiting client is served without any new
/// connection arriving (the failed accept consumed the listener's readiness edge; only the
/// accept loop's retry can pick the client up).
#[test]
fn accept_survives_running_out_of_descriptors() {
    let env = Env::new();
    std::fs::write(env.export.join("small"), b"hello").unwrap();
    let srv = BinServer::start(&env, &["--workers", "2"], "emfile");
    legit(&srv, &env);
    let pid = srv.pid();
    let base = edge::testing::open_fds(pid).unwrap();
    let old = edge::testing::set_nofile(pid, base as u64 + 6).unwrap();
    let held: Vec<TcpStream> = (0..12)
        .map(|_| TcpStream::connect(srv.addr).unwrap())
        .collect();
    edge::testing::wait_fds_settle(pid, base + 1, Duration::from_secs(10)).unwrap();
    let (tx, rx) = mpsc::channel();
    let (addr, key) = (srv.addr, env.alice.clone());
    std::thread::spawn(move || {
        let r = Client::connect(addr, "alice", &key).map(|c| c.get("small").map(|_| ()));
        let _ = tx.send(r.is_ok());
    });
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "served without a free descriptor?"
    );
    drop(held);
    let ok = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the waiting client was never served");
    assert!(ok, "the waiting client failed");
    assert!(srv.log().contains("accept failed (Too many open files"));
    edge::testing::set_nofile(pid, old).unwrap();
    legit(&srv, &env);
}

/// A client that requests 200 MB of READs and never reads its socket: the server stops
/// reading its requests once its output budget is spent, so its memory stays within the
/// budget; when the client reads again, every reply arrives, in order and intact.
#[test]
fn a_reader_that_stops_reading_is_held_to_its_output_cap() {
    const READS: usize = 400;
    let env = Env::new();
    let file = data(8 << 20, 21);
    std::fs::write(env.export.join("big"), &file).unwrap();
    let stats = env.dir.path().join("slow.stats.json");
    let mut srv = BinServer::start(
        &env,
        &["--workers", "2", "--stats-json", stats.to_str().unwrap()],
        "slow",
    );
    let mut r = Raw::connect(srv.addr, "alice", &env.alice);
    let fh = r.lookup("big");
    let offset = |i: usize| ((i * MAX_IO) % file.len()) as u64;
    // Warm-up: one READ, so the budget below is all the flood adds.
    assert!(matches!(
        r.call(Request::Read {
            fh: fh.clone(),
            offset: 0,
            count: MAX_IO as u32
        }),
        Ok(Reply::Read { .. })
    ));
    std::thread::sleep(Duration::from_millis(200));
    let rss0 = rss_kib(&srv);
    let mut wire = Vec::new();
    let first_xid = r.xid + 1;
    for i in 0..READS {
        wire.extend_from_slice(&r.seal(Request::Read {
            fh: fh.clone(),
            offset: offset(i),
            count: MAX_IO as u32,
        }));
    }
    r.write(&wire);
    let mut peak = rss0;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(3) {
        peak = peak.max(rss_kib(&srv));
        std::thread::sleep(Duration::from_millis(20));
    }
    let grew_kib = peak.saturating_sub(rss0);
    eprintln!(
        "stalled reader: {READS} READs of {MAX_IO} bytes asked for; RssAnon {rss0} -> peak \
         {peak} KiB (+{grew_kib} KiB; output cap {} KiB)",
        OUT_CAP / 1024
    );
    // The budget, the request bytes read before it was spent and a READ reply in the making.
    let bound = (OUT_CAP + 2 * MAX_IO + (1 << 20)) / 1024;
    assert!(
        grew_kib as usize <= bound,
        "+{grew_kib} KiB, bound {bound} KiB"
    );
    for i in 0..READS {
        match r.recv().unwrap() {
            ServerMsg::Reply {
                xid,
                result: Ok(Reply::Read { data, .. }),
            } => {
                assert_eq!(xid as usize, first_xid as usize + i);
                let o = offset(i) as usize;
                assert!(data == file[o..o + data.len()], "reply {i}");
            }
            other => panic!("reply {i}: {other:?}"),
        }
    }
    drop(r);
    srv.terminate();
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    assert!(doc["reads_paused"].as_u64().unwrap() >= 1, "{doc}");
}
