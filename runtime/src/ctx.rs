//! The context an event runs with: post more events, find out where it runs. And the makers of
//! events: every event's task is a closure over a `&mut Ctx`, so the code that knows a task's
//! closure type (building it, running it with a context) is here (see `event`).

use crate::color::Color;
use crate::event::{Event, Task, VTable};
use crate::handler::HandlerId;
use crate::shared::{Handle, Shared};
use crate::stats::Counters;
use std::marker::PhantomData;
use std::ptr;

unsafe fn call_inline<F: FnOnce(&mut Ctx<'_>)>(p: *mut u8, ctx: *mut ()) {
    // SAFETY: `p` points to an initialised `F` written by `Task::write_at`, read exactly once
    // (`Task::run_raw`'s contract); `ctx` is the `&mut Ctx` that `Task::run_in_place` erased,
    // live and unaliased for this call.
    unsafe {
        let f = ptr::read(p as *mut F);
        f(&mut *(ctx as *mut Ctx<'_>))
    }
}
unsafe fn drop_inline<F>(p: *mut u8) {
    // SAFETY: `p` points to an initialised `F` that is dropped exactly once (from `Drop`).
    unsafe { ptr::drop_in_place(p as *mut F) }
}
unsafe fn call_boxed<F: FnOnce(&mut Ctx<'_>)>(p: *mut u8, ctx: *mut ()) {
    // SAFETY: the storage holds a `Box<F>` pointer written by `Task::write_at`, read exactly
    // once; `ctx` is as in `call_inline`.
    unsafe {
        let f = ptr::read(p as *mut Box<F>);
        f(&mut *(ctx as *mut Ctx<'_>))
    }
}
unsafe fn drop_boxed<F>(p: *mut u8) {
    // SAFETY: the storage holds a `Box<F>` dropped exactly once.
    unsafe { ptr::drop_in_place(p as *mut Box<F>) }
}

/// The vtables of a closure type `F`, stored inline or boxed.
struct Erased<F>(F);
impl<F: FnOnce(&mut Ctx<'_>)> Erased<F> {
    const INLINE: VTable = VTable {
        call: call_inline::<F>,
        drop: drop_inline::<F>,
    };
    const BOXED: VTable = VTable {
        call: call_boxed::<F>,
        drop: drop_boxed::<F>,
    };
}

/// The task makers and runner (the only ones: a task's erased argument is always a `Ctx`).
impl Task {
    /// The task running `f`, inline when it fits, boxed otherwise or when `force_heap`.
    #[inline]
    pub(crate) fn new<F>(f: F, force_heap: bool) -> Task
    where
        F: FnOnce(&mut Ctx<'_>) + Send + 'static,
    {
        let mut t = std::mem::MaybeUninit::<Task>::uninit();
        // SAFETY: `t` is valid for writes and initialised by `write_at`.
        unsafe {
            Task::write_at(t.as_mut_ptr(), f, force_heap);
            t.assume_init()
        }
    }

    /// Builds the task for `f` at `dst`, field by field (no temporary `Task`).
    ///
    /// # Safety
    /// `dst` is valid for writes and holds no live `Task` (it is overwritten, not dropped).
    #[inline]
    pub(crate) unsafe fn write_at<F>(dst: *mut Task, f: F, force_heap: bool)
    where
        F: FnOnce(&mut Ctx<'_>) + Send + 'static,
    {
        // SAFETY: `dst` is valid for writes (caller's contract). An inline `F` fits (checked
        // here); a `Box<F>` is one pointer, which always fits. Each vtable's functions treat the
        // storage as what was written and take the `Ctx` that `run_in_place` passes.
        unsafe {
            if Task::fits::<F>() && !force_heap {
                Task::write_raw(dst, f, &Erased::<F>::INLINE);
            } else {
                Task::write_raw(dst, Box::new(f), &Erased::<F>::BOXED);
            }
        }
    }

    /// Runs the continuation stored at `task` with `ctx`, without moving the `Task`.
    ///
    /// # Safety
    /// As [`Task::run_raw`]: `task` points to a live `Task` that the caller owns and never
    /// reads, runs or drops again.
    #[inline]
    pub(crate) unsafe fn run_in_place(task: *mut Task, ctx: &mut Ctx<'_>) {
        // SAFETY: the caller's contract, and every task was made by `write_at`, whose `call`
        // takes this erased `&mut Ctx`.
        unsafe { Task::run_raw(task, ctx as *mut Ctx<'_> as *mut ()) }
    }
}

/// The event of `handler` and `color` running `f`, with the cost estimates of `sh`'s registry
/// and its closure storage.
#[inline]
pub(crate) fn event<F>(sh: &Shared, color: Color, handler: HandlerId, f: F) -> Event
where
    F: FnOnce(&mut Ctx<'_>) + Send + 'static,
{
    let (cost, wcost) = sh.costs(handler);
    Event::new(handler.0, color, cost, wcost, Task::new(f, sh.force_heap()))
}

/// Like [`event`], building the event at the end of `buf`.
#[inline]
pub(crate) fn push_event<F>(
    sh: &Shared,
    buf: &mut Vec<Event>,
    color: Color,
    handler: HandlerId,
    f: F,
) where
    F: FnOnce(&mut Ctx<'_>) + Send + 'static,
{
    let (cost, wcost) = sh.costs(handler);
    let heap = sh.force_heap();
    // SAFETY: `write_at` initialises the task at the slot `push_with` gives (which holds none).
    unsafe {
        Event::push_with(buf, handler.0, color, cost, wcost, |dst| {
            Task::write_at(dst, f, heap)
        })
    }
}

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
    /// The worker's trace buffer, if it records (a post to another core is recorded there).
    fn recorder(&mut self) -> Option<&mut colored_trace::Recorder>;
}

/// Most local posts buffered before a flush (the configuration's `post_batch` says how many).
pub const LOCAL_FLUSH: usize = crate::config::MAX_POST_BATCH;

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
    /// handler returns (or when the configuration's `post_batch` are buffered, 32 by default;
    /// with 1 every post takes the core lock at once, as libasync-smp's `cpucb`); an event for
    /// another core first flushes the buffer, so every color still sees its events in posting
    /// order.
    #[inline]
    pub fn post<F>(&mut self, color: Color, handler: HandlerId, f: F)
    where
        F: FnOnce(&mut Ctx<'_>) + Send + 'static,
    {
        if self.sh.is_shutdown() {
            self.counters.dropped += 1;
            return;
        }
        if self.sh.map().get(color.slot()) == self.worker {
            push_event(self.sh, self.local_buf, color, handler, f);
            if self.local_buf.len() >= self.sh.post_batch() {
                self.flush();
            }
        } else {
            let ev = event(self.sh, color, handler, f);
            self.post_remote(ev);
        }
    }

    /// Post an I/O callback (readiness, the reactor's own re-post): like [`Ctx::post`], marked
    /// as I/O so the libasync design queues it behind `cpucb` callbacks.
    pub(crate) fn post_io<F>(&mut self, color: Color, handler: HandlerId, f: F)
    where
        F: FnOnce(&mut Ctx<'_>) + Send + 'static,
    {
        let mut ev = event(self.sh, color, handler, f);
        ev.add_flags(crate::event::FLAG_IO);
        self.post_event(ev);
    }

    /// Post a ready-made I/O task (a source's readiness): like [`Ctx::post_io`].
    pub(crate) fn post_io_task(&mut self, color: Color, handler: HandlerId, task: Task) {
        let (cost, wcost) = self.sh.costs(handler);
        let mut ev = Event::new(handler.0, color, cost, wcost, task);
        ev.add_flags(crate::event::FLAG_IO);
        self.post_event(ev);
    }

    /// Post a ready-made event (a timer's, an I/O task's).
    #[inline]
    pub(crate) fn post_event(&mut self, ev: Event) {
        if self.sh.is_shutdown() {
            self.counters.dropped += 1;
        } else if self.sh.map().get(ev.color().slot()) == self.worker {
            self.push_local(ev);
        } else {
            self.post_remote(ev);
        }
    }

    #[inline(always)]
    fn push_local(&mut self, ev: Event) {
        self.local_buf.push(ev);
        if self.local_buf.len() >= self.sh.post_batch() {
            self.flush();
        }
    }

    /// An event for another core: flush the local buffer first (per-color order), then post.
    #[inline(never)]
    fn post_remote(&mut self, ev: Event) {
        self.flush();
        let color = ev.color();
        if self.sh.push(ev, Some(&mut *self.counters)).is_err() {
            self.counters.dropped += 1;
        } else if let Some(rec) = self.ops.recorder() {
            rec.record(colored_trace::Record::Post {
                at: crate::tsc::now(),
                color: color.0,
                // The core the map names now (a steal may have moved the color since the push).
                target: self.sh.map().get(color.slot()) as u16,
            });
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
        self.sh.state(self.worker).len() + self.local_pending + self.local_buf.len()
    }

    /// Try one round of stealing into this worker's queue (used by the reactor before it
    /// blocks). False when stealing is off or nothing was worth taking.
    pub fn try_steal(&mut self) -> bool {
        if !self.sh.stealing().on {
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

    /// The runtime's shared state (for the Epoll event).
    pub(crate) fn shared(&self) -> &'w Shared {
        self.sh
    }
}
