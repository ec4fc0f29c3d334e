//! String commands: GET SET SETEX PSETEX SETNX GETEX GETDEL MGET MSET APPEND STRLEN.

use super::{is_opt, parse_i64, Ctx};
use crate::crdt::{Body, Kind, Reg};
use crate::reply::{ErrorKind, Reply};
use bytes::{Bytes, BytesMut};

/// The string value of a visible string key; `Err` for a hash.
fn string_of(ctx: &Ctx<'_>, key: &Bytes) -> Result<Option<Bytes>, Reply> {
    match ctx.kind(key) {
        None => Ok(None),
        Some(Kind::Hash) => Err(Reply::wrong_type()),
        Some(Kind::String) => Ok(ctx
            .store
            .get(key)
            .and_then(|k| k.body.string.as_ref())
            .map(|r| r.value.clone())),
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

pub(super) fn get(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    match string_of(ctx, &a[1]) {
        Ok(v) => Reply::opt(v),
        Err(e) => e,
    }
}

pub(super) fn set(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    let (key, value) = (&a[1], a[2].clone());
    let (mut nx, mut xx, mut get, mut keepttl) = (false, false, false, false);
    let mut expiry: Option<(&'static str, &Bytes)> = None;
    let mut i = 3;
    while i < a.len() {
        let o = &a[i];
        let has_next = i + 1 < a.len();
        if is_opt(o, "NX") && !xx {
            nx = true;
        } else if is_opt(o, "XX") && !nx {
            xx = true;
        } else if is_opt(o, "GET") {
            get = true;
        } else if is_opt(o, "KEEPTTL") && expiry.is_none() {
            keepttl = true;
        } else if let Some(u) = time_unit(o)
            .filter(|u| !keepttl && has_next && expiry.is_none_or(|(prev, _)| prev == *u))
        {
            expiry = Some((u, &a[i + 1]));
            i += 1;
        } else {
            return Reply::syntax();
        }
        i += 1;
    }
    let e = match expiry {
        Some((unit, arg)) => match expiry_from(ctx, unit.as_bytes(), arg, "set") {
            Ok(t) => Expiry::At(t),
            Err(r) => return r,
        },
        None if keepttl => Expiry::Keep,
        None => Expiry::Persist,
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
    if (nx && exists) || (xx && !exists) {
        return match old {
            Some(v) => Reply::opt(v),
            None => Reply::Nil,
        };
    }
    set_value(ctx, key, value, e);
    match old {
        Some(v) => Reply::opt(v),
        None => Reply::OK,
    }
}

fn setex_generic(ctx: &mut Ctx<'_>, a: &[Bytes], unit: &str, cmd: &str) -> Reply {
    match expiry_from(ctx, unit.as_bytes(), &a[2], cmd) {
        Ok(t) => {
            set_value(ctx, &a[1], a[3].clone(), Expiry::At(t));
            Reply::OK
        }
        Err(r) => r,
    }
}

pub(super) fn setex(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    setex_generic(ctx, a, "EX", "setex")
}

pub(super) fn psetex(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    setex_generic(ctx, a, "PX", "psetex")
}

pub(super) fn setnx(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    if ctx.live(&a[1]).is_some() {
        return Reply::Int(0);
    }
    set_value(ctx, &a[1], a[2].clone(), Expiry::Persist);
    Reply::Int(1)
}

pub(super) fn getex(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    let key = &a[1];
    // Redis's order: the option syntax, then the key (missing: nil), its type, then the value.
    let mut persist = false;
    let mut expiry: Option<(&'static str, &Bytes)> = None;
    let mut i = 2;
    while i < a.len() {
        let o = &a[i];
        if is_opt(o, "PERSIST") && expiry.is_none() {
            persist = true;
        } else if let Some(u) = time_unit(o)
            .filter(|u| !persist && i + 1 < a.len() && expiry.is_none_or(|(prev, _)| prev == *u))
        {
            expiry = Some((u, &a[i + 1]));
            i += 1;
        } else {
            return Reply::syntax();
        }
        i += 1;
    }
    let v = match string_of(ctx, key) {
        Ok(Some(v)) => v,
        Ok(None) => return Reply::Nil,
        Err(r) => return r,
    };
    let e = match expiry {
        Some((unit, arg)) => match expiry_from(ctx, unit.as_bytes(), arg, "getex") {
            Ok(t) => Expiry::At(t),
            Err(r) => return r,
        },
        None if persist => Expiry::Persist,
        None => Expiry::Keep,
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

pub(super) fn getdel(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    match string_of(ctx, &a[1]) {
        Ok(Some(v)) => {
            let del = ctx.delete(&a[1]);
            ctx.write(&a[1], del);
            Reply::Bulk(v)
        }
        Ok(None) => Reply::Nil,
        Err(r) => r,
    }
}

pub(super) fn mget(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    Reply::Array(
        a[1..]
            .iter()
            .map(|k| Reply::opt(string_of(ctx, k).ok().flatten()))
            .collect(),
    )
}

pub(super) fn mset(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    if a.len().is_multiple_of(2) {
        return Reply::wrong_arity("mset");
    }
    // One stamp covers the whole command, so a key given twice must be written once, with
    // its last value (as Redis's sequential assignment ends up).
    let pairs: Vec<&[Bytes]> = a[1..].chunks(2).collect();
    for (i, kv) in pairs.iter().enumerate() {
        if pairs[i + 1..].iter().any(|later| later[0] == kv[0]) {
            continue;
        }
        set_value(ctx, &kv[0], kv[1].clone(), Expiry::Persist);
    }
    Reply::OK
}

pub(super) fn append(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    let key = &a[1];
    match string_of(ctx, key) {
        Err(r) => r,
        Ok(None) => {
            let len = a[2].len();
            set_value(ctx, key, a[2].clone(), Expiry::Persist);
            Reply::Int(len as i64)
        }
        Ok(Some(old)) => {
            let mut v = BytesMut::with_capacity(old.len() + a[2].len());
            v.extend_from_slice(&old);
            v.extend_from_slice(&a[2]);
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

pub(super) fn strlen(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    match string_of(ctx, &a[1]) {
        Ok(v) => Reply::Int(v.map_or(0, |v| v.len() as i64)),
        Err(r) => r,
    }
}
