//! String commands: GET SET SETEX PSETEX SETNX GETEX GETDEL GETSET MGET MSET MSETNX APPEND
//! STRLEN.
//!
//! A command line is parsed once into a [`StringOp`] by its command's parser (options and all;
//! the numbers of time options are read when the command runs, in Redis's order of checks),
//! then [`run`]: nothing after parsing reads an argument by position.

use super::cas::{self, Cond};
use super::{is_opt, parse_i64, Ctx};
use crate::crdt::{Body, Kind, Reg};
use crate::reply::{ErrorKind, Reply};
use bytes::{Bytes, BytesMut};

/// The string value of a visible string key; `Err` for a hash. Shared by the string
/// families (`cas`, `substrings`).
pub(super) fn string_of(ctx: &Ctx<'_>, key: &Bytes) -> Result<Option<Bytes>, Reply> {
    match ctx.kind(key) {
        None => Ok(None),
        Some(Kind::Hash | Kind::Set | Kind::ZSet) => Err(Reply::wrong_type()),
        Some(Kind::String) => Ok(ctx.store.get(key).and_then(|k| k.body.string_value())),
    }
}

/// When a key should expire, as Redis's SET/GETEX options give it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expiry {
    /// Leave the TTL as it is (GETEX without option, SET KEEPTTL).
    Keep,
    /// Remove it (SET without option, GETEX PERSIST).
    Persist,
    /// Expire at this absolute time in ms.
    At(i64),
}

/// Turns an `EX/PX/EXAT/PXAT` argument into an absolute time, with Redis's checks.
fn expiry_from(ctx: &Ctx<'_>, unit: &[u8], arg: &[u8], cmd: &str) -> Result<i64, Reply> {
    let n = parse_i64(arg).ok_or_else(Reply::not_integer)?;
    let invalid = || {
        Reply::err_of(
            ErrorKind::Value,
            format!("invalid expire time in '{cmd}' command"),
        )
    };
    if n <= 0 {
        return Err(invalid());
    }
    let (ms, relative) = if is_opt(unit, "EX") {
        (n.checked_mul(1000).ok_or_else(invalid)?, true)
    } else if is_opt(unit, "PX") {
        (n, true)
    } else if is_opt(unit, "EXAT") {
        (n.checked_mul(1000).ok_or_else(invalid)?, false)
    } else {
        (n, false)
    };
    if relative {
        ms.checked_add(ctx.now_ms as i64).ok_or_else(invalid)
    } else {
        Ok(ms)
    }
}

fn ttl_reg(ctx: &Ctx<'_>, key: &Bytes, e: Expiry) -> Reg<Option<u64>> {
    let s = ctx.stamp();
    match e {
        Expiry::At(t) => Reg::new(s, Some(t.max(0) as u64)),
        Expiry::Persist => Reg::new(s, None),
        Expiry::Keep => {
            let cur = ctx.live(key).and_then(|k| k.body.expiry());
            Reg::new(s, cur)
        }
    }
}

/// Writes `value` as the whole content of `key` (the SET family).
fn set_value(ctx: &mut Ctx<'_>, key: &Bytes, value: Bytes, e: Expiry) {
    let s = ctx.stamp();
    let body = Body {
        kind: Some(Reg::new(s, Kind::String)),
        string: Some(Reg::new(s, value)),
        ttl: Some(ttl_reg(ctx, key, e)),
        ..Body::default()
    };
    let delta = ctx.replace(key, body);
    ctx.write(key, delta);
    // An expiry already passed needs nothing more: the key is absent by the expiry rule, as in
    // Redis (which keeps a key whose expiry equals now readable for that millisecond).
}

/// Which time option a SET/GETEX command line carries. The same option may repeat (the last
/// one counts, as in Redis); two different ones are a syntax error.
fn time_unit(o: &[u8]) -> Option<&'static str> {
    ["EX", "PX", "EXAT", "PXAT"]
        .into_iter()
        .find(|u| is_opt(o, u))
}

/// A time option as given (`EX 10`): its unit and its still unparsed number, which Redis checks
/// after the option syntax (and, for `GETEX`, after the key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeArg<'a> {
    /// `EX`, `PX`, `EXAT` or `PXAT`.
    pub unit: &'static str,
    /// The number.
    pub arg: &'a Bytes,
}

/// What `SET` does with the key's time to live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetTtl<'a> {
    /// Remove it (no option).
    Persist,
    /// `KEEPTTL`.
    Keep,
    /// `EX`/`PX`/`EXAT`/`PXAT`.
    At(TimeArg<'a>),
}

/// A string command, parsed: keys and values borrowed from the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StringOp<'a> {
    /// `GET key`.
    Get {
        /// The key.
        key: &'a Bytes,
    },
    /// `SET key value [NX|XX|IFEQ v|IFNE v|IFDEQ d|IFDNE d] [GET] [EX|PX|EXAT|PXAT n|KEEPTTL]`.
    Set {
        /// The key.
        key: &'a Bytes,
        /// The value.
        value: &'a Bytes,
        /// `NX`.
        nx: bool,
        /// `XX`.
        xx: bool,
        /// `IFEQ`, `IFNE`, `IFDEQ` or `IFDNE` (Redis 8.4).
        cond: Option<Cond<'a>>,
        /// `GET`.
        get: bool,
        /// The time to live.
        ttl: SetTtl<'a>,
    },
    /// `SETEX key seconds value`, `PSETEX key ms value`.
    SetEx {
        /// The key.
        key: &'a Bytes,
        /// The time, `EX` or `PX`.
        ttl: TimeArg<'a>,
        /// The value.
        value: &'a Bytes,
        /// The command's name, for its error.
        cmd: &'static str,
    },
    /// `SETNX key value`.
    SetNx {
        /// The key.
        key: &'a Bytes,
        /// The value.
        value: &'a Bytes,
    },
    /// `GETEX key [EX|PX|EXAT|PXAT n|PERSIST]`: `ttl` `None` keeps it.
    GetEx {
        /// The key.
        key: &'a Bytes,
        /// `PERSIST` ([`SetTtl::Persist`]), a time, or nothing ([`SetTtl::Keep`]).
        ttl: SetTtl<'a>,
    },
    /// `GETDEL key`.
    GetDel {
        /// The key.
        key: &'a Bytes,
    },
    /// `MGET key [key ...]`.
    MGet {
        /// The keys.
        keys: &'a [Bytes],
    },
    /// `MSET key value [key value ...]`.
    MSet {
        /// Key-value pairs.
        pairs: super::hashes::Pairs<'a>,
    },
    /// `MSETNX key value [key value ...]`: all or none, none if any key exists.
    MSetNx {
        /// Key-value pairs.
        pairs: super::hashes::Pairs<'a>,
    },
    /// `GETSET key value`: `SET key value GET`.
    GetSet {
        /// The key.
        key: &'a Bytes,
        /// The value.
        value: &'a Bytes,
    },
    /// `APPEND key value`.
    Append {
        /// The key.
        key: &'a Bytes,
        /// What to append.
        value: &'a Bytes,
    },
    /// `STRLEN key`.
    StrLen {
        /// The key.
        key: &'a Bytes,
    },
}

/// Argument `i` of a line whose arity the table checked (a syntax error, never a panic, if a
/// caller skipped the check).
fn arg(args: &[Bytes], i: usize) -> Result<&Bytes, Reply> {
    args.get(i).ok_or_else(Reply::syntax)
}

/// The parsers, one per command: the only place that reads a string command's arguments by
/// position. `args[0]` is the name.
mod parse {
    use super::*;

    pub(super) fn set(a: &[Bytes]) -> Result<StringOp<'_>, Reply> {
        let (key, value) = (arg(a, 1)?, arg(a, 2)?);
        let (mut nx, mut xx, mut get, mut keepttl) = (false, false, false, false);
        let mut cond: Option<Cond<'_>> = None;
        let mut expiry: Option<TimeArg<'_>> = None;
        let mut i = 3;
        while let Some(o) = a.get(i) {
            let next = a.get(i + 1);
            if is_opt(o, "NX") && !xx && cond.is_none() {
                nx = true;
            } else if is_opt(o, "XX") && !nx && cond.is_none() {
                xx = true;
            } else if let (true, Some(v)) = (cas::is_cond(o) && !nx && !xx && cond.is_none(), next)
            {
                // One condition at most, exclusive with NX and XX.
                match cas::parse_cond(o, v) {
                    Some(Ok(c)) => cond = Some(c),
                    Some(Err(e)) => return Err(e),
                    None => return Err(Reply::syntax()),
                }
                i += 1;
            } else if is_opt(o, "GET") {
                get = true;
            } else if is_opt(o, "KEEPTTL") && expiry.is_none() {
                keepttl = true;
            } else if let (Some(unit), Some(n)) = (
                time_unit(o).filter(|u| !keepttl && expiry.is_none_or(|prev| prev.unit == *u)),
                next,
            ) {
                expiry = Some(TimeArg { unit, arg: n });
                i += 1;
            } else {
                return Err(Reply::syntax());
            }
            i += 1;
        }
        let ttl = match expiry {
            Some(t) => SetTtl::At(t),
            None if keepttl => SetTtl::Keep,
            None => SetTtl::Persist,
        };
        Ok(StringOp::Set {
            key,
            value,
            nx,
            xx,
            cond,
            get,
            ttl,
        })
    }

    pub(super) fn setex<'a>(
        a: &'a [Bytes],
        unit: &'static str,
        cmd: &'static str,
    ) -> Result<StringOp<'a>, Reply> {
        Ok(StringOp::SetEx {
            key: arg(a, 1)?,
            ttl: TimeArg {
                unit,
                arg: arg(a, 2)?,
            },
            value: arg(a, 3)?,
            cmd,
        })
    }

    pub(super) fn getex(a: &[Bytes]) -> Result<StringOp<'_>, Reply> {
        let key = arg(a, 1)?;
        let mut persist = false;
        let mut expiry: Option<TimeArg<'_>> = None;
        let mut i = 2;
        while let Some(o) = a.get(i) {
            if is_opt(o, "PERSIST") && expiry.is_none() {
                persist = true;
            } else if let (Some(unit), Some(n)) = (
                time_unit(o).filter(|u| !persist && expiry.is_none_or(|prev| prev.unit == *u)),
                a.get(i + 1),
            ) {
                expiry = Some(TimeArg { unit, arg: n });
                i += 1;
            } else {
                return Err(Reply::syntax());
            }
            i += 1;
        }
        let ttl = match expiry {
            Some(t) => SetTtl::At(t),
            None if persist => SetTtl::Persist,
            None => SetTtl::Keep,
        };
        Ok(StringOp::GetEx { key, ttl })
    }

    pub(super) fn mget(a: &[Bytes]) -> Result<StringOp<'_>, Reply> {
        Ok(StringOp::MGet {
            keys: a.get(1..).unwrap_or_default(),
        })
    }

    pub(super) fn mset(a: &[Bytes]) -> Result<StringOp<'_>, Reply> {
        let pairs = super::super::hashes::Pairs::new(a.get(1..).unwrap_or_default())
            .ok_or_else(|| Reply::wrong_arity("mset"))?;
        Ok(StringOp::MSet { pairs })
    }

    pub(super) fn msetnx(a: &[Bytes]) -> Result<StringOp<'_>, Reply> {
        let pairs = super::super::hashes::Pairs::new(a.get(1..).unwrap_or_default())
            .ok_or_else(|| Reply::wrong_arity("msetnx"))?;
        Ok(StringOp::MSetNx { pairs })
    }

    pub(super) fn key(
        a: &[Bytes],
        op: for<'a> fn(&'a Bytes) -> StringOp<'a>,
    ) -> Result<StringOp<'_>, Reply> {
        Ok(op(arg(a, 1)?))
    }

    pub(super) fn key_value(
        a: &[Bytes],
        op: for<'a> fn(&'a Bytes, &'a Bytes) -> StringOp<'a>,
    ) -> Result<StringOp<'_>, Reply> {
        Ok(op(arg(a, 1)?, arg(a, 2)?))
    }
}

/// The table's entry point of each string command: parse, then run.
macro_rules! entries {
    ($($name:ident => $parse:expr;)*) => {
        $(
            pub(super) fn $name(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
                let parsed: Result<StringOp<'_>, Reply> = $parse(args);
                match parsed {
                    Ok(op) => run(ctx, op),
                    Err(e) => e,
                }
            }
        )*
    };
}

entries! {
    get => |a| parse::key(a, |key| StringOp::Get { key });
    set => parse::set;
    setex => |a| parse::setex(a, "EX", "setex");
    psetex => |a| parse::setex(a, "PX", "psetex");
    setnx => |a| parse::key_value(a, |key, value| StringOp::SetNx { key, value });
    getex => parse::getex;
    getdel => |a| parse::key(a, |key| StringOp::GetDel { key });
    mget => parse::mget;
    mset => parse::mset;
    msetnx => parse::msetnx;
    getset => |a| parse::key_value(a, |key, value| StringOp::GetSet { key, value });
    append => |a| parse::key_value(a, |key, value| StringOp::Append { key, value });
    strlen => |a| parse::key(a, |key| StringOp::StrLen { key });
}

/// Runs a parsed string command.
pub fn run(ctx: &mut Ctx<'_>, op: StringOp<'_>) -> Reply {
    match op {
        StringOp::Get { key } => match string_of(ctx, key) {
            Ok(v) => Reply::opt(v),
            Err(e) => e,
        },
        StringOp::Set {
            key,
            value,
            nx,
            xx,
            cond,
            get,
            ttl,
        } => run_set(ctx, key, value, (nx, xx, get), cond, ttl),
        StringOp::SetEx {
            key,
            ttl,
            value,
            cmd,
        } => match expiry_from(ctx, ttl.unit.as_bytes(), ttl.arg, cmd) {
            Ok(t) => {
                set_value(ctx, key, value.clone(), Expiry::At(t));
                Reply::OK
            }
            Err(r) => r,
        },
        StringOp::SetNx { key, value } => {
            if ctx.live(key).is_some() {
                return Reply::Int(0);
            }
            set_value(ctx, key, value.clone(), Expiry::Persist);
            Reply::Int(1)
        }
        StringOp::GetEx { key, ttl } => run_getex(ctx, key, ttl),
        StringOp::GetDel { key } => match string_of(ctx, key) {
            Ok(Some(v)) => {
                let del = ctx.delete(key);
                ctx.write(key, del);
                Reply::Bulk(v)
            }
            Ok(None) => Reply::Nil,
            Err(r) => r,
        },
        StringOp::MGet { keys } => Reply::Array(
            keys.iter()
                .map(|k| Reply::opt(string_of(ctx, k).ok().flatten()))
                .collect(),
        ),
        StringOp::MSet { pairs } => {
            set_pairs(ctx, pairs);
            Reply::OK
        }
        StringOp::MSetNx { pairs } => {
            if pairs.iter().any(|(k, _)| ctx.live(k).is_some()) {
                return Reply::Int(0);
            }
            set_pairs(ctx, pairs);
            Reply::Int(1)
        }
        StringOp::GetSet { key, value } => match string_of(ctx, key) {
            Err(r) => r,
            Ok(old) => {
                set_value(ctx, key, value.clone(), Expiry::Persist);
                Reply::opt(old)
            }
        },
        StringOp::Append { key, value } => run_append(ctx, key, value),
        StringOp::StrLen { key } => match string_of(ctx, key) {
            Ok(v) => Reply::Int(v.map_or(0, |v| v.len() as i64)),
            Err(r) => r,
        },
    }
}

/// `MSET`'s writes. One stamp covers the whole command, so a key given twice must be written
/// once, with its last value (as Redis's sequential assignment ends up).
fn set_pairs(ctx: &mut Ctx<'_>, pairs: super::hashes::Pairs<'_>) {
    let all: Vec<(&Bytes, &Bytes)> = pairs.iter().collect();
    for (i, (k, v)) in all.iter().enumerate() {
        if all[i + 1..].iter().any(|(later, _)| later == k) {
            continue;
        }
        set_value(ctx, k, (*v).clone(), Expiry::Persist);
    }
}

fn run_set(
    ctx: &mut Ctx<'_>,
    key: &Bytes,
    value: &Bytes,
    (nx, xx, get): (bool, bool, bool),
    cond: Option<Cond<'_>>,
    ttl: SetTtl<'_>,
) -> Reply {
    let e = match ttl {
        SetTtl::At(t) => match expiry_from(ctx, t.unit.as_bytes(), t.arg, "set") {
            Ok(t) => Expiry::At(t),
            Err(r) => return r,
        },
        SetTtl::Keep => Expiry::Keep,
        SetTtl::Persist => Expiry::Persist,
    };
    let old = if get {
        match string_of(ctx, key) {
            Ok(v) => Some(v),
            Err(r) => return r,
        }
    } else {
        None
    };
    let exists = ctx.live(key).is_some();
    let refused = match cond {
        Some(c) => match cas::holds(ctx, key, c) {
            Ok(ok) => !ok,
            Err(e) => return e,
        },
        None => (nx && exists) || (xx && !exists),
    };
    if refused {
        return match old {
            Some(v) => Reply::opt(v),
            None => Reply::Nil,
        };
    }
    set_value(ctx, key, value.clone(), e);
    match old {
        Some(v) => Reply::opt(v),
        None => Reply::OK,
    }
}

fn run_getex(ctx: &mut Ctx<'_>, key: &Bytes, ttl: SetTtl<'_>) -> Reply {
    // Redis's order: the option syntax (parsed), then the key (missing: nil), its type, then
    // the value.
    let v = match string_of(ctx, key) {
        Ok(Some(v)) => v,
        Ok(None) => return Reply::Nil,
        Err(r) => return r,
    };
    let e = match ttl {
        SetTtl::At(t) => match expiry_from(ctx, t.unit.as_bytes(), t.arg, "getex") {
            Ok(t) => Expiry::At(t),
            Err(r) => return r,
        },
        SetTtl::Persist => Expiry::Persist,
        SetTtl::Keep => Expiry::Keep,
    };
    match e {
        Expiry::Keep => {}
        Expiry::At(t) if t <= ctx.now_ms as i64 => {
            let del = ctx.delete(key);
            ctx.write(key, del);
        }
        Expiry::Persist if ctx.live(key).and_then(|k| k.body.expiry()).is_none() => {}
        _ => {
            let body = Body {
                ttl: Some(ttl_reg(ctx, key, e)),
                ..Body::default()
            };
            let delta = ctx.in_place(key, body);
            ctx.write(key, delta);
        }
    }
    Reply::Bulk(v)
}

fn run_append(ctx: &mut Ctx<'_>, key: &Bytes, value: &Bytes) -> Reply {
    match string_of(ctx, key) {
        Err(r) => r,
        Ok(None) => {
            let len = value.len();
            set_value(ctx, key, value.clone(), Expiry::Persist);
            Reply::Int(len as i64)
        }
        Ok(Some(old)) => {
            if super::substrings::exceeds(ctx, old.len() as u64, value.len()) {
                return super::substrings::too_long();
            }
            let mut v = BytesMut::with_capacity(old.len() + value.len());
            v.extend_from_slice(&old);
            v.extend_from_slice(value);
            let len = v.len();
            let s = ctx.stamp();
            let body = Body {
                string: Some(Reg::new(s, v.freeze())),
                ..Body::default()
            };
            let delta = ctx.in_place(key, body);
            ctx.write(key, delta);
            Reply::Int(len as i64)
        }
    }
}
