//! The edges every program of the project shares, written once.
//!
//! Server edges (used by `sws-server` and `sfs-server`):
//! * [`listener`]: the listening socket (one backlog, `SO_REUSEPORT` for N-copy children);
//! * [`accept`]: the accept loop's behaviour: batches, and a hard error (out of descriptors or
//!   memory) that backs off and retries instead of stalling the listener;
//! * [`supervisor`]: the N-copy parent: one way of reserving the port, children started and
//!   awaited, signals forwarded, the children's statistics collected;
//! * [`signals`]: waiting for SIGINT/SIGTERM;
//! * [`stats_file`]: writing a `--stats-json` document atomically, and summing N-copy
//!   children's documents into one;
//! * [`limits`] and [`cpu`]: the open-file limit, and pinning a process to one CPU.
//!
//! Results metadata (used by every program that writes results, and by
//! `scripts/reproduce.sh` through the `results-env` binary):
//! * [`env`]: the one environment schema (documented in `results/README.md`);
//! * [`rusage`]: CPU time of this process or thread;
//! * [`median`]: the median of a sample;
//! * [`time`]: UTC calendar dates without a time-zone database.
//!
//! Every program's command line: [`cli`] (one error format, exit codes, a closed stdout, output
//! paths checked before the work).
//!
//! [`testing`] holds the rule for tests that cannot run here (say SKIPPED; fail under CI).
//!
//! The library never prints: what happened is returned, and binaries decide what to log.

pub mod accept;
pub mod cli;
pub mod cpu;
pub mod env;
pub mod limits;
pub mod listener;
pub mod median;
pub mod rusage;
pub mod signals;
pub mod stats_file;
pub mod supervisor;
pub mod testing;
pub mod time;

/// Held by this crate's unit tests that raise SIGINT/SIGTERM in the test process and by the
/// ones a stray signal would disturb (the supervisor's: its `stop` takes a second signal as
/// "kill the children now"), so the two never overlap.
#[cfg(test)]
pub(crate) static PROCESS_SIGNALS: std::sync::Mutex<()> = std::sync::Mutex::new(());
