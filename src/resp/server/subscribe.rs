//! A connection's subscriptions: `SUBSCRIBE`, `UNSUBSCRIBE`, `PSUBSCRIBE`, `PUNSUBSCRIBE`,
//! `PUBLISH`, `PUBSUB`, and the messages its mailbox receives ([`crate::pubsub`]).
//!
//! As in Redis: a RESP2 connection with a subscription is in *subscribed mode*, where only the
//! (un)subscribe commands, `PING`, `QUIT` and `RESET` run; a RESP3 connection runs anything and
//! gets messages as push frames between replies.

use super::*;
use crate::pubsub::{self, Delivery, Inbox, Mailbox};
use std::collections::BTreeSet;

/// `PUBSUB`'s subcommands.
const PUBSUB_SUBCOMMANDS: [&[u8]; 6] = [
    b"channels",
    b"numsub",
    b"numpat",
    b"shardchannels",
    b"shardnumsub",
    b"help",
];

/// A connection's subscriptions and its mailbox.
pub(super) struct Subscribed {
    tx: Mailbox,
    pub(super) rx: Inbox,
    channels: BTreeSet<Bytes>,
    patterns: BTreeSet<Bytes>,
}

impl Subscribed {
    fn count(&self) -> i64 {
        (self.channels.len() + self.patterns.len()) as i64
    }
}

/// The next message for a connection, if it subscribes (a future that never resolves
/// otherwise, for the connection's `select!`).
pub(super) async fn next(subs: &mut Option<Subscribed>) -> Option<Delivery> {
    match subs {
        Some(s) => s.rx.recv().await,
        None => std::future::pending().await,
    }
}

/// A message as the client gets it.
pub(super) fn message(d: Delivery) -> Reply {
    match d {
        Delivery::Message { channel, data } => Reply::Push(vec![
            Reply::bulk("message"),
            Reply::Bulk(channel),
            Reply::Bulk(data),
        ]),
        Delivery::PMessage {
            pattern,
            channel,
            data,
        } => Reply::Push(vec![
            Reply::bulk("pmessage"),
            Reply::Bulk(pattern),
            Reply::Bulk(channel),
            Reply::Bulk(data),
        ]),
    }
}

impl<B: Backend> Conn<B> {
    /// Whether command `name` may run now: in RESP2 subscribed mode only a few may.
    pub(super) fn subscribed_refusal(&self, cmd: &Command) -> Option<Reply> {
        if self.subs.is_none() || self.proto == Proto::Resp3 {
            return None;
        }
        let name = cmd.id().name();
        let args = cmd.args();
        match name {
            "subscribe" | "unsubscribe" | "psubscribe" | "punsubscribe" | "ping" | "quit"
            | "reset" => None,
            // Redis looks a container's subcommand up first: an unknown one is that error.
            "pubsub" if !PUBSUB_SUBCOMMANDS.contains(&&args[1].to_ascii_lowercase()[..]) => {
                Some(self.pubsub(args))
            }
            // ... and checks a fixed-arity subcommand's arity.
            "pubsub" if args[1].eq_ignore_ascii_case(b"numpat") && args.len() != 2 => {
                Some(self.pubsub(args))
            }
            _ => {
                let shown = match (name, args.get(1)) {
                    ("pubsub" | "client" | "config" | "command" | "script", Some(s)) => {
                        format!("{name}|{}", String::from_utf8_lossy(s).to_ascii_lowercase())
                    }
                    _ => name.to_owned(),
                };
                Some(Reply::err(format!(
                    "Can't execute '{shown}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
                )))
            }
        }
    }

    /// `PING` in RESP2 subscribed mode: `["pong", message]`.
    pub(super) fn subscribed_ping(&self, args: &[Bytes]) -> Option<Reply> {
        (self.subs.is_some() && self.proto == Proto::Resp2 && args.len() <= 2).then(|| {
            Reply::Array(vec![
                Reply::bulk("pong"),
                Reply::Bulk(args.get(1).cloned().unwrap_or_default()),
            ])
        })
    }

    /// `SUBSCRIBE`/`PSUBSCRIBE name [name ...]`: one confirmation per name.
    pub(super) fn subscribe(&mut self, names: &[Bytes], pattern: bool) {
        let id = self.client.id;
        let s = self.subs.get_or_insert_with(|| {
            let (tx, rx) = pubsub::mailbox();
            Subscribed {
                tx,
                rx,
                channels: BTreeSet::new(),
                patterns: BTreeSet::new(),
            }
        });
        let mut replies = Vec::with_capacity(names.len());
        for n in names {
            let set = if pattern {
                &mut s.patterns
            } else {
                &mut s.channels
            };
            if set.insert(n.clone()) {
                self.backend.broker().subscribe(id, n, pattern, &s.tx);
            }
            replies.push(Reply::Push(vec![
                Reply::bulk(if pattern { "psubscribe" } else { "subscribe" }),
                Reply::Bulk(n.clone()),
                Reply::Int(s.count()),
            ]));
        }
        for r in replies {
            self.reply(r);
        }
    }

    /// `UNSUBSCRIBE`/`PUNSUBSCRIBE [name ...]`: every one of that kind when none is named;
    /// one confirmation per name (one with a nil name when there was nothing to leave).
    pub(super) fn unsubscribe(&mut self, names: &[Bytes], pattern: bool) {
        let id = self.client.id;
        let kind = if pattern {
            "punsubscribe"
        } else {
            "unsubscribe"
        };
        let mut replies = Vec::new();
        match &mut self.subs {
            None if names.is_empty() => replies.push(Reply::Push(vec![
                Reply::bulk(kind),
                Reply::Nil,
                Reply::Int(0),
            ])),
            None => {
                for n in names {
                    replies.push(Reply::Push(vec![
                        Reply::bulk(kind),
                        Reply::Bulk(n.clone()),
                        Reply::Int(0),
                    ]));
                }
            }
            Some(s) => {
                let all: Vec<Bytes> = if names.is_empty() {
                    let set = if pattern { &s.patterns } else { &s.channels };
                    set.iter().cloned().collect()
                } else {
                    names.to_vec()
                };
                if all.is_empty() {
                    replies.push(Reply::Push(vec![
                        Reply::bulk(kind),
                        Reply::Nil,
                        Reply::Int(s.count()),
                    ]));
                }
                for n in all {
                    let set = if pattern {
                        &mut s.patterns
                    } else {
                        &mut s.channels
                    };
                    if set.remove(&n) {
                        self.backend.broker().unsubscribe(id, &n, pattern);
                    }
                    replies.push(Reply::Push(vec![
                        Reply::bulk(kind),
                        Reply::Bulk(n),
                        Reply::Int(s.count()),
                    ]));
                }
                if s.count() == 0 {
                    self.subs = None;
                }
            }
        }
        for r in replies {
            self.reply(r);
        }
    }

    /// Leaves every subscription (`RESET`, and when the connection ends).
    pub(super) fn unsubscribe_all(&mut self) {
        if let Some(s) = self.subs.take() {
            self.backend
                .broker()
                .forget(self.client.id, &s.channels, &s.patterns);
        }
    }

    /// `PUBSUB CHANNELS [pattern] | NUMSUB [channel ...] | NUMPAT | SHARDCHANNELS |
    /// SHARDNUMSUB`: this region's subscriptions.
    pub(super) fn pubsub(&self, args: &[Bytes]) -> Reply {
        let sub = args[1].to_ascii_lowercase();
        let broker = self.backend.broker();
        match (&sub[..], args.len()) {
            (b"channels", 2 | 3) => Reply::Array(
                broker
                    .channels(args.get(2).map(|p| &p[..]))
                    .into_iter()
                    .map(Reply::Bulk)
                    .collect(),
            ),
            (b"numsub", _) => Reply::Array(
                args[2..]
                    .iter()
                    .flat_map(|c| [Reply::Bulk(c.clone()), Reply::Int(broker.numsub(c) as i64)])
                    .collect(),
            ),
            (b"numpat", 2) => Reply::Int(broker.numpat() as i64),
            (b"shardchannels", 2 | 3) => Reply::Array(Vec::new()),
            (b"shardnumsub", _) => Reply::Array(
                args[2..]
                    .iter()
                    .flat_map(|c| [Reply::Bulk(c.clone()), Reply::Int(0)])
                    .collect(),
            ),
            // Redis 7.0 checks NUMPAT's arity by its table, the others in the handler.
            (b"numpat", _) => Reply::wrong_arity("pubsub|numpat"),
            (b"channels" | b"shardchannels", _) => Reply::err(format!(
                "unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
                String::from_utf8_lossy(&args[1])
            )),
            _ => Reply::err(format!(
                "unknown subcommand '{}'. Try PUBSUB HELP.",
                String::from_utf8_lossy(&args[1])
            )),
        }
    }
}
