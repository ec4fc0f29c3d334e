//! Redis data commands: parsed from their arguments, applied to the [`Store`] as CRDT deltas.
//!
//! Every write becomes a delta — the registers it sets, all stamped with the command's one
//! stamp — merged into the store exactly as a delta from a peer would be. That is what makes a
//! local write and its replication the same operation, and what the push path later ships.
//!
//! One file per family: [`strings`], [`hashes`], [`keys`] (generic keyspace, TTL, `SCAN`).
//! Connection-level commands (`PING`, `HELLO`, `MULTI`, ...) belong to the node, not here.
//!
//! Reply shapes and error strings follow Redis 7; `tests/sequential.rs` compares every command
//! against a reference model of Redis over random sequences.

pub mod glob;
pub mod hashes;
pub mod keys;
pub mod strings;

use crate::crdt::{Body, KeyState, Kind, Reg};
use crate::reply::Reply;
use crate::stamp::Stamp;
use crate::store::Store;
use bytes::Bytes;

/// What executing one command needs.
pub struct Ctx<'a> {
    /// The key space.
    pub store: &'a mut Store,
    /// "Now" for expiry: the command's stamp for writes, the HLC reading for reads.
    pub now_ms: u64,
    /// The command's stamp (write commands only).
    pub stamp: Option<Stamp>,
    /// Deltas applied by this command, in order.
    pub writes: Vec<(Bytes, KeyState)>,
    /// Registers that lost while applying them.
    pub conflicts: u64,
    /// Fields one hash may hold.
    pub max_hash_fields: usize,
}

impl<'a> Ctx<'a> {
    /// The stamp of this write command.
    #[allow(
        clippy::expect_used,
        reason = "the replica stamps every write command before it runs"
    )]
    fn stamp(&self) -> Stamp {
        self.stamp
            .expect("write commands are stamped before they run")
    }

    /// The key's state when a client can see it.
    fn live(&self, key: &Bytes) -> Option<&KeyState> {
        self.store.get(key).filter(|k| k.is_visible(self.now_ms))
    }

    /// The visible type of a key.
    fn kind(&self, key: &Bytes) -> Option<Kind> {
        self.store
            .get(key)
            .and_then(|k| k.visible_kind(self.now_ms))
    }

    /// A delta in the key's current incarnation (which must be live), with `body`.
    #[allow(
        clippy::expect_used,
        reason = "called only for a key the command found live"
    )]
    fn in_place(&self, key: &Bytes, body: Body) -> KeyState {
        let cl = self.store.get(key).expect("key is live").cl.clone();
        KeyState { cl, body }
    }

    /// A delta that starts a fresh incarnation of `key` with `body`, numbered from the stamp
    /// ([`KeyState::fresh_len`]) so that it outranks every earlier incarnation — including ones
    /// this region has already garbage-collected and no longer remembers, which peers may still
    /// hold.
    fn fresh(&self, _key: &Bytes, body: Body) -> KeyState {
        let s = self.stamp();
        KeyState {
            cl: Reg::new(s, KeyState::fresh_len(s)),
            body,
        }
    }

    /// A delta that replaces the whole key (SET semantics): in place with `reset` when the key
    /// is visible, as a fresh incarnation otherwise.
    fn replace(&self, key: &Bytes, mut body: Body) -> KeyState {
        body.reset = Some(self.stamp());
        if self.live(key).is_some() {
            self.in_place(key, body)
        } else {
            self.fresh(key, body)
        }
    }

    /// A delta deleting a live key.
    #[allow(
        clippy::expect_used,
        reason = "called only for a key the command found live"
    )]
    fn delete(&self, key: &Bytes) -> KeyState {
        let cl = &self.store.get(key).expect("key is live").cl;
        KeyState {
            cl: Reg::new(self.stamp(), cl.value + 1),
            body: Body::default(),
        }
    }

    /// Applies a delta to the store and records it.
    fn write(&mut self, key: &Bytes, delta: KeyState) {
        self.conflicts += self.store.apply(key, &delta);
        self.writes.push((key.clone(), delta));
    }
}

/// What the table knows of a data command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandInfo {
    /// The lower-case name, as Redis prints it in errors.
    pub name: &'static str,
    /// Redis's arity: positive = exactly, negative = at least (the name included).
    pub arity: i32,
    /// Whether it may write (write commands are stamped before they run).
    pub write: bool,
}

/// Looks a data command up by name (any case).
pub fn lookup(name: &[u8]) -> Option<CommandInfo> {
    table(name).map(|(info, _)| info)
}

/// True for the data commands this module executes.
pub fn is_data_command(name: &[u8]) -> bool {
    table(name).is_some()
}

/// Whether a command may write; write commands get a fresh stamp before they run.
pub fn is_write(name: &[u8]) -> bool {
    lookup(name).is_some_and(|i| i.write)
}

type Handler = fn(&mut Ctx<'_>, &[Bytes]) -> Reply;

/// Name, Redis arity (negative = at least), handler.
fn table(name: &[u8]) -> Option<(CommandInfo, Handler)> {
    let mut upper = [0u8; 16];
    if name.len() > upper.len() {
        return None;
    }
    for (u, c) in upper.iter_mut().zip(name) {
        *u = c.to_ascii_uppercase();
    }
    let entry: (CommandInfo, Handler) = match &upper[..name.len()] {
        b"GET" => (
            CommandInfo {
                name: "get",
                arity: 2,
                write: false,
            },
            strings::get,
        ),
        b"SET" => (
            CommandInfo {
                name: "set",
                arity: -3,
                write: true,
            },
            strings::set,
        ),
        b"SETEX" => (
            CommandInfo {
                name: "setex",
                arity: 4,
                write: true,
            },
            strings::setex,
        ),
        b"PSETEX" => (
            CommandInfo {
                name: "psetex",
                arity: 4,
                write: true,
            },
            strings::psetex,
        ),
        b"SETNX" => (
            CommandInfo {
                name: "setnx",
                arity: 3,
                write: true,
            },
            strings::setnx,
        ),
        b"GETEX" => (
            CommandInfo {
                name: "getex",
                arity: -2,
                write: true,
            },
            strings::getex,
        ),
        b"GETDEL" => (
            CommandInfo {
                name: "getdel",
                arity: 2,
                write: true,
            },
            strings::getdel,
        ),
        b"MGET" => (
            CommandInfo {
                name: "mget",
                arity: -2,
                write: false,
            },
            strings::mget,
        ),
        b"MSET" => (
            CommandInfo {
                name: "mset",
                arity: -3,
                write: true,
            },
            strings::mset,
        ),
        b"APPEND" => (
            CommandInfo {
                name: "append",
                arity: 3,
                write: true,
            },
            strings::append,
        ),
        b"STRLEN" => (
            CommandInfo {
                name: "strlen",
                arity: 2,
                write: false,
            },
            strings::strlen,
        ),
        b"DEL" => (
            CommandInfo {
                name: "del",
                arity: -2,
                write: true,
            },
            keys::del,
        ),
        b"UNLINK" => (
            CommandInfo {
                name: "unlink",
                arity: -2,
                write: true,
            },
            keys::del,
        ),
        b"EXISTS" => (
            CommandInfo {
                name: "exists",
                arity: -2,
                write: false,
            },
            keys::exists,
        ),
        b"TYPE" => (
            CommandInfo {
                name: "type",
                arity: 2,
                write: false,
            },
            keys::type_,
        ),
        b"RENAME" => (
            CommandInfo {
                name: "rename",
                arity: 3,
                write: true,
            },
            keys::rename,
        ),
        b"EXPIRE" => (
            CommandInfo {
                name: "expire",
                arity: -3,
                write: true,
            },
            keys::expire,
        ),
        b"PEXPIRE" => (
            CommandInfo {
                name: "pexpire",
                arity: -3,
                write: true,
            },
            keys::expire,
        ),
        b"EXPIREAT" => (
            CommandInfo {
                name: "expireat",
                arity: -3,
                write: true,
            },
            keys::expire,
        ),
        b"PEXPIREAT" => (
            CommandInfo {
                name: "pexpireat",
                arity: -3,
                write: true,
            },
            keys::expire,
        ),
        b"TTL" => (
            CommandInfo {
                name: "ttl",
                arity: 2,
                write: false,
            },
            keys::ttl,
        ),
        b"PTTL" => (
            CommandInfo {
                name: "pttl",
                arity: 2,
                write: false,
            },
            keys::ttl,
        ),
        b"PERSIST" => (
            CommandInfo {
                name: "persist",
                arity: 2,
                write: true,
            },
            keys::persist,
        ),
        b"DBSIZE" => (
            CommandInfo {
                name: "dbsize",
                arity: 1,
                write: false,
            },
            keys::dbsize,
        ),
        b"KEYS" => (
            CommandInfo {
                name: "keys",
                arity: 2,
                write: false,
            },
            keys::keys,
        ),
        b"SCAN" => (
            CommandInfo {
                name: "scan",
                arity: -2,
                write: false,
            },
            keys::scan,
        ),
        b"HSET" => (
            CommandInfo {
                name: "hset",
                arity: -4,
                write: true,
            },
            hashes::hset,
        ),
        b"HMSET" => (
            CommandInfo {
                name: "hmset",
                arity: -4,
                write: true,
            },
            hashes::hset,
        ),
        b"HSETNX" => (
            CommandInfo {
                name: "hsetnx",
                arity: 4,
                write: true,
            },
            hashes::hsetnx,
        ),
        b"HGET" => (
            CommandInfo {
                name: "hget",
                arity: 3,
                write: false,
            },
            hashes::hget,
        ),
        b"HMGET" => (
            CommandInfo {
                name: "hmget",
                arity: -3,
                write: false,
            },
            hashes::hmget,
        ),
        b"HGETALL" => (
            CommandInfo {
                name: "hgetall",
                arity: 2,
                write: false,
            },
            hashes::hgetall,
        ),
        b"HDEL" => (
            CommandInfo {
                name: "hdel",
                arity: -3,
                write: true,
            },
            hashes::hdel,
        ),
        b"HEXISTS" => (
            CommandInfo {
                name: "hexists",
                arity: 3,
                write: false,
            },
            hashes::hexists,
        ),
        b"HLEN" => (
            CommandInfo {
                name: "hlen",
                arity: 2,
                write: false,
            },
            hashes::hlen,
        ),
        b"HKEYS" => (
            CommandInfo {
                name: "hkeys",
                arity: 2,
                write: false,
            },
            hashes::hkeys,
        ),
        b"HVALS" => (
            CommandInfo {
                name: "hvals",
                arity: 2,
                write: false,
            },
            hashes::hvals,
        ),
        _ => return None,
    };
    Some(entry)
}

/// Redis's reply to a command it does not know.
pub fn unknown_command(args: &[Bytes]) -> Reply {
    let name = args
        .first()
        .map(|a| String::from_utf8_lossy(a))
        .unwrap_or_default();
    let mut msg = format!(
        "ERR unknown command '{}', with args beginning with: ",
        truncate(&name)
    );
    for a in args.iter().skip(1) {
        msg.push_str(&format!("'{}' ", truncate(&String::from_utf8_lossy(a))));
    }
    Reply::Error(msg)
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(128) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Runs one data command. `args[0]` is the command name; the caller has checked it with
/// [`is_data_command`] (anything else gets the unknown-command reply).
pub fn execute(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let Some(name) = args.first() else {
        return unknown_command(args);
    };
    let Some((info, handler)) = table(name) else {
        return unknown_command(args);
    };
    let n = args.len() as i32;
    if (info.arity > 0 && n != info.arity) || (info.arity < 0 && n < -info.arity) {
        return Reply::wrong_arity(info.name);
    }
    handler(ctx, args)
}

/// Parses a signed 64-bit integer argument the way Redis does (no spaces, no `+`).
pub fn parse_i64(b: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(b).ok()?;
    if s.is_empty() || s.starts_with('+') || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    if s.starts_with("-0") {
        return None;
    }
    s.parse().ok()
}

/// Parses a non-negative integer (`COUNT`, cursors).
pub fn parse_u64(b: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(b).ok()?;
    if s.is_empty() || s.starts_with('+') {
        return None;
    }
    s.parse().ok()
}

/// Case-insensitive comparison of an argument with an upper-case option name.
pub fn is_opt(arg: &[u8], opt: &str) -> bool {
    arg.eq_ignore_ascii_case(opt.as_bytes())
}
