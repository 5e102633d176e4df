//! The timeline picture of the sample run: written as SVG and PNG, with what the lanes show.
//! With `COLORED_TRACE_KEEP_PLOT` set, the pictures are kept and their directory printed.

mod common;

use colored_trace::export::to_json;
use colored_trace::parse::ParsedTrace;
use colored_trace::plot::{register_font, timeline, Activity, PlotError, Window};

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false")
}

/// True if a font is there; under `CI` a missing one fails, elsewhere the test is skipped.
fn font() -> bool {
    match register_font() {
        Ok(_) => true,
        Err(e) => {
            assert!(!ci(), "{e}");
            println!("SKIPPED: {e}");
            false
        }
    }
}

fn hex(a: Activity) -> &'static str {
    match a {
        Activity::Running => "#2CA02C",
        Activity::LockWait => "#D62728",
        _ => unreachable!("only these are looked for"),
    }
}

#[test]
fn the_picture_is_written_and_shows_the_run() {
    if !font() {
        return;
    }
    let t = ParsedTrace::from_value(&to_json(&common::full_sample()).unwrap()).unwrap();
    let dir = std::env::temp_dir().join(format!("colored-trace-plot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (svg, png) = (dir.join("t.svg"), dir.join("t.png"));
    // The first 30 microseconds: core 0 busy, core 1's steal and runs, core 2's searches.
    let lanes = timeline(&t, Window::new(0.0, 30.0).unwrap(), "sample", &svg, &png).unwrap();
    let svg_text = std::fs::read_to_string(&svg).unwrap();
    let png_bytes = std::fs::read(&png).unwrap();
    // COLORED_TRACE_KEEP_PLOT set: the pictures stay, to be looked at.
    if std::env::var_os("COLORED_TRACE_KEEP_PLOT").is_none() {
        std::fs::remove_dir_all(&dir).unwrap();
    } else {
        println!("pictures kept in {}", dir.display());
    }

    let names: Vec<&str> = lanes.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["core 0", "core 1", "core 2"]);
    // Core 0 runs 27 events of 1 us, 100 ns apart, from 0.1 us: 27 us of the 30 (its 28th
    // starts at 29.8 and is cut at 30).
    let run0 = lanes[0].time(Activity::Running);
    assert!((run0 - 27.2).abs() < 1e-6, "{run0}");
    assert!(lanes[1].time(Activity::Stealing) > 0.5);
    assert!((lanes[1].time(Activity::Running) - 5.0).abs() < 1e-6);
    assert!((lanes[2].time(Activity::LockWait) - 0.02).abs() < 1e-6);
    assert!(lanes[2].time(Activity::Asleep) > 20.0);
    assert_eq!(lanes[2].time(Activity::Running), 0.0);

    for text in ["core 0", "core 2", "waiting for a lock", "sample", "(us)"] {
        assert!(svg_text.contains(text), "the SVG lacks {text:?}");
    }
    for a in [Activity::Running, Activity::LockWait] {
        assert!(svg_text.contains(hex(a)), "the SVG has no {a:?} rectangle");
    }
    assert!(svg_text.matches("<rect").count() > 40);
    assert_eq!(&png_bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(png_bytes.len() > 5_000, "{} bytes", png_bytes.len());
}

#[test]
fn an_empty_window_is_an_error() {
    if !font() {
        return;
    }
    let t = ParsedTrace::from_value(&to_json(&common::full_sample()).unwrap()).unwrap();
    let dir = std::env::temp_dir();
    let w = Window::new(1e9, 1e9 + 1.0).unwrap();
    let r = timeline(&t, w, "x", &dir.join("never.svg"), &dir.join("never.png"));
    assert!(matches!(r, Err(PlotError::Empty { .. })), "{r:?}");
}
