//! TLS 1.3 for the mesh: rustls configs with mutual authentication against the cluster CA,
//! wrapped for quinn, and the mapping from a verified peer certificate to a region.
//!
//! The crypto provider is passed explicitly (ring) rather than installed process-wide, so
//! several nodes in one process (the demo, the tests) never race to install a default.

use super::{PeerSpec, TransportError};
use crate::certs::TlsMaterial;
use crate::config::TransportSettings;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, ServerName};
use std::sync::Arc;
use std::time::Duration;

/// ALPN of the mesh protocol; a peer speaking anything else fails the handshake.
pub(crate) const ALPN: &[u8] = b"sessionmesh/1";

/// Builds the quinn server and client configs for one region.
pub(crate) fn configs(
    m: &TlsMaterial,
    settings: &TransportSettings,
) -> Result<(quinn::ServerConfig, quinn::ClientConfig), TransportError> {
    let tls = |e: rustls::Error| TransportError::Tls(e.to_string());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(m.ca.clone()).map_err(tls)?;
    let roots = Arc::new(roots);

    let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
        .build()
        .map_err(|e| TransportError::Tls(e.to_string()))?;
    let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(m.chain.clone(), m.key.clone_key())
        .map_err(tls)?;
    server.alpn_protocols = vec![ALPN.to_vec()];
    let server =
        QuicServerConfig::try_from(server).map_err(|e| TransportError::Tls(e.to_string()))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(server));
    server.transport_config(transport_config(settings)?);
    server.migration(false);

    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls)?
        .with_root_certificates(roots)
        .with_client_auth_cert(m.chain.clone(), m.key.clone_key())
        .map_err(tls)?;
    client.alpn_protocols = vec![ALPN.to_vec()];
    let client =
        QuicClientConfig::try_from(client).map_err(|e| TransportError::Tls(e.to_string()))?;
    let mut client = quinn::ClientConfig::new(Arc::new(client));
    client.transport_config(transport_config(settings)?);
    Ok((server, client))
}

fn transport_config(s: &TransportSettings) -> Result<Arc<quinn::TransportConfig>, TransportError> {
    let mut t = quinn::TransportConfig::default();
    t.keep_alive_interval(Some(Duration::from_millis(s.keep_alive_ms)));
    let idle = quinn::IdleTimeout::try_from(Duration::from_millis(s.idle_timeout_ms))
        .map_err(|e| TransportError::Tls(format!("idle timeout: {e}")))?;
    t.max_idle_timeout(Some(idle));
    // quinn assumes 333 ms before it has measured anything, which puts the first handshake
    // retransmission a second after the first packet; 100 ms retransmits at 0.3 and 0.9 s,
    // inside the handshake timeout, so a link that comes back is found within about half a
    // second. A longer real RTT only costs a spurious retransmission or two.
    t.initial_rtt(Duration::from_millis(100));
    // Exactly two long-lived uni streams per direction (Delta, CatchUp); a little slack so a
    // reconnecting peer's new streams are never refused while old ones wind down.
    t.max_concurrent_uni_streams(4u32.into());
    t.max_concurrent_bidi_streams(0u32.into());
    Ok(Arc::new(t))
}

/// The region a connection's verified peer certificate names, among `peers`.
///
/// The chain was already verified against the cluster CA by rustls; here we only read which
/// region's DNS name (`<region>.sessionmesh`) the leaf is valid for. Exactly one must match.
pub(crate) fn peer_region<'a>(
    conn: &quinn::Connection,
    peers: impl Iterator<Item = &'a PeerSpec>,
) -> Result<&'a PeerSpec, String> {
    let identity = conn
        .peer_identity()
        .ok_or("peer presented no certificate")?;
    let chain = identity
        .downcast::<Vec<CertificateDer<'static>>>()
        .map_err(|_| "unexpected peer identity type")?;
    let leaf = chain.first().ok_or("peer presented an empty chain")?;
    let ee =
        webpki::EndEntityCert::try_from(leaf).map_err(|e| format!("bad certificate: {e:?}"))?;
    let mut found = None;
    for p in peers {
        let Ok(name) = ServerName::try_from(p.dns_name.as_str()) else {
            continue;
        };
        if ee.verify_is_valid_for_subject_name(&name).is_ok() {
            if found.is_some() {
                return Err("certificate names more than one region".into());
            }
            found = Some(p);
        }
    }
    found.ok_or_else(|| "certificate names no peer region of this cluster".into())
}
