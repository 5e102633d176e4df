//! The history of measurements across commits: `results/history/history.jsonl`, one JSON
//! object per line per experiment and recorded run (format in `results/history/README.md`).
//!
//! Invariants: the file is only ever appended to (a line is never rewritten), so branches
//! that each appended merge by keeping both sides' lines (`merge=union`); every line carries
//! its commit, the commit's date, the machine and the environment, so lines from several
//! machines and runs can live in one file; samples are stored as measured (never medians).
//! A line that does not parse is an error naming its line number, never skipped.

use super::samples::SampleSet;
use super::stats;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// Version of the line format.
pub const FORMAT: u32 = 1;

/// The experiment name of the line that holds the ratios that matter.
pub const RATIOS: &str = "ratios";

/// One line of the history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Line format version ([`FORMAT`]).
    pub format: u32,
    /// Full commit hash.
    pub commit: String,
    /// The commit's committer date (ISO 8601): the order of the history.
    pub commit_date: String,
    /// The commit's subject line.
    pub subject: String,
    /// When the samples were recorded (UTC, ISO 8601).
    pub recorded: String,
    /// `CPU model | N cores | kernel` (see `samples::machine_id`).
    pub machine: String,
    /// How the samples were interleaved.
    pub interleaving: String,
    /// The environment of the run (env.json).
    pub env: BTreeMap<String, Value>,
    /// Experiment name, or [`RATIOS`].
    pub experiment: String,
    /// Why the experiment failed (no figures then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The experiment's figures with their samples.
    pub figures: Vec<RecordFigure>,
}

/// One figure of a history line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordFigure {
    /// Figure key (or ratio name).
    pub key: String,
    pub unit: String,
    pub higher_is_better: bool,
    /// Every measured sample, in the order measured (`n/a` samples are left out).
    pub samples: Vec<f64>,
}

/// What identifies the commit a sample set was measured at.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CommitInfo {
    pub commit: String,
    pub commit_date: String,
    pub subject: String,
    /// Time of recording (UTC, ISO 8601).
    pub recorded: String,
}

/// The history lines of one sample set: one per experiment (figures grouped by experiment),
/// one per failed experiment, and one for the ratios.
pub fn records(set: &SampleSet, info: &CommitInfo) -> Vec<Record> {
    let base = |experiment: String, error: Option<String>, figures| Record {
        format: FORMAT,
        commit: info.commit.clone(),
        commit_date: info.commit_date.clone(),
        subject: info.subject.clone(),
        recorded: info.recorded.clone(),
        machine: set.machine(),
        interleaving: set.interleaving.clone(),
        env: set.env.clone(),
        experiment,
        error,
        figures,
    };
    let mut by_exp: BTreeMap<&str, Vec<RecordFigure>> = BTreeMap::new();
    for f in set.figures.values() {
        let v = f.values();
        if v.is_empty() {
            continue;
        }
        by_exp.entry(&f.experiment).or_default().push(RecordFigure {
            key: f.key.clone(),
            unit: f.unit.clone(),
            higher_is_better: f.higher_is_better,
            samples: v,
        });
    }
    let mut out: Vec<Record> = by_exp
        .into_iter()
        .map(|(e, figs)| base(e.to_string(), None, figs))
        .collect();
    for (e, why) in &set.missing {
        out.push(base(e.clone(), Some(why.clone()), Vec::new()));
    }
    let ratios: Vec<RecordFigure> = set
        .ratios
        .iter()
        .filter(|r| !r.values().is_empty())
        .map(|r| RecordFigure {
            key: r.name.clone(),
            unit: "ratio".into(),
            higher_is_better: true,
            samples: r.values(),
        })
        .collect();
    if !ratios.is_empty() {
        out.push(base(RATIOS.into(), None, ratios));
    }
    out
}

/// Append `recs` to the history file (created with its directory when absent).
pub fn append(path: &Path, recs: &[Record]) -> Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let mut text = String::new();
    for r in recs {
        text.push_str(&serde_json::to_string(r).context("serialising a history line")?);
        text.push('\n');
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("appending to {}", path.display()))
}

/// Every line of a history file (an absent file is an empty history).
pub fn load(path: &Path) -> Result<Vec<Record>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{} line {}: not a history record", path.display(), i + 1))
        })
        .collect()
}

/// One commit of a series: every sample of the figure recorded at that commit.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub commit: String,
    pub commit_date: String,
    pub subject: String,
    pub samples: Vec<f64>,
}

impl Point {
    pub fn median(&self) -> Option<f64> {
        stats::median(&self.samples)
    }
}

/// One figure (or ratio) over commits, on one machine.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub key: String,
    pub unit: String,
    pub higher_is_better: bool,
    /// Whether this is a ratio that matters.
    pub ratio: bool,
    /// In commit order.
    pub points: Vec<Point>,
}

/// Which lines to use.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    /// Only this machine (`None`: every machine).
    pub machine: Option<String>,
    /// Only lines recorded at or after this time (ISO 8601 strings compare in time order).
    pub since: Option<String>,
}

impl Filter {
    fn keeps(&self, r: &Record) -> bool {
        self.machine.as_ref().map_or(true, |m| *m == r.machine)
            && self
                .since
                .as_ref()
                .map_or(true, |s| r.recorded.as_str() >= s.as_str())
    }
}

/// The commits of the history in order: by commit date, then by first appearance.
pub fn commit_order(recs: &[Record]) -> Vec<(String, String, String)> {
    let mut seen: Vec<(String, String, String)> = Vec::new();
    for r in recs {
        if !seen.iter().any(|(c, _, _)| *c == r.commit) {
            seen.push((r.commit.clone(), r.commit_date.clone(), r.subject.clone()));
        }
    }
    // Stable: equal dates keep the order they were recorded in.
    seen.sort_by(|a, b| a.1.cmp(&b.1));
    seen
}

/// Every series of the lines `filter` keeps, by key (figures and ratios).
pub fn series(recs: &[Record], filter: &Filter) -> BTreeMap<String, Series> {
    let kept: Vec<&Record> = recs.iter().filter(|r| filter.keeps(r)).collect();
    let order = commit_order(&kept.iter().map(|r| (*r).clone()).collect::<Vec<_>>());
    let mut out: BTreeMap<String, Series> = BTreeMap::new();
    for r in &kept {
        for f in &r.figures {
            let s = out.entry(f.key.clone()).or_insert_with(|| Series {
                key: f.key.clone(),
                unit: f.unit.clone(),
                higher_is_better: f.higher_is_better,
                ratio: r.experiment == RATIOS,
                points: Vec::new(),
            });
            match s.points.iter_mut().find(|p| p.commit == r.commit) {
                Some(p) => p.samples.extend(&f.samples),
                None => s.points.push(Point {
                    commit: r.commit.clone(),
                    commit_date: r.commit_date.clone(),
                    subject: r.subject.clone(),
                    samples: f.samples.clone(),
                }),
            }
        }
    }
    for s in out.values_mut() {
        s.points.sort_by_key(|p| {
            order
                .iter()
                .position(|(c, _, _)| *c == p.commit)
                .unwrap_or(usize::MAX)
        });
    }
    out
}

/// The machines in the history, most lines first.
pub fn machines(recs: &[Record]) -> Vec<String> {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for r in recs {
        *count.entry(&r.machine).or_default() += 1;
    }
    let mut v: Vec<(&str, usize)> = count.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v.into_iter().map(|(m, _)| m.to_string()).collect()
}

/// Samples of one figure at one commit (a full hash or a unique prefix of one).
pub fn samples_at(s: &Series, commit: &str) -> Vec<f64> {
    s.points
        .iter()
        .filter(|p| p.commit.starts_with(commit) || commit.starts_with(&p.commit))
        .flat_map(|p| p.samples.iter().copied())
        .collect()
}
