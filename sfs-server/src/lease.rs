//! Attribute leases and INVALIDATE bookkeeping.
//!
//! Invariants:
//! 1. A client holding an unexpired lease on a file id may serve that file's attributes
//!    and data from its cache. The server grants leases on GETATTR, LOOKUP, CREATE,
//!    SETATTR and READ for [`LeaseTable::duration`].
//! 2. A conflicting operation (WRITE, SETATTR, REMOVE, RENAME) by client W on file ids F
//!    revokes every *other* client's unexpired lease on F and sends each holder one
//!    INVALIDATE callback. The operation's reply is held (a *waiter*) until every
//!    callback is acknowledged, the holder disconnects, or the revoked lease's expiry
//!    passes: so when W sees its reply, no other client can still trust a cached copy.
//! 3. The table is owned by color 0 (`&mut self`); it never blocks. The server asks
//!    [`LeaseTable::next_deadline`] to arm a timer and calls [`LeaseTable::expire`].

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// Connection id of a client.
pub type ClientId = u64;

/// A callback the server must send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Callback {
    /// Holder to notify.
    pub client: ClientId,
    /// Callback id (for the acknowledgement).
    pub cb_id: u64,
    /// File id whose lease is revoked.
    pub fileid: u64,
}

/// Outcome of [`LeaseTable::conflict`].
#[derive(Debug)]
pub enum Conflict<T> {
    /// No other holder: reply now.
    Proceed(T),
    /// Send these callbacks; the reply is held until they complete.
    Wait(Vec<Callback>),
}

struct Waiter<T> {
    outstanding: HashSet<u64>,
    deadline: Instant,
    reply: T,
}

/// The lease table, generic over the held reply type.
pub struct LeaseTable<T> {
    duration: Duration,
    /// fileid -> holder -> expiry.
    leases: HashMap<u64, HashMap<ClientId, Instant>>,
    /// cb_id -> (holder, waiter id).
    callbacks: HashMap<u64, (ClientId, u64)>,
    waiters: HashMap<u64, Waiter<T>>,
    next_id: u64,
}

impl<T> LeaseTable<T> {
    /// An empty table granting leases of `duration`.
    pub fn new(duration: Duration) -> Self {
        LeaseTable {
            duration,
            leases: HashMap::new(),
            callbacks: HashMap::new(),
            waiters: HashMap::new(),
            next_id: 1,
        }
    }

    /// Lease length.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// Grant (or extend) `client`'s lease on `fileid`.
    pub fn grant(&mut self, client: ClientId, fileid: u64, now: Instant) -> Instant {
        let exp = now + self.duration;
        self.leases.entry(fileid).or_default().insert(client, exp);
        exp
    }

    /// Does `client` hold an unexpired lease on `fileid`?
    pub fn holds(&self, client: ClientId, fileid: u64, now: Instant) -> bool {
        self.leases
            .get(&fileid)
            .and_then(|h| h.get(&client))
            .is_some_and(|&e| e > now)
    }

    /// `writer` is about to be answered for a conflicting operation on `fileids`.
    pub fn conflict(
        &mut self,
        writer: ClientId,
        fileids: &[u64],
        now: Instant,
        reply: T,
    ) -> Conflict<T> {
        let mut cbs = Vec::new();
        let mut deadline = now;
        let wid = self.next_id;
        self.next_id += 1;
        for &f in fileids {
            let Some(holders) = self.leases.get_mut(&f) else {
                continue;
            };
            let others: Vec<(ClientId, Instant)> = holders
                .iter()
                .filter(|(c, _)| **c != writer)
                .map(|(c, e)| (*c, *e))
                .collect();
            for (c, exp) in others {
                holders.remove(&c);
                if exp <= now {
                    continue;
                }
                let cb_id = self.next_id;
                self.next_id += 1;
                deadline = deadline.max(exp);
                self.callbacks.insert(cb_id, (c, wid));
                cbs.push(Callback {
                    client: c,
                    cb_id,
                    fileid: f,
                });
            }
            if holders.is_empty() {
                self.leases.remove(&f);
            }
        }
        if cbs.is_empty() {
            return Conflict::Proceed(reply);
        }
        let outstanding = cbs.iter().map(|c| c.cb_id).collect();
        self.waiters.insert(
            wid,
            Waiter {
                outstanding,
                deadline,
                reply,
            },
        );
        Conflict::Wait(cbs)
    }

    fn complete(&mut self, cb_id: u64) -> Option<T> {
        let (_, wid) = self.callbacks.remove(&cb_id)?;
        let w = self.waiters.get_mut(&wid)?;
        w.outstanding.remove(&cb_id);
        if w.outstanding.is_empty() {
            self.waiters.remove(&wid).map(|w| w.reply)
        } else {
            None
        }
    }

    /// `client` acknowledged `cb_id`: the held reply, if this was the last one.
    /// Acks for unknown ids or from the wrong client are ignored.
    pub fn ack(&mut self, client: ClientId, cb_id: u64) -> Option<T> {
        match self.callbacks.get(&cb_id) {
            Some((c, _)) if *c == client => self.complete(cb_id),
            _ => None,
        }
    }

    /// Replies whose revoked leases have all expired by `now`.
    pub fn expire(&mut self, now: Instant) -> Vec<T> {
        let due: Vec<u64> = self
            .waiters
            .iter()
            .filter(|(_, w)| w.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        let mut out = Vec::new();
        for wid in due {
            if let Some(w) = self.waiters.remove(&wid) {
                for cb in &w.outstanding {
                    self.callbacks.remove(cb);
                }
                out.push(w.reply);
            }
        }
        out
    }

    /// `client` disconnected: drop its leases, count its callbacks as acknowledged.
    pub fn drop_client(&mut self, client: ClientId) -> Vec<T> {
        self.leases.retain(|_, h| {
            h.remove(&client);
            !h.is_empty()
        });
        let mine: Vec<u64> = self
            .callbacks
            .iter()
            .filter(|(_, (c, _))| *c == client)
            .map(|(id, _)| *id)
            .collect();
        mine.into_iter()
            .filter_map(|cb| self.complete(cb))
            .collect()
    }

    /// Earliest waiter deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.waiters.values().map(|w| w.deadline).min()
    }

    /// Held replies.
    pub fn waiting(&self) -> usize {
        self.waiters.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_other_holder_proceeds() {
        let mut t = LeaseTable::new(Duration::from_secs(10));
        let now = Instant::now();
        t.grant(1, 100, now);
        assert!(matches!(
            t.conflict(1, &[100], now, "r"),
            Conflict::Proceed("r")
        ));
        assert!(t.holds(1, 100, now), "writer keeps its own lease");
    }

    #[test]
    fn holders_must_ack() {
        let mut t = LeaseTable::new(Duration::from_secs(10));
        let now = Instant::now();
        t.grant(1, 100, now);
        t.grant(2, 100, now);
        t.grant(3, 100, now);
        t.grant(2, 200, now);
        let Conflict::Wait(cbs) = t.conflict(9, &[100, 200], now, "reply") else {
            panic!()
        };
        assert_eq!(cbs.len(), 4);
        assert!(!t.holds(2, 100, now) && !t.holds(2, 200, now));
        let mut done = None;
        for cb in &cbs {
            assert_eq!(done, None);
            assert_eq!(
                t.ack(cb.client + 50, cb.cb_id),
                None,
                "wrong client ignored"
            );
            done = t.ack(cb.client, cb.cb_id);
        }
        assert_eq!(done, Some("reply"));
        assert_eq!(t.waiting(), 0);
    }

    #[test]
    fn expiry_and_disconnect_release() {
        let mut t = LeaseTable::new(Duration::from_secs(10));
        let now = Instant::now();
        t.grant(1, 5, now);
        t.grant(2, 6, now);
        let Conflict::Wait(_) = t.conflict(9, &[5], now, 'a') else {
            panic!()
        };
        let Conflict::Wait(_) = t.conflict(9, &[6], now, 'b') else {
            panic!()
        };
        assert_eq!(t.next_deadline(), Some(now + Duration::from_secs(10)));
        assert!(t.expire(now + Duration::from_secs(9)).is_empty());
        assert_eq!(t.drop_client(2), vec!['b']);
        assert_eq!(t.expire(now + Duration::from_secs(10)), vec!['a']);
        // Expired leases need no callback.
        t.grant(3, 7, now);
        assert!(matches!(
            t.conflict(9, &[7], now + Duration::from_secs(11), 'c'),
            Conflict::Proceed('c')
        ));
    }
}
