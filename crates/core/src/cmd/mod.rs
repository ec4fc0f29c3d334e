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
}

impl<'a> Ctx<'a> {
    /// The stamp of this write command.
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
    fn in_place(&self, key: &Bytes, body: Body) -> KeyState {
        let cl = self.store.get(key).expect("key is live").cl.clone();
        KeyState { cl, body }
    }

    /// A delta that starts a fresh incarnation of `key` with `body`: after a delete the next odd
    /// length; over a live-but-invisible (expired, emptied) incarnation, the one after next, so
    /// nothing of the old one survives.
    fn fresh(&self, key: &Bytes, body: Body) -> KeyState {
        let len = match self.store.get(key) {
            None => 1,
            Some(k) if k.is_deleted() => k.cl.value + 1,
            Some(k) => k.cl.value + 2,
        };
        KeyState {
            cl: Reg::new(self.stamp(), len),
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

/// Whether a command may write; write commands get a fresh stamp before they run.
pub fn is_write(name: &[u8]) -> bool {
    const WRITES: &[&[u8]] = &[
        b"SET",
        b"SETEX",
        b"PSETEX",
        b"SETNX",
        b"GETEX",
        b"GETDEL",
        b"MSET",
        b"APPEND",
        b"DEL",
        b"UNLINK",
        b"RENAME",
        b"EXPIRE",
        b"PEXPIRE",
        b"EXPIREAT",
        b"PEXPIREAT",
        b"PERSIST",
        b"HSET",
        b"HMSET",
        b"HSETNX",
        b"HDEL",
    ];
    WRITES.iter().any(|w| w.eq_ignore_ascii_case(name))
}

/// True for the data commands this module executes.
pub fn is_data_command(name: &[u8]) -> bool {
    table(name).is_some()
}

type Handler = fn(&mut Ctx<'_>, &[Bytes]) -> Reply;

/// Name, Redis arity (negative = at least), handler.
fn table(name: &[u8]) -> Option<(&'static str, i32, Handler)> {
    let mut upper = [0u8; 16];
    if name.len() > upper.len() {
        return None;
    }
    for (u, c) in upper.iter_mut().zip(name) {
        *u = c.to_ascii_uppercase();
    }
    let entry: (&'static str, i32, Handler) = match &upper[..name.len()] {
        b"GET" => ("get", 2, strings::get),
        b"SET" => ("set", -3, strings::set),
        b"SETEX" => ("setex", 4, strings::setex),
        b"PSETEX" => ("psetex", 4, strings::psetex),
        b"SETNX" => ("setnx", 3, strings::setnx),
        b"GETEX" => ("getex", -2, strings::getex),
        b"GETDEL" => ("getdel", 2, strings::getdel),
        b"MGET" => ("mget", -2, strings::mget),
        b"MSET" => ("mset", -3, strings::mset),
        b"APPEND" => ("append", 3, strings::append),
        b"STRLEN" => ("strlen", 2, strings::strlen),
        b"DEL" => ("del", -2, keys::del),
        b"UNLINK" => ("unlink", -2, keys::del),
        b"EXISTS" => ("exists", -2, keys::exists),
        b"TYPE" => ("type", 2, keys::type_),
        b"RENAME" => ("rename", 3, keys::rename),
        b"EXPIRE" => ("expire", -3, keys::expire),
        b"PEXPIRE" => ("pexpire", -3, keys::expire),
        b"EXPIREAT" => ("expireat", -3, keys::expire),
        b"PEXPIREAT" => ("pexpireat", -3, keys::expire),
        b"TTL" => ("ttl", 2, keys::ttl),
        b"PTTL" => ("pttl", 2, keys::ttl),
        b"PERSIST" => ("persist", 2, keys::persist),
        b"DBSIZE" => ("dbsize", 1, keys::dbsize),
        b"KEYS" => ("keys", 2, keys::keys),
        b"SCAN" => ("scan", -2, keys::scan),
        b"HSET" => ("hset", -4, hashes::hset),
        b"HMSET" => ("hmset", -4, hashes::hset),
        b"HSETNX" => ("hsetnx", 4, hashes::hsetnx),
        b"HGET" => ("hget", 3, hashes::hget),
        b"HMGET" => ("hmget", -3, hashes::hmget),
        b"HGETALL" => ("hgetall", 2, hashes::hgetall),
        b"HDEL" => ("hdel", -3, hashes::hdel),
        b"HEXISTS" => ("hexists", 3, hashes::hexists),
        b"HLEN" => ("hlen", 2, hashes::hlen),
        b"HKEYS" => ("hkeys", 2, hashes::hkeys),
        b"HVALS" => ("hvals", 2, hashes::hvals),
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
    let Some((lower, arity, handler)) = table(name) else {
        return unknown_command(args);
    };
    let n = args.len() as i32;
    if (arity > 0 && n != arity) || (arity < 0 && n < -arity) {
        return Reply::wrong_arity(lower);
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
