//! `simulate validate`: the simulator configured as this machine (topology `this`, 1 and 2
//! cores) beside real runs of the same benchmarks, configurations and core counts, in one
//! invocation. For every configuration the error of the simulated KEvents/s, and for every ratio
//! the report prints (each row of Tables III-VI over its table's first row) the error of the
//! simulated ratio; `max_ratio_error_pct` summarises them.

use super::calibrate::Calibration;
use super::{simulate, SimBench, SimSpec, JITTER};
use crate::common::Setup;
use crate::tables;
use crate::unbalanced::{self, Costs};
use crate::{cache_efficient, penalty};
use anyhow::{Context, Result};
use colored_runtime::{QueueKind, StealAmount, StealPolicy};
use serde::Serialize;

/// The core counts validated (this machine's cores).
pub const CORES: [usize; 2] = [1, 2];

/// One configuration of the tables.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Config {
    pub bench: &'static str,
    pub runtime: &'static str,
    /// The row's key as the tables name it ([`tables::stealing_key`]: `time-left-one`,
    /// `time-left-one-profiled` for time-left on profiled handler costs, `base`).
    pub stealing: String,
}

impl Config {
    fn parts(&self) -> Result<(SimBench, QueueKind, StealPolicy)> {
        let queue: QueueKind = self.runtime.parse().map_err(anyhow::Error::msg)?;
        let policy: StealPolicy = self
            .stealing
            .trim_end_matches("-profiled")
            .trim_end_matches("-one")
            .parse()
            .map_err(anyhow::Error::msg)?;
        let bench = match self.bench {
            "unbalanced" if self.stealing.ends_with("-profiled") => {
                SimBench::Unbalanced(Costs::Profiled)
            }
            "unbalanced" => SimBench::Unbalanced(Costs::Annotated),
            "penalty" => SimBench::Penalty,
            _ => SimBench::CacheEfficient,
        };
        Ok((bench, queue, policy))
    }
}

/// The row's configuration, if the simulator runs it: a colored runtime, and for the time-left
/// policies the paper's one-color steal (the simulator does not run our multi-color steal).
fn config_of(bench: &'static str, r: &tables::RowSpec) -> Option<Config> {
    match r.config {
        tables::RowConfig::Colored { policy, amount, .. }
            if !policy.time_left() || amount == StealAmount::One =>
        {
            Some(Config {
                bench,
                runtime: r.runtime,
                stealing: r.config.key(),
            })
        }
        _ => None,
    }
}

/// The configurations of Tables III-VI that run on the colored runtime.
pub fn configs() -> Vec<Config> {
    let mut out: Vec<Config> = Vec::new();
    for t in tables::specs() {
        if !matches!(t.bench, "unbalanced" | "penalty" | "cache-efficient") {
            continue;
        }
        for r in &t.rows {
            let Some(c) = config_of(t.bench, r) else {
                continue;
            };
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    out
}

/// What one real run measured.
#[derive(Clone, Copy, Debug)]
pub struct RealRun {
    /// The benchmark's rate.
    pub kevents_per_sec: f64,
    /// CPU time the run got over its wall time (both cores' worth for 2 workers).
    pub cpu_per_wall: f64,
    /// CPUs' worth of time the rest of the machine used meanwhile (other processes, and the
    /// hypervisor's steal time); `None` where `/proc/stat` cannot be read.
    pub other_cpus: Option<f64>,
}

/// The machine's busy time so far (every CPU's user, nice, system, irq, softirq and steal time),
/// seconds, from `/proc/stat`.
fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| f.get(i))
        .sum::<f64>();
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| busy / hz as f64)
}

/// A real run of `c` on `workers` workers, measured around the whole run.
pub fn real_kevents(c: &Config, workers: usize, seconds: f64) -> Result<RealRun> {
    let (bench, queue, policy) = c.parts()?;
    let machine0 = machine_busy_seconds();
    let (cpu0, t0) = (crate::common::cpu_time(), std::time::Instant::now());
    let setup = Setup {
        queue,
        stealing: policy,
        steal_amount: StealAmount::One,
        workers,
        trace: None,
        fidelity: Default::default(),
    };
    let o = match bench {
        SimBench::Unbalanced(costs) => {
            unbalanced::run_colored(&setup, seconds, costs, &Default::default())?
        }
        SimBench::Penalty => penalty::run(&setup, seconds, &penalty::Params::for_workers(workers))?,
        SimBench::CacheEfficient => cache_efficient::run(
            &setup,
            seconds,
            &cache_efficient::Params::for_workers(workers),
        )?,
    };
    let cpu = (crate::common::cpu_time() - cpu0).as_secs_f64();
    let wall = t0.elapsed().as_secs_f64();
    let other = machine0
        .zip(machine_busy_seconds())
        .map(|(a, b)| ((b - a - cpu) / wall).max(0.0));
    Ok(RealRun {
        kevents_per_sec: o.kevents_per_sec(),
        cpu_per_wall: cpu / wall,
        other_cpus: other,
    })
}

/// Other work beyond this, in CPUs' worth over a real run, marks the machine busy.
pub const BUSY_OTHER_CPUS: f64 = 0.2;

/// The simulator's KEvents/s for `c` on this machine's topology.
pub fn simulated_kevents(c: &Config, cores: usize, seconds: f64, cal: &Calibration) -> Result<f64> {
    let (bench, queue, stealing) = c.parts()?;
    let spec = SimSpec {
        bench,
        queue,
        stealing,
        cores,
        topology: "this".into(),
        seconds,
        seed: 1,
        jitter: JITTER,
    };
    Ok(simulate(&spec, cal)?.kevents_per_sec())
}

fn error_pct(simulated: f64, real: f64) -> Option<f64> {
    (real > 0.0 && simulated.is_finite()).then(|| 100.0 * (simulated / real - 1.0))
}

/// One configuration at one core count.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    pub bench: &'static str,
    pub runtime: &'static str,
    pub stealing: String,
    pub cores: usize,
    /// KEvents/s, real (median of the repetitions) and simulated.
    pub real: f64,
    pub simulated: f64,
    pub error_pct: Option<f64>,
    /// The real runs' KEvents/s, in the order run.
    pub real_runs: Vec<f64>,
    /// The 1-minute load average after each real run (this machine's business beside ours).
    pub load_after: Vec<f64>,
    /// CPU seconds each real run used per wall second. On 1 core, the benchmarks keep their
    /// worker busy: well below 1, the machine gave the run only that share of a CPU.
    pub cpu_per_wall: Vec<f64>,
    /// CPUs' worth of time the rest of the machine used during each real run.
    pub other_cpus: Vec<f64>,
}

/// One ratio of a table (a row over the table's first row) at one core count.
#[derive(Clone, Debug, Serialize)]
pub struct RatioEntry {
    pub bench: &'static str,
    pub table: &'static str,
    pub row: &'static str,
    pub over: &'static str,
    pub runtime: &'static str,
    pub stealing: String,
    pub cores: usize,
    pub real: f64,
    pub simulated: f64,
    pub error_pct: Option<f64>,
}

/// The validation.
#[derive(Clone, Debug, Serialize)]
pub struct Validation {
    pub simulated_topology: &'static str,
    pub calibration: String,
    pub seconds: f64,
    pub repeat: usize,
    /// CPUs this process may use, the largest 1-minute load average seen after a real run
    /// (it lags: it still counts what ran before the validation), and the most CPU time other
    /// work took during a real run; `machine_busy` when that exceeded [`BUSY_OTHER_CPUS`] or a
    /// 1-core run got less than 90% of a CPU: other work took CPU time from the real runs
    /// (their rates are then low and noisy, and their errors say more about the machine than
    /// about the simulator).
    pub cpus: usize,
    pub max_load: f64,
    pub max_other_cpus: f64,
    pub machine_busy: bool,
    pub entries: Vec<Entry>,
    pub ratios: Vec<RatioEntry>,
    /// The largest |error| of a ratio, over every table, ratio and core count.
    pub max_ratio_error_pct: Option<f64>,
    /// The same per benchmark and core count ("unbalanced/2": ...).
    pub max_ratio_error_pct_by: std::collections::BTreeMap<String, f64>,
}

fn find<'a>(entries: &'a [Entry], c: &Config, cores: usize) -> Option<&'a Entry> {
    entries.iter().find(|e| {
        e.bench == c.bench && e.runtime == c.runtime && e.stealing == c.stealing && e.cores == cores
    })
}

/// The 1-minute load average.
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Run every configuration for real (`repeat` rounds over all of them, so a burst of load on the
/// machine spreads over configurations instead of hitting one; `seconds` each) and simulated
/// (`seconds` of virtual time) at 1 and 2 cores; `log` hears of progress.
pub fn validate(
    cal: &Calibration,
    calibration: &str,
    seconds: f64,
    repeat: usize,
    log: &mut dyn FnMut(&str),
) -> Result<Validation> {
    let jobs: Vec<(usize, Config)> = CORES
        .iter()
        .flat_map(|&cores| configs().into_iter().map(move |c| (cores, c)))
        .collect();
    // Per job: every real run, with the load average after it.
    let mut runs: Vec<Vec<(RealRun, f64)>> = vec![Vec::new(); jobs.len()];
    for rep in 0..repeat.max(1) {
        for ((cores, c), done) in jobs.iter().zip(&mut runs) {
            log(&format!(
                "real {} {} {} on {cores} core(s), round {}",
                c.bench,
                c.runtime,
                c.stealing,
                rep + 1
            ));
            let run = real_kevents(c, *cores, seconds)
                .with_context(|| format!("real run of {c:?} on {cores} core(s)"))?;
            done.push((run, load_average()));
        }
    }
    let mut entries = Vec::new();
    for ((cores, c), done) in jobs.into_iter().zip(runs) {
        let k: Vec<f64> = done.iter().map(|(r, _)| r.kevents_per_sec).collect();
        log(&format!(
            "simulated {} {} {} on {cores} core(s)",
            c.bench, c.runtime, c.stealing
        ));
        let simulated = simulated_kevents(&c, cores, seconds, cal)
            .with_context(|| format!("simulation of {c:?} on {cores} core(s)"))?;
        let real = edge::median::median(k.iter().copied()).unwrap_or(f64::NAN);
        entries.push(Entry {
            bench: c.bench,
            runtime: c.runtime,
            stealing: c.stealing,
            cores,
            real,
            simulated,
            error_pct: error_pct(simulated, real),
            real_runs: k,
            load_after: done.iter().map(|&(_, l)| l).collect(),
            cpu_per_wall: done.iter().map(|(r, _)| r.cpu_per_wall).collect(),
            other_cpus: done.iter().filter_map(|(r, _)| r.other_cpus).collect(),
        });
    }
    let ratios = ratios(&entries);
    let mut by = std::collections::BTreeMap::new();
    for r in &ratios {
        if let Some(e) = r.error_pct {
            let k = by
                .entry(format!("{}/{}", r.bench, r.cores))
                .or_insert(0.0f64);
            *k = k.max(e.abs());
        }
    }
    let max = ratios
        .iter()
        .filter_map(|r| r.error_pct.map(f64::abs))
        .fold(None, |m: Option<f64>, e| Some(m.map_or(e, |m| m.max(e))));
    let cpus = colored_runtime::topology::allowed_cpus().len();
    let max_load = entries
        .iter()
        .flat_map(|e| e.load_after.iter().copied())
        .filter(|l| l.is_finite())
        .fold(0.0, f64::max);
    let max_other = entries
        .iter()
        .flat_map(|e| e.other_cpus.iter().copied())
        .fold(0.0, f64::max);
    // One-core runs keep their worker busy: less than 90% of a CPU means the machine was shared.
    let starved = entries
        .iter()
        .filter(|e| e.cores == 1)
        .flat_map(|e| e.cpu_per_wall.iter())
        .any(|&s| s < 0.9);
    Ok(Validation {
        simulated_topology: "this",
        calibration: calibration.to_string(),
        seconds,
        repeat: repeat.max(1),
        cpus,
        max_load,
        max_other_cpus: max_other,
        machine_busy: starved || max_other > BUSY_OTHER_CPUS,
        entries,
        ratios,
        max_ratio_error_pct: max,
        max_ratio_error_pct_by: by,
    })
}

/// Every ratio the report's tables show (rows over the first row), once per pair.
pub fn ratios(entries: &[Entry]) -> Vec<RatioEntry> {
    let mut out: Vec<RatioEntry> = Vec::new();
    for t in tables::specs() {
        let Some(first) = t.rows.first() else {
            continue;
        };
        let Some(base) = config_of(t.bench, first) else {
            continue;
        };
        for r in t.rows.iter().skip(1) {
            let Some(c) = config_of(t.bench, r) else {
                continue;
            };
            for cores in CORES {
                let (Some(num), Some(den)) =
                    (find(entries, &c, cores), find(entries, &base, cores))
                else {
                    continue;
                };
                if out.iter().any(|o| {
                    o.bench == c.bench
                        && o.runtime == c.runtime
                        && o.stealing == c.stealing
                        && o.over == first.label
                        && o.cores == cores
                }) {
                    continue;
                }
                let real = num.real / den.real;
                let simulated = num.simulated / den.simulated;
                out.push(RatioEntry {
                    bench: t.bench,
                    table: t.id,
                    row: r.label,
                    over: first.label,
                    runtime: r.runtime,
                    stealing: c.stealing.clone(),
                    cores,
                    real,
                    simulated,
                    error_pct: error_pct(simulated, real),
                });
            }
        }
    }
    out
}
