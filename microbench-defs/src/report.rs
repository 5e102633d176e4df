//! One benchmark result and its table / JSON / CSV forms. The struct that writes a result is the
//! one that reads it back (`colored-report`): a field a writer always writes is required when
//! reading (a file without it is an error naming the field); a field older results were written
//! without is an `Option`, `None` when absent.

use crate::env::Env;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The fixed JSON fields (docs/ARCHITECTURE.md, "Fixed interfaces"), plus per-benchmark extras.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchResult {
    pub bench: String,
    pub runtime: String,
    pub stealing: String,
    /// What each time-left steal took (`one` or `half`); null for the policies without
    /// time-left steals, whose steals it does not change.
    pub steal_amount: Option<String>,
    pub workers: usize,
    pub seconds: f64,
    pub events: u64,
    pub kevents_per_sec: f64,
    pub steals: u64,
    pub steal_attempts: u64,
    /// Colors moved by those steals (a time-left steal can take several); `None` only in
    /// results written before it was counted.
    pub stolen_colors: Option<u64>,
    /// Mean cycles a victim stayed locked per steal (null without steals or for tokio).
    pub steal_cost_cycles: Option<f64>,
    /// Mean measured processing cycles stolen per steal.
    pub stolen_time_cycles: Option<f64>,
    pub locking_time_pct: Option<f64>,
    /// From perf_event_open where the machine has hardware counters, otherwise null.
    pub l2_misses_per_event: Option<f64>,
    /// The runtime's fidelity options: `ours`, `paper`, or `mixed` when set one by one (null
    /// for tokio).
    pub fidelity: Option<String>,
    /// Mean nodes of the victim's queue a steal visited (null without steals or for tokio).
    pub steal_nodes_visited: Option<f64>,
    /// The benchmark's own fields (`costs`, `rounds`, `sized_to`, `ns_per_event`, ...), by name.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
    /// The machine it ran on; `None` only in results written before it was stored with each.
    pub env: Option<Env>,
}

impl BenchResult {
    /// The benchmark's own field `key` when it is a string (`costs`, `config`, `sized_to`).
    pub fn extra_str(&self, key: &str) -> Option<&str> {
        self.extra.get(key).and_then(Value::as_str)
    }

    /// The benchmark's own field `key` when it is a finite number (`ns_per_event`, `cores`).
    pub fn extra_f64(&self, key: &str) -> Option<f64> {
        self.extra
            .get(key)
            .and_then(Value::as_f64)
            .filter(|x| x.is_finite())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

fn opt(v: Option<f64>, prec: usize) -> String {
    match v {
        Some(x) => format!("{x:.prec$}"),
        None => "n/a".into(),
    }
}

/// Print results in the chosen format. Extra columns are taken from the first result's extras.
pub fn print(results: &[BenchResult], format: Format) {
    match format {
        Format::Json => {
            if results.len() == 1 {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&results[0]).expect("serialisable")
                );
            } else {
                println!(
                    "{}",
                    serde_json::to_string_pretty(results).expect("serialisable")
                );
            }
        }
        Format::Csv => {
            let extras: Vec<String> = results
                .first()
                .map(|r| r.extra.keys().cloned().collect())
                .unwrap_or_default();
            println!(
                "bench,runtime,stealing,steal_amount,workers,seconds,events,kevents_per_sec,steals,steal_cost_cycles,stolen_time_cycles,locking_time_pct,l2_misses_per_event{}",
                extras.iter().map(|e| format!(",{e}")).collect::<String>()
            );
            for r in results {
                let ex: String = extras
                    .iter()
                    .map(|k| format!(",{}", r.extra.get(k).map(csv_value).unwrap_or_default()))
                    .collect();
                println!(
                    "{},{},{},{},{},{:.3},{},{:.1},{},{},{},{},{}{}",
                    r.bench,
                    r.runtime,
                    r.stealing,
                    r.steal_amount.as_deref().unwrap_or("n/a"),
                    r.workers,
                    r.seconds,
                    r.events,
                    r.kevents_per_sec,
                    r.steals,
                    opt(r.steal_cost_cycles, 0),
                    opt(r.stolen_time_cycles, 0),
                    opt(r.locking_time_pct, 2),
                    opt(r.l2_misses_per_event, 1),
                    ex
                );
            }
        }
        Format::Table => {
            let extras: Vec<String> = results
                .first()
                .map(|r| r.extra.keys().cloned().collect())
                .unwrap_or_default();
            let mut header = vec![
                "bench",
                "runtime",
                "stealing",
                "amount",
                "workers",
                "KEvents/s",
                "steals",
                "WS cost (cyc)",
                "stolen (cyc)",
                "locking %",
                "L2 miss/ev",
            ]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
            header.extend(extras.iter().cloned());
            let mut rows = vec![header];
            for r in results {
                let mut row = vec![
                    r.bench.clone(),
                    r.runtime.clone(),
                    r.stealing.clone(),
                    r.steal_amount.clone().unwrap_or_else(|| "-".into()),
                    r.workers.to_string(),
                    format!("{:.0}", r.kevents_per_sec),
                    r.steals.to_string(),
                    opt(r.steal_cost_cycles, 0),
                    opt(r.stolen_time_cycles, 0),
                    opt(r.locking_time_pct, 2),
                    opt(r.l2_misses_per_event, 1),
                ];
                row.extend(
                    extras
                        .iter()
                        .map(|k| r.extra.get(k).map(csv_value).unwrap_or_default()),
                );
                rows.push(row);
            }
            print_table(&rows);
            if let Some(env) = results.first().and_then(|r| r.env.as_ref()) {
                println!("env: {}", env.summary());
            }
        }
    }
}

fn csv_value(v: &Value) -> String {
    match v {
        Value::Null => "n/a".into(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => format!("{f:.1}"),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Print rows as an aligned text table (first row is the header).
pub fn print_table(rows: &[Vec<String>]) {
    if rows.is_empty() {
        return;
    }
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.len())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for (i, r) in rows.iter().enumerate() {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, s)| format!("{:>w$}", s, w = widths[c]))
            .collect();
        println!("{}", line.join("  "));
        if i == 0 {
            println!(
                "{}",
                widths
                    .iter()
                    .map(|w| "-".repeat(*w))
                    .collect::<Vec<_>>()
                    .join("  ")
            );
        }
    }
}
