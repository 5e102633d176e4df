//! The colored SWS server: the nine handlers of the Mely paper (Figure 6) as colored events.
//!
//! | handler             | color                | does                                             |
//! |---------------------|----------------------|--------------------------------------------------|
//! | Epoll               | 0                    | the runtime's reactor event                      |
//! | Accept              | 1                    | accept until `WouldBlock`, admit or refuse (503) |
//! | RegisterFdInEpoll   | 0                    | register the socket with the reactor             |
//! | ReadRequest         | connection (fd)      | read until `WouldBlock` into the input buffer    |
//! | ParseRequest        | connection (fd)      | parse one request (httparse), normalize target   |
//! | CheckInCache        | a cache color        | look the key up in the prebuilt cache            |
//! | WriteResponse       | connection (fd)      | queue the response, write until `WouldBlock`     |
//! | Close               | connection (fd)      | shut down, linger, deregister, close             |
//! | DecClientAccepted   | 1                    | one client less                                  |
//!
//! A tenth handler, `IdleTimeout` (connection color), is the per-connection timer that sends
//! 408 and closes connections that are idle, or whose request head takes longer than the
//! timeout in total (slowloris), and aborts ones whose reader stopped reading; it is separate
//! so the per-handler statistics stay honest.
//!
//! Invariants (why there is no lock on the request path):
//! 1. A connection's state lives in a `ColorCell` of the connection's color, and every event
//!    that touches it (ReadRequest, ParseRequest, WriteResponse, Close, IdleTimeout) runs in
//!    that color, so they never run at once and see each other's writes in order.
//! 2. At most one request per connection is between ParseRequest and WriteResponse at a time
//!    (`in_flight`). Requests are therefore answered in order even though CheckInCache runs in
//!    another color, and a pipelined batch is parsed one request after the other.
//! 3. The admission counter lives in a `ColorCell` of color 1, touched only by Accept and
//!    DecClientAccepted. Every admitted connection posts exactly one DecClientAccepted, after
//!    its socket is closed (`Phase::Done` is entered once).
//! 4. A socket is deregistered before it is closed, so the reactor never sees a reused fd
//!    number through a stale registration. The `IoToken` is published by RegisterFdInEpoll
//!    (color 0); if a connection finishes before that store is visible, the deregistration is
//!    posted to color 0, which runs after RegisterFdInEpoll has finished.
//! 5. The cache is immutable after start-up; CheckInCache only reads it.

use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use colored_runtime::{
    Color, ColorCell, Ctx, Handle, HandlerId, HandlerSpec, IoToken, Readiness, Runtime,
    RuntimeConfig,
};
use mio::unix::SourceFd;
use mio::Interest;
use serde::Serialize;

use crate::cache::Cache;
use crate::date;
use crate::http::{self, Limits, Method, Parse};
use crate::out::{Flush, OutQueue};
use crate::path::normalize_target;
use crate::response::{ErrorKind, ErrorResponses, Prebuilt};

/// The reactor's color (Epoll and RegisterFdInEpoll).
pub const EPOLL_COLOR: Color = Color(0);
/// Accept and DecClientAccepted.
pub const ACCEPT_COLOR: Color = Color(1);
/// Where the cache colors start. Modulo 65536 (the runtime's color map slots) they sit at
/// 49152 and above, clear of realistic fd numbers, so they never share a slot (and thus
/// never serialise) with a connection.
pub const CACHE_COLOR_BASE: u32 = 0x1_C000;
/// At least this many cache colors.
pub const CACHE_COLORS: u32 = 256;
/// Accepts per Accept event before it re-posts itself (fairness with other events).
const ACCEPT_BATCH: usize = 128;
/// Initial input buffer of a connection.
const INBUF_INITIAL: usize = 4096;
/// Stop parsing more pipelined requests while this much output is unwritten.
const OUT_HIGH_WATER: usize = 256 * 1024;
/// How long a connection waits for the client's FIN after our last response.
const LINGER: Duration = Duration::from_secs(2);
/// Connections being refused with 503 at once; past this they are closed without an answer.
const MAX_REFUSING: usize = 1024;

/// Everything the server needs to start, parsed once from the command line.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub max_clients: usize,
    pub idle_timeout: Duration,
    pub limits: Limits,
    /// Bind with SO_REUSEPORT (N-copy children).
    pub reuse_port: bool,
    /// Stealing penalty of the handlers that touch a connection (and of CheckInCache), see
    /// [`DEFAULT_CONN_PENALTY`]. 1 is no penalty.
    pub conn_penalty: u32,
}

/// The stealing penalty SWS gives its per-connection handlers (ReadRequest, ParseRequest,
/// WriteResponse, Close, IdleTimeout) and CheckInCache, as the Mely paper sets penalties: by the
/// developer, from profiling, on handlers whose data should not move between cores.
///
/// What a steal of a connection's color moves is not in the event: it is the socket's kernel
/// state, its buffers and the client's wake-ups, which then run on the other core. Measured with
/// the project's injector (200 clients, 150 requests per connection, 2 workers, 2026-11-30):
/// Mely `all` without penalties stole 130 colors per 1,000 requests, almost all of them
/// connections with one ReadRequest or WriteResponse queued, and needed 4% more server CPU per
/// request than without stealing (0.97x the requests/s of libasync without stealing, 8 of 8 paired
/// runs); the stolen events themselves ran no slower, the cost showed up as kernel time. Penalty
/// 16 left 0.985x, 64 0.996x, 1000 1.000x: stealing then moves the Epoll, Accept and
/// RegisterFdInEpoll colors, and a connection only once it has a backlog worth a thousand times
/// the steal cost. The weighted time only counts under the `penalty` and `all` policies.
pub const DEFAULT_CONN_PENALTY: u32 = 1000;

/// The handler ids, registered once.
#[derive(Clone, Copy, Debug)]
struct Handlers {
    accept: HandlerId,
    register: HandlerId,
    read: HandlerId,
    parse: HandlerId,
    check: HandlerId,
    write: HandlerId,
    close: HandlerId,
    dec: HandlerId,
    timeout: HandlerId,
}

impl Handlers {
    fn register(rt: &Runtime, conn_penalty: u32) -> Handlers {
        let r = |n: &str| rt.register(HandlerSpec::new(n));
        let conn = |n: &str| rt.register(HandlerSpec::new(n).penalty(conn_penalty));
        Handlers {
            accept: r("Accept"),
            read: conn("ReadRequest"),
            register: r("RegisterFdInEpoll"),
            parse: conn("ParseRequest"),
            check: conn("CheckInCache"),
            write: conn("WriteResponse"),
            close: conn("Close"),
            dec: r("DecClientAccepted"),
            timeout: conn("IdleTimeout"),
        }
    }
}

/// Server counters, one set per worker on its own cache lines, summed on demand.
#[derive(Default)]
#[repr(align(128))]
struct WorkerCounters {
    requests: AtomicU64,
    bytes: AtomicU64,
    errors: [AtomicU64; ErrorKind::ALL.len()],
    accepted: AtomicU64,
    refused_unanswered: AtomicU64,
    closed: AtomicU64,
    client_gone: AtomicU64,
}

fn bump(c: &AtomicU64, n: u64) {
    // Only the worker owning this slot adds to it; Relaxed is enough for summing on demand.
    c.store(c.load(Ordering::Relaxed) + n, Ordering::Relaxed);
}

/// The server's own statistics (the runtime's are reported beside them).
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ServerStats {
    /// 200 responses queued.
    pub requests_served: u64,
    /// Bytes of responses queued, errors included.
    pub bytes_queued: u64,
    /// Error responses by kind (name -> count).
    pub errors: std::collections::BTreeMap<String, u64>,
    pub connections_accepted: u64,
    pub connections_closed: u64,
    /// Connections refused past `--max-clients` while too many refusals were in progress,
    /// closed without a 503.
    pub refused_unanswered: u64,
    /// Connections whose peer vanished (reset or broken pipe while reading or writing).
    pub client_gone: u64,
}

/// The state shared by all events of one server.
struct Server {
    cfg: ServerConfig,
    cache: Cache,
    errors: ErrorResponses,
    h: Handlers,
    handle: Handle,
    admission: ColorCell<Admission>,
    listener: mio::net::TcpListener,
    counters: Box<[WorkerCounters]>,
    cache_colors: CacheColors,
}

/// Owned by color 1.
#[derive(Default)]
struct Admission {
    clients: usize,
    refusing: usize,
}

/// What the request path hands to WriteResponse.
#[derive(Clone, Copy, Debug)]
enum Reply {
    File {
        index: u32,
        method: Method,
        keep_alive: bool,
    },
    Error {
        kind: ErrorKind,
        method: Method,
        keep_alive: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Reading and answering requests.
    Open,
    /// The last response is queued (it says `Connection: close`); close once it is written.
    Draining,
    /// Our side is shut down; discarding input until the client's FIN or `LINGER`.
    Lingering { until: Instant },
    /// Deregistered and closed.
    Done,
}

/// A connection's state, owned by the connection's color.
struct Conn {
    stream: Option<mio::net::TcpStream>,
    inbuf: Vec<u8>,
    /// Unparsed input is `inbuf[start..end]`.
    start: usize,
    end: usize,
    out: OutQueue,
    phase: Phase,
    /// A request is between ParseRequest and WriteResponse.
    in_flight: bool,
    /// Reading stopped because the input buffer is full; WriteResponse resumes it.
    read_paused: bool,
    /// The client shut down its side.
    peer_eof: bool,
    /// Refused past `--max-clients`: answered 503 and closed.
    refused: bool,
    /// The peer vanished (reset or broken pipe); counted once at finalization.
    client_gone: bool,
    last_activity: Instant,
    /// When the first bytes of the request being received arrived (None between requests):
    /// the whole head must arrive within the idle timeout.
    request_started: Option<Instant>,
}

/// Everything about one connection that its events share.
struct ConnShared {
    cell: ColorCell<Conn>,
    token: OnceLock<IoToken>,
    fd: RawFd,
    color: Color,
    srv: Arc<Server>,
}

/// Follow-up work computed under the connection's cell and carried out after it (posting
/// needs `&mut Ctx`, which the cell borrows).
#[derive(Default)]
struct Next {
    read: bool,
    parse: bool,
    write: bool,
    reply: Option<Reply>,
    check: Option<(Vec<u8>, Method, bool)>,
    close: Option<CloseHow>,
    finalize: Option<mio::net::TcpStream>,
    rearm: Option<Duration>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CloseHow {
    /// After our last response: shut down our side and linger for the client's FIN.
    Graceful,
    /// The client is gone or misbehaved: close now.
    Abort,
}

impl Conn {
    fn stream(&mut self) -> Option<&mut mio::net::TcpStream> {
        self.stream.as_mut()
    }

    /// ReadRequest: read until `WouldBlock`, EOF or a full buffer.
    ///
    /// With `stop_short` (a readiness event that reported neither a closed read side nor an
    /// error), a read that fills less than the space offered also ends the loop: the socket's
    /// receive queue was empty at that moment, and any data or FIN arriving later raises a new
    /// edge-triggered readiness event (epoll reports every arrival, and `EPOLLRDHUP` the FIN). This
    /// spares the `recv` that would only return `EAGAIN`, one of the three system calls of a
    /// keep-alive request (nginx does the same with `EPOLLRDHUP`).
    fn on_readable(&mut self, srv: &Server, stop_short: bool) -> Next {
        let mut next = Next::default();
        match self.phase {
            Phase::Done => return next,
            Phase::Lingering { .. } => {
                if self.discard_input() {
                    next.finalize = self.finish();
                }
                return next;
            }
            Phase::Draining => return next, // input after the last response is ignored
            Phase::Open => {}
        }
        let max_in = srv.cfg.limits.max_request_bytes() + 1024;
        let mut got = false;
        loop {
            if self.end == self.inbuf.len() {
                if self.start > 0 {
                    self.inbuf.copy_within(self.start..self.end, 0);
                    self.end -= self.start;
                    self.start = 0;
                } else if self.inbuf.len() < max_in {
                    let n = (self.inbuf.len() * 2).clamp(INBUF_INITIAL, max_in);
                    self.inbuf.resize(n, 0);
                } else {
                    self.read_paused = true;
                    break;
                }
            }
            let (end, buf) = (self.end, &mut self.inbuf);
            let Some(s) = self.stream.as_mut() else {
                return next;
            };
            let room = buf.len() - end;
            match s.read(&mut buf[end..]) {
                Ok(0) => {
                    self.peer_eof = true;
                    break;
                }
                Ok(n) => {
                    self.end += n;
                    got = true;
                    if stop_short && n < room {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    // Reset by the peer: it vanished.
                    self.client_gone = true;
                    next.close = Some(CloseHow::Abort);
                    return next;
                }
            }
        }
        if got {
            self.last_activity = Instant::now();
        }
        if (got || self.peer_eof) && !self.in_flight {
            next.parse = true;
        }
        next
    }

    /// ParseRequest: parse the next request, if one is complete and none is in flight.
    fn on_parse(&mut self, srv: &Server) -> Next {
        let mut next = Next::default();
        if self.phase != Phase::Open || self.in_flight || self.out.pending() > OUT_HIGH_WATER {
            return next;
        }
        let input = &self.inbuf[self.start..self.end];
        match http::parse(input, &srv.cfg.limits) {
            Parse::Partial => {
                if self.peer_eof {
                    // The client is done sending and no complete request is left: close
                    // now, or once the queued responses are written.
                    if self.out.is_empty() {
                        next.close = Some(CloseHow::Abort);
                    } else {
                        self.phase = Phase::Draining;
                        next.write = true;
                    }
                } else if self.request_started.is_none() && self.start < self.end {
                    self.request_started = Some(Instant::now());
                }
                if self.read_paused && !self.peer_eof && !self.in_flight {
                    // Full buffer and still partial: cannot happen within the limits, but
                    // never wait forever on it.
                    self.in_flight = true;
                    next.reply = Some(Reply::Error {
                        kind: ErrorKind::BadRequest,
                        method: Method::Get,
                        keep_alive: false,
                    });
                }
            }
            Parse::Complete(req) => {
                self.in_flight = true;
                self.request_started = None;
                let target = &input[req.target.clone()];
                match normalize_target(target) {
                    Ok(key) => next.check = Some((key, req.method, req.keep_alive)),
                    Err(_) => {
                        next.reply = Some(Reply::Error {
                            kind: ErrorKind::BadRequest,
                            method: req.method,
                            keep_alive: false,
                        })
                    }
                }
                self.start += req.consumed;
                if self.start == self.end {
                    self.start = 0;
                    self.end = 0;
                }
            }
            Parse::Error(e) => {
                self.in_flight = true;
                next.reply = Some(Reply::Error {
                    kind: e.into(),
                    method: Method::Get,
                    keep_alive: false,
                });
            }
        }
        next
    }

    /// WriteResponse: queue `reply` (if any), then write until done or blocked.
    fn on_write(&mut self, srv: &Server, reply: Option<Reply>, worker: usize) -> Next {
        let mut next = Next::default();
        if matches!(self.phase, Phase::Done | Phase::Lingering { .. }) {
            return next;
        }
        if let Some(reply) = reply {
            self.in_flight = false;
            let p: &Prebuilt = match reply {
                Reply::File {
                    index,
                    method,
                    keep_alive,
                } => srv.cache.variants(index).get(method, keep_alive),
                Reply::Error {
                    kind,
                    method,
                    keep_alive,
                } => srv.errors.get(kind, method, keep_alive),
            };
            self.out.push(p, &date::now());
            let c = &srv.counters[worker % srv.counters.len()];
            bump(&c.bytes, p.len() as u64);
            if let Reply::Error { kind, .. } = reply {
                bump(&c.errors[kind.index()], 1);
            } else {
                bump(&c.requests, 1);
            }
            if p.close {
                self.phase = Phase::Draining;
            }
        }
        let before = self.out.pending();
        let res = match self.stream.as_mut() {
            Some(s) => self.out.write_to(s),
            None => return next,
        };
        if self.out.pending() < before {
            self.last_activity = Instant::now();
        }
        match res {
            Err(_) => {
                self.client_gone = true;
                self.out.clear();
                next.close = Some(CloseHow::Abort);
            }
            Ok(Flush::Done) => {
                if self.phase == Phase::Draining {
                    next.close = Some(CloseHow::Graceful);
                } else {
                    if self.read_paused {
                        self.read_paused = false;
                        next.read = true;
                    }
                    if !self.in_flight && (self.start < self.end || self.peer_eof) {
                        next.parse = true;
                    }
                }
            }
            Ok(Flush::Blocked) => {
                // The reactor reports writability (edge-triggered) and ReadRequest posts us.
                if self.phase == Phase::Open
                    && !self.in_flight
                    && self.start < self.end
                    && self.out.pending() <= OUT_HIGH_WATER
                {
                    next.parse = true;
                }
            }
        }
        next
    }

    /// Close: graceful closes linger for the client's FIN; aborts finish at once.
    fn on_close(&mut self, how: CloseHow) -> Next {
        let mut next = Next::default();
        match self.phase {
            Phase::Done | Phase::Lingering { .. } => return next,
            Phase::Open | Phase::Draining => {}
        }
        if how == CloseHow::Graceful && !self.peer_eof {
            if let Some(s) = self.stream() {
                let _ = s.shutdown(Shutdown::Write);
            }
            self.phase = Phase::Lingering {
                until: Instant::now() + LINGER,
            };
            self.inbuf = Vec::new();
            self.start = 0;
            self.end = 0;
            if self.discard_input() {
                next.finalize = self.finish();
            } else {
                // One more timer ends the lingering; the idle timer chain also checks it.
                next.rearm = Some(LINGER);
            }
            return next;
        }
        next.finalize = self.finish();
        next
    }

    /// IdleTimeout: 408 for idle connections, abort for stalled ones, end of lingering.
    fn on_timer(&mut self, srv: &Server) -> Next {
        let mut next = Next::default();
        let now = Instant::now();
        match self.phase {
            Phase::Done => return next,
            Phase::Lingering { until } => {
                if now >= until {
                    next.finalize = self.finish();
                } else {
                    next.rearm = Some(until - now);
                }
                return next;
            }
            Phase::Open | Phase::Draining => {}
        }
        let timeout = srv.cfg.idle_timeout;
        let idle = now.duration_since(self.last_activity);
        let waiting = self.phase == Phase::Open && !self.in_flight && self.out.is_empty();
        // A request head that trickles in (slowloris) gets the same budget in total.
        let partial_for = self.request_started.map(|t| now.duration_since(t));
        let partial_expired = waiting && partial_for.is_some_and(|d| d >= timeout);
        if idle < timeout && !partial_expired {
            let mut left = timeout - idle;
            if let (true, Some(d)) = (waiting, partial_for) {
                left = left.min(timeout - d);
            }
            next.rearm = Some(left);
            return next;
        }
        if waiting {
            // Idle (between requests or inside a partial one): answer 408 and close. If the
            // 408 itself cannot be written, the next expiry aborts.
            self.in_flight = true;
            self.last_activity = now;
            next.reply = Some(Reply::Error {
                kind: ErrorKind::RequestTimeout,
                method: Method::Get,
                keep_alive: false,
            });
            next.rearm = Some(srv.cfg.idle_timeout);
        } else {
            // No progress while output is pending (a reader that stopped reading).
            next.close = Some(CloseHow::Abort);
        }
        next
    }

    /// Reads and drops input while lingering. True when the client's FIN (or an error)
    /// arrived, i.e. the socket can be closed.
    fn discard_input(&mut self) -> bool {
        let Some(s) = self.stream.as_mut() else {
            return true;
        };
        let mut buf = [0u8; 4096];
        for _ in 0..64 {
            match s.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
        false
    }

    /// Enters `Done` (once) and hands the socket out for deregistration and closing.
    fn finish(&mut self) -> Option<mio::net::TcpStream> {
        if self.phase == Phase::Done {
            return None;
        }
        self.phase = Phase::Done;
        self.inbuf = Vec::new();
        self.out = OutQueue::new();
        self.stream.take()
    }
}

impl ConnShared {
    /// Carries out the follow-up work of a handler.
    fn dispatch(self: &Arc<Self>, ctx: &mut Ctx<'_>, next: Next) {
        let h = self.srv.h;
        if let Some(stream) = next.finalize {
            self.finalize(ctx, stream);
            return;
        }
        if let Some(how) = next.close {
            let c = self.clone();
            ctx.post(self.color, h.close, move |ctx| {
                let next = c.cell.with(ctx, |conn| conn.on_close(how));
                c.dispatch(ctx, next);
            });
            return;
        }
        if let Some((key, method, keep_alive)) = next.check {
            let c = self.clone();
            let color = self
                .srv
                .cache_colors
                .pick(ctx.handle(), ctx.worker(), self.color);
            ctx.post(color, h.check, move |ctx| {
                check_in_cache(ctx, c, &key, method, keep_alive)
            });
        }
        if let Some(reply) = next.reply {
            self.post_write(ctx, Some(reply));
        } else if next.write {
            self.post_write(ctx, None);
        }
        if next.read {
            let c = self.clone();
            ctx.post(self.color, h.read, move |ctx| {
                // Not a readiness event: read until `WouldBlock`.
                let next = c.cell.with(ctx, |conn| conn.on_readable(&c.srv, false));
                c.dispatch(ctx, next);
            });
        }
        if next.parse {
            let c = self.clone();
            ctx.post(self.color, h.parse, move |ctx| {
                let next = c.cell.with(ctx, |conn| conn.on_parse(&c.srv));
                c.dispatch(ctx, next);
            });
        }
        if let Some(d) = next.rearm {
            self.arm_timer(d);
        }
    }

    fn post_write(self: &Arc<Self>, ctx: &mut Ctx<'_>, reply: Option<Reply>) {
        let c = self.clone();
        ctx.post(self.color, self.srv.h.write, move |ctx| {
            let worker = ctx.worker();
            let next = c
                .cell
                .with(ctx, |conn| conn.on_write(&c.srv, reply, worker));
            c.dispatch(ctx, next);
        });
    }

    fn arm_timer(self: &Arc<Self>, after: Duration) {
        let c = self.clone();
        // After shutdown the timer is not needed: ignore the error.
        let _ = self
            .srv
            .handle
            .post_after(after, self.color, self.srv.h.timeout, move |ctx| {
                let next = c.cell.with(ctx, |conn| conn.on_timer(&c.srv));
                c.dispatch(ctx, next);
            });
    }

    /// Deregisters, closes the socket and posts DecClientAccepted (invariants 3 and 4).
    fn finalize(self: &Arc<Self>, ctx: &mut Ctx<'_>, stream: mio::net::TcpStream) {
        let srv = self.srv.clone();
        let (refused, gone) = self.cell.with(ctx, |c| (c.refused, c.client_gone));
        let counters = &srv.counters[ctx.worker() % srv.counters.len()];
        bump(&counters.closed, 1);
        if gone {
            bump(&counters.client_gone, 1);
        }
        match self.token.get() {
            Some(&tok) => {
                let _ = srv.handle.deregister_io(&mut SourceFd(&self.fd), tok);
                drop(stream);
                post_dec(ctx, &srv, refused);
            }
            None => {
                // RegisterFdInEpoll has not published the token yet: it will have once this
                // color-0 event runs.
                let c = self.clone();
                ctx.post(EPOLL_COLOR, srv.h.close, move |ctx| {
                    if let Some(&tok) = c.token.get() {
                        let _ = c.srv.handle.deregister_io(&mut SourceFd(&c.fd), tok);
                    }
                    drop(stream);
                    post_dec(ctx, &c.srv, refused);
                });
            }
        }
    }
}

fn post_dec(ctx: &mut Ctx<'_>, srv: &Arc<Server>, refused: bool) {
    let s = srv.clone();
    ctx.post(ACCEPT_COLOR, srv.h.dec, move |ctx| {
        s.admission.with(ctx, |a| {
            if refused {
                a.refusing = a.refusing.saturating_sub(1);
            } else {
                a.clients = a.clients.saturating_sub(1);
            }
        })
    });
}

/// The cache colors: `base + conn % count`, with `base` and `count` multiples of the
/// worker count.
///
/// The cache is immutable, so its color only decides where a lookup runs, never what it may
/// touch. Deriving it from the connection's color keeps the lookup on the connection's core
/// under the runtime's initial `slot % workers` placement (no cross-core hop per request),
/// while it stays a color of its own that the runtime can steal separately; after steals,
/// [`CacheColors::pick`] chooses one that is still on the posting core. (Hashing the
/// file name instead, as a partitioned mutable cache would need, sends half the lookups to
/// the other core and back: measured about 10% fewer requests/s with 2 workers.)
#[derive(Clone, Copy, Debug)]
pub struct CacheColors {
    base: u32,
    count: u32,
}

impl CacheColors {
    pub fn new(workers: usize) -> CacheColors {
        let w = workers.max(1) as u32;
        // The runtime places slot `color % 65536` on core `slot % workers`: align the slot.
        const SLOTS: u32 = colored_runtime::MAP_SLOTS as u32;
        let slot = (CACHE_COLOR_BASE % SLOTS).div_ceil(w) * w;
        CacheColors {
            base: CACHE_COLOR_BASE - CACHE_COLOR_BASE % SLOTS + slot,
            count: CACHE_COLORS.div_ceil(w) * w,
        }
    }

    pub fn of(&self, conn: Color) -> Color {
        Color(self.base + conn.0 % self.count)
    }

    /// The cache color for a lookup posted from `worker` for connection `conn`: `of(conn)`
    /// if the runtime still places it on `worker`, otherwise the next cache color that it
    /// does place there (at most `PICK_TRIES` looked at). After stealing has moved the
    /// connection's color to another core, this keeps the lookup beside the connection
    /// instead of bouncing to the core the connection came from and back.
    pub fn pick(&self, handle: &Handle, worker: usize, conn: Color) -> Color {
        let first = self.of(conn);
        for k in 0..PICK_TRIES.min(self.count) {
            let c = Color(self.base + (first.0 - self.base + k) % self.count);
            if handle.core_of(c) == worker {
                return c;
            }
        }
        first
    }
}

/// Cache colors [`CacheColors::pick`] looks at before giving up on locality.
const PICK_TRIES: u32 = 16;

/// The color of a connection.
fn conn_color(fd: RawFd) -> Color {
    Color(fd as u32)
}

/// CheckInCache: look up the prebuilt response; post WriteResponse in the connection's color.
fn check_in_cache(
    ctx: &mut Ctx<'_>,
    conn: Arc<ConnShared>,
    key: &[u8],
    method: Method,
    keep_alive: bool,
) {
    let reply = match conn.srv.cache.index_of(key) {
        Some(index) => Reply::File {
            index,
            method,
            keep_alive,
        },
        None => Reply::Error {
            kind: ErrorKind::NotFound,
            method,
            keep_alive,
        },
    };
    conn.post_write(ctx, Some(reply));
}

/// Accept: accept until `WouldBlock` (or a batch), admit each connection or refuse it.
fn accept(ctx: &mut Ctx<'_>, srv: &Arc<Server>) {
    for _ in 0..ACCEPT_BATCH {
        match srv.listener.accept() {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                let max = srv.cfg.max_clients;
                let admit = srv.admission.with(ctx, |a| {
                    if a.clients < max {
                        a.clients += 1;
                        Some(false)
                    } else if a.refusing < MAX_REFUSING {
                        a.refusing += 1;
                        Some(true)
                    } else {
                        None
                    }
                });
                let counters = &srv.counters[ctx.worker() % srv.counters.len()];
                match admit {
                    Some(refused) => {
                        bump(&counters.accepted, 1);
                        let s = srv.clone();
                        ctx.post(EPOLL_COLOR, srv.h.register, move |ctx| {
                            register_fd(ctx, &s, stream, refused)
                        });
                    }
                    None => {
                        bump(&counters.refused_unanswered, 1);
                        drop(stream);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                ) => {}
            Err(e) => {
                // Out of descriptors or similar: the edge is consumed, so retry on a timer.
                eprintln!("sws: accept: {e}");
                let s = srv.clone();
                let _ = srv.handle.post_after(
                    Duration::from_millis(20),
                    ACCEPT_COLOR,
                    srv.h.accept,
                    move |ctx| accept(ctx, &s),
                );
                return;
            }
        }
    }
    // A full batch: continue in a fresh event so other color-1 work is not starved.
    let s = srv.clone();
    ctx.post(ACCEPT_COLOR, srv.h.accept, move |ctx| accept(ctx, &s));
}

/// RegisterFdInEpoll: put the connection under the reactor, in its own color.
fn register_fd(ctx: &mut Ctx<'_>, srv: &Arc<Server>, stream: mio::net::TcpStream, refused: bool) {
    let fd = stream.as_raw_fd();
    let color = conn_color(fd);
    let conn = Conn {
        stream: Some(stream),
        inbuf: Vec::new(),
        start: 0,
        end: 0,
        out: OutQueue::new(),
        phase: Phase::Open,
        in_flight: refused,
        read_paused: false,
        peer_eof: false,
        refused,
        client_gone: false,
        last_activity: Instant::now(),
        request_started: None,
    };
    let shared = Arc::new(ConnShared {
        cell: ColorCell::new(color, conn),
        token: OnceLock::new(),
        fd,
        color,
        srv: srv.clone(),
    });
    let c = shared.clone();
    let res = srv.handle.register_io(
        &mut SourceFd(&fd),
        Interest::READABLE | Interest::WRITABLE,
        color,
        srv.h.read,
        move |ctx: &mut Ctx<'_>, r: Readiness| on_ready(ctx, &c, r),
    );
    match res {
        Ok(tok) => {
            let _ = shared.token.set(tok);
        }
        Err(e) => {
            eprintln!("sws: register: {e}");
            // Nobody else holds the stream: close it here and give the slot back.
            let c = shared.clone();
            ctx.post(color, srv.h.close, move |ctx| {
                let stream = c.cell.with(ctx, |conn| conn.finish());
                drop(stream);
                post_dec(ctx, &c.srv, refused);
            });
            return;
        }
    }
    if refused {
        shared.post_write(
            ctx,
            Some(Reply::Error {
                kind: ErrorKind::ServiceUnavailable,
                method: Method::Get,
                keep_alive: false,
            }),
        );
    }
    shared.arm_timer(srv.cfg.idle_timeout);
}

/// ReadRequest, as the reactor's readiness callback.
fn on_ready(ctx: &mut Ctx<'_>, conn: &Arc<ConnShared>, r: Readiness) {
    let srv = &conn.srv;
    let next = conn.cell.with(ctx, |c| {
        if c.phase == Phase::Done {
            return Next::default();
        }
        let mut next =
            if r.readable || r.read_closed || r.error || matches!(c.phase, Phase::Lingering { .. })
            {
                c.on_readable(srv, !r.read_closed && !r.error)
            } else {
                Next::default()
            };
        if r.writable && !c.out.is_empty() && next.close.is_none() && next.finalize.is_none() {
            next.write = true;
        }
        next
    });
    conn.dispatch(ctx, next);
}

/// A running colored server.
pub struct RunningServer {
    rt: Option<Runtime>,
    handle: Handle,
    srv: Arc<Server>,
    addr: SocketAddr,
}

impl RunningServer {
    /// Builds the runtime, the cache is given, binds and starts accepting.
    pub fn start(
        rt_cfg: RuntimeConfig,
        cfg: ServerConfig,
        cache: Cache,
    ) -> anyhow::Result<RunningServer> {
        let workers = rt_cfg.workers.max(1);
        let rt = Runtime::new(rt_cfg).map_err(|e| anyhow::anyhow!("runtime: {e}"))?;
        let h = Handlers::register(&rt, cfg.conn_penalty);
        let listener = bind_listener(cfg.listen, cfg.reuse_port)?;
        let addr = listener.local_addr()?;
        let handle = rt.handle();
        let counters = (0..workers).map(|_| WorkerCounters::default()).collect();
        let srv = Arc::new(Server {
            cfg,
            cache,
            errors: ErrorResponses::new(),
            h,
            handle: handle.clone(),
            admission: ColorCell::new(ACCEPT_COLOR, Admission::default()),
            listener,
            counters,
            cache_colors: CacheColors::new(workers),
        });
        let s = srv.clone();
        let lfd = srv.listener.as_raw_fd();
        handle
            .register_io(
                &mut SourceFd(&lfd),
                Interest::READABLE,
                ACCEPT_COLOR,
                h.accept,
                move |ctx: &mut Ctx<'_>, _r: Readiness| accept(ctx, &s),
            )
            .map_err(|e| anyhow::anyhow!("registering the listener: {e}"))?;
        // Connections that arrived before the registration produce no edge: accept once.
        let s = srv.clone();
        handle
            .post(ACCEPT_COLOR, h.accept, move |ctx| accept(ctx, &s))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(RunningServer {
            rt: Some(rt),
            handle,
            srv,
            addr,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// The server's counters, summed over workers.
    pub fn server_stats(&self) -> ServerStats {
        let mut s = ServerStats::default();
        let sum = |f: &dyn Fn(&WorkerCounters) -> &AtomicU64| {
            self.srv
                .counters
                .iter()
                .map(|c| f(c).load(Ordering::Relaxed))
                .sum::<u64>()
        };
        s.requests_served = sum(&|c| &c.requests);
        s.bytes_queued = sum(&|c| &c.bytes);
        s.connections_accepted = sum(&|c| &c.accepted);
        s.connections_closed = sum(&|c| &c.closed);
        s.refused_unanswered = sum(&|c| &c.refused_unanswered);
        s.client_gone = sum(&|c| &c.client_gone);
        for k in ErrorKind::ALL {
            s.errors
                .insert(k.name().to_string(), sum(&|c| &c.errors[k.index()]));
        }
        s
    }

    /// Stops the runtime and waits for its workers. Returns the final statistics.
    pub fn stop(mut self) -> (ServerStats, colored_runtime::RuntimeStats) {
        self.handle.shutdown();
        let rt = self.rt.take().expect("runtime present until stop");
        let rstats = rt.shutdown();
        (self.server_stats(), rstats)
    }
}

/// Binds a non-blocking listener (SO_REUSEADDR; SO_REUSEPORT for N-copy children).
pub fn bind_listener(addr: SocketAddr, reuse_port: bool) -> anyhow::Result<mio::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    if reuse_port {
        sock.set_reuse_port(true)?;
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())
        .map_err(|e| anyhow::anyhow!("bind {addr}: {e}"))?;
    sock.listen(4096)?;
    Ok(mio::net::TcpListener::from_std(sock.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_colors_follow_the_connection_core() {
        for workers in 1..=8usize {
            let cc = CacheColors::new(workers);
            for fd in [3u32, 4, 5, 17, 255, 256, 1000, 40_000] {
                let c = cc.of(Color(fd));
                let slot = c.0 as usize % colored_runtime::MAP_SLOTS;
                assert_eq!(
                    slot % workers,
                    fd as usize % workers,
                    "workers {workers} fd {fd}"
                );
                assert!(slot >= 49_152, "cache slots stay clear of connection slots");
            }
        }
    }
}
