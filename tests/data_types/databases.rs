//! Numbered databases and flushes across regions, on real nodes (issue 14 items 4 and 5):
//! every database replicates (clients select it as drivers do, through the URL's `/db`);
//! `FLUSHDB` empties one database and `FLUSHALL` every database in every region; a flush made
//! while its region is cut off (UDP relays that drop packets) wins over writes made
//! concurrently into what it held, spares a key created after it, and stays in force through
//! restarts; a Magento-style session flow (`SELECT 2`, `HINCRBY` lock) works across regions.
//!
//! Every wait polls with a deadline and fails naming what did not converge.

use crate::common::cluster::{eventually, Cluster, DEADLINE, NAMES};
use std::time::Duration;

/// Polls until `DBSIZE` of `db` is `want` in every running region.
async fn converge_dbsize(c: &Cluster, db: u8, want: i64) {
    eventually(
        &format!("DBSIZE of db {db} == {want} everywhere"),
        DEADLINE,
        || async {
            for i in c.running() {
                let n: i64 = c.cmd_in(i, db, &["DBSIZE"]).await;
                if n != want {
                    return Err(format!("{} has {n}", NAMES[i]));
                }
            }
            Ok(())
        },
    )
    .await;
}

/// Polls until `GET key` in `db` gives `want` in every running region.
async fn converge_get_in(c: &Cluster, db: u8, key: &str, want: Option<&str>) {
    eventually(
        &format!("GET {key} in db {db} == {want:?} everywhere"),
        DEADLINE,
        || async {
            for i in c.running() {
                let got: Option<String> = c.cmd_in(i, db, &["GET", key]).await;
                if got.as_deref() != want {
                    return Err(format!("{} has {got:?}", NAMES[i]));
                }
            }
            Ok(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_database_replicates_and_flushes_empty_every_region() {
    let c = Cluster::start(3).await;
    for (i, db) in [(0usize, 0u8), (1, 1), (2, 5)] {
        for k in 0..20 {
            let _: () = c
                .cmd_in(i, db, &["SET", &format!("k{k}"), &format!("db{db}")])
                .await;
        }
    }
    for db in [0, 1, 5] {
        converge_dbsize(&c, db, 20).await;
        converge_get_in(&c, db, "k7", Some(&format!("db{db}"))).await;
    }
    converge_dbsize(&c, 2, 0).await;
    // INFO keyspace lists each database with its keys.
    let info: String = c.cmd_in(2, 0, &["INFO", "keyspace"]).await;
    for db in [0, 1, 5] {
        let line = format!("db{db}:keys=20,expires=0");
        assert!(info.contains(&line), "INFO keyspace lacks {line}: {info}");
    }
    // FLUSHDB in one region empties that database in all, and only that one.
    let _: () = c.cmd_in(2, 1, &["FLUSHDB"]).await;
    converge_dbsize(&c, 1, 0).await;
    converge_dbsize(&c, 0, 20).await;
    converge_dbsize(&c, 5, 20).await;
    // FLUSHALL in one region empties every database in every region.
    let _: () = c.cmd_in(1, 0, &["FLUSHALL", "ASYNC"]).await;
    for db in [0, 1, 5] {
        converge_dbsize(&c, db, 0).await;
    }
    // Writes after it live on, in every region.
    let _: () = c.cmd_in(0, 5, &["SET", "after", "1"]).await;
    converge_get_in(&c, 5, "after", Some("1")).await;
    converge_dbsize(&c, 5, 1).await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_made_while_cut_off_wins_over_concurrent_writes_and_survives_restarts() {
    let mut c = Cluster::start(2).await;
    let _: i64 = c.cmd_in(0, 3, &["HSET", "sess", "user", "ann"]).await;
    let _: () = c.cmd_in(0, 0, &["SET", "db0", "kept"]).await;
    eventually("sess in eu-west", DEADLINE, || async {
        let n: i64 = c.cmd_in(1, 3, &["EXISTS", "sess"]).await;
        if n == 1 {
            Ok(())
        } else {
            Err("not yet".to_string())
        }
    })
    .await;
    c.partition_all();
    let _: () = c.cmd_in(0, 3, &["FLUSHDB"]).await;
    tokio::time::sleep(Duration::from_millis(15)).await;
    // eu-west, not having seen the flush, writes into the session and creates a key.
    let _: i64 = c.cmd_in(1, 3, &["HSET", "sess", "cart", "3"]).await;
    let _: () = c.cmd_in(1, 3, &["SET", "created-after", "1"]).await;
    c.heal_all();
    // The flush wins over the write into the session it held (delete wins); the key created
    // after the flush (in stamp order) survives; database 0 was never touched.
    eventually("sess gone everywhere", DEADLINE, || async {
        for i in c.running() {
            let n: i64 = c.cmd_in(i, 3, &["EXISTS", "sess"]).await;
            if n != 0 {
                return Err(format!("{} still has it", NAMES[i]));
            }
        }
        Ok(())
    })
    .await;
    converge_get_in(&c, 3, "created-after", Some("1")).await;
    converge_get_in(&c, 0, "db0", Some("kept")).await;
    // Both restart from their own disks: the flush stays in force (nothing resurrects).
    for i in 0..2 {
        c.stop(i).await;
        c.restart(i).await;
    }
    converge_dbsize(&c, 3, 1).await;
    converge_get_in(&c, 3, "created-after", Some("1")).await;
    let n: i64 = c.cmd_in(1, 3, &["EXISTS", "sess"]).await;
    assert_eq!(n, 0, "the flushed session came back after a restart");
    c.shutdown().await;
}

/// The command flow of a Magento-style session handler (`Cm_RedisSession`): its own database,
/// a lock taken with `HINCRBY`, the session written as hash fields with a TTL, the lock
/// released; read back in another region's same database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_magento_style_session_in_database_2_works_across_regions() {
    let c = Cluster::start(2).await;
    let key = "sess_abc123";
    let lock: i64 = c.cmd_in(0, 2, &["HINCRBY", key, "lock", "1"]).await;
    assert_eq!(lock, 1, "the first locker gets the lock");
    let hmset = ["HMSET", key, "data", "cart|a:1", "lock", "0", "writes", "1"];
    let _: () = c.cmd_in(0, 2, &hmset).await;
    let set: i64 = c.cmd_in(0, 2, &["EXPIRE", key, "1440"]).await;
    assert_eq!(set, 1);
    eventually("the session in eu-west's database 2", DEADLINE, || async {
        let v: (Option<String>, Option<String>) =
            c.cmd_in(1, 2, &["HMGET", key, "data", "lock"]).await;
        // The fields and the TTL are two writes: wait for both.
        let ttl: i64 = c.cmd_in(1, 2, &["TTL", key]).await;
        match v {
            (Some(d), Some(l)) if d == "cart|a:1" && l == "0" && (1..=1440).contains(&ttl) => {
                Ok(())
            }
            other => Err(format!("{other:?}, TTL {ttl}")),
        }
    })
    .await;
    // Not in database 0.
    let n: i64 = c.cmd_in(1, 0, &["EXISTS", key]).await;
    assert_eq!(n, 0);
    c.shutdown().await;
}
