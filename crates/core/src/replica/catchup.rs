//! Catch-up (scuttlebutt): answering "send me what I miss" (the parts themselves leave from
//! [`super::answer`]), receiving the answer, and the catch-up from nothing that follows an
//! eviction.

use super::*;

/// Push parts aim at this size: large enough to amortise framing, small enough that a part
/// never approaches a receiver's frame limit. (Catch-up parts take
/// [`Config::catchup_part_bytes`], which the node fits to its transport's queues.)
const PART_TARGET: usize = 64 * 1024;

impl Replica {
    // ----- catch-up and resync ---------------------------------------------------------------

    #[allow(
        clippy::expect_used,
        reason = "the caller checked that the peer is known"
    )]
    /// `peer` asks for what it lacks above `wm`; `restoring` says it restarted from less than
    /// everything (it is answered with whole key states, see [`Replica::start_answer`]).
    pub(super) fn on_catchup_request(
        &mut self,
        peer: RegionId,
        id: u64,
        wm: &Watermarks,
        restoring: bool,
    ) {
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
            unsettled: false,
            wm: self.watermarks(),
            yours: self
                .store
                .max_of(peer)
                .max(held_max)
                .max(self.wm.get(&peer).copied().unwrap_or(Hlc::ZERO)),
        };
        self.start_answer(peer, id, theirs, done, restoring);
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
                self.advance(&theirs, skipped.is_empty());
                self.answered(peer, &done, now);
            }
        }
    }

    /// Takes a complete catch-up answer's watermarks as ours; `whole` when the request left
    /// no origin out.
    pub(super) fn advance(&mut self, theirs: &Watermarks, whole: bool) {
        for (r, h) in theirs {
            if *r == self.cfg.region {
                // See the `Ack` case in `inbound`: move past whatever of ours they hold.
                if *h > self.clock.last() {
                    self.clock.seed(*h);
                    let hlc = *h;
                    self.journal(|| Record::Clock { hlc });
                }
                // They held every write of ours up to `h` and sent what they had of ours
                // above our floor: we hold them all up to `h` now. Only when the answer left
                // no origin out: a register of ours that they collected with its key counts
                // as known from here on, and a copy of that key still held elsewhere (not
                // yet collected there) would then arrive with our register dropped as old
                // news and the others kept — a session without its expiry, live for good
                // (seed 236668). With every origin advanced too, that copy's incarnation is
                // known and refused as dead instead.
                if whole {
                    self.raise_floor(*h);
                }
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
