//! Two or three real endpoints on loopback exchanging raw length-prefixed frames, with a
//! recording handler in place of the node.

use super::*;
use crate::certs;
use std::path::Path;
use std::time::Instant;

/// Frames are a 4-byte big-endian length and that many bytes; a length of 0xFFFF_FFFF is
/// "malformed" (so tests can send garbage on purpose).
#[derive(Default)]
struct Recorder {
    frames: Mutex<Vec<(u16, Vec<u8>)>>,
    connects: AtomicU64,
    disconnects: AtomicU64,
}

impl Handler for Recorder {
    fn frame_len(&self, buf: &[u8]) -> Result<Option<usize>, Rejected> {
        if buf.len() < 4 {
            return Ok(None);
        }
        let n = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        if n == u32::MAX {
            return Err(Rejected("garbage".into()));
        }
        let total = 4 + n as usize;
        Ok((buf.len() >= total).then_some(total))
    }
    fn connected(&self, _peer: u16) {
        self.connects.fetch_add(1, Ordering::SeqCst);
    }
    fn frame(&self, peer: u16, frame: &[u8]) -> Result<(), Rejected> {
        if frame[4..].starts_with(b"reject") {
            return Err(Rejected("handler says no".into()));
        }
        self.frames
            .lock()
            .unwrap()
            .push((peer, frame[4..].to_vec()));
        Ok(())
    }
    fn disconnected(&self, _peer: u16) {
        self.disconnects.fetch_add(1, Ordering::SeqCst);
    }
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut v = (payload.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(payload);
    v
}

struct Side {
    t: Arc<Transport>,
    h: Arc<Recorder>,
    stop: CancellationToken,
}

fn settings() -> TransportSettings {
    TransportSettings {
        keep_alive_ms: 200,
        idle_timeout_ms: 1_000,
        reconnect_min_ms: 20,
        reconnect_max_ms: 200,
        handshake_timeout_ms: 1_000,
        queue_frames: 256,
        queue_bytes: 1 << 20,
    }
}

fn material(dir: &Path, name: &str) -> TlsMaterial {
    use rustls_pki_types::pem::PemObject;
    let cert = |f: &str| rustls_pki_types::CertificateDer::from_pem_file(dir.join(f)).unwrap();
    TlsMaterial {
        ca: cert("ca.pem"),
        chain: vec![cert(&format!("{name}.pem"))],
        key: rustls_pki_types::PrivateKeyDer::from_pem_file(dir.join(format!("{name}.key")))
            .unwrap(),
    }
}

fn spec(id: u16, name: &str, addr: SocketAddr) -> PeerSpec {
    PeerSpec {
        id,
        name: name.into(),
        dns_name: format!("{name}.sessionmesh"),
        addr,
    }
}

/// Starts one side per `(id, name, cert dir)`, all knowing each other's real addresses.
fn start(sides: &[(u16, &str, &Path)]) -> Vec<Side> {
    let sockets: Vec<_> = sides
        .iter()
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let specs: Vec<PeerSpec> = sides
        .iter()
        .zip(&sockets)
        .map(|((id, name, _), s)| spec(*id, name, s.local_addr().unwrap()))
        .collect();
    sides
        .iter()
        .zip(sockets)
        .enumerate()
        .map(|(i, ((_, name, dir), socket))| {
            let h = Arc::new(Recorder::default());
            let stop = CancellationToken::new();
            let config = TransportConfig {
                me: specs[i].clone(),
                peers: specs
                    .iter()
                    .filter(|p| p.id != specs[i].id)
                    .cloned()
                    .collect(),
                settings: settings(),
                max_frame_bytes: 4096,
            };
            let t = Transport::start(
                config,
                &material(dir, name),
                socket,
                h.clone(),
                stop.clone(),
            )
            .unwrap();
            Side { t, h, stop }
        })
        .collect()
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn payloads(h: &Recorder, from: u16) -> Vec<Vec<u8>> {
    h.frames
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| *p == from)
        .map(|(_, f)| f.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_flow_both_ways_in_order_on_both_streams() {
    let dir = tempfile::tempdir().unwrap();
    certs::generate_for(&["a", "b", "c"], dir.path()).unwrap();
    let sides = start(&[
        (1, "a", dir.path()),
        (2, "b", dir.path()),
        (3, "c", dir.path()),
    ]);
    until("full mesh", || {
        sides.iter().all(|s| s.t.connected_peers().len() == 2)
    })
    .await;
    for i in 0..100u32 {
        let stream = if i % 2 == 0 {
            Stream::Delta
        } else {
            Stream::CatchUp
        };
        assert!(sides[0].t.send(2, stream, frame(&i.to_be_bytes())));
        assert!(sides[2].t.send(2, Stream::Delta, frame(&i.to_be_bytes())));
        assert!(sides[1].t.send(1, Stream::Delta, frame(&i.to_be_bytes())));
    }
    // A frame split across many writes still arrives whole.
    let big = vec![7u8; 3000];
    assert!(sides[1].t.send(3, Stream::CatchUp, frame(&big)));
    until("all frames", || {
        payloads(&sides[1].h, 1).len() == 100
            && payloads(&sides[1].h, 3).len() == 100
            && payloads(&sides[0].h, 2).len() == 100
            && payloads(&sides[2].h, 2).len() == 1
    })
    .await;
    let want: Vec<Vec<u8>> = (0..100u32).map(|i| i.to_be_bytes().to_vec()).collect();
    assert_eq!(payloads(&sides[1].h, 3), want, "one stream keeps order");
    assert_eq!(payloads(&sides[0].h, 2), want);
    assert_eq!(payloads(&sides[2].h, 2), vec![big]);
    // One connection per pair: each side saw exactly one connect per peer.
    for s in &sides {
        assert_eq!(s.h.connects.load(Ordering::SeqCst), 2);
    }
    for s in &sides {
        s.t.close().await;
    }
}

/// On a current-thread runtime no writer runs while the test sends synchronously, so the
/// bound is hit exactly: the queue holds `queue_frames`, the rest are dropped and counted.
#[tokio::test(flavor = "current_thread")]
async fn full_queue_drops_and_counts_instead_of_growing() {
    let dir = tempfile::tempdir().unwrap();
    certs::generate_for(&["a", "b"], dir.path()).unwrap();
    let sides = start(&[(1, "a", dir.path()), (2, "b", dir.path())]);
    until("link", || sides[0].t.connected_peers() == [2]).await;
    let cap = settings().queue_frames;
    let sent = (0..cap + 10)
        .filter(|i| sides[0].t.send(2, Stream::Delta, frame(&i.to_be_bytes())))
        .count();
    assert_eq!(sent, cap);
    let dropped = sides[0]
        .t
        .counters()
        .into_iter()
        .find(|(k, _)| *k == "transport_dropped_queue_full");
    assert_eq!(dropped, Some(("transport_dropped_queue_full", 10)));
    until("queued frames", || payloads(&sides[1].h, 1).len() == cap).await;
    for s in &sides {
        s.t.close().await;
    }
}

/// The byte bound holds too: big frames are refused once the queue holds `queue_bytes`.
#[tokio::test(flavor = "current_thread")]
async fn byte_bound_drops_big_frames() {
    let dir = tempfile::tempdir().unwrap();
    certs::generate_for(&["a", "b"], dir.path()).unwrap();
    let sides = start(&[(1, "a", dir.path()), (2, "b", dir.path())]);
    until("link", || sides[0].t.connected_peers() == [2]).await;
    let big = frame(&vec![1u8; 8000]);
    let fits = settings().queue_bytes / big.len();
    let sent = (0..fits + 5)
        .filter(|_| sides[0].t.send(2, Stream::CatchUp, big.clone()))
        .count();
    assert_eq!(sent, fits);
    for s in &sides {
        s.t.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frame_closes_the_connection_which_then_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    certs::generate_for(&["a", "b"], dir.path()).unwrap();
    let sides = start(&[(1, "a", dir.path()), (2, "b", dir.path())]);
    until("link", || sides[1].t.connected_peers() == [1]).await;
    assert!(sides[0].t.send(2, Stream::Delta, frame(b"before")));
    assert!(sides[0]
        .t
        .send(2, Stream::Delta, u32::MAX.to_be_bytes().to_vec()));
    // May already find the link gone (the receiver closes it fast): either way, never applied.
    let _ = sides[0].t.send(2, Stream::Delta, frame(b"after-garbage"));
    until("disconnect", || {
        sides[1].h.disconnects.load(Ordering::SeqCst) >= 1
    })
    .await;
    let bad = sides[1]
        .t
        .counters()
        .into_iter()
        .find(|(k, _)| *k == "transport_bad_frames");
    assert_eq!(bad, Some(("transport_bad_frames", 1)));
    assert_eq!(
        payloads(&sides[1].h, 1),
        vec![b"before".to_vec()],
        "nothing after garbage"
    );
    // The dialer reconnects with backoff, and frames flow again.
    until("reconnect", || {
        sides[1].h.connects.load(Ordering::SeqCst) >= 2
    })
    .await;
    until("resend", || {
        sides[0].t.send(2, Stream::Delta, frame(b"again"));
        payloads(&sides[1].h, 1).contains(&b"again".to_vec())
    })
    .await;
    // A frame the handler rejects also closes the connection.
    assert!(sides[0].t.send(2, Stream::Delta, frame(b"reject me")));
    until("second disconnect", || {
        sides[1].h.disconnects.load(Ordering::SeqCst) >= 2
    })
    .await;
    for s in &sides {
        s.stop.cancel();
        s.t.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_from_another_ca_is_refused() {
    let good = tempfile::tempdir().unwrap();
    let evil = tempfile::tempdir().unwrap();
    certs::generate_for(&["a", "b"], good.path()).unwrap();
    certs::generate_for(&["a", "b"], evil.path()).unwrap();
    // "a" (the dialer) has certificates from another CA that name the right region.
    let sides = start(&[(1, "a", evil.path()), (2, "b", good.path())]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sides[1].t.connected_peers().is_empty());
    assert_eq!(sides[1].h.connects.load(Ordering::SeqCst), 0);
    assert_eq!(sides[0].h.connects.load(Ordering::SeqCst), 0);
    assert!(!sides[0].t.send(2, Stream::Delta, frame(b"x")));
    let failures = |s: &Side| {
        s.t.counters()
            .into_iter()
            .find(|(k, _)| *k == "transport_handshake_failures")
            .map_or(0, |(_, v)| v)
    };
    assert!(failures(&sides[0]) + failures(&sides[1]) > 0);
    for s in &sides {
        s.t.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_with_an_expired_certificate_is_refused() {
    // One CA; "a"'s certificate names the right region but expired yesterday.
    let dir = tempfile::tempdir().unwrap();
    certs::generate_with_expired(&["a", "b"], &["a"], dir.path()).unwrap();
    let sides = start(&[(1, "a", dir.path()), (2, "b", dir.path())]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sides[1].t.connected_peers().is_empty());
    assert_eq!(sides[1].h.connects.load(Ordering::SeqCst), 0);
    for s in &sides {
        s.t.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_of_an_unlisted_region_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    certs::generate_for(&["a", "b", "z"], dir.path()).unwrap();
    // Side 1 presents z's certificate while claiming to be "a": right CA, unlisted region.
    let sockets = [
        std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
        std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
    ];
    let a = spec(1, "a", sockets[0].local_addr().unwrap());
    let b = spec(2, "b", sockets[1].local_addr().unwrap());
    let [sa, sb] = sockets;
    let ha = Arc::new(Recorder::default());
    let hb = Arc::new(Recorder::default());
    let cfg = |me: &PeerSpec, peer: &PeerSpec| TransportConfig {
        me: me.clone(),
        peers: vec![peer.clone()],
        settings: settings(),
        max_frame_bytes: 4096,
    };
    let ta = Transport::start(
        cfg(&a, &b),
        &material(dir.path(), "z"),
        sa,
        ha.clone(),
        CancellationToken::new(),
    )
    .unwrap();
    let tb = Transport::start(
        cfg(&b, &a),
        &material(dir.path(), "b"),
        sb,
        hb.clone(),
        CancellationToken::new(),
    )
    .unwrap();
    let refused = |t: &Transport| {
        t.counters()
            .into_iter()
            .find(|(k, _)| *k == "transport_refused_peers")
            .map_or(0, |(_, v)| v)
    };
    until("refusal", || refused(&tb) > 0).await;
    assert_eq!(hb.connects.load(Ordering::SeqCst), 0);
    ta.close().await;
    tb.close().await;
}
