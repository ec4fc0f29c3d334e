//! Redis Cluster's hash slots: which of the 16384 slots a key belongs to.
//!
//! Exactly Redis's function (`keyHashSlot` in its `cluster.c`): CRC16 (XMODEM: polynomial
//! 0x1021, initial value 0, no reflection) of the key modulo 16384 — or, when the key holds a
//! *hash tag* (a `{` followed later by a `}` with at least one byte between them), of the bytes
//! between the first `{` and the first `}` after it. Keys sharing a tag share a slot, which is
//! how a client keeps keys that a multi-key command or a script touches together.
//!
//! Shards of a region own contiguous ranges of slots ([`shard_of`], [`slots_of`]); a later
//! issue speaks Redis Cluster's protocol from the same numbers, so they must match Redis bit for bit (the tests hold values a real
//! `redis-server --cluster-enabled yes` answered to `CLUSTER KEYSLOT`).

/// Number of hash slots, as in Redis Cluster.
pub const SLOTS: u16 = 16384;

/// CRC16 lookup table for polynomial 0x1021, built at compile time.
const TABLE: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        t[i] = crc;
        i += 1;
    }
    t
};

/// CRC16/XMODEM of `bytes`.
pub fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |crc, b| {
        (crc << 8) ^ TABLE[usize::from(((crc >> 8) as u8) ^ b)]
    })
}

/// The part of `key` that is hashed: its hash tag if it has a non-empty one, else all of it.
pub fn hashed_part(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|b| *b == b'{') {
        if let Some(len) = key[open + 1..].iter().position(|b| *b == b'}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

/// The hash slot of `key`, in `0..SLOTS`: of its client-visible name when `key` is a stored
/// name of a numbered database ([`crate::db`]), so a key has one slot in every database.
pub fn key_slot(key: &[u8]) -> u16 {
    crc16(hashed_part(crate::db::user_part(key))) & (SLOTS - 1)
}

/// The shard that owns `slot` when the slots are split into `shards` (at least 1) contiguous
/// ranges of nearly equal size, the way Redis Cluster hands ranges to its masters: shard `i`
/// owns [`slots_of`]`(i, shards)`. Every region splits the same way, so shard `i` of one
/// region replicates with shard `i` of another.
pub fn shard_of(slot: u16, shards: u16) -> u16 {
    let shards = u32::from(shards.max(1));
    ((u32::from(slot % SLOTS) * shards) / u32::from(SLOTS)) as u16
}

/// The slots shard `shard` of `shards` owns (see [`shard_of`]).
pub fn slots_of(shard: u16, shards: u16) -> std::ops::Range<u16> {
    let shards = u32::from(shards.max(1));
    // The first slot s with s * shards / SLOTS >= shard, i.e. ceil(shard * SLOTS / shards).
    let start = |i: u32| (i * u32::from(SLOTS)).div_ceil(shards) as u16;
    let i = u32::from(shard).min(shards);
    start(i)..start((i + 1).min(shards))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_check_value() {
        // The standard check value of CRC-16/XMODEM.
        assert_eq!(crc16(b"123456789"), 0x31C3);
    }

    #[test]
    fn slots_match_redis() {
        // From `redis-cli CLUSTER KEYSLOT` against redis-server 7.0 with cluster support.
        let cases: &[(&str, u16)] = &[
            ("foo", 12182),
            ("bar", 5061),
            ("hello", 866),
            ("123456789", 12739),
            ("{user1000}.following", 3443),
            ("{}", 15257),
            ("foo{}{bar}", 8363),
            ("foo{{bar}}zap", 4015),
            ("foo{bar}{zap}", 5061),
            ("{a", 10276),
            ("a}b{", 6027),
            ("", 0),
            ("sess:00042", 5713),
            ("{sess:1}x", 9514),
        ];
        for (key, slot) in cases {
            assert_eq!(key_slot(key.as_bytes()), *slot, "{key:?}");
        }
    }

    #[test]
    fn shards_partition_the_slots_into_ranges() {
        for shards in [1u16, 2, 3, 4, 7, 16, 100] {
            let mut next = 0u16;
            for i in 0..shards {
                let r = slots_of(i, shards);
                assert_eq!(
                    r.start,
                    next,
                    "{shards} shards: shard {i} starts where {} ends",
                    i.wrapping_sub(1)
                );
                assert!(!r.is_empty());
                for s in r.clone() {
                    assert_eq!(shard_of(s, shards), i, "slot {s} of {shards} shards");
                }
                next = r.end;
            }
            assert_eq!(next, SLOTS, "{shards} shards cover every slot");
        }
        assert_eq!(shard_of(16383, 1), 0);
        assert_eq!(slots_of(0, 4), 0..4096);
        assert_eq!(slots_of(3, 4), 12288..16384);
    }

    #[test]
    fn a_tag_keeps_keys_together() {
        assert_eq!(
            key_slot(b"{user1000}.following"),
            key_slot(b"{user1000}.followers")
        );
        assert_eq!(hashed_part(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(hashed_part(b"foo{}{bar}"), b"foo{}{bar}");
    }
}
