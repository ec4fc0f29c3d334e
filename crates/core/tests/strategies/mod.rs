//! Proptest strategies for core types, shared by the law, wire and convergence tests.
//! A small universe of stamps and values, so that ties and overwrites happen often.

#![allow(dead_code)]

use bytes::Bytes;
use proptest::prelude::*;
use sessionmesh_core::counter::{Count, Counts, Tally};
use sessionmesh_core::members::{Dot, Members};
use sessionmesh_core::{Body, Fields, Hlc, KeyState, Kind, Reg, RegionId, Stamp};

pub fn stamp() -> impl Strategy<Value = Stamp> {
    // A small universe so that equal stamps and ties between regions happen often.
    (0u64..6, 0u16..3, 1u16..4).prop_map(|(ms, c, r)| Stamp::new(Hlc::new(ms, c), RegionId(r)))
}

pub fn bytes() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        Just(Bytes::from_static(b"a")),
        Just(Bytes::from_static(b"b")),
        Just(Bytes::from_static(b"c"))
    ]
}

pub fn body() -> impl Strategy<Value = Body> {
    (
        proptest::option::of(stamp()),
        proptest::option::of((
            stamp(),
            prop_oneof![Just(Kind::String), Just(Kind::Hash), Just(Kind::Set)],
        )),
        proptest::option::of((stamp(), bytes())),
        proptest::collection::btree_map(bytes(), (stamp(), proptest::option::of(bytes())), 0..3),
        proptest::option::of((stamp(), proptest::option::of(0u64..10))),
        counts(),
        members(),
    )
        .prop_map(|(reset, kind, string, fields, ttl, counts, members)| Body {
            reset,
            kind: kind.map(|(s, k)| Reg::new(s, k)),
            string: string.map(|(s, v)| Reg::new(s, v)),
            fields: fields
                .into_iter()
                .map(|(f, (s, v))| (f, Reg::new(s, v)))
                .collect::<Fields>(),
            ttl: ttl.map(|(s, t)| Reg::new(s, t)),
            counts,
            members,
        })
}

/// Set members as regions write them: per member at most one dot per region (the add's
/// region), removed or not, the removal no earlier than the add.
pub fn members() -> impl Strategy<Value = Members> {
    proptest::collection::btree_map(
        bytes(),
        proptest::collection::vec((stamp(), proptest::option::of(0u64..3)), 1..3),
        0..3,
    )
    .prop_map(|m| {
        let mut out = Members::new();
        for (x, dots) in m {
            let mut v: Vec<Dot> = Vec::new();
            for (add, later) in dots {
                let removed = later
                    .map(|d| Stamp::new(Hlc::new(add.hlc.ms() + d, 0), RegionId(1 + d as u16 % 3)));
                let d = Dot { add, removed };
                match v.iter_mut().find(|o| o.region() == d.region()) {
                    Some(o) => *o = (*o).max(d),
                    None => v.push(d),
                }
            }
            v.sort_by_key(|d| d.region());
            out.insert(x, v);
        }
        out
    })
}

/// Counter totals as a region writes them: the register's region is the stamp's, and the
/// epoch a function of the stamp that never decreases and never passes it (a region's later
/// total belongs to the same epoch or a later one), so that totals of past epochs get dropped
/// against the generated base registers and resets.
pub fn counts() -> impl Strategy<Value = Counts> {
    proptest::collection::vec((proptest::option::of(bytes()), stamp(), -3i128..4), 0..3).prop_map(
        |v| {
            v.into_iter()
                .map(|(target, s, units)| Count {
                    target,
                    region: s.region,
                    tally: Reg::new(
                        s,
                        Tally {
                            epoch: (s.hlc.ms() >= 2)
                                .then(|| Stamp::new(Hlc::new(s.hlc.ms() - 2, 0), RegionId(1))),
                            units,
                        },
                    ),
                })
                .collect()
        },
    )
}

pub fn state() -> impl Strategy<Value = KeyState> {
    (1u64..5, stamp(), body()).prop_map(|(len, s, body)| {
        let mut k = KeyState {
            cl: Reg::new(s, len),
            body,
        };
        k.normalize();
        k
    })
}
