//! The state of one key: a last-writer-wins map with a causal-length delete counter.
//!
//! A key's state is a [`KeyState`]: a causal-length register `cl` and a [`Body`] that belongs to
//! incarnation `cl.value`. An odd length is a live incarnation, an even one a deleted key.
//!
//! - **Delete wins.** `DEL` moves the length from odd `n` to `n + 1`. A write made concurrently
//!   elsewhere, without having seen the delete, still carries incarnation `n` and is discarded on
//!   merge because `n < n + 1`. A write made after the delete was seen starts a new incarnation,
//!   numbered from its own stamp ([`KeyState::fresh_len`]), which is greater.
//! - **Fields** (hash fields, the string value, the TTL, the type) are LWW registers ordered by
//!   [`Stamp`]: the greatest stamp wins. Different fields of one hash merge independently.
//! - **SET replaces**: it sets `body.reset` to its stamp, and every register older than `reset` is
//!   gone.
//! - **TTL** is an absolute expiry in wall-clock milliseconds in its own register; a key whose
//!   expiry has passed is absent ([`KeyState::view`]), with no message needed.
//!
//! Merge is a join: commutative, associative and idempotent (`tests/crdt_laws.rs` checks it).
//! A partial state (a *delta*: the registers written since some point) is itself a `KeyState`, so
//! deltas and full states merge the same way.
//!
//! This module knows nothing of commands, replication or garbage collection.

use crate::counter::Counts;
use crate::fields::Fields;
use crate::hlc::Hlc;
use crate::members::Members;
pub use crate::reg::Reg;
use crate::stamp::{RegionId, Stamp};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a client sees in a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A string.
    String(Bytes),
    /// A hash, fields in byte order.
    Hash(BTreeMap<Bytes, Bytes>),
    /// A set, members in byte order.
    Set(std::collections::BTreeSet<Bytes>),
    /// A sorted set: members in byte order, each with its score's bits
    /// ([`f64::to_bits`], so that values compare exactly).
    ZSet(BTreeMap<Bytes, u64>),
}

/// Merges an optional register; returns true when the incoming register lost.
///
/// Only the incoming side counts as a conflict: a replica filters out what it already has
/// before merging, so an incoming register that loses was written without knowledge of the
/// local winner — concurrently. A local register replaced by a newer one is an ordinary
/// overwrite.
fn merge_opt<T: Ord + Clone>(mine: &mut Option<Reg<T>>, theirs: &Option<Reg<T>>) -> bool {
    match (mine.as_mut(), theirs) {
        (_, None) => false,
        (None, Some(t)) => {
            *mine = Some(t.clone());
            false
        }
        (Some(m), Some(t)) => {
            if m == t {
                false
            } else if m.loses_to(t) {
                *m = t.clone();
                false
            } else {
                true
            }
        }
    }
}

/// The type of a key's current content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Kind {
    /// A string (`SET`, `APPEND`, ...).
    String,
    /// A hash (`HSET`, ...).
    Hash,
    /// A set (`SADD`, ...).
    Set,
    /// A sorted set (`ZADD`, ...): members as a set's, each member's score in `fields`.
    ZSet,
}

/// The content of one incarnation of a key.
///
/// Encoded as an array of its fields in order, with the trailing ones that are empty left out
/// ([`Body`]'s `Serialize`): a key that never counted and is no set encodes exactly as bodies
/// did before counters and sets existed, and the decoder takes a shorter array's missing
/// fields as empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Body {
    /// Registers older than this stamp are gone (`SET` replaces the whole key).
    pub reset: Option<Stamp>,
    /// The type, as last set by a command that creates or replaces the key.
    pub kind: Option<Reg<Kind>>,
    /// A string key's value.
    pub string: Option<Reg<Bytes>>,
    /// A hash key's fields; `None` is a deleted field (`HDEL`), kept so it beats older writes.
    /// A [`Fields`] rather than a `BTreeMap`: a session's few fields fit in a vector a third
    /// the size of a B-tree leaf (see [`crate::fields`]).
    pub fields: Fields,
    /// Absolute expiry in wall-clock milliseconds; `None` inside the register means persistent.
    pub ttl: Option<Reg<Option<u64>>>,
    /// Each region's running totals of `INCRBY`/`HINCRBY` (see [`crate::counter`]).
    #[serde(default)]
    pub counts: Counts,
    /// A set key's members, an add-wins observed-remove set ([`crate::members`]).
    #[serde(default)]
    pub members: Members,
}

impl Serialize for Body {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        // rmp-serde writes a struct as an array of the fields serialized; trailing empty
        // ones are left out (see the type's docs), inner ones never, so positions hold.
        let len = if !self.members.is_empty() {
            7
        } else if !self.counts.is_empty() {
            6
        } else {
            5
        };
        let mut st = serializer.serialize_struct("Body", len)?;
        st.serialize_field("reset", &self.reset)?;
        st.serialize_field("kind", &self.kind)?;
        st.serialize_field("string", &self.string)?;
        st.serialize_field("fields", &self.fields)?;
        st.serialize_field("ttl", &self.ttl)?;
        if len > 5 {
            st.serialize_field("counts", &self.counts)?;
        } else {
            st.skip_field("counts")?;
        }
        if len > 6 {
            st.serialize_field("members", &self.members)?;
        } else {
            st.skip_field("members")?;
        }
        st.end()
    }
}

impl Body {
    /// True when the body holds no register at all.
    pub fn is_empty(&self) -> bool {
        self.reset.is_none()
            && self.kind.is_none()
            && self.string.is_none()
            && self.fields.is_empty()
            && self.ttl.is_none()
            && self.counts.is_empty()
            && self.members.is_empty()
    }

    /// Joins `other` into `self`; returns how many registers lost to another.
    fn merge(&mut self, other: &Body) -> u64 {
        let mut conflicts = 0;
        if other.reset > self.reset {
            self.reset = other.reset;
        }
        conflicts += u64::from(merge_opt(&mut self.kind, &other.kind));
        conflicts += u64::from(merge_opt(&mut self.string, &other.string));
        conflicts += u64::from(merge_opt(&mut self.ttl, &other.ttl));
        for (f, r) in other.fields.iter_unordered() {
            match self.fields.get_mut(f) {
                None => {
                    self.fields.insert(f.clone(), r.clone());
                }
                Some(m) if m == r => {}
                Some(m) => {
                    if m.loses_to(r) {
                        *m = r.clone();
                    } else {
                        conflicts += 1;
                    }
                }
            }
        }
        for c in other.counts.iter() {
            self.counts.merge_one(c);
        }
        conflicts += self.members.merge(&other.members);
        self.normalize();
        conflicts
    }

    /// Drops every register older than `reset`; returns how many were dropped.
    fn normalize(&mut self) -> u64 {
        let Some(reset) = self.reset else {
            return self.drop_past_counts();
        };
        let mut dropped = 0;
        let old = |s: Stamp| s < reset;
        if self.kind.as_ref().is_some_and(|r| old(r.stamp)) {
            self.kind = None;
            dropped += 1;
        }
        if self.string.as_ref().is_some_and(|r| old(r.stamp)) {
            self.string = None;
            dropped += 1;
        }
        if self.ttl.as_ref().is_some_and(|r| old(r.stamp)) {
            self.ttl = None;
            dropped += 1;
        }
        let before = self.fields.len();
        self.fields.retain(|_, r| !old(r.stamp));
        dropped
            + (before - self.fields.len()) as u64
            + self.members.drop_before(reset)
            + self.drop_past_counts()
    }

    /// The type this body shows: the kind register, or what the content implies when a partial
    /// state lacks it.
    pub fn kind(&self) -> Option<Kind> {
        match &self.kind {
            Some(k) => Some(k.value),
            // A sorted set's scores are in `fields`: its dots tell it from a hash.
            None if !self.members.is_empty() && !self.fields.is_empty() => Some(Kind::ZSet),
            None if self.fields.iter_unordered().any(|(_, r)| r.value.is_some()) => {
                Some(Kind::Hash)
            }
            None if self.string.is_some() => Some(Kind::String),
            None if !self.members.is_empty() => Some(Kind::Set),
            None => self.counts.iter().next().map(|c| match c.target {
                Some(_) => Kind::Hash,
                None => Kind::String,
            }),
        }
    }

    /// The absolute expiry, if any.
    pub fn expiry(&self) -> Option<u64> {
        self.ttl.as_ref().and_then(|r| r.value)
    }

    /// Calls `f` with the stamp of every register.
    fn for_each_stamp(&self, mut f: impl FnMut(Stamp)) {
        if let Some(s) = self.reset {
            f(s);
        }
        if let Some(r) = &self.kind {
            f(r.stamp);
        }
        if let Some(r) = &self.string {
            f(r.stamp);
        }
        if let Some(r) = &self.ttl {
            f(r.stamp);
        }
        for (_, r) in self.fields.iter_unordered() {
            f(r.stamp);
        }
        for c in self.counts.iter() {
            f(c.tally.stamp);
        }
        self.members.for_each_stamp(f);
    }

    /// The registers for which `keep(stamp)` holds.
    /// [`Body::filtered`] of a body we own, in place: nothing is copied.
    fn retain(&mut self, keep: &impl Fn(Stamp) -> bool) {
        fn opt<T>(r: &mut Option<Reg<T>>, keep: &impl Fn(Stamp) -> bool) {
            if r.as_ref().is_some_and(|r| !keep(r.stamp)) {
                *r = None;
            }
        }
        if self.reset.is_some_and(|s| !keep(s)) {
            self.reset = None;
        }
        opt(&mut self.kind, keep);
        opt(&mut self.string, keep);
        self.fields.retain(|_, r| keep(r.stamp));
        opt(&mut self.ttl, keep);
        self.counts.retain(|c| keep(c.tally.stamp));
        self.members.retain(keep);
    }

    fn filtered(&self, keep: &impl Fn(Stamp) -> bool) -> Body {
        fn opt<T: Clone>(r: &Option<Reg<T>>, keep: &impl Fn(Stamp) -> bool) -> Option<Reg<T>> {
            r.as_ref().filter(|r| keep(r.stamp)).cloned()
        }
        Body {
            reset: self.reset.filter(|s| keep(*s)),
            kind: opt(&self.kind, keep),
            string: opt(&self.string, keep),
            fields: self
                .fields
                .iter_unordered()
                .filter(|(_, r)| keep(r.stamp))
                .map(|(f, r)| (f.clone(), r.clone()))
                .collect(),
            ttl: opt(&self.ttl, keep),
            counts: self.counts.filtered(|c| keep(c.tally.stamp)),
            members: self.members.filtered(keep),
        }
    }
}

/// The replicated state of one key (or a delta of it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyState {
    /// Causal length: odd = live incarnation, even = deleted. Ordered by (length, stamp).
    pub cl: Reg<u64>,
    /// The content of incarnation `cl.value`.
    pub body: Body,
}

impl KeyState {
    /// A fresh incarnation `len` (odd) created at `stamp`, with an empty body.
    pub fn incarnation(len: u64, stamp: Stamp) -> KeyState {
        KeyState {
            cl: Reg::new(stamp, len),
            body: Body::default(),
        }
    }

    /// The causal length of an incarnation created at `s`: `2 * hlc + 1`.
    ///
    /// Numbering incarnations by their creation stamp, rather than counting up from the last
    /// one seen, is what lets a region that has collected a key's tombstone create the key again
    /// without remembering it: the delete it collected had length `2c + 2` for a creation stamp
    /// `c` older than the delete, and the new creation's stamp `s` is newer than the delete it
    /// saw, so `2s + 1 > 2c + 2`. A write that did not see the delete still carries `2c + 1` and
    /// loses to it. Two creations of one key made concurrently: the later one wins whole.
    pub fn fresh_len(s: Stamp) -> u64 {
        s.hlc.0.saturating_mul(2).saturating_add(1)
    }

    /// True for an even causal length: the key is deleted.
    pub fn is_deleted(&self) -> bool {
        self.cl.value.is_multiple_of(2)
    }

    /// Joins `other` into `self` and returns how many of `other`'s registers lost (conflicts
    /// resolved: writes that lost to a concurrent write or to a delete).
    ///
    /// The greater causal length wins outright, taking its body; equal lengths merge bodies.
    pub fn merge(&mut self, other: &KeyState) -> u64 {
        use std::cmp::Ordering::*;
        match self.cl.value.cmp(&other.cl.value) {
            Greater => {
                // Everything in `other` belongs to an older incarnation: it lost to a delete or
                // to a recreation.
                other.body.register_count()
            }
            Less => {
                *self = other.clone();
                0
            }
            Equal => {
                if self.cl.loses_to(&other.cl) {
                    self.cl = other.cl.clone();
                }
                self.body.merge(&other.body)
            }
        }
    }

    /// Drops registers hidden by `reset`. [`KeyState::merge`] leaves states normalized; this is
    /// for states built by hand (tests, decoding).
    pub fn normalize(&mut self) {
        self.body.normalize();
    }

    /// What a client sees at `now_ms`: `None` when deleted, expired (`now_ms > expiry`), or
    /// without content.
    pub fn view(&self, now_ms: u64) -> Option<(Value, Option<u64>)> {
        if self.is_deleted() || self.is_expired(now_ms) {
            return None;
        }
        let expiry = self.body.expiry();
        match self.body.kind()? {
            Kind::String => Some((Value::String(self.body.string_value()?), expiry)),
            Kind::Hash => {
                let fields: BTreeMap<Bytes, Bytes> = self.body.live_fields().collect();
                if fields.is_empty() {
                    None
                } else {
                    Some((Value::Hash(fields), expiry))
                }
            }
            Kind::ZSet => {
                let scores: BTreeMap<Bytes, u64> = self
                    .body
                    .members
                    .live()
                    .map(|m| (m.clone(), crate::cmd::zsets::score_bits(&self.body, m)))
                    .collect();
                if scores.is_empty() {
                    None
                } else {
                    Some((Value::ZSet(scores), expiry))
                }
            }
            Kind::Set => {
                let members: std::collections::BTreeSet<Bytes> =
                    self.body.members.live().cloned().collect();
                if members.is_empty() {
                    None
                } else {
                    Some((Value::Set(members), expiry))
                }
            }
        }
    }

    /// True when the TTL has passed at `now_ms` (Redis's rule: expired once `now > expiry`).
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.body.expiry().is_some_and(|e| now_ms > e)
    }

    /// The type a client sees at `now_ms`, or `None` when the key is absent for clients.
    /// Like [`KeyState::view`] without copying the content.
    pub fn visible_kind(&self, now_ms: u64) -> Option<Kind> {
        if self.is_deleted() || self.is_expired(now_ms) {
            return None;
        }
        match self.body.kind()? {
            Kind::String => self.body.has_string().then_some(Kind::String),
            Kind::Hash => self.body.has_live_field().then_some(Kind::Hash),
            Kind::Set => self.body.members.any_live().then_some(Kind::Set),
            Kind::ZSet => self.body.members.any_live().then_some(Kind::ZSet),
        }
    }

    /// True when a client would see this key at `now_ms`.
    pub fn is_visible(&self, now_ms: u64) -> bool {
        self.visible_kind(now_ms).is_some()
    }

    /// The greatest stamp of each origin among this key's registers (the `cl` register too).
    /// These are the key's entries in the replication index.
    pub fn origins(&self) -> Vec<(RegionId, Hlc)> {
        let mut out: Vec<(RegionId, Hlc)> = Vec::with_capacity(2);
        let mut note = |s: Stamp| match out.iter_mut().find(|(r, _)| *r == s.region) {
            Some((_, h)) => *h = (*h).max(s.hlc),
            None => out.push((s.region, s.hlc)),
        };
        note(self.cl.stamp);
        self.body.for_each_stamp(&mut note);
        out.sort_unstable();
        out
    }

    /// Calls `f` once per origin among the registers (`cl` included) whose stamp passes `keep`,
    /// with that origin's greatest such stamp. A delta carries one or two origins, so they are
    /// gathered on the stack: this runs on every write, and [`KeyState::origins`] allocates.
    pub fn for_each_origin(&self, keep: impl Fn(Stamp) -> bool, mut f: impl FnMut(RegionId, Hlc)) {
        const FEW: usize = 4;
        let mut few = [(RegionId(0), Hlc::ZERO); FEW];
        let mut n = 0;
        let mut more: Vec<(RegionId, Hlc)> = Vec::new();
        let mut note = |s: Stamp| {
            if !keep(s) {
                return;
            }
            if let Some((_, h)) = few[..n].iter_mut().find(|(r, _)| *r == s.region) {
                *h = (*h).max(s.hlc);
            } else if n < FEW {
                few[n] = (s.region, s.hlc);
                n += 1;
            } else if let Some((_, h)) = more.iter_mut().find(|(r, _)| *r == s.region) {
                *h = (*h).max(s.hlc);
            } else {
                more.push((s.region, s.hlc));
            }
        };
        note(self.cl.stamp);
        self.body.for_each_stamp(&mut note);
        for (r, h) in few[..n].iter().chain(more.iter()) {
            f(*r, *h);
        }
    }

    /// The smallest stamp among the registers (`cl` included) for which `pred` holds.
    pub fn min_stamp(&self, pred: impl Fn(Stamp) -> bool) -> Option<Stamp> {
        let mut min: Option<Stamp> = None;
        let mut note = |s: Stamp| {
            if pred(s) && min.is_none_or(|m| s < m) {
                min = Some(s);
            }
        };
        note(self.cl.stamp);
        self.body.for_each_stamp(note);
        min
    }

    /// Like [`KeyState::min_stamp`] over the body's registers only.
    pub fn min_body_stamp(&self, pred: impl Fn(Stamp) -> bool) -> Option<Stamp> {
        let mut min: Option<Stamp> = None;
        self.body.for_each_stamp(|s| {
            if pred(s) && min.is_none_or(|m| s < m) {
                min = Some(s);
            }
        });
        min
    }

    /// The greatest stamp of any register.
    pub fn max_stamp(&self) -> Stamp {
        let mut max = self.cl.stamp;
        self.body.for_each_stamp(|s| max = max.max(s));
        max
    }

    /// The delta of registers for which `keep(stamp)` holds, always with the `cl` register (it
    /// is a few bytes and tells the receiver which incarnation the body belongs to). `None` when
    /// neither `cl` nor any body register is kept.
    pub fn delta(&self, keep: impl Fn(Stamp) -> bool) -> Option<KeyState> {
        let body = self.body.filtered(&keep);
        if body.is_empty() && !keep(self.cl.stamp) {
            return None;
        }
        Some(KeyState {
            cl: self.cl.clone(),
            body,
        })
    }

    /// [`KeyState::delta`] of a state we own (a delta just decoded from a peer, say): the
    /// same registers, filtered in place instead of copied.
    pub fn into_delta(mut self, keep: impl Fn(Stamp) -> bool) -> Option<KeyState> {
        self.body.retain(&keep);
        if self.body.is_empty() && !keep(self.cl.stamp) {
            return None;
        }
        Some(self)
    }

    /// Number of registers in the body (used to count conflicts lost to a delete).
    pub fn register_count(&self) -> u64 {
        self.body.register_count()
    }
}

impl Body {
    /// Number of registers held.
    pub fn register_count(&self) -> u64 {
        let mut n = 0;
        self.for_each_stamp(|_| n += 1);
        n
    }
}
