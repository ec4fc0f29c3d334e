//! The journal of durable changes and recovery from it (the node's log replays it).

use super::*;

impl Replica {
    // ----- journal ---------------------------------------------------------------------------

    pub(super) fn journal(&mut self, r: impl FnOnce() -> Record) {
        if self.cfg.journal {
            self.records.push(r());
        }
    }

    pub(super) fn remove_key(&mut self, k: &Bytes) {
        self.store.remove(k);
        self.dirty.remove(k);
        self.stats.collected += 1;
        self.journal(|| Record::Remove { key: k.clone() });
    }

    pub(super) fn set_wm(&mut self, origin: RegionId, hlc: Hlc) {
        let w = self.wm.entry(origin).or_insert(Hlc::ZERO);
        if hlc > *w {
            *w = hlc;
            self.journal(|| Record::Watermark { origin, hlc });
        }
    }

    /// Rebuilds a replica from its last snapshot and the journal records written after it.
    /// Keys with our own writes newer than the last push are marked dirty again, and the clock
    /// is re-seeded above every stamp the persisted state saw.
    ///
    /// The persisted state may be older than what the region had issued (an empty data folder,
    /// a restored backup, a log that lost its tail): with other regions in the cluster, the
    /// replica starts restoring (see [`Replica::restoring`]) and holds stamps back until
    /// [`Replica::stamps_ready`].
    pub fn recover(
        cfg: Config,
        snap: Snapshot,
        records: impl IntoIterator<Item = Record>,
        now: Now,
    ) -> Replica {
        let journal = cfg.journal;
        // A restoration the crash interrupted resumes from its own floor.
        let mut interrupted = snap.restoring;
        let mut r = Replica::restore(
            Config {
                journal: false,
                ..cfg
            },
            snap,
            now,
        );
        // The greatest stamp any record carries: the clock must restart above it even if the
        // state that carried it was later replaced or collected.
        let mut seen = Hlc::ZERO;
        for rec in records {
            match rec {
                Record::Clock { hlc } => seen = seen.max(hlc),
                Record::Apply { key, delta } => {
                    seen = seen.max(delta.max_stamp().hlc);
                    r.store.apply(&key, &delta);
                }
                Record::Remove { key } => {
                    r.store.remove(&key);
                    r.dirty.remove(&key);
                }
                Record::Watermark { origin, hlc } => r.set_wm(origin, hlc),
                Record::Pushed { to } => r.last_push_to = r.last_push_to.max(to),
                Record::Hold {
                    key,
                    delta,
                    peer,
                    cl_new,
                } => r.hold(key, delta, peer, cl_new),
                Record::Release { key } => {
                    r.held.remove(&key);
                }
                Record::Restoring { floor } => interrupted = Some(floor),
                Record::Restored => interrupted = None,
            }
        }
        let me = r.cfg.region;
        // The index offers candidates; only keys that still hold a write of ours newer than
        // the last push need pushing again.
        let after = r.last_push_to;
        let dirty: Vec<Bytes> = r
            .store
            .changed_since(me, after)
            .filter(|k| {
                r.store
                    .get(k)
                    .is_some_and(|st| st.min_stamp(|s| s.region == me && s.hlc > after).is_some())
            })
            .cloned()
            .collect();
        r.dirty
            .extend(dirty.into_iter().map(|k| (k, Touched::Whole)));
        if !r.dirty.is_empty() {
            r.timers.set(Timer::Flush, now.mono_ms);
        }
        // Every write of ours stamped up to the clock as the persisted state last saw it is
        // in that state (stamps only grow, and a write is journalled in the step that
        // stamps it); watermarks of other origins are not clock values and do not count.
        let floor = interrupted.unwrap_or_else(|| {
            r.clock
                .last()
                .max(r.store.max_hlc())
                .max(r.last_push_to)
                .max(seen)
        });
        let wm_max = r.wm.values().copied().max().unwrap_or(Hlc::ZERO);
        r.clock
            .seed(r.store.max_hlc().max(r.last_push_to).max(wm_max).max(seen));
        r.refresh_held_floor();
        if !r.held.is_empty() {
            r.timers.set(Timer::Release, now.mono_ms);
        }
        r.cfg.journal = journal;
        if !r.cfg.faults.no_restore {
            r.begin_restoring(floor, now);
        }
        r
    }
}
