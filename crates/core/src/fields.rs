//! A hash key's field registers: a sorted vector while small, a hash table once large.
//!
//! [`Fields`] replaces the `BTreeMap<Bytes, Reg<Option<Bytes>>>` that [`crate::crdt::Body`]
//! held. A B-tree allocates a whole leaf node on its first insert: 11 slots of a 32-byte key and
//! a 48-byte register plus the node header, 896 bytes (measured with a counting allocator),
//! whether the hash has one field or eleven. A session hash has a handful of fields, so that
//! leaf was most of the memory a session cost beyond its payload. A sorted vector of four
//! entries takes 320 bytes, and up to a few dozen entries it is no slower than the B-tree (see
//! [`SMALL_MAX`] and `search`).
//!
//! Past [`SMALL_MAX`] entries the fields move to a hash table, so that a hash of a million
//! fields still costs O(1) per write rather than a shift of half the vector. (They moved to a
//! B-tree first: its descent through a hundred thousand fields, a cache miss and a few key
//! comparisons per level, made `redis-benchmark`'s HSET, which writes one such hash, cost half
//! as much again as a SET; Redis keeps large hashes in a hash table too.) They stay there:
//! shrinking back would only matter for a hash that was once large, which is rare.
//!
//! Both representations iterate in ascending byte order of the field name ([`Fields::iter`];
//! a large one sorts its entries for it, which only whole-hash reads and encodings do), compare
//! equal when they hold the same entries, and serialize exactly as the B-tree map did, so the
//! wire and log formats are unchanged. What needs no order (a merge, a scan for a live field
//! or for stamps) uses [`Fields::iter_unordered`].

use crate::reg::Reg;
use bytes::Bytes;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

/// A large hash's table: seeded as the key table is ([`crate::seed`]), so that clients cannot
/// choose colliding field names.
type Table = hashbrown::HashMap<Bytes, FieldReg, crate::seed::Seeded>;
use std::fmt;

/// One field's register: `None` is a deleted field (`HDEL`).
pub type FieldReg = Reg<Option<Bytes>>;

/// The most entries held in the sorted vector; one more moves the fields to the hash table.
///
/// Inserting into the vector shifts the entries after the new one (80 bytes each), and still
/// beat the B-tree that large hashes used at first, at this size: 32 fields inserted in random order took 0.9 µs against 1.3 µs,
/// and a lookup 14 ns against 15 (measured).
pub const SMALL_MAX: usize = 32;

/// A hash key's field registers, ordered by field name. See the module documentation.
#[derive(Clone)]
pub struct Fields(Repr);

#[derive(Clone)]
enum Repr {
    /// At most [`SMALL_MAX`] entries, sorted by key bytes, keys unique.
    Small(Vec<(Bytes, FieldReg)>),
    /// More than [`SMALL_MAX`] entries at some point. Boxed so that `Fields` is no larger than
    /// the vector (24 bytes, the enum tag hides in the vector's capacity): every key's body
    /// carries one, strings included, and a large hash does not notice the extra pointer.
    #[allow(clippy::box_collection)] // the box is the point: see above
    Large(Box<Table>),
}

impl Fields {
    /// No fields; allocates nothing.
    pub const fn new() -> Fields {
        Fields(Repr::Small(Vec::new()))
    }

    /// Number of fields, deleted ones included.
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Small(v) => v.len(),
            Repr::Large(m) => m.len(),
        }
    }

    /// True when there is no field.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The register of field `key`.
    pub fn get(&self, key: &[u8]) -> Option<&FieldReg> {
        match &self.0 {
            Repr::Small(v) => search(v, key).ok().map(|i| &v[i].1),
            Repr::Large(m) => m.get(key),
        }
    }

    /// The register of field `key`, mutably.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut FieldReg> {
        match &mut self.0 {
            Repr::Small(v) => match search(v, key) {
                Ok(i) => Some(&mut v[i].1),
                Err(_) => None,
            },
            Repr::Large(m) => m.get_mut(key),
        }
    }

    /// True when field `key` is held.
    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Sets field `key` to `reg`; returns the register it replaced.
    pub fn insert(&mut self, key: Bytes, reg: FieldReg) -> Option<FieldReg> {
        let v = match &mut self.0 {
            Repr::Large(m) => return m.insert(key, reg),
            Repr::Small(v) => v,
        };
        match search(v, &key) {
            Ok(i) => Some(std::mem::replace(&mut v[i].1, reg)),
            Err(_) if v.len() >= SMALL_MAX => {
                let mut m: Table = std::mem::take(v).into_iter().collect();
                m.insert(key, reg);
                self.0 = Repr::Large(Box::new(m));
                None
            }
            Err(i) => {
                if v.len() == v.capacity() {
                    // Grow by half rather than Vec's doubling: a session hash that gains a
                    // fifth field should not pay for eight.
                    let want = (v.len() + v.len() / 2).clamp(4, SMALL_MAX);
                    v.reserve_exact(want - v.len());
                }
                v.insert(i, (key, reg));
                None
            }
        }
    }

    /// Removes field `key`; returns its register.
    pub fn remove(&mut self, key: &[u8]) -> Option<FieldReg> {
        match &mut self.0 {
            Repr::Small(v) => {
                let i = search(v, key).ok()?;
                let (_, r) = v.remove(i);
                shrink(v);
                Some(r)
            }
            Repr::Large(m) => m.remove(key),
        }
    }

    /// Keeps only the fields for which `keep` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(&Bytes, &mut FieldReg) -> bool) {
        match &mut self.0 {
            Repr::Small(v) => {
                v.retain_mut(|(k, r)| keep(k, r));
                shrink(v);
            }
            Repr::Large(m) => m.retain(|k, r| keep(k, r)),
        }
    }

    /// The fields in ascending byte order of their names. A large hash sorts its entries for
    /// this (n log n): use [`Fields::iter_unordered`] where the order does not matter.
    pub fn iter(&self) -> Iter<'_> {
        Iter(match &self.0 {
            Repr::Small(v) => IterRepr::Small(v.iter()),
            Repr::Large(m) => {
                let mut all: Vec<(&Bytes, &FieldReg)> = m.iter().collect();
                all.sort_unstable_by(|a, b| a.0.cmp(b.0));
                IterRepr::Large(all.into_iter())
            }
        })
    }

    /// The fields in no particular order (a large hash's table order, which depends on the
    /// process's random seed: nothing that leaves the process may depend on it).
    pub fn iter_unordered(&self) -> impl Iterator<Item = (&Bytes, &FieldReg)> {
        let (small, large) = match &self.0 {
            Repr::Small(v) => (Some(v.iter().map(|(k, r)| (k, r))), None),
            Repr::Large(m) => (None, Some(m.iter())),
        };
        small
            .into_iter()
            .flatten()
            .chain(large.into_iter().flatten())
    }

    /// The field names in ascending byte order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &Bytes> + ExactSizeIterator {
        self.iter().map(|(k, _)| k)
    }

    /// The registers in ascending byte order of their names.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &FieldReg> + ExactSizeIterator {
        self.iter().map(|(_, r)| r)
    }
}

/// The index of `key` in the sorted `v`, or where it would go (as `slice::binary_search`).
///
/// Halves the range down to 8 entries, then scans them. A plain `binary_search_by` took 16 ns
/// per lookup in a 4-field hash and 42 ns in a 32-field one, against 6 and 14 for the B-tree
/// (measured): each of its steps waits for the previous comparison, while a short scan's loads
/// run ahead. This takes 6 and 13.
fn search(v: &[(Bytes, FieldReg)], key: &[u8]) -> Result<usize, usize> {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let (mut lo, mut hi) = (0, v.len());
    while hi - lo > 8 {
        let mid = lo + (hi - lo) / 2;
        match v[mid].0.as_ref().cmp(key) {
            Less => lo = mid + 1,
            Equal => return Ok(mid),
            Greater => hi = mid,
        }
    }
    for (i, (k, _)) in v[lo..hi].iter().enumerate() {
        match k.as_ref().cmp(key) {
            Less => {}
            Equal => return Ok(lo + i),
            Greater => return Err(lo + i),
        }
    }
    Err(hi)
}

/// Gives back the memory of a vector left well below its capacity, with slack so that a hash
/// alternating between a field deleted and one added does not reallocate each time.
fn shrink(v: &mut Vec<(Bytes, FieldReg)>) {
    if v.capacity() > 2 * v.len() + 4 {
        v.shrink_to_fit();
    }
}

impl Default for Fields {
    fn default() -> Fields {
        Fields::new()
    }
}

impl fmt::Debug for Fields {
    /// Formats as the map it stands for, whatever the representation.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl PartialEq for Fields {
    /// Equal when the entries are, whatever the representations.
    fn eq(&self, other: &Fields) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Fields {}

impl From<BTreeMap<Bytes, FieldReg>> for Fields {
    fn from(m: BTreeMap<Bytes, FieldReg>) -> Fields {
        if m.len() > SMALL_MAX {
            Fields(Repr::Large(Box::new(m.into_iter().collect())))
        } else {
            let mut v = Vec::with_capacity(m.len());
            v.extend(m);
            Fields(Repr::Small(v))
        }
    }
}

impl FromIterator<(Bytes, FieldReg)> for Fields {
    /// Later entries win over earlier ones with the same name, as in a `BTreeMap`.
    fn from_iter<I: IntoIterator<Item = (Bytes, FieldReg)>>(iter: I) -> Fields {
        let mut v: Vec<(Bytes, FieldReg)> = iter.into_iter().collect();
        if v.len() > SMALL_MAX {
            // Inserted in order, so later entries win.
            let m: Table = v.into_iter().collect();
            return Fields(Repr::Large(Box::new(m)));
        }
        // A stable sort keeps equal names in input order; the dedup keeps the last of each.
        if !v.is_sorted_by(|a, b| a.0 < b.0) {
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v.dedup_by(|later, kept| {
                let same = later.0 == kept.0;
                if same {
                    std::mem::swap(later, kept);
                }
                same
            });
        }
        shrink(&mut v);
        Fields(Repr::Small(v))
    }
}

/// Iterator over a [`Fields`]' entries, in ascending byte order of the field names.
#[derive(Clone, Debug)]
pub struct Iter<'a>(IterRepr<'a>);

#[derive(Clone, Debug)]
enum IterRepr<'a> {
    Small(std::slice::Iter<'a, (Bytes, FieldReg)>),
    /// A large hash's entries, sorted by name.
    Large(std::vec::IntoIter<(&'a Bytes, &'a FieldReg)>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a Bytes, &'a FieldReg);

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            IterRepr::Small(i) => i.next().map(|(k, r)| (k, r)),
            IterRepr::Large(i) => i.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            IterRepr::Small(i) => i.size_hint(),
            IterRepr::Large(i) => i.size_hint(),
        }
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            IterRepr::Small(i) => i.next_back().map(|(k, r)| (k, r)),
            IterRepr::Large(i) => i.next_back(),
        }
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Fields {
    type Item = (&'a Bytes, &'a FieldReg);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl Serialize for Fields {
    /// As a map, entry by entry in key order: the bytes `BTreeMap` serialization produced.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (k, r) in self {
            map.serialize_entry(k, r)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Fields {
    /// As a map, through [`Fields::insert`]: entries from a peer may come unsorted or repeated
    /// (the last one wins, as in a `BTreeMap`), and the declared length is not trusted beyond
    /// [`SMALL_MAX`] for preallocation.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Fields, D::Error> {
        struct FieldsVisitor;

        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = Fields;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of hash fields")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Fields, A::Error> {
                let cap = access.size_hint().unwrap_or(0).min(SMALL_MAX);
                let mut fields = Fields(Repr::Small(Vec::with_capacity(cap)));
                while let Some((k, r)) = access.next_entry::<Bytes, FieldReg>()? {
                    fields.insert(k, r);
                }
                if let Repr::Small(v) = &mut fields.0 {
                    shrink(v);
                }
                Ok(fields)
            }
        }

        deserializer.deserialize_map(FieldsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hlc::Hlc;
    use crate::stamp::{RegionId, Stamp};
    use proptest::prelude::*;

    fn reg(ms: u64, v: Option<u8>) -> FieldReg {
        Reg::new(
            Stamp::new(Hlc::new(ms, 0), RegionId(1)),
            v.map(|b| Bytes::from(vec![b])),
        )
    }

    /// Field names whose byte order differs from their numeric order and from their lengths
    /// (`"10" < "9"`, `"k1" < "k1x"`), so a representation sorting any other way shows.
    fn name(i: u8) -> Bytes {
        if i.is_multiple_of(3) {
            Bytes::from(format!("k{i}x"))
        } else {
            Bytes::from(format!("k{i}"))
        }
    }

    fn is_large(f: &Fields) -> bool {
        matches!(f.0, Repr::Large(_))
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u8, u64, Option<u8>),
        Get(u8),
        Remove(u8),
        /// Keeps the fields whose stamp's milliseconds are at least this; bumps the rest.
        Retain(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (0u8..100, 0u64..50, proptest::option::of(any::<u8>()))
                .prop_map(|(k, ms, v)| Op::Insert(k, ms, v)),
            2 => (0u8..100).prop_map(Op::Get),
            1 => (0u8..100).prop_map(Op::Remove),
            1 => (0u64..25).prop_map(Op::Retain),
        ]
    }

    fn check_same(f: &Fields, m: &BTreeMap<Bytes, FieldReg>) -> Result<(), TestCaseError> {
        prop_assert_eq!(f.len(), m.len());
        prop_assert_eq!(f.is_empty(), m.is_empty());
        prop_assert!(f.iter().eq(m.iter()));
        prop_assert!(f.iter().rev().eq(m.iter().rev()));
        prop_assert!(f.keys().eq(m.keys()));
        prop_assert!(f.values().eq(m.values()));
        let mut unordered: Vec<(&Bytes, &FieldReg)> = f.iter_unordered().collect();
        unordered.sort_by(|a, b| a.0.cmp(b.0));
        prop_assert!(unordered.into_iter().eq(m.iter()));
        prop_assert_eq!(f, &Fields::from(m.clone()));
        prop_assert_eq!(f, &m.clone().into_iter().collect::<Fields>());
        prop_assert_eq!(format!("{f:?}"), format!("{m:?}"));
        if let Repr::Small(v) = &f.0 {
            prop_assert!(v.len() <= SMALL_MAX);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// `Fields` behaves as the `BTreeMap` it replaces, across the move to the large form.
        #[test]
        fn agrees_with_btreemap(ops in proptest::collection::vec(op(), 0..300)) {
            let mut f = Fields::new();
            let mut m = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(k, ms, v) => {
                        prop_assert_eq!(f.insert(name(k), reg(ms, v)), m.insert(name(k), reg(ms, v)));
                    }
                    Op::Get(k) => {
                        prop_assert_eq!(f.get(&name(k)), m.get(&name(k)));
                        prop_assert_eq!(f.contains_key(&name(k)), m.contains_key(&name(k)));
                        if let (Some(a), Some(b)) = (f.get_mut(&name(k)), m.get_mut(&name(k))) {
                            prop_assert_eq!(&*a, &*b);
                            a.stamp.hlc = a.stamp.hlc.next();
                            b.stamp.hlc = b.stamp.hlc.next();
                        }
                    }
                    Op::Remove(k) => prop_assert_eq!(f.remove(&name(k)), m.remove(&name(k))),
                    Op::Retain(min) => {
                        let keep = |_: &Bytes, r: &mut FieldReg| {
                            let kept = r.stamp.hlc.ms() >= min;
                            r.stamp.hlc = r.stamp.hlc.next();
                            kept
                        };
                        f.retain(keep);
                        m.retain(keep);
                    }
                }
                check_same(&f, &m)?;
            }
        }

        /// Building from unsorted entries with repeated names: the last of each wins.
        #[test]
        fn collects_like_btreemap(entries in proptest::collection::vec((0u8..60, 0u64..9), 0..80)) {
            let entries: Vec<_> = entries.into_iter().map(|(k, ms)| (name(k), reg(ms, None))).collect();
            let f: Fields = entries.iter().cloned().collect();
            let m: BTreeMap<_, _> = entries.into_iter().collect();
            check_same(&f, &m)?;
        }
    }

    /// `search` answers as `binary_search` does, for every size up to the threshold and every
    /// key present, between two entries, or outside them.
    #[test]
    fn search_agrees_with_binary_search() {
        for n in 0..=SMALL_MAX as u8 {
            let v: Vec<(Bytes, FieldReg)> = (0..n)
                .map(|i| (Bytes::from(vec![2 * i + 1]), reg(1, None)))
                .collect();
            for probe in 0..=2 * n + 1 {
                let key = [probe];
                let want = v.binary_search_by(|(k, _)| k.as_ref().cmp(&key[..]));
                assert_eq!(search(&v, &key), want, "{n} entries, probe {probe}");
            }
        }
    }

    /// Inserts past the threshold move to the B-tree; equality ignores the representation.
    #[test]
    fn crosses_threshold() {
        let mut f = Fields::new();
        for i in 0..SMALL_MAX as u8 {
            f.insert(name(i), reg(1, Some(i)));
        }
        assert!(!is_large(&f));
        let small = f.clone();
        f.insert(name(0), reg(2, None));
        assert!(!is_large(&f), "an overwrite does not grow");
        f.insert(name(200), reg(1, None));
        assert!(is_large(&f));
        f.remove(&name(200));
        f.insert(name(0), reg(1, Some(0)));
        assert!(is_large(&f));
        assert_eq!(f, small);
        assert_eq!(small, f);
    }

    /// The point of boxing the large form: `Fields` costs a body no more than a `Vec` (and no
    /// more than the `BTreeMap` it replaced). Layout is not guaranteed, hence a test.
    #[test]
    fn as_small_as_a_vec() {
        use std::mem::size_of;
        assert_eq!(size_of::<Fields>(), size_of::<Vec<(Bytes, FieldReg)>>());
        assert!(size_of::<Fields>() <= size_of::<BTreeMap<Bytes, FieldReg>>());
    }

    fn fields(n: u8) -> BTreeMap<Bytes, FieldReg> {
        (0..n)
            .map(|i| (name(i), reg(u64::from(i), (i % 4 != 0).then_some(i))))
            .collect()
    }

    /// The wire and log formats: a `Fields` encodes to the bytes its `BTreeMap` did, and those
    /// bytes decode to an equal `Fields`, in both representations.
    #[test]
    fn encodes_as_btreemap() {
        for n in [0, 1, 4, SMALL_MAX as u8, SMALL_MAX as u8 + 1, 100] {
            let m = fields(n);
            let f = Fields::from(m.clone());
            assert_eq!(is_large(&f), usize::from(n) > SMALL_MAX);
            let bytes = rmp_serde::to_vec(&m).unwrap();
            assert_eq!(rmp_serde::to_vec(&f).unwrap(), bytes, "{n} fields");
            assert_eq!(
                rmp_serde::to_vec_named(&f).unwrap(),
                rmp_serde::to_vec_named(&m).unwrap()
            );
            let back: Fields = rmp_serde::from_slice(&bytes).unwrap();
            assert_eq!(back, f, "{n} fields");
            assert_eq!(is_large(&back), usize::from(n) > SMALL_MAX);
        }
    }

    /// A peer's map with unsorted and repeated names decodes as a `BTreeMap` would, and a
    /// declared length far beyond the entries present fails without allocating for it.
    #[test]
    fn decodes_untrusted_maps() {
        let entries: Vec<(Bytes, FieldReg)> = [5, 1, 9, 1, 3]
            .into_iter()
            .enumerate()
            .map(|(i, k)| (name(k), reg(i as u64, Some(k))))
            .collect();
        // Serialize the entries as one map in this order, repeats included.
        struct Raw<'a>(&'a [(Bytes, FieldReg)]);
        impl Serialize for Raw<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut map = s.serialize_map(Some(self.0.len()))?;
                for (k, r) in self.0 {
                    map.serialize_entry(k, r)?;
                }
                map.end()
            }
        }
        let bytes = rmp_serde::to_vec(&Raw(&entries)).unwrap();
        let f: Fields = rmp_serde::from_slice(&bytes).unwrap();
        let m: BTreeMap<Bytes, FieldReg> = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(f, Fields::from(m.clone()));
        assert!(f.iter().eq(m.iter()));
        assert_eq!(f.len(), 4);

        // map32 header declaring 2^32 - 1 entries, followed by none.
        let lying = [0xdf, 0xff, 0xff, 0xff, 0xff];
        assert!(rmp_serde::from_slice::<Fields>(&lying).is_err());
    }
}
