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

use crate::config::LockKind;

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{
    AtomicBool, AtomicU16, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicU16, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};

/// Spin until this thread's atomic compare-exchange moves `locked` from false to true: the
/// test-and-set lock (`LockKind::Tas`), libasync-smp's. Every try is a locked read-modify-write
/// (x86 `lock cmpxchg` takes the line exclusive and writes the destination back whether the
/// comparison succeeds or not, as `xchg` does), so every try takes the line away from the holder
/// and from other waiters; there is no backoff, no yield, no waiting on plain loads. The
/// spin-loop hint (x86 `pause`) paces the retries without growing: it is the idiom of a
/// spin-wait loop, not a backoff. A compare-exchange rather than a swap because, in the memory
/// model, a failed one adds no store to the flag's modification order: this same function is
/// the loom model's lock (the hint is then loom's yield point), and loom could not bound a
/// loop whose every try is a new store (a swap loop exceeded its branch limit).
#[inline]
fn tas_acquire(locked: &AtomicBool) {
    while locked
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        #[cfg(not(loom))]
        std::hint::spin_loop();
        #[cfg(loom)]
        loom::hint::spin_loop();
    }
}

/// The per-core queue lock: of either kind (`LockKind`), chosen when the core is built.
///
/// Ours (`Backoff`) is a test-and-test-and-set spin lock with exponential backoff that yields
/// the CPU once the backoff is exhausted. Critical sections are a few hundred cycles (a push, a
/// pop, a steal of one color-queue; a time-left steal of up to 32 color-queues holds the
/// victim's lock some microseconds). A sleeping lock (parking_lot) made a waiting thief park on
/// a victim's lock, and every later unlock by the victim then paid a futex wake-up, several
/// microseconds on a virtual machine; the victim of the `unbalanced` benchmark spent half its
/// time in such unlocks. Waiters here never sleep in the kernel: after the backoff they `yield`,
/// so an oversubscribed holder that was preempted still gets the CPU back. It is not fair, on
/// purpose: a ticket lock (tried) hands the lock to the next waiter in line even when that
/// thread is preempted, which made the oversubscribed stress test (8 threads on 2 cores) six
/// times slower, and fairness did not help the one case that looked like it needed it
/// (libasync's back-to-back whole-queue steals).
///
/// The papers' (`Tas`): [`tas_acquire`]. Both kinds share the uncontended path (one
/// compare-exchange); the kind is read only once the lock was found taken.
#[cfg(not(loom))]
pub(crate) struct Lock<T>(lock_api::Mutex<RawSpinLock, T>);
#[cfg(not(loom))]
pub(crate) type LockGuard<'a, T> = lock_api::MutexGuard<'a, RawSpinLock, T>;

#[cfg(not(loom))]
impl<T> Lock<T> {
    pub(crate) fn new(value: T, kind: LockKind) -> Self {
        let raw = RawSpinLock {
            locked: AtomicBool::new(false),
            tas: kind == LockKind::Tas,
        };
        Lock(lock_api::Mutex::from_raw(raw, value))
    }
    #[inline]
    pub(crate) fn lock(&self) -> LockGuard<'_, T> {
        self.0.lock()
    }
}

#[cfg(not(loom))]
pub(crate) struct RawSpinLock {
    /// Held.
    locked: AtomicBool,
    /// A waiter retries the atomic read-modify-write (`LockKind::Tas`) instead of waiting on
    /// loads with backoff.
    tas: bool,
}

#[cfg(not(loom))]
impl RawSpinLock {
    #[cold]
    fn lock_contended(&self) {
        if self.tas {
            return tas_acquire(&self.locked);
        }
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

// SAFETY: `try_lock` and `lock` succeed only for the one thread whose compare-exchange (or, for
// a test-and-set waiter, whose compare-exchange in `tas_acquire`) moved `locked` from false to true (Acquire), and `unlock`
// (Release) is called only by that holder, so at most one thread holds the lock and the holder
// sees everything the previous holder wrote.
#[cfg(not(loom))]
unsafe impl lock_api::RawMutex for RawSpinLock {
    // Only for lock_api's `const` constructors, which the runtime does not use (`Lock::new`
    // builds the raw lock of the kind asked for with `Mutex::from_raw`).
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: RawSpinLock = RawSpinLock {
        locked: AtomicBool::new(false),
        tas: false,
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

/// Under loom: ours is loom's mutex (its blocking keeps the models small); the test-and-set
/// lock is [`tas_acquire`] over a loom atomic, guarding a loom cell, so loom explores the
/// tries and checks that every access to the guarded value is ordered by them.
#[cfg(loom)]
pub(crate) enum Lock<T> {
    /// `LockKind::Backoff`'s stand-in.
    Mutex(loom::sync::Mutex<T>),
    /// `LockKind::Tas`: the flag and the value.
    Tas(AtomicBool, loom::cell::UnsafeCell<T>),
}

// SAFETY: the value is reached only through a guard, and a guard exists only for the thread
// whose compare-exchange moved the flag from false to true (`tas_acquire`), until it stores false
// again; so sharing the lock hands `&mut T` from thread to thread one at a time, for which
// `T: Send` is enough (loom's mutex variant is `Sync` on the same terms).
#[cfg(loom)]
unsafe impl<T: Send> Sync for Lock<T> {}

/// A held [`Lock`] under loom.
#[cfg(loom)]
pub(crate) enum LockGuard<'a, T> {
    /// Loom's mutex guard.
    Mutex(loom::sync::MutexGuard<'a, T>),
    /// The test-and-set lock's flag (released on drop) and the value's tracked pointer
    /// (`None` only while the guard drops: it goes before the flag is released).
    Tas(&'a AtomicBool, Option<loom::cell::MutPtr<T>>),
}

#[cfg(loom)]
impl<T> Lock<T> {
    pub(crate) fn new(value: T, kind: LockKind) -> Self {
        match kind {
            LockKind::Backoff => Lock::Mutex(loom::sync::Mutex::new(value)),
            LockKind::Tas => Lock::Tas(AtomicBool::new(false), loom::cell::UnsafeCell::new(value)),
        }
    }
    pub(crate) fn lock(&self) -> LockGuard<'_, T> {
        match self {
            Lock::Mutex(m) => LockGuard::Mutex(m.lock().unwrap()),
            Lock::Tas(locked, cell) => {
                tas_acquire(locked);
                LockGuard::Tas(locked, Some(cell.get_mut()))
            }
        }
    }
}

#[cfg(loom)]
impl<T> std::ops::Deref for LockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        match self {
            LockGuard::Mutex(g) => g,
            // SAFETY: the guard holds the lock (its compare-exchange won), so no other guard's pointer is
            // live; loom checks that claim on every access.
            LockGuard::Tas(_, p) => unsafe { p.as_ref().expect("held").deref() },
        }
    }
}

#[cfg(loom)]
impl<T> std::ops::DerefMut for LockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        match self {
            LockGuard::Mutex(g) => g,
            // SAFETY: as in `deref`; `&mut self` makes this the only reference from this guard.
            LockGuard::Tas(_, p) => unsafe { p.as_ref().expect("held").deref() },
        }
    }
}

#[cfg(loom)]
impl<T> Drop for LockGuard<'_, T> {
    fn drop(&mut self) {
        if let LockGuard::Tas(locked, p) = self {
            // The access ends before the next holder's can begin.
            drop(p.take());
            locked.store(false, Ordering::Release);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::Lock;
    use crate::config::LockKind;
    use std::sync::Arc;

    /// Mutual exclusion under contention (more threads than cores), for both kinds: a
    /// non-atomic read-modify-write under the lock loses no update.
    #[test]
    fn spin_lock_excludes() {
        for kind in [LockKind::Backoff, LockKind::Tas] {
            excludes(kind);
        }
    }

    fn excludes(kind: LockKind) {
        let lock = Arc::new(Lock::new(0u64, kind));
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
        for kind in [LockKind::Backoff, LockKind::Tas] {
            let lock = Lock::new((), kind);
            let g = lock.lock();
            assert!(lock.0.try_lock().is_none());
            drop(g);
            assert!(lock.0.try_lock().is_some());
        }
    }

    /// The kind is the one asked for: a test-and-set waiter spins on the read-modify-write (it never waits
    /// on a plain load), ours on loads with backoff.
    #[test]
    fn the_lock_is_of_the_kind_asked_for() {
        let tas = |kind| {
            let lock = Lock::new((), kind);
            // SAFETY: the raw lock is only read, never locked or unlocked through this reference.
            let tas = unsafe { lock.0.raw() }.tas;
            tas
        };
        assert!(tas(LockKind::Tas));
        assert!(!tas(LockKind::Backoff));
    }

    /// A test-and-set waiter takes the lock as soon as the holder releases it.
    #[test]
    fn a_tas_waiter_gets_the_lock_on_release() {
        let lock = Arc::new(Lock::new(0u32, LockKind::Tas));
        let g = lock.lock();
        let waiter = {
            let lock = lock.clone();
            std::thread::spawn(move || {
                let mut g = lock.lock();
                *g += 1;
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!waiter.is_finished(), "the waiter got a held lock");
        drop(g);
        waiter.join().unwrap();
        assert_eq!(*lock.lock(), 1);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::Lock;
    use crate::config::LockKind;

    /// The test-and-set lock excludes: two threads' read-modify-writes of the guarded value
    /// never overlap (loom checks every access against the lock's orderings) and lose nothing.
    #[test]
    fn tas_lock_excludes() {
        // A spin lock needs a preemption bound, as the runtime's models have (`tests/loom.rs`).
        let mut b = loom::model::Builder::new();
        b.preemption_bound.get_or_insert(3);
        b.check(|| {
            let lock = loom::sync::Arc::new(Lock::new(0u32, LockKind::Tas));
            let t = {
                let lock = lock.clone();
                loom::thread::spawn(move || *lock.lock() += 1)
            };
            *lock.lock() += 1;
            t.join().unwrap();
            assert_eq!(*lock.lock(), 2);
        });
    }
}
