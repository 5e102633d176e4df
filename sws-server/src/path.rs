//! Mapping request targets to files under the document root, with no way out of it.
//!
//! Two layers, both required to let a file be served:
//! 1. [`normalize_target`] turns a request target into a *cache key*: the query and fragment
//!    are cut, `%XX` escapes are decoded exactly once (an invalid escape is a 400), a decoded
//!    NUL is a 400, empty and `.` segments are dropped, and `..` removes the previous segment;
//!    a `..` with nothing left to remove is a 400. The key is `/` followed by the remaining
//!    segments joined with `/`, so it contains no `.`/`..` segment, no `//` and no NUL.
//! 2. [`DocRoot`] is the canonicalized root. [`DocRoot::resolve`] joins a key to the root and
//!    canonicalizes the result (resolving every symlink) and accepts it only if it is still
//!    under the canonical root. The start-up cache is built only from paths that pass this
//!    check, and requests are answered only from the cache, so a request can never make the
//!    server read a file outside the root, whatever the encoding or symlink layout.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Why a target cannot name a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathError {
    /// Invalid `%` escape, a NUL byte, or a `..` that climbs above the root: 400.
    BadRequest,
}

/// Normalizes a request target (origin form, starting with `/`) into a cache key.
pub fn normalize_target(target: &[u8]) -> Result<Vec<u8>, PathError> {
    let end = target
        .iter()
        .position(|&b| b == b'?' || b == b'#')
        .unwrap_or(target.len());
    let decoded = percent_decode(&target[..end])?;
    if decoded.contains(&0) {
        return Err(PathError::BadRequest);
    }
    let mut segments: Vec<&[u8]> = Vec::new();
    for seg in decoded.split(|&b| b == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => {
                if segments.pop().is_none() {
                    return Err(PathError::BadRequest);
                }
            }
            s => segments.push(s),
        }
    }
    let mut key = Vec::with_capacity(decoded.len() + 1);
    for s in &segments {
        key.push(b'/');
        key.extend_from_slice(s);
    }
    if key.is_empty() {
        key.push(b'/');
    }
    Ok(key)
}

fn percent_decode(s: &[u8]) -> Result<Vec<u8>, PathError> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hi = s.get(i + 1).and_then(|&c| hex(c));
            let lo = s.get(i + 2).and_then(|&c| hex(c));
            match (hi, lo) {
                (Some(h), Some(l)) => out.push(h << 4 | l),
                _ => return Err(PathError::BadRequest),
            }
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The document root, canonicalized once.
#[derive(Clone, Debug)]
pub struct DocRoot {
    canonical: PathBuf,
}

impl DocRoot {
    pub fn new(root: &Path) -> io::Result<DocRoot> {
        let canonical = root.canonicalize()?;
        if !canonical.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "document root is not a directory",
            ));
        }
        Ok(DocRoot { canonical })
    }

    pub fn canonical(&self) -> &Path {
        &self.canonical
    }

    /// The canonical file system path of a cache key, if it exists and, once every symlink
    /// is resolved, is still inside the root.
    pub fn resolve(&self, key: &[u8]) -> Option<PathBuf> {
        let rel = key.strip_prefix(b"/").unwrap_or(key);
        if rel.contains(&0) {
            return None;
        }
        let joined = self.canonical.join(OsStr::from_bytes(rel));
        let real = joined.canonicalize().ok()?;
        self.contains(&real).then_some(real)
    }

    /// Whether a canonical path lies inside the root (the root itself included).
    pub fn contains(&self, canonical: &Path) -> bool {
        canonical.starts_with(&self.canonical)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Result<String, PathError> {
        normalize_target(s.as_bytes()).map(|k| String::from_utf8(k).unwrap())
    }

    #[test]
    fn normalization() {
        assert_eq!(n("/"), Ok("/".into()));
        assert_eq!(n("/a/b.html"), Ok("/a/b.html".into()));
        assert_eq!(n("//a///b/"), Ok("/a/b".into()));
        assert_eq!(n("/a/./b"), Ok("/a/b".into()));
        assert_eq!(n("/a/../b"), Ok("/b".into()));
        assert_eq!(n("/a/b?x=../../etc#frag"), Ok("/a/b".into()));
        assert_eq!(n("/hello%20world.txt"), Ok("/hello world.txt".into()));
        // Decoded exactly once: %252e%252e is the literal name "%2e%2e", not "..".
        assert_eq!(n("/%252e%252e/x"), Ok("/%2e%2e/x".into()));
        assert_eq!(n("/a/%2e%2e/b"), Ok("/b".into()));
    }

    #[test]
    fn escapes_are_refused() {
        for t in [
            "/..",
            "/../etc/passwd",
            "/a/../../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/%2E%2E%2Fetc",
            "/a/%2e%2e%2f%2e%2e%2fetc",
            "/..%2f..%2fetc",
            "/x%00.html",
            "/%00",
            "/bad%zz",
            "/bad%2",
            "/bad%",
        ] {
            assert_eq!(n(t), Err(PathError::BadRequest), "{t}");
        }
    }

    #[test]
    fn resolve_checks_symlinks() {
        let base = std::env::temp_dir().join(format!("sws-path-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/in.txt"), b"in").unwrap();
        std::fs::write(base.join("secret.txt"), b"secret").unwrap();
        std::os::unix::fs::symlink(base.join("secret.txt"), root.join("out-link")).unwrap();
        std::os::unix::fs::symlink(root.join("sub/in.txt"), root.join("in-link")).unwrap();
        std::os::unix::fs::symlink(&base, root.join("up-dir")).unwrap();
        let dr = DocRoot::new(&root).unwrap();
        assert!(dr.resolve(b"/sub/in.txt").is_some());
        assert!(dr.resolve(b"/in-link").is_some());
        assert!(dr.resolve(b"/out-link").is_none());
        assert!(dr.resolve(b"/up-dir/secret.txt").is_none());
        assert!(dr.resolve(b"/missing").is_none());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
