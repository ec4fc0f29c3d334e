//! The command table: every command a client may send, described once.
//!
//! Each [`Spec`] gives a command's name, Redis arity, flags ([`Flags`], in the order and with
//! the names `COMMAND INFO` prints), key positions ([`KeySpec`]: first, last, step, as Redis
//! reports them — what a later issue routes keys to shards and cluster slots by), group and
//! summary for `COMMAND DOCS`, and who runs it ([`Exec`]: the core's handler for a data
//! command, the connection for the rest). Everything else is derived from it: the lookup from
//! a name to a [`CommandId`] (done once per command, by the Redis server), the arity check,
//! whether a command writes (it is stamped before it runs), whether it waits while a restarted
//! region restores (no `loading` flag), whether it may run before `AUTH` (`no_auth`), the
//! metrics' per-command series, and `COMMAND`'s replies.
//!
//! Adding a command: one row here (and its handler in the family's file for a data command).

use super::{cas, counters, hashes, keys, lcs, sets, strings, substrings, zsets, Ctx};
use crate::reply::Reply;
use bytes::Bytes;

/// A data command's implementation: runs it against the key space. It may index `args` up to
/// the command's arity (checked before it is called).
pub type Handler = fn(&mut Ctx<'_>, &[Bytes]) -> Reply;

/// Redis command flags, as a set. Rendered by [`Flags::names`] in Redis's own order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Flags(u32);

impl Flags {
    /// May modify the key space (stamped before it runs).
    pub const WRITE: Flags = Flags(1);
    /// Only reads the key space.
    pub const READONLY: Flags = Flags(1 << 1);
    /// May grow memory use.
    pub const DENYOOM: Flags = Flags(1 << 2);
    /// Administrative.
    pub const ADMIN: Flags = Flags(1 << 3);
    /// Publish/subscribe.
    pub const PUBSUB: Flags = Flags(1 << 4);
    /// Not allowed in scripts.
    pub const NOSCRIPT: Flags = Flags(1 << 5);
    /// May block the connection.
    pub const BLOCKING: Flags = Flags(1 << 6);
    /// Allowed while the server loads (here: while a restarted region restores).
    pub const LOADING: Flags = Flags(1 << 7);
    /// Allowed on a stale replica.
    pub const STALE: Flags = Flags(1 << 8);
    /// Not logged in the slow log.
    pub const SKIP_SLOWLOG: Flags = Flags(1 << 9);
    /// Constant or logarithmic time.
    pub const FAST: Flags = Flags(1 << 10);
    /// Allowed before `AUTH`.
    pub const NO_AUTH: Flags = Flags(1 << 11);
    /// Allowed while a script is busy.
    pub const ALLOW_BUSY: Flags = Flags(1 << 12);

    /// Every flag with its `COMMAND INFO` name, in the order Redis prints them.
    const NAMES: [(Flags, &'static str); 13] = [
        (Flags::WRITE, "write"),
        (Flags::READONLY, "readonly"),
        (Flags::DENYOOM, "denyoom"),
        (Flags::ADMIN, "admin"),
        (Flags::PUBSUB, "pubsub"),
        (Flags::NOSCRIPT, "noscript"),
        (Flags::BLOCKING, "blocking"),
        (Flags::LOADING, "loading"),
        (Flags::STALE, "stale"),
        (Flags::SKIP_SLOWLOG, "skip_slowlog"),
        (Flags::FAST, "fast"),
        (Flags::NO_AUTH, "no_auth"),
        (Flags::ALLOW_BUSY, "allow_busy"),
    ];

    /// No flag.
    pub const NONE: Flags = Flags(0);

    /// Both sets.
    pub const fn or(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The set flags' names, in Redis's order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Flags::NAMES
            .into_iter()
            .filter(move |(f, _)| self.contains(*f))
            .map(|(_, n)| n)
    }
}

/// Where a command's keys are among its arguments, as `COMMAND INFO` gives them: the first
/// key's position, the last's (negative: counted from the end, `-1` the last argument), and the
/// step between keys. All zero: no keys.
///
/// A command whose keys are counted by an argument (`SINTERCARD numkeys key …`) has
/// `numkeys`, that argument's position, and first, last and step zero, as Redis reports such
/// "movable keys" commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeySpec {
    /// Position of the first key (0: none).
    pub first: i64,
    /// Position of the last key; negative counts from the end.
    pub last: i64,
    /// Distance between keys.
    pub step: i64,
    /// Position of the argument that counts the keys following it (0: none).
    pub numkeys: usize,
}

impl KeySpec {
    /// A key spec.
    pub const fn new(first: i64, last: i64, step: i64) -> KeySpec {
        KeySpec {
            first,
            last,
            step,
            numkeys: 0,
        }
    }

    /// A destination at position 1, then keys counted by the argument at 2 (`ZUNIONSTORE dst
    /// numkeys key …`): `COMMAND INFO` shows `1 1 1`, as Redis does.
    pub const fn dst_then_counted() -> KeySpec {
        KeySpec {
            first: 1,
            last: 1,
            step: 1,
            numkeys: 2,
        }
    }

    /// Keys counted by the argument at `at`, following it.
    pub const fn counted(at: usize) -> KeySpec {
        KeySpec {
            first: 0,
            last: 0,
            step: 0,
            numkeys: at,
        }
    }

    /// The positions of the keys in a command line `args` (name included) under this spec.
    pub fn positions(&self, args: &[Bytes]) -> impl Iterator<Item = usize> {
        let n = args.len();
        // A destination before the counted keys (`ZUNIONSTORE`).
        let dst = (self.numkeys > 0 && self.first > 0 && (self.first as usize) < n)
            .then_some(self.first as usize);
        let (first, count, step) = if self.numkeys > 0 {
            // An unreadable or too large count: no keys (the command refuses it).
            let count = args
                .get(self.numkeys)
                .and_then(|c| super::parse_u64(c))
                .filter(|c| *c as usize <= n.saturating_sub(self.numkeys + 1))
                .unwrap_or(0) as usize;
            (self.numkeys + 1, count, 1)
        } else {
            let n = n as i64;
            let last = if self.last < 0 {
                n + self.last
            } else {
                self.last.min(n - 1)
            };
            let (first, step) = (self.first, self.step.max(1));
            let count = if first == 0 || last < first {
                0
            } else {
                ((last - first) / step + 1) as usize
            };
            (first.max(0) as usize, count, step as usize)
        };
        dst.into_iter()
            .chain((0..count).map(move |i| first + i * step))
    }

    /// The keys of a command line `args` (name included) under this spec.
    pub fn keys<'a>(&self, args: &'a [Bytes]) -> impl Iterator<Item = &'a Bytes> + 'a {
        self.positions(args).filter_map(|i| args.get(i))
    }
}

/// A command's group in `COMMAND DOCS` (and its ACL category in `COMMAND INFO`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// Strings.
    String,
    /// Hashes.
    Hash,
    /// Sets.
    Set,
    /// Sorted sets.
    SortedSet,
    /// The key space.
    Generic,
    /// Server.
    Server,
    /// Connection.
    Connection,
    /// `MULTI`/`EXEC`.
    Transactions,
    /// `EVAL` and `SCRIPT`.
    Scripting,
    /// Publish/subscribe.
    PubSub,
}

impl Group {
    /// The name `COMMAND DOCS` gives.
    pub fn name(self) -> &'static str {
        match self {
            Group::String => "string",
            Group::Hash => "hash",
            Group::Set => "set",
            Group::SortedSet => "sorted-set",
            Group::Generic => "generic",
            Group::Server => "server",
            Group::Connection => "connection",
            Group::Transactions => "transactions",
            Group::Scripting => "scripting",
            Group::PubSub => "pubsub",
        }
    }

    /// The ACL category `COMMAND INFO` lists first.
    pub fn acl(self) -> &'static str {
        match self {
            Group::String => "@string",
            Group::Hash => "@hash",
            Group::Set => "@set",
            Group::SortedSet => "@sortedset",
            Group::Generic => "@keyspace",
            Group::Connection => "@connection",
            Group::Transactions => "@transaction",
            Group::Scripting => "@scripting",
            Group::PubSub => "@pubsub",
            Group::Server => "@admin",
        }
    }
}

/// Who runs a command.
#[derive(Clone, Copy)]
pub enum Exec {
    /// The core, against the key space (through the node, under its lock).
    Data(Handler),
    /// The connection (the Redis server), without the key space.
    Connection,
}

impl std::fmt::Debug for Exec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Exec::Data(_) => "Data",
            Exec::Connection => "Connection",
        })
    }
}

/// One command, described once.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// Lower-case name.
    pub name: &'static str,
    /// Redis arity: the exact argument count including the name, or `-n` for at least `n`.
    pub arity: i32,
    /// Its flags.
    pub flags: Flags,
    /// Where its keys are.
    pub keys: KeySpec,
    /// Its group.
    pub group: Group,
    /// One line for `COMMAND DOCS`.
    pub summary: &'static str,
    /// Who runs it.
    pub exec: Exec,
}

impl Spec {
    /// Whether `argc` arguments (including the name) fit this command's arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i64;
        let a = i64::from(self.arity);
        if a >= 0 {
            argc == a
        } else {
            argc >= -a
        }
    }

    /// Whether the core runs it.
    pub fn is_data(&self) -> bool {
        matches!(self.exec, Exec::Data(_))
    }

    /// Whether it may write (stamped before it runs).
    pub fn is_write(&self) -> bool {
        self.flags.contains(Flags::WRITE)
    }
}

use Flags as F;

const W: Flags = F::WRITE.or(F::DENYOOM);
const WF: Flags = W.or(F::FAST);
const WR: Flags = F::WRITE;
const WRF: Flags = F::WRITE.or(F::FAST);
const RO: Flags = F::READONLY;
const ROF: Flags = F::READONLY.or(F::FAST);
const CONN: Flags = F::NOSCRIPT.or(F::LOADING).or(F::STALE).or(F::FAST);
const TX: Flags = CONN.or(F::ALLOW_BUSY);
const SCRIPT: Flags = F::NOSCRIPT.or(F::STALE);
const PUBSUB: Flags = F::PUBSUB.or(F::NOSCRIPT).or(F::LOADING).or(F::STALE);
const K1: KeySpec = KeySpec::new(1, 1, 1);
const KALL: KeySpec = KeySpec::new(1, -1, 1);
const NOKEYS: KeySpec = KeySpec::new(0, 0, 0);

const fn data(
    name: &'static str,
    arity: i32,
    flags: Flags,
    keys: KeySpec,
    group: Group,
    run: Handler,
    summary: &'static str,
) -> Spec {
    Spec {
        name,
        arity,
        flags,
        keys,
        group,
        summary,
        exec: Exec::Data(run),
    }
}

const fn conn(
    name: &'static str,
    arity: i32,
    flags: Flags,
    group: Group,
    summary: &'static str,
) -> Spec {
    Spec {
        name,
        arity,
        flags,
        keys: NOKEYS,
        group,
        summary,
        exec: Exec::Connection,
    }
}

#[rustfmt::skip]
const SPECS: [Spec; 139] = [
    data("get", 2, ROF, K1, Group::String, strings::get, "Returns the string value of a key."),
    data("set", -3, W, K1, Group::String, strings::set, "Sets the string value of a key, optionally with expiry and conditions."),
    data("setex", 4, W, K1, Group::String, strings::setex, "Sets the string value and expiration time in seconds of a key."),
    data("psetex", 4, W, K1, Group::String, strings::psetex, "Sets the string value and expiration time in milliseconds of a key."),
    data("setnx", 3, WF, K1, Group::String, strings::setnx, "Sets the string value of a key only when the key doesn't exist."),
    data("getex", -2, WRF, K1, Group::String, strings::getex, "Returns the string value of a key after setting its expiration time."),
    data("getdel", 2, WRF, K1, Group::String, strings::getdel, "Returns the string value of a key after deleting the key."),
    data("mget", -2, ROF, KALL, Group::String, strings::mget, "Atomically returns the string values of one or more keys."),
    data("mset", -3, W, KeySpec::new(1, -1, 2), Group::String, strings::mset, "Atomically creates or modifies the string values of one or more keys."),
    data("append", 3, W, K1, Group::String, strings::append, "Appends a string to the value of a key."),
    data("strlen", 2, ROF, K1, Group::String, strings::strlen, "Returns the length of a string value."),
    data("getset", 3, WF, K1, Group::String, strings::getset, "Returns the previous string value of a key after setting it to a new value."),
    data("msetnx", -3, W, KeySpec::new(1, -1, 2), Group::String, strings::msetnx, "Atomically modifies the string values of one or more keys only when all keys don't exist."),
    data("setrange", 4, W, K1, Group::String, substrings::setrange, "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist."),
    data("getrange", 4, RO, K1, Group::String, substrings::getrange, "Returns a substring of the string stored at a key."),
    data("substr", 4, RO, K1, Group::String, substrings::getrange, "Returns a substring from a string value."),
    data("lcs", -3, RO, KeySpec::new(1, 2, 1), Group::String, lcs::lcs, "Finds the longest common substring."),
    data("delex", -2, WRF, K1, Group::String, cas::delex, "Conditionally removes the specified key based on value or digest comparison."),
    data("delifeq", 3, WRF, K1, Group::String, cas::delifeq, "Deletes the key if its value matches the given string."),
    data("incr", 2, WF, K1, Group::String, counters::incr, "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist."),
    data("decr", 2, WF, K1, Group::String, counters::decr, "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist."),
    data("incrby", 3, WF, K1, Group::String, counters::incrby, "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist."),
    data("decrby", 3, WF, K1, Group::String, counters::decrby, "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist."),
    data("incrbyfloat", 3, WF, K1, Group::String, counters::incrbyfloat, "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist."),
    data("digest", 2, ROF, K1, Group::String, cas::digest_cmd, "Returns the XXH3 hash of a string value."),
    data("del", -2, WR, KALL, Group::Generic, keys::del, "Deletes one or more keys."),
    data("unlink", -2, WRF, KALL, Group::Generic, keys::del, "Deletes one or more keys."),
    data("exists", -2, ROF, KALL, Group::Generic, keys::exists, "Determines whether one or more keys exist."),
    data("type", 2, ROF, K1, Group::Generic, keys::type_, "Determines the type of value stored at a key."),
    data("rename", 3, WR, KeySpec::new(1, 2, 1), Group::Generic, keys::rename, "Renames a key and overwrites the destination."),
    data("renamenx", 3, WRF, KeySpec::new(1, 2, 1), Group::Generic, keys::renamenx, "Renames a key only when the target key name doesn't exist."),
    data("copy", -3, W, KeySpec::new(1, 2, 1), Group::Generic, keys::copy, "Copies the value of a key to a new key."),
    data("touch", -2, ROF, KALL, Group::Generic, keys::touch, "Returns the number of existing keys out of those specified after updating the time they were last accessed."),
    data("expire", -3, WRF, K1, Group::Generic, keys::expire, "Sets the expiration time of a key in seconds."),
    data("pexpire", -3, WRF, K1, Group::Generic, keys::pexpire, "Sets the expiration time of a key in milliseconds."),
    data("expireat", -3, WRF, K1, Group::Generic, keys::expireat, "Sets the expiration time of a key to a Unix timestamp."),
    data("pexpireat", -3, WRF, K1, Group::Generic, keys::pexpireat, "Sets the expiration time of a key to a Unix milliseconds timestamp."),
    data("ttl", 2, ROF, K1, Group::Generic, keys::ttl, "Returns the expiration time in seconds of a key."),
    data("pttl", 2, ROF, K1, Group::Generic, keys::pttl, "Returns the expiration time in milliseconds of a key."),
    data("persist", 2, WRF, K1, Group::Generic, keys::persist, "Removes the expiration time of a key."),
    data("hset", -4, WF, K1, Group::Hash, hashes::hset, "Creates or modifies the value of a field in a hash."),
    data("hmset", -4, WF, K1, Group::Hash, hashes::hmset, "Sets the values of multiple fields."),
    data("hsetnx", 4, WF, K1, Group::Hash, hashes::hsetnx, "Sets the value of a field in a hash only when the field doesn't exist."),
    data("hincrby", 4, WF, K1, Group::Hash, counters::hincrby, "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist."),
    data("hincrbyfloat", 4, WF, K1, Group::Hash, counters::hincrbyfloat, "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist."),
    data("hget", 3, ROF, K1, Group::Hash, hashes::hget, "Returns the value of a field in a hash."),
    data("hmget", -3, ROF, K1, Group::Hash, hashes::hmget, "Returns the values of all fields in a hash."),
    data("hgetall", 2, RO, K1, Group::Hash, hashes::hgetall, "Returns all fields and values in a hash."),
    data("hdel", -3, WRF, K1, Group::Hash, hashes::hdel, "Deletes one or more fields and their values from a hash."),
    data("hexists", 3, ROF, K1, Group::Hash, hashes::hexists, "Determines whether a field exists in a hash."),
    data("hlen", 2, ROF, K1, Group::Hash, hashes::hlen, "Returns the number of fields in a hash."),
    data("hkeys", 2, RO, K1, Group::Hash, hashes::hkeys, "Returns all fields in a hash."),
    data("hvals", 2, RO, K1, Group::Hash, hashes::hvals, "Returns all values in a hash."),
    data("sadd", -3, WF, K1, Group::Set, sets::sadd, "Adds one or more members to a set. Creates the key if it doesn't exist."),
    data("srem", -3, WRF, K1, Group::Set, sets::srem, "Removes one or more members from a set. Deletes the set if the last member was removed."),
    data("smembers", 2, RO, K1, Group::Set, sets::smembers, "Returns all members of a set."),
    data("sismember", 3, ROF, K1, Group::Set, sets::sismember, "Determines whether a member belongs to a set."),
    data("smismember", -3, ROF, K1, Group::Set, sets::smismember, "Determines whether multiple members belong to a set."),
    data("scard", 2, ROF, K1, Group::Set, sets::scard, "Returns the number of members in a set."),
    data("spop", -2, WRF, K1, Group::Set, sets::spop, "Returns one or more random members from a set after removing them."),
    data("srandmember", -2, RO, K1, Group::Set, sets::srandmember, "Get one or multiple random members from a set."),
    data("smove", 4, WRF, KeySpec::new(1, 2, 1), Group::Set, sets::smove, "Moves a member from one set to another."),
    data("sinter", -2, RO, KALL, Group::Set, sets::algebra, "Returns the intersect of multiple sets."),
    data("sintercard", -3, RO, KeySpec::counted(1), Group::Set, sets::algebra, "Returns the number of members of the intersect of multiple sets."),
    data("sunion", -2, RO, KALL, Group::Set, sets::algebra, "Returns the union of multiple sets."),
    data("sdiff", -2, RO, KALL, Group::Set, sets::algebra, "Returns the difference of multiple sets."),
    data("sinterstore", -3, W, KALL, Group::Set, sets::algebra, "Stores the intersect of multiple sets in a key."),
    data("sunionstore", -3, W, KALL, Group::Set, sets::algebra, "Stores the union of multiple sets in a key."),
    data("sdiffstore", -3, W, KALL, Group::Set, sets::algebra, "Stores the difference of multiple sets in a key."),
    data("sscan", -3, RO, K1, Group::Set, sets::sscan, "Iterates over members of a set."),
    data("zadd", -4, WF, K1, Group::SortedSet, zsets::zadd, "Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist."),
    data("zincrby", 4, WF, K1, Group::SortedSet, zsets::zincrby, "Increments the score of a member in a sorted set."),
    data("zrem", -3, WRF, K1, Group::SortedSet, zsets::zrem, "Removes one or more members from a sorted set. Deletes the sorted set if all members were removed."),
    data("zscore", 3, ROF, K1, Group::SortedSet, zsets::zscore, "Returns the score of a member in a sorted set."),
    data("zmscore", -3, ROF, K1, Group::SortedSet, zsets::zmscore, "Returns the score of one or more members in a sorted set."),
    data("zcard", 2, ROF, K1, Group::SortedSet, zsets::zcard, "Returns the number of members in a sorted set."),
    data("zcount", 4, ROF, K1, Group::SortedSet, zsets::zcount, "Returns the count of members in a sorted set that have scores within a range."),
    data("zlexcount", 4, ROF, K1, Group::SortedSet, zsets::zlexcount, "Returns the number of members in a sorted set within a lexicographical range."),
    data("zrange", -4, RO, K1, Group::SortedSet, zsets::zrange, "Returns members in a sorted set within a range of indexes."),
    data("zrevrange", -4, RO, K1, Group::SortedSet, zsets::zrange, "Returns members in a sorted set within a range of indexes in reverse order."),
    data("zrangebyscore", -4, RO, K1, Group::SortedSet, zsets::zrange, "Returns members in a sorted set within a range of scores."),
    data("zrevrangebyscore", -4, RO, K1, Group::SortedSet, zsets::zrange, "Returns members in a sorted set within a range of scores in reverse order."),
    data("zrangebylex", -4, RO, K1, Group::SortedSet, zsets::zrange, "Returns members in a sorted set within a lexicographical range."),
    data("zrevrangebylex", -4, RO, K1, Group::SortedSet, zsets::zrange, "Returns members in a sorted set within a lexicographical range in reverse order."),
    data("zrank", 3, ROF, K1, Group::SortedSet, zsets::zrank, "Returns the index of a member in a sorted set ordered by ascending scores."),
    data("zrevrank", 3, ROF, K1, Group::SortedSet, zsets::zrank, "Returns the index of a member in a sorted set ordered by descending scores."),
    data("zremrangebyrank", 4, WR, K1, Group::SortedSet, zsets::zremrange, "Removes members in a sorted set within a range of indexes."),
    data("zremrangebyscore", 4, WR, K1, Group::SortedSet, zsets::zremrange, "Removes members in a sorted set within a range of scores."),
    data("zremrangebylex", 4, WR, K1, Group::SortedSet, zsets::zremrange, "Removes members in a sorted set within a lexicographical range."),
    data("zpopmin", -2, WRF, K1, Group::SortedSet, zsets::zpop, "Returns the lowest-scoring members from a sorted set after removing them."),
    data("zpopmax", -2, WRF, K1, Group::SortedSet, zsets::zpop, "Returns the highest-scoring members from a sorted set after removing them."),
    data("zrandmember", -2, RO, K1, Group::SortedSet, zsets::zrandmember, "Returns one or more random members from a sorted set."),
    data("zscan", -3, RO, K1, Group::SortedSet, zsets::zscan, "Iterates over members and scores of a sorted set."),
    data("zunion", -3, RO, KeySpec::counted(1), Group::SortedSet, zsets::zalgebra, "Returns the union of multiple sorted sets."),
    data("zinter", -3, RO, KeySpec::counted(1), Group::SortedSet, zsets::zalgebra, "Returns the intersect of multiple sorted sets."),
    data("zdiff", -3, RO, KeySpec::counted(1), Group::SortedSet, zsets::zalgebra, "Returns the difference between multiple sorted sets."),
    data("zintercard", -3, RO, KeySpec::counted(1), Group::SortedSet, zsets::zalgebra, "Returns the number of members of the intersect of multiple sorted sets."),
    data("zunionstore", -4, W, KeySpec::dst_then_counted(), Group::SortedSet, zsets::zalgebra, "Stores the union of multiple sorted sets in a key."),
    data("zinterstore", -4, W, KeySpec::dst_then_counted(), Group::SortedSet, zsets::zalgebra, "Stores the intersect of multiple sorted sets in a key."),
    data("zdiffstore", -4, W, KeySpec::dst_then_counted(), Group::SortedSet, zsets::zalgebra, "Stores the difference of multiple sorted sets in a key."),
    data("scan", -2, RO, NOKEYS, Group::Generic, keys::scan, "Iterates over the key names in the database."),
    data("keys", 2, RO, NOKEYS, Group::Generic, keys::keys, "Returns all key names that match a pattern."),
    data("dbsize", 1, ROF, NOKEYS, Group::Server, keys::dbsize, "Returns the number of keys in the database."),
    data("move", 3, WRF, K1, Group::Generic, keys::move_, "Moves a key to another database."),
    data("flushdb", -1, WR, NOKEYS, Group::Server, keys::flushdb, "Removes all keys from the current database."),
    data("flushall", -1, WR, NOKEYS, Group::Server, keys::flushall, "Removes all keys from all databases."),
    data("swapdb", 3, WRF, NOKEYS, Group::Server, keys::swapdb, "Swaps two Redis databases (refused: see docs/DESIGN.md)."),
    conn("ping", -1, CONN, Group::Connection, "Returns the server's liveliness response."),
    conn("echo", 2, CONN, Group::Connection, "Returns the given string."),
    conn("hello", -1, CONN.or(F::NO_AUTH), Group::Connection, "Handshakes with the server: protocol version, authentication, name."),
    conn("auth", -2, CONN.or(F::NO_AUTH), Group::Connection, "Authenticates the connection."),
    conn("select", 2, CONN, Group::Connection, "Changes the selected database."),
    conn("client", -2, CONN, Group::Connection, "A container for client connection commands."),
    conn("info", -1, F::LOADING.or(F::STALE), Group::Server, "Returns information and statistics about the server."),
    conn("command", -1, F::LOADING.or(F::STALE), Group::Server, "Returns detailed information about all commands."),
    conn("config", -2, F::LOADING.or(F::STALE), Group::Server, "A container for server configuration commands."),
    conn("time", 1, F::LOADING.or(F::STALE).or(F::FAST), Group::Server, "Returns the server time."),
    conn("save", 1, F::NOSCRIPT.or(F::ADMIN), Group::Server, "Snapshots every shard now, on the connection's thread."),
    conn("bgsave", -1, F::NOSCRIPT.or(F::ADMIN), Group::Server, "Snapshots every shard in the background."),
    conn("lastsave", 1, F::LOADING.or(F::STALE).or(F::FAST), Group::Server, "Returns the Unix time of the last completed snapshot."),
    conn("quit", -1, CONN.or(F::NO_AUTH), Group::Connection, "Closes the connection."),
    conn("reset", 1, CONN.or(F::NO_AUTH), Group::Connection, "Resets the connection."),
    conn("multi", 1, TX, Group::Transactions, "Starts a transaction."),
    conn("exec", 1, F::NOSCRIPT.or(F::LOADING).or(F::STALE).or(F::SKIP_SLOWLOG), Group::Transactions, "Executes all commands in a transaction."),
    conn("discard", 1, TX, Group::Transactions, "Discards a transaction."),
    Spec { keys: KALL, ..conn("watch", -2, TX, Group::Transactions, "Monitors changes to keys (here or merged from other regions) to determine the execution of a transaction.") },
    conn("unwatch", 1, TX, Group::Transactions, "Forgets about watched keys of a transaction."),
    conn("wait", 3, F::NOSCRIPT, Group::Generic, "Blocks until this connection's last write is held by N other regions, or the timeout."),
    // Scripts run in the connection, holding the shards of their keys (`Node::hold`).
    conn("eval", -3, SCRIPT, Group::Scripting, "Executes a server-side Lua script atomically in this region; its writes replicate as effects."),
    conn("evalsha", -3, SCRIPT, Group::Scripting, "Executes a cached server-side Lua script by its SHA1 digest."),
    conn("eval_ro", -3, SCRIPT.or(F::READONLY), Group::Scripting, "Executes a read-only server-side Lua script."),
    conn("evalsha_ro", -3, SCRIPT.or(F::READONLY), Group::Scripting, "Executes a cached read-only server-side Lua script by its SHA1 digest."),
    // Publish/subscribe runs in the connection (its mailbox) and the node (every region's).
    conn("subscribe", -2, PUBSUB, Group::PubSub, "Listens for messages published to channels, in this region and every other."),
    conn("unsubscribe", -1, PUBSUB, Group::PubSub, "Stops listening to messages posted to channels."),
    conn("psubscribe", -2, PUBSUB, Group::PubSub, "Listens for messages published to channels that match one or more patterns."),
    conn("punsubscribe", -1, PUBSUB, Group::PubSub, "Stops listening to messages published to channels that match one or more patterns."),
    conn("publish", 3, F::PUBSUB.or(F::LOADING).or(F::STALE).or(F::FAST), Group::PubSub, "Posts a message to a channel, for subscribers in every region (answers this region's count)."),
    conn("pubsub", -2, F::NONE, Group::PubSub, "A container for Pub/Sub commands (this region's subscriptions)."),
    conn("script", -2, F::NOSCRIPT, Group::Scripting, "Manages the script cache (LOAD, EXISTS, FLUSH, KILL)."),
];

/// Every command this server accepts, in `COMMAND`'s order.
pub static TABLE: [Spec; SPECS.len()] = SPECS;

/// A command, as its position in [`TABLE`]: what the server looks up once per command and
/// passes on, and what metrics key their per-command series by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CommandId(u8);

// One byte holds every index.
const _: () = assert!(SPECS.len() < u8::MAX as usize);

/// Candidate table indexes by the name's first letter (`u8::MAX`: none), built from the table
/// at compile time, in table order: a lookup compares the name with the entries of its
/// letter before it (lengths first), and the session commands (`GET`, `SET`, `HSET`,
/// `EXPIRE`, …) come early in the table, before the set and sorted-set families that made the
/// `s` and `z` buckets long.
const BUCKETS: [[u8; 48]; 26] = {
    let mut b = [[u8::MAX; 48]; 26];
    let mut i = 0;
    while i < SPECS.len() {
        let c = (SPECS[i].name.as_bytes()[0] - b'a') as usize;
        let mut j = 0;
        while b[c][j] != u8::MAX {
            j += 1;
        }
        b[c][j] = i as u8;
        i += 1;
    }
    b
};

impl CommandId {
    /// Number of commands.
    pub const COUNT: usize = SPECS.len();

    /// The command named `name`, in any case.
    pub fn lookup(name: &[u8]) -> Option<CommandId> {
        let first = name.first()?.to_ascii_lowercase();
        if !first.is_ascii_lowercase() {
            return None;
        }
        BUCKETS[usize::from(first - b'a')]
            .iter()
            .take_while(|i| **i != u8::MAX)
            .find(|i| {
                TABLE[usize::from(**i)]
                    .name
                    .as_bytes()
                    .eq_ignore_ascii_case(name)
            })
            .map(|i| CommandId(*i))
    }

    /// The id of `TABLE[index]`, if there is one.
    pub fn from_index(index: usize) -> Option<CommandId> {
        (index < SPECS.len()).then_some(CommandId(index as u8))
    }

    /// Its position in [`TABLE`].
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// Its description.
    pub fn spec(self) -> &'static Spec {
        &TABLE[self.index()]
    }

    /// Its lower-case name.
    pub fn name(self) -> &'static str {
        self.spec().name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_found_in_any_case_and_nothing_else() {
        for (i, s) in TABLE.iter().enumerate() {
            assert_eq!(
                CommandId::lookup(s.name.as_bytes()).map(CommandId::index),
                Some(i)
            );
            let upper = s.name.to_ascii_uppercase();
            assert_eq!(
                CommandId::lookup(upper.as_bytes()).map(CommandId::index),
                Some(i)
            );
        }
        for nope in ["", "nope", "gets", "ge", "1get", "{", "h"] {
            assert_eq!(CommandId::lookup(nope.as_bytes()), None, "{nope:?}");
        }
        let mut names: Vec<&str> = TABLE.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TABLE.len(), "names are unique");
    }

    #[test]
    fn flags_render_in_redis_order() {
        let auth = CommandId::lookup(b"auth").unwrap().spec();
        let names: Vec<&str> = auth.flags.names().collect();
        assert_eq!(names, ["noscript", "loading", "stale", "fast", "no_auth"]);
        assert!(CommandId::lookup(b"set").unwrap().spec().is_write());
        assert!(!CommandId::lookup(b"get").unwrap().spec().is_write());
    }

    #[test]
    fn key_specs_find_the_keys() {
        let args: Vec<Bytes> = ["MSET", "a", "1", "b", "2"].map(Bytes::from).to_vec();
        let mset = CommandId::lookup(b"mset").unwrap().spec();
        let keys: Vec<&Bytes> = mset.keys.keys(&args).collect();
        assert_eq!(keys, [&args[1], &args[3]]);
        let del: Vec<Bytes> = ["DEL", "a", "b", "c"].map(Bytes::from).to_vec();
        let spec = CommandId::lookup(b"del").unwrap().spec();
        assert_eq!(spec.keys.keys(&del).count(), 3);
        let ping = CommandId::lookup(b"ping").unwrap().spec();
        assert_eq!(ping.keys.keys(&del).count(), 0);
        let rename = CommandId::lookup(b"rename").unwrap().spec();
        assert_eq!(rename.keys.keys(&del[..3]).count(), 2);
    }

    #[test]
    fn a_command_knows_its_slots() {
        let line = |s: &[&str]| {
            s.iter()
                .map(|a| Bytes::copy_from_slice(a.as_bytes()))
                .collect()
        };
        let mset =
            super::super::Command::parse(line(&["MSET", "{u1}a", "1", "{u1}b", "2", "foo", "3"]))
                .unwrap();
        let slots: Vec<u16> = mset.slots().collect();
        let u1 = crate::slot::key_slot(b"u1");
        assert_eq!(slots, [u1, u1, 12182]);
        let ping = super::super::Command::parse(line(&["PING"])).unwrap();
        assert_eq!(ping.slots().count(), 0);
    }

    #[test]
    fn arity() {
        let get = CommandId::lookup(b"GeT").unwrap().spec();
        assert!(get.arity_ok(2) && !get.arity_ok(3));
        let set = CommandId::lookup(b"set").unwrap().spec();
        assert!(set.arity_ok(3) && set.arity_ok(9) && !set.arity_ok(2));
    }
}
