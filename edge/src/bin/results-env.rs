//! `results-env`: prints the environment of this machine and working directory as one JSON
//! object in the project's env schema (see `results/README.md`), with the run parameters
//! given as options. `scripts/reproduce.sh` writes its `env.json` with it.

use clap::Parser;
use edge::env::{Env, RunParams};

const PROGRAM: &str = "results-env";

const EXAMPLES: &str = "\
EXAMPLES:
  results-env > env.json
  results-env --tool reproduce.sh --mode quick --seconds 5 > env.json";

#[derive(Parser, Debug)]
#[command(
    name = "results-env",
    version,
    after_help = EXAMPLES,
    about = "Print the environment of this run as JSON (the project's env schema)",
    long_about = "Print the environment of this machine and working directory (commit, CPU, \
                  cores, kernel, compiler, date) as one JSON object in the project's env \
                  schema, documented in results/README.md, with the run parameters given as \
                  options. Options not given, or given empty, are left out of the object."
)]
struct Cli {
    /// The program the results come from, recorded as `tool`.
    #[arg(long, default_value = "results-env")]
    tool: String,
    #[command(flatten)]
    run: RunParams,
}

fn main() -> std::process::ExitCode {
    let cli: Cli = edge::cli::parse(PROGRAM);
    edge::cli::finish(PROGRAM, run(cli))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let mut env = Env::collect(&cli.tool);
    env.run = cli.run.without_empty();
    edge::cli::print_stdout(&format!("{}\n", serde_json::to_string_pretty(&env)?))
}
