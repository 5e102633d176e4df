//! `sfs-bench`: the multi-client reader of the SFS experiment, and `--crypto-limit`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Parser;
use sfs_server::bench::{crypto_limit, run, BenchConfig, Verify};
use sfs_server::keys::Key;

#[derive(Parser, Debug)]
#[command(
    name = "sfs-bench",
    about = "N clients reading one file from an SFS server; MB/s"
)]
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
    /// Output format.
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
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
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if cli.crypto_limit {
        let mbs = crypto_limit(cli.chunk as usize, cli.seconds);
        if cli.format == "json" {
            println!(
                "{}",
                serde_json::json!({"mode": "crypto-limit", "cipher": "chacha20poly1305", "chunk": cli.chunk,
                                   "seconds": cli.seconds, "mbytes_per_sec": mbs, "label": cli.label,
                                   "env": edge::env::Env::collect(concat!("sfs-bench ", env!("CARGO_PKG_VERSION")))})
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
        bail!("--server, --user, --key-file and --file are required (or use --crypto-limit)");
    };
    if cli.clients == 0 || cli.seconds <= 0.0 || cli.chunk == 0 {
        bail!("--clients, --seconds and --chunk must be positive");
    }
    let key = Key::read_file(&kf)?;
    let cfg = BenchConfig {
        server,
        user,
        clients: cli.clients,
        file,
        seconds: cli.seconds,
        verify: cli.verify,
        chunk: cli.chunk.min(sfs_server::proto::MAX_IO as u32),
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
    } else {
        println!(
            "{:<24} {:>10} {:>10} {:>8} {:>10} {:>9}",
            "label", "MB/s", "ops", "errors", "client_cpu", "servers"
        );
        println!(
            "{:<24} {:>10.1} {:>10} {:>8} {:>9.2}s {:>9}",
            if cli.label.is_empty() {
                "-"
            } else {
                &cli.label
            },
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
    Ok(())
}
