//! Export operations, confined to the export directory.
//!
//! Invariants:
//! 1. Every path is resolved with `openat` one component at a time from the export
//!    root's descriptor, with `O_NOFOLLOW`: no symlink is ever followed (a symlink can be
//!    looked up, stat'ed, read with READLINK and created with SYMLINK, never opened or
//!    traversed), and names are single components ([`check_name`]), so nothing outside
//!    the export is reachable, whatever a link in it points to.
//! 2. A handle resolves only if its path still leads to the same (`dev`, `ino`); else
//!    [`Status::Stale`].
//! 3. Durability: a WRITE with `DataSync` is `fdatasync`ed and with `FileSync` is
//!    `fsync`ed before the reply; COMMIT `fsync`s. Every operation that changes a
//!    directory (CREATE, MKDIR, SYMLINK, LINK, REMOVE, RMDIR, RENAME) `fsync`s it. The
//!    write verifier is random per server start.
//! 4. [`Export`] is owned by color 0 (the serial part of the server): `&mut self`.
//!    Open regular files are cached by (`dev`, `ino`); REMOVE, RMDIR and RENAME evict.
//! 5. Every operation is checked for the identity it acts as ([`crate::perm`]); new
//!    files, directories and links belong to that identity when the server runs as root
//!    (group from a set-group-id directory), and get exactly the mode asked for (the
//!    server's umask does not apply: the client applied its own).
//!
//! The namespace operations live in `namespace`, the system calls in `sys`.

// `stat` field widths differ between targets; the casts are for portability.
#![allow(clippy::unnecessary_cast)]

mod namespace;
pub mod sys;

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use rand::RngCore;

use sfs_proto::fh::{check_name, FhKey, HandleData};
use sfs_proto::messages::{
    Attr, Fh, FileType, FsStat, Reply, SetAttrs, SetTime, Stable, Status, Time, ACCESS_EXEC,
    ACCESS_READ, ACCESS_WRITE, MAX_IO,
};
use sys::{fstat, fstatat_nofollow, openat};

use crate::perm::{self, Ident, Owner};

/// Most open regular files kept cached.
const FILE_CACHE_MAX: usize = 256;

/// Result of an export operation.
pub type FsResult<T> = Result<T, Status>;

/// The exported directory tree.
pub struct Export {
    /// Descriptor of the export root; every resolution starts here.
    root: OwnedFd,
    /// Identity of the root.
    root_id: (u64, u64),
    /// Key sealing file handles.
    key: FhKey,
    /// Random per start: clients compare it to detect a restart between WRITE and COMMIT.
    verf: u64,
    /// Open regular files by (dev, ino).
    files: HashMap<(u64, u64), Arc<File>>,
    /// uid -> user name (from the key table) for `Attr::owner`.
    owners: HashMap<u32, String>,
}

fn io_err(e: io::Error) -> Status {
    Status::from_io(&e)
}

fn ftype(mode: u32) -> FileType {
    match mode & libc::S_IFMT {
        libc::S_IFREG => FileType::Regular,
        libc::S_IFDIR => FileType::Directory,
        libc::S_IFLNK => FileType::Symlink,
        libc::S_IFIFO => FileType::Fifo,
        libc::S_IFSOCK => FileType::Socket,
        libc::S_IFCHR => FileType::CharDev,
        libc::S_IFBLK => FileType::BlockDev,
        _ => FileType::Other,
    }
}

fn fsync_fd(fd: &OwnedFd) -> FsResult<()> {
    sys::fsync(fd.as_raw_fd()).map_err(io_err)
}

/// A resolved object: its parent directory (None for the root) and its stat.
struct Resolved {
    parent: Option<OwnedFd>,
    name: String,
    st: libc::stat,
}

impl Export {
    /// Open the export at `dir`.
    pub fn open(dir: &Path, owners: HashMap<u32, String>) -> anyhow::Result<Export> {
        let d = std::fs::File::open(dir)
            .map_err(|e| anyhow::anyhow!("opening export {}: {e}", dir.display()))?;
        let root: OwnedFd = d.into();
        let st = fstat(root.as_raw_fd())?;
        if ftype(st.st_mode) != FileType::Directory {
            anyhow::bail!("export {} is not a directory", dir.display());
        }
        let mut v = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut v);
        Ok(Export {
            root,
            root_id: (st.st_dev as u64, st.st_ino as u64),
            key: FhKey::random(),
            verf: u64::from_ne_bytes(v),
            files: HashMap::new(),
            owners,
        })
    }

    /// The write verifier.
    pub fn verifier(&self) -> u64 {
        self.verf
    }

    /// Verify a handle (MAC and path shape) without touching the file system.
    pub fn decode(&self, fh: &Fh) -> FsResult<HandleData> {
        self.key.open(fh)
    }

    fn attr(&self, st: &libc::stat) -> Attr {
        Attr {
            ftype: ftype(st.st_mode),
            mode: st.st_mode & 0o7777,
            nlink: st.st_nlink as u32,
            uid: st.st_uid,
            gid: st.st_gid,
            owner: self.owners.get(&st.st_uid).cloned().unwrap_or_default(),
            size: st.st_size as u64,
            fileid: st.st_ino as u64,
            atime: Time {
                secs: st.st_atime,
                nsecs: st.st_atime_nsec as u32,
            },
            mtime: Time {
                secs: st.st_mtime,
                nsecs: st.st_mtime_nsec as u32,
            },
            ctime: Time {
                secs: st.st_ctime,
                nsecs: st.st_ctime_nsec as u32,
            },
            rdev: match ftype(st.st_mode) {
                FileType::CharDev | FileType::BlockDev => st.st_rdev as u64,
                _ => 0,
            },
        }
    }

    /// Open the directory at `path` (components), never following symlinks.
    fn walk_dir<'a>(&self, comps: impl Iterator<Item = &'a str>) -> FsResult<OwnedFd> {
        let mut cur = self.root.try_clone().map_err(io_err)?;
        for c in comps {
            check_name(c).map_err(|_| Status::BadHandle)?;
            cur = openat(
                cur.as_raw_fd(),
                c,
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                0,
            )
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) | Some(libc::ENOTDIR) | Some(libc::ENOENT) => Status::Stale,
                _ => io_err(e),
            })?;
        }
        Ok(cur)
    }

    fn resolve(&self, h: &HandleData) -> FsResult<Resolved> {
        let comps: Vec<&str> = h.components().collect();
        let (res_parent, name, st) = match comps.split_last() {
            None => {
                let st = fstat(self.root.as_raw_fd()).map_err(io_err)?;
                (None, String::new(), st)
            }
            Some((last, dirs)) => {
                let p = self.walk_dir(dirs.iter().copied())?;
                let st =
                    fstatat_nofollow(p.as_raw_fd(), last).map_err(|e| match e.raw_os_error() {
                        Some(libc::ENOENT) => Status::Stale,
                        _ => io_err(e),
                    })?;
                (Some(p), last.to_string(), st)
            }
        };
        if (st.st_dev as u64, st.st_ino as u64) != (h.dev, h.ino) {
            return Err(Status::Stale);
        }
        Ok(Resolved {
            parent: res_parent,
            name,
            st,
        })
    }

    /// Resolve a handle that must be a directory, returning its descriptor.
    fn resolve_dir(&self, h: &HandleData) -> FsResult<(OwnedFd, libc::stat)> {
        let r = self.resolve(h)?;
        if ftype(r.st.st_mode) != FileType::Directory {
            return Err(Status::NotDir);
        }
        let fd = match &r.parent {
            None => self.root.try_clone().map_err(io_err)?,
            Some(p) => openat(
                p.as_raw_fd(),
                &r.name,
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                0,
            )
            .map_err(io_err)?,
        };
        let st = fstat(fd.as_raw_fd()).map_err(io_err)?;
        if (st.st_dev as u64, st.st_ino as u64) != (h.dev, h.ino) {
            return Err(Status::Stale);
        }
        Ok((fd, st))
    }

    /// The open regular file a handle names (cached).
    fn file(&mut self, h: &HandleData) -> FsResult<Arc<File>> {
        if let Some(f) = self.files.get(&(h.dev, h.ino)) {
            return Ok(f.clone());
        }
        let r = self.resolve(h)?;
        match ftype(r.st.st_mode) {
            FileType::Regular => {}
            FileType::Directory => return Err(Status::IsDir),
            _ => return Err(Status::NotSupp),
        }
        let parent = r.parent.as_ref().ok_or(Status::IsDir)?;
        let fd = openat(
            parent.as_raw_fd(),
            &r.name,
            libc::O_RDWR | libc::O_NOFOLLOW,
            0,
        )
        .or_else(|_| {
            openat(
                parent.as_raw_fd(),
                &r.name,
                libc::O_RDONLY | libc::O_NOFOLLOW,
                0,
            )
        })
        .map_err(io_err)?;
        let st = fstat(fd.as_raw_fd()).map_err(io_err)?;
        if (st.st_dev as u64, st.st_ino as u64) != (h.dev, h.ino) {
            return Err(Status::Stale);
        }
        if self.files.len() >= FILE_CACHE_MAX {
            self.files.clear();
        }
        let f = Arc::new(File::from(fd));
        self.files.insert((h.dev, h.ino), f.clone());
        Ok(f)
    }

    /// ROOT: the export root's handle.
    pub fn root(&self) -> FsResult<Reply> {
        let st = fstat(self.root.as_raw_fd()).map_err(io_err)?;
        let h = HandleData {
            dev: self.root_id.0,
            ino: self.root_id.1,
            path: String::new(),
        };
        Ok(Reply::Handle {
            fh: self.key.seal(&h),
            attr: self.attr(&st),
        })
    }

    /// GETATTR.
    pub fn getattr(&mut self, h: &HandleData) -> FsResult<Attr> {
        if let Some(f) = self.files.get(&(h.dev, h.ino)) {
            let st = fstat(f.as_raw_fd()).map_err(io_err)?;
            if st.st_nlink > 0 {
                return Ok(self.attr(&st));
            }
        }
        let r = self.resolve(h)?;
        Ok(self.attr(&r.st))
    }

    /// ACCESS: the bits of `mask` that `who` holds.
    pub fn access(&mut self, who: Ident, h: &HandleData, mask: u32) -> FsResult<u32> {
        let r = self.resolve(h)?;
        Ok(perm::granted(Owner::of(&r.st), who, mask))
    }

    /// SETATTR, checked for `who` (see [`perm::check_setattr`]).
    pub fn setattr(&mut self, who: Ident, h: &HandleData, a: &SetAttrs) -> FsResult<Attr> {
        let r = self.resolve(h)?;
        let mode = perm::check_setattr(Owner::of(&r.st), who, a)?;
        let utime = |t: Option<SetTime>| {
            t.map(|t| match t {
                SetTime::Now => None,
                SetTime::At(t) => Some(t),
            })
        };
        let (atime, mtime) = (utime(a.atime), utime(a.mtime));
        let chown = (a.uid.unwrap_or(u32::MAX), a.gid.unwrap_or(u32::MAX));
        let ft = ftype(r.st.st_mode);
        if ft == FileType::Symlink {
            // A link has no mode or size of its own; owner and times are set on the
            // link itself, never on what it names.
            if mode.is_some() || a.size.is_some() {
                return Err(Status::NotSupp);
            }
            let p = r.parent.as_ref().ok_or(Status::Inval)?.as_raw_fd();
            if a.uid.is_some() || a.gid.is_some() {
                sys::lchownat(p, &r.name, chown.0, chown.1).map_err(io_err)?;
            }
            if atime.is_some() || mtime.is_some() {
                sys::lutimensat(p, &r.name, atime, mtime).map_err(io_err)?;
            }
            let st = fstatat_nofollow(p, &r.name).map_err(io_err)?;
            return Ok(self.attr(&st));
        }
        if ft != FileType::Regular && ft != FileType::Directory {
            return self.setattr_special(&r, h, mode, chown, a, (atime, mtime));
        }
        let fd: Arc<File> = match ft {
            FileType::Regular => self.file(h)?,
            _ => Arc::new(File::from(self.resolve_dir(h)?.0)),
        };
        let raw = fd.as_raw_fd();
        if a.uid.is_some() || a.gid.is_some() {
            sys::fchown(raw, chown.0, chown.1).map_err(io_err)?;
        }
        if let Some(m) = mode {
            sys::fchmod(raw, m).map_err(io_err)?;
        }
        if let Some(s) = a.size {
            if ft != FileType::Regular {
                return Err(Status::IsDir);
            }
            fd.set_len(s).map_err(io_err)?;
        }
        if atime.is_some() || mtime.is_some() {
            sys::futimens(raw, atime, mtime).map_err(io_err)?;
        }
        let st = fstat(raw).map_err(io_err)?;
        Ok(self.attr(&st))
    }

    /// SETATTR of a FIFO, socket or device, which is never opened: owner and times by
    /// name (not following), the mode through an `O_PATH` descriptor checked to be the
    /// handle's file.
    fn setattr_special(
        &mut self,
        r: &Resolved,
        h: &HandleData,
        mode: Option<u32>,
        chown: (u32, u32),
        a: &SetAttrs,
        (atime, mtime): (sys::UTime, sys::UTime),
    ) -> FsResult<Attr> {
        if a.size.is_some() {
            return Err(Status::Inval);
        }
        let p = r.parent.as_ref().ok_or(Status::Inval)?.as_raw_fd();
        if a.uid.is_some() || a.gid.is_some() {
            sys::lchownat(p, &r.name, chown.0, chown.1).map_err(io_err)?;
        }
        if let Some(m) = mode {
            let fd = openat(p, &r.name, libc::O_PATH | libc::O_NOFOLLOW, 0).map_err(io_err)?;
            let st = fstat(fd.as_raw_fd()).map_err(io_err)?;
            if (st.st_dev as u64, st.st_ino as u64) != (h.dev, h.ino) {
                return Err(Status::Stale);
            }
            sys::chmod_fd(fd.as_raw_fd(), m).map_err(io_err)?;
        }
        if atime.is_some() || mtime.is_some() {
            sys::lutimensat(p, &r.name, atime, mtime).map_err(io_err)?;
        }
        let st = fstatat_nofollow(p, &r.name).map_err(io_err)?;
        Ok(self.attr(&st))
    }

    /// LOOKUP: needs search permission on the directory.
    pub fn lookup(&mut self, who: Ident, dir: &HandleData, name: &str) -> FsResult<Reply> {
        check_name(name)?;
        let (dfd, dst) = self.resolve_dir(dir)?;
        perm::check(Owner::of(&dst), who, ACCESS_EXEC)?;
        let st = fstatat_nofollow(dfd.as_raw_fd(), name).map_err(io_err)?;
        self.handle_reply(dir, name, &st)
    }

    /// The handle reply for `name` in `dir`, whose stat is `st`.
    fn handle_reply(&self, dir: &HandleData, name: &str, st: &libc::stat) -> FsResult<Reply> {
        let h = HandleData {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            path: dir.child_path(name),
        };
        if h.path.len() > sfs_proto::fh::MAX_PATH {
            return Err(Status::NameTooLong);
        }
        Ok(Reply::Handle {
            fh: self.key.seal(&h),
            attr: self.attr(st),
        })
    }

    /// READLINK: the stored target, never resolved.
    pub fn readlink(&mut self, h: &HandleData) -> FsResult<Vec<u8>> {
        let r = self.resolve(h)?;
        if ftype(r.st.st_mode) != FileType::Symlink {
            return Err(Status::Inval);
        }
        let p = r.parent.as_ref().ok_or(Status::Inval)?;
        sys::readlinkat(p.as_raw_fd(), &r.name).map_err(io_err)
    }

    /// READ or WRITE permission of `who` on an open file (root needs no `fstat`).
    fn check_io(&self, who: Ident, f: &File, mask: u32) -> FsResult<()> {
        if who.is_root() {
            return Ok(());
        }
        let st = fstat(f.as_raw_fd()).map_err(io_err)?;
        perm::check_io(Owner::of(&st), who, mask)
    }

    /// READ into `buf` (at most [`MAX_IO`] bytes): `(bytes, eof)`.
    pub fn read(
        &mut self,
        who: Ident,
        h: &HandleData,
        offset: u64,
        buf: &mut [u8],
    ) -> FsResult<(usize, bool)> {
        let f = self.file(h)?;
        self.check_io(who, &f, ACCESS_READ)?;
        let want = buf.len().min(MAX_IO);
        let mut n = 0;
        while n < want {
            match f.read_at(&mut buf[n..want], offset + n as u64) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err(e)),
            }
        }
        let eof = if n < want {
            true
        } else {
            let st = fstat(f.as_raw_fd()).map_err(io_err)?;
            offset + n as u64 >= st.st_size as u64
        };
        Ok((n, eof))
    }

    /// READ appending at most `count` (capped at [`MAX_IO`]) bytes to `out` without
    /// zero-filling first: the hot path of the benchmark. Returns `eof`.
    pub fn read_append(
        &mut self,
        who: Ident,
        h: &HandleData,
        offset: u64,
        count: usize,
        out: &mut Vec<u8>,
    ) -> FsResult<bool> {
        let f = self.file(h)?;
        self.check_io(who, &f, ACCESS_READ)?;
        let want = count.min(MAX_IO);
        out.reserve(want);
        let mut n = 0usize;
        while n < want {
            let spare = &mut out.spare_capacity_mut()[..want - n];
            let off = offset.checked_add(n as u64).ok_or(Status::Inval)?;
            // SAFETY: `spare` is writable memory of `want - n` bytes owned by `out`;
            // pread writes at most that many bytes into it and reports how many.
            let k = unsafe {
                libc::pread(
                    f.as_raw_fd(),
                    spare.as_mut_ptr().cast(),
                    spare.len(),
                    off as libc::off_t,
                )
            };
            if k < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(io_err(e));
            }
            if k == 0 {
                break;
            }
            // SAFETY: pread initialised the first `k` bytes of the spare capacity.
            unsafe { out.set_len(out.len() + k as usize) };
            n += k as usize;
        }
        Ok(if n < want {
            true
        } else {
            let st = fstat(f.as_raw_fd()).map_err(io_err)?;
            offset + n as u64 >= st.st_size as u64
        })
    }

    /// WRITE: `(count, committed)`; stable writes are on disk before this returns.
    pub fn write(
        &mut self,
        who: Ident,
        h: &HandleData,
        offset: u64,
        stable: Stable,
        data: &[u8],
    ) -> FsResult<(u32, Stable)> {
        let (n, f) = self.write_nosync(who, h, offset, data)?;
        match stable {
            Stable::Unstable => {}
            Stable::DataSync => f.sync_data().map_err(io_err)?,
            Stable::FileSync => f.sync_all().map_err(io_err)?,
        }
        Ok((n, stable))
    }

    /// WRITE without syncing: `(count, file)`; the caller makes it durable (the server
    /// fsyncs on the blocking pool before it replies to a stable WRITE).
    pub fn write_nosync(
        &mut self,
        who: Ident,
        h: &HandleData,
        offset: u64,
        data: &[u8],
    ) -> FsResult<(u32, Arc<File>)> {
        if data.len() > MAX_IO {
            return Err(Status::Inval);
        }
        offset.checked_add(data.len() as u64).ok_or(Status::FBig)?;
        let f = self.file(h)?;
        if !who.is_root() {
            let st = fstat(f.as_raw_fd()).map_err(io_err)?;
            perm::check_io(Owner::of(&st), who, ACCESS_WRITE)?;
            if let Some(m) = perm::mode_after_write(st.st_mode, who) {
                sys::fchmod(f.as_raw_fd(), m).map_err(io_err)?;
            }
        }
        f.write_all_at(data, offset).map_err(io_err)?;
        Ok((data.len() as u32, f))
    }

    /// The open regular file a handle names (for a COMMIT's fsync off color 0).
    pub fn open_file(&mut self, h: &HandleData) -> FsResult<Arc<File>> {
        self.file(h)
    }

    /// COMMIT: everything written to the file is on disk.
    pub fn commit(&mut self, h: &HandleData) -> FsResult<u64> {
        let f = self.file(h)?;
        f.sync_all().map_err(io_err)?;
        Ok(self.verf)
    }

    /// STATFS of the file system holding the export.
    pub fn statfs(&self) -> FsResult<FsStat> {
        let v = sys::fstatvfs(self.root.as_raw_fd()).map_err(io_err)?;
        Ok(FsStat {
            bsize: v.f_bsize as u32,
            frsize: v.f_frsize as u32,
            blocks: v.f_blocks as u64,
            bfree: v.f_bfree as u64,
            bavail: v.f_bavail as u64,
            files: v.f_files as u64,
            ffree: v.f_ffree as u64,
            namemax: (v.f_namemax as u32).min(sfs_proto::messages::MAX_NAME as u32),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Export, HandleData) {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("exp")).unwrap();
        let e = Export::open(&d.path().join("exp"), HashMap::new()).unwrap();
        let Reply::Handle { fh, .. } = e.root().unwrap() else {
            panic!()
        };
        let root = e.decode(&fh).unwrap();
        (d, e, root)
    }

    fn handle(r: Reply, e: &Export) -> HandleData {
        match r {
            Reply::Handle { fh, .. } => e.decode(&fh).unwrap(),
            _ => panic!("not a handle"),
        }
    }

    #[test]
    fn create_write_read_rename_remove() {
        let (_d, mut e, root) = setup();
        let f = handle(e.create(Ident::ROOT, &root, "a", 0o644, true).unwrap(), &e);
        assert_eq!(
            e.create(Ident::ROOT, &root, "a", 0o644, true),
            Err(Status::Exist)
        );
        e.write(Ident::ROOT, &f, 0, Stable::FileSync, b"hello world")
            .unwrap();
        let mut buf = vec![0; 100];
        let (n, eof) = e.read(Ident::ROOT, &f, 6, &mut buf).unwrap();
        assert_eq!((&buf[..n], eof), (&b"world"[..], true));
        let mut v = b"head".to_vec();
        assert!(!e.read_append(Ident::ROOT, &f, 0, 5, &mut v).unwrap());
        assert!(e.read_append(Ident::ROOT, &f, 6, 100, &mut v).unwrap());
        assert_eq!(v, b"headhelloworld");
        assert_eq!(e.getattr(&f).unwrap().size, 11);
        let a = e
            .setattr(
                Ident::ROOT,
                &f,
                &SetAttrs {
                    mode: Some(0o600),
                    size: Some(5),
                    ..SetAttrs::default()
                },
            )
            .unwrap();
        assert_eq!((a.size, a.mode), (5, 0o600));
        let (moved, replaced) = e.rename(Ident::ROOT, &root, "a", &root, "b").unwrap();
        assert_eq!((moved, replaced), (f.ino, None));
        assert_eq!(e.getattr(&f), Err(Status::Stale), "old path is stale");
        let b = handle(e.lookup(Ident::ROOT, &root, "b").unwrap(), &e);
        assert_eq!(b.ino, f.ino);
        let Reply::ReadDir { entries, eof, .. } = e.readdir(Ident::ROOT, &root, 0, 10).unwrap()
        else {
            panic!()
        };
        assert!(eof);
        assert_eq!(
            entries.iter().map(|x| x.name.as_str()).collect::<Vec<_>>(),
            vec!["b"]
        );
        assert_eq!(e.remove(Ident::ROOT, &root, "b").unwrap(), f.ino);
        assert_eq!(e.lookup(Ident::ROOT, &root, "b"), Err(Status::NoEnt));
    }

    #[test]
    fn no_escape() {
        let (d, mut e, root) = setup();
        std::fs::write(d.path().join("secret"), b"outside").unwrap();
        std::os::unix::fs::symlink("../secret", d.path().join("exp/link")).unwrap();
        std::os::unix::fs::symlink("..", d.path().join("exp/up")).unwrap();
        for bad in ["..", ".", "a/b", ""] {
            assert!(e.lookup(Ident::ROOT, &root, bad).is_err(), "{bad}");
            assert!(
                e.create(Ident::ROOT, &root, bad, 0o644, false).is_err(),
                "{bad}"
            );
        }
        // The symlink can be looked up but never followed.
        let l = handle(e.lookup(Ident::ROOT, &root, "link").unwrap(), &e);
        assert_eq!(e.getattr(&l).unwrap().ftype, FileType::Symlink);
        let mut buf = [0u8; 16];
        assert_eq!(e.read(Ident::ROOT, &l, 0, &mut buf), Err(Status::NotSupp));
        assert_eq!(
            e.write(Ident::ROOT, &l, 0, Stable::FileSync, b"x"),
            Err(Status::NotSupp)
        );
        let up = handle(e.lookup(Ident::ROOT, &root, "up").unwrap(), &e);
        assert_eq!(e.lookup(Ident::ROOT, &up, "secret"), Err(Status::NotDir));
        assert_eq!(
            e.create(Ident::ROOT, &root, "link", 0o644, false),
            Err(Status::NotSupp)
        );
        assert_eq!(std::fs::read(d.path().join("secret")).unwrap(), b"outside");
    }

    const CAROL: Ident = Ident::new(4242, 4242);

    #[test]
    fn directories_symlinks_and_hard_links() {
        let (d, mut e, root) = setup();
        let sub = handle(e.mkdir(Ident::ROOT, &root, "sub", 0o750).unwrap(), &e);
        let st = std::fs::metadata(d.path().join("exp/sub")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            st.permissions().mode() & 0o7777,
            0o750,
            "exact mode, no umask"
        );
        assert_eq!(
            e.mkdir(Ident::ROOT, &root, "sub", 0o750),
            Err(Status::Exist)
        );
        let f = handle(e.create(Ident::ROOT, &sub, "f", 0o600, true).unwrap(), &e);
        assert_eq!(e.rmdir(Ident::ROOT, &root, "sub"), Err(Status::NotEmpty));
        assert_eq!(e.rmdir(Ident::ROOT, &sub, "f"), Err(Status::NotDir));
        assert_eq!(e.remove(Ident::ROOT, &root, "sub"), Err(Status::IsDir));
        // A hard link: same file id, two links.
        let Reply::Handle { attr, .. } = e.link(Ident::ROOT, &f, &root, "hard").unwrap() else {
            panic!()
        };
        assert_eq!((attr.fileid, attr.nlink), (f.ino, 2));
        assert_eq!(
            e.link(Ident::ROOT, &sub, &root, "dirlink"),
            Err(Status::Perm)
        );
        // Symlinks are stored as given and read back, never resolved.
        let l = handle(
            e.symlink(Ident::ROOT, &root, "l", b"../../etc/passwd")
                .unwrap(),
            &e,
        );
        assert_eq!(e.readlink(&l).unwrap(), b"../../etc/passwd");
        assert_eq!(e.readlink(&f), Err(Status::Inval), "not a link");
        assert_eq!(
            e.symlink(Ident::ROOT, &root, "empty", b""),
            Err(Status::NoEnt)
        );
        assert_eq!(
            std::fs::read_link(d.path().join("exp/l")).unwrap(),
            std::path::Path::new("../../etc/passwd")
        );
        e.remove(Ident::ROOT, &sub, "f").unwrap();
        assert_eq!(e.rmdir(Ident::ROOT, &root, "sub").unwrap(), sub.ino);
        let fs = e.statfs().unwrap();
        assert!(fs.blocks > 0 && fs.bsize > 0 && fs.namemax > 0, "{fs:?}");
    }

    #[test]
    fn setattr_times_owner_and_symlinks() {
        let (_d, mut e, root) = setup();
        let f = handle(e.create(Ident::ROOT, &root, "f", 0o644, true).unwrap(), &e);
        let t = Time {
            secs: 1_000_000_000,
            nsecs: 5,
        };
        let a = e
            .setattr(
                Ident::ROOT,
                &f,
                &SetAttrs {
                    atime: Some(SetTime::At(t)),
                    mtime: Some(SetTime::At(t)),
                    ..SetAttrs::default()
                },
            )
            .unwrap();
        assert_eq!((a.atime, a.mtime), (t, t));
        let l = handle(e.symlink(Ident::ROOT, &root, "l", b"f").unwrap(), &e);
        let chmod = SetAttrs {
            mode: Some(0o600),
            ..SetAttrs::default()
        };
        assert_eq!(e.setattr(Ident::ROOT, &l, &chmod), Err(Status::NotSupp));
        let a = e
            .setattr(
                Ident::ROOT,
                &l,
                &SetAttrs {
                    mtime: Some(SetTime::At(t)),
                    ..SetAttrs::default()
                },
            )
            .unwrap();
        assert_eq!(a.mtime, t, "the link's own time");
        assert_ne!(e.getattr(&f).unwrap().mode, 0o600);
        if sys::privileged() {
            let a = e
                .setattr(
                    Ident::ROOT,
                    &f,
                    &SetAttrs {
                        uid: Some(CAROL.uid),
                        gid: Some(CAROL.gid),
                        ..SetAttrs::default()
                    },
                )
                .unwrap();
            assert_eq!((a.uid, a.gid), (CAROL.uid, CAROL.gid));
        }
    }

    #[test]
    fn every_operation_is_checked_for_the_caller() {
        let (d, mut e, root) = setup();
        use std::os::unix::fs::PermissionsExt;
        let exp = d.path().join("exp");
        std::fs::set_permissions(&exp, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(exp.join("secret"), b"s").unwrap();
        std::fs::set_permissions(exp.join("secret"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        let secret = handle(e.lookup(CAROL, &root, "secret").unwrap(), &e);
        let mut buf = [0u8; 4];
        assert_eq!(e.read(CAROL, &secret, 0, &mut buf), Err(Status::Access));
        assert_eq!(
            e.write(CAROL, &secret, 0, Stable::Unstable, b"x"),
            Err(Status::Access)
        );
        assert_eq!(e.access(CAROL, &secret, 7).unwrap(), 0);
        assert_eq!(e.access(Ident::ROOT, &secret, 7).unwrap(), 6);
        for r in [
            e.create(CAROL, &root, "new", 0o644, true).map(|_| ()),
            e.mkdir(CAROL, &root, "dir", 0o755).map(|_| ()),
            e.symlink(CAROL, &root, "sl", b"x").map(|_| ()),
            e.link(CAROL, &secret, &root, "hl").map(|_| ()),
            e.remove(CAROL, &root, "secret").map(|_| ()),
            e.rename(CAROL, &root, "secret", &root, "moved").map(|_| ()),
        ] {
            assert_eq!(
                r,
                Err(Status::Access),
                "no write permission on the directory"
            );
        }
        let chmod = SetAttrs {
            mode: Some(0o666),
            ..SetAttrs::default()
        };
        assert_eq!(e.setattr(CAROL, &secret, &chmod), Err(Status::Perm));
        std::fs::set_permissions(&exp, std::fs::Permissions::from_mode(0o700)).unwrap();
        if !sys::privileged() {
            return;
        }
        // Root-run servers give new files to the caller.
        std::fs::set_permissions(&exp, std::fs::Permissions::from_mode(0o777)).unwrap();
        let Reply::Handle { attr, .. } = e.create(CAROL, &root, "mine", 0o640, true).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (attr.uid, attr.gid, attr.mode),
            (CAROL.uid, CAROL.gid, 0o640)
        );
        let mine = handle(e.lookup(CAROL, &root, "mine").unwrap(), &e);
        let ro = SetAttrs {
            mode: Some(0o400),
            ..SetAttrs::default()
        };
        e.setattr(CAROL, &mine, &ro).unwrap();
        assert!(
            e.write(CAROL, &mine, 0, Stable::Unstable, b"ok").is_ok(),
            "the owner writes a read-only file it holds open"
        );
        assert_eq!(
            e.readdir(CAROL, &root, 0, 10).map(|_| ()),
            Ok(()),
            "0777 directory is readable"
        );
    }
}
