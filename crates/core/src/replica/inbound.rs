//! Frames from peers: pushes, acks, and applying remote deltas (filtering what we have,
//! holding what is from the future, refusing collected incarnations).

use super::*;

impl Replica {
    // ----- frames --------------------------------------------------------------------------

    /// Handles one complete frame from `peer`. A malformed frame is rejected whole, counted and
    /// reported; the caller should close the connection.
    #[allow(
        clippy::expect_used,
        reason = "the frame's peer was checked to be known on entry"
    )]
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
        let msg = match wire::decode(self.cfg.shard, frame, self.cfg.max_frame_bytes) {
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
                relayed,
                restoring,
            } => {
                self.note_peer_restart(peer, restoring);
                for (r, rep) in relayed {
                    if r != peer {
                        self.note_report(r, rep, now);
                    }
                }
                let restoring = restoring.is_some();
                self.on_push(
                    peer,
                    Pushed {
                        from,
                        to,
                        restoring,
                    },
                    entries,
                    report,
                    now,
                );
            }
            Message::Ack { upto, run, wm } => {
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
                p.acked_run = run;
                if let Some(n) = held {
                    p.acked_writes = p.acked_writes.max(n);
                }
                self.note_progress(peer, &wm, now);
                // A peer may hold writes of ours that we lost (a restart that did not
                // persist its last moment): never issue those stamps again, or the peer would
                // take the new writes for ones it has.
                if upto > self.clock.last() {
                    self.clock.seed(upto);
                    self.journal(|| Record::Clock { hlc: upto });
                }
            }
            Message::CatchUpRequest { id, wm, restoring } => {
                if restoring.is_some() {
                    self.note_peer_restart(peer, restoring);
                }
                self.on_catchup_request(peer, id, &wm, restoring.is_some());
            }
            Message::CensusPart { id, seq, keys } => self.on_census_part(peer, id, seq, keys),
            Message::CensusDead { id, seq, dead } => self.on_census_dead(peer, id, seq, dead, now),
            Message::CatchUpPart {
                id,
                seq,
                entries,
                done,
            } => self.on_catchup_part(peer, id, seq, entries, done, now),
            Message::Evicted => self.on_evicted(peer, now),
            Message::Publish { channel, message } => {
                self.events.push_back(Event::Published {
                    peer,
                    channel,
                    message,
                });
            }
        }
        Ok(())
    }

    #[allow(
        clippy::expect_used,
        reason = "the frame's peer was checked to be known on entry"
    )]
    pub(super) fn on_push(
        &mut self,
        peer: RegionId,
        push: Pushed,
        entries: Vec<Entry>,
        report: Option<Report>,
        now: Now,
    ) {
        let Pushed {
            from,
            to,
            restoring,
        } = push;
        self.peers.get_mut(&peer).expect("checked").clock_offset_ms =
            to.ms() as i64 - now.wall_ms as i64;
        if let Some(rep) = report {
            self.note_report(peer, rep, now);
        }
        self.apply_entries(peer, entries, now);
        // A restoring sender cannot vouch for the writes it lost, which lie below `from`:
        // its pushes never advance our watermark for it, however they line up.
        let contiguous = !restoring && self.wm.get(&peer).copied().unwrap_or(Hlc::ZERO) >= from;
        let p = self.peers.get_mut(&peer).expect("checked");
        let was_gap = p.push_gap;
        // Not a gap to repair from a restoring sender: it does not have what we lack.
        p.push_gap = !contiguous && !restoring;
        if contiguous {
            p.run = None;
            self.set_wm(peer, to);
        } else {
            p.run = match p.run {
                Some((a, b)) if b >= from => Some((a, b.max(to))),
                _ => Some((from, to)),
            };
        }
        self.promote_reports();
        self.send_ack(peer, now);
        if p_gap_opened(was_gap, !contiguous && !restoring) {
            // One of its pushes went missing (or it just finished restoring): ask now rather
            // than at the next interval.
            self.request_catchup(peer, now, false);
        }
    }

    /// What a peer says of its restarts: `Some(id)` while it restores after restart `id`,
    /// `None` once it vouches for its writes again. A new restart voids its earlier reports
    /// for garbage collection (it may have lost what they claimed); the newest of them is kept
    /// to tell it (see `Done::your_report`).
    pub(super) fn note_peer_restart(&mut self, peer: RegionId, restoring: Option<u64>) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        if p.restoring == restoring {
            return;
        }
        match restoring {
            Some(_) => {
                let newest = p.pending_report.take().or(p.report.take());
                if newest.is_some() {
                    p.prior_report = newest;
                }
                p.report = None;
            }
            None => p.prior_report = None,
        }
        p.restoring = restoring;
    }

    /// Our watermark for `origin` moved: a run of its pushes that now lines up with it counts
    /// as held too.
    pub(super) fn absorb_run(&mut self, origin: RegionId) {
        let w = self.wm.get(&origin).copied().unwrap_or(Hlc::ZERO);
        let Some(p) = self.peers.get_mut(&origin) else {
            return;
        };
        match p.run {
            Some((a, b)) if a <= w => {
                p.run = None;
                p.push_gap = false;
                self.set_wm(origin, b);
            }
            _ => {}
        }
    }

    /// Moves pending reports whose writes we now hold into place.
    pub(super) fn promote_reports(&mut self) {
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
    pub(super) fn apply_entries(&mut self, peer: RegionId, entries: Vec<Entry>, now: Now) {
        let mut max_ahead = 0;
        // Watermarks do not move while a frame's entries are applied (they advance after, and
        // the held floor is refreshed after): read them once per frame, not once per key.
        let marks = self.marks();
        for (key, st) in entries {
            let max = st.max_stamp().hlc;
            if let Err(e) = self.clock.check(max, now.wall_ms) {
                max_ahead = max_ahead.max(e.ahead_ms);
                // Hold only what is news: a register we already have must not pull our
                // watermark (capped by what we hold) below where it stood.
                let known = |s: Stamp| marks.get(&s.region).is_some_and(|w| s.hlc <= *w);
                let whole = self.takes_whole(&key);
                if let Some(d) = st.into_delta(|s| whole || !known(s)) {
                    let cl_new = !known(d.cl.stamp);
                    self.hold(key, d, peer, cl_new);
                }
                continue;
            }
            self.apply_entry(&key, st, now, &marks, false);
        }
        if max_ahead > 0 {
            self.refresh_held_floor();
            if !self.timers.armed(Timer::Release) {
                self.timers
                    .set(Timer::Release, now.mono_ms + HELD_RECHECK_MS);
            }
            self.events.push_back(Event::ClockSkew {
                peer,
                ahead_ms: max_ahead,
            });
        }
    }

    pub(super) fn hold(&mut self, key: Bytes, st: KeyState, peer: RegionId, cl_new: bool) {
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

    pub(super) fn refresh_held_floor(&mut self) {
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
    pub(super) fn marks(&self) -> BTreeMap<RegionId, Hlc> {
        self.cfg
            .regions
            .iter()
            .map(|r| (*r, self.watermark(*r)))
            .collect()
    }

    /// Applies one remote key delta.
    /// Whether an incoming state of `key` is taken whole, registers we count as known
    /// included: while restoring, for a key we do not hold. Our watermarks may have risen
    /// with a peer's answer that left out keys it had collected; a copy of such a key still
    /// held by another peer (collection runs at different times in each region) would
    /// otherwise lose the registers of those origins as old news — the expiry that killed a
    /// session, say, leaving it live for good (found by `generated_schedules_converge`, seed
    /// 381523). Taken whole, it is as dead here as there; its incarnation, if known, is still
    /// refused as collected (see [`Replica::apply_entry`]).
    fn takes_whole(&self, key: &Bytes) -> bool {
        self.restoring.is_some() && self.store.get(key).is_none()
    }

    pub(super) fn apply_entry(
        &mut self,
        key: &Bytes,
        st: KeyState,
        now: Now,
        marks: &BTreeMap<RegionId, Hlc>,
        released: bool,
    ) {
        let known = |s: Stamp| marks.get(&s.region).is_some_and(|w| s.hlc <= *w);
        let whole = self.takes_whole(key);
        let Some(mut delta) = st.into_delta(|s| whole || !known(s)) else {
            return;
        };
        let max = delta.max_stamp().hlc;
        let was = self.notify
            && self
                .store
                .get(key)
                .is_some_and(|k| k.is_visible(self.clock.now_ms(now.wall_ms)));
        // Most deltas are for keys we hold: merge those with one lookup.
        let held = if self.cfg.faults.merge_prefers_local {
            if let Some(local) = self.store.get(key) {
                plant_local_preference(local, &mut delta);
            }
            None
        } else {
            self.store.apply_existing(key, &delta)
        };
        let conflicts = match held {
            Some(c) => c,
            None if self.store.get(key).is_none()
                && (known(delta.cl.stamp)
                    || (!released
                        && !self.held.contains_key(key)
                        && self.raw_watermark(delta.cl.stamp.region) >= delta.cl.stamp.hlc)) =>
            {
                // We held this incarnation and collected it: whatever still arrives of it was
                // concurrent with its delete (or from before its expiry) and must stay dead.
                // Judged by the watermark before the skew buffer's floor too: that floor lowers
                // what we claim to hold for as long as deltas wait in the buffer, and with it
                // lowered a late copy of a collected key came back to life, partial (found by
                // `generated_schedules_converge`, seed 65049: a catch-up answer delayed by a
                // partition carried a session every region had expired and collected). A key
                // waiting in the buffer, or just `released` from it, is not collected: the
                // buffer's floor is what kept those stamps from counting as held.
                self.stats.conflicts += delta.register_count();
                return;
            }
            None => self.store.apply(key, &delta),
        };
        let _ = self.clock.observe(max, now.wall_ms);
        self.stats.conflicts += conflicts;
        if self.notify {
            let now_ms = self.clock.now_ms(now.wall_ms);
            self.notify_change(key, &delta, was, now_ms);
        }
        self.journal(|| Record::Apply {
            key: key.clone(),
            delta,
        });
    }
}

/// The range a push covers, and whether its sender is restoring.
pub(super) struct Pushed {
    pub(super) from: Hlc,
    pub(super) to: Hlc,
    pub(super) restoring: bool,
}

/// Whether a push opened a gap that the previous one had not.
fn p_gap_opened(was: bool, now: bool) -> bool {
    now && !was
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
