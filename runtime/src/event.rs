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
use std::mem::{self, ManuallyDrop, MaybeUninit};
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
        let mut data = MaybeUninit::<[usize; INLINE_WORDS]>::uninit();
        let fits = mem::size_of::<F>() <= mem::size_of::<[usize; INLINE_WORDS]>()
            && mem::align_of::<F>() <= mem::align_of::<usize>();
        if fits && !force_heap {
            // SAFETY: `F` fits in the storage in size and alignment (checked just above), and the
            // storage is uninitialised, so writing does not leak a previous value.
            unsafe { ptr::write(data.as_mut_ptr() as *mut F, f) };
            Task {
                data,
                vtable: &Inline::<F>::VTABLE,
            }
        } else {
            // SAFETY: a `Box<F>` is one pointer, which always fits in the word-aligned storage.
            unsafe { ptr::write(data.as_mut_ptr() as *mut Box<F>, Box::new(f)) };
            Task {
                data,
                vtable: &Boxed::<F>::VTABLE,
            }
        }
    }

    /// Runs the continuation, consuming it.
    #[inline]
    pub(crate) fn run(self, ctx: &mut Ctx<'_>) {
        let mut this = ManuallyDrop::new(self);
        let call = this.vtable.call;
        // SAFETY: `this` is never dropped (ManuallyDrop), so `call`, which moves the closure out
        // of the storage, is the only consumer of it. If the closure panics, the moved-out closure
        // is dropped by unwinding inside `call`, not here.
        unsafe { call(this.data.as_mut_ptr() as *mut u8, ctx) }
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

/// A queued event.
pub(crate) struct Event {
    pub(crate) handler: u16,
    pub(crate) flags: u16,
    pub(crate) color: Color,
    /// Estimated processing time in cycles when posted (annotation or profile).
    pub(crate) cost: u32,
    /// `cost / penalty`: the penalty-weighted time used by penalty-aware stealing.
    pub(crate) wcost: u32,
    pub(crate) task: Task,
}
