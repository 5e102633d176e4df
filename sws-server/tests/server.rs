//! Integration tests over real loopback sockets, against the `sws-server` binary, in three
//! configurations: colored on Mely with all stealing heuristics, colored on libasync without
//! stealing, and N-copy (two single-worker processes on one SO_REUSEPORT port).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

const ALL_HANDLERS: [&str; 9] = [
    "Epoll",
    "Accept",
    "ReadRequest",
    "RegisterFdInEpoll",
    "ParseRequest",
    "CheckInCache",
    "WriteResponse",
    "Close",
    "DecClientAccepted",
];

fn basic_and_errors(cfg: Config) {
    let srv = Server::start(cfg, 5000, 5000);
    // 200, Content-Type, exact body.
    let r = fetch(&srv, &get("/1k.txt"));
    assert_eq!(r.status, 200);
    assert_eq!(r.body, srv.root.file("1k.txt"));
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("content-length"), Some("1024"));
    assert_eq!(r.header("date").map(str::len), Some(29));
    assert_eq!(fetch(&srv, &get("/")).body, srv.root.file("index.html"));
    assert_eq!(
        fetch(&srv, &get("/sub/style.css")).header("content-type"),
        Some("text/css")
    );
    assert_eq!(fetch(&srv, &get("/hello%20world.txt")).body, b"spaces\n");
    assert_eq!(fetch(&srv, &get("/1k.txt?query=1")).status, 200);

    // HEAD: the headers of GET, no body; the connection stays usable.
    let mut s = srv.connect();
    let mut rd = Reader::new();
    s.write_all(&head("/1k.txt")).unwrap();
    let h = rd.read(&mut s, true).unwrap();
    assert_eq!((h.status, h.header("content-length")), (200, Some("1024")));
    s.write_all(&get("/sub/style.css")).unwrap();
    let g = rd.read(&mut s, false).unwrap();
    assert_eq!(g.body, b"body{}\n", "HEAD must not have sent a body");

    // 404 keeps the connection alive.
    let mut s = srv.connect();
    let mut rd = Reader::new();
    s.write_all(&get("/missing.html")).unwrap();
    let r = rd.read(&mut s, false).unwrap();
    assert_eq!(r.status, 404);
    assert!(!r.closes());
    s.write_all(&get("/1k.txt")).unwrap();
    assert_eq!(rd.read(&mut s, false).unwrap().status, 200);

    // 405 with Allow, then close.
    let mut s = srv.connect();
    let mut rd = Reader::new();
    s.write_all(b"POST /1k.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        .unwrap();
    let r = rd.read(&mut s, false).unwrap();
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    assert!(r.closes());
    assert!(rd.closed(&mut s, Duration::from_secs(5)));

    // 400: garbage, missing Host, bad escape.
    for raw in [
        &b"\x16\x03\x01 hello\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        let mut s = srv.connect();
        let mut rd = Reader::new();
        s.write_all(raw).unwrap();
        let r = rd.read(&mut s, false).unwrap();
        assert_eq!(r.status, 400, "{:?}", String::from_utf8_lossy(raw));
        assert!(rd.closed(&mut s, Duration::from_secs(5)));
    }

    // 414: a request line over 8 KiB.
    let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(10_000));
    assert_eq!(fetch(&srv, long.as_bytes()).status, 414);

    // 431: a header flood, sent while the server answers.
    let mut s = srv.connect();
    let mut flood = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..2000 {
        flood.extend_from_slice(format!("X-Flood-{i}: {}\r\n", "v".repeat(50)).as_bytes());
    }
    flood.extend_from_slice(b"\r\n");
    let _ = s.write_all(&flood); // the server may close before everything is sent
    let r = Reader::new().read(&mut s, false).unwrap();
    assert_eq!(r.status, 431);
    // Too many (small) headers: also 431.
    let mut many = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..100 {
        many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    assert_eq!(fetch(&srv, &many).status, 431);

    let stats = srv.stop();
    assert_eq!(stats["requests_served"].as_u64().unwrap(), 8, "{stats}");
    let errors = &stats["errors"];
    for (k, min) in [
        ("not_found_404", 1),
        ("method_not_allowed_405", 1),
        ("bad_request_400", 3),
        ("uri_too_long_414", 1),
        ("headers_too_large_431", 2),
    ] {
        assert!(errors[k].as_u64().unwrap() >= min, "{k}: {errors}");
    }
    // The runtime counters, per handler, are in the document.
    let rs = &stats["runtime_stats"];
    let names: Vec<&str> = rs["handlers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    for h in ALL_HANDLERS {
        assert!(names.contains(&h), "handler {h} missing from {names:?}");
    }
    let events = |n: &str| {
        rs["handlers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["name"] == n)
            .unwrap()["events"]
            .as_u64()
            .unwrap()
    };
    for h in ALL_HANDLERS {
        assert!(events(h) > 0, "handler {h} never ran");
    }
    assert!(rs["total"]["steals"].is_u64());
    if cfg.mode == "ncopy" {
        assert_eq!(stats["processes"], 2);
        assert_eq!(rs["workers"].as_array().unwrap().len(), 2);
    }
}

fn path_traversal(cfg: Config) {
    let srv = Server::start(cfg, 5000, 5000);
    let attempts = [
        "/../secret.txt",
        "/../../../../etc/passwd",
        "/sub/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/%252e%252e/secret.txt",
        "/secret-link.txt",
        "/up/secret.txt",
        "/up/www/1k.txt",
        "/1k.txt%00.html",
        "/%00",
        "/./../secret.txt",
        "//../secret.txt",
    ];
    for a in attempts {
        let raw = format!("GET {a} HTTP/1.1\r\nHost: x\r\n\r\n");
        let r = fetch(&srv, raw.as_bytes());
        assert!(r.status == 400 || r.status == 404, "{a}: {}", r.status);
        assert!(
            !r.body.windows(SECRET.len()).any(|w| w == SECRET),
            "{a} leaked the secret"
        );
    }
    // A raw NUL byte in the target is refused by the parser.
    let r = fetch(&srv, b"GET /1k.txt\x00 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 400);
    // Harmless dot segments inside the root still work.
    assert_eq!(fetch(&srv, &get("/sub/../1k.txt")).status, 200);
    assert_eq!(fetch(&srv, &get("/./sub/./style.css")).status, 200);
}

fn keep_alive_and_pipelining(cfg: Config) {
    let srv = Server::start(cfg, 5000, 5000);
    let k = srv.root.file("1k.txt");
    // 150 requests, one after the other, on one connection.
    let mut s = srv.connect();
    let mut rd = Reader::new();
    for i in 0..150 {
        let (raw, is_head) = if i % 10 == 9 {
            (head("/1k.txt"), true)
        } else {
            (get("/1k.txt"), false)
        };
        s.write_all(&raw).unwrap();
        let r = rd.read(&mut s, is_head).unwrap();
        assert_eq!(r.status, 200, "request {i}");
        assert!(!r.closes());
        if !is_head {
            assert_eq!(r.body, k);
        }
    }
    // Pipelining: 40 requests in one write, answered in order.
    let paths = ["/1k.txt", "/index.html", "/nope", "/sub/style.css"];
    let mut batch = Vec::new();
    let mut expect = Vec::new();
    for i in 0..40 {
        let p = paths[i % paths.len()];
        let is_head = i % 7 == 3;
        batch.extend_from_slice(&if is_head { head(p) } else { get(p) });
        expect.push((p, is_head));
    }
    s.write_all(&batch).unwrap();
    for (i, (p, is_head)) in expect.into_iter().enumerate() {
        let r = rd.read(&mut s, is_head).unwrap();
        if p == "/nope" {
            assert_eq!(r.status, 404, "pipelined {i}");
        } else {
            assert_eq!(r.status, 200, "pipelined {i}");
            if !is_head {
                assert_eq!(
                    r.body,
                    srv.root.file(p.trim_start_matches('/')),
                    "pipelined {i} {p}"
                );
            }
        }
    }
    // Connection: close is honoured, after the response.
    s.write_all(b"GET /1k.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let r = rd.read(&mut s, false).unwrap();
    assert!(r.closes());
    assert!(rd.closed(&mut s, Duration::from_secs(5)));
    // HTTP/1.0 without keep-alive closes too.
    let mut s = srv.connect();
    s.write_all(b"GET /1k.txt HTTP/1.0\r\n\r\n").unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    assert!(all.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert!(all.ends_with(&k));
}

fn partial_io(cfg: Config) {
    let srv = Server::start(cfg, 5000, 5000);
    // A request split into one-byte writes.
    let mut s = srv.connect();
    let raw = b"GET /sub/style.css HTTP/1.1\r\nHost: localhost\r\nUser-Agent: one-byte\r\n\r\n";
    for b in raw.iter() {
        s.write_all(std::slice::from_ref(b)).unwrap();
        std::thread::sleep(Duration::from_micros(300));
    }
    let r = Reader::new().read(&mut s, false).unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"body{}\n"[..]));

    // The server stops reading at a short read; what arrives afterwards on its own must still be
    // seen: a request in two writes, its answer, then a lone FIN, which must close the
    // connection (well before the 5 s idle timeout).
    let mut s = srv.connect();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.write_all(b"GET /1k.txt HTTP/1.1\r\nHost: x\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(30));
    s.write_all(b"\r\n").unwrap();
    let mut rd = Reader::new();
    assert_eq!(rd.read(&mut s, false).unwrap().status, 200);
    std::thread::sleep(Duration::from_millis(30));
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let t = Instant::now();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest)
        .expect("the server closes after a lone FIN");
    assert!(rest.is_empty() && t.elapsed() < Duration::from_secs(2));
    // A request and the FIN together (one readiness event that reports the closed read side):
    // answered, then closed, without waiting for the idle timeout.
    for _ in 0..20 {
        let mut s = srv.connect();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s.write_all(&get("/1k.txt")).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let t = Instant::now();
        let mut all = Vec::new();
        s.read_to_end(&mut all)
            .expect("answered and closed after request + FIN");
        assert!(all.starts_with(b"HTTP/1.1 200 OK\r\n"));
        assert!(t.elapsed() < Duration::from_secs(2));
    }

    // A slow reader: 4 x 2 MiB pipelined, read 64 KiB at a time with pauses.
    let big = srv.root.file("big.bin");
    let mut s = srv.connect();
    let mut batch = Vec::new();
    for _ in 0..4 {
        batch.extend_from_slice(&get("/big.bin"));
    }
    s.write_all(&batch).unwrap();
    let mut rd = Reader::new();
    let start = Instant::now();
    struct Slow<'a>(&'a mut TcpStream, usize);
    impl Read for Slow<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.1 += 1;
            if self.1 % 8 == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
            let n = buf.len().min(64 * 1024);
            self.0.read(&mut buf[..n])
        }
    }
    for i in 0..4 {
        let r = rd.read(&mut Slow(&mut s, 0), false).unwrap();
        assert_eq!(r.status, 200);
        assert!(r.body == big, "big response {i} corrupted");
    }
    assert!(start.elapsed() < Duration::from_secs(30));

    // A client that vanishes mid-response (reset with unread data): the server survives.
    for _ in 0..5 {
        let mut s = srv.connect();
        let mut batch = Vec::new();
        for _ in 0..8 {
            batch.extend_from_slice(&get("/big.bin"));
        }
        s.write_all(&batch).unwrap();
        let mut tmp = [0u8; 1000];
        s.read_exact(&mut tmp).unwrap();
        let sock = socket2::SockRef::from(&s);
        sock.set_linger(Some(Duration::ZERO)).unwrap(); // close sends RST
        drop(s);
    }
    let r = fetch(&srv, &get("/1k.txt"));
    assert_eq!(r.status, 200);
    let stats = srv.stop();
    assert!(
        stats["client_gone"].as_u64().unwrap() >= 1,
        "{}",
        stats["client_gone"]
    );
}

fn many_connections(cfg: Config) {
    edge::limits::raise_nofile().unwrap();
    let srv = Server::start(cfg, 5000, 20_000);
    let k = srv.root.file("1k.txt");
    let mut conns: Vec<TcpStream> = (0..1000).map(|_| srv.connect()).collect();
    for s in conns.iter_mut() {
        s.write_all(&get("/1k.txt")).unwrap();
    }
    for (i, s) in conns.iter_mut().enumerate() {
        let r = Reader::new()
            .read(s, false)
            .unwrap_or_else(|e| panic!("connection {i}: {e}"));
        assert_eq!(r.status, 200);
        assert_eq!(r.body, k);
    }
    // A second round on the same 1,000 connections (all kept alive).
    for s in conns.iter_mut() {
        s.write_all(&head("/index.html")).unwrap();
    }
    for s in conns.iter_mut() {
        assert_eq!(Reader::new().read(s, true).unwrap().status, 200);
    }
    drop(conns);
    let stats = srv.stop();
    assert!(stats["connections_accepted"].as_u64().unwrap() >= 1000);
    assert_eq!(stats["requests_served"].as_u64().unwrap(), 2000);
}

fn limits_and_timeouts(cfg: Config) {
    // Two clients at most (ncopy: one per process), 600 ms idle timeout.
    let srv = Server::start(cfg, 2, 600);
    let mut held = Vec::new();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let mut s = srv.connect();
        s.write_all(&get("/1k.txt")).unwrap();
        let r = Reader::new().read(&mut s, false).unwrap();
        statuses.push(r.status);
        if r.status == 503 {
            assert!(r.closes());
        }
        held.push(s);
    }
    assert!(statuses.contains(&503), "{statuses:?}");
    assert!(statuses.contains(&200), "{statuses:?}");
    drop(held);
    // Slots are given back (DecClientAccepted): soon every new client is served again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = fetch(&srv, &get("/1k.txt"));
        if r.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "slots never freed");
        std::thread::sleep(Duration::from_millis(50));
    }
    // 408: a partial request, then silence.
    std::thread::sleep(Duration::from_millis(100));
    let mut s = srv.connect();
    s.write_all(b"GET /1k.txt HTTP/1.1\r\nHo").unwrap();
    let t = Instant::now();
    let mut rd = Reader::new();
    let r = rd.read(&mut s, false).unwrap();
    assert_eq!(r.status, 408);
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "408 too early: {:?}",
        t.elapsed()
    );
    assert!(rd.closed(&mut s, Duration::from_secs(5)));
    drop(s);
    // Slowloris: a head trickling in one byte per 100 ms (never idle) still gets 408 once
    // the request has taken longer than the timeout.
    let slowloris = || {
        let mut s = srv.connect();
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let t = Instant::now();
        let mut got = Vec::new();
        let trickle = b"GET /1k.txt HTTP/1.1\r\nHost: x\r\nX-Slow: ";
        for i in 0.. {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "no 408 for a trickled request"
            );
            let b = trickle.get(i).copied().unwrap_or(b'z');
            if s.write_all(&[b]).is_err() {
                break;
            }
            let mut tmp = [0u8; 1024];
            match s.read(&mut tmp) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&tmp[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
            if got.len() >= 12 {
                break;
            }
        }
        (got, t.elapsed())
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let (got, took) = loop {
        let (got, took) = slowloris();
        // The slot of the connection above may still be lingering (ncopy: one per process).
        if !got.starts_with(b"HTTP/1.1 503") || Instant::now() > deadline {
            break (got, took);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        got.starts_with(b"HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    assert!(
        took >= Duration::from_millis(500),
        "408 too early: {took:?}"
    );
    // 408 also for a connection that never sends anything. (Its slot may still be taken
    // for a moment by the connection above, lingering: retry a 503.)
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut s = srv.connect();
        let r = Reader::new().read(&mut s, false).unwrap();
        if r.status == 408 {
            break;
        }
        assert_eq!(r.status, 503);
        assert!(Instant::now() < deadline, "slot never freed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let stats = srv.stop();
    assert!(stats["errors"]["service_unavailable_503"].as_u64().unwrap() >= 1);
    assert!(stats["errors"]["request_timeout_408"].as_u64().unwrap() >= 2);
}

macro_rules! suite {
    ($name:ident, $mode:literal, $runtime:literal, $stealing:literal) => {
        mod $name {
            use super::*;
            const CFG: Config = Config {
                mode: $mode,
                runtime: $runtime,
                stealing: $stealing,
                workers: 2,
            };
            #[test]
            fn basic_and_errors() {
                super::basic_and_errors(CFG)
            }
            #[test]
            fn path_traversal() {
                super::path_traversal(CFG)
            }
            #[test]
            fn keep_alive_and_pipelining() {
                super::keep_alive_and_pipelining(CFG)
            }
            #[test]
            fn partial_io() {
                super::partial_io(CFG)
            }
            #[test]
            fn many_connections() {
                super::many_connections(CFG)
            }
            #[test]
            fn limits_and_timeouts() {
                super::limits_and_timeouts(CFG)
            }
        }
    };
}

suite!(colored_mely_all, "colored", "mely", "all");
suite!(colored_libasync_off, "colored", "libasync", "off");
suite!(colored_libasync_base, "colored", "libasync", "base");
suite!(ncopy_mely, "ncopy", "mely", "off");

#[test]
fn libasync_rejects_mely_policies() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sws-server"))
        .args([
            "--root",
            "/",
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "1",
            "--runtime",
            "libasync",
            "--stealing",
            "all",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("libasync"));
}

/// End-to-end fuzz: malformed requests over real sockets are answered with a status below
/// 500 (4xx for malformed ones; 200/404 when a mutation left the request valid) or the
/// connection is closed, never left hanging; the server stays healthy throughout.
#[test]
fn malformed_requests_over_sockets() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config as PtConfig, TestRunner};
    let srv = Server::start(
        Config {
            mode: "colored",
            runtime: "mely",
            stealing: "all",
            workers: 2,
        },
        5000,
        5000,
    );
    let base = prop_oneof![
        Just(b"GET /1k.txt HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        Just(b"HEAD /index.html HTTP/1.0\r\n\r\n".to_vec()),
        Just(b"GET /sub/../1k.txt?a=b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec()),
    ];
    let edits = prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 0..6);
    let strategy = (base, edits, prop::collection::vec(any::<u8>(), 0..64));
    let mut runner = TestRunner::new(PtConfig {
        cases: 150,
        failure_persistence: None,
        ..PtConfig::default()
    });
    runner
        .run(&strategy, |(mut req, edits, tail)| {
            for (i, b, op) in edits {
                let n = req.len().max(1);
                match op {
                    0 => req[i % n] = b,
                    1 => req.insert(i % (req.len() + 1), b),
                    _ => {
                        req.remove(i % n);
                    }
                }
            }
            req.extend_from_slice(&tail);
            let mut s = srv.connect();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let _ = s.write_all(&req);
            let _ = s.shutdown(std::net::Shutdown::Write);
            let mut got = Vec::new();
            let r = s.read_to_end(&mut got);
            if let Err(e) = &r {
                prop_assert!(
                    e.kind() == std::io::ErrorKind::ConnectionReset,
                    "no answer and no close for {:?}: {e}",
                    String::from_utf8_lossy(&req)
                );
            }
            // The whole stream is responses, one per request the server's parser finds (HEAD
            // ones without a body), each with a status below 500: nothing is left unchecked.
            let methods = request_methods(&req);
            let mut rd = Reader { buf: got };
            let mut n = 0;
            while !rd.buf.is_empty() {
                let head = methods.get(n) == Some(&sws_server::http::Method::Head);
                let mut empty: &[u8] = &[];
                let resp = rd.read(&mut empty, head).map_err(|e| {
                    TestCaseError::fail(format!(
                        "response {n} does not parse ({e}) for {:?}",
                        String::from_utf8_lossy(&req)
                    ))
                })?;
                prop_assert!(
                    resp.status < 500,
                    "{} for {:?}",
                    resp.status,
                    String::from_utf8_lossy(&req)
                );
                n += 1;
            }
            prop_assert!(
                n <= methods.len(),
                "{n} responses to {} requests",
                methods.len()
            );
            Ok(())
        })
        .unwrap();
    assert_eq!(fetch(&srv, &get("/1k.txt")).status, 200);
    let stats = srv.stop();
    assert!(stats["errors"]["bad_request_400"].as_u64().unwrap() > 0);
}

/// The methods of the requests the server's parser finds in `input`, in order, as the server
/// answers them: each complete request, then a refused one (answered as GET), then nothing.
fn request_methods(input: &[u8]) -> Vec<sws_server::http::Method> {
    use sws_server::http::{parse, Limits, Method, Parse};
    let mut out = Vec::new();
    let mut off = 0;
    loop {
        match parse(&input[off..], &Limits::default()) {
            Parse::Complete(r) => {
                out.push(r.method);
                off += r.consumed;
            }
            Parse::Error(_) => {
                out.push(Method::Get);
                return out;
            }
            Parse::Partial => return out,
        }
    }
}

/// SIGINT stops an N-copy server: the parent forwards it, every child exits and is reaped,
/// and the summed statistics count every child's requests.
#[test]
fn sigint_stops_ncopy_parent_and_children() {
    let srv = Server::start(
        Config {
            mode: "ncopy",
            runtime: "libasync",
            stealing: "off",
            workers: 2,
        },
        100,
        5000,
    );
    for _ in 0..20 {
        assert_eq!(fetch(&srv, &get("/1k.txt")).status, 200);
    }
    let stats = srv.stop_with(libc::SIGINT);
    assert_eq!(stats["mode"], "ncopy");
    assert_eq!(stats["requests_served"], 20);
    let children = stats["children"].as_array().unwrap();
    assert_eq!(children.len(), 2);
    let per_child: u64 = children
        .iter()
        .map(|c| c["requests_served"].as_u64().unwrap())
        .sum();
    assert_eq!(per_child, 20);
    for c in children {
        let pid = c["pid"].as_u64().unwrap();
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "child {pid} still exists"
        );
    }
}

/// SIGINT stops a colored server cleanly, with its statistics written.
#[test]
fn sigint_stops_colored() {
    let srv = Server::start(
        Config {
            mode: "colored",
            runtime: "mely",
            stealing: "time-left",
            workers: 2,
        },
        100,
        5000,
    );
    // The Date header is refreshed once a second (prebuilt responses, patched Date slot).
    let d1 = fetch(&srv, &head("/1k.txt"));
    assert_eq!(d1.status, 200);
    std::thread::sleep(Duration::from_millis(1100));
    let d2 = fetch(&srv, &head("/1k.txt"));
    assert_ne!(d1.header("date"), d2.header("date"));
    assert!(d2.header("date").unwrap().ends_with(" GMT"));
    let stats = srv.stop_with(libc::SIGINT);
    assert_eq!(stats["requests_served"], 2);
    assert_eq!(stats["runtime_stats"]["stealing"], "time-left");
}

/// The connection handlers' stealing penalty reaches the runtime (its per-handler statistics),
/// by default and from `--conn-penalty`; the other handlers keep penalty 1.
#[test]
fn conn_penalty_reaches_the_runtime() {
    let cfg = Config {
        mode: "colored",
        runtime: "mely",
        stealing: "all",
        workers: 2,
    };
    for (extra, want) in [(&[][..], 1000), (&["--conn-penalty", "7"][..], 7)] {
        let srv = Server::start_args(cfg, 100, 5000, extra);
        assert_eq!(fetch(&srv, &get("/1k.txt")).status, 200);
        let stats = srv.stop();
        let handlers = stats["runtime_stats"]["handlers"]
            .as_array()
            .expect("per-handler statistics");
        let penalty = |name: &str| {
            handlers
                .iter()
                .find(|h| h["name"] == name)
                .unwrap_or_else(|| panic!("no handler {name}"))["penalty"]
                .as_u64()
                .unwrap()
        };
        for name in [
            "ReadRequest",
            "ParseRequest",
            "CheckInCache",
            "WriteResponse",
            "Close",
            "IdleTimeout",
        ] {
            assert_eq!(penalty(name), want, "{name} with {extra:?}");
        }
        for name in ["Epoll", "Accept", "RegisterFdInEpoll", "DecClientAccepted"] {
            assert_eq!(penalty(name), 1, "{name} with {extra:?}");
        }
    }
}

/// `--steal-amount` is recorded in the statistics (the paper's `one` by default) and forwarded
/// by an N-copy parent to every child.
#[test]
fn steal_amount_is_recorded_and_forwarded() {
    let colored = Config {
        mode: "colored",
        runtime: "mely",
        stealing: "all",
        workers: 2,
    };
    let ncopy = Config {
        mode: "ncopy",
        ..colored
    };
    for (cfg, extra, want) in [
        (colored, &[][..], "one"),
        (colored, &["--steal-amount", "half"][..], "half"),
        (ncopy, &["--steal-amount", "half"][..], "half"),
    ] {
        let srv = Server::start_args(cfg, 100, 5000, extra);
        assert_eq!(fetch(&srv, &get("/1k.txt")).status, 200);
        let stats = srv.stop();
        if cfg.mode == "ncopy" {
            let children = stats["children"].as_array().expect("children");
            assert_eq!(children.len(), 2);
            for c in children {
                assert_eq!(c["steal_amount"], want, "{c}");
            }
        } else {
            assert_eq!(stats["steal_amount"], want, "{extra:?}: {stats}");
        }
    }
}

/// When an N-copy child dies, the parent stops the other children and exits with an error
/// instead of serving on with part of its capacity.
#[test]
fn ncopy_parent_exits_when_a_child_dies() {
    let srv = Server::start(
        Config {
            mode: "ncopy",
            runtime: "mely",
            stealing: "off",
            workers: 2,
        },
        100,
        5000,
    );
    let pid = srv.pid();
    let children: Vec<u32> = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(children.len(), 2, "{children:?}");
    // SAFETY: kill(2) has no memory-safety preconditions; the pid was just listed by /proc as
    // a child of the server we started, which only reaps its children when they exit.
    unsafe {
        libc::kill(children[0] as libc::pid_t, libc::SIGKILL);
    }
    assert_eq!(
        srv.wait_exit(Duration::from_secs(20)),
        Some(false),
        "the parent must exit with an error"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{}", children[1])).exists() {
        assert!(
            Instant::now() < deadline,
            "the surviving child was not stopped"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Out of descriptors: the server keeps its accepted clients, the next ones wait in the
/// backlog, and once descriptors are free again the waiting client is served without any new
/// connection arriving (the readiness edge of the listener was consumed by the failed accept,
/// so only the retry can pick it up).
#[test]
fn accept_survives_running_out_of_descriptors() {
    let srv = Server::start(
        Config {
            mode: "colored",
            runtime: "mely",
            stealing: "all",
            workers: 2,
        },
        5000,
        30_000,
    );
    assert_eq!(fetch(&srv, &get("/1k.txt")).status, 200);
    let pid = srv.pid();
    let base = edge::testing::open_fds(pid).unwrap() as u64;
    let old = edge::testing::set_nofile(pid, base + 6).unwrap();
    let held: Vec<TcpStream> = (0..12).map(|_| srv.connect()).collect();
    edge::testing::wait_fds_settle(pid, base as usize + 1, Duration::from_secs(10)).unwrap();
    // This client waits in the backlog while the server cannot accept.
    let mut waiting = srv.connect();
    waiting.write_all(&get("/1k.txt")).unwrap();
    waiting
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut b = [0u8; 1];
    assert!(
        waiting.read(&mut b).is_err(),
        "served without a free descriptor?"
    );
    drop(held);
    waiting.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let t = Instant::now();
    let r = Reader::new()
        .read(&mut waiting, false)
        .expect("the waiting client is served");
    assert_eq!(r.status, 200);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    edge::testing::set_nofile(pid, old).unwrap();
    assert_eq!(fetch(&srv, &get("/1k.txt")).status, 200);
    let stats = srv.stop();
    assert!(stats["accept_errors"].as_u64().unwrap() >= 1, "{stats}");
}
