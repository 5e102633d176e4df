//! libasync-smp's queue: one list of callbacks per core, and a counter of pending events per
//! color slot.
//!
//! The list is libasync-smp's (its paper, section 4.3): `cpucb` callbacks (posted by code) go at
//! the tail of a first segment, I/O callbacks (readiness, timers, the reactor's own Epoll event)
//! at the tail of a second one after it, so callbacks a handler posts run before I/O that
//! arrived earlier. One exception keeps each color's events in posting order (the runtime's
//! guarantee): a `cpucb` of a color that already has an I/O callback queued goes behind it, in
//! the second segment. The scheduler looks at the first [`SCHED_WINDOW`] callbacks and runs the
//! first one of the color it ran last, if there is one, otherwise the first callback (the
//! paper's window size is lost from our copy of its text; the choice of 16 is ours). Taking the
//! first of its color keeps that color's order.
//!
//! Two bounds on that preference are ours, because without them one color can starve the rest
//! of its core: the reactor's Epoll event is never preferred (it re-posts itself after every
//! non-blocking poll, so preferring it would poll forever while a callback waits), and the head
//! is passed over at most [`SCHED_WINDOW`] times in a row (a callback that re-posts its own
//! color could otherwise run forever ahead of it). So the head of the list runs at least once
//! in every `SCHED_WINDOW + 1` pops. (I/O callbacks still wait behind every `cpucb` callback, as
//! in libasync-smp: a core that never runs out of `cpucb` work never reaches them.)
//!
//! Stealing is libasync-smp's as the Mely paper describes it (Figure 2 and its footnote 1):
//! `can_be_stolen` needs events of at least two colors; `choose_color_to_steal` scans from the
//! head for the first color that is not running and owns at most half of the queued events (the
//! paper says "less than half"; with two events of two colors that would forbid every steal, so
//! we read it as "not a majority"); `construct_event_set` walks on from that color's first event,
//! unlinking its events, and stops as soon as the color's pending count is reached; the set is
//! appended to the thief's list. The list is doubly linked over a slab, so removing an event
//! copies nothing else. With `StealWalk::FromHead` (the paper's), `construct_event_set` walks
//! again from the head, as Figure 2's separate function given only the color must; it still
//! stops at the pending count (the paper's footnote 1). A steal reports the nodes it read
//! (`Stolen::nodes`): the scan's, plus the walk's.
//!
//! Differences from Figure 2, deliberate: the steal holds the victim's and the thief's locks
//! together while it moves the set and remaps the color (libasync-smp's pseudo-code takes the
//! victim's alone), so that a post racing the remap either lands before the move (and moves
//! with the set) or follows the new map entry: a color's events stay in order and on one core
//! (see `color` and `core`).

use super::{Design, QueueParams, Running, StealChoice, Stolen};
use crate::color::MAP_SLOTS;
use crate::config::StealWalk;
use crate::event::{Event, FLAG_IO, FLAG_STOLEN};
use crate::handler::HandlerId;

/// How many callbacks from the head the scheduler examines for one of the color it ran last.
pub(crate) const SCHED_WINDOW: usize = 16;

const NIL: u32 = u32::MAX;

/// The two segments of the list, in order.
const CPUCB: usize = 0;
const IO: usize = 1;

/// A slab entry: a queued callback and its links, or a free entry.
struct Node {
    /// The callback (`None` while the entry is free).
    ev: Option<Event>,
    prev: u32,
    next: u32,
    /// The segment it is in (`CPUCB` or `IO`).
    seg: u8,
}

/// One segment: a doubly linked list of slab entries.
#[derive(Clone, Copy)]
struct Seg {
    head: u32,
    tail: u32,
}

/// Queued events of one slot.
#[derive(Clone, Copy, Default)]
struct Pending {
    /// In both segments.
    all: u32,
    /// In the I/O segment.
    io: u32,
}

pub(crate) struct LibasyncQueue {
    /// Entries; free ones are chained through their `next` from `free`.
    nodes: Vec<Node>,
    /// First free entry, or `NIL`.
    free: u32,
    /// `cpucb` callbacks, then I/O callbacks.
    segs: [Seg; 2],
    /// Queued events.
    len: usize,
    /// Queued events per slot.
    pending: Box<[Pending]>,
    /// Slots with at least one queued event.
    distinct: usize,
    /// Slot of the callback popped last (the scheduler's preference), or `NIL`.
    last: u32,
    /// Pops in a row that took a callback other than the head (at most [`SCHED_WINDOW`]).
    passed: u32,
}

impl LibasyncQueue {
    /// The entry after `i` in queue order (across the segment boundary), or `NIL`.
    #[inline]
    fn after(&self, i: u32) -> u32 {
        let n = &self.nodes[i as usize];
        if n.next != NIL {
            n.next
        } else if n.seg as usize == CPUCB {
            self.segs[IO].head
        } else {
            NIL
        }
    }

    /// The first entry in queue order, or `NIL`.
    #[inline]
    fn first(&self) -> u32 {
        if self.segs[CPUCB].head != NIL {
            self.segs[CPUCB].head
        } else {
            self.segs[IO].head
        }
    }

    #[inline]
    fn slot_of(&self, i: u32) -> usize {
        self.nodes[i as usize]
            .ev
            .as_ref()
            .expect("a linked entry holds an event")
            .color()
            .slot()
    }

    /// Append `ev` in its segment (see the module doc) and account it.
    #[inline(always)]
    fn link(&mut self, ev: Event) {
        let slot = ev.color().slot();
        let p = &mut self.pending[slot];
        let seg = if ev.flags() & FLAG_IO != 0 || p.io > 0 {
            p.io += 1;
            IO
        } else {
            CPUCB
        };
        if p.all == 0 {
            self.distinct += 1;
        }
        p.all += 1;
        self.len += 1;
        let tail = self.segs[seg].tail;
        let node = Node {
            ev: Some(ev),
            prev: tail,
            next: NIL,
            seg: seg as u8,
        };
        let i = if self.free != NIL {
            let i = self.free;
            let n = &mut self.nodes[i as usize];
            self.free = n.next;
            *n = node;
            i
        } else {
            self.nodes.push(node);
            (self.nodes.len() - 1) as u32
        };
        if tail == NIL {
            self.segs[seg].head = i;
        } else {
            self.nodes[tail as usize].next = i;
        }
        self.segs[seg].tail = i;
    }

    /// Unlink entry `i`, free it and return its event.
    #[inline(always)]
    fn unlink(&mut self, i: u32) -> Event {
        let (prev, next, seg) = {
            let n = &self.nodes[i as usize];
            (n.prev, n.next, n.seg as usize)
        };
        if prev == NIL {
            self.segs[seg].head = next;
        } else {
            self.nodes[prev as usize].next = next;
        }
        if next == NIL {
            self.segs[seg].tail = prev;
        } else {
            self.nodes[next as usize].prev = prev;
        }
        let ev = self.nodes[i as usize]
            .ev
            .take()
            .expect("a linked entry holds an event");
        self.nodes[i as usize].next = self.free;
        self.free = i;
        let p = &mut self.pending[ev.color().slot()];
        p.all -= 1;
        if seg == IO {
            p.io -= 1;
        }
        if p.all == 0 {
            self.distinct -= 1;
        }
        self.len -= 1;
        ev
    }

    /// `construct_event_set`: unlink every event of `slot`, walking on from entry `from` (its
    /// first, or any entry before it), and stop as soon as its pending count is reached.
    /// Returns them in order and how many entries the walk visited.
    fn take_slot(&mut self, slot: usize, from: u32, out: &mut Vec<Event>) -> usize {
        let mut want = self.pending[slot].all as usize;
        let (mut i, mut visited) = (from, 0);
        while want > 0 && i != NIL {
            visited += 1;
            let next = self.after(i);
            if self.slot_of(i) == slot {
                out.push(self.unlink(i));
                want -= 1;
            }
            i = next;
        }
        debug_assert_eq!(want, 0, "the pending count matches the list");
        visited
    }

    /// The first entry of `slot` in queue order, or `NIL`.
    fn first_of(&self, slot: usize) -> u32 {
        let mut i = self.first();
        while i != NIL && self.slot_of(i) != slot {
            i = self.after(i);
        }
        i
    }
}

impl Design for LibasyncQueue {
    /// One list keeps no per-color time: libasync-smp steals with its own choice only.
    const TIME_LEFT: bool = false;
    const PEEKS_LENGTH: bool = false;

    fn new() -> Self {
        LibasyncQueue {
            nodes: Vec::with_capacity(1024),
            free: NIL,
            segs: [Seg {
                head: NIL,
                tail: NIL,
            }; 2],
            len: 0,
            pending: vec![Pending::default(); MAP_SLOTS].into_boxed_slice(),
            distinct: 0,
            last: NIL,
            passed: 0,
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn push(&mut self, ev: Event, _p: &QueueParams) -> bool {
        self.link(ev);
        self.distinct >= 2
    }

    /// One callback: the first of the color run last within [`SCHED_WINDOW`], else the first.
    #[inline]
    fn pop(
        &mut self,
        out: &mut Vec<Event>,
        _batch: usize,
        _p: &QueueParams,
        running: &mut Running,
    ) -> bool {
        let head = self.first();
        if head == NIL {
            return false;
        }
        let mut pick = head;
        if self.last != NIL
            && self.pending[self.last as usize].all > 0
            && (self.passed as usize) < SCHED_WINDOW
        {
            let mut i = head;
            for _ in 0..SCHED_WINDOW {
                if i == NIL {
                    break;
                }
                if self.slot_of(i) == self.last as usize {
                    pick = i;
                    break;
                }
                i = self.after(i);
            }
        }
        self.passed = if pick == head { 0 } else { self.passed + 1 };
        let ev = self.unlink(pick);
        let slot = ev.color().slot();
        self.last = if ev.handler() == HandlerId::EPOLL.0 {
            NIL
        } else {
            slot as u32
        };
        out.push(ev);
        running.push(slot);
        true
    }

    fn steal(
        victim: &mut Self,
        thief: &mut Self,
        running: &Running,
        choice: StealChoice,
        p: &QueueParams,
        remap: &mut dyn FnMut(usize),
    ) -> Option<Stolen> {
        debug_assert_eq!(
            choice,
            StealChoice::Base,
            "rejected by RuntimeConfig::validate"
        );
        // can_be_stolen: events of at least two colors.
        if victim.distinct < 2 {
            return None;
        }
        // choose_color_to_steal: the first color from the head, not running, with at most half
        // of the queued events.
        let len = victim.len;
        let mut i = victim.first();
        let mut scanned = 0;
        while i != NIL {
            scanned += 1;
            let s = victim.slot_of(i);
            if !running.contains(s) && (victim.pending[s].all as usize) * 2 <= len {
                break;
            }
            i = victim.after(i);
        }
        if i == NIL {
            return None;
        }
        let chosen = victim.slot_of(i);
        // construct_event_set, then migrate: append to the thief's list, marked stolen. Ours
        // goes on from the chosen node (already read by the scan); libasync-smp's, given only
        // the color, walks again from the head (see `StealWalk`).
        let mut set = Vec::with_capacity(victim.pending[chosen].all as usize);
        let nodes = match p.walk {
            StealWalk::FromChoice => scanned - 1 + victim.take_slot(chosen, i, &mut set),
            StealWalk::FromHead => scanned + victim.take_slot(chosen, victim.first(), &mut set),
        };
        let events = set.len();
        for mut ev in set {
            ev.add_flags(FLAG_STOLEN);
            thief.link(ev);
        }
        remap(chosen);
        Some(Stolen {
            colors: 1,
            events,
            nodes,
        })
    }

    fn move_slot(from: &mut Self, to: &mut Self, slot: usize, _p: &QueueParams) -> usize {
        if from.pending[slot].all == 0 {
            return 0;
        }
        let first = from.first_of(slot);
        let mut set = Vec::with_capacity(from.pending[slot].all as usize);
        from.take_slot(slot, first, &mut set);
        let n = set.len();
        for ev in set {
            to.link(ev);
        }
        n
    }

    fn clear(&mut self) -> usize {
        let n = self.len;
        self.nodes.clear();
        self.free = NIL;
        self.segs = [Seg {
            head: NIL,
            tail: NIL,
        }; 2];
        self.pending
            .iter_mut()
            .for_each(|p| *p = Pending::default());
        self.len = 0;
        self.distinct = 0;
        self.last = NIL;
        self.passed = 0;
        n
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::color::Color;
    use crate::config::StealWalk;
    use crate::event::Task;
    use crate::queue::NOT_RUNNING;

    const P: QueueParams = QueueParams {
        time_left: false,
        weighted: false,
        threshold: 0,
        walk: StealWalk::FromChoice,
    };

    /// An event of `color` (handler 1) whose cost field carries `seq` (to check order), I/O
    /// or `cpucb`.
    fn ev(color: u32, seq: u32, io: bool) -> Event {
        let mut e = Event::new(1, Color(color), seq, 0, Task::detached(|| {}, false));
        if io {
            e.add_flags(FLAG_IO);
        }
        e
    }

    fn pop_all(q: &mut LibasyncQueue) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        let mut got = Vec::new();
        while q.pop(&mut out, 1, &P, &mut Running::NONE.clone()) {
            let e = out.pop().unwrap();
            got.push((e.color().0, e.cost()));
        }
        got
    }

    /// `cpucb` callbacks run ahead of earlier I/O callbacks, except behind an I/O callback of
    /// their own color.
    #[test]
    fn cpucb_goes_ahead_of_io_but_not_of_its_own_color() {
        let mut q = LibasyncQueue::new();
        q.push(ev(1, 0, true), &P); // I/O, color 1
        q.push(ev(2, 0, true), &P); // I/O, color 2
        q.push(ev(3, 0, false), &P); // cpucb, color 3: ahead of both
        q.push(ev(1, 1, false), &P); // cpucb, color 1: behind color 1's I/O callback
        q.last = NIL;
        let mut out = Vec::new();
        assert!(q.pop(&mut out, 1, &P, &mut Running::NONE.clone()));
        q.last = NIL;
        assert!(q.pop(&mut out, 1, &P, &mut Running::NONE.clone()));
        q.last = NIL;
        assert!(q.pop(&mut out, 1, &P, &mut Running::NONE.clone()));
        q.last = NIL;
        assert!(q.pop(&mut out, 1, &P, &mut Running::NONE.clone()));
        let order: Vec<_> = out.iter().map(|e| (e.color().0, e.cost())).collect();
        assert_eq!(order, [(3, 0), (1, 0), (2, 0), (1, 1)]);
    }

    /// The scheduler prefers the color it ran last within its window, in that color's order.
    #[test]
    fn scheduler_prefers_the_last_color_within_its_window() {
        let mut q = LibasyncQueue::new();
        for (c, s) in [(1, 0), (2, 0), (1, 1), (3, 0), (1, 2)] {
            q.push(ev(c, s, false), &P);
        }
        assert_eq!(pop_all(&mut q), [(1, 0), (1, 1), (1, 2), (2, 0), (3, 0)]);

        // Beyond the window the head runs.
        let mut q = LibasyncQueue::new();
        q.push(ev(1, 0, false), &P);
        for s in 0..SCHED_WINDOW as u32 {
            q.push(ev(2, s, false), &P);
        }
        q.push(ev(1, 1, false), &P);
        let got = pop_all(&mut q);
        assert_eq!(got[0], (1, 0));
        assert_eq!(got[1], (2, 0), "color 1's next event is outside the window");
        assert_eq!(*got.last().unwrap(), (1, 1));
    }

    /// The preference cannot starve the head: a color that re-posts itself after each pop
    /// passes the head at most `SCHED_WINDOW` times in a row, and the reactor's Epoll event
    /// (which re-posts itself after every poll) is never preferred.
    #[test]
    fn preference_is_bounded_and_skips_the_reactor() {
        let mut q = LibasyncQueue::new();
        q.push(ev(1, 0, false), &P);
        q.push(ev(2, 0, false), &P);
        let mut out = Vec::new();
        assert!(q.pop(&mut out, 1, &P, &mut Running::NONE.clone()));
        assert_eq!(out.pop().unwrap().color().0, 1);
        // Color 1 re-posts itself after each run; color 2 waits at the head.
        let mut runs_before_2 = 0;
        for s in 1..100 {
            q.push(ev(1, s, false), &P);
            assert!(q.pop(&mut out, 1, &P, &mut Running::NONE.clone()));
            if out.pop().unwrap().color().0 == 2 {
                break;
            }
            runs_before_2 += 1;
        }
        assert_eq!(
            runs_before_2, SCHED_WINDOW,
            "the head waits one window, no more"
        );

        // The Epoll event (color 0) re-posting itself beside a waiting callback.
        let epoll = || {
            let mut e = Event::new(
                HandlerId::EPOLL.0,
                Color(0),
                0,
                0,
                Task::detached(|| {}, false),
            );
            e.add_flags(FLAG_IO);
            e
        };
        let mut q = LibasyncQueue::new();
        q.push(epoll(), &P);
        assert!(q.pop(&mut out, 1, &P, &mut Running::NONE.clone()));
        q.push(ev(5, 0, true), &P);
        q.push(epoll(), &P);
        assert!(q.pop(&mut out, 1, &P, &mut Running::NONE.clone()));
        assert_eq!(
            out.pop().unwrap().color().0,
            5,
            "the waiting callback runs next"
        );
    }

    /// `construct_event_set` stops at the color's pending count: taking color 2 from
    /// [1, 2, 2, 3, 4, ..., 102] visits its two entries, not the 100 after them.
    #[test]
    fn event_set_walk_stops_at_the_pending_count() {
        let mut q = LibasyncQueue::new();
        for c in [1, 2, 2] {
            q.push(ev(c, 0, false), &P);
        }
        for c in 3..103 {
            q.push(ev(c, 0, false), &P);
        }
        let mut set = Vec::new();
        assert_eq!(q.take_slot(2, q.first_of(2), &mut set), 2);
        assert_eq!(set.len(), 2);
        assert_eq!(q.len(), 101);
    }

    /// The steal reports the nodes it read: with the head running, the scan reads two nodes
    /// ([1, 2]) and the walk three more from the chosen one ([2, 3, 2]; the chosen node counted
    /// once), 4 in all; libasync-smp's walk starts again at the head ([1, 2, 3, 2]), 6 in all.
    /// Both take the same events, in order.
    #[test]
    fn the_paper_walk_starts_again_at_the_head() {
        for (walk, want) in [(StealWalk::FromChoice, 4), (StealWalk::FromHead, 6)] {
            let p = QueueParams { walk, ..P };
            let (mut victim, mut thief) = (LibasyncQueue::new(), LibasyncQueue::new());
            for (c, s) in [(1, 0), (2, 0), (3, 0), (2, 1), (4, 0), (5, 0)] {
                victim.push(ev(c, s, false), &p);
            }
            let s = LibasyncQueue::steal(
                &mut victim,
                &mut thief,
                &Running::one(1),
                StealChoice::Base,
                &p,
                &mut |_| {},
            )
            .expect("color 2 is eligible");
            assert_eq!((s.colors, s.events, s.nodes), (1, 2, want), "{walk}");
            assert_eq!(pop_all(&mut thief), [(2, 0), (2, 1)], "{walk}");
            let rest: Vec<u32> = pop_all(&mut victim).iter().map(|e| e.0).collect();
            assert_eq!(rest, [1, 3, 4, 5], "{walk}");
        }
        // Unbalanced's shape (one event per color, head not running): ours reads one node,
        // libasync-smp's two (the head, twice).
        for (walk, want) in [(StealWalk::FromChoice, 1), (StealWalk::FromHead, 2)] {
            let p = QueueParams { walk, ..P };
            let (mut victim, mut thief) = (LibasyncQueue::new(), LibasyncQueue::new());
            for c in 1..100 {
                victim.push(ev(c, 0, false), &p);
            }
            let s = LibasyncQueue::steal(
                &mut victim,
                &mut thief,
                &Running::NONE,
                StealChoice::Base,
                &p,
                &mut |_| {},
            )
            .unwrap();
            assert_eq!(s.nodes, want, "{walk}");
        }
    }

    /// A steal takes the first color that is not running and not a majority, marks its events
    /// stolen, appends them to the thief in order and leaves the rest of the victim in order.
    #[test]
    fn steal_takes_the_first_eligible_color() {
        let mut victim = LibasyncQueue::new();
        let mut thief = LibasyncQueue::new();
        // Color 1 (running) first, then color 2 twice, then colors 3..103.
        victim.push(ev(1, 0, false), &P);
        victim.push(ev(2, 0, false), &P);
        victim.push(ev(2, 1, false), &P);
        for c in 3..103 {
            victim.push(ev(c, 0, false), &P);
        }
        let mut remapped = Vec::new();
        let s = LibasyncQueue::steal(
            &mut victim,
            &mut thief,
            &Running::one(1),
            StealChoice::Base,
            &P,
            &mut |slot| remapped.push(slot),
        )
        .expect("color 2 is eligible");
        assert_eq!((s.colors, s.events), (1, 2));
        assert_eq!(remapped, [2]);
        assert_eq!(victim.len(), 101);
        let mut out = Vec::new();
        while thief.pop(&mut out, 1, &P, &mut Running::NONE.clone()) {}
        assert!(out.iter().all(|e| e.flags() & FLAG_STOLEN != 0));
        let got: Vec<_> = out.iter().map(|e| (e.color().0, e.cost())).collect();
        assert_eq!(got, [(2, 0), (2, 1)]);
        let rest: Vec<u32> = pop_all(&mut victim).iter().map(|e| e.0).collect();
        let want: Vec<u32> = std::iter::once(1).chain(3..103).collect();
        assert_eq!(rest, want);
        // Two events of two colors: each is half, so either may go (not a majority).
        let mut v = LibasyncQueue::new();
        v.push(ev(5, 0, false), &P);
        v.push(ev(6, 0, false), &P);
        assert!(LibasyncQueue::steal(
            &mut v,
            &mut thief,
            &Running::NONE,
            StealChoice::Base,
            &P,
            &mut |_| {}
        )
        .is_some());
    }

    /// Random pushes (both kinds), pops, steals (both walks) and placements between two queues
    /// against a model: every event comes out exactly once, in order per color; counts stay
    /// consistent.
    #[test]
    fn random_ops_keep_each_colors_order() {
        use rand::{Rng, SeedableRng};
        for seed in 0..20u64 {
            let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
            let mut qs = [LibasyncQueue::new(), LibasyncQueue::new()];
            let mut next = [0u32; 32];
            let mut expect = [0u32; 32];
            let mut out = Vec::new();
            let home =
                |qs: &[LibasyncQueue; 2], c: usize| (0..2).find(|&k| qs[k].pending[c].all > 0);
            for _ in 0..4_000 {
                let k = rng.gen_range(0..2);
                match rng.gen_range(0..10) {
                    0..=4 => {
                        let c = rng.gen_range(1..32usize);
                        let k = home(&qs, c).unwrap_or(k);
                        qs[k].push(ev(c as u32, next[c], rng.gen_bool(0.3)), &P);
                        next[c] += 1;
                    }
                    5..=7 => {
                        if qs[k].pop(&mut out, 1, &P, &mut Running::NONE.clone()) {
                            let e = out.pop().unwrap();
                            let c = e.color().0 as usize;
                            assert_eq!(e.cost(), expect[c], "seed {seed}: color {c} order");
                            expect[c] += 1;
                        }
                    }
                    8 => {
                        let (a, b) = qs.split_at_mut(1);
                        let (v, t) = if k == 0 {
                            (&mut a[0], &mut b[0])
                        } else {
                            (&mut b[0], &mut a[0])
                        };
                        let running = if rng.gen_bool(0.5) {
                            NOT_RUNNING
                        } else {
                            rng.gen_range(1..32)
                        };
                        // Odd seeds walk as libasync-smp did, from the head.
                        let walk = if seed % 2 == 0 {
                            StealWalk::FromChoice
                        } else {
                            StealWalk::FromHead
                        };
                        if let Some(s) = LibasyncQueue::steal(
                            v,
                            t,
                            &Running::one(running),
                            StealChoice::Base,
                            &QueueParams { walk, ..P },
                            &mut |s| {
                                assert_ne!(
                                    s as u32, running,
                                    "seed {seed}: stole the running color"
                                )
                            },
                        ) {
                            assert_eq!(s.colors, 1);
                        }
                    }
                    _ => {
                        let c = rng.gen_range(1..32usize);
                        if let Some(from) = home(&qs, c) {
                            let (a, b) = qs.split_at_mut(1);
                            let (f, t) = if from == 0 {
                                (&mut a[0], &mut b[0])
                            } else {
                                (&mut b[0], &mut a[0])
                            };
                            LibasyncQueue::move_slot(f, t, c, &P);
                        }
                    }
                }
                for q in &qs {
                    let mut n = 0;
                    let mut i = q.first();
                    while i != NIL {
                        n += 1;
                        i = q.after(i);
                    }
                    assert_eq!(n, q.len, "seed {seed}: list length");
                    // Only colors 1..32 are used.
                    let total: u32 = q.pending[..32].iter().map(|p| p.all).sum();
                    assert_eq!(total as usize, q.len, "seed {seed}: pending counts");
                    let colors = q.pending[..32].iter().filter(|p| p.all > 0).count();
                    assert_eq!(colors, q.distinct, "seed {seed}: distinct colors");
                }
                // A color lives on one queue at a time (the map's job, kept by the ops above).
                for c in 1..32 {
                    assert!(qs[0].pending[c].all == 0 || qs[1].pending[c].all == 0);
                }
            }
            for q in &mut qs {
                for (c, s) in pop_all(q) {
                    assert_eq!(s, expect[c as usize], "seed {seed}: tail order");
                    expect[c as usize] += 1;
                }
            }
            assert_eq!(next, expect, "seed {seed}: every event came out once");
        }
    }
}
