//! `regions.toml`: the cluster description, parsed into a [`Config`] that cannot be invalid.
//!
//! Parsing happens in two steps: serde reads the text into raw structs that reject unknown
//! keys, then [`Config::from_toml`] checks every value and builds the validated types. Every
//! error names the TOML key it is about (`regions[1].redis: ...`), so an operator can find the
//! line without reading code.
//!
//! Relative certificate and data paths are resolved against the directory of the config file.
//!
//! It does not read certificates (the node's `certs` module does) or open sockets. The node
//! and the simulator read `regions.toml` through it, and the replication defaults are the
//! core's own ([`sessionmesh_core::Config::new`]): one source for every setting.

use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

mod raw;
#[cfg(test)]
mod tests;

use raw::RawConfig;

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

/// Shards per region when `[cluster] shards` is not set: measured on the hot path
/// (docs/DESIGN.md, "Shards": how the default was chosen).
pub const DEFAULT_SHARDS: u16 = 4;

/// The most shards a region may have (a `SCAN` cursor keeps the shard in 8 bits).
pub const MAX_SHARDS: u16 = 256;

/// A validated cluster description.
#[derive(Clone, Debug)]
pub struct Config {
    ca: PathBuf,
    shards: u16,
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
    /// `busy-reply-threshold` (`lua-time-limit`): milliseconds a script runs before others
    /// are answered `BUSY` and `SCRIPT KILL` may stop it.
    pub busy_reply_threshold_ms: Option<u64>,
    /// Fields one hash may hold (`HSET` beyond it is refused with an error).
    pub max_hash_fields: Option<usize>,
    /// Numbered databases clients may `SELECT` (Redis's `databases`; default 16, 1..=255).
    pub databases: Option<u16>,
    /// Threads serving Redis connections, each on a runtime of its own (thread-per-core);
    /// unset: one per core; 0: connections run on the node's multi-threaded runtime.
    pub io_threads: Option<usize>,
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
    /// The core's defaults ([`sessionmesh_core::Config::new`]), and the node's own hold.
    fn default() -> Self {
        let core = sessionmesh_core::Config::single();
        Replication {
            flush_interval_ms: core.flush_interval_ms,
            max_clock_drift_ms: core.max_clock_drift_ms,
            tombstone_grace_ms: core.tombstone_grace_ms,
            catchup_interval_ms: core.catchup_interval_ms,
            gc_interval_ms: core.gc_interval_ms,
            max_frame_bytes: core.max_frame_bytes,
            progress_interval_ms: core.progress_interval_ms,
            reroute_after_ms: core.reroute_after_ms,
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

    /// How many shards each region's key space is split into (`[cluster] shards`, the same
    /// in every region; [`DEFAULT_SHARDS`] unless set).
    pub fn shards(&self) -> u16 {
        self.shards
    }

    /// A copy with `n` shards per region (tests and benchmarks; `n` within
    /// `1..=MAX_SHARDS`).
    pub fn with_shards(mut self, n: u16) -> Config {
        self.shards = n.clamp(1, MAX_SHARDS);
        self
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
