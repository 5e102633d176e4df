//! A core: its queue, the atomics others read without its lock, and the three handles that
//! decide who may do what with them.
//!
//! Each core has two parts, kept apart so that code reading an integer needs no knowledge of the
//! queue design:
//! - a [`CoreQueue<D>`]: the design's queue state behind the core lock (generic over
//!   [`Design`]);
//! - a [`CoreState`]: the published queue length and the owning worker's sleep state (plain
//!   atomics, not generic).
//!
//! The handles, as tokio's `Local`/`Steal` and crossbeam's `Worker`/`Stealer`:
//! - [`Owner`]: held by the one worker that owns the core; never cloned. A worker claims it once,
//!   when it starts, and keeps it until it exits; the step-by-step drivers without threads (the
//!   model, the simulator) claim it for one step of the core they play and give it back. Claiming
//!   a core that has an owner panics, so there is never more than one. Only the owner pops a
//!   batch, marks and clears the running set, and puts its core to sleep ([`Sleep`]).
//! - [`Stealer`]: one per core, shared. Its only operation steals from that core *into an
//!   [`Owner`]*, so a thief can only steal into the queue it owns.
//! - [`Poster`]: one per core, shared. Pushes events (the post protocol re-checks the color map
//!   under the lock, see `shared`) and moves a color between two cores (placement).
//!
//! Invariants (who may touch what):
//! - The queue state is only touched with the core lock held: by the owner (pop), by a poster
//!   (push), by a thief (steal, holding the victim's *and* its own lock, taken in core index
//!   order so two thieves cannot deadlock), and by a placement (same two locks).
//! - The running set (the slots of the batch the owner popped and has not finished; one slot
//!   for libasync, up to 16 for Mely's multi-color batches) lives under the lock. The owner
//!   replaces it when it pops the next batch, in the same critical section that first enqueues
//!   what the finished batch posted to its own core, and empties it when it finds nothing to
//!   pop. A thief (or a placement) reads it under the victim's lock and never takes a slot of
//!   it. So a stolen color's next event runs only after the previous one finished, and after
//!   the events that one posted to this core were enqueued (the lock orders both).
//! - `len` mirrors the number of queued events and is written under the lock; reads without the
//!   lock are hints (most-loaded victim, a thief skipping an empty victim).
//! - The sleep state is set to asleep ([`Sleep::Parked`] or [`Sleep::Polling`]) only by the
//!   owner under its lock after it saw its queue empty, and read by posters under the same lock
//!   after they enqueued: either the poster sees the sleep state (and wakes the owner) or the
//!   owner sees the event. "Notified" is written by whoever claims the wake-up (a poster under
//!   the lock, or a compare-exchange from asleep), "running" by the owner when it wakes.

use crate::config::LockKind;
use crate::event::Event;
use crate::loom::{AtomicU8, AtomicUsize, Lock, LockGuard, Ordering};
use crate::queue::{Design, QueueParams, Running, StealChoice, Stolen};

/// How an owner sleeps, which says how to wake it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sleep {
    /// Parked in `thread::park`: a waker unparks its thread.
    Parked,
    /// Blocked in the reactor's poll: a waker wakes the mio waker.
    Polling,
}

/// The owner's sleep state as [`CoreState`] keeps it in one atomic byte: awake, asleep one of
/// the two ways, or notified (someone claimed the wake-up; the owner will notice and run).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum SleepState {
    /// Awake: running, searching for work, or about to sleep.
    Running = 0,
    /// Parked (see [`Sleep::Parked`]).
    Parked = 1,
    /// Blocked in the reactor's poll (see [`Sleep::Polling`]).
    Polling = 2,
    /// Someone already woke it (it will notice and go back to running).
    Notified = 3,
}

impl SleepState {
    /// The state of an owner asleep `how`.
    fn asleep(how: Sleep) -> SleepState {
        match how {
            Sleep::Parked => SleepState::Parked,
            Sleep::Polling => SleepState::Polling,
        }
    }

    /// How an owner in state `code` sleeps, if it does.
    fn sleeping(code: u8) -> Option<Sleep> {
        match code {
            c if c == SleepState::Parked as u8 => Some(Sleep::Parked),
            c if c == SleepState::Polling as u8 => Some(Sleep::Polling),
            _ => None,
        }
    }
}

/// The design's queue state of one core, behind the core lock. Reached only through the
/// handles below.
pub(crate) struct CoreQueue<D> {
    queue: Lock<Locked<D>>,
}

/// What the core lock protects.
struct Locked<D> {
    /// The design's queue.
    q: D,
    /// The slots of the batch the owner popped and has not finished (empty when it runs
    /// nothing).
    running: Running,
}

impl<D: Design> CoreQueue<D> {
    /// A core queue holding `queue` (allocated by the worker that will own it, after pinning),
    /// behind a lock of kind `lock`.
    pub(crate) fn new(queue: D, lock: LockKind) -> Self {
        CoreQueue {
            queue: Lock::new(
                Locked {
                    q: queue,
                    running: Running::NONE,
                },
                lock,
            ),
        }
    }
}

/// The atomics of one core that other threads read without its lock.
pub(crate) struct CoreState {
    /// Events queued (written under the core lock; a hint when read without it).
    len: AtomicUsize,
    /// The owner's sleep state (a [`SleepState`]).
    sleep: AtomicU8,
    /// An [`Owner`] of this core exists. Not part of the protocol (a check that there is one
    /// owner at most), so a plain atomic even under loom.
    owned: std::sync::atomic::AtomicBool,
}

impl CoreState {
    /// A core with nothing queued, its owner awake and not claimed yet.
    pub(crate) fn new() -> Self {
        CoreState {
            len: AtomicUsize::new(0),
            sleep: AtomicU8::new(SleepState::Running as u8),
            owned: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Events queued on the core (a hint: it may change at once).
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Claim the wake-up of an owner that sleeps (parked or polling): `Some(how)` for the one
    /// caller whose compare-exchange moved it to notified (it must then wake the owner the way
    /// it sleeps).
    pub(crate) fn claim_sleeper(&self) -> Option<Sleep> {
        [Sleep::Parked, Sleep::Polling].into_iter().find(|&how| {
            self.sleep
                .compare_exchange(
                    SleepState::asleep(how) as u8,
                    SleepState::Notified as u8,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
        })
    }

    /// Mark the owner notified whatever it is doing (shutdown).
    pub(crate) fn notify(&self) {
        self.sleep
            .store(SleepState::Notified as u8, Ordering::Release);
    }

    /// Is the owner still asleep (nobody has notified it yet)?
    #[inline]
    pub(crate) fn is_asleep(&self) -> bool {
        SleepState::sleeping(self.sleep.load(Ordering::Acquire)).is_some()
    }

    /// Called with the core lock held after giving the core work: if its owner sleeps (parked
    /// or blocked in the reactor), mark it notified and return how it slept, for the caller to
    /// wake it once the lock is released. Only one caller gets `Some` per sleep.
    #[inline]
    fn claim_wake_locked(&self) -> Option<Sleep> {
        // On every post: the common case (the owner is awake) is one load and two compares.
        let code = self.sleep.load(Ordering::Relaxed);
        if code != SleepState::Parked as u8 && code != SleepState::Polling as u8 {
            return None;
        }
        self.sleep
            .store(SleepState::Notified as u8, Ordering::Relaxed);
        SleepState::sleeping(code)
    }
}

/// Lock the queues of cores `a` and `b` (distinct) in core index order, so two threads locking
/// the same pair (two thieves stealing from each other, a steal racing a placement) cannot
/// deadlock. Returns `a`'s guard, then `b`'s.
fn lock_pair<'x, 'y, D>(
    a: usize,
    qa: &'x CoreQueue<D>,
    b: usize,
    qb: &'y CoreQueue<D>,
) -> (LockGuard<'x, Locked<D>>, LockGuard<'y, Locked<D>>) {
    debug_assert_ne!(a, b);
    if a < b {
        let ga = qa.queue.lock();
        (ga, qb.queue.lock())
    } else {
        let gb = qb.queue.lock();
        (qa.queue.lock(), gb)
    }
}

/// A core's parts, as the handles see them.
struct Parts<'a, D> {
    /// The core's index.
    index: usize,
    /// Its queue.
    queue: &'a CoreQueue<D>,
    /// Its published state.
    state: &'a CoreState,
}

// Not derived: a derive would require `D: Copy`; the parts are references.
impl<D> Clone for Parts<'_, D> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<D> Copy for Parts<'_, D> {}

/// What a push did.
pub(crate) struct Pushed {
    /// The owner slept this way and was marked notified: the caller wakes it (after the lock
    /// is released, which `push` has done).
    pub(crate) wake: Option<Sleep>,
    /// The queue now holds something a thief could take (a hint for waking a thief).
    pub(crate) stealable: bool,
}

/// The owning worker's handle on its core: the only one that pops, marks the running set and
/// puts the owner to sleep. At most one exists per core at a time ([`Owner::claim`]); not
/// `Clone`. Dropping it gives the core up.
pub(crate) struct Owner<'a, D> {
    /// The owned core.
    core: Parts<'a, D>,
}

impl<'a, D: Design> Owner<'a, D> {
    /// Claim core `index` (its queue and state): a worker does it once, when it starts; the
    /// step-by-step drivers for the step of the core they play.
    ///
    /// # Panics
    /// If the core has an owner already (a second worker, or a driver stepping one core from
    /// two threads at once).
    pub(crate) fn claim(index: usize, queue: &'a CoreQueue<D>, state: &'a CoreState) -> Self {
        let taken = state.owned.swap(true, std::sync::atomic::Ordering::Acquire);
        assert!(!taken, "core {index} already has an owner");
        Owner {
            core: Parts {
                index,
                queue,
                state,
            },
        }
    }

    /// The core this handle owns.
    #[inline]
    pub(crate) fn index(&self) -> usize {
        self.core.index
    }

    /// The core's published state.
    #[inline]
    pub(crate) fn state(&self) -> &'a CoreState {
        self.core.state
    }

    /// Under one lock: enqueue the events the finished batch posted to this core (`local`,
    /// those for which `owns(slot)` still holds; the others, whose color moved meanwhile, go to
    /// `moved` in order), then move the next batch into `out` and make it the running set (see
    /// [`Design::pop`]; empty when nothing was popped). Returns whether a batch was popped and
    /// whether the flush left something a thief could take. The finished batch's colors stay
    /// unstealable until here, so a thief never runs a color's next event before the events its
    /// previous one posted to this core are queued.
    #[inline]
    pub(crate) fn flush_and_pop(
        &mut self,
        local: &mut Vec<Event>,
        owns: impl Fn(usize) -> bool,
        mut moved: impl FnMut(Event),
        out: &mut Vec<Event>,
        batch: usize,
        p: &QueueParams,
    ) -> (bool, bool) {
        let st = self.core.state;
        let mut g = self.core.queue.queue.lock();
        let locked = &mut *g;
        let mut stealable = false;
        for ev in local.drain(..) {
            if owns(ev.color().slot()) {
                stealable |= locked.q.push(ev, p);
            } else {
                moved(ev);
            }
        }
        locked.running = Running::NONE;
        let popped = locked.q.pop(out, batch, p, &mut locked.running);
        st.len.store(locked.q.len(), Ordering::Relaxed);
        (popped, stealable)
    }

    /// The finished batch's colors may be stolen again (for a caller that does not pop next:
    /// the model's steps). Its posts to this core must be enqueued first.
    pub(crate) fn finish_batch(&mut self) {
        self.core.queue.queue.lock().running = Running::NONE;
    }

    /// Put the owner to sleep `how` if its queue is empty and `may_sleep()` (checked under the
    /// lock) allows it. True when the state was set: the owner must then sleep until the state
    /// changes, or call [`Owner::wake_up`].
    pub(crate) fn begin_sleep(&mut self, how: Sleep, may_sleep: impl FnOnce() -> bool) -> bool {
        let q = self.core.queue.queue.lock();
        if q.q.len() > 0 || !may_sleep() {
            return false;
        }
        self.core
            .state
            .sleep
            .store(SleepState::asleep(how) as u8, Ordering::Relaxed);
        true
    }

    /// Still asleep (nobody has notified the owner yet)?
    #[inline]
    pub(crate) fn is_asleep(&self) -> bool {
        self.core.state.is_asleep()
    }

    /// Back to running, whether or not someone notified the owner.
    pub(crate) fn wake_up(&mut self) {
        self.core
            .state
            .sleep
            .store(SleepState::Running as u8, Ordering::Relaxed);
    }

    /// Drop everything queued (shutdown); returns how many events were dropped.
    pub(crate) fn clear(&mut self) -> usize {
        let mut q = self.core.queue.queue.lock();
        let n = q.q.clear();
        self.core.state.len.store(0, Ordering::Relaxed);
        n
    }
}

impl<D> Drop for Owner<'_, D> {
    fn drop(&mut self) {
        self.core
            .state
            .owned
            .store(false, std::sync::atomic::Ordering::Release);
    }
}

/// A thief's handle on a victim core: its only operation steals into an [`Owner`].
pub(crate) struct Stealer<'a, D> {
    /// The victim core.
    core: Parts<'a, D>,
}

impl<'a, D: Design> Stealer<'a, D> {
    /// The thief's handle on core `index`.
    pub(crate) fn new(index: usize, queue: &'a CoreQueue<D>, state: &'a CoreState) -> Self {
        Stealer {
            core: Parts {
                index,
                queue,
                state,
            },
        }
    }

    /// Lock the victim and `thief`'s core (in index order), let the design choose colors by
    /// `choice` that are not running on the victim, move their events to the thief and call
    /// `remap(slot)` for each moved color while both locks are held. Returns the steal and the
    /// cycles the victim stayed locked while the set was chosen and moved (from `clock`, which
    /// the caller passes as the cycle counter).
    pub(crate) fn steal_into(
        &self,
        thief: &mut Owner<'_, D>,
        choice: StealChoice,
        p: &QueueParams,
        clock: impl Fn() -> u64,
        remap: &mut dyn FnMut(usize),
    ) -> StealAttempt {
        let (v, t) = (self.core, thief.core);
        let t0 = clock();
        let (mut g_victim, mut g_thief) = lock_pair(v.index, v.queue, t.index, t.queue);
        let t1 = clock();
        let running = g_victim.running;
        let (victim, dest) = (&mut g_victim.q, &mut g_thief.q);
        let stolen = D::steal(victim, dest, &running, choice, p, remap);
        if stolen.is_some() {
            v.state.len.store(victim.len(), Ordering::Relaxed);
            t.state.len.store(dest.len(), Ordering::Relaxed);
        }
        let t2 = clock();
        drop(g_thief);
        drop(g_victim);
        StealAttempt {
            stolen,
            locked_at: t0,
            acquired_at: t1,
            moved_at: t2,
        }
    }
}

/// One steal attempt, with the cycle counter read when the locks were requested, acquired, and
/// released.
#[must_use = "a steal moved events and remapped colors; account it"]
pub(crate) struct StealAttempt {
    /// What was taken, if anything.
    pub(crate) stolen: Option<Stolen>,
    /// Before asking for the locks.
    pub(crate) locked_at: u64,
    /// Both locks held.
    pub(crate) acquired_at: u64,
    /// The set was chosen and moved.
    pub(crate) moved_at: u64,
}

/// A poster's handle on a core: enqueue events, move a color between cores.
pub(crate) struct Poster<'a, D> {
    /// The core posted to.
    core: Parts<'a, D>,
}

impl<'a, D: Design> Poster<'a, D> {
    /// The poster's handle on core `index`.
    pub(crate) fn new(index: usize, queue: &'a CoreQueue<D>, state: &'a CoreState) -> Self {
        Poster {
            core: Parts {
                index,
                queue,
                state,
            },
        }
    }

    /// Lock the core and push each event of `events` for which `owns(slot)`, re-read under the
    /// lock, is still true; hand the others (their color moved meanwhile) to `moved`, in order.
    /// The lock is released before returning; the caller wakes the owner if `Pushed::wake`.
    #[inline]
    pub(crate) fn push_owned(
        &self,
        events: impl Iterator<Item = Event>,
        p: &QueueParams,
        owns: impl Fn(usize) -> bool,
        mut moved: impl FnMut(Event),
    ) -> Pushed {
        let st = self.core.state;
        let mut g = self.core.queue.queue.lock();
        let q = &mut g.q;
        let mut stealable = false;
        let mut pushed = false;
        for ev in events {
            if owns(ev.color().slot()) {
                stealable |= q.push(ev, p);
                pushed = true;
            } else {
                moved(ev);
            }
        }
        let wake = if pushed {
            st.len.store(q.len(), Ordering::Relaxed);
            st.claim_wake_locked()
        } else {
            None
        };
        drop(g);
        Pushed { wake, stealable }
    }

    /// Move every queued event of `slot` from this core to `to`, in order, calling `remap()`
    /// while both locks are held, unless `owns()` (re-read under the locks) says the slot is no
    /// longer here or the slot is running here. Returns `None` when the slot moved meanwhile
    /// (retry), `Some(Err(()))` when it is running, `Some(Ok(wake))` once moved, with the target
    /// owner's sleep state to wake if it slept.
    pub(crate) fn move_slot_to(
        &self,
        to: &Poster<'a, D>,
        slot: usize,
        p: &QueueParams,
        owns: impl Fn() -> bool,
        remap: impl FnOnce(),
    ) -> Option<Result<Option<Sleep>, ()>> {
        let (from, dst) = (self.core, to.core);
        let (mut g_src, mut g_dst) = lock_pair(from.index, from.queue, dst.index, dst.queue);
        if !owns() {
            return None;
        }
        if g_src.running.contains(slot) {
            return Some(Err(()));
        }
        let (src, dest) = (&mut g_src.q, &mut g_dst.q);
        let moved = D::move_slot(src, dest, slot, p);
        remap();
        from.state.len.store(src.len(), Ordering::Relaxed);
        dst.state.len.store(dest.len(), Ordering::Relaxed);
        let wake = if moved > 0 {
            dst.state.claim_wake_locked()
        } else {
            None
        };
        drop(g_dst);
        drop(g_src);
        Some(Ok(wake))
    }
}
