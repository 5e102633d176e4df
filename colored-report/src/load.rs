//! Reading a results directory into typed rows. A file that cannot be read or parsed is recorded
//! as a missing experiment with the reason, never skipped silently and never turned into zeros.

use colored_runtime::RuntimeStats;
use load_injector::stats::Median;
use microbench_defs::report::BenchResult;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sfs_client::bench::BenchResult as SfsBenchResult;
use sfs_client::multiio::{ReadFilesResult, WriteFilesResult};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One repetition of one microbenchmark configuration.
#[derive(Clone, Debug)]
pub struct Rep {
    pub kevents: f64,
    pub steal_cost_cycles: Option<f64>,
    pub stolen_time_cycles: Option<f64>,
    pub locking_time_pct: Option<f64>,
    pub l2_misses_per_event: Option<f64>,
}

/// One configuration of `microbenches paper-tables` with its repetitions.
#[derive(Clone, Debug)]
pub struct MicroRow {
    pub bench: String,
    pub runtime: String,
    /// Worker threads it ran with.
    pub workers: usize,
    /// The stealing policy with the steal amount of a time-left policy and `-profiled` for
    /// unbalanced runs on profiled costs appended (the tables' row key,
    /// [`microbench_defs::tables::stealing_key`]), then the fidelity preset when it is not
    /// ours (`-paper`).
    pub stealing: String,
    /// Synthetic configuration label (`config` in the JSON), if any.
    pub config: Option<String>,
    /// What the benchmark's arrays were sized to (`sized_to` in the JSON: `l2` for `penalty`
    /// and `cache-efficient` sized to the L2; absent in results of the earlier fixed sizes).
    pub sized_to: Option<String>,
    /// The array sizes the first repetition reported (`penalty`, `cache-efficient`), as the
    /// sentence the tables print ([`microbench_defs::tables::sizes_sentence`]).
    pub sizes: Option<String>,
    /// The runtime's fidelity preset the first repetition ran with (`ours`, `paper`, or
    /// `custom`; `None` in results written before the paper mode existed).
    pub fidelity: Option<String>,
    pub reps: Vec<Rep>,
}

impl MicroRow {
    /// Experiment name of this configuration: a benchmark sized to the cache is named with its
    /// sizing (`microbench/penalty-l2/...`), so it never compares with the fixed-size one.
    pub fn name(&self) -> String {
        let bench = match &self.sized_to {
            Some(t) => format!("{}-{t}", self.bench),
            None => self.bench.clone(),
        };
        match &self.config {
            Some(c) => format!("microbench/{bench}/{c}"),
            None => format!("microbench/{bench}/{}/{}", self.runtime, self.stealing),
        }
    }
    pub fn kevents_median(&self) -> Option<f64> {
        super::median(self.reps.iter().map(|r| r.kevents))
    }
    pub fn kevents_spread(&self) -> Option<(f64, f64)> {
        let k = self.reps.iter().map(|r| r.kevents);
        let lo = k.clone().fold(f64::INFINITY, f64::min);
        let hi = k.fold(f64::NEG_INFINITY, f64::max);
        (lo.is_finite() && hi.is_finite()).then_some((lo, hi))
    }
    /// The repetition whose rate is closest to the median: its metrics go with the median
    /// rate (as in the microbenches table printer).
    pub fn median_rep(&self) -> Option<&Rep> {
        let m = self.kevents_median()?;
        self.reps.iter().min_by(|a, b| {
            (a.kevents - m)
                .abs()
                .partial_cmp(&(b.kevents - m).abs())
                .expect("finite")
        })
    }
    pub fn steal_cost_cycles(&self) -> Option<f64> {
        self.median_rep().and_then(|r| r.steal_cost_cycles)
    }
    pub fn stolen_time_cycles(&self) -> Option<f64> {
        self.median_rep().and_then(|r| r.stolen_time_cycles)
    }
    pub fn locking_time_pct(&self) -> Option<f64> {
        self.median_rep().and_then(|r| r.locking_time_pct)
    }
    pub fn l2_misses_per_event(&self) -> Option<f64> {
        self.median_rep().and_then(|r| r.l2_misses_per_event)
    }
}

/// One runtime of `microbenches dispatch`.
#[derive(Clone, Debug)]
pub struct DispatchRow {
    pub workers: usize,
    pub runtime: String,
    pub ns_per_event: Option<f64>,
}

/// Runtime counters a server wrote with `--stats-json` (absent for peers and N-copy).
#[derive(Clone, Debug, Default)]
pub struct ServerStats {
    pub steals: Option<f64>,
    pub steal_cost_cycles: Option<f64>,
    pub stolen_time_cycles: Option<f64>,
    pub locking_time_pct: Option<f64>,
}

/// One SWS (or peer web server) measurement at one client count.
#[derive(Clone, Debug)]
pub struct SwsRun {
    pub config: String,
    pub workers: usize,
    pub clients: usize,
    pub requests_per_sec: Option<f64>,
    pub mbytes_per_sec: Option<f64>,
    pub p99_us: Option<f64>,
    pub errors: Option<f64>,
    /// The injector's own CPU time per request: it shares the cores with the server.
    pub injector_cpu_us_per_request: Option<f64>,
    pub stats: ServerStats,
}

/// One SFS (or sftp) measurement.
#[derive(Clone, Debug)]
pub struct SfsRun {
    pub config: String,
    /// Server workers; `None` for sftp (one sshd process per connection).
    pub workers: Option<usize>,
    /// sftp: parallel sessions (`clients` in its JSON); `None` for sfs-bench runs.
    pub sessions: Option<usize>,
    pub mbytes_per_sec: Option<f64>,
    pub errors: Option<f64>,
    pub stats: ServerStats,
    /// Server CPU (its process tree) per MB read: the through-the-kernel runs
    /// (`sfs-bench --read-files`, configurations `mount-*`).
    pub server_cpu_ms_per_mb: Option<f64>,
    /// Reader processes of a through-the-kernel run.
    pub readers: Option<f64>,
}

/// Everything in one results directory.
#[derive(Clone, Debug, Default)]
pub struct Results {
    pub dir: PathBuf,
    /// `env.json` as written by the script (strings and numbers).
    pub env: BTreeMap<String, Value>,
    pub micro: Vec<MicroRow>,
    pub dispatch: Vec<DispatchRow>,
    pub sws: Vec<SwsRun>,
    pub sfs: Vec<SfsRun>,
    /// Instruction counts per operation (`instr/counts.json`).
    pub instr: Vec<super::instr::InstrRow>,
    /// Experiments that failed or could not run, with the reason.
    pub missing: BTreeMap<String, String>,
}

fn read_json(path: &Path) -> Result<Value, String> {
    read_as(path)
}

/// A results file read through the struct that wrote it: a missing required field is an error
/// naming the file and the field.
fn read_as<T: DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    parse_as(path, &text)
}

fn parse_as<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|e| format!("parsing {}: {e}", path.display()))
}

/// The part of a `load-injector --format json` report the report uses: its median over runs,
/// read through the injector's own [`Median`] (every report format the injector has written
/// carries it, the older ones with more fields beside it).
#[derive(serde::Deserialize)]
struct InjectorReport {
    /// The median over the runs (of a ramp: over the last step's runs).
    median: Median,
}

/// A server's `--stats-json` file (`sws-server`, `sfs-server`): the part the report uses.
#[derive(serde::Deserialize)]
struct ServerStatsFile {
    /// The runtime's counters; absent or `null` for a server without a colored runtime.
    runtime_stats: Option<RuntimeStats>,
}

/// One OpenSSH sftp measurement, as `scripts/reproduce.sh` (`sftp_point`) writes it.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct SftpResult {
    /// `sftp`.
    pub tool: String,
    /// The SSH cipher the sessions used.
    pub cipher: String,
    /// The run (1-based) this median run was.
    pub run: u32,
    /// Parallel sftp sessions; absent in rows written before the session count was part of the
    /// experiment (`sfs/sftp`, a different figure from `sfs/sftp-s<n>`).
    pub clients: Option<usize>,
    /// Reads of the file per session.
    pub gets_per_session: u32,
    /// Bytes all sessions read.
    pub bytes: f64,
    /// Wall time of the run.
    pub seconds: f64,
    /// 10^6 bytes per second, all sessions together.
    pub mbytes_per_sec: f64,
    /// Failed sessions.
    pub errors: u64,
}

/// Which program wrote an SFS results file: `sfs-bench --read-files` and `--write-files` say
/// so in `mode`, the sftp rows in `tool`; `sfs-bench` over the network writes neither.
#[derive(serde::Deserialize)]
struct SfsKind {
    /// `read-files` or `write-files`.
    mode: Option<String>,
    /// `sftp`.
    tool: Option<String>,
}

/// The figures of one SFS results file, read through the struct of the program that wrote it.
struct SfsFigures {
    mbytes_per_sec: f64,
    errors: u64,
    /// sftp's parallel sessions.
    clients: Option<usize>,
    server_cpu_ms_per_mb: Option<f64>,
    readers: Option<usize>,
}

fn read_sfs(path: &Path) -> Result<SfsFigures, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let kind: SfsKind = parse_as(path, &text)?;
    Ok(match (kind.mode.as_deref(), kind.tool.as_deref()) {
        (Some("read-files"), _) => {
            let r: ReadFilesResult = parse_as(path, &text)?;
            SfsFigures {
                mbytes_per_sec: r.mbytes_per_sec,
                errors: r.errors,
                clients: None,
                server_cpu_ms_per_mb: r.server_cpu_ms_per_mb,
                readers: Some(r.readers),
            }
        }
        (Some("write-files"), _) => {
            let r: WriteFilesResult = parse_as(path, &text)?;
            SfsFigures {
                mbytes_per_sec: r.mbytes_per_sec,
                errors: r.errors,
                clients: None,
                server_cpu_ms_per_mb: r.server_cpu_ms_per_mb,
                readers: None,
            }
        }
        (Some(m), _) => return Err(format!("{}: unknown sfs-bench mode {m:?}", path.display())),
        (None, Some("sftp")) => {
            let r: SftpResult = parse_as(path, &text)?;
            SfsFigures {
                mbytes_per_sec: r.mbytes_per_sec,
                errors: r.errors,
                clients: r.clients,
                server_cpu_ms_per_mb: None,
                readers: None,
            }
        }
        (None, Some(t)) => return Err(format!("{}: unknown tool {t:?}", path.display())),
        (None, None) => {
            let r: SfsBenchResult = parse_as(path, &text)?;
            SfsFigures {
                mbytes_per_sec: r.mbytes_per_sec,
                errors: r.errors,
                clients: None,
                server_cpu_ms_per_mb: None,
                readers: None,
            }
        }
    })
}

/// The runtime counters of a server's `--stats-json` file; none when the server wrote no file
/// (peer servers). A file that does not parse is an error.
fn stats_of(path: &Path) -> Result<ServerStats, String> {
    if !path.exists() {
        return Ok(ServerStats::default());
    }
    let Some(rs) = read_as::<ServerStatsFile>(path)?.runtime_stats else {
        return Ok(ServerStats::default());
    };
    let finite = |x: f64| Some(x).filter(|x| x.is_finite());
    Ok(ServerStats {
        steals: Some(rs.total.steals as f64),
        steal_cost_cycles: finite(rs.steal_cost_cycles_avg),
        stolen_time_cycles: finite(rs.stolen_time_cycles_avg),
        locking_time_pct: finite(rs.locking_time_pct),
    })
}

/// `mely-all-w2-c200` -> (`mely-all`, 2, Some(200)); `colored-w2` -> (`colored`, 2, None).
pub fn parse_run_name(stem: &str) -> Option<(String, usize, Option<usize>)> {
    let (rest, clients) = match stem.rfind("-c") {
        Some(i) if stem[i + 2..].chars().all(|c| c.is_ascii_digit()) && i + 2 < stem.len() => {
            (&stem[..i], Some(stem[i + 2..].parse().ok()?))
        }
        _ => (stem, None),
    };
    let i = rest.rfind("-w")?;
    let workers = rest[i + 2..].parse().ok()?;
    Some((rest[..i].to_string(), workers, clients))
}

impl Results {
    /// Load a results directory. Fails only when the directory itself cannot be read.
    pub fn load(dir: &Path) -> anyhow::Result<Results> {
        anyhow::ensure!(dir.is_dir(), "{} is not a results directory", dir.display());
        let mut r = Results {
            dir: dir.to_path_buf(),
            ..Default::default()
        };
        if let Ok(Value::Object(m)) = read_json(&dir.join("env.json")) {
            r.env = m.into_iter().collect();
        }
        let mut files = Vec::new();
        collect_files(dir, dir, &mut files)?;
        files.sort();
        for rel in files {
            let path = dir.join(&rel);
            let rel_s = rel.to_string_lossy().replace('\\', "/");
            if let Some(name) = rel_s.strip_suffix(".error") {
                let msg = std::fs::read_to_string(&path).unwrap_or_default();
                let msg = msg.trim();
                r.missing.insert(
                    name.to_string(),
                    if msg.is_empty() {
                        "failed (no message)".into()
                    } else {
                        msg.to_string()
                    },
                );
                continue;
            }
            let Some(name) = rel_s.strip_suffix(".json") else {
                continue;
            };
            if name == "env" || name.ends_with(".stats") {
                continue;
            }
            // The simulator's files: read by `simulated`; traces: drawn by `timelines`.
            if name.starts_with("sim/") || name.starts_with("traces/") {
                continue;
            }
            if let Err(e) = r.load_one(name, &path) {
                r.missing.insert(name.to_string(), e);
            }
        }
        Ok(r)
    }

    fn load_one(&mut self, name: &str, path: &Path) -> Result<(), String> {
        if name == "microbench/paper-tables" {
            for item in read_as::<Vec<BenchResult>>(path)? {
                self.add_micro(item)?;
            }
            return Ok(());
        }
        if let Some(w) = name.strip_prefix("microbench/dispatch-w") {
            let workers: usize = w
                .parse()
                .map_err(|_| format!("bad dispatch file name {name}"))?;
            for item in read_as::<Vec<BenchResult>>(path)? {
                self.dispatch.push(DispatchRow {
                    workers,
                    ns_per_event: item.extra_f64("ns_per_event"),
                    runtime: item.runtime,
                });
            }
            return Ok(());
        }
        let stats_path = path.with_extension("stats.json");
        if let Some(stem) = name.strip_prefix("sws/") {
            let (config, workers, clients) =
                parse_run_name(stem).ok_or(format!("bad SWS file name {name}"))?;
            let clients = clients.ok_or(format!("SWS file name without -c<clients>: {name}"))?;
            let med = read_as::<InjectorReport>(path)?.median;
            let finite = |x: f64| Some(x).filter(|x| x.is_finite());
            self.sws.push(SwsRun {
                config,
                workers,
                clients,
                requests_per_sec: finite(med.requests_per_sec),
                mbytes_per_sec: finite(med.mbytes_per_sec),
                p99_us: Some(med.latency_us.p99 as f64),
                errors: finite(med.errors.values().sum()),
                injector_cpu_us_per_request: finite(med.injector_cpu_us_per_request),
                stats: stats_of(&stats_path)?,
            });
            return Ok(());
        }
        if let Some(stem) = name.strip_prefix("sfs/") {
            let (config, workers) = match parse_run_name(stem) {
                Some((c, w, None)) => (c, Some(w)),
                _ => (stem.to_string(), None),
            };
            let f = read_sfs(path)?;
            self.sfs.push(SfsRun {
                config,
                workers,
                sessions: workers.is_none().then_some(f.clients).flatten(),
                mbytes_per_sec: Some(f.mbytes_per_sec).filter(|x| x.is_finite()),
                errors: Some(f.errors as f64),
                stats: stats_of(&stats_path)?,
                server_cpu_ms_per_mb: f.server_cpu_ms_per_mb.filter(|x| x.is_finite()),
                readers: f.readers.map(|n| n as f64),
            });
            return Ok(());
        }
        if name == "instr/counts" {
            self.instr = super::instr::rows(read_as(path)?);
            return Ok(());
        }
        Err(format!("unknown experiment file {name}.json"))
    }

    fn add_micro(&mut self, item: BenchResult) -> Result<(), String> {
        let finite = |x: Option<f64>| x.filter(|x| x.is_finite());
        let mut stealing = microbench_defs::tables::stealing_key(
            &item.stealing,
            item.steal_amount.as_deref(),
            item.bench == "unbalanced" && item.extra_str("costs") == Some("profiled"),
        );
        // A run with another fidelity than ours is another configuration (`base-paper`): the
        // report's tables with the papers' mechanisms read it, the others never mix it in.
        if let Some(f) = item.fidelity.as_deref().filter(|&f| f != "ours") {
            stealing.push('-');
            stealing.push_str(f);
        }
        let config = if item.bench == "synthetic" {
            item.extra_str("config").map(String::from)
        } else {
            None
        };
        let sized_to = item.extra_str("sized_to").map(String::from);
        let sizes = microbench_defs::tables::sizes_sentence(&item.extra);
        let fidelity = item.fidelity.clone();
        let (bench, runtime) = (item.bench, item.runtime);
        let Some(kevents) = finite(Some(item.kevents_per_sec)) else {
            return Err(format!("{bench} {runtime} {stealing}: no kevents_per_sec"));
        };
        let rep = Rep {
            kevents,
            steal_cost_cycles: finite(item.steal_cost_cycles),
            stolen_time_cycles: finite(item.stolen_time_cycles),
            locking_time_pct: finite(item.locking_time_pct),
            l2_misses_per_event: finite(item.l2_misses_per_event),
        };
        match self.micro.iter_mut().find(|m| {
            m.bench == bench
                && m.runtime == runtime
                && m.stealing == stealing
                && m.config == config
                && m.sized_to == sized_to
        }) {
            Some(row) => row.reps.push(rep),
            None => self.micro.push(MicroRow {
                bench,
                runtime,
                workers: item.workers,
                stealing,
                config,
                sized_to,
                sizes,
                fidelity,
                reps: vec![rep],
            }),
        }
        Ok(())
    }

    /// Names of every experiment that produced a figure.
    pub fn experiments(&self) -> BTreeSet<String> {
        let mut s = BTreeSet::new();
        for m in &self.micro {
            s.insert(m.name());
        }
        for d in &self.dispatch {
            s.insert(format!("microbench/dispatch-w{}/{}", d.workers, d.runtime));
        }
        for w in &self.sws {
            s.insert(format!("sws/{}-w{}-c{}", w.config, w.workers, w.clients));
        }
        for f in &self.sfs {
            s.insert(sfs_name(f));
        }
        s.extend(self.instr.iter().map(super::instr::experiment));
        s
    }

    /// An environment field as text (`unknown` when the script did not record it); a list,
    /// such as `server_cpus`, comma-separated.
    pub fn env_str(&self, key: &str) -> String {
        match self.env.get(key) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join(","),
            Some(v) if !v.is_null() => v.to_string(),
            _ => "unknown".into(),
        }
    }

    /// A microbenchmark configuration; where a benchmark ran in several definitions (sized to
    /// the L2 and not), the sized one.
    pub fn micro_row(&self, bench: &str, runtime: &str, stealing: &str) -> Option<&MicroRow> {
        let mut rows = self.micro.iter().filter(|m| {
            m.bench == bench && m.runtime == runtime && m.stealing == stealing && m.config.is_none()
        });
        let first = rows.next()?;
        Some(rows.find(|m| m.sized_to.is_some()).unwrap_or(first))
    }

    pub fn sws_rps(&self, config: &str, workers: usize, clients: usize) -> Option<f64> {
        self.sws
            .iter()
            .find(|r| r.config == config && r.workers == workers && r.clients == clients)
            .and_then(|r| r.requests_per_sec)
    }

    pub fn sfs_mbps(&self, config: &str, workers: Option<usize>) -> Option<f64> {
        self.sfs
            .iter()
            .find(|r| r.config == config && r.workers == workers)
            .and_then(|r| r.mbytes_per_sec)
    }

    /// SWS configurations in a stable, meaningful order (ours first, then peers).
    pub fn sws_configs(&self) -> Vec<String> {
        let order = [
            "libasync-off",
            "libasync-base",
            "libasync-base-paper",
            "mely-off",
            "mely-all-p1",
            "mely-all-p1-paper",
            "mely-all-p1000",
            "mely-all-p1000-half",
            "mely-all",
            "ncopy",
            "nginx",
            "apache",
        ];
        let mut v: Vec<String> = self
            .sws
            .iter()
            .map(|r| r.config.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        v.sort_by_key(|c| {
            (
                order.iter().position(|o| o == c).unwrap_or(order.len()),
                c.clone(),
            )
        });
        v
    }

    pub fn sws_clients(&self, workers: usize) -> Vec<usize> {
        self.sws
            .iter()
            .filter(|r| r.workers == workers)
            .map(|r| r.clients)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// Peak requests/s of a configuration at `workers`, over the client counts in `clients`
    /// where it was measured.
    pub fn sws_peak(&self, config: &str, workers: usize, clients: &[usize]) -> Option<f64> {
        self.sws
            .iter()
            .filter(|r| r.config == config && r.workers == workers && clients.contains(&r.clients))
            .filter_map(|r| r.requests_per_sec)
            .fold(None, |acc: Option<f64>, x| {
                Some(acc.map_or(x, |a| a.max(x)))
            })
    }

    pub fn dispatch_ns(&self, workers: usize, runtime: &str) -> Option<f64> {
        self.dispatch
            .iter()
            .find(|d| d.workers == workers && d.runtime == runtime)
            .and_then(|d| d.ns_per_event)
    }
}

/// Experiment name of an SFS run; sftp's carries its session count (`sfs/sftp-s16`), so runs
/// with different numbers of sessions are different figures.
pub fn sfs_name(f: &SfsRun) -> String {
    match (f.workers, f.sessions) {
        (Some(w), _) => format!("sfs/{}-w{}", f.config, w),
        (None, Some(n)) => format!("sfs/{}-s{n}", f.config),
        (None, None) => format!("sfs/{}", f.config),
    }
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let p = e.path();
        if p.is_dir() {
            // Our own outputs (plots, csv) and the script's logs (per-run files) hold no
            // experiments.
            let name = e.file_name();
            // `samples/` holds one results directory per sample (see `samples`).
            if name != "plots" && name != "csv" && name != "logs" && name != "samples" {
                collect_files(root, &p, out)?;
            }
        } else if let Ok(rel) = p.strip_prefix(root) {
            out.push(rel.to_path_buf());
        }
    }
    Ok(())
}
