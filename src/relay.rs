//! A UDP relay placed between two regions' gossip sockets, that tests and `sessionmesh demo`
//! control.
//!
//! The lower-id region `a` is configured to dial the relay instead of `b`; the relay forwards
//! `a`'s datagrams to `b` from its own socket, so `b` answers the relay, which forwards back
//! to `a`. Cutting, healing and delaying the link is then a matter of what the relay does
//! with each datagram: forward, drop, or forward later (turmoil's Pass/Drop/Deliver(delay)).
//!
//! It only ever binds and sends to loopback addresses, and refuses anything else.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// A running relay between `a` and `b`.
pub struct Relay {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct State {
    partitioned: AtomicBool,
    delay_to_b_ms: AtomicU64,
    delay_to_a_ms: AtomicU64,
    forwarded: AtomicU64,
    dropped: AtomicU64,
}

impl Relay {
    /// Starts a relay between the gossip sockets `a` and `b`, listening on an ephemeral
    /// loopback port. Datagrams from anyone else are dropped.
    ///
    /// # Panics
    /// If `a` or `b` is not a loopback address (tests); [`Relay::try_start`] returns an error.
    pub async fn start(a: SocketAddr, b: SocketAddr) -> Relay {
        Relay::try_start(a, b).await.expect("start relay")
    }

    /// Like [`Relay::start`], with errors instead of panics.
    pub async fn try_start(a: SocketAddr, b: SocketAddr) -> std::io::Result<Relay> {
        if !(a.ip().is_loopback() && b.ip().is_loopback()) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("a relay only joins loopback addresses, not {a} and {b}"),
            ));
        }
        let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
        let addr = sock.local_addr()?;
        let state = Arc::new(State::default());
        let task = tokio::spawn(run(sock, a, b, state.clone()));
        Ok(Relay { addr, state, task })
    }

    /// Whether the link is cut.
    pub fn is_partitioned(&self) -> bool {
        self.state.partitioned.load(Ordering::SeqCst)
    }

    /// The address `a` should dial instead of `b`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every datagram in both directions until [`Relay::heal`].
    pub fn partition(&self) {
        self.state.partitioned.store(true, Ordering::SeqCst);
    }

    /// Forwards again.
    pub fn heal(&self) {
        self.state.partitioned.store(false, Ordering::SeqCst);
    }

    /// Delays datagrams from `a` to `b` by `d` (one way).
    pub fn delay_to_b(&self, d: Duration) {
        self.state
            .delay_to_b_ms
            .store(d.as_millis() as u64, Ordering::SeqCst);
    }

    /// Delays datagrams from `b` to `a` by `d` (one way).
    pub fn delay_to_a(&self, d: Duration) {
        self.state
            .delay_to_a_ms
            .store(d.as_millis() as u64, Ordering::SeqCst);
    }

    /// Datagrams forwarded so far.
    pub fn forwarded(&self) -> u64 {
        self.state.forwarded.load(Ordering::SeqCst)
    }

    /// Datagrams dropped so far (partitioned, or from a stranger).
    pub fn dropped(&self) -> u64 {
        self.state.dropped.load(Ordering::SeqCst)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(sock: Arc<UdpSocket>, a: SocketAddr, b: SocketAddr, state: Arc<State>) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf).await else {
            // ICMP port-unreachable from a stopped node shows up as an error: keep going.
            continue;
        };
        let (to, delay_ms) = if from == a {
            (b, state.delay_to_b_ms.load(Ordering::SeqCst))
        } else if from == b {
            (a, state.delay_to_a_ms.load(Ordering::SeqCst))
        } else {
            state.dropped.fetch_add(1, Ordering::SeqCst);
            continue;
        };
        if state.partitioned.load(Ordering::SeqCst) {
            state.dropped.fetch_add(1, Ordering::SeqCst);
            continue;
        }
        state.forwarded.fetch_add(1, Ordering::SeqCst);
        if delay_ms == 0 {
            let _ = sock.send_to(&buf[..n], to).await;
        } else {
            let sock = sock.clone();
            let datagram = buf[..n].to_vec();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                let _ = sock.send_to(&datagram, to).await;
            });
        }
    }
}
