//! Helpers shared by the integration tests: the cluster and relays come from the
//! `sessionmesh-harness` crate (re-exported here under their old paths); the reference model of
//! Redis stays with the tests that compare against it.
#![allow(dead_code, unused_imports)]

pub use sessionmesh_harness::cluster;
pub mod redis_model;
