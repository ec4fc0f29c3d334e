//! The last-writer-wins register every part of a key's state is made of ([`crate::crdt`]
//! builds keys from them, [`crate::fields`] a hash's fields). It knows only stamps.

use crate::stamp::Stamp;
use serde::{Deserialize, Serialize};

/// A last-writer-wins register: the value written with the greatest stamp.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reg<T> {
    /// Who wrote it and when.
    pub stamp: Stamp,
    /// What was written.
    pub value: T,
}

impl<T: Ord + Clone> Reg<T> {
    /// A register holding `value` written at `stamp`.
    pub fn new(stamp: Stamp, value: T) -> Reg<T> {
        Reg { stamp, value }
    }

    /// Whether `other` beats `self`: greater stamp, and on an (impossible in practice) equal
    /// stamp the greater value, so that every replica picks the same winner.
    pub(crate) fn loses_to(&self, other: &Reg<T>) -> bool {
        (other.stamp, &other.value) > (self.stamp, &self.value)
    }
}
