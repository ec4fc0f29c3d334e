//! `regions.toml`: the cluster description, parsed into a [`Config`] that cannot be invalid.
//!
//! Parsing happens in two steps: serde reads the text into raw structs that reject unknown
//! keys, then [`Config::from_toml`] checks every value and builds the validated types. Every
//! error names the TOML key it is about (`regions[1].redis: ...`), so an operator can find the
//! line without reading code.
//!
//! Relative certificate and data paths are resolved against the directory of the config file.
//!
//! This module does not read certificates (see [`crate::certs`]) or open sockets.

use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Why a config could not be loaded. Loading never has side effects.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        error: std::io::Error,
    },
    /// The text is not TOML of the expected shape (toml's message names the key and line).
    #[error("{0}")]
    Parse(toml::de::Error),
    /// A value is out of range or inconsistent with another.
    #[error("{key}: {reason}")]
    Invalid {
        /// The TOML key, e.g. `regions[1].redis`.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `--region NAME` names no region of the file.
    #[error("no region named `{name}` in the config (known: {known})")]
    UnknownRegion {
        /// The requested name.
        name: String,
        /// The regions the file lists.
        known: String,
    },
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

/// A validated cluster description.
#[derive(Clone, Debug)]
pub struct Config {
    ca: PathBuf,
    regions: Vec<RegionSpec>,
    replication: Replication,
    transport: TransportSettings,
    redis: RedisSettings,
    persistence: Persistence,
    latency_ms: BTreeMap<(String, String), u64>,
}

/// When a write counts as done (`persistence.durability`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// A reply leaves the node only once the changes it saw are fsynced (group commit). The
    /// default: on this project's measurement it costs about a quarter of unpipelined SET
    /// throughput at 50 clients, nothing on reads (docs/DESIGN.md §5, "Durability").
    Always,
    /// A reply waits only until the log is written to the OS; fsync runs in the background
    /// at most once a second. A killed process loses nothing acknowledged, a power failure
    /// about a second (less what peers already received: catch-up returns it).
    Everysec,
}

/// Where and how a region keeps its state on disk (`[persistence]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Persistence {
    /// Holds one folder per region, `<data_dir>/<region name>`.
    pub data_dir: PathBuf,
    /// When a write is acknowledged.
    pub durability: Durability,
    /// A snapshot is taken after this many log frames (one frame per locked step of the node)...
    pub snapshot_every_frames: u64,
    /// ...or this many seconds after the last one, if a key changed since (pushes and
    /// watermarks alone, which an idle region logs every second, do not count).
    pub snapshot_every_secs: u64,
    /// Records queued for the log beyond which the region stops reading from its peers until
    /// the log has caught up (a slow disk then slows replication instead of filling memory).
    pub max_queued_records: u64,
    /// A file holding a 32-byte key (raw or 64 hex digits): encrypts the log and snapshots
    /// with AES-256-GCM. `None`: stored in the clear.
    pub encryption_key_file: Option<PathBuf>,
}

impl Persistence {
    /// The defaults, with data under `data_dir`.
    pub fn new(data_dir: PathBuf) -> Persistence {
        Persistence {
            data_dir,
            durability: Durability::Always,
            snapshot_every_frames: 1_000_000,
            snapshot_every_secs: 300,
            max_queued_records: 65_536,
            encryption_key_file: None,
        }
    }

    /// The folder of region `name`.
    pub fn region_dir(&self, name: &str) -> PathBuf {
        self.data_dir.join(name)
    }
}

/// Settings of the Redis listener. Bounds left unset keep the server's defaults (Redis's own
/// where Redis has one).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedisSettings {
    /// Redis `requirepass`: clients must `AUTH` before anything else.
    pub requirepass: Option<String>,
    /// ACL-style users (`AUTH user pass`), by name.
    pub users: BTreeMap<String, String>,
    /// PEM certificate chain and key: clients must then connect with TLS (`rediss://`).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// `maxclients`.
    pub max_clients: Option<usize>,
    /// `proto-max-bulk-len`: longest argument, in bytes.
    pub max_bulk_len: Option<usize>,
    /// Most arguments in one command.
    pub max_array_len: Option<usize>,
    /// Commands executed from one connection before its replies are written.
    pub max_pipeline: Option<usize>,
    /// `client-query-buffer-limit`, in bytes.
    pub max_query_buffer: Option<usize>,
    /// Bytes of pending replies per connection before reading from it pauses.
    pub max_output_buffer: Option<usize>,
    /// Commands one `MULTI` may queue.
    pub max_multi_queue: Option<usize>,
    /// Fields one hash may hold (`HSET` beyond it is refused with an error).
    pub max_hash_fields: Option<usize>,
}

/// One region of the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionSpec {
    /// Unique id, 1..=65535; breaks ties between equal clocks, and the lower id of a pair dials.
    pub id: u16,
    /// Unique name, a DNS label; certificates name it as `<name>.sessionmesh`.
    pub name: String,
    /// Where Redis clients connect.
    pub redis: SocketAddr,
    /// The QUIC (UDP) address peers dial.
    pub gossip: SocketAddr,
    /// `/health`, `/ready`, `/metrics`, `/status`.
    pub http: SocketAddr,
    /// PEM certificate of this region, signed by the cluster CA.
    pub cert: PathBuf,
    /// PEM private key of `cert`.
    pub key: PathBuf,
    /// Test-only: added to this region's wall clock, to provoke clock skew.
    pub clock_offset_ms: i64,
}

/// Replication timing and bounds, handed to the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replication {
    /// How often local writes are pushed (coalesced per key in between).
    pub flush_interval_ms: u64,
    /// Remote stamps further ahead of our wall clock are held back.
    pub max_clock_drift_ms: u64,
    /// A region silent for longer stops holding back tombstone collection.
    pub tombstone_grace_ms: u64,
    /// How often peers exchange watermarks to repair losses.
    pub catchup_interval_ms: u64,
    /// How often tombstones are considered for collection.
    pub gc_interval_ms: u64,
    /// Largest gossip frame accepted or produced.
    pub max_frame_bytes: usize,
    /// How often peers are told this region's watermarks while they move.
    pub progress_interval_ms: u64,
    /// A peer link whose origin stays behind another peer's copy this long is routed around.
    pub reroute_after_ms: u64,
    /// After a restart, client commands wait this long at most for the restoration from the
    /// peers to finish; then the region serves what it has (see docs/DESIGN.md §5a).
    pub restore_hold_ms: u64,
}

/// QUIC link settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportSettings {
    /// Keep-alive ping interval; must be below `idle_timeout_ms`.
    pub keep_alive_ms: u64,
    /// A connection silent this long is declared lost.
    pub idle_timeout_ms: u64,
    /// First reconnect delay; doubles per failure.
    pub reconnect_min_ms: u64,
    /// Cap of the reconnect delay.
    pub reconnect_max_ms: u64,
    /// A dial whose handshake has not completed after this long is abandoned and retried
    /// (after the reconnect delay). Without it, a dial started while a link is cut keeps
    /// retransmitting its first packet with a doubling timer until the idle timeout, and the
    /// link comes back seconds after the network does. Keep it above a few round trips.
    pub handshake_timeout_ms: u64,
    /// Frames queued per peer stream before new ones are dropped (catch-up repairs them).
    pub queue_frames: usize,
    /// Bytes queued per peer stream before new frames are dropped; with `queue_frames` this
    /// bounds the memory a slow or absent peer can cost.
    pub queue_bytes: usize,
}

impl Default for Replication {
    fn default() -> Self {
        Replication {
            flush_interval_ms: 2,
            max_clock_drift_ms: 500,
            tombstone_grace_ms: 60_000,
            catchup_interval_ms: 1_000,
            gc_interval_ms: 1_000,
            max_frame_bytes: 256 * 1024,
            progress_interval_ms: 100,
            reroute_after_ms: 300,
            restore_hold_ms: 5_000,
        }
    }
}

impl Default for TransportSettings {
    fn default() -> Self {
        TransportSettings {
            keep_alive_ms: 500,
            idle_timeout_ms: 3_000,
            reconnect_min_ms: 100,
            reconnect_max_ms: 500,
            handshake_timeout_ms: 1_000,
            queue_frames: 1024,
            queue_bytes: 16 * 1024 * 1024,
        }
    }
}

/// The suffix that turns a region name into the DNS name its certificate carries.
pub const DNS_SUFFIX: &str = ".sessionmesh";

impl RegionSpec {
    /// The DNS name in this region's certificate (`<name>.sessionmesh`).
    pub fn dns_name(&self) -> String {
        format!("{}{DNS_SUFFIX}", self.name)
    }
}

impl Config {
    /// Reads and validates the file at `path`; relative paths in it are taken from its folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_owned(),
            error,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::from_toml(&text, base)
    }

    /// Validates TOML text; relative paths are resolved against `base_dir`.
    pub fn from_toml(text: &str, base_dir: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(ConfigError::Parse)?;
        raw.validate(base_dir)
    }

    /// The region called `name`.
    pub fn region(&self, name: &str) -> Result<&RegionSpec, ConfigError> {
        self.regions
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| ConfigError::UnknownRegion {
                name: name.to_string(),
                known: self.region_names().join(", "),
            })
    }

    /// The region with id `id`.
    pub fn region_by_id(&self, id: u16) -> Option<&RegionSpec> {
        self.regions.iter().find(|r| r.id == id)
    }

    /// Every region, in file order.
    pub fn regions(&self) -> &[RegionSpec] {
        &self.regions
    }

    /// Every region name, in file order.
    pub fn region_names(&self) -> Vec<String> {
        self.regions.iter().map(|r| r.name.clone()).collect()
    }

    /// The cluster CA certificate file.
    pub fn ca(&self) -> &Path {
        &self.ca
    }

    /// Replication settings.
    pub fn replication(&self) -> &Replication {
        &self.replication
    }

    /// QUIC link settings.
    pub fn transport(&self) -> &TransportSettings {
        &self.transport
    }

    /// Redis listener settings.
    pub fn redis(&self) -> &RedisSettings {
        &self.redis
    }

    /// Persistence settings.
    pub fn persistence(&self) -> &Persistence {
        &self.persistence
    }

    /// The same cluster with its data under `dir` (one folder per region), as `demo` and the
    /// tests use it.
    pub fn with_data_dir(mut self, dir: &Path) -> Config {
        self.persistence.data_dir = dir.to_owned();
        self
    }

    /// The same cluster with every region acknowledging writes as `durability` says.
    pub fn with_durability(mut self, durability: Durability) -> Config {
        self.persistence.durability = durability;
        self
    }

    /// One-way latency from `from` to `to` (simulator input). Falls back to the reverse
    /// direction when only that one is listed.
    pub fn latency_ms(&self, from: &str, to: &str) -> Option<u64> {
        let key = |a: &str, b: &str| (a.to_string(), b.to_string());
        self.latency_ms
            .get(&key(from, to))
            .or_else(|| self.latency_ms.get(&key(to, from)))
            .copied()
    }

    /// The same cluster, with `region` reached at `addr` instead of its own gossip address
    /// (a relay in between, as the demo and the tests place one on every link).
    pub fn with_gossip(mut self, region: &str, addr: SocketAddr) -> Config {
        if let Some(r) = self.regions.iter_mut().find(|r| r.name == region) {
            r.gossip = addr;
        }
        self
    }

    /// The same cluster with every certificate path moved into `dir` (`ca.pem`,
    /// `<region>.pem`, `<region>.key`), as `sessionmesh certs --out dir` writes them.
    pub fn with_cert_dir(mut self, dir: &Path) -> Config {
        self.ca = dir.join("ca.pem");
        for r in &mut self.regions {
            r.cert = dir.join(format!("{}.pem", r.name));
            r.key = dir.join(format!("{}.key", r.name));
        }
        self
    }
}

/// `regions.toml` as written, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    tls: RawTls,
    #[serde(default)]
    replication: RawReplication,
    #[serde(default)]
    transport: RawTransport,
    #[serde(default)]
    redis: RawRedis,
    #[serde(default)]
    persistence: RawPersistence,
    #[serde(default)]
    regions: Vec<RawRegion>,
    #[serde(default)]
    latency_ms: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    ca: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReplication {
    flush_interval_ms: Option<u64>,
    max_clock_drift_ms: Option<u64>,
    tombstone_grace_ms: Option<u64>,
    catchup_interval_ms: Option<u64>,
    gc_interval_ms: Option<u64>,
    max_frame_bytes: Option<u64>,
    progress_interval_ms: Option<u64>,
    reroute_after_ms: Option<u64>,
    restore_hold_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTransport {
    keep_alive_ms: Option<u64>,
    idle_timeout_ms: Option<u64>,
    reconnect_min_ms: Option<u64>,
    reconnect_max_ms: Option<u64>,
    handshake_timeout_ms: Option<u64>,
    queue_frames: Option<u64>,
    queue_bytes: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedis {
    requirepass: Option<String>,
    #[serde(default)]
    users: BTreeMap<String, String>,
    tls_cert: Option<String>,
    tls_key: Option<String>,
    max_clients: Option<u64>,
    max_bulk_len: Option<u64>,
    max_array_len: Option<u64>,
    max_pipeline: Option<u64>,
    max_query_buffer: Option<u64>,
    max_output_buffer: Option<u64>,
    max_multi_queue: Option<u64>,
    max_hash_fields: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPersistence {
    data_dir: Option<String>,
    durability: Option<String>,
    snapshot_every_frames: Option<u64>,
    snapshot_every_secs: Option<u64>,
    max_queued_records: Option<u64>,
    encryption_key_file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegion {
    name: String,
    id: i64,
    redis: String,
    gossip: String,
    http: String,
    cert: Option<String>,
    key: Option<String>,
    clock_offset_ms: Option<i64>,
}

impl RawConfig {
    fn validate(self, base: &Path) -> Result<Config, ConfigError> {
        let resolve = |p: &str| {
            let p = Path::new(p);
            if p.is_absolute() {
                p.to_owned()
            } else {
                base.join(p)
            }
        };
        let ca_rel = self.tls.ca.unwrap_or_else(|| "certs/ca.pem".to_string());
        if ca_rel.is_empty() {
            return Err(invalid("tls.ca", "must not be empty"));
        }
        let ca = resolve(&ca_rel);
        let cert_dir = Path::new(&ca_rel).parent().unwrap_or(Path::new(""));

        if self.regions.is_empty() {
            return Err(invalid(
                "regions",
                "at least one [[regions]] entry is required",
            ));
        }
        let mut regions = Vec::with_capacity(self.regions.len());
        let mut names = BTreeMap::new();
        let mut ids = BTreeMap::new();
        let mut addrs: BTreeMap<SocketAddr, String> = BTreeMap::new();
        for (i, r) in self.regions.into_iter().enumerate() {
            let key = |field: &str| format!("regions[{i}].{field}");
            check_name(&r.name).map_err(|reason| invalid(key("name"), reason))?;
            if let Some(j) = names.insert(r.name.clone(), i) {
                return Err(invalid(
                    key("name"),
                    format!("`{}` is already the name of regions[{j}]", r.name),
                ));
            }
            let id = u16::try_from(r.id)
                .ok()
                .filter(|id| *id > 0)
                .ok_or_else(|| invalid(key("id"), format!("{} is not in 1..=65535", r.id)))?;
            if let Some(j) = ids.insert(id, i) {
                return Err(invalid(
                    key("id"),
                    format!("{id} is already the id of regions[{j}]"),
                ));
            }
            let mut addr = |field: &str, text: &str| -> Result<SocketAddr, ConfigError> {
                let a: SocketAddr = text.parse().map_err(|_| {
                    invalid(
                        key(field),
                        format!("`{text}` is not an IP:port socket address"),
                    )
                })?;
                if a.port() == 0 {
                    return Err(invalid(key(field), "port 0 is not a fixed address"));
                }
                if let Some(other) = addrs.insert(a, key(field)) {
                    return Err(invalid(
                        key(field),
                        format!("{a} is already used by {other}"),
                    ));
                }
                Ok(a)
            };
            let redis = addr("redis", &r.redis)?;
            let gossip = addr("gossip", &r.gossip)?;
            let http = addr("http", &r.http)?;
            let default_path = |ext: &str| {
                cert_dir
                    .join(format!("{}.{ext}", r.name))
                    .to_string_lossy()
                    .into_owned()
            };
            let cert = r.cert.unwrap_or_else(|| default_path("pem"));
            let keyf = r.key.unwrap_or_else(|| default_path("key"));
            if cert.is_empty() {
                return Err(invalid(key("cert"), "must not be empty"));
            }
            if keyf.is_empty() {
                return Err(invalid(key("key"), "must not be empty"));
            }
            regions.push(RegionSpec {
                id,
                name: r.name,
                redis,
                gossip,
                http,
                cert: resolve(&cert),
                key: resolve(&keyf),
                clock_offset_ms: r.clock_offset_ms.unwrap_or(0),
            });
        }

        let d = Replication::default();
        let rr = self.replication;
        let at_least = |key: &str, v: Option<u64>, default: u64, min: u64| match v {
            Some(v) if v < min => Err(invalid(key, format!("{v} is below the minimum of {min}"))),
            Some(v) => Ok(v),
            None => Ok(default),
        };
        let max_frame_bytes = at_least(
            "replication.max_frame_bytes",
            rr.max_frame_bytes,
            d.max_frame_bytes as u64,
            4096,
        )?;
        let replication = Replication {
            flush_interval_ms: at_least(
                "replication.flush_interval_ms",
                rr.flush_interval_ms,
                d.flush_interval_ms,
                1,
            )?,
            max_clock_drift_ms: at_least(
                "replication.max_clock_drift_ms",
                rr.max_clock_drift_ms,
                d.max_clock_drift_ms,
                0,
            )?,
            tombstone_grace_ms: at_least(
                "replication.tombstone_grace_ms",
                rr.tombstone_grace_ms,
                d.tombstone_grace_ms,
                1,
            )?,
            catchup_interval_ms: at_least(
                "replication.catchup_interval_ms",
                rr.catchup_interval_ms,
                d.catchup_interval_ms,
                1,
            )?,
            gc_interval_ms: at_least(
                "replication.gc_interval_ms",
                rr.gc_interval_ms,
                d.gc_interval_ms,
                1,
            )?,
            max_frame_bytes: usize::try_from(max_frame_bytes).map_err(|_| {
                invalid("replication.max_frame_bytes", "does not fit this platform")
            })?,
            progress_interval_ms: at_least(
                "replication.progress_interval_ms",
                rr.progress_interval_ms,
                d.progress_interval_ms,
                1,
            )?,
            reroute_after_ms: at_least(
                "replication.reroute_after_ms",
                rr.reroute_after_ms,
                d.reroute_after_ms,
                1,
            )?,
            restore_hold_ms: at_least(
                "replication.restore_hold_ms",
                rr.restore_hold_ms,
                d.restore_hold_ms,
                0,
            )?,
        };

        let dt = TransportSettings::default();
        let rt = self.transport;
        let transport = TransportSettings {
            keep_alive_ms: at_least(
                "transport.keep_alive_ms",
                rt.keep_alive_ms,
                dt.keep_alive_ms,
                10,
            )?,
            idle_timeout_ms: at_least(
                "transport.idle_timeout_ms",
                rt.idle_timeout_ms,
                dt.idle_timeout_ms,
                100,
            )?,
            reconnect_min_ms: at_least(
                "transport.reconnect_min_ms",
                rt.reconnect_min_ms,
                dt.reconnect_min_ms,
                1,
            )?,
            reconnect_max_ms: at_least(
                "transport.reconnect_max_ms",
                rt.reconnect_max_ms,
                dt.reconnect_max_ms,
                1,
            )?,
            handshake_timeout_ms: at_least(
                "transport.handshake_timeout_ms",
                rt.handshake_timeout_ms,
                dt.handshake_timeout_ms,
                10,
            )?,
            queue_frames: at_least(
                "transport.queue_frames",
                rt.queue_frames,
                dt.queue_frames as u64,
                1,
            )? as usize,
            queue_bytes: at_least(
                "transport.queue_bytes",
                rt.queue_bytes,
                dt.queue_bytes as u64,
                4096,
            )? as usize,
        };
        if transport.keep_alive_ms >= transport.idle_timeout_ms {
            return Err(invalid(
                "transport.keep_alive_ms",
                format!(
                    "{} must be below transport.idle_timeout_ms ({})",
                    transport.keep_alive_ms, transport.idle_timeout_ms
                ),
            ));
        }
        if transport.reconnect_max_ms < transport.reconnect_min_ms {
            return Err(invalid(
                "transport.reconnect_max_ms",
                format!(
                    "{} is below transport.reconnect_min_ms ({})",
                    transport.reconnect_max_ms, transport.reconnect_min_ms
                ),
            ));
        }

        let rr = self.redis;
        let bound = |key: &str, v: Option<u64>| -> Result<Option<usize>, ConfigError> {
            match v {
                None => Ok(None),
                Some(0) => Err(invalid(key, "must be at least 1")),
                Some(v) => usize::try_from(v)
                    .map(Some)
                    .map_err(|_| invalid(key, "does not fit this platform")),
            }
        };
        if rr.requirepass.as_deref() == Some("") {
            return Err(invalid(
                "redis.requirepass",
                "must not be empty (leave it out to disable AUTH)",
            ));
        }
        for (u, p) in &rr.users {
            let key = format!("redis.users.{u}");
            if u == "default" {
                return Err(invalid(&key, "use redis.requirepass for the default user"));
            }
            if p.is_empty() {
                return Err(invalid(&key, "a user's password must not be empty"));
            }
        }
        let tls = match (rr.tls_cert, rr.tls_key) {
            (None, None) => None,
            (Some(c), Some(k)) => Some((resolve(&c), resolve(&k))),
            (Some(_), None) => return Err(invalid("redis.tls_key", "tls_cert needs a key too")),
            (None, Some(_)) => {
                return Err(invalid("redis.tls_cert", "tls_key needs a certificate too"))
            }
        };
        let redis = RedisSettings {
            requirepass: rr.requirepass,
            users: rr.users,
            tls,
            max_clients: bound("redis.max_clients", rr.max_clients)?,
            max_bulk_len: bound("redis.max_bulk_len", rr.max_bulk_len)?,
            max_array_len: bound("redis.max_array_len", rr.max_array_len)?,
            max_pipeline: bound("redis.max_pipeline", rr.max_pipeline)?,
            max_query_buffer: bound("redis.max_query_buffer", rr.max_query_buffer)?,
            max_output_buffer: bound("redis.max_output_buffer", rr.max_output_buffer)?,
            max_multi_queue: bound("redis.max_multi_queue", rr.max_multi_queue)?,
            max_hash_fields: bound("redis.max_hash_fields", rr.max_hash_fields)?,
        };

        let rp = self.persistence;
        let data_dir = rp.data_dir.unwrap_or_else(|| "data".to_string());
        if data_dir.is_empty() {
            return Err(invalid("persistence.data_dir", "must not be empty"));
        }
        let mut persistence = Persistence::new(resolve(&data_dir));
        persistence.durability = match rp.durability.as_deref() {
            None => persistence.durability,
            Some("always") => Durability::Always,
            Some("everysec") => Durability::Everysec,
            Some(other) => {
                return Err(invalid(
                    "persistence.durability",
                    format!("`{other}` is neither \"always\" nor \"everysec\""),
                ))
            }
        };
        persistence.snapshot_every_frames = at_least(
            "persistence.snapshot_every_frames",
            rp.snapshot_every_frames,
            persistence.snapshot_every_frames,
            1,
        )?;
        persistence.snapshot_every_secs = at_least(
            "persistence.snapshot_every_secs",
            rp.snapshot_every_secs,
            persistence.snapshot_every_secs,
            1,
        )?;
        persistence.max_queued_records = at_least(
            "persistence.max_queued_records",
            rp.max_queued_records,
            persistence.max_queued_records,
            1,
        )?;
        persistence.encryption_key_file = match rp.encryption_key_file {
            Some(k) if k.is_empty() => {
                return Err(invalid(
                    "persistence.encryption_key_file",
                    "must name a file holding a 32-byte key",
                ))
            }
            Some(k) => Some(resolve(&k)),
            None => None,
        };

        let known: BTreeSet<&str> = regions.iter().map(|r| r.name.as_str()).collect();
        let mut latency_ms = BTreeMap::new();
        for (k, v) in self.latency_ms {
            let key = format!("latency_ms.\"{k}\"");
            let (from, to) = k
                .split_once('.')
                .ok_or_else(|| invalid(&key, "expected \"FROM.TO\" with two region names"))?;
            for name in [from, to] {
                if !known.contains(name) {
                    return Err(invalid(&key, format!("unknown region `{name}`")));
                }
            }
            if from == to {
                return Err(invalid(&key, "a region has no latency to itself"));
            }
            if v > 60_000 {
                return Err(invalid(&key, format!("{v} ms is above the limit of 60000")));
            }
            latency_ms.insert((from.to_string(), to.to_string()), v);
        }

        Ok(Config {
            ca,
            regions,
            replication,
            transport,
            redis,
            persistence,
            latency_ms,
        })
    }
}

/// Region names become DNS labels in certificates: lowercase letters, digits and inner '-'.
fn check_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if name.is_empty()
        || name.len() > 63
        || !ok_chars
        || name.starts_with('-')
        || name.ends_with('-')
    {
        return Err(format!(
            "`{name}` is not a DNS label (1-63 of a-z, 0-9 and inner '-')"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[tls]
ca = "certs/ca.pem"

[[regions]]
name = "a"
id = 1
redis = "127.0.0.1:6401"
gossip = "127.0.0.1:7401"
http = "127.0.0.1:9401"

[[regions]]
name = "b"
id = 2
redis = "127.0.0.1:6402"
gossip = "127.0.0.1:7402"
http = "127.0.0.1:9402"
"#;

    fn err(text: &str) -> String {
        Config::from_toml(text, Path::new("/etc/sm"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn parses_the_real_regions_toml() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("regions.toml");
        let c = Config::load(&path).unwrap();
        assert_eq!(c.region_names(), ["us-east", "eu-west", "ap-south"]);
        let ids: Vec<u16> = c.regions().iter().map(|r| r.id).collect();
        assert_eq!(ids, [1, 2, 3]);
        let us = c.region("us-east").unwrap();
        assert_eq!(us.redis, "127.0.0.1:6401".parse().unwrap());
        assert_eq!(us.gossip, "127.0.0.1:7401".parse().unwrap());
        assert_eq!(us.http, "127.0.0.1:9401".parse().unwrap());
        assert!(us.cert.ends_with("certs/us-east.pem"));
        assert!(us.key.ends_with("certs/us-east.key"));
        assert!(c.ca().ends_with("certs/ca.pem"));
        for r in c.regions() {
            assert!(r.redis.ip().is_loopback() && r.gossip.ip().is_loopback());
            assert!(r.http.ip().is_loopback());
        }
        assert!(c.latency_ms("us-east", "eu-west").is_some());
        assert!(c.latency_ms("ap-south", "eu-west").is_some());
    }

    #[test]
    fn defaults_and_relative_paths() {
        let c = Config::from_toml(GOOD, Path::new("/etc/sm")).unwrap();
        assert_eq!(c.ca(), Path::new("/etc/sm/certs/ca.pem"));
        assert_eq!(
            c.region("b").unwrap().cert,
            Path::new("/etc/sm/certs/b.pem")
        );
        assert_eq!(c.region("b").unwrap().key, Path::new("/etc/sm/certs/b.key"));
        assert_eq!(c.replication(), &Replication::default());
        assert_eq!(c.transport(), &TransportSettings::default());
        let moved = c.with_cert_dir(Path::new("/tmp/x"));
        assert_eq!(moved.region("a").unwrap().cert, Path::new("/tmp/x/a.pem"));
    }

    #[test]
    fn bad_address_names_its_key() {
        let e = err(&GOOD.replace("127.0.0.1:6402", "localhost:6402"));
        assert!(e.starts_with("regions[1].redis: "), "{e}");
    }

    #[test]
    fn duplicate_address_names_both_keys() {
        let e = err(&GOOD.replace("127.0.0.1:7402", "127.0.0.1:7401"));
        assert!(e.starts_with("regions[1].gossip: "), "{e}");
        assert!(e.contains("regions[0].gossip"), "{e}");
    }

    #[test]
    fn duplicate_id_and_name_name_their_keys() {
        let e = err(&GOOD.replace("id = 2", "id = 1"));
        assert!(e.starts_with("regions[1].id: "), "{e}");
        let e = err(&GOOD.replace("name = \"b\"", "name = \"a\""));
        assert!(e.starts_with("regions[1].name: "), "{e}");
    }

    #[test]
    fn out_of_range_id_and_bad_name() {
        let e = err(&GOOD.replace("id = 2", "id = 70000"));
        assert!(e.starts_with("regions[1].id: "), "{e}");
        let e = err(&GOOD.replace("id = 2", "id = 0"));
        assert!(e.starts_with("regions[1].id: "), "{e}");
        let e = err(&GOOD.replace("name = \"b\"", "name = \"Bad_Name\""));
        assert!(e.starts_with("regions[1].name: "), "{e}");
    }

    #[test]
    fn unknown_key_is_refused_and_named() {
        let e = err(&format!("{GOOD}\n[replication]\nflush_interval = 3\n"));
        assert!(e.contains("unknown field `flush_interval`"), "{e}");
        let e = err(&GOOD.replace("http = \"127.0.0.1:9402\"", "htp = \"x\""));
        assert!(e.contains("htp"), "{e}");
    }

    #[test]
    fn replication_and_transport_bounds() {
        let e = err(&format!("{GOOD}\n[replication]\nflush_interval_ms = 0\n"));
        assert!(e.starts_with("replication.flush_interval_ms: "), "{e}");
        let e = err(&format!(
            "{GOOD}\n[transport]\nkeep_alive_ms = 5000\nidle_timeout_ms = 1000\n"
        ));
        assert!(e.starts_with("transport.keep_alive_ms: "), "{e}");
    }

    #[test]
    fn redis_settings() {
        let c = Config::from_toml(
            &format!("{GOOD}\n[redis]\nrequirepass = \"s3cret\"\nmax_clients = 10\n"),
            Path::new("."),
        )
        .unwrap();
        assert_eq!(c.redis().requirepass.as_deref(), Some("s3cret"));
        assert_eq!(c.redis().max_clients, Some(10));
        assert_eq!(c.redis().max_pipeline, None);
        let e = err(&format!("{GOOD}\n[redis]\nmax_pipeline = 0\n"));
        assert!(e.starts_with("redis.max_pipeline: "), "{e}");
        let e = err(&format!("{GOOD}\n[redis]\nrequirepass = \"\"\n"));
        assert!(e.starts_with("redis.requirepass: "), "{e}");
    }

    #[test]
    fn persistence_settings() {
        let c = Config::from_toml(GOOD, Path::new("/etc/sm")).unwrap();
        let p = c.persistence();
        assert_eq!(p.data_dir, Path::new("/etc/sm/data"));
        assert_eq!(p.region_dir("a"), Path::new("/etc/sm/data/a"));
        assert_eq!(p.durability, Durability::Always);
        let c = Config::from_toml(
            &format!("{GOOD}\n[persistence]\ndata_dir = \"/var/sm\"\ndurability = \"everysec\"\n"),
            Path::new("/etc/sm"),
        )
        .unwrap();
        assert_eq!(c.persistence().data_dir, Path::new("/var/sm"));
        assert_eq!(c.persistence().durability, Durability::Everysec);
        let e = err(&format!("{GOOD}\n[persistence]\ndurability = \"never\"\n"));
        assert!(e.starts_with("persistence.durability: "), "{e}");
        let e = err(&format!("{GOOD}\n[persistence]\ndata_dir = \"\"\n"));
        assert!(e.starts_with("persistence.data_dir: "), "{e}");
        let e = err(&format!("{GOOD}\n[persistence]\nsnapshot_every_secs = 0\n"));
        assert!(e.starts_with("persistence.snapshot_every_secs: "), "{e}");
    }

    #[test]
    fn latency_keys_are_checked() {
        let e = err(&format!("{GOOD}\n[latency_ms]\n\"a.c\" = 5\n"));
        assert!(
            e.starts_with("latency_ms.\"a.c\": unknown region `c`"),
            "{e}"
        );
        let e = err(&format!("{GOOD}\n[latency_ms]\n\"ab\" = 5\n"));
        assert!(e.starts_with("latency_ms.\"ab\": "), "{e}");
        let c = Config::from_toml(
            &format!("{GOOD}\n[latency_ms]\n\"a.b\" = 5\n"),
            Path::new("."),
        )
        .unwrap();
        assert_eq!(c.latency_ms("b", "a"), Some(5));
    }

    #[test]
    fn no_regions_and_unknown_region() {
        let e = err("[tls]\nca = \"x\"\n");
        assert!(e.starts_with("regions: "), "{e}");
        let c = Config::from_toml(GOOD, Path::new(".")).unwrap();
        let e = c.region("zz").unwrap_err().to_string();
        assert!(e.contains("zz") && e.contains("a, b"), "{e}");
    }

    #[test]
    fn redis_tls_needs_both_files_and_users_are_checked() {
        let e = err(&format!("{GOOD}\n[redis]\ntls_cert = \"c.pem\"\n"));
        assert!(e.starts_with("redis.tls_key: "), "{e}");
        let e = err(&format!("{GOOD}\n[redis]\ntls_key = \"k.pem\"\n"));
        assert!(e.starts_with("redis.tls_cert: "), "{e}");
        let e = err(&format!("{GOOD}\n[redis.users]\nalice = \"\"\n"));
        assert!(e.starts_with("redis.users.alice: "), "{e}");
        let e = err(&format!("{GOOD}\n[redis.users]\ndefault = \"x\"\n"));
        assert!(e.starts_with("redis.users.default: "), "{e}");
    }
}
