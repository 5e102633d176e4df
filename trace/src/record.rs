//! Recording: the records a worker (or a simulated core) writes, its bounded buffer, and the
//! switch that makes the whole thing cost one branch when tracing is off.
//!
//! A [`Record`] is a 32-byte `Copy` value with timestamps in cycles of the caller's clock: the
//! runtime's cycle counter (`colored_runtime::tsc`) for real runs, the simulated clock for the
//! simulator. Nothing here reads a clock, takes a lock or touches an atomic.
//!
//! Invariants:
//! 1. A [`TraceBuf`] belongs to one worker (one core's track); only that worker pushes to it, so
//!    it needs no synchronization. Buffers are handed over (moved) when the run ends.
//! 2. A buffer never holds more than the capacity it was built with: its memory is allocated
//!    once, at construction, and never grows.
//! 3. In window mode, a record is kept only if its start time `t` satisfies
//!    `from <= t < from + len` (one wrapping subtraction and one comparison); once the window's
//!    capacity is used up, later records are dropped and counted. In ring mode the window is
//!    the whole clock and, when full, the newest record overwrites the oldest (also counted).
//!    Records of one buffer are kept in the order they were pushed.

/// A record's per-color posting sequence number when the caller does not know it.
pub const NO_SEQ: u64 = u64::MAX;

/// Records a buffer holds unless told otherwise (8 MiB of 32-byte records per worker): 50 ms
/// of `unbalanced` at about a million events per second per core, with its transitions.
pub const DEFAULT_CAPACITY: usize = 1 << 18;

/// Saturating conversion of a cycle count to the 32 bits a [`Record::Steal`] keeps for its
/// durations (4.29e9 cycles, over a second at 3 GHz: far beyond any steal).
#[inline]
pub fn sat32(x: u64) -> u32 {
    u32::try_from(x).unwrap_or(u32::MAX)
}

/// Saturating conversion to 16 bits (core numbers, color counts, visited nodes).
#[inline]
pub fn sat16(x: u64) -> u16 {
    u16::try_from(x).unwrap_or(u16::MAX)
}

/// What a core is doing from a [`Record::State`] on, until its next state record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum State {
    /// Dispatching: the core found work and runs events (its runs are their own records).
    Busy,
    /// Out of work, not yet searching or asleep (deciding what to do next).
    Idle,
    /// Searching other cores' queues for work to steal.
    Search,
    /// A short pause between two steal attempts of one search.
    Nap,
    /// Asleep (parked, or blocked in the reactor) until a post or a thief wakes it.
    Sleep,
    /// Just woken up; what it does next is the next state record.
    Wake,
}

impl State {
    /// Every state, in declaration order.
    pub const ALL: [State; 6] = [
        State::Busy,
        State::Idle,
        State::Search,
        State::Nap,
        State::Sleep,
        State::Wake,
    ];

    /// The state's name in exported traces.
    pub fn name(self) -> &'static str {
        match self {
            State::Busy => "busy",
            State::Idle => "idle",
            State::Search => "search",
            State::Nap => "nap",
            State::Sleep => "sleep",
            State::Wake => "wake",
        }
    }

    /// The state named `name` (the inverse of [`State::name`]).
    pub fn from_name(name: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// How one steal attempt on one victim ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum StealOutcome {
    /// Events moved to the thief.
    Stolen,
    /// The victim's queue was empty once locked.
    Empty,
    /// The victim had events, but none the thief may take (their colors were running, or not
    /// worth their cost).
    Nothing,
    /// The victim was not locked: its published length said it had nothing (Mely).
    Skipped,
}

impl StealOutcome {
    /// Every outcome, in declaration order.
    pub const ALL: [StealOutcome; 4] = [
        StealOutcome::Stolen,
        StealOutcome::Empty,
        StealOutcome::Nothing,
        StealOutcome::Skipped,
    ];

    /// The outcome's name in exported traces.
    pub fn name(self) -> &'static str {
        match self {
            StealOutcome::Stolen => "stolen",
            StealOutcome::Empty => "empty",
            StealOutcome::Nothing => "nothing",
            StealOutcome::Skipped => "skipped",
        }
    }

    /// The outcome named `name` (the inverse of [`StealOutcome::name`]).
    pub fn from_name(name: &str) -> Option<StealOutcome> {
        StealOutcome::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// One thing a core did, timed in cycles of the caller's clock. The core is the buffer's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    /// One event run: handler `handler` ran an event of color `color` from `start` to `end`.
    Run {
        /// Start of the handler call.
        start: u64,
        /// End of the handler call (`>= start`).
        end: u64,
        /// The event's color.
        color: u32,
        /// The handler's id, an index into the trace's handler names.
        handler: u16,
        /// The event's posting sequence number within its color (strictly increasing in the
        /// order the events of one color were posted), or [`NO_SEQ`].
        seq: u64,
    },
    /// One steal attempt on one victim. Its time line: `lock_wait` cycles waiting for the
    /// victim's lock from `start`, then `lock_hold` cycles holding it, within `dur`.
    Steal {
        /// Start of the attempt.
        start: u64,
        /// Cycles the attempt took (saturated at `u32::MAX`).
        dur: u32,
        /// Cycles spent waiting for the victim's lock.
        lock_wait: u32,
        /// Cycles the victim stayed locked by this thief.
        lock_hold: u32,
        /// Events moved (0 unless [`StealOutcome::Stolen`]).
        events: u32,
        /// The victim core.
        victim: u16,
        /// Colors moved (0 unless [`StealOutcome::Stolen`]).
        colors: u16,
        /// Queue nodes the thief looked at while choosing what to take.
        nodes: u16,
        /// How the attempt ended.
        outcome: StealOutcome,
    },
    /// This core posted an event of color `color` to another core's queue.
    Post {
        /// When the event was enqueued.
        at: u64,
        /// The event's color.
        color: u32,
        /// The core whose queue received it.
        target: u16,
    },
    /// Color `color` was remapped from core `from` to core `to` (by a steal, or by the
    /// application).
    Remap {
        /// When the color map changed.
        at: u64,
        /// The remapped color (the colored runtime's map moves slots: it records the slot,
        /// and every color congruent to it modulo the map's size moved with it).
        color: u32,
        /// The core the color was mapped to before.
        from: u16,
        /// The core the color is mapped to now.
        to: u16,
    },
    /// The core entered `state` at `at`, with `queue_len` events in its queue.
    State {
        /// When the state began.
        at: u64,
        /// Events in the core's queue at that moment.
        queue_len: u32,
        /// The state entered.
        state: State,
    },
}

impl Record {
    /// The record's start time (its only time for instants): what a window filters on.
    #[inline(always)]
    pub fn start(&self) -> u64 {
        match *self {
            Record::Run { start, .. } | Record::Steal { start, .. } => start,
            Record::Post { at, .. } | Record::Remap { at, .. } | Record::State { at, .. } => at,
        }
    }

    /// The record's end time (its start for instants).
    pub fn end(&self) -> u64 {
        match *self {
            Record::Run { end, .. } => end,
            Record::Steal { start, dur, .. } => start.saturating_add(u64::from(dur)),
            _ => self.start(),
        }
    }
}

/// Which records a buffer keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// The newest `capacity` records.
    Ring {
        /// Records kept.
        capacity: usize,
    },
    /// Records starting in `[from, from + len)`, the first `capacity` of them.
    Window {
        /// First cycle of the window.
        from: u64,
        /// Cycles in the window.
        len: u64,
        /// Most records kept.
        capacity: usize,
    },
}

impl Bound {
    /// A window given in seconds from `origin` (the cycle at which the run started), for a
    /// clock of `cycles_per_sec`. Negative or non-finite seconds count as 0; a length that
    /// overflows the clock is cut at its end.
    pub fn window_secs(
        origin: u64,
        from_secs: f64,
        for_secs: f64,
        cycles_per_sec: f64,
        capacity: usize,
    ) -> Bound {
        let cycles = |s: f64| {
            if s.is_finite() && s > 0.0 {
                // `as` saturates a float that does not fit.
                (s * cycles_per_sec) as u64
            } else {
                0
            }
        };
        let from = origin.saturating_add(cycles(from_secs));
        let len = cycles(for_secs).min(u64::MAX - from);
        Bound::Window {
            from,
            len,
            capacity,
        }
    }

    /// Records a buffer with this bound holds at most.
    pub fn capacity(&self) -> usize {
        match *self {
            Bound::Ring { capacity } | Bound::Window { capacity, .. } => capacity,
        }
    }
}

/// One worker's records (invariants 1 to 3 of the module).
#[derive(Clone, Debug)]
pub struct TraceBuf {
    /// The core (track) the records are of.
    core: usize,
    /// Room for the records, written (so its pages are in memory) at construction: the hot
    /// path then never faults a page in or allocates.
    records: Box<[Record]>,
    /// Where the next record goes; after a ring wrapped, also its oldest record.
    next: usize,
    /// True once a ring has overwritten a record: all of `records` is then in use.
    wrapped: bool,
    /// First cycle of the window (0 for a ring).
    from: u64,
    /// Cycles in the window (`u64::MAX` for a ring: every time but the last passes).
    len: u64,
    /// True for a ring (overwrite the oldest when full), false for a window (drop the newest).
    ring: bool,
    /// Records pushed that fell inside the window (kept or dropped).
    seen: u64,
}

/// What fills a buffer's unused room (never read).
const FILLER: Record = Record::State {
    at: 0,
    queue_len: 0,
    state: State::Idle,
};

impl TraceBuf {
    /// An empty buffer for core `core`, its memory allocated and written now (invariant 2):
    /// build it on the worker's own thread, after pinning it, so the pages are the worker's
    /// node's.
    pub fn new(core: usize, bound: Bound) -> TraceBuf {
        let (from, len, ring) = match bound {
            Bound::Ring { .. } => (0, u64::MAX, true),
            Bound::Window { from, len, .. } => (from, len, false),
        };
        TraceBuf {
            core,
            records: vec![FILLER; bound.capacity()].into_boxed_slice(),
            next: 0,
            wrapped: false,
            from,
            len,
            ring,
            seen: 0,
        }
    }

    /// Keep `r` if the bound says so (invariant 3). The hot path: one comparison for the
    /// window, one for the room left; a ring wraps once every `capacity` records.
    #[inline]
    pub fn push(&mut self, r: Record) {
        if r.start().wrapping_sub(self.from) >= self.len {
            return;
        }
        self.seen += 1;
        if let Some(slot) = self.records.get_mut(self.next) {
            *slot = r;
            self.next += 1;
        } else if self.ring && !self.records.is_empty() {
            self.records[0] = r;
            self.next = 1;
            self.wrapped = true;
        }
    }

    /// The core the records are of.
    pub fn core(&self) -> usize {
        self.core
    }

    /// The records kept, oldest first (push order).
    pub fn records(&self) -> impl Iterator<Item = &Record> + '_ {
        let (older, newer) = if self.wrapped {
            let (newer, older) = self.records.split_at(self.next);
            (older, newer)
        } else {
            (&self.records[..self.next], &self.records[..0])
        };
        older.iter().chain(newer)
    }

    /// Records kept.
    pub fn len(&self) -> usize {
        if self.wrapped {
            self.records.len()
        } else {
            self.next
        }
    }

    /// True if no record was kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records the buffer holds at most.
    pub fn capacity(&self) -> usize {
        self.records.len()
    }

    /// Records inside the window lost to the capacity (overwritten or refused).
    pub fn dropped(&self) -> u64 {
        self.seen - self.len() as u64
    }

    /// Records pushed inside the window (kept plus dropped).
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// The bound the buffer was built with.
    pub fn bound(&self) -> Bound {
        if self.ring {
            Bound::Ring {
                capacity: self.capacity(),
            }
        } else {
            Bound::Window {
                from: self.from,
                len: self.len,
                capacity: self.capacity(),
            }
        }
    }
}

/// A worker's switch: tracing off is `None`, and every record call is one predictable branch.
#[derive(Clone, Debug, Default)]
pub struct Recorder {
    /// The buffer when tracing is on.
    buf: Option<TraceBuf>,
}

impl Recorder {
    /// Tracing off.
    pub const fn off() -> Recorder {
        Recorder { buf: None }
    }

    /// Tracing into `buf`.
    pub fn on(buf: TraceBuf) -> Recorder {
        Recorder { buf: Some(buf) }
    }

    /// Tracing into a new buffer for `core` when `bound` is given, off otherwise: what a worker
    /// calls with its configuration's `Option<Bound>`.
    pub fn new(core: usize, bound: Option<Bound>) -> Recorder {
        Recorder {
            buf: bound.map(|b| TraceBuf::new(core, b)),
        }
    }

    /// True if tracing is on (to skip work, such as reading the clock, that only a record
    /// needs).
    #[inline(always)]
    pub fn is_on(&self) -> bool {
        self.buf.is_some()
    }

    /// Record `r` if tracing is on.
    #[inline(always)]
    pub fn record(&mut self, r: Record) {
        if let Some(b) = &mut self.buf {
            b.push(r);
        }
    }

    /// Record what `f` builds, calling it only if tracing is on.
    #[inline(always)]
    pub fn record_with(&mut self, f: impl FnOnce() -> Record) {
        if let Some(b) = &mut self.buf {
            b.push(f());
        }
    }

    /// The buffer, leaving tracing off (at the end of the run, to hand it to the exporter).
    pub fn take(&mut self) -> Option<TraceBuf> {
        self.buf.take()
    }
}

/// The run's counters over the traced window, for the checker to compare with the trace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WindowCounters {
    /// Events run in the window.
    pub events: u64,
    /// Successful steals in the window.
    pub steals: u64,
    /// Largest difference between a count in the trace and the counter that still agrees (runs
    /// and steals that straddle the window's edges, counted by the counters but not recorded).
    pub tolerance: u64,
}

/// What the exporter says about a run besides its records.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TraceMeta {
    /// The run's configuration as name/value pairs (benchmark, runtime, stealing, workers...).
    pub configuration: Vec<(String, String)>,
    /// The fidelity mode (the simulator's, or "real").
    pub fidelity: String,
    /// True if the timestamps are the simulator's virtual cycles.
    pub simulated: bool,
    /// Cycles per microsecond of the clock the timestamps are in (the conversion to the
    /// viewer's microseconds).
    pub cycles_per_us: f64,
    /// Handler names, indexed by a run's `handler` (unnamed ids are exported as `handler N`).
    pub handler_names: Vec<String>,
    /// The cycle exported as time 0; `None`: the earliest record.
    pub origin: Option<u64>,
    /// The cycle at which recording stopped (ends the last state of each core); `None`: the
    /// latest record.
    pub end: Option<u64>,
    /// The run's counters over the window, if the caller took them.
    pub counters: Option<WindowCounters>,
}

/// Everything one traced run hands to the exporter: one buffer per core, and the metadata.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    /// The run's description.
    pub meta: TraceMeta,
    /// One buffer per core (any order: each knows its core).
    pub cores: Vec<TraceBuf>,
}

impl Trace {
    /// The earliest start of any record kept.
    pub fn first_cycle(&self) -> Option<u64> {
        self.cores
            .iter()
            .flat_map(|b| b.records())
            .map(Record::start)
            .min()
    }

    /// The latest end of any record kept.
    pub fn last_cycle(&self) -> Option<u64> {
        self.cores
            .iter()
            .flat_map(|b| b.records())
            .map(Record::end)
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(start: u64) -> Record {
        Record::Run {
            start,
            end: start.saturating_add(1),
            color: 1,
            handler: 0,
            seq: NO_SEQ,
        }
    }

    #[test]
    fn record_is_32_bytes() {
        assert_eq!(std::mem::size_of::<Record>(), 32);
    }

    #[test]
    fn ring_keeps_the_newest_in_order() {
        let mut b = TraceBuf::new(3, Bound::Ring { capacity: 4 });
        for t in 0..10 {
            b.push(run(t));
        }
        let starts: Vec<u64> = b.records().map(Record::start).collect();
        assert_eq!(starts, [6, 7, 8, 9]);
        assert_eq!(b.dropped(), 6);
        assert_eq!(b.seen(), 10);
        assert_eq!(b.core(), 3);
        assert_eq!(b.capacity(), 4);
        for t in 10..13 {
            b.push(run(t));
        }
        let starts: Vec<u64> = b.records().map(Record::start).collect();
        assert_eq!(starts, [9, 10, 11, 12]);
    }

    #[test]
    fn window_filters_and_keeps_the_first() {
        let bound = Bound::Window {
            from: 100,
            len: 50,
            capacity: 3,
        };
        let mut b = TraceBuf::new(0, bound);
        for t in [10, 99, 100, 120, 149, 150, 500, u64::MAX] {
            b.push(run(t));
        }
        let starts: Vec<u64> = b.records().map(Record::start).collect();
        assert_eq!(starts, [100, 120, 149]);
        assert_eq!(b.dropped(), 0);
        b.push(run(130));
        assert_eq!(b.len(), 3);
        assert_eq!(b.dropped(), 1);
        assert_eq!(b.bound(), bound);
    }

    #[test]
    fn zero_capacity_drops_everything() {
        let mut b = TraceBuf::new(0, Bound::Ring { capacity: 0 });
        b.push(run(1));
        assert!(b.is_empty());
        assert_eq!(b.dropped(), 1);
    }

    #[test]
    fn window_secs_converts_and_saturates() {
        let b = Bound::window_secs(1_000, 0.5, 0.05, 2e9, 8);
        assert_eq!(
            b,
            Bound::Window {
                from: 1_000 + 1_000_000_000,
                len: 100_000_000,
                capacity: 8
            }
        );
        let b = Bound::window_secs(u64::MAX - 10, f64::NAN, 1e30, 1e9, 8);
        assert_eq!(
            b,
            Bound::Window {
                from: u64::MAX - 10,
                len: 10,
                capacity: 8
            }
        );
    }

    #[test]
    fn recorder_off_records_nothing_and_skips_the_closure() {
        let mut r = Recorder::new(0, None);
        assert!(!r.is_on());
        r.record_with(|| unreachable!("tracing is off"));
        assert!(r.take().is_none());
        let mut r = Recorder::new(1, Some(Bound::Ring { capacity: 2 }));
        r.record(run(5));
        r.record_with(|| run(6));
        let b = r.take().expect("tracing was on");
        assert_eq!(b.len(), 2);
        assert!(!r.is_on());
    }

    #[test]
    fn names_round_trip() {
        for s in State::ALL {
            assert_eq!(State::from_name(s.name()), Some(s));
        }
        for o in StealOutcome::ALL {
            assert_eq!(StealOutcome::from_name(o.name()), Some(o));
        }
    }
}
