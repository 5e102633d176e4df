//! `idle-cpu`: an idle runtime must not spin. Start a runtime with stealing on and its reactor
//! and a timer running, leave it idle, and measure the process's CPU time over the interval.

use colored_runtime::{Color, HandlerSpec, QueueKind, Runtime, RuntimeConfig, StealPolicy};
use std::time::Duration;

/// What the idle interval cost.
#[derive(Clone, Debug)]
pub struct IdleCpu {
    pub queue: QueueKind,
    pub workers: usize,
    pub stealing: StealPolicy,
    pub seconds: f64,
    /// CPU time (user + system) of the whole process over the interval.
    pub cpu: Duration,
}

impl IdleCpu {
    /// CPU time as a percentage of one core over the interval.
    pub fn pct_of_one_core(&self) -> f64 {
        100.0 * self.cpu.as_secs_f64() / self.seconds
    }
}

/// User + system CPU time of this process so far.
fn cpu_time() -> Duration {
    edge::rusage::cpu_time(edge::rusage::Who::Process)
}

/// Run the measurement: libasync steals with `base`, mely with `all`.
pub fn measure(queue: QueueKind, workers: usize, seconds: f64) -> anyhow::Result<IdleCpu> {
    anyhow::ensure!(
        workers >= 1 && seconds > 0.0 && seconds.is_finite(),
        "--workers must be >= 1 and --seconds > 0"
    );
    let stealing = if queue == QueueKind::Libasync {
        StealPolicy::Base
    } else {
        StealPolicy::All
    };
    let rt = Runtime::new(RuntimeConfig {
        workers,
        queue,
        stealing,
        ..Default::default()
    })?;
    let h = rt.register(HandlerSpec::new("tick"));
    // Start the reactor with a timer far in the future, then let everything go idle.
    rt.handle()
        .post_after(Duration::from_secs(3600), Color(1), h, |_| {})?;
    std::thread::sleep(Duration::from_millis(200));
    let before = cpu_time();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let cpu = cpu_time() - before;
    Ok(IdleCpu {
        queue,
        workers,
        stealing,
        seconds,
        cpu,
    })
}
