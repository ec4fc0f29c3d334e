//! The QUIC mesh between regions: one UDP socket per region that both accepts and dials, mutual
//! TLS against the cluster CA, and one connection per pair of regions.
//!
//! # Shape
//!
//! - The region with the lower id dials, the higher only accepts, so a pair never ends up with
//!   two connections. A dialer reconnects with capped exponential backoff; an acceptor
//!   replaces an older connection from the same peer (the peer restarted).
//! - The peer's region is read from its verified certificate (`<region>.sessionmesh`); a
//!   certificate from another CA fails the handshake, and one that names no listed region,
//!   or a peer dialing in the wrong direction, is closed before any frame is read.
//! - Each side opens one long-lived unidirectional stream per [`Stream`] kind, tagged by its
//!   first byte. Frames on a stream are cut with [`Handler::frame_len`] and handed to
//!   [`Handler::frame`] one by one; a frame that does not decode closes the connection.
//! - Sending never blocks and never buffers without bound: each peer stream has a bounded
//!   queue, and a frame that finds it full (or no link) is dropped and counted. The
//!   replication protocol's catch-up repairs drops.
//!
//! # What it does not do
//!
//! It knows nothing of the replication protocol or the frame format beyond the boundary
//! function it is given; it never retries or re-orders frames.

mod link;
#[cfg(test)]
mod tests;
pub mod tls;

use crate::certs::TlsMaterial;
use crate::config::TransportSettings;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Why the transport could not start. Nothing is left running on error.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The TLS material could not be turned into a QUIC TLS config.
    #[error("TLS setup: {0}")]
    Tls(String),
    /// The UDP socket could not be used.
    #[error("UDP socket: {0}")]
    Socket(std::io::Error),
    /// Called outside a tokio runtime.
    #[error("the QUIC endpoint needs a tokio runtime")]
    NoRuntime,
}

/// A frame was refused by the handler: the connection it came on is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected(pub String);

/// One of the long-lived streams each side keeps per connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stream {
    /// Fresh deltas and small control messages.
    Delta,
    /// Catch-up transfers, kept apart so they never delay fresh deltas.
    CatchUp,
}

impl Stream {
    const ALL: [Stream; 2] = [Stream::Delta, Stream::CatchUp];

    fn tag(self) -> u8 {
        match self {
            Stream::Delta => 0,
            Stream::CatchUp => 1,
        }
    }

    fn from_tag(tag: u8) -> Option<Stream> {
        match tag {
            0 => Some(Stream::Delta),
            1 => Some(Stream::CatchUp),
            _ => None,
        }
    }

    fn index(self) -> usize {
        self.tag() as usize
    }
}

/// What the transport calls into.
///
/// For each peer, `connected` and `disconnected` alternate, starting with `connected`. Frames
/// of one stream arrive in order; the two streams of a connection are read concurrently.
/// When an acceptor replaces a connection (the peer restarted), the old connection's
/// `disconnected` comes before the new one's `connected`, and a frame already read from the
/// old connection may still be delivered just after.
pub trait Handler: Send + Sync + 'static {
    /// Frame boundary: `Ok(None)` needs more bytes, `Ok(Some(n))` means `buf[..n]` is one
    /// frame, `Err` means the stream is garbage (the connection is closed).
    fn frame_len(&self, buf: &[u8]) -> Result<Option<usize>, Rejected>;
    /// A connection to `peer` is up and its send streams are open.
    fn connected(&self, peer: u16);
    /// One complete frame from `peer`. `Err` closes the connection.
    fn frame(&self, peer: u16, frame: &[u8]) -> Result<(), Rejected>;
    /// The connection to `peer` is gone (only after a matching `connected`).
    fn disconnected(&self, peer: u16);
    /// A frame to `peer` on `stream` has been written out: its queue has that much more room
    /// ([`Transport::room`]). Called by the stream's writer task; must not block.
    fn drained(&self, _peer: u16, _stream: Stream) {}
    /// A future to await before reading more from any peer, when the handler cannot keep up
    /// (its log is behind): reading stops, and QUIC's flow control slows the sender.
    fn backpressure(
        &self,
    ) -> Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>> {
        None
    }
}

/// One region as the transport knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerSpec {
    /// Region id.
    pub id: u16,
    /// Region name (for logs).
    pub name: String,
    /// The DNS name its certificate must carry.
    pub dns_name: String,
    /// Where to dial it (ignored for peers that dial us).
    pub addr: SocketAddr,
}

/// Everything [`Transport::start`] needs besides the socket.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// This region.
    pub me: PeerSpec,
    /// Every other region.
    pub peers: Vec<PeerSpec>,
    /// Timers and queue bounds.
    pub settings: TransportSettings,
    /// Frames larger than this are refused before they are buffered in full.
    pub max_frame_bytes: usize,
}

/// Connection-level close codes (QUIC application error codes).
mod code {
    use quinn::VarInt;
    pub(super) const SHUTDOWN: VarInt = VarInt::from_u32(0);
    pub(super) const REFUSED: VarInt = VarInt::from_u32(1);
    pub(super) const BAD_FRAME: VarInt = VarInt::from_u32(2);
    pub(super) const REPLACED: VarInt = VarInt::from_u32(3);
}

/// The running mesh endpoint of one region.
pub struct Transport {
    me: PeerSpec,
    peers: BTreeMap<u16, PeerSpec>,
    settings: TransportSettings,
    max_frame_bytes: usize,
    endpoint: quinn::Endpoint,
    handler: Arc<dyn Handler>,
    links: Mutex<BTreeMap<u16, Link>>,
    next_generation: AtomicU64,
    counters: Counters,
    shutdown: CancellationToken,
}

/// The current connection to one peer and the queues feeding its send streams.
struct Link {
    generation: u64,
    conn: quinn::Connection,
    queues: [Queue; 2],
}

/// A bounded queue of frames for one send stream: bounded in frames by the channel and in
/// bytes by `bytes`, which the writer decrements as frames leave.
struct Queue {
    tx: mpsc::Sender<Vec<u8>>,
    bytes: Arc<AtomicUsize>,
}

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    handshake_failures: AtomicU64,
    refused_peers: AtomicU64,
    bad_frames: AtomicU64,
    frames_sent: AtomicU64,
    bytes_sent: AtomicU64,
    frames_received: AtomicU64,
    bytes_received: AtomicU64,
    dropped_queue_full: AtomicU64,
    dropped_no_link: AtomicU64,
}

/// The transport's counters at one moment ([`Transport::stats`]): what `/metrics` renders.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// QUIC connections established with peers.
    pub connections: u64,
    /// Handshakes that failed (TLS, timeout).
    pub handshake_failures: u64,
    /// Connections refused: an unknown region, or a certificate not from the cluster's CA.
    pub refused_peers: u64,
    /// Malformed frames (each closes its connection), whether the framing or the core found
    /// the fault.
    pub bad_frames: u64,
    /// Frames written to QUIC streams, all peers.
    pub frames_sent: u64,
    /// Bytes written to QUIC streams, all peers.
    pub bytes_sent: u64,
    /// Complete frames read from QUIC streams, all peers.
    pub frames_received: u64,
    /// Bytes of complete frames read, all peers.
    pub bytes_received: u64,
    /// Frames dropped because a peer's stream queue was full.
    pub dropped_queue_full: u64,
    /// Frames dropped because no connection to the peer was up.
    pub dropped_no_link: u64,
}

impl TransportStats {
    /// Every counter as a `(name, value)` pair, names prefixed `transport_`.
    pub fn pairs(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("transport_connections", self.connections),
            ("transport_handshake_failures", self.handshake_failures),
            ("transport_refused_peers", self.refused_peers),
            ("transport_bad_frames", self.bad_frames),
            ("transport_frames_sent", self.frames_sent),
            ("transport_bytes_sent", self.bytes_sent),
            ("transport_frames_received", self.frames_received),
            ("transport_bytes_received", self.bytes_received),
            ("transport_dropped_queue_full", self.dropped_queue_full),
            ("transport_dropped_no_link", self.dropped_no_link),
        ]
    }
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Transport {
    /// Starts the endpoint on `socket`: accepts connections from lower-id regions and dials
    /// higher-id ones until `shutdown` is cancelled. Must run inside a tokio runtime.
    pub fn start(
        config: TransportConfig,
        tls: &TlsMaterial,
        socket: std::net::UdpSocket,
        handler: Arc<dyn Handler>,
        shutdown: CancellationToken,
    ) -> Result<Arc<Transport>, TransportError> {
        let (server, client) = tls::configs(tls, &config.settings)?;
        socket
            .set_nonblocking(true)
            .map_err(TransportError::Socket)?;
        let runtime = quinn::default_runtime().ok_or(TransportError::NoRuntime)?;
        let mut endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(server),
            socket,
            runtime,
        )
        .map_err(TransportError::Socket)?;
        endpoint.set_default_client_config(client);
        let t = Arc::new(Transport {
            peers: config.peers.iter().map(|p| (p.id, p.clone())).collect(),
            me: config.me,
            settings: config.settings,
            max_frame_bytes: config.max_frame_bytes,
            endpoint,
            handler,
            links: Mutex::new(BTreeMap::new()),
            next_generation: AtomicU64::new(1),
            counters: Counters::default(),
            shutdown,
        });
        tokio::spawn(t.clone().accept_loop());
        for p in t.peers.values().filter(|p| p.id > t.me.id) {
            let span = tracing::info_span!("dial", region = %t.me.name, peer = %p.name);
            tokio::spawn(t.clone().dial_loop(p.clone()).instrument(span));
        }
        Ok(t)
    }

    /// The local UDP address (useful when bound to port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// Queues one frame for `peer` on `stream`. Returns false, and counts it, when the frame
    /// was dropped because the peer is not connected or its queue is full.
    pub fn send(&self, peer: u16, stream: Stream, bytes: Vec<u8>) -> bool {
        let links = self.links();
        let Some(link) = links.get(&peer) else {
            bump(&self.counters.dropped_no_link, 1);
            return false;
        };
        let q = &link.queues[stream.index()];
        let len = bytes.len();
        // Count before sending, so the writer's decrement can never run first.
        if q.bytes.fetch_add(len, Ordering::Relaxed) + len > self.settings.queue_bytes {
            q.bytes.fetch_sub(len, Ordering::Relaxed);
            bump(&self.counters.dropped_queue_full, 1);
            return false;
        }
        let sent = q.tx.try_send(bytes);
        if sent.is_err() {
            q.bytes.fetch_sub(len, Ordering::Relaxed);
        }
        match sent {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                bump(&self.counters.dropped_queue_full, 1);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                bump(&self.counters.dropped_no_link, 1);
                false
            }
        }
    }

    /// Bytes that [`Transport::send`] would accept for `peer` on `stream` now (0 without a
    /// link, or with the queue's frame bound reached). Only the queue's writer takes from it,
    /// so a frame of at most this size, sent next by the only sender on that stream, is not
    /// dropped for want of room (the catch-up answers rely on it: see
    /// `sessionmesh_core::Replica::poll_catchup`).
    pub fn room(&self, peer: u16, stream: Stream) -> usize {
        let links = self.links();
        let Some(link) = links.get(&peer) else {
            return 0;
        };
        let q = &link.queues[stream.index()];
        if q.tx.capacity() == 0 {
            return 0;
        }
        self.settings
            .queue_bytes
            .saturating_sub(q.bytes.load(Ordering::Relaxed))
    }

    /// Ids of the peers with a live connection.
    pub fn connected_peers(&self) -> Vec<u16> {
        self.links().keys().copied().collect()
    }

    /// The transport's counters, read now.
    pub fn stats(&self) -> TransportStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TransportStats {
            connections: get(&c.connections),
            handshake_failures: get(&c.handshake_failures),
            refused_peers: get(&c.refused_peers),
            bad_frames: get(&c.bad_frames),
            frames_sent: get(&c.frames_sent),
            bytes_sent: get(&c.bytes_sent),
            frames_received: get(&c.frames_received),
            bytes_received: get(&c.bytes_received),
            dropped_queue_full: get(&c.dropped_queue_full),
            dropped_no_link: get(&c.dropped_no_link),
        }
    }

    /// [`Transport::stats`] as `(name, value)` pairs (tests and benchmarks look them up).
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        self.stats().pairs()
    }

    /// Closes every connection and the endpoint, and waits (briefly) for peers to be told.
    pub async fn close(&self) {
        self.shutdown.cancel();
        self.endpoint.close(code::SHUTDOWN, b"shutdown");
        let _ = tokio::time::timeout(Duration::from_millis(500), self.endpoint.wait_idle()).await;
    }

    fn links(&self) -> MutexGuard<'_, BTreeMap<u16, Link>> {
        self.links.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn accept_loop(self: Arc<Self>) {
        loop {
            let incoming = tokio::select! {
                _ = self.shutdown.cancelled() => return,
                i = self.endpoint.accept() => match i {
                    Some(i) => i,
                    None => return,
                },
            };
            let t = self.clone();
            tokio::spawn(async move {
                let remote = incoming.remote_address();
                match incoming.await {
                    Ok(conn) => t.on_accepted(conn).await,
                    Err(e) => {
                        bump(&t.counters.handshake_failures, 1);
                        tracing::warn!(region = %t.me.name, %remote, error = %e, "incoming handshake failed");
                    }
                }
            });
        }
    }

    async fn on_accepted(self: Arc<Self>, conn: quinn::Connection) {
        let peer = match tls::peer_region(&conn, self.peers.values()) {
            Ok(p) if p.id < self.me.id => p.clone(),
            Ok(p) => {
                self.refuse(&conn, &format!("{} must wait for us to dial it", p.name));
                return;
            }
            Err(reason) => {
                self.refuse(&conn, &reason);
                return;
            }
        };
        let span = tracing::info_span!("accepted", region = %self.me.name, peer = %peer.name);
        self.run_link(peer, conn).instrument(span).await;
    }

    fn refuse(&self, conn: &quinn::Connection, reason: &str) {
        bump(&self.counters.refused_peers, 1);
        tracing::warn!(region = %self.me.name, remote = %conn.remote_address(), reason, "peer refused");
        conn.close(code::REFUSED, reason.as_bytes());
    }

    async fn dial_loop(self: Arc<Self>, peer: PeerSpec) {
        let min = Duration::from_millis(self.settings.reconnect_min_ms);
        let max = Duration::from_millis(self.settings.reconnect_max_ms);
        let mut backoff = min;
        while !self.shutdown.is_cancelled() {
            match self.dial(&peer).await {
                Ok(conn) => {
                    backoff = min;
                    self.clone().run_link(peer.clone(), conn).await;
                }
                Err(e) => {
                    tracing::debug!(error = %e, ?backoff, "dial failed");
                }
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(max);
        }
    }

    async fn dial(&self, peer: &PeerSpec) -> Result<quinn::Connection, String> {
        let connecting = self
            .endpoint
            .connect(peer.addr, &peer.dns_name)
            .map_err(|e| e.to_string())?;
        let limit = Duration::from_millis(self.settings.handshake_timeout_ms);
        let conn = tokio::select! {
            _ = self.shutdown.cancelled() => return Err("shutdown".into()),
            c = tokio::time::timeout(limit, connecting) => match c {
                Ok(c) => c.map_err(|e| {
                    bump(&self.counters.handshake_failures, 1);
                    e.to_string()
                })?,
                // Dropping the attempt abandons it; the next one starts after the backoff.
                Err(_) => return Err(format!("no handshake within {limit:?}")),
            },
        };
        // rustls already checked the name we dialed; this also pins the id.
        match tls::peer_region(&conn, self.peers.values()) {
            Ok(p) if p.id == peer.id => Ok(conn),
            Ok(p) => {
                self.refuse(
                    &conn,
                    &format!("dialed {} but reached {}", peer.name, p.name),
                );
                Err("wrong peer".into())
            }
            Err(reason) => {
                self.refuse(&conn, &reason);
                Err(reason)
            }
        }
    }
}
