//! Pinning a whole process to one CPU (N-copy children, one per core).

use std::io;

/// The CPUs this process may run on, in increasing order.
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is plain data and all-zero is its empty value; sched_getaffinity
    // writes at most size_of::<cpu_set_t>() bytes into it, and CPU_ISSET only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect())
    }
}

/// Restricts this process (its threads started from now on, and the calling thread) to the
/// `index`-th allowed CPU, modulo their number; returns that CPU.
pub fn pin_process_to(index: usize) -> io::Result<usize> {
    let cpus = allowed_cpus()?;
    if cpus.is_empty() {
        return Err(io::Error::other("no CPU is allowed"));
    }
    let cpu = cpus[index % cpus.len()];
    // SAFETY: as in `allowed_cpus`; CPU_SET writes inside the set, and sched_setaffinity
    // reads it for this thread (pid 0), whose mask new threads inherit.
    unsafe {
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut one);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(cpu)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_a_thread_to_an_allowed_cpu() {
        let before = allowed_cpus().unwrap();
        std::thread::spawn(move || {
            let cpu = pin_process_to(before.len() + 1).unwrap();
            assert_eq!(allowed_cpus().unwrap(), [cpu]);
            assert!(before.contains(&cpu));
        })
        .join()
        .unwrap();
    }
}
