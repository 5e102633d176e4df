//! `sfs-server`: the SFS-like encrypted file server (colored or N-copy), and `keygen`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};
use colored_runtime::args::RuntimeArgs;
use sfs_server::keytable::{own_ids, Keygen};
use sfs_server::serve::{Mode, ServeOptions};
use sfs_server::server::{Coloring, HANDSHAKE_TIMEOUT, MAX_UNAUTHENTICATED};

const PROGRAM: &str = "sfs-server";

const EXAMPLES: &str = "\
EXAMPLES:
  # A key for user alice (key table ./keys, key file ./alice.key, both mode 0600):
  sfs-server keygen --user alice --keys keys --key-file alice.key

  # Export ./export on port 4000 with 2 workers; counters written on SIGTERM:
  sfs-server --export export --listen 127.0.0.1:4000 --keys keys --workers 2 --stats-json s.json

  # Then, as alice:
  sfs-client --server 127.0.0.1:4000 --user alice --key-file alice.key ls

  # Record what each worker does, written on exit as a Chrome/Perfetto trace (N-copy mode:
  # one file per copy, t.c0.json, t.c1.json, ...), then check the color guarantee on it:
  sfs-server --export export --listen 127.0.0.1:4000 --keys keys --workers 2 --trace t.json
  colored-report trace-check t.json";

/// SFS-like encrypted NFS-style file server on the colored runtime.
///
/// Prints `sfs-server listening on ADDR ...` on stdout once it accepts connections and
/// serves until SIGINT or SIGTERM.
#[derive(Parser, Debug)]
#[command(name = "sfs-server", version, after_help = EXAMPLES)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    serve: Serve,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create a user's random key, write it to the key file (0600), add it to the key table
    /// (created if missing). Refuses to replace an existing user or key file without --force.
    #[command(
        after_help = "EXAMPLES:\n  sfs-server keygen --user alice --keys keys --key-file alice.key\n  \
                            sfs-server keygen --user bob --keys keys --key-file bob.key --uid 1001 --gid 1001"
    )]
    Keygen(KeygenArgs),
}

#[derive(Args, Debug)]
struct KeygenArgs {
    /// The user name ([A-Za-z0-9._-], at most 64 bytes).
    #[arg(long, value_name = "NAME")]
    user: String,
    /// The server's key table.
    #[arg(long, value_name = "FILE")]
    keys: PathBuf,
    /// Where to write the user's key.
    #[arg(long, value_name = "FILE")]
    key_file: PathBuf,
    /// Local uid the user acts as on the server (default: the uid running keygen).
    #[arg(long)]
    uid: Option<u32>,
    /// Local gid the user acts as on the server (default: the gid running keygen).
    #[arg(long)]
    gid: Option<u32>,
    /// Replace the user's existing key and overwrite an existing key file.
    #[arg(long)]
    force: bool,
    /// Trust this key to act for the local users of the client host (NFS's trusted-host
    /// model, root squashing off): a mount made with it is usable by every local user, each
    /// checked as itself.
    #[arg(long)]
    trusted: bool,
}

#[derive(Args, Debug, Clone)]
struct Serve {
    /// Directory to export.
    #[arg(long, value_name = "DIR")]
    export: Option<PathBuf>,
    /// Address to listen on (port 0: ephemeral, printed on stdout).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Key table (see `keygen`).
    #[arg(long)]
    keys: Option<PathBuf>,
    /// The runtime: workers (in ncopy mode, the number of processes), queue design,
    /// stealing, pinning.
    #[command(flatten)]
    rt: RuntimeArgs,
    /// per-client: each connection's crypto in its own color; none: all in color 0.
    #[arg(long, value_parser = clap::value_parser!(Coloring), default_value = "per-client")]
    coloring: Coloring,
    /// colored: one process; ncopy: N single-worker processes sharing the port.
    #[arg(long, default_value = "colored",
          value_parser = PossibleValuesParser::new(["colored", "ncopy"]).try_map(|s| s.parse::<Mode>()))]
    mode: Mode,
    /// Attribute lease duration in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    lease_ms: u64,
    /// A connection that has not authenticated within this many milliseconds is closed.
    #[arg(long, default_value_t = HANDSHAKE_TIMEOUT.as_millis() as u64, value_parser = clap::value_parser!(u64).range(1..))]
    handshake_timeout_ms: u64,
    /// Connections that have not authenticated yet, at most (per process); past it new
    /// connections are closed at once, counted (`refused_unauthenticated` in --stats-json)
    /// and logged.
    #[arg(long, default_value_t = MAX_UNAUTHENTICATED, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_unauthenticated: usize,
    /// Write the server's counters and the runtime's (`runtime_stats`) as JSON here on exit;
    /// in ncopy mode, the sum over the processes. The directory is checked at start-up.
    #[arg(long)]
    stats_json: Option<PathBuf>,
    /// (internal) N-copy child I: listen with SO_REUSEPORT, pin to the I-th allowed CPU.
    #[arg(long, hide = true)]
    ncopy_child: Option<usize>,
}

fn main() -> ExitCode {
    let cli: Cli = edge::cli::parse(PROGRAM);
    edge::cli::finish(PROGRAM, run(cli))
}

fn run(cli: Cli) -> Result<()> {
    match (cli.cmd, cli.serve) {
        (Some(Cmd::Keygen(k)), _) => keygen(&k),
        (None, s) => {
            let opts = options(s)?;
            opts.check()?;
            sfs_server::serve::run(&opts, &mut std::io::stdout())
        }
    }
}

fn keygen(k: &KeygenArgs) -> Result<()> {
    let (uid, gid) = own_ids();
    let added = Keygen {
        user: &k.user,
        keys: &k.keys,
        key_file: &k.key_file,
        uid: k.uid.unwrap_or(uid),
        gid: k.gid.unwrap_or(gid),
        force: k.force,
        trusted: k.trusted,
    }
    .run()?;
    println!(
        "{} user {} (uid {}, gid {}) in {}; key written to {} (mode 0600)",
        if added.replaced { "replaced" } else { "added" },
        k.user,
        k.uid.unwrap_or(uid),
        k.gid.unwrap_or(gid),
        k.keys.display(),
        k.key_file.display()
    );
    if k.trusted {
        println!(
            "{}'s key is trusted to act for the client host's local users",
            k.user
        );
    }
    Ok(())
}

/// The serving options of the command line; the three that say what is served are
/// required (a usage error otherwise).
fn options(s: Serve) -> Result<ServeOptions> {
    let (Some(export), Some(listen), Some(keys)) = (s.export, s.listen, s.keys) else {
        return Err(edge::cli::usage(
            "either `keygen` or --export DIR --listen ADDR --keys FILE; see --help",
        ));
    };
    Ok(ServeOptions {
        export,
        listen,
        keys,
        runtime: s.rt,
        coloring: s.coloring,
        mode: s.mode,
        lease: Duration::from_millis(s.lease_ms),
        handshake_timeout: Duration::from_millis(s.handshake_timeout_ms),
        max_unauthenticated: s.max_unauthenticated,
        stats_json: s.stats_json,
        ncopy_child: s.ncopy_child,
    })
}
