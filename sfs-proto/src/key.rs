//! User keys: a user's 256-bit secret, its key file, and the user names keys belong to.
//!
//! Invariants:
//! 1. A key is exactly 256 bits of randomness from the OS generator; on disk it is 64
//!    lowercase hex digits and a newline.
//! 2. A key file is created with mode 0600 (never world- or group-readable), as a new
//!    file: an existing file with looser permissions is removed, not reused
//!    ([`write_private`], which the server's key table uses too).
//! 3. User names are non-empty, at most [`MAX_USER_LEN`] bytes of `[A-Za-z0-9._-]`
//!    ([`check_user_name`]): the handshake refuses any other ([`crate::session`]).
//! 4. A key never appears in a `Debug` output.

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use rand::RngCore;

/// Longest accepted user name in bytes.
pub const MAX_USER_LEN: usize = 64;

/// A user's 256-bit secret key.
#[derive(Clone, PartialEq, Eq)]
pub struct Key(pub [u8; 32]);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<secret>)")
    }
}

impl Key {
    /// A fresh random key.
    pub fn generate() -> Key {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        Key(k)
    }

    /// Lowercase hex, 64 digits.
    pub fn to_hex(&self) -> String {
        hex_encode(&self.0)
    }

    /// Parse 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(s: &str) -> Result<Key> {
        let s = s.trim();
        let bytes = hex_decode(s).context("key is not hex")?;
        if bytes.len() != 32 {
            bail!(
                "key must be 32 bytes (64 hex digits), got {} bytes",
                bytes.len()
            );
        }
        let mut k = [0u8; 32];
        k.copy_from_slice(&bytes);
        Ok(Key(k))
    }

    /// Read a key file written by [`Key::write_file`].
    pub fn read_file(path: &Path) -> Result<Key> {
        let s = fs::read_to_string(path)
            .with_context(|| format!("reading key file {}", path.display()))?;
        Key::from_hex(&s).with_context(|| format!("parsing key file {}", path.display()))
    }

    /// Write the key to `path` with mode 0600 (replacing any existing file).
    pub fn write_file(&self, path: &Path) -> Result<()> {
        write_private(path, format!("{}\n", self.to_hex()).as_bytes())
    }
}

/// Validate a user name (see the module invariants).
pub fn check_user_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_USER_LEN {
        bail!("user name must be 1..={MAX_USER_LEN} bytes");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        bail!("user name {name:?} may only contain [A-Za-z0-9._-]");
    }
    Ok(())
}

/// A temporary name in the directory of `path` (same file system, so a rename is atomic).
pub fn tmp_beside(path: &Path) -> std::path::PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp{}", std::process::id()))
}

/// Writes `data` to a new file at `path` with mode 0600, synced to disk (invariant 2).
pub fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    // Remove first so an existing file with looser permissions is not reused.
    let _ = fs::remove_file(path);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    Ok(())
}

/// Lowercase hex encoding.
pub fn hex_encode(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(D[(x >> 4) as usize] as char);
        s.push(D[(x & 15) as usize] as char);
    }
    s
}

/// Hex decoding (either case).
pub fn hex_decode(s: &str) -> Result<Vec<u8>> {
    let b = s.as_bytes();
    if b.len() % 2 != 0 {
        bail!("odd number of hex digits");
    }
    fn nib(c: u8) -> Result<u8> {
        Ok(match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => bail!("bad hex digit {:?}", c as char),
        })
    }
    b.chunks(2)
        .map(|p| Ok(nib(p[0])? << 4 | nib(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn hex_round_trip() {
        let k = Key::generate();
        assert_eq!(Key::from_hex(&k.to_hex()).unwrap(), k);
        assert!(Key::from_hex("abcd").is_err());
        assert!(Key::from_hex(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn bad_user_names_rejected() {
        assert!(check_user_name("").is_err());
        assert!(check_user_name("a b").is_err());
        assert!(check_user_name("../x").is_err());
        assert!(check_user_name(&"a".repeat(MAX_USER_LEN + 1)).is_err());
        assert!(check_user_name(&"a".repeat(MAX_USER_LEN)).is_ok());
        assert!(check_user_name("ok-user_1.x").is_ok());
    }

    #[test]
    fn key_files_are_private() {
        let d = tempfile::tempdir().unwrap();
        let kf = d.path().join("alice.key");
        std::fs::write(&kf, "old").unwrap();
        std::fs::set_permissions(&kf, std::fs::Permissions::from_mode(0o644)).unwrap();
        let k = Key::generate();
        k.write_file(&kf).unwrap();
        assert_eq!(Key::read_file(&kf).unwrap(), k);
        let mode = std::fs::metadata(&kf).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
