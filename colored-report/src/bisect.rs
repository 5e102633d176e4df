//! One step of a bisection: is a candidate commit on the GOOD or the BAD side of a figure's
//! move? Decided on sample sets, never on one sample.
//!
//! Rule: the candidate's median is closer (in log terms) to one side's median; it belongs to
//! that side only if the rank test separates it from the *other* side at `alpha` (Mann-Whitney
//! U). Otherwise the step is unsure, and the caller takes more samples. With `force`, an unsure
//! step is decided by closeness alone, and says so.

use super::stats;
use std::fmt::Write;

/// Which side a candidate is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Good,
    Bad,
    Unsure,
}

/// A step's verdict and the evidence for it.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub side: Side,
    /// Printable evidence: medians, counts, changes and p-values against both sides.
    pub evidence: String,
    /// Decided by closeness alone (forced), not by the test.
    pub weak: bool,
}

fn line(t: &mut String, name: &str, from: &[f64], to: &[f64], alpha: f64) -> bool {
    let (a, b) = (stats::median(from), stats::median(to));
    let test = stats::mann_whitney(from, to);
    let sig = test.is_some_and(|t| t.p <= alpha && t.can_reach(alpha));
    let _ = writeln!(
        t,
        "  vs {name}: {} -> {} ({}), {}",
        super::fmt_opt(a),
        super::fmt_opt(b),
        super::compare::change_pct(a, b).map_or("n/a".into(), |p| format!("{p:+.2}%")),
        match test {
            Some(x) if x.can_reach(alpha) => format!(
                "p={:.4} ({})",
                x.p,
                if sig {
                    "significant"
                } else {
                    "not significant"
                }
            ),
            Some(x) => format!("cannot reach alpha {alpha} (min p {:.3})", x.min_p),
            None => "no samples".into(),
        }
    );
    sig
}

/// Classify `cand` between `good` and `bad` (samples of the figure at each commit).
pub fn classify(good: &[f64], bad: &[f64], cand: &[f64], alpha: f64, force: bool) -> Step {
    let mut t = String::new();
    let (g, b, c) = (stats::median(good), stats::median(bad), stats::median(cand));
    let _ = writeln!(
        t,
        "  candidate: median {} of {} sample(s); GOOD {} ({}), BAD {} ({})",
        super::fmt_opt(c),
        cand.len(),
        super::fmt_opt(g),
        good.len(),
        super::fmt_opt(b),
        bad.len()
    );
    let from_good = line(&mut t, "GOOD", good, cand, alpha);
    let from_bad = line(&mut t, "BAD", bad, cand, alpha);
    let (Some(g), Some(b), Some(c)) = (g, b, c) else {
        let _ = writeln!(t, "  -> unsure (a side has no samples)");
        return Step {
            side: Side::Unsure,
            evidence: t,
            weak: false,
        };
    };
    let dist = |x: f64| (c / x).abs().ln().abs();
    let closer_to_bad = dist(b) < dist(g);
    let (side, weak, why) = match (closer_to_bad, from_good, from_bad) {
        (true, true, _) => (
            Side::Bad,
            false,
            "closer to BAD and significantly apart from GOOD",
        ),
        (false, _, true) => (
            Side::Good,
            false,
            "closer to GOOD and significantly apart from BAD",
        ),
        (true, false, _) if force => (
            Side::Bad,
            true,
            "closer to BAD, NOT significantly apart from GOOD (forced)",
        ),
        (false, _, false) if force => (
            Side::Good,
            true,
            "closer to GOOD, NOT significantly apart from BAD (forced)",
        ),
        _ => (
            Side::Unsure,
            false,
            "not significantly apart from the other side: more samples needed",
        ),
    };
    let _ = writeln!(
        t,
        "  -> {} ({why})",
        match side {
            Side::Good => "good",
            Side::Bad => "bad",
            Side::Unsure => "unsure",
        }
    );
    Step {
        side,
        evidence: t,
        weak,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: [f64; 5] = [100.0, 101.0, 99.0, 100.5, 99.5];
    const BAD: [f64; 5] = [80.0, 81.0, 79.0, 80.5, 79.5];

    #[test]
    fn a_candidate_like_bad_is_bad_and_like_good_is_good() {
        let s = classify(&GOOD, &BAD, &[80.2, 79.8, 81.2, 78.9, 80.1], 0.01, false);
        assert_eq!(s.side, Side::Bad, "{}", s.evidence);
        let s = classify(&GOOD, &BAD, &[100.2, 99.8, 101.2, 98.9, 100.1], 0.01, false);
        assert_eq!(s.side, Side::Good, "{}", s.evidence);
    }

    #[test]
    fn one_noisy_sample_does_not_steer() {
        // A single sample that looks bad cannot be told apart from GOOD: unsure, not bad.
        let s = classify(&GOOD, &BAD, &[80.0], 0.01, false);
        assert_eq!(s.side, Side::Unsure, "{}", s.evidence);
        let s = classify(&GOOD, &BAD, &[80.0], 0.01, true);
        assert!(s.weak && s.side == Side::Bad);
    }
}
