//! The environment a result was measured on, recorded beside every figure.

use std::process::Command;

use serde::{Deserialize, Serialize};

/// Where and with what a run was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Env {
    /// `git rev-parse HEAD` of the working directory, if it is a git tree.
    pub git_commit: Option<String>,
    /// CPU model name from /proc/cpuinfo.
    pub cpu_model: Option<String>,
    /// Cores available to the injector.
    pub cores: usize,
    /// Kernel release.
    pub kernel: Option<String>,
    /// Host name.
    pub hostname: Option<String>,
    /// `rustc --version`, when a toolchain is on the PATH.
    pub rustc: Option<String>,
    /// Version of this injector.
    pub injector_version: String,
}

fn cmd(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn read_trim(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

impl Env {
    /// Collects the environment of this host.
    pub fn collect() -> Env {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        });
        Env {
            git_commit: cmd("git", &["rev-parse", "HEAD"]),
            cpu_model,
            cores: crate::engine::available_cores(),
            kernel: read_trim("/proc/sys/kernel/osrelease"),
            hostname: read_trim("/proc/sys/kernel/hostname"),
            rustc: cmd("rustc", &["--version"]),
            injector_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}
