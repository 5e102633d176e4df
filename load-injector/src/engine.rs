//! The closed-loop engine: virtual clients as state machines on mio, many per
//! thread, one mio `Poll` per thread.
//!
//! A virtual client loops: (connect if it has no connection) -> write one GET ->
//! read the whole response -> think -> next request. After `requests_per_conn`
//! requests (the last one carries `Connection: close`) or when the server does
//! not keep the connection alive, it closes and reconnects.
//!
//! Timing and accounting rules:
//! 1. The *intended* send time of a request is when the previous one ended
//!    (response complete or error) plus the think time (plus the error backoff
//!    after a connection-level error). Latency is measured from it, so a slow
//!    connect or a full socket buffer is charged to the request, not hidden.
//! 2. A request is *measured* when its intended time lies in
//!    `[measure_start, end)`. Measured requests are followed to their end even
//!    after `end` (bounded by the timeout), so `requests == ok + errors`
//!    exactly. Warm-up requests (intended before `measure_start`) are never
//!    counted, whenever they finish.
//! 3. No request is intended at or after `end`: clients go quiet, and the thread
//!    returns once no measured request is in flight.
//! 4. Timeouts are found by scanning the thread's clients every
//!    `SCAN_INTERVAL` (or a tenth of the timeout if shorter): O(clients) per
//!    scan, nothing per request.
//! 5. Readiness is edge-triggered (mio): a client reads until `WouldBlock`,
//!    or until a short read once the socket is drained, since any later data
//!    raises a new event; after the poll reported the peer's close it reads
//!    until 0, because a FIN that came with the data raises no further event.
//!    A readiness seen while the client is busy writing is remembered in
//!    `readable` and used when it turns to reading.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use rand::rngs::SmallRng;
use rand::SeedableRng;

use crate::http::{Response, ResponseParser};
use crate::plan::{PathPicker, Plan};
use crate::stats::{ErrorKind, RunStats, MAX_LATENCY_US};

/// Longest pause between two timeout scans.
const SCAN_INTERVAL: Duration = Duration::from_millis(50);
/// Size of the per-thread read buffer.
const READ_BUF: usize = 64 * 1024;
/// File descriptors kept free beyond one per client.
const FD_RESERVE: u64 = 64;
/// Most readiness events taken from one poll.
const EVENTS: usize = 1024;

/// The time frame of one run, shared by every thread (and, through the master's
/// start signal, by every slave).
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// When the clients start (warm-up begins).
    pub start: Instant,
    /// When measurement begins (end of warm-up).
    pub measure_start: Instant,
    /// When measurement ends: no request is intended from here on.
    pub end: Instant,
}

impl Window {
    /// A window starting at `start` with the given warm-up and measured seconds.
    pub fn new(start: Instant, warmup_s: f64, duration_s: f64) -> Window {
        let measure_start = start + Duration::from_secs_f64(warmup_s);
        Window {
            start,
            measure_start,
            end: measure_start + Duration::from_secs_f64(duration_s),
        }
    }
}

/// Counters readable while a run is going (progress display). Every response
/// and error is counted, warm-up included.
#[derive(Debug, Default)]
pub struct Live {
    /// Complete responses.
    pub responses: AtomicU64,
    /// Failed requests.
    pub errors: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting to send the next request at the given intended time.
    Idle(Instant),
    /// Non-blocking connect in progress.
    Connecting,
    /// Request partly written.
    Writing,
    /// Waiting for / reading the response.
    Reading,
    /// No more requests in this window.
    Done,
}

impl State {
    fn in_flight(self) -> bool {
        matches!(self, State::Connecting | State::Writing | State::Reading)
    }
}

/// One virtual client.
struct Client {
    /// The current connection, if any.
    stream: Option<TcpStream>,
    state: State,
    /// Requests started on the current connection (the current one included).
    conn_requests: u64,
    /// Intended send time of the current request.
    intended: Instant,
    /// Whether the current request belongs to the measurement window.
    measured: bool,
    /// Index of the current request's path.
    path: usize,
    /// Whether the current request asks the server to close (last on the connection).
    close_req: bool,
    /// Bytes of the current request written.
    written: usize,
    /// Readiness seen and not yet drained (edge-triggered polling).
    readable: bool,
    /// The poll reported the peer's close (or an error) on this connection.
    peer_closed: bool,
    parser: ResponseParser,
}

/// What one step of a client's state machine ended with.
enum Step {
    /// Nothing more to do until the next event or timer.
    Wait,
    /// State changed; step again.
    Again,
    /// The request failed.
    Fail(ErrorKind),
    /// The response is complete.
    Complete(Response),
}

/// One injection thread: its clients, poll, timers and statistics.
struct Worker<'a> {
    plan: &'a Plan,
    window: Window,
    poll: Poll,
    clients: Vec<Client>,
    /// Request bytes per path, keep-alive.
    requests: Vec<Vec<u8>>,
    /// Request bytes per path with `Connection: close`.
    requests_close: Vec<Vec<u8>>,
    picker: PathPicker,
    rng: SmallRng,
    /// Idle clients waiting for a future intended time (think time, backoff).
    wakeups: BinaryHeap<Reverse<(Instant, usize)>>,
    stats: RunStats,
    think: Duration,
    backoff: Duration,
    timeout: Duration,
    buf: Vec<u8>,
    /// Measured requests not finished yet.
    measured_in_flight: usize,
    /// Shared progress counters, fed from `unpublished` at every scan.
    live: &'a Live,
    /// Responses and errors not yet added to `live` (kept local so threads do
    /// not share a cache line per response).
    unpublished: (u64, u64),
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

impl<'a> Worker<'a> {
    fn new(
        plan: &'a Plan,
        window: Window,
        n: usize,
        seed: u64,
        live: &'a Live,
    ) -> Result<Worker<'a>> {
        let clients = (0..n)
            .map(|_| Client {
                stream: None,
                state: State::Idle(window.start),
                conn_requests: 0,
                intended: window.start,
                measured: false,
                path: 0,
                close_req: false,
                written: 0,
                readable: false,
                peer_closed: false,
                parser: ResponseParser::new(),
            })
            .collect();
        Ok(Worker {
            plan,
            window,
            poll: Poll::new().context("creating a mio poll")?,
            clients,
            requests: plan.requests(false),
            requests_close: plan.requests(true),
            picker: PathPicker::new(&plan.paths),
            rng: SmallRng::seed_from_u64(seed),
            wakeups: BinaryHeap::new(),
            stats: RunStats::default(),
            think: Duration::from_secs_f64(plan.think_time_ms / 1000.0),
            backoff: Duration::from_secs_f64(plan.error_backoff_ms / 1000.0),
            timeout: Duration::from_millis(plan.timeout_ms),
            buf: vec![0u8; READ_BUF],
            measured_in_flight: 0,
            live,
            unpublished: (0, 0),
        })
    }

    /// Starts the client's next request (intended at `at`), connecting if needed.
    fn begin(&mut self, idx: usize, at: Instant) -> Step {
        if at >= self.window.end {
            self.clients[idx].state = State::Done;
            return Step::Wait;
        }
        let path = self.picker.pick(&mut self.rng);
        let c = &mut self.clients[idx];
        c.intended = at;
        c.measured = at >= self.window.measure_start;
        c.path = path;
        c.written = 0;
        c.parser.reset();
        if c.measured {
            self.stats.counters.requests += 1;
            self.measured_in_flight += 1;
        }
        if c.stream.is_none() {
            c.conn_requests = 0;
            c.readable = false;
            c.peer_closed = false;
            // The request is in flight from here: a connect failure is its error.
            c.state = State::Connecting;
            let mut s = match TcpStream::connect(self.plan.addr) {
                Ok(s) => s,
                Err(e) => return Step::Fail(ErrorKind::from_io(&e)),
            };
            if let Err(e) = self.poll.registry().register(
                &mut s,
                Token(idx),
                Interest::READABLE | Interest::WRITABLE,
            ) {
                return Step::Fail(ErrorKind::from_io(&e));
            }
            c.stream = Some(s);
        } else {
            c.state = State::Writing;
        }
        c.conn_requests += 1;
        c.close_req = c.conn_requests >= self.plan.requests_per_conn;
        Step::Again
    }

    /// One step of the client's state machine.
    fn step(&mut self, idx: usize) -> Step {
        let c = &mut self.clients[idx];
        match c.state {
            State::Done => Step::Wait,
            State::Idle(at) => {
                // A kept-alive connection may be closed by the server while idle:
                // drop it quietly, no request was lost.
                if c.readable {
                    if let Some(s) = c.stream.as_mut() {
                        match s.read(&mut self.buf) {
                            Err(e) if would_block(&e) => c.readable = false,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Step::Again,
                            _ => {
                                c.stream = None;
                                c.readable = false;
                            }
                        }
                    }
                }
                if at <= Instant::now() {
                    self.begin(idx, at)
                } else {
                    self.wakeups.push(Reverse((at, idx)));
                    Step::Wait
                }
            }
            State::Connecting => {
                let Some(s) = c.stream.as_ref() else {
                    return Step::Fail(ErrorKind::Other);
                };
                match s.take_error() {
                    Ok(Some(e)) | Err(e) => return Step::Fail(ErrorKind::from_io(&e)),
                    Ok(None) => {}
                }
                match s.peer_addr() {
                    Ok(_) => {
                        let _ = s.set_nodelay(true);
                        if c.measured {
                            self.stats.counters.connections += 1;
                        }
                        c.state = State::Writing;
                        Step::Again
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => Step::Wait,
                    Err(e) => Step::Fail(ErrorKind::from_io(&e)),
                }
            }
            State::Writing => {
                let req = if c.close_req {
                    &self.requests_close[c.path]
                } else {
                    &self.requests[c.path]
                };
                let Some(s) = c.stream.as_mut() else {
                    return Step::Fail(ErrorKind::Other);
                };
                match s.write(&req[c.written..]) {
                    Ok(n) => {
                        c.written += n;
                        if c.written == req.len() {
                            c.state = State::Reading;
                        }
                        Step::Again
                    }
                    Err(e) if would_block(&e) => Step::Wait,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => Step::Again,
                    Err(e) => Step::Fail(ErrorKind::from_io(&e)),
                }
            }
            State::Reading => {
                if !c.readable {
                    return Step::Wait;
                }
                let Some(s) = c.stream.as_mut() else {
                    return Step::Fail(ErrorKind::Other);
                };
                match s.read(&mut self.buf) {
                    Ok(0) => match c.parser.eof() {
                        Ok(r) => {
                            c.stream = None;
                            Step::Complete(r)
                        }
                        Err(_) => Step::Fail(ErrorKind::ShortBody),
                    },
                    Ok(n) => {
                        // A short read drained the socket: with edge-triggered epoll
                        // any later data raises a new event, so skip the read that
                        // would only return WouldBlock (one syscall per request).
                        // Not when the peer already closed: its FIN may have come
                        // with the data, and only a read returning 0 tells.
                        if n < self.buf.len() && !c.peer_closed {
                            c.readable = false;
                        }
                        match c.parser.feed(&self.buf[..n]) {
                            Err(_) => Step::Fail(ErrorKind::Parse),
                            Ok(fed) => match fed.done {
                                // More bytes than the response: the server answered something
                                // it was not asked (we never pipeline).
                                Some(_) if fed.consumed < n => Step::Fail(ErrorKind::Parse),
                                Some(r) => Step::Complete(r),
                                None => Step::Again,
                            },
                        }
                    }
                    Err(e) if would_block(&e) => {
                        c.readable = false;
                        Step::Wait
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => Step::Again,
                    Err(e) => Step::Fail(ErrorKind::from_io(&e)),
                }
            }
        }
    }

    /// Runs the client's state machine until it has to wait.
    fn drive(&mut self, idx: usize) {
        loop {
            match self.step(idx) {
                Step::Wait => return,
                Step::Again => {}
                Step::Fail(kind) => self.fail(idx, kind, Instant::now()),
                Step::Complete(r) => self.complete(idx, r, Instant::now()),
            }
        }
    }

    /// Ends the current request with an error; the connection is dropped.
    fn fail(&mut self, idx: usize, kind: ErrorKind, now: Instant) {
        let c = &mut self.clients[idx];
        if c.state.in_flight() && c.measured {
            self.stats.counters.error(kind);
            self.stats.counters.bytes += c.parser.received();
            self.measured_in_flight -= 1;
        }
        self.unpublished.1 += 1;
        c.stream = None;
        c.readable = false;
        c.conn_requests = 0;
        c.parser.reset();
        c.state = State::Idle(now + self.think + self.backoff);
    }

    /// Ends the current request with a complete response.
    fn complete(&mut self, idx: usize, r: Response, now: Instant) {
        let c = &mut self.clients[idx];
        if c.measured {
            let counters = &mut self.stats.counters;
            counters.bytes += r.wire_len;
            if self.plan.status_ok(r.status) {
                counters.ok += 1;
                let us = (now.saturating_duration_since(c.intended).as_micros() as u64)
                    .clamp(1, MAX_LATENCY_US);
                self.stats
                    .latency
                    .record(us)
                    .expect("latency within histogram bounds");
            } else {
                counters.error(ErrorKind::BadStatus);
            }
            self.measured_in_flight -= 1;
        }
        self.unpublished.0 += 1;
        if !r.keep_alive || c.close_req {
            c.stream = None;
            c.readable = false;
            c.conn_requests = 0;
        }
        c.parser.reset();
        c.state = State::Idle(now + self.think);
    }

    fn publish(&mut self) {
        let (r, e) = std::mem::take(&mut self.unpublished);
        self.live.responses.fetch_add(r, Ordering::Relaxed);
        self.live.errors.fetch_add(e, Ordering::Relaxed);
    }

    fn scan_timeouts(&mut self, now: Instant) {
        self.publish();
        for idx in 0..self.clients.len() {
            let c = &self.clients[idx];
            if c.state.in_flight() && now >= c.intended + self.timeout {
                self.fail(idx, ErrorKind::Timeout, now);
                self.drive(idx);
            }
        }
    }

    fn run(mut self, stop: &AtomicBool) -> Result<RunStats> {
        let mut events = Events::with_capacity(EVENTS);
        let scan_every = SCAN_INTERVAL
            .min(self.timeout / 10)
            .max(Duration::from_millis(1));
        // Requests still in flight this long after the end are given up as timeouts
        // (the scan normally gets them first).
        let hard_end = self.window.end + self.timeout + Duration::from_secs(1);
        let now = Instant::now();
        if self.window.start > now {
            std::thread::sleep(self.window.start - now);
        }
        let cpu_start = thread_cpu_us();
        for idx in 0..self.clients.len() {
            self.drive(idx);
        }
        let mut next_scan = Instant::now() + scan_every;
        loop {
            let now = Instant::now();
            if (now >= self.window.end && self.measured_in_flight == 0)
                || now >= hard_end
                || stop.load(Ordering::Relaxed)
            {
                break;
            }
            while let Some(&Reverse((at, idx))) = self.wakeups.peek() {
                if at > now {
                    break;
                }
                self.wakeups.pop();
                if self.clients[idx].state == State::Idle(at) {
                    self.drive(idx);
                }
            }
            if now >= next_scan {
                self.scan_timeouts(now);
                next_scan = now + scan_every;
            }
            let mut wait = next_scan.saturating_duration_since(now);
            if let Some(&Reverse((at, _))) = self.wakeups.peek() {
                wait = wait.min(at.saturating_duration_since(now));
            }
            if now < self.window.end {
                wait = wait.min(self.window.end - now);
            }
            if let Err(e) = self.poll.poll(&mut events, Some(wait)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e).context("mio poll");
            }
            for ev in events.iter() {
                let idx = ev.token().0;
                let c = &mut self.clients[idx];
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    c.readable = true;
                }
                if ev.is_read_closed() || ev.is_error() {
                    c.peer_closed = true;
                }
                self.drive(idx);
            }
        }
        // Whatever is still in flight (only possible at hard_end or on a stop) ends
        // as a timeout, keeping requests == ok + errors.
        let now = Instant::now();
        for idx in 0..self.clients.len() {
            if self.clients[idx].state.in_flight() {
                self.fail(idx, ErrorKind::Timeout, now);
            }
        }
        self.publish();
        self.stats.counters.cpu_us = thread_cpu_us().saturating_sub(cpu_start);
        Ok(self.stats)
    }
}

/// Runs `clients` virtual clients over `window` on `plan.threads` threads
/// (never more threads than clients) and returns the merged statistics.
/// `stop` aborts the run early (its figures are then partial).
pub fn run_window(
    plan: &Plan,
    clients: usize,
    window: Window,
    live: &Live,
    stop: &AtomicBool,
) -> Result<RunStats> {
    if let Ok(limit) = edge::limits::raise_nofile() {
        // One descriptor per client, plus polls, wakers and stdio.
        if clients as u64 + FD_RESERVE > limit {
            anyhow::bail!(
                "{clients} clients need about {} open files but the limit is {limit}: raise it (ulimit -n) or use fewer clients per host",
                clients as u64 + FD_RESERVE
            );
        }
    }
    let threads = if plan.threads == 0 {
        edge::env::available_cores()
    } else {
        plan.threads
    };
    let threads = threads.min(clients).max(1);
    let seed_base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let results: Vec<Result<RunStats>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let n = clients / threads + usize::from(t < clients % threads);
                std::thread::Builder::new()
                    .name(format!("inject-{t}"))
                    .spawn_scoped(s, move || {
                        let w = Worker::new(
                            plan,
                            window,
                            n,
                            seed_base ^ (t as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                            live,
                        )?;
                        w.run(stop)
                    })
                    .expect("spawning an injection thread")
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("an injection thread panicked")))
            })
            .collect()
    });
    let mut total = RunStats::default();
    for r in results {
        total.merge(&r?)?;
    }
    Ok(total)
}

/// CPU time (user + system) used so far by the calling thread, in microseconds.
fn thread_cpu_us() -> u64 {
    edge::rusage::cpu_time(edge::rusage::Who::Thread).as_micros() as u64
}
