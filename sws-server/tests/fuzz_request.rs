//! Fuzzing the request path (parser, then target normalization, then cache lookup) with
//! proptest: generated valid requests, mutations of them, and arbitrary bytes.
//!
//! Properties:
//! * nothing panics;
//! * a valid request parses, and every strict prefix of it is `Partial` (so a request that
//!   arrives one byte at a time is never refused early);
//! * a malformed request is an `Error` whose status is 4xx, or `Partial` only while it is
//!   shorter than the limits (the server closes a connection that stays partial past its
//!   idle timeout with 408);
//! * a parsed target normalizes to a key that starts with `/` and has no NUL and no `.`/`..`
//!   segment, and looking it up can only find files inside the root: the cache is built from
//!   a real directory whose symlinks lead to a secret file outside it, and the targets name
//!   those symlinks, so a cache or a normalization that let a path escape would serve the
//!   secret and fail the check.

use std::path::PathBuf;
use std::sync::OnceLock;

use proptest::prelude::*;
use sws_server::cache::{Cache, CacheLimits};
use sws_server::http::{parse, Limits, Method, Parse};
use sws_server::path::{normalize_target, DocRoot};

/// The content of the file outside the document root.
const SECRET: &[u8] = b"SECRET outside the root";

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9_.-]{1,12}",
        Just("..".to_string()),
        Just(".".to_string()),
        Just("%2e%2e".to_string()),
        Just("%2E%2e%2f".to_string()),
        Just("%00".to_string()),
        Just("%zz".to_string()),
        Just("%".to_string()),
        Just("".to_string()),
        // Names in the fixture's root that lead outside it.
        Just("secret-link.txt".to_string()),
        Just("up".to_string()),
        Just("secret.txt".to_string()),
        Just("%73ecret-link.txt".to_string()),
    ]
}

fn target() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(segment(), 0..6),
        prop::option::of("[a-z=&]{0,8}"),
    )
        .prop_map(|(segs, q)| {
            let mut t = format!("/{}", segs.join("/"));
            if let Some(q) = q {
                t.push('?');
                t.push_str(&q);
            }
            t
        })
}

fn valid_request() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![Just("GET"), Just("HEAD")],
        "/[a-zA-Z0-9_./-]{0,40}",
        prop_oneof![Just("1.0"), Just("1.1")],
        prop::collection::vec(("[A-Za-z][A-Za-z0-9-]{0,15}", "[ -~]{0,30}"), 0..8),
        prop::bool::ANY,
    )
        .prop_map(|(m, t, v, hs, close)| {
            let mut s = format!("{m} {t} HTTP/{v}\r\nHost: localhost\r\n");
            for (n, val) in hs {
                let lower = n.to_ascii_lowercase();
                if ["host", "content-length", "transfer-encoding", "connection"]
                    .contains(&lower.as_str())
                {
                    continue;
                }
                s.push_str(&format!("{n}: {}\r\n", val.trim()));
            }
            if close {
                s.push_str("Connection: close\r\n");
            }
            s.push_str("\r\n");
            s.into_bytes()
        })
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
    LongLine(usize),
    HeaderFlood(usize),
    Method(String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
        (8_000usize..20_000).prop_map(Mutation::LongLine),
        (10usize..200).prop_map(Mutation::HeaderFlood),
        "[A-Z]{1,10}".prop_map(Mutation::Method),
    ]
}

fn apply(mut req: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let len = req.len().max(1);
        match m {
            Mutation::Flip(i, b) if !req.is_empty() => req[i % len] = *b,
            Mutation::Insert(i, b) => req.insert(i % (req.len() + 1), *b),
            Mutation::Delete(i) if !req.is_empty() => {
                req.remove(i % len);
            }
            Mutation::Truncate(i) => req.truncate(i % len),
            Mutation::LongLine(n) => {
                let at = req.iter().position(|&b| b == b' ').map_or(0, |p| p + 1);
                req.splice(at..at, std::iter::repeat(b'a').take(*n));
            }
            Mutation::HeaderFlood(n) => {
                let at = req
                    .windows(2)
                    .position(|w| w == b"\r\n")
                    .map_or(0, |p| p + 2);
                let flood: Vec<u8> = (0..*n)
                    .flat_map(|i| format!("X-F{i}: {}\r\n", "z".repeat(100)).into_bytes())
                    .collect();
                req.splice(at..at, flood);
            }
            Mutation::Method(m) => {
                let end = req.iter().position(|&b| b == b' ').unwrap_or(0);
                req.splice(0..end, m.bytes());
            }
            _ => {}
        }
    }
    req
}

/// The root-escape property, on the key alone.
fn check_key(key: &[u8]) {
    assert!(key.starts_with(b"/"));
    assert!(!key.contains(&0));
    for seg in key.split(|&b| b == b'/').skip(1) {
        assert!(
            seg != b"." && seg != b"..",
            "{:?}",
            String::from_utf8_lossy(key)
        );
    }
    if key.len() > 1 {
        assert!(!key.ends_with(b"/") && !key.windows(2).any(|w| w == b"//"));
    }
}

/// Runs the full request path on `input` and checks the properties that hold for any input.
fn check_any(input: &[u8], limits: &Limits, cache: &Cache) -> Parse {
    let out = parse(input, limits);
    match &out {
        Parse::Complete(r) => {
            assert!(r.consumed <= input.len() && r.consumed > 0);
            assert!(r.target.end <= input.len());
            if let Ok(key) = normalize_target(&input[r.target.clone()]) {
                check_key(&key);
                if let Some(v) = cache.lookup(&key) {
                    let body = v.get(Method::Get, true).body.as_deref().unwrap_or(&[]);
                    assert!(
                        body != SECRET,
                        "{:?} served the file outside the root",
                        String::from_utf8_lossy(&key)
                    );
                }
            }
        }
        Parse::Error(e) => assert!((400..500).contains(&e.status())),
        Parse::Partial => {
            assert!(
                input.len() <= limits.max_request_bytes(),
                "partial past every limit: {} bytes",
                input.len()
            )
        }
    }
    out
}

/// A document root on disk beside a secret file, with symlinks that try to leave it, and the
/// cache the server would build from it (once per test binary).
fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("sws-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let root: PathBuf = base.join("www");
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::write(root.join("index.html"), b"home").unwrap();
        std::fs::write(root.join("a/b.txt"), b"b").unwrap();
        std::fs::write(base.join("secret.txt"), SECRET).unwrap();
        std::os::unix::fs::symlink(base.join("secret.txt"), root.join("secret-link.txt")).unwrap();
        std::os::unix::fs::symlink(&base, root.join("up")).unwrap();
        let (cache, _) =
            Cache::build(&DocRoot::new(&root).unwrap(), CacheLimits::default()).unwrap();
        let _ = std::fs::remove_dir_all(&base);
        cache
    })
}

#[test]
fn the_symlinks_out_of_the_root_are_not_served() {
    for t in [
        "/secret-link.txt",
        "/up/secret.txt",
        "/up/www/index.html",
        "/../secret.txt",
    ] {
        let req = format!("GET {t} HTTP/1.1\r\nHost: x\r\n\r\n");
        check_any(req.as_bytes(), &Limits::default(), cache());
    }
    // The fixture is what the fuzzing relies on: files inside are served.
    assert!(cache().lookup(b"/a/b.txt").is_some());
    assert!(cache().lookup(b"/").is_some());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn valid_requests_parse_and_prefixes_are_partial(req in valid_request()) {
        let limits = Limits::default();
        let c = cache();
        match check_any(&req, &limits, c) {
            Parse::Complete(r) => prop_assert_eq!(r.consumed, req.len()),
            other => prop_assert!(false, "valid request refused: {:?} {:?}", other, String::from_utf8_lossy(&req)),
        }
        for i in 0..req.len() {
            prop_assert_eq!(parse(&req[..i], &limits), Parse::Partial, "prefix {}", i);
        }
    }

    #[test]
    fn mutated_requests_never_panic(req in valid_request(), muts in prop::collection::vec(mutation(), 1..4)) {
        let input = apply(req, &muts);
        check_any(&input, &Limits::default(), cache());
    }

    #[test]
    fn arbitrary_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..600)) {
        check_any(&input, &Limits::default(), cache());
    }

    #[test]
    fn traversal_targets_stay_in_root(t in target()) {
        let req = format!("GET {t} HTTP/1.1\r\nHost: x\r\n\r\n");
        check_any(req.as_bytes(), &Limits::default(), cache());
        if let Ok(key) = normalize_target(t.as_bytes()) {
            check_key(&key);
        }
    }
}

#[test]
fn pipelined_mutations_are_answered_or_closed() {
    // A stream of requests processed as the server does: parse, consume, repeat. Each step
    // must make progress or stop with an error; it never loops.
    let limits = Limits::default();
    let c = cache();
    let mut stream = Vec::new();
    for i in 0..50 {
        stream.extend_from_slice(
            format!("GET /index.html?{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        );
    }
    stream.extend_from_slice(b"GET /../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\nBROKEN\x00\r\n\r\n");
    let mut off = 0;
    let mut served = 0;
    loop {
        match check_any(&stream[off..], &limits, c) {
            Parse::Complete(r) => {
                off += r.consumed;
                served += 1;
            }
            Parse::Error(e) => {
                assert_eq!(e.status(), 400);
                break;
            }
            Parse::Partial => panic!("stream ended in a partial request"),
        }
    }
    assert_eq!(served, 51); // the traversal request parses; normalization refuses it (400)
    assert!(normalize_target(b"/../etc/passwd").is_err());
}
