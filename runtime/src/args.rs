//! The runtime's command-line options, declared once for every program that starts a
//! runtime (`sws-server`, `sfs-server`, `microbenches`): flatten [`RuntimeArgs`] into the
//! program's clap parser and turn it into a [`RuntimeConfig`] with [`RuntimeArgs::config`].
//!
//! Compiled only with the `clap` feature, so the runtime library itself does not need clap.
//!
//! Invariants:
//! 1. Every check of the options is the runtime's own ([`RuntimeConfig`]'s validation: at
//!    least one worker, a stealing policy the queue design supports, e.g. libasync takes only
//!    `off` or `base`), so a program cannot accept a combination the runtime refuses.
//! 2. `--workers` is capped at [`default_max_workers`] (four per CPU this process may use, at
//!    least [`MIN_WORKER_CAP`]): the same count is a number of threads or, in N-copy mode, a
//!    number of processes, and a typo such as `--workers 100000` must not fork a hundred
//!    thousand servers. `--allow-many-workers` lifts the cap up to the runtime's own limit.

use std::fmt::Display;
use std::str::FromStr;

use crate::config::{
    BuildError, Fidelity, FidelityOptions, IdleMode, LockKind, QueueKind, RuntimeConfig,
    StealAmount, StealPolicy, StealWalk, TraceSpec,
};

/// What `--runtime` names: one of the runtime's queue designs ([`QueueKind`], the servers'
/// choice), or a program's wider choice (the microbenchmarks also run tokio, and all three
/// in one run) that says which queue designs it will build.
pub trait RuntimeChoice: Clone + Send + Sync + FromStr + Display + 'static {
    /// The queue designs a run with this choice builds runtimes of (none for a runtime
    /// that is not this crate's).
    fn queues(&self) -> Vec<QueueKind>;
}

impl RuntimeChoice for QueueKind {
    fn queues(&self) -> Vec<QueueKind> {
        vec![*self]
    }
}

/// `--runtime`'s value parser: the choice's own `FromStr`.
fn parse_choice<R: RuntimeChoice>(s: &str) -> Result<R, String>
where
    R::Err: Display,
{
    s.parse::<R>().map_err(|e| e.to_string())
}

/// The worker cap is never below this, whatever the CPU count (the simulator's largest
/// machine has 64 cores).
pub const MIN_WORKER_CAP: usize = 64;

/// Workers per allowed CPU accepted without `--allow-many-workers`.
pub const WORKERS_PER_CPU_CAP: usize = 4;

/// The most workers accepted without `--allow-many-workers`: [`WORKERS_PER_CPU_CAP`] per CPU
/// this process may use, at least [`MIN_WORKER_CAP`].
pub fn default_max_workers() -> usize {
    (crate::topology::allowed_cpus().len() * WORKERS_PER_CPU_CAP).max(MIN_WORKER_CAP)
}

fn default_workers() -> usize {
    crate::topology::allowed_cpus().len().max(1)
}

/// The runtime options of a command line; `R` is what `--runtime` names (default: a queue
/// design).
#[derive(Clone, Debug, clap::Args)]
pub struct RuntimeArgs<R: RuntimeChoice = QueueKind>
where
    R::Err: Display,
{
    /// Worker threads, pinned one per CPU (in N-copy mode: single-worker processes). Default:
    /// the CPUs this process may use. At most 4 per CPU (at least 64) unless
    /// --allow-many-workers is given.
    #[arg(long, value_name = "N", default_value_t = default_workers())]
    pub workers: usize,
    /// Accept more --workers than the cap (4 per CPU, at least 64), up to the runtime's
    /// limit of 65535.
    #[arg(long)]
    pub allow_many_workers: bool,
    /// Queue design: libasync (one list per core, as libasync-smp) or mely (color-queues).
    #[arg(long, value_name = "RUNTIME", default_value = "mely", value_parser = parse_choice::<R>)]
    pub runtime: R,
    /// Work-stealing policy: off, base, time-left, penalty, locality or all (libasync takes
    /// only off or base).
    #[arg(long, value_name = "POLICY", default_value_t = StealPolicy::Off,
          value_parser = clap::value_parser!(StealPolicy))]
    pub stealing: StealPolicy,
    /// What a time-left steal (time-left, penalty, all) takes: one, the best worthy color
    /// (the Mely paper's), or half, worthy colors until the thief holds half of the victim's
    /// queued time, at most 32 (ours). The other policies ignore it.
    #[arg(long, value_name = "AMOUNT", default_value_t = StealAmount::One,
          value_parser = clap::value_parser!(StealAmount))]
    pub steal_amount: StealAmount,
    /// Do not pin workers (or N-copy processes) to CPUs; by default worker i runs on the
    /// i-th CPU this process may use.
    #[arg(long)]
    pub no_pin: bool,
    /// Tuning: how long an idle worker searches for work to steal before it sleeps, in
    /// microseconds (default: the runtime's).
    #[arg(long, value_name = "US", alias = "steal-spin-us", hide = true)]
    pub search_us: Option<u64>,
    /// The paper-fidelity options (`--fidelity` and its four overrides).
    #[command(flatten)]
    pub fidelity: FidelityArgs,
    /// Record what every worker does and write it to FILE at the end of the run, as
    /// Chrome/Perfetto trace-event JSON (open it in ui.perfetto.dev or chrome://tracing;
    /// `colored-report trace-check FILE` checks the color guarantee on it). The file is
    /// created before the run starts. Without --trace-from/--trace-for each worker keeps its
    /// newest --trace-records records.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<std::path::PathBuf>,
    /// Trace from SECONDS after the runtime starts (with --trace).
    #[arg(long, value_name = "SECONDS", requires = "trace")]
    pub trace_from: Option<f64>,
    /// Trace for SECONDS (with --trace; default: until the end of the run).
    #[arg(long, value_name = "SECONDS", requires = "trace")]
    pub trace_for: Option<f64>,
    /// Most records each worker keeps (with --trace; 32 bytes each).
    #[arg(long, value_name = "N", requires = "trace",
          default_value_t = colored_trace::record::DEFAULT_CAPACITY)]
    pub trace_records: usize,
}

/// The paper-fidelity options, declared once for the threaded programs (through
/// [`RuntimeArgs`]) and the simulator (which flattens them into its own options), so the names
/// and values are the same everywhere.
#[derive(Clone, Debug, clap::Args)]
pub struct FidelityArgs {
    /// Where the runtime departs from the papers' runtimes, all four options at once: ours
    /// (default: --idle bounded --lock backoff --post-batch 32 --steal-walk from-choice) or
    /// paper (--idle spin --lock tas --post-batch 1 --steal-walk from-head, as libasync-smp
    /// and Mely ran). Each of the four options given on its own overrides the preset, e.g.
    /// `--fidelity paper --lock backoff`.
    #[arg(long, value_name = "FIDELITY", default_value_t = Fidelity::Ours,
          value_parser = clap::value_parser!(Fidelity))]
    pub fidelity: Fidelity,
    /// What an idle worker does while stealing is on: bounded (ours: at most half the
    /// workers search, 20 us naps between rounds, sleep after --search-us) or spin (Mely
    /// II-A, "no interest in yielding cores", and Figure 2's loop: every idle worker runs
    /// steal rounds back to back and never sleeps). With stealing off an idle worker sleeps
    /// either way: spinning would burn a core with nothing to find. Default: --fidelity's.
    #[arg(long, value_name = "MODE", value_parser = clap::value_parser!(IdleMode))]
    pub idle: Option<IdleMode>,
    /// The core queues' lock: backoff (ours: test-and-test-and-set, exponential backoff,
    /// then yield) or tas (libasync-smp's spin locks, Mely II-A and IV-A: every try is an
    /// atomic read-modify-write, no backoff, no yield). Default: --fidelity's.
    #[arg(long, value_name = "KIND", value_parser = clap::value_parser!(LockKind))]
    pub lock: Option<LockKind>,
    /// Posts an event makes to its own core's colors are enqueued under one lock per N (1 to
    /// 32): 32 is ours; 1 takes the target core's lock on every post, as libasync-smp's
    /// cpucb (Mely II-A: queues "concurrently updated by different cores", under spinlocks).
    /// Default: --fidelity's.
    #[arg(long, value_name = "N")]
    pub post_batch: Option<usize>,
    /// How a libasync steal collects the chosen color's events: from-choice (ours: on from
    /// the node where the color was chosen) or from-head (Mely II-B, Figure 2:
    /// construct_event_set, given only the color, walks the victim's list from its head node
    /// by node, checking each node's color, up to the color's pending count, footnote 1;
    /// Mely II-C prices a node at about 190 cycles). Mely's queues walk no list. Default:
    /// --fidelity's.
    #[arg(long, value_name = "WALK", value_parser = clap::value_parser!(StealWalk))]
    pub steal_walk: Option<StealWalk>,
}

impl FidelityArgs {
    /// The four options `--fidelity` sets, each overridden by its own option when given.
    pub fn options(&self) -> FidelityOptions {
        let f = FidelityOptions::of(self.fidelity);
        FidelityOptions {
            idle: self.idle.unwrap_or(f.idle),
            lock: self.lock.unwrap_or(f.lock),
            post_batch: self.post_batch.unwrap_or(f.post_batch),
            steal_walk: self.steal_walk.unwrap_or(f.steal_walk),
        }
    }

    /// The command-line arguments that give these options back (`--fidelity` and each
    /// override given).
    pub fn to_args(&self) -> Vec<String> {
        let mut v = vec!["--fidelity".to_string(), self.fidelity.to_string()];
        if let Some(m) = self.idle {
            v.extend(["--idle".into(), m.to_string()]);
        }
        if let Some(k) = self.lock {
            v.extend(["--lock".into(), k.to_string()]);
        }
        if let Some(n) = self.post_batch {
            v.extend(["--post-batch".into(), n.to_string()]);
        }
        if let Some(w) = self.steal_walk {
            v.extend(["--steal-walk".into(), w.to_string()]);
        }
        v
    }
}

/// Checks, by the runtime's own rules, that design `queue` can run policy `stealing` (for a
/// program that takes these two options without the rest, such as the simulator).
pub fn check_policy(queue: QueueKind, stealing: StealPolicy) -> Result<(), ArgsError> {
    RuntimeConfig {
        workers: 1,
        queue,
        stealing,
        ..RuntimeConfig::default()
    }
    .validate()
    .map_err(ArgsError::Runtime)
}

/// [`check_policy`] with the paper-fidelity options too (e.g. a post batch of 1 to
/// [`crate::MAX_POST_BATCH`]), by the runtime's own rules.
pub fn check_options(
    queue: QueueKind,
    stealing: StealPolicy,
    fidelity: FidelityOptions,
) -> Result<(), ArgsError> {
    let mut cfg = RuntimeConfig {
        workers: 1,
        queue,
        stealing,
        ..RuntimeConfig::default()
    };
    fidelity.apply(&mut cfg);
    cfg.validate().map_err(ArgsError::Runtime)
}

/// Why the runtime options were refused.
#[derive(Debug, thiserror::Error)]
pub enum ArgsError {
    /// More workers than the cap, without `--allow-many-workers`.
    #[error(
        "--workers {given} is more than the {cap} this machine is allowed by default \
         ({WORKERS_PER_CPU_CAP} per CPU, at least {MIN_WORKER_CAP}); \
         pass --allow-many-workers to run that many"
    )]
    TooManyWorkers {
        /// The count asked for.
        given: usize,
        /// The cap.
        cap: usize,
    },
    /// The runtime refuses the combination.
    #[error("{0}")]
    Runtime(BuildError),
    /// A trace option is out of range.
    #[error("{0}")]
    Trace(String),
    /// The trace file cannot be created.
    #[error("cannot create the trace file {path}: {source}")]
    TraceFile {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Where a traced run writes its trace: the file `--trace` named, created (empty) before the
/// run so a bad path fails before any work.
#[derive(Debug)]
pub struct TraceOutput {
    /// The file.
    path: std::path::PathBuf,
}

impl TraceOutput {
    /// The file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Write `trace` to the file as trace-event JSON.
    pub fn write(
        &self,
        trace: &colored_trace::Trace,
    ) -> Result<(), colored_trace::export::ExportError> {
        colored_trace::export::write_file(trace, &self.path)
    }
}

/// Where N-copy child `index` of a server given `--trace path` writes its trace: the index
/// before the extension (`t.json` -> `t.c0.json`; `t` -> `t.c0`). Each child runs its own
/// one-worker runtime, so each writes a whole trace that opens and checks on its own.
pub fn child_trace_path(path: &std::path::Path, index: usize) -> std::path::PathBuf {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let name = match path.extension() {
        Some(ext) => format!("{stem}.c{index}.{}", ext.to_string_lossy()),
        None => format!("{stem}.c{index}"),
    };
    path.with_file_name(name)
}

impl<R: RuntimeChoice> RuntimeArgs<R>
where
    R::Err: Display,
{
    /// What the trace options ask each worker to keep (`None`: no `--trace`), checked:
    /// `--trace-from` at least 0, `--trace-for` above 0, both finite; `--trace-records` at
    /// least 1.
    pub fn trace_spec(&self) -> Result<Option<TraceSpec>, ArgsError> {
        if self.trace.is_none() {
            return Ok(None);
        }
        let capacity = self.trace_records;
        if capacity == 0 {
            return Err(ArgsError::Trace(
                "--trace-records must be at least 1".into(),
            ));
        }
        if let Some(f) = self.trace_from.filter(|f| !(f.is_finite() && *f >= 0.0)) {
            return Err(ArgsError::Trace(format!(
                "--trace-from must be a number of seconds, 0 or more (got {f})"
            )));
        }
        if let Some(f) = self.trace_for.filter(|f| !(f.is_finite() && *f > 0.0)) {
            return Err(ArgsError::Trace(format!(
                "--trace-for must be a positive number of seconds (got {f})"
            )));
        }
        Ok(Some(match (self.trace_from, self.trace_for) {
            (None, None) => TraceSpec::Ring { capacity },
            (from, len) => TraceSpec::Window {
                from_secs: from.unwrap_or(0.0),
                // About 31 years: the rest of any run.
                for_secs: len.unwrap_or(1e9),
                capacity,
            },
        }))
    }

    /// Create the `--trace` file (empty) so that a path that cannot be written fails before
    /// the run; `None` without `--trace`.
    pub fn trace_output(&self) -> Result<Option<TraceOutput>, ArgsError> {
        let Some(path) = &self.trace else {
            return Ok(None);
        };
        std::fs::File::create(path).map_err(|source| ArgsError::TraceFile {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Some(TraceOutput { path: path.clone() }))
    }

    /// The trace options to give N-copy child `index` (empty without `--trace`): this
    /// process's window and record count, into [`child_trace_path`] of `--trace`.
    pub fn child_trace_args(&self, index: usize) -> Vec<std::ffi::OsString> {
        let Some(path) = &self.trace else {
            return Vec::new();
        };
        let mut v: Vec<std::ffi::OsString> =
            vec!["--trace".into(), child_trace_path(path, index).into()];
        if let Some(f) = self.trace_from {
            v.extend(["--trace-from".into(), f.to_string().into()]);
        }
        if let Some(f) = self.trace_for {
            v.extend(["--trace-for".into(), f.to_string().into()]);
        }
        v.extend([
            "--trace-records".into(),
            self.trace_records.to_string().into(),
        ]);
        v
    }

    /// Checks the options as a whole: the worker cap, and the runtime's own rules for every
    /// queue design `--runtime` builds.
    pub fn check(&self) -> Result<(), ArgsError> {
        self.trace_spec()?;
        let cap = default_max_workers();
        if self.workers > cap && !self.allow_many_workers {
            return Err(ArgsError::TooManyWorkers {
                given: self.workers,
                cap,
            });
        }
        let queues = self.runtime.queues();
        // A runtime that is not ours still gets its worker count checked.
        for queue in queues
            .iter()
            .copied()
            .chain(queues.is_empty().then_some(QueueKind::Mely))
        {
            let stealing = if queues.is_empty() {
                StealPolicy::Off
            } else {
                self.stealing
            };
            RuntimeConfig {
                stealing,
                ..self.build(queue, self.workers)
            }
            .validate()
            .map_err(ArgsError::Runtime)?;
        }
        Ok(())
    }

    /// The configuration of a runtime of design `queue` with `workers` workers (the N-copy
    /// children of a server run one each), after [`RuntimeArgs::check`].
    pub fn config_for(&self, queue: QueueKind, workers: usize) -> Result<RuntimeConfig, ArgsError> {
        self.check()?;
        let cfg = self.build(queue, workers);
        cfg.validate().map_err(ArgsError::Runtime)?;
        Ok(cfg)
    }

    fn build(&self, queue: QueueKind, workers: usize) -> RuntimeConfig {
        let d = RuntimeConfig::default();
        let mut cfg = RuntimeConfig {
            workers,
            queue,
            stealing: self.stealing,
            steal_amount: self.steal_amount,
            pin: !self.no_pin,
            search_us: self.search_us.unwrap_or(d.search_us),
            // Checked by `check`.
            trace: self.trace_spec().unwrap_or(None),
            ..d
        };
        self.fidelity_options().apply(&mut cfg);
        cfg
    }

    /// The four options `--fidelity` sets, each overridden by its own option when given.
    pub fn fidelity_options(&self) -> FidelityOptions {
        self.fidelity.options()
    }
}

impl RuntimeArgs<QueueKind> {
    /// The configuration these options describe with `workers` workers (the N-copy children
    /// of a server run one each), checked by the runtime's own rules and the worker cap.
    pub fn config_with_workers(&self, workers: usize) -> Result<RuntimeConfig, ArgsError> {
        self.config_for(self.runtime, workers)
    }

    /// The configuration these options describe (see [`RuntimeArgs::config_with_workers`]).
    pub fn config(&self) -> Result<RuntimeConfig, ArgsError> {
        self.config_with_workers(self.workers)
    }

    /// The command-line arguments that give these options back (for a parent that starts
    /// children with the same runtime options), with `--workers` set to `workers`.
    pub fn to_args(&self, workers: usize) -> Vec<String> {
        let mut v = vec![
            "--workers".to_string(),
            workers.to_string(),
            "--runtime".into(),
            self.runtime.to_string(),
            "--stealing".into(),
            self.stealing.to_string(),
            "--steal-amount".into(),
            self.steal_amount.to_string(),
        ];
        if self.no_pin {
            v.push("--no-pin".into());
        }
        if let Some(us) = self.search_us {
            v.extend(["--search-us".into(), us.to_string()]);
        }
        v.extend(self.fidelity_args());
        v
    }

    /// The command-line arguments that give the fidelity options back (`--fidelity` and each
    /// override given), for a child that runs with this process's runtime.
    pub fn fidelity_args(&self) -> Vec<String> {
        self.fidelity.to_args()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        rt: RuntimeArgs,
    }

    fn parse(args: &[&str]) -> RuntimeArgs {
        Cli::try_parse_from(std::iter::once("t").chain(args.iter().copied()))
            .unwrap()
            .rt
    }

    #[test]
    fn child_trace_paths_keep_directory_and_extension() {
        use std::path::Path;
        assert_eq!(
            child_trace_path(Path::new("out/t.json"), 3),
            Path::new("out/t.c3.json")
        );
        assert_eq!(child_trace_path(Path::new("t"), 0), Path::new("t.c0"));
        assert_eq!(
            child_trace_path(Path::new("/a.b/x.trace.json"), 1),
            Path::new("/a.b/x.trace.c1.json")
        );
        let a = parse(&["--trace", "d/t.json", "--trace-for", "0.5"]);
        let args: Vec<String> = a
            .child_trace_args(2)
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect();
        assert_eq!(
            args,
            [
                "--trace",
                "d/t.c2.json",
                "--trace-for",
                "0.5",
                "--trace-records"
            ]
            .iter()
            .map(|s| s.to_string())
            .chain([colored_trace::record::DEFAULT_CAPACITY.to_string()])
            .collect::<Vec<_>>()
        );
        assert!(parse(&[]).child_trace_args(0).is_empty());
    }

    #[test]
    fn defaults_are_the_runtimes() {
        let a = parse(&[]);
        let c = a.config().unwrap();
        assert_eq!(c.queue, QueueKind::Mely);
        assert_eq!(c.stealing, StealPolicy::Off);
        assert!(c.pin);
        assert_eq!(c.workers, default_workers());
    }

    #[test]
    fn libasync_takes_only_off_or_base() {
        let a = parse(&["--runtime", "libasync", "--stealing", "time-left"]);
        let e = a.config().unwrap_err();
        assert!(matches!(
            e,
            ArgsError::Runtime(BuildError::PolicyNotSupported(_))
        ));
        assert!(parse(&["--runtime", "libasync", "--stealing", "base"])
            .config()
            .is_ok());
    }

    #[test]
    fn the_worker_cap_needs_the_override() {
        let many = (default_max_workers() + 1).to_string();
        let e = parse(&["--workers", &many]).config().unwrap_err();
        assert!(e.to_string().contains("--allow-many-workers"), "{e}");
        let a = parse(&["--workers", &many, "--allow-many-workers"]);
        assert_eq!(a.config_with_workers(1).unwrap().workers, 1);
        let e = parse(&["--workers", "100000", "--allow-many-workers"])
            .config()
            .unwrap_err();
        assert!(matches!(
            e,
            ArgsError::Runtime(BuildError::TooManyWorkers(_))
        ));
        assert!(parse(&["--workers", "0"]).config().is_err());
    }

    #[test]
    fn the_policy_rule_is_the_runtimes() {
        assert!(check_policy(QueueKind::Libasync, StealPolicy::Base).is_ok());
        assert!(check_policy(QueueKind::Libasync, StealPolicy::Locality).is_err());
        assert!(check_policy(QueueKind::Mely, StealPolicy::All).is_ok());
    }

    #[test]
    fn trace_options_make_a_ring_or_a_window() {
        assert_eq!(parse(&[]).config().unwrap().trace, None);
        let ring = parse(&["--trace", "t.json", "--trace-records", "100"]);
        assert_eq!(
            ring.config().unwrap().trace,
            Some(TraceSpec::Ring { capacity: 100 })
        );
        let w = parse(&[
            "--trace",
            "t.json",
            "--trace-from",
            "0.5",
            "--trace-for",
            "0.05",
        ]);
        assert_eq!(
            w.config().unwrap().trace,
            Some(TraceSpec::Window {
                from_secs: 0.5,
                for_secs: 0.05,
                capacity: colored_trace::record::DEFAULT_CAPACITY
            })
        );
        for bad in [
            &["--trace", "t.json", "--trace-for", "0"][..],
            &["--trace", "t.json", "--trace-from=-1"],
            &["--trace", "t.json", "--trace-for", "NaN"],
            &["--trace", "t.json", "--trace-records", "0"],
        ] {
            let e = parse(bad).config().unwrap_err();
            assert!(matches!(e, ArgsError::Trace(_)), "{bad:?}: {e}");
        }
        // The window options need --trace.
        let cli = Cli::try_parse_from(["t", "--trace-for", "1"]);
        assert!(cli.is_err());
    }

    #[test]
    fn the_trace_file_is_created_before_the_run() {
        let dir = std::env::temp_dir().join(format!("args-trace-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("t.json");
        let out = parse(&["--trace", file.to_str().unwrap()])
            .trace_output()
            .unwrap()
            .unwrap();
        assert!(file.exists());
        assert_eq!(out.path(), file);
        let missing = dir.join("no-such-dir").join("t.json");
        let e = parse(&["--trace", missing.to_str().unwrap()])
            .trace_output()
            .unwrap_err();
        assert!(e.to_string().contains("no-such-dir"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn to_args_round_trips() {
        let a = parse(&["--runtime", "libasync", "--stealing", "base", "--no-pin"]);
        let back = parse(&a.to_args(3).iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(back.workers, 3);
        assert_eq!(back.runtime, QueueKind::Libasync);
        assert_eq!(back.stealing, StealPolicy::Base);
        assert!(back.no_pin);
        let a = parse(&[
            "--fidelity",
            "paper",
            "--lock",
            "backoff",
            "--post-batch",
            "4",
        ]);
        let back = parse(&a.to_args(2).iter().map(String::as_str).collect::<Vec<_>>());
        let (c, d) = (a.config().unwrap(), back.config().unwrap());
        assert_eq!(
            (c.idle, c.lock, c.post_batch, c.steal_walk),
            (d.idle, d.lock, d.post_batch, d.steal_walk)
        );
    }

    /// `--fidelity` sets the four options; each given on its own overrides it; the default is
    /// today's runtime, field for field.
    #[test]
    fn fidelity_sets_the_four_options_and_each_overrides() {
        let ours = parse(&[]).config().unwrap();
        let d = RuntimeConfig::default();
        assert_eq!(
            (ours.idle, ours.lock, ours.post_batch, ours.steal_walk),
            (d.idle, d.lock, d.post_batch, d.steal_walk)
        );
        assert_eq!(ours.fidelity(), Some(Fidelity::Ours));
        let paper = parse(&["--fidelity", "paper"]).config().unwrap();
        assert_eq!(
            (paper.idle, paper.lock, paper.post_batch, paper.steal_walk),
            (IdleMode::Spin, LockKind::Tas, 1, StealWalk::FromHead)
        );
        assert_eq!(paper.fidelity(), Some(Fidelity::Paper));
        let mixed = parse(&["--fidelity", "paper", "--idle", "bounded"])
            .config()
            .unwrap();
        assert_eq!(mixed.idle, IdleMode::Bounded);
        assert_eq!(mixed.lock, LockKind::Tas);
        assert_eq!(mixed.fidelity(), None);
        let one = parse(&[
            "--post-batch",
            "1",
            "--steal-walk",
            "from-head",
            "--lock",
            "tas",
        ]);
        let c = one.config().unwrap();
        assert_eq!(
            (c.post_batch, c.steal_walk, c.lock),
            (1, StealWalk::FromHead, LockKind::Tas)
        );
        assert_eq!(c.idle, IdleMode::Bounded);
        // The post batch is the runtime's to check.
        for bad in ["0", "33"] {
            let e = parse(&["--post-batch", bad]).config().unwrap_err();
            assert!(
                matches!(e, ArgsError::Runtime(BuildError::PostBatch(_))),
                "{bad}: {e}"
            );
        }
        let cli = Cli::try_parse_from(["t", "--fidelity", "exact"]);
        assert!(cli.is_err());
    }
}
