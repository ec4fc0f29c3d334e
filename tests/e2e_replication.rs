//! End-to-end replication: real regions in one process, real QUIC with mutual TLS, a real
//! Redis client, and UDP relays on every link so the test can cut packets.
//!
//! Every wait polls with a deadline and fails naming what did not converge; the only sleeps
//! are the few milliseconds that give a later write a later wall clock.

// Test code: a failed unwrap is a failed test, and nothing here is reachable from outside.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod common;

use common::cluster::{eventually, Cluster, DEADLINE, NAMES};
use sessionmesh::certs;
use sessionmesh::config::Config;
use sessionmesh::server::{Listeners, Server};
use std::collections::BTreeMap;
use std::time::Duration;

/// Enough for the wall clock to move on, so the second of two concurrent writes carries the
/// greater stamp and the expected winner is known.
const LATER: Duration = Duration::from_millis(15);

fn hash(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn converge_hash(c: &Cluster, key: &str, want: &BTreeMap<String, String>) {
    eventually(&format!("HGETALL {key} == {want:?}"), DEADLINE, || async {
        for i in c.running() {
            let got: BTreeMap<String, String> = c.cmd(i, &["HGETALL", key]).await;
            if &got != want {
                return Err(format!("{} has {got:?}", NAMES[i]));
            }
        }
        Ok(())
    })
    .await;
}

async fn converge_exists(c: &Cluster, key: &str, want: i64) {
    eventually(&format!("EXISTS {key} == {want}"), DEADLINE, || async {
        for i in c.running() {
            let got: i64 = c.cmd(i, &["EXISTS", key]).await;
            if got != want {
                return Err(format!("{} says {got}", NAMES[i]));
            }
        }
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_in_one_region_is_read_in_the_others() {
    let c = Cluster::start(3).await;
    let ok: String = c.cmd(0, &["SET", "session:1", "alice"]).await;
    assert_eq!(ok, "OK");
    c.converge_get("session:1", Some("alice")).await;

    let _: i64 = c
        .cmd(1, &["HSET", "session:2", "user", "bob", "cart", "3"])
        .await;
    converge_hash(&c, "session:2", &hash(&[("user", "bob"), ("cart", "3")])).await;

    // WAIT: the other two regions hold this connection's write.
    let mut con = c.redis(2).await;
    let _: () = redis::cmd("SET")
        .arg("session:3")
        .arg("carol")
        .query_async(&mut con)
        .await
        .unwrap();
    let held: i64 = redis::cmd("WAIT")
        .arg(2)
        .arg(5000)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(held, 2, "WAIT 2 from ap-south");
    for i in 0..2 {
        assert_eq!(c.get(i, "session:3").await.as_deref(), Some("carol"));
    }
    c.shutdown().await;
}

/// `[redis] io_threads`: connections handed over to threads with runtimes of their own serve
/// and replicate exactly as on the shared runtime — writes from several connections (one
/// transaction spanning shards among them), `WAIT`, and a clean shutdown with clients open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_on_io_threads_serve_and_replicate() {
    let c = Cluster::start_tuned(&[0, 0, 0], &[("redis.io_threads", "2")]).await;
    let mut cons = Vec::new();
    for _ in 0..4 {
        cons.push(c.redis(0).await);
    }
    for (n, con) in cons.iter_mut().enumerate() {
        for k in 0..25 {
            let _: () = redis::cmd("SET")
                .arg(format!("io:{n}:{k}"))
                .arg(format!("v{k}"))
                .query_async(con)
                .await
                .unwrap();
        }
    }
    let (a, b): (String, String) = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("io:tx:a")
        .arg("1")
        .cmd("SET")
        .arg("io:tx:b")
        .arg("2")
        .query_async(&mut cons[1])
        .await
        .unwrap();
    assert_eq!((a.as_str(), b.as_str()), ("OK", "OK"));
    let held: i64 = redis::cmd("WAIT")
        .arg(2)
        .arg(5000)
        .query_async(&mut cons[1])
        .await
        .unwrap();
    assert_eq!(held, 2, "WAIT 2 from a connection on an io thread");
    c.converge_get("io:3:24", Some("v24")).await;
    c.converge_get("io:tx:b", Some("2")).await;
    let n: i64 = c.cmd(2, &["DBSIZE"]).await;
    assert_eq!(n, 102, "every write reached ap-south");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sets_converge_to_the_later_write() {
    let c = Cluster::start(3).await;
    c.partition_all();
    let _: String = c.cmd(0, &["SET", "k", "from-us-east"]).await;
    tokio::time::sleep(LATER).await;
    let _: String = c.cmd(1, &["SET", "k", "from-eu-west"]).await;
    assert_eq!(c.get(2, "k").await, None, "ap-south is cut off");
    c.heal_all();
    c.converge_get("k", Some("from-eu-west")).await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_hset_of_different_fields_both_survive() {
    let c = Cluster::start(3).await;
    // The session exists everywhere; then three requests in three regions, cut off from each
    // other, each update a different field.
    let _: i64 = c.cmd(0, &["HSET", "h", "user", "u"]).await;
    converge_hash(&c, "h", &hash(&[("user", "u")])).await;
    c.partition_all();
    let _: i64 = c.cmd(0, &["HSET", "h", "f1", "a"]).await;
    let _: i64 = c.cmd(1, &["HSET", "h", "f2", "b"]).await;
    let _: i64 = c.cmd(2, &["HSET", "h", "f3", "c"]).await;
    c.heal_all();
    let all = hash(&[("user", "u"), ("f1", "a"), ("f2", "b"), ("f3", "c")]);
    converge_hash(&c, "h", &all).await;
    c.shutdown().await;
}

/// Two regions that both *create* a key while cut off from each other: the later creation wins
/// whole (incarnations are numbered by their creation stamp, docs/DESIGN.md §2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creations_later_one_wins() {
    let c = Cluster::start(2).await;
    c.partition_all();
    let _: i64 = c.cmd(0, &["HSET", "new", "a", "1"]).await;
    tokio::time::sleep(LATER).await;
    let _: i64 = c.cmd(1, &["HSET", "new", "b", "2"]).await;
    c.heal_all();
    converge_hash(&c, "new", &hash(&[("b", "2")])).await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_wins_over_a_concurrent_write_and_a_concurrent_touch() {
    let c = Cluster::start(3).await;
    let _: i64 = c.cmd(0, &["HSET", "sess:a", "user", "u1"]).await;
    let _: i64 = c.cmd(0, &["HSET", "sess:b", "user", "u2"]).await;
    converge_exists(&c, "sess:a", 1).await;
    converge_exists(&c, "sess:b", 1).await;

    c.partition_all();
    // Logout in us-east...
    let deleted: i64 = c.cmd(0, &["DEL", "sess:a", "sess:b"]).await;
    assert_eq!(deleted, 2);
    tokio::time::sleep(LATER).await;
    // ...raced by a request in eu-west (a later write) and a touch in ap-south, neither of
    // which has seen the logout.
    let _: i64 = c.cmd(1, &["HSET", "sess:a", "last_seen", "123"]).await;
    let touched: i64 = c.cmd(2, &["EXPIRE", "sess:b", "3600"]).await;
    assert_eq!(touched, 1);
    c.heal_all();
    converge_exists(&c, "sess:a", 0).await;
    converge_exists(&c, "sess:b", 0).await;

    // A write made after the delete was seen creates a fresh key.
    let _: i64 = c.cmd(1, &["HSET", "sess:a", "user", "u1-again"]).await;
    converge_hash(&c, "sess:a", &hash(&[("user", "u1-again")])).await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_replicates_and_expiry_needs_no_message() {
    let c = Cluster::start(3).await;
    let _: String = c.cmd(0, &["SET", "short", "v", "PX", "1500"]).await;
    let _: String = c.cmd(0, &["SET", "long", "v"]).await;
    let _: i64 = c.cmd(0, &["EXPIRE", "long", "1000"]).await;
    eventually("TTL of `long` replicated", DEADLINE, || async {
        for i in c.running() {
            let ttl: i64 = c.cmd(i, &["TTL", "long"]).await;
            if !(900..=1000).contains(&ttl) {
                return Err(format!("{} has TTL {ttl}", NAMES[i]));
            }
        }
        Ok(())
    })
    .await;
    // Cut everything: `short` still disappears everywhere, on each region's own clock.
    c.partition_all();
    c.converge_get("short", None).await;
    assert_eq!(c.get(1, "long").await.as_deref(), Some("v"));
    // PERSIST replicates too.
    c.heal_all();
    let _: i64 = c.cmd(2, &["PERSIST", "long"]).await;
    eventually("PERSIST replicated", DEADLINE, || async {
        for i in c.running() {
            let ttl: i64 = c.cmd(i, &["TTL", "long"]).await;
            if ttl != -1 {
                return Err(format!("{} has TTL {ttl}", NAMES[i]));
            }
        }
        Ok(())
    })
    .await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_with_conflicting_writes_heals_to_the_winner() {
    let c = Cluster::start(3).await;
    // The cart exists everywhere before the partition.
    let _: i64 = c.cmd(0, &["HSET", "cart", "owner", "u"]).await;
    converge_hash(&c, "cart", &hash(&[("owner", "u")])).await;
    // us-east alone on one side; eu-west and ap-south on the other.
    c.isolate(0);
    // Long enough for QUIC to declare the links dead (idle timeout 1 s), so healing goes
    // through reconnect and catch-up rather than retransmission.
    eventually("us-east sees its links down", DEADLINE, || async {
        let up = c
            .node(0)
            .peer_views()
            .iter()
            .filter(|p| p.link.connected)
            .count();
        if up == 0 {
            Ok(())
        } else {
            Err(format!("{up} links still up"))
        }
    })
    .await;
    for n in 0..20 {
        let key = format!("left:{n}");
        let _: String = c.cmd(0, &["SET", &key, "L"]).await;
        let key = format!("right:{n}");
        let _: String = c.cmd(1 + n % 2, &["SET", &key, "R"]).await;
    }
    let _: String = c.cmd(0, &["SET", "contested", "us-east"]).await;
    let _: i64 = c.cmd(0, &["HSET", "cart", "apples", "1"]).await;
    tokio::time::sleep(LATER).await;
    let _: String = c.cmd(2, &["SET", "contested", "ap-south"]).await;
    let _: i64 = c.cmd(1, &["HSET", "cart", "pears", "2"]).await;
    // The majority side keeps replicating between its members while cut from us-east.
    eventually("eu-west and ap-south exchange writes", DEADLINE, || async {
        for i in [1, 2] {
            for key in ["right:0", "right:1"] {
                if c.get(i, key).await.is_none() {
                    return Err(format!("{} lacks {key}", NAMES[i]));
                }
            }
        }
        Ok(())
    })
    .await;
    assert_eq!(c.get(0, "right:0").await, None, "us-east is cut off");

    c.heal_all();
    c.wait_connected().await;
    c.converge_get("contested", Some("ap-south")).await;
    converge_hash(
        &c,
        "cart",
        &hash(&[("owner", "u"), ("apples", "1"), ("pears", "2")]),
    )
    .await;
    for n in 0..20 {
        c.converge_get(&format!("left:{n}"), Some("L")).await;
        c.converge_get(&format!("right:{n}"), Some("R")).await;
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_region_catches_up_while_others_keep_writing() {
    let mut c = Cluster::start(3).await;
    for n in 0..10 {
        let _: String = c.cmd(0, &["SET", &format!("before:{n}"), "x"]).await;
    }
    c.converge_get("before:9", Some("x")).await;
    c.stop(2).await;
    for n in 0..30 {
        let _: String = c.cmd(n % 2, &["SET", &format!("during:{n}"), "y"]).await;
    }
    let _: i64 = c.cmd(0, &["DEL", "before:0"]).await;
    c.restart(2).await;
    // Keep writing while it reconnects.
    for n in 0..10 {
        let _: String = c.cmd(1, &["SET", &format!("after:{n}"), "z"]).await;
    }
    c.wait_connected().await;
    for n in 0..30 {
        c.converge_get(&format!("during:{n}"), Some("y")).await;
    }
    for n in 1..10 {
        c.converge_get(&format!("before:{n}"), Some("x")).await;
    }
    c.converge_get("before:0", None).await;
    for n in 0..10 {
        c.converge_get(&format!("after:{n}"), Some("z")).await;
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_with_a_certificate_from_another_ca_is_refused() {
    let c = Cluster::start(2).await;
    // The impostor claims to be us-east (id 1, so it dials) and points at the real eu-west.
    let dir = tempfile::tempdir().unwrap();
    let listeners = Listeners {
        redis: std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
        gossip: std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
        http: std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
    };
    let eu = c.spec(1);
    let text = format!(
        "[[regions]]\nname = \"us-east\"\nid = 1\nredis = \"{}\"\ngossip = \"{}\"\nhttp = \"{}\"\n\
         [[regions]]\nname = \"eu-west\"\nid = 2\nredis = \"{}\"\ngossip = \"{}\"\nhttp = \"{}\"\n\
         [transport]\nkeep_alive_ms = 100\nidle_timeout_ms = 500\nreconnect_min_ms = 10\nreconnect_max_ms = 50\n\
         [replication]\nrestore_hold_ms = 0\nmax_clock_drift_ms = 0\n",
        listeners.redis.local_addr().unwrap(),
        listeners.gossip.local_addr().unwrap(),
        listeners.http.local_addr().unwrap(),
        eu.redis,
        eu.gossip,
        eu.http,
    );
    let config = Config::from_toml(&text, dir.path()).unwrap();
    certs::generate(&config, &dir.path().join("certs")).unwrap();
    let tls = certs::load(&config, config.region("us-east").unwrap()).unwrap();
    let rogue = Server::start_with(&config, "us-east", listeners, tls)
        .await
        .unwrap();
    let rogue_redis = rogue.redis_addr();
    let mut con = redis::Client::open(format!("redis://{rogue_redis}/"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("stolen")
        .arg("evil")
        .query_async(&mut con)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("shared")
        .arg("evil")
        .query_async(&mut con)
        .await
        .unwrap();

    let failures = |node: &sessionmesh::node::Node| {
        node.node_counters()
            .into_iter()
            .find(|(k, _)| *k == "transport_handshake_failures")
            .map_or(0, |(_, v)| v)
    };
    // The impostor keeps retrying; after several refusals, nothing of it may have landed.
    eventually(
        "eu-west refuses the impostor repeatedly",
        DEADLINE,
        || async {
            let n = failures(c.node(1));
            if n >= 3 {
                Ok(())
            } else {
                Err(format!("{n} handshake failures so far"))
            }
        },
    )
    .await;
    // A legitimate write still flows, and the impostor's never do.
    let _: String = c.cmd(0, &["SET", "legit", "ok"]).await;
    c.converge_get("legit", Some("ok")).await;
    assert_eq!(c.get(1, "stolen").await, None);
    assert_eq!(c.get(1, "shared").await, None);
    assert!(rogue
        .node()
        .peer_views()
        .iter()
        .all(|p| p.link.connects == 0));
    let eu_view = c.node(1).peer_views();
    assert_eq!(eu_view.len(), 1);
    assert_eq!(
        eu_view[0].link.connects, 1,
        "only the real us-east ever connected"
    );
    rogue.shutdown().await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_metrics_and_status() {
    let c = Cluster::start(2).await;
    let (code, body) = c.http_get(0, "/health").await;
    assert_eq!((code, body.as_str()), (200, "ok\n"));
    let (code, _) = c.http_get(0, "/ready").await;
    assert_eq!(code, 200);
    let (code, body) = c.http_get(1, "/metrics").await;
    assert_eq!(code, 200);
    assert!(
        body.contains("sessionmesh_peer_connected{region=\"eu-west\",peer=\"us-east\"} 1"),
        "{body}"
    );
    let (code, body) = c.http_get(1, "/status").await;
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["region"], "eu-west");
    assert_eq!(v["peers"][0]["name"], "us-east");
    assert_eq!(v["peers"][0]["connected"], true);
    let (code, _) = c.http_get(0, "/nope").await;
    assert_eq!(code, 404);
    // INFO replication over Redis names the peer and its state.
    let mut con = c.redis(0).await;
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(info.contains("name=eu-west,id=2,state=online"), "{info}");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_way_delay_on_the_link_delays_replication() {
    let c = Cluster::start(2).await;
    let delay = Duration::from_millis(200);
    c.relay(0, 1).delay_to_b(delay);
    let start = std::time::Instant::now();
    let _: String = c.cmd(0, &["SET", "slow", "1"]).await;
    c.converge_get("slow", Some("1")).await;
    let took = start.elapsed();
    assert!(
        took >= delay,
        "replicated in {took:?} through a {delay:?} one-way delay"
    );
    // The other direction is not delayed, and the link survives the delay.
    c.relay(0, 1).delay_to_b(Duration::ZERO);
    let _: String = c.cmd(1, &["SET", "fast", "1"]).await;
    c.converge_get("fast", Some("1")).await;
    assert!(c.relay(0, 1).forwarded() > 0);
    c.shutdown().await;
}

/// A peer with a valid certificate that sends garbage: its connection is closed and counted,
/// nothing is applied, the node keeps serving, and the real peer's link comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_from_an_authenticated_peer_closes_only_its_connection() {
    use sessionmesh::transport::{Handler, PeerSpec, Rejected, Stream, Transport, TransportConfig};
    use std::sync::Arc;

    struct Mute;
    impl Handler for Mute {
        fn frame_len(&self, _buf: &[u8]) -> Result<Option<usize>, Rejected> {
            Ok(None)
        }
        fn connected(&self, _peer: u16) {}
        fn frame(&self, _peer: u16, _frame: &[u8]) -> Result<(), Rejected> {
            Ok(())
        }
        fn disconnected(&self, _peer: u16) {}
    }

    let c = Cluster::start(2).await;
    let _: String = c.cmd(1, &["SET", "precious", "intact"]).await;
    c.converge_get("precious", Some("intact")).await;
    // us-east's own certificate, on a second socket, talking straight to eu-west.
    let us = c.spec(0).clone();
    let eu = c.spec(1).clone();
    let tls = certs::load(c.config(0), &us).unwrap();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let spec = |r: &sessionmesh::config::RegionSpec| PeerSpec {
        id: r.id,
        name: r.name.clone(),
        dns_name: r.dns_name(),
        addr: r.gossip,
    };
    let stop = tokio_util::sync::CancellationToken::new();
    let fake = Transport::start(
        TransportConfig {
            me: spec(&us),
            peers: vec![spec(&eu)],
            settings: c.config(0).transport().clone(),
            max_frame_bytes: c.config(0).replication().max_frame_bytes,
        },
        &tls,
        socket,
        Arc::new(Mute),
        stop.clone(),
    )
    .unwrap();
    let bad_frames = || {
        c.node(1)
            .node_counters()
            .into_iter()
            .find(|(k, _)| *k == "transport_bad_frames")
            .map_or(0, |(_, v)| v)
    };
    eventually("eu-west rejects a garbage frame", DEADLINE, || async {
        // A well-delimited frame whose body is not a valid message.
        fake.send(2, Stream::Delta, vec![0, 0, 0, 6, 0xff, 1, 2, 3, 4, 5]);
        if bad_frames() >= 1 {
            Ok(())
        } else {
            Err("no bad frame counted yet".into())
        }
    })
    .await;
    stop.cancel();
    fake.close().await;
    assert_eq!(c.get(1, "precious").await.as_deref(), Some("intact"));
    c.wait_connected().await;
    let _: String = c.cmd(0, &["SET", "after", "garbage"]).await;
    c.converge_get("after", Some("garbage")).await;
    c.shutdown().await;
}

/// A region whose wall clock runs 2 s ahead (max drift is 0.5 s) cannot win with future
/// stamps: its writes are held by the others until they are no longer in the future, the
/// skew is reported, and nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_from_a_region_with_a_fast_clock_are_held_not_lost() {
    let c = Cluster::start_skewed(&[0, 0, 2_000]).await;
    let start = std::time::Instant::now();
    let _: String = c.cmd(2, &["SET", "future", "from-ap-south"]).await;
    // Held while its stamp is ahead of the others' clocks beyond the allowed drift...
    eventually("us-east holds the skewed delta", DEADLINE, || async {
        let held = c.node(0).stats().held;
        if held > 0 {
            Ok(())
        } else {
            Err("nothing held yet".into())
        }
    })
    .await;
    assert_eq!(
        c.get(0, "future").await,
        None,
        "applied while in the future"
    );
    let skew = c
        .node(0)
        .node_counters()
        .into_iter()
        .find(|(k, _)| *k == "clock_skew_events")
        .map_or(0, |(_, v)| v);
    assert!(skew > 0, "skew not reported");
    // ...and applied once it no longer is (about 1.5 s later).
    c.converge_get("future", Some("from-ap-south")).await;
    assert!(
        start.elapsed() >= Duration::from_millis(1_000),
        "applied after {:?}, before the drift bound allowed",
        start.elapsed()
    );
    c.shutdown().await;
}

/// Strangers throwing bytes at a live node: random datagrams, truncated QUIC-looking packets and
/// huge length prefixes at the gossip port, garbage at the Redis port. The node keeps serving,
/// its data is intact, and replication still works. Seeded; `GARBAGE_SEED=S` replays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_at_the_gossip_and_redis_ports_changes_nothing() {
    use rand::{Rng, SeedableRng};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let seed: u64 = std::env::var("GARBAGE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    println!("garbage seed {seed} (GARBAGE_SEED={seed} replays)");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let c = Cluster::start(2).await;
    let _: String = c.cmd(0, &["SET", "precious", "intact"]).await;
    c.converge_get("precious", Some("intact")).await;

    let gossip = c.spec(1).gossip;
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..2_000 {
        let len = match i % 4 {
            0 => rng.gen_range(1..20),
            1 => rng.gen_range(20..1_300),
            // A QUIC long header with absurd lengths.
            2 => 1_200,
            _ => rng.gen_range(1..65_000),
        };
        let mut d: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        if i % 4 == 2 {
            d[0] = 0xc0 | (d[0] & 0x0f);
            d[1..5].copy_from_slice(&1u32.to_be_bytes());
            d[5] = 0xff;
        }
        let _ = sock.send_to(&d, gossip).await;
    }

    let redis = c.spec(1).redis;
    for i in 0..50 {
        let mut s = tokio::net::TcpStream::connect(redis).await.unwrap();
        let junk: Vec<u8> = match i % 3 {
            0 => (0..rng.gen_range(1..4_000)).map(|_| rng.gen()).collect(),
            1 => b"*3\r\n$3\r\nSET\r\n$9999999999\r\n".to_vec(),
            _ => b"*2\r\n$3\r\nGET\r\n$5\r\npreci".to_vec(),
        };
        let _ = s.write_all(&junk).await;
        let _ = s.shutdown().await;
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(Duration::from_millis(200), s.read_to_end(&mut sink)).await;
    }

    // Still serving, data intact, and still replicating both ways.
    assert_eq!(c.get(1, "precious").await.as_deref(), Some("intact"));
    let _: String = c.cmd(1, &["SET", "after", "garbage"]).await;
    c.converge_get("after", Some("garbage")).await;
    c.shutdown().await;
}
