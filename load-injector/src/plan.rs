//! The plan: everything a run needs, parsed once at the edge (the command line)
//! and passed down as data. The master sends the same structure to its slaves.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;

use anyhow::{bail, Context, Result};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// One request path and its relative weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightedPath {
    /// Absolute request path, e.g. `/index.html`.
    pub path: String,
    /// Relative weight (> 0); equal weights mean a uniform choice.
    pub weight: f64,
}

/// Client-count steps of a ramp: `start`, `start+step`, ... up to `end` inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ramp {
    /// First client count.
    pub start: usize,
    /// Last client count (included if reached exactly; always at least `start`).
    pub end: usize,
    /// Increment between steps (> 0).
    pub step: usize,
}

impl Ramp {
    /// Parses `START:END:STEP`, e.g. `200:2000:200`.
    pub fn parse(s: &str) -> Result<Ramp> {
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() != 3 {
            bail!("--ramp wants START:END:STEP (e.g. 200:2000:200), got {s:?}");
        }
        let num = |p: &str, what: &str| -> Result<usize> {
            p.trim()
                .parse()
                .with_context(|| format!("--ramp {what} {p:?} is not a whole number"))
        };
        let r = Ramp {
            start: num(parts[0], "START")?,
            end: num(parts[1], "END")?,
            step: num(parts[2], "STEP")?,
        };
        if r.start == 0 || r.step == 0 || r.end < r.start {
            bail!("--ramp needs 0 < START <= END and STEP > 0, got {s:?}");
        }
        Ok(r)
    }

    /// The client counts of every step.
    pub fn steps(&self) -> Vec<usize> {
        (self.start..=self.end).step_by(self.step).collect()
    }
}

/// A complete, validated description of the load to inject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The target as given on the command line (host:port).
    pub target: String,
    /// The resolved address connected to.
    pub addr: SocketAddr,
    /// Value of the `Host` header.
    pub host_header: String,
    /// Virtual clients (concurrent connections). In a ramp, the first step's.
    pub clients: usize,
    /// Injection threads, each running a share of the clients on its own mio
    /// poll; 0 means one per core of the host that runs them (slaves decide
    /// for themselves).
    pub threads: usize,
    /// Measured seconds per run.
    pub duration_s: f64,
    /// Seconds of load before each run's measurement starts (excluded from figures).
    pub warmup_s: f64,
    /// Repetitions (median and spread are computed over them).
    pub runs: usize,
    /// Requests sent on a connection before it is closed and reopened.
    pub requests_per_conn: u64,
    /// Pause between a response and the client's next request, in milliseconds.
    pub think_time_ms: f64,
    /// A request not answered this long after its intended send time is a timeout.
    pub timeout_ms: u64,
    /// Pause before reconnecting after a connection-level error, in milliseconds.
    pub error_backoff_ms: f64,
    /// Status required for success; `None` means any 2xx.
    pub expect_status: Option<u16>,
    /// Paths requested, chosen at random by weight.
    pub paths: Vec<WeightedPath>,
    /// Step the client count instead of a single level.
    pub ramp: Option<Ramp>,
}

/// Resolves `--server` (old name `--target`): `HOST:PORT`, optionally prefixed by `http://`.
/// Returns the address and the `Host` header value.
pub fn parse_target(target: &str) -> Result<(SocketAddr, String)> {
    let t = target.trim();
    if let Some(rest) = t.strip_prefix("https://") {
        bail!("--server {target:?}: https is not supported (plain HTTP/1.1 only); use {rest:?}");
    }
    let t = t.strip_prefix("http://").unwrap_or(t);
    let t = t.trim_end_matches('/');
    if t.is_empty() || t.contains('/') {
        bail!("--server {target:?}: expected HOST:PORT, e.g. 127.0.0.1:8080 (paths go in --path)");
    }
    let mut addrs = t
        .to_socket_addrs()
        .with_context(|| format!("--server {target:?}: expected HOST:PORT, e.g. 127.0.0.1:8080"))?;
    let addr = addrs
        .next()
        .with_context(|| format!("--server {target:?}: the name resolved to no address"))?;
    if addr.port() == 0 {
        bail!("--server {target:?}: port 0 is not a valid target port");
    }
    Ok((addr, t.to_string()))
}

/// Parses a paths file: one path per line, an optional weight after
/// whitespace; blank lines and lines starting with `#` are ignored.
pub fn parse_paths(text: &str) -> Result<Vec<WeightedPath>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut it = line.split_whitespace();
        let path = it.next().unwrap_or_default();
        let weight = match it.next() {
            None => 1.0,
            Some(w) => w
                .parse::<f64>()
                .ok()
                .filter(|w| w.is_finite() && *w > 0.0)
                .with_context(|| {
                    format!("line {}: weight {w:?} is not a positive number", i + 1)
                })?,
        };
        if it.next().is_some() {
            bail!("line {}: expected `PATH [WEIGHT]`, got {line:?}", i + 1);
        }
        check_path(path).with_context(|| format!("line {}", i + 1))?;
        out.push(WeightedPath {
            path: path.to_string(),
            weight,
        });
    }
    if out.is_empty() {
        bail!("no paths in the file");
    }
    Ok(out)
}

/// Reads [`parse_paths`] from a file.
pub fn read_paths_file(file: &Path) -> Result<Vec<WeightedPath>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading --paths {}", file.display()))?;
    parse_paths(&text).with_context(|| format!("in --paths {}", file.display()))
}

/// A request path must be absolute and printable (it goes on the request line as is).
pub fn check_path(path: &str) -> Result<()> {
    if !path.starts_with('/') {
        bail!("path {path:?} must start with '/'");
    }
    if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        bail!("path {path:?} contains spaces or control characters");
    }
    Ok(())
}

impl Plan {
    /// Checks the numbers are usable.
    pub fn validate(&self) -> Result<()> {
        if self.clients == 0 {
            bail!("--clients must be at least 1");
        }
        if !(self.duration_s > 0.0 && self.duration_s.is_finite()) {
            bail!("--seconds must be a positive number");
        }
        if !(self.warmup_s >= 0.0 && self.warmup_s.is_finite()) {
            bail!("--warmup must be zero or a positive number of seconds");
        }
        if self.runs == 0 {
            bail!("--runs must be at least 1");
        }
        if self.requests_per_conn == 0 {
            bail!("--requests-per-conn must be at least 1");
        }
        if !(self.think_time_ms >= 0.0 && self.think_time_ms.is_finite()) {
            bail!("--think-time must be zero or positive");
        }
        if !(self.error_backoff_ms >= 0.0 && self.error_backoff_ms.is_finite()) {
            bail!("--error-backoff must be zero or positive");
        }
        if self.timeout_ms == 0 {
            bail!("--timeout must be positive");
        }
        if self.paths.is_empty() {
            bail!("give at least one --path or a --paths file");
        }
        for p in &self.paths {
            check_path(&p.path)?;
            if !(p.weight > 0.0 && p.weight.is_finite()) {
                bail!("path {:?}: weight must be positive", p.path);
            }
        }
        Ok(())
    }

    /// The client counts to run: the ramp's steps, or just `clients`.
    pub fn client_steps(&self) -> Vec<usize> {
        match self.ramp {
            Some(r) => r.steps(),
            None => vec![self.clients],
        }
    }

    /// The raw request bytes for every path (same order as `paths`).
    /// `close` asks the server to close after answering (last request of a connection).
    pub fn requests(&self, close: bool) -> Vec<Vec<u8>> {
        self.paths
            .iter()
            .map(|p| {
                format!(
                    "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: load-injector/{}\r\n{}\r\n",
                    p.path,
                    self.host_header,
                    env!("CARGO_PKG_VERSION"),
                    if close { "Connection: close\r\n" } else { "" }
                )
                .into_bytes()
            })
            .collect()
    }

    /// Whether a status counts as success.
    pub fn status_ok(&self, status: u16) -> bool {
        match self.expect_status {
            Some(s) => status == s,
            None => (200..300).contains(&status),
        }
    }
}

/// Picks request paths at random according to their weights.
#[derive(Debug, Clone)]
pub struct PathPicker {
    /// Cumulative weights; empty when the choice is uniform.
    cumulative: Vec<f64>,
    total: f64,
    n: usize,
}

impl PathPicker {
    /// A picker over `paths` (must be non-empty).
    pub fn new(paths: &[WeightedPath]) -> PathPicker {
        assert!(!paths.is_empty(), "PathPicker needs at least one path");
        let uniform = paths.iter().all(|p| p.weight == paths[0].weight);
        let mut acc = 0.0;
        let cumulative = if uniform {
            Vec::new()
        } else {
            paths
                .iter()
                .map(|p| {
                    acc += p.weight;
                    acc
                })
                .collect()
        };
        PathPicker {
            cumulative,
            total: acc,
            n: paths.len(),
        }
    }

    /// The index of the next path.
    pub fn pick<R: Rng>(&self, rng: &mut R) -> usize {
        if self.n == 1 {
            return 0;
        }
        if self.cumulative.is_empty() {
            return rng.gen_range(0..self.n);
        }
        let x = rng.gen::<f64>() * self.total;
        self.cumulative.partition_point(|&c| c <= x).min(self.n - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::SmallRng, SeedableRng};

    #[test]
    fn targets() {
        let (a, h) = parse_target("127.0.0.1:8080").unwrap();
        assert_eq!(a.port(), 8080);
        assert_eq!(h, "127.0.0.1:8080");
        assert!(parse_target("http://127.0.0.1:80/").is_ok());
        for bad in [
            "",
            "127.0.0.1",
            "127.0.0.1:0",
            "127.0.0.1:99999",
            "https://x:1",
            "127.0.0.1:80/index.html",
            "no such host:80",
        ] {
            assert!(parse_target(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn paths_file() {
        let p = parse_paths("# comment\n/a 3\n\n/b\n").unwrap();
        assert_eq!(
            p,
            vec![
                WeightedPath {
                    path: "/a".into(),
                    weight: 3.0
                },
                WeightedPath {
                    path: "/b".into(),
                    weight: 1.0
                }
            ]
        );
        assert!(parse_paths("a\n").is_err());
        assert!(parse_paths("/a -1\n").is_err());
        assert!(parse_paths("/a 1 2\n").is_err());
        assert!(parse_paths("#only\n").is_err());
    }

    #[test]
    fn ramp() {
        assert_eq!(
            Ramp::parse("200:1000:200").unwrap().steps(),
            vec![200, 400, 600, 800, 1000]
        );
        assert_eq!(Ramp::parse("1:2:5").unwrap().steps(), vec![1]);
        assert!(Ramp::parse("0:10:1").is_err());
        assert!(Ramp::parse("10:1:1").is_err());
        assert!(Ramp::parse("1:2").is_err());
    }

    #[test]
    fn weighted_pick_follows_weights() {
        let paths = vec![
            WeightedPath {
                path: "/a".into(),
                weight: 1.0,
            },
            WeightedPath {
                path: "/b".into(),
                weight: 3.0,
            },
        ];
        let picker = PathPicker::new(&paths);
        let mut rng = SmallRng::seed_from_u64(7);
        let mut counts = [0u32; 2];
        for _ in 0..40_000 {
            counts[picker.pick(&mut rng)] += 1;
        }
        let frac = counts[1] as f64 / 40_000.0;
        assert!((0.72..0.78).contains(&frac), "fraction of /b = {frac}");
        let uni = PathPicker::new(&[
            paths[0].clone(),
            WeightedPath {
                path: "/c".into(),
                weight: 1.0,
            },
        ]);
        let mut c = [0u32; 2];
        for _ in 0..40_000 {
            c[uni.pick(&mut rng)] += 1;
        }
        assert!((c[0] as f64 / 40_000.0 - 0.5).abs() < 0.03);
    }
}
