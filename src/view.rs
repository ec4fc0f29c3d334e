//! Plain values the node hands out about itself and its peers, for `/status`, `/metrics`
//! and `INFO`: the layers above read these, never the node's internals, and [`crate::metrics`]
//! renders them without knowing the node.

use sessionmesh_core::replica::PeerStatus;
use sessionmesh_core::RegionId;

/// What the node knows about its link to one peer.
#[derive(Clone, Debug, Default)]
pub struct LinkState {
    /// A QUIC connection to the peer is up.
    pub connected: bool,
    /// At least one frame from the peer decoded and applied on the current connection. Trust
    /// (and readiness) starts here, not at the TLS handshake.
    pub trusted: bool,
    /// Monotonic ms (node clock) of the last applied frame, if any.
    pub last_frame_mono_ms: Option<u64>,
    /// Connections established so far.
    pub connects: u64,
}

/// The node's own counters, read at once (see `Node::counters`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeCounters {
    /// Transmits the transport refused (peer unreachable or its queue full).
    pub dropped_transmits: u64,
    /// Times reading from peers paused because more than `persistence.max_queued_records`
    /// records waited for the log.
    pub backpressure: u64,
    /// `Event::ClockSkew` events: frames carrying stamps too far ahead.
    pub clock_skew_events: u64,
    /// `Event::Evicted` events.
    pub evictions: u64,
    /// `Event::Resynced` events.
    pub resyncs: u64,
}

/// A snapshot of one peer for `/status`, `/metrics` and INFO.
#[derive(Clone, Debug)]
pub struct PeerView {
    /// The peer's id.
    pub id: RegionId,
    /// The peer's name from `regions.toml`.
    pub name: String,
    /// The link state.
    pub link: LinkState,
    /// Milliseconds since the last frame from this peer, if one arrived.
    pub since_last_frame_ms: Option<u64>,
    /// How far the peer's acknowledgement trails our newest write, in ms; `None` until the
    /// peer has acknowledged anything (the core's raw figure would be "since 1970").
    pub lag_ms: Option<u64>,
    /// The replication state the core keeps for this peer (acknowledged stamp, clock offset).
    pub replication: Option<PeerStatus>,
}
