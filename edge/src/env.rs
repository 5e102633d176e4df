//! The environment a result was measured on: one schema for every JSON the project writes.
//!
//! The microbenchmarks (`env` of their JSON), the load injector (`env`, and each slave's),
//! `sfs-bench` (`env`) and `scripts/reproduce.sh` (`env.json`, through the `results-env`
//! binary) all write an [`Env`]. The fields, their types and which are optional are
//! documented in `results/README.md`; [`SCHEMA`] changes when a field changes meaning.
//!
//! Invariants:
//! 1. Fields that a program cannot know are absent (`None`, not serialised), never guessed:
//!    a tree that is not a git checkout has no `commit`, a tool that counts no cycles has no
//!    `cycles_per_sec`.
//! 2. The machine fields are read from the running system (`/proc`, the scheduler's CPU
//!    mask); `rustc` is the compiler that built the program, recorded at build time.
//! 3. The run fields ([`RunParams`]) are filled by whoever knows them (the script that drives
//!    an evaluation); the schema is the same for every writer.

use std::process::Command;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Version of the schema below.
pub const SCHEMA: u32 = 1;

/// Where and with what a result was made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Env {
    /// [`SCHEMA`] of the writer.
    pub schema: u32,
    /// The program that wrote the result and its version, e.g. `load-injector 0.1.0`.
    pub tool: String,
    /// When the environment was collected, UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub date: String,
    /// `git rev-parse HEAD` of the working directory (40 hex digits), absent outside a
    /// checkout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Tracked files differ from `commit` (`git status --porcelain --untracked-files=no`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dirty: Option<bool>,
    /// Host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// CPU model name from `/proc/cpuinfo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_model: Option<String>,
    /// CPUs this process may run on.
    pub cores: usize,
    /// Kernel release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    /// `rustc --version` of the compiler that built the tool.
    pub rustc: String,
    /// Time-stamp counter rate, for tools that report cycles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cycles_per_sec: Option<f64>,
    /// What the run was asked to do.
    #[serde(flatten)]
    pub run: RunParams,
}

/// The parameters of an evaluation run (`scripts/reproduce.sh`); each absent unless set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct RunParams {
    /// `quick` or `full`.
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Measured seconds per run.
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// Runs per configuration.
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs: Option<u32>,
    /// Warm-up seconds per run.
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<f64>,
    /// The client counts stepped through, space separated (e.g. `50 200 400`).
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients: Option<String>,
    /// Server worker threads (the largest count of the scaling steps).
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<usize>,
    /// CPUs the servers run on (a CPU list such as `0-3,8` on the command line).
    #[arg(long, value_parser = parse_cpu_list)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cpus: Option<CpuList>,
    /// CPUs the clients and load injectors run on.
    #[arg(long, value_parser = parse_cpu_list)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cpus: Option<CpuList>,
    /// `shared` (servers and clients on the same CPUs) or `disjoint` (on separate ones).
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_split: Option<String>,
    /// More server workers than server CPUs.
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oversubscribed: Option<bool>,
    /// The worker counts of the scaling steps (`1,2,4` on the command line).
    #[arg(long, value_parser = parse_cpu_list)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling_workers: Option<WorkerCounts>,
    /// `sfs-bench` clients.
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sfs_clients: Option<usize>,
    /// Size of the file the SFS benchmark reads, MB.
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sfs_file_mb: Option<u64>,
    /// Parallel OpenSSH sftp sessions.
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sftp_clients: Option<usize>,
    /// Reads of the file per sftp session.
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sftp_gets_per_session: Option<u32>,
    /// Seconds per run of `microbenches paper-tables`.
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paper_tables_seconds: Option<f64>,
    /// Repeats of `microbenches paper-tables`.
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paper_tables_repeat: Option<u32>,
    /// `nginx -v` of the peer.
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nginx: Option<String>,
    /// `apache2 -v` of the peer.
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apache: Option<String>,
    /// `ssh -V` of the sftp peer.
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openssh: Option<String>,
    /// Reader processes of the through-the-kernel SFS benchmark (one FUSE or sshfs mount each).
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sfs_mount_readers: Option<usize>,
    /// `sshfs --version` of the mount peer.
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sshfs: Option<String>,
    /// The one-minute load average when the run started (`/proc/loadavg`): the comparison
    /// weighs absolute figures of a loaded machine accordingly.
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loadavg_start: Option<f64>,
    /// How the samples of repeated experiments were interleaved (see `samples/order.jsonl`).
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interleaving: Option<String>,
}

impl RunParams {
    /// The same with empty strings (e.g. the version line of a peer that is not installed)
    /// left out, as absent.
    pub fn without_empty(mut self) -> RunParams {
        for f in [
            &mut self.mode,
            &mut self.clients,
            &mut self.cpu_split,
            &mut self.nginx,
            &mut self.apache,
            &mut self.openssh,
            &mut self.sshfs,
            &mut self.interleaving,
        ] {
            if f.as_deref().is_some_and(|s| s.trim().is_empty()) {
                *f = None;
            }
        }
        self
    }
}

/// CPU numbers, in the order given.
pub type CpuList = Vec<usize>;

/// Worker counts, in the order given (parsed as a CPU list is: `1,2,4`). An alias, so that
/// clap takes the option's value as one list instead of repeated values.
pub type WorkerCounts = Vec<usize>;

/// Parses a Linux CPU list: `0-3,8`, `1`, `0,2,4`.
pub fn parse_cpu_list(s: &str) -> Result<CpuList, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let num = |x: &str| {
            x.trim()
                .parse::<usize>()
                .map_err(|_| format!("bad CPU number {x:?} in {s:?}"))
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(format!("bad CPU range {part:?} in {s:?}"));
                }
                out.extend(a..=b);
            }
            None => out.push(num(part)?),
        }
    }
    if out.is_empty() {
        return Err(format!("empty CPU list {s:?}"));
    }
    Ok(out)
}

fn cmd(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn read_trim(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The first `model name` of a `/proc/cpuinfo` text.
pub fn cpu_model_of(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// CPUs this process may run on.
pub fn available_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

impl Env {
    /// The environment of this host and working directory, for `tool` (name and version),
    /// with no run parameters and no cycle rate.
    pub fn collect(tool: &str) -> Env {
        let commit = cmd("git", &["rev-parse", "HEAD"]).filter(|s| !s.is_empty());
        let dirty = commit.as_ref().and(
            cmd("git", &["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty()),
        );
        Env {
            schema: SCHEMA,
            tool: tool.to_string(),
            date: crate::time::Utc::from_system(SystemTime::now()).iso8601(),
            commit,
            dirty,
            hostname: read_trim("/proc/sys/kernel/hostname"),
            cpu_model: std::fs::read_to_string("/proc/cpuinfo")
                .ok()
                .and_then(|s| cpu_model_of(&s)),
            cores: available_cores(),
            kernel: read_trim("/proc/sys/kernel/osrelease"),
            rustc: env!("EDGE_RUSTC").to_string(),
            cycles_per_sec: None,
            run: RunParams::default(),
        }
    }

    /// The commit abbreviated to 12 hex digits (`unknown` outside a checkout), with
    /// `-dirty` when tracked files were modified: for headers and tables.
    pub fn short_commit(&self) -> String {
        match &self.commit {
            None => "unknown".into(),
            Some(c) => {
                let mut s: String = c.chars().take(12).collect();
                if self.dirty == Some(true) {
                    s.push_str("-dirty");
                }
                s
            }
        }
    }
}

impl Env {
    /// One line for the header of a table: commit, CPU, cores, kernel, host, compiler.
    pub fn summary(&self) -> String {
        let or = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
        format!(
            "commit {} | {} | {} cores | kernel {} | host {} | {}",
            self.short_commit(),
            or(&self.cpu_model),
            self.cores,
            or(&self.kernel),
            or(&self.hostname),
            self.rustc
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_this_machine() {
        let e = Env::collect("edge-test 1");
        assert_eq!(e.schema, SCHEMA);
        assert!(e.cores >= 1);
        assert!(e.rustc.starts_with("rustc "), "{}", e.rustc);
        assert_eq!(e.date.len(), 20, "{}", e.date);
        assert!(e.kernel.is_some());
        if let Some(c) = &e.commit {
            assert_eq!(c.len(), 40, "{c}");
            assert!(e.dirty.is_some());
        }
    }

    #[test]
    fn absent_fields_are_not_written_and_round_trip() {
        let mut e = Env::collect("t 0");
        e.commit = None;
        e.dirty = None;
        let v = serde_json::to_value(&e).unwrap();
        assert!(v.get("commit").is_none() && v.get("workers").is_none());
        e.run.workers = Some(4);
        e.run.server_cpus = Some(vec![0, 1]);
        e.run.mode = Some("quick".into());
        e.run.nginx = Some(" ".into());
        e.run = e.run.clone().without_empty();
        assert_eq!(e.run.nginx, None);
        let v = serde_json::to_value(&e).unwrap();
        // Run parameters sit at the top level, beside the machine fields.
        assert_eq!(v["workers"], 4);
        assert_eq!(v["server_cpus"], serde_json::json!([0, 1]));
        assert_eq!(v["mode"], "quick");
        let back: Env = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,8").unwrap(), [0, 1, 2, 3, 8]);
        assert_eq!(parse_cpu_list("1").unwrap(), [1]);
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("a").is_err());
        assert!(parse_cpu_list("").is_err());
    }

    #[test]
    fn cpu_model_and_short_commit() {
        let info = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: x\n";
        assert_eq!(cpu_model_of(info).as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(cpu_model_of("processor: 0\n"), None);
        let mut e = Env::collect("t 0");
        e.commit = Some("0123456789abcdef0123456789abcdef01234567".into());
        e.dirty = Some(true);
        assert_eq!(e.short_commit(), "0123456789ab-dirty");
        e.commit = None;
        assert_eq!(e.short_commit(), "unknown");
        e.cpu_model = None;
        let line = e.summary();
        assert!(line.starts_with("commit unknown | unknown | "), "{line}");
        assert!(line.contains(&format!("{} cores", e.cores)), "{line}");
    }
}
