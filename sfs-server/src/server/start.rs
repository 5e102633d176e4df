//! Start-up and the running server: load the key table, open the export, start the
//! runtime, register the handlers and the listener, and report the counters.
//!
//! Invariants:
//! 1. Everything that can fail (the key table, the export, the runtime, registering the
//!    listener) fails before [`Server::start`] returns, with context; once it returns,
//!    the server accepts connections.
//! 2. Connections that arrived before the listener was registered raise no readiness
//!    edge: one accept runs right after registration, so none is left waiting.
//! 3. [`Server::shutdown`] stops the runtime, and with it every connection; the
//!    counters it returns are final.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use colored_runtime::{Color, ColorCell, Handle, HandlerSpec, Runtime, RuntimeStats};
use edge::accept::{Acceptor, Trigger};
use mio::net::TcpListener;
use mio::unix::SourceFd;
use mio::Interest;

use super::admission::on_accept;
use super::config::ServerConfig;
use super::serial::Serial;
use super::{ConnStats, Counters, Handlers, Shared};
use crate::dispatch::Dispatcher;
use crate::fs::Export;
use crate::keytable::KeyTable;

/// A running server.
pub struct Server {
    /// The runtime every event runs on; stopping it stops the server.
    rt: Runtime,
    /// The address the listener is bound to.
    addr: SocketAddr,
    /// The state every event reaches (read here for the counters).
    sh: Arc<Shared>,
}

impl Server {
    /// Start serving on `listener` (already bound and listening).
    pub fn start(cfg: ServerConfig, listener: std::net::TcpListener) -> Result<Server> {
        let keys = KeyTable::load(&cfg.keys)?;
        let owners = keys.uid_names();
        let export = Export::open(&cfg.export, owners)?;
        let rt = Runtime::new(cfg.runtime.clone()).context("starting the runtime")?;
        for u in rt.stats().unpinned {
            eprintln!(
                "sfs-server: worker {} runs unpinned (CPU {}): {}",
                u.worker, u.cpu, u.error
            );
        }
        let h = Handlers {
            accept: rt.register(HandlerSpec::new("Accept")),
            conn_io: rt.register(HandlerSpec::new("ConnIo(decrypt)")),
            dispatch: rt.register(HandlerSpec::new("Dispatch(fs)")),
            encrypt: rt.register(HandlerSpec::new("Encrypt")),
            disconnect: rt.register(HandlerSpec::new("Disconnect")),
            lease_timer: rt.register(HandlerSpec::new("LeaseTimer")),
            sync_done: rt.register(HandlerSpec::new("SyncDone(fs)")),
        };
        let lease_ms = cfg.lease.as_millis().min(u32::MAX as u128) as u32;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let sh = Arc::new(Shared {
            h,
            keys,
            coloring: cfg.coloring,
            lease_ms,
            handshake_timeout: cfg.handshake_timeout,
            server_id: std::process::id(),
            next_conn: AtomicU64::new(1),
            serial: ColorCell::new(Color(0), Serial::new(Dispatcher::new(export, cfg.lease))),
            listener: TcpListener::from_std(listener),
            acceptor: ColorCell::new(Color(0), Acceptor::default()),
            unauthenticated: AtomicUsize::new(0),
            max_unauthenticated: cfg.max_unauthenticated,
            refusal_log: ColorCell::new(Color(0), None),
            counters: Counters::default(),
        });
        let sh2 = sh.clone();
        let lfd = sh.listener.as_raw_fd();
        rt.handle()
            .register_io(
                &mut SourceFd(&lfd),
                Interest::READABLE,
                Color(0),
                h.accept,
                move |ctx, _r| on_accept(&sh2, ctx, Trigger::Ready),
            )
            .context("registering the listener")?;
        // Connections that arrived before registration produce no edge: accept once.
        let sh3 = sh.clone();
        rt.post(Color(0), h.accept, move |ctx| {
            on_accept(&sh3, ctx, Trigger::Ready)
        })?;
        Ok(Server { rt, addr, sh })
    }

    /// The listening address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Runtime counters.
    pub fn stats(&self) -> RuntimeStats {
        self.rt.stats()
    }

    /// The connection layer's counters.
    pub fn conn_stats(&self) -> ConnStats {
        let c = &self.sh.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ConnStats {
            connections_accepted: get(&c.accepted),
            refused_unauthenticated: get(&c.refused_unauthenticated),
            accept_errors: get(&c.accept_errors),
            handshake_timeouts: get(&c.handshake_timeouts),
            reads_paused: get(&c.reads_paused),
            closed_over_output: get(&c.closed_over_output),
        }
    }

    /// A handle to the runtime.
    pub fn handle(&self) -> Handle {
        self.rt.handle()
    }

    /// Stop and return the final counters.
    pub fn shutdown(self) -> RuntimeStats {
        self.rt.shutdown()
    }

    /// [`Server::shutdown`], also returning what the workers recorded when the runtime's
    /// configuration asked for a trace (`None` otherwise).
    pub fn shutdown_traced(self) -> (RuntimeStats, Option<colored_trace::Trace>) {
        self.rt.shutdown_traced()
    }
}
