//! SFS as a mounted file system: a FUSE client (on the `fuser` crate) that serves the
//! kernel's requests with calls to the server.
//!
//! Invariants:
//! 1. Write-back never acknowledges to the kernel what the server has not accepted:
//!    each kernel WRITE is an UNSTABLE WRITE answered only after the server's reply,
//!    and stays in the `writelog` until a COMMIT with the same verifier covers it;
//!    `fsync` and `close` (FUSE FLUSH) COMMIT a file that has uncommitted writes, and a
//!    changed verifier (server restart) sends the writes again before committing.
//! 2. Leases drive the kernel's caches: attributes and entries are cached for what is
//!    left of the lease when the reply arrives (zero if an INVALIDATE arrived since the
//!    request was sent); `open` keeps cached pages only while the lease holds and no
//!    INVALIDATE arrived since they were validated; an INVALIDATE drops the kernel's
//!    attributes before it is acknowledged, and pages and names right after
//!    (`inval`).
//! 3. Errors are POSIX errnos (`attr::errno`); a lost connection is re-established
//!    within [`MountConfig::reconnect_for`] (`remote`) and operations that are safe to
//!    repeat are retried on the new one; others fail with EIO. Every call has a
//!    timeout, so no operation waits forever.
//! 4. Handles carry paths and go stale when a directory above them is renamed, or when
//!    the server restarts: a stale handle is looked up again by name from the root
//!    (`nodes`) and the operation retried, once per cause.
//! 5. The server never follows a symlink; the kernel resolves them (READLINK), in the
//!    client's name space, so a link pointing outside the export names a file of the
//!    client, never one of the server's outside the export.
//! 6. A mount made with a trusted key (`sfs-server keygen --trusted`) sends every
//!    call for the kernel's caller: its uid, gid and the supplementary groups
//!    `/proc/PID/status` lists for the calling process (`caller`). It is mounted
//!    `allow_other` and `default_permissions` (the kernel checks with the caller's full
//!    credentials, the server checks again), and ids are shown as they are. A mount
//!    with any other key acts as the key's user for everyone (only its owner and root
//!    may use it) and says so at mount time.

mod attr;
mod data;
mod inval;
mod names;
mod nodes;
mod ops;
mod readahead;
mod remote;
mod writelog;

use std::collections::HashMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use fuser::{Config, Errno, MountOption, SessionACL};
use parking_lot::Mutex;

pub use attr::IdMap;
use inval::Invalidator;
use nodes::{Nodes, ROOT};
use remote::{Remote, RemoteConfig};
use sfs_proto::key::Key;
use sfs_proto::messages::{DirEntry, Fh, Status, Time};
use writelog::WriteLog;

use crate::client::{CResult, Client, ClientError, ClientOptions};

/// Bytes of uncommitted writes one file may hold before a COMMIT is forced.
const FILE_WRITE_CAP: usize = 32 << 20;
/// Bytes of uncommitted writes the mount may hold before a COMMIT is forced.
const TOTAL_WRITE_CAP: usize = 128 << 20;

/// How to mount.
#[derive(Clone)]
pub struct MountConfig {
    /// Server address.
    pub server: String,
    /// SFS user.
    pub user: String,
    /// The user's key.
    pub key: Key,
    /// Where to mount.
    pub mountpoint: PathBuf,
    /// Threads serving kernel requests (parallel reads and writes).
    pub threads: usize,
    /// Longest wait for one reply.
    pub call_timeout: Duration,
    /// How long a lost connection is retried before an operation fails.
    pub reconnect_for: Duration,
}

/// What the mount reports once it is ready.
#[derive(Clone, Debug)]
pub struct MountInfo {
    /// The serving process (tells N-copy servers apart).
    pub server_id: u32,
    /// Lease the server grants.
    pub lease: Duration,
    /// The identity mapping in force.
    pub ids: IdMap,
    /// Whether the kernel unmounts by itself if this process dies (fusermount3's
    /// `auto_unmount`).
    pub auto_unmount: bool,
    /// The key is trusted: every local user may use the mount, each as itself.
    pub trusted: bool,
    /// The kernel's readahead window for the mount in KiB, or why it is not known
    /// (raising it needs root).
    pub readahead_kb: Result<u64, String>,
}

/// Which failures an operation may be repeated after.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Repeating it is harmless (reads, WRITE at an offset, COMMIT, SETATTR).
    Idempotent,
    /// It may have taken effect before the connection broke (CREATE, REMOVE, ...):
    /// only a stale handle (refused before acting) is retried.
    Once,
}

/// Pages the kernel may hold for a file, and how long they can be trusted.
#[derive(Clone, Copy, Debug)]
struct PageState {
    /// The lease from the last attributes fetched.
    lease_until: Option<Instant>,
    /// The version (mtime, size) the pages were validated against at the last open,
    /// with the INVALIDATE count then.
    validated: Option<(Time, u64, u64)>,
}

/// The mount's state, shared by the kernel request threads, the INVALIDATE hook and
/// the invalidator thread.
pub(crate) struct Sfs {
    /// The connection.
    remote: Remote,
    /// Kernel nodes and their handles.
    nodes: Mutex<Nodes>,
    /// The export root's file id.
    root_fileid: u64,
    /// INVALIDATE handling.
    inval: Arc<Invalidator>,
    /// Uncommitted writes.
    writes: Mutex<WriteLog>,
    /// Open directories: their listing, read once at `opendir`.
    dirs: Mutex<HashMap<u64, Arc<Vec<DirEntry>>>>,
    /// Next directory handle.
    next_fh: AtomicU64,
    /// Page-cache state per node.
    pages: Mutex<HashMap<u64, PageState>>,
    /// The uid mapping.
    ids: IdMap,
    /// The lease the server grants.
    lease: Duration,
    /// The SFS user is root on the server, or the kernel checked the caller
    /// (trusted): no ACCESS call is needed on open.
    privileged: bool,
    /// The key is trusted: calls are made for the kernel's caller.
    trusted: bool,
}

/// The credentials of the process that made kernel request `req`: its uid and gid
/// from the request, its supplementary groups from `/proc/PID/status` (none if the
/// process is already gone, which can only deny, never grant, more).
pub(crate) fn caller(req: &fuser::Request) -> sfs_proto::messages::Cred {
    let groups = std::fs::read_to_string(format!("/proc/{}/status", req.pid()))
        .ok()
        .and_then(|st| {
            st.lines().find_map(|l| l.strip_prefix("Groups:")).map(|g| {
                g.split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .take(sfs_proto::messages::MAX_GROUPS)
                    .collect()
            })
        })
        .unwrap_or_default();
    sfs_proto::messages::Cred {
        uid: req.uid(),
        gid: req.gid(),
        groups,
    }
}

impl Sfs {
    /// Connect and learn the root and the identity.
    fn connect(cfg: &MountConfig, inval: Arc<Invalidator>) -> Result<(Arc<Sfs>, MountInfo)> {
        let root_cell: Arc<std::sync::OnceLock<u64>> = Arc::default();
        let (rc, iv) = (root_cell.clone(), inval.clone());
        let hook = Arc::new(move |fileid: u64| {
            if let Some(root) = rc.get() {
                iv.attributes(nodes::node_of(*root, fileid));
            }
        });
        let reconnected: Arc<std::sync::OnceLock<std::sync::Weak<Sfs>>> = Arc::default();
        let rc2 = reconnected.clone();
        let on_reconnect = Arc::new(move || {
            if let Some(sfs) = rc2.get().and_then(|w| w.upgrade()) {
                sfs.after_reconnect();
            }
        });
        let remote = Remote::connect(RemoteConfig {
            server: cfg.server.clone(),
            user: cfg.user.clone(),
            key: cfg.key.clone(),
            opts: ClientOptions {
                call_timeout: cfg.call_timeout,
                // One attempt never outlasts the time reconnecting may take (a hung
                // server accepts TCP connections but never answers the handshake).
                connect_timeout: crate::client::CONNECT_TIMEOUT
                    .min(cfg.reconnect_for.max(Duration::from_secs(1))),
                on_invalidate: Some(hook),
                ..ClientOptions::default()
            },
            reconnect_for: cfg.reconnect_for,
            on_reconnect: Some(on_reconnect),
        })
        .with_context(|| format!("connecting to {} as {}", cfg.server, cfg.user))?;
        let (c, _) = remote.get()?;
        let (_, root) = c.root().context("fetching the export root")?;
        let (server_uid, server_gid) = c.whoami().context("asking the server who we are")?;
        let _ = root_cell.set(root.fileid);
        // SAFETY: getuid/getgid have no preconditions and cannot fail.
        let (local_uid, local_gid) = unsafe { (libc::getuid(), libc::getgid()) };
        // Is the key trusted? A call made for ourselves is answered, else refused.
        let me = sfs_proto::messages::Cred {
            uid: local_uid,
            gid: local_gid,
            groups: Vec::new(),
        };
        let trusted = match crate::client::with_caller(Some(me), || c.whoami()) {
            Ok(_) => true,
            Err(ClientError::Status(Status::Perm)) => false,
            Err(e) => return Err(e).context("asking the server whether the key is trusted"),
        };
        let ids = if trusted {
            IdMap::identity()
        } else {
            IdMap {
                server_uid,
                server_gid,
                local_uid,
                local_gid,
            }
        };
        let info = MountInfo {
            server_id: c.server_id(),
            lease: c.lease(),
            ids,
            auto_unmount: false,
            trusted,
            readahead_kb: Err("not mounted yet".into()),
        };
        let sfs = Arc::new(Sfs {
            remote,
            nodes: Mutex::new(Nodes::new(root.fileid)),
            root_fileid: root.fileid,
            inval,
            writes: Mutex::new(WriteLog::new(FILE_WRITE_CAP, TOTAL_WRITE_CAP)),
            dirs: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            pages: Mutex::new(HashMap::new()),
            ids,
            lease: c.lease(),
            privileged: server_uid == 0 || trusted,
            trusted,
        });
        let _ = reconnected.set(Arc::downgrade(&sfs));
        Ok((sfs, info))
    }

    /// After a reconnect: the leases of the old connection are gone, so every cached
    /// attribute, page and name is dropped.
    fn after_reconnect(&self) {
        self.pages.lock().clear();
        for n in self.nodes.lock().ids() {
            self.inval.attributes(n);
        }
    }

    /// The kernel node of a server file id.
    fn node_of(&self, fileid: u64) -> u64 {
        nodes::node_of(self.root_fileid, fileid)
    }

    /// How long the kernel may cache a reply to a request sent at `sent`, when the
    /// connection's invalidation generation was `gen`: what is left of the lease, or
    /// nothing if an INVALIDATE arrived meanwhile.
    fn ttl(&self, c: &Client, sent: Instant, gen: u64) -> Duration {
        if c.generation() != gen {
            Duration::ZERO
        } else {
            self.lease.saturating_sub(sent.elapsed())
        }
    }

    /// Note the lease the attributes of `node` came with.
    fn leased(&self, node: u64, ttl: Duration) {
        let until = (!ttl.is_zero()).then(|| Instant::now() + ttl);
        self.pages
            .lock()
            .entry(node)
            .or_insert(PageState {
                lease_until: None,
                validated: None,
            })
            .lease_until = until;
    }

    /// `node`'s handle on connection `c` (epoch `epoch`), looked up by name from the
    /// root when it has none for this epoch.
    fn resolve(&self, c: &Client, epoch: u64, node: u64) -> CResult<Fh> {
        // Each lock is taken for one statement: a guard held across a call to the
        // server (or across another lock of the table) would deadlock the mount.
        let known = self.nodes.lock().handle(node, epoch);
        if let Some(fh) = known {
            return Ok(fh);
        }
        let root = self.nodes.lock().handle(ROOT, epoch);
        let root = match root {
            Some(fh) => fh,
            None => {
                let (fh, _) = c.root()?;
                self.nodes.lock().set_handle(ROOT, fh.clone(), epoch);
                fh
            }
        };
        let path = self
            .nodes
            .lock()
            .path_to(node)
            .ok_or(ClientError::Status(Status::Stale))?;
        let mut cur = root;
        for (_, name, id) in path {
            let known = self.nodes.lock().handle(id, epoch);
            if let Some(fh) = known {
                cur = fh;
                continue;
            }
            let (fh, a) = c.lookup(&cur, &name)?;
            let mut t = self.nodes.lock();
            if t.get(id).map(|n| n.fileid) != Some(a.fileid) {
                return Err(ClientError::Status(Status::Stale));
            }
            t.set_handle(id, fh.clone(), epoch);
            cur = fh;
        }
        Ok(cur)
    }

    /// Run `f` with the handles of `nodes` on the current connection: a stale handle
    /// is resolved again (first this node's, then all), a lost connection is replaced
    /// and, for [`Retry::Idempotent`] operations, `f` is run again.
    fn with_handles<T, const N: usize>(
        &self,
        nodes: [u64; N],
        retry: Retry,
        f: impl Fn(&Client, &[Fh; N]) -> CResult<T>,
    ) -> Result<T, Errno> {
        self.with_handles_at(nodes, retry, f).map(|(v, _)| v)
    }

    /// [`Sfs::with_handles`], also returning the epoch of the connection that answered.
    fn with_handles_at<T, const N: usize>(
        &self,
        nodes: [u64; N],
        retry: Retry,
        f: impl Fn(&Client, &[Fh; N]) -> CResult<T>,
    ) -> Result<(T, u64), Errno> {
        let mut stale = 0;
        let mut lost = 0;
        loop {
            let (c, epoch) = self.remote.get().map_err(|e| attr::errno(&e))?;
            let r = nodes
                .iter()
                .map(|n| self.resolve(&c, epoch, *n))
                .collect::<CResult<Vec<Fh>>>()
                .and_then(|v| {
                    let fhs: [Fh; N] = v.try_into().expect("one handle per node");
                    f(&c, &fhs)
                });
            match r {
                Ok(v) => return Ok((v, epoch)),
                Err(ClientError::Status(Status::Stale | Status::BadHandle)) if stale < 2 => {
                    let mut t = self.nodes.lock();
                    if stale == 0 {
                        nodes.iter().for_each(|n| t.drop_handle(*n));
                    } else {
                        t.clear_handles();
                    }
                    stale += 1;
                }
                Err(ClientError::Disconnected(_)) if retry == Retry::Idempotent && lost < 2 => {
                    self.remote.lost(epoch);
                    lost += 1;
                }
                Err(e @ ClientError::Disconnected(_)) => {
                    self.remote.lost(epoch);
                    return Err(attr::errno(&e));
                }
                Err(e) => return Err(attr::errno(&e)),
            }
        }
    }

    /// COMMIT every file with uncommitted writes (unmount, shutdown).
    fn commit_all(&self) -> Vec<(u64, Errno)> {
        let files = self.writes.lock().dirty_files();
        files
            .into_iter()
            .filter_map(|n| self.commit(n).err().map(|e| (n, e)))
            .collect()
    }
}

/// Unmount `mountpoint`: `umount(2)`, lazily if it is busy; without privilege,
/// `fusermount3 -u -z`.
pub fn unmount(mountpoint: &Path) -> Result<()> {
    let c = CString::new(mountpoint.as_os_str().as_bytes()).context("mount point")?;
    // SAFETY: `c` is a valid NUL-terminated path.
    if unsafe { libc::umount2(c.as_ptr(), 0) } == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EBUSY) {
        // SAFETY: as above; MNT_DETACH unmounts once the last user is gone.
        if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {
            return Ok(());
        }
    }
    let st = std::process::Command::new("fusermount3")
        .args(["-u", "-z", "-q"])
        .arg(mountpoint)
        .status()
        .with_context(|| {
            format!(
                "umount {} failed ({e}); running fusermount3",
                mountpoint.display()
            )
        })?;
    if !st.success() {
        bail!(
            "fusermount3 -u {} failed ({st}; umount: {e})",
            mountpoint.display()
        );
    }
    Ok(())
}

fn fuse_config(threads: usize, auto_unmount: bool, server: &str, trusted: bool) -> Config {
    let mut c = Config::default();
    c.mount_options = vec![
        MountOption::FSName(format!("sfs:{server}")),
        MountOption::Subtype("sfs".into()),
        MountOption::NoDev,
        MountOption::NoSuid,
    ];
    if auto_unmount {
        c.mount_options.push(MountOption::AutoUnmount);
        c.acl = SessionACL::RootAndOwner;
    }
    if trusted {
        // Every local user, each checked by the kernel with its own credentials.
        c.mount_options.push(MountOption::DefaultPermissions);
        c.acl = SessionACL::All;
    }
    c.n_threads = Some(threads.max(1));
    c.clone_fd = true;
    c
}

/// Mount the export at `cfg.mountpoint` and serve it until it is unmounted
/// (`umount`, `fusermount3 -u`) or SIGINT/SIGTERM arrives (which commits what is
/// uncommitted and unmounts). `on_ready` runs once the kernel has the mount.
pub fn mount(cfg: MountConfig, on_ready: impl FnOnce(&MountInfo)) -> Result<()> {
    let md = std::fs::metadata(&cfg.mountpoint)
        .with_context(|| format!("mount point {}", cfg.mountpoint.display()))?;
    if !md.is_dir() {
        bail!(
            "mount point {} is not a directory",
            cfg.mountpoint.display()
        );
    }
    let inval = Arc::new(Invalidator::default());
    let (sfs, mut info) = Sfs::connect(&cfg, inval.clone())?;
    // auto_unmount (through fusermount3) unmounts even if this process is killed; it
    // needs fusermount3 and, for other users, `user_allow_other`: fall back without.
    let mut session = match fuser::Session::new(
        ops::Fs(sfs.clone()),
        &cfg.mountpoint,
        &fuse_config(cfg.threads, true, &cfg.server, info.trusted),
    ) {
        Ok(s) => {
            info.auto_unmount = true;
            s
        }
        Err(first) => fuser::Session::new(
            ops::Fs(sfs.clone()),
            &cfg.mountpoint,
            &fuse_config(cfg.threads, false, &cfg.server, info.trusted),
        )
        .with_context(|| {
            format!(
                "mounting {} (with auto_unmount: {first})",
                cfg.mountpoint.display()
            )
        })?,
    };
    let abs = std::path::absolute(&cfg.mountpoint)
        .with_context(|| format!("mount point {}", cfg.mountpoint.display()))?;
    info.readahead_kb = readahead::raise(&abs);
    inval.set_notifier(session.notifier());
    let inval_thread = {
        let (iv, s2) = (inval.clone(), sfs.clone());
        std::thread::Builder::new()
            .name("sfs-invalidate".into())
            .spawn(move || iv.run(Arc::new(move |d| s2.nodes.lock().children(d))))?
    };
    let unmounter = Arc::new(Mutex::new(session.unmount_callable()));
    signals::on_term(sfs.clone(), cfg.mountpoint.clone(), unmounter)?;
    on_ready(&info);
    let r = session.run();
    inval.stop();
    let _ = inval_thread.join();
    r.with_context(|| format!("serving {}", cfg.mountpoint.display()))
}

mod signals {
    //! SIGINT/SIGTERM: commit, unmount, and make sure the process ends.
    use super::*;

    /// Spawn the thread that waits for SIGINT or SIGTERM.
    pub(super) fn on_term(
        sfs: Arc<Sfs>,
        mountpoint: PathBuf,
        unmounter: Arc<Mutex<fuser::SessionUnmounter>>,
    ) -> Result<()> {
        let mut sigs = edge::signals::StopSignals::hook()?;
        std::thread::Builder::new()
            .name("sfs-signals".into())
            .spawn(move || {
                sigs.wait();
                let _ = sfs.commit_all();
                if unmount(&mountpoint).is_err() {
                    let _ = unmounter.lock().unmount();
                }
                // The session ends when the kernel lets go; if files are still open
                // after a lazy unmount, do not wait for them.
                std::thread::sleep(Duration::from_secs(5));
                std::process::exit(0);
            })?;
        Ok(())
    }
}
