//! The master/slave control protocol: small framed messages over TCP.
//!
//! Frame: `u32 length` (big endian, bytes that follow), `u32 json_length`,
//! the message as JSON, then an optional binary tail (the latency histogram in
//! HdrHistogram's V2 encoding, on `Result` only).
//!
//! Conversation (one master per slave at a time):
//! ```text
//! master -> Plan{plan}              slave -> Ready{env} | Error{message}
//! repeat for every run:
//!   master -> Ping{seq}             slave -> Pong{seq}        (round-trip time)
//!   master -> Start{run, clients, delay_us}
//!                                   slave -> Result{run, counters} + histogram
//!                                            | Error{message}
//! master -> Bye
//! ```
//! `delay_us` is relative ("start this long after you read this"), corrected
//! by the master for half of each slave's measured round trip, so no clock
//! synchronisation between hosts is needed and every slave starts at the same
//! instant to within the round-trip asymmetry.

use std::io::{self, Read, Write};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::plan::Plan;
use crate::stats::Counters;
use crate::Env;

/// Version of the protocol; a mismatch is refused. 2: `Ready` carries the project's env schema
/// (`edge::env::Env`).
pub const PROTOCOL_VERSION: u32 = 2;
/// Largest frame accepted.
pub const MAX_FRAME: usize = 64 * 1024 * 1024;

/// A control message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Msg {
    /// The plan to execute (master to slave).
    Plan {
        /// [`PROTOCOL_VERSION`] of the sender.
        version: u32,
        /// The plan; `clients` and `threads` are overridden per run.
        plan: Plan,
    },
    /// The slave accepted the plan.
    Ready {
        /// The slave's environment (boxed: by far the largest message).
        env: Box<Env>,
    },
    /// Round-trip probe.
    Ping {
        /// Echoed back.
        seq: u64,
    },
    /// Answer to a probe.
    Pong {
        /// The probe's sequence number.
        seq: u64,
    },
    /// Start a run.
    Start {
        /// Run number (for the logs and the check of the answer).
        run: usize,
        /// This slave's share of virtual clients.
        clients: usize,
        /// Start this many microseconds after reading this message.
        delay_us: u64,
    },
    /// A run's raw results; the frame's tail is the V2 histogram.
    Result {
        /// The run number of the `Start` answered.
        run: usize,
        /// Counters of the measured window.
        counters: Counters,
    },
    /// The slave could not do what was asked.
    Error {
        /// Why.
        message: String,
    },
    /// End of the session.
    Bye,
}

/// Writes one frame.
pub fn write_msg(w: &mut impl Write, msg: &Msg, tail: &[u8]) -> io::Result<()> {
    let json = serde_json::to_vec(msg).map_err(io::Error::other)?;
    let len = 4 + json.len() + tail.len();
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "control frame too large",
        ));
    }
    let mut frame = Vec::with_capacity(4 + len);
    frame.extend_from_slice(&(len as u32).to_be_bytes());
    frame.extend_from_slice(&(json.len() as u32).to_be_bytes());
    frame.extend_from_slice(&json);
    frame.extend_from_slice(tail);
    w.write_all(&frame)?;
    w.flush()
}

/// Reads one frame: the message and its binary tail.
pub fn read_msg(r: &mut impl Read) -> Result<(Msg, Vec<u8>)> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)
        .context("reading a control frame header")?;
    let len = u32::from_be_bytes(len) as usize;
    if !(4..=MAX_FRAME).contains(&len) {
        bail!("bad control frame length {len}");
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)
        .context("reading a control frame body")?;
    let jlen = u32::from_be_bytes(body[..4].try_into().expect("4 bytes")) as usize;
    if jlen > len - 4 {
        bail!("bad control message length {jlen} in a frame of {len}");
    }
    let msg: Msg =
        serde_json::from_slice(&body[4..4 + jlen]).context("decoding a control message")?;
    Ok((msg, body[4 + jlen..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_garbage() {
        let mut buf = Vec::new();
        write_msg(&mut buf, &Msg::Ping { seq: 7 }, &[]).unwrap();
        write_msg(
            &mut buf,
            &Msg::Result {
                run: 2,
                counters: Counters {
                    requests: 5,
                    ok: 4,
                    ..Default::default()
                },
            },
            b"hist",
        )
        .unwrap();
        let mut r = io::Cursor::new(buf);
        assert_eq!(read_msg(&mut r).unwrap(), (Msg::Ping { seq: 7 }, vec![]));
        let (m, tail) = read_msg(&mut r).unwrap();
        assert!(matches!(m, Msg::Result { run: 2, counters } if counters.ok == 4));
        assert_eq!(tail, b"hist");
        assert!(read_msg(&mut r).is_err(), "EOF must be an error");
        let mut bad = io::Cursor::new(vec![0xff, 0xff, 0xff, 0xff]);
        assert!(read_msg(&mut bad).is_err());
        let mut bad = io::Cursor::new(vec![0, 0, 0, 6, 0, 0, 0, 9, b'{', b'}']);
        assert!(read_msg(&mut bad).is_err());
    }
}
