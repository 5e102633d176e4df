//! The trace as a checker of the color guarantee.
//!
//! What [`check`] proves about the runs a trace recorded (complete events of category `run`
//! with an integer `color` arg):
//! 1. No two runs of one color overlap, on any pair of tracks (the same track included), by
//!    at least half a cycle of the trace's clock (`otherData.cycles_per_us`; a microsecond's
//!    millionth without it), which absorbs the rounding of cycles to microseconds and back
//!    and nothing a real overlap could hide in.
//! 2. Per color, runs that carry a posting sequence number (`seq` arg) ran in posting order:
//!    ordered by start, their numbers increase strictly. Runs without one are not ordered.
//! 3. When `otherData.counters` is present and no core dropped a record in the window, the
//!    trace's runs and successful steals agree with the counters within their `tolerance`.
//!
//! What it cannot prove: anything about what was not recorded (outside the window, lost to a
//! ring, or never instrumented); an overlap shorter than the clock's resolution (two real cores
//! whose cycle counters disagree by more than the overlap); the order of runs without a
//! sequence number; the runtime's own counters, which it takes as given.

use crate::parse::{ParsedSlice, ParsedTrace, TraceError};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// Violations kept in a report; further ones are only counted.
pub const MAX_VIOLATIONS: usize = 100;

/// One run, as a violation names it.
#[derive(Clone, Debug, PartialEq)]
pub struct RunRef {
    /// The run's track (the core, in our traces).
    pub tid: u64,
    /// Its process.
    pub pid: u64,
    /// The track's name (`core N` in our traces).
    pub track: String,
    /// Its handler.
    pub name: String,
    /// Start, microseconds.
    pub ts: f64,
    /// End, microseconds.
    pub end: f64,
    /// Its posting sequence number, if the trace has it.
    pub seq: Option<u64>,
}

/// Which count disagreed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    /// Event runs against the `events` counter.
    Events,
    /// Successful steals against the `steals` counter.
    Steals,
}

/// A broken guarantee, or counts that disagree.
#[derive(Clone, Debug, PartialEq)]
pub enum Violation {
    /// Two runs of `color` overlap (`second` starts before `first` ends).
    Overlap {
        /// The color.
        color: u64,
        /// The run that started first.
        first: RunRef,
        /// The run that started inside it.
        second: RunRef,
    },
    /// Two runs of `color` ran against their posting order.
    OutOfOrder {
        /// The color.
        color: u64,
        /// The run that started first.
        earlier: RunRef,
        /// The run that started next, with a sequence number not above `earlier`'s.
        later: RunRef,
    },
    /// A count in the trace differs from the run's counter by more than the tolerance.
    CountMismatch {
        /// What was counted.
        what: Count,
        /// The count in the trace.
        in_trace: u64,
        /// The run's counter for the window.
        counter: u64,
        /// The difference allowed.
        tolerance: u64,
    },
}

/// Whether the counts could be compared.
#[derive(Clone, Debug, PartialEq)]
pub enum Counts {
    /// Compared (a mismatch is a [`Violation::CountMismatch`]).
    Compared {
        /// The `events` counter.
        events: u64,
        /// The `steals` counter.
        steals: u64,
        /// The difference allowed.
        tolerance: u64,
    },
    /// The trace has no counters for its window.
    NoCounters,
    /// Counters present, but the trace is not complete over its window.
    NotComparable {
        /// Why.
        reason: String,
    },
}

/// What the checker found.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckReport {
    /// Runs in the trace.
    pub runs: u64,
    /// Runs with a posting sequence number.
    pub sequenced_runs: u64,
    /// Distinct colors of the runs.
    pub colors: u64,
    /// Tracks with at least one run.
    pub tracks: u64,
    /// Successful steals in the trace.
    pub steals: u64,
    /// Whether the counts were compared.
    pub counts: Counts,
    /// The first [`MAX_VIOLATIONS`] violations, by color and time.
    pub violations: Vec<Violation>,
    /// All violations found (more than `violations.len()` if some were left out).
    pub violations_total: u64,
}

impl CheckReport {
    /// True if nothing was violated.
    pub fn passed(&self) -> bool {
        self.violations_total == 0
    }

    fn add(&mut self, v: Violation) {
        self.violations_total += 1;
        if self.violations.len() < MAX_VIOLATIONS {
            self.violations.push(v);
        }
    }
}

/// Check the trace file at `path`.
pub fn check_path(path: &Path) -> Result<CheckReport, TraceError> {
    Ok(check(&ParsedTrace::from_path(path)?))
}

/// Check a parsed trace (the module's points 1 to 3).
pub fn check(t: &ParsedTrace) -> CheckReport {
    let eps = t
        .other_f64("/cycles_per_us")
        .filter(|r| r.is_finite() && *r > 0.0)
        .map_or(1e-6, |r| 0.5 / r);
    let mut by_color: BTreeMap<u64, Vec<&ParsedSlice>> = BTreeMap::new();
    for s in t.slices.iter().filter(|s| s.cat == "run") {
        if let Some(c) = s.color {
            by_color.entry(c).or_default().push(s);
        }
    }
    let runs: Vec<&ParsedSlice> = by_color.values().flatten().copied().collect();
    let tracks: std::collections::BTreeSet<(u64, u64)> =
        runs.iter().map(|s| (s.pid, s.tid)).collect();
    let steals = t
        .slices
        .iter()
        .filter(|s| s.cat == "steal" && s.outcome.as_deref() == Some("stolen"))
        .count() as u64;
    let mut report = CheckReport {
        runs: runs.len() as u64,
        sequenced_runs: runs.iter().filter(|s| s.seq.is_some()).count() as u64,
        colors: by_color.len() as u64,
        tracks: tracks.len() as u64,
        steals,
        counts: Counts::NoCounters,
        violations: Vec::new(),
        violations_total: 0,
    };
    for (&color, list) in &mut by_color {
        list.sort_by(|a, b| a.ts.total_cmp(&b.ts).then(a.end().total_cmp(&b.end())));
        overlaps(t, color, list, eps, &mut report);
        order(t, color, list, &mut report);
    }
    counts(t, &mut report);
    report
}

fn run_ref(t: &ParsedTrace, s: &ParsedSlice) -> RunRef {
    RunRef {
        tid: s.tid,
        pid: s.pid,
        track: t.tracks.get(&(s.pid, s.tid)).cloned().unwrap_or_default(),
        name: s.name.clone(),
        ts: s.ts,
        end: s.end(),
        seq: s.seq,
    }
}

/// Point 1 over one color's runs sorted by start: each run is compared with the run that
/// reaches furthest among those before it.
fn overlaps(
    t: &ParsedTrace,
    color: u64,
    runs: &[&ParsedSlice],
    eps: f64,
    report: &mut CheckReport,
) {
    let mut reach: Option<&ParsedSlice> = None;
    for &r in runs {
        if let Some(p) = reach {
            if r.ts < p.end() - eps {
                report.add(Violation::Overlap {
                    color,
                    first: run_ref(t, p),
                    second: run_ref(t, r),
                });
            }
            if r.end() > p.end() {
                reach = Some(r);
            }
        } else {
            reach = Some(r);
        }
    }
}

/// Point 2 over one color's runs sorted by start.
fn order(t: &ParsedTrace, color: u64, runs: &[&ParsedSlice], report: &mut CheckReport) {
    let mut prev: Option<(&ParsedSlice, u64)> = None;
    for &r in runs {
        let Some(seq) = r.seq else {
            continue;
        };
        if let Some((p, pseq)) = prev {
            if seq <= pseq {
                report.add(Violation::OutOfOrder {
                    color,
                    earlier: run_ref(t, p),
                    later: run_ref(t, r),
                });
            }
        }
        prev = Some((r, seq));
    }
}

/// Point 3.
fn counts(t: &ParsedTrace, report: &mut CheckReport) {
    let Some(c) = t.other.get("counters").filter(|c| !c.is_null()) else {
        return;
    };
    let get = |k: &str| c.get(k).and_then(Value::as_u64);
    let (Some(events), Some(steals)) = (get("events"), get("steals")) else {
        report.counts = Counts::NotComparable {
            reason: "otherData.counters lacks integer events and steals".into(),
        };
        return;
    };
    let tolerance = get("tolerance").unwrap_or(0);
    let dropped: Option<u64> = t.other.get("cores").and_then(Value::as_array).map(|cores| {
        cores
            .iter()
            .map(|c| c.get("dropped").and_then(Value::as_u64).unwrap_or(u64::MAX))
            .fold(0u64, u64::saturating_add)
    });
    match dropped {
        Some(0) => {}
        Some(n) => {
            report.counts = Counts::NotComparable {
                reason: format!("{n} records of the window were dropped (buffers full)"),
            };
            return;
        }
        None => {
            report.counts = Counts::NotComparable {
                reason: "otherData.cores does not say whether records were dropped".into(),
            };
            return;
        }
    }
    report.counts = Counts::Compared {
        events,
        steals,
        tolerance,
    };
    for (what, in_trace, counter) in [
        (Count::Events, report.runs, events),
        (Count::Steals, report.steals, steals),
    ] {
        if in_trace.abs_diff(counter) > tolerance {
            report.add(Violation::CountMismatch {
                what,
                in_trace,
                counter,
                tolerance,
            });
        }
    }
}

impl std::fmt::Display for RunRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} on {} (tid {}) [{:.3}, {:.3}) us",
            self.name, self.track, self.tid, self.ts, self.end
        )?;
        if let Some(s) = self.seq {
            write!(f, " seq {s}")?;
        }
        Ok(())
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Violation::Overlap {
                color,
                first,
                second,
            } => write!(f, "color {color} overlaps: {first} and {second}"),
            Violation::OutOfOrder {
                color,
                earlier,
                later,
            } => write!(
                f,
                "color {color} ran out of posting order: {earlier}, then {later}"
            ),
            Violation::CountMismatch {
                what,
                in_trace,
                counter,
                tolerance,
            } => {
                let what = match what {
                    Count::Events => "event runs",
                    Count::Steals => "successful steals",
                };
                write!(
                    f,
                    "{what}: {in_trace} in the trace, {counter} by the counters (tolerance {tolerance})"
                )
            }
        }
    }
}

/// A summary line, then one line per violation kept (and how many were left out).
impl std::fmt::Display for CheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verdict = if self.passed() { "passed" } else { "FAILED" };
        write!(
            f,
            "{verdict}: {} runs ({} with a posting sequence number) of {} colors on {} tracks, \
             {} steals; ",
            self.runs, self.sequenced_runs, self.colors, self.tracks, self.steals
        )?;
        match &self.counts {
            Counts::Compared {
                events,
                steals,
                tolerance,
            } => writeln!(
                f,
                "counters: {events} events, {steals} steals (tolerance {tolerance})"
            )?,
            Counts::NoCounters => writeln!(f, "no counters to compare")?,
            Counts::NotComparable { reason } => writeln!(f, "counts not compared: {reason}")?,
        }
        for v in &self.violations {
            writeln!(f, "  {v}")?;
        }
        let left = self.violations_total - self.violations.len() as u64;
        if left > 0 {
            writeln!(f, "  ... and {left} more violations")?;
        }
        Ok(())
    }
}
