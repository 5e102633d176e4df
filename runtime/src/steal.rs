//! The stealing driver, shared by both queue designs.
//!
//! 1. Build the core set: libasync-smp's (`base`, `time-left`, `penalty`): the most loaded core
//!    first, then the following core numbers; Mely's locality-aware (`locality`, `all`): cores by
//!    cache distance from the thief (shared L2, shared L3, same package, same NUMA node, rest).
//! 2. For each victim: lock the victim and the thief (in core index order, so two thieves
//!    stealing from each other cannot deadlock), let the design choose colors that are not
//!    running (one for `base` and libasync; for time-left, worthy colors up to half of the
//!    victim's queued time, see `queue::mely`) and move their events, remap each slot to the
//!    thief, unlock. Holding both locks while the map changes is what keeps posts racing the
//!    steal in order (see `color`).
//! 3. The victim-locked time of successful steals feeds `steal_cost_cycles` (per steal) and the
//!    moving average of the cost per stolen color that time-left stealing uses as its threshold.
//!    (Dividing by the colors spreads a steal's fixed cost over them, so the estimate leans low
//!    after multi-color steals; in `unbalanced` it stays at 0.9-1.1 Kcycles, within the range
//!    one-color steals gave, 0.9-2.2.)
//!
//! libasync's design locks each victim before looking (as libasync-smp did); Mely's skips
//! victims whose published length is 0 without locking them.

use crate::loom::Ordering;
use crate::queue::{lock_pair, CoreShared, Design};
use crate::runtime::Shared;
use crate::stats::Counters;
use crate::tsc;
use crossbeam_utils::CachePadded;
use std::any::TypeId;

pub(crate) fn try_steal<D: Design>(
    sh: &Shared,
    cores: &[CachePadded<CoreShared<D>>],
    me: usize,
    counters: &mut Counters,
) -> bool {
    let n = cores.len();
    if n < 2 || sh.is_shutdown() {
        return false;
    }
    let policy = sh.cfg.stealing;
    let base_choice = !policy.time_left();
    let precheck = TypeId::of::<D>() == TypeId::of::<crate::queue::mely::MelyQueue>();
    let p = sh.params();
    let mut order_buf = [0usize; 64];
    let order: &[usize] = if policy.locality() {
        sh.topology.neighbours(me)
    } else {
        let most = (0..n)
            .max_by_key(|&c| cores[c].len.load(Ordering::Relaxed))
            .unwrap_or(0);
        let k = n.min(order_buf.len());
        for (i, slot) in order_buf.iter_mut().take(k).enumerate() {
            *slot = (most + i) % n;
        }
        &order_buf[..k]
    };
    for &v in order {
        if v == me {
            continue;
        }
        if precheck && cores[v].len.load(Ordering::Relaxed) == 0 {
            continue;
        }
        let t0 = tsc::now();
        let (mut g_victim, mut g_thief) = lock_pair(cores, v, me);
        let t1 = tsc::now();
        counters.steal_attempts += 1;
        counters.lock_ops += 1;
        let (victim, thief) = (&mut *g_victim, &mut *g_thief);
        let running = cores[v].running.load(Ordering::Acquire);
        let res = D::steal(victim, thief, running, base_choice, &p, &mut |slot| {
            sh.map.set(slot, me)
        });
        if res.is_some() {
            cores[v].len.store(victim.len(), Ordering::Relaxed);
            cores[me].len.store(thief.len(), Ordering::Relaxed);
        }
        let t2 = tsc::now();
        drop(g_thief);
        drop(g_victim);
        counters.lock_cycles += tsc::since(t0);
        if let Some(s) = res {
            let cost = t2.wrapping_sub(t1).saturating_sub(tsc::overhead());
            counters.steals += 1;
            counters.stolen_colors += s.colors as u64;
            counters.steal_cost_cycles += cost;
            // Moving average of the cost of stealing one color, the time-left threshold. Samples
            // are clamped so a thief preempted while holding the locks (common on shared VMs)
            // cannot inflate the threshold until nothing looks worth stealing: at 1.5x the
            // estimate, a clamped sample raises it 6%, a normal one (far below) lowers it 12%, so
            // it drifts up only while over two steals in three are preempted. (At 4x it rose 37%
            // a sample; 4 workers on 2 vCPUs in the stress test drove it to 365 Kcycles, where
            // only colors with two 200-Kcycle events queued still looked worth stealing.)
            let est = sh.steal_cost_est.load(Ordering::Relaxed);
            let sample = (cost / s.colors.max(1) as u64).min(est + est / 2 + 1_000);
            sh.steal_cost_est
                .store(est - (est >> 3) + (sample >> 3), Ordering::Relaxed);
            return true;
        }
    }
    false
}
