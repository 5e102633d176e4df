//! HTTP/1.1 request parsing (the subset SWS serves) on top of `httparse`.
//!
//! [`parse`] looks at the unconsumed bytes of one connection and returns exactly one of:
//! * [`Parse::Partial`]: no complete request yet and no limit exceeded: read more;
//! * [`Parse::Complete`]: one request, and how many bytes it used (head and any body), so the
//!   caller can drop them and call `parse` again on the rest (pipelining);
//! * [`Parse::Error`]: the request is malformed or over a limit; the error carries the status
//!   code to answer with. After an error the connection is closed: we cannot know where the
//!   next request starts.
//!
//! Invariants:
//! * `parse` never panics and never reads past the slice it is given (fuzzed in
//!   `tests/fuzz_request.rs`).
//! * A request line longer than [`Limits::max_request_line`] gives 414 as soon as that many
//!   bytes arrived without a line end; a head longer than [`Limits::max_head`] or with more
//!   than [`MAX_HEADERS`] headers gives 431. So a connection never buffers more than
//!   `max(max_request_line, max_head) + max_body` bytes of one request.
//! * Only `GET` and `HEAD` succeed; any other well-formed method gets 405.
//! * The target is origin form (`/path?query`) or absolute form (`http://host/path`, reduced
//!   to its path); anything else is a 400.
//! * HTTP/1.1 needs exactly one `Host`; `Transfer-Encoding` is refused (400) so that request
//!   smuggling through a body we do not parse is impossible; a `Content-Length` body (up to
//!   [`Limits::max_body`]) is skipped.

/// The most headers a request may carry; one more gives 431.
pub const MAX_HEADERS: usize = 64;

/// Size limits applied while parsing. Plain data, chosen once at start-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest request line (method, target, version) in bytes: past it, 414.
    pub max_request_line: usize,
    /// Longest request head (request line and headers, blank line included): past it, 431.
    pub max_head: usize,
    /// Longest body a GET or HEAD may carry (it is skipped): past it, 400.
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        // nginx's large_client_header_buffers default is 4 x 8 KiB.
        Limits {
            max_request_line: 8 * 1024,
            max_head: 16 * 1024,
            max_body: 16 * 1024,
        }
    }
}

impl Limits {
    /// The most bytes of one request the connection must be able to buffer.
    pub fn max_request_bytes(&self) -> usize {
        self.max_request_line.max(self.max_head) + self.max_body
    }
}

/// The methods SWS serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Head,
}

/// A parsed request. `target` is a range into the buffer given to [`parse`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// Byte range of the request target (origin form, starts with `/`) in the input.
    pub target: std::ops::Range<usize>,
    /// Whether the connection stays open after the response (HTTP/1.1 default, or
    /// HTTP/1.0 with `Connection: keep-alive`).
    pub keep_alive: bool,
    /// Bytes of input this request used, head and body.
    pub consumed: usize,
}

/// Why a request was refused; each maps to one status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HttpError {
    /// 400: malformed syntax, bad target, missing Host, refused framing.
    BadRequest,
    /// 405: a well-formed method other than GET and HEAD.
    MethodNotAllowed,
    /// 414: request line longer than the limit.
    UriTooLong,
    /// 431: head too large or too many headers.
    HeadersTooLarge,
}

impl HttpError {
    pub fn status(self) -> u16 {
        match self {
            HttpError::BadRequest => 400,
            HttpError::MethodNotAllowed => 405,
            HttpError::UriTooLong => 414,
            HttpError::HeadersTooLarge => 431,
        }
    }
}

/// The outcome of looking at a connection's unconsumed input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parse {
    Partial,
    Complete(Request),
    Error(HttpError),
}

/// Parses the first request in `buf`. See the module documentation for the contract.
pub fn parse(buf: &[u8], limits: &Limits) -> Parse {
    // The request line ends at the first LF (httparse also accepts a bare LF).
    let line_end = memchr_lf(buf, limits.max_request_line.saturating_add(2));
    match line_end {
        None if buf.len() > limits.max_request_line => {
            // No line end within the limit. Say 414 only if what we have looks like the start
            // of a request line; garbage is a 400.
            return Parse::Error(
                if looks_like_request_line_prefix(&buf[..limits.max_request_line]) {
                    HttpError::UriTooLong
                } else {
                    HttpError::BadRequest
                },
            );
        }
        Some(end) => {
            // `end` is the index of '\n'; the line may end in "\r\n".
            let len = if end > 0 && buf[end - 1] == b'\r' {
                end - 1
            } else {
                end
            };
            if len > limits.max_request_line {
                return Parse::Error(HttpError::UriTooLong);
            }
        }
        None => {}
    }

    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > limits.max_head {
                return Parse::Error(HttpError::HeadersTooLarge);
            }
            return Parse::Partial;
        }
        Err(httparse::Error::TooManyHeaders) => return Parse::Error(HttpError::HeadersTooLarge),
        Err(_) => return Parse::Error(HttpError::BadRequest),
    };
    if head_len > limits.max_head {
        return Parse::Error(HttpError::HeadersTooLarge);
    }

    let method = match req.method {
        Some("GET") => Method::Get,
        Some("HEAD") => Method::Head,
        // httparse only accepts token characters in the method, so this is well-formed.
        Some(_) => return Parse::Error(HttpError::MethodNotAllowed),
        None => return Parse::Error(HttpError::BadRequest),
    };
    let Some(path) = req.path else {
        return Parse::Error(HttpError::BadRequest);
    };
    let Some(path) = origin_form(path) else {
        return Parse::Error(HttpError::BadRequest);
    };
    // `path` borrows from `buf`, so its offset is a pointer difference within `buf`.
    let start = path.as_ptr() as usize - buf.as_ptr() as usize;
    let target = start..start + path.len();

    let version = req.version.unwrap_or(1);
    let mut keep_alive = version == 1;
    let mut hosts = 0usize;
    let mut content_length: Option<usize> = None;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("host") {
            hosts += 1;
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = trim(token);
                if token.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && version == 0 {
                    keep_alive = true;
                }
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Parse::Error(HttpError::BadRequest);
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let Some(n) = parse_decimal(trim(h.value)) else {
                return Parse::Error(HttpError::BadRequest);
            };
            if content_length.is_some_and(|old| old != n) {
                return Parse::Error(HttpError::BadRequest);
            }
            content_length = Some(n);
        }
    }
    if hosts > 1 || (version == 1 && hosts == 0) {
        return Parse::Error(HttpError::BadRequest);
    }
    let body = content_length.unwrap_or(0);
    if body > limits.max_body {
        return Parse::Error(HttpError::BadRequest);
    }
    let consumed = head_len + body;
    if buf.len() < consumed {
        return Parse::Partial;
    }
    Parse::Complete(Request {
        method,
        target,
        keep_alive,
        consumed,
    })
}

/// The origin-form part of a request target: the target itself when it starts with `/`, the
/// path of an absolute-form target (`http://host/path`, which HTTP/1.1 servers must accept),
/// `None` otherwise (authority form, asterisk form, an absolute URI without a path).
fn origin_form(target: &str) -> Option<&str> {
    if target.starts_with('/') {
        return Some(target);
    }
    let scheme_end = target.find("://")?;
    let scheme = &target[..scheme_end];
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return None;
    }
    let rest = &target[scheme_end + 3..];
    let slash = rest.find('/')?;
    Some(&rest[slash..])
}

/// Index of the first `\n` among the first `limit` bytes.
fn memchr_lf(buf: &[u8], limit: usize) -> Option<usize> {
    buf[..buf.len().min(limit)].iter().position(|&b| b == b'\n')
}

/// True when `buf` starts like `TOKEN SP /...` with no control characters: a request line
/// that is merely long.
fn looks_like_request_line_prefix(buf: &[u8]) -> bool {
    let Some(sp) = buf.iter().take(32).position(|&b| b == b' ') else {
        return false;
    };
    sp > 0
        && buf[..sp].iter().all(|b| b.is_ascii_alphabetic())
        && buf.get(sp + 1) == Some(&b'/')
        && buf[sp + 1..].iter().all(|&b| b >= b' ' && b != 0x7f)
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &v[start..end]
}

/// Strict decimal (digits only, at most 18 of them so it cannot overflow).
fn parse_decimal(v: &[u8]) -> Option<usize> {
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        v.iter()
            .fold(0usize, |n, &d| n * 10 + usize::from(d - b'0')),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &[u8]) -> Parse {
        parse(s, &Limits::default())
    }

    fn complete(s: &[u8]) -> Request {
        match p(s) {
            Parse::Complete(r) => r,
            other => panic!(
                "expected a request, got {other:?} for {:?}",
                String::from_utf8_lossy(s)
            ),
        }
    }

    #[test]
    fn simple_get_and_head() {
        let s = b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n";
        let r = complete(s);
        assert_eq!(r.method, Method::Get);
        assert_eq!(&s[r.target.clone()], b"/index.html");
        assert!(r.keep_alive);
        assert_eq!(r.consumed, s.len());
        let r = complete(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.method, Method::Head);
    }

    #[test]
    fn absolute_form_targets() {
        let s = b"GET http://example.com/a/b.txt?q HTTP/1.1\r\nHost: example.com\r\n\r\n";
        let r = complete(s);
        assert_eq!(&s[r.target.clone()], b"/a/b.txt?q");
        let s = b"HEAD HTTPS://example.com:8080/ HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(&s[complete(s).target], b"/");
        for bad in [
            &b"GET http://example.com HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"GET ftp://x/y HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET * HTTP/1.1\r\nHost: x\r\n\r\n",
        ] {
            assert_eq!(p(bad), Parse::Error(HttpError::BadRequest));
        }
    }

    #[test]
    fn keep_alive_rules() {
        assert!(!complete(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").keep_alive);
        assert!(!complete(b"GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(complete(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
        assert!(
            !complete(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, close\r\n\r\n").keep_alive
        );
    }

    #[test]
    fn partial_input_at_every_split() {
        let s = b"GET /a/b.txt HTTP/1.1\r\nHost: example\r\nUser-Agent: t\r\n\r\n";
        for i in 0..s.len() {
            assert_eq!(p(&s[..i]), Parse::Partial, "prefix {i}");
        }
        assert!(matches!(p(s), Parse::Complete(_)));
    }

    #[test]
    fn pipelined_requests_are_consumed_one_by_one() {
        let s = b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nHEAD /2 HTTP/1.1\r\nHost: x\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\n\r\nGET /4";
        let mut off = 0;
        let mut targets = vec![];
        loop {
            match p(&s[off..]) {
                Parse::Complete(r) => {
                    targets.push(s[off + r.target.start..off + r.target.end].to_vec());
                    off += r.consumed;
                }
                Parse::Partial => break,
                Parse::Error(e) => panic!("{e:?}"),
            }
        }
        assert_eq!(
            targets,
            vec![b"/1".to_vec(), b"/2".to_vec(), b"/3".to_vec()]
        );
        assert_eq!(&s[off..], b"GET /4");
    }

    #[test]
    fn body_is_skipped() {
        let s = b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET";
        assert_eq!(p(&s[..s.len() - 5]), Parse::Partial);
        let r = complete(s);
        assert_eq!(r.consumed, s.len() - 3);
    }

    #[test]
    fn errors() {
        use HttpError::*;
        let e = |s: &[u8]| match p(s) {
            Parse::Error(e) => e,
            other => panic!("expected an error, got {other:?}"),
        };
        assert_eq!(e(b"POST / HTTP/1.1\r\nHost: x\r\n\r\n"), MethodNotAllowed);
        assert_eq!(e(b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n"), MethodNotAllowed);
        assert_eq!(e(b"GET / HTTP/1.1\r\n\r\n"), BadRequest); // no Host
        assert_eq!(
            e(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            BadRequest
        );
        assert_eq!(e(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n"), BadRequest);
        assert_eq!(e(b"GET index.html HTTP/1.1\r\nHost: x\r\n\r\n"), BadRequest);
        assert_eq!(
            e(b"GET example.com:80 HTTP/1.1\r\nHost: x\r\n\r\n"),
            BadRequest
        );
        assert_eq!(
            e(b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"),
            BadRequest
        );
        assert_eq!(
            e(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"),
            BadRequest
        );
        assert_eq!(
            e(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            BadRequest
        );
        assert_eq!(e(b"\x00\x01\x02 garbage\r\n\r\n"), BadRequest);
        assert_eq!(
            e(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n"),
            BadRequest
        );

        let mut long = b"GET /".to_vec();
        long.extend(std::iter::repeat(b'a').take(9000));
        assert_eq!(e(&long), UriTooLong); // no line end yet, already too long
        long.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(e(&long), UriTooLong);

        let mut big = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 0..400 {
            big.extend_from_slice(format!("X-H{i}: {}\r\n", "v".repeat(40)).as_bytes());
        }
        assert_eq!(e(&big), HeadersTooLarge); // still partial, already too large
        let mut many = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 0..MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(e(&many), HeadersTooLarge);
    }

    #[test]
    fn statuses() {
        assert_eq!(HttpError::BadRequest.status(), 400);
        assert_eq!(HttpError::MethodNotAllowed.status(), 405);
        assert_eq!(HttpError::UriTooLong.status(), 414);
        assert_eq!(HttpError::HeadersTooLarge.status(), 431);
    }
}
