//! Hybrid logical clock (Kulkarni et al., "Logical Physical Clocks", 2014).
//!
//! A timestamp is one `u64`: milliseconds since the Unix epoch in the high 48 bits and a
//! logical counter in the low 16. Packing both into one integer makes the HLC rules simple:
//! "advance the counter" is `+ 1`, and a counter that overflows carries into the millisecond
//! part, so the clock still never goes backwards and never repeats a value.
//!
//! The clock never reads time itself: every call takes the caller's wall clock in
//! milliseconds. This keeps the core deterministic and lets the simulator skew clocks at will.
//!
//! We own this clock instead of using the `hybrid-logical-clock` crate: its 0.0.2 `update`
//! resets the counter when the remote stamp is older than the local one (local (200,5), remote
//! (100,0), wall 150 gives (200,0)), which moves the clock backwards and breaks
//! last-writer-wins. `tests::regression_never_moves_back_on_old_remote` pins our behaviour.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Bits of the logical counter in a packed [`Hlc`].
pub const COUNTER_BITS: u32 = 16;
const COUNTER_MASK: u64 = (1 << COUNTER_BITS) - 1;

/// A packed hybrid-logical-clock value: `ms << 16 | counter`. Ordered as an integer.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Hlc(pub u64);

impl Hlc {
    /// The smallest value; every real stamp is greater.
    pub const ZERO: Hlc = Hlc(0);

    /// Builds a value from its physical and logical parts.
    pub fn new(ms: u64, counter: u16) -> Hlc {
        Hlc((ms << COUNTER_BITS) | u64::from(counter))
    }

    /// The physical part: milliseconds since the Unix epoch.
    pub fn ms(self) -> u64 {
        self.0 >> COUNTER_BITS
    }

    /// The logical counter.
    pub fn counter(self) -> u16 {
        (self.0 & COUNTER_MASK) as u16
    }

    /// The next value after this one (counter + 1, carrying into the milliseconds).
    pub fn next(self) -> Hlc {
        Hlc(self.0.saturating_add(1))
    }

    /// The greatest value whose physical part is `ms`.
    pub fn end_of_ms(ms: u64) -> Hlc {
        Hlc::new(ms, u16::MAX)
    }
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.ms(), self.counter())
    }
}

/// A remote stamp was further in the future than `max_drift_ms` allows.
///
/// Doesn't affect the clock's state: the caller holds the data that carried the stamp and
/// offers it again later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("remote stamp {remote} is {ahead_ms} ms ahead of local wall clock (max drift {max_drift_ms} ms)")]
pub struct TooFarAhead {
    /// The offending remote value.
    pub remote: Hlc,
    /// How far ahead of our wall clock it is.
    pub ahead_ms: u64,
    /// The configured bound it exceeded.
    pub max_drift_ms: u64,
}

/// A hybrid logical clock for one region.
#[derive(Clone, Debug)]
pub struct Clock {
    last: Hlc,
    /// The greatest value handed out by [`Clock::tick`]: what must never be handed out again.
    issued: Hlc,
    max_drift_ms: u64,
}

impl Clock {
    /// A clock that accepts remote stamps at most `max_drift_ms` ahead of its wall clock.
    pub fn new(max_drift_ms: u64) -> Clock {
        Clock {
            last: Hlc::ZERO,
            issued: Hlc::ZERO,
            max_drift_ms,
        }
    }

    /// Re-seeds the clock after a restart from the greatest stamp it had persisted, so that it
    /// never issues a stamp it issued before the crash.
    pub fn seed(&mut self, persisted_max: Hlc) {
        self.last = self.last.max(persisted_max);
    }

    /// The last value issued or observed.
    pub fn last(&self) -> Hlc {
        self.last
    }

    /// The configured maximum drift.
    pub fn max_drift_ms(&self) -> u64 {
        self.max_drift_ms
    }

    /// "Now" in milliseconds as this region judges expiry: its HLC, never behind its wall clock.
    pub fn now_ms(&self, wall_ms: u64) -> u64 {
        self.last.ms().max(wall_ms)
    }

    /// Issues a stamp for a local event (send or write). Strictly greater than every value this
    /// clock issued or observed before.
    pub fn tick(&mut self, wall_ms: u64) -> Hlc {
        let wall = Hlc::new(wall_ms, 0);
        self.last = if wall > self.last {
            wall
        } else {
            self.last.next()
        };
        self.issued = self.last;
        self.last
    }

    /// The greatest value [`Clock::tick`] has handed out (observing remote stamps or the wall
    /// clock moves [`Clock::last`] without issuing anything).
    pub fn issued(&self) -> Hlc {
        self.issued
    }

    /// Checks whether a remote stamp may be observed now, without changing the clock.
    pub fn check(&self, remote: Hlc, wall_ms: u64) -> Result<(), TooFarAhead> {
        let limit = wall_ms.saturating_add(self.max_drift_ms);
        if remote.ms() > limit {
            return Err(TooFarAhead {
                remote,
                ahead_ms: remote.ms() - wall_ms,
                max_drift_ms: self.max_drift_ms,
            });
        }
        Ok(())
    }

    /// Observes a remote stamp (Kulkarni's receive rule) and returns the new local value, which
    /// is greater than both the previous local value and `remote`.
    ///
    /// In packed form the rule is: take the greatest of (local, remote, (wall, 0)); if the wall
    /// clock is strictly the greatest, use it with counter 0, otherwise add one to the greatest.
    pub fn observe(&mut self, remote: Hlc, wall_ms: u64) -> Result<Hlc, TooFarAhead> {
        self.check(remote, wall_ms)?;
        let logical = self.last.max(remote);
        let wall = Hlc::new(wall_ms, 0);
        self.last = if wall > logical { wall } else { logical.next() };
        Ok(self.last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn regression_never_moves_back_on_old_remote() {
        // local (200 ms, 5), remote (100 ms, 0), wall 150 ms: the hybrid-logical-clock 0.0.2
        // crate returns (200, 0) here, going backwards. We must give at least (200, 6).
        let mut c = Clock::new(1_000);
        c.seed(Hlc::new(200, 5));
        let after = c.observe(Hlc::new(100, 0), 150).unwrap();
        assert!(after >= Hlc::new(200, 6), "clock went to {after}");
        assert_eq!(after, Hlc::new(200, 6));
    }

    #[test]
    fn counter_overflow_carries_into_ms() {
        let mut c = Clock::new(0);
        c.seed(Hlc::new(10, u16::MAX));
        let t = c.tick(5);
        assert_eq!(t, Hlc::new(11, 0));
        assert!(t > Hlc::new(10, u16::MAX));
    }

    #[test]
    fn far_future_remote_is_refused_without_change() {
        let mut c = Clock::new(100);
        let before = c.tick(1_000);
        let err = c.observe(Hlc::new(1_101, 0), 1_000).unwrap_err();
        assert_eq!(err.ahead_ms, 101);
        assert_eq!(c.last(), before);
        // Within the bound it is accepted and the clock moves past it.
        let t = c.observe(Hlc::new(1_100, 3), 1_000).unwrap();
        assert_eq!(t, Hlc::new(1_100, 4));
    }

    #[test]
    fn seed_restores_monotonicity_after_restart() {
        let mut c = Clock::new(10);
        c.seed(Hlc::new(5_000, 7));
        assert!(c.tick(4_000) > Hlc::new(5_000, 7));
    }

    #[derive(Debug, Clone)]
    enum Ev {
        Tick(u64),
        Recv(u64, u16, u64),
    }

    fn ev() -> impl Strategy<Value = Ev> {
        prop_oneof![
            (0u64..10_000).prop_map(Ev::Tick),
            (0u64..10_000, any::<u16>(), 0u64..10_000).prop_map(|(m, c, w)| Ev::Recv(m, c, w)),
        ]
    }

    proptest! {
        /// Kulkarni's properties: strictly increasing under any mix of ticks and receives,
        /// greater than every observed remote, and never behind the wall clock.
        #[test]
        fn never_goes_backwards(events in proptest::collection::vec(ev(), 1..200), seed in 0u64..50_000) {
            let mut c = Clock::new(2_000);
            c.seed(Hlc::new(seed / 10, (seed % 7) as u16));
            let mut prev = c.last();
            for e in events {
                match e {
                    Ev::Tick(w) => {
                        let t = c.tick(w);
                        prop_assert!(t > prev);
                        prop_assert!(t.ms() >= w);
                        prev = t;
                    }
                    Ev::Recv(m, k, w) => {
                        let r = Hlc::new(m, k);
                        match c.observe(r, w) {
                            Ok(t) => {
                                prop_assert!(t > prev);
                                prop_assert!(t > r);
                                prop_assert!(t.ms() >= w);
                                prev = t;
                            }
                            Err(e) => {
                                prop_assert!(m > w + 2_000);
                                prop_assert_eq!(e.remote, r);
                                prop_assert_eq!(c.last(), prev);
                            }
                        }
                    }
                }
            }
        }

        /// The logical counter stays bounded by the number of events since the physical part
        /// last advanced (here: it never exceeds the number of events).
        #[test]
        fn counter_bounded(ws in proptest::collection::vec(0u64..5, 1..300)) {
            let mut c = Clock::new(0);
            for (i, w) in ws.iter().enumerate() {
                let t = c.tick(*w);
                prop_assert!(u64::from(t.counter()) <= i as u64 + 1);
            }
        }
    }
}
