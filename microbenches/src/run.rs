//! Running one benchmark configuration of the command line and turning what it measured into
//! [`BenchResult`]s (the fixed JSON of docs/ARCHITECTURE.md). The binary parses [`RunOpts`] and prints
//! the results; everything between is here.
//!
//! `--runtime all` runs libasync, mely and tokio one after the other; a benchmark that has no
//! tokio version says so instead of running something else.

use crate::common::{Outcome, Setup};
use crate::env::{self, Env};
use crate::report::BenchResult;
use crate::synthetic::{self, Config as SynConfig};
use crate::unbalanced::{self, Costs};
use crate::{cache_efficient, dispatch, penalty, RuntimeArg};
use anyhow::{bail, Context, Result};
use colored_runtime::args::{RuntimeArgs, RuntimeChoice, TraceOutput};
use colored_runtime::{
    FidelityOptions, QueueKind, RuntimeStats, StealAmount, StealPolicy, TraceSpec,
};
use serde_json::json;
use std::sync::Arc;

/// The worker count when the command line gives none: one per CPU this process may use.
pub fn machine_workers() -> usize {
    colored_runtime::topology::allowed_cpus().len().max(1)
}

/// What every benchmark run is configured with (from [`RunArgs`], or built by
/// [`crate::paper_tables`]).
#[derive(Clone, Debug)]
pub struct RunOpts {
    /// Runtime: libasync, mely, tokio, or all three in one run.
    pub runtime: RuntimeArg,
    /// Stealing policy; libasync takes off or base.
    pub stealing: StealPolicy,
    /// What a time-left steal takes (the other policies ignore it).
    pub steal_amount: StealAmount,
    /// Worker threads, pinned one per CPU.
    pub workers: usize,
    /// Measured seconds per configuration.
    pub seconds: f64,
    /// What each worker records (`--trace`); `None`: off.
    pub trace: Option<TraceSpec>,
    /// The papers' options or ours (`--fidelity`, each of its four options overriding it).
    pub fidelity: FidelityOptions,
    /// Where the trace goes (created before the run).
    pub trace_out: Option<Arc<TraceOutput>>,
}

impl std::str::FromStr for RuntimeArg {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        <RuntimeArg as clap::ValueEnum>::from_str(s, false)
            .map_err(|_| format!("unknown runtime {s:?} (libasync, mely, tokio or all)"))
    }
}

impl std::fmt::Display for RuntimeArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(runtime_name(*self))
    }
}

impl RuntimeChoice for RuntimeArg {
    fn queues(&self) -> Vec<QueueKind> {
        match self {
            RuntimeArg::Libasync => vec![QueueKind::Libasync],
            RuntimeArg::Mely => vec![QueueKind::Mely],
            RuntimeArg::Tokio => vec![],
            RuntimeArg::All => vec![QueueKind::Libasync, QueueKind::Mely],
        }
    }
}

/// The command-line options of every benchmark run: the runtime's own options (with tokio
/// and `all` added to `--runtime`) and the run length.
#[derive(clap::Args, Clone, Debug)]
#[command(mut_arg("runtime", |a| a.help("Runtime: libasync, mely, tokio, or all three in one run")))]
#[command(mut_arg("no_pin", |a| a.hide(true)))]
pub struct RunArgs {
    /// The runtime options, declared once in the runtime crate.
    #[command(flatten)]
    pub rt: RuntimeArgs<RuntimeArg>,
    /// Measured seconds per configuration.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
}

impl RunArgs {
    /// The run these options describe, checked by the runtime's own rules (e.g. libasync
    /// takes only `--stealing off` or `base`) before anything runs. Every error is a usage
    /// error.
    pub fn opts(&self) -> Result<RunOpts> {
        let usage = |m: String| edge::cli::usage(m);
        self.rt.check().map_err(|e| usage(e.to_string()))?;
        if self.rt.no_pin || self.rt.search_us.is_some() {
            return Err(usage(
                "--no-pin and --search-us are server options: the benchmarks always pin \
                 their workers and use the runtime's search time"
                    .into(),
            ));
        }
        if !(self.seconds > 0.0 && self.seconds.is_finite()) {
            return Err(usage("--seconds must be a positive number".into()));
        }
        let trace = self.rt.trace_spec().map_err(|e| usage(e.to_string()))?;
        if trace.is_some() && !matches!(self.rt.runtime, RuntimeArg::Libasync | RuntimeArg::Mely) {
            return Err(usage(
                "--trace records one run of the colored runtime: pass --runtime libasync or mely"
                    .into(),
            ));
        }
        let trace_out = self.rt.trace_output()?.map(Arc::new);
        Ok(RunOpts {
            runtime: self.rt.runtime,
            stealing: self.rt.stealing,
            steal_amount: self.rt.steal_amount,
            workers: self.rt.workers,
            seconds: self.seconds,
            trace,
            fidelity: self.rt.fidelity_options(),
            trace_out,
        })
    }
}

impl RunOpts {
    /// The runtimes `--runtime` names, in the order they run.
    pub fn runtimes(&self) -> Vec<RuntimeArg> {
        match self.runtime {
            RuntimeArg::All => vec![RuntimeArg::Libasync, RuntimeArg::Mely, RuntimeArg::Tokio],
            r => vec![r],
        }
    }

    /// The colored runtime setup for `rt` (tokio's runs use only the worker count).
    pub fn setup(&self, rt: RuntimeArg) -> Setup {
        Setup {
            queue: queue_of(rt),
            stealing: self.stealing,
            steal_amount: self.steal_amount,
            workers: self.workers,
            trace: self.trace,
            fidelity: self.fidelity,
        }
    }

    /// Write the trace of a run of `bench` where `--trace` says (nothing without `--trace`).
    pub fn write_trace(&self, bench: &str, trace: Option<colored_trace::Trace>) -> Result<()> {
        let (Some(out), Some(mut trace)) = (&self.trace_out, trace) else {
            return Ok(());
        };
        trace
            .meta
            .configuration
            .insert(0, ("benchmark".to_string(), bench.to_string()));
        trace
            .meta
            .configuration
            .push(("seconds".to_string(), self.seconds.to_string()));
        out.write(&trace)
            .with_context(|| format!("writing the trace of {bench}"))
    }
}

fn queue_of(r: RuntimeArg) -> QueueKind {
    match r {
        RuntimeArg::Libasync => QueueKind::Libasync,
        _ => QueueKind::Mely,
    }
}

fn runtime_name(r: RuntimeArg) -> &'static str {
    match r {
        RuntimeArg::Libasync => "libasync",
        RuntimeArg::Mely => "mely",
        RuntimeArg::Tokio => "tokio",
        RuntimeArg::All => "all",
    }
}

/// What one benchmark run measured: events run, seconds, the runtime's counters (tokio: none).
struct Ran<'a> {
    events: u64,
    secs: f64,
    stats: Option<&'a RuntimeStats>,
}

/// The fixed fields of a result; the benchmark adds its extras.
fn base_result(
    bench: &str,
    runtime: RuntimeArg,
    o: &RunOpts,
    ran: Ran<'_>,
    env: &Env,
) -> BenchResult {
    let Ran {
        events,
        secs,
        stats,
    } = ran;
    BenchResult {
        bench: bench.into(),
        runtime: runtime_name(runtime).into(),
        stealing: if runtime == RuntimeArg::Tokio {
            "tokio".into()
        } else {
            o.stealing.to_string()
        },
        steal_amount: (runtime != RuntimeArg::Tokio && o.stealing.time_left())
            .then(|| o.steal_amount.to_string()),
        workers: o.workers,
        seconds: secs,
        events,
        kevents_per_sec: events as f64 / secs / 1e3,
        steals: stats.map_or(0, |s| s.total.steals),
        steal_attempts: stats.map_or(0, |s| s.total.steal_attempts),
        stolen_colors: Some(stats.map_or(0, |s| s.total.stolen_colors)),
        steal_cost_cycles: stats
            .filter(|s| s.total.steals > 0)
            .map(|s| s.steal_cost_cycles_avg),
        stolen_time_cycles: stats
            .filter(|s| s.total.steals > 0)
            .map(|s| s.stolen_time_cycles_avg),
        locking_time_pct: stats.map(|s| s.locking_time_pct),
        l2_misses_per_event: None,
        fidelity: (runtime != RuntimeArg::Tokio).then(|| o.fidelity.name().into()),
        steal_nodes_visited: stats
            .filter(|s| s.total.steals > 0)
            .map(|s| s.steal_nodes_avg),
        extra: Default::default(),
        env: Some(env.clone()),
    }
}

/// A fork/join benchmark's result: rounds, cache misses and the time-left threshold.
fn outcome_result(
    bench: &str,
    rt: RuntimeArg,
    o: &RunOpts,
    out: &Outcome,
    env: &Env,
) -> BenchResult {
    let ran = Ran {
        events: out.events,
        secs: out.elapsed.as_secs_f64(),
        stats: out.stats.as_ref(),
    };
    let mut r = base_result(bench, rt, o, ran, env);
    r.l2_misses_per_event = out.llc_misses_per_event;
    r.extra.insert("rounds".into(), json!(out.rounds));
    r.extra.extend(out.extra.clone());
    if let Some(s) = &out.stats {
        r.extra.insert(
            "steal_threshold_cycles".into(),
            json!(s.steal_cost_estimate_cycles),
        );
    }
    r
}

/// `dispatch`: ns per posted and run event on every runtime asked for, and how many times
/// cheaper than tokio each is when tokio ran too.
pub fn dispatch(o: &RunOpts, colors: u64) -> Result<Vec<BenchResult>> {
    if colors == 0 {
        bail!("--colors must be at least 1");
    }
    let env = env::detect();
    let mut out = Vec::new();
    for rt in o.runtimes() {
        let mut d = match rt {
            RuntimeArg::Tokio => dispatch::run_tokio(o.workers, o.seconds)?,
            _ => dispatch::run_colored(&o.setup(rt), o.seconds, colors)
                .with_context(|| format!("dispatch on {rt:?}"))?,
        };
        o.write_trace("dispatch", d.trace.take())?;
        let ran = Ran {
            events: d.events,
            secs: d.elapsed.as_secs_f64(),
            stats: d.stats.as_ref(),
        };
        let mut r = base_result("dispatch", rt, o, ran, &env);
        let (mode, tokio_flavor) = if o.workers == 1 {
            ("local", "current-thread")
        } else {
            ("cross", "multi-thread")
        };
        r.extra.insert("mode".into(), json!(mode));
        r.extra.insert("colors".into(), json!(colors));
        r.extra.insert(
            "ns_per_event".into(),
            json!((d.ns_per_event() * 10.0).round() / 10.0),
        );
        if rt == RuntimeArg::Tokio {
            r.extra.insert("tokio_runtime".into(), json!(tokio_flavor));
        }
        out.push(r);
    }
    add_floor_ratio(&mut out, dispatch::run_floor(o.seconds).ns_per_event());
    add_tokio_ratio(&mut out);
    Ok(out)
}

/// `floor_ns_per_event` and `x_floor` on every result: the floor is measured in the same run
/// (one thread, the same events as boxed closures in a VecDeque).
fn add_floor_ratio(out: &mut [BenchResult], floor: f64) {
    for r in out.iter_mut() {
        let ns = r.extra["ns_per_event"].as_f64().unwrap_or(0.0);
        r.extra.insert(
            "floor_ns_per_event".into(),
            json!((floor * 10.0).round() / 10.0),
        );
        r.extra.insert(
            "x_floor".into(),
            json!(((ns / floor) * 100.0).round() / 100.0),
        );
    }
}

/// `x_cheaper_than_tokio` on every result, when tokio is among them.
fn add_tokio_ratio(out: &mut [BenchResult]) {
    let ns = |r: &BenchResult| r.extra["ns_per_event"].as_f64().unwrap_or(0.0);
    let Some(t) = out.iter().find(|r| r.runtime == "tokio").map(ns) else {
        return;
    };
    if out.len() < 2 {
        return;
    }
    for r in out.iter_mut() {
        let x = ((t / ns(r)) * 100.0).round() / 100.0;
        r.extra.insert("x_cheaper_than_tokio".into(), json!(x));
    }
}

/// `unbalanced` on every runtime asked for; `costs` says where time-left stealing gets the
/// handlers' costs.
pub fn unbalanced(o: &RunOpts, costs: Costs) -> Result<Vec<BenchResult>> {
    let env = env::detect();
    let p = unbalanced::Params::default();
    let mut out = Vec::new();
    for rt in o.runtimes() {
        let mut u = match rt {
            RuntimeArg::Tokio => unbalanced::run_tokio(o.workers, o.seconds, &p)?,
            _ => unbalanced::run_colored(&o.setup(rt), o.seconds, costs, &p)?,
        };
        o.write_trace("unbalanced", u.trace.take())?;
        let mut r = outcome_result("unbalanced", rt, o, &u, &env);
        let costs = match (rt, costs) {
            (RuntimeArg::Tokio, _) => "n/a",
            (_, Costs::Annotated) => "annotated",
            (_, Costs::Profiled) => "profiled",
        };
        r.extra.insert("costs".into(), json!(costs));
        out.push(r);
    }
    Ok(out)
}

/// The fork/join benchmarks that run on the colored runtime only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForkJoin {
    Penalty,
    CacheEfficient,
}

impl ForkJoin {
    pub fn name(self) -> &'static str {
        match self {
            ForkJoin::Penalty => "penalty",
            ForkJoin::CacheEfficient => "cache-efficient",
        }
    }
}

/// `penalty` or `cache-efficient` on every runtime asked for (tokio is refused).
pub fn fork_join(bench: ForkJoin, o: &RunOpts) -> Result<Vec<BenchResult>> {
    let env = env::detect();
    let mut out = Vec::new();
    for rt in o.runtimes() {
        if rt == RuntimeArg::Tokio {
            bail!(
                "{} runs on libasync or mely (tokio is the peer for dispatch and unbalanced)",
                bench.name()
            );
        }
        let setup = o.setup(rt);
        let mut f = match bench {
            ForkJoin::Penalty => {
                penalty::run(&setup, o.seconds, &penalty::Params::for_workers(o.workers))?
            }
            ForkJoin::CacheEfficient => {
                let p = cache_efficient::Params::for_workers(o.workers);
                cache_efficient::run(&setup, o.seconds, &p)?
            }
        };
        o.write_trace(bench.name(), f.trace.take())?;
        out.push(outcome_result(bench.name(), rt, o, &f, &env));
    }
    Ok(out)
}

/// Why `synthetic --trace` is refused.
pub const SYNTHETIC_NO_TRACE: &str =
    "synthetic builds its own runtimes: --trace is for dispatch, unbalanced, penalty and cache-efficient";

/// `synthetic`: the given library configuration, or all four (the runtime and stealing of
/// `o` are not used: each configuration fixes them).
pub fn synthetic(o: &RunOpts, config: Option<SynConfig>) -> Result<Vec<BenchResult>> {
    if o.trace.is_some() {
        bail!(SYNTHETIC_NO_TRACE);
    }
    let env = env::detect();
    let configs = config.map_or_else(|| SynConfig::ALL.to_vec(), |c| vec![c]);
    let mut out = Vec::new();
    for c in configs {
        let s = synthetic::run(
            c,
            o.workers,
            o.seconds,
            &synthetic::Params::default(),
            o.fidelity,
        )?;
        let opts = RunOpts {
            runtime: RuntimeArg::Libasync,
            // The shared-queue base is not this runtime: none of its options apply.
            fidelity: if c == SynConfig::Base {
                FidelityOptions::default()
            } else {
                o.fidelity
            },
            stealing: if c == SynConfig::Stealing {
                StealPolicy::Base
            } else {
                StealPolicy::Off
            },
            ..o.clone()
        };
        let ran = Ran {
            events: s.events,
            secs: s.elapsed.as_secs_f64(),
            stats: s.stats.as_ref(),
        };
        let mut r = base_result("synthetic", RuntimeArg::Libasync, &opts, ran, &env);
        r.extra.insert("config".into(), json!(c.label()));
        out.push(r);
    }
    Ok(out)
}
