//! The idle protocol: which idle workers search for work to steal, when they go to sleep, and
//! who wakes them. After tokio's (`scheduler/multi_thread/idle.rs`), adapted to per-core queues
//! whose owners are always woken by posts to them.
//!
//! Rules (with stealing on; without it an idle worker just sleeps and only posts to its own
//! queue wake it). They are ours (`IdleMode::Bounded`); with the papers' `IdleMode::Spin` every
//! idle worker searches (rule 1 has no cap), back to back with no nap and no time limit, so it
//! never reaches rule 3 while stealing is on, and rules 2 and 4 find a searcher and wake nobody:
//! 1. An idle worker searches (steal attempts separated by naps, for up to the configured search
//!    time) only if fewer than half of the workers search already ([`Idle::try_begin_search`]);
//!    otherwise it goes straight to sleep. So at most half the workers (rounded up) search.
//! 2. A searcher that finds work stops searching; if it was the last searcher, it wakes a
//!    sleeping worker to search in its place, so that while work is being found somebody keeps
//!    looking for more (tokio's rule).
//! 3. A worker goes to sleep in this order: it marks its own core asleep (under its own lock,
//!    after seeing its queue empty; see `core`), counts itself a sleeper, stops searching, and,
//!    if no worker searches now, runs one last steal round that locks every victim (the last
//!    look: `worker::machine::fall_asleep` says when it is due, `steal::Look::LockEvery` makes the
//!    round lock every victim). If that steals, it cancels its sleep.
//! 4. A post that leaves a queue with something to steal wakes one sleeping worker if no
//!    worker searches and some worker sleeps ([`Idle::should_wake_thief`]).
//!
//! Why no stealable post is left to its owner alone while a worker sleeps: take a post P to core
//! `c` and the last searcher S going to sleep (rule 3). Both lock `c`: P to enqueue, S in its
//! final round. If S locks `c` after P unlocked it, S sees P's event and steals it. Otherwise S
//! unlocked `c` before P locked it, so S's sleeper count, its end of search and its sleep state
//! (all written before S locked `c`) happen-before P's reads after P's own unlock: P sees no
//! searcher and a sleeper and wakes one (rule 4), S included. A worker that started searching
//! after S is itself a searcher, and the argument repeats when it stops. The loom model
//! `idle_race` checks this on the real code.

use crate::loom::{AtomicUsize, Ordering};
use crossbeam_utils::CachePadded;

/// Searching and sleeping workers.
pub(crate) struct Idle {
    /// Workers searching for work to steal now.
    searching: CachePadded<AtomicUsize>,
    /// Workers asleep (parked, or blocked in the reactor's poll), counted from before their
    /// last check to after they woke.
    sleepers: CachePadded<AtomicUsize>,
    /// Workers in the runtime.
    workers: usize,
}

impl Idle {
    pub(crate) fn new(workers: usize) -> Self {
        Idle {
            searching: CachePadded::new(AtomicUsize::new(0)),
            sleepers: CachePadded::new(AtomicUsize::new(0)),
            workers,
        }
    }

    /// Become a searcher if fewer than half of the workers search (rule 1; with one or two
    /// workers, one searcher at most). True if the caller now searches.
    pub(crate) fn try_begin_search(&self) -> bool {
        let mut n = self.searching.load(Ordering::Relaxed);
        loop {
            if 2 * n >= self.workers.max(2) {
                return false;
            }
            match self.searching.compare_exchange_weak(
                n,
                n + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => n = now,
            }
        }
    }

    /// Become a searcher whatever the count (`IdleMode::Spin`: every idle worker searches).
    pub(crate) fn begin_search_uncapped(&self) {
        self.searching.fetch_add(1, Ordering::AcqRel);
    }

    /// Stop searching. True if the caller was the last searcher.
    pub(crate) fn end_search(&self) -> bool {
        let before = self.searching.fetch_sub(1, Ordering::AcqRel);
        debug_assert!(before > 0, "end_search without begin");
        before == 1
    }

    /// Workers searching now (a hint).
    pub(crate) fn searching(&self) -> usize {
        self.searching.load(Ordering::Acquire)
    }

    /// Count the caller as a sleeper (rule 3, before its last check).
    pub(crate) fn begin_sleep(&self) {
        self.sleepers.fetch_add(1, Ordering::AcqRel);
    }

    /// The caller woke up (or cancelled its sleep).
    pub(crate) fn end_sleep(&self) {
        let before = self.sleepers.fetch_sub(1, Ordering::AcqRel);
        debug_assert!(before > 0, "end_sleep without begin");
    }

    /// Rule 4: a post that left something to steal wakes a thief when nobody searches and
    /// somebody sleeps.
    #[inline]
    pub(crate) fn should_wake_thief(&self) -> bool {
        self.searching.load(Ordering::Acquire) == 0 && self.sleepers.load(Ordering::Acquire) > 0
    }

    /// Rule 2: a searcher that found work and was the last one wakes a sleeper, if any.
    pub(crate) fn should_wake_successor(&self, was_last: bool) -> bool {
        was_last && self.sleepers.load(Ordering::Acquire) > 0
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::Idle;

    #[test]
    fn at_most_half_search() {
        for (workers, most) in [(1, 1), (2, 1), (3, 2), (4, 2), (8, 4), (9, 5)] {
            let idle = Idle::new(workers);
            let mut n = 0;
            while idle.try_begin_search() {
                n += 1;
                assert!(n <= workers, "runaway");
            }
            assert_eq!(n, most, "{workers} workers");
            for i in 0..n {
                assert_eq!(idle.end_search(), i == n - 1);
            }
            assert_eq!(idle.searching(), 0);
        }
    }

    #[test]
    fn a_thief_is_woken_only_when_nobody_searches_and_somebody_sleeps() {
        let idle = Idle::new(4);
        assert!(!idle.should_wake_thief(), "nobody sleeps");
        idle.begin_sleep();
        assert!(idle.should_wake_thief());
        assert!(idle.try_begin_search());
        assert!(!idle.should_wake_thief(), "a searcher will find it");
        assert!(idle.should_wake_successor(idle.end_search()));
        idle.end_sleep();
        assert!(!idle.should_wake_successor(true), "nobody to wake");
    }
}
