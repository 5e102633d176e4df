//! Instruction counts (`instr/counts.json`, written by `instr-counts`): work per operation of
//! the single-threaded paths under callgrind. They are figures like the others (experiment
//! `instr/<op>`, metric `instructions/op`, lower is better) but measure the binary, not the
//! machine: the comparison gates them whenever both sides were built by the same compiler.

use serde_json::Value;

/// The unit of an instruction-count figure.
pub const UNIT: &str = "instructions";

/// The metric name of an instruction-count figure (`instr/<op> instructions/op`).
pub const METRIC: &str = "instructions/op";

/// One operation's count.
#[derive(Clone, Debug, PartialEq)]
pub struct InstrRow {
    /// Operation (e.g. `http-parse`).
    pub op: String,
    /// Guest instructions per operation; `None` when the file did not give a number.
    pub instructions: Option<f64>,
}

/// Parse `instr/counts.json` (an array of `{op, instructions_per_op, ...}`).
pub fn parse(v: &Value) -> Result<Vec<InstrRow>, String> {
    let arr = v
        .as_array()
        .ok_or("instruction counts JSON is not an array")?;
    arr.iter()
        .map(|item| {
            let op = item
                .get("op")
                .and_then(Value::as_str)
                .ok_or("instruction count without op")?;
            Ok(InstrRow {
                op: op.to_string(),
                instructions: item
                    .get("instructions_per_op")
                    .and_then(Value::as_f64)
                    .filter(|x| x.is_finite()),
            })
        })
        .collect()
}

/// Experiment name of an operation's count.
pub fn experiment(row: &InstrRow) -> String {
    format!("instr/{}", row.op)
}
