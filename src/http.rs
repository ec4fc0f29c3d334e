//! The operator's HTTP port: `/health`, `/ready`, `/metrics` (Prometheus text format) and
//! `/status` (JSON).
//!
//! `/metrics` is rendered by [`crate::metrics`], the one module that names metrics; this one
//! only routes. `/status` is the same state as JSON for people and for `sessionmesh status`.
//!
//! It serves GET only and has no authentication; bind it to an operator network.

use crate::node::Node;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Serves HTTP on `listener` until `shutdown`. Open connections are dropped at shutdown.
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    node: Arc<Node>,
    shutdown: CancellationToken,
) {
    let mut conns = JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(region = %node.region_name(), error = %e, "http accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let node = node.clone();
        // Debug level: scrapes come every few seconds, and one info span each would be noise.
        let span = tracing::debug_span!("http", region = %node.region_name(), %peer);
        conns.spawn(
            async move {
                let service = hyper::service::service_fn(move |req| {
                    let node = node.clone();
                    async move { Ok::<_, Infallible>(route(&node, &req)) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            }
            .instrument(span),
        );
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
        "/metrics" => reply(
            StatusCode::OK,
            crate::metrics::CONTENT_TYPE,
            crate::metrics::render(&node.scrape()),
        ),
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
///
/// Fields are only ever added (scripts read it). Per peer: `lag_ms` is `null` until the peer
/// acknowledged anything, `lag_writes` counts our writes it has not acknowledged, and
/// `clock_offset_ms` is its clock minus ours (signed, latency included). `memory_bytes` is the
/// process's resident memory, shared by regions in one process; `null` without procfs.
/// `restoring` is `null`, or while the region restores after a restart: its floor, the peers
/// it still waits for, for how long, the key deltas received so far and whether writes are
/// still held back (a moment after the start).
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
                "lag_writes": rep.map(|r| r.lag_writes),
                "clock_offset_ms": rep.map(|r| r.clock_offset_ms),
                "evicted": rep.map(|r| r.evicted),
                "frames_sent": rep.map(|r| r.traffic.frames_sent),
                "bytes_sent": rep.map(|r| r.traffic.bytes_sent),
                "frames_received": rep.map(|r| r.traffic.frames_received),
                "bytes_received": rep.map(|r| r.traffic.bytes_received),
            })
        })
        .collect();
    let s = node.stats();
    let names: std::collections::BTreeMap<u16, String> = node
        .peer_views()
        .into_iter()
        .map(|p| (p.id.0, p.name))
        .collect();
    let restoring = node.restoring().map(|r| {
        serde_json::json!({
            "floor": r.floor.to_string(),
            "waiting_for": r.waiting.iter().map(|id| names.get(&id.0).cloned().unwrap_or_else(|| id.to_string())).collect::<Vec<_>>(),
            "for_ms": node.mono_ms_since(r.since_mono_ms),
            "keys_received": r.keys_received,
            "writes_held": !r.stamps_ready,
        })
    });
    serde_json::json!({
        "region": node.region_name(),
        "id": node.region_id().0,
        "ready": node.ready(),
        "restoring": restoring,
        "reroutes": s.reroutes,
        "peers": peers,
        "keys": s.keys,
        "tombstones": s.tombstones,
        "conflicts": s.conflicts,
        "held": s.held,
        "expired": s.expired,
        "local_writes": s.local_writes,
        "memory_bytes": crate::metrics::resident_memory_bytes(),
    })
    .to_string()
}
