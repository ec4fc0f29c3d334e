//! `WATCH`/`UNWATCH`, and the server commands `SAVE`, `BGSAVE`, `LASTSAVE` and `TIME`.
//!
//! `EXEC` aborts (the null array) when a watched key changed since `WATCH`,
//! whether by a command of another connection here or by a delta merged from another region.
//! The two-connection sequences are compared with a real `redis-server` step by step (RESP2 and
//! RESP3) when one is installed (`.ci/run` installs it).

// Test code: a failed unwrap is a failed test, and nothing here is reachable from outside.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod common;

use common::cluster::Cluster;
use redis::Value;
use sessionmesh_harness::redis_server::{connect, send, RedisServer, Reply};

/// Steps: (connection 0 or 1, command line split on spaces; `$x` is the key `x` under the
/// run's prefix). A line starting with `!` is one where Redis answers with an error.
#[rustfmt::skip]
const STEPS: &[(usize, &str)] = &[
    // Changed by another connection: aborted.
    (0, "SET $a 1"), (0, "WATCH $a"), (1, "SET $a 2"), (0, "MULTI"), (0, "SET $a 3"),
    (0, "EXEC"), (0, "GET $a"),
    // Unchanged: runs; and the watch ends with EXEC.
    (0, "WATCH $a $b"), (0, "MULTI"), (0, "GET $b"), (0, "SET $a 4"), (0, "EXEC"),
    (1, "SET $a 5"), (0, "MULTI"), (0, "SET $a 6"), (0, "EXEC"), (0, "GET $a"),
    // UNWATCH forgets; DISCARD forgets.
    (0, "WATCH $a"), (1, "SET $a 7"), (0, "UNWATCH"), (0, "MULTI"), (0, "SET $a 8"),
    (0, "EXEC"), (0, "WATCH $a"), (1, "SET $a 9"), (0, "MULTI"), (0, "DISCARD"), (0, "MULTI"),
    (0, "SET $a 10"), (0, "EXEC"), (0, "GET $a"),
    // A key that did not exist and was created, a key deleted, a hash field changed.
    (0, "WATCH $new"), (1, "SET $new x"), (0, "MULTI"), (0, "GET $new"), (0, "EXEC"),
    (0, "WATCH $a"), (1, "DEL $a"), (0, "MULTI"), (0, "GET $a"), (0, "EXEC"),
    (0, "HSET $h f 1"), (0, "WATCH $h"), (1, "HSET $h g 2"), (0, "MULTI"), (0, "HGETALL $h"),
    (0, "EXEC"),
    // A change by the watching connection itself, before MULTI, aborts too.
    (0, "WATCH $a"), (0, "SET $a own"), (0, "MULTI"), (0, "GET $a"), (0, "EXEC"),
    // Errors.
    (0, "MULTI"), (0, "!WATCH $a"), (0, "SET $a in"), (0, "EXEC"), (0, "!WATCH"),
    (0, "!UNWATCH $a"), (0, "UNWATCH"), (0, "GET $a"),
    // A key watched twice, and a missing key that stays missing.
    (0, "WATCH $a $a $none"), (0, "MULTI"), (0, "GET $none"), (0, "EXEC"),
];

fn args(line: &str, prefix: &str) -> Vec<String> {
    line.trim_start_matches('!')
        .split(' ')
        .map(|t| match t.strip_prefix('$') {
            Some(k) => format!("{prefix}{k}"),
            None => t.to_owned(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_matches_redis_step_by_step() {
    let Some(server) = RedisServer::start("the WATCH differential test") else {
        return;
    };
    let c = Cluster::start(1).await;
    let (mut differ, mut bad, mut steps) = (Vec::new(), Vec::new(), 0);
    for proto in [2, 3] {
        let query = if proto == 3 { "?protocol=resp3" } else { "" };
        let ours_url = format!("redis://{}/{query}", c.spec(0).redis);
        let theirs_url = format!("{}{query}", server.url());
        let mut theirs = [connect(&theirs_url).await, connect(&theirs_url).await];
        let mut ours = [connect(&ours_url).await, connect(&ours_url).await];
        let prefix = format!("r{proto}:");
        for (m, (who, line)) in STEPS.iter().enumerate() {
            let argv = args(line, &prefix);
            let want = send(&mut theirs[*who], &argv).await;
            let got = send(&mut ours[*who], &argv).await;
            steps += 1;
            if line.starts_with('!') != want.is_err() {
                bad.push(format!("RESP{proto} step {m}: {line}: {want:?}"));
            }
            if want != got {
                differ.push(format!(
                    "RESP{proto} step {m} (conn {who}): {line}: redis={want:?} ours={got:?}"
                ));
            }
        }
    }
    println!("compared {steps} WATCH steps (RESP2 and RESP3) with redis-server");
    assert!(bad.is_empty(), "misplaced `!` marks:\n{}", bad.join("\n"));
    assert!(
        differ.is_empty(),
        "{} of {steps} replies differ:\n{}",
        differ.len(),
        differ.join("\n")
    );
    c.shutdown().await;
}

/// A write made in another region and merged here after `WATCH` aborts the transaction; one
/// merged before `WATCH` does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_merged_from_another_region_aborts_exec() {
    let c = Cluster::start(2).await;
    c.wait_connected().await;
    let mut here = c.redis(0).await;
    let mut there = c.redis(1).await;
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    send(&mut there, &s(&["SET", "sess:w", "v1"]))
        .await
        .unwrap();
    c.converge_get("sess:w", Some("v1")).await;
    send(&mut here, &s(&["WATCH", "sess:w"])).await.unwrap();
    send(&mut there, &s(&["SET", "sess:w", "v2"]))
        .await
        .unwrap();
    c.converge_get("sess:w", Some("v2")).await;
    let mut tx = redis::pipe();
    tx.atomic().cmd("SET").arg("sess:w").arg("mine");
    let r: Value = tx.query_async(&mut here).await.unwrap();
    assert_eq!(r, Value::Nil, "EXEC after a merged remote write");
    assert_eq!(
        send(&mut here, &s(&["GET", "sess:w"])).await,
        Ok(Value::BulkString(b"v2".to_vec()))
    );
    // Watched after the merge: nothing changes it, EXEC runs.
    send(&mut here, &s(&["WATCH", "sess:w"])).await.unwrap();
    let r: Value = tx.query_async(&mut here).await.unwrap();
    assert_eq!(r, Value::Array(vec![Value::Okay]));
    c.converge_get("sess:w", Some("mine")).await;
    c.shutdown().await;
}

/// `SAVE` and `BGSAVE` snapshot every shard (the region restarts from them), `LASTSAVE` moves
/// with them, `TIME` is the wall clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_bgsave_lastsave_and_time() {
    let mut c = Cluster::start(1).await;
    let mut con = c.redis(0).await;
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let int = |r: Reply| match r {
        Ok(Value::Int(n)) => n,
        other => panic!("{other:?}"),
    };
    let before = int(send(&mut con, &s(&["LASTSAVE"])).await);
    send(&mut con, &s(&["SET", "saved", "yes"])).await.unwrap();
    let snaps = snapshots(&c.data_dir(0));
    assert_eq!(send(&mut con, &s(&["SAVE"])).await, Ok(Value::Okay));
    let after = snapshots(&c.data_dir(0));
    assert!(
        after.iter().any(|f| !snaps.contains(f)),
        "SAVE wrote no new snapshot: {snaps:?} then {after:?}"
    );
    assert!(int(send(&mut con, &s(&["LASTSAVE"])).await) >= before);
    let r = send(&mut con, &s(&["BGSAVE"])).await;
    assert!(
        matches!(&r, Ok(Value::SimpleString(t)) if t == "Background saving started")
            || matches!(&r, Err(e) if e.contains("already in progress")),
        "{r:?}"
    );
    assert!(send(&mut con, &s(&["BGSAVE", "NOW"])).await.is_err());
    let time = send(&mut con, &s(&["TIME"])).await.unwrap();
    let Value::Array(parts) = time else {
        panic!("TIME: {time:?}")
    };
    assert_eq!(parts.len(), 2);
    c.stop(0).await;
    c.restart(0).await;
    c.converge_get("saved", Some("yes")).await;
    c.shutdown().await;
}

/// Every snapshot file under `dir`, by path.
fn snapshots(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "snap") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
