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

/// The per-core queue lock. A short critical section guards each core's queue; a thread that
/// waits spins briefly and then sleeps (parking_lot), so oversubscribed workers do not burn a
/// whole time slice spinning on a preempted holder.
#[cfg(not(loom))]
pub(crate) struct Lock<T>(parking_lot::Mutex<T>);
#[cfg(not(loom))]
pub(crate) type LockGuard<'a, T> = parking_lot::MutexGuard<'a, T>;

#[cfg(not(loom))]
impl<T> Lock<T> {
    pub(crate) fn new(value: T) -> Self {
        Lock(parking_lot::Mutex::new(value))
    }
    #[inline]
    pub(crate) fn lock(&self) -> LockGuard<'_, T> {
        self.0.lock()
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
