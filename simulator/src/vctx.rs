//! Simulated events: what each one costs and what it does, as data the engine can time.
//!
//! A simulated event is a [`Job`]: its work in cycles (calibrated kernels, spins), the data it
//! touches (for the cache model), and a continuation, [`Job::then`], that runs at the event's
//! virtual *end* with an [`Effects`]: there it changes the workload's state (counters of the
//! fork/join), places colors and posts children. A real event's effects follow its work the
//! same way (a B posts the next B after touching its slice; an unbalanced event decrements the
//! round's counter after spinning), so the order of effects in virtual time is the order the
//! threaded runtime would give them.
//!
//! Each job travels through the runtime as the closure of a real event (posted by the engine
//! through the real paths: the local buffer and its flush, or `Shared::push` to another core).
//! When the runtime runs the closure (`SimRuntime::run_next`), the closure hands its job to the
//! engine through a thread-local record. Every post is tagged with a sequence number per (color,
//! poster) and the tag is checked when the event starts: events one core posted to one color
//! run in the order posted and none is lost (the runtime's FIFO guarantee).

use super::cache::Use;
use colored_runtime::stepped::SimRuntime;
use colored_runtime::{Color, Ctx, Handle, HandlerId, PlaceError};
use std::cell::RefCell;
use std::collections::HashMap;

/// The poster of events posted from outside the runtime.
pub const EXTERNAL: usize = usize::MAX;

/// One data access of an event.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Access {
    pub array: u64,
    pub offset: u64,
    pub bytes: u64,
    pub how: Use,
}

/// An event's continuation, run at its virtual end.
pub type Then = Box<dyn FnOnce(&mut Effects<'_>) + Send>;

/// A simulated event (see the module doc).
pub struct Job {
    /// Cycles of computation on cache-resident data.
    pub work: f64,
    pub accesses: Vec<Access>,
    /// Lines of shared atomics it read-modify-writes (the benchmarks' join counters), by id:
    /// each costs a cache-line transfer when another core wrote it last.
    pub shared: Vec<u64>,
    pub then: Option<Then>,
}

impl Job {
    /// An event computing for `cycles` cycles.
    pub fn work(cycles: f64) -> Job {
        Job {
            work: cycles,
            accesses: Vec::new(),
            shared: Vec::new(),
            then: None,
        }
    }

    /// It also uses `bytes` bytes of array `array` from `offset`.
    pub fn access(mut self, array: u64, offset: u64, bytes: u64, how: Use) -> Job {
        self.accesses.push(Access {
            array,
            offset,
            bytes,
            how,
        });
        self
    }

    /// It also read-modify-writes the shared atomic `line` (an id the workload chooses).
    pub fn shared(mut self, line: u64) -> Job {
        self.shared.push(line);
        self
    }

    /// What it does when its work is done.
    pub fn then(mut self, f: impl FnOnce(&mut Effects<'_>) + Send + 'static) -> Job {
        self.then = Some(Box::new(f));
        self
    }
}

/// A post an event made, sent by the engine after the event's work.
pub struct Held {
    pub color: Color,
    pub handler: HandlerId,
    pub job: Job,
}

/// What an event's continuation can do: post, place colors, add work (each move of a color
/// costs the calibrated `place`).
pub struct Effects<'a> {
    handle: &'a Handle,
    core: usize,
    color: Color,
    place_cost: f64,
    pub(crate) posts: Vec<Held>,
    pub(crate) work: f64,
    pub(crate) errors: Vec<String>,
    /// Colors that could not move yet because they were running (and where they go).
    pub(crate) unplaced: Vec<(Color, usize)>,
}

impl<'a> Effects<'a> {
    pub(crate) fn new(handle: &'a Handle, core: usize, color: Color, place_cost: f64) -> Self {
        Effects {
            handle,
            core,
            color,
            place_cost,
            posts: Vec::new(),
            work: 0.0,
            errors: Vec::new(),
            unplaced: Vec::new(),
        }
    }

    /// The core the event ran on.
    pub fn core(&self) -> usize {
        self.core
    }

    /// The event's color.
    pub fn color(&self) -> Color {
        self.color
    }

    /// Post a child (libasync-smp's `cpucb`), sent in order after this continuation.
    pub fn post(&mut self, color: Color, handler: HandlerId, job: Job) {
        self.posts.push(Held {
            color,
            handler,
            job,
        });
    }

    /// More computation after the event's declared work.
    pub fn work(&mut self, cycles: f64) {
        self.work += cycles;
    }

    /// Move `colors` to `core` (`Handle::place_all`), charging each attempt. A color whose
    /// batch is still running elsewhere (its last event just posted, say, the next fork) cannot
    /// move yet: as `place_all` retries until it can, the engine retries it, and the event's
    /// posts wait until every color moved.
    pub fn place_all(&mut self, colors: impl IntoIterator<Item = Color>, core: usize) {
        for c in colors {
            if !self.place(c, core) {
                self.unplaced.push((c, core));
            }
        }
    }

    /// One attempt to move `color` to `core`; false while it is running elsewhere.
    pub(crate) fn place(&mut self, color: Color, core: usize) -> bool {
        if self.handle.core_of(color) == core {
            return true;
        }
        self.work += self.place_cost;
        match self.handle.place(color, core) {
            Ok(()) => true,
            Err(PlaceError::Running(_)) => false,
            Err(e) => {
                self.errors.push(e.to_string());
                true
            }
        }
    }
}

#[derive(Default)]
struct Recorder {
    /// True while an engine runs on this thread.
    open: bool,
    /// The core running the event and the virtual cycle it started at (for messages).
    core: usize,
    now: u64,
    /// The job of the event just run, and the core that posted it (`None`: from outside).
    job: Option<(Job, Option<usize>)>,
    next_seq: HashMap<(u32, usize), u64>,
    last_started: HashMap<(u32, usize), u64>,
    violations: Vec<String>,
}

thread_local! {
    static REC: RefCell<Recorder> = RefCell::new(Recorder::default());
}

fn with<R>(f: impl FnOnce(&mut Recorder) -> R) -> R {
    REC.with(|r| {
        let mut r = r.borrow_mut();
        assert!(r.open, "a simulated event ran outside the simulator");
        f(&mut r)
    })
}

/// Open the record for an engine on this thread (clears what a previous engine left).
pub(crate) fn open() {
    REC.with(|r| {
        *r.borrow_mut() = Recorder {
            open: true,
            ..Default::default()
        }
    });
}

/// Close it; returns the FIFO violations seen.
pub(crate) fn close() -> Vec<String> {
    REC.with(|r| std::mem::take(&mut *r.borrow_mut()).violations)
}

/// The engine is about to run an event on `core` at cycle `now`.
pub(crate) fn begin(core: usize, now: u64) {
    with(|r| {
        r.core = core;
        r.now = now;
        r.job = None;
    });
}

/// The job of the event just run and the core that posted it (`None` from outside the
/// runtime); `None` for a closure that was not a simulated event.
pub(crate) fn end() -> Option<(Job, Option<usize>)> {
    with(|r| r.job.take())
}

/// The closure a job travels in: checks its FIFO tag and hands the job to the engine.
pub(crate) fn closure(
    color: Color,
    poster: usize,
    job: Job,
) -> impl FnOnce(&mut Ctx<'_>) + Send + 'static {
    let seq = with(|r| {
        let s = r.next_seq.entry((color.0, poster)).or_insert(0);
        *s += 1;
        *s
    });
    move |_ctx: &mut Ctx<'_>| {
        with(|r| {
            let last = r.last_started.entry((color.0, poster)).or_insert(0);
            if seq != *last + 1 {
                let from = if poster == EXTERNAL {
                    "outside".to_string()
                } else {
                    format!("core {poster}")
                };
                let msg = format!(
                    "FIFO: event {seq} of color {} posted from {from} started on core {} at cycle {} after event {}",
                    color.0, r.core, r.now, *last
                );
                r.violations.push(msg);
            }
            *last = (*last).max(seq);
            r.job = Some((job, (poster != EXTERNAL).then_some(poster)));
        })
    }
}

/// Post a workload's first event from outside the runtime.
pub fn post_external(
    rt: &SimRuntime,
    color: Color,
    handler: HandlerId,
    job: Job,
) -> anyhow::Result<()> {
    rt.handle()
        .post(color, handler, closure(color, EXTERNAL, job))?;
    Ok(())
}
