//! Export operations, confined to the export directory.
//!
//! Invariants:
//! 1. Every path is resolved with `openat` one component at a time from the export
//!    root's descriptor, with `O_NOFOLLOW`: no symlink is ever followed (a symlink can be
//!    looked up and stat'ed, never opened), and names are single components
//!    ([`check_name`]), so nothing outside the export is reachable.
//! 2. A handle resolves only if its path still leads to the same (`dev`, `ino`); else
//!    [`Status::Stale`].
//! 3. Durability: a WRITE with `DataSync` is `fdatasync`ed and with `FileSync` is
//!    `fsync`ed before the reply; COMMIT `fsync`s. CREATE, REMOVE and RENAME `fsync`
//!    the directories they change. The write verifier is random per server start.
//! 4. [`Export`] is owned by color 0 (the serial part of the server): `&mut self`.
//!    Open regular files are cached by (`dev`, `ino`); REMOVE and RENAME evict.

// `stat` field widths differ between targets; the casts are for portability.
#![allow(clippy::unnecessary_cast)]

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use rand::RngCore;

use crate::fh::{check_name, FhKey, HandleData};
use crate::proto::{
    Attr, DirEntry, Fh, FileType, Reply, Stable, Status, Time, MAX_DIR_ENTRIES, MAX_IO,
};

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

fn cstr(name: &str) -> FsResult<CString> {
    CString::new(name).map_err(|_| Status::Inval)
}

fn openat(dir: RawFd, name: &str, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    let c = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call; `dir` is a
    // descriptor we own (or AT_FDCWD semantics are not used).
    let fd = unsafe {
        libc::openat(
            dir,
            c.as_ptr(),
            flags | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by openat and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: `st` is plain old data; fstat fills it or fails.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid, writable stat buffer.
    if unsafe { libc::fstat(fd, &mut st) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

fn fstatat_nofollow(dir: RawFd, name: &str) -> io::Result<libc::stat> {
    let c = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: plain old data, filled by fstatat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid string and buffer; AT_SYMLINK_NOFOLLOW stats a symlink itself.
    if unsafe { libc::fstatat(dir, c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

fn io_err(e: io::Error) -> Status {
    Status::from_io(&e)
}

fn ftype(mode: u32) -> FileType {
    match mode & libc::S_IFMT {
        libc::S_IFREG => FileType::Regular,
        libc::S_IFDIR => FileType::Directory,
        libc::S_IFLNK => FileType::Symlink,
        _ => FileType::Other,
    }
}

fn fsync_fd(fd: RawFd) -> FsResult<()> {
    // SAFETY: fsync on a descriptor we own.
    if unsafe { libc::fsync(fd) } < 0 {
        return Err(io_err(io::Error::last_os_error()));
    }
    Ok(())
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

    /// SETATTR.
    pub fn setattr(
        &mut self,
        h: &HandleData,
        mode: Option<u32>,
        size: Option<u64>,
        mtime: Option<Time>,
    ) -> FsResult<Attr> {
        let r = self.resolve(h)?;
        let ft = ftype(r.st.st_mode);
        let fd: Arc<File> = match ft {
            FileType::Regular => self.file(h)?,
            FileType::Directory => Arc::new(File::from(self.resolve_dir(h)?.0)),
            _ => return Err(Status::NotSupp),
        };
        let raw = fd.as_raw_fd();
        if let Some(m) = mode {
            // SAFETY: fchmod on a descriptor we own.
            if unsafe { libc::fchmod(raw, (m & 0o7777) as libc::mode_t) } < 0 {
                return Err(io_err(io::Error::last_os_error()));
            }
        }
        if let Some(s) = size {
            if ft != FileType::Regular {
                return Err(Status::IsDir);
            }
            fd.set_len(s).map_err(io_err)?;
        }
        if let Some(t) = mtime {
            let ts = [
                libc::timespec {
                    tv_sec: 0,
                    tv_nsec: libc::UTIME_OMIT,
                },
                libc::timespec {
                    tv_sec: t.secs,
                    tv_nsec: t.nsecs as _,
                },
            ];
            // SAFETY: `ts` is a valid two-element array for futimens.
            if unsafe { libc::futimens(raw, ts.as_ptr()) } < 0 {
                return Err(io_err(io::Error::last_os_error()));
            }
        }
        let st = fstat(raw).map_err(io_err)?;
        Ok(self.attr(&st))
    }

    /// LOOKUP.
    pub fn lookup(&mut self, dir: &HandleData, name: &str) -> FsResult<Reply> {
        check_name(name)?;
        let (dfd, _) = self.resolve_dir(dir)?;
        let st = fstatat_nofollow(dfd.as_raw_fd(), name).map_err(io_err)?;
        let h = HandleData {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            path: dir.child_path(name),
        };
        if h.path.len() > crate::fh::MAX_PATH {
            return Err(Status::NameTooLong);
        }
        Ok(Reply::Handle {
            fh: self.key.seal(&h),
            attr: self.attr(&st),
        })
    }

    /// READ into `buf` (at most [`MAX_IO`] bytes): `(bytes, eof)`.
    pub fn read(&mut self, h: &HandleData, offset: u64, buf: &mut [u8]) -> FsResult<(usize, bool)> {
        let f = self.file(h)?;
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
        h: &HandleData,
        offset: u64,
        count: usize,
        out: &mut Vec<u8>,
    ) -> FsResult<bool> {
        let f = self.file(h)?;
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
        h: &HandleData,
        offset: u64,
        stable: Stable,
        data: &[u8],
    ) -> FsResult<(u32, Stable)> {
        if data.len() > MAX_IO {
            return Err(Status::Inval);
        }
        offset.checked_add(data.len() as u64).ok_or(Status::FBig)?;
        let f = self.file(h)?;
        f.write_all_at(data, offset).map_err(io_err)?;
        match stable {
            Stable::Unstable => {}
            Stable::DataSync => f.sync_data().map_err(io_err)?,
            Stable::FileSync => f.sync_all().map_err(io_err)?,
        }
        Ok((data.len() as u32, stable))
    }

    /// WRITE without syncing: `(count, file)`; the caller makes it durable (the server
    /// fsyncs on the blocking pool before it replies to a stable WRITE).
    pub fn write_nosync(
        &mut self,
        h: &HandleData,
        offset: u64,
        data: &[u8],
    ) -> FsResult<(u32, Arc<File>)> {
        if data.len() > MAX_IO {
            return Err(Status::Inval);
        }
        offset.checked_add(data.len() as u64).ok_or(Status::FBig)?;
        let f = self.file(h)?;
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

    /// CREATE a regular file (owned by `owner` when the server runs as root).
    pub fn create(
        &mut self,
        dir: &HandleData,
        name: &str,
        mode: u32,
        exclusive: bool,
        owner: Option<(u32, u32)>,
    ) -> FsResult<Reply> {
        check_name(name)?;
        let (dfd, _) = self.resolve_dir(dir)?;
        let mut flags = libc::O_CREAT | libc::O_RDWR | libc::O_NOFOLLOW;
        if exclusive {
            flags |= libc::O_EXCL;
        }
        let fd = openat(dfd.as_raw_fd(), name, flags, mode & 0o7777).map_err(io_err)?;
        let mut st = fstat(fd.as_raw_fd()).map_err(io_err)?;
        if ftype(st.st_mode) != FileType::Regular {
            return Err(Status::Exist);
        }
        // SAFETY: geteuid has no preconditions.
        if let (Some((uid, gid)), 0) = (owner, unsafe { libc::geteuid() }) {
            // SAFETY: fchown on a descriptor we own.
            if unsafe { libc::fchown(fd.as_raw_fd(), uid, gid) } < 0 {
                return Err(io_err(io::Error::last_os_error()));
            }
            st = fstat(fd.as_raw_fd()).map_err(io_err)?;
        }
        fsync_fd(dfd.as_raw_fd())?;
        let h = HandleData {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            path: dir.child_path(name),
        };
        if h.path.len() > crate::fh::MAX_PATH {
            return Err(Status::NameTooLong);
        }
        self.files.insert((h.dev, h.ino), Arc::new(File::from(fd)));
        Ok(Reply::Handle {
            fh: self.key.seal(&h),
            attr: self.attr(&st),
        })
    }

    /// The file id `name` has in `dir`, if it exists (used to find lease conflicts).
    pub fn fileid_of(&self, dir: &HandleData, name: &str) -> Option<u64> {
        check_name(name).ok()?;
        let (dfd, _) = self.resolve_dir(dir).ok()?;
        fstatat_nofollow(dfd.as_raw_fd(), name)
            .ok()
            .map(|st| st.st_ino as u64)
    }

    /// REMOVE a file (not a directory); returns the removed file id.
    pub fn remove(&mut self, dir: &HandleData, name: &str) -> FsResult<u64> {
        check_name(name)?;
        let (dfd, _) = self.resolve_dir(dir)?;
        let st = fstatat_nofollow(dfd.as_raw_fd(), name).map_err(io_err)?;
        if ftype(st.st_mode) == FileType::Directory {
            return Err(Status::IsDir);
        }
        let c = cstr(name)?;
        // SAFETY: valid string, our directory descriptor.
        if unsafe { libc::unlinkat(dfd.as_raw_fd(), c.as_ptr(), 0) } < 0 {
            return Err(io_err(io::Error::last_os_error()));
        }
        fsync_fd(dfd.as_raw_fd())?;
        self.files.remove(&(st.st_dev as u64, st.st_ino as u64));
        Ok(st.st_ino as u64)
    }

    /// RENAME; returns the moved file id and the replaced target's, if any.
    pub fn rename(
        &mut self,
        from: &HandleData,
        from_name: &str,
        to: &HandleData,
        to_name: &str,
    ) -> FsResult<(u64, Option<u64>)> {
        check_name(from_name)?;
        check_name(to_name)?;
        let (fd1, _) = self.resolve_dir(from)?;
        let (fd2, _) = self.resolve_dir(to)?;
        let moved = fstatat_nofollow(fd1.as_raw_fd(), from_name).map_err(io_err)?;
        let replaced = fstatat_nofollow(fd2.as_raw_fd(), to_name).ok();
        let (c1, c2) = (cstr(from_name)?, cstr(to_name)?);
        // SAFETY: valid strings and directory descriptors we own.
        if unsafe { libc::renameat(fd1.as_raw_fd(), c1.as_ptr(), fd2.as_raw_fd(), c2.as_ptr()) } < 0
        {
            return Err(io_err(io::Error::last_os_error()));
        }
        fsync_fd(fd1.as_raw_fd())?;
        fsync_fd(fd2.as_raw_fd())?;
        self.files
            .remove(&(moved.st_dev as u64, moved.st_ino as u64));
        if let Some(r) = &replaced {
            self.files.remove(&(r.st_dev as u64, r.st_ino as u64));
        }
        Ok((moved.st_ino as u64, replaced.map(|r| r.st_ino as u64)))
    }

    /// READDIR, in name order; `cookie` is the number of entries already returned.
    pub fn readdir(&mut self, dir: &HandleData, cookie: u64, max_entries: u32) -> FsResult<Reply> {
        let (dfd, _) = self.resolve_dir(dir)?;
        // /proc/self/fd/N names exactly our already-resolved descriptor.
        let rd = std::fs::read_dir(format!("/proc/self/fd/{}", dfd.as_raw_fd())).map_err(io_err)?;
        let mut all = Vec::new();
        for e in rd {
            let e = e.map_err(io_err)?;
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            let ft = e.file_type().map_err(io_err)?;
            let ftype = if ft.is_file() {
                FileType::Regular
            } else if ft.is_dir() {
                FileType::Directory
            } else if ft.is_symlink() {
                FileType::Symlink
            } else {
                FileType::Other
            };
            use std::os::unix::fs::DirEntryExt;
            all.push(DirEntry {
                name,
                fileid: e.ino(),
                ftype,
            });
        }
        all.sort_by(|a, b| a.name.cmp(&b.name));
        let max = max_entries.clamp(1, MAX_DIR_ENTRIES) as usize;
        let start = (cookie as usize).min(all.len());
        let end = (start + max).min(all.len());
        let entries = all[start..end].to_vec();
        Ok(Reply::ReadDir {
            entries,
            cookie: end as u64,
            eof: end == all.len(),
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
        let f = handle(e.create(&root, "a", 0o644, true, None).unwrap(), &e);
        assert_eq!(e.create(&root, "a", 0o644, true, None), Err(Status::Exist));
        e.write(&f, 0, Stable::FileSync, b"hello world").unwrap();
        let mut buf = vec![0; 100];
        let (n, eof) = e.read(&f, 6, &mut buf).unwrap();
        assert_eq!((&buf[..n], eof), (&b"world"[..], true));
        let mut v = b"head".to_vec();
        assert!(!e.read_append(&f, 0, 5, &mut v).unwrap());
        assert!(e.read_append(&f, 6, 100, &mut v).unwrap());
        assert_eq!(v, b"headhelloworld");
        assert_eq!(e.getattr(&f).unwrap().size, 11);
        let a = e.setattr(&f, Some(0o600), Some(5), None).unwrap();
        assert_eq!((a.size, a.mode), (5, 0o600));
        let (moved, replaced) = e.rename(&root, "a", &root, "b").unwrap();
        assert_eq!((moved, replaced), (f.ino, None));
        assert_eq!(e.getattr(&f), Err(Status::Stale), "old path is stale");
        let b = handle(e.lookup(&root, "b").unwrap(), &e);
        assert_eq!(b.ino, f.ino);
        let Reply::ReadDir { entries, eof, .. } = e.readdir(&root, 0, 10).unwrap() else {
            panic!()
        };
        assert!(eof);
        assert_eq!(
            entries.iter().map(|x| x.name.as_str()).collect::<Vec<_>>(),
            vec!["b"]
        );
        assert_eq!(e.remove(&root, "b").unwrap(), f.ino);
        assert_eq!(e.lookup(&root, "b"), Err(Status::NoEnt));
    }

    #[test]
    fn no_escape() {
        let (d, mut e, root) = setup();
        std::fs::write(d.path().join("secret"), b"outside").unwrap();
        std::os::unix::fs::symlink("../secret", d.path().join("exp/link")).unwrap();
        std::os::unix::fs::symlink("..", d.path().join("exp/up")).unwrap();
        for bad in ["..", ".", "a/b", ""] {
            assert!(e.lookup(&root, bad).is_err(), "{bad}");
            assert!(e.create(&root, bad, 0o644, false, None).is_err(), "{bad}");
        }
        // The symlink can be looked up but never followed.
        let l = handle(e.lookup(&root, "link").unwrap(), &e);
        assert_eq!(e.getattr(&l).unwrap().ftype, FileType::Symlink);
        let mut buf = [0u8; 16];
        assert_eq!(e.read(&l, 0, &mut buf), Err(Status::NotSupp));
        assert_eq!(e.write(&l, 0, Stable::FileSync, b"x"), Err(Status::NotSupp));
        let up = handle(e.lookup(&root, "up").unwrap(), &e);
        assert_eq!(e.lookup(&up, "secret"), Err(Status::NotDir));
        assert_eq!(
            e.create(&root, "link", 0o644, false, None),
            Err(Status::NotSupp)
        );
        assert_eq!(std::fs::read(d.path().join("secret")).unwrap(), b"outside");
    }
}
