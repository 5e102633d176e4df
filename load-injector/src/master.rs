//! The master: sends the plan to every slave, starts them at the same
//! instant, collects each one's counters and histogram and merges them exactly.
//!
//! Rules:
//! 1. Clients are split among the slaves once, by position in `--slaves`
//!    (`clients / n`, the remainder to the first ones). A slave that fails keeps
//!    its share: the runs it misses are marked incomplete, naming it, and its
//!    share is never redistributed or averaged in.
//! 2. A slave has failed when it cannot be reached, refuses the plan, answers
//!    with an error, closes the connection, or has not answered a run by
//!    `delay + warm-up + duration + timeout + grace`. A failed slave is not
//!    used again in this experiment.
//! 3. The merged figures are exact: counters add, HDR histograms add.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::control::{read_msg, write_msg, Msg, PROTOCOL_VERSION};
use crate::engine::Live;
use crate::plan::Plan;
use crate::progress::Progress;
use crate::stats::{RunStats, SlaveRun};
use crate::Env;
use crate::{Config, Report, SlaveInfo};

/// How the master talks to its slaves.
#[derive(Debug, Clone)]
pub struct MasterOptions {
    /// Control addresses of the slaves.
    pub slaves: Vec<String>,
    /// Limit for connecting to a slave and for its answer to the plan.
    pub connect_timeout: Duration,
    /// Delay between sending `Start` and the common start instant.
    pub start_delay: Duration,
    /// Extra time past the end of a run (and the request timeout) before a
    /// silent slave is declared failed.
    pub grace: Duration,
}

impl MasterOptions {
    /// Defaults for the given slaves: 5 s to connect, start 300 ms after the
    /// signal, 5 s of grace.
    pub fn new(slaves: Vec<String>) -> MasterOptions {
        MasterOptions {
            slaves,
            connect_timeout: Duration::from_secs(5),
            start_delay: Duration::from_millis(300),
            grace: Duration::from_secs(5),
        }
    }
}

struct Slave {
    addr: String,
    stream: Option<TcpStream>,
    env: Option<Env>,
    failure: Option<String>,
}

impl Slave {
    fn fail(&mut self, why: String) {
        eprintln!("master: slave {} failed: {why}", self.addr);
        self.stream = None;
        self.failure.get_or_insert(why);
    }
}

/// Clients of slave `i` out of `n` for a total of `total`.
pub fn share(total: usize, n: usize, i: usize) -> usize {
    total / n + usize::from(i < total % n)
}

fn connect(addr: &str, plan: &Plan, timeout: Duration) -> Result<(TcpStream, Env)> {
    let sa = addr
        .to_socket_addrs()
        .with_context(|| format!("slave address {addr:?}: expected HOST:PORT"))?
        .next()
        .with_context(|| format!("slave address {addr:?} resolved to nothing"))?;
    let mut s =
        TcpStream::connect_timeout(&sa, timeout).with_context(|| format!("connecting to {sa}"))?;
    s.set_nodelay(true).ok();
    s.set_read_timeout(Some(timeout)).ok();
    write_msg(
        &mut s,
        &Msg::Plan {
            version: PROTOCOL_VERSION,
            plan: plan.clone(),
        },
        &[],
    )
    .context("sending the plan")?;
    match read_msg(&mut s).context("waiting for the slave to accept the plan")? {
        (Msg::Ready { env }, _) => Ok((s, *env)),
        (Msg::Error { message }, _) => bail!("slave refused the plan: {message}"),
        (other, _) => bail!("unexpected answer to the plan: {other:?}"),
    }
}

/// Runs the plan on the slaves: every step, every run.
pub fn run_master(plan: &Plan, opts: &MasterOptions, progress: Progress) -> Result<Report> {
    plan.validate()?;
    if opts.slaves.is_empty() {
        bail!("--slaves needs at least one address");
    }
    let mut slaves = connect_all(plan, opts)?;
    let mut by_step = Vec::new();
    let mut seq = 0u64;
    for clients in plan.client_steps() {
        let mut runs = Vec::new();
        for r in 1..=plan.runs {
            let rtt = ping_all(&mut slaves, opts, &mut seq);
            start_all(&mut slaves, opts, &rtt, r, clients);
            let (merged, per_slave) = collect_all(&mut slaves, plan, opts, &progress, r, clients)?;
            let mut summary = merged.summarize(r, clients, plan.duration_s);
            summary.slaves = per_slave;
            summary.missing_slaves = slaves
                .iter()
                .filter_map(|s| s.failure.as_ref().map(|f| format!("{}: {f}", s.addr)))
                .collect();
            summary.complete = summary.missing_slaves.is_empty();
            runs.push(summary);
        }
        by_step.push((clients, runs));
    }
    for s in slaves.iter_mut() {
        if let Some(st) = s.stream.as_mut() {
            let _ = write_msg(st, &Msg::Bye, &[]);
        }
    }
    let n = slaves.len();
    let infos = slaves
        .iter()
        .enumerate()
        .map(|(i, s)| SlaveInfo {
            addr: s.addr.clone(),
            clients: share(plan.client_steps()[0], n, i),
            env: s.env.clone(),
            failure: s.failure.clone(),
        })
        .collect();
    let config = Config {
        mode: "master".into(),
        plan: plan.clone(),
        slaves: infos,
    };
    Ok(Report::build(config, crate::environment(), by_step))
}

/// Sends the plan to every slave; fails only when none of them answers (rule 2 marks the
/// others failed).
fn connect_all(plan: &Plan, opts: &MasterOptions) -> Result<Vec<Slave>> {
    let slaves: Vec<Slave> = opts
        .slaves
        .iter()
        .map(|addr| match connect(addr, plan, opts.connect_timeout) {
            Ok((s, env)) => Slave {
                addr: addr.clone(),
                stream: Some(s),
                env: Some(env),
                failure: None,
            },
            Err(e) => {
                eprintln!("master: slave {addr} failed: {e:#}");
                Slave {
                    addr: addr.clone(),
                    stream: None,
                    env: None,
                    failure: Some(format!("{e:#}")),
                }
            }
        })
        .collect();
    if slaves.iter().all(|s| s.stream.is_none()) {
        let why: Vec<String> = slaves
            .iter()
            .map(|s| format!("{}: {}", s.addr, s.failure.as_deref().unwrap_or("?")))
            .collect();
        bail!("no slave answered: {}", why.join("; "));
    }
    Ok(slaves)
}

/// One round trip to each live slave, to correct its start delay (zero for the others).
fn ping_all(slaves: &mut [Slave], opts: &MasterOptions, seq: &mut u64) -> Vec<Duration> {
    let mut rtt = vec![Duration::ZERO; slaves.len()];
    for (i, s) in slaves.iter_mut().enumerate() {
        let Some(st) = s.stream.as_mut() else {
            continue;
        };
        *seq += 1;
        let t0 = Instant::now();
        st.set_read_timeout(Some(opts.connect_timeout)).ok();
        let res = write_msg(st, &Msg::Ping { seq: *seq }, &[])
            .map_err(anyhow::Error::from)
            .and_then(|_| read_msg(st));
        match res {
            Ok((Msg::Pong { seq: got }, _)) if got == *seq => rtt[i] = t0.elapsed(),
            Ok((other, _)) => s.fail(format!("unexpected answer to a ping: {other:?}")),
            Err(e) => s.fail(format!("no answer to a ping: {e:#}")),
        }
    }
    rtt
}

/// Starts run `r` on every live slave at one common instant: each slave's delay is counted
/// from the moment its own Start is sent, less half its round trip (the time to reach it).
fn start_all(
    slaves: &mut [Slave],
    opts: &MasterOptions,
    rtt: &[Duration],
    r: usize,
    clients: usize,
) {
    let n = slaves.len();
    let common_start = Instant::now() + opts.start_delay;
    for (i, s) in slaves.iter_mut().enumerate() {
        let Some(st) = s.stream.as_mut() else {
            continue;
        };
        let delay = common_start
            .saturating_duration_since(Instant::now())
            .saturating_sub(rtt[i] / 2);
        let msg = Msg::Start {
            run: r,
            clients: share(clients, n, i),
            delay_us: delay.as_micros() as u64,
        };
        if let Err(e) = write_msg(st, &msg, &[]) {
            s.fail(format!("sending the start of run {r}: {e}"));
        }
    }
}

/// Waits (with the progress display) for every live slave's result of run `r` until the
/// deadline of rule 2, and merges them (rule 3).
fn collect_all(
    slaves: &mut [Slave],
    plan: &Plan,
    opts: &MasterOptions,
    progress: &Progress,
    r: usize,
    clients: usize,
) -> Result<(RunStats, Vec<SlaveRun>)> {
    let run_len = Duration::from_secs_f64(plan.warmup_s + plan.duration_s);
    let deadline = Instant::now()
        + opts.start_delay
        + run_len
        + Duration::from_millis(plan.timeout_ms)
        + opts.grace;
    let live = Live::default();
    let label = format!("{clients}c run {r}/{}", plan.runs);
    progress.track(
        &label,
        opts.start_delay + Duration::from_secs_f64(plan.warmup_s),
        opts.start_delay + run_len,
        &live,
        || -> Result<(RunStats, Vec<SlaveRun>)> {
            let mut merged = RunStats::default();
            let mut per_slave = Vec::new();
            for s in slaves.iter_mut() {
                if let Some(one) = result_of(s, r, deadline) {
                    per_slave.push(SlaveRun::of(&s.addr, &one, plan.duration_s));
                    merged.merge(&one)?;
                }
            }
            Ok((merged, per_slave))
        },
    )
}

/// Slave `s`'s result of run `r`, read until `deadline`; a slave that sends anything else,
/// or nothing in time, has failed.
fn result_of(s: &mut Slave, r: usize, deadline: Instant) -> Option<RunStats> {
    let st = s.stream.as_mut()?;
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    st.set_read_timeout(Some(left)).ok();
    match read_msg(st) {
        Ok((Msg::Result { run, counters }, tail)) if run == r => {
            match RunStats::histogram_from_bytes(&tail) {
                Ok(latency) => return Some(RunStats { counters, latency }),
                Err(e) => s.fail(format!("run {r}: bad histogram: {e:#}")),
            }
        }
        Ok((Msg::Error { message }, _)) => s.fail(format!("run {r}: {message}")),
        Ok((other, _)) => s.fail(format!("run {r}: unexpected message {other:?}")),
        Err(e) => s.fail(format!(
            "run {r}: no result before the deadline or connection lost: {e:#}"
        )),
    }
    None
}
