//! Faults and links: partitions, crashes and restarts, and the connection notifications they
//! cause (`handle_connected` / `handle_disconnected`, after the modelled detection delays).
//!
//! Part of [`crate::world`]; the decisions about which connections exist live in
//! [`crate::net::Links`], this file turns them into replica calls and queue events.

use super::Shards;
use super::{Durable, Ev, World};
use crate::config::Disk;
use crate::net::LinkPlan;
use crate::oracle::rid;
use rand::Rng;

impl World<'_> {
    pub(super) fn tell_link(&mut self, x: usize, y: usize, up: bool) {
        self.trace
            .words(&[self.now, 8, x as u64, y as u64, u64::from(up)]);
        let now = self.now_of(x);
        let Some(r) = self.nodes[x].replica.as_mut() else {
            return;
        };
        if up {
            r.handle_connected(rid(y), now);
        } else {
            self.summary.disconnects += 1;
            r.handle_disconnected(rid(y), now);
        }
        self.drain(x, false);
    }

    pub(super) fn reassess(&mut self, a: usize, b: usize) {
        let viable = self.alive(a) && self.alive(b) && self.net.clear(a, b) && self.net.clear(b, a);
        match self.links.reassess(a, b, viable) {
            LinkPlan::Nothing => {}
            LinkPlan::Idle { gen } => self.push(
                self.now + self.cfg.idle_timeout_ms,
                Ev::LinkIdle { a, b, gen },
            ),
            LinkPlan::Connect { gen } => {
                let rtt = self.net.latency(a, b) + self.net.latency(b, a);
                let backoff = self.rng.gen_range(0..=self.cfg.reconnect_ms);
                // A handshake takes about one and a half round trips.
                self.push(
                    self.now + backoff + rtt * 3 / 2,
                    Ev::LinkConnect { a, b, gen },
                );
            }
        }
    }

    pub(super) fn reassess_region(&mut self, i: usize) {
        for o in 0..self.n {
            if o != i {
                self.reassess(i, o);
            }
        }
    }

    pub(super) fn partition(&mut self, idx: usize, on: bool) {
        if self.healed || self.active[idx] == on {
            return;
        }
        self.active[idx] = on;
        let p = self.schedule.partitions[idx];
        if on {
            self.summary.partitions += 1;
        }
        self.trace.words(&[self.now, 6, idx as u64, u64::from(on)]);
        let links = p.cut.links(self.n as u16);
        for &(f, t) in &links {
            self.net.block(usize::from(f) - 1, usize::from(t) - 1, on);
        }
        let mut pairs: Vec<(usize, usize)> = links
            .iter()
            .map(|&(f, t)| {
                let (f, t) = (usize::from(f) - 1, usize::from(t) - 1);
                (f.min(t), f.max(t))
            })
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        for (a, b) in pairs {
            self.reassess(a, b);
        }
    }

    pub(super) fn crash(&mut self, i: usize, down_ms: u64, disk: Disk) {
        if self.healed || !self.alive(i) {
            return;
        }
        let Some(mut r) = self.nodes[i].replica.take() else {
            return;
        };
        for (s, shard) in r.0.iter().enumerate() {
            self.oracles
                .check_clock(i, s as u16, shard.clock_last(), self.now, "at crash");
        }
        // What each shard had persisted: its last checkpoint and every journal record since
        // (under `durability = "always"`, everything it applied). Frames in flight are lost.
        let node = &mut self.nodes[i];
        for (s, shard) in r.0.iter_mut().enumerate() {
            let issued = shard.last_issued().max(node.issued_before_crash[s]);
            node.issued_before_crash[s] = issued;
            node.durable[s].log.extend(shard.ready().records);
        }
        drop(r);
        let shards = node.durable.len();
        let mut durable = std::mem::take(&mut node.durable);
        // What the disk holds at the restart (the same for every shard: one disk).
        let since = match disk {
            Disk::Kept => None,
            Disk::Lost => {
                durable = vec![Durable::default(); shards];
                node.backups.clear();
                Some(0)
            }
            Disk::RolledBack { age_ms } => {
                let cut = self.now.saturating_sub(age_ms);
                while node.backups.back().is_some_and(|(t, _)| *t > cut) {
                    node.backups.pop_back();
                }
                let (at, snapshots) = node
                    .backups
                    .back()
                    .cloned()
                    .unwrap_or_else(|| (0, vec![Default::default(); shards]));
                durable = snapshots
                    .into_iter()
                    .map(|snapshot| Durable {
                        snapshot,
                        log: Vec::new(),
                    })
                    .collect();
                Some(at)
            }
        };
        let parts = |d: &[Durable]| {
            d.iter()
                .map(|d| (d.snapshot.clone(), d.log.clone()))
                .collect::<Vec<_>>()
        };
        let view = Shards::recover(self.replica_configs(i), parts(&durable), self.now_of(i));
        let node = &mut self.nodes[i];
        node.down_view = Some(view);
        node.restore = Some(Box::new(move |cfgs, now| {
            let parts = durable.into_iter().map(|d| (d.snapshot, d.log)).collect();
            Shards::recover(cfgs, parts, now)
        }));
        if let Some(since) = since {
            node.must_exceed = node.issued_before_crash.iter().copied().map(Some).collect();
            match disk {
                Disk::Lost => self.summary.disks_lost += 1,
                _ => self.summary.rollbacks += 1,
            }
            self.lose_writes(i, since);
        }
        let node = &mut self.nodes[i];
        node.crashes += 1;
        node.timer_gen += 1;
        node.timer_at = None;
        let crash = node.crashes;
        self.summary.crashes += 1;
        self.trace.words(&[self.now, 7, i as u64, 0]);
        self.links.forget(i);
        for b in 0..self.n {
            self.cap.drop_link(i, b);
        }
        self.reassess_region(i);
        let at = (self.now + down_ms).min(self.cfg.duration_ms);
        self.push(at, Ev::Restart { region: i, crash });
    }

    pub(super) fn restart(&mut self, i: usize) {
        let Some(restore) = self.nodes[i].restore.take() else {
            return;
        };
        let now = self.now_of(i);
        let r = restore(self.replica_configs(i), now);
        // The recovered state is the new baseline, as after the node's first snapshot.
        self.nodes[i].durable = r
            .snapshots()
            .into_iter()
            .map(|snapshot| Durable {
                snapshot,
                log: Vec::new(),
            })
            .collect();
        self.nodes[i].down_view = None;
        for (s, shard) in r.0.iter().enumerate() {
            let issued = if self.nodes[i].must_exceed[s].is_some() {
                // Restarted from less than everything: its clock may start lower; its first
                // stamp is checked instead (`check_first_stamp`).
                sessionmesh_core::Hlc::ZERO
            } else {
                self.nodes[i].issued_before_crash[s]
            };
            self.oracles
                .check_restart(i, s as u16, shard.clock_last(), issued, self.now);
        }
        self.nodes[i].replica = Some(r);
        self.nodes[i].restore_bytes = Some(0);
        self.trace.words(&[self.now, 7, i as u64, 1]);
        self.drain(i, false);
        self.reassess_region(i);
    }
}

impl World<'_> {
    /// Whether a scheduled partition cuts `from → to` at `t` (before the heal).
    fn cut_at(&self, from: usize, to: usize, t: u64) -> bool {
        let n = self.n as u16;
        let (f, d) = ((from + 1) as u16, (to + 1) as u16);
        !self.healed
            && t < self.cfg.duration_ms
            && self.schedule.partitions.iter().any(|p| {
                p.start_ms <= t
                    && t < p.end_ms.min(self.cfg.duration_ms)
                    && p.cut.links(n).contains(&(f, d))
            })
    }

    /// Region `i` lost its writes made since `since_ms`, and other regions' writes it took in,
    /// that no region holds any more: in its state, in its skew buffer, in what a crashed
    /// region will restart from (region `i` included, for others' writes), or in a frame in
    /// flight on a live connection. The oracles leave those out of the model.
    fn lose_writes(&mut self, i: usize, since_ms: u64) {
        use sessionmesh_core::wire::{self, Message};
        // Every key delta in flight to a region other than `i`.
        let mut flying: Vec<(bytes::Bytes, sessionmesh_core::KeyState)> = Vec::new();
        for q in self.queue.iter() {
            if let Ev::Deliver {
                from,
                to,
                bytes,
                epoch,
                ..
            } = &q.ev
            {
                // Frames to the crashed region die with it; frames from it still arrive where
                // their connection lives on (a receiver notices the crash only later).
                let live = self.alive(*to)
                    && self.links.sees(*to, *from)
                    && self.links.epoch(*from, *to) == *epoch;
                // A frame that a scheduled partition will drop on arrival holds nothing
                // (seed 989071: a push whose link was cut while it was on the way).
                if *to == i || !live || self.cut_at(*from, *to, q.at) {
                    continue;
                }
                match wire::decode(wire::frame_shard(bytes).unwrap_or(0), bytes, usize::MAX) {
                    Ok(Message::Push { entries, .. })
                    | Ok(Message::CatchUpPart { entries, .. }) => flying.extend(entries),
                    _ => {}
                }
            }
        }
        let views: Vec<&Shards> = (0..self.n)
            .filter(|j| *j != i)
            .filter_map(|j| {
                let n = &self.nodes[j];
                n.replica.as_ref().or(n.down_view.as_ref())
            })
            .collect();
        let covers = |st: &sessionmesh_core::KeyState, d: &sessionmesh_core::KeyState| {
            let mut m = st.clone();
            m.merge(d);
            m == *st
        };
        // What region `i` restarts from: it still holds other origins' writes it had
        // persisted by then (its own made since `since_ms` are, by definition, not in it).
        let recovered = self.nodes[i].down_view.as_ref();
        let held = |from: usize, key: &bytes::Bytes, d: &sessionmesh_core::KeyState| {
            let newest = d.max_stamp().hlc;
            let origin = rid(from);
            let mine = (from != i).then_some(recovered).flatten();
            views
                .iter()
                .copied()
                .chain(mine)
                .filter_map(|r| r.owner(key))
                .any(|r| {
                    r.watermark(origin) >= newest
                        || r.key_state(key).is_some_and(|st| covers(st, d))
                        || r.held_delta(key).is_some_and(|st| covers(st, d))
                })
                || flying.iter().any(|(k, st)| k == key && covers(st, d))
        };
        let n = self.oracles.lose_writes(i, since_ms, held);
        self.summary.writes_lost_with_disk += n;
    }
}
