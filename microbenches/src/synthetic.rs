//! `synthetic` (libasync-smp, "library optimizations" table): callbacks of unique colors, each
//! doing a little work and registering a child callback of the same color; the colors are
//! placed so that stealing matters: every chain starts on core 0, so without stealing the other
//! workers' queues stay empty (the shared queue of `base` spreads them by construction). Four library configurations, as in the paper:
//!
//! 1. `base`: one task queue shared by all worker threads (a worker takes the first task whose
//!    color is not running elsewhere), task objects allocated from the heap;
//! 2. `per-thread-queues`: the libasync design, one queue per worker, tasks still heap-allocated
//!    (`EventStorage::Heap`);
//! 3. `free-lists`: per-thread queues and no per-task allocation. libasync-smp kept per-thread
//!    free lists of task objects; our events carry small closures inline, so posting allocates
//!    nothing at all (`EventStorage::Inline`), a step further than free lists;
//! 4. `stealing`: 3 plus libasync-smp's work stealing.

use crate::common::Outcome;
use colored_runtime::{
    tsc, Color, Ctx, EventStorage, HandlerId, HandlerSpec, QueueKind, Runtime, RuntimeConfig,
    StealPolicy,
};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Config {
    Base,
    PerThreadQueues,
    FreeLists,
    Stealing,
}

impl Config {
    pub const ALL: [Config; 4] = [
        Config::Base,
        Config::PerThreadQueues,
        Config::FreeLists,
        Config::Stealing,
    ];
    pub fn label(self) -> &'static str {
        match self {
            Config::Base => "base (one shared queue)",
            Config::PerThreadQueues => "per-thread queues",
            Config::FreeLists => "per-thread free lists (inline events)",
            Config::Stealing => "stealing",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Params {
    /// Concurrent chains (unique colors).
    pub chains: u32,
    /// Work per callback, cycles.
    pub work_cycles: u64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            chains: 256,
            work_cycles: 200,
        }
    }
}

/// Every chain starts on core 0.
fn home(_chain: u32, _workers: usize) -> usize {
    0
}

struct Chains {
    stop: AtomicBool,
    done: AtomicU64,
    work: u64,
    h: HandlerId,
}

fn step(ctx: &mut Ctx<'_>, st: &'static Chains) {
    tsc::spin_cycles(st.work);
    st.done.fetch_add(1, Ordering::Relaxed);
    if !st.stop.load(Ordering::Relaxed) {
        let c = ctx.color();
        ctx.post(c, st.h, move |ctx| step(ctx, st));
    }
}

fn run_runtime(cfg: Config, workers: usize, seconds: f64, p: &Params) -> anyhow::Result<Outcome> {
    let rt = Runtime::new(RuntimeConfig {
        workers,
        queue: QueueKind::Libasync,
        stealing: if cfg == Config::Stealing {
            StealPolicy::Base
        } else {
            StealPolicy::Off
        },
        event_storage: if cfg == Config::PerThreadQueues {
            EventStorage::Heap
        } else {
            EventStorage::Inline
        },
        ..Default::default()
    })?;
    let st: &'static Chains = Box::leak(Box::new(Chains {
        stop: AtomicBool::new(false),
        done: AtomicU64::new(0),
        work: p.work_cycles,
        h: rt.register(HandlerSpec::new("callback")),
    }));
    for c in 1..=p.chains {
        rt.handle().place(Color(c), home(c, workers))?;
    }
    let before = rt.stats();
    let start = Instant::now();
    for c in 1..=p.chains {
        rt.post(Color(c), st.h, move |ctx| step(ctx, st))?;
    }
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let events = st.done.load(Ordering::Relaxed);
    let elapsed = start.elapsed();
    st.stop.store(true, Ordering::Relaxed);
    let stats = rt.stats().since(&before);
    drop(rt);
    Ok(Outcome {
        events,
        elapsed,
        stats: Some(stats),
        llc_misses_per_event: None,
        rounds: 0,
    })
}

/// A callback of the shared-queue configuration: run with the queue and its color.
type SharedTask = Box<dyn FnOnce(&SharedQueue, u32) + Send>;
/// The queued callbacks with their colors.
type SharedFifo = VecDeque<(u32, SharedTask)>;

/// libasync-smp's original single queue, shared by every worker thread.
struct SharedQueue {
    /// The queued callbacks with their colors, and the colors running now.
    q: Mutex<(SharedFifo, Vec<u32>)>,
    cv: Condvar,
    stop: AtomicBool,
}

const NONE: u32 = u32::MAX;

impl SharedQueue {
    fn post(&self, color: u32, f: SharedTask) {
        self.q.lock().unwrap().0.push_back((color, f));
        self.cv.notify_one();
    }

    fn worker(&self, w: usize) {
        loop {
            let (color, f) = {
                let mut g = self.q.lock().unwrap();
                loop {
                    if self.stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let (queue, running) = &mut *g;
                    // First task whose color no other worker is running (keeps colors serial
                    // and FIFO per color).
                    if let Some(i) = queue.iter().position(|(c, _)| !running.contains(c)) {
                        let t = queue.remove(i).expect("index in range");
                        running[w] = t.0;
                        break t;
                    }
                    g = self
                        .cv
                        .wait_timeout(g, Duration::from_millis(10))
                        .unwrap()
                        .0;
                }
            };
            f(self, color);
            self.q.lock().unwrap().1[w] = NONE;
            self.cv.notify_one();
        }
    }
}

fn run_shared(workers: usize, seconds: f64, p: &Params) -> anyhow::Result<Outcome> {
    let sq = Arc::new(SharedQueue {
        q: Mutex::new((VecDeque::new(), vec![NONE; workers])),
        cv: Condvar::new(),
        stop: AtomicBool::new(false),
    });
    let done: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
    let work = p.work_cycles;
    fn step(sq: &SharedQueue, color: u32, done: &'static AtomicU64, work: u64) {
        tsc::spin_cycles(work);
        done.fetch_add(1, Ordering::Relaxed);
        if !sq.stop.load(Ordering::Relaxed) {
            sq.post(color, Box::new(move |sq, c| step(sq, c, done, work)));
        }
    }
    let start = Instant::now();
    for c in 1..=p.chains {
        sq.post(c, Box::new(move |sq, c| step(sq, c, done, work)));
    }
    let threads: Vec<_> = (0..workers)
        .map(|w| {
            let sq = sq.clone();
            std::thread::spawn(move || sq.worker(w))
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let events = done.load(Ordering::Relaxed);
    let elapsed = start.elapsed();
    sq.stop.store(true, Ordering::Relaxed);
    sq.cv.notify_all();
    for t in threads {
        let _ = t.join();
    }
    Ok(Outcome {
        events,
        elapsed,
        stats: None,
        llc_misses_per_event: None,
        rounds: 0,
    })
}

pub fn run(cfg: Config, workers: usize, seconds: f64, p: &Params) -> anyhow::Result<Outcome> {
    match cfg {
        Config::Base => run_shared(workers, seconds, p),
        _ => run_runtime(cfg, workers, seconds, p),
    }
}
