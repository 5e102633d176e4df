//! The [`Runtime`]'s lifecycle: start, join, shut down.
//!
//! Start-up, in two phases so that every core's state is local to the core that uses it ("pin,
//! then allocate", as glommio does):
//! 1. One thread per worker is spawned. Each pins itself to its CPU (when `pin` is set), then
//!    allocates its core's queue tables (first touched on that CPU) and hands them to the
//!    creating thread with the pinning's outcome.
//! 2. Once every worker reported, the creating thread builds the shared state around those
//!    queues and lets each worker start; the worker allocates the rest of its state (counters,
//!    per-handler tables, batch buffer) on its own thread and runs. A worker that could not be
//!    pinned runs unpinned; the failure is in [`RuntimeStats::unpinned`].
//!
//! If any thread cannot be spawned, the ones already started are told to exit and
//! [`Runtime::new`] returns the error.

use crate::color::Color;
use crate::config::{BuildError, QueueKind, RuntimeConfig};
use crate::core::{CoreQueue, Owner};
use crate::ctx::Ctx;
use crate::error::PostError;
use crate::handler::{HandlerId, HandlerSpec};
use crate::queue::libasync::LibasyncQueue;
use crate::queue::mely::MelyQueue;
use crate::queue::Design;
use crate::shared::{with_queues, CoreSet, Handle, Queues, Shared};
use crate::stats::{RuntimeStats, Unpinned};
use crate::topology::Topology;
use crate::tsc;
use crate::worker::Worker;
use crossbeam_utils::CachePadded;
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread::JoinHandle;

/// A running colored runtime. Dropping it shuts it down and joins its workers.
///
/// ```
/// use colored_runtime::{Color, HandlerSpec, Runtime, RuntimeConfig, QueueKind, StealPolicy};
/// use std::sync::mpsc;
///
/// let rt = Runtime::new(RuntimeConfig {
///     workers: 2,
///     queue: QueueKind::Mely,
///     stealing: StealPolicy::All,
///     ..Default::default()
/// })
/// .unwrap();
/// let square = rt.register(HandlerSpec::new("square"));
/// let (tx, rx) = mpsc::channel();
/// for i in 0..4u32 {
///     let tx = tx.clone();
///     rt.post(Color(i), square, move |_| tx.send(i * i).unwrap()).unwrap();
/// }
/// let mut got: Vec<u32> = (0..4).map(|_| rx.recv().unwrap()).collect();
/// got.sort();
/// assert_eq!(got, [0, 1, 4, 9]);
/// let stats = rt.shutdown();
/// assert_eq!(stats.total.events, 4);
/// ```
pub struct Runtime {
    /// The runtime's handle (the shared state).
    handle: Handle,
    /// The workers' threads, joined once (by `join`, `shutdown` or drop).
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// What a worker thread reports after phase 1 of start-up.
struct Ready<D> {
    worker: usize,
    /// The CPU it tried to pin to and why that failed, if it did.
    unpinned: Option<Unpinned>,
    /// Its core's queue, allocated on its thread.
    queue: D,
}

impl Runtime {
    /// Build and start a runtime: one pinned worker per configured core.
    pub fn new(cfg: RuntimeConfig) -> Result<Runtime, BuildError> {
        cfg.validate()?;
        tsc::cycles_per_sec();
        tsc::overhead();
        let topology = Topology::detect(cfg.workers);
        match cfg.queue {
            QueueKind::Libasync => start::<LibasyncQueue>(cfg, topology, CoreSet::Libasync),
            QueueKind::Mely => start::<MelyQueue>(cfg, topology, CoreSet::Mely),
        }
    }

    /// A handle to post events, register I/O and read statistics from any thread.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Register a handler (see [`Handle::register`]).
    pub fn register(&self, spec: HandlerSpec) -> HandlerId {
        self.handle.register(spec)
    }

    /// Post an event (see [`Handle::post`]).
    #[inline]
    pub fn post<F>(&self, color: Color, handler: HandlerId, f: F) -> Result<(), PostError>
    where
        F: FnOnce(&mut Ctx<'_>) + Send + 'static,
    {
        self.handle.post(color, handler, f)
    }

    /// A snapshot of every counter (see [`Handle::stats`]).
    pub fn stats(&self) -> RuntimeStats {
        self.handle.stats()
    }

    /// Wait until the runtime has been asked to stop (by [`Handle::shutdown`]) and its workers
    /// exited.
    pub fn join(&self) {
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }

    /// Stop the runtime, wait for its workers, and return the final counters.
    pub fn shutdown(self) -> RuntimeStats {
        self.handle.shutdown();
        self.join();
        self.handle.stats()
    }

    /// Stop the runtime, wait for its workers, and return the final counters and, when the
    /// configuration's `trace` is set, what each worker recorded (cycles of [`tsc`]), with its
    /// metadata: the configuration, the fidelity preset ("ours", "paper", or "mixed" when the
    /// options match neither), real time, handler names. A ring trace
    /// carries the run's counters only if no worker lost a record.
    pub fn shutdown_traced(self) -> (RuntimeStats, Option<colored_trace::Trace>) {
        self.handle.shutdown();
        self.join();
        let end = tsc::now();
        let stats = self.handle.stats();
        let sh = &*self.handle.sh;
        if sh.config().trace.is_none() {
            return (stats, None);
        }
        let cores = sh.take_traces();
        let cfg = sh.config();
        let mut configuration = cfg.trace_configuration();
        configuration.push(("trace".to_string(), format!("{:?}", cfg.trace)));
        let reg = sh.registry();
        let handler_names = (0..reg.len())
            .map(|i| reg.get(HandlerId(i as u16)).name.clone())
            .collect();
        let whole_run = matches!(cfg.trace, Some(crate::config::TraceSpec::Ring { .. }))
            && cores.iter().all(|b| b.seen() == b.len() as u64);
        let counters = whole_run.then_some(colored_trace::WindowCounters {
            events: stats.total.events,
            steals: stats.total.steals,
            tolerance: 0,
        });
        let meta = colored_trace::TraceMeta {
            configuration,
            // A preset's name, or "mixed" when the options were set one by one.
            fidelity: crate::config::FidelityOptions::of_config(cfg)
                .name()
                .to_string(),
            simulated: false,
            cycles_per_us: tsc::cycles_per_sec() / 1e6,
            handler_names,
            origin: None,
            end: Some(end),
            counters,
        };
        (stats, Some(colored_trace::Trace { meta, cores }))
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.handle.shutdown();
        self.join();
    }
}

/// Both phases of start-up for design `D` (see the module doc).
fn start<D: Design>(
    cfg: RuntimeConfig,
    topology: Topology,
    wrap: fn(Queues<D>) -> CoreSet,
) -> Result<Runtime, BuildError> {
    let n = cfg.workers;
    let (ready_tx, ready_rx) = mpsc::channel::<Ready<D>>();
    let mut go: Vec<mpsc::Sender<Handle>> = Vec::with_capacity(n);
    let mut threads = Vec::with_capacity(n);
    for w in 0..n {
        let (go_tx, go_rx) = mpsc::channel::<Handle>();
        let ready_tx = ready_tx.clone();
        let cpu = cfg.pin.then(|| topology.cpu_of(w));
        let spawned = std::thread::Builder::new()
            .name(format!("colored-worker-{w}"))
            .spawn(move || {
                let unpinned = cpu.and_then(|cpu| {
                    crate::topology::pin_current_thread(cpu)
                        .err()
                        .map(|e| Unpinned {
                            worker: w,
                            cpu,
                            error: e.to_string(),
                        })
                });
                let queue = D::new();
                if ready_tx
                    .send(Ready {
                        worker: w,
                        unpinned,
                        queue,
                    })
                    .is_err()
                {
                    return;
                }
                // No handle: start-up failed and the runtime is not coming.
                if let Ok(h) = go_rx.recv() {
                    run_worker(h, w);
                }
            });
        match spawned {
            Ok(t) => {
                go.push(go_tx);
                threads.push(t);
            }
            Err(e) => {
                drop(go);
                for t in threads {
                    let _ = t.join();
                }
                return Err(BuildError::Spawn(e));
            }
        }
    }
    drop(ready_tx);
    let mut ready: Vec<Option<Ready<D>>> = (0..n).map(|_| None).collect();
    for r in ready_rx.iter().take(n) {
        let w = r.worker;
        ready[w] = Some(r);
    }
    let mut unpinned = Vec::new();
    let lock = cfg.lock;
    let queues: Queues<D> = ready
        .into_iter()
        .map(|r| {
            let r = r.expect("every worker reports once");
            unpinned.extend(r.unpinned);
            CachePadded::new(CoreQueue::new(r.queue, lock))
        })
        .collect();
    let sh = Shared::new(cfg, wrap(queues), topology);
    sh.set_unpinned(unpinned);
    for (w, t) in threads.iter().enumerate() {
        sh.set_thread(w, t.thread().clone());
    }
    let handle = Handle { sh };
    for tx in go {
        // A worker that already exited (it cannot have: it waits for this) is joined below.
        let _ = tx.send(handle.clone());
    }
    Ok(Runtime {
        handle,
        threads: Mutex::new(threads),
    })
}

/// A worker thread's life after start-up: claim its core's owner handle (the one it keeps
/// until it exits), build its state here, on its (pinned) thread, and run.
fn run_worker(h: Handle, w: usize) {
    let sh = &*h.sh;
    with_queues!(sh.queues(), q => {
        let owner = Owner::claim(w, &q[w], sh.state(w));
        Worker::new(&h, q, owner).run()
    });
}
