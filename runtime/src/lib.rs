//! # colored-runtime
//!
//! An event runtime for multicore machines in the style of libasync-smp (Zeldovich et al.,
//! USENIX ATC 2003) and Mely (Gaud et al., ICDCS 2010). Every event has a **color**: events of
//! one color never run at the same time and run in the order one thread posted them; events of
//! different colors may run in parallel on different cores.
//!
//! - One pinned worker per core, each owning a core queue; a 64 Ki-entry color-to-core map
//!   routes each color to a core ([`color`]).
//! - Two queue designs behind one trait ([`queue`]): `libasync` (one FIFO per core) and `mely`
//!   (color-queues chained in a core-queue, batches per color, a time-left stealing-queue).
//! - Work stealing policies `off`, `base`, `time-left`, `penalty`, `locality`, `all`
//!   ([`StealPolicy`], `steal`).
//! - A mio reactor run as the color-0 "Epoll" event, timers, a blocking-I/O pool whose
//!   completions come back as colored events, panic isolation, clean shutdown.
//! - Per-worker counters on their own cache lines and automatic per-handler profiling
//!   ([`RuntimeStats`]).
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

mod blocking;
mod cell;
pub mod color;
mod config;
mod ctx;
mod event;
mod handler;
mod loom;
#[doc(hidden)]
pub mod model;
pub mod queue;
mod reactor;
mod runtime;
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
pub use handler::{HandlerId, HandlerSpec, MAX_HANDLERS};
pub use reactor::{IoToken, Readiness};
pub use runtime::{Handle, PlaceError, PostError, Runtime};
pub use stats::{Counters, HandlerStats, RuntimeStats};
