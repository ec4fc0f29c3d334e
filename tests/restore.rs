//! Restarting from less than everything, and routing by progress, on real nodes in this
//! process (QUIC, TLS, Redis, HTTP as `sessionmesh serve` runs them), with the UDP relays of
//! [`Cluster`] cutting links for real.
//!
//! A region is stopped, its data folder emptied (a replaced disk) or replaced by an older copy
//! (a backup restored), and started again while the others keep writing.
//!
//! Timings are printed, never asserted: waits poll with a deadline and fail with what was
//! missing.

// Test code: a failed unwrap is a failed test, and nothing here is reachable from outside.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod common;

use common::cluster::{eventually, Cluster, DEADLINE};
use std::time::{Duration, Instant};

/// The shipped defaults of the timers that decide how fast a bad link is noticed (the test
/// cluster's own are faster).
const SHIPPED_TIMEOUTS: &[(&str, &str)] = &[
    ("replication.catchup_interval_ms", "1000"),
    ("transport.keep_alive_ms", "500"),
    ("transport.idle_timeout_ms", "3000"),
];

/// How long `key`, just written elsewhere, takes to show up in region `i` (polled).
async fn time_to_reach(c: &Cluster, i: usize, key: &str) -> Duration {
    let started = Instant::now();
    eventually(&format!("{key} reaches region {i}"), DEADLINE, || async {
        match c.get(i, key).await {
            Some(_) => Ok(()),
            None => Err("not yet".to_string()),
        }
    })
    .await;
    started.elapsed()
}

/// Polls until every running region shows `key`'s hash as `want` (field, value pairs).
async fn converge_hash(c: &Cluster, key: &str, want: &[(&str, &str)]) {
    let mut want: Vec<(String, String)> = want
        .iter()
        .map(|(f, v)| (f.to_string(), v.to_string()))
        .collect();
    want.sort();
    eventually(&format!("{key} = {want:?} everywhere"), DEADLINE, || {
        let want = want.clone();
        async move {
            for i in c.running() {
                // A region still restoring answers LOADING: not yet.
                let mut conn = c.redis(i).await;
                let mut got: Vec<(String, String)> = redis::cmd("HGETALL")
                    .arg(key)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| format!("region {i}: {e}"))?;
                got.sort();
                if got != want {
                    return Err(format!("region {i} has {got:?}"));
                }
            }
            Ok(())
        }
    })
    .await;
}

/// The acceptance case of restoring, with an empty disk: everything the region wrote before,
/// every later update others made to its sessions, and nothing it deleted come back; its first
/// write to an old session merges into it instead of replacing it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_restarted_empty_gets_back_every_session_its_own_included() {
    // Data commands are refused (LOADING) for 1 s at most (5 s shipped) while the region
    // restores; then it serves what it has.
    let mut c = Cluster::start_tuned(&[0, 0, 0], &[("replication.restore_hold_ms", "1000")]).await;
    for n in 0..40 {
        let (u, t) = (format!("u{n}"), format!("t{n}"));
        let _: i64 = c
            .cmd(0, &["HSET", &format!("own:{n}"), "user", &u, "csrf", &t])
            .await;
        let _: String = c.cmd(1, &["SET", &format!("theirs:{n}"), "v"]).await;
    }
    let _: i64 = c.cmd(0, &["DEL", "own:0"]).await;
    c.converge_get("theirs:39", Some("v")).await;
    converge_hash(&c, "own:39", &[("user", "u39"), ("csrf", "t39")]).await;
    c.converge_gone("own:0").await;

    c.stop(0).await;
    c.replace_data(0, None);
    // While it is down, the others update its sessions and write their own.
    let _: i64 = c.cmd(1, &["HSET", "own:1", "last", "during"]).await;
    let _: String = c.cmd(2, &["SET", "during", "d"]).await;

    // It comes back cut off from everyone, and takes a write before it hears from anyone,
    // once the hold is over.
    c.isolate(0);
    let started = Instant::now();
    c.restart(0).await;
    let refused = std::sync::atomic::AtomicUsize::new(0);
    eventually("a write at the isolated region", DEADLINE, || async {
        let mut conn = c.redis(0).await;
        let r: redis::RedisResult<String> = redis::cmd("SET")
            .arg("fresh")
            .arg("f")
            .query_async(&mut conn)
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("LOADING") => {
                refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Err(e.to_string())
            }
            Err(e) => panic!("SET at a restoring region: {e}"),
        }
    })
    .await;
    let refused = refused.into_inner();
    let waited = started.elapsed();
    println!(
        "restarted empty and alone: first write after {} ms ({refused} refused with LOADING)",
        waited.as_millis()
    );
    assert!(
        refused > 0 && waited >= Duration::from_millis(1000),
        "a write was served {waited:?} after the restart, before restore_hold_ms"
    );
    let (code, status) = c.http_get(0, "/status").await;
    assert_eq!(code, 200);
    assert!(
        status.contains("\"waiting_for\":[\"eu-west\",\"ap-south\"]"),
        "restoring, waiting for both peers: {status}"
    );
    assert_ne!(
        c.http_get(0, "/ready").await.0,
        200,
        "not ready while restoring"
    );
    c.heal_all();
    let started = Instant::now();
    eventually("region 0 restored and ready", DEADLINE, || async {
        let (code, body) = c.http_get(0, "/ready").await;
        if code != 200 {
            return Err(format!("/ready {code}: {body}"));
        }
        Ok(())
    })
    .await;
    println!(
        "restarted empty: ready {} ms after the links healed",
        started.elapsed().as_millis()
    );

    // Its own sessions, as they stand, and nothing it deleted.
    for n in 2..40 {
        let got: Vec<(String, String)> = c.cmd(0, &["HGETALL", &format!("own:{n}")]).await;
        assert_eq!(got.len(), 2, "own:{n} at the restarted region: {got:?}");
    }
    converge_hash(
        &c,
        "own:1",
        &[("user", "u1"), ("csrf", "t1"), ("last", "during")],
    )
    .await;
    c.converge_gone("own:0").await;
    c.converge_get("during", Some("d")).await;
    c.converge_get("fresh", Some("f")).await;
    c.converge_get("theirs:0", Some("v")).await;

    // Updates to its old sessions apply everywhere, whoever makes them.
    let _: i64 = c.cmd(0, &["HSET", "own:2", "extra", "x"]).await;
    let _: i64 = c.cmd(1, &["HSET", "own:3", "more", "y"]).await;
    converge_hash(
        &c,
        "own:2",
        &[("user", "u2"), ("csrf", "t2"), ("extra", "x")],
    )
    .await;
    converge_hash(
        &c,
        "own:3",
        &[("user", "u3"), ("csrf", "t3"), ("more", "y")],
    )
    .await;
    let (_, status) = c.http_get(0, "/status").await;
    assert!(status.contains("\"restoring\":null"), "{status}");
    assert_eq!(
        c.node(0).stats().restored,
        u64::from(c.node(0).shard_count()),
        "one restoration completed per shard"
    );
    c.shutdown().await;
}

/// A region restarted with an empty disk, before any peer can answer: data commands are
/// refused with `LOADING` (serving them would tell the application its user has no session,
/// and a write would replace the session everywhere), connection commands are answered, and
/// once a peer is reachable the session is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_commands_wait_for_the_restoration_with_loading() {
    let mut c = Cluster::start(3).await;
    let _: i64 = c
        .cmd(0, &["HSET", "sess", "user", "ada", "csrf", "t"])
        .await;
    converge_hash(&c, "sess", &[("user", "ada"), ("csrf", "t")]).await;
    c.stop(0).await;
    c.replace_data(0, None);
    c.isolate(0);
    c.restart(0).await;
    let mut conn = c.redis(0).await;
    let got: redis::RedisResult<Vec<(String, String)>> = redis::cmd("HGETALL")
        .arg("sess")
        .query_async(&mut conn)
        .await;
    let e = got.expect_err("a read served while restoring");
    assert_eq!(e.code(), Some("LOADING"), "{e}");
    let pong: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
    assert_eq!(pong, "PONG");
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(info.contains("restoring:1"), "{info}");
    // A transaction whose commands were refused is aborted.
    let mut tx = redis::pipe();
    tx.atomic().cmd("SET").arg("sess").arg("x");
    let r: redis::RedisResult<Vec<redis::Value>> = tx.query_async(&mut conn).await;
    assert!(r.is_err(), "a MULTI of refused commands executed: {r:?}");
    c.heal_all();
    let started = Instant::now();
    converge_hash(&c, "sess", &[("user", "ada"), ("csrf", "t")]).await;
    println!(
        "session readable at the restarted region {:?} after the heal",
        started.elapsed()
    );
    c.shutdown().await;
}

/// A region rolled back to a copy of its data folder taken before it created a session and
/// logged another one out (whose tombstone every region has collected since): it gets the new
/// session back from its peers, and drops the logged-out one, which nobody could send back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_rolled_back_to_an_older_copy_ends_identical_to_its_peers() {
    let tuned = [("replication.gc_interval_ms", "100")];
    let mut c = Cluster::start_tuned(&[0, 0, 0], &tuned).await;
    for n in 0..20 {
        let _: i64 = c.cmd(0, &["HSET", &format!("old:{n}"), "user", "u"]).await;
    }
    converge_hash(&c, "old:19", &[("user", "u")]).await;
    c.stop(0).await;
    let backup = c.backup(0);
    c.restart(0).await;
    c.wait_connected().await;
    // After the copy: a new session, a logout, and an update of an old session, all in 0.
    let _: i64 = c.cmd(0, &["HSET", "new", "user", "n"]).await;
    let _: i64 = c.cmd(0, &["DEL", "old:0"]).await;
    let _: i64 = c.cmd(0, &["HSET", "old:1", "last", "after"]).await;
    converge_hash(&c, "new", &[("user", "n")]).await;
    converge_hash(&c, "old:1", &[("user", "u"), ("last", "after")]).await;
    c.converge_gone("old:0").await;
    eventually(
        "the logout's tombstone collected everywhere",
        DEADLINE,
        || async {
            for i in 0..3 {
                let t = c.node(i).stats().tombstones;
                if t > 0 {
                    return Err(format!("region {i} still holds {t} tombstones"));
                }
            }
            Ok(())
        },
    )
    .await;

    c.stop(0).await;
    c.replace_data(0, Some(backup.path()));
    let _: i64 = c.cmd(2, &["HSET", "old:2", "by", "ap-south"]).await;
    c.restart(0).await;
    eventually("region 0 restored and ready", DEADLINE, || async {
        let (code, body) = c.http_get(0, "/ready").await;
        if code != 200 {
            return Err(format!("/ready {code}: {body}"));
        }
        Ok(())
    })
    .await;
    converge_hash(&c, "new", &[("user", "n")]).await;
    converge_hash(&c, "old:1", &[("user", "u"), ("last", "after")]).await;
    converge_hash(&c, "old:2", &[("user", "u"), ("by", "ap-south")]).await;
    c.converge_gone("old:0").await;
    assert!(
        c.node(0).stats().census_dropped >= 1,
        "the logged-out session was dropped by the census"
    );
    // And it keeps working: a write to an old session there merges everywhere.
    let _: i64 = c.cmd(0, &["HSET", "old:3", "x", "y"]).await;
    converge_hash(&c, "old:3", &[("user", "u"), ("x", "y")]).await;
    c.shutdown().await;
}

/// A write made in region 0 right after its link to region 1 is cut reaches region 1 through
/// region 2 long before the cut link times out. The transport uses the shipped defaults here
/// (3 s idle timeout, 1 s catch-up interval), under which this took 2.8–3.7 s before progress
/// decided routing. Prints each round's time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_crosses_a_cut_link_through_the_third_region() {
    let c = Cluster::start_tuned(&[0, 0, 0], SHIPPED_TIMEOUTS).await;
    let mut times = Vec::new();
    for round in 0..3 {
        c.relay(0, 1).partition();
        let key = format!("cut:{round}");
        let _: String = c.cmd(0, &["SET", &key, "v"]).await;
        times.push(time_to_reach(&c, 1, &key).await);
        c.relay(0, 1).heal();
        c.wait_connected().await;
    }
    println!("write across a cut link (via the third region): {times:?}");
    let reroutes: u64 = (0..3).map(|i| c.node(i).stats().reroutes).sum();
    assert!(reroutes > 0, "the writes were fetched through a reroute");
    c.shutdown().await;
}

/// A single link cut for several grace periods, while both ends keep hearing of each other
/// through the third region: nobody is evicted, nobody resynchronises from nothing, garbage
/// collection goes on meanwhile, and everything converges at the heal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_single_link_cut_evicts_nobody() {
    let tuned = [
        ("replication.tombstone_grace_ms", "1500"),
        ("replication.gc_interval_ms", "100"),
    ];
    let c = Cluster::start_tuned(&[0, 0, 0], &tuned).await;
    c.relay(0, 1).partition();
    let cut = Instant::now();
    let collected_before = c.node(0).stats().collected;
    let mut n = 0;
    // Four grace periods of writes and deletes on both sides of the cut.
    while cut.elapsed() < Duration::from_millis(6_000) {
        let (a, b) = (format!("a:{n}"), format!("b:{n}"));
        let _: String = c.cmd(0, &["SET", &a, "x"]).await;
        let _: String = c.cmd(1, &["SET", &b, "y"]).await;
        if n > 0 {
            // Logouts on both sides: the tombstones can only be collected with reports of
            // the far side of the cut, which come relayed.
            let _: i64 = c.cmd(0, &["DEL", &format!("a:{}", n - 1)]).await;
            let _: i64 = c.cmd(1, &["DEL", &format!("b:{}", n - 1)]).await;
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let collected = c.node(0).stats().collected - collected_before;
    for i in 0..3 {
        let k = c.node(i).counters();
        assert_eq!(
            (k.evictions, k.resyncs),
            (0, 0),
            "region {i} evicted or resynchronised although every region was heard of"
        );
    }
    println!("{n} rounds over a 6 s cut of one link; region 0 collected {collected} tombstones meanwhile");
    assert!(
        collected > 0,
        "region 0 collected nothing while the link was cut (relayed reports unused)"
    );
    c.relay(0, 1).heal();
    c.converge_get(&format!("a:{}", n - 1), Some("x")).await;
    c.converge_get(&format!("b:{}", n - 1), Some("y")).await;
    c.converge_get(&format!("a:{}", n - 2), None).await;
    c.converge_get(&format!("b:{}", n - 2), None).await;
    c.shutdown().await;
}

/// One link loses 60% of its datagrams in both directions (QUIC keeps it "connected"): writes
/// made in region 0 still reach region 1 with no more lag than the route through region 2
/// allows. Prints the lags; the shipped timeouts, as above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lossy_link_costs_no_more_lag_than_the_healthy_route() {
    let c = Cluster::start_tuned(&[0, 0, 0], SHIPPED_TIMEOUTS).await;
    c.relay(0, 1).set_loss(0.6, 0.6);
    let mut lags = Vec::new();
    for n in 0..30 {
        let key = format!("lossy:{n}");
        let _: String = c.cmd(0, &["SET", &key, "v"]).await;
        lags.push(time_to_reach(&c, 1, &key).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    lags.sort();
    let reroutes: u64 = (0..3).map(|i| c.node(i).stats().reroutes).sum();
    println!(
        "60% loss on one link: lag to region 1 p50 {:?}, p90 {:?}, max {:?} over {} writes; \
         {reroutes} reroutes; relay forwarded {} dropped {}",
        lags[lags.len() / 2],
        lags[lags.len() * 9 / 10],
        lags[lags.len() - 1],
        lags.len(),
        c.relay(0, 1).forwarded(),
        c.relay(0, 1).dropped()
    );
    // Without rerouting the same run measured p90 10 s (writes wait for the idle timeout and a
    // catch-up that gets through); with it ~0.4 s. 2.5 s leaves room for a loaded CI machine.
    let p90 = lags[lags.len() * 9 / 10];
    assert!(
        p90 < Duration::from_millis(2500),
        "p90 lag over a 60% lossy link {p90:?}: writes are not rerouted through the healthy region"
    );
    c.shutdown().await;
}

/// A region restarted with an empty disk gets back 100 000 keys over links whose catch-up
/// queue holds 256 KiB and 8 frames: an answer about twenty times the queue. The answer leaves
/// part by part as the queue drains (`Replica::poll_catchup`); when it was pushed whole, its
/// tail was dropped at the full queue on every attempt and the region never restored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catch_up_many_times_the_transport_queue_completes() {
    const KEYS: usize = 100_000;
    let queue = 256 * 1024;
    let mut c = Cluster::start_tuned(
        &[0, 0],
        &[
            ("transport.queue_bytes", "262144"),
            ("transport.queue_frames", "8"),
        ],
    )
    .await;
    let mut conn = c.redis(1).await;
    let value = "v".repeat(40);
    for chunk in 0..KEYS / 1000 {
        let mut p = redis::pipe();
        for n in chunk * 1000..(chunk + 1) * 1000 {
            p.cmd("SET").arg(format!("key:{n:06}")).arg(&value).ignore();
        }
        let () = p.query_async(&mut conn).await.unwrap();
    }
    eventually("region 0 holds every key", DEADLINE, || async {
        let n: usize = c.cmd(0, &["DBSIZE"]).await;
        (n == KEYS).then_some(()).ok_or(format!("{n} keys"))
    })
    .await;

    c.stop(0).await;
    c.replace_data(0, None);
    let started = Instant::now();
    c.restart(0).await;
    eventually("region 0 restored", DEADLINE, || async {
        let (code, body) = c.http_get(0, "/ready").await;
        (code == 200)
            .then_some(())
            .ok_or(format!("/ready {code}: {body}"))
    })
    .await;
    let n: usize = c.cmd(0, &["DBSIZE"]).await;
    // What the restarted region received since it started: the answer, and little else.
    let (_, metrics) = c.http_get(0, "/metrics").await;
    let received: usize = metrics
        .lines()
        .find(|l| l.starts_with("sessionmesh_transport_received_bytes_total"))
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
        .unwrap_or(0);
    println!(
        "restored {n} keys in {} ms, {received} bytes received",
        started.elapsed().as_millis()
    );
    assert_eq!(n, KEYS, "every key back at the restarted region");
    assert!(
        received > 10 * queue,
        "the catch-up ({received} bytes) was not well past the queue ({queue} bytes)"
    );
    assert_eq!(
        c.get(0, "key:099999").await.as_deref(),
        Some(value.as_str())
    );
    assert_eq!(
        c.node(0).stats().restored,
        u64::from(c.node(0).shard_count()),
        "one restoration completed per shard"
    );
    c.shutdown().await;
}
