//! Helpers shared by the integration tests: the cluster and relays come from the
//! `sessionmesh-harness` crate (re-exported here under their old path).
#![allow(dead_code, unused_imports)]

pub use sessionmesh_harness::cluster;
