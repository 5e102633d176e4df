//! N-copy mode: `--workers N` independent single-worker servers (child processes of this
//! binary) sharing one port with SO_REUSEPORT, the upper bound of both papers.
//!
//! The parent is an [`edge::supervisor::Supervisor`]: it reserves the port, re-executes this
//! binary N times with the hidden `--ncopy-child I` flag (child I pins itself to the I-th
//! allowed CPU, enforces its share of `--max-clients` and writes its statistics to a private
//! file), prints its own `sws-server listening on ADDR` line once every child listens, and on
//! SIGINT/SIGTERM (or a child dying) stops them and sums their statistics into
//! `--stats-json` ([`edge::stats_file::merge_children`]).
//!
//! With `--trace FILE` each child traces its own runtime into
//! [`colored_runtime::args::child_trace_path`] (`t.json`
//! gives `t.c0.json`, `t.c1.json`, ...): N processes, N traces, each a whole trace of a
//! one-core runtime that opens and checks on its own.

use std::io::Write;
use std::process::Command;

use edge::supervisor::{Stop, Supervisor};
use serde_json::Value;

use crate::cli::Cli;

/// Runs the N-copy parent until SIGINT/SIGTERM.
pub fn run_parent(cli: &Cli) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let n = cli.rt.workers;
    // The client limit is split between the children (each enforces its share).
    let per_child_max = cli.max_clients.div_ceil(n).max(1);
    let sup = Supervisor::start(cli.listen, n, |slot| {
        let mut cmd = Command::new(&exe);
        cmd.arg("--root")
            .arg(&cli.root)
            .args(["--listen", &slot.addr.to_string()])
            .args(cli.rt.to_args(1))
            .args(["--mode", "ncopy"])
            .args(["--max-clients", &per_child_max.to_string()])
            .args(["--idle-timeout-ms", &cli.idle_timeout_ms.to_string()])
            .args(["--conn-penalty", &cli.conn_penalty.to_string()])
            .args(["--ncopy-child", &slot.index.to_string()])
            .arg("--stats-json")
            .arg(slot.stats_file);
        cmd.args(cli.rt.child_trace_args(slot.index));
        cmd
    })?;
    let addr = sup.addr();
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "sws-server listening on {addr} (ncopy, {n} processes)")?;
        out.flush()?;
    }
    let mut sup = sup;
    let stop = sup.wait();
    if let Stop::ChildExited { index, status } = &stop {
        eprintln!("sws: ncopy child {index} exited on its own ({status}); stopping the others");
    }
    let finished = sup.stop();
    if let Some(path) = &cli.stats_json {
        for i in finished.without_stats() {
            eprintln!("sws: ncopy child {i} wrote no statistics");
        }
        let merged = finished.merged_stats(&[
            ("workers", Value::from(n)),
            ("max_clients", Value::from(cli.max_clients)),
        ]);
        edge::stats_file::write_json(path, &merged)?;
    }
    if let Some(t) = &cli.rt.trace {
        let written: Vec<_> = (0..n)
            .map(|i| colored_runtime::args::child_trace_path(t, i))
            .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
            .map(|p| p.display().to_string())
            .collect();
        eprintln!(
            "sws: {} of {n} ncopy traces written: {}",
            written.len(),
            written.join(" ")
        );
    }
    finished.outcome()
}
