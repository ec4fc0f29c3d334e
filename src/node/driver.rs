//! What runs around the replica: frames from peers in ([`transport::Handler`]), the driver
//! task that moves the replica's outputs to the transport and its events to the log and
//! counters ([`drive`]), and the snapshot task ([`checkpoints`]).

use super::*;
use tracing::Instrument as _;

impl transport::Handler for Node {
    fn backpressure(
        &self,
    ) -> Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>> {
        let wait = self.persists().find_map(Persist::backlogged)?;
        self.counters.backpressure.fetch_add(1, Ordering::Relaxed);
        Some(Box::pin(wait))
    }

    fn frame_len(&self, buf: &[u8]) -> Result<Option<usize>, Rejected> {
        sessionmesh_core::wire::frame_len_max(buf, self.max_frame_bytes)
            .map_err(|e| Rejected(e.to_string()))
    }

    fn connected(&self, peer: u16) {
        let id = RegionId(peer);
        {
            let mut links = self.links();
            let l = links.entry(id).or_default();
            l.connected = true;
            l.trusted = false;
            l.connects += 1;
        }
        let now = self.now();
        for s in &self.shards {
            s.lock().handle_connected(id, now);
            s.wake.notify_one();
        }
    }

    fn frame(&self, peer: u16, frame: &[u8]) -> Result<(), Rejected> {
        let id = RegionId(peer);
        let now = self.now();
        let shard = sessionmesh_core::wire::frame_shard(frame).unwrap_or(u16::MAX);
        let Some(s) = self.shards.get(usize::from(shard)) else {
            return Err(Rejected(format!(
                "frame for shard {shard}, but this region has {} shards ([cluster] shards must be the same in every region)",
                self.shards.len()
            )));
        };
        let res = {
            let mut r = s.lock();
            let res = r.handle_frame(id, frame, now);
            self.note_shard(usize::from(shard), &r);
            res
        };
        s.wake.notify_one();
        match res {
            Ok(()) => {
                {
                    let mut links = self.links();
                    let l = links.entry(id).or_default();
                    l.trusted = true;
                    l.last_frame_mono_ms = Some(now.mono_ms);
                }
                self.progress.notify_waiters();
                Ok(())
            }
            Err(e) => Err(Rejected(e.to_string())),
        }
    }

    fn drained(&self, _peer: u16, _stream: Stream) {
        // A catch-up answer of any shard may be waiting for this room (see `drive`).
        for s in &self.shards {
            s.wake.notify_one();
        }
    }

    fn disconnected(&self, peer: u16) {
        let id = RegionId(peer);
        {
            let mut links = self.links();
            let l = links.entry(id).or_default();
            l.connected = false;
            l.trusted = false;
        }
        let now = self.now();
        for s in &self.shards {
            s.lock().handle_disconnected(id, now);
            s.wake.notify_one();
        }
    }
}

/// Runs every shard's driver until `shutdown`: one task per shard, so shards fire their
/// timers and push their writes in parallel.
pub async fn drive(node: Arc<Node>, transport: Arc<Transport>, shutdown: CancellationToken) {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..node.shards.len() {
        tasks.spawn(
            drive_shard(node.clone(), transport.clone(), i, shutdown.clone())
                .instrument(tracing::info_span!("shard", shard = i)),
        );
    }
    while tasks.join_next().await.is_some() {}
}

/// How often a shard looks for expired keys while keyspace notifications are on.
const EXPIRED_TICK: Duration = Duration::from_millis(20);

/// Shard `i`'s driver: fires its replica's timers, and moves its transmits to the transport
/// and its events to the log.
///
/// The shard lock is never held while sending, so a slow peer cannot stall commands.
async fn drive_shard(
    node: Arc<Node>,
    transport: Arc<Transport>,
    i: usize,
    shutdown: CancellationToken,
) {
    let shard = &node.shards[i];
    let mut out = Vec::new();
    let mut events = Vec::new();
    // Catch-up bytes this round took from each peer's queue (see `Node::reserved`).
    let mut taken: BTreeMap<RegionId, usize> = BTreeMap::new();
    loop {
        let (deadline, ticket) = {
            let now = node.now();
            let mut r = shard.lock_async().await;
            if r.poll_timeout().is_some_and(|t| t <= now.mono_ms) {
                r.handle_timeout(now);
                node.note_shard(i, &r);
            }
            // Keyspace notifications on: `expired` for what expired since the last round.
            r.poll_expired(now);
            while let Some(t) = r.poll_transmit() {
                out.push(t);
            }
            // Catch-up parts only as the peer's catch-up queue has room for them, counting
            // what this round already takes and what other shards took and have not handed
            // over yet; the rest wait in the core until a frame drains (`Handler::drained`
            // wakes this loop).
            taken.clear();
            for t in out.iter().filter(|t| t.channel == Channel::CatchUp) {
                *taken.entry(t.to).or_default() += t.bytes.len();
            }
            {
                let mut reserved = node.reserved();
                loop {
                    // Every part counts against the room of the next (`taken` grows).
                    let room = |p: RegionId| {
                        transport
                            .room(p.0, Stream::CatchUp)
                            .saturating_sub(taken.get(&p).copied().unwrap_or(0))
                            .saturating_sub(reserved.get(&p).copied().unwrap_or(0))
                    };
                    let Some(t) = r.poll_catchup(room) else { break };
                    *taken.entry(t.to).or_default() += t.bytes.len();
                    out.push(t);
                }
                for (p, n) in taken.iter() {
                    *reserved.entry(*p).or_default() += n;
                }
            }
            while let Some(e) = r.poll_event() {
                events.push(e);
            }
            let (ready, ticket) = r.step();
            // Frames wait for the records of this step and every earlier one (the core's
            // durability rule); with nothing to send there is nothing to hold back.
            (ready.deadline, if out.is_empty() { None } else { ticket })
        };
        // An `Ack` or a push must not claim what a crash could take back (peers use acks for
        // WAIT and to decide when tombstones may go).
        if let Some(t) = ticket {
            let ok = tokio::select! {
                _ = shutdown.cancelled() => false,
                ok = node.durable_background(i, t) => ok,
            };
            if !ok {
                return;
            }
        }
        for t in out.drain(..) {
            let stream = match t.channel {
                Channel::Delta => Stream::Delta,
                Channel::CatchUp => Stream::CatchUp,
            };
            if !transport.send(t.to.0, stream, t.bytes) {
                node.counters
                    .dropped_transmits
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        {
            // Handed over: the transport's own room counts them now.
            let mut reserved = node.reserved();
            for (p, n) in &taken {
                if let Some(r) = reserved.get_mut(p) {
                    *r = r.saturating_sub(*n);
                }
            }
        }
        for e in events.drain(..) {
            node.log_event(e);
        }
        let mut sleep = match deadline {
            // At least 1 ms: a deadline the core leaves in the past must not spin the loop.
            Some(t) => Duration::from_millis(t.saturating_sub(node.mono_ms()).max(1)),
            // Nothing scheduled: sleep until woken (a long timeout keeps the loop honest).
            None => Duration::from_secs(1),
        };
        if node.broker().notify() != 0 {
            // `expired` events within this of the expiry.
            sleep = sleep.min(EXPIRED_TICK);
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = shard.wake.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
        }
    }
}

/// Takes a snapshot of a shard whenever its log says one is due, until `shutdown`. A failed
/// snapshot has already stopped the node (see [`Persist::failed`]); this task then ends too.
pub async fn checkpoints(node: Arc<Node>, shutdown: CancellationToken) {
    if node.persists().next().is_none() {
        return;
    }
    // Checking is two atomic loads per shard; a snapshot is at most this late.
    let tick = Duration::from_millis(100);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
        }
        for i in 0..node.shards.len() {
            let due = node.shards[i]
                .persist
                .as_ref()
                .is_some_and(Persist::snapshot_due);
            if due && node.checkpoint(i).await.is_err() {
                return;
            }
        }
    }
}

impl Node {
    /// Counts and logs one event of the core. Runs in the driver task, whose span names the
    /// region. Warnings only: events are rare, except skew, which a skewed peer raises on every
    /// push, so its warning repeats at most every `SKEW_WARN_INTERVAL_MS` per peer (the
    /// counter has them all).
    fn log_event(&self, e: Event) {
        let c = &self.counters;
        match e {
            Event::ClockSkew { peer, ahead_ms } => {
                let n = c.clock_skew_events.fetch_add(1, Ordering::Relaxed) + 1;
                if self.skew_warn_due(peer) {
                    tracing::warn!(peer = %self.peer_name(peer), ahead_ms, events = n, "peer clock ahead: holding its deltas");
                } else {
                    tracing::debug!(peer = %self.peer_name(peer), ahead_ms, "peer clock ahead");
                }
            }
            Event::Evicted { region } => {
                c.evictions.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(peer = %self.peer_name(region), "peer silent beyond tombstone grace; no longer holds back GC");
            }
            Event::Resynced { peer } => {
                c.resyncs.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(peer = %self.peer_name(peer), "away too long: resynchronised from peer");
            }
            Event::BadFrame { peer } => {
                tracing::warn!(peer = %self.peer_name(peer), "malformed frame rejected");
            }
            Event::Restoring { floor } => {
                tracing::warn!(%floor, "restarted: restoring from peers whatever this region lost (its own writes above the floor included); not ready until every peer has answered");
            }
            Event::Restored { after_ms, keys } => {
                tracing::info!(after_ms, keys, "restored: every peer has answered");
            }
            Event::Published {
                channel, message, ..
            } => {
                self.broker().deliver(&channel, &message);
            }
            Event::Keyspace { key, event, class } => {
                self.broker().keyspace_event(&key, event, class);
            }
            // Only produced with `record_writes`, which the node leaves off.
            Event::Wrote { .. } => {}
        }
    }

    /// Whether a skew warning about `peer` is due (none in the last interval); notes it if so.
    fn skew_warn_due(&self, peer: RegionId) -> bool {
        let now = self.mono_ms();
        let mut warned = self.skew_warned.lock().unwrap_or_else(|p| p.into_inner());
        let due = warned
            .get(&peer)
            .is_none_or(|t| now.saturating_sub(*t) >= SKEW_WARN_INTERVAL_MS);
        if due {
            warned.insert(peer, now);
        }
        due
    }

    fn peer_name(&self, id: RegionId) -> String {
        self.peers
            .get(&id)
            .cloned()
            .unwrap_or_else(|| id.to_string())
    }
}
