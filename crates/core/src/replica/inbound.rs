//! Frames from peers: pushes, acks, and applying remote deltas (filtering what we have,
//! holding what is from the future, refusing collected incarnations).

use super::*;

impl Replica {
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
                // A peer may hold writes of ours that we lost (a restart that did not
                // persist its last moment): never issue those stamps again, or the peer would
                // take the new writes for ones it has.
                if upto > self.clock.last() {
                    self.clock.seed(upto);
                    self.journal(|| Record::Clock { hlc: upto });
                }
            }
            Message::CatchUpRequest { id, wm } => self.on_catchup_request(peer, id, &wm),
            Message::CatchUpPart {
                id,
                seq,
                entries,
                done,
            } => self.on_catchup_part(peer, id, seq, entries, done, now),
            Message::Evicted => self.on_evicted(peer, now),
        }
        Ok(())
    }

    pub(super) fn on_push(
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
        let contiguous = self.wm.get(&peer).copied().unwrap_or(Hlc::ZERO) >= from;
        if contiguous {
            self.set_wm(peer, to);
        }
        self.peers.get_mut(&peer).expect("checked").push_gap = !contiguous;
        self.promote_reports();
        let upto = self.watermark(peer);
        self.send(peer, Channel::Delta, &Message::Ack { upto });
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
                if let Some(d) = st.into_delta(|s| !known(s)) {
                    let cl_new = !known(d.cl.stamp);
                    self.hold(key, d, peer, cl_new);
                }
                continue;
            }
            self.apply_entry(&key, st, now, &marks);
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
    pub(super) fn apply_entry(
        &mut self,
        key: &Bytes,
        st: KeyState,
        now: Now,
        marks: &BTreeMap<RegionId, Hlc>,
    ) {
        let known = |s: Stamp| marks.get(&s.region).is_some_and(|w| s.hlc <= *w);
        let Some(mut delta) = st.into_delta(|s| !known(s)) else {
            return;
        };
        let max = delta.max_stamp().hlc;
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
            None if self.store.get(key).is_none() && known(delta.cl.stamp) => {
                // We held this incarnation and collected it: whatever still arrives of it was
                // concurrent with its delete (or from before its expiry) and must stay dead.
                self.stats.conflicts += delta.register_count();
                return;
            }
            None => self.store.apply(key, &delta),
        };
        let _ = self.clock.observe(max, now.wall_ms);
        self.stats.conflicts += conflicts;
        self.journal(|| Record::Apply {
            key: key.clone(),
            delta,
        });
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
