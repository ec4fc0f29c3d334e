//! The log's framing: `len u32 | crc u32 | body`, both integers little-endian.
//!
//! The CRC (CRC-32/ISO-HDLC, as `crc32fast` computes it) covers the four length bytes and the
//! body, so a flipped bit in the length is caught as surely as one in the body. Decoding tells
//! a clean end from a torn or corrupt tail and says where the good prefix ends, so recovery can
//! truncate there.
//!
//! This module knows nothing of what a body holds (MessagePack records, see `log.rs`) and does
//! no IO.

/// Bytes before each body.
pub const HEADER: usize = 8;

/// Largest body accepted. A length above it is corruption, not a frame to wait for: one
/// frame is one locked step of the node, and no step writes anywhere near this much.
pub const MAX_BODY: usize = 256 * 1024 * 1024;

/// Where decoding stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tail {
    /// Every byte belonged to a complete, valid frame.
    Clean,
    /// The bytes from `at` on do not form a complete frame: the last write was cut short.
    Short {
        /// Offset of the incomplete frame.
        at: usize,
    },
    /// The frame at `at` is complete but its CRC or length is wrong.
    Corrupt {
        /// Offset of the bad frame.
        at: usize,
    },
}

impl Tail {
    /// Length of the valid prefix of the input.
    pub fn valid_len(self, total: usize) -> usize {
        match self {
            Tail::Clean => total,
            Tail::Short { at } | Tail::Corrupt { at } => at,
        }
    }
}

/// Turns `out[start..]`, [`HEADER`] bytes of room followed by a body encoded in place, into
/// one frame (what [`encode`] would have appended): the body is not copied a second time.
///
/// Panics if the body is longer than [`MAX_BODY`].
pub fn finish_in_place(out: &mut [u8], start: usize) {
    let (head, body) = out[start..].split_at_mut(HEADER);
    assert!(body.len() <= MAX_BODY, "log frame of {} bytes", body.len());
    let len = (body.len() as u32).to_le_bytes();
    let crc = crc(&len, body).to_le_bytes();
    head[..4].copy_from_slice(&len);
    head[4..].copy_from_slice(&crc);
}

/// Appends one frame holding `body` to `out`.
///
/// Panics if `body` is longer than [`MAX_BODY`] (the caller encodes bounded records).
pub fn encode(body: &[u8], out: &mut Vec<u8>) {
    assert!(body.len() <= MAX_BODY, "log frame of {} bytes", body.len());
    let len = (body.len() as u32).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc(&len, body).to_le_bytes());
    out.extend_from_slice(body);
}

/// Splits `buf` into frame bodies, in order, stopping at the first incomplete or bad frame.
#[allow(
    clippy::expect_used,
    reason = "each header is sliced to fixed sizes after a length check"
)]
pub fn decode(buf: &[u8]) -> (Vec<&[u8]>, Tail) {
    let mut bodies = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let rest = &buf[at..];
        if rest.len() < HEADER {
            return (bodies, Tail::Short { at });
        }
        let len_bytes: [u8; 4] = rest[..4].try_into().expect("4 bytes");
        let len = u32::from_le_bytes(len_bytes) as usize;
        let want = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
        if len > MAX_BODY {
            return (bodies, Tail::Corrupt { at });
        }
        if rest.len() < HEADER + len {
            return (bodies, Tail::Short { at });
        }
        let body = &rest[HEADER..HEADER + len];
        if crc(&len_bytes, body) != want {
            return (bodies, Tail::Corrupt { at });
        }
        bodies.push(body);
        at += HEADER + len;
    }
    (bodies, Tail::Clean)
}

fn crc(len: &[u8; 4], body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(len);
    h.update(body);
    h.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frames(bodies: &[Vec<u8>]) -> (Vec<u8>, Vec<usize>) {
        let mut out = Vec::new();
        let mut ends = Vec::new();
        for b in bodies {
            encode(b, &mut out);
            ends.push(out.len());
        }
        (out, ends)
    }

    proptest! {
        #[test]
        fn round_trip(bodies in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..8)) {
            let (buf, _) = frames(&bodies);
            let (got, tail) = decode(&buf);
            prop_assert_eq!(tail, Tail::Clean);
            prop_assert_eq!(got, bodies.iter().map(Vec::as_slice).collect::<Vec<_>>());
        }

        /// A frame finished in place is byte for byte the one `encode` appends.
        #[test]
        fn in_place_is_encode(prefix in prop::collection::vec(any::<u8>(), 0..16),
                              body in prop::collection::vec(any::<u8>(), 0..300)) {
            let mut want = prefix.clone();
            encode(&body, &mut want);
            let mut got = prefix.clone();
            got.extend_from_slice(&[0; HEADER]);
            got.extend_from_slice(&body);
            finish_in_place(&mut got, prefix.len());
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn a_cut_at_every_offset_keeps_exactly_the_whole_frames() {
        let bodies: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; usize::from(i) * 3]).collect();
        let (buf, ends) = frames(&bodies);
        for cut in 0..=buf.len() {
            let (got, tail) = decode(&buf[..cut]);
            let whole = ends.iter().filter(|e| **e <= cut).count();
            assert_eq!(got.len(), whole, "cut at {cut}");
            let valid = if whole == 0 { 0 } else { ends[whole - 1] };
            assert_eq!(tail.valid_len(cut), valid, "cut at {cut}");
            if cut == valid {
                assert_eq!(tail, Tail::Clean, "cut at {cut}");
            } else {
                assert_eq!(tail, Tail::Short { at: valid }, "cut at {cut}");
            }
        }
    }

    #[test]
    fn a_flipped_bit_anywhere_is_detected() {
        let bodies = vec![b"first".to_vec(), b"second frame".to_vec()];
        let (buf, ends) = frames(&bodies);
        for byte in ends[0]..buf.len() {
            for bit in 0..8 {
                let mut bad = buf.clone();
                bad[byte] ^= 1 << bit;
                let (got, tail) = decode(&bad);
                assert_eq!(got, [b"first".as_slice()], "byte {byte} bit {bit}");
                // A damaged length may also announce more bytes than there are.
                assert!(
                    matches!(tail, Tail::Corrupt { at } | Tail::Short { at } if at == ends[0]),
                    "byte {byte} bit {bit}: {tail:?}"
                );
            }
        }
    }

    #[test]
    fn an_absurd_length_is_corruption_not_a_wait() {
        let mut buf = vec![0xff; 8];
        buf.extend_from_slice(&[0; 16]);
        assert_eq!(decode(&buf), (vec![], Tail::Corrupt { at: 0 }));
    }
}
