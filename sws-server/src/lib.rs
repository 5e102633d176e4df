//! SWS: the nine-handler static web server of the Mely paper (Gaud et al., ICDCS 2010,
//! section V-C-1, Figure 6), on the colored runtime, colored or N-copy.
//!
//! ```text
//! sws-server --root DIR --listen ADDR [--workers N] [--runtime libasync|mely] [--stealing POLICY]
//!            [--mode colored|ncopy] [--max-clients N] [--stats-json FILE]
//! ```
//! (the full list is in [`cli`]).
//! The server prints `sws-server listening on ADDR` once it accepts connections (with
//! `--listen 127.0.0.1:0` the address carries the port chosen) and runs until SIGINT or
//! SIGTERM. With `--stats-json FILE` it then writes one JSON object: the configuration,
//! `requests_served` (200 responses), `bytes_queued`, `errors` (count per kind:
//! `bad_request_400`, `not_found_404`, `method_not_allowed_405`, `request_timeout_408`,
//! `uri_too_long_414`, `headers_too_large_431`, `service_unavailable_503`),
//! `connections_accepted`, `connections_closed`, `client_gone`, `refused_unanswered`,
//! `elapsed_secs`, and `runtime_stats`: the runtime's counters (per worker and `total`:
//! events, steals, steal cost, stolen time, lock/busy/idle cycles) and `handlers`, one entry
//! per handler with its events and cycles. In N-copy mode the parent writes the sum over its
//! children (see [`edge::stats_file::merge_children`]) plus `processes` and each child's own
//! document in `children`.
//!
//! Modules, one concept each:
//! * [`http`]: request parsing (httparse), pipelining, limits -> 400/405/414/431;
//! * [`path`]: request target -> cache key, and the document root that cannot be escaped;
//! * [`date`]: the Date header value, refreshed once a second;
//! * [`response`]: prebuilt responses and the error responses;
//! * [`cache`]: every file under the root, prebuilt at start-up;
//! * [`out`]: a connection's pending output with partial writes;
//! * [`conn`]: a connection's state machine (read, parse, write, close, timeouts), without
//!   sockets;
//! * [`counters`]: the server's per-worker counters and their sum;
//! * [`server`]: the nine handlers on the colored runtime;
//! * [`cli`], [`run`], [`ncopy`]: the command line, one server process, the N-copy parent.

pub mod cache;
pub mod cli;
pub mod conn;
pub mod counters;
pub mod date;
pub mod http;
pub mod ncopy;
pub mod out;
pub mod path;
pub mod response;
pub mod run;
pub mod server;
