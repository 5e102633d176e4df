//! `ColorCell`: state owned by one color, accessed without a lock.
//!
//! Soundness argument: the runtime runs the events of one color one at a time, and the queue
//! lock hand-off orders each event of a color after the previous one (release on unlock by the
//! poster or the finishing worker, acquire on the next pop). So a cell only reachable through
//! `with`, which requires the running `Ctx` to be of the cell's color, is never accessed by two
//! threads at once. A borrow flag (acquire/release) additionally rejects re-entrant or
//! concurrent use from within one event (e.g. a scoped thread), turning misuse into a panic,
//! never a data race.

use crate::color::Color;
use crate::ctx::Ctx;
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, Ordering};

/// Releases a cell's borrow flag, also when the closure panics.
struct Borrow<'a>(&'a AtomicBool);

impl Drop for Borrow<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// A value owned by one color: events of that color use it without a lock (the runtime runs
/// them one at a time), events of any other color cannot (it panics).
///
/// ```
/// use colored_runtime::{Color, ColorCell, HandlerSpec, Runtime, RuntimeConfig};
/// use std::sync::{mpsc, Arc};
///
/// let rt = Runtime::new(RuntimeConfig { workers: 2, ..Default::default() }).unwrap();
/// let add = rt.register(HandlerSpec::new("add"));
/// // A counter owned by color 5: every event of color 5 may touch it, no lock needed.
/// let total = Arc::new(ColorCell::new(Color(5), 0u64));
/// let (tx, rx) = mpsc::channel();
/// for i in 1..=100u64 {
///     let (total, tx) = (total.clone(), tx.clone());
///     rt.post(Color(5), add, move |ctx| {
///         let now = total.with(ctx, |t| {
///             *t += i;
///             *t
///         });
///         if i == 100 {
///             tx.send(now).unwrap();
///         }
///     })
///     .unwrap();
/// }
/// // Events of one color posted by one thread run in order: the last one sees the full sum.
/// assert_eq!(rx.recv().unwrap(), 5050);
/// ```
pub struct ColorCell<T> {
    /// The color whose events may use the value.
    color: Color,
    /// True while an event holds the value (rejects re-entry).
    borrowed: AtomicBool,
    /// The value.
    value: UnsafeCell<T>,
}

// SAFETY: access to `value` is exclusive (see the module doc: the color invariant plus the
// borrow flag), so sharing the cell between threads only ever moves `&mut T` access between
// threads one at a time, which needs `T: Send`.
unsafe impl<T: Send> Sync for ColorCell<T> {}

impl<T> ColorCell<T> {
    /// A cell holding `value`, owned by `color`.
    pub fn new(color: Color, value: T) -> Self {
        ColorCell {
            color,
            borrowed: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// The color that owns the value.
    pub fn color(&self) -> Color {
        self.color
    }

    /// Check the running color and take the borrow flag (released when the guard drops).
    fn enter(&self, running: Color) -> Borrow<'_> {
        assert_eq!(
            running, self.color,
            "ColorCell of color {} used from an event of color {}",
            self.color, running
        );
        if self.borrowed.swap(true, Ordering::Acquire) {
            panic!("ColorCell of color {} borrowed twice", self.color);
        }
        Borrow(&self.borrowed)
    }

    /// Run `f` with the value. Panics if the running event is not of this cell's color or if
    /// the cell is already borrowed.
    pub fn with<R>(&self, ctx: &Ctx<'_>, f: impl FnOnce(&mut T) -> R) -> R {
        let _borrow = self.enter(ctx.color());
        // SAFETY: we hold the borrow flag, and only events of `self.color` (serialised by the
        // runtime) can get here, so this is the only live reference to the value.
        f(unsafe { &mut *self.value.get() })
    }

    /// Like [`with`](Self::with), but the closure also gets the context, so it can post events
    /// while it holds the value. Using the cell again from inside panics (the borrow flag).
    pub fn with_ctx<'w, R>(
        &self,
        ctx: &mut Ctx<'w>,
        f: impl FnOnce(&mut T, &mut Ctx<'w>) -> R,
    ) -> R {
        let _borrow = self.enter(ctx.color());
        // SAFETY: as in `with`: the borrow flag is ours and only events of `self.color` reach
        // this point, so this is the only reference to the value.
        f(unsafe { &mut *self.value.get() }, ctx)
    }

    /// The value, through exclusive access to the cell (no event can be using it).
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }

    /// The value, consuming the cell.
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}
