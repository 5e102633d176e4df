//! `simulate validate`: the simulator configured as this machine (topology `this`, 1 and 2
//! cores) beside real runs of the same benchmarks, configurations and core counts, in one
//! invocation. For every configuration the error of the simulated KEvents/s, and for every ratio
//! the report prints (each row of Tables III-VI over its table's first row) the error of the
//! simulated ratio; `max_ratio_error_pct` summarises them. Every configuration runs twice, with
//! our runtime options and with the papers' (`--fidelity paper`), real and simulated alike.

use super::calibrate::Calibration;
use super::{simulate_options, SimBench, SimOptions, SimSpec, JITTER};
use anyhow::{Context, Result};
use colored_runtime::{Fidelity, FidelityOptions, QueueKind, StealAmount, StealPolicy};
use microbench_defs::tables;
use microbench_defs::unbalanced::Costs;
use serde::{Deserialize, Deserializer, Serialize};

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
    /// The runtime's options: ours or the papers' (`--fidelity`), the same for the real run
    /// and the simulation.
    #[serde(serialize_with = "fidelity_name")]
    pub fidelity: Fidelity,
}

fn fidelity_name<S: serde::Serializer>(f: &Fidelity, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(f.as_str())
}

/// `ours`, for entries written before validations covered both fidelities.
fn ours() -> String {
    Fidelity::Ours.as_str().to_string()
}

impl Config {
    /// The simulated benchmark, queue design and stealing policy the configuration names.
    pub fn parts(&self) -> Result<(SimBench, QueueKind, StealPolicy)> {
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
                fidelity: Fidelity::Ours,
            })
        }
        _ => None,
    }
}

/// The configurations of Tables III-VI that run on the colored runtime, each with our
/// options and with the papers'.
pub fn configs() -> Vec<Config> {
    let ours = configs_of(Fidelity::Ours);
    let paper = configs_of(Fidelity::Paper);
    ours.into_iter().chain(paper).collect()
}

/// The configurations of Tables III-VI with fidelity `f`.
fn configs_of(f: Fidelity) -> Vec<Config> {
    let mut out: Vec<Config> = Vec::new();
    for t in tables::specs() {
        if !matches!(t.bench, "unbalanced" | "penalty" | "cache-efficient") {
            continue;
        }
        for r in &t.rows {
            let Some(mut c) = config_of(t.bench, r) else {
                continue;
            };
            c.fidelity = f;
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    out
}

/// Runs configuration `c` for real on the given number of workers for the given seconds, and
/// measures it (`microbenches` provides it: the real benchmarks are not the simulator's).
pub type RealRunner<'a> = &'a mut dyn FnMut(&Config, usize, f64) -> Result<RealRun>;

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
    let opts = SimOptions {
        fidelity: FidelityOptions::of(c.fidelity),
        ..SimOptions::default()
    };
    Ok(simulate_options(&spec, &opts, cal)?.kevents_per_sec())
}

fn error_pct(simulated: f64, real: f64) -> Option<f64> {
    (real > 0.0 && simulated.is_finite()).then(|| 100.0 * (simulated / real - 1.0))
}

/// A number written as `null` (serde_json writes a NaN so: not measured) reads back as NaN.
fn f64_or_nan<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// [`f64_or_nan`] for each number of a list.
fn f64s_or_nan<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    let v = Vec::<Option<f64>>::deserialize(d)?;
    Ok(v.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
}

/// One configuration at one core count.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    pub bench: String,
    pub runtime: String,
    pub stealing: String,
    /// `ours` or `paper` (the runtime's options, real and simulated).
    #[serde(default = "ours")]
    pub fidelity: String,
    pub cores: usize,
    /// KEvents/s, real (median of the repetitions) and simulated.
    #[serde(deserialize_with = "f64_or_nan")]
    pub real: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub simulated: f64,
    pub error_pct: Option<f64>,
    /// The real runs' KEvents/s, in the order run.
    #[serde(deserialize_with = "f64s_or_nan")]
    pub real_runs: Vec<f64>,
    /// The 1-minute load average after each real run (this machine's business beside ours).
    #[serde(deserialize_with = "f64s_or_nan")]
    pub load_after: Vec<f64>,
    /// CPU seconds each real run used per wall second. On 1 core, the benchmarks keep their
    /// worker busy: well below 1, the machine gave the run only that share of a CPU.
    #[serde(deserialize_with = "f64s_or_nan")]
    pub cpu_per_wall: Vec<f64>,
    /// CPUs' worth of time the rest of the machine used during each real run.
    #[serde(deserialize_with = "f64s_or_nan")]
    pub other_cpus: Vec<f64>,
}

/// One ratio of a table (a row over the table's first row) at one core count.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RatioEntry {
    pub bench: String,
    pub table: String,
    pub row: String,
    pub over: String,
    pub runtime: String,
    pub stealing: String,
    /// `ours` or `paper`: numerator and denominator both ran with it.
    #[serde(default = "ours")]
    pub fidelity: String,
    pub cores: usize,
    /// The real ratio: the median over rounds of the ratio measured within each round.
    #[serde(deserialize_with = "f64_or_nan")]
    pub real: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub simulated: f64,
    /// The median over rounds of the simulated ratio's error against each round's real ratio.
    pub error_pct: Option<f64>,
    /// That error in each round (numerator and denominator measured in the same round), in
    /// the order run: its spread is how much one noisy round could have passed or failed the
    /// validation alone. Empty in validations written before rounds were kept apart.
    #[serde(default, deserialize_with = "f64s_or_nan")]
    pub error_pct_runs: Vec<f64>,
}

impl RatioEntry {
    /// The smallest and largest error over the rounds (`None` without per-round errors).
    pub fn error_spread(&self) -> Option<(f64, f64)> {
        let v: Vec<f64> = self
            .error_pct_runs
            .iter()
            .copied()
            .filter(|e| e.is_finite())
            .collect();
        let lo = v.iter().copied().reduce(f64::min)?;
        let hi = v.iter().copied().reduce(f64::max)?;
        Some((lo, hi))
    }
}

/// The validation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Validation {
    pub simulated_topology: String,
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
    #[serde(deserialize_with = "f64_or_nan")]
    pub max_load: f64,
    #[serde(deserialize_with = "f64_or_nan")]
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
        e.bench == c.bench
            && e.runtime == c.runtime
            && e.stealing == c.stealing
            && e.fidelity == c.fidelity.as_str()
            && e.cores == cores
    })
}

/// The 1-minute load average.
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Run every configuration for real with `real` (`repeat` rounds over all of them, so a burst of load on the
/// machine spreads over configurations instead of hitting one; `seconds` each) and simulated
/// (`seconds` of virtual time) at 1 and 2 cores; `log` hears of progress.
pub fn validate(
    cal: &Calibration,
    calibration: &str,
    seconds: f64,
    repeat: usize,
    real: RealRunner<'_>,
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
                "real {} {} {} ({}) on {cores} core(s), round {}",
                c.bench,
                c.runtime,
                c.stealing,
                c.fidelity,
                rep + 1
            ));
            let run = real(c, *cores, seconds)
                .with_context(|| format!("real run of {c:?} on {cores} core(s)"))?;
            done.push((run, load_average()));
        }
    }
    let mut entries = Vec::new();
    for ((cores, c), done) in jobs.into_iter().zip(runs) {
        let k: Vec<f64> = done.iter().map(|(r, _)| r.kevents_per_sec).collect();
        log(&format!(
            "simulated {} {} {} ({}) on {cores} core(s)",
            c.bench, c.runtime, c.stealing, c.fidelity
        ));
        let simulated = simulated_kevents(&c, cores, seconds, cal)
            .with_context(|| format!("simulation of {c:?} on {cores} core(s)"))?;
        let real = edge::median::median(k.iter().copied()).unwrap_or(f64::NAN);
        entries.push(Entry {
            bench: c.bench.to_string(),
            runtime: c.runtime.to_string(),
            fidelity: c.fidelity.as_str().to_string(),
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
            // Ours keyed `bench/cores` as before both fidelities were validated.
            let key = match r.fidelity.as_str() {
                "ours" => format!("{}/{}", r.bench, r.cores),
                f => format!("{}/{}/{f}", r.bench, r.cores),
            };
            let k = by.entry(key).or_insert(0.0f64);
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
        simulated_topology: "this".into(),
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
        let Some(base0) = config_of(t.bench, first) else {
            continue;
        };
        for (r, f) in t
            .rows
            .iter()
            .skip(1)
            .flat_map(|r| Fidelity::ALL.into_iter().map(move |f| (r, f)))
        {
            let Some(mut c) = config_of(t.bench, r) else {
                continue;
            };
            c.fidelity = f;
            let base = Config {
                fidelity: f,
                ..base0.clone()
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
                        && o.fidelity == f.as_str()
                        && o.over == first.label
                        && o.cores == cores
                }) {
                    continue;
                }
                let simulated = num.simulated / den.simulated;
                // Round i's ratio divides figures of round i (drift of the machine moves both).
                let per_round: Vec<f64> = num
                    .real_runs
                    .iter()
                    .zip(&den.real_runs)
                    .map(|(n, d)| n / d)
                    .filter(|r| r.is_finite())
                    .collect();
                let errors: Vec<f64> = per_round
                    .iter()
                    .filter_map(|&r| error_pct(simulated, r))
                    .collect();
                let (real, error) = if per_round.is_empty() {
                    let real = num.real / den.real;
                    (real, error_pct(simulated, real))
                } else {
                    (
                        edge::median::median(per_round.iter().copied()).unwrap_or(f64::NAN),
                        edge::median::median(errors.iter().copied()),
                    )
                };
                out.push(RatioEntry {
                    bench: t.bench.to_string(),
                    table: t.id.to_string(),
                    row: r.label.to_string(),
                    over: first.label.to_string(),
                    runtime: r.runtime.to_string(),
                    stealing: c.stealing.clone(),
                    fidelity: f.as_str().to_string(),
                    cores,
                    real,
                    simulated,
                    error_pct: error,
                    error_pct_runs: errors,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(stealing: &str, real_runs: Vec<f64>, simulated: f64) -> Entry {
        Entry {
            bench: "unbalanced".into(),
            runtime: "libasync".into(),
            stealing: stealing.into(),
            fidelity: "ours".into(),
            cores: 2,
            real: edge::median::median(real_runs.iter().copied()).unwrap(),
            simulated,
            error_pct: None,
            real_runs,
            load_after: Vec::new(),
            cpu_per_wall: Vec::new(),
            other_cpus: Vec::new(),
        }
    }

    /// A ratio's error is taken round by round (numerator and denominator of one round) and
    /// its median reported, with the spread: one bad round does not decide it.
    #[test]
    fn ratio_errors_are_per_round_with_their_median_and_spread() {
        let entries = [
            entry("off", vec![100.0, 110.0, 90.0], 100.0),
            entry("base", vec![50.0, 66.0, 36.0], 50.0),
        ];
        let r = ratios(&entries);
        let base = r
            .iter()
            .find(|r| {
                r.stealing == "base" && r.cores == 2 && r.table == "III" && r.fidelity == "ours"
            })
            .expect("the libasync WS ratio of Table III");
        // Rounds: 0.5, 0.6, 0.4 real against 0.5 simulated.
        assert!((base.real - 0.5).abs() < 1e-12, "{base:?}");
        assert_eq!(base.error_pct, Some(0.0));
        let (lo, hi) = base.error_spread().unwrap();
        assert!((lo - 100.0 * (0.5 / 0.6 - 1.0)).abs() < 1e-9, "{lo}");
        assert!((hi - 25.0).abs() < 1e-9, "{hi}");
    }
}
