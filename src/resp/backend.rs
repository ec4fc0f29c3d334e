//! What the Redis server needs from the node, as a trait.
//!
//! The server is generic over [`Backend`] so its tests can run without a replica, and so the
//! contract with the node is written down in one place. [`Node`](crate::node::Node) is the one
//! production implementation, below.
//!
//! Nothing here executes a command; it only forwards.

use crate::metrics::Metrics;
use crate::node::{Marks, Node};
use bytes::Bytes;
use sessionmesh_core::cmd::Command;
use sessionmesh_core::shard::{self, ShardSet};
use sessionmesh_core::{KeyState, Reply};
use std::future::Future;
use std::sync::Arc;

/// The node as the Redis server sees it.
pub trait Backend: Send + Sync + 'static {
    /// Executes one data command atomically and returns its reply; notes in `marks` the
    /// stamp of the write it made, if any, and the ticket its reply must wait for
    /// ([`Backend::durable`]), if any.
    fn execute(&self, cmd: &Command, marks: &mut Marks) -> Reply;

    /// Executes several data commands, one reply per command, noting in `marks` what they
    /// wrote and wait for: `atomic` (`MULTI`/`EXEC`) as one atomic step, otherwise (a
    /// pipeline) in order, without other commands of the batch interleaving others'.
    fn execute_batch(&self, cmds: &[Command], atomic: bool, marks: &mut Marks) -> Vec<Reply>;

    /// Holds the shards of `keys` (every shard for `None`) for the whole of `f`, which runs
    /// commands through the closure it is given (`None`: the command touches a shard not
    /// held), then notes in `marks` what they wrote: a script, atomic in this region. `None`
    /// without running `f` when a key of `unchanged` (on a held shard) no longer holds the
    /// state listed with it (`WATCH`).
    fn hold<R>(
        &self,
        keys: Option<&[Bytes]>,
        marks: &mut Marks,
        unchanged: &[(Bytes, Option<KeyState>)],
        f: impl FnOnce(&mut dyn FnMut(&Command) -> Option<Reply>) -> R,
    ) -> Option<R>;

    /// The state of `key` now (what `WATCH` remembers).
    fn key_state(&self, key: &Bytes) -> Option<KeyState>;

    /// This region's subscriptions (`SUBSCRIBE`, `PUBSUB`).
    fn broker(&self) -> &crate::pubsub::Broker;

    /// `PUBLISH`: delivered here and sent to every other region; returns this region's
    /// receivers.
    fn publish(&self, channel: &Bytes, message: &Bytes) -> usize;

    /// `CONFIG SET notify-keyspace-events`: the keyspace-event classes to publish.
    fn set_notify(&self, classes: u32);

    /// `SAVE`, `BGSAVE` and `LASTSAVE`.
    fn save(&self) -> Reply;

    /// `BGSAVE`.
    fn bgsave(self: &Arc<Self>) -> Reply;

    /// `LASTSAVE`.
    fn last_save(&self) -> i64;

    /// Waits until every ticket noted in `marks` is durable; `false` if one never will be
    /// (persistence failed: the replies waiting for it must not be sent).
    fn durable(&self, marks: &Marks) -> impl Future<Output = bool> + Send;

    /// How many other regions hold every write noted in `marks`, now.
    fn regions_holding(&self, marks: &Marks) -> usize;

    /// Waits until `n` other regions hold every write noted in `marks` or `timeout_ms` passes
    /// (`0`: no limit); returns how many hold them then.
    fn wait_regions(
        &self,
        marks: &Marks,
        n: usize,
        timeout_ms: u64,
    ) -> impl Future<Output = usize> + Send;

    /// How many other regions there are.
    fn peer_count(&self) -> usize;

    /// This region's name.
    fn region_name(&self) -> &str;

    /// The `# Replication` section of `INFO`, with its header.
    fn info_replication(&self) -> String;

    /// `INFO keyspace`: `(db, keys, expires)` for every database holding a key, ascending.
    fn keyspace(&self) -> Vec<(u8, usize, usize)>;

    /// Where the server records command latency and error replies; `None` (the default)
    /// records nothing, for backends that have no metrics.
    fn metrics(&self) -> Option<&Metrics> {
        None
    }

    /// Waits until commands may run: after a restart the node stamps no write for a moment
    /// (see [`Node::writable`]). The default never waits.
    fn writable(&self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Whether [`Backend::writable`] would return at once (one atomic load on the node).
    fn is_writable(&self) -> bool {
        true
    }

    /// Whether data commands are served: after a restart not until the region has restored
    /// what it lost from its peers, or `restore_hold_ms` has passed (see [`Node::is_serving`]).
    fn is_serving(&self) -> bool {
        true
    }
}

impl Backend for Node {
    fn execute(&self, cmd: &Command, marks: &mut Marks) -> Reply {
        self.execute_marked(cmd, marks)
    }

    fn execute_batch(&self, cmds: &[Command], atomic: bool, marks: &mut Marks) -> Vec<Reply> {
        self.execute_batch_marked(cmds, atomic, marks)
    }

    fn hold<R>(
        &self,
        keys: Option<&[Bytes]>,
        marks: &mut Marks,
        unchanged: &[(Bytes, Option<KeyState>)],
        f: impl FnOnce(&mut dyn FnMut(&Command) -> Option<Reply>) -> R,
    ) -> Option<R> {
        let n = self.shard_count();
        let set = match keys {
            None => ShardSet::all(n),
            Some(keys) => {
                let mut set = ShardSet::default();
                for k in keys {
                    set.insert(shard::shard_of_key(k, n));
                }
                set
            }
        };
        Node::hold(self, set, marks, unchanged, f)
    }

    fn key_state(&self, key: &Bytes) -> Option<KeyState> {
        Node::key_state(self, key)
    }

    fn broker(&self) -> &crate::pubsub::Broker {
        Node::broker(self)
    }

    fn publish(&self, channel: &Bytes, message: &Bytes) -> usize {
        Node::publish(self, channel, message)
    }

    fn set_notify(&self, classes: u32) {
        Node::set_notify(self, classes)
    }

    fn save(&self) -> Reply {
        Node::save(self)
    }

    fn bgsave(self: &Arc<Self>) -> Reply {
        Node::bgsave(self)
    }

    fn last_save(&self) -> i64 {
        Node::last_save(self)
    }

    fn durable(&self, marks: &Marks) -> impl Future<Output = bool> + Send {
        Node::durable(self, marks)
    }

    fn regions_holding(&self, marks: &Marks) -> usize {
        Node::regions_holding(self, marks)
    }

    fn wait_regions(
        &self,
        marks: &Marks,
        n: usize,
        timeout_ms: u64,
    ) -> impl Future<Output = usize> + Send {
        Node::wait_regions(self, marks, n, timeout_ms)
    }

    fn peer_count(&self) -> usize {
        self.peer_regions().len()
    }

    fn region_name(&self) -> &str {
        Node::region_name(self)
    }

    fn keyspace(&self) -> Vec<(u8, usize, usize)> {
        Node::keyspace(self)
    }

    fn info_replication(&self) -> String {
        Node::info_replication(self)
    }

    fn metrics(&self) -> Option<&Metrics> {
        Some(Node::metrics(self))
    }

    fn writable(&self) -> impl Future<Output = ()> + Send {
        Node::writable(self)
    }

    fn is_writable(&self) -> bool {
        Node::is_writable(self)
    }

    fn is_serving(&self) -> bool {
        Node::is_serving(self)
    }
}
