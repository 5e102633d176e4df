//! Per-core timelines of the colored runtimes, real and simulated: what each core did, when,
//! recorded cheaply, exported to the trace-event JSON format that Perfetto UI and
//! `chrome://tracing` open, checked against the color guarantee, and drawn.
//!
//! # Records
//! A [`Record`] is one thing a core did, a 32-byte `Copy` value timed in cycles of the
//! caller's clock (the runtime's cycle counter, or the simulator's virtual cycles; this crate
//! reads no clock): an event run (handler, color, start, end, and the event's posting
//! sequence number within its color when known), a steal attempt on one victim and its
//! outcome (colors and events taken, queue nodes looked at, lock wait and hold), a post to
//! another core, a color remap, and a state transition (busy, idle, search, nap, sleep, wake)
//! with the core's queue length at that moment.
//!
//! Each worker owns a [`Recorder`]: `None` when tracing is off, so a record call costs one
//! predictable branch; otherwise a [`TraceBuf`] that only this worker writes (no lock, no
//! atomic), with its memory allocated and written once at construction.
//!
//! # Bounds: ring or window
//! A buffer never grows. [`Bound::Ring`] keeps the newest `capacity` records, overwriting the
//! oldest. [`Bound::Window`] keeps the records whose start lies in `[from, from + len)` cycles,
//! tested with one wrapping subtraction and one comparison; records before or after it are
//! dropped there, and once `capacity` records are kept the rest of the window is dropped too
//! ([`Bound::window_secs`] turns `--trace-from`/`--trace-for` seconds into cycles). Each buffer
//! counts the records of its window it lost, and the export says so, so a reader knows whether
//! the trace is complete over its window.
//!
//! At the end of a run the worker gives its buffer up ([`Recorder::take`]) and the caller
//! builds a [`Trace`]: one buffer per core plus a [`TraceMeta`] (configuration, fidelity mode,
//! simulated or real, cycles per microsecond, handler names, the run's counters over the
//! window).
//!
//! ```
//! use colored_trace::{Bound, Record, Recorder, Trace, TraceMeta, NO_SEQ};
//! // In the worker, once: tracing into a ring of 1024 records (`None`: tracing off).
//! let mut rec = Recorder::new(0, Some(Bound::Ring { capacity: 1024 }));
//! // Per event run, with the two cycle readings the worker takes anyway:
//! let (start, end) = (1_000, 1_800);
//! rec.record(Record::Run { start, end, color: 7, handler: 2, seq: NO_SEQ });
//! // At the end of the run:
//! let trace = Trace {
//!     meta: TraceMeta { cycles_per_us: 2_400.0, ..TraceMeta::default() },
//!     cores: rec.take().into_iter().collect(),
//! };
//! assert_eq!(trace.cores[0].len(), 1);
//! # #[cfg(feature = "export")]
//! # {
//! // Feature `export`: the JSON, and the checker on it.
//! let json = colored_trace::export::to_json(&trace).unwrap();
//! let parsed = colored_trace::parse::ParsedTrace::from_value(&json).unwrap();
//! assert!(colored_trace::check::check(&parsed).passed());
//! # }
//! ```
//!
//! # Export (feature `export`)
//! [`export`] writes the Chrome/Perfetto trace-event JSON: one thread track per core; runs as
//! complete events named by their handler with the color (and sequence number) in args; steal
//! attempts as slices on the thief's track with their lock wait and hold nested, and for a
//! successful steal a `robbed` slice on the victim's track with a flow arrow from victim to
//! thief; idle, search, nap and sleep as slices; queue lengths as counters; posts, remaps and
//! wake-ups as instants; the run's description, bound, losses and counters in `otherData`.
//! `schema/trace-event.schema.json` is a JSON Schema of exactly that subset of the format.
//!
//! # Checker (feature `export`)
//! [`check`] reads such a file back ([`parse`]) and proves, for the runs recorded: no two runs
//! of one color overlap on any pair of tracks; per color, runs carrying a sequence number ran
//! in posting order; and, when the trace is complete over its window and carries the run's
//! counters, its runs and successful steals agree with them. It cannot see what was not
//! recorded (outside the window, lost to the capacity, or not instrumented), overlaps shorter
//! than the clock's resolution or hidden by cores whose cycle counters disagree, or the order
//! of runs without a sequence number. It returns a typed [`check::CheckReport`]; nothing in
//! this crate prints.
//!
//! # Pictures (feature `plot`)
//! [`plot::timeline`] draws a parsed trace over a time window, one lane per core colored by
//! what the core does (running, stealing, waiting for a lock, searching, idle, asleep), to SVG
//! and PNG, and returns each lane's time per activity.
#![warn(missing_docs)]
// The crate doc links the feature-gated modules, which a build without them lacks.
#![cfg_attr(not(feature = "plot"), allow(rustdoc::broken_intra_doc_links))]

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
