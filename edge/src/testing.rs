//! Tests that need something this machine may lack (root, a font, `ip`).
//!
//! Such a test calls [`skip`] and returns. Outside CI it prints `SKIPPED <test>: <why>` (so
//! a passing run says what it did not check). Under CI (`CI=true`), which runs as root on
//! Debian and installs what the suite needs, a missing prerequisite is a defect, and `skip`
//! panics instead.
//!
//! The rest measures a server process from outside, as its tests need: its open-file limit,
//! its descriptors, its memory.

/// Runs the program `bin` with `args` and stdin closed, as a user would from a shell, and
/// returns its exit status and output (tests of the command lines).
pub fn run_program(bin: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(bin)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {bin}: {e}"))
}

/// The first line of a program's standard error, where its one-line error goes (empty when
/// it wrote nothing).
pub fn first_stderr_line(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

/// True when running under CI (`CI=true` or `CI=1`).
pub fn in_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true") | Ok("1"))
}

/// Reports that `test` cannot run because of `why`: prints SKIPPED, or panics under CI.
#[track_caller]
pub fn skip(test: &str, why: &str) {
    if in_ci() {
        panic!("{test} cannot run under CI: {why}");
    }
    eprintln!("SKIPPED {test}: {why}");
}

/// Sets the soft open-file limit of process `pid` (prlimit(2); the hard limit is kept) and
/// returns the soft limit it had: tests that drive a server out of descriptors.
#[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every target
pub fn set_nofile(pid: u32, soft: u64) -> std::io::Result<u64> {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: prlimit with a null new limit only writes the old one into `old`, ours.
    if unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            std::ptr::null(),
            &mut old,
        )
    } != 0
    {
        return Err(std::io::Error::last_os_error());
    }
    let new = libc::rlimit {
        rlim_cur: soft.min(old.rlim_max as u64) as libc::rlim_t,
        rlim_max: old.rlim_max,
    };
    // SAFETY: prlimit reads `new`, initialised above, and writes nothing (null old limit).
    if unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            &new,
            std::ptr::null_mut(),
        )
    } != 0
    {
        return Err(std::io::Error::last_os_error());
    }
    Ok(old.rlim_cur as u64)
}

/// Descriptors process `pid` has open (entries of `/proc/PID/fd`).
pub fn open_fds(pid: u32) -> std::io::Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

/// Waits until process `pid` has at least `at_least` descriptors open and the count has not
/// changed for 300 ms (a server done accepting what it can), at most `timeout`; returns the
/// count.
pub fn wait_fds_settle(
    pid: u32,
    at_least: usize,
    timeout: std::time::Duration,
) -> std::io::Result<usize> {
    use std::time::{Duration, Instant};
    let deadline = Instant::now() + timeout;
    let (mut last, mut since) = (open_fds(pid)?, Instant::now());
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let n = open_fds(pid)?;
        if n != last {
            (last, since) = (n, Instant::now());
        } else if n >= at_least && since.elapsed() >= Duration::from_millis(300) {
            return Ok(n);
        }
        if Instant::now() > deadline {
            return Err(std::io::Error::other(format!(
                "descriptors of {pid} did not settle at {at_least} or more (last {last})"
            )));
        }
    }
}

/// Resident anonymous memory (heap, stacks) of process `pid` in KiB, `RssAnon` of
/// `/proc/PID/status`: what a server allocates for its clients, without the binary and the
/// shared libraries.
pub fn rss_anon_kib(pid: u32) -> std::io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no RssAnon in /proc/{pid}/status")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_measured() {
        let me = std::process::id();
        let before = open_fds(me).unwrap();
        let f = std::fs::File::open("/proc/self/status").unwrap();
        assert!(open_fds(me).unwrap() > before.saturating_sub(1));
        drop(f);
        let kib = rss_anon_kib(me).unwrap();
        let v = vec![1u8; 8 << 20];
        assert!(rss_anon_kib(me).unwrap() >= kib + 4096, "8 MiB touched");
        drop(v);
        // The limit is restored as it was.
        let old = set_nofile(me, 512).unwrap();
        assert_eq!(set_nofile(me, old).unwrap(), 512);
    }
}
