//! Cost of one record: `cargo bench -p colored-trace --bench record`.
//!
//! Cases: tracing off (the `None` branch), a window keeping the record, a window refusing it
//! (outside: one comparison), a full window dropping it, and a full ring overwriting its oldest.
//! Each iteration records one run with a new start time; buffers are allocated outside the
//! timed loop.

use colored_trace::{Bound, Record, Recorder, TraceBuf, NO_SEQ};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::time::{Duration, Instant};

fn run(start: u64) -> Record {
    Record::Run {
        start,
        end: start + 100,
        color: (start % 64) as u32,
        handler: 3,
        seq: NO_SEQ,
    }
}

/// Time `iters` records into `rec`, starting at cycle `t0`.
fn time(mut rec: Recorder, iters: u64, t0: u64) -> Duration {
    let start = Instant::now();
    for i in 0..iters {
        rec.record(run(black_box(t0 + i)));
    }
    let d = start.elapsed();
    black_box(rec.take());
    d
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("record");
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    g.bench_function("off", |b| {
        b.iter_custom(|iters| time(Recorder::off(), iters, 0))
    });
    g.bench_function("window_kept", |b| {
        b.iter_custom(|iters| {
            let bound = Bound::Window {
                from: 0,
                len: u64::MAX,
                capacity: iters as usize,
            };
            time(Recorder::on(TraceBuf::new(0, bound)), iters, 0)
        })
    });
    g.bench_function("window_outside", |b| {
        b.iter_custom(|iters| {
            let bound = Bound::Window {
                from: 1 << 62,
                len: 1000,
                capacity: 1024,
            };
            time(Recorder::on(TraceBuf::new(0, bound)), iters, 0)
        })
    });
    g.bench_function("window_full", |b| {
        b.iter_custom(|iters| {
            let bound = Bound::Window {
                from: 0,
                len: u64::MAX,
                capacity: 0,
            };
            time(Recorder::on(TraceBuf::new(0, bound)), iters, 0)
        })
    });
    g.bench_function("ring_full", |b| {
        b.iter_custom(|iters| {
            let mut buf = TraceBuf::new(0, Bound::Ring { capacity: 4096 });
            for t in 0..4096 {
                buf.push(run(t));
            }
            time(Recorder::on(buf), iters, 4096)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
