//! The origin index: for each origin region, which keys hold a register it wrote, and how new.
//!
//! Catch-up asks "which keys hold a register from origin `r` newer than `h`?" and must answer
//! in time proportional to the answer, not to the key space. A B-tree of `(origin, hlc, key)`
//! answers that exactly, but every write then pays a B-tree insert plus a removal at a random
//! place (the key's previous stamp), which profiling put at a fifth of a pipelined SET and at
//! 12% of all CPU with three regions replicating: the removal descends the tree through
//! several cache misses.
//!
//! This index appends instead. A write *appends* `(hlc, key)` to its origin's open chunk and
//! records, in the key's entry, the [`Slot`] (chunk and position) that holds it. The entry it
//! replaces is found without a search, since the key's entry names its slot: the slot is
//! cleared and its chunk's live count drops by one. So every entry still in a chunk is live, and
//! queries need no check against the keys. A chunk whose live count reaches zero is dropped
//! whole (the open one is emptied); a chunk down to less than a third live is compacted in
//! place, and each entry it moves tells its key the new position. So:
//!
//! - a write costs one append and one cleared slot, plus, amortised, half a key lookup (a
//!   chunk of `n` slots is compacted after `2n / 3` of them died, and moves at most `n / 3`);
//! - the index holds at most three slots per live entry;
//! - no single step does more than one chunk's worth of work (`CHUNK` slots), so there is no
//!   pause proportional to the key space;
//! - chunks close in append order and stamps mostly grow with it, so a query for recent
//!   changes skips every chunk whose greatest stamp is older, and reads only the last few.
//!
//! (A first version kept no positions, and checked every entry against its key when
//! compacting: two key lookups per write, which cost as much as the B-tree's removal.)

use crate::hlc::Hlc;
use crate::stamp::RegionId;
use bytes::Bytes;
use std::collections::BTreeMap;

/// Entries per chunk before a new one opens: small enough that compacting one is a short
/// pause (a key lookup each), large enough that a query walks few chunks.
const CHUNK: usize = 4096;

/// Which chunk of its origin's log an entry was appended to; ids grow in append order.
pub type ChunkId = u32;

/// Where an index entry sits: a key's entry records it, to clear it without a search.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot {
    /// The chunk.
    pub chunk: ChunkId,
    /// The position in the chunk.
    pub pos: u32,
}

#[derive(Clone, Debug, Default)]
struct Chunk {
    /// `None` once the key moved on (until the chunk is compacted).
    entries: Vec<Option<(Hlc, Bytes)>>,
    /// Entries that are `Some`.
    live: usize,
    /// The greatest stamp ever appended (dead entries included).
    max: Hlc,
}

#[derive(Clone, Debug, Default)]
struct Log {
    /// By id. The open chunk is the last and is never dropped.
    chunks: BTreeMap<ChunkId, Chunk>,
    open: ChunkId,
}

/// The index, see the module documentation.
#[derive(Clone, Debug, Default)]
pub struct OriginIndex {
    /// One log per origin; a handful of regions, so a vector searched in order.
    logs: Vec<(RegionId, Log)>,
    next_id: ChunkId,
    /// Slots held, live or cleared (reported as a metric: it is what the index costs).
    len: usize,
}

impl OriginIndex {
    /// The position of `origin`'s log in `logs`, created with an empty open chunk if absent.
    fn log_of(&mut self, origin: RegionId) -> usize {
        if let Some(i) = self.logs.iter().position(|(r, _)| *r == origin) {
            return i;
        }
        let open = self.fresh_id();
        let chunks = BTreeMap::from([(open, Chunk::default())]);
        self.logs.push((origin, Log { chunks, open }));
        self.logs.len() - 1
    }

    fn fresh_id(&mut self) -> ChunkId {
        let id = self.next_id;
        // Four billion chunks of 4096 entries: more writes than a node lives to see.
        self.next_id = self.next_id.checked_add(1).expect("chunk ids exhausted");
        id
    }

    /// Records that `key` holds a register from `origin` stamped `hlc`; returns the slot the
    /// key's entry must name from now on.
    pub fn insert(&mut self, origin: RegionId, hlc: Hlc, key: &Bytes) -> Slot {
        let i = self.log_of(origin);
        let open = self.logs[i].1.open;
        if self.logs[i].1.chunks[&open].entries.len() >= CHUNK {
            let id = self.fresh_id();
            let log = &mut self.logs[i].1;
            log.open = id;
            log.chunks.insert(id, Chunk::default());
        }
        let log = &mut self.logs[i].1;
        let chunk = log.open;
        let c = log
            .chunks
            .get_mut(&chunk)
            .expect("the open chunk is never dropped");
        let pos = u32::try_from(c.entries.len()).expect("a chunk holds at most CHUNK entries");
        c.entries.push(Some((hlc, key.clone())));
        c.live += 1;
        c.max = c.max.max(hlc);
        self.len += 1;
        Slot { chunk, pos }
    }

    /// The key's entry no longer names `slot` of `origin` (the key moved on or was removed).
    /// Compacting the chunk moves entries: `moved(key, from, to)` is told of each, and must
    /// update the key's entry.
    pub fn release(
        &mut self,
        origin: RegionId,
        slot: Slot,
        mut moved: impl FnMut(&Bytes, Slot, Slot),
    ) {
        let Some(i) = self.logs.iter().position(|(r, _)| *r == origin) else {
            debug_assert!(false, "release from an origin never indexed");
            return;
        };
        let log = &mut self.logs[i].1;
        let Some(c) = log.chunks.get_mut(&slot.chunk) else {
            debug_assert!(false, "release from a dropped chunk");
            return;
        };
        let Some(e) = c.entries.get_mut(slot.pos as usize).and_then(Option::take) else {
            debug_assert!(false, "release of an empty slot");
            return;
        };
        drop(e);
        c.live -= 1;
        if c.live == 0 {
            self.len -= c.entries.len();
            if slot.chunk == log.open {
                c.entries.clear();
                c.max = Hlc::ZERO;
            } else {
                log.chunks.remove(&slot.chunk);
            }
        } else if c.live * 3 < c.entries.len() {
            let before = c.entries.len();
            let mut to = 0;
            for from in 0..before {
                let Some(e) = c.entries[from].take() else {
                    continue;
                };
                if from != to {
                    let at = |pos: usize| Slot {
                        chunk: slot.chunk,
                        pos: pos as u32,
                    };
                    moved(&e.1, at(from), at(to));
                }
                c.entries[to] = Some(e);
                to += 1;
            }
            c.entries.truncate(to);
            if c.entries.capacity() > 2 * to {
                c.entries.shrink_to_fit();
            }
            self.len -= before - to;
        }
    }

    /// Keys holding a register from `origin` newer than `after`, in no particular order.
    pub fn changed_since(&self, origin: RegionId, after: Hlc) -> impl Iterator<Item = &Bytes> {
        self.logs
            .iter()
            .filter(move |(r, _)| *r == origin)
            .flat_map(|(_, log)| log.chunks.values())
            .filter(move |c| c.max > after)
            .flat_map(move |c| {
                c.entries
                    .iter()
                    .flatten()
                    .filter(move |(h, _)| *h > after)
                    .map(|(_, k)| k)
            })
    }

    /// Slots held, live or cleared.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The greatest stamp ever indexed among the chunks still held (an upper bound of the
    /// greatest stamp the keys hold).
    pub fn max_hlc(&self) -> Hlc {
        self.logs
            .iter()
            .flat_map(|(_, log)| log.chunks.values())
            .map(|c| c.max)
            .max()
            .unwrap_or(Hlc::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeSet, HashMap};

    /// A model of the keys: the exact `(origin, key) -> (hlc, slot)` their entries record.
    #[derive(Default)]
    struct Keys(HashMap<(RegionId, Bytes), (Hlc, Slot)>);

    /// Like the store: the index hears of a key only when its stamp for `r` changes.
    fn set(ix: &mut OriginIndex, keys: &mut Keys, r: RegionId, k: &Bytes, h: Hlc) {
        if keys
            .0
            .get(&(r, k.clone()))
            .is_some_and(|(old, _)| *old == h)
        {
            return;
        }
        let slot = ix.insert(r, h, k);
        if let Some((_, old)) = keys.0.insert((r, k.clone()), (h, slot)) {
            release(ix, keys, r, old);
        }
    }

    fn remove(ix: &mut OriginIndex, keys: &mut Keys, r: RegionId, k: &Bytes) {
        if let Some((_, old)) = keys.0.remove(&(r, k.clone())) {
            release(ix, keys, r, old);
        }
    }

    fn release(ix: &mut OriginIndex, keys: &mut Keys, r: RegionId, old: Slot) {
        ix.release(r, old, |k, from, to| {
            let e = keys
                .0
                .get_mut(&(r, k.clone()))
                .expect("a moved entry's key exists");
            assert_eq!(e.1, from, "moved from where the key says");
            e.1 = to;
        });
    }

    fn answer(ix: &OriginIndex, r: RegionId, after: Hlc) -> BTreeSet<Bytes> {
        let keys: Vec<Bytes> = ix.changed_since(r, after).cloned().collect();
        let set: BTreeSet<Bytes> = keys.iter().cloned().collect();
        assert_eq!(set.len(), keys.len(), "a key answered twice");
        set
    }

    fn expected(keys: &Keys, r: RegionId, after: Hlc) -> BTreeSet<Bytes> {
        keys.0
            .iter()
            .filter(|((o, _), (h, _))| *o == r && *h > after)
            .map(|((_, k), _)| k.clone())
            .collect()
    }

    proptest! {
        /// Whatever the sequence of writes and removals, queries answer exactly what a full
        /// scan of the keys would, each key once, and the index never holds more than three
        /// slots per live entry.
        #[test]
        fn answers_like_a_scan(ops in proptest::collection::vec(
            (0u16..3, 0u16..400, 1u64..100_000, 0u8..10), 1..20_000),
            queries in proptest::collection::vec((0u16..3, 0u64..100_000), 1..8)) {
            let mut ix = OriginIndex::default();
            let mut keys = Keys::default();
            for (r, k, h, op) in ops {
                let k = Bytes::from(format!("k{k}"));
                if op == 0 {
                    remove(&mut ix, &mut keys, RegionId(r), &k);
                } else {
                    set(&mut ix, &mut keys, RegionId(r), &k, Hlc(h));
                }
            }
            for (r, after) in queries {
                let r = RegionId(r);
                prop_assert_eq!(answer(&ix, r, Hlc(after)), expected(&keys, r, Hlc(after)));
            }
            prop_assert!(ix.len() <= 3 * keys.0.len(), "{} slots for {} live", ix.len(), keys.0.len());
        }
    }

    #[test]
    fn rewriting_one_key_keeps_the_index_small() {
        let mut ix = OriginIndex::default();
        let mut keys = Keys::default();
        let k = Bytes::from_static(b"session");
        for h in 1..100_000 {
            set(&mut ix, &mut keys, RegionId(1), &k, Hlc(h));
        }
        assert!(ix.len() <= 3, "{} slots for one key", ix.len());
        assert_eq!(
            answer(&ix, RegionId(1), Hlc(99_998)),
            BTreeSet::from([k.clone()])
        );
        assert!(answer(&ix, RegionId(1), Hlc(99_999)).is_empty());
        remove(&mut ix, &mut keys, RegionId(1), &k);
        assert!(answer(&ix, RegionId(1), Hlc::ZERO).is_empty());
        assert_eq!(ix.len(), 0);
    }

    #[test]
    fn random_overwrites_stay_within_three_slots_per_live_entry() {
        let mut ix = OriginIndex::default();
        let mut keys = Keys::default();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for h in 1..400_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = Bytes::from(format!("k{}", x % 20_000));
            set(&mut ix, &mut keys, RegionId(2), &k, Hlc(h));
        }
        assert!(
            ix.len() <= 3 * keys.0.len(),
            "{} slots for {} live",
            ix.len(),
            keys.0.len()
        );
        assert_eq!(
            answer(&ix, RegionId(2), Hlc(390_000)),
            expected(&keys, RegionId(2), Hlc(390_000))
        );
    }
}
