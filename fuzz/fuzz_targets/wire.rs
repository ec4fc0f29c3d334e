//! The gossip frame decoder on arbitrary bytes: never panics, and whatever decodes re-encodes
//! to a frame that decodes to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessionmesh_core::wire;

fuzz_target!(|data: &[u8]| {
    let _ = wire::frame_len(data);
    if let Ok(msg) = wire::decode(0, data, 1 << 20) {
        let again = wire::encode(0, &msg);
        assert_eq!(wire::decode(0, &again, usize::MAX).as_ref(), Ok(&msg));
    }
});
