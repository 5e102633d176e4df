//! CPU time (user + system) from getrusage(2).

use std::time::Duration;

/// Whose CPU time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    /// Every thread of this process, including the ones that exited.
    Process,
    /// The calling thread only.
    Thread,
    /// The children of this process that exited and were waited for.
    Children,
}

/// User plus system CPU time used so far; zero if the kernel refuses (it does not for these
/// targets on Linux).
pub fn cpu_time(who: Who) -> Duration {
    let target = match who {
        Who::Process => libc::RUSAGE_SELF,
        Who::Thread => libc::RUSAGE_THREAD,
        Who::Children => libc::RUSAGE_CHILDREN,
    };
    // SAFETY: 1. `rusage` is plain old data, so the all-zero value is valid; 2. getrusage only
    // writes into the struct we pass, which lives for the call; 3. all three targets are valid
    // on Linux, and on failure the struct stays zero.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        if libc::getrusage(target, &mut ru) != 0 {
            return Duration::ZERO;
        }
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spinning_costs_cpu_time() {
        let (p0, t0) = (cpu_time(Who::Process), cpu_time(Who::Thread));
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(30) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        std::hint::black_box(x);
        let (p1, t1) = (cpu_time(Who::Process), cpu_time(Who::Thread));
        assert!(t1 > t0, "thread {t0:?} -> {t1:?}");
        assert!(p1 >= t1 - t0 + p0 - Duration::from_millis(1));
    }
}
