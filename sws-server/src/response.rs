//! Prebuilt responses: a head with a fixed slot for the `Date` value, and an optional shared
//! body. Also the error responses (400, 404, 405, 408, 414, 431, 503).
//!
//! Invariants:
//! * `head[date_at..date_at + DATE_LEN]` is the Date value; everything else in the head is
//!   final. Writing a response copies the head and patches the slot (see `out`), so the
//!   prebuilt bytes are immutable and shared by every worker without locks.
//! * `Content-Length` always equals the GET body length, also in HEAD variants (whose `body`
//!   is `None`).
//! * Every error response except 404 carries `Connection: close`: after a malformed request
//!   we cannot know where the next one starts. 404 answers a well-formed request, so it keeps
//!   the connection alive when the client asked for that.

use std::sync::Arc;

use crate::date::DATE_LEN;
use crate::http::{HttpError, Method};

/// The `Server` header value.
pub const SERVER: &str = "sws";

/// One fully built response, minus the Date value.
#[derive(Clone, Debug)]
pub struct Prebuilt {
    /// Status line and headers, ending with the blank line.
    pub head: Box<[u8]>,
    /// Offset of the Date value in `head`.
    pub date_at: usize,
    /// The body, for GET; `None` for HEAD.
    pub body: Option<Arc<[u8]>>,
    /// Whether the connection closes after this response.
    pub close: bool,
    /// The status code, for statistics.
    pub status: u16,
}

impl Prebuilt {
    /// Builds a response. `extra` holds additional header lines, each ending in CRLF.
    pub fn build(
        status: u16,
        content_type: &str,
        body: &Arc<[u8]>,
        method: Method,
        close: bool,
        extra: &str,
    ) -> Prebuilt {
        let mut head = Vec::with_capacity(192 + extra.len());
        head.extend_from_slice(
            format!(
                "HTTP/1.1 {status} {}\r\nServer: {SERVER}\r\nDate: ",
                reason(status)
            )
            .as_bytes(),
        );
        let date_at = head.len();
        head.extend_from_slice(&[b'-'; DATE_LEN]);
        head.extend_from_slice(
            format!(
                "\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}Connection: {}\r\n\r\n",
                body.len(),
                if close { "close" } else { "keep-alive" }
            )
            .as_bytes(),
        );
        Prebuilt {
            head: head.into_boxed_slice(),
            date_at,
            body: (method == Method::Get).then(|| body.clone()),
            close,
            status,
        }
    }

    /// Length in bytes once written (head plus body).
    pub fn len(&self) -> usize {
        self.head.len() + self.body.as_ref().map_or(0, |b| b.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Four variants of one resource: {GET, HEAD} x {keep-alive, close}.
#[derive(Clone, Debug)]
pub struct Variants {
    variants: [Prebuilt; 4],
}

impl Variants {
    pub fn build(status: u16, content_type: &str, body: Arc<[u8]>, extra: &str) -> Variants {
        let b = |m, close| Prebuilt::build(status, content_type, &body, m, close, extra);
        Variants {
            variants: [
                b(Method::Get, false),
                b(Method::Get, true),
                b(Method::Head, false),
                b(Method::Head, true),
            ],
        }
    }

    pub fn get(&self, method: Method, keep_alive: bool) -> &Prebuilt {
        let i = match method {
            Method::Get => 0,
            Method::Head => 2,
        } + usize::from(!keep_alive);
        &self.variants[i]
    }
}

/// Every error SWS can answer with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    BadRequest,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    UriTooLong,
    HeadersTooLarge,
    ServiceUnavailable,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::BadRequest,
        ErrorKind::NotFound,
        ErrorKind::MethodNotAllowed,
        ErrorKind::RequestTimeout,
        ErrorKind::UriTooLong,
        ErrorKind::HeadersTooLarge,
        ErrorKind::ServiceUnavailable,
    ];

    pub fn status(self) -> u16 {
        match self {
            ErrorKind::BadRequest => 400,
            ErrorKind::NotFound => 404,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::RequestTimeout => 408,
            ErrorKind::UriTooLong => 414,
            ErrorKind::HeadersTooLarge => 431,
            ErrorKind::ServiceUnavailable => 503,
        }
    }

    /// Index in [`ErrorKind::ALL`], for counter arrays.
    pub fn index(self) -> usize {
        ErrorKind::ALL.iter().position(|&k| k == self).unwrap_or(0)
    }

    /// A short stable name, used as the key in the statistics JSON.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "bad_request_400",
            ErrorKind::NotFound => "not_found_404",
            ErrorKind::MethodNotAllowed => "method_not_allowed_405",
            ErrorKind::RequestTimeout => "request_timeout_408",
            ErrorKind::UriTooLong => "uri_too_long_414",
            ErrorKind::HeadersTooLarge => "headers_too_large_431",
            ErrorKind::ServiceUnavailable => "service_unavailable_503",
        }
    }
}

impl From<HttpError> for ErrorKind {
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::BadRequest => ErrorKind::BadRequest,
            HttpError::MethodNotAllowed => ErrorKind::MethodNotAllowed,
            HttpError::UriTooLong => ErrorKind::UriTooLong,
            HttpError::HeadersTooLarge => ErrorKind::HeadersTooLarge,
        }
    }
}

/// All error responses, built once.
#[derive(Clone, Debug)]
pub struct ErrorResponses {
    by_kind: Vec<Variants>,
}

impl Default for ErrorResponses {
    fn default() -> Self {
        Self::new()
    }
}

impl ErrorResponses {
    pub fn new() -> ErrorResponses {
        let by_kind = ErrorKind::ALL
            .iter()
            .map(|&k| {
                let status = k.status();
                let body: Arc<[u8]> = format!(
                    "<html><head><title>{status} {r}</title></head><body><h1>{status} {r}</h1></body></html>\n",
                    r = reason(status)
                )
                .into_bytes()
                .into();
                let extra = if k == ErrorKind::MethodNotAllowed { "Allow: GET, HEAD\r\n" } else { "" };
                Variants::build(status, "text/html", body, extra)
            })
            .collect();
        ErrorResponses { by_kind }
    }

    /// The response for `kind`. Only 404 honours `keep_alive`; the others always close.
    /// Unknown methods and unparseable requests are answered as GET (with a body).
    pub fn get(&self, kind: ErrorKind, method: Method, keep_alive: bool) -> &Prebuilt {
        self.by_kind[kind.index()].get(method, keep_alive && kind == ErrorKind::NotFound)
    }
}

/// The reason phrase of the statuses SWS sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(p: &Prebuilt) -> String {
        String::from_utf8(p.head.to_vec()).unwrap()
    }

    #[test]
    fn variants_and_headers() {
        let body: Arc<[u8]> = Arc::from(&b"hello"[..]);
        let v = Variants::build(200, "text/plain", body, "");
        let g = v.get(Method::Get, true);
        assert!(text(g).starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(text(g).contains("Content-Length: 5\r\n"));
        assert!(text(g).contains("Content-Type: text/plain\r\n"));
        assert!(text(g).contains("Connection: keep-alive\r\n"));
        assert!(text(g).ends_with("\r\n\r\n"));
        assert_eq!(g.body.as_deref(), Some(&b"hello"[..]));
        assert_eq!(&g.head[g.date_at - 6..g.date_at], b"Date: ");
        let h = v.get(Method::Head, false);
        assert!(h.body.is_none());
        assert!(h.close);
        assert!(text(h).contains("Content-Length: 5\r\n"));
        assert!(text(h).contains("Connection: close\r\n"));
    }

    #[test]
    fn errors_close_except_404() {
        let e = ErrorResponses::new();
        for k in ErrorKind::ALL {
            let r = e.get(k, Method::Get, true);
            assert_eq!(r.status, k.status());
            assert!(text(r).starts_with(&format!("HTTP/1.1 {} ", k.status())));
            assert_eq!(r.close, k != ErrorKind::NotFound, "{k:?}");
        }
        assert!(text(e.get(ErrorKind::MethodNotAllowed, Method::Get, true))
            .contains("Allow: GET, HEAD\r\n"));
        assert!(e
            .get(ErrorKind::NotFound, Method::Head, true)
            .body
            .is_none());
    }
}
