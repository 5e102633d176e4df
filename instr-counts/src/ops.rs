//! The measured operations: each is the real code of one single-threaded path, run `iters`
//! times after a setup that does not depend on `iters`. Instructions per operation are then the
//! difference between two runs of different lengths divided by the difference in `iters`, so
//! the setup (process start, runtime construction, key schedule) cancels out.
//!
//! Invariant: an operation's loop body does the same work on every iteration (no growing
//! queue, no counter wrap within `u32::MAX` iterations), so the difference is linear in
//! `iters`. Each body checks its result (an event that ran, a request parsed, a frame that
//! round-tripped, a steal that moved a color), so a broken path fails instead of counting
//! nothing.
//!
//! Dispatch is measured on the mely queues only: the libasync design pops one event per
//! `Model::run_batch`, and each call builds a worker's state (about 11 K instructions on
//! 2026-12-01, rustc 1.95), which would swamp the event's own cost.

use anyhow::{bail, ensure, Context, Result};
use colored_runtime::model::Model;
use colored_runtime::{Color, HandlerSpec, QueueKind, RuntimeConfig, StealPolicy};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

/// One measured operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Op {
    /// Name on the command line and in the JSON (`instr/<name>` is its experiment).
    pub name: &'static str,
    /// What one iteration does (printed in the JSON and the report).
    pub what: &'static str,
    /// Default iterations of the shorter run (the longer runs twice as many).
    pub iters: u64,
    /// Operations per iteration (the count is divided by it).
    pub per_iter: u64,
}

/// Every operation, in the order they are measured.
pub const OPS: &[Op] = &[
    Op {
        name: "dispatch-mely",
        what: "post one event of a color to a 1-worker mely runtime and run it: Model::post of 100 events, then Model::run_batch (batch 100) until they ran; per event, including its share of the worker state each Model::run_batch call builds",
        iters: 100,
        per_iter: DISPATCH_BATCH,
    },
    Op {
        name: "http-parse",
        what: "sws_server::http::parse of the injector's keep-alive GET (70 bytes, 2 headers)",
        iters: 5000,
        per_iter: 1,
    },
    Op {
        name: "sfs-seal-open-64",
        what: "seal and open one SFS frame with a 64-byte body (ChaCha20-Poly1305, counter nonce)",
        iters: 2000,
        per_iter: 1,
    },
    Op {
        name: "sfs-seal-open-128k",
        what: "seal and open one SFS frame with a 128 KiB body (sfs-bench's READ size)",
        iters: 20,
        per_iter: 1,
    },
    Op {
        name: "mely-steal-and-place",
        what: "one time-left steal of one color by worker 1 from core 0 (mely queues, 8 events of each of two colors queued; Model::steal: core set, locks, choice, O(1) move, remap), then Handle::place of the color back to core 0",
        iters: 2000,
        per_iter: 1,
    },
    Op {
        name: "mely-place-twice",
        what: "Handle::place of a color with 8 queued events from core 0 to core 1 and back (mely queues)",
        iters: 2000,
        per_iter: 1,
    },
];

/// The operation called `name`.
pub fn op(name: &str) -> Result<&'static Op> {
    OPS.iter().find(|o| o.name == name).with_context(|| {
        let names: Vec<&str> = OPS.iter().map(|o| o.name).collect();
        format!("unknown operation {name:?} (known: {})", names.join(", "))
    })
}

/// The measured loop: `body` run `iters` times. Never inlined, so callgrind can zero its
/// counters on entry ([`MEASURED`]): what ran before (process start, setup) is not counted.
#[inline(never)]
fn measured(iters: u64, mut body: impl FnMut() -> Result<()>) -> Result<()> {
    for _ in 0..iters {
        body()?;
    }
    Ok(())
}

/// The symbol (callgrind pattern) of [`measured`], for `--zero-before`.
pub const MEASURED: &str = "instr_counts::ops::measured*";

/// Run `op` `iters` times (the body measured under callgrind).
pub fn run(op: &Op, iters: u64) -> Result<()> {
    // The runtime calibrates its cycle counter once per process with a 20 ms spin: a number of
    // instructions that varies run to run. Done here, before the measured loop.
    colored_runtime::tsc::cycles_per_sec();
    match op.name {
        "dispatch-mely" => dispatch(QueueKind::Mely, iters),
        "http-parse" => http_parse(iters),
        "sfs-seal-open-64" => seal_open(64, iters),
        "sfs-seal-open-128k" => seal_open(128 * 1024, iters),
        "mely-steal-and-place" => mely_steal(iters, true),
        "mely-place-twice" => mely_steal(iters, false),
        other => bail!("operation {other} has no body"),
    }
}

/// Events posted, then run by one batch, per dispatch iteration.
const DISPATCH_BATCH: u64 = 100;

fn dispatch(queue: QueueKind, iters: u64) -> Result<()> {
    let m = Model::new(RuntimeConfig {
        workers: 1,
        queue,
        pin: false,
        batch: DISPATCH_BATCH as usize,
        ..Default::default()
    })
    .context("1-worker model")?;
    let h = m.register("empty");
    let done: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
    measured(iters, || {
        for _ in 0..DISPATCH_BATCH {
            m.post(Color(1), h, move |_| {
                done.fetch_add(1, Ordering::Relaxed);
            })
            .context("posting to the model")?;
        }
        ensure!(m.run_batch(0), "the posted events did not run");
        while m.run_batch(0) {}
        Ok(())
    })?;
    ensure!(
        done.load(Ordering::Relaxed) == iters * DISPATCH_BATCH,
        "events lost"
    );
    Ok(())
}

/// The request the load injector sends (see load-injector's plan), for the 1 KB file.
pub const REQUEST: &[u8] =
    b"GET /1k.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: load-injector/0.1.0\r\n\r\n";

fn http_parse(iters: u64) -> Result<()> {
    use sws_server::http::{parse, Limits, Parse};
    let limits = Limits::default();
    measured(iters, || match parse(black_box(REQUEST), &limits) {
        Parse::Complete(r) => {
            ensure!(r.consumed == REQUEST.len() && r.keep_alive, "bad parse");
            Ok(())
        }
        other => bail!("the injector's request did not parse: {other:?}"),
    })
}

fn seal_open(body: usize, iters: u64) -> Result<()> {
    use sfs_proto::frame::LEN_BYTES;
    use sfs_proto::session::{RecvCipher, SendCipher};
    let key = [7u8; 32];
    let (mut tx, mut rx) = (SendCipher::new(&key), RecvCipher::new(&key));
    let plain: Vec<u8> = (0..body).map(|i| i as u8).collect();
    let mut frame = Vec::with_capacity(LEN_BYTES + body + 16);
    let mut received = Vec::with_capacity(body + 16);
    measured(iters, || {
        frame.clear();
        frame.extend_from_slice(&[0u8; LEN_BYTES]);
        frame.extend_from_slice(&plain);
        tx.seal_in_place(&mut frame).context("sealing")?;
        let len: [u8; 4] = frame[..LEN_BYTES].try_into().expect("4 length bytes");
        received.clear();
        received.extend_from_slice(&frame[LEN_BYTES..]);
        rx.open_in_place(&len, &mut received).context("opening")?;
        ensure!(received.len() == body, "the frame did not round-trip");
        Ok(())
    })?;
    ensure!(
        received == plain || iters == 0,
        "the frame did not round-trip"
    );
    Ok(())
}

/// Events queued per color on the victim.
const QUEUED: u32 = 8;

fn mely_steal(iters: u64, steal: bool) -> Result<()> {
    let m = Model::new(RuntimeConfig {
        workers: 2,
        queue: QueueKind::Mely,
        stealing: StealPolicy::TimeLeft,
        pin: false,
        ..Default::default()
    })
    .context("2-worker model")?;
    // Far above any steal cost, so both colors are always worth stealing.
    let h = m.register_spec(HandlerSpec::new("never-run").cost_cycles(10_000_000));
    // Colors 2 and 4 start on core 0 (the map starts at color % workers).
    let colors = [Color(2), Color(4)];
    for color in colors {
        for _ in 0..QUEUED {
            m.post(color, h, |_| {}).context("posting to the model")?;
        }
    }
    measured(iters, || {
        if steal {
            ensure!(
                m.steal(1),
                "core 0 holds two worthy colors: the steal must succeed"
            );
        } else {
            m.handle().place(colors[0], 1).context("placing")?;
        }
        for color in colors {
            if m.core_of(color) == 1 {
                m.handle().place(color, 0).context("placing back")?;
            }
        }
        Ok(())
    })?;
    ensure!(m.queued(0) == 2 * QUEUED as usize, "events lost");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_runs_and_checks_its_result() {
        for o in OPS {
            run(o, 3).unwrap_or_else(|e| panic!("{}: {e:#}", o.name));
        }
    }

    #[test]
    fn unknown_operation_is_an_error() {
        assert!(op("nope")
            .unwrap_err()
            .to_string()
            .contains("known: dispatch-mely"));
    }
}
