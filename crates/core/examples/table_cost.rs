//! What a concurrent map (`dashmap`) would cost the key space against the table a shard owns
//! behind its own lock: the measurement behind the shards issue's choice (see
//! `docs/DESIGN.md`).
//!
//! A write touches more than the key table — the origin index, the dirty set, the expiry index
//! and the journal change with it, atomically and in journal order — so a shard needs its lock
//! for every command whatever its table is. What a `DashMap` would add is its own per-bucket
//! locking on every lookup; what it would save is nothing, once the shard lock is held. This
//! measures both tables with the same keys and hash:
//!
//! - one thread, no contention: a plain `hashbrown` table under one `Mutex` (a shard) against a
//!   `DashMap` (its internal shard locks);
//! - `THREADS` threads (default 2) doing the same mix over keys spread across 16 shards:
//!   `Mutex<HashMap>` per shard, picked by hash slot, against one `DashMap`.
//!
//! Run: `cargo run --release -p sessionmesh-core --example table_cost`

// Test code: a failed unwrap is a failed test, and nothing here is reachable from outside.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]
// An example is a driver, not the core: it may read the clock.
#![allow(clippy::disallowed_methods)]

use bytes::Bytes;
use dashmap::DashMap;
use sessionmesh_core::slot;
use std::sync::Mutex;
use std::time::Instant;

type Hasher = foldhash::fast::FixedState;
type Table = hashbrown::HashMap<Bytes, Bytes, Hasher>;

const KEYS: usize = 100_000;
const OPS: usize = 4_000_000;
const SHARDS: u16 = 16;

/// One op of the mix: 3 reads to 1 write, keys drawn by a cheap LCG (same sequence for both).
fn op(i: usize, seed: u64) -> (usize, bool) {
    let x = (i as u64 ^ seed)
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ((x >> 33) as usize % KEYS, (x >> 20) & 3 == 0)
}

fn main() {
    let threads: usize = std::env::var("THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(2);
    let keys: Vec<Bytes> = (0..KEYS)
        .map(|i| Bytes::from(format!("session:{i:08}")))
        .collect();
    let value = Bytes::from_static(b"a session's value, about forty bytes long");

    // One thread: the shard's table under its lock, against a DashMap.
    let shard: Mutex<Table> = Mutex::new(Table::with_hasher(Hasher::default()));
    let dash: DashMap<Bytes, Bytes, Hasher> = DashMap::with_hasher(Hasher::default());
    for k in &keys {
        shard.lock().unwrap().insert(k.clone(), value.clone());
        dash.insert(k.clone(), value.clone());
    }
    let mut hits = 0usize;
    let start = Instant::now();
    for i in 0..OPS {
        let (k, write) = op(i, 1);
        let mut t = shard.lock().unwrap();
        if write {
            t.insert(keys[k].clone(), value.clone());
        } else {
            hits += usize::from(t.get(&keys[k]).is_some());
        }
    }
    let locked = start.elapsed().as_nanos() as f64 / OPS as f64;
    let start = Instant::now();
    for i in 0..OPS {
        let (k, write) = op(i, 1);
        if write {
            dash.insert(keys[k].clone(), value.clone());
        } else {
            hits += usize::from(dash.get(&keys[k]).is_some());
        }
    }
    let dashed = start.elapsed().as_nanos() as f64 / OPS as f64;
    println!("one thread, {KEYS} keys, 3 reads : 1 write");
    println!("  shard table under its Mutex   {locked:7.1} ns/op");
    println!("  DashMap                       {dashed:7.1} ns/op");

    // Several threads over 16 shards (by hash slot) against one DashMap.
    let shards: Vec<Mutex<Table>> = (0..SHARDS)
        .map(|_| Mutex::new(Table::with_hasher(Hasher::default())))
        .collect();
    let shard_of: Vec<usize> = keys
        .iter()
        .map(|k| usize::from(slot::shard_of(slot::key_slot(k), SHARDS)))
        .collect();
    for (k, s) in keys.iter().zip(&shard_of) {
        shards[*s].lock().unwrap().insert(k.clone(), value.clone());
    }
    let per = OPS / threads;
    let run = |f: &(dyn Fn(usize) + Sync)| {
        let start = Instant::now();
        std::thread::scope(|s| {
            for t in 0..threads {
                s.spawn(move || f(t));
            }
        });
        start.elapsed().as_nanos() as f64 / (per * threads) as f64
    };
    let sharded = run(&|t| {
        for i in 0..per {
            let (k, write) = op(i, t as u64 + 7);
            let mut s = shards[shard_of[k]].lock().unwrap();
            if write {
                s.insert(keys[k].clone(), value.clone());
            } else {
                std::hint::black_box(s.get(&keys[k]).is_some());
            }
        }
    });
    let dashed = run(&|t| {
        for i in 0..per {
            let (k, write) = op(i, t as u64 + 7);
            if write {
                dash.insert(keys[k].clone(), value.clone());
            } else {
                std::hint::black_box(dash.get(&keys[k]).is_some());
            }
        }
    });
    println!("{threads} threads, {SHARDS} shards by hash slot (wall time per op, all threads)");
    println!("  Mutex<table> per shard        {sharded:7.1} ns/op");
    println!("  one DashMap                   {dashed:7.1} ns/op");
    std::hint::black_box(hits);
}
