//! The raw structs serde reads `regions.toml` into (unknown keys rejected), and their
//! validation into a [`Config`]: every error names its TOML key.

use super::*;

/// `regions.toml` as written, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
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
    cluster: RawCluster,
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
    busy_reply_threshold_ms: Option<u64>,
    max_hash_fields: Option<u64>,
    databases: Option<u64>,
    io_threads: Option<u64>,
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    shards: Option<u64>,
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
    pub(super) fn validate(self, base: &Path) -> Result<Config, ConfigError> {
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
        let mut addrs: BTreeMap<(&str, SocketAddr), String> = BTreeMap::new();
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
                // TCP (redis, http) and UDP (gossip) ports are separate spaces: a gossip port
                // may share its number with a Redis or HTTP port.
                let proto = if field == "gossip" { "udp" } else { "tcp" };
                if let Some(other) = addrs.insert((proto, a), key(field)) {
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

        // Any frame must fit an empty queue, or a catch-up part carrying one large session
        // could never be sent (the catch-up waits for room rather than dropping a part).
        if transport.queue_bytes < replication.max_frame_bytes {
            return Err(invalid(
                "transport.queue_bytes",
                format!(
                    "{} is below replication.max_frame_bytes ({}): a queue must hold the largest frame",
                    transport.queue_bytes, replication.max_frame_bytes
                ),
            ));
        }

        let rr = self.redis;
        const MAX_IO_THREADS: u64 = 1024;
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
            busy_reply_threshold_ms: rr.busy_reply_threshold_ms,
            max_hash_fields: bound("redis.max_hash_fields", rr.max_hash_fields)?,
            databases: match rr.databases {
                None => None,
                Some(n) if (1..=255).contains(&n) => Some(n as u16),
                Some(_) => return Err(invalid("redis.databases", "must be 1 to 255")),
            },
            io_threads: match rr.io_threads {
                None => None,
                Some(n) if n <= MAX_IO_THREADS => Some(n as usize),
                Some(_) => {
                    return Err(invalid(
                        "redis.io_threads",
                        format!("must be at most {MAX_IO_THREADS}"),
                    ))
                }
            },
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

        let shards = match self.cluster.shards {
            None => DEFAULT_SHARDS,
            Some(n) if (1..=u64::from(MAX_SHARDS)).contains(&n) => n as u16,
            Some(n) => {
                return Err(invalid(
                    "cluster.shards",
                    format!("{n} is outside 1..={MAX_SHARDS}"),
                ))
            }
        };

        Ok(Config {
            ca,
            shards,
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
