//! Region ids and write stamps.

use crate::hlc::Hlc;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A region's numeric id, as listed in `regions.toml`. Ties between equal HLC values are broken
/// by it, so every region picks the same winner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RegionId(pub u16);

impl fmt::Display for RegionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}

/// The identity and order of one write: its HLC value, then the writing region.
///
/// Stamps are totally ordered and unique: a region never issues the same HLC value twice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Stamp {
    /// When, by the writer's hybrid logical clock.
    pub hlc: Hlc,
    /// Who wrote it (the origin).
    pub region: RegionId,
}

impl Stamp {
    /// A stamp from its parts.
    pub fn new(hlc: Hlc, region: RegionId) -> Stamp {
        Stamp { hlc, region }
    }
}

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.hlc, self.region)
    }
}
