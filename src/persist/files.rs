//! One region's data folder: its lock, log segments and snapshots, by name.
//!
//! ```text
//! <data_dir>/<region>/LOCK                          held (flock) while a node runs here
//! <data_dir>/<region>/segment-<id>.log              "SMLOG\0\0\x01", then frames of records
//! <data_dir>/<region>/snapshot-<id>.snap            "SMSNAP\0\x01", len u64, crc u32, body
//! ```
//!
//! Ids are 20-digit decimal numbers, so names sort as numbers do. Snapshot `S` holds the effect
//! of every record in segments below `S`; recovery loads the newest snapshot and replays the
//! segments from `S` on. New files become visible atomically (written as `*.tmp`, fsynced,
//! renamed, directory fsynced) or, for segments, are created with only their magic and fsynced
//! with the directory before any record goes in.
//!
//! This module does not decide when to snapshot or rotate (the writer and the node do).

use super::PersistError;
use sessionmesh_core::replica::Snapshot;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// First bytes of every log segment (the last byte is the format version).
pub(super) const SEGMENT_MAGIC: &[u8; 8] = b"SMLOG\0\0\x01";
/// First bytes of every snapshot (the last byte is the format version).
const SNAPSHOT_MAGIC: &[u8; 8] = b"SMSNAP\0\x01";

/// A region's data folder, locked against a second node.
#[derive(Debug)]
pub(super) struct DataDir {
    path: PathBuf,
    /// Set when the folder is encrypted at rest.
    cipher: Option<super::cipher::Cipher>,
    /// Holds the advisory lock for as long as this value lives (or until [`DataDir::unlock`]).
    lock: File,
}

/// The segment and snapshot ids present, each ascending.
#[derive(Debug, Default)]
pub(super) struct Listing {
    /// Log segments.
    pub segments: Vec<u64>,
    /// Complete snapshots (temp files are not listed).
    pub snapshots: Vec<u64>,
}

impl DataDir {
    /// Creates the folder if needed, locks it, and checks the encryption key against it (see
    /// `cipher`) before anything else is read.
    pub(super) fn open(path: &Path, key_file: Option<&Path>) -> Result<DataDir, PersistError> {
        std::fs::create_dir_all(path).map_err(PersistError::io("create", path))?;
        let lock_path = path.join("LOCK");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(PersistError::io("open", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(PersistError::Locked {
                    path: path.to_owned(),
                })
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(PersistError::io("lock", &lock_path)(e))
            }
        }
        let mut dir = DataDir {
            path: path.to_owned(),
            cipher: None,
            lock,
        };
        let l = dir.list()?;
        let has_data = !l.segments.is_empty() || !l.snapshots.is_empty();
        dir.cipher = super::cipher::check_folder(path, key_file, has_data)?;
        Ok(dir)
    }

    /// Releases the lock early (the node is closed but may not be dropped yet), so the same
    /// folder can be opened again in this process.
    pub(super) fn unlock(&self) {
        if let Err(e) = self.lock.unlock() {
            tracing::warn!(dir = %self.path.display(), error = %e, "cannot unlock data folder");
        }
    }

    /// The folder.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The file of segment `id`.
    pub(super) fn segment(&self, id: u64) -> PathBuf {
        self.path.join(format!("segment-{id:020}.log"))
    }

    /// The file of snapshot `id`.
    pub(super) fn snapshot(&self, id: u64) -> PathBuf {
        self.path.join(format!("snapshot-{id:020}.snap"))
    }

    /// Every segment and snapshot in the folder.
    pub(super) fn list(&self) -> Result<Listing, PersistError> {
        let mut l = Listing::default();
        let entries =
            std::fs::read_dir(&self.path).map_err(PersistError::io("list", &self.path))?;
        for e in entries {
            let e = e.map_err(PersistError::io("list", &self.path))?;
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            let id = |prefix: &str, suffix: &str| {
                name.strip_prefix(prefix)?
                    .strip_suffix(suffix)
                    .filter(|d| d.len() == 20)?
                    .parse::<u64>()
                    .ok()
            };
            if let Some(id) = id("segment-", ".log") {
                l.segments.push(id);
            } else if let Some(id) = id("snapshot-", ".snap") {
                l.snapshots.push(id);
            }
        }
        l.segments.sort_unstable();
        l.snapshots.sort_unstable();
        Ok(l)
    }

    /// Makes renames, creations and deletions in the folder durable.
    pub(super) fn sync(&self) -> Result<(), PersistError> {
        File::open(&self.path)
            .and_then(|d| d.sync_all())
            .map_err(PersistError::io("fsync", &self.path))
    }

    /// Creates segment `id` holding only its magic, durably, and returns it open for appending.
    pub(super) fn create_segment(&self, id: u64) -> Result<File, PersistError> {
        let path = self.segment(id);
        let mut f = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(PersistError::io("create", &path))?;
        f.write_all(SEGMENT_MAGIC)
            .map_err(PersistError::io("write", &path))?;
        f.sync_data().map_err(PersistError::io("fsync", &path))?;
        self.sync()?;
        Ok(f)
    }

    /// Writes snapshot `id` atomically and durably: a reader sees the whole file or none.
    /// Keys are written in the order given (`Persist::finish_snapshot` sorts them first).
    pub(super) fn write_snapshot(&self, id: u64, snap: &Snapshot) -> Result<u64, PersistError> {
        let body = rmp_serde::to_vec(snap).map_err(|e| PersistError::Encode(e.to_string()))?;
        let body = self.seal(body);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&body);
        let path = self.snapshot(id);
        let tmp = path.with_extension("tmp");
        let write = || -> io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(SNAPSHOT_MAGIC)?;
            f.write_all(&(body.len() as u64).to_le_bytes())?;
            f.write_all(&crc.finalize().to_le_bytes())?;
            f.write_all(&body)?;
            f.sync_all()
        };
        write().map_err(PersistError::io("write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(PersistError::io("rename", &tmp))?;
        self.sync()?;
        Ok(body.len() as u64 + 20)
    }

    /// Reads snapshot `id`; any damage is an error naming the file.
    #[allow(
        clippy::expect_used,
        reason = "the header was checked to be long enough and is sliced to fixed sizes"
    )]
    pub(super) fn read_snapshot(&self, id: u64) -> Result<Snapshot, PersistError> {
        let path = self.snapshot(id);
        let buf = std::fs::read(&path).map_err(PersistError::io("read", &path))?;
        let bad = |why: &str| PersistError::CorruptSnapshot {
            path: path.clone(),
            reason: why.to_string(),
        };
        if buf.len() < 20 || &buf[..8] != SNAPSHOT_MAGIC {
            return Err(bad("not a sessionmesh snapshot (bad magic or version)"));
        }
        let len = u64::from_le_bytes(buf[8..16].try_into().expect("8 bytes"));
        let want = u32::from_le_bytes(buf[16..20].try_into().expect("4 bytes"));
        let body = &buf[20..];
        if body.len() as u64 != len {
            return Err(bad(&format!(
                "header says {len} bytes of state, the file has {}",
                body.len()
            )));
        }
        if crc32fast::hash(body) != want {
            return Err(bad("checksum mismatch"));
        }
        let body = self.unseal(body, &path, 20)?;
        rmp_serde::from_slice(&body).map_err(|e| bad(&format!("cannot decode: {e}")))
    }

    /// Encrypts a body when the folder is encrypted.
    /// True when bodies are encrypted ([`DataDir::seal`] changes them).
    pub(super) fn encrypts(&self) -> bool {
        self.cipher.is_some()
    }

    pub(super) fn seal(&self, body: Vec<u8>) -> Vec<u8> {
        match &self.cipher {
            Some(c) => c.seal(&body),
            None => body,
        }
    }

    /// Decrypts a body read from `path` at `offset` when the folder is encrypted.
    pub(super) fn unseal<'a>(
        &self,
        body: &'a [u8],
        path: &Path,
        offset: u64,
    ) -> Result<std::borrow::Cow<'a, [u8]>, PersistError> {
        match &self.cipher {
            None => Ok(std::borrow::Cow::Borrowed(body)),
            Some(c) => {
                c.open(body)
                    .map(std::borrow::Cow::Owned)
                    .ok_or_else(|| PersistError::Decrypt {
                        path: path.to_owned(),
                        offset,
                    })
            }
        }
    }

    /// Deletes segments and snapshots older than `id`, and leftover temp files, then syncs.
    pub(super) fn remove_before(&self, id: u64) -> Result<(), PersistError> {
        let l = self.list()?;
        let old = l
            .segments
            .iter()
            .filter(|s| **s < id)
            .map(|s| self.segment(*s))
            .chain(
                l.snapshots
                    .iter()
                    .filter(|s| **s < id)
                    .map(|s| self.snapshot(*s)),
            );
        for p in old {
            std::fs::remove_file(&p).map_err(PersistError::io("delete", &p))?;
        }
        let entries =
            std::fs::read_dir(&self.path).map_err(PersistError::io("list", &self.path))?;
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "tmp") {
                std::fs::remove_file(&p).map_err(PersistError::io("delete", &p))?;
            }
        }
        self.sync()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_opener_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let _d = DataDir::open(tmp.path(), None).unwrap();
        let e = DataDir::open(tmp.path(), None).unwrap_err();
        assert!(matches!(e, PersistError::Locked { .. }), "{e}");
    }

    #[test]
    fn a_damaged_snapshot_is_an_error_naming_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let d = DataDir::open(tmp.path(), None).unwrap();
        d.write_snapshot(3, &Snapshot::default()).unwrap();
        assert_eq!(d.list().unwrap().snapshots, [3]);
        d.read_snapshot(3).unwrap();
        let path = d.snapshot(3);
        let mut buf = std::fs::read(&path).unwrap();
        let last = buf.len() - 1;
        buf[last] ^= 1;
        std::fs::write(&path, &buf).unwrap();
        let e = d.read_snapshot(3).unwrap_err().to_string();
        assert!(e.contains("snapshot-00000000000000000003.snap"), "{e}");
        assert!(e.contains("checksum"), "{e}");
    }
}
