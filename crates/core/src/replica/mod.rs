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
//! one [`Channel`]), [`Replica::poll_catchup`] (catch-up parts, handed out only as the driver
//! says the peer's catch-up stream has room; call it again when such a stream drains, while
//! [`Replica::answering`]) and [`Replica::poll_event`] (things operators want to know).
//!
//! After a restart ([`Replica::recover`]) a driver also waits for [`Replica::stamps_ready`]
//! before executing writes (at most `max_clock_drift_ms`; see `restore`).
//!
//! Submodules: `types` (what a driver passes in and drains), `inbound` (frames from peers),
//! `catchup` (requests and received parts), `answer` (answers cut part by part), `timers` (push, GC), `journal`, `restore` (restarting from less than
//! everything), `routing` (progress notes, relayed reports).
//!
//! `Now` carries two clocks: `mono_ms` schedules timers and never goes backwards; `wall_ms` feeds
//! the hybrid logical clock and may be skewed, stepped or slow.

use crate::cmd;
use crate::crdt::{KeyState, Reg};
use crate::hlc::{Clock, Hlc};
use crate::reply::Reply;
use crate::stamp::{RegionId, Stamp};
use crate::store::{self, SharedState, Store, Value};
pub use crate::wire::Record;
use crate::wire::{self, Done, Entry, Message, Report, Watermarks, WireError};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

mod answer;
mod catchup;
mod inbound;
mod journal;
mod restore;
mod routing;
mod step;
mod timers;
mod types;

pub use restore::RestoreStatus;
pub use step::{Ready, Timer};
pub use types::{
    Channel, Config, Event, Faults, Now, PeerStatus, Snapshot, Stats, Traffic, Transmit,
};

/// How many recent pushes are remembered to measure lag in writes (about 8 s at the default
/// 2 ms flush interval under constant writes; an older ack counts as holding nothing newer).
const PUSH_HISTORY: usize = 4096;

/// What the next push carries of a key written here since the last one.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Touched {
    /// The deltas of the local writes, merged: pushed as they are, so a push needs no lookup
    /// of the key (that lookup, a cache miss at a hundred thousand keys, and rebuilding the
    /// delta from the state were a twentieth of a replicated SET's CPU). A write of ours
    /// that a remote write has since beaten is pushed anyway; every receiver merges it and
    /// it loses there as it lost here.
    Delta(KeyState),
    /// Our registers newer than the last push, read from the key's state at the push: after a
    /// restart, and for writes made by the replica itself (burying an expired session).
    Whole,
}

/// The table of keys to push: a hash table (a B-tree's insert was a few key comparisons and
/// cache misses per write); the push sorts what it takes, so the order never depends on the
/// table's seed.
type Dirty = hashbrown::HashMap<Bytes, Touched, crate::seed::Seeded>;

/// How many catch-up intervals a catch-up request may go without any part of its answer
/// arriving before it is asked again (a large answer keeps it alive as long as parts arrive).
const CATCHUP_PATIENCE: u64 = 2;

/// How often held (future-stamped) deltas are looked at again.
const HELD_RECHECK_MS: u64 = 10;

/// What we know of one peer region.
#[derive(Clone, Debug, Default)]
struct Peer {
    connected: bool,
    /// Monotonic time of the last valid frame from it.
    last_heard: u64,
    /// The catch-up answer being received: (request id, next part expected, still intact).
    /// (request id, next part expected, still intact, monotonic time of the request or of the
    /// last part received).
    catchup: Option<(u64, u32, bool, u64)>,
    /// Origins the outstanding catch-up request told this peer to leave out (we are connected
    /// to them directly): its answer says nothing about them, so its final watermarks must not
    /// move ours for them.
    catchup_skipped: Vec<RegionId>,
    /// When we last told it that it had been evicted.
    told_evicted: bool,
    /// Whether its own writes may be missing here: set on connecting, and by a push that did
    /// not start where our watermark for it stood (one of its pushes went missing); cleared by
    /// a push that did. While it is clear, the pushes still in flight on the link carry
    /// everything of its own that we lack, so periodic catch-up leaves its writes out.
    push_gap: bool,
    /// Its latest report whose writes we hold (its `hlc` is within our watermark for it).
    report: Option<Report>,
    /// A newer report not yet covered by our watermark.
    pending_report: Option<Report>,
    /// The greatest watermark it acknowledged for our writes.
    acked: Hlc,
    /// A run of our pushes it holds beyond `acked` (its last `Ack`'s `run`).
    acked_run: Option<(Hlc, Hlc)>,
    /// A run of its pushes that arrived one after another, `(from, to]`, after a gap: we hold
    /// those writes though our watermark for it does not reach them yet.
    run: Option<(Hlc, Hlc)>,
    /// The watermarks we last told it, and when (monotonic).
    told: Watermarks,
    told_at: u64,
    /// Its restart id while it says it is restoring.
    restoring: Option<u64>,
    /// Its newest report from before that restart (answers tell it, see `Done`); its reports
    /// from before are not used for garbage collection any more, since it may have lost what
    /// they claimed.
    prior_report: Option<Report>,
    /// Its clock minus our wall clock when its last push arrived (latency included).
    clock_offset_ms: i64,
    /// How many of our write commands it holds (from its acks and our push history).
    acked_writes: u64,
    /// Traffic with it.
    traffic: Traffic,
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
    dirty: Dirty,
    last_push_to: Hlc,
    /// Held deltas: (delta, sender, whether its `cl` register was news when held).
    held: BTreeMap<Bytes, (KeyState, RegionId, bool)>,
    peers: BTreeMap<RegionId, Peer>,
    evicted: BTreeSet<RegionId>,
    /// Peers' word that they hold writes of an origin that we lack (see `routing`).
    claims: BTreeMap<RegionId, routing::Claim>,
    /// After a restart: getting back our own writes (see `restore`).
    restoring: Option<restore::Restoring>,
    /// After a restart: no stamp until the clock is past every stamp issued before.
    barrier: Option<restore::StampBarrier>,
    /// Pushes start above this: set when a restart's stamp barrier lifts (see `restore`).
    push_floor: Hlc,
    outbox: VecDeque<Transmit>,
    /// Catch-up answers being sent part by part ([`Replica::poll_catchup`]).
    answers: answer::Answers,
    events: VecDeque<Event>,
    stats: Stats,
    /// When each timer fires next.
    timers: step::Timers,
    /// What the previous [`Replica::ready`] reported, and the step's write so far.
    step: step::StepState,
    /// Monotonic time of the last push ([`Replica::flush`]): the flush interval is a minimum
    /// spacing between pushes, not a delay — see [`Replica::flush_due`].
    last_flush: Option<u64>,
    /// Recent pushes: (`to`, local write commands so far), to turn acks into write counts.
    push_history: VecDeque<(Hlc, u64)>,
    last_write: Option<Stamp>,
    next_id: u64,
    /// Record every local delta as an [`Event::Wrote`] (simulator oracles).
    record_writes: bool,
    /// Raise [`Event::Keyspace`] for every change ([`Replica::set_notify`]).
    notify: bool,
    /// Expiries before this (ms) have had their `expired` event ([`Replica::poll_expired`]).
    expired_cursor: Option<u64>,
    /// Changes not yet taken by the durable log (only with [`Config::journal`]).
    records: Vec<Record>,
}

impl Replica {
    /// A replica with an empty store.
    pub fn new(cfg: Config) -> Replica {
        crate::seed::set(cfg.hash_seed);
        let clock = Clock::new(cfg.max_clock_drift_ms);
        let peers = cfg
            .regions
            .iter()
            .filter(|r| **r != cfg.region)
            .map(|r| (*r, Peer::default()))
            .collect();
        let mut store = Store::new();
        store.flush_ignores_late_deltas = cfg.faults.flush_ignores_late_deltas;
        Replica {
            record_writes: cfg.record_writes,
            notify: false,
            expired_cursor: None,
            cfg,
            clock,
            store,
            wm: BTreeMap::new(),
            held_floor: BTreeMap::new(),
            dirty: Dirty::default(),
            last_push_to: Hlc::ZERO,
            held: BTreeMap::new(),
            peers,
            evicted: BTreeSet::new(),
            claims: BTreeMap::new(),
            restoring: None,
            barrier: None,
            push_floor: Hlc::ZERO,
            outbox: VecDeque::new(),
            answers: answer::Answers::default(),
            events: VecDeque::new(),
            stats: Stats::default(),
            // Routing, catch-up and GC run from the start; the others are armed by events.
            timers: step::Timers::starting(),
            step: step::StepState::default(),
            last_flush: None,
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
        r.dirty = snap
            .dirty
            .into_iter()
            .map(|k| (k, Touched::Whole))
            .collect();
        r.held = snap
            .held
            .into_iter()
            .map(|(k, s, p, c)| (k, (s, p, c)))
            .collect();
        r.refresh_held_floor();
        if !r.held.is_empty() {
            r.timers.set(Timer::Release, now.mono_ms);
        }
        for p in r.peers.values_mut() {
            p.last_heard = now.mono_ms;
        }
        if !r.dirty.is_empty() {
            r.timers.set(Timer::Flush, now.mono_ms);
        }
        r.timers.set(Timer::CatchUp, now.mono_ms);
        r.timers.set(Timer::Gc, now.mono_ms + r.cfg.gc_interval_ms);
        r
    }

    /// What this replica would have persisted by now, keys in store order.
    pub fn snapshot(&self) -> Snapshot {
        let mut s = self.snapshot_unsorted(Vec::new());
        s.sort_keys();
        s
    }

    /// [`Replica::snapshot`] with its keys in no particular order (not even the same one twice
    /// for the same state), for a driver that takes it while everything else waits and calls
    /// [`Snapshot::sort_keys`] afterwards. It copies no key state, only a reference to each
    /// key's: at a million keys about 40 ms, where copying every state in order took half a
    /// second. `keys` receives the keys (it is cleared first); give it a
    /// [`Snapshot::key_room`] made before taking any lock, or an empty vector.
    pub fn snapshot_unsorted(&self, mut keys: Vec<(Bytes, SharedState)>) -> Snapshot {
        keys.clear();
        self.store.share_all(&mut keys);
        Snapshot {
            keys,
            wm: self.wm.iter().map(|(r, h)| (*r, *h)).collect(),
            clock: self.clock.last(),
            last_push_to: self.last_push_to,
            dirty: self.dirty.keys().cloned().collect(),
            held: self
                .held
                .iter()
                .map(|(k, (s, p, c))| (k.clone(), s.clone(), *p, *c))
                .collect(),
            restoring: self.restoring.as_ref().map(|r| r.floor),
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

    /// The greatest stamp this replica has issued since it started: a restart must resume
    /// above it (the journal and snapshots carry every issued stamp).
    pub fn last_issued(&self) -> Hlc {
        self.clock.issued()
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
        let s = stamp.hlc;
        self.peers
            .values()
            .filter(|p| p.acked >= s || p.acked_run.is_some_and(|(a, b)| a < s && s <= b))
            .count()
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
        let raw = self.raw_watermark(origin);
        match self.held_floor.get(&origin) {
            Some(f) => raw.min(*f),
            None => raw,
        }
    }

    /// [`Replica::watermark`] before the skew buffer's floor caps it: everything of `origin`
    /// up to it has reached this region, applied or waiting in the buffer.
    pub(super) fn raw_watermark(&self, origin: RegionId) -> Hlc {
        if origin == self.cfg.region {
            // While restoring, only what the persisted state proved (see `restore`); and a
            // restoring region may hold back its own lost writes that a skewed peer sent it.
            match &self.restoring {
                Some(r) => r.floor,
                None => self.clock.last(),
            }
        } else {
            self.wm.get(&origin).copied().unwrap_or(Hlc::ZERO)
        }
    }

    pub(super) fn watermarks(&self) -> Watermarks {
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

    /// What is held back of a key for clock skew, if anything (tests and oracles).
    pub fn held_delta(&self, key: &Bytes) -> Option<&KeyState> {
        self.held.get(key).map(|(st, _, _)| st)
    }

    /// Every key a client can see at `now`, with its absolute expiry.
    pub fn live(&self, now: Now) -> BTreeMap<Bytes, (Value, Option<u64>)> {
        let t = self.clock.now_ms(now.wall_ms);
        self.store
            .iter()
            .filter_map(|(k, s)| s.view(t).map(|v| (k.clone(), v)))
            .collect()
    }

    /// `INFO keyspace` of this shard: every database holding a key a client may see, with
    /// its keys and those of them with a TTL (`(db, keys, expires)`, ascending; a database
    /// whose keys have all expired since shows 0 keys).
    pub fn keyspace(&self, now: Now) -> Vec<(u8, usize, usize)> {
        let t = self.clock.now_ms(now.wall_ms);
        self.store
            .databases_in_use()
            .map(|d| {
                (
                    d,
                    self.store.count_visible(d, t),
                    self.store.count_expiring(d, t),
                )
            })
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
                Value::ZSet(m) => {
                    eat(b"zset");
                    for (a, s) in m {
                        eat(&a);
                        eat(&s.to_le_bytes());
                    }
                }
                Value::Set(m) => {
                    eat(b"set");
                    for a in m {
                        eat(&a);
                    }
                }
            }
        }
        h
    }

    // ----- clients -------------------------------------------------------------------------

    /// Starts loading the first key of `cmd` into the cache: see [`Store::prefetch`].
    pub fn prefetch(&self, cmd: &cmd::Command) {
        if let Some(k) = cmd.first_key() {
            self.store.prefetch(k);
        }
    }

    /// Looks a command line up, checks it and runs it ([`Replica::run`]): what the simulator and
    /// tests call; the node's Redis server makes the [`cmd::Command`] itself, once.
    pub fn execute(&mut self, args: &[Bytes], now: Now) -> Reply {
        match cmd::Command::parse(args.to_vec()) {
            Ok(c) => self.run(&c, now),
            Err(e) => e,
        }
    }

    /// Runs one data command and returns its reply. Writes are applied locally at once and
    /// shipped to peers at the next flush.
    pub fn run(&mut self, command: &cmd::Command, now: Now) -> Reply {
        self.run_with(command.spec().is_write(), now, |ctx| {
            ctx.db = command.db();
            cmd::execute(ctx, command)
        })
    }

    /// Runs `f` as one command would run: stamped if `write`, its writes applied, journaled
    /// and made ready for the push exactly as [`Replica::run`]'s. What a command spanning
    /// shards does on each of them ([`crate::shard`]).
    pub(crate) fn run_with<R>(
        &mut self,
        write: bool,
        now: Now,
        f: impl FnOnce(&mut cmd::Ctx<'_>) -> R,
    ) -> R {
        let (stamp, now_ms) = if write {
            let h = self.issue(now);
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
            max_hash_fields: self.cfg.max_hash_fields,
            max_string_bytes: self.cfg.max_string_bytes,
            db: 0,
            databases: self.cfg.databases,
            shard: (self.cfg.shard, self.cfg.shards),
        };
        let reply = f(&mut ctx);
        let (writes, conflicts) = (ctx.writes, ctx.conflicts);
        if writes.is_empty() {
            if let Some(s) = stamp {
                // The clock ticked for a write that changed nothing: persist the tick anyway,
                // so a restart never goes back below it.
                self.journal(|| Record::Clock { hlc: s.hlc });
            }
        }
        self.stats.conflicts += conflicts;
        if !writes.is_empty() {
            self.stats.local_writes += 1;
            self.last_write = stamp;
            self.step.wrote = stamp.or(self.step.wrote);
            if self.dirty.is_empty() && !self.timers.armed(Timer::Flush) {
                self.timers.set(Timer::Flush, self.flush_due(now));
            }
            for (key, delta) in writes {
                self.touch(&key, &delta);
                if self.cfg.journal {
                    self.records.push(Record::Apply {
                        key: key.clone(),
                        delta: delta.clone(),
                    });
                }
                if self.notify {
                    // A fresh incarnation is a key that was absent; anything else wrote into
                    // one that clients saw (or a set's emptied one).
                    let fresh = !delta.is_deleted()
                        && delta.cl.value == KeyState::fresh_len(delta.cl.stamp);
                    self.notify_change(&key, &delta, !fresh, now_ms);
                }
                if self.record_writes {
                    self.events.push_back(Event::Wrote {
                        key,
                        delta: Box::new(delta),
                    });
                }
            }
        }
        reply
    }

    /// Raises keyspace events ([`Event::Keyspace`]) from now on, or stops: the node turns
    /// this on while `notify-keyspace-events` selects any class. Off, nothing is computed.
    pub fn set_notify(&mut self, on: bool) {
        self.notify = on;
        if !on {
            self.expired_cursor = None;
        }
    }

    /// The events of a change of `key` by `delta`, already applied.
    pub(super) fn notify_change(&mut self, key: &Bytes, delta: &KeyState, was: bool, now_ms: u64) {
        if crate::db::split(key).is_none() {
            return; // a system key (a flush marker)
        }
        let st = self.store.get(key);
        let kind = st.and_then(|s| s.body.kind());
        let is = st.is_some_and(|s| s.is_visible(now_ms));
        for (event, class) in crate::notify::events(delta, kind, was, is) {
            self.events.push_back(Event::Keyspace {
                key: key.clone(),
                event,
                class,
            });
        }
    }

    /// With notifications on: raises `expired` for every key whose expiry has passed since the
    /// last call, at this region's clock (`now > expiry`, as for reads). The first call after
    /// [`Replica::set_notify`] only sets the starting point. Keys expiring while notifications
    /// were off raise nothing.
    pub fn poll_expired(&mut self, now: Now) {
        if !self.notify {
            return;
        }
        let now_ms = self.clock.now_ms(now.wall_ms);
        let from = self.expired_cursor.unwrap_or(now_ms);
        // Expired once `now > expiry`: expiries up to `now - 1` have passed.
        let upto = now_ms;
        if upto <= from {
            self.expired_cursor = Some(from);
            return;
        }
        let keys: Vec<Bytes> = self
            .store
            .expiring_between(from, upto)
            .map(|(_, k)| k.clone())
            .filter(|k| self.store.get(k).is_some_and(|s| !s.is_deleted()))
            .filter(|k| crate::db::split(k).is_some())
            .collect();
        for key in keys {
            self.events.push_back(Event::Keyspace {
                key,
                event: "expired",
                class: crate::notify::class::EXPIRED,
            });
        }
        self.expired_cursor = Some(upto);
    }

    // ----- links ---------------------------------------------------------------------------

    /// The driver has a live connection to `peer`: ask it for what we missed.
    pub fn handle_connected(&mut self, peer: RegionId, now: Now) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        p.connected = true;
        p.push_gap = true;
        p.last_heard = p.last_heard.max(now.mono_ms);
        self.request_catchup(peer, now, true);
    }

    /// The connection to `peer` is gone: stop pushing to it. Catch-up repairs the gap later.
    pub fn handle_disconnected(&mut self, peer: RegionId, _now: Now) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.connected = false;
            p.catchup = None;
        }
        // Whatever it asked for, it asks again on the next connection.
        self.answers.forget(peer);
    }

    fn send(&mut self, to: RegionId, channel: Channel, msg: &Message) {
        let bytes = wire::encode(self.cfg.shard, msg);
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

    /// When a write made now should be pushed: at once if the last push is at least a flush
    /// interval old, else one interval after it. Writes arriving faster than the interval
    /// still coalesce into one push per interval (the bytes follow keys x flushes, not
    /// writes), but an isolated write no longer waits a whole interval: that wait was most of
    /// the replication latency on loopback (p50 2.8 ms with a 2 ms interval).
    pub(super) fn flush_due(&self, now: Now) -> u64 {
        match self.last_flush {
            Some(t) => now
                .mono_ms
                .max(t.saturating_add(self.cfg.flush_interval_ms)),
            None => now.mono_ms,
        }
    }

    fn connected_peers(&self) -> Vec<RegionId> {
        self.peers
            .iter()
            .filter(|(_, p)| p.connected)
            .map(|(r, _)| *r)
            .collect()
    }

    /// Adds a local write's delta to what the next push carries of its key.
    fn touch(&mut self, key: &Bytes, delta: &KeyState) {
        match self.dirty.get_mut(key.as_ref()) {
            Some(Touched::Whole) => {}
            Some(Touched::Delta(d)) => {
                d.merge(delta);
            }
            None => {
                self.dirty
                    .insert(key.clone(), Touched::Delta(delta.clone()));
            }
        }
    }

    /// Asks `peer` for what we miss. The periodic call (`force` false) does not ask again
    /// while an answer is still coming in: a large answer on a slow link would otherwise be
    /// rebuilt and resent every interval before the previous one arrived. A request whose
    /// answer shows no progress for [`CATCHUP_PATIENCE`] intervals is asked again.
    fn request_catchup(&mut self, peer: RegionId, now: Now, force: bool) {
        if self.cfg.faults.no_catchup {
            return;
        }
        let patience = self
            .cfg
            .catchup_interval_ms
            .saturating_mul(CATCHUP_PATIENCE);
        if let Some(p) = self.peers.get(&peer) {
            if let Some((_, _, _, asked)) = p.catchup {
                if !force && now.mono_ms < asked.saturating_add(patience) {
                    return;
                }
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        if let Some(p) = self.peers.get_mut(&peer) {
            p.catchup = Some((id, 0, true, now.mono_ms));
        }
        // A third region we are connected to sends us its writes itself, and we ask it for
        // what we missed of them: asking `peer` too only brings back, every interval, the
        // writes of that region still in flight on the direct link (measured: 12% more
        // bytes and a sixth of the CPU under 100k writes/s, all of it duplicates). The
        // greatest stamp says "nothing of that origin"; once the direct link is down, the
        // next request carries the real watermark and `peer` relays.
        // `peer`'s own writes likewise: its pushes arrive in order on the link, so unless one
        // went missing (`push_gap`) they are all in flight, and asking for them under load
        // brought back tens of thousands of in-flight writes a second as duplicates (a fifth
        // of all CPU under `-P 16`, growing as the machine fell behind). The request made on
        // connecting (`force`) asks for everything.
        let skipped: Vec<RegionId> = self
            .cfg
            .regions
            .iter()
            .copied()
            .filter(|r| {
                *r != self.cfg.region
                    && !self.stalled(*r, now.mono_ms)
                    && self
                        .peers
                        .get(r)
                        .is_some_and(|p| p.connected && (*r != peer || (!force && !p.push_gap)))
            })
            .collect();
        let wm = self
            .watermarks()
            .into_iter()
            .map(|(r, h)| {
                (
                    r,
                    if skipped.contains(&r) {
                        Hlc(u64::MAX)
                    } else {
                        h
                    },
                )
            })
            .collect();
        if let Some(p) = self.peers.get_mut(&peer) {
            p.catchup_skipped = skipped;
        }
        let restoring = self.restart_id();
        self.send(
            peer,
            Channel::CatchUp,
            &Message::CatchUpRequest { id, wm, restoring },
        );
    }

    // ----- outputs ---------------------------------------------------------------------------

    /// Sends a message `PUBLISH`ed here to every other region, for its subscribers: one
    /// frame per peer on the delta stream, never stored or repeated (a link that is down or
    /// full drops it, as for any push; catch-up does not bring it back).
    pub fn publish(&mut self, channel: &Bytes, message: &Bytes) {
        let msg = Message::Publish {
            channel: channel.clone(),
            message: message.clone(),
        };
        let peers: Vec<RegionId> = self.peers.keys().copied().collect();
        for p in peers {
            self.send(p, Channel::Delta, &msg);
        }
    }

    /// The next frame to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}
