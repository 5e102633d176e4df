//! Opaque, MAC'ed file handles.
//!
//! A handle names a file by its identity (`dev`, `ino`) and by the path, relative to
//! the export root, at which it was looked up: `version | dev | ino | path | mac`, with
//! `mac = HMAC-SHA256(server fh key, everything before)[..16]`. Invariants:
//! 1. The fh key is random per server process and never leaves it, so a client cannot
//!    make a handle: forging or altering any byte fails verification
//!    ([`Status::BadHandle`]), checked in constant time.
//! 2. Even a verified handle's path is re-validated component by component (no empty,
//!    `.`, `..`, `/` or NUL components), so a handle can never name anything outside the
//!    export (defence in depth behind the MAC).
//! 3. A handle whose path no longer leads to the same (`dev`, `ino`) is stale
//!    ([`Status::Stale`]); that check belongs to the server's export (`sfs_server::fs`),
//!    the one place that opens files.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::messages::{Fh, Status, MAX_FH, MAX_NAME};

const FH_VERSION: u8 = 1;
const MAC_LEN: usize = 16;
/// Longest relative path a handle can carry.
pub const MAX_PATH: usize = 4096;

/// What a verified handle says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandleData {
    /// Device of the file.
    pub dev: u64,
    /// Inode of the file (the NFS file id).
    pub ino: u64,
    /// Path relative to the export root, components joined by `/`; empty for the root.
    pub path: String,
}

impl HandleData {
    /// The path's components (none for the root).
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.path.split('/').filter(|c| !c.is_empty())
    }

    /// The path of `name` inside this directory.
    pub fn child_path(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}/{}", self.path, name)
        }
    }
}

/// Check one path component: what LOOKUP, CREATE, REMOVE and RENAME accept.
pub fn check_name(name: &str) -> Result<(), Status> {
    if name.len() > MAX_NAME {
        return Err(Status::NameTooLong);
    }
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(Status::Inval);
    }
    Ok(())
}

/// The server's handle-sealing key.
pub struct FhKey([u8; 32]);

impl FhKey {
    /// A fresh random key.
    pub fn random() -> FhKey {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        FhKey(k)
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any key length")
    }

    /// Make the opaque handle for `d`.
    pub fn seal(&self, d: &HandleData) -> Fh {
        let mut v = Vec::with_capacity(1 + 16 + 2 + d.path.len() + MAC_LEN);
        v.push(FH_VERSION);
        v.extend_from_slice(&d.dev.to_be_bytes());
        v.extend_from_slice(&d.ino.to_be_bytes());
        v.extend_from_slice(&(d.path.len() as u16).to_be_bytes());
        v.extend_from_slice(d.path.as_bytes());
        let mut m = self.mac();
        m.update(&v);
        let tag = m.finalize().into_bytes();
        v.extend_from_slice(&tag[..MAC_LEN]);
        Fh(v)
    }

    /// Verify and decode a handle.
    pub fn open(&self, fh: &Fh) -> Result<HandleData, Status> {
        let b = &fh.0;
        if b.len() < 1 + 16 + 2 + MAC_LEN || b.len() > MAX_FH || b[0] != FH_VERSION {
            return Err(Status::BadHandle);
        }
        let (body, tag) = b.split_at(b.len() - MAC_LEN);
        let mut m = self.mac();
        m.update(body);
        m.verify_truncated_left(tag)
            .map_err(|_| Status::BadHandle)?;
        let dev = u64::from_be_bytes(body[1..9].try_into().unwrap());
        let ino = u64::from_be_bytes(body[9..17].try_into().unwrap());
        let plen = u16::from_be_bytes(body[17..19].try_into().unwrap()) as usize;
        if body.len() != 19 + plen || plen > MAX_PATH {
            return Err(Status::BadHandle);
        }
        let path = std::str::from_utf8(&body[19..]).map_err(|_| Status::BadHandle)?;
        if !path.is_empty() {
            for c in path.split('/') {
                check_name(c).map_err(|_| Status::BadHandle)?;
            }
        }
        Ok(HandleData {
            dev,
            ino,
            path: path.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hd(path: &str) -> HandleData {
        HandleData {
            dev: 3,
            ino: 99,
            path: path.into(),
        }
    }

    #[test]
    fn round_trip_and_forgery() {
        let k = FhKey::random();
        for p in ["", "a", "dir/sub/file.txt"] {
            assert_eq!(k.open(&k.seal(&hd(p))).unwrap(), hd(p));
        }
        let fh = k.seal(&hd("a/b"));
        for i in 0..fh.0.len() {
            let mut f = fh.clone();
            f.0[i] ^= 0x20;
            assert_eq!(k.open(&f), Err(Status::BadHandle), "byte {i} altered");
        }
        let other = FhKey::random();
        assert_eq!(other.open(&fh), Err(Status::BadHandle));
        assert_eq!(k.open(&Fh(vec![1; 10])), Err(Status::BadHandle));
        assert_eq!(k.open(&Fh(vec![])), Err(Status::BadHandle));
    }

    #[test]
    fn escaping_paths_refused_even_with_valid_mac() {
        let k = FhKey::random();
        for p in ["..", "a/../../etc", "/etc", "a//b", "./x"] {
            assert_eq!(k.open(&k.seal(&hd(p))), Err(Status::BadHandle), "{p}");
        }
    }

    #[test]
    fn names() {
        assert!(check_name("ok.txt").is_ok());
        for n in ["", ".", "..", "a/b", "a\0b"] {
            assert_eq!(check_name(n), Err(Status::Inval));
        }
        assert_eq!(check_name(&"x".repeat(256)), Err(Status::NameTooLong));
    }
}
