//! The simulator's part of the report, read from `sim/` in a results directory:
//! - `sim/calibration.json`: `microbenches simulate calibrate`;
//! - `sim/validate.json`: `microbenches simulate validate --format json`;
//! - `sim/e5410-c8/<bench>-<runtime>-<stealing>.json`: `microbenches simulate <bench> ... --cores 8
//!   --topology e5410 --format json` for every configuration of Tables III-VI (`stealing`
//!   `time-left-profiled` for `unbalanced --costs profiled`);
//! - `sim/scaling/<bench>-<runtime>-<stealing>-c<cores>.json`: the same on 1 to 64 cores.
//!
//! Every simulated figure printed is labelled simulated, with the validation error of the same
//! figure (KEvents/s) or ratio at 2 cores beside it.

use super::load::Results;
use super::{fmt_opt, ratio};
use microbench_defs::report::BenchResult;
use microbench_defs::tables;
use simulator::calibrate::Calibration;
use simulator::validate::Validation;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

/// One simulated result.
#[derive(Clone, Debug)]
pub struct SimPoint {
    pub bench: String,
    pub runtime: String,
    /// As the tables key it (`time-left-profiled` for profiled costs).
    pub stealing: String,
    pub cores: usize,
    pub kevents: Option<f64>,
    pub steal_cost_cycles: Option<f64>,
    pub stolen_time_cycles: Option<f64>,
    pub locking_time_pct: Option<f64>,
    pub l2_misses_per_event: Option<f64>,
}

impl SimPoint {
    /// The table metric `name` (a [`tables::TableSpec`]'s `metric`).
    pub fn metric(&self, name: &str) -> Option<f64> {
        match name {
            "WS cost (cycles)" => self.steal_cost_cycles,
            "locking time %" => self.locking_time_pct,
            "stolen time (cycles)" => self.stolen_time_cycles,
            "L2 misses/event" => self.l2_misses_per_event,
            _ => None,
        }
    }
}

/// Everything under `sim/`.
#[derive(Clone, Debug, Default)]
pub struct SimResults {
    pub calibration: Option<Calibration>,
    pub validation: Option<Validation>,
    /// 8 cores on e5410.
    pub tables: Vec<SimPoint>,
    pub scaling: Vec<SimPoint>,
    /// Files that could not be read (name, why).
    pub unreadable: Vec<(String, String)>,
}

/// A file of the simulator's, read through the struct that wrote it (a missing field is an
/// error naming it).
fn read<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| format!("not a {}: {e}", short_name::<T>()))
}

/// `Validation` for `simulator::validate::Validation`.
fn short_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}

/// The simulated result of `simulate ... --format json` (a [`BenchResult`] marked
/// `simulated`, with its core count), `None` for any other result.
pub fn point(r: BenchResult) -> Option<SimPoint> {
    if r.extra.get("simulated") != Some(&serde_json::Value::Bool(true)) {
        return None;
    }
    // Keyed as the tables key their rows (`time-left-one-profiled`); the simulator runs the
    // paper's one-color steal only.
    let time_left = r
        .stealing
        .parse::<colored_runtime::StealPolicy>()
        .is_ok_and(|p| p.time_left());
    let stealing = microbench_defs::tables::stealing_key(
        &r.stealing,
        time_left.then_some("one"),
        r.extra_str("costs") == Some("profiled"),
    );
    Some(SimPoint {
        cores: r.extra.get("cores")?.as_u64()? as usize,
        bench: r.bench,
        runtime: r.runtime,
        stealing,
        kevents: Some(r.kevents_per_sec),
        steal_cost_cycles: r.steal_cost_cycles,
        stolen_time_cycles: r.stolen_time_cycles,
        locking_time_pct: r.locking_time_pct,
        l2_misses_per_event: r.l2_misses_per_event,
    })
}

/// The simulated results in `dir` (sorted by file name) into `out`; each file that is not
/// one into `bad` as `sim/<name>/<file>` with why.
pub fn load_points(
    dir: &Path,
    name: &str,
    out: &mut Vec<SimPoint>,
    bad: &mut Vec<(String, String)>,
) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    for f in files {
        let label = format!(
            "sim/{name}/{}",
            f.file_name().unwrap_or_default().to_string_lossy()
        );
        match read::<BenchResult>(&f).map(point) {
            Ok(Some(p)) => out.push(p),
            Ok(None) => bad.push((label, "not a simulated result".into())),
            Err(e) => bad.push((label, e)),
        }
    }
}

impl SimResults {
    /// Read `dir/sim` (nothing there: an empty result).
    pub fn load(dir: &Path) -> SimResults {
        let sim = dir.join("sim");
        let mut r = SimResults::default();
        let mut bad = Vec::new();
        let p = sim.join("calibration.json");
        if p.exists() {
            match read(&p) {
                Ok(c) => r.calibration = Some(c),
                Err(e) => bad.push(("sim/calibration.json".into(), e)),
            }
        }
        let p = sim.join("validate.json");
        if p.exists() {
            match read(&p) {
                Ok(v) => r.validation = Some(v),
                Err(e) => bad.push(("sim/validate.json".into(), e)),
            }
        }
        load_points(&sim.join("e5410-c8"), "e5410-c8", &mut r.tables, &mut bad);
        load_points(&sim.join("scaling"), "scaling", &mut r.scaling, &mut bad);
        r.unreadable = bad;
        r
    }

    pub fn is_empty(&self) -> bool {
        self.validation.is_none() && self.tables.is_empty() && self.scaling.is_empty()
    }

    fn table_point(&self, bench: &str, runtime: &str, stealing: &str) -> Option<&SimPoint> {
        self.tables
            .iter()
            .find(|p| p.bench == bench && p.runtime == runtime && p.stealing == stealing)
    }

    /// The validation error (percent) of a configuration's KEvents/s at `cores`.
    pub fn kevents_error(
        &self,
        bench: &str,
        runtime: &str,
        stealing: &str,
        cores: usize,
    ) -> Option<f64> {
        self.validation
            .as_ref()?
            .entries
            .iter()
            .find(|e| {
                e.bench == bench
                    && e.runtime == runtime
                    && e.stealing == stealing
                    && e.fidelity == "ours"
                    && e.cores == cores
            })?
            .error_pct
    }

    /// The validation error (percent) of a row's ratio over `over` at `cores`.
    pub fn ratio_error(
        &self,
        bench: &str,
        runtime: &str,
        stealing: &str,
        over: &str,
        cores: usize,
    ) -> Option<f64> {
        self.validation
            .as_ref()?
            .ratios
            .iter()
            .find(|e| {
                e.bench == bench
                    && e.runtime == runtime
                    && e.stealing == stealing
                    && e.fidelity == "ours"
                    && e.over == over
                    && e.cores == cores
            })?
            .error_pct
    }

    /// KEvents/s against cores, one series per configuration, for `bench` (x: log2 of cores).
    pub fn scaling_series(&self, bench: &str) -> Vec<(String, Vec<(f64, f64)>)> {
        let mut by: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for p in self.scaling.iter().filter(|p| p.bench == bench) {
            if let Some(k) = p.kevents {
                by.entry(format!("{} {}", p.runtime, p.stealing))
                    .or_default()
                    .push(((p.cores as f64).log2(), k));
            }
        }
        by.into_iter()
            .map(|(k, mut v)| {
                v.sort_by(|a, b| a.0.partial_cmp(&b.0).expect("finite"));
                (k, v)
            })
            .filter(|(_, v)| !v.is_empty())
            .collect()
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |e| format!("{e:+.0}%"))
}

fn calibration_summary(c: &Calibration, out: &mut String) {
    let design = |d: &str, f: fn(&simulator::calibrate::DesignCosts) -> f64| {
        fmt_opt(c.designs.get(d).map(f))
    };
    let m = &c.memory;
    let level = |by: &BTreeMap<String, f64>, l: &str| fmt_opt(by.get(l).copied());
    let _ = writeln!(
        out,
        "Calibration (this machine, {}, cycles of its {} GHz counter): per event run {} (libasync) / {} (mely), \
         pop {} / {}, local post {} / {}, remote post {} / {}; steal: libasync {} per queued event, mely {} + {} per color; \
         lock {}; cache-line transfer {}; wake-up {} (+{} for the poster); search nap {}; \
         sequential cost per missed line L2 {}, L3 {}, memory {}, modified in the other core's cache {} (pointer-chase latency {}, {}, {}).\n",
        c.cpu_model,
        fmt_opt(Some(c.cycles_per_sec / 1e9)),
        design("libasync", |d| d.run_event),
        design("mely", |d| d.run_event),
        design("libasync", |d| d.pop),
        design("mely", |d| d.pop),
        design("libasync", |d| d.post_local),
        design("mely", |d| d.post_local),
        design("libasync", |d| d.post_remote),
        design("mely", |d| d.post_remote),
        design("libasync", |d| d.steal_per_queued),
        design("mely", |d| d.steal_base),
        design("mely", |d| d.steal_per_color),
        fmt_opt(Some(c.lock)),
        fmt_opt(Some(c.line_transfer)),
        fmt_opt(Some(c.wake_latency)),
        fmt_opt(Some(c.wake_post)),
        fmt_opt(Some(c.search_nap)),
        level(&m.sequential_line, "2"),
        level(&m.sequential_line, "3"),
        level(&m.sequential_line, "memory"),
        fmt_opt(m.remote_dirty_line),
        level(&m.latency, "2"),
        level(&m.latency, "3"),
        level(&m.latency, "memory"),
    );
}

fn validation_summary(v: &Validation, out: &mut String) {
    let _ = writeln!(
        out,
        "**Validation** (`simulate validate`): the simulator configured as this machine (topology `this`) \
         beside real runs of the same configurations in this invocation, {} s each. Largest |error| of a \
         table ratio: **{}%**.\n",
        fmt_opt(Some(v.seconds)),
        fmt_opt(v.max_ratio_error_pct)
    );
    if v.machine_busy {
        let _ = writeln!(
            out,
            "**The machine was busy during the real runs** (other work used up to {} CPUs' worth of {} \
             during a run; a 1-core run keeps its core busy, so its CPU / wall below 1 is the share of a CPU \
             it got): it took CPU time from them, so their rates, and these errors, describe the machine's \
             load as much as the simulator.\n",
            fmt_opt(Some(v.max_other_cpus)),
            v.cpus
        );
    } else if v.max_other_cpus.is_finite() {
        let _ = writeln!(
            out,
            "The real runs had the machine to themselves: other work used at most {} CPUs' worth of {} \
             during any of them.\n",
            fmt_opt(Some(v.max_other_cpus)),
            v.cpus
        );
    }
    let _ = writeln!(
        out,
        "| benchmark / cores | max \\|ratio error\\| |\n|---|---:|"
    );
    for (k, e) in &v.max_ratio_error_pct_by {
        let _ = writeln!(out, "| {k} | {}% |", fmt_opt(Some(*e)));
    }
    if v.ratios.iter().any(|r| !r.error_pct_runs.is_empty()) {
        let _ = writeln!(
            out,
            "\nEach ratio's error is the median over {} rounds of its error against the ratio \
             measured within one round (numerator and denominator run in the same round); the \
             spread is the smallest and largest of those errors.\n\n\
             | table | row / over | fidelity | cores | real ratio | simulated ratio | error (median) | spread over rounds |\n\
             |---|---|---|---:|---:|---:|---:|---|",
            v.repeat
        );
        for r in &v.ratios {
            let spread = r
                .error_spread()
                .map_or("n/a".into(), |(lo, hi)| format!("{lo:+.0}% .. {hi:+.0}%"));
            let _ = writeln!(
                out,
                "| {} | {} / {} | {} | {} | {} | {} (sim) | {} | {spread} |",
                r.table,
                r.row,
                r.over,
                r.fidelity,
                r.cores,
                fmt_opt(Some(r.real)),
                fmt_opt(Some(r.simulated)),
                pct(r.error_pct)
            );
        }
    }
    let _ = writeln!(
        out,
        "\n| bench | runtime | stealing | fidelity | cores | real KEvents/s | simulated KEvents/s | error | real runs' CPU / wall |\n|---|---|---|---|---:|---:|---:|---:|---:|"
    );
    for e in &v.entries {
        let cpu = super::median(e.cpu_per_wall.iter().copied());
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} (sim) | {} | {} |",
            e.bench,
            e.runtime,
            e.stealing,
            e.fidelity,
            e.cores,
            fmt_opt(Some(e.real)),
            fmt_opt(Some(e.simulated)),
            pct(e.error_pct),
            fmt_opt(cpu)
        );
    }
    out.push('\n');
}

/// One paper table at 8 simulated cores on e5410, beside the paper and our 2-core run.
fn table(s: &SimResults, r: &Results, t: &tables::TableSpec, out: &mut String) {
    let _ = writeln!(
        out,
        "**Table {} (SIMULATED, 8 cores, e5410): {}**\n",
        t.id, t.title
    );
    let _ = writeln!(
        out,
        "| configuration | paper KEvents/s | paper ratio | ours 2 cores (measured) | ratio | **sim 8 cores** KEvents/s | sim ratio | validation error of the ratio (2 cores) | paper {m} | sim {m} |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        m = t.metric
    );
    let first = &t.rows[0];
    let p0 = first.paper_kevents;
    let m0 = r
        .micro_row(t.bench, first.runtime, &first.config.key())
        .and_then(|m| m.kevents_median());
    let s0 = s
        .table_point(t.bench, first.runtime, &first.config.key())
        .and_then(|p| p.kevents);
    for row in t.rows.iter().filter(|row| row.runtime != "tokio") {
        let measured = r
            .micro_row(t.bench, row.runtime, &row.config.key())
            .and_then(|m| m.kevents_median());
        let sim = s.table_point(t.bench, row.runtime, &row.config.key());
        let sk = sim.and_then(|p| p.kevents);
        let err = if std::ptr::eq(row, first) {
            "-".to_string()
        } else {
            pct(s.ratio_error(t.bench, row.runtime, &row.config.key(), first.label, 2))
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} (sim) | {} (sim) | {} | {} | {} (sim) |",
            row.label,
            fmt_opt(row.paper_kevents),
            fmt_opt(ratio(row.paper_kevents, p0)),
            fmt_opt(measured),
            fmt_opt(ratio(measured, m0)),
            fmt_opt(sk),
            fmt_opt(ratio(sk, s0)),
            err,
            fmt_opt(row.paper_metric),
            fmt_opt(sim.and_then(|p| p.metric(t.metric)))
        );
    }
    out.push('\n');
}

fn scaling_table(s: &SimResults, out: &mut String) {
    let mut cores: Vec<usize> = s.scaling.iter().map(|p| p.cores).collect();
    cores.sort_unstable();
    cores.dedup();
    let _ = writeln!(
        out,
        "**Scaling (SIMULATED, KEvents/s; e5410 packages, copies of the machine past 8 cores)**\n"
    );
    let head: String = cores.iter().map(|c| format!(" {c} |")).collect();
    let _ = writeln!(
        out,
        "| bench | configuration |{head}\n|---|---|{}",
        "---:|".repeat(cores.len())
    );
    let mut keys: Vec<(String, String, String)> = s
        .scaling
        .iter()
        .map(|p| (p.bench.clone(), p.runtime.clone(), p.stealing.clone()))
        .collect();
    keys.sort();
    keys.dedup();
    for (b, rt, st) in keys {
        let cells: String = cores
            .iter()
            .map(|&c| {
                let k = s
                    .scaling
                    .iter()
                    .find(|p| p.bench == b && p.runtime == rt && p.stealing == st && p.cores == c)
                    .and_then(|p| p.kevents);
                format!(" {} |", fmt_opt(k))
            })
            .collect();
        let _ = writeln!(out, "| {b} | {rt} {st} |{cells}");
    }
    out.push('\n');
}

/// The simulator's section of `report.md`.
pub fn markdown(r: &Results, out: &mut String) {
    let s = SimResults::load(&r.dir);
    if s.is_empty() {
        let _ = writeln!(out, "Not run (or see Missing experiments).\n");
        unreadable(&s, out);
        super::paper_mode::markdown(&r.dir, "validation not run", out);
        return;
    }
    let _ = writeln!(
        out,
        "Every figure in this section is **simulated**: the runtime's real queue designs and stealing \
         decisions run on virtual cores and a virtual cycle clock, with this machine's measured costs \
         (`microbenches simulate`; the model and its parameters are printed with each result's JSON under `sim/`). \
         `e5410` is the Mely paper's machine (2 x 4 cores, 6 MB L2 per pair, Table II's latencies charged per \
         missed line). Beside each simulated ratio stands the validation error of the same ratio at 2 cores \
         (simulated as this machine against the real run).\n"
    );
    if let Some(c) = &s.calibration {
        calibration_summary(c, out);
    }
    match &s.validation {
        Some(v) => validation_summary(v, out),
        None => {
            let _ = writeln!(out, "Validation: not run (see Missing experiments).\n");
        }
    }
    for t in tables::specs() {
        if matches!(t.bench, "unbalanced" | "penalty" | "cache-efficient") {
            table(&s, r, &t, out);
        }
    }
    if !s.scaling.is_empty() {
        scaling_table(&s, out);
    }
    unreadable(&s, out);
    let note = match &s.validation {
        Some(v) => format!(
            "the simulator's largest |ratio error| against real runs at 1-2 cores: {}%",
            fmt_opt(v.max_ratio_error_pct)
        ),
        None => "validation not run".into(),
    };
    super::paper_mode::markdown(&r.dir, &note, out);
}

/// The files under `sim/` that could not be read, and why.
fn unreadable(s: &SimResults, out: &mut String) {
    for (name, why) in &s.unreadable {
        let _ = writeln!(out, "- unreadable: **{name}**: {why}");
    }
}
