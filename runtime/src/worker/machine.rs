//! The worker as a state machine: which step a worker takes next, and the idle protocol's
//! decisions between its steps (rules 1-3 of `idle`).
//!
//! One [`Machine`] per worker, driven by the worker's thread ([`Worker::run`](super::Worker)),
//! by the loom model (`model`) and by the simulator's engine in virtual time (through
//! `stepped`). A driver performs the step the machine names (each may take locks and time:
//! the thread takes them for real, the engine in virtual cycles), then reports how it went; the
//! machine keeps the shared idle counts and names the next step. So the three drivers cannot
//! disagree on the protocol: they differ only in how they perform a step.
//!
//! | step | the driver | then calls | next |
//! |---|---|---|---|
//! | [`Work`](Step::Work) | pops and runs batches until a pop finds its own queue empty (or shutdown) | [`queue_empty`](Machine::queue_empty) | `Search` if it may search (rule 1), else `FallAsleep` |
//! | [`Search`](Step::Search) | one stealing round (`steal::Look::AsDesigned`) | [`round_ended`](Machine::round_ended) | stole: `Work` (rule 2); else by [`after_round`]: `Work` (work arrived, or shutdown), `Search` (idle workers spin), `Nap`, `FallAsleep` (the search time is over) |
//! | [`Nap`](Step::Nap) | sleeps the search nap | [`napped`](Machine::napped) | `Search` |
//! | [`FallAsleep`](Step::FallAsleep) | nothing: the machine marks the core asleep under its lock | [`fall_asleep`](Machine::fall_asleep) | `Work` (work arrived, or shutdown), `LastLook` (no searcher left: rule 3), `Park` |
//! | [`LastLook`](Step::LastLook) | one stealing round locking every victim (`steal::Look::LockEvery`) | [`round_ended`](Machine::round_ended) | stole: `Work` (the sleep is cancelled); else `Park` |
//! | [`Park`](Step::Park) | waits until its core is no longer marked asleep (a post claimed the wake-up) or shutdown | [`woke`](Machine::woke) | `Work` |
//!
//! Invariants: the machine counts itself a searcher exactly from a `queue_empty` that
//! returned `Search` to the transition that leaves `Search`/`Nap` (to `Work` or through
//! `fall_asleep`), and a sleeper from a `fall_asleep` that did not return `Work` to the `Work`
//! that follows (`round_ended` of a last look that stole, or `woke`). A driver that stops at
//! shutdown stops only at `Work` (the thread's loop checks shutdown there; every other step
//! reaches `Work` once shutdown is set), so no count is left behind.

use crate::core::{Owner, Sleep};
use crate::queue::Design;
use crate::shared::Shared;

/// What a worker does next (see the module doc's table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Pop and run batches until a pop finds the own queue empty; then
    /// `Machine::queue_empty`.
    Work,
    /// One stealing round of a search; then `Machine::round_ended`.
    Search,
    /// The search nap between two rounds; then `Machine::napped`.
    Nap,
    /// Go to sleep: `Machine::fall_asleep` (under the own lock).
    FallAsleep,
    /// The last look before sleeping: one round locking every victim; then
    /// `Machine::round_ended`.
    LastLook,
    /// Asleep until a post claims the wake-up (or shutdown); then `Machine::woke`.
    Park,
}

/// One worker's step machine (see the module doc).
#[derive(Debug)]
pub(crate) struct Machine {
    /// The step the driver performs now.
    step: Step,
    /// The worker's core.
    w: usize,
    /// Whether this worker may search and take the last look (every worker of the threaded
    /// runtime; the simulator's thief-count experiment lets only some).
    may_steal: bool,
    /// Counted as a searcher (`Idle::searching`). Not derivable from `step`: `FallAsleep`
    /// follows a search (still counted) or an idle period that never searched.
    searching: bool,
}

impl Machine {
    /// The machine of core `w`'s worker, at `Work`.
    pub(crate) fn new(w: usize, may_steal: bool) -> Machine {
        Machine {
            step: Step::Work,
            w,
            may_steal,
            searching: false,
        }
    }

    /// The step to perform now.
    #[inline]
    pub(crate) fn step(&self) -> Step {
        self.step
    }

    /// Let this worker steal or not (takes effect at its next idle period).
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn set_may_steal(&mut self, may: bool) {
        self.may_steal = may;
    }

    /// Whether this worker counts as a sleeper now (`Idle::sleepers`): exactly in `LastLook`
    /// and `Park`, between a `fall_asleep` that put the core to sleep and the `Work` after it.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn is_sleeper(&self) -> bool {
        matches!(self.step, Step::LastLook | Step::Park)
    }

    /// Whether this worker counts as a searcher now.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn is_searching(&self) -> bool {
        self.searching
    }

    fn expect(&self, steps: &[Step], what: &str) {
        assert!(
            steps.contains(&self.step),
            "core {}: {what} in step {:?}",
            self.w,
            self.step
        );
    }

    /// `Work` found the own queue empty: search if this worker may (rule 1), else go to sleep.
    pub(crate) fn queue_empty(&mut self, sh: &Shared) -> Step {
        self.expect(&[Step::Work], "queue_empty");
        self.searching = self.may_steal && begin_idle(sh);
        self.step = if self.searching {
            Step::Search
        } else {
            Step::FallAsleep
        };
        self.step
    }

    /// A stealing round (`Search` or `LastLook`) ended; `stole`: it moved work to the own
    /// queue. For a search that stole nothing, `searched` (cycles since the idle period began;
    /// ignored when idle workers spin) against `search_cycles` decides between a nap and
    /// sleep.
    pub(crate) fn round_ended<D: Design>(
        &mut self,
        sh: &Shared,
        owner: &mut Owner<'_, D>,
        stole: bool,
        searched: u64,
        search_cycles: u64,
    ) -> Step {
        self.expect(&[Step::Search, Step::LastLook], "round_ended");
        self.step = match (self.step, stole) {
            (Step::Search, true) => {
                self.searching = false;
                found_work(sh, self.w);
                Step::Work
            }
            (Step::Search, false) => {
                match after_round(sh, owner.state().len(), searched, search_cycles) {
                    AfterRound::Stop => {
                        self.searching = false;
                        sh.idle().end_search();
                        Step::Work
                    }
                    AfterRound::Again => Step::Search,
                    AfterRound::Nap => Step::Nap,
                    AfterRound::Sleep => Step::FallAsleep,
                }
            }
            (_, true) => {
                cancel_sleep(sh, owner);
                Step::Work
            }
            (_, false) => Step::Park,
        };
        self.step
    }

    /// The nap between two rounds is over.
    pub(crate) fn napped(&mut self) -> Step {
        self.expect(&[Step::Nap], "napped");
        self.step = Step::Search;
        self.step
    }

    /// Mark the core asleep under its own lock (if its queue is still empty and the runtime
    /// runs), count it a sleeper, and end its search if it searched (rule 3).
    pub(crate) fn fall_asleep<D: Design>(&mut self, sh: &Shared, owner: &mut Owner<'_, D>) -> Step {
        self.expect(&[Step::FallAsleep], "fall_asleep");
        let searching = std::mem::take(&mut self.searching);
        self.step = match fall_asleep(sh, owner, searching) {
            None => Step::Work,
            Some(last_look) => {
                if last_look && self.may_steal {
                    Step::LastLook
                } else {
                    Step::Park
                }
            }
        };
        self.step
    }

    /// The park is over: a post claimed the wake-up, or shutdown.
    pub(crate) fn woke<D: Design>(&mut self, sh: &Shared, owner: &mut Owner<'_, D>) -> Step {
        self.expect(&[Step::Park], "woke");
        end_sleep(sh, owner);
        self.step = Step::Work;
        self.step
    }
}

// The idle protocol's steps (rules 1-3 of `idle`), taken by the machine's transitions and by
// the reactor's path to its poll (`worker::Ops::begin_polling`).

/// Rule 1: an idle worker starts searching if it may (the runtime steals, and fewer than half
/// the workers search; with `IdleMode::Spin`, whatever the count). True if it now searches (it
/// must end with [`found_work`], `sh.idle().end_search()` or [`fall_asleep`]).
pub(crate) fn begin_idle(sh: &Shared) -> bool {
    let stealing = sh.stealing();
    if stealing.spin {
        sh.idle().begin_search_uncapped();
        return true;
    }
    stealing.on && sh.idle().try_begin_search()
}

/// Rule 2: the searcher on core `w` stole; it stops searching and, if it was the last
/// searcher, wakes a sleeper to search in its place.
pub(crate) fn found_work(sh: &Shared, w: usize) {
    let last = sh.idle().end_search();
    if sh.idle().should_wake_successor(last) {
        sh.wake_thief(w);
    }
}

/// Rule 3 up to the last look: mark `owner`'s core asleep (if its queue is still empty), count
/// it a sleeper, stop searching if it was. `None`: it did not fall asleep (work or shutdown).
/// `Some(true)`: it is asleep and must take the last look (one steal round locking every
/// victim), calling [`cancel_sleep`] if that steals; `Some(false)`: asleep, no look needed.
pub(crate) fn fall_asleep<D: Design>(
    sh: &Shared,
    owner: &mut Owner<'_, D>,
    searching: bool,
) -> Option<bool> {
    let asleep = owner.begin_sleep(Sleep::Parked, || !sh.is_shutdown());
    if !asleep {
        if searching {
            sh.idle().end_search();
        }
        return None;
    }
    sh.idle().begin_sleep();
    if searching {
        sh.idle().end_search();
    }
    Some(last_look_due(sh))
}

/// Whether a worker that just fell asleep (in the idle protocol or in the reactor's poll) must
/// take the last look: the runtime steals and no worker searches any more (rule 3 of `idle`).
pub(crate) fn last_look_due(sh: &Shared) -> bool {
    sh.stealing().on && sh.idle().searching() == 0
}

/// The last look stole: the sleep [`fall_asleep`] began is cancelled.
pub(crate) fn cancel_sleep<D: Design>(sh: &Shared, owner: &mut Owner<'_, D>) {
    owner.wake_up();
    sh.idle().end_sleep();
}

/// A sleep (a park, or the reactor's poll) is over, whether or not a post claimed the wake-up:
/// the worker is no longer a sleeper and its core runs.
pub(crate) fn end_sleep<D: Design>(sh: &Shared, owner: &mut Owner<'_, D>) {
    sh.idle().end_sleep();
    owner.wake_up();
}

/// What a searching worker does after a stealing round that stole nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AfterRound {
    /// Work arrived in its own queue, or the runtime shuts down: the search ends.
    Stop,
    /// Another round at once (`IdleMode::Spin`: no nap, no end).
    Again,
    /// Nap the search nap (`SEARCH_NAP`, 20 us), then another round.
    Nap,
    /// The search time is over: the worker goes to sleep (rule 3 of `idle`).
    Sleep,
}

/// The search's decision after a round that stole nothing: `own_len` is the searcher's
/// published queue length, `searched` the cycles since its idle period began (ignored when idle
/// workers spin), `search_cycles` the search time (`search_us` in cycles).
fn after_round(sh: &Shared, own_len: usize, searched: u64, search_cycles: u64) -> AfterRound {
    if own_len > 0 || sh.is_shutdown() {
        AfterRound::Stop
    } else if sh.stealing().spin {
        AfterRound::Again
    } else if searched > search_cycles {
        AfterRound::Sleep
    } else {
        AfterRound::Nap
    }
}
