//! The paper's per-event runtime overhead, calibrated from the paper's **no-stealing** rows
//! only: for each queue design, the per-event cost that makes the simulated e5410 (8 cores,
//! the paper-faithful mode) run the paper's no-stealing rows at the paper's KEvents/s. Every
//! stealing row simulated with it is then a prediction: nothing else is fitted to the paper.
//!
//! Procedure: for each no-stealing row, the overhead that reproduces its KEvents/s is found by
//! bisection (KEvents/s falls as the overhead grows); a design's overhead is the median of
//! its rows' (libasync-smp has three such rows, Mely one); each row is then simulated again at
//! its design's overhead and its remaining error reported.

use super::{SimBench, SimOptions, SimSpec, JITTER};
use anyhow::{bail, Result};
use colored_runtime::{Fidelity, FidelityOptions, QueueKind, StealPolicy};
use microbench_defs::tables;
use microbench_defs::unbalanced::Costs;
use serde::{Deserialize, Serialize};

/// Overheads searched, cycles per event.
pub const SEARCH_CYCLES: (f64, f64) = (0.0, 20_000.0);
/// Bisection steps (the bracket shrinks 2^STEPS-fold: 20 000 / 2^12 < 5 cycles).
pub const STEPS: usize = 12;

/// A no-stealing row of the paper's tables: what is fitted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitRow {
    /// `unbalanced`, `penalty` or `cache-efficient`.
    pub bench: String,
    /// `libasync` or `mely`.
    pub runtime: String,
    /// The paper's KEvents/s.
    pub paper_kevents: f64,
}

/// One row's fit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RowFit {
    /// The row.
    pub row: FitRow,
    /// The overhead that reproduces this row alone, cycles per event; `None` when no
    /// overhead in [`SEARCH_CYCLES`] does (see `unreachable`).
    pub row_overhead_cycles: Option<f64>,
    /// Why the row could not be fitted (its simulated rate at no overhead is already below
    /// the paper's, or above it at the most): it is left out of its design's median.
    #[serde(default)]
    pub unreachable: Option<String>,
    /// Simulated KEvents/s at its design's overhead.
    pub simulated_kevents: f64,
    /// Error of that against the paper, percent.
    pub error_pct: f64,
}

/// The fit of both designs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PaperFit {
    /// Per design (`libasync`, `mely`): the per-event overhead, cycles.
    pub overhead_cycles: std::collections::BTreeMap<String, f64>,
    /// Every fitted row.
    pub rows: Vec<RowFit>,
    /// Virtual seconds per simulation.
    pub seconds: f64,
    /// How the overhead was found (printed with it).
    pub method: String,
}

/// The no-stealing rows of Tables III-VI with a paper figure, once each.
pub fn fit_rows() -> Vec<FitRow> {
    let mut out: Vec<FitRow> = Vec::new();
    for t in tables::specs() {
        if !matches!(t.bench, "unbalanced" | "penalty" | "cache-efficient") {
            continue;
        }
        for r in &t.rows {
            let tables::RowConfig::Colored { policy, .. } = r.config else {
                continue;
            };
            let (Some(k), false) = (r.paper_kevents, policy.enabled()) else {
                continue;
            };
            let row = FitRow {
                bench: t.bench.to_string(),
                runtime: r.runtime.to_string(),
                paper_kevents: k,
            };
            if !out.contains(&row) {
                out.push(row);
            }
        }
    }
    out
}

/// The simulation of no-stealing row `row` that the fit runs: e5410, 8 cores, `--fidelity
/// paper`, `overhead` cycles of runtime cost per event, `seconds` of virtual time.
pub fn paper_run(row: &FitRow, seconds: f64, overhead: f64) -> Result<(SimSpec, SimOptions)> {
    let queue: QueueKind = row.runtime.parse().map_err(anyhow::Error::msg)?;
    let bench = match row.bench.as_str() {
        "unbalanced" => SimBench::Unbalanced(Costs::Annotated),
        "penalty" => SimBench::Penalty,
        "cache-efficient" => SimBench::CacheEfficient,
        other => bail!("no simulated benchmark {other}"),
    };
    let spec = SimSpec {
        bench,
        queue,
        stealing: StealPolicy::Off,
        cores: 8,
        topology: "e5410".into(),
        seconds,
        seed: 1,
        jitter: JITTER,
    };
    let opts = SimOptions {
        fidelity: FidelityOptions::of(Fidelity::Paper),
        event_overhead_cycles: Some(overhead),
        ..SimOptions::default()
    };
    Ok((spec, opts))
}

/// A row no overhead in [`SEARCH_CYCLES`] fits.
#[derive(Debug)]
pub struct OutOfReach(String);

impl std::fmt::Display for OutOfReach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OutOfReach {}

/// The overhead at which `kevents(overhead)` (decreasing) meets `target`, by bisection over
/// [`SEARCH_CYCLES`]. Fails if the target is outside what the bracket's ends give.
pub fn bisect(target: f64, mut kevents: impl FnMut(f64) -> Result<f64>) -> Result<f64> {
    let (mut lo, mut hi) = SEARCH_CYCLES;
    let (k_lo, k_hi) = (kevents(lo)?, kevents(hi)?);
    if !(k_hi <= target && target <= k_lo) {
        return Err(anyhow::Error::new(OutOfReach(format!(
            "the paper's {target} KEvents/s is outside what {lo}..{hi} cycles of overhead give \
             ({k_lo:.0}..{k_hi:.0} simulated)"
        ))));
    }
    for _ in 0..STEPS {
        let mid = 0.5 * (lo + hi);
        if kevents(mid)? > target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(0.5 * (lo + hi))
}

/// Fit every row of `rows` with `simulate(row, overhead) -> KEvents/s`, then each design's
/// overhead (the median of its rows'), then each row's error at its design's overhead.
pub fn fit(
    rows: &[FitRow],
    seconds: f64,
    mut simulate: impl FnMut(&FitRow, f64) -> Result<f64>,
) -> Result<PaperFit> {
    let mut per_row: Vec<Result<f64, String>> = Vec::new();
    for r in rows {
        per_row.push(match bisect(r.paper_kevents, |o| simulate(r, o)) {
            Ok(o) => Ok(o),
            Err(e) if e.downcast_ref::<OutOfReach>().is_some() => Err(e.to_string()),
            Err(e) => return Err(e.context(format!("fitting {} {}", r.bench, r.runtime))),
        });
    }
    let mut overhead_cycles = std::collections::BTreeMap::new();
    for q in [QueueKind::Libasync, QueueKind::Mely] {
        let name = q.to_string();
        let mine = rows
            .iter()
            .zip(&per_row)
            .filter(|(r, _)| r.runtime == name)
            .filter_map(|(_, o)| o.as_ref().ok().copied());
        if let Some(m) = edge::median::median(mine) {
            overhead_cycles.insert(name, m);
        }
    }
    let mut fitted = Vec::new();
    for (r, o) in rows.iter().zip(per_row) {
        let Some(&design) = overhead_cycles.get(&r.runtime) else {
            bail!(
                "no no-stealing row of {} can be fitted: {}",
                r.runtime,
                o.err().unwrap_or_default()
            );
        };
        let k = simulate(r, design)?;
        fitted.push(RowFit {
            row: r.clone(),
            row_overhead_cycles: o.as_ref().ok().copied(),
            unreachable: o.err(),
            simulated_kevents: k,
            error_pct: 100.0 * (k / r.paper_kevents - 1.0),
        });
    }
    Ok(PaperFit {
        overhead_cycles,
        rows: fitted,
        seconds,
        method: format!(
            "bisection over {}..{} cycles ({STEPS} steps) per no-stealing row; a design's \
             overhead is the median of its rows' (rows no overhead fits left out)",
            SEARCH_CYCLES.0, SEARCH_CYCLES.1
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rows_are_the_papers_no_stealing_ones() {
        let rows = fit_rows();
        let k: Vec<(&str, &str, f64)> = rows
            .iter()
            .map(|r| (r.bench.as_str(), r.runtime.as_str(), r.paper_kevents))
            .collect();
        assert_eq!(
            k,
            [
                ("unbalanced", "libasync", 1310.0),
                ("unbalanced", "mely", 1265.0),
                ("penalty", "libasync", 1103.0),
                ("cache-efficient", "libasync", 1156.0),
            ]
        );
    }

    /// On a model where KEvents/s = 2.33e6 / (work + overhead), the fit finds each row's
    /// overhead, takes the median per design and reports the residuals.
    #[test]
    fn fit_recovers_a_known_overhead() {
        let work = |b: &str| match b {
            "unbalanced" => 700.0,
            "penalty" => 1000.0,
            _ => 900.0,
        };
        let model = |r: &FitRow, o: f64| Ok(2.33e6 / (work(&r.bench) + o));
        let rows = fit_rows();
        let f = fit(&rows, 0.1, model).unwrap();
        let want = |b: &str, k: f64| 2.33e6 / k - work(b);
        // Mely: one row, fitted exactly (within the bisection's resolution).
        assert!((f.overhead_cycles["mely"] - want("unbalanced", 1265.0)).abs() < 5.0);
        // libasync: the median of three rows' overheads.
        let mut l = [
            want("unbalanced", 1310.0),
            want("penalty", 1103.0),
            want("cache-efficient", 1156.0),
        ];
        l.sort_by(f64::total_cmp);
        assert!((f.overhead_cycles["libasync"] - l[1]).abs() < 5.0);
        let mely = f.rows.iter().find(|r| r.row.runtime == "mely").unwrap();
        assert!(mely.error_pct.abs() < 0.5, "{mely:?}");
        assert!(
            f.rows.iter().any(|r| r.error_pct.abs() > 1.0),
            "libasync rows differ"
        );
        assert!(f.rows.iter().all(|r| r.unreachable.is_none()));
    }

    /// A row the model cannot reach at any overhead is left out of its design's median and
    /// says why; a design with no reachable row is an error.
    #[test]
    fn an_unreachable_row_is_reported_not_fitted() {
        let slow_ce = |r: &FitRow, o: f64| {
            let work = if r.bench == "cache-efficient" {
                5000.0
            } else {
                700.0
            };
            Ok(2.33e6 / (work + o))
        };
        let f = fit(&fit_rows(), 0.1, slow_ce).unwrap();
        let ce = f
            .rows
            .iter()
            .find(|r| r.row.bench == "cache-efficient")
            .unwrap();
        assert!(ce.row_overhead_cycles.is_none());
        assert!(
            ce.unreachable.as_deref().unwrap().contains("outside"),
            "{ce:?}"
        );
        let l = &f.overhead_cycles["libasync"];
        // The median of the two reachable libasync rows (unbalanced, penalty) is their mean.
        let want = 0.5 * ((2.33e6 / 1310.0 - 700.0) + (2.33e6 / 1103.0 - 700.0));
        assert!((l - want).abs() < 5.0, "{l} vs {want}");
        let none = fit(&fit_rows(), 0.1, |_, _| Ok(10.0));
        assert!(none.unwrap_err().to_string().contains("can be fitted"));
    }

    #[test]
    fn a_target_out_of_reach_is_an_error() {
        let r = bisect(10.0, |o| Ok(1000.0 - o / 100.0));
        assert!(r.unwrap_err().downcast_ref::<OutOfReach>().is_some());
    }
}
