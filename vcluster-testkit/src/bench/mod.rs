//! The harness the benchmarks share: settings from the environment,
//! statistics, the one-line `BENCH` reports, allocation and RSS counters,
//! API servers (in this process or in a child process), raw HTTP clients
//! and the objects the benchmarks write.
//!
//! The benchmarks are `harness = false` binaries of the facade
//! (`benches/`); see docs/benchmarks.md.

pub mod fixtures;
pub mod http;
pub mod memory;
pub mod report;
pub mod servers;
pub mod stats;

use std::time::Duration;

/// `VCLUSTER_BENCH_QUICK=1`: smaller sizes and fewer samples, for a
/// smoke run (the numbers are then only indicative).
pub fn quick() -> bool {
    matches!(std::env::var("VCLUSTER_BENCH_QUICK"), Ok(v) if !v.is_empty() && v != "0")
}

/// A whole number from the environment, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a whole number")),
        Err(_) => default,
    }
}

/// A comma-separated list of whole numbers from the environment, or
/// `default`.
pub fn env_sizes(name: &str, default: &[usize]) -> Vec<usize> {
    match std::env::var(name) {
        Ok(text) => text
            .split(',')
            .map(|part| {
                part.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}={text:?}: {part:?} is not a whole number"))
            })
            .collect(),
        Err(_) => default.to_vec(),
    }
}

/// The runtime every bench runs on: one worker per core, as a server
/// would have.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime can be built")
}

/// Polls `done` every few milliseconds (fine enough to time how soon
/// work settles) until it holds or `deadline` passes; returns whether it
/// held. A bench reports a failure itself, so this does not panic.
pub async fn wait_until(deadline: Duration, mut done: impl FnMut() -> bool) -> bool {
    crate::poll(deadline, Duration::from_millis(5), || {
        let held = done();
        async move {
            if held {
                Ok(())
            } else {
                Err(String::new())
            }
        }
    })
    .await
    .is_ok()
}
