//! The environment a figure was measured on: printed and stored beside every result.

use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct Env {
    pub git_commit: String,
    pub cpu_model: String,
    pub cores: usize,
    pub kernel: String,
    pub rustc: String,
    pub cycles_per_sec: f64,
    pub hostname: String,
}

impl Env {
    pub fn detect() -> Env {
        let git_commit = std::process::Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        Env {
            git_commit,
            cpu_model,
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            kernel,
            rustc: env!("MICROBENCHES_RUSTC").to_string(),
            cycles_per_sec: colored_runtime::tsc::cycles_per_sec(),
            hostname,
        }
    }
}
