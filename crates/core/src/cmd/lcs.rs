//! `LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]`: the longest common subsequence
//! of two strings, with Redis 7's options, replies and match ranges.
//!
//! The answer is computed from the two values alone ([`reply`]), so a command whose keys live on
//! two shards reads each on its own shard and answers the same ([`crate::shard`]). The dynamic
//! programming table is `(len1 + 1) × (len2 + 1)` 32-bit cells, refused past
//! `redis.max_bulk_len` bytes as Redis 7.2 refuses it past `proto-max-bulk-len`.

use super::{parse_i64, strings, Ctx};
use crate::reply::Reply;
use bytes::Bytes;

/// Redis's error for a key that is not a string.
fn not_strings() -> Reply {
    Reply::err("The specified keys must contain string values")
}

/// The value `LCS` reads at `key`: the string, "" when absent, `Err` for a hash.
pub(crate) fn value_of(ctx: &Ctx<'_>, key: &Bytes) -> Result<Bytes, ()> {
    match strings::string_of(ctx, key) {
        Ok(v) => Ok(v.unwrap_or_default()),
        Err(_) => Err(()),
    }
}

/// `LCS` on one shard.
pub(super) fn lcs(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let a = value_of(ctx, &args[1]);
    let b = value_of(ctx, &args[2]);
    reply(a, b, args, ctx.max_string_bytes)
}

/// The reply to `LCS` for the values read at its two keys (`Err` for a key that is not a
/// string), Redis's checks in Redis's order: the types, the options, the table's size.
pub fn reply(
    a: Result<Bytes, ()>,
    b: Result<Bytes, ()>,
    args: &[Bytes],
    max_bytes: usize,
) -> Reply {
    let (Ok(a), Ok(b)) = (a, b) else {
        return not_strings();
    };
    let (mut len, mut idx, mut with_len, mut min_len) = (false, false, false, 0usize);
    let mut j = 3;
    while j < args.len() {
        let o = &args[j];
        if o.eq_ignore_ascii_case(b"IDX") {
            idx = true;
        } else if o.eq_ignore_ascii_case(b"LEN") {
            len = true;
        } else if o.eq_ignore_ascii_case(b"WITHMATCHLEN") {
            with_len = true;
        } else if o.eq_ignore_ascii_case(b"MINMATCHLEN") && j + 1 < args.len() {
            let Some(n) = parse_i64(&args[j + 1]) else {
                return Reply::not_integer();
            };
            min_len = n.max(0) as usize;
            j += 1;
        } else {
            return Reply::syntax();
        }
        j += 1;
    }
    if idx && len {
        return Reply::err("If you want both the length and indexes, please just use IDX.");
    }
    let cells = (a.len() + 1)
        .checked_mul(b.len() + 1)
        .and_then(|n| n.checked_mul(4));
    if cells.is_none_or(|n| n > max_bytes) {
        return Reply::err(
            "Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        );
    }
    // table[i][j]: the LCS length of a[..i] and b[..j].
    let w = b.len() + 1;
    let mut t = vec![0u32; (a.len() + 1) * w];
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            t[i * w + j] = if a[i - 1] == b[j - 1] {
                t[(i - 1) * w + j - 1] + 1
            } else {
                t[(i - 1) * w + j].max(t[i * w + j - 1])
            };
        }
    }
    let total = t[a.len() * w + b.len()] as usize;
    if len {
        return Reply::Int(total as i64);
    }
    // Walk back from the end, as Redis does: the string from its last byte, the ranges from
    // the last match.
    let mut out = vec![0u8; total];
    let mut k = total;
    let (mut i, mut j) = (a.len(), b.len());
    let none = a.len();
    let (mut a_start, mut a_end, mut b_start, mut b_end) = (none, 0, 0, 0);
    let mut matches = Vec::new();
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            out[k - 1] = a[i - 1];
            if a_start == none {
                (a_start, a_end, b_start, b_end) = (i - 1, i - 1, j - 1, j - 1);
            } else if a_start == i && b_start == j {
                a_start -= 1;
                b_start -= 1;
            } else {
                emit = true;
            }
            if a_start == 0 || b_start == 0 {
                emit = true;
            }
            k -= 1;
            i -= 1;
            j -= 1;
        } else {
            if t[(i - 1) * w + j] > t[i * w + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            if a_start != none {
                emit = true;
            }
        }
        let match_len = a_end + 1 - a_start.min(a_end + 1);
        if emit {
            if idx && (min_len == 0 || match_len >= min_len) {
                let mut m = vec![
                    Reply::Array(vec![Reply::Int(a_start as i64), Reply::Int(a_end as i64)]),
                    Reply::Array(vec![Reply::Int(b_start as i64), Reply::Int(b_end as i64)]),
                ];
                if with_len {
                    m.push(Reply::Int(match_len as i64));
                }
                matches.push(Reply::Array(m));
            }
            a_start = none;
        }
    }
    if idx {
        Reply::Map(vec![
            (Reply::bulk("matches"), Reply::Array(matches)),
            (Reply::bulk("len"), Reply::Int(total as i64)),
        ])
    } else {
        Reply::Bulk(Bytes::from(out))
    }
}
