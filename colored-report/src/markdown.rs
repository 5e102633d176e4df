//! `report.md` (each paper table beside ours, the environment, what is missing) and the CSVs.

use super::figures::{
    figures, key_ratios, sfs_main_workers, sfs_speedup, sws_main_workers, sws_peak_ratio,
    sws_speedup,
};
use super::load::Results;
use super::{fmt_opt, ratio};
use microbench_defs::tables::{self, Measured};
use std::fmt::Write;

/// Whether the results hold the paper tables' run with the papers' mechanisms
/// (`paper-tables --fidelity paper`).
fn has_paper_runs(r: &Results) -> bool {
    r.micro
        .iter()
        .any(|m| m.fidelity.as_deref() == Some("paper"))
}

/// Which fidelity preset the colored rows of the microbenchmark tables ran with, from their
/// results (tokio and results written before the paper mode record none).
fn fidelity_sentence(r: &Results) -> String {
    let paper_too = if has_paper_runs(r) {
        "the rows named as the paper's ran with the papers' mechanisms too, in the tables after these"
    } else {
        "these results hold no run with the papers' mechanisms (`paper-tables --fidelity paper`)"
    };
    let mut seen: Vec<&str> = r
        .micro
        .iter()
        .filter(|m| m.runtime != "tokio" && m.fidelity.as_deref() != Some("paper"))
        .map(|m| m.fidelity.as_deref().unwrap_or("not recorded"))
        .collect();
    seen.sort_unstable();
    seen.dedup();
    match seen.as_slice() {
        ["ours"] => format!(
            "Fidelity: every colored row of these tables, the ones named as the paper's included, \
             ran with `--fidelity ours` (this runtime's idle protocol, lock, post batching and \
             steal walk); {paper_too}."
        ),
        [] => "Fidelity: no colored row.".to_string(),
        ["not recorded"] => {
            "Fidelity: not recorded (these results predate `--fidelity`; the runtime \
                             then had only its own mechanisms, what `--fidelity ours` selects)."
                .to_string()
        }
        several => format!(
            "Fidelity of the colored rows' runs: {} (per configuration in the JSON's `fidelity`).",
            several
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The microbenchmark tables (III-VI, synthetic) with our medians beside the paper's figures.
fn micro_tables(r: &Results, out: &mut String) {
    if r.micro.is_empty() {
        let _ = writeln!(
            out,
            "No microbenchmark results (not run, or see Missing experiments).\n"
        );
        return;
    }
    let workers = r.micro.first().map_or(0, |m| m.workers);
    let oversubscribed = r
        .env_str("cores")
        .parse::<usize>()
        .is_ok_and(|c| workers > c);
    let _ = writeln!(
        out,
        "{workers} workers{}. The paper ran on an 8-core Xeon E5410; absolute rates do not \
         compare, the shape does: the ratio columns divide each row by its table's first row.\n",
        if oversubscribed {
            format!(" on {} cores (oversubscribed)", r.env_str("cores"))
        } else {
            String::new()
        }
    );
    let _ = writeln!(out, "{}\n", fidelity_sentence(r));
    for t in tables::specs() {
        let measured = measured_rows(r, &t, "");
        out.push_str(&tables::render(&t, &measured, workers));
        if let Some(line) = sizes_line(r, t.bench) {
            let _ = writeln!(out, "\n{line}");
        }
        out.push('\n');
    }
    paper_fidelity_tables(r, workers, out);
    if r.micro.iter().all(|m| m.l2_misses_per_event().is_none()) {
        let _ = writeln!(
            out,
            "L2 misses are n/a: this machine exposes no hardware cache counters.\n"
        );
    }
}

/// What was measured for each row of `t`, read under the row's key with `suffix` appended
/// (`-paper`: the run with the papers' mechanisms).
fn measured_rows(r: &Results, t: &tables::TableSpec, suffix: &str) -> Vec<Option<Measured>> {
    t.rows
        .iter()
        .map(|row| {
            let m = if t.bench == "synthetic" {
                r.micro
                    .iter()
                    .find(|m| m.bench == "synthetic" && m.config.as_deref() == Some(row.label))
            } else {
                r.micro_row(
                    t.bench,
                    row.runtime,
                    &format!("{}{suffix}", row.config.key()),
                )
            }?;
            let metric = match t.metric {
                "WS cost (cycles)" => m.steal_cost_cycles(),
                "locking time %" => m.locking_time_pct(),
                "stolen time (cycles)" => m.stolen_time_cycles(),
                "L2 misses/event" => m.l2_misses_per_event(),
                _ => None,
            };
            Some(Measured {
                kevents: m.kevents_median()?,
                kevents_spread: m.kevents_spread()?,
                metric,
            })
        })
        .collect()
}

/// Tables III-VI again, with the rows named as the paper's run with the papers' mechanisms
/// (`microbenches paper-tables --fidelity paper`), when the results hold that run.
fn paper_fidelity_tables(r: &Results, workers: usize, out: &mut String) {
    if !has_paper_runs(r) {
        return;
    }
    let _ = writeln!(
        out,
        "**With the papers' mechanisms** (`microbenches paper-tables --fidelity paper`: every idle \
         worker spins in the steal loop, test-and-set queue locks, every post takes the target \
         core's lock, libasync-smp's steal walks the victim's list from its head): the rows named \
         as the paper's, as the papers' runtimes ran them, {workers} workers.\n"
    );
    for mut t in tables::specs() {
        t.rows.retain(tables::RowSpec::is_papers);
        if t.rows.is_empty() {
            continue;
        }
        t.notes = "";
        let measured = measured_rows(r, &t, "-paper");
        let table = tables::render(&t, &measured, workers);
        let heading = format!("**Table {}: ", t.id);
        out.push_str(&table.replacen(
            &heading,
            &format!("**Table {}, `--fidelity paper`: ", t.id),
            1,
        ));
        out.push('\n');
    }
}

/// The array sizes a cache-sized benchmark ran with, as one sentence (`None` for the others).
fn sizes_line(r: &Results, bench: &str) -> Option<String> {
    r.micro
        .iter()
        .find(|m| m.bench == bench && m.sizes.is_some())?
        .sizes
        .clone()
}

/// Table I: time spent stealing vs processing time stolen, from the servers' counters.
fn table_one(r: &Results, out: &mut String) {
    use super::figures::configs::*;
    if r.sws.is_empty() && r.sfs.is_empty() {
        let _ = writeln!(
            out,
            "No server results (not run, or see Missing experiments).\n"
        );
        return;
    }
    let w = sws_main_workers(r);
    // Per configuration, the run at the most clients whose server reported its counters.
    let sws = |c: &str| {
        r.sws
            .iter()
            .filter(|s| s.config == c && s.workers == w && s.stats.steals.is_some())
            .max_by_key(|s| s.clients)
            .map(|s| s.stats.clone())
    };
    let sfs_w = sfs_main_workers(r);
    let sfs = |c: &str| {
        r.sfs
            .iter()
            .find(|s| s.config == c && s.workers == sfs_w)
            .map(|s| s.stats.clone())
    };
    let _ = writeln!(
        out,
        "**Table I: time spent stealing a set of events vs. processing time of the stolen events** \
         (ours from the servers' runtime counters, {w} workers; SWS at the most clients measured; \
         cycles per steal)\n"
    );
    let _ = writeln!(out, "| system | paper stealing (cycles) | paper stolen (cycles) | ours stealing (cycles) | ours stolen (cycles) | ours steals |\n|---|---:|---:|---:|---:|---:|");
    // (system, the paper's stealing cycles, the paper's stolen cycles, our server's counters)
    type Row<'a> = (
        &'a str,
        Option<f64>,
        Option<f64>,
        Option<super::load::ServerStats>,
    );
    // The rows named as the paper's ran the servers with the papers' mechanisms (the `-paper`
    // configurations, `--fidelity paper`); the same configurations with ours follow, named so.
    let rows: [Row; 11] = [
        (
            "SFS, libasync base WS",
            Some(4_800.0),
            Some(1_200_000.0),
            sfs("libasync-base-paper"),
        ),
        (
            "SFS, mely all (one color per steal, the paper's)",
            None,
            None,
            sfs("colored-paper"),
        ),
        (
            "Web server, libasync base WS",
            Some(197_000.0),
            Some(20_000.0),
            sws("libasync-base-paper"),
        ),
        (
            "Web server, mely all, conn penalty 1 (the paper's)",
            Some(6_000.0),
            Some(23_000.0),
            sws("mely-all-p1-paper"),
        ),
        (
            "ours: SFS, libasync base WS, `--fidelity ours`",
            None,
            None,
            sfs("libasync-base"),
        ),
        (
            "ours: SFS, mely all (one color per steal), `--fidelity ours`",
            None,
            None,
            sfs(SFS_COLORED),
        ),
        (
            "ours: SFS, mely all, colors up to half the victim's queued time",
            None,
            None,
            sfs(SFS_COLORED_HALF),
        ),
        (
            "ours: Web server, libasync base WS, `--fidelity ours`",
            None,
            None,
            sws("libasync-base"),
        ),
        (
            "ours: Web server, mely all, conn penalty 1, `--fidelity ours`",
            None,
            None,
            sws(SWS_MELY_PAPER),
        ),
        (
            "ours: Web server, mely all, conn penalty 1000",
            None,
            None,
            sws(SWS_MELY_TUNED),
        ),
        (
            "ours: Web server, mely all, conn penalty 1000, colors up to half",
            None,
            None,
            sws(SWS_MELY_HALF),
        ),
    ];
    for (name, ps, pt, st) in rows {
        let st = st.unwrap_or_default();
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {} |",
            fmt_opt(ps),
            fmt_opt(pt),
            fmt_opt(st.steal_cost_cycles),
            fmt_opt(st.stolen_time_cycles),
            st.steals
                .map_or_else(|| "n/a".into(), |s| format!("{s:.0}"))
        );
    }
    let sws_gain = sws_peak_ratio(r, SWS_MELY_HALF, SWS_MELY_TUNED);
    let sfs_gain = sfs_w.and_then(|w| {
        ratio(
            r.sfs_mbps(SFS_COLORED_HALF, Some(w)),
            r.sfs_mbps(SFS_COLORED, Some(w)),
        )
    });
    let _ = writeln!(
        out,
        "\nMeasured gain of our multi-color steal (half) over the paper's one-color steal: SWS \
         (conn penalty 1000) {} peak req/s, SFS {} MB/s.\n\n{TABLE_ONE_NOTE}\n",
        fmt_x(sws_gain),
        fmt_x(sfs_gain)
    );
}

/// A ratio as `1.23x`, `n/a` when not measured.
fn fmt_x(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), |x| format!("{x:.2}x"))
}

/// What Table I measured and why it differs from the paper's.
const TABLE_ONE_NOTE: &str = "Stealing time is the time a thief held the victim's lock per \
    steal (choosing, collecting and moving the events); stolen time is the processing time of \
    what one steal moved, so a multi-color steal counts every color it took. The paper's Mely \
    figures (6 Kcycles, 23 Kcycles) come from its section V-C. The rows named as the paper's ran \
    the servers with the papers' mechanisms (`--fidelity paper`: spinning idle workers, \
    test-and-set locks, unbuffered posts, libasync-smp's steal walk from the head; the `-paper` \
    configurations); the rows named `ours:` with this runtime's (`--fidelity ours`).";

/// The SWS configurations' meaning, for the reader of Figure 7.
const SWS_LEGEND: &str = "Configurations: `libasync-off` / `libasync-base`: the libasync-smp \
    design without and with its work stealing; `mely-off`: Mely without stealing; `mely-all-p1`: \
    Mely with all heuristics, connection penalty 1 and one color per steal, the paper's Mely \
    (stealing relieves the Epoll core of request processing); `mely-all-p1000`: the same with our \
    tuned connection penalty 1000 (a connection moves only with a large backlog); \
    `mely-all-p1000-half`: that with our multi-color steal (colors up to half the victim's \
    queued time); `libasync-base-paper`, `mely-all-p1-paper`: `libasync-base` and `mely-all-p1` \
    with the papers' mechanisms (`--fidelity paper`; the others run with ours); `ncopy`: N single-worker processes; `nginx`, `apache`: the peers with as many \
    workers (nginx worker processes; Apache's worker MPM on as many CPUs).";

fn sws_section(r: &Results, out: &mut String) {
    let w = sws_main_workers(r);
    if r.sws.is_empty() {
        let _ = writeln!(
            out,
            "No SWS results (not run, or see Missing experiments).\n"
        );
        return;
    }
    let disjoint = r.env.get("cpu_split").and_then(|v| v.as_str()) == Some("disjoint");
    let _ = writeln!(
        out,
        "**Figure 7: SWS throughput (requests/s) vs. virtual clients, 1 KB file, {w} workers** \
         (the paper: 8 cores, 200-2000 clients from 8 client machines, 30 s x 3; here the \
         injector runs {} the server)\n\n{SWS_LEGEND}\n",
        if disjoint {
            "on CPUs disjoint from"
        } else {
            "on the same cores as"
        }
    );
    let configs = r.sws_configs();
    sws_throughput(r, w, &configs, out);
    sws_latency(r, w, &configs, out);
    sws_errors(r, out);
    sws_ratios(r, out);
}

/// A Markdown table header: `first`, then one right-aligned column per name.
fn header(first: &str, cols: impl IntoIterator<Item = String>) -> String {
    let cols: Vec<String> = cols.into_iter().collect();
    let mut h = format!("| {first} |");
    for c in &cols {
        let _ = write!(h, " {c} |");
    }
    h.push_str("\n|---:|");
    h.push_str(&"---:|".repeat(cols.len()));
    h.push('\n');
    h
}

/// Figure 7 as a table: requests/s per client count and configuration.
fn sws_throughput(r: &Results, w: usize, configs: &[String], out: &mut String) {
    out.push_str(&header("clients", configs.iter().cloned()));
    for n in r.sws_clients(w) {
        let _ = write!(out, "| {n} |");
        for c in configs {
            let _ = write!(out, " {} |", fmt_opt(r.sws_rps(c, w, n)));
        }
        out.push('\n');
    }
    out.push('\n');
}

/// p99 latency per point and the injector's CPU time per request.
fn sws_latency(r: &Results, w: usize, configs: &[String], out: &mut String) {
    let _ = writeln!(out, "p99 latency (ms) at the same points, and the injector's own CPU time per request (us), which it takes from the machine's cores:\n");
    let cols = configs
        .iter()
        .map(|c| format!("{c} p99"))
        .chain(["injector CPU us/req (median over configurations)".to_string()]);
    out.push_str(&header("clients", cols));
    for n in r.sws_clients(w) {
        let _ = write!(out, "| {n} |");
        let mut cpu = Vec::new();
        for c in configs {
            let run = r
                .sws
                .iter()
                .find(|s| s.config == *c && s.workers == w && s.clients == n);
            let _ = write!(
                out,
                " {} |",
                fmt_opt(run.and_then(|s| s.p99_us).map(|us| us / 1000.0))
            );
            cpu.extend(run.and_then(|s| s.injector_cpu_us_per_request));
        }
        let _ = writeln!(out, " {} |", fmt_opt(super::median(cpu)));
    }
    out.push('\n');
}

/// The injector's errors, where there were any.
fn sws_errors(r: &Results, out: &mut String) {
    let errs: Vec<String> = r
        .sws
        .iter()
        .filter(|s| s.errors.unwrap_or(0.0) > 0.0)
        .map(|s| {
            format!(
                "{} w{} c{}: {:.0}",
                s.config,
                s.workers,
                s.clients,
                s.errors.unwrap_or(0.0)
            )
        })
        .collect();
    if !errs.is_empty() {
        let _ = writeln!(
            out,
            "Injector errors (not counted as requests): {}.\n",
            errs.join("; ")
        );
    }
}

/// The SWS ratios beside the paper's.
fn sws_ratios(r: &Results, out: &mut String) {
    use super::figures::configs::{SWS_MELY_HALF, SWS_MELY_PAPER, SWS_MELY_TUNED};
    let _ = writeln!(
        out,
        "Ratios compare peaks over the client counts where both configurations were measured.\n"
    );
    let _ = writeln!(
        out,
        "| SWS ratio (peak req/s) | paper | ours | ours / paper |\n|---|---:|---:|---:|"
    );
    let rows: [(&str, &str, &str, Option<f64>); 11] = [
        (
            "libasync base / libasync off",
            "libasync-base",
            "libasync-off",
            Some(0.67),
        ),
        (
            "mely all, conn penalty 1 / libasync off",
            SWS_MELY_PAPER,
            "libasync-off",
            Some(1.25),
        ),
        (
            "mely all, conn penalty 1 / libasync base",
            SWS_MELY_PAPER,
            "libasync-base",
            Some(1.73),
        ),
        (
            "mely all, conn penalty 1000 (ours) / libasync off",
            SWS_MELY_TUNED,
            "libasync-off",
            None,
        ),
        (
            "mely all, conn penalty 1000 (ours) / libasync base",
            SWS_MELY_TUNED,
            "libasync-base",
            None,
        ),
        (
            "mely all, conn penalty 1000 / conn penalty 1",
            SWS_MELY_TUNED,
            SWS_MELY_PAPER,
            None,
        ),
        (
            "mely all, conn penalty 1000: ours (half) / the paper's steal (one)",
            SWS_MELY_HALF,
            SWS_MELY_TUNED,
            None,
        ),
        (
            "mely off / libasync off",
            "mely-off",
            "libasync-off",
            Some(0.87),
        ),
        (
            "mely all, conn penalty 1000 / N-copy",
            SWS_MELY_TUNED,
            "ncopy",
            None,
        ),
        (
            "mely all, conn penalty 1000 / nginx",
            SWS_MELY_TUNED,
            "nginx",
            None,
        ),
        (
            "mely all, conn penalty 1000 / apache",
            SWS_MELY_TUNED,
            "apache",
            None,
        ),
    ];
    for (name, a, b, paper) in rows {
        let ours = sws_peak_ratio(r, a, b);
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} |",
            fmt_opt(paper),
            fmt_opt(ours),
            fmt_opt(ratio(ours, paper))
        );
    }
    let _ = writeln!(out, "\n{SWS_NOTE}\n");
}

/// What the SWS rows measured and where the paper's figures come from.
const SWS_NOTE: &str = "Paper figures: Mely Sec. V-C (\"up to -33%\" with libasync WS, \
    \"+25%\", \"up to +73%\"; mely off is \"-7% to -20%\" below libasync off, 0.87 is the \
    middle). The paper's peers were Apache worker and userver; ours are nginx and Apache worker.";

/// Every worker count the servers ran with (the scaling steps 1, 2, 4, ... and the main one).
fn worker_steps(r: &Results) -> Vec<usize> {
    let mut ws: Vec<usize> = r
        .sws
        .iter()
        .map(|s| s.workers)
        .chain(r.sfs.iter().filter_map(|s| s.workers))
        .collect();
    ws.sort();
    ws.dedup();
    ws
}

fn scaling_section(r: &Results, out: &mut String) {
    if r.sws.is_empty() && r.sfs.iter().all(|s| s.workers.is_none()) {
        let _ = writeln!(
            out,
            "No server results to scale (not run, or see Missing experiments).\n"
        );
        return;
    }
    let steps = worker_steps(r);
    let cols = steps
        .iter()
        .map(|w| format!("{w} worker{}", if *w == 1 { "" } else { "s" }))
        .chain([
            "speedup (most workers / 1)".into(),
            "paper (libasync-smp, 4 CPUs)".into(),
        ]);
    let h = header("configuration", cols);
    // The first column holds names: left-aligned.
    out.push_str(&h.replacen("|---:|", "|---|", 1));
    let row = |out: &mut String, name: String, vals: Vec<Option<f64>>, speedup, paper| {
        let _ = write!(out, "| {name} |");
        for v in vals {
            let _ = write!(out, " {} |", fmt_opt(v));
        }
        let _ = writeln!(out, " {} | {} |", fmt_opt(speedup), fmt_opt(paper));
    };
    let clients = r.sws_clients(1);
    for c in r.sws_configs() {
        if !r.sws.iter().any(|s| s.config == c && s.workers == 1) {
            continue;
        }
        let vals = steps.iter().map(|&w| r.sws_peak(&c, w, &clients)).collect();
        let paper = (c == "libasync-off").then_some(1.5);
        row(
            out,
            format!("SWS {c} (req/s)"),
            vals,
            sws_speedup(r, &c),
            paper,
        );
    }
    for c in super::figures::configs::SFS_ALL {
        if !r.sfs.iter().any(|s| s.config == c && s.workers.is_some()) {
            continue;
        }
        let vals = steps.iter().map(|&w| r.sfs_mbps(c, Some(w))).collect();
        let paper = (c == "colored").then_some(2.5);
        row(
            out,
            format!("SFS {c} (MB/s)"),
            vals,
            sfs_speedup(r, c),
            paper,
        );
    }
    let _ = writeln!(
        out,
        "\nSWS at {} clients on every worker count. The paper's speedups are on 4 CPUs over 1; \
         this machine has {} cores, so ours stop at its core count unless the run was \
         oversubscribed (see Environment).\n",
        clients
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        r.env_str("cores")
    );
}

fn sfs_section(r: &Results, out: &mut String) {
    let Some(w) = sfs_main_workers(r) else {
        let _ = writeln!(
            out,
            "No SFS results (not run, or see Missing experiments).\n"
        );
        return;
    };
    let none = r.sfs_mbps("none", Some(w));
    let _ = writeln!(
        out,
        "**Figure 8 / Figure 3: SFS, {} clients reading a cached file, {w} workers** (MB/s; the \
         paper: 16 client machines, 200 MB file)\n",
        r.env_str("sfs_clients")
    );
    let _ = writeln!(out, "| configuration | MB/s | / none | / libasync off | paper / libasync off |\n|---|---:|---:|---:|---:|");
    let loff = r.sfs_mbps("libasync-off", Some(w));
    let rows: [(&str, Option<usize>, Option<f64>); 6] = [
        ("none", Some(w), None),
        ("libasync-off", Some(w), Some(1.0)),
        ("libasync-base", Some(w), Some(1.35)),
        ("colored", Some(w), Some(1.35)),
        ("ncopy", Some(w), None),
        ("sftp", None, None),
    ];
    for (c, cw, paper) in rows {
        let v = r.sfs_mbps(c, cw);
        let label = match c {
            "colored" => "colored (mely all, per-client colors)".to_string(),
            "none" => "none (everything in color 0)".to_string(),
            "sftp" => format!(
                "OpenSSH sftp, chacha20-poly1305 ({} sessions)",
                r.env_str("sftp_clients")
            ),
            _ => c.to_string(),
        };
        let _ = writeln!(
            out,
            "| {label} | {} | {} | {} | {} |",
            fmt_opt(v),
            fmt_opt(ratio(v, none)),
            fmt_opt(ratio(v, loff)),
            fmt_opt(paper)
        );
    }
    let _ = writeln!(out, "\nPaper: Mely Sec. II and V-C, libasync WS about +35% over no WS; Mely all about equal to libasync WS.\n");
    sfs_over_one_uncolored(r, w, out);
    sfs_mount_table(r, out);
}

/// libasync-smp's SFS speedup as that paper defined it: the colored server on N CPUs over the
/// uncolored server (`--coloring none`) on one, beside the same-worker-count ratio above.
fn sfs_over_one_uncolored(r: &Results, w: usize, out: &mut String) {
    use super::figures::configs::SFS_COLORED;
    let colored = r.sfs_mbps(SFS_COLORED, Some(w));
    let _ = writeln!(
        out,
        "| SFS speedup | paper (libasync-smp, 4 CPUs) | ours |\n|---|---:|---:|\n\
         | colored on {w} workers / none on {w} workers | n/a | {} |\n\
         | colored on {w} workers / none on 1 worker | 2.50 | {} |\n",
        fmt_opt(ratio(colored, r.sfs_mbps("none", Some(w)))),
        fmt_opt(ratio(colored, r.sfs_mbps("none", Some(1))))
    );
    let _ = writeln!(
        out,
        "libasync-smp's 2.5x is the colored server on 4 CPUs over the uncolored server on one CPU; \
         ours runs {w} workers on {} cores.\n",
        r.env_str("cores")
    );
}

/// The through-the-kernel configurations of the multiio benchmark, and their labels.
pub const SFS_MOUNT_ROWS: [(&str, &str); 4] = [
    ("mount-colored", "SFS colored (mely all, per-client colors)"),
    ("mount-none", "SFS --coloring none"),
    ("mount-ncopy", "SFS N-copy"),
    ("mount-sshfs", "sshfs (OpenSSH sftp, chacha20-poly1305)"),
];

/// The write rows of the through-the-kernel table (`sfs-bench --write-files`), and their
/// labels; `mount-write-local` is the same writers straight into the export directory.
pub const SFS_MOUNT_WRITE_ROWS: [(&str, &str); 5] = [
    (
        "mount-write-colored",
        "SFS colored (mely all, per-client colors)",
    ),
    ("mount-write-none", "SFS --coloring none"),
    ("mount-write-ncopy", "SFS N-copy"),
    (
        "mount-write-sshfs",
        "sshfs (OpenSSH sftp, chacha20-poly1305)",
    ),
    ("mount-write-local", "the export's disk, no mount"),
];

/// SFS through the kernel: reader and writer processes on FUSE mounts of each server, and
/// sshfs.
fn sfs_mount_table(r: &Results, out: &mut String) {
    let run = |c: &str| r.sfs.iter().find(|s| s.config == c);
    let all = SFS_MOUNT_ROWS.iter().chain(SFS_MOUNT_WRITE_ROWS.iter());
    if all.clone().all(|(c, _)| run(c).is_none()) {
        return;
    }
    let readers = SFS_MOUNT_ROWS
        .iter()
        .find_map(|(c, _)| run(c).and_then(|s| s.readers))
        .map_or("n/a".to_string(), |n| format!("{n:.0}"));
    let mb = r.env_str("sfs_file_mb");
    let _ = writeln!(
        out,
        "**SFS through the kernel (multiio)**: reading, {readers} reader processes, each on its \
         own mount (one connection each) of the server, reading a {mb} MB file with the mount's \
         page cache dropped before every pass (`posix_fadvise(DONTNEED)`); the file stays in the \
         server's page cache. Writing, as many writer processes on as many mounts, each writing \
         its own {mb} MB file in 1 MiB writes and `fsync`ing it at the end; MB/s is all bytes \
         over the time from the common start to the last `fsync`, and every file is compared \
         with what was written afterwards. sshfs runs the same readers and writers over the \
         same loopback. Server CPU is the server's process tree (sshd and its session \
         processes for sshfs). Mount daemons, readers, writers and servers share this \
         machine's {} cores.{}\n",
        r.env_str("cores"),
        if r.env_str("mode") == "quick" {
            format!(" Quick mode: {mb} MB files (the paper read 200 MB).")
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        out,
        "| test | configuration | MB/s | / sshfs | server CPU ms/MB |\n|---|---|---:|---:|---:|"
    );
    let mbps = |c: &str| run(c).and_then(|s| s.mbytes_per_sec);
    for (test, rows, sshfs) in [
        ("read", &SFS_MOUNT_ROWS[..], "mount-sshfs"),
        ("write", &SFS_MOUNT_WRITE_ROWS[..], "mount-write-sshfs"),
    ] {
        for (c, label) in rows {
            if run(c).is_none() && c.ends_with("-local") {
                continue;
            }
            let v = mbps(c);
            let cpu = run(c).and_then(|s| s.server_cpu_ms_per_mb);
            let _ = writeln!(
                out,
                "| {test} | {label} | {} | {} | {} |",
                fmt_opt(v),
                fmt_opt(ratio(v, mbps(sshfs))),
                fmt_opt(cpu)
            );
        }
    }
    let _ = writeln!(
        out,
        "\ncolored / none through the kernel: {}; colored / N-copy: {}.\n",
        fmt_opt(ratio(mbps("mount-colored"), mbps("mount-none"))),
        fmt_opt(ratio(mbps("mount-colored"), mbps("mount-ncopy")))
    );
    if let Some(disk) = mbps("mount-write-local") {
        let _ = writeln!(
            out,
            "Writes end on the export's disk: the same writers straight into the export directory \
             reach {disk:.1} MB/s, so no file service can write faster than that here; SFS \
             colored writes at {} of it, sshfs at {}.\n",
            fmt_opt(ratio(mbps("mount-write-colored"), Some(disk))),
            fmt_opt(ratio(mbps("mount-write-sshfs"), Some(disk)))
        );
    }
}

fn dispatch_section(r: &Results, out: &mut String) {
    if r.dispatch.is_empty() {
        let _ = writeln!(
            out,
            "No dispatch results (not run, or see Missing experiments).\n"
        );
        return;
    }
    let _ = writeln!(out, "| workers | libasync ns/event | mely ns/event | tokio ns/event | tokio / mely |\n|---:|---:|---:|---:|---:|");
    let mut ws: Vec<usize> = r.dispatch.iter().map(|d| d.workers).collect();
    ws.sort();
    ws.dedup();
    for w in ws {
        let _ = writeln!(
            out,
            "| {w} | {} | {} | {} | {} |",
            fmt_opt(r.dispatch_ns(w, "libasync")),
            fmt_opt(r.dispatch_ns(w, "mely")),
            fmt_opt(r.dispatch_ns(w, "tokio")),
            fmt_opt(ratio(r.dispatch_ns(w, "tokio"), r.dispatch_ns(w, "mely")))
        );
    }
    let _ = writeln!(out, "\n1 worker: post and run on one core (tokio current-thread spawn); 2 or more workers: posted on worker 0, run on worker 1 (tokio multi-thread with as many threads).\n");
}

/// The worker count and where servers and clients ran (`env.json`: `workers`, `server_cpus`,
/// `client_cpus`, `cpu_split`, `oversubscribed`; results written before they were recorded
/// ran 2 workers on a shared machine).
fn cpu_split(r: &Results, out: &mut String) {
    let workers = r.env_str("workers");
    let server = r.env_str("server_cpus");
    let oversubscribed = r.env.get("oversubscribed").and_then(|v| v.as_bool()) == Some(true);
    let _ = writeln!(
        out,
        "- server workers: {workers}{}",
        if oversubscribed {
            format!(" (oversubscribed: more workers than the server's CPUs, {server})")
        } else {
            String::new()
        }
    );
    let _ = writeln!(out, "- server CPUs: {server}");
    let _ = writeln!(out, "- client CPUs: {}", r.env_str("client_cpus"));
    let _ = writeln!(
        out,
        "- scaling steps (workers): {}",
        r.env_str("scaling_workers")
    );
    let disjoint = r.env.get("cpu_split").and_then(|v| v.as_str()) == Some("disjoint");
    let placement = if disjoint {
        format!(
            "Load injectors and clients ran on CPUs {} and the servers on CPUs {server}, disjoint \
             (taskset), on this one machine.",
            r.env_str("client_cpus")
        )
    } else {
        "Everything ran on this one machine: load injectors and clients share its cores with the \
         servers (fewer than 4 cores: no CPUs to spare for a split)."
            .to_string()
    };
    let _ = writeln!(
        out,
        "\n{placement} Ratios inside one run compare; absolute rates do not compare with the \
         papers' 8-core Xeon. `n/a` means not measured (never estimated).\n"
    );
}

/// The simulator: Tables III-VI at 8 simulated cores on the paper's machine, its validation
/// and the scaling to 64 cores (every figure labelled simulated).
fn sim_section(r: &Results, out: &mut String) {
    super::simulated::markdown(r, out);
}

/// The whole report.
pub fn report(r: &Results, plots: &[String], timelines: &[super::timelines::Timeline]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Colored events: the papers' evaluation beside ours\n"
    );
    let _ = writeln!(out, "## Environment\n");
    for (k, label) in [
        ("commit", "commit"),
        ("date", "date (UTC)"),
        ("mode", "mode"),
        ("cpu_model", "CPU"),
        ("cores", "cores"),
        ("kernel", "kernel"),
        ("rustc", "rustc"),
        ("seconds", "seconds per run"),
        ("runs", "runs per configuration"),
    ] {
        let _ = writeln!(out, "- {label}: {}", r.env_str(k));
    }
    cpu_split(r, &mut out);

    let _ = writeln!(out, "## Missing experiments\n");
    if r.missing.is_empty() {
        let _ = writeln!(out, "None: every experiment ran.\n");
    } else {
        for (k, v) in &r.missing {
            let _ = writeln!(
                out,
                "- **{k}**: {}",
                v.lines().take(3).collect::<Vec<_>>().join(" / ")
            );
        }
        out.push('\n');
    }

    let _ = writeln!(out, "## The ratios that matter\n");
    let _ = writeln!(out, "| ratio | paper | ours | ours / paper | source of the paper's figure |\n|---|---:|---:|---:|---|");
    for k in key_ratios(r) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            k.name,
            fmt_opt(k.paper),
            fmt_opt(k.value),
            fmt_opt(ratio(k.value, k.paper)),
            k.paper_note
        );
    }
    out.push('\n');

    let _ = writeln!(
        out,
        "## Microbenchmarks (Mely Tables III-VI, libasync-smp synthetic)\n"
    );
    micro_tables(r, &mut out);
    let _ = writeln!(out, "## Workstealing cost in the servers (Mely Table I)\n");
    table_one(r, &mut out);
    let _ = writeln!(out, "## SWS (Mely Figure 7)\n");
    sws_section(r, &mut out);
    let _ = writeln!(out, "## SFS (Mely Figures 3 and 8, libasync-smp)\n");
    sfs_section(r, &mut out);
    let _ = writeln!(out, "## Scaling with workers\n");
    scaling_section(r, &mut out);
    let _ = writeln!(out, "## Dispatch cost (ours vs tokio)\n");
    dispatch_section(r, &mut out);
    let _ = writeln!(
        out,
        "## SIMULATED: the papers' 8-core machine, and up to 64 cores\n"
    );
    sim_section(r, &mut out);
    let _ = writeln!(out, "## Timelines: what the cores did\n");
    super::timelines::markdown(timelines, &mut out);
    let _ = writeln!(out, "## Plots\n");
    if plots.is_empty() {
        let _ = writeln!(out, "none written (see the report generator's output)\n");
    }
    for p in plots {
        if p.ends_with(".svg") {
            let _ = writeln!(out, "- [{p}]({p})");
        }
    }
    let _ = writeln!(
        out,
        "\nPNG twins sit beside each SVG. Raw data: the JSON files of this directory and `csv/`."
    );
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv_num(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), |x| format!("{x}"))
}

/// The CSV files: (file name, content).
pub fn csvs(r: &Results) -> Vec<(String, String)> {
    let mut v = Vec::new();
    let mut s = String::from("experiment,figure,value,unit,higher_is_better\n");
    for f in figures(r) {
        let metric = f
            .key
            .strip_prefix(&format!("{} ", f.experiment))
            .unwrap_or(&f.key)
            .to_string();
        let _ = writeln!(
            s,
            "{},{},{},{},{}",
            csv_field(&f.experiment),
            csv_field(&metric),
            csv_num(f.value),
            f.unit,
            f.higher_is_better
        );
    }
    v.push(("figures.csv".into(), s));
    let mut s = String::from("ratio,paper,ours\n");
    for k in key_ratios(r) {
        let _ = writeln!(
            s,
            "{},{},{}",
            csv_field(k.name),
            csv_num(k.paper),
            csv_num(k.value)
        );
    }
    v.push(("ratios.csv".into(), s));
    let mut s = String::from("config,workers,clients,requests_per_sec,mbytes_per_sec,p99_us,errors,injector_cpu_us_per_request,steals,steal_cost_cycles,stolen_time_cycles,locking_time_pct\n");
    for w in &r.sws {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{}",
            w.config,
            w.workers,
            w.clients,
            csv_num(w.requests_per_sec),
            csv_num(w.mbytes_per_sec),
            csv_num(w.p99_us),
            csv_num(w.errors),
            csv_num(w.injector_cpu_us_per_request),
            csv_num(w.stats.steals),
            csv_num(w.stats.steal_cost_cycles),
            csv_num(w.stats.stolen_time_cycles),
            csv_num(w.stats.locking_time_pct)
        );
    }
    v.push(("sws.csv".into(), s));
    let mut s = String::from(
        "config,workers,mbytes_per_sec,errors,steals,steal_cost_cycles,stolen_time_cycles\n",
    );
    for f in &r.sfs {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{}",
            f.config,
            f.workers.map_or("n/a".into(), |w| w.to_string()),
            csv_num(f.mbytes_per_sec),
            csv_num(f.errors),
            csv_num(f.stats.steals),
            csv_num(f.stats.steal_cost_cycles),
            csv_num(f.stats.stolen_time_cycles)
        );
    }
    v.push(("sfs.csv".into(), s));
    let mut s = String::from("bench,runtime,stealing,config,kevents_per_sec_median,repetitions,steal_cost_cycles,stolen_time_cycles,locking_time_pct,l2_misses_per_event\n");
    for m in &r.micro {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{}",
            m.bench,
            m.runtime,
            m.stealing,
            csv_field(m.config.as_deref().unwrap_or("")),
            csv_num(m.kevents_median()),
            m.reps.len(),
            csv_num(m.steal_cost_cycles()),
            csv_num(m.stolen_time_cycles()),
            csv_num(m.locking_time_pct()),
            csv_num(m.l2_misses_per_event())
        );
    }
    v.push(("microbench.csv".into(), s));
    let mut s = String::from("workers,runtime,ns_per_event\n");
    for d in &r.dispatch {
        let _ = writeln!(s, "{},{},{}", d.workers, d.runtime, csv_num(d.ns_per_event));
    }
    v.push(("dispatch.csv".into(), s));
    v
}
