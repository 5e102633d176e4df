//! `unbalanced` (Mely paper, section V-B, Tables III and IV): fork/join rounds; each round posts
//! 50 000 independent events (distinct colors) on core 0; 98% cost 100 cycles, 2% cost 10-50
//! Kcycles (busy work measured with the cycle counter); the next round starts when all are done.
//! Short and long events use two handlers, so time-left stealing can tell them apart, either from
//! cost annotations (`--costs annotated`) or from the runtime's automatic profiling
//! (`--costs profiled`).

use colored_runtime::HandlerSpec;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Costs {
    /// Handlers carry cost annotations (Mely's time-left annotations).
    Annotated,
    /// No annotations: time-left stealing uses the runtime's automatic handler profiles.
    Profiled,
}

#[derive(Clone, Debug)]
pub struct Params {
    pub events_per_round: usize,
    pub long_fraction: f64,
    pub short_cycles: u64,
    pub long_cycles: (u64, u64),
    pub seed: u64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            events_per_round: 50_000,
            long_fraction: 0.02,
            short_cycles: 100,
            long_cycles: (10_000, 50_000),
            seed: 42,
        }
    }
}

/// The short and long events' handlers: annotated with their costs (the long ones' mean), or
/// left to the runtime's profiling.
pub fn handler_specs(costs: Costs, p: &Params) -> [HandlerSpec; 2] {
    let mean_long = (p.long_cycles.0 + p.long_cycles.1) / 2;
    match costs {
        Costs::Annotated => [
            HandlerSpec::new("short").cost_cycles(p.short_cycles),
            HandlerSpec::new("long").cost_cycles(mean_long),
        ],
        Costs::Profiled => [HandlerSpec::new("short"), HandlerSpec::new("long")],
    }
}

/// One round's events, identical every round: (color, cycles, long?).
pub fn plan(p: &Params) -> Vec<(u32, u32, bool)> {
    let mut rng = SmallRng::seed_from_u64(p.seed);
    (0..p.events_per_round)
        .map(|i| {
            let long = rng.gen_bool(p.long_fraction);
            let cycles = if long {
                rng.gen_range(p.long_cycles.0..=p.long_cycles.1)
            } else {
                p.short_cycles
            };
            (i as u32 + 1, cycles as u32, long)
        })
        .collect()
}
