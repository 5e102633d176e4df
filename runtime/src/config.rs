//! Runtime configuration: plain data, parsed once at the edge (clap) and passed down.

use std::fmt;
use std::str::FromStr;

/// Which queue design the workers use.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum QueueKind {
    /// libasync-smp: one FIFO of events per core behind a per-core lock.
    Libasync,
    /// Mely: color-queues chained in a core-queue, batches per color, a stealing-queue.
    #[default]
    Mely,
}

/// Work-stealing policy.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StealPolicy {
    /// No stealing: colors stay where the map puts them.
    #[default]
    Off,
    /// libasync-smp's algorithm: core set from the most loaded core, first color not running.
    Base,
    /// Mely: steal only colors whose queued processing time exceeds the steal cost (how many per
    /// steal: [`StealAmount`]).
    TimeLeft,
    /// Mely: time-left with penalty-weighted processing time.
    Penalty,
    /// Mely: base choice, core set ordered by cache distance.
    Locality,
    /// Mely's full configuration: locality + time-left + penalty.
    All,
}

impl StealPolicy {
    /// Every policy, in the order the tables list them.
    pub const ALL: [StealPolicy; 6] = [
        StealPolicy::Off,
        StealPolicy::Base,
        StealPolicy::TimeLeft,
        StealPolicy::Penalty,
        StealPolicy::Locality,
        StealPolicy::All,
    ];
    /// Does this policy steal at all?
    pub fn enabled(self) -> bool {
        self != StealPolicy::Off
    }
    /// Does it keep the time-left stealing-queue?
    pub fn time_left(self) -> bool {
        matches!(
            self,
            StealPolicy::TimeLeft | StealPolicy::Penalty | StealPolicy::All
        )
    }
    /// Does it weight processing time by the handlers' penalties?
    pub fn penalty_weighted(self) -> bool {
        matches!(self, StealPolicy::Penalty | StealPolicy::All)
    }
    /// Does it order victims by cache distance?
    pub fn locality(self) -> bool {
        matches!(self, StealPolicy::Locality | StealPolicy::All)
    }
    /// The policy's name on the command line and in results.
    pub fn as_str(self) -> &'static str {
        match self {
            StealPolicy::Off => "off",
            StealPolicy::Base => "base",
            StealPolicy::TimeLeft => "time-left",
            StealPolicy::Penalty => "penalty",
            StealPolicy::Locality => "locality",
            StealPolicy::All => "all",
        }
    }
}

impl QueueKind {
    /// Whether the design keeps per-color queued time, which the time-left policies need (the
    /// design's own `Design::TIME_LEFT`; `queue` checks at compile time that they agree).
    pub(crate) const fn keeps_time_left(self) -> bool {
        match self {
            QueueKind::Libasync => false,
            QueueKind::Mely => true,
        }
    }

    /// The design's name on the command line and in results.
    pub fn as_str(self) -> &'static str {
        match self {
            QueueKind::Libasync => "libasync",
            QueueKind::Mely => "mely",
        }
    }
}

impl fmt::Display for StealPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
impl fmt::Display for QueueKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StealPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        StealPolicy::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown stealing policy {s:?} (expected off, base, time-left, penalty, locality or all)"))
    }
}

impl FromStr for QueueKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "libasync" => Ok(QueueKind::Libasync),
            "mely" => Ok(QueueKind::Mely),
            _ => Err(format!("unknown runtime {s:?} (expected libasync or mely)")),
        }
    }
}

/// How much a time-left steal (`time-left`, `penalty`, `all`) takes from its victim.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StealAmount {
    /// The Mely paper's (section IV-B): one color, the best worthy one (from the highest
    /// non-empty time-left interval).
    #[default]
    One,
    /// Ours: worthy colors, best interval first, until the thief holds half of the victim's
    /// queued time (at most 32 colors per steal).
    Half,
}

impl StealAmount {
    /// Both amounts, the paper's first.
    pub const ALL: [StealAmount; 2] = [StealAmount::One, StealAmount::Half];
    /// The amount's name on the command line and in results.
    pub fn as_str(self) -> &'static str {
        match self {
            StealAmount::One => "one",
            StealAmount::Half => "half",
        }
    }
}

impl fmt::Display for StealAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StealAmount {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        StealAmount::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| format!("unknown steal amount {s:?} (expected one or half)"))
    }
}

/// Where event closures live.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventStorage {
    /// Small closures inline in the event (no allocation per event).
    #[default]
    Inline,
    /// Every closure boxed (one allocation per event).
    Heap,
}

/// What an idle worker does while the runtime steals.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdleMode {
    /// Ours (see `idle`): at most half the workers search, napping between steal rounds, and
    /// each sleeps once its search time (`search_us`) is over.
    #[default]
    Bounded,
    /// The papers' (Mely II-A: "there is no interest in yielding cores"; libasync-smp's Figure
    /// 2 loop): every idle worker runs steal rounds back to back, with no searcher cap, no nap
    /// and no sleep, until work arrives or the runtime stops. With stealing off (or one worker)
    /// an idle worker still sleeps: spinning would burn a core with nothing it could find. The
    /// worker running the reactor's Epoll event still blocks in its poll when it finds nothing
    /// (after one steal round), as libasync-smp's select callback blocks in `select`.
    Spin,
}

/// The core queues' lock.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LockKind {
    /// Ours: test-and-test-and-set (a waiter spins on a plain load, the line stays shared)
    /// with exponential backoff, then yields the CPU.
    #[default]
    Backoff,
    /// libasync-smp's and Mely's spin lock (Mely II-A, IV-A): a waiter retries the atomic
    /// read-modify-write itself, with no backoff and no yield, so every try takes the lock's
    /// cache line away from the holder.
    Tas,
}

/// How a libasync steal collects the events of the color it chose (Mely's design reaches a
/// color's events through its color-queue and walks no list either way).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StealWalk {
    /// Ours: the walk goes on from the node where `choose_color_to_steal` found the color and
    /// stops at the color's pending count.
    #[default]
    FromChoice,
    /// libasync-smp's (Mely II-B, Figure 2): `construct_event_set(core, color)` is a separate
    /// function given only the color, so it walks the victim's single list again from its head,
    /// node by node, checking each node's color, until it has the color's pending count
    /// (footnote 1 of Mely II-B: the count spares the rest of the list).
    FromHead,
}

/// A preset of the four options in which this runtime differs from the papers' runtimes.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fidelity {
    /// This runtime's own choices: bounded idle search, backoff lock, posts buffered up to
    /// [`MAX_POST_BATCH`], the steal walk from the chosen node.
    #[default]
    Ours,
    /// The papers': spinning idle workers, test-and-set lock, every post taking the target's
    /// lock, libasync-smp's steal walk from the head.
    Paper,
}

/// Most posts to its own core a worker's event buffers before taking its core lock once for
/// them all (the default of [`RuntimeConfig::post_batch`]).
pub const MAX_POST_BATCH: usize = 32;

impl Fidelity {
    /// Both presets, ours first.
    pub const ALL: [Fidelity; 2] = [Fidelity::Ours, Fidelity::Paper];

    /// The preset's name on the command line and in results.
    pub fn as_str(self) -> &'static str {
        match self {
            Fidelity::Ours => "ours",
            Fidelity::Paper => "paper",
        }
    }

    /// Set the four options of `cfg` this preset covers (idle, lock, post batch, steal walk).
    pub fn apply(self, cfg: &mut RuntimeConfig) {
        FidelityOptions::of(self).apply(cfg)
    }
}

/// The four options a [`Fidelity`] preset covers, as one value (for a program that builds
/// several configurations with the same ones).
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize)]
pub struct FidelityOptions {
    /// [`RuntimeConfig::idle`].
    pub idle: IdleMode,
    /// [`RuntimeConfig::lock`].
    pub lock: LockKind,
    /// [`RuntimeConfig::post_batch`].
    pub post_batch: usize,
    /// [`RuntimeConfig::steal_walk`].
    pub steal_walk: StealWalk,
}

impl FidelityOptions {
    /// The options of preset `f`.
    pub fn of(f: Fidelity) -> Self {
        match f {
            Fidelity::Ours => FidelityOptions {
                idle: IdleMode::Bounded,
                lock: LockKind::Backoff,
                post_batch: MAX_POST_BATCH,
                steal_walk: StealWalk::FromChoice,
            },
            Fidelity::Paper => FidelityOptions {
                idle: IdleMode::Spin,
                lock: LockKind::Tas,
                post_batch: 1,
                steal_walk: StealWalk::FromHead,
            },
        }
    }

    /// The options `cfg` has.
    pub fn of_config(cfg: &RuntimeConfig) -> Self {
        FidelityOptions {
            idle: cfg.idle,
            lock: cfg.lock,
            post_batch: cfg.post_batch,
            steal_walk: cfg.steal_walk,
        }
    }

    /// Set them in `cfg`.
    pub fn apply(self, cfg: &mut RuntimeConfig) {
        cfg.idle = self.idle;
        cfg.lock = self.lock;
        cfg.post_batch = self.post_batch;
        cfg.steal_walk = self.steal_walk;
    }

    /// The preset they are, if they are one.
    pub fn preset(self) -> Option<Fidelity> {
        Fidelity::ALL
            .into_iter()
            .find(|&f| FidelityOptions::of(f) == self)
    }

    /// The preset's name, or `mixed` when the options were set one by one to neither.
    pub fn name(self) -> &'static str {
        self.preset().map_or("mixed", Fidelity::as_str)
    }
}

impl Default for FidelityOptions {
    /// Ours.
    fn default() -> Self {
        FidelityOptions::of(Fidelity::Ours)
    }
}

/// The command-line names of a small enum, and its `Display`/`FromStr` over them.
macro_rules! named {
    ($ty:ident, $what:literal, $($v:ident = $s:literal),+) => {
        impl $ty {
            /// The option's name on the command line and in results.
            pub fn name(self) -> &'static str {
                match self { $($ty::$v => $s,)+ }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s => Ok($ty::$v),)+
                    _ => Err(format!(concat!("unknown ", $what, " {:?} (expected ",
                        named!(@list $($s),+), ")"), s)),
                }
            }
        }
    };
    (@list $first:literal $(, $rest:literal)*) => { concat!($first $(, " or ", $rest)*) };
}

named!(IdleMode, "idle mode", Bounded = "bounded", Spin = "spin");
named!(LockKind, "lock", Backoff = "backoff", Tas = "tas");
named!(
    StealWalk,
    "steal walk",
    FromChoice = "from-choice",
    FromHead = "from-head"
);

impl fmt::Display for Fidelity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Fidelity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Fidelity::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| format!("unknown fidelity {s:?} (expected ours or paper)"))
    }
}

/// Everything a runtime is built from.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RuntimeConfig {
    /// Worker threads, one per core. More workers than cores is allowed (they are pinned round
    /// robin over the allowed CPUs and share them); 0 is rejected.
    pub workers: usize,
    /// The queue design.
    pub queue: QueueKind,
    /// The work-stealing policy.
    pub stealing: StealPolicy,
    /// What a time-left steal takes: one color (the paper's) or up to half the victim's queued
    /// time (ours). Ignored by the other policies.
    pub steal_amount: StealAmount,
    /// Mely: events of one color run before moving to the next color-queue.
    pub batch: usize,
    /// Pin worker `i` to the `i`-th allowed CPU (modulo their number).
    pub pin: bool,
    /// Threads in the blocking-I/O helper pool (started on first use).
    pub blocking_threads: usize,
    /// Where event closures live.
    pub event_storage: EventStorage,
    /// Time an idle worker keeps searching for work to steal (attempts separated by short
    /// naps, not a spin) before it sleeps, in microseconds. Only workers allowed to search do
    /// (at most half of them at once, see the idle protocol). Unused with [`IdleMode::Spin`],
    /// whose search has no end.
    pub search_us: u64,
    /// What an idle worker does while the runtime steals (ours: bounded search, then sleep;
    /// the papers': spin).
    pub idle: IdleMode,
    /// The core queues' lock (ours: test-and-test-and-set with backoff; the papers':
    /// test-and-set).
    pub lock: LockKind,
    /// Posts an event makes to colors of its own core are buffered and enqueued under one
    /// lock per this many (and when the event returns); 1 takes the core lock for every post,
    /// as libasync-smp's `cpucb` did. 1 to [`MAX_POST_BATCH`].
    pub post_batch: usize,
    /// How a libasync steal collects the chosen color's events.
    pub steal_walk: StealWalk,
    /// Record what each worker does into a bounded per-worker buffer (`None`: off; a worker
    /// then pays one predictable branch per record point). Collected by
    /// [`Runtime::shutdown_traced`](crate::Runtime::shutdown_traced).
    #[serde(skip)]
    pub trace: Option<TraceSpec>,
}

/// How much of a run a trace keeps, per worker.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TraceSpec {
    /// The newest `capacity` records of each worker.
    Ring {
        /// Records kept per worker.
        capacity: usize,
    },
    /// The records starting `from_secs` to `from_secs + for_secs` seconds after the runtime
    /// started, at most `capacity` per worker.
    Window {
        /// Start of the window, in seconds since the runtime started.
        from_secs: f64,
        /// Length of the window, in seconds.
        for_secs: f64,
        /// Most records kept per worker.
        capacity: usize,
    },
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            queue: QueueKind::Mely,
            stealing: StealPolicy::Off,
            steal_amount: StealAmount::One,
            batch: 10,
            pin: true,
            blocking_threads: 4,
            event_storage: EventStorage::Inline,
            search_us: 200,
            idle: IdleMode::Bounded,
            lock: LockKind::Backoff,
            post_batch: MAX_POST_BATCH,
            steal_walk: StealWalk::FromChoice,
            trace: None,
        }
    }
}

/// Why a runtime could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("a runtime needs at least one worker")]
    /// `workers` is 0.
    NoWorkers,
    #[error("{0} workers requested; at most 65535 are supported")]
    /// More workers than the color map can name.
    TooManyWorkers(usize),
    #[error("the libasync queues support only stealing off or base, not {0}")]
    /// The queue design cannot run this stealing policy.
    PolicyNotSupported(StealPolicy),
    #[error("batch must be at least 1")]
    /// `batch` is 0.
    ZeroBatch,
    #[error("post batch must be 1 to {MAX_POST_BATCH}, not {0}")]
    /// `post_batch` is 0 or above [`MAX_POST_BATCH`].
    PostBatch(usize),
    #[error("could not start worker thread: {0}")]
    /// A worker thread could not be started.
    Spawn(#[from] std::io::Error),
}

impl RuntimeConfig {
    /// The options a trace's metadata names the run by, as name/value pairs (workers, queue,
    /// stealing, steal amount, batch and the four fidelity options), in this order; a traced
    /// program appends what else describes its run.
    pub fn trace_configuration(&self) -> Vec<(String, String)> {
        [
            ("workers", self.workers.to_string()),
            ("queue", self.queue.to_string()),
            ("stealing", self.stealing.to_string()),
            ("steal-amount", self.steal_amount.to_string()),
            ("batch", self.batch.to_string()),
            ("idle", self.idle.to_string()),
            ("lock", self.lock.to_string()),
            ("post-batch", self.post_batch.to_string()),
            ("steal-walk", self.steal_walk.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The preset this configuration's four fidelity options match, if they match one.
    pub fn fidelity(&self) -> Option<Fidelity> {
        FidelityOptions::of_config(self).preset()
    }

    pub(crate) fn validate(&self) -> Result<(), BuildError> {
        if self.workers == 0 {
            return Err(BuildError::NoWorkers);
        }
        if self.workers > u16::MAX as usize {
            return Err(BuildError::TooManyWorkers(self.workers));
        }
        let time_left = self.queue.keeps_time_left();
        // Locality-aware stealing is one of Mely's heuristics: the libasync design steals as
        // libasync-smp did, or not at all.
        let mely_only = self.stealing.locality() && self.queue == QueueKind::Libasync;
        if self.stealing.time_left() && !time_left || mely_only {
            return Err(BuildError::PolicyNotSupported(self.stealing));
        }
        if self.batch == 0 {
            return Err(BuildError::ZeroBatch);
        }
        if !(1..=MAX_POST_BATCH).contains(&self.post_batch) {
            return Err(BuildError::PostBatch(self.post_batch));
        }
        Ok(())
    }
}
