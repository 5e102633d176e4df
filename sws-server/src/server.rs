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
//!    (the state machine in [`crate::conn`]). Requests are therefore answered in order even
//!    though CheckInCache runs in another color, and a pipelined batch is parsed one request
//!    after the other.
//! 3. The admission counter lives in a `ColorCell` of color 1, touched only by Accept and
//!    DecClientAccepted. Every admitted connection posts exactly one DecClientAccepted, after
//!    its socket is closed (`Phase::Done` is entered once).
//! 4. A socket is deregistered before it is closed, so the reactor never sees a reused fd
//!    number through a stale registration. The `IoToken` is published by RegisterFdInEpoll
//!    (color 0); if a connection finishes before that store is visible, the deregistration is
//!    posted to color 0, which runs after RegisterFdInEpoll has finished.
//! 5. The cache is immutable after start-up; CheckInCache only reads it.
//! 6. Accept runs the shared accept loop ([`edge::accept`]) in color 1: a hard error such as
//!    EMFILE arms one retry timer (with backoff) instead of ending accepting, since the
//!    readiness edge it consumed will not come again for clients already queued.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use colored_runtime::{
    Color, ColorCell, Ctx, Handle, HandlerId, HandlerSpec, IoToken, Readiness, Runtime,
    RuntimeConfig,
};
use edge::accept::{Acceptor, End, Trigger};
use mio::unix::SourceFd;
use mio::Interest;

use crate::cache::Cache;
use crate::conn::{Conn, Next, Reply, Site};
use crate::counters::{bump, ServerStats, WorkerCounters};
use crate::http::{Limits, Method};
use crate::response::{ErrorKind, ErrorResponses};

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
/// Connections being refused with 503 at once; past this they are closed without an answer.
const MAX_REFUSING: usize = 1024;

/// Everything the server needs to start, parsed once from the command line.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Clients served at once; past it, 503.
    pub max_clients: usize,
    /// Idle connections, and request heads that take longer in total, get 408.
    pub idle_timeout: Duration,
    /// Request size limits.
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

/// The state shared by all events of one server.
struct Server {
    /// Configuration, cache, responses and counters: what connections use.
    site: Site,
    h: Handlers,
    handle: Handle,
    admission: ColorCell<Admission>,
    /// The accept loop's state (color 1).
    acceptor: ColorCell<Acceptor>,
    listener: mio::net::TcpListener,
    cache_colors: CacheColors,
}

/// Owned by color 1.
#[derive(Default)]
struct Admission {
    clients: usize,
    refusing: usize,
}

/// Everything about one connection that its events share.
struct ConnShared {
    cell: ColorCell<Conn>,
    token: OnceLock<IoToken>,
    fd: RawFd,
    color: Color,
    srv: Arc<Server>,
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
                let next = c
                    .cell
                    .with(ctx, |conn| conn.on_readable(&c.srv.site, false));
                c.dispatch(ctx, next);
            });
        }
        if next.parse {
            let c = self.clone();
            ctx.post(self.color, h.parse, move |ctx| {
                let next = c.cell.with(ctx, |conn| conn.on_parse(&c.srv.site));
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
                .with(ctx, |conn| conn.on_write(&c.srv.site, reply, worker));
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
                let next = c.cell.with(ctx, |conn| conn.on_timer(&c.srv.site));
                c.dispatch(ctx, next);
            });
    }

    /// Deregisters, closes the socket and posts DecClientAccepted (invariants 3 and 4).
    fn finalize(self: &Arc<Self>, ctx: &mut Ctx<'_>, stream: mio::net::TcpStream) {
        let srv = self.srv.clone();
        let (refused, gone) = self.cell.with(ctx, |c| (c.refused(), c.client_gone()));
        let counters = &srv.site.counters[ctx.worker() % srv.site.counters.len()];
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
    let reply = Reply::lookup(&conn.srv.site.cache, key, method, keep_alive);
    conn.post_write(ctx, Some(reply));
}

/// Accept: the shared accept loop ([`edge::accept`]); admits each connection or refuses it.
fn accept(ctx: &mut Ctx<'_>, srv: &Arc<Server>, trigger: Trigger) {
    let outcome = srv.acceptor.with_ctx(ctx, |a, ctx| {
        a.run(
            trigger,
            || srv.listener.accept(),
            |(stream, _peer)| admit(ctx, srv, stream),
        )
    });
    if let Some(report) = outcome.report {
        eprintln!("sws: {report}");
    }
    let s = srv.clone();
    match outcome.end {
        End::Drained | End::Waiting => {}
        // A full batch: continue in a fresh event so other color-1 work is not starved.
        End::Full => ctx.post(ACCEPT_COLOR, srv.h.accept, move |ctx| {
            accept(ctx, &s, Trigger::Ready)
        }),
        End::RetryAfter(d) => {
            let c = &srv.site.counters[ctx.worker() % srv.site.counters.len()];
            bump(&c.accept_errors, 1);
            // After shutdown no retry is needed: ignore the error.
            let _ = srv
                .handle
                .post_after(d, ACCEPT_COLOR, srv.h.accept, move |ctx| {
                    accept(ctx, &s, Trigger::Retry)
                });
        }
    }
}

/// Admission (color 1): a client slot, a 503 past `--max-clients`, or a close without an
/// answer past [`MAX_REFUSING`] refusals at once.
fn admit(ctx: &mut Ctx<'_>, srv: &Arc<Server>, stream: mio::net::TcpStream) {
    let _ = stream.set_nodelay(true);
    let max = srv.site.cfg.max_clients;
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
    let counters = &srv.site.counters[ctx.worker() % srv.site.counters.len()];
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

/// RegisterFdInEpoll: put the connection under the reactor, in its own color.
fn register_fd(ctx: &mut Ctx<'_>, srv: &Arc<Server>, stream: mio::net::TcpStream, refused: bool) {
    let fd = stream.as_raw_fd();
    let color = conn_color(fd);
    let conn = Conn::new(stream, refused);
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
    shared.arm_timer(srv.site.cfg.idle_timeout);
}

/// ReadRequest, as the reactor's readiness callback.
fn on_ready(ctx: &mut Ctx<'_>, conn: &Arc<ConnShared>, r: Readiness) {
    let next = conn.cell.with(ctx, |c| c.on_ready(&conn.srv.site, r));
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
        for u in rt.stats().unpinned {
            eprintln!(
                "sws: worker {} runs unpinned (CPU {}): {}",
                u.worker, u.cpu, u.error
            );
        }
        let h = Handlers::register(&rt, cfg.conn_penalty);
        let listener =
            mio::net::TcpListener::from_std(edge::listener::bind(cfg.listen, cfg.reuse_port)?);
        let addr = listener.local_addr()?;
        let handle = rt.handle();
        let counters = (0..workers).map(|_| WorkerCounters::default()).collect();
        let srv = Arc::new(Server {
            site: Site {
                cfg,
                cache,
                errors: ErrorResponses::new(),
                counters,
            },
            h,
            handle: handle.clone(),
            admission: ColorCell::new(ACCEPT_COLOR, Admission::default()),
            acceptor: ColorCell::new(ACCEPT_COLOR, Acceptor::default()),
            listener,
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
                move |ctx: &mut Ctx<'_>, _r: Readiness| accept(ctx, &s, Trigger::Ready),
            )
            .map_err(|e| anyhow::anyhow!("registering the listener: {e}"))?;
        // Connections that arrived before the registration produce no edge: accept once.
        let s = srv.clone();
        handle
            .post(ACCEPT_COLOR, h.accept, move |ctx| {
                accept(ctx, &s, Trigger::Ready)
            })
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
        ServerStats::sum(&self.srv.site.counters)
    }

    /// Stops the runtime and waits for its workers. Returns the final statistics.
    pub fn stop(self) -> (ServerStats, colored_runtime::RuntimeStats) {
        let (sstats, rstats, _) = self.stop_traced();
        (sstats, rstats)
    }

    /// [`RunningServer::stop`], also returning what the workers recorded if the runtime's
    /// configuration asked for a trace (`None` otherwise).
    pub fn stop_traced(
        mut self,
    ) -> (
        ServerStats,
        colored_runtime::RuntimeStats,
        Option<colored_trace::Trace>,
    ) {
        self.handle.shutdown();
        let rt = self.rt.take().expect("runtime present until stop");
        let (rstats, trace) = rt.shutdown_traced();
        (self.server_stats(), rstats, trace)
    }
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
