//! A small pool of helper threads for blocking work (file I/O); each completion comes back as an
//! event of the caller's color. The pool starts on first use and its threads exit once the
//! runtime shuts down and the queued jobs are drained (their completions are then dropped).

use crate::color::Color;
use crate::ctx::Ctx;
use crate::handler::HandlerId;
use crate::runtime::{Handle, PostError};
use crossbeam_channel::{unbounded, Sender};
use std::sync::Mutex;

type Job = Box<dyn FnOnce() + Send>;

pub(crate) struct BlockingPool {
    tx: Mutex<Option<Sender<Job>>>,
}

impl BlockingPool {
    fn start(threads: usize) -> BlockingPool {
        let (tx, rx) = unbounded::<Job>();
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let _ = std::thread::Builder::new()
                .name(format!("colored-blocking-{i}"))
                .spawn(move || {
                    while let Ok(job) = rx.recv() {
                        job();
                    }
                });
        }
        BlockingPool {
            tx: Mutex::new(Some(tx)),
        }
    }

    pub(crate) fn close(&self) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

impl Handle {
    /// Run `work` on a helper thread; then run `done(ctx, result)` as an event of `color`.
    pub fn spawn_blocking<T, W, D>(
        &self,
        color: Color,
        handler: HandlerId,
        work: W,
        done: D,
    ) -> Result<(), PostError>
    where
        T: Send + 'static,
        W: FnOnce() -> T + Send + 'static,
        D: FnOnce(&mut Ctx<'_>, T) + Send + 'static,
    {
        if self.is_shutdown() {
            return Err(PostError::Shutdown);
        }
        let pool = self
            .sh
            .blocking
            .get_or_init(|| BlockingPool::start(self.sh.cfg.blocking_threads));
        let h = self.clone();
        let job: Job = Box::new(move || {
            let t = work();
            let _ = h.post(color, handler, move |ctx| done(ctx, t));
        });
        let tx = pool.tx.lock().unwrap_or_else(|e| e.into_inner());
        match tx.as_ref() {
            Some(tx) => tx.send(job).map_err(|_| PostError::Shutdown),
            None => Err(PostError::Shutdown),
        }
    }
}
