//! `results-env`: prints the environment of this machine and working directory as one JSON
//! object in the project's env schema (see `results/README.md`), with the run parameters
//! given as options. `scripts/reproduce.sh` writes its `env.json` with it.

use clap::Parser;
use edge::env::{Env, RunParams};

#[derive(Parser, Debug)]
#[command(
    name = "results-env",
    version,
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

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut env = Env::collect(&cli.tool);
    env.run = cli.run.without_empty();
    println!("{}", serde_json::to_string_pretty(&env)?);
    Ok(())
}
