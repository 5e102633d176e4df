//! Running one colored server process until SIGINT/SIGTERM, then writing its statistics.
//!
//! Start-up order: signals are hooked first (a signal that arrives during start-up is not
//! lost), then the cache is built, then the runtime starts and the listener is bound; only
//! then is `sws-server listening on ADDR` printed on stdout (tests and the N-copy parent
//! wait for that line).

use std::io::Write;
use std::time::Instant;

use serde_json::{json, Value};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::cache::{Cache, CacheLimits};
use crate::cli::Cli;
use crate::path::DocRoot;
use crate::server::RunningServer;

/// Builds the cache for `--root`, logging what was loaded on stderr.
pub fn load_cache(cli: &Cli) -> anyhow::Result<Cache> {
    let root = DocRoot::new(&cli.root)
        .map_err(|e| anyhow::anyhow!("--root {}: {e}", cli.root.display()))?;
    let (cache, report) = Cache::build(&root, CacheLimits::default())?;
    if cli.ncopy_child.unwrap_or(0) == 0 {
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

/// Restricts this process to one CPU (N-copy child `index`), so that each single-worker
/// child pins to a different core.
fn pin_process_to(index: usize) {
    // SAFETY: cpu_set_t is plain data; zeroed is its empty value, CPU_SET and
    // sched_getaffinity/sched_setaffinity only read and write within it.
    unsafe {
        let mut allowed: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut allowed) != 0 {
            return;
        }
        let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &allowed))
            .collect();
        if cpus.is_empty() {
            return;
        }
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpus[index % cpus.len()], &mut one);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one);
    }
}

/// Raises the open-file limit to its hard limit: each client is a descriptor.
pub fn raise_nofile_limit() {
    // SAFETY: getrlimit/setrlimit read and write only the struct we pass.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

/// Runs a colored server (also each N-copy child) until SIGINT or SIGTERM.
pub fn run_colored(cli: &Cli) -> anyhow::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    raise_nofile_limit();
    let (workers, max_clients, reuse_port) = match cli.ncopy_child {
        Some(i) => {
            pin_process_to(i);
            (1, cli.max_clients, true)
        }
        None => (cli.workers, cli.max_clients, false),
    };
    let cache = load_cache(cli)?;
    let started = Instant::now();
    let server = RunningServer::start(
        cli.runtime_config(workers),
        cli.server_config(max_clients, reuse_port),
        cache,
    )?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "sws-server listening on {}", server.local_addr())?;
        out.flush()?;
    }
    let sig = signals.forever().next();
    let elapsed = started.elapsed().as_secs_f64();
    let (sstats, rstats) = server.stop();
    if cli.ncopy_child.is_none() {
        eprintln!(
            "sws: signal {}: stopping; {} requests served, {} connections",
            sig.unwrap_or(0),
            sstats.requests_served,
            sstats.connections_accepted
        );
    }
    if let Some(path) = &cli.stats_json {
        let mut doc = json!({
            "mode": cli.mode.as_str(),
            "runtime": cli.runtime.to_string(),
            "stealing": cli.stealing.to_string(),
            "steal_amount": cli.steal_amount.to_string(),
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
        write_json(path, &doc)?;
    }
    Ok(())
}

/// Writes a JSON document atomically (temp file, then rename).
pub fn write_json(path: &std::path::Path, doc: &Value) -> anyhow::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(doc)?)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
