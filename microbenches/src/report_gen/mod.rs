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
//! - `sim/...`: the simulator's calibration, validation and simulated runs (see [`sim`]);
//! - `<experiment>.error`: the experiment failed or could not run; the file holds the error.
//!
//! Invariant: a value that was not measured is `None` and prints `n/a`; it is never a number,
//! never compared, never plotted.

pub mod compare;
pub mod figures;
pub mod load;
pub mod markdown;
pub mod plots;
pub mod sim;

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

/// Median of the finite values, `None` when there are none.
pub fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// `a / b` when both are measured and `b` is positive.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 && a.is_finite() && b.is_finite() => Some(a / b),
        _ => None,
    }
}
