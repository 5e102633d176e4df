//! The multiio benchmark through the kernel: N reader processes, each reading one file
//! (typically the same server file through N mounts, as the paper's N client machines
//! did), with the client's page cache dropped before every pass; and its write
//! counterpart: N writer processes, each writing its own file (through its own mount)
//! and `fsync`ing it at the end.
//!
//! Invariants:
//! 1. Each reader is its own process (`sfs-bench --reader-child`), so readers share no
//!    address space, as separate clients would not. All readers count only the bytes of
//!    reads that complete inside one common window `[start, end)`, after a warm-up.
//! 2. Before every pass a reader opens the file afresh and drops its cached pages
//!    (`posix_fadvise(POSIX_FADV_DONTNEED)`, which only touches the mount's cache, never
//!    the server's), so every byte counted came from the server.
//! 3. With a reference file, a reader compares eight random chunks of every pass and
//!    every pass's length with it; a difference or an I/O error is counted in `errors`.
//! 4. Server CPU is the user + system time of the server process and all its
//!    descendants (N-copy children, sshd's session processes) over the window, read
//!    from `/proc`; 1 MB is 10^6 bytes.
//! 5. Writers start together at one instant; a writer's time runs from there to the
//!    return of its `fsync` (so what the mount still buffered counts), and the result's
//!    time is the slowest writer's. Server CPU covers the same span. Every chunk a
//!    writer writes is distinct (its index in its first 8 bytes), and with a directory
//!    holding the server's copies, every written file is compared with what was
//!    written, byte for byte, after the measurement.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use rand::{Rng, SeedableRng};

/// Chunks verified per pass against the reference.
const CHECKS_PER_PASS: usize = 8;

/// What to run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ReadFilesConfig {
    /// One reader process per file.
    pub files: Vec<PathBuf>,
    /// Measured seconds.
    pub seconds: f64,
    /// Seconds of reading before the window opens.
    pub warmup: f64,
    /// Bytes per `read`.
    pub chunk: usize,
    /// Local copy of the file to verify samples against.
    pub verify_against: Option<PathBuf>,
    /// The server's process id, for its CPU time.
    pub server_pid: Option<u32>,
}

/// One reader's counts (a JSON line on its stdout).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ReaderReport {
    /// Bytes read inside the window.
    pub bytes: u64,
    /// Passes with bytes inside the window.
    pub passes: u64,
    /// I/O errors and verification failures.
    pub errors: u64,
    /// The first error, if any.
    pub first_error: Option<String>,
}

/// The benchmark's result: the fields of `sfs-bench --read-files --format json` beside its
/// `mode`, `config`, `label` and `env`, read back through this struct by the report.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ReadFilesResult {
    /// 10^6 bytes per second, all readers together.
    pub mbytes_per_sec: f64,
    /// Bytes counted.
    pub bytes: u64,
    /// Passes with bytes in the window.
    pub passes: u64,
    /// I/O errors and verification failures.
    pub errors: u64,
    /// The first error any reader saw.
    pub first_error: Option<String>,
    /// Reader processes.
    pub readers: usize,
    /// Length of the window.
    pub elapsed_secs: f64,
    /// Server CPU seconds (process tree) in the window.
    pub server_cpu_secs: Option<f64>,
    /// Server CPU milliseconds per MB read.
    pub server_cpu_ms_per_mb: Option<f64>,
    /// CPU seconds of the reader processes (they share the cores with the server).
    pub reader_cpu_secs: f64,
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Clock ticks (user + system) of `pid` and its descendants, from `/proc`.
pub fn tree_cpu_ticks(pid: u32) -> Result<u64> {
    let mut parent: HashMap<u32, u32> = HashMap::new();
    let mut ticks: HashMap<u32, u64> = HashMap::new();
    for e in std::fs::read_dir("/proc")? {
        let Ok(p) = e?.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // Fields after the parenthesised command name: state ppid ... utime(14) stime(15).
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() < 13 {
            continue;
        }
        let num = |i: usize| f[i].parse::<u64>().unwrap_or(0);
        parent.insert(p, num(1) as u32);
        ticks.insert(p, num(11) + num(12));
    }
    if !ticks.contains_key(&pid) {
        bail!("process {pid} is not running");
    }
    let in_tree = |mut p: u32| {
        for _ in 0..64 {
            if p == pid {
                return true;
            }
            match parent.get(&p) {
                Some(&q) if q != 0 && q != p => p = q,
                _ => return false,
            }
        }
        false
    };
    Ok(ticks
        .iter()
        .filter(|(p, _)| in_tree(**p))
        .map(|(_, t)| t)
        .sum())
}

fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// Run the readers (`exe` is this program, started with `--reader-child`).
pub fn run(cfg: &ReadFilesConfig, exe: &Path) -> Result<ReadFilesResult> {
    if cfg.files.is_empty() || cfg.seconds <= 0.0 || cfg.chunk == 0 {
        bail!("need at least one file, positive seconds and chunk");
    }
    let start = now_ns() + (cfg.warmup.max(0.0) * 1e9) as u128;
    let end = start + (cfg.seconds * 1e9) as u128;
    let mut children = Vec::new();
    for f in &cfg.files {
        let mut c = Command::new(exe);
        c.arg("--reader-child")
            .arg(f)
            .args(["--window", &format!("{start}:{end}")])
            .args(["--chunk", &cfg.chunk.to_string()])
            .stdout(Stdio::piped());
        if let Some(r) = &cfg.verify_against {
            c.arg("--verify-against").arg(r);
        }
        children.push(
            c.spawn()
                .with_context(|| format!("starting a reader of {}", f.display()))?,
        );
    }
    let sleep_until = |t: u128| {
        let n = now_ns();
        if t > n {
            std::thread::sleep(Duration::from_nanos((t - n) as u64));
        }
    };
    sleep_until(start);
    let cpu0 = cfg.server_pid.map(tree_cpu_ticks).transpose()?;
    sleep_until(end);
    let cpu1 = cfg.server_pid.map(tree_cpu_ticks).transpose()?;
    let mut r = ReadFilesResult {
        readers: children.len(),
        elapsed_secs: cfg.seconds,
        ..Default::default()
    };
    for mut c in children {
        let mut line = String::new();
        BufReader::new(c.stdout.take().ok_or_else(|| anyhow!("reader stdout"))?)
            .read_line(&mut line)?;
        let st = c.wait()?;
        let rep: ReaderReport = serde_json::from_str(line.trim())
            .map_err(|e| anyhow!("a reader ({st}) reported {line:?}: {e}"))?;
        r.bytes += rep.bytes;
        r.passes += rep.passes;
        r.errors += rep.errors;
        if r.first_error.is_none() {
            r.first_error = rep.first_error;
        }
    }
    r.reader_cpu_secs = edge::rusage::cpu_time(edge::rusage::Who::Children).as_secs_f64();
    r.mbytes_per_sec = r.bytes as f64 / 1e6 / cfg.seconds;
    if let (Some(a), Some(b)) = (cpu0, cpu1) {
        let secs = b.saturating_sub(a) as f64 / ticks_per_sec();
        r.server_cpu_secs = Some(secs);
        if r.bytes > 0 {
            r.server_cpu_ms_per_mb = Some(secs * 1e3 / (r.bytes as f64 / 1e6));
        }
    }
    Ok(r)
}

/// Drop the cached pages of an open file.
fn drop_cache(f: &std::fs::File) -> std::io::Result<()> {
    // SAFETY: posix_fadvise on a descriptor we own; it only advises the kernel.
    let e = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if e != 0 {
        return Err(std::io::Error::from_raw_os_error(e));
    }
    Ok(())
}

/// One pass over `file`: `(bytes counted in the window, error)`.
fn pass(
    file: &Path,
    (start, end): (u128, u128),
    buf: &mut [u8],
    reference: Option<&std::fs::File>,
    rng: &mut rand::rngs::SmallRng,
) -> (u64, Option<String>) {
    let f = match std::fs::File::open(file) {
        Ok(f) => f,
        Err(e) => return (0, Some(format!("open {}: {e}", file.display()))),
    };
    if let Err(e) = drop_cache(&f) {
        return (0, Some(format!("fadvise: {e}")));
    }
    let ref_len = reference.and_then(|r| r.metadata().ok()).map(|m| m.len());
    let chunks = ref_len.map_or(0, |l| l.div_ceil(buf.len() as u64));
    let checks: Vec<u64> = (0..CHECKS_PER_PASS)
        .filter(|_| chunks > 0)
        .map(|_| rng.gen_range(0..chunks))
        .collect();
    let mut refbuf = vec![0u8; if checks.is_empty() { 0 } else { buf.len() }];
    let (mut off, mut counted) = (0u64, 0u64);
    loop {
        let n = match f.read_at(buf, off) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => return (counted, Some(format!("read at {off}: {e}"))),
        };
        let t = now_ns();
        if t >= start && t < end {
            counted += n as u64;
        }
        if let (Some(r), true) = (reference, checks.contains(&(off / buf.len() as u64))) {
            let ok = r.read_exact_at(&mut refbuf[..n], off).is_ok() && refbuf[..n] == buf[..n];
            if !ok {
                return (
                    counted,
                    Some(format!("data differs from the reference at {off}")),
                );
            }
        }
        off += n as u64;
        if t >= end {
            return (counted, None);
        }
    }
    match ref_len {
        Some(l) if l != off => (counted, Some(format!("pass read {off} bytes of {l}"))),
        _ => (counted, None),
    }
}

/// The reader process: passes over `file` until the window closes.
pub fn reader_child(
    file: &Path,
    window: (u128, u128),
    chunk: usize,
    verify_against: Option<&Path>,
) -> ReaderReport {
    let mut rep = ReaderReport::default();
    let reference = match verify_against.map(std::fs::File::open).transpose() {
        Ok(r) => r,
        Err(e) => {
            rep.errors = 1;
            rep.first_error = Some(format!("reference: {e}"));
            return rep;
        }
    };
    let mut buf = vec![0u8; chunk];
    let mut rng = rand::rngs::SmallRng::seed_from_u64(std::process::id() as u64);
    while now_ns() < window.1 {
        let (n, err) = pass(file, window, &mut buf, reference.as_ref(), &mut rng);
        rep.bytes += n;
        if n > 0 {
            rep.passes += 1;
        }
        if let Some(e) = err {
            rep.errors += 1;
            rep.first_error.get_or_insert(e);
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    rep
}

/// What to write.
#[derive(Clone, Debug, serde::Serialize)]
pub struct WriteFilesConfig {
    /// One writer process per file (created or truncated).
    pub files: Vec<PathBuf>,
    /// Bytes each writer writes.
    pub bytes_per_file: u64,
    /// Bytes per `write`.
    pub chunk: usize,
    /// Where the server keeps the files (the same names): each is compared with what
    /// was written, after the measurement.
    pub verify_dir: Option<PathBuf>,
    /// The server's process id, for its CPU time.
    pub server_pid: Option<u32>,
}

/// One writer's counts (a JSON line on its stdout).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct WriterReport {
    /// Bytes written (all of them, or up to the first error).
    pub bytes: u64,
    /// When its `fsync` returned (ns since the epoch); 0 if it failed.
    pub done_ns: u128,
    /// The first error, if any.
    pub first_error: Option<String>,
}

/// The write benchmark's result: the fields of `sfs-bench --write-files --format json` beside
/// its `mode`, `config`, `label` and `env`, read back through this struct by the report.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct WriteFilesResult {
    /// 10^6 bytes per second, all writers together, `fsync` included.
    pub mbytes_per_sec: f64,
    /// Bytes written.
    pub bytes: u64,
    /// Writers that failed, and files that differ from what was written.
    pub errors: u64,
    /// The first error.
    pub first_error: Option<String>,
    /// Writer processes.
    pub writers: usize,
    /// From the common start to the last writer's `fsync`.
    pub elapsed_secs: f64,
    /// Server CPU seconds (process tree) over the same span.
    pub server_cpu_secs: Option<f64>,
    /// Server CPU milliseconds per MB written.
    pub server_cpu_ms_per_mb: Option<f64>,
    /// CPU seconds of the writer processes.
    pub writer_cpu_secs: f64,
}

/// Stamp a writer's random block as chunk `index`: the index in its first 8 bytes.
fn chunk_data(index: u64, block: &mut [u8]) {
    let n = block.len().min(8);
    block[..n].copy_from_slice(&index.to_le_bytes()[..n]);
}

/// A writer's random block (before [`chunk_data`] stamps it).
fn block_of(seed: u64, chunk: usize) -> Vec<u8> {
    let mut b = vec![0u8; chunk];
    rand::rngs::SmallRng::seed_from_u64(seed).fill(&mut b[..]);
    b
}

/// Does `file` hold exactly what writer `seed` wrote? `None` if so, else why not.
fn check_written(file: &Path, seed: u64, len: u64, chunk: usize) -> Option<String> {
    use std::io::Read;
    let mut f = match std::fs::File::open(file) {
        Ok(f) => std::io::BufReader::with_capacity(1 << 20, f),
        Err(e) => return Some(format!("open {}: {e}", file.display())),
    };
    let mut want = block_of(seed, chunk);
    let mut got = vec![0u8; chunk];
    let mut off = 0u64;
    while off < len {
        let n = chunk.min((len - off) as usize);
        chunk_data(off / chunk as u64, &mut want);
        if let Err(e) = f.read_exact(&mut got[..n]) {
            return Some(format!("{} at {off}: {e}", file.display()));
        }
        if got[..n] != want[..n] {
            return Some(format!("{} differs at {off}", file.display()));
        }
        off += n as u64;
    }
    match f.read(&mut got[..1]) {
        Ok(0) => None,
        Ok(_) => Some(format!("{} is longer than {len} bytes", file.display())),
        Err(e) => Some(format!("{} at {len}: {e}", file.display())),
    }
}

/// Run the writers (`exe` is this program, started with `--writer-child`); file `i`
/// gets seed `i`.
pub fn run_writes(cfg: &WriteFilesConfig, exe: &Path) -> Result<WriteFilesResult> {
    if cfg.files.is_empty() || cfg.bytes_per_file == 0 || cfg.chunk == 0 {
        bail!("need at least one file, positive bytes per file and chunk");
    }
    // Every writer is started (and has opened its file) before the common start.
    let start = now_ns() + 500_000_000;
    let mut children = Vec::new();
    for (i, f) in cfg.files.iter().enumerate() {
        let c = Command::new(exe)
            .arg("--writer-child")
            .arg(f)
            .args(["--window", &format!("{start}:{start}")])
            .args(["--chunk", &cfg.chunk.to_string()])
            .args(["--seed", &i.to_string()])
            .args(["--file-bytes", &cfg.bytes_per_file.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting a writer of {}", f.display()))?;
        children.push(c);
    }
    let n = now_ns();
    if start > n {
        std::thread::sleep(Duration::from_nanos((start - n) as u64));
    }
    let cpu0 = cfg.server_pid.map(tree_cpu_ticks).transpose()?;
    let mut r = WriteFilesResult {
        writers: children.len(),
        ..Default::default()
    };
    let mut last = start;
    for mut c in children {
        let mut line = String::new();
        BufReader::new(c.stdout.take().ok_or_else(|| anyhow!("writer stdout"))?)
            .read_line(&mut line)?;
        let st = c.wait()?;
        let rep: WriterReport = serde_json::from_str(line.trim())
            .map_err(|e| anyhow!("a writer ({st}) reported {line:?}: {e}"))?;
        r.bytes += rep.bytes;
        last = last.max(rep.done_ns);
        if let Some(e) = rep.first_error {
            r.errors += 1;
            r.first_error.get_or_insert(e);
        }
    }
    let cpu1 = cfg.server_pid.map(tree_cpu_ticks).transpose()?;
    r.writer_cpu_secs = edge::rusage::cpu_time(edge::rusage::Who::Children).as_secs_f64();
    r.elapsed_secs = (last - start) as f64 / 1e9;
    if r.errors == 0 && r.elapsed_secs > 0.0 {
        r.mbytes_per_sec = r.bytes as f64 / 1e6 / r.elapsed_secs;
    }
    if let (Some(a), Some(b)) = (cpu0, cpu1) {
        let secs = b.saturating_sub(a) as f64 / ticks_per_sec();
        r.server_cpu_secs = Some(secs);
        if r.bytes > 0 {
            r.server_cpu_ms_per_mb = Some(secs * 1e3 / (r.bytes as f64 / 1e6));
        }
    }
    if let Some(dir) = &cfg.verify_dir {
        for (i, f) in cfg.files.iter().enumerate() {
            let name = f
                .file_name()
                .ok_or_else(|| anyhow!("{} has no file name", f.display()))?;
            if let Some(e) = check_written(&dir.join(name), i as u64, cfg.bytes_per_file, cfg.chunk)
            {
                r.errors += 1;
                r.first_error.get_or_insert(e);
            }
        }
    }
    Ok(r)
}

/// The writer process: at `start` (ns since the epoch), write `len` bytes of seed
/// `seed`'s data to `file` in `chunk`-sized writes, then `fsync`.
pub fn writer_child(file: &Path, start: u128, len: u64, chunk: usize, seed: u64) -> WriterReport {
    use std::io::Write;
    let mut rep = WriterReport::default();
    let mut f = match std::fs::File::create(file) {
        Ok(f) => f,
        Err(e) => {
            rep.first_error = Some(format!("create {}: {e}", file.display()));
            return rep;
        }
    };
    let mut block = block_of(seed, chunk);
    let n = now_ns();
    if start > n {
        std::thread::sleep(Duration::from_nanos((start - n) as u64));
    }
    while rep.bytes < len {
        let n = chunk.min((len - rep.bytes) as usize);
        chunk_data(rep.bytes / chunk as u64, &mut block);
        if let Err(e) = f.write_all(&block[..n]) {
            rep.first_error = Some(format!("write at {}: {e}", rep.bytes));
            return rep;
        }
        rep.bytes += n as u64;
    }
    match f.sync_all() {
        Ok(()) => rep.done_ns = now_ns(),
        Err(e) => rep.first_error = Some(format!("fsync {}: {e}", file.display())),
    }
    rep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_counts_only_the_window_and_checks_the_reference() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("f");
        let bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&f, &bytes).unwrap();
        let r = std::fs::File::open(&f).unwrap();
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let mut buf = vec![0u8; 4096];
        let open = (0, u128::MAX);
        assert_eq!(
            pass(&f, open, &mut buf, Some(&r), &mut rng),
            (100_000, None)
        );
        let closed = (u128::MAX - 1, u128::MAX);
        assert_eq!(pass(&f, closed, &mut buf, Some(&r), &mut rng).0, 0);
        // A reference that differs everywhere is caught by the samples.
        let other = d.path().join("o");
        std::fs::write(&other, vec![7u8; 100_000]).unwrap();
        let o = std::fs::File::open(&other).unwrap();
        let (_, err) = pass(&f, open, &mut buf, Some(&o), &mut rng);
        assert!(err.unwrap().contains("differs"));
        let short = d.path().join("s");
        std::fs::write(&short, &bytes[..50_000]).unwrap();
        let (_, err) = pass(&short, open, &mut buf, Some(&r), &mut rng);
        assert!(err.is_some(), "a short file is an error");
    }

    #[test]
    fn the_process_tree_includes_children() {
        let me = std::process::id();
        let t0 = tree_cpu_ticks(me).unwrap();
        let mut child = Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"])
            .spawn()
            .unwrap();
        let mut seen = 0;
        while child.try_wait().unwrap().is_none() {
            seen = seen.max(tree_cpu_ticks(me).unwrap());
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            seen > t0,
            "the busy child's ticks count for its parent's tree"
        );
        assert!(tree_cpu_ticks(u32::MAX).is_err());
    }

    #[test]
    fn a_writer_writes_distinct_chunks_that_the_check_accepts() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("w");
        let rep = writer_child(&f, 0, 10_000, 4096, 3);
        assert_eq!((rep.bytes, rep.first_error.as_deref()), (10_000, None));
        assert!(rep.done_ns > 0);
        let bytes = std::fs::read(&f).unwrap();
        assert_eq!(bytes.len(), 10_000);
        assert_eq!(&bytes[4096..4104], &1u64.to_le_bytes());
        assert!(bytes[..4096] != bytes[4096..8192], "distinct chunks");
        assert_eq!(check_written(&f, 3, 10_000, 4096), None);
        assert!(check_written(&f, 4, 10_000, 4096)
            .unwrap()
            .contains("differs"));
        assert!(check_written(&f, 3, 9_999, 4096)
            .unwrap()
            .contains("longer"));
        assert!(check_written(&f, 3, 10_001, 4096).is_some(), "shorter");
        // Two chunks swapped are caught by their stamps.
        let mut swapped = bytes.clone();
        swapped[..4096].copy_from_slice(&bytes[4096..8192]);
        swapped[4096..8192].copy_from_slice(&bytes[..4096]);
        std::fs::write(&f, &swapped).unwrap();
        assert!(check_written(&f, 3, 10_000, 4096).is_some());
        let rep = writer_child(&d.path().join("no/such/dir"), 0, 10, 4, 0);
        assert!(rep.first_error.unwrap().contains("create"));
    }
}
