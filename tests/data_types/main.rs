//! Data types across regions, on real nodes with UDP relays that cut packets: counters
//! ([`counters`]), numbered databases and flushes ([`databases`]), sets ([`sets`]), pub/sub
//! ([`pubsub`]).
//!
//! One test binary for them all: each integration-test binary is linked on its own, and
//! linking is much of what CI spends its minutes on.

// Test code: a failed unwrap is a failed test, and nothing here is reachable from outside.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

#[path = "../common/mod.rs"]
mod common;

mod counters;
mod databases;
mod pubsub;
mod sets;
