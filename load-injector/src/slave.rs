//! A slave: waits on its control port for a master's plan, runs each run it is
//! told to start, and sends back raw counters and the V2-encoded histogram.
//! One master at a time; after a session ends, the next master may connect.

use std::net::{TcpListener, TcpStream};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::control::{read_msg, write_msg, Msg, PROTOCOL_VERSION};
use crate::engine::{run_window, Live, Window};
use crate::plan::Plan;
use crate::stats::RunStats;

/// How long a master may take to send its plan once connected.
const PLAN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves masters on `listener`, one session after the other, forever or for
/// `max_sessions` sessions. A failed session is logged and the slave goes on.
pub fn serve(listener: TcpListener, max_sessions: Option<usize>) -> Result<()> {
    let mut served = 0usize;
    while max_sessions.map_or(true, |m| served < m) {
        let (stream, peer) = match listener.accept() {
            Ok(x) => x,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("accepting a master"),
        };
        served += 1;
        eprintln!("slave: master {peer} connected");
        match session(stream) {
            Ok(()) => eprintln!("slave: session with {peer} ended"),
            Err(e) => eprintln!("slave: session with {peer} failed: {e:#}"),
        }
    }
    Ok(())
}

/// One master's session.
pub fn session(mut stream: TcpStream) -> Result<()> {
    stream.set_nodelay(true).ok();
    stream.set_read_timeout(Some(PLAN_TIMEOUT)).ok();
    let plan: Plan = match read_msg(&mut stream)? {
        (Msg::Plan { version, plan }, _) => {
            if version != PROTOCOL_VERSION {
                let message = format!("protocol version {version} not supported (this slave speaks {PROTOCOL_VERSION})");
                write_msg(
                    &mut stream,
                    &Msg::Error {
                        message: message.clone(),
                    },
                    &[],
                )?;
                bail!(message);
            }
            if let Err(e) = plan.validate() {
                write_msg(
                    &mut stream,
                    &Msg::Error {
                        message: format!("invalid plan: {e:#}"),
                    },
                    &[],
                )?;
                return Err(e);
            }
            plan
        }
        (other, _) => bail!("expected a plan, got {other:?}"),
    };
    write_msg(
        &mut stream,
        &Msg::Ready {
            env: Box::new(crate::environment()),
        },
        &[],
    )?;
    stream.set_read_timeout(None).ok();
    let stop = AtomicBool::new(false);
    loop {
        let msg = match read_msg(&mut stream) {
            Ok((m, _)) => m,
            // The master went away between runs: the session is over.
            Err(_) => return Ok(()),
        };
        match msg {
            Msg::Ping { seq } => write_msg(&mut stream, &Msg::Pong { seq }, &[])?,
            Msg::Start {
                run,
                clients,
                delay_us,
            } => {
                let start = Instant::now() + Duration::from_micros(delay_us);
                eprintln!(
                    "slave: run {run}: {clients} clients against {}",
                    plan.target
                );
                let live = Live::default();
                let window = Window::new(start, plan.warmup_s, plan.duration_s);
                match run_window(&plan, clients, window, &live, &stop)
                    .and_then(|s: RunStats| Ok((s.histogram_bytes()?, s)))
                {
                    Ok((hist, stats)) => {
                        write_msg(
                            &mut stream,
                            &Msg::Result {
                                run,
                                counters: stats.counters,
                            },
                            &hist,
                        )?;
                    }
                    Err(e) => write_msg(
                        &mut stream,
                        &Msg::Error {
                            message: format!("run {run} failed: {e:#}"),
                        },
                        &[],
                    )?,
                }
            }
            Msg::Bye => return Ok(()),
            other => bail!("unexpected message {other:?}"),
        }
    }
}
