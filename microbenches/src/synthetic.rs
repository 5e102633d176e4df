//! `synthetic` (libasync-smp, "library optimizations" table): callbacks of unique colors, each
//! doing a little work and registering a child callback of the same color; the colors are
//! placed so that stealing matters: every chain starts on core 0, so without stealing the other
//! workers' queues stay empty (the shared queue of `base` spreads them by construction). Four library configurations, as in the paper:
//!
//! 1. `base`: one task queue shared by all worker threads behind one spin lock, as libasync-smp's
//!    (a worker takes the first task whose color is not running elsewhere), task objects
//!    allocated from the heap;
//! 2. `per-thread-queues`: the libasync design, one queue per worker, tasks still heap-allocated
//!    (`EventStorage::Heap`);
//! 3. `free-lists`: per-thread queues and no per-task allocation. libasync-smp kept per-thread
//!    free lists of task objects; our events carry small closures inline, so posting allocates
//!    nothing at all (`EventStorage::Inline`), a step further than free lists;
//! 4. `stealing`: 3 plus libasync-smp's work stealing.

use crate::common::Outcome;
use colored_runtime::{
    tsc, Color, Ctx, EventStorage, FidelityOptions, HandlerId, HandlerSpec, QueueKind, Runtime,
    RuntimeConfig, StealPolicy,
};
use crossbeam_utils::Backoff;
pub use microbench_defs::synthetic::Config;
use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

fn run_runtime(
    cfg: Config,
    workers: usize,
    seconds: f64,
    p: &Params,
    fidelity: FidelityOptions,
) -> anyhow::Result<Outcome> {
    let mut rcfg = RuntimeConfig {
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
    };
    fidelity.apply(&mut rcfg);
    let rt = Runtime::new(rcfg)?;
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
        extra: Default::default(),
        trace: None,
    })
}

/// A callback of the shared-queue configuration: run with the queue and its color.
type SharedTask = Box<dyn FnOnce(&SharedQueue, u32) + Send>;
/// The queued callbacks with their colors.
type SharedFifo = VecDeque<(u32, SharedTask)>;

/// A test-and-test-and-set spin lock, as libasync-smp's queue ("uses spin locks internally"):
/// a waiter spins on a plain load with exponential backoff and yields the CPU once the backoff
/// is exhausted (so on an oversubscribed machine a preempted holder gets its CPU back); no
/// thread ever sleeps in the kernel, and unlocking never wakes anyone. An earlier version used a
/// `Mutex` and a `Condvar` notified on every post: that measured the futex, not the queue.
struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is only reached through a `SpinGuard`, and at most one guard exists at a
// time (see `lock`), so sharing the lock between threads shares `T` only by moving access
// from one thread to the next, which `T: Send` allows.
unsafe impl<T: Send> Sync for SpinLock<T> {}

struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
}

impl<T> SpinLock<T> {
    fn new(value: T) -> Self {
        SpinLock {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// The guard is handed out only to the thread whose swap moved `locked` from false to true
    /// (Acquire); its drop stores false (Release), so holders follow each other and each sees
    /// what the previous one wrote.
    fn lock(&self) -> SpinGuard<'_, T> {
        let backoff = Backoff::new();
        while self.locked.swap(true, Ordering::Acquire) {
            while self.locked.load(Ordering::Relaxed) {
                backoff.snooze();
            }
        }
        SpinGuard { lock: self }
    }
}

impl<T> std::ops::Deref for SpinGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard is the only one (see `SpinLock::lock`), so no `&mut T` exists.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> std::ops::DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: this guard is the only one and `&mut self` borrows it exclusively.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}

/// libasync-smp's original single queue, shared by every worker thread, behind one spin lock.
struct SharedQueue {
    /// The queued callbacks with their colors, and the color each worker is running.
    q: SpinLock<(SharedFifo, Vec<u32>)>,
    stop: AtomicBool,
}

const NONE: u32 = u32::MAX;

impl SharedQueue {
    fn post(&self, color: u32, f: SharedTask) {
        self.q.lock().0.push_back((color, f));
    }

    /// The first task whose color no other worker is running (keeps colors serial and FIFO per
    /// color); it becomes worker `w`'s running color.
    fn take(&self, w: usize) -> Option<(u32, SharedTask)> {
        let mut g = self.q.lock();
        let (queue, running) = &mut *g;
        let i = queue.iter().position(|(c, _)| !running.contains(c))?;
        let t = queue.remove(i).expect("index in range");
        running[w] = t.0;
        Some(t)
    }

    fn worker(&self, w: usize) {
        let idle = Backoff::new();
        while !self.stop.load(Ordering::Relaxed) {
            match self.take(w) {
                Some((color, f)) => {
                    idle.reset();
                    f(self, color);
                    self.q.lock().1[w] = NONE;
                }
                // Nothing runnable: spin, then yield, as libasync-smp's idle loop did.
                None => idle.snooze(),
            }
        }
    }
}

fn run_shared(workers: usize, seconds: f64, p: &Params) -> anyhow::Result<Outcome> {
    let sq = Arc::new(SharedQueue {
        q: SpinLock::new((VecDeque::new(), vec![NONE; workers])),
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
    for t in threads {
        let _ = t.join();
    }
    Ok(Outcome {
        events,
        elapsed,
        stats: None,
        llc_misses_per_event: None,
        rounds: 0,
        extra: Default::default(),
        trace: None,
    })
}

/// One run of `cfg`; the runtime's configurations take `fidelity`'s options (the shared-queue
/// base is not this runtime and has none).
pub fn run(
    cfg: Config,
    workers: usize,
    seconds: f64,
    p: &Params,
    fidelity: FidelityOptions,
) -> anyhow::Result<Outcome> {
    match cfg {
        Config::Base => run_shared(workers, seconds, p),
        _ => run_runtime(cfg, workers, seconds, p, fidelity),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// The shared queue never runs one color on two workers at once and runs each color's
    /// tasks in the order they were posted.
    #[test]
    fn shared_queue_keeps_colors_serial_and_ordered() {
        const COLORS: u32 = 4;
        const PER_COLOR: u32 = 500;
        let sq = Arc::new(SharedQueue {
            q: SpinLock::new((VecDeque::new(), vec![NONE; 3])),
            stop: AtomicBool::new(false),
        });
        let busy: Arc<Vec<AtomicBool>> =
            Arc::new((0..COLORS).map(|_| AtomicBool::new(false)).collect());
        let seen: Arc<Mutex<Vec<Vec<u32>>>> =
            Arc::new(Mutex::new(vec![Vec::new(); COLORS as usize]));
        let done = Arc::new(AtomicU64::new(0));
        // The workers wait on the empty queue, so every one of them races for the first tasks.
        let threads: Vec<_> = (0..3)
            .map(|w| {
                let sq = sq.clone();
                std::thread::spawn(move || sq.worker(w))
            })
            .collect();
        // Each color's tasks back to back: a queue that ignored the running colors would hand
        // consecutive tasks of one color to different workers.
        for c in 0..COLORS {
            for i in 0..PER_COLOR {
                let (busy, seen, done) = (busy.clone(), seen.clone(), done.clone());
                sq.post(
                    c,
                    Box::new(move |_, color| {
                        assert!(
                            !busy[color as usize].swap(true, Ordering::AcqRel),
                            "color {color} twice at once"
                        );
                        tsc::spin_cycles(20_000);
                        seen.lock().unwrap()[color as usize].push(i);
                        busy[color as usize].store(false, Ordering::Release);
                        done.fetch_add(1, Ordering::Relaxed);
                    }),
                );
            }
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while done.load(Ordering::Relaxed) < (COLORS * PER_COLOR) as u64 {
            assert!(Instant::now() < deadline, "tasks did not finish");
            std::thread::sleep(Duration::from_millis(5));
        }
        sq.stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().expect("a worker panicked");
        }
        for (c, order) in seen.lock().unwrap().iter().enumerate() {
            assert_eq!(
                *order,
                (0..PER_COLOR).collect::<Vec<_>>(),
                "color {c} out of order"
            );
        }
    }
}
