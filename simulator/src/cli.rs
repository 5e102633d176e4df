//! The `simulate` subcommand of `microbenches` (fixed interface: docs/ARCHITECTURE.md):
//!
//! ```text
//! microbenches simulate <unbalanced|penalty|cache-efficient> --runtime <libasync|mely>
//!     --stealing POLICY --cores N [--topology e5410|this|FILE.xml] [--seconds S]
//!     [--calibration FILE] [--format table|json|csv]
//!     [--fidelity paper|ours] [--idle spin|bounded] [--lock tas|backoff] [--post-batch N]
//!     [--steal-walk from-head|from-choice] [--event-overhead-cycles N] [--thieves K]
//!     [--trace FILE [--trace-from S] [--trace-for S] [--trace-records N]]
//! microbenches simulate validate [--calibration FILE] [--format table|json] [--repeat N]
//!     [--output FILE]
//! microbenches simulate calibrate --output FILE
//! ```

use super::calibrate::{self, Calibration};
use super::validate::{self, Validation};
use super::{simulate_options, to_result, trace_of, SimBench, SimOptions, SimSpec, JITTER};
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use colored_runtime::args::FidelityArgs;
use colored_runtime::topology::Machine;
use colored_runtime::{QueueKind, StealPolicy, TraceSpec};
use microbench_defs::report::{self, print_table, BenchResult, Format};
use microbench_defs::unbalanced::Costs;
use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct SimulateArgs {
    #[command(subcommand)]
    pub cmd: SimCommand,
}

#[derive(Subcommand)]
pub enum SimCommand {
    /// Simulated `unbalanced` (Tables III-IV).
    Unbalanced {
        #[command(flatten)]
        opts: SimOpts,
        /// Where time-left stealing gets handler costs: annotations or the runtime's profiles
        /// (fed virtual durations).
        #[arg(long, value_enum, default_value = "annotated")]
        costs: Costs,
    },
    /// Simulated `penalty` (Table V).
    Penalty(SimOpts),
    /// Simulated `cache-efficient` (Table VI).
    CacheEfficient(SimOpts),
    /// The simulator as this machine (1 and 2 cores) beside real runs of the same
    /// configurations: the error of each KEvents/s and of each ratio the report uses.
    Validate {
        /// Calibration file (`simulate calibrate`); without one, this machine is calibrated
        /// first.
        #[arg(long)]
        calibration: Option<PathBuf>,
        /// How the validation is printed.
        #[arg(long, value_enum, default_value = "table")]
        format: ValidateFormat,
        /// Seconds per real run, and virtual seconds per simulation.
        #[arg(long, default_value_t = 1.0)]
        seconds: f64,
        /// Rounds of real runs (each round runs every configuration once; a ratio's error is
        /// the median over rounds of its error against the ratio measured within one round).
        #[arg(long = "repeat", alias = "runs", default_value_t = 3)]
        repeat: usize,
        /// Also write the JSON here (checked before the runs).
        #[arg(long = "output", alias = "json-out", value_name = "FILE")]
        json_out: Option<PathBuf>,
    },
    /// Fit each design's per-event runtime overhead to the paper's no-stealing rows only
    /// (simulated e5410, 8 cores, `--fidelity paper`): bisection per row, the median per
    /// design, each row's remaining error. The stealing rows run with it are predictions.
    #[command(
        after_help = "EXAMPLES:\n  microbenches simulate paper-fit --calibration cal.json \
                            --seconds 0.1 --format json --output fit.json"
    )]
    PaperFit {
        /// Calibration file (`simulate calibrate`); without one, this machine is calibrated
        /// first.
        #[arg(long)]
        calibration: Option<PathBuf>,
        /// Virtual seconds per simulation.
        #[arg(long, default_value_t = 0.1)]
        seconds: f64,
        /// How the fit is printed.
        #[arg(long, value_enum, default_value = "table")]
        format: ValidateFormat,
        /// Also write the JSON here (checked before the runs).
        #[arg(long = "output", value_name = "FILE")]
        json_out: Option<PathBuf>,
    },
    /// Measure this machine's costs (runtime steps, wake-ups, kernels, memory levels) and write
    /// them as the calibration file simulations read.
    Calibrate {
        /// Where the calibration is written (checked before measuring).
        #[arg(long = "output", alias = "out", value_name = "FILE")]
        out: PathBuf,
        /// Samples per median.
        #[arg(long, default_value_t = 7)]
        samples: usize,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ValidateFormat {
    Table,
    Json,
}

#[derive(Args, Clone)]
pub struct SimOpts {
    /// Queue design: libasync or mely.
    #[arg(long)]
    runtime: QueueKind,
    /// Stealing policy (off, base, time-left, penalty, locality, all); libasync takes off or base.
    #[arg(long)]
    stealing: StealPolicy,
    /// Simulated cores, 1 to 64.
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    cores: usize,
    /// The machine: `e5410` (the Mely paper's), `numa2`, `this`, or an hwloc XML file
    /// (`lstopo --of xml`). Past its CPUs, copies of it are added.
    #[arg(long, default_value = "e5410")]
    topology: String,
    /// Virtual seconds (then the round in progress finishes).
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
    /// Calibration file (`simulate calibrate`); without one, this machine is calibrated first.
    #[arg(long)]
    calibration: Option<PathBuf>,
    /// How the result is printed.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Seed of the cost jitter (and of `unbalanced`'s plan): a seed reproduces a run exactly.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Relative jitter of the runtime's step costs.
    #[arg(long, default_value_t = JITTER)]
    jitter: f64,
    /// Also write the JSON here (checked before the run).
    #[arg(long = "output", alias = "json-out", value_name = "FILE")]
    json_out: Option<PathBuf>,
    /// The simulated runtime's paper-fidelity options, as the threaded programs take them.
    #[command(flatten)]
    fidelity: FidelityArgs,
    /// Charge N cycles of runtime cost per event instead of the calibrated one (e.g. a value
    /// fitted to the papers' no-stealing rows).
    #[arg(long, value_name = "N")]
    event_overhead_cycles: Option<f64>,
    /// At most K cores steal (cores 0 to K-1); the others never search for work nor take the
    /// last look before sleeping. Default: every core.
    #[arg(long, value_name = "K")]
    thieves: Option<usize>,
    /// Record what every virtual core does, in virtual cycles, and write it to FILE as
    /// Chrome/Perfetto trace-event JSON (`colored-report trace-check FILE` checks it). The
    /// file is created before the run. Without --trace-from/--trace-for each core keeps its
    /// newest --trace-records records.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// Trace from SECONDS of virtual time on (with --trace).
    #[arg(long, value_name = "SECONDS", requires = "trace")]
    trace_from: Option<f64>,
    /// Trace for SECONDS of virtual time (with --trace; default: until the end of the run).
    #[arg(long, value_name = "SECONDS", requires = "trace")]
    trace_for: Option<f64>,
    /// Most records each virtual core keeps (with --trace; 32 bytes each).
    #[arg(long, value_name = "N", requires = "trace",
          default_value_t = colored_trace::record::DEFAULT_CAPACITY)]
    trace_records: usize,
}

impl SimOpts {
    /// What the trace options ask each core to keep (`None`: no `--trace`), checked as the
    /// threaded programs check them.
    fn trace_spec(&self) -> Result<Option<TraceSpec>> {
        if self.trace.is_none() {
            return Ok(None);
        }
        if self.trace_records == 0 {
            return Err(edge::cli::usage("--trace-records must be at least 1"));
        }
        if let Some(f) = self.trace_from.filter(|f| !(f.is_finite() && *f >= 0.0)) {
            return Err(edge::cli::usage(format!(
                "--trace-from must be a number of seconds, 0 or more (got {f})"
            )));
        }
        if let Some(f) = self.trace_for.filter(|f| !(f.is_finite() && *f > 0.0)) {
            return Err(edge::cli::usage(format!(
                "--trace-for must be a positive number of seconds (got {f})"
            )));
        }
        let capacity = self.trace_records;
        Ok(Some(match (self.trace_from, self.trace_for) {
            (None, None) => TraceSpec::Ring { capacity },
            (from, len) => TraceSpec::Window {
                from_secs: from.unwrap_or(0.0),
                for_secs: len.unwrap_or(1e9),
                capacity,
            },
        }))
    }

    /// The run's options beyond its spec, checked.
    fn options(&self) -> Result<SimOptions> {
        let fidelity = self.fidelity.options();
        // The runtime's own check of the options, as the threaded programs make it.
        colored_runtime::args::check_options(self.runtime, self.stealing, fidelity)
            .map_err(|e| edge::cli::usage(e.to_string()))?;
        if let Some(c) = self
            .event_overhead_cycles
            .filter(|c| !(c.is_finite() && *c >= 0.0))
        {
            return Err(edge::cli::usage(format!(
                "--event-overhead-cycles must be a number of cycles, 0 or more (got {c})"
            )));
        }
        if let Some(k) = self.thieves.filter(|&k| k > self.cores) {
            return Err(edge::cli::usage(format!(
                "--thieves {k}: more than the {} simulated cores",
                self.cores
            )));
        }
        Ok(SimOptions {
            fidelity,
            event_overhead_cycles: self.event_overhead_cycles,
            thieves: self.thieves,
            trace: self.trace_spec()?,
        })
    }
}

/// Load `path`, or calibrate now when there is none. Returns it and how to name it.
fn calibration(path: Option<&Path>) -> Result<(Calibration, String)> {
    match path {
        Some(p) => Ok((Calibration::load(p)?, p.display().to_string())),
        None => {
            eprintln!("no --calibration: calibrating this machine first (simulate calibrate --out FILE saves one)");
            let c = calibrate::calibrate(5, &mut |m| eprintln!(">> calibrate: {m}"))?;
            Ok((c, "measured at start (no file)".into()))
        }
    }
}

/// Run `simulate`'s subcommand; `validate` runs the benchmarks for real through `real`.
pub fn run(args: &SimulateArgs, real: validate::RealRunner<'_>) -> Result<()> {
    match &args.cmd {
        SimCommand::Unbalanced { opts, costs } => run_one(SimBench::Unbalanced(*costs), opts),
        SimCommand::Penalty(o) => run_one(SimBench::Penalty, o),
        SimCommand::CacheEfficient(o) => run_one(SimBench::CacheEfficient, o),
        SimCommand::Validate {
            calibration: cal,
            format,
            seconds,
            repeat,
            json_out,
        } => {
            if !(*seconds > 0.0 && seconds.is_finite()) || *repeat == 0 {
                return Err(edge::cli::usage(
                    "--seconds must be positive and --repeat at least 1",
                ));
            }
            if let Some(p) = json_out {
                edge::cli::check_output_path("--output", p)?;
            }
            let (cal, name) = calibration(cal.as_deref())?;
            let v = validate::validate(&cal, &name, *seconds, *repeat, real, &mut |m| {
                eprintln!(">> validate: {m}")
            })?;
            let json = serde_json::to_string_pretty(&v)?;
            if let Some(p) = json_out {
                std::fs::write(p, &json).with_context(|| format!("writing {}", p.display()))?;
            }
            match format {
                ValidateFormat::Json => println!("{json}"),
                ValidateFormat::Table => print_validation(&v),
            }
            Ok(())
        }
        SimCommand::PaperFit {
            calibration: cal,
            seconds,
            format,
            json_out,
        } => {
            if !(*seconds > 0.0 && seconds.is_finite()) {
                return Err(edge::cli::usage("--seconds must be a positive number"));
            }
            if let Some(p) = json_out {
                edge::cli::check_output_path("--output", p)?;
            }
            let (cal, _) = calibration(cal.as_deref())?;
            let f = super::paper_fit::fit(&super::paper_fit::fit_rows(), *seconds, |row, o| {
                eprintln!(
                    ">> paper-fit: {} {} at {o:.0} cycles per event",
                    row.bench, row.runtime
                );
                let (spec, opts) = super::paper_fit::paper_run(row, *seconds, o)?;
                Ok(simulate_options(&spec, &opts, &cal)?.kevents_per_sec())
            })?;
            let json = serde_json::to_string_pretty(&f)?;
            if let Some(p) = json_out {
                std::fs::write(p, &json).with_context(|| format!("writing {}", p.display()))?;
            }
            match format {
                ValidateFormat::Json => println!("{json}"),
                ValidateFormat::Table => {
                    for (d, o) in &f.overhead_cycles {
                        println!("{d:>10} {o:>8.0} cycles per event");
                    }
                    for r in &f.rows {
                        println!(
                            "{:>16} {:<9} paper {:>7.0}  simulated {:>7.0}  {:+.1}%{}",
                            r.row.bench,
                            r.row.runtime,
                            r.row.paper_kevents,
                            r.simulated_kevents,
                            r.error_pct,
                            r.unreachable
                                .as_deref()
                                .map_or(String::new(), |w| format!("  (not fitted: {w})"))
                        );
                    }
                }
            }
            Ok(())
        }
        SimCommand::Calibrate { out, samples } => {
            if *samples == 0 {
                return Err(edge::cli::usage("--samples must be at least 1"));
            }
            edge::cli::check_output_path("--output", out)?;
            let c = calibrate::calibrate(*samples, &mut |m| eprintln!(">> calibrate: {m}"))?;
            let json = serde_json::to_string_pretty(&c)?;
            std::fs::write(out, json).with_context(|| format!("writing {}", out.display()))?;
            eprintln!("calibration written to {}", out.display());
            Ok(())
        }
    }
}

fn run_one(bench: SimBench, o: &SimOpts) -> Result<()> {
    colored_runtime::args::check_policy(o.runtime, o.stealing)
        .map_err(|e| edge::cli::usage(e.to_string()))?;
    if !(0.0..1.0).contains(&o.jitter) {
        return Err(edge::cli::usage("--jitter must be in [0, 1)"));
    }
    if let Some(p) = &o.json_out {
        edge::cli::check_output_path("--output", p)?;
    }
    let opts = o.options()?;
    if let Some(p) = &o.trace {
        edge::cli::check_output_path("--trace", p)?;
    }
    let t = o.topology.as_str();
    if t != "this" && !Machine::BUILTIN.contains(&t) && !Path::new(t).is_file() {
        return Err(edge::cli::usage(format!(
            "--topology {t}: neither a known machine (this, {}) nor an hwloc XML file",
            Machine::BUILTIN.join(", ")
        )));
    }
    let (cal, name) = calibration(o.calibration.as_deref())?;
    let spec = SimSpec {
        bench,
        queue: o.runtime,
        stealing: o.stealing,
        cores: o.cores,
        topology: o.topology.clone(),
        seconds: o.seconds,
        seed: o.seed,
        jitter: o.jitter,
    };
    let mut run = simulate_options(&spec, &opts, &cal)?;
    if let (Some(p), Some(trace)) = (&o.trace, trace_of(&mut run)) {
        colored_trace::export::write_file(&trace, p)
            .with_context(|| format!("writing the trace {}", p.display()))?;
    }
    let r = to_result(&run, &name);
    if let Some(p) = &o.json_out {
        std::fs::write(p, serde_json::to_string_pretty(&r)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    print_sim(&r, o.format);
    Ok(())
}

/// `prefix.key = value` for every scalar in `v`.
fn flatten(v: &Value, prefix: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(x, &p, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                flatten(x, &format!("{prefix}.{i}"), out);
            }
        }
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
        Value::Null => out.push((prefix.to_string(), "n/a".into())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// A simulated result: the microbenchmarks' table or CSV with the parameters spelled out, or
/// the whole JSON.
fn print_sim(r: &BenchResult, format: Format) {
    if format == Format::Json {
        report::print(std::slice::from_ref(r), Format::Json);
        return;
    }
    let mut short = r.clone();
    let params = short.extra.remove("parameters").unwrap_or(Value::Null);
    short.extra.remove("per_core");
    let mut flat = Vec::new();
    flatten(&params, "", &mut flat);
    match format {
        Format::Csv => {
            for (k, v) in &flat {
                short
                    .extra
                    .insert(format!("param.{k}"), Value::String(v.clone()));
            }
            report::print(&[short], Format::Csv);
        }
        _ => {
            report::print(&[short], Format::Table);
            println!(
                "SIMULATED ({} cores on {}); parameters:",
                r.workers, r.extra["topology"]
            );
            let rows: Vec<Vec<String>> = flat.into_iter().map(|(k, v)| vec![k, v]).collect();
            let mut all = vec![vec!["parameter".to_string(), "value".to_string()]];
            all.extend(rows);
            print_table(&all);
        }
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |e| format!("{e:+.1}%"))
}

fn print_validation(v: &Validation) {
    println!(
        "Simulator (topology `this`) against real runs on this machine; {} s per run, {} real run(s) per configuration; calibration: {}\n",
        v.seconds, v.repeat, v.calibration
    );
    let mut rows = vec![vec![
        "bench".to_string(),
        "runtime".into(),
        "stealing".into(),
        "fidelity".into(),
        "cores".into(),
        "real KEv/s".into(),
        "sim KEv/s".into(),
        "error".into(),
        "real CPU/wall".into(),
    ]];
    for e in &v.entries {
        let mut cpu = e.cpu_per_wall.clone();
        cpu.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
        rows.push(vec![
            e.bench.clone(),
            e.runtime.clone(),
            e.stealing.clone(),
            e.fidelity.clone(),
            e.cores.to_string(),
            format!("{:.0}", e.real),
            format!("{:.0}", e.simulated),
            pct(e.error_pct),
            cpu.get(cpu.len() / 2)
                .map_or("n/a".into(), |c| format!("{c:.2}")),
        ]);
    }
    print_table(&rows);
    println!();
    let mut rows = vec![vec![
        "table".to_string(),
        "ratio".into(),
        "cores".into(),
        "real".into(),
        "simulated".into(),
        "error".into(),
    ]];
    for r in &v.ratios {
        rows.push(vec![
            r.table.clone(),
            format!("{} / {}", r.row, r.over),
            r.cores.to_string(),
            format!("{:.3}", r.real),
            format!("{:.3}", r.simulated),
            pct(r.error_pct),
        ]);
    }
    print_table(&rows);
    println!();
    for (k, e) in &v.max_ratio_error_pct_by {
        println!("max |ratio error| {k}: {e:.1}%");
    }
    println!(
        "max_ratio_error_pct: {}",
        v.max_ratio_error_pct
            .map_or("n/a".into(), |e| format!("{e:.1}"))
    );
}
