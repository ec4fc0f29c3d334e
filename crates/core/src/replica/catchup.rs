//! Catch-up (scuttlebutt): answering "send me what I miss", receiving the answer, and the
//! catch-up from nothing that follows an eviction.

use super::*;

impl Replica {
    // ----- catch-up and resync ---------------------------------------------------------------

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
            keys.extend(self.store.changed_since(*r, since(*r)).cloned());
        }
        let entries = keys.into_iter().filter_map(|k| {
            let st = self.store.get(&k)?;
            st.delta(|s| s.hlc > since(s.region)).map(|d| (k, d))
        });
        let parts = self.cut(entries.collect());
        self.send_parts(peer, id, parts);
    }

    /// Cuts entries into parts that fit the frame limit.
    pub(super) fn cut(&self, entries: Vec<Entry>) -> Vec<Vec<Entry>> {
        let budget = self.cfg.max_frame_bytes.saturating_sub(256).max(1024);
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

    pub(super) fn send_parts(&mut self, peer: RegionId, id: u64, parts: Vec<Vec<Entry>>) {
        let last = parts.len() - 1;
        let wm = self.watermarks();
        for (i, entries) in parts.into_iter().enumerate() {
            let done = (i == last).then(|| wm.clone());
            let seq = i as u32;
            let msg = Message::CatchUpPart {
                id,
                seq,
                entries,
                done,
            };
            self.send(peer, Channel::CatchUp, &msg);
        }
    }

    pub(super) fn on_catchup_part(
        &mut self,
        peer: RegionId,
        id: u64,
        seq: u32,
        entries: Vec<Entry>,
        done: Option<Watermarks>,
        now: Now,
    ) {
        self.apply_entries(peer, entries, now);
        let p = self.peers.get_mut(&peer).expect("checked");
        let Some((want, next, intact)) = p.catchup.as_mut() else {
            return;
        };
        if *want != id {
            return;
        }
        if seq != *next {
            *intact = false;
        }
        *next = seq + 1;
        if let Some(theirs) = done {
            let ok = *intact;
            p.catchup = None;
            if ok {
                // We now hold everything they held when they built the answer.
                self.advance(&theirs);
            }
        }
    }

    pub(super) fn advance(&mut self, theirs: &Watermarks) {
        for (r, h) in theirs {
            if *r == self.cfg.region {
                // See the `Ack` case in `inbound`: move past whatever of ours they hold.
                self.clock.seed(*h);
                continue;
            }
            self.set_wm(*r, *h);
        }
        self.promote_reports();
    }

    /// `peer` says we were away longer than the grace period. Ask it for everything (a
    /// catch-up from empty watermarks); our own writes stay and flow out by normal catch-up.
    pub(super) fn on_evicted(&mut self, peer: RegionId) {
        if self.cfg.faults.no_catchup {
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        if let Some(p) = self.peers.get_mut(&peer) {
            p.catchup = Some((id, 0, true));
        }
        let wm = self
            .cfg
            .regions
            .iter()
            .map(|r| {
                (
                    *r,
                    if *r == self.cfg.region {
                        self.clock.last()
                    } else {
                        Hlc::ZERO
                    },
                )
            })
            .collect();
        self.send(peer, Channel::CatchUp, &Message::CatchUpRequest { id, wm });
        self.events.push_back(Event::Resynced { peer });
    }
}
