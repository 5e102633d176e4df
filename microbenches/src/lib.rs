//! The papers' microbenchmarks on the colored runtime (and tokio as the widely used peer).
//! The binary `microbenches` is a thin CLI over these modules (its fixed interface: docs/ARCHITECTURE.md).

pub mod cache_efficient;
pub mod common;
pub mod dispatch;
pub mod env;
pub mod idle;
pub mod paper_tables;
pub mod penalty;
pub mod perf;
pub mod report;
pub mod run;
pub mod sim;
pub mod synthetic;
pub mod tables;
pub mod unbalanced;

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
