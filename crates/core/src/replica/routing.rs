//! Progress, not connection, decides routing; hearing of a region, not from it, keeps it
//! counted.
//!
//! - **Progress notes.** Every `Ack` carries the sender's watermarks, and a region sends each
//!   connected peer one at least every `progress_interval_ms` while its watermarks move. A
//!   region whose own watermark for an origin `o` stays below what a peer said it holds of `o`
//!   for longer than `reroute_after_ms` treats its link to `o` as down for replication, however
//!   connected it looks (a cut link is only noticed at the idle timeout; a lossy one may never
//!   be): it asks that peer for `o`'s writes at once and keeps doing so while the gap lasts.
//! - **Relayed reports.** The periodic push carries the newest report the sender holds of
//!   every other region. A report newer than any we had of its region is proof that the region
//!   was alive when it made it, so a region heard of through others is not evicted however long
//!   its direct link is cut; and once our watermark covers it, it serves garbage collection as
//!   a report received directly would.

use super::*;

/// A peer's word that it holds writes of an origin that we do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Claim {
    /// It holds every write of the origin up to here.
    pub(super) hlc: Hlc,
    /// Monotonic time we first heard it (the claim matures from then).
    pub(super) since: u64,
    /// Who said so: the peer asked when the claim matures.
    pub(super) via: RegionId,
}

impl Replica {
    /// Notes a peer's watermarks (from an `Ack`): origins it holds more of than we do.
    pub(super) fn note_progress(&mut self, peer: RegionId, wm: &Watermarks, now: Now) {
        for &(o, h) in wm {
            if o == self.cfg.region || o == peer || !self.peers.contains_key(&o) {
                continue;
            }
            let ours = self.wm.get(&o).copied().unwrap_or(Hlc::ZERO);
            if h <= ours {
                continue;
            }
            match self.claims.get(&o) {
                // An older claim still unmet keeps its age, so that it matures.
                Some(c) if c.hlc > ours => {}
                _ => {
                    self.claims.insert(
                        o,
                        Claim {
                            hlc: h,
                            since: now.mono_ms,
                            via: peer,
                        },
                    );
                }
            }
        }
    }

    /// Whether our copy of `origin`'s writes has been behind a peer's for too long.
    pub(super) fn stalled(&self, origin: RegionId, now_mono: u64) -> bool {
        let ours = self.wm.get(&origin).copied().unwrap_or(Hlc::ZERO);
        self.claims.get(&origin).is_some_and(|c| {
            c.hlc > ours && now_mono.saturating_sub(c.since) >= self.cfg.reroute_after_ms
        })
    }

    /// The progress timer: fetch stalled origins' writes through whoever has them, and tell
    /// connected peers how far we are when that moved and nothing told them lately.
    pub(super) fn route(&mut self, now: Now) {
        // Met claims are dropped; stalled ones are fetched from the peer that made them.
        let wm = &self.wm;
        self.claims
            .retain(|o, c| c.hlc > wm.get(o).copied().unwrap_or(Hlc::ZERO));
        let mut ask: Vec<RegionId> = self
            .claims
            .iter()
            .filter(|(o, _)| self.stalled(**o, now.mono_ms))
            .map(|(_, c)| c.via)
            .filter(|v| self.peers.get(v).is_some_and(|p| p.connected))
            .collect();
        ask.sort_unstable();
        ask.dedup();
        for peer in ask {
            self.stats.reroutes += 1;
            self.request_catchup(peer, now, false);
        }
        self.retry_censuses(now);
        let marks = self.watermarks();
        let due: Vec<RegionId> = self
            .peers
            .iter()
            .filter(|(_, p)| {
                p.connected
                    && p.told != marks
                    && now.mono_ms.saturating_sub(p.told_at) >= self.cfg.progress_interval_ms
            })
            .map(|(r, _)| *r)
            .collect();
        for peer in due {
            self.send_ack(peer, now);
        }
    }

    /// Acknowledges `peer`'s writes and tells it our watermarks.
    #[allow(clippy::expect_used, reason = "acks go only to configured peers")]
    pub(super) fn send_ack(&mut self, peer: RegionId, now: Now) {
        let upto = self.watermark(peer);
        let wm = self.watermarks();
        let run = {
            let p = self.peers.get_mut(&peer).expect("known peer");
            p.told_at = now.mono_ms;
            p.told.clone_from(&wm);
            p.run
        };
        self.send(peer, Channel::Delta, &Message::Ack { upto, run, wm });
    }

    /// A report of `region`, made by it and received from it or relayed by another region.
    pub(super) fn note_report(&mut self, region: RegionId, rep: Report, now: Now) {
        let mark = self.watermark(region);
        let Some(p) = self.peers.get_mut(&region) else {
            return;
        };
        // A pending report already covered is promoted before a newer one replaces it, or
        // reports relayed faster than their writes arrive would never be usable.
        if p.pending_report.as_ref().is_some_and(|r| r.hlc <= mark) {
            p.report = p.pending_report.take();
        }
        let newest = p
            .pending_report
            .as_ref()
            .or(p.report.as_ref())
            .map(|r| r.hlc);
        if newest.is_some_and(|h| rep.hlc <= h) {
            return;
        }
        // It was alive when it made this report: heard of, if not from.
        p.last_heard = p.last_heard.max(now.mono_ms);
        p.pending_report = Some(rep);
    }

    /// The newest report we hold of every other region, for the periodic push.
    pub(super) fn relayable_reports(&self) -> Vec<(RegionId, Report)> {
        self.peers
            .iter()
            .filter_map(|(r, p)| {
                let rep = p.pending_report.as_ref().or(p.report.as_ref())?;
                Some((*r, rep.clone()))
            })
            .collect()
    }
}
