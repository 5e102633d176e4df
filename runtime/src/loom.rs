//! Facade over the synchronisation primitives, so the queue and map code can run under
//! [loom](https://docs.rs/loom) (`RUSTFLAGS="--cfg loom" cargo test -p colored-runtime --test loom`),
//! as tokio does. Everything in this crate that other threads can observe imports its atomics and
//! locks from here, never from `std` directly.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{
    AtomicBool, AtomicU16, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicU16, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};

/// The per-core queue lock: a ticket spin lock (FIFO-fair) with exponential backoff that yields
/// the CPU once the backoff is exhausted.
///
/// Critical sections are a few hundred cycles (a push, a pop, a steal of one color-queue). A
/// sleeping lock (parking_lot) made a waiting thief park on a victim's lock, and every later
/// unlock by the victim then paid a futex wake-up, several microseconds on a virtual machine;
/// the victim of the `unbalanced` benchmark spent half its time in such unlocks. Waiters here
/// never sleep in the kernel: after the backoff they `yield`, so an oversubscribed holder that was
/// preempted still gets the CPU back. Tickets make the lock fair: with an unfair spin lock a thief
/// that steals in a loop (libasync's whole-queue scans) re-took the victim's lock before the
/// victim, spinning in backoff, ever got it back.
#[cfg(not(loom))]
pub(crate) struct Lock<T>(lock_api::Mutex<RawTicketLock, T>);
#[cfg(not(loom))]
pub(crate) type LockGuard<'a, T> = lock_api::MutexGuard<'a, RawTicketLock, T>;

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
pub(crate) struct RawTicketLock {
    /// The next ticket to hand out.
    next: AtomicU32,
    /// The ticket allowed to hold the lock.
    serving: AtomicU32,
}

#[cfg(not(loom))]
impl RawTicketLock {
    #[cold]
    fn wait_for(&self, ticket: u32) {
        let backoff = crossbeam_utils::Backoff::new();
        while self.serving.load(Ordering::Acquire) != ticket {
            backoff.snooze();
        }
    }
}

// SAFETY: every locker takes a distinct ticket (`fetch_add` on `next`; `try_lock` takes ticket
// `serving` only if no other ticket is outstanding) and holds the lock exactly while `serving`
// equals its ticket (observed with Acquire); only the holder advances `serving` (Release) when it
// unlocks. So at most one thread holds the lock, and it sees everything the previous holder wrote.
#[cfg(not(loom))]
unsafe impl lock_api::RawMutex for RawTicketLock {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: RawTicketLock = RawTicketLock {
        next: AtomicU32::new(0),
        serving: AtomicU32::new(0),
    };
    type GuardMarker = lock_api::GuardSend;

    #[inline]
    fn lock(&self) {
        let ticket = self.next.fetch_add(1, Ordering::Relaxed);
        if self.serving.load(Ordering::Acquire) != ticket {
            self.wait_for(ticket);
        }
    }

    #[inline]
    fn try_lock(&self) -> bool {
        // Acquire: synchronises with the unlock that started serving `s`. If `next` is still
        // `s`, no ticket is outstanding and `s` cannot stop being served before it is issued.
        let s = self.serving.load(Ordering::Acquire);
        self.next
            .compare_exchange(s, s.wrapping_add(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    #[inline]
    unsafe fn unlock(&self) {
        let s = self.serving.load(Ordering::Relaxed);
        self.serving.store(s.wrapping_add(1), Ordering::Release);
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
    fn ticket_lock_excludes() {
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
