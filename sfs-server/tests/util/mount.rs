//! Mounts for the tests that go through the kernel: when they can run, the tools they
//! need, and a guard that always unmounts.
//!
//! Rules: a test skips (printing `SKIPPED: ...`) only when `/dev/fuse` is missing or
//! mounting is not permitted here, and never under CI (`CI` set to anything but empty
//! or `false`), where that fails the test instead; a missing program is installed with
//! apt-get when we are root, and under CI a program that cannot be installed fails the
//! test too. Every mount point is a fresh temporary directory, and
//! [`Mount`]'s drop unmounts it whatever happened (SIGTERM to the mount process, then
//! a lazy unmount), so no test leaves a mount behind.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Is this a CI run (`CI` set, non-empty and not `false`), where a test that cannot
/// run fails instead of skipping?
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false")
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

fn have(bin: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {bin}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// apt-get runs one at a time (tests run in parallel threads).
static APT: Mutex<()> = Mutex::new(());

/// Make sure `bin` (from Debian package `package`) is installed. `Err` is the skip
/// message; under CI a missing program panics instead.
pub fn tool(bin: &str, package: &str) -> Result<(), String> {
    if have(bin) {
        return Ok(());
    }
    if euid() == 0 {
        let _g = APT.lock().unwrap_or_else(|e| e.into_inner());
        if !have(bin) {
            let env = [("DEBIAN_FRONTEND", "noninteractive")];
            let lock = "DPkg::Lock::Timeout=300";
            let _ = Command::new("apt-get")
                .args(["-o", lock, "update", "-qq"])
                .envs(env)
                .status();
            let _ = Command::new("apt-get")
                .args(["-o", lock, "install", "-y", "-qq", package])
                .envs(env)
                .stdout(Stdio::null())
                .status();
        }
    }
    if have(bin) {
        return Ok(());
    }
    let msg = format!("{bin} is not installed and could not be (apt-get install {package})");
    assert!(!ci(), "under CI=true: {msg}");
    Err(msg)
}

/// Can this process mount FUSE file systems? `Err` is why not. `fusermount3` (package
/// fuse3) is installed when missing: mounts use it for `auto_unmount`, and non-root
/// users need it to mount at all.
pub fn fuse() -> Result<(), String> {
    // SFS_TEST_FUSE_DEV stands in for /dev/fuse in the test of these rules.
    let path = std::env::var("SFS_TEST_FUSE_DEV").unwrap_or_else(|_| "/dev/fuse".into());
    let dev = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path);
    if let Err(e) = dev {
        return Err(format!("{path} cannot be opened: {e}"));
    }
    tool("fusermount3", "fuse3")?;
    if euid() == 0 && !cap_sys_admin() {
        return Err("root without CAP_SYS_ADMIN: mounting is not permitted here".into());
    }
    Ok(())
}

/// Does this process hold CAP_SYS_ADMIN (bit 21 of CapEff)?
fn cap_sys_admin() -> bool {
    let st = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    st.lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .is_some_and(|c| c & (1 << 21) != 0)
}

/// Check [`fuse`] and the tools; print `SKIPPED` and return false when the test
/// cannot run here (under CI, panic instead).
pub fn can_run(test: &str, tools: &[(&str, &str)]) -> bool {
    let r = fuse().and_then(|()| tools.iter().try_for_each(|(b, p)| tool(b, p)));
    match r {
        Ok(()) => true,
        Err(why) => {
            assert!(!ci(), "under CI, {test} cannot run: {why}");
            eprintln!("SKIPPED {test}: {why}");
            false
        }
    }
}

/// Is `dir` a mount point (from /proc/self/mountinfo)?
pub fn is_mounted(dir: &Path) -> bool {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines().any(|l| {
        l.split_whitespace()
            .nth(4)
            .is_some_and(|m| Path::new(m) == dir)
    })
}

/// A mounted export: `sfs-client ... mount DIR --foreground` as a child process.
pub struct Mount {
    /// The mount point.
    pub dir: PathBuf,
    /// The serving process's id the mount connected to.
    pub server_id: u32,
    /// The mount process.
    pub child: Child,
    /// Holds the mount point's parent directory.
    _tmp: tempfile::TempDir,
}

impl Mount {
    /// Mount `addr` as `user` (key in `key_file`) with extra `mount` options.
    pub fn new(addr: &str, user: &str, key_file: &Path, extra: &[&str]) -> Mount {
        Self::try_new(addr, user, key_file, extra).unwrap_or_else(|e| panic!("{e}"))
    }

    /// As [`Mount::new`], returning the mount process's error.
    pub fn try_new(
        addr: &str,
        user: &str,
        key_file: &Path,
        extra: &[&str],
    ) -> Result<Mount, String> {
        let tmp = tempfile::Builder::new()
            .prefix("sfs-mount-")
            .tempdir()
            .unwrap();
        let dir = tmp.path().join("mnt");
        std::fs::create_dir(&dir).unwrap();
        let mut cmd = Command::new(crate::util::bins::client());
        cmd.args(["--server", addr, "--user", user, "--key-file"])
            .arg(key_file)
            .arg("mount")
            .arg(&dir)
            .arg("--foreground")
            .args(extra);
        // Test defaults, short enough that a failure shows quickly.
        for (opt, v) in [("--timeout", "20"), ("--reconnect", "3")] {
            if !extra.contains(&opt) {
                cmd.args([opt, v]);
            }
        }
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        // SAFETY: prctl in the forked child before exec only sets its parent-death
        // signal: if the test process dies, the mount process unmounts.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let mut child = cmd.spawn().unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let server_id = line
            .split("server id ")
            .nth(1)
            .and_then(|r| r.split([',', ')']).next())
            .and_then(|n| n.trim().parse().ok());
        let mut m = Mount {
            dir,
            server_id: server_id.unwrap_or(0),
            child,
            _tmp: tmp,
        };
        if server_id.is_none() || !is_mounted(&m.dir) {
            let _ = m.child.kill();
            let _ = m.child.wait();
            let mut err = String::new();
            if let Some(mut e) = m.child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            return Err(format!("mount failed: {line:?} {err}"));
        }
        Ok(m)
    }

    /// A path inside the mount.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Send `sig` to the mount process and wait (bounded) for it to exit: its status.
    pub fn signal_and_wait(
        &mut self,
        sig: i32,
        within: Duration,
    ) -> Option<std::process::ExitStatus> {
        // SAFETY: kill with the pid of a child we spawned and have not reaped.
        unsafe { libc::kill(self.child.id() as i32, sig) };
        wait_exit(&mut self.child, within)
    }
}

/// Wait up to `within` for `child` to exit.
pub fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let t = Instant::now();
    while t.elapsed() < within {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Lazily unmount `dir` (root: umount2; else fusermount3).
pub fn force_unmount(dir: &Path) {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is a valid path; MNT_DETACH cannot leave anything half-done.
    let r = unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    if r != 0 {
        let _ = Command::new("fusermount3")
            .args(["-u", "-z", "-q"])
            .arg(dir)
            .status();
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if self
            .signal_and_wait(libc::SIGTERM, Duration::from_secs(10))
            .is_none()
        {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if is_mounted(&self.dir) {
            force_unmount(&self.dir);
        }
        assert!(
            std::thread::panicking() || !is_mounted(&self.dir),
            "{} is still mounted",
            self.dir.display()
        );
    }
}

/// Run `cmd` with a time limit (killed past it); its output.
pub fn run_for(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let (mut so, mut se) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let a = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut so, &mut v);
        v
    });
    let b = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut se, &mut v);
        v
    });
    let status = match wait_exit(&mut child, limit) {
        Some(s) => s,
        None => {
            let _ = child.kill();
            let s = child.wait().unwrap();
            panic!("{cmd:?} did not finish within {limit:?} ({s})");
        }
    };
    Output {
        status,
        stdout: a.join().unwrap(),
        stderr: b.join().unwrap(),
    }
}

/// Run `sh -c script` in `dir` (time limit `limit`); its stdout, asserting success.
pub fn sh(dir: &Path, script: &str, limit: Duration) -> String {
    let out = run_for(
        Command::new("sh").args(["-ec", script]).current_dir(dir),
        limit,
    );
    assert!(
        out.status.success(),
        "sh -c {script:?} in {} failed ({}):\n{}\n{}",
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
