//! The command table against a real `redis-server`: for every command we serve, `COMMAND INFO`
//! must give Redis's arity and key positions (first, last, step) — what clients, cluster-aware
//! drivers and, next, our own shard routing read from it.
//!
//! Needs `redis-server` on the PATH (`.ci/run` installs it and sets
//! `SESSIONMESH_REQUIRE_REDIS=1`, which turns its absence into a failure; elsewhere the test
//! says loudly that it did not run).

// Test code: a failed unwrap is a failed test, and nothing here is reachable from outside.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod common;

use common::cluster::{eventually, Cluster, DEADLINE};
use redis::Value as V;
use sessionmesh_core::cmd::TABLE;
use sessionmesh_harness::redis_server::RedisServer;

fn start_redis() -> Option<RedisServer> {
    RedisServer::start("the command table comparison")
}

/// A command's `(arity, first key, last key, step)` as `COMMAND INFO` gives them.
type Shape = (i64, i64, i64, i64);

/// Commands of Redis 8.4 and Valkey 9 that the Redis 7.0 of Debian's package does not know.
const NEWER_THAN_7_0: [&str; 3] = ["delex", "delifeq", "digest"];

/// Their `(arity, first, last, step)`, from `src/commands/*.json` of Redis 8.4 (`DELEX`,
/// `DIGEST`) and Valkey 9 (`DELIFEQ`).
const NEWER_SHAPES: [(&str, Shape); 3] = [
    ("delex", (-2, 1, 1, 1)),
    ("delifeq", (3, 1, 1, 1)),
    ("digest", (2, 1, 1, 1)),
];

/// `(arity, first, last, step)` from one `COMMAND INFO` entry.
fn shape(v: &V) -> Option<Shape> {
    let V::Array(f) = v else { return None };
    let int = |i: usize| match f.get(i) {
        Some(V::Int(n)) => Some(*n),
        _ => None,
    };
    Some((int(1)?, int(3)?, int(4)?, int(5)?))
}

async fn info(con: &mut redis::aio::MultiplexedConnection, name: &str) -> V {
    let r: V = redis::cmd("COMMAND")
        .arg("INFO")
        .arg(name)
        .query_async(con)
        .await
        .unwrap();
    match r {
        V::Array(mut a) if a.len() == 1 => a.remove(0),
        other => panic!("COMMAND INFO {name}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arity_and_key_positions_match_redis() {
    let Some(server) = start_redis() else {
        return;
    };
    let url = format!("redis://127.0.0.1:{}/", server.port);
    let client = redis::Client::open(url).unwrap();
    eventually("redis-server answers", DEADLINE, || async {
        match client.get_multiplexed_async_connection().await {
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
    let mut theirs = client.get_multiplexed_async_connection().await.unwrap();
    let c = Cluster::start(1).await;
    let mut ours = c.redis(0).await;
    let mut differ = Vec::new();
    let mut skipped = Vec::new();
    for spec in TABLE.iter() {
        let (a, b) = (
            info(&mut ours, spec.name).await,
            info(&mut theirs, spec.name).await,
        );
        let (a, b) = (shape(&a), shape(&b));
        assert!(a.is_some(), "{}: our COMMAND INFO has no shape", spec.name);
        if b.is_none() && NEWER_THAN_7_0.contains(&spec.name) {
            // This redis-server predates the command: its shape is checked by hand below.
            skipped.push(spec.name);
            continue;
        }
        if a != b {
            differ.push(format!("{}: ours {a:?}, redis {b:?}", spec.name));
        }
    }
    println!(
        "compared {} commands with redis-server; {} newer than it, checked against their \
         documented shapes: {skipped:?}",
        TABLE.len() - skipped.len(),
        skipped.len()
    );
    for name in &skipped {
        let (_, want) = NEWER_SHAPES
            .iter()
            .find(|(n, _)| n == name)
            .expect("every newer command has its documented shape");
        let ours = shape(&info(&mut ours, name).await);
        if ours != Some(*want) {
            differ.push(format!("{name}: ours {ours:?}, documented {want:?}"));
        }
    }
    assert!(
        differ.is_empty(),
        "(arity, first, last, step) differ:\n{}",
        differ.join("\n")
    );
    c.shutdown().await;
}
