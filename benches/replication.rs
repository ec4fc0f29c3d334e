//! Replication figures of SPEC §8, measured with real regions in this process on loopback
//! (the integration tests' `Cluster`: real QUIC, TLS, Redis and HTTP code, a UDP relay on every
//! link) and the `redis` crate as the client:
//!
//! 1. memory per ~1 KB session: RSS growth of this process while a one-region node loads N
//!    hashes, against `redis-server`'s `used_memory` growth for the same data (target ≤ 1.5×);
//! 2. replication latency: from a `SET` acknowledged by region 0 to `GET` on region 1 returning
//!    it (polled in a tight loop), on plain loopback and with a one-way delay d injected by the
//!    relay in both directions (targets: p99 ≤ 5 ms, p99 ≤ d + 5 ms);
//! 3. catch-up after a partition: 100k session keys written in region 0 while the link to
//!    region 1 is cut; after healing, the time until region 1 holds them all (`DBSIZE`) and the
//!    gossip bytes region 0 produced meanwhile, against the size of the current state of those
//!    keys (targets: ≤ 2 s, ≤ 1.2×);
//! 4. touch coalescing: 1M `EXPIRE` of 1k sessions paced over ~10 s, with the shipped 2 ms
//!    flush interval and with 100 ms; bytes region 0 replicated against touches and against
//!    the sessions × flushes bound (target: bytes follow sessions × flushes, not touches).
//!
//! Run: `cargo bench --bench replication` (about 1.5 minutes). Scale with environment
//! variables: `BENCH_SESSIONS` (memory, 100000), `BENCH_LAT_WRITES` (1000),
//! `BENCH_LAT_DELAYED_WRITES` (300), `BENCH_DELAY_MS` (30), `BENCH_KEYS` (catch-up, 100000),
//! `BENCH_TOUCHES` (1000000), `BENCH_TOUCH_SESSIONS` (1000), `BENCH_TOUCH_SECS` (10),
//! `BENCH_ONLY` (comma-separated subset of `memory,latency,catchup,touch`),
//! `BENCH_REDIS_PORT` (6391). `redis-server` must be installed (`apt-get install -y
//! redis-server`); without it the memory comparison is skipped.
//!
//! The nodes, the relay and the client share this process and the machine's two cores, so
//! every figure includes client and scheduling overhead.

// Test code: a failed unwrap is a failed test, and nothing here is reachable from outside.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use sessionmesh::certs;
use sessionmesh::config::Config;
use sessionmesh::node::Node;
use sessionmesh::server::{Listeners, Server};
use sessionmesh_core::{wire, Now, RegionId, Replica};
use sessionmesh_harness::cluster::{eventually, Cluster, NAMES};
use sessionmesh_harness::Relay;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One line of the final table.
struct Row {
    figure: String,
    target: String,
    measured: String,
    verdict: &'static str,
}

fn row(figure: &str, target: &str, measured: String, ok: Option<bool>) -> Row {
    Row {
        figure: figure.to_string(),
        target: target.to_string(),
        measured,
        verdict: match ok {
            Some(true) => "met",
            Some(false) => "NOT MET",
            None => "-",
        },
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v}: not a number")),
        Err(_) => default,
    }
}

fn enabled(what: &str) -> bool {
    std::env::var("BENCH_ONLY").map_or(true, |v| v.split(',').any(|w| w.trim() == what))
}

/// A connection with no response timeout (the crate's default of 500 ms is too short for
/// big pipelines on a busy machine).
async fn connect(addr: SocketAddr) -> MultiplexedConnection {
    let client = redis::Client::open(format!("redis://{addr}/")).unwrap();
    let config = redis::AsyncConnectionConfig::new()
        .set_response_timeout(None)
        .set_connection_timeout(Some(Duration::from_secs(10)));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
}

/// Sends commands `0..n` (built by `make`) to `addr` from `conns` connections, in pipelines
/// of `batch`. With `pace`, batch k of the whole run does not start before `k × pace`.
async fn pipelined<F>(
    addr: SocketAddr,
    conns: u64,
    n: u64,
    batch: u64,
    pace: Option<Duration>,
    make: F,
) -> Duration
where
    F: Fn(u64) -> redis::Cmd + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let start = Instant::now();
    let batches = n.div_ceil(batch);
    let mut tasks = Vec::new();
    for c in 0..conns {
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            let mut con = connect(addr).await;
            for b in (c..batches).step_by(conns as usize) {
                if let Some(p) = pace {
                    let due = start + p * b as u32;
                    tokio::time::sleep_until(due.into()).await;
                }
                let mut pipe = redis::pipe();
                for i in b * batch..((b + 1) * batch).min(n) {
                    pipe.add_command(make(i)).ignore();
                }
                pipe.query_async::<()>(&mut con)
                    .await
                    .unwrap_or_else(|e| panic!("pipeline to {addr}: {e}"));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    start.elapsed()
}

/// This process's resident set size in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS");
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmRSS value");
    kb * 1024
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

/// A `redis-server` this bench starts (and kills when dropped).
struct RedisServer {
    child: Child,
    addr: SocketAddr,
}

impl RedisServer {
    async fn start(port: u64) -> Option<RedisServer> {
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        if std::net::TcpStream::connect(addr).is_ok() {
            panic!("something already listens on {addr}; set BENCH_REDIS_PORT");
        }
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) => {
                eprintln!("cannot start redis-server ({e}): apt-get install -y redis-server");
                return None;
            }
        };
        let server = RedisServer { child, addr };
        eventually("redis-server answers", Duration::from_secs(10), || async {
            std::net::TcpStream::connect(addr)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await;
        Some(server)
    }

    async fn used_memory(&self, con: &mut MultiplexedConnection) -> (u64, u64) {
        let info: String = redis::cmd("INFO")
            .arg("memory")
            .query_async(con)
            .await
            .unwrap();
        let field = |name: &str| -> u64 {
            info.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}:")))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("no {name} in INFO memory"))
        };
        (field("used_memory"), field("used_memory_rss"))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The ~1 KB session of the memory figure: four fields, distinct values per session.
fn session_cmd(i: u64) -> redis::Cmd {
    let mut c = redis::cmd("HSET");
    c.arg(format!("session:{i:08}"))
        .arg("user")
        .arg(format!("user-{i:08}@example.com"))
        .arg("cart")
        .arg(format!("{i:08}").repeat(64))
        .arg("prefs")
        .arg(format!("{:08}", i * 7).repeat(48))
        .arg("seen")
        .arg(format!("{}", 1_700_000_000_000 + i));
    c
}

/// Payload bytes of [`session_cmd`]: key, field names and values.
fn session_payload(i: u64) -> u64 {
    let k = format!("session:{i:08}").len();
    let fields = 4 + 4 + 5 + 4;
    let values = format!("user-{i:08}@example.com").len()
        + 8 * 64
        + 8 * 48
        + format!("{}", 1_700_000_000_000 + i).len();
    (k + fields + values) as u64
}

async fn memory(rows: &mut Vec<Row>) {
    let n = env_u64("BENCH_SESSIONS", 100_000);
    let payload: u64 = (0..n).map(session_payload).sum();
    println!(
        "\n== memory: {n} sessions of {:.0} bytes (key + 4 fields + values)",
        payload as f64 / n as f64
    );
    let Some(redis) = RedisServer::start(env_u64("BENCH_REDIS_PORT", 6391)).await else {
        rows.push(row(
            "memory per ~1 KB session vs Redis",
            "<= 1.5x",
            "skipped: no redis-server".into(),
            None,
        ));
        return;
    };

    let cluster = Cluster::start(1).await;
    let addr = cluster.spec(0).redis;
    // Warm up the node's Redis path and the client so their one-off allocations are not
    // counted as session memory.
    pipelined(addr, 4, 1000, 250, None, |i| {
        let mut c = redis::cmd("SET");
        c.arg(format!("warmup:{i}")).arg("x");
        c
    })
    .await;
    let before = rss();
    let took = pipelined(addr, 4, n, 500, None, session_cmd).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = rss();
    let keys = cluster.node(0).stats().keys;
    let node_per = (after.saturating_sub(before)) as f64 / n as f64;
    println!(
        "sessionmesh (1 region): loaded in {:.2} s, {keys} keys, RSS {:.1} -> {:.1} MiB: {node_per:.0} bytes per session",
        took.as_secs_f64(),
        mib(before),
        mib(after)
    );
    cluster.shutdown().await;

    let mut con = connect(redis.addr).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (used0, rss0) = redis.used_memory(&mut con).await;
    let took = pipelined(redis.addr, 4, n, 500, None, session_cmd).await;
    // used_memory_rss is refreshed by Redis's cron (every 100 ms).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (used1, rss1) = redis.used_memory(&mut con).await;
    let redis_per = (used1.saturating_sub(used0)) as f64 / n as f64;
    let redis_rss_per = (rss1.saturating_sub(rss0)) as f64 / n as f64;
    println!(
        "redis-server: loaded in {:.2} s, used_memory {:.1} -> {:.1} MiB: {redis_per:.0} bytes per session (RSS: {redis_rss_per:.0})",
        took.as_secs_f64(),
        mib(used0),
        mib(used1)
    );
    let ratio = node_per / redis_per;
    println!(
        "ratio: {ratio:.2}x Redis's used_memory, {:.2}x its RSS growth",
        node_per / redis_rss_per
    );
    rows.push(row(
        "memory per ~1 KB session vs Redis",
        "<= 1.5x",
        format!(
            "{node_per:.0} B vs {redis_per:.0} B (used_memory) = {ratio:.2}x; {:.2}x Redis RSS growth",
            node_per / redis_rss_per
        ),
        Some(ratio <= 1.5),
    ));
}

/// Percentiles of replication latency: (p50, p99, max, timeouts).
struct Latency {
    p50: Duration,
    p99: Duration,
    max: Duration,
    missed: u64,
}

/// `writes` times: SET in region 0, then GET in region 1 until it shows the value.
async fn measure_latency(cluster: &Cluster, tag: &str, writes: u64) -> Latency {
    let mut w = connect(cluster.spec(0).redis).await;
    let mut r = connect(cluster.spec(1).redis).await;
    let deadline = Duration::from_secs(5);
    let mut samples = Vec::with_capacity(writes as usize);
    let mut missed = 0;
    for i in 0..writes {
        let key = format!("lat:{tag}:{i}");
        let value = format!("v{i}");
        let () = redis::cmd("SET")
            .arg(&key)
            .arg(&value)
            .query_async(&mut w)
            .await
            .unwrap();
        let acked = Instant::now();
        loop {
            let got: Option<String> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut r)
                .await
                .unwrap();
            if got.as_deref() == Some(value.as_str()) {
                samples.push(acked.elapsed());
                break;
            }
            if acked.elapsed() > deadline {
                missed += 1;
                break;
            }
        }
    }
    samples.sort();
    let at = |p: f64| {
        samples
            .get(((samples.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or_default()
    };
    Latency {
        p50: at(0.50),
        p99: at(0.99),
        max: samples.last().copied().unwrap_or_default(),
        missed,
    }
}

async fn latency(rows: &mut Vec<Row>) {
    let writes = env_u64("BENCH_LAT_WRITES", 1000);
    let delayed_writes = env_u64("BENCH_LAT_DELAYED_WRITES", 300);
    let d = env_u64("BENCH_DELAY_MS", 30);
    println!("\n== replication latency: SET acked in region 0 -> visible to GET in region 1");
    let cluster = Cluster::start(2).await;
    // Warm-up: connections, caches, congestion window.
    measure_latency(&cluster, "warmup", 50).await;
    for (delay, n) in [(0, writes), (d, delayed_writes)] {
        cluster.relay(0, 1).delay_to_b(Duration::from_millis(delay));
        cluster.relay(0, 1).delay_to_a(Duration::from_millis(delay));
        if delay > 0 {
            measure_latency(&cluster, &format!("warmup{delay}"), 20).await;
        }
        let l = measure_latency(&cluster, &format!("d{delay}"), n).await;
        let budget = delay as f64 + 5.0;
        println!(
            "one-way delay {delay} ms, {n} writes: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, not visible within 5 s: {}",
            ms(l.p50),
            ms(l.p99),
            ms(l.max),
            l.missed
        );
        let (figure, target) = if delay == 0 {
            (
                "replication latency p99, loopback".to_string(),
                "<= 5 ms".to_string(),
            )
        } else {
            (
                format!("replication latency p99, {delay} ms one-way delay"),
                format!("<= {budget:.0} ms"),
            )
        };
        rows.push(row(
            &figure,
            &target,
            format!(
                "p50 {:.2} / p99 {:.2} / max {:.2} ms ({n} writes, {} missed)",
                ms(l.p50),
                ms(l.p99),
                ms(l.max),
                l.missed
            ),
            Some(ms(l.p99) <= budget && l.missed == 0),
        ));
    }
    cluster.shutdown().await;
}

/// Two running regions, 0 and 1, with the relay on their link: the test `Cluster`, or a
/// [`Pair`] with settings the `Cluster` has built in.
trait Two {
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
fn link_up(two: &dyn Two, i: usize) -> bool {
    let peer = two.name(1 - i);
    two.node(i)
        .peer_views()
        .iter()
        .any(|p| p.name == peer && p.link.connected && p.link.trusted)
}

async fn dbsize(con: &mut MultiplexedConnection) -> u64 {
    redis::cmd("DBSIZE").query_async(con).await.unwrap()
}

/// One of the node's `/metrics` node/transport counters.
fn counter(node: &Node, name: &str) -> u64 {
    node.node_counters()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map_or(0, |(_, v)| v)
}

/// The gossip bytes the node's transport wrote to its QUIC streams.
fn transport_bytes(node: &Node) -> u64 {
    counter(node, "transport_bytes_sent")
}

/// The catch-up figure on `two`; `label` names the setup in the table.
async fn catchup_on(two: &dyn Two, label: &str, rows: &mut Vec<Row>) {
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
        wire::encode(&wire::Message::CatchUpPart {
            id: 0,
            seq: 0,
            entries,
            done: None,
        })
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

async fn catchup(rows: &mut Vec<Row>) {
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

/// Settings of a [`Pair`] that the test `Cluster` has built in.
struct PairSettings {
    flush_ms: u64,
    /// Per region: `replication.max_frame_bytes` (the sender's parts are cut by its own).
    max_frame_bytes: [u64; 2],
}

/// Two regions like the test `Cluster`'s (same timers, a relay on the link) but with
/// [`PairSettings`] of our own.
struct Pair {
    _dir: tempfile::TempDir,
    servers: Vec<Server>,
    relay: Relay,
}

impl Two for Pair {
    fn node(&self, i: usize) -> &Arc<Node> {
        self.servers[i].node()
    }
    fn redis(&self, i: usize) -> SocketAddr {
        self.servers[i].redis_addr()
    }
    fn relay(&self) -> &Relay {
        &self.relay
    }
    fn name(&self, i: usize) -> String {
        NAMES[i].to_string()
    }
}

impl Pair {
    async fn start(settings: PairSettings) -> Pair {
        let dir = tempfile::tempdir().unwrap();
        let listeners: Vec<Listeners> = (0..2)
            .map(|_| Listeners {
                redis: std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
                gossip: std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
                http: std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
            })
            .collect();
        let gossip: Vec<SocketAddr> = listeners
            .iter()
            .map(|l| l.gossip.local_addr().unwrap())
            .collect();
        let relay = Relay::start(gossip[0], gossip[1]).await;
        let mut configs = Vec::new();
        for (i, max_frame_bytes) in settings.max_frame_bytes.into_iter().enumerate() {
            let mut text = format!(
                "[tls]\nca = \"certs/ca.pem\"\n\
                 [replication]\nflush_interval_ms = {}\nmax_frame_bytes = {}\n\
                 max_clock_drift_ms = 500\ntombstone_grace_ms = 60000\ncatchup_interval_ms = 200\n\
                 [transport]\nkeep_alive_ms = 150\nidle_timeout_ms = 1000\n\
                 reconnect_min_ms = 20\nreconnect_max_ms = 300\n",
                settings.flush_ms, max_frame_bytes
            );
            for (j, l) in listeners.iter().enumerate() {
                // Region 0 dials region 1 through the relay.
                let g = if i == 0 && j == 1 {
                    relay.addr()
                } else {
                    gossip[j]
                };
                text.push_str(&format!(
                    "[[regions]]\nname = \"{}\"\nid = {}\nredis = \"{}\"\ngossip = \"{g}\"\nhttp = \"{}\"\n",
                    NAMES[j],
                    j + 1,
                    l.redis.local_addr().unwrap(),
                    l.http.local_addr().unwrap(),
                ));
            }
            let path = dir.path().join(format!("{}.toml", NAMES[i]));
            std::fs::write(&path, text).unwrap();
            configs.push(Config::load(&path).expect("bench config"));
        }
        certs::generate(&configs[0], &dir.path().join("certs")).expect("certs");
        let mut servers = Vec::new();
        for (i, l) in listeners.into_iter().enumerate() {
            let c = &configs[i];
            let tls = certs::load(c, c.region(NAMES[i]).unwrap()).unwrap();
            servers.push(Server::start_with(c, NAMES[i], l, tls).await.unwrap());
        }
        let pair = Pair {
            _dir: dir,
            servers,
            relay,
        };
        // Connected and restored (each start restores from the peer; LOADING meanwhile).
        eventually("pair connected", Duration::from_secs(20), || async {
            let serving = pair.servers.iter().all(|s| s.node().is_serving());
            if link_up(&pair, 0) && link_up(&pair, 1) && serving {
                Ok(())
            } else {
                Err("links down".into())
            }
        })
        .await;
        pair
    }

    async fn shutdown(self) {
        for s in self.servers {
            s.shutdown().await;
        }
    }
}

async fn touches(rows: &mut Vec<Row>) {
    let touches = env_u64("BENCH_TOUCHES", 1_000_000);
    let sessions = env_u64("BENCH_TOUCH_SESSIONS", 1000);
    let secs = env_u64("BENCH_TOUCH_SECS", 10);
    let batch = 500;
    let pace = Duration::from_secs(secs) / (touches.div_ceil(batch)) as u32;
    println!(
        "\n== touch coalescing: {touches} EXPIRE of {sessions} sessions paced over {secs} s (4 connections, pipelines of {batch})"
    );
    println!(
        "{:>8} {:>8} {:>12} {:>10} {:>10} {:>12} {:>10} {:>14} {:>10}",
        "flush_ms",
        "secs",
        "touches",
        "flushes",
        "frames",
        "bytes",
        "B/touch",
        "sess x flush",
        "B/(s x f)"
    );
    let mut lines = Vec::new();
    for flush_ms in [2, 100] {
        let pair = Pair::start(PairSettings {
            flush_ms,
            max_frame_bytes: [256 * 1024; 2],
        })
        .await;
        let addr = pair.servers[0].redis_addr();
        pipelined(addr, 2, sessions, 500, None, move |i| {
            let mut c = redis::cmd("HSET");
            c.arg(format!("session:{i}"))
                .arg("user")
                .arg(format!("u{i}"));
            c
        })
        .await;
        // Let the creations replicate before counting.
        tokio::time::sleep(Duration::from_millis(200 + 2 * flush_ms)).await;
        let node = pair.servers[0].node().clone();
        let s0 = node.stats();
        let took = pipelined(addr, 4, touches, batch, Some(pace), move |i| {
            let mut c = redis::cmd("EXPIRE");
            c.arg(format!("session:{}", i % sessions)).arg(1800);
            c
        })
        .await;
        // The last flush.
        tokio::time::sleep(Duration::from_millis(2 * flush_ms + 20)).await;
        let s1 = node.stats();
        let bytes = s1.bytes_sent - s0.bytes_sent;
        let frames = s1.frames_sent - s0.frames_sent;
        let flushes = (ms(took) / flush_ms as f64).ceil() as u64;
        // At most every session once per flush, and no more than the touches of that flush.
        let per_flush = sessions.min(touches.div_ceil(flushes.max(1)));
        let bound = flushes * per_flush;
        println!(
            "{flush_ms:>8} {:>8.2} {touches:>12} {flushes:>10} {frames:>10} {bytes:>12} {:>10.2} {bound:>14} {:>10.2}",
            took.as_secs_f64(),
            bytes as f64 / touches as f64,
            bytes as f64 / bound as f64
        );
        lines.push(format!(
            "{flush_ms} ms flush: {bytes} B for {touches} touches in {:.1} s = {:.2} B/touch, {:.1} B per (session x flush)",
            took.as_secs_f64(),
            bytes as f64 / touches as f64,
            bytes as f64 / bound as f64
        ));
        pair.shutdown().await;
    }
    println!(
        "(flushes = run time / flush interval; sess x flush = flushes x min(sessions, touches per flush))"
    );
    rows.push(row(
        "touch coalescing: bytes vs sessions x flushes",
        "follows sessions x flushes",
        lines.join("; "),
        None,
    ));
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // The nodes' logs, for diagnosis: RUST_LOG=warn cargo bench --bench replication
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let start = Instant::now();
    let mut rows = Vec::new();
    // Memory first: a fresh heap makes RSS growth mean something.
    if enabled("memory") {
        memory(&mut rows).await;
    }
    if enabled("latency") {
        latency(&mut rows).await;
    }
    if enabled("catchup") {
        catchup(&mut rows).await;
    }
    if enabled("touch") {
        touches(&mut rows).await;
    }
    println!("\n== summary ({:.0} s)", start.elapsed().as_secs_f64());
    let w0 = rows.iter().map(|r| r.figure.len()).max().unwrap_or(0);
    let w1 = rows.iter().map(|r| r.target.len()).max().unwrap_or(0);
    println!(
        "{:<w0$}  {:<w1$}  {:<7}  measured",
        "figure", "target", "verdict"
    );
    for r in &rows {
        println!(
            "{:<w0$}  {:<w1$}  {:<7}  {}",
            r.figure, r.target, r.verdict, r.measured
        );
    }
}
