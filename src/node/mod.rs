//! The node: one region's shards, shared between Redis clients and the QUIC mesh.
//!
//! The region's key space is split into `[cluster] shards` shards, each an independent
//! [`Replica`] behind its own lock, with its own log and driver ([`shards`];
//! `sessionmesh_core::shard` says what a shard is). [`Node`] is the only thing the Redis
//! server sees. A command locks the one shard its keys live on (nearly every command: one
//! lock, nothing shared with commands on other shards), or, for a command or transaction
//! that spans shards, every shard it touches in ascending order; it gives the core the time
//! ([`Now`]), and wakes the shard's driver so fresh writes are pushed within the flush
//! interval. Each shard's driver ([`drive`] runs one task per shard) drains its replica's
//! outputs: frames go to the transport, events to the log and counters.
//!
//! Frames from peers come in through [`transport::Handler`] (implemented in `driver.rs`, with
//! the drivers and the snapshot task): the frame header names the shard, and each complete
//! frame is handed to that shard's replica under its lock, so a command and a merge never
//! interleave.
//!
//! Every hold of a shard lock is one step of the core's step contract
//! (`sessionmesh_core::Ready`, whose module states the durability rule): the step's journal
//! records go to the shard's log ([`Persist::enqueue`]) before the lock is released, in lock
//! order, and the step's [`Ticket`] travels with its outputs: the Redis server waits for it
//! before writing replies ([`Marks`] holds one per shard), and the driver before sending
//! frames to peers (fsynced under `durability = "always"`, written to the OS under
//! `"everysec"`). What the step wrote (for `WAIT`) and whether it moved the deadline earlier
//! (to wake the driver) come from the same [`Ready`], not from readings taken before and
//! after. [`checkpoints`] cuts snapshots, shard by shard.
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
    Channel, Config as CoreConfig, Event, Hlc, KeyState, Now, Ready, RegionId, Replica, Reply,
    Stamp, Stats,
};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

mod driver;
mod shards;

pub use crate::view::{LinkState, NodeCounters, PeerView};
#[cfg(test)]
mod tests;

pub use driver::{checkpoints, drive};
use sessionmesh_core::shard::{self, ShardSet, Shards as _};
pub use shards::Marks;
use shards::{Held, Shard};

/// How long after start a node with unreachable peers still reports "not ready": long enough
/// for the first connections and catch-up on loopback, short enough that a region cut off at
/// boot starts serving its load balancer anyway (it serves local reads and writes regardless).
const READY_GRACE: Duration = Duration::from_secs(5);

// The configuration's bound on shards is the core's (a SCAN cursor keeps the shard in 8 bits).
const _: () = assert!(sessionmesh_config::MAX_SHARDS == shard::MAX_SHARDS);

/// One region's shards plus what the drivers and the HTTP and Redis layers need around them.
pub struct Node {
    region: RegionId,
    name: String,
    /// Every other region, by id, with its name (for INFO and metrics labels).
    peers: BTreeMap<RegionId, String>,
    /// The key space, in `[cluster] shards` independent replicas (see [`shards`]).
    shards: Vec<Shard>,
    /// Signalled (to all waiters) whenever a peer frame was applied: WAIT rechecks then.
    progress: Notify,
    /// Every shard may stamp writes (after a restart they may not for a moment: see
    /// [`Replica::stamps_ready`]); read without a lock by every connection before it
    /// executes anything.
    writable: AtomicBool,
    /// Signalled (to all waiters) when `writable` turns true.
    writable_now: Notify,
    /// Data commands are served: the restoration after the start has finished in every
    /// shard, or `restore_hold_ms` has passed. Read without a lock by every command.
    serving: AtomicBool,
    /// How long after start data commands are refused while the region restores.
    restore_hold_ms: u64,
    start: Instant,
    /// Unix seconds of the last snapshot that completed (or of the start): `LASTSAVE`.
    last_save: AtomicU64,
    /// A `BGSAVE` is running.
    saving: AtomicBool,
    /// Test-only skew added to the wall clock (see `clock_offset_ms` in `regions.toml`).
    clock_offset_ms: i64,
    /// Largest gossip frame accepted, as configured for the core.
    max_frame_bytes: usize,
    links: Mutex<BTreeMap<RegionId, LinkState>>,
    /// Catch-up bytes a shard's driver has taken from a peer's catch-up queue but not yet
    /// handed to the transport: the shards share that queue, and each counts the others'.
    reserved: Mutex<BTreeMap<RegionId, usize>>,
    counters: Counters,
    /// Weak: the transport holds the node as its handler, and a strong link back would keep
    /// both (and the UDP socket) alive after shutdown.
    transport: OnceLock<Weak<Transport>>,
    /// What the Redis server records as commands run (latency, errors); one per node so that
    /// regions sharing a process keep their metrics apart.
    metrics: Metrics,
    /// When a clock-skew warning was last logged per peer (monotonic ms): a skewed peer makes
    /// every one of its pushes a skew event, and the log says so once per interval.
    skew_warned: Mutex<BTreeMap<RegionId, u64>>,
    /// This region's subscribers (`SUBSCRIBE`, `PSUBSCRIBE`): local `PUBLISH`es and those
    /// other regions send are delivered to them ([`crate::pubsub`]).
    broker: crate::pubsub::Broker,
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
    /// A node for `region` of `config`, with empty replicas.
    ///
    /// Panics if `region` is not in `config` (a validated [`Config`] and a region taken from it
    /// cannot disagree).
    ///
    /// The region restores from its peers as after any restart (see
    /// [`Replica::recover`]): a node without a data folder may have run before and lost
    /// everything, and its peers hold whatever it wrote then.
    pub fn new(config: &Config, region: &RegionSpec) -> Node {
        let n = config.shards();
        let start = Instant::now();
        let node_now = now_at(start, region.clock_offset_ms);
        let shards = (0..n)
            .map(|i| {
                let core = core_config(config, region, i);
                Shard::new(
                    Replica::recover(core, Snapshot::default(), Vec::new(), node_now),
                    None,
                )
            })
            .collect();
        let node = Node::build(config, region, shards, start);
        node.note_writable();
        node
    }

    /// A node for `region` of `config` whose shards start from what their data folders held
    /// (`opened`: [`Persist::open_shards`], shard by shard) and log every change to them.
    /// Nothing leaves the node before the log holds it.
    ///
    /// Panics if `opened` does not hold one entry per shard of `config`.
    pub fn with_persistence(
        config: &Config,
        region: &RegionSpec,
        opened: Vec<(Persist, Recovered)>,
    ) -> Node {
        assert_eq!(
            opened.len(),
            usize::from(config.shards()),
            "one log per shard"
        );
        // The replicas are rebuilt before the node's clock starts: monotonic time 0 is now.
        let start = Instant::now();
        let node_now = now_at(start, region.clock_offset_ms);
        // Each shard replays its own snapshot and log: in parallel, as they were read.
        let shards = std::thread::scope(|s| {
            let building: Vec<_> = opened
                .into_iter()
                .enumerate()
                .map(|(i, (persist, recovered))| {
                    let mut core = core_config(config, region, i as u16);
                    core.journal = true;
                    s.spawn(move || {
                        let r =
                            Replica::recover(core, recovered.snapshot, recovered.records, node_now);
                        Shard::new(r, Some(persist))
                    })
                })
                .collect();
            building
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        let node = Node::build(config, region, shards, start);
        node.note_writable();
        node
    }

    fn build(config: &Config, region: &RegionSpec, shards: Vec<Shard>, start: Instant) -> Node {
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
            shards,
            progress: Notify::new(),
            writable: AtomicBool::new(true),
            writable_now: Notify::new(),
            serving: AtomicBool::new(false),
            restore_hold_ms: rep.restore_hold_ms,
            start,
            last_save: AtomicU64::new(unix_secs()),
            saving: AtomicBool::new(false),
            clock_offset_ms: region.clock_offset_ms,
            max_frame_bytes: rep.max_frame_bytes,
            links: Mutex::new(links),
            reserved: Mutex::new(BTreeMap::new()),
            counters: Counters::default(),
            transport: OnceLock::new(),
            metrics: Metrics::new(),
            skew_warned: Mutex::new(BTreeMap::new()),
            broker: crate::pubsub::Broker::default(),
        }
    }

    /// This region's subscriptions.
    pub fn broker(&self) -> &crate::pubsub::Broker {
        &self.broker
    }

    /// `CONFIG SET notify-keyspace-events`: the classes to publish; every shard raises
    /// keyspace events while any class and a channel kind (`K`, `E`) are selected.
    pub fn set_notify(&self, classes: u32) {
        use sessionmesh_core::notify::class as c;
        self.broker.set_notify(classes);
        let on = classes & (c::KEYSPACE | c::KEYEVENT) != 0
            && classes & !(c::KEYSPACE | c::KEYEVENT) != 0;
        for s in &self.shards {
            s.lock().set_notify(on);
            s.wake.notify_one();
        }
    }

    /// `PUBLISH channel message`: delivered to this region's subscribers, and sent to every
    /// other region for theirs (one frame per peer, by shard 0's replica, so one region's
    /// messages keep their order on the way). Returns the receivers in this region, which
    /// is what `PUBLISH` answers: another region's subscribers are not counted (it would
    /// take a round trip).
    pub fn publish(&self, channel: &Bytes, message: &Bytes) -> usize {
        let n = self.broker.deliver(channel, message);
        if !self.peers.is_empty() {
            self.shards[0].lock().publish(channel, message);
            self.shards[0].wake.notify_one();
        }
        n
    }

    /// How many shards the region's key space is split into.
    pub fn shard_count(&self) -> u16 {
        self.shards.len() as u16
    }

    /// Executes one data command (`args[0]` is the command name) and returns its reply.
    pub fn execute(&self, args: &[Bytes]) -> Reply {
        match Command::parse(args.to_vec()) {
            Ok(c) => self.execute_marked(&c, &mut Marks::default()),
            Err(e) => e,
        }
    }

    /// Executes one data command atomically and returns its reply; notes in `marks` the stamp
    /// of the write it made, if it made one, and the [`Ticket`] to wait for before the reply
    /// may leave the node (see [`Node::durable`]). Taken under the same lock as the command,
    /// so a connection can remember exactly its own last writes for `WAIT`, whatever other
    /// connections do meanwhile.
    ///
    /// The reply is final: nothing waits for another region. A write that brings the next
    /// flush forward wakes its shard's driver so it reaches peers within the flush interval;
    /// writes while a flush is already scheduled do not (a cross-thread wake per write costs
    /// more than the write).
    pub fn execute_marked(&self, cmd: &Command, marks: &mut Marks) -> Reply {
        let now = self.now();
        let n = self.shard_count();
        match shard::direct(cmd, n) {
            // Nearly every command: one key, one shard, one lock.
            Some(i) => {
                let mut r = self.shards[usize::from(i)].lock();
                let reply = r.run(cmd, now);
                let (ready, ticket) = r.step();
                marks.note(i, ready.wrote, ticket);
                reply
            }
            None => {
                let mut held = Held::lock(&self.shards, shard::touches(cmd, n));
                let reply = shard::run(&mut held, cmd, now);
                held.step(marks);
                reply
            }
        }
    }

    /// Executes several data commands and returns one reply per command, noting in `marks`
    /// what they wrote and wait for.
    ///
    /// `atomic` (`MULTI`/`EXEC`): every shard the commands touch is held, lowest first, for
    /// the whole run, so no other command and no peer frame runs on them in between, as in
    /// Redis. Otherwise (a pipeline) the commands run in order, each run of consecutive
    /// commands on one shard under one hold of its lock: the order a client sees is its
    /// pipeline's, as from Redis, while other connections' commands on other shards run in
    /// parallel.
    pub fn execute_batch_marked(
        &self,
        cmds: &[Command],
        atomic: bool,
        marks: &mut Marks,
    ) -> Vec<Reply> {
        let now = self.now();
        let n = self.shard_count();
        if atomic && n > 1 {
            let mut touched = ShardSet::default();
            for c in cmds {
                touched.union(shard::touches(c, n));
            }
            let mut held = Held::lock(&self.shards, touched);
            let replies = cmds.iter().map(|c| shard::run(&mut held, c, now)).collect();
            // One step per shard, so one frame in each shard's log for its part of the
            // transaction (docs/DESIGN.md, "Shards", says what a crash does to one that
            // spans shards).
            held.step(marks);
            return replies;
        }
        let mut replies = Vec::with_capacity(cmds.len());
        let mut rest = cmds;
        while let Some(first) = rest.first() {
            let Some(i) = shard::direct(first, n) else {
                replies.push(self.execute_marked(first, marks));
                rest = &rest[1..];
                continue;
            };
            let run = rest
                .iter()
                .take_while(|c| shard::direct(c, n) == Some(i))
                .count();
            let mut r = self.shards[usize::from(i)].lock();
            if run > 1 {
                // The run's lookups first, so that their cache misses overlap.
                for c in &rest[..run] {
                    r.prefetch(c);
                }
            }
            replies.extend(rest[..run].iter().map(|c| r.run(c, now)));
            // One step, so one frame in the log for the run.
            let (ready, ticket) = r.step();
            marks.note(i, ready.wrote, ticket);
            rest = &rest[run..];
        }
        replies
    }

    /// Holds the shards of `set`, lowest first, for the whole of `f`, and ends their steps
    /// after it: what a script needs to run atomically in this region (`EVAL`). `f` runs
    /// commands through the closure it is given, which answers `None` for a command that
    /// touches a shard not held (the script did not declare that key). As for `MULTI`/`EXEC`,
    /// no other command and no peer frame runs on those shards meanwhile, and the writes
    /// replicate as the deltas they made, never as the script.
    ///
    /// `unchanged` lists keys with the state they had when watched (`WATCH`): if one of them
    /// (on a held shard) holds another state now, changed by a command here or by a peer's
    /// delta merged since, `f` does not run and the answer is `None`. A dead state collected
    /// since counts as unchanged (what the random differential streams found: `WATCH` of a
    /// deleted key, its tombstone collected before `EXEC`, aborted where Redis runs).
    pub fn hold<R>(
        &self,
        set: ShardSet,
        marks: &mut Marks,
        unchanged: &[(Bytes, Option<KeyState>)],
        f: impl FnOnce(&mut dyn FnMut(&Command) -> Option<Reply>) -> R,
    ) -> Option<R> {
        // One time for the whole script, as Redis freezes it for a script's commands.
        let now = self.now();
        let n = self.shard_count();
        // Flagged before they are locked, cleared once released: the drivers wait for the
        // flag asynchronously rather than on the locks (`Shard::lock_async`).
        for i in set.iter() {
            if let Some(s) = self.shards.get(usize::from(i)) {
                s.scripted.fetch_add(1, Ordering::AcqRel);
            }
        }
        let mut held = Held::lock(&self.shards, set);
        let same = unchanged.iter().all(|(k, st)| {
            let i = shard::shard_of_key(k, n);
            if !set.contains(i) {
                return true;
            }
            let cur = held.shard(i).key_state(k);
            // A tombstone or an expired key that garbage collection removed since is no
            // change: a client saw no key then and sees none now (a key that was visible then
            // and is gone now fails the caller's existence check instead).
            cur == st.as_ref()
                || (cur.is_none()
                    && st
                        .as_ref()
                        .is_some_and(|s| s.is_deleted() || s.is_expired(now.wall_ms)))
        });
        let out = same.then(|| {
            let mut run = |cmd: &Command| {
                let t = shard::touches(cmd, n);
                let inside = t.iter().all(|i| set.contains(i));
                inside.then(|| shard::run(&mut held, cmd, now))
            };
            f(&mut run)
        });
        held.step(marks);
        for i in set.iter() {
            if let Some(s) = self.shards.get(usize::from(i)) {
                s.scripted.fetch_sub(1, Ordering::AcqRel);
            }
        }
        out
    }

    /// `INFO keyspace`, summed over the shards (each locked in turn).
    pub fn keyspace(&self) -> Vec<(u8, usize, usize)> {
        let now = self.now();
        let mut out: BTreeMap<u8, (usize, usize)> = BTreeMap::new();
        for s in &self.shards {
            for (d, keys, expires) in s.lock().keyspace(now) {
                let e = out.entry(d).or_default();
                e.0 += keys;
                e.1 += expires;
            }
        }
        out.into_iter()
            .filter(|(_, (k, _))| *k > 0)
            .map(|(d, (k, e))| (d, k, e))
            .collect()
    }

    /// The state of `key` now (what `WATCH` remembers), under its shard's lock.
    pub fn key_state(&self, key: &Bytes) -> Option<KeyState> {
        let i = shard::shard_of_key(key, self.shard_count());
        self.shards[usize::from(i)].lock().key_state(key).cloned()
    }

    /// Waits until every ticket of `marks` is durable. `false`: persistence failed, the node
    /// is stopping, and whatever waited for the tickets must not be acknowledged.
    pub async fn durable(&self, marks: &Marks) -> bool {
        for (i, t) in marks.tickets() {
            if let Some(p) = self.shards.get(i).and_then(|s| s.persist.as_ref()) {
                if !p.wait(t).await {
                    return false;
                }
            }
        }
        true
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
            // The drivers lift the barrier at its deadline; this is only a backstop.
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(Duration::from_millis(20)) => {
                    let now = self.now();
                    for (i, s) in self.shards.iter().enumerate() {
                        let mut r = s.lock();
                        r.stamps_ready_at(now);
                        self.note_shard(i, &r);
                    }
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
        for (i, s) in self.shards.iter().enumerate() {
            let r = s.lock();
            self.note_shard(i, &r);
        }
    }

    /// Notes shard `i`'s state (`r`, locked) and publishes the region's: writable once every
    /// shard may stamp, served once every shard has restored.
    fn note_shard(&self, i: usize, r: &Replica) {
        let s = &self.shards[i];
        s.restored.store(!r.is_restoring(), Ordering::Release);
        s.writable.store(r.stamps_ready(), Ordering::Release);
        let all = |f: fn(&Shard) -> bool| self.shards.iter().all(f);
        if !self.serving.load(Ordering::Acquire) && all(|s| s.restored.load(Ordering::Acquire)) {
            self.serving.store(true, Ordering::Release);
        }
        let ready = all(|s| s.writable.load(Ordering::Acquire));
        if self.writable.load(Ordering::Acquire) != ready {
            self.writable.store(ready, Ordering::Release);
            if ready {
                self.writable_now.notify_waiters();
            }
        }
    }

    /// [`Node::durable`] for shard `i`'s driver: the log's thread writes and fsyncs, so no
    /// runtime thread blocks on the disk for a peer's sake.
    async fn durable_background(&self, i: usize, ticket: Ticket) -> bool {
        match &self.shards[i].persist {
            Some(p) => p.wait_background(ticket).await,
            None => true,
        }
    }

    /// The shards' durable logs, if this node has a data folder.
    pub fn persists(&self) -> impl Iterator<Item = &Persist> {
        self.shards.iter().filter_map(|s| s.persist.as_ref())
    }

    /// Resolves once some shard's persistence failed (the region then stops serving), with
    /// the reason; pending forever on a healthy region or one without a data folder.
    pub async fn failed(&self) -> String {
        let mut waits: Vec<_> = self.persists().map(|p| Box::pin(p.failed())).collect();
        if waits.is_empty() {
            return std::future::pending().await;
        }
        std::future::poll_fn(|cx| {
            for w in &mut waits {
                if let std::task::Poll::Ready(reason) = w.as_mut().poll(cx) {
                    return std::task::Poll::Ready(reason);
                }
            }
            std::task::Poll::Pending
        })
        .await
    }

    /// Cuts a snapshot of shard `i`: under its lock, queues pending records, starts a new log
    /// segment and takes the state unsorted (a reference per key, no copy: the pause is a
    /// walk of the shard's key table); then, outside the lock, sorts it, writes it and deletes
    /// the log it replaces. Does nothing without persistence. Runs on a blocking thread: the
    /// page faults of [`Snapshot::key_room`] and the write take a while, and the pause itself
    /// blocks no more there than on a runtime thread.
    pub async fn checkpoint(
        self: &Arc<Self>,
        i: usize,
    ) -> Result<(), crate::persist::PersistError> {
        if self.shards.get(i).is_none_or(|s| s.persist.is_none()) {
            return Ok(());
        }
        let node = self.clone();
        tokio::task::spawn_blocking(move || node.checkpoint_blocking(i))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    /// [`Node::checkpoint`], on a thread that may block.
    #[allow(
        clippy::expect_used,
        reason = "only called when persistence is configured"
    )]
    fn checkpoint_blocking(&self, i: usize) -> Result<(), crate::persist::PersistError> {
        let shard = &self.shards[i];
        let p = shard.persist.as_ref().expect("checked by the caller");
        // Room for every key, with a margin for keys created before the lock is taken again.
        let n = shard.lock().stats().keys as usize;
        let room = Snapshot::key_room(n + n / 16);
        let started = Instant::now();
        let (id, snap) = {
            let mut r = shard.lock();
            // The snapshot must follow every record already in the log.
            let _ = r.step();
            let id = p.begin_snapshot();
            (id, r.snapshot_unsorted(room))
        };
        // How long commands and peers waited for the copy.
        let pause = started.elapsed();
        p.finish_snapshot(id, snap, pause)?;
        self.last_save.store(unix_secs(), Ordering::Relaxed);
        Ok(())
    }

    /// `SAVE`: a snapshot of every shard now, on this thread (as Redis's `SAVE` blocks).
    pub fn save(&self) -> Reply {
        if self.shards.iter().all(|s| s.persist.is_none()) {
            return Reply::err("this region keeps nothing on disk (no [persistence] data_dir)");
        }
        for (i, s) in self.shards.iter().enumerate() {
            if s.persist.is_some() {
                if let Err(e) = self.checkpoint_blocking(i) {
                    tracing::error!(error = %e, shard = i, "SAVE failed");
                    return Reply::err(format_args!("SAVE failed: {e}"));
                }
            }
        }
        Reply::OK
    }

    /// `BGSAVE`: the same snapshot on a thread of its own.
    pub fn bgsave(self: &Arc<Self>) -> Reply {
        if self.shards.iter().all(|s| s.persist.is_none()) {
            return Reply::err("this region keeps nothing on disk (no [persistence] data_dir)");
        }
        if self.saving.swap(true, Ordering::AcqRel) {
            return Reply::err("Background save already in progress");
        }
        let node = Arc::clone(self);
        let started = std::thread::Builder::new()
            .name("bgsave".into())
            .spawn(move || {
                let _ = node.save();
                node.saving.store(false, Ordering::Release);
            });
        match started {
            Ok(_) => Reply::Simple("Background saving started"),
            Err(e) => {
                self.saving.store(false, Ordering::Release);
                Reply::err(format_args!("could not start the background save: {e}"))
            }
        }
    }

    /// `LASTSAVE`: unix seconds of the last completed snapshot, or of the start.
    pub fn last_save(&self) -> i64 {
        self.last_save.load(Ordering::Relaxed) as i64
    }

    /// How many other regions are known to hold every write noted in `marks` (each shard's
    /// last one, and so every earlier one of that shard); every peer when nothing was written.
    pub fn regions_holding(&self, marks: &Marks) -> usize {
        marks
            .writes()
            .map(|(i, s)| self.shards[i].lock().regions_holding(s))
            .min()
            .unwrap_or(self.peers.len())
    }

    /// Waits until at least `n` other regions hold every write noted in `marks` or
    /// `timeout_ms` passes, and returns how many hold them then (Redis `WAIT numregions
    /// timeout`). `timeout_ms == 0` waits without limit, as Redis does. Never changes data; a
    /// cancelled wait is harmless.
    pub async fn wait_regions(&self, marks: &Marks, n: usize, timeout_ms: u64) -> usize {
        let deadline = (timeout_ms > 0)
            .then(|| tokio::time::Instant::now() + Duration::from_millis(timeout_ms));
        // Push the writes now rather than at the next flush tick.
        for (i, _) in marks.writes() {
            self.shards[i].wake.notify_one();
        }
        loop {
            let notified = self.progress.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let have = self.regions_holding(marks);
            if have >= n {
                return have;
            }
            match deadline {
                Some(d) => {
                    tokio::select! {
                        _ = &mut notified => {}
                        _ = tokio::time::sleep_until(d) => return self.regions_holding(marks),
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
        if self.restoring().is_some() {
            // It may lack writes (its own included) that its peers hold.
            return false;
        }
        let links = self.links();
        let all_trusted = links.values().all(|l| !l.connected || l.trusted);
        let all_up = links.values().all(|l| l.connected && l.trusted);
        all_trusted && (all_up || self.start.elapsed() >= READY_GRACE)
    }

    /// The core's counters, summed over the shards.
    pub fn stats(&self) -> Stats {
        let mut total = Stats::default();
        for s in &self.shards {
            total.add(&s.lock().stats());
        }
        total
    }

    /// The restoration in progress after a restart, if any shard is still restoring (see
    /// [`Replica::restoring`]), joined over the shards that are.
    pub fn restoring(&self) -> Option<RestoreStatus> {
        let mut joined: Option<RestoreStatus> = None;
        for s in &self.shards {
            if let Some(r) = s.lock().restoring() {
                match joined.as_mut() {
                    Some(j) => j.join(&r),
                    None => joined = Some(r),
                }
            }
        }
        joined
    }

    /// A snapshot of every peer, in id order.
    pub fn peer_views(&self) -> Vec<PeerView> {
        let now = self.mono_ms();
        let mut status: BTreeMap<RegionId, PeerStatus> = BTreeMap::new();
        for s in &self.shards {
            for p in s.lock().peer_status() {
                match status.get_mut(&p.region) {
                    Some(joined) => joined.join(&p),
                    None => {
                        status.insert(p.region, p);
                    }
                }
            }
        }
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
            ("pubsub_delivered", self.broker.delivered()),
            ("pubsub_dropped", self.broker.dropped()),
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
        now_at(self.start, self.clock_offset_ms)
    }

    /// Milliseconds from the node's monotonic time `t` (as the core sees it) until now.
    pub fn mono_ms_since(&self, t: u64) -> u64 {
        self.mono_ms().saturating_sub(t)
    }

    fn mono_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn reserved(&self) -> MutexGuard<'_, BTreeMap<RegionId, usize>> {
        self.reserved.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn links(&self) -> MutexGuard<'_, BTreeMap<RegionId, LinkState>> {
        self.links.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the transport so `/metrics` can include its counters.
    pub(crate) fn attach_transport(&self, t: &Arc<Transport>) {
        let _ = self.transport.set(Arc::downgrade(t));
    }
}

/// Seconds since the Unix epoch, now.
fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The node's clock as [`Node::now`] reads it, for a node started at `start`.
fn now_at(start: Instant, clock_offset_ms: i64) -> Now {
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Now {
        mono_ms: start.elapsed().as_millis() as u64,
        wall_ms: wall.saturating_add_signed(clock_offset_ms),
    }
}

/// The core's settings for shard `shard` of `region` of `config` (journal off; persistence
/// turns it on).
fn core_config(config: &Config, region: &RegionSpec, shard: u16) -> CoreConfig {
    let ids: Vec<RegionId> = config.regions().iter().map(|r| RegionId(r.id)).collect();
    let mut core = CoreConfig::new(RegionId(region.id), &ids);
    core.shard = shard;
    core.shards = config.shards();
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
    if let Some(n) = config.redis().databases {
        core.databases = n;
    }
    if let Some(n) = config.redis().max_bulk_len {
        core.max_string_bytes = n;
    }
    core
}
