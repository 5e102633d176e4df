//! The SFS server on the colored runtime.
//!
//! Coloring, as libasync-smp did it for SFS:
//! - Each connection has a color `c` (distinct modulo 65536, never 0) with
//!   `--coloring per-client`, or 0 with `--coloring none`. Everything touching the
//!   connection's socket and ciphers runs in `c`: reading and decrypting requests
//!   (`ConnIo`), encrypting and writing replies and callbacks (`Encrypt`). So the crypto
//!   of different clients runs in parallel.
//! - Everything else runs in color 0 and is therefore serial: accepting (`Accept`), the
//!   export (file system), the lease table and the uid mapping (`Dispatch`,
//!   `Disconnect`, `LeaseTimer`), which [`crate::dispatch`] implements. Color 0 owns
//!   `Core` (the dispatcher and the live connections) in a `ColorCell`; each
//!   connection owns its `ConnState` in a `ColorCell` of its color, so the color
//!   discipline is checked at run time, and no lock is taken on either.
//!
//! Invariants:
//! 1. Per connection, frames are decrypted in arrival order (one color, FIFO), and the
//!    replies color 0 produces are encrypted in the order it produced them (posts from
//!    one color to another run in posting order). Counter nonces stay in step.
//! 2. Any security failure (bad proof, bad frame, oversized or truncated frame,
//!    undecodable message) closes the connection *before* the frame is acted on, and is
//!    logged with its reason; nothing reaches color 0, so nothing changes on disk.
//! 3. A conflicting operation's reply is held in the lease table until the other
//!    holders acknowledge INVALIDATE, disconnect, or their leases expire (a color-0 timer).
//! 4. A connection is closed once: the `closed` flag in its state; after that its
//!    pending encrypt events are dropped, and color 0 forgets it (`Disconnect`).
//! 5. A stable WRITE's data is written in color 0 (so later operations see it) but
//!    its fsync, like COMMIT's, runs on the runtime's blocking pool; the reply is built
//!    in color 0 when the fsync completes (`SyncDone`), so no acknowledgement of a
//!    stable write precedes its fsync, and color 0 never waits for the disk.
//! 6. A connection's memory grows with what it has earned. Before authentication it reads
//!    at most one handshake frame's worth at a time (`HANDSHAKE_READ` bytes, frames of at
//!    most 256 bytes), so an idle or half-hello connection holds a few hundred bytes of
//!    buffer. Authenticated, it reads what the frame in progress needs (16 KiB to 256 KiB
//!    per call, up to one maximal frame buffered) and frees a large empty buffer. Its
//!    output is budgeted: each call forwarded to color 0 reserves the most its reply can
//!    take (`reply_reservation`; a READ its count), released when the reply is queued;
//!    while queued plus reserved bytes exceed [`OUT_CAP`] (or 256 calls are in flight) no
//!    further request is read, neither from the buffer nor from the socket, until half the
//!    budget is free: a client that requests READs and never reads its socket holds at
//!    most the budget, and TCP flow control stops it. Unsolicited output (INVALIDATE) past
//!    4 x [`OUT_CAP`] closes the connection. A call that repeats the xid of a call in
//!    flight closes it too, since the budget tracks calls by xid.
//! 7. At most `max_unauthenticated` connections are between accept and authentication
//!    (`Shared::unauthenticated`, counted from admission to authentication or close); past
//!    it new connections are closed at once, counted and logged (at most once a second).
//!    The handshake timeout closes the others.
//! 8. Accept runs the shared accept loop ([`edge::accept`]): a hard error (EMFILE...)
//!    arms one retry timer with backoff instead of ending accepting, since the listener's
//!    readiness edge it consumed will not come again for clients already queued.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use colored_runtime::{
    Color, ColorCell, Ctx, Handle, HandlerId, HandlerSpec, IoToken, Readiness, Runtime,
    RuntimeConfig, RuntimeStats,
};
use edge::accept::{Acceptor, End, Trigger};
use mio::net::{TcpListener, TcpStream};
use mio::unix::SourceFd;
use mio::Interest;

pub use crate::dispatch::ConnId;
use crate::dispatch::{Dispatcher, Outcome, Outgoing, SyncJob};
use crate::frame::{FrameBuf, LEN_BYTES};
use crate::fs::Export;
use crate::keys::{Key, KeyTable};
use crate::proto::{ClientMsg, Request, ServerMsg};
use crate::session::{self, RecvCipher, SendCipher, NONCE_LEN};

/// How connections are colored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Coloring {
    /// Each connection's crypto in its own color (libasync-smp's SFS).
    PerClient,
    /// Everything in color 0 (the uniprocessor original).
    None,
}

impl std::str::FromStr for Coloring {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "per-client" => Ok(Coloring::PerClient),
            "none" => Ok(Coloring::None),
            _ => Err(format!("unknown coloring {s:?} (per-client|none)")),
        }
    }
}

/// Server configuration (parsed once at the edge).
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Export directory.
    pub export: PathBuf,
    /// Key table file.
    pub keys: PathBuf,
    /// Runtime configuration (workers, queue design, stealing).
    pub runtime: RuntimeConfig,
    /// Coloring.
    pub coloring: Coloring,
    /// Attribute lease duration.
    pub lease: Duration,
    /// Connections not authenticated within this time are closed.
    pub handshake_timeout: Duration,
    /// Connections accepted but not authenticated yet, at most; past it new connections are
    /// refused (closed at once), counted and logged. [`MAX_UNAUTHENTICATED`] by default.
    pub max_unauthenticated: usize,
}

/// Output a connection may commit to before its requests stop being read: bytes queued for
/// its socket plus bytes reserved for the replies of its requests in flight (invariant 6).
pub const OUT_CAP: usize = 4 << 20;
/// Requests of one connection in flight (sent to color 0, reply not yet queued) at most.
const MAX_INFLIGHT: usize = 256;
/// Queued output past which a connection is closed: only callbacks the client did not ask
/// for, or replies larger than reserved, can get there, and only for a peer that reads
/// nothing.
const OUT_HARD_CAP: usize = 4 * OUT_CAP;
/// Reserved for a reply whose size the request does not bound (attributes, handles, done).
const SMALL_REPLY: usize = crate::proto::MAX_FH + 512;
/// Largest read from the socket per `read` call.
const READ_CHUNK: usize = 256 * 1024;
/// Smallest read of an authenticated connection (several small requests per call).
const OPEN_READ: usize = 16 * 1024;
/// An empty input buffer larger than this is freed, so an idle connection that once sent a
/// large WRITE does not keep the memory.
const IDLE_RBUF_KEEP: usize = 64 * 1024;
/// Largest handshake message (hello with the longest user name, or a proof).
const HANDSHAKE_FRAME_MAX: usize = 256;
/// Bytes read per call before authentication: one handshake frame and its length.
const HANDSHAKE_READ: usize = LEN_BYTES + HANDSHAKE_FRAME_MAX;
/// Default time a connection has to authenticate.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cap on connections that have not authenticated yet (see
/// [`ServerConfig::max_unauthenticated`]).
pub const MAX_UNAUTHENTICATED: usize = 4096;
/// At most one log line per this long about refused connections.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(1);

#[derive(Clone, Copy)]
struct Handlers {
    accept: HandlerId,
    conn_io: HandlerId,
    dispatch: HandlerId,
    encrypt: HandlerId,
    disconnect: HandlerId,
    lease_timer: HandlerId,
    sync_done: HandlerId,
}

struct Shared {
    h: Handlers,
    keys: KeyTable,
    coloring: Coloring,
    lease_ms: u32,
    handshake_timeout: Duration,
    server_id: u32,
    next_conn: AtomicU64,
    core: ColorCell<Core>,
    /// The listening socket (non-blocking, registered in color 0).
    listener: TcpListener,
    /// The accept loop's state (color 0).
    acceptor: ColorCell<Acceptor>,
    /// Connections accepted and not authenticated or closed yet (invariant 7).
    unauthenticated: AtomicUsize,
    /// The cap on `unauthenticated`.
    max_unauthenticated: usize,
    /// When a refusal was last logged (color 0).
    refusal_log: ColorCell<Option<Instant>>,
    /// The connection layer's counters.
    counters: Counters,
}

/// The connection layer's counters; any color adds to them (relaxed: only summed).
#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    refused_unauthenticated: AtomicU64,
    accept_errors: AtomicU64,
    handshake_timeouts: AtomicU64,
    reads_paused: AtomicU64,
    closed_over_output: AtomicU64,
}

/// The connection layer's counters, as `--stats-json` reports them beside the runtime's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConnStats {
    /// Connections accepted and admitted.
    pub connections_accepted: u64,
    /// Connections refused because too many had not authenticated yet.
    pub refused_unauthenticated: u64,
    /// Hard accept errors (EMFILE, ENFILE, ENOMEM...): each one backed off and retried.
    pub accept_errors: u64,
    /// Connections closed for not authenticating in time.
    pub handshake_timeouts: u64,
    /// Times a connection's requests stopped being read because its output budget
    /// ([`OUT_CAP`]) was spent.
    pub reads_paused: u64,
    /// Connections closed with more than 4 x [`OUT_CAP`] of output queued.
    pub closed_over_output: u64,
}

/// Color-0 state: the serial part of the server.
struct Core {
    /// Export, leases and sessions ([`crate::dispatch`]).
    dispatch: Dispatcher,
    /// Live connections, to deliver the dispatcher's frames to.
    conns: HashMap<ConnId, Arc<Conn>>,
}

struct Conn {
    id: ConnId,
    color: Color,
    peer: SocketAddr,
    st: ColorCell<ConnState>,
}

enum Phase {
    Hello,
    Proof {
        user: String,
        key: Key,
        nc: [u8; NONCE_LEN],
        ns: [u8; NONCE_LEN],
    },
    Open {
        send: SendCipher,
        recv: RecvCipher,
    },
}

/// A connection's state, owned by its color.
struct ConnState {
    /// The socket; `None` once closed, so its descriptor is released at once rather than
    /// when the last event that holds the connection (the handshake timer) has run.
    stream: Option<TcpStream>,
    /// The reactor registration, until closed.
    token: Option<IoToken>,
    /// Received, unprocessed bytes; sized by what the connection has earned (invariant 6).
    rbuf: FrameBuf,
    /// Handshake step, then the session's ciphers.
    phase: Phase,
    /// Sealed frames not yet written.
    out: VecDeque<Vec<u8>>,
    /// Bytes of `out`'s front frame already written.
    out_off: usize,
    /// Unwritten bytes in `out`.
    out_bytes: usize,
    /// Calls sent to color 0 whose reply is not queued yet: xid -> bytes reserved for it.
    inflight: HashMap<u32, usize>,
    /// Sum of `inflight`'s reservations.
    reserved: usize,
    /// Requests are not read while the output budget is spent (invariant 6).
    paused: bool,
    /// Closed (invariant 4).
    closed: bool,
    /// Counted in `Shared::unauthenticated`: from accept until authentication or close.
    unauthenticated: bool,
}

/// What a connection event asks for once its state is released.
#[derive(Default)]
struct ConnActions {
    to_core: Vec<ClientMsg>,
    authenticated: Option<String>,
    disconnected: bool,
}

/// The most a request's reply can take (what it reserves of the output budget).
fn reply_reservation(req: &Request) -> usize {
    const HEADER: usize = 64 + crate::session::TAG_LEN;
    match req {
        Request::Read { count, .. } => (*count as usize).min(crate::proto::MAX_IO) + HEADER,
        Request::ReadDir { max_entries, .. } => {
            let n = (*max_entries).min(crate::proto::MAX_DIR_ENTRIES) as usize;
            n * (crate::proto::MAX_NAME + 32) + HEADER
        }
        _ => SMALL_REPLY,
    }
}

impl ConnState {
    fn new(stream: TcpStream, token: IoToken) -> ConnState {
        let mut rbuf = FrameBuf::new();
        rbuf.set_limit(HANDSHAKE_FRAME_MAX);
        ConnState {
            stream: Some(stream),
            token: Some(token),
            rbuf,
            phase: Phase::Hello,
            out: VecDeque::new(),
            out_off: 0,
            out_bytes: 0,
            inflight: HashMap::new(),
            reserved: 0,
            paused: false,
            closed: false,
            unauthenticated: true,
        }
    }

    fn close(
        &mut self,
        conn: &Conn,
        sh: &Shared,
        handle: &Handle,
        reason: &str,
        acts: &mut ConnActions,
    ) {
        if self.closed {
            return;
        }
        self.closed = true;
        // A client closing its connection is normal: logged at debug level only
        // (`SFS_LOG=debug`); every other reason is always logged.
        static DEBUG: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let debug = *DEBUG.get_or_init(|| std::env::var("SFS_LOG").is_ok_and(|v| v == "debug"));
        if debug || reason != "peer closed the connection" {
            eprintln!(
                "sfs-server: conn {} ({}): closing: {}",
                conn.id, conn.peer, reason
            );
        }
        if let Some(mut stream) = self.stream.take() {
            if let Some(t) = self.token.take() {
                let _ = handle.deregister_io(&mut stream, t);
            }
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        self.leave_unauthenticated(sh);
        self.rbuf = FrameBuf::new();
        self.out = VecDeque::new();
        self.out_bytes = 0;
        self.inflight = HashMap::new();
        self.reserved = 0;
        acts.disconnected = true;
    }

    /// Stops counting this connection as unauthenticated (authenticated, or closed).
    fn leave_unauthenticated(&mut self, sh: &Shared) {
        if std::mem::take(&mut self.unauthenticated) {
            sh.unauthenticated.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Output committed: queued bytes and replies reserved.
    fn committed(&self) -> usize {
        self.out_bytes + self.reserved
    }

    /// The output budget is spent: read no more requests.
    fn over_budget(&self) -> bool {
        self.committed() > OUT_CAP || self.inflight.len() >= MAX_INFLIGHT
    }

    /// Half the budget is free again: reading may resume.
    fn may_resume(&self) -> bool {
        self.committed() <= OUT_CAP / 2 && self.inflight.len() < MAX_INFLIGHT / 2
    }

    fn queue(&mut self, frame: Vec<u8>) {
        self.out_bytes += frame.len();
        self.out.push_back(frame);
    }

    /// Write queued bytes until done or `WouldBlock`.
    fn flush(&mut self) -> io::Result<()> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(());
        };
        while let Some(front) = self.out.front() {
            match stream.write(&front[self.out_off..]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "socket wrote 0 bytes",
                    ))
                }
                Ok(n) => {
                    self.out_off += n;
                    self.out_bytes -= n;
                    if self.out_off == front.len() {
                        self.out.pop_front();
                        self.out_off = 0;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// [`ConnState::flush`], closing the connection on an error; true while it is open.
    fn flush_or_close(
        &mut self,
        conn: &Conn,
        sh: &Shared,
        handle: &Handle,
        acts: &mut ConnActions,
    ) -> bool {
        match self.flush() {
            Ok(()) => true,
            Err(e) => {
                self.close(conn, sh, handle, &format!("write failed: {e}"), acts);
                false
            }
        }
    }

    /// Handle one complete frame; `Err` is a reason to close.
    fn on_frame(
        &mut self,
        sh: &Shared,
        lb: [u8; 4],
        mut body: Vec<u8>,
        acts: &mut ConnActions,
    ) -> Result<(), String> {
        match std::mem::replace(&mut self.phase, Phase::Hello) {
            Phase::Hello => {
                let (user, nc) = session::parse_client_hello(&body).map_err(|e| e.to_string())?;
                let key = sh
                    .keys
                    .get(&user)
                    .ok_or_else(|| format!("unknown user {user:?}"))?
                    .key
                    .clone();
                let ns = session::fresh_nonce();
                let proof = session::server_proof(&key, &user, &nc, &ns);
                let mut f = (((NONCE_LEN + 32) as u32).to_be_bytes()).to_vec();
                f.extend_from_slice(&session::server_challenge(&ns, &proof));
                self.queue(f);
                self.phase = Phase::Proof { user, key, nc, ns };
                Ok(())
            }
            Phase::Proof { user, key, nc, ns } => {
                session::verify_client_proof(&key, &user, &nc, &ns, &body)
                    .map_err(|e| format!("user {user:?}: {e}"))?;
                let (c2s, s2c) = session::derive_keys(&key, &nc, &ns);
                let mut send = SendCipher::new(&s2c);
                let mut f = vec![0u8; LEN_BYTES];
                ServerMsg::AuthOk {
                    lease_ms: sh.lease_ms,
                    server_id: sh.server_id,
                }
                .encode_into(&mut f);
                send.seal_in_place(&mut f).map_err(|e| e.to_string())?;
                self.queue(f);
                self.phase = Phase::Open {
                    send,
                    recv: RecvCipher::new(&c2s),
                };
                self.rbuf.set_limit(crate::frame::MAX_FRAME);
                self.leave_unauthenticated(sh);
                acts.authenticated = Some(user);
                Ok(())
            }
            Phase::Open { send, mut recv } => {
                let r = recv
                    .open_in_place(&lb, &mut body)
                    .map_err(|e| e.to_string());
                self.phase = Phase::Open { send, recv };
                r?;
                let m = ClientMsg::decode(&body).map_err(|e| e.to_string())?;
                if let ClientMsg::Call { xid, req } = &m {
                    let need = reply_reservation(req);
                    if self.inflight.insert(*xid, need).is_some() {
                        return Err(format!("call {xid} repeats the xid of a call in flight"));
                    }
                    self.reserved += need;
                }
                acts.to_core.push(m);
                Ok(())
            }
        }
    }

    /// Bytes to offer the next `read`: a handshake frame before authentication; then what
    /// the frame in progress still needs, at least [`OPEN_READ`], at most [`READ_CHUNK`].
    fn read_size(&self) -> usize {
        match self.phase {
            Phase::Open { .. } => self.rbuf.wanted().clamp(OPEN_READ, READ_CHUNK),
            _ => HANDSHAKE_READ,
        }
    }

    /// Process the complete frames buffered, while the output budget allows.
    fn process_frames(&mut self, sh: &Shared, acts: &mut ConnActions) -> Result<(), String> {
        while !self.closed {
            if !self.paused && self.over_budget() {
                self.paused = true;
                sh.counters.reads_paused.fetch_add(1, Ordering::Relaxed);
            }
            if self.paused {
                break;
            }
            match self.rbuf.next_frame() {
                Ok(None) => break,
                Ok(Some((lb, body))) => self.on_frame(sh, lb, body, acts)?,
                Err(e) => return Err(e.to_string()),
            }
        }
        self.rbuf.release_if_empty(IDLE_RBUF_KEEP);
        Ok(())
    }

    /// Process what is buffered, then read and process until `WouldBlock`, EOF, a spent
    /// output budget or an error.
    fn read_all(&mut self, conn: &Conn, sh: &Shared, handle: &Handle, acts: &mut ConnActions) {
        loop {
            if let Err(why) = self.process_frames(sh, acts) {
                self.close(conn, sh, handle, &why, acts);
                return;
            }
            if !self.flush_or_close(conn, sh, handle, acts) {
                return;
            }
            if self.closed || self.paused {
                return;
            }
            let want = self.read_size();
            let Some(stream) = self.stream.as_mut() else {
                return;
            };
            let sp = self.rbuf.spare(want);
            let n = sp.len().min(want);
            match stream.read(&mut sp[..n]) {
                Ok(0) => {
                    self.rbuf.commit(0);
                    let reason = match (self.rbuf.finish(), &self.phase) {
                        (Err(e), _) => e.to_string(),
                        (Ok(()), Phase::Open { .. }) => "peer closed the connection".to_string(),
                        (Ok(()), _) => {
                            "peer closed during the handshake (not authenticated)".to_string()
                        }
                    };
                    self.close(conn, sh, handle, &reason, acts);
                    return;
                }
                Ok(n) => self.rbuf.commit(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.rbuf.commit(0);
                    self.rbuf.release_if_empty(IDLE_RBUF_KEEP);
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => self.rbuf.commit(0),
                Err(e) => {
                    self.rbuf.commit(0);
                    self.close(conn, sh, handle, &format!("read failed: {e}"), acts);
                    return;
                }
            }
        }
    }
}

impl Conn {
    /// `ConnIo`: readiness in the connection's color: write what is queued, read and
    /// decrypt what arrived.
    fn on_ready(self: &Arc<Self>, sh: &Arc<Shared>, ctx: &mut Ctx<'_>, r: Readiness) {
        let mut acts = ConnActions::default();
        self.st.with(ctx, |s| {
            if s.closed {
                return;
            }
            if r.error {
                s.close(self, sh, ctx.handle(), "socket error", &mut acts);
                return;
            }
            if !s.flush_or_close(self, sh, ctx.handle(), &mut acts) {
                return;
            }
            if s.paused && s.may_resume() {
                s.paused = false;
            }
            s.read_all(self, sh, ctx.handle(), &mut acts);
        });
        self.after(sh, ctx, acts);
    }

    /// `Encrypt`: seal a plaintext frame from color 0 and write it; a reply gives back the
    /// output its call reserved.
    fn send(self: &Arc<Self>, sh: &Arc<Shared>, ctx: &mut Ctx<'_>, mut frame: Vec<u8>) {
        let mut acts = ConnActions::default();
        let mut resume = false;
        self.st.with(ctx, |s| {
            if s.closed {
                return;
            }
            if let Some(xid) = crate::proto::reply_xid(&frame) {
                if let Some(r) = s.inflight.remove(&xid) {
                    s.reserved -= r;
                }
            }
            let Phase::Open { send, .. } = &mut s.phase else {
                s.close(
                    self,
                    sh,
                    ctx.handle(),
                    "reply before authentication",
                    &mut acts,
                );
                return;
            };
            if let Err(e) = send.seal_in_place(&mut frame) {
                s.close(self, sh, ctx.handle(), &e.to_string(), &mut acts);
                return;
            }
            s.queue(frame);
            if !s.flush_or_close(self, sh, ctx.handle(), &mut acts) {
                return;
            }
            if s.out_bytes > OUT_HARD_CAP {
                sh.counters
                    .closed_over_output
                    .fetch_add(1, Ordering::Relaxed);
                let why = format!(
                    "{} bytes of output queued: the peer does not read",
                    s.out_bytes
                );
                s.close(self, sh, ctx.handle(), &why, &mut acts);
                return;
            }
            if s.paused && s.may_resume() {
                s.paused = false;
                resume = true;
            }
        });
        self.after(sh, ctx, acts);
        if resume {
            self.post_ready(sh, ctx);
        }
    }

    /// Posts a `ConnIo` as if the socket were readable and writable: reading resumes (the
    /// data already in the socket raises no new edge).
    fn post_ready(self: &Arc<Self>, sh: &Arc<Shared>, ctx: &mut Ctx<'_>) {
        let (me, sh2) = (self.clone(), sh.clone());
        ctx.post(self.color, sh.h.conn_io, move |ctx| {
            me.on_ready(
                &sh2,
                ctx,
                Readiness {
                    readable: true,
                    writable: true,
                    ..Default::default()
                },
            )
        });
    }

    fn after(self: &Arc<Self>, sh: &Arc<Shared>, ctx: &mut Ctx<'_>, acts: ConnActions) {
        let id = self.id;
        if let Some(user) = acts.authenticated {
            let sh2 = sh.clone();
            ctx.post(Color(0), sh.h.dispatch, move |ctx| {
                let entry = sh2.keys.get(&user);
                let ident = entry.map(|e| (e.uid, e.gid));
                let trusted = entry.is_some_and(|e| e.trusted);
                sh2.core
                    .with(ctx, |core| core.dispatch.authenticate(id, ident, trusted))
            });
        }
        for m in acts.to_core {
            let sh2 = sh.clone();
            ctx.post(Color(0), sh.h.dispatch, move |ctx| {
                dispatch(&sh2, ctx, id, m)
            });
        }
        if acts.disconnected {
            let sh2 = sh.clone();
            ctx.post(Color(0), sh.h.disconnect, move |ctx| {
                let out = sh2.core.with(ctx, |core| {
                    let out = core.dispatch.disconnect(id);
                    core.conns.remove(&id);
                    core.route(out)
                });
                deliver(&sh2, ctx, out);
            });
        }
    }
}

/// Frames addressed to live connections.
type Routed = Vec<(Arc<Conn>, Vec<u8>)>;

impl Core {
    /// Address the dispatcher's frames to live connections (frames to connections
    /// that closed meanwhile are dropped).
    fn route(&self, out: Outgoing) -> Routed {
        out.into_iter()
            .filter_map(|(id, f)| self.conns.get(&id).map(|c| (c.clone(), f)))
            .collect()
    }

    /// Route an outcome's frames and log its warnings with the peer's address.
    fn conclude(&self, o: Outcome) -> (Routed, Option<Instant>, Option<SyncJob>) {
        for (id, w) in &o.warnings {
            match self.conns.get(id) {
                Some(c) => eprintln!("sfs-server: conn {} ({}): {w}", c.id, c.peer),
                None => eprintln!("sfs-server: conn {id}: {w}"),
            }
        }
        (self.route(o.out), o.arm, o.sync)
    }
}

fn deliver(sh: &Arc<Shared>, ctx: &mut Ctx<'_>, out: Routed) {
    for (conn, frame) in out {
        let sh2 = sh.clone();
        let c = conn.color;
        ctx.post(c, sh.h.encrypt, move |ctx| conn.send(&sh2, ctx, frame));
    }
}

/// `Dispatch` (color 0).
fn dispatch(sh: &Arc<Shared>, ctx: &mut Ctx<'_>, id: ConnId, m: ClientMsg) {
    let done = sh.core.with(ctx, |core| {
        let o = core.dispatch.handle(id, m, Instant::now());
        core.conclude(o)
    });
    carry_out(sh, ctx, id, done);
}

/// Deliver an outcome's frames, arm the lease timer, and run its fsync off color 0.
fn carry_out(
    sh: &Arc<Shared>,
    ctx: &mut Ctx<'_>,
    id: ConnId,
    (out, arm, sync): (Routed, Option<Instant>, Option<SyncJob>),
) {
    deliver(sh, ctx, out);
    if let Some(d) = arm {
        arm_timer(sh, ctx, d);
    }
    let Some(job) = sync else {
        return;
    };
    // fsync blocks: run it on the blocking pool so color 0 keeps serving; the reply is
    // built back in color 0 when it completes.
    let (file, data_only) = (job.file.clone(), job.data_only);
    let sh2 = sh.clone();
    let r = ctx.handle().spawn_blocking(
        Color(0),
        sh.h.sync_done,
        move || {
            if data_only {
                file.sync_data()
            } else {
                file.sync_all()
            }
        },
        move |ctx, res| {
            let done = sh2.core.with(ctx, |core| {
                let o = core.dispatch.finish_sync(job, res);
                core.conclude(o)
            });
            carry_out(&sh2, ctx, id, done);
        },
    );
    if r.is_err() {
        eprintln!("sfs-server: conn {id}: runtime shut down before an fsync could run; no reply");
    }
}

fn arm_timer(sh: &Arc<Shared>, ctx: &mut Ctx<'_>, at: Instant) {
    let sh2 = sh.clone();
    let _ = ctx
        .handle()
        .post_at(at, Color(0), sh.h.lease_timer, move |ctx| {
            let (out, next) = sh2.core.with(ctx, |core| {
                let (out, next) = core.dispatch.on_timer(Instant::now());
                (core.route(out), next)
            });
            deliver(&sh2, ctx, out);
            if let Some(n) = next {
                arm_timer(&sh2, ctx, n);
            }
        });
}

/// `Accept` (color 0): the shared accept loop ([`edge::accept`]); each connection is admitted
/// ([`admit`]) or refused.
fn on_accept(sh: &Arc<Shared>, ctx: &mut Ctx<'_>, trigger: Trigger) {
    let outcome = sh.acceptor.with_ctx(ctx, |a, ctx| {
        a.run(
            trigger,
            || sh.listener.accept(),
            |(stream, peer)| admit(sh, ctx, stream, peer),
        )
    });
    if let Some(report) = outcome.report {
        eprintln!("sfs-server: {report}");
    }
    let sh2 = sh.clone();
    match outcome.end {
        End::Drained | End::Waiting => {}
        // A full batch: continue in a fresh event so other color-0 work is not starved.
        End::Full => ctx.post(Color(0), sh.h.accept, move |ctx| {
            on_accept(&sh2, ctx, Trigger::Ready)
        }),
        End::RetryAfter(d) => {
            sh.counters.accept_errors.fetch_add(1, Ordering::Relaxed);
            // After shutdown no retry is needed: ignore the error.
            let _ = ctx
                .handle()
                .post_after(d, Color(0), sh.h.accept, move |ctx| {
                    on_accept(&sh2, ctx, Trigger::Retry)
                });
        }
    }
}

/// Admission (color 0): refuse the connection past the cap on unauthenticated ones
/// (invariant 7); otherwise register it in its color and arm its handshake timeout.
fn admit(sh: &Arc<Shared>, ctx: &mut Ctx<'_>, mut stream: TcpStream, peer: SocketAddr) {
    if sh.unauthenticated.load(Ordering::Relaxed) >= sh.max_unauthenticated {
        let n = sh
            .counters
            .refused_unauthenticated
            .fetch_add(1, Ordering::Relaxed)
            + 1;
        drop(stream);
        sh.refusal_log.with(ctx, |last| {
            if last.is_none_or(|t| t.elapsed() >= REFUSAL_LOG_EVERY) {
                *last = Some(Instant::now());
                eprintln!(
                    "sfs-server: refused a connection from {peer}: {} connections have not \
                     authenticated yet (the cap); {n} refused so far",
                    sh.max_unauthenticated
                );
            }
        });
        return;
    }
    sh.counters.accepted.fetch_add(1, Ordering::Relaxed);
    let _ = stream.set_nodelay(true);
    let id = sh.next_conn.fetch_add(1, Ordering::Relaxed);
    let color = match sh.coloring {
        Coloring::PerClient => Color(1 + ((id - 1) % 65535) as u32),
        Coloring::None => Color(0),
    };
    let slot: Arc<OnceLock<Arc<Conn>>> = Arc::new(OnceLock::new());
    let (slot2, sh2) = (slot.clone(), sh.clone());
    let tok = ctx.handle().register_io(
        &mut stream,
        Interest::READABLE | Interest::WRITABLE,
        color,
        sh.h.conn_io,
        move |ctx, r| {
            if let Some(c) = slot2.get() {
                c.on_ready(&sh2, ctx, r)
            }
        },
    );
    let tok = match tok {
        Ok(t) => t,
        Err(e) => {
            eprintln!("sfs-server: registering connection from {peer} failed: {e}");
            return;
        }
    };
    sh.unauthenticated.fetch_add(1, Ordering::Relaxed);
    let conn = Arc::new(Conn {
        id,
        color,
        peer,
        st: ColorCell::new(color, ConnState::new(stream, tok)),
    });
    let _ = slot.set(conn.clone());
    let (c2, sh2) = (conn.clone(), sh.clone());
    let _ = ctx
        .handle()
        .post_after(sh.handshake_timeout, color, sh.h.conn_io, move |ctx| {
            let mut acts = ConnActions::default();
            c2.st.with(ctx, |s| {
                if !s.closed && !matches!(s.phase, Phase::Open { .. }) {
                    sh2.counters
                        .handshake_timeouts
                        .fetch_add(1, Ordering::Relaxed);
                    s.close(&c2, &sh2, ctx.handle(), "handshake timed out", &mut acts);
                }
            });
            c2.after(&sh2, ctx, acts);
        });
    sh.core.with(ctx, |core| {
        core.dispatch.connect(id);
        core.conns.insert(id, conn.clone())
    });
    // Readiness that fired before the slot was filled was ignored: look once more.
    conn.post_ready(sh, ctx);
}

/// A running server.
pub struct Server {
    rt: Runtime,
    addr: SocketAddr,
    sh: Arc<Shared>,
}

impl Server {
    /// Start serving on `listener` (already bound and listening).
    pub fn start(cfg: ServerConfig, listener: std::net::TcpListener) -> Result<Server> {
        let keys = KeyTable::load(&cfg.keys)?;
        let owners = keys_owner_map(&keys);
        let export = Export::open(&cfg.export, owners)?;
        let rt = Runtime::new(cfg.runtime.clone()).context("starting the runtime")?;
        for u in rt.stats().unpinned {
            eprintln!(
                "sfs-server: worker {} runs unpinned (CPU {}): {}",
                u.worker, u.cpu, u.error
            );
        }
        let h = Handlers {
            accept: rt.register(HandlerSpec::new("Accept")),
            conn_io: rt.register(HandlerSpec::new("ConnIo(decrypt)")),
            dispatch: rt.register(HandlerSpec::new("Dispatch(fs)")),
            encrypt: rt.register(HandlerSpec::new("Encrypt")),
            disconnect: rt.register(HandlerSpec::new("Disconnect")),
            lease_timer: rt.register(HandlerSpec::new("LeaseTimer")),
            sync_done: rt.register(HandlerSpec::new("SyncDone(fs)")),
        };
        let lease_ms = cfg.lease.as_millis().min(u32::MAX as u128) as u32;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let sh = Arc::new(Shared {
            h,
            keys,
            coloring: cfg.coloring,
            lease_ms,
            handshake_timeout: cfg.handshake_timeout,
            server_id: std::process::id(),
            next_conn: AtomicU64::new(1),
            core: ColorCell::new(
                Color(0),
                Core {
                    dispatch: Dispatcher::new(export, cfg.lease),
                    conns: HashMap::new(),
                },
            ),
            listener: TcpListener::from_std(listener),
            acceptor: ColorCell::new(Color(0), Acceptor::default()),
            unauthenticated: AtomicUsize::new(0),
            max_unauthenticated: cfg.max_unauthenticated,
            refusal_log: ColorCell::new(Color(0), None),
            counters: Counters::default(),
        });
        let sh2 = sh.clone();
        let lfd = sh.listener.as_raw_fd();
        rt.handle()
            .register_io(
                &mut SourceFd(&lfd),
                Interest::READABLE,
                Color(0),
                h.accept,
                move |ctx, _r| on_accept(&sh2, ctx, Trigger::Ready),
            )
            .context("registering the listener")?;
        // Connections that arrived before registration produce no edge: accept once.
        let sh3 = sh.clone();
        rt.post(Color(0), h.accept, move |ctx| {
            on_accept(&sh3, ctx, Trigger::Ready)
        })?;
        Ok(Server { rt, addr, sh })
    }

    /// The listening address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Runtime counters.
    pub fn stats(&self) -> RuntimeStats {
        self.rt.stats()
    }

    /// The connection layer's counters.
    pub fn conn_stats(&self) -> ConnStats {
        let c = &self.sh.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ConnStats {
            connections_accepted: get(&c.accepted),
            refused_unauthenticated: get(&c.refused_unauthenticated),
            accept_errors: get(&c.accept_errors),
            handshake_timeouts: get(&c.handshake_timeouts),
            reads_paused: get(&c.reads_paused),
            closed_over_output: get(&c.closed_over_output),
        }
    }

    /// A handle to the runtime.
    pub fn handle(&self) -> Handle {
        self.rt.handle()
    }

    /// Stop and return the final counters.
    pub fn shutdown(self) -> RuntimeStats {
        self.rt.shutdown()
    }
}

fn keys_owner_map(keys: &KeyTable) -> HashMap<u32, String> {
    keys.uid_names()
}

/// Bind a listening socket (with `SO_REUSEPORT` for N-copy servers): the shared listener
/// set-up.
pub use edge::listener::bind;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::plain;
    use crate::proto::{read_reply_frame, Fh, Reply, MAX_IO, MAX_NAME};

    #[test]
    fn reservations_bound_the_replies() {
        let fh = Fh(vec![0; 16]);
        let read = |count| Request::Read {
            fh: fh.clone(),
            offset: 0,
            count,
        };
        assert!(reply_reservation(&read(100)) >= 100);
        assert!(reply_reservation(&read(u32::MAX)) >= MAX_IO);
        assert!(reply_reservation(&read(u32::MAX)) < MAX_IO + 1024);
        let big = reply_reservation(&Request::ReadDir {
            dir: fh.clone(),
            cookie: 0,
            max_entries: u32::MAX,
        });
        assert!(big >= crate::proto::MAX_DIR_ENTRIES as usize * MAX_NAME);
        assert!(reply_reservation(&Request::Root) >= crate::proto::MAX_FH);
    }

    #[test]
    fn reply_frames_name_their_call() {
        let reply = plain(&ServerMsg::Reply {
            xid: 0xdead_beef,
            result: Ok(Reply::Done),
        });
        assert_eq!(crate::proto::reply_xid(&reply), Some(0xdead_beef));
        let read = read_reply_frame(7, 10, |buf, n| {
            buf.extend(std::iter::repeat_n(1, n));
            Ok(true)
        });
        assert_eq!(crate::proto::reply_xid(&read), Some(7));
        let cb = plain(&ServerMsg::Invalidate {
            cb_id: 1,
            fileid: 2,
        });
        assert_eq!(crate::proto::reply_xid(&cb), None);
        assert_eq!(crate::proto::reply_xid(&[0, 0]), None);
    }
}
