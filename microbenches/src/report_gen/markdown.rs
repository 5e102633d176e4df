//! `report.md` (each paper table beside ours, the environment, what is missing) and the CSVs.

use super::figures::{
    figures, key_ratios, sfs_main_workers, sfs_speedup, sws_main_workers, sws_peak_ratio,
    sws_speedup,
};
use super::load::Results;
use super::{fmt_opt, ratio};
use crate::tables::{self, Measured};
use std::fmt::Write;

/// The microbenchmark tables (III-VI, synthetic) with our medians beside the paper's figures.
fn micro_tables(r: &Results, out: &mut String) {
    if r.micro.is_empty() {
        let _ = writeln!(
            out,
            "No microbenchmark results (not run, or see Missing experiments).\n"
        );
        return;
    }
    let _ = writeln!(
        out,
        "The paper ran on an 8-core Xeon E5410; absolute rates do not compare, the shape does: \
         the ratio columns divide each row by its table's first row.\n"
    );
    for t in tables::specs() {
        let measured: Vec<Option<Measured>> = t
            .rows
            .iter()
            .map(|row| {
                let m = if t.bench == "synthetic" {
                    r.micro
                        .iter()
                        .find(|m| m.bench == "synthetic" && m.config.as_deref() == Some(row.label))
                } else {
                    r.micro_row(t.bench, row.runtime, row.stealing)
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
            .collect();
        out.push_str(&tables::render(&t, &measured));
        out.push('\n');
    }
    if r.micro.iter().all(|m| m.l2_misses_per_event().is_none()) {
        let _ = writeln!(
            out,
            "L2 misses are n/a: this machine exposes no hardware cache counters.\n"
        );
    }
}

/// Table I: time spent stealing vs processing time stolen, from the servers' counters.
fn table_one(r: &Results, out: &mut String) {
    let w = sws_main_workers(r);
    // Per configuration, the run at the most clients whose server reported its counters.
    let sws = |c: &str| {
        r.sws
            .iter()
            .filter(|s| s.config == c && s.workers == w && s.stats.steals.is_some())
            .max_by_key(|s| s.clients)
    };
    let sfs_w = sfs_main_workers(r);
    let sfs = |c: &str| r.sfs.iter().find(|s| s.config == c && s.workers == sfs_w);
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
    let rows: [Row; 4] = [
        (
            "SFS, libasync base WS",
            Some(4_800.0),
            Some(1_200_000.0),
            sfs("libasync-base").map(|s| s.stats.clone()),
        ),
        (
            "SFS, mely all",
            None,
            None,
            sfs("colored").map(|s| s.stats.clone()),
        ),
        (
            "Web server, libasync base WS",
            Some(197_000.0),
            Some(20_000.0),
            sws("libasync-base").map(|s| s.stats.clone()),
        ),
        (
            "Web server, mely all",
            Some(6_000.0),
            Some(23_000.0),
            sws("mely-all").map(|s| s.stats.clone()),
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
    out.push('\n');
}

fn sws_section(r: &Results, out: &mut String) {
    let w = sws_main_workers(r);
    if r.sws.is_empty() {
        let _ = writeln!(
            out,
            "No SWS results (not run, or see Missing experiments).\n"
        );
        return;
    }
    let configs = r.sws_configs();
    let _ = writeln!(
        out,
        "**Figure 7: SWS throughput (requests/s) vs. virtual clients, 1 KB file, {w} workers** \
         (the paper: 8 cores, 200-2000 clients from 8 client machines, 30 s x 3; here the \
         injector shares the machine's cores with the server)\n"
    );
    let _ = write!(out, "| clients |");
    for c in &configs {
        let _ = write!(out, " {c} |");
    }
    let _ = write!(out, "\n|---:|");
    for _ in &configs {
        out.push_str("---:|");
    }
    out.push('\n');
    for n in r.sws_clients(w) {
        let _ = write!(out, "| {n} |");
        for c in &configs {
            let _ = write!(out, " {} |", fmt_opt(r.sws_rps(c, w, n)));
        }
        out.push('\n');
    }
    out.push('\n');
    let _ = writeln!(out, "p99 latency (ms) at the same points, and the injector's own CPU time per request (us), which it takes from the server's cores:\n");
    let _ = write!(out, "| clients |");
    for c in &configs {
        let _ = write!(out, " {c} p99 |");
    }
    let _ = write!(
        out,
        " injector CPU us/req (median over configurations) |\n|---:|"
    );
    for _ in &configs {
        out.push_str("---:|");
    }
    out.push_str("---:|\n");
    for n in r.sws_clients(w) {
        let _ = write!(out, "| {n} |");
        let mut cpu = Vec::new();
        for c in &configs {
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
    let _ = writeln!(
        out,
        "Ratios compare peaks over the client counts where both configurations were measured.\n"
    );
    let _ = writeln!(
        out,
        "| SWS ratio (peak req/s) | paper | ours | ours / paper |\n|---|---:|---:|---:|"
    );
    let rows: [(&str, &str, &str, Option<f64>); 5] = [
        (
            "libasync base / libasync off",
            "libasync-base",
            "libasync-off",
            Some(0.67),
        ),
        (
            "mely all / libasync off",
            "mely-all",
            "libasync-off",
            Some(1.25),
        ),
        (
            "mely all / libasync base",
            "mely-all",
            "libasync-base",
            Some(1.73),
        ),
        (
            "mely off / libasync off",
            "mely-off",
            "libasync-off",
            Some(0.87),
        ),
        ("mely all / N-copy", "mely-all", "ncopy", None),
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
    for peer in ["nginx", "apache"] {
        let ours = sws_peak_ratio(r, "mely-all", peer);
        let _ = writeln!(out, "| mely all / {peer} | n/a | {} | n/a |", fmt_opt(ours));
    }
    let _ = writeln!(
        out,
        "\nPaper figures: Mely Sec. V-C (\"up to -33%\" with libasync WS, \"+25%\", \"up to +73%\"; \
         mely off is \"-7% to -20%\" below libasync off, 0.87 is the middle). The paper's peers were \
         Apache worker and userver; ours are nginx and Apache worker.\n"
    );
}

fn scaling_section(r: &Results, out: &mut String) {
    let _ = writeln!(out, "| configuration | 1 worker | {} workers | speedup | paper (libasync-smp, 4 CPUs) |\n|---|---:|---:|---:|---:|", sws_main_workers(r).max(sfs_main_workers(r).unwrap_or(0)));
    let w = sws_main_workers(r);
    for c in r.sws_configs() {
        let clients: Vec<usize> = r.sws_clients(1);
        if !r.sws.iter().any(|s| s.config == c && s.workers == 1) {
            continue;
        }
        let one = r.sws_peak(&c, 1, &clients);
        let many = r.sws_peak(&c, w, &clients);
        let paper = if c == "libasync-off" { Some(1.5) } else { None };
        let _ = writeln!(
            out,
            "| SWS {c} (req/s) | {} | {} | {} | {} |",
            fmt_opt(one),
            fmt_opt(many),
            fmt_opt(sws_speedup(r, &c)),
            fmt_opt(paper)
        );
    }
    if let Some(sw) = sfs_main_workers(r) {
        for c in ["colored", "none", "ncopy", "libasync-off", "libasync-base"] {
            if r.sfs_mbps(c, Some(1)).is_none() && r.sfs_mbps(c, Some(sw)).is_none() {
                continue;
            }
            let paper = if c == "colored" { Some(2.5) } else { None };
            let _ = writeln!(
                out,
                "| SFS {c} (MB/s) | {} | {} | {} | {} |",
                fmt_opt(r.sfs_mbps(c, Some(1))),
                fmt_opt(r.sfs_mbps(c, Some(sw))),
                fmt_opt(sfs_speedup(r, c)),
                fmt_opt(paper)
            );
        }
    }
    let _ = writeln!(out, "\nThe paper's speedups are on 4 CPUs over 1; this machine has {} cores, so ours stop at its core count.\n", r.env_str("cores"));
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
    sfs_mount_table(r, out);
}

/// The through-the-kernel configurations of the multiio benchmark, and their labels.
pub const SFS_MOUNT_ROWS: [(&str, &str); 4] = [
    ("mount-colored", "SFS colored (mely all, per-client colors)"),
    ("mount-none", "SFS --coloring none"),
    ("mount-ncopy", "SFS N-copy"),
    ("mount-sshfs", "sshfs (OpenSSH sftp, chacha20-poly1305)"),
];

/// SFS through the kernel: reader processes on FUSE mounts of each server, and sshfs.
fn sfs_mount_table(r: &Results, out: &mut String) {
    let run = |c: &str| r.sfs.iter().find(|s| s.config == c);
    if SFS_MOUNT_ROWS.iter().all(|(c, _)| run(c).is_none()) {
        return;
    }
    let readers = SFS_MOUNT_ROWS
        .iter()
        .find_map(|(c, _)| run(c).and_then(|s| s.readers))
        .map_or("n/a".to_string(), |n| format!("{n:.0}"));
    let mb = r.env_str("sfs_file_mb");
    let _ = writeln!(
        out,
        "**SFS through the kernel (multiio)**: {readers} reader processes, each on its own mount \
         (one connection each) of the server, reading a {mb} MB file with the mount's page cache \
         dropped before every pass (`posix_fadvise(DONTNEED)`); the file stays in the server's \
         page cache. sshfs reads the same file over the same loopback with the same readers. \
         Server CPU is the server's process tree (sshd and its session processes for sshfs). \
         Mount daemons, readers and servers share this machine's {} cores.{}\n",
        r.env_str("cores"),
        if r.env_str("mode") == "quick" {
            format!(" Quick mode: a {mb} MB file (the paper read 200 MB).")
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        out,
        "| configuration | MB/s | / sshfs | server CPU ms/MB |\n|---|---:|---:|---:|"
    );
    let sshfs = run("mount-sshfs").and_then(|s| s.mbytes_per_sec);
    for (c, label) in SFS_MOUNT_ROWS {
        let v = run(c).and_then(|s| s.mbytes_per_sec);
        let cpu = run(c).and_then(|s| s.server_cpu_ms_per_mb);
        let _ = writeln!(
            out,
            "| {label} | {} | {} | {} |",
            fmt_opt(v),
            fmt_opt(ratio(v, sshfs)),
            fmt_opt(cpu)
        );
    }
    let mbps = |c: &str| run(c).and_then(|s| s.mbytes_per_sec);
    let _ = writeln!(
        out,
        "\ncolored / none through the kernel: {}; colored / N-copy: {}.\n",
        fmt_opt(ratio(mbps("mount-colored"), mbps("mount-none"))),
        fmt_opt(ratio(mbps("mount-colored"), mbps("mount-ncopy")))
    );
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
    let _ = writeln!(out, "\n1 worker: post and run on one core (tokio current-thread spawn); 2 workers: posted on worker 0, run on worker 1 (tokio multi-thread).\n");
}

/// The simulator: Tables III-VI at 8 simulated cores on the paper's machine, its validation
/// and the scaling to 64 cores (every figure labelled simulated).
fn sim_section(r: &Results, out: &mut String) {
    super::sim::markdown(r, out);
}

/// The whole report.
pub fn report(r: &Results, plots: &[String]) -> String {
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
    let _ = writeln!(
        out,
        "\nEverything ran on this one machine: load injectors and clients share its cores with the \
         servers. Ratios inside one run compare; absolute rates do not compare with the papers' \
         8-core Xeon. `n/a` means not measured (never estimated).\n"
    );

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
