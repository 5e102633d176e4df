//! The context an event runs with: post more events, find out where it runs.

use crate::color::Color;
use crate::event::Event;
use crate::handler::HandlerId;
use crate::shared::Shared;
use crate::stats::Counters;
use crate::Handle;
use std::marker::PhantomData;

/// What an event may ask of the worker running it, whatever the queue design (implemented by
/// the worker over its core's owner handle).
pub(crate) trait WorkerOps {
    /// One stealing round into this worker's queue; true if it stole.
    fn try_steal(&mut self, counters: &mut Counters) -> bool;
    /// The reactor is about to block: mark this worker polling (if its queue is empty) and
    /// follow the idle protocol's last look. True if the worker may block now; then
    /// [`WorkerOps::end_polling`] must follow the poll.
    fn begin_polling(&mut self, counters: &mut Counters) -> bool;
    /// The poll returned: the worker is running again.
    fn end_polling(&mut self);
}

/// Buffered local posts are flushed at this many.
pub const LOCAL_FLUSH: usize = 32;

/// Passed to every event. Not `Send`/`Sync`: it belongs to the event running on this worker.
pub struct Ctx<'w> {
    /// The runtime's shared state.
    sh: &'w Shared,
    /// The runtime's handle, lent to the event.
    handle: &'w Handle,
    /// The worker running the event.
    worker: usize,
    /// The running event's color.
    color: Color,
    /// The worker's private counters.
    counters: &'w mut Counters,
    /// Events of the running batch after this one.
    local_pending: usize,
    /// Events posted to this worker's own core, flushed under one lock (see `post`).
    local_buf: &'w mut Vec<Event>,
    /// The worker's own operations (stealing, polling), over its core's owner handle.
    ops: &'w mut dyn WorkerOps,
    /// Cycles this event spent blocked (the reactor's poll): idle, not busy or handler time.
    pub(crate) blocked_cycles: u64,
    _not_send: PhantomData<*const ()>,
}

/// What the worker running an event lends its context for the event's run.
pub(crate) struct Lent<'w> {
    /// The worker's private counters.
    pub(crate) counters: &'w mut Counters,
    /// Its buffer of local posts.
    pub(crate) local_buf: &'w mut Vec<Event>,
    /// Its own operations.
    pub(crate) ops: &'w mut dyn WorkerOps,
}

impl<'w> Ctx<'w> {
    /// The context of an event of `color` run by `worker`, with `local_pending` events of its
    /// batch after it.
    pub(crate) fn new(
        sh: &'w Shared,
        handle: &'w Handle,
        worker: usize,
        color: Color,
        local_pending: usize,
        lent: Lent<'w>,
    ) -> Self {
        Ctx {
            sh,
            handle,
            worker,
            color,
            counters: lent.counters,
            local_pending,
            local_buf: lent.local_buf,
            ops: lent.ops,
            blocked_cycles: 0,
            _not_send: PhantomData,
        }
    }

    /// Post an event (libasync-smp's `cpucb`). After shutdown the event is dropped and counted.
    ///
    /// Events for colors this worker owns are buffered and enqueued under one lock when the
    /// handler returns (or when 32 are buffered); an event for another core first
    /// flushes the buffer, so every color still sees its events in posting order.
    #[inline]
    pub fn post<F>(&mut self, color: Color, handler: HandlerId, f: F)
    where
        F: FnOnce(&mut Ctx<'_>) + Send + 'static,
    {
        if self.sh.is_shutdown() {
            self.counters.dropped += 1;
            return;
        }
        if self.sh.map.get(color.slot()) == self.worker {
            self.sh.push_new_event(self.local_buf, color, handler, f);
            if self.local_buf.len() >= LOCAL_FLUSH {
                self.flush();
            }
        } else {
            let ev = self.sh.make_event(color, handler, f);
            self.post_remote(ev);
        }
    }

    /// Post an I/O callback (readiness, the reactor's own re-post): like [`Ctx::post`], marked
    /// as I/O so the libasync design queues it behind `cpucb` callbacks.
    pub(crate) fn post_io<F>(&mut self, color: Color, handler: HandlerId, f: F)
    where
        F: FnOnce(&mut Ctx<'_>) + Send + 'static,
    {
        let mut ev = self.sh.make_event(color, handler, f);
        ev.add_flags(crate::event::FLAG_IO);
        self.post_event(ev);
    }

    #[inline]
    pub(crate) fn post_event(&mut self, ev: Event) {
        if self.sh.is_shutdown() {
            self.counters.dropped += 1;
        } else if self.sh.map.get(ev.color().slot()) == self.worker {
            self.push_local(ev);
        } else {
            self.post_remote(ev);
        }
    }

    #[inline(always)]
    fn push_local(&mut self, ev: Event) {
        self.local_buf.push(ev);
        if self.local_buf.len() >= LOCAL_FLUSH {
            self.flush();
        }
    }

    /// An event for another core: flush the local buffer first (per-color order), then post.
    #[inline(never)]
    fn post_remote(&mut self, ev: Event) {
        self.flush();
        if self.sh.push(ev, Some(&mut *self.counters)).is_err() {
            self.counters.dropped += 1;
        }
    }

    /// Account `cycles` this event spent blocked waiting for I/O as idle time.
    pub(crate) fn add_blocked(&mut self, cycles: u64) {
        self.counters.idle_cycles += cycles;
        self.blocked_cycles += cycles;
    }

    /// Enqueue the buffered local events now.
    #[inline]
    pub(crate) fn flush(&mut self) {
        if !self.local_buf.is_empty() {
            self.sh
                .flush_local(self.worker, self.local_buf, self.counters);
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
        self.sh.states[self.worker].len() + self.local_pending + self.local_buf.len()
    }

    /// Try one round of stealing into this worker's queue (used by the reactor before it
    /// blocks). False when stealing is off or nothing was worth taking.
    pub fn try_steal(&mut self) -> bool {
        if !self.sh.cfg.stealing.enabled() {
            return false;
        }
        self.ops.try_steal(self.counters)
    }

    /// The reactor's poll failed (counted in `poll_errors`).
    pub(crate) fn count_poll_error(&mut self) {
        self.counters.poll_errors += 1;
    }

    /// The reactor is about to block in its poll (see [`WorkerOps::begin_polling`]).
    pub(crate) fn begin_polling(&mut self) -> bool {
        self.ops.begin_polling(self.counters)
    }

    /// The reactor's poll returned.
    pub(crate) fn end_polling(&mut self) {
        self.ops.end_polling()
    }

    pub(crate) fn shared(&self) -> &'w Shared {
        self.sh
    }
}
