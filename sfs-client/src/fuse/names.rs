//! The mount's operations on directory entries: lookup, create, link, remove, rename,
//! listing.

use std::ffi::OsStr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fuser::{Errno, FileAttr};

use sfs_proto::messages::{Attr, DirEntry, Fh, FileType, Reply, Request, MAX_NAME};

use super::attr::file_attr;
use super::{Retry, Sfs};
use crate::client::{CResult, Client, ClientError};

/// An entry reply: the kernel's attributes and how long it may cache them.
pub type Entry = (FileAttr, Duration);

/// A name the protocol can carry: UTF-8, one component, at most [`MAX_NAME`] bytes.
pub fn name(n: &OsStr) -> Result<&str, Errno> {
    let s = n.to_str().ok_or(Errno::EINVAL)?;
    if s.len() > MAX_NAME {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(s)
}

impl Sfs {
    /// Make the kernel's entry for a handle reply: remember the node (one lookup).
    fn entry(
        &self,
        parent: u64,
        name: &str,
        (fh, a, ttl): (Fh, Attr, Duration),
        epoch: u64,
    ) -> Entry {
        let node = self
            .nodes
            .lock()
            .entry(parent, name, a.fileid, a.ftype, fh, epoch);
        self.leased(node, ttl);
        (file_attr(node, &a, &self.ids), ttl)
    }

    /// Run a call that returns a handle for `name` in `parent` (and, for LINK, on the
    /// other nodes in `with`), and make its entry.
    fn entry_call<const N: usize>(
        &self,
        nodes: [u64; N],
        parent: u64,
        name: &str,
        retry: Retry,
        f: impl Fn(&Client, &[Fh; N]) -> CResult<(Fh, Attr)>,
    ) -> Result<Entry, Errno> {
        let (r, epoch) = self.with_handles_at(nodes, retry, |c, fhs| {
            let (sent, gen) = (Instant::now(), c.generation());
            let (fh, a) = f(c, fhs)?;
            Ok((fh, a, self.ttl(c, sent, gen)))
        })?;
        Ok(self.entry(parent, name, r, epoch))
    }

    /// LOOKUP.
    pub(super) fn lookup(&self, parent: u64, n: &OsStr) -> Result<Entry, Errno> {
        let n = name(n)?;
        self.entry_call([parent], parent, n, Retry::Idempotent, |c, [d]| {
            c.lookup(d, n)
        })
    }

    /// CREATE (exclusive with O_EXCL); an existing file opened with O_TRUNC is
    /// truncated.
    pub(super) fn create(
        &self,
        parent: u64,
        n: &OsStr,
        mode: u32,
        flags: i32,
    ) -> Result<Entry, Errno> {
        let n = name(n)?;
        let exclusive = flags & libc::O_EXCL != 0;
        let (attr, ttl) = self.entry_call([parent], parent, n, Retry::Once, |c, [d]| {
            c.create(d, n, mode & 0o7777, exclusive)
        })?;
        if flags & libc::O_TRUNC != 0 && attr.size > 0 {
            return self.setattr(
                attr.ino.0,
                super::data::KernelSetAttr {
                    size: Some(0),
                    ..Default::default()
                },
            );
        }
        Ok((attr, ttl))
    }

    /// MKDIR.
    pub(super) fn mkdir(&self, parent: u64, n: &OsStr, mode: u32) -> Result<Entry, Errno> {
        let n = name(n)?;
        self.entry_call([parent], parent, n, Retry::Once, |c, [d]| {
            c.mkdir(d, n, mode & 0o7777)
        })
    }

    /// MKNOD of a FIFO, socket or device.
    pub(super) fn mknod(
        &self,
        parent: u64,
        n: &OsStr,
        ftype: FileType,
        mode: u32,
        rdev: u64,
    ) -> Result<Entry, Errno> {
        let n = name(n)?;
        self.entry_call([parent], parent, n, Retry::Once, |c, [d]| {
            let req = Request::Mknod {
                dir: d.clone(),
                name: n.into(),
                ftype,
                mode: mode & 0o7777,
                rdev,
            };
            match c.call(req)? {
                Reply::Handle { fh, attr } => Ok((fh, attr)),
                other => Err(ClientError::Protocol(format!(
                    "expected a handle, got {other:?}"
                ))),
            }
        })
    }

    /// SYMLINK: the target is stored as given.
    pub(super) fn symlink(&self, parent: u64, n: &OsStr, target: &[u8]) -> Result<Entry, Errno> {
        let n = name(n)?;
        self.entry_call([parent], parent, n, Retry::Once, |c, [d]| {
            c.symlink(d, n, target)
        })
    }

    /// LINK: `node` gets the name `n` in `parent`.
    pub(super) fn link(&self, node: u64, parent: u64, n: &OsStr) -> Result<Entry, Errno> {
        let n = name(n)?;
        self.entry_call([node, parent], parent, n, Retry::Once, |c, [f, d]| {
            c.link(f, d, n)
        })
    }

    /// UNLINK or RMDIR.
    pub(super) fn remove(&self, parent: u64, n: &OsStr, dir: bool) -> Result<(), Errno> {
        let n = name(n)?;
        self.with_handles([parent], Retry::Once, |c, [d]| {
            if dir {
                c.rmdir(d, n)
            } else {
                c.remove(d, n)
            }
        })?;
        self.nodes.lock().unlinked(parent, n);
        Ok(())
    }

    /// RENAME; the moved node's handle (which carries the old path) resolves again.
    pub(super) fn rename(
        &self,
        parent: u64,
        n: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
    ) -> Result<(), Errno> {
        let (n, new_name) = (name(n)?, name(new_name)?);
        self.with_handles([parent, new_parent], Retry::Once, |c, [a, b]| {
            c.rename(a, n, b, new_name)
        })?;
        let mut t = self.nodes.lock();
        t.unlinked(new_parent, new_name);
        t.renamed(parent, n, new_parent, new_name);
        Ok(())
    }

    /// OPENDIR: the whole listing, read once (so entries removed while it is read,
    /// as `rm -r` does, never make it skip others); returns the directory handle.
    pub(super) fn opendir(&self, node: u64) -> Result<u64, Errno> {
        let entries = self.with_handles([node], Retry::Idempotent, |c, [d]| c.readdir(d))?;
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.dirs.lock().insert(fh, Arc::new(entries));
        Ok(fh)
    }

    /// The listing of an open directory, with `.` and `..` first: (node, type, name).
    pub(super) fn listing(
        &self,
        node: u64,
        fh: u64,
    ) -> Result<Vec<(u64, sfs_proto::messages::FileType, String)>, Errno> {
        let entries = self.dirs.lock().get(&fh).cloned().ok_or(Errno::EBADF)?;
        let parent = self.nodes.lock().get(node).map_or(node, |n| n.parent);
        let dir = sfs_proto::messages::FileType::Directory;
        let mut out = vec![
            (node, dir, ".".to_string()),
            (parent, dir, "..".to_string()),
        ];
        out.extend(
            entries
                .iter()
                .map(|e: &DirEntry| (self.node_of(e.fileid), e.ftype, e.name.clone())),
        );
        Ok(out)
    }

    /// RELEASEDIR.
    pub(super) fn releasedir(&self, fh: u64) {
        self.dirs.lock().remove(&fh);
    }

    /// FORGET.
    pub(super) fn forget(&self, node: u64, n: u64) {
        let mut t = self.nodes.lock();
        t.forget(node, n);
        if t.get(node).is_none() {
            drop(t);
            self.inval.forget(node);
            self.pages.lock().remove(&node);
        }
    }
}
