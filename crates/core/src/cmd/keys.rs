//! Keyspace commands: DEL UNLINK EXISTS TYPE RENAME, the EXPIRE family, TTL PTTL PERSIST,
//! DBSIZE KEYS SCAN.
//!
//! A `DEL` bumps the key's causal length to even, which is what makes it win over writes made
//! concurrently in other regions. An expiry computed in the past deletes the key the same way,
//! as Redis does.

use super::{glob, is_opt, parse_i64, parse_u64, Ctx};
use crate::crdt::{Body, Kind, Reg};
use crate::reply::{ErrorKind, Reply};
use bytes::Bytes;

pub(super) fn del(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    let mut n = 0;
    for key in &a[1..] {
        if ctx.live(key).is_some() {
            let d = ctx.delete(key);
            ctx.write(key, d);
            n += 1;
        }
    }
    Reply::Int(n)
}

pub(super) fn exists(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    Reply::Int(a[1..].iter().filter(|k| ctx.live(k).is_some()).count() as i64)
}

pub(super) fn type_(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    Reply::Simple(match ctx.kind(&a[1]) {
        None => "none",
        Some(Kind::String) => "string",
        Some(Kind::Hash) => "hash",
    })
}

#[allow(
    clippy::expect_used,
    reason = "a key the command found visible has a kind"
)]
pub(super) fn rename(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    let (src, dst) = (&a[1], &a[2]);
    let Some(state) = ctx.live(src) else {
        return Reply::err("no such key");
    };
    if src == dst {
        return Reply::OK;
    }
    let s = ctx.stamp();
    let kind = state.body.kind().expect("a visible key has a kind");
    let mut body = Body {
        kind: Some(Reg::new(s, kind)),
        ttl: Some(Reg::new(s, state.body.expiry())),
        ..Body::default()
    };
    match kind {
        Kind::String => {
            let v = state.body.string.as_ref().map(|r| r.value.clone());
            body.string = v.map(|v| Reg::new(s, v));
        }
        Kind::Hash => {
            body.fields = state
                .body
                .fields
                .iter_unordered()
                .filter_map(|(f, r)| r.value.clone().map(|v| (f.clone(), Reg::new(s, Some(v)))))
                .collect();
        }
    }
    let del = ctx.delete(src);
    ctx.write(src, del);
    let put = ctx.replace(dst, body);
    ctx.write(dst, put);
    Reply::OK
}

pub(super) fn expire(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    let name = String::from_utf8_lossy(&a[0]).to_ascii_lowercase();
    let key = &a[1];
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for o in &a[3..] {
        if is_opt(o, "NX") {
            nx = true;
        } else if is_opt(o, "XX") {
            xx = true;
        } else if is_opt(o, "GT") {
            gt = true;
        } else if is_opt(o, "LT") {
            lt = true;
        } else {
            return Reply::err_of(
                ErrorKind::Syntax,
                format!("Unsupported option {}", String::from_utf8_lossy(o)),
            );
        }
    }
    if nx && (xx || gt || lt) {
        return Reply::err_of(
            ErrorKind::Syntax,
            "NX and XX, GT or LT options at the same time are not compatible",
        );
    }
    if gt && lt {
        return Reply::err_of(
            ErrorKind::Syntax,
            "GT and LT options at the same time are not compatible",
        );
    }
    let Some(n) = parse_i64(&a[2]) else {
        return Reply::not_integer();
    };
    let invalid = || {
        Reply::err_of(
            ErrorKind::Value,
            format!("invalid expire time in '{name}' command"),
        )
    };
    let seconds = name == "expire" || name == "expireat";
    let relative = name == "expire" || name == "pexpire";
    let mut when = n;
    if seconds {
        match when.checked_mul(1000) {
            Some(w) => when = w,
            None => return invalid(),
        }
    }
    if relative {
        match when.checked_add(ctx.now_ms as i64) {
            Some(w) => when = w,
            None => return invalid(),
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

pub(super) fn ttl(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    let ms = a[0].eq_ignore_ascii_case(b"PTTL");
    let Some(state) = ctx.live(&a[1]) else {
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

pub(super) fn persist(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    let key = &a[1];
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

pub(super) fn dbsize(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> Reply {
    Reply::Int(ctx.store.count_visible(ctx.now_ms) as i64)
}

pub(super) fn keys(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    let now = ctx.now_ms;
    let mut out: Vec<&Bytes> = ctx
        .store
        .iter()
        .filter(|(k, s)| glob::matches(&a[1], k) && s.is_visible(now))
        .map(|(k, _)| k)
        .collect();
    out.sort();
    Reply::Array(out.into_iter().map(|k| Reply::Bulk(k.clone())).collect())
}

pub(super) fn scan(ctx: &mut Ctx<'_>, a: &[Bytes]) -> Reply {
    let Some(cursor) = parse_u64(&a[1]) else {
        return Reply::err("invalid cursor");
    };
    let (mut pattern, mut count, mut kind): (Option<&Bytes>, usize, Option<Kind>) =
        (None, 10, None);
    let mut type_filter_unknown = false;
    let mut i = 2;
    while i < a.len() {
        if i + 1 >= a.len() {
            return Reply::syntax();
        }
        let (o, v) = (&a[i], &a[i + 1]);
        if is_opt(o, "MATCH") {
            pattern = Some(v);
        } else if is_opt(o, "COUNT") {
            match parse_i64(v) {
                Some(c) if c >= 1 => count = c as usize,
                Some(_) => return Reply::syntax(),
                None => return Reply::not_integer(),
            }
        } else if is_opt(o, "TYPE") {
            if is_opt(v, "STRING") {
                kind = Some(Kind::String);
            } else if is_opt(v, "HASH") {
                kind = Some(Kind::Hash);
            } else {
                // A type this store never holds (list, set, ...): nothing matches.
                type_filter_unknown = true;
            }
        } else {
            return Reply::syntax();
        }
        i += 2;
    }
    let now = ctx.now_ms;
    let mut keys = Vec::new();
    let mut next = 0;
    for (visited, (hash, key, state)) in ctx.store.iter_from(cursor).enumerate() {
        if visited >= count {
            next = hash;
            break;
        }
        let Some(k) = state.visible_kind(now) else {
            continue;
        };
        if type_filter_unknown || kind.is_some_and(|want| want != k) {
            continue;
        }
        if pattern.is_some_and(|p| !glob::matches(p, key)) {
            continue;
        }
        keys.push(Reply::Bulk(key.clone()));
    }
    Reply::Array(vec![Reply::bulk(next.to_string()), Reply::Array(keys)])
}
