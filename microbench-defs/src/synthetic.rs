//! The four library configurations of libasync-smp's `synthetic` table (the benchmark and its
//! real run: `microbenches::synthetic`).

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Config {
    Base,
    PerThreadQueues,
    FreeLists,
    Stealing,
}

impl Config {
    pub const ALL: [Config; 4] = [
        Config::Base,
        Config::PerThreadQueues,
        Config::FreeLists,
        Config::Stealing,
    ];
    pub fn label(self) -> &'static str {
        match self {
            Config::Base => "base (one shared spin-locked queue)",
            Config::PerThreadQueues => "per-thread queues",
            Config::FreeLists => "per-thread free lists (inline events)",
            Config::Stealing => "stealing",
        }
    }
}
