//! Events: a handler id, a color, cost estimates, and the continuation to run.
//!
//! The continuation is a `FnOnce(&mut Ctx)` stored *inline* in the event when it fits in
//! [`INLINE_WORDS`] machine words (most closures capture a few pointers or integers), otherwise
//! boxed. Events are moved by value through the queues, so posting and running an event with a
//! small closure allocates nothing: this is our counterpart of libasync-smp's per-thread task
//! object free lists. [`EventStorage::Heap`](crate::EventStorage) forces every closure into a box
//! (the baseline of the synthetic benchmark).

use crate::ctx::Ctx;
use crate::Color;
use std::mem::{self, MaybeUninit};
use std::ptr;

/// Closures up to this many words (and at most word-aligned) are stored inline.
pub(crate) const INLINE_WORDS: usize = 4;

struct VTable {
    /// Moves the closure out of the storage and calls it.
    call: unsafe fn(*mut u8, &mut Ctx<'_>),
    /// Drops the closure in place without calling it.
    drop: unsafe fn(*mut u8),
}

/// A type-erased `FnOnce(&mut Ctx)`.
pub(crate) struct Task {
    data: MaybeUninit<[usize; INLINE_WORDS]>,
    vtable: &'static VTable,
}

// SAFETY: a `Task` is only built from closures that are `Send` (see `Task::new`), and it owns the
// closure exclusively, so moving it to another thread moves a `Send` value.
unsafe impl Send for Task {}

unsafe fn call_inline<F: FnOnce(&mut Ctx<'_>)>(p: *mut u8, ctx: &mut Ctx<'_>) {
    // SAFETY: `p` points to an initialised `F` written by `Task::new`; the caller (`Task::run`)
    // guarantees it is read exactly once and never dropped afterwards.
    let f = unsafe { ptr::read(p as *mut F) };
    f(ctx)
}
unsafe fn drop_inline<F>(p: *mut u8) {
    // SAFETY: `p` points to an initialised `F` that is dropped exactly once (from `Drop`).
    unsafe { ptr::drop_in_place(p as *mut F) }
}
unsafe fn call_boxed<F: FnOnce(&mut Ctx<'_>)>(p: *mut u8, ctx: &mut Ctx<'_>) {
    // SAFETY: the storage holds a `Box<F>` pointer written by `Task::new`, read exactly once.
    let f = unsafe { ptr::read(p as *mut Box<F>) };
    f(ctx)
}
unsafe fn drop_boxed<F>(p: *mut u8) {
    // SAFETY: the storage holds a `Box<F>` dropped exactly once.
    unsafe { ptr::drop_in_place(p as *mut Box<F>) }
}

struct Inline<F>(F);
impl<F: FnOnce(&mut Ctx<'_>)> Inline<F> {
    const VTABLE: VTable = VTable {
        call: call_inline::<F>,
        drop: drop_inline::<F>,
    };
}
struct Boxed<F>(F);
impl<F: FnOnce(&mut Ctx<'_>)> Boxed<F> {
    const VTABLE: VTable = VTable {
        call: call_boxed::<F>,
        drop: drop_boxed::<F>,
    };
}

impl Task {
    #[inline]
    pub(crate) fn new<F>(f: F, force_heap: bool) -> Task
    where
        F: FnOnce(&mut Ctx<'_>) + Send + 'static,
    {
        let mut t = MaybeUninit::<Task>::uninit();
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
        let fits = mem::size_of::<F>() <= mem::size_of::<[usize; INLINE_WORDS]>()
            && mem::align_of::<F>() <= mem::align_of::<usize>();
        // SAFETY: `dst` is valid for writes (caller's contract). An inline `F` fits the word-aligned
        // storage in size and alignment (checked just above); a `Box<F>` is one pointer, which
        // always fits. The vtable written beside the storage matches what was stored.
        unsafe {
            let data = ptr::addr_of_mut!((*dst).data) as *mut u8;
            if fits && !force_heap {
                ptr::write(data as *mut F, f);
                ptr::addr_of_mut!((*dst).vtable).write(&Inline::<F>::VTABLE);
            } else {
                ptr::write(data as *mut Box<F>, Box::new(f));
                ptr::addr_of_mut!((*dst).vtable).write(&Boxed::<F>::VTABLE);
            }
        }
    }

    /// Runs the continuation stored at `task` without moving the `Task` itself (the run loop
    /// calls events where the queue copied them, instead of moving 56 bytes per event again).
    ///
    /// # Safety
    /// `task` points to a live `Task` that the caller owns and treats as moved-out afterwards:
    /// it is never read, run or dropped again (the caller forgets its storage).
    #[inline]
    pub(crate) unsafe fn run_in_place(task: *mut Task, ctx: &mut Ctx<'_>) {
        // SAFETY: `task` is live (caller's contract); `call` moves the closure out of its storage
        // and is its only consumer, since the caller never drops or reads this `Task` again. A
        // panicking closure is dropped by unwinding inside `call`.
        unsafe {
            let call = (*task).vtable.call;
            call(ptr::addr_of_mut!((*task).data) as *mut u8, ctx)
        }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        // SAFETY: an un-run task still owns its closure; drop it exactly once.
        unsafe { (self.vtable.drop)(self.data.as_mut_ptr() as *mut u8) }
    }
}

/// Flag: the event was moved by a steal (its run time counts as stolen time).
pub(crate) const FLAG_STOLEN: u16 = 1;
/// Flag: the event is an I/O callback (readiness of a source, a timer, the reactor's own Epoll
/// event), not a `cpucb` posted by code. The libasync design queues `cpucb` callbacks ahead of
/// I/O callbacks, as libasync-smp did; Mely ignores the flag.
pub(crate) const FLAG_IO: u16 = 2;

/// A queued event.
///
/// The small fields are packed in two words that are always written and read whole: events are
/// built on the stack and copied into queues, and a copy that reads a word assembled from
/// narrower stores cannot be store-forwarded (a stall of a dozen cycles on every post).
pub(crate) struct Event {
    /// Handler (bits 0-15), flags (16-31), color (32-63).
    head: u64,
    /// Estimated processing time in cycles when posted (annotation or profile, bits 0-31) and
    /// `cost / penalty`, the penalty-weighted time penalty-aware stealing uses (bits 32-63).
    costs: u64,
    pub(crate) task: Task,
}

impl Event {
    #[inline]
    pub(crate) fn new(handler: u16, color: Color, cost: u32, wcost: u32, task: Task) -> Event {
        Event {
            head: Self::pack_head(handler, color),
            costs: Self::pack_costs(cost, wcost),
            task,
        }
    }

    /// Builds an event directly at the end of `buf`: a post to the worker's own core writes its
    /// event once, where the flush will read it, instead of building it on the stack and copying.
    #[inline]
    pub(crate) fn push_new<F>(
        buf: &mut Vec<Event>,
        handler: u16,
        color: Color,
        cost: u32,
        wcost: u32,
        f: F,
        force_heap: bool,
    ) where
        F: FnOnce(&mut Ctx<'_>) + Send + 'static,
    {
        buf.reserve(1);
        let len = buf.len();
        // SAFETY: `reserve` left room for one more event at `len`; every field is written before
        // `set_len` makes the vector own it (if `Box::new` panics, the slot is simply unused).
        unsafe {
            let dst = buf.as_mut_ptr().add(len);
            ptr::addr_of_mut!((*dst).head).write(Self::pack_head(handler, color));
            ptr::addr_of_mut!((*dst).costs).write(Self::pack_costs(cost, wcost));
            Task::write_at(ptr::addr_of_mut!((*dst).task), f, force_heap);
            buf.set_len(len + 1);
        }
    }

    /// `head` for a new event: no flags set.
    #[inline]
    fn pack_head(handler: u16, color: Color) -> u64 {
        handler as u64 | (color.0 as u64) << 32
    }

    #[inline]
    fn pack_costs(cost: u32, wcost: u32) -> u64 {
        cost as u64 | (wcost as u64) << 32
    }

    #[inline]
    pub(crate) fn handler(&self) -> u16 {
        self.head as u16
    }

    #[inline]
    pub(crate) fn flags(&self) -> u16 {
        (self.head >> 16) as u16
    }

    /// Set `flags` (ORed into the ones already set).
    #[inline]
    pub(crate) fn add_flags(&mut self, flags: u16) {
        self.head |= (flags as u64) << 16;
    }

    #[inline]
    pub(crate) fn color(&self) -> Color {
        Color((self.head >> 32) as u32)
    }

    #[inline]
    pub(crate) fn cost(&self) -> u32 {
        self.costs as u32
    }

    #[inline]
    pub(crate) fn wcost(&self) -> u32 {
        (self.costs >> 32) as u32
    }
}
