//! SWS: the nine-handler static web server of the Mely paper (Gaud et al., ICDCS 2010,
//! section V-C-1, Figure 6), on the colored runtime, colored or N-copy.
//!
//! Modules, one concept each:
//! * [`http`]: request parsing (httparse), pipelining, limits -> 400/405/414/431;
//! * [`path`]: request target -> cache key, and the document root that cannot be escaped;
//! * [`date`]: the Date header value, refreshed once a second;
//! * [`response`]: prebuilt responses and the error responses;
//! * [`cache`]: every file under the root, prebuilt at start-up;
//! * [`out`]: a connection's pending output with partial writes;
//! * [`server`]: the nine handlers on the colored runtime;
//! * [`stats`]: the `--stats-json` document and summing N-copy children;
//! * [`cli`], [`run`], [`ncopy`]: the command line, one server process, the N-copy parent.

pub mod cache;
pub mod cli;
pub mod date;
pub mod http;
pub mod ncopy;
pub mod out;
pub mod path;
pub mod response;
pub mod run;
pub mod server;
pub mod stats;
