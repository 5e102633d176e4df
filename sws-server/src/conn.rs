//! A SWS connection's state machine, without sockets or the runtime.
//!
//! [`Conn`] is what one connection's color owns: the input buffer, the pending output, the
//! phase. Each of the handlers that touch a connection (ReadRequest, ParseRequest,
//! WriteResponse, Close, IdleTimeout) is one method here that changes the state and returns
//! the follow-up work as a [`Next`]; `server` turns that into posted events. The stream is
//! any [`ConnStream`] (a non-blocking TCP socket in the server, an in-memory stream in the
//! tests below), and what the connection needs from the server is a [`Site`].
//!
//! Invariants:
//! 1. At most one request is between ParseRequest and WriteResponse at a time (`in_flight`):
//!    requests are answered in order, and a pipelined batch is parsed one request at a time.
//! 2. No request is parsed while more than [`OUT_HIGH_WATER`] bytes of output are unwritten,
//!    and the input buffer never grows past the longest request the limits allow (plus
//!    1 KiB): a client that pipelines without reading its answers, or sends an endless head,
//!    holds at most that much of the server's memory.
//! 3. `Phase::Done` is entered once ([`Conn::finish`]), which hands the stream out exactly
//!    once for deregistration and closing.
//! 4. A request head must arrive within the idle timeout in total, and a connection whose
//!    output makes no progress for that long is aborted.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use colored_runtime::Readiness;

use crate::cache::Cache;
use crate::counters::{self, WorkerCounters};
use crate::date;
use crate::http::{self, Method, Parse};
use crate::out::{Flush, OutQueue};
use crate::path::normalize_target;
use crate::response::{ErrorKind, ErrorResponses, Prebuilt};
use crate::server::ServerConfig;

/// Initial input buffer of a connection.
const INBUF_INITIAL: usize = 4096;
/// Stop parsing more pipelined requests while this much output is unwritten.
pub const OUT_HIGH_WATER: usize = 256 * 1024;
/// How long a connection waits for the client's FIN after our last response.
pub const LINGER: Duration = Duration::from_secs(2);

/// A connection's byte stream: non-blocking reads and writes, and a half close.
pub trait ConnStream: Read + Write {
    /// Shuts down the write side (our FIN).
    fn shutdown_write(&mut self) -> io::Result<()>;
}

impl ConnStream for mio::net::TcpStream {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

/// What a connection uses of the server: immutable after start-up, shared by all events.
pub struct Site {
    /// The configuration (limits, idle timeout).
    pub cfg: ServerConfig,
    /// Every file's prebuilt responses.
    pub cache: Cache,
    /// The prebuilt error responses.
    pub errors: ErrorResponses,
    /// One set of counters per worker.
    pub counters: Box<[WorkerCounters]>,
}

/// What the request path hands to WriteResponse.
#[derive(Clone, Copy, Debug)]
pub enum Reply {
    /// A cached file's response.
    File {
        /// Its index in the cache.
        index: u32,
        /// GET (with the body) or HEAD.
        method: Method,
        /// Keep the connection open afterwards.
        keep_alive: bool,
    },
    /// An error response.
    Error {
        /// Which one.
        kind: ErrorKind,
        /// GET (with the body) or HEAD.
        method: Method,
        /// Keep the connection open afterwards.
        keep_alive: bool,
    },
}

impl Reply {
    /// CheckInCache's answer for `key`: the file's response, or 404.
    pub fn lookup(cache: &Cache, key: &[u8], method: Method, keep_alive: bool) -> Reply {
        match cache.index_of(key) {
            Some(index) => Reply::File {
                index,
                method,
                keep_alive,
            },
            None => Reply::Error {
                kind: ErrorKind::NotFound,
                method,
                keep_alive,
            },
        }
    }
}

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Reading and answering requests.
    Open,
    /// The last response is queued (it says `Connection: close`); close once it is written.
    Draining,
    /// Our side is shut down; discarding input until the client's FIN or `LINGER`.
    Lingering {
        /// When lingering ends regardless.
        until: Instant,
    },
    /// Deregistered and closed.
    Done,
}

/// A connection's state, owned by the connection's color.
pub struct Conn<S = mio::net::TcpStream> {
    /// The socket, until [`Conn::finish`] hands it out.
    stream: Option<S>,
    /// Received bytes; grows (doubling from 4 KiB) up to the longest request allowed.
    inbuf: Vec<u8>,
    /// Unparsed input is `inbuf[start..end]`.
    start: usize,
    /// End of the received bytes in `inbuf`.
    end: usize,
    /// Responses not yet written.
    out: OutQueue,
    /// Where the connection is.
    phase: Phase,
    /// A request is between ParseRequest and WriteResponse.
    in_flight: bool,
    /// Reading stopped because the input buffer is full; WriteResponse resumes it.
    read_paused: bool,
    /// The client shut down its side.
    peer_eof: bool,
    /// Refused past `--max-clients`: answered 503 and closed.
    refused: bool,
    /// The peer vanished (reset or broken pipe); counted once at finalization.
    client_gone: bool,
    /// The last time bytes moved in either direction.
    last_activity: Instant,
    /// When the first bytes of the request being received arrived (None between requests):
    /// the whole head must arrive within the idle timeout.
    request_started: Option<Instant>,
}

/// Follow-up work computed under the connection's cell and carried out after it (posting
/// needs `&mut Ctx`, which the cell borrows).
pub struct Next<S = mio::net::TcpStream> {
    /// Post ReadRequest (reading resumes, not on a readiness event).
    pub read: bool,
    /// Post ParseRequest.
    pub parse: bool,
    /// Post WriteResponse to write what is queued.
    pub write: bool,
    /// Post WriteResponse with this reply.
    pub reply: Option<Reply>,
    /// Post CheckInCache for (cache key, method, keep-alive).
    pub check: Option<(Vec<u8>, Method, bool)>,
    /// Post Close.
    pub close: Option<CloseHow>,
    /// The connection is done: deregister and close this stream, give the client slot back.
    pub finalize: Option<S>,
    /// Arm the idle timer again after this long.
    pub rearm: Option<Duration>,
}

/// How a connection closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseHow {
    /// After our last response: shut down our side and linger for the client's FIN.
    Graceful,
    /// The client is gone or misbehaved: close now.
    Abort,
}

impl<S> Default for Next<S> {
    fn default() -> Self {
        Next {
            read: false,
            parse: false,
            write: false,
            reply: None,
            check: None,
            close: None,
            finalize: None,
            rearm: None,
        }
    }
}

impl<S: ConnStream> Conn<S> {
    /// A fresh connection; a `refused` one is answered 503 and closed (it counts as a
    /// request in flight from the start, so its input is never parsed).
    pub fn new(stream: S, refused: bool) -> Conn<S> {
        Conn {
            stream: Some(stream),
            inbuf: Vec::new(),
            start: 0,
            end: 0,
            out: OutQueue::new(),
            phase: Phase::Open,
            in_flight: refused,
            read_paused: false,
            peer_eof: false,
            refused,
            client_gone: false,
            last_activity: Instant::now(),
            request_started: None,
        }
    }

    /// Refused past `--max-clients`.
    pub fn refused(&self) -> bool {
        self.refused
    }

    /// The peer vanished (reset or broken pipe).
    pub fn client_gone(&self) -> bool {
        self.client_gone
    }

    /// The phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    fn stream(&mut self) -> Option<&mut S> {
        self.stream.as_mut()
    }

    /// ReadRequest as the reactor's readiness callback: read when the socket is readable,
    /// closed or in error (or while lingering), and write when it is writable and output is
    /// waiting.
    pub fn on_ready(&mut self, site: &Site, r: Readiness) -> Next<S> {
        if self.phase == Phase::Done {
            return Next::default();
        }
        let mut next = if r.readable
            || r.read_closed
            || r.error
            || matches!(self.phase, Phase::Lingering { .. })
        {
            self.on_readable(site, !r.read_closed && !r.error)
        } else {
            Next::default()
        };
        if r.writable && !self.out.is_empty() && next.close.is_none() && next.finalize.is_none() {
            next.write = true;
        }
        next
    }

    /// ReadRequest: read until `WouldBlock`, EOF or a full buffer.
    ///
    /// With `stop_short` (a readiness event that reported neither a closed read side nor an
    /// error), a read that fills less than the space offered also ends the loop: the socket's
    /// receive queue was empty at that moment, and any data or FIN arriving later raises a new
    /// edge-triggered readiness event (epoll reports every arrival, and `EPOLLRDHUP` the FIN). This
    /// spares the `recv` that would only return `EAGAIN`, one of the three system calls of a
    /// keep-alive request (nginx does the same with `EPOLLRDHUP`).
    pub fn on_readable(&mut self, site: &Site, stop_short: bool) -> Next<S> {
        let mut next = Next::default();
        match self.phase {
            Phase::Done => return next,
            Phase::Lingering { .. } => {
                if self.discard_input() {
                    next.finalize = self.finish();
                }
                return next;
            }
            Phase::Draining => return next, // input after the last response is ignored
            Phase::Open => {}
        }
        let max_in = site.cfg.limits.max_request_bytes() + 1024;
        let mut got = false;
        loop {
            if self.end == self.inbuf.len() {
                if self.start > 0 {
                    self.inbuf.copy_within(self.start..self.end, 0);
                    self.end -= self.start;
                    self.start = 0;
                } else if self.inbuf.len() < max_in {
                    let n = (self.inbuf.len() * 2).clamp(INBUF_INITIAL, max_in);
                    self.inbuf.resize(n, 0);
                } else {
                    self.read_paused = true;
                    break;
                }
            }
            let (end, buf) = (self.end, &mut self.inbuf);
            let Some(s) = self.stream.as_mut() else {
                return next;
            };
            let room = buf.len() - end;
            match s.read(&mut buf[end..]) {
                Ok(0) => {
                    self.peer_eof = true;
                    break;
                }
                Ok(n) => {
                    self.end += n;
                    got = true;
                    if stop_short && n < room {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    // Reset by the peer: it vanished.
                    self.client_gone = true;
                    next.close = Some(CloseHow::Abort);
                    return next;
                }
            }
        }
        if got {
            self.last_activity = Instant::now();
        }
        if (got || self.peer_eof) && !self.in_flight {
            next.parse = true;
        }
        next
    }

    /// ParseRequest: parse the next request, if one is complete and none is in flight.
    pub fn on_parse(&mut self, site: &Site) -> Next<S> {
        let mut next = Next::default();
        if self.phase != Phase::Open || self.in_flight || self.out.pending() > OUT_HIGH_WATER {
            return next;
        }
        let input = &self.inbuf[self.start..self.end];
        match http::parse(input, &site.cfg.limits) {
            Parse::Partial => {
                if self.peer_eof {
                    // The client is done sending and no complete request is left: close
                    // now, or once the queued responses are written.
                    if self.out.is_empty() {
                        next.close = Some(CloseHow::Abort);
                    } else {
                        self.phase = Phase::Draining;
                        next.write = true;
                    }
                } else if self.request_started.is_none() && self.start < self.end {
                    self.request_started = Some(Instant::now());
                }
                if self.read_paused && !self.peer_eof && !self.in_flight {
                    // Full buffer and still partial: cannot happen within the limits, but
                    // never wait forever on it.
                    self.in_flight = true;
                    next.reply = Some(Reply::Error {
                        kind: ErrorKind::BadRequest,
                        method: Method::Get,
                        keep_alive: false,
                    });
                }
            }
            Parse::Complete(req) => {
                self.in_flight = true;
                self.request_started = None;
                let target = &input[req.target.clone()];
                match normalize_target(target) {
                    Ok(key) => next.check = Some((key, req.method, req.keep_alive)),
                    Err(_) => {
                        next.reply = Some(Reply::Error {
                            kind: ErrorKind::BadRequest,
                            method: req.method,
                            keep_alive: false,
                        })
                    }
                }
                self.start += req.consumed;
                if self.start == self.end {
                    self.start = 0;
                    self.end = 0;
                }
            }
            Parse::Error(e) => {
                self.in_flight = true;
                next.reply = Some(Reply::Error {
                    kind: e.into(),
                    method: Method::Get,
                    keep_alive: false,
                });
            }
        }
        next
    }

    /// WriteResponse: queue `reply` (if any), then write until done or blocked.
    pub fn on_write(&mut self, site: &Site, reply: Option<Reply>, worker: usize) -> Next<S> {
        let mut next = Next::default();
        if matches!(self.phase, Phase::Done | Phase::Lingering { .. }) {
            return next;
        }
        if let Some(reply) = reply {
            self.in_flight = false;
            let p: &Prebuilt = match reply {
                Reply::File {
                    index,
                    method,
                    keep_alive,
                } => site.cache.variants(index).get(method, keep_alive),
                Reply::Error {
                    kind,
                    method,
                    keep_alive,
                } => site.errors.get(kind, method, keep_alive),
            };
            self.out.push(p, &date::now());
            let c = &site.counters[worker % site.counters.len()];
            counters::bump(&c.bytes, p.len() as u64);
            if let Reply::Error { kind, .. } = reply {
                counters::bump(&c.errors[kind.index()], 1);
            } else {
                counters::bump(&c.requests, 1);
            }
            if p.close {
                self.phase = Phase::Draining;
            }
        }
        let before = self.out.pending();
        let res = match self.stream.as_mut() {
            Some(s) => self.out.write_to(s),
            None => return next,
        };
        if self.out.pending() < before {
            self.last_activity = Instant::now();
        }
        match res {
            Err(_) => {
                self.client_gone = true;
                self.out.clear();
                next.close = Some(CloseHow::Abort);
            }
            Ok(Flush::Done) => {
                if self.phase == Phase::Draining {
                    next.close = Some(CloseHow::Graceful);
                } else {
                    if self.read_paused {
                        self.read_paused = false;
                        next.read = true;
                    }
                    if !self.in_flight && (self.start < self.end || self.peer_eof) {
                        next.parse = true;
                    }
                }
            }
            Ok(Flush::Blocked) => {
                // The reactor reports writability (edge-triggered) and ReadRequest posts us.
                if self.phase == Phase::Open
                    && !self.in_flight
                    && self.start < self.end
                    && self.out.pending() <= OUT_HIGH_WATER
                {
                    next.parse = true;
                }
            }
        }
        next
    }

    /// Close: graceful closes linger for the client's FIN; aborts finish at once.
    pub fn on_close(&mut self, how: CloseHow) -> Next<S> {
        let mut next = Next::default();
        match self.phase {
            Phase::Done | Phase::Lingering { .. } => return next,
            Phase::Open | Phase::Draining => {}
        }
        if how == CloseHow::Graceful && !self.peer_eof {
            if let Some(s) = self.stream() {
                let _ = s.shutdown_write();
            }
            self.phase = Phase::Lingering {
                until: Instant::now() + LINGER,
            };
            self.inbuf = Vec::new();
            self.start = 0;
            self.end = 0;
            if self.discard_input() {
                next.finalize = self.finish();
            } else {
                // One more timer ends the lingering; the idle timer chain also checks it.
                next.rearm = Some(LINGER);
            }
            return next;
        }
        next.finalize = self.finish();
        next
    }

    /// IdleTimeout: 408 for idle connections, abort for stalled ones, end of lingering.
    pub fn on_timer(&mut self, site: &Site) -> Next<S> {
        let mut next = Next::default();
        let now = Instant::now();
        match self.phase {
            Phase::Done => return next,
            Phase::Lingering { until } => {
                if now >= until {
                    next.finalize = self.finish();
                } else {
                    next.rearm = Some(until - now);
                }
                return next;
            }
            Phase::Open | Phase::Draining => {}
        }
        let timeout = site.cfg.idle_timeout;
        let idle = now.duration_since(self.last_activity);
        let waiting = self.phase == Phase::Open && !self.in_flight && self.out.is_empty();
        // A request head that trickles in (slowloris) gets the same budget in total.
        let partial_for = self.request_started.map(|t| now.duration_since(t));
        let partial_expired = waiting && partial_for.is_some_and(|d| d >= timeout);
        if idle < timeout && !partial_expired {
            let mut left = timeout - idle;
            if let (true, Some(d)) = (waiting, partial_for) {
                left = left.min(timeout - d);
            }
            next.rearm = Some(left);
            return next;
        }
        if waiting {
            // Idle (between requests or inside a partial one): answer 408 and close. If the
            // 408 itself cannot be written, the next expiry aborts.
            self.in_flight = true;
            self.last_activity = now;
            next.reply = Some(Reply::Error {
                kind: ErrorKind::RequestTimeout,
                method: Method::Get,
                keep_alive: false,
            });
            next.rearm = Some(site.cfg.idle_timeout);
        } else {
            // No progress while output is pending (a reader that stopped reading).
            next.close = Some(CloseHow::Abort);
        }
        next
    }

    /// Reads and drops input while lingering. True when the client's FIN (or an error)
    /// arrived, i.e. the socket can be closed.
    fn discard_input(&mut self) -> bool {
        let Some(s) = self.stream.as_mut() else {
            return true;
        };
        let mut buf = [0u8; 4096];
        for _ in 0..64 {
            match s.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
        false
    }

    /// Enters `Done` (once) and hands the socket out for deregistration and closing.
    pub fn finish(&mut self) -> Option<S> {
        if self.phase == Phase::Done {
            return None;
        }
        self.phase = Phase::Done;
        self.inbuf = Vec::new();
        self.out = OutQueue::new();
        self.stream.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::rc::Rc;

    use crate::http::Limits;

    /// The far end of an in-memory connection: what the client sent, what the server wrote,
    /// and how much more the "socket" accepts before it would block.
    #[derive(Default)]
    struct Wire {
        input: VecDeque<u8>,
        eof: bool,
        written: Vec<u8>,
        room: usize,
        shut_write: bool,
    }

    #[derive(Clone, Default)]
    struct Mem(Rc<RefCell<Wire>>);

    impl Read for Mem {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let mut w = self.0.borrow_mut();
            if w.input.is_empty() {
                return if w.eof {
                    Ok(0)
                } else {
                    Err(io::ErrorKind::WouldBlock.into())
                };
            }
            let n = buf.len().min(w.input.len());
            for (d, s) in buf.iter_mut().zip(w.input.drain(..n)) {
                *d = s;
            }
            Ok(n)
        }
    }

    impl Write for Mem {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut w = self.0.borrow_mut();
            if w.room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(w.room);
            w.room -= n;
            w.written.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl ConnStream for Mem {
        fn shutdown_write(&mut self) -> io::Result<()> {
            self.0.borrow_mut().shut_write = true;
            Ok(())
        }
    }

    impl Mem {
        fn send(&self, b: &[u8]) {
            self.0.borrow_mut().input.extend(b);
        }
        fn room(&self, n: usize) {
            self.0.borrow_mut().room = n;
        }
        fn written(&self) -> String {
            String::from_utf8_lossy(&self.0.borrow().written).into_owned()
        }
    }

    fn site(idle: Duration) -> Site {
        let big = vec![b'x'; 100_000];
        Site {
            cfg: ServerConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                max_clients: 10,
                idle_timeout: idle,
                limits: Limits::default(),
                reuse_port: false,
                conn_penalty: 1,
            },
            cache: Cache::from_files([
                ("/a", &b"AAAA"[..]),
                ("/b", &b"BB"[..]),
                ("/big", &big[..]),
            ]),
            errors: ErrorResponses::new(),
            counters: vec![WorkerCounters::default()].into_boxed_slice(),
        }
    }

    /// Plays CheckInCache for a `check` request: the reply WriteResponse would get.
    fn looked_up(site: &Site, next: &Next<Mem>) -> Option<Reply> {
        let (key, method, keep_alive) = next.check.clone()?;
        Some(Reply::lookup(&site.cache, &key, method, keep_alive))
    }

    const READY: Readiness = Readiness {
        readable: true,
        writable: true,
        read_closed: false,
        write_closed: false,
        error: false,
    };

    #[test]
    fn pipelined_requests_are_answered_one_at_a_time_in_order() {
        let site = site(Duration::from_secs(10));
        let m = Mem::default();
        m.room(1 << 20);
        let mut c = Conn::new(m.clone(), false);
        m.send(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(c.on_ready(&site, READY).parse);
        let mut order = Vec::new();
        for _ in 0..3 {
            let n = c.on_parse(&site);
            let reply = looked_up(&site, &n).expect("a lookup");
            order.push(n.check.unwrap().0);
            // A second parse while the request is in flight does nothing (invariant 1).
            let again = c.on_parse(&site);
            assert!(again.check.is_none() && again.reply.is_none());
            let w = c.on_write(&site, Some(reply), 0);
            assert!(w.close.is_none());
        }
        assert_eq!(order, [b"/b".to_vec(), b"/a".to_vec(), b"/nope".to_vec()]);
        let out = m.written();
        let (b, a, nf) = (
            out.find("\r\n\r\nBB").unwrap(),
            out.find("\r\n\r\nAAAA").unwrap(),
            out.find("404").unwrap(),
        );
        assert!(b < a && a < nf, "{out}");
        let stats = crate::counters::ServerStats::sum(&site.counters);
        assert_eq!(stats.requests_served, 2);
        assert_eq!(stats.errors["not_found_404"], 1);
    }

    #[test]
    fn a_reader_that_stops_reading_stops_the_parsing() {
        let site = site(Duration::from_secs(10));
        let m = Mem::default();
        let mut c = Conn::new(m.clone(), false);
        for _ in 0..20 {
            m.send(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
        }
        c.on_ready(&site, READY);
        let mut answered = 0;
        loop {
            let n = c.on_parse(&site);
            let Some(reply) = looked_up(&site, &n) else {
                break;
            };
            c.on_write(&site, Some(reply), 0);
            answered += 1;
        }
        // Each response is 100 kB and nothing is written: parsing stops just past the mark.
        assert_eq!(answered, OUT_HIGH_WATER / 100_000 + 1);
        assert!(c.out.pending() <= OUT_HIGH_WATER + 100_300);
        // The client reads again: the rest is answered.
        m.room(usize::MAX);
        let w = c.on_write(&site, None, 0);
        assert!(w.parse);
        while let Some(reply) = looked_up(&site, &c.on_parse(&site)) {
            c.on_write(&site, Some(reply), 0);
            answered += 1;
        }
        assert_eq!(answered, 20);
    }

    #[test]
    fn an_endless_head_is_bounded_and_refused() {
        let site = site(Duration::from_secs(10));
        let m = Mem::default();
        m.room(1 << 20);
        let mut c = Conn::new(m.clone(), false);
        m.send(b"GET /a HTTP/1.1\r\n");
        for i in 0..20_000 {
            m.send(format!("X-{i}: yyyyyyyyyyyyyyyy\r\n").as_bytes());
        }
        let n = c.on_ready(&site, READY);
        assert!(n.parse);
        assert!(c.inbuf.len() <= site.cfg.limits.max_request_bytes() + 1024);
        let n = c.on_parse(&site);
        let Some(Reply::Error {
            kind, keep_alive, ..
        }) = n.reply
        else {
            panic!("no error reply")
        };
        assert_eq!((kind, keep_alive), (ErrorKind::HeadersTooLarge, false));
        let w = c.on_write(&site, n.reply, 0);
        assert_eq!(w.close, Some(CloseHow::Graceful));
        assert!(m.written().starts_with("HTTP/1.1 431"));
    }

    #[test]
    fn idle_connections_get_408_then_close_gracefully_and_linger() {
        let site = site(Duration::from_millis(1));
        let m = Mem::default();
        m.room(1 << 20);
        let mut c = Conn::new(m.clone(), false);
        std::thread::sleep(Duration::from_millis(5));
        let n = c.on_timer(&site);
        assert!(matches!(
            n.reply,
            Some(Reply::Error {
                kind: ErrorKind::RequestTimeout,
                ..
            })
        ));
        let w = c.on_write(&site, n.reply, 0);
        assert_eq!(w.close, Some(CloseHow::Graceful));
        assert!(m.written().starts_with("HTTP/1.1 408"));
        let n = c.on_close(CloseHow::Graceful);
        assert!(m.0.borrow().shut_write);
        assert!(matches!(c.phase(), Phase::Lingering { .. }));
        assert!(n.finalize.is_none() && n.rearm.is_some());
        // Input while lingering is dropped; the client's FIN ends it, handing the stream out
        // once (invariant 3).
        m.send(b"late bytes");
        m.0.borrow_mut().eof = true;
        let n = c.on_ready(&site, READY);
        assert!(n.finalize.is_some());
        assert_eq!(c.phase(), Phase::Done);
        assert!(c.finish().is_none());
    }

    #[test]
    fn a_stalled_reader_is_aborted_after_the_idle_timeout() {
        let site = site(Duration::from_millis(1));
        let m = Mem::default();
        let mut c = Conn::new(m.clone(), false);
        m.send(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
        c.on_ready(&site, READY);
        let n = c.on_parse(&site);
        c.on_write(&site, looked_up(&site, &n), 0);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(c.on_timer(&site).close, Some(CloseHow::Abort));
        assert!(c.on_close(CloseHow::Abort).finalize.is_some());
    }

    #[test]
    fn a_refused_connection_is_answered_503_and_never_parsed() {
        let site = site(Duration::from_secs(10));
        let m = Mem::default();
        m.room(1 << 20);
        let mut c = Conn::new(m.clone(), true);
        assert!(c.refused());
        m.send(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
        c.on_ready(&site, READY);
        assert!(c.on_parse(&site).check.is_none());
        let w = c.on_write(
            &site,
            Some(Reply::Error {
                kind: ErrorKind::ServiceUnavailable,
                method: Method::Get,
                keep_alive: false,
            }),
            0,
        );
        assert_eq!(w.close, Some(CloseHow::Graceful));
        assert!(m.written().starts_with("HTTP/1.1 503"));
    }
}
