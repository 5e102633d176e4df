//! `load-injector`: command-line edge. Parses flags into a [`Plan`] and hands
//! it to the library (`run`, `master`) or serves as a slave.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use load_injector::master::{run_master, MasterOptions};
use load_injector::output::{render, Format};
use load_injector::plan::{check_path, parse_target, read_paths_file, Plan, Ramp, WeightedPath};
use load_injector::progress::Progress;
use load_injector::{run_local_until, slave};

const PROGRAM: &str = "load-injector";

const EXAMPLES: &str = "\
EXAMPLES:
  # 200 clients on one host, 3 runs of 30 s after 5 s of warm-up:
  load-injector run --server 127.0.0.1:8080 --clients 200 --seconds 30 --warmup 5 --runs 3 --path /index.html

  # Two slaves (on this host here; normally one per machine) driven by a master:
  load-injector slave --listen 127.0.0.1:7070 &
  load-injector slave --listen 127.0.0.1:7071 &
  load-injector master --slaves 127.0.0.1:7070,127.0.0.1:7071 --server 127.0.0.1:8080 \\
      --clients 400 --seconds 10 --runs 3 --path /index.html --format json --output result.json

EXIT STATUS:
  0 every run had successful requests; 1 a failure (e.g. a run in which no request
  succeeded: the report is printed, then the reason); 2 a wrong command line; 3 (master)
  a slave's results are missing from a run; 130 stopped by SIGINT/SIGTERM (the runs
  completed are reported).";

/// Closed-loop HTTP/1.1 load injector.
///
/// Virtual clients connect, send a GET, read the whole response (status and
/// Content-Length checked), think, and go again; after --requests-per-conn
/// requests they reconnect. Latency is measured from the intended send time
/// into HDR histograms. One host (`run`) or many (`master` + `slave`).
#[derive(Parser, Debug)]
#[command(name = "load-injector", version, about, long_about, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Inject load from this host.
    #[command(
        after_help = "EXAMPLES:\n  load-injector run --server 127.0.0.1:8080 --clients 200 --seconds 30 \
                            --warmup 5 --runs 3 --path /index.html"
    )]
    Run(LoadArgs),
    /// Wait for a master's plan on a control port and run it when told.
    #[command(
        after_help = "EXAMPLES:\n  load-injector slave --listen 127.0.0.1:7070 --sessions 1"
    )]
    Slave {
        /// Control address to listen on (HOST:PORT).
        #[arg(long, value_name = "ADDR")]
        listen: String,
        /// Exit after this many master sessions (default: serve forever).
        #[arg(long, value_name = "N")]
        sessions: Option<usize>,
    },
    /// Drive slaves: send them the plan, start them together, merge their results.
    ///
    /// --clients is the total, split evenly among the slaves.
    #[command(
        after_help = "EXAMPLES:\n  load-injector master --slaves 127.0.0.1:7070,127.0.0.1:7071 \
                            --server 127.0.0.1:8080 --clients 400 --seconds 10 --runs 3 --path /index.html"
    )]
    Master {
        /// Control addresses of the slaves, comma separated.
        #[arg(long, value_name = "ADDR,ADDR", value_delimiter = ',', required = true)]
        slaves: Vec<String>,
        /// Seconds allowed to connect to a slave and get its answer to the plan.
        #[arg(long, default_value_t = 5.0, value_name = "S")]
        slave_timeout: f64,
        /// Seconds of grace after a run's end before a silent slave is declared failed.
        #[arg(long, default_value_t = 5.0, value_name = "S")]
        slave_grace: f64,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// Merge JSON reports of the same load (e.g. rounds run against separate server starts)
    /// into one: every run, the median and spread over all of them.
    #[command(
        after_help = "EXAMPLES:\n  load-injector merge round1.json round2.json round3.json --format json \
                            --output merged.json"
    )]
    Merge {
        /// Reports written with --format json, in the order their runs are to be listed.
        #[arg(required = true, value_name = "REPORT")]
        reports: Vec<PathBuf>,
        /// Output format.
        #[arg(long, default_value = "table", value_parser = ["table", "json", "csv"])]
        format: String,
        /// Also write the merged report to this file (same format).
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
struct LoadArgs {
    /// Server to load, HOST:PORT (an http:// prefix is accepted).
    #[arg(long = "server", alias = "target", value_name = "ADDR")]
    target: String,
    /// Virtual clients (concurrent connections); the total in master mode.
    #[arg(long, default_value_t = 200, value_name = "N")]
    clients: usize,
    /// Measured seconds per run.
    #[arg(
        long = "seconds",
        alias = "duration",
        default_value_t = 30.0,
        value_name = "S"
    )]
    duration: f64,
    /// Seconds of load before measuring, excluded from the figures.
    #[arg(long, default_value_t = 5.0, value_name = "S")]
    warmup: f64,
    /// Repetitions; the report gives each run, the median and the spread.
    #[arg(long, alias = "repeat", default_value_t = 3, value_name = "R")]
    runs: usize,
    /// Request path (repeatable); chosen uniformly among those given.
    #[arg(long = "path", value_name = "P", conflicts_with = "paths")]
    path: Vec<String>,
    /// File of paths, one per line with an optional weight after whitespace.
    #[arg(long, value_name = "FILE")]
    paths: Option<PathBuf>,
    /// Requests per connection before it is closed and reopened.
    #[arg(long, default_value_t = 150, value_name = "N")]
    requests_per_conn: u64,
    /// Milliseconds a client waits after a response before its next request.
    #[arg(long, default_value_t = 0.0, value_name = "MS")]
    think_time: f64,
    /// Milliseconds after the intended send time before a request is a timeout.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    timeout: u64,
    /// Milliseconds a client waits before reconnecting after a connection error.
    #[arg(long, default_value_t = 10.0, value_name = "MS")]
    error_backoff: f64,
    /// Status a response must have to count as a success (default: any 2xx).
    #[arg(long, value_name = "CODE")]
    expect_status: Option<u16>,
    /// Injection threads (default: one per core; slaves use their own cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Step the client count: START:END:STEP (e.g. 200:2000:200), one row per step.
    #[arg(long, value_name = "START:END:STEP")]
    ramp: Option<String>,
    /// Output format.
    #[arg(long, default_value = "table", value_parser = ["table", "json", "csv"])]
    format: String,
    /// Also write the report to this file (same format); checked before the run.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

impl LoadArgs {
    /// The plan, every option checked: an error is a usage error (exit status 2).
    fn plan(&self) -> Result<Plan> {
        self.plan_unchecked()
            .map_err(|e| edge::cli::usage(edge::cli::message(&e)))
    }

    fn plan_unchecked(&self) -> Result<Plan> {
        if let Some(f) = &self.output {
            edge::cli::check_output_path("--output", f)?;
        }
        let (addr, host_header) = parse_target(&self.target)?;
        let paths = match &self.paths {
            Some(f) => read_paths_file(f)?,
            None if self.path.is_empty() => {
                bail!("give the request paths: --path P (repeatable) or --paths FILE")
            }
            None => self
                .path
                .iter()
                .map(|p| {
                    check_path(p).with_context(|| format!("--path {p:?}"))?;
                    Ok(WeightedPath {
                        path: p.clone(),
                        weight: 1.0,
                    })
                })
                .collect::<Result<_>>()?,
        };
        let ramp = self.ramp.as_deref().map(Ramp::parse).transpose()?;
        let plan = Plan {
            target: self.target.clone(),
            addr,
            host_header,
            clients: ramp.map_or(self.clients, |r| r.start),
            threads: self.threads.unwrap_or(0),
            duration_s: self.duration,
            warmup_s: self.warmup,
            runs: self.runs,
            requests_per_conn: self.requests_per_conn,
            think_time_ms: self.think_time,
            timeout_ms: self.timeout,
            error_backoff_ms: self.error_backoff,
            expect_status: self.expect_status,
            paths,
            ramp,
        };
        if self.threads == Some(0) {
            bail!("--threads must be at least 1");
        }
        plan.validate()?;
        Ok(plan)
    }

    /// Prints the report and writes `--output`, then fails when a run had no successful
    /// request (the report still shows it).
    fn emit(&self, report: &load_injector::Report) -> Result<()> {
        let format: Format = self.format.parse()?;
        let text = render(report, format)?;
        if let Some(f) = &self.output {
            std::fs::write(f, &text).with_context(|| format!("writing {}", f.display()))?;
        }
        edge::cli::print_stdout(&text)?;
        no_failed_run(report, &self.target)
    }
}

/// An error naming the first run in which no request succeeded, with its failures.
fn no_failed_run(report: &load_injector::Report, target: &str) -> Result<()> {
    let Some(r) = report.runs.iter().find(|r| r.responses_ok == 0) else {
        return Ok(());
    };
    let failures: Vec<String> = r
        .errors
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{k}={n}"))
        .collect();
    let why = if failures.is_empty() {
        "no request was sent".to_string()
    } else {
        failures.join(" ")
    };
    let hint = if r.errors.get("refused").is_some_and(|n| *n > 0) {
        format!("; is a server listening on {target}?")
    } else {
        String::new()
    };
    bail!(
        "run {} ({} clients): no request succeeded ({why}){hint}",
        r.run,
        r.clients
    )
}

fn main() -> ExitCode {
    let cli: Cli = edge::cli::parse(PROGRAM);
    match real_main(cli) {
        Ok(code) => code,
        Err(e) => ExitCode::from(edge::cli::report(PROGRAM, &e)),
    }
}

fn real_main(cli: Cli) -> Result<ExitCode> {
    match cli.cmd {
        Cmd::Run(load) => {
            let plan = load.plan()?;
            // SIGINT/SIGTERM stop the injection; the runs already complete are
            // still reported (a second signal kills the process as usual).
            let stop = Arc::new(AtomicBool::new(false));
            for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                signal_hook::flag::register_conditional_default(sig, stop.clone())
                    .context("installing a signal handler")?;
                signal_hook::flag::register(sig, stop.clone())
                    .context("installing a signal handler")?;
            }
            let report = run_local_until(&plan, Progress::auto(), &stop)?;
            load.emit(&report)?;
            Ok(if report.interrupted {
                ExitCode::from(130)
            } else {
                ExitCode::SUCCESS
            })
        }
        Cmd::Slave { listen, sessions } => {
            let l = TcpListener::bind(&listen)
                .map_err(|e| edge::cli::usage(format!("--listen {listen:?}: cannot bind: {e}")))?;
            eprintln!("slave: listening on {}", l.local_addr()?);
            slave::serve(l, sessions)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Master {
            slaves,
            slave_timeout,
            slave_grace,
            load,
        } => {
            let plan = load.plan()?;
            let mut opts = MasterOptions::new(slaves);
            opts.connect_timeout = Duration::from_secs_f64(slave_timeout);
            opts.grace = Duration::from_secs_f64(slave_grace);
            let report = run_master(&plan, &opts, Progress::auto())?;
            load.emit(&report)?;
            // An incomplete experiment is reported in full but is not a success.
            Ok(if report.complete {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            })
        }
        Cmd::Merge {
            reports,
            format,
            output,
        } => {
            if let Some(f) = &output {
                edge::cli::check_output_path("--output", f)?;
            }
            let format: Format = format.parse()?;
            let parsed = reports
                .iter()
                .map(|p| {
                    let bytes =
                        std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
                    serde_json::from_slice::<load_injector::Report>(&bytes).with_context(|| {
                        format!("{}: not a load-injector JSON report", p.display())
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let merged = load_injector::Report::merge(parsed)?;
            let text = render(&merged, format)?;
            if let Some(f) = &output {
                std::fs::write(f, &text).with_context(|| format!("writing {}", f.display()))?;
            }
            edge::cli::print_stdout(&text)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
