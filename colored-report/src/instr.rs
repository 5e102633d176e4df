//! Instruction counts (`instr/counts.json`, written by `instr-counts`): work per operation of
//! the single-threaded paths under callgrind. They are figures like the others (experiment
//! `instr/<op>`, metric `instructions/op`, lower is better) but measure the binary, not the
//! machine: the comparison gates them whenever both sides were built by the same compiler.

use instr_counts::CountRecord;

/// The unit of an instruction-count figure.
pub const UNIT: &str = "instructions";

/// The metric name of an instruction-count figure (`instr/<op> instructions/op`).
pub const METRIC: &str = "instructions/op";

/// One operation's count.
#[derive(Clone, Debug, PartialEq)]
pub struct InstrRow {
    /// Operation (e.g. `http-parse`).
    pub op: String,
    /// Guest instructions per operation; `None` if not a finite number (a file without one is
    /// an error, [`rows`]).
    pub instructions: Option<f64>,
}

/// The rows of `instr/counts.json`, read through the [`CountRecord`]s `instr-counts` wrote it
/// with (a record without `op` or `instructions_per_op` fails the whole file when it is read).
pub fn rows(records: Vec<CountRecord>) -> Vec<InstrRow> {
    records
        .into_iter()
        .map(|r| InstrRow {
            instructions: Some(r.instructions_per_op).filter(|x| x.is_finite()),
            op: r.op,
        })
        .collect()
}

/// Experiment name of an operation's count.
pub fn experiment(row: &InstrRow) -> String {
    format!("instr/{}", row.op)
}
