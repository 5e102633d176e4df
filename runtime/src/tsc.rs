//! Cycle counter. On x86_64 this is `rdtsc` (constant-rate TSC on every CPU this project
//! targets); elsewhere it falls back to nanoseconds from a monotonic clock, and
//! [`cycles_per_sec`] then returns 1e9 so conversions stay right.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Current value of the cycle counter.
#[inline(always)]
pub fn now() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `rdtsc` has no preconditions; it only reads the time-stamp counter.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// Cycles per second of [`now`], measured once (20 ms against the monotonic clock).
pub fn cycles_per_sec() -> f64 {
    static RATE: OnceLock<f64> = OnceLock::new();
    *RATE.get_or_init(|| {
        if !cfg!(target_arch = "x86_64") {
            return 1e9;
        }
        let t0 = Instant::now();
        let c0 = now();
        while t0.elapsed() < Duration::from_millis(20) {
            std::hint::spin_loop();
        }
        let c1 = now();
        let dt = t0.elapsed().as_secs_f64();
        (c1.wrapping_sub(c0)) as f64 / dt
    })
}

/// Cycles one reading of the counter adds to a measured interval (calibrated once: the minimum
/// of back-to-back readings). Timed intervals subtract it.
pub fn overhead() -> u64 {
    static OVERHEAD: OnceLock<u64> = OnceLock::new();
    *OVERHEAD.get_or_init(|| {
        (0..2000)
            .map(|_| {
                let a = now();
                now().wrapping_sub(a)
            })
            .min()
            .unwrap_or(0)
    })
}

/// Cycles between `start` and now, less the counter's own cost.
#[inline]
pub fn since(start: u64) -> u64 {
    now().wrapping_sub(start).saturating_sub(overhead())
}

/// Busy-waits for `cycles` cycles of the counter (the microbenchmarks' unit of work).
#[inline]
pub fn spin_cycles(cycles: u64) {
    let start = now();
    while now().wrapping_sub(start) < cycles {
        std::hint::spin_loop();
    }
}
