//! `microbenches`: the unbalanced, penalty, cache-efficient, synthetic and dispatch benchmarks.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use colored_runtime::{QueueKind, StealPolicy};
use microbenches::common::Outcome;
use microbenches::report::{self, BenchResult, Format};
use microbenches::synthetic::{self, Config as SynConfig};
use microbenches::unbalanced::{self, Costs};
use microbenches::{cache_efficient, penalty, tables};
use microbenches::{dispatch, env, env::Env, RuntimeArg};
use serde_json::json;

#[derive(Parser)]
#[command(
    name = "microbenches",
    version,
    about = "Microbenchmarks of the colored runtime (libasync-smp and Mely designs) beside tokio"
)]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Cost of post + run of one empty event: on one worker (--workers 1) or posted on worker 0
    /// and run on worker 1 (--workers 2); tokio spawn for comparison.
    Dispatch {
        #[command(flatten)]
        common: Common,
        /// Colors the events rotate over (64: mostly one event per color-queue; 1: batches).
        #[arg(long, default_value_t = 64)]
        colors: u64,
    },
    /// Mely's `unbalanced` (Tables III-IV): fork/join rounds of 50 000 events posted on core 0,
    /// 98% of 100 cycles and 2% of 10-50 Kcycles. tokio runs the same fork/join for comparison.
    Unbalanced {
        #[command(flatten)]
        common: Common,
        /// Where time-left stealing gets handler costs: annotations or automatic profiling.
        #[arg(long, value_enum, default_value = "annotated")]
        costs: Costs,
    },
    /// Mely's `penalty` (Table V): A events of distinct colors on core 0 allocate cache-sized
    /// arrays walked by chains of B events of penalty 1000.
    Penalty(Common),
    /// Mely's `cache-efficient` (Table VI): per pair of cores, 100 A events each posting two
    /// sorting B events and merging C events.
    CacheEfficient(Common),
    /// libasync-smp's library-optimisation table: shared queue, per-thread queues, per-thread
    /// free lists, stealing (all four unless --config is given; --runtime/--stealing ignored).
    Synthetic {
        #[command(flatten)]
        common: Common,
        #[arg(long, value_enum)]
        config: Option<SynConfig>,
    },
    /// Start a runtime (reactor and a timer running, stealing on), leave it idle, and report
    /// the process's CPU time over the idle interval: an idle runtime must not spin.
    IdleCpu {
        #[arg(long, default_value = "mely")]
        runtime: colored_runtime::QueueKind,
        #[arg(long, default_value_t = 2)]
        workers: usize,
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
    /// Run every configuration of Tables III-VI and the synthetic table and print each beside
    /// the paper's figures (Markdown).
    PaperTables {
        /// Worker threads.
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Measured seconds per configuration and repetition.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Repetitions per configuration (median and min-max are reported).
        #[arg(long, default_value_t = 1)]
        repeat: usize,
        /// Write every raw result as JSON here.
        #[arg(long)]
        json_out: Option<std::path::PathBuf>,
        /// Write the Markdown tables here too.
        #[arg(long)]
        markdown_out: Option<std::path::PathBuf>,
    },
    /// The simulator: the real queues and policies on virtual cores (`simulate --help`).
    Simulate(microbenches::sim::cli::SimulateArgs),
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

/// What one benchmark run measured: events run, seconds, the runtime's counters (tokio: none).
struct Ran<'a> {
    events: u64,
    secs: f64,
    stats: Option<&'a colored_runtime::RuntimeStats>,
}

fn base_result(
    bench: &str,
    runtime: RuntimeArg,
    stealing: StealPolicy,
    workers: usize,
    ran: Ran<'_>,
    env: &Env,
) -> BenchResult {
    let Ran {
        events,
        secs,
        stats,
    } = ran;
    let runtime_name = match runtime {
        RuntimeArg::Libasync => "libasync",
        RuntimeArg::Mely => "mely",
        RuntimeArg::Tokio => "tokio",
        RuntimeArg::All => "all",
    };
    BenchResult {
        bench: bench.into(),
        runtime: runtime_name.into(),
        stealing: if runtime == RuntimeArg::Tokio {
            "tokio".into()
        } else {
            stealing.to_string()
        },
        workers,
        seconds: secs,
        events,
        kevents_per_sec: events as f64 / secs / 1e3,
        steals: stats.map_or(0, |s| s.total.steals),
        steal_attempts: stats.map_or(0, |s| s.total.steal_attempts),
        stolen_colors: stats.map_or(0, |s| s.total.stolen_colors),
        steal_cost_cycles: stats
            .filter(|s| s.total.steals > 0)
            .map(|s| s.steal_cost_cycles_avg),
        stolen_time_cycles: stats
            .filter(|s| s.total.steals > 0)
            .map(|s| s.stolen_time_cycles_avg),
        locking_time_pct: stats.map(|s| s.locking_time_pct),
        l2_misses_per_event: None,
        extra: Default::default(),
        env: env.clone(),
    }
}

fn run_dispatch(a: &Common, colors: u64) -> Result<Vec<BenchResult>> {
    let env = env::detect();
    let mut out = Vec::new();
    for rt in a.runtimes() {
        if rt == RuntimeArg::Libasync && !matches!(a.stealing, StealPolicy::Off | StealPolicy::Base)
        {
            bail!("libasync supports only --stealing off or base");
        }
        let o = match rt {
            RuntimeArg::Tokio => dispatch::run_tokio(a.workers, a.seconds)?,
            _ => dispatch::run_colored(queue_of(rt), a.stealing, a.workers, a.seconds, colors)
                .with_context(|| format!("dispatch on {rt:?}"))?,
        };
        let secs = o.elapsed.as_secs_f64();
        let mut r = base_result(
            "dispatch",
            rt,
            a.stealing,
            a.workers,
            Ran {
                events: o.events,
                secs,
                stats: o.stats.as_ref(),
            },
            &env,
        );
        let mode = if a.workers == 1 { "local" } else { "cross" };
        let tokio_flavor = if a.workers == 1 {
            "current-thread"
        } else {
            "multi-thread"
        };
        r.extra.insert("mode".into(), json!(mode));
        r.extra.insert("colors".into(), json!(colors));
        r.extra.insert(
            "ns_per_event".into(),
            json!((o.ns_per_event() * 10.0).round() / 10.0),
        );
        if rt == RuntimeArg::Tokio {
            r.extra.insert("tokio_runtime".into(), json!(tokio_flavor));
        }
        out.push(r);
    }
    // The floor, in the same run: one thread, boxed closures in a VecDeque.
    let floor = dispatch::run_floor(a.seconds).ns_per_event();
    for r in &mut out {
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
    if out.len() > 1 {
        if let Some(t) = out
            .iter()
            .find(|r| r.runtime == "tokio")
            .map(|r| r.extra["ns_per_event"].as_f64().unwrap_or(0.0))
        {
            for r in &mut out {
                let ns = r.extra["ns_per_event"].as_f64().unwrap_or(0.0);
                r.extra.insert(
                    "x_cheaper_than_tokio".into(),
                    json!(((t / ns) * 100.0).round() / 100.0),
                );
            }
        }
    }
    Ok(out)
}

fn outcome_result(bench: &str, rt: RuntimeArg, a: &Common, o: &Outcome, env: &Env) -> BenchResult {
    let mut r = base_result(
        bench,
        rt,
        a.stealing,
        a.workers,
        Ran {
            events: o.events,
            secs: o.elapsed.as_secs_f64(),
            stats: o.stats.as_ref(),
        },
        env,
    );
    r.l2_misses_per_event = o.llc_misses_per_event;
    r.extra.insert("rounds".into(), json!(o.rounds));
    if let Some(s) = &o.stats {
        r.extra.insert(
            "steal_threshold_cycles".into(),
            json!(s.steal_cost_estimate_cycles),
        );
    }
    r
}

fn check_policy(rt: RuntimeArg, p: StealPolicy) -> Result<()> {
    if rt == RuntimeArg::Libasync && !matches!(p, StealPolicy::Off | StealPolicy::Base) {
        bail!("libasync supports only --stealing off or base (got {p})");
    }
    Ok(())
}

fn run_unbalanced(a: &Common, costs: Costs) -> Result<Vec<BenchResult>> {
    let env = env::detect();
    let p = unbalanced::Params::default();
    let mut out = Vec::new();
    for rt in a.runtimes() {
        check_policy(rt, a.stealing)?;
        let o = match rt {
            RuntimeArg::Tokio => unbalanced::run_tokio(a.workers, a.seconds, &p)?,
            _ => {
                unbalanced::run_colored(queue_of(rt), a.stealing, a.workers, a.seconds, costs, &p)?
            }
        };
        let mut r = outcome_result("unbalanced", rt, a, &o, &env);
        r.extra.insert(
            "costs".into(),
            json!(if rt == RuntimeArg::Tokio {
                "n/a"
            } else if costs == Costs::Annotated {
                "annotated"
            } else {
                "profiled"
            }),
        );
        out.push(r);
    }
    Ok(out)
}

fn run_fork_join(bench: &str, a: &Common) -> Result<Vec<BenchResult>> {
    let env = env::detect();
    let mut out = Vec::new();
    for rt in a.runtimes() {
        if rt == RuntimeArg::Tokio {
            bail!(
                "{bench} runs on libasync or mely (tokio is the peer for dispatch and unbalanced)"
            );
        }
        check_policy(rt, a.stealing)?;
        let o = match bench {
            "penalty" => penalty::run(
                queue_of(rt),
                a.stealing,
                a.workers,
                a.seconds,
                &penalty::Params::default(),
            )?,
            _ => cache_efficient::run(
                queue_of(rt),
                a.stealing,
                a.workers,
                a.seconds,
                &cache_efficient::Params::default(),
            )?,
        };
        out.push(outcome_result(bench, rt, a, &o, &env));
    }
    Ok(out)
}

fn run_synthetic(a: &Common, config: Option<SynConfig>) -> Result<Vec<BenchResult>> {
    let env = env::detect();
    let configs = config
        .map(|c| vec![c])
        .unwrap_or_else(|| SynConfig::ALL.to_vec());
    let mut out = Vec::new();
    for c in configs {
        let o = synthetic::run(c, a.workers, a.seconds, &synthetic::Params::default())?;
        let stealing = if c == SynConfig::Stealing {
            StealPolicy::Base
        } else {
            StealPolicy::Off
        };
        let mut r = base_result(
            "synthetic",
            RuntimeArg::Libasync,
            stealing,
            a.workers,
            Ran {
                events: o.events,
                secs: o.elapsed.as_secs_f64(),
                stats: o.stats.as_ref(),
            },
            &env,
        );
        r.extra.insert("config".into(), json!(c.label()));
        out.push(r);
    }
    Ok(out)
}

/// Median and spread of one configuration over repetitions.
fn measure(results: &[BenchResult], metric: &str) -> tables::Measured {
    let mut k: Vec<f64> = results.iter().map(|r| r.kevents_per_sec).collect();
    k.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = k[k.len() / 2];
    let mid = results
        .iter()
        .min_by(|a, b| {
            (a.kevents_per_sec - median)
                .abs()
                .partial_cmp(&(b.kevents_per_sec - median).abs())
                .unwrap()
        })
        .unwrap();
    let m = match metric {
        "WS cost (cycles)" => mid.steal_cost_cycles,
        "locking time %" => mid.locking_time_pct,
        "stolen time (cycles)" => mid.stolen_time_cycles,
        "L2 misses/event" => mid.l2_misses_per_event,
        _ => None,
    };
    tables::Measured {
        kevents: median,
        kevents_spread: (k[0], k[k.len() - 1]),
        metric: m,
    }
}

fn run_paper_tables(
    workers: usize,
    seconds: f64,
    repeat: usize,
    json_out: Option<&std::path::Path>,
    md_out: Option<&std::path::Path>,
) -> Result<()> {
    let env = env::detect();
    let mut raw: Vec<BenchResult> = Vec::new();
    let mut cache: std::collections::HashMap<(String, String, String), Vec<BenchResult>> =
        Default::default();
    let mut md = String::new();
    md.push_str(&format!(
        "Measured on: {}; {} workers, {} s x {} per configuration. \
         Ratios are to each table's first row.\n\n",
        env.summary(),
        workers,
        seconds,
        repeat
    ));
    for t in tables::specs() {
        let mut measured = Vec::new();
        for r in &t.rows {
            let key = (
                t.bench.to_string(),
                r.runtime.to_string(),
                r.stealing.to_string(),
            );
            if !cache.contains_key(&key) {
                let mut runs = Vec::new();
                for _ in 0..repeat.max(1) {
                    let common = Common {
                        runtime: match r.runtime {
                            "libasync" => RuntimeArg::Libasync,
                            "tokio" => RuntimeArg::Tokio,
                            _ => RuntimeArg::Mely,
                        },
                        stealing: r
                            .stealing
                            .trim_end_matches("-profiled")
                            .parse()
                            .unwrap_or(StealPolicy::Off),
                        workers,
                        seconds,
                        format: Format::Table,
                        json_out: None,
                    };
                    eprintln!(">> {} {} {}", t.bench, r.runtime, r.stealing);
                    let mut res = match t.bench {
                        "unbalanced" => {
                            let costs = if r.stealing.ends_with("-profiled") {
                                Costs::Profiled
                            } else {
                                Costs::Annotated
                            };
                            run_unbalanced(&common, costs)?
                        }
                        "synthetic" => {
                            let c = match r.stealing {
                                "base-config" => SynConfig::Base,
                                "per-thread-queues" => SynConfig::PerThreadQueues,
                                "free-lists" => SynConfig::FreeLists,
                                _ => SynConfig::Stealing,
                            };
                            run_synthetic(&common, Some(c))?
                        }
                        b => run_fork_join(b, &common)?,
                    };
                    runs.append(&mut res);
                }
                raw.extend(runs.iter().cloned());
                cache.insert(key.clone(), runs);
            }
            measured.push(Some(measure(&cache[&key], t.metric)));
        }
        let table = tables::render(&t, &measured);
        println!("{table}");
        md.push_str(&table);
        md.push('\n');
    }
    if !microbenches::perf::LlcCounter::available() {
        let note = "L2 misses: this machine exposes no hardware cache counters (perf_event_open failed), so they are n/a.\n";
        println!("{note}");
        md.push_str(note);
    }
    if let Some(p) = json_out {
        std::fs::write(p, serde_json::to_string_pretty(&raw)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(p) = md_out {
        std::fs::write(p, md).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

fn cpu_time() -> std::time::Duration {
    edge::rusage::cpu_time(edge::rusage::Who::Process)
}

fn run_idle_cpu(queue: colored_runtime::QueueKind, workers: usize, seconds: f64) -> Result<()> {
    let stealing = if queue == colored_runtime::QueueKind::Libasync {
        StealPolicy::Base
    } else {
        StealPolicy::All
    };
    let rt = colored_runtime::Runtime::new(colored_runtime::RuntimeConfig {
        workers,
        queue,
        stealing,
        ..Default::default()
    })?;
    let h = rt.register(colored_runtime::HandlerSpec::new("tick"));
    // Start the reactor with a timer far in the future, then let everything go idle.
    rt.handle().post_after(
        std::time::Duration::from_secs(3600),
        colored_runtime::Color(1),
        h,
        |_| {},
    )?;
    std::thread::sleep(std::time::Duration::from_millis(200));
    let before = cpu_time();
    std::thread::sleep(std::time::Duration::from_secs_f64(seconds));
    let used = cpu_time() - before;
    println!(
        "idle {queue} runtime, {workers} workers, stealing {stealing}: {:.1} ms of CPU in {seconds} s ({:.3}% of one core)",
        used.as_secs_f64() * 1e3,
        100.0 * used.as_secs_f64() / seconds
    );
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Bench::Simulate(a) = &cli.bench {
        return microbenches::sim::cli::run(a);
    }
    if let Bench::IdleCpu {
        runtime,
        workers,
        seconds,
    } = &cli.bench
    {
        return run_idle_cpu(*runtime, *workers, *seconds);
    }
    if let Bench::PaperTables {
        workers,
        seconds,
        repeat,
        json_out,
        markdown_out,
    } = &cli.bench
    {
        if *workers == 0 || seconds.is_nan() || *seconds <= 0.0 {
            bail!("--workers must be >= 1 and --seconds > 0");
        }
        return run_paper_tables(
            *workers,
            *seconds,
            *repeat,
            json_out.as_deref(),
            markdown_out.as_deref(),
        );
    }
    let (results, common) = match &cli.bench {
        Bench::Dispatch { common, colors } => {
            common.validate()?;
            if *colors == 0 {
                bail!("--colors must be at least 1");
            }
            (run_dispatch(common, *colors)?, common)
        }
        Bench::Unbalanced { common, costs } => {
            common.validate()?;
            (run_unbalanced(common, *costs)?, common)
        }
        Bench::Penalty(a) => {
            a.validate()?;
            (run_fork_join("penalty", a)?, a)
        }
        Bench::CacheEfficient(a) => {
            a.validate()?;
            (run_fork_join("cache-efficient", a)?, a)
        }
        Bench::Synthetic { common, config } => {
            common.validate()?;
            (run_synthetic(common, *config)?, common)
        }
        Bench::PaperTables { .. } | Bench::IdleCpu { .. } | Bench::Simulate(_) => {
            unreachable!("handled above")
        }
    };
    report::print(&results, common.format);
    if let Some(path) = &common.json_out {
        std::fs::write(path, serde_json::to_string_pretty(&results)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
