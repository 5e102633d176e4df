//! `colored-report`: the report generator and regression tracker of `scripts/reproduce.sh` and
//! `scripts/compare.sh`.
//!
//! ```text
//! colored-report report  DIR             # DIR/report.md, DIR/csv/*.csv, DIR/plots/*.{svg,png}
//! colored-report compare BASE NEW [--threshold PCT]   # exit 1 on a regression or a missing
//!                                                      # experiment, 2 when it cannot compare
//! ```

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use microbenches::report_gen::{self, load::Results};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "colored-report",
    version,
    about = "Report (papers' tables beside ours, CSV, plots) and regression comparison of results directories"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Read a results directory and write report.md, csv/ and plots/ into it.
    Report {
        dir: PathBuf,
        /// Skip the plots (e.g. when no font is installed).
        #[arg(long)]
        no_plots: bool,
        /// Print report.md on stdout too.
        #[arg(long)]
        print: bool,
    },
    /// Compare two results directories: every figure's change and the ratios that matter.
    /// Exits 1 when a ratio fell by more than the threshold or an experiment of BASE is
    /// missing from NEW.
    Compare {
        base: PathBuf,
        new: PathBuf,
        /// Largest tolerated fall of a ratio, in percent.
        #[arg(long, default_value_t = 5.0)]
        threshold: f64,
    },
}

/// Exit status: 0 report written / comparison passed, 1 comparison failed (a ratio regressed or
/// an experiment is missing), 2 the tool itself failed (unreadable directory, bad flag).
fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("colored-report: error: {e:#}");
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
            let csv_dir = dir.join("csv");
            std::fs::create_dir_all(&csv_dir)
                .with_context(|| format!("creating {}", csv_dir.display()))?;
            for (name, content) in report_gen::markdown::csvs(&r) {
                std::fs::write(csv_dir.join(&name), content)
                    .with_context(|| format!("writing {name}"))?;
            }
            let mut plots = Vec::new();
            if !no_plots {
                match report_gen::plots::write_all(&r, &dir.join("plots")) {
                    Ok((files, failed)) => {
                        plots = files.into_iter().map(|f| format!("plots/{f}")).collect();
                        for f in failed {
                            eprintln!("colored-report: plot not drawn: {f}");
                        }
                    }
                    Err(e) => eprintln!("colored-report: no plots: {e:#}"),
                }
            }
            let md = report_gen::markdown::report(&r, &plots);
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
        } => {
            anyhow::ensure!(
                threshold >= 0.0 && threshold.is_finite(),
                "--threshold must be a non-negative number"
            );
            let b = Results::load(&base)?;
            let n = Results::load(&new)?;
            let c = report_gen::compare::compare(&b, &n, threshold);
            print!("{}", c.text);
            if c.failed() {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}
