//! Flat figures (one measured number each) and the ratios that matter, both derived from a
//! loaded results directory. The comparison and the CSVs work on these.

use super::load::{sfs_name, Results};
use super::ratio;

/// One measured number.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    /// Unique key, e.g. `sws/mely-all-w2-c200 req/s`.
    pub key: String,
    /// The experiment it comes from (see `Results::experiments`).
    pub experiment: String,
    pub value: Option<f64>,
    pub unit: &'static str,
    pub higher_is_better: bool,
}

/// A ratio that matters: a speedup or a comparison of two configurations measured in one run.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyRatio {
    pub name: &'static str,
    /// The papers' figure for the same ratio, where they give one.
    pub paper: Option<f64>,
    /// Where the paper's figure comes from, or why there is none.
    pub paper_note: &'static str,
    pub value: Option<f64>,
}

fn fig(
    out: &mut Vec<Figure>,
    experiment: String,
    metric: &str,
    value: Option<f64>,
    unit: &'static str,
    higher_is_better: bool,
) {
    out.push(Figure {
        key: format!("{experiment} {metric}"),
        experiment,
        value,
        unit,
        higher_is_better,
    });
}

/// Every figure of a results directory, in a stable order.
pub fn figures(r: &Results) -> Vec<Figure> {
    let mut out = Vec::new();
    for m in &r.micro {
        let e = m.name();
        fig(
            &mut out,
            e.clone(),
            "KEvents/s",
            m.kevents_median(),
            "KEvents/s",
            true,
        );
        fig(
            &mut out,
            e.clone(),
            "steal cost",
            m.steal_cost_cycles(),
            "cycles",
            false,
        );
        fig(
            &mut out,
            e.clone(),
            "stolen time",
            m.stolen_time_cycles(),
            "cycles",
            true,
        );
        fig(
            &mut out,
            e.clone(),
            "locking time",
            m.locking_time_pct(),
            "%",
            false,
        );
        fig(
            &mut out,
            e,
            "L2 misses/event",
            m.l2_misses_per_event(),
            "misses",
            false,
        );
    }
    for d in &r.dispatch {
        fig(
            &mut out,
            format!("microbench/dispatch-w{}/{}", d.workers, d.runtime),
            "ns/event",
            d.ns_per_event,
            "ns",
            false,
        );
    }
    for w in &r.sws {
        let e = format!("sws/{}-w{}-c{}", w.config, w.workers, w.clients);
        fig(
            &mut out,
            e.clone(),
            "req/s",
            w.requests_per_sec,
            "req/s",
            true,
        );
        fig(&mut out, e.clone(), "p99 latency", w.p99_us, "us", false);
        fig(
            &mut out,
            e.clone(),
            "steal cost",
            w.stats.steal_cost_cycles,
            "cycles",
            false,
        );
        fig(
            &mut out,
            e,
            "stolen time",
            w.stats.stolen_time_cycles,
            "cycles",
            true,
        );
    }
    for f in &r.sfs {
        let e = sfs_name(f);
        fig(&mut out, e.clone(), "MB/s", f.mbytes_per_sec, "MB/s", true);
        if f.config.starts_with("mount-") {
            let cpu = f.server_cpu_ms_per_mb;
            fig(&mut out, e.clone(), "server CPU", cpu, "ms/MB", false);
        }
        fig(
            &mut out,
            e.clone(),
            "steal cost",
            f.stats.steal_cost_cycles,
            "cycles",
            false,
        );
        fig(
            &mut out,
            e,
            "stolen time",
            f.stats.stolen_time_cycles,
            "cycles",
            true,
        );
    }
    for i in &r.instr {
        let e = super::instr::experiment(i);
        let (m, u) = (super::instr::METRIC, super::instr::UNIT);
        fig(&mut out, e, m, i.instructions, u, false);
    }
    out
}

/// The largest worker count SWS ran with (the Figure 7 curves).
pub fn sws_main_workers(r: &Results) -> usize {
    r.sws.iter().map(|s| s.workers).max().unwrap_or(0)
}

/// The largest worker count the colored SFS ran with.
pub fn sfs_main_workers(r: &Results) -> Option<usize> {
    r.sfs.iter().filter_map(|s| s.workers).max()
}

/// Peak requests/s of `a` over `b`, both at the main worker count and over the client counts
/// where both were measured.
pub fn sws_peak_ratio(r: &Results, a: &str, b: &str) -> Option<f64> {
    let w = sws_main_workers(r);
    let clients: Vec<usize> = r
        .sws_clients(w)
        .into_iter()
        .filter(|&c| r.sws_rps(a, w, c).is_some() && r.sws_rps(b, w, c).is_some())
        .collect();
    if clients.is_empty() {
        return None;
    }
    ratio(r.sws_peak(a, w, &clients), r.sws_peak(b, w, &clients))
}

/// Speedup of an SWS configuration from 1 worker to the main worker count, at the client
/// counts measured with 1 worker (peak over those).
pub fn sws_speedup(r: &Results, config: &str) -> Option<f64> {
    let w = sws_main_workers(r);
    if w <= 1 {
        return None;
    }
    let clients: Vec<usize> = r
        .sws_clients(1)
        .into_iter()
        .filter(|&c| r.sws_rps(config, 1, c).is_some() && r.sws_rps(config, w, c).is_some())
        .collect();
    if clients.is_empty() {
        return None;
    }
    ratio(
        r.sws_peak(config, w, &clients),
        r.sws_peak(config, 1, &clients),
    )
}

/// Speedup of an SFS configuration from 1 worker to the main worker count.
pub fn sfs_speedup(r: &Results, config: &str) -> Option<f64> {
    let w = sfs_main_workers(r)?;
    if w <= 1 {
        return None;
    }
    ratio(r.sfs_mbps(config, Some(w)), r.sfs_mbps(config, Some(1)))
}

/// The configurations of `scripts/reproduce.sh` the report names (the config part of the
/// result file names). Each name is one definition: a changed definition gets a new name.
pub mod configs {
    /// SWS, Mely all with connection penalty 1 and the one-color steal: the paper's Mely
    /// (stealing relieves the Epoll core of request processing).
    pub const SWS_MELY_PAPER: &str = "mely-all-p1";
    /// SWS, Mely all with our tuned connection penalty 1000 and the paper's one-color steal.
    pub const SWS_MELY_TUNED: &str = "mely-all-p1000";
    /// SWS, Mely all with penalty 1000 and our multi-color steal (`--steal-amount half`).
    pub const SWS_MELY_HALF: &str = "mely-all-p1000-half";
    /// SFS, Mely all with per-client colors and the paper's one-color steal.
    pub const SFS_COLORED: &str = "colored";
    /// SFS, the same with our multi-color steal.
    pub const SFS_COLORED_HALF: &str = "colored-half";
    /// Every sfs-bench configuration, in the report's order.
    pub const SFS_ALL: [&str; 6] = [
        SFS_COLORED,
        SFS_COLORED_HALF,
        "none",
        "ncopy",
        "libasync-off",
        "libasync-base",
    ];
}

/// KEvents/s of a microbenchmark row; `sized`: only the definition sized to the L2.
fn kev(r: &Results, bench: &str, runtime: &str, stealing: &str, sized: bool) -> Option<f64> {
    r.micro_row(bench, runtime, stealing)
        .filter(|m| !sized || m.sized_to.is_some())
        .and_then(|m| m.kevents_median())
}

/// `a / b` of two microbenchmark rows of one benchmark.
fn kev_ratio(r: &Results, bench: &str, a: (&str, &str), b: (&str, &str)) -> Option<f64> {
    let sized = bench != "unbalanced";
    ratio(
        kev(r, bench, a.0, a.1, sized),
        kev(r, bench, b.0, b.1, sized),
    )
}

/// MB/s of SFS `a` at `wa` workers over `b` at `wb`.
fn sfs_ratio(r: &Results, a: &str, wa: Option<usize>, b: &str, wb: Option<usize>) -> Option<f64> {
    ratio(r.sfs_mbps(a, wa), r.sfs_mbps(b, wb))
}

/// The ratios that matter, in the order the report and the comparison print them. Higher is
/// better for each; the comparison fails when one falls by more than the threshold. A variant
/// of ours over the paper's configuration (the multi-color steal over the one-color steal, the
/// tuned connection penalty over penalty 1) is not among them: it falls when the paper's
/// configuration improves, which is no regression. The tables print those gains.
pub fn key_ratios(r: &Results) -> Vec<KeyRatio> {
    use configs::*;
    let sfs_w = sfs_main_workers(r);
    let tokio_over = |w: usize| ratio(r.dispatch_ns(w, "tokio"), r.dispatch_ns(w, "mely"));
    vec![
        KeyRatio {
            name: "unbalanced: mely time-left (one color per steal) / libasync off (KEvents/s)",
            paper: Some(2042.0 / 1310.0),
            paper_note: "Mely Table IV: 2042 / Table III: 1310",
            value: kev_ratio(
                r,
                "unbalanced",
                ("mely", "time-left-one"),
                ("libasync", "off"),
            ),
        },
        KeyRatio {
            name: "penalty (arrays sized to the L2): mely penalty / mely base (KEvents/s)",
            paper: Some(2122.0 / 1386.0),
            paper_note: "Mely Table V: 2122 / 1386",
            value: kev_ratio(r, "penalty", ("mely", "penalty-one"), ("mely", "base")),
        },
        KeyRatio {
            name: "cache-efficient (arrays sized to the L2): mely locality / mely base (KEvents/s)",
            paper: Some(1869.0 / 1426.0),
            paper_note: "Mely Table VI: 1869 / 1426",
            value: kev_ratio(r, "cache-efficient", ("mely", "locality"), ("mely", "base")),
        },
        KeyRatio {
            name: "SWS: mely all, conn penalty 1 / libasync off (peak req/s)",
            paper: Some(1.25),
            paper_note: "Mely Sec. V-C: about +25%",
            value: sws_peak_ratio(r, SWS_MELY_PAPER, "libasync-off"),
        },
        KeyRatio {
            name: "SWS: mely all, conn penalty 1 / libasync base (peak req/s)",
            paper: Some(1.73),
            paper_note: "Mely Sec. V-C: up to +73%",
            value: sws_peak_ratio(r, SWS_MELY_PAPER, "libasync-base"),
        },
        KeyRatio {
            name: "SWS: mely all, conn penalty 1000 (ours) / libasync off (peak req/s)",
            paper: None,
            paper_note: "ours (tuned penalty); the paper's Mely: the conn penalty 1 row",
            value: sws_peak_ratio(r, SWS_MELY_TUNED, "libasync-off"),
        },
        KeyRatio {
            name: "SWS: colored (mely all, conn penalty 1000) / N-copy (peak req/s)",
            paper: None,
            paper_note: "no figure; N-copy is the papers' upper bound",
            value: sws_peak_ratio(r, SWS_MELY_TUNED, "ncopy"),
        },
        KeyRatio {
            name: "SWS: mely all, conn penalty 1000, speedup over 1 worker",
            paper: None,
            paper_note: "libasync-smp: 1.5x on 4 CPUs (ours: the main worker count)",
            value: sws_speedup(r, SWS_MELY_TUNED),
        },
        KeyRatio {
            name: "SFS: colored / none (MB/s)",
            paper: None,
            paper_note: "same worker count; the paper's 2.5x is the next row's",
            value: sfs_w.and_then(|w| sfs_ratio(r, SFS_COLORED, Some(w), "none", Some(w))),
        },
        KeyRatio {
            name: "SFS: colored on N workers / none on 1 worker (MB/s)",
            paper: Some(2.5),
            paper_note: "libasync-smp: 2.5x on 4 CPUs over the uncolored server on 1 CPU",
            value: sfs_w.and_then(|w| sfs_ratio(r, SFS_COLORED, Some(w), "none", Some(1))),
        },
        KeyRatio {
            name: "SFS: colored / N-copy (MB/s)",
            paper: None,
            paper_note: "no figure; N-copy is the upper bound (libasync-smp: close to it)",
            value: sfs_w.and_then(|w| sfs_ratio(r, SFS_COLORED, Some(w), "ncopy", Some(w))),
        },
        KeyRatio {
            name: "SFS: libasync base / libasync off (MB/s)",
            paper: Some(1.35),
            paper_note: "Mely Fig. 3/8: about +35%",
            value: sfs_w
                .and_then(|w| sfs_ratio(r, "libasync-base", Some(w), "libasync-off", Some(w))),
        },
        KeyRatio {
            name: "SFS: colored, speedup over 1 worker",
            paper: None,
            paper_note: "libasync-smp: 2.5x on 4 CPUs (over the uncolored server: row above)",
            value: sfs_speedup(r, SFS_COLORED),
        },
        KeyRatio {
            name: "SFS through FUSE: colored / none (MB/s)",
            paper: None,
            paper_note: "multiio through the kernel; no paper figure on 2 cores",
            value: sfs_w.and_then(|w| {
                ratio(
                    r.sfs_mbps("mount-colored", Some(w)),
                    r.sfs_mbps("mount-none", Some(w)),
                )
            }),
        },
        KeyRatio {
            name: "SFS through FUSE: colored / sshfs (MB/s)",
            paper: None,
            paper_note: "sshfs (chacha20-poly1305) is our peer, not in the papers",
            value: sfs_w.and_then(|w| {
                ratio(
                    r.sfs_mbps("mount-colored", Some(w)),
                    r.sfs_mbps("mount-sshfs", None),
                )
            }),
        },
        KeyRatio {
            name: "dispatch, 1 worker: tokio ns / mely ns",
            paper: None,
            paper_note: "tokio is our peer, not in the papers",
            value: tokio_over(1),
        },
        KeyRatio {
            name: "dispatch, 2 workers: tokio ns / mely ns",
            paper: None,
            paper_note: "tokio is our peer, not in the papers",
            value: tokio_over(2),
        },
    ]
}
