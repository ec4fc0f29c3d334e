//! Sorted-set commands: ZADD ZINCRBY ZREM ZSCORE ZMSCORE ZCARD ZCOUNT ZLEXCOUNT ZRANGE
//! ZREVRANGE ZRANGEBYSCORE ZREVRANGEBYSCORE ZRANGEBYLEX ZREVRANGEBYLEX ZRANK ZREVRANK
//! ZREMRANGEBYSCORE ZREMRANGEBYRANK ZREMRANGEBYLEX ZPOPMIN ZPOPMAX ZRANDMEMBER ZSCAN, and ZUNION
//! ZINTER ZDIFF ZUNIONSTORE ZINTERSTORE ZDIFFSTORE ZINTERCARD (sets count as scores of 1;
//! across shards through [`read_scored`], [`store_scored`] and [`run_zalgebra`], as the set
//! algebra).
//!
//! A sorted set is a set ([`crate::members`]: add-wins observed-remove members) whose every
//! member also has a score, a last-writer-wins register kept in the body's `fields` under the
//! member's name (the score's 8 bytes, [`f64::to_bits`] big-endian). So membership merges as a
//! set's does — a member added in one region while another removes it stays — and a score
//! written in two regions at once takes the later write.
//!
//! Where replication makes this differ from one Redis server (`docs/DESIGN.md` §2, "Sorted
//! sets"):
//!
//! - `ZINCRBY` (and `ZADD … INCR`) reads the score and writes the sum as the new score: two
//!   regions incrementing one member at once keep the later write, one increment is lost. It
//!   is not a counter as `INCRBY` is.
//! - An emptied sorted set keeps its incarnation, as an emptied set does.
//! - `ZSCAN` returns every matching member in one call (cursor 0); `ZRANDMEMBER` and its
//!   picks are pseudo-random from the stamp or clock, as `SRANDMEMBER`'s.
//! - Ranges sort the members on each read (O(n log n)): there is no skip list yet.
//!
//! Replies follow Redis 7.0: scores as `%.17g` ([`Float::text`]), RESP3 doubles and pairs.

use super::sets::{positive_count, seed_of, valid_cursor, Pick};
use super::{is_opt, parse_i64, Ctx};
use crate::crdt::{Body, KeyState, Kind, Reg};
use crate::fields::Fields;
use crate::members::Members;
use crate::reply::{ErrorKind, Float, Reply};
use bytes::Bytes;
use std::cmp::Ordering;

/// A member's score as the body holds it (0 when no score register is held, which a state
/// built by this module never has).
pub fn score_bits(body: &Body, member: &[u8]) -> u64 {
    body.fields
        .get(member)
        .and_then(|r| r.value.as_ref())
        .and_then(|v| <[u8; 8]>::try_from(&v[..]).ok())
        .map_or(0, u64::from_be_bytes)
}

fn score_of(body: &Body, member: &[u8]) -> f64 {
    f64::from_bits(score_bits(body, member))
}

fn score_bytes(x: f64) -> Bytes {
    // One zero: Redis never shows -0 either.
    let x = if x == 0.0 { 0.0 } else { x };
    Bytes::copy_from_slice(&x.to_bits().to_be_bytes())
}

/// The visible sorted set at `key`: `Ok(None)` if absent, `Err` for another type.
fn zset_of<'c>(ctx: &'c Ctx<'_>, key: &Bytes) -> Result<Option<&'c KeyState>, Reply> {
    match ctx.kind(key) {
        None => Ok(None),
        Some(Kind::ZSet) => Ok(ctx.store.get(key)),
        Some(_) => Err(Reply::wrong_type()),
    }
}

/// The present members with their scores, in Redis's order: by score, then by member bytes.
fn entries(k: &KeyState) -> Vec<(f64, Bytes)> {
    let mut v: Vec<(f64, Bytes)> = k
        .body
        .members
        .live()
        .map(|m| (score_of(&k.body, m), m.clone()))
        .collect();
    v.sort_by(cmp_entry);
    v
}

fn cmp_entry(a: &(f64, Bytes), b: &(f64, Bytes)) -> Ordering {
    a.0.partial_cmp(&b.0)
        .unwrap_or(Ordering::Equal)
        .then_with(|| a.1.cmp(&b.1))
}

/// Whether the key's incarnation is a sorted set's that can be written in place (as
/// [`super::sets`] reuses an emptied set's).
fn zset_incarnation(ctx: &Ctx<'_>, key: &Bytes) -> bool {
    ctx.store.get(key).is_some_and(|k| {
        !k.is_deleted() && !k.is_expired(ctx.now_ms) && k.body.kind() == Some(Kind::ZSet)
    })
}

/// Writes `members` and `fields` (dots and score registers at this command's stamp).
fn write(ctx: &mut Ctx<'_>, key: &Bytes, members: Members, fields: Fields) {
    let body = Body {
        members,
        fields,
        ..Body::default()
    };
    let delta = if zset_incarnation(ctx, key) {
        let Some(k) = ctx.store.get(key) else {
            return;
        };
        // As for an emptied set: its TTL goes when it is written into again.
        let ttl = (!k.body.members.any_live() && k.body.expiry().is_some())
            .then(|| Reg::new(ctx.stamp(), None));
        KeyState {
            cl: k.cl.clone(),
            body: Body { ttl, ..body },
        }
    } else {
        let body = Body {
            kind: Some(Reg::new(ctx.stamp(), Kind::ZSet)),
            ..body
        };
        ctx.fresh(key, body)
    };
    ctx.write(key, delta);
}

fn too_many_members(max: usize) -> Reply {
    Reply::err(format!(
        "sorted set would exceed the maximum of {max} members (redis.max_hash_fields)"
    ))
}

/// Adds or re-scores `items`: each gets a fresh dot (add wins, as `SADD`) and its score.
fn put(ctx: &mut Ctx<'_>, key: &Bytes, items: &[(Bytes, f64)]) -> Result<(), Reply> {
    if items.is_empty() {
        return Ok(());
    }
    let held = if zset_incarnation(ctx, key) {
        ctx.store.get(key).map_or(0, |k| {
            let m = &k.body.members;
            m.held() + items.iter().filter(|(x, _)| m.dots(x).is_none()).count()
        })
    } else {
        items.len()
    };
    if held > ctx.max_hash_fields {
        return Err(too_many_members(ctx.max_hash_fields));
    }
    let s = ctx.stamp();
    let mut members = Members::new();
    let mut fields = Fields::new();
    for (x, score) in items {
        members.add(x.clone(), s);
        fields.insert(x.clone(), Reg::new(s, Some(score_bytes(*score))));
    }
    write(ctx, key, members, fields);
    Ok(())
}

/// Removes the present members among `gone`; returns how many.
fn remove(ctx: &mut Ctx<'_>, key: &Bytes, gone: &[Bytes]) -> i64 {
    let s = ctx.stamp();
    let Ok(Some(k)) = zset_of(ctx, key) else {
        return 0;
    };
    let mut delta = Members::new();
    for x in gone {
        if let Some(r) = k.body.members.dots(x).and_then(|d| Members::removal(d, s)) {
            delta.insert(x.clone(), r);
        }
    }
    let n = delta.held() as i64;
    if n > 0 {
        write(ctx, key, delta, Fields::new());
    }
    n
}

// ----- parsing ----------------------------------------------------------------------------

/// A double as Redis reads one (`strtod`, whole argument, no leading space, no overflow or
/// underflow, not NaN).
pub fn parse_score(b: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(b).ok()?;
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let x: f64 = match hex_float(s) {
        Some(x) => x,
        None => s.parse().ok()?,
    };
    if x.is_nan() {
        return None;
    }
    let lower = s.to_ascii_lowercase();
    let literal_inf = lower.trim_start_matches(['+', '-']).starts_with("inf");
    if x.is_infinite() && !literal_inf {
        return None; // overflow (ERANGE)
    }
    if x == 0.0
        && lower
            .bytes()
            .take_while(|c| *c != b'e')
            .any(|c| (b'1'..=b'9').contains(&c))
    {
        return None; // underflow (ERANGE)
    }
    Some(x)
}

/// A hexadecimal float as `strtod` reads one (`0x10`, `-0X1.8p3`), or `None` when `s` is not
/// one (or is malformed: then the caller's decimal parse refuses it too).
fn hex_float(s: &str) -> Option<f64> {
    let (neg, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let rest = rest
        .strip_prefix("0x")
        .or_else(|| rest.strip_prefix("0X"))?;
    let (mantissa, exp) = match rest.find(['p', 'P']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut x = 0.0f64;
    for c in int.chars() {
        x = x * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        x += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    if let Some(e) = exp {
        let e: i32 = e.parse().ok()?;
        x *= 2f64.powi(e);
    }
    Some(if neg { -x } else { x })
}

fn not_float() -> Reply {
    Reply::error(ErrorKind::Value, "ERR value is not a valid float")
}

/// One end of a score range: `(x` exclusive, `x` inclusive, `±inf`.
#[derive(Clone, Copy, Debug)]
struct ScoreBound {
    x: f64,
    excl: bool,
}

fn parse_score_bound(b: &[u8]) -> Option<ScoreBound> {
    match b.first() {
        Some(b'(') => Some(ScoreBound {
            x: range_double(&b[1..])?,
            excl: true,
        }),
        _ => Some(ScoreBound {
            x: range_double(b)?,
            excl: false,
        }),
    }
}

/// A range end as Redis reads one: plain `strtod` that must consume everything — leading
/// space skipped, an empty string 0, overflow ±inf — and not NaN.
fn range_double(b: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(b).ok()?.trim_start();
    if s.is_empty() {
        return Some(0.0);
    }
    hex_float(s)
        .or_else(|| s.parse::<f64>().ok())
        .filter(|x| !x.is_nan())
}

/// A score as `ZSCAN` writes it (Redis 7.0 keeps small sorted sets' scores as text): an
/// integral score within 64 bits as an integer, others as `%.17g`.
fn scan_text(x: f64) -> String {
    // Within ±2^62 inclusive (what a listpack keeps as an integer), as Redis 7.0 shows it.
    if x.fract() == 0.0 && x.abs() <= 4_611_686_018_427_387_904.0 {
        format!("{}", x as i64)
    } else {
        Float(x).text()
    }
}

/// A score range `min..max`.
#[derive(Clone, Copy, Debug)]
struct ScoreRange(ScoreBound, ScoreBound);

impl ScoreRange {
    fn parse(min: &[u8], max: &[u8]) -> Result<ScoreRange, Reply> {
        match (parse_score_bound(min), parse_score_bound(max)) {
            (Some(a), Some(b)) => Ok(ScoreRange(a, b)),
            _ => Err(Reply::err("min or max is not a float")),
        }
    }

    fn contains(&self, x: f64) -> bool {
        let lo = if self.0.excl {
            x > self.0.x
        } else {
            x >= self.0.x
        };
        let hi = if self.1.excl {
            x < self.1.x
        } else {
            x <= self.1.x
        };
        lo && hi
    }
}

/// One end of a lexicographic range: `-`, `+`, `[x` inclusive, `(x` exclusive.
#[derive(Clone, Debug)]
enum LexBound {
    Min,
    Max,
    Incl(Bytes),
    Excl(Bytes),
}

fn parse_lex_bound(b: &Bytes) -> Option<LexBound> {
    match b.first() {
        Some(b'-') if b.len() == 1 => Some(LexBound::Min),
        Some(b'+') if b.len() == 1 => Some(LexBound::Max),
        Some(b'[') => Some(LexBound::Incl(b.slice(1..))),
        Some(b'(') => Some(LexBound::Excl(b.slice(1..))),
        _ => None,
    }
}

/// A lexicographic range `min..max`.
#[derive(Clone, Debug)]
struct LexRange(LexBound, LexBound);

impl LexRange {
    fn parse(min: &Bytes, max: &Bytes) -> Result<LexRange, Reply> {
        match (parse_lex_bound(min), parse_lex_bound(max)) {
            (Some(a), Some(b)) => Ok(LexRange(a, b)),
            _ => Err(Reply::err("min or max not valid string range item")),
        }
    }

    fn contains(&self, m: &[u8]) -> bool {
        let lo = match &self.0 {
            LexBound::Min => true,
            LexBound::Max => false,
            LexBound::Incl(x) => m >= &x[..],
            LexBound::Excl(x) => m > &x[..],
        };
        let hi = match &self.1 {
            LexBound::Min => false,
            LexBound::Max => true,
            LexBound::Incl(x) => m <= &x[..],
            LexBound::Excl(x) => m < &x[..],
        };
        lo && hi
    }
}

/// What a range command selects.
#[derive(Clone, Debug)]
enum Range {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

/// A parsed range read: `ZRANGE` and the older commands it generalises.
#[derive(Clone, Debug)]
struct RangeCmd {
    range: Range,
    rev: bool,
    /// `LIMIT offset count` (count negative: no limit).
    limit: Option<(i64, i64)>,
    withscores: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum By {
    Auto,
    Rank,
    Score,
    Lex,
}

/// Parses a range command's arguments after the key (Redis 7.0's `zrangeGenericCommand`):
/// `by` and `rev` preset by the older commands, free for `ZRANGE`.
fn parse_range(args: &[Bytes], mut by: By, preset_rev: Option<bool>) -> Result<RangeCmd, Reply> {
    let mut rev = preset_rev;
    let mut limit: Option<(i64, i64)> = None;
    let mut withscores = false;
    let mut j = 4;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = &args[j];
        if is_opt(a, "WITHSCORES") {
            withscores = true;
        } else if is_opt(a, "LIMIT") && left >= 2 {
            let (Some(o), Some(c)) = (parse_i64(&args[j + 1]), parse_i64(&args[j + 2])) else {
                return Err(Reply::not_integer());
            };
            limit = Some((o, c));
            j += 2;
        } else if rev.is_none() && is_opt(a, "REV") {
            rev = Some(true);
        } else if by == By::Auto && is_opt(a, "BYLEX") {
            by = By::Lex;
        } else if by == By::Auto && is_opt(a, "BYSCORE") {
            by = By::Score;
        } else {
            return Err(Reply::syntax());
        }
        j += 1;
    }
    let rev = rev.unwrap_or(false);
    if by == By::Auto {
        by = By::Rank;
    }
    if limit.is_some_and(|(_, c)| c != -1) && by == By::Rank {
        return Err(Reply::err(
            "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && by == By::Lex {
        return Err(Reply::err(
            "syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    let (mut lo, mut hi) = (&args[2], &args[3]);
    if rev && by != By::Rank {
        std::mem::swap(&mut lo, &mut hi);
    }
    let range = match by {
        By::Score => Range::Score(ScoreRange::parse(lo, hi)?),
        By::Lex => Range::Lex(LexRange::parse(lo, hi)?),
        _ => match (parse_i64(lo), parse_i64(hi)) {
            (Some(a), Some(b)) => Range::Rank(a, b),
            _ => return Err(Reply::not_integer()),
        },
    };
    Ok(RangeCmd {
        range,
        rev,
        limit,
        withscores,
    })
}

/// The slice of ranks `start..=stop` (negative from the end) of `len` entries, as Redis
/// clamps it; `None` when empty.
fn rank_span(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut start = if start < 0 { len + start } else { start };
    let mut stop = if stop < 0 { len + stop } else { stop };
    if start < 0 {
        start = 0;
    }
    if start > stop || start >= len {
        return None;
    }
    if stop >= len {
        stop = len - 1;
    }
    Some((start as usize, stop as usize))
}

/// The entries a range selects, in reply order.
fn select(v: Vec<(f64, Bytes)>, c: &RangeCmd) -> Vec<(f64, Bytes)> {
    let mut out: Vec<(f64, Bytes)> = match &c.range {
        Range::Rank(a, b) => {
            let Some((s, e)) = rank_span(*a, *b, v.len()) else {
                return Vec::new();
            };
            if c.rev {
                // Ranks counted from the highest score.
                v.into_iter().rev().skip(s).take(e - s + 1).collect()
            } else {
                v.into_iter().skip(s).take(e - s + 1).collect()
            }
        }
        Range::Score(r) => v.into_iter().filter(|(x, _)| r.contains(*x)).collect(),
        Range::Lex(r) => v.into_iter().filter(|(_, m)| r.contains(m)).collect(),
    };
    if c.rev && !matches!(c.range, Range::Rank(..)) {
        out.reverse();
    }
    // A rank range takes no `LIMIT` (Redis accepts `LIMIT o -1` with one, and ignores it).
    let limit = c.limit.filter(|_| !matches!(c.range, Range::Rank(..)));
    if let Some((offset, count)) = limit {
        if offset < 0 {
            return Vec::new();
        }
        let it = out.into_iter().skip(offset as usize);
        out = if count < 0 {
            it.collect()
        } else {
            it.take(count as usize).collect()
        };
    }
    out
}

fn members_reply(v: Vec<(f64, Bytes)>, withscores: bool) -> Reply {
    if withscores {
        Reply::Pairs(
            v.into_iter()
                .map(|(x, m)| (Reply::Bulk(m), Reply::Double(Float(x))))
                .collect(),
        )
    } else {
        Reply::Array(v.into_iter().map(|(_, m)| Reply::Bulk(m)).collect())
    }
}

// ----- the commands -------------------------------------------------------------------------

/// `ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]`.
pub(super) fn zadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (mut nx, mut xx, mut gt, mut lt, mut ch, mut incr) =
        (false, false, false, false, false, false);
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if is_opt(a, "NX") {
            nx = true;
        } else if is_opt(a, "XX") {
            xx = true;
        } else if is_opt(a, "GT") {
            gt = true;
        } else if is_opt(a, "LT") {
            lt = true;
        } else if is_opt(a, "CH") {
            ch = true;
        } else if is_opt(a, "INCR") {
            incr = true;
        } else {
            break;
        }
        i += 1;
    }
    let rest = &args[i..];
    if rest.is_empty() || !rest.len().is_multiple_of(2) {
        return Reply::syntax();
    }
    if nx && xx {
        return Reply::err("XX and NX options at the same time are not compatible");
    }
    if (nx && (gt || lt)) || (gt && lt) {
        return Reply::err("GT, LT, and/or NX options at the same time are not compatible");
    }
    if incr && rest.len() > 2 {
        return Reply::err("INCR option supports a single increment-element pair");
    }
    let mut pairs = Vec::with_capacity(rest.len() / 2);
    for p in rest.chunks_exact(2) {
        match parse_score(&p[0]) {
            Some(x) => pairs.push((x, &p[1])),
            None => return not_float(),
        }
    }
    zadd_run(ctx, &args[1], &pairs, (nx, xx, gt, lt, ch, incr))
}

/// `ZADD`'s effect, its flags `(nx, xx, gt, lt, ch, incr)` checked (Redis's `zsetAdd`).
fn zadd_run(
    ctx: &mut Ctx<'_>,
    key: &Bytes,
    pairs: &[(f64, &Bytes)],
    (nx, xx, gt, lt, ch, incr): (bool, bool, bool, bool, bool, bool),
) -> Reply {
    let k = match zset_of(ctx, key) {
        Err(e) => return e,
        Ok(k) => k,
    };
    let mut writes: Vec<(Bytes, f64)> = Vec::new();
    let (mut added, mut updated, mut processed) = (0, 0, 0);
    let mut last = 0.0;
    for (score, m) in pairs {
        // An earlier pair of this command naming the same member counts as present.
        let cur = writes
            .iter()
            .rev()
            .find(|(x, _)| x == *m)
            .map(|(_, s)| *s)
            .or_else(|| {
                k.filter(|k| k.body.members.contains(m))
                    .map(|k| score_of(&k.body, m))
            });
        match cur {
            Some(cur) => {
                if nx {
                    continue;
                }
                let mut score = *score;
                if incr {
                    score += cur;
                    if score.is_nan() {
                        return Reply::err("resulting score is not a number (NaN)");
                    }
                }
                if (lt && score >= cur) || (gt && score <= cur) {
                    continue;
                }
                processed += 1;
                last = score;
                if score != cur {
                    updated += 1;
                }
                writes.push(((*m).clone(), score));
            }
            None => {
                if xx {
                    continue;
                }
                added += 1;
                processed += 1;
                last = *score;
                writes.push(((*m).clone(), *score));
            }
        }
    }
    if let Err(e) = put(ctx, key, &writes) {
        return e;
    }
    if incr {
        if processed > 0 {
            Reply::Double(Float(last))
        } else {
            Reply::Nil
        }
    } else {
        Reply::Int(if ch { added + updated } else { added })
    }
}

/// `ZINCRBY key increment member`.
pub(super) fn zincrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let Some(by) = parse_score(&args[2]) else {
        return not_float();
    };
    zadd_run(
        ctx,
        &args[1],
        &[(by, &args[3])],
        (false, false, false, false, false, true),
    )
}

/// `ZREM key member [member ...]`.
pub(super) fn zrem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if let Err(e) = zset_of(ctx, &args[1]) {
        return e;
    }
    let mut seen = std::collections::BTreeSet::new();
    let gone: Vec<Bytes> = args[2..]
        .iter()
        .filter(|x| seen.insert(*x))
        .cloned()
        .collect();
    Reply::Int(remove(ctx, &args[1], &gone))
}

/// `ZSCORE key member`.
pub(super) fn zscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match zset_of(ctx, &args[1]) {
        Err(e) => e,
        Ok(k) => match k.filter(|k| k.body.members.contains(&args[2])) {
            Some(k) => Reply::Double(Float(score_of(&k.body, &args[2]))),
            None => Reply::Nil,
        },
    }
}

/// `ZMSCORE key member [member ...]`.
pub(super) fn zmscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match zset_of(ctx, &args[1]) {
        Err(e) => e,
        Ok(k) => Reply::Array(
            args[2..]
                .iter()
                .map(|m| match k.filter(|k| k.body.members.contains(m)) {
                    Some(k) => Reply::Double(Float(score_of(&k.body, m))),
                    None => Reply::Nil,
                })
                .collect(),
        ),
    }
}

/// `ZCARD key`.
pub(super) fn zcard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match zset_of(ctx, &args[1]) {
        Err(e) => e,
        Ok(k) => Reply::Int(k.map_or(0, |k| k.body.members.live_count() as i64)),
    }
}

/// `ZCOUNT key min max`.
pub(super) fn zcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let r = match ScoreRange::parse(&args[2], &args[3]) {
        Ok(r) => r,
        Err(e) => return e,
    };
    match zset_of(ctx, &args[1]) {
        Err(e) => e,
        Ok(k) => Reply::Int(k.map_or(0, |k| {
            k.body
                .members
                .live()
                .filter(|m| r.contains(score_of(&k.body, m)))
                .count() as i64
        })),
    }
}

/// `ZLEXCOUNT key min max`.
pub(super) fn zlexcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let r = match LexRange::parse(&args[2], &args[3]) {
        Ok(r) => r,
        Err(e) => return e,
    };
    match zset_of(ctx, &args[1]) {
        Err(e) => e,
        Ok(None) => Reply::Int(0),
        Ok(Some(k)) => Reply::Int(entries(k).iter().filter(|(_, m)| r.contains(m)).count() as i64),
    }
}

/// The range commands: `ZRANGE` and the older forms, by their name.
pub(super) fn zrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let name = args[0].to_ascii_lowercase();
    let parsed = match &name[..] {
        b"zrange" => parse_range(args, By::Auto, None),
        b"zrevrange" => parse_range(args, By::Rank, Some(true)),
        b"zrangebyscore" => parse_range(args, By::Score, Some(false)),
        b"zrevrangebyscore" => parse_range(args, By::Score, Some(true)),
        b"zrangebylex" => parse_range(args, By::Lex, Some(false)),
        _ => parse_range(args, By::Lex, Some(true)),
    };
    let c = match parsed {
        Ok(c) => c,
        Err(e) => return e,
    };
    match zset_of(ctx, &args[1]) {
        Err(e) => e,
        Ok(None) => Reply::Array(Vec::new()),
        Ok(Some(k)) => members_reply(select(entries(k), &c), c.withscores),
    }
}

/// `ZRANK` and `ZREVRANK key member`.
pub(super) fn zrank(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let rev = args[0].eq_ignore_ascii_case(b"zrevrank");
    match zset_of(ctx, &args[1]) {
        Err(e) => e,
        Ok(None) => Reply::Nil,
        Ok(Some(k)) => {
            let v = entries(k);
            match v.iter().position(|(_, m)| *m == args[2]) {
                None => Reply::Nil,
                Some(i) => Reply::Int(if rev { v.len() - 1 - i } else { i } as i64),
            }
        }
    }
}

/// `ZREMRANGEBYRANK`, `ZREMRANGEBYSCORE` and `ZREMRANGEBYLEX key min max`.
pub(super) fn zremrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let name = args[0].to_ascii_lowercase();
    let range = match &name[..] {
        b"zremrangebyrank" => match (parse_i64(&args[2]), parse_i64(&args[3])) {
            (Some(a), Some(b)) => Range::Rank(a, b),
            _ => return Reply::not_integer(),
        },
        b"zremrangebyscore" => match ScoreRange::parse(&args[2], &args[3]) {
            Ok(r) => Range::Score(r),
            Err(e) => return e,
        },
        _ => match LexRange::parse(&args[2], &args[3]) {
            Ok(r) => Range::Lex(r),
            Err(e) => return e,
        },
    };
    let gone: Vec<Bytes> = match zset_of(ctx, &args[1]) {
        Err(e) => return e,
        Ok(None) => return Reply::Int(0),
        Ok(Some(k)) => {
            let c = RangeCmd {
                range,
                rev: false,
                limit: None,
                withscores: false,
            };
            select(entries(k), &c).into_iter().map(|(_, m)| m).collect()
        }
    };
    Reply::Int(remove(ctx, &args[1], &gone))
}

/// `ZPOPMIN` and `ZPOPMAX key [count]`.
pub(super) fn zpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if args.len() > 3 {
        return Reply::syntax();
    }
    let max = args[0].eq_ignore_ascii_case(b"zpopmax");
    let count = match args.get(2).map(|c| positive_count(c)) {
        Some(Err(e)) => return e,
        Some(Ok(n)) => Some(n),
        None => None,
    };
    let mut v = match zset_of(ctx, &args[1]) {
        Err(e) => return e,
        Ok(None) => return Reply::Array(Vec::new()),
        Ok(Some(k)) => entries(k),
    };
    if max {
        v.reverse();
    }
    v.truncate(count.unwrap_or(1));
    let gone: Vec<Bytes> = v.iter().map(|(_, m)| m.clone()).collect();
    remove(ctx, &args[1], &gone);
    match count {
        None => Reply::Array(
            v.into_iter()
                .flat_map(|(x, m)| [Reply::Bulk(m), Reply::Double(Float(x))])
                .collect(),
        ),
        Some(_) => members_reply(v, true),
    }
}

/// `ZRANDMEMBER key [count [WITHSCORES]]`.
pub(super) fn zrandmember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    // Redis reads the count first, then the rest.
    let withscores = args.len() == 4;
    let count = match args.get(2) {
        None => None,
        Some(c) => match parse_i64(c) {
            None => return Reply::not_integer(),
            Some(i64::MIN) => {
                return Reply::error(
                    ErrorKind::Value,
                    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
                )
            }
            Some(n) => Some(n),
        },
    };
    if args.len() > 4 || (args.len() == 4 && !is_opt(&args[3], "WITHSCORES")) {
        return Reply::syntax();
    }
    if withscores && count.is_some_and(|n| !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&n)) {
        return Reply::error(ErrorKind::Value, "ERR value is out of range");
    }
    let v = match zset_of(ctx, &args[1]) {
        Err(e) => return e,
        Ok(None) => {
            return match count {
                None => Reply::Nil,
                Some(_) => Reply::Array(Vec::new()),
            }
        }
        Ok(Some(k)) => entries(k),
    };
    let seed = ctx.stamp.map_or(ctx.now_ms, seed_of);
    let mut pick = Pick::new(seed, &args[1]);
    match count {
        None => {
            let i = pick.below(v.len());
            Reply::Bulk(v[i].1.clone())
        }
        Some(n) if n >= 0 => members_reply(pick.distinct(v, n as usize), withscores),
        Some(n) => {
            if n.unsigned_abs() > super::sets::MAX_RANDOM_REPLY {
                return Reply::err(format!(
                    "count is larger than the {} members one reply may repeat",
                    super::sets::MAX_RANDOM_REPLY
                ));
            }
            let picked: Vec<(f64, Bytes)> = (0..n.unsigned_abs())
                .map(|_| v[pick.below(v.len())].clone())
                .collect();
            members_reply(picked, withscores)
        }
    }
}

/// `ZSCAN key cursor [MATCH pattern] [COUNT count]`: every matching member and its score,
/// cursor 0 (see the module docs).
pub(super) fn zscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if !valid_cursor(&args[2]) {
        return Reply::err("invalid cursor");
    }
    // The key before the options, as `SSCAN`.
    let k = match zset_of(ctx, &args[1]) {
        Err(e) => return e,
        Ok(None) => return Reply::Array(vec![Reply::bulk("0"), Reply::Array(Vec::new())]),
        Ok(Some(k)) => k,
    };
    let v = entries(k);
    let mut pattern = None;
    let mut i = 3;
    while i < args.len() {
        if i + 1 >= args.len() {
            return Reply::syntax();
        }
        if is_opt(&args[i], "MATCH") {
            pattern = Some(&args[i + 1]);
        } else if is_opt(&args[i], "COUNT") {
            match parse_i64(&args[i + 1]) {
                Some(c) if c >= 1 => {}
                Some(_) => return Reply::syntax(),
                None => return Reply::not_integer(),
            }
        } else {
            return Reply::syntax();
        }
        i += 2;
    }
    let mut items = Vec::new();
    for (x, m) in v {
        if pattern.is_none_or(|p| super::sets::scan_match(p, &m)) {
            items.push(Reply::Bulk(m));
            items.push(Reply::bulk(scan_text(x)));
        }
    }
    Reply::Array(vec![Reply::bulk("0"), Reply::Array(items)])
}

/// A sorted set's present members and scores, for `COPY`, `RENAME` and `MOVE`.
pub fn export(k: &KeyState) -> Vec<(Bytes, f64)> {
    k.body
        .members
        .live()
        .map(|m| (m.clone(), score_of(&k.body, m)))
        .collect()
}

/// The members and score registers of `items` written at `s` (the other half of
/// [`export`]).
pub fn import(items: Vec<(Bytes, f64)>, s: crate::stamp::Stamp) -> (Members, Fields) {
    let mut members = Members::new();
    let mut fields = Fields::new();
    for (m, x) in items {
        members.add(m.clone(), s);
        fields.insert(m, Reg::new(s, Some(score_bytes(x))));
    }
    (members, fields)
}

// ----- ZUNION, ZINTER, ZDIFF, their …STOREs, ZINTERCARD -------------------------------------

/// Which combination a command computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZOp {
    /// `ZUNION`, `ZUNIONSTORE`.
    Union,
    /// `ZINTER`, `ZINTERSTORE`, `ZINTERCARD`.
    Inter,
    /// `ZDIFF`, `ZDIFFSTORE`.
    Diff,
}

/// How scores of a member in several inputs combine (`AGGREGATE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// A parsed `ZUNION`/`ZINTER`/`ZDIFF`(`STORE`)/`ZINTERCARD`: its inputs, and its options or
/// the error they give, which Redis reports only after the inputs' types.
#[derive(Clone, Debug)]
pub struct ZAlgebraCmd<'a> {
    op: ZOp,
    /// The input keys.
    pub srcs: &'a [Bytes],
    /// The destination of a `…STORE`.
    pub dst: Option<&'a Bytes>,
    options: Result<ZOptions, Reply>,
}

#[derive(Clone, Debug)]
struct ZOptions {
    weights: Vec<f64>,
    aggregate: Aggregate,
    withscores: bool,
    /// `ZINTERCARD`: answer the count, stopping at this limit (0: none).
    card_limit: Option<usize>,
}

/// Parses the command line (Redis 7.0's `zunionInterDiffGenericCommand` and
/// `zinterCardCommand`).
pub fn parse_zalgebra(args: &[Bytes]) -> Result<ZAlgebraCmd<'_>, Reply> {
    let name = args[0].to_ascii_lowercase();
    let op = match &name[..] {
        b"zunion" | b"zunionstore" => ZOp::Union,
        b"zdiff" | b"zdiffstore" => ZOp::Diff,
        _ => ZOp::Inter,
    };
    let store = name.ends_with(b"store");
    let card = &name[..] == b"zintercard";
    let at = if store { 2 } else { 1 };
    let full = String::from_utf8_lossy(&name).into_owned();
    // `ZINTERCARD` too answers with these (unlike `SINTERCARD`).
    let n = match parse_i64(&args[at]) {
        None => return Err(Reply::not_integer()),
        Some(n) if n < 1 => {
            return Err(Reply::err(format!(
                "at least 1 input key is needed for '{full}' command"
            )))
        }
        Some(n) => n as usize,
    };
    if n > args.len() - at - 1 {
        return Err(Reply::syntax());
    }
    let srcs = &args[at + 1..at + 1 + n];
    let rest = &args[at + 1 + n..];
    let options = parse_zoptions(rest, n, op, store, card);
    Ok(ZAlgebraCmd {
        op,
        srcs,
        dst: store.then(|| &args[1]),
        options,
    })
}

fn parse_zoptions(
    rest: &[Bytes],
    n: usize,
    op: ZOp,
    store: bool,
    card: bool,
) -> Result<ZOptions, Reply> {
    let mut o = ZOptions {
        weights: vec![1.0; n],
        aggregate: Aggregate::Sum,
        withscores: false,
        card_limit: card.then_some(0),
    };
    let mut j = 0;
    while j < rest.len() {
        let remaining = rest.len() - j;
        let a = &rest[j];
        if op != ZOp::Diff && !card && remaining > n && is_opt(a, "WEIGHTS") {
            for i in 0..n {
                o.weights[i] = parse_score(&rest[j + 1 + i])
                    .ok_or_else(|| Reply::err("weight value is not a float"))?;
            }
            j += 1 + n;
        } else if op != ZOp::Diff && !card && remaining >= 2 && is_opt(a, "AGGREGATE") {
            let v = &rest[j + 1];
            o.aggregate = if is_opt(v, "SUM") {
                Aggregate::Sum
            } else if is_opt(v, "MIN") {
                Aggregate::Min
            } else if is_opt(v, "MAX") {
                Aggregate::Max
            } else {
                return Err(Reply::syntax());
            };
            j += 2;
        } else if !store && !card && is_opt(a, "WITHSCORES") {
            o.withscores = true;
            j += 1;
        } else if card && remaining >= 2 && is_opt(a, "LIMIT") {
            o.card_limit = match parse_i64(&rest[j + 1]) {
                Some(l) if l >= 0 => Some(l as usize),
                _ => return Err(Reply::err("LIMIT can't be negative")),
            };
            j += 2;
        } else {
            return Err(Reply::syntax());
        }
    }
    Ok(o)
}

/// The members and scores of the sorted set or set at `key` (a set's members score 1), as
/// `ZUNION` and its family read an input; `Err` for another type. A read step of a command
/// spanning shards.
pub fn read_scored(ctx: &Ctx<'_>, key: &Bytes) -> Result<Option<Vec<(Bytes, f64)>>, Reply> {
    match ctx.kind(key) {
        None => Ok(None),
        Some(Kind::ZSet) => Ok(ctx.store.get(key).map(export)),
        Some(Kind::Set) => Ok(ctx
            .store
            .get(key)
            .map(|k| k.body.members.live().map(|m| (m.clone(), 1.0)).collect())),
        Some(_) => Err(Reply::wrong_type()),
    }
}

/// Writes `items` as the whole new sorted set at `dst`, or deletes `dst` when there are none;
/// replies with their number. A write step of a command spanning shards.
pub fn store_scored(ctx: &mut Ctx<'_>, dst: &Bytes, items: Vec<(Bytes, f64)>) -> Reply {
    if items.is_empty() {
        super::keys::remove(ctx, dst);
        return Reply::Int(0);
    }
    if items.len() > ctx.max_hash_fields {
        return too_many_members(ctx.max_hash_fields);
    }
    let s = ctx.stamp();
    let n = items.len() as i64;
    let (members, fields) = import(items, s);
    let body = Body {
        kind: Some(Reg::new(s, Kind::ZSet)),
        ttl: Some(Reg::new(s, None)),
        members,
        fields,
        ..Body::default()
    };
    let put = ctx.replace(dst, body);
    ctx.write(dst, put);
    Reply::Int(n)
}

/// Runs a parsed command: every input read in order (the first of another type answering
/// `WRONGTYPE`), then the options' error if any, then the result answered or handed to `put`.
pub fn run_zalgebra(
    c: &ZAlgebraCmd<'_>,
    mut read: impl FnMut(&Bytes) -> Result<Option<Vec<(Bytes, f64)>>, Reply>,
    put: impl FnOnce(&Bytes, Vec<(Bytes, f64)>) -> Reply,
) -> Reply {
    let mut inputs = Vec::with_capacity(c.srcs.len());
    for k in c.srcs {
        match read(k) {
            Ok(v) => inputs.push(v.unwrap_or_default()),
            Err(e) => return e,
        }
    }
    let o = match &c.options {
        Ok(o) => o,
        Err(e) => return e.clone(),
    };
    let weigh = |x: f64, w: f64| {
        let v = x * w;
        if v.is_nan() {
            0.0
        } else {
            v
        }
    };
    let combine = |a: f64, b: f64| match o.aggregate {
        Aggregate::Sum => {
            let s = a + b;
            if s.is_nan() {
                0.0
            } else {
                s
            }
        }
        Aggregate::Min => a.min(b),
        Aggregate::Max => a.max(b),
    };
    let mut acc: std::collections::BTreeMap<Bytes, f64> = std::collections::BTreeMap::new();
    match c.op {
        ZOp::Union => {
            for (i, input) in inputs.iter().enumerate() {
                for (m, x) in input {
                    let v = weigh(*x, o.weights[i]);
                    acc.entry(m.clone())
                        .and_modify(|a| *a = combine(*a, v))
                        .or_insert(v);
                }
            }
        }
        ZOp::Inter => {
            if let Some((first, others)) = inputs.split_first() {
                let maps: Vec<std::collections::BTreeMap<&Bytes, f64>> = others
                    .iter()
                    .map(|v| v.iter().map(|(m, x)| (m, *x)).collect())
                    .collect();
                'member: for (m, x) in first {
                    let mut v = weigh(*x, o.weights[0]);
                    for (i, map) in maps.iter().enumerate() {
                        match map.get(m) {
                            None => continue 'member,
                            Some(y) => v = combine(v, weigh(*y, o.weights[i + 1])),
                        }
                    }
                    acc.insert(m.clone(), v);
                }
            }
        }
        ZOp::Diff => {
            if let Some((first, others)) = inputs.split_first() {
                for (m, x) in first {
                    if !others.iter().any(|v| v.iter().any(|(n, _)| n == m)) {
                        acc.insert(m.clone(), *x);
                    }
                }
            }
        }
    }
    let mut items: Vec<(f64, Bytes)> = acc.into_iter().map(|(m, x)| (x, m)).collect();
    items.sort_by(cmp_entry);
    if let Some(dst) = c.dst {
        return put(dst, items.into_iter().map(|(x, m)| (m, x)).collect());
    }
    match o.card_limit {
        Some(limit) => {
            let n = items.len();
            Reply::Int(if limit > 0 { n.min(limit) } else { n } as i64)
        }
        None => members_reply(items, o.withscores),
    }
}

/// The table's entry point of the family, every key on this shard.
pub(super) fn zalgebra(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let c = match parse_zalgebra(args) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let cell = std::cell::RefCell::new(ctx);
    run_zalgebra(
        &c,
        |k| read_scored(&cell.borrow(), k),
        |dst, items| store_scored(&mut cell.borrow_mut(), dst, items),
    )
}
