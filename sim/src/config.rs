//! What a simulation run is made of: [`SimConfig`] (the knobs) and [`Schedule`] (the faults).
//!
//! A schedule is plain data — partitions, crashes, clock offsets and steps, loss and duplication
//! rates — so a test can write one by hand or generate one with proptest, and a failing one can
//! be saved as TOML and replayed with `--schedule FILE`. When a config carries no schedule, the
//! world draws one from the seed's RNG with [`Schedule::random`] within the bounds of [`Chaos`].
//!
//! Regions are numbered as the core numbers them: `1..=n` (`RegionId(1)` is position 0 of the
//! latency matrix). Nothing here runs anything; see [`crate::world`].

use crate::latency::LatencyMatrix;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sessionmesh_core::Faults;

/// Every knob of one simulation run. `SimConfig::default()` is the standard scenario: three
/// regions, two simulated minutes of session traffic with random partitions, crashes and clock
/// skew, then heal and wait for convergence.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Number of regions (ids `1..=regions`).
    pub regions: usize,
    /// Shards per region (each an independent replica; `[cluster] shards` of `regions.toml`,
    /// the node's default otherwise).
    pub shards: u16,
    /// Simulated milliseconds of client workload and faults; everything heals at this time.
    pub duration_ms: u64,
    /// After healing, how long the regions get to converge before "did not converge".
    pub settle_ms: u64,
    /// After converging, how long the world keeps running (timers, GC, catch-up) before the
    /// final check, so late resurrections are caught too.
    pub linger_ms: u64,
    /// Client commands per simulated second, over all regions.
    pub ops_per_sec: f64,
    /// Number of distinct session keys (hashes).
    pub sessions: usize,
    /// Number of distinct plain string keys.
    pub string_keys: usize,
    /// Zipf exponent of key popularity (1.0 is classic Zipf).
    pub zipf_s: f64,
    /// Probability that a session's command goes to its home region rather than a random one.
    pub home_affinity: f64,
    /// Fraction of client requests that are a `FLUSHDB` or `FLUSHALL` (in a random region):
    /// every session gone at once, replicated as one marker per shard.
    pub flush_rate: f64,
    /// Whether clients keep each user's principal index in a set (`SADD` on create, `SREM` on
    /// logout, `SMEMBERS` among reads). Off only to replay the fixtures recorded before sets
    /// existed: the extra commands shift every later event.
    pub principal_index: bool,
    /// One-way delays between regions.
    pub latency: LatencyMatrix,
    /// Extra delay per frame, uniform in `0..=jitter × latency` (this is what reorders frames).
    pub jitter: f64,
    /// Bandwidth of each directed link, in bytes per simulated ms (0: unlimited); see
    /// [`crate::net::Capacity`]. The default is 100 Mbit/s.
    pub link_bytes_per_ms: u64,
    /// Bytes queued per link and stream before frames are dropped: the transport's
    /// `transport.queue_bytes`. At least the replicas' largest frame.
    pub queue_bytes: usize,
    /// QUIC idle timeout: how long a cut link stays "connected" before both ends are told.
    pub idle_timeout_ms: u64,
    /// Upper bound of the random back-off before a healed link reconnects.
    pub reconnect_ms: u64,
    /// After a restart, how long a node refuses client commands (`LOADING`) while it restores
    /// (`replication.restore_hold_ms`; the node applies it, not the core).
    pub restore_hold_ms: u64,
    /// Bounds for randomly drawn schedules.
    pub chaos: Chaos,
    /// An explicit schedule; `None` draws one from the seed.
    pub schedule: Option<Schedule>,
    /// Planted faults passed to every replica.
    pub faults: Faults,
    /// Overrides of the replicas' timing settings.
    pub tuning: Tuning,
    /// How often replica gauges are sampled for the bounded-memory oracle.
    pub sample_every_ms: u64,
    /// Every how many samples the "no expired key readable" oracle also reads `live()`.
    pub expiry_check_every: u32,
    /// How often convergence is probed after healing.
    pub probe_every_ms: u64,
    /// Bounded-memory oracle: `index_entries`, `dirty` and `held` must stay at most
    /// `memory_factor × distinct keys written + memory_slack`.
    pub memory_factor: u64,
    /// See `memory_factor`.
    pub memory_slack: u64,
    /// Record the history of this key (commands, deltas, final states) in
    /// [`crate::Outcome::explain`], to diagnose a violation.
    pub explain_key: Option<bytes::Bytes>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            regions: 3,
            shards: sessionmesh_config::DEFAULT_SHARDS,
            duration_ms: 120_000,
            settle_ms: 60_000,
            linger_ms: 3_000,
            ops_per_sec: 60.0,
            sessions: 400,
            string_keys: 100,
            zipf_s: 1.0,
            home_affinity: 0.8,
            flush_rate: 0.0005,
            principal_index: true,
            latency: LatencyMatrix::builtin(3),
            jitter: 0.3,
            link_bytes_per_ms: 12_500,
            queue_bytes: sessionmesh_config::TransportSettings::default().queue_bytes,
            idle_timeout_ms: 3_000,
            restore_hold_ms: 5_000,
            reconnect_ms: 1_000,
            chaos: Chaos::default(),
            schedule: None,
            faults: Faults::default(),
            tuning: Tuning::default(),
            sample_every_ms: 1_000,
            expiry_check_every: 5,
            probe_every_ms: 250,
            memory_factor: 8,
            memory_slack: 64,
            explain_key: None,
        }
    }
}

impl SimConfig {
    /// The default scenario for `regions` regions, shaped by `regions.toml` when one is found
    /// (in the current directory, its parent, or the workspace root): see
    /// [`SimConfig::apply_regions_toml`].
    pub fn standard(regions: usize) -> SimConfig {
        let mut cfg = SimConfig {
            regions,
            latency: LatencyMatrix::builtin(regions),
            ..SimConfig::default()
        };
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../regions.toml");
        let found = [
            std::path::PathBuf::from("regions.toml"),
            std::path::PathBuf::from("../regions.toml"),
            root,
        ]
        .into_iter()
        .find(|p| p.exists());
        if let Some(p) = found {
            if let Ok(text) = std::fs::read_to_string(&p) {
                // The default scenario does not depend on a broken file next to it: say so.
                if let Err(e) = cfg.apply_regions_toml(&text) {
                    eprintln!("{}: {e}; using the built-in scenario", p.display());
                }
            }
        }
        cfg
    }

    /// Takes from a `regions.toml` what the simulator can use, read through the node's own
    /// parser and validation (`sessionmesh-config`), so a file the node would refuse is refused
    /// here too: the `[latency_ms]` matrix (see [`crate::latency`]),
    /// `transport.idle_timeout_ms`, `transport.reconnect_max_ms`, `transport.queue_bytes`, the replica timings of
    /// `[replication]` and `replication.restore_hold_ms`. Settings the file leaves out take the
    /// one set of defaults the node uses (the core's).
    pub fn apply_regions_toml(&mut self, text: &str) -> Result<(), String> {
        let config = sessionmesh_config::Config::from_toml(text, std::path::Path::new("."))
            .map_err(|e| format!("regions.toml: {e}"))?;
        self.latency = LatencyMatrix::from_toml_str(text, self.regions);
        self.shards = config.shards();
        let tr = config.transport();
        self.idle_timeout_ms = tr.idle_timeout_ms;
        self.reconnect_ms = tr.reconnect_max_ms;
        self.queue_bytes = tr.queue_bytes;
        let rep = config.replication();
        self.restore_hold_ms = rep.restore_hold_ms;
        let t = &mut self.tuning;
        t.flush_interval_ms = Some(rep.flush_interval_ms);
        t.max_clock_drift_ms = Some(rep.max_clock_drift_ms);
        t.catchup_interval_ms = Some(rep.catchup_interval_ms);
        t.gc_interval_ms = Some(rep.gc_interval_ms);
        t.tombstone_grace_ms = Some(rep.tombstone_grace_ms);
        t.progress_interval_ms = Some(rep.progress_interval_ms);
        t.reroute_after_ms = Some(rep.reroute_after_ms);
        t.max_frame_bytes = Some(rep.max_frame_bytes);
        Ok(())
    }
}

/// Bounds for [`Schedule::random`].
#[derive(Clone, Debug)]
pub struct Chaos {
    /// At most this many partitions (uniform count).
    pub max_partitions: u32,
    /// Length of an ordinary partition: uniform up to this.
    pub max_partition_ms: u64,
    /// Probability that a partition is a long one (beyond the tombstone grace, if it fits).
    pub long_partition_prob: f64,
    /// Length of a long partition.
    pub long_partition_ms: u64,
    /// Probability that a partition is a short flap, healed before the idle timeout.
    pub flap_prob: f64,
    /// At most this many crashes.
    pub max_crashes: u32,
    /// A crashed region stays down uniformly up to this long.
    pub max_down_ms: u64,
    /// Probability that a crash also loses the disk (restart from nothing).
    pub disk_lost_prob: f64,
    /// Probability that a crash restarts from an older copy of the disk.
    pub rollback_prob: f64,
    /// How old that copy is, at most.
    pub max_rollback_ms: u64,
    /// Clock offsets are uniform in `±max_offset_ms`.
    pub max_offset_ms: i64,
    /// Probability that one region's clock runs far ahead (beyond `max_clock_drift`).
    pub far_ahead_prob: f64,
    /// How far ahead, at most.
    pub far_ahead_ms: i64,
    /// Clock drift rates are uniform in `±max_drift_ppm`.
    pub max_drift_ppm: i64,
    /// At most this many clock steps (NTP jumps, forwards or backwards).
    pub max_steps: u32,
    /// Size of a clock step, uniform in `±max_step_ms`.
    pub max_step_ms: i64,
    /// Frame loss probability of a run: uniform in `0..=max_loss`.
    pub max_loss: f64,
    /// Frame duplication probability of a run: uniform in `0..=max_duplicate`.
    pub max_duplicate: f64,
}

impl Default for Chaos {
    fn default() -> Self {
        Chaos {
            max_partitions: 6,
            max_partition_ms: 20_000,
            long_partition_prob: 0.05,
            long_partition_ms: 70_000,
            flap_prob: 0.3,
            max_crashes: 2,
            max_down_ms: 15_000,
            disk_lost_prob: 0.2,
            rollback_prob: 0.2,
            max_rollback_ms: 30_000,
            max_offset_ms: 200,
            far_ahead_prob: 0.2,
            far_ahead_ms: 3_000,
            max_drift_ppm: 200,
            max_steps: 2,
            max_step_ms: 1_500,
            max_loss: 0.02,
            max_duplicate: 0.01,
        }
    }
}

impl Chaos {
    /// No faults at all: no partitions, crashes, skew, loss or duplication.
    pub fn calm() -> Chaos {
        Chaos {
            max_partitions: 0,
            long_partition_prob: 0.0,
            flap_prob: 0.0,
            max_crashes: 0,
            max_offset_ms: 0,
            far_ahead_prob: 0.0,
            max_drift_ppm: 0,
            max_steps: 0,
            max_loss: 0.0,
            max_duplicate: 0.0,
            ..Chaos::default()
        }
    }
}

/// Optional overrides of the replicas' [`sessionmesh_core::Config`] timings.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tuning {
    /// `max_clock_drift_ms`.
    pub max_clock_drift_ms: Option<u64>,
    /// `flush_interval_ms`.
    pub flush_interval_ms: Option<u64>,
    /// `catchup_interval_ms`.
    pub catchup_interval_ms: Option<u64>,
    /// `gc_interval_ms`.
    pub gc_interval_ms: Option<u64>,
    /// `tombstone_grace_ms`.
    pub tombstone_grace_ms: Option<u64>,
    /// `progress_interval_ms`.
    pub progress_interval_ms: Option<u64>,
    /// `reroute_after_ms`.
    pub reroute_after_ms: Option<u64>,
    /// `max_frame_bytes` (at most the run's `queue_bytes`, as the node's config requires).
    pub max_frame_bytes: Option<usize>,
}

/// Which links a partition cuts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Cut {
    /// Both directions between `a` and `b`.
    Both {
        /// One end.
        a: u16,
        /// The other end.
        b: u16,
    },
    /// Frames from `from` to `to` are lost; the other direction still works.
    OneWay {
        /// Sender whose frames are lost.
        from: u16,
        /// Receiver that hears nothing.
        to: u16,
    },
    /// Every link of `region`, both directions.
    Isolate {
        /// The region cut off.
        region: u16,
    },
}

impl Cut {
    /// The directed links `(from, to)` (region numbers) this cut blocks among `n` regions.
    pub fn links(&self, n: u16) -> Vec<(u16, u16)> {
        match *self {
            Cut::Both { a, b } => vec![(a, b), (b, a)],
            Cut::OneWay { from, to } => vec![(from, to)],
            Cut::Isolate { region } => (1..=n)
                .filter(|&o| o != region)
                .flat_map(|o| [(region, o), (o, region)])
                .collect(),
        }
    }

    fn regions(&self) -> Vec<u16> {
        match *self {
            Cut::Both { a, b } => vec![a, b],
            Cut::OneWay { from, to } => vec![from, to],
            Cut::Isolate { region } => vec![region],
        }
    }
}

/// One partition: `cut` holds from `start_ms` until `end_ms` (or the heal, if earlier).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    /// When the links are cut.
    pub start_ms: u64,
    /// When they are repaired.
    pub end_ms: u64,
    /// Which links.
    pub cut: Cut,
}

/// One crash: `region` dies at `at_ms` (losing frames in flight to and from it) and restarts
/// `down_ms` later (or at the heal, if earlier) from what `disk` says it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Crash {
    /// The region.
    pub region: u16,
    /// When it dies.
    pub at_ms: u64,
    /// How long it stays down.
    pub down_ms: u64,
    /// What it restarts from.
    #[serde(default)]
    pub disk: Disk,
}

/// What a crashed region finds on its disk when it restarts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Disk {
    /// Everything it persisted (`durability = "always"`: everything it applied).
    #[default]
    Kept,
    /// Nothing: the disk was replaced.
    Lost,
    /// An older copy: the newest backup at least this old (or nothing, if there is none).
    RolledBack {
        /// Age of the copy at the crash, ms.
        age_ms: u64,
    },
}

/// A region's wall clock: `wall = epoch + t + offset_ms + drift_ppm × t / 10⁶ + steps so far`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockSpec {
    /// Constant offset from true time.
    pub offset_ms: i64,
    /// Rate error in parts per million.
    pub drift_ppm: i64,
}

/// A sudden jump of one region's wall clock (an NTP step); negative goes backwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockStep {
    /// The region.
    pub region: u16,
    /// When.
    pub at_ms: u64,
    /// By how much.
    pub delta_ms: i64,
}

/// All faults of one run, as data.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// Per-frame loss probability on every link.
    #[serde(default)]
    pub loss: f64,
    /// Per-frame duplication probability on every link.
    #[serde(default)]
    pub duplicate: f64,
    /// Clock of region `i + 1` at index `i`; missing entries are perfect clocks.
    #[serde(default)]
    pub clocks: Vec<ClockSpec>,
    /// Clock steps.
    #[serde(default)]
    pub steps: Vec<ClockStep>,
    /// Partitions (they may overlap).
    #[serde(default)]
    pub partitions: Vec<Partition>,
    /// Crashes.
    #[serde(default)]
    pub crashes: Vec<Crash>,
}

impl Schedule {
    /// A schedule drawn from `rng` within the bounds of `chaos`, for `n` regions over
    /// `duration_ms`, with flaps shorter than `idle_timeout_ms`.
    pub fn random(
        rng: &mut ChaCha8Rng,
        chaos: &Chaos,
        n: usize,
        duration_ms: u64,
        idle_timeout_ms: u64,
    ) -> Schedule {
        let n16 = n as u16;
        let pick = |rng: &mut ChaCha8Rng| rng.gen_range(1..=n16);
        let loss = if chaos.max_loss > 0.0 {
            rng.gen_range(0.0..=chaos.max_loss)
        } else {
            0.0
        };
        let duplicate = if chaos.max_duplicate > 0.0 {
            rng.gen_range(0.0..=chaos.max_duplicate)
        } else {
            0.0
        };
        let mut clocks: Vec<ClockSpec> = (0..n)
            .map(|_| ClockSpec {
                offset_ms: sym(rng, chaos.max_offset_ms),
                drift_ppm: sym(rng, chaos.max_drift_ppm),
            })
            .collect();
        if n > 0 && chaos.far_ahead_ms > 0 && rng.gen_bool(chaos.far_ahead_prob) {
            let i = rng.gen_range(0..n);
            clocks[i].offset_ms += rng.gen_range(chaos.far_ahead_ms / 4..=chaos.far_ahead_ms);
        }
        let steps = (0..rng.gen_range(0..=chaos.max_steps))
            .map(|_| ClockStep {
                region: pick(rng),
                at_ms: rng.gen_range(0..duration_ms.max(1)),
                delta_ms: sym(rng, chaos.max_step_ms),
            })
            .collect();
        let mut partitions = Vec::new();
        if n >= 2 {
            for _ in 0..rng.gen_range(0..=chaos.max_partitions) {
                let a = pick(rng);
                let mut b = pick(rng);
                while b == a {
                    b = pick(rng);
                }
                let cut = match rng.gen_range(0..100) {
                    0..=44 => Cut::Both { a, b },
                    45..=69 => Cut::OneWay { from: a, to: b },
                    _ => Cut::Isolate { region: a },
                };
                let x: f64 = rng.gen();
                let len = if x < chaos.flap_prob {
                    rng.gen_range(50..idle_timeout_ms.max(51))
                } else if x < chaos.flap_prob + chaos.long_partition_prob {
                    chaos.long_partition_ms
                } else {
                    rng.gen_range(500..=chaos.max_partition_ms.max(500))
                };
                let start_ms = rng.gen_range(0..duration_ms.max(1) * 9 / 10 + 1);
                partitions.push(Partition {
                    start_ms,
                    end_ms: start_ms + len,
                    cut,
                });
            }
        }
        let crashes = (0..rng.gen_range(0..=chaos.max_crashes))
            .map(|_| {
                let region = pick(rng);
                let at_ms = rng.gen_range(0..duration_ms.max(1) * 9 / 10 + 1);
                let down_ms = rng.gen_range(200..=chaos.max_down_ms.max(200));
                let x: f64 = rng.gen();
                let disk = if x < chaos.disk_lost_prob {
                    Disk::Lost
                } else if x < chaos.disk_lost_prob + chaos.rollback_prob {
                    Disk::RolledBack {
                        age_ms: rng.gen_range(0..=chaos.max_rollback_ms),
                    }
                } else {
                    Disk::Kept
                };
                Crash {
                    region,
                    at_ms,
                    down_ms,
                    disk,
                }
            })
            .collect();
        Schedule {
            loss,
            duplicate,
            clocks,
            steps,
            partitions,
            crashes,
        }
    }

    /// Checks that every region number is within `1..=n`, intervals are ordered and rates are
    /// probabilities.
    pub fn validate(&self, n: usize) -> Result<(), String> {
        let ok = |r: u16| r >= 1 && usize::from(r) <= n;
        if !(0.0..=1.0).contains(&self.loss) || !(0.0..=1.0).contains(&self.duplicate) {
            return Err("loss and duplicate must be within 0..=1".into());
        }
        if self.clocks.len() > n {
            return Err(format!("{} clocks for {n} regions", self.clocks.len()));
        }
        for p in &self.partitions {
            if !p.cut.regions().into_iter().all(ok) || p.end_ms < p.start_ms {
                return Err(format!("bad partition {p:?}"));
            }
            if let Cut::Both { a, b } | Cut::OneWay { from: a, to: b } = p.cut {
                if a == b {
                    return Err(format!("partition of a region from itself: {p:?}"));
                }
            }
        }
        for c in &self.crashes {
            if !ok(c.region) {
                return Err(format!("bad crash {c:?}"));
            }
        }
        for s in &self.steps {
            if !ok(s.region) {
                return Err(format!("bad clock step {s:?}"));
            }
        }
        Ok(())
    }

    /// The schedule as TOML (for `--schedule` replays).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# could not encode schedule: {e}\n"))
    }

    /// A schedule from TOML.
    pub fn from_toml(text: &str) -> Result<Schedule, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}

fn sym(rng: &mut ChaCha8Rng, max: i64) -> i64 {
    if max <= 0 {
        0
    } else {
        rng.gen_range(-max..=max)
    }
}
