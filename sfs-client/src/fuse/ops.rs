//! The kernel's requests, each answered by one of [`Sfs`]'s operations.
//!
//! Unsupported requests keep `fuser`'s defaults: ENOSYS, which makes the kernel stop
//! asking and answer for itself (no extended attributes, locks handled locally,
//! `fallocate` unsupported).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, Errno, FileHandle, Filesystem, FopenFlags, Generation, INodeNo, InitFlags,
    KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow,
    WriteFlags,
};

use sfs_proto::messages::{FileType, MAX_IO};

use super::attr::kind;
use super::data::KernelSetAttr;
use super::names::Entry;
use super::Sfs;
use crate::client::CallerScope;

/// The file system the kernel talks to.
pub struct Fs(pub Arc<Sfs>);

impl Fs {
    /// On a trusted mount, make this thread's calls for the request's caller until
    /// the scope ends.
    fn caller(&self, req: &Request) -> Option<CallerScope> {
        self.0
            .trusted
            .then(|| CallerScope::enter(Some(super::caller(req))))
    }
}

fn entry(reply: ReplyEntry, r: Result<Entry, Errno>) {
    match r {
        Ok((a, ttl)) => reply.entry(&ttl, &a, Generation(0)),
        Err(e) => reply.error(e),
    }
}

fn empty(reply: ReplyEmpty, r: Result<(), Errno>) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

fn attr(reply: ReplyAttr, r: Result<(fuser::FileAttr, Duration), Errno>) {
    match r {
        Ok((a, ttl)) => reply.attr(&ttl, &a),
        Err(e) => reply.error(e),
    }
}

impl Filesystem for Fs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let _ = config.set_max_write(MAX_IO as u32);
        let _ = config.set_max_readahead(MAX_IO as u32);
        let _ = config.set_time_granularity(Duration::from_nanos(1));
        // Pages are dropped when re-fetched attributes show a new mtime or size, and
        // lookups in one directory may run in parallel.
        for cap in [
            InitFlags::FUSE_AUTO_INVAL_DATA,
            InitFlags::FUSE_PARALLEL_DIROPS,
        ] {
            let _ = config.add_capabilities(cap);
        }
        Ok(())
    }

    fn destroy(&mut self) {
        let _ = self.0.commit_all();
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let _caller = self.caller(req);
        entry(reply, self.0.lookup(parent.0, name));
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.0.forget(ino.0, nlookup);
    }

    fn getattr(&self, req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let _caller = self.caller(req);
        attr(reply, self.0.getattr(ino.0));
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let _caller = self.caller(req);
        let k = KernelSetAttr {
            mode,
            uid,
            gid,
            size,
            atime,
            mtime,
        };
        attr(reply, self.0.setattr(ino.0, k));
    }

    fn readlink(&self, req: &Request, ino: INodeNo, reply: ReplyData) {
        let _caller = self.caller(req);
        match self.0.readlink(ino.0) {
            Ok(t) => reply.data(&t),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let _caller = self.caller(req);
        let t = match mode & libc::S_IFMT {
            0 | libc::S_IFREG => {
                return entry(reply, self.0.create(parent.0, name, mode, libc::O_EXCL))
            }
            libc::S_IFIFO => FileType::Fifo,
            libc::S_IFSOCK => FileType::Socket,
            libc::S_IFCHR => FileType::CharDev,
            libc::S_IFBLK => FileType::BlockDev,
            _ => return reply.error(Errno::EINVAL),
        };
        let rdev = super::attr::rdev_from_kernel(rdev);
        entry(reply, self.0.mknod(parent.0, name, t, mode, rdev));
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let _caller = self.caller(req);
        entry(reply, self.0.mkdir(parent.0, name, mode));
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _caller = self.caller(req);
        empty(reply, self.0.remove(parent.0, name, false));
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _caller = self.caller(req);
        empty(reply, self.0.remove(parent.0, name, true));
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let _caller = self.caller(req);
        let t = target.as_os_str().as_bytes();
        entry(reply, self.0.symlink(parent.0, link_name, t));
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let _caller = self.caller(req);
        if !flags.is_empty() {
            // RENAME_NOREPLACE / RENAME_EXCHANGE cannot be made atomic over the
            // protocol; callers fall back to plain rename.
            return reply.error(Errno::EINVAL);
        }
        empty(reply, self.0.rename(parent.0, name, newparent.0, newname));
    }

    fn link(
        &self,
        req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let _caller = self.caller(req);
        entry(reply, self.0.link(ino.0, newparent.0, newname));
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let _caller = self.caller(req);
        match self.0.open(ino.0, flags.acc_mode()) {
            Ok(f) => reply.opened(FileHandle(0), f),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let _caller = self.caller(req);
        match self.0.read(ino.0, offset, size) {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let _caller = self.caller(req);
        match self.0.write(ino.0, offset, data) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        let _caller = self.caller(req);
        empty(reply, self.0.commit(ino.0));
    }

    fn fsync(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let _caller = self.caller(req);
        empty(reply, self.0.commit(ino.0));
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let _caller = self.caller(req);
        match self.0.opendir(ino.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let _caller = self.caller(req);
        let list = match self.0.listing(ino.0, fh.0) {
            Ok(l) => l,
            Err(e) => return reply.error(e),
        };
        for (i, (node, t, name)) in list.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(*node), i as u64 + 1, kind(*t), name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.0.releasedir(fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // The server fsyncs every directory it changes before replying.
        reply.ok();
    }

    fn statfs(&self, req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let _caller = self.caller(req);
        match self.0.statfs() {
            Ok(s) => reply.statfs(
                s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namemax, s.frsize,
            ),
            Err(e) => reply.error(e),
        }
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        let _caller = self.caller(req);
        empty(reply, self.0.access(ino.0, mask.bits() as u32));
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let _caller = self.caller(req);
        match self.0.create(parent.0, name, mode, flags) {
            Ok((a, ttl)) => {
                reply.created(&ttl, &a, Generation(0), FileHandle(0), FopenFlags::empty())
            }
            Err(e) => reply.error(e),
        }
    }
}
