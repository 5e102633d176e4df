//! `sws-server`: see `sws_server::cli` for the command line.

use std::process::ExitCode;

use sws_server::cli::{Cli, Mode};

const PROGRAM: &str = "sws-server";

fn main() -> ExitCode {
    let cli: Cli = edge::cli::parse(PROGRAM);
    edge::cli::finish(PROGRAM, run(&cli))
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    cli.validate()?;
    match (cli.mode, cli.ncopy_child) {
        (Mode::Ncopy, None) => sws_server::ncopy::run_parent(cli),
        _ => sws_server::run::run_colored(cli),
    }
}
