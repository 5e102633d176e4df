//! The programs the tests run. `sfs-server` is this package's own (`CARGO_BIN_EXE_*`);
//! `sfs-client` and `sfs-bench` belong to the `sfs-client` package, and Cargo tells a test
//! only where its own package's programs are. Cargo builds them into the same directory as
//! `sfs-server` whenever the client package is tested in the same run (`cargo test -p
//! sfs-server -p sfs-client`, or the workspace: the client's own integration tests make
//! Cargo build its programs).
//!
//! A client program that is missing, or older than a source file it is built from, fails
//! the test with the command that builds it: a test never runs an old program.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::SystemTime;

/// The `sfs-server` program.
pub const SERVER: &str = env!("CARGO_BIN_EXE_sfs-server");

/// The `sfs-client` program (checked, see the module documentation).
pub fn client() -> &'static str {
    static CHECKED: OnceLock<String> = OnceLock::new();
    CHECKED.get_or_init(|| client_program("sfs-client"))
}

/// The `sfs-bench` program (checked, see the module documentation).
pub fn bench() -> &'static str {
    static CHECKED: OnceLock<String> = OnceLock::new();
    CHECKED.get_or_init(|| client_program("sfs-bench"))
}

/// The path of the client package's program `name`, beside `sfs-server`, after checking it
/// exists and is newer than the sources of the packages it is built from.
fn client_program(name: &str) -> String {
    let bin = Path::new(SERVER).with_file_name(name);
    let how = "build it in the same profile as this test, e.g. `cargo test -p sfs-server -p \
               sfs-client` (Cargo gives a test only its own package's programs)";
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{} is missing ({e}): {how}", bin.display()));
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace holds this package");
    for package in ["sfs-client", "sfs-proto", "edge"] {
        let dir = workspace.join(package);
        if let Some((path, changed)) = newest(&dir) {
            assert!(
                changed <= built,
                "{} is older than {}: {how}",
                bin.display(),
                path.display()
            );
        }
    }
    bin.into_os_string()
        .into_string()
        .expect("the target directory's path is UTF-8")
}

/// The most recently modified file under `dir` (its manifest and sources; `target/` and
/// hidden entries are skipped) and when it was modified.
fn newest(dir: &Path) -> Option<(PathBuf, SystemTime)> {
    let mut best: Option<(PathBuf, SystemTime)> = None;
    let mut stack = vec![dir.join("Cargo.toml"), dir.join("src")];
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            for e in std::fs::read_dir(&p).into_iter().flatten().flatten() {
                if !e.file_name().to_string_lossy().starts_with('.') {
                    stack.push(e.path());
                }
            }
        } else if let Ok(m) = meta.modified() {
            if best.as_ref().map_or(true, |(_, t)| m > *t) {
                best = Some((p, m));
            }
        }
    }
    best
}
