//! libasync-smp's queue: one FIFO of events per core, a pending-event counter per color slot.
//!
//! Stealing is libasync-smp's, kept deliberately as it was (its cost is a result the Mely paper
//! measures, Table III): `can_be_stolen` needs events of at least two colors;
//! `choose_color_to_steal` scans from the head for the first color that is not running and owns
//! at most half of the queued events (the paper says "less than half"; with two events of two
//! colors that would forbid every steal, so we read it as "not a majority"); `construct_event_set` walks the **whole** queue, moving
//! every event, to pull that color's events out; the set is appended to the thief's queue.

use super::{Design, QueueParams, StealChoice, Stolen};
use crate::color::MAP_SLOTS;
use crate::event::{Event, FLAG_STOLEN};
use std::collections::VecDeque;
use std::mem;

pub(crate) struct LibasyncQueue {
    fifo: VecDeque<Event>,
    /// Spare buffer for the steal's rebuild of the FIFO (keeps its capacity between steals).
    scratch: VecDeque<Event>,
    /// Queued events per slot.
    pending: Box<[u32]>,
    /// Slots with at least one queued event.
    distinct: usize,
}

impl LibasyncQueue {
    fn account_in(&mut self, slot: usize) {
        let p = &mut self.pending[slot];
        if *p == 0 {
            self.distinct += 1;
        }
        *p += 1;
    }
    fn account_out(&mut self, slot: usize) {
        let p = &mut self.pending[slot];
        debug_assert!(*p > 0);
        *p -= 1;
        if *p == 0 {
            self.distinct -= 1;
        }
    }
}

impl Design for LibasyncQueue {
    fn new() -> Self {
        LibasyncQueue {
            fifo: VecDeque::with_capacity(1024),
            scratch: VecDeque::new(),
            pending: vec![0u32; MAP_SLOTS].into_boxed_slice(),
            distinct: 0,
        }
    }

    fn len(&self) -> usize {
        self.fifo.len()
    }

    #[inline]
    fn push(&mut self, ev: Event, _p: &QueueParams) -> bool {
        self.account_in(ev.color().slot());
        self.fifo.push_back(ev);
        self.distinct >= 2
    }

    #[inline]
    fn pop(&mut self, out: &mut Vec<Event>, _batch: usize, _p: &QueueParams) -> Option<usize> {
        let ev = self.fifo.pop_front()?;
        let slot = ev.color().slot();
        self.account_out(slot);
        out.push(ev);
        Some(slot)
    }

    /// One FIFO keeps no per-color time: libasync-smp steals with its own choice only.
    const TIME_LEFT: bool = false;
    const PEEKS_LENGTH: bool = false;

    fn steal(
        victim: &mut Self,
        thief: &mut Self,
        running: u32,
        choice: StealChoice,
        _p: &QueueParams,
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
        // choose_color_to_steal: first color from the head, not running, with at most half of
        // the queued events.
        let len = victim.fifo.len();
        let chosen = victim
            .fifo
            .iter()
            .map(|e| e.color().slot())
            .find(|&s| s as u32 != running && (victim.pending[s] as usize) * 2 <= len)?;
        // construct_event_set: walk the whole queue, moving every event.
        let mut kept = mem::take(&mut victim.scratch);
        kept.clear();
        let mut moved = 0;
        for mut ev in victim.fifo.drain(..) {
            if ev.color().slot() == chosen {
                ev.set_flags(FLAG_STOLEN);
                thief.account_in(chosen);
                thief.fifo.push_back(ev);
                moved += 1;
            } else {
                kept.push_back(ev);
            }
        }
        victim.scratch = mem::replace(&mut victim.fifo, kept);
        victim.pending[chosen] = 0;
        victim.distinct -= 1;
        remap(chosen);
        Some(Stolen {
            colors: 1,
            events: moved,
        })
    }

    fn move_slot(from: &mut Self, to: &mut Self, slot: usize, _p: &QueueParams) -> usize {
        if from.pending[slot] == 0 {
            return 0;
        }
        let mut kept = mem::take(&mut from.scratch);
        kept.clear();
        let mut moved = 0;
        for ev in from.fifo.drain(..) {
            if ev.color().slot() == slot {
                to.account_in(slot);
                to.fifo.push_back(ev);
                moved += 1;
            } else {
                kept.push_back(ev);
            }
        }
        from.scratch = mem::replace(&mut from.fifo, kept);
        from.pending[slot] = 0;
        from.distinct -= 1;
        moved
    }

    fn clear(&mut self) -> usize {
        let n = self.fifo.len();
        self.fifo.clear();
        self.pending.iter_mut().for_each(|p| *p = 0);
        self.distinct = 0;
        n
    }
}
