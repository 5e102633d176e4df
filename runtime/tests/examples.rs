//! The examples in `examples/` run as their docs say: each is started as a process (the binary
//! `cargo test` builds beside the tests), on a port the system picks, and used over loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

/// A running example; killed when dropped.
struct Example {
    child: Child,
    /// Kept open: the examples serve until their standard input closes.
    stdin: Option<ChildStdin>,
    addr: String,
}

impl Example {
    /// Start example `name` with `workers` workers and read the address it listens on.
    fn start(name: &str, workers: usize) -> Example {
        // Examples are built into `target/<profile>/examples/`, beside `deps/` where this test
        // binary runs from.
        let exe = std::env::current_exe().expect("test binary path");
        let dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("target/<profile>/deps");
        let bin: PathBuf = dir.join("examples").join(name);
        assert!(
            bin.exists(),
            "{} is missing: `cargo test` builds the examples (`cargo build --examples` does too)",
            bin.display()
        );
        let mut child = Command::new(&bin)
            .args(["127.0.0.1:0", &workers.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let stdin = child.stdin.take();
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the listening line");
        let addr = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("{name} printed {line:?}"))
            .trim()
            .to_string();
        Example { child, stdin, addr }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(&self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    /// Close standard input (the examples' stop signal) and wait for a clean exit.
    fn stop(mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "exit status {status}");
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Echo: eight clients at once, each gets exactly its own bytes back, several times.
#[test]
fn echo_returns_each_clients_bytes() {
    let ex = Example::start("echo", 2);
    std::thread::scope(|s| {
        for c in 0..8u8 {
            let ex = &ex;
            s.spawn(move || {
                let mut conn = ex.connect();
                for round in 0..20u32 {
                    let msg: Vec<u8> = (0..1000u32).map(|i| (i as u8) ^ c ^ round as u8).collect();
                    conn.write_all(&msg).unwrap();
                    let mut back = vec![0u8; msg.len()];
                    conn.read_exact(&mut back).unwrap();
                    assert_eq!(back, msg, "client {c} round {round}");
                }
            });
        }
    });
    ex.stop();
}

/// Send `lines` and read one reply line per request line.
fn ask(conn: &mut TcpStream, reader: &mut BufReader<TcpStream>, lines: &[String]) -> Vec<String> {
    let mut req = String::new();
    for l in lines {
        req.push_str(l);
        req.push('\n');
    }
    conn.write_all(req.as_bytes()).unwrap();
    lines
        .iter()
        .map(|_| {
            let mut r = String::new();
            reader.read_line(&mut r).unwrap();
            r.trim_end().to_string()
        })
        .collect()
}

/// Tally: concurrent clients adding to shared names through every core see one set of totals;
/// replies come back in request order; malformed lines are answered `error`.
#[test]
fn tally_keeps_one_total_across_cores() {
    let ex = Example::start("tally", 2);
    const CLIENTS: usize = 8;
    const ADDS: usize = 200;
    std::thread::scope(|s| {
        for c in 0..CLIENTS {
            let ex = &ex;
            s.spawn(move || {
                let mut conn = ex.connect();
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                // Pipelined: 50 requests per write, answered in order.
                for chunk in 0..ADDS / 50 {
                    let lines: Vec<String> = (0..50)
                        .map(|i| format!("add n{} 1", (chunk * 50 + i) % 4))
                        .collect();
                    for (l, r) in lines.iter().zip(ask(&mut conn, &mut reader, &lines)) {
                        let name = l.split(' ').nth(1).unwrap();
                        let total: i64 = r
                            .strip_prefix(&format!("{name} "))
                            .unwrap_or_else(|| panic!("client {c}: {l:?} answered {r:?}"))
                            .parse()
                            .unwrap();
                        assert!(total >= 1);
                    }
                }
                let bad = ask(
                    &mut conn,
                    &mut reader,
                    &["mul n0 2".into(), "get n0 x".into()],
                );
                assert_eq!(bad, ["error", "error"]);
            });
        }
    });
    let mut conn = ex.connect();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let names: Vec<String> = (0..4).map(|k| format!("get n{k}")).collect();
    let totals = ask(&mut conn, &mut reader, &names);
    let want: Vec<String> = (0..4)
        .map(|k| format!("n{k} {}", CLIENTS * ADDS / 4))
        .collect();
    assert_eq!(totals, want, "every addition counted once, in one place");
    drop(reader);
    drop(conn);
    ex.stop();
}
