//! The reactor: mio polling, the registered sources and the timers, run by an event of color 0
//! ("Epoll", in `epoll`), as in SWS and libasync-smp. This module holds the reactor's state;
//! the Epoll event and the registration paths, which post events through the shared state, are
//! in `epoll`.
//!
//! The Epoll event polls without blocking when its core has other work queued (or it could
//! steal some); otherwise it marks its worker `POLLING` under the core lock (so a poster knows to
//! wake it through the mio waker) and blocks until the next timer deadline. Each ready source
//! becomes one event of that source's color and handler; expired timers are posted; then the
//! Epoll event re-posts itself. The reactor starts with the first I/O registration or timer, so
//! a runtime without I/O has no Epoll event at all.
//!
//! A poll that fails (other than by a signal) is counted (`poll_errors` in the statistics), kept
//! for [`Handle::last_reactor_error`](crate::Handle::last_reactor_error), and followed by a
//! back-off before the next poll (1 ms, doubling per consecutive failure up to
//! [`MAX_BACKOFF`]), so a persistent failure costs a little CPU, not a busy loop. The library
//! prints nothing.

use crate::color::Color;
use crate::event::Task;
use crate::handler::HandlerId;
use crate::loom::{AtomicBool, AtomicU64, Ordering};
use crate::timer::Timers;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WAKER: mio::Token = mio::Token(usize::MAX);
/// Longest pause after consecutive poll failures.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_millis(100);
/// First pause after a poll failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(1);

/// Readiness of an I/O source, passed to its callback.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Readiness {
    /// The source can be read (until `WouldBlock`).
    pub readable: bool,
    /// The source can be written (until `WouldBlock`).
    pub writable: bool,
    /// The peer closed its writing half (a read returns end of file once drained).
    pub read_closed: bool,
    /// The peer closed its reading half, or the connection is gone.
    pub write_closed: bool,
    /// The source reports an error (read it with `take_error`).
    pub error: bool,
}

impl Readiness {
    /// The readiness mio reports in `e`.
    fn from_event(e: &mio::event::Event) -> Self {
        Readiness {
            readable: e.is_readable(),
            writable: e.is_writable(),
            read_closed: e.is_read_closed(),
            write_closed: e.is_write_closed(),
            error: e.is_error(),
        }
    }
}

/// A registered I/O source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IoToken(pub(crate) usize);

/// Makes the task a source's readiness runs (the source's callback with the readiness; made by
/// `epoll::register`, which knows the callback's type).
pub(crate) type OnReady = Arc<dyn Fn(Readiness) -> Task + Send + Sync>;

/// What a registered source's readiness becomes.
struct Source {
    /// Color of the events its readiness posts.
    color: Color,
    /// Handler they are accounted to.
    handler: HandlerId,
    /// Makes the task they run.
    on_ready: OnReady,
}

/// Registered sources, indexed by token.
#[derive(Default)]
struct Sources {
    /// `Some` for a registered token.
    entries: Vec<Option<Source>>,
    /// Tokens free for reuse.
    free: Vec<usize>,
}

/// The reactor of one runtime.
pub(crate) struct Reactor {
    /// The poller and its event buffer; only the Epoll event uses them (one at a time: it has
    /// color 0).
    poll: Mutex<(mio::Poll, mio::Events)>,
    /// Registers sources from any thread.
    registry: mio::Registry,
    /// Wakes a blocked poll.
    waker: mio::Waker,
    /// Registered sources.
    sources: Mutex<Sources>,
    /// Pending timers, drained by the Epoll event.
    timers: Timers,
    /// True once the Epoll event was posted.
    started: AtomicBool,
    /// Nanoseconds since `epoch` until which the poller sleeps (u64::MAX: not sleeping).
    sleep_until: AtomicU64,
    /// Origin of `sleep_until`.
    epoch: Instant,
    /// The last poll failure, if any.
    last_error: Mutex<Option<Arc<io::Error>>>,
    /// Pause before the next poll after consecutive failures (ZERO after a success); only the
    /// Epoll event touches it.
    backoff: Mutex<Duration>,
}

impl Reactor {
    /// A reactor with its poller and waker (not started: no Epoll event yet).
    pub(crate) fn new() -> io::Result<Reactor> {
        let poll = mio::Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = mio::Waker::new(poll.registry(), WAKER)?;
        Ok(Reactor {
            poll: Mutex::new((poll, mio::Events::with_capacity(1024))),
            registry,
            waker,
            sources: Mutex::new(Sources::default()),
            timers: Timers::new(),
            started: AtomicBool::new(false),
            sleep_until: AtomicU64::new(u64::MAX),
            epoch: Instant::now(),
            last_error: Mutex::new(None),
            backoff: Mutex::new(Duration::ZERO),
        })
    }

    /// The last poll failure, if any.
    pub(crate) fn last_error(&self) -> Option<Arc<io::Error>> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Account a poll's outcome: `Some(pause)` when it failed (other than by a signal), the
    /// time to wait before polling again.
    pub(crate) fn poll_done(&self, res: io::Result<()>) -> Option<Duration> {
        let mut backoff = self.backoff.lock().unwrap_or_else(|e| e.into_inner());
        match res {
            Ok(()) => {
                *backoff = Duration::ZERO;
                None
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => None,
            Err(e) => {
                *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(e));
                *backoff = (*backoff * 2).clamp(FIRST_BACKOFF, MAX_BACKOFF);
                Some(*backoff)
            }
        }
    }

    /// Wake a blocked poll.
    pub(crate) fn wake(&self) {
        let _ = self.waker.wake();
    }

    /// `t` as nanoseconds since `epoch` (below `u64::MAX`, which means "not sleeping").
    fn nanos(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch)
            .as_nanos()
            .min(u64::MAX as u128 - 1) as u64
    }

    /// Wake the poller if it sleeps past `deadline`.
    pub(crate) fn deadline_added(&self, deadline: Instant) {
        if self.nanos(deadline) < self.sleep_until.load(Ordering::Acquire) {
            self.wake();
        }
    }

    /// Mark the reactor started: true for the one caller that must post the Epoll event.
    pub(crate) fn start_once(&self) -> bool {
        !self.started.load(Ordering::Acquire) && !self.started.swap(true, Ordering::AcqRel)
    }

    /// Pending timers.
    pub(crate) fn timers(&self) -> &Timers {
        &self.timers
    }

    /// The poller is about to block until `until` (`None`: no deadline), so that a timer added
    /// for earlier wakes it.
    pub(crate) fn sleeping_until(&self, until: Option<Instant>) {
        let v = until.map_or(u64::MAX - 1, |t| self.nanos(t));
        self.sleep_until.store(v, Ordering::Release);
    }

    /// Poll once for up to `timeout`, appending each ready source's token and readiness to
    /// `ready`; the poller is no longer sleeping afterwards. `Some(pause)` when the poll failed
    /// (see [`Reactor::poll_done`]).
    pub(crate) fn poll(
        &self,
        timeout: Option<Duration>,
        ready: &mut Vec<(usize, Readiness)>,
    ) -> Option<Duration> {
        let failed = {
            let mut g = self.poll.lock().unwrap_or_else(|e| e.into_inner());
            let (poll, events) = &mut *g;
            let failed = self.poll_done(poll.poll(events, timeout));
            for e in events.iter() {
                if e.token() != WAKER {
                    ready.push((e.token().0, Readiness::from_event(e)));
                }
            }
            failed
        };
        self.sleep_until.store(u64::MAX, Ordering::Release);
        failed
    }

    /// For each ready source still registered: its color, handler and the task its readiness
    /// runs.
    pub(crate) fn ready_tasks(
        &self,
        ready: Vec<(usize, Readiness)>,
    ) -> Vec<(Color, HandlerId, Task)> {
        let makers: Vec<(Color, HandlerId, OnReady, Readiness)> = {
            let sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
            ready
                .into_iter()
                .filter_map(|(tok, rd)| match sources.entries.get(tok) {
                    Some(Some(s)) => Some((s.color, s.handler, s.on_ready.clone(), rd)),
                    _ => None,
                })
                .collect()
        };
        // The tasks are made after the lock is released (a maker runs the caller's code).
        makers
            .into_iter()
            .map(|(color, handler, make, rd)| (color, handler, make(rd)))
            .collect()
    }

    /// Register `source` for `interest`: its readiness becomes events of `color` and `handler`
    /// running what `on_ready` makes.
    pub(crate) fn register<S>(
        &self,
        source: &mut S,
        interest: mio::Interest,
        color: Color,
        handler: HandlerId,
        on_ready: OnReady,
    ) -> io::Result<IoToken>
    where
        S: mio::event::Source + ?Sized,
    {
        let tok = {
            let mut s = self.sources.lock().unwrap_or_else(|e| e.into_inner());
            let entry = Source {
                color,
                handler,
                on_ready,
            };
            match s.free.pop() {
                Some(i) => {
                    s.entries[i] = Some(entry);
                    i
                }
                None => {
                    s.entries.push(Some(entry));
                    s.entries.len() - 1
                }
            }
        };
        if let Err(e) = self.registry.register(source, mio::Token(tok), interest) {
            let mut s = self.sources.lock().unwrap_or_else(|e| e.into_inner());
            s.entries[tok] = None;
            s.free.push(tok);
            return Err(e);
        }
        Ok(IoToken(tok))
    }

    /// Change the interest of a registered source.
    pub(crate) fn reregister<S>(
        &self,
        source: &mut S,
        token: IoToken,
        interest: mio::Interest,
    ) -> io::Result<()>
    where
        S: mio::event::Source + ?Sized,
    {
        self.registry
            .reregister(source, mio::Token(token.0), interest)
    }

    /// Deregister a source; events already posted for it may still run.
    pub(crate) fn deregister<S>(&self, source: &mut S, token: IoToken) -> io::Result<()>
    where
        S: mio::event::Source + ?Sized,
    {
        let res = self.registry.deregister(source);
        let mut s = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = s.entries.get_mut(token.0) {
            if e.take().is_some() {
                s.free.push(token.0);
            }
        }
        res
    }
}
