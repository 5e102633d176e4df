//! The L2 budget the cache-sized benchmarks (`penalty`, `cache-efficient`) are sized to.

/// The L2 budget of the cache-sized benchmarks (`penalty`, `cache-efficient`): the paper's
/// arrays "fit in the core cache", so every array one core holds in flight must fit in that
/// core's L2. We give them half of it: the other half holds the queues, the events, the stacks
/// and whatever a stolen chain brings along.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct L2Budget {
    /// The smallest L2 among the CPUs the workers are pinned to, in bytes.
    pub l2_bytes: u64,
    /// Where `l2_bytes` comes from: `sysfs` (the topology) or `assumed` when the machine does
    /// not say (then [`ASSUMED_L2_BYTES`]).
    pub l2_from: &'static str,
    /// Bytes of arrays one core may hold in flight: half of `l2_bytes`.
    pub budget_bytes: u64,
}

/// The L2 assumed when sysfs gives no size: small enough to fit any core of the last decade.
pub const ASSUMED_L2_BYTES: u64 = 256 * 1024;

impl L2Budget {
    /// The budget for `workers` workers pinned as the runtime pins them (worker `i` on the
    /// `i`-th allowed CPU, modulo their number).
    pub fn for_workers(workers: usize) -> L2Budget {
        let cpus = colored_runtime::topology::allowed_cpus();
        let l2 = (0..workers.max(1))
            .filter_map(|i| colored_runtime::topology::cache_sizes(cpus[i % cpus.len()]).l2_bytes)
            .min();
        L2Budget::from_l2(l2)
    }

    /// The budget for an L2 of `l2` bytes (`None`: unknown, [`ASSUMED_L2_BYTES`]).
    pub fn from_l2(l2: Option<u64>) -> L2Budget {
        let (l2_bytes, l2_from) = match l2 {
            Some(b) if b > 0 => (b, "sysfs"),
            _ => (ASSUMED_L2_BYTES, "assumed"),
        };
        L2Budget {
            l2_bytes,
            l2_from,
            budget_bytes: l2_bytes / 2,
        }
    }
}
