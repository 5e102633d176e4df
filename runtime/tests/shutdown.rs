//! Shutdown and its edges: what happens to events still queued, to timers still pending, to a
//! runtime dropped without `shutdown`, and to blocking work that panics.

use colored_runtime::{
    Color, EventStorage, HandlerSpec, PostError, QueueKind, Runtime, RuntimeConfig,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::time::Duration;

/// Counts its drops: captured by an event's closure, it is dropped when the closure runs or
/// when the event is dropped unrun.
struct Tracked(Arc<AtomicU64>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn runtime(queue: QueueKind, storage: EventStorage) -> Runtime {
    Runtime::new(RuntimeConfig {
        workers: 1,
        queue,
        event_storage: storage,
        ..Default::default()
    })
    .expect("runtime")
}

/// Waits (up to 10 s) until `handle` sees the shutdown requested.
fn wait_for_shutdown(handle: &colored_runtime::Handle, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !handle.is_shutdown() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: the runtime was not asked to stop"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Every design and closure storage.
fn configs() -> Vec<(QueueKind, EventStorage)> {
    let mut v = Vec::new();
    for q in [QueueKind::Libasync, QueueKind::Mely] {
        for s in [EventStorage::Inline, EventStorage::Heap] {
            v.push((q, s));
        }
    }
    v
}

/// Holds the only worker busy in an event of color 0 until the returned sender is used; returns
/// once that event runs.
fn occupy(rt: &Runtime) -> mpsc::Sender<()> {
    let h = rt.register(HandlerSpec::new("blocker"));
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    rt.post(Color(0), h, move |_| {
        started_tx.send(()).unwrap();
        let _ = release_rx.recv_timeout(Duration::from_secs(30));
    })
    .unwrap();
    started_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the blocker ran");
    release_tx
}

/// Events queued behind a running one when the runtime shuts down never run; each is dropped
/// (its closure's destructor runs) by the time `shutdown` returns, and counted in `dropped`.
#[test]
fn events_still_queued_at_shutdown_are_dropped_and_counted() {
    for (q, s) in configs() {
        let rt = runtime(q, s);
        let release = occupy(&rt);
        let h = rt.register(HandlerSpec::new("queued"));
        let drops = Arc::new(AtomicU64::new(0));
        let ran = Arc::new(AtomicU64::new(0));
        const N: u64 = 50;
        for i in 0..N {
            let t = Tracked(drops.clone());
            let ran = ran.clone();
            // Several colors and several events per color; a large capture for the boxed path.
            let pad = [i; 8];
            rt.post(Color(1 + (i % 5) as u32), h, move |_| {
                let _keep = (&t, pad);
                ran.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        }
        let handle = rt.handle();
        let stopper = std::thread::spawn(move || rt.shutdown());
        // The shutdown is requested while the blocker still runs; then the blocker returns.
        wait_for_shutdown(&handle, &format!("{q} {s:?}"));
        release.send(()).unwrap();
        let stats = stopper.join().unwrap();
        assert_eq!(
            ran.load(Ordering::SeqCst),
            0,
            "{q} {s:?}: a queued event ran"
        );
        assert_eq!(
            drops.load(Ordering::SeqCst),
            N,
            "{q} {s:?}: every queued closure was dropped once"
        );
        assert_eq!(stats.total.dropped, N, "{q} {s:?}: {:?}", stats.total);
        assert_eq!(stats.total.events, 1, "{q} {s:?}: only the blocker ran");
    }
}

/// A timer still pending at shutdown never fires; its event is dropped by the time `shutdown`
/// returns and counted in `dropped`; a timer set afterwards is refused.
#[test]
fn a_pending_timer_at_shutdown_is_dropped_and_counted() {
    for (q, s) in configs() {
        let rt = runtime(q, s);
        let h = rt.register(HandlerSpec::new("timer"));
        let handle = rt.handle();
        let drops = Arc::new(AtomicU64::new(0));
        let fired = Arc::new(AtomicU64::new(0));
        for secs in [60, 120] {
            let t = Tracked(drops.clone());
            let fired = fired.clone();
            handle
                .post_after(Duration::from_secs(secs), Color(3), h, move |_| {
                    let _keep = &t;
                    fired.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
        }
        // The reactor runs (its Epoll event blocks until the 60 s deadline).
        std::thread::sleep(Duration::from_millis(50));
        let stats = rt.shutdown();
        assert_eq!(fired.load(Ordering::SeqCst), 0, "{q} {s:?}: a timer fired");
        assert_eq!(
            drops.load(Ordering::SeqCst),
            2,
            "{q} {s:?}: both pending timers' closures were dropped at shutdown"
        );
        assert_eq!(stats.total.dropped, 2, "{q} {s:?}: {:?}", stats.total);
        let t = Tracked(drops.clone());
        let late = handle.post_after(Duration::from_millis(1), Color(3), h, move |_| {
            let _keep = &t;
        });
        assert!(
            matches!(late, Err(PostError::Shutdown)),
            "{q} {s:?}: {late:?}"
        );
        assert_eq!(
            drops.load(Ordering::SeqCst),
            3,
            "{q} {s:?}: the refused timer was dropped"
        );
    }
}

/// Dropping a `Runtime` without calling `shutdown` shuts it down and joins its workers: once the
/// drop returns, a handle kept elsewhere sees it stopped, posts fail, and events that were
/// queued have been dropped (their destructors ran) and counted.
#[test]
fn dropping_a_runtime_without_shutdown_stops_it() {
    for (q, s) in configs() {
        let rt = runtime(q, s);
        let handle = rt.handle();
        let release = occupy(&rt);
        let h = rt.register(HandlerSpec::new("queued"));
        let drops = Arc::new(AtomicU64::new(0));
        for i in 0..10u32 {
            let t = Tracked(drops.clone());
            rt.post(Color(1 + i), h, move |_| drop(t)).unwrap();
        }
        let (done_tx, done_rx) = mpsc::channel();
        let dropper = std::thread::spawn(move || {
            drop(rt);
            done_tx.send(()).unwrap();
        });
        wait_for_shutdown(&handle, &format!("{q} {s:?}: dropping the runtime"));
        release.send(()).unwrap();
        done_rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("{q} {s:?}: dropping the runtime did not return"));
        dropper.join().unwrap();
        assert!(handle.is_shutdown());
        assert!(matches!(
            handle.post(Color(1), h, |_| {}),
            Err(PostError::Shutdown)
        ));
        assert_eq!(
            drops.load(Ordering::SeqCst),
            10,
            "{q} {s:?}: queued events dropped"
        );
        let stats = handle.stats();
        assert_eq!(stats.total.dropped, 10, "{q} {s:?}: {:?}", stats.total);
        assert_eq!(stats.total.events, 1, "{q} {s:?}: only the blocker ran");
    }
}

/// A blocking job whose work panics is caught and counted; its completion never runs; the pool
/// keeps its size: afterwards, as many jobs as it has helpers still run at the same time.
#[test]
fn a_panicking_blocking_job_is_counted_and_the_pool_keeps_its_size() {
    const HELPERS: usize = 2;
    let rt = Runtime::new(RuntimeConfig {
        workers: 1,
        blocking_threads: HELPERS,
        ..Default::default()
    })
    .unwrap();
    let h = rt.register(HandlerSpec::new("io"));
    let completions = Arc::new(AtomicU64::new(0));
    // As many panics as helpers: without the catch, no helper would be left.
    for _ in 0..HELPERS {
        let c = completions.clone();
        rt.handle()
            .spawn_blocking(
                Color(4),
                h,
                || -> u32 { panic!("blocking work fails (expected by this test)") },
                move |_, _| {
                    c.fetch_add(1, Ordering::SeqCst);
                },
            )
            .unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while rt.stats().blocking_panics < HELPERS as u64 {
        assert!(
            std::time::Instant::now() < deadline,
            "panics counted: {}",
            rt.stats().blocking_panics
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // Every helper must be alive: HELPERS jobs meet at a barrier with this thread.
    let barrier = Arc::new(Barrier::new(HELPERS + 1));
    let (tx, rx) = mpsc::channel();
    for i in 0..HELPERS {
        let b = barrier.clone();
        let tx = tx.clone();
        rt.handle()
            .spawn_blocking(
                Color(5),
                h,
                move || {
                    b.wait();
                    i
                },
                move |_, i| tx.send(i).unwrap(),
            )
            .unwrap();
    }
    let (met_tx, met_rx) = mpsc::channel();
    std::thread::spawn(move || {
        barrier.wait();
        let _ = met_tx.send(());
    });
    met_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("every helper ran a job at the same time: the pool kept its size");
    let mut got: Vec<usize> = (0..HELPERS)
        .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap())
        .collect();
    got.sort();
    assert_eq!(got, (0..HELPERS).collect::<Vec<_>>());
    let stats = rt.shutdown();
    assert_eq!(
        completions.load(Ordering::SeqCst),
        0,
        "a panicked job's completion ran"
    );
    assert_eq!(stats.blocking_panics, HELPERS as u64);
}
