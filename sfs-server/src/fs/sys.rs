//! Thin, safe wrappers over the `*at` system calls the export uses.
//!
//! Every call takes a directory descriptor and a single name component and never
//! follows a symlink in the last component (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`, or a
//! call that does not follow by definition: `unlinkat`, `renameat`, `linkat` without
//! `AT_SYMLINK_FOLLOW`, `readlinkat`, `symlinkat`, `mkdirat`). Errors are the OS's.

// `stat` field widths differ between targets; the casts are for portability.
#![allow(clippy::unnecessary_cast)]

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use sfs_proto::messages::Time;

fn cstr(s: &[u8]) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `openat(dir, name, flags | O_CLOEXEC, mode)`.
pub fn openat(dir: RawFd, name: &str, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    let c = cstr(name.as_bytes())?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call; `dir` is a
    // descriptor the caller owns.
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

/// `fstat(fd)`.
pub fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: `st` is plain old data; fstat fills it or fails.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid, writable stat buffer.
    check(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st)
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`: a symlink is stat'ed itself.
pub fn fstatat_nofollow(dir: RawFd, name: &str) -> io::Result<libc::stat> {
    let c = cstr(name.as_bytes())?;
    // SAFETY: plain old data, filled by fstatat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid string and buffer; AT_SYMLINK_NOFOLLOW stats a symlink itself.
    check(unsafe { libc::fstatat(dir, c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
    Ok(st)
}

/// `fsync(fd)`.
pub fn fsync(fd: RawFd) -> io::Result<()> {
    // SAFETY: fsync on a descriptor the caller owns.
    check(unsafe { libc::fsync(fd) })
}

/// `mkdirat(dir, name, mode)`.
pub fn mkdirat(dir: RawFd, name: &str, mode: u32) -> io::Result<()> {
    let c = cstr(name.as_bytes())?;
    // SAFETY: valid string; `dir` is owned by the caller.
    check(unsafe { libc::mkdirat(dir, c.as_ptr(), mode as libc::mode_t) })
}

/// `mknodat(dir, name, mode, rdev)`: a FIFO, socket or device node (`mode` has the
/// type bits).
pub fn mknodat(dir: RawFd, name: &str, mode: u32, rdev: u64) -> io::Result<()> {
    let c = cstr(name.as_bytes())?;
    // SAFETY: valid string; `dir` is owned by the caller.
    check(unsafe { libc::mknodat(dir, c.as_ptr(), mode as libc::mode_t, rdev as libc::dev_t) })
}

/// `chmod` of exactly the inode `fd` (an `O_PATH` descriptor) refers to, through
/// `/proc/self/fd`: for special files, which cannot be opened to `fchmod` them.
pub fn chmod_fd(fd: RawFd, mode: u32) -> io::Result<()> {
    let c = cstr(format!("/proc/self/fd/{fd}").as_bytes())?;
    // SAFETY: valid string; the magic link names the descriptor's inode.
    check(unsafe { libc::chmod(c.as_ptr(), mode as libc::mode_t) })
}

/// `symlinkat(target, dir, name)`: stores `target` as given.
pub fn symlinkat(target: &[u8], dir: RawFd, name: &str) -> io::Result<()> {
    let (t, c) = (cstr(target)?, cstr(name.as_bytes())?);
    // SAFETY: valid strings; `dir` is owned by the caller.
    check(unsafe { libc::symlinkat(t.as_ptr(), dir, c.as_ptr()) })
}

/// `readlinkat(dir, name)`: the link's target bytes.
pub fn readlinkat(dir: RawFd, name: &str) -> io::Result<Vec<u8>> {
    let c = cstr(name.as_bytes())?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    // SAFETY: `buf` is writable for its length; readlinkat writes at most that many
    // bytes and returns how many.
    let n = unsafe { libc::readlinkat(dir, c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// `linkat(from_dir, from, to_dir, to, 0)`: links a symlink itself, never its target.
pub fn linkat(from_dir: RawFd, from: &str, to_dir: RawFd, to: &str) -> io::Result<()> {
    let (a, b) = (cstr(from.as_bytes())?, cstr(to.as_bytes())?);
    // SAFETY: valid strings; both descriptors are owned by the caller.
    check(unsafe { libc::linkat(from_dir, a.as_ptr(), to_dir, b.as_ptr(), 0) })
}

/// `unlinkat(dir, name, flags)` (`AT_REMOVEDIR` for a directory).
pub fn unlinkat(dir: RawFd, name: &str, flags: i32) -> io::Result<()> {
    let c = cstr(name.as_bytes())?;
    // SAFETY: valid string; `dir` is owned by the caller.
    check(unsafe { libc::unlinkat(dir, c.as_ptr(), flags) })
}

/// `renameat(from_dir, from, to_dir, to)`.
pub fn renameat(from_dir: RawFd, from: &str, to_dir: RawFd, to: &str) -> io::Result<()> {
    let (a, b) = (cstr(from.as_bytes())?, cstr(to.as_bytes())?);
    // SAFETY: valid strings; both descriptors are owned by the caller.
    check(unsafe { libc::renameat(from_dir, a.as_ptr(), to_dir, b.as_ptr()) })
}

/// `fchmod(fd, mode)`.
pub fn fchmod(fd: RawFd, mode: u32) -> io::Result<()> {
    // SAFETY: fchmod on a descriptor the caller owns.
    check(unsafe { libc::fchmod(fd, mode as libc::mode_t) })
}

/// `fchown(fd, uid, gid)` (`u32::MAX` leaves one unchanged).
pub fn fchown(fd: RawFd, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: fchown on a descriptor the caller owns.
    check(unsafe { libc::fchown(fd, uid, gid) })
}

/// `fchownat(dir, name, uid, gid, AT_SYMLINK_NOFOLLOW)`.
pub fn lchownat(dir: RawFd, name: &str, uid: u32, gid: u32) -> io::Result<()> {
    let c = cstr(name.as_bytes())?;
    // SAFETY: valid string; `dir` is owned by the caller.
    check(unsafe { libc::fchownat(dir, c.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW) })
}

/// A `utimensat` time: `None` omits it, `Some(None)` is now, `Some(Some(t))` is `t`.
pub type UTime = Option<Option<Time>>;

fn timespec(t: UTime) -> libc::timespec {
    match t {
        None => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        Some(None) => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        },
        Some(Some(t)) => libc::timespec {
            tv_sec: t.secs as libc::time_t,
            tv_nsec: t.nsecs as _,
        },
    }
}

/// `futimens(fd, [atime, mtime])`.
pub fn futimens(fd: RawFd, atime: UTime, mtime: UTime) -> io::Result<()> {
    let ts = [timespec(atime), timespec(mtime)];
    // SAFETY: `ts` is a valid two-element array for futimens.
    check(unsafe { libc::futimens(fd, ts.as_ptr()) })
}

/// `utimensat(dir, name, [atime, mtime], AT_SYMLINK_NOFOLLOW)`.
pub fn lutimensat(dir: RawFd, name: &str, atime: UTime, mtime: UTime) -> io::Result<()> {
    let c = cstr(name.as_bytes())?;
    let ts = [timespec(atime), timespec(mtime)];
    // SAFETY: valid string and two-element array; `dir` is owned by the caller.
    check(unsafe { libc::utimensat(dir, c.as_ptr(), ts.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) })
}

/// `fstatvfs(fd)`.
pub fn fstatvfs(fd: RawFd) -> io::Result<libc::statvfs> {
    // SAFETY: plain old data, filled by fstatvfs.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid, writable buffer; `fd` is owned by the caller.
    check(unsafe { libc::fstatvfs(fd, &mut st) })?;
    Ok(st)
}

/// `geteuid() == 0`: the server may give files to the identities it acts as.
pub fn privileged() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
