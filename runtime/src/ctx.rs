//! The context an event runs with: post more events, find out where it runs.

use crate::color::Color;
use crate::handler::HandlerId;
use crate::runtime::{with_cores, Handle, Shared};
use crate::stats::Counters;
use crate::steal;
use std::marker::PhantomData;

/// Passed to every event. Not `Send`/`Sync`: it belongs to the event running on this worker.
pub struct Ctx<'w> {
    sh: &'w Shared,
    handle: &'w Handle,
    worker: usize,
    color: Color,
    counters: &'w mut Counters,
    local_pending: usize,
    _not_send: PhantomData<*const ()>,
}

impl<'w> Ctx<'w> {
    pub(crate) fn new(
        sh: &'w Shared,
        handle: &'w Handle,
        worker: usize,
        color: Color,
        counters: &'w mut Counters,
        local_pending: usize,
    ) -> Self {
        Ctx { sh, handle, worker, color, counters, local_pending, _not_send: PhantomData }
    }

    /// Post an event (libasync-smp's `cpucb`). After shutdown the event is dropped and counted.
    #[inline]
    pub fn post<F>(&mut self, color: Color, handler: HandlerId, f: F)
    where
        F: FnOnce(&mut Ctx<'_>) + Send + 'static,
    {
        let ev = self.sh.make_event(color, handler, f);
        if self.sh.push(ev, Some(&mut self.counters.lock_cycles)).is_err() {
            self.counters.dropped += 1;
        }
    }

    /// The color of the running event.
    pub fn color(&self) -> Color {
        self.color
    }

    /// Index of the worker (core) running this event.
    pub fn worker(&self) -> usize {
        self.worker
    }

    /// A handle to the runtime (timers, I/O, blocking work, stats).
    pub fn handle(&self) -> &Handle {
        self.handle
    }

    /// Events queued on this worker's core, plus the rest of the running batch.
    pub fn local_queue_len(&self) -> usize {
        let own = with_cores!(&self.sh.cores, c => c[self.worker].len.load(crate::loom::Ordering::Relaxed));
        own + self.local_pending
    }

    /// Try one round of stealing into this worker's queue (used by the reactor before it
    /// blocks). False when stealing is off or nothing was worth taking.
    pub fn try_steal(&mut self) -> bool {
        if !self.sh.cfg.stealing.enabled() {
            return false;
        }
        let (sh, w) = (self.sh, self.worker);
        with_cores!(&sh.cores, c => steal::try_steal(sh, c, w, self.counters))
    }

    pub(crate) fn shared(&self) -> &'w Shared {
        self.sh
    }
    pub(crate) fn counters(&mut self) -> &mut Counters {
        self.counters
    }
}
