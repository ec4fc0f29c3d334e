//! The node: one region's [`Replica`] shared between Redis clients and the QUIC mesh.
//!
//! [`Node`] is the only thing the Redis server sees. It locks the replica for each command,
//! gives it the time ([`Now`]), and wakes the driver so fresh writes are pushed within the
//! flush interval. The driver ([`drive`]) is the one task that drains the replica's outputs:
//! frames go to the transport, events to the log and counters.
//!
//! Frames from peers come in through [`transport::Handler`] (implemented in `driver.rs`, with
//! the driver and the snapshot task): each complete frame is handed to the replica under the
//! same lock, so a command and a merge never interleave.
//!
//! Every hold of the replica lock is one step of the core's step contract
//! (`sessionmesh_core::Ready`, whose module states the durability rule): the step's journal
//! records go to the log ([`Persist::enqueue`]) before the lock is released, in lock order, and
//! the step's [`Ticket`] travels with its outputs: the Redis server waits for it before writing
//! replies, and the driver before sending frames to peers (fsynced under
//! `durability = "always"`, written to the OS under `"everysec"`). What the step wrote (for
//! `WAIT`) and whether it moved the deadline earlier (to wake the driver) come from the same
//! [`Ready`], not from readings taken before and after.
//! [`checkpoints`] cuts snapshots.
//!
//! This module decides nothing about data or replication (the core does) and performs no
//! network IO itself (the transport and the Redis server do).

use crate::config::{Config, RegionSpec};
use crate::metrics::{Metrics, Scrape};
use crate::persist::{Persist, Recovered, Ticket};
use crate::transport::{self, Rejected, Stream, Transport, TransportStats};
use bytes::Bytes;
use sessionmesh_core::cmd::Command;
use sessionmesh_core::replica::{PeerStatus, RestoreStatus, Snapshot};
use sessionmesh_core::{
    Channel, Config as CoreConfig, Event, Hlc, Now, Ready, RegionId, Replica, Reply, Stamp, Stats,
};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

mod driver;

pub use crate::view::{LinkState, NodeCounters, PeerView};
#[cfg(test)]
mod tests;

pub use driver::{checkpoints, drive};

/// How long after start a node with unreachable peers still reports "not ready": long enough
/// for the first connections and catch-up on loopback, short enough that a region cut off at
/// boot starts serving its load balancer anyway (it serves local reads and writes regardless).
const READY_GRACE: Duration = Duration::from_secs(5);

/// One region's replica plus what the driver and the HTTP and Redis layers need around it.
pub struct Node {
    region: RegionId,
    name: String,
    /// Every other region, by id, with its name (for INFO and metrics labels).
    peers: BTreeMap<RegionId, String>,
    replica: Mutex<Replica>,
    /// Wakes the driver after anything that may have produced output or moved a deadline.
    wake: Notify,
    /// Signalled (to all waiters) whenever a peer frame was applied: WAIT rechecks then.
    progress: Notify,
    /// The replica may stamp writes (after a restart it may not for a moment: see
    /// [`Replica::stamps_ready`]); read without the lock by every connection before it
    /// executes anything.
    writable: AtomicBool,
    /// Signalled (to all waiters) when `writable` turns true.
    writable_now: Notify,
    /// Data commands are served: the restoration after the start has finished, or
    /// `restore_hold_ms` has passed. Read without the lock by every command.
    serving: AtomicBool,
    /// How long after start data commands are refused while the region restores.
    restore_hold_ms: u64,
    start: Instant,
    /// Test-only skew added to the wall clock (see `clock_offset_ms` in `regions.toml`).
    clock_offset_ms: i64,
    /// Largest gossip frame accepted, as configured for the core.
    max_frame_bytes: usize,
    links: Mutex<BTreeMap<RegionId, LinkState>>,
    counters: Counters,
    /// Weak: the transport holds the node as its handler, and a strong link back would keep
    /// both (and the UDP socket) alive after shutdown.
    transport: OnceLock<Weak<Transport>>,
    /// The durable log, if this node has a data folder.
    persist: Option<Persist>,
    /// What the Redis server records as commands run (latency, errors); one per node so that
    /// regions sharing a process keep their metrics apart.
    metrics: Metrics,
    /// When a clock-skew warning was last logged per peer (monotonic ms): a skewed peer makes
    /// every one of its pushes a skew event, and the log says so once per interval.
    skew_warned: Mutex<BTreeMap<RegionId, u64>>,
}

/// The replica, locked. Every hold is one step of the core's step contract
/// (`sessionmesh_core::replica::step`): [`Locked::step`] ends it explicitly and returns what it
/// did; dropping the guard ends it otherwise. Either way the step's journal records are queued
/// to the log before the lock is released, so the log holds them in lock order, and a
/// deadline moved earlier wakes the driver.
struct Locked<'a> {
    replica: MutexGuard<'a, Replica>,
    persist: Option<&'a Persist>,
    wake: &'a Notify,
    /// [`Locked::step`] ended the step and nothing ran since.
    ended: bool,
}

impl Locked<'_> {
    /// Ends the step: queues its records to the log and returns what it did with the ticket
    /// its outputs wait for — its own records, or earlier ones it may have seen that are not
    /// durable yet; `None` without persistence or when nothing is pending. The caller wakes
    /// the driver on [`Ready::sooner`].
    fn step(&mut self) -> (Ready, Option<Ticket>) {
        let mut ready = self.replica.ready();
        self.ended = true;
        let ticket = self.persist.and_then(|p| {
            if ready.records.is_empty() {
                p.pending()
            } else {
                p.enqueue(std::mem::take(&mut ready.records))
            }
        });
        (ready, ticket)
    }
}

impl Deref for Locked<'_> {
    type Target = Replica;
    fn deref(&self) -> &Replica {
        &self.replica
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Replica {
        self.ended = false;
        &mut self.replica
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        let ready = self.replica.ready();
        if let Some(p) = self.persist.filter(|_| !ready.records.is_empty()) {
            p.enqueue(ready.records);
        }
        if ready.sooner {
            self.wake.notify_one();
        }
    }
}

/// How often a persistently skewed peer is warned about (the counter has every event).
const SKEW_WARN_INTERVAL_MS: u64 = 10_000;

/// Node-level counters that the core does not keep.
#[derive(Debug, Default)]
struct Counters {
    /// Transmits dropped because the peer was unreachable or its stream queue was full;
    /// catch-up repairs them.
    dropped_transmits: AtomicU64,
    /// Times reading from peers paused until the log caught up.
    backpressure: AtomicU64,
    clock_skew_events: AtomicU64,
    evictions: AtomicU64,
    resyncs: AtomicU64,
}

impl Node {
    /// A node for `region` of `config`, with an empty replica.
    ///
    /// Panics if `region` is not in `config` (a validated [`Config`] and a region taken from it
    /// cannot disagree).
    ///
    /// The region restores from its peers as after any restart (see
    /// [`Replica::recover`]): a node without a data folder may have run before and lost
    /// everything, and its peers hold whatever it wrote then.
    pub fn new(config: &Config, region: &RegionSpec) -> Node {
        let core = core_config(config, region);
        let mut node = Node::build(config, region, Replica::new(core.clone()), None);
        let now = node.now();
        *node.replica.get_mut().unwrap_or_else(|p| p.into_inner()) =
            Replica::recover(core, Snapshot::default(), Vec::new(), now);
        node.note_writable();
        node
    }

    /// A node for `region` of `config` that starts from what its data folder held and logs
    /// every change to it. Nothing leaves the node before the log holds it.
    pub fn with_persistence(
        config: &Config,
        region: &RegionSpec,
        persist: Persist,
        recovered: Recovered,
    ) -> Node {
        let mut core = core_config(config, region);
        core.journal = true;
        // The replica is rebuilt before the node's clock starts: monotonic time 0 is now.
        let mut node = Node::build(config, region, Replica::new(core.clone()), Some(persist));
        let now = node.now();
        *node.replica.get_mut().unwrap_or_else(|p| p.into_inner()) =
            Replica::recover(core, recovered.snapshot, recovered.records, now);
        node.note_writable();
        node
    }

    fn build(
        config: &Config,
        region: &RegionSpec,
        replica: Replica,
        persist: Option<Persist>,
    ) -> Node {
        let rep = config.replication();
        let peers = config
            .regions()
            .iter()
            .filter(|r| r.id != region.id)
            .map(|r| (RegionId(r.id), r.name.clone()))
            .collect::<BTreeMap<_, _>>();
        let links = peers.keys().map(|id| (*id, LinkState::default())).collect();
        Node {
            region: RegionId(region.id),
            name: region.name.clone(),
            peers,
            replica: Mutex::new(replica),
            wake: Notify::new(),
            progress: Notify::new(),
            writable: AtomicBool::new(true),
            writable_now: Notify::new(),
            serving: AtomicBool::new(false),
            restore_hold_ms: rep.restore_hold_ms,
            start: Instant::now(),
            clock_offset_ms: region.clock_offset_ms,
            max_frame_bytes: rep.max_frame_bytes,
            links: Mutex::new(links),
            counters: Counters::default(),
            transport: OnceLock::new(),
            persist,
            metrics: Metrics::new(),
            skew_warned: Mutex::new(BTreeMap::new()),
        }
    }

    /// Executes one data command (`args[0]` is the command name) and returns its reply.
    ///
    /// The reply is final: nothing waits for another region. A write that brings the next
    /// flush forward wakes the driver so it reaches peers within the flush interval; writes
    /// while a flush is already scheduled do not (a cross-thread wake per write costs more than
    /// the write).
    pub fn execute(&self, args: &[Bytes]) -> Reply {
        match Command::parse(args.to_vec()) {
            Ok(c) => self.execute_stamped(&c).0,
            Err(e) => e,
        }
    }

    /// Like [`Node::execute`], and also returns the stamp of the write this command made, if
    /// it made one, and the [`Ticket`] to wait for before the reply may leave the node (see
    /// [`Node::durable`]; `None` without persistence or when nothing is pending). Taken under the same lock as the
    /// command, so a connection can remember exactly its own last write for `WAIT`, whatever
    /// other connections do meanwhile.
    pub fn execute_stamped(&self, cmd: &Command) -> (Reply, Option<Stamp>, Option<Ticket>) {
        let now = self.now();
        let (reply, ready, ticket) = {
            let mut r = self.lock();
            let reply = r.run(cmd, now);
            let (ready, ticket) = r.step();
            (reply, ready, ticket)
        };
        if ready.sooner {
            self.wake.notify_one();
        }
        (reply, ready.wrote, ticket)
    }

    /// Executes several data commands as one atomic step (`MULTI`/`EXEC`, or a pipelined run
    /// of data commands): no other command and no peer frame runs in between. Returns one
    /// reply per command and the stamp of the last write among them, if any.
    pub fn execute_batch_stamped(
        &self,
        cmds: &[Command],
    ) -> (Vec<Reply>, Option<Stamp>, Option<Ticket>) {
        let now = self.now();
        let (replies, ready, ticket) = {
            let mut r = self.lock();
            if cmds.len() > 1 {
                // The whole pipeline's lookups first, so that their cache misses overlap.
                for c in cmds {
                    r.prefetch(c);
                }
            }
            let replies = cmds.iter().map(|c| r.run(c, now)).collect();
            // One step, so one frame in the log for the whole batch: a transaction is never
            // half-recovered.
            let (ready, ticket) = r.step();
            (replies, ready, ticket)
        };
        if ready.sooner {
            self.wake.notify_one();
        }
        (replies, ready.wrote, ticket)
    }

    /// Waits until `ticket` is durable. `false`: persistence failed, the node is stopping, and
    /// whatever waited for the ticket must not be acknowledged.
    pub async fn durable(&self, ticket: Ticket) -> bool {
        match &self.persist {
            Some(p) => p.wait(ticket).await,
            None => true,
        }
    }

    /// Waits until commands may run: at once, except for a moment after a restart (until every
    /// peer has answered or `max_clock_drift_ms` has passed; see [`Replica::stamps_ready`]).
    /// Data commands wait here before executing, so that a write never has to move the clock
    /// ahead of the wall clock to be safe.
    pub async fn writable(&self) {
        // The fast path, taken by every read of every connection: one atomic load, no waiter
        // registered (registering one takes the `Notify`'s lock; with 50 connections that cost
        // a fifth of an unpipelined SET).
        if self.writable.load(Ordering::Acquire) {
            return;
        }
        loop {
            let notified = self.writable_now.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.writable.load(Ordering::Acquire) {
                return;
            }
            // The driver lifts the barrier at its deadline; this is only a backstop.
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(Duration::from_millis(20)) => {
                    let now = self.now();
                    let mut r = self.lock();
                    r.stamps_ready_at(now);
                    self.note_writable_locked(&r);
                }
            }
        }
    }

    /// Whether [`Node::writable`] would return at once.
    pub fn is_writable(&self) -> bool {
        self.writable.load(Ordering::Acquire)
    }

    /// Whether data commands are served. Not while the region restores after a restart:
    /// serving then would show sessions not restored yet as absent, and a write to one would
    /// start it afresh, replacing it everywhere (a user logged out by a restart). Clients are
    /// answered `LOADING` instead, as Redis answers while it loads, for at most
    /// `restore_hold_ms`; a region whose peers stay unreachable longer serves what it has.
    pub fn is_serving(&self) -> bool {
        if self.serving.load(Ordering::Acquire) {
            return true;
        }
        if self.mono_ms() >= self.restore_hold_ms {
            self.serving.store(true, Ordering::Release);
            return true;
        }
        false
    }

    /// Publishes whether commands may run and data commands are served (both only ever turn
    /// true).
    fn note_writable(&self) {
        let r = self.lock();
        self.note_writable_locked(&r);
    }

    fn note_writable_locked(&self, r: &Replica) {
        if !r.is_restoring() && !self.serving.load(Ordering::Acquire) {
            self.serving.store(true, Ordering::Release);
        }
        let ready = r.stamps_ready();
        if self.writable.load(Ordering::Acquire) != ready {
            self.writable.store(ready, Ordering::Release);
            if ready {
                self.writable_now.notify_waiters();
            }
        }
    }

    /// [`Node::durable`] for the replication driver: the log's thread writes and fsyncs, so
    /// no runtime thread blocks on the disk for a peer's sake.
    async fn durable_background(&self, ticket: Ticket) -> bool {
        match &self.persist {
            Some(p) => p.wait_background(ticket).await,
            None => true,
        }
    }

    /// The durable log, if this node has one.
    pub fn persist(&self) -> Option<&Persist> {
        self.persist.as_ref()
    }

    /// Cuts a snapshot: under the lock, queues pending records, starts a new log segment and
    /// takes the state unsorted (a reference per key, no copy: the pause is a walk of the key
    /// table); then, outside the lock, sorts it, writes it and deletes the log it replaces.
    /// Does nothing without persistence. Runs on a blocking thread: the page faults of
    /// [`Snapshot::key_room`] and the write take a while, and the pause itself blocks no more
    /// there than on a runtime thread.
    pub async fn checkpoint(self: &Arc<Self>) -> Result<(), crate::persist::PersistError> {
        if self.persist.is_none() {
            return Ok(());
        }
        let node = self.clone();
        tokio::task::spawn_blocking(move || node.checkpoint_blocking())
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    /// [`Node::checkpoint`], on a thread that may block.
    #[allow(
        clippy::expect_used,
        reason = "only called when persistence is configured"
    )]
    fn checkpoint_blocking(&self) -> Result<(), crate::persist::PersistError> {
        let p = self.persist.as_ref().expect("checked by the caller");
        // Room for every key, with a margin for keys created before the lock is taken again.
        let n = self.lock().stats().keys as usize;
        let room = Snapshot::key_room(n + n / 16);
        let started = Instant::now();
        let (id, snap) = {
            let mut r = self.lock();
            // The snapshot must follow every record already in the log.
            let _ = r.step();
            let id = p.begin_snapshot();
            (id, r.snapshot_unsorted(room))
        };
        // How long commands and peers waited for the copy.
        let pause = started.elapsed();
        p.finish_snapshot(id, snap, pause)
    }

    /// The stamp of the most recent write executed in this region, by any connection.
    pub fn last_write(&self) -> Option<Stamp> {
        self.lock().last_write()
    }

    /// How many other regions are known to hold every write of this region up to `stamp`.
    pub fn regions_holding(&self, stamp: Stamp) -> usize {
        self.lock().regions_holding(stamp)
    }

    /// Waits until at least `n` other regions hold `stamp` or `timeout_ms` passes, and returns
    /// how many hold it then (Redis `WAIT numregions timeout`). `timeout_ms == 0` waits without
    /// limit, as Redis does. Never changes data; a cancelled wait is harmless.
    pub async fn wait_regions(&self, stamp: Stamp, n: usize, timeout_ms: u64) -> usize {
        let deadline = (timeout_ms > 0)
            .then(|| tokio::time::Instant::now() + Duration::from_millis(timeout_ms));
        // Push the write now rather than at the next flush tick.
        self.wake.notify_one();
        loop {
            let notified = self.progress.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let have = self.regions_holding(stamp);
            if have >= n {
                return have;
            }
            match deadline {
                Some(d) => {
                    tokio::select! {
                        _ = &mut notified => {}
                        _ = tokio::time::sleep_until(d) => return self.regions_holding(stamp),
                    }
                }
                None => notified.await,
            }
        }
    }

    /// This region's name, as in `regions.toml`.
    pub fn region_name(&self) -> &str {
        &self.name
    }

    /// This region's id.
    pub fn region_id(&self) -> RegionId {
        self.region
    }

    /// The names of every other region, in id order.
    pub fn peer_regions(&self) -> Vec<String> {
        self.peers.values().cloned().collect()
    }

    /// The `# Replication` section of `INFO`: this region, then one line per peer region with
    /// its link state and how long ago it was last heard from.
    pub fn info_replication(&self) -> String {
        let peers = self.peer_views();
        let mut s = String::from("# Replication\r\nrole:active-active\r\n");
        let _ = write!(s, "region:{}\r\nregion_id:{}\r\n", self.name, self.region.0);
        let connected = peers.iter().filter(|p| p.link.connected).count();
        let _ = write!(s, "connected_regions:{connected}\r\n");
        let restoring = u8::from(self.restoring().is_some());
        let _ = write!(s, "restoring:{restoring}\r\n");
        for (i, p) in peers.iter().enumerate() {
            let state = match (p.link.connected, p.link.trusted) {
                (true, true) => "online",
                (true, false) => "handshake",
                (false, _) => "offline",
            };
            let heard = p
                .since_last_frame_ms
                .map_or_else(|| "-1".to_string(), |ms| ms.to_string());
            let lag = p.lag_ms.map_or(-1, |l| l as i64);
            let offset = p.replication.as_ref().map_or(0, |r| r.clock_offset_ms);
            let _ = write!(
                s,
                "region{i}:name={},id={},state={state},lag_ms={lag},last_heard_ms={heard},clock_offset_ms={offset}\r\n",
                p.name, p.id.0
            );
        }
        s
    }

    /// Whether this region is ready for traffic: it is not restoring (every peer answered it
    /// since it started, or was given up on as silent), every connected peer has sent a valid
    /// frame, and either every peer is connected or the start-up grace period is over.
    pub fn ready(&self) -> bool {
        if self.lock().restoring().is_some() {
            // It may lack writes (its own included) that its peers hold.
            return false;
        }
        let links = self.links();
        let all_trusted = links.values().all(|l| !l.connected || l.trusted);
        let all_up = links.values().all(|l| l.connected && l.trusted);
        all_trusted && (all_up || self.start.elapsed() >= READY_GRACE)
    }

    /// The core's counters.
    pub fn stats(&self) -> Stats {
        self.lock().stats()
    }

    /// The restoration in progress after a restart, if any (see [`Replica::restoring`]).
    pub fn restoring(&self) -> Option<RestoreStatus> {
        self.lock().restoring()
    }

    /// A snapshot of every peer, in id order.
    pub fn peer_views(&self) -> Vec<PeerView> {
        let now = self.mono_ms();
        let status: BTreeMap<RegionId, PeerStatus> = self
            .lock()
            .peer_status()
            .into_iter()
            .map(|p| (p.region, p))
            .collect();
        let links = self.links();
        self.peers
            .iter()
            .map(|(id, name)| {
                let link = links.get(id).cloned().unwrap_or_default();
                PeerView {
                    id: *id,
                    name: name.clone(),
                    since_last_frame_ms: link.last_frame_mono_ms.map(|t| now.saturating_sub(t)),
                    link,
                    lag_ms: status
                        .get(id)
                        .filter(|r| r.acked != Hlc::ZERO)
                        .map(|r| r.lag_ms),
                    replication: status.get(id).cloned(),
                }
            })
            .collect()
    }

    /// The node's own counters (those the core does not keep).
    pub fn counters(&self) -> NodeCounters {
        let c = &self.counters;
        NodeCounters {
            dropped_transmits: c.dropped_transmits.load(Ordering::Relaxed),
            backpressure: c.backpressure.load(Ordering::Relaxed),
            clock_skew_events: c.clock_skew_events.load(Ordering::Relaxed),
            evictions: c.evictions.load(Ordering::Relaxed),
            resyncs: c.resyncs.load(Ordering::Relaxed),
        }
    }

    /// [`Node::counters`] and [`Node::transport_counters`] as one list of `(key, value)` pairs,
    /// for diagnostics printed by the benchmarks. The keys are lookup keys, not metric names
    /// (those are [`crate::metrics`]'s).
    pub fn node_counters(&self) -> Vec<(&'static str, u64)> {
        let c = self.counters();
        let mut v = vec![
            ("dropped_transmits", c.dropped_transmits),
            ("log_backpressure", c.backpressure),
            ("clock_skew_events", c.clock_skew_events),
            ("evictions", c.evictions),
            ("resyncs", c.resyncs),
        ];
        v.extend(self.transport_counters());
        v
    }

    /// The transport's counters, keyed as the transport names them; empty before the transport
    /// is attached or after it stopped.
    pub fn transport_counters(&self) -> Vec<(&'static str, u64)> {
        self.transport_stats().pairs()
    }

    /// The live metrics the Redis server records into.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The transport's counters; zeros before the transport is attached or after it stopped.
    pub fn transport_stats(&self) -> TransportStats {
        self.transport
            .get()
            .and_then(Weak::upgrade)
            .map(|t| t.stats())
            .unwrap_or_default()
    }

    /// Everything `/metrics` renders, read now.
    pub fn scrape(&self) -> Scrape<'_> {
        Scrape {
            region: self.region_name(),
            live: &self.metrics,
            stats: self.stats(),
            peers: self.peer_views(),
            ready: self.ready(),
            restoring: self.restoring().is_some(),
            counters: self.counters(),
            transport: self.transport_stats(),
        }
    }

    /// The current time as the core wants it: monotonic ms since start, and the wall clock
    /// (plus the test-only offset) in ms since the Unix epoch.
    pub fn now(&self) -> Now {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Now {
            mono_ms: self.mono_ms(),
            wall_ms: wall.saturating_add_signed(self.clock_offset_ms),
        }
    }

    /// Milliseconds from the node's monotonic time `t` (as the core sees it) until now.
    pub fn mono_ms_since(&self, t: u64) -> u64 {
        self.mono_ms().saturating_sub(t)
    }

    fn mono_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn lock(&self) -> Locked<'_> {
        // A panic while holding the lock is a bug in the core; keep serving what we have
        // rather than turning every later command into a panic.
        Locked {
            replica: self.replica.lock().unwrap_or_else(|p| p.into_inner()),
            persist: self.persist.as_ref(),
            wake: &self.wake,
            ended: false,
        }
    }

    fn links(&self) -> MutexGuard<'_, BTreeMap<RegionId, LinkState>> {
        self.links.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the transport so `/metrics` can include its counters.
    pub(crate) fn attach_transport(&self, t: &Arc<Transport>) {
        let _ = self.transport.set(Arc::downgrade(t));
    }
}

/// The core's settings for `region` of `config` (journal off; persistence turns it on).
fn core_config(config: &Config, region: &RegionSpec) -> CoreConfig {
    let ids: Vec<RegionId> = config.regions().iter().map(|r| RegionId(r.id)).collect();
    let mut core = CoreConfig::new(RegionId(region.id), &ids);
    let rep = config.replication();
    core.flush_interval_ms = rep.flush_interval_ms;
    core.max_clock_drift_ms = rep.max_clock_drift_ms;
    core.tombstone_grace_ms = rep.tombstone_grace_ms;
    core.catchup_interval_ms = rep.catchup_interval_ms;
    core.gc_interval_ms = rep.gc_interval_ms;
    core.progress_interval_ms = rep.progress_interval_ms;
    core.reroute_after_ms = rep.reroute_after_ms;
    core.max_frame_bytes = rep.max_frame_bytes;
    core.fit_catchup_parts(config.transport().queue_bytes);
    // Secret to clients, so they cannot choose colliding keys (see `sessionmesh_core::seed`).
    core.hash_seed = rand::random();
    if let Some(n) = config.redis().max_hash_fields {
        core.max_hash_fields = n;
    }
    core
}
