//! A small pool of helper threads for blocking work (file I/O); each completion comes back as an
//! event of the caller's color. The pool starts on first use and its threads exit once the
//! runtime shuts down and the queued jobs are drained (their completions are then dropped).
//!
//! A job that panics is caught on its helper, which goes on serving the queue (so the pool
//! keeps its size), and counted ([`BlockingPool::panics`], reported as
//! `RuntimeStats::blocking_panics`); its completion is never posted. The panic message goes
//! where the process's panic hook sends it, as for a handler's panic.

use crate::error::PostError;
use crossbeam_channel::{unbounded, Sender};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A piece of blocking work; it posts its own completion.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// The helper threads' queue.
pub(crate) struct BlockingPool {
    /// Jobs for the helpers; `None` once closed (shutdown), which lets the helpers exit after
    /// draining what was queued.
    tx: Mutex<Option<Sender<Job>>>,
    /// Jobs that panicked (shared with the helpers).
    panics: Arc<AtomicU64>,
}

impl BlockingPool {
    /// A pool of `threads` helpers (at least one).
    pub(crate) fn start(threads: usize) -> BlockingPool {
        let (tx, rx) = unbounded::<Job>();
        let panics = Arc::new(AtomicU64::new(0));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let panics = panics.clone();
            let _ = std::thread::Builder::new()
                .name(format!("colored-blocking-{i}"))
                .spawn(move || {
                    while let Ok(job) = rx.recv() {
                        // The job is consumed either way; nothing of it is used after a panic.
                        if catch_unwind(AssertUnwindSafe(job)).is_err() {
                            panics.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
        }
        BlockingPool {
            tx: Mutex::new(Some(tx)),
            panics,
        }
    }

    /// Jobs that panicked so far.
    pub(crate) fn panics(&self) -> u64 {
        self.panics.load(Ordering::Relaxed)
    }

    /// Close the queue: the helpers exit once it is drained.
    pub(crate) fn close(&self) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

impl BlockingPool {
    /// Queue `job` for a helper; `Shutdown` once the pool is closed.
    pub(crate) fn submit(&self, job: Job) -> Result<(), PostError> {
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        match tx.as_ref() {
            Some(tx) => tx.send(job).map_err(|_| PostError::Shutdown),
            None => Err(PostError::Shutdown),
        }
    }
}
