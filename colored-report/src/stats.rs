//! The statistics of the regression tracker: rank tests on sample sets and the confidence
//! intervals that go with them.
//!
//! - [`mann_whitney`]: two independent sample sets (BASE and NEW). Exact permutation p-value of
//!   the rank sum (mid-ranks for ties) while the pooled set is small, the normal approximation
//!   with tie correction beyond; [`shift_ci`] is the Hodges-Lehmann interval of the shift of
//!   the log values, i.e. of the ratio NEW / BASE.
//! - [`wilcoxon_signed_rank`]: paired samples (A B A B ...), on the log pair ratios; exact for
//!   small counts, normal beyond; [`paired_ci`] is the Walsh-average interval of the median log
//!   pair ratio.
//! - [`median_ci`]: the distribution-free interval of one set's median (order statistics and
//!   the binomial distribution), the band of the history plots.
//!
//! Invariants: p-values are two-sided and in (0, 1]; a test that cannot reach significance at
//! level `alpha` with the sample counts given says so through [`RankTest::min_p`] (the smallest
//! p-value its permutation distribution allows) instead of pretending; an interval whose level
//! cannot be reached is `None`. Distributions come from `statrs`; the permutation
//! distributions are counted exactly (dynamic programming over ranks).

use statrs::distribution::{Binomial, ContinuousCDF, DiscreteCDF, Normal};

/// Pooled sizes up to this are tested with the exact permutation distribution.
const EXACT_MAX: usize = 60;

/// The outcome of a rank test.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RankTest {
    /// Two-sided p-value.
    pub p: f64,
    /// The smallest two-sided p-value the test can give with these sample counts (ties
    /// ignored): when it exceeds `alpha`, no data could make the change significant.
    pub min_p: f64,
    /// Whether `p` comes from the exact distribution (else the normal approximation).
    pub exact: bool,
}

impl RankTest {
    /// Whether the test can reach significance at `alpha` at all.
    pub fn can_reach(&self, alpha: f64) -> bool {
        self.min_p <= alpha
    }
}

/// Median of the finite values (`None` when there are none).
pub fn median(v: &[f64]) -> Option<f64> {
    super::median(v.iter().copied())
}

fn sorted(v: &[f64]) -> Vec<f64> {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    s.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    s
}

/// Twice the mid-ranks (1-based) of `v` in its own order: integers, so exact counting works.
fn double_ranks(v: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].partial_cmp(&v[b]).expect("finite"));
    let mut r = vec![0usize; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        // Ranks i+1 ..= j+1 share (i+1 + j+1) / 2; doubled: i + j + 2.
        for &k in &idx[i..=j] {
            r[k] = i + j + 2;
        }
        i = j + 1;
    }
    r
}

/// Count, for every sum `s`, the subsets of `m` of the `ranks` whose sum is `s`.
fn subset_sum_counts(ranks: &[usize], m: usize) -> Vec<f64> {
    let total: usize = ranks.iter().sum();
    // dp[k][s]: subsets of size k with sum s, over the ranks seen so far.
    let mut dp = vec![vec![0f64; total + 1]; m + 1];
    dp[0][0] = 1.0;
    for (seen, &r) in ranks.iter().enumerate() {
        for k in (1..=m.min(seen + 1)).rev() {
            let (lo, hi) = dp.split_at_mut(k);
            let (prev, cur) = (&lo[k - 1], &mut hi[0]);
            for s in (r..=total).rev() {
                cur[s] += prev[s - r];
            }
        }
    }
    dp.swap_remove(m)
}

/// Two-sided p of an observed statistic `obs` under a discrete distribution given as counts per
/// value, symmetric or not: the mass at least as far from the mean as `obs`.
fn two_sided(counts: &[f64], obs: usize) -> f64 {
    let total: f64 = counts.iter().sum();
    let mean: f64 = counts
        .iter()
        .enumerate()
        .map(|(s, c)| s as f64 * c)
        .sum::<f64>()
        / total;
    let dev = (obs as f64 - mean).abs() - 1e-9;
    let tail: f64 = counts
        .iter()
        .enumerate()
        .filter(|(s, _)| (*s as f64 - mean).abs() >= dev)
        .map(|(_, c)| c)
        .sum();
    (tail / total).min(1.0)
}

fn ln_choose(n: usize, k: usize) -> f64 {
    statrs::function::factorial::ln_binomial(n as u64, k as u64)
}

fn normal_two_sided(z: f64) -> f64 {
    let n = Normal::standard();
    (2.0 * (1.0 - n.cdf(z.abs()))).clamp(f64::MIN_POSITIVE, 1.0)
}

/// Mann-Whitney U (Wilcoxon rank-sum) test of `x` against `y`; `None` when a side is empty.
pub fn mann_whitney(x: &[f64], y: &[f64]) -> Option<RankTest> {
    let (x, y) = (sorted(x), sorted(y));
    let (m, n) = (x.len(), y.len());
    if m == 0 || n == 0 {
        return None;
    }
    let pooled: Vec<f64> = x.iter().chain(&y).copied().collect();
    let big_n = m + n;
    let min_p = (2.0 * (-ln_choose(big_n, m)).exp()).min(1.0);
    let r2 = double_ranks(&pooled);
    let w2: usize = r2[..m].iter().sum();
    if big_n <= EXACT_MAX {
        let counts = subset_sum_counts(&r2, m);
        return Some(RankTest {
            p: two_sided(&counts, w2),
            min_p,
            exact: true,
        });
    }
    // Normal approximation with the tie correction of the variance.
    let (mf, nf, nn) = (m as f64, n as f64, big_n as f64);
    let mean = mf * (nn + 1.0) / 2.0;
    let t_sum: f64 = tie_groups(&pooled).iter().map(|&t| t * t * t - t).sum();
    let var = mf * nf / 12.0 * ((nn + 1.0) - t_sum / (nn * (nn - 1.0)));
    if var <= 0.0 {
        return Some(RankTest {
            p: 1.0,
            min_p,
            exact: false,
        });
    }
    let z = (w2 as f64 / 2.0 - mean) / var.sqrt();
    Some(RankTest {
        p: normal_two_sided(z),
        min_p,
        exact: false,
    })
}

/// Sizes of the groups of equal values (1 for a value without ties).
fn tie_groups(v: &[f64]) -> Vec<f64> {
    let s = sorted(v);
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let mut j = i;
        while j + 1 < s.len() && s[j + 1] == s[i] {
            j += 1;
        }
        out.push((j - i + 1) as f64);
        i = j + 1;
    }
    out
}

/// The `k`-th order statistic index for a distribution-free interval at level `1 - alpha`,
/// given the null distribution of the statistic as counts over 0..=max (ascending): the
/// largest `k >= 1` with P(stat <= k - 1) <= alpha / 2, or `None` when even k = 1 fails.
fn interval_k(counts: &[f64], alpha: f64) -> Option<usize> {
    let total: f64 = counts.iter().sum();
    let mut cum = 0.0;
    let mut k = None;
    for (c, &cnt) in counts.iter().enumerate() {
        cum += cnt;
        if cum / total <= alpha / 2.0 + 1e-12 {
            k = Some(c + 1);
        } else {
            break;
        }
    }
    k
}

/// A confidence interval of a ratio, as `(low, high)` factors (e.g. 0.78..0.85) with the
/// level it reaches.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RatioCi {
    pub low: f64,
    pub high: f64,
    /// Achieved coverage (>= the level asked for).
    pub level: f64,
}

/// Hodges-Lehmann interval of the ratio `y / x` at level `1 - alpha` (positive samples only):
/// order statistics of the pairwise log differences, with the cut-off from the exact null
/// distribution of U (normal approximation for large sets). Consistent with
/// [`mann_whitney`]: the interval excludes 1 about when the test is significant.
pub fn shift_ci(x: &[f64], y: &[f64], alpha: f64) -> Option<RatioCi> {
    let lx: Vec<f64> = sorted(x)
        .into_iter()
        .filter(|v| *v > 0.0)
        .map(f64::ln)
        .collect();
    let ly: Vec<f64> = sorted(y)
        .into_iter()
        .filter(|v| *v > 0.0)
        .map(f64::ln)
        .collect();
    let (m, n) = (lx.len(), ly.len());
    if m == 0 || n == 0 {
        return None;
    }
    let mut d: Vec<f64> = lx
        .iter()
        .flat_map(|a| ly.iter().map(move |b| b - a))
        .collect();
    d.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    let mn = m * n;
    let (k, level) = if m + n <= EXACT_MAX {
        // U = W - m(m+1)/2 with untied ranks 1..=m+n.
        let ranks: Vec<usize> = (1..=m + n).collect();
        let w = subset_sum_counts(&ranks, m);
        let offset = m * (m + 1) / 2;
        let u: Vec<f64> = w[offset..=offset + mn].to_vec();
        let k = interval_k(&u, alpha)?;
        let total: f64 = u.iter().sum();
        // Coverage of [d(k), d(mn-k+1)] is 1 - 2 P(U <= k - 1).
        let below: f64 = u[..k].iter().sum();
        (k, 1.0 - 2.0 * below / total)
    } else {
        let z = Normal::standard().inverse_cdf(1.0 - alpha / 2.0);
        let mnf = mn as f64;
        let sd = (mnf * (m + n + 1) as f64 / 12.0).sqrt();
        let k = (mnf / 2.0 - z * sd).floor();
        if k < 1.0 {
            return None;
        }
        (k as usize, 1.0 - alpha)
    };
    Some(RatioCi {
        low: d[k - 1].exp(),
        high: d[mn - k].exp(),
        level,
    })
}

/// Wilcoxon signed-rank test of paired log ratios `ln(b_i / a_i)` (pairs with a non-positive
/// value are dropped; zero differences are dropped, as Wilcoxon's test does). `None` without
/// pairs.
pub fn wilcoxon_signed_rank(a: &[f64], b: &[f64]) -> Option<RankTest> {
    let d = log_ratios(a, b);
    if d.is_empty() {
        return None;
    }
    let n_all = d.len();
    let min_p = (2.0 * 0.5f64.powi(n_all as i32)).min(1.0);
    let nz: Vec<f64> = d.into_iter().filter(|v| v.abs() > 1e-12).collect();
    if nz.is_empty() {
        return Some(RankTest {
            p: 1.0,
            min_p,
            exact: true,
        });
    }
    let abs: Vec<f64> = nz.iter().map(|v| v.abs()).collect();
    let r2 = double_ranks(&abs);
    let t2: usize = r2
        .iter()
        .zip(&nz)
        .filter(|(_, v)| **v > 0.0)
        .map(|(r, _)| r)
        .sum();
    let n = nz.len();
    if n <= EXACT_MAX {
        let counts = signed_rank_counts(&r2);
        return Some(RankTest {
            p: two_sided(&counts, t2),
            min_p,
            exact: true,
        });
    }
    let nf = n as f64;
    let mean = nf * (nf + 1.0) / 4.0;
    let t_sum: f64 = tie_groups(&abs).iter().map(|&t| t * t * t - t).sum();
    let var = nf * (nf + 1.0) * (2.0 * nf + 1.0) / 24.0 - t_sum / 48.0;
    let z = (t2 as f64 / 2.0 - mean) / var.sqrt();
    Some(RankTest {
        p: normal_two_sided(z),
        min_p,
        exact: false,
    })
}

/// Counts of every sum of a subset of `r2` (each element in or out with equal chance).
fn signed_rank_counts(r2: &[usize]) -> Vec<f64> {
    let total: usize = r2.iter().sum();
    let mut dp = vec![0f64; total + 1];
    dp[0] = 1.0;
    for &r in r2 {
        for s in (r..=total).rev() {
            dp[s] += dp[s - r];
        }
    }
    dp
}

/// `ln(b_i / a_i)` for the pairs where both are positive and finite.
pub fn log_ratios(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter()
        .zip(b)
        .filter(|(x, y)| x.is_finite() && y.is_finite() && **x > 0.0 && **y > 0.0)
        .map(|(x, y)| (y / x).ln())
        .collect()
}

/// Interval of the median pair ratio `b / a` at level `1 - alpha`: order statistics of the
/// Walsh averages of the log ratios, cut-off from the exact signed-rank distribution.
pub fn paired_ci(a: &[f64], b: &[f64], alpha: f64) -> Option<RatioCi> {
    let d = log_ratios(a, b);
    let n = d.len();
    if n == 0 {
        return None;
    }
    let mut walsh: Vec<f64> = (0..n)
        .flat_map(|i| (i..n).map(move |j| (i, j)))
        .map(|(i, j)| (d[i] + d[j]) / 2.0)
        .collect();
    walsh.sort_by(|x, y| x.partial_cmp(y).expect("finite"));
    let big = walsh.len();
    let (k, level) = if n <= EXACT_MAX {
        let ranks: Vec<usize> = (1..=n).collect();
        let counts = signed_rank_counts(&ranks);
        let k = interval_k(&counts, alpha)?;
        let total: f64 = counts.iter().sum();
        let below: f64 = counts[..k].iter().sum();
        (k, 1.0 - 2.0 * below / total)
    } else {
        let z = Normal::standard().inverse_cdf(1.0 - alpha / 2.0);
        let nf = n as f64;
        let k = (nf * (nf + 1.0) / 4.0 - z * (nf * (nf + 1.0) * (2.0 * nf + 1.0) / 24.0).sqrt())
            .floor();
        if k < 1.0 {
            return None;
        }
        (k as usize, 1.0 - alpha)
    };
    Some(RatioCi {
        low: walsh[k - 1].exp(),
        high: walsh[big - k].exp(),
        level,
    })
}

/// Distribution-free interval of the median of `v`: `(low, high, level)` with the order
/// statistics x(k), x(n-k+1) for the largest k whose level is at least `level`; with too few
/// samples for that level, `[min, max]` and the (lower) level it has. `None` when empty.
pub fn median_ci(v: &[f64], level: f64) -> Option<(f64, f64, f64)> {
    let s = sorted(v);
    let n = s.len();
    if n == 0 {
        return None;
    }
    if n == 1 {
        return Some((s[0], s[0], 0.0));
    }
    let b = Binomial::new(0.5, n as u64).expect("valid binomial");
    // Coverage of [x(k), x(n-k+1)] is 1 - 2 P(B <= k-1).
    let cover = |k: usize| 1.0 - 2.0 * b.cdf(k as u64 - 1);
    let mut k = 1;
    while k < n / 2 && cover(k + 1) >= level {
        k += 1;
    }
    Some((s[k - 1], s[n - k], cover(k)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn mann_whitney_exact_matches_the_textbook_counts() {
        // Complete separation of 5 and 5: 2 of the C(10,5) = 252 arrangements are as extreme.
        let x = [10.0, 11.0, 12.0, 13.0, 14.0];
        let y = [1.0, 2.0, 3.0, 4.0, 5.0];
        let t = mann_whitney(&x, &y).unwrap();
        assert!(t.exact && close(t.p, 2.0 / 252.0), "{t:?}");
        assert!(close(t.min_p, 2.0 / 252.0) && t.can_reach(0.01));
        // One overlap: U = 1; P(U <= 1) = 2/252, two-sided 4/252.
        let y = [1.0, 2.0, 3.0, 4.0, 10.5];
        let t = mann_whitney(&x, &y).unwrap();
        assert!(close(t.p, 4.0 / 252.0), "{t:?}");
        // Identical sets: p = 1.
        assert!(close(mann_whitney(&x, &x).unwrap().p, 1.0));
        // One sample per side can never be significant.
        let t = mann_whitney(&[1.0], &[2.0]).unwrap();
        assert!(close(t.min_p, 1.0) && !t.can_reach(0.01));
        assert!(mann_whitney(&[], &[1.0]).is_none());
    }

    #[test]
    fn mann_whitney_with_ties_counts_mid_ranks() {
        // All equal on both sides: no evidence at all.
        let t = mann_whitney(&[5.0; 4], &[5.0; 4]).unwrap();
        assert!(close(t.p, 1.0), "{t:?}");
        // Deterministic counts that differ: complete separation despite the ties inside.
        let t = mann_whitney(&[100.0; 5], &[101.0; 5]).unwrap();
        assert!(close(t.p, 2.0 / 252.0), "{t:?}");
    }

    #[test]
    fn normal_approximation_agrees_with_exact_near_the_boundary() {
        // 31 vs 31 (exact) against 31 vs 30 + shifted copy (normal): both tiny for a clear
        // shift, both large for interleaved sets.
        let x: Vec<f64> = (0..40).map(|i| i as f64).collect();
        let y: Vec<f64> = (0..40).map(|i| i as f64 + 0.5).collect();
        let t = mann_whitney(&x, &y).unwrap();
        assert!(!t.exact && t.p > 0.5, "{t:?}");
        let y: Vec<f64> = (0..40).map(|i| i as f64 + 30.0).collect();
        let t = mann_whitney(&x, &y).unwrap();
        assert!(!t.exact && t.p < 1e-6, "{t:?}");
    }

    #[test]
    fn normal_approximations_match_reference_values() {
        // Reference p-values from scipy 1.16.3 (two-sided, normal approximation with the tie
        // correction, no continuity correction):
        //   mannwhitneyu(x, y, method='asymptotic', use_continuity=False)
        //   wilcoxon(d, method='approx', correction=False, zero_method='wilcox')
        let close6 = |a: f64, b: f64| (a - b).abs() < 1e-6 * b.max(1e-3);
        // 35 vs 30 with many ties (pooled 65: beyond the exact counts).
        let x: Vec<f64> = (0..35).map(|i| f64::from(i * 7 % 23)).collect();
        let y: Vec<f64> = (0..30).map(|j| f64::from(j * 5 % 19) + 3.0).collect();
        let t = mann_whitney(&x, &y).unwrap();
        assert!(!t.exact && close6(t.p, 0.544_520_517_232_686_8), "{t:?}");
        // 40 vs 40 without ties, shifted by 8.
        let x: Vec<f64> = (0..40).map(f64::from).collect();
        let y: Vec<f64> = (0..40).map(|i| f64::from(i) + 8.0).collect();
        let t = mann_whitney(&x, &y).unwrap();
        assert!(!t.exact && close6(t.p, 0.005_574_708_228_695_961), "{t:?}");
        // 70 pairs, pair ratios 2^k (log ratios k ln 2: ties between k and -k stay exact),
        // k = (13 i mod 17) - shift, with zero differences (dropped, as Wilcoxon's test does).
        const P6: f64 = 0.002_611_400_079_810_629;
        const P7: f64 = 0.116_182_431_522_530_62;
        let a = vec![1.0; 70];
        for (shift, want) in [(6, P6), (7, P7)] {
            let b: Vec<f64> = (0..70).map(|i| 2f64.powi(i * 13 % 17 - shift)).collect();
            let t = wilcoxon_signed_rank(&a, &b).unwrap();
            assert!(!t.exact && close6(t.p, want), "shift {shift}: {t:?}");
        }
    }

    #[test]
    fn shift_ci_brackets_the_ratio() {
        let x = [100.0, 101.0, 99.0, 100.5, 99.5];
        let y: Vec<f64> = x.iter().map(|v| v * 0.8).collect();
        let ci = shift_ci(&x, &y, 0.01).unwrap();
        assert!(ci.low < 0.8 && ci.high > 0.8 && ci.high < 1.0, "{ci:?}");
        assert!(close(ci.level, 1.0 - 2.0 / 252.0), "{ci:?}");
        // Three per side cannot give a 99% interval.
        assert!(shift_ci(&x[..3], &y[..3], 0.01).is_none());
    }

    #[test]
    fn wilcoxon_signed_rank_exact() {
        // 8 pairs all worse: 2 / 2^8.
        let a = [10.0; 8];
        let b = [9.0, 9.1, 8.9, 9.2, 9.05, 8.95, 9.15, 8.85];
        let t = wilcoxon_signed_rank(&a, &b).unwrap();
        assert!(t.exact && close(t.p, 2.0 / 256.0), "{t:?}");
        assert!(t.can_reach(0.01));
        // 5 pairs cannot reach 0.01.
        let t = wilcoxon_signed_rank(&a[..5], &b[..5]).unwrap();
        assert!(!t.can_reach(0.01) && close(t.p, 2.0 / 32.0), "{t:?}");
        // No change at all.
        assert!(close(wilcoxon_signed_rank(&a, &a).unwrap().p, 1.0));
        let ci = paired_ci(&a, &b, 0.01).unwrap();
        assert!(ci.low < 0.9 && ci.high > 0.9 && ci.high < 1.0, "{ci:?}");
    }

    #[test]
    fn median_ci_levels() {
        let v: Vec<f64> = (1..=5).map(f64::from).collect();
        // n = 5: only [min, max], at 1 - 2/32.
        let (lo, hi, level) = median_ci(&v, 0.95).unwrap();
        assert_eq!((lo, hi), (1.0, 5.0));
        assert!(close(level, 1.0 - 2.0 / 32.0));
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        let (lo, hi, level) = median_ci(&v, 0.95).unwrap();
        assert!(level >= 0.95 && lo > 1.0 && hi < 20.0, "{lo} {hi} {level}");
        assert_eq!(median_ci(&[3.0], 0.95), Some((3.0, 3.0, 0.0)));
    }
}
