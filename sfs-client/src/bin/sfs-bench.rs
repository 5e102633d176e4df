//! `sfs-bench`: the multi-client reader of the SFS experiment, the same through the
//! kernel (`--read-files`, one reader process per file, e.g. per mount), its write
//! counterpart (`--write-files`), and `--crypto-limit`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Parser;
use sfs_client::bench::{crypto_limit, run, BenchConfig, Verify};
use sfs_client::multiio::{self, ReadFilesConfig, WriteFilesConfig};
use sfs_proto::key::Key;

const PROGRAM: &str = "sfs-bench";

const EXAMPLES: &str = "\
EXAMPLES:
  # 16 clients reading /big for 10 s, every reply verified:
  sfs-bench --server 127.0.0.1:4000 --user alice --key-file alice.key --file big --clients 16 --seconds 10

  # Through the kernel: 2 readers, each on its own mount, for 5 s:
  sfs-bench --read-files /mnt/a/big,/mnt/b/big --seconds 5 --chunk 1048576

  # 2 writers of 64 MB each (fsync at the end), checked against the server's copies:
  sfs-bench --write-files /mnt/a/w1,/mnt/b/w2 --file-mb 64 --verify-dir /srv/export

  # The single-core cipher limit (no server needed), as JSON:
  sfs-bench --crypto-limit --seconds 2 --format json";

/// N clients reading one file from an SFS server; MB/s. Exits 1 when no read succeeded.
#[derive(Parser, Debug)]
#[command(name = "sfs-bench", version, after_help = EXAMPLES)]
struct Cli {
    /// Server address.
    #[arg(long)]
    server: Option<String>,
    /// User name.
    #[arg(long)]
    user: Option<String>,
    /// The user's key file.
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// Concurrent clients, one connection each.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// File to read, as a path in the export.
    #[arg(long)]
    file: Option<String>,
    /// Measured seconds (after a warm-up of 10%, at most 2 s).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// full: verify every reply; sample: one in 16, count the others' bytes.
    #[arg(long, value_parser = clap::value_parser!(Verify), default_value = "full")]
    verify: Verify,
    /// Output format: table, json or csv (a header line and one row).
    #[arg(long, default_value = "table", value_parser = ["table", "json", "csv"])]
    format: String,
    /// Bytes per READ.
    #[arg(long, default_value_t = 128 * 1024)]
    chunk: u32,
    /// Measure the single-core ChaCha20-Poly1305 throughput instead (no server needed).
    #[arg(long)]
    crypto_limit: bool,
    /// Free-form label copied into the output (e.g. the server configuration).
    #[arg(long, default_value = "")]
    label: String,
    /// Through the kernel instead: one reader process per file (comma-separated, e.g.
    /// the same file in N mounts), each dropping its page cache before every pass
    /// (multiio). Uses --seconds, --chunk, --format, --label.
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["server", "crypto_limit"])]
    read_files: Vec<PathBuf>,
    /// With --read-files: compare samples of every pass with this local file.
    #[arg(long)]
    verify_against: Option<PathBuf>,
    /// Through the kernel, writing: one writer process per file (comma-separated, e.g.
    /// one file per mount), all starting at once, each writing --file-mb MB in --chunk
    /// writes and fsyncing at the end; MB/s counts the time to the last fsync. Uses
    /// --chunk, --format, --label.
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["server", "crypto_limit", "read_files"])]
    write_files: Vec<PathBuf>,
    /// With --write-files: MB (10^6 bytes) each writer writes.
    #[arg(long, default_value_t = 64)]
    file_mb: u64,
    /// With --write-files: the directory where the server stores the files (same
    /// names); each is compared with what was written after the measurement.
    #[arg(long)]
    verify_dir: Option<PathBuf>,
    /// With --read-files or --write-files: the server's process id, for its CPU time
    /// per MB (the process and all its descendants).
    #[arg(long)]
    server_pid: Option<u32>,
    /// (internal) one reader process of --read-files.
    #[arg(long, hide = true)]
    reader_child: Option<PathBuf>,
    /// (internal) the reader's window, `START_NS:END_NS` since the epoch.
    #[arg(long, hide = true)]
    window: Option<String>,
    /// (internal) one writer process of --write-files.
    #[arg(long, hide = true)]
    writer_child: Option<PathBuf>,
    /// (internal) the writer's data seed.
    #[arg(long, hide = true, default_value_t = 0)]
    seed: u64,
    /// (internal) the bytes the writer writes.
    #[arg(long, hide = true, default_value_t = 0)]
    file_bytes: u64,
}

/// The label column: `-` when there is none.
fn label(l: &str) -> &str {
    if l.is_empty() {
        "-"
    } else {
        l
    }
}

fn read_files(cli: &Cli) -> Result<()> {
    let cfg = ReadFilesConfig {
        files: cli.read_files.clone(),
        seconds: cli.seconds,
        warmup: (cli.seconds * 0.1).min(2.0),
        chunk: cli.chunk as usize,
        verify_against: cli.verify_against.clone(),
        server_pid: cli.server_pid,
    };
    let r = multiio::run(&cfg, &std::env::current_exe()?).context("benchmark failed")?;
    if cli.format == "json" {
        println!(
            "{}",
            serde_json::json!({
                "mode": "read-files", "mbytes_per_sec": r.mbytes_per_sec, "bytes": r.bytes,
                "passes": r.passes, "errors": r.errors, "first_error": r.first_error,
                "readers": r.readers, "elapsed_secs": r.elapsed_secs,
                "server_cpu_secs": r.server_cpu_secs, "server_cpu_ms_per_mb": r.server_cpu_ms_per_mb,
                "reader_cpu_secs": r.reader_cpu_secs, "config": cfg, "label": cli.label,
                "env": {"cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)}
            })
        );
    } else if cli.format == "csv" {
        println!("label,mbytes_per_sec,passes,errors,server_cpu_ms_per_mb");
        println!(
            "{},{:.3},{},{},{}",
            label(&cli.label),
            r.mbytes_per_sec,
            r.passes,
            r.errors,
            r.server_cpu_ms_per_mb
                .map_or(String::new(), |c| format!("{c:.3}"))
        );
    } else {
        let cpu = r
            .server_cpu_ms_per_mb
            .map_or("n/a".to_string(), |c| format!("{c:.2}"));
        println!(
            "{:<24} {:>10} {:>8} {:>8} {:>16}",
            "label", "MB/s", "passes", "errors", "server ms/MB"
        );
        println!(
            "{:<24} {:>10.1} {:>8} {:>8} {:>16}",
            label(&cli.label),
            r.mbytes_per_sec,
            r.passes,
            r.errors,
            cpu
        );
        if let Some(e) = &r.first_error {
            println!("# first error: {e}");
        }
    }
    Ok(())
}

fn write_files(cli: &Cli) -> Result<()> {
    let cfg = WriteFilesConfig {
        files: cli.write_files.clone(),
        bytes_per_file: cli.file_mb * 1_000_000,
        chunk: cli.chunk as usize,
        verify_dir: cli.verify_dir.clone(),
        server_pid: cli.server_pid,
    };
    let r = multiio::run_writes(&cfg, &std::env::current_exe()?).context("benchmark failed")?;
    let cpu = r.server_cpu_ms_per_mb;
    if cli.format == "json" {
        println!(
            "{}",
            serde_json::json!({
                "mode": "write-files", "mbytes_per_sec": r.mbytes_per_sec, "bytes": r.bytes,
                "errors": r.errors, "first_error": r.first_error, "writers": r.writers,
                "elapsed_secs": r.elapsed_secs, "server_cpu_secs": r.server_cpu_secs,
                "server_cpu_ms_per_mb": cpu, "writer_cpu_secs": r.writer_cpu_secs,
                "config": cfg, "label": cli.label,
                "env": {"cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)}
            })
        );
    } else if cli.format == "csv" {
        println!("label,mbytes_per_sec,seconds,errors,server_cpu_ms_per_mb");
        println!(
            "{},{:.3},{:.3},{},{}",
            label(&cli.label),
            r.mbytes_per_sec,
            r.elapsed_secs,
            r.errors,
            cpu.map_or(String::new(), |c| format!("{c:.3}"))
        );
    } else {
        println!(
            "{:<24} {:>10} {:>8} {:>8} {:>16}",
            "label", "MB/s", "seconds", "errors", "server ms/MB"
        );
        println!(
            "{:<24} {:>10.1} {:>8.2} {:>8} {:>16}",
            label(&cli.label),
            r.mbytes_per_sec,
            r.elapsed_secs,
            r.errors,
            cpu.map_or("n/a".to_string(), |c| format!("{c:.2}"))
        );
        if let Some(e) = &r.first_error {
            println!("# first error: {e}");
        }
    }
    if r.errors > 0 {
        bail!(
            "{} of {} writers failed or wrote wrong data: {}",
            r.errors,
            r.writers,
            r.first_error.unwrap_or_default()
        );
    }
    Ok(())
}

/// `--window START_NS:END_NS`.
fn window(cli: &Cli) -> Result<(u128, u128)> {
    let w = cli.window.as_deref().unwrap_or_default();
    w.split_once(':')
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        .context("--window START_NS:END_NS")
}

/// The `--writer-child` process: report its counts as one JSON line.
fn writer_child(cli: &Cli, file: &std::path::Path) -> Result<()> {
    let (start, _) = window(cli)?;
    let rep = multiio::writer_child(file, start, cli.file_bytes, cli.chunk as usize, cli.seed);
    println!("{}", serde_json::to_string(&rep)?);
    Ok(())
}

/// The `--reader-child` process: report its counts as one JSON line.
fn reader_child(cli: &Cli, file: &std::path::Path) -> Result<()> {
    let (a, b) = window(cli)?;
    let rep = multiio::reader_child(
        file,
        (a, b),
        cli.chunk as usize,
        cli.verify_against.as_deref(),
    );
    println!("{}", serde_json::to_string(&rep)?);
    Ok(())
}

fn main() -> ExitCode {
    let cli: Cli = edge::cli::parse(PROGRAM);
    edge::cli::finish(PROGRAM, run_cli(cli))
}

fn run_cli(cli: Cli) -> Result<()> {
    if let Some(f) = &cli.reader_child {
        return reader_child(&cli, f);
    }
    if let Some(f) = &cli.writer_child {
        return writer_child(&cli, f);
    }
    if !cli.write_files.is_empty() {
        if cli.file_mb == 0 || cli.chunk == 0 {
            return Err(edge::cli::usage("--file-mb and --chunk must be positive"));
        }
        return write_files(&cli);
    }
    if !cli.read_files.is_empty() {
        if cli.seconds <= 0.0 || cli.chunk == 0 {
            return Err(edge::cli::usage("--seconds and --chunk must be positive"));
        }
        return read_files(&cli);
    }
    if cli.crypto_limit {
        let mbs = crypto_limit(cli.chunk as usize, cli.seconds);
        if cli.format == "json" {
            println!(
                "{}",
                serde_json::json!({"mode": "crypto-limit", "cipher": "chacha20poly1305", "chunk": cli.chunk,
                                   "seconds": cli.seconds, "mbytes_per_sec": mbs, "label": cli.label,
                                   "env": edge::env::Env::collect(concat!("sfs-bench ", env!("CARGO_PKG_VERSION")))})
            );
        } else if cli.format == "csv" {
            println!("mode,cipher,chunk,seconds,mbytes_per_sec");
            println!(
                "crypto-limit,chacha20poly1305,{},{},{mbs:.3}",
                cli.chunk, cli.seconds
            );
        } else {
            println!(
                "single-core ChaCha20-Poly1305 seal, {} B messages: {:.1} MB/s",
                cli.chunk, mbs
            );
        }
        return Ok(());
    }
    let (Some(server), Some(user), Some(kf), Some(file)) =
        (cli.server, cli.user, cli.key_file, cli.file)
    else {
        return Err(edge::cli::usage(
            "--server, --user, --key-file and --file are required (or use --crypto-limit)",
        ));
    };
    if cli.clients == 0 || cli.seconds <= 0.0 || cli.chunk == 0 {
        return Err(edge::cli::usage(
            "--clients, --seconds and --chunk must be positive",
        ));
    }
    let key = Key::read_file(&kf)?;
    let cfg = BenchConfig {
        server,
        user,
        clients: cli.clients,
        file,
        seconds: cli.seconds,
        verify: cli.verify,
        chunk: cli.chunk.min(sfs_proto::messages::MAX_IO as u32),
    };
    let r = run(&cfg, &key).context("benchmark failed")?;
    if cli.format == "json" {
        println!(
            "{}",
            serde_json::json!({
                "mbytes_per_sec": r.mbytes_per_sec, "ops": r.ops, "errors": r.errors,
                "bytes": r.bytes, "elapsed_secs": r.elapsed_secs, "client_cpu_secs": r.client_cpu_secs,
                "server_ids": r.server_ids, "config": cfg, "label": cli.label,
                "env": edge::env::Env::collect(concat!("sfs-bench ", env!("CARGO_PKG_VERSION")))
            })
        );
    } else if cli.format == "csv" {
        println!("label,mbytes_per_sec,ops,errors,client_cpu_secs,servers");
        println!(
            "{},{:.3},{},{},{:.3},{}",
            label(&cli.label),
            r.mbytes_per_sec,
            r.ops,
            r.errors,
            r.client_cpu_secs,
            r.server_ids.len()
        );
    } else {
        println!(
            "{:<24} {:>10} {:>10} {:>8} {:>10} {:>9}",
            "label", "MB/s", "ops", "errors", "client_cpu", "servers"
        );
        println!(
            "{:<24} {:>10.1} {:>10} {:>8} {:>9.2}s {:>9}",
            label(&cli.label),
            r.mbytes_per_sec,
            r.ops,
            r.errors,
            r.client_cpu_secs,
            r.server_ids.len()
        );
        println!(
            "# clients {} file {} verify {:?} chunk {} seconds {:.1}",
            cfg.clients, cfg.file, cfg.verify, cfg.chunk, r.elapsed_secs
        );
    }
    if r.ops == 0 {
        bail!(
            "no read succeeded in {:.1} s ({} errors)",
            r.elapsed_secs,
            r.errors
        );
    }
    Ok(())
}
