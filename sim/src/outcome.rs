//! What a run reports: [`Outcome`] = violations + trace hash + [`Summary`].
//!
//! Plain data with `Display` impls; the CLI prints them and tests assert on them. Nothing here
//! decides whether something is a violation (that is [`crate::oracle`]).

use std::collections::BTreeMap;
use std::fmt;

/// Which oracle a violation broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Oracle {
    /// Regions did not reach identical live state before the deadline.
    Converge,
    /// A region's live state differs from the fold of every recorded write.
    Model,
    /// A key past its expiry was readable.
    Expiry,
    /// A region's hybrid logical clock went backwards (also across a restart).
    ClockMonotonic,
    /// `index_entries`, `dirty` or `held` grew with writes rather than with keys.
    BoundedMemory,
    /// A frame the simulator delivered intact was rejected, or the core reported a bad frame.
    Wire,
}

impl Oracle {
    /// A short name (also what the CLI prints).
    pub fn name(self) -> &'static str {
        match self {
            Oracle::Converge => "converge",
            Oracle::Model => "model",
            Oracle::Expiry => "expiry",
            Oracle::ClockMonotonic => "clock-monotonic",
            Oracle::BoundedMemory => "bounded-memory",
            Oracle::Wire => "wire",
        }
    }
}

/// One broken oracle, with a readable explanation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The oracle.
    pub oracle: Oracle,
    /// Simulated time of detection, ms.
    pub at_ms: u64,
    /// What exactly was wrong (regions, keys, values).
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}] at {} ms: {}",
            self.oracle.name(),
            self.at_ms,
            self.detail
        )
    }
}

/// Counters of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// The seed.
    pub seed: u64,
    /// Number of regions.
    pub regions: usize,
    /// Workload duration, ms.
    pub duration_ms: u64,
    /// Commands sent by clients, by kind name.
    pub commands: BTreeMap<&'static str, u64>,
    /// Commands refused because their region was down, or restoring after a restart.
    pub refused: u64,
    /// Error replies.
    pub error_replies: u64,
    /// `Event::Wrote` deltas recorded (local writes that changed a key).
    pub writes: u64,
    /// Distinct keys written.
    pub distinct_keys: u64,
    /// Frames the replicas emitted.
    pub frames_sent: u64,
    /// Their bytes.
    pub bytes_sent: u64,
    /// Frames handed to a replica.
    pub frames_delivered: u64,
    /// Frames dropped because the sender had no connection to the receiver.
    pub dropped_no_conn: u64,
    /// Frames dropped by a partition.
    pub dropped_partition: u64,
    /// Frames dropped by random loss.
    pub dropped_loss: u64,
    /// Frames dropped because the receiver crashed or the connection was replaced.
    pub dropped_stale: u64,
    /// Frames dropped because the sender's queue for their stream was full.
    pub dropped_queue_full: u64,
    /// Bytes sent on the catch-up streams (requests, answers, resynchronisations).
    pub catchup_bytes: u64,
    /// Frames duplicated.
    pub duplicated: u64,
    /// Partitions started.
    pub partitions: u64,
    /// Crashes.
    pub crashes: u64,
    /// Clock steps applied.
    pub clock_steps: u64,
    /// `handle_disconnected` calls (idle timeouts, and connections replaced by a reconnect).
    pub disconnects: u64,
    /// Connections established.
    pub connects: u64,
    /// `Event::ClockSkew` reports.
    pub skew_events: u64,
    /// `Event::Resynced` reports.
    pub resyncs: u64,
    /// `Event::Evicted` reports.
    pub evictions: u64,
    /// Crashes that lost the disk (restart from nothing) or rolled it back to an older copy.
    pub disks_lost: u64,
    /// See `disks_lost`.
    pub rollbacks: u64,
    /// `Event::Restored` reports (restorations completed after a restart).
    pub restorations: u64,
    /// The longest restoration, ms.
    pub max_restore_ms: u64,
    /// The most catch-up bytes a restarted region received before it was restored.
    pub max_restore_bytes: u64,
    /// Bytes of census parts the regions sent (counted at the end: since their last restart).
    pub census_bytes: u64,
    /// Acknowledged writes that no other region held when their region lost them (legitimately
    /// gone: the model leaves them out).
    pub writes_lost_with_disk: u64,
    /// Timer deadlines at or before the time `handle_timeout` had just been called with.
    pub timer_spins: u64,
    /// Greatest `index_entries` / `dirty` / `held` seen in any region.
    pub max_index_entries: u64,
    /// See `max_index_entries`.
    pub max_dirty: u64,
    /// See `max_index_entries`.
    pub max_held: u64,
    /// Keys collected by GC, summed over regions at the end.
    pub collected: u64,
    /// Catch-up queries answered with a pass over every key (from further back than the
    /// origin index's history), summed over regions at the end.
    pub catchup_full_scans: u64,
    /// Live keys at the end (region 1's view).
    pub live_keys: u64,
    /// When everything healed, ms.
    pub healed_at_ms: u64,
    /// How long after the heal all regions first agreed, if they did.
    pub converge_ms: Option<u64>,
    /// Events processed.
    pub events: u64,
    /// One line per region at the end: its gauges and clock.
    pub regions_end: Vec<String>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cmds: u64 = self.commands.values().sum();
        writeln!(
            f,
            "seed {}: {} regions, {:.1} s of workload, {} events",
            self.seed,
            self.regions,
            self.duration_ms as f64 / 1000.0,
            self.events
        )?;
        let by_kind: Vec<String> = self
            .commands
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        writeln!(
            f,
            "  commands  {cmds} ({}); refused (region down or restoring) {}; error replies {}",
            by_kind.join(" "),
            self.refused,
            self.error_replies
        )?;
        writeln!(
            f,
            "  writes    {} deltas over {} distinct keys; {} live keys at the end; {} collected",
            self.writes, self.distinct_keys, self.live_keys, self.collected
        )?;
        writeln!(
            f,
            "  messages  {} frames / {} bytes sent, {} delivered; dropped: {} partition, {} loss, \
             {} no connection, {} stale, {} queue full; {} duplicated; {} bytes on catch-up streams",
            self.frames_sent,
            self.bytes_sent,
            self.frames_delivered,
            self.dropped_partition,
            self.dropped_loss,
            self.dropped_no_conn,
            self.dropped_stale,
            self.dropped_queue_full,
            self.duplicated,
            self.catchup_bytes
        )?;
        writeln!(
            f,
            "  faults    {} partitions, {} crashes, {} clock steps; {} disconnects, {} connects; \
             {} skew events, {} resyncs, {} evictions",
            self.partitions,
            self.crashes,
            self.clock_steps,
            self.disconnects,
            self.connects,
            self.skew_events,
            self.resyncs,
            self.evictions
        )?;
        writeln!(
            f,
            "  disks     {} lost, {} rolled back; {} restorations (longest {} ms, largest {} \
             bytes); {} writes lost with their disk",
            self.disks_lost,
            self.rollbacks,
            self.restorations,
            self.max_restore_ms,
            self.max_restore_bytes,
            self.writes_lost_with_disk
        )?;
        writeln!(
            f,
            "  gauges    max index_entries {}, max dirty {}, max held {}; timer spins {}; \
             catch-up full scans {}",
            self.max_index_entries,
            self.max_dirty,
            self.max_held,
            self.timer_spins,
            self.catchup_full_scans
        )?;
        for line in &self.regions_end {
            writeln!(f, "  {line}")?;
        }
        match self.converge_ms {
            Some(ms) => write!(
                f,
                "  healed at {} ms, converged {} ms later",
                self.healed_at_ms, ms
            ),
            None => write!(f, "  healed at {} ms, did not converge", self.healed_at_ms),
        }
    }
}

/// Everything one run produced.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Broken oracles, in detection order (empty for a clean run).
    pub violations: Vec<Violation>,
    /// Fingerprint of every event of the run; equal for equal seeds and configs.
    pub trace_hash: u64,
    /// Counters.
    pub summary: Summary,
    /// The history of `SimConfig::explain_key`, one line per step (empty without it).
    pub explain: Vec<String>,
}

impl Outcome {
    /// True when no oracle broke.
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }

    /// True when some violation broke `oracle`.
    pub fn broke(&self, oracle: Oracle) -> bool {
        self.violations.iter().any(|v| v.oracle == oracle)
    }
}
