//! Running one colored server process until SIGINT/SIGTERM, then writing its statistics.
//!
//! Start-up order: signals are hooked first (a signal that arrives during start-up is not
//! lost), then the cache is built, then the runtime starts and the listener is bound; only
//! then is `sws-server listening on ADDR` printed on stdout (tests and the N-copy parent
//! wait for that line).
//!
//! With `--trace FILE` the file is created before the runtime starts (a path that cannot be
//! written fails the start) and the trace is written into it once the runtime has stopped.

use std::io::Write;
use std::time::Instant;

use anyhow::Context;

use edge::signals::StopSignals;
use serde_json::{json, Value};

use crate::cache::{Cache, CacheLimits};
use crate::cli::Cli;
use crate::path::DocRoot;
use crate::server::RunningServer;

/// Builds the cache for `--root`, logging what was loaded on stderr.
pub fn load_cache(cli: &Cli) -> anyhow::Result<Cache> {
    let root = DocRoot::new(&cli.root)
        .map_err(|e| edge::cli::usage(format!("--root {}: {e}", cli.root.display())))?;
    let (cache, report) = Cache::build(&root, CacheLimits::default())?;
    if cli.ncopy_child.unwrap_or(0) == 0 {
        if report.files == 0 {
            eprintln!(
                "sws-server: warning: --root {} holds no file to serve; every request will be \
                 answered 404",
                cli.root.display()
            );
        }
        eprintln!(
            "sws: {} files ({} bytes) prebuilt from {}; {} outside the root refused, {} skipped",
            report.files,
            report.bytes,
            root.canonical().display(),
            report.outside_root,
            report.skipped
        );
    }
    Ok(cache)
}

/// Runs a colored server (also each N-copy child) until SIGINT or SIGTERM.
pub fn run_colored(cli: &Cli) -> anyhow::Result<()> {
    let mut signals = StopSignals::hook()?;
    if let Err(e) = edge::limits::raise_nofile() {
        eprintln!("sws: could not raise the open-file limit: {e}");
    }
    let (workers, max_clients, reuse_port) = match cli.ncopy_child {
        Some(i) => {
            if cli.rt.no_pin {
                // Not pinned, as asked.
            } else if let Err(e) = edge::cpu::pin_process_to(i) {
                eprintln!("sws: ncopy child {i}: could not pin to a CPU: {e}");
            }
            (1, cli.max_clients, true)
        }
        None => (cli.rt.workers, cli.max_clients, false),
    };
    let trace_out = cli.rt.trace_output()?;
    let cache = load_cache(cli)?;
    let started = Instant::now();
    let server = RunningServer::start(
        cli.runtime_config(workers)?,
        cli.server_config(max_clients, reuse_port),
        cache,
    )?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "sws-server listening on {}", server.local_addr())?;
        out.flush()?;
    }
    let sig = signals.wait();
    let elapsed = started.elapsed().as_secs_f64();
    let (sstats, rstats, trace) = server.stop_traced();
    if let (Some(out), Some(mut trace)) = (&trace_out, trace) {
        let conf = &mut trace.meta.configuration;
        conf.insert(0, ("server".into(), "sws-server".into()));
        conf.push(("mode".into(), cli.mode.as_str().into()));
        if let Some(i) = cli.ncopy_child {
            conf.push(("ncopy child".into(), i.to_string()));
        }
        out.write(&trace)
            .with_context(|| format!("writing the trace {}", out.path().display()))?;
    }
    if cli.ncopy_child.is_none() {
        eprintln!(
            "sws: signal {}: stopping; {} requests served, {} connections",
            sig, sstats.requests_served, sstats.connections_accepted
        );
    }
    if let Some(path) = &cli.stats_json {
        let mut doc = json!({
            "mode": cli.mode.as_str(),
            "runtime": cli.rt.runtime.to_string(),
            "stealing": cli.rt.stealing.to_string(),
            "steal_amount": cli.rt.steal_amount.to_string(),
            "workers": workers,
            "max_clients": max_clients,
            "listen": cli.listen.to_string(),
            "pid": std::process::id(),
            "elapsed_secs": elapsed,
        });
        if let (Value::Object(d), Value::Object(s)) = (&mut doc, serde_json::to_value(&sstats)?) {
            d.extend(s);
        }
        doc["runtime_stats"] = serde_json::to_value(&rstats)?;
        edge::stats_file::write_json(path, &doc)?;
    }
    Ok(())
}
