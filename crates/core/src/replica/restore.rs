//! Restarting from less than everything: a region whose persisted state may be older than what
//! it had issued (an empty data folder, a backup restored, a log that lost its tail to a power
//! failure under `everysec`) gets back from its peers every write of its own that any of them
//! holds, and never issues a stamp it issued before.
//!
//! A restarted region cannot tell whether its state is complete (a backup looks like any other
//! data folder), so [`Replica::recover`] always starts both of these when the cluster has other
//! regions; with everything on disk they cost one round trip.
//!
//! - **The stamp barrier.** No stamp is issued until either every peer has answered a catch-up
//!   request (the last part names the greatest stamp of ours it has seen, held-back deltas
//!   included, and the clock moves past it), or the wall clock is more than
//!   `max_clock_drift_ms` past its value at the restart. The second bound holds with no peer at
//!   all: our clock never ran further ahead of our wall clock than that (remote stamps beyond
//!   it are held, not observed), so by then every stamp we issued before the restart is below
//!   the wall clock. Drivers wait for [`Replica::stamps_ready`] before executing writes; a
//!   write executed earlier first moves the clock past the bound (correct, but the region's
//!   time then stands still until its wall clock catches up, which expiries would notice).
//! - **Restoring.** Our watermark for our own writes is `floor` — the clock as the persisted
//!   state last saw it: every write of ours stamped up to there is in that state — instead of
//!   our clock, until every peer has completed a catch-up answer. Every request asks for our
//!   own writes above the watermark, so the answers bring back what we lost; our reports and
//!   answers tell the others we hold ours only up to `floor`, so nobody collects garbage that
//!   depends on what we lost; and our pushes say we are restoring, so receivers neither take
//!   them as covering our lost writes nor ask us for them. A peer silent (not heard of, directly
//!   or through others) for longer than `tombstone_grace_ms` is no longer waited for, as it is
//!   no longer waited for by garbage collection; writes of ours that only such a peer held are
//!   not restored (docs/DESIGN.md, "Restoring").

use super::*;

/// A region restoring its own writes from its peers.
#[derive(Clone, Debug)]
pub(super) struct Restoring {
    /// Every write of ours stamped up to here is held.
    pub(super) floor: Hlc,
    /// Peers whose catch-up answer we still wait for.
    pub(super) waiting: BTreeSet<RegionId>,
    /// Monotonic time the restoration started.
    pub(super) since_mono: u64,
    /// Key deltas received by catch-up since then.
    pub(super) keys: u64,
    /// Identifies this restart to peers (the wall clock at the restart).
    pub(super) boot: u64,
    /// Our watermarks as the persisted state had them (ours: `floor`).
    pub(super) marks0: BTreeMap<RegionId, Hlc>,
    /// Whether the persisted state held any key (an empty one has nothing stale to check).
    pub(super) had_keys: bool,
    /// Censuses in progress, by peer (see [`Message::CensusPart`]).
    pub(super) census: BTreeMap<RegionId, Census>,
    /// Peers a census was completed with.
    pub(super) censused: BTreeSet<RegionId>,
    /// Restoring peers whose unsettled answer we took keys from (see [`Done::unsettled`]):
    /// from the first one on, every key we hold is checked by census, as if our own
    /// persisted state had held them.
    pub(super) tainted_by: BTreeSet<RegionId>,
    /// The watermarks of each settled peer's last complete answer, to census it again once a
    /// later answer taints us.
    pub(super) answer_wm: BTreeMap<RegionId, BTreeMap<RegionId, Hlc>>,
}

/// A census sent to one peer: its parts and which were answered.
#[derive(Clone, Debug)]
pub(super) struct Census {
    pub(super) id: u64,
    pub(super) parts: u32,
    pub(super) answered: BTreeSet<u32>,
    /// Monotonic time it was sent, or an answer last arrived.
    pub(super) progress: u64,
    /// The peer's watermarks it was cut by (a retry is cut the same way).
    pub(super) wm: BTreeMap<RegionId, Hlc>,
}

/// Until its clock is known to be past every stamp it issued before the restart, a region
/// issues none.
#[derive(Clone, Debug)]
pub(super) struct StampBarrier {
    /// Past this wall-clock time the wall clock alone is beyond every stamp issued before.
    pub(super) until_wall: u64,
    /// Peers that have not yet told us the greatest stamp of ours they hold.
    pub(super) unanswered: BTreeSet<RegionId>,
}

/// A restoring region as operators see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreStatus {
    /// Every write of this region stamped up to here is held (what the persisted state proved).
    pub floor: Hlc,
    /// Peers whose answer is still awaited.
    pub waiting: Vec<RegionId>,
    /// Monotonic time the restoration started.
    pub since_mono_ms: u64,
    /// Key deltas received by catch-up since then.
    pub keys_received: u64,
    /// Whether writes may be stamped yet (see [`Replica::stamps_ready`]).
    pub stamps_ready: bool,
}

impl Replica {
    /// Starts restoring from `floor` (after a restart) when there is anyone to restore from.
    pub(super) fn begin_restoring(&mut self, floor: Hlc, now: Now) {
        let peers: BTreeSet<RegionId> = self.peers.keys().copied().collect();
        if peers.is_empty() {
            return;
        }
        let drift = self.cfg.max_clock_drift_ms;
        self.barrier = Some(StampBarrier {
            until_wall: now.wall_ms.saturating_add(drift),
            unanswered: peers.clone(),
        });
        // The monotonic time that corresponds to `until_wall`.
        self.timers.set(
            Timer::Barrier,
            now.mono_ms.saturating_add(drift).saturating_add(1),
        );
        // The wall clock now is past every stamp we issued from our own wall clock before the
        // crash: observe it, so that a wall clock stepped back after the restart cannot take
        // our next stamps below those (found by `generated_schedules_converge`, seed 716919:
        // a backup from before any write, peers that had none of the lost writes, and the
        // wall clock stepped back 1.3 s once the barrier had lifted by their answers).
        let wall = Hlc::new(now.wall_ms, 0);
        if wall > self.clock.last() {
            self.clock.seed(wall);
            self.journal(|| Record::Clock { hlc: wall });
        }
        let mut marks0 = self.marks();
        marks0.insert(self.cfg.region, floor);
        self.restoring = Some(Restoring {
            floor,
            waiting: peers,
            since_mono: now.mono_ms,
            keys: 0,
            boot: now.wall_ms,
            marks0,
            had_keys: !self.store.is_empty(),
            census: BTreeMap::new(),
            censused: BTreeSet::new(),
            tainted_by: BTreeSet::new(),
            answer_wm: BTreeMap::new(),
        });
        self.journal(|| Record::Restoring { floor });
        self.events.push_back(Event::Restoring { floor });
    }

    /// Whether this region may stamp writes now. After a restart it may not until its clock
    /// is known to be past every stamp it issued before (see the module documentation); a
    /// driver holds writes back until then (at most `max_clock_drift_ms`).
    pub fn stamps_ready(&self) -> bool {
        self.barrier.is_none()
    }

    /// [`Replica::stamps_ready`], after lifting the barrier if its time has come (for a driver
    /// that waits without running the timers).
    pub fn stamps_ready_at(&mut self, now: Now) -> bool {
        self.check_barrier(now);
        self.barrier.is_none()
    }

    /// Whether a restoration is in progress (what [`Replica::restoring`] says, without
    /// building its status).
    pub fn is_restoring(&self) -> bool {
        self.restoring.is_some()
    }

    /// The restoration in progress, if any.
    pub fn restoring(&self) -> Option<RestoreStatus> {
        self.restoring.as_ref().map(|r| RestoreStatus {
            floor: r.floor,
            waiting: r.waiting.iter().copied().collect(),
            since_mono_ms: r.since_mono,
            keys_received: r.keys,
            stamps_ready: self.barrier.is_none(),
        })
    }

    /// A stamp for a local event (a write, a push, a burial). Never one issued before a
    /// restart: while the barrier stands, the clock first moves past its bound.
    pub(super) fn issue(&mut self, now: Now) -> Hlc {
        if self.barrier.is_some() {
            self.check_barrier(now);
            if let Some(b) = self.barrier.take() {
                self.timers.set(Timer::Barrier, None);
                // A write before the barrier lifted: the clock first moves past its bound.
                let past = Hlc::new(b.until_wall.saturating_add(1), 0);
                self.clock.seed(past);
                self.journal(|| Record::Clock { hlc: past });
                self.push_floor = self.push_floor.max(self.clock.last());
            }
        }
        self.clock.tick(now.wall_ms)
    }

    /// Lifts the barrier once its time has come or every peer has answered. From then on our
    /// pushes start above `push_floor`, which is at or above every stamp we issued before the
    /// restart: the first one can line up at a peer only with what that peer held before, never
    /// with writes we lost and it lacks.
    pub(super) fn check_barrier(&mut self, now: Now) {
        let Some(b) = &self.barrier else {
            return;
        };
        let by_wall = now.wall_ms > b.until_wall;
        if by_wall || b.unanswered.is_empty() {
            // By the wall: every earlier stamp is at or below the end of that millisecond, and
            // every later tick is past it. By answers: the clock is past every stamp of ours
            // that any peer holds, its watermark for us included.
            let bound = if by_wall {
                Hlc::end_of_ms(b.until_wall)
            } else {
                Hlc::ZERO
            };
            self.barrier = None;
            self.timers.set(Timer::Barrier, None);
            self.push_floor = self.push_floor.max(bound).max(self.clock.last());
        }
    }

    /// Whether our state may still hold keys that every other region has collected: we are
    /// restoring from a state that held keys, or took keys from a peer in that position, and
    /// the census that checks them is not done (see [`Done::unsettled`]).
    pub(super) fn unsettled(&self) -> bool {
        self.restoring
            .as_ref()
            .is_some_and(|r| r.had_keys || !r.tainted_by.is_empty())
    }

    /// This restart's id while restoring (see [`Message::Push`]'s `restoring`).
    pub(super) fn restart_id(&self) -> Option<u64> {
        self.restoring.as_ref().map(|r| r.boot)
    }

    /// `peer` completed, intact, a catch-up answer to a request that asked for our own writes
    /// above our watermark for them, ending with `done`.
    pub(super) fn answered(&mut self, peer: RegionId, done: &Done, now: Now) {
        let yours = done.yours;
        self.maybe_census(peer, done, now);
        if yours > self.clock.last() {
            // Never issue again a stamp that a peer holds.
            self.clock.seed(yours);
            self.journal(|| Record::Clock { hlc: yours });
        }
        if let Some(b) = self.barrier.as_mut() {
            b.unanswered.remove(&peer);
        }
        self.check_barrier(now);
        if let Some(r) = self.restoring.as_mut() {
            r.waiting.remove(&peer);
        }
        self.finish_if_done(now);
    }

    /// Finishes the restoration once every peer answered and every census is complete.
    fn finish_if_done(&mut self, now: Now) {
        if self
            .restoring
            .as_ref()
            .is_some_and(|r| r.waiting.is_empty() && r.census.is_empty())
        {
            self.finish_restoring(now);
        }
    }

    /// Counts a key delta that a catch-up answer brought while restoring.
    pub(super) fn note_restored_keys(&mut self, n: usize) {
        if let Some(r) = self.restoring.as_mut() {
            r.keys += n as u64;
        }
    }

    /// A peer's answer showed it holds every write of ours up to `h`, and we hold everything
    /// it held of ours above our floor: we hold them all up to `h` too.
    pub(super) fn raise_floor(&mut self, h: Hlc) {
        let Some(r) = self.restoring.as_mut() else {
            return;
        };
        if h > r.floor {
            r.floor = h;
            self.journal(|| Record::Restoring { floor: h });
        }
    }

    /// Stops waiting for peers silent beyond the grace period (called after evictions).
    pub(super) fn give_up_on_evicted(&mut self, now: Now) {
        if let Some(r) = self.restoring.as_mut() {
            r.waiting.retain(|p| !self.evicted.contains(p));
            r.census.retain(|p, _| !self.evicted.contains(p));
        }
        self.finish_if_done(now);
    }

    fn finish_restoring(&mut self, now: Now) {
        let Some(r) = self.restoring.take() else {
            return;
        };
        self.journal(|| Record::Restored);
        self.stats.restored += 1;
        self.events.push_back(Event::Restored {
            after_ms: now.mono_ms.saturating_sub(r.since_mono),
            keys: r.keys,
        });
        // Peers learn from our next push that we vouch for our writes again, and ask us for
        // what they lack of them: make that push now rather than at the next interval.
        self.timers.set(Timer::CatchUp, now.mono_ms);
    }
}

/// Census: a restarted region whose persisted state is behind what it had reported may hold
/// keys that every region saw deleted (or expired) and that peers have since collected — a
/// session logged out after the backup was taken, say. Nobody can send such a key back (it
/// is gone), so the region lists its keys to each peer whose last report of it shows more than
/// the state it restarted from, and drops those a peer says are dead: the peer holds no such
/// key, yet its watermark covers the key's incarnation, so it held it and collected it. One
/// peer that collected a key is enough to know it is dead; a peer that still holds its
/// tombstone sends the tombstone in its catch-up answer anyway.
impl Replica {
    /// Starts a census with `peer` if its answer shows our persisted state is behind our last
    /// report.
    ///
    /// A peer's answer that was `unsettled` (see [`Done::unsettled`]) may have brought keys
    /// every other region collected: from the first such answer on, every other peer is
    /// censused (again, if it was before those keys arrived), whatever its report says.
    fn maybe_census(&mut self, peer: RegionId, done: &Done, now: Now) {
        if self.cfg.faults.no_census {
            return;
        }
        let Some(r) = self.restoring.as_mut() else {
            return;
        };
        let theirs: BTreeMap<RegionId, Hlc> = done.wm.iter().copied().collect();
        r.answer_wm.insert(peer, theirs.clone());
        if done.unsettled && r.tainted_by.insert(peer) {
            // What we censused before this answer's keys arrived did not cover them.
            let again: Vec<(RegionId, BTreeMap<RegionId, Hlc>)> = r
                .answer_wm
                .iter()
                .filter(|(p, _)| **p != peer)
                .map(|(p, wm)| (*p, wm.clone()))
                .collect();
            for (p, wm) in again {
                self.send_census(p, wm, now);
            }
            let Some(r) = self.restoring.as_mut() else {
                return;
            };
            r.censused.remove(&peer);
        }
        let Some(r) = self.restoring.as_ref() else {
            return;
        };
        if r.census.contains_key(&peer) || r.censused.contains(&peer) {
            return;
        }
        if r.tainted_by.is_empty() {
            if !r.had_keys {
                return;
            }
            let Some(report) = &done.your_report else {
                return;
            };
            let behind = report
                .iter()
                .any(|(o, h)| r.marks0.get(o).is_none_or(|m| h > m));
            if !behind {
                return;
            }
        }
        self.send_census(peer, theirs, now);
    }

    fn send_census(&mut self, peer: RegionId, theirs: BTreeMap<RegionId, Hlc>, now: Now) {
        // Only keys whose incarnation the peer could have held and collected.
        let keys: Vec<(Bytes, Reg<u64>)> = self
            .store
            .iter()
            .filter(|(_, st)| {
                theirs
                    .get(&st.cl.stamp.region)
                    .is_some_and(|w| st.cl.stamp.hlc <= *w)
            })
            .map(|(k, st)| (k.clone(), st.cl.clone()))
            .collect();
        let id = self.next_id;
        self.next_id += 1;
        let budget = (self.cfg.max_frame_bytes / 2).clamp(1024, 64 * 1024);
        let mut parts: Vec<Vec<(Bytes, Reg<u64>)>> = vec![Vec::new()];
        let mut size = 0;
        for (k, cl) in keys {
            let n = k.len() + 32;
            if size + n > budget && !parts.last().is_some_and(Vec::is_empty) {
                parts.push(Vec::new());
                size = 0;
            }
            size += n;
            if let Some(last) = parts.last_mut() {
                last.push((k, cl));
            }
        }
        let n = parts.len() as u32;
        for (seq, keys) in parts.into_iter().enumerate() {
            let seq = seq as u32;
            // Paced: handed out as the link has room, never dropped at a full queue (a
            // retry replaces what is still waiting of an earlier census).
            let frame = wire::encode(self.cfg.shard, &Message::CensusPart { id, seq, keys });
            self.stats.census_bytes += frame.len() as u64;
            self.answers.pace(peer, frame, seq == 0);
        }
        if let Some(r) = self.restoring.as_mut() {
            r.census.insert(
                peer,
                Census {
                    id,
                    parts: n,
                    answered: BTreeSet::new(),
                    progress: now.mono_ms,
                    wm: theirs,
                },
            );
        }
    }

    /// A restarted peer's census part: which of its keys are dead here.
    pub(super) fn on_census_part(
        &mut self,
        peer: RegionId,
        id: u64,
        seq: u32,
        keys: Vec<(Bytes, Reg<u64>)>,
    ) {
        let marks = self.marks();
        let dead: Vec<(Bytes, Reg<u64>)> = keys
            .into_iter()
            .filter(|(k, cl)| {
                self.store.get(k).is_none()
                    && !self.held.contains_key(k)
                    && marks
                        .get(&cl.stamp.region)
                        .is_some_and(|w| cl.stamp.hlc <= *w)
            })
            .collect();
        self.send(
            peer,
            Channel::CatchUp,
            &Message::CensusDead { id, seq, dead },
        );
    }

    /// A peer's answer to one of our census parts: drop what it says is dead, unless the key
    /// has a newer incarnation here since.
    pub(super) fn on_census_dead(
        &mut self,
        peer: RegionId,
        id: u64,
        seq: u32,
        dead: Vec<(Bytes, Reg<u64>)>,
        now: Now,
    ) {
        let current = self
            .restoring
            .as_ref()
            .and_then(|r| r.census.get(&peer))
            .is_some_and(|c| c.id == id);
        if !current {
            return;
        }
        for (k, cl) in dead {
            if self.store.get(&k).is_some_and(|st| st.cl == cl) {
                self.remove_key(&k);
                self.stats.census_dropped += 1;
            }
        }
        let complete = match self
            .restoring
            .as_mut()
            .and_then(|r| r.census.get_mut(&peer))
        {
            Some(c) => {
                c.answered.insert(seq);
                c.progress = now.mono_ms;
                c.answered.len() as u32 >= c.parts
            }
            None => false,
        };
        if complete {
            if let Some(r) = self.restoring.as_mut() {
                r.census.remove(&peer);
                r.censused.insert(peer);
            }
            self.finish_if_done(now);
        }
    }

    /// Censuses that made no progress for a while are sent again (a part or an answer was
    /// lost with a connection).
    pub(super) fn retry_censuses(&mut self, now: Now) {
        let patience = self
            .cfg
            .catchup_interval_ms
            .saturating_mul(CATCHUP_PATIENCE);
        let stale: Vec<(RegionId, BTreeMap<RegionId, Hlc>)> = match self.restoring.as_ref() {
            Some(r) => r
                .census
                .iter()
                .filter(|(p, c)| {
                    now.mono_ms >= c.progress.saturating_add(patience)
                        && self.peers.get(p).is_some_and(|p| p.connected)
                })
                .map(|(p, c)| (*p, c.wm.clone()))
                .collect(),
            None => return,
        };
        for (peer, wm) in stale {
            self.send_census(peer, wm, now);
        }
    }
}
