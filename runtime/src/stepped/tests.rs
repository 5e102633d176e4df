use super::*;
use crate::config::QueueKind;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

fn sim(queue: QueueKind, stealing: StealPolicy, machine: &str, n: usize) -> SimRuntime {
    let cfg = RuntimeConfig {
        workers: n,
        queue,
        stealing,
        ..Default::default()
    };
    SimRuntime::new(cfg, &Machine::builtin(machine).unwrap()).unwrap()
}

/// Run every batch queued on `w` to the end (each pop also enqueues what the previous batch
/// posted to `w`).
fn drain(s: &mut SimRuntime, w: usize) -> usize {
    let mut ran = 0;
    while s.pop(w).is_some() {
        while s.run_next(w).is_some() {
            ran += 1;
        }
    }
    ran
}

/// `locality` and `all` examine victims in the topology's neighbour order (the paper's
/// machine: the L2 partner, the package, the other package); `base` and `time-left` start at
/// the most loaded core.
#[test]
fn locality_policies_use_the_topology_order() {
    for policy in [StealPolicy::Locality, StealPolicy::All] {
        let s = sim(QueueKind::Mely, policy, "e5410", 8);
        assert_eq!(s.core_set(0), vec![1, 2, 3, 4, 5, 6, 7], "{policy}");
        assert_eq!(s.core_set(6), vec![7, 4, 5, 0, 1, 2, 3], "{policy}");
    }
    let m = Machine::builtin("numa2").unwrap();
    let s = sim(QueueKind::Mely, StealPolicy::All, "numa2", 16);
    assert_eq!(s.core_set(9), m.neighbours(16, 9));
    for policy in [StealPolicy::Base, StealPolicy::TimeLeft] {
        let mut s = sim(QueueKind::Mely, policy, "e5410", 8);
        let h = s.register(HandlerSpec::new("h"));
        // Colors 5 and 13 map to core 5: it becomes the most loaded core.
        for c in [5, 13] {
            s.handle().post(Color(c), h, |_| {}).unwrap();
        }
        assert_eq!(s.core_set(0), vec![5, 6, 7, 1, 2, 3, 4], "{policy}");
        drain(&mut s, 5);
    }
}

/// A locality thief takes from its L2 partner although a distant core holds more; Mely's
/// thief passes over an empty victim unlocked in a search, never in the last look.
#[test]
fn locality_thief_prefers_the_l2_partner() {
    let mut s = sim(QueueKind::Mely, StealPolicy::Locality, "e5410", 8);
    let h = s.register(HandlerSpec::new("h"));
    for c in [1u32, 9, 4, 12, 20, 28] {
        s.handle().post(Color(c), h, |_| {}).unwrap();
    }
    assert_eq!((s.queued(1), s.queued(4)), (2, 4));
    assert_eq!(s.steal_from(0, 2, Round::Search), StealTry::Skipped);
    assert_eq!(
        s.steal_from(0, 2, Round::LastLook),
        StealTry::Failed { victim_len: 0 }
    );
    let order = s.core_set(0);
    let victim = order.iter().copied().find(|&v| s.queued(v) > 0).unwrap();
    assert_eq!(victim, 1);
    assert!(matches!(
        s.steal_from(0, victim, Round::Search),
        StealTry::Stole { colors: 1, .. }
    ));
    assert_eq!(
        s.handle().core_of(Color(1)),
        0,
        "the stolen color is remapped"
    );
}

/// A popped batch's colors are running until the next pop: no thief takes them, even after
/// the batch ran, and their children posted meanwhile stay behind them.
#[test]
fn a_running_batch_is_never_stolen() {
    for queue in [QueueKind::Libasync, QueueKind::Mely] {
        // Mely's batch is color 2's three events (a larger one would span colors 4 and 6).
        let cfg = RuntimeConfig {
            workers: 2,
            queue,
            stealing: StealPolicy::Base,
            batch: 3,
            ..Default::default()
        };
        let mut s = SimRuntime::new(cfg, &Machine::builtin("e5410").unwrap()).unwrap();
        let h = s.register(HandlerSpec::new("h"));
        let order = Arc::new(Mutex::new(Vec::new()));
        for i in 0..3 {
            let o = order.clone();
            s.handle()
                .post(Color(2), h, move |_| o.lock().unwrap().push(i))
                .unwrap();
        }
        for c in [4, 6] {
            s.handle().post(Color(c), h, |_| {}).unwrap();
        }
        let n = s.pop(0).unwrap();
        // Steal until nothing is left to take: colors 4 (and, from libasync's FIFO, 6) go,
        // color 2 never does, although libasync still queues two of its events.
        let mut stolen = 0;
        while let StealTry::Stole { colors: 1, .. } = s.steal_from(1, 0, Round::Search) {
            stolen += 1;
        }
        assert!(stolen >= 1, "{queue:?}");
        assert_eq!(s.handle().core_of(Color(4)), 1, "{queue:?}");
        for _ in 0..n {
            s.run_next(0).unwrap();
        }
        assert!(
            matches!(
                s.steal_from(1, 0, Round::Search),
                StealTry::Failed { .. } | StealTry::Skipped
            ),
            "{queue:?}: the finished batch's color is still running until the next pop"
        );
        assert_eq!(
            s.handle().core_of(Color(2)),
            0,
            "{queue:?}: running color stolen"
        );
        drain(&mut s, 0);
        drain(&mut s, 1);
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2], "{queue:?}");
    }
}

/// Children go to the local buffer and reach the queue at the next pop (or a flush); a post to
/// another core's color goes through the post path at once.
#[test]
fn local_posts_wait_for_the_pop() {
    let mut s = sim(QueueKind::Mely, StealPolicy::Off, "e5410", 2);
    let h = s.register(HandlerSpec::new("h"));
    let ran = Arc::new(AtomicUsize::new(0));
    let fork = |s: &mut SimRuntime, ran: &Arc<AtomicUsize>| {
        let r = ran.clone();
        s.handle()
            .post(Color(2), h, move |ctx| {
                for c in [4u32, 6, 8] {
                    let r = r.clone();
                    ctx.post(Color(c), h, move |_| {
                        r.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    });
                }
            })
            .unwrap();
    };
    fork(&mut s, &ran);
    s.pop(0).unwrap();
    let ev = s.run_next(0).unwrap();
    assert_eq!((ev.color, ev.stolen, ev.panicked), (Color(2), false, false));
    assert_eq!((s.buffered(0), s.queued(0)), (3, 0));
    assert_eq!(s.pop(0), Some(3), "the pop enqueues the children first");
    assert_eq!(s.buffered(0), 0);
    while s.run_next(0).is_some() {}
    fork(&mut s, &ran);
    s.pop(0).unwrap();
    s.run_next(0).unwrap();
    assert_eq!(s.flush(0), 3);
    assert_eq!(s.queued(0), 3);
    s.finish_batch(0);
    let r = ran.clone();
    assert!(s.post_from(0, Color(3), h, move |_| {
        r.fetch_add(10, std::sync::atomic::Ordering::Relaxed);
    }));
    assert_eq!(s.queued(1), 1);
    assert_eq!(drain(&mut s, 0) + drain(&mut s, 1), 4);
    assert_eq!(ran.load(std::sync::atomic::Ordering::Relaxed), 16);
}

/// The idle protocol's steps: at most half the cores search; the last searcher to sleep owes
/// the last look; a post to a sleeping core's color claims its wake-up; a stealable post wakes
/// a sleeper only while nobody searches.
#[test]
fn idle_protocol_steps() {
    let mut s = sim(QueueKind::Mely, StealPolicy::Base, "e5410", 4);
    let h = s.register(HandlerSpec::new("h"));
    assert_eq!(s.queue_empty(1), Step::Search);
    assert_eq!(s.queue_empty(2), Step::Search);
    assert_eq!(
        s.queue_empty(3),
        Step::FallAsleep,
        "at most half the cores search"
    );
    assert_eq!(s.fall_asleep(3), Step::Park, "searchers left: no last look");
    // Core 2's search time is over (2 cycles searched of 1).
    assert_eq!(s.round_ended(2, false, 2, 1), Step::FallAsleep);
    assert_eq!(s.fall_asleep(2), Step::Park);
    // Core 1 still searches: a post leaving something to steal on core 0 wakes nobody.
    for c in [4, 8] {
        s.handle().post(Color(c), h, |_| {}).unwrap();
    }
    assert!(s.is_asleep(2) && s.is_asleep(3));
    assert_eq!(s.round_ended(1, false, 2, 1), Step::FallAsleep);
    assert_eq!(s.fall_asleep(1), Step::LastLook, "the last searcher looks");
    assert_eq!(s.round(1), Round::LastLook);
    assert!(matches!(
        s.steal_from(1, 0, Round::LastLook),
        StealTry::Stole { colors: 1, .. }
    ));
    assert_eq!(s.round_ended(1, true, 0, 0), Step::Work, "sleep cancelled");
    // Nobody searches now: the next stealable post (core 0 holds colors 8 and 12) wakes a
    // sleeper.
    s.handle().post(Color(12), h, |_| {}).unwrap();
    assert_eq!(
        [2, 3].iter().filter(|&&w| !s.is_asleep(w)).count(),
        1,
        "one sleeper woken to steal"
    );
    // A post to a color of core 3 wakes core 3 (if it still sleeps).
    s.handle().post(Color(3), h, |_| {}).unwrap();
    assert!(!s.is_asleep(3));
    for w in [2, 3] {
        assert_eq!(s.woke(w), Step::Work);
    }
    // Core 3 has work queued: whichever way its idle period starts, it ends at once.
    let next = match s.queue_empty(3) {
        Step::Search => s.round_ended(3, false, 0, 1),
        Step::FallAsleep => s.fall_asleep(3),
        other => panic!("{other:?}"),
    };
    assert_eq!(next, Step::Work);
    assert!(!s.is_searching(3));
}

/// The step machine's search: a bounded search naps until its time is over, then sleeps; a
/// spinning one (the papers' `IdleMode::Spin`) searches again at once and never sleeps while
/// stealing is on; a core past `set_thieves` never searches nor takes the last look; shutdown
/// ends a search.
#[test]
fn step_machine_search_follows_the_idle_mode() {
    let mut s = sim(QueueKind::Libasync, StealPolicy::Base, "e5410", 2);
    assert_eq!(s.queue_empty(0), Step::Search);
    assert_eq!(s.round_ended(0, false, 1, 10), Step::Nap);
    assert_eq!(s.napped(0), Step::Search);
    assert_eq!(s.round_ended(0, false, 11, 10), Step::FallAsleep);
    assert_eq!(s.fall_asleep(0), Step::LastLook);
    assert_eq!(s.round_ended(0, false, 0, 0), Step::Park);
    assert!(s.is_asleep(0));
    s.handle().sh.begin_shutdown();
    assert!(!s.is_asleep(0), "shutdown notifies every sleeper");
    assert_eq!(s.woke(0), Step::Work);
    assert_eq!(s.queue_empty(1), Step::Search);
    assert_eq!(
        s.round_ended(1, false, 1, 10),
        Step::Work,
        "shutdown ends the search"
    );

    let cfg = RuntimeConfig {
        workers: 4,
        queue: QueueKind::Mely,
        stealing: StealPolicy::Base,
        idle: crate::config::IdleMode::Spin,
        ..Default::default()
    };
    let mut s = SimRuntime::new(cfg, &Machine::builtin("e5410").unwrap()).unwrap();
    s.set_thieves(3);
    for w in 0..3 {
        assert_eq!(s.queue_empty(w), Step::Search, "every thief searches");
        for _ in 0..3 {
            assert_eq!(s.round_ended(w, false, u64::MAX, 0), Step::Search);
        }
    }
    assert_eq!(s.queue_empty(3), Step::FallAsleep, "core 3 may not steal");
    assert_eq!(s.fall_asleep(3), Step::Park, "and takes no last look");
}

/// The threshold follows the runtime's moving average of the virtual costs fed to it, and
/// unannotated handlers get their profile from virtual durations.
#[test]
fn virtual_costs_feed_the_policies() {
    let mut s = sim(QueueKind::Mely, StealPolicy::TimeLeft, "e5410", 2);
    let t0 = s.steal_threshold();
    s.record_steal(800, 1);
    assert_eq!(s.steal_threshold(), steal::next_estimate(t0, 800, 1));
    let h = s.register(HandlerSpec::new("profiled"));
    let a = s.register(HandlerSpec::new("annotated").cost_cycles(500));
    s.profile(0, h, 40_000);
    s.profile(0, h, 40_000);
    s.profile(0, a, 40_000);
    let reg = s.handle().sh.registry();
    assert_eq!(reg.estimate(h).0, 40_000);
    assert_eq!(reg.estimate(a).0, 500);
}
