//! `colored-report`: reads a results directory written by `scripts/reproduce.sh` and writes the
//! report (Markdown beside the papers' figures), CSVs and plots; compares two such directories.
//!
//! Layout of a results directory (relative paths are experiment names):
//! - `env.json`: commit, date, mode, CPU, cores, kernel, rustc (written by the script);
//! - `microbench/paper-tables.json`: `microbenches paper-tables --json-out` (array of results);
//! - `microbench/dispatch-w<W>.json`: `microbenches dispatch --runtime all --json-out`;
//! - `sws/<config>-w<W>-c<clients>.json`: `load-injector run --format json` against one server
//!   configuration (`libasync-off`, `mely-all`, ..., peers `nginx`, `apache`), with the SWS
//!   server's `--stats-json` beside it as `....stats.json` where the server wrote one;
//! - `sfs/<config>-w<W>.json`: `sfs-bench --format json` (and `.stats.json`), `sfs/sftp.json`:
//!   OpenSSH sftp over loopback, measured by the script (bytes and seconds);
//! - `instr/counts.json`: `instr-counts --json-out` (instructions per operation, callgrind);
//! - `samples/<i>/`: the i-th sample of every repeated experiment, itself a results directory
//!   in this layout, and `samples/order.jsonl`, the order they were measured in (see `samples`);
//! - `sfs/mount-<config>-w<W>.json`, `sfs/mount-sshfs.json`: `sfs-bench --read-files` through
//!   FUSE mounts of each SFS server configuration, and through sshfs (same file and readers);
//!   `sfs/mount-write-<config>-w<W>.json`, `sfs/mount-write-sshfs.json`: `sfs-bench
//!   --write-files` the same way, and `sfs/mount-write-local.json` straight into the export;
//! - `sim/...`: the simulator's calibration, validation and simulated runs (see [`simulated`]);
//! - `<experiment>.error`: the experiment failed or could not run; the file holds the error.
//!
//! Invariant: a value that was not measured is `None` and prints `n/a`; it is never a number,
//! never compared, never plotted.

pub mod bisect;
pub mod changepoint;
pub mod compare;
pub mod figures;
pub mod history;
pub mod history_report;
pub mod instr;
pub mod load;
pub mod markdown;
pub mod noise;
pub mod paper_mode;
pub mod plots;
pub mod samples;
pub mod simulated;
pub mod stats;
pub mod timelines;

/// Format an optional number for a table: `n/a` when absent.
pub fn fmt_opt(v: Option<f64>) -> String {
    match v {
        None => "n/a".into(),
        Some(x) if !x.is_finite() => "n/a".into(),
        Some(x) if x.abs() >= 100.0 => format!("{x:.0}"),
        Some(x) if x.abs() >= 10.0 => format!("{x:.1}"),
        Some(x) => format!("{x:.2}"),
    }
}

/// Median of the finite values, `None` when there are none (the project's one median).
pub use edge::median::median;

/// `a / b` when both are measured and `b` is positive.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 && a.is_finite() && b.is_finite() => Some(a / b),
        _ => None,
    }
}
