//! Per-region wall clocks: true simulated time plus an offset, a drift and steps.
//!
//! `wall(t) = EPOCH_MS + t + offset + drift_ppm × t / 10⁶ + Σ steps so far`. Monotonic time is
//! the simulated time itself, shared by every region (an `Instant` survives a process restart
//! on the same machine). Wall clocks may run fast, slow, ahead, behind, and jump backwards: that
//! is what the core's hybrid logical clock has to absorb. Nothing here reads a real clock.

use crate::config::ClockSpec;

/// Simulated time 0 as a wall clock: 2023-11-14T22:13:20Z, so stamps look like real ones.
pub const EPOCH_MS: u64 = 1_700_000_000_000;

/// One region's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct WallClock {
    spec: ClockSpec,
    steps_ms: i64,
}

impl WallClock {
    /// A clock following `spec`.
    pub fn new(spec: ClockSpec) -> WallClock {
        WallClock { spec, steps_ms: 0 }
    }

    /// Jumps by `delta_ms` (negative: backwards).
    pub fn step(&mut self, delta_ms: i64) {
        self.steps_ms += delta_ms;
    }

    /// The wall time this region reads at simulated time `t_ms`.
    pub fn wall(&self, t_ms: u64) -> u64 {
        let t = i128::from(t_ms);
        let drift = t * i128::from(self.spec.drift_ppm) / 1_000_000;
        let w = i128::from(EPOCH_MS)
            + t
            + i128::from(self.spec.offset_ms)
            + i128::from(self.steps_ms)
            + drift;
        w.clamp(0, i128::from(u64::MAX)) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_drift_and_steps() {
        let mut c = WallClock::new(ClockSpec {
            offset_ms: -100,
            drift_ppm: 1_000,
        });
        assert_eq!(c.wall(0), EPOCH_MS - 100);
        assert_eq!(c.wall(10_000), EPOCH_MS + 10_000 - 100 + 10);
        c.step(-500);
        assert_eq!(c.wall(10_000), EPOCH_MS + 10_000 - 600 + 10);
    }
}
