//! The node's shards: each an independent replica behind its own lock, with its own log and
//! driver wake-up (see `sessionmesh_core::shard` for what a shard is and why nothing of the
//! replication protocol spans two).
//!
//! Lock order: a thread holds several shard locks only through [`Held`], which takes them in
//! ascending shard order; every other path holds one shard lock at a time. So no two holders
//! ever wait for each other (a cycle of waits would need one of them to wait for a lower shard
//! while holding a higher one). The few node-level mutexes taken under a shard lock (links,
//! catch-up reservations) are leaves: nothing is locked while holding them.

use super::*;
use sessionmesh_core::shard::{ShardSet, Shards};
use std::ops::{Deref, DerefMut};

/// One shard: its replica, its log, and what wakes its driver.
pub(super) struct Shard {
    pub(super) replica: Mutex<Replica>,
    /// The shard's durable log, if the node has a data folder.
    pub(super) persist: Option<Persist>,
    /// Wakes the shard's driver after anything that may have produced output or moved a
    /// deadline.
    pub(super) wake: Notify,
    /// The shard may stamp writes (see [`Replica::stamps_ready`]).
    pub(super) writable: AtomicBool,
    /// The shard is not restoring.
    pub(super) restored: AtomicBool,
    /// How many scripts hold (or are about to hold) the shard (`Node::hold`), perhaps for long: the
    /// driver waits for it without blocking a thread ([`Shard::lock_async`]).
    pub(super) scripted: AtomicUsize,
}

impl Shard {
    pub(super) fn new(replica: Replica, persist: Option<Persist>) -> Shard {
        Shard {
            replica: Mutex::new(replica),
            persist,
            wake: Notify::new(),
            writable: AtomicBool::new(true),
            restored: AtomicBool::new(false),
            scripted: AtomicUsize::new(0),
        }
    }

    /// [`Shard::lock`] for async tasks: while a script holds the shard, waits for it by
    /// polling every millisecond instead of blocking the runtime's thread on the lock (a
    /// script runs as long as it likes until `SCRIPT KILL`; blocked drivers would starve
    /// every task of the runtime meanwhile).
    pub(super) async fn lock_async(&self) -> Locked<'_> {
        while self.scripted.load(Ordering::Acquire) > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        self.lock()
    }

    /// The replica, locked: one step of the core's step contract.
    pub(super) fn lock(&self) -> Locked<'_> {
        // A panic while holding the lock is a bug in the core; keep serving what we have
        // rather than turning every later command into a panic.
        Locked {
            replica: self.replica.lock().unwrap_or_else(|p| p.into_inner()),
            persist: self.persist.as_ref(),
            wake: &self.wake,
            ended: false,
        }
    }
}

/// A shard's replica, locked. Every hold is one step of the core's step contract
/// (`sessionmesh_core::replica::step`): [`Locked::step`] ends it explicitly and returns what it
/// did; dropping the guard ends it otherwise. Either way the step's journal records are queued
/// to the shard's log before the lock is released, so the log holds them in lock order, and a
/// deadline moved earlier wakes the shard's driver.
pub(super) struct Locked<'a> {
    replica: MutexGuard<'a, Replica>,
    persist: Option<&'a Persist>,
    wake: &'a Notify,
    /// [`Locked::step`] ended the step and nothing ran since.
    ended: bool,
}

impl Locked<'_> {
    /// Ends the step: queues its records to the log and returns what it did with the ticket
    /// its outputs wait for — its own records, or earlier ones it may have seen that are not
    /// durable yet; `None` without persistence or when nothing is pending. Wakes the shard's
    /// driver on [`Ready::sooner`].
    pub(super) fn step(&mut self) -> (Ready, Option<Ticket>) {
        let mut ready = self.replica.ready();
        self.ended = true;
        let ticket = self.persist.and_then(|p| {
            if ready.records.is_empty() {
                p.pending()
            } else {
                p.enqueue(std::mem::take(&mut ready.records))
            }
        });
        if ready.sooner {
            self.wake.notify_one();
        }
        (ready, ticket)
    }
}

impl Deref for Locked<'_> {
    type Target = Replica;
    fn deref(&self) -> &Replica {
        &self.replica
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Replica {
        self.ended = false;
        &mut self.replica
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        let ready = self.replica.ready();
        if let Some(p) = self.persist.filter(|_| !ready.records.is_empty()) {
            p.enqueue(ready.records);
        }
        if ready.sooner {
            self.wake.notify_one();
        }
    }
}

/// Several shards locked at once, in ascending order, for commands that span them
/// (`sessionmesh_core::shard::run`).
pub(super) struct Held<'a> {
    count: u16,
    /// Ascending by shard.
    guards: Vec<(u16, Locked<'a>)>,
}

impl<'a> Held<'a> {
    /// Locks every shard of `set`, lowest first.
    pub(super) fn lock(shards: &'a [Shard], set: ShardSet) -> Held<'a> {
        Held {
            count: shards.len() as u16,
            guards: set
                .iter()
                .filter_map(|i| Some((i, shards.get(usize::from(i))?.lock())))
                .collect(),
        }
    }

    /// Ends every held shard's step, noting what each wrote and waits for in `marks`.
    pub(super) fn step(mut self, marks: &mut Marks) {
        for (i, g) in &mut self.guards {
            let (ready, ticket) = g.step();
            marks.note(*i, ready.wrote, ticket);
        }
    }
}

impl Shards for Held<'_> {
    fn count(&self) -> u16 {
        self.count
    }

    #[allow(
        clippy::expect_used,
        reason = "`shard::run` asks only for shards `shard::touches` named, which are held"
    )]
    fn shard(&mut self, i: u16) -> &mut Replica {
        let at = self
            .guards
            .binary_search_by_key(&i, |(s, _)| *s)
            .expect("a shard the command touches is held");
        &mut self.guards[at].1
    }
}

/// What a connection's commands leave it waiting for, per shard: the stamp of its last write
/// there (`WAIT` waits until enough regions hold it) and the log ticket its pending replies
/// wait for. Shards keep their own clocks and logs, so neither is one value for the region.
/// Sized to the node's shards on the first write and reused after.
#[derive(Clone, Debug, Default)]
pub struct Marks {
    wrote: Vec<Option<Stamp>>,
    tickets: Vec<Option<Ticket>>,
    /// Some entry of `tickets` is set.
    pending: bool,
}

impl Marks {
    /// Notes what a step on shard `i` wrote and waits for.
    pub(super) fn note(&mut self, i: u16, wrote: Option<Stamp>, ticket: Option<Ticket>) {
        let i = usize::from(i);
        if wrote.is_some() {
            if self.wrote.len() <= i {
                self.wrote.resize(i + 1, None);
            }
            self.wrote[i] = wrote;
        }
        if let Some(t) = ticket {
            if self.tickets.len() <= i {
                self.tickets.resize(i + 1, None);
            }
            self.tickets[i] = self.tickets[i].max(Some(t));
            self.pending = true;
        }
    }

    /// Whether any reply waits for the log.
    pub fn pending(&self) -> bool {
        self.pending
    }

    /// The tickets replies wait for, per shard.
    pub(super) fn tickets(&self) -> impl Iterator<Item = (usize, Ticket)> + '_ {
        self.tickets
            .iter()
            .enumerate()
            .filter_map(|(i, t)| Some((i, (*t)?)))
    }

    /// Forgets the tickets (the replies waiting for them were written).
    pub fn clear_tickets(&mut self) {
        if self.pending {
            self.tickets.iter_mut().for_each(|t| *t = None);
            self.pending = false;
        }
    }

    /// The stamps of the last write per shard, for `WAIT`.
    pub(super) fn writes(&self) -> impl Iterator<Item = (usize, Stamp)> + '_ {
        self.wrote
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((i, (*s)?)))
    }

    /// Whether the connection wrote anything.
    pub fn wrote(&self) -> bool {
        self.wrote.iter().any(Option::is_some)
    }

    /// The stamps only (`WAIT` keeps them while it waits; the tickets move on).
    pub fn stamps(&self) -> Marks {
        Marks {
            wrote: self.wrote.clone(),
            ..Marks::default()
        }
    }
}
