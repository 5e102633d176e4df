//! `sws-server`: see `sws_server::cli` for the command line.

use clap::Parser;
use sws_server::cli::{Cli, Mode};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cli.validate()?;
    match (cli.mode, cli.ncopy_child) {
        (Mode::Ncopy, None) => sws_server::ncopy::run_parent(&cli),
        _ => sws_server::run::run_colored(&cli),
    }
}
