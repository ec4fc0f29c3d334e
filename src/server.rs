//! Starting and stopping one region: bind its three listeners, load and check its
//! certificates, and run the Redis server, the QUIC mesh, the HTTP endpoints and the driver
//! until told to stop.
//!
//! Used by `sessionmesh serve` (one region), `sessionmesh demo` (every region in one process)
//! and the integration tests (which bind ephemeral ports themselves and pass the sockets in,
//! so there is no window in which another process can take a port).
//!
//! Before anything listens, the region's data folder is locked and recovered; the node starts
//! from that state. If persistence fails later the region stops itself ([`Server::failed`]).
//!
//! This module holds no logic of its own beyond wiring and ordering.

use crate::certs::{self, CertError, TlsMaterial};
use crate::config::{Config, ConfigError, RegionSpec};
use crate::node::{self, Node};
use crate::persist::{Persist, PersistError};
use crate::transport::{PeerSpec, Transport, TransportConfig, TransportError};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Why a region could not start. Nothing is left running on error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The config does not name the region, or is otherwise unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The region's certificates are missing or invalid.
    #[error(transparent)]
    Certs(#[from] CertError),
    /// A listener could not be bound.
    #[error("cannot bind {what} listener on {addr}: {error}")]
    Bind {
        /// Which listener (`redis`, `gossip`, `http`).
        what: &'static str,
        /// The configured address.
        addr: SocketAddr,
        /// The OS error.
        error: std::io::Error,
    },
    /// The QUIC endpoint could not start.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The data folder could not be opened or recovered (a torn log tail is not an error).
    #[error(transparent)]
    Persist(#[from] PersistError),
}

/// The three sockets of one region, bound before anything starts.
#[derive(Debug)]
pub struct Listeners {
    /// Redis clients.
    pub redis: std::net::TcpListener,
    /// The QUIC endpoint (accepts and dials).
    pub gossip: std::net::UdpSocket,
    /// `/health`, `/ready`, `/metrics`, `/status`.
    pub http: std::net::TcpListener,
}

impl Listeners {
    /// Binds the addresses `region` configures.
    pub fn bind(region: &RegionSpec) -> Result<Listeners, ServerError> {
        let err = |what, addr| move |error| ServerError::Bind { what, addr, error };
        Ok(Listeners {
            redis: std::net::TcpListener::bind(region.redis).map_err(err("redis", region.redis))?,
            gossip: std::net::UdpSocket::bind(region.gossip)
                .map_err(err("gossip", region.gossip))?,
            http: std::net::TcpListener::bind(region.http).map_err(err("http", region.http))?,
        })
    }
}

/// The Redis listener's TLS configuration from `[redis] tls_cert` and `tls_key` (TLS 1.2 and
/// 1.3, the ring provider passed explicitly as for the mesh; no client certificates).
fn redis_tls(
    config: &Config,
) -> Result<Option<Arc<tokio_rustls::rustls::ServerConfig>>, CertError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let Some((cert, key)) = &config.redis().tls else {
        return Ok(None);
    };
    let bad = |path: &std::path::Path, reason: String| CertError::Invalid {
        path: path.to_owned(),
        region: "(redis listener)".to_string(),
        reason,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| bad(cert, format!("redis.tls_cert: {e}")))?;
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, format!("redis.tls_key: {e}")))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let cfg = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| bad(cert, format!("redis.tls_cert/tls_key: {e}")))?;
    Ok(Some(Arc::new(cfg)))
}

/// The Redis server's options from `[redis]`: unset bounds keep the server's defaults.
fn redis_options(config: &Config) -> crate::resp::ServerOptions {
    let r = config.redis();
    let d = crate::resp::Limits::default();
    crate::resp::ServerOptions {
        limits: crate::resp::Limits {
            max_bulk_len: r.max_bulk_len.unwrap_or(d.max_bulk_len),
            max_array_len: r.max_array_len.unwrap_or(d.max_array_len),
            max_pipeline: r.max_pipeline.unwrap_or(d.max_pipeline),
            max_query_buffer: r.max_query_buffer.unwrap_or(d.max_query_buffer),
            max_output_buffer: r.max_output_buffer.unwrap_or(d.max_output_buffer),
            max_multi_queue: r.max_multi_queue.unwrap_or(d.max_multi_queue),
            max_clients: r.max_clients.unwrap_or(d.max_clients),
            busy_reply_threshold_ms: r
                .busy_reply_threshold_ms
                .unwrap_or(d.busy_reply_threshold_ms),
            databases: r.databases.unwrap_or(d.databases),
        },
        requirepass: r
            .requirepass
            .as_ref()
            .map(|p| bytes::Bytes::copy_from_slice(p.as_bytes())),
        users: r
            .users
            .iter()
            .map(|(u, p)| {
                (
                    bytes::Bytes::copy_from_slice(u.as_bytes()),
                    bytes::Bytes::copy_from_slice(p.as_bytes()),
                )
            })
            .collect(),
        tls: None,
        // One serving thread per core unless configured: measured against the shared
        // multi-threaded runtime, it was as fast or faster on all six throughput figures
        // (docs/DESIGN.md §8a, "Threading").
        io_threads: r.io_threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        }),
    }
}

/// A running region.
pub struct Server {
    node: Arc<Node>,
    transport: Arc<Transport>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    redis_addr: SocketAddr,
    http_addr: SocketAddr,
    gossip_addr: SocketAddr,
}

impl Server {
    /// Starts region `name` of `config` on its configured addresses with its configured
    /// certificates. Certificates are checked before any socket is bound.
    pub async fn start(config: &Config, name: &str) -> Result<Server, ServerError> {
        let region = config.region(name)?;
        let tls = certs::load(config, region)?;
        let listeners = Listeners::bind(region)?;
        Server::start_with(config, name, listeners, tls).await
    }

    /// Starts region `name` on sockets bound by the caller, with the given TLS material.
    pub async fn start_with(
        config: &Config,
        name: &str,
        listeners: Listeners,
        tls: TlsMaterial,
    ) -> Result<Server, ServerError> {
        let region = config.region(name)?.clone();
        let bind_err = |what, addr| move |error| ServerError::Bind { what, addr, error };
        let redis_addr = listeners
            .redis
            .local_addr()
            .map_err(bind_err("redis", region.redis))?;
        let http_addr = listeners
            .http
            .local_addr()
            .map_err(bind_err("http", region.http))?;
        let gossip_addr = listeners
            .gossip
            .local_addr()
            .map_err(bind_err("gossip", region.gossip))?;
        let to_tokio = |l: std::net::TcpListener, what, addr| {
            l.set_nonblocking(true)
                .and_then(|()| tokio::net::TcpListener::from_std(l))
                .map_err(bind_err(what, addr))
        };
        let redis = to_tokio(listeners.redis, "redis", redis_addr)?;
        let http = to_tokio(listeners.http, "http", http_addr)?;

        let shutdown = CancellationToken::new();
        // Recovery may read a large log: keep it off the async worker threads.
        let opened = {
            let (settings, name) = (config.persistence().clone(), region.name.clone());
            let shards = config.shards();
            tokio::task::spawn_blocking(move || Persist::open_shards(&settings, &name, shards))
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?
        };
        let node = Arc::new(Node::with_persistence(config, &region, opened));
        let spec = |r: &RegionSpec| PeerSpec {
            id: r.id,
            name: r.name.clone(),
            dns_name: r.dns_name(),
            addr: r.gossip,
        };
        let tconfig = TransportConfig {
            me: spec(&region),
            peers: config
                .regions()
                .iter()
                .filter(|r| r.id != region.id)
                .map(spec)
                .collect(),
            settings: config.transport().clone(),
            max_frame_bytes: config.replication().max_frame_bytes,
        };
        let transport = Transport::start(
            tconfig,
            &tls,
            listeners.gossip,
            node.clone(),
            shutdown.child_token(),
        )?;
        node.attach_transport(&transport);

        // The driver's and the checkpointer's logs (events, snapshots) carry the region through
        // this span; the Redis, HTTP and peer connections have spans of their own.
        let span = tracing::info_span!("node", region = %region.name);
        let tasks = vec![
            tokio::spawn(
                node::drive(node.clone(), transport.clone(), shutdown.child_token())
                    .instrument(span.clone()),
            ),
            tokio::spawn(crate::resp::serve_redis_with(
                redis,
                node.clone(),
                crate::resp::ServerOptions {
                    tls: redis_tls(config)?,
                    ..redis_options(config)
                },
                shutdown.child_token(),
            )),
            tokio::spawn(crate::http::serve_http(
                http,
                node.clone(),
                shutdown.child_token(),
            )),
            tokio::spawn(node::checkpoints(node.clone(), shutdown.child_token()).instrument(span)),
        ];
        // A failed write or fsync stops the region: nothing more is acknowledged.
        {
            let (node, shutdown) = (node.clone(), shutdown.clone());
            tokio::spawn(async move {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    reason = node.failed() => {
                        tracing::error!(region = %node.region_name(), %reason, "stopping: persistence failed");
                        shutdown.cancel();
                    }
                }
            });
        }
        tracing::info!(
            region = %region.name,
            redis = %redis_addr,
            gossip = %gossip_addr,
            http = %http_addr,
            "region started"
        );
        Ok(Server {
            node,
            transport,
            shutdown,
            tasks,
            redis_addr,
            http_addr,
            gossip_addr,
        })
    }

    /// The node, for tests and the demo.
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// Where Redis clients connect.
    pub fn redis_addr(&self) -> SocketAddr {
        self.redis_addr
    }

    /// Where the HTTP endpoints listen.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The local UDP address of the QUIC endpoint.
    pub fn gossip_addr(&self) -> SocketAddr {
        self.gossip_addr
    }

    /// Resolves if persistence failed (the region has then stopped serving by itself); returns
    /// the reason. Pending forever on a healthy region.
    pub async fn failed(&self) -> String {
        self.node.failed().await
    }

    /// Stops accepting clients and peers, tells peers we are leaving, waits for every task to
    /// end (bounded, so a stuck client cannot hold shutdown forever), then fsyncs and closes
    /// the log. All sockets are closed and the data folder unlocked when this returns, so the
    /// same ports and folder can be used again.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.transport.close().await;
        for t in self.tasks {
            let abort = t.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), t)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        let node = self.node.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for p in node.persists() {
                p.close();
            }
        })
        .await;
        tracing::info!(region = %self.node.region_name(), "region stopped");
    }
}
