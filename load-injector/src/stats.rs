//! Counters, latency histograms, their exact merge, and per-run summaries.
//!
//! Accounting invariant (checked by the tests): for every measured request,
//! `requests == ok + sum(errors)`. A request is *measured* when its intended
//! send time falls inside the measurement window; it is followed to its end
//! (response, error or timeout) even past the window, so none is lost or
//! counted twice. Only successful responses enter the latency histogram.

use std::collections::BTreeMap;
use std::io;

use anyhow::{Context, Result};
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest latency the histograms track, in microseconds (one hour).
pub const MAX_LATENCY_US: u64 = 3_600_000_000;
/// Significant decimal digits kept by the histograms.
pub const SIGFIG: u8 = 3;

/// How a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The connection was refused.
    Refused,
    /// The connection was reset or broken by the peer.
    Reset,
    /// No complete answer within the timeout (measured from the intended send time).
    Timeout,
    /// A complete response whose status is not 2xx (or not the expected one).
    BadStatus,
    /// The connection closed before the response was complete.
    ShortBody,
    /// The response could not be parsed, or more bytes came than were asked for.
    Parse,
    /// Anything else (address unavailable, unexpected I/O error).
    Other,
}

impl ErrorKind {
    /// Every kind, in report order.
    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::Refused,
        ErrorKind::Reset,
        ErrorKind::Timeout,
        ErrorKind::BadStatus,
        ErrorKind::ShortBody,
        ErrorKind::Parse,
        ErrorKind::Other,
    ];

    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Refused => "refused",
            ErrorKind::Reset => "reset",
            ErrorKind::Timeout => "timeout",
            ErrorKind::BadStatus => "bad_status",
            ErrorKind::ShortBody => "short_body",
            ErrorKind::Parse => "parse",
            ErrorKind::Other => "other",
        }
    }

    /// Classifies an I/O error from connect, read or write.
    pub fn from_io(e: &io::Error) -> ErrorKind {
        match e.kind() {
            io::ErrorKind::ConnectionRefused => ErrorKind::Refused,
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => ErrorKind::Reset,
            io::ErrorKind::TimedOut => ErrorKind::Timeout,
            _ => match e.raw_os_error() {
                Some(libc::ECONNREFUSED) => ErrorKind::Refused,
                Some(libc::ECONNRESET) | Some(libc::EPIPE) => ErrorKind::Reset,
                Some(libc::ETIMEDOUT) => ErrorKind::Timeout,
                _ => ErrorKind::Other,
            },
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Plain counters of one thread, one slave, or a merge of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Measured requests attempted (connect included).
    pub requests: u64,
    /// Of those, complete responses with a good status.
    pub ok: u64,
    /// Of those, failures by [`ErrorKind`] index.
    pub errors: [u64; 7],
    /// Response bytes received for measured requests (head and body).
    pub bytes: u64,
    /// TCP connections established for measured requests.
    pub connections: u64,
    /// CPU time (user + system) the injection threads used during the run, in
    /// microseconds (warm-up and drain included).
    #[serde(default)]
    pub cpu_us: u64,
}

impl Counters {
    /// Adds one failure.
    pub fn error(&mut self, kind: ErrorKind) {
        self.errors[kind.index()] += 1;
    }

    /// Failures of one kind.
    pub fn errors_of(&self, kind: ErrorKind) -> u64 {
        self.errors[kind.index()]
    }

    /// All failures.
    pub fn total_errors(&self) -> u64 {
        self.errors.iter().sum()
    }

    /// Adds another set of counters.
    pub fn add(&mut self, o: &Counters) {
        self.requests += o.requests;
        self.ok += o.ok;
        for (a, b) in self.errors.iter_mut().zip(o.errors.iter()) {
            *a += b;
        }
        self.bytes += o.bytes;
        self.connections += o.connections;
        self.cpu_us += o.cpu_us;
    }

    /// Errors as a name -> count map holding every kind.
    pub fn error_map(&self) -> BTreeMap<String, u64> {
        ErrorKind::ALL
            .iter()
            .map(|k| (k.name().to_string(), self.errors_of(*k)))
            .collect()
    }
}

/// A fresh latency histogram (microseconds).
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, SIGFIG).expect("valid histogram bounds")
}

/// Raw, mergeable results of one measured window: what slaves send to the master.
#[derive(Debug, Clone)]
pub struct RunStats {
    /// Counters.
    pub counters: Counters,
    /// Latency of successful responses, microseconds from the intended send time.
    pub latency: Histogram<u64>,
}

impl Default for RunStats {
    fn default() -> Self {
        RunStats {
            counters: Counters::default(),
            latency: new_histogram(),
        }
    }
}

impl RunStats {
    /// Exact merge: counters sum and histograms add.
    pub fn merge(&mut self, o: &RunStats) -> Result<()> {
        self.counters.add(&o.counters);
        self.latency
            .add(&o.latency)
            .map_err(|e| anyhow::anyhow!("histogram merge: {e:?}"))?;
        Ok(())
    }

    /// The histogram in HdrHistogram's V2 encoding.
    pub fn histogram_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        V2Serializer::new()
            .serialize(&self.latency, &mut out)
            .map_err(|e| anyhow::anyhow!("histogram serialization: {e:?}"))?;
        Ok(out)
    }

    /// Decodes a histogram written by [`RunStats::histogram_bytes`].
    pub fn histogram_from_bytes(bytes: &[u8]) -> Result<Histogram<u64>> {
        let mut d = Deserializer::new();
        let h: Histogram<u64> = d
            .deserialize(&mut io::Cursor::new(bytes))
            .map_err(|e| anyhow::anyhow!("histogram deserialization: {e:?}"))
            .context("decoding a V2 histogram")?;
        // Re-home into the standard bounds so later merges never fail on range.
        let mut std_h = new_histogram();
        std_h
            .add(&h)
            .map_err(|e| anyhow::anyhow!("histogram range: {e:?}"))?;
        Ok(std_h)
    }

    /// The figures of this window.
    pub fn summarize(&self, run: usize, clients: usize, duration_s: f64) -> RunSummary {
        let c = &self.counters;
        let h = &self.latency;
        let pct = |q: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(q)
            }
        };
        RunSummary {
            run,
            clients,
            duration_s,
            requests: c.requests,
            responses_ok: c.ok,
            bytes: c.bytes,
            requests_per_sec: c.ok as f64 / duration_s,
            mbytes_per_sec: c.bytes as f64 / duration_s / 1e6,
            latency_us: Latency {
                p50: pct(0.5),
                p90: pct(0.9),
                p99: pct(0.99),
                p999: pct(0.999),
                mean: if h.is_empty() { 0.0 } else { h.mean() },
                max: if h.is_empty() { 0 } else { h.max() },
            },
            connections: c.connections,
            injector_cpu_us_per_request: if c.requests == 0 {
                0.0
            } else {
                c.cpu_us as f64 / c.requests as f64
            },
            errors: c.error_map(),
            complete: true,
            missing_slaves: Vec::new(),
            slaves: Vec::new(),
        }
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Mean.
    pub mean: f64,
    /// Maximum.
    pub max: u64,
}

/// The figures of one run (one row of the report).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Run number, from 1.
    pub run: usize,
    /// Virtual clients.
    pub clients: usize,
    /// Measured seconds.
    pub duration_s: f64,
    /// Measured requests attempted.
    pub requests: u64,
    /// Successful responses.
    pub responses_ok: u64,
    /// Response bytes received.
    pub bytes: u64,
    /// Successful responses per second.
    pub requests_per_sec: f64,
    /// Response megabytes (10^6 bytes) per second.
    pub mbytes_per_sec: f64,
    /// Latency of successful responses from their intended send time.
    pub latency_us: Latency,
    /// TCP connections opened.
    pub connections: u64,
    /// CPU time of the injector per measured request, in microseconds: the
    /// load generator's own cost, to report beside requests/s when it shares
    /// the cores with the server.
    #[serde(default)]
    pub injector_cpu_us_per_request: f64,
    /// Failures by kind (every kind present).
    pub errors: BTreeMap<String, u64>,
    /// False when a slave failed during the run: the figures miss its share.
    pub complete: bool,
    /// Slaves whose results are missing, with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_slaves: Vec<String>,
    /// Master mode: each answering slave's own figures (the run's figures are
    /// their exact merge).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slaves: Vec<SlaveRun>,
}

/// One slave's share of a run, as it reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlaveRun {
    /// The slave's control address.
    pub addr: String,
    /// Measured requests it attempted.
    pub requests: u64,
    /// Its successful responses.
    pub responses_ok: u64,
    /// Its failures (all kinds).
    pub errors: u64,
    /// Its successful responses per second.
    pub requests_per_sec: f64,
    /// Latency values in its histogram (equals `responses_ok`).
    pub latency_count: u64,
    /// Its median latency, microseconds.
    pub p50_us: u64,
    /// Its 99th percentile latency, microseconds.
    pub p99_us: u64,
}

impl SlaveRun {
    /// The figures of one slave's raw results.
    pub fn of(addr: &str, s: &RunStats, duration_s: f64) -> SlaveRun {
        let h = &s.latency;
        let q = |x: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(x)
            }
        };
        SlaveRun {
            addr: addr.to_string(),
            requests: s.counters.requests,
            responses_ok: s.counters.ok,
            errors: s.counters.total_errors(),
            requests_per_sec: s.counters.ok as f64 / duration_s,
            latency_count: h.len(),
            p50_us: q(0.5),
            p99_us: q(0.99),
        }
    }
}

/// The median over runs of every figure, taken field by field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Median {
    /// Median successful responses per second.
    pub requests_per_sec: f64,
    /// Median MB/s.
    pub mbytes_per_sec: f64,
    /// Median of each percentile.
    pub latency_us: Latency,
    /// Median connections opened.
    pub connections: f64,
    /// Median injector CPU microseconds per request.
    pub injector_cpu_us_per_request: f64,
    /// Median count of each error kind.
    pub errors: BTreeMap<String, f64>,
}

/// How much requests/s varied across runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Lowest requests/s.
    pub min: f64,
    /// Highest requests/s.
    pub max: f64,
    /// Sample standard deviation (0 for a single run).
    pub stdev: f64,
    /// Standard deviation over the mean, in percent.
    pub cv_pct: f64,
}

/// The field-by-field median of runs.
pub fn median(runs: &[RunSummary]) -> Median {
    // No run, or no finite value: 0 (the report shows no runs).
    let m =
        |f: &dyn Fn(&RunSummary) -> f64| edge::median::median(runs.iter().map(f)).unwrap_or(0.0);
    let mu = |f: &dyn Fn(&RunSummary) -> u64| {
        edge::median::median(runs.iter().map(|r| f(r) as f64)).map_or(0, |x| x.round() as u64)
    };
    let mut errors = BTreeMap::new();
    for k in ErrorKind::ALL {
        let name = k.name();
        errors.insert(
            name.to_string(),
            m(&|r| r.errors.get(name).copied().unwrap_or(0) as f64),
        );
    }
    Median {
        requests_per_sec: m(&|r| r.requests_per_sec),
        mbytes_per_sec: m(&|r| r.mbytes_per_sec),
        latency_us: Latency {
            p50: mu(&|r| r.latency_us.p50),
            p90: mu(&|r| r.latency_us.p90),
            p99: mu(&|r| r.latency_us.p99),
            p999: mu(&|r| r.latency_us.p999),
            mean: m(&|r| r.latency_us.mean),
            max: mu(&|r| r.latency_us.max),
        },
        connections: m(&|r| r.connections as f64),
        injector_cpu_us_per_request: m(&|r| r.injector_cpu_us_per_request),
        errors,
    }
}

/// The spread of requests/s over runs.
pub fn spread(runs: &[RunSummary]) -> Spread {
    let v: Vec<f64> = runs.iter().map(|r| r.requests_per_sec).collect();
    if v.is_empty() {
        return Spread {
            min: 0.0,
            max: 0.0,
            stdev: 0.0,
            cv_pct: 0.0,
        };
    }
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let stdev = if v.len() > 1 {
        (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
    } else {
        0.0
    };
    let cv_pct = if mean > 0.0 {
        stdev / mean * 100.0
    } else {
        0.0
    };
    Spread {
        min,
        max,
        stdev,
        cv_pct,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_is_exact_and_roundtrips() {
        let mut a = RunStats::default();
        let mut b = RunStats::default();
        for v in 1..=1000u64 {
            a.latency.record(v).unwrap();
            b.latency.record(v * 1000).unwrap();
        }
        a.counters.requests = 1002;
        a.counters.ok = 1000;
        a.counters.error(ErrorKind::Timeout);
        a.counters.error(ErrorKind::Reset);
        b.counters.requests = 1000;
        b.counters.ok = 1000;
        let bytes = b.histogram_bytes().unwrap();
        let b2 = RunStats {
            counters: b.counters,
            latency: RunStats::histogram_from_bytes(&bytes).unwrap(),
        };
        assert_eq!(b2.latency, b.latency);
        let mut m = RunStats::default();
        m.merge(&a).unwrap();
        m.merge(&b2).unwrap();
        assert_eq!(m.latency.len(), 2000);
        assert_eq!(m.counters.requests, 2002);
        assert_eq!(
            m.counters.ok + m.counters.total_errors(),
            m.counters.requests
        );
        let mut direct = new_histogram();
        direct.add(&a.latency).unwrap();
        direct.add(&b.latency).unwrap();
        assert_eq!(
            direct.value_at_quantile(0.99),
            m.latency.value_at_quantile(0.99)
        );
        let s = m.summarize(1, 10, 2.0);
        assert_eq!(s.requests_per_sec, 1000.0);
        assert_eq!(s.errors["timeout"], 1);
        assert_eq!(s.errors.len(), 7);
    }

    #[test]
    fn median_and_spread() {
        let mk = |rps: f64| {
            let mut s = RunStats::default().summarize(1, 1, 1.0);
            s.requests_per_sec = rps;
            s
        };
        let runs = vec![mk(100.0), mk(300.0), mk(200.0)];
        assert_eq!(median(&runs).requests_per_sec, 200.0);
        let sp = spread(&runs);
        assert_eq!((sp.min, sp.max), (100.0, 300.0));
        assert!((sp.stdev - 100.0).abs() < 1e-9);
    }

    #[test]
    fn io_error_classification() {
        use std::io::Error;
        assert_eq!(
            ErrorKind::from_io(&Error::from(io::ErrorKind::ConnectionRefused)),
            ErrorKind::Refused
        );
        assert_eq!(
            ErrorKind::from_io(&Error::from_raw_os_error(libc::ECONNRESET)),
            ErrorKind::Reset
        );
        assert_eq!(
            ErrorKind::from_io(&Error::from_raw_os_error(libc::EPIPE)),
            ErrorKind::Reset
        );
        assert_eq!(
            ErrorKind::from_io(&Error::from_raw_os_error(libc::EADDRNOTAVAIL)),
            ErrorKind::Other
        );
    }
}
