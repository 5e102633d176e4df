//! Incremental HTTP/1.1 response parser.
//!
//! The injector never pipelines: one request is outstanding per connection, so
//! every byte the server sends belongs to the response being parsed. The parser
//! is fed whatever `read` returned and reports when the response is complete.
//!
//! Invariants and rules:
//! - A response is complete only when its whole body was read: `Content-Length`
//!   bytes, the last chunk of a chunked body, or end-of-file for a body delimited
//!   by the connection close (HTTP/1.0 style). Anything short of that is a
//!   [`HttpError::Closed`] when the peer closes, never a success.
//! - Bytes left over after a complete response (the server answered more than it
//!   was asked) are reported by the caller as a parse error.
//! - Statuses 1xx are rejected (the injector sends only plain GETs); 204 and 304
//!   have no body whatever their headers say.

use std::fmt;

/// Largest accepted response head (status line and headers).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most headers accepted in one response.
const MAX_HEADERS: usize = 64;
/// Longest chunk-size line (hex digits, extensions) accepted.
const MAX_CHUNK_LINE: usize = 1024;

/// Why a response could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// Malformed status line, headers, chunk framing or Content-Length.
    Malformed(String),
    /// The connection closed before the response was complete.
    Closed {
        /// Bytes of this response received before the close.
        received: u64,
    },
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Malformed(m) => write!(f, "malformed response: {m}"),
            HttpError::Closed { received } => {
                write!(
                    f,
                    "connection closed after {received} bytes of the response"
                )
            }
        }
    }
}

impl std::error::Error for HttpError {}

/// A fully received response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Whether the connection may carry another request.
    pub keep_alive: bool,
    /// Body length in bytes (decoded length for chunked bodies).
    pub body_len: u64,
    /// Total bytes of the response on the wire (head, framing and body).
    pub wire_len: u64,
}

/// What [`ResponseParser::feed`] did with the bytes it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fed {
    /// How many of the given bytes belong to this response.
    pub consumed: usize,
    /// The response, once complete.
    pub done: Option<Response>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading the hex size line.
    Size,
    /// Reading chunk data, this many bytes left.
    Data(u64),
    /// Expecting the CRLF after chunk data; bytes of it seen so far.
    DataEnd(u8),
    /// Reading trailer lines after the last chunk; length of the current line.
    Trailer(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Length(u64),
    Chunked(Chunk),
    UntilClose,
    Done,
}

/// Parser for one response at a time; [`ResponseParser::reset`] readies it for
/// the next one on the same connection.
#[derive(Debug)]
pub struct ResponseParser {
    state: State,
    /// Head bytes kept across reads while the head is incomplete.
    head: Vec<u8>,
    /// Current chunk-size line.
    line: Vec<u8>,
    status: u16,
    keep_alive: bool,
    body_len: u64,
    wire_len: u64,
}

impl Default for ResponseParser {
    fn default() -> Self {
        Self::new()
    }
}

struct HeadInfo {
    head_len: usize,
    status: u16,
    keep_alive: bool,
    body: State,
}

fn malformed(m: impl Into<String>) -> HttpError {
    HttpError::Malformed(m.into())
}

/// Parses a complete head out of `buf`, or returns `None` if more bytes are needed.
fn parse_head(buf: &[u8]) -> Result<Option<HeadInfo>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > MAX_HEAD_BYTES {
                return Err(malformed("response head too large"));
            }
            return Ok(None);
        }
        Err(e) => return Err(malformed(e.to_string())),
    };
    let status = resp.code.ok_or_else(|| malformed("no status code"))?;
    let version = resp.version.unwrap_or(1);
    if (100..200).contains(&status) {
        return Err(malformed(format!("unexpected interim status {status}")));
    }
    let mut keep_alive = version >= 1;
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let s =
                std::str::from_utf8(h.value).map_err(|_| malformed("content-length not utf-8"))?;
            let n: u64 = s
                .trim()
                .parse()
                .map_err(|_| malformed(format!("bad content-length {s:?}")))?;
            if content_length.is_some_and(|c| c != n) {
                return Err(malformed("conflicting content-length headers"));
            }
            content_length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let s = String::from_utf8_lossy(h.value).to_ascii_lowercase();
            if s.split(',').map(str::trim).any(|t| t == "chunked") {
                chunked = true;
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            let s = String::from_utf8_lossy(h.value).to_ascii_lowercase();
            for t in s.split(',').map(str::trim) {
                if t == "close" {
                    keep_alive = false;
                } else if t == "keep-alive" {
                    keep_alive = true;
                }
            }
        }
    }
    let body = if status == 204 || status == 304 {
        State::Length(0)
    } else if chunked {
        State::Chunked(Chunk::Size)
    } else if let Some(n) = content_length {
        State::Length(n)
    } else {
        // No length: the body runs to the close, and the connection cannot be reused.
        keep_alive = false;
        State::UntilClose
    };
    Ok(Some(HeadInfo {
        head_len,
        status,
        keep_alive,
        body,
    }))
}

impl ResponseParser {
    /// A parser waiting for the start of a response.
    pub fn new() -> Self {
        ResponseParser {
            state: State::Head,
            head: Vec::new(),
            line: Vec::new(),
            status: 0,
            keep_alive: true,
            body_len: 0,
            wire_len: 0,
        }
    }

    /// Forget the current response (after completion or an error).
    pub fn reset(&mut self) {
        self.state = State::Head;
        self.head.clear();
        self.line.clear();
        self.status = 0;
        self.keep_alive = true;
        self.body_len = 0;
        self.wire_len = 0;
    }

    /// Bytes of the current response received so far.
    pub fn received(&self) -> u64 {
        self.wire_len + self.head.len() as u64
    }

    /// The status code, once the head was parsed.
    pub fn status(&self) -> Option<u16> {
        (self.state != State::Head).then_some(self.status)
    }

    fn finish(&mut self) -> Response {
        self.state = State::Done;
        Response {
            status: self.status,
            keep_alive: self.keep_alive,
            body_len: self.body_len,
            wire_len: self.wire_len,
        }
    }

    /// Feed bytes read from the connection.
    pub fn feed(&mut self, data: &[u8]) -> Result<Fed, HttpError> {
        let mut pos = 0usize;
        if self.state == State::Head {
            match self.feed_head(data)? {
                Some(body_start) => pos = body_start,
                None => {
                    return Ok(Fed {
                        consumed: data.len(),
                        done: None,
                    })
                }
            }
        }
        loop {
            match self.state {
                State::Head => unreachable!("head handled above"),
                State::Done => {
                    return Ok(Fed {
                        consumed: pos,
                        done: None,
                    })
                }
                State::Length(0) => {
                    return Ok(Fed {
                        consumed: pos,
                        done: Some(self.finish()),
                    })
                }
                State::Length(rem) => {
                    let take = rem.min((data.len() - pos) as u64);
                    pos += take as usize;
                    self.body_len += take;
                    self.wire_len += take;
                    self.state = State::Length(rem - take);
                    if rem - take > 0 {
                        return Ok(Fed {
                            consumed: pos,
                            done: None,
                        });
                    }
                }
                State::UntilClose => {
                    let take = (data.len() - pos) as u64;
                    self.body_len += take;
                    self.wire_len += take;
                    return Ok(Fed {
                        consumed: data.len(),
                        done: None,
                    });
                }
                State::Chunked(c) => {
                    if pos == data.len() {
                        return Ok(Fed {
                            consumed: pos,
                            done: None,
                        });
                    }
                    if let Some(done) = self.chunk_step(c, data, &mut pos)? {
                        return Ok(Fed {
                            consumed: pos,
                            done: Some(done),
                        });
                    }
                }
            }
        }
    }

    /// Adds `data` to the head being received. Once the head is complete, returns where the
    /// body starts in `data` and enters the body's state; `None` while the head is
    /// incomplete (all of `data` is kept).
    fn feed_head(&mut self, data: &[u8]) -> Result<Option<usize>, HttpError> {
        let prior = self.head.len();
        let info = if prior == 0 {
            parse_head(data)?
        } else {
            self.head.extend_from_slice(data);
            parse_head(&self.head)?
        };
        let Some(info) = info else {
            if prior == 0 {
                self.head.extend_from_slice(data);
            }
            return Ok(None);
        };
        self.head.clear();
        self.wire_len = info.head_len as u64;
        self.status = info.status;
        self.keep_alive = info.keep_alive;
        self.state = info.body;
        Ok(Some(info.head_len - prior))
    }

    /// One step of a chunked body in chunk state `c`, from `data[*pos..]` (not empty): a
    /// run of chunk data, or one byte of a size line, a chunk's CRLF or the trailer. Returns
    /// the response when the body ends.
    fn chunk_step(
        &mut self,
        c: Chunk,
        data: &[u8],
        pos: &mut usize,
    ) -> Result<Option<Response>, HttpError> {
        if let Chunk::Data(rem) = c {
            let take = rem.min((data.len() - *pos) as u64);
            *pos += take as usize;
            self.body_len += take;
            self.wire_len += take;
            self.state = State::Chunked(if rem == take {
                Chunk::DataEnd(0)
            } else {
                Chunk::Data(rem - take)
            });
            return Ok(None);
        }
        let b = data[*pos];
        *pos += 1;
        self.wire_len += 1;
        match c {
            Chunk::Data(_) => unreachable!("handled above"),
            Chunk::Size if b == b'\n' => {
                let size = self.chunk_size()?;
                self.line.clear();
                self.state = State::Chunked(if size == 0 {
                    Chunk::Trailer(0)
                } else {
                    Chunk::Data(size)
                });
            }
            Chunk::Size => {
                if self.line.len() >= MAX_CHUNK_LINE {
                    return Err(malformed("chunk size line too long"));
                }
                self.line.push(b);
            }
            Chunk::DataEnd(seen) => match (seen, b) {
                (0, b'\r') => self.state = State::Chunked(Chunk::DataEnd(1)),
                (_, b'\n') => self.state = State::Chunked(Chunk::Size),
                _ => return Err(malformed("missing CRLF after chunk data")),
            },
            Chunk::Trailer(0) if b == b'\n' => return Ok(Some(self.finish())),
            Chunk::Trailer(_) if b == b'\n' => self.state = State::Chunked(Chunk::Trailer(0)),
            Chunk::Trailer(_) if b == b'\r' => {}
            Chunk::Trailer(len) => {
                if len >= MAX_HEAD_BYTES {
                    return Err(malformed("trailer too long"));
                }
                self.state = State::Chunked(Chunk::Trailer(len + 1));
            }
        }
        Ok(None)
    }

    fn chunk_size(&self) -> Result<u64, HttpError> {
        let line =
            std::str::from_utf8(&self.line).map_err(|_| malformed("chunk size not ascii"))?;
        let hex = line.split(';').next().unwrap_or("").trim();
        if hex.is_empty() {
            return Err(malformed("empty chunk size"));
        }
        u64::from_str_radix(hex, 16).map_err(|_| malformed(format!("bad chunk size {hex:?}")))
    }

    /// The peer closed the connection (read returned 0). Completes a body
    /// delimited by the close; anything else still in progress is an error.
    pub fn eof(&mut self) -> Result<Response, HttpError> {
        match self.state {
            State::UntilClose => Ok(self.finish()),
            _ => Err(HttpError::Closed {
                received: self.received(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(
        p: &mut ResponseParser,
        data: &[u8],
        step: usize,
    ) -> Result<Option<(usize, Response)>, HttpError> {
        let mut off = 0;
        while off < data.len() {
            let end = (off + step).min(data.len());
            let fed = p.feed(&data[off..end])?;
            off += fed.consumed;
            if let Some(r) = fed.done {
                return Ok(Some((off, r)));
            }
            assert_eq!(off, end, "partial consumption without completion");
        }
        Ok(None)
    }

    #[test]
    fn content_length_any_split() {
        let msg = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello";
        for step in 1..=msg.len() {
            let mut p = ResponseParser::new();
            let (n, r) = feed_all(&mut p, msg, step).unwrap().expect("complete");
            assert_eq!(n, msg.len());
            assert_eq!(r.status, 200);
            assert_eq!(r.body_len, 5);
            assert_eq!(r.wire_len, msg.len() as u64);
            assert!(r.keep_alive);
        }
    }

    #[test]
    fn extra_bytes_are_not_consumed() {
        let msg = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokGARBAGE";
        let mut p = ResponseParser::new();
        let fed = p.feed(msg).unwrap();
        assert!(fed.done.is_some());
        assert_eq!(fed.consumed, msg.len() - 7);
    }

    #[test]
    fn short_body_is_closed_error() {
        let mut p = ResponseParser::new();
        let fed = p
            .feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
            .unwrap();
        assert!(fed.done.is_none());
        assert!(matches!(p.eof(), Err(HttpError::Closed { .. })));
        let mut p = ResponseParser::new();
        assert_eq!(p.eof(), Err(HttpError::Closed { received: 0 }));
        let mut p = ResponseParser::new();
        p.feed(b"HTTP/1.1 200 OK\r\nContent-").unwrap();
        assert!(matches!(p.eof(), Err(HttpError::Closed { received: 25 })));
    }

    #[test]
    fn chunked_any_split() {
        let msg = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\nB\r\n world!!!!!\r\n0\r\nX-T: 1\r\n\r\n";
        for step in 1..=msg.len() {
            let mut p = ResponseParser::new();
            let (n, r) = feed_all(&mut p, msg, step).unwrap().expect("complete");
            assert_eq!(n, msg.len());
            assert_eq!(r.body_len, 16);
            assert_eq!(r.wire_len, msg.len() as u64);
        }
    }

    #[test]
    fn connection_close_and_http10() {
        let mut p = ResponseParser::new();
        let r = p
            .feed(b"HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        let r = r.done.unwrap();
        assert_eq!(r.status, 404);
        assert!(!r.keep_alive);
        let mut p = ResponseParser::new();
        let fed = p.feed(b"HTTP/1.0 200 OK\r\n\r\nbody until close").unwrap();
        assert!(fed.done.is_none());
        let r = p.eof().unwrap();
        assert_eq!(r.body_len, 16);
        assert!(!r.keep_alive);
    }

    #[test]
    fn malformed_inputs() {
        for bad in [
            &b"HTTX/1.1 200 OK\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\naXY",
        ] {
            let mut p = ResponseParser::new();
            assert!(
                matches!(p.feed(bad), Err(HttpError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn no_body_statuses() {
        let mut p = ResponseParser::new();
        let r = p
            .feed(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n")
            .unwrap()
            .done
            .unwrap();
        assert_eq!(r.body_len, 0);
    }

    /// Mutated and truncated responses never panic the parser, and a complete
    /// response never claims more bytes than it was given.
    #[test]
    fn random_mutations_never_panic() {
        use rand::{rngs::SmallRng, Rng, SeedableRng};
        let seeds: [&[u8]; 3] = [
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            b"HTTP/1.0 404 Not Found\r\n\r\nbody",
        ];
        let mut rng = SmallRng::seed_from_u64(42);
        for i in 0..20_000 {
            let mut msg = seeds[i % seeds.len()].to_vec();
            for _ in 0..rng.gen_range(0..4) {
                let at = rng.gen_range(0..msg.len());
                match rng.gen_range(0..3) {
                    0 => msg[at] = rng.gen(),
                    1 => {
                        msg.remove(at);
                    }
                    _ => msg.insert(at, rng.gen()),
                }
            }
            let cut = rng.gen_range(0..=msg.len());
            let mut p = ResponseParser::new();
            let mut off = 0;
            while off < cut {
                let end = (off + rng.gen_range(1..8)).min(cut);
                match p.feed(&msg[off..end]) {
                    Err(_) => break,
                    Ok(fed) => {
                        off += fed.consumed;
                        if let Some(r) = fed.done {
                            assert!(r.wire_len as usize <= off);
                            break;
                        }
                    }
                }
            }
            let _ = p.eof();
        }
    }

    #[test]
    fn reset_reuses() {
        let mut p = ResponseParser::new();
        let msg = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx";
        for _ in 0..3 {
            assert!(p.feed(msg).unwrap().done.is_some());
            p.reset();
        }
    }
}
