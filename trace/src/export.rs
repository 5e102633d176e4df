//! Export to the Chrome/Perfetto trace-event JSON format (the "JSON Object Format":
//! `{"traceEvents": [...], "displayTimeUnit": "ns", "otherData": {...}}`), which Perfetto UI,
//! `chrome://tracing` and Speedscope open without our code.
//!
//! The mapping (all events in process [`PID`], one thread track per core, `tid` = core):
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
//! nest; the exporter guarantees it: runs are never changed, and any other slice that crosses
//! the end of an enclosing slice is cut there (arg `clipped: true`).
//!
//! `otherData` holds the configuration, the fidelity mode, whether the run was simulated, the
//! conversion rate, the bound (ring or window) and each core's kept and dropped records, and
//! the run's counters for the window when the caller took them (what [`crate::check`]
//! compares the trace's counts with).

use crate::record::{Bound, Record, State, StealOutcome, Trace, TraceBuf, NO_SEQ};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// The process id of every event.
pub const PID: u64 = 1;

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

/// The kinds of complete events, in the order that wins a tie of start and end (the first
/// encloses the others).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Run,
    State,
    Steal,
    Robbed,
    LockWait,
    LockHold,
}

impl Kind {
    fn cat(self) -> &'static str {
        match self {
            Kind::Run => "run",
            Kind::State => "state",
            Kind::Steal => "steal",
            Kind::Robbed => "robbed",
            Kind::LockWait | Kind::LockHold => "lock",
        }
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
    kind: Kind,
    name: String,
    args: Map<String, Value>,
    flow: Option<Flow>,
    clipped: bool,
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

/// The trace as a JSON value.
pub fn to_json(trace: &Trace) -> Result<Value, ExportError> {
    let rate = trace.meta.cycles_per_us;
    if !(rate.is_finite() && rate > 0.0) {
        return Err(ExportError::BadRate(rate));
    }
    let clock = Clock {
        origin: trace.meta.origin.or(trace.first_cycle()).unwrap_or(0),
        cycles_per_us: rate,
    };
    let end = trace.meta.end.or(trace.last_cycle()).unwrap_or(0);
    let mut tracks: BTreeMap<usize, Vec<Slice>> = BTreeMap::new();
    let mut other = Vec::new();
    let mut flows = 0u64;
    for buf in &trace.cores {
        tracks.entry(buf.core()).or_default();
        core_events(buf, trace, &clock, end, &mut tracks, &mut other, &mut flows);
    }
    let mut events = metadata_events(trace, tracks.keys().copied());
    for (core, slices) in &mut tracks {
        nest(slices);
        write_slices(*core, slices, &clock, &mut events);
    }
    events.append(&mut other);
    Ok(json!({
        "traceEvents": events,
        "displayTimeUnit": "ns",
        "otherData": other_data(trace, &clock),
    }))
}

/// Write the trace as JSON to `w`.
pub fn write(trace: &Trace, w: impl Write) -> Result<(), ExportError> {
    let v = to_json(trace)?;
    serde_json::to_writer(w, &v)?;
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

/// One core's records: its slices (and its steals' `robbed` slices on the victims' tracks)
/// into `tracks`, its instants and counters into `other`.
fn core_events(
    buf: &TraceBuf,
    trace: &Trace,
    clock: &Clock,
    end: u64,
    tracks: &mut BTreeMap<usize, Vec<Slice>>,
    other: &mut Vec<Value>,
    flows: &mut u64,
) {
    let core = buf.core();
    let tid = core as u64;
    let mut state: Option<(u64, State)> = None;
    let instant = |at: u64, cat: &str, name: String, args: Value| {
        json!({"ph": "i", "s": "t", "cat": cat, "name": name, "pid": PID, "tid": tid,
               "ts": clock.us(at), "args": args})
    };
    for r in buf.records() {
        match *r {
            Record::Run {
                start,
                end,
                color,
                handler,
                seq,
            } => {
                let mut args = Map::new();
                args.insert("color".into(), color.into());
                if seq != NO_SEQ {
                    args.insert("seq".into(), seq.into());
                }
                let name = trace
                    .meta
                    .handler_names
                    .get(usize::from(handler))
                    .cloned()
                    .unwrap_or_else(|| format!("handler {handler}"));
                let s = slice(start, end.max(start), Kind::Run, name, args);
                tracks.entry(core).or_default().push(s);
            }
            Record::Steal { .. } => steal_slices(core, r, tracks, flows),
            Record::Post { at, color, target } => other.push(instant(
                at,
                "post",
                format!("post to core {target}"),
                json!({"color": color, "target": target}),
            )),
            Record::Remap {
                at,
                color,
                from,
                to,
            } => other.push(instant(
                at,
                "remap",
                format!("remap color {color}"),
                json!({"color": color, "from": from, "to": to}),
            )),
            Record::State {
                at,
                queue_len,
                state: s,
            } => {
                if let Some((since, prev)) = state.replace((at, s)) {
                    state_slice(core, since, at, prev, tracks);
                }
                if s == State::Wake {
                    other.push(instant(
                        at,
                        "state",
                        "wake".into(),
                        json!({ "queue_len": queue_len }),
                    ));
                }
                other.push(
                    json!({"ph": "C", "name": format!("queue core {core}"), "pid": PID,
                                  "tid": tid, "ts": clock.us(at), "args": {"len": queue_len}}),
                );
            }
        }
    }
    if let Some((since, prev)) = state {
        state_slice(core, since, end.max(since), prev, tracks);
    }
}

fn slice(start: u64, end: u64, kind: Kind, name: String, args: Map<String, Value>) -> Slice {
    Slice {
        start,
        end,
        kind,
        name,
        args,
        flow: None,
        clipped: false,
    }
}

/// The slice of a state that lasted `[since, until)`, if the state is drawn as one.
fn state_slice(
    core: usize,
    since: u64,
    until: u64,
    s: State,
    tracks: &mut BTreeMap<usize, Vec<Slice>>,
) {
    if matches!(s, State::Busy | State::Wake) || until <= since {
        return;
    }
    let sl = slice(since, until, Kind::State, s.name().into(), Map::new());
    tracks.entry(core).or_default().push(sl);
}

/// A steal attempt's slices: the attempt and its lock parts on the thief's track, and for a
/// successful one the victim's `robbed` slice and the flow between them.
fn steal_slices(
    thief: usize,
    r: &Record,
    tracks: &mut BTreeMap<usize, Vec<Slice>>,
    flows: &mut u64,
) {
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
    let end = start.saturating_add(u64::from(dur));
    let mut args = Map::new();
    args.insert("victim".into(), victim.into());
    args.insert("outcome".into(), outcome.name().into());
    args.insert("colors".into(), colors.into());
    args.insert("events".into(), events.into());
    args.insert("nodes".into(), nodes.into());
    args.insert("lock_wait_cycles".into(), lock_wait.into());
    args.insert("lock_hold_cycles".into(), lock_hold.into());
    let name = format!("steal from core {victim}");
    let track = tracks.entry(thief).or_default();
    track.push(slice(start, end, Kind::Steal, name, args));
    let locked = start.saturating_add(u64::from(lock_wait));
    let unlocked = locked.saturating_add(u64::from(lock_hold));
    if lock_wait > 0 {
        let s = slice(
            start,
            locked,
            Kind::LockWait,
            "lock wait".into(),
            Map::new(),
        );
        track.push(s);
    }
    let flow = (outcome == StealOutcome::Stolen).then(|| {
        *flows += 1;
        *flows
    });
    if lock_hold > 0 || flow.is_some() {
        // A flow needs a slice at each end: give a zero-length hold one cycle.
        let mut s = slice(
            locked,
            unlocked.max(locked + 1),
            Kind::LockHold,
            "lock hold".into(),
            Map::new(),
        );
        s.flow = flow.map(Flow::In);
        track.push(s);
    }
    if let Some(id) = flow {
        let mut args = Map::new();
        args.insert("thief".into(), thief.into());
        args.insert("events".into(), events.into());
        let mut s = slice(
            locked,
            unlocked.max(locked + 1),
            Kind::Robbed,
            format!("robbed by core {thief}"),
            args,
        );
        s.flow = Some(Flow::Out(id));
        tracks.entry(usize::from(victim)).or_default().push(s);
    }
}

/// Make one track's slices nest: sorted by start (longest first, then by [`Kind`]), a slice
/// that crosses the end of the innermost open one is cut at that end, unless it is a run,
/// which cuts the open slice at its own start instead. Two runs that overlap are left as they
/// are (the checker reports them). Slices cut to nothing are removed.
fn nest(slices: &mut Vec<Slice>) {
    slices.sort_by(|a, b| {
        (a.start, std::cmp::Reverse(a.end), a.kind).cmp(&(
            b.start,
            std::cmp::Reverse(b.end),
            b.kind,
        ))
    });
    let mut open: Vec<usize> = Vec::new();
    for i in 0..slices.len() {
        while let Some(&top) = open.last() {
            let (t, s) = (&slices[top], &slices[i]);
            if t.end <= s.start {
                open.pop();
            } else if s.end <= t.end || (s.kind == Kind::Run && t.kind == Kind::Run) {
                break;
            } else if s.kind == Kind::Run {
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
    slices.retain(|s| s.end > s.start || (s.kind == Kind::Run && !s.clipped));
}

/// The complete events and flow ends of one track.
fn write_slices(core: usize, slices: &mut [Slice], clock: &Clock, out: &mut Vec<Value>) {
    for s in slices {
        let ts = clock.us(s.start);
        let dur = clock.us(s.end) - ts;
        let mut args = std::mem::take(&mut s.args);
        if s.clipped {
            args.insert("clipped".into(), true.into());
        }
        out.push(
            json!({"ph": "X", "cat": s.kind.cat(), "name": s.name, "pid": PID,
                        "tid": core, "ts": ts, "dur": dur, "args": args}),
        );
        if let Some(flow) = s.flow {
            let mid = ts + dur / 2.0;
            out.push(match flow {
                Flow::Out(id) => json!({"ph": "s", "cat": "steal", "name": "steal", "id": id,
                                        "pid": PID, "tid": core, "ts": mid}),
                Flow::In(id) => json!({"ph": "f", "bp": "e", "cat": "steal", "name": "steal",
                                       "id": id, "pid": PID, "tid": core, "ts": mid}),
            });
        }
    }
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
            json!({"ph": "M", "name": "thread_name", "pid": PID, "tid": c,
                      "args": {"name": format!("core {c}")}}),
        );
        v.push(
            json!({"ph": "M", "name": "thread_sort_index", "pid": PID, "tid": c,
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
