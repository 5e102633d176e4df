//! Timers: a deadline-ordered heap of ready-made events, drained by the reactor's Epoll event.
//! Any thread may add a timer; adding one earlier than the poller's sleep wakes it. At shutdown
//! the heap is closed: the pending timers' events are dropped (their closures' destructors run)
//! and counted by the caller, and a timer added afterwards is refused.

use crate::event::Event;
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Mutex;
use std::time::Instant;

/// A pending timer.
struct Entry {
    /// When its event is due.
    deadline: Instant,
    /// Order of addition (FIFO among equal deadlines).
    seq: u64,
    /// The event to post.
    ev: Event,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        self.deadline == o.deadline && self.seq == o.seq
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    // Reversed: the heap's top is the earliest deadline, FIFO among equal deadlines.
    fn cmp(&self, o: &Self) -> Ordering {
        o.deadline.cmp(&self.deadline).then(o.seq.cmp(&self.seq))
    }
}

/// The pending timers of one runtime.
pub(crate) struct Timers {
    /// The pending timers, earliest at the top.
    heap: Mutex<Heap>,
}

/// What the timers' lock protects.
struct Heap {
    /// Pending timers.
    entries: BinaryHeap<Entry>,
    /// The next entry's `seq`.
    next_seq: u64,
    /// Closed at shutdown: no timer is added any more.
    closed: bool,
}

impl Timers {
    /// No timers.
    pub(crate) fn new() -> Self {
        Timers {
            heap: Mutex::new(Heap {
                entries: BinaryHeap::new(),
                next_seq: 0,
                closed: false,
            }),
        }
    }

    /// Add `ev`, due at `deadline`; `Err(ev)` once the timers are closed.
    pub(crate) fn add(&self, deadline: Instant, ev: Event) -> Result<(), Event> {
        let mut g = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        if g.closed {
            return Err(ev);
        }
        let seq = g.next_seq;
        g.next_seq += 1;
        g.entries.push(Entry { deadline, seq, ev });
        Ok(())
    }

    /// The earliest pending deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entries
            .peek()
            .map(|e| e.deadline)
    }

    /// Remove and return every event due at `now`, earliest first.
    pub(crate) fn expired(&self, now: Instant) -> Vec<Event> {
        let mut g = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        while g.entries.peek().is_some_and(|e| e.deadline <= now) {
            out.push(g.entries.pop().expect("peeked").ev);
        }
        out
    }

    /// Close the timers (shutdown): drop every pending event, after the lock is released (a
    /// destructor may use the runtime), and return how many there were.
    pub(crate) fn close(&self) -> usize {
        let pending = {
            let mut g = self.heap.lock().unwrap_or_else(|e| e.into_inner());
            g.closed = true;
            std::mem::take(&mut g.entries)
        };
        let n = pending.len();
        drop(pending);
        n
    }
}
