//! The two queue designs behind one trait.
//!
//! Each core owns one [`CoreShared`]: the design's queue state behind the core lock, plus a few
//! atomics other threads read without the lock (queue length, the running color's slot, the
//! owning worker's sleep state).
//!
//! Invariants (who may touch what):
//! - The queue state is only touched with the core lock held: by the owning worker (pop), by any
//!   poster (push), by a thief (steal, holding the victim's *and* its own lock, taken in core
//!   index order so two thieves cannot deadlock), and by a placement (same two locks).
//! - `running` names the slot whose events the owner is running (or [`NOT_RUNNING`]). The owner
//!   sets it under the lock when it pops a batch and clears it with a `Release` store after the
//!   batch ran; a thief reads it under the victim's lock and never takes that slot. So a stolen
//!   color's next event runs only after the previous one finished (the clear happens-before the
//!   thief's read).
//! - `len` mirrors the number of queued events and is written under the lock; reads without the
//!   lock are hints (most-loaded victim, parking recheck is done under the lock).

pub(crate) mod libasync;
pub(crate) mod mely;

use crate::event::Event;
use crate::loom::{AtomicU32, AtomicU8, AtomicUsize, Lock, LockGuard};
use crossbeam_utils::CachePadded;

/// `running` when the owner runs nothing.
pub(crate) const NOT_RUNNING: u32 = u32::MAX;

/// Worker sleep states, kept in [`CoreShared::state`].
pub(crate) mod state {
    pub(crate) const RUNNING: u8 = 0;
    /// Parked in `thread::park`; a poster must unpark it.
    pub(crate) const PARKED: u8 = 1;
    /// Blocked in the reactor's poll; a poster must wake the mio waker.
    pub(crate) const POLLING: u8 = 2;
    /// Someone already woke it.
    pub(crate) const NOTIFIED: u8 = 3;
}

/// What a push or a steal needs to know from the runtime.
#[derive(Clone, Copy)]
pub(crate) struct QueueParams {
    /// Keep the time-left stealing-queue.
    pub(crate) time_left: bool,
    /// Account penalty-weighted time instead of raw time.
    pub(crate) weighted: bool,
    /// A color is worth stealing when its queued time exceeds this (cycles).
    pub(crate) threshold: u64,
}

/// The result of a successful steal.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stolen {
    pub(crate) slot: usize,
    /// Events moved (the steal's size).
    #[allow(dead_code)]
    pub(crate) events: usize,
}

/// A core's queue state. All methods run with the core lock held.
pub(crate) trait Design: Send + Sized + 'static {
    fn new() -> Self;
    /// Queued events.
    fn len(&self) -> usize;
    /// Enqueue. Returns true when the queue now holds something a thief could take (a hint
    /// used to wake a parked thief).
    fn push(&mut self, ev: Event, p: &QueueParams) -> bool;
    /// Move the next events to run (all of one color, at most `batch`) into `out`; returns their
    /// slot.
    fn pop(&mut self, out: &mut Vec<Event>, batch: usize, p: &QueueParams) -> Option<usize>;
    /// Choose a color of `victim` (never the `running` slot), move all its queued events to
    /// `thief`, marked stolen. The caller remaps the slot while both locks are held.
    fn steal(
        victim: &mut Self,
        thief: &mut Self,
        running: u32,
        base_choice: bool,
        p: &QueueParams,
    ) -> Option<Stolen>;
    /// Move every queued event of `slot` from `from` to `to`, in order (placement). Returns how
    /// many moved.
    fn move_slot(from: &mut Self, to: &mut Self, slot: usize, p: &QueueParams) -> usize;
    /// Drop everything queued (shutdown); returns how many events were dropped.
    fn clear(&mut self) -> usize;
}

/// One core: its queue and the atomics others read.
pub(crate) struct CoreShared<D> {
    pub(crate) queue: Lock<D>,
    pub(crate) len: AtomicUsize,
    pub(crate) running: AtomicU32,
    pub(crate) state: AtomicU8,
}

impl<D: Design> CoreShared<D> {
    pub(crate) fn new() -> Self {
        CoreShared {
            queue: Lock::new(D::new()),
            len: AtomicUsize::new(0),
            running: AtomicU32::new(NOT_RUNNING),
            state: AtomicU8::new(state::RUNNING),
        }
    }
}

/// Lock cores `a` and `b` (distinct) in core index order, so two threads locking the same pair
/// (two thieves stealing from each other, a steal racing a placement) cannot deadlock. Returns
/// `a`'s guard, then `b`'s.
pub(crate) fn lock_pair<D>(
    cores: &[CachePadded<CoreShared<D>>],
    a: usize,
    b: usize,
) -> (LockGuard<'_, D>, LockGuard<'_, D>) {
    debug_assert_ne!(a, b);
    if a < b {
        let ga = cores[a].queue.lock();
        (ga, cores[b].queue.lock())
    } else {
        let gb = cores[b].queue.lock();
        (cores[a].queue.lock(), gb)
    }
}
