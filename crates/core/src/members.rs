//! A set key's members: an add-wins observed-remove set (OR-set), one *dot* per member and
//! region.
//!
//! Redis Active-Active's rule for sets, and what the session stacks that keep an index in a set
//! (Spring Session's principal index) need: a member added in one region while another region
//! concurrently removes it stays. A plain last-writer-wins register per member cannot say that
//! (the remove could carry the greater stamp); an OR-set can, because a remove deletes only the
//! adds it *observed*.
//!
//! Each member keeps, per region that added it, the [`Dot`] of that region's latest add: the
//! add's stamp and, once a remove has observed that add, the remove's stamp. A member is present
//! while one of its dots is not removed.
//!
//! - `SADD` in region `r` writes the dot `(now, not removed)` for `r`. Its stamp is greater than
//!   every earlier add of `r`, so it replaces `r`'s previous dot whether removed or not.
//! - `SREM` marks every dot it sees removed, with its own stamp. An add made concurrently
//!   elsewhere is a dot it did not see — a different region's, or the same region's with a
//!   greater stamp — and survives the merge: **add wins**.
//! - Merge keeps, per region, the greater dot in the order (add stamp, removal), where "not
//!   removed" is below every removal. A total order's maximum is a join: commutative,
//!   associative, idempotent (tested below).
//!
//! Per region one dot suffices because one region's adds of a member are ordered by its clock:
//! a remove that observed add `a` of region `r` observed every earlier add of `r` as well (they
//! were replaced by `a` wherever `a` arrived), and a later add of `r` has a greater stamp and
//! wins over the removed `a`.
//!
//! Key-level operations are the key's, not the set's: `DEL` (and expiry, `SET`) end the
//! incarnation the dots belong to ([`crate::crdt`]'s causal length), so a `DEL` still wins over
//! adds made without having seen it. Removed dots stay in the key, as deleted hash fields do,
//! until the key itself is deleted or replaced: they are what makes a late, older add lose.
//!
//! Both stamps of a dot are registers for replication: a dot is shipped when either is new to
//! the peer ([`Members::filtered`]), whole, since the receiver needs the add to know which dot
//! a removal removes.

use crate::stamp::{RegionId, Stamp};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One region's latest add of a member, and the remove that observed it, if any.
///
/// Field order is the merge order: greater add first, then removed over not removed (`None`
/// sorts first), then the later removal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dot {
    /// The add's stamp; its region is the dot's region.
    pub add: Stamp,
    /// The stamp of the remove that observed this add.
    pub removed: Option<Stamp>,
}

impl Dot {
    /// A live add at `s`.
    pub fn added(s: Stamp) -> Dot {
        Dot {
            add: s,
            removed: None,
        }
    }

    /// The region whose add this is.
    pub fn region(&self) -> RegionId {
        self.add.region
    }

    /// True while no remove has observed it.
    pub fn is_live(&self) -> bool {
        self.removed.is_none()
    }
}

/// One member's dots, at most one per region, sorted by region.
pub type Dots = Vec<Dot>;

/// Joins `theirs` into `mine`; returns how many of `theirs` lost to a greater dot.
fn merge_dots(mine: &mut Dots, theirs: &[Dot]) -> u64 {
    let mut lost = 0;
    for t in theirs {
        match mine.binary_search_by_key(&t.region(), Dot::region) {
            Ok(i) => {
                if mine[i] < *t {
                    mine[i] = *t;
                } else if mine[i] != *t {
                    lost += 1;
                }
            }
            Err(i) => mine.insert(i, *t),
        }
    }
    lost
}

/// A set key's members with their dots, in byte order of the member.
///
/// A B-tree, so that `SMEMBERS` and `SSCAN` walk members in one stable order in every region
/// (the differential tests compare sets unordered; Redis's own order is its hash table's).
/// Boxed, and absent while empty: every key's body carries a `Members`, and a session hash
/// or a string should not pay the 24 bytes of an empty map for it (8 here). Encoded as the
/// map itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Members(Option<Box<Map>>);

type Map = BTreeMap<Bytes, Dots>;

/// No member, for borrowing.
static EMPTY: Map = BTreeMap::new();

impl Serialize for Members {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.map().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Members, D::Error> {
        let m = Map::deserialize(d)?;
        Ok(Members((!m.is_empty()).then(|| Box::new(m))))
    }
}

impl Members {
    /// No member; allocates nothing.
    pub const fn new() -> Members {
        Members(None)
    }

    fn map(&self) -> &Map {
        self.0.as_deref().unwrap_or(&EMPTY)
    }

    fn map_mut(&mut self) -> &mut Map {
        self.0.get_or_insert_with(Default::default)
    }

    /// Drops the box once nothing is left in it.
    fn tidy(&mut self) {
        if self.0.as_ref().is_some_and(|m| m.is_empty()) {
            self.0 = None;
        }
    }

    /// True when no dot is held (removed ones included).
    pub fn is_empty(&self) -> bool {
        self.map().is_empty()
    }

    /// Members held, removed ones included (what a size limit counts).
    pub fn held(&self) -> usize {
        self.map().len()
    }

    /// True when `m` is a present member.
    pub fn contains(&self, m: &[u8]) -> bool {
        self.map()
            .get(m)
            .is_some_and(|d| d.iter().any(Dot::is_live))
    }

    /// The present members, in byte order.
    pub fn live(&self) -> impl DoubleEndedIterator<Item = &Bytes> + '_ {
        self.map()
            .iter()
            .filter(|(_, d)| d.iter().any(Dot::is_live))
            .map(|(m, _)| m)
    }

    /// Number of present members.
    pub fn live_count(&self) -> usize {
        self.map()
            .values()
            .filter(|d| d.iter().any(Dot::is_live))
            .count()
    }

    /// True when some member is present.
    pub fn any_live(&self) -> bool {
        self.map().values().any(|d| d.iter().any(Dot::is_live))
    }

    /// A member's dots.
    pub fn dots(&self, m: &[u8]) -> Option<&Dots> {
        self.map().get(m)
    }

    /// Every member with its dots.
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &Dots)> + '_ {
        self.map().iter()
    }

    /// Puts `dots` in as member `m`'s (building a delta).
    pub fn insert(&mut self, m: Bytes, dots: Dots) {
        self.map_mut().insert(m, dots);
    }

    /// The delta of an add of `m` at `s`.
    pub fn add(&mut self, m: Bytes, s: Stamp) {
        self.map_mut().insert(m, vec![Dot::added(s)]);
    }

    /// The delta of a remove at `s` of `m`, whose dots are `seen`: every live dot seen, marked
    /// removed. `None` when nothing live was seen (the member was not present).
    pub fn removal(seen: &Dots, s: Stamp) -> Option<Dots> {
        let out: Dots = seen
            .iter()
            .filter(|d| d.is_live())
            .map(|d| Dot {
                add: d.add,
                removed: Some(s),
            })
            .collect();
        (!out.is_empty()).then_some(out)
    }

    /// Joins `other` in; returns how many of its dots lost.
    pub fn merge(&mut self, other: &Members) -> u64 {
        if other.is_empty() {
            return 0;
        }
        let mut lost = 0;
        let mine = self.map_mut();
        for (m, d) in other.map() {
            match mine.get_mut(m) {
                Some(mine) => lost += merge_dots(mine, d),
                None => {
                    mine.insert(m.clone(), d.clone());
                }
            }
        }
        lost
    }

    /// Calls `f` with every stamp held: each dot's add and removal.
    pub fn for_each_stamp(&self, mut f: impl FnMut(Stamp)) {
        for d in self.map().values().flatten() {
            f(d.add);
            if let Some(r) = d.removed {
                f(r);
            }
        }
    }

    /// Number of dots (the registers a delete makes lose).
    pub fn dot_count(&self) -> u64 {
        self.map().values().map(|d| d.len() as u64).sum()
    }

    /// Keeps the dots one of whose stamps passes `keep` (whole: see the module docs); drops
    /// members left without a dot.
    pub fn retain(&mut self, keep: &impl Fn(Stamp) -> bool) {
        if let Some(m) = self.0.as_mut() {
            m.retain(|_, d| {
                d.retain(|d| keep(d.add) || d.removed.is_some_and(keep));
                !d.is_empty()
            });
        }
        self.tidy();
    }

    /// [`Members::retain`] on a copy.
    pub fn filtered(&self, keep: &impl Fn(Stamp) -> bool) -> Members {
        let mut out = Members::new();
        for (m, d) in self.map() {
            let kept: Dots = d
                .iter()
                .filter(|d| keep(d.add) || d.removed.is_some_and(keep))
                .copied()
                .collect();
            if !kept.is_empty() {
                out.map_mut().insert(m.clone(), kept);
            }
        }
        out
    }

    /// Drops the dots added before `reset` (a `SET`, or a replacing write, made at `reset`
    /// ended them); returns how many were dropped.
    pub fn drop_before(&mut self, reset: Stamp) -> u64 {
        let before = self.dot_count();
        if let Some(m) = self.0.as_mut() {
            m.retain(|_, d| {
                d.retain(|d| d.add >= reset);
                !d.is_empty()
            });
        }
        self.tidy();
        before - self.dot_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hlc::Hlc;
    use proptest::prelude::*;

    fn st(ms: u64, r: u16) -> Stamp {
        Stamp::new(Hlc::new(ms, 0), RegionId(r))
    }

    fn m(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    /// A region's replica of one set, applying its own operations as deltas (as the commands
    /// do) and merging others' states.
    #[derive(Clone, Default)]
    struct Site(Members);

    impl Site {
        fn sadd(&mut self, x: &str, s: Stamp) {
            let mut d = Members::new();
            d.add(m(x), s);
            self.0.merge(&d);
        }
        fn srem(&mut self, x: &str, s: Stamp) {
            let Some(dots) = self.0.dots(x.as_bytes()) else {
                return;
            };
            if let Some(r) = Members::removal(dots, s) {
                let mut d = Members::new();
                d.insert(m(x), r);
                self.0.merge(&d);
            }
        }
    }

    #[test]
    fn a_concurrent_add_survives_a_remove() {
        let (mut a, mut b) = (Site::default(), Site::default());
        a.sadd("alice", st(1, 1));
        b.0.merge(&a.0);
        // Partitioned: region 1 removes, region 2 adds again (with a smaller clock even).
        a.srem("alice", st(10, 1));
        b.sadd("alice", st(5, 2));
        let mut x = a.0.clone();
        x.merge(&b.0);
        let mut y = b.0.clone();
        y.merge(&a.0);
        assert_eq!(x, y);
        assert!(x.contains(b"alice"), "add wins: {x:?}");
    }

    #[test]
    fn an_observed_add_is_removed_and_a_late_copy_of_it_stays_removed() {
        let (mut a, mut b) = (Site::default(), Site::default());
        a.sadd("bob", st(1, 1));
        let old = a.0.clone();
        b.0.merge(&a.0);
        b.srem("bob", st(2, 2));
        a.0.merge(&b.0);
        assert!(!a.0.contains(b"bob"));
        // The add arrives again, late (a duplicate from a retransmission).
        a.0.merge(&old);
        assert!(!a.0.contains(b"bob"));
        // Region 1 re-adds after seeing the remove: present again everywhere.
        a.sadd("bob", st(3, 1));
        b.0.merge(&a.0);
        assert!(b.0.contains(b"bob"));
    }

    #[test]
    fn the_same_region_adding_after_removing_elsewhere_concurrently() {
        // Region 1 adds twice (the second add not seen by region 2's remove): present.
        let (mut a, mut b) = (Site::default(), Site::default());
        a.sadd("c", st(1, 1));
        b.0.merge(&a.0);
        a.sadd("c", st(4, 1));
        b.srem("c", st(5, 2));
        a.0.merge(&b.0);
        assert!(a.0.contains(b"c"));
    }

    #[test]
    fn dropping_before_a_reset() {
        let mut s = Site::default();
        s.sadd("a", st(1, 1));
        s.sadd("b", st(3, 2));
        assert_eq!(s.0.drop_before(st(2, 1)), 1);
        assert_eq!(s.0.live().collect::<Vec<_>>(), vec![&m("b")]);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Add(u8, u8),
        Rem(u8, u8),
        Sync(u8, u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..3, 0u8..4).prop_map(|(r, x)| Op::Add(r, x)),
            (0u8..3, 0u8..4).prop_map(|(r, x)| Op::Rem(r, x)),
            (0u8..3, 0u8..3).prop_map(|(a, b)| Op::Sync(a, b)),
        ]
    }

    fn any_members() -> impl Strategy<Value = Members> {
        proptest::collection::vec(op(), 0..30).prop_map(|ops| run(&ops).0)
    }

    /// Runs `ops` in three regions (one clock tick per operation); returns the sites' states
    /// merged together, and each site.
    fn run(ops: &[Op]) -> (Members, Vec<Members>, Vec<(u8, u8, bool)>) {
        let mut sites = vec![Site::default(), Site::default(), Site::default()];
        // (region, member, was it an add) of every operation that changed something.
        let mut history = Vec::new();
        for (t, o) in ops.iter().enumerate() {
            let t = t as u64 + 1;
            match *o {
                Op::Add(r, x) => {
                    sites[r as usize].sadd(&x.to_string(), st(t, u16::from(r)));
                    history.push((r, x, true));
                }
                Op::Rem(r, x) => {
                    sites[r as usize].srem(&x.to_string(), st(t, u16::from(r)));
                    history.push((r, x, false));
                }
                Op::Sync(a, b) => {
                    let from = sites[a as usize].0.clone();
                    sites[b as usize].0.merge(&from);
                }
            }
        }
        let mut all = Members::new();
        for s in &sites {
            all.merge(&s.0);
        }
        (all, sites.into_iter().map(|s| s.0).collect(), history)
    }

    proptest! {
        #[test]
        fn merge_is_a_join(a in any_members(), b in any_members(), c in any_members()) {
            let mut ab = a.clone();
            ab.merge(&b);
            let mut ba = b.clone();
            ba.merge(&a);
            prop_assert_eq!(&ab, &ba);
            let mut ab_c = ab.clone();
            ab_c.merge(&c);
            let mut bc = b.clone();
            bc.merge(&c);
            let mut a_bc = a.clone();
            a_bc.merge(&bc);
            prop_assert_eq!(&ab_c, &a_bc);
            let mut aa = a.clone();
            aa.merge(&a);
            prop_assert_eq!(&aa, &a);
        }

        /// Whatever the order sites exchange states in, a member is present at the end
        /// exactly when some add of it was not observed by any remove: with everything
        /// merged, a member's last operation in a site that had seen every earlier
        /// operation on it decides, and a concurrent add beats a remove.
        #[test]
        fn sequential_history_decides_and_deltas_equal_states(
            ops in proptest::collection::vec(op(), 0..60)
        ) {
            let (all, sites, _) = run(&ops);
            // A delta of everything is the state itself.
            for s in &sites {
                prop_assert_eq!(&s.filtered(&|_| true), s);
            }
            // Merging every site once, in any order, gives the same state.
            let mut rev = Members::new();
            for s in sites.iter().rev() {
                rev.merge(s);
            }
            prop_assert_eq!(&rev, &all);
            // Run the same operations with a sync to every site after each: one replica in
            // effect, whose answer must be a plain set's.
            let mut plain = std::collections::BTreeSet::new();
            let mut seq = Vec::new();
            for o in &ops {
                match *o {
                    Op::Add(r, x) => {
                        plain.insert(x.to_string());
                        seq.push(Op::Add(r, x));
                    }
                    Op::Rem(r, x) => {
                        plain.remove(&x.to_string());
                        seq.push(Op::Rem(r, x));
                    }
                    Op::Sync(..) => continue,
                }
                let r = match seq.last() {
                    Some(Op::Add(r, _) | Op::Rem(r, _)) => *r,
                    _ => 0,
                };
                for other in 0..3u8 {
                    seq.push(Op::Sync(r, other));
                }
            }
            let (one, _, _) = run(&seq);
            let got: std::collections::BTreeSet<String> = one
                .live()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .collect();
            prop_assert_eq!(got, plain);
        }
    }
}
