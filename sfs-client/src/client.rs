//! Blocking client library (used by `sfs-client`, `sfs-bench` and the tests).
//!
//! One persistent, authenticated connection per [`Client`]. A reader thread opens every
//! sealed frame in order: replies go to the waiting caller (matched by xid), and
//! INVALIDATE callbacks drop the cached file and are acknowledged at once. Invariants:
//! 1. Cached attributes and data of a file are used only while the client's lease on
//!    it is unexpired; the client's lease clock starts when the request was *sent*, so
//!    it always expires before the server's.
//! 2. A reply is cached only if no INVALIDATE arrived since its request was sent (the
//!    invalidation generation is unchanged), so a reply overtaken by an INVALIDATE
//!    never re-populates the cache with stale data.
//! 3. Any security or framing failure closes the connection; pending and later calls
//!    fail with [`ClientError::Disconnected`] at once, and no call waits longer than
//!    [`ClientOptions::call_timeout`].
//! 4. An INVALIDATE runs [`ClientOptions::on_invalidate`] on the reader thread before
//!    it is acknowledged, so when the writer's reply arrives the hook has run (the FUSE
//!    mount drops the kernel's cached attributes there).

use std::collections::HashMap;
use std::io::Write;
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Sender};
use parking_lot::Mutex;
use thiserror::Error;

use sfs_proto::frame::{read_frame, write_frame, FrameError};
use sfs_proto::key::Key;
use sfs_proto::messages::{
    Attr, ClientMsg, DirEntry, Fh, FileType, FsStat, Reply, Request, ServerMsg, SetAttrs, Stable,
    Status, MAX_IO,
};
use sfs_proto::session::{self, RecvCipher, SendCipher};

thread_local! {
    /// The caller this thread's calls are made for ([`with_caller`]).
    static CALLER: std::cell::RefCell<Option<sfs_proto::messages::Cred>> =
        const { std::cell::RefCell::new(None) };
}

/// Run `f` with every call this thread makes in it sent for `cred`
/// ([`ClientMsg::CallAs`]: a mount with a trusted key acting for the kernel's caller);
/// `None` sends plain calls, acting as the key's user.
pub fn with_caller<T>(cred: Option<sfs_proto::messages::Cred>, f: impl FnOnce() -> T) -> T {
    let _g = CallerScope::enter(cred);
    f()
}

/// While alive, this thread's calls are sent for a caller (see [`with_caller`]); the
/// previous caller is restored on drop, also when unwinding.
pub struct CallerScope {
    /// The caller before this scope.
    previous: Option<sfs_proto::messages::Cred>,
}

impl CallerScope {
    /// Send this thread's calls for `cred` until the scope is dropped.
    pub fn enter(cred: Option<sfs_proto::messages::Cred>) -> CallerScope {
        CallerScope {
            previous: CALLER.with(|c| c.replace(cred)),
        }
    }
}

impl Drop for CallerScope {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CALLER.with(|c| c.replace(previous));
    }
}

/// Default READ/WRITE transfer size.
pub const CHUNK: usize = 256 * 1024;
/// How long a call may wait for its reply by default.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long connecting and authenticating may take by default.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Called with the file id of every INVALIDATE, on the reader thread, before the ack.
pub type InvalidateHook = Arc<dyn Fn(u64) + Send + Sync>;

/// How a [`Client`] connects and behaves.
#[derive(Clone)]
pub struct ClientOptions {
    /// Longest wait for a reply (a reply held for a lease can take the lease's length).
    pub call_timeout: Duration,
    /// Longest wait for the TCP connection and the handshake.
    pub connect_timeout: Duration,
    /// Serve attributes and data from the lease-validated cache.
    pub caching: bool,
    /// Run on every INVALIDATE before it is acknowledged; must not wait on the server.
    pub on_invalidate: Option<InvalidateHook>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            call_timeout: CALL_TIMEOUT,
            connect_timeout: CONNECT_TIMEOUT,
            caching: true,
            on_invalidate: None,
        }
    }
}

/// Client failures.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// The server answered with an error status.
    #[error("server: {0}")]
    Status(#[from] Status),
    /// The connection is gone (or never authenticated).
    #[error("disconnected: {0}")]
    Disconnected(String),
    /// The server sent something unexpected.
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// Client result.
pub type CResult<T> = Result<T, ClientError>;

/// Most INVALIDATEs kept for [`Client::invalidations`] (the oldest half is dropped
/// beyond it, so a long-lived mount's memory stays bounded).
const MAX_INVALIDATION_LOG: usize = 4096;

fn unexpected(what: &str, got: Reply) -> ClientError {
    ClientError::Protocol(format!("expected {what}, got {got:?}"))
}

fn io_dis(e: std::io::Error) -> ClientError {
    ClientError::Disconnected(e.to_string())
}

/// Why the answer to our hello could not be read, said in terms of what went wrong.
fn hello_failed(user: &str, e: std::io::Error) -> ClientError {
    use std::io::ErrorKind;
    let oversized = e
        .get_ref()
        .and_then(|i| i.downcast_ref::<FrameError>())
        .and_then(|f| match f {
            FrameError::Oversized(len, _) => Some(*len),
            FrameError::Truncated(_) => None,
        });
    if let Some(len) = oversized {
        // The 4 bytes where a frame length belongs, as the peer sent them (e.g. "HTTP").
        let first = (len as u32).to_be_bytes();
        return ClientError::Protocol(format!(
            "the server does not speak SFS (its answer starts with {:?})",
            String::from_utf8_lossy(&first)
        ));
    }
    match e.kind() {
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset => ClientError::Disconnected(
            format!("the server refused user {user} (it has no such user in its key table)"),
        ),
        ErrorKind::WouldBlock | ErrorKind::TimedOut => ClientError::Disconnected(
            "no answer to the hello in time (is this an SFS server?)".to_string(),
        ),
        _ => ClientError::Disconnected(format!("reading the server's answer to the hello: {e}")),
    }
}

/// An authenticated session after the handshake.
pub struct Established {
    /// Sealer for client-to-server frames.
    pub send: SendCipher,
    /// Opener for server-to-client frames.
    pub recv: RecvCipher,
    /// Lease duration announced by the server.
    pub lease: Duration,
    /// The serving process's id.
    pub server_id: u32,
}

/// Run the client side of the handshake on a connected blocking stream.
pub fn handshake(stream: &mut TcpStream, user: &str, key: &Key) -> CResult<Established> {
    let nc = session::fresh_nonce();
    write_frame(stream, &session::client_hello(user, &nc)).map_err(io_dis)?;
    let (_, ch) = read_frame(stream).map_err(|e| hello_failed(user, e))?;
    let (ns, sproof) = session::parse_server_challenge(&ch)
        .map_err(|e| ClientError::Protocol(format!("the server does not speak SFS: {e}")))?;
    session::verify_server_proof(key, user, &nc, &ns, &sproof).map_err(|e| {
        ClientError::Disconnected(format!(
            "the server does not hold this key for user {user} (wrong key file?): {e}"
        ))
    })?;
    write_frame(stream, &session::client_proof(key, user, &nc, &ns)).map_err(io_dis)?;
    let (c2s, s2c) = session::derive_keys(key, &nc, &ns);
    let send = SendCipher::new(&c2s);
    let mut recv = RecvCipher::new(&s2c);
    let (lb, mut body) = read_frame(stream)
        .map_err(|e| ClientError::Disconnected(format!("server refused authentication: {e}")))?;
    recv.open_in_place(&lb, &mut body)
        .map_err(|e| ClientError::Disconnected(e.to_string()))?;
    match ServerMsg::decode(&body) {
        Ok(ServerMsg::AuthOk {
            lease_ms,
            server_id,
        }) => Ok(Established {
            send,
            recv,
            lease: Duration::from_millis(lease_ms as u64),
            server_id,
        }),
        other => Err(ClientError::Protocol(format!(
            "expected AuthOk, got {other:?}"
        ))),
    }
}

#[derive(Default)]
struct CacheEntry {
    expiry: Option<Instant>,
    attr: Option<Attr>,
    blocks: HashMap<(u64, u32), (Vec<u8>, bool)>,
}

struct Writer {
    stream: TcpStream,
    send: SendCipher,
}

struct Shared {
    on_invalidate: Option<InvalidateHook>,
    writer: Mutex<Writer>,
    pending: Mutex<HashMap<u32, Sender<Result<Reply, Status>>>>,
    cache: Mutex<HashMap<u64, CacheEntry>>,
    generation: AtomicU64,
    invalidations: Mutex<Vec<(u64, Instant)>>,
    closed: Mutex<Option<String>>,
    cache_hits: AtomicU64,
}

impl Shared {
    fn send(&self, m: &ClientMsg) -> CResult<()> {
        let mut buf = vec![0u8; sfs_proto::frame::LEN_BYTES];
        m.encode_into(&mut buf);
        let mut w = self.writer.lock();
        w.send
            .seal_in_place(&mut buf)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        w.stream.write_all(&buf).map_err(io_dis)
    }

    fn close(&self, why: String) {
        let mut c = self.closed.lock();
        if c.is_none() {
            *c = Some(why);
        }
        drop(c);
        self.pending.lock().clear();
    }
}

/// A connected, authenticated client.
pub struct Client {
    shared: Arc<Shared>,
    reader: Option<JoinHandle<()>>,
    lease: Duration,
    server_id: u32,
    next_xid: AtomicU32,
    caching: bool,
    call_timeout: Duration,
}

impl Client {
    /// Connect and authenticate as `user` with `key`.
    pub fn connect(addr: impl ToSocketAddrs, user: &str, key: &Key) -> CResult<Client> {
        Client::connect_with(addr, user, key, ClientOptions::default())
    }

    /// Connect and authenticate as `user` with `key`, with `opts`.
    pub fn connect_with(
        addr: impl ToSocketAddrs,
        user: &str,
        key: &Key,
        opts: ClientOptions,
    ) -> CResult<Client> {
        let mut last = ClientError::Disconnected("address resolved to nothing".into());
        let mut stream = None;
        for a in addr.to_socket_addrs().map_err(io_dis)? {
            match TcpStream::connect_timeout(&a, opts.connect_timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = io_dis(e),
            }
        }
        let mut stream = stream.ok_or(last)?;
        stream.set_nodelay(true).map_err(io_dis)?;
        stream
            .set_read_timeout(Some(opts.connect_timeout))
            .map_err(io_dis)?;
        stream
            .set_write_timeout(Some(opts.call_timeout))
            .map_err(io_dis)?;
        let est = handshake(&mut stream, user, key)?;
        stream.set_read_timeout(None).map_err(io_dis)?;
        let rstream = stream.try_clone().map_err(io_dis)?;
        let shared = Arc::new(Shared {
            on_invalidate: opts.on_invalidate,
            writer: Mutex::new(Writer {
                stream,
                send: est.send,
            }),
            pending: Mutex::new(HashMap::new()),
            cache: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            invalidations: Mutex::new(Vec::new()),
            closed: Mutex::new(None),
            cache_hits: AtomicU64::new(0),
        });
        let sh = shared.clone();
        let mut recv = est.recv;
        let reader = std::thread::Builder::new()
            .name("sfs-client-reader".into())
            .spawn(move || reader_loop(sh, rstream, &mut recv))
            .map_err(io_dis)?;
        Ok(Client {
            shared,
            reader: Some(reader),
            lease: est.lease,
            server_id: est.server_id,
            next_xid: AtomicU32::new(1),
            caching: opts.caching,
            call_timeout: opts.call_timeout,
        })
    }

    /// Invalidation generation: changes whenever an INVALIDATE arrives. A reply to a
    /// request sent at generation `g` may be cached only if it is still `g`.
    pub fn generation(&self) -> u64 {
        self.gen()
    }

    /// Turn the lease-based cache on or off (on by default).
    pub fn set_caching(&mut self, on: bool) {
        self.caching = on;
        if !on {
            self.shared.cache.lock().clear();
        }
    }

    /// The serving process's id (distinguishes N-copy servers).
    pub fn server_id(&self) -> u32 {
        self.server_id
    }

    /// Lease duration granted by the server.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// The INVALIDATE callbacks received (the most recent few thousand): (file id, when).
    pub fn invalidations(&self) -> Vec<(u64, Instant)> {
        self.shared.invalidations.lock().clone()
    }

    /// Reads and attribute fetches answered from the cache.
    pub fn cache_hits(&self) -> u64 {
        self.shared.cache_hits.load(Ordering::Relaxed)
    }

    /// Why the connection closed, if it did.
    pub fn closed_reason(&self) -> Option<String> {
        self.shared.closed.lock().clone()
    }

    /// Send a request and wait for its reply.
    pub fn call(&self, req: Request) -> CResult<Reply> {
        if let Some(why) = self.shared.closed.lock().clone() {
            return Err(ClientError::Disconnected(why));
        }
        let xid = self.next_xid.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = bounded(1);
        self.shared.pending.lock().insert(xid, tx);
        let msg = match CALLER.with(|c| c.borrow().clone()) {
            Some(cred) => ClientMsg::CallAs { xid, cred, req },
            None => ClientMsg::Call { xid, req },
        };
        if let Err(e) = self.shared.send(&msg) {
            self.shared.pending.lock().remove(&xid);
            return Err(e);
        }
        match rx.recv_timeout(self.call_timeout) {
            Ok(r) => r.map_err(ClientError::Status),
            Err(_) => {
                self.shared.pending.lock().remove(&xid);
                Err(ClientError::Disconnected(
                    self.shared
                        .closed
                        .lock()
                        .clone()
                        .unwrap_or_else(|| "reply timed out".into()),
                ))
            }
        }
    }

    fn remember(&self, fileid: u64, sent: Instant, gen: u64, f: impl FnOnce(&mut CacheEntry)) {
        if !self.caching {
            return;
        }
        let mut c = self.shared.cache.lock();
        if self.shared.generation.load(Ordering::Acquire) != gen {
            return;
        }
        let e = c.entry(fileid).or_default();
        let exp = sent + self.lease;
        if e.expiry.is_some_and(|x| x < sent) {
            e.blocks.clear();
            e.attr = None;
        }
        e.expiry = Some(e.expiry.map_or(exp, |x| x.max(exp)));
        f(e);
    }

    fn forget(&self, fileid: Option<u64>) {
        let mut c = self.shared.cache.lock();
        match fileid {
            Some(f) => {
                c.remove(&f);
            }
            None => c.clear(),
        }
    }

    fn handle_reply(&self, r: Reply, sent: Instant, gen: u64) -> CResult<(Fh, Attr)> {
        match r {
            Reply::Handle { fh, attr } => {
                let a = attr.clone();
                self.remember(attr.fileid, sent, gen, |e| e.attr = Some(a));
                Ok((fh, attr))
            }
            other => Err(ClientError::Protocol(format!(
                "expected a handle, got {other:?}"
            ))),
        }
    }

    fn gen(&self) -> u64 {
        self.shared.generation.load(Ordering::Acquire)
    }

    /// The export root.
    pub fn root(&self) -> CResult<(Fh, Attr)> {
        let (sent, gen) = (Instant::now(), self.gen());
        let r = self.call(Request::Root)?;
        self.handle_reply(r, sent, gen)
    }

    /// LOOKUP one component.
    pub fn lookup(&self, dir: &Fh, name: &str) -> CResult<(Fh, Attr)> {
        let (sent, gen) = (Instant::now(), self.gen());
        let r = self.call(Request::Lookup {
            dir: dir.clone(),
            name: name.into(),
        })?;
        self.handle_reply(r, sent, gen)
    }

    /// Resolve a `/`-separated path from the root.
    pub fn lookup_path(&self, path: &str) -> CResult<(Fh, Attr)> {
        let mut cur = self.root()?;
        for c in path.split('/').filter(|c| !c.is_empty()) {
            cur = self.lookup(&cur.0, c)?;
        }
        Ok(cur)
    }

    fn cached<T>(&self, fileid: u64, f: impl FnOnce(&CacheEntry) -> Option<T>) -> Option<T> {
        if !self.caching {
            return None;
        }
        let c = self.shared.cache.lock();
        let e = c.get(&fileid)?;
        if e.expiry.is_some_and(|x| x > Instant::now()) {
            let r = f(e);
            if r.is_some() {
                self.shared.cache_hits.fetch_add(1, Ordering::Relaxed);
            }
            r
        } else {
            None
        }
    }

    /// GETATTR, from the cache while the lease holds. `fileid` is the file's id when
    /// known (from an earlier attribute), enabling the cache.
    pub fn getattr(&self, fh: &Fh, fileid: Option<u64>) -> CResult<Attr> {
        if let Some(a) = fileid.and_then(|id| self.cached(id, |e| e.attr.clone())) {
            return Ok(a);
        }
        let (sent, gen) = (Instant::now(), self.gen());
        match self.call(Request::GetAttr { fh: fh.clone() })? {
            Reply::Attr(a) => {
                let c = a.clone();
                self.remember(a.fileid, sent, gen, |e| e.attr = Some(c));
                Ok(a)
            }
            o => Err(ClientError::Protocol(format!(
                "expected attributes, got {o:?}"
            ))),
        }
    }

    /// SETATTR of mode and size.
    pub fn setattr(&self, fh: &Fh, mode: Option<u32>, size: Option<u64>) -> CResult<Attr> {
        self.set_attrs(
            fh,
            &SetAttrs {
                mode,
                size,
                ..SetAttrs::default()
            },
        )
    }

    /// SETATTR.
    pub fn set_attrs(&self, fh: &Fh, attrs: &SetAttrs) -> CResult<Attr> {
        match self.call(Request::SetAttr {
            fh: fh.clone(),
            attrs: attrs.clone(),
        })? {
            Reply::Attr(a) => {
                self.forget(Some(a.fileid));
                Ok(a)
            }
            o => Err(unexpected("attributes", o)),
        }
    }

    /// ACCESS: the bits of `mask` granted.
    pub fn access(&self, fh: &Fh, mask: u32) -> CResult<u32> {
        match self.call(Request::Access {
            fh: fh.clone(),
            mask,
        })? {
            Reply::Access(m) => Ok(m),
            o => Err(unexpected("access bits", o)),
        }
    }

    /// READLINK.
    pub fn readlink(&self, fh: &Fh) -> CResult<Vec<u8>> {
        match self.call(Request::ReadLink { fh: fh.clone() })? {
            Reply::Target(t) => Ok(t),
            o => Err(unexpected("a link target", o)),
        }
    }

    /// STATFS.
    pub fn statfs(&self, fh: &Fh) -> CResult<FsStat> {
        match self.call(Request::StatFs { fh: fh.clone() })? {
            Reply::StatFs(s) => Ok(s),
            o => Err(unexpected("file system statistics", o)),
        }
    }

    /// WHOAMI: the (uid, gid) this connection acts as on the server.
    pub fn whoami(&self) -> CResult<(u32, u32)> {
        match self.call(Request::WhoAmI)? {
            Reply::Ident { uid, gid } => Ok((uid, gid)),
            o => Err(unexpected("an identity", o)),
        }
    }

    /// MKDIR.
    pub fn mkdir(&self, dir: &Fh, name: &str, mode: u32) -> CResult<(Fh, Attr)> {
        let (sent, gen) = (Instant::now(), self.gen());
        let r = self.call(Request::Mkdir {
            dir: dir.clone(),
            name: name.into(),
            mode,
        });
        self.forget(None);
        self.handle_reply(r?, sent, gen)
    }

    /// SYMLINK.
    pub fn symlink(&self, dir: &Fh, name: &str, target: &[u8]) -> CResult<(Fh, Attr)> {
        let (sent, gen) = (Instant::now(), self.gen());
        let r = self.call(Request::Symlink {
            dir: dir.clone(),
            name: name.into(),
            target: target.to_vec(),
        });
        self.forget(None);
        self.handle_reply(r?, sent, gen)
    }

    /// LINK: a new name for `fh`.
    pub fn link(&self, fh: &Fh, dir: &Fh, name: &str) -> CResult<(Fh, Attr)> {
        let (sent, gen) = (Instant::now(), self.gen());
        let r = self.call(Request::Link {
            fh: fh.clone(),
            dir: dir.clone(),
            name: name.into(),
        });
        self.forget(None);
        self.handle_reply(r?, sent, gen)
    }

    /// RMDIR.
    pub fn rmdir(&self, dir: &Fh, name: &str) -> CResult<()> {
        let r = self.call(Request::Rmdir {
            dir: dir.clone(),
            name: name.into(),
        });
        self.forget(None);
        r.map(|_| ())
    }

    /// READ (cached under the lease when `fileid` is given): `(data, eof)`.
    pub fn read(
        &self,
        fh: &Fh,
        fileid: Option<u64>,
        offset: u64,
        count: u32,
    ) -> CResult<(Vec<u8>, bool)> {
        if let Some(hit) =
            fileid.and_then(|id| self.cached(id, |e| e.blocks.get(&(offset, count)).cloned()))
        {
            return Ok(hit);
        }
        let (sent, gen) = (Instant::now(), self.gen());
        match self.call(Request::Read {
            fh: fh.clone(),
            offset,
            count: count.min(MAX_IO as u32),
        })? {
            Reply::Read { eof, data } => {
                if let Some(id) = fileid {
                    let d = data.clone();
                    self.remember(id, sent, gen, |e| {
                        e.blocks.insert((offset, count), (d, eof));
                    });
                }
                Ok((data, eof))
            }
            o => Err(ClientError::Protocol(format!("expected data, got {o:?}"))),
        }
    }

    /// WRITE: `(count, committed, verifier)`.
    pub fn write(
        &self,
        fh: &Fh,
        offset: u64,
        data: &[u8],
        stable: Stable,
    ) -> CResult<(u32, Stable, u64)> {
        let r = self.call(Request::Write {
            fh: fh.clone(),
            offset,
            stable,
            data: data.to_vec(),
        });
        self.forget(None);
        match r? {
            Reply::Write {
                count,
                committed,
                verf,
            } => Ok((count, committed, verf)),
            o => Err(ClientError::Protocol(format!(
                "expected a write reply, got {o:?}"
            ))),
        }
    }

    /// COMMIT: the verifier.
    pub fn commit(&self, fh: &Fh) -> CResult<u64> {
        match self.call(Request::Commit { fh: fh.clone() })? {
            Reply::Commit { verf } => Ok(verf),
            o => Err(ClientError::Protocol(format!(
                "expected a commit reply, got {o:?}"
            ))),
        }
    }

    /// CREATE.
    pub fn create(&self, dir: &Fh, name: &str, mode: u32, exclusive: bool) -> CResult<(Fh, Attr)> {
        let (sent, gen) = (Instant::now(), self.gen());
        let r = self.call(Request::Create {
            dir: dir.clone(),
            name: name.into(),
            mode,
            exclusive,
        })?;
        self.handle_reply(r, sent, gen)
    }

    /// REMOVE.
    pub fn remove(&self, dir: &Fh, name: &str) -> CResult<()> {
        let r = self.call(Request::Remove {
            dir: dir.clone(),
            name: name.into(),
        });
        self.forget(None);
        r.map(|_| ())
    }

    /// RENAME.
    pub fn rename(&self, from: &Fh, from_name: &str, to: &Fh, to_name: &str) -> CResult<()> {
        let r = self.call(Request::Rename {
            from_dir: from.clone(),
            from_name: from_name.into(),
            to_dir: to.clone(),
            to_name: to_name.into(),
        });
        self.forget(None);
        r.map(|_| ())
    }

    /// READDIR, all pages.
    pub fn readdir(&self, dir: &Fh) -> CResult<Vec<DirEntry>> {
        let mut out = Vec::new();
        let mut cookie = 0;
        for _ in 0..1_000_000 {
            match self.call(Request::ReadDir {
                dir: dir.clone(),
                cookie,
                max_entries: 512,
            })? {
                Reply::ReadDir {
                    entries,
                    cookie: c,
                    eof,
                } => {
                    out.extend(entries);
                    cookie = c;
                    if eof {
                        return Ok(out);
                    }
                }
                o => {
                    return Err(ClientError::Protocol(format!(
                        "expected entries, got {o:?}"
                    )))
                }
            }
        }
        Err(ClientError::Protocol(
            "directory listing did not end".into(),
        ))
    }

    fn split_parent(path: &str) -> CResult<(&str, &str)> {
        let p = path.trim_matches('/');
        let (dir, name) = p.rsplit_once('/').unwrap_or(("", p));
        if name.is_empty() {
            return Err(ClientError::Status(Status::Inval));
        }
        Ok((dir, name))
    }

    /// Read a whole remote file (through the cache).
    pub fn get(&self, path: &str) -> CResult<Vec<u8>> {
        let (fh, attr) = self.lookup_path(path)?;
        if attr.ftype != FileType::Regular {
            return Err(ClientError::Status(Status::NotSupp));
        }
        let mut out = Vec::with_capacity(attr.size as usize);
        loop {
            let (d, eof) = self.read(&fh, Some(attr.fileid), out.len() as u64, CHUNK as u32)?;
            out.extend_from_slice(&d);
            if eof || d.is_empty() {
                return Ok(out);
            }
        }
    }

    /// Create or truncate a remote file and write `data`; unstable writes then COMMIT
    /// (or a single FILE_SYNC write when it fits in one chunk).
    pub fn put(&self, path: &str, data: &[u8]) -> CResult<()> {
        let (dir, name) = Self::split_parent(path)?;
        let (dfh, _) = self.lookup_path(dir)?;
        let (fh, attr) = self.create(&dfh, name, 0o644, false)?;
        if attr.size != 0 {
            self.setattr(&fh, None, Some(0))?;
        }
        if data.len() <= CHUNK {
            if !data.is_empty() {
                self.write(&fh, 0, data, Stable::FileSync)?;
            }
            return Ok(());
        }
        let mut verf = None;
        for (i, c) in data.chunks(CHUNK).enumerate() {
            let (n, _, v) = self.write(&fh, (i * CHUNK) as u64, c, Stable::Unstable)?;
            if n as usize != c.len() {
                return Err(ClientError::Protocol("short write".into()));
            }
            if *verf.get_or_insert(v) != v {
                return Err(ClientError::Protocol("server restarted during put".into()));
            }
        }
        let v = self.commit(&fh)?;
        if Some(v) != verf {
            return Err(ClientError::Protocol(
                "server restarted before commit; retry".into(),
            ));
        }
        Ok(())
    }

    /// Remove a remote file.
    pub fn rm(&self, path: &str) -> CResult<()> {
        let (dir, name) = Self::split_parent(path)?;
        let (dfh, _) = self.lookup_path(dir)?;
        self.remove(&dfh, name)
    }

    /// List a remote directory.
    pub fn ls(&self, path: &str) -> CResult<Vec<DirEntry>> {
        let (fh, _) = self.lookup_path(path)?;
        self.readdir(&fh)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.shared.writer.lock().stream.shutdown(Shutdown::Both);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

fn reader_loop(sh: Arc<Shared>, mut stream: TcpStream, recv: &mut RecvCipher) {
    loop {
        let (lb, mut body) = match read_frame(&mut stream) {
            Ok(f) => f,
            Err(e) => return sh.close(format!("connection closed: {e}")),
        };
        if let Err(e) = recv.open_in_place(&lb, &mut body) {
            let _ = stream.shutdown(Shutdown::Both);
            return sh.close(e.to_string());
        }
        match ServerMsg::decode(&body) {
            Ok(ServerMsg::Reply { xid, result }) => {
                if let Some(tx) = sh.pending.lock().remove(&xid) {
                    let _ = tx.send(result);
                }
            }
            Ok(ServerMsg::Invalidate { cb_id, fileid }) => {
                {
                    let mut c = sh.cache.lock();
                    sh.generation.fetch_add(1, Ordering::AcqRel);
                    c.remove(&fileid);
                }
                if let Some(hook) = &sh.on_invalidate {
                    hook(fileid);
                }
                let mut inv = sh.invalidations.lock();
                if inv.len() >= MAX_INVALIDATION_LOG {
                    inv.drain(..MAX_INVALIDATION_LOG / 2);
                }
                inv.push((fileid, Instant::now()));
                drop(inv);
                if let Err(e) = sh.send(&ClientMsg::CallbackAck { cb_id }) {
                    return sh.close(e.to_string());
                }
            }
            Ok(other) => {
                let _ = stream.shutdown(Shutdown::Both);
                return sh.close(format!("unexpected message {other:?}"));
            }
            Err(e) => {
                let _ = stream.shutdown(Shutdown::Both);
                return sh.close(e.to_string());
            }
        }
    }
}
