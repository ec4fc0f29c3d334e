//! The key space of one region and the indexes replication and garbage collection need.
//!
//! Every change to a key goes through [`Store::apply`], which merges a delta and keeps three
//! indexes in step with the key:
//!
//! - the **origin index** ([`OriginIndex`]): for each key, one entry per origin region with
//!   the greatest stamp that origin holds in it. Catch-up reads it to find the current winners
//!   newer than a peer's watermark, so its size follows the number of keys, never of writes.
//!   It is lazy: a write appends and never searches for the entry it replaces (an exact
//!   B-tree did, and that removal was the largest cost of a replicated write; time buckets in
//!   hash sets were tried too and measured no faster);
//! - the **tombstone set**: deleted keys, waiting until collecting them is provably safe;
//! - the **expiry index** `(expiry, key)`: keys with a TTL, so expired keys can be found without
//!   scanning every key.
//!
//! Keys live in a hash table (point lookups are what every command does, and a B-tree costs
//! several cache misses and key comparisons per lookup at a million keys). Iteration never
//! touches the table: a separate ordered set holds every key by a stable 64-bit hash and then
//! by its bytes, which gives `SCAN` a numeric cursor that survives inserts and deletes (Redis's
//! guarantee: a key present for the whole scan is returned) and keeps every iteration
//! deterministic whatever the table's random seed. That set changes only when a key is created
//! or removed, never on an overwrite.
//!
//! The store does not decide when collecting is safe; [`crate::replica`] does.

use crate::crdt::KeyState;
use crate::hlc::Hlc;
use crate::origin_index::{OriginIndex, Slot};
use crate::stamp::RegionId;
use bytes::Bytes;
use hashbrown::HashMap;
use std::collections::{BTreeMap, BTreeSet};

/// The key table's hasher: seeded at random per process, so clients cannot choose keys that
/// collide (a seedless hash such as [`key_hash`] would let them), and fast on short keys.
type KeyHasher = foldhash::fast::RandomState;

/// What a client sees in a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A string.
    String(Bytes),
    /// A hash, fields in byte order.
    Hash(BTreeMap<Bytes, Bytes>),
}

/// A stable, seedless 64-bit hash of a key (FNV-1a), never 0 so that cursor 0 means "start".
pub fn key_hash(key: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h | 1
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

#[derive(Clone, Debug)]
struct Entry {
    state: KeyState,
    /// This key's entries in the origin index: per origin, its greatest stamp here and the
    /// index slot that records it.
    origins: Vec<(RegionId, Hlc, Slot)>,
    /// This key's entry in the expiry index.
    expiry: Option<u64>,
}

/// The key space.
#[derive(Clone, Debug, Default)]
pub struct Store {
    /// Boxed: a table slot is then 40 bytes instead of 250, which matters because a hash
    /// table keeps a quarter to a half of its slots empty, and probing touches fewer lines.
    keys: HashMap<Bytes, Box<Entry>, KeyHasher>,
    /// Every key of `keys`, in iteration order.
    order: BTreeSet<SlotKey>,
    index: OriginIndex,
    tombstones: BTreeSet<Bytes>,
    expiring: BTreeSet<(u64, Bytes)>,
}

impl Store {
    /// An empty store.
    pub fn new() -> Store {
        Store::default()
    }

    /// The state of `key`, live or not.
    pub fn get(&self, key: &[u8]) -> Option<&KeyState> {
        self.keys.get(key).map(|e| &e.state)
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
    pub fn apply(&mut self, key: &Bytes, delta: &KeyState) -> u64 {
        // `stored` is the table's own copy of the key: index entries share it, so a write's
        // copy (decoded from a frame or a request) is freed with the write.
        let (conflicts, old_origins, old_expiry, was_deleted, entry, cheap, stored) =
            match self.keys.get_key_value_mut(key.as_ref()) {
                Some((stored, e)) => {
                    let before = (e.state.cl.value, e.state.body.reset);
                    let was_deleted = e.state.is_deleted();
                    let c = e.state.merge(delta);
                    let cheap = before == (e.state.cl.value, e.state.body.reset);
                    (
                        c,
                        std::mem::take(&mut e.origins),
                        e.expiry,
                        was_deleted,
                        e,
                        cheap,
                        stored,
                    )
                }
                None => {
                    let mut state = delta.clone();
                    state.normalize();
                    self.order.insert(SlotKey::new(key.clone()));
                    let e = self.keys.entry(key.clone()).or_insert(Box::new(Entry {
                        state,
                        origins: Vec::new(),
                        expiry: None,
                    }));
                    (0, Vec::new(), None, false, e, false, key)
                }
            };
        // Within one incarnation and without a new reset, registers only grow, so each origin's
        // greatest stamp is the old one or the delta's: no need to walk a large hash on every
        // write. (A register replaced by another origin's may leave its old origin's entry in
        // the index a little too high; that only makes catch-up look at the key once more, and
        // the entry is rebuilt exactly at the next structural change.)
        let new_origins: Vec<(RegionId, Hlc)> = if cheap {
            let mut o: Vec<(RegionId, Hlc)> = old_origins.iter().map(|&(r, h, _)| (r, h)).collect();
            for (r, h) in delta.origins() {
                match o.iter_mut().find(|(x, _)| *x == r) {
                    Some((_, m)) => *m = (*m).max(h),
                    None => o.push((r, h)),
                }
            }
            o.sort_unstable();
            o
        } else {
            entry.state.origins()
        };
        // Unchanged stamps keep their index entries; new ones are appended to the index.
        entry.origins = new_origins
            .iter()
            .map(
                |&(r, h)| match old_origins.iter().find(|o| (o.0, o.1) == (r, h)) {
                    Some(&(_, _, c)) => (r, h, c),
                    None => (r, h, self.index.insert(r, h, stored)),
                },
            )
            .collect();
        let new_expiry = entry.state.body.expiry();
        let deleted = entry.state.is_deleted();
        entry.expiry = new_expiry;
        for &(r, h, c) in &old_origins {
            if !new_origins.contains(&(r, h)) {
                self.release(r, c);
            }
        }
        if old_expiry != new_expiry {
            if let Some(e) = old_expiry {
                self.expiring.remove(&(e, key.clone()));
            }
            if let Some(e) = new_expiry {
                self.expiring.insert((e, key.clone()));
            }
        }
        if deleted != was_deleted {
            if deleted {
                self.tombstones.insert(key.clone());
            } else {
                self.tombstones.remove(key);
            }
        }
        conflicts
    }

    /// A key's entry no longer names index slot `slot` of `origin`.
    fn release(&mut self, origin: RegionId, slot: Slot) {
        let keys = &mut self.keys;
        self.index.release(origin, slot, |k, from, to| {
            let at = keys
                .get_mut(k.as_ref())
                .and_then(|e| e.origins.iter_mut().find(|o| o.0 == origin && o.2 == from));
            debug_assert!(
                at.is_some(),
                "an index entry names a key that does not name it"
            );
            if let Some(o) = at {
                o.2 = to;
            }
        });
    }

    /// Removes `key` and its index entries (garbage collection and resynchronisation).
    pub fn remove(&mut self, key: &Bytes) -> Option<KeyState> {
        let e = self.keys.remove(key.as_ref())?;
        self.order.remove(&SlotKey::new(key.clone()));
        for &(r, _, c) in &e.origins {
            self.release(r, c);
        }
        if let Some(x) = e.expiry {
            self.expiring.remove(&(x, key.clone()));
        }
        self.tombstones.remove(key);
        Some(e.state)
    }

    /// Keys holding a register from `origin` newer than `after`, in no particular order.
    pub fn changed_since(&self, origin: RegionId, after: Hlc) -> impl Iterator<Item = &Bytes> {
        self.index.changed_since(origin, after)
    }

    /// Deleted keys.
    pub fn tombstones(&self) -> impl Iterator<Item = &Bytes> {
        self.tombstones.iter()
    }

    /// Keys whose expiry is strictly before `before_ms`, soonest first.
    pub fn expired_before(&self, before_ms: u64) -> impl Iterator<Item = &Bytes> {
        self.expiring
            .range(..(before_ms, Bytes::new()))
            .map(|(_, k)| k)
    }

    /// Every key with its state, in store order.
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &KeyState)> {
        self.order.iter().map(|k| (k.key(), self.state_of(k)))
    }

    /// The state of a key taken from `order`, which always has an entry in `keys`.
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
}
