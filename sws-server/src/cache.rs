//! The response cache: every regular file under the document root, read once at start-up
//! and turned into its four prebuilt responses (see `response`).
//!
//! Invariants:
//! * Built once, then immutable: lookups need no lock and any worker may do them.
//! * Only files whose canonical path lies inside the canonical root are cached (symlinks
//!   are followed, then checked with [`DocRoot::contains`]), and requests are served only
//!   from the cache: what is not here is a 404, never a file system read.
//! * Keys are normalized targets (see [`crate::path::normalize_target`]): a file's key is
//!   its path relative to the root, with the symlinks that lead to it left unresolved, the
//!   way clients name it. A directory that holds `index.html` is also reachable by its own
//!   key (`/` and `/dir`).
//! * The walk is bounded: at most [`CacheLimits::max_files`] files, [`CacheLimits::max_bytes`]
//!   bytes and [`MAX_DEPTH`] directory levels, and a directory reached twice through
//!   symlinks is walked once.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use crate::http::Method;
use crate::path::DocRoot;
use crate::response::{Prebuilt, Variants};

/// Deepest directory nesting walked.
pub const MAX_DEPTH: usize = 32;

/// Bounds on what is loaded into memory.
#[derive(Clone, Copy, Debug)]
pub struct CacheLimits {
    pub max_files: usize,
    pub max_bytes: u64,
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits {
            max_files: 1_000_000,
            max_bytes: 2 << 30,
        }
    }
}

/// What the walk skipped, for the start-up log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheReport {
    pub files: usize,
    pub bytes: u64,
    /// Symlinks that lead outside the root.
    pub outside_root: usize,
    /// Files or directories that could not be read, or past a limit.
    pub skipped: usize,
}

/// The immutable map from cache key to prebuilt responses.
#[derive(Debug, Default)]
pub struct Cache {
    /// Key -> index into `variants`. Requests carry the index from CheckInCache to
    /// WriteResponse, so no reference count is touched on the hot path.
    entries: HashMap<Box<[u8]>, u32>,
    variants: Vec<Variants>,
}

impl Cache {
    /// Walks `root` and prebuilds every file's responses.
    pub fn build(root: &DocRoot, limits: CacheLimits) -> io::Result<(Cache, CacheReport)> {
        let mut w = Walker {
            root,
            limits,
            cache: Cache::default(),
            report: CacheReport::default(),
            seen: HashSet::new(),
        };
        w.seen.insert(root.canonical().to_path_buf());
        w.walk(root.canonical(), b"", 0)?;
        Ok((w.cache, w.report))
    }

    /// Builds a cache from in-memory files (for tests and benchmarks): `(key, body)`.
    pub fn from_files<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Cache {
        let mut c = Cache::default();
        for (k, body) in files {
            c.insert(k.as_bytes(), Arc::from(body));
        }
        c
    }

    fn insert(&mut self, key: &[u8], body: Arc<[u8]>) {
        let ct = content_type(key);
        let index = u32::try_from(self.variants.len()).expect("fewer than 2^32 files");
        self.variants.push(Variants::build(200, ct, body, ""));
        if let Some(dir) = key.strip_suffix(b"/index.html") {
            let dir_key: &[u8] = if dir.is_empty() { b"/" } else { dir };
            self.entries.insert(dir_key.into(), index);
        }
        self.entries.insert(key.into(), index);
    }

    /// The index of a normalized key's responses.
    pub fn index_of(&self, key: &[u8]) -> Option<u32> {
        self.entries.get(key).copied()
    }

    /// The responses at an index returned by [`Cache::index_of`].
    pub fn variants(&self, index: u32) -> &Variants {
        &self.variants[index as usize]
    }

    /// The responses for a normalized key.
    pub fn lookup(&self, key: &[u8]) -> Option<&Variants> {
        self.index_of(key).map(|i| self.variants(i))
    }

    /// The response for a key, method and connection mode.
    pub fn response(&self, key: &[u8], method: Method, keep_alive: bool) -> Option<&Prebuilt> {
        self.lookup(key).map(|v| v.get(method, keep_alive))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every key, for tests and the start-up log.
    pub fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.entries.keys().map(|k| &**k)
    }
}

struct Walker<'a> {
    root: &'a DocRoot,
    limits: CacheLimits,
    cache: Cache,
    report: CacheReport,
    /// Canonical directories already walked (symlink loops, duplicates).
    seen: HashSet<std::path::PathBuf>,
}

impl Walker<'_> {
    fn walk(&mut self, dir: &Path, key_prefix: &[u8], depth: usize) -> io::Result<()> {
        let rd = match fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if depth == 0 => return Err(e),
            Err(_) => {
                self.report.skipped += 1;
                return Ok(());
            }
        };
        let mut names: Vec<_> = rd.filter_map(Result::ok).map(|e| e.file_name()).collect();
        names.sort();
        for name in names {
            let mut key = key_prefix.to_vec();
            key.push(b'/');
            key.extend_from_slice(name.as_bytes());
            let Ok(real) = dir.join(&name).canonicalize() else {
                self.report.skipped += 1; // dangling symlink or vanished entry
                continue;
            };
            if !self.root.contains(&real) {
                self.report.outside_root += 1;
                continue;
            }
            let Ok(meta) = fs::metadata(&real) else {
                self.report.skipped += 1;
                continue;
            };
            if meta.is_dir() {
                if depth + 1 >= MAX_DEPTH || !self.seen.insert(real.clone()) {
                    self.report.skipped += 1;
                    continue;
                }
                // Walk through the logical path so keys keep the names clients use.
                self.walk(&dir.join(&name), &key, depth + 1)?;
            } else if meta.is_file() {
                if self.report.files >= self.limits.max_files
                    || self.report.bytes + meta.len() > self.limits.max_bytes
                {
                    self.report.skipped += 1;
                    continue;
                }
                match fs::read(&real) {
                    Ok(body) => {
                        self.report.files += 1;
                        self.report.bytes += body.len() as u64;
                        self.cache.insert(&key, body.into());
                    }
                    Err(_) => self.report.skipped += 1,
                }
            }
        }
        Ok(())
    }
}

/// Content-Type from the file extension.
pub fn content_type(key: &[u8]) -> &'static str {
    let name = key.rsplit(|&b| b == b'/').next().unwrap_or(key);
    let ext = match name.iter().rposition(|&b| b == b'.') {
        Some(i) => &name[i + 1..],
        None => return "application/octet-stream",
    };
    let ext = ext.to_ascii_lowercase();
    match &ext[..] {
        b"html" | b"htm" => "text/html",
        b"css" => "text/css",
        b"js" | b"mjs" => "text/javascript",
        b"json" => "application/json",
        b"txt" => "text/plain",
        b"xml" => "application/xml",
        b"svg" => "image/svg+xml",
        b"png" => "image/png",
        b"jpg" | b"jpeg" => "image/jpeg",
        b"gif" => "image/gif",
        b"webp" => "image/webp",
        b"ico" => "image/x-icon",
        b"pdf" => "application/pdf",
        b"wasm" => "application/wasm",
        b"woff2" => "font/woff2",
        b"woff" => "font/woff",
        b"mp4" => "video/mp4",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(content_type(b"/a/b.HTML"), "text/html");
        assert_eq!(content_type(b"/x.css"), "text/css");
        assert_eq!(content_type(b"/noext"), "application/octet-stream");
        assert_eq!(content_type(b"/dir.d/noext"), "application/octet-stream");
        assert_eq!(content_type(b"/a.tar.gz"), "application/octet-stream");
        assert_eq!(content_type(b"/p.png"), "image/png");
    }

    #[test]
    fn walk_builds_every_file_and_refuses_escapes() {
        let base = std::env::temp_dir().join(format!("sws-cache-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let root = base.join("root");
        fs::create_dir_all(root.join("sub/deeper")).unwrap();
        fs::write(root.join("index.html"), b"<h1>home</h1>").unwrap();
        fs::write(root.join("sub/a.txt"), b"aaa").unwrap();
        fs::write(root.join("sub/deeper/index.html"), b"deep").unwrap();
        fs::write(base.join("secret.txt"), b"secret").unwrap();
        std::os::unix::fs::symlink(base.join("secret.txt"), root.join("leak.txt")).unwrap();
        std::os::unix::fs::symlink(&base, root.join("up")).unwrap();
        std::os::unix::fs::symlink(root.join("sub"), root.join("sub-link")).unwrap();
        std::os::unix::fs::symlink(&root, root.join("sub/loop")).unwrap();

        let dr = DocRoot::new(&root).unwrap();
        let (cache, report) = Cache::build(&dr, CacheLimits::default()).unwrap();
        let body = |k: &str| {
            cache
                .response(k.as_bytes(), Method::Get, true)
                .and_then(|p| p.body.clone())
                .map(|b| b.to_vec())
        };
        assert_eq!(body("/index.html").unwrap(), b"<h1>home</h1>");
        assert_eq!(body("/").unwrap(), b"<h1>home</h1>");
        assert_eq!(body("/sub/a.txt").unwrap(), b"aaa");
        assert_eq!(body("/sub/deeper").unwrap(), b"deep");
        assert!(body("/leak.txt").is_none());
        assert!(body("/up/secret.txt").is_none());
        assert!(cache.keys().all(|k| !k.windows(6).any(|w| w == b"secret")));
        assert_eq!(report.outside_root, 2);
        // sub-link and sub/loop lead to directories already walked: each is walked once.
        assert_eq!(report.files, 3);
        let head = cache.response(b"/sub/a.txt", Method::Head, false).unwrap();
        assert!(head.body.is_none());
        assert!(String::from_utf8_lossy(&head.head).contains("Content-Length: 3\r\n"));
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn limits_are_enforced() {
        let base = std::env::temp_dir().join(format!("sws-cache-limit-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(&base).unwrap();
        for i in 0..5 {
            fs::write(base.join(format!("f{i}")), vec![b'x'; 100]).unwrap();
        }
        let dr = DocRoot::new(&base).unwrap();
        let (c, r) = Cache::build(
            &dr,
            CacheLimits {
                max_files: 10,
                max_bytes: 250,
            },
        )
        .unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(r.skipped, 3);
        fs::remove_dir_all(&base).unwrap();
    }
}
