//! `microbenches paper-tables`: every configuration of Tables III-VI and the synthetic table,
//! run `repeat` times each, rendered beside the paper's figures ([`crate::tables`]).
//!
//! A configuration that appears in several tables (Libasync-smp off is in III, III-locking and
//! IV) runs once and its results serve every table.
//!
//! With the papers' fidelity (`Fidelity::Paper`: spinning idle workers, test-and-set lock,
//! unbuffered posts, libasync-smp's steal walk) only the rows named as the paper's run (the
//! colored rows with the paper's figures): the paper's configurations as the papers' runtimes
//! ran them. Every result records its fidelity.

use crate::report::BenchResult;
use crate::run::{self, RunOpts};
use crate::tables::{self, Measured, RowConfig, RowSpec};
use crate::unbalanced::Costs;
use crate::RuntimeArg;
use anyhow::{bail, Result};
use colored_runtime::{Fidelity, FidelityOptions, StealAmount, StealPolicy};
use std::collections::HashMap;

/// What `paper-tables` runs with.
#[derive(Clone, Debug)]
pub struct Options {
    pub workers: usize,
    /// Measured seconds per configuration and repetition.
    pub seconds: f64,
    /// Repetitions per configuration (median and min-max are reported).
    pub repeat: usize,
    /// The runtime's fidelity preset; `Paper` runs only the rows named as the paper's.
    pub fidelity: Fidelity,
}

impl Options {
    /// Whether row `r` of a table runs with these options.
    pub fn runs_row(&self, r: &RowSpec) -> bool {
        match self.fidelity {
            Fidelity::Ours => true,
            Fidelity::Paper => r.is_papers(),
        }
    }
}

/// What it produced.
pub struct Output {
    /// Every result of every repetition, in the order they ran.
    pub raw: Vec<BenchResult>,
    /// The tables in Markdown, one string per table (the first is the header line).
    pub markdown: Vec<String>,
}

/// Median and spread of one configuration over repetitions; the other metric is the one of the
/// repetition whose rate is closest to the median.
fn measure(results: &[BenchResult], metric: &str) -> Measured {
    let mut k: Vec<f64> = results.iter().map(|r| r.kevents_per_sec).collect();
    k.sort_by(|a, b| a.total_cmp(b));
    let median = k[k.len() / 2];
    let mid = results
        .iter()
        .min_by(|a, b| {
            (a.kevents_per_sec - median)
                .abs()
                .total_cmp(&(b.kevents_per_sec - median).abs())
        })
        .expect("at least one repetition");
    let m = match metric {
        "WS cost (cycles)" => mid.steal_cost_cycles,
        "locking time %" => mid.locking_time_pct,
        "stolen time (cycles)" => mid.stolen_time_cycles,
        "L2 misses/event" => mid.l2_misses_per_event,
        _ => None,
    };
    Measured {
        kevents: median,
        kevents_spread: (k[0], k[k.len() - 1]),
        metric: m,
    }
}

/// One repetition of the configuration a row stands for.
fn run_row(bench: &str, r: &RowSpec, o: &Options) -> Result<Vec<BenchResult>> {
    let mut opts = RunOpts {
        runtime: match r.runtime {
            "libasync" => RuntimeArg::Libasync,
            "tokio" => RuntimeArg::Tokio,
            _ => RuntimeArg::Mely,
        },
        stealing: StealPolicy::Off,
        steal_amount: StealAmount::One,
        workers: o.workers,
        seconds: o.seconds,
        trace: None,
        fidelity: FidelityOptions::of(o.fidelity),
        trace_out: None,
    };
    let mut costs = Costs::Annotated;
    match r.config {
        RowConfig::Colored {
            policy,
            amount,
            costs: c,
        } => {
            opts.stealing = policy;
            opts.steal_amount = amount;
            costs = c;
        }
        RowConfig::Tokio => {}
        RowConfig::Synthetic(c) => return run::synthetic(&opts, Some(c)),
    }
    match bench {
        "unbalanced" => run::unbalanced(&opts, costs),
        "penalty" => run::fork_join(run::ForkJoin::Penalty, &opts),
        "cache-efficient" => run::fork_join(run::ForkJoin::CacheEfficient, &opts),
        other => bail!("no benchmark {other}"),
    }
}

/// Run every table. `progress` hears of each configuration before it runs.
pub fn run(o: &Options, progress: &mut dyn FnMut(&str)) -> Result<Output> {
    if o.workers == 0 || !(o.seconds > 0.0 && o.seconds.is_finite()) {
        bail!("--workers must be >= 1 and --seconds > 0");
    }
    let env = crate::env::detect();
    let mut raw: Vec<BenchResult> = Vec::new();
    let mut cache: HashMap<(String, String, String), Vec<BenchResult>> = HashMap::new();
    let mut markdown = vec![format!(
        "Measured on: {}; {} workers, {} s x {} per configuration, --fidelity {}. \
         Ratios are to each table's first row.\n",
        env.summary(),
        o.workers,
        o.seconds,
        o.repeat,
        o.fidelity
    )];
    for mut t in tables::specs() {
        t.rows.retain(|r| o.runs_row(r));
        if t.rows.is_empty() {
            continue;
        }
        let mut measured = Vec::new();
        for r in &t.rows {
            let key = (t.bench.to_string(), r.runtime.to_string(), r.config.key());
            if !cache.contains_key(&key) {
                let mut runs = Vec::new();
                for _ in 0..o.repeat.max(1) {
                    progress(&format!("{} {} {}", t.bench, r.runtime, key.2));
                    runs.append(&mut run_row(t.bench, r, o)?);
                }
                raw.extend(runs.iter().cloned());
                cache.insert(key.clone(), runs);
            }
            measured.push(Some(measure(&cache[&key], t.metric)));
        }
        let mut table = tables::render(&t, &measured, o.workers);
        let sized = raw.iter().find(|r| r.bench == t.bench);
        if let Some(line) = sized.and_then(|r| tables::sizes_sentence(&r.extra)) {
            table.push_str(&format!("\n{line}\n"));
        }
        markdown.push(table);
    }
    if !crate::perf::LlcCounter::available() {
        markdown.push(
            "L2 misses: this machine exposes no hardware cache counters (perf_event_open failed), so they are n/a.\n"
                .into(),
        );
    }
    Ok(Output { raw, markdown })
}
