//! The types a driver exchanges with a [`Replica`]: the clocks it passes in, the settings,
//! the frames and events it drains, the counters and snapshots it reads.

use super::*;

/// The two clocks a driver passes in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Now {
    /// Monotonic milliseconds (any origin): schedules flushes, catch-up and GC.
    pub mono_ms: u64,
    /// This region's wall clock, milliseconds since the Unix epoch: feeds the HLC.
    pub wall_ms: u64,
}

impl Now {
    /// Both clocks at the same value (tests and the simulator's unskewed regions).
    pub fn at(ms: u64) -> Now {
        Now {
            mono_ms: ms,
            wall_ms: ms,
        }
    }
}

/// Deliberately wrong behaviours, so tests can show that the simulator's oracles catch them.
/// All off by default; the node never sets them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// Collect tombstones and expired keys as soon as they are dead, ignoring causal stability.
    pub gc_without_stability: bool,
    /// Never run catch-up (deltas lost in flight stay lost).
    pub no_catchup: bool,
    /// On equal stamps prefer the local register instead of the deterministic tie-break.
    /// (Equal stamps with different values never happen in a correct system; this fault also
    /// makes the merge prefer the local value when the incoming stamp is only slightly newer.)
    pub merge_prefers_local: bool,
    /// A restarted region trusts what it persisted: no restoration from its peers and no stamp
    /// barrier (the behaviour before restoring existed).
    pub no_restore: bool,
    /// A restoring region skips the census, so keys collected elsewhere while its persisted
    /// state was behind stay alive in it.
    pub no_census: bool,
    /// Catch-up parts leave whether or not the link has room for them (the behaviour before
    /// answers waited for room): on a queue smaller than an answer, its tail is dropped.
    pub catchup_ignores_room: bool,
    /// A delta arriving after its database's flush marker is merged as it is, without the
    /// flush tombstone: a write made elsewhere before the flush, into a key the flush killed,
    /// comes back.
    pub flush_ignores_late_deltas: bool,
}

/// Settings of one replica.
#[derive(Clone, Debug)]
pub struct Config {
    /// This region.
    pub region: RegionId,
    /// Every region of the cluster, this one included.
    pub regions: Vec<RegionId>,
    /// Which shard of the region's key space this replica is ([`crate::shard`]): written in
    /// the header of every frame it sends, and required of every frame it accepts.
    pub shard: u16,
    /// How many shards the region has (what names this shard's flush markers, see
    /// [`crate::db::flush_marker`]).
    pub shards: u16,
    /// Remote stamps further ahead of our wall clock than this are held back.
    pub max_clock_drift_ms: u64,
    /// How often local writes are pushed to peers (coalesced per key in between).
    pub flush_interval_ms: u64,
    /// How often each connected peer is asked for what we missed (scuttlebutt).
    pub catchup_interval_ms: u64,
    /// How often tombstones and expired keys are considered for collection.
    pub gc_interval_ms: u64,
    /// A region silent for longer than this stops holding back garbage collection; when it
    /// returns it is told to resynchronise.
    pub tombstone_grace_ms: u64,
    /// Upper bound on the encoded size of one frame.
    pub max_frame_bytes: usize,
    /// Deltas per catch-up part, in bytes (about): the work done per [`Replica::poll_catchup`]
    /// call, and the room a link must have before the part leaves, so a driver keeps it well
    /// under its queue to a peer ([`Config::fit_catchup_parts`]).
    pub catchup_part_bytes: usize,
    /// How often connected peers are told our watermarks while they move (progress notes),
    /// and stalled origins are looked for.
    pub progress_interval_ms: u64,
    /// A directly connected origin whose writes we hold less of than a peer does, for this
    /// long, is fetched through that peer (progress, not connection, decides routing).
    pub reroute_after_ms: u64,
    /// Planted faults for oracle tests.
    pub faults: Faults,
    /// Emit an [`Event::Wrote`] for every key a local command changes (simulator oracles).
    pub record_writes: bool,
    /// Fields one hash may hold; a command that would exceed it is refused, changing nothing.
    pub max_hash_fields: usize,
    /// Longest string a command may build (`SETRANGE`, `APPEND`); longer is refused, changing
    /// nothing (the node sets it to `redis.max_bulk_len`, Redis's `proto-max-bulk-len`).
    pub max_string_bytes: usize,
    /// Keep a journal of every change for the durable log ([`Ready::records`]).
    pub journal: bool,
    /// How many numbered databases clients may `SELECT` (`databases`, Redis's default 16,
    /// at most [`crate::db::MAX_DATABASES`]).
    pub databases: u16,
    /// The hash tables' seed (see [`crate::seed`]): secret to clients, so they cannot choose
    /// colliding keys. The node draws it at random per process; the simulator from its seed.
    pub hash_seed: u64,
}

impl Config {
    /// Defaults suitable for loopback and the simulator, for `region` among `regions`.
    pub fn new(region: RegionId, regions: &[RegionId]) -> Config {
        Config {
            region,
            regions: regions.to_vec(),
            shard: 0,
            shards: 1,
            max_clock_drift_ms: 500,
            flush_interval_ms: 2,
            catchup_interval_ms: 1_000,
            gc_interval_ms: 1_000,
            tombstone_grace_ms: 60_000,
            max_frame_bytes: 256 * 1024,
            catchup_part_bytes: 64 * 1024,
            progress_interval_ms: 100,
            reroute_after_ms: 300,
            faults: Faults::default(),
            record_writes: false,
            max_hash_fields: 1_000_000,
            max_string_bytes: 512 * 1024 * 1024,
            journal: false,
            databases: crate::db::DEFAULT_DATABASES,
            hash_seed: 0,
        }
    }

    /// A lone region (single-region tests and the reference-model comparison).
    pub fn single() -> Config {
        Config::new(RegionId(1), &[RegionId(1)])
    }

    /// Sizes [`Config::catchup_part_bytes`] for a driver whose catch-up stream to a peer
    /// queues at most `queue_bytes`: a quarter of it, half a frame, at most the default and at
    /// least 1 KiB, so several parts fit the queue and a part always fits a frame. The node
    /// and the simulator both call this with the transport's `queue_bytes`.
    pub fn fit_catchup_parts(&mut self, queue_bytes: usize) {
        self.catchup_part_bytes = self
            .catchup_part_bytes
            .min(self.max_frame_bytes / 2)
            .min(queue_bytes / 4)
            .max(1024);
    }
}

/// Which peer stream a frame travels on. Deltas and catch-up use separate streams so a large
/// catch-up never delays fresh deltas.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Channel {
    /// Steady-state pushes and small control messages.
    Delta,
    /// Catch-up and resynchronisation transfers.
    CatchUp,
}

/// One encoded frame for one peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The receiving region.
    pub to: RegionId,
    /// The stream to use.
    pub channel: Channel,
    /// A complete frame (see [`crate::wire`]).
    pub bytes: Vec<u8>,
}

/// Things worth telling an operator; drained with [`Replica::poll_event`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Data from `peer` carried stamps too far in the future; it is held, not dropped.
    ClockSkew {
        /// The peer whose frame carried the stamp.
        peer: RegionId,
        /// How far ahead of our wall clock the stamp was.
        ahead_ms: u64,
    },
    /// `region` has been silent longer than the grace period and no longer holds back GC.
    Evicted {
        /// The silent region.
        region: RegionId,
    },
    /// `peer` told us we were away longer than the grace period; we asked it for its whole
    /// state (a catch-up from nothing), keeping our own writes.
    Resynced {
        /// The peer we resynchronised from.
        peer: RegionId,
    },
    /// The region restarted and is getting back from its peers what it may have lost; its
    /// own writes up to `floor` were in what it had persisted.
    Restoring {
        /// Every write of this region stamped up to here was in the persisted state.
        floor: Hlc,
    },
    /// Every peer answered (or was given up on as silent): the region holds again every
    /// write of its own that a peer held.
    Restored {
        /// How long it took.
        after_ms: u64,
        /// Key deltas received by catch-up meanwhile.
        keys: u64,
    },
    /// A malformed frame from `peer` was rejected; nothing of it was applied.
    BadFrame {
        /// The sender.
        peer: RegionId,
    },
    /// A keyspace event ([`crate::notify`]): `key` (a stored name) changed here, by a local
    /// command or a merged delta, or its expiry passed (only while
    /// [`Replica::set_notify`] is on).
    Keyspace {
        /// The key, as stored (its database in its name, see [`crate::db`]).
        key: Bytes,
        /// Redis's event name (`del`, `expired`, `hset`, …).
        event: &'static str,
        /// Its class ([`crate::notify::class`]).
        class: u32,
    },
    /// `peer` published `message` on `channel` ([`Replica::publish`] there): for this
    /// region's subscribers.
    Published {
        /// The publishing region.
        peer: RegionId,
        /// The channel.
        channel: Bytes,
        /// The message.
        message: Bytes,
    },
    /// A local command changed `key` by `delta` (only with [`Config::record_writes`]).
    Wrote {
        /// The key.
        key: Bytes,
        /// The registers the command wrote (boxed: a key state is large next to the other
        /// events).
        delta: Box<crate::crdt::KeyState>,
    },
}

/// Counters and gauges the core exposes; the node turns them into metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Keys stored, live or not (tombstones and expired keys awaiting collection included).
    pub keys: u64,
    /// Keys that are deleted or expired and wait for collection.
    pub tombstones: u64,
    /// Keys collected so far.
    pub collected: u64,
    /// Catch-up queries (one per origin asked about) from further back than the origin
    /// index's history, answered by a pass over every key.
    pub catchup_full_scans: u64,
    /// Catch-up requests answered with an answer already in progress for the same watermarks
    /// (one snapshot and one encoding for several requesters).
    pub catchup_answers_shared: u64,
    /// Registers that lost to a concurrent write with a greater stamp, or to a delete.
    pub conflicts: u64,
    /// Key deltas currently held back because of clock skew.
    pub held: u64,
    /// Entries in the origin/stamp index.
    pub index_entries: u64,
    /// Keys written locally and not yet pushed.
    pub dirty: u64,
    /// Frames and bytes sent and received.
    pub frames_sent: u64,
    /// Bytes of all frames sent.
    pub bytes_sent: u64,
    /// Frames received (valid ones).
    pub frames_received: u64,
    /// Bytes of all frames received.
    pub bytes_received: u64,
    /// Frames rejected as malformed.
    pub bad_frames: u64,
    /// Local writes executed.
    pub local_writes: u64,
    /// Expired keys reclaimed (collected, or buried while a region is evicted).
    pub expired: u64,
    /// Catch-up requests made because a connected origin's writes stalled while a peer held
    /// them (see `reroute_after_ms`).
    pub reroutes: u64,
    /// Restorations completed since start (0 or 1).
    pub restored: u64,
    /// Keys dropped after a restart because a peer's census answer showed them collected
    /// everywhere (see `restore`).
    pub census_dropped: u64,
    /// Bytes of census parts this region sent after restarts (see `restore`).
    pub census_bytes: u64,
}

/// The state a replica persists and restarts from (everything it applied, under
/// `durability = "always"`). Frames in flight and timers are not part of it.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    /// Every key's state, in store order (`Store::iter`'s: the order recovery applies them in,
    /// and the order on disk) unless taken with [`Replica::snapshot_unsorted`]. Shared with
    /// the store, not copied (see [`SharedState`]); encoded exactly as plain states.
    pub keys: Vec<(Bytes, SharedState)>,
    /// Watermarks per origin.
    pub wm: Watermarks,
    /// The greatest HLC value issued or observed.
    pub clock: Hlc,
    /// The `to` of the last push.
    pub last_push_to: Hlc,
    /// Keys with local writes not yet pushed.
    pub dirty: Vec<Bytes>,
    /// Deltas held back because of clock skew: key, delta, sender, and whether its `cl`
    /// register was news when it was held.
    pub held: Vec<(Bytes, KeyState, RegionId, bool)>,
    /// While restoring: every write of ours stamped up to here is held (see `restore`).
    /// Left out when not restoring (the last field, so a snapshot reads the same either way,
    /// and snapshots written before restoring existed read as not restoring).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restoring: Option<Hlc>,
}

impl Snapshot {
    /// Puts the keys in store order, which recovery applies them in and which makes the same
    /// state encode to the same bytes.
    pub fn sort_keys(&mut self) {
        store::sort_in_store_order(&mut self.keys);
        self.dirty.sort_unstable();
    }

    /// An empty list with room for `keys` keys, for [`Replica::snapshot_unsorted`], its memory
    /// already mapped. A list this large comes straight from the kernel, which maps a page
    /// only when it is first written; writing each page here, before the lock is taken, keeps
    /// those page faults out of the pause (at a million keys they were a quarter of it).
    pub fn key_room(keys: usize) -> Vec<(Bytes, SharedState)> {
        let mut v = Vec::with_capacity(keys);
        let per_page = (4096 / std::mem::size_of::<(Bytes, SharedState)>()).max(1);
        for slot in v.spare_capacity_mut().iter_mut().step_by(per_page) {
            *slot = std::mem::MaybeUninit::zeroed();
        }
        v
    }
}

/// Frames and bytes exchanged with one peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Frames sent to it.
    pub frames_sent: u64,
    /// Bytes sent to it.
    pub bytes_sent: u64,
    /// Valid frames received from it.
    pub frames_received: u64,
    /// Bytes of valid frames received from it.
    pub bytes_received: u64,
}

/// A peer as operators see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerStatus {
    /// The peer.
    pub region: RegionId,
    /// Whether the driver reports a live connection.
    pub connected: bool,
    /// The peer holds every write of ours up to this HLC.
    pub acked: Hlc,
    /// Our newest write minus `acked`, in ms (0 when caught up).
    pub lag_ms: u64,
    /// Its clock minus ours at its last push (includes one-way latency).
    pub clock_offset_ms: i64,
    /// Evicted for GC purposes (silent beyond the grace period).
    pub evicted: bool,
    /// Our watermark for its writes.
    pub watermark: Hlc,
    /// Our write commands it does not hold yet (as far as its acknowledgements tell).
    pub lag_writes: u64,
    /// Frames and bytes exchanged with it.
    pub traffic: Traffic,
}
