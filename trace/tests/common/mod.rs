//! A small deterministic three-core run, recorded through the public API, shared by the tests.

#![allow(dead_code)]

use colored_trace::{
    Bound, Record, Recorder, State, StealOutcome, Trace, TraceMeta, WindowCounters,
};

/// Cycles per microsecond of the sample's clock.
pub const RATE: f64 = 1000.0;

/// Cycles one sample run lasts.
pub const RUN: u64 = 1000;

/// The sample: core 0 runs colors 0, 1, 2 and 3 in turn (posting order = run order) until
/// core 1, idle and searching, steals color 3 from it and runs color 3's later events; core 2
/// searches, finds nothing, naps and sleeps. Every record goes through `bound`'s buffers.
pub fn sample(bound: Bound) -> Trace {
    let mut rec: Vec<Recorder> = (0..3).map(|c| Recorder::new(c, Some(bound))).collect();
    let mut seq = [0u64; 4];
    let mut next = |c: usize| {
        let s = seq[c];
        seq[c] += 1;
        s
    };
    let run = |start: u64, color: u32, handler: u16, seq: u64| Record::Run {
        start,
        end: start + RUN,
        color,
        handler,
        seq,
    };
    let state = |at: u64, state: State, queue_len: u32| Record::State {
        at,
        queue_len,
        state,
    };
    // Core 0: 40 runs; color 3 only before the steal.
    rec[0].record(state(0, State::Busy, 40));
    let mut t = 100;
    for i in 0..40u32 {
        let color = if t < 4_000 { i % 4 } else { i % 3 };
        rec[0].record(run(t, color, (color % 2) as u16, next(color as usize)));
        t += RUN + 100;
    }
    rec[0].record(Record::Post {
        at: 2_050,
        color: 3,
        target: 1,
    });
    rec[0].record(state(t, State::Idle, 0));
    rec[0].record(state(t + 50, State::Sleep, 0));
    // Core 1: idle, searches, steals color 3 (its 5 queued events) at 4_500, after core 0 ran its first, runs them.
    rec[1].record(state(0, State::Idle, 0));
    rec[1].record(state(100, State::Search, 0));
    rec[1].record(Record::Steal {
        start: 4_500,
        dur: 600,
        lock_wait: 80,
        lock_hold: 400,
        events: 5,
        victim: 0,
        colors: 1,
        nodes: 12,
        outcome: StealOutcome::Stolen,
    });
    rec[1].record(Record::Remap {
        at: 4_800,
        color: 3,
        from: 0,
        to: 1,
    });
    rec[1].record(state(5_200, State::Busy, 5));
    let mut t = 5_300;
    for _ in 0..5 {
        rec[1].record(run(t, 3, 1, next(3)));
        t += RUN + 50;
    }
    rec[1].record(state(t, State::Sleep, 0));
    rec[1].record(state(t + 20_000, State::Wake, 0));
    // Core 2: searches twice with a nap between, then sleeps.
    rec[2].record(state(0, State::Idle, 0));
    rec[2].record(state(500, State::Search, 0));
    rec[2].record(Record::Steal {
        start: 600,
        dur: 300,
        lock_wait: 20,
        lock_hold: 100,
        events: 0,
        victim: 1,
        colors: 0,
        nodes: 0,
        outcome: StealOutcome::Empty,
    });
    rec[2].record(state(1_000, State::Nap, 0));
    rec[2].record(state(3_000, State::Search, 0));
    rec[2].record(Record::Steal {
        start: 3_100,
        dur: 400,
        lock_wait: 0,
        lock_hold: 300,
        events: 0,
        victim: 0,
        colors: 0,
        nodes: 7,
        outcome: StealOutcome::Nothing,
    });
    rec[2].record(state(3_600, State::Sleep, 0));
    let cores: Vec<_> = rec.iter_mut().filter_map(Recorder::take).collect();
    let runs = cores
        .iter()
        .flat_map(|b| b.records())
        .filter(|r| matches!(r, Record::Run { .. }))
        .count() as u64;
    let steals = cores
        .iter()
        .flat_map(|b| b.records())
        .filter(|r| {
            matches!(
                r,
                Record::Steal {
                    outcome: StealOutcome::Stolen,
                    ..
                }
            )
        })
        .count() as u64;
    Trace {
        meta: TraceMeta {
            configuration: vec![
                ("benchmark".into(), "sample".into()),
                ("workers".into(), "3".into()),
            ],
            fidelity: "real".into(),
            simulated: false,
            cycles_per_us: RATE,
            handler_names: vec!["even".into(), "odd".into()],
            origin: Some(0),
            end: Some(60_000),
            counters: Some(WindowCounters {
                events: runs,
                steals,
                tolerance: 0,
            }),
        },
        cores,
    }
}

/// The sample with room for every record.
pub fn full_sample() -> Trace {
    sample(Bound::Ring { capacity: 1024 })
}
