//! Timers: pushing local writes, periodic catch-up and reports, releasing held deltas,
//! evictions and garbage collection.

use super::*;

impl Replica {
    // ----- timers ----------------------------------------------------------------------------

    /// The next monotonic time at which [`Replica::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.timers.next().map(|(_, at)| at)
    }

    /// Runs whatever timers are due: push local writes, ask peers for what we missed, release
    /// held deltas, collect garbage.
    pub fn handle_timeout(&mut self, now: Now) {
        if self.barrier.is_some() {
            self.check_barrier(now);
            if self.barrier.is_some() && self.timers.due(Timer::Barrier, now) {
                // The wall clock runs slower than the monotonic one: look again shortly.
                self.timers.set(Timer::Barrier, now.mono_ms + 1);
            }
        }
        if self.timers.due(Timer::Route, now) {
            self.timers.set(
                Timer::Route,
                now.mono_ms + self.cfg.progress_interval_ms.max(1),
            );
            self.route(now);
        }
        if self.barrier.is_some() {
            // No stamp may be issued yet: pushes (each stamps its range), burials and
            // reports wait; catch-up requests, which stamp nothing, go out.
            if self.timers.due(Timer::CatchUp, now) {
                self.timers
                    .set(Timer::CatchUp, now.mono_ms + self.cfg.catchup_interval_ms);
                for peer in self.connected_peers() {
                    self.request_catchup(peer, now, false);
                }
            }
            if self.timers.due(Timer::Flush, now) {
                self.timers.set(Timer::Flush, None);
            }
            if self.timers.due(Timer::Gc, now) {
                self.timers
                    .set(Timer::Gc, now.mono_ms + self.cfg.gc_interval_ms);
            }
            return;
        }
        if self.timers.due(Timer::Release, now) {
            self.release_held(now);
            let again = (!self.held.is_empty()).then_some(now.mono_ms + HELD_RECHECK_MS);
            self.timers.set(Timer::Release, again);
        }
        if self.timers.due(Timer::Flush, now) {
            self.flush(now, false);
        }
        if self.timers.due(Timer::CatchUp, now) {
            self.timers
                .set(Timer::CatchUp, now.mono_ms + self.cfg.catchup_interval_ms);
            // The periodic push carries our report (and is sent even with nothing to push),
            // which is what lets peers collect garbage and answer WAIT.
            self.flush(now, true);
            for peer in self.connected_peers() {
                self.request_catchup(peer, now, false);
            }
        }
        if self.timers.due(Timer::Gc, now) {
            self.timers
                .set(Timer::Gc, now.mono_ms + self.cfg.gc_interval_ms);
            self.check_evictions(now);
            self.collect(now);
        }
    }

    /// Pushes our writes since the last push to every connected peer.
    pub(super) fn flush(&mut self, now: Now, with_report: bool) {
        self.timers.set(Timer::Flush, None);
        self.last_flush = Some(now.mono_ms);
        let me = self.cfg.region;
        let since = self.last_push_to;
        let peers = self.connected_peers();
        if peers.is_empty() {
            // Nobody to push to (a region alone, or cut off): building and encoding frames
            // for no one was a seventh of a pipelined SET's CPU in a region on its own. A peer
            // that connects later asks for what it lacks by catch-up, as it would anyway.
            if self.dirty.is_empty() && !with_report {
                return;
            }
            self.dirty.clear();
            let to = self.issue(now);
            self.pushed(to);
            return;
        }
        let mut entries: Vec<(Hlc, Entry)> = Vec::with_capacity(self.dirty.len());
        let ours = |s: Stamp| s.region == me && s.hlc > since;
        for (key, touched) in std::mem::take(&mut self.dirty) {
            let d = match touched {
                Touched::Delta(d) => d,
                Touched::Whole => {
                    let Some(d) = self.store.get(&key).and_then(|st| st.delta(ours)) else {
                        continue;
                    };
                    d
                }
            };
            // Skip deltas with nothing of ours in them (a key made dirty by a restart whose
            // writes were all pushed, or beaten since, say).
            let Some(lo) = d.min_stamp(ours) else {
                continue;
            };
            entries.push((lo.hlc, (key, d)));
        }
        if entries.is_empty() && !with_report {
            return;
        }
        // Frames cover consecutive stamp ranges, so a receiver that misses one never claims
        // to hold what it carried: sort by each delta's oldest register, cut, and end each
        // frame's range just below the first stamp of the next one. (One command writing
        // several keys stamps them alike: the key breaks the tie, whatever the table's order.)
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1 .0.cmp(&b.1 .0)));
        let to_final = self.issue(now);
        let restoring = self.restart_id();
        let relayed = if with_report {
            self.relayable_reports()
        } else {
            Vec::new()
        };
        let los: Vec<Hlc> = entries.iter().map(|(lo, _)| *lo).collect();
        let parts = self.cut(entries.into_iter().map(|(_, e)| e).collect());
        // The first push after a restart starts above every stamp issued before it.
        let mut from = since.max(self.push_floor);
        let mut idx = 0;
        let nparts = parts.len();
        for (i, part) in parts.into_iter().enumerate() {
            idx += part.len();
            let to = if i + 1 == nparts {
                to_final
            } else {
                Hlc(los[idx].0 - 1)
            };
            let last = i + 1 == nparts;
            let report = (with_report && last).then(|| Report {
                hlc: to,
                wm: self.watermarks(),
            });
            let msg = Message::Push {
                from,
                to,
                entries: part,
                report,
                relayed: if last { relayed.clone() } else { Vec::new() },
                restoring,
            };
            let bytes = wire::encode(self.cfg.shard, &msg);
            for p in &peers {
                self.count_sent(*p, bytes.len());
                self.outbox.push_back(Transmit {
                    to: *p,
                    channel: Channel::Delta,
                    bytes: bytes.clone(),
                });
            }
            from = to;
        }
        self.pushed(to_final);
    }

    /// Our writes up to `to` have been pushed (or had no one to go to).
    fn pushed(&mut self, to: Hlc) {
        self.last_push_to = to;
        self.push_history.push_back((to, self.stats.local_writes));
        if self.push_history.len() > PUSH_HISTORY {
            self.push_history.pop_front();
        }
        self.journal(|| Record::Pushed { to });
    }

    #[allow(
        clippy::expect_used,
        reason = "the keys released were just listed from the held table"
    )]
    pub(super) fn release_held(&mut self, now: Now) {
        if self.held.is_empty() {
            return;
        }
        let ready: Vec<Bytes> = self
            .held
            .iter()
            .filter(|(_, (st, _, _))| self.clock.check(st.max_stamp().hlc, now.wall_ms).is_ok())
            .map(|(k, _)| k.clone())
            .collect();
        let marks = self.marks();
        for k in ready {
            let (st, _, _) = self.held.remove(&k).expect("listed");
            self.journal(|| Record::Release { key: k.clone() });
            // Apply before lifting the floor: our watermark for the origin may already cover
            // these stamps (the push that carried them advanced it), and only the floor keeps
            // the filter from taking them for duplicates.
            self.apply_entry(&k, st, now, &marks, true);
        }
        self.refresh_held_floor();
        self.promote_reports();
    }

    /// A region silent for longer than the grace period stops counting for garbage collection
    /// until it is heard from again.
    pub(super) fn check_evictions(&mut self, now: Now) {
        let grace = self.cfg.tombstone_grace_ms;
        for (r, p) in self.peers.iter_mut() {
            let late = p.last_heard.saturating_add(grace) < now.mono_ms;
            if late && self.evicted.insert(*r) {
                self.events.push_back(Event::Evicted { region: *r });
            } else if !late && self.evicted.remove(r) {
                p.told_evicted = false;
            }
        }
        if !self.evicted.is_empty() {
            self.give_up_on_evicted(now);
        }
    }

    /// Collects tombstones and expired keys that are causally stable: every region that counts
    /// has reported holding all of the key's registers, and we hold everything each of them
    /// wrote before that report. For expired keys every such region's clock has also passed the
    /// expiry. See docs/DESIGN.md for why this never resurrects anything.
    pub(super) fn collect(&mut self, now: Now) {
        let now_ms = self.clock.now_ms(now.wall_ms);
        let unsafe_gc = self.cfg.faults.gc_without_stability;
        // floor[o]: every counted region holds every write of o up to floor[o].
        let mut floor: BTreeMap<RegionId, Hlc> = self
            .cfg
            .regions
            .iter()
            .map(|r| (*r, Hlc(u64::MAX)))
            .collect();
        if !unsafe_gc {
            // Our own watermarks count too: once collected, a stale copy of any of the key's
            // registers (a duplicate or late frame) must be recognised as already known, or it
            // would be taken for news and bring the key back.
            for (o, f) in floor.iter_mut() {
                *f = (*f).min(self.watermark(*o));
            }
        }
        let mut time_floor = now_ms;
        for (r, p) in &self.peers {
            if self.evicted.contains(r) || unsafe_gc {
                continue;
            }
            let Some(rep) = &p.report else { return };
            let marks: BTreeMap<RegionId, Hlc> = rep.wm.iter().copied().collect();
            for (o, f) in floor.iter_mut() {
                *f = (*f).min(marks.get(o).copied().unwrap_or(Hlc::ZERO));
            }
            time_floor = time_floor.min(rep.hlc.ms());
        }
        // A key with a delta held for clock skew is judged by its store state plus what is
        // held, and only the store state is here: the held delta may have superseded the very
        // registers (an older TTL) that make the store state look dead, and its merge into the
        // held table lifted the floor that would otherwise have kept the key unstable.
        let stable = |k: &Bytes, st: &KeyState| {
            !self.held.contains_key(k)
                && st
                    .origins()
                    .iter()
                    .all(|(o, h)| floor.get(o).is_some_and(|f| h <= f))
        };
        // Tombstones wait for every region, evicted ones included: a region away beyond the
        // grace period may still hold writes made concurrently with the delete, and the
        // tombstone is what makes them lose when they arrive. A tombstone has no body, so
        // keeping it costs the key and a few bytes.
        let everyone = self.evicted.is_empty() || unsafe_gc;
        let mut dead: Vec<Bytes> = self
            .store
            .tombstones()
            .filter(|k| {
                everyone
                    && self
                        .store
                        .get(k)
                        .is_some_and(|st| unsafe_gc || stable(k, st))
            })
            .cloned()
            .collect();
        // Expired (strictly before both our clock and every counted region's clock).
        dead.extend(
            self.store
                .expired_before(time_floor)
                .filter(|k| {
                    self.store
                        .get(k)
                        .is_some_and(|st| !st.is_deleted() && (unsafe_gc || stable(k, st)))
                })
                .cloned(),
        );
        for k in dead {
            let expired = self.store.get(&k).is_some_and(|st| !st.is_deleted());
            if expired {
                self.stats.expired += 1;
            }
            if expired && !everyone {
                self.bury(&k, now);
            } else {
                self.remove_key(&k);
            }
        }
    }

    /// The bounded rule for long absences: an expired key, stable among the regions that
    /// count, becomes a tombstone (a delete stamped by us) instead of being collected. The body
    /// is freed at once; the tombstone makes whatever the absent region wrote into the expired
    /// session meanwhile lose when it arrives, in every region alike, and is itself collected
    /// once everybody is back. Replicated like any local delete.
    pub(super) fn bury(&mut self, key: &Bytes, now: Now) {
        let Some(cl) = self.store.get(key).map(|st| st.cl.value) else {
            return;
        };
        let stamp = Stamp::new(self.issue(now), self.cfg.region);
        let delta = KeyState {
            cl: Reg::new(stamp, cl + 1),
            body: crate::crdt::Body::default(),
        };
        self.stats.conflicts += self.store.apply(key, &delta);
        self.dirty.insert(key.clone(), Touched::Whole);
        if !self.timers.armed(Timer::Flush) {
            self.timers.set(Timer::Flush, self.flush_due(now));
        }
        if self.record_writes {
            self.events.push_back(Event::Wrote {
                key: key.clone(),
                delta: Box::new(delta.clone()),
            });
        }
        self.journal(|| Record::Apply {
            key: key.clone(),
            delta,
        });
    }
}
