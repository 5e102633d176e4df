//! Colors and the color-to-core map.
//!
//! Invariants:
//! - Events of one color never run at the same time, and events of one color posted by one
//!   thread run in the order posted.
//! - The map has [`MAP_SLOTS`] entries indexed by `color % MAP_SLOTS`; colors that share a slot
//!   share everything (core, queue, exclusion). The runtime's unit of exclusion is therefore the
//!   *slot*: it guarantees the color invariant for every color and may serialise two colors that
//!   collide modulo 65 536 (documented, conservative).
//! - A slot's entry only changes while the lock of the core it names is held (and, for a steal or
//!   a placement, the lock of the core it will name). A poster reads the entry, locks that core,
//!   and re-reads the entry before enqueueing; if it changed, it retries. So an event can never be
//!   enqueued on a core that does not own its slot.

use crate::loom::{AtomicU16, Ordering};
use std::fmt;

/// Number of entries in the color-to-core map (64 Ki, as in libasync-smp and Mely); a power of
/// two.
#[cfg(not(loom))]
pub const MAP_SLOTS: usize = 1 << 16;
/// Under loom the map shrinks so models stay small (as tokio shrinks its queues).
#[cfg(loom)]
pub const MAP_SLOTS: usize = 16;

/// The color of an event: events of one color run serially, others may run in parallel.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, serde::Serialize)]
pub struct Color(pub u32);

impl Color {
    /// The default color: everything not given another color is serialised on it.
    pub const DEFAULT: Color = Color(0);

    /// The map slot this color belongs to.
    #[inline]
    pub fn slot(self) -> usize {
        (self.0 as usize) & (MAP_SLOTS - 1)
    }
}

impl fmt::Display for Color {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The shared color-to-core map: one `AtomicU16` core index per slot.
pub(crate) struct ColorMap {
    cores: Box<[AtomicU16]>,
}

impl ColorMap {
    /// Every slot starts on `slot % workers`, libasync-smp's initial distribution.
    pub(crate) fn new(workers: usize) -> Self {
        assert!(workers > 0 && workers <= u16::MAX as usize);
        let cores = (0..MAP_SLOTS)
            .map(|s| AtomicU16::new((s % workers) as u16))
            .collect();
        ColorMap { cores }
    }

    #[inline]
    pub(crate) fn get(&self, slot: usize) -> usize {
        // MAP_SLOTS is a power of two: a mask, not a division, on the post path.
        self.cores[slot & (MAP_SLOTS - 1)].load(Ordering::Acquire) as usize
    }

    /// Caller holds the lock of the core currently named by the entry and of `core`.
    #[inline]
    pub(crate) fn set(&self, slot: usize, core: usize) {
        self.cores[slot & (MAP_SLOTS - 1)].store(core as u16, Ordering::Release);
    }
}
