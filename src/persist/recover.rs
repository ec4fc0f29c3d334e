//! Reading a data folder back at start: the newest snapshot, then every later segment.
//!
//! A torn or corrupt tail of the *last* segment (a short frame or a bad CRC: the process or
//! the machine died mid-write) is cut off with a warning and the node starts. Damage anywhere
//! else is not a torn write, and starting anyway would silently drop later records, so it is
//! an error naming the file (and offset): the operator decides. So is a frame whose CRC is
//! right but whose records do not decode (a format from another version).
//!
//! This module changes the folder only to truncate a torn tail and to delete files that a
//! finished snapshot made obsolete.

use super::files::{DataDir, SEGMENT_MAGIC};
use super::frame::{self, Tail};
use super::PersistError;
use sessionmesh_core::replica::{Record, Snapshot};
use std::fs::OpenOptions;

/// What a data folder held.
#[derive(Debug, Default)]
pub struct Recovered {
    /// The newest snapshot (empty if there was none).
    pub snapshot: Snapshot,
    /// Every record logged after it, in order.
    pub records: Vec<Record>,
    /// How many frames those records came in.
    pub frames: u64,
    /// Bytes cut off a torn tail (0 if the log ended cleanly).
    pub truncated: u64,
    /// The snapshot's id, if there was one.
    pub snapshot_id: Option<u64>,
}

/// Reads `dir`; returns its state and the id the next segment must have.
pub(super) fn recover(dir: &DataDir) -> Result<(Recovered, u64), PersistError> {
    let listing = dir.list()?;
    let mut out = Recovered::default();
    let base = match listing.snapshots.last() {
        Some(&id) => {
            out.snapshot = dir.read_snapshot(id)?;
            out.snapshot_id = Some(id);
            id
        }
        None => 0,
    };
    // Leftovers of a snapshot that finished but had not cleaned up yet.
    dir.remove_before(base)?;
    let segments: Vec<u64> = listing
        .segments
        .iter()
        .copied()
        .filter(|s| *s >= base)
        .collect();
    for (i, id) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        read_segment(dir, *id, last, &mut out)?;
    }
    let next = segments.last().map_or(base.max(1), |s| s + 1);
    Ok((out, next))
}

fn read_segment(
    dir: &DataDir,
    id: u64,
    last: bool,
    out: &mut Recovered,
) -> Result<(), PersistError> {
    let path = dir.segment(id);
    let buf = std::fs::read(&path).map_err(PersistError::io("read", &path))?;
    let corrupt = |offset: usize, reason: &str| PersistError::CorruptLog {
        path: path.clone(),
        offset: offset as u64,
        reason: reason.to_string(),
    };
    let magic = SEGMENT_MAGIC.len();
    if buf.len() < magic || buf[..magic] != SEGMENT_MAGIC[..] {
        // A crash between creating the file and syncing its magic leaves a prefix of it.
        if last && SEGMENT_MAGIC.starts_with(&buf) {
            truncate(dir, id, 0, buf.len(), "incomplete segment header")?;
            out.truncated += buf.len() as u64;
            return Ok(());
        }
        return Err(corrupt(
            0,
            "not a sessionmesh log segment (bad magic or version)",
        ));
    }
    let (bodies, tail) = frame::decode(&buf[magic..]);
    let mut at = magic;
    for body in bodies {
        let plain = dir.unseal(body, &path, (at + frame::HEADER) as u64)?;
        let records: Vec<Record> = rmp_serde::from_slice(&plain)
            .map_err(|e| corrupt(at, &format!("frame with a valid CRC does not decode: {e}")))?;
        out.records.extend(records);
        out.frames += 1;
        at += frame::HEADER + body.len();
    }
    let reason = match tail {
        Tail::Clean => return Ok(()),
        Tail::Short { .. } => "incomplete frame",
        Tail::Corrupt { .. } => "frame fails its CRC",
    };
    if !last {
        return Err(corrupt(
            at,
            &format!("{reason} before the last segment (not a torn write)"),
        ));
    }
    truncate(dir, id, at, buf.len(), reason)?;
    out.truncated += (buf.len() - at) as u64;
    Ok(())
}

/// Cuts segment `id` to `len` bytes, durably.
fn truncate(
    dir: &DataDir,
    id: u64,
    len: usize,
    was: usize,
    reason: &str,
) -> Result<(), PersistError> {
    let path = dir.segment(id);
    tracing::warn!(
        file = %path.display(),
        offset = len,
        dropped_bytes = was - len,
        reason,
        "torn log tail: truncating"
    );
    let f = OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(PersistError::io("open", &path))?;
    f.set_len(len as u64)
        .and_then(|()| f.sync_all())
        .map_err(PersistError::io("truncate", &path))
}
