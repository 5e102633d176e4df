//! Admission: the accept loop and the decision to serve a new connection, in color 0.
//!
//! Invariants:
//! 1. At most `max_unauthenticated` connections are between accept and authentication
//!    (`Shared::unauthenticated`, counted from admission to authentication or close, see
//!    [`super::conn`]); past it new connections are closed at once, counted and logged (at
//!    most once a second). The handshake timeout, armed here, closes the others.
//! 2. Accept runs the shared accept loop ([`edge::accept`]): a hard error (EMFILE...)
//!    arms one retry timer with backoff instead of ending accepting, since the listener's
//!    readiness edge it consumed will not come again for clients already queued.
//! 3. An admitted connection gets its color (distinct modulo 65535 and never 0 with
//!    [`Coloring::PerClient`], 0 with [`Coloring::None`]) before it is registered, and is
//!    known to the serial part before its first readiness is handled.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use colored_runtime::{Color, Ctx};
use edge::accept::{End, Trigger};
use mio::net::TcpStream;
use mio::Interest;

use super::config::Coloring;
use super::conn::Conn;
use super::{serial, Shared};

/// At most one log line per this long about refused connections.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(1);

/// `Accept` (color 0): the shared accept loop ([`edge::accept`]); each connection is admitted
/// ([`admit`]) or refused.
pub(super) fn on_accept(sh: &Arc<Shared>, ctx: &mut Ctx<'_>, trigger: Trigger) {
    let outcome = sh.acceptor.with_ctx(ctx, |a, ctx| {
        a.run(
            trigger,
            || sh.listener.accept(),
            |(stream, peer)| admit(sh, ctx, stream, peer),
        )
    });
    if let Some(report) = outcome.report {
        eprintln!("sfs-server: {report}");
    }
    let sh2 = sh.clone();
    match outcome.end {
        End::Drained | End::Waiting => {}
        // A full batch: continue in a fresh event so other color-0 work is not starved.
        End::Full => ctx.post(Color(0), sh.h.accept, move |ctx| {
            on_accept(&sh2, ctx, Trigger::Ready)
        }),
        End::RetryAfter(d) => {
            sh.counters.accept_errors.fetch_add(1, Ordering::Relaxed);
            // After shutdown no retry is needed: ignore the error.
            let _ = ctx
                .handle()
                .post_after(d, Color(0), sh.h.accept, move |ctx| {
                    on_accept(&sh2, ctx, Trigger::Retry)
                });
        }
    }
}

/// Admission (color 0): refuse the connection past the cap on unauthenticated ones
/// (invariant 1); otherwise register it in its color and arm its handshake timeout.
fn admit(sh: &Arc<Shared>, ctx: &mut Ctx<'_>, mut stream: TcpStream, peer: SocketAddr) {
    if sh.unauthenticated.load(Ordering::Relaxed) >= sh.max_unauthenticated {
        let n = sh
            .counters
            .refused_unauthenticated
            .fetch_add(1, Ordering::Relaxed)
            + 1;
        drop(stream);
        sh.refusal_log.with(ctx, |last| {
            if last.map_or(true, |t| t.elapsed() >= REFUSAL_LOG_EVERY) {
                *last = Some(Instant::now());
                eprintln!(
                    "sfs-server: refused a connection from {peer}: {} connections have not \
                     authenticated yet (the cap); {n} refused so far",
                    sh.max_unauthenticated
                );
            }
        });
        return;
    }
    sh.counters.accepted.fetch_add(1, Ordering::Relaxed);
    let _ = stream.set_nodelay(true);
    let id = sh.next_conn.fetch_add(1, Ordering::Relaxed);
    let color = match sh.coloring {
        Coloring::PerClient => Color(1 + ((id - 1) % 65535) as u32),
        Coloring::None => Color(0),
    };
    let slot: Arc<OnceLock<Arc<Conn>>> = Arc::new(OnceLock::new());
    let (slot2, sh2) = (slot.clone(), sh.clone());
    let tok = ctx.handle().register_io(
        &mut stream,
        Interest::READABLE | Interest::WRITABLE,
        color,
        sh.h.conn_io,
        move |ctx, r| {
            if let Some(c) = slot2.get() {
                c.on_ready(&sh2, ctx, r)
            }
        },
    );
    let tok = match tok {
        Ok(t) => t,
        Err(e) => {
            eprintln!("sfs-server: registering connection from {peer} failed: {e}");
            return;
        }
    };
    sh.unauthenticated.fetch_add(1, Ordering::Relaxed);
    let conn = Arc::new(Conn::new(id, color, peer, stream, tok));
    let _ = slot.set(conn.clone());
    let (c2, sh2) = (conn.clone(), sh.clone());
    let _ = ctx
        .handle()
        .post_after(sh.handshake_timeout, color, sh.h.conn_io, move |ctx| {
            c2.on_handshake_timeout(&sh2, ctx)
        });
    serial::connected(sh, ctx, &conn);
    // Readiness that fired before the slot was filled was ignored: look once more.
    conn.post_ready(sh, ctx);
}
