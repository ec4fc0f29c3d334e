//! A replica fed arbitrary frames from a peer: never panics, and a frame it rejects leaves
//! its visible state exactly as it was.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sessionmesh_core::{Config, Now, RegionId, Replica};

fuzz_target!(|data: &[u8]| {
    let ids = [RegionId(1), RegionId(2)];
    let mut r = Replica::new(Config::new(ids[0], &ids));
    let set = |k: &'static [u8]| {
        [
            Bytes::from_static(b"SET"),
            Bytes::from_static(k),
            Bytes::from_static(b"v"),
        ]
    };
    r.execute(&set(b"a"), Now::at(1_000));
    r.execute(&set(b"b"), Now::at(1_001));
    // The input may hold several frames back to back.
    let mut rest = data;
    while !rest.is_empty() {
        let n = match sessionmesh_core::wire::frame_len(rest) {
            Ok(Some(n)) => n,
            _ => rest.len(),
        };
        let (frame, tail) = rest.split_at(n);
        let digest = r.digest(Now::at(2_000));
        if r.handle_frame(ids[1], frame, Now::at(2_000)).is_err() {
            assert_eq!(
                r.digest(Now::at(2_000)),
                digest,
                "a rejected frame changed state"
            );
        }
        r.handle_timeout(Now::at(2_000));
        while r.poll_transmit().or_else(|| r.poll_catchup(|_| usize::MAX)).is_some() {}
        rest = tail;
    }
});
