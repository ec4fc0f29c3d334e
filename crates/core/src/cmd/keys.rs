//! Keyspace commands: DEL UNLINK EXISTS TOUCH TYPE RENAME RENAMENX COPY MOVE, the EXPIRE
//! family, TTL PTTL PERSIST, DBSIZE KEYS SCAN (each in the client's database, see
//! [`crate::db`]), FLUSHDB FLUSHALL (a flush marker per shard, see [`crate::store`]) and SWAPDB
//! (its arguments checked, then refused).
//!
//! A `DEL` bumps the key's causal length to even, which is what makes it win over writes made
//! concurrently in other regions. An expiry computed in the past deletes the key the same way,
//! as Redis does.
//!
//! A command line is parsed once into a [`KeyOp`] by its command's parser (options, numbers
//! and the cursor), then [`run`]: nothing after parsing reads an argument by position.

use super::{glob, is_opt, parse_i64, parse_u64, Ctx};
use crate::crdt::{Body, KeyState, Kind, Reg};
use crate::reply::{ErrorKind, Reply};
use bytes::Bytes;

/// Which `EXPIRE` variant, and what its name says about the number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpireKind {
    /// The command's name, for its error.
    pub name: &'static str,
    /// The number is in seconds (`EXPIRE`, `EXPIREAT`).
    pub seconds: bool,
    /// The number is relative to now (`EXPIRE`, `PEXPIRE`).
    pub relative: bool,
}

/// A `SCAN`'s options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanOpts<'a> {
    /// `MATCH` pattern.
    pub pattern: Option<&'a Bytes>,
    /// `COUNT` (at least 1).
    pub count: usize,
    /// `TYPE` string or hash.
    pub kind: Option<Kind>,
    /// Some `TYPE` named a type this store never holds: nothing matches.
    pub unknown_type: bool,
}

/// A keyspace command, parsed: keys and options borrowed from the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyOp<'a> {
    /// `DEL`/`UNLINK key [key ...]`.
    Del {
        /// The keys.
        keys: &'a [Bytes],
    },
    /// `EXISTS key [key ...]`.
    Exists {
        /// The keys.
        keys: &'a [Bytes],
    },
    /// `TYPE key`.
    Type {
        /// The key.
        key: &'a Bytes,
    },
    /// `RENAME key newkey`, `RENAMENX key newkey`.
    Rename {
        /// The key.
        src: &'a Bytes,
        /// Its new name.
        dst: &'a Bytes,
        /// `RENAMENX`: only if `dst` does not exist.
        nx: bool,
    },
    /// `COPY source destination [DB 0] [REPLACE]`.
    Copy {
        /// The key copied.
        src: &'a Bytes,
        /// The copy's name.
        dst: &'a Bytes,
        /// `REPLACE`.
        replace: bool,
    },
    /// `TOUCH key [key ...]`.
    Touch {
        /// The keys.
        keys: &'a [Bytes],
    },
    /// The `EXPIRE` family, with `NX XX GT LT`.
    Expire {
        /// The key.
        key: &'a Bytes,
        /// The time in ms (absolute, or relative to now when `kind.relative`).
        ms: i64,
        /// Which variant.
        kind: ExpireKind,
        /// `NX`.
        nx: bool,
        /// `XX`.
        xx: bool,
        /// `GT`.
        gt: bool,
        /// `LT`.
        lt: bool,
    },
    /// `TTL key` (`ms`: `PTTL`).
    Ttl {
        /// The key.
        key: &'a Bytes,
        /// Milliseconds (`PTTL`).
        ms: bool,
    },
    /// `PERSIST key`.
    Persist {
        /// The key.
        key: &'a Bytes,
    },
    /// `DBSIZE`.
    DbSize,
    /// `MOVE key db`.
    Move {
        /// The key.
        key: &'a Bytes,
        /// The database it moves to (a valid index).
        db: u8,
    },
    /// `FLUSHDB`, `FLUSHALL` (`all`), `ASYNC` or `SYNC` alike.
    Flush {
        /// `FLUSHALL`.
        all: bool,
    },
    /// `KEYS pattern`.
    Keys {
        /// The pattern.
        pattern: &'a Bytes,
    },
    /// `SCAN cursor [MATCH p] [COUNT n] [TYPE t]`.
    Scan {
        /// The cursor.
        cursor: u64,
        /// The options.
        opts: ScanOpts<'a>,
    },
}

/// Argument `i` of a line whose arity the table checked (a syntax error, never a panic, if a
/// caller skipped the check).
fn arg(args: &[Bytes], i: usize) -> Result<&Bytes, Reply> {
    args.get(i).ok_or_else(Reply::syntax)
}

/// The parsers, one per command: the only place that reads a keyspace command's arguments by
/// position. `args[0]` is the name.
mod parse {
    use super::*;

    pub(super) fn expire(a: &[Bytes], kind: ExpireKind) -> Result<KeyOp<'_>, Reply> {
        let key = arg(a, 1)?;
        let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
        for o in a.get(3..).unwrap_or_default() {
            if is_opt(o, "NX") {
                nx = true;
            } else if is_opt(o, "XX") {
                xx = true;
            } else if is_opt(o, "GT") {
                gt = true;
            } else if is_opt(o, "LT") {
                lt = true;
            } else {
                return Err(Reply::err_of(
                    ErrorKind::Syntax,
                    format!("Unsupported option {}", String::from_utf8_lossy(o)),
                ));
            }
        }
        if nx && (xx || gt || lt) {
            return Err(Reply::err_of(
                ErrorKind::Syntax,
                "NX and XX, GT or LT options at the same time are not compatible",
            ));
        }
        if gt && lt {
            return Err(Reply::err_of(
                ErrorKind::Syntax,
                "GT and LT options at the same time are not compatible",
            ));
        }
        let n = parse_i64(arg(a, 2)?).ok_or_else(Reply::not_integer)?;
        let ms = if kind.seconds {
            n.checked_mul(1000).ok_or_else(|| invalid_expire(kind))?
        } else {
            n
        };
        Ok(KeyOp::Expire {
            key,
            ms,
            kind,
            nx,
            xx,
            gt,
            lt,
        })
    }

    pub(super) fn scan(a: &[Bytes]) -> Result<KeyOp<'_>, Reply> {
        let cursor = parse_u64(arg(a, 1)?).ok_or_else(|| Reply::err("invalid cursor"))?;
        let mut opts = ScanOpts {
            pattern: None,
            count: 10,
            kind: None,
            unknown_type: false,
        };
        let mut rest = a.get(2..).unwrap_or_default().chunks(2);
        for pair in rest.by_ref() {
            let [o, v] = pair else {
                return Err(Reply::syntax());
            };
            if is_opt(o, "MATCH") {
                opts.pattern = Some(v);
            } else if is_opt(o, "COUNT") {
                match parse_i64(v) {
                    Some(c) if c >= 1 => opts.count = c as usize,
                    Some(_) => return Err(Reply::syntax()),
                    None => return Err(Reply::not_integer()),
                }
            } else if is_opt(o, "TYPE") {
                if is_opt(v, "STRING") {
                    opts.kind = Some(Kind::String);
                } else if is_opt(v, "HASH") {
                    opts.kind = Some(Kind::Hash);
                } else if is_opt(v, "SET") {
                    opts.kind = Some(Kind::Set);
                } else if is_opt(v, "ZSET") {
                    opts.kind = Some(Kind::ZSet);
                } else {
                    // A type this store never holds (list, stream, ...): nothing matches.
                    opts.unknown_type = true;
                }
            } else {
                return Err(Reply::syntax());
            }
        }
        Ok(KeyOp::Scan { cursor, opts })
    }

    pub(super) fn keys(
        a: &[Bytes],
        op: for<'a> fn(&'a [Bytes]) -> KeyOp<'a>,
    ) -> Result<KeyOp<'_>, Reply> {
        Ok(op(a.get(1..).unwrap_or_default()))
    }

    pub(super) fn key(
        a: &[Bytes],
        op: for<'a> fn(&'a Bytes) -> KeyOp<'a>,
    ) -> Result<KeyOp<'_>, Reply> {
        Ok(op(arg(a, 1)?))
    }

    pub(super) fn rename(a: &[Bytes], nx: bool) -> Result<KeyOp<'_>, Reply> {
        Ok(KeyOp::Rename {
            src: arg(a, 1)?,
            dst: arg(a, 2)?,
            nx,
        })
    }
}

/// `COPY`'s line: source, destination, `REPLACE`, with Redis 7's checks in its order (options,
/// the database, then source and destination the same). There is one database: `DB` may name
/// only 0 until numbered databases exist.
pub fn parse_copy(a: &[Bytes], databases: u16) -> Result<(&Bytes, &Bytes, bool), Reply> {
    let (src, dst) = (arg(a, 1)?, arg(a, 2)?);
    let mut replace = false;
    let mut db = 0;
    let mut i = 3;
    while let Some(o) = a.get(i) {
        if is_opt(o, "REPLACE") {
            replace = true;
        } else if let (true, Some(n)) = (is_opt(o, "DB"), a.get(i + 1)) {
            db = parse_i64(n)
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(Reply::not_integer)?;
            i += 1;
        } else {
            return Err(Reply::syntax());
        }
        i += 1;
    }
    if db < 0 || db >= i32::from(databases.min(crate::db::MAX_DATABASES)) {
        return Err(Reply::err("DB index is out of range"));
    }
    // `dst` is already the stored name in database `db` (`Command::in_db`), so the same name
    // in two databases is two keys, as in Redis.
    if src == dst {
        return Err(Reply::err("source and destination objects are the same"));
    }
    Ok((src, dst, replace))
}

/// `MOVE key db`, checked in Redis's order: the index, then that it is another database.
fn parse_move(a: &[Bytes], databases: u16) -> Result<KeyOp<'_>, Reply> {
    let key = arg(a, 1)?;
    let db = crate::db::parse_index(arg(a, 2)?, databases).map_err(|e| match e {
        None => Reply::not_integer(),
        Some(()) => Reply::err("DB index is out of range"),
    })?;
    Ok(KeyOp::Move { key, db })
}

/// `FLUSHDB [ASYNC|SYNC]`, `FLUSHALL [ASYNC|SYNC]`: both modes do the same here (a flush is
/// one marker per shard, see [`crate::db`]; the keys it kills are freed as tombstones).
fn parse_flush(a: &[Bytes], all: bool) -> Result<KeyOp<'_>, Reply> {
    match a.len() {
        1 => Ok(KeyOp::Flush { all }),
        2 if is_opt(&a[1], "ASYNC") || is_opt(&a[1], "SYNC") => Ok(KeyOp::Flush { all }),
        _ => Err(Reply::syntax()),
    }
}

/// `SWAPDB index1 index2`: the indexes are checked as Redis checks them, then the command is
/// refused. Swapping two databases here would rewrite every key of both, in every region, one
/// delta per key — and a write racing the swap elsewhere would land in the wrong database.
pub(super) fn swapdb(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    let index = |i: usize, which: &str| {
        parse_i64(&a[i])
            .and_then(|n| i32::try_from(n).ok())
            .ok_or_else(|| Reply::err(format!("invalid {which} DB index")))
    };
    let (x, y) = match (index(1, "first"), index(2, "second")) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let n = i32::from(ctx.databases.min(crate::db::MAX_DATABASES));
    if !(0..n).contains(&x) || !(0..n).contains(&y) {
        return Reply::err("DB index is out of range");
    }
    Reply::err(
        "SWAPDB is not supported: sessionmesh replicates every database key by key across \
         regions, and a swap cannot be merged with writes made concurrently elsewhere",
    )
}

fn invalid_expire(kind: ExpireKind) -> Reply {
    Reply::err_of(
        ErrorKind::Value,
        format!("invalid expire time in '{}' command", kind.name),
    )
}

const fn expire_kind(name: &'static str, seconds: bool, relative: bool) -> ExpireKind {
    ExpireKind {
        name,
        seconds,
        relative,
    }
}

/// The table's entry point of each keyspace command: parse, then run.
macro_rules! entries {
    ($($name:ident => $parse:expr;)*) => {
        $(
            pub(super) fn $name(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
                let parsed: Result<KeyOp<'_>, Reply> = $parse(args);
                match parsed {
                    Ok(op) => run(ctx, op),
                    Err(e) => e,
                }
            }
        )*
    };
}

entries! {
    del => |a| parse::keys(a, |keys| KeyOp::Del { keys });
    exists => |a| parse::keys(a, |keys| KeyOp::Exists { keys });
    type_ => |a| parse::key(a, |key| KeyOp::Type { key });
    rename => |a| parse::rename(a, false);
    renamenx => |a| parse::rename(a, true);
    touch => |a| parse::keys(a, |keys| KeyOp::Touch { keys });
    expire => |a| parse::expire(a, expire_kind("expire", true, true));
    pexpire => |a| parse::expire(a, expire_kind("pexpire", false, true));
    expireat => |a| parse::expire(a, expire_kind("expireat", true, false));
    pexpireat => |a| parse::expire(a, expire_kind("pexpireat", false, false));
    ttl => |a| parse::key(a, |key| KeyOp::Ttl { key, ms: false });
    pttl => |a| parse::key(a, |key| KeyOp::Ttl { key, ms: true });
    persist => |a| parse::key(a, |key| KeyOp::Persist { key });
    dbsize => |_| Ok::<_, Reply>(KeyOp::DbSize);
    flushdb => |a| parse_flush(a, false);
    flushall => |a| parse_flush(a, true);
    keys => |a| parse::key(a, |pattern| KeyOp::Keys { pattern });
    scan => parse::scan;
}

pub(super) fn copy(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    match parse_copy(a, ctx.databases) {
        Ok((src, dst, replace)) => run(ctx, KeyOp::Copy { src, dst, replace }),
        Err(e) => e,
    }
}

pub(super) fn move_(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    match parse_move(a, ctx.databases) {
        Ok(op) => run(ctx, op),
        Err(e) => e,
    }
}

/// Runs a parsed keyspace command.
pub fn run(ctx: &mut Ctx<'_>, op: KeyOp<'_>) -> Reply {
    match op {
        KeyOp::Del { keys } => {
            let mut n = 0;
            for key in keys {
                if ctx.live(key).is_some() {
                    let d = ctx.delete(key);
                    ctx.write(key, d);
                    n += 1;
                }
            }
            Reply::Int(n)
        }
        KeyOp::Exists { keys } | KeyOp::Touch { keys } => {
            Reply::Int(keys.iter().filter(|k| ctx.live(k).is_some()).count() as i64)
        }
        KeyOp::Type { key } => Reply::Simple(match ctx.kind(key) {
            None => "none",
            Some(Kind::String) => "string",
            Some(Kind::Hash) => "hash",
            Some(Kind::Set) => "set",
            Some(Kind::ZSet) => "zset",
        }),
        KeyOp::Rename { src, dst, nx } => run_rename(ctx, src, dst, nx),
        KeyOp::Copy { src, dst, replace } => {
            let Some(moved) = export(ctx, src) else {
                return Reply::Int(0);
            };
            if ctx.live(dst).is_some() && !replace {
                return Reply::Int(0);
            }
            import(ctx, dst, moved);
            Reply::Int(1)
        }
        KeyOp::Expire {
            key,
            ms,
            kind,
            nx,
            xx,
            gt,
            lt,
        } => run_expire(ctx, key, ms, kind, (nx, xx, gt, lt)),
        KeyOp::Ttl { key, ms } => {
            let Some(state) = ctx.live(key) else {
                return Reply::Int(-2);
            };
            match state.body.expiry() {
                None => Reply::Int(-1),
                Some(e) => {
                    let left = e.saturating_sub(ctx.now_ms) as i64;
                    Reply::Int(if ms { left } else { (left + 500) / 1000 })
                }
            }
        }
        KeyOp::Persist { key } => run_persist(ctx, key),
        KeyOp::DbSize => Reply::Int(ctx.store.count_visible(ctx.db, ctx.now_ms) as i64),
        KeyOp::Move { key, db } => {
            if db == ctx.db {
                return Reply::err("source and destination objects are the same");
            }
            let Some(moved) = export(ctx, key) else {
                return Reply::Int(0);
            };
            // The same name in another database: the same slot, so the same shard.
            let dst = crate::db::moved(key, db);
            if ctx.live(&dst).is_some() {
                return Reply::Int(0);
            }
            remove(ctx, key);
            import(ctx, &dst, moved);
            Reply::Int(1)
        }
        KeyOp::Flush { all } => {
            let target = if all { crate::db::FLUSH_ALL } else { ctx.db };
            let s = ctx.stamp();
            let marker = crate::db::flush_marker(target, ctx.shard.0, ctx.shard.1);
            ctx.write(&marker, KeyState::incarnation(KeyState::fresh_len(s), s));
            Reply::OK
        }
        KeyOp::Keys { pattern } => {
            let (now, db) = (ctx.now_ms, ctx.db);
            let mut out: Vec<Bytes> = ctx
                .store
                .iter()
                .filter(|(k, s)| {
                    crate::db::split(k)
                        .is_some_and(|(d, name)| d == db && glob::matches(pattern, name))
                        && s.is_visible(now)
                })
                .map(|(k, _)| crate::db::user_key(k))
                .collect();
            out.sort();
            Reply::Array(out.into_iter().map(Reply::Bulk).collect())
        }
        KeyOp::Scan { cursor, opts } => run_scan(ctx, cursor, opts),
    }
}

fn run_rename(ctx: &mut Ctx<'_>, src: &Bytes, dst: &Bytes, nx: bool) -> Reply {
    let Some(moved) = export(ctx, src) else {
        return Reply::err("no such key");
    };
    let done = if nx { Reply::Int(1) } else { Reply::OK };
    if src == dst {
        return if nx { Reply::Int(0) } else { done };
    }
    if nx && ctx.live(dst).is_some() {
        return Reply::Int(0);
    }
    remove(ctx, src);
    import(ctx, dst, moved);
    done
}

/// What `RENAME` carries from one key to another: the visible value and expiry, without the
/// stamps (the destination's write stamps them afresh).
#[derive(Clone, Debug)]
pub struct Moved {
    kind: Kind,
    expiry: Option<u64>,
    string: Option<Bytes>,
    fields: Vec<(Bytes, Bytes)>,
    members: Vec<Bytes>,
    scores: Vec<(Bytes, f64)>,
}

/// The visible value of `key`, to be moved; `None` if it is not visible.
#[allow(
    clippy::expect_used,
    reason = "a key the command found visible has a kind"
)]
pub fn export(ctx: &Ctx<'_>, key: &Bytes) -> Option<Moved> {
    let state = ctx.live(key)?;
    let kind = state.body.kind().expect("a visible key has a kind");
    let mut m = Moved {
        kind,
        expiry: state.body.expiry(),
        string: None,
        fields: Vec::new(),
        members: Vec::new(),
        scores: Vec::new(),
    };
    match kind {
        Kind::String => m.string = state.body.string_value(),
        Kind::Hash => m.fields = state.body.live_fields().collect(),
        Kind::Set => m.members = state.body.members.live().cloned().collect(),
        Kind::ZSet => m.scores = super::zsets::export(state),
    }
    Some(m)
}

/// Whether `key` is visible (a step of a command spanning shards).
pub fn is_live(ctx: &Ctx<'_>, key: &Bytes) -> bool {
    ctx.live(key).is_some()
}

/// Deletes `key` if it is visible (a write command's step).
pub fn remove(ctx: &mut Ctx<'_>, key: &Bytes) {
    if ctx.live(key).is_some() {
        let del = ctx.delete(key);
        ctx.write(key, del);
    }
}

/// Writes `moved` as the whole new value of `key` (a write command's step).
pub fn import(ctx: &mut Ctx<'_>, key: &Bytes, moved: Moved) {
    let s = ctx.stamp();
    let (zmembers, zfields) = super::zsets::import(moved.scores, s);
    let body = Body {
        kind: Some(Reg::new(s, moved.kind)),
        ttl: Some(Reg::new(s, moved.expiry)),
        string: moved.string.map(|v| Reg::new(s, v)),
        fields: moved
            .fields
            .into_iter()
            .map(|(f, v)| (f, Reg::new(s, Some(v))))
            .chain(zfields.iter().map(|(f, r)| (f.clone(), r.clone())))
            .collect(),
        members: {
            let mut m = zmembers;
            for x in moved.members {
                m.add(x, s);
            }
            m
        },
        ..Body::default()
    };
    let put = ctx.replace(key, body);
    ctx.write(key, put);
}

fn run_expire(
    ctx: &mut Ctx<'_>,
    key: &Bytes,
    ms: i64,
    kind: ExpireKind,
    (nx, xx, gt, lt): (bool, bool, bool, bool),
) -> Reply {
    let mut when = ms;
    if kind.relative {
        match when.checked_add(ctx.now_ms as i64) {
            Some(w) => when = w,
            None => return invalid_expire(kind),
        }
    }
    let Some(state) = ctx.live(key) else {
        return Reply::Int(0);
    };
    let current = state.body.expiry().map(|e| e as i64);
    let allowed = match current {
        None => !xx && !gt,
        Some(c) => !nx && (!gt || when > c) && (!lt || when < c),
    };
    if !allowed {
        return Reply::Int(0);
    }
    if when <= ctx.now_ms as i64 {
        let d = ctx.delete(key);
        ctx.write(key, d);
    } else {
        let s = ctx.stamp();
        let delta = ctx.in_place(
            key,
            Body {
                ttl: Some(Reg::new(s, Some(when as u64))),
                ..Body::default()
            },
        );
        ctx.write(key, delta);
    }
    Reply::Int(1)
}

fn run_persist(ctx: &mut Ctx<'_>, key: &Bytes) -> Reply {
    match ctx.live(key).map(|k| k.body.expiry()) {
        Some(Some(_)) => {
            let s = ctx.stamp();
            let delta = ctx.in_place(
                key,
                Body {
                    ttl: Some(Reg::new(s, None)),
                    ..Body::default()
                },
            );
            ctx.write(key, delta);
            Reply::Int(1)
        }
        _ => Reply::Int(0),
    }
}

fn run_scan(ctx: &mut Ctx<'_>, cursor: u64, opts: ScanOpts<'_>) -> Reply {
    let ScanOpts {
        pattern,
        count,
        kind,
        unknown_type: type_filter_unknown,
    } = opts;
    let now = ctx.now_ms;
    let mut keys = Vec::new();
    let mut next = 0;
    let mut last = None;
    for (visited, (hash, key, state)) in ctx.store.iter_from(cursor).enumerate() {
        // Keys sharing a hash are returned together: a cursor names a hash, and one that
        // stopped inside a run of equal hashes could come back to the same spot forever.
        if visited >= count && last != Some(hash) {
            next = hash;
            break;
        }
        last = Some(hash);
        let Some(k) = state.visible_kind(now) else {
            continue;
        };
        if type_filter_unknown || kind.is_some_and(|want| want != k) {
            continue;
        }
        let Some((d, name)) = crate::db::split(key) else {
            continue;
        };
        if d != ctx.db || pattern.is_some_and(|p| !glob::matches(p, name)) {
            continue;
        }
        keys.push(Reply::Bulk(crate::db::user_key(key)));
    }
    Reply::Array(vec![Reply::bulk(next.to_string()), Reply::Array(keys)])
}
