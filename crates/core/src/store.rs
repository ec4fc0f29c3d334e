//! The key space of one region and the indexes replication and garbage collection need.
//!
//! Every change to a key goes through [`Store::apply`], which merges a delta and keeps three
//! indexes in step with the key:
//!
//! - the **origin index**: for each key, one entry per origin region, filed under the time
//!   bucket (16 ms, [`BUCKET_SHIFT`]) of the greatest stamp that origin holds in it.
//!   Catch-up reads it to find the current winners newer than a peer's watermark — a superset,
//!   at bucket granularity, which it then filters exactly — so its size follows the number of
//!   keys, never of writes. Buckets rather than exact stamps because an exact ordered index
//!   paid a B-tree removal at a random place and an insertion on every write (a fifth of a
//!   replicated write's cost, measured); with buckets a key rewritten within the same bucket
//!   costs nothing here, and otherwise two hash-set operations. Buckets are short because a
//!   peer's periodic catch-up request reads from the bucket of its watermark onwards: with
//!   1 s buckets, answering them took a sixth of the CPU under 50k writes/s;
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
use crate::stamp::RegionId;
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// The key table's hasher: seeded at random per process, so clients cannot choose keys that
/// collide (a seedless hash such as [`key_hash`] would let them), and fast on short keys.
type KeyHasher = foldhash::fast::RandomState;

/// Stamps are filed in the origin index by `hlc >> BUCKET_SHIFT`: the HLC keeps milliseconds
/// above 16 bits of counter, so a bucket spans 16 ms.
pub const BUCKET_SHIFT: u32 = 20;

fn bucket(h: Hlc) -> u64 {
    h.0 >> BUCKET_SHIFT
}

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
    /// This key's entries in the origin index, kept to update it without a scan.
    origins: Vec<(RegionId, Hlc)>,
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
    /// The origin index: `(origin, bucket)` to the keys whose greatest stamp from that origin
    /// falls in the bucket. Never iterated in hash order by anything that decides what
    /// happens: readers collect into ordered sets or take a maximum.
    index: BTreeMap<(RegionId, u64), HashSet<Bytes, KeyHasher>>,
    /// Entries in `index`.
    index_len: usize,
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
        self.index_len
    }

    /// Number of deleted keys awaiting collection.
    pub fn tombstone_count(&self) -> usize {
        self.tombstones.len()
    }

    /// Merges `delta` into `key` (creating it if absent) and returns the conflicts resolved.
    pub fn apply(&mut self, key: &Bytes, delta: &KeyState) -> u64 {
        let (conflicts, old_origins, old_expiry, was_deleted, entry, cheap) =
            match self.keys.get_mut(key.as_ref()) {
                Some(e) => {
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
                    (0, Vec::new(), None, false, e, false)
                }
            };
        // Within one incarnation and without a new reset, registers only grow, so each origin's
        // greatest stamp is the old one or the delta's: no need to walk a large hash on every
        // write. (A register replaced by another origin's may leave its old origin's entry in
        // the index a little too high; that only makes catch-up look at the key once more, and
        // the entry is rebuilt exactly at the next structural change.)
        let new_origins = if cheap {
            let mut o = old_origins.clone();
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
        let new_expiry = entry.state.body.expiry();
        let deleted = entry.state.is_deleted();
        entry.origins = new_origins.clone();
        entry.expiry = new_expiry;
        if old_origins != new_origins {
            self.reindex(key, &old_origins, &new_origins);
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

    /// Removes `key` and its index entries (garbage collection and resynchronisation).
    pub fn remove(&mut self, key: &Bytes) -> Option<KeyState> {
        let e = self.keys.remove(key.as_ref())?;
        self.order.remove(&SlotKey::new(key.clone()));
        self.reindex(key, &e.origins, &[]);
        if let Some(x) = e.expiry {
            self.expiring.remove(&(x, key.clone()));
        }
        self.tombstones.remove(key);
        Some(e.state)
    }

    /// Moves `key`'s origin-index entries from the buckets of `old` to those of `new` (both
    /// sorted by region, one entry per region).
    fn reindex(&mut self, key: &Bytes, old: &[(RegionId, Hlc)], new: &[(RegionId, Hlc)]) {
        for (r, h) in old {
            let b = bucket(*h);
            if new.iter().any(|(nr, nh)| nr == r && bucket(*nh) == b) {
                continue;
            }
            if let Some(set) = self.index.get_mut(&(*r, b)) {
                if set.remove(key) {
                    self.index_len -= 1;
                }
                if set.is_empty() {
                    self.index.remove(&(*r, b));
                }
            }
        }
        for (r, h) in new {
            let b = bucket(*h);
            if old.iter().any(|(or, oh)| or == r && bucket(*oh) == b) {
                continue;
            }
            if self.index.entry((*r, b)).or_default().insert(key.clone()) {
                self.index_len += 1;
            }
        }
    }

    /// Keys that may hold a register from `origin` newer than `after`: every key that does,
    /// and possibly some from the same 16 ms bucket that do not (callers filter by stamp). In
    /// no particular order: collect into an ordered set before acting on it.
    pub fn changed_since(&self, origin: RegionId, after: Hlc) -> impl Iterator<Item = &Bytes> {
        self.index
            .range((origin, bucket(after))..=(origin, u64::MAX))
            .flat_map(|(_, keys)| keys.iter())
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

    /// The greatest stamp held anywhere (re-seeds the clock after a restart).
    pub fn max_hlc(&self) -> Hlc {
        // Only the newest bucket of each origin can hold its greatest stamp.
        let mut newest: BTreeMap<RegionId, u64> = BTreeMap::new();
        for (r, b) in self.index.keys() {
            newest.insert(*r, *b);
        }
        newest
            .into_iter()
            .flat_map(|(r, b)| self.index[&(r, b)].iter().map(move |k| (r, k)))
            .filter_map(|(r, k)| {
                let e = self.keys.get(k)?;
                e.origins.iter().find(|(x, _)| *x == r).map(|(_, h)| *h)
            })
            .max()
            .unwrap_or(Hlc::ZERO)
    }
}
