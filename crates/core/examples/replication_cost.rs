//! Measures what replication costs on the wire, with replicas wired directly (no sockets):
//!
//! 1. steady state: bytes sent per write when every write is flushed on its own, and when
//!    touches of the same sessions coalesce between flushes;
//! 2. catch-up after a partition: bytes and time to ship 100k changed keys, against the size of
//!    the current state of those keys (target: at most 1.2x).
//!
//! Run: `cargo run --release -p sessionmesh-core --example replication_cost`

// Test code: a failed unwrap is a failed test, and nothing here is reachable from outside.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]
// An example is a driver, not the core: it may read the clock to time the catch-up.
#![allow(clippy::disallowed_methods)]

use bytes::Bytes;
use sessionmesh_core::wire;
use sessionmesh_core::{Config, Now, RegionId, Replica};
use std::time::Instant;

/// A realistic wall clock (late 2025): stamps must encode at their real size for the byte
/// counts to mean anything.
const T0: u64 = 1_764_000_000_000;

fn args(line: &str) -> Vec<Bytes> {
    line.split_whitespace()
        .map(|s| Bytes::copy_from_slice(s.as_bytes()))
        .collect()
}

fn pair() -> (Replica, Replica) {
    let ids = [RegionId(1), RegionId(2)];
    let mut a = Replica::new(Config::new(ids[0], &ids));
    let mut b = Replica::new(Config::new(ids[1], &ids));
    a.handle_connected(ids[1], Now::at(T0));
    b.handle_connected(ids[0], Now::at(T0));
    (a, b)
}

/// Moves frames both ways until quiet; returns bytes carried a→b and b→a.
fn pump(a: &mut Replica, b: &mut Replica, t: u64) -> (u64, u64) {
    let (mut ab, mut ba) = (0, 0);
    loop {
        let mut moved = false;
        while let Some(tx) = a.poll_transmit().or_else(|| a.poll_catchup(|_| usize::MAX)) {
            moved = true;
            ab += tx.bytes.len() as u64;
            b.handle_frame(RegionId(1), &tx.bytes, Now::at(T0 + t))
                .unwrap();
        }
        while let Some(tx) = b.poll_transmit().or_else(|| b.poll_catchup(|_| usize::MAX)) {
            moved = true;
            ba += tx.bytes.len() as u64;
            a.handle_frame(RegionId(2), &tx.bytes, Now::at(T0 + t))
                .unwrap();
        }
        if !moved {
            return (ab, ba);
        }
    }
}

fn main() {
    // Settle the initial catch-up and reports.
    let (mut a, mut b) = pair();
    a.handle_timeout(Now::at(T0 + 1));
    b.handle_timeout(Now::at(T0 + 1));
    pump(&mut a, &mut b, 1);

    // 1a. One write per flush: a session touch (EXPIRE) and a field update.
    let mut t = 10;
    let n = 10_000u64;
    let before = a.stats().bytes_sent;
    for i in 0..n {
        t += 3;
        let line = if i % 2 == 0 {
            format!("EXPIRE session:{} 1800", i % 1000)
        } else {
            format!("HSET session:{} last_seen {}", i % 1000, t)
        };
        a.execute(&args(&line), Now::at(T0 + t));
        a.handle_timeout(Now {
            mono_ms: T0 + t + 2,
            wall_ms: t,
        });
        pump(&mut a, &mut b, t);
    }
    let per_write = (a.stats().bytes_sent - before) as f64 / n as f64;
    println!("steady state, one write per flush: {per_write:.1} bytes per write (push frame incl. framing)");

    // 1b. Coalescing: 1M touches of 1k sessions in 10 s of simulated time (100k per second),
    // with a 2 ms flush interval (200 touches per flush, so few repeat within one flush) and a
    // 100 ms one (10k touches per flush: every session touched ~10 times, sent once).
    for flush_ms in [2u64, 100] {
        let before = a.stats().bytes_sent;
        let touches = 1_000_000u64;
        let per_flush = 100 * flush_ms;
        let mut flushes = 0;
        for i in 0..touches {
            a.execute(
                &args(&format!("EXPIRE session:{} 1800", i % 1000)),
                Now::at(T0 + t),
            );
            if i % per_flush == per_flush - 1 {
                t += flush_ms;
                a.handle_timeout(Now {
                    mono_ms: T0 + t + 2,
                    wall_ms: t,
                });
                flushes += 1;
                pump(&mut a, &mut b, t);
            }
        }
        let bytes = a.stats().bytes_sent - before;
        let entries = flushes * 1000.min(per_flush);
        println!(
            "touch coalescing, flush every {flush_ms} ms: {touches} touches of 1000 sessions in {flushes} flushes -> {bytes} bytes ({:.2} bytes per touch; {:.1} bytes per session sent per flush)",
            bytes as f64 / touches as f64,
            bytes as f64 / entries as f64
        );
    }

    // 2. Catch-up: b is cut off while a changes 100k keys (each rewritten a few times).
    let (mut a, mut b) = pair();
    a.handle_timeout(Now::at(T0 + 1));
    b.handle_timeout(Now::at(T0 + 1));
    pump(&mut a, &mut b, 1);
    b.handle_disconnected(RegionId(1), Now::at(T0 + 2));
    a.handle_disconnected(RegionId(2), Now::at(T0 + 2));
    let keys = 100_000u64;
    let mut t = 10;
    for round in 0..3 {
        for i in 0..keys {
            let line = format!("HSET session:{i} user u{i} cart {round} seen {t}");
            a.execute(&args(&line), Now::at(T0 + t));
        }
        t += 5;
        a.handle_timeout(Now {
            mono_ms: T0 + t,
            wall_ms: t,
        });
        while a
            .poll_transmit()
            .or_else(|| a.poll_catchup(|_| usize::MAX))
            .is_some()
        {}
    }
    // The current state of the changed keys, encoded as our wire entries.
    let state_bytes: usize = (0..keys)
        .map(|i| {
            let k = Bytes::from(format!("session:{i}"));
            let st = a.key_state(&k).unwrap().clone();
            wire::encode(
                0,
                &wire::Message::CatchUpPart {
                    id: 0,
                    seq: 0,
                    entries: vec![(k, st)],
                    done: None,
                },
            )
            .len()
                - 12
        })
        .sum();
    let start = Instant::now();
    b.handle_connected(RegionId(1), Now::at(T0 + t));
    a.handle_connected(RegionId(2), Now::at(T0 + t));
    let (ab, _ba) = pump(&mut a, &mut b, t);
    let took = start.elapsed();
    assert_eq!(
        a.digest(Now::at(T0 + t)),
        b.digest(Now::at(T0 + t)),
        "did not converge"
    );
    println!(
        "catch-up: {keys} changed keys, {ab} bytes sent vs {state_bytes} bytes of current state = {:.3}x, applied in {:.0} ms (in-process, no network)",
        ab as f64 / state_bytes as f64,
        took.as_secs_f64() * 1000.0
    );
}
