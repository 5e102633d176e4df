//! Closed-loop master/slave HTTP load injector.
//!
//! Virtual clients connect, send a GET, read the whole response, think, and go
//! again; after `requests_per_conn` requests they reconnect. They are mio state
//! machines, many per thread, one thread per core by default ([`engine`]).
//! Latency is measured from each request's intended send time into HDR
//! histograms that merge exactly ([`stats`]), across threads and across the
//! slaves of a master ([`control`], [`master`], [`slave`]).
//!
//! Module map: [`plan`] (what to inject, parsed once), [`http`] (response
//! parser), [`engine`] (clients and threads), [`stats`] (counters, histograms,
//! medians), [`control`] (framed TCP protocol), [`master`] and [`slave`],
//! [`output`] (table, JSON, CSV), [`progress`]; the machine description in every report is
//! the project's env schema ([`edge::env::Env`], see [`environment`]).

#![warn(missing_docs)]

pub mod control;
pub mod engine;
pub mod http;
pub mod master;
pub mod output;
pub mod plan;
pub mod progress;
pub mod slave;
pub mod stats;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::engine::{run_window, Live, Window};
use crate::plan::Plan;
use crate::progress::Progress;
use crate::stats::{median, spread, Median, RunSummary, Spread};
pub use edge::env::Env;

/// This program's environment, recorded in every report (and each slave's in the master's).
pub fn environment() -> Env {
    Env::collect(concat!("load-injector ", env!("CARGO_PKG_VERSION")))
}

/// Delay between deciding to start a local run and its start, so every thread
/// is spawned and ready when the clients go.
const LOCAL_START_DELAY: Duration = Duration::from_millis(20);

/// Description of one slave in a master's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlaveInfo {
    /// Control address.
    pub addr: String,
    /// Virtual clients it ran (at the first step).
    pub clients: usize,
    /// Its environment, if it answered.
    pub env: Option<Env>,
    /// Why it is missing from some runs, if it is.
    pub failure: Option<String>,
}

/// The configuration block of a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// `run` (this host alone) or `master`.
    pub mode: String,
    /// The plan.
    #[serde(flatten)]
    pub plan: Plan,
    /// Slaves, in master mode.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slaves: Vec<SlaveInfo>,
}

/// One row of a ramp: the median of the runs at one client count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRow {
    /// Virtual clients.
    pub clients: usize,
    /// Median figures.
    #[serde(flatten)]
    pub median: Median,
    /// Spread of requests/s over the step's runs.
    pub spread: Spread,
    /// Whether every run of the step had all its slaves.
    pub complete: bool,
}

/// Everything a command prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Every run (in a ramp, every run of every step, in order).
    pub runs: Vec<RunSummary>,
    /// Median over runs (in a ramp: over the last step's runs).
    pub median: Median,
    /// Spread of requests/s over the same runs as `median`.
    pub spread: Spread,
    /// Ramp rows, one per client count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<StepRow>>,
    /// False when any run missed a slave's results.
    pub complete: bool,
    /// True when the command was stopped (SIGINT/SIGTERM) before all runs:
    /// only the runs completed are reported.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
    /// What was run.
    pub config: Config,
    /// Where it was run (the master's host in master mode).
    pub env: Env,
}

impl Report {
    /// Builds the report from the runs of each step (in step order).
    pub fn build(config: Config, env: Env, by_step: Vec<(usize, Vec<RunSummary>)>) -> Report {
        let steps: Vec<StepRow> = by_step
            .iter()
            .map(|(clients, runs)| StepRow {
                clients: *clients,
                median: median(runs),
                spread: spread(runs),
                complete: runs.iter().all(|r| r.complete),
            })
            .collect();
        let last = by_step.last().map(|(_, r)| r.as_slice()).unwrap_or(&[]);
        let runs: Vec<RunSummary> = by_step
            .iter()
            .flat_map(|(_, r)| r.iter().cloned())
            .collect();
        Report {
            median: median(last),
            spread: spread(last),
            complete: runs.iter().all(|r| r.complete),
            interrupted: false,
            steps: config.plan.ramp.is_some().then_some(steps),
            runs,
            config,
            env,
        }
    }
}

/// Why [`Report::merge`] refused its reports.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// Nothing to merge.
    #[error("no report to merge")]
    Empty,
    /// A report of a ramp (its runs belong to different client counts).
    #[error("report {index} is a ramp (--ramp): its runs have different client counts")]
    Ramp {
        /// Its position, from 1.
        index: usize,
    },
    /// A report whose load differs from the first one's.
    #[error("report {index} ran a different load than report 1 (differs in: {fields})")]
    DifferentLoad {
        /// Its position, from 1.
        index: usize,
        /// The configuration fields that differ.
        fields: String,
    },
}

impl Report {
    /// One report from several of the same load, each against its own server start (e.g.
    /// one sample of every configuration per round, the rounds interleaved): the runs in the
    /// order given (renumbered from 1), median and spread over all of them, complete only if
    /// all are, interrupted if any was. The load must be the same (clients, seconds,
    /// warm-up, paths, ...); only the server's address may differ, and the first report's is
    /// kept, as are its host description and mode.
    pub fn merge(reports: Vec<Report>) -> std::result::Result<Report, MergeError> {
        let first = reports.first().ok_or(MergeError::Empty)?;
        let load = |c: &Config| {
            let mut v = serde_json::to_value(c).unwrap_or_default();
            if let Some(m) = v.as_object_mut() {
                for k in ["target", "addr", "host_header", "runs", "slaves"] {
                    m.remove(k);
                }
            }
            v
        };
        let want = load(&first.config);
        for (i, r) in reports.iter().enumerate() {
            if r.steps.is_some() {
                return Err(MergeError::Ramp { index: i + 1 });
            }
            let got = load(&r.config);
            if got != want {
                let (a, b) = (want.as_object(), got.as_object());
                let mut fields: Vec<String> = a
                    .into_iter()
                    .chain(b)
                    .flat_map(|m| m.keys().cloned())
                    .filter(|k| want.get(k) != got.get(k))
                    .collect();
                fields.sort();
                fields.dedup();
                return Err(MergeError::DifferentLoad {
                    index: i + 1,
                    fields: fields.join(", "),
                });
            }
        }
        let interrupted = reports.iter().any(|r| r.interrupted);
        let mut reports = reports.into_iter();
        let first = reports.next().ok_or(MergeError::Empty)?;
        let (mut config, env) = (first.config, first.env);
        let mut runs = first.runs;
        for r in reports {
            runs.extend(r.runs);
        }
        for (i, r) in runs.iter_mut().enumerate() {
            r.run = i + 1;
        }
        config.plan.runs = runs.len();
        Ok(Report {
            median: median(&runs),
            spread: spread(&runs),
            complete: runs.iter().all(|r| r.complete),
            interrupted,
            steps: None,
            runs,
            config,
            env,
        })
    }
}

/// Runs the plan on this host alone: every step, every run.
pub fn run_local(plan: &Plan, progress: Progress) -> Result<Report> {
    run_local_until(plan, progress, &AtomicBool::new(false))
}

/// [`run_local`] that stops early when `stop` becomes true (e.g. on SIGINT):
/// the run under way is abandoned, not reported (its window was cut short and
/// its in-flight requests were given up), and the report holds the runs
/// completed so far with `interrupted: true`.
pub fn run_local_until(plan: &Plan, progress: Progress, stop: &AtomicBool) -> Result<Report> {
    plan.validate()?;
    let total = Duration::from_secs_f64(plan.warmup_s + plan.duration_s);
    let mut by_step = Vec::new();
    let mut interrupted = false;
    'steps: for clients in plan.client_steps() {
        let mut runs = Vec::new();
        for r in 1..=plan.runs {
            let live = Live::default();
            let label = format!("{clients}c run {r}/{}", plan.runs);
            let stats = progress.track(
                &label,
                Duration::from_secs_f64(plan.warmup_s),
                total,
                &live,
                || {
                    let window = Window::new(
                        Instant::now() + LOCAL_START_DELAY,
                        plan.warmup_s,
                        plan.duration_s,
                    );
                    run_window(plan, clients, window, &live, stop)
                },
            )?;
            if stop.load(Ordering::Relaxed) {
                interrupted = true;
                if !runs.is_empty() {
                    by_step.push((clients, runs));
                }
                break 'steps;
            }
            runs.push(stats.summarize(r, clients, plan.duration_s));
        }
        by_step.push((clients, runs));
    }
    if by_step.is_empty() {
        anyhow::bail!("interrupted before the first run completed: nothing to report");
    }
    let config = Config {
        mode: "run".into(),
        plan: plan.clone(),
        slaves: Vec::new(),
    };
    let mut report = Report::build(config, environment(), by_step);
    report.interrupted = interrupted;
    Ok(report)
}
