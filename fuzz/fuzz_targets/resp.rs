//! The RESP request decoder on arbitrary bytes, fed in two pieces split at an arbitrary point
//! (as a socket would deliver them): never panics, never loops forever, and every decoded
//! command respects the configured bounds.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use sessionmesh::resp::Decoder;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let split = (split as usize).min(rest.len());
    let mut dec = Decoder::new(1024, 64);
    let mut buf = BytesMut::new();
    let mut args: Vec<Bytes> = Vec::new();
    for piece in [&rest[..split], &rest[split..]] {
        buf.extend_from_slice(piece);
        loop {
            match dec.decode(&mut buf, &mut args) {
                Ok(true) => {
                    assert!(args.len() <= 64);
                    assert!(args.iter().all(|a| a.len() <= 1024));
                }
                Ok(false) => break,
                Err(_) => return,
            }
        }
    }
});
