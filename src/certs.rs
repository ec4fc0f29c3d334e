//! Certificates: making a development CA and per-region certificates, and loading a region's
//! TLS material with checks that fail early and say how to fix things.
//!
//! Every region's certificate is signed by the cluster CA, names the region as the DNS name
//! `<region>.sessionmesh` (and as its CN), and is valid for both server and client
//! authentication, because every node both accepts and dials peers.
//!
//! This module does not build TLS configs (see [`crate::transport::tls`]) and does not decide
//! who may talk to whom; it only produces and checks files.

use crate::config::{Config, RegionSpec};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::path::{Path, PathBuf};

/// Why certificates could not be made or loaded. Loading never changes files; generating may
/// have written some files before failing.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A file is missing or unreadable.
    #[error("cannot read {what} {path}: {error}; to make development certificates run `sessionmesh certs --config <this config> --out {}`", .cert_dir.display())]
    Read {
        /// What the file should hold.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The IO error (not a `source`: the message already says it).
        error: std::io::Error,
        /// Where the config expects certificates (the folder of `tls.ca`).
        cert_dir: PathBuf,
    },
    /// A file was read but holds no usable PEM object of the right kind.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The certificate does not fit the cluster: wrong CA, wrong name, expired, or its key
    /// does not match.
    #[error("certificate {path} is not valid for region `{region}`: {reason}")]
    Invalid {
        /// The certificate file.
        path: PathBuf,
        /// The region it was loaded for.
        region: String,
        /// Why.
        reason: String,
    },
    /// Writing generated files failed.
    #[error("cannot write {path}: {error}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The IO error.
        error: std::io::Error,
    },
    /// rcgen refused to make a certificate.
    #[error("cannot generate certificate: {0}")]
    Generate(rcgen::Error),
}

/// What one region needs for mutual TLS: the cluster CA, its own chain and its private key.
#[derive(Debug)]
pub struct TlsMaterial {
    /// The cluster CA certificate, the only trust anchor.
    pub ca: CertificateDer<'static>,
    /// This region's certificate chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key of the leaf.
    pub key: PrivateKeyDer<'static>,
}

impl Clone for TlsMaterial {
    fn clone(&self) -> Self {
        TlsMaterial {
            ca: self.ca.clone(),
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

/// Writes a fresh CA (`ca.pem`, `ca.key`) and one certificate and key per region of `config`
/// (`<region>.pem`, `<region>.key`) into `out`, creating it. Existing files are replaced.
/// Returns the files written.
pub fn generate(config: &Config, out: &Path) -> Result<Vec<PathBuf>, CertError> {
    let names: Vec<&str> = config.regions().iter().map(|r| r.name.as_str()).collect();
    generate_for(&names, out)
}

/// Like [`generate`], for an explicit list of region names (tests use it to make a second,
/// untrusted CA).
pub fn generate_for(regions: &[&str], out: &Path) -> Result<Vec<PathBuf>, CertError> {
    generate_with(regions, out, &[])
}

/// Like [`generate_for`], with the certificates of the regions in `expired` signed by the
/// same CA but expired since yesterday. For tests that show an expired peer is refused.
#[doc(hidden)]
pub fn generate_with_expired(
    regions: &[&str],
    expired: &[&str],
    out: &Path,
) -> Result<Vec<PathBuf>, CertError> {
    generate_with(regions, out, expired)
}

fn generate_with(
    regions: &[&str],
    out: &Path,
    expired: &[&str],
) -> Result<Vec<PathBuf>, CertError> {
    std::fs::create_dir_all(out).map_err(|error| CertError::Write {
        path: out.to_owned(),
        error,
    })?;
    let mut written = Vec::new();

    let ca_key = KeyPair::generate().map_err(CertError::Generate)?;
    let mut ca_params =
        CertificateParams::new(Vec::<String>::new()).map_err(CertError::Generate)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "sessionmesh development CA");
    dn.push(DnType::OrganizationName, "sessionmesh");
    ca_params.distinguished_name = dn;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut ca_params);
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .map_err(CertError::Generate)?;
    written.push(write(out, "ca.pem", &ca_cert.pem(), false)?);
    written.push(write(out, "ca.key", &ca_key.serialize_pem(), true)?);
    let issuer = Issuer::new(ca_params, ca_key);

    for name in regions {
        let key = KeyPair::generate().map_err(CertError::Generate)?;
        let mut params =
            CertificateParams::new(vec![format!("{name}{}", crate::config::DNS_SUFFIX)])
                .map_err(CertError::Generate)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, *name);
        dn.push(DnType::OrganizationName, "sessionmesh");
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        validity(&mut params);
        if expired.contains(name) {
            let now = time::OffsetDateTime::now_utc();
            params.not_before = now - time::Duration::days(30);
            params.not_after = now - time::Duration::days(1);
        }
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(CertError::Generate)?;
        written.push(write(out, &format!("{name}.pem"), &cert.pem(), false)?);
        written.push(write(
            out,
            &format!("{name}.key"),
            &key.serialize_pem(),
            true,
        )?);
    }
    Ok(written)
}

/// Development certificates are valid from yesterday for ten years: long enough not to bite
/// a demo, and a finite lifetime that a real deployment replaces with its own policy.
fn validity(params: &mut CertificateParams) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
}

fn write(dir: &Path, name: &str, text: &str, secret: bool) -> Result<PathBuf, CertError> {
    let path = dir.join(name);
    let err = |error| CertError::Write {
        path: path.clone(),
        error,
    };
    // Remove first so a key written 0600 never inherits a looser mode from an old file.
    let _ = std::fs::remove_file(&path);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut f = opts.open(&path).map_err(err)?;
    std::io::Write::write_all(&mut f, text.as_bytes()).map_err(err)?;
    Ok(path)
}

/// Loads `region`'s TLS material from the paths in `config` and checks it: the certificate
/// chains to the cluster CA, is valid now for server and client authentication, names the
/// region, and matches its key.
pub fn load(config: &Config, region: &RegionSpec) -> Result<TlsMaterial, CertError> {
    let dir = config.ca().parent().unwrap_or(Path::new("."));
    let ca = read_cert(config.ca(), "CA certificate", dir)?;
    let chain = read_chain(&region.cert, dir)?;
    let key = read_key(&region.key, dir)?;
    let m = TlsMaterial { ca, chain, key };
    check(&m, &region.name).map_err(|reason| CertError::Invalid {
        path: region.cert.clone(),
        region: region.name.clone(),
        reason,
    })?;
    Ok(m)
}

/// Checks that `m` is usable by region `name` (see [`load`]).
pub fn check(m: &TlsMaterial, name: &str) -> Result<(), String> {
    let leaf = m.chain.first().ok_or("the certificate file is empty")?;
    let anchor = webpki::anchor_from_trusted_cert(&m.ca).map_err(|e| format!("CA: {e:?}"))?;
    let ee = webpki::EndEntityCert::try_from(leaf).map_err(|e| format!("{e:?}"))?;
    let now = UnixTime::now();
    for (usage, what) in [
        (webpki::KeyUsage::server_auth(), "server"),
        (webpki::KeyUsage::client_auth(), "client"),
    ] {
        ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            std::slice::from_ref(&anchor),
            &m.chain[1..],
            now,
            usage,
            None,
            None,
        )
        .map_err(|e| {
            format!("not signed by the cluster CA or not valid for {what} auth now ({e:?})")
        })?;
    }
    let dns = format!("{name}{}", crate::config::DNS_SUFFIX);
    let server_name = ServerName::try_from(dns.as_str()).map_err(|e| e.to_string())?;
    ee.verify_is_valid_for_subject_name(&server_name)
        .map_err(|_| format!("it does not name `{dns}`"))?;
    let provider = rustls::crypto::ring::default_provider();
    rustls::sign::CertifiedKey::from_der(m.chain.clone(), m.key.clone_key(), &provider)
        .map_err(|e| format!("the private key does not match: {e}"))?;
    Ok(())
}

fn read_cert(
    path: &Path,
    what: &'static str,
    dir: &Path,
) -> Result<CertificateDer<'static>, CertError> {
    let mut all = read_all(path, what, dir)?;
    if all.is_empty() {
        return Err(CertError::Pem {
            path: path.to_owned(),
            reason: "no CERTIFICATE in the file".into(),
        });
    }
    Ok(all.swap_remove(0))
}

fn read_chain(path: &Path, dir: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let all = read_all(path, "region certificate", dir)?;
    if all.is_empty() {
        return Err(CertError::Pem {
            path: path.to_owned(),
            reason: "no CERTIFICATE in the file".into(),
        });
    }
    Ok(all)
}

fn read_all(
    path: &Path,
    what: &'static str,
    dir: &Path,
) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let bytes = std::fs::read(path).map_err(|error| CertError::Read {
        what,
        path: path.to_owned(),
        error,
        cert_dir: dir.to_owned(),
    })?;
    CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CertError::Pem {
            path: path.to_owned(),
            reason: e.to_string(),
        })
}

fn read_key(path: &Path, dir: &Path) -> Result<PrivateKeyDer<'static>, CertError> {
    let bytes = std::fs::read(path).map_err(|error| CertError::Read {
        what: "private key",
        path: path.to_owned(),
        error,
        cert_dir: dir.to_owned(),
    })?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| CertError::Pem {
        path: path.to_owned(),
        reason: format!("no usable PRIVATE KEY: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> Config {
        let text =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("regions.toml"))
                .unwrap();
        Config::from_toml(&text, dir).unwrap()
    }

    #[test]
    fn generated_certificates_load_and_name_their_region() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path());
        let files = generate(&c, &dir.path().join("certs")).unwrap();
        assert_eq!(files.len(), 2 + 2 * c.regions().len());
        for r in c.regions() {
            load(&c, r).unwrap();
        }
        // One region's files under another's name: refused, naming the mismatch.
        let us = c.region("us-east").unwrap();
        let mut wrong = us.clone();
        wrong.name = "eu-west".into();
        let e = load(&c, &wrong).unwrap_err().to_string();
        assert!(e.contains("does not name `eu-west.sessionmesh`"), "{e}");
        // Key of another region: refused.
        let mut wrong = us.clone();
        wrong.key = c.region("eu-west").unwrap().key.clone();
        let e = load(&c, &wrong).unwrap_err().to_string();
        assert!(e.contains("private key does not match"), "{e}");
    }

    #[test]
    fn certificate_from_another_ca_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path());
        generate(&c, &dir.path().join("certs")).unwrap();
        let other = dir.path().join("other");
        generate_for(&["us-east"], &other).unwrap();
        let mut r = c.region("us-east").unwrap().clone();
        r.cert = other.join("us-east.pem");
        r.key = other.join("us-east.key");
        let e = load(&c, &r).unwrap_err().to_string();
        assert!(e.contains("not signed by the cluster CA"), "{e}");
    }

    #[test]
    fn missing_files_say_how_to_make_them() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path());
        let e = load(&c, c.region("us-east").unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("sessionmesh certs"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn keys_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        generate_for(&["a"], dir.path()).unwrap();
        for f in ["ca.key", "a.key"] {
            let mode = std::fs::metadata(dir.path().join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{f} is readable by others");
        }
    }
}
