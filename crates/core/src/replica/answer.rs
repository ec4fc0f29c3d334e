//! Catch-up answers, produced part by part as the link to each requester has room.
//!
//! An answer used to be built whole — every delta cut into parts, every part encoded — under
//! the replica lock, and pushed into the transport's bounded queue at once: an answer larger
//! than the queue lost its tail, the requester saw the gap and asked again, and got the same
//! answer, cut short at the same place, for ever.
//!
//! Now a request takes a **snapshot** of what the answer will hold: the keys that may have
//! news for the requester, each with its state shared with the store ([`SharedState`]: a
//! reference count, not a copy; the store copies an entry before it next changes it), and the
//! deltas held back for clock skew. That is the only work done for the whole answer at once,
//! and it is the cheap part (no delta is built and nothing is encoded). The answer's `done`
//! (watermarks and the rest) is read at the same moment, so it describes exactly the state the
//! parts are cut from, as when the answer was built whole.
//!
//! [`Replica::poll_catchup`] then cuts and encodes **one part at a time**, at most
//! [`Config::catchup_part_bytes`] of deltas, and hands it out only when the driver says the
//! requester's catch-up stream has room for it; a part that does not fit yet waits, encoded, in
//! its cursor. The driver asks again when the stream drains. So no part is ever dropped for want
//! of queue space, the work done per lock hold is bounded by a part, and an answer of any size
//! completes on a link of any speed.
//!
//! A restored region's census (see `restore`) lists its keys in parts that are made whole;
//! they too leave through [`Replica::poll_catchup`] as the link has room ([`Answers::pace`]), so
//! a census larger than the queue is not cut short and retried for ever either.
//!
//! # Sharing
//!
//! Parts are encoded once ([`wire::encode_entries`]) and framed per requester around those
//! bytes ([`wire::encode_part`]: the request id, sequence number and `done` differ). Requests
//! with the same watermarks (several regions catching up from nothing, say) that arrive while
//! an answer for them is still at its first part share it: one snapshot, one encoding, a
//! cursor each. A part is dropped once every cursor has sent it.
//!
//! Why a shared snapshot may be older than the request it answers: it is a valid answer of an
//! earlier moment, as if the request had been answered then and the parts delayed by the
//! network — which the protocol tolerates (§4 of `docs/DESIGN.md` covers any delay) — with one
//! exception: a key *removed* from the store in between (collected, or dropped by a
//! resynchronisation) could reach a region that restarted from less than everything and cannot
//! recognise it as dead. So an answer is shared only while the store has removed nothing since
//! its snapshot ([`Store::removals`]).

use super::*;
use std::sync::Arc;

/// One answer's snapshot and the parts cut from it so far.
#[derive(Debug)]
pub(super) struct Answer {
    /// The requesters' watermarks it answers (missing origins: nothing held).
    since: BTreeMap<RegionId, Hlc>,
    /// [`Store::removals`] when the snapshot was taken.
    removals: u64,
    /// Our watermarks when the snapshot was taken (every `done` says these).
    wm: Watermarks,
    /// Keys not yet cut into a part, in key order, then the held-back deltas.
    pending: VecDeque<(Bytes, SharedState)>,
    /// Encoded entries of the parts cut and not yet sent by every cursor; `parts[0]` is part
    /// number `first`.
    parts: VecDeque<Arc<Vec<u8>>>,
    first: usize,
    /// Whether `pending` is used up: the last part in `parts` is the answer's last.
    complete: bool,
    /// Whether we were restoring with a census to come when the snapshot was taken (see
    /// [`Done::unsettled`]).
    unsettled: bool,
    /// Whether every key with news goes whole, not only its registers above `since` (the
    /// requester is restoring: see [`Replica::start_answer`]).
    whole: bool,
}

/// One requester's progress through an answer.
#[derive(Debug)]
pub(super) struct Cursor {
    /// Index of the answer in [`Replica::answers`].
    answer: u64,
    /// The request id, echoed in every part.
    id: u64,
    /// The next part to send.
    next: usize,
    /// What the last part says (ours at the snapshot, and what we knew of the requester when
    /// it asked).
    done: Done,
    /// The next part, framed, when the link had no room for it yet.
    ready: Option<Vec<u8>>,
}

/// The answers in progress and who is reading them.
#[derive(Debug, Default)]
pub(super) struct Answers {
    by_id: BTreeMap<u64, Answer>,
    next_id: u64,
    cursors: BTreeMap<RegionId, Cursor>,
    /// Encoded catch-up-stream frames that must not be dropped either and are made whole (a
    /// restored region's census parts): handed out, in order, as the peer's stream has room.
    paced: BTreeMap<RegionId, VecDeque<Vec<u8>>>,
    /// The peer served last, so that parts go round the requesters in turn.
    last_served: Option<RegionId>,
}

impl Answers {
    /// Stops answering `peer` (its link went down, or it asked again).
    pub(super) fn cancel(&mut self, peer: RegionId) {
        if let Some(c) = self.cursors.remove(&peer) {
            self.release(c.answer);
        }
    }

    /// Stops answering `peer` and forgets the paced frames for it (its link went down).
    pub(super) fn forget(&mut self, peer: RegionId) {
        self.cancel(peer);
        self.paced.remove(&peer);
    }

    /// Queues `frame` for `peer` behind the paced frames already queued for it; `fresh`
    /// drops those first (they belong to an exchange this one replaces).
    pub(super) fn pace(&mut self, peer: RegionId, frame: Vec<u8>, fresh: bool) {
        let q = self.paced.entry(peer).or_default();
        if fresh {
            q.clear();
        }
        q.push_back(frame);
    }

    /// Whether any answer or paced frame is waiting for room on some link.
    pub(super) fn any(&self) -> bool {
        !self.cursors.is_empty() || !self.paced.is_empty()
    }

    /// Drops the parts every cursor of `answer` has sent, and the answer once no cursor reads
    /// it.
    fn release(&mut self, answer: u64) {
        let min_next = self
            .cursors
            .values()
            .filter(|c| c.answer == answer)
            .map(|c| c.next)
            .min();
        let Some(a) = self.by_id.get_mut(&answer) else {
            return;
        };
        match min_next {
            None => {
                self.by_id.remove(&answer);
            }
            Some(n) => {
                while a.first < n && !a.parts.is_empty() {
                    a.parts.pop_front();
                    a.first += 1;
                }
            }
        }
    }
}

impl Answer {
    /// Cuts the next part from `pending`: deltas of at most about `budget` bytes (at least one),
    /// re-cut smaller if its frame would pass `max_frame` (a single key larger than that is
    /// sent anyway; `max_frame_bytes` must exceed it).
    fn cut(&mut self, budget: usize, max_frame: usize) {
        let since = |r: RegionId| self.since.get(&r).copied().unwrap_or(Hlc::ZERO);
        let mut entries: Vec<Entry> = Vec::new();
        let mut size = 0;
        while let Some((k, st)) = self.pending.front() {
            let news = st.delta(|s| s.hlc > since(s.region));
            let Some(d) = news.map(|d| if self.whole { KeyState::clone(st) } else { d }) else {
                self.pending.pop_front();
                continue;
            };
            let n = wire::approx_size(k, &d);
            if size + n > budget && !entries.is_empty() {
                break;
            }
            size += n;
            entries.push((k.clone(), d));
            self.pending.pop_front();
        }
        let mut bytes = wire::encode_entries(&entries);
        // The frame adds the header and `done` (watermarks: small) to the entries.
        while bytes.len() + 1024 > max_frame && entries.len() > 1 {
            for (k, d) in entries.drain(entries.len() / 2..).rev() {
                self.pending.push_front((k, SharedState::from(d)));
            }
            bytes = wire::encode_entries(&entries);
        }
        self.parts.push_back(Arc::new(bytes));
        self.complete = self.pending.is_empty();
    }
}

impl Replica {
    /// Starts answering `peer`'s catch-up request `id`: snapshots what the answer holds, or
    /// joins an answer to the same watermarks still at its first part. Parts leave through
    /// [`Replica::poll_catchup`].
    ///
    /// A `restoring` requester gets every key with news **whole**. Its watermarks may have
    /// risen with another peer's answer that left out keys that peer had collected, while we
    /// still hold one of them (collection runs at different times in each region): cut to its
    /// registers above those watermarks, that key would arrive without the ones the requester
    /// is taken to hold — a session without the expiry that killed it, live for good (found by
    /// `generated_schedules_converge`, seed 381523). Whole, it arrives as dead as it is here.
    /// A region that did not restart holds every register below its watermarks, or a state
    /// that supersedes it, so the registers above them are all it needs.
    pub(super) fn start_answer(
        &mut self,
        peer: RegionId,
        id: u64,
        mut since: BTreeMap<RegionId, Hlc>,
        done: Done,
        restoring: bool,
    ) {
        self.answers.cancel(peer);
        // An origin of which the requester holds at least everything we hold contributes
        // nothing to the answer, whatever its exact watermark: say so the same way for every
        // requester, so that requests differing only there (each region's own watermark, for
        // one) share an answer.
        for r in &self.cfg.regions {
            let held = self
                .held
                .values()
                .flat_map(|(st, _, _)| st.origins())
                .filter(|(o, _)| o == r)
                .map(|(_, h)| h)
                .max()
                .unwrap_or(Hlc::ZERO);
            let at = since.get(r).copied().unwrap_or(Hlc::ZERO);
            if at >= self.store.max_of(*r).max(held) {
                since.insert(*r, Hlc(u64::MAX));
            }
        }
        let removals = self.store.removals();
        let unsettled = self.unsettled();
        let shared = self.answers.by_id.iter().find_map(|(aid, a)| {
            (a.since == since
                && a.removals == removals
                && a.unsettled == unsettled
                && a.whole == restoring
                && a.first == 0)
                .then_some(*aid)
        });
        let answer = match shared {
            Some(aid) => {
                self.stats.catchup_answers_shared += 1;
                aid
            }
            None => {
                let mut answer = self.snapshot_answer(since, done.wm.clone());
                answer.unsettled = unsettled;
                answer.whole = restoring;
                let aid = self.answers.next_id;
                self.answers.next_id += 1;
                self.answers.by_id.insert(aid, answer);
                aid
            }
        };
        let wm = self.answers.by_id.get(&answer).map(|a| a.wm.clone());
        self.answers.cursors.insert(
            peer,
            Cursor {
                answer,
                id,
                next: 0,
                done: Done {
                    wm: wm.unwrap_or(done.wm),
                    unsettled,
                    ..done
                },
                ready: None,
            },
        );
    }

    /// The snapshot of an answer to `since`: every key that may hold a register the requester
    /// lacks (the origin index says which), in store order, and the deltas held back for clock
    /// skew, which are news to it too (a restarted origin may have lost them, and must not
    /// claim its writes back without them).
    fn snapshot_answer(&mut self, since: BTreeMap<RegionId, Hlc>, wm: Watermarks) -> Answer {
        let at = |r: RegionId| since.get(&r).copied().unwrap_or(Hlc::ZERO);
        let mut keys: BTreeSet<Bytes> = BTreeSet::new();
        for r in &self.cfg.regions {
            if !self.store.history_reaches(*r, at(*r)) {
                self.stats.catchup_full_scans += 1;
            }
            keys.extend(self.store.changed_since(*r, at(*r)).cloned());
        }
        let mut pending: VecDeque<(Bytes, SharedState)> =
            keys.iter().filter_map(|k| self.store.share(k)).collect();
        pending.extend(self.held.iter().filter_map(|(k, (st, _, _))| {
            st.delta(|s| s.hlc > at(s.region))
                .map(|d| (k.clone(), SharedState::from(d)))
        }));
        Answer {
            since,
            removals: self.store.removals(),
            wm,
            pending,
            parts: VecDeque::new(),
            first: 0,
            complete: false,
            unsettled: false,
            whole: false,
        }
    }

    /// The next part of a catch-up answer that fits its link: `room(peer)` is how many bytes
    /// the driver can queue to `peer`'s catch-up stream now (what it already took from this
    /// call's earlier returns deducted). Call until `None` after every step, and again when a
    /// catch-up stream drains. Each call cuts and encodes at most one part per requester.
    ///
    /// The frames obey the same rule as [`Replica::poll_transmit`]'s: they leave only once the
    /// journal records of the step are durable (see [`Replica::commit`]).
    pub fn poll_catchup(&mut self, mut room: impl FnMut(RegionId) -> usize) -> Option<Transmit> {
        let budget = self.cfg.catchup_part_bytes.max(1024);
        let max_frame = self.cfg.max_frame_bytes;
        let shard = self.cfg.shard;
        // Round robin: the peers after the one served last, then the rest.
        let order: Vec<RegionId> = {
            let after = self.answers.last_served;
            let peers: BTreeSet<RegionId> = self
                .answers
                .cursors
                .keys()
                .chain(self.answers.paced.keys())
                .copied()
                .collect();
            let (mut late, early): (Vec<RegionId>, Vec<RegionId>) = peers
                .into_iter()
                .partition(|p| after.is_some_and(|a| *p > a));
            late.extend(early);
            late
        };
        for peer in order {
            // Paced frames first: they were made before the part in progress.
            if let Some(q) = self.answers.paced.get_mut(&peer) {
                let fits = q
                    .front()
                    .is_some_and(|f| self.cfg.faults.catchup_ignores_room || f.len() <= room(peer));
                if fits {
                    let bytes = q.pop_front().unwrap_or_default();
                    if q.is_empty() {
                        self.answers.paced.remove(&peer);
                    }
                    self.answers.last_served = Some(peer);
                    self.count_sent(peer, bytes.len());
                    return Some(Transmit {
                        to: peer,
                        channel: Channel::CatchUp,
                        bytes,
                    });
                }
                continue;
            }
            let Some(c) = self.answers.cursors.get_mut(&peer) else {
                continue;
            };
            let Some(a) = self.answers.by_id.get_mut(&c.answer) else {
                continue;
            };
            if c.ready.is_none() {
                if c.next >= a.first + a.parts.len() && !a.complete {
                    a.cut(budget, max_frame);
                }
                let Some(part) = c.next.checked_sub(a.first).and_then(|i| a.parts.get(i)) else {
                    continue;
                };
                let last = a.complete && c.next + 1 == a.first + a.parts.len();
                c.ready = Some(wire::encode_part(
                    shard,
                    c.id,
                    c.next as u32,
                    part,
                    last.then_some(&c.done),
                ));
            }
            let fits = c
                .ready
                .as_ref()
                .is_some_and(|f| self.cfg.faults.catchup_ignores_room || f.len() <= room(peer));
            if !fits {
                continue;
            }
            let Some(bytes) = c.ready.take() else {
                continue;
            };
            c.next += 1;
            let answer = c.answer;
            let finished = a.complete && c.next == a.first + a.parts.len();
            if finished {
                self.answers.cursors.remove(&peer);
            }
            self.answers.release(answer);
            self.answers.last_served = Some(peer);
            self.count_sent(peer, bytes.len());
            return Some(Transmit {
                to: peer,
                channel: Channel::CatchUp,
                bytes,
            });
        }
        None
    }

    /// Whether some catch-up answer (or census part) still has frames to send (the driver then
    /// asks [`Replica::poll_catchup`] again when a catch-up stream drains).
    pub fn answering(&self) -> bool {
        self.answers.any()
    }
}
