//! The messages' strict, versioned binary encoding ([`crate::messages`] on the wire).
//!
//! Every sealed plaintext starts with `version: u8` ([`PROTO_VERSION`]) and `kind: u8`.
//! Integers are big-endian; byte strings and names carry a `u32` length; options a
//! `u8` presence flag. Invariants:
//! 1. Decoding is strict: unknown versions, kinds or tags, lengths past the end, names
//!    longer than [`MAX_NAME`], symlink targets longer than [`MAX_TARGET`], data longer
//!    than [`MAX_IO`] and trailing bytes are all errors (the server closes the
//!    connection on them).
//! 2. `decode(encode(m)) == m` for every message (property-tested).
//! 3. A READ reply can be built without an intermediate copy: the server writes the
//!    header with [`read_reply_frame`] and reads file data straight into the frame.

use thiserror::Error;

use crate::frame::LEN_BYTES;
use crate::messages::*;

/// Decoding failure.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("malformed message: {0}")]
pub struct DecodeError(pub &'static str);

type DResult<T> = Result<T, DecodeError>;

impl Stable {
    fn from_u8(v: u8) -> DResult<Stable> {
        Ok(match v {
            0 => Stable::Unstable,
            1 => Stable::DataSync,
            2 => Stable::FileSync,
            _ => return Err(DecodeError("bad stable_how")),
        })
    }
}

impl FileType {
    fn from_u8(v: u8) -> DResult<FileType> {
        Ok(match v {
            1 => FileType::Regular,
            2 => FileType::Directory,
            3 => FileType::Symlink,
            4 => FileType::Other,
            5 => FileType::Fifo,
            6 => FileType::CharDev,
            7 => FileType::BlockDev,
            8 => FileType::Socket,
            _ => return Err(DecodeError("bad file type")),
        })
    }
}

impl Status {
    fn from_u32(v: u32) -> DResult<Status> {
        use Status::*;
        const ALL: [Status; 19] = [
            Perm,
            NoEnt,
            Io,
            Access,
            Exist,
            XDev,
            NotDir,
            IsDir,
            Inval,
            FBig,
            NoSpc,
            RoFs,
            MLink,
            NameTooLong,
            NotEmpty,
            DQuot,
            Stale,
            BadHandle,
            NotSupp,
        ];
        ALL.into_iter()
            .find(|s| *s as u32 == v)
            .ok_or(DecodeError("bad status"))
    }
}

// ---- encoding ---------------------------------------------------------------------

/// Append-only encoder.
pub struct Enc<'a>(pub &'a mut Vec<u8>);

impl Enc<'_> {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    fn fh(&mut self, fh: &Fh) {
        self.bytes(&fh.0);
    }
    fn time(&mut self, t: Time) {
        self.i64(t.secs);
        self.u32(t.nsecs);
    }
    fn opt<T: Copy>(&mut self, v: Option<T>, f: impl FnOnce(&mut Self, T)) {
        match v {
            Some(x) => {
                self.u8(1);
                f(self, x)
            }
            None => self.u8(0),
        }
    }
    fn set_time(&mut self, t: Option<SetTime>) {
        match t {
            None => self.u8(0),
            Some(SetTime::Now) => self.u8(1),
            Some(SetTime::At(t)) => {
                self.u8(2);
                self.time(t)
            }
        }
    }
    fn set_attrs(&mut self, a: &SetAttrs) {
        self.opt(a.mode, Self::u32);
        self.opt(a.uid, Self::u32);
        self.opt(a.gid, Self::u32);
        self.opt(a.size, Self::u64);
        self.set_time(a.atime);
        self.set_time(a.mtime);
    }
    fn attr(&mut self, a: &Attr) {
        self.u8(a.ftype as u8);
        self.u32(a.mode);
        self.u32(a.nlink);
        self.u32(a.uid);
        self.u32(a.gid);
        self.str(&a.owner);
        self.u64(a.size);
        self.u64(a.fileid);
        self.time(a.atime);
        self.time(a.mtime);
        self.time(a.ctime);
        self.u64(a.rdev);
    }
    fn cred(&mut self, c: &Cred) {
        self.u32(c.uid);
        self.u32(c.gid);
        self.u32(c.groups.len() as u32);
        for g in &c.groups {
            self.u32(*g);
        }
    }
    fn fsstat(&mut self, s: &FsStat) {
        self.u32(s.bsize);
        self.u32(s.frsize);
        for v in [s.blocks, s.bfree, s.bavail, s.files, s.ffree] {
            self.u64(v);
        }
        self.u32(s.namemax);
    }
}

/// Strict decoder.
pub struct Dec<'a> {
    b: &'a [u8],
}

impl<'a> Dec<'a> {
    /// Decode from `b`.
    pub fn new(b: &'a [u8]) -> Dec<'a> {
        Dec { b }
    }
    fn take(&mut self, n: usize) -> DResult<&'a [u8]> {
        if self.b.len() < n {
            return Err(DecodeError("message ends early"));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn u8(&mut self) -> DResult<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> DResult<u32> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> DResult<u64> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn i64(&mut self) -> DResult<i64> {
        Ok(i64::from_be_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn bool(&mut self) -> DResult<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError("bad bool")),
        }
    }
    fn bytes(&mut self, max: usize) -> DResult<&'a [u8]> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(DecodeError("length over limit"));
        }
        self.take(n)
    }
    fn name(&mut self) -> DResult<String> {
        let b = self.bytes(MAX_NAME)?;
        String::from_utf8(b.to_vec()).map_err(|_| DecodeError("name not utf-8"))
    }
    fn target(&mut self) -> DResult<Vec<u8>> {
        Ok(self.bytes(MAX_TARGET)?.to_vec())
    }
    fn fh(&mut self) -> DResult<Fh> {
        Ok(Fh(self.bytes(MAX_FH)?.to_vec()))
    }
    fn time(&mut self) -> DResult<Time> {
        Ok(Time {
            secs: self.i64()?,
            nsecs: self.u32()?,
        })
    }
    fn opt<T>(&mut self, f: impl FnOnce(&mut Self) -> DResult<T>) -> DResult<Option<T>> {
        Ok(if self.bool()? { Some(f(self)?) } else { None })
    }
    fn set_time(&mut self) -> DResult<Option<SetTime>> {
        Ok(match self.u8()? {
            0 => None,
            1 => Some(SetTime::Now),
            2 => Some(SetTime::At(self.time()?)),
            _ => return Err(DecodeError("bad set_time")),
        })
    }
    fn set_attrs(&mut self) -> DResult<SetAttrs> {
        Ok(SetAttrs {
            mode: self.opt(Self::u32)?,
            uid: self.opt(Self::u32)?,
            gid: self.opt(Self::u32)?,
            size: self.opt(Self::u64)?,
            atime: self.set_time()?,
            mtime: self.set_time()?,
        })
    }
    fn attr(&mut self) -> DResult<Attr> {
        Ok(Attr {
            ftype: FileType::from_u8(self.u8()?)?,
            mode: self.u32()?,
            nlink: self.u32()?,
            uid: self.u32()?,
            gid: self.u32()?,
            owner: self.name()?,
            size: self.u64()?,
            fileid: self.u64()?,
            atime: self.time()?,
            mtime: self.time()?,
            ctime: self.time()?,
            rdev: self.u64()?,
        })
    }
    fn cred(&mut self) -> DResult<Cred> {
        let (uid, gid) = (self.u32()?, self.u32()?);
        let n = self.u32()? as usize;
        if n > MAX_GROUPS {
            return Err(DecodeError("too many groups"));
        }
        let groups = (0..n).map(|_| self.u32()).collect::<DResult<_>>()?;
        Ok(Cred { uid, gid, groups })
    }
    fn fsstat(&mut self) -> DResult<FsStat> {
        Ok(FsStat {
            bsize: self.u32()?,
            frsize: self.u32()?,
            blocks: self.u64()?,
            bfree: self.u64()?,
            bavail: self.u64()?,
            files: self.u64()?,
            ffree: self.u64()?,
            namemax: self.u32()?,
        })
    }
    fn dir_entries(&mut self) -> DResult<Vec<DirEntry>> {
        let n = self.u32()?;
        if n > MAX_DIR_ENTRIES {
            return Err(DecodeError("too many entries"));
        }
        let mut entries = Vec::with_capacity(n as usize);
        for _ in 0..n {
            entries.push(DirEntry {
                name: self.name()?,
                fileid: self.u64()?,
                ftype: FileType::from_u8(self.u8()?)?,
            });
        }
        Ok(entries)
    }
    fn header(&mut self) -> DResult<u8> {
        if self.u8()? != PROTO_VERSION {
            return Err(DecodeError("unsupported protocol version"));
        }
        self.u8()
    }
    fn end(&self) -> DResult<()> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(DecodeError("trailing bytes"))
        }
    }
}

const C_CALL: u8 = 1;
const C_ACK: u8 = 2;
const C_CALL_AS: u8 = 3;
const S_AUTHOK: u8 = 1;
const S_REPLY: u8 = 2;
const S_INVALIDATE: u8 = 3;

// Procedure numbers: NFSv3's where it has one.
const R_ROOT: u8 = 0;
const R_GETATTR: u8 = 1;
const R_SETATTR: u8 = 2;
const R_LOOKUP: u8 = 3;
const R_ACCESS: u8 = 4;
const R_READLINK: u8 = 5;
const R_READ: u8 = 6;
const R_WRITE: u8 = 7;
const R_CREATE: u8 = 8;
const R_MKDIR: u8 = 9;
const R_SYMLINK: u8 = 10;
const R_MKNOD: u8 = 11;
const R_REMOVE: u8 = 12;
const R_RMDIR: u8 = 13;
const R_RENAME: u8 = 14;
const R_LINK: u8 = 15;
const R_READDIR: u8 = 16;
const R_FSSTAT: u8 = 18;
const R_COMMIT: u8 = 21;
const R_WHOAMI: u8 = 100;

const P_HANDLE: u8 = 1;
const P_ATTR: u8 = 2;
const P_READ: u8 = 3;
const P_WRITE: u8 = 4;
const P_COMMIT: u8 = 5;
const P_DONE: u8 = 6;
const P_READDIR: u8 = 7;
const P_ACCESS: u8 = 8;
const P_TARGET: u8 = 9;
const P_FSSTAT: u8 = 10;
const P_IDENT: u8 = 11;

impl Request {
    fn encode(&self, e: &mut Enc<'_>) {
        match self {
            Request::Root => e.u8(R_ROOT),
            Request::WhoAmI => e.u8(R_WHOAMI),
            Request::GetAttr { fh } => {
                e.u8(R_GETATTR);
                e.fh(fh);
            }
            Request::SetAttr { fh, attrs } => {
                e.u8(R_SETATTR);
                e.fh(fh);
                e.set_attrs(attrs);
            }
            Request::Access { fh, mask } => {
                e.u8(R_ACCESS);
                e.fh(fh);
                e.u32(*mask);
            }
            Request::ReadLink { fh } => {
                e.u8(R_READLINK);
                e.fh(fh);
            }
            Request::Read { fh, offset, count } => {
                e.u8(R_READ);
                e.fh(fh);
                e.u64(*offset);
                e.u32(*count);
            }
            Request::Write {
                fh,
                offset,
                stable,
                data,
            } => {
                e.u8(R_WRITE);
                e.fh(fh);
                e.u64(*offset);
                e.u8(*stable as u8);
                e.bytes(data);
            }
            Request::Commit { fh } => {
                e.u8(R_COMMIT);
                e.fh(fh);
            }
            Request::StatFs { fh } => {
                e.u8(R_FSSTAT);
                e.fh(fh);
            }
            Request::ReadDir {
                dir,
                cookie,
                max_entries,
            } => {
                e.u8(R_READDIR);
                e.fh(dir);
                e.u64(*cookie);
                e.u32(*max_entries);
            }
            _ => self.encode_namespace(e),
        }
    }

    /// The requests that name an entry of a directory.
    fn encode_namespace(&self, e: &mut Enc<'_>) {
        let (proc_, dir, name) = match self {
            Request::Lookup { dir, name } => (R_LOOKUP, dir, name),
            Request::Create { dir, name, .. } => (R_CREATE, dir, name),
            Request::Mkdir { dir, name, .. } => (R_MKDIR, dir, name),
            Request::Symlink { dir, name, .. } => (R_SYMLINK, dir, name),
            Request::Mknod { dir, name, .. } => (R_MKNOD, dir, name),
            Request::Remove { dir, name } => (R_REMOVE, dir, name),
            Request::Rmdir { dir, name } => (R_RMDIR, dir, name),
            Request::Rename {
                from_dir,
                from_name,
                ..
            } => (R_RENAME, from_dir, from_name),
            Request::Link { dir, name, .. } => (R_LINK, dir, name),
            _ => unreachable!("encode handles every other request"),
        };
        e.u8(proc_);
        e.fh(dir);
        e.str(name);
        match self {
            Request::Create {
                mode, exclusive, ..
            } => {
                e.u32(*mode);
                e.u8(*exclusive as u8);
            }
            Request::Mkdir { mode, .. } => e.u32(*mode),
            Request::Symlink { target, .. } => e.bytes(target),
            Request::Mknod {
                ftype, mode, rdev, ..
            } => {
                e.u8(*ftype as u8);
                e.u32(*mode);
                e.u64(*rdev);
            }
            Request::Rename {
                to_dir, to_name, ..
            } => {
                e.fh(to_dir);
                e.str(to_name);
            }
            Request::Link { fh, .. } => e.fh(fh),
            _ => {}
        }
    }

    fn decode(d: &mut Dec<'_>) -> DResult<Request> {
        Ok(match d.u8()? {
            R_ROOT => Request::Root,
            R_WHOAMI => Request::WhoAmI,
            R_GETATTR => Request::GetAttr { fh: d.fh()? },
            R_SETATTR => Request::SetAttr {
                fh: d.fh()?,
                attrs: d.set_attrs()?,
            },
            R_ACCESS => Request::Access {
                fh: d.fh()?,
                mask: d.u32()?,
            },
            R_READLINK => Request::ReadLink { fh: d.fh()? },
            R_READ => Request::Read {
                fh: d.fh()?,
                offset: d.u64()?,
                count: d.u32()?,
            },
            R_WRITE => Request::Write {
                fh: d.fh()?,
                offset: d.u64()?,
                stable: Stable::from_u8(d.u8()?)?,
                data: d.bytes(MAX_IO)?.to_vec(),
            },
            R_COMMIT => Request::Commit { fh: d.fh()? },
            R_FSSTAT => Request::StatFs { fh: d.fh()? },
            R_READDIR => Request::ReadDir {
                dir: d.fh()?,
                cookie: d.u64()?,
                max_entries: d.u32()?,
            },
            p => Request::decode_namespace(p, d)?,
        })
    }

    fn decode_namespace(proc_: u8, d: &mut Dec<'_>) -> DResult<Request> {
        if ![
            R_LOOKUP, R_CREATE, R_MKDIR, R_SYMLINK, R_MKNOD, R_REMOVE, R_RMDIR, R_RENAME, R_LINK,
        ]
        .contains(&proc_)
        {
            return Err(DecodeError("unknown procedure"));
        }
        let (dir, name) = (d.fh()?, d.name()?);
        Ok(match proc_ {
            R_LOOKUP => Request::Lookup { dir, name },
            R_CREATE => Request::Create {
                dir,
                name,
                mode: d.u32()?,
                exclusive: d.bool()?,
            },
            R_MKDIR => Request::Mkdir {
                dir,
                name,
                mode: d.u32()?,
            },
            R_SYMLINK => Request::Symlink {
                dir,
                name,
                target: d.target()?,
            },
            R_MKNOD => Request::Mknod {
                dir,
                name,
                ftype: match FileType::from_u8(d.u8()?)? {
                    t @ (FileType::Fifo
                    | FileType::Socket
                    | FileType::CharDev
                    | FileType::BlockDev) => t,
                    _ => return Err(DecodeError("MKNOD of a type it cannot make")),
                },
                mode: d.u32()?,
                rdev: d.u64()?,
            },
            R_REMOVE => Request::Remove { dir, name },
            R_RMDIR => Request::Rmdir { dir, name },
            R_RENAME => Request::Rename {
                from_dir: dir,
                from_name: name,
                to_dir: d.fh()?,
                to_name: d.name()?,
            },
            _ => Request::Link {
                dir,
                name,
                fh: d.fh()?,
            },
        })
    }
}

impl Reply {
    fn encode(&self, e: &mut Enc<'_>) {
        match self {
            Reply::Handle { fh, attr } => {
                e.u8(P_HANDLE);
                e.fh(fh);
                e.attr(attr);
            }
            Reply::Attr(a) => {
                e.u8(P_ATTR);
                e.attr(a);
            }
            Reply::Read { eof, data } => {
                e.u8(P_READ);
                e.u8(*eof as u8);
                e.bytes(data);
            }
            Reply::Write {
                count,
                committed,
                verf,
            } => {
                e.u8(P_WRITE);
                e.u32(*count);
                e.u8(*committed as u8);
                e.u64(*verf);
            }
            Reply::Commit { verf } => {
                e.u8(P_COMMIT);
                e.u64(*verf);
            }
            Reply::Done => e.u8(P_DONE),
            Reply::ReadDir {
                entries,
                cookie,
                eof,
            } => {
                e.u8(P_READDIR);
                e.u32(entries.len() as u32);
                for en in entries {
                    e.str(&en.name);
                    e.u64(en.fileid);
                    e.u8(en.ftype as u8);
                }
                e.u64(*cookie);
                e.u8(*eof as u8);
            }
            Reply::Access(m) => {
                e.u8(P_ACCESS);
                e.u32(*m);
            }
            Reply::Target(t) => {
                e.u8(P_TARGET);
                e.bytes(t);
            }
            Reply::StatFs(s) => {
                e.u8(P_FSSTAT);
                e.fsstat(s);
            }
            Reply::Ident { uid, gid } => {
                e.u8(P_IDENT);
                e.u32(*uid);
                e.u32(*gid);
            }
        }
    }

    fn decode(d: &mut Dec<'_>) -> DResult<Reply> {
        Ok(match d.u8()? {
            P_HANDLE => Reply::Handle {
                fh: d.fh()?,
                attr: d.attr()?,
            },
            P_ATTR => Reply::Attr(d.attr()?),
            P_READ => Reply::Read {
                eof: d.bool()?,
                data: d.bytes(MAX_IO)?.to_vec(),
            },
            P_WRITE => Reply::Write {
                count: d.u32()?,
                committed: Stable::from_u8(d.u8()?)?,
                verf: d.u64()?,
            },
            P_COMMIT => Reply::Commit { verf: d.u64()? },
            P_DONE => Reply::Done,
            P_READDIR => Reply::ReadDir {
                entries: d.dir_entries()?,
                cookie: d.u64()?,
                eof: d.bool()?,
            },
            P_ACCESS => Reply::Access(d.u32()?),
            P_TARGET => Reply::Target(d.target()?),
            P_FSSTAT => Reply::StatFs(d.fsstat()?),
            P_IDENT => Reply::Ident {
                uid: d.u32()?,
                gid: d.u32()?,
            },
            _ => return Err(DecodeError("unknown reply kind")),
        })
    }
}

impl ClientMsg {
    /// Encode after `out`'s current contents.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut e = Enc(out);
        e.u8(PROTO_VERSION);
        match self {
            ClientMsg::CallbackAck { cb_id } => {
                e.u8(C_ACK);
                e.u64(*cb_id);
            }
            ClientMsg::Call { xid, req } => {
                e.u8(C_CALL);
                e.u32(*xid);
                req.encode(&mut e);
            }
            ClientMsg::CallAs { xid, cred, req } => {
                e.u8(C_CALL_AS);
                e.u32(*xid);
                e.cred(cred);
                req.encode(&mut e);
            }
        }
    }

    /// Encode into a fresh buffer.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode_into(&mut v);
        v
    }

    /// Strict decode.
    pub fn decode(b: &[u8]) -> DResult<ClientMsg> {
        let mut d = Dec::new(b);
        let m = match d.header()? {
            C_ACK => ClientMsg::CallbackAck { cb_id: d.u64()? },
            C_CALL => ClientMsg::Call {
                xid: d.u32()?,
                req: Request::decode(&mut d)?,
            },
            C_CALL_AS => ClientMsg::CallAs {
                xid: d.u32()?,
                cred: d.cred()?,
                req: Request::decode(&mut d)?,
            },
            _ => return Err(DecodeError("unknown client message kind")),
        };
        d.end()?;
        Ok(m)
    }
}

impl ServerMsg {
    /// Encode after `out`'s current contents.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut e = Enc(out);
        e.u8(PROTO_VERSION);
        match self {
            ServerMsg::AuthOk {
                lease_ms,
                server_id,
            } => {
                e.u8(S_AUTHOK);
                e.u32(*lease_ms);
                e.u32(*server_id);
            }
            ServerMsg::Invalidate { cb_id, fileid } => {
                e.u8(S_INVALIDATE);
                e.u64(*cb_id);
                e.u64(*fileid);
            }
            ServerMsg::Reply { xid, result } => {
                e.u8(S_REPLY);
                e.u32(*xid);
                match result {
                    Err(s) => e.u32(*s as u32),
                    Ok(r) => {
                        e.u32(0);
                        r.encode(&mut e);
                    }
                }
            }
        }
    }

    /// Encode into a fresh buffer.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode_into(&mut v);
        v
    }

    /// Strict decode.
    pub fn decode(b: &[u8]) -> DResult<ServerMsg> {
        let mut d = Dec::new(b);
        let m = match d.header()? {
            S_AUTHOK => ServerMsg::AuthOk {
                lease_ms: d.u32()?,
                server_id: d.u32()?,
            },
            S_INVALIDATE => ServerMsg::Invalidate {
                cb_id: d.u64()?,
                fileid: d.u64()?,
            },
            S_REPLY => {
                let xid = d.u32()?;
                let result = match d.u32()? {
                    0 => Ok(Reply::decode(&mut d)?),
                    st => Err(Status::from_u32(st)?),
                };
                ServerMsg::Reply { xid, result }
            }
            _ => return Err(DecodeError("unknown server message kind")),
        };
        d.end()?;
        Ok(m)
    }
}

/// Build a successful READ reply frame without an intermediate copy: the result has
/// [`LEN_BYTES`] reserved bytes (for [`crate::session::SendCipher::seal_in_place`]),
/// the reply header, and the data `fill` appends. `fill` receives the frame and the
/// byte budget (`count`, capped at [`MAX_IO`]), appends at most that many bytes and
/// returns `eof`; an error becomes an error reply.
pub fn read_reply_frame(
    xid: u32,
    count: usize,
    fill: impl FnOnce(&mut Vec<u8>, usize) -> Result<bool, Status>,
) -> Vec<u8> {
    let count = count.min(MAX_IO);
    let mut v = Vec::with_capacity(LEN_BYTES + 16 + count + 16);
    v.extend_from_slice(&[0u8; LEN_BYTES]);
    {
        let mut e = Enc(&mut v);
        e.u8(PROTO_VERSION);
        e.u8(S_REPLY);
        e.u32(xid);
        e.u32(0);
        e.u8(P_READ);
        e.u8(0); // eof, patched below
        e.u32(0); // length, patched below
    }
    let hdr = v.len();
    match fill(&mut v, count) {
        Ok(eof) => {
            let n = v.len() - hdr;
            assert!(n <= count, "fill appended more than its budget");
            v[hdr - 5] = eof as u8;
            v[hdr - 4..hdr].copy_from_slice(&(n as u32).to_be_bytes());
            v
        }
        Err(s) => {
            let mut v = vec![0u8; LEN_BYTES];
            ServerMsg::Reply {
                xid,
                result: Err(s),
            }
            .encode_into(&mut v);
            v
        }
    }
}

/// The xid of an encoded [`ServerMsg::Reply`] frame (the plaintext after its
/// [`LEN_BYTES`] prefix, as [`read_reply_frame`] and `encode_into` leave it), `None` for any
/// other message: what the connection layer needs to give back a call's output reservation.
pub fn reply_xid(frame: &[u8]) -> Option<u32> {
    match frame.get(LEN_BYTES..LEN_BYTES + 6)? {
        [PROTO_VERSION, S_REPLY, x0, x1, x2, x3] => Some(u32::from_be_bytes([*x0, *x1, *x2, *x3])),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn attr(n: u64) -> Attr {
        Attr {
            ftype: FileType::Regular,
            mode: 0o644,
            nlink: 1,
            uid: 1000,
            gid: 1000,
            owner: "alice".into(),
            size: n,
            fileid: n.wrapping_mul(7),
            atime: Time { secs: -3, nsecs: 9 },
            mtime: Time { secs: 5, nsecs: 0 },
            ctime: Time::default(),
            rdev: n.rotate_left(20),
        }
    }

    fn fh_strategy() -> impl Strategy<Value = Fh> {
        proptest::collection::vec(any::<u8>(), 0..80).prop_map(Fh)
    }
    fn name() -> impl Strategy<Value = String> {
        "[a-z.]{0,20}"
    }

    fn req() -> impl Strategy<Value = Request> {
        prop_oneof![
            Just(Request::Root),
            fh_strategy().prop_map(|fh| Request::GetAttr { fh }),
            (fh_strategy(), set_attrs()).prop_map(|(fh, attrs)| Request::SetAttr { fh, attrs }),
            (fh_strategy(), any::<u32>()).prop_map(|(fh, mask)| Request::Access { fh, mask }),
            fh_strategy().prop_map(|fh| Request::ReadLink { fh }),
            fh_strategy().prop_map(|fh| Request::StatFs { fh }),
            Just(Request::WhoAmI),
            (fh_strategy(), name(), any::<u32>()).prop_map(|(dir, name, mode)| Request::Mkdir {
                dir,
                name,
                mode
            }),
            (
                fh_strategy(),
                name(),
                proptest::collection::vec(1u8.., 0..300)
            )
                .prop_map(|(dir, name, target)| Request::Symlink { dir, name, target }),
            (fh_strategy(), fh_strategy(), name()).prop_map(|(fh, dir, name)| Request::Link {
                fh,
                dir,
                name
            }),
            (fh_strategy(), name(), 5u8..9, any::<u32>(), any::<u64>()).prop_map(
                |(dir, name, t, mode, rdev)| Request::Mknod {
                    dir,
                    name,
                    ftype: FileType::from_u8(t).unwrap(),
                    mode,
                    rdev
                }
            ),
            (fh_strategy(), name()).prop_map(|(dir, name)| Request::Rmdir { dir, name }),
            (fh_strategy(), name()).prop_map(|(dir, name)| Request::Lookup { dir, name }),
            (fh_strategy(), any::<u64>(), any::<u32>())
                .prop_map(|(fh, offset, count)| Request::Read { fh, offset, count }),
            (
                fh_strategy(),
                any::<u64>(),
                0u8..3,
                proptest::collection::vec(any::<u8>(), 0..500)
            )
                .prop_map(|(fh, offset, s, data)| Request::Write {
                    fh,
                    offset,
                    stable: Stable::from_u8(s).unwrap(),
                    data
                }),
            fh_strategy().prop_map(|fh| Request::Commit { fh }),
            (fh_strategy(), name(), any::<u32>(), any::<bool>()).prop_map(
                |(dir, name, mode, exclusive)| Request::Create {
                    dir,
                    name,
                    mode,
                    exclusive
                }
            ),
            (fh_strategy(), name()).prop_map(|(dir, name)| Request::Remove { dir, name }),
            (fh_strategy(), name(), fh_strategy(), name()).prop_map(|(a, b, c, d)| {
                Request::Rename {
                    from_dir: a,
                    from_name: b,
                    to_dir: c,
                    to_name: d,
                }
            }),
            (fh_strategy(), any::<u64>(), any::<u32>()).prop_map(|(dir, cookie, max_entries)| {
                Request::ReadDir {
                    dir,
                    cookie,
                    max_entries,
                }
            }),
        ]
    }

    fn set_time() -> impl Strategy<Value = Option<SetTime>> {
        prop_oneof![
            Just(None),
            Just(Some(SetTime::Now)),
            (any::<i64>(), 0u32..1_000_000_000)
                .prop_map(|(secs, nsecs)| Some(SetTime::At(Time { secs, nsecs }))),
        ]
    }

    fn set_attrs() -> impl Strategy<Value = SetAttrs> {
        (
            any::<Option<u32>>(),
            any::<Option<u32>>(),
            any::<Option<u32>>(),
            any::<Option<u64>>(),
            set_time(),
            set_time(),
        )
            .prop_map(|(mode, uid, gid, size, atime, mtime)| SetAttrs {
                mode,
                uid,
                gid,
                size,
                atime,
                mtime,
            })
    }

    fn reply() -> impl Strategy<Value = Result<Reply, Status>> {
        prop_oneof![
            Just(Err(Status::NotEmpty)),
            Just(Err(Status::XDev)),
            any::<u32>().prop_map(|m| Ok(Reply::Access(m))),
            proptest::collection::vec(1u8.., 0..300).prop_map(|t| Ok(Reply::Target(t))),
            (any::<u32>(), any::<u32>()).prop_map(|(uid, gid)| Ok(Reply::Ident { uid, gid })),
            (any::<u32>(), any::<u64>(), any::<u64>()).prop_map(|(b, n, f)| Ok(Reply::StatFs(
                FsStat {
                    bsize: b,
                    frsize: b / 2,
                    blocks: n,
                    bfree: n / 2,
                    bavail: n / 3,
                    files: f,
                    ffree: f / 2,
                    namemax: 255
                }
            ))),
            Just(Err(Status::Stale)),
            Just(Err(Status::BadHandle)),
            (fh_strategy(), any::<u64>())
                .prop_map(|(fh, n)| Ok(Reply::Handle { fh, attr: attr(n) })),
            any::<u64>().prop_map(|n| Ok(Reply::Attr(attr(n)))),
            (
                any::<bool>(),
                proptest::collection::vec(any::<u8>(), 0..500)
            )
                .prop_map(|(eof, data)| Ok(Reply::Read { eof, data })),
            (any::<u32>(), any::<u64>()).prop_map(|(count, verf)| Ok(Reply::Write {
                count,
                committed: Stable::FileSync,
                verf
            })),
            any::<u64>().prop_map(|verf| Ok(Reply::Commit { verf })),
            Just(Ok(Reply::Done)),
            (
                proptest::collection::vec((name(), any::<u64>()), 0..10),
                any::<u64>(),
                any::<bool>()
            )
                .prop_map(|(es, cookie, eof)| Ok(Reply::ReadDir {
                    entries: es
                        .into_iter()
                        .map(|(name, fileid)| DirEntry {
                            name,
                            fileid,
                            ftype: FileType::Directory
                        })
                        .collect(),
                    cookie,
                    eof
                })),
        ]
    }

    proptest! {
        #[test]
        fn client_round_trip(xid in any::<u32>(), r in req()) {
            let m = ClientMsg::Call { xid, req: r };
            prop_assert_eq!(ClientMsg::decode(&m.encode()).unwrap(), m);
        }

        #[test]
        fn call_as_round_trip(
            xid in any::<u32>(),
            uid in any::<u32>(),
            gid in any::<u32>(),
            groups in proptest::collection::vec(any::<u32>(), 0..=MAX_GROUPS),
            r in req(),
        ) {
            let m = ClientMsg::CallAs { xid, cred: Cred { uid, gid, groups }, req: r };
            prop_assert_eq!(ClientMsg::decode(&m.encode()).unwrap(), m);
        }

        #[test]
        fn server_round_trip(xid in any::<u32>(), r in reply()) {
            let m = ServerMsg::Reply { xid, result: r };
            prop_assert_eq!(ServerMsg::decode(&m.encode()).unwrap(), m);
        }

        #[test]
        fn garbage_never_panics(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = ClientMsg::decode(&b);
            let _ = ServerMsg::decode(&b);
        }
    }

    #[test]
    fn strictness() {
        let mut m = ClientMsg::CallbackAck { cb_id: 3 }.encode();
        assert!(ClientMsg::decode(&m).is_ok());
        m.push(0);
        assert!(ClientMsg::decode(&m).is_err(), "trailing bytes");
        let mut m = ClientMsg::CallbackAck { cb_id: 3 }.encode();
        m[0] = 9;
        assert!(ClientMsg::decode(&m).is_err(), "version");
        let long = "x".repeat(MAX_NAME + 1);
        let m = ClientMsg::Call {
            xid: 1,
            req: Request::Lookup {
                dir: Fh(vec![]),
                name: long,
            },
        };
        assert!(ClientMsg::decode(&m.encode()).is_err());
        let m = ClientMsg::Call {
            xid: 1,
            req: Request::Symlink {
                dir: Fh(vec![]),
                name: "l".into(),
                target: vec![b'a'; MAX_TARGET + 1],
            },
        };
        assert!(ClientMsg::decode(&m.encode()).is_err(), "target too long");
        let m = ClientMsg::CallAs {
            xid: 1,
            cred: Cred {
                uid: 1,
                gid: 1,
                groups: vec![7; MAX_GROUPS + 1],
            },
            req: Request::WhoAmI,
        };
        assert!(ClientMsg::decode(&m.encode()).is_err(), "too many groups");
        let m = ClientMsg::Call {
            xid: 1,
            req: Request::Mknod {
                dir: Fh(vec![]),
                name: "f".into(),
                ftype: FileType::Regular,
                mode: 0o644,
                rdev: 0,
            },
        };
        assert!(ClientMsg::decode(&m.encode()).is_err(), "MKNOD of a file");
        for k in [
            ServerMsg::AuthOk {
                lease_ms: 5,
                server_id: 77,
            },
            ServerMsg::Invalidate {
                cb_id: 1,
                fileid: 2,
            },
        ] {
            assert_eq!(ServerMsg::decode(&k.encode()).unwrap(), k);
        }
    }

    #[test]
    fn statuses_round_trip_and_map_to_their_errno() {
        for v in 0..20_000u32 {
            if let Ok(s) = Status::from_u32(v) {
                assert_eq!(s as u32, v);
                let back = Status::from_io(&std::io::Error::from_raw_os_error(s.errno()));
                match s {
                    // Both become ESTALE, which maps back to Stale.
                    Status::BadHandle => assert_eq!(back, Status::Stale),
                    _ => assert_eq!(back, s, "{s:?} -> errno {} -> {back:?}", s.errno()),
                }
            }
        }
        assert_eq!(Status::NotEmpty.errno(), libc::ENOTEMPTY);
        assert_eq!(Status::Access.errno(), libc::EACCES);
    }

    #[test]
    fn read_reply_frame_matches_encoding() {
        let f = read_reply_frame(42, 10, |b, budget| {
            assert_eq!(budget, 10);
            b.extend_from_slice(b"abcd");
            Ok(true)
        });
        let m = ServerMsg::decode(&f[LEN_BYTES..]).unwrap();
        assert_eq!(
            m,
            ServerMsg::Reply {
                xid: 42,
                result: Ok(Reply::Read {
                    eof: true,
                    data: b"abcd".to_vec()
                })
            }
        );
        let f = read_reply_frame(7, 10, |_, _| Err(Status::Stale));
        assert_eq!(
            ServerMsg::decode(&f[LEN_BYTES..]).unwrap(),
            ServerMsg::Reply {
                xid: 7,
                result: Err(Status::Stale)
            }
        );
    }
}
