//! `microbenches`: the unbalanced, penalty, cache-efficient, synthetic and dispatch benchmarks.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use colored_runtime::{QueueKind, StealPolicy};
use microbenches::report::{self, BenchResult, Format};
use microbenches::{dispatch, env::Env, RuntimeArg};
use serde_json::json;

#[derive(Parser)]
#[command(name = "microbenches", version, about = "Microbenchmarks of the colored runtime (libasync-smp and Mely designs) beside tokio")]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Cost of post + run of one empty event: on one worker (--workers 1) or posted on worker 0
    /// and run on worker 1 (--workers 2); tokio spawn for comparison.
    Dispatch(Common),
}

#[derive(Args, Clone)]
struct Common {
    /// Runtime: libasync, mely, tokio, or all three in one run.
    #[arg(long, value_enum, default_value = "mely")]
    runtime: RuntimeArg,
    /// Stealing policy (off, base, time-left, penalty, locality, all); libasync takes off or base.
    #[arg(long, default_value = "off")]
    stealing: StealPolicy,
    /// Worker threads (one per core).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Measured seconds per configuration.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json_out: Option<std::path::PathBuf>,
}

impl Common {
    fn validate(&self) -> Result<()> {
        if self.workers == 0 {
            bail!("--workers must be at least 1");
        }
        if !(self.seconds > 0.0 && self.seconds.is_finite()) {
            bail!("--seconds must be a positive number");
        }
        Ok(())
    }
    fn runtimes(&self) -> Vec<RuntimeArg> {
        match self.runtime {
            RuntimeArg::All => vec![RuntimeArg::Libasync, RuntimeArg::Mely, RuntimeArg::Tokio],
            r => vec![r],
        }
    }
}

fn queue_of(r: RuntimeArg) -> QueueKind {
    match r {
        RuntimeArg::Libasync => QueueKind::Libasync,
        _ => QueueKind::Mely,
    }
}

fn base_result(bench: &str, runtime: RuntimeArg, stealing: StealPolicy, workers: usize, events: u64, secs: f64, stats: Option<&colored_runtime::RuntimeStats>, env: &Env) -> BenchResult {
    let runtime_name = match runtime {
        RuntimeArg::Libasync => "libasync",
        RuntimeArg::Mely => "mely",
        RuntimeArg::Tokio => "tokio",
        RuntimeArg::All => "all",
    };
    BenchResult {
        bench: bench.into(),
        runtime: runtime_name.into(),
        stealing: if runtime == RuntimeArg::Tokio { "tokio".into() } else { stealing.to_string() },
        workers,
        seconds: secs,
        events,
        kevents_per_sec: events as f64 / secs / 1e3,
        steals: stats.map_or(0, |s| s.total.steals),
        steal_attempts: stats.map_or(0, |s| s.total.steal_attempts),
        steal_cost_cycles: stats.filter(|s| s.total.steals > 0).map(|s| s.steal_cost_cycles_avg),
        stolen_time_cycles: stats.filter(|s| s.total.steals > 0).map(|s| s.stolen_time_cycles_avg),
        locking_time_pct: stats.map(|s| s.locking_time_pct),
        l2_misses_per_event: None,
        extra: Default::default(),
        env: env.clone(),
    }
}

fn run_dispatch(a: &Common) -> Result<Vec<BenchResult>> {
    let env = Env::detect();
    let mut out = Vec::new();
    for rt in a.runtimes() {
        if rt == RuntimeArg::Libasync && !matches!(a.stealing, StealPolicy::Off | StealPolicy::Base) {
            bail!("libasync supports only --stealing off or base");
        }
        let o = match rt {
            RuntimeArg::Tokio => dispatch::run_tokio(a.workers, a.seconds)?,
            _ => dispatch::run_colored(queue_of(rt), a.stealing, a.workers, a.seconds)
                .with_context(|| format!("dispatch on {rt:?}"))?,
        };
        let secs = o.elapsed.as_secs_f64();
        let mut r = base_result("dispatch", rt, a.stealing, a.workers, o.events, secs, o.stats.as_ref(), &env);
        let mode = if a.workers == 1 { "local" } else { "cross" };
        let tokio_flavor = if a.workers == 1 { "current-thread" } else { "multi-thread" };
        r.extra.insert("mode".into(), json!(mode));
        r.extra.insert("ns_per_event".into(), json!((o.ns_per_event() * 10.0).round() / 10.0));
        if rt == RuntimeArg::Tokio {
            r.extra.insert("tokio_runtime".into(), json!(tokio_flavor));
        }
        out.push(r);
    }
    if out.len() > 1 {
        if let Some(t) = out.iter().find(|r| r.runtime == "tokio").map(|r| r.extra["ns_per_event"].as_f64().unwrap_or(0.0)) {
            for r in &mut out {
                let ns = r.extra["ns_per_event"].as_f64().unwrap_or(0.0);
                r.extra.insert("x_cheaper_than_tokio".into(), json!(((t / ns) * 100.0).round() / 100.0));
            }
        }
    }
    Ok(out)
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let (results, common) = match &cli.bench {
        Bench::Dispatch(a) => {
            a.validate()?;
            (run_dispatch(a)?, a)
        }
    };
    report::print(&results, common.format);
    if let Some(path) = &common.json_out {
        std::fs::write(path, serde_json::to_string_pretty(&results)?).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
