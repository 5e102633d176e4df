//! Report formats: a terminal table, JSON (the fixed shape in docs/ARCHITECTURE.md) and
//! CSV. Each carries the configuration and the environment.

use std::fmt::Write as _;

use anyhow::{bail, Result};

use crate::stats::{ErrorKind, RunSummary};
use crate::Report;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Human-readable table.
    Table,
    /// One JSON object.
    Json,
    /// Comma-separated rows, config and env as leading `#` lines.
    Csv,
}

impl std::str::FromStr for Format {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Format> {
        match s {
            "table" => Ok(Format::Table),
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            _ => bail!("unknown format {s:?}: expected table, json or csv"),
        }
    }
}

/// Renders the report.
pub fn render(report: &Report, format: Format) -> Result<String> {
    Ok(match format {
        Format::Json => serde_json::to_string_pretty(report)? + "\n",
        Format::Table => table(report),
        Format::Csv => csv(report)?,
    })
}

fn errors_text(errors: &std::collections::BTreeMap<String, u64>) -> String {
    let parts: Vec<String> = ErrorKind::ALL
        .iter()
        .filter_map(|k| {
            errors
                .get(k.name())
                .filter(|n| **n > 0)
                .map(|n| format!("{}={n}", k.name()))
        })
        .collect();
    if parts.is_empty() {
        "0".into()
    } else {
        parts.join(" ")
    }
}

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("unknown")
}

/// Flattens a JSON object into `prefix.key=value` pairs (scalars only).
fn flatten(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                flatten(&format!("{prefix}.{k}"), v, out);
            }
        }
        serde_json::Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                flatten(&format!("{prefix}.{i}"), v, out);
            }
        }
        serde_json::Value::String(s) => out.push((prefix.to_string(), s.clone())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// The configuration, the environment and the slaves.
fn table_header(s: &mut String, r: &Report) {
    let p = &r.config.plan;
    let paths: Vec<&str> = p.paths.iter().map(|x| x.path.as_str()).collect();
    let _ = writeln!(
        s,
        "load-injector {}: target {} ({}), clients {}, threads {}, {} run(s) of {}s after {}s warm-up, {} req/conn, think {} ms, timeout {} ms, paths {}",
        r.config.mode,
        p.target,
        p.addr,
        p.ramp.map(|x| format!("{}..{} step {}", x.start, x.end, x.step)).unwrap_or_else(|| p.clients.to_string()),
        if p.threads == 0 { "auto".to_string() } else { p.threads.to_string() },
        p.runs,
        p.duration_s,
        p.warmup_s,
        p.requests_per_conn,
        p.think_time_ms,
        p.timeout_ms,
        if paths.len() > 4 { format!("{} (+{} more)", paths[..4].join(","), paths.len() - 4) } else { paths.join(",") },
    );
    let _ = writeln!(s, "env: {}", r.env.summary());
    for sl in &r.config.slaves {
        let _ = writeln!(
            s,
            "slave {}: {} clients, {}{}",
            sl.addr,
            sl.clients,
            sl.env
                .as_ref()
                .map(|e| format!("{} cores, {}", e.cores, opt(&e.cpu_model)))
                .unwrap_or_else(|| "no answer".into()),
            sl.failure
                .as_ref()
                .map(|f| format!(" -- FAILED: {f}"))
                .unwrap_or_default()
        );
    }
}

/// One row per run (and per slave of a run), the median and the spread.
fn table_runs(s: &mut String, r: &Report) {
    let _ = writeln!(
        s,
        "\n{:>5} {:>7} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>10} {:>10}  errors",
        "run",
        "clients",
        "req/s",
        "MB/s",
        "p50 us",
        "p90 us",
        "p99 us",
        "p99.9 us",
        "conns",
        "requests",
        "cpu us/req"
    );
    let row = |s: &mut String, run: &RunSummary| {
        let _ = writeln!(
            s,
            "{:>5} {:>7} {:>12.1} {:>9.2} {:>9} {:>9} {:>9} {:>9} {:>8} {:>10} {:>10.1}  {}{}",
            run.run,
            run.clients,
            run.requests_per_sec,
            run.mbytes_per_sec,
            run.latency_us.p50,
            run.latency_us.p90,
            run.latency_us.p99,
            run.latency_us.p999,
            run.connections,
            run.requests,
            run.injector_cpu_us_per_request,
            errors_text(&run.errors),
            if run.complete {
                String::new()
            } else {
                format!("  INCOMPLETE (missing {})", run.missing_slaves.join("; "))
            }
        );
    };
    for run in &r.runs {
        row(s, run);
        for sl in &run.slaves {
            let _ = writeln!(
                s,
                "{:>13} {:>12.1} req/s  {} requests  {} errors  p50 {} us  p99 {} us  (slave {})",
                "", sl.requests_per_sec, sl.requests, sl.errors, sl.p50_us, sl.p99_us, sl.addr
            );
        }
    }
    let m = &r.median;
    let merr: std::collections::BTreeMap<String, u64> = m
        .errors
        .iter()
        .map(|(k, v)| (k.clone(), v.round() as u64))
        .collect();
    let _ = writeln!(
        s,
        "{:>5} {:>7} {:>12.1} {:>9.2} {:>9} {:>9} {:>9} {:>9} {:>8.0} {:>10} {:>10.1}  {}",
        "med",
        r.runs.last().map(|x| x.clients).unwrap_or(0),
        m.requests_per_sec,
        m.mbytes_per_sec,
        m.latency_us.p50,
        m.latency_us.p90,
        m.latency_us.p99,
        m.latency_us.p999,
        m.connections,
        "",
        m.injector_cpu_us_per_request,
        errors_text(&merr)
    );
    let _ = writeln!(
        s,
        "spread of req/s: min {:.1}, max {:.1}, stdev {:.1} ({:.1}%)",
        r.spread.min, r.spread.max, r.spread.stdev, r.spread.cv_pct
    );
}

/// The median of each step of a ramp.
fn table_ramp(s: &mut String, steps: &[crate::StepRow]) {
    let _ = writeln!(
        s,
        "\nramp (median per step)\n{:>7} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10}  complete",
        "clients", "req/s", "MB/s", "p50 us", "p90 us", "p99 us", "p99.9 us", "stdev %"
    );
    for st in steps {
        let _ = writeln!(
            s,
            "{:>7} {:>12.1} {:>9.2} {:>9} {:>9} {:>9} {:>9} {:>10.1}  {}",
            st.clients,
            st.median.requests_per_sec,
            st.median.mbytes_per_sec,
            st.median.latency_us.p50,
            st.median.latency_us.p90,
            st.median.latency_us.p99,
            st.median.latency_us.p999,
            st.spread.cv_pct,
            if st.complete { "yes" } else { "NO" }
        );
    }
}

fn table(r: &Report) -> String {
    let mut s = String::new();
    table_header(&mut s, r);
    table_runs(&mut s, r);
    if let Some(steps) = &r.steps {
        table_ramp(&mut s, steps);
    }
    if r.interrupted {
        let _ = writeln!(
            s,
            "\nINTERRUPTED: only the runs completed before the signal are reported."
        );
    }
    if !r.complete {
        let _ = writeln!(
            s,
            "\nINCOMPLETE: some slaves' results are missing; see above."
        );
    }
    s
}

fn csv(r: &Report) -> Result<String> {
    let mut s = String::new();
    let mut meta = Vec::new();
    flatten("config", &serde_json::to_value(&r.config)?, &mut meta);
    flatten("env", &serde_json::to_value(&r.env)?, &mut meta);
    for (k, v) in meta {
        let _ = writeln!(s, "# {k}={}", v.replace('\n', " "));
    }
    let mut header = vec![
        "row",
        "run",
        "clients",
        "requests",
        "responses_ok",
        "requests_per_sec",
        "mbytes_per_sec",
        "p50_us",
        "p90_us",
        "p99_us",
        "p999_us",
        "connections",
        "injector_cpu_us_per_request",
    ];
    let err_cols: Vec<String> = ErrorKind::ALL
        .iter()
        .map(|k| format!("errors_{}", k.name()))
        .collect();
    header.extend(err_cols.iter().map(String::as_str));
    header.extend(["complete", "rps_stdev"]);
    let _ = writeln!(s, "{}", header.join(","));
    for run in &r.runs {
        let errs: Vec<String> = ErrorKind::ALL
            .iter()
            .map(|k| run.errors.get(k.name()).copied().unwrap_or(0).to_string())
            .collect();
        let _ = writeln!(
            s,
            "run,{},{},{},{},{:.3},{:.4},{},{},{},{},{},{:.2},{},{},",
            run.run,
            run.clients,
            run.requests,
            run.responses_ok,
            run.requests_per_sec,
            run.mbytes_per_sec,
            run.latency_us.p50,
            run.latency_us.p90,
            run.latency_us.p99,
            run.latency_us.p999,
            run.connections,
            run.injector_cpu_us_per_request,
            errs.join(","),
            run.complete
        );
    }
    let steps: Vec<(usize, &crate::stats::Median, &crate::stats::Spread, bool)> = match &r.steps {
        Some(st) => st
            .iter()
            .map(|x| (x.clients, &x.median, &x.spread, x.complete))
            .collect(),
        None => vec![(
            r.runs.last().map(|x| x.clients).unwrap_or(0),
            &r.median,
            &r.spread,
            r.complete,
        )],
    };
    for (clients, m, sp, complete) in steps {
        let errs: Vec<String> = ErrorKind::ALL
            .iter()
            .map(|k| format!("{}", m.errors.get(k.name()).copied().unwrap_or(0.0)))
            .collect();
        let _ = writeln!(
            s,
            "median,,{clients},,,{:.3},{:.4},{},{},{},{},{},{:.2},{},{},{:.3}",
            m.requests_per_sec,
            m.mbytes_per_sec,
            m.latency_us.p50,
            m.latency_us.p90,
            m.latency_us.p99,
            m.latency_us.p999,
            m.connections,
            m.injector_cpu_us_per_request,
            errs.join(","),
            complete,
            sp.stdev
        );
    }
    Ok(s)
}
