//! Set commands: SADD SREM SMEMBERS SISMEMBER SMISMEMBER SCARD SPOP SRANDMEMBER SMOVE SINTER
//! SINTERCARD SUNION SDIFF SINTERSTORE SUNIONSTORE SDIFFSTORE SSCAN.
//!
//! A set's members are an add-wins observed-remove set ([`crate::members`]): `SADD` writes a
//! dot per member, `SREM` marks the dots it saw removed. Replies and errors are Redis 7's.
//!
//! Where replication makes this differ from one Redis server (`docs/DESIGN.md` §2, "Sets"):
//!
//! - A set whose last member is removed is not deleted as Redis deletes it: the key becomes
//!   absent to clients (it has no member), but its incarnation stays, so that an `SADD` made
//!   concurrently in another region lands in it and survives (add wins), and the next local
//!   `SADD` writes into it rather than starting a new incarnation that would discard such
//!   adds. `DEL`, expiry and replacing writes (`SET`, `SINTERSTORE` …) end it as for any key.
//! - `SPOP` and `SRANDMEMBER` pick pseudo-randomly, from the command's stamp (a read: its
//!   clock reading) and the key, so that the simulator replays them; the picks are not
//!   Redis's.
//! - `SSCAN` returns every matching member in one call, cursor 0 (as Redis does for a set in
//!   its compact encodings, up to 128 or 512 members): the guarantee "every member present
//!   throughout is returned" holds, whatever happens between calls.
//! - Members are answered in byte order (Redis: its encoding's order).
//!
//! The commands over several keys (`SINTER`, `SMOVE`, the `…STORE`s) read and write through
//! the steps [`read`], [`store`], [`run_algebra`] and [`run_smove`], so that
//! [`crate::shard`] runs them the same way when their keys live on different shards.

use super::{glob, is_opt, parse_i64, Ctx};
use crate::crdt::{Body, KeyState, Kind, Reg};
use crate::members::Members;
use crate::reply::{ErrorKind, Reply};
use crate::stamp::Stamp;
use bytes::Bytes;
use std::collections::BTreeSet;

/// The visible set at `key`: `Ok(None)` if absent, `Err` for another type.
fn set_of<'c>(ctx: &'c Ctx<'_>, key: &Bytes) -> Result<Option<&'c KeyState>, Reply> {
    match ctx.kind(key) {
        None => Ok(None),
        Some(Kind::Set) => Ok(ctx.store.get(key)),
        Some(_) => Err(Reply::wrong_type()),
    }
}

/// The present members of the set at `key` (a read step of a command spanning shards).
pub fn read(ctx: &Ctx<'_>, key: &Bytes) -> Result<Option<BTreeSet<Bytes>>, Reply> {
    Ok(set_of(ctx, key)?.map(|k| k.body.members.live().cloned().collect()))
}

/// Whether `key` holds something other than a set (a step of `SMOVE` spanning shards).
pub fn wrong_type(ctx: &Ctx<'_>, key: &Bytes) -> Option<Reply> {
    set_of(ctx, key).err()
}

/// Whether the key's incarnation is a set's that can still be written in place: not deleted,
/// not expired, a set, members present or not (see the module docs for why an emptied set's
/// incarnation is reused).
fn set_incarnation(ctx: &Ctx<'_>, key: &Bytes) -> bool {
    ctx.store.get(key).is_some_and(|k| {
        !k.is_deleted() && !k.is_expired(ctx.now_ms) && k.body.kind() == Some(Kind::Set)
    })
}

/// Writes `members` (dots built at this command's stamp) into the set at `key`, creating it if
/// there is no set incarnation to write in.
fn write_members(ctx: &mut Ctx<'_>, key: &Bytes, members: Members) {
    let body = Body {
        members,
        ..Body::default()
    };
    let delta = if set_incarnation(ctx, key) {
        let Some(k) = ctx.store.get(key) else {
            return;
        };
        // Writing into an emptied set: Redis would have deleted it with its TTL, so the TTL
        // goes (a register at this stamp), and the set comes back persistent.
        let ttl = (!k.body.members.any_live() && k.body.expiry().is_some())
            .then(|| Reg::new(ctx.stamp(), None));
        KeyState {
            cl: k.cl.clone(),
            body: Body { ttl, ..body },
        }
    } else {
        let body = Body {
            kind: Some(Reg::new(ctx.stamp(), Kind::Set)),
            ..body
        };
        ctx.fresh(key, body)
    };
    ctx.write(key, delta);
}

/// The error for a set that would grow beyond the configured bound.
fn too_many_members(max: usize) -> Reply {
    Reply::err(format!(
        "set would exceed the maximum of {max} members (redis.max_hash_fields)"
    ))
}

/// Adds `new` to the set at `key`, members already present included: each gets a fresh dot,
/// so that a remove made concurrently elsewhere, which cannot have seen it, does not win over
/// it (add wins whether or not this region already had the member). `Err` when the bound
/// would be passed.
fn add(ctx: &mut Ctx<'_>, key: &Bytes, new: Vec<Bytes>) -> Result<(), Reply> {
    if new.is_empty() {
        return Ok(());
    }
    // Members held, removed ones included (they take memory until the key ends).
    let held = if set_incarnation(ctx, key) {
        ctx.store.get(key).map_or(0, |k| {
            let m = &k.body.members;
            m.held() + new.iter().filter(|x| m.dots(x).is_none()).count()
        })
    } else {
        new.len()
    };
    if held > ctx.max_hash_fields {
        return Err(too_many_members(ctx.max_hash_fields));
    }
    let s = ctx.stamp();
    let mut m = Members::new();
    for x in new {
        m.add(x, s);
    }
    write_members(ctx, key, m);
    Ok(())
}

/// Removes the present members among `gone` from the visible set at `key`; returns how many.
fn remove(ctx: &mut Ctx<'_>, key: &Bytes, gone: &[Bytes]) -> i64 {
    let s = ctx.stamp();
    let Ok(Some(k)) = set_of(ctx, key) else {
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
        write_members(ctx, key, delta);
    }
    n
}

/// Writes `members` as the whole new value of `dst` (the `…STORE` commands), or deletes `dst`
/// when there are none; replies with their number. A write step of a command spanning shards.
pub fn store(ctx: &mut Ctx<'_>, dst: &Bytes, members: BTreeSet<Bytes>) -> Reply {
    if members.is_empty() {
        super::keys::remove(ctx, dst);
        return Reply::Int(0);
    }
    if members.len() > ctx.max_hash_fields {
        return too_many_members(ctx.max_hash_fields);
    }
    let s = ctx.stamp();
    let n = members.len() as i64;
    let mut m = Members::new();
    for x in members {
        m.add(x, s);
    }
    let body = Body {
        kind: Some(Reg::new(s, Kind::Set)),
        ttl: Some(Reg::new(s, None)),
        members: m,
        ..Body::default()
    };
    let put = ctx.replace(dst, body);
    ctx.write(dst, put);
    Reply::Int(n)
}

/// Which set algebra a command computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algebra {
    /// `SINTER`, `SINTERCARD`, `SINTERSTORE`.
    Inter,
    /// `SUNION`, `SUNIONSTORE`.
    Union,
    /// `SDIFF`, `SDIFFSTORE`.
    Diff,
}

/// A set-algebra command, parsed.
#[derive(Clone, Copy, Debug)]
pub struct AlgebraCmd<'a> {
    /// What it computes.
    pub op: Algebra,
    /// The source keys, in order.
    pub srcs: &'a [Bytes],
    /// The destination of a `…STORE`.
    pub dst: Option<&'a Bytes>,
    /// `SINTERCARD`: answer the count, stopping at this limit (0: none).
    pub card_limit: Option<usize>,
}

/// Parses `SINTER`, `SUNION`, `SDIFF`, their `…STORE`s and `SINTERCARD` (Redis's errors).
pub fn parse_algebra(args: &[Bytes]) -> Result<AlgebraCmd<'_>, Reply> {
    let name = args[0].to_ascii_lowercase();
    let op = match &name[..] {
        b"sinter" | b"sinterstore" | b"sintercard" => Algebra::Inter,
        b"sunion" | b"sunionstore" => Algebra::Union,
        _ => Algebra::Diff,
    };
    match &name[..] {
        b"sintercard" => {
            let numkeys = match parse_i64(&args[1]) {
                Some(n) if n >= 1 => n as usize,
                _ => return Err(Reply::err("numkeys should be greater than 0")),
            };
            if numkeys > args.len() - 2 {
                return Err(Reply::err(
                    "Number of keys can't be greater than number of args",
                ));
            }
            let mut limit = 0;
            let mut i = 2 + numkeys;
            while i < args.len() {
                if is_opt(&args[i], "LIMIT") && i + 1 < args.len() {
                    limit = match parse_i64(&args[i + 1]) {
                        Some(l) if l >= 0 => l as usize,
                        _ => return Err(Reply::err("LIMIT can't be negative")),
                    };
                    i += 2;
                } else {
                    return Err(Reply::syntax());
                }
            }
            Ok(AlgebraCmd {
                op,
                srcs: &args[2..2 + numkeys],
                dst: None,
                card_limit: Some(limit),
            })
        }
        n if n.ends_with(b"store") => Ok(AlgebraCmd {
            op,
            srcs: &args[2..],
            dst: Some(&args[1]),
            card_limit: None,
        }),
        _ => Ok(AlgebraCmd {
            op,
            srcs: &args[1..],
            dst: None,
            card_limit: None,
        }),
    }
}

/// Runs a parsed set-algebra command: every source read (in order, the first of another type
/// answering `WRONGTYPE`, absent ones empty), the result computed, then answered or handed to
/// `put` for the destination.
pub fn run_algebra(
    c: &AlgebraCmd<'_>,
    mut read: impl FnMut(&Bytes) -> Result<Option<BTreeSet<Bytes>>, Reply>,
    put: impl FnOnce(&Bytes, BTreeSet<Bytes>) -> Reply,
) -> Reply {
    let mut inputs = Vec::with_capacity(c.srcs.len());
    for k in c.srcs {
        match read(k) {
            Ok(s) => inputs.push(s),
            Err(e) => return e,
        }
    }
    let mut it = inputs.into_iter();
    let first = it.next().flatten().unwrap_or_default();
    let result = match c.op {
        Algebra::Inter => {
            let mut acc = first;
            for s in it {
                match s {
                    None => {
                        acc.clear();
                        break;
                    }
                    Some(s) => acc.retain(|x| s.contains(x)),
                }
                if acc.is_empty() {
                    break;
                }
            }
            acc
        }
        Algebra::Union => {
            let mut acc = first;
            for s in it.flatten() {
                acc.extend(s);
            }
            acc
        }
        Algebra::Diff => {
            let mut acc = first;
            for s in it.flatten() {
                acc.retain(|x| !s.contains(x));
            }
            acc
        }
    };
    if let Some(dst) = c.dst {
        return put(dst, result);
    }
    match c.card_limit {
        Some(limit) => {
            let n = result.len();
            Reply::Int(if limit > 0 { n.min(limit) } else { n } as i64)
        }
        None => Reply::Set(result.into_iter().map(Reply::Bulk).collect()),
    }
}

/// `SMOVE src dst member` in steps (Redis's order of checks): `src_has` reads the source
/// (`Ok(None)`: absent, answer 0), `dst_wrong` checks the destination's type, then `take`
/// removes the member from the source and `give` adds it to the destination.
pub fn run_smove(
    same_key: bool,
    src_has: impl FnOnce() -> Result<Option<bool>, Reply>,
    dst_wrong: impl FnOnce() -> Option<Reply>,
    take: impl FnOnce(),
    give: impl FnOnce() -> Result<(), Reply>,
) -> Reply {
    let has = match src_has() {
        Err(e) => return e,
        Ok(None) => return Reply::Int(0),
        Ok(Some(h)) => h,
    };
    if let Some(e) = dst_wrong() {
        return e;
    }
    if same_key || !has {
        return Reply::Int(i64::from(has));
    }
    // The destination first: if its bound refuses the member, the source keeps it.
    match give() {
        Ok(()) => {
            take();
            Reply::Int(1)
        }
        Err(e) => e,
    }
}

/// Whether the visible set at `key` has `member` (`Ok(None)`: no such key): `SMOVE`'s source
/// step.
pub fn has_member(ctx: &Ctx<'_>, key: &Bytes, member: &Bytes) -> Result<Option<bool>, Reply> {
    Ok(set_of(ctx, key)?.map(|k| k.body.members.contains(member)))
}

/// Removes `member` from the set at `key` (`SMOVE`'s first write step).
pub fn take_member(ctx: &mut Ctx<'_>, key: &Bytes, member: &Bytes) {
    remove(ctx, key, std::slice::from_ref(member));
}

/// Adds `member` to the set at `key` (`SMOVE`'s second write step).
pub fn give_member(ctx: &mut Ctx<'_>, key: &Bytes, member: &Bytes) -> Result<(), Reply> {
    add(ctx, key, vec![member.clone()])
}

/// A small deterministic generator (SplitMix64) for `SPOP` and `SRANDMEMBER`.
pub(super) struct Pick(u64);

impl Pick {
    pub(super) fn new(seed: u64, key: &[u8]) -> Pick {
        let mut h = seed ^ 0x9e37_79b9_7f4a_7c15;
        for b in key {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        Pick(h)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform index below `n` (`n > 0`).
    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// `k` distinct items of `v`, chosen uniformly (a partial Fisher-Yates shuffle).
    pub(super) fn distinct<T>(&mut self, mut v: Vec<T>, k: usize) -> Vec<T> {
        let k = k.min(v.len());
        for i in 0..k {
            let j = i + self.below(v.len() - i);
            v.swap(i, j);
        }
        v.truncate(k);
        v
    }
}

pub(super) fn seed_of(s: Stamp) -> u64 {
    s.hlc.0 ^ (u64::from(s.region.0) << 48)
}

/// Redis's `getPositiveLongFromObjectOrReply` without a message.
pub(super) fn positive_count(b: &[u8]) -> Result<usize, Reply> {
    match parse_i64(b) {
        Some(n) if n >= 0 => Ok(n as usize),
        _ => Err(Reply::error(
            ErrorKind::Value,
            "ERR value is out of range, must be positive",
        )),
    }
}

/// The most members one `SRANDMEMBER` with a negative count answers with: Redis would build
/// any reply asked for; a bound keeps one command from taking the node's memory.
pub const MAX_RANDOM_REPLY: u64 = 10_000_000;

// ----- the commands ------------------------------------------------------------------------

/// `SADD key member [member ...]`.
pub(super) fn sadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let key = &args[1];
    let k = match set_of(ctx, key) {
        Err(e) => return e,
        Ok(k) => k,
    };
    let mut seen: BTreeSet<&Bytes> = BTreeSet::new();
    let mut named: Vec<Bytes> = Vec::new();
    let mut n = 0;
    for x in &args[2..] {
        if seen.insert(x) {
            n += i64::from(!k.is_some_and(|k| k.body.members.contains(x)));
            named.push(x.clone());
        }
    }
    match add(ctx, key, named) {
        Ok(()) => Reply::Int(n),
        Err(e) => e,
    }
}

/// `SREM key member [member ...]`.
pub(super) fn srem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let key = &args[1];
    if let Err(e) = set_of(ctx, key) {
        return e;
    }
    // Each member once, even if named twice.
    let mut seen: BTreeSet<&Bytes> = BTreeSet::new();
    let gone: Vec<Bytes> = args[2..]
        .iter()
        .filter(|x| seen.insert(x))
        .cloned()
        .collect();
    Reply::Int(remove(ctx, key, &gone))
}

/// `SMEMBERS key`.
pub(super) fn smembers(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read(ctx, &args[1]) {
        Err(e) => e,
        Ok(m) => Reply::Set(m.into_iter().flatten().map(Reply::Bulk).collect()),
    }
}

/// `SISMEMBER key member`.
pub(super) fn sismember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match has_member(ctx, &args[1], &args[2]) {
        Err(e) => e,
        Ok(h) => Reply::Int(i64::from(h == Some(true))),
    }
}

/// `SMISMEMBER key member [member ...]`.
pub(super) fn smismember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match set_of(ctx, &args[1]) {
        Err(e) => e,
        Ok(k) => Reply::Array(
            args[2..]
                .iter()
                .map(|x| Reply::Int(i64::from(k.is_some_and(|k| k.body.members.contains(x)))))
                .collect(),
        ),
    }
}

/// `SCARD key`.
pub(super) fn scard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match set_of(ctx, &args[1]) {
        Err(e) => e,
        Ok(k) => Reply::Int(k.map_or(0, |k| k.body.members.live_count() as i64)),
    }
}

/// `SPOP key [count]`.
pub(super) fn spop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if args.len() > 3 {
        return Reply::syntax();
    }
    let count = match args.get(2).map(|c| positive_count(c)) {
        Some(Err(e)) => return e,
        Some(Ok(n)) => Some(n),
        None => None,
    };
    let key = &args[1];
    let members: Vec<Bytes> = match read(ctx, key) {
        Err(e) => return e,
        Ok(m) => m.into_iter().flatten().collect(),
    };
    let mut pick = Pick::new(seed_of(ctx.stamp()), key);
    let chosen = pick.distinct(members, count.unwrap_or(1));
    remove(ctx, key, &chosen);
    match count {
        None => Reply::opt(chosen.into_iter().next()),
        Some(_) => Reply::Set(chosen.into_iter().map(Reply::Bulk).collect()),
    }
}

/// `SRANDMEMBER key [count]`.
pub(super) fn srandmember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if args.len() > 3 {
        return Reply::syntax();
    }
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
    let key = &args[1];
    let members: Vec<Bytes> = match read(ctx, key) {
        Err(e) => return e,
        Ok(m) => m.into_iter().flatten().collect(),
    };
    let seed = ctx.stamp.map_or(ctx.now_ms, seed_of);
    let mut pick = Pick::new(seed, key);
    match count {
        None => {
            if members.is_empty() {
                Reply::Nil
            } else {
                let i = pick.below(members.len());
                Reply::Bulk(members[i].clone())
            }
        }
        Some(n) if n >= 0 => Reply::Array(
            pick.distinct(members, n as usize)
                .into_iter()
                .map(Reply::Bulk)
                .collect(),
        ),
        Some(n) => {
            if members.is_empty() {
                return Reply::Array(Vec::new());
            }
            if n.unsigned_abs() > MAX_RANDOM_REPLY {
                return Reply::err(format!(
                    "count is larger than the {MAX_RANDOM_REPLY} members one reply may repeat"
                ));
            }
            Reply::Array(
                (0..n.unsigned_abs())
                    .map(|_| Reply::Bulk(members[pick.below(members.len())].clone()))
                    .collect(),
            )
        }
    }
}

/// `SMOVE source destination member`, both keys on this shard.
pub(super) fn smove(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (src, dst, member) = (&args[1], &args[2], &args[3]);
    let c = std::cell::RefCell::new(ctx);
    run_smove(
        src == dst,
        || has_member(&c.borrow(), src, member),
        || wrong_type(&c.borrow(), dst),
        || take_member(&mut c.borrow_mut(), src, member),
        || give_member(&mut c.borrow_mut(), dst, member),
    )
}

/// `SINTER`, `SUNION`, `SDIFF`, their `…STORE`s and `SINTERCARD`, every key on this shard.
pub(super) fn algebra(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let c = match parse_algebra(args) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let cell = std::cell::RefCell::new(ctx);
    run_algebra(
        &c,
        |k| read(&cell.borrow(), k),
        |dst, m| store(&mut cell.borrow_mut(), dst, m),
    )
}

/// `SSCAN key cursor [MATCH pattern] [COUNT count]`: every matching member, cursor 0.
pub(super) fn sscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if !valid_cursor(&args[2]) {
        return Reply::err("invalid cursor");
    }
    // Redis looks the key up before it reads the options: an absent key answers an empty
    // page whatever they say, another type WRONGTYPE.
    let m = match read(ctx, &args[1]) {
        Err(e) => return e,
        Ok(None) => return Reply::Array(vec![Reply::bulk("0"), Reply::Array(Vec::new())]),
        Ok(Some(m)) => m,
    };
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
    Reply::Array(vec![
        Reply::bulk("0"),
        Reply::Array(
            m.into_iter()
                .filter(|x| pattern.is_none_or(|p| scan_match(p, x)))
                .map(Reply::Bulk)
                .collect(),
        ),
    ])
}

/// `SSCAN`/`ZSCAN`'s `MATCH` as Redis 7.0 applies it: a bare `*` is no filter at all;
/// any other pattern goes through `stringmatchlen`, which never matches an empty string.
pub(super) fn scan_match(pattern: &[u8], s: &[u8]) -> bool {
    pattern == b"*" || (!s.is_empty() && glob::matches(pattern, s))
}

/// A cursor as Redis 7.0 reads one (`strtoul`: optional sign, decimal digits, in range).
pub(super) fn valid_cursor(b: &[u8]) -> bool {
    let digits = match b.first() {
        // A sign with no digit after it is not consumed: invalid.
        Some(b'-' | b'+') if b.len() == 1 => return false,
        Some(b'-' | b'+') => &b[1..],
        Some(c) if c.is_ascii_whitespace() => return false,
        _ => b,
    };
    digits.iter().all(u8::is_ascii_digit)
        && std::str::from_utf8(digits).is_ok_and(|s| s.is_empty() || s.parse::<u64>().is_ok())
}
