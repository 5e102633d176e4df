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

    /// Runs `f` while a bar shows the elapsed part of `total` (the first
    /// `warmup` of it labelled as warm-up) and the live response rate read
    /// from `live` (when the counters are fed locally).
    pub fn track<T>(
        &self,
        label: &str,
        warmup: Duration,
        total: Duration,
        live: &Live,
        f: impl FnOnce() -> T,
    ) -> T {
        if !self.enabled {
            return f();
        }
        let bar = ProgressBar::with_draw_target(
            Some(total.as_millis() as u64),
            ProgressDrawTarget::stderr(),
        );
        bar.set_style(
            ProgressStyle::with_template("{prefix:>14} [{bar:20}] {msg}")
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
                    let el = now.duration_since(start);
                    bar.set_position(el.as_millis() as u64);
                    let phase = if el < warmup { "warm-up" } else { "measuring" };
                    let mut msg = format!(
                        "{phase} {:.0}/{:.0}s",
                        el.as_secs_f64(),
                        total.as_secs_f64()
                    );
                    if n + e > 0 {
                        msg += &format!(" {rate:.0} req/s {e} err");
                    }
                    bar.set_message(msg);
                }
            });
            let out = f();
            done.store(true, Ordering::Relaxed);
            bar.finish_and_clear();
            out
        })
    }
}
