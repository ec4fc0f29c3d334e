//! The hash tables' seed: handed in through [`crate::Config::hash_seed`], never drawn here.
//!
//! The key table, a large hash's field table and the dirty set hash client-chosen bytes, so
//! their seed must be secret to the clients (or they could choose keys that collide). The
//! node draws one at random per process; the simulator derives it from its run's seed, so a
//! run is reproducible. Tables are created deep inside merges and decoding, where no config
//! is at hand, so the seed is process-wide: [`crate::Replica::new`] sets it from its config
//! (with several replicas in one process, the last one's; any seed is correct, what matters
//! is that clients cannot know it). No output depends on a table's order: ordered reads sort.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

static SEED: AtomicU64 = AtomicU64::new(0);

/// Sets the seed of every table created from now on.
pub(crate) fn set(seed: u64) {
    SEED.store(seed, Ordering::Relaxed);
}

/// The tables' [`BuildHasher`]: foldhash, with the seed set when the table was created.
#[derive(Clone, Debug)]
pub struct Seeded(foldhash::fast::FixedState);

impl Default for Seeded {
    fn default() -> Self {
        Seeded(foldhash::fast::FixedState::with_seed(
            SEED.load(Ordering::Relaxed),
        ))
    }
}

impl BuildHasher for Seeded {
    type Hasher = foldhash::fast::FoldHasher<'static>;

    #[inline(always)]
    fn build_hasher(&self) -> Self::Hasher {
        self.0.build_hasher()
    }
}
