//! Request dispatch: the serial half of the server, free of sockets and colors.
//!
//! A [`Dispatcher`] owns the export, the lease table and the identity of every
//! connected client. The server feeds it the decrypted messages of each connection (in
//! color 0, one at a time) and delivers what it returns: plaintext frames addressed by
//! connection id, a deadline for the lease timer, and an fsync to run off color 0.
//! Because it only ever sees connection ids and byte frames, it is tested here without
//! sockets.
//!
//! Invariants:
//! 1. A message from a connection the dispatcher does not know (never connected, or
//!    already disconnected) is dropped without effect.
//! 2. A conflicting operation's reply (WRITE, SETATTR, REMOVE, RENAME, a non-exclusive
//!    CREATE) is held in the lease table until the other holders acknowledge
//!    INVALIDATE, disconnect, or their leases expire ([`Dispatcher::on_timer`]).
//! 3. A stable WRITE's data is written before [`Dispatcher::handle`] returns, so later
//!    operations see it, but its reply (like COMMIT's) is built only in
//!    [`Dispatcher::finish_sync`], after the caller ran the returned [`SyncJob`]'s fsync:
//!    no acknowledgement of a stable write precedes its fsync.
//! 4. Frames start with [`LEN_BYTES`] reserved bytes, ready for the session cipher.
//! 5. A call acts as the connection's mapped identity; a [`ClientMsg::CallAs`] acts as
//!    the credentials it carries only if the connection's key is trusted (NFS's
//!    trusted-host model, ids taken as given with root squashing off), and is refused
//!    with EPERM, and logged, from any other connection.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sfs_proto::codec::read_reply_frame;
use sfs_proto::fh::HandleData;
use sfs_proto::frame::LEN_BYTES;
use sfs_proto::messages::{ClientMsg, Fh, Reply, Request, ServerMsg, Stable, Status};

use crate::fs::Export;
use crate::lease::{Conflict, LeaseTable};
use crate::perm::Ident;

/// Connection id.
pub type ConnId = u64;

/// Frames to send: (connection, plaintext frame with [`LEN_BYTES`] reserved).
pub type Outgoing = Vec<(ConnId, Vec<u8>)>;

/// A durable WRITE or COMMIT whose data is written and whose fsync the caller runs
/// (off the serial color); [`Dispatcher::finish_sync`] then builds the reply.
pub struct SyncJob {
    /// The open file to sync.
    pub file: Arc<std::fs::File>,
    /// `fdatasync` instead of `fsync`.
    pub data_only: bool,
    /// Connection that asked.
    conn: ConnId,
    /// Its call's xid.
    xid: u32,
    /// The reply to send once synced.
    reply: Reply,
    /// File ids whose other lease holders must be invalidated before the reply.
    conflict: Vec<u64>,
}

/// What one message produced.
#[derive(Default)]
pub struct Outcome {
    /// Frames to send now.
    pub out: Outgoing,
    /// Arm the lease timer for this instant (earlier than any armed one).
    pub arm: Option<Instant>,
    /// An fsync to run before the reply can be built.
    pub sync: Option<SyncJob>,
    /// Events worth logging, with the connection they concern (the dispatcher never
    /// prints; the server does).
    pub warnings: Vec<(ConnId, String)>,
}

/// A reply held until lease holders acknowledge INVALIDATE.
struct Held {
    /// Connection the reply goes to.
    conn: ConnId,
    /// The plaintext reply frame.
    frame: Vec<u8>,
}

/// A connected client.
struct Session {
    /// Local identity from the uid mapping table, once authenticated.
    ident: Option<Ident>,
    /// The key may act for the callers it names ([`ClientMsg::CallAs`]).
    trusted: bool,
}

/// What one call produces before the lease check.
enum Step {
    /// A reply frame and the file ids it conflicts on.
    Frame(Vec<u8>, Vec<u64>),
    /// An fsync must run first.
    Sync(SyncJob),
}

/// The serial part of the server: export, leases, sessions.
pub struct Dispatcher {
    /// The exported tree.
    export: Export,
    /// Attribute leases and the replies they hold.
    leases: LeaseTable<Held>,
    /// Connected clients by id.
    sessions: HashMap<ConnId, Session>,
    /// The lease timer's armed deadline, if any.
    timer_at: Option<Instant>,
}

/// A plaintext frame holding `m`.
pub fn plain(m: &ServerMsg) -> Vec<u8> {
    let mut f = vec![0u8; LEN_BYTES];
    m.encode_into(&mut f);
    f
}

fn reply_frame(xid: u32, r: Result<Reply, Status>) -> Vec<u8> {
    plain(&ServerMsg::Reply { xid, result: r })
}

fn frame(xid: u32, r: Result<Reply, Status>, conflict: Vec<u64>) -> Step {
    Step::Frame(reply_frame(xid, r), conflict)
}

impl Dispatcher {
    /// A dispatcher serving `export` with leases of `lease`.
    pub fn new(export: Export, lease: Duration) -> Dispatcher {
        Dispatcher {
            export,
            leases: LeaseTable::new(lease),
            sessions: HashMap::new(),
            timer_at: None,
        }
    }

    /// A connection was accepted (not yet authenticated).
    pub fn connect(&mut self, id: ConnId) {
        self.sessions.insert(
            id,
            Session {
                ident: None,
                trusted: false,
            },
        );
    }

    /// Connection `id` authenticated as a user mapped to `ident` (uid, gid), with a
    /// key that is `trusted` to act for other callers or not.
    pub fn authenticate(&mut self, id: ConnId, ident: Option<(u32, u32)>, trusted: bool) {
        if let Some(s) = self.sessions.get_mut(&id) {
            s.ident = ident.map(|(uid, gid)| Ident::new(uid, gid));
            s.trusted = trusted && ident.is_some();
        }
    }

    /// Connection `id` is gone: forget it, drop its leases, count its callbacks as
    /// acknowledged; returns the replies this releases.
    pub fn disconnect(&mut self, id: ConnId) -> Outgoing {
        self.sessions.remove(&id);
        let held = self.leases.drop_client(id);
        self.release(held)
    }

    /// The lease timer fired at `now`: replies whose revoked leases expired, and the
    /// next deadline to arm.
    pub fn on_timer(&mut self, now: Instant) -> (Outgoing, Option<Instant>) {
        self.timer_at = None;
        let held = self.leases.expire(now);
        let out = self.release(held);
        let next = self.leases.next_deadline();
        self.timer_at = next;
        (out, next)
    }

    fn release(&self, held: Vec<Held>) -> Outgoing {
        held.into_iter()
            .filter(|h| self.sessions.contains_key(&h.conn))
            .map(|h| (h.conn, h.frame))
            .collect()
    }

    /// Handle one message from connection `id`.
    pub fn handle(&mut self, id: ConnId, msg: ClientMsg, now: Instant) -> Outcome {
        let Some((who, trusted)) = self.sessions.get(&id).map(|s| (s.ident, s.trusted)) else {
            return Outcome::default();
        };
        let (xid, req) = match msg {
            ClientMsg::CallbackAck { cb_id } => {
                let out = match self.leases.ack(id, cb_id) {
                    Some(h) => self.release(vec![h]),
                    None => Vec::new(),
                };
                return Outcome {
                    out,
                    ..Outcome::default()
                };
            }
            ClientMsg::Call { xid, req } => (xid, req),
            ClientMsg::CallAs { xid, cred, req } if trusted => {
                let who = Ident::with_groups(cred.uid, cred.gid, &cred.groups);
                return self.finish_call(id, Some(who), xid, req, now, Vec::new());
            }
            ClientMsg::CallAs { xid, cred, req } => {
                // A WHOAMI is how a client asks whether its key is trusted: no warning.
                let warnings = if req == Request::WhoAmI {
                    Vec::new()
                } else {
                    let w = format!(
                        "refused a call for uid {} from a key that is not trusted",
                        cred.uid
                    );
                    vec![(id, w)]
                };
                return Outcome {
                    out: vec![(id, reply_frame(xid, Err(Status::Perm)))],
                    warnings,
                    ..Outcome::default()
                };
            }
        };
        self.finish_call(id, who, xid, req, now, Vec::new())
    }

    /// Run one call as `who` (nobody when unmapped) and conclude it.
    fn finish_call(
        &mut self,
        id: ConnId,
        who: Option<Ident>,
        xid: u32,
        req: Request,
        now: Instant,
        mut warnings: Vec<(ConnId, String)>,
    ) -> Outcome {
        let who = who.unwrap_or(Ident::NOBODY);
        match self.call(id, who, xid, req, now, &mut warnings) {
            Step::Sync(job) => Outcome {
                sync: Some(job),
                warnings,
                ..Outcome::default()
            },
            Step::Frame(frame, conflict) => {
                let (out, arm) = self.conclude(id, frame, &conflict, now);
                Outcome {
                    out,
                    arm,
                    sync: None,
                    warnings,
                }
            }
        }
    }

    fn decode(
        &self,
        id: ConnId,
        fh: &Fh,
        warnings: &mut Vec<(ConnId, String)>,
    ) -> Result<HandleData, Status> {
        self.export.decode(fh).inspect_err(|_| {
            warnings.push((id, "refused a forged or altered file handle".into()));
        })
    }

    /// One call: the reply (or the fsync it waits for) and its conflicts.
    fn call(
        &mut self,
        id: ConnId,
        who: Ident,
        xid: u32,
        req: Request,
        now: Instant,
        warnings: &mut Vec<(ConnId, String)>,
    ) -> Step {
        let (fh, rest) = match req {
            Request::Root => return frame(xid, self.export.root(), Vec::new()),
            Request::WhoAmI => {
                let r = Reply::Ident {
                    uid: who.uid,
                    gid: who.gid,
                };
                return frame(xid, Ok(r), Vec::new());
            }
            Request::GetAttr { ref fh }
            | Request::SetAttr { ref fh, .. }
            | Request::Access { ref fh, .. }
            | Request::ReadLink { ref fh }
            | Request::Read { ref fh, .. }
            | Request::Write { ref fh, .. }
            | Request::Commit { ref fh }
            | Request::StatFs { ref fh } => (fh.clone(), req),
            other => return self.namespace_call(id, who, xid, other, now, warnings),
        };
        let h = match self.decode(id, &fh, warnings) {
            Ok(h) => h,
            Err(s) => return frame(xid, Err(s), Vec::new()),
        };
        let mut conflict = Vec::new();
        let r = match rest {
            Request::GetAttr { .. } => self.export.getattr(&h).map(|a| {
                self.leases.grant(id, a.fileid, now);
                Reply::Attr(a)
            }),
            Request::SetAttr { attrs, .. } => self.export.setattr(who, &h, &attrs).map(|a| {
                conflict.push(a.fileid);
                self.leases.grant(id, a.fileid, now);
                Reply::Attr(a)
            }),
            Request::Access { mask, .. } => self.export.access(who, &h, mask).map(Reply::Access),
            Request::ReadLink { .. } => self.export.readlink(&h).map(Reply::Target),
            Request::StatFs { .. } => self.export.statfs().map(Reply::StatFs),
            Request::Read { offset, count, .. } => {
                return Step::Frame(self.read(id, who, &h, xid, offset, count, now), conflict)
            }
            Request::Write {
                offset,
                stable,
                data,
                ..
            } => return self.write(id, who, xid, &h, offset, stable, &data),
            Request::Commit { .. } => return self.commit(id, xid, &h),
            _ => unreachable!("only requests on one handle get here"),
        };
        frame(xid, r, conflict)
    }

    /// A call that adds, removes or lists directory entries. Each change conflicts on
    /// the directories it changes and on the files whose link count it changes, so
    /// other clients drop their cached entries and attributes before it is answered.
    fn namespace_call(
        &mut self,
        id: ConnId,
        who: Ident,
        xid: u32,
        req: Request,
        now: Instant,
        warnings: &mut Vec<(ConnId, String)>,
    ) -> Step {
        let mut conflict: Vec<u64> = Vec::new();
        let r = match req {
            Request::Lookup { dir, name } => self.decode(id, &dir, warnings).and_then(|d| {
                let r = self.export.lookup(who, &d, &name)?;
                self.grant_handle(id, &r, now);
                Ok(r)
            }),
            Request::ReadDir {
                dir,
                cookie,
                max_entries,
            } => self
                .decode(id, &dir, warnings)
                .and_then(|d| self.export.readdir(who, &d, cookie, max_entries)),
            Request::Create {
                dir,
                name,
                mode,
                exclusive,
            } => self.decode(id, &dir, warnings).and_then(|d| {
                let r = self.export.create(who, &d, &name, mode, exclusive)?;
                self.grant_handle(id, &r, now);
                conflict.push(d.ino);
                if let (Reply::Handle { attr, .. }, false) = (&r, exclusive) {
                    // An existing file may have been opened: others' caches are suspect.
                    conflict.push(attr.fileid);
                }
                Ok(r)
            }),
            Request::Mkdir { dir, name, mode } => self.decode(id, &dir, warnings).and_then(|d| {
                let r = self.export.mkdir(who, &d, &name, mode)?;
                self.grant_handle(id, &r, now);
                conflict.push(d.ino);
                Ok(r)
            }),
            Request::Mknod {
                dir,
                name,
                ftype,
                mode,
                rdev,
            } => self.decode(id, &dir, warnings).and_then(|d| {
                let r = self.export.mknod(who, &d, &name, ftype, mode, rdev)?;
                self.grant_handle(id, &r, now);
                conflict.push(d.ino);
                Ok(r)
            }),
            Request::Symlink { dir, name, target } => {
                self.decode(id, &dir, warnings).and_then(|d| {
                    let r = self.export.symlink(who, &d, &name, &target)?;
                    self.grant_handle(id, &r, now);
                    conflict.push(d.ino);
                    Ok(r)
                })
            }
            Request::Link { fh, dir, name } => self.decode(id, &fh, warnings).and_then(|h| {
                let d = self.decode(id, &dir, warnings)?;
                let r = self.export.link(who, &h, &d, &name)?;
                self.grant_handle(id, &r, now);
                conflict.extend([h.ino, d.ino]);
                Ok(r)
            }),
            Request::Remove { dir, name } => self.decode(id, &dir, warnings).and_then(|d| {
                conflict.extend([self.export.remove(who, &d, &name)?, d.ino]);
                Ok(Reply::Done)
            }),
            Request::Rmdir { dir, name } => self.decode(id, &dir, warnings).and_then(|d| {
                conflict.extend([self.export.rmdir(who, &d, &name)?, d.ino]);
                Ok(Reply::Done)
            }),
            Request::Rename {
                from_dir,
                from_name,
                to_dir,
                to_name,
            } => self.decode(id, &from_dir, warnings).and_then(|f| {
                let t = self.decode(id, &to_dir, warnings)?;
                let (moved, replaced) = self.export.rename(who, &f, &from_name, &t, &to_name)?;
                conflict.extend([moved, f.ino, t.ino]);
                conflict.extend(replaced);
                Ok(Reply::Done)
            }),
            _ => unreachable!("call handles every other request"),
        };
        conflict.sort_unstable();
        conflict.dedup();
        frame(xid, r, conflict)
    }

    /// A handle reply grants its file's lease.
    fn grant_handle(&mut self, id: ConnId, r: &Reply, now: Instant) {
        if let Reply::Handle { attr, .. } = r {
            self.leases.grant(id, attr.fileid, now);
        }
    }

    /// READ straight into the reply frame; grants the file's lease.
    #[allow(clippy::too_many_arguments)]
    fn read(
        &mut self,
        id: ConnId,
        who: Ident,
        h: &HandleData,
        xid: u32,
        offset: u64,
        count: u32,
        now: Instant,
    ) -> Vec<u8> {
        let export = &mut self.export;
        let f = read_reply_frame(xid, count as usize, |buf, n| {
            export.read_append(who, h, offset, n, buf)
        });
        self.leases.grant(id, h.ino, now);
        f
    }

    /// WRITE: unstable writes reply now; stable ones after their fsync.
    #[allow(clippy::too_many_arguments)]
    fn write(
        &mut self,
        id: ConnId,
        who: Ident,
        xid: u32,
        h: &HandleData,
        offset: u64,
        stable: Stable,
        data: &[u8],
    ) -> Step {
        let (count, file) = match self.export.write_nosync(who, h, offset, data) {
            Ok(x) => x,
            Err(s) => return Step::Frame(reply_frame(xid, Err(s)), Vec::new()),
        };
        let reply = Reply::Write {
            count,
            committed: stable,
            verf: self.export.verifier(),
        };
        if stable == Stable::Unstable {
            return Step::Frame(reply_frame(xid, Ok(reply)), vec![h.ino]);
        }
        Step::Sync(SyncJob {
            file,
            data_only: stable == Stable::DataSync,
            conn: id,
            xid,
            reply,
            conflict: vec![h.ino],
        })
    }

    /// COMMIT: the reply waits for the file's fsync.
    fn commit(&mut self, id: ConnId, xid: u32, h: &HandleData) -> Step {
        match self.export.open_file(h) {
            Err(s) => Step::Frame(reply_frame(xid, Err(s)), Vec::new()),
            Ok(file) => Step::Sync(SyncJob {
                file,
                data_only: false,
                conn: id,
                xid,
                reply: Reply::Commit {
                    verf: self.export.verifier(),
                },
                conflict: Vec::new(),
            }),
        }
    }

    /// A durable WRITE or COMMIT's fsync finished with `res`: its reply (through the
    /// lease check), and a warning when the fsync failed.
    pub fn finish_sync(&mut self, job: SyncJob, res: std::io::Result<()>) -> Outcome {
        if !self.sessions.contains_key(&job.conn) {
            return Outcome::default();
        }
        let mut warnings = Vec::new();
        let result = match res {
            Ok(()) => Ok(job.reply),
            Err(e) => {
                warnings.push((job.conn, format!("fsync failed: {e}")));
                Err(Status::from_io(&e))
            }
        };
        let frame = reply_frame(job.xid, result);
        let (out, arm) = self.conclude(job.conn, frame, &job.conflict, Instant::now());
        Outcome {
            out,
            arm,
            sync: None,
            warnings,
        }
    }

    /// Send `frame` to `id` now, or hold it until the other holders of `conflict`'s
    /// leases acknowledge INVALIDATE (sending them the callbacks).
    fn conclude(
        &mut self,
        id: ConnId,
        frame: Vec<u8>,
        conflict: &[u64],
        now: Instant,
    ) -> (Outgoing, Option<Instant>) {
        if conflict.is_empty() {
            return (vec![(id, frame)], None);
        }
        match self
            .leases
            .conflict(id, conflict, now, Held { conn: id, frame })
        {
            Conflict::Proceed(h) => (vec![(id, h.frame)], None),
            Conflict::Wait(cbs) => {
                let out = cbs
                    .into_iter()
                    .filter(|cb| self.sessions.contains_key(&cb.client))
                    .map(|cb| {
                        let f = plain(&ServerMsg::Invalidate {
                            cb_id: cb.cb_id,
                            fileid: cb.fileid,
                        });
                        (cb.client, f)
                    })
                    .collect();
                let arm = self
                    .leases
                    .next_deadline()
                    .filter(|d| self.timer_at.map_or(true, |t| *d < t));
                if let Some(d) = arm {
                    self.timer_at = Some(d);
                }
                (out, arm)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use sfs_proto::messages::{Attr, FileType};

    use super::*;

    struct T {
        _dir: tempfile::TempDir,
        d: Dispatcher,
        xid: u32,
    }

    fn setup(lease: Duration) -> T {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"0123456789").unwrap();
        let export = Export::open(dir.path(), HashMap::new()).unwrap();
        let mut d = Dispatcher::new(export, lease);
        for id in [1, 2] {
            d.connect(id);
            d.authenticate(id, Some((0, 0)), id == 2);
        }
        T {
            _dir: dir,
            d,
            xid: 0,
        }
    }

    fn decode(f: &[u8]) -> ServerMsg {
        ServerMsg::decode(&f[LEN_BYTES..]).unwrap()
    }

    impl T {
        fn send(&mut self, id: ConnId, req: Request) -> Outcome {
            self.xid += 1;
            let xid = self.xid;
            self.d
                .handle(id, ClientMsg::Call { xid, req }, Instant::now())
        }

        /// A call that must be answered at once, to `id` only.
        fn call(&mut self, id: ConnId, req: Request) -> Result<Reply, Status> {
            let o = self.send(id, req);
            assert!(o.sync.is_none());
            assert_eq!(o.out.len(), 1, "one frame");
            assert_eq!(o.out[0].0, id);
            match decode(&o.out[0].1) {
                ServerMsg::Reply { xid, result } => {
                    assert_eq!(xid, self.xid);
                    result
                }
                m => panic!("not a reply: {m:?}"),
            }
        }

        fn lookup(&mut self, id: ConnId, name: &str) -> (Fh, Attr) {
            let Ok(Reply::Handle { fh: root, .. }) = self.call(id, Request::Root) else {
                panic!()
            };
            match self.call(
                id,
                Request::Lookup {
                    dir: root,
                    name: name.into(),
                },
            ) {
                Ok(Reply::Handle { fh, attr }) => (fh, attr),
                r => panic!("lookup {name}: {r:?}"),
            }
        }
    }

    fn write(fh: &Fh, stable: Stable, data: &[u8]) -> Request {
        Request::Write {
            fh: fh.clone(),
            offset: 0,
            stable,
            data: data.to_vec(),
        }
    }

    #[test]
    fn calls_are_answered_to_their_connection() {
        let mut t = setup(Duration::from_secs(30));
        let (fh, attr) = t.lookup(1, "f");
        assert_eq!((attr.ftype, attr.size), (FileType::Regular, 10));
        let r = t.call(
            1,
            Request::Read {
                fh: fh.clone(),
                offset: 4,
                count: 100,
            },
        );
        assert_eq!(
            r,
            Ok(Reply::Read {
                eof: true,
                data: b"456789".to_vec()
            })
        );
        let r = t.call(1, write(&fh, Stable::Unstable, b"ab"));
        assert!(matches!(r, Ok(Reply::Write { count: 2, .. })), "{r:?}");
        let Ok(Reply::Attr(a)) = t.call(1, Request::GetAttr { fh }) else {
            panic!()
        };
        assert_eq!(a.size, 10);
    }

    #[test]
    fn forged_handles_are_refused_and_reported() {
        let mut t = setup(Duration::from_secs(30));
        let (mut fh, _) = t.lookup(1, "f");
        let last = fh.0.len() - 1;
        fh.0[last] ^= 1;
        let o = t.send(1, Request::GetAttr { fh });
        assert_eq!(
            decode(&o.out[0].1),
            ServerMsg::Reply {
                xid: t.xid,
                result: Err(Status::BadHandle)
            }
        );
        assert_eq!(o.warnings.len(), 1);
        assert!(o.warnings[0].1.contains("forged"), "{:?}", o.warnings);
    }

    #[test]
    fn unknown_connections_are_ignored() {
        let mut t = setup(Duration::from_secs(30));
        let o = t.send(9, Request::Root);
        assert!(o.out.is_empty() && o.sync.is_none());
        t.d.disconnect(2);
        let o = t.send(2, Request::Root);
        assert!(o.out.is_empty(), "a disconnected client gets nothing");
    }

    /// Connection 2 writes a file connection 1 holds a lease on: 1 gets INVALIDATE and
    /// 2's reply waits for 1's acknowledgement.
    fn held_write(t: &mut T) -> (u64, u32) {
        let (fh1, attr) = t.lookup(1, "f");
        t.call(1, Request::GetAttr { fh: fh1 }).unwrap();
        let (fh2, _) = t.lookup(2, "f");
        let o = t.send(2, write(&fh2, Stable::Unstable, b"new"));
        assert_eq!(o.out.len(), 1, "only the callback goes out");
        assert_eq!(o.out[0].0, 1);
        let ServerMsg::Invalidate { cb_id, fileid } = decode(&o.out[0].1) else {
            panic!("expected INVALIDATE")
        };
        assert_eq!(fileid, attr.fileid);
        assert!(o.arm.is_some(), "the lease timer is armed");
        (cb_id, t.xid)
    }

    #[test]
    fn conflicting_write_waits_for_the_callback_ack() {
        let mut t = setup(Duration::from_secs(30));
        let (cb_id, xid) = held_write(&mut t);
        let o =
            t.d.handle(2, ClientMsg::CallbackAck { cb_id }, Instant::now());
        assert!(
            o.out.is_empty(),
            "an ack from the wrong client releases nothing"
        );
        let o =
            t.d.handle(1, ClientMsg::CallbackAck { cb_id }, Instant::now());
        assert_eq!(o.out.len(), 1);
        assert_eq!(o.out[0].0, 2);
        assert!(matches!(
            decode(&o.out[0].1),
            ServerMsg::Reply { xid: x, result: Ok(Reply::Write { count: 3, .. }) } if x == xid
        ));
    }

    #[test]
    fn holder_disconnect_or_lease_expiry_releases_the_writer() {
        let mut t = setup(Duration::from_secs(30));
        held_write(&mut t);
        let out = t.d.disconnect(1);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, 2);

        let mut t = setup(Duration::from_millis(50));
        held_write(&mut t);
        let (out, next) = t.d.on_timer(Instant::now());
        assert!(out.is_empty(), "not before the lease expires");
        assert!(next.is_some());
        let (out, next) = t.d.on_timer(Instant::now() + Duration::from_millis(60));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, 2);
        assert_eq!(next, None);
    }

    #[test]
    fn stable_write_and_commit_reply_after_their_fsync() {
        let mut t = setup(Duration::from_secs(30));
        let (fh, _) = t.lookup(1, "f");
        let o = t.send(1, write(&fh, Stable::FileSync, b"xy"));
        assert!(o.out.is_empty(), "no reply before the fsync");
        let job = o.sync.expect("an fsync to run");
        assert!(!job.data_only);
        job.file.sync_all().unwrap();
        let o = t.d.finish_sync(job, Ok(()));
        assert!(matches!(
            decode(&o.out[0].1),
            ServerMsg::Reply {
                result: Ok(Reply::Write {
                    committed: Stable::FileSync,
                    ..
                }),
                ..
            }
        ));
        let o = t.send(1, Request::Commit { fh });
        let job = o.sync.expect("COMMIT waits for its fsync");
        let o =
            t.d.finish_sync(job, Err(std::io::Error::from_raw_os_error(libc::EIO)));
        assert!(matches!(
            decode(&o.out[0].1),
            ServerMsg::Reply {
                result: Err(Status::Io),
                ..
            }
        ));
        assert!(o.warnings[0].1.contains("fsync failed"));
    }

    #[test]
    fn directory_changes_invalidate_the_directory_and_whoami_answers() {
        let mut t = setup(Duration::from_secs(30));
        let Ok(Reply::Handle { fh: root, .. }) = t.call(1, Request::Root) else {
            panic!()
        };
        let Ok(Reply::Handle { fh: dir, attr }) = t.call(
            1,
            Request::Mkdir {
                dir: root.clone(),
                name: "d".into(),
                mode: 0o755,
            },
        ) else {
            panic!()
        };
        let (dir2, _) = t.lookup(2, "d");
        let _ = dir;
        // 1 holds the directory's lease (from MKDIR); 2 adds an entry to it.
        let o = t.send(
            2,
            Request::Symlink {
                dir: dir2,
                name: "l".into(),
                target: b"anywhere".to_vec(),
            },
        );
        assert_eq!(o.out.len(), 1);
        assert_eq!(o.out[0].0, 1);
        assert!(
            matches!(decode(&o.out[0].1), ServerMsg::Invalidate { fileid, .. } if fileid == attr.fileid),
            "the directory's holder is told"
        );
        assert_eq!(
            t.call(2, Request::WhoAmI),
            Ok(Reply::Ident { uid: 0, gid: 0 })
        );
        t.d.connect(3);
        assert_eq!(
            t.call(3, Request::WhoAmI),
            Ok(Reply::Ident {
                uid: Ident::NOBODY.uid,
                gid: Ident::NOBODY.gid
            }),
            "an unmapped connection acts as nobody"
        );
    }

    #[test]
    fn calls_for_other_callers_need_a_trusted_key() {
        let mut t = setup(Duration::from_secs(30));
        let cred = sfs_proto::messages::Cred {
            uid: 4242,
            gid: 4243,
            groups: vec![7],
        };
        let call_as = |t: &mut T, id: ConnId, req: Request| {
            t.xid += 1;
            let xid = t.xid;
            let msg = ClientMsg::CallAs {
                xid,
                cred: cred.clone(),
                req,
            };
            let o = t.d.handle(id, msg, Instant::now());
            assert_eq!(o.out.len(), 1);
            (decode(&o.out[0].1), o.warnings)
        };
        // Connection 1's key is not trusted: refused, and logged (but for the WHOAMI
        // probe that asks whether it is).
        let (m, warnings) = call_as(&mut t, 1, Request::WhoAmI);
        assert!(
            matches!(
                m,
                ServerMsg::Reply {
                    result: Err(Status::Perm),
                    ..
                }
            ),
            "{m:?}"
        );
        assert!(warnings.is_empty(), "{warnings:?}");
        let (fh, _) = t.lookup(1, "f");
        let (m, warnings) = call_as(&mut t, 1, Request::GetAttr { fh });
        assert!(
            matches!(
                m,
                ServerMsg::Reply {
                    result: Err(Status::Perm),
                    ..
                }
            ),
            "{m:?}"
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        // Connection 2's is: the call acts as the caller.
        let (m, warnings) = call_as(&mut t, 2, Request::WhoAmI);
        assert!(warnings.is_empty());
        assert!(
            matches!(
                m,
                ServerMsg::Reply {
                    result: Ok(Reply::Ident {
                        uid: 4242,
                        gid: 4243
                    }),
                    ..
                }
            ),
            "{m:?}"
        );
        // And is checked as that caller: "f" is 0644 root's (or the test user's).
        let (fh, _) = t.lookup(2, "f");
        let (m, _) = call_as(&mut t, 2, write(&fh, Stable::Unstable, b"x"));
        assert!(
            matches!(
                m,
                ServerMsg::Reply {
                    result: Err(Status::Access),
                    ..
                }
            ),
            "{m:?}"
        );
    }
}
