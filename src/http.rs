//! The operator's HTTP port: `/health`, `/ready`, `/metrics` (Prometheus text format) and
//! `/status` (JSON).
//!
//! This is the one module that names metrics: the core and the transport report plain
//! counters, and here they get their Prometheus names, types and labels. Labels stay
//! low-cardinality: the region and the peer region, never a key.
//!
//! It serves GET only and has no authentication; bind it to an operator network.

use crate::node::Node;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Serves HTTP on `listener` until `shutdown`. Open connections are dropped at shutdown.
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    node: Arc<Node>,
    shutdown: CancellationToken,
) {
    let mut conns = JoinSet::new();
    loop {
        let (stream, _) = tokio::select! {
            _ = shutdown.cancelled() => return,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "http accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let node = node.clone();
        conns.spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let node = node.clone();
                async move { Ok::<_, Infallible>(route(&node, &req)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn route(node: &Node, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    match req.uri().path() {
        "/health" => reply(StatusCode::OK, "text/plain", "ok\n".into()),
        "/ready" => {
            if node.ready() {
                reply(StatusCode::OK, "text/plain", "ready\n".into())
            } else {
                reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    "not ready\n".into(),
                )
            }
        }
        "/metrics" => reply(StatusCode::OK, "text/plain; version=0.0.4", metrics(node)),
        "/status" => reply(StatusCode::OK, "application/json", status(node)),
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}

fn reply(code: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = code;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

/// `/status`: this region, readiness, each peer's link and replication state, core counters.
pub fn status(node: &Node) -> String {
    let peers: Vec<serde_json::Value> = node
        .peer_views()
        .into_iter()
        .map(|p| {
            let rep = p.replication.as_ref();
            serde_json::json!({
                "name": p.name,
                "id": p.id.0,
                "connected": p.link.connected,
                "trusted": p.link.trusted,
                "connects": p.link.connects,
                "last_heard_ms": p.since_last_frame_ms,
                "lag_ms": p.lag_ms,
                "clock_offset_ms": rep.map(|r| r.clock_offset_ms),
                "evicted": rep.map(|r| r.evicted),
            })
        })
        .collect();
    let s = node.stats();
    serde_json::json!({
        "region": node.region_name(),
        "id": node.region_id().0,
        "ready": node.ready(),
        "peers": peers,
        "keys": s.keys,
        "tombstones": s.tombstones,
        "conflicts": s.conflicts,
        "held": s.held,
        "local_writes": s.local_writes,
    })
    .to_string()
}

/// `/metrics` in the Prometheus text exposition format.
pub fn metrics(node: &Node) -> String {
    let region = node.region_name();
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
        let _ = writeln!(out, "# HELP sessionmesh_{name} {help}");
        let _ = writeln!(out, "# TYPE sessionmesh_{name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "sessionmesh_{name}{{{labels}}} {v}");
        }
    };
    let me = format!("region=\"{region}\"");
    let s = node.stats();
    let one = |v: u64| [(me.clone(), v)];
    family(
        "keys",
        "gauge",
        "Keys stored, tombstones included.",
        &one(s.keys),
    );
    family(
        "tombstones",
        "gauge",
        "Deleted or expired keys pending collection.",
        &one(s.tombstones),
    );
    family(
        "collected_total",
        "counter",
        "Keys garbage-collected.",
        &one(s.collected),
    );
    family(
        "conflicts_total",
        "counter",
        "Writes that lost to a concurrent write or a delete.",
        &one(s.conflicts),
    );
    family(
        "held_deltas",
        "gauge",
        "Deltas held back because of clock skew.",
        &one(s.held),
    );
    family(
        "index_entries",
        "gauge",
        "Entries of the origin/stamp index.",
        &one(s.index_entries),
    );
    family(
        "dirty_keys",
        "gauge",
        "Keys written locally, not yet pushed.",
        &one(s.dirty),
    );
    family(
        "local_writes_total",
        "counter",
        "Write commands executed here.",
        &one(s.local_writes),
    );
    family(
        "frames_sent_total",
        "counter",
        "Gossip frames produced.",
        &one(s.frames_sent),
    );
    family(
        "bytes_sent_total",
        "counter",
        "Gossip bytes produced.",
        &one(s.bytes_sent),
    );
    family(
        "frames_received_total",
        "counter",
        "Gossip frames applied.",
        &one(s.frames_received),
    );
    family(
        "bytes_received_total",
        "counter",
        "Gossip bytes applied.",
        &one(s.bytes_received),
    );
    family(
        "bad_frames_total",
        "counter",
        "Malformed gossip frames rejected.",
        &one(s.bad_frames),
    );
    for (name, v) in node.node_counters() {
        family(
            &format!("{name}_total"),
            "counter",
            "Node/transport counter.",
            &one(v),
        );
    }

    let peers = node.peer_views();
    let per_peer = |f: &dyn Fn(&crate::node::PeerView) -> u64| -> Vec<(String, u64)> {
        peers
            .iter()
            .map(|p| (format!("region=\"{region}\",peer=\"{}\"", p.name), f(p)))
            .collect()
    };
    family(
        "peer_connected",
        "gauge",
        "1 when a QUIC connection to the peer is up and a frame from it decoded.",
        &per_peer(&|p| u64::from(p.link.connected && p.link.trusted)),
    );
    // Peers that never acknowledged anything have no lag sample (rather than a fake one).
    let lags: Vec<(String, u64)> = peers
        .iter()
        .filter_map(|p| {
            Some((
                format!("region=\"{region}\",peer=\"{}\"", p.name),
                p.lag_ms?,
            ))
        })
        .collect();
    family(
        "peer_lag_ms",
        "gauge",
        "How far the peer's acknowledged watermark trails our newest write.",
        &lags,
    );
    family(
        "peer_connects_total",
        "counter",
        "Connections established with the peer.",
        &per_peer(&|p| p.link.connects),
    );
    // Offsets can be negative: written separately as a signed gauge.
    let _ = writeln!(
        out,
        "# HELP sessionmesh_peer_clock_offset_ms Peer clock minus ours at its last push."
    );
    let _ = writeln!(out, "# TYPE sessionmesh_peer_clock_offset_ms gauge");
    for p in &peers {
        let v = p.replication.as_ref().map_or(0, |r| r.clock_offset_ms);
        let _ = writeln!(
            out,
            "sessionmesh_peer_clock_offset_ms{{region=\"{region}\",peer=\"{}\"}} {v}",
            p.name
        );
    }
    out
}
