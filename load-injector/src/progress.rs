//! A progress bar on a terminal (indicatif), hidden when stdout is not a tty.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::Live;

/// Shows the progress of runs; does nothing when disabled.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    enabled: bool,
}

impl Progress {
    /// Enabled when stdout is a terminal.
    pub fn auto() -> Progress {
        Progress {
            enabled: std::io::stdout().is_terminal(),
        }
    }

    /// Never draws.
    pub fn hidden() -> Progress {
        Progress { enabled: false }
    }

    /// Runs `f` while a bar shows the elapsed part of `total` and the live
    /// response rate read from `live` (if the counters are fed locally).
    pub fn track<T>(&self, label: &str, total: Duration, live: &Live, f: impl FnOnce() -> T) -> T {
        if !self.enabled {
            return f();
        }
        let bar = ProgressBar::with_draw_target(
            Some(total.as_millis() as u64),
            ProgressDrawTarget::stderr(),
        );
        bar.set_style(
            ProgressStyle::with_template("{prefix:>14} [{bar:30}] {elapsed:>4}/{duration:4} {msg}")
                .expect("valid progress template")
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        let done = AtomicBool::new(false);
        let start = Instant::now();
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut last = (Instant::now(), 0u64);
                while !done.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(200));
                    let now = Instant::now();
                    let n = live.responses.load(Ordering::Relaxed);
                    let e = live.errors.load(Ordering::Relaxed);
                    let rate =
                        (n - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-3);
                    last = (now, n);
                    bar.set_position(now.duration_since(start).as_millis() as u64);
                    if n + e > 0 {
                        bar.set_message(format!("{rate:>9.0} req/s  {n} responses  {e} errors"));
                    }
                }
            });
            let out = f();
            done.store(true, Ordering::Relaxed);
            bar.finish_and_clear();
            out
        })
    }
}
