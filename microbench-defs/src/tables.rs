//! The papers' microbenchmark tables beside ours. Each row is one configuration; we print the
//! paper's figure and ours, and both as a ratio to the table's first row: the paper ran on an
//! 8-core Xeon E5410, so absolute rates do not compare, the shape does.
//!
//! A row of ours that varies one of the paper's configurations (our multi-color time-left
//! steal, `half`) names the paper's row it varies; the table then prints our measured gain
//! over the paper's configuration under it.

use crate::synthetic::Config as SynConfig;
use crate::unbalanced::Costs;
use colored_runtime::{StealAmount, StealPolicy};
use serde::Serialize;

/// The configuration a row runs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum RowConfig {
    /// A colored runtime with a stealing policy; `amount` matters only for the time-left
    /// policies, `costs` only for `unbalanced`.
    Colored {
        policy: StealPolicy,
        amount: StealAmount,
        costs: Costs,
    },
    /// tokio running the same fork/join.
    Tokio,
    /// One of the synthetic benchmark's library configurations.
    Synthetic(SynConfig),
}

/// The key a configuration's results are found under: the policy, then the steal amount where
/// the policy does time-left steals (`time-left-one`, `penalty-half`), then `-profiled` for
/// `unbalanced` on profiled costs. Results written before the steal amount was recorded have
/// no amount in their key, so they never pass for a row of either amount.
pub fn stealing_key(stealing: &str, amount: Option<&str>, profiled: bool) -> String {
    let mut k = stealing.to_string();
    if let Some(a) = amount {
        k.push('-');
        k.push_str(a);
    }
    if profiled {
        k.push_str("-profiled");
    }
    k
}

impl RowConfig {
    /// The key of [`stealing_key`] (synthetic rows: their configuration's label).
    pub fn key(&self) -> String {
        match *self {
            RowConfig::Colored {
                policy,
                amount,
                costs,
            } => stealing_key(
                policy.as_str(),
                policy.time_left().then(|| amount.as_str()),
                costs == Costs::Profiled,
            ),
            RowConfig::Tokio => "tokio".into(),
            RowConfig::Synthetic(c) => c.label().into(),
        }
    }
}

/// A configuration a row stands for.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RowSpec {
    pub label: &'static str,
    pub runtime: &'static str,
    pub config: RowConfig,
    /// The paper's KEvents/s (None where the paper text gives no number).
    pub paper_kevents: Option<f64>,
    /// The table's second metric, as the paper printed it.
    pub paper_metric: Option<f64>,
    /// For a row of ours varying one of the paper's: the label of that row (our gain over it
    /// is printed under the table).
    pub gain_over: Option<&'static str>,
}

impl RowSpec {
    /// A row named as the paper's: a colored configuration the paper gave a figure for (the
    /// rows `paper-tables --fidelity paper` runs with the papers' mechanisms).
    pub fn is_papers(&self) -> bool {
        self.paper_kevents.is_some() && matches!(self.config, RowConfig::Colored { .. })
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct TableSpec {
    pub id: &'static str,
    pub title: &'static str,
    pub bench: &'static str,
    /// Name of the second metric column.
    pub metric: &'static str,
    pub rows: Vec<RowSpec>,
    /// What was measured and why our shape differs from the paper's (printed under the table).
    pub notes: &'static str,
}

const fn colored(policy: StealPolicy, amount: StealAmount, costs: Costs) -> RowConfig {
    RowConfig::Colored {
        policy,
        amount,
        costs,
    }
}

/// A row on a colored runtime (annotated costs; the paper's one-color steal where it applies).
const fn row(
    label: &'static str,
    runtime: &'static str,
    policy: StealPolicy,
    k: Option<f64>,
    m: Option<f64>,
) -> RowSpec {
    RowSpec {
        label,
        runtime,
        config: colored(policy, StealAmount::One, Costs::Annotated),
        paper_kevents: k,
        paper_metric: m,
        gain_over: None,
    }
}

/// A row of ours: `config` on Mely, measured against the paper's row `over`.
const fn ours(label: &'static str, config: RowConfig, over: &'static str) -> RowSpec {
    RowSpec {
        label,
        runtime: "mely",
        config,
        paper_kevents: None,
        paper_metric: None,
        gain_over: Some(over),
    }
}

/// A row without a paper figure.
const fn extra(label: &'static str, runtime: &'static str, config: RowConfig) -> RowSpec {
    RowSpec {
        label,
        runtime,
        config,
        paper_kevents: None,
        paper_metric: None,
        gain_over: None,
    }
}

pub fn specs() -> Vec<TableSpec> {
    use StealPolicy::{Base, Locality, Off, Penalty, TimeLeft};
    const TIME_AWARE: &str = "Mely - time-aware WS";
    const PENALTY_AWARE: &str = "Mely - penalty-aware WS";
    vec![
        TableSpec {
            id: "III",
            title: "Impact of the base workstealing (unbalanced)",
            bench: "unbalanced",
            metric: "WS cost (cycles)",
            rows: vec![
                row("Libasync-smp", "libasync", Off, Some(1310.0), None),
                row("Libasync-smp - WS", "libasync", Base, Some(122.0), Some(28329.0)),
                row("Mely", "mely", Off, Some(1265.0), None),
                row("Mely - base WS", "mely", Base, Some(1195.0), Some(2261.0)),
            ],
            notes: NOTE_III,
        },
        TableSpec {
            id: "III-locking",
            title: "Locking time (unbalanced)",
            bench: "unbalanced",
            metric: "locking time %",
            rows: vec![
                row("Libasync-smp", "libasync", Off, Some(1310.0), Some(0.93)),
                row("Libasync-smp - WS", "libasync", Base, Some(122.0), Some(39.73)),
                row("Mely", "mely", Off, Some(1265.0), Some(0.89)),
                row("Mely - base WS", "mely", Base, Some(1195.0), Some(1.42)),
            ],
            notes: NOTE_III_LOCKING,
        },
        TableSpec {
            id: "IV",
            title: "Impact of the time-left heuristic (unbalanced)",
            bench: "unbalanced",
            metric: "stolen time (cycles)",
            rows: vec![
                row("Libasync-smp", "libasync", Off, Some(1310.0), None),
                row("Libasync-smp - WS", "libasync", Base, Some(122.0), Some(484.0)),
                row("Mely - base WS", "mely", Base, Some(1195.0), Some(445.0)),
                row(TIME_AWARE, "mely", TimeLeft, Some(2042.0), Some(49987.0)),
                ours(
                    "ours: time-aware WS taking colors up to half the victim's queued time",
                    colored(TimeLeft, StealAmount::Half, Costs::Annotated),
                    TIME_AWARE,
                ),
                extra(
                    "Mely - time-aware WS (profiled costs)",
                    "mely",
                    colored(TimeLeft, StealAmount::One, Costs::Profiled),
                ),
                extra("tokio (multi-thread, same fork/join)", "tokio", RowConfig::Tokio),
            ],
            notes: NOTE_IV,
        },
        TableSpec {
            id: "V",
            title: "Impact of the penalty-aware stealing (penalty)",
            bench: "penalty",
            metric: "L2 misses/event",
            rows: vec![
                row("Libasync-smp", "libasync", Off, Some(1103.0), Some(29.0)),
                row("Libasync-smp - WS", "libasync", Base, Some(190.0), Some(167_000.0)),
                row("Mely - base WS", "mely", Base, Some(1386.0), Some(42_000.0)),
                row(PENALTY_AWARE, "mely", Penalty, Some(2122.0), Some(2_000.0)),
                ours(
                    "ours: penalty-aware WS taking colors up to half the victim's queued time",
                    colored(Penalty, StealAmount::Half, Costs::Annotated),
                    PENALTY_AWARE,
                ),
            ],
            notes: NOTE_V,
        },
        TableSpec {
            id: "VI",
            title: "Impact of the locality-aware stealing (cache-efficient)",
            bench: "cache-efficient",
            metric: "L2 misses/event",
            rows: vec![
                row("Libasync-smp", "libasync", Off, Some(1156.0), Some(0.0)),
                row("Libasync-smp - WS", "libasync", Base, Some(1497.0), Some(13.0)),
                row("Mely - base WS", "mely", Base, Some(1426.0), Some(12.0)),
                row("Mely - locality-aware WS", "mely", Locality, Some(1869.0), Some(2.0)),
            ],
            notes: "",
        },
        TableSpec {
            id: "synthetic",
            title: "libasync-smp library optimisations (synthetic; the paper's text has its numbers stripped)",
            bench: "synthetic",
            metric: "-",
            rows: SynConfig::ALL
                .iter()
                .map(|&c| extra(c.label(), "libasync", RowConfig::Synthetic(c)))
                .collect(),
            notes: NOTE_SYNTHETIC,
        },
    ]
}

const NOTE_III: &str = "unbalanced posts every event to worker 0, so every other worker is a \
    thief of that one victim: the paper's figures come from 7 thieves on one victim (8 cores). WS \
    cost is the time a thief holds the victim's lock per steal (choosing the color, collecting its \
    events, unlinking them).";

const NOTE_III_LOCKING: &str = "locking time is sampled (one lock acquisition in 64 timed and \
    scaled, steals always), so it can exceed 100% for libasync base, where a few sampled waits are \
    very long.";

const NOTE_IV: &str = "Mely - time-aware WS steals one color per steal, the best worthy one, as \
    the paper's Mely did; the row of ours takes worthy colors until the thief holds half of the \
    victim's queued time (at most 32 colors), so its stolen time per steal counts every color it \
    moved.";

const NOTE_V: &str = "L2 misses need hardware counters (n/a on virtual machines without them).";

const NOTE_SYNTHETIC: &str = "The paper's text lost this table's numbers; our rows show the \
    direction of each optimisation.";

/// The array sizes of a cache-sized benchmark (`penalty`, `cache-efficient`) as one sentence,
/// from the fields its results carry; `None` when they carry none (another benchmark, or
/// results of the earlier fixed sizes).
pub fn sizes_sentence(extra: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    extra.get("sized_to")?;
    let n = |k: &str| extra.get(k).and_then(serde_json::Value::as_f64);
    let kb = |k: &str| n(k).map_or_else(|| "n/a".into(), |b| format!("{:.1}", b / 1024.0));
    let from = match extra.get("l2_from").and_then(serde_json::Value::as_str) {
        Some("sysfs") => "from the topology in sysfs",
        _ => "assumed: the machine does not report it",
    };
    Some(format!(
        "Arrays sized to the L2: {} arrays of {} KB per round, at most {} KB in flight on a core, \
         against an L2 of {} KB per core ({from}).",
        n("arrays_per_round").map_or_else(|| "n/a".into(), |a| format!("{a:.0}")),
        kb("array_bytes"),
        kb("in_flight_bytes_per_core"),
        kb("l2_bytes"),
    ))
}

/// Our measured value for a row.
#[derive(Clone, Debug, Serialize)]
pub struct Measured {
    pub kevents: f64,
    pub kevents_spread: (f64, f64),
    pub metric: Option<f64>,
}

fn fmt(v: Option<f64>) -> String {
    match v {
        None => "n/a".into(),
        Some(x) if x >= 100.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.2}"),
    }
}

/// Render one table as Markdown (also readable in a terminal); `workers` is the worker count
/// the rows ran with.
pub fn render(t: &TableSpec, measured: &[Option<Measured>], workers: usize) -> String {
    let mut s = format!("**Table {}: {}**\n\n", t.id, t.title);
    s.push_str(&format!(
        "| configuration | paper KEvents/s | paper ratio | ours KEvents/s (min-max) | ours ratio | paper {m} | ours {m} |\n|---|---:|---:|---:|---:|---:|---:|\n",
        m = t.metric
    ));
    let p0 = t.rows.first().and_then(|r| r.paper_kevents);
    let o0 = measured.first().and_then(|m| m.as_ref()).map(|m| m.kevents);
    for (r, m) in t.rows.iter().zip(measured) {
        let pr = match (r.paper_kevents, p0) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
            _ => "n/a".into(),
        };
        let (ours, spread, or, om) = match m {
            Some(m) => (
                format!("{:.0}", m.kevents),
                format!(" ({:.0}-{:.0})", m.kevents_spread.0, m.kevents_spread.1),
                o0.filter(|b| *b > 0.0)
                    .map(|b| format!("{:.2}", m.kevents / b))
                    .unwrap_or_else(|| "n/a".into()),
                fmt(m.metric),
            ),
            None => ("n/a".into(), String::new(), "n/a".into(), "n/a".into()),
        };
        s.push_str(&format!(
            "| {} | {} | {} | {}{} | {} | {} | {} |\n",
            r.label,
            fmt(r.paper_kevents),
            pr,
            ours,
            spread,
            or,
            fmt(r.paper_metric),
            om
        ));
    }
    for line in gains(t, measured) {
        s.push_str(&format!("\n{line}\n"));
    }
    if !t.notes.is_empty() {
        s.push_str(&format!("\n{}\n", t.notes));
    }
    if let Some(note) = measured_note(t, measured, workers) {
        s.push_str(&format!("\n{note}\n"));
    }
    s
}

/// What was measured for `t`'s row labelled `label` (`measured` is aligned with `t.rows`).
fn measured_row<'a>(
    t: &TableSpec,
    measured: &'a [Option<Measured>],
    label: &str,
) -> Option<&'a Measured> {
    t.rows
        .iter()
        .zip(measured)
        .find(|(r, _)| r.label == label)
        .and_then(|(_, m)| m.as_ref())
}

/// The sentence under a table that depends on what was measured and on the worker count
/// (`None` where a table has none, or its rows were not measured).
fn measured_note(t: &TableSpec, measured: &[Option<Measured>], workers: usize) -> Option<String> {
    let of = |label: &str| measured_row(t, measured, label);
    let ratio = |a: &str, b: &str| match (of(a), of(b)) {
        (Some(a), Some(b)) if b.kevents > 0.0 => format!("{:.2}x", a.kevents / b.kevents),
        _ => "n/a".into(),
    };
    let thieves = workers.saturating_sub(1);
    match t.id {
        "III" => {
            let cost = |label: &str| of(label).map_or_else(|| "n/a".into(), |m| fmt(m.metric));
            Some(format!(
                "Measured here: {thieves} {} on the victim; a libasync-smp steal costs {} \
                 cycles (the paper's: 28329 with 7 thieves) and a Mely base steal {} (the paper's: \
                 2261). libasync-smp with WS runs at {} of libasync-smp without (the paper's: \
                 0.09x): the paper's 7 thieves contend for that one victim's lock and queue, while \
                 here {}.",
                if thieves == 1 { "thief" } else { "thieves" },
                cost("Libasync-smp - WS"),
                cost("Mely - base WS"),
                ratio("Libasync-smp - WS", "Libasync-smp"),
                if thieves <= 1 {
                    "one thief never waits behind another thief"
                } else {
                    "fewer thieves share that lock"
                }
            ))
        }
        "IV" => Some(format!(
            "The paper's 1.56x over Libasync-smp came from 8 cores; with {workers} workers on as \
             many cores the ceiling is {workers}x (measured: {}).",
            ratio("Mely - time-aware WS", "Libasync-smp")
        )),
        "VI" if workers <= 2 => Some(format!(
            "With {workers} workers every thief has at most one neighbour: locality-aware stealing \
             has no choice to make (measured: {} of Mely base).",
            ratio("Mely - locality-aware WS", "Mely - base WS")
        )),
        _ => None,
    }
}

/// One sentence per row of ours: its measured KEvents/s over the paper's row it varies.
fn gains(t: &TableSpec, measured: &[Option<Measured>]) -> Vec<String> {
    let of = |label: &str| measured_row(t, measured, label);
    t.rows
        .iter()
        .zip(measured)
        .filter_map(|(r, m)| {
            let over = r.gain_over?;
            let ratio = match (m, of(over)) {
                (Some(a), Some(b)) if b.kevents > 0.0 => format!("{:.2}x", a.kevents / b.kevents),
                _ => "n/a".into(),
            };
            Some(format!(
                "Measured gain of \"{}\" over \"{over}\" (the paper's): {ratio} KEvents/s.",
                r.label
            ))
        })
        .collect()
}
