//! The reactor: mio polling run as an event of color 0 ("Epoll"), as in SWS and libasync-smp.
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
use crate::ctx::Ctx;
use crate::event::{Event, FLAG_IO};
use crate::handler::HandlerId;
use crate::loom::{AtomicBool, AtomicU64, Ordering};
use crate::shared::Shared;
use crate::timer::Timers;
use crate::PostError;
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

type Callback = Arc<dyn Fn(&mut Ctx<'_>, Readiness) + Send + Sync>;

/// What a registered source's readiness becomes.
struct Source {
    /// Color of the events its readiness posts.
    color: Color,
    /// Handler they are accounted to.
    handler: HandlerId,
    /// The callback they run.
    cb: Callback,
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
    pub(crate) timers: Timers,
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
    fn new() -> io::Result<Reactor> {
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
    fn poll_done(&self, res: io::Result<()>) -> Option<Duration> {
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

    pub(crate) fn wake(&self) {
        let _ = self.waker.wake();
    }

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
}

/// The reactor of `sh`, created and started on first use.
pub(crate) fn reactor(sh: &Shared) -> Result<&Reactor, PostError> {
    let r = match sh.reactor.get() {
        Some(r) => r,
        None => {
            let new = Reactor::new().map_err(PostError::Reactor)?;
            let _ = sh.reactor.set(new);
            sh.reactor.get().expect("just set")
        }
    };
    if !r.started.load(Ordering::Acquire) && !r.started.swap(true, Ordering::AcqRel) {
        let mut ev = sh.make_event(Color::DEFAULT, HandlerId::EPOLL, epoll_event);
        ev.add_flags(FLAG_IO);
        sh.push(ev, None).map_err(|_| PostError::Shutdown)?;
    }
    Ok(r)
}

fn epoll_event(ctx: &mut Ctx<'_>) {
    let sh = ctx.shared();
    if sh.is_shutdown() {
        return;
    }
    let r = sh
        .reactor
        .get()
        .expect("the Epoll event runs only once the reactor exists");
    let now = Instant::now();
    let mut timeout = Some(Duration::ZERO);
    let mut polling = false;
    if ctx.local_queue_len() == 0 && !ctx.try_steal() {
        if let Some(next) = r.timers.next_deadline() {
            timeout = Some(next.saturating_duration_since(now));
            r.sleep_until.store(r.nanos(next), Ordering::Release);
        } else {
            timeout = None;
            r.sleep_until.store(u64::MAX - 1, Ordering::Release);
        }
        polling = ctx.begin_polling();
        if !polling {
            timeout = Some(Duration::ZERO);
        }
        // A timer added between reading the deadline and publishing `sleep_until` must not be
        // missed: re-check.
        if let (Some(next), true) = (r.timers.next_deadline(), polling) {
            if timeout.map_or(true, |t| now + t > next) {
                timeout = Some(next.saturating_duration_since(Instant::now()));
            }
        }
    }
    let mut ready: Vec<(usize, Readiness)> = Vec::new();
    let blocking = timeout != Some(Duration::ZERO);
    let t0 = if blocking { crate::tsc::now() } else { 0 };
    let failed = {
        let mut g = r.poll.lock().unwrap_or_else(|e| e.into_inner());
        let (poll, events) = &mut *g;
        let failed = r.poll_done(poll.poll(events, timeout));
        for e in events.iter() {
            if e.token() != WAKER {
                ready.push((e.token().0, Readiness::from_event(e)));
            }
        }
        failed
    };
    r.sleep_until.store(u64::MAX, Ordering::Release);
    if blocking {
        // Time blocked in the poll is the worker's idle time, not the Epoll handler's.
        ctx.add_blocked(crate::tsc::since(t0));
    }
    if polling {
        ctx.end_polling();
    }
    if let Some(pause) = failed {
        // Back off (as idle time): a failing poll must not turn into a busy loop.
        ctx.count_poll_error();
        let t = crate::tsc::now();
        std::thread::sleep(pause);
        ctx.add_blocked(crate::tsc::since(t));
    }
    if !ready.is_empty() {
        let sources = r.sources.lock().unwrap_or_else(|e| e.into_inner());
        let mut posts: Vec<(Color, HandlerId, Callback, Readiness)> =
            Vec::with_capacity(ready.len());
        for (tok, rd) in ready {
            if let Some(Some(s)) = sources.entries.get(tok) {
                posts.push((s.color, s.handler, s.cb.clone(), rd));
            }
        }
        drop(sources);
        for (color, handler, cb, rd) in posts {
            ctx.post_io(color, handler, move |ctx| cb(ctx, rd));
        }
    }
    for mut ev in r.timers.expired(Instant::now()) {
        ev.add_flags(FLAG_IO);
        ctx.post_event(ev);
    }
    ctx.post_io(Color::DEFAULT, HandlerId::EPOLL, epoll_event);
}

/// Register a mio source with `sh`'s reactor (see [`Handle::register_io`](crate::Handle)).
pub(crate) fn register<S, F>(
    sh: &Shared,
    source: &mut S,
    interest: mio::Interest,
    color: Color,
    handler: HandlerId,
    on_ready: F,
) -> io::Result<IoToken>
where
    S: mio::event::Source + ?Sized,
    F: Fn(&mut Ctx<'_>, Readiness) + Send + Sync + 'static,
{
    let r = reactor(sh).map_err(io::Error::other)?;
    let tok = {
        let mut s = r.sources.lock().unwrap_or_else(|e| e.into_inner());
        let entry = Source {
            color,
            handler,
            cb: Arc::new(on_ready),
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
    if let Err(e) = r.registry.register(source, mio::Token(tok), interest) {
        let mut s = r.sources.lock().unwrap_or_else(|e| e.into_inner());
        s.entries[tok] = None;
        s.free.push(tok);
        return Err(e);
    }
    Ok(IoToken(tok))
}

/// Change the interest of a registered source.
pub(crate) fn reregister<S>(
    sh: &Shared,
    source: &mut S,
    token: IoToken,
    interest: mio::Interest,
) -> io::Result<()>
where
    S: mio::event::Source + ?Sized,
{
    let r = reactor(sh).map_err(io::Error::other)?;
    r.registry.reregister(source, mio::Token(token.0), interest)
}

/// Deregister a source; events already posted for it may still run.
pub(crate) fn deregister<S>(sh: &Shared, source: &mut S, token: IoToken) -> io::Result<()>
where
    S: mio::event::Source + ?Sized,
{
    let r = reactor(sh).map_err(io::Error::other)?;
    let res = r.registry.deregister(source);
    let mut s = r.sources.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(e) = s.entries.get_mut(token.0) {
        if e.take().is_some() {
            s.free.push(token.0);
        }
    }
    res
}

/// Post `ev` when `deadline` passes.
pub(crate) fn add_timer(sh: &Shared, deadline: Instant, ev: Event) -> Result<(), PostError> {
    let r = reactor(sh)?;
    r.timers.add(deadline, ev);
    r.deadline_added(deadline);
    Ok(())
}
