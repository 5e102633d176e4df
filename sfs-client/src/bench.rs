//! `sfs-bench`: N clients, each on its own connection, reading one file; and the
//! single-core ChaCha20-Poly1305 limit.
//!
//! Invariants:
//! 1. Each client is a blocking loop on its own connection: send READ, receive the
//!    reply, next offset (wrapping at end of file); one outstanding request per client,
//!    as SFS's clients on one TCP connection each.
//! 2. `--verify full` authenticates, decrypts and decodes every reply. `--verify sample`
//!    does so for one reply in [`SAMPLE_EVERY`]; the others advance the receive counter
//!    and count their payload bytes only (the client shares the cores with the server).
//!    A sampled reply that fails closes the connection, as always.
//! 3. Only payload bytes of READ replies count towards MB/s (1 MB = 10^6 bytes).

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use sfs_proto::frame::{read_frame, read_frame_into, LEN_BYTES};
use sfs_proto::key::Key;
use sfs_proto::messages::{ClientMsg, Fh, FileType, Reply, Request, ServerMsg};
use sfs_proto::session::{RecvCipher, SendCipher, TAG_LEN};

use crate::client::handshake;

/// Replies verified in `sample` mode: one in this many.
pub const SAMPLE_EVERY: u64 = 16;
/// Plaintext bytes of a READ reply before the data.
const READ_REPLY_HEADER: usize = 16;

/// How replies are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verify {
    /// Every reply authenticated and decrypted.
    Full,
    /// One reply in [`SAMPLE_EVERY`].
    Sample,
}

impl std::str::FromStr for Verify {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "full" => Ok(Verify::Full),
            "sample" => Ok(Verify::Sample),
            _ => Err(format!("unknown verify mode {s:?} (full|sample)")),
        }
    }
}

/// Benchmark parameters.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchConfig {
    /// Server address.
    pub server: String,
    /// User.
    pub user: String,
    /// Concurrent clients.
    pub clients: usize,
    /// File to read (path in the export).
    pub file: String,
    /// Measured seconds.
    pub seconds: f64,
    /// Verification mode.
    pub verify: Verify,
    /// Bytes per READ.
    pub chunk: u32,
}

/// Benchmark results: the fields of `sfs-bench --format json` beside its `config`, `label` and
/// `env`, read back through this struct by the report.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct BenchResult {
    /// Payload throughput, 10^6 bytes per second.
    pub mbytes_per_sec: f64,
    /// READ replies received.
    pub ops: u64,
    /// Failed operations and connections.
    pub errors: u64,
    /// Payload bytes.
    pub bytes: u64,
    /// Wall time of the measurement.
    pub elapsed_secs: f64,
    /// CPU time (user + system) this process used, seconds: the client's share of the
    /// cores it shares with the server.
    pub client_cpu_secs: f64,
    /// Distinct server processes that served the clients (N-copy shows several).
    pub server_ids: Vec<u32>,
}

struct Conn {
    stream: TcpStream,
    send: SendCipher,
    recv: RecvCipher,
    xid: u32,
}

impl Conn {
    fn send(&mut self, m: &ClientMsg) -> Result<()> {
        let mut f = vec![0u8; LEN_BYTES];
        m.encode_into(&mut f);
        self.send.seal_in_place(&mut f)?;
        self.stream.write_all(&f)?;
        Ok(())
    }

    /// A verified call (set-up only), acknowledging callbacks on the way.
    fn call(&mut self, req: Request) -> Result<Reply> {
        self.xid += 1;
        let xid = self.xid;
        self.send(&ClientMsg::Call { xid, req })?;
        for _ in 0..1000 {
            let (lb, mut body) = read_frame(&mut self.stream)?;
            self.recv.open_in_place(&lb, &mut body)?;
            match ServerMsg::decode(&body)? {
                ServerMsg::Reply { xid: x, result } if x == xid => return Ok(result?),
                ServerMsg::Invalidate { cb_id, .. } => {
                    self.send(&ClientMsg::CallbackAck { cb_id })?
                }
                other => bail!("unexpected message {other:?}"),
            }
        }
        bail!("no reply")
    }
}

fn connect(cfg: &BenchConfig, key: &Key) -> Result<(Conn, u32)> {
    let mut stream = TcpStream::connect(cfg.server.as_str())
        .with_context(|| format!("connecting to {}", cfg.server))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let est = handshake(&mut stream, &cfg.user, key)?;
    Ok((
        Conn {
            stream,
            send: est.send,
            recv: est.recv,
            xid: 0,
        },
        est.server_id,
    ))
}

fn lookup(c: &mut Conn, path: &str) -> Result<(Fh, u64)> {
    let Reply::Handle {
        fh: mut cur,
        mut attr,
    } = c.call(Request::Root)?
    else {
        bail!("bad ROOT reply")
    };
    for comp in path.split('/').filter(|s| !s.is_empty()) {
        match c.call(Request::Lookup {
            dir: cur.clone(),
            name: comp.into(),
        })? {
            Reply::Handle { fh, attr: a } => {
                cur = fh;
                attr = a;
            }
            other => bail!("bad LOOKUP reply {other:?}"),
        }
    }
    if attr.ftype != FileType::Regular {
        bail!("{path} is not a regular file");
    }
    Ok((cur, attr.size))
}

struct ClientOut {
    ops: u64,
    bytes: u64,
    errors: u64,
    server_id: u32,
}

fn client_loop(
    cfg: &BenchConfig,
    key: &Key,
    start: &AtomicBool,
    measuring: &AtomicBool,
    stop: &AtomicBool,
) -> Result<ClientOut> {
    let (mut c, server_id) = connect(cfg, key)?;
    let (fh, size) = lookup(&mut c, &cfg.file)?;
    if size == 0 {
        bail!("{} is empty", cfg.file);
    }
    while !start.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut out = ClientOut {
        ops: 0,
        bytes: 0,
        errors: 0,
        server_id,
    };
    let mut off = 0u64;
    let mut n: u64 = 0;
    let mut body = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        c.xid += 1;
        let xid = c.xid;
        c.send(&ClientMsg::Call {
            xid,
            req: Request::Read {
                fh: fh.clone(),
                offset: off,
                count: cfg.chunk,
            },
        })?;
        // Replies only; callbacks cannot arrive for a reader-only benchmark unless a writer
        // runs meanwhile, and are then handled on the verified path.
        loop {
            let lb = read_frame_into(&mut c.stream, &mut body)?;
            n += 1;
            let verify = cfg.verify == Verify::Full || n % SAMPLE_EVERY == 0;
            let got = if verify {
                c.recv.open_in_place(&lb, &mut body)?;
                match ServerMsg::decode(&body)? {
                    ServerMsg::Reply {
                        xid: x,
                        result: Ok(Reply::Read { data, .. }),
                    } if x == xid => data.len() as u64,
                    ServerMsg::Reply {
                        xid: x,
                        result: Err(_),
                    } if x == xid => {
                        out.errors += 1;
                        0
                    }
                    ServerMsg::Invalidate { cb_id, .. } => {
                        c.send(&ClientMsg::CallbackAck { cb_id })?;
                        continue;
                    }
                    other => bail!("unexpected reply {other:?}"),
                }
            } else {
                c.recv.skip();
                body.len().saturating_sub(READ_REPLY_HEADER + TAG_LEN) as u64
            };
            if measuring.load(Ordering::Relaxed) {
                out.ops += 1;
                out.bytes += got;
            }
            off += got.max(1);
            if off >= size {
                off = 0;
            }
            break;
        }
    }
    Ok(out)
}

fn cpu_secs() -> f64 {
    edge::rusage::cpu_time(edge::rusage::Who::Process).as_secs_f64()
}

/// Run the benchmark: connect all clients, a short warm-up (10% of the time, at most
/// 2 s), then measure for `seconds`.
pub fn run(cfg: &BenchConfig, key: &Key) -> Result<BenchResult> {
    let start = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for i in 0..cfg.clients {
        let (cfg, key) = (cfg.clone(), key.clone());
        let (s, m, st) = (start.clone(), measuring.clone(), stop.clone());
        threads.push(
            std::thread::Builder::new()
                .name(format!("sfs-bench-{i}"))
                .spawn(move || client_loop(&cfg, &key, &s, &m, &st))?,
        );
    }
    start.store(true, Ordering::Release);
    std::thread::sleep(Duration::from_secs_f64((cfg.seconds * 0.1).min(2.0)));
    let cpu0 = cpu_secs();
    let t0 = Instant::now();
    measuring.store(true, Ordering::Release);
    std::thread::sleep(Duration::from_secs_f64(cfg.seconds));
    measuring.store(false, Ordering::Release);
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu0;
    stop.store(true, Ordering::Release);
    let mut r = BenchResult {
        elapsed_secs: elapsed,
        client_cpu_secs: cpu,
        ..Default::default()
    };
    let mut first_err = None;
    for t in threads {
        match t.join().map_err(|_| anyhow!("client thread panicked"))? {
            Ok(o) => {
                r.ops += o.ops;
                r.bytes += o.bytes;
                r.errors += o.errors;
                if !r.server_ids.contains(&o.server_id) {
                    r.server_ids.push(o.server_id);
                }
            }
            Err(e) => {
                r.errors += 1;
                first_err.get_or_insert(e);
            }
        }
    }
    if r.ops == 0 {
        if let Some(e) = first_err {
            return Err(e.context("every client failed"));
        }
    } else if let Some(e) = first_err {
        eprintln!("sfs-bench: a client failed: {e:#}");
    }
    r.mbytes_per_sec = r.bytes as f64 / elapsed / 1e6;
    Ok(r)
}

/// Single-core ChaCha20-Poly1305 sealing throughput for `chunk`-byte messages, MB/s
/// (10^6 bytes): the per-core limit of the server's encrypt path.
pub fn crypto_limit(chunk: usize, seconds: f64) -> f64 {
    let mut s = SendCipher::new(&[7u8; 32]);
    let mut buf = vec![0u8; LEN_BYTES + chunk];
    let t0 = Instant::now();
    let mut bytes = 0u64;
    while t0.elapsed().as_secs_f64() < seconds {
        for _ in 0..16 {
            buf.truncate(LEN_BYTES + chunk);
            s.seal_in_place(&mut buf).expect("counter cannot wrap here");
            bytes += chunk as u64;
        }
    }
    std::hint::black_box(&buf);
    bytes as f64 / t0.elapsed().as_secs_f64() / 1e6
}
