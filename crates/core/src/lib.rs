//! sessionmesh-core: the pure heart of sessionmesh.
//!
//! Everything that decides what a region stores and what it tells its peers lives here, and
//! nothing here performs IO: no sockets, no tasks, no clock reads, no OS entropy. Time is an
//! argument ([`Now`]), outputs are polled ([`Replica::poll_transmit`], [`Replica::poll_catchup`],
//! [`Replica::poll_event`]).
//! The node (`sessionmesh`) drives this with tokio and quinn; the simulator (`sessionmesh-sim`)
//! drives the very same code with a virtual clock and a lossy virtual network.
//!
//! Modules:
//! - [`hlc`]: the hybrid logical clock.
//! - [`stamp`]: region ids and write stamps.
//! - [`crdt`]: the per-key last-writer-wins state with causal-length deletes.
//! - [`fields`]: a hash key's field registers, compact while the hash is small.
//! - [`members`]: a set key's members, an add-wins observed-remove set.
//! - [`notify`]: the keyspace events a change of a key raises.
//! - [`origin_index`]: which keys hold a register from each origin, and how new (lazy).
//! - [`store`]: the key space, its index by origin and stamp, and garbage collection.
//! - [`cmd`]: Redis data commands parsed into types and applied to the store.
//! - [`replica`]: the sans-IO replication protocol.
//! - [`wire`]: the versioned MessagePack frame format.
//! - [`slot`]: Redis Cluster's hash slot of a key (CRC16, hash tags).
//! - [`db`]: numbered databases, carried in the stored name of a key.

pub mod cmd;
pub mod counter;
pub mod crdt;
pub mod db;
pub mod fields;
pub mod hlc;
pub mod members;
pub mod notify;
pub mod origin_index;
mod reg;
pub mod replica;
pub mod reply;
pub mod seed;
pub mod shard;
pub mod slot;
pub mod stamp;
pub mod store;
pub mod wire;

pub use crdt::{Body, KeyState, Kind, Reg};
pub use fields::Fields;
pub use hlc::{Clock, Hlc};
pub use replica::{Channel, Config, Event, Faults, Now, Ready, Replica, Stats, Timer, Transmit};
pub use reply::{Error, ErrorKind, Float, Reply};
pub use stamp::{RegionId, Stamp};
pub use store::Value;
pub use wire::{Message, WireError};
