//! The accept loop's behaviour, shared by both servers.
//!
//! A server registers its non-blocking listener with an edge-triggered reactor and, on each
//! readiness event, calls [`Acceptor::run`] with a closure that accepts one connection. The
//! acceptor decides how far to go and what to do next ([`End`]); the server carries that out
//! (posting itself again, or arming a timer), since only it knows its event loop.
//!
//! Invariants:
//! 1. A run accepts until the listener is drained (`WouldBlock`), or [`Acceptor::batch`]
//!    connections (the server then posts another run, so other events of its color are not
//!    starved), or a hard error.
//! 2. A hard error never ends accepting. `EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM` (and any
//!    error not known to be about one connection) consumed the readiness edge while
//!    connections may still wait in the backlog, and none of them will raise another edge:
//!    the run ends with [`End::RetryAfter`], a delay that doubles from [`MIN_RETRY`] to
//!    [`MAX_RETRY`] while the errors last, and the server must run again with
//!    [`Trigger::Retry`] after it.
//! 3. Exactly one retry is pending at a time: while one is, readiness-triggered runs do
//!    nothing ([`End::Waiting`]), so a stream of new connections during an fd shortage does
//!    not multiply timers.
//! 4. Errors about one connection (`ECONNABORTED`, `EPROTO`, `EPERM` and the network errors
//!    accept(2) passes on from the new socket) skip it and go on; `EINTR` retries.
//! 5. The first hard error of an episode and the end of the episode are reported once each
//!    ([`Report`]), so a server out of descriptors logs two lines, not one per retry.

use std::io;
use std::time::{Duration, Instant};

/// First delay after a hard accept error.
pub const MIN_RETRY: Duration = Duration::from_millis(5);
/// Longest delay between retries: once descriptors are free again, queued clients wait at
/// most this long.
pub const MAX_RETRY: Duration = Duration::from_millis(200);
/// Default connections per run.
pub const DEFAULT_BATCH: usize = 128;

/// Why a run was called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The listener reported readiness (or the server posted a follow-up run).
    Ready,
    /// The retry timer of [`End::RetryAfter`] fired.
    Retry,
}

/// How a run ended, and what the server must do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The backlog is empty: wait for the next readiness event.
    Drained,
    /// A full batch was accepted: post another run (with [`Trigger::Ready`]) now.
    Full,
    /// A hard error: run again with [`Trigger::Retry`] after this delay.
    RetryAfter(Duration),
    /// A retry is pending (invariant 3): nothing to do.
    Waiting,
}

/// Something worth one log line (invariant 5).
#[derive(Debug)]
pub enum Report {
    /// Accepting started failing with this error; retries follow.
    Failing(io::Error),
    /// Accepting works again after `failures` hard errors over `lasted`.
    Recovered {
        /// Hard errors in the episode.
        failures: u64,
        /// From the first error to the first success.
        lasted: Duration,
    },
}

impl std::fmt::Display for Report {
    /// The log line (without the program's prefix).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Report::Failing(e) => write!(f, "accept failed ({e}); retrying until it works"),
            Report::Recovered { failures, lasted } => {
                write!(
                    f,
                    "accepting again after {failures} failures over {lasted:?}"
                )
            }
        }
    }
}

/// The outcome of one run.
#[derive(Debug)]
pub struct Outcome {
    /// Connections accepted and handed to the server.
    pub accepted: usize,
    /// What to do next.
    pub end: End,
    /// What to log, if anything.
    pub report: Option<Report>,
}

/// Counters over the acceptor's life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct AcceptStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Hard errors (each one a retry).
    pub hard_errors: u64,
    /// Connections skipped for an error of their own (invariant 4).
    pub skipped: u64,
}

/// How an accept error is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// The backlog is empty.
    Drained,
    /// Interrupted: call again.
    Again,
    /// This connection failed; the next may not.
    Skip,
    /// Out of a resource (or unknown): back off and retry.
    Hard,
}

/// Sorts an accept error (see accept(2), "Error handling", for the per-connection ones).
pub fn classify(e: &io::Error) -> ErrorClass {
    match e.kind() {
        io::ErrorKind::WouldBlock => return ErrorClass::Drained,
        io::ErrorKind::Interrupted => return ErrorClass::Again,
        _ => {}
    }
    match e.raw_os_error() {
        Some(
            libc::ECONNABORTED
            | libc::EPROTO
            | libc::EPERM
            | libc::ENETDOWN
            | libc::ENOPROTOOPT
            | libc::EHOSTDOWN
            | libc::ENONET
            | libc::EHOSTUNREACH
            | libc::EOPNOTSUPP
            | libc::ENETUNREACH,
        ) => ErrorClass::Skip,
        _ => ErrorClass::Hard,
    }
}

/// The state of one listener's accept loop; owned by the event color that accepts.
#[derive(Debug)]
pub struct Acceptor {
    batch: usize,
    /// The delay of the last retry, while an episode of hard errors lasts.
    delay: Option<Duration>,
    /// A retry timer is armed (invariant 3).
    retry_pending: bool,
    /// First hard error of the current episode, and the errors since.
    episode: Option<(Instant, u64)>,
    stats: AcceptStats,
}

impl Default for Acceptor {
    fn default() -> Self {
        Acceptor::new(DEFAULT_BATCH)
    }
}

impl Acceptor {
    /// An acceptor that takes at most `batch` connections per run.
    pub fn new(batch: usize) -> Acceptor {
        Acceptor {
            batch: batch.max(1),
            delay: None,
            retry_pending: false,
            episode: None,
            stats: AcceptStats::default(),
        }
    }

    /// Connections per run.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Counters so far.
    pub fn stats(&self) -> AcceptStats {
        self.stats
    }

    /// Accepts with `accept` (one connection per call) and hands each connection to
    /// `on_conn`, following the module's invariants.
    pub fn run<T>(
        &mut self,
        trigger: Trigger,
        mut accept: impl FnMut() -> io::Result<T>,
        mut on_conn: impl FnMut(T),
    ) -> Outcome {
        match trigger {
            Trigger::Ready if self.retry_pending => {
                return Outcome {
                    accepted: 0,
                    end: End::Waiting,
                    report: None,
                }
            }
            Trigger::Ready => {}
            Trigger::Retry => self.retry_pending = false,
        }
        let mut report = None;
        let mut accepted = 0;
        while accepted < self.batch {
            match accept() {
                Ok(conn) => {
                    report = report.or_else(|| self.recovered());
                    accepted += 1;
                    self.stats.accepted += 1;
                    on_conn(conn);
                }
                Err(e) => match classify(&e) {
                    ErrorClass::Drained => {
                        report = report.or_else(|| self.recovered());
                        return Outcome {
                            accepted,
                            end: End::Drained,
                            report,
                        };
                    }
                    ErrorClass::Again => {}
                    ErrorClass::Skip => self.stats.skipped += 1,
                    ErrorClass::Hard => {
                        self.stats.hard_errors += 1;
                        let delay = self.delay.map_or(MIN_RETRY, |d| (d * 2).min(MAX_RETRY));
                        self.delay = Some(delay);
                        self.retry_pending = true;
                        let first = match &mut self.episode {
                            Some((_, n)) => {
                                *n += 1;
                                false
                            }
                            None => {
                                self.episode = Some((Instant::now(), 1));
                                true
                            }
                        };
                        return Outcome {
                            accepted,
                            end: End::RetryAfter(delay),
                            // A recovery and a new failure in one run: the failure matters.
                            report: if first {
                                Some(Report::Failing(e))
                            } else {
                                report
                            },
                        };
                    }
                },
            }
        }
        Outcome {
            accepted,
            end: End::Full,
            report,
        }
    }

    /// Ends an episode of hard errors, if one is open.
    fn recovered(&mut self) -> Option<Report> {
        self.delay = None;
        self.episode.take().map(|(t, failures)| Report::Recovered {
            failures,
            lasted: t.elapsed(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    fn os(code: i32) -> io::Error {
        io::Error::from_raw_os_error(code)
    }

    /// A listener that returns the scripted results, then `WouldBlock`.
    fn script(v: Vec<io::Result<u32>>) -> impl FnMut() -> io::Result<u32> {
        let mut q: VecDeque<_> = v.into();
        move || {
            q.pop_front()
                .unwrap_or_else(|| Err(io::ErrorKind::WouldBlock.into()))
        }
    }

    #[test]
    fn classification() {
        assert_eq!(classify(&os(libc::EAGAIN)), ErrorClass::Drained);
        assert_eq!(classify(&os(libc::EINTR)), ErrorClass::Again);
        assert_eq!(classify(&os(libc::ECONNABORTED)), ErrorClass::Skip);
        for hard in [
            libc::EMFILE,
            libc::ENFILE,
            libc::ENOBUFS,
            libc::ENOMEM,
            libc::EBADF,
        ] {
            assert_eq!(classify(&os(hard)), ErrorClass::Hard, "{hard}");
        }
    }

    #[test]
    fn drains_and_batches() {
        let mut a = Acceptor::new(3);
        let mut got = Vec::new();
        let o = a.run(Trigger::Ready, script(vec![Ok(1), Ok(2)]), |c| got.push(c));
        assert_eq!((o.accepted, o.end), (2, End::Drained));
        let o = a.run(
            Trigger::Ready,
            script(vec![
                Ok(3),
                Err(os(libc::ECONNABORTED)),
                Ok(4),
                Ok(5),
                Ok(6),
            ]),
            |c| got.push(c),
        );
        assert_eq!((o.accepted, o.end), (3, End::Full));
        assert_eq!(got, [1, 2, 3, 4, 5]);
        assert_eq!(
            a.stats(),
            AcceptStats {
                accepted: 5,
                hard_errors: 0,
                skipped: 1
            }
        );
    }

    #[test]
    fn hard_errors_back_off_once_and_recover() {
        let mut a = Acceptor::new(8);
        let o = a.run(
            Trigger::Ready,
            script(vec![Ok(1), Err(os(libc::EMFILE))]),
            |_| {},
        );
        assert_eq!((o.accepted, o.end), (1, End::RetryAfter(MIN_RETRY)));
        assert!(matches!(o.report, Some(Report::Failing(_))));
        let line = o.report.unwrap().to_string();
        assert!(
            line.starts_with("accept failed (") && line.contains("retrying"),
            "{line}"
        );
        // New connections while the retry is pending do not start a second timer.
        let o = a.run(Trigger::Ready, script(vec![Ok(9)]), |_| panic!("accepted"));
        assert_eq!(o.end, End::Waiting);
        // The delays double up to the cap; only the first error is reported.
        let mut last = MIN_RETRY;
        for _ in 0..10 {
            let o = a.run(Trigger::Retry, script(vec![Err(os(libc::ENFILE))]), |_| {});
            let End::RetryAfter(d) = o.end else {
                panic!("{:?}", o.end)
            };
            assert!(d >= last && d <= MAX_RETRY);
            assert!(o.report.is_none());
            last = d;
        }
        assert_eq!(last, MAX_RETRY);
        // Descriptors are free again: the queued connections are accepted and the episode
        // ends with one report.
        let mut got = Vec::new();
        let o = a.run(Trigger::Retry, script(vec![Ok(2), Ok(3)]), |c| got.push(c));
        assert_eq!((o.end, got), (End::Drained, vec![2, 3]));
        assert!(matches!(
            o.report,
            Some(Report::Recovered { failures: 11, .. })
        ));
        // The next episode starts from the shortest delay again.
        let o = a.run(Trigger::Ready, script(vec![Err(os(libc::ENOMEM))]), |_| {});
        assert_eq!(o.end, End::RetryAfter(MIN_RETRY));
        assert_eq!(a.stats().hard_errors, 12);
    }
}
