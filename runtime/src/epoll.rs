//! The reactor's Epoll event and the registration paths (the reactor's state is in
//! `reactor`): what turns readiness and expired timers into posted events.
//!
//! The Epoll event polls without blocking when its core has other work queued (or it could
//! steal some); otherwise it marks its worker polling under the core lock (so a poster knows to
//! wake it through the mio waker) and blocks until the next timer deadline. Each ready source
//! becomes one event of that source's color and handler; expired timers are posted; then the
//! Epoll event re-posts itself.

use crate::color::Color;
use crate::ctx::{self, Ctx};
use crate::error::PostError;
use crate::event::{Event, Task, FLAG_IO};
use crate::handler::HandlerId;
use crate::reactor::{IoToken, OnReady, Reactor, Readiness};
use crate::shared::Shared;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The reactor of `sh`, created and started (its Epoll event posted) on first use.
pub(crate) fn reactor(sh: &Shared) -> Result<&Reactor, PostError> {
    let r = match sh.reactor() {
        Some(r) => r,
        None => sh.install_reactor(Reactor::new().map_err(PostError::Reactor)?),
    };
    if r.start_once() {
        let mut ev = ctx::event(sh, Color::DEFAULT, HandlerId::EPOLL, epoll_event);
        ev.add_flags(FLAG_IO);
        sh.push(ev, None).map_err(|_| PostError::Shutdown)?;
    }
    Ok(r)
}

/// The Epoll event (see the module doc).
fn epoll_event(ctx: &mut Ctx<'_>) {
    let sh = ctx.shared();
    if sh.is_shutdown() {
        return;
    }
    let r = sh
        .reactor()
        .expect("the Epoll event runs only once the reactor exists");
    let now = Instant::now();
    let mut timeout = Some(Duration::ZERO);
    let mut polling = false;
    if ctx.local_queue_len() == 0 && !ctx.try_steal() {
        let next = r.timers().next_deadline();
        timeout = next.map(|next| next.saturating_duration_since(now));
        r.sleeping_until(next);
        polling = ctx.begin_polling();
        if !polling {
            timeout = Some(Duration::ZERO);
        }
        // A timer added between reading the deadline and publishing `sleep_until` must not be
        // missed: re-check.
        if let (Some(next), true) = (r.timers().next_deadline(), polling) {
            if timeout.map_or(true, |t| now + t > next) {
                timeout = Some(next.saturating_duration_since(Instant::now()));
            }
        }
    }
    let mut ready: Vec<(usize, Readiness)> = Vec::new();
    let blocking = timeout != Some(Duration::ZERO);
    let t0 = if blocking { crate::tsc::now() } else { 0 };
    let failed = r.poll(timeout, &mut ready);
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
        for (color, handler, task) in r.ready_tasks(ready) {
            ctx.post_io_task(color, handler, task);
        }
    }
    for mut ev in r.timers().expired(Instant::now()) {
        ev.add_flags(FLAG_IO);
        ctx.post_event(ev);
    }
    // After shutdown (which woke the poll) the reactor stops: its own re-post would only be
    // dropped, and counted as if it were an event of the application's.
    if !sh.is_shutdown() {
        ctx.post_io(Color::DEFAULT, HandlerId::EPOLL, epoll_event);
    }
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
    let cb = Arc::new(on_ready);
    let heap = sh.force_heap();
    let make: OnReady = Arc::new(move |rd| {
        let cb = cb.clone();
        Task::new(move |ctx: &mut Ctx<'_>| cb(ctx, rd), heap)
    });
    r.register(source, interest, color, handler, make)
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
    reactor(sh)
        .map_err(io::Error::other)?
        .reregister(source, token, interest)
}

/// Deregister a source; events already posted for it may still run.
pub(crate) fn deregister<S>(sh: &Shared, source: &mut S, token: IoToken) -> io::Result<()>
where
    S: mio::event::Source + ?Sized,
{
    reactor(sh)
        .map_err(io::Error::other)?
        .deregister(source, token)
}

/// Post `ev` when `deadline` passes. `Shutdown` (and `ev` dropped) once the runtime stops.
pub(crate) fn add_timer(sh: &Shared, deadline: Instant, ev: Event) -> Result<(), PostError> {
    let r = reactor(sh)?;
    r.timers()
        .add(deadline, ev)
        .map_err(|_| PostError::Shutdown)?;
    if sh.is_shutdown() {
        // The shutdown closed the timers before this one was added (or is about to): it is
        // dropped and counted with the others, never left pending.
        sh.close_timers();
        return Err(PostError::Shutdown);
    }
    r.deadline_added(deadline);
    Ok(())
}
