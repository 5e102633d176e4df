//! An fsx-style exerciser through the kernel: random writes (inside, across and past
//! the end), reads, memory-mapped reads, truncations (shrinking and growing), fsyncs,
//! closes and reopens, against an in-memory model, for many seeds.
//!
//! Two mounts of one server: the file is written through mount A and read through A
//! and through B (opened afresh each time), so every read through B also checks that
//! A's acknowledged writes reached B past both kernels' caches (leases and INVALIDATE).
//! After each seed the server's copy must equal the model.
//!
//! Seeds: `SFS_FSX_SEEDS` (`first-last`, default 1-24) and `SFS_FSX_OPS` operations per
//! seed (default 250); the seeds run are printed.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::time::Duration;

use rand::{Rng, SeedableRng};

use crate::util::mount::{can_run, Mount};
use crate::util::Env;

/// Largest file the exerciser makes.
const MAX_LEN: u64 = 1 << 20;

/// Seeds and operations per seed from the environment.
fn plan() -> (Vec<u64>, usize) {
    let seeds = std::env::var("SFS_FSX_SEEDS").unwrap_or_else(|_| "1-24".into());
    let (a, b) = seeds.split_once('-').unwrap_or((&seeds, &seeds));
    let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
    let ops = std::env::var("SFS_FSX_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(250);
    ((a..=b).collect(), ops)
}

/// One exerciser run.
struct Fsx<'a> {
    rng: rand::rngs::SmallRng,
    model: Vec<u8>,
    a: &'a Mount,
    b: &'a Mount,
    name: String,
    f: std::fs::File,
    log: Vec<String>,
}

impl Fsx<'_> {
    fn fail(&self, what: &str) -> ! {
        let tail = self
            .log
            .iter()
            .rev()
            .take(12)
            .rev()
            .cloned()
            .collect::<Vec<_>>();
        panic!(
            "{}: {what}\nlast operations:\n{}",
            self.name,
            tail.join("\n")
        );
    }

    fn check(&self, got: &[u8], off: u64, how: &str) {
        let end = (off as usize + got.len()).min(self.model.len());
        let want = &self.model[(off as usize).min(end)..end];
        if got != want {
            let at = got.iter().zip(want).position(|(x, y)| x != y);
            self.fail(&format!(
                "{how} at {off}: {} bytes read, {} expected, first difference at {at:?}",
                got.len(),
                want.len()
            ));
        }
    }

    fn range(&mut self, max_len: u64) -> (u64, usize) {
        let off = self.rng.gen_range(0..MAX_LEN);
        let len = self.rng.gen_range(1..=max_len).min(MAX_LEN - off) as usize;
        (off, len.max(1))
    }

    fn write(&mut self) {
        let big = self.rng.gen_bool(0.1);
        let (off, len) = self.range(if big { 300_000 } else { 40_000 });
        let mut buf = vec![0u8; len];
        self.rng.fill(&mut buf[..]);
        self.log.push(format!("write {off} +{len}"));
        if let Err(e) = self.f.write_all_at(&buf, off) {
            self.fail(&format!("write: {e}"));
        }
        let end = off as usize + len;
        if self.model.len() < end {
            self.model.resize(end, 0);
        }
        self.model[off as usize..end].copy_from_slice(&buf);
    }

    fn read_a(&mut self) {
        let (off, len) = self.range(100_000);
        self.log.push(format!("read A {off} +{len}"));
        let mut buf = vec![0u8; len];
        let mut n = 0;
        while n < len {
            match self.f.read_at(&mut buf[n..], off + n as u64) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) => self.fail(&format!("read: {e}")),
            }
        }
        self.check(&buf[..n], off, "read through A");
    }

    fn read_b(&mut self) {
        let (off, len) = self.range(100_000);
        self.log.push(format!("read B {off} +{len}"));
        let mut f = std::fs::File::open(self.b.path(&self.name)).unwrap();
        let size = f.metadata().unwrap().len();
        if size != self.model.len() as u64 {
            self.fail(&format!(
                "B sees size {size}, the model {}",
                self.model.len()
            ));
        }
        f.seek(SeekFrom::Start(off)).unwrap();
        let mut buf = Vec::new();
        f.take(len as u64).read_to_end(&mut buf).unwrap();
        self.check(&buf, off, "read through B");
    }

    fn map_read(&mut self) {
        let size = self.model.len();
        if size == 0 {
            return;
        }
        self.log.push(format!("mapread 0 +{size}"));
        let fd = std::os::fd::AsRawFd::as_raw_fd(&self.f);
        // SAFETY: a fresh read-only shared mapping of `size` bytes of an open file; it
        // is only read while the file keeps that size (nothing else changes it) and is
        // unmapped below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            self.fail(&format!("mmap: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: `p` maps `size` readable bytes (checked above).
        let got = unsafe { std::slice::from_raw_parts(p as *const u8, size) }.to_vec();
        // SAFETY: `p` and `size` are the mapping made above.
        unsafe { libc::munmap(p, size) };
        self.check(&got, 0, "mapped read through A");
    }

    fn truncate(&mut self) {
        let len = self.rng.gen_range(0..MAX_LEN);
        self.log.push(format!("truncate {len}"));
        if let Err(e) = self.f.set_len(len) {
            self.fail(&format!("truncate: {e}"));
        }
        self.model.resize(len as usize, 0);
    }

    fn reopen(&mut self) {
        self.log.push("close+open".into());
        self.f.flush().unwrap();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.a.path(&self.name))
            .unwrap();
        self.f = f;
    }

    fn step(&mut self) {
        match self.rng.gen_range(0..100) {
            0..=34 => self.write(),
            35..=54 => self.read_a(),
            55..=74 => self.read_b(),
            75..=79 => self.map_read(),
            80..=87 => self.truncate(),
            88..=93 => {
                self.log.push("fsync".into());
                self.f.sync_all().unwrap();
            }
            _ => self.reopen(),
        }
    }
}

#[test]
fn fsx_random_operations_match_a_model() {
    if !can_run("fsx_random_operations_match_a_model", &[]) {
        return;
    }
    let (seeds, ops) = plan();
    eprintln!(
        "fsx: seeds {}-{}, {ops} operations each",
        seeds[0],
        seeds[seeds.len() - 1]
    );
    let env = Env::new();
    let srv = env.default_server();
    let addr = srv.local_addr().to_string();
    let a = Mount::new(&addr, "alice", &env.key_file("alice"), &[]);
    let b = Mount::new(&addr, "bob", &env.key_file("bob"), &[]);
    let t = std::time::Instant::now();
    for seed in &seeds {
        let name = format!("fsx-{seed}.dat");
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(a.path(&name))
            .unwrap();
        let mut x = Fsx {
            rng: rand::rngs::SmallRng::seed_from_u64(*seed),
            model: Vec::new(),
            a: &a,
            b: &b,
            name: name.clone(),
            f,
            log: Vec::new(),
        };
        for _ in 0..ops {
            x.step();
        }
        x.reopen();
        let on_server = std::fs::read(env.export.join(&name)).unwrap();
        if on_server != x.model {
            x.fail(&format!(
                "the server holds {} bytes, the model {}",
                on_server.len(),
                x.model.len()
            ));
        }
    }
    eprintln!(
        "fsx: {} seeds x {ops} operations passed in {:.1} s",
        seeds.len(),
        t.elapsed().as_secs_f64()
    );
    assert!(t.elapsed() < Duration::from_secs(600));
}
