//! Waiting for the signals that stop a server.
//!
//! Hook them first thing (before binding or building caches): a SIGINT or SIGTERM that
//! arrives during start-up is then queued, not lost, and [`StopSignals::wait`] returns at
//! once.

use std::io;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// SIGINT and SIGTERM, hooked.
pub struct StopSignals {
    signals: Signals,
}

impl StopSignals {
    /// Hooks SIGINT and SIGTERM (their default action, ending the process, is replaced).
    pub fn hook() -> io::Result<StopSignals> {
        Ok(StopSignals {
            signals: Signals::new([SIGINT, SIGTERM])?,
        })
    }

    /// Blocks until one of them arrives; returns its number.
    pub fn wait(&mut self) -> i32 {
        self.signals.forever().next().unwrap_or(SIGTERM)
    }

    /// The signal that arrived since the last call, if any (does not block).
    pub fn pending(&mut self) -> Option<i32> {
        self.signals.pending().next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raised_signal_is_seen() {
        let _serial = crate::PROCESS_SIGNALS
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut s = StopSignals::hook().unwrap();
        assert_eq!(s.pending(), None);
        signal_hook::low_level::raise(SIGTERM).unwrap();
        assert_eq!(s.wait(), SIGTERM);
    }
}
