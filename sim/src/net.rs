//! The virtual network: which frames arrive, when, and which connections exist.
//!
//! Two pieces, both plain data driven by [`crate::world`]:
//!
//! - [`Network`] decides the fate of one frame as a rule in turmoil's style: [`Verdict::Drop`]
//!   with a reason, or [`Verdict::Deliver`] after one or two (duplicated) delays of latency plus
//!   jitter. Jitter is what reorders frames. Partitions are counted per directed link, so
//!   overlapping partitions compose and a one-way partition blocks one direction only.
//! - [`Links`] models the QUIC connection of each pair of regions as its two ends see it: a cut
//!   link (or a crashed peer) is noticed only after an idle timeout, a healed link reconnects
//!   after a back-off, and a reconnect replaces the previous connection (frames still in flight
//!   on the old one are lost). Each change bumps the pair's generation so that timers scheduled
//!   for an outdated situation are ignored.
//!
//! - [`Capacity`] gives each directed link a bandwidth and each of its streams a bounded send
//!   queue, as the node's transport has (`transport.queue_bytes`): a frame is on the wire only
//!   after the frames queued before it, and a frame offered to a full queue is dropped, exactly
//!   where the transport drops it. The catch-up answers ask for room before they send, and
//!   their stream delivers in order ([`Capacity::in_order`]).
//!
//! Nothing here talks to a replica; the world turns the decisions into `handle_*` calls.

use crate::latency::LatencyMatrix;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sessionmesh_core::Channel;
use std::collections::VecDeque;

/// Why a frame was not delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// The sender had no connection to the receiver.
    NoConnection,
    /// A partition blocks the link.
    Partition,
    /// Random loss.
    Loss,
    /// The sender's queue for that stream was full (see [`Capacity`]).
    QueueFull,
}

/// What happens to one frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The frame is lost.
    Drop(DropReason),
    /// The frame arrives after each of these delays (two entries when duplicated).
    Deliver(Vec<u64>),
}

/// Link properties and partitions.
#[derive(Clone, Debug)]
pub struct Network {
    n: usize,
    latency: LatencyMatrix,
    jitter: f64,
    loss: f64,
    duplicate: f64,
    /// `blocked[from * n + to]`: how many active partitions cut this direction.
    blocked: Vec<u32>,
}

impl Network {
    /// A fully connected network of `n` regions.
    pub fn new(
        n: usize,
        latency: LatencyMatrix,
        jitter: f64,
        loss: f64,
        duplicate: f64,
    ) -> Network {
        Network {
            n,
            latency: latency.resized(n),
            jitter,
            loss,
            duplicate,
            blocked: vec![0; n * n],
        }
    }

    /// Adds (`+1`) or removes (`-1`) one partition's cut of the directed link `from → to`.
    pub fn block(&mut self, from: usize, to: usize, on: bool) {
        let b = &mut self.blocked[from * self.n + to];
        *b = if on { *b + 1 } else { b.saturating_sub(1) };
    }

    /// Repairs every link.
    pub fn heal(&mut self) {
        self.blocked.iter_mut().for_each(|b| *b = 0);
    }

    /// True when no partition cuts `from → to`.
    pub fn clear(&self, from: usize, to: usize) -> bool {
        self.blocked[from * self.n + to] == 0
    }

    /// One-way latency without jitter.
    pub fn latency(&self, from: usize, to: usize) -> u64 {
        self.latency.one_way(from, to)
    }

    /// The fate of a frame sent now from `from` to `to` on an open connection.
    pub fn verdict(&self, rng: &mut ChaCha8Rng, from: usize, to: usize) -> Verdict {
        if !self.clear(from, to) {
            return Verdict::Drop(DropReason::Partition);
        }
        if self.loss > 0.0 && rng.gen_bool(self.loss) {
            return Verdict::Drop(DropReason::Loss);
        }
        let mut delays = vec![self.delay(rng, from, to)];
        if self.duplicate > 0.0 && rng.gen_bool(self.duplicate) {
            delays.push(self.delay(rng, from, to));
        }
        Verdict::Deliver(delays)
    }

    fn delay(&self, rng: &mut ChaCha8Rng, from: usize, to: usize) -> u64 {
        let base = self.latency(from, to);
        let spread = (base as f64 * self.jitter) as u64;
        base + if spread > 0 {
            rng.gen_range(0..=spread)
        } else {
            0
        }
    }
}

/// Bandwidth of every directed link and the send queue of each of its streams.
///
/// A sender's frames leave one after the other at `bytes_per_ms`; a frame waits in its
/// stream's queue until the frames before it (on either stream: they share the connection) are
/// out, then crosses the network ([`Network::verdict`]'s delays start when it is out). A queue
/// holds at most `queue_bytes`; the transport drops a frame that does not fit, and so does this.
/// A simplification: a partitioned link still drains its queue (frames are then lost on the
/// wire), where QUIC would stop sending and fill it; both lose the frames.
#[derive(Clone, Debug)]
pub struct Capacity {
    n: usize,
    bytes_per_ms: u64,
    queue_bytes: usize,
    /// Per directed link: when the frames queued so far are all out.
    busy_until: Vec<u64>,
    /// Per directed link and stream: the frames still queued, as (out at, length).
    queued: Vec<VecDeque<(u64, usize)>>,
    /// Per directed link: when its latest catch-up frame arrives.
    catchup_arrives: Vec<u64>,
}

impl Capacity {
    /// Links of `bytes_per_ms` (0: unlimited, frames leave at once) with queues of
    /// `queue_bytes` per stream.
    pub fn new(n: usize, bytes_per_ms: u64, queue_bytes: usize) -> Capacity {
        Capacity {
            n,
            bytes_per_ms,
            queue_bytes,
            busy_until: vec![0; n * n],
            queued: vec![VecDeque::new(); n * n * 2],
            catchup_arrives: vec![0; n * n],
        }
    }

    fn slot(&self, from: usize, to: usize, ch: Channel) -> usize {
        (from * self.n + to) * 2 + usize::from(ch == Channel::CatchUp)
    }

    /// Forgets the frames that are out by `now`.
    fn prune(&mut self, slot: usize, now: u64) {
        let q = &mut self.queued[slot];
        while q.front().is_some_and(|(out, _)| *out <= now) {
            q.pop_front();
        }
    }

    /// Bytes the `ch` queue of `from → to` accepts now.
    pub fn room(&mut self, from: usize, to: usize, ch: Channel, now: u64) -> usize {
        let slot = self.slot(from, to, ch);
        self.prune(slot, now);
        let held: usize = self.queued[slot].iter().map(|(_, len)| len).sum();
        self.queue_bytes.saturating_sub(held)
    }

    /// Queues a frame of `len` bytes sent at `now`: when it is out on the wire, or `None` when
    /// its queue is full (the frame is dropped).
    pub fn send(
        &mut self,
        from: usize,
        to: usize,
        ch: Channel,
        len: usize,
        now: u64,
    ) -> Option<u64> {
        if self.room(from, to, ch, now) < len {
            return None;
        }
        if self.bytes_per_ms == 0 {
            return Some(now);
        }
        let link = from * self.n + to;
        let start = self.busy_until[link].max(now);
        let out = start + (len as u64).div_ceil(self.bytes_per_ms);
        self.busy_until[link] = out;
        let slot = self.slot(from, to, ch);
        self.queued[slot].push_back((out, len));
        Some(out)
    }

    /// When a catch-up frame that would arrive at `at` from `from` to `to` does arrive: not
    /// before the catch-up frames sent before it on that connection. The catch-up stream is
    /// modelled as the ordered QUIC stream it is, because an answer is a numbered sequence whose
    /// receiver discards it on a gap; the delta stream keeps the network's reordering and
    /// duplication, which the merge must (and does) not care about.
    pub fn in_order(&mut self, from: usize, to: usize, at: u64) -> u64 {
        let last = &mut self.catchup_arrives[from * self.n + to];
        *last = (*last).max(at);
        *last
    }

    /// The earliest time one of `from`'s `ch` queues gets room back (a queued frame goes out),
    /// if any frame is queued after `now`.
    pub fn next_out(&self, from: usize, ch: Channel, now: u64) -> Option<u64> {
        (0..self.n)
            .filter_map(|to| {
                self.queued[self.slot(from, to, ch)]
                    .iter()
                    .map(|(out, _)| *out)
                    .find(|out| *out > now)
            })
            .min()
    }

    /// The connection between `a` and `b` is gone or replaced: so are its queues (their frames
    /// are lost, as the world's epoch check says at delivery).
    pub fn drop_link(&mut self, a: usize, b: usize) {
        for (from, to) in [(a, b), (b, a)] {
            self.busy_until[from * self.n + to] = 0;
            self.catchup_arrives[from * self.n + to] = 0;
            for ch in [Channel::Delta, Channel::CatchUp] {
                let slot = self.slot(from, to, ch);
                self.queued[slot].clear();
            }
        }
    }
}

/// What the world should schedule for a pair after a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkPlan {
    /// Nothing to do.
    Nothing,
    /// Tell the ends that still believe in the connection that it is gone, after the idle
    /// timeout, if the generation is unchanged by then.
    Idle {
        /// The generation the event must match.
        gen: u64,
    },
    /// Establish a (new) connection after a back-off, if the generation is unchanged by then.
    Connect {
        /// The generation the event must match.
        gen: u64,
    },
}

/// Connection state of every pair, as each end believes it.
#[derive(Clone, Debug)]
pub struct Links {
    n: usize,
    /// `sees[a * n + b]`: `a`'s replica was told it is connected to `b` (and not since told
    /// otherwise).
    sees: Vec<bool>,
    /// Per unordered pair (`lo * n + hi`): generation of the latest change.
    gen: Vec<u64>,
    /// Per unordered pair: which connection is current (frames carry it).
    epoch: Vec<u64>,
}

impl Links {
    /// No connections yet.
    pub fn new(n: usize) -> Links {
        Links {
            n,
            sees: vec![false; n * n],
            gen: vec![0; n * n],
            epoch: vec![0; n * n],
        }
    }

    fn pair(&self, a: usize, b: usize) -> usize {
        a.min(b) * self.n + a.max(b)
    }

    /// Does `a` believe it is connected to `b`?
    pub fn sees(&self, a: usize, b: usize) -> bool {
        self.sees[a * self.n + b]
    }

    /// The current connection of the pair.
    pub fn epoch(&self, a: usize, b: usize) -> u64 {
        self.epoch[self.pair(a, b)]
    }

    /// Does the event for generation `gen` still apply?
    pub fn current(&self, a: usize, b: usize, gen: u64) -> bool {
        self.gen[self.pair(a, b)] == gen
    }

    /// `a` forgot all its connections (it crashed).
    pub fn forget(&mut self, a: usize) {
        for b in 0..self.n {
            self.sees[a * self.n + b] = false;
        }
    }

    /// Something about the pair changed; `viable` says whether a connection could work now
    /// (both ends up, both directions clear). Returns what to schedule.
    pub fn reassess(&mut self, a: usize, b: usize, viable: bool) -> LinkPlan {
        let p = self.pair(a, b);
        self.gen[p] += 1;
        let gen = self.gen[p];
        let (ab, ba) = (self.sees(a, b), self.sees(b, a));
        if viable {
            if ab && ba {
                LinkPlan::Nothing
            } else {
                LinkPlan::Connect { gen }
            }
        } else if ab || ba {
            LinkPlan::Idle { gen }
        } else {
            LinkPlan::Nothing
        }
    }

    /// The idle timeout fired: returns the ends that must be told `disconnected`.
    pub fn idle(&mut self, a: usize, b: usize) -> Vec<(usize, usize)> {
        let mut told = Vec::new();
        for (x, y) in [(a, b), (b, a)] {
            if self.sees(x, y) {
                self.sees[x * self.n + y] = false;
                told.push((x, y));
            }
        }
        told
    }

    /// A connection is established. Returns the ends that still believed in the previous one
    /// (they must first be told `disconnected`: the new connection replaces it).
    pub fn connect(&mut self, a: usize, b: usize) -> Vec<(usize, usize)> {
        let replaced = self.idle(a, b);
        let p = self.pair(a, b);
        self.epoch[p] += 1;
        self.sees[a * self.n + b] = true;
        self.sees[b * self.n + a] = true;
        replaced
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn partitions_compose_per_direction() {
        let mut net = Network::new(3, LatencyMatrix::builtin(3), 0.0, 0.0, 0.0);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        net.block(0, 1, true);
        net.block(0, 1, true);
        assert_eq!(
            net.verdict(&mut rng, 0, 1),
            Verdict::Drop(DropReason::Partition)
        );
        assert_eq!(net.verdict(&mut rng, 1, 0), Verdict::Deliver(vec![40]));
        net.block(0, 1, false);
        assert!(!net.clear(0, 1));
        net.block(0, 1, false);
        assert!(net.clear(0, 1));
    }

    #[test]
    fn queues_fill_and_drain_at_the_link_rate() {
        // 10 bytes per ms, 100-byte queues.
        let mut c = Capacity::new(2, 10, 100);
        assert_eq!(c.send(0, 1, Channel::CatchUp, 60, 0), Some(6));
        assert_eq!(c.room(0, 1, Channel::CatchUp, 0), 40);
        // Full: dropped, and the other stream still has its own queue (but shares the wire).
        assert_eq!(c.send(0, 1, Channel::CatchUp, 60, 0), None);
        assert_eq!(c.send(0, 1, Channel::Delta, 20, 0), Some(8));
        assert_eq!(c.next_out(0, Channel::CatchUp, 0), Some(6));
        assert_eq!(c.room(0, 1, Channel::CatchUp, 6), 100);
        assert_eq!(c.send(0, 1, Channel::CatchUp, 60, 6), Some(14));
        // The other direction is idle.
        assert_eq!(c.send(1, 0, Channel::CatchUp, 10, 0), Some(1));
        c.drop_link(1, 0);
        assert_eq!(c.room(0, 1, Channel::CatchUp, 6), 100);
        assert_eq!(c.send(0, 1, Channel::Delta, 10, 6), Some(7));
    }

    #[test]
    fn reconnect_replaces_and_flaps_are_ignored() {
        let mut l = Links::new(2);
        let LinkPlan::Connect { gen } = l.reassess(0, 1, true) else {
            panic!()
        };
        assert!(l.current(0, 1, gen));
        assert!(l.connect(0, 1).is_empty());
        // A cut: idle scheduled; healed before it fires: nothing to do, idle is stale.
        let LinkPlan::Idle { gen: idle } = l.reassess(0, 1, false) else {
            panic!()
        };
        assert_eq!(l.reassess(0, 1, true), LinkPlan::Nothing);
        assert!(!l.current(0, 1, idle));
        // Region 1 crashes and comes back before region 0 noticed: the reconnect replaces.
        l.forget(1);
        let LinkPlan::Connect { .. } = l.reassess(0, 1, true) else {
            panic!()
        };
        assert_eq!(l.connect(0, 1), vec![(0, 1)]);
        assert_eq!(l.epoch(0, 1), 2);
    }
}
