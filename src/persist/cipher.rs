//! Optional encryption at rest: AES-256-GCM over every log frame body and snapshot body.
//!
//! The key is 32 bytes read from a file (raw, or 64 hex digits), never from the config itself.
//! Each sealed body is `nonce (12 bytes) | ciphertext | tag (16 bytes)` with a fresh random
//! nonce from the OS; the CRC of the framing still covers the sealed bytes, so a torn tail is
//! found before decryption is tried, and a body that fails authentication is an error (a wrong
//! key or tampering), never a torn tail to truncate.
//!
//! A data folder written with a key holds a `KEYCHECK` file (a sealed constant). Opening the
//! folder checks it before anything else is read or changed, so a wrong key, a missing key or a
//! key given for a plain folder is refused with a clear error and touches no data.

use super::PersistError;
use aes_gcm::aead::{Aead, AeadCore, OsRng};
use aes_gcm::{Aes256Gcm, Key, KeyInit, Nonce};
use std::path::{Path, PathBuf};

const NONCE: usize = 12;
const CHECK_PLAINTEXT: &[u8] = b"sessionmesh key check v1";
/// The marker file of an encrypted data folder.
pub(super) const KEYCHECK: &str = "KEYCHECK";

/// An AES-256-GCM key.
pub(super) struct Cipher {
    aead: Aes256Gcm,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(AES-256-GCM, key hidden)")
    }
}

impl Cipher {
    /// Reads a key file: 32 raw bytes, or 64 hex digits (surrounding white space ignored).
    #[allow(
        clippy::expect_used,
        reason = "the key text was checked to be 64 hex digits"
    )]
    pub(super) fn load(path: &Path) -> Result<Cipher, PersistError> {
        let raw = std::fs::read(path).map_err(PersistError::io("read key file", path))?;
        let bad = |why: &str| PersistError::Key {
            path: path.to_owned(),
            reason: why.to_string(),
        };
        let text = std::str::from_utf8(&raw).map(str::trim).unwrap_or("");
        let key: Vec<u8> = if raw.len() == 32 {
            raw
        } else if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex checked"))
                .collect()
        } else {
            return Err(bad("expected 32 raw bytes or 64 hex digits"));
        };
        Ok(Cipher {
            aead: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key)),
        })
    }

    /// Encrypts `plain` under a fresh nonce.
    #[allow(clippy::expect_used, reason = "AES-GCM sealing into a Vec cannot fail")]
    pub(super) fn seal(&self, plain: &[u8]) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let mut out = nonce.to_vec();
        out.extend(
            self.aead
                .encrypt(&nonce, plain)
                .expect("AES-GCM encryption of an in-memory buffer cannot fail"),
        );
        out
    }

    /// Decrypts what [`Cipher::seal`] produced; `None` if it does not authenticate.
    pub(super) fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE {
            return None;
        }
        let (nonce, body) = sealed.split_at(NONCE);
        self.aead.decrypt(Nonce::from_slice(nonce), body).ok()
    }
}

/// Checks `dir` against the key (or its absence) before anything is read: an encrypted folder
/// needs the right key, a plain folder with data must not suddenly be read with one. Creates
/// the marker for a new encrypted folder. Returns the cipher to use.
pub(super) fn check_folder(
    dir: &Path,
    key_file: Option<&Path>,
    has_data: bool,
) -> Result<Option<Cipher>, PersistError> {
    let marker: PathBuf = dir.join(KEYCHECK);
    let refuse = |why: String| PersistError::Key {
        path: marker.clone(),
        reason: why,
    };
    match (key_file, marker.exists()) {
        (None, false) => Ok(None),
        (None, true) => Err(refuse(
            "this data folder is encrypted: set persistence.encryption_key_file".into(),
        )),
        (Some(k), true) => {
            let c = Cipher::load(k)?;
            let sealed = std::fs::read(&marker).map_err(PersistError::io("read", &marker))?;
            match c.open(&sealed) {
                Some(p) if p == CHECK_PLAINTEXT => Ok(Some(c)),
                _ => Err(refuse(format!(
                    "wrong encryption key ({} does not open this folder)",
                    k.display()
                ))),
            }
        }
        (Some(k), false) => {
            if has_data {
                return Err(refuse(format!(
                    "this data folder holds unencrypted data; it cannot be opened with a key ({})",
                    k.display()
                )));
            }
            let c = Cipher::load(k)?;
            let tmp = marker.with_extension("tmp");
            std::fs::write(&tmp, c.seal(CHECK_PLAINTEXT))
                .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
                .map_err(PersistError::io("write", &tmp))?;
            std::fs::rename(&tmp, &marker).map_err(PersistError::io("rename", &tmp))?;
            Ok(Some(c))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_wrong_key() {
        let dir = tempfile::tempdir().unwrap();
        let k1 = dir.path().join("k1");
        let k2 = dir.path().join("k2");
        std::fs::write(&k1, [7u8; 32]).unwrap();
        std::fs::write(&k2, "ab".repeat(32)).unwrap();
        let a = Cipher::load(&k1).unwrap();
        let b = Cipher::load(&k2).unwrap();
        let s = a.seal(b"hello");
        assert_eq!(a.open(&s).as_deref(), Some(&b"hello"[..]));
        assert_eq!(b.open(&s), None);
        let mut t = s.clone();
        *t.last_mut().unwrap() ^= 1;
        assert_eq!(a.open(&t), None, "tampering is detected");
        std::fs::write(&k2, "short").unwrap();
        assert!(matches!(Cipher::load(&k2), Err(PersistError::Key { .. })));
    }
}
