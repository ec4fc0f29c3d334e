//! sessionmesh-sim: a deterministic, seeded world of regions running the real core.
//!
//! One discrete-event queue ordered by `(time, seq)`, one `ChaCha8Rng` per run, `n` regions
//! each driving a real [`sessionmesh_core::Replica`] through its sans-IO interface. The network
//! loses, duplicates, delays and reorders frames and is cut by one-way and two-way partitions;
//! regions crash (restarting from their snapshot, with frames in flight to them lost), their
//! wall clocks are offset, drift and step; session-shaped client traffic drives it all. After the
//! heal the world runs to quiescence and the oracles of [`oracle`] judge the result.
//!
//! Same seed and config ⇒ same trace hash ([`Outcome::trace_hash`]); a failing seed replays with
//! `cargo run --release -p sessionmesh-sim -- --seed S`.
//!
//! What this crate does not do: it never opens a socket, reads a clock or spawns a task, and it
//! does not test the node's IO shell (QUIC, RESP, persistence); those have their own tests.
//!
//! Modules:
//! - [`config`]: [`SimConfig`] knobs and the fault [`Schedule`] as data.
//! - [`latency`]: the one-way latency matrix, from `regions.toml` when it has one.
//! - [`net`]: the per-frame network rule and the connection (idle timeout / reconnect) model.
//! - [`clock`]: skewed, drifting, stepping wall clocks.
//! - [`workload`]: session-middleware-shaped clients with Zipf key popularity.
//! - [`oracle`]: the invariants checked during the run and at quiescence.
//! - [`world`]: the event loop that ties it together ([`run`]).
//! - [`outcome`]: [`Outcome`], [`Summary`], [`Violation`].
//! - [`trace`]: the run fingerprint.

pub mod clock;
pub mod config;
pub mod latency;
pub mod net;
pub mod oracle;
pub mod outcome;
pub mod trace;
pub mod workload;
pub mod world;

pub use config::{
    Chaos, ClockSpec, ClockStep, Crash, Cut, Disk, Partition, Schedule, SimConfig, Tuning,
};
pub use latency::LatencyMatrix;
pub use outcome::{Oracle, Outcome, Summary, Violation};
pub use world::{run, schedule_for};

/// Runs seeds `seeds` under `cfg` on `jobs` threads and returns the outcomes in seed order (so
/// combining them is deterministic whatever the thread count).
pub fn sweep(seeds: std::ops::Range<u64>, cfg: &SimConfig, jobs: usize) -> Vec<(u64, Outcome)> {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;
    let next = AtomicU64::new(seeds.start);
    let results = Mutex::new(Vec::with_capacity((seeds.end - seeds.start) as usize));
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= seeds.end {
                    break;
                }
                let out = run(seed, cfg);
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((seed, out));
            });
        }
    });
    let mut v = results.into_inner().unwrap_or_else(|e| e.into_inner());
    v.sort_by_key(|(s, _)| *s);
    v
}

/// The combined fingerprint of several runs, in the order given.
pub fn combined_trace(outcomes: &[(u64, Outcome)]) -> u64 {
    let mut h = trace::TraceHash::new();
    for (seed, o) in outcomes {
        h.words(&[*seed, o.trace_hash]);
    }
    h.finish()
}
