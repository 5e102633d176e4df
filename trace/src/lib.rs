//! Per-core timelines.
#![warn(missing_docs)]

pub mod record;

#[cfg(feature = "export")]
pub mod check;
#[cfg(feature = "export")]
pub mod export;
#[cfg(feature = "export")]
pub mod parse;
#[cfg(feature = "plot")]
pub mod plot;

pub use record::{
    Bound, Record, Recorder, State, StealOutcome, Trace, TraceBuf, TraceMeta, WindowCounters,
    NO_SEQ,
};
