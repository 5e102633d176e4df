//! `colored-report`: the report generator and regression tracker of `scripts/reproduce.sh` and
//! `scripts/compare.sh`.
//!
//! ```text
//! colored-report report  DIR             # DIR/report.md, DIR/csv/*.csv, DIR/plots/*.{svg,png}
//! colored-report compare BASE NEW [--threshold PCT] [--alpha A] [--paired] [--noise FILE]
//!                                        # exit 1 on a regression or a missing experiment,
//!                                        # 2 when it cannot compare
//! colored-report calibrate DIR... --out FILE [--threshold PCT] [--alpha A]
//!                                        # A/A noise per figure; false alarms and power
//! colored-report changepoints FILE [--min-size N] [--significance P]
//!                                        # change points of JSON-lines series
//! colored-report history append DIR --history FILE --commit SHA --commit-date D --subject S
//! colored-report history report --history FILE [--output DIR] [--no-plots]
//! colored-report history bisect-step --history FILE --figure KEY --good SHA --bad SHA
//!                                    --candidate SHA [--machine M] [--since T] [--force]
//!                                        # exit 0 good, 1 bad, 3 unsure
//! colored-report history machine DIR     # the machine id of a results directory
//! colored-report trace-check FILE        # exit 0 if the trace keeps the color guarantee,
//!                                        # 1 with the violations
//! ```

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use colored_report::{
    self, bisect, compare, history, history_report, load::Results, noise, samples::SampleSet,
};
use std::path::{Path, PathBuf};

const PROGRAM: &str = "colored-report";

const EXAMPLES: &str = "\
EXAMPLES:
  # The report of a results directory (written by scripts/reproduce.sh): read DIR/report.md
  colored-report report results/baseline

  # Did NEW regress against BASE? (exit 1 if so)
  colored-report compare results/baseline results/new --threshold 5

  # Does a trace (microbenches ... --trace t.json) keep the color guarantee? (exit 1 if not)
  colored-report trace-check t.json

EXIT STATUS:
  0 report written / comparison passed; 1 comparison failed (a gated figure or ratio
  regressed, or an experiment is missing; trace-check: the trace breaks the color
  guarantee); 2 the tool itself failed (not a results directory, unreadable file, bad
  flag); history bisect-step: 0 good, 1 bad, 3 unsure.";

#[derive(Parser)]
#[command(
    name = "colored-report",
    version,
    about = "Report (papers' tables beside ours, CSV, plots) and regression comparison of results directories",
    after_help = EXAMPLES
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Read a results directory and write report.md, csv/ and plots/ into it. A directory
    /// holding no results (no experiment, no recorded failure) is refused and left untouched.
    Report {
        /// The results directory (as scripts/reproduce.sh writes it).
        dir: PathBuf,
        /// Skip the plots (e.g. when no font is installed).
        #[arg(long)]
        no_plots: bool,
        /// Print report.md on stdout too.
        #[arg(long)]
        print: bool,
    },
    /// Compare two results directories on their samples: every figure's change and the ratios
    /// that matter, each with a rank test. Exits 1 when a gated figure or ratio regressed (past
    /// the threshold and significant, or past the threshold when it cannot be tested) or an
    /// experiment of BASE is missing from NEW.
    Compare {
        /// The results directory compared against.
        base: PathBuf,
        /// The results directory under test.
        new: PathBuf,
        /// Smallest change that counts, in percent of BASE's median.
        #[arg(long, default_value_t = 5.0)]
        threshold: f64,
        /// Significance level of the rank test (Mann-Whitney U; Wilcoxon signed-rank with
        /// --paired).
        #[arg(long, default_value_t = 0.01)]
        alpha: f64,
        /// Sample i of BASE and of NEW ran as a pair (A B A B ...): test the pair ratios.
        #[arg(long)]
        paired: bool,
        /// The A/A noise of this machine (`calibrate --out`): a change is flagged only past
        /// its figure's A/A spread as well. Not used when it is of another machine.
        #[arg(long)]
        noise: Option<PathBuf>,
    },
    /// Learn each figure's run-to-run spread on this machine from runs of one build (A/A;
    /// e.g. six `REPRO_ONLY=micro REPRO_RUNS=5 scripts/reproduce.sh quick` runs), write it for
    /// `compare --noise`, and, with five runs or more, measure the false-alarm rate and the
    /// smallest change detected in 95% of trials per figure (each pair of runs tested against
    /// a calibration of the other runs).
    ///
    /// Example: colored-report calibrate results/aa-1 results/aa-2 ... results/aa-6 --out results/noise.json
    Calibrate {
        /// Results directories of one build on one machine.
        #[arg(required = true, num_args = 3..)]
        dirs: Vec<PathBuf>,
        /// Where to write the calibration (JSON).
        #[arg(long)]
        out: PathBuf,
        /// The comparison's threshold the evaluation uses, in percent.
        #[arg(long, default_value_t = 5.0)]
        threshold: f64,
        /// The comparison's significance level the evaluation uses.
        #[arg(long, default_value_t = 0.01)]
        alpha: f64,
    },
    /// Change points of series given as JSON lines (`{"id": ..., "series": [x, ...]}`; `-`
    /// reads stdin), one output line each (`{"id": ..., "change_points": [index, ...], "p":
    /// [...]}`): the method of `history report`, for measuring it on other series.
    ///
    /// Example: echo '{"id":1,"series":[10,10.1,9.9,10,10.2,12,12.1,11.9,12,12.2]}' | colored-report changepoints -
    Changepoints {
        input: PathBuf,
        /// Shortest segment, in commits.
        #[arg(long, default_value_t = colored_report::changepoint::Options::default().min_size)]
        min_size: usize,
        /// Largest p-value that keeps a change point.
        #[arg(long, default_value_t = colored_report::changepoint::Options::default().significance)]
        significance: f64,
    },
    /// The history of samples across commits (results/history/history.jsonl).
    History {
        #[command(subcommand)]
        cmd: HistoryCmd,
    },
    /// Check a trace (Chrome/Perfetto JSON written by `--trace`) against the color guarantee:
    /// no two runs of one color overlap on any pair of tracks; per color, runs carrying a
    /// posting sequence number ran in posting order; the runs and steals agree with the run's
    /// counters when the trace carries them and is complete. Prints a summary and the
    /// violations; exits 1 if there is any.
    ///
    /// Example: colored-report trace-check t.json
    TraceCheck {
        /// The trace file.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum HistoryCmd {
    /// Append the samples of a results directory, measured at one commit, to the history.
    Append {
        /// The results directory whose samples are appended.
        dir: PathBuf,
        /// The history file (JSON lines; created when missing).
        #[arg(long)]
        history: PathBuf,
        /// Full commit hash.
        #[arg(long)]
        commit: String,
        /// The commit's date (ISO 8601).
        #[arg(long)]
        commit_date: String,
        /// The commit's subject line.
        #[arg(long, default_value = "")]
        subject: String,
        /// When the samples were recorded (default: the results' env.json date, else now).
        #[arg(long)]
        recorded: Option<String>,
    },
    /// Write report.md and plots/ from the history: every ratio and figure over commits and
    /// the change points found (E-Divisive means splits kept by a t test, see `changepoint`).
    Report {
        /// The history file.
        #[arg(long)]
        history: PathBuf,
        /// Output directory (default: the history file's directory).
        #[arg(long = "output", alias = "out", value_name = "DIR")]
        out: Option<PathBuf>,
        /// Skip the plots (e.g. when no font is installed).
        #[arg(long)]
        no_plots: bool,
    },
    /// Is CANDIDATE on GOOD's or BAD's side of FIGURE's move? Prints the evidence; exits 0
    /// (good), 1 (bad) or 3 (unsure: take more samples).
    BisectStep {
        /// The history file.
        #[arg(long)]
        history: PathBuf,
        /// Figure key (e.g. "instr/http-parse instructions/op") or ratio name.
        #[arg(long)]
        figure: String,
        /// A commit on the good side of the move.
        #[arg(long)]
        good: String,
        /// A commit on the bad side of the move.
        #[arg(long)]
        bad: String,
        /// The commit to classify.
        #[arg(long)]
        candidate: String,
        /// Only samples of this machine (see `history machine`).
        #[arg(long)]
        machine: Option<String>,
        /// Only samples recorded at or after this time (ISO 8601).
        #[arg(long)]
        since: Option<String>,
        /// Significance level of the rank tests.
        #[arg(long, default_value_t = 0.01)]
        alpha: f64,
        /// Decide an unsure step by closeness alone (and say so).
        #[arg(long)]
        force: bool,
    },
    /// Print the machine id (CPU model | cores | kernel) of a results directory.
    Machine {
        /// The results directory.
        dir: PathBuf,
    },
}

/// Exit status: 0 report written / comparison passed, 1 comparison failed (a gated figure or
/// ratio regressed, or an experiment is missing) or the trace breaks the color guarantee, 2
/// the tool itself failed (unreadable directory, bad flag); `history bisect-step`: 0 good, 1
/// bad, 3 unsure.
fn main() {
    let cli: Cli = edge::cli::parse(PROGRAM);
    if let Err(e) = run(cli) {
        if e.chain().any(|c| c.is::<edge::cli::StdoutClosed>()) {
            return;
        }
        eprintln!("{PROGRAM}: error: {}", edge::cli::message(&e));
        std::process::exit(2);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Report {
            dir,
            no_plots,
            print,
        } => {
            let r = Results::load(&dir)?;
            anyhow::ensure!(
                !r.experiments().is_empty() || !r.missing.is_empty() || !r.instr.is_empty(),
                "{} holds no results (no experiment and no recorded failure): not a results \
                 directory; scripts/reproduce.sh writes one",
                dir.display()
            );
            let csv_dir = dir.join("csv");
            std::fs::create_dir_all(&csv_dir)
                .with_context(|| format!("creating {}", csv_dir.display()))?;
            for (name, content) in colored_report::markdown::csvs(&r) {
                std::fs::write(csv_dir.join(&name), content)
                    .with_context(|| format!("writing {name}"))?;
            }
            let mut plots = Vec::new();
            if !no_plots {
                match colored_report::plots::write_all(&r, &dir.join("plots")) {
                    Ok((files, failed)) => {
                        plots = files.into_iter().map(|f| format!("plots/{f}")).collect();
                        for f in failed {
                            eprintln!("colored-report: plot not drawn: {f}");
                        }
                    }
                    Err(e) => eprintln!("colored-report: no plots: {e:#}"),
                }
            }
            let mut timelines = Vec::new();
            if !no_plots {
                let (drawn, failed) = colored_report::timelines::draw_all(&dir);
                for f in failed {
                    eprintln!("colored-report: timeline not drawn: {f}");
                }
                plots.extend(drawn.iter().map(|t| t.svg.clone()));
                timelines = drawn;
            }
            let md = colored_report::markdown::report(&r, &plots, &timelines);
            std::fs::write(dir.join("report.md"), &md).context("writing report.md")?;
            if print {
                println!("{md}");
            }
            eprintln!(
                "colored-report: {} written ({} experiments, {} missing, {} plot files)",
                dir.join("report.md").display(),
                r.experiments().len(),
                r.missing.len(),
                plots.len()
            );
            Ok(())
        }
        Cmd::Compare {
            base,
            new,
            threshold,
            alpha,
            paired,
            noise: noise_file,
        } => {
            anyhow::ensure!(
                threshold >= 0.0 && threshold.is_finite(),
                "--threshold must be a non-negative number"
            );
            anyhow::ensure!(
                alpha > 0.0 && alpha < 1.0,
                "--alpha must be between 0 and 1"
            );
            let b = SampleSet::load(&base)?;
            let n = SampleSet::load(&new)?;
            if paired {
                anyhow::ensure!(
                    b.samples == n.samples,
                    "--paired needs as many samples on each side ({} in BASE, {} in NEW)",
                    b.samples,
                    n.samples
                );
            }
            let opts = compare::Options {
                threshold_pct: threshold,
                alpha,
                paired,
            };
            let cal = noise_file
                .as_deref()
                .map(noise::Calibration::load)
                .transpose()?;
            if let Some(k) = &cal {
                if !(k.applies_to(&b) && k.applies_to(&n)) {
                    eprintln!(
                        "colored-report: warning: the calibration is of {} ({}), not of these runs' machine: not used",
                        k.machine,
                        noise_file.as_deref().unwrap_or(Path::new("")).display()
                    );
                }
            }
            let c = compare::compare_calibrated(&b, &n, &opts, cal.as_ref());
            print!("{}", c.text);
            if c.failed() {
                std::process::exit(1);
            }
            Ok(())
        }
        Cmd::Calibrate {
            dirs,
            out,
            threshold,
            alpha,
        } => {
            let sets = dirs
                .iter()
                .map(|d| SampleSet::load(d))
                .collect::<Result<Vec<_>>>()?;
            let cal = noise::Calibration::from_sets(&sets)?;
            let opts = compare::Options {
                threshold_pct: threshold,
                alpha,
                paired: false,
            };
            let eval = if sets.len() >= noise::MIN_RUNS + 2 {
                Some(noise::evaluate(&sets, &opts)?)
            } else {
                eprintln!(
                    "colored-report: {} runs: too few to measure false alarms and power (needs {})",
                    sets.len(),
                    noise::MIN_RUNS + 2
                );
                None
            };
            print!("{}", noise::report(&cal, eval.as_ref(), &opts));
            cal.save(&out)?;
            eprintln!("colored-report: calibration written to {}", out.display());
            Ok(())
        }
        Cmd::Changepoints {
            input,
            min_size,
            significance,
        } => {
            anyhow::ensure!(min_size >= 1, "--min-size must be at least 1");
            anyhow::ensure!(
                significance > 0.0 && significance < 1.0,
                "--significance must be between 0 and 1"
            );
            let text = if input == Path::new("-") {
                std::io::read_to_string(std::io::stdin()).context("reading stdin")?
            } else {
                std::fs::read_to_string(&input)
                    .with_context(|| format!("reading {}", input.display()))?
            };
            let o = colored_report::changepoint::Options {
                min_size,
                significance,
                ..Default::default()
            };
            print!("{}", colored_report::changepoint::jsonl(&text, &o)?);
            Ok(())
        }
        Cmd::History { cmd } => run_history(cmd),
        Cmd::TraceCheck { file } => {
            let report = colored_trace::check::check_path(&file)
                .with_context(|| format!("reading the trace {}", file.display()))?;
            print!("{report}");
            if !report.passed() {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

fn run_history(cmd: HistoryCmd) -> Result<()> {
    match cmd {
        HistoryCmd::Append {
            dir,
            history: file,
            commit,
            commit_date,
            subject,
            recorded,
        } => {
            let set = SampleSet::load(&dir)?;
            anyhow::ensure!(
                !set.figures.is_empty() || !set.missing.is_empty(),
                "{} holds no experiment",
                dir.display()
            );
            let recorded = recorded.unwrap_or_else(|| set.env_str("date"));
            let info = history::CommitInfo {
                commit,
                commit_date,
                subject,
                recorded,
            };
            let recs = history::records(&set, &info);
            history::append(&file, &recs)?;
            eprintln!(
                "colored-report: {} line(s) appended to {} ({} sample(s), {} experiment(s) failed)",
                recs.len(),
                file.display(),
                set.samples,
                set.missing.len()
            );
            Ok(())
        }
        HistoryCmd::Report {
            history: file,
            out,
            no_plots,
        } => {
            let recs = history::load(&file)?;
            anyhow::ensure!(!recs.is_empty(), "{} holds no history", file.display());
            let out = out.unwrap_or_else(|| file.parent().unwrap_or(Path::new(".")).to_path_buf());
            let (_, failed) = history_report::write(&recs, &out, no_plots)?;
            for f in failed {
                eprintln!("colored-report: plot not drawn: {f}");
            }
            eprintln!(
                "colored-report: {} written",
                out.join("report.md").display()
            );
            Ok(())
        }
        HistoryCmd::BisectStep {
            history: file,
            figure,
            good,
            bad,
            candidate,
            machine,
            since,
            alpha,
            force,
        } => {
            let recs = history::load(&file)?;
            let all = history::series(&recs, &history::Filter { machine, since });
            let s = all
                .get(&figure)
                .with_context(|| format!("no figure {figure:?} in {}", file.display()))?;
            let at = |c: &str| history::samples_at(s, c);
            let step = bisect::classify(&at(&good), &at(&bad), &at(&candidate), alpha, force);
            print!("{}", step.evidence);
            std::process::exit(match step.side {
                bisect::Side::Good => 0,
                bisect::Side::Bad => 1,
                bisect::Side::Unsure => 3,
            });
        }
        HistoryCmd::Machine { dir } => {
            println!("{}", SampleSet::load(&dir)?.machine());
            Ok(())
        }
    }
}
