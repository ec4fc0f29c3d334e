//! The step contract: what a driver learns from the replica after each call, and the one rule
//! about when what a step produced may leave the process.
//!
//! Modelled on raft-rs's `Ready`: the core never performs IO, so everything a call changed
//! that the outside world must act on is *returned*, not inferred by the driver from before and
//! after readings. A **step** is everything done between two calls to [`Replica::ready`]: one
//! command, a pipelined batch or transaction, one frame, one timeout. [`Ready`] says what it
//! did; the frames it produced are polled as before ([`Replica::poll_transmit`],
//! [`Replica::poll_catchup`]), in quinn-proto's manner.
//!
//! # The durability rule
//!
//! A step's journal records ([`Ready::records`]) go to the durable log first. Nothing produced
//! by the step — the replies of its commands, the frames polled after it — may leave the
//! process before those records **and every record of earlier steps** are durable. A client
//! told "OK", or a peer told of a write (a push, an ack, a catch-up answer), must never see it
//! taken back by a crash: the peer would collect garbage or answer `WAIT` on its word, the
//! client would tell its user the session is saved. A step without records of its own waits
//! for the earlier ones all the same, since a read may return a write whose record is still
//! in flight to the disk. A driver without a log (`Config::journal` off) has nothing to wait
//! for.
//!
//! The node, the Redis server and the simulator all follow this rule from here: the node
//! queues `records` to its log and hands the resulting ticket to whatever must wait (the
//! server holds a batch's replies for it, the replication driver its frames); the simulator
//! appends them to its simulated disk before routing anything.

use super::*;

/// What one step did. Returned by [`Replica::ready`], which ends the step.
#[derive(Debug, Default)]
#[must_use = "a step's records must reach the log before its replies and frames leave"]
pub struct Ready {
    /// The step's number: 1 for the first step, one more for each `ready` call.
    pub step: u64,
    /// Journal records made in the step, in order (empty without [`Config::journal`]). See the
    /// module's durability rule: nothing the step produced leaves before these are durable.
    pub records: Vec<Record>,
    /// The stamp of the last local write command the step made, if it made one (what a
    /// connection remembers for `WAIT`).
    pub wrote: Option<Stamp>,
    /// The replica's next deadline ([`Replica::poll_timeout`]) after the step.
    pub deadline: Option<u64>,
    /// Whether that deadline is earlier than the one the previous step reported: a driver
    /// sleeping until the old one must wake to re-arm.
    pub sooner: bool,
}

/// The replica's timers: each fires [`Replica::handle_timeout`] work when its time comes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    /// Push local writes to peers (armed by a write, at most the flush interval after the
    /// previous push).
    Flush,
    /// Look again at deltas held back for clock skew (while any are held).
    Release,
    /// Ask connected peers for what we missed; push our report.
    CatchUp,
    /// Evictions and garbage collection.
    Gc,
    /// Progress notes and routing around stalled links.
    Route,
    /// After a restart: the stamp barrier's time bound (see `restore`).
    Barrier,
}

impl Timer {
    /// Every timer, in the order [`Replica::handle_timeout`] considers them.
    pub const ALL: [Timer; 6] = [
        Timer::Barrier,
        Timer::Route,
        Timer::Release,
        Timer::Flush,
        Timer::CatchUp,
        Timer::Gc,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// When each [`Timer`] fires next (monotonic ms), or `None` when it is not armed.
#[derive(Clone, Debug, Default)]
pub(super) struct Timers {
    at: [Option<u64>; 6],
}

impl Timers {
    /// The timers a new replica runs from the start: routing, catch-up and GC, due at once.
    pub(super) fn starting() -> Timers {
        let mut t = Timers::default();
        for timer in [Timer::Route, Timer::CatchUp, Timer::Gc] {
            t.set(timer, 0);
        }
        t
    }

    /// When `t` fires, if armed.
    pub(super) fn at(&self, t: Timer) -> Option<u64> {
        self.at[t.index()]
    }

    /// Arms `t` for `at`, or disarms it with `None`.
    pub(super) fn set(&mut self, t: Timer, at: impl Into<Option<u64>>) {
        self.at[t.index()] = at.into();
    }

    /// Whether `t` is armed and its time has come.
    pub(super) fn due(&self, t: Timer, now: Now) -> bool {
        self.at(t).is_some_and(|at| at <= now.mono_ms)
    }

    /// Whether `t` is armed.
    pub(super) fn armed(&self, t: Timer) -> bool {
        self.at(t).is_some()
    }

    /// The earliest armed timer and its time.
    pub(super) fn next(&self) -> Option<(Timer, u64)> {
        Timer::ALL
            .into_iter()
            .filter_map(|t| self.at(t).map(|at| (t, at)))
            .min_by_key(|(_, at)| *at)
    }
}

/// What [`Replica::ready`] compares against: the previous step's report.
#[derive(Clone, Debug, Default)]
pub(super) struct StepState {
    pub(super) step: u64,
    pub(super) wrote: Option<Stamp>,
    pub(super) deadline: Option<u64>,
}

impl Replica {
    /// Ends the current step and says what it did (see [`Ready`] and the durability rule in
    /// this module's docs). Call it after every call or batch of calls made under one hold of
    /// the replica, before anything the step produced leaves the process.
    pub fn ready(&mut self) -> Ready {
        let deadline = self.poll_timeout();
        let sooner = match (deadline, self.step.deadline) {
            (Some(new), Some(old)) => new < old,
            (Some(_), None) => true,
            (None, _) => false,
        };
        self.step.step += 1;
        self.step.deadline = deadline;
        Ready {
            step: self.step.step,
            records: std::mem::take(&mut self.records),
            wrote: self.step.wrote.take(),
            deadline,
            sooner,
        }
    }
}
