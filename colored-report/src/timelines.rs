//! Timelines of the traced runs of a results directory: `traces/<name>.json` (written by
//! `scripts/reproduce.sh` with `--trace`, real or simulated) drawn as per-core lanes over the
//! first [`WINDOW_MS`] milliseconds that have a record, with what the picture shows in
//! numbers (the share of lane time per activity) and the trace checker's verdict.
//!
//! Nothing here is typed in by hand: the sentence under each picture is computed from the
//! lanes the picture draws.

use std::fmt::Write as _;
use std::path::Path;

use colored_trace::check::CheckReport;
use colored_trace::parse::ParsedTrace;
use colored_trace::plot::{self, Activity, Lane, Window};

/// How much of each trace a picture shows, milliseconds (from its first record).
pub const WINDOW_MS: f64 = 2.0;

/// One drawn timeline.
#[derive(Clone, Debug)]
pub struct Timeline {
    /// The trace's file stem (`traces/<name>.json`).
    pub name: String,
    /// The picture's title: the run's configuration from the trace's metadata.
    pub title: String,
    /// The SVG, relative to the results directory.
    pub svg: String,
    /// True if the trace's timestamps are the simulator's virtual time.
    pub simulated: bool,
    /// The window drawn, microseconds of the trace's clock.
    pub window: Window,
    /// Time per activity of each lane in the window.
    pub lanes: Vec<Lane>,
    /// The checker's verdict on the whole trace.
    pub check: CheckReport,
}

impl Timeline {
    /// Share of all lanes' time in the window in which `a` is the activity drawn, in
    /// percent (the six shares and [`Timeline::unrecorded`] add up to 100).
    pub fn share(&self, a: Activity) -> f64 {
        let span = (self.window.to_us - self.window.from_us) * self.lanes.len() as f64;
        if span <= 0.0 {
            return 0.0;
        }
        100.0 * self.lanes.iter().map(|l| l.top_time(a)).sum::<f64>() / span
    }

    /// Share of all lanes' time in the window covered by no record, in percent: the
    /// runtime's own code between records (pops, posts, flushes, locks outside steals).
    pub fn unrecorded(&self) -> f64 {
        (100.0 - Activity::ALL.iter().map(|&a| self.share(a)).sum::<f64>()).max(0.0)
    }
}

/// The configuration keys a title shows, in this order (others, such as the trace bounds,
/// are in the JSON's `otherData`).
const TITLE_KEYS: &[&str] = &[
    "benchmark",
    "server",
    "queue",
    "stealing",
    "steal-amount",
    "workers",
    "cores",
    "topology",
];

/// The title of a trace: real or SIMULATED, its configuration's main keys and its fidelity.
fn title_of(t: &ParsedTrace, name: &str) -> (String, bool) {
    let simulated = t
        .other
        .pointer("/simulated")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    let conf = t.other.pointer("/configuration");
    let mut parts: Vec<String> = TITLE_KEYS
        .iter()
        .filter_map(|k| {
            let v = conf?.get(*k)?.as_str()?;
            Some(if *k == "benchmark" || *k == "server" {
                v.to_string()
            } else {
                format!("{k} {v}")
            })
        })
        .collect();
    if let Some(f) = t
        .other
        .pointer("/fidelity")
        .and_then(serde_json::Value::as_str)
    {
        parts.push(format!("fidelity {f}"));
    }
    if parts.is_empty() {
        parts.push(name.to_string());
    }
    let kind = if simulated { "SIMULATED" } else { "real" };
    (format!("{kind}: {}", parts.join(", ")), simulated)
}

/// Draw the timeline of the trace at `path` into `plots_dir` (`timeline-<name>.svg` and
/// `.png`); `plots_rel` is `plots_dir` relative to the results directory.
pub fn draw(path: &Path, plots_dir: &Path, plots_rel: &str) -> anyhow::Result<Timeline> {
    use anyhow::Context;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let t = ParsedTrace::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let check = colored_trace::check::check(&t);
    // The first WINDOW_MS, or the whole trace if shorter.
    let (first, last) = t.span().unwrap_or((0.0, 0.0));
    let window = Window::new(first, last.min(first + WINDOW_MS * 1000.0))?;
    let (title, simulated) = title_of(&t, &name);
    std::fs::create_dir_all(plots_dir)
        .with_context(|| format!("creating {}", plots_dir.display()))?;
    let stem = format!("timeline-{name}");
    let svg = plots_dir.join(format!("{stem}.svg"));
    let png = plots_dir.join(format!("{stem}.png"));
    let lanes = plot::timeline(&t, window, &title, &svg, &png)?;
    Ok(Timeline {
        name,
        title,
        svg: format!("{plots_rel}/{stem}.svg"),
        simulated,
        window,
        lanes,
        check,
    })
}

/// Draw every trace of `results/traces/` (sorted by name); the timelines drawn and, for each
/// trace that could not be, why.
pub fn draw_all(results: &Path) -> (Vec<Timeline>, Vec<String>) {
    let dir = results.join("traces");
    let mut paths: Vec<_> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect(),
        Err(_) => return (Vec::new(), Vec::new()),
    };
    paths.sort();
    let mut drawn = Vec::new();
    let mut failed = Vec::new();
    for p in paths {
        match draw(&p, &results.join("plots"), "plots") {
            Ok(t) => drawn.push(t),
            Err(e) => failed.push(format!("{}: {e:#}", p.display())),
        }
    }
    (drawn, failed)
}

/// The report's section: each picture, and under it what it shows.
pub fn markdown(timelines: &[Timeline], out: &mut String) {
    if timelines.is_empty() {
        let _ = writeln!(
            out,
            "No trace in this results directory (`traces/*.json`; scripts/reproduce.sh records \
             one with `--trace`).\n"
        );
        return;
    }
    let _ = writeln!(
        out,
        "Per-core lanes over the first {WINDOW_MS} ms of each trace, colored by what the core \
         does (open the JSON in ui.perfetto.dev for every event).\n"
    );
    for t in timelines {
        let clock = if t.simulated {
            "simulated time"
        } else {
            "wall-clock time"
        };
        let _ = writeln!(out, "### {}\n\n![{}]({})\n", t.title, t.name, t.svg);
        let pct = |a: Activity| t.share(a);
        let _ = writeln!(
            out,
            "Over these {:.2} ms of {clock} the {} with records in them were running events \
             {:.0}% of the time, stealing {:.0}%, waiting for a lock {:.0}%, searching {:.0}%, \
             idle or asleep {:.0}%, and in the runtime between records {:.0}%.",
            (t.window.to_us - t.window.from_us) / 1000.0,
            match t.lanes.len() {
                1 => "1 core".to_string(),
                n => format!("{n} cores"),
            },
            pct(Activity::Running),
            pct(Activity::Stealing),
            pct(Activity::LockWait),
            pct(Activity::Searching),
            pct(Activity::Idle) + pct(Activity::Asleep),
            t.unrecorded(),
        );
        let verdict = if t.check.passed() {
            "no two runs of one color overlap".to_string()
        } else {
            format!(
                "**{} violation(s) of the color guarantee**",
                t.check.violations_total
            )
        };
        let _ = writeln!(
            out,
            "Trace checker over the whole trace ({} runs of {} colors, {} steals): {verdict}.\n",
            t.check.runs, t.check.colors, t.check.steals
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixture trace (a real 2-worker `unbalanced` run with libasync-smp stealing) is
    /// drawn, and its numbers add up: the shares of the six activities cover at most the
    /// whole window, running is the largest, and the checker passes.
    #[test]
    fn the_fixture_trace_is_drawn_with_its_shares() {
        let dir = std::env::temp_dir().join(format!("timelines-{}", std::process::id()));
        let traces = dir.join("traces");
        std::fs::create_dir_all(&traces).unwrap();
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/trace/unbalanced-libasync-base-w2.json");
        std::fs::copy(&fixture, traces.join("unbalanced.json")).unwrap();
        std::fs::write(traces.join("broken.json"), "{").unwrap();
        let (drawn, failed) = draw_all(&dir);
        assert_eq!(drawn.len(), 1, "{failed:?}");
        assert_eq!(failed.len(), 1, "the broken trace is reported");
        let t = &drawn[0];
        assert!(dir.join(&t.svg).is_file());
        assert!(!t.simulated);
        assert_eq!(
            t.title,
            "real: unbalanced, queue libasync, stealing base, steal-amount one, workers 2, \
             fidelity ours"
        );
        let total: f64 = Activity::ALL.iter().map(|&a| t.share(a)).sum();
        assert!(total > 0.0 && total <= 100.0 + 1e-6, "{total}");
        assert!((total + t.unrecorded() - 100.0).abs() < 1e-6);
        // The fixture's window is its whole span (shorter than WINDOW_MS).
        assert!(t.window.to_us - t.window.from_us < WINDOW_MS * 1000.0);
        let mut out = String::new();
        markdown(&drawn, &mut out);
        assert!(out.contains("no two runs of one color overlap"), "{out}");
        assert!(out.contains("timeline-unbalanced.svg"), "{out}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
