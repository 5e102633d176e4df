//! The two queue designs behind one trait ([`Design`]): `libasync` (one FIFO per core) and
//! `mely` (color-queues chained in a core-queue, a stealing-queue). A design is plain data: it
//! is only ever touched with its core's lock held, through the handles of `core`, which own the
//! locking, the running set and the published length.

pub(crate) mod libasync;
pub(crate) mod mely;

use crate::config::{QueueKind, StealAmount, StealPolicy, StealWalk};
use crate::event::Event;
use std::collections::VecDeque;
use std::{mem, ptr};

// The configuration's validation knows which design keeps per-color time without naming the
// designs (it is below them); this keeps the two answers the same.
const _: () = assert!(libasync::LibasyncQueue::TIME_LEFT == QueueKind::Libasync.keeps_time_left());
const _: () = assert!(mely::MelyQueue::TIME_LEFT == QueueKind::Mely.keeps_time_left());

/// A slot value that names no slot.
pub(crate) const NOT_RUNNING: u32 = u32::MAX;

/// What a push or a steal needs to know from the runtime.
#[derive(Clone, Copy)]
pub(crate) struct QueueParams {
    /// Keep the time-left stealing-queue.
    pub(crate) time_left: bool,
    /// Account penalty-weighted time instead of raw time.
    pub(crate) weighted: bool,
    /// A color is worth stealing when its queued time exceeds this (cycles).
    pub(crate) threshold: u64,
    /// How a libasync steal collects the chosen color's events.
    pub(crate) walk: StealWalk,
}

/// Which colors of a victim a steal takes (the core set is `steal`'s business).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StealChoice {
    /// libasync-smp's: the first color from the head that is not running and holds at most half
    /// of the queued events.
    Base,
    /// Mely's time-left: worthy colors (queued time above the steal-cost threshold), best
    /// interval first; `amount` says how many.
    TimeLeft(StealAmount),
}

impl StealChoice {
    /// The choice a policy makes (`off` never steals; callers check that first).
    pub(crate) fn of(policy: StealPolicy, amount: StealAmount) -> StealChoice {
        if policy.time_left() {
            StealChoice::TimeLeft(amount)
        } else {
            StealChoice::Base
        }
    }
}

/// Most colors one batch may span (the size of [`Running`]).
pub(crate) const MAX_RUNNING: usize = 16;

/// The slots of the batch an owner is running (popped, not finished): a thief never takes one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Running {
    /// The slots, the first `n` of them in use (`NOT_RUNNING` beyond).
    slots: [u32; MAX_RUNNING],
    /// How many are in use.
    n: u8,
}

impl Running {
    /// Nothing running.
    pub(crate) const NONE: Running = Running {
        slots: [NOT_RUNNING; MAX_RUNNING],
        n: 0,
    };

    /// `slot` alone running (`NOT_RUNNING`: nothing).
    #[cfg(test)]
    pub(crate) fn one(slot: u32) -> Running {
        let mut r = Running::NONE;
        if slot != NOT_RUNNING {
            r.push(slot as usize);
        }
        r
    }

    #[inline]
    pub(crate) fn contains(&self, slot: usize) -> bool {
        self.slots[..self.n as usize].contains(&(slot as u32))
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.n == 0
    }

    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.n as usize == MAX_RUNNING
    }

    /// Add `slot` (the set must not be full).
    #[inline]
    pub(crate) fn push(&mut self, slot: usize) {
        debug_assert!(!self.is_full());
        self.slots[self.n as usize] = slot as u32;
        self.n += 1;
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.slots[..self.n as usize].iter().map(|&s| s as usize)
    }
}

/// The result of a successful steal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[must_use = "a steal moved events and remapped colors; account it"]
pub(crate) struct Stolen {
    /// Colors moved.
    pub(crate) colors: usize,
    /// Events moved (the steal's size).
    pub(crate) events: usize,
    /// Nodes of the victim's queue the steal visited: libasync, the list nodes whose color it
    /// read (the choice's scan and the walk collecting the events, each node once per pass);
    /// Mely, the color-queues it took (it reaches them without walking events).
    pub(crate) nodes: usize,
}

/// A core's queue state. All methods run with the core lock held.
pub(crate) trait Design: Send + Sized + 'static {
    /// An empty queue (allocates its tables: call it on the core's own thread).
    fn new() -> Self;
    /// Queued events.
    fn len(&self) -> usize;
    /// Enqueue. Returns true when the queue now holds something a thief could take (a hint
    /// used to wake a parked thief).
    fn push(&mut self, ev: Event, p: &QueueParams) -> bool;
    /// Move the next events to run into `out` and add their slots to `running` (empty on
    /// entry); false when the queue is empty. libasync: one event. Mely: batches of up to
    /// `batch` events of one color, from successive color-queues until `batch` events or
    /// [`MAX_RUNNING`] colors are out (the order sequential pops would give, under one lock).
    fn pop(
        &mut self,
        out: &mut Vec<Event>,
        batch: usize,
        p: &QueueParams,
        running: &mut Running,
    ) -> bool;
    /// Whether the design keeps per-color queued time and can make the time-left choice
    /// ([`StealChoice::TimeLeft`]); a runtime configuration asking for it on a design without it
    /// is rejected when built.
    const TIME_LEFT: bool;

    /// Whether a thief reads the victim's published length and skips an empty victim without
    /// locking it (Mely). libasync-smp locked every victim of the core set before looking.
    const PEEKS_LENGTH: bool;

    /// Choose colors of `victim` (never one in `running`) as `choice` says and move all their
    /// queued events to `thief`, marked stolen, calling `remap(slot)` for each moved color so the
    /// caller remaps it while both locks are held. `None` when nothing could be taken.
    fn steal(
        victim: &mut Self,
        thief: &mut Self,
        running: &Running,
        choice: StealChoice,
        p: &QueueParams,
        remap: &mut dyn FnMut(usize),
    ) -> Option<Stolen>;
    /// Move every queued event of `slot` from `from` to `to`, in order (placement). Returns how
    /// many moved.
    fn move_slot(from: &mut Self, to: &mut Self, slot: usize, p: &QueueParams) -> usize;
    /// Drop everything queued (shutdown); returns how many events were dropped.
    fn clear(&mut self) -> usize;
}

/// Move the first `n` events of `src` (`n <= src.len()`) to the end of `out`, in order.
///
/// Bytes are copied straight from the ring's storage into `out`'s; popping them one by one would
/// move each 56-byte event through a temporary on the stack, a copy the processor often cannot
/// forward from the stores that just wrote it (a stall per event).
#[inline]
pub(crate) fn move_front(src: &mut VecDeque<Event>, n: usize, out: &mut Vec<Event>) {
    assert!(n <= src.len());
    out.reserve(n);
    let (a, b) = src.as_slices();
    let k = n.min(a.len());
    let len = out.len();
    // SAFETY: `out` has room for `n` more events (reserved above); `a[..k]` and `b[..n - k]` are
    // initialised events of `src` (`n <= a.len() + b.len()`), disjoint from `out`'s buffer. The
    // copies are not owned by anyone until `set_len` below, which runs only after `src` has given
    // up the originals without dropping them, so every event keeps exactly one owner.
    unsafe {
        let dst = out.as_mut_ptr().add(len);
        ptr::copy_nonoverlapping(a.as_ptr(), dst, k);
        ptr::copy_nonoverlapping(b.as_ptr(), dst.add(k), n - k);
    }
    // The originals leave `src` without being dropped (their bytes now live in `out`).
    for ev in src.drain(..n) {
        mem::forget(ev);
    }
    // SAFETY: the `n` events after `len` were initialised by the copies above and are owned by
    // nothing else now.
    unsafe { out.set_len(len + n) };
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::color::Color;
    use crate::event::Task;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    struct Tracked(Arc<AtomicUsize>);
    impl Drop for Tracked {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn ev(i: u32, drops: &Arc<AtomicUsize>, heap: bool) -> Event {
        let t = Tracked(drops.clone());
        Event::new(0, Color(i), i, 0, Task::detached(move || drop(t), heap))
    }

    /// `move_front` keeps order, across the ring's wrap-around, and every event is dropped
    /// exactly once afterwards (inline and boxed closures).
    #[test]
    fn move_front_keeps_order_and_ownership() {
        for heap in [false, true] {
            for n in [0, 1, 3, 7, 8] {
                let drops = Arc::new(AtomicUsize::new(0));
                let mut src: VecDeque<Event> = VecDeque::with_capacity(8);
                // Rotate the ring so its contents wrap around the end of the buffer.
                for i in 0..5 {
                    src.push_back(ev(100 + i, &drops, heap));
                }
                src.drain(..5);
                for i in 0..8 {
                    src.push_back(ev(i, &drops, heap));
                }
                assert_eq!(drops.load(Ordering::Relaxed), 5);
                let mut out = vec![ev(99, &drops, heap)];
                move_front(&mut src, n, &mut out);
                assert_eq!(out.len(), 1 + n);
                assert_eq!(src.len(), 8 - n);
                let colors: Vec<u32> = out.iter().map(|e| e.color().0).collect();
                let want: Vec<u32> = std::iter::once(99).chain(0..n as u32).collect();
                assert_eq!(colors, want);
                let rest: Vec<u32> = src.iter().map(|e| e.color().0).collect();
                assert_eq!(rest, (n as u32..8).collect::<Vec<_>>());
                assert_eq!(
                    drops.load(Ordering::Relaxed),
                    5,
                    "nothing dropped by the move"
                );
                drop(out);
                drop(src);
                assert_eq!(
                    drops.load(Ordering::Relaxed),
                    5 + 9,
                    "each event dropped once"
                );
            }
        }
    }

    /// An event built in place owns its closure like one built by value.
    #[test]
    fn push_new_builds_a_complete_event() {
        for heap in [false, true] {
            let drops = Arc::new(AtomicUsize::new(0));
            let mut buf = Vec::new();
            for i in 0..3u32 {
                let t = Tracked(drops.clone());
                // SAFETY: the writer initialises the task at the slot it is given.
                unsafe {
                    Event::push_with(&mut buf, 7, Color(i), 10 + i, 20 + i, |dst| {
                        dst.write(Task::detached(move || drop(t), heap))
                    });
                }
            }
            let e = &buf[2];
            assert_eq!(
                (e.handler(), e.color(), e.cost(), e.wcost()),
                (7, Color(2), 12, 22)
            );
            assert_eq!(e.flags(), 0);
            drop(buf);
            assert_eq!(drops.load(Ordering::Relaxed), 3);
        }
    }
}
