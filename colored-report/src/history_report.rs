//! `results/history/report.md` and its plots: every tracked ratio and figure over commits with
//! the confidence band of each commit's median, and the change points of each series (see
//! `changepoint`), each with the commits on both sides and the size of the step.
//!
//! Invariants: absolute figures are only ever drawn and searched per machine (a series never
//! mixes machines); a commit without samples of a figure is absent from its series (never 0);
//! change points are searched on the per-commit medians, and a step's size is the ratio of the
//! medians of the segments on its two sides.

use super::changepoint::{e_divisive, ChangePoint, Options as CpOptions};
use super::fmt_opt;
use super::history::{self, Filter, Record, Series};
use super::instr;
use super::plots::{err, register_font, H, PALETTE, W};
use super::stats;
use anyhow::{bail, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::fmt::Write;
use std::path::Path;

/// Level of the bands (the median's distribution-free interval; fewer samples give less).
const BAND_LEVEL: f64 = 0.95;

/// A change point with what the report says about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub cp: ChangePoint,
    /// Last commit before the change and first commit after it.
    pub before: String,
    pub after: String,
    /// Median of the segment before and after.
    pub from: f64,
    pub to: f64,
}

impl Step {
    pub fn change_pct(&self) -> f64 {
        (self.to / self.from - 1.0) * 100.0
    }
}

/// The change points of one series, with their segments' medians.
pub fn steps(s: &Series, o: &CpOptions) -> Vec<Step> {
    let pts: Vec<(usize, f64)> = s
        .points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.median().map(|m| (i, m)))
        .collect();
    let med: Vec<f64> = pts.iter().map(|p| p.1).collect();
    let cps = e_divisive(&med, o);
    let mut bounds: Vec<usize> = vec![0];
    bounds.extend(cps.iter().map(|c| c.index));
    bounds.push(med.len());
    cps.iter()
        .enumerate()
        .map(|(k, cp)| {
            let seg = |a: usize, b: usize| stats::median(&med[a..b]).unwrap_or(f64::NAN);
            Step {
                cp: *cp,
                before: s.points[pts[cp.index - 1].0].commit.clone(),
                after: s.points[pts[cp.index].0].commit.clone(),
                from: seg(bounds[k], bounds[k + 1]),
                to: seg(bounds[k + 1], bounds[k + 2]),
            }
        })
        .collect()
}

fn short(c: &str) -> &str {
    &c[..c.len().min(8)]
}

fn summary_row(t: &mut String, s: &Series, st: &[Step]) {
    let first = s.points.first().and_then(|p| p.median());
    let last = s.points.last().and_then(|p| p.median());
    let cps: Vec<String> = st
        .iter()
        .map(|x| format!("{} ({:+.1}%)", short(&x.after), x.change_pct()))
        .collect();
    let _ = writeln!(
        t,
        "| {} | {} | {} | {} | {} | {} | {} |",
        s.key,
        s.unit,
        s.points.len(),
        fmt_opt(first),
        fmt_opt(last),
        super::compare::change_pct(first, last).map_or("n/a".into(), |p| format!("{p:+.1}%")),
        if cps.is_empty() {
            "none".into()
        } else {
            cps.join(", ")
        }
    );
}

/// Write `report.md` (and `plots/` unless `no_plots`) into `out` from the history `recs`.
/// Returns the report and the plots that could not be drawn.
pub fn write(recs: &[Record], out: &Path, no_plots: bool) -> Result<(String, Vec<String>)> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let o = CpOptions::default();
    let mut t = String::new();
    let commits = history::commit_order(recs);
    let machines = history::machines(recs);
    let _ = writeln!(t, "# Performance history\n");
    let _ = writeln!(
        t,
        "Written by `scripts/track.sh report` from `history.jsonl`: {} line(s), {} commit(s), {} machine(s).\n",
        recs.len(),
        commits.len(),
        machines.len()
    );
    let _ = writeln!(
        t,
        "- Change points on the per-commit medians: {}; a step is the ratio of the medians of the segments on its two sides.\n\
         - Bands: each commit's median with its distribution-free confidence interval (order statistics; {:.0}% where the \
         sample count allows, [min, max] below that).\n\
         - Each machine has its own section: absolute figures are never compared across machines.\n\
         - Instruction counts (`instr/...`) are work per operation under callgrind: noise-free, and silent about parallel speedup.\n",
        o.describe(),
        BAND_LEVEL * 100.0
    );
    let mut failed = Vec::new();
    let mut plot_files = Vec::new();
    let font = if no_plots {
        None
    } else {
        Some(register_font())
    };
    for (mi, m) in machines.iter().enumerate() {
        let filter = Filter {
            machine: Some(m.clone()),
            since: None,
        };
        let series = history::series(recs, &filter);
        let mine: Vec<Record> = recs.iter().filter(|r| r.machine == *m).cloned().collect();
        let _ = writeln!(t, "## Machine {}: {m}\n", mi + 1);
        let _ = writeln!(
            t,
            "| # | commit | date | subject | experiments | failed |\n|---:|---|---|---|---:|---:|"
        );
        for (i, (c, d, s)) in history::commit_order(&mine).iter().enumerate() {
            let lines: Vec<&Record> = mine.iter().filter(|r| r.commit == *c).collect();
            let exps: std::collections::BTreeSet<&str> = lines
                .iter()
                .filter(|r| r.error.is_none() && r.experiment != history::RATIOS)
                .map(|r| r.experiment.as_str())
                .collect();
            let _ = writeln!(
                t,
                "| {} | `{}` | {d} | {} | {} | {} |",
                i + 1,
                short(c),
                s.replace('|', "\\|"),
                exps.len(),
                lines.iter().filter(|r| r.error.is_some()).count()
            );
        }
        let all: Vec<(&Series, Vec<Step>)> = series.values().map(|s| (s, steps(s, &o))).collect();
        let _ = writeln!(t, "\n### Change points\n");
        let mut any = false;
        for (s, st) in &all {
            for x in st {
                any = true;
                let _ = writeln!(
                    t,
                    "- **{}**: between `{}` and `{}`: {} -> {} {} ({:+.1}%, p={:.3})",
                    s.key,
                    short(&x.before),
                    short(&x.after),
                    fmt_opt(Some(x.from)),
                    fmt_opt(Some(x.to)),
                    s.unit,
                    x.change_pct(),
                    x.cp.p
                );
            }
        }
        if !any {
            let _ = writeln!(t, "none found");
        }
        for (title, want_ratio) in [("Ratios that matter", true), ("Figures", false)] {
            let _ = writeln!(
                t,
                "\n### {title}\n\n| {} | unit | commits | first | last | change | change points |\n|---|---|---:|---:|---:|---:|---|",
                if want_ratio { "ratio" } else { "figure" }
            );
            for (s, st) in all.iter().filter(|(s, _)| s.ratio == want_ratio) {
                summary_row(&mut t, s, st);
            }
        }
        if let Some(font) = &font {
            if let Err(e) = font {
                failed.push(format!("no plots: {e:#}"));
                continue;
            }
            let dir = out.join("plots");
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for (s, st) in &all {
                let wanted = s.ratio || !st.is_empty() || s.unit == instr::UNIT;
                if !wanted || s.points.len() < 2 {
                    continue;
                }
                let stem = format!("m{}-{}", mi + 1, slug(&s.key));
                match render(&dir, &stem, s, st) {
                    Ok(mut f) => plot_files.append(&mut f),
                    Err(e) => failed.push(format!("{stem}: {e:#}")),
                }
            }
        }
    }
    if !plot_files.is_empty() {
        let _ = writeln!(t, "\n## Plots\n");
        for f in plot_files.iter().filter(|f| f.ends_with(".svg")) {
            let _ = writeln!(t, "- [plots/{f}](plots/{f})");
        }
    }
    std::fs::write(out.join("report.md"), &t).context("writing report.md")?;
    Ok((t, failed))
}

/// A file-name-safe form of a key.
fn slug(key: &str) -> String {
    let s: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let mut out = String::new();
    for part in s.split('-').filter(|p| !p.is_empty()) {
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(part);
    }
    out.chars().take(100).collect()
}

fn render(dir: &Path, stem: &str, s: &Series, st: &[Step]) -> Result<Vec<String>> {
    let svg = dir.join(format!("{stem}.svg"));
    let png = dir.join(format!("{stem}.png"));
    draw(SVGBackend::new(&svg, (W, H)).into_drawing_area(), s, st)?;
    draw(BitMapBackend::new(&png, (W, H)).into_drawing_area(), s, st)?;
    Ok(vec![format!("{stem}.svg"), format!("{stem}.png")])
}

/// One series: medians joined by a line, the band of each median, change points as dashed
/// vertical lines between the commits they separate.
fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, s: &Series, st: &[Step]) -> Result<()> {
    root.fill(&WHITE).map_err(err)?;
    let pts: Vec<(f64, f64, f64, f64)> = s
        .points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let m = p.median()?;
            let (lo, hi, _) = stats::median_ci(&p.samples, BAND_LEVEL)?;
            Some((i as f64, m, lo, hi))
        })
        .collect();
    if pts.is_empty() {
        bail!("no data");
    }
    let lo = pts.iter().map(|p| p.2).fold(f64::INFINITY, f64::min);
    let hi = pts.iter().map(|p| p.3).fold(f64::NEG_INFINITY, f64::max);
    let pad = ((hi - lo) * 0.15).max(hi.abs() * 0.02).max(1e-9);
    let n = s.points.len();
    let labels: Vec<String> = s
        .points
        .iter()
        .map(|p| short(&p.commit).to_string())
        .collect();
    let title = format!("{} over commits", s.key);
    let mut chart = ChartBuilder::on(&root)
        .caption(&title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(90)
        .build_cartesian_2d(-0.5..(n as f64 - 0.5), (lo - pad)..(hi + pad))
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_labels(n.min(20))
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
                labels[i as usize].clone()
            } else {
                String::new()
            }
        })
        .x_desc("commit")
        .y_desc(&s.unit)
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(err)?;
    let c = PALETTE[0];
    let mut band: Vec<(f64, f64)> = pts.iter().map(|p| (p.0, p.3)).collect();
    band.extend(pts.iter().rev().map(|p| (p.0, p.2)));
    chart
        .draw_series(std::iter::once(Polygon::new(band, c.mix(0.2).filled())))
        .map_err(err)?
        .label("confidence band of the median")
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], c.mix(0.2).filled()));
    chart
        .draw_series(LineSeries::new(
            pts.iter().map(|p| (p.0, p.1)),
            c.stroke_width(2),
        ))
        .map_err(err)?
        .label("median")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    chart
        .draw_series(pts.iter().map(|p| Circle::new((p.0, p.1), 4, c.filled())))
        .map_err(err)?;
    let red = PALETTE[3];
    for x in st {
        let at = s
            .points
            .iter()
            .position(|p| p.commit == x.after)
            .unwrap_or(0) as f64
            - 0.5;
        chart
            .draw_series(DashedLineSeries::new(
                vec![(at, lo - pad), (at, hi + pad)],
                6,
                4,
                red.stroke_width(2),
            ))
            .map_err(err)?
            .label(format!("change point {:+.1}%", x.change_pct()))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], red.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Point;

    #[test]
    fn slugs_are_file_names() {
        assert_eq!(
            slug("microbench/unbalanced/mely/time-left KEvents/s"),
            "microbench-unbalanced-mely-time-left-kevents-s"
        );
    }

    #[test]
    fn a_step_reports_both_sides_and_its_size() {
        let points = (0..12)
            .map(|i| Point {
                commit: format!("c{i:02}"),
                commit_date: format!("2026-01-{:02}", i + 1),
                subject: String::new(),
                samples: vec![if i < 6 { 100.0 } else { 80.0 } + (i % 3) as f64 * 0.1],
            })
            .collect();
        let s = Series {
            key: "k".into(),
            unit: "u".into(),
            higher_is_better: true,
            ratio: false,
            points,
        };
        let st = steps(&s, &CpOptions::default());
        assert_eq!(st.len(), 1, "{st:?}");
        assert_eq!(
            (st[0].before.as_str(), st[0].after.as_str()),
            ("c05", "c06")
        );
        assert!((st[0].change_pct() + 20.0).abs() < 0.5, "{st:?}");
    }
}
