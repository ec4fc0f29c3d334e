//! sessionmesh: the node, an IO shell around `sessionmesh-core`.
//!
//! The binary (`src/main.rs`) is a thin CLI over this library; integration tests use the same
//! library to start whole regions in one process.
//!
//! Modules:
//! - [`config`]: `regions.toml` parsed into a validated [`config::Config`].
//! - [`certs`]: the development CA and per-region certificates; loading and checking them.
//! - [`transport`]: the QUIC mesh between regions (mutual TLS, one connection per pair).
//! - [`node`]: the glue between the core, the transport and the Redis server.
//! - [`persist`]: the region's durable log and snapshots, and recovery from them.
//! - [`pubsub`]: the region's subscriptions (`SUBSCRIBE`, keyspace notifications) and delivery.
//! - [`resp`]: the RESP codec and the Redis TCP server.
//! - [`http`]: `/health`, `/ready`, `/metrics`, `/status`.
//! - [`metrics`]: every metric's name, help and labels; recording and rendering them.
//! - [`relay`]: a UDP relay between two regions that can cut or delay the link (tests, demo).
//! - [`server`]: starts one region (all listeners and tasks) and stops it cleanly.
//!
//! None of these modules decide what is stored or replicated: that is the core's job.

pub mod certs;
/// `regions.toml`, parsed and validated (the `sessionmesh-config` crate, which the simulator
/// reads it through too).
pub use sessionmesh_config as config;
pub mod http;
pub mod metrics;
pub mod node;
pub mod persist;
pub mod pubsub;
pub mod relay;
pub mod resp;
pub mod script;
pub mod server;
pub mod transport;
pub mod view;
