//! The end of a run: gauge sampling during it, the heal, convergence probes and the final
//! oracles at quiescence.
//!
//! Part of [`crate::world`]; what counts as a violation is decided in [`crate::oracle`].

use super::{Ev, World};
use crate::oracle::{diff, rid, Live};
use crate::outcome::Oracle;
use sessionmesh_core::{shard, Now};

impl World<'_> {
    pub(super) fn sample(&mut self) {
        if self.done {
            return;
        }
        self.samples += 1;
        let check_expiry = self
            .samples
            .is_multiple_of(self.cfg.expiry_check_every.max(1));
        for i in 0..self.n {
            let now = self.now_of(i);
            let Some(r) = self.nodes[i].replica.as_ref() else {
                continue;
            };
            let s = r.stats();
            self.summary.max_index_entries = self.summary.max_index_entries.max(s.index_entries);
            self.summary.max_dirty = self.summary.max_dirty.max(s.dirty);
            self.summary.max_held = self.summary.max_held.max(s.held);
            // Per shard, against the keys written to it (each shard is a replica, with its own
            // fixed overhead), and for the region as a whole against every key and the
            // shards' overheads added up.
            // A replica's fixed overhead includes an open chunk of the origin index per
            // origin, whatever its share of the keys: a constant per shard, not per write.
            let fixed = (sessionmesh_core::origin_index::MIN_CHUNK * self.n) as u64;
            let bound = (self.cfg.memory_factor, self.cfg.memory_slack + fixed);
            let n = r.0.len() as u16;
            for (j, shard) in r.0.iter().enumerate() {
                let keys = self
                    .oracles
                    .distinct_keys_where(|k| usize::from(shard::shard_of_key(k, n)) == j);
                self.oracles
                    .check_memory(i, &shard.stats(), keys, self.now, bound);
            }
            let keys = self.oracles.distinct_keys();
            let region = (bound.0, bound.1 * u64::from(n));
            self.oracles.check_memory(i, &s, keys, self.now, region);
            if check_expiry {
                // Each shard judges expiry by its own clock (docs/DESIGN.md, "Shards").
                for shard in &r.0 {
                    let judged = shard.clock_last().ms().max(now.wall_ms);
                    let live = shard.live(now);
                    self.oracles.check_expiry(i, &live, judged, self.now);
                }
            }
        }
        self.push(self.now + self.cfg.sample_every_ms.max(1), Ev::Sample);
    }

    pub(super) fn heal(&mut self) {
        self.healed = true;
        self.summary.healed_at_ms = self.now;
        self.trace.words(&[self.now, 10]);
        self.active.iter_mut().for_each(|a| *a = false);
        self.net.heal();
        for i in 0..self.n {
            if !self.alive(i) {
                self.restart(i);
            }
        }
        for a in 0..self.n {
            for b in a + 1..self.n {
                self.reassess(a, b);
            }
        }
        self.push(self.now + self.cfg.probe_every_ms.max(1), Ev::Probe);
    }

    /// The common time at which all regions' states are compared: no region's own notion of
    /// "now" is later, so each judges expiry exactly there.
    pub(super) fn common_now(&self) -> Now {
        let wall = (0..self.n)
            .filter_map(|i| {
                let r = self.nodes[i].replica.as_ref()?;
                Some(r.clock_last().ms().max(self.nodes[i].clock.wall(self.now)))
            })
            .max()
            .unwrap_or(0);
        Now {
            mono_ms: self.now,
            wall_ms: wall,
        }
    }

    pub(super) fn probe(&mut self) {
        if self.done {
            return;
        }
        let common = self.common_now();
        let mut digests = Vec::with_capacity(self.n);
        let mut busy = false;
        for node in &self.nodes {
            let Some(r) = node.replica.as_ref() else {
                busy = true;
                continue;
            };
            digests.push(r.digest(common));
            let s = r.stats();
            busy |= s.dirty > 0 || s.held > 0;
        }
        self.trace.words(&[self.now, 11]);
        self.trace.words(&digests);
        let agree = digests.windows(2).all(|w| w[0] == w[1]);
        if agree && !busy {
            self.summary.converge_ms = Some(self.now - self.summary.healed_at_ms);
            self.push(self.now + self.cfg.linger_ms, Ev::Final);
        } else if self.now >= self.summary.healed_at_ms + self.cfg.settle_ms {
            self.final_check("deadline");
        } else {
            // Probe often right after the heal, then back off: a digest reads every key.
            let since = self.now - self.summary.healed_at_ms;
            let every = self.cfg.probe_every_ms.max(1);
            let every = if since > 20 * every { every * 4 } else { every };
            self.push(self.now + every, Ev::Probe);
        }
    }

    /// The oracles at quiescence (or at the deadline): convergence, model, expiry.
    pub(super) fn final_check(&mut self, when: &str) {
        self.done = true;
        let common = self.common_now();
        let lives: Vec<Option<Live>> = self
            .nodes
            .iter()
            .map(|n| n.replica.as_ref().map(|r| r.live(common)))
            .collect();
        let expected = self.oracles.expected(common.wall_ms);
        if let Some(k) = self.cfg.explain_key.clone() {
            self.explain
                .push(format!("{} end, judged at {}", self.now, common.wall_ms));
            self.explain
                .push(format!("  model: {:?}", self.oracles.model_state(&k)));
            for (i, n) in self.nodes.iter().enumerate() {
                let st = n.replica.as_ref().map(|r| r.key_state(&k).cloned());
                self.explain.push(format!("  {}: {st:?}", rid(i)));
            }
        }
        let converged = self.summary.converge_ms.is_some();
        for (i, l) in lives.iter().enumerate() {
            let Some(l) = l else {
                let detail = format!("{} is still down at the end ({when})", rid(i));
                self.oracles
                    .report(Oracle::Converge, usize::MAX, self.now, detail);
                continue;
            };
            if i > 0 {
                if let Some(l0) = &lives[0] {
                    if let Some(d) = diff(l0, &rid(0).to_string(), l, &rid(i).to_string()) {
                        let detail = if converged {
                            format!("diverged again after converging ({when}): {d}")
                        } else {
                            let settle = self.cfg.settle_ms;
                            format!("did not converge within {settle} ms after the heal: {d}")
                        };
                        self.oracles
                            .report(Oracle::Converge, usize::MAX, self.now, detail);
                    }
                }
            }
            self.oracles.check_model(i, l, &expected, self.now);
        }
        for i in 0..self.n {
            let now = self.now_of(i);
            let Some(r) = self.nodes[i].replica.as_ref() else {
                continue;
            };
            for shard in &r.0 {
                let judged = shard.clock_last().ms().max(now.wall_ms);
                self.oracles
                    .check_expiry(i, &shard.live(now), judged, self.now);
            }
            let live = r.live(now);
            let s = r.stats();
            self.summary.collected += s.collected;
            self.summary.catchup_full_scans += s.catchup_full_scans;
            self.summary.census_bytes += s.census_bytes;
            let wms: Vec<String> = (0..self.n)
                .map(|o| format!("{}:{}", rid(o), r.watermark(rid(o))))
                .collect();
            self.summary.regions_end.push(format!(
                "{}: keys {} tombstones {} held {} dirty {} index {} conflicts {} clock {} wall {} wm [{}]",
                rid(i),
                s.keys,
                s.tombstones,
                s.held,
                s.dirty,
                s.index_entries,
                s.conflicts,
                r.clock_last(),
                now.wall_ms,
                wms.join(" ")
            ));
            if i == 0 {
                self.summary.live_keys = live.len() as u64;
            }
        }
        if self.summary.converge_ms.is_none() && !self.oracles.broke(Oracle::Converge) {
            let gauges: Vec<String> = (0..self.n)
                .filter_map(|i| {
                    let s = self.nodes[i].replica.as_ref()?.stats();
                    Some(format!("{}: dirty {} held {}", rid(i), s.dirty, s.held))
                })
                .collect();
            let detail = format!(
                "did not converge ({when}): live states agree but deltas stay pending ({})",
                gauges.join(", ")
            );
            self.oracles
                .report(Oracle::Converge, usize::MAX, self.now, detail);
        }
    }
}
