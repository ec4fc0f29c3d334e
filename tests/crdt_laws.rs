//! Lattice laws of the session CRDT, checked by proptest over arbitrary states and deltas:
//! merge is commutative, associative and idempotent, and applying deltas in any order, with
//! duplicates, reaches the same state as merging them in order.
//!
//! Failing cases are printed by proptest and replay from `proptest-regressions/`.

// Test code: a failed unwrap is a failed test, and nothing here is reachable from outside.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

#[path = "../crates/core/tests/strategies/mod.rs"]
mod strategies;

use bytes::Bytes;
use proptest::prelude::*;
use sessionmesh_core::{Body, Hlc, KeyState, Reg, RegionId, Stamp};
use strategies::state;

fn merged(a: &KeyState, b: &KeyState) -> KeyState {
    let mut x = a.clone();
    x.merge(b);
    x
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn commutative(a in state(), b in state()) {
        prop_assert_eq!(merged(&a, &b), merged(&b, &a));
    }

    #[test]
    fn associative(a in state(), b in state(), c in state()) {
        prop_assert_eq!(merged(&merged(&a, &b), &c), merged(&a, &merged(&b, &c)));
    }

    #[test]
    fn idempotent(a in state(), b in state()) {
        prop_assert_eq!(merged(&a, &a), a.clone());
        let ab = merged(&a, &b);
        prop_assert_eq!(merged(&ab, &b), ab);
    }

    /// Filtering an owned state in place keeps exactly the registers a copying filter keeps
    /// (remote deltas are filtered in place), whatever the filter.
    #[test]
    fn into_delta_is_delta(a in state(), region in 0u16..4, after in 0u64..7) {
        let keep = |s: Stamp| s.region != RegionId(region) || s.hlc > Hlc::new(after, 0);
        prop_assert_eq!(a.clone().into_delta(keep), a.delta(keep));
    }

    /// Deltas in any order, with duplicates, give the same state as the in-order fold.
    #[test]
    fn deltas_any_order_with_duplicates(
        deltas in proptest::collection::vec(state(), 1..8),
        order in proptest::collection::vec(any::<proptest::sample::Index>(), 1..24),
    ) {
        let mut inorder = deltas[0].clone();
        for d in &deltas[1..] {
            inorder.merge(d);
        }
        // Every delta at least once, then random extra copies, in a shuffled order.
        let mut seq: Vec<usize> = (0..deltas.len()).collect();
        seq.extend(order.iter().map(|i| i.index(deltas.len())));
        let mut keyed: Vec<(usize, usize)> = seq.iter().enumerate().map(|(i, d)| ((i * 7919 + d * 104729) % 1009, *d)).collect();
        keyed.sort();
        let mut shuffled = deltas[keyed[0].1].clone();
        for (_, d) in &keyed[1..] {
            shuffled.merge(&deltas[*d]);
        }
        prop_assert_eq!(inorder, shuffled);
    }

    /// The view of a merged state never shows a field from an incarnation older than the winner.
    #[test]
    fn delete_wins_over_older_incarnations(a in state(), b in state()) {
        let m = merged(&a, &b);
        prop_assert_eq!(m.cl.value, a.cl.value.max(b.cl.value));
        if a.cl.value != b.cl.value {
            let winner = if a.cl.value > b.cl.value { &a } else { &b };
            prop_assert_eq!(&m.body, &winner.body);
        }
    }
}

#[test]
fn concurrent_fields_both_survive() {
    let r1 = RegionId(1);
    let r2 = RegionId(2);
    let base = KeyState {
        cl: Reg::new(Stamp::new(Hlc::new(1, 0), r1), 1),
        body: Body::default(),
    };
    let mut a = base.clone();
    a.body.fields.insert(
        Bytes::from_static(b"user"),
        Reg::new(
            Stamp::new(Hlc::new(5, 0), r1),
            Some(Bytes::from_static(b"ann")),
        ),
    );
    let mut b = base.clone();
    b.body.fields.insert(
        Bytes::from_static(b"cart"),
        Reg::new(
            Stamp::new(Hlc::new(5, 0), r2),
            Some(Bytes::from_static(b"3")),
        ),
    );
    let m = merged(&a, &b);
    assert_eq!(m.body.fields.len(), 2);
}

#[test]
fn delete_beats_concurrent_later_write() {
    let r1 = RegionId(1);
    let r2 = RegionId(2);
    let base = KeyState {
        cl: Reg::new(Stamp::new(Hlc::new(1, 0), r1), 1),
        body: Body::default(),
    };
    // Region 2 deletes at t=5; region 1, not having seen it, writes at t=9.
    let del = KeyState {
        cl: Reg::new(Stamp::new(Hlc::new(5, 0), r2), 2),
        body: Body::default(),
    };
    let mut write = base.clone();
    write.body.fields.insert(
        Bytes::from_static(b"f"),
        Reg::new(
            Stamp::new(Hlc::new(9, 0), r1),
            Some(Bytes::from_static(b"v")),
        ),
    );
    let m = merged(&write, &del);
    assert!(m.is_deleted());
    assert!(m.view(0).is_none());
    assert_eq!(m, merged(&del, &write));
}
