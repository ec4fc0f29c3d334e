//! Compare-and-set and compare-and-delete without Lua: `SET … IFEQ|IFNE|IFDEQ|IFDNE`,
//! `DELEX key [IFEQ|IFNE|IFDEQ|IFDNE v]` and `DIGEST` (Redis 8.4), `DELIFEQ` (Valkey 9).
//!
//! These are what lock-releasing session handlers send instead of a Lua script ("delete the
//! lock only if it still holds my token"). The comparison and the write run in one locked
//! step on the key's shard, so they are atomic within the region, as in Redis. Across regions
//! nothing is compared: two regions may each see their own token and both succeed, and the
//! key converges by its registers as for any pair of concurrent writes (a delete wins over a
//! write that had not seen it). docs/DESIGN.md, "Compare-and-set across regions", says what
//! that means for locks.
//!
//! A digest is the XXH3 64-bit hash of the value, as 16 lowercase hexadecimal digits (zero
//! padded); a digest argument must be 16 hexadecimal digits of either case (Redis 8.4.0's
//! checks, after redis/redis#14502).

use super::{is_opt, Ctx};
use crate::reply::Reply;
use bytes::Bytes;

/// A condition on a key's current string value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cond<'a> {
    /// The value equals this one (the key must exist).
    IfEq(&'a Bytes),
    /// The value differs from this one, or the key is missing.
    IfNe(&'a Bytes),
    /// The value's digest equals this one (the key must exist).
    IfDeq(u64),
    /// The value's digest differs from this one, or the key is missing.
    IfDne(u64),
}

/// The digest of a value.
pub fn digest(v: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(v)
}

/// A digest as `DIGEST` prints it.
fn digest_hex(v: &[u8]) -> String {
    format!("{:016x}", digest(v))
}

/// Redis's reply to a digest argument that is not 16 hexadecimal digits.
fn bad_digest() -> Reply {
    Reply::err("must be exactly 16 hexadecimal characters")
}

/// A digest argument: exactly 16 hexadecimal digits, either case.
fn parse_digest(b: &[u8]) -> Result<u64, Reply> {
    if b.len() != 16 || !b.iter().all(u8::is_ascii_hexdigit) {
        return Err(bad_digest());
    }
    let s = std::str::from_utf8(b).map_err(|_| bad_digest())?;
    u64::from_str_radix(s, 16).map_err(|_| bad_digest())
}

/// Option `o` with its argument `v` as a condition, if `o` names one; `Err` for a malformed
/// digest.
pub fn parse_cond<'a>(o: &[u8], v: &'a Bytes) -> Option<Result<Cond<'a>, Reply>> {
    if is_opt(o, "IFEQ") {
        Some(Ok(Cond::IfEq(v)))
    } else if is_opt(o, "IFNE") {
        Some(Ok(Cond::IfNe(v)))
    } else if is_opt(o, "IFDEQ") {
        Some(parse_digest(v).map(Cond::IfDeq))
    } else if is_opt(o, "IFDNE") {
        Some(parse_digest(v).map(Cond::IfDne))
    } else {
        None
    }
}

/// Whether `o` names a condition (it then takes an argument).
pub fn is_cond(o: &[u8]) -> bool {
    ["IFEQ", "IFNE", "IFDEQ", "IFDNE"]
        .into_iter()
        .any(|c| is_opt(o, c))
}

/// Whether `cond` holds for `key` now; `Err(WRONGTYPE)` for a hash.
pub fn holds(ctx: &Ctx<'_>, key: &Bytes, cond: Cond<'_>) -> Result<bool, Reply> {
    let v = super::strings::string_of(ctx, key)?;
    Ok(match (cond, v) {
        (Cond::IfEq(want), Some(v)) => v == *want,
        (Cond::IfDeq(want), Some(v)) => digest(&v) == want,
        (Cond::IfEq(_) | Cond::IfDeq(_), None) => false,
        (Cond::IfNe(want), Some(v)) => v != *want,
        (Cond::IfDne(want), Some(v)) => digest(&v) != want,
        (Cond::IfNe(_) | Cond::IfDne(_), None) => true,
    })
}

/// Deletes `key` if it is visible; 1 if it was.
fn delete(ctx: &mut Ctx<'_>, key: &Bytes) -> Reply {
    if ctx.live(key).is_none() {
        return Reply::Int(0);
    }
    let d = ctx.delete(key);
    ctx.write(key, d);
    Reply::Int(1)
}

/// `DELEX key [IFEQ v | IFNE v | IFDEQ d | IFDNE d]`.
pub(super) fn delex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let Some(key) = args.get(1) else {
        return Reply::wrong_arity("delex");
    };
    let cond = match args.get(2..).unwrap_or_default() {
        [] => None,
        [o, v] => match parse_cond(o, v) {
            Some(Ok(c)) => Some(c),
            Some(Err(e)) => return e,
            None => return Reply::syntax(),
        },
        _ => return Reply::syntax(),
    };
    match cond {
        // Without a condition, any type goes, as DEL.
        None => delete(ctx, key),
        Some(c) => match holds(ctx, key, c) {
            Err(e) => e,
            // A missing key "differs" from any value, but there is nothing to delete.
            Ok(true) => delete(ctx, key),
            Ok(false) => Reply::Int(0),
        },
    }
}

/// `DELIFEQ key value` (Valkey 9): `DELEX key IFEQ value`.
pub(super) fn delifeq(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (Some(key), Some(v)) = (args.get(1), args.get(2)) else {
        return Reply::wrong_arity("delifeq");
    };
    match holds(ctx, key, Cond::IfEq(v)) {
        Err(e) => e,
        Ok(true) => delete(ctx, key),
        Ok(false) => Reply::Int(0),
    }
}

/// `DIGEST key`.
pub(super) fn digest_cmd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let Some(key) = args.get(1) else {
        return Reply::wrong_arity("digest");
    };
    match super::strings::string_of(ctx, key) {
        Err(e) => e,
        Ok(None) => Reply::Nil,
        Ok(Some(v)) => Reply::bulk(digest_hex(&v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_xxh3_as_redis_prints_it() {
        // Redis's documentation: SET key1 "Hello world"; DIGEST key1 -> "b6acb9d84a38ff74".
        assert_eq!(digest_hex(b"Hello world"), "b6acb9d84a38ff74");
        assert_eq!(digest_hex(b"Hello world").len(), 16);
    }

    #[test]
    fn digest_arguments_are_sixteen_hex_digits_of_either_case() {
        assert_eq!(
            parse_digest(b"B6ACB9D84A38FF74"),
            Ok(digest(b"Hello world"))
        );
        assert_eq!(
            parse_digest(b"b6acb9d84a38ff74"),
            Ok(digest(b"Hello world"))
        );
        assert_eq!(parse_digest(b"6acb9d84a38ff74"), Err(bad_digest()));
        assert_eq!(parse_digest(b"b6acb9d84a38ff7g"), Err(bad_digest()));
        assert_eq!(parse_digest(b"+6acb9d84a38ff74"), Err(bad_digest()));
    }
}
