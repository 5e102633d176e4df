//! Server attributes as the kernel sees them: types, times, the uid mapping, errno.
//!
//! The uid mapping: a mount acts on the server as one SFS user, whose server-side
//! identity (uid, gid) WHOAMI reports. Locally that identity is shown as the user who
//! mounted, so `ls -l` shows one's own files as one's own and a local `chown` to
//! oneself means the SFS user on the server. Any other server id is shown as it is,
//! except one that collides with the mounting user's id, which is shown as `nobody`
//! (it is somebody else's on the server). A mount with a trusted key acts for each
//! local caller with its own ids, and shows ids as they are ([`IdMap::identity`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{Errno, FileAttr, FileType as KType, INodeNo};

use sfs_proto::messages::{Attr, FileType, Time};

use crate::client::ClientError;

/// The id `nobody` has.
pub const NOBODY: u32 = 65534;

/// Server identity <-> the mounting user's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdMap {
    /// The SFS user's uid on the server.
    pub server_uid: u32,
    /// Its gid on the server.
    pub server_gid: u32,
    /// The mounting user's uid.
    pub local_uid: u32,
    /// The mounting user's gid.
    pub local_gid: u32,
}

fn to_local(id: u32, server: u32, local: u32) -> u32 {
    if id == server {
        local
    } else if id == local {
        NOBODY
    } else {
        id
    }
}

fn to_server(id: u32, server: u32, local: u32) -> u32 {
    if id == local {
        server
    } else {
        id
    }
}

impl IdMap {
    /// The mapping that changes no id (a trusted mount).
    pub fn identity() -> IdMap {
        IdMap {
            server_uid: 0,
            server_gid: 0,
            local_uid: 0,
            local_gid: 0,
        }
    }

    /// A server uid as shown locally.
    pub fn uid_to_local(&self, uid: u32) -> u32 {
        to_local(uid, self.server_uid, self.local_uid)
    }
    /// A server gid as shown locally.
    pub fn gid_to_local(&self, gid: u32) -> u32 {
        to_local(gid, self.server_gid, self.local_gid)
    }
    /// A local uid (from `chown`) as the server knows it.
    pub fn uid_to_server(&self, uid: u32) -> u32 {
        to_server(uid, self.server_uid, self.local_uid)
    }
    /// A local gid as the server knows it.
    pub fn gid_to_server(&self, gid: u32) -> u32 {
        to_server(gid, self.server_gid, self.local_gid)
    }
}

/// The kernel's file type for a server type.
pub fn kind(t: FileType) -> KType {
    match t {
        FileType::Regular => KType::RegularFile,
        FileType::Directory => KType::Directory,
        FileType::Symlink => KType::Symlink,
        FileType::Fifo => KType::NamedPipe,
        FileType::Socket => KType::Socket,
        FileType::CharDev => KType::CharDevice,
        FileType::BlockDev => KType::BlockDevice,
        // A type the protocol cannot name: shown as what cannot be read through SFS.
        FileType::Other => KType::NamedPipe,
    }
}

/// A device number (`dev_t`, as the server's `st_rdev`) in the kernel's 32-bit FUSE
/// encoding (`new_encode_dev`: 12 bits of major, 20 of minor).
pub fn rdev_to_kernel(rdev: u64) -> u32 {
    let (major, minor) = (
        libc::major(rdev as libc::dev_t),
        libc::minor(rdev as libc::dev_t),
    );
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12)
}

/// The kernel's 32-bit device number (from MKNOD) as a `dev_t`.
pub fn rdev_from_kernel(rdev: u32) -> u64 {
    let major = (rdev & 0xfff00) >> 8;
    let minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
    libc::makedev(major, minor) as u64
}

/// A protocol time as a `SystemTime`.
pub fn system_time(t: Time) -> SystemTime {
    let nanos = Duration::from_nanos(t.nsecs.min(999_999_999) as u64);
    if t.secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(t.secs as u64) + nanos
    } else {
        UNIX_EPOCH - Duration::from_secs(t.secs.unsigned_abs()) + nanos
    }
}

/// A `SystemTime` as a protocol time.
pub fn proto_time(t: SystemTime) -> Time {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => Time {
            secs: d.as_secs() as i64,
            nsecs: d.subsec_nanos(),
        },
        Err(e) => {
            let d = e.duration();
            let (secs, nsecs) = if d.subsec_nanos() == 0 {
                (-(d.as_secs() as i64), 0)
            } else {
                (-(d.as_secs() as i64) - 1, 1_000_000_000 - d.subsec_nanos())
            };
            Time { secs, nsecs }
        }
    }
}

/// The kernel's attributes for node `node` with server attributes `a`.
pub fn file_attr(node: u64, a: &Attr, ids: &IdMap) -> FileAttr {
    FileAttr {
        ino: INodeNo(node),
        size: a.size,
        blocks: a.size.div_ceil(512),
        atime: system_time(a.atime),
        mtime: system_time(a.mtime),
        ctime: system_time(a.ctime),
        crtime: system_time(a.ctime),
        kind: kind(a.ftype),
        perm: (a.mode & 0o7777) as u16,
        nlink: a.nlink,
        uid: ids.uid_to_local(a.uid),
        gid: ids.gid_to_local(a.gid),
        rdev: rdev_to_kernel(a.rdev),
        blksize: crate::client::CHUNK as u32,
        flags: 0,
    }
}

/// The errno for a failed call: the server's status as a POSIX file system reports
/// it, and EIO for a lost connection or a protocol failure.
pub fn errno(e: &ClientError) -> Errno {
    match e {
        ClientError::Status(s) => Errno::from_i32(s.errno()),
        ClientError::Disconnected(_) | ClientError::Protocol(_) => Errno::EIO,
    }
}

#[cfg(test)]
mod tests {
    use sfs_proto::messages::Status;

    use super::*;

    #[test]
    fn the_mounting_user_stands_for_the_sfs_user() {
        let m = IdMap {
            server_uid: 1000,
            server_gid: 100,
            local_uid: 0,
            local_gid: 0,
        };
        assert_eq!(m.uid_to_local(1000), 0);
        assert_eq!(m.uid_to_local(0), NOBODY, "the server's root is not us");
        assert_eq!(m.uid_to_local(1001), 1001);
        assert_eq!(m.uid_to_server(0), 1000);
        assert_eq!(m.uid_to_server(1001), 1001);
        assert_eq!(m.gid_to_local(100), 0);
        assert_eq!(m.gid_to_server(0), 100);
        let same = IdMap {
            server_uid: 0,
            server_gid: 0,
            local_uid: 0,
            local_gid: 0,
        };
        assert_eq!((same.uid_to_local(0), same.uid_to_server(0)), (0, 0));
    }

    #[test]
    fn times_round_trip_before_and_after_the_epoch() {
        for t in [
            Time { secs: 0, nsecs: 0 },
            Time {
                secs: 1_700_000_000,
                nsecs: 123_456_789,
            },
            Time {
                secs: -5,
                nsecs: 250_000_000,
            },
            Time { secs: -1, nsecs: 0 },
        ] {
            assert_eq!(proto_time(system_time(t)), t, "{t:?}");
        }
    }

    #[test]
    fn errors_map_to_posix_errnos() {
        assert_eq!(
            errno(&ClientError::Status(Status::NotEmpty)).code(),
            libc::ENOTEMPTY
        );
        assert_eq!(
            errno(&ClientError::Status(Status::Access)).code(),
            libc::EACCES
        );
        assert_eq!(
            errno(&ClientError::Disconnected("gone".into())).code(),
            libc::EIO
        );
    }

    #[test]
    fn device_numbers_survive_both_encodings() {
        for (major, minor) in [(1u32, 3u32), (8, 1), (259, 70000), (4095, 0xfffff)] {
            let dev = libc::makedev(major, minor) as u64;
            assert_eq!(
                rdev_from_kernel(rdev_to_kernel(dev)),
                dev,
                "{major}:{minor}"
            );
        }
        // The kernel's encoding of 1:3 (/dev/null) is 0x103.
        assert_eq!(rdev_to_kernel(libc::makedev(1, 3) as u64), 0x103);
    }
}
