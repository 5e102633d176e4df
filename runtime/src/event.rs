//! Events: a handler id, a color, cost estimates, and the continuation to run.
//!
//! The continuation is a closure stored *inline* in the event when it fits in [`INLINE_WORDS`]
//! machine words (most closures capture a few pointers or integers), otherwise boxed. Events are
//! moved by value through the queues, so posting and running an event with a small closure
//! allocates nothing: this is our counterpart of libasync-smp's per-thread task object free
//! lists. [`EventStorage::Heap`](crate::EventStorage) forces every closure into a box (the
//! baseline of the synthetic benchmark).
//!
//! A [`Task`] here is type-erased down to its storage and two functions; it does not name the
//! argument its closure takes. Every runtime task takes the event context (`Ctx`), which lives
//! in a higher layer (`ctx`, which holds queued events itself), so the constructors that know
//! the closure's type, and the call that passes the context, are in `ctx`: the only module that
//! makes or runs a task (besides this module's tests).

use crate::Color;
use std::mem::{self, MaybeUninit};
use std::ptr;

/// Closures up to this many words (and at most word-aligned) are stored inline.
pub(crate) const INLINE_WORDS: usize = 4;

/// The two functions of a stored closure of one type, stored inline or boxed.
pub(crate) struct VTable {
    /// Moves the closure out of the storage (first argument) and calls it with the argument the
    /// task's maker erased into the second pointer.
    pub(crate) call: unsafe fn(*mut u8, *mut ()),
    /// Drops the closure in place without calling it.
    pub(crate) drop: unsafe fn(*mut u8),
}

/// A type-erased one-shot closure (see the module doc).
pub(crate) struct Task {
    /// The closure, or a `Box` of it.
    data: MaybeUninit<[usize; INLINE_WORDS]>,
    /// The functions matching what `data` holds.
    vtable: &'static VTable,
}

// SAFETY: a `Task` is only built from closures that are `Send` (every maker requires it), and it
// owns the closure exclusively, so moving it to another thread moves a `Send` value.
unsafe impl Send for Task {}

impl Task {
    /// Whether a value of type `T` is stored inline (it fits the word-aligned storage).
    #[inline]
    pub(crate) const fn fits<T>() -> bool {
        mem::size_of::<T>() <= mem::size_of::<[usize; INLINE_WORDS]>()
            && mem::align_of::<T>() <= mem::align_of::<usize>()
    }

    /// Writes a task holding `value` at `dst`, field by field (no temporary `Task`).
    ///
    /// # Safety
    /// `dst` is valid for writes and holds no live `Task` (it is overwritten, not dropped);
    /// `T` fits ([`Task::fits`]); `vtable`'s functions treat the storage as holding a `T` (the
    /// closure, or a `Box` of it) and `call` expects the argument pointer its runner passes.
    #[inline]
    pub(crate) unsafe fn write_raw<T>(dst: *mut Task, value: T, vtable: &'static VTable) {
        debug_assert!(Self::fits::<T>());
        // SAFETY: `dst` is valid for writes and `T` fits the word-aligned storage in size and
        // alignment (caller's contract); the vtable written beside it matches (caller's
        // contract).
        unsafe {
            let data = ptr::addr_of_mut!((*dst).data) as *mut u8;
            ptr::write(data as *mut T, value);
            ptr::addr_of_mut!((*dst).vtable).write(vtable);
        }
    }

    /// Runs the continuation stored at `task` with the erased argument `arg`, without moving
    /// the `Task` itself (the run loop calls events where the queue copied them, instead of
    /// moving 56 bytes per event again).
    ///
    /// # Safety
    /// `task` points to a live `Task` that the caller owns and treats as moved-out afterwards:
    /// it is never read, run or dropped again (the caller forgets its storage). `arg` is what
    /// the task's maker said its `call` takes.
    #[inline]
    pub(crate) unsafe fn run_raw(task: *mut Task, arg: *mut ()) {
        // SAFETY: `task` is live (caller's contract); `call` moves the closure out of its storage
        // and is its only consumer, since the caller never drops or reads this `Task` again. A
        // panicking closure is dropped by unwinding inside `call`.
        unsafe {
            let call = (*task).vtable.call;
            call(ptr::addr_of_mut!((*task).data) as *mut u8, arg)
        }
    }

    /// A task around a closure that ignores its argument (for the queues' unit tests, which
    /// never run what they queue with a context).
    #[cfg(test)]
    pub(crate) fn detached<F: FnOnce() + Send + 'static>(f: F, force_heap: bool) -> Task {
        unsafe fn call_inline<F: FnOnce()>(p: *mut u8, _: *mut ()) {
            // SAFETY: `p` holds an initialised `F`, read exactly once (`run_raw`'s contract).
            unsafe { ptr::read(p as *mut F)() }
        }
        unsafe fn drop_inline<F>(p: *mut u8) {
            // SAFETY: `p` holds an initialised `F`, dropped exactly once.
            unsafe { ptr::drop_in_place(p as *mut F) }
        }
        unsafe fn call_boxed<F: FnOnce()>(p: *mut u8, _: *mut ()) {
            // SAFETY: `p` holds a `Box<F>`, read exactly once.
            unsafe { ptr::read(p as *mut Box<F>)() }
        }
        unsafe fn drop_boxed<F>(p: *mut u8) {
            // SAFETY: `p` holds a `Box<F>`, dropped exactly once.
            unsafe { ptr::drop_in_place(p as *mut Box<F>) }
        }
        struct V<F>(F);
        impl<F: FnOnce()> V<F> {
            const INLINE: VTable = VTable {
                call: call_inline::<F>,
                drop: drop_inline::<F>,
            };
            const BOXED: VTable = VTable {
                call: call_boxed::<F>,
                drop: drop_boxed::<F>,
            };
        }
        let mut t = MaybeUninit::<Task>::uninit();
        // SAFETY: `t` is valid for writes; the value written fits (checked, or a one-word box)
        // and its vtable matches it.
        unsafe {
            if Self::fits::<F>() && !force_heap {
                Task::write_raw(t.as_mut_ptr(), f, &V::<F>::INLINE);
            } else {
                Task::write_raw(t.as_mut_ptr(), Box::new(f), &V::<F>::BOXED);
            }
            t.assume_init()
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
    /// The continuation.
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

    /// Builds an event directly at the end of `buf`, its task written by `write_task` at the
    /// pointer it is given: a post to the worker's own core writes its event once, where the
    /// flush will read it, instead of building it on the stack and copying.
    ///
    /// # Safety
    /// `write_task` initialises a task at the pointer (which holds no live task), or panics
    /// before writing anything.
    #[inline]
    pub(crate) unsafe fn push_with(
        buf: &mut Vec<Event>,
        handler: u16,
        color: Color,
        cost: u32,
        wcost: u32,
        write_task: impl FnOnce(*mut Task),
    ) {
        buf.reserve(1);
        let len = buf.len();
        // SAFETY: `reserve` left room for one more event at `len`; every field is written before
        // `set_len` makes the vector own it (the task by `write_task`, caller's contract; if it
        // panics, the slot is simply unused).
        unsafe {
            let dst = buf.as_mut_ptr().add(len);
            ptr::addr_of_mut!((*dst).head).write(Self::pack_head(handler, color));
            ptr::addr_of_mut!((*dst).costs).write(Self::pack_costs(cost, wcost));
            write_task(ptr::addr_of_mut!((*dst).task));
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
