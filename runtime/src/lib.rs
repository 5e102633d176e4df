//! # colored-runtime
//!
//! An event runtime for multicore machines in the style of libasync-smp (Zeldovich et al.,
//! USENIX ATC 2003) and Mely (Gaud et al., ICDCS 2010). Every event has a **color**: events of
//! one color never run at the same time and run in the order one thread posted them; events of
//! different colors may run in parallel on different cores. This documentation is the API
//! reference (`cargo doc -p colored-runtime --open`); `examples/` holds two small servers.
//!
//! ## Using it
//! - Build a [`Runtime`] from a [`RuntimeConfig`] (plain data: workers, [`QueueKind`],
//!   [`StealPolicy`], [`StealAmount`], batch size, pinning). A [`Handle`] (cheap to clone, any
//!   thread) posts events and registers everything else.
//! - Register each kind of event once as a handler ([`HandlerSpec`]: a name, an optional cost
//!   annotation in cycles, a stealing penalty), then post closures with a color:
//!   [`Handle::post`] from any thread, [`Ctx::post`] from inside an event (libasync-smp's
//!   `cpucb`).
//! - State that belongs to one color lives in a [`ColorCell`]: no lock, and using it from an
//!   event of another color panics.
//! - I/O: [`Handle::register_io`] turns a mio source's readiness into events of its color (the
//!   reactor is itself an event of color 0, as in libasync-smp and SWS). Timers:
//!   [`Handle::post_after`], [`Handle::post_at`]. Blocking work: [`Handle::spawn_blocking`],
//!   whose completion comes back as an event of the caller's color.
//! - [`Handle::stats`] / [`RuntimeStats`]: per-worker counters (events, steals, steal cost,
//!   stolen time, lock time, busy/idle, panics, poll errors) and per-handler profiles.
//!
//! ```
//! use colored_runtime::{Color, HandlerSpec, Runtime, RuntimeConfig};
//! use std::sync::mpsc;
//!
//! let rt = Runtime::new(RuntimeConfig { workers: 2, ..Default::default() }).unwrap();
//! let hello = rt.register(HandlerSpec::new("hello"));
//! let (tx, rx) = mpsc::channel();
//! rt.post(Color(7), hello, move |ctx| tx.send(ctx.color()).unwrap()).unwrap();
//! assert_eq!(rx.recv().unwrap(), Color(7));
//! ```
//!
//! ## Where each concept lives (for contributors)
//! - `color`: colors and the color-to-core map (64 Ki slots), with the map's invariant.
//! - `core`: a core's queue and published state, and the only three ways to touch them: the
//!   owning worker's `Owner`, a thief's `Stealer`, a poster's `Poster`.
//! - `queue`: the two designs behind one trait (`queue/libasync`: one list per core, as
//!   libasync-smp; `queue/mely`: color-queues, a core-queue and a time-left stealing-queue).
//! - `shared`: the state all threads share and the post protocol; `handle`: every [`Handle`]
//!   method; `runtime`: start-up (pin, then allocate) and shutdown.
//! - `worker`: a worker's loop; `idle`: which idle workers search, when they sleep, who wakes
//!   them; `steal`: the core set, the steal loop, the time-left threshold.
//! - `reactor`, `timer`, `blocking`: I/O, timers, the helper pool. `handler`, `stats`, `tsc`,
//!   `topology`, `cell`, `ctx`, `event`: what their names say. `loom`: the facade over atomics
//!   and locks that lets the protocol run under loom (`tests/loom.rs`).

#![warn(missing_docs)]

#[cfg(feature = "clap")]
pub mod args;
mod blocking;
mod cell;
pub mod color;
mod config;
mod core;
mod ctx;
mod event;
mod handle;
mod handler;
mod idle;
mod loom;
#[doc(hidden)]
pub mod model;
mod queue;
mod reactor;
mod runtime;
mod shared;
#[doc(hidden)]
#[cfg(not(loom))]
pub mod sim;
mod stats;
mod steal;
mod timer;
pub mod topology;
pub mod tsc;
mod worker;

pub use cell::ColorCell;
pub use color::{Color, MAP_SLOTS};
pub use config::{BuildError, EventStorage, QueueKind, RuntimeConfig, StealAmount, StealPolicy};
pub use ctx::Ctx;
pub use handle::{Handle, PlaceError, PostError};
pub use handler::{HandlerId, HandlerSpec, MAX_HANDLERS};
pub use reactor::{IoToken, Readiness};
pub use runtime::Runtime;
pub use stats::{Counters, HandlerStats, RuntimeStats, Unpinned};
