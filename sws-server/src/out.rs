//! A connection's queue of response bytes not yet written, with partial writes.
//!
//! Responses are appended as a copied head (with the Date slot patched) and a body. Bodies up
//! to [`COPY_LIMIT`] are copied next to their head so that a batch of pipelined small
//! responses leaves in one `writev`; larger bodies are queued as a shared `Arc` and never
//! copied. [`OutQueue::write_to`] writes with `writev` until the queue is empty or the socket
//! would block, and remembers how far it got (partial writes resume at the exact byte).
//!
//! Invariant: `pending` equals the number of unwritten bytes, i.e. the sum of the chunk
//! lengths minus `front_off`, and `front_off` is less than the front chunk's length (fully
//! written chunks are popped immediately).

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::sync::Arc;

use crate::date::DATE_LEN;
use crate::response::Prebuilt;

/// Bodies up to this size are copied next to their head.
pub const COPY_LIMIT: usize = 16 * 1024;
/// Most chunks handed to one `writev`.
const MAX_IOV: usize = 32;

enum Chunk {
    Owned(Vec<u8>),
    Shared(Arc<[u8]>),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Owned(v) => v,
            Chunk::Shared(a) => a,
        }
    }
}

/// Outcome of [`OutQueue::write_to`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flush {
    /// Everything was written.
    Done,
    /// The socket is full; wait for it to become writable.
    Blocked,
}

#[derive(Default)]
pub struct OutQueue {
    chunks: VecDeque<Chunk>,
    front_off: usize,
    pending: usize,
    /// A cleared buffer kept for the next response, so steady state does not allocate.
    spare: Vec<u8>,
}

impl OutQueue {
    pub fn new() -> OutQueue {
        OutQueue::default()
    }

    /// Unwritten bytes.
    pub fn pending(&self) -> usize {
        self.pending
    }

    pub fn is_empty(&self) -> bool {
        self.pending == 0
    }

    /// Appends a response with the given Date value.
    pub fn push(&mut self, r: &Prebuilt, date: &[u8; DATE_LEN]) {
        self.pending += r.len();
        let tail = self.owned_tail();
        let at = tail.len() + r.date_at;
        tail.extend_from_slice(&r.head);
        tail[at..at + DATE_LEN].copy_from_slice(date);
        if let Some(body) = &r.body {
            if body.len() <= COPY_LIMIT {
                tail.extend_from_slice(body);
            } else {
                self.chunks.push_back(Chunk::Shared(body.clone()));
            }
        }
    }

    /// The last chunk if it is an owned buffer, or a new owned chunk.
    fn owned_tail(&mut self) -> &mut Vec<u8> {
        if !matches!(self.chunks.back(), Some(Chunk::Owned(_))) {
            let buf = std::mem::take(&mut self.spare);
            self.chunks.push_back(Chunk::Owned(buf));
        }
        match self.chunks.back_mut() {
            Some(Chunk::Owned(v)) => v,
            _ => unreachable!("an owned chunk was just pushed"),
        }
    }

    /// Writes until empty or the writer would block. `Interrupted` is retried; any other
    /// error is returned (the connection is then closed by the caller).
    pub fn write_to<W: Write>(&mut self, w: &mut W) -> io::Result<Flush> {
        while self.pending > 0 {
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let mut n_iov = 0;
            for (i, c) in self.chunks.iter().take(MAX_IOV).enumerate() {
                let b = c.bytes();
                iov[n_iov] = IoSlice::new(if i == 0 { &b[self.front_off..] } else { b });
                n_iov += 1;
            }
            match w.write_vectored(&iov[..n_iov]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Flush::Blocked),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Flush::Done)
    }

    fn advance(&mut self, mut n: usize) {
        self.pending -= n;
        while n > 0 {
            let front_len = self.chunks.front().map_or(0, |c| c.bytes().len()) - self.front_off;
            if n < front_len {
                self.front_off += n;
                return;
            }
            n -= front_len;
            self.front_off = 0;
            if let Some(Chunk::Owned(mut v)) = self.chunks.pop_front() {
                if v.capacity() <= 4 * COPY_LIMIT {
                    v.clear();
                    self.spare = v;
                }
            }
        }
    }

    /// Drops everything queued (the peer is gone).
    pub fn clear(&mut self) {
        self.chunks.clear();
        self.front_off = 0;
        self.pending = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    /// A writer that accepts at most `cap` bytes per call and blocks every other call.
    struct Trickle {
        out: Vec<u8>,
        cap: usize,
        calls: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.calls += 1;
            if self.calls % 2 == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.cap);
            self.out.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn partial_writes_keep_every_byte_in_order() {
        let small: Arc<[u8]> = Arc::from(&b"small body"[..]);
        let large: Arc<[u8]> = (0..100_000u32).map(|i| i as u8).collect::<Vec<_>>().into();
        let r1 = Prebuilt::build(200, "text/plain", &small, Method::Get, false, "");
        let r2 = Prebuilt::build(200, "text/plain", &large, Method::Get, false, "");
        let r3 = Prebuilt::build(200, "text/plain", &small, Method::Head, true, "");
        let date = *b"Sun, 06 Nov 1994 08:49:37 GMT";
        let mut q = OutQueue::new();
        let mut expect = Vec::new();
        for r in [&r1, &r2, &r3, &r1] {
            q.push(r, &date);
            let mut h = r.head.to_vec();
            h[r.date_at..r.date_at + DATE_LEN].copy_from_slice(&date);
            expect.extend_from_slice(&h);
            if let Some(b) = &r.body {
                expect.extend_from_slice(b);
            }
        }
        assert_eq!(q.pending(), expect.len());
        let mut w = Trickle {
            out: vec![],
            cap: 777,
            calls: 0,
        };
        let mut rounds = 0;
        while q.write_to(&mut w).unwrap() == Flush::Blocked {
            rounds += 1;
            assert!(rounds < 10_000);
        }
        assert!(q.is_empty());
        assert_eq!(w.out, expect);
    }
}
