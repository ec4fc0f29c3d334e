//! Helpers shared by the integration tests. Each test binary uses its own subset of them.
#![allow(dead_code)]

pub mod cluster;
pub mod redis_model;
pub mod relay;
