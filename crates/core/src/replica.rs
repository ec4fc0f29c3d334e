//! The sans-IO replication protocol: one [`Replica`] per region.
//!
//! # How a driver calls it
//!
//! A driver (the tokio node, or the simulator) owns one `Replica` and, in any order:
//!
//! 1. feeds client commands to [`Replica::execute`] and sends the reply to the client at once —
//!    nothing waits for another region;
//! 2. reports link changes with [`Replica::handle_connected`] / [`Replica::handle_disconnected`];
//! 3. hands every frame received from a peer to [`Replica::handle_frame`];
//! 4. calls [`Replica::handle_timeout`] when the deadline from [`Replica::poll_timeout`] passes
//!    (it is cheap to call early);
//!
//! and after each of those drains [`Replica::poll_transmit`] (frames to send, each to one peer on
//! one [`Channel`]) and [`Replica::poll_event`] (things operators want to know).
//!
//! `Now` carries two clocks: `mono_ms` schedules timers and never goes backwards; `wall_ms` feeds
//! the hybrid logical clock and may be skewed, stepped or slow.

use crate::reply::Reply;
use crate::stamp::RegionId;
use bytes::Bytes;

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
}

/// Settings of one replica.
#[derive(Clone, Debug)]
pub struct Config {
    /// This region.
    pub region: RegionId,
    /// Every region of the cluster, this one included.
    pub regions: Vec<RegionId>,
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
    /// Planted faults for oracle tests.
    pub faults: Faults,
    /// Emit an [`Event::Wrote`] for every key a local command changes (simulator oracles).
    pub record_writes: bool,
    /// Keep a journal of every change for the durable log ([`Replica::take_records`]).
    pub journal: bool,
}

impl Config {
    /// Defaults suitable for loopback and the simulator, for `region` among `regions`.
    pub fn new(region: RegionId, regions: &[RegionId]) -> Config {
        Config {
            region,
            regions: regions.to_vec(),
            max_clock_drift_ms: 500,
            flush_interval_ms: 2,
            catchup_interval_ms: 1_000,
            gc_interval_ms: 1_000,
            tombstone_grace_ms: 60_000,
            max_frame_bytes: 256 * 1024,
            faults: Faults::default(),
            record_writes: false,
            journal: false,
        }
    }

    /// A lone region (single-region tests and the reference-model comparison).
    pub fn single() -> Config {
        Config::new(RegionId(1), &[RegionId(1)])
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
    /// A malformed frame from `peer` was rejected; nothing of it was applied.
    BadFrame {
        /// The sender.
        peer: RegionId,
    },
    /// A local command changed `key` by `delta` (only with [`Config::record_writes`]).
    Wrote {
        /// The key.
        key: Bytes,
        /// The registers the command wrote.
        delta: crate::crdt::KeyState,
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
}

use crate::cmd;
use crate::crdt::{KeyState, Reg};
use crate::hlc::{Clock, Hlc};
use crate::stamp::Stamp;
use crate::store::{Store, Value};
pub use crate::wire::Record;
use crate::wire::{self, Entry, Message, Report, Watermarks, WireError};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// How many recent pushes are remembered to measure lag in writes (about 8 s at the default
/// 2 ms flush interval under constant writes; an older ack counts as holding nothing newer).
const PUSH_HISTORY: usize = 4096;

/// How often held (future-stamped) deltas are looked at again.
const HELD_RECHECK_MS: u64 = 10;

/// The state a replica persists and restarts from (everything it applied, under
/// `durability = "always"`). Frames in flight and timers are not part of it.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    /// Every key's state.
    pub keys: Vec<Entry>,
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
}

/// What we know of one peer region.
#[derive(Clone, Debug, Default)]
struct Peer {
    connected: bool,
    /// Monotonic time of the last valid frame from it.
    last_heard: u64,
    /// The catch-up answer being received: (request id, next part expected, still intact).
    catchup: Option<(u64, u32, bool)>,
    /// When we last told it that it had been evicted.
    told_evicted: bool,
    /// Its latest report whose writes we hold (its `hlc` is within our watermark for it).
    report: Option<Report>,
    /// A newer report not yet covered by our watermark.
    pending_report: Option<Report>,
    /// The greatest watermark it acknowledged for our writes.
    acked: Hlc,
    /// Its clock minus our wall clock when its last push arrived (latency included).
    clock_offset_ms: i64,
    /// How many of our write commands it holds (from its acks and our push history).
    acked_writes: u64,
    /// Traffic with it.
    traffic: Traffic,
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

/// One region's replica: the store, the clock and the replication protocol.
#[derive(Debug)]
pub struct Replica {
    cfg: Config,
    clock: Clock,
    store: Store,
    /// Raw watermarks per origin (not ours: ours is the clock).
    wm: BTreeMap<RegionId, Hlc>,
    /// Greatest stamp minus one under which each origin has held deltas (caps `wm`).
    held_floor: BTreeMap<RegionId, Hlc>,
    dirty: BTreeSet<Bytes>,
    last_push_to: Hlc,
    /// Held deltas: (delta, sender, whether its `cl` register was news when held).
    held: BTreeMap<Bytes, (KeyState, RegionId, bool)>,
    peers: BTreeMap<RegionId, Peer>,
    evicted: BTreeSet<RegionId>,
    outbox: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: Stats,
    next_flush: Option<u64>,
    next_catchup: u64,
    next_gc: u64,
    /// When to look at held deltas again (while any are held).
    next_release: Option<u64>,
    /// Recent pushes: (`to`, local write commands so far), to turn acks into write counts.
    push_history: VecDeque<(Hlc, u64)>,
    last_write: Option<Stamp>,
    next_id: u64,
    /// Record every local delta as an [`Event::Wrote`] (simulator oracles).
    record_writes: bool,
    /// Changes not yet taken by the durable log (only with [`Config::journal`]).
    records: Vec<Record>,
}

impl Replica {
    /// A replica with an empty store.
    pub fn new(cfg: Config) -> Replica {
        let clock = Clock::new(cfg.max_clock_drift_ms);
        let peers = cfg
            .regions
            .iter()
            .filter(|r| **r != cfg.region)
            .map(|r| (*r, Peer::default()))
            .collect();
        Replica {
            record_writes: cfg.record_writes,
            cfg,
            clock,
            store: Store::new(),
            wm: BTreeMap::new(),
            held_floor: BTreeMap::new(),
            dirty: BTreeSet::new(),
            last_push_to: Hlc::ZERO,
            held: BTreeMap::new(),
            peers,
            evicted: BTreeSet::new(),
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            next_flush: None,
            next_catchup: 0,
            next_gc: 0,
            next_release: None,
            push_history: VecDeque::new(),
            last_write: None,
            next_id: 1,
            records: Vec::new(),
        }
    }

    /// Restarts from a [`Snapshot`]: the clock re-seeds from the greatest persisted stamp so it
    /// never issues a stamp twice.
    pub fn restore(cfg: Config, snap: Snapshot, now: Now) -> Replica {
        let mut r = Replica::new(cfg);
        for (k, st) in &snap.keys {
            r.store.apply(k, st);
        }
        r.wm = snap.wm.into_iter().collect();
        r.clock
            .seed(snap.clock.max(r.store.max_hlc()).max(snap.last_push_to));
        r.last_push_to = snap.last_push_to;
        r.dirty = snap.dirty.into_iter().collect();
        r.held = snap
            .held
            .into_iter()
            .map(|(k, s, p, c)| (k, (s, p, c)))
            .collect();
        r.refresh_held_floor();
        if !r.held.is_empty() {
            r.next_release = Some(now.mono_ms);
        }
        for p in r.peers.values_mut() {
            p.last_heard = now.mono_ms;
        }
        if !r.dirty.is_empty() {
            r.next_flush = Some(now.mono_ms);
        }
        r.next_catchup = now.mono_ms;
        r.next_gc = now.mono_ms + r.cfg.gc_interval_ms;
        r
    }

    /// What this replica would have persisted by now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            keys: self
                .store
                .iter()
                .map(|(k, s)| (k.clone(), s.clone()))
                .collect(),
            wm: self.wm.iter().map(|(r, h)| (*r, *h)).collect(),
            clock: self.clock.last(),
            last_push_to: self.last_push_to,
            dirty: self.dirty.iter().cloned().collect(),
            held: self
                .held
                .iter()
                .map(|(k, (s, p, c))| (k.clone(), s.clone(), *p, *c))
                .collect(),
        }
    }

    /// This replica's settings.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// This region.
    pub fn region(&self) -> RegionId {
        self.cfg.region
    }

    /// The HLC's last value.
    pub fn clock_last(&self) -> Hlc {
        self.clock.last()
    }

    /// Counters and gauges.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        s.keys = self.store.len() as u64;
        s.tombstones = self.store.tombstone_count() as u64;
        s.index_entries = self.store.index_len() as u64;
        s.held = self.held.len() as u64;
        s.dirty = self.dirty.len() as u64;
        s
    }

    /// The stamp of the latest local write command.
    pub fn last_write(&self) -> Option<Stamp> {
        self.last_write
    }

    /// How many other regions are known to hold every write of ours up to `stamp`.
    pub fn regions_holding(&self, stamp: Stamp) -> usize {
        self.peers.values().filter(|p| p.acked >= stamp.hlc).count()
    }

    /// Every peer's replication state.
    pub fn peer_status(&self) -> Vec<PeerStatus> {
        let newest = self.last_write.map_or(Hlc::ZERO, |s| s.hlc);
        self.peers
            .iter()
            .map(|(r, p)| PeerStatus {
                region: *r,
                connected: p.connected,
                acked: p.acked,
                lag_ms: if p.acked >= newest {
                    0
                } else {
                    newest.ms().saturating_sub(p.acked.ms())
                },
                clock_offset_ms: p.clock_offset_ms,
                evicted: self.evicted.contains(r),
                watermark: self.watermark(*r),
                lag_writes: self.stats.local_writes.saturating_sub(p.acked_writes),
                traffic: p.traffic,
            })
            .collect()
    }

    /// Our effective watermark for `origin`: every write of it up to this HLC is applied here.
    /// For ourselves it is the clock. Held deltas cap it, so that we never claim what we only
    /// hold in the skew buffer.
    pub fn watermark(&self, origin: RegionId) -> Hlc {
        if origin == self.cfg.region {
            return self.clock.last();
        }
        let raw = self.wm.get(&origin).copied().unwrap_or(Hlc::ZERO);
        match self.held_floor.get(&origin) {
            Some(f) => raw.min(*f),
            None => raw,
        }
    }

    fn watermarks(&self) -> Watermarks {
        self.cfg
            .regions
            .iter()
            .map(|r| (*r, self.watermark(*r)))
            .collect()
    }

    /// The state of a key, live or not (tests and oracles).
    pub fn key_state(&self, key: &Bytes) -> Option<&KeyState> {
        self.store.get(key)
    }

    /// Every key a client can see at `now`, with its absolute expiry.
    pub fn live(&self, now: Now) -> BTreeMap<Bytes, (Value, Option<u64>)> {
        let t = self.clock.now_ms(now.wall_ms);
        self.store
            .iter()
            .filter_map(|(k, s)| s.view(t).map(|v| (k.clone(), v)))
            .collect()
    }

    /// A digest of [`Replica::live`]: equal digests mean equal visible states.
    pub fn digest(&self, now: Now) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |b: &[u8]| {
            for x in (b.len() as u64).to_le_bytes().iter().chain(b) {
                h ^= u64::from(*x);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        for (k, (v, e)) in self.live(now) {
            eat(&k);
            eat(&e.unwrap_or(u64::MAX).to_le_bytes());
            match v {
                Value::String(s) => eat(&s),
                Value::Hash(f) => {
                    for (a, b) in f {
                        eat(&a);
                        eat(&b);
                    }
                }
            }
        }
        h
    }

    // ----- journal ---------------------------------------------------------------------------

    fn journal(&mut self, r: impl FnOnce() -> Record) {
        if self.cfg.journal {
            self.records.push(r());
        }
    }

    /// Takes the changes made since the last call, in order. Appending them to a log and
    /// replaying them with [`Replica::recover`] rebuilds this replica's state.
    pub fn take_records(&mut self) -> Vec<Record> {
        std::mem::take(&mut self.records)
    }

    /// True when changes wait in the journal.
    pub fn has_records(&self) -> bool {
        !self.records.is_empty()
    }

    fn remove_key(&mut self, k: &Bytes) {
        self.store.remove(k);
        self.dirty.remove(k);
        self.stats.collected += 1;
        self.journal(|| Record::Remove { key: k.clone() });
    }

    fn set_wm(&mut self, origin: RegionId, hlc: Hlc) {
        let w = self.wm.entry(origin).or_insert(Hlc::ZERO);
        if hlc > *w {
            *w = hlc;
            self.journal(|| Record::Watermark { origin, hlc });
        }
    }

    /// Rebuilds a replica from its last snapshot and the journal records written after it.
    /// Keys with our own writes newer than the last push are marked dirty again, and the clock
    /// is re-seeded above every stamp it could have issued.
    pub fn recover(
        cfg: Config,
        snap: Snapshot,
        records: impl IntoIterator<Item = Record>,
        now: Now,
    ) -> Replica {
        let journal = cfg.journal;
        let mut r = Replica::restore(
            Config {
                journal: false,
                ..cfg
            },
            snap,
            now,
        );
        for rec in records {
            match rec {
                Record::Apply { key, delta } => {
                    r.store.apply(&key, &delta);
                }
                Record::Remove { key } => {
                    r.store.remove(&key);
                    r.dirty.remove(&key);
                }
                Record::Watermark { origin, hlc } => r.set_wm(origin, hlc),
                Record::Pushed { to } => r.last_push_to = r.last_push_to.max(to),
                Record::Hold {
                    key,
                    delta,
                    peer,
                    cl_new,
                } => r.hold(key, delta, peer, cl_new),
                Record::Release { key } => {
                    r.held.remove(&key);
                }
            }
        }
        let me = r.cfg.region;
        let dirty: Vec<Bytes> = r.store.changed_since(me, r.last_push_to).cloned().collect();
        r.dirty.extend(dirty);
        if !r.dirty.is_empty() {
            r.next_flush = Some(now.mono_ms);
        }
        let wm_max = r.wm.values().copied().max().unwrap_or(Hlc::ZERO);
        r.clock
            .seed(r.store.max_hlc().max(r.last_push_to).max(wm_max));
        r.refresh_held_floor();
        if !r.held.is_empty() {
            r.next_release = Some(now.mono_ms);
        }
        r.cfg.journal = journal;
        r
    }

    // ----- clients -------------------------------------------------------------------------

    /// Executes one data command and returns its reply. Writes are applied locally at once and
    /// shipped to peers at the next flush.
    pub fn execute(&mut self, args: &[Bytes], now: Now) -> Reply {
        let Some(name) = args.first() else {
            return cmd::unknown_command(args);
        };
        let Some(info) = cmd::lookup(name) else {
            return cmd::unknown_command(args);
        };
        let (stamp, now_ms) = if info.write {
            let h = self.clock.tick(now.wall_ms);
            (Some(Stamp::new(h, self.cfg.region)), h.ms())
        } else {
            (None, self.clock.now_ms(now.wall_ms))
        };
        let mut ctx = cmd::Ctx {
            store: &mut self.store,
            now_ms,
            stamp,
            writes: Vec::new(),
            conflicts: 0,
        };
        let reply = cmd::execute(&mut ctx, args);
        let (writes, conflicts) = (ctx.writes, ctx.conflicts);
        self.stats.conflicts += conflicts;
        if !writes.is_empty() {
            self.stats.local_writes += 1;
            self.last_write = stamp;
            if self.dirty.is_empty() && self.next_flush.is_none() {
                self.next_flush = Some(now.mono_ms + self.cfg.flush_interval_ms);
            }
            for (key, delta) in writes {
                self.dirty.insert(key.clone());
                if self.cfg.journal {
                    self.records.push(Record::Apply {
                        key: key.clone(),
                        delta: delta.clone(),
                    });
                }
                if self.record_writes {
                    self.events.push_back(Event::Wrote { key, delta });
                }
            }
        }
        reply
    }

    // ----- links ---------------------------------------------------------------------------

    /// The driver has a live connection to `peer`: ask it for what we missed.
    pub fn handle_connected(&mut self, peer: RegionId, now: Now) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        p.connected = true;
        p.last_heard = p.last_heard.max(now.mono_ms);
        self.request_catchup(peer);
    }

    /// The connection to `peer` is gone: stop pushing to it. Catch-up repairs the gap later.
    pub fn handle_disconnected(&mut self, peer: RegionId, _now: Now) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.connected = false;
            p.catchup = None;
        }
    }

    fn send(&mut self, to: RegionId, channel: Channel, msg: &Message) {
        let bytes = wire::encode(msg);
        self.count_sent(to, bytes.len());
        self.outbox.push_back(Transmit { to, channel, bytes });
    }

    fn count_sent(&mut self, to: RegionId, len: usize) {
        self.stats.frames_sent += 1;
        self.stats.bytes_sent += len as u64;
        if let Some(p) = self.peers.get_mut(&to) {
            p.traffic.frames_sent += 1;
            p.traffic.bytes_sent += len as u64;
        }
    }

    fn connected_peers(&self) -> Vec<RegionId> {
        self.peers
            .iter()
            .filter(|(_, p)| p.connected)
            .map(|(r, _)| *r)
            .collect()
    }

    fn request_catchup(&mut self, peer: RegionId) {
        if self.cfg.faults.no_catchup {
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        if let Some(p) = self.peers.get_mut(&peer) {
            p.catchup = Some((id, 0, true));
        }
        let wm = self.watermarks();
        self.send(peer, Channel::CatchUp, &Message::CatchUpRequest { id, wm });
    }

    // ----- frames --------------------------------------------------------------------------

    /// Handles one complete frame from `peer`. A malformed frame is rejected whole, counted and
    /// reported; the caller should close the connection.
    pub fn handle_frame(
        &mut self,
        peer: RegionId,
        frame: &[u8],
        now: Now,
    ) -> Result<(), WireError> {
        if !self.peers.contains_key(&peer) {
            return Err(WireError::Malformed(format!(
                "frame from unknown region {peer}"
            )));
        }
        let msg = match wire::decode(frame, self.cfg.max_frame_bytes) {
            Ok(m) => m,
            Err(e) => {
                self.stats.bad_frames += 1;
                self.events.push_back(Event::BadFrame { peer });
                return Err(e);
            }
        };
        self.stats.frames_received += 1;
        self.stats.bytes_received += frame.len() as u64;
        if let Some(p) = self.peers.get_mut(&peer) {
            p.last_heard = p.last_heard.max(now.mono_ms);
            p.traffic.frames_received += 1;
            p.traffic.bytes_received += frame.len() as u64;
        }
        match msg {
            Message::Push {
                from,
                to,
                entries,
                report,
            } => self.on_push(peer, from, to, entries, report, now),
            Message::Ack { upto } => {
                // Our pushes ending at or below `upto` are all held there: the write count at
                // the newest of them is how many of our writes it holds.
                let held = self
                    .push_history
                    .iter()
                    .rev()
                    .find(|(to, _)| *to <= upto)
                    .map(|(_, n)| *n);
                let p = self.peers.get_mut(&peer).expect("checked");
                p.acked = p.acked.max(upto);
                if let Some(n) = held {
                    p.acked_writes = p.acked_writes.max(n);
                }
            }
            Message::CatchUpRequest { id, wm } => self.on_catchup_request(peer, id, &wm),
            Message::CatchUpPart {
                id,
                seq,
                entries,
                done,
            } => self.on_catchup_part(peer, id, seq, entries, done, now),
            Message::Evicted => self.on_evicted(peer),
        }
        Ok(())
    }

    fn on_push(
        &mut self,
        peer: RegionId,
        from: Hlc,
        to: Hlc,
        entries: Vec<Entry>,
        report: Option<Report>,
        now: Now,
    ) {
        {
            let p = self.peers.get_mut(&peer).expect("checked");
            p.clock_offset_ms = to.ms() as i64 - now.wall_ms as i64;
            if report.is_some() {
                p.pending_report = report;
            }
        }
        self.apply_entries(peer, entries, now);
        if self.wm.get(&peer).copied().unwrap_or(Hlc::ZERO) >= from {
            self.set_wm(peer, to);
        }
        self.promote_reports();
        let upto = self.watermark(peer);
        self.send(peer, Channel::Delta, &Message::Ack { upto });
    }

    /// Moves pending reports whose writes we now hold into place.
    fn promote_reports(&mut self) {
        let marks: BTreeMap<RegionId, Hlc> = self
            .peers
            .keys()
            .map(|r| (*r, self.watermark(*r)))
            .collect();
        for (r, p) in self.peers.iter_mut() {
            if p.pending_report
                .as_ref()
                .is_some_and(|rep| rep.hlc <= marks[r])
            {
                p.report = p.pending_report.take();
            }
        }
    }

    /// Applies remote deltas: holds those from the future, drops what we already have, and
    /// refuses stale incarnations of keys we have collected.
    fn apply_entries(&mut self, peer: RegionId, entries: Vec<Entry>, now: Now) {
        let mut max_ahead = 0;
        for (key, st) in entries {
            let max = st.max_stamp().hlc;
            if let Err(e) = self.clock.check(max, now.wall_ms) {
                max_ahead = max_ahead.max(e.ahead_ms);
                // Hold only what is news: a register we already have must not pull our
                // watermark (capped by what we hold) below where it stood.
                let marks = self.marks();
                let known = |s: Stamp| marks.get(&s.region).is_some_and(|w| s.hlc <= *w);
                if let Some(d) = st.delta(|s| !known(s)) {
                    let cl_new = !known(d.cl.stamp);
                    self.hold(key, d, peer, cl_new);
                }
                continue;
            }
            self.apply_entry(&key, &st, now);
        }
        if max_ahead > 0 {
            self.refresh_held_floor();
            self.next_release
                .get_or_insert(now.mono_ms + HELD_RECHECK_MS);
            self.events.push_back(Event::ClockSkew {
                peer,
                ahead_ms: max_ahead,
            });
        }
    }

    fn hold(&mut self, key: Bytes, st: KeyState, peer: RegionId, cl_new: bool) {
        if self.cfg.journal {
            self.records.push(Record::Hold {
                key: key.clone(),
                delta: st.clone(),
                peer,
                cl_new,
            });
        }
        match self.held.get_mut(&key) {
            Some((h, _, c)) => {
                h.merge(&st);
                // Conservative: protecting a `cl` that turned out old only delays a watermark.
                *c |= cl_new;
            }
            None => {
                self.held.insert(key, (st, peer, cl_new));
            }
        }
    }

    fn refresh_held_floor(&mut self) {
        let mut floor: BTreeMap<RegionId, Hlc> = BTreeMap::new();
        for (st, _, cl_new) in self.held.values() {
            for (r, _) in st.origins() {
                // The smallest held stamp of origin r bounds what we may claim to hold of r.
                // The `cl` register rides along with every delta and may be old news; it only
                // counts when it was news when held.
                let min = if *cl_new {
                    st.min_stamp(|s| s.region == r)
                } else {
                    st.min_body_stamp(|s| s.region == r)
                };
                let Some(min) = min else { continue };
                let min = min.hlc;
                let cap = Hlc(min.0.saturating_sub(1));
                let e = floor.entry(r).or_insert(cap);
                *e = (*e).min(cap);
            }
        }
        self.held_floor = floor;
    }

    /// Our effective watermark for every region.
    fn marks(&self) -> BTreeMap<RegionId, Hlc> {
        self.cfg
            .regions
            .iter()
            .map(|r| (*r, self.watermark(*r)))
            .collect()
    }

    /// Applies one remote key delta.
    fn apply_entry(&mut self, key: &Bytes, st: &KeyState, now: Now) {
        let marks = self.marks();
        let known = |s: Stamp| marks.get(&s.region).is_some_and(|w| s.hlc <= *w);
        let Some(delta) = st.delta(|s| !known(s)) else {
            return;
        };
        if self.store.get(key).is_none() && known(delta.cl.stamp) {
            // We held this incarnation and collected it: whatever still arrives of it was
            // concurrent with its delete (or from before its expiry) and must stay dead.
            self.stats.conflicts += delta.register_count();
            return;
        }
        let _ = self.clock.observe(delta.max_stamp().hlc, now.wall_ms);
        let mut delta = delta;
        if self.cfg.faults.merge_prefers_local {
            if let Some(local) = self.store.get(key) {
                plant_local_preference(local, &mut delta);
            }
        }
        self.stats.conflicts += self.store.apply(key, &delta);
        self.journal(|| Record::Apply {
            key: key.clone(),
            delta,
        });
    }

    // ----- catch-up and resync ---------------------------------------------------------------

    fn on_catchup_request(&mut self, peer: RegionId, id: u64, wm: &Watermarks) {
        if self.evicted.contains(&peer) {
            // It was away longer than the grace period: say so (once per absence); it answers
            // with a catch-up from nothing. Its stale writes need no special care: whatever it
            // wrote into sessions that died meanwhile loses to their tombstones (see `collect`).
            let p = self.peers.get_mut(&peer).expect("checked");
            if !p.told_evicted {
                p.told_evicted = true;
                self.send(peer, Channel::CatchUp, &Message::Evicted);
            }
        }
        let theirs: BTreeMap<RegionId, Hlc> = wm.iter().copied().collect();
        let since = |r: RegionId| theirs.get(&r).copied().unwrap_or(Hlc::ZERO);
        let mut keys: BTreeSet<Bytes> = BTreeSet::new();
        for r in &self.cfg.regions {
            keys.extend(self.store.changed_since(*r, since(*r)).cloned());
        }
        let entries = keys.into_iter().filter_map(|k| {
            let st = self.store.get(&k)?;
            st.delta(|s| s.hlc > since(s.region)).map(|d| (k, d))
        });
        let parts = self.cut(entries.collect());
        self.send_parts(peer, id, parts);
    }

    /// Cuts entries into parts that fit the frame limit.
    fn cut(&self, entries: Vec<Entry>) -> Vec<Vec<Entry>> {
        let budget = self.cfg.max_frame_bytes.saturating_sub(256).max(1024);
        let mut parts = vec![Vec::new()];
        let mut size = 0;
        for (k, st) in entries {
            let n = wire::approx_size(&k, &st);
            if size + n > budget && !parts.last().expect("non-empty").is_empty() {
                parts.push(Vec::new());
                size = 0;
            }
            size += n;
            parts.last_mut().expect("non-empty").push((k, st));
        }
        parts
    }

    fn send_parts(&mut self, peer: RegionId, id: u64, parts: Vec<Vec<Entry>>) {
        let last = parts.len() - 1;
        let wm = self.watermarks();
        for (i, entries) in parts.into_iter().enumerate() {
            let done = (i == last).then(|| wm.clone());
            let seq = i as u32;
            let msg = Message::CatchUpPart {
                id,
                seq,
                entries,
                done,
            };
            self.send(peer, Channel::CatchUp, &msg);
        }
    }

    fn on_catchup_part(
        &mut self,
        peer: RegionId,
        id: u64,
        seq: u32,
        entries: Vec<Entry>,
        done: Option<Watermarks>,
        now: Now,
    ) {
        self.apply_entries(peer, entries, now);
        let p = self.peers.get_mut(&peer).expect("checked");
        let Some((want, next, intact)) = p.catchup.as_mut() else {
            return;
        };
        if *want != id {
            return;
        }
        if seq != *next {
            *intact = false;
        }
        *next = seq + 1;
        if let Some(theirs) = done {
            let ok = *intact;
            p.catchup = None;
            if ok {
                // We now hold everything they held when they built the answer.
                self.advance(&theirs);
            }
        }
    }

    fn advance(&mut self, theirs: &Watermarks) {
        for (r, h) in theirs {
            if *r == self.cfg.region {
                continue;
            }
            self.set_wm(*r, *h);
        }
        self.promote_reports();
    }

    /// `peer` says we were away longer than the grace period. Ask it for everything (a
    /// catch-up from empty watermarks); our own writes stay and flow out by normal catch-up.
    fn on_evicted(&mut self, peer: RegionId) {
        if self.cfg.faults.no_catchup {
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        if let Some(p) = self.peers.get_mut(&peer) {
            p.catchup = Some((id, 0, true));
        }
        let wm = self
            .cfg
            .regions
            .iter()
            .map(|r| {
                (
                    *r,
                    if *r == self.cfg.region {
                        self.clock.last()
                    } else {
                        Hlc::ZERO
                    },
                )
            })
            .collect();
        self.send(peer, Channel::CatchUp, &Message::CatchUpRequest { id, wm });
        self.events.push_back(Event::Resynced { peer });
    }

    // ----- timers ----------------------------------------------------------------------------

    /// The next monotonic time at which [`Replica::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<u64> {
        let mut t = self.next_catchup.min(self.next_gc);
        for f in [self.next_flush, self.next_release].into_iter().flatten() {
            t = t.min(f);
        }
        Some(t)
    }

    /// Runs whatever timers are due: push local writes, ask peers for what we missed, release
    /// held deltas, collect garbage.
    pub fn handle_timeout(&mut self, now: Now) {
        if self.next_release.is_some_and(|t| t <= now.mono_ms) {
            self.release_held(now);
            self.next_release = (!self.held.is_empty()).then_some(now.mono_ms + HELD_RECHECK_MS);
        }
        if self.next_flush.is_some_and(|t| t <= now.mono_ms) {
            self.flush(now, false);
        }
        if self.next_catchup <= now.mono_ms {
            self.next_catchup = now.mono_ms + self.cfg.catchup_interval_ms;
            // The periodic push carries our report (and is sent even with nothing to push),
            // which is what lets peers collect garbage and answer WAIT.
            self.flush(now, true);
            for peer in self.connected_peers() {
                self.request_catchup(peer);
            }
        }
        if self.next_gc <= now.mono_ms {
            self.next_gc = now.mono_ms + self.cfg.gc_interval_ms;
            self.check_evictions(now);
            self.collect(now);
        }
    }

    /// Pushes our writes since the last push to every connected peer.
    fn flush(&mut self, now: Now, with_report: bool) {
        self.next_flush = None;
        let me = self.cfg.region;
        let since = self.last_push_to;
        let mut entries: Vec<(Hlc, Entry)> = Vec::new();
        for key in std::mem::take(&mut self.dirty) {
            let Some(st) = self.store.get(&key) else {
                continue;
            };
            let Some(d) = st.delta(|s| s.region == me && s.hlc > since) else {
                continue;
            };
            // Skip deltas where nothing of ours is left (our write lost to a newer one).
            let Some(lo) = d.min_stamp(|s| s.region == me && s.hlc > since) else {
                continue;
            };
            let lo = lo.hlc;
            entries.push((lo, (key, d)));
        }
        if entries.is_empty() && !with_report {
            return;
        }
        // Frames cover consecutive stamp ranges, so a receiver that misses one never claims
        // to hold what it carried: sort by each delta's oldest register, cut, and end each
        // frame's range just below the first stamp of the next one.
        entries.sort_by_key(|e| e.0);
        let to_final = self.clock.tick(now.wall_ms);
        let los: Vec<Hlc> = entries.iter().map(|(lo, _)| *lo).collect();
        let parts = self.cut(entries.into_iter().map(|(_, e)| e).collect());
        let peers = self.connected_peers();
        let mut from = since;
        let mut idx = 0;
        let nparts = parts.len();
        for (i, part) in parts.into_iter().enumerate() {
            idx += part.len();
            let to = if i + 1 == nparts {
                to_final
            } else {
                Hlc(los[idx].0 - 1)
            };
            let report = (with_report && i + 1 == nparts).then(|| Report {
                hlc: to,
                wm: self.watermarks(),
            });
            let msg = Message::Push {
                from,
                to,
                entries: part,
                report,
            };
            let bytes = wire::encode(&msg);
            for p in &peers {
                self.count_sent(*p, bytes.len());
                self.outbox.push_back(Transmit {
                    to: *p,
                    channel: Channel::Delta,
                    bytes: bytes.clone(),
                });
            }
            from = to;
        }
        self.last_push_to = to_final;
        self.push_history
            .push_back((to_final, self.stats.local_writes));
        if self.push_history.len() > PUSH_HISTORY {
            self.push_history.pop_front();
        }
        self.journal(|| Record::Pushed { to: to_final });
    }

    fn release_held(&mut self, now: Now) {
        if self.held.is_empty() {
            return;
        }
        let ready: Vec<Bytes> = self
            .held
            .iter()
            .filter(|(_, (st, _, _))| self.clock.check(st.max_stamp().hlc, now.wall_ms).is_ok())
            .map(|(k, _)| k.clone())
            .collect();
        for k in ready {
            let (st, _, _) = self.held.remove(&k).expect("listed");
            self.journal(|| Record::Release { key: k.clone() });
            // Apply before lifting the floor: our watermark for the origin may already cover
            // these stamps (the push that carried them advanced it), and only the floor keeps
            // the filter from taking them for duplicates.
            self.apply_entry(&k, &st, now);
        }
        self.refresh_held_floor();
        self.promote_reports();
    }

    /// A region silent for longer than the grace period stops counting for garbage collection
    /// until it is heard from again.
    fn check_evictions(&mut self, now: Now) {
        let grace = self.cfg.tombstone_grace_ms;
        for (r, p) in self.peers.iter_mut() {
            let late = p.last_heard.saturating_add(grace) < now.mono_ms;
            if late && self.evicted.insert(*r) {
                self.events.push_back(Event::Evicted { region: *r });
            } else if !late && self.evicted.remove(r) {
                p.told_evicted = false;
            }
        }
    }

    /// Collects tombstones and expired keys that are causally stable: every region that counts
    /// has reported holding all of the key's registers, and we hold everything each of them
    /// wrote before that report. For expired keys every such region's clock has also passed the
    /// expiry. See docs/DESIGN.md for why this never resurrects anything.
    fn collect(&mut self, now: Now) {
        let now_ms = self.clock.now_ms(now.wall_ms);
        let unsafe_gc = self.cfg.faults.gc_without_stability;
        // floor[o]: every counted region holds every write of o up to floor[o].
        let mut floor: BTreeMap<RegionId, Hlc> = self
            .cfg
            .regions
            .iter()
            .map(|r| (*r, Hlc(u64::MAX)))
            .collect();
        if !unsafe_gc {
            // Our own watermarks count too: once collected, a stale copy of any of the key's
            // registers (a duplicate or late frame) must be recognised as already known, or it
            // would be taken for news and bring the key back.
            for (o, f) in floor.iter_mut() {
                *f = (*f).min(self.watermark(*o));
            }
        }
        let mut time_floor = now_ms;
        for (r, p) in &self.peers {
            if self.evicted.contains(r) || unsafe_gc {
                continue;
            }
            let Some(rep) = &p.report else { return };
            let marks: BTreeMap<RegionId, Hlc> = rep.wm.iter().copied().collect();
            for (o, f) in floor.iter_mut() {
                *f = (*f).min(marks.get(o).copied().unwrap_or(Hlc::ZERO));
            }
            time_floor = time_floor.min(rep.hlc.ms());
        }
        let stable = |st: &KeyState| {
            st.origins()
                .iter()
                .all(|(o, h)| floor.get(o).is_some_and(|f| h <= f))
        };
        // Tombstones wait for every region, evicted ones included: a region away beyond the
        // grace period may still hold writes made concurrently with the delete, and the
        // tombstone is what makes them lose when they arrive. A tombstone has no body, so
        // keeping it costs the key and a few bytes.
        let everyone = self.evicted.is_empty() || unsafe_gc;
        let mut dead: Vec<Bytes> = self
            .store
            .tombstones()
            .filter(|k| everyone && self.store.get(k).is_some_and(|st| unsafe_gc || stable(st)))
            .cloned()
            .collect();
        // Expired (strictly before both our clock and every counted region's clock).
        dead.extend(
            self.store
                .expired_before(time_floor)
                .filter(|k| {
                    self.store
                        .get(k)
                        .is_some_and(|st| !st.is_deleted() && (unsafe_gc || stable(st)))
                })
                .cloned(),
        );
        for k in dead {
            let expired = self.store.get(&k).is_some_and(|st| !st.is_deleted());
            if expired {
                self.stats.expired += 1;
            }
            if expired && !everyone {
                self.bury(&k, now);
            } else {
                self.remove_key(&k);
            }
        }
    }

    /// The bounded rule for long absences: an expired key, stable among the regions that
    /// count, becomes a tombstone (a delete stamped by us) instead of being collected. The body
    /// is freed at once; the tombstone makes whatever the absent region wrote into the expired
    /// session meanwhile lose when it arrives, in every region alike, and is itself collected
    /// once everybody is back. Replicated like any local delete.
    fn bury(&mut self, key: &Bytes, now: Now) {
        let Some(st) = self.store.get(key) else {
            return;
        };
        let stamp = Stamp::new(self.clock.tick(now.wall_ms), self.cfg.region);
        let delta = KeyState {
            cl: Reg::new(stamp, st.cl.value + 1),
            body: crate::crdt::Body::default(),
        };
        self.stats.conflicts += self.store.apply(key, &delta);
        self.dirty.insert(key.clone());
        if self.next_flush.is_none() {
            self.next_flush = Some(now.mono_ms + self.cfg.flush_interval_ms);
        }
        if self.record_writes {
            self.events.push_back(Event::Wrote {
                key: key.clone(),
                delta: delta.clone(),
            });
        }
        self.journal(|| Record::Apply {
            key: key.clone(),
            delta,
        });
    }

    // ----- outputs ---------------------------------------------------------------------------

    /// The next frame to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}

/// The planted fault [`Faults::merge_prefers_local`]: an incoming register that "ties" with the
/// local one (same millisecond, whatever the counter and region) is dropped instead of being
/// compared, so two regions writing a field in the same millisecond keep different winners.
fn plant_local_preference(local: &KeyState, delta: &mut KeyState) {
    let same_ms =
        |a: crate::stamp::Stamp, b: crate::stamp::Stamp| a != b && a.hlc.ms() == b.hlc.ms();
    delta.body.fields.retain(|f, r| {
        local
            .body
            .fields
            .get(f)
            .is_none_or(|l| !same_ms(l.stamp, r.stamp))
    });
    if let (Some(l), Some(r)) = (&local.body.string, &delta.body.string) {
        if same_ms(l.stamp, r.stamp) {
            delta.body.string = None;
        }
    }
    if let (Some(l), Some(r)) = (&local.body.ttl, &delta.body.ttl) {
        if same_ms(l.stamp, r.stamp) {
            delta.body.ttl = None;
        }
    }
}
