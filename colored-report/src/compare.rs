//! The regression tracker: every figure's change from BASE to NEW on sample sets, the ratios
//! that matter, and the verdict.
//!
//! A figure or ratio changed when both hold:
//! 1. the ratio of the medians NEW / BASE moved past the threshold (percent), and
//! 2. a rank test says the difference is significant at `alpha`: Mann-Whitney U on the two
//!    sample sets, or, for paired runs (A B A B ...), the Wilcoxon signed-rank test on the pair
//!    ratios. The change is shown with the p-value and the test's confidence interval of the
//!    ratio (Hodges-Lehmann, level 1 - alpha).
//!
//! When the sample counts cannot reach `alpha` at all (one sample per side; 4 vs 4 at 0.01),
//! the change cannot be tested and the report warns: the threshold decides, provided the
//! samples are completely separated (the test's most extreme outcome, which one sample per
//! side always is); otherwise the change is "~ not significant". (Threshold alone, 7 pairs of
//! noisy steal-cost counters flagged a same-commit A/A on 2026-12-01.)
//!
//! What is gated (can fail the comparison): the ratios that matter, always; the absolute
//! figures only when BASE and NEW come from the same machine (CPU model, cores, kernel in
//! env.json) under comparable conditions: paired runs (A B A B share them), or two separate
//! runs that both started on a quiet machine (1-minute load average below half the cores, as
//! env.json's `loadavg_start` records; not recorded counts as quiet). On the project's shared
//! 2-vCPU machine (2026-12-01) two runs of one build 8 minutes apart differed by 30-50% in
//! absolute rates while the ratios held: separate runs on a busy machine compare the load, not
//! the code. Instruction counts are gated when both were built by the same rustc. Other figures are
//! shown, never gated. An experiment that produced figures in BASE but none in NEW is
//! missing and fails, unless its definition changed since ([`redefined`]: its successor has a
//! new name and is a new figure); a figure only in NEW is new, never a regression. A value that is `n/a`
//! on either side is printed as such and never compared (never taken as 0).

use super::fmt_opt;
use super::instr;
use super::noise::{self, Calibration, FigureNoise};
use super::samples::SampleSet;
use super::stats::{self, RankTest, RatioCi};
use std::fmt::Write;

/// How to compare.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Options {
    /// Smallest change that counts, in percent of BASE's median.
    pub threshold_pct: f64,
    /// Significance level of the rank test.
    pub alpha: f64,
    /// Samples are pairs (sample i of BASE and of NEW ran back to back): test the pair ratios.
    pub paired: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            threshold_pct: 5.0,
            alpha: 0.01,
            paired: false,
        }
    }
}

/// The verdict on one figure or ratio.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Worse past the threshold, and significant (or untestable: threshold alone).
    Regressed,
    /// Better past the threshold, and significant (or untestable).
    Improved,
    /// Past the threshold but the test does not say it is real.
    NotSignificant,
    /// Past the threshold and significant, but within what A/A runs of this machine show for
    /// this figure (see `noise`).
    WithinNoise,
    /// Within the threshold.
    Ok,
    /// `n/a` on a side.
    NotCompared,
    /// Only in NEW.
    New,
    /// Only in BASE.
    MissingInNew,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Verdict::Regressed => "REGRESSED",
            Verdict::Improved => "improved",
            Verdict::NotSignificant => "~ not significant",
            Verdict::WithinNoise => "~ within A/A noise",
            Verdict::Ok => "ok",
            Verdict::NotCompared => "not compared (n/a)",
            Verdict::New => "new",
            Verdict::MissingInNew => "missing in NEW",
        }
    }
}

/// One compared figure or ratio.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub name: String,
    pub base: Option<f64>,
    pub new: Option<f64>,
    /// NEW / BASE - 1, in percent (of the medians; of the median pair ratio when paired).
    pub change_pct: Option<f64>,
    /// The rank test, when it could run.
    pub test: Option<RankTest>,
    /// Interval of the ratio NEW / BASE.
    pub ci: Option<RatioCi>,
    /// Samples on each side (pairs when paired).
    pub n: (usize, usize),
    /// Whether the test can reach `alpha` with these counts.
    pub testable: bool,
    pub verdict: Verdict,
    /// Whether a regression of this one fails the comparison.
    pub gated: bool,
    /// The A/A noise of this figure the verdict used (a calibration of this machine).
    pub noise: Option<FigureNoise>,
}

/// What the comparison found.
#[derive(Clone, Debug, Default)]
pub struct Comparison {
    /// The printable report.
    pub text: String,
    /// Every ratio that matters, in order.
    pub ratios: Vec<Change>,
    /// Every figure, by key order.
    pub figures: Vec<Change>,
    /// Experiments of BASE without figures in NEW, with NEW's error where it recorded one.
    pub missing: Vec<(String, String)>,
    /// Whether BASE and NEW come from the same machine.
    pub same_machine: bool,
    /// Whether absolute figures are gated (same machine, comparable conditions).
    pub absolute_gated: bool,
    /// What the calibration did: `None` without one, else a line for the header.
    pub calibration: Option<String>,
}

impl Comparison {
    /// Gated regressions (ratios and figures).
    pub fn regressions(&self) -> Vec<&Change> {
        self.ratios
            .iter()
            .chain(&self.figures)
            .filter(|c| c.gated && c.verdict == Verdict::Regressed)
            .collect()
    }

    pub fn failed(&self) -> bool {
        !self.regressions().is_empty() || !self.missing.is_empty()
    }

    fn count(&self, f: impl Fn(&Change) -> bool) -> usize {
        self.ratios
            .iter()
            .chain(&self.figures)
            .filter(|c| f(c))
            .count()
    }
}

/// Change from `a` to `b` in percent of `|a|`; `None` when either is absent or `a` is 0.
pub fn change_pct(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if a != 0.0 && a.is_finite() && b.is_finite() => {
            Some((b - a) / a.abs() * 100.0)
        }
        _ => None,
    }
}

/// Judge one figure from its samples (`by_sample` aligned by sample index for pairing).
pub fn judge(
    name: &str,
    base: &[Option<f64>],
    new: &[Option<f64>],
    higher_is_better: bool,
    opts: &Options,
) -> Change {
    let (bv, nv): (Vec<f64>, Vec<f64>) = (
        base.iter().flatten().copied().collect(),
        new.iter().flatten().copied().collect(),
    );
    let (bm, nm) = (stats::median(&bv), stats::median(&nv));
    let mut c = Change {
        name: name.to_string(),
        base: bm,
        new: nm,
        change_pct: change_pct(bm, nm),
        test: None,
        ci: None,
        n: (bv.len(), nv.len()),
        testable: false,
        verdict: Verdict::NotCompared,
        gated: false,
        noise: None,
    };
    if opts.paired {
        let (pa, pb): (Vec<f64>, Vec<f64>) = base
            .iter()
            .zip(new)
            .filter_map(|(a, b)| Some(((*a)?, (*b)?)))
            .unzip();
        c.n = (pa.len(), pb.len());
        let ratios: Vec<f64> = stats::log_ratios(&pa, &pb)
            .into_iter()
            .map(f64::exp)
            .collect();
        c.change_pct = stats::median(&ratios).map(|r| (r - 1.0) * 100.0);
        c.test = stats::wilcoxon_signed_rank(&pa, &pb);
        c.ci = stats::paired_ci(&pa, &pb, opts.alpha);
    } else {
        c.test = stats::mann_whitney(&bv, &nv);
        c.ci = stats::shift_ci(&bv, &nv, opts.alpha);
    }
    let Some(p) = c.change_pct else {
        return c;
    };
    c.testable = c.test.is_some_and(|t| t.can_reach(opts.alpha));
    let significant = c.test.is_some_and(|t| t.p <= opts.alpha);
    // Untestable counts: only the test's most extreme outcome (every sample on one side of
    // every other; always so with one sample per side) lets the threshold decide.
    let extreme = c.test.is_some_and(|t| t.p <= t.min_p * (1.0 + 1e-9));
    let worse = (p < 0.0) == higher_is_better;
    c.verdict = if p.abs() <= opts.threshold_pct {
        Verdict::Ok
    } else if (c.testable && !significant) || (!c.testable && !extreme) {
        Verdict::NotSignificant
    } else if worse {
        Verdict::Regressed
    } else {
        Verdict::Improved
    };
    c
}

/// Whether two environments name the same machine (every field known and equal).
pub fn same_machine(base: &SampleSet, new: &SampleSet) -> bool {
    ["cpu_model", "cores", "kernel"].iter().all(|k| {
        let (a, b) = (base.env_str(k), new.env_str(k));
        a != "unknown" && a == b
    })
}

/// The 1-minute load average a run started with, when recorded.
fn start_load(s: &SampleSet) -> Option<f64> {
    s.env.get("loadavg_start").and_then(|v| {
        v.as_f64()
            .or_else(|| v.as_str().and_then(|x| x.parse().ok()))
    })
}

/// Whether a run started on a quiet machine (load below half the cores; unrecorded: yes).
pub fn started_quiet(s: &SampleSet) -> bool {
    let cores: f64 = s.env_str("cores").parse().unwrap_or(1.0);
    start_load(s).map_or(true, |l| l < cores / 2.0)
}

fn same_compiler(base: &SampleSet, new: &SampleSet) -> bool {
    let (a, b) = (base.env_str("rustc"), new.env_str("rustc"));
    a != "unknown" && a == b
}

fn pct(p: Option<f64>) -> String {
    p.map_or_else(|| "n/a".into(), |p| format!("{p:+.1}%"))
}

fn test_cell(c: &Change) -> String {
    match (c.test, c.testable) {
        _ if c.change_pct.is_none() => String::new(),
        (Some(t), true) => format!("p={}", fmt_p(t.p)),
        (t, false) => {
            let why = if c.n.0 <= 1 && c.n.1 <= 1 {
                "one sample per side".to_string()
            } else {
                format!(
                    "{}/{} samples cannot reach the level (min p {})",
                    c.n.0,
                    c.n.1,
                    t.map_or("n/a".into(), |t| fmt_p(t.min_p))
                )
            };
            format!("untested: {why}")
        }
        (None, true) => String::new(),
    }
}

fn fmt_p(p: f64) -> String {
    if p < 0.001 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

fn ci_cell(c: &Change) -> String {
    match c.ci {
        Some(ci) if c.change_pct.is_some() => format!(
            "{:+.1}%..{:+.1}%",
            (ci.low - 1.0) * 100.0,
            (ci.high - 1.0) * 100.0
        ),
        _ => String::new(),
    }
}

fn row(t: &mut String, first: &str, c: &Change, gated: Option<bool>) {
    let _ = write!(
        t,
        "| {first} | {} | {} | {} | {} | {} | {} | {}/{} |",
        fmt_opt(c.base),
        fmt_opt(c.new),
        pct(c.change_pct),
        c.verdict.label(),
        test_cell(c),
        ci_cell(c),
        c.n.0,
        c.n.1
    );
    if let Some(g) = gated {
        let _ = write!(t, " {} |", if g { "yes" } else { "no" });
    }
    t.push('\n');
}

/// What NEW measures instead of an experiment whose definition changed (so it has a new name):
/// `None` for an experiment still defined as it was. BASE's results of a redefined experiment
/// are not missing from NEW: its successor is a new figure, compared with nothing.
pub fn redefined(experiment: &str) -> Option<&'static str> {
    let parts: Vec<&str> = experiment.split('/').collect();
    match parts.as_slice() {
        ["sws", run] if run.starts_with("mely-all-w") => Some(
            "sws/mely-all-p1-* (connection penalty 1, the paper's) and mely-all-p1000-* (ours): \
             the connection penalty is explicit",
        ),
        ["microbench", "penalty" | "cache-efficient", ..] => Some(
            "microbench/penalty-l2, cache-efficient-l2: arrays sized to the L2 as the paper sized them",
        ),
        ["microbench", _, _, stealing]
            if ["time-left", "penalty", "all"]
                .contains(&stealing.trim_end_matches("-profiled")) =>
        {
            Some("the same with -one (the paper's one-color steal) or -half (ours)")
        }
        ["sfs", "sftp"] => Some("sfs/sftp-s<sessions>: as many sftp sessions as SFS has clients"),
        ["sfs", run] if run.starts_with("sftp-s") => Some(
            "sfs/sftp-s<sessions>: as many sftp sessions as SFS has clients (16), in quick mode too",
        ),
        ["microbench", "synthetic", "base (one shared queue)"] => Some(
            "microbench/synthetic/base (one shared spin-locked queue): the shared queue is spin-locked, \
             as libasync-smp's was",
        ),
        _ => None,
    }
}

/// Experiments of BASE without figures in NEW, with NEW's error where it recorded one
/// (redefined experiments are not missing).
fn missing(base: &SampleSet, new: &SampleSet) -> Vec<(String, String)> {
    base.experiments
        .iter()
        .filter(|e| !new.experiments.contains(*e) && redefined(e).is_none())
        .map(|e| {
            let why = new
                .missing
                .iter()
                .find(|(k, _)| {
                    e == *k || e.starts_with(&format!("{k}/")) || e.starts_with(&format!("{k}-"))
                })
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| "no result in NEW".into());
            (e.clone(), why)
        })
        .collect()
}

/// Judge every figure of either side (by key); returns the changes and their units.
fn judge_figures(
    base: &SampleSet,
    new: &SampleSet,
    opts: &Options,
    absolute_gated: bool,
) -> (Vec<Change>, Vec<String>) {
    let instr_gated = same_compiler(base, new);
    let keys: std::collections::BTreeSet<&String> =
        base.figures.keys().chain(new.figures.keys()).collect();
    let (mut out, mut units) = (Vec::new(), Vec::new());
    for k in keys {
        let (b, n) = (base.figures.get(k), new.figures.get(k));
        let f = b.or(n).expect("key from one side");
        let empty = Vec::new();
        let bs = b.map_or(&empty, |f| &f.by_sample);
        let ns = n.map_or(&empty, |f| &f.by_sample);
        let mut ch = judge(k, bs, ns, f.higher_is_better, opts);
        match (b.is_some(), n.is_some()) {
            (true, false) => ch.verdict = Verdict::MissingInNew,
            (false, true) => ch.verdict = Verdict::New,
            _ => {}
        }
        ch.gated = if f.unit == instr::UNIT {
            instr_gated
        } else {
            absolute_gated
        };
        units.push(f.unit.clone());
        out.push(ch);
    }
    (out, units)
}

/// The last line: verdict and counts.
fn summary(c: &Comparison, untested: usize) -> String {
    let ratio_reg = c
        .ratios
        .iter()
        .filter(|x| x.verdict == Verdict::Regressed)
        .count();
    let fig_reg = c
        .figures
        .iter()
        .filter(|x| x.gated && x.verdict == Verdict::Regressed)
        .count();
    format!(
        "{}: {ratio_reg} ratio(s) regressed, {fig_reg} gated figure(s) regressed, {} improved, {} ~ not significant, \
         {} ~ within A/A noise, {untested} untested (threshold only), {} not compared (n/a), {} new figure(s), \
         {} experiment(s) missing",
        if c.failed() { "FAIL" } else { "PASS" },
        c.count(|x| x.verdict == Verdict::Improved),
        c.count(|x| x.verdict == Verdict::NotSignificant),
        c.count(|x| x.verdict == Verdict::WithinNoise),
        c.count(|x| x.verdict == Verdict::NotCompared),
        c.count(|x| x.verdict == Verdict::New),
        c.missing.len()
    )
}

/// Compare two sample sets.
pub fn compare(base: &SampleSet, new: &SampleSet, opts: &Options) -> Comparison {
    compare_calibrated(base, new, opts, None)
}

/// Compare two sample sets with the A/A noise of their machine (see `noise`): a change the
/// rank test flags is flagged only past the figure's A/A spread. A calibration of another
/// machine is not used (the header says so). With a calibration, the calibrated absolute
/// figures are gated on the same machine even when a run started busy: the spread they must
/// exceed was measured under this machine's load (the others keep the quiet-machine rule).
pub fn compare_calibrated(
    base: &SampleSet,
    new: &SampleSet,
    opts: &Options,
    cal: Option<&Calibration>,
) -> Comparison {
    let same = same_machine(base, new);
    let quiet = started_quiet(base) && started_quiet(new);
    let cal = cal.filter(|k| k.applies_to(base) && k.applies_to(new));
    let mut c = Comparison {
        same_machine: same,
        absolute_gated: same && (opts.paired || quiet),
        ..Default::default()
    };
    // Ratios first: they are always gated.
    for (b, n) in base.ratios.iter().zip(&new.ratios) {
        let mut ch = judge(&b.name, &b.by_sample, &n.by_sample, true, opts);
        ch.gated = true;
        c.ratios.push(ch);
    }
    let (figures, units) = judge_figures(base, new, opts, c.absolute_gated);
    c.figures = figures;
    c.missing = missing(base, new);
    if let Some(k) = cal {
        for ch in c.ratios.iter_mut().chain(c.figures.iter_mut()) {
            ch.noise = k.bound(&ch.name).cloned();
            ch.verdict = noise::apply(ch.verdict, ch.base, ch.new, ch.noise.as_ref());
        }
        for (ch, unit) in c.figures.iter_mut().zip(&units) {
            if same && ch.noise.is_some() && unit != instr::UNIT {
                ch.gated = true;
            }
        }
        c.calibration = Some(format!(
            "A/A noise of this machine from {} run(s) of commit {} ({} figures calibrated): {}",
            k.runs.len(),
            k.commit,
            k.figures.len(),
            k.rule
        ));
    }

    let untested = c.count(|x| x.change_pct.is_some() && !x.testable);
    let mut t = header(&c, base, new, opts, untested);
    flagged_section(&mut t, &c);
    ratios_section(&mut t, &c, base, opts);
    experiments_section(&mut t, &c, base, new);
    figures_section(&mut t, &c, &units, opts);
    let _ = writeln!(t, "\n{}", summary(&c, untested));
    c.text = t;
    c
}

/// The confidence level of the intervals, in percent.
fn level_pct(opts: &Options) -> f64 {
    (1.0 - opts.alpha) * 100.0
}

/// The report's title, both sides' provenance, what is gated and why, and the warning when
/// changes cannot be tested at `alpha`.
fn header(
    c: &Comparison,
    base: &SampleSet,
    new: &SampleSet,
    opts: &Options,
    untested: usize,
) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# Comparison (threshold {}%, alpha {}{})\n",
        opts.threshold_pct,
        opts.alpha,
        if opts.paired { ", paired" } else { "" }
    );
    for (side, s) in [("BASE:", base), ("NEW:", new)] {
        let _ = writeln!(
            t,
            "- {side:<5} {} (commit {}, {}; {} sample(s), {}; {})",
            s.dir.display(),
            s.env_str("commit"),
            s.env_str("date"),
            s.samples,
            s.interleaving,
            s.machine()
        );
    }
    let load = |s: &SampleSet| start_load(s).map_or("not recorded".into(), |l| format!("{l}"));
    let _ = writeln!(
        t,
        "- {}\n",
        match (c.same_machine, c.absolute_gated) {
            (true, true) => "same machine: absolute figures are gated as well as the ratios".to_string(),
            (true, false) if c.calibration.is_some() => format!(
                "same machine, a run started with the machine loaded (1-minute load average {} and {}, at \
                 least half the cores; a previous run's own workers count too): the ratios and the \
                 absolute figures the A/A calibration covers are gated; the others are shown",
                load(base),
                load(new)
            ),
            (true, false) => format!(
                "same machine, but a run started with the machine loaded (1-minute load average {} and {}, \
                 at least half the cores; a previous run's own workers count too): only the ratios are \
                 gated; absolute figures are shown (use --ab: paired runs gate them)",
                load(base),
                load(new)
            ),
            _ => "different (or unrecorded) machines: only the ratios are gated; absolute figures are shown"
                .to_string(),
        }
    );
    match &c.calibration {
        Some(line) => {
            let _ = writeln!(t, "- {line}\n");
        }
        None => {
            let _ = writeln!(
                t,
                "- no A/A calibration of this machine used: the rank test treats the samples of a run as independent \
                 draws and does not know the run-to-run spread (scripts/compare.sh --calibrate)\n"
            );
        }
    }
    if untested > 0 {
        let single = c.count(|x| x.change_pct.is_some() && x.n.0 <= 1 && x.n.1 <= 1);
        let _ = writeln!(
            t,
            "WARNING: {untested} change(s) cannot be tested at alpha {} ({single} with a single sample per side): \
             the threshold alone decides them. Repeat the runs (REPRO_RUNS=5, or --ab with --pairs 8) to test them.\n",
            opts.alpha
        );
    }
    t
}

/// With a calibration: every gated change the rank test flagged, with the A/A spread it was
/// held against (flagged past it, or within it).
fn flagged_section(t: &mut String, c: &Comparison) {
    if c.calibration.is_none() {
        return;
    }
    let held: Vec<&Change> = c
        .ratios
        .iter()
        .chain(&c.figures)
        .filter(|x| {
            x.gated
                && matches!(
                    x.verdict,
                    Verdict::Regressed | Verdict::Improved | Verdict::WithinNoise
                )
        })
        .collect();
    let _ = writeln!(t, "## Gated changes held against the A/A spread\n");
    if held.is_empty() {
        let _ = writeln!(
            t,
            "none: no gated change passed the threshold and the rank test\n"
        );
        return;
    }
    for x in held {
        let spread = x.noise.as_ref().map_or_else(
            || "A/A spread: not calibrated (the rank test and threshold alone)".to_string(),
            |n| {
                format!(
                    "A/A spread {} (99%, from {} runs; largest A/A change {:.1}%)",
                    n.spread(),
                    n.runs,
                    n.aa_max_pct
                )
            },
        );
        let _ = writeln!(
            t,
            "- {} {}: {} -> {} ({}); {spread}",
            x.verdict.label(),
            x.name,
            fmt_opt(x.base),
            fmt_opt(x.new),
            pct(x.change_pct)
        );
    }
    t.push('\n');
}

/// The table of the ratios that matter, with the paper's value of each.
fn ratios_section(t: &mut String, c: &Comparison, base: &SampleSet, opts: &Options) {
    let _ = writeln!(
        t,
        "## Ratios that matter (higher is better; always gated)\n"
    );
    let _ = writeln!(
        t,
        "| ratio | paper | BASE | NEW | change | verdict | test | {:.0}% CI of the change | n |\n|---|---:|---:|---:|---:|---|---|---|---:|",
        level_pct(opts)
    );
    for (ch, b) in c.ratios.iter().zip(&base.ratios) {
        row(t, &format!("{} | {}", ch.name, fmt_opt(b.paper)), ch, None);
    }
}

/// Experiments missing from NEW, redefined since BASE, and new in NEW.
fn experiments_section(t: &mut String, c: &Comparison, base: &SampleSet, new: &SampleSet) {
    let _ = writeln!(t, "\n## Experiments in BASE missing from NEW\n");
    if c.missing.is_empty() {
        let _ = writeln!(t, "none");
    }
    for (e, why) in &c.missing {
        let _ = writeln!(t, "- MISSING {e}: {}", why.lines().next().unwrap_or(""));
    }
    let renamed: Vec<(&String, &str)> = base
        .experiments
        .iter()
        .filter(|e| !new.experiments.contains(*e))
        .filter_map(|e| Some((e, redefined(e)?)))
        .collect();
    if !renamed.is_empty() {
        let _ = writeln!(
            t,
            "\n## Experiments of BASE redefined since (not compared)\n"
        );
    }
    for (e, now) in renamed {
        let _ = writeln!(t, "- REDEFINED {e}: now {now} (a new figure in NEW)");
    }
    let added: Vec<&str> = new
        .experiments
        .iter()
        .filter(|e| !base.experiments.contains(*e))
        .map(String::as_str)
        .collect();
    if !added.is_empty() {
        let _ = writeln!(t, "\nNew in NEW (not compared): {}", added.join(", "));
    }
}

/// The table of every figure, with its unit and whether it is gated.
fn figures_section(t: &mut String, c: &Comparison, units: &[String], opts: &Options) {
    let _ = writeln!(t, "\n## Every figure\n");
    let _ = writeln!(
        t,
        "| figure | unit | BASE | NEW | change | verdict | test | {:.0}% CI of the change | n | gated |\n|---|---|---:|---:|---:|---|---|---|---:|---|",
        level_pct(opts)
    );
    for (ch, unit) in c.figures.iter().zip(units) {
        row(t, &format!("{} | {unit}", ch.name), ch, Some(ch.gated));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some(v: &[f64]) -> Vec<Option<f64>> {
        v.iter().copied().map(Some).collect()
    }

    #[test]
    fn a_clear_drop_with_five_samples_is_a_regression() {
        let b = some(&[100.0, 102.0, 98.0, 101.0, 99.0]);
        let n = some(&[80.0, 81.0, 79.0, 80.5, 79.5]);
        let c = judge("x", &b, &n, true, &Options::default());
        assert_eq!(c.verdict, Verdict::Regressed, "{c:?}");
        assert!(c.testable && c.test.unwrap().p < 0.01);
        // Lower is better: the same drop is an improvement.
        let c = judge("x", &b, &n, false, &Options::default());
        assert_eq!(c.verdict, Verdict::Improved, "{c:?}");
    }

    #[test]
    fn past_the_threshold_but_noisy_is_not_significant() {
        let b = some(&[100.0, 130.0, 70.0, 110.0, 95.0]);
        let n = some(&[90.0, 60.0, 120.0, 85.0, 75.0]);
        let c = judge("x", &b, &n, true, &Options::default());
        assert!(c.change_pct.unwrap() < -5.0);
        assert_eq!(c.verdict, Verdict::NotSignificant, "{c:?}");
    }

    #[test]
    fn single_samples_fall_back_to_the_threshold() {
        let c = judge(
            "x",
            &[Some(100.0)],
            &[Some(80.0)],
            true,
            &Options::default(),
        );
        assert!(!c.testable);
        assert_eq!(c.verdict, Verdict::Regressed);
        assert!(test_cell(&c).contains("untested: one sample per side"));
        let c = judge(
            "x",
            &[Some(100.0)],
            &[Some(97.0)],
            true,
            &Options::default(),
        );
        assert_eq!(c.verdict, Verdict::Ok);
    }

    #[test]
    fn too_few_samples_need_complete_separation() {
        // 3 vs 3 cannot reach 0.01; overlapping sets past the threshold are not flagged ...
        let b = some(&[100.0, 80.0, 120.0]);
        let n = some(&[85.0, 70.0, 101.0]);
        let c = judge("x", &b, &n, true, &Options::default());
        assert!(!c.testable);
        assert_eq!(c.verdict, Verdict::NotSignificant, "{c:?}");
        // ... separated ones are.
        let n = some(&[75.0, 70.0, 78.0]);
        let c = judge("x", &b, &n, true, &Options::default());
        assert_eq!(c.verdict, Verdict::Regressed, "{c:?}");
    }

    #[test]
    fn paired_tests_the_pair_ratios() {
        // A drifts upwards through the run; B is 10% below A in every pair. Unpaired, the
        // drift hides the loss; paired, 8 pairs show it.
        let a: Vec<f64> = (0..8).map(|i| 100.0 + 10.0 * i as f64).collect();
        let b: Vec<f64> = a.iter().map(|x| x * 0.9).collect();
        let opts = Options {
            paired: true,
            ..Default::default()
        };
        let c = judge("x", &some(&a), &some(&b), true, &opts);
        assert_eq!(c.verdict, Verdict::Regressed, "{c:?}");
        assert!((c.change_pct.unwrap() + 10.0).abs() < 1e-9);
        let c = judge("x", &some(&a), &some(&b), true, &Options::default());
        assert_eq!(c.verdict, Verdict::NotSignificant, "{c:?}");
    }

    #[test]
    fn na_is_never_compared() {
        let c = judge("x", &[None], &[Some(1.0)], true, &Options::default());
        assert_eq!(c.verdict, Verdict::NotCompared);
    }

    #[test]
    fn redefined_experiments_name_their_successor_and_the_others_do_not() {
        for e in [
            "sfs/sftp",
            "sfs/sftp-s4",
            "microbench/synthetic/base (one shared queue)",
            "microbench/penalty/mely/base",
            "microbench/unbalanced/mely/time-left",
            "sws/mely-all-w2-c200",
        ] {
            assert!(redefined(e).is_some(), "{e} is redefined");
        }
        for e in [
            "microbench/synthetic/base (one shared spin-locked queue)",
            "microbench/penalty-l2/mely/base",
            "microbench/unbalanced/mely/time-left-one",
            "sfs/colored-w2",
            "sws/mely-all-p1-w2-c200",
        ] {
            assert_eq!(redefined(e), None, "{e} is defined as it was");
        }
    }
}
