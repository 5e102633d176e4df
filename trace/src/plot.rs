//! Timeline pictures: one lane per core over a time window, colored by what the core does, as
//! SVG and PNG (plotters), from a parsed trace, so real and simulated runs are drawn alike.
//!
//! A lane is painted in layers, each over the one before: idle, asleep, searching (search and
//! nap states), running (event runs), stealing (steal attempts and the lock they hold), waiting
//! for a lock (a steal's lock wait). Slices narrower than a pixel are merged with their
//! neighbours of the same activity less than a pixel away, so a picture of thousands of runs
//! stays small.

use crate::parse::{ParsedSlice, ParsedTrace};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Width of a picture, pixels.
pub const WIDTH: u32 = 1200;

/// Where [`register_font`] looks for a TrueType font, after `COLORED_REPORT_FONT`.
pub const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

/// Why a picture could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The window is empty, reversed or not finite.
    #[error("bad window [{from_us}, {to_us}) microseconds")]
    BadWindow {
        /// Its start.
        from_us: f64,
        /// Its end.
        to_us: f64,
    },
    /// The trace has no slice in the window.
    #[error("the trace has nothing in [{from_us}, {to_us}) microseconds")]
    Empty {
        /// The window's start.
        from_us: f64,
        /// The window's end.
        to_us: f64,
    },
    /// No font for the text.
    #[error("no TrueType font found (install fonts-dejavu-core or set COLORED_REPORT_FONT)")]
    NoFont,
    /// Drawing or writing the picture failed.
    #[error("drawing {path}: {what}")]
    Draw {
        /// The picture's file.
        path: String,
        /// What plotters said.
        what: String,
    },
}

/// Register a font for plotters' text once, from `COLORED_REPORT_FONT` or
/// [`FONT_CANDIDATES`]; the path used.
pub fn register_font() -> Result<PathBuf, PlotError> {
    static DONE: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let env = std::env::var_os("COLORED_REPORT_FONT").map(PathBuf::from);
        let fixed = FONT_CANDIDATES.iter().map(PathBuf::from);
        env.into_iter().chain(fixed).find(|c| {
            let Ok(bytes) = std::fs::read(c) else {
                return false;
            };
            // plotters keeps the font for the life of the process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
        })
    })
    .clone()
    .ok_or(PlotError::NoFont)
}

/// What a core is doing, as a picture colors it. Later variants are painted over earlier ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Activity {
    /// Out of work, not searching or asleep.
    Idle,
    /// Asleep.
    Asleep,
    /// Searching for work to steal (including naps between attempts).
    Searching,
    /// Running an event.
    Running,
    /// Stealing: a steal attempt, with the victim's lock held.
    Stealing,
    /// Waiting for a lock (a steal's wait for the victim's lock).
    LockWait,
}

impl Activity {
    /// Every activity, in painting order.
    pub const ALL: [Activity; 6] = [
        Activity::Idle,
        Activity::Asleep,
        Activity::Searching,
        Activity::Running,
        Activity::Stealing,
        Activity::LockWait,
    ];

    /// The activity of a slice of our trace format, if it is drawn.
    pub fn of(s: &ParsedSlice) -> Option<Activity> {
        match (s.cat.as_str(), s.name.as_str()) {
            ("run", _) => Some(Activity::Running),
            ("steal", _) | ("lock", "lock hold") => Some(Activity::Stealing),
            ("lock", "lock wait") => Some(Activity::LockWait),
            ("state", "idle") => Some(Activity::Idle),
            ("state", "search" | "nap") => Some(Activity::Searching),
            ("state", "sleep") => Some(Activity::Asleep),
            _ => None,
        }
    }

    /// The legend's words.
    pub fn label(self) -> &'static str {
        match self {
            Activity::Idle => "idle",
            Activity::Asleep => "asleep",
            Activity::Searching => "searching",
            Activity::Running => "running",
            Activity::Stealing => "stealing",
            Activity::LockWait => "waiting for a lock",
        }
    }

    fn color(self) -> RGBColor {
        match self {
            Activity::Idle => RGBColor(205, 205, 205),
            Activity::Asleep => RGBColor(120, 120, 120),
            Activity::Searching => RGBColor(250, 215, 120),
            Activity::Running => RGBColor(44, 160, 44),
            Activity::Stealing => RGBColor(255, 127, 14),
            Activity::LockWait => RGBColor(214, 39, 40),
        }
    }
}

/// A time window of a trace, microseconds since its origin.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    /// Start.
    pub from_us: f64,
    /// End (after `from_us`).
    pub to_us: f64,
}

impl Window {
    /// `[from_us, to_us)`, if it is finite and not empty.
    pub fn new(from_us: f64, to_us: f64) -> Result<Window, PlotError> {
        if from_us.is_finite() && to_us.is_finite() && from_us < to_us {
            Ok(Window { from_us, to_us })
        } else {
            Err(PlotError::BadWindow { from_us, to_us })
        }
    }

    /// `len_us` microseconds from the trace's first slice.
    pub fn first(t: &ParsedTrace, len_us: f64) -> Result<Window, PlotError> {
        let from = t.span().map_or(0.0, |s| s.0);
        Window::new(from, from + len_us)
    }
}

/// What one lane shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Lane {
    /// The track's process.
    pub pid: u64,
    /// The track's thread (the core).
    pub tid: u64,
    /// The track's name.
    pub name: String,
    /// Microseconds of the window covered by each activity's slices, in [`Activity::ALL`]'s
    /// order (nested activities also count in their parent's: a steal within a search is
    /// both stealing and searching time).
    pub us: [f64; 6],
    /// Microseconds of the window in which each activity is the one drawn (the topmost of
    /// the layers covering that instant, in [`Activity::ALL`]'s order): the six add up to at
    /// most the window; the rest is time between records.
    pub top_us: [f64; 6],
}

impl Lane {
    /// Microseconds of the window covered by `a`.
    pub fn time(&self, a: Activity) -> f64 {
        self.us[a as usize]
    }

    /// Microseconds of the window in which `a` is the activity drawn (see [`Lane::top_us`]).
    pub fn top_time(&self, a: Activity) -> f64 {
        self.top_us[a as usize]
    }
}

/// One lane's intervals per activity, clipped to the window, sorted and merged when closer
/// than `gap` microseconds.
type Intervals = BTreeMap<Activity, Vec<(f64, f64)>>;

fn lanes(t: &ParsedTrace, w: Window, gap: f64) -> BTreeMap<(u64, u64), Intervals> {
    let mut lanes: BTreeMap<(u64, u64), Intervals> = BTreeMap::new();
    for s in &t.slices {
        let Some(a) = Activity::of(s) else { continue };
        let (a0, a1) = (s.ts.max(w.from_us), s.end().min(w.to_us));
        if a0 > a1 || (a0 == a1 && s.dur > 0.0) {
            continue;
        }
        let lane = lanes.entry((s.pid, s.tid)).or_default();
        lane.entry(a).or_default().push((a0, a1));
    }
    for lane in lanes.values_mut() {
        for v in lane.values_mut() {
            *v = merge(std::mem::take(v), gap);
        }
    }
    lanes
}

/// Time in which each activity is the topmost one covering the lane (see [`Lane::top_us`]):
/// a sweep over the boundaries of the (merged, so disjoint per activity) intervals.
fn topmost(iv: &Intervals) -> [f64; 6] {
    let mut edges: Vec<(f64, usize, i32)> = Vec::new();
    for (a, v) in iv {
        for &(x, y) in v {
            edges.push((x, *a as usize, 1));
            edges.push((y, *a as usize, -1));
        }
    }
    edges.sort_by(|p, q| p.0.total_cmp(&q.0));
    let mut open = [0i32; 6];
    let mut top = [0.0; 6];
    let mut last = f64::NEG_INFINITY;
    for (t, a, d) in edges {
        if let Some(k) = (0..6).rev().find(|&k| open[k] > 0) {
            top[k] += t - last;
        }
        open[a] += d;
        last = t;
    }
    top
}

fn merge(mut v: Vec<(f64, f64)>, gap: f64) -> Vec<(f64, f64)> {
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(v.len());
    for (a, b) in v {
        match out.last_mut() {
            Some(last) if a <= last.1 + gap => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// Draw `t` over `window` to `svg` and `png` (titled `title`), one lane per core; what each
/// lane shows.
pub fn timeline(
    t: &ParsedTrace,
    window: Window,
    title: &str,
    svg: &Path,
    png: &Path,
) -> Result<Vec<Lane>, PlotError> {
    register_font()?;
    let exact = lanes(t, window, 0.0);
    if exact.is_empty() {
        return Err(PlotError::Empty {
            from_us: window.from_us,
            to_us: window.to_us,
        });
    }
    let summary: Vec<Lane> = exact
        .iter()
        .map(|(&(pid, tid), iv)| {
            let mut us = [0.0; 6];
            for (a, v) in iv {
                us[*a as usize] = v.iter().map(|(x, y)| y - x).sum();
            }
            let top_us = topmost(iv);
            let name = t.tracks.get(&(pid, tid)).cloned();
            Lane {
                pid,
                tid,
                name: name.unwrap_or_else(|| format!("tid {tid}")),
                us,
                top_us,
            }
        })
        .collect();
    let pixel = (window.to_us - window.from_us) / f64::from(WIDTH);
    let drawn = lanes(t, window, pixel);
    let height = 140 + 50 * drawn.len() as u32;
    let pic = Picture {
        title,
        window,
        names: summary.iter().map(|l| l.name.clone()).collect(),
        lanes: drawn.into_values().collect(),
    };
    let err = |p: &Path| {
        let path = p.display().to_string();
        move |e: String| PlotError::Draw {
            path: path.clone(),
            what: e,
        }
    };
    pic.draw(SVGBackend::new(svg, (WIDTH, height)).into_drawing_area())
        .map_err(err(svg))?;
    pic.draw(BitMapBackend::new(png, (WIDTH, height)).into_drawing_area())
        .map_err(err(png))?;
    Ok(summary)
}

/// What [`timeline`] draws.
struct Picture<'a> {
    title: &'a str,
    window: Window,
    names: Vec<String>,
    lanes: Vec<Intervals>,
}

impl Picture<'_> {
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), String> {
        let e = |e: DrawingAreaErrorKind<DB::ErrorType>| format!("{e:?}");
        root.fill(&WHITE).map_err(e)?;
        let (legend, body) = root.split_vertically(40);
        self.legend(&legend).map_err(e)?;
        let n = self.lanes.len();
        // Milliseconds, or microseconds for a window under a millisecond.
        let (scale, unit) = if self.window.to_us - self.window.from_us < 1000.0 {
            (1.0, "us")
        } else {
            (1e-3, "ms")
        };
        let ms = |us: f64| us * scale;
        let (from, to) = (ms(self.window.from_us), ms(self.window.to_us));
        let mut chart = ChartBuilder::on(&body)
            .caption(self.title, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(90)
            .build_cartesian_2d(from..to, 0.0..n as f64)
            .map_err(e)?;
        // Lane i is drawn top down: core 0 at the top.
        let lane_y = |i: usize| (n - 1 - i) as f64;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_desc(format!("time since the trace's origin ({unit})"))
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(e)?;
        // The lanes' names, left of the plot (the root's coordinates are the backend's).
        for (i, name) in self.names.iter().enumerate() {
            let (_, y) = chart.backend_coord(&(from, lane_y(i) + 0.5));
            root.draw(&Text::new(name.as_str(), (20, y - 8), ("sans-serif", 15)))
                .map_err(e)?;
        }
        for a in Activity::ALL {
            let style = a.color().filled();
            let rects = self.lanes.iter().enumerate().flat_map(|(i, lane)| {
                let y = lane_y(i);
                lane.get(&a).into_iter().flatten().map(move |&(x0, x1)| {
                    Rectangle::new([(ms(x0), y + 0.15), (ms(x1), y + 0.85)], style)
                })
            });
            chart.draw_series(rects).map_err(e)?;
        }
        root.present().map_err(e)
    }

    /// The activities' colors in a row.
    fn legend<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let mut x = 100;
        for a in Activity::ALL {
            area.draw(&Rectangle::new([(x, 14), (x + 16, 30)], a.color().filled()))?;
            area.draw(&Text::new(a.label(), (x + 22, 14), ("sans-serif", 15)))?;
            x += 36 + 9 * a.label().len() as i32;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_joins_close_intervals() {
        let v = vec![(5.0, 6.0), (0.0, 1.0), (1.05, 2.0), (2.5, 3.0)];
        assert_eq!(
            merge(v.clone(), 0.0),
            [(0.0, 1.0), (1.05, 2.0), (2.5, 3.0), (5.0, 6.0)]
        );
        assert_eq!(merge(v, 0.1), [(0.0, 2.0), (2.5, 3.0), (5.0, 6.0)]);
    }

    #[test]
    fn windows_must_be_proper() {
        assert!(Window::new(1.0, 1.0).is_err());
        assert!(Window::new(2.0, 1.0).is_err());
        assert!(Window::new(f64::NAN, 1.0).is_err());
        assert!(Window::new(0.0, 1.0).is_ok());
    }
}
