//! Sample sets: every figure and ratio of a results directory with all its samples, not only
//! the median.
//!
//! Where the samples come from, generically (no figure is named here: the figures and ratios
//! are those of `figures`, computed once per sample):
//! - `DIR/samples/<i>/` (i = 1, 2, ...): results directories, one per sample, written by
//!   `scripts/reproduce.sh` with `REPRO_RUNS` > 1 and by `scripts/compare.sh --ab` and
//!   `scripts/track.sh` (one reproduce run per sample). Sample `i` of every figure comes from
//!   directory `i`, so a ratio's sample `i` divides figures measured in the same run.
//! - The repetitions inside `microbench/paper-tables.json` (`--repeat`): repetition `i` of each
//!   configuration belongs to sample `i` when the sample directories hold no paper tables.
//! - A figure measured in DIR but in no sample (e.g. the servers' counters, one per server
//!   start) has the top-level value as its single sample: one sample is one sample, never
//!   copied into several.
//!
//! Invariant: `by_sample[i]` of a figure is `Some` only when sample `i` measured it; `values()`
//! never holds an `n/a`.

use super::figures::{figures, key_ratios, Figure};
use super::load::Results;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One figure's samples.
#[derive(Clone, Debug, PartialEq)]
pub struct FigureSamples {
    /// The figure's key (`<experiment> <metric>`).
    pub key: String,
    /// The experiment it belongs to.
    pub experiment: String,
    pub unit: String,
    pub higher_is_better: bool,
    /// Value per sample index (`None`: not measured in that sample).
    pub by_sample: Vec<Option<f64>>,
}

impl FigureSamples {
    /// The measured values, in sample order.
    pub fn values(&self) -> Vec<f64> {
        self.by_sample.iter().flatten().copied().collect()
    }
}

/// One ratio that matters, with its samples.
#[derive(Clone, Debug, PartialEq)]
pub struct RatioSamples {
    pub name: String,
    /// The papers' figure, where there is one.
    pub paper: Option<f64>,
    /// Value per sample index.
    pub by_sample: Vec<Option<f64>>,
}

impl RatioSamples {
    pub fn values(&self) -> Vec<f64> {
        self.by_sample.iter().flatten().copied().collect()
    }
}

/// Every sample of a results directory.
#[derive(Clone, Debug, Default)]
pub struct SampleSet {
    pub dir: PathBuf,
    /// `env.json` of the directory, else of its first sample.
    pub env: BTreeMap<String, Value>,
    /// Number of samples (sample directories, or repetitions).
    pub samples: usize,
    /// Figures by key.
    pub figures: BTreeMap<String, FigureSamples>,
    /// The ratios that matter, in `key_ratios` order.
    pub ratios: Vec<RatioSamples>,
    /// Experiments with at least one figure.
    pub experiments: BTreeSet<String>,
    /// Experiments that failed, with the reason (and no figure in any sample).
    pub missing: BTreeMap<String, String>,
    /// How the samples were interleaved (env's `interleaving`, or what the directory shows).
    pub interleaving: String,
}

impl SampleSet {
    /// Load a results directory and its samples.
    pub fn load(dir: &Path) -> anyhow::Result<SampleSet> {
        let top = Results::load(dir)?;
        let mut reps = Vec::new();
        for d in sample_dirs(dir)? {
            reps.push(Results::load(&d)?);
        }
        Ok(SampleSet::from_results(top, reps))
    }

    /// Build from the top-level results and the per-sample results (possibly none).
    pub fn from_results(top: Results, mut reps: Vec<Results>) -> SampleSet {
        split_repetitions(&top, &mut reps);
        let mut set = SampleSet {
            dir: top.dir.clone(),
            env: if top.env.is_empty() {
                reps.first().map(|r| r.env.clone()).unwrap_or_default()
            } else {
                top.env.clone()
            },
            samples: reps.len().max(1),
            ..Default::default()
        };
        set.interleaving = match set.env.get("interleaving") {
            Some(Value::String(s)) => s.clone(),
            _ if reps.len() > 1 => format!("{} samples; order not recorded", reps.len()),
            _ => "one sample".into(),
        };
        let n = set.samples;
        for (i, r) in reps.iter().enumerate() {
            for f in figures(r) {
                set.add_figure(&f, i, n);
            }
            for (k, kr) in key_ratios(r).into_iter().enumerate() {
                set.add_ratio(k, kr.name, kr.paper, kr.value, i, n);
            }
        }
        // Figures and ratios measured only at the top level: their one sample.
        for f in figures(&top) {
            let unseen = set
                .figures
                .get(&f.key)
                .map_or(true, |s| s.by_sample.iter().all(Option::is_none));
            if unseen && f.value.is_some() {
                set.figures.remove(&f.key);
                set.add_figure(&f, 0, n);
            } else if !set.figures.contains_key(&f.key) {
                set.add_figure(&f, 0, n);
            }
        }
        for (k, kr) in key_ratios(&top).into_iter().enumerate() {
            let unseen = set
                .ratios
                .get(k)
                .map_or(true, |s| s.by_sample.iter().all(Option::is_none));
            if unseen {
                if let Some(s) = set.ratios.get_mut(k) {
                    s.by_sample = vec![None; n];
                }
                set.add_ratio(k, kr.name, kr.paper, kr.value, 0, n);
            }
        }
        set.experiments = top.experiments();
        for r in &reps {
            set.experiments.extend(r.experiments());
        }
        for r in std::iter::once(&top).chain(&reps) {
            for (e, why) in &r.missing {
                if !set.experiments.contains(e) {
                    set.missing.entry(e.clone()).or_insert_with(|| why.clone());
                }
            }
        }
        set
    }

    fn add_figure(&mut self, f: &Figure, i: usize, n: usize) {
        let e = self
            .figures
            .entry(f.key.clone())
            .or_insert_with(|| FigureSamples {
                key: f.key.clone(),
                experiment: f.experiment.clone(),
                unit: f.unit.to_string(),
                higher_is_better: f.higher_is_better,
                by_sample: vec![None; n],
            });
        if f.value.is_some() {
            e.by_sample[i] = f.value;
        }
    }

    fn add_ratio(
        &mut self,
        k: usize,
        name: &str,
        paper: Option<f64>,
        v: Option<f64>,
        i: usize,
        n: usize,
    ) {
        while self.ratios.len() <= k {
            self.ratios.push(RatioSamples {
                name: String::new(),
                paper: None,
                by_sample: vec![None; n],
            });
        }
        let r = &mut self.ratios[k];
        r.name = name.to_string();
        r.paper = paper;
        if v.is_some() {
            r.by_sample[i] = v;
        }
    }

    /// An environment field as text (`unknown` when absent).
    pub fn env_str(&self, key: &str) -> String {
        match self.env.get(key) {
            Some(Value::String(s)) => s.clone(),
            Some(v) if !v.is_null() => v.to_string(),
            _ => "unknown".into(),
        }
    }

    /// The machine as the tracker tells machines apart: CPU model, cores and kernel.
    pub fn machine(&self) -> String {
        machine_id(&self.env)
    }
}

/// `CPU model | N cores | kernel` from an env.json object; fields that were not recorded are
/// `unknown`, and a machine with an unknown field is never "the same" as another.
pub fn machine_id(env: &BTreeMap<String, Value>) -> String {
    let s = |k: &str| match env.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(v) if !v.is_null() => v.to_string(),
        _ => "unknown".into(),
    };
    format!(
        "{} | {} cores | {}",
        s("cpu_model"),
        s("cores"),
        s("kernel")
    )
}

/// The sample directories `DIR/samples/<i>/`, in numeric order.
pub fn sample_dirs(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let s = dir.join("samples");
    if !s.is_dir() {
        return Ok(Vec::new());
    }
    let mut v: Vec<(u64, PathBuf)> = Vec::new();
    for e in std::fs::read_dir(&s)? {
        let e = e?;
        if let Some(i) = e.file_name().to_str().and_then(|n| n.parse().ok()) {
            if e.path().is_dir() {
                v.push((i, e.path()));
            }
        }
    }
    v.sort();
    Ok(v.into_iter().map(|(_, p)| p).collect())
}

/// Spread the paper tables' repetitions over the samples when the sample directories have
/// no paper tables of their own (repetition `i` goes to sample `i`; samples are added when
/// there are more repetitions than sample directories).
fn split_repetitions(top: &Results, reps: &mut Vec<Results>) {
    if reps.iter().any(|r| !r.micro.is_empty()) || top.micro.is_empty() {
        if reps.is_empty() {
            reps.push(top.clone());
        }
        return;
    }
    let most = top.micro.iter().map(|m| m.reps.len()).max().unwrap_or(1);
    if reps.is_empty() {
        // Only the top level: its other experiments are one sample (the first).
        let mut first = top.clone();
        first.micro.clear();
        reps.push(first);
    }
    while reps.len() < most {
        reps.push(Results {
            dir: top.dir.clone(),
            env: top.env.clone(),
            ..Default::default()
        });
    }
    for (i, r) in reps.iter_mut().enumerate() {
        r.micro = top
            .micro
            .iter()
            .filter_map(|m| {
                m.reps.get(i).map(|rep| {
                    let mut row = m.clone();
                    row.reps = vec![rep.clone()];
                    row
                })
            })
            .collect();
    }
}
