//! What the integration tests and benchmarks share (one copy of each):
//!
//! - [`eventually`] and [`eventually_or`]: poll a check until it passes or a deadline, never
//!   sleep for a guessed time;
//! - [`cluster::Cluster`]: N real regions in this process on loopback, with a [`Relay`] on
//!   every link, and settings as parameters;
//! - [`ports::Ports`]: free loopback ports for regions started as child processes;
//! - [`redis_server::RedisServer`]: a real `redis-server` for the differential tests.

// Test support: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod cluster;
pub mod ports;
pub mod redis_server;

pub use sessionmesh::relay::Relay;

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `check` every 20 ms until it returns `Ok`; panics with its last reason after
/// `deadline`.
pub async fn eventually<F, Fut>(what: &str, deadline: Duration, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    eventually_or(what, deadline, check, String::new).await
}

/// Like [`eventually`], appending `context()` (a node's log, say) to the panic message.
pub async fn eventually_or<F, Fut, C>(what: &str, deadline: Duration, mut check: F, context: C)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
    C: FnOnce() -> String,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(()) => return,
            Err(why) if start.elapsed() > deadline => {
                panic!(
                    "timed out after {deadline:?} waiting for {what}: {why}{}",
                    context()
                )
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}
