//! The stealing driver, shared by both queue designs.
//!
//! 1. Build the core set ([`core_set`]): libasync-smp's (`base`, `time-left`, `penalty`): the
//!    most loaded core first, then the following core numbers; Mely's locality-aware
//!    (`locality`, `all`): cores by cache distance from the thief (shared L2, shared L3, same
//!    package, same NUMA node, rest).
//! 2. For each victim: lock the victim and the thief (in core index order, so two thieves
//!    stealing from each other cannot deadlock), let the design choose colors that are not
//!    running ([`StealChoice`]: libasync-smp's one color, or time-left's worthy colors) and move
//!    their events, remap each slot to the thief, unlock. Holding both locks while the map
//!    changes is what keeps posts racing the steal in order (see `color`).
//! 3. The victim-locked time of successful steals feeds `steal_cost_cycles` (per steal) and the
//!    moving average of the cost per stolen color that time-left stealing uses as its threshold
//!    ([`next_estimate`]). (Dividing by the colors spreads a multi-color steal's fixed cost over
//!    them, so the estimate leans low after such steals; in `unbalanced` it stays at 0.9-1.1
//!    Kcycles, within the range one-color steals gave, 0.9-2.2.)
//!
//! [`core_set`] and [`next_estimate`] are pure: they are the policy's decisions, and anything
//! that drives the designs without threads (the simulator) calls them rather than a copy.
//!
//! A design with [`Design::PEEKS_LENGTH`] (Mely) skips victims whose published length is 0
//! without locking them; libasync's locks each victim before looking, as libasync-smp did. The
//! last searcher's round before it sleeps locks every victim whatever the design ([`Look`]).

use crate::config::StealPolicy;
use crate::core::{CoreQueue, Owner};
use crate::queue::Design;
use crate::shared::Shared;
use crate::stats::Counters;
use crate::topology::Topology;
use crate::tsc;
use colored_trace::{record::sat16, record::sat32, Record, Recorder, StealOutcome};
use crossbeam_utils::CachePadded;

/// Most victims one stealing round examines (the core set is cut there).
pub(crate) const MAX_CORE_SET: usize = 64;

/// The victims thief `me` examines, in order, written into `buf` (it may include `me`, which
/// callers skip). `len_of(c)` is core `c`'s published queue length (a hint). With a locality
/// policy the order is the topology's cache distance from `me`; otherwise libasync-smp's: the
/// most loaded core, then the following core numbers.
pub(crate) fn core_set<'a>(
    policy: StealPolicy,
    me: usize,
    n: usize,
    len_of: impl Fn(usize) -> usize,
    topology: &'a Topology,
    buf: &'a mut [usize; MAX_CORE_SET],
) -> &'a [usize] {
    if policy.locality() {
        return topology.neighbours(me);
    }
    let most = (0..n).max_by_key(|&c| len_of(c)).unwrap_or(0);
    let k = n.min(MAX_CORE_SET);
    for (i, slot) in buf.iter_mut().take(k).enumerate() {
        *slot = (most + i) % n;
    }
    &buf[..k]
}

/// The time-left threshold after a steal that kept the victim locked `cost` cycles and moved
/// `colors` colors, from the estimate `est`: a moving average (weight 1/8) of the cost per
/// color. Samples are clamped so a thief preempted while holding the locks (common on shared
/// VMs) cannot inflate the threshold until nothing looks worth stealing: at 1.5x the estimate,
/// a clamped sample raises it 6%, a normal one (far below) lowers it 12%, so it drifts up only
/// while over two steals in three are preempted. (At 4x it rose 37% a sample; 4 workers on 2
/// vCPUs in the stress test drove it to 365 Kcycles, where only colors with two 200-Kcycle
/// events queued still looked worth stealing.)
pub(crate) fn next_estimate(est: u64, cost: u64, colors: usize) -> u64 {
    let sample = (cost / colors.max(1) as u64).min(est + est / 2 + 1_000);
    est - (est >> 3) + (sample >> 3)
}

/// Whether a stealing round may skip a victim whose published length is 0 without locking it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Look {
    /// As the design does it ([`Design::PEEKS_LENGTH`]): a search's ordinary round.
    AsDesigned,
    /// Lock every victim: the last searcher's round before it sleeps, whose ordering against
    /// posts rests on the locks (see `idle`).
    LockEvery,
}

/// Whether a round with `look` passes over victim `v` without locking it: the design peeks
/// ([`Design::PEEKS_LENGTH`]) and the victim's published length is 0.
#[inline]
pub(crate) fn skips<D: Design>(sh: &Shared, v: usize, look: Look) -> bool {
    D::PEEKS_LENGTH && look == Look::AsDesigned && sh.state(v).len() == 0
}

/// One stealing round by `thief` over the policy's core set: true if it stole (the events are
/// then in the thief's queue). Accounts attempts, steals and their cost in `counters`, and
/// records each locked attempt in `rec` (an attempt that took nothing is `Empty` if the
/// victim's published length was 0 just before it, else `Nothing`; the nodes a steal visited
/// are the design's count, [`Stolen::nodes`](crate::queue::Stolen), 0 for an attempt that took
/// nothing).
pub(crate) fn try_steal<D: Design>(
    sh: &Shared,
    queues: &[CachePadded<CoreQueue<D>>],
    thief: &mut Owner<'_, D>,
    counters: &mut Counters,
    rec: &mut Recorder,
    look: Look,
) -> bool {
    let n = queues.len();
    if n < 2 || sh.is_shutdown() {
        return false;
    }
    let me = thief.index();
    let stealing = sh.stealing();
    let p = sh.params();
    let mut buf = [0usize; MAX_CORE_SET];
    let order = core_set(
        stealing.policy,
        me,
        n,
        |c| sh.state(c).len(),
        sh.topology(),
        &mut buf,
    );
    for &v in order {
        if v == me || skips::<D>(sh, v, look) {
            continue;
        }
        let len_before = if rec.is_on() { sh.state(v).len() } else { 0 };
        let attempt =
            sh.stealer(queues, v)
                .steal_into(thief, stealing.choice, &p, tsc::now, &mut |slot| {
                    sh.map().set(slot, me);
                    if rec.is_on() {
                        // The map moves slots: every color congruent to `slot` moves with it.
                        rec.record(Record::Remap {
                            at: tsc::now(),
                            color: slot as u32,
                            from: v as u16,
                            to: me as u16,
                        });
                    }
                });
        counters.steal_attempts += 1;
        counters.lock_ops += 1;
        counters.lock_cycles += tsc::since(attempt.locked_at);
        if rec.is_on() {
            record_attempt(rec, v, len_before, &attempt);
        }
        if let Some(s) = attempt.stolen {
            let cost = attempt
                .moved_at
                .wrapping_sub(attempt.acquired_at)
                .saturating_sub(tsc::overhead());
            counters.steals += 1;
            counters.stolen_colors += s.colors as u64;
            counters.steal_nodes += s.nodes as u64;
            counters.steal_cost_cycles += cost;
            sh.set_steal_threshold(next_estimate(sh.steal_threshold(), cost, s.colors));
            return true;
        }
    }
    false
}

/// Trace one locked steal attempt on victim `v`.
#[cold]
fn record_attempt(rec: &mut Recorder, v: usize, len_before: usize, a: &crate::core::StealAttempt) {
    let (events, colors, nodes, outcome) = match &a.stolen {
        Some(s) => (s.events, s.colors, s.nodes, StealOutcome::Stolen),
        None if len_before == 0 => (0, 0, 0, StealOutcome::Empty),
        None => (0, 0, 0, StealOutcome::Nothing),
    };
    rec.record(Record::Steal {
        start: a.locked_at,
        dur: sat32(a.moved_at.wrapping_sub(a.locked_at)),
        lock_wait: sat32(a.acquired_at.wrapping_sub(a.locked_at)),
        lock_hold: sat32(a.moved_at.wrapping_sub(a.acquired_at)),
        events: sat32(events as u64),
        victim: sat16(v as u64),
        colors: sat16(colors as u64),
        nodes: sat16(nodes as u64),
        outcome,
    });
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::next_estimate;

    #[test]
    fn the_estimate_moves_an_eighth_of_the_way_to_each_sample() {
        // 2000 - 2000/8 + 1000/8.
        assert_eq!(next_estimate(2_000, 1_000, 1), 1_875);
        // A sample equal to the estimate leaves it (within the shifts' rounding).
        assert_eq!(next_estimate(2_000, 2_000, 1), 2_000);
        // Repeated samples converge to them.
        let mut est = 2_000;
        for _ in 0..200 {
            est = next_estimate(est, 800, 1);
        }
        // The fixed point of the integer average: est / 8 == 800 / 8.
        assert!((800..=807).contains(&est), "{est}");
    }

    #[test]
    fn the_cost_is_shared_by_the_colors_moved() {
        assert_eq!(
            next_estimate(2_000, 4_000, 4),
            next_estimate(2_000, 1_000, 1)
        );
        // No color moved is taken as one.
        assert_eq!(
            next_estimate(2_000, 1_000, 0),
            next_estimate(2_000, 1_000, 1)
        );
    }

    #[test]
    fn a_preempted_thief_cannot_inflate_the_threshold() {
        // A sample is clamped to 1.5x the estimate + 1000 cycles: 2000 -> 4000.
        let clamped = next_estimate(2_000, 4_000, 1);
        assert_eq!(next_estimate(2_000, 1_000_000_000, 1), clamped);
        assert_eq!(clamped, 2_000 - 250 + 500);
        // Two clamped samples in three still lower it from a high estimate when the third is
        // a normal one (far below): 6% up twice, 12% down once (see the doc).
        let mut est = 100_000;
        for _ in 0..30 {
            est = next_estimate(est, u64::MAX, 1);
            est = next_estimate(est, u64::MAX, 1);
            est = next_estimate(est, 1_000, 1);
        }
        assert!(est < 120_000, "drifted up to {est}");
        // From zero (no steal measured yet could only ever be low) it rises by the clamp.
        assert_eq!(next_estimate(0, u64::MAX, 1), 1_000 >> 3);
    }
}
