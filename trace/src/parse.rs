//! Reading a trace-event JSON file back: its tracks, its complete events and its `otherData`,
//! for the checker and the pictures. Both of the format's layouts are read (an object with
//! `traceEvents`, or a bare array of events); of the events, complete events (`"ph":"X"`) and
//! thread names are kept. Begin/end pairs (`"ph":"B"`/`"E"`), which [`crate::export`] never
//! writes, are not read.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// Why a trace could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file could not be read.
    #[error("reading {path}")]
    Io {
        /// The trace file.
        path: String,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The text is not JSON.
    #[error("parsing the trace as JSON")]
    Json(#[from] serde_json::Error),
    /// The JSON is not a trace: `what` says where and why.
    #[error("not a trace-event file: {what}")]
    Malformed {
        /// The offending place and what is wrong with it.
        what: String,
    },
}

/// One complete event, with the arguments the checker and the pictures read.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedSlice {
    /// Process id.
    pub pid: u64,
    /// Thread id (the core, in our traces).
    pub tid: u64,
    /// Category (`run`, `steal`, `lock`, `state`, `robbed` in our traces).
    pub cat: String,
    /// Name (the handler's, for a run).
    pub name: String,
    /// Start, microseconds.
    pub ts: f64,
    /// Duration, microseconds.
    pub dur: f64,
    /// Arg `color`, if it is an unsigned integer (a run's color).
    pub color: Option<u64>,
    /// Arg `seq`, if it is an unsigned integer (a run's posting sequence number).
    pub seq: Option<u64>,
    /// Arg `outcome`, if it is a string (a steal's).
    pub outcome: Option<String>,
}

impl ParsedSlice {
    /// End, microseconds.
    pub fn end(&self) -> f64 {
        self.ts + self.dur
    }
}

/// A trace as read.
#[derive(Clone, Debug, Default)]
pub struct ParsedTrace {
    /// Every track that has a name or a complete event, (pid, tid) -> its name (`tid N` when
    /// unnamed).
    pub tracks: BTreeMap<(u64, u64), String>,
    /// The complete events, in file order.
    pub slices: Vec<ParsedSlice>,
    /// `otherData` (`Null` if absent).
    pub other: Value,
}

/// An event as deserialized: only the fields read, each optional until its phase needs it.
#[derive(Deserialize)]
struct RawEvent {
    ph: Option<String>,
    name: Option<String>,
    cat: Option<String>,
    pid: Option<Value>,
    tid: Option<Value>,
    ts: Option<Value>,
    dur: Option<Value>,
    args: Option<RawArgs>,
}

/// The arguments read (others are skipped).
#[derive(Deserialize)]
struct RawArgs {
    color: Option<Value>,
    seq: Option<Value>,
    outcome: Option<Value>,
    name: Option<Value>,
}

/// The JSON Object Format's top level.
#[derive(Deserialize)]
struct RawObject {
    #[serde(rename = "traceEvents")]
    trace_events: Vec<RawEvent>,
    #[serde(rename = "otherData", default)]
    other_data: Value,
}

impl ParsedTrace {
    /// Read the file at `path`.
    pub fn from_path(path: &Path) -> Result<ParsedTrace, TraceError> {
        let text = std::fs::read_to_string(path).map_err(|source| TraceError::Io {
            path: path.display().to_string(),
            source,
        })?;
        ParsedTrace::from_str(&text)
    }

    /// Read JSON text (deserialized straight into the events read: a large trace is never
    /// held as a JSON tree).
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(text: &str) -> Result<ParsedTrace, TraceError> {
        if text.trim_start().starts_with('[') {
            ParsedTrace::build(serde_json::from_str(text)?, Value::Null)
        } else {
            let o: RawObject = serde_json::from_str(text)?;
            ParsedTrace::build(o.trace_events, o.other_data)
        }
    }

    /// Read a parsed JSON value.
    pub fn from_value(v: &Value) -> Result<ParsedTrace, TraceError> {
        match v {
            Value::Array(_) => ParsedTrace::build(Vec::deserialize(v)?, Value::Null),
            Value::Object(_) => {
                let o = RawObject::deserialize(v)?;
                ParsedTrace::build(o.trace_events, o.other_data)
            }
            _ => Err(malformed("neither an object nor an array".into())),
        }
    }

    fn build(events: Vec<RawEvent>, other: Value) -> Result<ParsedTrace, TraceError> {
        let mut t = ParsedTrace {
            other,
            ..ParsedTrace::default()
        };
        for (i, e) in events.into_iter().enumerate() {
            t.read_event(i, e)?;
        }
        for s in &t.slices {
            t.tracks
                .entry((s.pid, s.tid))
                .or_insert_with(|| format!("tid {}", s.tid));
        }
        Ok(t)
    }

    fn read_event(&mut self, i: usize, e: RawEvent) -> Result<(), TraceError> {
        let uint = |v: &Option<Value>, k: &str| {
            v.as_ref()
                .and_then(Value::as_u64)
                .ok_or_else(|| malformed(format!("event {i}: {k} is not an unsigned integer")))
        };
        let num = |v: &Option<Value>, k: &str| {
            v.as_ref()
                .and_then(Value::as_f64)
                .ok_or_else(|| malformed(format!("event {i}: {k} is not a number")))
        };
        match e.ph.as_deref() {
            Some("X") => {
                let dur = num(&e.dur, "dur")?;
                if dur < 0.0 {
                    return Err(malformed(format!("event {i}: negative dur {dur}")));
                }
                let args = e.args.as_ref();
                let arg = |f: fn(&RawArgs) -> &Option<Value>| args.and_then(|a| f(a).as_ref());
                self.slices.push(ParsedSlice {
                    pid: uint(&e.pid, "pid")?,
                    tid: uint(&e.tid, "tid")?,
                    ts: num(&e.ts, "ts")?,
                    dur,
                    color: arg(|a| &a.color).and_then(Value::as_u64),
                    seq: arg(|a| &a.seq).and_then(Value::as_u64),
                    outcome: arg(|a| &a.outcome)
                        .and_then(Value::as_str)
                        .map(String::from),
                    cat: e.cat.unwrap_or_default(),
                    name: e.name.unwrap_or_default(),
                });
            }
            Some("M") if e.name.as_deref() == Some("thread_name") => {
                let name = e
                    .args
                    .as_ref()
                    .and_then(|a| a.name.as_ref())
                    .and_then(Value::as_str)
                    .ok_or_else(|| malformed(format!("event {i}: thread_name without a name")))?;
                let key = (uint(&e.pid, "pid")?, uint(&e.tid, "tid")?);
                self.tracks.insert(key, name.to_string());
            }
            Some(_) => {}
            None => return Err(malformed(format!("event {i}: no ph"))),
        }
        Ok(())
    }

    /// The `otherData` number at JSON pointer `ptr` (e.g. `/cycles_per_us`).
    pub fn other_f64(&self, ptr: &str) -> Option<f64> {
        self.other.pointer(ptr).and_then(Value::as_f64)
    }

    /// Earliest start and latest end of the complete events, microseconds.
    pub fn span(&self) -> Option<(f64, f64)> {
        let first = self.slices.iter().map(|s| s.ts).reduce(f64::min)?;
        let last = self.slices.iter().map(ParsedSlice::end).reduce(f64::max)?;
        Some((first, last))
    }
}

fn malformed(what: String) -> TraceError {
    TraceError::Malformed { what }
}
