//! The mount's connection to the server, re-established when it is lost.
//!
//! Invariants:
//! 1. At most one connection is current; its epoch numbers the handles issued on it
//!    ([`super::nodes`]). A lost connection is replaced once, by the first caller that
//!    notices, and callers that held the old one retry on the new one.
//! 2. Reconnecting is bounded: attempts back off from 50 ms to 1 s and give up after
//!    [`RemoteConfig::reconnect_for`], so an operation on a dead server fails (EIO)
//!    instead of hanging; the next operation tries again.
//! 3. Every connection carries the same INVALIDATE hook, and a reconnect runs
//!    [`RemoteConfig::on_reconnect`] (the mount drops every kernel cache: leases held
//!    on the old connection are gone).

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use sfs_proto::key::Key;

use crate::client::{CResult, Client, ClientError, ClientOptions};

/// What the connection needs.
#[derive(Clone)]
pub struct RemoteConfig {
    /// Server address.
    pub server: String,
    /// SFS user.
    pub user: String,
    /// The user's key.
    pub key: Key,
    /// Client options (timeouts, INVALIDATE hook); caching is off (the kernel caches).
    pub opts: ClientOptions,
    /// How long to keep trying to reconnect before an operation fails.
    pub reconnect_for: Duration,
    /// Run after each reconnect (not the first connection).
    pub on_reconnect: Option<Arc<dyn Fn() + Send + Sync>>,
}

/// The current connection and its epoch.
struct Current {
    /// The connection, or `None` after it was lost.
    client: Option<Arc<Client>>,
    /// Epoch of `client` (incremented per connection).
    epoch: u64,
}

/// A reconnecting connection.
pub struct Remote {
    /// Configuration.
    cfg: RemoteConfig,
    /// The current connection (the lock is held while reconnecting, so only one
    /// caller reconnects).
    cur: Mutex<Current>,
}

impl Remote {
    /// Connect for the first time (failure is the caller's: nothing is mounted yet).
    pub fn connect(mut cfg: RemoteConfig) -> CResult<Remote> {
        cfg.opts.caching = false;
        let c = Client::connect_with(cfg.server.as_str(), &cfg.user, &cfg.key, cfg.opts.clone())?;
        Ok(Remote {
            cfg,
            cur: Mutex::new(Current {
                client: Some(Arc::new(c)),
                epoch: 1,
            }),
        })
    }

    /// The current connection and its epoch, reconnecting if it was lost.
    pub fn get(&self) -> CResult<(Arc<Client>, u64)> {
        let mut cur = self.cur.lock();
        if let Some(c) = &cur.client {
            if c.closed_reason().is_none() {
                return Ok((c.clone(), cur.epoch));
            }
        }
        cur.client = None;
        let deadline = Instant::now() + self.cfg.reconnect_for;
        let mut pause = Duration::from_millis(50);
        let err = loop {
            match Client::connect_with(
                self.cfg.server.as_str(),
                &self.cfg.user,
                &self.cfg.key,
                self.cfg.opts.clone(),
            ) {
                Ok(c) => {
                    let c = Arc::new(c);
                    cur.client = Some(c.clone());
                    cur.epoch += 1;
                    let epoch = cur.epoch;
                    drop(cur);
                    if let Some(f) = &self.cfg.on_reconnect {
                        f();
                    }
                    return Ok((c, epoch));
                }
                Err(e) if Instant::now() + pause < deadline => {
                    let _ = e;
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                Err(e) => break e,
            }
        };
        Err(ClientError::Disconnected(format!(
            "connection to {} lost; reconnecting failed for {:?}: {err}",
            self.cfg.server, self.cfg.reconnect_for
        )))
    }

    /// The call on epoch `epoch` found the connection gone.
    pub fn lost(&self, epoch: u64) {
        let mut cur = self.cur.lock();
        if cur.epoch == epoch {
            cur.client = None;
        }
    }
}
