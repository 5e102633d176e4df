//! Helpers for the integration tests: a temporary document root, a server process on an
//! ephemeral loopback port, and a small HTTP/1.1 client that reads responses exactly.
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const IO_TIMEOUT: Duration = Duration::from_secs(15);
pub const SECRET: &[u8] = b"TOP-SECRET-OUTSIDE-ROOT";

/// A document root in a fresh temporary directory, with a secret file beside it and
/// symlinks that try to leave it.
pub struct DocRoot {
    pub base: PathBuf,
    pub root: PathBuf,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Deterministic content of `n` bytes.
pub fn content(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| b'a' + ((i * 7 + seed as usize) % 26) as u8)
        .collect()
}

impl DocRoot {
    pub fn new() -> DocRoot {
        let base = std::env::temp_dir().join(format!(
            "sws-it-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("www");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("index.html"), b"<html>home</html>\n").unwrap();
        std::fs::write(root.join("1k.txt"), content(1024, 1)).unwrap();
        std::fs::write(root.join("sub/style.css"), b"body{}\n").unwrap();
        std::fs::write(root.join("big.bin"), content(2 << 20, 3)).unwrap();
        std::fs::write(root.join("hello world.txt"), b"spaces\n").unwrap();
        std::fs::write(base.join("secret.txt"), SECRET).unwrap();
        std::os::unix::fs::symlink(base.join("secret.txt"), root.join("secret-link.txt")).unwrap();
        std::os::unix::fs::symlink(&base, root.join("up")).unwrap();
        DocRoot { base, root }
    }

    pub fn file(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.root.join(rel)).unwrap()
    }
}

impl Drop for DocRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// A server configuration under test.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    pub mode: &'static str,
    pub runtime: &'static str,
    pub stealing: &'static str,
    pub workers: usize,
}

/// A running `sws-server` process.
pub struct Server {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub stats_path: PathBuf,
    pub root: DocRoot,
}

impl Server {
    pub fn start(cfg: Config, max_clients: usize, idle_ms: u64) -> Server {
        Server::start_args(cfg, max_clients, idle_ms, &[])
    }

    /// `start` with more command-line arguments.
    pub fn start_args(cfg: Config, max_clients: usize, idle_ms: u64, extra: &[&str]) -> Server {
        let root = DocRoot::new();
        let stats_path = root.base.join("stats.json");
        let mut child = Command::new(env!("CARGO_BIN_EXE_sws-server"))
            .arg("--root")
            .arg(&root.root)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--workers",
                &cfg.workers.to_string(),
            ])
            .args([
                "--runtime",
                cfg.runtime,
                "--stealing",
                cfg.stealing,
                "--mode",
                cfg.mode,
            ])
            .args([
                "--max-clients",
                &max_clients.to_string(),
                "--idle-timeout-ms",
                &idle_ms.to_string(),
            ])
            .arg("--stats-json")
            .arg(&stats_path)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn sws-server");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let mut r = BufReader::new(stdout);
            let _ = r.read_line(&mut line);
            let _ = tx.send(line);
            let mut sink = Vec::new();
            let _ = r.read_to_end(&mut sink);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("server did not start");
        let addr = line
            .split_whitespace()
            .find_map(|w| w.parse::<SocketAddr>().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Server {
            child: Some(child),
            addr,
            stats_path,
            root,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Waits (bounded) for the process to exit on its own; returns whether it succeeded.
    pub fn wait_exit(mut self, timeout: Duration) -> Option<bool> {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = child.try_wait() {
                return Some(st.success());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).expect("connect");
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_nodelay(true).unwrap();
        s
    }

    /// SIGTERM, wait (bounded), and return the statistics document.
    pub fn stop(self) -> serde_json::Value {
        self.stop_with(libc::SIGTERM)
    }

    /// Stops the server with `sig`, waits (bounded), returns the statistics document.
    pub fn stop_with(mut self, sig: i32) -> serde_json::Value {
        let mut child = self.child.take().unwrap();
        terminate(&mut child, sig);
        let st = child.wait().unwrap();
        assert!(st.success(), "server exited with {st}");
        let bytes = std::fs::read(&self.stats_path).expect("stats written");
        serde_json::from_slice(&bytes).expect("stats are JSON")
    }
}

fn terminate(child: &mut Child, sig: i32) {
    // SAFETY: kill(2) on our own child, not yet reaped.
    unsafe {
        libc::kill(child.id() as libc::pid_t, sig);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    panic!("server did not stop within 20 s of signal {sig}");
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: as in `terminate`.
            unsafe {
                libc::kill(c.id() as libc::pid_t, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && !matches!(c.try_wait(), Ok(Some(_))) {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// Reads responses from one connection, keeping bytes that belong to the next one.
pub struct Reader {
    pub buf: Vec<u8>,
}

impl Reader {
    pub fn new() -> Reader {
        Reader { buf: Vec::new() }
    }

    /// Reads one response. `head` says the request was HEAD (no body follows).
    pub fn read(&mut self, s: &mut impl Read, head: bool) -> io::Result<Resp> {
        loop {
            let mut hs = [httparse::EMPTY_HEADER; 32];
            let mut r = httparse::Response::new(&mut hs);
            if let httparse::Status::Complete(n) = r
                .parse(&self.buf)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
            {
                let headers: Vec<(String, String)> = r
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_string(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                let status = r.code.unwrap();
                let cl: usize = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .map(|(_, v)| v.trim().parse().unwrap())
                    .expect("every response has Content-Length");
                let body_len = if head { 0 } else { cl };
                while self.buf.len() < n + body_len {
                    self.fill(s)?;
                }
                let body = self.buf[n..n + body_len].to_vec();
                self.buf.drain(..n + body_len);
                return Ok(Resp {
                    status,
                    headers,
                    body,
                });
            }
            self.fill(s)?;
        }
    }

    fn fill(&mut self, s: &mut impl Read) -> io::Result<()> {
        let mut tmp = [0u8; 65536];
        let n = s.read(&mut tmp)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(())
    }

    /// True when the peer closed the connection (EOF, or a reset) before `timeout`, with no
    /// further bytes.
    pub fn closed(&mut self, s: &mut TcpStream, timeout: Duration) -> bool {
        s.set_read_timeout(Some(timeout)).unwrap();
        let mut tmp = [0u8; 1024];
        let r = match s.read(&mut tmp) {
            Ok(0) => true,
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                false
            }
            Err(e) => matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
            ),
        };
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        r
    }
}

pub fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").into_bytes()
}

pub fn head(path: &str) -> Vec<u8> {
    format!("HEAD {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").into_bytes()
}

/// One request on a fresh connection; returns the response.
pub fn fetch(srv: &Server, raw: &[u8]) -> Resp {
    let mut s = srv.connect();
    s.write_all(raw).unwrap();
    Reader::new()
        .read(&mut s, raw.starts_with(b"HEAD "))
        .expect("a response")
}

pub fn root_path(s: &Server) -> &Path {
    &s.root.root
}
