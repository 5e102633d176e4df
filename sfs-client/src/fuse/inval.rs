//! Turning the server's INVALIDATE callbacks into kernel cache invalidations.
//!
//! The server holds a writer's reply until every other lease holder acknowledged its
//! INVALIDATE. The mount's part, on the client's reader thread before the ack:
//! 1. The kernel's cached attributes of the inode are dropped at once
//!    ([`Invalidator::attributes`]: `FUSE_NOTIFY_INVAL_INODE` with offset -1, which
//!    takes no page or inode lock, so it cannot wait on a request of this mount that
//!    itself waits on the server), and the file's invalidation count goes up, so the
//!    next `open` does not keep cached pages.
//! 2. The pages, and the cached names under a directory, are dropped afterwards by the
//!    invalidator thread ([`Invalidator::run`]), which may wait for page locks held by
//!    in-flight reads without holding up the ack. With `FUSE_AUTO_INVAL_DATA` the
//!    kernel also drops pages itself when the attributes it re-fetches show a new
//!    modification time or size, so a reader after the writer's reply sees new data.
//!
//! The queue holds each node at most once, so it is bounded by the nodes the kernel
//! knows.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::OsStr;
use std::sync::{Arc, OnceLock};

use fuser::{INodeNo, Notifier};
use parking_lot::{Condvar, Mutex};

/// Queued page and entry invalidations.
#[derive(Default)]
struct Queue {
    /// Nodes whose pages and entries to drop, in order.
    order: VecDeque<u64>,
    /// The same nodes, for de-duplication.
    queued: HashSet<u64>,
    /// Stop the thread.
    stop: bool,
}

/// Invalidation state shared by the hook, the file system and the thread.
#[derive(Default)]
pub struct Invalidator {
    /// The kernel channel, once mounted.
    notifier: OnceLock<Notifier>,
    /// INVALIDATEs received per node (compared at `open` to decide on keeping pages).
    counts: Mutex<HashMap<u64, u64>>,
    /// Work for the thread.
    queue: Mutex<Queue>,
    /// Signals work.
    cv: Condvar,
}

/// What the thread needs to find a directory's cached names.
pub type Children = Arc<dyn Fn(u64) -> Vec<(u64, String)> + Send + Sync>;

impl Invalidator {
    /// Connect to the kernel (after the mount).
    pub fn set_notifier(&self, n: Notifier) {
        let _ = self.notifier.set(n);
    }

    /// Step 1 for `node`: drop its cached attributes now and queue step 2.
    pub fn attributes(&self, node: u64) {
        *self.counts.lock().entry(node).or_default() += 1;
        if let Some(n) = self.notifier.get() {
            let _ = n.inval_inode(INodeNo(node), -1, 0);
        }
        self.enqueue(node);
    }

    /// Queue step 2 for `node` without an INVALIDATE (after a reconnect).
    pub fn enqueue(&self, node: u64) {
        let mut q = self.queue.lock();
        if q.queued.insert(node) {
            q.order.push_back(node);
            self.cv.notify_one();
        }
    }

    /// INVALIDATEs received for `node` so far.
    pub fn count(&self, node: u64) -> u64 {
        self.counts.lock().get(&node).copied().unwrap_or(0)
    }

    /// The kernel forgot `node`.
    pub fn forget(&self, node: u64) {
        self.counts.lock().remove(&node);
    }

    /// Stop [`Invalidator::run`].
    pub fn stop(&self) {
        self.queue.lock().stop = true;
        self.cv.notify_all();
    }

    /// The thread: drop pages and, for directories, the cached entries of the names
    /// the table knows under them (`children`).
    pub fn run(&self, children: Children) {
        loop {
            let node = {
                let mut q = self.queue.lock();
                loop {
                    if q.stop {
                        return;
                    }
                    if let Some(n) = q.order.pop_front() {
                        q.queued.remove(&n);
                        break n;
                    }
                    self.cv.wait(&mut q);
                }
            };
            let Some(notifier) = self.notifier.get() else {
                continue;
            };
            let _ = notifier.inval_inode(INodeNo(node), 0, 0);
            for (_, name) in children(node) {
                let _ = notifier.inval_entry(INodeNo(node), OsStr::new(&name));
            }
        }
    }
}
