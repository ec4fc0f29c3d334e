//! Proptest strategies for core types, shared by the law, wire and convergence tests.
//! A small universe of stamps and values, so that ties and overwrites happen often.

#![allow(dead_code)]

use bytes::Bytes;
use proptest::prelude::*;
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
        proptest::option::of((stamp(), prop_oneof![Just(Kind::String), Just(Kind::Hash)])),
        proptest::option::of((stamp(), bytes())),
        proptest::collection::btree_map(bytes(), (stamp(), proptest::option::of(bytes())), 0..3),
        proptest::option::of((stamp(), proptest::option::of(0u64..10))),
    )
        .prop_map(|(reset, kind, string, fields, ttl)| Body {
            reset,
            kind: kind.map(|(s, k)| Reg::new(s, k)),
            string: string.map(|(s, v)| Reg::new(s, v)),
            fields: fields
                .into_iter()
                .map(|(f, (s, v))| (f, Reg::new(s, v)))
                .collect::<Fields>(),
            ttl: ttl.map(|(s, t)| Reg::new(s, t)),
        })
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
