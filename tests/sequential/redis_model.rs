//! A reference model of Redis 7 for the data commands sessionmesh serves, written from Redis
//! 7.0's own source (`t_string.c`, `t_hash.c`, `t_set.c`, `t_zset.c`, `expire.c`, `db.c`,
//! `util.c`) and
//! checked against a real `redis-server` 7.0.
//!
//! It exists to be obviously right, not fast: one `BTreeMap` from key to value and absolute
//! expiry, every expired key dropped before each command (Redis's rule: a key is gone once
//! `now > expire_at`), and each command written as straight-line code in the order Redis checks
//! things, so that which error wins is Redis's choice too. It shares nothing with the core but
//! the [`Reply`] type, so a test comparing the two compares two independent implementations.
//!
//! Numbered databases (`SELECT`, `MOVE`, `FLUSHDB`, `FLUSHALL`, `SWAPDB`) as `db.c` has them,
//! one map per database.
//!
//! Sets (`SADD` … `SSCAN`) as `t_set.c` has them: a set whose last member goes is deleted, TTL
//! and all; the `…STORE`s replace their destination (its TTL too) or delete it. `SPOP` and
//! `SRANDMEMBER` are modelled where Redis's answer does not depend on its random picks (no
//! count on a set of one member, a count of 0, a count at least the set's size, a negative
//! count on a set of one member, the errors); they panic on any other, which the generator
//! never sends. `SSCAN` answers every matching member with cursor 0, as Redis does for a set
//! in a compact encoding, or for any set the generator makes under a `COUNT` of 10 or more.
//!
//! Sorted sets (`ZADD` … `ZSCAN`) as `t_zset.c` has them for a sorted set in its listpack
//! encoding (up to 128 members, which the generator never reaches): scores as `f64`, members
//! ordered by score then by member bytes, `-0` stored as `0`; scores read as `strtod` reads
//! them (hexadecimal too; a score must be all one number and in range, a range end need not be
//! either), replies as doubles and pairs (`Reply::Double`, `Reply::Pairs`), `ZSCAN`'s scores as
//! the listpack's text. A sorted set whose last member goes is deleted, TTL and all. Lex ranges
//! are modelled over members of one score only (Redis leaves the rest unspecified; the model
//! panics there), `ZRANDMEMBER` as `SRANDMEMBER`.
//!
//! What it leaves out: replication, memory limits, `DBSIZE` counting keys that expired but were
//! not reclaimed yet (a Redis accident of timing; here they are simply gone), and arguments with
//! embedded NUL bytes where Redis reads C strings.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use sessionmesh_core::{Float, Reply};

/// A value as the model stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelValue {
    /// A string.
    String(Vec<u8>),
    /// A hash: field to value, never empty.
    Hash(Fields),
    /// A set, never empty.
    Set(Members),
    /// A sorted set: member to score, never empty.
    ZSet(ZMembers),
}

/// A sorted set's score. Compared by its bits, so that states compare exactly (the model never
/// stores NaN, nor `-0`: Redis 7.0 keeps an integral score as an integer, and `-0` as `0`).
#[derive(Clone, Copy, Debug)]
pub struct Score(pub f64);

impl PartialEq for Score {
    fn eq(&self, other: &Score) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Score {}

/// A sorted set's members and their scores.
pub type ZMembers = BTreeMap<Vec<u8>, Score>;

/// A hash's fields and values.
pub type Fields = BTreeMap<Vec<u8>, Vec<u8>>;

/// A set's members.
pub type Members = BTreeSet<Vec<u8>>;

/// The model's key space: the selected database's keys, and the other databases' aside
/// (`SELECT` swaps them), as Redis keeps one dictionary per database.
#[derive(Clone, Debug, Default)]
pub struct Model {
    keys: BTreeMap<Vec<u8>, Entry>,
    /// The selected database (`SELECT`).
    db: u8,
    /// Every other database's keys.
    others: BTreeMap<u8, BTreeMap<Vec<u8>, Entry>>,
}

/// Redis's `databases` default.
const DATABASES: i64 = 16;

#[derive(Clone, Debug)]
struct Entry {
    value: ModelValue,
    /// Absolute expiry in ms; Redis keeps a signed `long long`, always positive once stored.
    expire_at: Option<i64>,
}

impl Entry {
    /// Redis's `keyIsExpired` is `now > when`: a key lives through its expiry millisecond.
    fn is_live(&self, now: i64) -> bool {
        self.expire_at.is_none_or(|when| now <= when)
    }
}

/// The options of `SET` and `GETEX`, as `parseExtendedStringArgumentsOrReply` reads them.
#[derive(Default)]
struct ExtFlags {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    ex: bool,
    px: bool,
    exat: bool,
    pxat: bool,
    expire: Option<Vec<u8>>,
}

impl Model {
    /// An empty key space.
    pub fn new() -> Model {
        Model::default()
    }

    /// Runs one command (name and arguments) at `now_ms` and returns Redis 7's reply.
    pub fn execute(&mut self, args: &[Vec<u8>], now_ms: u64) -> Reply {
        let Some(name) = args.first() else {
            return Reply::err("empty command");
        };
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        let Some(arity) = arity(&name) else {
            return unknown_command(args);
        };
        let argc = args.len() as i32;
        if (arity > 0 && argc != arity) || argc < -arity {
            return Reply::wrong_arity(&name);
        }
        let now = i64::try_from(now_ms).expect("now fits in i64");
        // Lazy expiry, done eagerly: every expired key is absent for every command.
        self.keys.retain(|_, e| e.is_live(now));
        match self.dispatch(&name, args, now) {
            Ok(reply) | Err(reply) => reply,
        }
    }

    /// The live keys of every database at `now_ms`, with their absolute expiry in ms, each
    /// name prefixed with its database's number as one byte (a representation for the
    /// comparison only).
    pub fn dump(&self, now_ms: u64) -> BTreeMap<Vec<u8>, (ModelValue, Option<u64>)> {
        let now = i64::try_from(now_ms).expect("now fits in i64");
        std::iter::once((self.db, &self.keys))
            .chain(self.others.iter().map(|(d, m)| (*d, m)))
            .flat_map(|(db, keys)| {
                keys.iter()
                    .filter(move |(_, e)| e.is_live(now))
                    .map(move |(k, e)| {
                        let expire = e
                            .expire_at
                            .map(|when| u64::try_from(when).expect("stored expiries are positive"));
                        let mut name = vec![db];
                        name.extend_from_slice(k);
                        (name, (e.value.clone(), expire))
                    })
            })
            .collect()
    }

    /// `selectDb`'s index: an integer (`getIntFromObjectOrReply`), then in range.
    fn db_index(arg: &[u8]) -> Result<u8, Reply> {
        let n =
            parse_int(arg).ok_or_else(|| Reply::err("value is not an integer or out of range"))?;
        if !(0..DATABASES).contains(&n) {
            return Err(Reply::err("DB index is out of range"));
        }
        Ok(n as u8)
    }

    /// The keys of database `db` (the selected one's are `self.keys`).
    fn db_mut(&mut self, db: u8) -> &mut BTreeMap<Vec<u8>, Entry> {
        if db == self.db {
            &mut self.keys
        } else {
            self.others.entry(db).or_default()
        }
    }

    /// `getFlushCommandFlags`: `ASYNC` or `SYNC` alone, nothing else.
    fn flush_flags(args: &[Vec<u8>]) -> Result<(), Reply> {
        match args.len() {
            1 => Ok(()),
            2 if args[1].eq_ignore_ascii_case(b"async")
                || args[1].eq_ignore_ascii_case(b"sync") =>
            {
                Ok(())
            }
            _ => Err(Reply::err("syntax error")),
        }
    }

    /// Runs a command whose arity was checked; `Err` carries an error reply.
    fn dispatch(&mut self, name: &str, args: &[Vec<u8>], now: i64) -> Result<Reply, Reply> {
        let key: &[u8] = args.get(1).map_or(&[], |k| k);
        Ok(match name {
            "get" => opt_bulk(self.string(key)?),
            "set" => {
                let flags = parse_ext(args, 3, true)?;
                self.set_generic(key, &args[2], &flags, "set", now, false)?
            }
            "setex" | "psetex" => {
                let flags = ExtFlags {
                    ex: name == "setex",
                    px: name == "psetex",
                    expire: Some(args[2].clone()),
                    ..ExtFlags::default()
                };
                self.set_generic(key, &args[3], &flags, name, now, false)?
            }
            "setnx" => {
                let flags = ExtFlags {
                    nx: true,
                    ..ExtFlags::default()
                };
                self.set_generic(key, &args[2], &flags, name, now, true)?
            }
            "getex" => self.getex(args, now)?,
            "getdel" => {
                let value = self.string(key)?;
                self.keys.remove(key);
                opt_bulk(value)
            }
            "mget" => Reply::Array(
                args[1..]
                    .iter()
                    .map(|k| opt_bulk(self.string(k).ok().flatten()))
                    .collect(),
            ),
            "mset" => {
                if args.len().is_multiple_of(2) {
                    return Err(Reply::wrong_arity(name));
                }
                for pair in args[1..].chunks(2) {
                    self.put(&pair[0], ModelValue::String(pair[1].clone()), None);
                }
                Reply::OK
            }
            "append" => match self.string(key)? {
                None => {
                    self.put(key, ModelValue::String(args[2].clone()), None);
                    int(args[2].len())
                }
                Some(mut value) => {
                    value.extend_from_slice(&args[2]);
                    let len = value.len();
                    self.entry_mut(key).value = ModelValue::String(value);
                    int(len)
                }
            },
            "strlen" => int(self.string(key)?.map_or(0, |v| v.len())),
            "incr" | "decr" | "incrby" | "decrby" => {
                // `incrbyCommand`/`decrbyCommand`: the argument first, then the key.
                let by = match name {
                    "incr" => 1,
                    "decr" => -1,
                    _ => {
                        let n = parse_int(&args[2]).ok_or_else(Reply::not_integer)?;
                        if name == "decrby" {
                            if n == i64::MIN {
                                return Err(Reply::err("decrement would overflow"));
                            }
                            -n
                        } else {
                            n
                        }
                    }
                };
                let cur = match self.string(key)? {
                    None => 0,
                    Some(v) => parse_int(&v).ok_or_else(Reply::not_integer)?,
                };
                let new = cur
                    .checked_add(by)
                    .ok_or_else(|| Reply::err("increment or decrement would overflow"))?;
                self.put_counted(key, None, new.to_string().into_bytes());
                Reply::Int(new)
            }
            "incrbyfloat" => {
                // The type and the value first, then the argument (`incrbyfloatCommand`).
                let cur = match self.string(key)? {
                    None => 0,
                    Some(v) => parse_float(&v).ok_or_else(not_float)?,
                };
                let by = parse_float(&args[2]).ok_or_else(not_float)?;
                let new = format_float(cur + by);
                self.put_counted(key, None, new.clone());
                bulk(new)
            }
            "hincrby" => {
                let by = parse_int(&args[3]).ok_or_else(Reply::not_integer)?;
                let cur = match self.hash(key)?.and_then(|h| h.get(&args[2]).cloned()) {
                    None => 0,
                    Some(v) => {
                        parse_int(&v).ok_or_else(|| Reply::err("hash value is not an integer"))?
                    }
                };
                let new = cur
                    .checked_add(by)
                    .ok_or_else(|| Reply::err("increment or decrement would overflow"))?;
                self.put_counted(key, Some(&args[2]), new.to_string().into_bytes());
                Reply::Int(new)
            }
            "hincrbyfloat" => {
                let by = parse_float(&args[3]).ok_or_else(not_float)?;
                let cur = match self.hash(key)?.and_then(|h| h.get(&args[2]).cloned()) {
                    None => 0,
                    Some(v) => {
                        parse_float(&v).ok_or_else(|| Reply::err("hash value is not a float"))?
                    }
                };
                let new = format_float(cur + by);
                self.put_counted(key, Some(&args[2]), new.clone());
                bulk(new)
            }
            "del" | "unlink" => int(args[1..]
                .iter()
                .filter(|k| self.keys.remove(*k).is_some())
                .count()),
            "exists" => int(args[1..]
                .iter()
                .filter(|k| self.keys.contains_key(*k))
                .count()),
            "type" => Reply::Simple(match self.keys.get(key).map(|e| &e.value) {
                None => "none",
                Some(ModelValue::String(_)) => "string",
                Some(ModelValue::Hash(_)) => "hash",
                Some(ModelValue::Set(_)) => "set",
                Some(ModelValue::ZSet(_)) => "zset",
            }),
            "rename" => {
                let Some(entry) = self.keys.get(key).cloned() else {
                    return Err(Reply::err("no such key"));
                };
                if args[1] != args[2] {
                    self.keys.remove(key);
                    // The destination's old value and TTL go; the source's TTL comes along.
                    self.keys.insert(args[2].clone(), entry);
                }
                Reply::OK
            }
            "expire" => self.expire_generic(args, now, now, true, name)?,
            "pexpire" => self.expire_generic(args, now, now, false, name)?,
            "expireat" => self.expire_generic(args, now, 0, true, name)?,
            "pexpireat" => self.expire_generic(args, now, 0, false, name)?,
            "ttl" | "pttl" => Reply::Int(match self.keys.get(key) {
                None => -2,
                Some(Entry {
                    expire_at: None, ..
                }) => -1,
                Some(Entry {
                    expire_at: Some(when),
                    ..
                }) => {
                    let ttl = (when - now).max(0);
                    if name == "pttl" {
                        ttl
                    } else {
                        (ttl + 500) / 1000
                    }
                }
            }),
            "persist" => match self.keys.get_mut(key) {
                Some(e) if e.expire_at.is_some() => {
                    e.expire_at = None;
                    Reply::Int(1)
                }
                _ => Reply::Int(0),
            },
            "hset" | "hmset" => {
                if !args.len().is_multiple_of(2) {
                    return Err(Reply::wrong_arity(name));
                }
                let mut hash = self.hash(key)?.unwrap_or_default();
                let created = args[2..]
                    .chunks(2)
                    .filter(|pair| hash.insert(pair[0].clone(), pair[1].clone()).is_none())
                    .count();
                self.put_hash(key, hash);
                if name == "hset" {
                    int(created)
                } else {
                    Reply::OK
                }
            }
            "hsetnx" => {
                let mut hash = self.hash(key)?.unwrap_or_default();
                if hash.contains_key(&args[2]) {
                    Reply::Int(0)
                } else {
                    hash.insert(args[2].clone(), args[3].clone());
                    self.put_hash(key, hash);
                    Reply::Int(1)
                }
            }
            "hget" => opt_bulk(self.hash(key)?.and_then(|h| h.get(&args[2]).cloned())),
            "hmget" => {
                let hash = self.hash(key)?.unwrap_or_default();
                Reply::Array(
                    args[2..]
                        .iter()
                        .map(|f| opt_bulk(hash.get(f).cloned()))
                        .collect(),
                )
            }
            "hgetall" => Reply::Map(
                self.hash(key)?
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(f, v)| (bulk(f), bulk(v)))
                    .collect(),
            ),
            "hkeys" => Reply::Array(
                self.hash(key)?
                    .unwrap_or_default()
                    .into_keys()
                    .map(bulk)
                    .collect(),
            ),
            "hvals" => Reply::Array(
                self.hash(key)?
                    .unwrap_or_default()
                    .into_values()
                    .map(bulk)
                    .collect(),
            ),
            "hdel" => {
                let Some(mut hash) = self.hash(key)? else {
                    return Ok(Reply::Int(0));
                };
                let deleted = args[2..]
                    .iter()
                    .filter(|f| hash.remove(*f).is_some())
                    .count();
                if hash.is_empty() {
                    // The last field took the key (and its TTL) with it.
                    self.keys.remove(key);
                } else {
                    self.entry_mut(key).value = ModelValue::Hash(hash);
                }
                int(deleted)
            }
            "hexists" => int(usize::from(
                self.hash(key)?.is_some_and(|h| h.contains_key(&args[2])),
            )),
            "hlen" => int(self.hash(key)?.map_or(0, |h| h.len())),
            "sadd" => {
                let mut set = self.set(key)?.unwrap_or_default();
                let added = args[2..].iter().filter(|m| set.insert(m.to_vec())).count();
                self.put_set(key, set);
                int(added)
            }
            "srem" => {
                let Some(mut set) = self.set(key)? else {
                    return Ok(Reply::Int(0));
                };
                let removed = args[2..].iter().filter(|m| set.remove(*m)).count();
                self.put_set(key, set);
                int(removed)
            }
            "smembers" => members(self.set(key)?.unwrap_or_default()),
            "sismember" => int(usize::from(
                self.set(key)?.is_some_and(|s| s.contains(&args[2])),
            )),
            "smismember" => {
                let set = self.set(key)?.unwrap_or_default();
                Reply::Array(
                    args[2..]
                        .iter()
                        .map(|m| int(usize::from(set.contains(m))))
                        .collect(),
                )
            }
            "scard" => int(self.set(key)?.map_or(0, |s| s.len())),
            "smove" => self.smove(&args[1], &args[2], &args[3])?,
            "sinter" | "sunion" | "sdiff" => members(self.algebra(name, &args[1..])?),
            "sinterstore" | "sunionstore" | "sdiffstore" => {
                let result = self.algebra(name, &args[2..])?;
                let n = result.len();
                if result.is_empty() {
                    self.keys.remove(key);
                } else {
                    // `setKey`: a new value, without the old one's TTL.
                    self.put(key, ModelValue::Set(result), None);
                }
                int(n)
            }
            "sintercard" => self.sintercard(args)?,
            "spop" => self.spop(args)?,
            "srandmember" => self.srandmember(args)?,
            "sscan" => self.sscan(args)?,
            "zadd" | "zincrby" => self.zadd(name, args)?,
            "zrem" => {
                let Some(mut z) = self.zset(key)? else {
                    return Ok(Reply::Int(0));
                };
                let removed = args[2..].iter().filter(|m| z.remove(*m).is_some()).count();
                self.put_zset(key, z);
                int(removed)
            }
            "zscore" => match self.zset(key)?.and_then(|z| z.get(&args[2]).copied()) {
                None => Reply::Nil,
                Some(x) => double(x.0),
            },
            "zmscore" => {
                let z = self.zset(key)?.unwrap_or_default();
                Reply::Array(
                    args[2..]
                        .iter()
                        .map(|m| z.get(m).map_or(Reply::Nil, |x| double(x.0)))
                        .collect(),
                )
            }
            "zcard" => int(self.zset(key)?.map_or(0, |z| z.len())),
            // The range first, then the key.
            "zcount" => {
                let range = ScoreRange::parse(&args[2], &args[3])?;
                let z = self.zset(key)?.unwrap_or_default();
                int(z.values().filter(|x| range.contains(x.0)).count())
            }
            "zlexcount" => {
                let range = LexRange::parse(&args[2], &args[3])?;
                let z = self.zset(key)?.unwrap_or_default();
                int(lex_entries(z, "ZLEXCOUNT")
                    .iter()
                    .filter(|(_, m)| range.contains(m))
                    .count())
            }
            "zrange" | "zrevrange" | "zrangebyscore" | "zrevrangebyscore" | "zrangebylex"
            | "zrevrangebylex" => self.zrange(name, args)?,
            "zrank" | "zrevrank" => {
                let Some(z) = self.zset(key)? else {
                    return Ok(Reply::Nil);
                };
                let entries = entries(z);
                match entries.iter().position(|(_, m)| *m == args[2]) {
                    None => Reply::Nil,
                    Some(i) if name == "zrevrank" => int(entries.len() - 1 - i),
                    Some(i) => int(i),
                }
            }
            "zremrangebyrank" | "zremrangebyscore" | "zremrangebylex" => {
                self.zremrange(name, args)?
            }
            "zpopmin" | "zpopmax" => self.zpop(name, args)?,
            "zrandmember" => self.zrandmember(args)?,
            "zscan" => self.zscan(args)?,
            "dbsize" => int(self.keys.len()),
            "select" => {
                let db = Self::db_index(&args[1])?;
                let current = std::mem::take(&mut self.keys);
                self.others.insert(self.db, current);
                self.keys = self.others.remove(&db).unwrap_or_default();
                self.db = db;
                Reply::OK
            }
            // `moveCommand`: the index, then another database, then the key, then the target.
            "move" => {
                let db = Self::db_index(&args[2])?;
                if db == self.db {
                    return Err(Reply::err("source and destination objects are the same"));
                }
                let Some(entry) = self.keys.get(key).cloned() else {
                    return Ok(Reply::Int(0));
                };
                let target = self.db_mut(db);
                target.retain(|_, e| e.is_live(now));
                if target.contains_key(key) {
                    return Ok(Reply::Int(0));
                }
                target.insert(key.to_vec(), entry);
                self.keys.remove(key);
                Reply::Int(1)
            }
            "flushdb" => {
                Self::flush_flags(args)?;
                self.keys.clear();
                Reply::OK
            }
            "flushall" => {
                Self::flush_flags(args)?;
                self.keys.clear();
                self.others.clear();
                Reply::OK
            }
            // `swapdbCommand`'s checks; the swap itself is refused by sessionmesh (a documented
            // difference), so the random sequences send only invalid ones.
            "swapdb" => {
                let index = |a: &[u8], which: &str| {
                    parse_int(a)
                        .filter(|n| i32::try_from(*n).is_ok())
                        .ok_or_else(|| Reply::err(format!("invalid {which} DB index")))
                };
                let (x, y) = (index(&args[1], "first")?, index(&args[2], "second")?);
                if !(0..DATABASES).contains(&x) || !(0..DATABASES).contains(&y) {
                    return Err(Reply::err("DB index is out of range"));
                }
                let (x, y) = (x as u8, y as u8);
                let a = std::mem::take(self.db_mut(x));
                let b = std::mem::replace(self.db_mut(y), a);
                *self.db_mut(x) = b;
                Reply::OK
            }
            "keys" => Reply::Array(
                self.keys
                    .keys()
                    .filter(|k| string_match(&args[1], k))
                    .map(|k| bulk(k.clone()))
                    .collect(),
            ),
            _ => unreachable!("every command with an arity is dispatched: {name}"),
        })
    }

    /// `setGenericCommand`: SET, SETEX, PSETEX and SETNX (`nx_ints` picks SETNX's 1/0 replies).
    fn set_generic(
        &mut self,
        key: &[u8],
        value: &[u8],
        flags: &ExtFlags,
        cmd: &str,
        now: i64,
        nx_ints: bool,
    ) -> Result<Reply, Reply> {
        let when = expire_ms(flags, now, cmd)?;
        let old = if flags.get {
            Some(opt_bulk(self.string(key)?))
        } else {
            None
        };
        let found = self.keys.contains_key(key);
        if (flags.nx && found) || (flags.xx && !found) {
            return Ok(old.unwrap_or(if nx_ints { Reply::Int(0) } else { Reply::Nil }));
        }
        let expire_at = if flags.keepttl {
            self.keys.get(key).and_then(|e| e.expire_at)
        } else {
            // An EXAT/PXAT in the past is stored as is; the key is gone once now passes it.
            when
        };
        self.put(key, ModelValue::String(value.to_vec()), expire_at);
        Ok(old.unwrap_or(if nx_ints { Reply::Int(1) } else { Reply::OK }))
    }

    /// `getexCommand`: the option syntax first, then the key, then the expire value.
    fn getex(&mut self, args: &[Vec<u8>], now: i64) -> Result<Reply, Reply> {
        let flags = parse_ext(args, 2, false)?;
        let key = &args[1];
        let Some(value) = self.string(key)? else {
            return Ok(Reply::Nil);
        };
        let when = expire_ms(&flags, now, "getex")?;
        match when {
            Some(when) if (flags.exat || flags.pxat) && when <= now => {
                self.keys.remove(key);
            }
            Some(when) => self.entry_mut(key).expire_at = Some(when),
            None if flags.persist => self.entry_mut(key).expire_at = None,
            None => {}
        }
        Ok(bulk(value))
    }

    /// `expireGenericCommand`: options, then the number, then overflow, then the key.
    fn expire_generic(
        &mut self,
        args: &[Vec<u8>],
        now: i64,
        basetime: i64,
        seconds: bool,
        cmd: &str,
    ) -> Result<Reply, Reply> {
        let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
        for opt in &args[3..] {
            match opt.to_ascii_uppercase().as_slice() {
                b"NX" => nx = true,
                b"XX" => xx = true,
                b"GT" => gt = true,
                b"LT" => lt = true,
                _ => {
                    return Err(Reply::err(format!(
                        "Unsupported option {}",
                        String::from_utf8_lossy(opt)
                    )))
                }
            }
        }
        if nx && (xx || gt || lt) {
            return Err(Reply::err(
                "NX and XX, GT or LT options at the same time are not compatible",
            ));
        }
        if gt && lt {
            return Err(Reply::err(
                "GT and LT options at the same time are not compatible",
            ));
        }
        let mut when = parse_int(&args[2]).ok_or_else(Reply::not_integer)?;
        if seconds {
            if !(i64::MIN / 1000..=i64::MAX / 1000).contains(&when) {
                return Err(invalid_expire(cmd));
            }
            when *= 1000;
        }
        if when > i64::MAX - basetime {
            return Err(invalid_expire(cmd));
        }
        when += basetime;
        let key = &args[1];
        let Some(current) = self.keys.get(key).map(|e| e.expire_at) else {
            return Ok(Reply::Int(0));
        };
        let refused = (nx && current.is_some())
            || (xx && current.is_none())
            || (gt && current.is_none_or(|c| when <= c))
            || (lt && current.is_some_and(|c| when >= c));
        if refused {
            return Ok(Reply::Int(0));
        }
        if when <= now {
            self.keys.remove(key);
        } else {
            self.entry_mut(key).expire_at = Some(when);
        }
        Ok(Reply::Int(1))
    }

    /// The string at `key`: `Ok(None)` if absent, WRONGTYPE if another type.
    fn string(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Reply> {
        match self.keys.get(key).map(|e| &e.value) {
            None => Ok(None),
            Some(ModelValue::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(Reply::wrong_type()),
        }
    }

    /// The hash at `key`: `Ok(None)` if absent, WRONGTYPE if another type.
    fn hash(&self, key: &[u8]) -> Result<Option<Fields>, Reply> {
        match self.keys.get(key).map(|e| &e.value) {
            None => Ok(None),
            Some(ModelValue::Hash(h)) => Ok(Some(h.clone())),
            Some(_) => Err(Reply::wrong_type()),
        }
    }

    /// The set at `key`: `Ok(None)` if absent, WRONGTYPE if another type.
    fn set(&self, key: &[u8]) -> Result<Option<Members>, Reply> {
        match self.keys.get(key).map(|e| &e.value) {
            None => Ok(None),
            Some(ModelValue::Set(s)) => Ok(Some(s.clone())),
            Some(_) => Err(Reply::wrong_type()),
        }
    }

    /// The sorted set at `key`: `Ok(None)` if absent, WRONGTYPE if another type.
    fn zset(&self, key: &[u8]) -> Result<Option<ZMembers>, Reply> {
        match self.keys.get(key).map(|e| &e.value) {
            None => Ok(None),
            Some(ModelValue::ZSet(z)) => Ok(Some(z.clone())),
            Some(_) => Err(Reply::wrong_type()),
        }
    }

    /// Stores a sorted set, keeping the key's TTL if it already existed; no members delete the
    /// key, TTL and all (`t_zset.c` deletes a sorted set whose last member goes).
    fn put_zset(&mut self, key: &[u8], z: ZMembers) {
        if z.is_empty() {
            self.keys.remove(key);
            return;
        }
        let expire_at = self.keys.get(key).and_then(|e| e.expire_at);
        self.put(key, ModelValue::ZSet(z), expire_at);
    }

    /// `zaddGenericCommand` (ZADD, and ZINCRBY as ZADD with INCR): the flags, the number of
    /// arguments, the flags' conflicts, every score, then the key; then `zsetAdd` pair by
    /// pair, in order (a member named twice sees its first pair's effect).
    fn zadd(&mut self, name: &str, args: &[Vec<u8>]) -> Result<Reply, Reply> {
        let (mut nx, mut xx, mut gt, mut lt, mut ch, mut incr) =
            (false, false, false, false, false, name == "zincrby");
        let mut i = 2;
        if name == "zadd" {
            while i < args.len() {
                match args[i].to_ascii_lowercase().as_slice() {
                    b"nx" => nx = true,
                    b"xx" => xx = true,
                    b"gt" => gt = true,
                    b"lt" => lt = true,
                    b"ch" => ch = true,
                    b"incr" => incr = true,
                    _ => break,
                }
                i += 1;
            }
        }
        let rest = &args[i..];
        if rest.is_empty() || rest.len() % 2 == 1 {
            return Err(Reply::syntax());
        }
        if nx && xx {
            return Err(Reply::err(
                "XX and NX options at the same time are not compatible",
            ));
        }
        if (nx && (gt || lt)) || (gt && lt) {
            return Err(Reply::err(
                "GT, LT, and/or NX options at the same time are not compatible",
            ));
        }
        if incr && rest.len() > 2 {
            return Err(Reply::err(
                "INCR option supports a single increment-element pair",
            ));
        }
        let mut pairs = Vec::new();
        for p in rest.chunks(2) {
            pairs.push((parse_score(&p[0]).ok_or_else(not_float)?, &p[1]));
        }
        let key = &args[1];
        let z = match self.zset(key)? {
            // No key and XX: nothing to do, and no key made.
            None if xx => return Ok(if incr { Reply::Nil } else { Reply::Int(0) }),
            None => ZMembers::new(),
            Some(z) => z,
        };
        self.zadd_into(key, z, &pairs, (nx, xx, gt, lt, ch, incr))
    }

    /// The loop of `zaddGenericCommand` over `zsetAdd`, into `z` (stored at `key` after, even
    /// when the NaN error stops it: INCR has one pair, so nothing changed by then).
    fn zadd_into(
        &mut self,
        key: &[u8],
        mut z: ZMembers,
        pairs: &[(f64, &Vec<u8>)],
        (nx, xx, gt, lt, ch, incr): (bool, bool, bool, bool, bool, bool),
    ) -> Result<Reply, Reply> {
        let (mut added, mut updated, mut processed) = (0, 0, 0);
        let mut last = 0.0;
        for (score, member) in pairs {
            let mut score = *score;
            match z.get(*member).map(|x| x.0) {
                Some(cur) => {
                    if nx {
                        continue;
                    }
                    if incr {
                        score += cur;
                        if score.is_nan() {
                            self.put_zset(key, z);
                            return Err(Reply::err("resulting score is not a number (NaN)"));
                        }
                    }
                    if (lt && score >= cur) || (gt && score <= cur) {
                        continue;
                    }
                    // The reply's score is the computed one, `-0` included; the stored one
                    // is `0`.
                    last = score;
                    processed += 1;
                    if score != cur {
                        z.insert((*member).clone(), stored(score));
                        updated += 1;
                    }
                }
                None if xx => continue,
                None => {
                    z.insert((*member).clone(), stored(score));
                    last = score;
                    added += 1;
                    processed += 1;
                }
            }
        }
        self.put_zset(key, z);
        Ok(if incr {
            if processed > 0 {
                double(last)
            } else {
                Reply::Nil
            }
        } else {
            int(if ch { added + updated } else { added })
        })
    }

    /// `zrangeGenericCommand` for ZRANGE and the older range commands (which preset the
    /// range's kind and direction): the options, their conflicts, the range, then the key.
    fn zrange(&self, name: &str, args: &[Vec<u8>]) -> Result<Reply, Reply> {
        #[derive(Clone, Copy, PartialEq)]
        enum By {
            Auto,
            Rank,
            Score,
            Lex,
        }
        let (mut by, mut rev) = match name {
            "zrange" => (By::Auto, None),
            "zrevrange" => (By::Rank, Some(true)),
            "zrangebyscore" => (By::Score, Some(false)),
            "zrevrangebyscore" => (By::Score, Some(true)),
            "zrangebylex" => (By::Lex, Some(false)),
            _ => (By::Lex, Some(true)),
        };
        let (mut withscores, mut offset, mut limit) = (false, 0, -1);
        let mut j = 4;
        while j < args.len() {
            let left = args.len() - j - 1;
            let a = args[j].to_ascii_lowercase();
            if a == b"withscores" {
                withscores = true;
            } else if a == b"limit" && left >= 2 {
                offset = parse_int(&args[j + 1]).ok_or_else(Reply::not_integer)?;
                limit = parse_int(&args[j + 2]).ok_or_else(Reply::not_integer)?;
                j += 2;
            } else if rev.is_none() && a == b"rev" {
                rev = Some(true);
            } else if by == By::Auto && a == b"bylex" {
                by = By::Lex;
            } else if by == By::Auto && a == b"byscore" {
                by = By::Score;
            } else {
                return Err(Reply::syntax());
            }
            j += 1;
        }
        let rev = rev.unwrap_or(false);
        if by == By::Auto {
            by = By::Rank;
        }
        if limit != -1 && by == By::Rank {
            return Err(Reply::err(
                "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
            ));
        }
        if withscores && by == By::Lex {
            return Err(Reply::err(
                "syntax error, WITHSCORES not supported in combination with BYLEX",
            ));
        }
        // Reversed score and lex ranges are given as max, min.
        let (min, max) = if rev && by != By::Rank {
            (&args[3], &args[2])
        } else {
            (&args[2], &args[3])
        };
        let range = match by {
            By::Score => Range::Score(ScoreRange::parse(min, max)?),
            By::Lex => Range::Lex(LexRange::parse(min, max)?),
            _ => Range::Rank(
                parse_int(min).ok_or_else(Reply::not_integer)?,
                parse_int(max).ok_or_else(Reply::not_integer)?,
            ),
        };
        let Some(z) = self.zset(&args[1])? else {
            return Ok(Reply::Array(Vec::new()));
        };
        let picked: Vec<(f64, Vec<u8>)> = match range {
            // `genericZrangebyrankCommand`: no LIMIT (a count of -1 is let through, its
            // offset unused).
            Range::Rank(start, end) => {
                let mut v = entries(z);
                if rev {
                    v.reverse();
                }
                match rank_span(start, end, v.len()) {
                    None => Vec::new(),
                    Some((a, b)) => v.drain(a..=b).collect(),
                }
            }
            Range::Score(r) => {
                let mut v: Vec<_> = entries(z)
                    .into_iter()
                    .filter(|(x, _)| r.contains(*x))
                    .collect();
                if rev {
                    v.reverse();
                }
                offset_limit(v, offset, limit)
            }
            Range::Lex(r) => {
                let mut v: Vec<_> = lex_entries(z, "a lex range")
                    .into_iter()
                    .filter(|(_, m)| r.contains(m))
                    .collect();
                if rev {
                    v.reverse();
                }
                offset_limit(v, offset, limit)
            }
        };
        Ok(scored(picked, withscores))
    }

    /// `zremrangeGenericCommand`: the range, then the key; a sorted set left empty is deleted.
    fn zremrange(&mut self, name: &str, args: &[Vec<u8>]) -> Result<Reply, Reply> {
        let range = match name {
            "zremrangebyrank" => Range::Rank(
                parse_int(&args[2]).ok_or_else(Reply::not_integer)?,
                parse_int(&args[3]).ok_or_else(Reply::not_integer)?,
            ),
            "zremrangebyscore" => Range::Score(ScoreRange::parse(&args[2], &args[3])?),
            _ => Range::Lex(LexRange::parse(&args[2], &args[3])?),
        };
        let Some(z) = self.zset(&args[1])? else {
            return Ok(Reply::Int(0));
        };
        let v = match range {
            Range::Lex(_) => lex_entries(z.clone(), "ZREMRANGEBYLEX"),
            _ => entries(z.clone()),
        };
        let span = match range {
            Range::Rank(start, end) => rank_span(start, end, v.len()),
            _ => None,
        };
        let gone: Vec<Vec<u8>> = v
            .into_iter()
            .enumerate()
            .filter(|(i, (x, m))| match &range {
                Range::Rank(..) => span.is_some_and(|(a, b)| (a..=b).contains(i)),
                Range::Score(r) => r.contains(*x),
                Range::Lex(r) => r.contains(m),
            })
            .map(|(_, (_, m))| m)
            .collect();
        let mut left = z;
        for m in &gone {
            left.remove(m);
        }
        self.put_zset(&args[1], left);
        Ok(int(gone.len()))
    }

    /// `genericZpopCommand`: more than one optional argument is a syntax error, then the count
    /// (`getPositiveLongFromObjectOrReply`), then the key. Without a count, one member and its
    /// score in a flat array; with one, pairs.
    fn zpop(&mut self, name: &str, args: &[Vec<u8>]) -> Result<Reply, Reply> {
        if args.len() > 3 {
            return Err(Reply::syntax());
        }
        let count = match args.get(2) {
            None => None,
            Some(c) => Some(
                parse_int(c)
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| Reply::err("value is out of range, must be positive"))?,
            ),
        };
        let Some(z) = self.zset(&args[1])? else {
            return Ok(Reply::Array(Vec::new()));
        };
        let mut v = entries(z.clone());
        if name == "zpopmax" {
            v.reverse();
        }
        let n = count.map_or(1, |c| usize::try_from(c).unwrap_or(usize::MAX));
        v.truncate(n);
        let mut left = z;
        for (_, m) in &v {
            left.remove(m);
        }
        self.put_zset(&args[1], left);
        Ok(match count {
            None => Reply::Array(
                v.into_iter()
                    .flat_map(|(x, m)| [bulk(m), double(x)])
                    .collect(),
            ),
            Some(_) => scored(v, true),
        })
    }

    /// `zrandmemberCommand`: the count (any `long` but `LONG_MIN`), then the syntax, then the
    /// bound WITHSCORES puts on the count, then the key. Modelled where Redis's answer does not
    /// depend on its picks (as `SRANDMEMBER`); it panics on any other.
    fn zrandmember(&self, args: &[Vec<u8>]) -> Result<Reply, Reply> {
        let key = &args[1];
        let Some(count) = args.get(2) else {
            return Ok(match self.zset(key)? {
                None => Reply::Nil,
                Some(z) => {
                    let members: Members = z.into_keys().collect();
                    bulk(only_member(&members, "ZRANDMEMBER"))
                }
            });
        };
        let count = parse_int(count).ok_or_else(Reply::not_integer)?;
        if count == i64::MIN {
            return Err(Reply::err(
                "value is out of range, value must between -9223372036854775807 and 9223372036854775807",
            ));
        }
        if args.len() > 4 || (args.len() == 4 && !args[3].eq_ignore_ascii_case(b"withscores")) {
            return Err(Reply::syntax());
        }
        let withscores = args.len() == 4;
        if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
            return Err(Reply::err("value is out of range"));
        }
        let Some(z) = self.zset(key)? else {
            return Ok(Reply::Array(Vec::new()));
        };
        if count == 0 {
            return Ok(Reply::Array(Vec::new()));
        }
        let v = entries(z);
        if count < 0 {
            // Repeats allowed: |count| picks, all the same member only in a set of one.
            let members: Members = v.iter().map(|(_, m)| m.clone()).collect();
            only_member(&members, "ZRANDMEMBER with a negative count");
            let picked = (0..count.unsigned_abs()).map(|_| v[0].clone()).collect();
            return Ok(scored(picked, withscores));
        }
        assert!(
            count as u64 >= v.len() as u64,
            "ZRANDMEMBER {count} of a sorted set of {}: Redis picks at random, which the model does not",
            v.len()
        );
        Ok(scored(v, withscores))
    }

    /// `zscanCommand`: the cursor, then the key (absent: an empty page, whatever the options),
    /// then the options. A sorted set as small as the generator makes is one page (Redis's
    /// listpack), members in order with their scores as the listpack holds them: an integral
    /// score within ±2⁶² as an integer, any other as `%.17g`.
    fn zscan(&self, args: &[Vec<u8>]) -> Result<Reply, Reply> {
        if !valid_cursor(&args[2]) {
            return Err(Reply::err("invalid cursor"));
        }
        let page = |items: Vec<Reply>| Reply::Array(vec![bulk(b"0".to_vec()), Reply::Array(items)]);
        let Some(z) = self.zset(&args[1])? else {
            return Ok(page(Vec::new()));
        };
        let mut pattern = None;
        let mut i = 3;
        while i < args.len() {
            let more = i + 1 < args.len();
            if args[i].eq_ignore_ascii_case(b"count") && more {
                let n = parse_int(&args[i + 1]).ok_or_else(Reply::not_integer)?;
                if n < 1 {
                    return Err(Reply::syntax());
                }
            } else if args[i].eq_ignore_ascii_case(b"match") && more {
                // `scanGenericCommand` skips a pattern of `*`, which so matches even an
                // empty member (`stringmatchlen` does not).
                pattern = Some(&args[i + 1]).filter(|p| p.as_slice() != b"*");
            } else {
                return Err(Reply::syntax());
            }
            i += 2;
        }
        Ok(page(
            entries(z)
                .into_iter()
                .filter(|(_, m)| pattern.is_none_or(|p| string_match(p, m)))
                .flat_map(|(x, m)| [bulk(m), bulk(listpack_text(x).into_bytes())])
                .collect(),
        ))
    }

    /// Stores a set's members, keeping the key's TTL if it already existed; no members delete
    /// the key, TTL and all (`t_set.c` deletes a set whose last member goes).
    fn put_set(&mut self, key: &[u8], set: Members) {
        if set.is_empty() {
            self.keys.remove(key);
            return;
        }
        let expire_at = self.keys.get(key).and_then(|e| e.expire_at);
        self.put(key, ModelValue::Set(set), expire_at);
    }

    /// `smoveCommand`: a missing source answers 0 before any type is checked; then both types;
    /// then the same key (a no-op answering membership); then the move, the destination
    /// keeping its TTL.
    fn smove(&mut self, src: &[u8], dst: &[u8], member: &[u8]) -> Result<Reply, Reply> {
        if !self.keys.contains_key(src) {
            return Ok(Reply::Int(0));
        }
        let mut from = self.set(src)?.unwrap_or_default();
        let mut to = self.set(dst)?.unwrap_or_default();
        if src == dst {
            return Ok(int(usize::from(from.contains(member))));
        }
        if !from.remove(member) {
            return Ok(Reply::Int(0));
        }
        self.put_set(src, from);
        to.insert(member.to_vec());
        self.put_set(dst, to);
        Ok(Reply::Int(1))
    }

    /// `sinterGenericCommand` and `sunionDiffGenericCommand`: every key's type checked in
    /// order (the first of another type answers WRONGTYPE, even after an absent key), an absent
    /// key an empty set.
    fn algebra(&self, name: &str, keys: &[Vec<u8>]) -> Result<Members, Reply> {
        let mut sets = Vec::with_capacity(keys.len());
        for k in keys {
            sets.push(self.set(k)?.unwrap_or_default());
        }
        let mut sets = sets.into_iter();
        let mut acc = sets.next().unwrap_or_default();
        for s in sets {
            if name.starts_with("sinter") {
                acc.retain(|m| s.contains(m));
            } else if name.starts_with("sunion") {
                acc.extend(s);
            } else {
                acc.retain(|m| !s.contains(m));
            }
        }
        Ok(acc)
    }

    /// `sinterCardCommand`: `numkeys`, then their number against the arguments, then the
    /// options, then the keys.
    fn sintercard(&self, args: &[Vec<u8>]) -> Result<Reply, Reply> {
        let numkeys = parse_int(&args[1])
            .filter(|n| *n >= 1)
            .ok_or_else(|| Reply::err("numkeys should be greater than 0"))?;
        if numkeys > args.len() as i64 - 2 {
            return Err(Reply::err(
                "Number of keys can't be greater than number of args",
            ));
        }
        let keys = &args[2..2 + numkeys as usize];
        let mut limit = 0;
        let mut j = 2 + numkeys as usize;
        while j < args.len() {
            if args[j].eq_ignore_ascii_case(b"limit") && j + 1 < args.len() {
                limit = parse_int(&args[j + 1])
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| Reply::err("LIMIT can't be negative"))?;
                j += 2;
            } else {
                return Err(Reply::syntax());
            }
        }
        let n = self.algebra("sinter", keys)?.len();
        Ok(int(if limit > 0 { n.min(limit as usize) } else { n }))
    }

    /// `spopCommand` and `spopWithCountCommand`: the count (`getPositiveLongFromObjectOrReply`)
    /// before the key.
    fn spop(&mut self, args: &[Vec<u8>]) -> Result<Reply, Reply> {
        if args.len() > 3 {
            return Err(Reply::syntax());
        }
        let key = &args[1];
        let Some(count) = args.get(2) else {
            let Some(set) = self.set(key)? else {
                return Ok(Reply::Nil);
            };
            let member = only_member(&set, "SPOP");
            self.keys.remove(key);
            return Ok(bulk(member));
        };
        let count = parse_int(count)
            .filter(|n| *n >= 0)
            .ok_or_else(|| Reply::err("value is out of range, must be positive"))?;
        let Some(set) = self.set(key)? else {
            return Ok(Reply::Set(Vec::new()));
        };
        if count == 0 {
            return Ok(Reply::Set(Vec::new()));
        }
        assert!(
            count as u64 >= set.len() as u64,
            "SPOP {count} of a set of {}: Redis picks at random, which the model does not",
            set.len()
        );
        self.keys.remove(key);
        Ok(Reply::Set(set.into_iter().map(bulk).collect()))
    }

    /// `srandmemberCommand` and `srandmemberWithCountCommand`: the count (any `long` but
    /// `LONG_MIN`) before the key.
    fn srandmember(&self, args: &[Vec<u8>]) -> Result<Reply, Reply> {
        if args.len() > 3 {
            return Err(Reply::syntax());
        }
        let key = &args[1];
        let Some(count) = args.get(2) else {
            return Ok(match self.set(key)? {
                None => Reply::Nil,
                Some(set) => bulk(only_member(&set, "SRANDMEMBER")),
            });
        };
        let count = parse_int(count).ok_or_else(Reply::not_integer)?;
        if count == i64::MIN {
            return Err(Reply::err(
                "value is out of range, value must between -9223372036854775807 and 9223372036854775807",
            ));
        }
        let Some(set) = self.set(key)? else {
            return Ok(Reply::Array(Vec::new()));
        };
        if count == 0 {
            return Ok(Reply::Array(Vec::new()));
        }
        if count < 0 {
            // Repeats allowed: |count| picks, all the same member only in a set of one.
            let member = only_member(&set, "SRANDMEMBER with a negative count");
            return Ok(Reply::Array(
                (0..count.unsigned_abs())
                    .map(|_| bulk(member.clone()))
                    .collect(),
            ));
        }
        assert!(
            count as u64 >= set.len() as u64,
            "SRANDMEMBER {count} of a set of {}: Redis picks at random, which the model does not",
            set.len()
        );
        Ok(Reply::Array(set.into_iter().map(bulk).collect()))
    }

    /// `sscanCommand`: the cursor, then the key (absent: an empty page, whatever the options),
    /// then the options (`scanGenericCommand`, which knows no `TYPE` for a set).
    fn sscan(&self, args: &[Vec<u8>]) -> Result<Reply, Reply> {
        if !valid_cursor(&args[2]) {
            return Err(Reply::err("invalid cursor"));
        }
        let page =
            |members: Vec<Reply>| Reply::Array(vec![bulk(b"0".to_vec()), Reply::Array(members)]);
        let Some(set) = self.set(&args[1])? else {
            return Ok(page(Vec::new()));
        };
        let mut pattern = None;
        let mut i = 3;
        while i < args.len() {
            let more = i + 1 < args.len();
            if args[i].eq_ignore_ascii_case(b"count") && more {
                let n = parse_int(&args[i + 1]).ok_or_else(Reply::not_integer)?;
                if n < 1 {
                    return Err(Reply::syntax());
                }
            } else if args[i].eq_ignore_ascii_case(b"match") && more {
                // `scanGenericCommand` skips a pattern of `*`, which so matches even an
                // empty member (`stringmatchlen` does not).
                pattern = Some(&args[i + 1]).filter(|p| p.as_slice() != b"*");
            } else {
                return Err(Reply::syntax());
            }
            i += 2;
        }
        Ok(page(
            set.into_iter()
                .filter(|m| pattern.is_none_or(|p| string_match(p, m)))
                .map(bulk)
                .collect(),
        ))
    }

    /// Replaces the whole key, value and TTL.
    fn put(&mut self, key: &[u8], value: ModelValue, expire_at: Option<i64>) {
        self.keys.insert(key.to_vec(), Entry { value, expire_at });
    }

    /// Stores a hash, keeping the key's TTL if it already existed.
    fn put_hash(&mut self, key: &[u8], hash: Fields) {
        let expire_at = self.keys.get(key).and_then(|e| e.expire_at);
        self.put(key, ModelValue::Hash(hash), expire_at);
    }

    /// Stores a counter's new value: the string (`field` `None`) or a hash field, keeping the
    /// key's TTL as Redis's counters do.
    fn put_counted(&mut self, key: &[u8], field: Option<&Vec<u8>>, value: Vec<u8>) {
        let expire_at = self.keys.get(key).and_then(|e| e.expire_at);
        match field {
            None => self.put(key, ModelValue::String(value), expire_at),
            Some(f) => {
                let mut hash = self.hash(key).ok().flatten().unwrap_or_default();
                hash.insert(f.clone(), value);
                self.put_hash(key, hash);
            }
        }
    }

    fn entry_mut(&mut self, key: &[u8]) -> &mut Entry {
        self.keys
            .get_mut(key)
            .expect("caller checked the key exists")
    }
}

/// Redis 7.0's arity of each modelled command (negative: at least that many).
fn arity(name: &str) -> Option<i32> {
    Some(match name {
        "get" | "getdel" | "strlen" | "type" | "ttl" | "pttl" | "persist" | "hgetall" | "hlen"
        | "hkeys" | "hvals" | "keys" => 2,
        "incr" | "decr" => 2,
        "setnx" | "append" | "rename" | "hget" | "hexists" | "incrby" | "decrby"
        | "incrbyfloat" => 3,
        "setex" | "psetex" | "hsetnx" | "hincrby" | "hincrbyfloat" => 4,
        "smembers" | "scard" => 2,
        "sismember" => 3,
        "smove" => 4,
        "spop" | "srandmember" | "sinter" | "sunion" | "sdiff" => -2,
        "sadd" | "srem" | "smismember" | "sintercard" | "sinterstore" | "sunionstore"
        | "sdiffstore" | "sscan" => -3,
        "zcard" => 2,
        "zscore" | "zrank" | "zrevrank" => 3,
        "zincrby" | "zcount" | "zlexcount" | "zremrangebyrank" | "zremrangebyscore"
        | "zremrangebylex" => 4,
        "zpopmin" | "zpopmax" | "zrandmember" => -2,
        "zrem" | "zmscore" | "zscan" => -3,
        "zadd" | "zrange" | "zrevrange" | "zrangebyscore" | "zrevrangebyscore" | "zrangebylex"
        | "zrevrangebylex" => -4,
        "dbsize" => 1,
        "select" => 2,
        "move" | "swapdb" => 3,
        "flushdb" | "flushall" => -1,
        "getex" | "mget" | "del" | "unlink" | "exists" => -2,
        "set" | "mset" | "expire" | "pexpire" | "expireat" | "pexpireat" | "hmget" | "hdel" => -3,
        "hset" | "hmset" => -4,
        _ => return None,
    })
}

/// `parseExtendedStringArgumentsOrReply`: each option is accepted only if it does not clash
/// with one already seen, so `EX 1 EX 2` is fine (the last wins) but `EX 1 PX 2` is not.
fn parse_ext(args: &[Vec<u8>], start: usize, for_set: bool) -> Result<ExtFlags, Reply> {
    let mut f = ExtFlags::default();
    let mut j = start;
    while j < args.len() {
        let opt = args[j].to_ascii_uppercase();
        let next = args.get(j + 1);
        let timed = f.ex || f.px || f.exat || f.pxat;
        match (opt.as_slice(), next) {
            (b"NX", _) if for_set && !f.xx => f.nx = true,
            (b"XX", _) if for_set && !f.nx => f.xx = true,
            (b"GET", _) if for_set => f.get = true,
            (b"KEEPTTL", _) if for_set && !f.persist && !timed => f.keepttl = true,
            (b"PERSIST", _) if !for_set && !timed && !f.keepttl => f.persist = true,
            (b"EX", Some(n)) if !f.keepttl && !f.persist && !f.exat && !f.px && !f.pxat => {
                f.ex = true;
                f.expire = Some(n.clone());
                j += 1;
            }
            (b"PX", Some(n)) if !f.keepttl && !f.persist && !f.ex && !f.exat && !f.pxat => {
                f.px = true;
                f.expire = Some(n.clone());
                j += 1;
            }
            (b"EXAT", Some(n)) if !f.keepttl && !f.persist && !f.ex && !f.px && !f.pxat => {
                f.exat = true;
                f.expire = Some(n.clone());
                j += 1;
            }
            (b"PXAT", Some(n)) if !f.keepttl && !f.persist && !f.ex && !f.exat && !f.px => {
                f.pxat = true;
                f.expire = Some(n.clone());
                j += 1;
            }
            _ => return Err(Reply::syntax()),
        }
        j += 1;
    }
    Ok(f)
}

/// `getExpireMillisecondsOrReply`: the absolute expiry of a SET/GETEX option, if any.
fn expire_ms(flags: &ExtFlags, now: i64, cmd: &str) -> Result<Option<i64>, Reply> {
    let Some(raw) = &flags.expire else {
        return Ok(None);
    };
    let value = parse_int(raw).ok_or_else(Reply::not_integer)?;
    let seconds = flags.ex || flags.exat;
    if value <= 0 || (seconds && value > i64::MAX / 1000) {
        return Err(invalid_expire(cmd));
    }
    let ms = if seconds { value * 1000 } else { value };
    if flags.ex || flags.px {
        // Redis adds and then checks for a wrapped (non-positive) result.
        return ms
            .checked_add(now)
            .map(Some)
            .ok_or_else(|| invalid_expire(cmd));
    }
    Ok(Some(ms))
}

/// A float as `string2ld` reads one, for the numbers the generator makes, in quarters: its
/// float increments are binary fractions (0.5, -1.25), so every value the model meets is a
/// whole number of quarters, which an `i128` holds exactly at any magnitude an `i64` counter
/// reaches, as Redis's `long double` does (an `f64` does not, past 2⁵³). Integers are read
/// from their digits; Rust's parser reads the rest (it accepts more than Redis — `inf`, `nan`
/// — which the generator does not make).
fn parse_float(s: &[u8]) -> Option<i128> {
    let t = std::str::from_utf8(s).ok()?;
    if t.is_empty() || t.starts_with(|c: char| c.is_whitespace()) {
        return None;
    }
    if let Ok(n) = t.parse::<i128>() {
        return Some(n * 4);
    }
    let v = t
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && v.abs() < 1e15)?;
    let q = v * 4.0;
    assert_eq!(q, q.trunc(), "the generator makes only quarters, not {t}");
    Some(q as i128)
}

/// `INCRBYFLOAT`'s reply for a number of quarters: `%.17Lf` with the trailing zeros (and
/// point) dropped.
fn format_float(q: i128) -> Vec<u8> {
    let sign = if q < 0 { "-" } else { "" };
    let (int, frac) = (q.unsigned_abs() / 4, q.unsigned_abs() % 4);
    let frac = ["", ".25", ".5", ".75"][frac as usize];
    format!("{sign}{int}{frac}").into_bytes()
}

fn not_float() -> Reply {
    Reply::err("value is not a valid float")
}

/// C's `isspace` in the "C" locale.
fn c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// What glibc's `strtod` reads from the whole of `s` (no leading space here), with whether it
/// was out of range (`ERANGE`: an overflow to ±inf, or a nonzero number below the smallest
/// subnormal read as 0); `None` if `s` is not all one number. Decimal forms, `inf`,
/// `infinity` and `nan` (any case, signed) are Rust's reading, which is glibc's (both round
/// correctly); hexadecimal forms (`0x10`, `0x1p3`, `0x.8`) are read here, for the short
/// mantissas a test writes.
fn strtod(s: &str) -> Option<(f64, bool)> {
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let hex = body.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("0x"));
    if !hex {
        let x: f64 = s.parse().ok()?;
        let lower = body.to_ascii_lowercase();
        let literal_inf = lower.starts_with("inf");
        let overflow = x.is_infinite() && !literal_inf;
        let mantissa = lower.split('e').next().unwrap_or("");
        let underflow = x == 0.0 && mantissa.bytes().any(|c| (b'1'..=b'9').contains(&c));
        return Some((x, overflow || underflow));
    }
    let digits = &body[2..];
    let (mantissa, exp) = match digits.find(['p', 'P']) {
        Some(i) => (&digits[..i], Some(&digits[i + 1..])),
        None => (digits, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let all = format!("{int}{frac}");
    if !all.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    assert!(
        all.len() <= 13,
        "a hexadecimal mantissa the model reads exactly: {s}"
    );
    let mut x = u64::from_str_radix(if all.is_empty() { "0" } else { &all }, 16).ok()? as f64;
    let mut e = -4 * frac.len() as i32;
    if let Some(exp) = exp {
        e += exp.parse::<i32>().ok()?;
    }
    x *= 2f64.powi(e);
    Some((if negative { -x } else { x }, x.is_infinite()))
}

/// A score as `getDoubleFromObject` reads one (ZADD, ZINCRBY): `strtod` over the whole
/// argument, not empty, no leading space, not out of range, not NaN.
fn parse_score(s: &[u8]) -> Option<f64> {
    let t = std::str::from_utf8(s).ok()?;
    if t.is_empty() || c_space(s[0]) {
        return None;
    }
    let (x, out_of_range) = strtod(t)?;
    (!out_of_range && !x.is_nan()).then_some(x)
}

/// A score as the listpack stores it: `-0` as `0` (an integer there).
fn stored(x: f64) -> Score {
    Score(if x == 0.0 { 0.0 } else { x })
}

/// A score as Redis 7.0 writes it: `%.17g` (the core's [`Float::text`], checked by hand
/// against redis-server 7.0.15 for `0.1`, `1e-05`, `1e+17`, `1.2345678901234568e+17`, `1e+20`,
/// `1.5000000000000001e+300`, `3.999955468730732e-320`, `4.6116860184273889e+18`, `5e+18`).
fn double(x: f64) -> Reply {
    Reply::Double(Float(x))
}

/// A score as ZSCAN answers it from a listpack, which holds an integral score within
/// ±2⁶² (`double2ll`) as an integer and any other as `%.17g` text.
fn listpack_text(x: f64) -> String {
    let bound = (i64::MAX / 2) as f64;
    if (-bound..=bound).contains(&x) && x == x.trunc() {
        format!("{}", x as i64)
    } else {
        Float(x).text()
    }
}

/// One end of a score range (`zslParseRange`): `(` for exclusive, then `strtod`, which here
/// skips leading space, reads an empty string as 0, lets an overflow through as ±inf, and
/// must reach the end; NaN is refused.
fn range_end(s: &[u8]) -> Option<(f64, bool)> {
    let (excl, s) = match s.first() {
        Some(b'(') => (true, &s[1..]),
        _ => (false, s),
    };
    if s.is_empty() {
        return Some((0.0, excl));
    }
    let start = s.iter().position(|c| !c_space(*c))?;
    let (x, _) = strtod(std::str::from_utf8(&s[start..]).ok()?)?;
    (!x.is_nan()).then_some((x, excl))
}

/// A score range `min..max`, each end `(value, exclusive)`.
#[derive(Clone, Copy)]
struct ScoreRange((f64, bool), (f64, bool));

impl ScoreRange {
    fn parse(min: &[u8], max: &[u8]) -> Result<ScoreRange, Reply> {
        match (range_end(min), range_end(max)) {
            (Some(a), Some(b)) => Ok(ScoreRange(a, b)),
            _ => Err(Reply::err("min or max is not a float")),
        }
    }

    fn contains(&self, x: f64) -> bool {
        let ((min, minex), (max, maxex)) = (self.0, self.1);
        (if minex { x > min } else { x >= min }) && (if maxex { x < max } else { x <= max })
    }
}

/// One end of a lex range (`zslParseLexRangeItem`): `-` and `+` alone, or `[`/`(` and a
/// member.
#[derive(Clone)]
enum LexEnd {
    Min,
    Max,
    Incl(Vec<u8>),
    Excl(Vec<u8>),
}

#[derive(Clone)]
struct LexRange(LexEnd, LexEnd);

impl LexRange {
    fn parse(min: &[u8], max: &[u8]) -> Result<LexRange, Reply> {
        let end = |s: &[u8]| match s.first() {
            Some(b'-') if s.len() == 1 => Some(LexEnd::Min),
            Some(b'+') if s.len() == 1 => Some(LexEnd::Max),
            Some(b'[') => Some(LexEnd::Incl(s[1..].to_vec())),
            Some(b'(') => Some(LexEnd::Excl(s[1..].to_vec())),
            _ => None,
        };
        match (end(min), end(max)) {
            (Some(a), Some(b)) => Ok(LexRange(a, b)),
            _ => Err(Reply::err("min or max not valid string range item")),
        }
    }

    fn contains(&self, m: &[u8]) -> bool {
        let above = match &self.0 {
            LexEnd::Min => true,
            LexEnd::Max => false,
            LexEnd::Incl(x) => m >= &x[..],
            LexEnd::Excl(x) => m > &x[..],
        };
        let below = match &self.1 {
            LexEnd::Min => false,
            LexEnd::Max => true,
            LexEnd::Incl(x) => m <= &x[..],
            LexEnd::Excl(x) => m < &x[..],
        };
        above && below
    }
}

/// What a range command selects: ranks (negative from the end), scores, or members.
enum Range {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

/// A sorted set's entries in Redis's order: by score, then by member bytes.
fn entries(z: ZMembers) -> Vec<(f64, Vec<u8>)> {
    let mut v: Vec<(f64, Vec<u8>)> = z.into_iter().map(|(m, x)| (x.0, m)).collect();
    v.sort_by(|a, b| {
        a.0.partial_cmp(&b.0)
            .expect("no NaN is stored")
            .then_with(|| a.1.cmp(&b.1))
    });
    v
}

/// The entries of a sorted set whose members all have one score: the only case where Redis
/// specifies a lex range's answer (it walks the listpack from the first member at or above
/// the minimum to the first above the maximum). The generator sends lex ranges only to such
/// a key; the model panics on any other.
fn lex_entries(z: ZMembers, cmd: &str) -> Vec<(f64, Vec<u8>)> {
    let v = entries(z);
    assert!(
        v.windows(2).all(|w| w[0].0 == w[1].0),
        "{cmd} over members with different scores: Redis leaves the answer unspecified"
    );
    v
}

/// `start..=end` of `len` ranks as Redis clamps them (negative from the end); `None` if empty.
fn rank_span(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { len + start } else { start }.max(0);
    let end = if end < 0 { len + end } else { end };
    if start > end || start >= len {
        return None;
    }
    Some((start as usize, end.min(len - 1) as usize))
}

/// `LIMIT offset count` over a score or lex range: a negative offset gives nothing, a
/// negative count no limit.
fn offset_limit(v: Vec<(f64, Vec<u8>)>, offset: i64, limit: i64) -> Vec<(f64, Vec<u8>)> {
    if offset < 0 {
        return Vec::new();
    }
    let rest = v
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX));
    match usize::try_from(limit) {
        Ok(n) => rest.take(n).collect(),
        Err(_) => rest.collect(),
    }
}

/// Members, or members and their scores as pairs (RESP3 two-element arrays, flat in RESP2).
fn scored(v: Vec<(f64, Vec<u8>)>, withscores: bool) -> Reply {
    if withscores {
        Reply::Pairs(v.into_iter().map(|(x, m)| (bulk(m), double(x))).collect())
    } else {
        Reply::Array(v.into_iter().map(|(_, m)| bulk(m)).collect())
    }
}

/// Redis's `string2ll`: at most 20 bytes, an optional `-`, no `+`, no leading zeros, no
/// spaces, and `-0` is not a number.
fn parse_int(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() >= 21 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    if !matches!(digits.first(), Some(b'1'..=b'9')) || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let magnitude: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// `stringmatchlen` from Redis's `util.c`, case-sensitive, transcribed step by step (including
/// its handling of unterminated `[` classes and reversed ranges such as `[z-a]`). Bytes past
/// the end of the pattern read as NUL, as they do in Redis's NUL-terminated strings.
fn string_match(pattern: &[u8], string: &[u8]) -> bool {
    let mut skip_longer = false;
    match_impl(pattern, string, &mut skip_longer)
}

fn match_impl(pattern: &[u8], string: &[u8], skip_longer: &mut bool) -> bool {
    let at = |i: usize| pattern.get(i).copied().unwrap_or(0);
    let (mut p, mut s) = (0usize, 0usize);
    // `p + plen == pattern.len()` throughout, exactly as `pattern`/`patternLen` move together.
    let plen = |p: usize| pattern.len() - p;
    while plen(p) > 0 && s < string.len() {
        let c = string[s];
        match at(p) {
            b'*' => {
                while plen(p) > 0 && at(p + 1) == b'*' {
                    p += 1;
                }
                if plen(p) == 1 {
                    return true;
                }
                while s < string.len() {
                    if match_impl(&pattern[p + 1..], &string[s..], skip_longer) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    s += 1;
                }
                *skip_longer = true;
                return false;
            }
            b'?' => s += 1,
            b'[' => {
                p += 1;
                let not = at(p) == b'^';
                if not {
                    p += 1;
                }
                let mut matched = false;
                loop {
                    if at(p) == b'\\' && plen(p) >= 2 {
                        p += 1;
                        if at(p) == c {
                            matched = true;
                        }
                    } else if at(p) == b']' {
                        break;
                    } else if plen(p) == 0 {
                        p -= 1;
                        break;
                    } else if plen(p) >= 3 && at(p + 1) == b'-' {
                        // C compares `char`s, which are signed on the platforms Redis runs on.
                        let (mut start, mut end) = (at(p) as i8, at(p + 2) as i8);
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        p += 2;
                        if (start..=end).contains(&(c as i8)) {
                            matched = true;
                        }
                    } else if at(p) == c {
                        matched = true;
                    }
                    p += 1;
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                s += 1;
            }
            b => {
                let b = if b == b'\\' && plen(p) >= 2 {
                    p += 1;
                    at(p)
                } else {
                    b
                };
                if b != c {
                    return false;
                }
                s += 1;
            }
        }
        p += 1;
        if s == string.len() {
            while at(p) == b'*' {
                p += 1;
            }
            break;
        }
    }
    plen(p) == 0 && s == string.len()
}

/// Redis's reply to a command it does not know (`processCommand`'s format, newlines blanked).
fn unknown_command(args: &[Vec<u8>]) -> Reply {
    let mut rest = Vec::new();
    for arg in &args[1..] {
        if rest.len() >= 128 {
            break;
        }
        let room = 128 - rest.len();
        rest.push(b'\'');
        rest.extend_from_slice(&arg[..arg.len().min(room)]);
        rest.extend_from_slice(b"' ");
    }
    let name = &args[0][..args[0].len().min(128)];
    let text = format!(
        "ERR unknown command '{}', with args beginning with: {}",
        String::from_utf8_lossy(name),
        String::from_utf8_lossy(&rest)
    );
    Reply::Error(text.replace(['\r', '\n'], " ").into())
}

fn invalid_expire(cmd: &str) -> Reply {
    Reply::err(format!("invalid expire time in '{cmd}' command"))
}

/// The member of a set of one: what `SPOP` and `SRANDMEMBER` answer whatever they pick.
fn only_member(set: &Members, cmd: &str) -> Vec<u8> {
    assert_eq!(
        set.len(),
        1,
        "{cmd} of a set of {} members: Redis picks at random, which the model does not",
        set.len()
    );
    set.first().cloned().expect("one member")
}

/// A set reply (`SMEMBERS`, `SINTER` …), members in byte order.
fn members(set: Members) -> Reply {
    Reply::Set(set.into_iter().map(bulk).collect())
}

/// `parseScanCursorOrReply`: `strtoul` in base 10 must read the whole argument, which must not
/// start with a space nor overflow an `unsigned long`. `strtoul` takes one sign, and negates
/// the magnitude for `-`; with no digit after it, it reads nothing, so the argument is not
/// read whole (`""` is: it is the number 0).
fn valid_cursor(arg: &[u8]) -> bool {
    let digits = match arg.first() {
        Some(b'+' | b'-') if arg.len() == 1 => return false,
        Some(b'+' | b'-') => &arg[1..],
        _ => arg,
    };
    digits.iter().all(u8::is_ascii_digit)
        && (digits.is_empty()
            || std::str::from_utf8(digits).is_ok_and(|d| d.parse::<u64>().is_ok()))
}

fn bulk(b: Vec<u8>) -> Reply {
    Reply::Bulk(Bytes::from(b))
}

fn opt_bulk(b: Option<Vec<u8>>) -> Reply {
    b.map_or(Reply::Nil, bulk)
}

fn int(n: usize) -> Reply {
    Reply::Int(i64::try_from(n).expect("counts fit in i64"))
}
