//! Keyspace notifications: which Redis events a change of a key raises.
//!
//! Redis names each event after the command that raised it. Here a change reaches a region as a
//! delta — from a local command or merged from another region — so the event is named after
//! what the delta changed ([`events`]): a delete is `del`, a TTL alone `expire` or `persist`, a
//! string `set` (a count `incrby`), hash fields `hset` or `hdel` (a count `hincrby`), set
//! members `sadd` or `srem`, sorted-set members `zadd` or `zrem`; a change that makes an
//! absent key present also raises `new`. A key whose expiry passes raises `expired` in every
//! region, at that region's clock ([`crate::Replica::poll_expired`]). Local commands and merged
//! deltas alike, so a listener in any region hears every session end. The event names differ
//! from Redis's for commands Redis names apart (`APPEND` raises `set` here, `append` there;
//! `RENAME` `del` and `set`, there `rename_from` and `rename_to`; `SREM` of the last member
//! `srem`, where Redis adds `del`): docs/DESIGN.md §2, "Keyspace notifications".

use crate::crdt::{KeyState, Kind};

/// Redis's event classes (`notify.c`), as `notify-keyspace-events` selects them.
pub mod class {
    /// `K`: `__keyspace@<db>__:<key>` channels.
    pub const KEYSPACE: u32 = 1 << 0;
    /// `E`: `__keyevent@<db>__:<event>` channels.
    pub const KEYEVENT: u32 = 1 << 1;
    /// `g`: generic commands (`del`, `expire`, …).
    pub const GENERIC: u32 = 1 << 2;
    /// `$`: strings.
    pub const STRING: u32 = 1 << 3;
    /// `l`: lists.
    pub const LIST: u32 = 1 << 4;
    /// `s`: sets.
    pub const SET: u32 = 1 << 5;
    /// `h`: hashes.
    pub const HASH: u32 = 1 << 6;
    /// `z`: sorted sets.
    pub const ZSET: u32 = 1 << 7;
    /// `x`: expired.
    pub const EXPIRED: u32 = 1 << 8;
    /// `e`: evicted.
    pub const EVICTED: u32 = 1 << 9;
    /// `t`: streams.
    pub const STREAM: u32 = 1 << 10;
    /// `m`: key misses.
    pub const KEY_MISS: u32 = 1 << 11;
    /// `d`: modules.
    pub const MODULE: u32 = 1 << 12;
    /// `n`: new keys.
    pub const NEW: u32 = 1 << 14;
}

/// The events a change `delta` to a key raises, each with its class: `kind` is the key's type
/// after the change, `was_present` whether clients saw it before.
pub fn events(
    delta: &KeyState,
    kind: Option<Kind>,
    was_present: bool,
    is_present: bool,
) -> Vec<(&'static str, u32)> {
    let mut out = Vec::new();
    if delta.is_deleted() {
        if was_present {
            out.push(("del", class::GENERIC));
        }
        return out;
    }
    if !was_present && is_present {
        out.push(("new", class::NEW));
    }
    let b = &delta.body;
    let typed = match kind.or_else(|| b.kind()) {
        Some(Kind::String) if b.string.is_some() || b.reset.is_some() => {
            Some(("set", class::STRING))
        }
        Some(Kind::String) if !b.counts.is_empty() => Some(("incrby", class::STRING)),
        Some(Kind::Hash) if !b.counts.is_empty() && b.fields.is_empty() => {
            Some(("hincrby", class::HASH))
        }
        Some(Kind::Hash) if b.fields.iter_unordered().any(|(_, r)| r.value.is_some()) => {
            Some(("hset", class::HASH))
        }
        Some(Kind::Hash) if !b.fields.is_empty() => Some(("hdel", class::HASH)),
        Some(Kind::Set) if b.members.iter().any(|(_, d)| d.iter().any(|d| d.is_live())) => {
            Some(("sadd", class::SET))
        }
        Some(Kind::Set) if !b.members.is_empty() => Some(("srem", class::SET)),
        Some(Kind::ZSet) if b.members.iter().any(|(_, d)| d.iter().any(|d| d.is_live())) => {
            Some(("zadd", class::ZSET))
        }
        Some(Kind::ZSet) if !b.members.is_empty() => Some(("zrem", class::ZSET)),
        _ => None,
    };
    out.extend(typed);
    match &b.ttl {
        Some(r) if r.value.is_some() => out.push(("expire", class::GENERIC)),
        // A replacing write clears the TTL as part of itself: no `persist` of its own.
        Some(_) if b.reset.is_none() && typed.is_none() && was_present => {
            out.push(("persist", class::GENERIC))
        }
        _ => {}
    }
    out
}
