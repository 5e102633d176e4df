//! The simulated e5410 in the paper-faithful mode, read from `sim/` in a results directory:
//! - `sim/paper-fit.json`: `microbenches simulate paper-fit` (the per-event overhead of each
//!   design, fitted to the paper's no-stealing rows only; [`simulator::paper_fit`]);
//! - `sim/e5410-paper/<bench>-<runtime>-<stealing>.json`: every row of Tables III-VI
//!   simulated at 8 cores with `--fidelity paper` and that overhead: the stealing rows are
//!   predictions of the paper's figures;
//! - `sim/ablation/<step>/<bench>-<runtime>-<stealing>.json`: the same configurations from
//!   `--fidelity ours` with one paper mechanism added at a time ([`STEPS`]), then all;
//! - `sim/thieves/k<K>/...`: everything paper, at most K cores stealing.
//!
//! Every figure is simulated and printed as such; the sentences under the tables are computed
//! from the figures, not written by hand.

use super::fmt_opt;
use super::simulated::SimPoint;
use microbench_defs::tables;
use simulator::paper_fit::PaperFit;
use std::fmt::Write;
use std::path::Path;

/// The ablation's steps, in order: directory name and what it adds to `--fidelity ours`.
pub const STEPS: [(&str, &str); 7] = [
    ("ours", "--fidelity ours"),
    ("overhead", "+ the paper's per-event overhead"),
    ("spin", "+ spinning idle cores"),
    ("tas", "+ test-and-set lock"),
    ("post1", "+ unbuffered posts"),
    ("walk", "+ list walk from the head"),
    ("paper", "all of them (--fidelity paper + overhead)"),
];

/// The ratios the ablation follows: (label, paper table, row), each the row over its table's
/// first row (libasync-smp without stealing). The configuration and the paper's figures come
/// from the paper tables (`microbench_defs::tables::specs`).
const FOLLOWED: [(&str, &str, &str); 6] = [
    ("unbalanced: libasync WS / off", "III", "Libasync-smp - WS"),
    ("unbalanced: Mely base / off", "III", "Mely - base WS"),
    ("unbalanced: time-left / off", "IV", "Mely - time-aware WS"),
    ("penalty: libasync WS / off", "V", "Libasync-smp - WS"),
    ("penalty: Mely base / off", "V", "Mely - base WS"),
    (
        "penalty: penalty-aware / off",
        "V",
        "Mely - penalty-aware WS",
    ),
];

/// One ratio the ablation follows.
#[derive(Clone, Debug)]
pub struct Ratio {
    /// Its column label.
    pub label: &'static str,
    /// The benchmark.
    pub bench: &'static str,
    /// The numerator's runtime.
    pub runtime: &'static str,
    /// The numerator's stealing key (as the simulated results name it).
    pub stealing: String,
    /// The paper's value of the ratio.
    pub paper: f64,
}

/// A row of a paper table, by table id and row label.
fn paper_row<'t>(
    specs: &'t [tables::TableSpec],
    id: &str,
    label: &str,
) -> (&'t tables::TableSpec, &'t tables::RowSpec) {
    let t = specs
        .iter()
        .find(|t| t.id == id)
        .unwrap_or_else(|| panic!("no paper table {id}"));
    let r = t
        .rows
        .iter()
        .find(|r| r.label == label)
        .unwrap_or_else(|| panic!("no row {label:?} in table {id}"));
    (t, r)
}

/// The ratios the ablation and the thief sweep follow ([`FOLLOWED`]), with the paper's values.
pub fn ratios() -> Vec<Ratio> {
    let specs = tables::specs();
    FOLLOWED
        .iter()
        .map(|&(label, id, row)| {
            let (t, r) = paper_row(&specs, id, row);
            let kev = |r: &tables::RowSpec| {
                r.paper_kevents
                    .unwrap_or_else(|| panic!("table {id} row {:?} has no paper figure", r.label))
            };
            Ratio {
                label,
                bench: t.bench,
                runtime: r.runtime,
                stealing: r.config.key(),
                paper: kev(r) / kev(&t.rows[0]),
            }
        })
        .collect()
}

/// The followed ratios of `unbalanced` (the thief sweep's: one victim, the others thieves).
fn unbalanced_ratios() -> Vec<Ratio> {
    ratios()
        .into_iter()
        .filter(|r| r.bench == "unbalanced")
        .collect()
}

/// The paper's libasync-smp WS steal cost (Table III) and locking time (Table III-locking) on
/// `unbalanced`, the reference row of the ablation's last two columns.
fn paper_libasync_ws() -> (f64, f64) {
    let specs = tables::specs();
    let metric = |id: &str| {
        paper_row(&specs, id, "Libasync-smp - WS")
            .1
            .paper_metric
            .unwrap_or_else(|| panic!("table {id}: no paper metric for libasync-smp WS"))
    };
    (metric("III"), metric("III-locking"))
}

/// Everything of the paper mode under `sim/`.
#[derive(Clone, Debug, Default)]
pub struct PaperMode {
    pub fit: Option<PaperFit>,
    /// Tables III-VI at 8 cores, paper mode, fitted overhead.
    pub predictions: Vec<SimPoint>,
    /// Per step of [`STEPS`] (same order), its points.
    pub ablation: Vec<Vec<SimPoint>>,
    /// Per thief count K (1..), its points.
    pub thieves: Vec<(usize, Vec<SimPoint>)>,
    /// Files that could not be read (name, why).
    pub unreadable: Vec<(String, String)>,
}

fn find<'a>(
    points: &'a [SimPoint],
    bench: &str,
    runtime: &str,
    stealing: &str,
) -> Option<&'a SimPoint> {
    points
        .iter()
        .find(|p| p.bench == bench && p.runtime == runtime && p.stealing == stealing)
}

/// Ratio `runtime stealing` over libasync without stealing on `bench`, in `points`.
pub fn ratio_in(points: &[SimPoint], bench: &str, runtime: &str, stealing: &str) -> Option<f64> {
    let num = find(points, bench, runtime, stealing)?.kevents?;
    let den = find(points, bench, "libasync", "off")?.kevents?;
    (den > 0.0).then(|| num / den)
}

/// The simulated results in `sim/<name>/` (see [`super::simulated::load_points`]).
fn load_dir(sim: &Path, name: &str, bad: &mut Vec<(String, String)>) -> Vec<SimPoint> {
    let mut out = Vec::new();
    super::simulated::load_points(&sim.join(name), name, &mut out, bad);
    out
}

impl PaperMode {
    /// Read `dir/sim` (nothing there: empty).
    pub fn load(dir: &Path) -> PaperMode {
        let sim = dir.join("sim");
        let mut m = PaperMode::default();
        let mut bad = Vec::new();
        let p = sim.join("paper-fit.json");
        if p.exists() {
            match std::fs::read_to_string(&p)
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_str::<PaperFit>(&t).map_err(|e| e.to_string()))
            {
                Ok(f) => m.fit = Some(f),
                Err(e) => bad.push(("sim/paper-fit.json".into(), e)),
            }
        }
        m.predictions = load_dir(&sim, "e5410-paper", &mut bad);
        if sim.join("ablation").is_dir() {
            m.ablation = STEPS
                .iter()
                .map(|(s, _)| load_dir(&sim, &format!("ablation/{s}"), &mut bad))
                .collect();
        }
        for k in 1..=64 {
            let d = sim.join("thieves").join(format!("k{k}"));
            if d.is_dir() {
                m.thieves
                    .push((k, load_dir(&sim, &format!("thieves/k{k}"), &mut bad)));
            }
        }
        m.unreadable = bad;
        m
    }

    pub fn is_empty(&self) -> bool {
        self.fit.is_none() && self.predictions.is_empty() && self.ablation.iter().all(Vec::is_empty)
    }

    /// The ablation's series for a chart: per ratio, (step index, ratio).
    pub fn ablation_series(&self) -> Vec<(String, Vec<(f64, f64)>)> {
        ratios()
            .iter()
            .map(|r| {
                let v = self
                    .ablation
                    .iter()
                    .enumerate()
                    .filter_map(|(i, pts)| {
                        ratio_in(pts, r.bench, r.runtime, &r.stealing).map(|x| (i as f64, x))
                    })
                    .collect();
                (r.label.to_string(), v)
            })
            .filter(|(_, v): &(String, Vec<(f64, f64)>)| !v.is_empty())
            .collect()
    }
}

fn pct_err(model: Option<f64>, paper: Option<f64>) -> String {
    match (model, paper) {
        (Some(m), Some(p)) if p > 0.0 => format!("{:+.0}%", 100.0 * (m / p - 1.0)),
        _ => "n/a".into(),
    }
}

fn fit_summary(f: &PaperFit, out: &mut String) {
    let o = |d: &str| fmt_opt(f.overhead_cycles.get(d).copied());
    let _ = writeln!(
        out,
        "**Per-event overhead fitted to the paper's no-stealing rows only** ({}; {} virtual s per \
         simulation): libasync-smp **{} cycles**, Mely **{} cycles** per event. Nothing else is \
         fitted to the paper: every stealing row below is a prediction.\n\n\
         | no-stealing row | paper KEvents/s | simulated at the design's overhead | error | this row alone would take |\n|---|---:|---:|---:|---:|",
        f.method,
        fmt_opt(Some(f.seconds)),
        o("libasync"),
        o("mely"),
    );
    for r in &f.rows {
        let alone = match (&r.row_overhead_cycles, &r.unreachable) {
            (Some(o), _) => format!("{} cycles", fmt_opt(Some(*o))),
            (None, Some(why)) => format!("not fitted: {why}"),
            (None, None) => "n/a".into(),
        };
        let _ = writeln!(
            out,
            "| {} {} off | {} | {} (sim) | {:+.0}% | {alone} |",
            r.row.bench,
            r.row.runtime,
            fmt_opt(Some(r.row.paper_kevents)),
            fmt_opt(Some(r.simulated_kevents)),
            r.error_pct,
        );
    }
    out.push('\n');
}

/// The predicted rows of one paper table.
fn prediction_table(m: &PaperMode, t: &tables::TableSpec, out: &mut String) {
    let _ = writeln!(
        out,
        "**Table {} predicted (SIMULATED e5410, 8 cores, `--fidelity paper`, fitted overhead): {}**\n\n\
         | configuration | paper KEvents/s | predicted | error | paper {m} | predicted {m} | error | predicted steal cost (cycles) | predicted locking time % | predicted stolen time per steal (cycles) |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        t.id,
        t.title,
        m = t.metric
    );
    for row in t.rows.iter().filter(|r| r.paper_kevents.is_some()) {
        let p = find(&m.predictions, t.bench, row.runtime, &row.config.key());
        let k = p.and_then(|p| p.kevents);
        let metric = p.and_then(|p| p.metric(t.metric));
        let _ = writeln!(
            out,
            "| {} | {} | {} (sim) | {} | {} | {} (sim) | {} | {} | {} | {} |",
            row.label,
            fmt_opt(row.paper_kevents),
            fmt_opt(k),
            pct_err(k, row.paper_kevents),
            fmt_opt(row.paper_metric),
            fmt_opt(metric),
            pct_err(metric, row.paper_metric),
            fmt_opt(p.and_then(|p| p.steal_cost_cycles)),
            fmt_opt(p.and_then(|p| p.locking_time_pct)),
            fmt_opt(p.and_then(|p| p.stolen_time_cycles)),
        );
    }
    out.push('\n');
}

/// A table row's cells after its label: each of `ratios` in `pts`, then libasync-smp's steal
/// cost and locking time on `unbalanced`.
fn row_cells(pts: &[SimPoint], ratios: &[Ratio]) -> String {
    let cells: String = ratios
        .iter()
        .map(|r| {
            format!(
                " {} |",
                fmt_opt(ratio_in(pts, r.bench, r.runtime, &r.stealing))
            )
        })
        .collect();
    let lws = find(pts, "unbalanced", "libasync", "base");
    format!(
        "{cells} {} | {} |",
        fmt_opt(lws.and_then(|p| p.steal_cost_cycles)),
        fmt_opt(lws.and_then(|p| p.locking_time_pct))
    )
}

/// The ablation table, and what its figures say.
fn ablation_section(m: &PaperMode, validation_note: &str, out: &mut String) {
    let _ = writeln!(
        out,
        "Every figure here is **SIMULATED** (e5410, 8 cores; {validation_note}). From `--fidelity ours`, one \
         paper mechanism at a time, then all of them; each cell is a table's ratio over libasync-smp \
         without stealing (the paper's first row).\n"
    );
    let ratios = ratios();
    let head: String = ratios.iter().map(|r| format!(" {} |", r.label)).collect();
    let _ = writeln!(
        out,
        "| step |{head} libasync WS steal cost (cycles) | libasync WS locking time % |\n|---|{}---:|---:|",
        "---:|".repeat(ratios.len())
    );
    let paper: String = ratios
        .iter()
        .map(|r| format!(" {:.2} |", r.paper))
        .collect();
    let (cost, locking) = paper_libasync_ws();
    let _ = writeln!(
        out,
        "| the paper (measured, for reference) |{paper} {cost:.0} | {locking:.2} |"
    );
    for ((_, what), pts) in STEPS.iter().zip(&m.ablation) {
        let _ = writeln!(out, "| {what} |{}", row_cells(pts, &ratios));
    }
    out.push('\n');
    for s in ablation_findings(m) {
        let _ = writeln!(out, "- {s}");
    }
    out.push('\n');
}

/// Sentences computed from the ablation's figures: for each ratio, which single mechanism
/// moves it most from ours toward the paper, where it ends with all of them, and whether the
/// paper's collapse (libasync WS below half of no stealing) appears.
pub fn ablation_findings(m: &PaperMode) -> Vec<String> {
    let mut out = Vec::new();
    if m.ablation.len() != STEPS.len() {
        return out;
    }
    for r in ratios() {
        let (label, paper) = (r.label, r.paper);
        let at = |i: usize| ratio_in(&m.ablation[i], r.bench, r.runtime, &r.stealing);
        let (Some(ours), Some(all)) = (at(0), at(STEPS.len() - 1)) else {
            continue;
        };
        // The single mechanism (steps 1..=5) that brings the ratio closest to the paper's.
        let best = (1..STEPS.len() - 1)
            .filter_map(|i| at(i).map(|r| (i, r)))
            .min_by(|a, c| (a.1 - paper).abs().total_cmp(&(c.1 - paper).abs()));
        let alone = best.map_or(String::new(), |(i, r)| {
            format!(
                "; of the mechanisms alone, {} moves it closest to the paper ({:.2})",
                STEPS[i].1, r
            )
        });
        out.push(format!(
            "{label}: {ours:.2} with ours, {all:.2} with every paper mechanism, the paper measured {paper:.2}{alone}."
        ));
    }
    // The collapse: libasync WS on unbalanced below half of no stealing.
    let collapsed: Vec<&str> = STEPS
        .iter()
        .zip(&m.ablation)
        .filter(|(_, pts)| ratio_in(pts, "unbalanced", "libasync", "base").is_some_and(|r| r < 0.5))
        .map(|((_, what), _)| *what)
        .collect();
    out.push(if collapsed.is_empty() {
        "No step makes libasync-smp's stealing collapse on unbalanced (WS / off stays at or above 0.5): \
         the paper's 0.09 is not reproduced by these mechanisms in the model."
            .to_string()
    } else {
        format!(
            "libasync-smp's stealing collapses on unbalanced (WS / off below 0.5) in: {}.",
            collapsed.join("; ")
        )
    });
    out
}

fn thieves_section(m: &PaperMode, out: &mut String) {
    let unbalanced = unbalanced_ratios();
    let _ = writeln!(
        out,
        "**Thief count (SIMULATED e5410, 8 cores, everything paper, K thieves of the one victim: cores 0 to K steal, core 0 being the victim)**\n\n\
         | K |{} libasync WS steal cost (cycles) | libasync WS locking time % |\n|---:|{}---:|---:|",
        unbalanced.iter().map(|r| format!(" {} |", r.label)).collect::<String>(),
        "---:|".repeat(unbalanced.len())
    );
    for (k, pts) in &m.thieves {
        let _ = writeln!(out, "| {k} |{}", row_cells(pts, &unbalanced));
    }
    out.push('\n');
    for s in thieves_findings(m) {
        let _ = writeln!(out, "- {s}");
    }
    out.push('\n');
}

/// Sentences computed from the thief-count sweep: for each ratio, where it peaks, where it
/// ends at the most thieves, and from which thief count on it stays below 1 (stealing costs
/// more than it gives).
pub fn thieves_findings(m: &PaperMode) -> Vec<String> {
    let mut out = Vec::new();
    for r in unbalanced_ratios() {
        let label = r.label;
        let v: Vec<(usize, f64)> = m
            .thieves
            .iter()
            .filter_map(|(k, pts)| ratio_in(pts, r.bench, r.runtime, &r.stealing).map(|x| (*k, x)))
            .collect();
        let (Some(peak), Some(last)) = (
            v.iter().copied().max_by(|a, c| a.1.total_cmp(&c.1)),
            v.last().copied(),
        ) else {
            continue;
        };
        // The smallest K from which every larger count stays below 1.
        let below = v
            .iter()
            .rposition(|&(_, r)| r >= 1.0)
            .map_or(v.first().map(|&(k, _)| k), |i| {
                v.get(i + 1).map(|&(k, _)| k)
            });
        let tail = match below {
            Some(k) => format!("; below 1.0 from {k} thieves on"),
            None => "; never below 1.0".into(),
        };
        out.push(format!(
            "{label}: highest with {} thieves ({:.2}), {:.2} with {}{tail}.",
            peak.0, peak.1, last.1, last.0
        ));
    }
    out
}

/// The report's sections: the predictions beside the paper, and the ablation.
/// `validation_note` names the simulator's validation error, printed beside the figures.
pub fn markdown(dir: &Path, validation_note: &str, out: &mut String) {
    let m = PaperMode::load(dir);
    if m.is_empty() {
        let _ = writeln!(
            out,
            "The paper-calibrated predictions and the ablation: not run (or see Missing experiments).\n"
        );
        return;
    }
    let _ = writeln!(out, "### Predicted by the paper-calibrated model\n");
    if let Some(f) = &m.fit {
        fit_summary(f, out);
    }
    for t in tables::specs() {
        if matches!(t.bench, "unbalanced" | "penalty" | "cache-efficient")
            && !m.predictions.is_empty()
        {
            prediction_table(&m, &t, out);
        }
    }
    if !m.ablation.iter().all(Vec::is_empty) {
        let _ = writeln!(out, "### Why the 8-core tables look as they do\n");
        ablation_section(&m, validation_note, out);
        let _ = writeln!(
            out,
            "Plot: [plots/sim-ablation.svg](plots/sim-ablation.svg).\n"
        );
    }
    if !m.thieves.is_empty() {
        thieves_section(&m, out);
    }
    for (name, why) in &m.unreadable {
        let _ = writeln!(out, "- unreadable: **{name}**: {why}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A results directory whose ablation has libasync WS / off on unbalanced at `ws[i]` in
    /// step i (every other configuration at 1000 KEvents/s), from the baseline's simulated
    /// files.
    fn results_with_ablation(tag: &str, ws: [f64; 7]) -> std::path::PathBuf {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/baseline/sim/e5410-c8");
        let dir = std::env::temp_dir().join(format!("paper-mode-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (i, (step, _)) in STEPS.iter().enumerate() {
            let d = dir.join("sim/ablation").join(step);
            std::fs::create_dir_all(&d).unwrap();
            for f in [
                "unbalanced-libasync-off",
                "unbalanced-libasync-base",
                "unbalanced-mely-base",
                "unbalanced-mely-time-left",
            ] {
                let text = std::fs::read_to_string(src.join(format!("{f}.json"))).unwrap();
                let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
                let k = if f == "unbalanced-libasync-base" {
                    1000.0 * ws[i]
                } else {
                    1000.0
                };
                v["kevents_per_sec"] = k.into();
                std::fs::write(d.join(format!("{f}.json")), v.to_string()).unwrap();
            }
        }
        dir
    }

    #[test]
    fn the_ablation_is_read_and_its_findings_follow_the_figures() {
        let dir = results_with_ablation("collapse", [1.2, 1.1, 0.9, 0.4, 1.0, 1.1, 0.2]);
        let m = PaperMode::load(&dir);
        assert!(m.unreadable.is_empty(), "{:?}", m.unreadable);
        assert_eq!(m.ablation.len(), STEPS.len());
        let series = m.ablation_series();
        let ws = &series
            .iter()
            .find(|(l, _)| l.starts_with("unbalanced: libasync WS"))
            .unwrap()
            .1;
        assert_eq!(ws.len(), 7);
        assert!((ws[6].1 - 0.2).abs() < 1e-9);
        let f = ablation_findings(&m).join("\n");
        assert!(
            f.contains("1.20 with ours, 0.20 with every paper mechanism"),
            "{f}"
        );
        assert!(f.contains("+ test-and-set lock moves it closest"), "{f}");
        assert!(
            f.contains(
                "collapses on unbalanced (WS / off below 0.5) in: + test-and-set lock; all of them"
            ),
            "{f}"
        );
        let mut out = String::new();
        markdown(&dir, "validation not run", &mut out);
        assert!(
            out.contains("### Why the 8-core tables look as they do"),
            "{out}"
        );
        // The thief sweep's findings, on steps 0, 3 and 6 taken as 1, 2 and 3 thieves.
        let mut m = PaperMode::load(&dir);
        m.thieves = (1..=3)
            .map(|k| (k, m.ablation[[0, 3, 6][k - 1]].clone()))
            .collect();
        let _ = std::fs::remove_dir_all(&dir);
        let t = thieves_findings(&m).join("\n");
        assert!(
            t.contains("libasync WS / off: highest with 1 thieves (1.20), 0.20 with 3; below 1.0 from 2 thieves on"),
            "{t}"
        );
        let dir = results_with_ablation("none", [1.2; 7]);
        let f = ablation_findings(&PaperMode::load(&dir)).join("\n");
        assert!(
            f.contains("No step makes libasync-smp's stealing collapse"),
            "{f}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
