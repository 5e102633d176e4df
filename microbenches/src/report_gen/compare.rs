//! The regression tracker: every figure's change from BASE to NEW, the ratios that matter, and
//! the verdict. A ratio regresses when it fell by more than the threshold (percent); an
//! experiment that produced figures in BASE but none in NEW is missing; both fail. A value that
//! is `n/a` on either side is printed as such and never compared (never taken as 0).

use super::figures::{figures, key_ratios};
use super::fmt_opt;
use super::load::Results;
use std::collections::BTreeMap;
use std::fmt::Write;

/// What the comparison found.
#[derive(Clone, Debug, Default)]
pub struct Comparison {
    /// The printable report.
    pub text: String,
    /// Ratios that fell by more than the threshold: (name, base, new, change %).
    pub regressions: Vec<(String, f64, f64, f64)>,
    /// Ratios that rose by more than the threshold.
    pub improvements: Vec<String>,
    /// Experiments of BASE without figures in NEW, with NEW's error where it recorded one.
    pub missing: Vec<(String, String)>,
    /// Ratios that are `n/a` on at least one side (listed, never compared).
    pub not_compared: Vec<String>,
}

impl Comparison {
    pub fn failed(&self) -> bool {
        !self.regressions.is_empty() || !self.missing.is_empty()
    }
}

/// Change from `a` to `b` in percent of `|a|`; `None` when either is absent or `a` is 0.
pub fn change_pct(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if a != 0.0 && a.is_finite() && b.is_finite() => {
            Some((b - a) / a.abs() * 100.0)
        }
        _ => None,
    }
}

fn pct(p: Option<f64>) -> String {
    p.map_or_else(|| "n/a".into(), |p| format!("{p:+.1}%"))
}

/// Compare two loaded results directories.
pub fn compare(base: &Results, new: &Results, threshold_pct: f64) -> Comparison {
    let mut c = Comparison::default();
    let mut t = String::new();
    let _ = writeln!(t, "# Comparison (threshold {threshold_pct}%)\n");
    let _ = writeln!(
        t,
        "- BASE: {} (commit {}, {})",
        base.dir.display(),
        base.env_str("commit"),
        base.env_str("date")
    );
    let _ = writeln!(
        t,
        "- NEW:  {} (commit {}, {})\n",
        new.dir.display(),
        new.env_str("commit"),
        new.env_str("date")
    );

    // Ratios first: they decide the verdict.
    let _ = writeln!(t, "## Ratios that matter (higher is better)\n");
    let _ = writeln!(
        t,
        "| ratio | paper | BASE | NEW | change | verdict |\n|---|---:|---:|---:|---:|---|"
    );
    let br = key_ratios(base);
    let nr = key_ratios(new);
    for (b, n) in br.iter().zip(&nr) {
        let ch = change_pct(b.value, n.value);
        let verdict = match ch {
            None => {
                c.not_compared.push(b.name.to_string());
                "not compared (n/a)".to_string()
            }
            Some(p) if p < -threshold_pct => {
                c.regressions.push((
                    b.name.to_string(),
                    b.value.unwrap_or_default(),
                    n.value.unwrap_or_default(),
                    p,
                ));
                format!("REGRESSED (fell more than {threshold_pct}%)")
            }
            Some(p) if p > threshold_pct => {
                c.improvements.push(b.name.to_string());
                "improved".into()
            }
            Some(_) => "ok".into(),
        };
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {} | {} |",
            b.name,
            fmt_opt(b.paper),
            fmt_opt(b.value),
            fmt_opt(n.value),
            pct(ch),
            verdict
        );
    }

    // Missing experiments.
    let new_exp = new.experiments();
    for e in base.experiments() {
        if !new_exp.contains(&e) {
            let why = new
                .missing
                .iter()
                .find(|(k, _)| {
                    e == **k || e.starts_with(&format!("{k}/")) || e.starts_with(&format!("{k}-"))
                })
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| "no result in NEW".into());
            c.missing.push((e, why));
        }
    }
    let _ = writeln!(t, "\n## Experiments in BASE missing from NEW\n");
    if c.missing.is_empty() {
        let _ = writeln!(t, "none");
    }
    for (e, why) in &c.missing {
        let _ = writeln!(t, "- MISSING {e}: {}", why.lines().next().unwrap_or(""));
    }

    // Every figure.
    let _ = writeln!(t, "\n## Every figure\n");
    let _ = writeln!(
        t,
        "| figure | unit | BASE | NEW | change | |\n|---|---|---:|---:|---:|---|"
    );
    let bf: BTreeMap<String, _> = figures(base)
        .into_iter()
        .map(|f| (f.key.clone(), f))
        .collect();
    let nf: BTreeMap<String, _> = figures(new)
        .into_iter()
        .map(|f| (f.key.clone(), f))
        .collect();
    let mut keys: Vec<&String> = bf.keys().chain(nf.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        let b = bf.get(k);
        let n = nf.get(k);
        let f = b.or(n).expect("key from one side");
        let (bv, nv) = (b.and_then(|f| f.value), n.and_then(|f| f.value));
        let ch = change_pct(bv, nv);
        let note = match (b.is_some(), n.is_some(), ch) {
            (true, false, _) => "missing in NEW".to_string(),
            (false, true, _) => "new".to_string(),
            (_, _, Some(p)) if p.abs() >= threshold_pct => {
                if (p > 0.0) == f.higher_is_better {
                    "better".into()
                } else {
                    "worse".into()
                }
            }
            _ => String::new(),
        };
        let _ = writeln!(
            t,
            "| {k} | {} | {} | {} | {} | {note} |",
            f.unit,
            fmt_opt(bv),
            fmt_opt(nv),
            pct(ch)
        );
    }

    let _ = writeln!(
        t,
        "\n{}: {} ratio(s) regressed past {threshold_pct}%, {} improved, {} not compared (n/a), {} experiment(s) missing",
        if c.failed() { "FAIL" } else { "PASS" },
        c.regressions.len(),
        c.improvements.len(),
        c.not_compared.len(),
        c.missing.len()
    );
    c.text = t;
    c
}
