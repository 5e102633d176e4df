//! Protocol messages after NFSv3: what a client asks ([`ClientMsg`], [`Request`]), what
//! the server answers ([`ServerMsg`], [`Reply`], [`Status`]) and the values they carry
//! (attributes, credentials, directory entries), with the protocol's limits.
//!
//! Invariants:
//! 1. The limits here ([`MAX_IO`], [`MAX_NAME`], [`MAX_TARGET`], [`MAX_FH`],
//!    [`MAX_DIR_ENTRIES`], [`MAX_GROUPS`]) are the protocol's: the codec refuses a message
//!    past one of them ([`crate::codec`]), so neither side ever holds a larger value that
//!    came from the network.
//! 2. A [`Status`] is an NFSv3 status and maps to one errno ([`Status::errno`]); OS errors
//!    map back to a status ([`Status::from_io`]), so the FUSE client returns the errno
//!    the server's file system gave.
//!
//! Version 2 added what a mounted file system needs: MKDIR, RMDIR, SYMLINK, READLINK,
//! LINK, STATFS, ACCESS, WHOAMI, and SETATTR of owner, group and both times.
//! Version 3 added special files (MKNOD, the FIFO, socket and device types and `rdev`
//! in attributes) and calls made for a caller's credentials ([`ClientMsg::CallAs`],
//! accepted only from a key the server trusts). The version is on the wire
//! ([`PROTO_VERSION`], see [`crate::codec`]).

use thiserror::Error;

/// Protocol version.
pub const PROTO_VERSION: u8 = 3;
/// Longest READ or WRITE payload.
pub const MAX_IO: usize = 512 * 1024;
/// Longest file name component.
pub const MAX_NAME: usize = 255;
/// Longest symbolic link target (Linux's `PATH_MAX` less the terminating NUL).
pub const MAX_TARGET: usize = 4095;
/// Longest file handle.
pub const MAX_FH: usize = 4096 + 64;
/// Most entries in one READDIR reply.
pub const MAX_DIR_ENTRIES: u32 = 4096;
/// Most supplementary groups a [`Cred`] carries (a caller in more is checked with the
/// first ones only, which can deny but never grant more than its real groups).
pub const MAX_GROUPS: usize = 32;

/// ACCESS bits (as `access(2)`): read.
pub const ACCESS_READ: u32 = 4;
/// ACCESS bits: write.
pub const ACCESS_WRITE: u32 = 2;
/// ACCESS bits: execute, or search a directory.
pub const ACCESS_EXEC: u32 = 1;

/// An opaque file handle: the server makes and checks it ([`crate::fh`]); a client only
/// stores it and sends it back.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Fh(pub Vec<u8>);

/// Stability of a WRITE (NFSv3 `stable_how`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stable {
    /// Data may sit in the page cache until COMMIT.
    Unstable = 0,
    /// Data (not necessarily metadata) on disk before the reply.
    DataSync = 1,
    /// Data and metadata on disk before the reply.
    FileSync = 2,
}

/// File type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileType {
    /// Regular file.
    Regular = 1,
    /// Directory.
    Directory = 2,
    /// Symbolic link (never followed).
    Symlink = 3,
    /// Anything the protocol has no type for.
    Other = 4,
    /// Named pipe.
    Fifo = 5,
    /// Character device.
    CharDev = 6,
    /// Block device.
    BlockDev = 7,
    /// Unix domain socket.
    Socket = 8,
}

/// A timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Time {
    /// Seconds since the epoch.
    pub secs: i64,
    /// Nanoseconds.
    pub nsecs: u32,
}

/// A time SETATTR sets (NFSv3 `set_atime`/`set_mtime`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetTime {
    /// The server's current time (`utimensat`'s `UTIME_NOW`).
    Now,
    /// This time.
    At(Time),
}

/// What SETATTR changes; `None` leaves a field as it is (NFSv3 `sattr3`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetAttrs {
    /// New permission bits.
    pub mode: Option<u32>,
    /// New owner (a server uid).
    pub uid: Option<u32>,
    /// New group (a server gid).
    pub gid: Option<u32>,
    /// New size (truncate or extend).
    pub size: Option<u64>,
    /// New access time.
    pub atime: Option<SetTime>,
    /// New modification time.
    pub mtime: Option<SetTime>,
}

/// File attributes (NFSv3 `fattr3` plus the owner's mapped user name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attr {
    /// Type.
    pub ftype: FileType,
    /// Permission bits.
    pub mode: u32,
    /// Link count.
    pub nlink: u32,
    /// Local owner uid.
    pub uid: u32,
    /// Local group.
    pub gid: u32,
    /// Owner's user name from the server's uid mapping table, empty when unmapped.
    pub owner: String,
    /// Size in bytes.
    pub size: u64,
    /// File id (inode number).
    pub fileid: u64,
    /// Access time.
    pub atime: Time,
    /// Modification time.
    pub mtime: Time,
    /// Change time.
    pub ctime: Time,
    /// Device number of a device file (`st_rdev`), 0 for anything else.
    pub rdev: u64,
}

/// The credentials of the local caller a trusted client acts for (NFS `AUTH_SYS`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cred {
    /// The caller's user id.
    pub uid: u32,
    /// The caller's primary group.
    pub gid: u32,
    /// Its supplementary groups (at most [`MAX_GROUPS`]).
    pub groups: Vec<u32>,
}

/// File system statistics (NFSv3 FSSTAT), in units of `frsize` bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FsStat {
    /// Preferred I/O size.
    pub bsize: u32,
    /// Fragment size: the unit of the block counts.
    pub frsize: u32,
    /// Total blocks.
    pub blocks: u64,
    /// Free blocks.
    pub bfree: u64,
    /// Free blocks for unprivileged users.
    pub bavail: u64,
    /// Total inodes.
    pub files: u64,
    /// Free inodes.
    pub ffree: u64,
    /// Longest name.
    pub namemax: u32,
}

/// One READDIR entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// Name in the directory.
    pub name: String,
    /// File id.
    pub fileid: u64,
    /// Type.
    pub ftype: FileType,
}

/// Requests (NFSv3 procedures plus ROOT, the mount step, and WHOAMI).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// The export's root handle.
    Root,
    /// Attributes (grants an attribute lease).
    GetAttr {
        /// File.
        fh: Fh,
    },
    /// Change attributes.
    SetAttr {
        /// File.
        fh: Fh,
        /// What to change.
        attrs: SetAttrs,
    },
    /// Name to handle (grants an attribute lease).
    Lookup {
        /// Directory.
        dir: Fh,
        /// Component name.
        name: String,
    },
    /// Which of the ACCESS bits `mask` the caller holds on a file.
    Access {
        /// File.
        fh: Fh,
        /// Bits asked about ([`ACCESS_READ`], [`ACCESS_WRITE`], [`ACCESS_EXEC`]).
        mask: u32,
    },
    /// A symbolic link's target (never followed by the server).
    ReadLink {
        /// The link.
        fh: Fh,
    },
    /// Read bytes.
    Read {
        /// File.
        fh: Fh,
        /// Offset.
        offset: u64,
        /// Bytes wanted (at most [`MAX_IO`]).
        count: u32,
    },
    /// Write bytes.
    Write {
        /// File.
        fh: Fh,
        /// Offset.
        offset: u64,
        /// Stability wanted.
        stable: Stable,
        /// Data (at most [`MAX_IO`]).
        data: Vec<u8>,
    },
    /// Flush earlier unstable writes to disk.
    Commit {
        /// File.
        fh: Fh,
    },
    /// Create a regular file.
    Create {
        /// Directory.
        dir: Fh,
        /// Name.
        name: String,
        /// Permission bits.
        mode: u32,
        /// Fail if it exists (else truncate nothing and return it).
        exclusive: bool,
    },
    /// Create a directory.
    Mkdir {
        /// Parent directory.
        dir: Fh,
        /// Name.
        name: String,
        /// Permission bits.
        mode: u32,
    },
    /// Create a special file: a FIFO, a socket, or (for root) a device.
    Mknod {
        /// Directory.
        dir: Fh,
        /// Name.
        name: String,
        /// [`FileType::Fifo`], [`FileType::Socket`], [`FileType::CharDev`] or
        /// [`FileType::BlockDev`].
        ftype: FileType,
        /// Permission bits.
        mode: u32,
        /// Device number of a device.
        rdev: u64,
    },
    /// Create a symbolic link holding `target` (stored as given, never resolved).
    Symlink {
        /// Directory.
        dir: Fh,
        /// Name.
        name: String,
        /// Target bytes (at most [`MAX_TARGET`], no NUL).
        target: Vec<u8>,
    },
    /// A new name for an existing non-directory (a hard link).
    Link {
        /// The file.
        fh: Fh,
        /// Directory of the new name.
        dir: Fh,
        /// The new name.
        name: String,
    },
    /// Remove a file.
    Remove {
        /// Directory.
        dir: Fh,
        /// Name.
        name: String,
    },
    /// Remove an empty directory.
    Rmdir {
        /// Parent directory.
        dir: Fh,
        /// Name.
        name: String,
    },
    /// Rename.
    Rename {
        /// Source directory.
        from_dir: Fh,
        /// Source name.
        from_name: String,
        /// Target directory.
        to_dir: Fh,
        /// Target name.
        to_name: String,
    },
    /// List a directory.
    ReadDir {
        /// Directory.
        dir: Fh,
        /// Entries to skip (0 = from the start).
        cookie: u64,
        /// Most entries wanted.
        max_entries: u32,
    },
    /// File system statistics of the export.
    StatFs {
        /// Any handle in the export.
        fh: Fh,
    },
    /// The local identity (uid mapping) this connection acts as.
    WhoAmI,
}

/// Successful replies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// A handle and its attributes (ROOT, LOOKUP, CREATE, MKDIR, SYMLINK, LINK).
    Handle {
        /// Handle.
        fh: Fh,
        /// Attributes.
        attr: Attr,
    },
    /// Attributes (GETATTR, SETATTR).
    Attr(Attr),
    /// READ.
    Read {
        /// End of file reached.
        eof: bool,
        /// Data.
        data: Vec<u8>,
    },
    /// WRITE.
    Write {
        /// Bytes written.
        count: u32,
        /// Stability achieved.
        committed: Stable,
        /// Write verifier (changes when the server restarts).
        verf: u64,
    },
    /// COMMIT.
    Commit {
        /// Write verifier.
        verf: u64,
    },
    /// REMOVE, RMDIR, RENAME.
    Done,
    /// READDIR.
    ReadDir {
        /// Entries.
        entries: Vec<DirEntry>,
        /// Cookie for the next call.
        cookie: u64,
        /// No more entries.
        eof: bool,
    },
    /// ACCESS: the bits of the asked mask that are granted.
    Access(u32),
    /// READLINK: the target.
    Target(Vec<u8>),
    /// STATFS.
    StatFs(FsStat),
    /// WHOAMI: the connection's mapped identity.
    Ident {
        /// Local uid.
        uid: u32,
        /// Local gid.
        gid: u32,
    },
}

/// Error statuses (NFSv3 `nfsstat3` subset).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum Status {
    /// EPERM.
    #[error("operation not permitted")]
    Perm = 1,
    /// ENOENT.
    #[error("no such file or directory")]
    NoEnt = 2,
    /// EIO and other local failures.
    #[error("I/O error")]
    Io = 5,
    /// EACCES.
    #[error("permission denied")]
    Access = 13,
    /// EEXIST.
    #[error("file exists")]
    Exist = 17,
    /// EXDEV: a hard link or rename across file systems.
    #[error("cross-device link")]
    XDev = 18,
    /// ENOTDIR.
    #[error("not a directory")]
    NotDir = 20,
    /// EISDIR.
    #[error("is a directory")]
    IsDir = 21,
    /// EINVAL, including names that would leave the export.
    #[error("invalid argument")]
    Inval = 22,
    /// EFBIG.
    #[error("file too large")]
    FBig = 27,
    /// ENOSPC.
    #[error("no space left")]
    NoSpc = 28,
    /// EROFS.
    #[error("read-only file system")]
    RoFs = 30,
    /// EMLINK.
    #[error("too many links")]
    MLink = 31,
    /// ENAMETOOLONG.
    #[error("name too long")]
    NameTooLong = 63,
    /// ENOTEMPTY.
    #[error("directory not empty")]
    NotEmpty = 66,
    /// EDQUOT.
    #[error("disk quota exceeded")]
    DQuot = 69,
    /// The handle no longer names a file.
    #[error("stale file handle")]
    Stale = 70,
    /// The handle is forged, altered or malformed.
    #[error("bad file handle")]
    BadHandle = 10001,
    /// The operation refers to a symlink or special file it will not follow.
    #[error("not supported on this file type")]
    NotSupp = 10004,
}

impl Status {
    /// Map an OS error.
    pub fn from_io(e: &std::io::Error) -> Status {
        match e.raw_os_error() {
            Some(libc::EPERM) => Status::Perm,
            Some(libc::ENOENT) => Status::NoEnt,
            Some(libc::EACCES) => Status::Access,
            Some(libc::EEXIST) => Status::Exist,
            Some(libc::EXDEV) => Status::XDev,
            Some(libc::ENOTDIR) => Status::NotDir,
            Some(libc::EISDIR) => Status::IsDir,
            Some(libc::EINVAL) => Status::Inval,
            Some(libc::EFBIG) => Status::FBig,
            Some(libc::ENOSPC) => Status::NoSpc,
            Some(libc::EROFS) => Status::RoFs,
            Some(libc::EMLINK) => Status::MLink,
            Some(libc::ENAMETOOLONG) => Status::NameTooLong,
            Some(libc::ENOTEMPTY) => Status::NotEmpty,
            Some(libc::EDQUOT) => Status::DQuot,
            Some(libc::ELOOP) => Status::NotSupp,
            Some(libc::EOPNOTSUPP) => Status::NotSupp,
            Some(libc::ESTALE) => Status::Stale,
            _ => Status::Io,
        }
    }

    /// The errno a POSIX file system returns for this status.
    pub fn errno(self) -> i32 {
        match self {
            Status::Perm => libc::EPERM,
            Status::NoEnt => libc::ENOENT,
            Status::Io => libc::EIO,
            Status::Access => libc::EACCES,
            Status::Exist => libc::EEXIST,
            Status::XDev => libc::EXDEV,
            Status::NotDir => libc::ENOTDIR,
            Status::IsDir => libc::EISDIR,
            Status::Inval => libc::EINVAL,
            Status::FBig => libc::EFBIG,
            Status::NoSpc => libc::ENOSPC,
            Status::RoFs => libc::EROFS,
            Status::MLink => libc::EMLINK,
            Status::NameTooLong => libc::ENAMETOOLONG,
            Status::NotEmpty => libc::ENOTEMPTY,
            Status::DQuot => libc::EDQUOT,
            Status::Stale | Status::BadHandle => libc::ESTALE,
            Status::NotSupp => libc::EOPNOTSUPP,
        }
    }
}

/// Client-to-server messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientMsg {
    /// A call.
    Call {
        /// Transaction id echoed in the reply.
        xid: u32,
        /// The request.
        req: Request,
    },
    /// A call made for a local caller's credentials: the server checks it as that
    /// caller, and refuses it (EPERM) unless the key is trusted.
    CallAs {
        /// Transaction id echoed in the reply.
        xid: u32,
        /// Who the call is for.
        cred: Cred,
        /// The request.
        req: Request,
    },
    /// Acknowledgement of an INVALIDATE callback.
    CallbackAck {
        /// The callback's id.
        cb_id: u64,
    },
}

/// Server-to-client messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerMsg {
    /// First sealed frame: authentication accepted.
    AuthOk {
        /// Attribute lease duration in milliseconds.
        lease_ms: u32,
        /// Identity of the serving process (its pid): tells N-copy servers apart.
        server_id: u32,
    },
    /// Reply to a call.
    Reply {
        /// The call's xid.
        xid: u32,
        /// Result.
        result: Result<Reply, Status>,
    },
    /// INVALIDATE callback: drop cached attributes and data of `fileid`, then ack.
    Invalidate {
        /// Callback id to acknowledge.
        cb_id: u64,
        /// File id whose lease is broken.
        fileid: u64,
    },
}
