//! Running an operation under callgrind and reading its total instruction count.
//!
//! Invariant: a count is only ever read from the `summary:` (or `totals:`) line of the output
//! file callgrind wrote for this run; a run that failed or wrote no such line is an error, never
//! a zero.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Find valgrind: `$VALGRIND`, else `valgrind` on PATH.
pub fn find_valgrind() -> Result<PathBuf> {
    if let Some(v) = std::env::var_os("VALGRIND") {
        return Ok(PathBuf::from(v));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("valgrind"))
        .find(|p| p.is_file())
        .context("valgrind not found on PATH (install it: apt-get install valgrind)")
}

/// `valgrind --version`, e.g. `valgrind-3.19.0`.
pub fn version(valgrind: &Path) -> Result<String> {
    let o = Command::new(valgrind)
        .arg("--version")
        .output()
        .with_context(|| format!("running {} --version", valgrind.display()))?;
    Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// Total `Ir` of `exe op NAME --iters N` under callgrind (output files go into `dir`).
pub fn total_ir(valgrind: &Path, exe: &Path, op: &str, iters: u64, dir: &Path) -> Result<u64> {
    let out = dir.join(format!("callgrind.{op}.{iters}.out"));
    let o = Command::new(valgrind)
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .args(["--dump-instr=no", "--compress-strings=no"])
        .arg(format!("--zero-before={}", crate::ops::MEASURED))
        .arg(exe)
        .args(["op", op, "--iters", &iters.to_string()])
        .output()
        .with_context(|| format!("running {} on {op}", valgrind.display()))?;
    if !o.status.success() {
        let err = String::from_utf8_lossy(&o.stderr);
        let tail: Vec<&str> = err.lines().rev().take(5).collect();
        bail!(
            "{op} with {iters} iterations failed under callgrind ({}): {}",
            o.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        );
    }
    let text = std::fs::read_to_string(&out)
        .with_context(|| format!("reading callgrind's output {}", out.display()))?;
    parse_total(&text).with_context(|| format!("{}: no summary line", out.display()))
}

/// The total from a callgrind output file's `summary:` line (`totals:` in some versions).
pub fn parse_total(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_summary_line() {
        let f =
            "version: 1\ncreator: callgrind-3.19.0\nevents: Ir\nfn=main\n1 5\nsummary: 123456\n";
        assert_eq!(parse_total(f), Some(123456));
        assert_eq!(parse_total("events: Ir\ntotals: 42\n"), Some(42));
        assert_eq!(parse_total("events: Ir\nfn=x\n"), None);
    }
}
