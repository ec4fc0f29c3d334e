//! Counter commands: INCR DECR INCRBY DECRBY INCRBYFLOAT HINCRBY HINCRBYFLOAT.
//!
//! An increment writes no value: it raises this region's running total for the string or the
//! field ([`crate::counter`]), so increments made in several regions at once all count. Replies,
//! errors and their order are Redis 7's (`t_string.c`, `t_hash.c`): the increment argument is
//! checked first for the integer commands and `HINCRBYFLOAT`, the type and the stored value
//! first for `INCRBYFLOAT`.

use super::{hashes, parse_i64, strings, Ctx};
use crate::counter::{format_units, parse_decimal, Count, Counts, Decimal, Tally, SCALE};
use crate::crdt::{Body, Kind, Reg};
use crate::reply::{ErrorKind, Reply};
use bytes::Bytes;

fn overflow() -> Reply {
    Reply::err_of(ErrorKind::Value, "increment or decrement would overflow")
}

fn not_float() -> Reply {
    Reply::err_of(ErrorKind::Value, "value is not a valid float")
}

fn nan_or_inf() -> Reply {
    Reply::err_of(ErrorKind::Value, "increment would produce NaN or Infinity")
}

/// Adds `units` to this region's total for `target` of `key`, creating the key (a string for
/// `None`, a hash otherwise) when it is not visible.
fn count(ctx: &mut Ctx<'_>, key: &Bytes, target: Option<&Bytes>, units: i128) {
    let s = ctx.stamp();
    let live = ctx.live(key);
    let (epoch, own) = live.map_or((None, 0), |k| {
        (k.body.epoch(target), k.body.own_units(target, s.region))
    });
    let counts: Counts = std::iter::once(Count {
        target: target.cloned(),
        region: s.region,
        tally: Reg::new(
            s,
            Tally {
                epoch,
                units: own.saturating_add(units),
            },
        ),
    })
    .collect();
    let delta = if live.is_some() {
        ctx.in_place(
            key,
            Body {
                counts,
                ..Body::default()
            },
        )
    } else {
        let kind = if target.is_some() {
            Kind::Hash
        } else {
            Kind::String
        };
        ctx.fresh(
            key,
            Body {
                kind: Some(Reg::new(s, kind)),
                counts,
                ..Body::default()
            },
        )
    };
    ctx.write(key, delta);
}

/// `INCRBY`/`DECRBY`/`INCR`/`DECR` after the increment was read.
fn incr_string(ctx: &mut Ctx<'_>, key: &Bytes, by: i64) -> Reply {
    let cur = match strings::string_of(ctx, key) {
        Err(e) => return e,
        Ok(None) => 0,
        Ok(Some(v)) => match parse_i64(&v) {
            Some(n) => n,
            None => return Reply::not_integer(),
        },
    };
    let Some(new) = cur.checked_add(by) else {
        return overflow();
    };
    count(ctx, key, None, i128::from(by) * SCALE);
    Reply::Int(new)
}

/// `INCR key`.
pub(super) fn incr(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    incr_string(ctx, &args[1], 1)
}

/// `DECR key`.
pub(super) fn decr(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    incr_string(ctx, &args[1], -1)
}

/// `INCRBY key increment`.
pub(super) fn incrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match parse_i64(&args[2]) {
        Some(n) => incr_string(ctx, &args[1], n),
        None => Reply::not_integer(),
    }
}

/// `DECRBY key decrement`.
pub(super) fn decrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match parse_i64(&args[2]) {
        Some(i64::MIN) => Reply::err_of(ErrorKind::Value, "decrement would overflow"),
        Some(n) => incr_string(ctx, &args[1], -n),
        None => Reply::not_integer(),
    }
}

/// `INCRBYFLOAT key increment`.
pub(super) fn incrbyfloat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let key = &args[1];
    let cur = match strings::string_of(ctx, key) {
        Err(e) => return e,
        Ok(None) => Decimal::Finite(0),
        Ok(Some(v)) => parse_decimal(&v),
    };
    let inc = parse_decimal(&args[2]);
    let (cur, inc) = match (cur, inc) {
        (Decimal::Invalid, _) | (_, Decimal::Invalid) => return not_float(),
        (Decimal::Finite(c), Decimal::Finite(i)) => (c, i),
        _ => return nan_or_inf(),
    };
    let new = cur + inc;
    if new.abs() >= crate::counter::MAX_UNITS {
        return nan_or_inf();
    }
    count(ctx, key, None, inc);
    Reply::bulk(format_units(new))
}

/// The visible hash at `key` for a counter on `field`: `Err` for a string, or when the field
/// would be one more than the hash may hold.
fn hash_for(ctx: &Ctx<'_>, key: &Bytes, field: &Bytes) -> Result<Option<Bytes>, Reply> {
    match ctx.kind(key) {
        Some(Kind::String | Kind::Set | Kind::ZSet) => Err(Reply::wrong_type()),
        None => Ok(None),
        Some(Kind::Hash) => {
            let Some(k) = ctx.store.get(key) else {
                return Ok(None);
            };
            let v = hashes::field(k, field);
            if v.is_none() && k.body.fields.len() >= ctx.max_hash_fields {
                return Err(hashes::too_many_fields(ctx.max_hash_fields));
            }
            Ok(v)
        }
    }
}

/// `HINCRBY key field increment`.
pub(super) fn hincrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (key, field) = (&args[1], &args[2]);
    let Some(by) = parse_i64(&args[3]) else {
        return Reply::not_integer();
    };
    let cur = match hash_for(ctx, key, field) {
        Err(e) => return e,
        Ok(None) => 0,
        Ok(Some(v)) => match parse_i64(&v) {
            Some(n) => n,
            None => return Reply::err_of(ErrorKind::Value, "hash value is not an integer"),
        },
    };
    let Some(new) = cur.checked_add(by) else {
        return overflow();
    };
    count(ctx, key, Some(field), i128::from(by) * SCALE);
    Reply::Int(new)
}

/// `HINCRBYFLOAT key field increment`.
pub(super) fn hincrbyfloat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (key, field) = (&args[1], &args[2]);
    let inc = match parse_decimal(&args[3]) {
        Decimal::Invalid => return not_float(),
        Decimal::Huge => return Reply::err_of(ErrorKind::Value, "value is NaN or Infinity"),
        Decimal::Finite(i) => i,
    };
    let cur = match hash_for(ctx, key, field) {
        Err(e) => return e,
        Ok(None) => 0,
        Ok(Some(v)) => match parse_decimal(&v) {
            Decimal::Finite(c) => c,
            // A stored value of "inf" parses in Redis, and adding to it gives infinity.
            Decimal::Huge => return nan_or_inf(),
            Decimal::Invalid => {
                return Reply::err_of(ErrorKind::Value, "hash value is not a float")
            }
        },
    };
    let new = cur + inc;
    if new.abs() >= crate::counter::MAX_UNITS {
        return nan_or_inf();
    }
    count(ctx, key, Some(field), inc);
    Reply::bulk(format_units(new))
}
