//! Pieces shared by the fork/join benchmarks: measured outcome, runtime construction, waiting.

use crate::perf::LlcCounter;
use colored_runtime::{
    FidelityOptions, QueueKind, Runtime, RuntimeConfig, RuntimeStats, StealAmount, StealPolicy,
    TraceSpec,
};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What one benchmark run measured.
pub struct Outcome {
    pub events: u64,
    pub elapsed: Duration,
    /// Runtime counters over the measured interval (None for tokio).
    pub stats: Option<RuntimeStats>,
    /// Last-level-cache misses per event, when the machine has hardware counters.
    pub llc_misses_per_event: Option<f64>,
    pub rounds: u64,
    /// What the benchmark adds to its results (sizes, measured handler costs).
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// What the workers recorded, when the setup traced the run.
    pub trace: Option<colored_trace::Trace>,
}

impl Outcome {
    pub fn kevents_per_sec(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64() / 1e3
    }
}

/// The runtime a colored benchmark runs on: the part of the command line that reaches
/// [`RuntimeConfig`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Setup {
    pub queue: QueueKind,
    pub stealing: StealPolicy,
    /// What a time-left steal takes (ignored by the other policies).
    pub steal_amount: StealAmount,
    /// Worker threads; more than the machine's CPUs oversubscribes them.
    pub workers: usize,
    /// Record the run (`--trace`); `None`: off.
    pub trace: Option<TraceSpec>,
    /// The papers' options or ours (`--fidelity` and the four options it sets).
    pub fidelity: FidelityOptions,
}

impl Setup {
    /// The runtime configuration of this setup (everything else at the runtime's defaults).
    pub fn config(&self) -> RuntimeConfig {
        let mut cfg = RuntimeConfig {
            workers: self.workers,
            queue: self.queue,
            stealing: self.stealing,
            steal_amount: self.steal_amount,
            trace: self.trace,
            ..Default::default()
        };
        self.fidelity.apply(&mut cfg);
        cfg
    }
}

/// A runtime for a benchmark. `COLORED_SEARCH_US` overrides how long an idle worker searches
/// for work to steal before it sleeps (a tuning experiment; the default is the runtime's).
pub fn runtime(setup: &Setup) -> anyhow::Result<Runtime> {
    let mut cfg = setup.config();
    if let Some(us) = std::env::var("COLORED_SEARCH_US")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        cfg.search_us = us;
    }
    Ok(Runtime::new(cfg)?)
}

/// Fork/join control shared by a benchmark's events: the fork checks `stop`, the run ends when
/// the round in progress completes.
pub struct Control {
    pub stop: AtomicBool,
    pub finished: AtomicBool,
    pub rounds: AtomicU64,
    pub events: AtomicU64,
}

impl Control {
    pub fn leak() -> &'static Control {
        Box::leak(Box::new(Control {
            stop: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            rounds: AtomicU64::new(0),
            events: AtomicU64::new(0),
        }))
    }

    /// Sleep `seconds`, ask the benchmark to stop, wait for its round to finish (at most 120 s).
    pub fn run_for(&self, seconds: f64) -> anyhow::Result<()> {
        std::thread::sleep(Duration::from_secs_f64(seconds));
        self.stop.store(true, Ordering::Release);
        let deadline = Instant::now() + Duration::from_secs(120);
        while !self.finished.load(Ordering::Acquire) {
            if Instant::now() > deadline {
                anyhow::bail!("the benchmark's last round did not finish within 120 s");
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        Ok(())
    }
}

/// Measure a fork/join benchmark: `start` posts its first fork; after `seconds` the control asks
/// it to stop and waits for the round in progress; the runtime's counters over the interval and
/// the cache misses (opened before the runtime was built) go into the outcome.
pub fn measure_fork_join(
    rt: Runtime,
    ctl: &'static Control,
    seconds: f64,
    llc: Option<LlcCounter>,
    start: impl FnOnce(&Runtime) -> anyhow::Result<()>,
) -> anyhow::Result<Outcome> {
    let before = rt.stats();
    let t0 = Instant::now();
    start(&rt)?;
    ctl.run_for(seconds)?;
    let elapsed = t0.elapsed();
    let stats = rt.stats().since(&before);
    if std::env::var_os("COLORED_DEBUG_STATS").is_some() {
        for (w, c) in stats.workers.iter().enumerate() {
            eprintln!("worker {w}: {c:?}");
        }
    }
    // Shutting the runtime down joins the workers, so the inherited counter includes them.
    let (_, trace) = rt.shutdown_traced();
    let events = ctl.events.load(Ordering::Relaxed);
    let mut extra = serde_json::Map::new();
    extra.insert(
        "handler_cycles".into(),
        serde_json::Value::Object(handler_cycles(&stats)),
    );
    Ok(Outcome {
        events,
        elapsed,
        llc_misses_per_event: llc
            .and_then(|c| c.read())
            .map(|m| m as f64 / events.max(1) as f64),
        stats: Some(stats),
        rounds: ctl.rounds.load(Ordering::Relaxed),
        extra,
        trace,
    })
}

/// Mean measured cycles per event of every handler that ran, by name (the benchmarks report
/// them beside their cost annotations, so an annotation that is far off shows).
pub fn handler_cycles(stats: &RuntimeStats) -> serde_json::Map<String, serde_json::Value> {
    stats
        .handlers
        .iter()
        .filter(|h| h.events > 0)
        .map(|h| (h.name.clone(), serde_json::json!(h.avg_cycles.round())))
        .collect()
}

/// CPU time (user and system) this process has used so far, its exited threads included.
pub fn cpu_time() -> Duration {
    edge::rusage::cpu_time(edge::rusage::Who::Process)
}
