//! Last-level-cache misses through `perf_event_open`, when the machine exposes hardware
//! counters (most VMs do not: then [`LlcCounter::open`] returns `None` and tables print `n/a`).
//!
//! The papers' "L2 misses" were measured on a Xeon E5410, whose L2 *is* its last-level cache,
//! so we count the generic last-level cache read misses (`PERF_COUNT_HW_CACHE_LL`). The counter
//! is opened on the calling thread with `inherit`, before the runtime starts its workers, so it
//! sums every worker thread once they have exited (read it after dropping the runtime).

const PERF_TYPE_HW_CACHE: u32 = 3;
const PERF_COUNT_HW_CACHE_LL: u64 = 2;
const PERF_COUNT_HW_CACHE_OP_READ: u64 = 0;
const PERF_COUNT_HW_CACHE_RESULT_MISS: u64 = 1;

#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    type_: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
    config2: u64,
    branch_sample_type: u64,
    sample_regs_user: u64,
    sample_stack_user: u32,
    clockid: i32,
    sample_regs_intr: u64,
    aux_watermark: u32,
    sample_max_stack: u16,
    reserved: u16,
}

// Bits of `flags`.
const DISABLED: u64 = 1 << 0;
const INHERIT: u64 = 1 << 1;
const EXCLUDE_KERNEL: u64 = 1 << 5;
const EXCLUDE_HV: u64 = 1 << 6;

pub struct LlcCounter {
    fd: i32,
}

impl LlcCounter {
    /// Open and enable the counter; `None` if the kernel or machine has no such counter.
    pub fn open() -> Option<LlcCounter> {
        let attr = PerfEventAttr {
            type_: PERF_TYPE_HW_CACHE,
            size: std::mem::size_of::<PerfEventAttr>() as u32,
            config: PERF_COUNT_HW_CACHE_LL
                | (PERF_COUNT_HW_CACHE_OP_READ << 8)
                | (PERF_COUNT_HW_CACHE_RESULT_MISS << 16),
            flags: DISABLED | INHERIT | EXCLUDE_KERNEL | EXCLUDE_HV,
            ..Default::default()
        };
        // SAFETY: `attr` is a properly sized, initialised perf_event_attr that outlives the call;
        // pid 0 / cpu -1 / group -1 / flags 0 are valid arguments; the result is checked.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_perf_event_open,
                &attr as *const PerfEventAttr,
                0,
                -1,
                -1,
                0,
            )
        } as i32;
        if fd < 0 {
            return None;
        }
        // SAFETY: `fd` is a perf event fd we own; PERF_EVENT_IOC_ENABLE takes no argument.
        let ok = unsafe {
            libc::ioctl(fd, 0x2400 /* PERF_EVENT_IOC_ENABLE */, 0)
        } == 0;
        if !ok {
            // SAFETY: closing the fd we just opened.
            unsafe { libc::close(fd) };
            return None;
        }
        Some(LlcCounter { fd })
    }

    /// Misses counted so far (including exited inherited threads).
    pub fn read(&self) -> Option<u64> {
        let mut v: u64 = 0;
        // SAFETY: reading 8 bytes into a u64 from our perf fd.
        let n = unsafe { libc::read(self.fd, &mut v as *mut u64 as *mut libc::c_void, 8) };
        (n == 8).then_some(v)
    }

    /// Whether this machine has the counter at all (for reports).
    pub fn available() -> bool {
        LlcCounter::open().is_some()
    }
}

impl Drop for LlcCounter {
    fn drop(&mut self) {
        // SAFETY: closing the fd this value owns, once.
        unsafe { libc::close(self.fd) };
    }
}
