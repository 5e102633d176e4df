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

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use colored_runtime::{
    Color, ColorCell, Ctx, Handle, HandlerId, HandlerSpec, IoToken, Readiness, Runtime,
    RuntimeConfig, RuntimeStats,
};
use mio::net::{TcpListener, TcpStream};
use mio::Interest;

pub use crate::dispatch::ConnId;
use crate::dispatch::{Dispatcher, Outcome, Outgoing, SyncJob};
use crate::frame::{FrameBuf, LEN_BYTES};
use crate::fs::Export;
use crate::keys::{Key, KeyTable};
use crate::proto::{ClientMsg, ServerMsg};
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
}

/// Outgoing bytes are not read past this many queued bytes (back-pressure).
const OUT_HIGH_WATER: usize = 8 << 20;
/// Bytes read from a socket per `read` call.
const READ_CHUNK: usize = 256 * 1024;
/// Largest handshake message (hello with the longest user name, or a proof).
const HANDSHAKE_FRAME_MAX: usize = 256;
/// Default time a connection has to authenticate.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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

struct ConnState {
    stream: TcpStream,
    token: Option<IoToken>,
    rbuf: FrameBuf,
    phase: Phase,
    out: VecDeque<Vec<u8>>,
    out_off: usize,
    out_bytes: usize,
    paused: bool,
    closed: bool,
}

/// What a connection event asks for once its state is released.
#[derive(Default)]
struct ConnActions {
    to_core: Vec<ClientMsg>,
    authenticated: Option<String>,
    disconnected: bool,
}

impl ConnState {
    fn close(&mut self, conn: &Conn, handle: &Handle, reason: &str, acts: &mut ConnActions) {
        if self.closed {
            return;
        }
        self.closed = true;
        eprintln!(
            "sfs-server: conn {} ({}): closing: {}",
            conn.id, conn.peer, reason
        );
        if let Some(t) = self.token.take() {
            let _ = handle.deregister_io(&mut self.stream, t);
        }
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        self.out.clear();
        self.out_bytes = 0;
        acts.disconnected = true;
    }

    fn queue(&mut self, frame: Vec<u8>) {
        self.out_bytes += frame.len();
        self.out.push_back(frame);
    }

    /// Write queued bytes until done or `WouldBlock`.
    fn flush(&mut self) -> io::Result<()> {
        while let Some(front) = self.out.front() {
            match self.stream.write(&front[self.out_off..]) {
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
                acts.to_core.push(m);
                Ok(())
            }
        }
    }

    /// Read and process until `WouldBlock`, EOF, back-pressure or an error.
    fn read_all(&mut self, conn: &Conn, sh: &Shared, handle: &Handle, acts: &mut ConnActions) {
        while !self.closed && !self.paused {
            let sp = self.rbuf.spare(READ_CHUNK);
            match self.stream.read(sp) {
                Ok(0) => {
                    self.rbuf.commit(0);
                    let reason = match (self.rbuf.finish(), &self.phase) {
                        (Err(e), _) => e.to_string(),
                        (Ok(()), Phase::Open { .. }) => "peer closed the connection".to_string(),
                        (Ok(()), _) => {
                            "peer closed during the handshake (not authenticated)".to_string()
                        }
                    };
                    self.close(conn, handle, &reason, acts);
                    return;
                }
                Ok(n) => {
                    self.rbuf.commit(n);
                    loop {
                        match self.rbuf.next_frame() {
                            Ok(None) => break,
                            Ok(Some((lb, body))) => {
                                if let Err(why) = self.on_frame(sh, lb, body, acts) {
                                    self.close(conn, handle, &why, acts);
                                    return;
                                }
                            }
                            Err(e) => {
                                self.close(conn, handle, &e.to_string(), acts);
                                return;
                            }
                        }
                    }
                    if let Err(e) = self.flush() {
                        self.close(conn, handle, &format!("write failed: {e}"), acts);
                        return;
                    }
                    if self.out_bytes > OUT_HIGH_WATER {
                        self.paused = true;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.rbuf.commit(0);
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    self.rbuf.commit(0);
                }
                Err(e) => {
                    self.rbuf.commit(0);
                    self.close(conn, handle, &format!("read failed: {e}"), acts);
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
                s.close(self, ctx.handle(), "socket error", &mut acts);
                return;
            }
            if let Err(e) = s.flush() {
                s.close(self, ctx.handle(), &format!("write failed: {e}"), &mut acts);
                return;
            }
            if s.paused && s.out_bytes <= OUT_HIGH_WATER / 2 {
                s.paused = false;
            }
            s.read_all(self, sh, ctx.handle(), &mut acts);
        });
        self.after(sh, ctx, acts);
    }

    /// `Encrypt`: seal a plaintext frame from color 0 and write it.
    fn send(self: &Arc<Self>, sh: &Arc<Shared>, ctx: &mut Ctx<'_>, mut frame: Vec<u8>) {
        let mut acts = ConnActions::default();
        let mut resume = false;
        self.st.with(ctx, |s| {
            if s.closed {
                return;
            }
            let Phase::Open { send, .. } = &mut s.phase else {
                s.close(self, ctx.handle(), "reply before authentication", &mut acts);
                return;
            };
            if let Err(e) = send.seal_in_place(&mut frame) {
                s.close(self, ctx.handle(), &e.to_string(), &mut acts);
                return;
            }
            s.queue(frame);
            if let Err(e) = s.flush() {
                s.close(self, ctx.handle(), &format!("write failed: {e}"), &mut acts);
                return;
            }
            if s.paused && s.out_bytes <= OUT_HIGH_WATER / 2 {
                s.paused = false;
                resume = true;
            }
        });
        self.after(sh, ctx, acts);
        if resume {
            let me = self.clone();
            let sh2 = sh.clone();
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
    }

    fn after(self: &Arc<Self>, sh: &Arc<Shared>, ctx: &mut Ctx<'_>, acts: ConnActions) {
        let id = self.id;
        if let Some(user) = acts.authenticated {
            let sh2 = sh.clone();
            ctx.post(Color(0), sh.h.dispatch, move |ctx| {
                let ident = sh2.keys.get(&user).map(|e| (e.uid, e.gid));
                sh2.core
                    .with(ctx, |core| core.dispatch.authenticate(id, ident))
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

/// `Accept` (color 0): accept until `WouldBlock`; register each connection in its color.
fn on_accept(sh: &Arc<Shared>, listener: &parking_lot::Mutex<TcpListener>, ctx: &mut Ctx<'_>) {
    loop {
        let accepted = listener.lock().accept();
        let (mut stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("sfs-server: accept failed: {e}");
                return;
            }
        };
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
                continue;
            }
        };
        let conn = Arc::new(Conn {
            id,
            color,
            peer,
            st: ColorCell::new(
                color,
                ConnState {
                    stream,
                    token: Some(tok),
                    rbuf: {
                        let mut b = FrameBuf::new();
                        b.set_limit(HANDSHAKE_FRAME_MAX);
                        b
                    },
                    phase: Phase::Hello,
                    out: VecDeque::new(),
                    out_off: 0,
                    out_bytes: 0,
                    paused: false,
                    closed: false,
                },
            ),
        });
        let _ = slot.set(conn.clone());
        let (c2, sh2) = (conn.clone(), sh.clone());
        let _ = ctx
            .handle()
            .post_after(sh.handshake_timeout, color, sh.h.conn_io, move |ctx| {
                let mut acts = ConnActions::default();
                c2.st.with(ctx, |s| {
                    if !s.closed && !matches!(s.phase, Phase::Open { .. }) {
                        s.close(&c2, ctx.handle(), "handshake timed out", &mut acts);
                    }
                });
                c2.after(&sh2, ctx, acts);
            });
        sh.core.with(ctx, |core| {
            core.dispatch.connect(id);
            core.conns.insert(id, conn.clone())
        });
        // Readiness that fired before the slot was filled was ignored: look once more.
        let sh2 = sh.clone();
        ctx.post(color, sh.h.conn_io, move |ctx| {
            conn.on_ready(
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
}

/// A running server.
pub struct Server {
    rt: Runtime,
    addr: SocketAddr,
}

impl Server {
    /// Start serving on `listener` (already bound and listening).
    pub fn start(cfg: ServerConfig, listener: std::net::TcpListener) -> Result<Server> {
        let keys = KeyTable::load(&cfg.keys)?;
        let owners = keys_owner_map(&keys);
        let export = Export::open(&cfg.export, owners)?;
        let rt = Runtime::new(cfg.runtime.clone()).context("starting the runtime")?;
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
        });
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let listener = Arc::new(parking_lot::Mutex::new(TcpListener::from_std(listener)));
        let (l2, sh2) = (listener.clone(), sh.clone());
        let mut guard = listener.lock();
        rt.handle()
            .register_io(
                &mut *guard,
                Interest::READABLE,
                Color(0),
                h.accept,
                move |ctx, _r| on_accept(&sh2, &l2, ctx),
            )
            .context("registering the listener")?;
        drop(guard);
        // Connections that arrived before registration.
        let (l3, sh3) = (listener.clone(), sh.clone());
        rt.post(Color(0), h.accept, move |ctx| on_accept(&sh3, &l3, ctx))?;
        Ok(Server { rt, addr })
    }

    /// The listening address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Runtime counters.
    pub fn stats(&self) -> RuntimeStats {
        self.rt.stats()
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

/// Bind a listening socket (with `SO_REUSEPORT` for N-copy servers).
pub fn bind(addr: SocketAddr, reuseport: bool) -> Result<std::net::TcpListener> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    s.set_reuse_address(true)?;
    if reuseport {
        s.set_reuse_port(true)?;
    }
    s.bind(&addr.into())
        .with_context(|| format!("binding {addr}"))?;
    s.listen(1024)?;
    Ok(s.into())
}
