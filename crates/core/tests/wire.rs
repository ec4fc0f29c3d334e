//! The gossip codec: every message round-trips, arbitrary bytes never panic the decoder, and a
//! malformed frame changes nothing in the receiving replica.

// Test code: a failed unwrap is a failed test, and nothing here is reachable from outside.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod strategies;

use bytes::Bytes;
use proptest::prelude::*;
use sessionmesh_core::wire::{self, Done, Message, Report};
use sessionmesh_core::{Config, Hlc, Now, RegionId, Replica};
use strategies::{bytes, state};

fn entries() -> impl Strategy<Value = Vec<(Bytes, sessionmesh_core::KeyState)>> {
    proptest::collection::vec((bytes(), state()), 0..4)
}

fn wm() -> impl Strategy<Value = Vec<(RegionId, Hlc)>> {
    proptest::collection::vec(
        (1u16..4, any::<u64>()).prop_map(|(r, h)| (RegionId(r), Hlc(h))),
        0..4,
    )
}

fn report() -> impl Strategy<Value = Report> {
    (any::<u64>(), wm()).prop_map(|(h, wm)| Report { hlc: Hlc(h), wm })
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (
            any::<u64>(),
            any::<u64>(),
            entries(),
            proptest::option::of(report()),
            proptest::collection::vec((1u16..4, report()), 0..3),
            proptest::option::of(any::<u64>()),
        )
            .prop_map(
                |(f, t, entries, report, relayed, restoring)| Message::Push {
                    from: Hlc(f),
                    to: Hlc(t),
                    entries,
                    report,
                    relayed: relayed
                        .into_iter()
                        .map(|(r, rep)| (RegionId(r), rep))
                        .collect(),
                    restoring,
                }
            ),
        (
            any::<u64>(),
            proptest::option::of((any::<u64>(), any::<u64>())),
            wm()
        )
            .prop_map(|(h, run, wm)| Message::Ack {
                upto: Hlc(h),
                run: run.map(|(a, b)| (Hlc(a), Hlc(b))),
                wm,
            }),
        (any::<u64>(), wm(), proptest::option::of(any::<u64>()))
            .prop_map(|(id, wm, restoring)| Message::CatchUpRequest { id, wm, restoring }),
        (
            any::<u64>(),
            any::<u32>(),
            entries(),
            proptest::option::of((
                wm(),
                any::<u64>(),
                proptest::option::of(wm()),
                any::<bool>()
            ))
        )
            .prop_map(|(id, seq, entries, done)| Message::CatchUpPart {
                id,
                seq,
                entries,
                done: done.map(|(wm, y, your_report, unsettled)| Done {
                    wm,
                    yours: Hlc(y),
                    your_report,
                    unsettled
                }),
            }),
        Just(Message::Evicted),
        (any::<u64>(), any::<u32>(), entries()).prop_map(|(id, seq, e)| {
            Message::CensusPart {
                id,
                seq,
                keys: e.into_iter().map(|(k, st)| (k, st.cl)).collect(),
            }
        }),
        (any::<u64>(), any::<u32>(), entries()).prop_map(|(id, seq, e)| {
            Message::CensusDead {
                id,
                seq,
                dead: e.into_iter().map(|(k, st)| (k, st.cl)).collect(),
            }
        }),
    ]
}

proptest! {
    #[test]
    fn round_trip(m in message()) {
        let f = wire::encode(0, &m);
        prop_assert_eq!(wire::frame_len(&f), Ok(Some(f.len())));
        prop_assert_eq!(wire::decode(0, &f, usize::MAX), Ok(m));
        // Any strict prefix is "need more bytes", never an error or a panic.
        for cut in [0, 1, 3, 4, f.len() / 2, f.len() - 1] {
            prop_assert_eq!(wire::frame_len(&f[..cut]), Ok(None));
        }
    }

    #[test]
    fn garbage_never_panics(b in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = wire::frame_len(&b);
        let _ = wire::decode(0, &b, 1 << 20);
    }

    /// Flip bytes of a valid push: either it still decodes (and is applied whole) or it is
    /// rejected and the replica is exactly as before.
    #[test]
    fn corrupt_frame_applies_nothing(m in message(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut f = wire::encode(0, &m);
        for (i, x) in flips {
            let i = 4 + i.index(f.len() - 4);
            f[i] ^= x | 1;
        }
        let ids = [RegionId(1), RegionId(2)];
        let mut r = Replica::new(Config::new(RegionId(1), &ids));
        r.execute(&[Bytes::from_static(b"SET"), Bytes::from_static(b"k"), Bytes::from_static(b"v")], Now::at(10));
        let before = (r.digest(Now::at(10)), r.stats().keys);
        if r.handle_frame(RegionId(2), &f, Now::at(10)).is_err() {
            prop_assert_eq!((r.digest(Now::at(10)), r.stats().keys), before);
            prop_assert_eq!(r.stats().bad_frames, 1);
        }
    }
}
