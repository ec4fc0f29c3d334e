//! A simulated region: its key space in shards, each a real [`Replica`], driven together as
//! the node drives them (`sessionmesh_core::shard`). The world sees one region; this type
//! routes each call to the shard it concerns (a command by its keys through
//! [`shard::run`], a frame by the shard its header names) or to every shard (links, timers),
//! and presents the region's observable state (its live keys, digest, counters) as the union
//! of its shards'.

use bytes::Bytes;
use sessionmesh_core::cmd::Command;
use sessionmesh_core::replica::{Record, RestoreStatus, Snapshot};
use sessionmesh_core::shard;
use sessionmesh_core::{Config, Event, Hlc, KeyState, Now, RegionId, Replica, Reply, Stats};
use sessionmesh_core::{Transmit, WireError};
use std::collections::BTreeMap;

/// One region's shards, all up or all down together (they share a process).
pub(super) struct Shards(pub(super) Vec<Replica>);

impl Shards {
    /// Fresh shards from their configs (one per shard, in order).
    pub(super) fn new(cfgs: Vec<Config>) -> Shards {
        Shards(cfgs.into_iter().map(Replica::new).collect())
    }

    /// The shards rebuilt from what each persisted, as the node's recovery does.
    pub(super) fn recover(
        cfgs: Vec<Config>,
        durable: Vec<(Snapshot, Vec<Record>)>,
        now: Now,
    ) -> Shards {
        Shards(
            cfgs.into_iter()
                .zip(durable)
                .map(|(c, (snap, log))| Replica::recover(c, snap, log, now))
                .collect(),
        )
    }

    /// Runs a client's command line over the shards, as the node's Redis server does.
    pub(super) fn execute(&mut self, args: &[Bytes], now: Now) -> Reply {
        match Command::parse(args.to_vec()) {
            Ok(c) => shard::run(&mut self.0, &c, now),
            Err(e) => e,
        }
    }

    /// The earliest deadline of any shard.
    pub(super) fn poll_timeout(&self) -> Option<u64> {
        self.0.iter().filter_map(Replica::poll_timeout).min()
    }

    /// Fires the timers of every shard that is due.
    pub(super) fn handle_timeout(&mut self, now: Now) {
        for r in &mut self.0 {
            if r.poll_timeout().is_some_and(|t| t <= now.mono_ms) {
                r.handle_timeout(now);
            }
        }
    }

    /// A link to `peer` is up: every shard asks it for what it missed.
    pub(super) fn handle_connected(&mut self, peer: RegionId, now: Now) {
        for r in &mut self.0 {
            r.handle_connected(peer, now);
        }
    }

    /// The link to `peer` went down.
    pub(super) fn handle_disconnected(&mut self, peer: RegionId, now: Now) {
        for r in &mut self.0 {
            r.handle_disconnected(peer, now);
        }
    }

    /// A frame from `peer`, for the shard its header names.
    pub(super) fn handle_frame(
        &mut self,
        peer: RegionId,
        frame: &[u8],
        now: Now,
    ) -> Result<(), WireError> {
        let s = sessionmesh_core::wire::frame_shard(frame).unwrap_or(u16::MAX);
        match self.0.get_mut(usize::from(s)) {
            Some(r) => r.handle_frame(peer, frame, now),
            None => Err(WireError::Shard { got: s, want: 0 }),
        }
    }

    /// Every shard's transmits and events, and the records of the step each just ended.
    pub(super) fn drain(
        &mut self,
        transmits: &mut Vec<Transmit>,
        events: &mut Vec<Event>,
        records: &mut [Vec<Record>],
    ) {
        for (r, log) in self.0.iter_mut().zip(records.iter_mut()) {
            while let Some(t) = r.poll_transmit() {
                transmits.push(t);
            }
            while let Some(e) = r.poll_event() {
                events.push(e);
            }
            log.extend(r.ready().records);
        }
    }

    /// Whether every shard may stamp writes.
    pub(super) fn stamps_ready(&self) -> bool {
        self.0.iter().all(Replica::stamps_ready)
    }

    /// The restoration in progress, joined over the shards still restoring.
    pub(super) fn restoring(&self) -> Option<RestoreStatus> {
        let mut joined: Option<RestoreStatus> = None;
        for r in self.0.iter().filter_map(Replica::restoring) {
            match joined.as_mut() {
                Some(j) => j.join(&r),
                None => joined = Some(r),
            }
        }
        joined
    }

    /// Whether some shard has a catch-up answer waiting for room.
    pub(super) fn answering(&self) -> bool {
        self.0.iter().any(Replica::answering)
    }

    /// The counters, summed.
    pub(super) fn stats(&self) -> Stats {
        let mut s = Stats::default();
        for r in &self.0 {
            s.add(&r.stats());
        }
        s
    }

    /// The greatest clock of any shard (for reports; the clock oracle checks each shard).
    pub(super) fn clock_last(&self) -> Hlc {
        self.0
            .iter()
            .map(Replica::clock_last)
            .max()
            .unwrap_or(Hlc::ZERO)
    }

    /// The least watermark any shard holds for `origin`.
    pub(super) fn watermark(&self, origin: RegionId) -> Hlc {
        self.0
            .iter()
            .map(|r| r.watermark(origin))
            .min()
            .unwrap_or(Hlc::ZERO)
    }

    /// The region's visible keys: the union of its shards' (disjoint: a key lives on one).
    pub(super) fn live(&self, now: Now) -> crate::oracle::Live {
        let mut all = BTreeMap::new();
        for r in &self.0 {
            all.extend(r.live(now));
        }
        all
    }

    /// One number for the region's visible state: its shards' digests, in shard order.
    pub(super) fn digest(&self, now: Now) -> u64 {
        self.0.iter().fold(0xcbf2_9ce4_8422_2325, |h, r| {
            (h ^ r.digest(now)).wrapping_mul(0x0100_0000_01b3)
        })
    }

    /// The shard that owns `key`.
    pub(super) fn owner(&self, key: &[u8]) -> Option<&Replica> {
        let s = shard::shard_of_key(key, self.0.len() as u16);
        self.0.get(usize::from(s))
    }

    /// The state of `key` in the shard that owns it.
    pub(super) fn key_state(&self, key: &Bytes) -> Option<&KeyState> {
        self.owner(key)?.key_state(key)
    }

    /// Every shard's snapshot, in order.
    pub(super) fn snapshots(&self) -> Vec<Snapshot> {
        self.0.iter().map(Replica::snapshot).collect()
    }
}
