//! `sfs-client`: ls, stat, get, put, rm against an SFS server.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use sfs_server::client::Client;
use sfs_server::keys::Key;
use sfs_server::listing;

#[derive(Parser, Debug)]
#[command(
    name = "sfs-client",
    about = "Client for the SFS-like encrypted file server"
)]
struct Cli {
    /// Server address.
    #[arg(long)]
    server: String,
    /// User name.
    #[arg(long)]
    user: String,
    /// The user's key file.
    #[arg(long)]
    key_file: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
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
    /// Show attributes.
    Stat { path: String },
    /// Copy a remote file to a local file (`-` for stdout).
    Get { remote: String, local: PathBuf },
    /// Copy a local file to a remote file.
    Put { local: PathBuf, remote: String },
    /// Remove a remote file.
    Rm { path: String },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let key = Key::read_file(&cli.key_file)?;
    let c = Client::connect(cli.server.as_str(), &cli.user, &key)
        .with_context(|| format!("connecting to {} as {}", cli.server, cli.user))?;
    match cli.cmd {
        Cmd::Ls { path, long } => {
            let entries = listing::list(&c, &path)?;
            let out = if long {
                listing::long(&entries)
            } else {
                listing::short(&entries)
            };
            print!("{out}");
        }
        Cmd::Stat { path } => {
            let (_, a) = c.lookup_path(&path)?;
            println!(
                "type {:?}\nmode {:o}\nsize {}\nfileid {}\nnlink {}\nuid {} gid {} owner {}\nmtime {}.{:09}",
                a.ftype,
                a.mode,
                a.size,
                a.fileid,
                a.nlink,
                a.uid,
                a.gid,
                if a.owner.is_empty() { "-" } else { &a.owner },
                a.mtime.secs,
                a.mtime.nsecs
            );
        }
        Cmd::Get { remote, local } => {
            let data = c.get(&remote)?;
            if local.as_os_str() == "-" {
                use std::io::Write;
                std::io::stdout().write_all(&data)?;
            } else {
                std::fs::write(&local, &data)
                    .with_context(|| format!("writing {}", local.display()))?;
            }
        }
        Cmd::Put { local, remote } => {
            let data =
                std::fs::read(&local).with_context(|| format!("reading {}", local.display()))?;
            c.put(&remote, &data)?;
        }
        Cmd::Rm { path } => c.rm(&path)?,
    }
    Ok(())
}
