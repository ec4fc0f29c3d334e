//! Publish/subscribe in one region: who listens to which channel or pattern, and the delivery
//! of a message to them.
//!
//! A connection that subscribes registers a [`Mailbox`] sender under its client id for each
//! channel (`SUBSCRIBE`) or glob pattern (`PSUBSCRIBE`). [`Broker::deliver`] puts a message in
//! the mailbox of every subscriber of the channel and of every matching pattern — a message a
//! client hears through several patterns arrives once per pattern, as in Redis. The
//! connection's loop writes what its mailbox holds.
//!
//! Across regions ([`crate::node::Node::publish`]): a `PUBLISH` is delivered here and sent to
//! every other region as one frame per peer on the replication stream
//! ([`sessionmesh_core::Replica::publish`]); each region delivers what it receives to its own
//! subscribers. So a message reaches every region's subscribers once, in publish order per
//! publishing region. A message a cut link drops is lost, and counted
//! (`sessionmesh_dropped_transmits_total`, as every frame the transport drops), and so is one
//! that finds a subscriber's mailbox full ([`MAILBOX`] messages: `pubsub_dropped` among
//! [`crate::node::Node::node_counters`], not yet a Prometheus metric): Redis closes a subscriber past its output buffer limit
//! instead; here a slow subscriber misses messages and stays connected.

use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tokio::sync::mpsc;

/// How many messages wait for one subscriber before further ones are dropped.
pub const MAILBOX: usize = 4096;

/// A message for one subscriber.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// On a channel it subscribed to.
    Message {
        /// The channel.
        channel: Bytes,
        /// The message.
        data: Bytes,
    },
    /// On a channel matching a pattern it subscribed to.
    PMessage {
        /// The pattern.
        pattern: Bytes,
        /// The channel.
        channel: Bytes,
        /// The message.
        data: Bytes,
    },
}

/// The sending half of a subscriber's mailbox.
pub type Mailbox = mpsc::Sender<Delivery>;

/// The receiving half, read by the connection.
pub type Inbox = mpsc::Receiver<Delivery>;

/// A fresh mailbox.
pub fn mailbox() -> (Mailbox, Inbox) {
    mpsc::channel(MAILBOX)
}

/// Subscriptions by channel and by pattern, each with its subscribers' mailboxes.
#[derive(Default)]
struct Subs {
    channels: BTreeMap<Bytes, BTreeMap<u64, Mailbox>>,
    patterns: BTreeMap<Bytes, BTreeMap<u64, Mailbox>>,
}

/// Every subscription of one region's clients.
#[derive(Default)]
pub struct Broker {
    subs: Mutex<Subs>,
    dropped: AtomicU64,
    delivered: AtomicU64,
    /// `notify-keyspace-events`, as [`sessionmesh_core::notify::class`] bits.
    notify: std::sync::atomic::AtomicU32,
}

impl Broker {
    /// The keyspace-event classes selected (`notify-keyspace-events`).
    pub fn notify(&self) -> u32 {
        self.notify.load(Ordering::Relaxed)
    }

    /// Selects keyspace-event classes.
    pub fn set_notify(&self, classes: u32) {
        self.notify.store(classes, Ordering::Relaxed);
    }

    /// Publishes keyspace event `event` of stored key `key` (class `class`) to this region's
    /// subscribers, on the channels `notify-keyspace-events` selects: `__keyspace@<db>__:<key>`
    /// (message: the event) and `__keyevent@<db>__:<event>` (message: the key).
    pub fn keyspace_event(&self, key: &[u8], event: &str, class: u32) {
        use sessionmesh_core::notify::class as c;
        let flags = self.notify();
        if flags & class == 0 || flags & (c::KEYSPACE | c::KEYEVENT) == 0 {
            return;
        }
        let Some((db, name)) = sessionmesh_core::db::split(key) else {
            return;
        };
        if flags & c::KEYSPACE != 0 {
            let mut ch = format!("__keyspace@{db}__:").into_bytes();
            ch.extend_from_slice(name);
            self.deliver(&Bytes::from(ch), &Bytes::copy_from_slice(event.as_bytes()));
        }
        if flags & c::KEYEVENT != 0 {
            let ch = Bytes::from(format!("__keyevent@{db}__:{event}"));
            self.deliver(&ch, &Bytes::copy_from_slice(name));
        }
    }
    fn subs(&self) -> std::sync::MutexGuard<'_, Subs> {
        self.subs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Client `id` listens on `channel` (`pattern`: a glob over channel names).
    pub fn subscribe(&self, id: u64, name: &Bytes, pattern: bool, mailbox: &Mailbox) {
        let mut s = self.subs();
        let map = if pattern {
            &mut s.patterns
        } else {
            &mut s.channels
        };
        map.entry(name.clone())
            .or_default()
            .insert(id, mailbox.clone());
    }

    /// Client `id` no longer listens on `name`.
    pub fn unsubscribe(&self, id: u64, name: &Bytes, pattern: bool) {
        let mut s = self.subs();
        let map = if pattern {
            &mut s.patterns
        } else {
            &mut s.channels
        };
        if let Some(m) = map.get_mut(name) {
            m.remove(&id);
            if m.is_empty() {
                map.remove(name);
            }
        }
    }

    /// Delivers `data` on `channel` to this region's subscribers; returns how many got it
    /// (what `PUBLISH` answers: receivers in this region).
    pub fn deliver(&self, channel: &Bytes, data: &Bytes) -> usize {
        let s = self.subs();
        let mut n = 0;
        let mut send = |mb: &Mailbox, d: Delivery| match mb.try_send(d) {
            Ok(()) => n += 1,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            // The connection is going away; it unsubscribes as it goes.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        };
        if let Some(m) = s.channels.get(channel) {
            for mb in m.values() {
                send(
                    mb,
                    Delivery::Message {
                        channel: channel.clone(),
                        data: data.clone(),
                    },
                );
            }
        }
        for (p, m) in &s.patterns {
            if sessionmesh_core::cmd::glob::matches(p, channel) {
                for mb in m.values() {
                    send(
                        mb,
                        Delivery::PMessage {
                            pattern: p.clone(),
                            channel: channel.clone(),
                            data: data.clone(),
                        },
                    );
                }
            }
        }
        self.delivered.fetch_add(n as u64, Ordering::Relaxed);
        n
    }

    /// Channels with at least one subscriber, matching `pattern` if given (`PUBSUB
    /// CHANNELS`).
    pub fn channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        self.subs()
            .channels
            .keys()
            .filter(|c| pattern.is_none_or(|p| sessionmesh_core::cmd::glob::matches(p, c)))
            .cloned()
            .collect()
    }

    /// Subscribers of `channel` (`PUBSUB NUMSUB`).
    pub fn numsub(&self, channel: &[u8]) -> usize {
        self.subs().channels.get(channel).map_or(0, BTreeMap::len)
    }

    /// Patterns with at least one subscriber (`PUBSUB NUMPAT`).
    pub fn numpat(&self) -> usize {
        self.subs().patterns.len()
    }

    /// Removes every subscription of client `id` (it closed, or `RESET`).
    pub fn forget(&self, id: u64, channels: &BTreeSet<Bytes>, patterns: &BTreeSet<Bytes>) {
        for c in channels {
            self.unsubscribe(id, c, false);
        }
        for p in patterns {
            self.unsubscribe(id, p, true);
        }
    }

    /// Messages dropped at a full mailbox, ever.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Messages put in a mailbox, ever.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn channels_and_patterns_each_deliver_once() {
        let broker = Broker::default();
        let (tx, mut rx) = mailbox();
        broker.subscribe(1, &b("news"), false, &tx);
        broker.subscribe(1, &b("n*"), true, &tx);
        broker.subscribe(1, &b("x*"), true, &tx);
        assert_eq!(broker.deliver(&b("news"), &b("hi")), 2);
        assert_eq!(
            rx.try_recv().ok(),
            Some(Delivery::Message {
                channel: b("news"),
                data: b("hi")
            })
        );
        assert!(matches!(rx.try_recv(), Ok(Delivery::PMessage { .. })));
        assert!(rx.try_recv().is_err());
        assert_eq!(broker.channels(None), vec![b("news")]);
        assert_eq!((broker.numsub(b"news"), broker.numpat()), (1, 2));
        broker.forget(
            1,
            &[b("news")].into_iter().collect(),
            &[b("n*"), b("x*")].into_iter().collect(),
        );
        assert_eq!(broker.deliver(&b("news"), &b("hi")), 0);
        assert_eq!((broker.numsub(b"news"), broker.numpat()), (0, 0));
    }

    #[test]
    fn a_full_mailbox_drops_and_counts() {
        let broker = Broker::default();
        let (tx, _rx) = mailbox();
        broker.subscribe(7, &b("c"), false, &tx);
        for _ in 0..MAILBOX {
            assert_eq!(broker.deliver(&b("c"), &b("m")), 1);
        }
        assert_eq!(broker.deliver(&b("c"), &b("m")), 0);
        assert_eq!(broker.dropped(), 1);
    }
}
