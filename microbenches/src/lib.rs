//! The papers' microbenchmarks run for real on the colored runtime (and tokio as the widely used
//! peer). Their definitions (parameters, kernels, the result struct, the tables) are
//! [`microbench_defs`]'s, re-exported here where the runs use them; `microbenches simulate`
//! runs the [`simulator`], and [`validation`] gives its `validate` the real runs.
//! The binary `microbenches` is a thin CLI over these modules (its fixed interface: docs/ARCHITECTURE.md).

pub mod cache_efficient;
pub mod common;
pub mod dispatch;
pub mod idle;
pub mod paper_tables;
pub mod penalty;
pub mod perf;
pub mod run;
pub mod synthetic;
pub mod unbalanced;
pub mod validation;

pub use microbench_defs::{env, report, tables};

use serde::Serialize;

/// Which runtime a benchmark runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeArg {
    Libasync,
    Mely,
    Tokio,
    /// libasync, mely and tokio one after the other, in one run.
    All,
}
