//! Session security: mutual authentication, key derivation, and the sealed channel.
//!
//! Handshake (all plaintext frames, see [`crate::frame`]):
//! 1. C -> S `ClientHello`: magic, version, user name, client nonce `Nc` (32 random bytes).
//! 2. S -> C `ServerChallenge`: server nonce `Ns` (32 random bytes) and
//!    `HMAC-SHA256(K, "sfs-server-proof" | user | Nc | Ns)`: the server proves it
//!    knows the user's key `K` (mutual authentication).
//! 3. C -> S `ClientProof`: `HMAC-SHA256(K, "sfs-client-proof" | user | Nc | Ns)`.
//! 4. S -> C the first sealed frame (an `AuthOk` message, see [`crate::messages`]).
//!
//! Session keys: `HKDF-SHA256(salt = Nc | Ns, ikm = K)` expanded with the info strings
//! `"sfs c2s v1"` and `"sfs s2c v1"`: one key per direction, fresh for every
//! connection because both nonces are fresh.
//!
//! Sealed frames: body = ChaCha20-Poly1305 (RFC 8439; key_dir, nonce = 0u32 | counter
//! u64 BE, aad = the 4-byte length prefix) ciphertext followed by the 16-byte tag. The
//! cipher is `ring`'s (assembly, ChaCha20 and Poly1305 in one pass): 1.6 to 2 times the
//! throughput of the pure-Rust `chacha20poly1305` crate on 512 KiB frames (1,150-1,320
//! against 550-740 MB/s on one core, 2026-12-06, a 2-vCPU AVX-512 VM shared with two
//! compiling builds), and sealing dominates the server's CPU per MB read. The bytes on
//! the wire are the same (a test seals with one and opens with the other). Invariants:
//! 1. Each direction's counter starts at 0 and increases by one per frame, on both
//!    sides; the counter is never sent, so a replayed, reordered, dropped or altered
//!    frame fails authentication at the receiver.
//! 2. Proof comparisons are constant time (`Mac::verify_slice`).
//! 3. A receiver that fails to open a frame must close the connection: its counter no
//!    longer matches the sender's, so nothing after it can be trusted either.

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::RngCore;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use sha2::Sha256;
use thiserror::Error;

use crate::frame::LEN_BYTES;
use crate::key::{check_user_name, Key};

/// Handshake magic.
pub const MAGIC: &[u8; 4] = b"SFS1";
/// Protocol version carried in the hello.
pub const VERSION: u8 = 1;
/// Bytes of a Poly1305 tag.
pub const TAG_LEN: usize = 16;
/// Bytes of a handshake nonce.
pub const NONCE_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// Security failures; each one closes the connection.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SessionError {
    /// A handshake message was malformed.
    #[error("malformed handshake message: {0}")]
    Malformed(&'static str),
    /// The peer's proof did not verify (wrong key).
    #[error("authentication failed: {0}")]
    AuthFailed(&'static str),
    /// A sealed frame failed to authenticate (tampered, replayed, reordered, truncated).
    #[error("frame {counter} failed authentication (tampered, replayed or reordered)")]
    BadFrame {
        /// The counter the receiver expected.
        counter: u64,
    },
    /// The frame is too short to hold a tag.
    #[error("sealed frame too short ({0} bytes)")]
    Short(usize),
    /// The counter would wrap.
    #[error("nonce counter exhausted")]
    Exhausted,
}

/// A fresh random handshake nonce.
pub fn fresh_nonce() -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut n);
    n
}

/// Encode a `ClientHello`.
pub fn client_hello(user: &str, nc: &[u8; NONCE_LEN]) -> Vec<u8> {
    let mut v = Vec::with_capacity(6 + user.len() + NONCE_LEN);
    v.extend_from_slice(MAGIC);
    v.push(VERSION);
    v.push(user.len() as u8);
    v.extend_from_slice(user.as_bytes());
    v.extend_from_slice(nc);
    v
}

/// Decode a `ClientHello`: `(user, Nc)`.
pub fn parse_client_hello(b: &[u8]) -> Result<(String, [u8; NONCE_LEN]), SessionError> {
    if b.len() < 6 || &b[..4] != MAGIC {
        return Err(SessionError::Malformed("bad magic"));
    }
    if b[4] != VERSION {
        return Err(SessionError::Malformed("unsupported version"));
    }
    let ulen = b[5] as usize;
    if b.len() != 6 + ulen + NONCE_LEN {
        return Err(SessionError::Malformed("bad hello length"));
    }
    let user = std::str::from_utf8(&b[6..6 + ulen])
        .map_err(|_| SessionError::Malformed("user not utf-8"))?;
    check_user_name(user).map_err(|_| SessionError::Malformed("bad user name"))?;
    let mut nc = [0u8; NONCE_LEN];
    nc.copy_from_slice(&b[6 + ulen..]);
    Ok((user.to_string(), nc))
}

/// Encode a `ServerChallenge`.
pub fn server_challenge(ns: &[u8; NONCE_LEN], proof: &[u8; 32]) -> Vec<u8> {
    let mut v = Vec::with_capacity(NONCE_LEN + 32);
    v.extend_from_slice(ns);
    v.extend_from_slice(proof);
    v
}

/// Decode a `ServerChallenge`: `(Ns, server proof)`.
pub fn parse_server_challenge(b: &[u8]) -> Result<([u8; NONCE_LEN], [u8; 32]), SessionError> {
    if b.len() != NONCE_LEN + 32 {
        return Err(SessionError::Malformed("bad challenge length"));
    }
    let mut ns = [0u8; NONCE_LEN];
    ns.copy_from_slice(&b[..NONCE_LEN]);
    let mut p = [0u8; 32];
    p.copy_from_slice(&b[NONCE_LEN..]);
    Ok((ns, p))
}

fn proof_mac(key: &Key, label: &[u8], user: &str, nc: &[u8], ns: &[u8]) -> HmacSha256 {
    let mut m = <HmacSha256 as Mac>::new_from_slice(&key.0).expect("hmac accepts any key length");
    m.update(label);
    m.update(&[user.len() as u8]);
    m.update(user.as_bytes());
    m.update(nc);
    m.update(ns);
    m
}

/// The server's proof of knowing `key`.
pub fn server_proof(key: &Key, user: &str, nc: &[u8], ns: &[u8]) -> [u8; 32] {
    proof_mac(key, b"sfs-server-proof", user, nc, ns)
        .finalize()
        .into_bytes()
        .into()
}

/// The client's proof of knowing `key`.
pub fn client_proof(key: &Key, user: &str, nc: &[u8], ns: &[u8]) -> [u8; 32] {
    proof_mac(key, b"sfs-client-proof", user, nc, ns)
        .finalize()
        .into_bytes()
        .into()
}

/// Constant-time check of the server's proof (run by the client).
pub fn verify_server_proof(
    key: &Key,
    user: &str,
    nc: &[u8],
    ns: &[u8],
    proof: &[u8],
) -> Result<(), SessionError> {
    proof_mac(key, b"sfs-server-proof", user, nc, ns)
        .verify_slice(proof)
        .map_err(|_| SessionError::AuthFailed("server does not know the user's key"))
}

/// Constant-time check of the client's proof (run by the server).
pub fn verify_client_proof(
    key: &Key,
    user: &str,
    nc: &[u8],
    ns: &[u8],
    proof: &[u8],
) -> Result<(), SessionError> {
    proof_mac(key, b"sfs-client-proof", user, nc, ns)
        .verify_slice(proof)
        .map_err(|_| SessionError::AuthFailed("client proof did not verify (wrong key)"))
}

/// The two per-direction session keys `(client-to-server, server-to-client)`.
pub fn derive_keys(key: &Key, nc: &[u8], ns: &[u8]) -> ([u8; 32], [u8; 32]) {
    let mut salt = Vec::with_capacity(nc.len() + ns.len());
    salt.extend_from_slice(nc);
    salt.extend_from_slice(ns);
    let hk = Hkdf::<Sha256>::new(Some(&salt), &key.0);
    let mut c2s = [0u8; 32];
    let mut s2c = [0u8; 32];
    hk.expand(b"sfs c2s v1", &mut c2s)
        .expect("32 bytes is a valid HKDF length");
    hk.expand(b"sfs s2c v1", &mut s2c)
        .expect("32 bytes is a valid HKDF length");
    (c2s, s2c)
}

fn nonce_for(counter: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_be_bytes());
    // Unique: the counter only grows, and each direction has its own key (invariant 1).
    Nonce::assume_unique_for_key(n)
}

/// The ChaCha20-Poly1305 key of one direction (boxed: `ring` keeps its expanded state
/// inline, which would make every enum holding a cipher that large).
fn aead_key(key: &[u8; 32]) -> Box<LessSafeKey> {
    Box::new(LessSafeKey::new(
        UnboundKey::new(&CHACHA20_POLY1305, key).expect("32 bytes is a ChaCha20-Poly1305 key"),
    ))
}

/// The sending half of one direction.
pub struct SendCipher {
    /// This direction's key.
    aead: Box<LessSafeKey>,
    /// The next frame's counter (its nonce).
    counter: u64,
}

impl SendCipher {
    /// A sender starting at counter 0.
    pub fn new(key: &[u8; 32]) -> SendCipher {
        SendCipher {
            aead: aead_key(key),
            counter: 0,
        }
    }

    /// Seal in place: `frame[..4]` is reserved for the length prefix and `frame[4..]`
    /// holds the plaintext; afterwards `frame` is the complete wire frame.
    pub fn seal_in_place(&mut self, frame: &mut Vec<u8>) -> Result<(), SessionError> {
        assert!(
            frame.len() >= LEN_BYTES,
            "frame must reserve the length prefix"
        );
        if self.counter == u64::MAX {
            return Err(SessionError::Exhausted);
        }
        let body_len = frame.len() - LEN_BYTES + TAG_LEN;
        let lb = (body_len as u32).to_be_bytes();
        frame[..LEN_BYTES].copy_from_slice(&lb);
        let tag = self
            .aead
            .seal_in_place_separate_tag(
                nonce_for(self.counter),
                Aad::from(lb),
                &mut frame[LEN_BYTES..],
            )
            .map_err(|_| SessionError::Exhausted)?;
        frame.extend_from_slice(tag.as_ref());
        self.counter += 1;
        Ok(())
    }

    /// Seal a plaintext into a new wire frame.
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, SessionError> {
        let mut f = Vec::with_capacity(LEN_BYTES + plaintext.len() + TAG_LEN);
        f.extend_from_slice(&[0u8; LEN_BYTES]);
        f.extend_from_slice(plaintext);
        self.seal_in_place(&mut f)?;
        Ok(f)
    }

    /// Frames sealed so far.
    pub fn counter(&self) -> u64 {
        self.counter
    }
}

/// The receiving half of one direction.
pub struct RecvCipher {
    /// This direction's key.
    aead: Box<LessSafeKey>,
    /// The counter (nonce) the next frame must have been sealed with.
    counter: u64,
}

impl RecvCipher {
    /// A receiver expecting counter 0.
    pub fn new(key: &[u8; 32]) -> RecvCipher {
        RecvCipher {
            aead: aead_key(key),
            counter: 0,
        }
    }

    /// Open a sealed body in place (`len_prefix` is the frame's 4 length bytes); on
    /// success `body` holds the plaintext.
    pub fn open_in_place(
        &mut self,
        len_prefix: &[u8; 4],
        body: &mut Vec<u8>,
    ) -> Result<(), SessionError> {
        if body.len() < TAG_LEN {
            return Err(SessionError::Short(body.len()));
        }
        if self.counter == u64::MAX {
            return Err(SessionError::Exhausted);
        }
        let split = body.len() - TAG_LEN;
        self.aead
            .open_in_place(nonce_for(self.counter), Aad::from(*len_prefix), body)
            .map_err(|_| SessionError::BadFrame {
                counter: self.counter,
            })?;
        body.truncate(split);
        self.counter += 1;
        Ok(())
    }

    /// Account for a frame without authenticating or decrypting it (`sfs-bench
    /// --verify sample` only: the bytes are counted, never used).
    pub fn skip(&mut self) {
        self.counter += 1;
    }

    /// Frames opened (or skipped) so far.
    pub fn counter(&self) -> u64 {
        self.counter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (SendCipher, RecvCipher) {
        let k = Key::generate();
        let (c2s, _) = derive_keys(&k, &fresh_nonce(), &fresh_nonce());
        (SendCipher::new(&c2s), RecvCipher::new(&c2s))
    }

    fn split(f: &[u8]) -> ([u8; 4], Vec<u8>) {
        ([f[0], f[1], f[2], f[3]], f[4..].to_vec())
    }

    #[test]
    fn frames_are_rfc_8439_chacha20_poly1305_as_the_pure_rust_crate_makes_them() {
        use chacha20poly1305::aead::{AeadInPlace, KeyInit};
        let key = [9u8; 32];
        let other = chacha20poly1305::ChaCha20Poly1305::new((&key).into());
        let nonce = |c: u64| {
            let mut n = [0u8; 12];
            n[4..].copy_from_slice(&c.to_be_bytes());
            chacha20poly1305::Nonce::from(n)
        };
        let mut s = SendCipher::new(&key);
        let mut r = RecvCipher::new(&key);
        for (c, len) in [(0u64, 0usize), (1, 1), (2, 1000), (3, 600_000)] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 7 + c as usize) as u8).collect();
            // Ours seals, the other opens.
            let f = s.seal(&plain).unwrap();
            let (lp, mut body) = split(&f);
            let at = body.len() - TAG_LEN;
            let tag = chacha20poly1305::Tag::clone_from_slice(&body[at..]);
            body.truncate(at);
            other
                .decrypt_in_place_detached(&nonce(c), &lp, &mut body, &tag)
                .unwrap();
            assert!(body == plain, "frame {c}");
            // The other seals, ours opens.
            let mut body = plain.clone();
            let lp = ((len + TAG_LEN) as u32).to_be_bytes();
            let tag = other
                .encrypt_in_place_detached(&nonce(c), &lp, &mut body)
                .unwrap();
            body.extend_from_slice(&tag);
            r.open_in_place(&lp, &mut body).unwrap();
            assert!(body == plain, "frame {c}");
        }
    }

    #[test]
    fn handshake_proofs() {
        let k = Key::generate();
        let (nc, ns) = (fresh_nonce(), fresh_nonce());
        let sp = server_proof(&k, "u", &nc, &ns);
        assert!(verify_server_proof(&k, "u", &nc, &ns, &sp).is_ok());
        assert!(
            verify_client_proof(&k, "u", &nc, &ns, &sp).is_err(),
            "labels separate"
        );
        let cp = client_proof(&k, "u", &nc, &ns);
        assert!(verify_client_proof(&k, "u", &nc, &ns, &cp).is_ok());
        let wrong = Key::generate();
        assert!(verify_client_proof(&wrong, "u", &nc, &ns, &cp).is_err());
        assert!(verify_client_proof(&k, "v", &nc, &ns, &cp).is_err());
        let (u, n) = parse_client_hello(&client_hello("alice", &nc)).unwrap();
        assert_eq!((u.as_str(), n), ("alice", nc));
        assert!(parse_client_hello(b"XXXX\x01\x00").is_err());
        let (c2s, s2c) = derive_keys(&k, &nc, &ns);
        assert_ne!(c2s, s2c);
        assert_ne!(
            derive_keys(&k, &fresh_nonce(), &ns).0,
            c2s,
            "fresh per session"
        );
    }

    #[test]
    fn seal_open_round_trip() {
        let (mut s, mut r) = pair();
        for msg in [&b""[..], b"hello", &[7u8; 70000]] {
            let f = s.seal(msg).unwrap();
            let (lb, mut body) = split(&f);
            r.open_in_place(&lb, &mut body).unwrap();
            assert_eq!(body, msg);
        }
    }

    #[test]
    fn tamper_replay_reorder_truncate_fail() {
        let (mut s, mut r) = pair();
        let f0 = s.seal(b"zero").unwrap();
        let f1 = s.seal(b"one").unwrap();
        // Reorder: f1 first.
        let (lb, mut b) = split(&f1);
        assert_eq!(
            r.open_in_place(&lb, &mut b),
            Err(SessionError::BadFrame { counter: 0 })
        );
        // Tamper.
        let mut t = f0.clone();
        t[5] ^= 1;
        let (lb, mut b) = split(&t);
        assert!(r.open_in_place(&lb, &mut b).is_err());
        // Truncate (length prefix adjusted too).
        let mut tr = f0[..f0.len() - 1].to_vec();
        let l = (tr.len() - 4) as u32;
        tr[..4].copy_from_slice(&l.to_be_bytes());
        let (lb, mut b) = split(&tr);
        assert!(r.open_in_place(&lb, &mut b).is_err());
        // The genuine frame still opens, then a replay of it fails.
        let (lb, mut b) = split(&f0);
        r.open_in_place(&lb, &mut b).unwrap();
        let (lb, mut b) = split(&f0);
        assert!(r.open_in_place(&lb, &mut b).is_err());
        let (lb, mut b) = split(&f1);
        r.open_in_place(&lb, &mut b).unwrap();
        assert_eq!(b, b"one");
    }
}
