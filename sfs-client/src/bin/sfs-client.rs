//! `sfs-client`: ls, stat, get, put, rm against an SFS server, and `mount` (FUSE).

use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use sfs_client::client::Client;
use sfs_client::fuse::MountConfig;
use sfs_client::{listing, mount_process};
use sfs_proto::key::Key;

const PROGRAM: &str = "sfs-client";

const EXAMPLES: &str = "\
EXAMPLES:
  sfs-client --server 127.0.0.1:4000 --user alice --key-file alice.key ls -l
  sfs-client --server 127.0.0.1:4000 --user alice --key-file alice.key put notes.txt notes.txt
  sfs-client --server 127.0.0.1:4000 --user alice --key-file alice.key get notes.txt copy.txt
  sfs-client --server 127.0.0.1:4000 --user alice --key-file alice.key mount /mnt/sfs
  fusermount3 -u /mnt/sfs

  The connection options may also follow the subcommand (sfs-client ls --server ...).";

/// Client for the SFS-like encrypted file server: ls, stat, get, put, rm, mount.
#[derive(Parser, Debug)]
#[command(name = "sfs-client", version, after_help = EXAMPLES)]
struct Cli {
    /// Server address, HOST:PORT.
    #[arg(long, global = true, value_name = "ADDR")]
    server: Option<String>,
    /// User name (an entry of the server's key table).
    #[arg(long, global = true, value_name = "NAME")]
    user: Option<String>,
    /// The user's key file (written by `sfs-server keygen`).
    #[arg(long, global = true, value_name = "FILE")]
    key_file: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

/// Where and as whom to connect, all three given.
struct Conn {
    server: String,
    user: String,
    key_file: PathBuf,
}

impl Cli {
    fn conn(&self) -> Result<Conn> {
        let missing: Vec<&str> = [
            ("--server ADDR", self.server.is_none()),
            ("--user NAME", self.user.is_none()),
            ("--key-file FILE", self.key_file.is_none()),
        ]
        .iter()
        .filter(|(_, m)| *m)
        .map(|(f, _)| *f)
        .collect();
        if !missing.is_empty() {
            return Err(edge::cli::usage(format!(
                "missing {} (before or after the subcommand); see --help",
                missing.join(", ")
            )));
        }
        Ok(Conn {
            server: self.server.clone().unwrap_or_default(),
            user: self.user.clone().unwrap_or_default(),
            key_file: self.key_file.clone().unwrap_or_default(),
        })
    }
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// List a directory (its entries' names, sorted; a file path names the file).
    #[command(
        long_about = "List a directory: its entries' names, sorted, one per line (a file path \
                      names the file).\n\nWith -l/--long, one line per entry as `ls -l` prints \
                      it: type and permission bits (e.g. -rw-r--r--, drwxr-xr-x), link count, \
                      owner (the server's user name for the file's uid, else the uid), size in \
                      bytes, modification time in UTC (YYYY-MM-DD HH:MM) and name."
    )]
    Ls {
        /// Directory (or file) to list, from the export's root.
        #[arg(default_value = "")]
        path: String,
        /// Type, mode, link count, owner, size, mtime (UTC) and name, as `ls -l`.
        #[arg(short = 'l', long)]
        long: bool,
    },
    /// Show a file's attributes (type, mode, size, owner, modification time in UTC).
    Stat {
        /// Path in the export.
        path: String,
    },
    /// Copy a remote file to a local file (`-` for stdout).
    Get {
        /// Path in the export.
        remote: String,
        /// Local file to write (`-`: stdout).
        local: PathBuf,
    },
    /// Copy a local file to a remote file.
    Put {
        /// Local file to read.
        local: PathBuf,
        /// Path in the export (created or replaced).
        remote: String,
    },
    /// Remove a remote file.
    Rm {
        /// Path in the export.
        path: String,
    },
    /// Mount the export on MOUNTPOINT (FUSE). Detaches once mounted unless
    /// --foreground; unmount with `fusermount3 -u MOUNTPOINT`, `umount MOUNTPOINT`
    /// (root), or SIGINT/SIGTERM to the mounting process, which commits pending
    /// writes first. Runs as the SFS user's mapped identity on the server; files of
    /// that identity show as the mounting user's.
    Mount(MountArgs),
}

#[derive(Args, Debug)]
struct MountArgs {
    /// An existing, empty directory.
    mountpoint: PathBuf,
    /// Stay in the foreground (messages on stderr; SIGINT/SIGTERM unmount).
    #[arg(long)]
    foreground: bool,
    /// Threads serving kernel requests (concurrent reads and writes).
    #[arg(long, default_value_t = 8)]
    threads: usize,
    /// Seconds one server call may take before the operation fails with EIO (a
    /// conflicting write can wait up to the server's lease).
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Seconds a lost connection is retried before an operation fails with EIO.
    #[arg(long, default_value_t = 10)]
    reconnect: u64,
    /// In the background, append messages to this file (default: discarded).
    #[arg(long)]
    log: Option<PathBuf>,
    /// (internal) descriptor on which the detached process reports the mount.
    #[arg(long, hide = true)]
    ready_fd: Option<i32>,
}

fn main() -> ExitCode {
    let cli: Cli = edge::cli::parse(PROGRAM);
    edge::cli::finish(PROGRAM, run(cli))
}

fn run(cli: Cli) -> Result<()> {
    let conn = cli.conn()?;
    let key = Key::read_file(&conn.key_file)?;
    if let Cmd::Mount(m) = cli.cmd {
        return mount(&conn.server, &conn.user, key, m);
    }
    if let Cmd::Get { local, .. } = &cli.cmd {
        if local.as_os_str() != "-" {
            edge::cli::check_output_path("get: local file", local)?;
        }
    }
    let c = Client::connect(conn.server.as_str(), &conn.user, &key)
        .with_context(|| format!("connecting to {} as {}", conn.server, conn.user))?;
    match cli.cmd {
        Cmd::Ls { path, long } => {
            let entries = listing::list(&c, &path).with_context(|| format!("ls {path:?}"))?;
            let out = if long {
                listing::long(&entries)
            } else {
                listing::short(&entries)
            };
            edge::cli::print_stdout(&out)?;
        }
        Cmd::Stat { path } => {
            let (_, a) = c
                .lookup_path(&path)
                .with_context(|| format!("stat {path}"))?;
            edge::cli::print_stdout(&listing::stat(&a))?;
        }
        Cmd::Get { remote, local } => {
            let data = c.get(&remote).with_context(|| format!("get {remote}"))?;
            if local.as_os_str() == "-" {
                let mut out = std::io::stdout().lock();
                match out.write_all(&data).and_then(|()| out.flush()) {
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                        return Err(anyhow::Error::new(edge::cli::StdoutClosed))
                    }
                    r => r.context("writing to stdout")?,
                }
            } else {
                std::fs::write(&local, &data)
                    .with_context(|| format!("writing {}", local.display()))?;
            }
        }
        Cmd::Put { local, remote } => {
            let data =
                std::fs::read(&local).with_context(|| format!("reading {}", local.display()))?;
            c.put(&remote, &data)
                .with_context(|| format!("put {remote}"))?;
        }
        Cmd::Rm { path } => c.rm(&path).with_context(|| format!("rm {path}"))?,
        Cmd::Mount(_) => unreachable!("handled above"),
    }
    Ok(())
}

/// `mount`: in the foreground, or detached (the default) once mounted.
fn mount(server: &str, user: &str, key: Key, m: MountArgs) -> Result<()> {
    if !m.foreground {
        let exe = std::env::current_exe().context("finding this program")?;
        let args: Vec<_> = std::env::args_os().skip(1).collect();
        println!("{}", mount_process::detach(&exe, &args, m.log.as_deref())?);
        return Ok(());
    }
    // SAFETY: `--ready-fd` is passed only by our parent (`mount_process::detach`), which
    // opened the descriptor for this process alone; nothing else here owns it.
    let ready = m
        .ready_fd
        .map(|fd| std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) }));
    let cfg = MountConfig {
        server: server.to_string(),
        user: user.to_string(),
        key,
        mountpoint: m.mountpoint,
        threads: m.threads,
        call_timeout: Duration::from_secs(m.timeout.max(1)),
        reconnect_for: Duration::from_secs(m.reconnect),
    };
    mount_process::foreground(cfg, ready, &mut std::io::stdout())
}
