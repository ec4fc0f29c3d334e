//! A region's key space in shards: which shards a command needs, and how a command whose keys
//! live on several of them runs with Redis's single-server semantics.
//!
//! A region splits Redis Cluster's 16384 hash slots ([`crate::slot`]) into a fixed number of
//! shards, the same in every region. Each shard is an independent [`Replica`]: its own clock,
//! store, watermarks, journal and catch-up; shard `i` of one region replicates only with shard
//! `i` of the others (the frame header names the shard, [`crate::wire::frame_shard`]). Nothing
//! in the replication protocol spans shards, so every proof about one replica holds for each
//! shard, and a region is correct when each of its shards is.
//!
//! What spans shards is the Redis interface: a multi-key command (`MGET`, `MSET`, `MSETNX`,
//! `DEL`, `UNLINK`, `EXISTS`, `TOUCH`, `RENAME`, `RENAMENX`, `COPY`, `SMOVE`, and the set
//! algebra `SINTER`, `SINTERCARD`, `SUNION`, `SDIFF`, `ZUNION`, `ZINTER`, `ZDIFF`,
//! `ZINTERCARD` and their `…STORE`s: each source read on its shard, the result written on the
//! destination's), a keyless one (`DBSIZE`, `KEYS`,
//! `SCAN`) and a transaction.
//! The driver (the node, or the simulator) holds every shard that [`touches`] names for the
//! commands it runs together — the node locks them in ascending order, so two such holders
//! can never wait for each other — and [`run`] executes each command over them: split by
//! shard, run on each, the replies put back together as one server would have answered. While
//! the driver holds them nothing else runs on those shards, so the command is atomic in the
//! region, as in Redis. (Across regions no command was ever atomic: each key converges on its
//! own.)

use crate::cmd::{is_opt, keys, lcs, parse_u64, sets, zsets, Command};
use crate::hlc::Hlc;
use crate::replica::{Now, PeerStatus, Replica, RestoreStatus, Stats};
use crate::reply::Reply;
use crate::slot::{key_slot, shard_of};
use bytes::Bytes;

/// The most shards a region may have: a `SCAN` cursor keeps its shard in the top 8 bits, the
/// store's position in the low 56 ([`crate::store::key_hash`]).
pub const MAX_SHARDS: u16 = 256;

/// Where a `SCAN` cursor keeps its shard.
const CURSOR_SHIFT: u32 = 56;

/// A set of shards (each below [`MAX_SHARDS`]), iterated in ascending order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShardSet([u64; 4]);

impl ShardSet {
    /// Every shard of a region of `n`.
    pub fn all(n: u16) -> ShardSet {
        let mut s = ShardSet::default();
        for i in 0..n.min(MAX_SHARDS) {
            s.insert(i);
        }
        s
    }

    /// Adds shard `i`.
    pub fn insert(&mut self, i: u16) {
        let i = usize::from(i % MAX_SHARDS);
        self.0[i / 64] |= 1 << (i % 64);
    }

    /// Adds every shard of `other`.
    pub fn union(&mut self, other: ShardSet) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a |= b;
        }
    }

    /// Whether shard `i` is in the set.
    pub fn contains(&self, i: u16) -> bool {
        let i = usize::from(i);
        i < usize::from(MAX_SHARDS) && self.0[i / 64] & (1 << (i % 64)) != 0
    }

    /// How many shards are in the set.
    pub fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    /// The shards, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        self.0.iter().enumerate().flat_map(|(w, bits)| {
            let mut bits = *bits;
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let b = bits.trailing_zeros();
                bits &= bits - 1;
                Some((w * 64) as u16 + b as u16)
            })
        })
    }

    /// The one shard of a set of one.
    pub fn single(&self) -> Option<u16> {
        (self.len() == 1).then(|| self.iter().next()).flatten()
    }
}

/// A region's shards as [`run`] sees them: held by the driver for the commands it runs.
pub trait Shards {
    /// How many shards the region has.
    fn count(&self) -> u16;
    /// Shard `i`; `i` is always among those [`touches`] named for the command being run.
    fn shard(&mut self, i: u16) -> &mut Replica;
}

/// The shard that owns `key` in a region of `n` shards.
pub fn shard_of_key(key: &[u8], n: u16) -> u16 {
    shard_of(key_slot(key), n)
}

/// The one shard `cmd` runs on unchanged in a region of `n` shards, without [`run`]: every
/// data command whose keys all live on one shard, except `SCAN` (its cursor is rewritten).
/// What the node's hot path asks, before anything else; `None` for a connection command.
pub fn direct(cmd: &Command, n: u16) -> Option<u16> {
    if !cmd.spec().is_data() {
        return None;
    }
    if n <= 1 {
        return Some(0);
    }
    let mut keys = cmd.spec().keys.keys(cmd.args());
    let first = shard_of_key(keys.next()?, n);
    keys.all(|k| shard_of_key(k, n) == first).then_some(first)
}

/// The shards `cmd` reads or writes in a region of `n` shards: its keys' shards; every shard
/// for `DBSIZE` and `KEYS`; for `SCAN`, the shard its cursor is in and those after it (a call
/// whose `COUNT` outlasts a shard goes on into the next). Connection commands touch none.
pub fn touches(cmd: &Command, n: u16) -> ShardSet {
    let mut set = ShardSet::default();
    if n <= 1 {
        if cmd.spec().is_data() {
            set.insert(0);
        }
        return set;
    }
    if !cmd.spec().is_data() {
        return set;
    }
    let mut keys = cmd.spec().keys.keys(cmd.args()).peekable();
    if keys.peek().is_some() {
        for k in keys {
            set.insert(shard_of_key(k, n));
        }
        return set;
    }
    match cmd.id().name() {
        "scan" => {
            for s in scan_shard(cmd.args(), n).unwrap_or(0)..n {
                set.insert(s);
            }
        }
        _ => set = ShardSet::all(n),
    }
    set
}

/// The shard a `SCAN` cursor is in; `None` for an unparsable cursor (the command's own parser
/// answers it) or one past the last shard.
fn scan_shard(args: &[Bytes], n: u16) -> Option<u16> {
    let c = parse_u64(args.get(1)?)?;
    u16::try_from(c >> CURSOR_SHIFT).ok().filter(|s| *s < n)
}

/// Runs `cmd` over the region's shards with one server's semantics. The shards [`touches`]
/// names must be held by the caller for the whole call.
pub fn run(set: &mut impl Shards, cmd: &Command, now: Now) -> Reply {
    let n = set.count();
    if n <= 1 {
        return set.shard(0).run(cmd, now);
    }
    let touched = touches(cmd, n);
    if let Some(s) = touched.single() {
        if cmd.id().name() != "scan" {
            return set.shard(s).run(cmd, now);
        }
    }
    match cmd.id().name() {
        "mget" => gather(set, cmd, now, 1, |parts| {
            let mut out = Vec::new();
            for (pos, r) in parts {
                if let Reply::Array(items) = r {
                    out.extend(pos.into_iter().zip(items));
                }
            }
            out.sort_by_key(|(p, _)| *p);
            Reply::Array(out.into_iter().map(|(_, r)| r).collect())
        }),
        "del" | "unlink" | "exists" | "touch" => gather(set, cmd, now, 1, |parts| {
            let mut n = 0;
            for (_, r) in parts {
                match r {
                    Reply::Int(i) => n += i,
                    other => return other,
                }
            }
            Reply::Int(n)
        }),
        "mset" => gather(set, cmd, now, 2, |parts| {
            for (_, r) in parts {
                if r != Reply::OK {
                    return r;
                }
            }
            Reply::OK
        }),
        "rename" => rename(set, cmd, now, false),
        "renamenx" => rename(set, cmd, now, true),
        "copy" => copy(set, cmd, now),
        "lcs" => {
            // Each value read on its own shard; the answer needs nothing else.
            let args = cmd.args();
            let (ka, kb) = (&args[1], &args[2]);
            let (a, max) = set.shard(shard_of_key(ka, n)).run_with(false, now, |ctx| {
                (lcs::value_of(ctx, ka), ctx.max_string_bytes)
            });
            let b = set
                .shard(shard_of_key(kb, n))
                .run_with(false, now, |ctx| lcs::value_of(ctx, kb));
            lcs::reply(a, b, args, max)
        }
        "msetnx" => msetnx(set, cmd, now),
        "sinter" | "sintercard" | "sunion" | "sdiff" | "sinterstore" | "sunionstore"
        | "sdiffstore" => {
            let c = match sets::parse_algebra(cmd.args()) {
                Ok(c) => c,
                Err(e) => return e,
            };
            let cell = std::cell::RefCell::new(set);
            sets::run_algebra(
                &c,
                |k| {
                    cell.borrow_mut()
                        .shard(shard_of_key(k, n))
                        .run_with(false, now, |ctx| sets::read(ctx, k))
                },
                |dst, m| {
                    cell.borrow_mut()
                        .shard(shard_of_key(dst, n))
                        .run_with(true, now, |ctx| sets::store(ctx, dst, m))
                },
            )
        }
        "zunion" | "zinter" | "zdiff" | "zintercard" | "zunionstore" | "zinterstore"
        | "zdiffstore" => {
            let c = match zsets::parse_zalgebra(cmd.args()) {
                Ok(c) => c,
                Err(e) => return e,
            };
            let cell = std::cell::RefCell::new(set);
            zsets::run_zalgebra(
                &c,
                |k| {
                    cell.borrow_mut()
                        .shard(shard_of_key(k, n))
                        .run_with(false, now, |ctx| zsets::read_scored(ctx, k))
                },
                |dst, items| {
                    cell.borrow_mut()
                        .shard(shard_of_key(dst, n))
                        .run_with(true, now, |ctx| zsets::store_scored(ctx, dst, items))
                },
            )
        }
        "smove" => {
            let args = cmd.args();
            let (src, dst, member) = (&args[1], &args[2], &args[3]);
            let (from, to) = (shard_of_key(src, n), shard_of_key(dst, n));
            let cell = std::cell::RefCell::new(set);
            sets::run_smove(
                false,
                || {
                    cell.borrow_mut()
                        .shard(from)
                        .run_with(false, now, |ctx| sets::has_member(ctx, src, member))
                },
                || {
                    cell.borrow_mut()
                        .shard(to)
                        .run_with(false, now, |ctx| sets::wrong_type(ctx, dst))
                },
                || {
                    cell.borrow_mut()
                        .shard(from)
                        .run_with(true, now, |ctx| sets::take_member(ctx, src, member))
                },
                || {
                    cell.borrow_mut()
                        .shard(to)
                        .run_with(true, now, |ctx| sets::give_member(ctx, dst, member))
                },
            )
        }
        "flushdb" | "flushall" => {
            // One marker per shard (each stamped by its shard's clock), every shard held.
            for s in 0..n {
                let r = set.shard(s).run(cmd, now);
                if r != Reply::OK {
                    return r;
                }
            }
            Reply::OK
        }
        "dbsize" => {
            let mut total = 0;
            for s in 0..n {
                match set.shard(s).run(cmd, now) {
                    Reply::Int(i) => total += i,
                    other => return other,
                }
            }
            Reply::Int(total)
        }
        "keys" => {
            let mut all = Vec::new();
            for s in 0..n {
                match set.shard(s).run(cmd, now) {
                    Reply::Array(items) => all.extend(items),
                    other => return other,
                }
            }
            // One server answers in its own order; ours is sorted, per shard and so overall.
            all.sort_by(|a, b| match (a, b) {
                (Reply::Bulk(a), Reply::Bulk(b)) => a.cmp(b),
                _ => std::cmp::Ordering::Equal,
            });
            Reply::Array(all)
        }
        "scan" => scan(set, cmd, now),
        // Every other data command has one key.
        _ => match touched.iter().next() {
            Some(s) => set.shard(s).run(cmd, now),
            None => set.shard(0).run(cmd, now),
        },
    }
}

/// Splits a command whose keys (each followed by `stride - 1` values) span shards into one
/// command per shard, ascending, runs each, and hands `merge` each shard's reply with the
/// argument positions (in key order) of the keys it got.
fn gather(
    set: &mut impl Shards,
    cmd: &Command,
    now: Now,
    stride: usize,
    merge: impl FnOnce(Vec<(Vec<usize>, Reply)>) -> Reply,
) -> Reply {
    let n = set.count();
    let args = cmd.args();
    // A key without its values (`MSET a 1 b`): the arity check only knows "at least three",
    // and splitting would read past the end. Redis's answer for it.
    if !(args.len() - 1).is_multiple_of(stride) {
        return Reply::wrong_arity(cmd.id().name());
    }
    let mut by_shard: Vec<(u16, Vec<usize>)> = Vec::new();
    for (i, k) in args.iter().enumerate().skip(1).step_by(stride) {
        let s = shard_of_key(k, n);
        match by_shard.iter_mut().find(|(t, _)| *t == s) {
            Some((_, v)) => v.push(i),
            None => by_shard.push((s, vec![i])),
        }
    }
    by_shard.sort_by_key(|(s, _)| *s);
    let mut parts = Vec::with_capacity(by_shard.len());
    for (s, positions) in by_shard {
        let mut line = Vec::with_capacity(1 + positions.len() * stride);
        line.push(args[0].clone());
        for p in &positions {
            line.extend_from_slice(&args[*p..*p + stride]);
        }
        let reply = match Command::new(cmd.id(), line) {
            Ok(sub) => set.shard(s).run(&sub, now),
            Err(_) => Reply::wrong_arity(cmd.id().name()),
        };
        parts.push((positions, reply));
    }
    merge(parts)
}

/// `RENAME src dst` with the two keys on different shards: the source's value and expiry
/// read on its shard, written whole as the destination on its shard, then the source deleted
/// — what one server does, in two stamped writes (one per shard, each stamped by its shard's
/// clock).
///
/// `RENAMENX` (`nx`) first looks for the destination on its shard and answers 0 if it exists.
fn rename(set: &mut impl Shards, cmd: &Command, now: Now, nx: bool) -> Reply {
    let n = set.count();
    let (src, dst) = (&cmd.args()[1], &cmd.args()[2]);
    let (from, to) = (shard_of_key(src, n), shard_of_key(dst, n));
    let Some(moved) = set
        .shard(from)
        .run_with(false, now, |ctx| keys::export(ctx, src))
    else {
        return Reply::err("no such key");
    };
    if nx
        && set
            .shard(to)
            .run_with(false, now, |ctx| keys::is_live(ctx, dst))
    {
        return Reply::Int(0);
    }
    set.shard(to)
        .run_with(true, now, |ctx| keys::import(ctx, dst, moved));
    set.shard(from)
        .run_with(true, now, |ctx| keys::remove(ctx, src));
    if nx {
        Reply::Int(1)
    } else {
        Reply::OK
    }
}

/// `COPY src dst [DB 0] [REPLACE]` with the two keys on different shards: as `RENAME`, without
/// deleting the source.
fn copy(set: &mut impl Shards, cmd: &Command, now: Now) -> Reply {
    let n = set.count();
    // Any shard the command touches knows the region's database count: the source's does.
    let databases = set
        .shard(shard_of_key(&cmd.args()[1], n))
        .config()
        .databases;
    let (src, dst, replace) = match keys::parse_copy(cmd.args(), databases) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let (from, to) = (shard_of_key(src, n), shard_of_key(dst, n));
    let Some(moved) = set
        .shard(from)
        .run_with(false, now, |ctx| keys::export(ctx, src))
    else {
        return Reply::Int(0);
    };
    if !replace
        && set
            .shard(to)
            .run_with(false, now, |ctx| keys::is_live(ctx, dst))
    {
        return Reply::Int(0);
    }
    set.shard(to)
        .run_with(true, now, |ctx| keys::import(ctx, dst, moved));
    Reply::Int(1)
}

/// `MSETNX` over several shards: every key is looked for first, each on its shard; if none
/// exists, the pairs are written as `MSET` writes them (one stamped write per shard). All the
/// shards are held throughout, so no key can appear in between.
fn msetnx(set: &mut impl Shards, cmd: &Command, now: Now) -> Reply {
    let n = set.count();
    let args = cmd.args();
    if args.len().is_multiple_of(2) {
        return Reply::wrong_arity("msetnx");
    }
    for k in args[1..].iter().step_by(2) {
        if set
            .shard(shard_of_key(k, n))
            .run_with(false, now, |ctx| keys::is_live(ctx, k))
        {
            return Reply::Int(0);
        }
    }
    let mut line = Vec::with_capacity(args.len());
    line.push(Bytes::from_static(b"MSET"));
    line.extend_from_slice(&args[1..]);
    let mset = match Command::parse(line) {
        Ok(c) => c,
        Err(e) => return e,
    };
    match gather(set, &mset, now, 2, |parts| {
        parts
            .into_iter()
            .map(|(_, r)| r)
            .find(|r| *r != Reply::OK)
            .unwrap_or(Reply::OK)
    }) {
        Reply::OK => Reply::Int(1),
        other => other,
    }
}

/// `SCAN` over every shard in turn: the cursor's top 8 bits name the shard, the rest is the
/// position in that shard's store. A shard's walk that ends before the call's `COUNT` is
/// spent goes on at the start of the next shard (so a large `COUNT` over a small key space
/// returns every key in one call, as from one server); one that ends the call continues
/// there on the next.
fn scan(set: &mut impl Shards, cmd: &Command, now: Now) -> Reply {
    let n = set.count();
    let args = cmd.args();
    let (Some(cursor), Some(first)) = (parse_u64(&args[1]), scan_shard(args, n)) else {
        return match parse_u64(&args[1]) {
            // The command's own parser has Redis's error for it.
            None => set.shard(0).run(cmd, now),
            // A cursor past the last shard: the walk is over.
            Some(_) => Reply::Array(vec![Reply::bulk("0"), Reply::Array(Vec::new())]),
        };
    };
    // Where the COUNT value is, if given (options come in name/value pairs after the cursor).
    let count_at = (2..args.len())
        .step_by(2)
        .filter(|i| is_opt(&args[*i], "COUNT"))
        .last()
        .map(|i| i + 1);
    let mut budget = count_at
        .and_then(|i| args.get(i))
        .and_then(|c| parse_u64(c))
        .unwrap_or(10);
    let mut keys = Vec::new();
    let mut pos = cursor & ((1 << CURSOR_SHIFT) - 1);
    for s in first..n {
        let mut line = args.to_vec();
        line[1] = Bytes::from(pos.to_string());
        match count_at {
            Some(i) if i < line.len() => line[i] = Bytes::from(budget.max(1).to_string()),
            _ => {
                line.push(Bytes::from_static(b"COUNT"));
                line.push(Bytes::from(budget.max(1).to_string()));
            }
        }
        let Ok(sub) = Command::new(cmd.id(), line) else {
            return Reply::wrong_arity(cmd.id().name());
        };
        let reply = set.shard(s).run(&sub.with_db(cmd.db()), now);
        let Reply::Array(mut parts) = reply else {
            return reply;
        };
        let next = match parts.first() {
            Some(Reply::Bulk(b)) => parse_u64(b).unwrap_or(0),
            _ => 0,
        };
        if let Some(Reply::Array(found)) = parts.pop() {
            budget = budget.saturating_sub(found.len() as u64);
            keys.extend(found);
        }
        let next = match next {
            0 if s + 1 < n => u64::from(s + 1) << CURSOR_SHIFT,
            0 => 0,
            p => (u64::from(s) << CURSOR_SHIFT) | p,
        };
        if next & ((1 << CURSOR_SHIFT) - 1) != 0 || next == 0 || budget == 0 {
            return Reply::Array(vec![Reply::bulk(next.to_string()), Reply::Array(keys)]);
        }
        pos = 0;
    }
    Reply::Array(vec![Reply::bulk("0"), Reply::Array(keys)])
}

/// A region's shards owned outright (the simulator's, and tests'): all held all the time.
impl Shards for Vec<Replica> {
    fn count(&self) -> u16 {
        self.len() as u16
    }

    fn shard(&mut self, i: u16) -> &mut Replica {
        &mut self[usize::from(i)]
    }
}

/// A region's view of its shards: each is a replica of its own, and operators see the sum.
impl Stats {
    /// Adds another shard's counters and gauges to these.
    pub fn add(&mut self, o: &Stats) {
        self.keys += o.keys;
        self.tombstones += o.tombstones;
        self.collected += o.collected;
        self.catchup_full_scans += o.catchup_full_scans;
        self.catchup_answers_shared += o.catchup_answers_shared;
        self.conflicts += o.conflicts;
        self.held += o.held;
        self.index_entries += o.index_entries;
        self.dirty += o.dirty;
        self.frames_sent += o.frames_sent;
        self.bytes_sent += o.bytes_sent;
        self.frames_received += o.frames_received;
        self.bytes_received += o.bytes_received;
        self.bad_frames += o.bad_frames;
        self.local_writes += o.local_writes;
        self.expired += o.expired;
        self.reroutes += o.reroutes;
        self.restored += o.restored;
        self.census_dropped += o.census_dropped;
        self.census_bytes += o.census_bytes;
    }
}

impl PeerStatus {
    /// Joins another shard's view of the same peer into this one: the least it holds of ours
    /// and the least we hold of its (shards that never exchanged anything left out), the
    /// greatest lag, every write it lacks.
    pub fn join(&mut self, o: &PeerStatus) {
        let least = |a: Hlc, b: Hlc| match (a == Hlc::ZERO, b == Hlc::ZERO) {
            (true, _) => b,
            (_, true) => a,
            _ => a.min(b),
        };
        self.connected &= o.connected;
        self.acked = least(self.acked, o.acked);
        self.watermark = least(self.watermark, o.watermark);
        self.lag_ms = self.lag_ms.max(o.lag_ms);
        self.lag_writes += o.lag_writes;
        self.evicted |= o.evicted;
        if o.clock_offset_ms.abs() > self.clock_offset_ms.abs() {
            self.clock_offset_ms = o.clock_offset_ms;
        }
        self.traffic.frames_sent += o.traffic.frames_sent;
        self.traffic.bytes_sent += o.traffic.bytes_sent;
        self.traffic.frames_received += o.traffic.frames_received;
        self.traffic.bytes_received += o.traffic.bytes_received;
    }
}

impl RestoreStatus {
    /// Joins another restoring shard into this view: the lowest floor, every peer some shard
    /// still waits for, the earliest start, every key received.
    pub fn join(&mut self, o: &RestoreStatus) {
        self.floor = self.floor.min(o.floor);
        for p in &o.waiting {
            if !self.waiting.contains(p) {
                self.waiting.push(*p);
            }
        }
        self.waiting.sort();
        self.since_mono_ms = self.since_mono_ms.min(o.since_mono_ms);
        self.keys_received += o.keys_received;
        self.stamps_ready &= o.stamps_ready;
    }
}
