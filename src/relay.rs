//! A UDP relay placed between two regions' gossip sockets, that tests and `sessionmesh demo`
//! control.
//!
//! The lower-id region `a` is configured to dial the relay instead of `b`; the relay forwards
//! `a`'s datagrams to `b` from its own socket, so `b` answers the relay, which forwards back
//! to `a`. Cutting, healing, delaying and degrading the link is then a matter of what the relay
//! does with each datagram: forward, drop, or forward later (turmoil's Pass/Drop/Deliver(delay)).
//! Random loss is drawn from a ChaCha stream seeded by the caller, so a test replays it.
//!
//! It only ever binds and sends to loopback addresses, and refuses anything else.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
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
    /// Probability of dropping a datagram, in parts per million, per direction.
    loss_to_b_ppm: AtomicU64,
    loss_to_a_ppm: AtomicU64,
    forwarded: AtomicU64,
    dropped: AtomicU64,
}

impl Relay {
    /// Starts a relay between the gossip sockets `a` and `b`, listening on an ephemeral
    /// loopback port. Datagrams from anyone else are dropped.
    ///
    /// # Panics
    /// If `a` or `b` is not a loopback address (tests); [`Relay::try_start`] returns an error.
    #[allow(
        clippy::expect_used,
        reason = "the panicking variant, for tests; try_start returns the error"
    )]
    pub async fn start(a: SocketAddr, b: SocketAddr) -> Relay {
        Relay::try_start(a, b).await.expect("start relay")
    }

    /// Like [`Relay::start`], with errors instead of panics.
    pub async fn try_start(a: SocketAddr, b: SocketAddr) -> std::io::Result<Relay> {
        Relay::try_start_seeded(a, b, 0).await
    }

    /// Like [`Relay::try_start`], drawing random loss ([`Relay::set_loss`]) from `seed`.
    pub async fn try_start_seeded(
        a: SocketAddr,
        b: SocketAddr,
        seed: u64,
    ) -> std::io::Result<Relay> {
        if !(a.ip().is_loopback() && b.ip().is_loopback()) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("a relay only joins loopback addresses, not {a} and {b}"),
            ));
        }
        let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
        let addr = sock.local_addr()?;
        let state = Arc::new(State::default());
        let rng = ChaCha8Rng::seed_from_u64(seed);
        let task = tokio::spawn(run(sock, a, b, state.clone(), rng));
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

    /// Drops each datagram with probability `to_b` from `a` to `b`, and `to_a` back (0 to 1).
    pub fn set_loss(&self, to_b: f64, to_a: f64) {
        let ppm = |p: f64| (p.clamp(0.0, 1.0) * 1e6) as u64;
        self.state.loss_to_b_ppm.store(ppm(to_b), Ordering::SeqCst);
        self.state.loss_to_a_ppm.store(ppm(to_a), Ordering::SeqCst);
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

async fn run(
    sock: Arc<UdpSocket>,
    a: SocketAddr,
    b: SocketAddr,
    state: Arc<State>,
    mut rng: ChaCha8Rng,
) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf).await else {
            // ICMP port-unreachable from a stopped node shows up as an error: keep going.
            continue;
        };
        let (to, delay_ms, loss_ppm) = if from == a {
            (
                b,
                state.delay_to_b_ms.load(Ordering::SeqCst),
                state.loss_to_b_ppm.load(Ordering::SeqCst),
            )
        } else if from == b {
            (
                a,
                state.delay_to_a_ms.load(Ordering::SeqCst),
                state.loss_to_a_ppm.load(Ordering::SeqCst),
            )
        } else {
            state.dropped.fetch_add(1, Ordering::SeqCst);
            continue;
        };
        let lost = loss_ppm > 0 && rng.gen_range(0..1_000_000) < loss_ppm;
        if lost || state.partitioned.load(Ordering::SeqCst) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Seeded loss drops about the share asked for, only in the direction asked for, and the
    /// same seed drops the same datagrams.
    #[tokio::test]
    async fn loss_is_seeded_and_one_way() {
        let mut counts = Vec::new();
        for _ in 0..2 {
            let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let (aa, ba) = (a.local_addr().unwrap(), b.local_addr().unwrap());
            let relay = Relay::try_start_seeded(aa, ba, 7).await.unwrap();
            relay.set_loss(0.5, 0.0);
            for i in 0..400u32 {
                a.send_to(&i.to_be_bytes(), relay.addr()).await.unwrap();
                // One at a time, so the relay sees them in order.
                while relay.forwarded() + relay.dropped() < u64::from(i) + 1 {
                    tokio::task::yield_now().await;
                }
            }
            let to_b = (relay.forwarded(), relay.dropped());
            assert!(
                (120..280).contains(&to_b.0),
                "forwarded {to_b:?} of 400 at 50% loss"
            );
            // Nothing is lost from b to a.
            let before = relay.forwarded();
            for _ in 0..50 {
                b.send_to(b"x", relay.addr()).await.unwrap();
            }
            while relay.forwarded() + relay.dropped() < to_b.0 + to_b.1 + 50 {
                tokio::task::yield_now().await;
            }
            assert_eq!(relay.forwarded() - before, 50);
            counts.push(to_b);
        }
        assert_eq!(counts[0], counts[1], "same seed, same drops");
    }
}
