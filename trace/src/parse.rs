//! Reading a trace-event JSON file back: its tracks, its complete events and its `otherData`,
//! for the checker and the pictures. Both of the format's layouts are read (an object with
//! `traceEvents`, or a bare array of events); of the events, complete events (`"ph":"X"`) and
//! thread names are kept. Begin/end pairs (`"ph":"B"`/`"E"`), which [`crate::export`] never
//! writes, are not read.

use serde_json::{Map, Value};
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

/// One complete event.
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
    /// Arguments (a run's `color` and `seq`).
    pub args: Map<String, Value>,
}

impl ParsedSlice {
    /// End, microseconds.
    pub fn end(&self) -> f64 {
        self.ts + self.dur
    }

    /// Argument `key` as an unsigned integer, if it is one.
    pub fn arg_u64(&self, key: &str) -> Option<u64> {
        self.args.get(key).and_then(Value::as_u64)
    }

    /// Argument `key` as a string, if it is one.
    pub fn arg_str(&self, key: &str) -> Option<&str> {
        self.args.get(key).and_then(Value::as_str)
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

impl ParsedTrace {
    /// Read the file at `path`.
    pub fn from_path(path: &Path) -> Result<ParsedTrace, TraceError> {
        let text = std::fs::read_to_string(path).map_err(|source| TraceError::Io {
            path: path.display().to_string(),
            source,
        })?;
        ParsedTrace::from_str(&text)
    }

    /// Read JSON text.
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(text: &str) -> Result<ParsedTrace, TraceError> {
        let v: Value = serde_json::from_str(text)?;
        ParsedTrace::from_value(&v)
    }

    /// Read a parsed JSON value.
    pub fn from_value(v: &Value) -> Result<ParsedTrace, TraceError> {
        let (events, other) = match v {
            Value::Array(a) => (a, Value::Null),
            Value::Object(o) => match o.get("traceEvents") {
                Some(Value::Array(a)) => (a, o.get("otherData").cloned().unwrap_or(Value::Null)),
                _ => return Err(malformed("the object has no traceEvents array".into())),
            },
            _ => return Err(malformed("neither an object nor an array".into())),
        };
        let mut t = ParsedTrace {
            other,
            ..ParsedTrace::default()
        };
        for (i, e) in events.iter().enumerate() {
            t.read_event(i, e)?;
        }
        for s in &t.slices {
            t.tracks
                .entry((s.pid, s.tid))
                .or_insert_with(|| format!("tid {}", s.tid));
        }
        Ok(t)
    }

    fn read_event(&mut self, i: usize, e: &Value) -> Result<(), TraceError> {
        let field = |k: &str| e.get(k);
        let uint = |k: &str| {
            field(k)
                .and_then(Value::as_u64)
                .ok_or_else(|| malformed(format!("event {i}: {k} is not an unsigned integer")))
        };
        let num = |k: &str| {
            field(k)
                .and_then(Value::as_f64)
                .ok_or_else(|| malformed(format!("event {i}: {k} is not a number")))
        };
        let text = |k: &str| field(k).and_then(Value::as_str).unwrap_or("").to_string();
        match field("ph").and_then(Value::as_str) {
            Some("X") => {
                let dur = num("dur")?;
                if dur < 0.0 {
                    return Err(malformed(format!("event {i}: negative dur {dur}")));
                }
                self.slices.push(ParsedSlice {
                    pid: uint("pid")?,
                    tid: uint("tid")?,
                    cat: text("cat"),
                    name: text("name"),
                    ts: num("ts")?,
                    dur,
                    args: field("args")
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default(),
                });
            }
            Some("M") if text("name") == "thread_name" => {
                let name = e
                    .pointer("/args/name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| malformed(format!("event {i}: thread_name without a name")))?;
                self.tracks
                    .insert((uint("pid")?, uint("tid")?), name.to_string());
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
