//! The plots, each as SVG and PNG (plotters): SWS throughput vs clients (Figure 7 style),
//! speedup vs workers (SWS, SFS), colored vs N-copy, steal cost and stolen time per
//! configuration. Unmeasured values are left out of a plot (a missing point or bar), never
//! drawn as zero.

use super::figures::{sfs_main_workers, sws_main_workers};
use super::load::Results;
use super::ratio;
use anyhow::{anyhow, bail, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

pub(crate) const W: u32 = 1000;
pub(crate) const H: u32 = 600;

/// Register a font for plotters once (from `COLORED_REPORT_FONT` or the usual paths): the
/// trace crate's look-up, so the report's plots and its timelines share one font.
pub fn register_font() -> Result<PathBuf> {
    colored_trace::plot::register_font().map_err(|e| anyhow!(e))
}

pub(crate) const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

pub(crate) fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("plotting: {e:?}")
}

/// A line chart: one line per series, points marked.
struct Lines<'a> {
    title: &'a str,
    x_desc: &'a str,
    y_desc: &'a str,
    series: Vec<(String, Vec<(f64, f64)>)>,
    /// Draw y = x (the ideal speedup).
    ideal: bool,
}

fn draw_lines<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, l: &Lines) -> Result<()> {
    root.fill(&WHITE).map_err(err)?;
    let pts = l.series.iter().flat_map(|(_, p)| p.iter());
    let (mut x0, mut x1, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    if !x0.is_finite() {
        bail!("no data");
    }
    if l.ideal {
        y1 = y1.max(x1);
    }
    let pad = ((x1 - x0) * 0.05).max(0.5);
    let mut chart = ChartBuilder::on(&root)
        .caption(l.title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d((x0 - pad)..(x1 + pad), 0.0..(y1 * 1.12).max(1e-9))
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(l.x_desc)
        .y_desc(l.y_desc)
        // Clients and workers are whole numbers: label only whole ticks.
        .x_label_formatter(&|x| {
            if (x - x.round()).abs() < 1e-9 {
                format!("{x:.0}")
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| {
            if y1 >= 100.0 {
                format!("{y:.0}")
            } else {
                format!("{y:.2}")
            }
        })
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(err)?;
    if l.ideal {
        chart
            .draw_series(DashedLineSeries::new(
                vec![(x0, x0), (x1, x1)],
                6,
                4,
                BLACK.mix(0.5).stroke_width(1),
            ))
            .map_err(err)?
            .label("ideal (linear)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.5)));
    }
    for (i, (name, p)) in l.series.iter().enumerate() {
        let c = PALETTE[i % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(p.clone(), c.stroke_width(2)))
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart
            .draw_series(p.iter().map(|&(x, y)| Circle::new((x, y), 4, c.filled())))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

/// Grouped bars: categories along x, one bar per series in each category.
struct Bars<'a> {
    title: &'a str,
    y_desc: &'a str,
    categories: Vec<String>,
    series: Vec<(String, Vec<Option<f64>>)>,
    log: bool,
    /// Horizontal reference line (e.g. 1.0 for a ratio).
    reference: Option<f64>,
}

fn draw_bars<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, b: &Bars) -> Result<()> {
    root.fill(&WHITE).map_err(err)?;
    let vals: Vec<f64> = b
        .series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten().copied())
        .filter(|v| v.is_finite() && (!b.log || *v > 0.0))
        .collect();
    if vals.is_empty() {
        bail!("no data");
    }
    let ymax = vals
        .iter()
        .copied()
        .fold(b.reference.unwrap_or(0.0), f64::max)
        * if b.log { 20.0 } else { 1.25 };
    let n = b.categories.len();
    let cats = b.categories.clone();
    let fmt_x = move |x: &f64| {
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < cats.len() {
            cats[i as usize].clone()
        } else {
            String::new()
        }
    };
    let nser = b.series.len().max(1) as f64;
    let width = 0.8 / nser;
    macro_rules! body {
        ($chart:expr, $y0:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(n + 1)
                .x_label_formatter(&fmt_x)
                .y_label_formatter(&|y: &f64| {
                    if b.log {
                        format!("{y:.0}")
                    } else {
                        format!("{y:.2}")
                    }
                })
                .y_desc(b.y_desc)
                .label_style(("sans-serif", 13))
                .draw()
                .map_err(err)?;
            for (si, (name, v)) in b.series.iter().enumerate() {
                let c = PALETTE[si % PALETTE.len()];
                let left = -0.4 + si as f64 * width;
                chart
                    .draw_series(v.iter().enumerate().filter_map(|(i, y)| {
                        let y = (*y)?;
                        if !y.is_finite() || (b.log && y <= 0.0) {
                            return None;
                        }
                        let x = i as f64 + left;
                        Some(Rectangle::new(
                            [(x, $y0), (x + width * 0.95, y)],
                            c.filled(),
                        ))
                    }))
                    .map_err(err)?
                    .label(name.as_str())
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 14, y + 5)], c.filled())
                    });
            }
            if let Some(r) = b.reference {
                chart
                    .draw_series(DashedLineSeries::new(
                        vec![(-0.5, r), (n as f64 - 0.5, r)],
                        6,
                        4,
                        BLACK.stroke_width(1),
                    ))
                    .map_err(err)?;
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 14))
                .draw()
                .map_err(err)?;
        }};
    }
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(b.title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80);
    if b.log {
        let ymin = vals.iter().copied().fold(f64::INFINITY, f64::min).max(1e-9) / 3.0;
        body!(
            builder
                .build_cartesian_2d(-0.5..(n as f64 - 0.5), (ymin..ymax).log_scale())
                .map_err(err)?,
            ymin
        );
    } else {
        body!(
            builder
                .build_cartesian_2d(-0.5..(n as f64 - 0.5), 0.0..ymax)
                .map_err(err)?,
            0.0
        );
    }
    root.present().map_err(err)?;
    Ok(())
}

enum Chart<'a> {
    Lines(Lines<'a>),
    Bars(Bars<'a>),
}

/// Render one chart as `<stem>.svg` and `<stem>.png`; returns the two file names.
fn render(dir: &Path, stem: &str, chart: &Chart) -> Result<Vec<String>> {
    let svg = dir.join(format!("{stem}.svg"));
    let png = dir.join(format!("{stem}.png"));
    match chart {
        Chart::Lines(l) => {
            draw_lines(SVGBackend::new(&svg, (W, H)).into_drawing_area(), l)?;
            draw_lines(BitMapBackend::new(&png, (W, H)).into_drawing_area(), l)?;
        }
        Chart::Bars(b) => {
            // Room for each category's label under its bars.
            let w = W.max(150 * b.categories.len() as u32);
            draw_bars(SVGBackend::new(&svg, (w, H)).into_drawing_area(), b)?;
            draw_bars(BitMapBackend::new(&png, (w, H)).into_drawing_area(), b)?;
        }
    }
    Ok(vec![format!("{stem}.svg"), format!("{stem}.png")])
}

/// The charts this results directory has data for.
fn charts(r: &Results) -> Vec<(&'static str, Chart<'static>)> {
    [
        throughput_chart(r),
        speedup_chart(r),
        ncopy_chart(r),
        steal_cost_chart(r),
    ]
    .into_iter()
    .flatten()
    .chain(sfs_mount_charts(r))
    .collect()
}

/// SWS throughput vs clients, one line per configuration incl. the peers.
fn throughput_chart(r: &Results) -> Option<(&'static str, Chart<'static>)> {
    let w = sws_main_workers(r);
    let series: Vec<(String, Vec<(f64, f64)>)> = r
        .sws_configs()
        .into_iter()
        .map(|c| {
            let pts = r
                .sws_clients(w)
                .into_iter()
                .filter_map(|n| r.sws_rps(&c, w, n).map(|y| (n as f64, y)))
                .collect::<Vec<_>>();
            (c, pts)
        })
        .filter(|(_, p)| !p.is_empty())
        .collect();
    if series.is_empty() {
        return None;
    }
    Some((
        "sws-throughput",
        Chart::Lines(Lines {
            title: "SWS: throughput vs clients (1 KB file)",
            x_desc: "virtual clients",
            y_desc: "requests/s",
            series,
            ideal: false,
        }),
    ))
}

/// Speedup over 1 worker at every worker count measured: SWS and SFS configurations.
fn speedup_chart(r: &Results) -> Option<(&'static str, Chart<'static>)> {
    let line = |name: String, points: Vec<(usize, Option<f64>)>, one: Option<f64>| {
        let pts: Vec<(f64, f64)> = points
            .into_iter()
            .filter_map(|(k, v)| ratio(v, one).map(|s| (k as f64, s)))
            .collect();
        (pts.len() >= 2).then_some((name, pts))
    };
    let w1_clients = r.sws_clients(1);
    let mut series = Vec::new();
    for c in r.sws_configs() {
        let ws = distinct(r.sws.iter().filter(|s| s.config == c).map(|s| s.workers));
        let pts = ws
            .into_iter()
            .map(|k| (k, r.sws_peak(&c, k, &w1_clients)))
            .collect();
        series.extend(line(
            format!("SWS {c}"),
            pts,
            r.sws_peak(&c, 1, &w1_clients),
        ));
    }
    for c in super::figures::configs::SFS_ALL {
        let ws = distinct(
            r.sfs
                .iter()
                .filter(|s| s.config == c)
                .filter_map(|s| s.workers),
        );
        let pts = ws
            .into_iter()
            .map(|k| (k, r.sfs_mbps(c, Some(k))))
            .collect();
        series.extend(line(format!("SFS {c}"), pts, r.sfs_mbps(c, Some(1))));
    }
    if series.is_empty() {
        return None;
    }
    Some((
        "speedup-workers",
        Chart::Lines(Lines {
            title: "Speedup vs workers (over 1 worker)",
            x_desc: "workers",
            y_desc: "speedup",
            series,
            ideal: true,
        }),
    ))
}

/// The distinct values, sorted.
fn distinct(v: impl Iterator<Item = usize>) -> Vec<usize> {
    let mut v: Vec<usize> = v.collect();
    v.sort();
    v.dedup();
    v
}

/// Colored vs N-copy, each server relative to its N-copy at the main worker count.
fn ncopy_chart(r: &Results) -> Option<(&'static str, Chart<'static>)> {
    use super::figures::configs::{SFS_COLORED, SWS_MELY_PAPER, SWS_MELY_TUNED};
    let w = sws_main_workers(r);
    let sws_clients = r.sws_clients(w);
    let sfs_w = sfs_main_workers(r);
    let sws = |c: &str| {
        ratio(
            r.sws_peak(c, w, &sws_clients),
            r.sws_peak("ncopy", w, &sws_clients),
        )
    };
    let sfs =
        |c: &str| sfs_w.and_then(|k| ratio(r.sfs_mbps(c, Some(k)), r.sfs_mbps("ncopy", Some(k))));
    let pairs: Vec<(String, Option<f64>)> = vec![
        (format!("SWS {SWS_MELY_PAPER}"), sws(SWS_MELY_PAPER)),
        (format!("SWS {SWS_MELY_TUNED}"), sws(SWS_MELY_TUNED)),
        ("SWS libasync-off".into(), sws("libasync-off")),
        (format!("SFS {SFS_COLORED}"), sfs(SFS_COLORED)),
        ("SFS none".into(), sfs("none")),
    ];
    if !pairs.iter().any(|(_, v)| v.is_some()) {
        return None;
    }
    Some((
        "ncopy-vs-colored",
        Chart::Bars(Bars {
            title: "Colored vs N-copy (throughput / N-copy's, same workers)",
            y_desc: "relative to N-copy",
            categories: pairs.iter().map(|(n, _)| n.clone()).collect(),
            series: vec![(
                "colored / N-copy".into(),
                pairs.iter().map(|(_, v)| *v).collect(),
            )],
            log: false,
            reference: Some(1.0),
        }),
    ))
}

/// Steal cost and stolen time per configuration (microbenchmarks, then the servers).
fn steal_cost_chart(r: &Results) -> Option<(&'static str, Chart<'static>)> {
    use super::figures::configs::*;
    let w = sws_main_workers(r);
    let sfs_w = sfs_main_workers(r);
    let mut cats = Vec::new();
    let (mut cost, mut stolen) = (Vec::new(), Vec::new());
    for m in &r.micro {
        if m.config.is_some() || m.runtime == "tokio" || m.stealing == "off" {
            continue;
        }
        cats.push(format!(
            "{} {}/{}",
            short_bench(&m.bench),
            m.runtime,
            m.stealing
                .replace("time-left", "tl")
                .replace("-profiled", "-prof")
        ));
        cost.push(m.steal_cost_cycles());
        stolen.push(m.stolen_time_cycles());
    }
    let sws_n = r.sws_clients(w).iter().max().copied();
    for c in [
        "libasync-base",
        SWS_MELY_PAPER,
        SWS_MELY_TUNED,
        SWS_MELY_HALF,
    ] {
        if let Some(s) = r
            .sws
            .iter()
            .find(|s| s.config == c && s.workers == w && Some(s.clients) == sws_n)
        {
            cats.push(format!("SWS {c}"));
            cost.push(s.stats.steal_cost_cycles);
            stolen.push(s.stats.stolen_time_cycles);
        }
    }
    for c in ["libasync-base", SFS_COLORED, SFS_COLORED_HALF] {
        if let Some(s) = r.sfs.iter().find(|s| s.config == c && s.workers == sfs_w) {
            cats.push(format!("SFS {c}"));
            cost.push(s.stats.steal_cost_cycles);
            stolen.push(s.stats.stolen_time_cycles);
        }
    }
    if !cost.iter().chain(&stolen).any(|v| v.is_some()) {
        return None;
    }
    Some((
        "steal-cost",
        Chart::Bars(Bars {
            title: "Steal cost vs stolen processing time per steal (cycles, log scale)",
            y_desc: "cycles per steal",
            categories: cats,
            series: vec![("steal cost".into(), cost), ("stolen time".into(), stolen)],
            log: true,
            reference: None,
        }),
    ))
}

/// The simulator's scaling plots: KEvents/s of each policy against simulated cores.
fn sim_charts(r: &Results) -> Vec<(&'static str, Chart<'static>)> {
    let s = super::simulated::SimResults::load(&r.dir);
    let mut out = Vec::new();
    for (stem, bench, title) in [
        (
            "sim-scaling-unbalanced",
            "unbalanced",
            "SIMULATED: unbalanced, KEvents/s vs cores (e5410 packages)",
        ),
        (
            "sim-scaling-penalty",
            "penalty",
            "SIMULATED: penalty, KEvents/s vs cores (e5410 packages)",
        ),
    ] {
        let series = s.scaling_series(bench);
        if !series.is_empty() {
            out.push((
                stem,
                Chart::Lines(Lines {
                    title,
                    x_desc: "simulated cores, log2 (0: 1 core ... 6: 64 cores)",
                    y_desc: "KEvents/s (simulated)",
                    series,
                    ideal: false,
                }),
            ));
        }
    }
    let series = super::paper_mode::PaperMode::load(&r.dir).ablation_series();
    if !series.is_empty() {
        out.push((
            "sim-ablation",
            Chart::Lines(Lines {
                title: "SIMULATED e5410, 8 cores: each ratio over libasync-smp without stealing",
                x_desc: "0 ours, 1 +overhead, 2 +spin, 3 +tas lock, 4 +unbuffered posts, 5 +list walk, 6 paper",
                y_desc: "ratio (simulated)",
                series,
                ideal: false,
            }),
        ));
    }
    out
}

/// SFS through the kernel against sshfs: MB/s, and server CPU per MB.
fn sfs_mount_charts(r: &Results) -> Vec<(&'static str, Chart<'static>)> {
    use super::markdown::SFS_MOUNT_ROWS;
    let run = |c: &str| r.sfs.iter().find(|s| s.config == c);
    let present: Vec<_> = SFS_MOUNT_ROWS
        .iter()
        .filter(|(c, _)| run(c).is_some_and(|s| s.mbytes_per_sec.is_some()))
        .collect();
    if present.is_empty() {
        return Vec::new();
    }
    let cats: Vec<String> = present
        .iter()
        .map(|(c, _)| c.trim_start_matches("mount-").to_string())
        .collect();
    // The write row of a configuration: `mount-X` writes as `mount-write-X`.
    let write = |c: &str| format!("mount-write-{}", c.trim_start_matches("mount-"));
    let series = |f: fn(&super::load::SfsRun) -> Option<f64>, name: &str| {
        let reads: Vec<_> = present.iter().map(|(c, _)| run(c).and_then(f)).collect();
        let writes: Vec<_> = present
            .iter()
            .map(|(c, _)| run(&write(c)).and_then(f))
            .collect();
        let mut v = vec![(format!("read {name}"), reads)];
        if writes.iter().any(Option::is_some) {
            v.push((format!("write {name}"), writes));
        }
        v
    };
    vec![
        (
            "sfs-mounts",
            Chart::Bars(Bars {
                title: "SFS through FUSE mounts vs sshfs: readers' and writers' MB/s",
                y_desc: "MB/s",
                categories: cats.clone(),
                series: series(|s| s.mbytes_per_sec, "MB/s"),
                log: false,
                reference: None,
            }),
        ),
        (
            "sfs-mounts-cpu",
            Chart::Bars(Bars {
                title: "SFS through FUSE mounts vs sshfs: server CPU per MB",
                y_desc: "server CPU ms per MB",
                categories: cats,
                series: series(|s| s.server_cpu_ms_per_mb, "server ms/MB"),
                log: false,
                reference: None,
            }),
        ),
    ]
}

fn short_bench(b: &str) -> &str {
    match b {
        "unbalanced" => "unbal",
        "penalty" => "pen",
        "cache-efficient" => "cache",
        other => other,
    }
}

/// Write every plot into `dir` (created). Returns the files written and the plots that could
/// not be drawn (with why).
pub fn write_all(r: &Results, dir: &Path) -> Result<(Vec<String>, Vec<String>)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    register_font()?;
    let mut files = Vec::new();
    let mut failed = Vec::new();
    for (stem, chart) in charts(r).into_iter().chain(sim_charts(r)) {
        match render(dir, stem, &chart) {
            Ok(mut f) => files.append(&mut f),
            Err(e) => failed.push(format!("{stem}: {e:#}")),
        }
    }
    Ok((files, failed))
}
