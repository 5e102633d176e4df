//! The simulator (`microbenches simulate`): the papers' 8-core machine, or any hwloc topology,
//! seen from this one. The runtime's real queue designs and stealing decisions (the `libasync`
//! and `mely` designs' push, pop, steal and placement; the core set, the locality order from the
//! topology, the time-left threshold and intervals, the penalty weights) run on virtual cores
//! and a virtual cycle clock ([`engine`]), through the runtime's seam
//! (`colored_runtime::stepped::SimRuntime`); nothing here reimplements a policy.
//!
//! What the simulation charges, every figure printed with its results:
//! - per event: the benchmark's own work ([`workload`]: 100 cycles, 10-50 Kcycles, array passes
//!   from the calibrated kernels), the runtime's per-event, post, flush and pop costs, lock hold
//!   and wait times (a lock held until cycle T makes others wait until T), steal costs per
//!   operation, color, event moved and event queued, wake-ups, the search nap, all measured here
//!   ([`calibrate`]), and the cache lines that move between cores: two for a steal, one for a
//!   remote post, two when an owner takes its lock back after another core held it (the lock
//!   and the queue head), two when an event runs off the core that posted it (its node and
//!   closure), one for a shared atomic another core wrote last (the benchmarks' join
//!   counter); each this machine's measured transfer, or, where the topology file gives
//!   latencies, the latency of the nearest cache the two cores share (memory's when none:
//!   Table II's distant cores);
//! - cache misses ([`cache`]): each core's caches from the topology, each event's data set
//!   resident where it was last used, a cost per missed line from the level that holds it: for
//!   a topology file that gives latencies, that latency (Table II for `e5410`: access times, so
//!   an upper bound for the benchmarks' sequential passes, which a prefetcher partly hides); for
//!   `this` (and files without latencies), this machine's measured cost per line of the
//!   benchmarks' own sequential pass at that level, and for lines another core holds modified
//!   in its private caches (a stolen chain's array), the measured pass over lines another core
//!   has just written.
//!
//! The paper mode (`--fidelity paper` and its four overrides, the runtime's own options) runs
//! the runtime with libasync-smp's and Mely's choices (spinning idle cores, test-and-set locks,
//! a lock per post, the steal walk from the head), and charges what they cost from the same
//! measurements: a line transfer per core spinning on a held test-and-set lock, one per node a
//! from-head walk reads ([`engine`]'s doc). `--event-overhead-cycles` replaces the calibrated
//! per-event cost, `--thieves K` lets only K cores steal, `--trace FILE` writes the virtual
//! cores' records as the threaded runtime's trace ([`trace_of`]).
//!
//! Assumptions (also printed): a simulated machine runs the runtime's code and the kernels in
//! the cycles this machine does; its clock rate is the topology file's `CPUFrequencyMHz` (this
//! machine's counter rate otherwise); past a topology's CPUs, copies of the machine are added
//! side by side ([`Machine::resized`]).

pub mod cache;
pub mod calibrate;
pub mod cli;
pub mod engine;
pub mod paper_fit;
pub mod validate;
pub mod vctx;
pub mod workload;

#[cfg(test)]
mod tests;

use anyhow::{bail, Context, Result};
use calibrate::Calibration;
use colored_runtime::stepped::SimRuntime;
use colored_runtime::topology::Machine;
use colored_runtime::{FidelityOptions, QueueKind, RuntimeConfig, StealAmount, StealPolicy};
use engine::{Engine, Outcome, StepCosts};
use microbench_defs::report::BenchResult;
use microbench_defs::unbalanced::Costs;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::Path;
use workload::Workload;

/// A simulated benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimBench {
    Unbalanced(Costs),
    Penalty,
    CacheEfficient,
}

impl SimBench {
    pub fn name(self) -> &'static str {
        match self {
            SimBench::Unbalanced(_) => "unbalanced",
            SimBench::Penalty => "penalty",
            SimBench::CacheEfficient => "cache-efficient",
        }
    }
}

/// The machine a simulation runs on.
#[derive(Clone, Debug)]
pub struct Platform {
    /// `e5410`, `numa2`, `this`, or the XML file's path.
    pub name: String,
    /// Its CPUs (resized to the simulated cores).
    pub machine: Machine,
    /// The topology had fewer CPUs than the cores simulated (copies added).
    pub replicated: bool,
    /// Cycles per second of the simulated cores, and where that came from.
    pub hz: f64,
    pub hz_source: String,
    /// Load latency by level ("2", "3", ..., "memory"), cycles, and where it came from.
    pub latency: BTreeMap<String, f64>,
    pub latency_source: String,
    /// What one missed line costs when served by each level, cycles.
    pub line_cost: BTreeMap<String, f64>,
    /// What one line costs when another core's private cache holds it modified (`this`: the
    /// calibration's measured pass; `None` with a file's latencies, which price it by level).
    pub remote_dirty_line: Option<f64>,
    /// Whether the topology file gave latencies (then they also price the cache lines a steal
    /// or a remote post moves between cores, by the nearest cache the two share).
    pub file_latencies: bool,
}

/// The latency key of cache level `level` in a calibration or a topology file.
fn level_key(level: u8) -> String {
    level.to_string()
}

impl Platform {
    /// `topology` is `this`, a built-in machine name (`e5410`, `numa2`) or an hwloc XML file.
    pub fn resolve(topology: &str, cores: usize, cal: &Calibration) -> Result<Platform> {
        if cores == 0 {
            bail!("--cores must be at least 1");
        }
        let (machine, from_file) = match topology {
            "this" => (Machine::from_sysfs(), false),
            t if Machine::BUILTIN.contains(&t) => (Machine::builtin(t)?, true),
            path => (Machine::load_hwloc_xml(Path::new(path))?, true),
        };
        let replicated = cores > machine.cpus.len();
        let machine = machine.resized(cores);
        let (hz, hz_source) = match machine
            .info("CPUFrequencyMHz")
            .and_then(|v| v.parse::<f64>().ok())
        {
            Some(mhz) if from_file => (mhz * 1e6, format!("{topology}: CPUFrequencyMHz")),
            _ => (
                cal.cycles_per_sec,
                "this machine's time-stamp counter".to_string(),
            ),
        };
        let mut levels: Vec<u8> = machine.cpus[0].caches.iter().map(|c| c.level).collect();
        levels.retain(|&l| l >= 2);
        let file_latency = |key: &str| {
            machine
                .info(&format!("Latency{key}Cycles"))
                .and_then(|v| v.parse::<f64>().ok())
        };
        let from_topology = from_file && file_latency("Memory").is_some();
        let latency_source = if from_topology {
            machine
                .info("LatencySource")
                .map(|s| format!("{topology}: {s}"))
                .unwrap_or_else(|| format!("{topology}: its Latency*Cycles"))
        } else {
            "this machine (pointer chase, from the calibration)".to_string()
        };
        let mut latency = BTreeMap::new();
        let mut line_cost = BTreeMap::new();
        let keys = levels
            .iter()
            .map(|&l| (format!("L{l}"), level_key(l)))
            .chain(std::iter::once((
                "Memory".to_string(),
                "memory".to_string(),
            )));
        for (file_key, key) in keys {
            let ours = |m: &BTreeMap<String, f64>| m.get(&key).or_else(|| m.get("memory")).copied();
            let here =
                ours(&cal.memory.latency).context("the calibration has no memory latency")?;
            let lat = if from_topology {
                file_latency(&file_key).unwrap_or(here)
            } else {
                here
            };
            // A file's latencies are access times (Table II's for e5410): charged per missed
            // line as they are, an upper bound for a sequential pass. This machine's cost is
            // measured on the benchmarks' own pass (sequential, prefetched).
            let line = if from_topology {
                lat
            } else {
                ours(&cal.memory.sequential_line).unwrap_or(here)
            };
            latency.insert(key.clone(), lat);
            line_cost.insert(key, line);
        }
        Ok(Platform {
            name: topology.to_string(),
            machine,
            replicated,
            hz,
            hz_source,
            latency,
            latency_source,
            line_cost,
            remote_dirty_line: if from_topology {
                None
            } else {
                cal.memory.remote_dirty_line
            },
            file_latencies: from_topology,
        })
    }

    /// What moving one cache line from core `a` to core `b` costs, for every pair of the first
    /// `cores` CPUs (`a * cores + b`): with a topology file's latencies, the latency of the
    /// nearest cache level they share, or memory's when they share none (e5410: 15 cycles within
    /// a pair, 110 across pairs, Table II's "7.3 times slower"); otherwise this machine's
    /// measured transfer (its two CPUs share their L3).
    pub fn transfers(&self, cores: usize, cal: &Calibration) -> Vec<f64> {
        let mut t = vec![0.0; cores * cores];
        for a in 0..cores {
            for b in (0..cores).filter(|&b| b != a) {
                t[a * cores + b] = if self.file_latencies {
                    self.machine.cpus[a]
                        .caches
                        .iter()
                        .find(|c| c.level >= 2 && c.cpus.contains(&b))
                        .and_then(|c| self.latency.get(&level_key(c.level)))
                        .copied()
                        .unwrap_or(self.latency["memory"])
                } else {
                    cal.line_transfer
                };
            }
        }
        t
    }

    /// The cache model of the first `cores` CPUs.
    fn caches(&self, cores: usize) -> cache::Caches {
        let max = self.machine.cpus[0]
            .caches
            .iter()
            .map(|c| c.level)
            .max()
            .unwrap_or(1);
        let memory = self.line_cost["memory"];
        let line_cost = (0..=max)
            .map(|l| {
                self.line_cost
                    .get(&level_key(l))
                    .copied()
                    .unwrap_or(if l <= 1 { 0.0 } else { memory })
            })
            .collect();
        cache::Caches::new(
            &self.machine,
            cores,
            line_cost,
            memory,
            self.remote_dirty_line,
        )
    }

    /// Its description, as printed with the results.
    pub fn describe(&self) -> Value {
        let caches: Vec<Value> = self.machine.cpus[0]
            .caches
            .iter()
            .map(|c| json!({"level": c.level, "bytes": c.bytes, "shared_by": c.cpus.len()}))
            .collect();
        json!({
            "name": self.name,
            "cpus": self.machine.cpus.len(),
            "replicated": self.replicated,
            "hz": self.hz,
            "hz_source": self.hz_source,
            "cpu0_caches": caches,
            "packages": self.machine.cpus.iter().filter_map(|c| c.package).max().map(|p| p + 1),
            "numa_nodes": self.machine.cpus.iter().filter_map(|c| c.node).max().map(|p| p + 1),
            "latency_cycles": self.latency,
            "latency_source": self.latency_source,
            "miss_line_cycles": self.line_cost,
            "remote_dirty_line_cycles": self.remote_dirty_line,
        })
    }
}

/// One simulation to run.
#[derive(Clone, Debug)]
pub struct SimSpec {
    pub bench: SimBench,
    pub queue: QueueKind,
    pub stealing: StealPolicy,
    pub cores: usize,
    /// `this`, `e5410`, `numa2` or an hwloc XML file.
    pub topology: String,
    /// Virtual seconds (the last round then finishes, as in the real benchmarks).
    pub seconds: f64,
    pub seed: u64,
    /// Relative jitter applied to every runtime step cost (uniform in +-jitter).
    pub jitter: f64,
}

/// The default relative jitter of the runtime's step costs: real steps vary, and without any
/// variation virtual cores that start together stay in lockstep (seven thieves retrying a lock
/// at the same cycle forever).
pub const JITTER: f64 = 0.1;

/// What a simulation runs beyond its [`SimSpec`] (all default: the runtime's own options,
/// the calibrated costs, every core a thief, no trace).
#[derive(Clone, Debug, Default)]
pub struct SimOptions {
    /// The runtime's paper-fidelity options (`--fidelity` and its four overrides).
    pub fidelity: FidelityOptions,
    /// Replaces the calibrated per-event runtime cost, in cycles (`--event-overhead-cycles`).
    pub event_overhead_cycles: Option<f64>,
    /// At most this many cores steal, cores `0..k` (`--thieves`); the others never search.
    pub thieves: Option<usize>,
    /// What each virtual core records (`--trace`), in seconds of virtual time.
    pub trace: Option<colored_runtime::TraceSpec>,
}

impl SimOptions {
    /// The trace bound each core records with, on a clock of `hz` starting at cycle 0.
    fn trace_bound(&self, hz: f64) -> Option<colored_trace::Bound> {
        Some(match self.trace? {
            colored_runtime::TraceSpec::Ring { capacity } => {
                colored_trace::Bound::Ring { capacity }
            }
            colored_runtime::TraceSpec::Window {
                from_secs,
                for_secs,
                capacity,
            } => colored_trace::Bound::window_secs(0, from_secs, for_secs, hz, capacity),
        })
    }
}

/// A finished simulation.
pub struct SimRun {
    pub spec: SimSpec,
    pub options: SimOptions,
    pub platform: Platform,
    pub outcome: Outcome,
    pub workload: Value,
    pub costs: StepCosts,
}

impl SimRun {
    pub fn seconds(&self) -> f64 {
        self.outcome.cycles as f64 / self.platform.hz
    }

    pub fn kevents_per_sec(&self) -> f64 {
        self.outcome.events as f64 / self.seconds() / 1e3
    }
}

/// The runtime configuration a simulation uses (the runtime's defaults otherwise).
pub fn runtime_config(spec: &SimSpec) -> RuntimeConfig {
    RuntimeConfig {
        workers: spec.cores,
        queue: spec.queue,
        stealing: spec.stealing,
        steal_amount: StealAmount::One,
        pin: false,
        ..Default::default()
    }
}

/// The workload of `spec` on `cores` cores with the calibrated kernels.
pub fn workload_of(spec: &SimSpec, cal: &Calibration) -> Result<Box<dyn Workload>> {
    let k = cal.kernels.clone();
    Ok(match spec.bench {
        SimBench::Unbalanced(costs) => {
            let p = microbench_defs::unbalanced::Params {
                seed: spec.seed,
                ..Default::default()
            };
            Box::new(workload::Unbalanced::new(p, costs, k))
        }
        SimBench::Penalty => Box::new(workload::Penalty::new(
            microbench_defs::penalty::Params::sized(simulated_l2(spec, cal)?),
            k,
        )),
        SimBench::CacheEfficient => Box::new(workload::CacheEfficient::new(
            microbench_defs::cache_efficient::Params::sized(simulated_l2(spec, cal)?),
            k,
            spec.cores,
        )),
    })
}

/// The L2 budget of the cache-sized benchmarks on the simulated machine: as the real benchmarks
/// size them on this one ([`microbench_defs::l2::L2Budget`]), from the smallest L2 of the simulated
/// cores.
fn simulated_l2(spec: &SimSpec, cal: &Calibration) -> Result<microbench_defs::l2::L2Budget> {
    let platform = Platform::resolve(&spec.topology, spec.cores, cal)?;
    let l2 = platform
        .machine
        .cpus
        .iter()
        .filter_map(|c| c.caches.iter().find(|k| k.level == 2).map(|k| k.bytes))
        .min();
    Ok(microbench_defs::l2::L2Budget::from_l2(l2))
}

/// Run `workload` as `spec` says (its bench is only a label here).
pub fn simulate_with(
    spec: &SimSpec,
    cal: &Calibration,
    workload: &mut dyn Workload,
) -> Result<SimRun> {
    simulate_with_options(spec, &SimOptions::default(), cal, workload)
}

/// Run `workload` as `spec` and `opts` say (its bench is only a label here).
pub fn simulate_with_options(
    spec: &SimSpec,
    opts: &SimOptions,
    cal: &Calibration,
    workload: &mut dyn Workload,
) -> Result<SimRun> {
    if !(spec.seconds > 0.0 && spec.seconds.is_finite()) {
        bail!("--seconds must be a positive number");
    }
    let platform = Platform::resolve(&spec.topology, spec.cores, cal)?;
    if let Some(k) = opts.thieves {
        if k > spec.cores {
            bail!("--thieves {k}: more thieves than the {} cores", spec.cores);
        }
    }
    if let Some(c) = opts.event_overhead_cycles {
        if !(c >= 0.0 && c.is_finite()) {
            bail!("--event-overhead-cycles must be a non-negative number of cycles");
        }
    }
    let mut cfg = runtime_config(spec);
    opts.fidelity.apply(&mut cfg);
    let search = cfg.search_us as f64 * 1e-6 * platform.hz;
    let mut rt = SimRuntime::new(cfg, &platform.machine)
        .with_context(|| format!("{} with stealing {}", spec.queue, spec.stealing))?;
    if let Some(k) = opts.thieves {
        rt.set_thieves(k);
    }
    let caches = platform.caches(spec.cores);
    let mut costs = StepCosts::new(cal, spec.queue, search, platform.transfers(spec.cores, cal));
    if let Some(c) = opts.event_overhead_cycles {
        costs.design.run_event = c;
    }
    let engine = Engine::new(
        rt,
        workload,
        caches,
        costs.clone(),
        spec.seed,
        spec.jitter,
        opts.trace_bound(platform.hz),
    );
    let outcome = engine.run(spec.seconds, platform.hz)?;
    Ok(SimRun {
        spec: spec.clone(),
        options: opts.clone(),
        platform,
        outcome,
        workload: workload.params(),
        costs,
    })
}

/// Run one simulation.
pub fn simulate(spec: &SimSpec, cal: &Calibration) -> Result<SimRun> {
    simulate_options(spec, &SimOptions::default(), cal)
}

/// [`simulate`] with `opts` (fidelity, cost and thief overrides, trace).
pub fn simulate_options(spec: &SimSpec, opts: &SimOptions, cal: &Calibration) -> Result<SimRun> {
    let mut w = workload_of(spec, cal)?;
    let run = simulate_with_options(spec, opts, cal, w.as_mut())?;
    if let Some(v) = run.outcome.violations.first() {
        bail!(
            "the simulation broke the color guarantee ({} violations), first: {v}",
            run.outcome.violations.len()
        );
    }
    Ok(run)
}

/// The run's trace (the cores' records in virtual cycles), with its metadata: simulated, the
/// fidelity used, the simulated clock's cycles per microsecond. `None` when it was not traced.
pub fn trace_of(run: &mut SimRun) -> Option<colored_trace::Trace> {
    run.options.trace?;
    let cfg = {
        let mut c = runtime_config(&run.spec);
        run.options.fidelity.apply(&mut c);
        c
    };
    let mut configuration = cfg.trace_configuration();
    configuration.extend([
        ("benchmark".to_string(), run.spec.bench.name().to_string()),
        ("topology".to_string(), run.platform.name.clone()),
        (
            "thieves".to_string(),
            run.options.thieves.unwrap_or(run.spec.cores).to_string(),
        ),
        ("trace".to_string(), format!("{:?}", run.options.trace)),
    ]);
    let meta = colored_trace::TraceMeta {
        configuration,
        fidelity: run.options.fidelity.name().to_string(),
        simulated: true,
        cycles_per_us: run.platform.hz / 1e6,
        handler_names: run.outcome.handler_names.clone(),
        origin: Some(0),
        end: Some(run.outcome.cycles),
        counters: None,
    };
    Some(colored_trace::Trace {
        meta,
        cores: std::mem::take(&mut run.outcome.traces),
    })
}

/// Every parameter of a run, as printed with its results.
pub fn parameters(run: &SimRun, calibration: &str) -> Value {
    let c = &run.costs;
    json!({
        "calibration": calibration,
        "platform": run.platform.describe(),
        "workload": run.workload,
        "engine": {
            "seed": run.spec.seed,
            "jitter": run.spec.jitter,
            "virtual_seconds_requested": run.spec.seconds,
            "batch": runtime_config(&run.spec).batch,
            "steal_amount": "one",
            "search_cycles": c.search,
            "fidelity": {
                "name": run.options.fidelity.name(),
                "idle": run.options.fidelity.idle.to_string(),
                "lock": run.options.fidelity.lock.to_string(),
                "post_batch": run.options.fidelity.post_batch,
                "steal_walk": run.options.fidelity.steal_walk.to_string(),
            },
            "thieves": run.options.thieves.unwrap_or(run.spec.cores),
            "event_overhead_cycles_override": run.options.event_overhead_cycles,
        },
        "runtime_costs_cycles": {
            "design": c.design,
            "lock": c.lock,
            "line_transfer_from_core_0": &c.transfer[..c.cores],
            "wake_latency": c.wake_latency,
            "wake_post": c.wake_post,
            "search_nap": c.search_nap,
        },
    })
}

/// The result in the microbenchmarks' form, marked simulated, with its parameters.
pub fn to_result(run: &SimRun, calibration: &str) -> BenchResult {
    let o = &run.outcome;
    let t = &o.total;
    let per_steal = |x: u64| (t.steals > 0).then(|| x as f64 / t.steals as f64);
    let denom = (t.busy_cycles + t.idle_cycles) as f64;
    let mut extra = Map::new();
    extra.insert("simulated".into(), json!(true));
    extra.insert("cores".into(), json!(run.spec.cores));
    extra.insert("topology".into(), json!(run.platform.name));
    extra.insert("rounds".into(), json!(o.rounds));
    extra.insert("steal_threshold_cycles".into(), json!(o.steal_threshold));
    if let SimBench::Unbalanced(c) = run.spec.bench {
        extra.insert(
            "costs".into(),
            json!(if c == Costs::Annotated {
                "annotated"
            } else {
                "profiled"
            }),
        );
    }
    extra.insert("per_core".into(), json!(o.cores));
    extra.insert("parameters".into(), parameters(run, calibration));
    BenchResult {
        bench: run.spec.bench.name().into(),
        runtime: run.spec.queue.as_str().into(),
        stealing: run.spec.stealing.as_str().into(),
        steal_amount: run
            .spec
            .stealing
            .time_left()
            .then(|| StealAmount::One.as_str().into()),
        workers: run.spec.cores,
        seconds: run.seconds(),
        events: o.events,
        kevents_per_sec: run.kevents_per_sec(),
        steals: t.steals,
        steal_attempts: t.steal_attempts,
        stolen_colors: Some(t.stolen_colors),
        steal_cost_cycles: per_steal(t.steal_cost_cycles),
        stolen_time_cycles: per_steal(t.stolen_time_cycles),
        locking_time_pct: (denom > 0.0).then(|| 100.0 * t.lock_cycles as f64 / denom),
        l2_misses_per_event: (o.events > 0).then(|| t.l2_misses as f64 / o.events as f64),
        fidelity: Some(run.options.fidelity.name().into()),
        steal_nodes_visited: per_steal(t.steal_nodes),
        extra,
        env: Some(microbench_defs::env::detect()),
    }
}
