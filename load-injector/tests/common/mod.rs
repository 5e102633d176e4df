//! A tiny HTTP/1.1 test server (std threads, one per connection) whose
//! behaviour is chosen by the request path, with exact counters.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Counters kept by the server.
#[derive(Default, Debug)]
pub struct ServerStats {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Complete requests read.
    pub requests: AtomicU64,
    /// Most requests seen on one connection.
    pub max_per_conn: AtomicU64,
    /// Requests carrying `Connection: close`.
    pub close_requests: AtomicU64,
    /// Arrival time of every `/stamp` request.
    pub stamps: std::sync::Mutex<Vec<std::time::Instant>>,
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub stats: Arc<ServerStats>,
}

/// Response delay applied to every `/slow` request.
pub const SLOW: Duration = Duration::from_millis(20);

impl TestServer {
    /// Starts a server on `bind` (e.g. "127.0.0.1:0").
    pub fn start(bind: &str) -> TestServer {
        let l = TcpListener::bind(bind).expect("bind test server");
        let addr = l.local_addr().unwrap();
        let stats = Arc::new(ServerStats::default());
        let st = stats.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(s) = s else { continue };
                st.connections.fetch_add(1, Ordering::Relaxed);
                let st = st.clone();
                std::thread::spawn(move || serve_conn(s, &st));
            }
        });
        TestServer { addr, stats }
    }

    pub fn requests(&self) -> u64 {
        self.stats.requests.load(Ordering::SeqCst)
    }
}

fn serve_conn(mut s: TcpStream, st: &ServerStats) {
    s.set_nodelay(true).ok();
    let mut buf = Vec::with_capacity(4096);
    let mut tmp = [0u8; 4096];
    let mut on_conn = 0u64;
    loop {
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match s.read(&mut tmp) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        buf.drain(..end);
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
        let close = head.to_ascii_lowercase().contains("connection: close");
        on_conn += 1;
        st.requests.fetch_add(1, Ordering::SeqCst);
        st.max_per_conn.fetch_max(on_conn, Ordering::SeqCst);
        if close {
            st.close_requests.fetch_add(1, Ordering::SeqCst);
        }
        let conn_hdr = if close { "Connection: close\r\n" } else { "" };
        let ok = |status: &str, body: &str| {
            format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\n{conn_hdr}\r\n{body}",
                body.len()
            )
        };
        let resp = match path.as_str() {
            "/ok" | "/a" | "/b" => ok("200 OK", &"x".repeat(1024)),
            "/stamp" => {
                st.stamps.lock().unwrap().push(std::time::Instant::now());
                ok("200 OK", "stamped")
            }
            "/slow" => {
                std::thread::sleep(SLOW);
                ok("200 OK", "slow")
            }
            "/bad" => ok("500 Internal Server Error", "oops"),
            "/missing" => ok("404 Not Found", "no"),
            "/chunked" => format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n{conn_hdr}\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"),
            "/pieces" => {
                // Head, then the body in two writes: the client must assemble
                // the response across reads.
                let body = "y".repeat(3000);
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n{conn_hdr}\r\n", body.len());
                for (i, part) in [head.as_str(), &body[..1000], &body[1000..]].iter().enumerate() {
                    if i > 0 {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    if s.write_all(part.as_bytes()).is_err() {
                        return;
                    }
                }
                if close {
                    return;
                }
                continue;
            }
            "/short" => {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..");
                return;
            }
            "/reset" => {
                // SO_LINGER 0: close sends RST.
                let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
                return;
            }
            "/garbage" => "HELLO THERE\r\n\r\n".to_string(),
            "/hang" => {
                // Never answer; wait for the client to give up.
                while let Ok(n) = s.read(&mut tmp) {
                    if n == 0 {
                        break;
                    }
                }
                return;
            }
            _ => ok("404 Not Found", "unknown"),
        };
        if s.write_all(resp.as_bytes()).is_err() {
            return;
        }
        if close {
            return;
        }
    }
}

/// A loopback port with nothing listening on it.
pub fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    a
}
