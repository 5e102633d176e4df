//! The run-to-run noise of each figure on one machine, learned from A/A runs (several runs of
//! one build), and what it does to the comparison: its false-alarm rate and its power.
//!
//! Why: the samples of one run share the machine's state of that run (other work, frequency,
//! cache and page placement), so a rank test on two runs' samples counts only the spread
//! within a run. Two runs of one build then differ by more than the test expects, and the test
//! flags a build that changed nothing. The spread between runs is measured here, per figure,
//! and a change must exceed it too.
//!
//! The rule ([`Calibration::bound`]): each calibration run gives one value per figure, the
//! median of its samples; `s` is the standard deviation of the natural log of those medians
//! over the runs. The difference of two runs' log medians then has standard deviation
//! `sqrt(2) s`, and its two-sided 99% bound is `z s sqrt(2)` with `z` = 2.576 (the 99.5th
//! percentile of the standard normal): the 99th percentile of A/A changes for that figure. A
//! change is flagged only when the comparison's own rule flags it (past the threshold and the
//! rank test significant) AND `|ln(NEW / BASE)|` exceeds that bound. The largest change seen
//! between two calibration runs is kept beside it as a check on the normal model.
//!
//! The evaluation ([`evaluate`]) measures instead of assuming, leaving out the runs it tests:
//! for every pair of runs (i, j), the calibration is learned from the other runs only, and
//! - false alarms: run j compared with run i, the share of gated figures flagged;
//! - power: for each figure and each planted change d, run j's samples of that figure are
//!   lowered by d (multiplied by 1 - d) and compared with run i, in both orders of the pair;
//!   the smallest d flagged in at least 95% of those trials is the figure's detectable change.
//!
//! Invariants: a figure with fewer than [`MIN_RUNS`] calibration runs has no bound (the
//! comparison says "not calibrated" and keeps its own rule); a calibration learned on another
//! machine (CPU model or core count) is never applied.

use super::compare::{judge, Options, Verdict};
use super::samples::SampleSet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Runs a figure needs in the calibration to get a bound.
pub const MIN_RUNS: usize = 3;

/// The standard normal's 99.5th percentile: a two-sided 99% bound.
pub const Z_99: f64 = 2.575_829_303_548_901;

/// The planted changes the power is measured at, in percent.
pub const PLANTED_PCT: [f64; 18] = [
    1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 12.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0,
    75.0,
];

/// Share of trials a planted change must be flagged in to count as detected.
pub const POWER: f64 = 0.95;

/// The noise of one figure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FigureNoise {
    /// Calibration runs that measured it.
    pub runs: usize,
    /// Standard deviation over the runs of the log of each run's median.
    pub sd_log: f64,
    /// Largest |change| between two calibration runs' medians, in percent of the smaller.
    pub aa_max_pct: f64,
    /// Whether it is a ratio that matters (else an absolute figure).
    #[serde(default)]
    pub ratio: bool,
}

impl FigureNoise {
    /// The bound on `|ln(NEW / BASE)|` an A/A pair stays within 99% of the time.
    pub fn bound_log(&self) -> f64 {
        Z_99 * std::f64::consts::SQRT_2 * self.sd_log
    }

    /// The bound as the range of A/A changes, e.g. `-24.0%..+31.6%`.
    pub fn spread(&self) -> String {
        let b = self.bound_log();
        format!(
            "{:+.1}%..{:+.1}%",
            ((-b).exp() - 1.0) * 100.0,
            (b.exp() - 1.0) * 100.0
        )
    }
}

/// A calibration: the noise of every figure of a set of A/A runs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// CPU model of the runs.
    pub cpu_model: String,
    /// Cores of the runs.
    pub cores: String,
    /// The machine id of the first run (CPU model | cores | kernel), for the reader.
    pub machine: String,
    /// Commit of the build the runs measured.
    pub commit: String,
    /// The runs' directories, as given.
    pub runs: Vec<String>,
    /// The rule, in words.
    pub rule: String,
    /// Noise per figure name (ratio names and figure keys).
    pub figures: BTreeMap<String, FigureNoise>,
}

/// One figure or ratio of a run: what the calibration and the evaluation work on.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    pub higher_is_better: bool,
    /// Whether the comparison gates it on one machine (ratios always; absolute figures on the
    /// same machine under comparable conditions).
    pub ratio: bool,
    pub by_sample: Vec<Option<f64>>,
}

/// Every ratio and figure of a sample set by name.
pub fn series(set: &SampleSet) -> BTreeMap<String, Series> {
    let mut out = BTreeMap::new();
    for r in &set.ratios {
        out.insert(
            r.name.clone(),
            Series {
                name: r.name.clone(),
                higher_is_better: true,
                ratio: true,
                by_sample: r.by_sample.clone(),
            },
        );
    }
    for f in set.figures.values() {
        out.insert(
            f.key.clone(),
            Series {
                name: f.key.clone(),
                higher_is_better: f.higher_is_better,
                ratio: false,
                by_sample: f.by_sample.clone(),
            },
        );
    }
    out
}

fn log_median(s: &Series) -> Option<f64> {
    let m = super::median(s.by_sample.iter().flatten().copied())?;
    (m > 0.0 && m.is_finite()).then(|| m.ln())
}

/// Sample standard deviation (n - 1).
fn sd(v: &[f64]) -> f64 {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
}

/// The rule as the calibration file and the comparison state it.
pub fn rule() -> String {
    format!(
        "flagged only if past the threshold, the rank test significant, and |ln(NEW/BASE)| > {Z_99:.3} * sqrt(2) * s, \
         s the standard deviation of ln(run median) over the A/A runs (the 99th percentile of A/A changes under a \
         normal run effect)"
    )
}

/// Learn the noise of every figure from runs of one build (`runs` as loaded series).
pub fn calibrate_series(runs: &[BTreeMap<String, Series>]) -> BTreeMap<String, FigureNoise> {
    let mut names: Vec<&String> = runs.iter().flat_map(|r| r.keys()).collect();
    names.sort();
    names.dedup();
    let mut out = BTreeMap::new();
    for name in names {
        let logs: Vec<f64> = runs
            .iter()
            .filter_map(|r| r.get(name).and_then(log_median))
            .collect();
        let ratio = runs.iter().any(|r| r.get(name).is_some_and(|s| s.ratio));
        if logs.len() < MIN_RUNS {
            continue;
        }
        let mut aa_max = 0f64;
        for (i, a) in logs.iter().enumerate() {
            for b in &logs[i + 1..] {
                aa_max = aa_max.max(((a - b).abs().exp() - 1.0) * 100.0);
            }
        }
        out.insert(
            name.clone(),
            FigureNoise {
                runs: logs.len(),
                sd_log: sd(&logs),
                aa_max_pct: aa_max,
                ratio,
            },
        );
    }
    out
}

impl Calibration {
    /// Calibrate from loaded A/A runs (at least two; the first names the machine).
    pub fn from_sets(sets: &[SampleSet]) -> anyhow::Result<Calibration> {
        anyhow::ensure!(
            sets.len() >= MIN_RUNS,
            "a calibration needs at least {MIN_RUNS} runs of one build (got {})",
            sets.len()
        );
        let first = &sets[0];
        for s in &sets[1..] {
            anyhow::ensure!(
                same_hardware(first, s),
                "{} ran on {}, {} on {}: a calibration is of one machine",
                first.dir.display(),
                first.machine(),
                s.dir.display(),
                s.machine()
            );
        }
        let commits: std::collections::BTreeSet<String> =
            sets.iter().map(|s| s.env_str("commit")).collect();
        anyhow::ensure!(
            commits.len() == 1,
            "the runs measured different commits ({}): a calibration is of one build",
            commits.into_iter().collect::<Vec<_>>().join(", ")
        );
        let runs: Vec<BTreeMap<String, Series>> = sets.iter().map(series).collect();
        Ok(Calibration {
            cpu_model: first.env_str("cpu_model"),
            cores: first.env_str("cores"),
            machine: first.machine(),
            commit: first.env_str("commit"),
            runs: sets.iter().map(|s| s.dir.display().to_string()).collect(),
            rule: rule(),
            figures: calibrate_series(&runs),
        })
    }

    /// Read a calibration file.
    pub fn load(path: &Path) -> anyhow::Result<Calibration> {
        use anyhow::Context;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the calibration {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("parsing the calibration {}", path.display()))
    }

    /// Write it as JSON.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        use anyhow::Context;
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("writing the calibration {}", path.display()))
    }

    /// Whether the calibration's machine is the one a sample set ran on.
    pub fn applies_to(&self, s: &SampleSet) -> bool {
        self.cpu_model != "unknown"
            && self.cpu_model == s.env_str("cpu_model")
            && self.cores == s.env_str("cores")
    }

    /// The noise of a figure, when calibrated.
    pub fn bound(&self, name: &str) -> Option<&FigureNoise> {
        self.figures.get(name)
    }
}

/// Same CPU model and core count (the kernel may differ between boots of one VM).
fn same_hardware(a: &SampleSet, b: &SampleSet) -> bool {
    let (x, y) = (a.env_str("cpu_model"), b.env_str("cpu_model"));
    x != "unknown" && x == y && a.env_str("cores") == b.env_str("cores")
}

/// Apply the noise bound to a verdict: a flagged change within the A/A spread is not flagged.
pub fn apply(
    verdict: Verdict,
    base: Option<f64>,
    new: Option<f64>,
    noise: Option<&FigureNoise>,
) -> Verdict {
    let (Some(b), Some(n), Some(noise)) = (base, new, noise) else {
        return verdict;
    };
    let flagged = matches!(verdict, Verdict::Regressed | Verdict::Improved);
    if flagged && b > 0.0 && n > 0.0 && (n / b).ln().abs() <= noise.bound_log() {
        Verdict::WithinNoise
    } else {
        verdict
    }
}

/// Whether a verdict is a flag (a change reported as real).
pub fn flagged(v: Verdict) -> bool {
    matches!(v, Verdict::Regressed | Verdict::Improved)
}

/// The judgment of one figure with the calibration's bound (`None`: its own rule only).
pub fn judge_calibrated(
    s_base: &Series,
    base: &[Option<f64>],
    new: &[Option<f64>],
    opts: &Options,
    noise: Option<&FigureNoise>,
) -> Verdict {
    let c = judge(&s_base.name, base, new, s_base.higher_is_better, opts);
    apply(c.verdict, c.base, c.new, noise)
}

/// False alarms of one A/A pair.
#[derive(Clone, Debug, PartialEq)]
pub struct PairAlarms {
    /// Run indices (BASE, NEW).
    pub pair: (usize, usize),
    /// Gated figures compared (ratios, absolute figures).
    pub compared: (usize, usize),
    /// Flagged names.
    pub flagged: Vec<String>,
    /// How many of `flagged` are ratios.
    pub flagged_ratios: usize,
    /// Names flagged by the rank test and the threshold alone (without the calibration).
    pub flagged_uncalibrated: Vec<String>,
}

/// The power on one figure.
#[derive(Clone, Debug, PartialEq)]
pub struct FigurePower {
    pub name: String,
    pub ratio: bool,
    /// Trials per planted change.
    pub trials: usize,
    /// The smallest planted change (percent) flagged in at least 95% of trials; `None` when
    /// none of [`PLANTED_PCT`] is.
    pub detected_pct: Option<f64>,
}

/// What [`evaluate`] measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Evaluation {
    pub runs: usize,
    pub pairs: Vec<PairAlarms>,
    pub power: Vec<FigurePower>,
}

impl Evaluation {
    /// (flagged, compared) over every pair: ratios, absolute figures.
    pub fn totals(&self) -> ((usize, usize), (usize, usize)) {
        let mut t = ((0, 0), (0, 0));
        for p in &self.pairs {
            let r = p.flagged_ratios;
            t.0 .0 += r;
            t.0 .1 += p.compared.0;
            t.1 .0 += p.flagged.len() - r;
            t.1 .1 += p.compared.1;
        }
        t
    }
}

/// Calibration from every run but those in `leave`.
fn calibrate_without(
    runs: &[BTreeMap<String, Series>],
    leave: &[usize],
) -> BTreeMap<String, FigureNoise> {
    let kept: Vec<BTreeMap<String, Series>> = runs
        .iter()
        .enumerate()
        .filter(|(i, _)| !leave.contains(i))
        .map(|(_, r)| r.clone())
        .collect();
    calibrate_series(&kept)
}

/// Measure the false-alarm rate and the power of the comparison with calibration on runs of
/// one build, each pair tested against a calibration learned from the other runs. Needs at
/// least `MIN_RUNS + 2` runs.
pub fn evaluate(sets: &[SampleSet], opts: &Options) -> anyhow::Result<Evaluation> {
    let k = sets.len();
    anyhow::ensure!(
        k >= MIN_RUNS + 2,
        "measuring false alarms and power needs at least {} runs (each pair is tested against a calibration \
         of the others); got {k}",
        MIN_RUNS + 2
    );
    let runs: Vec<BTreeMap<String, Series>> = sets.iter().map(series).collect();
    let mut eval = Evaluation {
        runs: k,
        ..Default::default()
    };
    let mut cal: BTreeMap<(usize, usize), BTreeMap<String, FigureNoise>> = BTreeMap::new();
    for i in 0..k {
        for j in i + 1..k {
            cal.insert((i, j), calibrate_without(&runs, &[i, j]));
        }
    }
    // False alarms: j against i, as measured.
    for (&(i, j), noise) in &cal {
        let mut p = PairAlarms {
            pair: (i, j),
            compared: (0, 0),
            flagged: Vec::new(),
            flagged_ratios: 0,
            flagged_uncalibrated: Vec::new(),
        };
        for (name, b) in &runs[i] {
            let Some(n) = runs[j].get(name) else { continue };
            let c = judge(name, &b.by_sample, &n.by_sample, b.higher_is_better, opts);
            if c.change_pct.is_none() {
                continue;
            }
            if b.ratio {
                p.compared.0 += 1;
            } else {
                p.compared.1 += 1;
            }
            if flagged(c.verdict) {
                p.flagged_uncalibrated.push(name.clone());
            }
            if flagged(apply(c.verdict, c.base, c.new, noise.get(name))) {
                p.flagged.push(name.clone());
                p.flagged_ratios += usize::from(b.ratio);
            }
        }
        eval.pairs.push(p);
    }
    // Power: run j's samples lowered, against run i, both orders.
    let names: Vec<&String> = runs[0].keys().collect();
    for name in names {
        let mut trials = 0;
        let mut detected = None;
        for &d in &PLANTED_PCT {
            let (mut hit, mut n_trials) = (0, 0);
            for (&(a, b), noise) in &cal {
                for (i, j) in [(a, b), (b, a)] {
                    let (Some(bs), Some(ns)) = (runs[i].get(name), runs[j].get(name)) else {
                        continue;
                    };
                    let lowered: Vec<Option<f64>> = ns
                        .by_sample
                        .iter()
                        .map(|v| v.map(|x| x * (1.0 - d / 100.0)))
                        .collect();
                    if log_median(bs).is_none() || log_median(ns).is_none() {
                        continue;
                    }
                    n_trials += 1;
                    if flagged(judge_calibrated(
                        bs,
                        &bs.by_sample,
                        &lowered,
                        opts,
                        noise.get(name),
                    )) {
                        hit += 1;
                    }
                }
            }
            trials = n_trials;
            if n_trials > 0 && hit as f64 >= POWER * n_trials as f64 {
                detected = Some(d);
                break;
            }
        }
        if trials > 0 {
            eval.power.push(FigurePower {
                name: name.clone(),
                ratio: runs[0][name].ratio,
                trials,
                detected_pct: detected,
            });
        }
    }
    Ok(eval)
}

/// The calibration and the evaluation as text: per figure its A/A spread and detectable
/// change, then the false-alarm rate.
pub fn report(cal: &Calibration, eval: Option<&Evaluation>, opts: &Options) -> String {
    use std::fmt::Write;
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# Noise calibration: {} run(s) of commit {} on {}\n\nRule: {}.\nComparison: threshold {}%, alpha {}.\n",
        cal.runs.len(),
        cal.commit,
        cal.machine,
        cal.rule,
        opts.threshold_pct,
        opts.alpha
    );
    let power: BTreeMap<&str, &FigurePower> = eval
        .map(|e| e.power.iter().map(|p| (p.name.as_str(), p)).collect())
        .unwrap_or_default();
    let _ = writeln!(
        t,
        "| figure | runs | A/A spread (99%) | largest A/A change | smallest change detected in 95% of trials |\n|---|---:|---:|---:|---:|"
    );
    let mut names: Vec<&String> = cal.figures.keys().collect();
    // Ratios first.
    names.sort_by_key(|n| (!cal.figures[*n].ratio, n.to_string()));
    for name in names {
        let f = &cal.figures[name];
        let det = match power.get(name.as_str()) {
            Some(p) => p.detected_pct.map_or(
                format!(
                    "> {}% ({} trials)",
                    PLANTED_PCT[PLANTED_PCT.len() - 1],
                    p.trials
                ),
                |d| format!("{d}% ({} trials)", p.trials),
            ),
            None => "not measured".into(),
        };
        let _ = writeln!(
            t,
            "| {name} | {} | {} | {:.1}% | {det} |",
            f.runs,
            f.spread(),
            f.aa_max_pct
        );
    }
    if let Some(e) = eval {
        let ((rf, rc), (af, ac)) = e.totals();
        let share = |f: usize, c: usize| {
            if c == 0 {
                "n/a".to_string()
            } else {
                format!("{:.2}%", f as f64 / c as f64 * 100.0)
            }
        };
        let uncal: usize = e.pairs.iter().map(|p| p.flagged_uncalibrated.len()).sum();
        let _ = writeln!(
            t,
            "\nFalse alarms over {} A/A pairs of {} runs (each pair against a calibration of the other {} runs):\n\
             - ratios: {rf} of {rc} comparisons flagged ({})\n\
             - absolute figures (gated on one machine): {af} of {ac} flagged ({})\n\
             - all gated: {} of {} ({}); without the calibration (threshold and rank test alone): {uncal} ({})",
            e.pairs.len(),
            e.runs,
            e.runs - 2,
            share(rf, rc),
            share(af, ac),
            rf + af,
            rc + ac,
            share(rf + af, rc + ac),
            share(uncal, rc + ac),
        );
        for p in e.pairs.iter().filter(|p| !p.flagged.is_empty()) {
            let _ = writeln!(
                t,
                "  - runs {} vs {}: {}",
                p.pair.0 + 1,
                p.pair.1 + 1,
                p.flagged.join("; ")
            );
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(name: &str, ratio: bool, v: &[f64]) -> Series {
        Series {
            name: name.into(),
            higher_is_better: true,
            ratio,
            by_sample: v.iter().copied().map(Some).collect(),
        }
    }

    fn run(level: f64) -> BTreeMap<String, Series> {
        let v: Vec<f64> = [0.99, 1.0, 1.01, 0.995, 1.005]
            .iter()
            .map(|x| x * level)
            .collect();
        [("r".to_string(), s("r", true, &v))].into_iter().collect()
    }

    #[test]
    fn the_bound_is_the_99th_percentile_of_the_run_to_run_difference() {
        // Run medians 100, 102, 98: s = 0.02 in log terms about.
        let runs = vec![run(100.0), run(102.0), run(98.0)];
        let cal = calibrate_series(&runs);
        let n = &cal["r"];
        let logs = [100f64.ln(), 102f64.ln(), 98f64.ln()];
        assert!((n.sd_log - sd(&logs)).abs() < 1e-12);
        assert!((n.bound_log() - Z_99 * 2f64.sqrt() * n.sd_log).abs() < 1e-12);
        assert!((n.aa_max_pct - (102.0 / 98.0 - 1.0) * 100.0).abs() < 1e-9);
        // Two runs are too few.
        assert!(calibrate_series(&runs[..2]).is_empty());
    }

    #[test]
    fn a_flag_within_the_bound_is_dropped_and_one_past_it_kept() {
        let noise = FigureNoise {
            runs: 6,
            sd_log: 0.03,
            aa_max_pct: 9.0,
            ratio: true,
        };
        // Bound: 2.576 * 1.414 * 0.03 = 0.109 in log, about 11.5%.
        assert_eq!(
            apply(Verdict::Regressed, Some(100.0), Some(92.0), Some(&noise)),
            Verdict::WithinNoise
        );
        assert_eq!(
            apply(Verdict::Regressed, Some(100.0), Some(80.0), Some(&noise)),
            Verdict::Regressed
        );
        assert_eq!(
            apply(Verdict::Improved, Some(100.0), Some(125.0), Some(&noise)),
            Verdict::Improved
        );
        // Not flagged stays as it was; no calibration changes nothing.
        assert_eq!(
            apply(Verdict::Ok, Some(100.0), Some(80.0), Some(&noise)),
            Verdict::Ok
        );
        assert_eq!(
            apply(Verdict::Regressed, Some(100.0), Some(92.0), None),
            Verdict::Regressed
        );
    }
}
