//! A tally server: shared mutable state where colors are right and N-copy would be wrong.
//!
//! Clients send lines `add NAME N` (answered with `NAME TOTAL`, the total after the addition)
//! and `get NAME` (answered with `NAME TOTAL`). Every client sees the same totals, whatever core
//! serves it. The tallies are split over [`SHARDS`] colors, each shard a `ColorCell` owned by its
//! color: updates to one shard are serialised by the runtime (no lock), updates to different
//! shards run in parallel, and each connection's parsing runs in the connection's own color.
//!
//! N-copy (N independent single-threaded servers sharing the port, the upper bound of both
//! papers for stateless servers) would give each process its own tallies: a client would see
//! the additions made through its process only. Colors keep one copy and still use every core.
//!
//! ```text
//! cargo run --release -p colored-runtime --example tally -- [ADDR] [WORKERS]
//! ```
//! Defaults: `127.0.0.1:7008`, one worker per core. Prints `listening on ADDR`, serves until its
//! standard input closes.

use colored_runtime::RuntimeConfig;
use colored_runtime::{Color, ColorCell, Ctx, HandlerId, HandlerSpec, IoToken, Runtime};
use mio::net::{TcpListener, TcpStream};
use mio::unix::SourceFd;
use mio::Interest;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Colors of the tally shards: `SHARD_BASE..SHARD_BASE + SHARDS`.
const SHARDS: u32 = 16;
const SHARD_BASE: u32 = 1;
/// Connections get colors from here on (below 65 536, the color map's size).
const CONN_BASE: u32 = SHARD_BASE + SHARDS;
/// Longest request line accepted; a longer one closes the connection.
const MAX_LINE: usize = 1024;

/// The handlers, registered once.
#[derive(Clone, Copy)]
struct Handlers {
    accept: HandlerId,
    read: HandlerId,
    update: HandlerId,
    reply: HandlerId,
}

/// Everything the events share: the shards and the handler ids.
struct Server {
    shards: Vec<ColorCell<HashMap<String, i64>>>,
    h: Handlers,
}

/// One connection, owned by its color.
struct Conn {
    stream: TcpStream,
    token: Option<IoToken>,
    /// Bytes read, not yet parsed.
    input: Vec<u8>,
    /// Bytes to write.
    output: Vec<u8>,
    /// A request is at its shard: the next one waits (replies stay in request order).
    waiting: bool,
    /// The peer closed its side: answer what it sent, then close.
    eof: bool,
    /// The connection failed (or sent a line longer than `MAX_LINE`): close now.
    failed: bool,
}

type ConnCell = Arc<ColorCell<Conn>>;

/// A parsed request.
enum Request {
    Add(String, i64),
    Get(String),
}

fn parse(line: &str) -> Option<Request> {
    let mut w = line.split_ascii_whitespace();
    let req = match (w.next()?, w.next()?, w.next()) {
        ("add", name, Some(n)) => Request::Add(name.to_string(), n.parse().ok()?),
        ("get", name, None) => Request::Get(name.to_string()),
        _ => return None,
    };
    w.next().is_none().then_some(req)
}

fn shard_of(name: &str) -> u32 {
    let mut h = DefaultHasher::new();
    name.hash(&mut h);
    (h.finish() % SHARDS as u64) as u32
}

impl Conn {
    /// Read until the socket has nothing more (readiness is edge-triggered).
    fn read_available(&mut self) {
        let mut buf = [0u8; 4096];
        while !self.eof && !self.failed {
            match self.stream.read(&mut buf) {
                Ok(0) => self.eof = true,
                Ok(n) => self.input.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.failed = true,
            }
        }
    }

    /// The next complete request, unless one is out; malformed lines are answered `error`.
    fn next_request(&mut self) -> Option<Request> {
        while !self.waiting && !self.failed {
            let Some(end) = self.input.iter().position(|&b| b == b'\n') else {
                self.failed = self.input.len() > MAX_LINE;
                return None;
            };
            let line: Vec<u8> = self.input.drain(..=end).collect();
            match std::str::from_utf8(&line).ok().and_then(parse) {
                Some(req) => {
                    self.waiting = true;
                    return Some(req);
                }
                None => self.output.extend_from_slice(b"error\n"),
            }
        }
        None
    }

    /// Write what is pending, as far as the socket takes it (the rest on the next writable
    /// readiness).
    fn flush(&mut self) {
        while !self.output.is_empty() && !self.failed {
            match self.stream.write(&self.output) {
                Ok(n) => drop(self.output.drain(..n)),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.failed = true,
            }
        }
    }

    /// Nothing more will happen on this connection.
    fn finished(&self) -> bool {
        self.failed || self.eof && !self.waiting && self.output.is_empty()
    }
}

/// In the connection's color: read, answer, and send the next request to its shard if none is
/// out; close a finished connection.
fn drive(ctx: &mut Ctx<'_>, srv: &Arc<Server>, cell: &ConnCell) {
    let (next, done) = cell.with(ctx, |c| {
        c.read_available();
        let req = c.next_request();
        c.flush();
        (req, c.finished())
    });
    if done {
        close(ctx, cell);
        return;
    }
    if let Some(req) = next {
        let shard = match &req {
            Request::Add(n, _) | Request::Get(n) => shard_of(n),
        };
        let (srv2, cell2) = (srv.clone(), cell.clone());
        ctx.post(Color(SHARD_BASE + shard), srv.h.update, move |ctx| {
            update(ctx, &srv2, shard, req, cell2)
        });
    }
}

/// In the shard's color: apply the request, send the answer back to the connection's color.
fn update(ctx: &mut Ctx<'_>, srv: &Arc<Server>, shard: u32, req: Request, cell: ConnCell) {
    let (name, total) = srv.shards[shard as usize].with(ctx, |tallies| match req {
        Request::Add(name, n) => {
            let t = tallies.entry(name.clone()).or_insert(0);
            *t += n;
            (name, *t)
        }
        Request::Get(name) => {
            let t = tallies.get(&name).copied().unwrap_or(0);
            (name, t)
        }
    });
    let srv2 = srv.clone();
    ctx.post(cell.color(), srv.h.reply, move |ctx| {
        cell.with(ctx, |c| {
            c.output
                .extend_from_slice(format!("{name} {total}\n").as_bytes());
            c.waiting = false;
        });
        drive(ctx, &srv2, &cell);
    });
}

/// Deregister a finished connection (its socket closes when the last event holding it ends).
fn close(ctx: &mut Ctx<'_>, cell: &ConnCell) {
    let token = cell.with(ctx, |c| c.token.take().map(|t| (t, c.stream.as_raw_fd())));
    if let Some((token, fd)) = token {
        let _ = ctx.handle().deregister_io(&mut SourceFd(&fd), token);
    }
}

/// In the connection's color: register it and serve what already arrived.
fn open(ctx: &mut Ctx<'_>, srv: &Arc<Server>, stream: TcpStream) {
    let fd = stream.as_raw_fd();
    let cell: ConnCell = Arc::new(ColorCell::new(
        ctx.color(),
        Conn {
            stream,
            token: None,
            input: Vec::new(),
            output: Vec::new(),
            waiting: false,
            eof: false,
            failed: false,
        },
    ));
    let (srv2, cb) = (srv.clone(), cell.clone());
    let registered = ctx.handle().register_io(
        &mut SourceFd(&fd),
        Interest::READABLE | Interest::WRITABLE,
        ctx.color(),
        srv.h.read,
        move |ctx, _| drive(ctx, &srv2, &cb),
    );
    if let Ok(token) = registered {
        cell.with(ctx, |c| c.token = Some(token));
        drive(ctx, srv, &cell);
    }
}

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7008".into());
    let workers = match args.next() {
        Some(w) => w
            .parse()
            .map_err(|_| io::Error::new(ErrorKind::InvalidInput, "WORKERS must be a number"))?,
        None => RuntimeConfig::default().workers,
    };
    let addr = addr
        .parse()
        .map_err(|e| io::Error::new(ErrorKind::InvalidInput, format!("ADDR {addr}: {e}")))?;
    let rt = Runtime::new(RuntimeConfig {
        workers,
        ..Default::default()
    })
    .map_err(io::Error::other)?;
    let h = Handlers {
        accept: rt.register(HandlerSpec::new("Accept")),
        read: rt.register(HandlerSpec::new("Read")),
        update: rt.register(HandlerSpec::new("Update")),
        reply: rt.register(HandlerSpec::new("Reply")),
    };
    let srv = Arc::new(Server {
        shards: (0..SHARDS)
            .map(|k| ColorCell::new(Color(SHARD_BASE + k), HashMap::new()))
            .collect(),
        h,
    });
    let listener = Arc::new(TcpListener::bind(addr)?);
    let fd = listener.as_raw_fd();
    let next = AtomicU32::new(0);
    let l = listener.clone();
    rt.handle().register_io(
        &mut SourceFd(&fd),
        Interest::READABLE,
        Color(0),
        h.accept,
        move |ctx, _| {
            while let Ok((stream, _)) = l.accept() {
                let color =
                    Color(CONN_BASE + next.fetch_add(1, Ordering::Relaxed) % (65_536 - CONN_BASE));
                let srv = srv.clone();
                ctx.post(color, srv.h.read, move |ctx| open(ctx, &srv, stream));
            }
        },
    )?;
    println!("listening on {}", listener.local_addr()?);
    io::copy(&mut io::stdin(), &mut io::sink())?;
    rt.shutdown();
    Ok(())
}
