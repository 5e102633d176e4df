//! Stealing decisions, step by step with the real queue and steal code (`model::Model`):
//! which color each policy takes, that the map routes new events of a stolen color to the thief,
//! that stolen events keep their order, and that nothing is lost or duplicated.

use colored_runtime::model::Model;
use colored_runtime::{Color, HandlerSpec, QueueKind, RuntimeConfig, StealPolicy};
use std::sync::{Arc, Mutex};

fn model(queue: QueueKind, stealing: StealPolicy) -> Model {
    Model::new(RuntimeConfig {
        workers: 2,
        queue,
        stealing,
        pin: false,
        ..Default::default()
    })
    .unwrap()
}

type Log = Arc<Mutex<Vec<(u32, u32, usize)>>>;

fn post(m: &Model, log: &Log, color: u32, seq: u32, h: colored_runtime::HandlerId) {
    let log = log.clone();
    m.post(Color(color), h, move |ctx| {
        log.lock().unwrap().push((ctx.color().0, seq, ctx.worker()))
    })
    .unwrap();
}

fn drain(m: &Model) {
    while m.run_batch(0) | m.run_batch(1) {}
}

#[test]
fn base_steals_a_minority_color_and_remaps_it() {
    for q in [QueueKind::Libasync, QueueKind::Mely] {
        let m = model(q, StealPolicy::Base);
        let h = m.register("x");
        let log: Log = Default::default();
        // Colors 2 and 4 live on core 0 (color % 2 workers). Color 2 has 3 events (more than
        // half of 4), color 4 has 1: libasync-smp's rule takes color 4.
        for s in 0..3 {
            post(&m, &log, 2, s, h);
        }
        post(&m, &log, 4, 0, h);
        assert_eq!(m.queued(0), 4);
        assert!(m.steal(1), "{q}: a two-color queue can be stolen from");
        assert_eq!(
            m.core_of(Color(4)),
            1,
            "{q}: the stolen color now maps to the thief"
        );
        assert_eq!(m.core_of(Color(2)), 0);
        assert_eq!((m.queued(0), m.queued(1)), (3, 1));
        // New events of the stolen color go to its new core.
        post(&m, &log, 4, 1, h);
        assert_eq!(m.queued(1), 2);
        drain(&m);
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 5, "{q}: every event ran once");
        let c4: Vec<_> = log
            .iter()
            .filter(|e| e.0 == 4)
            .map(|e| (e.1, e.2))
            .collect();
        assert_eq!(
            c4,
            vec![(0, 1), (1, 1)],
            "{q}: stolen color ran in order on the thief"
        );
        let c2: Vec<_> = log.iter().filter(|e| e.0 == 2).map(|e| e.1).collect();
        assert_eq!(c2, vec![0, 1, 2]);
    }
}

#[test]
fn a_single_color_queue_is_not_stolen() {
    for q in [QueueKind::Libasync, QueueKind::Mely] {
        let m = model(q, StealPolicy::Base);
        let h = m.register("x");
        let log: Log = Default::default();
        for s in 0..5 {
            post(&m, &log, 2, s, h);
        }
        assert!(
            !m.steal(1),
            "{q}: one color cannot be stolen (it would leave nothing to run)"
        );
        assert_eq!(m.core_of(Color(2)), 0);
    }
}

#[test]
fn time_left_takes_only_worthy_colors() {
    let m = model(QueueKind::Mely, StealPolicy::TimeLeft);
    let light = m.register_spec(HandlerSpec::new("light").cost_cycles(10));
    let heavy = m.register_spec(HandlerSpec::new("heavy").cost_cycles(5_000_000));
    let log: Log = Default::default();
    for c in [2u32, 4, 6] {
        post(&m, &log, c, 0, light);
    }
    assert!(!m.steal(1), "no color's queued time exceeds the steal cost");
    post(&m, &log, 8, 0, heavy);
    assert!(m.steal(1));
    assert_eq!(m.core_of(Color(8)), 1, "the heavy color was the one taken");
    for c in [2u32, 4, 6] {
        assert_eq!(m.core_of(Color(c)), 0);
    }
    drain(&m);
    assert_eq!(log.lock().unwrap().len(), 4);
}

#[test]
fn penalty_makes_long_lived_data_unattractive() {
    for (policy, expect) in [(StealPolicy::TimeLeft, 4u32), (StealPolicy::Penalty, 2u32)] {
        let m = model(QueueKind::Mely, policy);
        // Color 4: more time but a high penalty (large, long-lived data); color 2: less time,
        // no penalty. Time-left takes the bigger one (a higher time-left interval); penalty-aware
        // sees color 4 as 2 000 weighted cycles, not worth a steal, and takes color 2.
        let a = m.register_spec(HandlerSpec::new("A").cost_cycles(10_000));
        let b = m.register_spec(HandlerSpec::new("B").cost_cycles(2_000_000).penalty(1000));
        let log: Log = Default::default();
        post(&m, &log, 2, 0, a);
        post(&m, &log, 4, 0, b);
        assert!(m.steal(1), "{policy}");
        assert_eq!(
            m.core_of(Color(expect)),
            1,
            "{policy} should steal color {expect}"
        );
    }
}

#[test]
fn locality_orders_victims_and_still_steals() {
    let m = model(QueueKind::Mely, StealPolicy::Locality);
    let h = m.register("x");
    let log: Log = Default::default();
    post(&m, &log, 2, 0, h);
    post(&m, &log, 4, 0, h);
    assert!(m.steal(1));
    drain(&m);
    assert_eq!(log.lock().unwrap().len(), 2);
    let s = m.stats();
    assert_eq!(s.total.steals, 1);
    assert!(s.total.stolen_events >= 1 && s.total.stolen_time_cycles > 0);
}

#[test]
fn stolen_events_are_counted_and_timed() {
    for q in [QueueKind::Libasync, QueueKind::Mely] {
        let m = model(q, StealPolicy::Base);
        let h = m.register("x");
        let log: Log = Default::default();
        for s in 0..3 {
            post(&m, &log, 2, s, h);
            post(&m, &log, 4, s, h);
        }
        assert!(m.steal(1));
        drain(&m);
        let s = m.stats();
        assert_eq!(s.total.events, 6);
        assert_eq!(s.total.stolen_events, 3, "{q}: the whole color moved");
        assert!(s.steal_cost_cycles_avg > 0.0);
    }
}
