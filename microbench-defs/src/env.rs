//! The environment a figure was measured on, printed and stored beside every result: the
//! project's env schema ([`edge::env::Env`]) with the time-stamp counter's rate, since the
//! microbenchmarks report cycles.

pub use edge::env::Env;

/// This machine's environment, with `cycles_per_sec` measured.
pub fn detect() -> Env {
    let mut env = Env::collect(concat!("microbenches ", env!("CARGO_PKG_VERSION")));
    env.cycles_per_sec = Some(colored_runtime::tsc::cycles_per_sec());
    env
}
