//! `microbenches`: the unbalanced, penalty, cache-efficient, synthetic and dispatch benchmarks.
//! A thin command line: each subcommand parses its options, calls the library
//! ([`microbenches::run`], [`microbenches::paper_tables`], [`microbenches::idle`]) and prints.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use microbenches::report::{self, BenchResult, Format};
use microbenches::run::{self, ForkJoin, RunArgs, RunOpts};
use microbenches::synthetic::Config as SynConfig;
use microbenches::unbalanced::Costs;
use microbenches::{idle, paper_tables};
use std::path::PathBuf;

const PROGRAM: &str = "microbenches";

const EXAMPLES: &str = "\
EXAMPLES:
  # Mely's unbalanced benchmark with time-left stealing, 2 workers, 3 s, as a table:
  microbenches unbalanced --runtime mely --stealing time-left --workers 2 --seconds 3

  # libasync-smp's stealing as the papers ran it (spinning thieves, test-and-set locks,
  # a lock per post, the list walk from the head), with nodes visited per steal in the JSON:
  microbenches unbalanced --runtime libasync --stealing base --workers 2 --fidelity paper --format json

  # Dispatch cost on libasync, mely and tokio in one run, results also as JSON:
  microbenches dispatch --runtime all --workers 1 --seconds 1 --output dispatch.json

  # Every table of the papers beside ours (Markdown), 2 repetitions:
  microbenches paper-tables --seconds 1 --runs 2";

#[derive(Parser)]
#[command(
    name = "microbenches",
    version,
    about = "Microbenchmarks of the colored runtime (libasync-smp and Mely designs) beside tokio",
    after_help = EXAMPLES
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
        /// One configuration of the table only (default: all four).
        #[arg(long, value_enum)]
        config: Option<SynConfig>,
    },
    /// Start a runtime (reactor and a timer running, stealing on), leave it idle, and report
    /// the process's CPU time over the idle interval: an idle runtime must not spin.
    IdleCpu {
        /// Queue design of the idle runtime.
        #[arg(long, default_value = "mely")]
        runtime: colored_runtime::QueueKind,
        /// Worker threads (default: the CPUs this process may use).
        #[arg(long, default_value_t = run::machine_workers())]
        workers: usize,
        /// Idle seconds measured.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
    /// Run every configuration of Tables III-VI and the synthetic table and print each beside
    /// the paper's figures (Markdown).
    PaperTables {
        /// Worker threads (default: the CPUs this process may use).
        #[arg(long, default_value_t = run::machine_workers())]
        workers: usize,
        /// Measured seconds per configuration and repetition.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Repetitions per configuration (median and min-max are reported).
        #[arg(long = "runs", alias = "repeat", default_value_t = 1)]
        repeat: usize,
        /// Write every raw result as JSON here (checked before the run).
        #[arg(long = "output", alias = "json-out", value_name = "FILE")]
        json_out: Option<PathBuf>,
        /// Write the Markdown tables here too (checked before the run).
        #[arg(long, value_name = "FILE")]
        markdown_out: Option<PathBuf>,
        /// ours (default): every row with this runtime's mechanisms; paper: only the rows named
        /// as the paper's, with the papers' (spinning idle workers, test-and-set lock,
        /// unbuffered posts, libasync-smp's steal walk from the head: `--fidelity paper` of the
        /// benchmarks).
        #[arg(long, value_name = "FIDELITY", default_value_t = colored_runtime::Fidelity::Ours,
              value_parser = clap::value_parser!(colored_runtime::Fidelity))]
        fidelity: colored_runtime::Fidelity,
    },
    /// The simulator: the real queues and policies on virtual cores (`simulate --help`).
    Simulate(simulator::cli::SimulateArgs),
}

/// The options of every single benchmark: the run and where its results go.
#[derive(Args, Clone)]
struct Common {
    #[command(flatten)]
    run: RunArgs,
    /// How the results are printed on stdout.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Also write the results as JSON to this file (checked before the run).
    #[arg(long = "output", alias = "json-out", value_name = "FILE")]
    json_out: Option<PathBuf>,
}

/// Print results and write them where `--output` says.
fn emit(results: &[BenchResult], c: &Common) -> Result<()> {
    if let Some(path) = &c.json_out {
        write(path, &serde_json::to_string_pretty(results)?)?;
    }
    if c.format == Format::Table {
        print_table(results);
    } else {
        report::print(results, c.format);
    }
    Ok(())
}

/// The table with one column per scalar; an extra made of several values (e.g. the handler
/// costs of `unbalanced`) is printed under the table, one line per result, instead of as a
/// JSON blob in a column.
fn print_table(results: &[BenchResult]) {
    let mut flat = results.to_vec();
    let mut below = Vec::new();
    for r in &mut flat {
        let nested: Vec<String> = r
            .extra
            .iter()
            .filter(|(_, v)| v.is_object() || v.is_array())
            .map(|(k, _)| k.clone())
            .collect();
        for k in nested {
            if let Some(v) = r.extra.remove(&k) {
                below.push(format!(
                    "{} {} {}: {k}: {}",
                    r.bench,
                    r.runtime,
                    r.stealing,
                    inline(&v)
                ));
            }
        }
    }
    report::print(&flat, Format::Table);
    for line in below {
        println!("{line}");
    }
}

/// `a=1, b=2` for an object, `1, 2` for an array.
fn inline(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(m) => m
            .iter()
            .map(|(k, x)| format!("{k}={x}"))
            .collect::<Vec<_>>()
            .join(", "),
        serde_json::Value::Array(a) => a
            .iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

fn write(path: &std::path::Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Run a single benchmark: check its options and output path, run, emit.
fn single(c: &Common, f: impl FnOnce(&RunOpts) -> Result<Vec<BenchResult>>) -> Result<()> {
    if let Some(p) = &c.json_out {
        edge::cli::check_output_path("--output", p)?;
    }
    // Last: it creates the --trace file.
    let opts = c.run.opts()?;
    emit(&f(&opts)?, c)
}

fn main() -> std::process::ExitCode {
    let cli: Cli = edge::cli::parse(PROGRAM);
    edge::cli::finish(PROGRAM, run_bench(cli.bench))
}

fn run_bench(bench: Bench) -> Result<()> {
    match bench {
        Bench::Simulate(a) => simulator::cli::run(&a, &mut microbenches::validation::real_kevents),
        Bench::Dispatch { common, colors } => single(&common, |o| run::dispatch(o, colors)),
        Bench::Unbalanced { common, costs } => single(&common, |o| run::unbalanced(o, costs)),
        Bench::Penalty(c) => single(&c, |o| run::fork_join(ForkJoin::Penalty, o)),
        Bench::CacheEfficient(c) => single(&c, |o| run::fork_join(ForkJoin::CacheEfficient, o)),
        Bench::Synthetic { common, config } => {
            if common.run.rt.trace.is_some() {
                // Refused before `single` creates the trace file.
                return Err(edge::cli::usage(run::SYNTHETIC_NO_TRACE));
            }
            single(&common, |o| run::synthetic(o, config))
        }
        Bench::IdleCpu {
            runtime,
            workers,
            seconds,
        } => {
            let m = idle::measure(runtime, workers, seconds)?;
            println!(
                "idle {} runtime, {} workers, stealing {}: {:.1} ms of CPU in {} s ({:.3}% of one core)",
                m.queue,
                m.workers,
                m.stealing,
                m.cpu.as_secs_f64() * 1e3,
                m.seconds,
                m.pct_of_one_core()
            );
            Ok(())
        }
        Bench::PaperTables {
            workers,
            seconds,
            repeat,
            json_out,
            markdown_out,
            fidelity,
        } => {
            for (flag, p) in [("--output", &json_out), ("--markdown-out", &markdown_out)] {
                if let Some(p) = p {
                    edge::cli::check_output_path(flag, p)?;
                }
            }
            let opts = paper_tables::Options {
                workers,
                seconds,
                repeat,
                fidelity,
            };
            let out = paper_tables::run(&opts, &mut |what| eprintln!(">> {what}"))?;
            for t in &out.markdown {
                println!("{t}");
            }
            if let Some(p) = json_out {
                write(&p, &serde_json::to_string_pretty(&out.raw)?)?;
            }
            if let Some(p) = markdown_out {
                write(&p, &out.markdown.join("\n"))?;
            }
            Ok(())
        }
    }
}
