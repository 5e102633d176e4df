//! `penalty` (Mely paper, section V-B, Table V): core 0 starts each round with many type-A
//! events of distinct colors. An A allocates an array "fitting in the core cache" and writes
//! every element of it (the first touch of the allocation, which puts it in A's core's cache),
//! then posts a B of its color; each B touches the next slice of the array and posts the next B,
//! until the array is done; the last B frees it. B has a stealing penalty of 1000, so
//! penalty-aware stealing takes A events (arrays not yet in any cache) and leaves the B chains,
//! whose arrays are warm in their core's cache, where they are.
//!
//! Sizing (invariant: every array a core holds in flight fits in that core's L2). Without
//! stealing, every chain of the round is in flight on core 0 at once (the queue runs the colors
//! in turn), so `a_events * array_bytes` must fit; [`Params::sized`] makes it at most half of the
//! workers' L2 ([`L2Budget`], from the topology). The sizes are printed with the results. An
//! earlier version kept 64 arrays of 128 KB (8 MB) in flight, more than any L2: a B chain then
//! lost its cache whether it was stolen or not, and the table could not show what penalties
//! are for.
//!
//! The arrays are small (kilobytes), so allocating one per A is a malloc from the allocator's
//! per-thread cache, not an mmap: no page faults and no TLB shootdowns when the chain frees it.

use crate::l2::L2Budget;
use serde_json::json;

/// The benchmark's shape. [`Params::sized`] is the paper's; the fields are public so a test or
/// a study can try others.
#[derive(Clone, Debug)]
pub struct Params {
    /// A events per round (each its own color, all on core 0).
    pub a_events: usize,
    /// Bytes of each A's array.
    pub array_bytes: usize,
    /// Bytes each B touches.
    pub slice_bytes: usize,
    pub b_penalty: u32,
    /// The budget the arrays were sized to (recorded with the results).
    pub budget: L2Budget,
}

/// A events per round: "many", as the paper says; 64 keeps each chain several slices long on
/// L2s of 256 KB and more.
pub const A_EVENTS: usize = 64;

/// Bytes one B touches (256 u64, about 1 Kcycles of work when the slice is in cache).
pub const SLICE_BYTES: usize = 2 * 1024;

impl Params {
    /// The paper's benchmark sized to `budget`: the round's arrays together take at most the
    /// budget, each a whole number of slices (at least one).
    pub fn sized(budget: L2Budget) -> Params {
        let per_array = (budget.budget_bytes as usize / A_EVENTS) / SLICE_BYTES * SLICE_BYTES;
        Params {
            a_events: A_EVENTS,
            array_bytes: per_array.max(SLICE_BYTES),
            slice_bytes: SLICE_BYTES,
            b_penalty: 1000,
            budget,
        }
    }

    /// Sized to the L2 of the CPUs `workers` workers run on.
    pub fn for_workers(workers: usize) -> Params {
        Params::sized(L2Budget::for_workers(workers))
    }

    /// A's cost annotation (Mely's time-left annotation): one cycle per element written.
    /// Measured on the 2-vCPU Xeon VM (2026-12-01): 1-6 Kcycles for a 16 KB array, allocation
    /// included; every result reports the measured mean (`handler_cycles`).
    pub fn a_cost_cycles(&self) -> u64 {
        (self.array_bytes / 8) as u64
    }

    /// B's cost annotation: 1.5 cycles per element of its slice (measured there: 340-610
    /// cycles for 2 KB with the array in cache).
    pub fn b_cost_cycles(&self) -> u64 {
        (self.slice_bytes / 8 * 3 / 2) as u64
    }

    /// B events per array.
    pub fn slices(&self) -> usize {
        self.array_bytes.div_ceil(self.slice_bytes.max(1))
    }

    /// Bytes of arrays a core holds in flight at most: the whole round's.
    pub fn in_flight_bytes(&self) -> usize {
        self.a_events * self.array_bytes
    }

    /// The sizes, for the results (`sized_to: l2` marks this definition of the benchmark).
    pub fn describe(&self) -> serde_json::Map<String, serde_json::Value> {
        let v = json!({
            "sized_to": "l2",
            "l2_bytes": self.budget.l2_bytes,
            "l2_from": self.budget.l2_from,
            "array_bytes": self.array_bytes,
            "arrays_per_round": self.a_events,
            "in_flight_bytes_per_core": self.in_flight_bytes(),
            "slice_bytes": self.slice_bytes,
        });
        v.as_object().cloned().unwrap_or_default()
    }
}

/// A's work: create the array (write every element).
pub fn fill(arr: &mut [u64]) {
    for (i, v) in arr.iter_mut().enumerate() {
        *v = i as u64;
    }
}

/// B's work: a running sum over `slice`, written back.
pub fn touch_slice(slice: &mut [u64]) -> u64 {
    let mut acc = 0u64;
    for v in slice {
        acc = acc.wrapping_add(*v);
        *v = acc;
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sized_arrays_in_flight_fit_the_budget() {
        for l2 in [256 << 10, 1 << 20, 2 << 20, 6 << 20, 32 << 20] {
            let p = Params::sized(L2Budget::from_l2(Some(l2)));
            assert!(p.in_flight_bytes() as u64 <= p.budget.budget_bytes, "{p:?}");
            assert_eq!(p.budget.budget_bytes, l2 / 2);
            assert_eq!(p.array_bytes % p.slice_bytes, 0, "{p:?}");
            // Nearly all of the budget is used (within one slice per array).
            assert!(
                (p.in_flight_bytes() + p.a_events * p.slice_bytes) as u64 > p.budget.budget_bytes,
                "{p:?}"
            );
        }
        // 2 MB of L2 (this machine's): 64 arrays of 16 KB, 8 slices each.
        let p = Params::sized(L2Budget::from_l2(Some(2 << 20)));
        assert_eq!((p.a_events, p.array_bytes, p.slices()), (64, 16 << 10, 8));
    }

    #[test]
    fn unknown_or_tiny_l2() {
        let p = Params::sized(L2Budget::from_l2(None));
        assert_eq!(p.budget.l2_from, "assumed");
        assert_eq!(p.budget.l2_bytes, crate::l2::ASSUMED_L2_BYTES);
        // An L2 too small for one slice per array still gives every A one slice.
        let p = Params::sized(L2Budget::from_l2(Some(4096)));
        assert_eq!(p.array_bytes, p.slice_bytes);
        let d = p.describe();
        assert_eq!(d["sized_to"], "l2");
        assert_eq!(d["array_bytes"], p.slice_bytes);
    }
}
