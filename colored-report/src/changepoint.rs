//! Change points in a series (one value per commit): E-Divisive means (Matteson and James,
//! "A nonparametric approach for multiple change point analysis of multivariate data", JASA
//! 2014) to place the candidates, and a bottom-up merge that keeps the significant ones, as
//! Apache Otava (Fleming et al., "Hunter: Using Change Point Detection to Hunt for Performance
//! Regressions", ICPE 2023) does.
//!
//! 1. Split: for a segment and a split at `tau`, the divergence of the two sides is the energy
//!    statistic q = mn/(m+n) * (2/(mn) sum|x-y|^a - 1/C(m,2) sum|x-x'|^a - 1/C(n,2) sum|y-y'|^a)
//!    (a = [`Options::exponent`], 1 by default: the means' method). Every segment is split at
//!    its best `tau`, and the halves again, until no segment of [`Options::min_size`] on each
//!    side remains: every split is a candidate. The search does not stop at the first split
//!    that is not significant: a short excursion (a -10% drop lasting 7 commits, reverted) is
//!    often not the best split of the whole series, and a search that stops there never sees
//!    it (the previous version missed such drops; so does Otava's split step, at p 0.01).
//! 2. Merge: each candidate is tested between its neighbours (the segments from the previous
//!    candidate to it and from it to the next) with Student's t test; the candidate with the
//!    largest p-value is removed while that p-value exceeds [`Options::significance`], and the
//!    neighbours' tests are redone. What remains are the change points.
//!
//! Invariants: segments are never shorter than [`Options::min_size`]; the result is
//! deterministic; change points are returned in series order, each with the p-value of its
//! final test. Measured against Otava on 200 synthetic histories by
//! `scripts/changepoints-vs-otava.py` (README, "Tracking speedups across commits"); tested here
//! on known series: a 5% step in 2% noise is found, pure noise gives none (at the rate the
//! significance level allows), a reverted 7-commit drop is found at both ends.

use statrs::distribution::{ContinuousCDF, StudentsT};

/// How to search.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Options {
    /// Exponent of the distances (0 < a < 2; 1 compares means and more).
    pub exponent: f64,
    /// Shortest segment.
    pub min_size: usize,
    /// Largest p-value (Student's t test between the neighbouring segments) that keeps a
    /// candidate as a change point.
    pub significance: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            exponent: 1.0,
            min_size: 3,
            significance: 0.0007,
        }
    }
}

impl Options {
    /// The method and its settings, in a sentence for a report.
    pub fn describe(&self) -> String {
        format!(
            "E-Divisive means splits (segments of at least {} commits) merged bottom-up until every change point's \
             Student t test against its neighbouring segments has p <= {}",
            self.min_size, self.significance
        )
    }
}

/// One change point: the series changes between `index - 1` and `index`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChangePoint {
    /// First index of the segment after the change.
    pub index: usize,
    /// The divergence statistic of the split between its neighbouring change points.
    pub q: f64,
    /// The p-value of Student's t test between the neighbouring segments.
    pub p: f64,
}

/// Best split of `s` (index into `s`, statistic), if `s` is long enough to split.
fn best_split(s: &[f64], a: f64, min: usize) -> Option<(usize, f64)> {
    let l = s.len();
    if l < 2 * min {
        return None;
    }
    let d = |i: usize, j: usize| (s[i] - s[j]).abs().powf(a);
    let mut total = 0.0;
    for i in 0..l {
        for j in i + 1..l {
            total += d(i, j);
        }
    }
    // Left = s[..m], right = s[m..]. Start at m = 1 and grow.
    let (mut wl, mut wr) = (0.0, total - (1..l).map(|k| d(0, k)).sum::<f64>());
    let mut best: Option<(usize, f64)> = None;
    for m in 1..l {
        if m >= min && l - m >= min {
            let (mf, nf) = (m as f64, (l - m) as f64);
            let b = total - wl - wr;
            let within_l = if m > 1 {
                wl / (mf * (mf - 1.0) / 2.0)
            } else {
                0.0
            };
            let within_r = if l - m > 1 {
                wr / (nf * (nf - 1.0) / 2.0)
            } else {
                0.0
            };
            let e = 2.0 * b / (mf * nf) - within_l - within_r;
            let q = mf * nf / (mf + nf) * e;
            if best.map_or(true, |(_, bq)| q > bq) {
                best = Some((m, q));
            }
        }
        // Move s[m] from the right to the left.
        if m < l {
            wl += (0..m).map(|i| d(i, m)).sum::<f64>();
            wr -= (m + 1..l).map(|k| d(m, k)).sum::<f64>();
        }
    }
    best
}

/// Every candidate split of `x[lo..hi]`, recursively (indices into `x`).
fn candidates(x: &[f64], lo: usize, hi: usize, o: &Options, out: &mut Vec<usize>) {
    if let Some((m, q)) = best_split(&x[lo..hi], o.exponent, o.min_size) {
        if q > 0.0 {
            out.push(lo + m);
            candidates(x, lo, lo + m, o, out);
            candidates(x, lo + m, hi, o, out);
        }
    }
}

fn mean_var(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let ss = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>();
    (mean, ss)
}

/// Two-sided p-value of Student's t test (pooled variance) between `a` and `b`. Two
/// constant sides: 1 when equal, 0 when not (a noise-free series, e.g. instruction counts).
pub fn t_test(a: &[f64], b: &[f64]) -> f64 {
    let (na, nb) = (a.len(), b.len());
    if na == 0 || nb == 0 || na + nb < 3 {
        return 1.0;
    }
    let ((ma, sa), (mb, sb)) = (mean_var(a), mean_var(b));
    let df = (na + nb - 2) as f64;
    let pooled = (sa + sb) / df;
    let diff = (ma - mb).abs();
    let scale = ma.abs().max(mb.abs()).max(f64::MIN_POSITIVE);
    if pooled <= (1e-12 * scale).powi(2) {
        return if diff <= 1e-12 * scale { 1.0 } else { 0.0 };
    }
    let t = diff / (pooled * (1.0 / na as f64 + 1.0 / nb as f64)).sqrt();
    let dist = StudentsT::new(0.0, 1.0, df).expect("positive degrees of freedom");
    (2.0 * (1.0 - dist.cdf(t))).clamp(0.0, 1.0)
}

/// The change points of `series` (non-finite values are not allowed: filter them first).
pub fn e_divisive(series: &[f64], o: &Options) -> Vec<ChangePoint> {
    let n = series.len();
    let mut cps = Vec::new();
    candidates(series, 0, n, o, &mut cps);
    cps.sort_unstable();
    merge(series, &mut cps, o);
    // Place each change point where the test between its neighbours is strongest (the
    // candidate came from a split of a longer segment, often a commit or two off), then merge
    // again: a moved point changes its neighbours' tests.
    for k in 0..cps.len() {
        let lo = if k == 0 { 0 } else { cps[k - 1] };
        let hi = cps.get(k + 1).copied().unwrap_or(n);
        let now = neighbour_test(series, &cps, k);
        if let Some((best, pb)) = (lo + o.min_size..=hi.saturating_sub(o.min_size))
            .map(|m| (m, t_test(&series[lo..m], &series[m..hi])))
            .min_by(|a, b| a.1.partial_cmp(&b.1).expect("p-values are numbers"))
        {
            if pb < now {
                cps[k] = best;
            }
        }
    }
    let p = merge(series, &mut cps, o);
    cps.iter()
        .enumerate()
        .map(|(k, &index)| {
            let lo = if k == 0 { 0 } else { cps[k - 1] };
            let hi = cps.get(k + 1).copied().unwrap_or(n);
            let q = split_q(&series[lo..hi], index - lo, o.exponent);
            ChangePoint { index, q, p: p[k] }
        })
        .collect()
}

/// The t test of change point `k` of `cps` between its neighbouring segments.
fn neighbour_test(series: &[f64], cps: &[usize], k: usize) -> f64 {
    let lo = if k == 0 { 0 } else { cps[k - 1] };
    let hi = cps.get(k + 1).copied().unwrap_or(series.len());
    t_test(&series[lo..cps[k]], &series[cps[k]..hi])
}

/// Drop the least significant change point while it is not significant; returns the p-value
/// of each one kept.
fn merge(series: &[f64], cps: &mut Vec<usize>, o: &Options) -> Vec<f64> {
    let mut p: Vec<f64> = (0..cps.len())
        .map(|k| neighbour_test(series, cps, k))
        .collect();
    while let Some((worst, &pw)) = p
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.partial_cmp(b.1).expect("p-values are numbers"))
    {
        if pw <= o.significance {
            break;
        }
        cps.remove(worst);
        p.remove(worst);
        for k in [worst.wrapping_sub(1), worst] {
            if k < cps.len() {
                p[k] = neighbour_test(series, cps, k);
            }
        }
    }
    p
}

/// Change points of many series, as JSON lines: each input line `{"id": ..., "series": [x,
/// ...]}` gives an output line `{"id": ..., "change_points": [index, ...], "p": [p, ...]}`
/// (an index is the first of the segment after the change). Used to measure the method
/// against other tools on the same series.
pub fn jsonl(input: &str, o: &Options) -> anyhow::Result<String> {
    use anyhow::Context;
    let mut out = String::new();
    for (n, line) in input
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("line {}: not JSON", n + 1))?;
        let series: Vec<f64> = v
            .get("series")
            .and_then(|s| s.as_array())
            .with_context(|| format!("line {}: no \"series\" array", n + 1))?
            .iter()
            .map(|x| x.as_f64().filter(|x| x.is_finite()))
            .collect::<Option<_>>()
            .with_context(|| {
                format!(
                    "line {}: \"series\" holds a value that is not a finite number",
                    n + 1
                )
            })?;
        let cps = e_divisive(&series, o);
        let line = serde_json::json!({
            "id": v.get("id").cloned().unwrap_or(serde_json::Value::Null),
            "change_points": cps.iter().map(|c| c.index).collect::<Vec<_>>(),
            "p": cps.iter().map(|c| c.p).collect::<Vec<_>>(),
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    Ok(out)
}

/// The energy statistic of splitting `s` at `m`.
fn split_q(s: &[f64], m: usize, a: f64) -> f64 {
    let (l, r) = s.split_at(m);
    let (mf, nf) = (l.len() as f64, r.len() as f64);
    let d = |x: f64, y: f64| (x - y).abs().powf(a);
    let between: f64 = l
        .iter()
        .flat_map(|x| r.iter().map(move |y| d(*x, *y)))
        .sum();
    let within = |v: &[f64]| {
        let k = v.len() as f64;
        if v.len() < 2 {
            return 0.0;
        }
        let mut t = 0.0;
        for i in 0..v.len() {
            for j in i + 1..v.len() {
                t += d(v[i], v[j]);
            }
        }
        t / (k * (k - 1.0) / 2.0)
    };
    mf * nf / (mf + nf) * (2.0 * between / (mf * nf) - within(l) - within(r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    /// Gaussian noise (Box-Muller) of relative size `sd` around `level`.
    fn noisy(rng: &mut SmallRng, level: f64, sd: f64, n: usize) -> Vec<f64> {
        (0..n)
            .map(|_| {
                let (u, v): (f64, f64) = (rng.gen_range(1e-12..1.0), rng.gen());
                level * (1.0 + sd * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos())
            })
            .collect()
    }

    #[test]
    fn a_five_percent_step_in_two_percent_noise_is_found() {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut hits = 0;
        for _ in 0..40 {
            let mut s = noisy(&mut rng, 100.0, 0.02, 20);
            s.extend(noisy(&mut rng, 95.0, 0.02, 20));
            let cps = e_divisive(&s, &Options::default());
            if cps.iter().any(|c| c.index.abs_diff(20) <= 2) {
                hits += 1;
            }
        }
        // Power, not certainty.
        assert!(hits >= 36, "found the step in {hits} of 40 series");
    }

    #[test]
    fn pure_noise_gives_no_change_points() {
        let mut rng = SmallRng::seed_from_u64(2);
        let mut false_alarms = 0;
        for _ in 0..40 {
            let s = noisy(&mut rng, 100.0, 0.02, 40);
            false_alarms += e_divisive(&s, &Options::default()).len();
        }
        // Significance 0.001 per change point kept.
        assert!(
            false_alarms <= 2,
            "{false_alarms} change points in pure noise"
        );
    }

    #[test]
    fn two_steps_are_both_found_in_order() {
        let mut rng = SmallRng::seed_from_u64(3);
        let mut s = noisy(&mut rng, 100.0, 0.01, 15);
        s.extend(noisy(&mut rng, 90.0, 0.01, 15));
        s.extend(noisy(&mut rng, 100.0, 0.01, 15));
        let idx: Vec<usize> = e_divisive(&s, &Options::default())
            .iter()
            .map(|c| c.index)
            .collect();
        assert_eq!(idx, vec![15, 30]);
    }

    #[test]
    fn a_reverted_short_drop_is_found_at_both_ends() {
        // The miss of the search that stopped at its first non-significant split: -10% for 7
        // commits, then back, in 2% noise.
        let mut rng = SmallRng::seed_from_u64(4);
        let mut found = 0;
        for _ in 0..20 {
            let mut s = noisy(&mut rng, 100.0, 0.02, 20);
            s.extend(noisy(&mut rng, 90.0, 0.02, 7));
            s.extend(noisy(&mut rng, 100.0, 0.02, 15));
            let idx: Vec<usize> = e_divisive(&s, &Options::default())
                .iter()
                .map(|c| c.index)
                .collect();
            if idx.iter().any(|&i| i.abs_diff(20) <= 1) && idx.iter().any(|&i| i.abs_diff(27) <= 1)
            {
                found += 1;
            }
        }
        assert!(found >= 18, "both ends found in {found} of 20 series");
    }

    #[test]
    fn t_test_matches_reference_values() {
        // scipy.stats.ttest_ind([1, 2, 3, 4, 5], [3, 4, 5, 6, 7, 8]) (equal variances):
        // t = -2.3618875, p = 0.0424698.
        let p = t_test(&[1.0, 2.0, 3.0, 4.0, 5.0], &[3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        assert!((p - 0.042_469_8).abs() < 1e-6, "{p}");
        // A noise-free step is certain; no step is no evidence.
        assert_eq!(t_test(&[7.0; 4], &[8.0; 4]), 0.0);
        assert_eq!(t_test(&[7.0; 4], &[7.0; 4]), 1.0);
    }

    #[test]
    fn short_series_have_none() {
        assert!(e_divisive(&[1.0, 2.0, 100.0], &Options::default()).is_empty());
        assert!(e_divisive(&[], &Options::default()).is_empty());
    }
}
