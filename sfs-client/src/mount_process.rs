//! `sfs-client mount` as a process: in the foreground until unmounted, or detached in a
//! session of its own that reports back once the export is mounted.
//!
//! Invariants:
//! 1. A detached mount is this program run again with the same arguments plus
//!    `--foreground --ready-fd N`, in a new session (no controlling terminal), its
//!    standard error appended to `--log` or discarded. [`detach`] returns only once the
//!    child has written to the pipe `N` either the mounted line (success) or `error: ...`,
//!    or has exited without a word (an error too): a caller that sees success can use the
//!    mount at once.
//! 2. The pipe's write end is close-on-exec everywhere but in that one child, and the
//!    child makes it close-on-exec again before it mounts, so helpers it starts
//!    (fusermount3) never hold it open and the parent sees end-of-file when the child
//!    reports or dies.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::fuse::{self, MountConfig, MountInfo};

/// The line a mount of `server` at `mountpoint` prints once it is ready: from which server
/// process, with which lease and identity mapping.
pub fn mounted_line(server: &str, mountpoint: &Path, i: &MountInfo) -> String {
    let who = if i.trusted {
        "trusted key: every local user acts as itself, checked by its own uid and groups"
            .to_string()
    } else {
        format!(
            "key not trusted: every operation acts as server uid {} (shown as {}), \
             other local users cannot use the mount",
            i.ids.server_uid, i.ids.local_uid
        )
    };
    format!(
        "sfs-client: mounted {server} at {} (server id {}, lease {} ms, {who}, auto-unmount {}, \
         readahead {})",
        mountpoint.display(),
        i.server_id,
        i.lease.as_millis(),
        if i.auto_unmount { "yes" } else { "no" },
        match &i.readahead_kb {
            Ok(kb) => format!("{kb} KiB"),
            Err(why) => format!("the kernel's default ({why})"),
        }
    )
}

/// Mounts and serves in this process until unmounted. The mounted line (or the error)
/// goes to `ready`, the detaching parent's pipe, when there is one; else the line goes to
/// `out` (standard output).
pub fn foreground(cfg: MountConfig, ready: Option<File>, out: &mut dyn Write) -> Result<()> {
    let mut ready = ready;
    if let Some(f) = &ready {
        // Close-on-exec again, so helpers (fusermount3) do not hold the parent's pipe
        // open after we report (invariant 2).
        // SAFETY: fcntl on a descriptor this process owns (`f` is borrowed for the call).
        unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    let (server, mountpoint) = (cfg.server.clone(), cfg.mountpoint.clone());
    let r = fuse::mount(cfg, |info| {
        let line = mounted_line(&server, &mountpoint, info);
        match ready.take() {
            Some(mut f) => {
                let _ = writeln!(f, "{line}");
            }
            None => {
                let _ = writeln!(out, "{line}").and_then(|()| out.flush());
            }
        }
    });
    if let (Err(e), Some(f)) = (&r, ready.as_mut()) {
        let _ = writeln!(f, "error: {e:#}");
    }
    r
}

/// Runs the mount in a detached child (invariant 1) started as `exe args... --foreground
/// --ready-fd N`, and returns the line to print once it reports the mount, with its pid;
/// the child's error otherwise.
pub fn detach(exe: &Path, args: &[OsString], log: Option<&Path>) -> Result<String> {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a valid two-element array for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error()).context("pipe");
    }
    // SAFETY: pipe2 just created both descriptors; each is owned once here.
    let (mut rd, wr) = unsafe {
        (
            File::from(OwnedFd::from_raw_fd(fds[0])),
            OwnedFd::from_raw_fd(fds[1]),
        )
    };
    let wfd = fds[1];
    let err: Stdio = match log {
        Some(p) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .with_context(|| format!("log file {}", p.display()))?
            .into(),
        None => Stdio::null(),
    };
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .args(["--foreground", "--ready-fd", &wfd.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err);
    // SAFETY: between fork and exec the child only calls async-signal-safe functions
    // (setsid, fcntl) on its own state.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            // Keep the write end open across exec (it is close-on-exec here).
            if libc::fcntl(wfd, libc::F_SETFD, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().context("starting the mount process")?;
    drop(wr);
    let mut msg = String::new();
    rd.read_to_string(&mut msg)
        .context("reading the mount process's report")?;
    let msg = msg.trim();
    if msg.starts_with("sfs-client: mounted") {
        return Ok(format!("{msg} (pid {})", child.id()));
    }
    if msg.is_empty() {
        bail!(
            "the mount process (pid {}) exited without mounting",
            child.id()
        );
    }
    bail!("{}", msg.trim_start_matches("error: "))
}
