//! Length-prefixed framing over a byte stream.
//!
//! Wire form: a 4-byte big-endian body length, then the body. Invariants:
//! 1. A length above [`MAX_FRAME`] is refused as soon as the 4 length bytes are seen,
//!    before any of the body is buffered, so a peer cannot make us allocate more than
//!    one maximal frame per connection.
//! 2. [`FrameBuf`] accepts arbitrary partial reads: bytes may arrive one at a time or
//!    many frames at once; frames come out whole and in order.
//! 3. End of stream in the middle of a frame is a truncation error, never a short frame.

use std::io::{self, Read, Write};

use thiserror::Error;

/// Largest body accepted (ciphertext plus tag): 1 MiB.
pub const MAX_FRAME: usize = 1 << 20;
/// Bytes of the length prefix.
pub const LEN_BYTES: usize = 4;

/// A frame as read: the 4 length bytes (authenticated as AAD) and the body.
pub type Frame = ([u8; 4], Vec<u8>);

/// Framing errors.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    /// The length prefix announced more than [`MAX_FRAME`] bytes.
    #[error("oversized frame: {0} bytes announced, limit {1}")]
    Oversized(usize, usize),
    /// The stream ended inside a frame.
    #[error("truncated frame: stream ended with {0} bytes of a partial frame")]
    Truncated(usize),
}

/// Incremental frame parser fed with whatever the socket returns.
///
/// `buf[start..end]` holds received, unparsed bytes; `buf[end..]` is initialised spare
/// room that is reused, so reading into it never zero-fills again.
#[derive(Debug, Default)]
pub struct FrameBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Largest body accepted now (0 means [`MAX_FRAME`]).
    limit: usize,
}

impl FrameBuf {
    /// An empty parser.
    pub fn new() -> FrameBuf {
        FrameBuf::default()
    }

    /// Accept bodies of at most `limit` bytes (capped at [`MAX_FRAME`]), e.g. small
    /// handshake messages before authentication.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit.min(MAX_FRAME);
    }

    fn limit(&self) -> usize {
        if self.limit == 0 {
            MAX_FRAME
        } else {
            self.limit
        }
    }

    /// Append bytes read from the stream.
    pub fn extend(&mut self, data: &[u8]) {
        let sp = self.spare(data.len());
        sp[..data.len()].copy_from_slice(data);
        self.commit(data.len());
    }

    /// Spare room to read into directly: at least `min` bytes (possibly more); then
    /// call [`FrameBuf::commit`] with the number of bytes actually written.
    pub fn spare(&mut self, min: usize) -> &mut [u8] {
        self.compact();
        if self.buf.len() < self.end + min {
            self.buf.resize(self.end + min, 0);
        }
        &mut self.buf[self.end..]
    }

    /// After [`FrameBuf::spare`]: keep the first `n` spare bytes.
    pub fn commit(&mut self, n: usize) {
        assert!(self.end + n <= self.buf.len(), "commit past the spare room");
        self.end += n;
    }

    fn compact(&mut self) {
        if self.start > 0 && (self.start == self.end || self.start > 64 * 1024) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// The next complete frame as `(length prefix, body)`, if any.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        let avail = &self.buf[self.start..self.end];
        if avail.len() < LEN_BYTES {
            return Ok(None);
        }
        let lb = [avail[0], avail[1], avail[2], avail[3]];
        let len = u32::from_be_bytes(lb) as usize;
        if len > self.limit() {
            return Err(FrameError::Oversized(len, self.limit()));
        }
        if avail.len() < LEN_BYTES + len {
            return Ok(None);
        }
        let body = avail[LEN_BYTES..LEN_BYTES + len].to_vec();
        self.start += LEN_BYTES + len;
        Ok(Some((lb, body)))
    }

    /// Bytes still missing from the frame in progress: the rest of its length prefix, or of
    /// its body once the prefix is in (0 when a whole frame is buffered). An oversized
    /// prefix counts as complete, so that [`FrameBuf::next_frame`] reports it.
    pub fn wanted(&self) -> usize {
        let avail = &self.buf[self.start..self.end];
        if avail.len() < LEN_BYTES {
            return LEN_BYTES - avail.len();
        }
        let len = u32::from_be_bytes([avail[0], avail[1], avail[2], avail[3]]) as usize;
        if len > self.limit() {
            return 0;
        }
        (LEN_BYTES + len).saturating_sub(avail.len())
    }

    /// Frees the buffer when nothing is buffered and it holds more than `keep` bytes, so an
    /// idle connection gives back what its largest frame needed.
    pub fn release_if_empty(&mut self, keep: usize) {
        if self.start == self.end && self.buf.len() > keep {
            self.buf = Vec::new();
            self.start = 0;
            self.end = 0;
        }
    }

    /// Bytes the buffer holds (buffered or spare).
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Bytes of an incomplete frame still buffered (non-zero at EOF means truncation).
    pub fn pending(&self) -> usize {
        self.end - self.start
    }

    /// Check at end of stream.
    pub fn finish(&self) -> Result<(), FrameError> {
        match self.pending() {
            0 => Ok(()),
            n => Err(FrameError::Truncated(n)),
        }
    }
}

/// Write one frame (length prefix and body) to a blocking stream.
pub fn write_frame<W: Write>(w: &mut W, body: &[u8]) -> io::Result<()> {
    if body.len() > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "frame too large",
        ));
    }
    let mut v = Vec::with_capacity(LEN_BYTES + body.len());
    v.extend_from_slice(&(body.len() as u32).to_be_bytes());
    v.extend_from_slice(body);
    w.write_all(&v)
}

/// Read one frame into `body` (reused: grown, never zero-filled when already large
/// enough); returns the length prefix. Errors as [`read_frame`].
pub fn read_frame_into<R: Read>(r: &mut R, body: &mut Vec<u8>) -> io::Result<[u8; 4]> {
    let mut lb = [0u8; 4];
    r.read_exact(&mut lb)?;
    let len = u32::from_be_bytes(lb) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            FrameError::Oversized(len, MAX_FRAME),
        ));
    }
    body.resize(len, 0);
    r.read_exact(body).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            io::Error::new(io::ErrorKind::InvalidData, "truncated frame")
        } else {
            e
        }
    })?;
    Ok(lb)
}

/// Read one frame from a blocking stream: `(length prefix, body)`. A clean EOF before
/// any byte gives `UnexpectedEof`; EOF inside a frame and oversized lengths give
/// `InvalidData`.
pub fn read_frame<R: Read>(r: &mut R) -> io::Result<Frame> {
    let mut lb = [0u8; 4];
    r.read_exact(&mut lb)?;
    let len = u32::from_be_bytes(lb) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            FrameError::Oversized(len, MAX_FRAME),
        ));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            io::Error::new(io::ErrorKind::InvalidData, "truncated frame")
        } else {
            e
        }
    })?;
    Ok((lb, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for f in frames {
            write_frame(&mut out, f).unwrap();
        }
        out
    }

    proptest! {
        #[test]
        fn any_split_yields_same_frames(
            frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
            chunk in 1usize..50,
        ) {
            let wire = encode(&frames);
            let mut fb = FrameBuf::new();
            let mut got = Vec::new();
            for c in wire.chunks(chunk) {
                // Alternate the two feeding paths.
                if c.len() % 2 == 0 {
                    fb.extend(c);
                } else {
                    let sp = fb.spare(c.len() + 7);
                    assert!(sp.len() >= c.len() + 7);
                    sp[..c.len()].copy_from_slice(c);
                    fb.commit(c.len());
                }
                while let Some((_, b)) = fb.next_frame().unwrap() {
                    got.push(b);
                }
            }
            prop_assert_eq!(got, frames);
            prop_assert!(fb.finish().is_ok());
        }
    }

    #[test]
    fn oversized_refused_before_body() {
        let mut fb = FrameBuf::new();
        fb.extend(&((MAX_FRAME as u32) + 1).to_be_bytes());
        assert_eq!(
            fb.next_frame(),
            Err(FrameError::Oversized(MAX_FRAME + 1, MAX_FRAME))
        );
        let mut fb = FrameBuf::new();
        fb.set_limit(100);
        fb.extend(&101u32.to_be_bytes());
        assert_eq!(fb.next_frame(), Err(FrameError::Oversized(101, 100)));
        let mut r: &[u8] = &u32::MAX.to_be_bytes();
        assert_eq!(
            read_frame(&mut r).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn wanted_and_release() {
        let mut fb = FrameBuf::new();
        assert_eq!(fb.wanted(), LEN_BYTES);
        fb.extend(&[0, 0]);
        assert_eq!(fb.wanted(), 2);
        fb.extend(&[0, 10, 1, 2, 3]);
        assert_eq!(fb.wanted(), 7);
        fb.extend(&[0; 7]);
        assert_eq!(fb.wanted(), 0);
        let cap = fb.capacity();
        fb.release_if_empty(0);
        assert_eq!(fb.capacity(), cap, "a frame is buffered");
        assert!(fb.next_frame().unwrap().is_some());
        fb.release_if_empty(cap);
        assert_eq!(fb.capacity(), cap, "small enough to keep");
        fb.release_if_empty(0);
        assert_eq!((fb.capacity(), fb.wanted()), (0, LEN_BYTES));
        fb.set_limit(8);
        fb.extend(&100u32.to_be_bytes());
        assert_eq!(
            fb.wanted(),
            0,
            "oversized: complete, so next_frame refuses it"
        );
        assert!(fb.next_frame().is_err());
    }

    #[test]
    fn truncation_detected() {
        let wire = encode(&[vec![1, 2, 3, 4, 5]]);
        let mut fb = FrameBuf::new();
        fb.extend(&wire[..6]);
        assert_eq!(fb.next_frame(), Ok(None));
        assert_eq!(fb.finish(), Err(FrameError::Truncated(6)));
        let mut r: &[u8] = &wire[..6];
        assert_eq!(
            read_frame(&mut r).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        let mut r: &[u8] = &wire[..6];
        let mut body = Vec::new();
        assert_eq!(
            read_frame_into(&mut r, &mut body).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        let mut r: &[u8] = &wire;
        assert_eq!(
            read_frame_into(&mut r, &mut body).unwrap(),
            5u32.to_be_bytes()
        );
        assert_eq!(body, [1, 2, 3, 4, 5]);
    }
}
