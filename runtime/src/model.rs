//! A runtime's shared state driven step by step, without worker threads: for loom models of the
//! post/steal protocol and for microbenchmarks of the primitives. Every step runs the runtime's
//! real code (the post path, `try_steal`, a worker's `run_batch`). Not a stable API.

use crate::color::Color;
use crate::config::{BuildError, RuntimeConfig};
use crate::core::Owner;
use crate::ctx::Ctx;
use crate::error::PostError;
use crate::handler::{HandlerId, HandlerSpec};
use crate::shared::{with_queues, Handle, Shared};
use crate::stats::{Counters, RuntimeStats};
use crate::steal::{self, Look};
use crate::topology::Topology;
pub use crate::worker::IdleEnd;
use crate::worker::Worker;
use colored_trace::Recorder;

/// Runs `$body` with `$wk` bound to worker `$w` of model `$m`, built for the step (with its
/// core's owner handle, claimed for the step), then accounts the worker's counters.
macro_rules! on_worker {
    ($m:ident, $w:expr, $wk:ident => $body:expr) => {{
        let sh: &Shared = &$m.handle.sh;
        let w = $w;
        with_queues!(sh.queues(), q => {
            #[allow(unused_mut)]
            let mut $wk = Worker::new(&$m.handle, q, Owner::claim(w, &q[w], sh.state(w)));
            let r = $body;
            $m.account(w, $wk.counters());
            r
        })
    }};
}

/// Shared state of a runtime whose workers are driven by the caller.
pub struct Model {
    handle: Handle,
    /// Counters accumulated over the steps of each worker (published after every step).
    acc: std::sync::Mutex<Vec<Counters>>,
}

impl Model {
    /// Build the shared state for `cfg` (validated like `Runtime::new`) without starting threads.
    pub fn new(cfg: RuntimeConfig) -> Result<Model, BuildError> {
        cfg.validate()?;
        let n = cfg.workers;
        let queues = Shared::local_queues(&cfg);
        let topology = Topology::detect(n);
        Ok(Model {
            handle: Handle {
                sh: Shared::new(cfg, queues, topology),
            },
            acc: std::sync::Mutex::new(vec![Counters::default(); n]),
        })
    }

    fn account(&self, w: usize, c: &Counters) {
        let mut c = *c;
        // Busy/idle time of a step is not meaningful in a model.
        c.busy_cycles = 0;
        c.idle_cycles = 0;
        let total = {
            let mut acc = self.acc.lock().unwrap_or_else(|e| e.into_inner());
            acc[w].add(&c);
            acc[w]
        };
        // Published after the (non-loom) mutex is released, so a loom model never switches
        // threads while holding it.
        self.handle.sh.published(w).counters.publish(&total);
    }

    pub fn register(&self, name: &str) -> HandlerId {
        self.handle.register(HandlerSpec::new(name))
    }

    pub fn register_spec(&self, spec: HandlerSpec) -> HandlerId {
        self.handle.register(spec)
    }

    /// The runtime's post path, as from a thread outside the runtime.
    pub fn post<F>(&self, color: Color, handler: HandlerId, f: F) -> Result<(), PostError>
    where
        F: FnOnce(&mut Ctx<'_>) + Send + 'static,
    {
        self.handle.post(color, handler, f)
    }

    /// One stealing round by worker `thief`, with the configured policy. True if it stole.
    ///
    /// The model claims the core's owner handle for the step: a caller must not drive the same
    /// worker from two threads at once (each model thread plays one worker; a second claim
    /// panics).
    pub fn steal(&self, thief: usize) -> bool {
        let sh: &Shared = &self.handle.sh;
        let mut c = Counters::default();
        let stole = with_queues!(sh.queues(), q => {
            let mut owner = Owner::claim(thief, &q[thief], sh.state(thief));
            steal::try_steal(sh, q, &mut owner, &mut c, &mut Recorder::off(), Look::AsDesigned)
        });
        self.account(thief, &c);
        stole
    }

    /// Worker `w` pops and runs one batch with the real worker code. False if its queue was
    /// empty. (One thread per worker, as for [`Model::steal`].)
    pub fn run_batch(&self, w: usize) -> bool {
        on_worker!(self, w, wk => {
            let ran = wk.run_batch();
            wk.finish_batch();
            ran
        })
    }

    /// Worker `w` finds its queue empty and follows the real idle protocol, with one steal
    /// attempt as its search, up to where it would park: [`IdleEnd::Asleep`] means its core is
    /// now marked asleep (check [`Model::is_asleep`] later: a wake-up clears it). Call
    /// [`Model::end_sleep`] before driving the worker again.
    pub fn idle_step(&self, w: usize) -> IdleEnd {
        on_worker!(self, w, wk => wk.idle_step())
    }

    /// Worker `w`'s reactor is about to block in its poll (the Epoll event's path): true if the
    /// worker is now marked polling. Call [`Model::end_sleep`] afterwards.
    pub fn begin_polling(&self, w: usize) -> bool {
        on_worker!(self, w, wk => wk.begin_polling())
    }

    /// Is worker `w` still marked asleep (nobody has woken it)?
    pub fn is_asleep(&self, w: usize) -> bool {
        on_worker!(self, w, wk => wk.is_asleep())
    }

    /// Worker `w` wakes from the sleep an `idle_step` or `begin_polling` began.
    pub fn end_sleep(&self, w: usize) {
        on_worker!(self, w, wk => wk.end_sleep())
    }

    /// The core the map currently routes `color` to.
    pub fn core_of(&self, color: Color) -> usize {
        self.handle.core_of(color)
    }

    /// Events queued on core `w`.
    pub fn queued(&self, w: usize) -> usize {
        self.handle.sh.state(w).len()
    }

    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    pub fn stats(&self) -> RuntimeStats {
        self.handle.stats()
    }
}
