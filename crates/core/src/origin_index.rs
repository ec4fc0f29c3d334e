//! The origin index: for each origin region, which keys received a register it wrote, and how
//! new. It answers catch-up's question "which keys hold a register from origin `r` newer than
//! `h`?" in time proportional to the writes since `h`, not to the key space.
//!
//! It is a **history**, not an exact map. A write appends `(hlc, key)` to its origin's log and
//! touches nothing else: no entry is looked up, cleared or moved when a key is overwritten. So
//! an answer may name a key twice, or name a key whose register from `r` has since been
//! replaced; the caller filters (catch-up sends a key only with the registers the requester
//! lacks, and sends nothing for a key with none). What the index guarantees is the other
//! direction: **every key holding a register from `r` stamped above `h` is named**, or the
//! query says it cannot tell (below).
//!
//! Why not exact: the two exact versions before this one cost most of a replicated write.
//! A B-tree of `(origin, hlc, key)` paid a removal at a random place per write (12% of all CPU
//! with three regions replicating). An append-only log whose keys recorded their slots, cleared
//! the old slot on overwrite and compacted chunks (telling moved keys where they went) still
//! spent 45% of a remote delta's merge on that bookkeeping (the per-key slot list, the
//! cleared slot's cache miss, half a key lookup per write for the moves): measured with
//! `cargo run --release -p sessionmesh-core --example apply_cost`.
//!
//! Memory stays proportional to the keys, not the writes: the logs together keep about
//! `HISTORY ×` (keys held) entries (plus one open chunk each); beyond that, a log that grows
//! drops its oldest chunk, remembering the greatest stamp it dropped (the log's *floor*). A query from below the floor cannot be
//! answered from the log and returns `None`; the store then offers every key, so catch-up
//! stays correct and costs one pass over the key space. That only happens when the requester
//! missed more of `r`'s writes than there are keys, when most keys are likely in the answer
//! anyway.
//!
//! Keys are copied into a chunk's byte arena rather than shared (`Bytes` clones): an append
//! then writes to memory that is already in the cache instead of incrementing a reference
//! count next to the key's own allocation, and a chunk is freed in three deallocations.
//! Chunks close in append order and stamps mostly grow with it, so a query for recent changes
//! skips every chunk whose greatest stamp is older, and reads only the last few.

use crate::hlc::Hlc;
use crate::stamp::RegionId;
use std::collections::VecDeque;

/// Entries the logs keep, together, per key held before a growing log drops its oldest chunks.
pub const HISTORY: usize = 2;

/// A chunk closes at this many entries, or earlier in a small store (see [`chunk_cap`]).
const CHUNK: usize = 4096;

/// A chunk also closes once its keys take this many bytes (keys may be large).
const CHUNK_BYTES: usize = 1 << 20;

/// How many entries a new chunk takes when `keys` keys are held: an eighth of the keys, between
/// 64 and [`CHUNK`], so that the oldest chunk (the unit of trimming) is small next to the
/// history kept, and a small store's index stays small.
fn chunk_cap(keys: usize) -> usize {
    (keys / 8).clamp(MIN_CHUNK, CHUNK)
}

/// The smallest chunk: each origin's open chunk may hold this many entries however few keys
/// the store holds, a constant per replica (per shard of a region) that bounds on memory
/// allow for.
pub const MIN_CHUNK: usize = 64;

#[derive(Clone, Debug, Default)]
struct Chunk {
    /// Each entry's stamp.
    hlcs: Vec<Hlc>,
    /// Where each entry's key ends in `bytes`.
    ends: Vec<u32>,
    /// The entries' keys, back to back.
    bytes: Vec<u8>,
    /// The greatest stamp appended.
    max: Hlc,
    /// Entries it takes before it closes.
    cap: usize,
}

impl Chunk {
    fn new(cap: usize) -> Chunk {
        Chunk {
            hlcs: Vec::with_capacity(cap),
            ends: Vec::with_capacity(cap),
            cap,
            ..Chunk::default()
        }
    }

    fn full(&self) -> bool {
        self.hlcs.len() >= self.cap || self.bytes.len() >= CHUNK_BYTES
    }

    #[allow(clippy::expect_used, reason = "a chunk is cut long before 4 GiB")]
    fn push(&mut self, hlc: Hlc, key: &[u8]) {
        self.bytes.extend_from_slice(key);
        // A chunk closes at 1 MiB and a key is far below 4 GiB, so the end fits.
        self.ends
            .push(u32::try_from(self.bytes.len()).expect("a chunk stays under 4 GiB"));
        self.hlcs.push(hlc);
        self.max = self.max.max(hlc);
    }

    fn entries(&self) -> impl Iterator<Item = (Hlc, &[u8])> {
        let starts = std::iter::once(0).chain(self.ends.iter().map(|e| *e as usize));
        self.hlcs
            .iter()
            .zip(starts.zip(self.ends.iter()))
            .map(|(h, (s, e))| (*h, &self.bytes[s..*e as usize]))
    }
}

#[derive(Clone, Debug, Default)]
struct Log {
    /// Oldest first; the last is the open one.
    chunks: VecDeque<Chunk>,
    /// Entries in `chunks`.
    len: usize,
    /// The greatest stamp among the entries dropped: a query from below it is not answered.
    floor: Hlc,
    /// The greatest stamp ever appended (dropped entries included).
    max: Hlc,
}

/// The index, see the module documentation.
#[derive(Clone, Debug, Default)]
pub struct OriginIndex {
    /// One log per origin; a handful of regions, so a vector searched in order.
    logs: Vec<(RegionId, Log)>,
    /// Entries held, in every log.
    len: usize,
    /// The greatest stamp ever appended.
    max: Hlc,
}

impl OriginIndex {
    /// Records that `key` received a register from `origin` stamped `hlc`. `keys` is how many
    /// keys the store holds: the log keeps about [`HISTORY`] entries per key.
    #[allow(
        clippy::expect_used,
        reason = "a chunk was pushed just above when none had room"
    )]
    pub fn insert(&mut self, origin: RegionId, hlc: Hlc, key: &[u8], keys: usize) {
        let i = match self.logs.iter().position(|(r, _)| *r == origin) {
            Some(i) => i,
            None => {
                self.logs.push((origin, Log::default()));
                self.logs.len() - 1
            }
        };
        let log = &mut self.logs[i].1;
        if log.chunks.back().is_none_or(Chunk::full) {
            // Trim only when a chunk closes: the check is then off the per-write path. The
            // bound is on all logs together, but only the log that grows is trimmed, so an
            // origin that writes little keeps its history while a busy one cycles through.
            while self.len > HISTORY * keys {
                let Some(old) = log.chunks.pop_front() else {
                    break;
                };
                log.floor = log.floor.max(old.max);
                log.len -= old.hlcs.len();
                self.len -= old.hlcs.len();
            }
            log.chunks.push_back(Chunk::new(chunk_cap(keys)));
        }
        log.chunks
            .back_mut()
            .expect("a chunk was just opened if none was")
            .push(hlc, key);
        log.max = log.max.max(hlc);
        log.len += 1;
        self.len += 1;
        self.max = self.max.max(hlc);
    }

    /// Keys that received a register from `origin` stamped above `after`: every key that holds
    /// such a register is among them, and the same key may come more than once. `None` when
    /// the log no longer reaches back to `after` (see the module documentation).
    pub fn changed_since(
        &self,
        origin: RegionId,
        after: Hlc,
    ) -> Option<impl Iterator<Item = &[u8]>> {
        let log = self.logs.iter().find(|(r, _)| *r == origin).map(|(_, l)| l);
        if log.is_some_and(|l| after < l.floor) {
            return None;
        }
        Some(
            log.into_iter()
                .flat_map(|l| l.chunks.iter())
                .filter(move |c| c.max > after)
                .flat_map(move |c| c.entries().filter(move |(h, _)| *h > after))
                .map(|(_, k)| k),
        )
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The greatest stamp ever indexed (at least the greatest stamp any key holds).
    pub fn max_hlc(&self) -> Hlc {
        self.max
    }

    /// The greatest stamp of `origin` ever indexed (at least the greatest register of
    /// `origin` any key holds); zero if none.
    pub fn max_of(&self, origin: RegionId) -> Hlc {
        self.logs
            .iter()
            .find(|(r, _)| *r == origin)
            .map_or(Hlc::ZERO, |(_, l)| l.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeSet, HashMap, HashSet};

    /// A model of the keys: each `(origin, key)`'s greatest stamp, and the distinct keys.
    #[derive(Default)]
    struct Keys(HashMap<(RegionId, Vec<u8>), Hlc>, HashSet<Vec<u8>>);

    impl Keys {
        fn count(&self) -> usize {
            self.1.len()
        }
    }

    /// Like the store: a write appends its stamp, whatever the key held.
    fn set(ix: &mut OriginIndex, keys: &mut Keys, r: RegionId, k: &[u8], h: Hlc) {
        let e = keys.0.entry((r, k.to_vec())).or_insert(h);
        *e = (*e).max(h);
        keys.1.insert(k.to_vec());
        let n = keys.count();
        ix.insert(r, h, k, n);
    }

    fn expected(keys: &Keys, r: RegionId, after: Hlc) -> BTreeSet<Vec<u8>> {
        keys.0
            .iter()
            .filter(|((o, _), h)| *o == r && **h > after)
            .map(|((_, k), _)| k.clone())
            .collect()
    }

    proptest! {
        /// Whatever the writes, a query names every key holding a register from the origin
        /// newer than asked, or says it cannot tell; it names no key that never received
        /// such a register; and the index holds about `HISTORY` entries per key.
        #[test]
        fn answers_cover_a_scan(ops in proptest::collection::vec(
            (0u16..3, 0u16..400, 1u64..100_000), 1..20_000),
            queries in proptest::collection::vec((0u16..3, 0u64..100_000), 1..8)) {
            let mut ix = OriginIndex::default();
            let mut keys = Keys::default();
            let mut written: HashMap<(RegionId, Vec<u8>), Vec<Hlc>> = HashMap::new();
            for (r, k, h) in ops {
                let k = format!("k{k}").into_bytes();
                set(&mut ix, &mut keys, RegionId(r), &k, Hlc(h));
                written.entry((RegionId(r), k)).or_default().push(Hlc(h));
            }
            for (r, after) in queries {
                let r = RegionId(r);
                let Some(answer) = ix.changed_since(r, Hlc(after)) else {
                    // Only once the log dropped entries newer than `after`.
                    let log = &ix.logs.iter().find(|(o, _)| *o == r).unwrap().1;
                    prop_assert!(log.floor > Hlc(after));
                    continue;
                };
                let answer: BTreeSet<Vec<u8>> = answer.map(<[u8]>::to_vec).collect();
                let want = expected(&keys, r, Hlc(after));
                prop_assert!(answer.is_superset(&want), "missing {:?}", want.difference(&answer).collect::<Vec<_>>());
                for k in &answer {
                    prop_assert!(written[&(r, k.clone())].iter().any(|h| *h > Hlc(after)), "named {k:?} for nothing");
                }
            }
            let n = keys.count();
            let bound = HISTORY * n + ix.logs.len() * chunk_cap(n);
            prop_assert!(ix.len() <= bound, "{} entries for {} keys", ix.len(), n);
        }
    }

    #[test]
    fn rewriting_one_key_keeps_the_index_small() {
        let mut ix = OriginIndex::default();
        let mut keys = Keys::default();
        let k = b"session";
        for h in 1..100_000 {
            set(&mut ix, &mut keys, RegionId(1), k, Hlc(h));
        }
        assert!(ix.len() <= 2 * 64 + 2, "{} entries for one key", ix.len());
        let answer: Vec<&[u8]> = ix
            .changed_since(RegionId(1), Hlc(99_998))
            .expect("recent writes are kept")
            .collect();
        assert_eq!(answer, vec![&k[..]]);
        assert_eq!(
            ix.changed_since(RegionId(1), Hlc(99_999)).unwrap().count(),
            0
        );
        // Long gone: the log cannot tell, and says so.
        assert!(ix.changed_since(RegionId(1), Hlc(5)).is_none());
        assert!(ix.changed_since(RegionId(1), Hlc::ZERO).is_none());
        // An origin never heard of: nothing changed.
        assert_eq!(ix.changed_since(RegionId(2), Hlc::ZERO).unwrap().count(), 0);
        assert_eq!(ix.max_hlc(), Hlc(99_999));
    }

    #[test]
    fn random_overwrites_stay_within_the_history_bound() {
        let mut ix = OriginIndex::default();
        let mut keys = Keys::default();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for h in 1..400_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = format!("k{}", x % 20_000).into_bytes();
            set(&mut ix, &mut keys, RegionId(2), &k, Hlc(h));
        }
        let n = keys.count();
        assert!(
            ix.len() <= HISTORY * n + chunk_cap(n),
            "{} entries for {} keys",
            ix.len(),
            n
        );
        // The last 20k writes are all kept: a query for them is exact.
        let answer: BTreeSet<Vec<u8>> = ix
            .changed_since(RegionId(2), Hlc(390_000))
            .expect("recent writes are kept")
            .map(<[u8]>::to_vec)
            .collect();
        assert_eq!(answer, expected(&keys, RegionId(2), Hlc(390_000)));
    }

    /// Large keys close a chunk early, so a chunk's arena stays small.
    #[test]
    fn large_keys_close_chunks_by_size() {
        let mut ix = OriginIndex::default();
        let big = vec![b'k'; 300_000];
        for h in 1..=8u64 {
            ix.insert(RegionId(1), Hlc(h), &big, 1_000);
        }
        let log = &ix.logs[0].1;
        assert!(log.chunks.len() >= 2, "{} chunks", log.chunks.len());
        assert!(log
            .chunks
            .iter()
            .all(|c| c.bytes.len() < CHUNK_BYTES + big.len()));
        assert_eq!(ix.changed_since(RegionId(1), Hlc(7)).unwrap().count(), 1);
    }
}
