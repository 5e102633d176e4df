//! Criterion benchmarks of the runtime's primitives (`cargo bench -p microbenches --bench
//! primitives`), with `tokio::spawn` as the reference:
//!
//! - `post_run/{libasync,mely}`: post an empty event to a 1-worker runtime from the bench thread
//!   and wait for it to run; events go out in batches of [`BATCH`] and the bench thread waits for
//!   each batch to complete (an atomic counter), so a worker that drains its queue parks and the
//!   next post wakes it, as in a real request stream. Time per event.
//! - `tokio_spawn/current_thread`: the same on tokio: `tokio::spawn` of an empty task (handle
//!   dropped) inside a current-thread runtime, batches of [`BATCH`], each awaited by counting.
//! - `color_map/core_of`: one color-to-core map lookup ([`Handle::core_of`]).
//! - `push_pop/{libasync,mely}`: the queue alone, no worker thread: [`Model::post`] (the real
//!   post path: map read, core lock, re-read, enqueue) then [`Model::run_batch`] (a real
//!   worker's pop and run of that one event). `run_batch` builds the worker's state each call
//!   (two handler tables, a few hundred ns), which is included.
//! - `push/{libasync,mely}`: [`Model::post`] alone, [`BATCH`] events at a time onto a queue
//!   drained (untimed) between batches: the post path without the pop.
//! - `steal/{libasync,mely}`: one successful steal ([`Model::steal`], the real `try_steal`,
//!   policy `base`) by worker 1 from core 0, which holds [`STEAL_QUEUED`] events of each of two
//!   colors; between measured steals (untimed) the stolen color is placed back on core 0.
//!
//! Every event closure captures a leaked `&'static` counter, so reference counting is not what
//! is measured. Measurement is short (2 s per benchmark) so the whole run takes about a minute.

use colored_runtime::model::Model;
use colored_runtime::{Color, Handle, HandlerSpec, QueueKind, Runtime, RuntimeConfig, StealPolicy};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Events posted before the bench thread waits for them to run.
const BATCH: u64 = 1000;
/// Events of each of the two colors queued on the victim in `steal`.
const STEAL_QUEUED: u32 = 8;

const QUEUES: [QueueKind; 2] = [QueueKind::Libasync, QueueKind::Mely];

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(30)
}

/// Wait until `done` reaches `target`, yielding the CPU (2 cores: the worker needs one).
fn wait_for(done: &AtomicU64, target: u64) {
    let mut spins = 0u32;
    while done.load(Ordering::Acquire) < target {
        spins += 1;
        if spins % 64 == 0 {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

fn post_run(c: &mut Criterion) {
    let mut g = c.benchmark_group("post_run");
    g.throughput(Throughput::Elements(1));
    for queue in QUEUES {
        let rt = Runtime::new(RuntimeConfig {
            workers: 1,
            queue,
            stealing: StealPolicy::Off,
            ..Default::default()
        })
        .expect("1-worker runtime");
        let h = rt.register(HandlerSpec::new("empty"));
        let done: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
        g.bench_function(queue.as_str(), |b| {
            b.iter_custom(|iters| {
                let mut target = done.load(Ordering::Acquire);
                let start = Instant::now();
                let mut left = iters;
                while left > 0 {
                    let n = left.min(BATCH);
                    for _ in 0..n {
                        rt.post(Color(1), h, move |_| {
                            done.fetch_add(1, Ordering::Release);
                        })
                        .expect("runtime is live");
                    }
                    target += n;
                    left -= n;
                    wait_for(done, target);
                }
                start.elapsed()
            })
        });
        let stats = rt.shutdown();
        assert_eq!(stats.total.panics, 0);
    }
    g.finish();
}

fn tokio_spawn(c: &mut Criterion) {
    let mut g = c.benchmark_group("tokio_spawn");
    g.throughput(Throughput::Elements(1));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    let done: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
    g.bench_function("current_thread", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async move {
                let mut target = done.load(Ordering::Acquire);
                let start = Instant::now();
                let mut left = iters;
                while left > 0 {
                    let n = left.min(BATCH);
                    for _ in 0..n {
                        drop(tokio::spawn(async move {
                            done.fetch_add(1, Ordering::Release);
                        }));
                    }
                    target += n;
                    left -= n;
                    while done.load(Ordering::Acquire) < target {
                        tokio::task::yield_now().await;
                    }
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

fn color_map(c: &mut Criterion) {
    let mut g = c.benchmark_group("color_map");
    g.throughput(Throughput::Elements(1));
    let m = Model::new(RuntimeConfig {
        workers: 2,
        pin: false,
        ..Default::default()
    })
    .expect("model");
    let h: &Handle = m.handle();
    let mut color = 0u32;
    g.bench_function("core_of", |b| {
        b.iter(|| {
            // Walk the map with a large odd stride so lookups do not all hit one cache line.
            color = color.wrapping_add(40_503);
            black_box(h.core_of(Color(black_box(color))))
        })
    });
    g.finish();
}

fn push_pop(c: &mut Criterion) {
    let mut g = c.benchmark_group("push_pop");
    g.throughput(Throughput::Elements(1));
    for queue in QUEUES {
        let m = Model::new(RuntimeConfig {
            workers: 1,
            queue,
            pin: false,
            ..Default::default()
        })
        .expect("model");
        let h = m.register("empty");
        let done: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
        g.bench_function(queue.as_str(), |b| {
            b.iter(|| {
                m.post(Color(1), h, move |_| {
                    done.fetch_add(1, Ordering::Relaxed);
                })
                .expect("model is live");
                assert!(m.run_batch(0));
            })
        });
        assert_eq!(m.queued(0), 0);
        assert!(done.load(Ordering::Relaxed) > 0);
    }
    g.finish();
}

fn push(c: &mut Criterion) {
    let mut g = c.benchmark_group("push");
    g.throughput(Throughput::Elements(1));
    for queue in QUEUES {
        let m = Model::new(RuntimeConfig {
            workers: 1,
            queue,
            pin: false,
            ..Default::default()
        })
        .expect("model");
        let h = m.register("empty");
        let done: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
        g.bench_function(queue.as_str(), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let n = left.min(BATCH);
                    let start = Instant::now();
                    for _ in 0..n {
                        m.post(Color(1), h, move |_| {
                            done.fetch_add(1, Ordering::Relaxed);
                        })
                        .expect("model is live");
                    }
                    total += start.elapsed();
                    left -= n;
                    // Drain (untimed) so the queue does not grow across batches.
                    while m.run_batch(0) {}
                }
                total
            })
        });
        assert_eq!(m.queued(0), 0);
    }
    g.finish();
}

fn steal(c: &mut Criterion) {
    let mut g = c.benchmark_group("steal");
    g.throughput(Throughput::Elements(1));
    for queue in QUEUES {
        let m = Model::new(RuntimeConfig {
            workers: 2,
            queue,
            stealing: StealPolicy::Base,
            pin: false,
            ..Default::default()
        })
        .expect("model");
        let h = m.register("never-run");
        // Colors 2 and 4 start on core 0 (the map starts at color % workers).
        let colors = [Color(2), Color(4)];
        for color in colors {
            for _ in 0..STEAL_QUEUED {
                m.post(color, h, |_| {}).expect("model is live");
            }
        }
        g.bench_function(queue.as_str(), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let stole = m.steal(1);
                    total += start.elapsed();
                    assert!(stole, "core 0 holds two colors");
                    // Put the imbalance back (untimed): whichever color moved returns to core 0.
                    for color in colors {
                        if m.core_of(color) == 1 {
                            m.handle().place(color, 0).expect("nothing runs in a model");
                        }
                    }
                }
                total
            })
        });
        assert_eq!((m.queued(0), m.queued(1)), (2 * STEAL_QUEUED as usize, 0));
    }
    g.finish();
}

fn print_env() {
    let env = microbenches::env::detect();
    println!(
        "primitives: {} | {:.2} GHz cycle counter | batch {BATCH}, steal queue 2x{STEAL_QUEUED}",
        env.summary(),
        env.cycles_per_sec.unwrap_or(0.0) / 1e9
    );
}

fn benches(c: &mut Criterion) {
    print_env();
    post_run(c);
    tokio_spawn(c);
    color_map(c);
    push_pop(c);
    push(c);
    steal(c);
}

criterion_group! {
    name = primitives;
    config = config();
    targets = benches
}
criterion_main!(primitives);
