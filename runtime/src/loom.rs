//! Facade over the synchronisation primitives, so the concurrency core can run under
//! [loom](https://docs.rs/loom) (`RUSTFLAGS="--cfg loom" cargo test -p colored-runtime --test loom`),
//! as tokio does.
//!
//! What comes from here: every atomic and lock of the protocol that loom models check: the
//! core locks and queues' published state (`core`), the color map (`color`), the idle
//! protocol's counters (`idle`), the shutdown flag, the steal-cost estimate and the published
//! counters (`shared`, `stats`), the handler registry's profile averages (`handler`).
//!
//! What deliberately comes from `std` (outside the modelled protocol, each guarded by its own
//! reasoning in its module): `ColorCell`'s borrow flag (`cell`: a misuse detector inside one
//! color's event, ordered by the runtime's own hand-off), the timer heap's, the reactor's and
//! the blocking pool's mutexes (`timer`, `reactor`, `blocking`: I/O side, never taken while a
//! core lock is held), the handler registry's registration mutex and `OnceLock`s (`handler`),
//! the threads' `OnceLock`s and the start-up channels (`shared`, `runtime`). The loom models
//! drive posts, steals, batches and the idle protocol without the reactor or the blocking pool.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{
    AtomicBool, AtomicU16, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicU16, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};

/// The per-core queue lock: a test-and-test-and-set spin lock with exponential backoff that
/// yields the CPU once the backoff is exhausted.
///
/// Critical sections are a few hundred cycles (a push, a pop, a steal of one color-queue; a
/// time-left steal of up to 32 color-queues holds the victim's lock some microseconds). A
/// sleeping lock (parking_lot) made a waiting thief park on a victim's lock, and every later
/// unlock by the victim then paid a futex wake-up, several microseconds on a virtual machine;
/// the victim of the `unbalanced` benchmark spent half its time in such unlocks. Waiters here
/// never sleep in the kernel: after the backoff they `yield`, so an oversubscribed holder that was
/// preempted still gets the CPU back. It is not fair, on purpose: a ticket lock (tried) hands the
/// lock to the next waiter in line even when that thread is preempted, which made the
/// oversubscribed stress test (8 threads on 2 cores) six times slower, and fairness did not help
/// the one case that looked like it needed it (libasync's back-to-back whole-queue steals).
#[cfg(not(loom))]
pub(crate) struct Lock<T>(lock_api::Mutex<RawSpinLock, T>);
#[cfg(not(loom))]
pub(crate) type LockGuard<'a, T> = lock_api::MutexGuard<'a, RawSpinLock, T>;

#[cfg(not(loom))]
impl<T> Lock<T> {
    pub(crate) fn new(value: T) -> Self {
        Lock(lock_api::Mutex::new(value))
    }
    #[inline]
    pub(crate) fn lock(&self) -> LockGuard<'_, T> {
        self.0.lock()
    }
}

#[cfg(not(loom))]
pub(crate) struct RawSpinLock {
    locked: AtomicBool,
}

#[cfg(not(loom))]
impl RawSpinLock {
    #[cold]
    fn lock_contended(&self) {
        let backoff = crossbeam_utils::Backoff::new();
        loop {
            // Wait on a plain load (the line stays shared) until the lock looks free.
            while self.locked.load(Ordering::Relaxed) {
                backoff.snooze();
            }
            if lock_api::RawMutex::try_lock(self) {
                return;
            }
        }
    }
}

// SAFETY: `try_lock` and `lock` succeed only for the one thread whose compare-exchange moved
// `locked` from false to true (Acquire), and `unlock` (Release) is called only by that holder, so
// at most one thread holds the lock and the holder sees everything the previous holder wrote.
#[cfg(not(loom))]
unsafe impl lock_api::RawMutex for RawSpinLock {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: RawSpinLock = RawSpinLock {
        locked: AtomicBool::new(false),
    };
    type GuardMarker = lock_api::GuardSend;

    #[inline]
    fn lock(&self) {
        if !self.try_lock() {
            self.lock_contended();
        }
    }

    #[inline]
    fn try_lock(&self) -> bool {
        self.locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    #[inline]
    unsafe fn unlock(&self) {
        self.locked.store(false, Ordering::Release);
    }
}

#[cfg(loom)]
pub(crate) struct Lock<T>(loom::sync::Mutex<T>);
#[cfg(loom)]
pub(crate) type LockGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

#[cfg(loom)]
impl<T> Lock<T> {
    pub(crate) fn new(value: T) -> Self {
        Lock(loom::sync::Mutex::new(value))
    }
    pub(crate) fn lock(&self) -> LockGuard<'_, T> {
        self.0.lock().unwrap()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::Lock;
    use std::sync::Arc;

    /// Mutual exclusion under contention (more threads than cores): a non-atomic
    /// read-modify-write under the lock loses no update.
    #[test]
    fn spin_lock_excludes() {
        let lock = Arc::new(Lock::new(0u64));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let lock = lock.clone();
                std::thread::spawn(move || {
                    for _ in 0..50_000 {
                        let mut g = lock.lock();
                        let v = *g;
                        std::hint::black_box(&v);
                        *g = v + 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*lock.lock(), 200_000);
    }

    #[test]
    fn try_lock_fails_while_held() {
        let lock = Lock::new(());
        let g = lock.lock();
        assert!(lock.0.try_lock().is_none());
        drop(g);
        assert!(lock.0.try_lock().is_some());
    }
}
