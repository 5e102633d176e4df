//! `instr-counts`: instruction counts per operation of the single-threaded paths (dispatch of
//! one event, the HTTP parser, SFS frame seal/open, a Mely steal of one color) under valgrind's
//! callgrind. See the library's documentation for the method.
//!
//! ```text
//! instr-counts [--ops NAME,NAME] [--scale F] [--output FILE]     # measure (needs valgrind)
//! instr-counts list                                              # the operations
//! instr-counts op NAME --iters N                                 # one body (what callgrind runs)
//! ```

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use instr_counts::{callgrind, measure, ops, to_records};
use std::path::PathBuf;

const PROGRAM: &str = "instr-counts";

const EXAMPLES: &str = "\
EXAMPLES:
  # Every operation's instructions per operation, also as JSON (needs valgrind):
  instr-counts --output counts.json

  # Two operations only:
  instr-counts --ops dispatch,http-parse

  instr-counts list";

#[derive(Parser)]
#[command(
    name = "instr-counts",
    version,
    after_help = EXAMPLES,
    about = "Instructions per operation (callgrind) of dispatch, HTTP parse, SFS seal/open and a Mely steal: work per operation, not parallel speedup"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    /// Operations to measure, comma separated (default: all; see `instr-counts list`).
    #[arg(long, value_delimiter = ',')]
    ops: Vec<String>,
    /// Multiply every operation's iteration count (more: slower, same counts).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Write the counts as JSON here (an array, one object per operation); checked before
    /// measuring.
    #[arg(long = "output", alias = "json-out", value_name = "FILE")]
    json_out: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// List the operations and what each does.
    List,
    /// Run one operation's body ITERS times (this is what runs under callgrind).
    Op {
        /// The operation (see `list`).
        name: String,
        /// How many times its body runs.
        #[arg(long)]
        iters: u64,
    },
}

fn main() -> std::process::ExitCode {
    let cli: Cli = edge::cli::parse(PROGRAM);
    edge::cli::finish(PROGRAM, run(cli))
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Some(Cmd::List) => {
            for o in ops::OPS {
                println!("{:<22} {}", o.name, o.what);
            }
            Ok(())
        }
        Some(Cmd::Op { name, iters }) => ops::run(ops::op(&name)?, iters),
        None => {
            if !(cli.scale.is_finite() && cli.scale > 0.0) {
                return Err(edge::cli::usage("--scale must be a positive number"));
            }
            if let Some(p) = &cli.json_out {
                edge::cli::check_output_path("--output", p)?;
            }
            let valgrind = callgrind::find_valgrind()?;
            let version = callgrind::version(&valgrind)?;
            let exe = std::env::current_exe().context("finding this executable")?;
            let counts = measure(&valgrind, &exe, &cli.ops, cli.scale)?;
            for c in &counts {
                println!("{:<22} {:>12.1} instructions/op", c.op, c.instructions);
            }
            if let Some(path) = cli.json_out {
                let records = to_records(&counts, &version);
                std::fs::write(&path, serde_json::to_string_pretty(&records)?)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Ok(())
        }
    }
}
