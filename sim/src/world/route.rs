//! Frames between the replicas: sending through the links' queues ([`Capacity`]) and the
//! network's verdict, delivery, and the catch-up parts that wait for room.

use super::{Ev, World};
use crate::net::{DropReason, Verdict};
use crate::oracle::rid;
use crate::outcome::Oracle;
use sessionmesh_core::{Channel, RegionId, Transmit};
use std::collections::BTreeMap;

impl World<'_> {
    /// Takes the catch-up parts region `i` has ready, as its links' queues have room for
    /// them (what `transmits` already sends on a catch-up stream counted), as the node's
    /// driver does with the transport's queues.
    pub(super) fn take_catchup(&mut self, i: usize, transmits: &mut Vec<Transmit>) {
        let now = self.now;
        let (nodes, cap, links) = (&mut self.nodes, &mut self.cap, &self.links);
        let Some(r) = nodes[i].replica.as_mut() else {
            return;
        };
        let mut taken: BTreeMap<RegionId, usize> = BTreeMap::new();
        for t in transmits.iter().filter(|t| t.channel == Channel::CatchUp) {
            *taken.entry(t.to).or_default() += t.bytes.len();
        }
        // The shards share the region's links: each counts what the others took.
        for shard in &mut r.0 {
            while let Some(t) = shard.poll_catchup(|p| {
                let to = usize::from(p.0).wrapping_sub(1);
                if !links.sees(i, to) {
                    return 0;
                }
                cap.room(i, to, Channel::CatchUp, now)
                    .saturating_sub(taken.get(&p).copied().unwrap_or(0))
            }) {
                *taken.entry(t.to).or_default() += t.bytes.len();
                transmits.push(t);
            }
        }
    }

    /// When region `i` still has catch-up parts waiting for room, comes back to it when the
    /// first of its queued catch-up frames is out (the transport's `drained`).
    pub(super) fn schedule_pump(&mut self, i: usize) {
        let now = self.now;
        let answering = self.nodes[i]
            .replica
            .as_ref()
            .is_some_and(|r| r.answering());
        if !answering {
            return;
        }
        let Some(at) = self.cap.next_out(i, Channel::CatchUp, now) else {
            return;
        };
        let node = &mut self.nodes[i];
        if node.pump_at.is_none_or(|p| p <= now || at < p) {
            node.pump_at = Some(at);
            self.push(at, Ev::Pump { region: i, at });
        }
    }

    pub(super) fn route(&mut self, from: usize, t: Transmit) {
        let to = usize::from(t.to.0).wrapping_sub(1);
        self.summary.frames_sent += 1;
        self.summary.bytes_sent += t.bytes.len() as u64;
        if t.channel == Channel::CatchUp {
            self.summary.catchup_bytes += t.bytes.len() as u64;
        }
        let ch = channel_code(t.channel);
        self.trace.words(&[self.now, 2, from as u64, to as u64, ch]);
        self.trace.bytes(&t.bytes);
        if to >= self.n || to == from {
            let detail = format!("{} sent a frame to unknown region {}", rid(from), t.to);
            self.oracles.report(Oracle::Wire, from, self.now, detail);
            return;
        }
        // On a connection, the frame waits for the frames queued before it, or is dropped
        // when its stream's queue is full, as the transport does.
        let mut out = self.now;
        let verdict = if !self.links.sees(from, to) {
            Verdict::Drop(DropReason::NoConnection)
        } else {
            match self.cap.send(from, to, t.channel, t.bytes.len(), self.now) {
                None => Verdict::Drop(DropReason::QueueFull),
                Some(at) => {
                    out = at;
                    self.net.verdict(&mut self.rng, from, to)
                }
            }
        };
        match verdict {
            Verdict::Drop(DropReason::NoConnection) => self.summary.dropped_no_conn += 1,
            Verdict::Drop(DropReason::Partition) => self.summary.dropped_partition += 1,
            Verdict::Drop(DropReason::Loss) => self.summary.dropped_loss += 1,
            Verdict::Drop(DropReason::QueueFull) => self.summary.dropped_queue_full += 1,
            Verdict::Deliver(mut delays) => {
                if t.channel == Channel::CatchUp {
                    // An ordered stream: no reordering, no duplicates (see `in_order`).
                    delays.truncate(1);
                    delays[0] = self.cap.in_order(from, to, out + delays[0]) - out;
                }
                let epoch = self.links.epoch(from, to);
                self.summary.duplicated += delays.len() as u64 - 1;
                let last = delays.len() - 1;
                let mut bytes = Some(t.bytes);
                for (k, d) in delays.into_iter().enumerate() {
                    let b = if k == last {
                        bytes.take().unwrap_or_default()
                    } else {
                        bytes.clone().unwrap_or_default()
                    };
                    let ev = Ev::Deliver {
                        from,
                        to,
                        channel: t.channel,
                        bytes: b,
                        epoch,
                    };
                    self.push(out + d, ev);
                }
            }
        }
    }

    pub(super) fn deliver(
        &mut self,
        from: usize,
        to: usize,
        channel: Channel,
        bytes: Vec<u8>,
        epoch: u64,
    ) {
        let ch = channel_code(channel);
        let current =
            self.alive(to) && self.links.sees(to, from) && self.links.epoch(from, to) == epoch;
        if !current {
            self.summary.dropped_stale += 1;
            self.trace
                .words(&[self.now, 3, from as u64, to as u64, ch, 1]);
            return;
        }
        if !self.net.clear(from, to) {
            self.summary.dropped_partition += 1;
            self.trace
                .words(&[self.now, 3, from as u64, to as u64, ch, 2]);
            return;
        }
        self.summary.frames_delivered += 1;
        if channel == Channel::CatchUp {
            if let Some(b) = self.nodes[to].restore_bytes.as_mut() {
                *b += bytes.len() as u64;
            }
        }
        let now = self.now_of(to);
        let res = match self.nodes[to].replica.as_mut() {
            Some(r) => r.handle_frame(rid(from), &bytes, now),
            None => return,
        };
        self.trace.words(&[
            self.now,
            3,
            from as u64,
            to as u64,
            ch,
            u64::from(res.is_err()),
        ]);
        if let Err(e) = res {
            let detail = format!(
                "{} rejected an intact {}-byte frame from {} on {channel:?}: {e:?}",
                rid(to),
                bytes.len(),
                rid(from)
            );
            self.oracles.report(Oracle::Wire, to, self.now, detail);
        }
        self.drain(to, false);
    }
}

pub(super) fn channel_code(c: Channel) -> u64 {
    match c {
        Channel::Delta => 0,
        Channel::CatchUp => 1,
    }
}
