//! The real runs `microbenches simulate validate` sets beside the simulator's: one benchmark
//! configuration of the tables ([`simulator::validate::Config`]) run on the real runtime and
//! measured around the whole run, with what the rest of the machine used meanwhile.

use crate::common::{cpu_time, Setup};
use crate::{cache_efficient, penalty, unbalanced};
use anyhow::Result;
use colored_runtime::StealAmount;
use simulator::validate::{Config, RealRun};
use simulator::SimBench;

/// The machine's busy time so far (every CPU's user, nice, system, irq, softirq and steal time),
/// seconds, from `/proc/stat`.
fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| f.get(i))
        .sum::<f64>();
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| busy / hz as f64)
}

/// A real run of `c` on `workers` workers, measured around the whole run.
pub fn real_kevents(c: &Config, workers: usize, seconds: f64) -> Result<RealRun> {
    let (bench, queue, policy) = c.parts()?;
    let machine0 = machine_busy_seconds();
    let (cpu0, t0) = (cpu_time(), std::time::Instant::now());
    let setup = Setup {
        queue,
        stealing: policy,
        steal_amount: StealAmount::One,
        workers,
        trace: None,
        fidelity: colored_runtime::FidelityOptions::of(c.fidelity),
    };
    let o = match bench {
        SimBench::Unbalanced(costs) => {
            unbalanced::run_colored(&setup, seconds, costs, &Default::default())?
        }
        SimBench::Penalty => penalty::run(&setup, seconds, &penalty::Params::for_workers(workers))?,
        SimBench::CacheEfficient => cache_efficient::run(
            &setup,
            seconds,
            &cache_efficient::Params::for_workers(workers),
        )?,
    };
    let cpu = (cpu_time() - cpu0).as_secs_f64();
    let wall = t0.elapsed().as_secs_f64();
    let other = machine0
        .zip(machine_busy_seconds())
        .map(|(a, b)| ((b - a - cpu) / wall).max(0.0));
    Ok(RealRun {
        kevents_per_sec: o.kevents_per_sec(),
        cpu_per_wall: cpu / wall,
        other_cpus: other,
    })
}
