//! The serial part of the server, in color 0: the export (file system), the lease table
//! and the uid mapping ([`crate::dispatch`]), with the live connections to deliver its
//! frames to.
//!
//! Color 0 owns [`Serial`] in a `ColorCell`, so every dispatcher call is serial and no
//! lock is taken. Events: `Dispatch` (a connection's message, or its authentication),
//! `Disconnect`, `LeaseTimer` and `SyncDone`.
//!
//! Invariants:
//! 1. A conflicting operation's reply is held in the lease table until the other
//!    holders acknowledge INVALIDATE, disconnect, or their leases expire (a color-0
//!    timer, armed whenever the dispatcher names a deadline).
//! 2. A stable WRITE's data is written in color 0 (so later operations see it) but
//!    its fsync, like COMMIT's, runs on the runtime's blocking pool; the reply is built
//!    in color 0 when the fsync completes (`SyncDone`), so no acknowledgement of a
//!    stable write precedes its fsync, and color 0 never waits for the disk.
//! 3. Frames for a connection that closed meanwhile are dropped (routing looks the
//!    connection up when the frames are produced).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use colored_runtime::{Color, Ctx};
use sfs_proto::messages::ClientMsg;

use super::conn::Conn;
use super::Shared;
use crate::dispatch::{ConnId, Dispatcher, Outcome, Outgoing, SyncJob};

/// Color-0 state: the serial part of the server.
pub(super) struct Serial {
    /// Export, leases and sessions ([`crate::dispatch`]).
    dispatch: Dispatcher,
    /// Live connections, to deliver the dispatcher's frames to.
    conns: HashMap<ConnId, Arc<Conn>>,
}

/// Frames addressed to live connections.
type Routed = Vec<(Arc<Conn>, Vec<u8>)>;

impl Serial {
    /// The serial part over `dispatch`, with no connection yet.
    pub(super) fn new(dispatch: Dispatcher) -> Serial {
        Serial {
            dispatch,
            conns: HashMap::new(),
        }
    }

    /// Address the dispatcher's frames to live connections (frames to connections
    /// that closed meanwhile are dropped).
    fn route(&self, out: Outgoing) -> Routed {
        out.into_iter()
            .filter_map(|(id, f)| self.conns.get(&id).map(|c| (c.clone(), f)))
            .collect()
    }

    /// Route an outcome's frames and log its warnings with the peer's address.
    fn conclude(&self, o: Outcome) -> (Routed, Option<Instant>, Option<SyncJob>) {
        for (id, w) in &o.warnings {
            match self.conns.get(id) {
                Some(c) => eprintln!("sfs-server: conn {} ({}): {w}", c.id, c.peer),
                None => eprintln!("sfs-server: conn {id}: {w}"),
            }
        }
        (self.route(o.out), o.arm, o.sync)
    }
}

/// Posts each frame to its connection's color, to be sealed and written (`Encrypt`).
fn deliver(sh: &Arc<Shared>, ctx: &mut Ctx<'_>, out: Routed) {
    for (conn, frame) in out {
        let sh2 = sh.clone();
        let c = conn.color;
        ctx.post(c, sh.h.encrypt, move |ctx| conn.send(&sh2, ctx, frame));
    }
}

/// `Dispatch` (color 0): one message of connection `id`.
pub(super) fn dispatch(sh: &Arc<Shared>, ctx: &mut Ctx<'_>, id: ConnId, m: ClientMsg) {
    let done = sh.serial.with(ctx, |serial| {
        let o = serial.dispatch.handle(id, m, Instant::now());
        serial.conclude(o)
    });
    carry_out(sh, ctx, id, done);
}

/// Deliver an outcome's frames, arm the lease timer, and run its fsync off color 0.
fn carry_out(
    sh: &Arc<Shared>,
    ctx: &mut Ctx<'_>,
    id: ConnId,
    (out, arm, sync): (Routed, Option<Instant>, Option<SyncJob>),
) {
    deliver(sh, ctx, out);
    if let Some(d) = arm {
        arm_timer(sh, ctx, d);
    }
    let Some(job) = sync else {
        return;
    };
    // fsync blocks: run it on the blocking pool so color 0 keeps serving; the reply is
    // built back in color 0 when it completes.
    let (file, data_only) = (job.file.clone(), job.data_only);
    let sh2 = sh.clone();
    let r = ctx.handle().spawn_blocking(
        Color(0),
        sh.h.sync_done,
        move || {
            if data_only {
                file.sync_data()
            } else {
                file.sync_all()
            }
        },
        move |ctx, res| {
            let done = sh2.serial.with(ctx, |serial| {
                let o = serial.dispatch.finish_sync(job, res);
                serial.conclude(o)
            });
            carry_out(&sh2, ctx, id, done);
        },
    );
    if r.is_err() {
        eprintln!("sfs-server: conn {id}: runtime shut down before an fsync could run; no reply");
    }
}

fn arm_timer(sh: &Arc<Shared>, ctx: &mut Ctx<'_>, at: Instant) {
    let sh2 = sh.clone();
    let _ = ctx
        .handle()
        .post_at(at, Color(0), sh.h.lease_timer, move |ctx| {
            let (out, next) = sh2.serial.with(ctx, |serial| {
                let (out, next) = serial.dispatch.on_timer(Instant::now());
                (serial.route(out), next)
            });
            deliver(&sh2, ctx, out);
            if let Some(n) = next {
                arm_timer(&sh2, ctx, n);
            }
        });
}

/// `Dispatch` (color 0): connection `id` authenticated as `user`; it acts as the local
/// identity the key table maps the user to.
pub(super) fn authenticated(sh: &Arc<Shared>, ctx: &mut Ctx<'_>, id: ConnId, user: &str) {
    let entry = sh.keys.get(user);
    let ident = entry.map(|e| (e.uid, e.gid));
    let trusted = entry.is_some_and(|e| e.trusted);
    sh.serial.with(ctx, |serial| {
        serial.dispatch.authenticate(id, ident, trusted)
    })
}

/// Admission (color 0): the dispatcher learns of connection `id`, frames can be routed to it.
pub(super) fn connected(sh: &Arc<Shared>, ctx: &mut Ctx<'_>, conn: &Arc<Conn>) {
    sh.serial.with(ctx, |serial| {
        serial.dispatch.connect(conn.id);
        serial.conns.insert(conn.id, conn.clone())
    });
}

/// `Disconnect` (color 0): connection `id` closed; its leases are given up, and what that
/// releases is delivered to the others.
pub(super) fn disconnected(sh: &Arc<Shared>, ctx: &mut Ctx<'_>, id: ConnId) {
    let out = sh.serial.with(ctx, |serial| {
        let out = serial.dispatch.disconnect(id);
        serial.conns.remove(&id);
        serial.route(out)
    });
    deliver(sh, ctx, out);
}
