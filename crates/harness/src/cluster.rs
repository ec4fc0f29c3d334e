//! N real regions in this process, on loopback ephemeral ports, with certificates generated
//! into a temp dir and a [`Relay`] on every pair's link so a test can cut or delay any of them.
//!
//! Each region gets its own config file: it lists its own real addresses, and for every peer
//! it dials (the higher ids) the relay's address instead of the peer's. Nodes are the real
//! thing (`sessionmesh::server::Server`): the same QUIC, TLS, Redis and HTTP code as
//! `sessionmesh serve`.
//!
//! Waiting is done by polling with a deadline ([`eventually`]), never by sleeping for a
//! guessed time.

pub use crate::eventually;
use crate::Relay;
use sessionmesh::certs;
use sessionmesh::config::{Config, RegionSpec};
use sessionmesh::node::Node;
use sessionmesh::server::{Listeners, Server};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Region names used by the clusters, in id order.
pub const NAMES: [&str; 5] = ["us-east", "eu-west", "ap-south", "sa-east", "af-south"];

/// How long [`eventually`] waits by default: generous, since two cores are shared with
/// other builds; a healthy run converges in well under a second.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A running cluster.
pub struct Cluster {
    dir: TempDir,
    configs: Vec<Config>,
    servers: Vec<Option<Server>>,
    relays: BTreeMap<(usize, usize), Relay>,
}

/// Timers tuned for tests: fast catch-up, fast loss detection, fast reconnects.
const SETTINGS: &[(&str, &str, &str)] = &[
    ("replication", "flush_interval_ms", "2"),
    ("replication", "max_clock_drift_ms", "500"),
    ("replication", "tombstone_grace_ms", "60000"),
    ("replication", "catchup_interval_ms", "200"),
    ("transport", "keep_alive_ms", "150"),
    ("transport", "idle_timeout_ms", "1000"),
    ("transport", "reconnect_min_ms", "20"),
    ("transport", "reconnect_max_ms", "300"),
];

/// The settings part of every region's config: [`SETTINGS`], with `overrides`
/// (`("replication.catchup_interval_ms", "1000")`, say) replacing or adding keys.
fn settings_toml(overrides: &[(&str, &str)]) -> String {
    let mut text = String::from("\n[tls]\nca = \"certs/ca.pem\"\n");
    for table in ["replication", "transport", "cluster", "redis"] {
        text.push_str(&format!("\n[{table}]\n"));
        let mut keys: Vec<(&str, &str)> = SETTINGS
            .iter()
            .filter(|(t, _, _)| *t == table)
            .map(|(_, k, v)| (*k, *v))
            .collect();
        for (name, v) in overrides {
            let Some((t, k)) = name.split_once('.') else {
                panic!("override {name} is not table.key");
            };
            if t != table {
                continue;
            }
            keys.retain(|(key, _)| *key != k);
            keys.push((k, v));
        }
        for (k, v) in keys {
            text.push_str(&format!("{k} = {v}\n"));
        }
    }
    text
}

struct Addrs {
    redis: SocketAddr,
    gossip: SocketAddr,
    http: SocketAddr,
}

impl Cluster {
    /// Starts `n` regions (ids 1..=n) and waits until every pair is connected.
    pub async fn start(n: usize) -> Cluster {
        Cluster::start_skewed(&vec![0; n]).await
    }

    /// Starts one region per entry of `clock_offsets_ms`, each with that much added to its
    /// wall clock (the test-only `clock_offset_ms` setting).
    pub async fn start_skewed(clock_offsets_ms: &[i64]) -> Cluster {
        Cluster::start_tuned(clock_offsets_ms, &[]).await
    }

    /// Starts one region per entry of `clock_offsets_ms`, with `overrides` of the test
    /// settings (`("transport.idle_timeout_ms", "3000")`, say).
    pub async fn start_tuned(clock_offsets_ms: &[i64], overrides: &[(&str, &str)]) -> Cluster {
        let n = clock_offsets_ms.len();
        assert!((1..=NAMES.len()).contains(&n));
        let dir = tempfile::tempdir().expect("temp dir");
        let mut listeners = Vec::new();
        let mut addrs = Vec::new();
        for _ in 0..n {
            let l = Listeners {
                redis: std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
                gossip: std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
                http: std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
            };
            addrs.push(Addrs {
                redis: l.redis.local_addr().unwrap(),
                gossip: l.gossip.local_addr().unwrap(),
                http: l.http.local_addr().unwrap(),
            });
            listeners.push(l);
        }
        let mut relays = BTreeMap::new();
        for i in 0..n {
            for j in i + 1..n {
                relays.insert((i, j), Relay::start(addrs[i].gossip, addrs[j].gossip).await);
            }
        }
        let mut configs = Vec::new();
        for i in 0..n {
            let mut text = settings_toml(overrides);
            for (j, a) in addrs.iter().enumerate() {
                // i dials the higher ids, through the relay of that pair.
                let gossip = if j > i {
                    relays[&(i, j)].addr()
                } else {
                    a.gossip
                };
                text.push_str(&format!(
                    "\n[[regions]]\nname = \"{}\"\nid = {}\nredis = \"{}\"\ngossip = \"{}\"\nhttp = \"{}\"\nclock_offset_ms = {}\n",
                    NAMES[j],
                    j + 1,
                    a.redis,
                    gossip,
                    a.http,
                    clock_offsets_ms[j],
                ));
            }
            let path = dir.path().join(format!("{}.toml", NAMES[i]));
            std::fs::write(&path, &text).unwrap();
            configs.push(Config::load(&path).expect("test config"));
        }
        certs::generate(&configs[0], &dir.path().join("certs")).expect("certs");
        let mut servers = Vec::new();
        for (i, l) in listeners.into_iter().enumerate() {
            let c = &configs[i];
            let tls = certs::load(c, c.region(NAMES[i]).unwrap()).expect("load certs");
            servers.push(Some(
                Server::start_with(c, NAMES[i], l, tls)
                    .await
                    .expect("start region"),
            ));
        }
        let cluster = Cluster {
            dir,
            configs,
            servers,
            relays,
        };
        cluster.wait_connected().await;
        // Every start restores from the peers first (data commands answer LOADING meanwhile).
        eventually("every region serves", DEADLINE, || async {
            match (0..n).find(|&i| !cluster.node(i).is_serving()) {
                Some(i) => Err(format!("{} still restoring", NAMES[i])),
                None => Ok(()),
            }
        })
        .await;
        cluster
    }

    /// Number of regions.
    #[allow(
        clippy::len_without_is_empty,
        reason = "a cluster has at least one region"
    )]
    pub fn len(&self) -> usize {
        self.configs.len()
    }

    /// The temp dir holding configs and certificates.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Region `i`'s own config (its peers' gossip addresses may be relays).
    pub fn config(&self, i: usize) -> &Config {
        &self.configs[i]
    }

    /// Region `i`'s spec (its real addresses).
    pub fn spec(&self, i: usize) -> &RegionSpec {
        self.configs[i].region(NAMES[i]).unwrap()
    }

    /// The node of running region `i`.
    pub fn node(&self, i: usize) -> &Arc<Node> {
        self.servers[i]
            .as_ref()
            .unwrap_or_else(|| panic!("{} is stopped", NAMES[i]))
            .node()
    }

    /// The relay on the link between regions `i` and `j`.
    pub fn relay(&self, i: usize, j: usize) -> &Relay {
        &self.relays[&(i.min(j), i.max(j))]
    }

    /// Cuts region `i` off from every other region.
    pub fn isolate(&self, i: usize) {
        for j in (0..self.len()).filter(|j| *j != i) {
            self.relay(i, j).partition();
        }
    }

    /// Cuts every link.
    pub fn partition_all(&self) {
        self.relays.values().for_each(Relay::partition);
    }

    /// Heals every link.
    pub fn heal_all(&self) {
        self.relays.values().for_each(Relay::heal);
    }

    /// Stops region `i` (clean shutdown; its ports are free afterwards).
    pub async fn stop(&mut self, i: usize) {
        if let Some(s) = self.servers[i].take() {
            s.shutdown().await;
        }
    }

    /// Starts region `i` again on the same addresses and data folder: it recovers what it had
    /// logged and catches up from its peers for the rest.
    pub async fn restart(&mut self, i: usize) {
        assert!(self.servers[i].is_none(), "stop {} first", NAMES[i]);
        let c = &self.configs[i];
        let spec = c.region(NAMES[i]).unwrap();
        let tls = certs::load(c, spec).expect("load certs");
        // The old sockets were just closed; retry briefly in case the OS is slow to let go.
        let start = Instant::now();
        let listeners = loop {
            match Listeners::bind(spec) {
                Ok(l) => break l,
                Err(e) if start.elapsed() < Duration::from_secs(5) => {
                    eprintln!("rebinding {}: {e}; retrying", NAMES[i]);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot rebind {}: {e}", NAMES[i]),
            }
        };
        self.servers[i] = Some(
            Server::start_with(c, NAMES[i], listeners, tls)
                .await
                .expect("restart region"),
        );
    }

    /// Region `i`'s data folder.
    pub fn data_dir(&self, i: usize) -> std::path::PathBuf {
        self.configs[i].persistence().region_dir(NAMES[i])
    }

    /// Replaces stopped region `i`'s data folder with a copy of `from` (or with nothing, for
    /// `None`: a replaced disk).
    pub fn replace_data(&self, i: usize, from: Option<&Path>) {
        assert!(self.servers[i].is_none(), "stop {} first", NAMES[i]);
        let dir = self.data_dir(i);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("data folder");
        if let Some(from) = from {
            copy_dir(from, &dir);
        }
    }

    /// A copy of stopped region `i`'s data folder (a backup), in a new temp dir.
    pub fn backup(&self, i: usize) -> TempDir {
        assert!(self.servers[i].is_none(), "stop {} first", NAMES[i]);
        let copy = tempfile::tempdir().expect("temp dir");
        copy_dir(&self.data_dir(i), copy.path());
        copy
    }

    /// Waits until every running region has a trusted link to every other running region.
    pub async fn wait_connected(&self) {
        eventually("all links up", DEADLINE, || async {
            for (i, s) in self.servers.iter().enumerate() {
                let Some(s) = s else { continue };
                for p in s.node().peer_views() {
                    let j = NAMES.iter().position(|n| *n == p.name).unwrap();
                    if self.servers[j].is_some() && !(p.link.connected && p.link.trusted) {
                        return Err(format!("{} -> {} not up", NAMES[i], p.name));
                    }
                }
            }
            Ok(())
        })
        .await;
    }

    /// A fresh Redis connection to region `i`.
    pub async fn redis(&self, i: usize) -> redis::aio::MultiplexedConnection {
        let addr = self.spec(i).redis;
        let client = redis::Client::open(format!("redis://{addr}/")).unwrap();
        client
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| panic!("connect to {} at {addr}: {e}", NAMES[i]))
    }

    /// Runs one command on region `i` and returns its typed reply. A region restoring after
    /// a restart answers `LOADING` (the command did not run); this retries then, as a client
    /// that knows the code does, until [`DEADLINE`].
    pub async fn cmd<T: redis::FromRedisValue>(&self, i: usize, args: &[&str]) -> T {
        self.cmd_in(i, 0, args).await
    }

    /// [`Cluster::cmd`] in database `db`: on a connection that selected it, as drivers do
    /// through the URL's `/db`.
    pub async fn cmd_in<T: redis::FromRedisValue>(&self, i: usize, db: u8, args: &[&str]) -> T {
        let addr = self.spec(i).redis;
        let client = redis::Client::open(format!("redis://{addr}/{db}")).unwrap();
        let mut con = client
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| panic!("connect to {} at {addr} (db {db}): {e}", NAMES[i]));
        let mut c = redis::cmd(args[0]);
        for a in &args[1..] {
            c.arg(*a);
        }
        let started = Instant::now();
        loop {
            match c.query_async(&mut con).await {
                Ok(v) => return v,
                Err(e) if e.code() == Some("LOADING") && started.elapsed() < DEADLINE => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("{} db {db} {:?}: {e}", NAMES[i], args),
            }
        }
    }

    /// `GET key` on region `i`.
    pub async fn get(&self, i: usize, key: &str) -> Option<String> {
        self.cmd(i, &["GET", key]).await
    }

    /// Polls until `GET key` gives `want` on every running region.
    pub async fn converge_get(&self, key: &str, want: Option<&str>) {
        eventually(
            &format!("GET {key} == {want:?} everywhere"),
            DEADLINE,
            || async {
                for i in self.running() {
                    let got = self.get(i, key).await;
                    if got.as_deref() != want {
                        return Err(format!("{} has {got:?}", NAMES[i]));
                    }
                }
                Ok(())
            },
        )
        .await;
    }

    /// Polls until `key` exists on no running region (`EXISTS`, which answers for a key of
    /// any type: a `GET` would fail with `WRONGTYPE` on a hash not yet deleted).
    pub async fn converge_gone(&self, key: &str) {
        eventually(&format!("{key} gone everywhere"), DEADLINE, || async {
            for i in self.running() {
                let n: i64 = self.cmd(i, &["EXISTS", key]).await;
                if n != 0 {
                    return Err(format!("{} still has it", NAMES[i]));
                }
            }
            Ok(())
        })
        .await;
    }

    /// Indices of the running regions.
    pub fn running(&self) -> Vec<usize> {
        (0..self.len())
            .filter(|i| self.servers[*i].is_some())
            .collect()
    }

    /// GET on region `i`'s HTTP port; returns (status code, body).
    pub async fn http_get(&self, i: usize, path: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.spec(i).http;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.unwrap();
        let text = String::from_utf8_lossy(&buf).into_owned();
        let code = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (code, body)
    }

    /// Stops every region.
    pub async fn shutdown(mut self) {
        for i in 0..self.len() {
            self.stop(i).await;
        }
    }
}

/// Copies the files of `from` into `to`, subfolders included.
fn copy_dir(from: &Path, to: &Path) {
    // Recursive: a sharded region keeps one folder per shard (`shard-NNN`).
    for e in std::fs::read_dir(from).expect("read data folder") {
        let e = e.expect("entry");
        let kind = e.file_type().expect("type");
        if kind.is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
        } else if kind.is_dir() {
            let sub = to.join(e.file_name());
            std::fs::create_dir_all(&sub).expect("data subfolder");
            copy_dir(&e.path(), &sub);
        }
    }
}
