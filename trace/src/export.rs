//! Export to the Chrome/Perfetto trace-event JSON format (the "JSON Object Format":
//! `{"traceEvents": [...], "displayTimeUnit": "ns", "otherData": {...}}`), the format Perfetto
//! UI and `chrome://tracing` read.
//!
//! The mapping (all events in process [`PID`], one thread track per core, named `core N`,
//! `tid` = N + 1, see [`tid`]):
//! - process and thread names, and the tracks' order, as metadata events (`"ph":"M"`);
//! - an event run: a complete event (`"ph":"X"`, category `run`) named by its handler, args
//!   `color` and, when known, `seq` (its posting sequence number within its color);
//! - a steal attempt: a complete event on the thief's track (category `steal`, named
//!   `steal from core V`, args `victim`, `outcome`, `colors`, `events`, `nodes`, and the lock
//!   times in cycles) with its `lock wait` and `lock hold` parts as nested complete events
//!   (category `lock`); a successful steal also puts a `robbed by core T` slice (category
//!   `robbed`) on the victim's track for the time its lock was held, and a flow from that slice
//!   to the thief's `lock hold` (`"ph":"s"` on the victim, `"ph":"f"` with `"bp":"e"` on the
//!   thief, one `id` per steal), which the viewers draw as an arrow from victim to thief;
//! - a state (`idle`, `search`, `nap`, `sleep`): a complete event (category `state`) from its
//!   record to the core's next state record (or the end of recording); `busy` is left out (the
//!   runs show it) and `wake` is an instant (`"ph":"i"`);
//! - the queue length at each state record: a counter (`"ph":"C"`) named `queue core N`;
//! - a remote post and a color remap: instants on the core that did them.
//!
//! Times: `ts` and `dur` are microseconds since the metadata's origin, converted from cycles
//! with the metadata's `cycles_per_us`. A viewer requires the complete events of one track to
//! nest; the exporter guarantees it: runs are never changed (a slice that a run starts inside of
//! and outlasts ends where the run starts), and any other slice that crosses the end of an
//! enclosing slice is cut there (arg `clipped: true` on the slices cut).
//!
//! `otherData` holds the configuration, the fidelity mode, whether the run was simulated, the
//! conversion rate, the bound (ring or window) and each core's kept and dropped records, and
//! the run's counters for the window when the caller took them (what [`crate::check`]
//! compares the trace's counts with).

use crate::record::{Bound, Record, State, StealOutcome, Trace, TraceBuf, NO_SEQ};
use serde_json::{json, Map, Value};
use std::io::Write;
use std::path::Path;

/// The process id of every event.
pub const PID: u64 = 1;

/// Core `core`'s thread id: `core + 1`, since Perfetto's process model reserves thread 0 for
/// the idle task.
pub fn tid(core: usize) -> u64 {
    core as u64 + 1
}

/// The format tag in `otherData.format`, which the parser checks.
pub const FORMAT: &str = "colored-trace/1";

/// Why a trace could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The conversion rate is not a positive finite number.
    #[error("cycles per microsecond must be a positive finite number, not {0}")]
    BadRate(f64),
    /// Serializing or writing failed.
    #[error("writing the trace")]
    Write(#[from] serde_json::Error),
    /// The output file could not be created or flushed.
    #[error("writing the trace to {path}")]
    File {
        /// The output file.
        path: String,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
}

/// A complete event's content, kept compact until it is written.
#[derive(Clone, Copy, Debug)]
enum What {
    Run {
        color: u32,
        handler: u16,
        seq: u64,
    },
    State(State),
    Steal {
        victim: u16,
        outcome: StealOutcome,
        colors: u16,
        events: u32,
        nodes: u16,
        lock_wait: u32,
        lock_hold: u32,
    },
    Robbed {
        thief: usize,
        events: u32,
    },
    LockWait,
    LockHold,
}

impl What {
    /// Rank in a tie of start and end: the first encloses the others.
    fn rank(&self) -> u8 {
        match self {
            What::Run { .. } => 0,
            What::State(_) => 1,
            What::Steal { .. } => 2,
            What::Robbed { .. } => 3,
            What::LockWait => 4,
            What::LockHold => 5,
        }
    }

    fn is_run(&self) -> bool {
        matches!(self, What::Run { .. })
    }

    fn cat(&self) -> &'static str {
        match self {
            What::Run { .. } => "run",
            What::State(_) => "state",
            What::Steal { .. } => "steal",
            What::Robbed { .. } => "robbed",
            What::LockWait | What::LockHold => "lock",
        }
    }

    fn name(&self, handler_names: &[String]) -> String {
        match *self {
            What::Run { handler, .. } => handler_names
                .get(usize::from(handler))
                .cloned()
                .unwrap_or_else(|| format!("handler {handler}")),
            What::State(s) => s.name().into(),
            What::Steal { victim, .. } => format!("steal from core {victim}"),
            What::Robbed { thief, .. } => format!("robbed by core {thief}"),
            What::LockWait => "lock wait".into(),
            What::LockHold => "lock hold".into(),
        }
    }

    fn args(&self) -> Map<String, Value> {
        let mut a = Map::new();
        let mut put = |k: &str, v: Value| {
            a.insert(k.into(), v);
        };
        match *self {
            What::Run { color, seq, .. } => {
                put("color", color.into());
                if seq != NO_SEQ {
                    put("seq", seq.into());
                }
            }
            What::Steal {
                victim,
                outcome,
                colors,
                events,
                nodes,
                lock_wait,
                lock_hold,
            } => {
                put("victim", victim.into());
                put("outcome", outcome.name().into());
                put("colors", colors.into());
                put("events", events.into());
                put("nodes", nodes.into());
                put("lock_wait_cycles", lock_wait.into());
                put("lock_hold_cycles", lock_hold.into());
            }
            What::Robbed { thief, events } => {
                put("thief", thief.into());
                put("events", events.into());
            }
            What::State(_) | What::LockWait | What::LockHold => {}
        }
        a
    }
}

/// Which end of a steal's flow a slice carries.
#[derive(Clone, Copy, Debug)]
enum Flow {
    Out(u64),
    In(u64),
}

/// A complete event before it is written.
struct Slice {
    start: u64,
    end: u64,
    what: What,
    flow: Option<Flow>,
    clipped: bool,
}

impl Slice {
    fn new(start: u64, end: u64, what: What) -> Slice {
        Slice {
            start,
            end,
            what,
            flow: None,
            clipped: false,
        }
    }
}

/// Cycles to microseconds since the origin.
struct Clock {
    origin: u64,
    cycles_per_us: f64,
}

impl Clock {
    fn us(&self, c: u64) -> f64 {
        // Signed, so a record before the origin gets a negative time instead of a huge one.
        (i128::from(c) - i128::from(self.origin)) as f64 / self.cycles_per_us
    }
}

/// Events written one at a time, comma-separated.
struct Out<W: Write> {
    w: W,
    first: bool,
}

impl<W: Write> Out<W> {
    fn event(&mut self, v: &Value) -> Result<(), serde_json::Error> {
        if !self.first {
            self.w.write_all(b",").map_err(serde_json::Error::io)?;
        }
        self.first = false;
        serde_json::to_writer(&mut self.w, v)
    }
}

/// The trace as a JSON value (built in memory: for small traces and tests; [`write()`] and
/// [`write_file`] stream).
pub fn to_json(trace: &Trace) -> Result<Value, ExportError> {
    let mut bytes = Vec::new();
    write(trace, &mut bytes)?;
    Ok(serde_json::from_slice(&bytes)?)
}

/// Write the trace as JSON to `w`, one event at a time: besides the buffers, memory holds
/// only each track's complete events in a compact form (for the nesting) while it is written.
pub fn write(trace: &Trace, mut w: impl Write) -> Result<(), ExportError> {
    let rate = trace.meta.cycles_per_us;
    if !(rate.is_finite() && rate > 0.0) {
        return Err(ExportError::BadRate(rate));
    }
    let clock = Clock {
        origin: trace.meta.origin.or(trace.first_cycle()).unwrap_or(0),
        cycles_per_us: rate,
    };
    let end = trace.meta.end.or(trace.last_cycle()).unwrap_or(0);
    let io = serde_json::Error::io;
    w.write_all(b"{\"traceEvents\":[").map_err(io)?;
    let mut out = Out { w, first: true };
    // Every core with a buffer, and every victim named by a steal.
    let mut cores: Vec<usize> = trace.cores.iter().map(TraceBuf::core).collect();
    for b in &trace.cores {
        cores.extend(b.records().filter_map(|r| match *r {
            Record::Steal {
                victim,
                outcome: StealOutcome::Stolen,
                ..
            } => Some(usize::from(victim)),
            _ => None,
        }));
    }
    cores.sort_unstable();
    cores.dedup();
    for e in metadata_events(trace, cores.iter().copied()) {
        out.event(&e)?;
    }
    // Flow ids: a successful steal's is its rank among all successful steals, in the order of
    // `trace.cores` and of each buffer, so each track can be built on its own.
    let mut first_flow = Vec::with_capacity(trace.cores.len());
    let mut flows = 0u64;
    for b in &trace.cores {
        first_flow.push(flows);
        flows += b.records().filter(|r| is_stolen(r)).count() as u64;
    }
    for &core in &cores {
        let mut slices = Vec::new();
        for (i, b) in trace.cores.iter().enumerate() {
            track_slices(b, core, end, first_flow[i], &mut slices);
        }
        nest(&mut slices);
        write_slices(core, &slices, &clock, &trace.meta.handler_names, &mut out)?;
    }
    for b in &trace.cores {
        write_instants(b, &clock, &mut out)?;
    }
    let mut w = out.w;
    w.write_all(b"],\"displayTimeUnit\":\"ns\",\"otherData\":")
        .map_err(io)?;
    serde_json::to_writer(&mut w, &other_data(trace, &clock))?;
    w.write_all(b"}").map_err(io)?;
    Ok(())
}

/// Write the trace as JSON to the file `path` (created or truncated).
pub fn write_file(trace: &Trace, path: &Path) -> Result<(), ExportError> {
    let file_err = |source| ExportError::File {
        path: path.display().to_string(),
        source,
    };
    let f = std::fs::File::create(path).map_err(file_err)?;
    let mut w = std::io::BufWriter::new(f);
    write(trace, &mut w)?;
    w.flush().map_err(file_err)
}

fn is_stolen(r: &Record) -> bool {
    matches!(
        r,
        Record::Steal {
            outcome: StealOutcome::Stolen,
            ..
        }
    )
}

/// The complete events buffer `b` puts on core `core`'s track: its runs, states and steals
/// if it is that core's buffer, and the `robbed` slices of its steals from that core.
/// `flow` is the id of `b`'s first successful steal, less one.
fn track_slices(b: &TraceBuf, core: usize, end: u64, mut flow: u64, out: &mut Vec<Slice>) {
    let own = b.core() == core;
    let mut state: Option<(u64, State)> = None;
    for r in b.records() {
        if is_stolen(r) {
            flow += 1;
        }
        match *r {
            Record::Run {
                start,
                end,
                color,
                handler,
                seq,
            } if own => {
                let what = What::Run {
                    color,
                    handler,
                    seq,
                };
                out.push(Slice::new(start, end.max(start), what));
            }
            Record::Steal { .. } => steal_slices(b.core(), core, r, flow, out),
            Record::State { at, state: s, .. } if own => {
                if let Some((since, prev)) = state.replace((at, s)) {
                    state_slice(since, at, prev, out);
                }
            }
            _ => {}
        }
    }
    if let Some((since, prev)) = state {
        state_slice(since, end.max(since), prev, out);
    }
}

/// The slice of a state that lasted `[since, until)`, if the state is drawn as one.
fn state_slice(since: u64, until: u64, s: State, out: &mut Vec<Slice>) {
    if !matches!(s, State::Busy | State::Wake) && until > since {
        out.push(Slice::new(since, until, What::State(s)));
    }
}

/// A steal attempt's slices on track `core`: on the thief's, the attempt and its lock parts;
/// on the victim's, for a successful one, the `robbed` slice. The two ends of flow `flow`.
fn steal_slices(thief: usize, core: usize, r: &Record, flow: u64, out: &mut Vec<Slice>) {
    let Record::Steal {
        start,
        dur,
        lock_wait,
        lock_hold,
        events,
        victim,
        colors,
        nodes,
        outcome,
    } = *r
    else {
        return;
    };
    let locked = start.saturating_add(u64::from(lock_wait));
    // A flow needs a slice at each end: a zero-length hold gets one cycle.
    let unlocked = locked.saturating_add(u64::from(lock_hold)).max(locked + 1);
    let stolen = outcome == StealOutcome::Stolen;
    if core == thief {
        let what = What::Steal {
            victim,
            outcome,
            colors,
            events,
            nodes,
            lock_wait,
            lock_hold,
        };
        out.push(Slice::new(
            start,
            start.saturating_add(u64::from(dur)),
            what,
        ));
        if lock_wait > 0 {
            out.push(Slice::new(start, locked, What::LockWait));
        }
        if lock_hold > 0 || stolen {
            let mut s = Slice::new(locked, unlocked, What::LockHold);
            s.flow = stolen.then_some(Flow::In(flow));
            out.push(s);
        }
    }
    if stolen && core == usize::from(victim) {
        let mut s = Slice::new(locked, unlocked, What::Robbed { thief, events });
        s.flow = Some(Flow::Out(flow));
        out.push(s);
    }
}

/// Make one track's slices nest: sorted by start (longest first, then by [`What::rank`]), a
/// slice that crosses the end of the innermost open one is cut at that end, unless it is a
/// run, which cuts the open slice at its own start instead. Two runs that overlap are left as
/// they are (the checker reports them). Slices cut to nothing are removed.
fn nest(slices: &mut Vec<Slice>) {
    slices.sort_by(|a, b| {
        let key = |s: &Slice| (s.start, std::cmp::Reverse(s.end), s.what.rank());
        key(a).cmp(&key(b))
    });
    let mut open: Vec<usize> = Vec::new();
    for i in 0..slices.len() {
        while let Some(&top) = open.last() {
            let (t, s) = (&slices[top], &slices[i]);
            if t.end <= s.start {
                open.pop();
            } else if s.end <= t.end || (s.what.is_run() && t.what.is_run()) {
                break;
            } else if s.what.is_run() {
                let cut = s.start;
                let t = &mut slices[top];
                t.end = cut;
                t.clipped = true;
                open.pop();
            } else {
                let cut = t.end;
                let s = &mut slices[i];
                s.end = cut;
                s.clipped = true;
                break;
            }
        }
        open.push(i);
    }
    slices.retain(|s| s.end > s.start || (s.what.is_run() && !s.clipped));
}

/// The complete events and flow ends of one track.
fn write_slices<W: Write>(
    core: usize,
    slices: &[Slice],
    clock: &Clock,
    names: &[String],
    out: &mut Out<W>,
) -> Result<(), serde_json::Error> {
    for s in slices {
        let ts = clock.us(s.start);
        let dur = clock.us(s.end) - ts;
        let mut args = s.what.args();
        if s.clipped {
            args.insert("clipped".into(), true.into());
        }
        out.event(
            &json!({"ph": "X", "cat": s.what.cat(), "name": s.what.name(names),
                          "pid": PID, "tid": tid(core), "ts": ts, "dur": dur, "args": args}),
        )?;
        if let Some(flow) = s.flow {
            let mid = ts + dur / 2.0;
            out.event(&match flow {
                Flow::Out(id) => json!({"ph": "s", "cat": "steal", "name": "steal", "id": id,
                                        "pid": PID, "tid": tid(core), "ts": mid}),
                Flow::In(id) => json!({"ph": "f", "bp": "e", "cat": "steal", "name": "steal",
                                       "id": id, "pid": PID, "tid": tid(core), "ts": mid}),
            })?;
        }
    }
    Ok(())
}

/// A buffer's instants (posts, remaps, wake-ups) and queue-length counters.
fn write_instants<W: Write>(
    b: &TraceBuf,
    clock: &Clock,
    out: &mut Out<W>,
) -> Result<(), serde_json::Error> {
    let core = b.core();
    let instant = |at: u64, cat: &str, name: String, args: Value| {
        json!({"ph": "i", "s": "t", "cat": cat, "name": name, "pid": PID, "tid": tid(core),
               "ts": clock.us(at), "args": args})
    };
    for r in b.records() {
        match *r {
            Record::Post { at, color, target } => out.event(&instant(
                at,
                "post",
                format!("post to core {target}"),
                json!({"color": color, "target": target}),
            ))?,
            Record::Remap {
                at,
                color,
                from,
                to,
            } => out.event(&instant(
                at,
                "remap",
                format!("remap color {color}"),
                json!({"color": color, "from": from, "to": to}),
            ))?,
            Record::State {
                at,
                queue_len,
                state,
            } => {
                if state == State::Wake {
                    let args = json!({ "queue_len": queue_len });
                    out.event(&instant(at, "state", "wake".into(), args))?;
                }
                out.event(
                    &json!({"ph": "C", "name": format!("queue core {core}"), "pid": PID,
                                  "tid": tid(core), "ts": clock.us(at), "args": {"len": queue_len}}),
                )?;
            }
            Record::Run { .. } | Record::Steal { .. } => {}
        }
    }
    Ok(())
}

/// Process and thread names and the tracks' order.
fn metadata_events(trace: &Trace, cores: impl Iterator<Item = usize>) -> Vec<Value> {
    let kind = if trace.meta.simulated {
        "simulated"
    } else {
        "real"
    };
    let mut v = vec![
        json!({"ph": "M", "name": "process_name", "pid": PID, "tid": 0,
                            "args": {"name": format!("colored runtime ({kind})")}}),
    ];
    for c in cores {
        v.push(
            json!({"ph": "M", "name": "thread_name", "pid": PID, "tid": tid(c),
                      "args": {"name": format!("core {c}")}}),
        );
        v.push(
            json!({"ph": "M", "name": "thread_sort_index", "pid": PID, "tid": tid(c),
                      "args": {"sort_index": c}}),
        );
    }
    v
}

/// `otherData`: what the run was and how the trace was bounded.
fn other_data(trace: &Trace, clock: &Clock) -> Value {
    let m = &trace.meta;
    let configuration: Map<String, Value> = m
        .configuration
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect();
    let cores: Vec<Value> = trace
        .cores
        .iter()
        .map(|b| json!({"core": b.core(), "kept": b.len(), "seen": b.seen(), "dropped": b.dropped()}))
        .collect();
    let bound = match trace.cores.first().map(TraceBuf::bound) {
        None => Value::Null,
        Some(Bound::Ring { capacity }) => json!({"mode": "ring", "capacity": capacity}),
        Some(Bound::Window {
            from,
            len,
            capacity,
        }) => json!({"mode": "window", "from_cycles": from, "for_cycles": len,
                     "from_us": clock.us(from), "for_us": len as f64 / clock.cycles_per_us,
                     "capacity": capacity}),
    };
    let counters = m.counters.map_or(
        Value::Null,
        |c| json!({"events": c.events, "steals": c.steals, "tolerance": c.tolerance}),
    );
    json!({
        "format": FORMAT,
        "configuration": configuration,
        "fidelity": m.fidelity,
        "simulated": m.simulated,
        "clock": if m.simulated { "simulated cycles" } else { "cycle counter" },
        "cycles_per_us": m.cycles_per_us,
        "origin_cycles": clock.origin,
        "bound": bound,
        "cores": cores,
        "counters": counters,
    })
}
