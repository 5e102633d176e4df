//! Mely's queue: one color-queue (FIFO) per color slot present on the core, chained in a doubly
//! linked core-queue; the owner runs up to `batch` events of the head color-queue, then moves on
//! to the next (the head goes to the tail if it still has events). Empty color-queues leave the
//! core-queue. Stealing moves a whole color-queue in O(1).
//!
//! With a time-left policy the core also keeps a *stealing-queue*: the color-queues whose queued
//! processing time (raw, or divided by the handlers' penalties) exceeds the current steal cost
//! estimate, in three intervals (`[T, 4T)`, `[4T, 16T)`, `[16T, ∞)`), unordered within an
//! interval. A thief takes the best worthy color-queue (from the highest non-empty interval), as
//! the paper does ([`StealAmount::One`]); or, our variant ([`StealAmount::Half`]), worthy
//! color-queues from the highest interval down until it holds half of the victim's queued time or
//! [`MAX_STEAL_COLORS`] color-queues (see `steal` for why).
//!
//! Invariants: `index[slot]` names the color-queue of `slot` on this core, or `NIL` when the
//! core holds no event of that slot; a color-queue is in the core-queue iff it has events. It is
//! in interval `k` of the stealing-queue iff `interval == k`; then `steal_q[k]` lists it.
//!
//! The stealing-queue is kept lazily: leaving an interval only rewrites `interval`, and the
//! stale entry stays in `steal_q[k]` until a thief's scan drops it. Bit `k` of `listed` says
//! whether `steal_q[k]` holds an entry for the color-queue (valid or stale), so an entry is never
//! listed twice and each list stays within the slab's size. (Removing eagerly, a swap-remove and
//! a fix-up of the moved entry on every pop, was the largest cost time-left stealing added to a
//! web server's requests, where most color-queues are worthy and hold one event.)

use super::{Design, QueueParams, Running, StealChoice, Stolen};
use crate::color::MAP_SLOTS;
use crate::config::StealAmount;
use crate::event::{Event, FLAG_STOLEN};
use std::collections::VecDeque;
use std::{mem, ptr};

const NIL: u32 = u32::MAX;
/// Most colors one time-left steal takes with [`StealAmount::Half`] (bounds how long the
/// victim's lock is held).
pub(crate) const MAX_STEAL_COLORS: usize = 32;
const NO_INTERVAL: u8 = u8::MAX;
const INTERVALS: usize = 3;

/// A color-queue's events, oldest first: `first` (if any), then `rest`.
///
/// The oldest event lives inline in the color-queue's slab entry. Most color-queues hold one event
/// at a time (a color's next event is usually posted by the one that runs), so most events never
/// touch a separate buffer: the slab's entries are reused and stay warm, where a ring per color put
/// every event on its own cold cache line (perf: the first load of each popped event dominated
/// Mely's pop with 50 000 colors).
#[derive(Default)]
struct Fifo {
    first: Option<Event>,
    rest: VecDeque<Event>,
}

impl Fifo {
    #[inline]
    fn len(&self) -> usize {
        self.first.is_some() as usize + self.rest.len()
    }

    #[inline]
    fn is_empty(&self) -> bool {
        self.first.is_none() && self.rest.is_empty()
    }

    #[inline]
    fn push_back(&mut self, ev: Event) {
        if self.is_empty() {
            self.first = Some(ev);
        } else {
            self.rest.push_back(ev);
        }
    }

    /// Move the `n` oldest events (`n <= len`) to the end of `out`, in order.
    #[inline]
    fn pop_into(&mut self, mut n: usize, out: &mut Vec<Event>) {
        if n > 0 {
            if let Some(ev) = self.first.as_ref() {
                out.reserve(1);
                let len = out.len();
                // SAFETY: `out` has room at `len` (reserved); the event's bytes are copied there and
                // `first` is overwritten with `None` without dropping the original, so the event has
                // exactly one owner, `out`, once `set_len` runs. (A move through `Option::take`
                // went through a stack temporary that the processor could not store-forward.)
                unsafe {
                    ptr::copy_nonoverlapping(ev as *const Event, out.as_mut_ptr().add(len), 1);
                    ptr::write(&mut self.first, None);
                    out.set_len(len + 1);
                }
                n -= 1;
            }
        }
        if n > 0 {
            super::move_front(&mut self.rest, n, out);
        }
    }
}

/// Aligned to a cache line, so every slab entry spans the same two lines whatever order the
/// compiler gives its fields. Unaligned (120 bytes), a `u8` in place of a `u32` field measured
/// 20% slower on `penalty` (base and penalty policies, paired runs against the previous build);
/// aligned, it measured level with it, and `dispatch` and `unbalanced` did not move.
#[repr(align(64))]
struct ColorQueue {
    slot: u32,
    events: Fifo,
    prev: u32,
    next: u32,
    /// Queued processing time (raw or penalty-weighted, per the policy), cycles.
    time: u64,
    interval: u8,
    /// Bit `k`: `steal_q[k]` lists this entry (maybe stale).
    listed: u8,
    /// The first `stolen` events arrived by a steal.
    stolen: u32,
}

pub(crate) struct MelyQueue {
    /// Slab of color-queues; an entry freed by a pop keeps its ring's capacity (one that was moved
    /// away by a steal or placement gave its ring to the other core). Entries at and above
    /// `fresh` are free and not on `free`; below it, an entry is free iff it is on `free`.
    cqs: Vec<ColorQueue>,
    free: Vec<u32>,
    fresh: u32,
    index: Box<[u32]>,
    head: u32,
    tail: u32,
    /// Color-queues in the core-queue.
    ncq: usize,
    len: usize,
    steal_q: [Vec<u32>; INTERVALS],
    /// Estimated time of the batch last popped (time-left policies): how long the owner stays
    /// busy with its running color.
    running_time: u64,
    /// Sum of the queued color-queues' `time` (time-left policies).
    total_time: u64,
}

impl MelyQueue {
    fn alloc(&mut self, slot: usize) -> u32 {
        let i = match self.free.pop() {
            Some(i) => i,
            None if (self.fresh as usize) < self.cqs.len() => {
                self.fresh += 1;
                self.fresh - 1
            }
            None => {
                self.fresh += 1;
                self.cqs.push(ColorQueue {
                    slot: 0,
                    events: Fifo::default(),
                    prev: NIL,
                    next: NIL,
                    time: 0,
                    interval: NO_INTERVAL,
                    listed: 0,
                    stolen: 0,
                });
                (self.cqs.len() - 1) as u32
            }
        };
        let cq = &mut self.cqs[i as usize];
        cq.slot = slot as u32;
        cq.time = 0;
        cq.stolen = 0;
        debug_assert!(cq.events.is_empty() && cq.interval == NO_INTERVAL);
        self.index[slot] = i;
        self.link_tail(i);
        i
    }

    fn release(&mut self, i: u32) {
        self.unlink(i);
        self.cqs[i as usize].interval = NO_INTERVAL;
        let slot = self.cqs[i as usize].slot as usize;
        self.index[slot] = NIL;
        if self.ncq == 0 {
            self.total_time = 0;
            // Every entry is free: hand them out in address order again. A LIFO free list alone
            // scrambles the slab over time (steals release entries out of order, each round
            // allocates in reverse release order), and with tens of thousands of colors every
            // push then missed the cache on a random entry (`unbalanced` under time-left:
            // 250 instead of 60 cycles per push).
            self.free.clear();
            self.fresh = 0;
        } else {
            self.free.push(i);
        }
    }

    fn link_tail(&mut self, i: u32) {
        let t = self.tail;
        {
            let cq = &mut self.cqs[i as usize];
            cq.prev = t;
            cq.next = NIL;
        }
        if t == NIL {
            self.head = i;
        } else {
            self.cqs[t as usize].next = i;
        }
        self.tail = i;
        self.ncq += 1;
    }

    fn unlink(&mut self, i: u32) {
        let (p, n) = {
            let cq = &self.cqs[i as usize];
            (cq.prev, cq.next)
        };
        if p == NIL {
            self.head = n;
        } else {
            self.cqs[p as usize].next = n;
        }
        if n == NIL {
            self.tail = p;
        } else {
            self.cqs[n as usize].prev = p;
        }
        self.ncq -= 1;
    }

    /// Put color-queue `i` in interval `iv` (or none): O(1), lazily (see the module doc).
    #[inline]
    fn set_interval(&mut self, i: u32, iv: u8) {
        let cq = &mut self.cqs[i as usize];
        cq.interval = iv;
        if iv != NO_INTERVAL && cq.listed & (1 << iv) == 0 {
            cq.listed |= 1 << iv;
            self.steal_q[iv as usize].push(i);
        }
    }

    /// Drop the stale entries of interval `iv` (color-queues that left it).
    fn prune(&mut self, iv: usize) {
        let cqs = &mut self.cqs;
        self.steal_q[iv].retain(|&i| {
            let cq = &mut cqs[i as usize];
            let keep = cq.interval as usize == iv;
            if !keep {
                cq.listed &= !(1 << iv);
            }
            keep
        });
    }

    fn interval_for(time: u64, threshold: u64) -> u8 {
        let t = threshold.max(1);
        if time <= t {
            NO_INTERVAL
        } else if time < 4 * t {
            0
        } else if time < 16 * t {
            1
        } else {
            2
        }
    }

    /// Re-files color-queue `i` in the stealing-queue; true if it became worthy.
    fn classify(&mut self, i: u32, p: &QueueParams) -> bool {
        let cq = &self.cqs[i as usize];
        let was = cq.interval;
        let iv = Self::interval_for(cq.time, p.threshold);
        self.set_interval(i, iv);
        was == NO_INTERVAL && iv != NO_INTERVAL
    }

    #[inline]
    fn weight(ev: &Event, p: &QueueParams) -> u64 {
        if p.weighted {
            ev.wcost() as u64
        } else {
            ev.cost() as u64
        }
    }

    /// Append a color-queue's events to this core (the slot must not be here yet).
    fn adopt(&mut self, slot: usize, mut events: Fifo, time: u64, stolen: u32, p: &QueueParams) {
        debug_assert_eq!(self.index[slot], NIL);
        let n = events.len();
        let i = self.alloc(slot);
        let cq = &mut self.cqs[i as usize];
        // O(1): the moved queue's buffer becomes this entry's; the entry's old, empty buffer is
        // dropped below.
        mem::swap(&mut cq.events, &mut events);
        cq.time = time;
        cq.stolen = stolen;
        self.len += n;
        self.total_time += time;
        if p.time_left {
            self.classify(i, p);
        }
        debug_assert!(events.is_empty());
    }

    /// Detach color-queue `i`: returns its events and time; the entry goes back to the slab.
    fn detach(&mut self, i: u32) -> (Fifo, u64) {
        let cq = &mut self.cqs[i as usize];
        let events = mem::take(&mut cq.events);
        let time = cq.time;
        cq.time = 0;
        self.len -= events.len();
        self.total_time = self.total_time.saturating_sub(time);
        self.release(i);
        (events, time)
    }

    /// Move color-queue `i` of `from` to `to`, with its queued time. With `steal`, all its events
    /// are marked stolen; otherwise (placement) the marks it had carry over. Returns its slot and
    /// how many events moved.
    fn transfer(
        from: &mut Self,
        to: &mut Self,
        i: u32,
        steal: bool,
        p: &QueueParams,
    ) -> (usize, usize) {
        let slot = from.cqs[i as usize].slot as usize;
        let carried = from.cqs[i as usize].stolen;
        let (events, time) = from.detach(i);
        let n = events.len();
        to.adopt(
            slot,
            events,
            time,
            if steal { n as u32 } else { carried },
            p,
        );
        (slot, n)
    }

    /// Steal color-queue `i` of `victim` for `thief` and remap its slot; returns how many events
    /// moved.
    fn take(
        victim: &mut Self,
        thief: &mut Self,
        i: u32,
        p: &QueueParams,
        remap: &mut dyn FnMut(usize),
    ) -> usize {
        let (slot, n) = Self::transfer(victim, thief, i, true, p);
        remap(slot);
        n
    }

    /// Pop up to `batch` events of the head color-queue into `out` (one Mely batch); their
    /// slot and queued time, or `None` when the queue is empty.
    #[inline]
    fn pop_color(
        &mut self,
        out: &mut Vec<Event>,
        batch: usize,
        p: &QueueParams,
    ) -> Option<(usize, u64)> {
        let i = self.head;
        if i == NIL {
            return None;
        }
        let cq = &mut self.cqs[i as usize];
        let n = batch.min(cq.events.len());
        debug_assert!(n > 0, "a color-queue in the core-queue is never empty");
        let first = out.len();
        cq.events.pop_into(n, out);
        let popped = &mut out[first..];
        if cq.stolen > 0 {
            let k = (cq.stolen as usize).min(n);
            cq.stolen -= k as u32;
            for ev in &mut popped[..k] {
                ev.add_flags(FLAG_STOLEN);
            }
        }
        let mut w = 0;
        if p.time_left {
            w = popped.iter().map(|ev| Self::weight(ev, p)).sum();
            cq.time = cq.time.saturating_sub(w);
            self.total_time = self.total_time.saturating_sub(w);
        }
        let slot = cq.slot as usize;
        let empty = cq.events.is_empty();
        self.len -= n;
        if empty {
            self.cqs[i as usize].time = 0;
            self.release(i);
        } else {
            if self.ncq > 1 {
                self.unlink(i);
                self.link_tail(i);
            }
            if p.time_left {
                self.classify(i, p);
            }
        }
        Some((slot, w))
    }

    fn choose_base(&self, running: &Running) -> Option<u32> {
        // libasync-smp's choice over the core-queue: first color not running that owns at most
        // half of the queued events.
        let mut i = self.head;
        while i != NIL {
            let cq = &self.cqs[i as usize];
            if !running.contains(cq.slot as usize) && cq.events.len() * 2 <= self.len {
                return Some(i);
            }
            i = cq.next;
        }
        None
    }

    fn choose_time_left(&self, running: &Running, p: &QueueParams) -> Option<u32> {
        // With one color to offer, a steal only helps if the victim is busy for longer than the
        // steal takes; otherwise the victim gets to that color first and the steal just moves it
        // away from its cache. (The fork/join benchmarks showed it: the last event of a round
        // posts the next fork, the thief took it while the victim finished a 100-cycle event,
        // and the fork then posted 50 000 events across cores.) This extends time-left's
        // "worthy" test to the victim's running batch; libasync-smp's "at least two colors"
        // plays the same role for `base`.
        let running_queued = running.iter().filter(|&s| self.index[s] != NIL).count();
        let offered = self.ncq - running_queued;
        if offered < 2 && (running.is_empty() || self.running_time <= p.threshold) {
            return None;
        }
        for iv in (0..INTERVALS).rev() {
            for &i in &self.steal_q[iv] {
                let cq = &self.cqs[i as usize];
                // Stale entries (see the module doc) are skipped.
                if cq.interval as usize == iv
                    && !running.contains(cq.slot as usize)
                    && cq.time > p.threshold
                {
                    return Some(i);
                }
            }
        }
        None
    }
}

impl Design for MelyQueue {
    fn new() -> Self {
        MelyQueue {
            cqs: Vec::with_capacity(256),
            free: Vec::new(),
            fresh: 0,
            index: vec![NIL; MAP_SLOTS].into_boxed_slice(),
            head: NIL,
            tail: NIL,
            ncq: 0,
            len: 0,
            steal_q: Default::default(),
            running_time: 0,
            total_time: 0,
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn push(&mut self, ev: Event, p: &QueueParams) -> bool {
        let slot = ev.color().slot();
        let mut i = self.index[slot];
        if i == NIL {
            i = self.alloc(slot);
        }
        let cq = &mut self.cqs[i as usize];
        if p.time_left {
            let w = Self::weight(&ev, p);
            cq.time += w;
            self.total_time += w;
        }
        cq.events.push_back(ev);
        self.len += 1;
        if p.time_left {
            self.classify(i, p)
        } else {
            self.ncq >= 2
        }
    }

    #[inline]
    /// Batches of up to `batch` events of the head color-queue, then of the next ones, until
    /// `batch` events or [`MAX_RUNNING`](super::MAX_RUNNING) colors are out: the events
    /// sequential pops would give, in the same order, for one lock. (With 64 colors of one
    /// event each, a lock per event was the largest cost of a local post and run.)
    fn pop(
        &mut self,
        out: &mut Vec<Event>,
        batch: usize,
        p: &QueueParams,
        running: &mut Running,
    ) -> bool {
        let first = out.len();
        let mut time = 0;
        while out.len() - first < batch && !running.is_full() {
            match self.pop_color(out, batch, p) {
                Some((slot, w)) => {
                    running.push(slot);
                    time += w;
                }
                None => break,
            }
        }
        self.running_time = time;
        !running.is_empty()
    }

    const TIME_LEFT: bool = true;

    const PEEKS_LENGTH: bool = true;

    /// `Base`: libasync-smp's choice, one color. `TimeLeft(One)`: the best worthy color, the
    /// paper's. `TimeLeft(Half)`: worthy colors, best interval first, until the thief holds half
    /// of the victim's queued time (or [`MAX_STEAL_COLORS`]). One worthy color at a time left a
    /// lone thief behind: it runs the color it took while the victim reaches the next long
    /// colors itself (`unbalanced`, 2 workers: the victim ran a quarter of the long events while
    /// the thief idled a quarter of the time).
    fn steal(
        victim: &mut Self,
        thief: &mut Self,
        running: &Running,
        choice: StealChoice,
        p: &QueueParams,
        remap: &mut dyn FnMut(usize),
    ) -> Option<Stolen> {
        let max_colors = match choice {
            StealChoice::Base => {
                let i = victim.choose_base(running)?;
                let events = Self::take(victim, thief, i, p, remap);
                return Some(Stolen {
                    colors: 1,
                    events,
                    nodes: 1,
                });
            }
            StealChoice::TimeLeft(StealAmount::One) => 1,
            StealChoice::TimeLeft(StealAmount::Half) => MAX_STEAL_COLORS,
        };
        for iv in 0..INTERVALS {
            victim.prune(iv);
        }
        let goal = victim.total_time / 2;
        let (mut got, mut time) = (Stolen::default(), 0);
        while got.colors < max_colors && (got.colors == 0 || time < goal) {
            let Some(i) = victim.choose_time_left(running, p) else {
                break;
            };
            time += victim.cqs[i as usize].time;
            got.events += Self::take(victim, thief, i, p, remap);
            got.colors += 1;
        }
        got.nodes = got.colors;
        (got.colors > 0).then_some(got)
    }

    fn move_slot(from: &mut Self, to: &mut Self, slot: usize, p: &QueueParams) -> usize {
        let i = from.index[slot];
        if i == NIL {
            return 0;
        }
        Self::transfer(from, to, i, false, p).1
    }

    fn clear(&mut self) -> usize {
        let n = self.len;
        while self.head != NIL {
            let (ev, _) = self.detach(self.head);
            drop(ev);
        }
        n
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::color::Color;
    use crate::event::Task;
    use crate::queue::{Running, NOT_RUNNING};

    fn ev(color: u32, cost: u32) -> Event {
        Event::new(0, Color(color), cost, cost, Task::detached(|| {}, false))
    }

    impl MelyQueue {
        /// One Mely batch of the head color-queue, as a pop of one color would take it: its
        /// slot.
        fn pop_one(
            &mut self,
            out: &mut Vec<Event>,
            batch: usize,
            p: &QueueParams,
        ) -> Option<usize> {
            let (slot, w) = self.pop_color(out, batch, p)?;
            self.running_time = w;
            Some(slot)
        }
    }

    const P: QueueParams = QueueParams {
        time_left: true,
        weighted: false,
        threshold: 1_000,
        walk: crate::config::StealWalk::FromChoice,
    };

    /// Once a core's queue empties, color-queues are handed out from the start of the slab again,
    /// in address order.
    #[test]
    fn slab_restarts_in_address_order_when_empty() {
        let mut q = MelyQueue::new();
        let mut out = Vec::new();
        for c in 1..=100 {
            q.push(ev(c, 1), &P);
        }
        // Pop half, push more colors: freed entries are reused while the queue is not empty.
        for _ in 0..50 {
            q.pop_one(&mut out, 10, &P).unwrap();
        }
        for c in 101..=150 {
            q.push(ev(c, 1), &P);
        }
        assert_eq!(
            q.cqs.len(),
            100,
            "freed entries are reused before the slab grows"
        );
        while q.pop_one(&mut out, 10, &P).is_some() {}
        assert_eq!(q.len(), 0);
        for c in 1_000..1_100 {
            q.push(ev(c, 1), &P);
        }
        let entries: Vec<u32> = (1_000..1_100).map(|c| q.index[c]).collect();
        assert_eq!(entries, (0..100).collect::<Vec<u32>>());
    }

    /// Random pushes, pops and steals between two queues against a model: every event comes out
    /// once, in order per color, and no entry ever serves two colors.
    #[test]
    fn slab_reuse_keeps_colors_apart_under_random_ops() {
        use rand::{Rng, SeedableRng};
        // Time-left accounting on: an event's cost (its sequence number here) is its weight, so
        // colors become worthy as the run goes on and both steal choices get exercised.
        const Q: QueueParams = QueueParams {
            time_left: true,
            weighted: false,
            threshold: 10,
            walk: crate::config::StealWalk::FromChoice,
        };
        let mut multi = 0;
        for seed in 0..20u64 {
            let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
            let mut qs = [MelyQueue::new(), MelyQueue::new()];
            let mut next = [0u32; 64];
            let mut expect = [0u32; 64];
            // The slot each queue's owner popped last, taken as still running half the time
            // when the queue is stolen from.
            let mut last = [Running::NONE; 2];
            let mut out = Vec::new();
            for _ in 0..5_000 {
                let k = rng.gen_range(0..2);
                match rng.gen_range(0..10) {
                    0..=4 => {
                        // Push to the queue that holds the color, if any (the map's job).
                        let c = rng.gen_range(1..64usize);
                        let k = if qs[0].index[c] != NIL {
                            0
                        } else if qs[1].index[c] != NIL {
                            1
                        } else {
                            k
                        };
                        qs[k].push(ev(c as u32, next[c]), &Q);
                        next[c] += 1;
                    }
                    5..=8 => {
                        out.clear();
                        let mut running = Running::NONE;
                        if qs[k].pop(&mut out, rng.gen_range(1..6), &Q, &mut running) {
                            last[k] = running;
                            for e in out.drain(..) {
                                let c = e.color().0 as usize;
                                assert_eq!(
                                    e.cost(),
                                    expect[c],
                                    "seed {seed}: color {c} out of order"
                                );
                                expect[c] += 1;
                            }
                        }
                    }
                    _ => {
                        let (a, b) = qs.split_at_mut(1);
                        let (v, t) = if k == 0 {
                            (&mut a[0], &mut b[0])
                        } else {
                            (&mut b[0], &mut a[0])
                        };
                        let choice = match rng.gen_range(0..3) {
                            0 => StealChoice::Base,
                            1 => StealChoice::TimeLeft(StealAmount::One),
                            _ => StealChoice::TimeLeft(StealAmount::Half),
                        };
                        let running = if rng.gen_bool(0.5) {
                            last[k]
                        } else {
                            Running::NONE
                        };
                        let stolen = MelyQueue::steal(v, t, &running, choice, &Q, &mut |slot| {
                            assert!(!running.contains(slot), "seed {seed}: took a running color")
                        });
                        if let Some(s) = stolen {
                            multi += (s.colors > 1) as usize;
                        }
                    }
                }
                for q in &qs {
                    let mut used: Vec<u32> = q.index[..64]
                        .iter()
                        .copied()
                        .filter(|&i| i != NIL)
                        .collect();
                    let n = used.len();
                    used.sort_unstable();
                    used.dedup();
                    assert_eq!(used.len(), n, "seed {seed}: an entry serves two colors");
                    assert_eq!(n, q.ncq);
                    assert!(used.iter().all(|i| !q.free.contains(i) && *i < q.fresh));
                    // The lazy stealing-queue: every color-queue in an interval is listed there;
                    // a list names an entry at most once, and exactly the entries whose bit is set.
                    for (k, list) in q.steal_q.iter().enumerate() {
                        let mut l = list.clone();
                        l.sort_unstable();
                        l.dedup();
                        assert_eq!(l.len(), list.len(), "seed {seed}: listed twice");
                        for (i, cq) in q.cqs.iter().enumerate() {
                            let listed = l.binary_search(&(i as u32)).is_ok();
                            assert_eq!(listed, cq.listed & (1 << k) != 0, "seed {seed}");
                            if cq.interval as usize == k {
                                assert!(listed, "seed {seed}: worthy but not listed");
                                assert!(
                                    used.contains(&(i as u32)),
                                    "seed {seed}: free entry filed"
                                );
                            }
                        }
                    }
                }
            }
            // Drain: every event posted comes out, once, in order per color.
            for q in &mut qs {
                out.clear();
                while q.pop(&mut out, 10, &Q, &mut Running::NONE.clone()) {}
                for e in out.drain(..) {
                    let c = e.color().0 as usize;
                    assert_eq!(e.cost(), expect[c], "seed {seed}: color {c} out of order");
                    expect[c] += 1;
                }
                assert_eq!((q.len(), q.ncq), (0, 0), "seed {seed}: drained");
            }
            assert_eq!(next, expect, "seed {seed}: every event came out once");
        }
        assert!(multi > 0, "no steal took several colors");
    }

    /// A time-left steal of `amount` through the trait, collecting the slots it remaps.
    fn steal_amount(
        victim: &mut MelyQueue,
        thief: &mut MelyQueue,
        running: u32,
        amount: StealAmount,
    ) -> Option<Vec<usize>> {
        let mut slots = Vec::new();
        let choice = StealChoice::TimeLeft(amount);
        let s = MelyQueue::steal(
            victim,
            thief,
            &Running::one(running),
            choice,
            &P,
            &mut |slot| slots.push(slot),
        )?;
        assert_eq!(s.colors, slots.len());
        Some(slots)
    }

    /// Our multi-color time-left steal.
    fn steal(victim: &mut MelyQueue, thief: &mut MelyQueue, running: u32) -> Option<Vec<usize>> {
        steal_amount(victim, thief, running, StealAmount::Half)
    }

    /// The paper's time-left steal takes one color, from the highest non-empty interval, and
    /// leaves the rest; short colors never go.
    #[test]
    fn paper_time_left_takes_the_best_color_only() {
        let mut victim = MelyQueue::new();
        let mut thief = MelyQueue::new();
        // Thresholds 1 000: color 1 in [T, 4T), color 2 in [16T, inf), color 3 in [4T, 16T).
        victim.push(ev(1, 2_000), &P);
        victim.push(ev(2, 50_000), &P);
        victim.push(ev(3, 5_000), &P);
        victim.push(ev(4, 10), &P);
        let one = |v: &mut MelyQueue, t: &mut MelyQueue| {
            steal_amount(v, t, NOT_RUNNING, StealAmount::One)
        };
        assert_eq!(one(&mut victim, &mut thief), Some(vec![2]));
        assert_eq!(one(&mut victim, &mut thief), Some(vec![3]));
        // Color 1 is the only worthy one left, beside a short one: still worth a steal (two
        // colors queued), then nothing is.
        assert_eq!(one(&mut victim, &mut thief), Some(vec![1]));
        assert_eq!(one(&mut victim, &mut thief), None);
        assert_eq!((victim.len(), thief.len()), (1, 3));
    }

    /// Time-left stealing takes a victim's only color only while the victim is busy for longer
    /// than a steal; worthy colors go when there are two; short colors never do.
    #[test]
    fn time_left_takes_a_lone_color_only_from_a_busy_victim() {
        let mut thief = MelyQueue::new();

        // Idle victim with one worthy color: leave it.
        let mut victim = MelyQueue::new();
        victim.push(ev(1, 50_000), &P);
        assert!(steal(&mut victim, &mut thief, NOT_RUNNING).is_none());

        // The victim pops and runs a short event of color 2: still leave color 1.
        victim.push(ev(2, 100), &P);
        let mut out = Vec::new();
        // Pop color 1 first (FIFO of color-queues), push it back so 2 runs next.
        assert_eq!(victim.pop_one(&mut out, 10, &P), Some(1));
        victim.push(out.pop().unwrap(), &P);
        assert_eq!(victim.pop_one(&mut out, 10, &P), Some(2));
        assert!(steal(&mut victim, &mut thief, 2).is_none());

        // Running a long batch of color 3: now color 1 is worth taking.
        victim.push(ev(3, 40_000), &P);
        let mut out = Vec::new();
        // Color 1 is at the head; rotate it behind color 3.
        assert_eq!(victim.pop_one(&mut out, 10, &P), Some(1));
        victim.push(out.pop().unwrap(), &P);
        assert_eq!(victim.pop_one(&mut out, 10, &P), Some(3));
        assert_eq!(steal(&mut victim, &mut thief, 3), Some(vec![1]));
        assert_eq!(thief.len(), 1);

        // Two worthy colors and a short one on an idle victim: both worthy ones go (together they
        // are the victim's queued time), the short one stays.
        let mut victim = MelyQueue::new();
        victim.push(ev(4, 50_000), &P);
        victim.push(ev(5, 50_000), &P);
        victim.push(ev(6, 10), &P);
        let mut got = steal(&mut victim, &mut thief, NOT_RUNNING).expect("stolen");
        got.sort_unstable();
        assert_eq!(got, vec![4, 5]);
        assert!(steal(&mut victim, &mut thief, NOT_RUNNING).is_none());
        assert_eq!(victim.len(), 1);
    }

    /// A time-left steal takes worthy colors until the thief holds half of the victim's queued
    /// time, and never more than `MAX_STEAL_COLORS`; the thief's queue then holds exactly them.
    #[test]
    fn time_left_steals_half_the_queued_time() {
        let mut victim = MelyQueue::new();
        let mut thief = MelyQueue::new();
        for c in 1..=40 {
            victim.push(ev(c, 10_000), &P);
            victim.push(ev(1_000 + c, 100), &P);
        }
        // Queued: 400 000 cycles worthy + 4 000 short; half is 202 000: 21 colors of 10 000.
        let got = steal(&mut victim, &mut thief, NOT_RUNNING).expect("stolen");
        assert_eq!(got.len(), 21);
        assert!(
            got.iter().all(|&s| (1..=40).contains(&s)),
            "only worthy colors: {got:?}"
        );
        assert_eq!(thief.len(), 21);
        assert_eq!(victim.len(), 80 - 21);
        for &s in &got {
            assert_eq!(victim.index[s], NIL);
            assert_ne!(thief.index[s], NIL);
        }

        let mut victim = MelyQueue::new();
        for c in 1..=100 {
            victim.push(ev(c, 10_000), &P);
        }
        let got = steal(&mut victim, &mut MelyQueue::new(), NOT_RUNNING).expect("stolen");
        assert_eq!(got.len(), MAX_STEAL_COLORS);
    }
}
