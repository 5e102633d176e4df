//! Per-core timelines.
#![warn(missing_docs)]

pub mod record;

pub use record::{
    Bound, Record, Recorder, State, StealOutcome, Trace, TraceBuf, TraceMeta, WindowCounters,
    NO_SEQ,
};
