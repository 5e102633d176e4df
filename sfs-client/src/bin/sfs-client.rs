//! `sfs-client`: ls, stat, get, put, rm against an SFS server, and `mount` (FUSE).

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use sfs_client::client::Client;
use sfs_client::fuse::{MountConfig, MountInfo};
use sfs_client::listing;
use sfs_proto::key::Key;
use sfs_proto::messages::FileType;

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

/// The type as `stat` words it.
fn type_name(t: FileType) -> &'static str {
    match t {
        FileType::Regular => "regular file",
        FileType::Directory => "directory",
        FileType::Symlink => "symbolic link",
        FileType::Fifo => "fifo",
        FileType::CharDev => "character special file",
        FileType::BlockDev => "block special file",
        FileType::Socket => "socket",
        FileType::Other => "other",
    }
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
            let mtime = edge::time::Utc::from_unix(a.mtime.secs);
            edge::cli::print_stdout(&format!(
                "type {}\nmode {} ({:o})\nsize {}\nfileid {}\nnlink {}\nuid {} gid {} owner {}\nmtime {} UTC ({}.{:09} s since the epoch)\n",
                type_name(a.ftype),
                listing::mode_string(a.ftype, a.mode),
                a.mode,
                a.size,
                a.fileid,
                a.nlink,
                a.uid,
                a.gid,
                if a.owner.is_empty() { "-" } else { &a.owner },
                mtime,
                a.mtime.secs,
                a.mtime.nsecs
            ))?;
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

fn describe(server: &str, m: &MountArgs, i: &MountInfo) -> String {
    let who = if i.trusted {
        "trusted key: every local user acts as itself, checked by its own uid and groups"
            .to_string()
    } else {
        format!(
            "key not trusted: every operation acts as server uid {} (shown as {}), \
             other local users cannot use the mount",
            i.ids.server_uid, i.ids.local_uid
        )
    };
    format!(
        "sfs-client: mounted {server} at {} (server id {}, lease {} ms, {who}, auto-unmount {})",
        m.mountpoint.display(),
        i.server_id,
        i.lease.as_millis(),
        if i.auto_unmount { "yes" } else { "no" }
    )
}

fn mount(server: &str, user: &str, key: Key, m: MountArgs) -> Result<()> {
    if !m.foreground {
        return detach(&m);
    }
    // SAFETY: the descriptor was passed by our parent (`detach`) for this process
    // alone; nothing else owns it.
    let mut ready = m
        .ready_fd
        .map(|fd| std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) }));
    if let Some(f) = &ready {
        // Close-on-exec again, so helpers (fusermount3) do not hold the parent's pipe
        // open after we report.
        // SAFETY: fcntl on a descriptor this process owns.
        unsafe {
            libc::fcntl(
                std::os::fd::AsRawFd::as_raw_fd(f),
                libc::F_SETFD,
                libc::FD_CLOEXEC,
            )
        };
    }
    let cfg = MountConfig {
        server: server.to_string(),
        user: user.to_string(),
        key,
        mountpoint: m.mountpoint.clone(),
        threads: m.threads,
        call_timeout: Duration::from_secs(m.timeout.max(1)),
        reconnect_for: Duration::from_secs(m.reconnect),
    };
    let r = sfs_client::fuse::mount(cfg, |info| {
        let line = describe(server, &m, info);
        match ready.take() {
            Some(mut f) => {
                let _ = writeln!(f, "{line}");
            }
            None => {
                println!("{line}");
                let _ = std::io::stdout().flush();
            }
        }
    });
    if let (Err(e), Some(f)) = (&r, ready.as_mut()) {
        let _ = writeln!(f, "error: {e:#}");
    }
    r
}

/// Run the mount in a detached child (its own session, output to `--log` or
/// nowhere) and return once it reports the mount, or its error.
fn detach(m: &MountArgs) -> Result<()> {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a valid two-element array for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error()).context("pipe");
    }
    // SAFETY: pipe2 just created both descriptors; each is owned once here.
    let (mut rd, wr) = unsafe {
        (
            std::fs::File::from(OwnedFd::from_raw_fd(fds[0])),
            OwnedFd::from_raw_fd(fds[1]),
        )
    };
    let wfd = fds[1];
    let err: Stdio = match &m.log {
        Some(p) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .with_context(|| format!("log file {}", p.display()))?
            .into(),
        None => Stdio::null(),
    };
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(std::env::args_os().skip(1))
        .args(["--foreground", "--ready-fd", &wfd.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err);
    // SAFETY: between fork and exec the child only calls async-signal-safe functions
    // (setsid, fcntl) on its own state.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            // Keep the write end open across exec (it is close-on-exec here).
            if libc::fcntl(wfd, libc::F_SETFD, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().context("starting the mount process")?;
    drop(wr);
    let mut msg = String::new();
    rd.read_to_string(&mut msg)?;
    let msg = msg.trim();
    if msg.starts_with("sfs-client: mounted") {
        println!("{msg} (pid {})", child.id());
        return Ok(());
    }
    if msg.is_empty() {
        bail!(
            "the mount process (pid {}) exited without mounting",
            child.id()
        );
    }
    bail!("{}", msg.trim_start_matches("error: "))
}
