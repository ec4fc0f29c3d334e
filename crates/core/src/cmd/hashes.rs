//! Hash commands: HSET HMSET HSETNX HGET HMGET HGETALL HDEL HEXISTS HLEN HKEYS HVALS.
//!
//! Each field is its own LWW register, so concurrent writes of different fields of one session
//! both survive. `HDEL` writes a field tombstone (a register holding `None`) so that it beats
//! older writes of the field arriving later.

use super::Ctx;
use crate::crdt::{Body, KeyState, Kind, Reg};
use crate::fields::Fields;
use crate::reply::Reply;
use bytes::Bytes;

/// The visible hash at `key`: `Ok(None)` if absent, `Err` for a string.
fn hash_of<'c>(ctx: &'c Ctx<'_>, key: &Bytes) -> Result<Option<&'c KeyState>, Reply> {
    match ctx.kind(key) {
        None => Ok(None),
        Some(Kind::String) => Err(Reply::wrong_type()),
        Some(Kind::Hash) => Ok(ctx.store.get(key)),
    }
}

/// Live fields of a visible hash, in field order.
fn live_fields(k: &KeyState) -> impl Iterator<Item = (&Bytes, &Bytes)> {
    k.body
        .fields
        .iter()
        .filter_map(|(f, r)| r.value.as_ref().map(|v| (f, v)))
}

fn field(k: &KeyState, f: &Bytes) -> Option<Bytes> {
    k.body.fields.get(f).and_then(|r| r.value.clone())
}

/// Writes `fields` into the hash at `key`, creating it if absent.
fn write_fields(ctx: &mut Ctx<'_>, key: &Bytes, fields: Fields) {
    let s = ctx.stamp();
    let delta = if ctx.live(key).is_some() {
        ctx.in_place(
            key,
            Body {
                fields,
                ..Body::default()
            },
        )
    } else {
        let body = Body {
            kind: Some(Reg::new(s, Kind::Hash)),
            fields,
            ..Body::default()
        };
        ctx.fresh(key, body)
    };
    ctx.write(key, delta);
}

pub(super) fn hset(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    let hmset = a[0].eq_ignore_ascii_case(b"HMSET");
    if !a.len().is_multiple_of(2) {
        return Reply::wrong_arity(if hmset { "hmset" } else { "hset" });
    }
    let key = &a[1];
    let existing = match hash_of(ctx, key) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let s = ctx.stamp();
    let mut fields = Fields::new();
    let mut added = 0;
    for fv in a[2..].chunks(2) {
        let is_new =
            existing.and_then(|k| field(k, &fv[0])).is_none() && !fields.contains_key(&fv[0]);
        if is_new {
            added += 1;
        }
        fields.insert(fv[0].clone(), Reg::new(s, Some(fv[1].clone())));
    }
    // Field registers held, deleted fields included (they take memory too until the key is
    // replaced): an O(1) count, so the check costs nothing on a large hash.
    let held = existing.map_or(0, |k| k.body.fields.len());
    if held + added as usize > ctx.max_hash_fields {
        return too_many_fields(ctx.max_hash_fields);
    }
    write_fields(ctx, key, fields);
    if hmset {
        Reply::OK
    } else {
        Reply::Int(added)
    }
}

pub(super) fn hsetnx(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    let key = &a[1];
    match hash_of(ctx, key) {
        Err(r) => r,
        Ok(Some(k)) if field(k, &a[2]).is_some() => Reply::Int(0),
        Ok(k) => {
            if k.map_or(0, |k| k.body.fields.len()) >= ctx.max_hash_fields {
                return too_many_fields(ctx.max_hash_fields);
            }
            let s = ctx.stamp();
            let mut fields = Fields::new();
            fields.insert(a[2].clone(), Reg::new(s, Some(a[3].clone())));
            write_fields(ctx, key, fields);
            Reply::Int(1)
        }
    }
}

/// The error for a hash that would grow beyond the configured bound.
fn too_many_fields(max: usize) -> Reply {
    Reply::err(format!(
        "hash would exceed the maximum of {max} fields (redis.max_hash_fields)"
    ))
}

pub(super) fn hget(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    match hash_of(ctx, &a[1]) {
        Err(r) => r,
        Ok(k) => Reply::opt(k.and_then(|k| field(k, &a[2]))),
    }
}

pub(super) fn hmget(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    match hash_of(ctx, &a[1]) {
        Err(r) => r,
        Ok(k) => Reply::Array(
            a[2..]
                .iter()
                .map(|f| Reply::opt(k.and_then(|k| field(k, f))))
                .collect(),
        ),
    }
}

pub(super) fn hgetall(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    match hash_of(ctx, &a[1]) {
        Err(r) => r,
        Ok(None) => Reply::Map(Vec::new()),
        Ok(Some(k)) => Reply::Map(
            live_fields(k)
                .map(|(f, v)| (Reply::Bulk(f.clone()), Reply::Bulk(v.clone())))
                .collect(),
        ),
    }
}

pub(super) fn hdel(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    let key = &a[1];
    let k = match hash_of(ctx, key) {
        Err(r) => return r,
        Ok(None) => return Reply::Int(0),
        Ok(Some(k)) => k,
    };
    let s = ctx.stamp();
    let mut fields = Fields::new();
    for f in &a[2..] {
        if field(k, f).is_some() {
            fields.insert(f.clone(), Reg::new(s, None));
        }
    }
    let removed = fields.len() as i64;
    if removed > 0 {
        let delta = ctx.in_place(
            key,
            Body {
                fields,
                ..Body::default()
            },
        );
        ctx.write(key, delta);
    }
    Reply::Int(removed)
}

pub(super) fn hexists(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    match hash_of(ctx, &a[1]) {
        Err(r) => r,
        Ok(k) => Reply::Int(i64::from(k.and_then(|k| field(k, &a[2])).is_some())),
    }
}

pub(super) fn hlen(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    match hash_of(ctx, &a[1]) {
        Err(r) => r,
        Ok(k) => Reply::Int(k.map_or(0, |k| {
            // A count needs no order (a large hash would sort its fields for it).
            k.body
                .fields
                .iter_unordered()
                .filter(|(_, r)| r.value.is_some())
                .count() as i64
        })),
    }
}

pub(super) fn hkeys(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    match hash_of(ctx, &a[1]) {
        Err(r) => r,
        Ok(k) => Reply::Array(
            k.into_iter()
                .flat_map(live_fields)
                .map(|(f, _)| Reply::Bulk(f.clone()))
                .collect(),
        ),
    }
}

pub(super) fn hvals(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    match hash_of(ctx, &a[1]) {
        Err(r) => r,
        Ok(k) => Reply::Array(
            k.into_iter()
                .flat_map(live_fields)
                .map(|(_, v)| Reply::Bulk(v.clone()))
                .collect(),
        ),
    }
}
