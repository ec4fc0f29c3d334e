//! What runs around the replica: frames from peers in ([`transport::Handler`]), the driver
//! task that moves the replica's outputs to the transport and its events to the log and
//! counters ([`drive`]), and the snapshot task ([`checkpoints`]).

use super::*;

impl transport::Handler for Node {
    fn backpressure(
        &self,
    ) -> Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>> {
        let wait = self.persist.as_ref()?.backlogged()?;
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
        self.lock().handle_connected(id, now);
        self.wake.notify_one();
    }

    fn frame(&self, peer: u16, frame: &[u8]) -> Result<(), Rejected> {
        let id = RegionId(peer);
        let now = self.now();
        let res = {
            let mut r = self.lock();
            let res = r.handle_frame(id, frame, now);
            self.note_writable_locked(&r);
            res
        };
        match res {
            Ok(()) => {
                {
                    let mut links = self.links();
                    let l = links.entry(id).or_default();
                    l.trusted = true;
                    l.last_frame_mono_ms = Some(now.mono_ms);
                }
                self.progress.notify_waiters();
                self.wake.notify_one();
                Ok(())
            }
            Err(e) => {
                self.wake.notify_one();
                Err(Rejected(e.to_string()))
            }
        }
    }

    fn drained(&self, _peer: u16, _stream: Stream) {
        // A catch-up answer may be waiting for this room (see `drive`).
        self.wake.notify_one();
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
        self.lock().handle_disconnected(id, now);
        self.wake.notify_one();
    }
}

/// Runs the driver until `shutdown`: fires the replica's timers, and moves its transmits to
/// the transport and its events to the log.
///
/// The replica lock is never held while sending, so a slow peer cannot stall commands.
pub async fn drive(node: Arc<Node>, transport: Arc<Transport>, shutdown: CancellationToken) {
    let mut out = Vec::new();
    let mut events = Vec::new();
    loop {
        let (deadline, ticket) = {
            let now = node.now();
            let mut r = node.lock();
            if r.poll_timeout().is_some_and(|t| t <= now.mono_ms) {
                r.handle_timeout(now);
                node.note_writable_locked(&r);
            }
            while let Some(t) = r.poll_transmit() {
                out.push(t);
            }
            // Catch-up parts only as the peer's catch-up queue has room for them, counting
            // what this round already takes; the rest wait in the core until a frame drains
            // (`Handler::drained` wakes this loop).
            let mut taken: BTreeMap<RegionId, usize> = BTreeMap::new();
            for t in out.iter().filter(|t| t.channel == Channel::CatchUp) {
                *taken.entry(t.to).or_default() += t.bytes.len();
            }
            while let Some(t) = r.poll_catchup(|p| {
                transport
                    .room(p.0, Stream::CatchUp)
                    .saturating_sub(taken.get(&p).copied().unwrap_or(0))
            }) {
                *taken.entry(t.to).or_default() += t.bytes.len();
                out.push(t);
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
            tokio::select! {
                _ = shutdown.cancelled() => return,
                ok = node.durable_background(t) => if !ok { return },
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
        for e in events.drain(..) {
            node.log_event(e);
        }
        let sleep = match deadline {
            // At least 1 ms: a deadline the core leaves in the past must not spin the loop.
            Some(t) => Duration::from_millis(t.saturating_sub(node.mono_ms()).max(1)),
            // Nothing scheduled: sleep until woken (a long timeout keeps the loop honest).
            None => Duration::from_secs(1),
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = node.wake.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
        }
    }
}

/// Takes a snapshot whenever the log says one is due, until `shutdown`. A failed snapshot has
/// already stopped the node (see [`Persist::failed`]); this task then ends too.
pub async fn checkpoints(node: Arc<Node>, shutdown: CancellationToken) {
    if node.persist().is_none() {
        return;
    }
    // Checking is two atomic loads; a snapshot is at most this late.
    let tick = Duration::from_millis(100);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
        }
        let due = node.persist().is_some_and(Persist::snapshot_due);
        if due && node.checkpoint().await.is_err() {
            return;
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
