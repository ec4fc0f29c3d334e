//! Catch-up after a partition: bytes and time, on the test cluster and a tuned pair.

use super::*;

/// Two running regions, 0 and 1, with the relay on their link: the test `Cluster`, or a
/// [`Pair`] with settings the `Cluster` has built in.
pub(crate) trait Two {
    fn node(&self, i: usize) -> &Arc<Node>;
    fn redis(&self, i: usize) -> SocketAddr;
    fn relay(&self) -> &Relay;
    fn name(&self, i: usize) -> String;
}

impl Two for Cluster {
    fn node(&self, i: usize) -> &Arc<Node> {
        Cluster::node(self, i)
    }
    fn redis(&self, i: usize) -> SocketAddr {
        self.spec(i).redis
    }
    fn relay(&self) -> &Relay {
        Cluster::relay(self, 0, 1)
    }
    fn name(&self, i: usize) -> String {
        self.spec(i).name.clone()
    }
}

/// Whether region `i` sees its link to the other one up.
pub(crate) fn link_up(two: &dyn Two, i: usize) -> bool {
    let peer = two.name(1 - i);
    two.node(i)
        .peer_views()
        .iter()
        .any(|p| p.name == peer && p.link.connected && p.link.trusted)
}

pub(crate) async fn dbsize(con: &mut MultiplexedConnection) -> u64 {
    redis::cmd("DBSIZE").query_async(con).await.unwrap()
}

/// One of the node's `/metrics` node/transport counters.
pub(crate) fn counter(node: &Node, name: &str) -> u64 {
    node.node_counters()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map_or(0, |(_, v)| v)
}

/// The gossip bytes the node's transport wrote to its QUIC streams.
pub(crate) fn transport_bytes(node: &Node) -> u64 {
    counter(node, "transport_bytes_sent")
}

/// The catch-up figure on `two`; `label` names the setup in the table.
pub(crate) async fn catchup_on(two: &dyn Two, label: &str, rows: &mut Vec<Row>) {
    let keys = env_u64("BENCH_KEYS", 100_000);
    let deadline = Duration::from_secs(env_u64("BENCH_CATCHUP_DEADLINE_SECS", 15));
    let rounds = 2;
    println!(
        "\n== catch-up ({label}): {keys} keys x {rounds} writes in region 0 while cut off from region 1"
    );
    two.relay().partition();
    eventually(
        "region 0 sees the link down",
        Duration::from_secs(20),
        || async {
            if link_up(two, 0) {
                Err("still up".into())
            } else {
                Ok(())
            }
        },
    )
    .await;
    let addr = two.redis(0);
    // The same commands go to a standalone core replica (same region ids, real clock), whose
    // key states, encoded as wire entries, are "the current state of those keys".
    let mut mirror = Replica::new(sessionmesh_core::Config::new(
        RegionId(1),
        &[RegionId(1), RegionId(2)],
    ));
    let bytes_before_writes = two.node(0).stats().bytes_sent;
    let mut write_time = Duration::ZERO;
    for round in 0..rounds {
        let cmd = move |i: u64| {
            let mut c = redis::cmd("HSET");
            c.arg(format!("session:{i}"))
                .arg("user")
                .arg(format!("u{i}"))
                .arg("cart")
                .arg(format!("{round}"))
                .arg("seen")
                .arg(format!("{}", 1_700_000_000_000 + i));
            c
        };
        write_time += pipelined(addr, 4, keys, 1000, None, cmd).await;
        let now = wall_ms();
        for i in 0..keys {
            let args: Vec<Bytes> = [
                "HSET".to_string(),
                format!("session:{i}"),
                "user".into(),
                format!("u{i}"),
                "cart".into(),
                format!("{round}"),
                "seen".into(),
                format!("{}", 1_700_000_000_000 + i),
            ]
            .into_iter()
            .map(Bytes::from)
            .collect();
            mirror.execute(
                &args,
                Now {
                    mono_ms: now,
                    wall_ms: now,
                },
            );
        }
    }
    let entries: Vec<_> = (0..keys)
        .map(|i| {
            let k = Bytes::from(format!("session:{i}"));
            let st = mirror.key_state(&k).expect("mirror key").clone();
            (k, st)
        })
        .collect();
    let frame = |entries| {
        wire::encode(
            0,
            &wire::Message::CatchUpPart {
                id: 0,
                seq: 0,
                entries,
                done: None,
            },
        )
        .len() as u64
    };
    let approx: u64 = entries
        .iter()
        .map(|(k, st)| wire::approx_size(k, st) as u64)
        .sum();
    let state = frame(entries) - frame(Vec::new());
    let during_partition = two.node(0).stats().bytes_sent - bytes_before_writes;
    println!(
        "wrote {} HSETs in {:.2} s; region 0 produced {during_partition} gossip bytes meanwhile; current state of the keys: {state} bytes ({:.1} per key)",
        keys * rounds,
        write_time.as_secs_f64(),
        state as f64 / keys as f64
    );
    println!(
        "wire::approx_size (what catch-up parts are cut by) estimates {approx} bytes for them: {:.3}x the encoded size",
        approx as f64 / state as f64
    );

    let mut r1 = connect(two.redis(1)).await;
    let base = dbsize(&mut r1).await;
    let sent0 = two.node(0).stats().bytes_sent;
    let wire0 = transport_bytes(two.node(0));
    let dropped0 = counter(two.node(0), "dropped_transmits");
    let healed = Instant::now();
    two.relay().heal();
    let mut reconnected = None;
    let done = loop {
        if reconnected.is_none() && link_up(two, 0) {
            reconnected = Some(healed.elapsed());
        }
        let n = dbsize(&mut r1).await;
        if n >= base + keys {
            break Some(healed.elapsed());
        }
        if healed.elapsed() > deadline {
            println!(
                "region 1 has {n} of {} keys after {deadline:?}",
                base + keys
            );
            for i in 0..2 {
                println!(
                    "  region {i}: {:?}\n    counters {:?}",
                    two.node(i).stats(),
                    two.node(i).node_counters()
                );
            }
            break None;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let sent = two.node(0).stats().bytes_sent - sent0;
    let wire_sent = transport_bytes(two.node(0)) - wire0;
    let dropped = counter(two.node(0), "dropped_transmits") - dropped0;
    let ratio = wire_sent as f64 / state as f64;
    let reconnected = reconnected.unwrap_or(Duration::ZERO);
    match done {
        Some(t) => println!(
            "healed -> link up again {:.0} ms -> all {keys} keys in region 1 {:.0} ms ({:.0} ms after the link came back)",
            ms(reconnected),
            ms(t),
            ms(t.saturating_sub(reconnected))
        ),
        None => println!("did not converge"),
    }
    println!(
        "region 0: transport wrote {wire_sent} gossip bytes = {ratio:.2}x the current state; the core produced {sent} ({:.2}x; {dropped} frames dropped for want of a link)",
        sent as f64 / state as f64
    );
    rows.push(row(
        &format!("catch-up bytes / state of changed keys ({label})"),
        "<= 1.2x",
        format!(
            "{wire_sent} B sent / {state} B = {ratio:.2}x (core produced {:.2}x)",
            sent as f64 / state as f64
        ),
        Some(done.is_some() && ratio <= 1.2),
    ));
    rows.push(row(
        &format!("catch-up time, {keys} keys, from heal ({label})"),
        "<= 2 s",
        match done {
            Some(t) => format!(
                "{:.2} s ({:.2} s after reconnect)",
                t.as_secs_f64(),
                t.saturating_sub(reconnected).as_secs_f64()
            ),
            None => format!(
                "did not converge in {} s ({} links torn down by region 1)",
                deadline.as_secs(),
                two.node(1)
                    .node_counters()
                    .into_iter()
                    .find(|(n, _)| *n == "transport_bad_frames")
                    .map_or(0, |(_, v)| v)
            ),
        },
        Some(done.is_some_and(|t| t <= Duration::from_secs(2))),
    ));
}

pub(crate) async fn catchup(rows: &mut Vec<Row>) {
    let cluster = Cluster::start(2).await;
    catchup_on(&cluster, "test cluster", rows).await;
    cluster.shutdown().await;
    // Catch-up parts are cut by an estimate of their size that can fall short of the encoded
    // size, and the receiver drops the link on a frame above its `max_frame_bytes`. With the
    // receiver's limit raised, the same run shows what catch-up costs otherwise.
    let pair = Pair::start(PairSettings {
        flush_ms: 2,
        max_frame_bytes: [256 * 1024, 1024 * 1024],
    })
    .await;
    catchup_on(&pair, "receiver max_frame_bytes 1 MiB", rows).await;
    pair.shutdown().await;
}
