//! Calibration: what each step of the runtime, each benchmark kernel and each level of the memory
//! hierarchy costs on this machine, measured once and stored as JSON that the simulation reads
//! (`microbenches simulate calibrate --out FILE`; rerun on another machine to recalibrate).
//!
//! Runtime steps are timed on the real code through the simulator's seam
//! (`colored_runtime::stepped::SimRuntime`, single-threaded: pop, run, local post, flush, post to
//! another core, steal per victim) or on a threaded `Runtime` (wake-up of a parked worker, the
//! search nap), cache-line transfers between two threads pinned to different CPUs, the kernels
//! (the benchmarks' own functions) on cache-resident data, and the memory levels by a pointer
//! chase (latency) and by a sequential pass (cost per line, the benchmarks' access pattern).
//! Every figure is the median of repeated samples, in cycles of the time-stamp counter.

use anyhow::{bail, Context, Result};
use colored_runtime::stepped::{Round, SimRuntime, StealTry, Step, SEARCH_NAP};
use colored_runtime::topology::Machine;
use colored_runtime::{tsc, Color, HandlerSpec, QueueKind, Runtime, RuntimeConfig, StealPolicy};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// One queue design's step costs, cycles.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DesignCosts {
    /// Running one event: the `Ctx`, the call, the worker's accounting (closure empty).
    pub run_event: f64,
    /// Popping one batch, the core lock included (queue of 50 000 colors, one event each).
    pub pop: f64,
    /// A handler's post to its own core, its share of the `Ctx`'s flushes every 32 included.
    pub post_local: f64,
    /// Flushing one buffered event (the core lock and one enqueue).
    pub flush_one: f64,
    /// Each further event of a flush.
    pub push: f64,
    /// A handler's post to a color another core owns (the post path, lock included, without
    /// the cache-line transfers, which [`Calibration::line_transfer`] adds).
    pub post_remote: f64,
    /// A steal: fixed part (both locks, the choice).
    pub steal_base: f64,
    /// A steal: per color moved.
    pub steal_per_color: f64,
    /// A steal: per event moved.
    pub steal_per_event: f64,
    /// A steal: per event queued on the victim (libasync-smp rebuilds its whole FIFO).
    pub steal_per_queued: f64,
    /// A victim examined under both locks that gave nothing.
    pub steal_fail: f64,
    /// Moving a color with nothing queued to another core (`Handle::place`: both locks, the
    /// map), as a fork does for every color a steal moved in the previous round.
    pub place: f64,
}

/// The benchmarks' kernels on cache-resident data, cycles.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Kernels {
    /// What `tsc::spin_cycles(c)` takes beyond `c` (reading the counter to stop).
    pub spin_overshoot: f64,
    /// `penalty` A: writing its array, per byte.
    pub penalty_fill_per_byte: f64,
    /// `penalty` B: its running sum over a slice, per byte.
    pub penalty_touch_per_byte: f64,
    /// `cache-efficient` A: generating an array of 1 024 elements and splitting it.
    pub ce_generate: f64,
    /// `cache-efficient` B: sorting one half (512 elements).
    pub ce_sort: f64,
    /// `cache-efficient` C: the merge of both halves.
    pub ce_merge: f64,
}

/// The memory hierarchy of this machine.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MemoryCosts {
    /// Load-to-use latency by level ("1", "2", "3", ..., "memory"): a dependent pointer chase in
    /// a buffer of half the level's size (memory: larger than the last level).
    pub latency: BTreeMap<String, f64>,
    /// Cycles per 64-byte line of a sequential pass over a buffer resident at that level, beyond
    /// the same pass on L1-resident data.
    pub sequential_line: BTreeMap<String, f64>,
    /// Buffer sizes used, bytes.
    pub buffer_bytes: BTreeMap<String, u64>,
    /// Cycles per line of the same pass over [`REMOTE_BYTES`] that another core has just written
    /// (modified in its private caches: a stolen `penalty` chain's next slices), beyond the pass
    /// on L1-resident data; `None` with one CPU, or in a calibration that predates it.
    #[serde(default)]
    pub remote_dirty_line: Option<f64>,
}

/// Bytes of the buffer [`MemoryCosts::remote_dirty_line`] is measured on: a few of the cache
/// model's blocks, of the order of a `penalty` array sized to a 2 MB L2.
pub const REMOTE_BYTES: usize = 16 * 1024;

/// A calibration file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Calibration {
    /// Format version of this file.
    pub version: u32,
    /// Where and when it was measured.
    pub cpu_model: String,
    pub cores: usize,
    pub kernel: String,
    pub git_commit: String,
    /// Time-stamp counter rate (cycles per second).
    pub cycles_per_sec: f64,
    pub designs: BTreeMap<String, DesignCosts>,
    /// Uncontended acquire and release of a core lock (the worker's parking check).
    pub lock: f64,
    /// One-way transfer of a cache line between two cores (half a ping-pong round trip).
    pub line_transfer: f64,
    /// From a post to a parked worker until its event starts.
    pub wake_latency: f64,
    /// What waking a parked worker adds to the post that does it.
    pub wake_post: f64,
    /// How long the worker's search nap (`park_timeout` of the runtime's SEARCH_NAP) lasts.
    pub search_nap: f64,
    pub kernels: Kernels,
    pub memory: MemoryCosts,
    /// Samples per median (the quality of the figures).
    pub samples: usize,
}

pub const VERSION: u32 = 1;

impl Calibration {
    /// Read a calibration file.
    pub fn load(path: &Path) -> Result<Calibration> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading calibration {}", path.display()))?;
        let c: Calibration = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a calibration file", path.display()))?;
        if c.version != VERSION {
            bail!(
                "{}: calibration format {} (this build reads {VERSION}); run `microbenches simulate calibrate --out FILE` again",
                path.display(),
                c.version
            );
        }
        for d in ["libasync", "mely"] {
            if !c.designs.contains_key(d) {
                bail!("{}: no costs for the {d} design", path.display());
            }
        }
        Ok(c)
    }

    pub fn design(&self, q: QueueKind) -> &DesignCosts {
        &self.designs[q.as_str()]
    }
}

/// The median of a calibration's samples (the project's one median; every step takes some).
fn median(v: Vec<f64>) -> f64 {
    edge::median::median(v).expect("a calibration step took no finite sample")
}

/// The mean without the largest 1% (on a shared machine a few timed operations include a
/// preemption of the thread, milliseconds that are no part of the operation's cost).
fn trimmed_mean(mut v: Vec<f64>) -> f64 {
    assert!(!v.is_empty());
    v.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    let keep = v.len() - v.len() / 100;
    v[..keep].iter().sum::<f64>() / keep as f64
}

/// Median of `samples` runs of `f`, each returning cycles per unit.
fn med(samples: usize, mut f: impl FnMut() -> f64) -> f64 {
    median((0..samples).map(|_| f()).collect())
}

fn time<R>(f: impl FnOnce() -> R) -> (u64, R) {
    let t0 = tsc::now();
    let r = f();
    (tsc::since(t0), r)
}

fn sim(queue: QueueKind, stealing: StealPolicy, workers: usize) -> Result<SimRuntime> {
    let cfg = RuntimeConfig {
        workers,
        queue,
        stealing,
        ..Default::default()
    };
    Ok(SimRuntime::new(
        cfg,
        &Machine::from_sysfs().resized(workers),
    )?)
}

/// Colors owned by core `w` of `n` (the map's initial `color % n`), from 1 on.
fn colors_of(w: usize, n: usize, count: usize) -> impl Iterator<Item = u32> {
    (1..)
        .map(move |c| c as u32)
        .filter(move |c| *c as usize % n == w)
        .take(count)
}

const FORK_EVENTS: usize = 50_000;

/// Fork/join rounds of `FORK_EVENTS` empty events of distinct colors on core 0 of a 1-core
/// runtime (a fork posts them, then every event is popped and run); the second round is timed,
/// once the queues' storage has grown (as in a benchmark's steady state): (post per event, pop
/// per batch, run per event).
fn fork_round(queue: QueueKind) -> Result<(f64, f64, f64)> {
    let mut s = sim(queue, StealPolicy::Off, 1)?;
    let h = s.register(HandlerSpec::new("e"));
    one_round(&mut s, h)?;
    one_round(&mut s, h)
}

fn one_round(s: &mut SimRuntime, h: colored_runtime::HandlerId) -> Result<(f64, f64, f64)> {
    // Each post is timed inside the fork, so a preempted post can be left out (`trimmed_mean`).
    let posts = Arc::new(std::sync::Mutex::new(Vec::with_capacity(FORK_EVENTS)));
    let p = posts.clone();
    s.handle().post(Color(0), h, move |ctx| {
        let mut times = p.lock().expect("calibration lock");
        for c in 1..=FORK_EVENTS as u32 {
            let (t, _) = time(|| ctx.post(Color(c), h, |_| {}));
            times.push(t as f64);
        }
    })?;
    s.pop(0).context("the fork is queued")?;
    s.run_next(0);
    s.flush(0);
    s.finish_batch(0);
    let (mut pops, mut runs) = (Vec::new(), Vec::new());
    loop {
        let (t, n) = time(|| s.pop(0));
        let Some(n) = n else { break };
        pops.push(t as f64);
        for _ in 0..n {
            let (t, _) = time(|| s.run_next(0));
            runs.push(t as f64);
        }
        s.finish_batch(0);
    }
    anyhow::ensure!(
        runs.len() == FORK_EVENTS,
        "the fork's events did not all run"
    );
    let posts = std::mem::take(&mut *posts.lock().expect("calibration lock"));
    Ok((trimmed_mean(posts), trimmed_mean(pops), trimmed_mean(runs)))
}

/// Time to flush `k` events a handler posted to its own core: the median of `samples` flushes
/// after one warm-up on the same runtime.
fn flush_of(queue: QueueKind, k: usize, samples: usize) -> Result<f64> {
    let mut s = sim(queue, StealPolicy::Off, 1)?;
    let h = s.register(HandlerSpec::new("e"));
    let mut v = Vec::new();
    for i in 0..=samples {
        s.handle().post(Color(0), h, move |ctx| {
            for c in 1..=k as u32 {
                ctx.post(Color(c), h, |_| {});
            }
        })?;
        s.pop(0).context("queued")?;
        s.run_next(0);
        let (t, n) = time(|| s.flush(0));
        anyhow::ensure!(n == k, "flushed {n} of {k}");
        s.finish_batch(0);
        while s.pop(0).is_some() {
            while s.run_next(0).is_some() {}
            s.finish_batch(0);
        }
        if i > 0 {
            v.push(t as f64);
        }
    }
    Ok(median(v))
}

/// A handler on core 0 posting one event to a color of core 1, through the post path.
fn post_remote(queue: QueueKind) -> Result<f64> {
    let mut s = sim(queue, StealPolicy::Off, 2)?;
    let h = s.register(HandlerSpec::new("e"));
    let mut total = 0;
    let colors: Vec<u32> = colors_of(1, 2, 1_000).collect();
    for &c in &colors {
        let (t, ok) = time(|| s.post_from(0, Color(c), h, |_| {}));
        anyhow::ensure!(ok, "post refused");
        total += t;
    }
    Ok(total as f64 / colors.len() as f64)
}

/// Moving 1 000 colors with nothing queued from core 1 to core 0, per color.
fn place_cost(queue: QueueKind) -> Result<f64> {
    let s = sim(queue, StealPolicy::Off, 2)?;
    let colors: Vec<Color> = colors_of(1, 2, 1_000).map(Color).collect();
    let n = colors.len();
    let (t, r) = time(|| s.handle().place_all(colors, 0));
    r?;
    anyhow::ensure!(s.handle().core_of(Color(1)) == 0, "place did not move");
    Ok(t as f64 / n as f64)
}

/// Victim core 0 of a 2-core runtime holding `colors` colors of `per_color` events each (and
/// spare colors of one event, so libasync-smp's "at most half" rule allows the steals); one steal
/// by core 1 warms the structures a steal reuses (libasync's scratch queue, the thief's
/// color-queue slab), then the second is timed: its time and what it took.
fn steal_once(
    queue: QueueKind,
    policy: StealPolicy,
    colors: usize,
    per_color: usize,
) -> Result<(f64, StealTry)> {
    let mut s = sim(queue, policy, 2)?;
    let h = s.register(HandlerSpec::new("e").cost_cycles(100_000));
    let spare: Vec<u32> = colors_of(0, 2, 2).collect();
    let mine: Vec<u32> = colors_of(0, 2, colors + 2).skip(2).collect();
    // A spare color first: the warm-up steal takes it (every rule allows a one-event color).
    s.handle().post(Color(spare[0]), h, |_| {})?;
    for &c in &mine {
        for _ in 0..per_color {
            s.handle().post(Color(c), h, |_| {})?;
        }
    }
    s.handle().post(Color(spare[1]), h, |_| {})?;
    if !matches!(s.steal_from(1, 0, Round::Search), StealTry::Stole { .. }) {
        bail!("{queue}: the warm-up steal took nothing");
    }
    let (t, r) = time(|| s.steal_from(1, 0, Round::Search));
    Ok((t as f64, r))
}

/// A victim (one color queued) examined under both locks without a steal, repeated.
fn steal_fail(queue: QueueKind, samples: usize) -> Result<f64> {
    let mut s = sim(queue, StealPolicy::Base, 2)?;
    let h = s.register(HandlerSpec::new("e"));
    s.handle().post(Color(2), h, |_| {})?;
    let mut v = Vec::new();
    for _ in 0..samples {
        let (t, failed) = time(|| {
            (0..100).all(|_| matches!(s.steal_from(1, 0, Round::Search), StealTry::Failed { .. }))
        });
        anyhow::ensure!(failed, "{queue}: a one-color victim gave a steal");
        v.push(t as f64 / 100.0);
    }
    Ok(median(v))
}

/// Least-squares fit of `y = a + b x`.
fn fit(points: &[(f64, f64)]) -> (f64, f64) {
    let n = points.len() as f64;
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (x, y) in points {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
    }
    let b = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    (my - b * mx, b)
}

fn design_costs(queue: QueueKind, samples: usize) -> Result<DesignCosts> {
    let mut fork = Vec::new();
    for _ in 0..samples.clamp(1, 5) {
        fork.push(fork_round(queue)?);
    }
    let post_local = median(fork.iter().map(|f| f.0).collect());
    let pop = median(fork.iter().map(|f| f.1).collect());
    let run_event = median(fork.iter().map(|f| f.2).collect());
    let flush_one = flush_of(queue, 1, 10 * samples)?;
    let push = ((flush_of(queue, 16, 10 * samples)? - flush_one) / 15.0).max(0.0);
    let mut pr = Vec::new();
    for _ in 0..samples {
        pr.push(post_remote(queue)?);
    }
    let post_remote = median(pr);
    let place = med(samples, || place_cost(queue).unwrap_or(f64::NAN));
    anyhow::ensure!(place.is_finite(), "{queue}: place could not be timed");
    // A steal is one long operation: the least of the samples is the one no preemption hit.
    let steal = |policy, colors, per_color| -> Result<f64> {
        let mut best = f64::INFINITY;
        for _ in 0..samples {
            let (t, r) = steal_once(queue, policy, colors, per_color)?;
            anyhow::ensure!(
                matches!(r, StealTry::Stole { .. }),
                "{queue}: calibration steal took nothing ({colors} colors x {per_color})"
            );
            best = best.min(t);
        }
        Ok(best)
    };
    // (fixed part, per color, per event moved, per event queued on the victim)
    let (steal_base, steal_per_color, steal_per_event, steal_per_queued) = match queue {
        QueueKind::Libasync => {
            // The cost's dependence on the victim's length, fitted. The victims hold one event
            // per color and at most 30 000 colors, so no two share a slot of the color map
            // (`MAP_SLOTS`, every second color here): 50 000 did, and the steal then walked
            // from one event of the shared slot to the other, 32 K events apart (564 us against
            // 0.1-0.2 us for a lone color; the queue's `construct_event_set` walks a color's
            // pending events, not the queue).
            let mut pts = Vec::new();
            for len in [1_000usize, 10_000, 30_000] {
                pts.push((len as f64, steal(StealPolicy::Base, len, 1)?));
            }
            let (base, per_queued) = fit(&pts);
            (base.max(0.0), 0.0, 0.0, per_queued.max(0.0))
        }
        QueueKind::Mely => {
            let one = steal(StealPolicy::Base, 4, 1)?;
            let many_events = steal(StealPolicy::Base, 4, 100)?;
            let per_event = ((many_events - one) / 99.0).max(0.0);
            // `all`'s time-left steal of the paper takes one color; our `Half` variant's cost per
            // color is what moving several colors adds: measured on 32 worthy colors.
            let mut many_colors = f64::INFINITY;
            for _ in 0..samples {
                many_colors = many_colors.min(steal_half(32)?);
            }
            let per_color = ((many_colors - one) / 31.0).max(0.0);
            (
                (one - per_event - per_color).max(0.0),
                per_color,
                per_event,
                0.0,
            )
        }
    };
    Ok(DesignCosts {
        run_event,
        pop,
        post_local,
        flush_one,
        push,
        post_remote,
        steal_base,
        steal_per_color,
        steal_per_event,
        steal_per_queued,
        steal_fail: steal_fail(queue, samples)?,
        place,
    })
}

/// A `Half` time-left steal of `colors` worthy one-event colors (`colors` at most
/// `MAX_STEAL_COLORS`), after a warm-up steal of as many.
fn steal_half(colors: usize) -> Result<f64> {
    let cfg = RuntimeConfig {
        workers: 2,
        queue: QueueKind::Mely,
        stealing: StealPolicy::TimeLeft,
        steal_amount: colored_runtime::StealAmount::Half,
        ..Default::default()
    };
    let mut s = SimRuntime::new(cfg, &Machine::from_sysfs().resized(2))?;
    let h = s.register(HandlerSpec::new("e").cost_cycles(1_000_000));
    for c in colors_of(0, 2, 4 * colors) {
        s.handle().post(Color(c), h, |_| {})?;
    }
    s.steal_from(1, 0, Round::Search);
    let (t, r) = time(|| s.steal_from(1, 0, Round::Search));
    match r {
        StealTry::Stole { colors: k, .. } if k == colors => Ok(t as f64),
        other => bail!("a half steal of {colors} colors took {other:?}"),
    }
}

/// Uncontended lock and unlock: the machine's `FallAsleep` step on a core with work queued (the
/// parking check under the own lock, after the idle period's start, which takes no lock with
/// stealing off).
fn lock_cost(samples: usize) -> Result<f64> {
    let mut s = sim(QueueKind::Mely, StealPolicy::Off, 1)?;
    let h = s.register(HandlerSpec::new("e"));
    s.handle().post(Color(1), h, |_| {})?;
    Ok(med(samples, || {
        let (t, parked) = time(|| {
            let mut p = false;
            for _ in 0..100 {
                s.queue_empty(0);
                p |= s.fall_asleep(0) != Step::Work;
            }
            p
        });
        assert!(!parked, "work is queued");
        t as f64 / 100.0
    }))
}

fn pin(cpu: usize) {
    // SAFETY: the set is a zeroed plain-data cpu_set_t with one CPU set below CPU_SETSIZE; pid 0
    // is the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu % libc::CPU_SETSIZE as usize, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Half a round trip of a cache line between two threads pinned to different CPUs (ping-pong on
/// one atomic; the median of individually timed round trips, so a preempted vCPU does not count),
/// or `None` with a single CPU.
fn line_transfer(samples: usize) -> Option<f64> {
    let cpus = colored_runtime::topology::allowed_cpus();
    if cpus.len() < 2 {
        return None;
    }
    let rounds = 2_000 * samples as u64;
    let flag = Arc::new(AtomicU64::new(0));
    let f = flag.clone();
    let other = cpus[1];
    let pong = std::thread::spawn(move || {
        pin(other);
        for i in 0..rounds {
            while f.load(Ordering::Acquire) != 2 * i + 1 {
                std::hint::spin_loop();
            }
            f.store(2 * i + 2, Ordering::Release);
        }
    });
    let first = cpus[0];
    let ping = std::thread::spawn(move || {
        pin(first);
        let mut trips = Vec::with_capacity(rounds as usize);
        for i in 0..rounds {
            let t0 = tsc::now();
            flag.store(2 * i + 1, Ordering::Release);
            while flag.load(Ordering::Acquire) != 2 * i + 2 {
                std::hint::spin_loop();
            }
            trips.push(tsc::since(t0) as f64);
        }
        trips
    });
    let trips = ping.join().ok()?;
    pong.join().ok()?;
    Some(median(trips) / 2.0)
}

/// The `penalty` B pass over [`REMOTE_BYTES`] that a thread pinned to another CPU has just
/// written, per line, beyond a second pass over the same buffer (then in this core's L1): the
/// median of `40 * samples` hand-offs, or `None` with a single CPU.
fn remote_dirty_line(samples: usize) -> Option<f64> {
    let cpus = colored_runtime::topology::allowed_cpus();
    if cpus.len() < 2 {
        return None;
    }
    let rounds = 40 * samples as u64;
    let words = REMOTE_BYTES / 8;
    let lines = REMOTE_BYTES.div_ceil(64) as f64;
    let buf = Arc::new(std::sync::Mutex::new(vec![1u64; words]));
    let turn = Arc::new(AtomicU64::new(0));
    let (b, t) = (buf.clone(), turn.clone());
    let other = cpus[1];
    let writer = std::thread::spawn(move || {
        pin(other);
        for i in 0..rounds {
            while t.load(Ordering::Acquire) != 2 * i {
                std::hint::spin_loop();
            }
            let mut v = b.lock().unwrap_or_else(|e| e.into_inner());
            for (j, x) in v.iter_mut().enumerate() {
                *x = j as u64 ^ i;
            }
            drop(v);
            t.store(2 * i + 1, Ordering::Release);
        }
    });
    let first = cpus[0];
    let reader = std::thread::spawn(move || {
        pin(first);
        let mut extra = Vec::with_capacity(rounds as usize);
        for i in 0..rounds {
            while turn.load(Ordering::Acquire) != 2 * i + 1 {
                std::hint::spin_loop();
            }
            let mut v = buf.lock().unwrap_or_else(|e| e.into_inner());
            let (remote, _) =
                time(|| std::hint::black_box(microbench_defs::penalty::touch_slice(&mut v)));
            let (local, _) =
                time(|| std::hint::black_box(microbench_defs::penalty::touch_slice(&mut v)));
            drop(v);
            extra.push((remote as f64 - local as f64).max(0.0) / lines);
            turn.store(2 * i + 2, Ordering::Release);
        }
        extra
    });
    let extra = reader.join().ok()?;
    writer.join().ok()?;
    Some(median(extra))
}

/// Wake-up of a parked worker on a threaded runtime: (post to its first instruction, what the
/// post that wakes costs beyond one that does not).
fn wake_costs(samples: usize) -> Result<(f64, f64)> {
    let rt = Runtime::new(RuntimeConfig {
        workers: 2,
        queue: QueueKind::Mely,
        stealing: StealPolicy::Off,
        ..Default::default()
    })?;
    let h = rt.register(HandlerSpec::new("probe"));
    let (tx, rx) = std::sync::mpsc::channel::<u64>();
    let (mut lat, mut parked_post, mut busy_post) = (Vec::new(), Vec::new(), Vec::new());
    // Color 1 lives on worker 1.
    for _ in 0..samples.max(5) * 4 {
        // Past the search interval (200 us), the worker parks.
        std::thread::sleep(Duration::from_millis(2));
        let tx1 = tx.clone();
        let t0 = tsc::now();
        rt.post(Color(1), h, move |_| {
            let _ = tx1.send(tsc::now());
        })?;
        parked_post.push(tsc::since(t0) as f64);
        let t1 = rx.recv_timeout(Duration::from_secs(5))?;
        lat.push(t1.wrapping_sub(t0) as f64);
        // The same post while worker 1 runs a long event: no wake-up.
        let (btx, brx) = std::sync::mpsc::channel::<()>();
        rt.post(Color(1), h, move |_| {
            let _ = btx.send(());
            tsc::spin_cycles((tsc::cycles_per_sec() / 1_000.0) as u64);
        })?;
        brx.recv_timeout(Duration::from_secs(5))?;
        let t0 = tsc::now();
        rt.post(Color(1), h, |_| {})?;
        busy_post.push(tsc::since(t0) as f64);
    }
    drop(rt);
    Ok((
        median(lat),
        (median(parked_post) - median(busy_post)).max(0.0),
    ))
}

/// The worker's search nap as this kernel serves it.
fn nap_cost(samples: usize) -> f64 {
    med(samples.max(5) * 4, || {
        let (t, _) = time(|| std::thread::park_timeout(SEARCH_NAP));
        t as f64
    })
}

fn kernels(samples: usize) -> Kernels {
    let spin = med(samples, || {
        let (t, _) = time(|| {
            for _ in 0..1_000 {
                tsc::spin_cycles(100);
            }
        });
        t as f64 / 1_000.0 - 100.0
    });
    // 16 KB: L1-resident on every machine this project targets.
    let mut arr = vec![0u64; 2_048];
    microbench_defs::penalty::fill(&mut arr);
    let fill = med(samples, || {
        let (t, _) = time(|| {
            for _ in 0..100 {
                microbench_defs::penalty::fill(std::hint::black_box(&mut arr));
            }
        });
        t as f64 / 100.0 / (arr.len() * 8) as f64
    });
    let touch = med(samples, || {
        let (t, _) = time(|| {
            for _ in 0..100 {
                std::hint::black_box(microbench_defs::penalty::touch_slice(std::hint::black_box(
                    &mut arr,
                )));
            }
        });
        t as f64 / 100.0 / (arr.len() * 8) as f64
    });
    let n = microbench_defs::cache_efficient::Params::for_workers(1).elements;
    let generate = med(samples, || {
        let (t, _) = time(|| {
            for k in 0..100 {
                std::hint::black_box(microbench_defs::cache_efficient::generate(k, n));
            }
        });
        t as f64 / 100.0
    });
    let halves = microbench_defs::cache_efficient::generate(7, n);
    let sort = med(samples, || {
        let mut total = 0;
        for _ in 0..100 {
            let mut v = halves[0].clone();
            let (t, _) = time(|| v.sort_unstable());
            total += t;
            std::hint::black_box(&v);
        }
        total as f64 / 100.0
    });
    let mut sorted = halves.clone();
    sorted[0].sort_unstable();
    sorted[1].sort_unstable();
    let merge = med(samples, || {
        let (t, _) = time(|| {
            for _ in 0..100 {
                std::hint::black_box(microbench_defs::cache_efficient::merge(
                    &sorted[0], &sorted[1],
                ));
            }
        });
        t as f64 / 100.0
    });
    Kernels {
        spin_overshoot: spin.max(0.0),
        penalty_fill_per_byte: fill,
        penalty_touch_per_byte: touch,
        ce_generate: generate,
        ce_sort: sort,
        ce_merge: merge,
    }
}

/// A buffer of `words` u64 whose pages the kernel is asked to back with huge pages (so a pointer
/// chase measures the caches and memory, not page walks; where transparent huge pages are off
/// the request does nothing).
fn huge_buffer(words: usize, fill: u64) -> Vec<u64> {
    let mut v: Vec<u64> = Vec::with_capacity(words);
    const HUGE: usize = 2 << 20;
    let start = v.as_mut_ptr() as usize;
    let begin = start.next_multiple_of(HUGE);
    let end = (start + words * 8) / HUGE * HUGE;
    if end > begin {
        // SAFETY: [begin, end) lies inside `v`'s allocation (its capacity is `words` u64 from
        // `start`); MADV_HUGEPAGE only changes how those pages are backed, not their contents,
        // and nothing has been written there yet.
        unsafe {
            libc::madvise(begin as *mut libc::c_void, end - begin, libc::MADV_HUGEPAGE);
        }
    }
    v.resize(words, fill);
    v
}

/// A random cyclic permutation of the lines of `bytes` bytes, as next-indices (in u64 units).
fn chase_buffer(bytes: usize, seed: u64) -> Vec<u64> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let lines = (bytes / 64).max(2);
    let mut order: Vec<u32> = (0..lines as u32).collect();
    order.shuffle(&mut rand::rngs::SmallRng::seed_from_u64(seed));
    let mut buf = huge_buffer(lines * 8, 0);
    for k in 0..lines {
        buf[order[k] as usize * 8] = (order[(k + 1) % lines] as u64) * 8;
    }
    buf
}

/// Cycles per dependent load, chasing through `buf` after one lap to warm it: the median of
/// short stretches (2 000 loads each), so a preemption spoils one stretch, not the figure.
fn chase(buf: &[u64], stretches: usize) -> f64 {
    let mut i = 0usize;
    for _ in 0..(buf.len() / 8).min(4_000_000) {
        i = buf[i] as usize;
    }
    let v = (0..stretches)
        .map(|_| {
            let (t, end) = time(|| {
                for _ in 0..2_000 {
                    i = buf[i] as usize;
                }
                i
            });
            i = std::hint::black_box(end);
            t as f64 / 2_000.0
        })
        .collect();
    median(v)
}

/// Cycles per line of the `penalty` B pass over `buf` where it resides: a warm pass, then a pass
/// timed in 64 KB stretches (median).
fn sequential(buf: &mut [u64]) -> f64 {
    std::hint::black_box(microbench_defs::penalty::touch_slice(buf));
    const STRETCH: usize = 64 * 1024 / 8;
    let v = buf
        .chunks_mut(STRETCH)
        .map(|c| {
            let (t, _) = time(|| std::hint::black_box(microbench_defs::penalty::touch_slice(c)));
            t as f64 / (c.len() * 8).div_ceil(64) as f64
        })
        .collect();
    median(v)
}

/// Buffer sizes probing each level: half of L1 and of L2; four L2s for L3 (inside any L3, and
/// within reach of the TLB with huge pages); memory past four times the last level (1-2 GiB).
fn probe_sizes(this: &Machine) -> Vec<(String, usize)> {
    let caches = this
        .cpus
        .first()
        .map(|c| c.caches.clone())
        .unwrap_or_default();
    let size = |level: u8| {
        caches
            .iter()
            .find(|c| c.level == level)
            .map(|c| c.bytes as usize)
    };
    let mut out = Vec::new();
    for c in &caches {
        let bytes = match c.level {
            1 | 2 => c.bytes as usize / 2,
            _ => (4 * size(2).unwrap_or(1 << 20)).min(c.bytes as usize / 2),
        };
        out.push((c.level.to_string(), bytes));
    }
    let last = caches.last().map_or(8 << 20, |c| c.bytes as usize);
    out.push(("memory".into(), (4 * last).clamp(1 << 30, 2 << 30)));
    out
}

fn memory_costs(samples: usize) -> MemoryCosts {
    let mut out = MemoryCosts {
        latency: BTreeMap::new(),
        sequential_line: BTreeMap::new(),
        buffer_bytes: BTreeMap::new(),
        remote_dirty_line: None,
    };
    let mut l1_line = None;
    out.remote_dirty_line = remote_dirty_line(samples);
    for (name, bytes) in probe_sizes(&Machine::from_sysfs()) {
        let buf = chase_buffer(bytes, 7);
        let lat = chase(&buf, 50 * samples);
        drop(buf);
        let mut seq_buf = huge_buffer(bytes / 8, 1);
        let line = sequential(&mut seq_buf);
        let base = *l1_line.get_or_insert(line);
        out.latency.insert(name.clone(), lat);
        out.sequential_line
            .insert(name.clone(), (line - base).max(0.0));
        out.buffer_bytes.insert(name, bytes as u64);
    }
    out
}

/// Measure everything (about 10-30 s, most of it in the memory levels and the threaded parts).
pub fn calibrate(samples: usize, log: &mut dyn FnMut(&str)) -> Result<Calibration> {
    let env = microbench_defs::env::detect();
    tsc::cycles_per_sec();
    let mut designs = BTreeMap::new();
    for q in [QueueKind::Libasync, QueueKind::Mely] {
        log(&format!("runtime steps, {q} design"));
        designs.insert(q.as_str().to_string(), design_costs(q, samples)?);
    }
    log("lock, cache-line transfer, wake-up, search nap");
    let lock = lock_cost(samples)?;
    let line_transfer = line_transfer(samples).unwrap_or(0.0);
    let (wake_latency, wake_post) = wake_costs(samples)?;
    let search_nap = nap_cost(samples);
    log("benchmark kernels");
    let kernels = kernels(samples);
    log("memory hierarchy (pointer chase, sequential passes)");
    let memory = memory_costs(samples);
    Ok(Calibration {
        version: VERSION,
        cpu_model: env.cpu_model.unwrap_or_default(),
        cores: env.cores,
        kernel: env.kernel.unwrap_or_default(),
        git_commit: env.commit.unwrap_or_default(),
        cycles_per_sec: tsc::cycles_per_sec(),
        designs,
        lock,
        line_transfer,
        wake_latency,
        wake_post,
        search_nap,
        kernels,
        memory,
        samples,
    })
}

#[cfg(test)]
impl Calibration {
    /// A fixed calibration for tests (figures of the order this project's VMs measured).
    pub(crate) fn example() -> Calibration {
        let design = |pop, post_local, steal_per_queued| DesignCosts {
            run_event: 20.0,
            pop,
            post_local,
            flush_one: 160.0,
            push: 40.0,
            post_remote: 60.0,
            steal_base: 100.0,
            steal_per_color: 100.0,
            steal_per_event: 0.0,
            steal_per_queued,
            steal_fail: 45.0,
            place: 40.0,
        };
        let levels = |v: [f64; 4]| -> BTreeMap<String, f64> {
            ["1", "2", "3", "memory"]
                .iter()
                .zip(v)
                .map(|(k, x)| (k.to_string(), x))
                .collect()
        };
        let mut designs = BTreeMap::new();
        designs.insert("libasync".into(), design(40.0, 35.0, 70.0));
        designs.insert("mely".into(), design(45.0, 60.0, 0.0));
        Calibration {
            version: VERSION,
            cpu_model: "test".into(),
            cores: 2,
            kernel: "test".into(),
            git_commit: "test".into(),
            cycles_per_sec: 2.6e9,
            designs,
            lock: 18.0,
            line_transfer: 150.0,
            wake_latency: 30_000.0,
            wake_post: 10_000.0,
            search_nap: 200_000.0,
            kernels: Kernels {
                spin_overshoot: 50.0,
                penalty_fill_per_byte: 0.03,
                penalty_touch_per_byte: 0.09,
                ce_generate: 4_700.0,
                ce_sort: 7_900.0,
                ce_merge: 4_000.0,
            },
            memory: MemoryCosts {
                latency: levels([4.0, 15.0, 100.0, 300.0]),
                sequential_line: levels([0.0, 1.0, 6.0, 8.0]),
                buffer_bytes: levels([1.0, 2.0, 3.0, 4.0])
                    .into_iter()
                    .map(|(k, v)| (k, v as u64))
                    .collect(),
                remote_dirty_line: Some(30.0),
            },
            samples: 1,
        }
    }
}
