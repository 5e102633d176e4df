//! A connection: its handshake, its sealed channel and its output budget, in its own
//! color.
//!
//! Everything touching a connection's socket and ciphers runs in its color: reading and
//! decrypting requests (`ConnIo`), encrypting and writing replies and callbacks
//! (`Encrypt`). Its state is a [`ColorCell`] of that color, so the color discipline is
//! checked at run time and no lock is taken. What it decoded goes to the serial part
//! ([`super::serial`]) as posted events; the serial part's frames come back the same way.
//!
//! Invariants:
//! 1. Per connection, frames are decrypted in arrival order (one color, FIFO), and the
//!    replies color 0 produces are encrypted in the order it produced them (posts from
//!    one color to another run in posting order). Counter nonces stay in step.
//! 2. Any security failure (bad proof, bad frame, oversized or truncated frame,
//!    undecodable message) closes the connection *before* the frame is acted on, and is
//!    logged with its reason; nothing reaches color 0, so nothing changes on disk.
//! 3. A connection is closed once: the `closed` flag in its state; after that its
//!    pending encrypt events are dropped, and color 0 forgets it (`Disconnect`).
//! 4. A connection's memory grows with what it has earned. Before authentication it reads
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
//! 5. A connection counts in `Shared::unauthenticated` from admission
//!    ([`super::admission`]) until it authenticates or closes, exactly once.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use colored_runtime::{Color, ColorCell, Ctx, Handle, IoToken, Readiness};
use mio::net::TcpStream;
use sfs_proto::frame::{FrameBuf, LEN_BYTES};
use sfs_proto::key::Key;
use sfs_proto::messages::{ClientMsg, Request, ServerMsg};
use sfs_proto::session::{self, RecvCipher, SendCipher, NONCE_LEN};

use super::{serial, Shared};
use crate::dispatch::ConnId;

/// Output a connection may commit to before its requests stop being read: bytes queued for
/// its socket plus bytes reserved for the replies of its requests in flight (invariant 4).
pub const OUT_CAP: usize = 4 << 20;
/// Requests of one connection in flight (sent to color 0, reply not yet queued) at most.
const MAX_INFLIGHT: usize = 256;
/// Queued output past which a connection is closed: only callbacks the client did not ask
/// for, or replies larger than reserved, can get there, and only for a peer that reads
/// nothing.
const OUT_HARD_CAP: usize = 4 * OUT_CAP;
/// Reserved for a reply whose size the request does not bound (attributes, handles, done).
const SMALL_REPLY: usize = sfs_proto::messages::MAX_FH + 512;
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

/// One admitted connection: who it is and its state, owned by its color.
pub(super) struct Conn {
    /// The dispatcher's name for it.
    pub(super) id: ConnId,
    /// The color its socket and ciphers are used in.
    pub(super) color: Color,
    /// The client's address (for the log).
    pub(super) peer: SocketAddr,
    /// Everything else, touched only in `color`.
    st: ColorCell<ConnState>,
}

/// Where a connection is in the handshake ([`sfs_proto::session`]).
enum Phase {
    /// Waiting for the client's hello.
    Hello,
    /// Challenge sent, waiting for the client's proof.
    Proof {
        /// The user the hello named (in the key table).
        user: String,
        /// That user's key.
        key: Key,
        /// The client's nonce.
        nc: [u8; NONCE_LEN],
        /// The server's nonce.
        ns: [u8; NONCE_LEN],
    },
    /// Authenticated: frames are sealed and opened with the session's ciphers.
    Open {
        /// Seals this side's frames (server to client).
        send: SendCipher,
        /// Opens the client's frames.
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
    /// Received, unprocessed bytes; sized by what the connection has earned (invariant 4).
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
    /// Requests are not read while the output budget is spent (invariant 4).
    paused: bool,
    /// Closed (invariant 3).
    closed: bool,
    /// Counted in `Shared::unauthenticated`: from accept until authentication or close.
    unauthenticated: bool,
}

/// What a connection event asks for once its state is released.
#[derive(Default)]
struct ConnActions {
    /// Messages for the serial part, in arrival order.
    to_serial: Vec<ClientMsg>,
    /// The user the connection authenticated as, just now.
    authenticated: Option<String>,
    /// The connection closed, just now.
    disconnected: bool,
}

/// The most a request's reply can take (what it reserves of the output budget).
fn reply_reservation(req: &Request) -> usize {
    const HEADER: usize = 64 + sfs_proto::session::TAG_LEN;
    match req {
        Request::Read { count, .. } => (*count as usize).min(sfs_proto::messages::MAX_IO) + HEADER,
        Request::ReadDir { max_entries, .. } => {
            let n = (*max_entries).min(sfs_proto::messages::MAX_DIR_ENTRIES) as usize;
            n * (sfs_proto::messages::MAX_NAME + 32) + HEADER
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
                self.rbuf.set_limit(sfs_proto::frame::MAX_FRAME);
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
                acts.to_serial.push(m);
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
    /// A connection just accepted, registered with `token`, not authenticated yet.
    pub(super) fn new(
        id: ConnId,
        color: Color,
        peer: SocketAddr,
        stream: TcpStream,
        token: IoToken,
    ) -> Conn {
        Conn {
            id,
            color,
            peer,
            st: ColorCell::new(color, ConnState::new(stream, token)),
        }
    }

    /// The handshake timeout (in the connection's color): closes the connection unless it
    /// authenticated or closed meanwhile.
    pub(super) fn on_handshake_timeout(self: &Arc<Self>, sh: &Arc<Shared>, ctx: &mut Ctx<'_>) {
        let mut acts = ConnActions::default();
        self.st.with(ctx, |s| {
            if !s.closed && !matches!(s.phase, Phase::Open { .. }) {
                sh.counters
                    .handshake_timeouts
                    .fetch_add(1, Ordering::Relaxed);
                s.close(self, sh, ctx.handle(), "handshake timed out", &mut acts);
            }
        });
        self.after(sh, ctx, acts);
    }

    /// `ConnIo`: readiness in the connection's color: write what is queued, read and
    /// decrypt what arrived.
    pub(super) fn on_ready(self: &Arc<Self>, sh: &Arc<Shared>, ctx: &mut Ctx<'_>, r: Readiness) {
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
    pub(super) fn send(self: &Arc<Self>, sh: &Arc<Shared>, ctx: &mut Ctx<'_>, mut frame: Vec<u8>) {
        let mut acts = ConnActions::default();
        let mut resume = false;
        self.st.with(ctx, |s| {
            if s.closed {
                return;
            }
            if let Some(xid) = sfs_proto::codec::reply_xid(&frame) {
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
    pub(super) fn post_ready(self: &Arc<Self>, sh: &Arc<Shared>, ctx: &mut Ctx<'_>) {
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

    /// Hands what a connection event asked for to the serial part (color 0), once the
    /// connection's state is released: the authenticated user, the messages in arrival
    /// order, then the disconnection.
    fn after(self: &Arc<Self>, sh: &Arc<Shared>, ctx: &mut Ctx<'_>, acts: ConnActions) {
        let id = self.id;
        if let Some(user) = acts.authenticated {
            let sh2 = sh.clone();
            ctx.post(Color(0), sh.h.dispatch, move |ctx| {
                serial::authenticated(&sh2, ctx, id, &user)
            });
        }
        for m in acts.to_serial {
            let sh2 = sh.clone();
            ctx.post(Color(0), sh.h.dispatch, move |ctx| {
                serial::dispatch(&sh2, ctx, id, m)
            });
        }
        if acts.disconnected {
            let sh2 = sh.clone();
            ctx.post(Color(0), sh.h.disconnect, move |ctx| {
                serial::disconnected(&sh2, ctx, id)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use sfs_proto::codec::read_reply_frame;
    use sfs_proto::messages::{Fh, Reply, MAX_IO, MAX_NAME};

    use super::*;
    use crate::dispatch::plain;

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
        assert!(big >= sfs_proto::messages::MAX_DIR_ENTRIES as usize * MAX_NAME);
        assert!(reply_reservation(&Request::Root) >= sfs_proto::messages::MAX_FH);
    }

    #[test]
    fn reply_frames_name_their_call() {
        let reply = plain(&ServerMsg::Reply {
            xid: 0xdead_beef,
            result: Ok(Reply::Done),
        });
        assert_eq!(sfs_proto::codec::reply_xid(&reply), Some(0xdead_beef));
        let read = read_reply_frame(7, 10, |buf, n| {
            buf.resize(buf.len() + n, 1);
            Ok(true)
        });
        assert_eq!(sfs_proto::codec::reply_xid(&read), Some(7));
        let cb = plain(&ServerMsg::Invalidate {
            cb_id: 1,
            fileid: 2,
        });
        assert_eq!(sfs_proto::codec::reply_xid(&cb), None);
        assert_eq!(sfs_proto::codec::reply_xid(&[0, 0]), None);
    }
}
