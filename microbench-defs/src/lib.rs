//! The microbenchmarks' definitions, shared by their real runs (`microbenches`), the simulator
//! (`simulator`) and the report (`colored-report`): each benchmark's parameters, sizing and
//! cost annotations, its pure kernels (the work an event does, the same code whether a real
//! worker or the simulator's cost calibration runs it), the result a run writes
//! ([`report::BenchResult`], read back by the report through the same struct), the environment
//! stored beside it, and the papers' tables.
//!
//! Nothing here starts a thread or a runtime.

pub mod cache_efficient;
pub mod env;
pub mod l2;
pub mod penalty;
pub mod report;
pub mod synthetic;
pub mod tables;
pub mod unbalanced;
