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
use microbench_defs::tables;
use serde_json::Value;
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
    fn metric(&self, name: &str) -> Option<f64> {
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
    pub calibration: Option<Value>,
    pub validation: Option<Value>,
    /// 8 cores on e5410.
    pub tables: Vec<SimPoint>,
    pub scaling: Vec<SimPoint>,
    /// Files that could not be read (name, why).
    pub unreadable: Vec<(String, String)>,
}

fn read(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))
}

fn point(v: &Value) -> Option<SimPoint> {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(String::from);
    let n = |k: &str| v.get(k).and_then(Value::as_f64);
    if v.get("simulated") != Some(&Value::Bool(true)) {
        return None;
    }
    // Keyed as the tables key their rows (`time-left-one-profiled`); the simulator runs the
    // paper's one-color steal only.
    let policy = s("stealing")?;
    let time_left = policy
        .parse::<colored_runtime::StealPolicy>()
        .is_ok_and(|p| p.time_left());
    let stealing = microbench_defs::tables::stealing_key(
        &policy,
        time_left.then_some("one"),
        v.get("costs").and_then(Value::as_str) == Some("profiled"),
    );
    Some(SimPoint {
        bench: s("bench")?,
        runtime: s("runtime")?,
        stealing,
        cores: v.get("cores")?.as_u64()? as usize,
        kevents: n("kevents_per_sec"),
        steal_cost_cycles: n("steal_cost_cycles"),
        stolen_time_cycles: n("stolen_time_cycles"),
        locking_time_pct: n("locking_time_pct"),
        l2_misses_per_event: n("l2_misses_per_event"),
    })
}

fn load_points(dir: &Path, name: &str, out: &mut Vec<SimPoint>, bad: &mut Vec<(String, String)>) {
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
        match read(&f).map(|v| point(&v)) {
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
        for (name, slot) in [
            ("calibration", &mut r.calibration),
            ("validate", &mut r.validation),
        ] {
            let p = sim.join(format!("{name}.json"));
            if p.exists() {
                match read(&p) {
                    Ok(v) => *slot = Some(v),
                    Err(e) => bad.push((format!("sim/{name}.json"), e)),
                }
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
        self.validation_error("entries", bench, runtime, stealing, None, cores)
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
        self.validation_error("ratios", bench, runtime, stealing, Some(over), cores)
    }

    /// `error_pct` of the validation's `list` entry for a configuration at `cores` (and, for a
    /// ratio, over the row `over`).
    fn validation_error(
        &self,
        list: &str,
        bench: &str,
        runtime: &str,
        stealing: &str,
        over: Option<&str>,
        cores: usize,
    ) -> Option<f64> {
        self.validation.as_ref()?[list]
            .as_array()?
            .iter()
            .find(|e| {
                e["bench"] == bench
                    && e["runtime"] == runtime
                    && e["stealing"] == stealing
                    && over.map_or(true, |o| e["over"] == o)
                    && e["cores"] == cores
            })?["error_pct"]
            .as_f64()
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

fn calibration_summary(c: &Value, out: &mut String) {
    let f = |path: &[&str]| {
        let mut v = c;
        for k in path {
            v = &v[*k];
        }
        fmt_opt(v.as_f64())
    };
    let _ = writeln!(
        out,
        "Calibration (this machine, {}, cycles of its {} GHz counter): per event run {} (libasync) / {} (mely), \
         pop {} / {}, local post {} / {}, remote post {} / {}; steal: libasync {} per queued event, mely {} + {} per color; \
         lock {}; cache-line transfer {}; wake-up {} (+{} for the poster); search nap {}; \
         sequential cost per missed line L2 {}, L3 {}, memory {}, modified in the other core's cache {} (pointer-chase latency {}, {}, {}).\n",
        c["cpu_model"].as_str().unwrap_or("?"),
        fmt_opt(c["cycles_per_sec"].as_f64().map(|h| h / 1e9)),
        f(&["designs", "libasync", "run_event"]),
        f(&["designs", "mely", "run_event"]),
        f(&["designs", "libasync", "pop"]),
        f(&["designs", "mely", "pop"]),
        f(&["designs", "libasync", "post_local"]),
        f(&["designs", "mely", "post_local"]),
        f(&["designs", "libasync", "post_remote"]),
        f(&["designs", "mely", "post_remote"]),
        f(&["designs", "libasync", "steal_per_queued"]),
        f(&["designs", "mely", "steal_base"]),
        f(&["designs", "mely", "steal_per_color"]),
        f(&["lock"]),
        f(&["line_transfer"]),
        f(&["wake_latency"]),
        f(&["wake_post"]),
        f(&["search_nap"]),
        f(&["memory", "sequential_line", "2"]),
        f(&["memory", "sequential_line", "3"]),
        f(&["memory", "sequential_line", "memory"]),
        f(&["memory", "remote_dirty_line"]),
        f(&["memory", "latency", "2"]),
        f(&["memory", "latency", "3"]),
        f(&["memory", "latency", "memory"]),
    );
}

fn validation_summary(v: &Value, out: &mut String) {
    let _ = writeln!(
        out,
        "**Validation** (`simulate validate`): the simulator configured as this machine (topology `this`) \
         beside real runs of the same configurations in this invocation, {} s each. Largest |error| of a \
         table ratio: **{}%**.\n",
        fmt_opt(v["seconds"].as_f64()),
        fmt_opt(v["max_ratio_error_pct"].as_f64())
    );
    if v["machine_busy"].as_bool() == Some(true) {
        let _ = writeln!(
            out,
            "**The machine was busy during the real runs** (other work used up to {} CPUs' worth of {} \
             during a run; a 1-core run keeps its core busy, so its CPU / wall below 1 is the share of a CPU \
             it got): it took CPU time from them, so their rates, and these errors, describe the machine's \
             load as much as the simulator.\n",
            fmt_opt(v["max_other_cpus"].as_f64()),
            v["cpus"]
        );
    } else if let Some(o) = v["max_other_cpus"].as_f64() {
        let _ = writeln!(
            out,
            "The real runs had the machine to themselves: other work used at most {} CPUs' worth of {} \
             during any of them.\n",
            fmt_opt(Some(o)),
            v["cpus"]
        );
    }
    let _ = writeln!(
        out,
        "| benchmark / cores | max \\|ratio error\\| |\n|---|---:|"
    );
    if let Some(m) = v["max_ratio_error_pct_by"].as_object() {
        for (k, e) in m {
            let _ = writeln!(out, "| {k} | {}% |", fmt_opt(e.as_f64()));
        }
    }
    let _ = writeln!(
        out,
        "\n| bench | runtime | stealing | cores | real KEvents/s | simulated KEvents/s | error | real runs' CPU / wall |\n|---|---|---|---:|---:|---:|---:|---:|"
    );
    for e in v["entries"].as_array().into_iter().flatten() {
        let cpu = super::median(
            e["cpu_per_wall"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_f64),
        );
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} (sim) | {} | {} |",
            e["bench"].as_str().unwrap_or("?"),
            e["runtime"].as_str().unwrap_or("?"),
            e["stealing"].as_str().unwrap_or("?"),
            e["cores"],
            fmt_opt(e["real"].as_f64()),
            fmt_opt(e["simulated"].as_f64()),
            pct(e["error_pct"].as_f64()),
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
    for (name, why) in &s.unreadable {
        let _ = writeln!(out, "- unreadable: **{name}**: {why}");
    }
}
