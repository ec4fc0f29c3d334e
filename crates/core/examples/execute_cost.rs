//! How long the core takes per command, without any IO: the ceiling the node can reach on one
//! core if nothing else cost anything.
//!
//! Run: `cargo run --release -p sessionmesh-core --example execute_cost`

// Test code: a failed unwrap is a failed test, and nothing here is reachable from outside.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]
// An example is a driver, not the core: it may read the clock.
#![allow(clippy::disallowed_methods)]

use bytes::Bytes;
use sessionmesh_core::{Config, Now, RegionId, Replica};
use std::time::Instant;

/// A realistic wall clock (late 2025), so stamps encode at their real size.
const T0: u64 = 1_764_000_000_000;

fn main() {
    let ids = [RegionId(1), RegionId(2), RegionId(3)];
    let mut r = Replica::new(Config::new(ids[0], &ids));
    let n = 1_000_000u64;
    let keys: Vec<Bytes> = (0..100_000)
        .map(|i| Bytes::from(format!("key:{i:06}")))
        .collect();
    let value = Bytes::from(vec![b'x'; 3]);
    for (name, cmd) in [
        ("SET", &b"SET"[..]),
        ("GET", &b"GET"[..]),
        ("HSET", &b"HSET"[..]),
        ("EXPIRE", &b"EXPIRE"[..]),
    ] {
        let start = Instant::now();
        for i in 0..n {
            let key = keys[(i % keys.len() as u64) as usize].clone();
            let args: Vec<Bytes> = match name {
                "SET" => vec![Bytes::from_static(cmd), key, value.clone()],
                "GET" => vec![Bytes::from_static(cmd), key],
                "HSET" => vec![
                    Bytes::from_static(cmd),
                    Bytes::from(format!("h{}", i % 1000)),
                    key,
                    value.clone(),
                ],
                _ => vec![Bytes::from_static(cmd), key, Bytes::from_static(b"100")],
            };
            r.execute(&args, Now::at(T0 + i / 1000));
            if i % 500 == 0 {
                // A flush every few hundred commands, as the 2 ms timer would under load.
                r.handle_timeout(Now::at(T0 + i / 1000 + 10));
                while r
                    .poll_transmit()
                    .or_else(|| r.poll_catchup(|_| usize::MAX))
                    .is_some()
                {}
            }
        }
        let took = start.elapsed();
        println!(
            "{name:<7} {:>6.0} ns/command ({:.2} M/s)",
            took.as_nanos() as f64 / n as f64,
            n as f64 / took.as_secs_f64() / 1e6
        );
    }
}
