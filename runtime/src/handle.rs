//! [`Handle`]: what code outside the runtime (and events, through [`Ctx::handle`]) can do with
//! a running runtime: post events, register handlers and I/O, set timers, run blocking work,
//! place colors, read statistics, shut down. All of its methods are here.

use crate::color::Color;
use crate::config::RuntimeConfig;
use crate::ctx::{self, Ctx};
use crate::epoll;
use crate::error::{PlaceError, PostError};
use crate::handler::{HandlerId, HandlerSpec};
use crate::reactor::{IoToken, Readiness};
use crate::stats::RuntimeStats;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::shared::Handle;

impl Handle {
    /// Register a handler (at any time, from any thread).
    pub fn register(&self, spec: HandlerSpec) -> HandlerId {
        self.sh.registry().register(spec)
    }

    /// Post an event: `f` runs on the core that owns `color`, never at the same time as another
    /// event of `color`, after the events of `color` this thread posted before.
    #[inline]
    pub fn post<F>(&self, color: Color, handler: HandlerId, f: F) -> Result<(), PostError>
    where
        F: FnOnce(&mut Ctx<'_>) + Send + 'static,
    {
        let ev = ctx::event(&self.sh, color, handler, f);
        self.sh.push(ev, None).map_err(|_| PostError::Shutdown)
    }

    /// Run `f` in `color` after `delay`.
    ///
    /// ```
    /// use colored_runtime::{Color, HandlerSpec, Runtime, RuntimeConfig};
    /// use std::{sync::mpsc, time::{Duration, Instant}};
    ///
    /// let rt = Runtime::new(RuntimeConfig { workers: 1, ..Default::default() }).unwrap();
    /// let tick = rt.register(HandlerSpec::new("tick"));
    /// let (tx, rx) = mpsc::channel();
    /// let start = Instant::now();
    /// rt.handle()
    ///     .post_after(Duration::from_millis(20), Color(1), tick, move |ctx| {
    ///         tx.send(ctx.color()).unwrap()
    ///     })
    ///     .unwrap();
    /// assert_eq!(rx.recv().unwrap(), Color(1));
    /// assert!(start.elapsed() >= Duration::from_millis(20));
    /// ```
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
        let ev = ctx::event(&self.sh, color, handler, f);
        epoll::add_timer(&self.sh, deadline, ev)
    }

    /// Run `work` on a helper thread; then run `done(ctx, result)` as an event of `color`.
    ///
    /// ```
    /// use colored_runtime::{Color, HandlerSpec, Runtime, RuntimeConfig};
    /// use std::sync::mpsc;
    ///
    /// let rt = Runtime::new(RuntimeConfig { workers: 1, ..Default::default() }).unwrap();
    /// let read = rt.register(HandlerSpec::new("ReadFile"));
    /// let (tx, rx) = mpsc::channel();
    /// rt.handle()
    ///     .spawn_blocking(
    ///         Color(4),
    ///         read,
    ///         || std::fs::read_to_string("/proc/self/status").map(|s| s.len()),
    ///         move |ctx, len| tx.send((ctx.color(), len.is_ok())).unwrap(),
    ///     )
    ///     .unwrap();
    /// assert_eq!(rx.recv().unwrap(), (Color(4), true));
    /// ```
    pub fn spawn_blocking<T, W, D>(
        &self,
        color: Color,
        handler: HandlerId,
        work: W,
        done: D,
    ) -> Result<(), PostError>
    where
        T: Send + 'static,
        W: FnOnce() -> T + Send + 'static,
        D: FnOnce(&mut Ctx<'_>, T) + Send + 'static,
    {
        let h = self.clone();
        if self.sh.is_shutdown() {
            return Err(PostError::Shutdown);
        }
        self.sh.blocking_pool().submit(Box::new(move || {
            let t = work();
            // After shutdown the completion is dropped (and so is `t`).
            let _ = h.post(color, handler, move |ctx| done(ctx, t));
        }))
    }

    /// Register a mio source. Each time it becomes ready (edge-triggered), `on_ready` runs as an
    /// event of `color` with `handler`; it should read or write until `WouldBlock`.
    ///
    /// ```
    /// use colored_runtime::{Color, HandlerSpec, Runtime, RuntimeConfig};
    /// use std::io::{Read, Write};
    /// use std::sync::{mpsc, Arc, Mutex};
    ///
    /// let rt = Runtime::new(RuntimeConfig { workers: 1, ..Default::default() }).unwrap();
    /// let on_data = rt.register(HandlerSpec::new("ReadSocket"));
    /// let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// a.set_nonblocking(true).unwrap();
    /// let a = Arc::new(Mutex::new(mio::net::UnixStream::from_std(a)));
    /// let (tx, rx) = mpsc::channel();
    /// let reader = a.clone();
    /// rt.handle()
    ///     .register_io(&mut *a.lock().unwrap(), mio::Interest::READABLE, Color(9), on_data,
    ///         move |_ctx, ready| {
    ///             if ready.readable {
    ///                 let mut buf = [0u8; 16];
    ///                 if let Ok(n) = reader.lock().unwrap().read(&mut buf) {
    ///                     tx.send(buf[..n].to_vec()).unwrap();
    ///                 }
    ///             }
    ///         })
    ///     .unwrap();
    /// b.write_all(b"ping").unwrap();
    /// assert_eq!(rx.recv().unwrap(), b"ping");
    /// ```
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
        epoll::register(&self.sh, source, interest, color, handler, on_ready)
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
        epoll::reregister(&self.sh, source, token, interest)
    }

    /// Deregister a source; events already posted for it may still run.
    pub fn deregister_io<S>(&self, source: &mut S, token: IoToken) -> io::Result<()>
    where
        S: mio::event::Source + ?Sized,
    {
        epoll::deregister(&self.sh, source, token)
    }

    /// The reactor's last poll failure, if any (each one is also counted in `poll_errors`).
    pub fn last_reactor_error(&self) -> Option<Arc<io::Error>> {
        self.sh.reactor().and_then(|r| r.last_error())
    }

    /// Move a color (and its queued events) to `core`; new events of the color go there too.
    /// Fails if the color is running right now.
    pub fn place(&self, color: Color, core: usize) -> Result<(), PlaceError> {
        self.sh.place(color, core)
    }

    /// Place many colors, retrying those that are running until they are not.
    pub fn place_all(
        &self,
        colors: impl IntoIterator<Item = Color>,
        core: usize,
    ) -> Result<(), PlaceError> {
        for c in colors {
            loop {
                match self.place(c, core) {
                    Err(PlaceError::Running(_)) => std::thread::yield_now(),
                    other => {
                        other?;
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// The core that currently owns `color`.
    pub fn core_of(&self, color: Color) -> usize {
        self.sh.map().get(color.slot())
    }

    /// Number of workers (cores) of the runtime.
    pub fn workers(&self) -> usize {
        self.sh.config().workers
    }

    /// The configuration the runtime was built with.
    pub fn config(&self) -> &RuntimeConfig {
        self.sh.config()
    }

    /// Where the cache topology used by locality-aware stealing came from ("hwloc" or "sysfs").
    pub fn topology_source(&self) -> &'static str {
        self.sh.topology().source()
    }

    /// A snapshot of every counter.
    pub fn stats(&self) -> RuntimeStats {
        self.sh.stats()
    }

    /// Ask the runtime to stop (idempotent, from any thread or handler).
    pub fn shutdown(&self) {
        self.sh.begin_shutdown();
    }

    /// True once [`Handle::shutdown`] was called.
    pub fn is_shutdown(&self) -> bool {
        self.sh.is_shutdown()
    }
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("workers", &self.sh.config().workers)
            .finish()
    }
}
