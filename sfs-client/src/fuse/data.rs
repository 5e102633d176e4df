//! The mount's operations on one file: attributes, open, read, write, commit.

use std::time::Instant;

use fuser::{Errno, FileAttr, FopenFlags, OpenAccMode, TimeOrNow};

use sfs_proto::messages::{
    Attr, FsStat, SetAttrs, SetTime, Stable, ACCESS_EXEC, ACCESS_READ, ACCESS_WRITE, MAX_IO,
};

use super::attr::{file_attr, proto_time};
use super::{PageState, Retry, Sfs};

/// What SETATTR may change, as the kernel gives it.
#[derive(Default)]
pub struct KernelSetAttr {
    /// Mode (type bits ignored).
    pub mode: Option<u32>,
    /// Local uid.
    pub uid: Option<u32>,
    /// Local gid.
    pub gid: Option<u32>,
    /// Size.
    pub size: Option<u64>,
    /// Access time.
    pub atime: Option<TimeOrNow>,
    /// Modification time.
    pub mtime: Option<TimeOrNow>,
}

fn set_time(t: Option<TimeOrNow>) -> Option<SetTime> {
    t.map(|t| match t {
        TimeOrNow::Now => SetTime::Now,
        TimeOrNow::SpecificTime(t) => SetTime::At(proto_time(t)),
    })
}

impl Sfs {
    /// Attributes fresh from the server, with the time the kernel may cache them.
    pub(super) fn getattr(&self, node: u64) -> Result<(FileAttr, std::time::Duration), Errno> {
        let (a, ttl) = self.with_handles([node], Retry::Idempotent, |c, [fh]| {
            let (sent, gen) = (Instant::now(), c.generation());
            let a = c.getattr(fh, None)?;
            Ok((a, self.ttl(c, sent, gen)))
        })?;
        self.leased(node, ttl);
        Ok((file_attr(node, &a, &self.ids), ttl))
    }

    /// SETATTR. A size change first commits the file's pending writes, so that
    /// writing them again after a server restart cannot undo the truncation.
    pub(super) fn setattr(
        &self,
        node: u64,
        k: KernelSetAttr,
    ) -> Result<(FileAttr, std::time::Duration), Errno> {
        if k.size.is_some() {
            self.commit(node)?;
        }
        let attrs = SetAttrs {
            mode: k.mode.map(|m| m & 0o7777),
            uid: k.uid.map(|u| self.ids.uid_to_server(u)),
            gid: k.gid.map(|g| self.ids.gid_to_server(g)),
            size: k.size,
            atime: set_time(k.atime),
            mtime: set_time(k.mtime),
        };
        let (a, ttl) = self.with_handles([node], Retry::Idempotent, |c, [fh]| {
            let (sent, gen) = (Instant::now(), c.generation());
            let a = c.set_attrs(fh, &attrs)?;
            Ok((a, self.ttl(c, sent, gen)))
        })?;
        self.leased(node, ttl);
        Ok((file_attr(node, &a, &self.ids), ttl))
    }

    /// ACCESS: `mask` of R_OK/W_OK/X_OK (0 asks whether the file exists).
    pub(super) fn access(&self, node: u64, mask: u32) -> Result<(), Errno> {
        let want = mask & (ACCESS_READ | ACCESS_WRITE | ACCESS_EXEC);
        let got = self.with_handles([node], Retry::Idempotent, |c, [fh]| c.access(fh, want))?;
        if got & want == want {
            Ok(())
        } else {
            Err(Errno::EACCES)
        }
    }

    /// OPEN: the caller's access is checked on the server (unless the SFS user is
    /// root there), and the kernel keeps the file's cached pages only if they are
    /// still known to be current (invariant 2).
    pub(super) fn open(&self, node: u64, acc: OpenAccMode) -> Result<FopenFlags, Errno> {
        if !self.privileged {
            let mask = match acc {
                OpenAccMode::O_RDONLY => ACCESS_READ,
                OpenAccMode::O_WRONLY => ACCESS_WRITE,
                OpenAccMode::O_RDWR => ACCESS_READ | ACCESS_WRITE,
            };
            self.access(node, mask)?;
        }
        Ok(if self.keep_pages(node)? {
            FopenFlags::FOPEN_KEEP_CACHE
        } else {
            FopenFlags::empty()
        })
    }

    /// May the kernel keep `node`'s cached pages at this open? Yes while the lease
    /// holds and no INVALIDATE arrived since they were validated; after the lease,
    /// only if the server shows the same version (mtime, size) as then.
    fn keep_pages(&self, node: u64) -> Result<bool, Errno> {
        let invals = self.inval.count(node);
        let now = Instant::now();
        let st = self.pages.lock().get(&node).copied();
        if let Some(PageState {
            lease_until: Some(until),
            validated: Some((_, _, n)),
        }) = st
        {
            if until > now && n == invals {
                return Ok(true);
            }
        }
        let (a, ttl) = self.with_handles([node], Retry::Idempotent, |c, [fh]| {
            let (sent, gen) = (Instant::now(), c.generation());
            let a: Attr = c.getattr(fh, None)?;
            Ok((a, self.ttl(c, sent, gen)))
        })?;
        let version = (a.mtime, a.size, self.inval.count(node));
        let mut pages = self.pages.lock();
        let e = pages.entry(node).or_insert(PageState {
            lease_until: None,
            validated: None,
        });
        let keep = e.validated == Some(version) && version.2 == invals;
        e.validated = Some(version);
        e.lease_until = (!ttl.is_zero()).then(|| Instant::now() + ttl);
        Ok(keep)
    }

    /// READ `size` bytes at `offset` (in server-sized pieces).
    pub(super) fn read(&self, node: u64, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        let mut out: Vec<u8> = Vec::new();
        while out.len() < size as usize {
            let off = offset + out.len() as u64;
            let want = (size as usize - out.len()).min(MAX_IO) as u32;
            let (data, eof) = self.with_handles([node], Retry::Idempotent, |c, [fh]| {
                c.read(fh, None, off, want)
            })?;
            let done = eof || data.len() < want as usize || data.is_empty();
            if out.is_empty() && (done || data.len() >= size as usize) {
                // One reply holds it all (the usual case): no copy.
                return Ok(data);
            }
            if out.is_empty() {
                out.reserve_exact(size as usize);
            }
            out.extend_from_slice(&data);
            if done {
                break;
            }
        }
        Ok(out)
    }

    /// WRITE: acknowledged once the server accepted it (UNSTABLE), kept until COMMIT.
    pub(super) fn write(&self, node: u64, offset: u64, data: &[u8]) -> Result<u32, Errno> {
        if data.len() > MAX_IO {
            return Err(Errno::EINVAL);
        }
        if self.writes.lock().over(node) {
            self.commit(node)?;
        }
        let (n, verf) = self.with_handles([node], Retry::Idempotent, |c, [fh]| {
            let (n, _, verf) = c.write(fh, offset, data, Stable::Unstable)?;
            Ok((n, verf))
        })?;
        self.writes
            .lock()
            .record(node, offset, &data[..n as usize], verf);
        Ok(n)
    }

    /// COMMIT `node`'s pending writes, writing them again while the verifier changes
    /// (a restarted server may have lost them). A file that is gone has nothing left
    /// to save.
    pub(super) fn commit(&self, node: u64) -> Result<(), Errno> {
        for _ in 0..4 {
            if !self.writes.lock().dirty(node) {
                return Ok(());
            }
            let mark = self.writes.lock().mark();
            let verf = match self.with_handles([node], Retry::Idempotent, |c, [fh]| c.commit(fh)) {
                Ok(v) => v,
                Err(e) if [libc::ESTALE, libc::ENOENT].contains(&e.code()) => {
                    self.writes.lock().discard(node);
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            let again = match self.writes.lock().committed(node, mark, verf) {
                Ok(()) => return Ok(()),
                Err(again) => again,
            };
            let mut verfs = Vec::with_capacity(again.len());
            for p in &again {
                let v = self.with_handles([node], Retry::Idempotent, |c, [fh]| {
                    c.write(fh, p.offset, &p.data, Stable::Unstable)
                        .map(|r| r.2)
                })?;
                verfs.push(v);
            }
            if let Some(&v) = verfs.first().filter(|v| verfs.iter().all(|x| x == *v)) {
                self.writes.lock().rewritten(node, mark, v);
            }
        }
        Err(Errno::EIO)
    }

    /// STATFS of the export.
    pub(super) fn statfs(&self) -> Result<FsStat, Errno> {
        self.with_handles([super::ROOT], Retry::Idempotent, |c, [fh]| c.statfs(fh))
    }

    /// READLINK.
    pub(super) fn readlink(&self, node: u64) -> Result<Vec<u8>, Errno> {
        self.with_handles([node], Retry::Idempotent, |c, [fh]| c.readlink(fh))
    }
}
