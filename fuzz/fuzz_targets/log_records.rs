//! The durable log's decoder on arbitrary bytes: frames are cut without panicking, the valid
//! prefix never exceeds the input, and a frame whose CRC matches but whose body is garbage is
//! rejected by the record decoder without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessionmesh::persist::frame;
use sessionmesh_core::replica::Record;

fuzz_target!(|data: &[u8]| {
    let (bodies, tail) = frame::decode(data);
    assert!(tail.valid_len(data.len()) <= data.len());
    for body in bodies {
        let _ = rmp_serde::from_slice::<Vec<Record>>(body);
    }
    // Also the body decoder alone, as a frame with a valid CRC would hand it over.
    let _ = rmp_serde::from_slice::<Vec<Record>>(data);
});
