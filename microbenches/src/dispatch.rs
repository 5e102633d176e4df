//! `dispatch`: the cost of posting and running one event.
//!
//! A generator event posts rounds of [`ROUND`] empty events (over `colors` colors in rotation;
//! 64 by default, so most color-queues hold one event: Mely's worst case of short-lived colors;
//! `--colors 1` lets Mely batch) and re-posts itself, keeping at most [`WINDOW`] events outstanding; each event
//! only counts itself. After `seconds`, the generator stops, the outstanding events drain, and
//! `ns_per_event` = elapsed time / events run.
//!
//! - `local` (1 worker): generator and events on the same worker: post + run on one core.
//! - `cross` (2+ workers): the generator runs on worker 0 and posts to colors owned by worker 1:
//!   post on one core, run on another (remote lock, wake-ups, cache-line transfers).
//!
//! tokio does the same work with `tokio::spawn` of empty tasks (JoinHandles dropped): on a
//! current-thread runtime for `local`, on a multi-thread runtime with `workers` threads for
//! `cross`.
//!
//! The floor ([`run_floor`]): the same generator and events as boxed closures in a plain
//! `VecDeque` on one thread, pushed and popped with no lock, no color and no runtime: what a
//! post and a run cost at the least on this machine. Every run reports it beside the runtimes,
//! measured in the same invocation, and each runtime's ratio to it.

use crate::common::Setup;
use colored_runtime::{Color, Ctx, HandlerId, HandlerSpec, Runtime};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub const ROUND: u64 = 64;
pub const WINDOW: u64 = 8192;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Local,
    Cross,
}

pub struct Outcome {
    pub events: u64,
    pub elapsed: Duration,
    pub stats: Option<colored_runtime::RuntimeStats>,
    /// What the workers recorded, when the setup traced the run.
    pub trace: Option<colored_trace::Trace>,
}

impl Outcome {
    pub fn ns_per_event(&self) -> f64 {
        self.elapsed.as_nanos() as f64 / self.events.max(1) as f64
    }
}

struct Gen {
    done: AtomicU64,
    posted: AtomicU64,
    stop: AtomicBool,
    stopped: AtomicBool,
    ev: HandlerId,
    gen: HandlerId,
    gen_color: Color,
    first_color: u32,
    stride: u32,
    colors: u64,
}

fn generate(ctx: &mut Ctx<'_>, g: &'static Gen) {
    if g.stop.load(Ordering::Relaxed) {
        g.stopped.store(true, Ordering::Release);
        return;
    }
    let posted = g.posted.load(Ordering::Relaxed);
    if posted - g.done.load(Ordering::Relaxed) < WINDOW {
        for i in 0..ROUND {
            let color = Color(g.first_color + ((posted + i) % g.colors) as u32 * g.stride);
            ctx.post(color, g.ev, move |_| {
                g.done.fetch_add(1, Ordering::Relaxed);
            });
        }
        g.posted.store(posted + ROUND, Ordering::Relaxed);
    }
    let (c, h) = (g.gen_color, g.gen);
    ctx.post(c, h, move |ctx| generate(ctx, g));
}

/// Run the colored runtime's dispatch benchmark.
pub fn run_colored(setup: &Setup, seconds: f64, colors: u64) -> anyhow::Result<Outcome> {
    let workers = setup.workers;
    let rt = Runtime::new(setup.config())?;
    let mode = if workers == 1 {
        Mode::Local
    } else {
        Mode::Cross
    };
    // Colors c map to core c % workers: the generator's color 0 is on core 0; events go to
    // colors on core 0 (local) or core 1 (cross).
    let (first_color, stride) = match mode {
        Mode::Local => (workers as u32, workers as u32),
        Mode::Cross => (1, workers as u32),
    };
    // Leaked (a few bytes per run) so event closures capture a plain reference, as the tokio
    // side does: the benchmark then measures the runtimes, not reference counting.
    let g: &'static Gen = Box::leak(Box::new(Gen {
        done: AtomicU64::new(0),
        posted: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        stopped: AtomicBool::new(false),
        ev: rt.register(HandlerSpec::new("event")),
        gen: rt.register(HandlerSpec::new("generator")),
        gen_color: Color(0),
        first_color,
        stride,
        colors: colors.max(1),
    }));
    let before = rt.stats();
    let start = Instant::now();
    rt.post(g.gen_color, g.gen, move |ctx| generate(ctx, g))?;
    std::thread::sleep(Duration::from_secs_f64(seconds));
    g.stop.store(true, Ordering::Relaxed);
    while !g.stopped.load(Ordering::Acquire)
        || g.done.load(Ordering::Relaxed) < g.posted.load(Ordering::Relaxed)
    {
        std::thread::yield_now();
    }
    let elapsed = start.elapsed();
    let stats = rt.stats().since(&before);
    let (_, trace) = rt.shutdown_traced();
    Ok(Outcome {
        events: g.done.load(Ordering::Relaxed),
        elapsed,
        stats: Some(stats),
        trace,
    })
}

/// A boxed event of the floor: it may push more onto the queue.
type FloorTask = Box<dyn FnOnce(&mut FloorQueue)>;

/// The floor's queue and the generator's bookkeeping (one thread: plain integers).
struct FloorQueue {
    fifo: std::collections::VecDeque<FloorTask>,
    done: u64,
    posted: u64,
    stop: bool,
}

fn floor_generate(q: &mut FloorQueue) {
    if q.stop {
        return;
    }
    if q.posted - q.done < WINDOW {
        for _ in 0..ROUND {
            q.fifo.push_back(Box::new(|q: &mut FloorQueue| q.done += 1));
        }
        q.posted += ROUND;
    }
    q.fifo.push_back(Box::new(floor_generate));
}

/// The floor: the local benchmark's work as boxed closures in a `VecDeque` on this thread.
pub fn run_floor(seconds: f64) -> Outcome {
    let mut q = FloorQueue {
        fifo: std::collections::VecDeque::with_capacity(WINDOW as usize * 2),
        done: 0,
        posted: 0,
        stop: false,
    };
    q.fifo.push_back(Box::new(floor_generate));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let mut n = 0u32;
    while let Some(task) = q.fifo.pop_front() {
        task(&mut q);
        n = n.wrapping_add(1);
        // Read the clock once per 4096 events, as the runtimes' generator sees `stop` late too.
        if n % 4096 == 0 && !q.stop && Instant::now() >= deadline {
            q.stop = true;
        }
    }
    Outcome {
        events: q.done,
        elapsed: start.elapsed(),
        stats: None,
        trace: None,
    }
}

/// Run the same work on tokio.
pub fn run_tokio(workers: usize, seconds: f64) -> anyhow::Result<Outcome> {
    let rt = if workers == 1 {
        tokio::runtime::Builder::new_current_thread().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .build()?
    };
    let done: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
    let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    let start = Instant::now();
    let (d, s) = (done, stop);
    let posted = rt.block_on(async move {
        let gen = tokio::spawn(async move {
            let mut posted = 0u64;
            while !s.load(Ordering::Relaxed) {
                if posted - d.load(Ordering::Relaxed) < WINDOW {
                    for _ in 0..ROUND {
                        drop(tokio::spawn(async move {
                            d.fetch_add(1, Ordering::Relaxed);
                        }));
                    }
                    posted += ROUND;
                }
                tokio::task::yield_now().await;
            }
            posted
        });
        let stopper = tokio::task::spawn_blocking({
            move || {
                std::thread::sleep(Duration::from_secs_f64(seconds));
                stop.store(true, Ordering::Relaxed);
            }
        });
        let posted = gen.await.expect("generator");
        let _ = stopper.await;
        while done.load(Ordering::Relaxed) < posted {
            tokio::task::yield_now().await;
        }
        posted
    });
    let elapsed = start.elapsed();
    drop(rt);
    Ok(Outcome {
        events: posted,
        elapsed,
        stats: None,
        trace: None,
    })
}
