//! The key space of one region and the indexes replication and garbage collection need.
//!
//! Every change to a key goes through [`Store::apply`], which merges a delta and keeps three
//! indexes in step with the key:
//!
//! - the **origin index** ([`OriginIndex`]): per origin region, a bounded history of which
//!   keys received its registers, and when. Catch-up reads it to find the keys changed since
//!   a peer's watermark; a write only appends to it (see its module for why it is not exact,
//!   and what it still guarantees);
//! - the **tombstone set**: deleted keys, waiting until collecting them is provably safe;
//! - the **expiry index** `(expiry, key)`: keys with a TTL, so expired keys can be found without
//!   scanning every key.
//!
//! It also keeps each database's count of visible keys (`DBSIZE`), and the latest flush of
//! each database: a flush marker ([`crate::db::flush_marker`]) arriving joins the flush
//! tombstone ([`flush_tombstone`]) into every key of its database, and every later delta for
//! such a key is joined with it before it is merged, so a flushed incarnation stays dead
//! whatever the order of arrival.
//!
//! Keys live in a hash table (point lookups are what every command does, and a B-tree costs
//! several cache misses and key comparisons per lookup at a million keys). Ordered iteration
//! never touches the table: a separate ordered set holds every key by a stable 64-bit hash and
//! then by its bytes, which gives `SCAN` a numeric cursor that survives inserts and deletes
//! (Redis's guarantee: a key present for the whole scan is returned) and keeps every iteration
//! deterministic whatever the table's random seed. That set changes only when a key is created
//! or removed, never on an overwrite.
//!
//! Each key's entry is shared copy-on-write ([`SharedState`]): a snapshot
//! ([`Store::share_all`]) walks the table once and takes a reference to every entry instead of
//! copying its state, and a write to an entry a snapshot still holds copies that one entry
//! first. The node takes snapshots under its lock, so this is what keeps that pause short; the
//! snapshot comes out in the table's order, and [`sort_in_store_order`] puts it in store order
//! afterwards, off the lock.
//!
//! The store does not decide when collecting is safe; [`crate::replica`] does.

use crate::crdt::KeyState;
use crate::crdt::Reg;
pub use crate::crdt::Value;
use crate::db;
use crate::hlc::Hlc;
use crate::origin_index::OriginIndex;
use crate::stamp::{RegionId, Stamp};
use bytes::Bytes;
use hashbrown::HashMap;
use std::collections::BTreeSet;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// The key table's hasher: seeded with the config's secret seed ([`crate::seed`]), so clients
/// cannot choose keys that collide (a seedless hash such as [`key_hash`] would let them), and
/// fast on short keys.
type KeyHasher = crate::seed::Seeded;

/// A stable, seedless hash of a key (FNV-1a's top 56 bits), never 0 so that cursor 0 means
/// "start". 56 bits, not 64: a region's `SCAN` cursor keeps the shard it is in in the top 8
/// bits ([`crate::shard::MAX_SHARDS`]).
pub fn key_hash(key: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h >> 8) | 1
}

/// A key as the store orders it: by hash, then by bytes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SlotKey {
    hash: u64,
    key: Bytes,
}

impl SlotKey {
    /// Wraps a key.
    pub fn new(key: Bytes) -> SlotKey {
        SlotKey {
            hash: key_hash(&key),
            key,
        }
    }

    /// The key's bytes.
    pub fn key(&self) -> &Bytes {
        &self.key
    }
}

/// Shared through an `Arc` (see [`SharedState`]). The whole entry rather than only its state: an
/// `Arc<KeyState>` inside a boxed entry would be a second allocation per key (48 bytes more per
/// key by glibc malloc's size classes, against the 16 of the `Arc`'s counts alone, which is
/// what a million-key store measures), while sharing the whole entry only means that a write
/// to an entry a snapshot holds also copies its bookkeeping.
#[derive(Clone, Debug)]
struct Entry {
    state: KeyState,
    /// This key's entry in the expiry index.
    expiry: Option<u64>,
}

/// The key space.
#[derive(Clone, Debug)]
pub struct Store {
    /// Behind a pointer: a table slot is then 40 bytes instead of 250, which matters because a
    /// hash table keeps a quarter to a half of its slots empty, and probing touches fewer lines.
    /// An `Arc` rather than a `Box` so that snapshots share entries (see [`SharedState`]); every
    /// change goes through [`Arc::make_mut`].
    keys: HashMap<Bytes, Arc<Entry>, KeyHasher>,
    /// Every key of `keys`, in iteration order.
    order: BTreeSet<SlotKey>,
    index: OriginIndex,
    tombstones: BTreeSet<Bytes>,
    expiring: BTreeSet<(u64, Bytes)>,
    /// Keys a client would see if no TTL had passed, per database (see
    /// [`Store::count_visible`]); the last entry counts the system keys, which no database
    /// shows.
    visible: Vec<usize>,
    /// The latest flush of each database (`FLUSHDB`), and of all (`FLUSHALL`, at
    /// [`db::FLUSH_ALL`]): every incarnation of a key of that database created at or before
    /// it is dead, wherever and whenever its deltas arrive (see [`Store::flushed`]).
    flushes: Vec<Option<Stamp>>,
    /// Whether any flush is in `flushes`: the one test a write pays until the first flush.
    flushed_any: bool,
    /// Planted fault ([`crate::Faults::flush_ignores_late_deltas`]).
    pub(crate) flush_ignores_late_deltas: bool,
    /// Keys removed so far ([`Store::removals`]).
    removals: u64,
}

impl Default for Store {
    fn default() -> Store {
        Store::new()
    }
}

/// A hint to the processor that the cache line at `p` will be read soon; never faults.
#[inline(always)]
#[allow(unsafe_code, reason = "a prefetch hint reads nothing and cannot fault")]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it reads nothing into the program and never faults,
    // whatever the address.
    #[allow(unused_unsafe)]
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Whether a client sees the key, TTLs aside (a TTL passes with time, without any write).
fn visible_untimed(state: &KeyState) -> bool {
    state.visible_kind(0).is_some()
}

/// Where a stored key is counted in [`Store`]'s per-database tables (system keys last).
fn db_slot(key: &[u8]) -> usize {
    db::db_of(key).map_or(SYSTEM_SLOT, usize::from)
}

/// The per-database tables' entry for the system keys, and for `FLUSHALL`.
const SYSTEM_SLOT: usize = 255;

/// The tombstone a flush at `f` merges into every key of its database: a delete of every
/// incarnation created at or before `f` (their causal lengths are `2·c + 1` for creation
/// stamps `c ≤ f`, below `2·f + 2`), stamped `f`. A key created after the flush has a greater
/// length and is untouched.
pub fn flush_tombstone(f: Stamp) -> KeyState {
    KeyState {
        cl: Reg::new(f, KeyState::fresh_len(f).saturating_add(1)),
        body: crate::crdt::Body::default(),
    }
}

impl Store {
    /// An empty store.
    pub fn new() -> Store {
        Store {
            keys: HashMap::default(),
            order: BTreeSet::new(),
            index: OriginIndex::default(),
            tombstones: BTreeSet::new(),
            expiring: BTreeSet::new(),
            visible: vec![0; SYSTEM_SLOT + 1],
            flushes: vec![None; SYSTEM_SLOT + 1],
            flush_ignores_late_deltas: false,
            flushed_any: false,
            removals: 0,
        }
    }

    /// The latest flush that covers database `db` (its own `FLUSHDB` or a `FLUSHALL`).
    pub fn flushed(&self, db: u8) -> Option<Stamp> {
        let own = self.flushes.get(usize::from(db)).copied().flatten();
        let all = self.flushes.get(SYSTEM_SLOT).copied().flatten();
        own.max(all)
    }

    /// The flush that covers stored key `key`, if any (none for system keys).
    fn flush_of(&self, key: &[u8]) -> Option<Stamp> {
        if !self.flushed_any || self.flush_ignores_late_deltas {
            return None;
        }
        db::db_of(key).and_then(|d| self.flushed(d))
    }

    /// After a flush marker changed: remembers its flush and merges its tombstone into every
    /// key of the databases it covers (what each region does on its own when the marker
    /// arrives: the flush travels as one record per shard, never one per key).
    fn note_marker(&mut self, key: &Bytes) {
        let Some(target) = db::flush_marker_db(key) else {
            return;
        };
        let Some(f) = self.get(key).map(|s| s.cl.stamp) else {
            return;
        };
        let slot = usize::from(target);
        if self.flushes[slot].is_some_and(|old| old >= f) {
            return;
        }
        self.flushes[slot] = Some(f);
        self.flushed_any = true;
        let tomb = flush_tombstone(f);
        let doomed: Vec<Bytes> = self
            .keys
            .iter()
            .filter(|(k, e)| {
                db::db_of(k).is_some_and(|d| target == db::FLUSH_ALL || d == target)
                    && e.state.cl.value < tomb.cl.value
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.merge_into(&k, &tomb, false);
        }
    }

    /// The state of `key`, live or not.
    pub fn get(&self, key: &[u8]) -> Option<&KeyState> {
        self.keys.get(key).map(|e| &e.state)
    }

    /// Starts bringing `key`'s entry into the cache without waiting for it. A batch of
    /// commands (a pipeline, a peer's frame) calls this for every key before executing any:
    /// the lookups' cache misses then overlap instead of coming one after another.
    pub fn prefetch(&self, key: &[u8]) {
        if let Some(e) = self.keys.get(key) {
            prefetch(Arc::as_ptr(e).cast());
        }
    }

    /// Number of keys stored (live, deleted or expired).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Size of the origin index.
    pub fn index_len(&self) -> usize {
        self.index.len()
    }

    /// Number of deleted keys awaiting collection.
    pub fn tombstone_count(&self) -> usize {
        self.tombstones.len()
    }

    /// Merges `delta` into `key` (creating it if absent) and returns the conflicts resolved.
    #[allow(
        clippy::expect_used,
        reason = "merging with creation allowed always yields a state"
    )]
    pub fn apply(&mut self, key: &Bytes, delta: &KeyState) -> u64 {
        self.apply_maybe(key, delta, true)
            .expect("a missing key is created")
    }

    /// [`Store::apply`] if `key` is held, `None` (and nothing changed) if it is not: one lookup
    /// for a caller that decides differently about keys it does not hold.
    pub fn apply_existing(&mut self, key: &Bytes, delta: &KeyState) -> Option<u64> {
        self.apply_maybe(key, delta, false)
    }

    /// Merges `delta`, joined first with the tombstone of the flush that covers its key: an
    /// incarnation the flush killed stays dead whenever its deltas arrive (before the marker,
    /// the marker's arrival kills it, see [`Store::note_marker`]). The key's state is then
    /// always the join of every delta it received and of that tombstone, whatever the order.
    fn apply_maybe(&mut self, key: &Bytes, delta: &KeyState, create: bool) -> Option<u64> {
        let killed;
        let mut extra = 0;
        let delta = match self.flush_of(key) {
            Some(f) if delta.cl.value <= KeyState::fresh_len(f).saturating_add(1) => {
                let mut t = flush_tombstone(f);
                extra = t.merge(delta);
                killed = t;
                &killed
            }
            _ => delta,
        };
        let out = self.merge_into(key, delta, create).map(|c| c + extra);
        if key.first() == Some(&0xFF) {
            self.note_marker(key);
        }
        out
    }

    #[allow(
        clippy::expect_used,
        reason = "the stored state is taken whenever the deleted state changes"
    )]
    fn merge_into(&mut self, key: &Bytes, delta: &KeyState, create: bool) -> Option<u64> {
        // `stored` is the table's own copy of the key, and every index shares it, so a write's
        // copy (decoded from a frame or a request) is freed with the write. A new key is
        // copied into an allocation of its own: the request's copy is a slice of the whole
        // command buffer (the value's too), which the key would otherwise keep alive after an
        // overwrite replaced the value, about a kilobyte per 1 KB session.
        let fresh: Bytes;
        let held = self.keys.len();
        let (conflicts, old_cl, old_expiry, was_deleted, entry, stored) =
            match self.keys.get_key_value_mut(key.as_ref()) {
                Some((stored, e)) => {
                    // Copies the entry first if a snapshot still holds it.
                    let e = Arc::make_mut(e);
                    let old_cl = Some(e.state.cl.stamp);
                    let was_deleted = e.state.is_deleted();
                    let was_visible = visible_untimed(&e.state);
                    let c = e.state.merge(delta);
                    match (was_visible, visible_untimed(&e.state)) {
                        (false, true) => self.visible[db_slot(key)] += 1,
                        (true, false) => self.visible[db_slot(key)] -= 1,
                        _ => {}
                    }
                    (c, old_cl, e.expiry, was_deleted, e, stored)
                }
                None if !create => return None,
                None => {
                    let mut state = delta.clone();
                    state.normalize();
                    self.visible[db_slot(key)] += usize::from(visible_untimed(&state));
                    fresh = Bytes::copy_from_slice(key);
                    self.order.insert(SlotKey::new(fresh.clone()));
                    let e = self.keys.entry(fresh.clone()).or_insert(Arc::new(Entry {
                        state,
                        expiry: None,
                    }));
                    (0, None, None, false, Arc::make_mut(e), &fresh)
                }
            };
        // The index hears of the delta's stamps, one entry per origin at its greatest. Only
        // the delta's: every register the key holds came in some delta, which the index heard
        // of then. The `cl` register rides along with every delta; when it is the one the key
        // already had, it is old news and left out.
        delta.for_each_origin(
            |s| old_cl != Some(s),
            |r, h| self.index.insert(r, h, key, held),
        );
        let new_expiry = entry.state.body.expiry();
        let deleted = entry.state.is_deleted();
        entry.expiry = new_expiry;
        // The expiry and tombstone sets keep the table's copy too (a clone only when they
        // change: it is an atomic increment).
        let stored = (old_expiry != new_expiry || deleted != was_deleted).then(|| stored.clone());
        if old_expiry != new_expiry {
            if let Some(e) = old_expiry {
                self.expiring.remove(&(e, key.clone()));
            }
            if let (Some(e), Some(k)) = (new_expiry, &stored) {
                self.expiring.insert((e, k.clone()));
            }
        }
        if deleted != was_deleted {
            if deleted {
                self.tombstones
                    .insert(stored.expect("taken since the deleted state changed"));
            } else {
                self.tombstones.remove(key);
            }
        }
        Some(conflicts)
    }

    /// Removes `key` and its index entries (garbage collection and resynchronisation).
    pub fn remove(&mut self, key: &Bytes) -> Option<KeyState> {
        let e = self.keys.remove(key.as_ref())?;
        self.removals += 1;
        self.visible[db_slot(key)] -= usize::from(visible_untimed(&e.state));
        self.order.remove(&SlotKey::new(key.clone()));
        if let Some(x) = e.expiry {
            self.expiring.remove(&(x, key.clone()));
        }
        self.tombstones.remove(key);
        Some(Arc::unwrap_or_clone(e).state)
    }

    /// How many keys [`Store::remove`] has removed, ever: a catch-up answer built from an
    /// earlier snapshot may be given to a later request only while this has not moved (see
    /// `replica::answer`).
    pub fn removals(&self) -> u64 {
        self.removals
    }

    /// `key` and its state as they are now, shared rather than copied (see [`SharedState`]):
    /// the table's copy of the key, and an entry the store copies before it next changes it.
    pub fn share(&self, key: &[u8]) -> Option<(Bytes, SharedState)> {
        self.keys
            .get_key_value(key)
            .map(|(k, e)| (k.clone(), SharedState(Arc::clone(e))))
    }

    /// True when the origin index still holds every write of `origin` stamped after `after`,
    /// so [`Store::changed_since`] answers from it rather than with every key.
    pub fn history_reaches(&self, origin: RegionId, after: Hlc) -> bool {
        self.index.changed_since(origin, after).is_some()
    }

    /// Keys that may hold a register from `origin` newer than `after`: every key that does is
    /// among them, others may be too, and a key may come more than once, so the caller
    /// filters and de-duplicates. From the origin index when its history reaches back to
    /// `after`, else every key (in store order).
    pub fn changed_since(
        &self,
        origin: RegionId,
        after: Hlc,
    ) -> Box<dyn Iterator<Item = &Bytes> + '_> {
        match self.index.changed_since(origin, after) {
            // The table's copy of each key; a key collected since is left out.
            Some(keys) => Box::new(keys.filter_map(|k| self.keys.get_key_value(k).map(|(k, _)| k))),
            None => Box::new(self.order.iter().map(SlotKey::key)),
        }
    }

    /// How many keys a client sees at `now_ms` (`DBSIZE`): a count kept up to date by every
    /// write, less the keys whose TTL has passed and that nothing has collected yet, which the
    /// expiry index finds without a scan. Counting by walking every key held the replica lock
    /// for a tenth of a second at a million keys.
    pub fn count_visible(&self, db: u8, now_ms: u64) -> usize {
        let expired = self
            .expired_before(now_ms)
            .filter(|k| db::db_of(k) == Some(db) && self.get(k).is_some_and(visible_untimed))
            .count();
        self.visible[usize::from(db)] - expired
    }

    /// How many keys with a TTL a client sees in `db` at `now_ms` (`INFO keyspace`'s
    /// `expires`): a walk of the expiry index.
    pub fn count_expiring(&self, db: u8, now_ms: u64) -> usize {
        self.expiring
            .range((now_ms, Bytes::new())..)
            .filter(|(_, k)| db::db_of(k) == Some(db))
            .filter(|(_, k)| self.get(k).is_some_and(visible_untimed))
            .count()
    }

    /// The databases that hold a key a client might see (`INFO keyspace`), ascending.
    pub fn databases_in_use(&self) -> impl Iterator<Item = u8> + '_ {
        self.visible[..SYSTEM_SLOT]
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(d, _)| d as u8)
    }

    /// Deleted keys.
    pub fn tombstones(&self) -> impl Iterator<Item = &Bytes> {
        self.tombstones.iter()
    }

    /// Keys whose expiry is in `from_ms..before_ms`, soonest first, with it.
    pub fn expiring_between(
        &self,
        from_ms: u64,
        before_ms: u64,
    ) -> impl Iterator<Item = (u64, &Bytes)> {
        self.expiring
            .range((from_ms, Bytes::new())..(before_ms, Bytes::new()))
            .map(|(e, k)| (*e, k))
    }

    /// Keys whose expiry is strictly before `before_ms`, soonest first.
    pub fn expired_before(&self, before_ms: u64) -> impl Iterator<Item = &Bytes> {
        self.expiring
            .range(..(before_ms, Bytes::new()))
            .map(|(_, k)| k)
    }

    /// Appends every key with its state shared, not copied (a reference count each), in the
    /// table's order: arbitrary, and different in every process (the table's seed is random).
    /// It walks the table alone — no ordered walk, no lookup per key — because the node calls
    /// it under its lock; [`sort_in_store_order`] puts the result in store order, for whatever
    /// depends on the order.
    pub fn share_all(&self, out: &mut Vec<(Bytes, SharedState)>) {
        // Each reference count is an atomic increment, which waits until every earlier store
        // has reached the cache. Taken a batch at a time into a small buffer that stays in the
        // cache, and moved to `out` a batch at a time, they wait on far fewer of `out`'s
        // stores: 15% less time at a million keys than pushing each pair to `out` directly.
        const BATCH: usize = 64;
        out.reserve(self.keys.len());
        let mut refs = Vec::with_capacity(BATCH);
        let mut batch = Vec::with_capacity(BATCH);
        let mut it = self.keys.iter();
        loop {
            refs.clear();
            refs.extend(it.by_ref().take(BATCH));
            if refs.is_empty() {
                return;
            }
            batch.extend(
                refs.iter()
                    .map(|&(k, e)| (k.clone(), SharedState(Arc::clone(e)))),
            );
            out.append(&mut batch);
        }
    }

    /// Every key with its state, in store order.
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &KeyState)> {
        self.order.iter().map(|k| (k.key(), self.state_of(k)))
    }

    /// The state of a key taken from `order`, which always has an entry in `keys`.
    #[allow(clippy::expect_used, reason = "slot keys come from the table itself")]
    fn state_of(&self, k: &SlotKey) -> &KeyState {
        &self
            .keys
            .get(k.key())
            .expect("every ordered key is stored")
            .state
    }

    /// Keys in store order starting at hash `cursor` (for `SCAN`).
    pub fn iter_from(&self, cursor: u64) -> impl Iterator<Item = (u64, &Bytes, &KeyState)> {
        let start = SlotKey {
            hash: cursor,
            key: Bytes::new(),
        };
        self.order
            .range(start..)
            .map(|k| (k.hash, k.key(), self.state_of(k)))
    }

    /// At least the greatest stamp held anywhere (re-seeds the clock after a restart).
    pub fn max_hlc(&self) -> Hlc {
        self.index.max_hlc()
    }

    /// At least the greatest stamp of `origin` held anywhere.
    pub fn max_of(&self, origin: RegionId) -> Hlc {
        self.index.max_of(origin)
    }
}

/// One key's state as a snapshot holds it: shared with the store that held it when the
/// snapshot was taken, and unchanged since (the store copies an entry before changing one that
/// is shared). Reads as a [`KeyState`]; serialized exactly as one, so a snapshot of these
/// encodes to the same bytes as a snapshot of plain states.
///
/// It holds the store's whole private entry (see `Entry` for why): only the state is ever read
/// through it. One made from a plain state (decoded from a file, say) carries an empty entry
/// around that state.
#[derive(Clone)]
pub struct SharedState(Arc<Entry>);

impl Deref for SharedState {
    type Target = KeyState;

    fn deref(&self) -> &KeyState {
        &self.0.state
    }
}

impl From<KeyState> for SharedState {
    fn from(state: KeyState) -> SharedState {
        SharedState(Arc::new(Entry {
            state,
            expiry: None,
        }))
    }
}

impl PartialEq for SharedState {
    fn eq(&self, other: &SharedState) -> bool {
        **self == **other
    }
}

impl Eq for SharedState {}

/// As the state alone: the store's bookkeeping is not part of what a snapshot holds.
impl fmt::Debug for SharedState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

impl serde::Serialize for SharedState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for SharedState {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<SharedState, D::Error> {
        KeyState::deserialize(d).map(SharedState::from)
    }
}

/// Sorts `entries` (unique keys) into store order, the order of [`Store::iter`]: by
/// [`key_hash`], then by bytes. Each hash is computed once rather than once per comparison
/// (reading a key's bytes is a cache miss), and the sort moves 16-byte `(hash, position)`
/// pairs; the entries themselves move once, at the end, as `slice::sort_by_cached_key` does.
pub fn sort_in_store_order<T>(entries: &mut [(Bytes, T)]) {
    let mut order: Vec<(u64, usize)> = entries
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (key_hash(k), i))
        .collect();
    order.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| entries[a.1].0.cmp(&entries[b.1].0))
    });
    // Position `i` takes the entry `order[i]` names; an entry that an earlier swap moved is
    // found by following where it went.
    for i in 0..entries.len() {
        let mut from = order[i].1;
        while from < i {
            from = order[from].1;
        }
        order[i].1 = from;
        entries.swap(i, from);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crdt::{Kind, Reg};
    use crate::stamp::Stamp;

    fn stamp(ms: u64) -> Stamp {
        Stamp::new(Hlc::new(ms, 0), RegionId(1))
    }

    /// A `SET key value` made at `ms`, in incarnation 1.
    fn set(value: &str, ms: u64) -> KeyState {
        let s = stamp(ms);
        let mut st = KeyState::incarnation(1, stamp(1));
        st.body.reset = Some(s);
        st.body.kind = Some(Reg::new(s, Kind::String));
        st.body.string = Some(Reg::new(s, Bytes::copy_from_slice(value.as_bytes())));
        st
    }

    /// A `DEL` of incarnation 1 made at `ms`.
    fn del(ms: u64) -> KeyState {
        KeyState::incarnation(2, stamp(ms))
    }

    fn key(n: usize) -> Bytes {
        Bytes::from(format!("key:{n}"))
    }

    fn in_order(s: &Store) -> Vec<(Bytes, KeyState)> {
        s.iter().map(|(k, st)| (k.clone(), st.clone())).collect()
    }

    /// `count_visible` agrees with a walk of every key, whatever the writes, deletes,
    /// removals and TTLs, at any time.
    #[test]
    fn the_visible_count_is_what_a_walk_counts() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let mut s = Store::new();
        for step in 1..5_000u64 {
            let k = key(next(60) as usize);
            let ms = 10 + step;
            match next(5) {
                0 => {
                    s.remove(&k);
                }
                1 => {
                    // A delete of whatever incarnation the key is in.
                    let cl = s.get(&k).map_or(1, |st| st.cl.value);
                    let cl = if cl.is_multiple_of(2) { cl } else { cl + 1 };
                    s.apply(&k, &KeyState::incarnation(cl, stamp(ms)));
                }
                _ => {
                    // A SET into the live incarnation (a new one after a delete), with a TTL
                    // one time in two.
                    let cl = s.get(&k).map_or(1, |st| st.cl.value);
                    let cl = if cl.is_multiple_of(2) { cl + 1 } else { cl };
                    let mut st = set("v", ms);
                    st.cl = Reg::new(stamp(ms), cl);
                    if next(2) == 0 {
                        st.body.ttl = Some(Reg::new(stamp(ms), Some(ms + next(200))));
                    }
                    s.apply(&k, &st);
                }
            }
            for now in [ms, ms + 50, ms + 500] {
                let walk = s.iter().filter(|(_, st)| st.is_visible(now)).count();
                assert_eq!(s.count_visible(0, now), walk, "step {step}, now {now}");
            }
        }
    }

    /// A request's key and value are slices of one command buffer. Once an overwrite replaced
    /// the value, nothing the store keeps (table, order, indexes) may still hold that buffer.
    #[test]
    fn a_key_does_not_keep_its_first_command_buffer_alive() {
        let buffer = Bytes::from(vec![b'x'; 1100]);
        let k = buffer.slice(0..8);
        let mut first = set("", 10);
        first.body.string = Some(Reg::new(stamp(10), buffer.slice(8..)));
        first.body.ttl = Some(Reg::new(stamp(10), Some(60_000)));
        let mut s = Store::new();
        s.apply(&k, &first);
        s.apply(&k, &del(20));
        drop(first);
        s.apply(&k, &set("new", 30));
        drop(k);
        let mut buffer = buffer;
        assert!(
            buffer.is_unique(),
            "the store still holds the first command's buffer"
        );
        // And the key is still found.
        buffer.truncate(8);
        assert!(s.get(&buffer).is_some());
    }

    #[test]
    fn shared_keys_sorted_are_the_store_order() {
        let mut s = Store::new();
        for n in 0..2_000 {
            s.apply(&key(n), &set(&format!("v{n}"), 10 + n as u64));
        }
        for n in (0..2_000).step_by(3) {
            s.apply(&key(n), &set("again", 5_000 + n as u64));
        }
        for n in (0..2_000).step_by(7) {
            s.remove(&key(n));
        }
        let mut all = Vec::new();
        s.share_all(&mut all);
        assert_eq!(all.len(), s.len());
        sort_in_store_order(&mut all);
        let all: Vec<(Bytes, KeyState)> =
            all.into_iter().map(|(k, st)| (k, (*st).clone())).collect();
        assert_eq!(all, in_order(&s));
    }

    /// What a snapshot shares never changes, whatever the store does afterwards: overwrites,
    /// deletes and removals (the store must change its own copy of an entry, not the shared
    /// one).
    #[test]
    fn a_shared_state_is_unchanged_by_later_writes() {
        let mut s = Store::new();
        let n = 5_000; // more than a chunk of the origin index, so several close
        for i in 0..n {
            s.apply(&key(i), &set(&format!("v{i}"), 10 + i as u64));
        }
        let before = in_order(&s);
        let mut shared = Vec::new();
        s.share_all(&mut shared);
        for i in 0..3_000 {
            s.apply(&key(i), &set("new", 10_000 + i as u64));
        }
        for i in 3_000..3_100 {
            s.apply(&key(i), &del(20_000));
        }
        for i in 3_100..3_200 {
            s.remove(&key(i));
        }
        sort_in_store_order(&mut shared);
        let shared: Vec<(Bytes, KeyState)> = shared
            .into_iter()
            .map(|(k, st)| (k, (*st).clone()))
            .collect();
        assert_eq!(shared, before, "the snapshot changed");
        assert_eq!(s.len(), n - 100);
        assert_eq!(s.get(&key(0)), Some(&set("new", 10_000)));
        assert!(s.get(&key(3_000)).unwrap().is_deleted());
        assert_eq!(s.get(&key(4_000)), Some(&set("v4000", 4_010)));
        // The index names every key changed since a stamp (each once here), and no other.
        let changed: BTreeSet<&Bytes> = s.changed_since(RegionId(1), Hlc::ZERO).collect();
        assert_eq!(changed.len(), s.len());
        let recent: BTreeSet<&Bytes> = s.changed_since(RegionId(1), Hlc::new(9_999, 0)).collect();
        assert_eq!(recent.len(), 3_100);
        for i in 0..n {
            s.apply(&key(i), &set("last", 30_000 + i as u64));
        }
        assert!(s.history_reaches(RegionId(1), Hlc::new(29_999, 0)));
        assert_eq!(s.changed_since(RegionId(1), Hlc::new(29_999, 0)).count(), n);
    }

    #[test]
    fn a_shared_state_reads_and_encodes_as_the_state() {
        let st = set("value", 7);
        let shared = SharedState::from(st.clone());
        assert_eq!(*shared, st);
        assert_eq!(format!("{shared:?}"), format!("{st:?}"));
        let bytes = rmp_serde::to_vec(&shared).unwrap();
        assert_eq!(bytes, rmp_serde::to_vec(&st).unwrap());
        let back: SharedState = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back, shared);
    }
}
