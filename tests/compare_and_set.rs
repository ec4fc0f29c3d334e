//! Lua-free compare-and-set and compare-and-delete, as lock-releasing session handlers send
//! them: `SET … IFEQ|IFNE|IFDEQ|IFDNE` and `DELEX`, `DIGEST` (Redis 8.4), `DELIFEQ` (Valkey 9),
//! on real nodes through the `redis` crate.
//!
//! The Redis 7.0 that `.ci/run` installs predates these commands, so the expected replies here
//! are Redis 8.4's and Valkey 9's documented ones (docs/DESIGN.md, "Commands newer than the
//! reference server"); the digests are checked against the `redis` crate's own
//! `calculate_value_digest`, which clients use to compute them locally.

// Test code: a failed unwrap is a failed test, and nothing here is reachable from outside.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod common;

use common::cluster::{eventually, Cluster, DEADLINE, NAMES};
use redis::Value as V;

/// One command's reply, an error reply as `Err(text)`.
async fn q(con: &mut redis::aio::MultiplexedConnection, line: &[&str]) -> Result<V, String> {
    let mut c = redis::cmd(line[0]);
    for a in &line[1..] {
        c.arg(*a);
    }
    c.query_async::<V>(con)
        .await
        .map_err(|e| format!("{} {}", e.code().unwrap_or("?"), e.detail().unwrap_or("")))
}

fn bulk(s: &str) -> Result<V, String> {
    Ok(V::BulkString(s.as_bytes().to_vec()))
}

fn ok() -> Result<V, String> {
    Ok(V::Okay)
}

fn int(n: i64) -> Result<V, String> {
    Ok(V::Int(n))
}

fn nil() -> Result<V, String> {
    Ok(V::Nil)
}

/// Runs `steps` in order, each with its expected reply; fails listing every step that differs.
async fn expect(
    con: &mut redis::aio::MultiplexedConnection,
    steps: &[(&[&str], Result<V, String>)],
) {
    let mut wrong = Vec::new();
    for (line, want) in steps {
        let got = q(con, line).await;
        let same = match (&got, want) {
            (Err(g), Err(w)) => g.contains(w.as_str()),
            (g, w) => g == w,
        };
        if !same {
            wrong.push(format!("{}: got {got:?}, want {want:?}", line.join(" ")));
        }
    }
    assert!(wrong.is_empty(), "replies differ:\n{}", wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_with_a_condition_writes_only_when_it_holds() {
    let c = Cluster::start(1).await;
    let mut con = c.redis(0).await;
    let syntax = || Err("syntax error".to_string());
    expect(
        &mut con,
        &[
            // IFEQ: the key must exist and hold exactly that value.
            (&["SET", "lock", "t2", "IFEQ", "t1"], nil()),
            (&["EXISTS", "lock"], int(0)),
            (&["SET", "lock", "t1"], ok()),
            (&["SET", "lock", "t2", "IFEQ", "nope"], nil()),
            (&["SET", "lock", "t2", "IFEQ", "t1", "GET"], bulk("t1")),
            (&["GET", "lock"], bulk("t2")),
            (&["SET", "lock", "t3", "ifeq", "t2", "EX", "100"], ok()),
            (&["TTL", "lock"], int(100)),
            // IFNE: a missing key is created; an equal value is left alone.
            (&["SET", "fresh", "a", "IFNE", "x"], ok()),
            (&["SET", "fresh", "b", "IFNE", "a"], nil()),
            (&["SET", "fresh", "b", "IFNE", "zz", "GET"], bulk("a")),
            (&["GET", "fresh"], bulk("b")),
            // Conditions exclude each other and NX/XX; each needs its argument.
            (&["SET", "lock", "v", "IFEQ", "a", "NX"], syntax()),
            (&["SET", "lock", "v", "XX", "IFNE", "a"], syntax()),
            (&["SET", "lock", "v", "IFEQ", "a", "IFNE", "b"], syntax()),
            (&["SET", "lock", "v", "IFEQ"], syntax()),
            // A hash is the wrong type for a value comparison.
            (&["HSET", "h", "f", "v"], int(1)),
            (&["SET", "h", "v", "IFEQ", "v"], Err("WRONGTYPE".into())),
            (&["SET", "h", "v", "IFNE", "v"], Err("WRONGTYPE".into())),
            (&["TYPE", "h"], Ok(V::SimpleString("hash".into()))),
        ],
    )
    .await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digests_are_xxh3_and_compare_in_either_case() {
    let c = Cluster::start(1).await;
    let mut con = c.redis(0).await;
    let value = "a session token with some length to it";
    let d = redis::calculate_value_digest(value);
    let other = redis::calculate_value_digest("something else");
    let upper = d.to_uppercase();
    let bad = Err("must be exactly 16 hexadecimal characters".to_string());
    expect(
        &mut con,
        &[
            (&["SET", "k", value], ok()),
            (&["DIGEST", "k"], bulk(&d)),
            (&["DIGEST", "missing"], nil()),
            (&["SET", "k", "v2", "IFDEQ", &other], nil()),
            (&["SET", "k", "v2", "IFDNE", &d], nil()),
            (&["DELEX", "k", "IFDNE", &d], int(0)),
            (&["DELEX", "k", "IFDEQ", &d[1..]], bad.clone()),
            (&["SET", "k", "v2", "IFDEQ", "0123456789abcdeg"], bad),
            (&["DELEX", "k", "IFDEQ", &upper], int(1)),
            (&["EXISTS", "k"], int(0)),
            (&["HSET", "h", "f", "v"], int(1)),
            (&["DIGEST", "h"], Err("WRONGTYPE".into())),
        ],
    )
    .await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delex_and_delifeq_delete_only_on_a_match() {
    let c = Cluster::start(1).await;
    let mut con = c.redis(0).await;
    expect(
        &mut con,
        &[
            (&["SET", "lock", "mine"], ok()),
            (&["DELIFEQ", "lock", "theirs"], int(0)),
            (&["DELIFEQ", "lock", "mine"], int(1)),
            (&["DELIFEQ", "lock", "mine"], int(0)),
            (&["SET", "lock", "mine"], ok()),
            (&["DELEX", "lock", "IFNE", "mine"], int(0)),
            (&["DELEX", "lock", "IFEQ", "theirs"], int(0)),
            (&["DELEX", "lock", "IFEQ", "mine"], int(1)),
            (&["DELEX", "lock", "IFNE", "x"], int(0)),
            // Without a condition any type is deleted, as by DEL.
            (&["HSET", "h", "f", "v"], int(1)),
            (&["DELEX", "h", "IFEQ", "v"], Err("WRONGTYPE".into())),
            (&["DELIFEQ", "h", "v"], Err("WRONGTYPE".into())),
            (&["DELEX", "h"], int(1)),
            (&["DELEX", "h"], int(0)),
            (&["DELEX", "h", "IFEQ"], Err("syntax error".into())),
            (&["DELEX", "h", "WHATEVER", "v"], Err("syntax error".into())),
            (
                &["DELEX", "h", "IFEQ", "a", "IFNE", "b"],
                Err("syntax error".into()),
            ),
            (&["DELIFEQ", "h"], Err("wrong number of arguments".into())),
        ],
    )
    .await;
    c.shutdown().await;
}

/// phpredis's session lock, released Lua-free: taken with `SET NX PX` in one region, released
/// with `DELIFEQ` there, and gone in the other regions; a second holder's token then takes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_released_by_token_is_released_everywhere() {
    let c = Cluster::start(3).await;
    c.wait_connected().await;
    let key = "PHPREDIS_SESSION:abc123_LOCK";
    let taken: String = c
        .cmd(0, &["SET", key, "host1:4242:token", "NX", "PX", "30000"])
        .await;
    assert_eq!(taken, "OK");
    c.converge_get(key, Some("host1:4242:token")).await;
    // Another region's worker cannot take it, nor release it with a wrong token.
    let refused: Option<String> = c
        .cmd(1, &["SET", key, "host2:1:token", "NX", "PX", "30000"])
        .await;
    assert_eq!(refused, None);
    let wrong: i64 = c.cmd(1, &["DELIFEQ", key, "host2:1:token"]).await;
    assert_eq!(wrong, 0);
    let released: i64 = c.cmd(0, &["DELEX", key, "IFEQ", "host1:4242:token"]).await;
    assert_eq!(released, 1);
    c.converge_gone(key).await;
    eventually(
        "the second worker takes the released lock",
        DEADLINE,
        || async {
            let got: Option<String> = c
                .cmd(1, &["SET", key, "host2:1:token", "NX", "PX", "30000"])
                .await;
            match got {
                Some(_) => Ok(()),
                None => Err(format!("{} still refuses", NAMES[1])),
            }
        },
    )
    .await;
    c.converge_get(key, Some("host2:1:token")).await;
    c.shutdown().await;
}
