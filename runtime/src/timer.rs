//! Timers: a deadline-ordered heap of ready-made events, drained by the reactor's Epoll event.
//! Any thread may add a timer; adding one earlier than the poller's sleep wakes it.

use crate::event::Event;
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Mutex;
use std::time::Instant;

struct Entry {
    deadline: Instant,
    seq: u64,
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

pub(crate) struct Timers {
    heap: Mutex<(BinaryHeap<Entry>, u64)>,
}

impl Timers {
    pub(crate) fn new() -> Self {
        Timers {
            heap: Mutex::new((BinaryHeap::new(), 0)),
        }
    }

    pub(crate) fn add(&self, deadline: Instant, ev: Event) {
        let mut g = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        let seq = g.1;
        g.1 += 1;
        g.0.push(Entry { deadline, seq, ev });
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .peek()
            .map(|e| e.deadline)
    }

    /// Remove and return every event due at `now`, earliest first.
    pub(crate) fn expired(&self, now: Instant) -> Vec<Event> {
        let mut g = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        while g.0.peek().is_some_and(|e| e.deadline <= now) {
            out.push(g.0.pop().expect("peeked").ev);
        }
        out
    }
}
