//! What a replica spends on each write another region makes, without any IO: decoding the
//! push frame, merging each delta into the key space, and encoding the journal records the
//! node's log writes. With three regions on one machine every write pays this twice, so it
//! bounds how close the demo cluster can come to a lone Redis (README, "Where throughput goes").
//!
//! Run: `cargo run --release -p sessionmesh-core --example apply_cost`

// Test code: a failed unwrap is a failed test, and nothing here is reachable from outside.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]
// An example is a driver, not the core: it may read the clock.
#![allow(clippy::disallowed_methods)]

use bytes::Bytes;
use sessionmesh_core::{Config, Now, RegionId, Replica};
use std::time::{Duration, Instant};

/// A realistic wall clock (late 2025), so stamps encode at their real size.
const T0: u64 = 1_764_000_000_000;
const KEYS: u64 = 100_000;

/// redis-benchmark's keys (`-r 100000`) and a 3-byte value, in a fixed pseudo-random order.
fn command(i: u64, hset: bool) -> Vec<Bytes> {
    let k = i.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17) % KEYS;
    let key = Bytes::from(format!("{}:{k:012}", if hset { "hash" } else { "key" }));
    if hset {
        vec![
            Bytes::from_static(b"HSET"),
            key,
            Bytes::from_static(b"f"),
            Bytes::from_static(b"xxx"),
        ]
    } else {
        vec![Bytes::from_static(b"SET"), key, Bytes::from_static(b"xxx")]
    }
}

fn main() {
    let ids = [RegionId(1), RegionId(2), RegionId(3)];
    let mut a = Replica::new(Config::new(ids[0], &ids));
    let mut b = Replica::new(Config {
        journal: true,
        ..Config::new(ids[1], &ids)
    });
    a.handle_connected(ids[1], Now::at(T0));
    b.handle_connected(ids[0], Now::at(T0));
    let mut t = 10;
    for hset in [false, true] {
        let name = if hset { "HSET" } else { "SET" };
        let n = 1_000_000u64;
        let (mut decode_apply, mut journal) = (Duration::ZERO, Duration::ZERO);
        let mut records = 0usize;
        let mut body = Vec::new();
        for i in 0..n {
            a.execute(&command(i, hset), Now::at(T0 + t));
            // A push every 200 writes, about what a 2 ms flush carries under load.
            if i % 200 == 199 {
                t += 2;
                a.handle_timeout(Now::at(T0 + t));
                while let Some(tx) = a.poll_transmit().or_else(|| a.poll_catchup(|_| usize::MAX)) {
                    if tx.to != ids[1] {
                        continue;
                    }
                    let start = Instant::now();
                    b.handle_frame(ids[0], &tx.bytes, Now::at(T0 + t)).unwrap();
                    decode_apply += start.elapsed();
                    let start = Instant::now();
                    let recs = b.ready().records;
                    records += recs.len();
                    body.clear();
                    rmp_serde::encode::write(&mut body, &recs).unwrap();
                    drop(recs);
                    journal += start.elapsed();
                }
                // Acks back to `a`, so its push history stays short.
                while let Some(tx) = b.poll_transmit().or_else(|| b.poll_catchup(|_| usize::MAX)) {
                    a.handle_frame(ids[1], &tx.bytes, Now::at(T0 + t)).unwrap();
                }
                let _ = a.ready();
            }
        }
        println!(
            "{name:<5} decode+apply {:>5.0} ns/write, journal {:>4.0} ns/write ({:.2} records/write)",
            decode_apply.as_nanos() as f64 / n as f64,
            journal.as_nanos() as f64 / n as f64,
            records as f64 / n as f64,
        );
    }
}
