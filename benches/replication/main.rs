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

mod catchup;
mod latency;
mod memory;
mod touches;

use catchup::{catchup, link_up, Two};
use latency::latency;
use memory::memory;
use touches::touches;

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
