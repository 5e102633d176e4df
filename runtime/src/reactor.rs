//! The reactor: mio polling run as an event of color 0 ("Epoll"), as in SWS and libasync-smp.
//!
//! The Epoll event polls without blocking when its core has other work queued (or it could
//! steal some); otherwise it marks its worker `POLLING` under the core lock (so a poster knows to
//! wake it through the mio waker) and blocks until the next timer deadline. Each ready source
//! becomes one event of that source's color and handler; expired timers are posted; then the
//! Epoll event re-posts itself. The reactor starts with the first I/O registration or timer, so
//! a runtime without I/O has no Epoll event at all.

use crate::color::Color;
use crate::ctx::Ctx;
use crate::event::Event;
use crate::handler::HandlerId;
use crate::loom::{AtomicBool, AtomicU64, Ordering};
use crate::queue::state;
use crate::runtime::{with_cores, Handle, PostError, Shared};
use crate::timer::Timers;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WAKER: mio::Token = mio::Token(usize::MAX);

/// Readiness of an I/O source, passed to its callback.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Readiness {
    pub readable: bool,
    pub writable: bool,
    pub read_closed: bool,
    pub write_closed: bool,
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
pub struct IoToken(usize);

type Callback = Arc<dyn Fn(&mut Ctx<'_>, Readiness) + Send + Sync>;

struct Source {
    color: Color,
    handler: HandlerId,
    cb: Callback,
}

#[derive(Default)]
struct Sources {
    entries: Vec<Option<Source>>,
    free: Vec<usize>,
}

pub(crate) struct Reactor {
    poll: Mutex<(mio::Poll, mio::Events)>,
    registry: mio::Registry,
    waker: mio::Waker,
    sources: Mutex<Sources>,
    pub(crate) timers: Timers,
    started: AtomicBool,
    /// Nanoseconds since `epoch` until which the poller sleeps (u64::MAX: not sleeping).
    sleep_until: AtomicU64,
    epoch: Instant,
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
        })
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
            let new = Reactor::new().map_err(|e| PostError::Reactor(e.kind()))?;
            let _ = sh.reactor.set(new);
            sh.reactor.get().expect("just set")
        }
    };
    if !r.started.load(Ordering::Acquire) && !r.started.swap(true, Ordering::AcqRel) {
        let ev = sh.make_event(Color::DEFAULT, HandlerId::EPOLL, epoll_event);
        sh.push(ev, None).map_err(|_| PostError::Shutdown)?;
    }
    Ok(r)
}

/// Mark worker `w` as blocked in the reactor if its queue is empty (under its lock).
fn begin_polling(sh: &Shared, w: usize) -> bool {
    with_cores!(&sh.cores, c => {
        let q = c[w].queue.lock();
        if crate::queue::Design::len(&*q) > 0 || sh.is_shutdown() {
            return false;
        }
        c[w].state.store(state::POLLING, Ordering::Relaxed);
        drop(q);
        true
    })
}

fn end_polling(sh: &Shared, w: usize) {
    with_cores!(&sh.cores, c => c[w].state.store(state::RUNNING, Ordering::Relaxed));
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
    let w = ctx.worker();
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
        polling = begin_polling(sh, w);
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
    {
        let mut g = r.poll.lock().unwrap_or_else(|e| e.into_inner());
        let (poll, events) = &mut *g;
        match poll.poll(events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => eprintln!("colored-runtime: epoll failed: {e}"),
        }
        for e in events.iter() {
            if e.token() != WAKER {
                ready.push((e.token().0, Readiness::from_event(e)));
            }
        }
    }
    r.sleep_until.store(u64::MAX, Ordering::Release);
    if blocking {
        // Time blocked in the poll is the worker's idle time, not the Epoll handler's.
        ctx.add_blocked(crate::tsc::since(t0));
    }
    if polling {
        end_polling(sh, w);
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
            ctx.post(color, handler, move |ctx| cb(ctx, rd));
        }
    }
    for ev in r.timers.expired(Instant::now()) {
        post_ready(ctx, ev);
    }
    ctx.post(Color::DEFAULT, HandlerId::EPOLL, epoll_event);
}

fn post_ready(ctx: &mut Ctx<'_>, ev: Event) {
    ctx.post_event(ev);
}

impl Handle {
    /// Register a mio source. Each time it becomes ready (edge-triggered), `on_ready` runs as an
    /// event of `color` with `handler`; it should read or write until `WouldBlock`.
    pub fn register_io<S, F>(
        &self,
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
        let r = reactor(&self.sh).map_err(io::Error::other)?;
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
    pub fn reregister_io<S>(
        &self,
        source: &mut S,
        token: IoToken,
        interest: mio::Interest,
    ) -> io::Result<()>
    where
        S: mio::event::Source + ?Sized,
    {
        let r = reactor(&self.sh).map_err(io::Error::other)?;
        r.registry.reregister(source, mio::Token(token.0), interest)
    }

    /// Deregister a source; events already posted for it may still run.
    pub fn deregister_io<S>(&self, source: &mut S, token: IoToken) -> io::Result<()>
    where
        S: mio::event::Source + ?Sized,
    {
        let r = reactor(&self.sh).map_err(io::Error::other)?;
        let res = r.registry.deregister(source);
        let mut s = r.sources.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = s.entries.get_mut(token.0) {
            if e.take().is_some() {
                s.free.push(token.0);
            }
        }
        res
    }

    /// Run `f` in `color` after `delay`.
    pub fn post_after<F>(
        &self,
        delay: Duration,
        color: Color,
        handler: HandlerId,
        f: F,
    ) -> Result<(), PostError>
    where
        F: FnOnce(&mut Ctx<'_>) + Send + 'static,
    {
        self.post_at(Instant::now() + delay, color, handler, f)
    }

    /// Run `f` in `color` at `deadline` (or as soon as possible after it).
    pub fn post_at<F>(
        &self,
        deadline: Instant,
        color: Color,
        handler: HandlerId,
        f: F,
    ) -> Result<(), PostError>
    where
        F: FnOnce(&mut Ctx<'_>) + Send + 'static,
    {
        if self.sh.is_shutdown() {
            return Err(PostError::Shutdown);
        }
        let r = reactor(&self.sh)?;
        let ev = self.sh.make_event(color, handler, f);
        r.timers.add(deadline, ev);
        r.deadline_added(deadline);
        Ok(())
    }
}
