//! Parts of a string: `GETRANGE` (and its old name `SUBSTR`) and `SETRANGE`, with Redis 7's
//! index rules and checks in Redis's order (numbers first, then the key and its type).
//!
//! `SETRANGE` writes the whole new value as the key's string register, stamped once: the
//! register is last-writer-wins, so two regions' concurrent `SETRANGE`s of one key do not
//! merge byte ranges — one whole value wins everywhere (docs/DESIGN.md, "Conflict semantics").

use super::{parse_i64, Ctx};
use crate::crdt::{Body, Kind, Reg};
use crate::reply::{ErrorKind, Reply};
use bytes::{Bytes, BytesMut};

/// Redis's refusal of a string longer than `proto-max-bulk-len` (ours: `redis.max_bulk_len`).
pub(super) fn too_long() -> Reply {
    Reply::err_of(
        ErrorKind::Value,
        "string exceeds maximum allowed size (proto-max-bulk-len)".to_string(),
    )
}

/// Whether a string of `offset + len` bytes would exceed the limit (Redis's
/// `checkStringLength`).
pub(super) fn exceeds(ctx: &Ctx<'_>, offset: u64, len: usize) -> bool {
    offset
        .checked_add(len as u64)
        .is_none_or(|total| total > ctx.max_string_bytes as u64)
}

/// The bytes `start..=end` of `s` under Redis's rules: negative indexes count from the end,
/// both are clamped into the string, and an empty range is an empty string.
fn range(s: &[u8], start: i64, end: i64) -> &[u8] {
    let len = s.len() as i64;
    if start < 0 && end < 0 && start > end {
        return &[];
    }
    let start = if start < 0 { len + start } else { start }.max(0);
    let end = if end < 0 { len + end } else { end }.max(0);
    let end = end.min(len - 1);
    if start > end || len == 0 {
        return &[];
    }
    // 0 <= start <= end < len here.
    &s[start as usize..=end as usize]
}

/// `GETRANGE key start end`, `SUBSTR key start end`.
pub(super) fn getrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (Some(key), Some(a), Some(b)) = (args.get(1), args.get(2), args.get(3)) else {
        return Reply::syntax();
    };
    let (Some(start), Some(end)) = (parse_i64(a), parse_i64(b)) else {
        return Reply::not_integer();
    };
    match super::strings::string_of(ctx, key) {
        Err(e) => e,
        Ok(None) => Reply::Bulk(Bytes::new()),
        Ok(Some(v)) => Reply::Bulk(v.slice_ref(range(&v, start, end))),
    }
}

/// `SETRANGE key offset value`: the new length.
pub(super) fn setrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (Some(key), Some(o), Some(value)) = (args.get(1), args.get(2), args.get(3)) else {
        return Reply::syntax();
    };
    let Some(offset) = parse_i64(o) else {
        return Reply::not_integer();
    };
    if offset < 0 {
        return Reply::err("offset is out of range");
    }
    let offset = offset as u64;
    let old = match super::strings::string_of(ctx, key) {
        Err(e) => return e,
        Ok(v) => v,
    };
    if value.is_empty() {
        // Nothing to write: a missing key stays missing.
        return Reply::Int(old.map_or(0, |v| v.len() as i64));
    }
    if exceeds(ctx, offset, value.len()) {
        return too_long();
    }
    let offset = offset as usize;
    let old = old.unwrap_or_default();
    let len = old.len().max(offset + value.len());
    let mut v = BytesMut::zeroed(len);
    v[..old.len()].copy_from_slice(&old);
    v[offset..offset + value.len()].copy_from_slice(value);
    let s = ctx.stamp();
    let delta = if ctx.live(key).is_some() {
        // In place: the TTL stays, as in Redis.
        ctx.in_place(
            key,
            Body {
                string: Some(Reg::new(s, v.freeze())),
                ..Body::default()
            },
        )
    } else {
        ctx.replace(
            key,
            Body {
                kind: Some(Reg::new(s, Kind::String)),
                string: Some(Reg::new(s, v.freeze())),
                ttl: Some(Reg::new(s, None)),
                ..Body::default()
            },
        )
    };
    ctx.write(key, delta);
    Reply::Int(len as i64)
}

#[cfg(test)]
mod tests {
    use super::range;

    #[test]
    fn ranges_follow_redis() {
        let s = b"This is a string";
        assert_eq!(range(s, 0, 3), b"This");
        assert_eq!(range(s, -3, -1), b"ing");
        assert_eq!(range(s, 0, -1), s);
        assert_eq!(range(s, 10, 100), b"string");
        assert_eq!(range(s, 5, 3), b"");
        assert_eq!(range(s, -1, -5), b"");
        assert_eq!(range(s, -100, 2), b"Thi");
        assert_eq!(range(s, i64::MIN, i64::MAX), s);
        assert_eq!(range(s, i64::MAX, i64::MAX), b"");
        assert_eq!(range(b"", 0, -1), b"");
    }
}
