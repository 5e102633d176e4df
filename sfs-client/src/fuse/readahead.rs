//! The mount's readahead window: raised to one server READ ([`MAX_IO`]) so that a
//! sequential reader's pages come in kernel requests of that size, not the kernel's
//! default 128 KiB.
//!
//! Invariants:
//! 1. The kernel offers at most its default window (128 KiB) in FUSE INIT and never
//!    takes more from the reply; the window is the mount's backing device's
//!    `read_ahead_kb` in sysfs, which only root may raise. Without the right, the
//!    mount keeps the default and says so; nothing else changes.
//! 2. The device is found in `/proc/self/mountinfo`, never by `stat` of the mount
//!    point: a `stat` would be a request to this very file system, which may not be
//!    serving yet.
//!
//! Measured 2026-12-06 on a 2-vCPU VM shared with two compiling builds (multiio: 16
//! mounts of one colored server, 16 readers, 64 MB file, page cache dropped each pass;
//! windows of 128 and 512 KiB set on the same mounts, interleaved A B x3): 488/493/480
//! -> 562/547/543 MB/s (+12%), server CPU 1.57 -> 1.49 ms/MB. A window of two READs
//! (1 MiB) was slower, the same way: 438/401/376 -> 367/365/367 MB/s, 0.99 -> 1.09 ms/MB.

use std::path::Path;

use sfs_proto::messages::MAX_IO;

/// The window this mount asks for, in KiB.
pub(super) const WANT_KB: u64 = (MAX_IO / 1024) as u64;

/// The `MAJOR:MINOR` of the file system mounted at `mountpoint` (the last mount
/// there), from a `/proc/self/mountinfo` text.
fn device_of(mountinfo: &str, mountpoint: &Path) -> Option<String> {
    let want = mountpoint.to_str()?;
    mountinfo.lines().rev().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        // ID PARENT MAJOR:MINOR ROOT MOUNTPOINT ...; the mount point has spaces,
        // tabs, newlines and backslashes as octal escapes.
        (f.len() > 4 && unescape(f[4]) == want).then(|| f[2].to_string())
    })
}

/// Undo mountinfo's octal escapes (`\040` is a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], oct) {
            (b'\\', Some(d)) => {
                out.push(d.iter().fold(0u8, |v, c| v.wrapping_mul(8) + (c - b'0')));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Raise the readahead window of the mount at `mountpoint` (absolute) to [`WANT_KB`]:
/// the window in force afterwards, in KiB, or why it could not be read or set.
pub(super) fn raise(mountpoint: &Path) -> Result<u64, String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("reading /proc/self/mountinfo: {e}"))?;
    let dev = device_of(&info, mountpoint)
        .ok_or_else(|| format!("{} is not in /proc/self/mountinfo", mountpoint.display()))?;
    let file = format!("/sys/class/bdi/{dev}/read_ahead_kb");
    let now: u64 = std::fs::read_to_string(&file)
        .map_err(|e| format!("reading {file}: {e}"))?
        .trim()
        .parse()
        .map_err(|e| format!("{file}: {e}"))?;
    if now >= WANT_KB {
        return Ok(now);
    }
    match std::fs::write(&file, WANT_KB.to_string()) {
        Ok(()) => Ok(WANT_KB),
        Err(e) => Err(format!("kept {now} KiB: writing {file}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_device_is_the_last_mount_at_the_path() {
        let info = "22 1 0:21 / /proc rw - proc proc rw\n\
                    90 22 0:50 / /tmp/a\\040b rw - fuse.sfs sfs:x rw\n\
                    91 22 0:51 / /tmp/m rw - fuse.sfs sfs:x rw\n\
                    92 91 0:52 / /tmp/m rw - fuse.sfs sfs:y rw\n";
        assert_eq!(
            device_of(info, Path::new("/tmp/m")).as_deref(),
            Some("0:52")
        );
        assert_eq!(
            device_of(info, Path::new("/tmp/a b")).as_deref(),
            Some("0:50")
        );
        assert_eq!(device_of(info, Path::new("/tmp/a")), None);
        assert_eq!(unescape("a\\134b\\011"), "a\\b\t");
        assert_eq!(unescape("end\\04"), "end\\04", "a short escape is kept");
    }
}
