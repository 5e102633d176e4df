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
//! - Four options say where this runtime departs from the papers' runtimes, each with the
//!   papers' choice available: [`IdleMode`] (bounded search or spinning), [`LockKind`]
//!   (backoff or test-and-set), [`RuntimeConfig::post_batch`] (buffered or one lock per post),
//!   [`StealWalk`] (libasync's walk from the chosen node or from the head). [`Fidelity`] sets
//!   the four at once: `Ours` (the default) or `Paper`.
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
//! - Tracing: set [`RuntimeConfig::trace`] ([`TraceSpec`]: a ring or a time window per worker)
//!   and stop with [`Runtime::shutdown_traced`] for a `colored_trace::Trace` of what each core
//!   did (event runs, steal attempts, idle transitions); off, each record point costs one branch.
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
//! ## Layers (for contributors)
//!
//! The modules form layers a reader can take bottom-up: a module uses only modules of its own
//! layer or of lower ones, and no two modules use each other (`tests/layers.rs` reads the
//! sources and checks both against this table, which it parses).
//!
//! | layer | modules | what they hold |
//! |---|---|---|
//! | 0 foundations | `loom`, `tsc`, `color`, `config`, `error`, `topology`, `handler`, `stats`, `idle` | the loom facade over atomics and locks; the cycle counter; colors and the color-to-core map (64 Ki slots) with its invariant; configuration as plain data; the error types; the machine's caches and CPUs; handlers and their profiles; counters; the idle protocol's counts and rules |
//! | 1 events | `event`, `timer`, `reactor`, `blocking` | an event (handler, color, costs, a type-erased task); the timer heap; the reactor's state (mio poll, sources, timers); the blocking helper pool |
//! | 2 queue designs | `queue`, `queue::libasync`, `queue::mely` | the two designs behind one trait: libasync-smp's one list per core, Mely's color-queues, core-queue and time-left stealing-queue |
//! | 3 core | `core` | a core's queue behind its lock and its published state, touched only through the owner's, a thief's and a poster's handles; the sleep states |
//! | 4 shared state | `shared` | what all threads share (private fields, role accessors), the post protocol, wake-ups, shutdown; the [`Handle`] type |
//! | 5 event context | `ctx`, `cell`, `steal` | the context an event runs with, and the makers of events; [`ColorCell`]; the stealing round and its pure policy decisions |
//! | 6 worker | `worker`, `worker::machine`, `epoll` | a worker's loop; the worker's step machine (the idle protocol's steps and decisions, driven by the threads, the loom model and the simulator); the reactor's Epoll event and I/O registration |
//! | 7 runtime and handle | `handle`, `runtime`, `args`, `model`, `stepped`, `lib` | every [`Handle`] method; start-up (pin, then allocate) and shutdown; the runtime's command-line options (feature `clap`); the step-by-step drivers (the loom model, the simulator's seam) |
//!
//! Two places where a type would otherwise pull a higher layer down: a task's closure takes a
//! [`Ctx`] (layer 5) but events (layer 1) hold tasks, so `event` erases the closure's argument
//! and `ctx` holds the typed makers and runner; a source's callback takes a `Ctx` too, so the
//! reactor stores a task maker made by `epoll`.

#![warn(missing_docs)]

#[cfg(feature = "clap")]
pub mod args;
mod blocking;
mod cell;
pub mod color;
mod config;
mod core;
mod ctx;
mod epoll;
mod error;
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
mod stats;
mod steal;
#[doc(hidden)]
#[cfg(not(loom))]
pub mod stepped;
mod timer;
pub mod topology;
pub mod tsc;
mod worker;

pub use cell::ColorCell;
pub use color::{Color, MAP_SLOTS};
pub use config::{
    BuildError, EventStorage, Fidelity, FidelityOptions, IdleMode, LockKind, QueueKind,
    RuntimeConfig, StealAmount, StealPolicy, StealWalk, TraceSpec, MAX_POST_BATCH,
};
pub use ctx::Ctx;
pub use error::{PlaceError, PostError};
pub use handle::Handle;
pub use handler::{HandlerId, HandlerSpec, MAX_HANDLERS};
pub use reactor::{IoToken, Readiness};
pub use runtime::Runtime;
pub use stats::{Counters, HandlerStats, RuntimeStats, Unpinned};
