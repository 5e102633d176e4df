//! The operations that add, remove or list directory entries.
//!
//! Each one resolves its directories from handles (never through a symlink), checks
//! the caller with [`crate::perm`], makes one `*at` call on a single name component,
//! and `fsync`s every directory it changed before it returns.

// `stat` field widths differ between targets; the casts are for portability.
#![allow(clippy::unnecessary_cast)]

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use sfs_proto::fh::{check_name, HandleData};
use sfs_proto::messages::{
    DirEntry, FileType, Reply, Status, ACCESS_READ, MAX_DIR_ENTRIES, MAX_TARGET,
};

use super::sys::{self, fstat, fstatat_nofollow, openat};
use super::{fsync_fd, ftype, io_err, Export, FsResult};
use crate::perm::{self, Ident, Owner};

/// The owner a new entry of directory `dir` gets when the server may choose it: the
/// caller, with the directory's group if it is set-group-id.
fn new_owner(dir: &libc::stat, who: Ident) -> Option<(u32, u32)> {
    if !sys::privileged() {
        return None;
    }
    let gid = if dir.st_mode & libc::S_ISGID != 0 {
        dir.st_gid
    } else {
        who.gid
    };
    Some((who.uid, gid))
}

impl Export {
    /// A directory handle's descriptor, checked for adding or removing entries.
    fn writable_dir(&self, who: Ident, dir: &HandleData) -> FsResult<(OwnedFd, libc::stat)> {
        let (dfd, dst) = self.resolve_dir(dir)?;
        perm::check_dir_write(Owner::of(&dst), who)?;
        Ok((dfd, dst))
    }

    /// CREATE a regular file with exactly `mode`. An existing file is returned as it
    /// is unless `exclusive`.
    pub fn create(
        &mut self,
        who: Ident,
        dir: &HandleData,
        name: &str,
        mode: u32,
        exclusive: bool,
    ) -> FsResult<Reply> {
        check_name(name)?;
        let (dfd, dst) = self.writable_dir(who, dir)?;
        let flags = libc::O_CREAT | libc::O_EXCL | libc::O_RDWR | libc::O_NOFOLLOW;
        let (fd, created) = match openat(dfd.as_raw_fd(), name, flags, mode & 0o7777) {
            Ok(fd) => (fd, true),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) && !exclusive => {
                // O_NOFOLLOW on both tries: an existing symlink is refused (ELOOP,
                // NotSupp), never opened through.
                let rw = libc::O_RDWR | libc::O_NOFOLLOW;
                let ro = libc::O_RDONLY | libc::O_NOFOLLOW;
                let fd = openat(dfd.as_raw_fd(), name, rw, 0)
                    .or_else(|e| match e.raw_os_error() {
                        Some(libc::EACCES) | Some(libc::ETXTBSY) => {
                            openat(dfd.as_raw_fd(), name, ro, 0)
                        }
                        _ => Err(e),
                    })
                    .map_err(io_err)?;
                (fd, false)
            }
            Err(e) => return Err(io_err(e)),
        };
        let st = fstat(fd.as_raw_fd()).map_err(io_err)?;
        if ftype(st.st_mode) != FileType::Regular {
            return Err(Status::Exist);
        }
        if created {
            if let Some((uid, gid)) = new_owner(&dst, who) {
                sys::fchown(fd.as_raw_fd(), uid, gid).map_err(io_err)?;
            }
            sys::fchmod(fd.as_raw_fd(), mode & 0o7777).map_err(io_err)?;
            fsync_fd(&dfd)?;
        }
        let st = fstat(fd.as_raw_fd()).map_err(io_err)?;
        let r = self.handle_reply(dir, name, &st)?;
        self.files.insert(
            (st.st_dev as u64, st.st_ino as u64),
            Arc::new(File::from(fd)),
        );
        Ok(r)
    }

    /// MKDIR with exactly `mode`.
    pub fn mkdir(
        &mut self,
        who: Ident,
        dir: &HandleData,
        name: &str,
        mode: u32,
    ) -> FsResult<Reply> {
        check_name(name)?;
        let (dfd, dst) = self.writable_dir(who, dir)?;
        sys::mkdirat(dfd.as_raw_fd(), name, mode & 0o7777).map_err(io_err)?;
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
        let fd = openat(dfd.as_raw_fd(), name, flags, 0).map_err(io_err)?;
        if let Some((uid, gid)) = new_owner(&dst, who) {
            sys::fchown(fd.as_raw_fd(), uid, gid).map_err(io_err)?;
        }
        // A new directory inherits set-group-id from its parent, as mkdir(2) does.
        let inherit = dst.st_mode & libc::S_ISGID;
        sys::fchmod(fd.as_raw_fd(), (mode & 0o7777) | inherit).map_err(io_err)?;
        fsync_fd(&dfd)?;
        let st = fstat(fd.as_raw_fd()).map_err(io_err)?;
        self.handle_reply(dir, name, &st)
    }

    /// MKNOD: a FIFO or socket for anyone who may write the directory; a device only
    /// for root (EPERM otherwise, as `mknod(2)` without `CAP_MKNOD`).
    pub fn mknod(
        &mut self,
        who: Ident,
        dir: &HandleData,
        name: &str,
        ftype: FileType,
        mode: u32,
        rdev: u64,
    ) -> FsResult<Reply> {
        check_name(name)?;
        let (kind, rdev) = match ftype {
            FileType::Fifo => (libc::S_IFIFO, 0),
            FileType::Socket => (libc::S_IFSOCK, 0),
            FileType::CharDev => (libc::S_IFCHR, rdev),
            FileType::BlockDev => (libc::S_IFBLK, rdev),
            _ => return Err(Status::Inval),
        };
        let (dfd, dst) = self.writable_dir(who, dir)?;
        if matches!(ftype, FileType::CharDev | FileType::BlockDev) && !who.is_root() {
            return Err(Status::Perm);
        }
        sys::mknodat(dfd.as_raw_fd(), name, kind | (mode & 0o7777), rdev).map_err(io_err)?;
        if let Some((uid, gid)) = new_owner(&dst, who) {
            sys::lchownat(dfd.as_raw_fd(), name, uid, gid).map_err(io_err)?;
        }
        let st = fstatat_nofollow(dfd.as_raw_fd(), name).map_err(io_err)?;
        if st.st_mode & 0o7777 != mode & 0o7777 {
            // mknod applied the server's umask: set exactly what was asked for.
            let fd = openat(dfd.as_raw_fd(), name, libc::O_PATH | libc::O_NOFOLLOW, 0)
                .map_err(io_err)?;
            sys::chmod_fd(fd.as_raw_fd(), mode & 0o7777).map_err(io_err)?;
        }
        fsync_fd(&dfd)?;
        let st = fstatat_nofollow(dfd.as_raw_fd(), name).map_err(io_err)?;
        self.handle_reply(dir, name, &st)
    }

    /// SYMLINK: store `target` as given (it is never resolved by the server).
    pub fn symlink(
        &mut self,
        who: Ident,
        dir: &HandleData,
        name: &str,
        target: &[u8],
    ) -> FsResult<Reply> {
        check_name(name)?;
        if target.is_empty() {
            return Err(Status::NoEnt);
        }
        if target.len() > MAX_TARGET || target.contains(&0) {
            return Err(Status::NameTooLong);
        }
        let (dfd, dst) = self.writable_dir(who, dir)?;
        sys::symlinkat(target, dfd.as_raw_fd(), name).map_err(io_err)?;
        if let Some((uid, gid)) = new_owner(&dst, who) {
            sys::lchownat(dfd.as_raw_fd(), name, uid, gid).map_err(io_err)?;
        }
        fsync_fd(&dfd)?;
        let st = fstatat_nofollow(dfd.as_raw_fd(), name).map_err(io_err)?;
        self.handle_reply(dir, name, &st)
    }

    /// LINK: a new name `name` in `dir` for the non-directory `h`.
    pub fn link(
        &mut self,
        who: Ident,
        h: &HandleData,
        dir: &HandleData,
        name: &str,
    ) -> FsResult<Reply> {
        check_name(name)?;
        let src = self.resolve(h)?;
        if ftype(src.st.st_mode) == FileType::Directory {
            return Err(Status::Perm);
        }
        let sp = src.parent.as_ref().ok_or(Status::Perm)?;
        let (dfd, _) = self.writable_dir(who, dir)?;
        sys::linkat(sp.as_raw_fd(), &src.name, dfd.as_raw_fd(), name).map_err(io_err)?;
        fsync_fd(&dfd)?;
        let st = fstatat_nofollow(dfd.as_raw_fd(), name).map_err(io_err)?;
        if (st.st_dev as u64, st.st_ino as u64) != (h.dev, h.ino) {
            // The source was replaced between resolution and link.
            return Err(Status::Stale);
        }
        self.handle_reply(dir, name, &st)
    }

    /// The file id `name` has in `dir`, if it exists (used to find lease conflicts).
    pub fn fileid_of(&self, dir: &HandleData, name: &str) -> Option<u64> {
        check_name(name).ok()?;
        let (dfd, _) = self.resolve_dir(dir).ok()?;
        fstatat_nofollow(dfd.as_raw_fd(), name)
            .ok()
            .map(|st| st.st_ino as u64)
    }

    /// Unlink `name` (a directory with `rmdir`, anything else without); returns the
    /// removed file id.
    fn unlink(&mut self, who: Ident, dir: &HandleData, name: &str, rmdir: bool) -> FsResult<u64> {
        check_name(name)?;
        let (dfd, dst) = self.resolve_dir(dir)?;
        let st = fstatat_nofollow(dfd.as_raw_fd(), name).map_err(io_err)?;
        let is_dir = ftype(st.st_mode) == FileType::Directory;
        match (is_dir, rmdir) {
            (true, false) => return Err(Status::IsDir),
            (false, true) => return Err(Status::NotDir),
            _ => {}
        }
        perm::check_delete(Owner::of(&dst), Owner::of(&st), who)?;
        let flags = if rmdir { libc::AT_REMOVEDIR } else { 0 };
        sys::unlinkat(dfd.as_raw_fd(), name, flags).map_err(io_err)?;
        fsync_fd(&dfd)?;
        self.files.remove(&(st.st_dev as u64, st.st_ino as u64));
        Ok(st.st_ino as u64)
    }

    /// REMOVE a file (not a directory); returns the removed file id.
    pub fn remove(&mut self, who: Ident, dir: &HandleData, name: &str) -> FsResult<u64> {
        self.unlink(who, dir, name, false)
    }

    /// RMDIR an empty directory; returns its file id.
    pub fn rmdir(&mut self, who: Ident, dir: &HandleData, name: &str) -> FsResult<u64> {
        self.unlink(who, dir, name, true)
    }

    /// RENAME; returns the moved file id and the replaced target's, if any.
    pub fn rename(
        &mut self,
        who: Ident,
        from: &HandleData,
        from_name: &str,
        to: &HandleData,
        to_name: &str,
    ) -> FsResult<(u64, Option<u64>)> {
        check_name(from_name)?;
        check_name(to_name)?;
        let (fd1, st1) = self.resolve_dir(from)?;
        let (fd2, st2) = self.resolve_dir(to)?;
        let moved = fstatat_nofollow(fd1.as_raw_fd(), from_name).map_err(io_err)?;
        let replaced = fstatat_nofollow(fd2.as_raw_fd(), to_name).ok();
        perm::check_delete(Owner::of(&st1), Owner::of(&moved), who)?;
        perm::check_dir_write(Owner::of(&st2), who)?;
        if let Some(r) = &replaced {
            perm::check_delete(Owner::of(&st2), Owner::of(r), who)?;
        }
        if ftype(moved.st_mode) == FileType::Directory
            && (st1.st_ino, st1.st_dev) != (st2.st_ino, st2.st_dev)
        {
            // Its ".." entry changes.
            perm::check(Owner::of(&moved), who, sfs_proto::messages::ACCESS_WRITE)?;
        }
        sys::renameat(fd1.as_raw_fd(), from_name, fd2.as_raw_fd(), to_name).map_err(io_err)?;
        fsync_fd(&fd1)?;
        fsync_fd(&fd2)?;
        self.files
            .remove(&(moved.st_dev as u64, moved.st_ino as u64));
        if let Some(r) = &replaced {
            self.files.remove(&(r.st_dev as u64, r.st_ino as u64));
        }
        Ok((moved.st_ino as u64, replaced.map(|r| r.st_ino as u64)))
    }

    /// READDIR, in name order; `cookie` is the number of entries already returned.
    pub fn readdir(
        &mut self,
        who: Ident,
        dir: &HandleData,
        cookie: u64,
        max_entries: u32,
    ) -> FsResult<Reply> {
        let (dfd, dst) = self.resolve_dir(dir)?;
        perm::check(Owner::of(&dst), who, ACCESS_READ)?;
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
                use std::os::unix::fs::FileTypeExt;
                if ft.is_fifo() {
                    FileType::Fifo
                } else if ft.is_socket() {
                    FileType::Socket
                } else if ft.is_char_device() {
                    FileType::CharDev
                } else if ft.is_block_device() {
                    FileType::BlockDev
                } else {
                    FileType::Other
                }
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
