//! Catch-up (scuttlebutt): answering "send me what I miss", receiving the answer, and the
//! catch-up from nothing that follows an eviction.

use super::*;

/// Catch-up and push parts aim at this size: large enough to amortise framing, small enough
/// that a part never approaches a receiver's frame limit.
const PART_TARGET: usize = 64 * 1024;

impl Replica {
    // ----- catch-up and resync ---------------------------------------------------------------

    #[allow(
        clippy::expect_used,
        reason = "the caller checked that the peer is known"
    )]
    pub(super) fn on_catchup_request(&mut self, peer: RegionId, id: u64, wm: &Watermarks) {
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
            if !self.store.history_reaches(*r, since(*r)) {
                self.stats.catchup_full_scans += 1;
            }
            keys.extend(self.store.changed_since(*r, since(*r)).cloned());
        }
        let mut entries: Vec<Entry> = keys
            .into_iter()
            .filter_map(|k| {
                let st = self.store.get(&k)?;
                st.delta(|s| s.hlc > since(s.region)).map(|d| (k, d))
            })
            .collect();
        // Deltas we hold back for clock skew are news to it too: a restarted origin may have
        // lost them, and must not claim its writes back without them.
        entries.extend(self.held.iter().filter_map(|(k, (st, _, _))| {
            st.delta(|s| s.hlc > since(s.region))
                .map(|d| (k.clone(), d))
        }));
        let held_max = self
            .held
            .values()
            .flat_map(|(st, _, _)| st.origins())
            .filter(|(o, _)| *o == peer)
            .map(|(_, h)| h)
            .max()
            .unwrap_or(Hlc::ZERO);
        let your_report = self.peers.get(&peer).and_then(|p| {
            p.prior_report
                .as_ref()
                .or(p.pending_report.as_ref())
                .or(p.report.as_ref())
                .map(|r| r.wm.clone())
        });
        let done = Done {
            your_report,
            wm: self.watermarks(),
            yours: self
                .store
                .max_of(peer)
                .max(held_max)
                .max(self.wm.get(&peer).copied().unwrap_or(Hlc::ZERO)),
        };
        let parts = self.cut(entries);
        self.send_parts(peer, id, parts, done);
    }

    /// Cuts entries into parts that fit the frame limit with a wide margin: the size estimate
    /// is cheap, not exact, and a frame over the receiver's limit closes the connection.
    #[allow(
        clippy::expect_used,
        reason = "the part list starts with one part and only grows"
    )]
    pub(super) fn cut(&self, entries: Vec<Entry>) -> Vec<Vec<Entry>> {
        let budget = (self.cfg.max_frame_bytes / 2).clamp(1024, PART_TARGET);
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

    pub(super) fn send_parts(&mut self, peer: RegionId, id: u64, parts: Vec<Vec<Entry>>, wm: Done) {
        // Parts still to send, front first; one that encodes over the frame limit despite the
        // margin in `cut` is split in two and retried, so no frame ever exceeds it (a single
        // key larger than the limit is sent anyway; `max_frame_bytes` must exceed it).
        let mut todo: std::collections::VecDeque<Vec<Entry>> = parts.into();
        let mut seq = 0u32;
        while let Some(entries) = todo.pop_front() {
            let done = todo.is_empty().then(|| wm.clone());
            let msg = Message::CatchUpPart {
                id,
                seq,
                entries,
                done,
            };
            let bytes = wire::encode(&msg);
            if bytes.len() > self.cfg.max_frame_bytes {
                if let Message::CatchUpPart { mut entries, .. } = msg {
                    if entries.len() > 1 {
                        let back = entries.split_off(entries.len() / 2);
                        todo.push_front(back);
                        todo.push_front(entries);
                        continue;
                    }
                    let msg = Message::CatchUpPart {
                        id,
                        seq,
                        entries,
                        done: todo.is_empty().then(|| wm.clone()),
                    };
                    self.send(peer, Channel::CatchUp, &msg);
                    seq += 1;
                    continue;
                }
            }
            self.count_sent(peer, bytes.len());
            self.outbox.push_back(Transmit {
                to: peer,
                channel: Channel::CatchUp,
                bytes,
            });
            seq += 1;
        }
    }

    #[allow(
        clippy::expect_used,
        reason = "the caller checked that the peer is known"
    )]
    pub(super) fn on_catchup_part(
        &mut self,
        peer: RegionId,
        id: u64,
        seq: u32,
        entries: Vec<Entry>,
        done: Option<Done>,
        now: Now,
    ) {
        self.note_restored_keys(entries.len());
        self.apply_entries(peer, entries, now);
        let p = self.peers.get_mut(&peer).expect("checked");
        let Some((want, next, intact, progress)) = p.catchup.as_mut() else {
            return;
        };
        if *want != id {
            return;
        }
        if seq != *next {
            *intact = false;
        }
        *next = seq + 1;
        *progress = now.mono_ms;
        if let Some(done) = done {
            let ok = *intact;
            p.catchup = None;
            let skipped = std::mem::take(&mut p.catchup_skipped);
            if ok {
                // We now hold everything they held when they built the answer, except of the
                // origins we told them to leave out. (Our own writes are never left out.)
                let theirs: Watermarks = done
                    .wm
                    .iter()
                    .copied()
                    .filter(|(r, _)| !skipped.contains(r))
                    .collect();
                self.advance(&theirs);
                self.answered(peer, &done, now);
            }
        }
    }

    pub(super) fn advance(&mut self, theirs: &Watermarks) {
        for (r, h) in theirs {
            if *r == self.cfg.region {
                // See the `Ack` case in `inbound`: move past whatever of ours they hold.
                if *h > self.clock.last() {
                    self.clock.seed(*h);
                    let hlc = *h;
                    self.journal(|| Record::Clock { hlc });
                }
                // They held every write of ours up to `h` and sent what they had of ours
                // above our floor: we hold them all up to `h` now.
                self.raise_floor(*h);
                continue;
            }
            self.set_wm(*r, *h);
            self.absorb_run(*r);
        }
        self.promote_reports();
    }

    /// `peer` says we were away longer than the grace period. Ask it for everything (a
    /// catch-up from empty watermarks); our own writes stay and flow out by normal catch-up.
    pub(super) fn on_evicted(&mut self, peer: RegionId, now: Now) {
        if self.cfg.faults.no_catchup {
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        if let Some(p) = self.peers.get_mut(&peer) {
            p.catchup = Some((id, 0, true, now.mono_ms));
            p.catchup_skipped.clear();
        }
        let wm = self
            .cfg
            .regions
            .iter()
            .map(|r| {
                (
                    *r,
                    if *r == self.cfg.region {
                        self.watermark(*r)
                    } else {
                        Hlc::ZERO
                    },
                )
            })
            .collect();
        let restoring = self.restart_id();
        self.send(
            peer,
            Channel::CatchUp,
            &Message::CatchUpRequest { id, wm, restoring },
        );
        self.events.push_back(Event::Resynced { peer });
    }
}
