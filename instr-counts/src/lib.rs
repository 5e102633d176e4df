//! Instruction counts of the paths that run on one thread, measured under valgrind's callgrind:
//! a noise-free channel for regression tracking beside the timed experiments. A count is work
//! per operation (guest instructions, `Ir`); it says nothing about parallel speedup, and it
//! moves only when the code (or the compiler) changes, never with the machine's load.
//!
//! How a count is taken ([`measure`]): the binary runs itself under
//! `valgrind --tool=callgrind` twice per operation, with `n` and `2n` iterations of the
//! operation's body ([`ops`]), and the count per operation is the difference of the two totals
//! divided by `n`. Counters are zeroed when the measured loop starts (`--zero-before`), and
//! what follows it (teardown) is the same in both runs and cancels out; what remains is the
//! loop body, allocations included. (The runtime's one-off cycle-counter calibration, a 20 ms
//! spin whose length varies, runs before the loop: counted, it made dispatch vary by 10%.)
//!
//! Derived operations: `mely-steal` is `mely-steal-and-place` minus half of `mely-place-twice`
//! (the steal alone, without the placement that restores the imbalance).

pub mod callgrind;
pub mod ops;

use anyhow::{Context, Result};
use std::path::Path;

/// One measured (or derived) count.
#[derive(Clone, Debug, PartialEq)]
pub struct Count {
    /// Operation name (`instr/<name>` in a results directory's figures).
    pub op: String,
    /// What one operation does.
    pub what: String,
    /// Instructions per operation.
    pub instructions: f64,
    /// Iterations of the shorter run (0 for a derived count).
    pub iters: u64,
}

/// Measure `names` (all of [`ops::OPS`] when empty) with `exe` (this binary) under `valgrind`;
/// `scale` multiplies each operation's default iterations. Adds `mely-steal` when both of its
/// parts were measured.
pub fn measure(valgrind: &Path, exe: &Path, names: &[String], scale: f64) -> Result<Vec<Count>> {
    let chosen: Vec<&ops::Op> = if names.is_empty() {
        ops::OPS.iter().collect()
    } else {
        names.iter().map(|n| ops::op(n)).collect::<Result<_>>()?
    };
    let dir = std::env::temp_dir().join(format!("instr-counts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut out = Vec::new();
    let result = (|| {
        for op in chosen {
            let n = ((op.iters as f64 * scale).round() as u64).max(1);
            let one = callgrind::total_ir(valgrind, exe, op.name, n, &dir)?;
            let two = callgrind::total_ir(valgrind, exe, op.name, 2 * n, &dir)?;
            anyhow::ensure!(
                two > one,
                "{}: {} iterations counted {two} instructions, not more than {n} iterations' {one}",
                op.name,
                2 * n
            );
            out.push(Count {
                op: op.name.to_string(),
                what: op.what.to_string(),
                instructions: (two - one) as f64 / (n * op.per_iter) as f64,
                iters: n,
            });
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    if let Some(d) = derived_steal(&out) {
        out.push(d);
    }
    Ok(out)
}

/// `mely-steal` from its two measured parts.
pub fn derived_steal(counts: &[Count]) -> Option<Count> {
    let get = |n: &str| counts.iter().find(|c| c.op == n).map(|c| c.instructions);
    let (both, place2) = (get("mely-steal-and-place")?, get("mely-place-twice")?);
    Some(Count {
        op: "mely-steal".into(),
        what: "one time-left steal of one color (mely queues), without the placement back: mely-steal-and-place - mely-place-twice / 2".into(),
        instructions: both - place2 / 2.0,
        iters: 0,
    })
}

/// One operation's entry in `instr/counts.json` (an array of them), written by `instr-counts
/// --output` and read back through this struct by the report. The fields are in alphabetical
/// order, the order the file has always had.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CountRecord {
    /// Instructions per operation ([`Count::instructions`]).
    pub instructions_per_op: f64,
    /// Iterations of the shorter run, 0 for a derived count ([`Count::iters`]).
    pub iters: u64,
    /// Operation name ([`Count::op`]).
    pub op: String,
    /// The valgrind tool that counted (`callgrind`).
    pub tool: String,
    /// `valgrind --version` of the counting valgrind.
    pub valgrind: String,
    /// What one operation does ([`Count::what`]).
    pub what: String,
}

/// The records a results directory keeps as `instr/counts.json`.
pub fn to_records(counts: &[Count], valgrind_version: &str) -> Vec<CountRecord> {
    counts
        .iter()
        .map(|c| CountRecord {
            instructions_per_op: c.instructions,
            iters: c.iters,
            op: c.op.clone(),
            tool: "callgrind".into(),
            valgrind: valgrind_version.into(),
            what: c.what.clone(),
        })
        .collect()
}
