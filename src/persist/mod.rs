//! Durable state for one region: an append-only log of the replica's journal plus periodic
//! snapshots, in the region's data folder, and recovery from them at start.
//!
//! - [`frame`]: the log's `len u32 | crc u32 | body` framing, torn-tail aware.
//! - `files`: the folder's layout, lock, atomic snapshot files.
//! - `writer`: the one thread that appends and fsyncs (group commit).
//! - `recover`: snapshot + later segments back into a [`Recovered`].
//! - `cipher`: optional AES-256-GCM encryption at rest of every frame and snapshot body.
//!
//! How the node uses it: under the replica lock it hands each step's [`Record`]s
//! (`sessionmesh_core::Ready::records`) to [`Persist::enqueue`] and gets a [`Ticket`]; as the
//! core's step contract requires, nothing produced by that step (a client's reply, a frame to a
//! peer) leaves the node before [`Persist::wait`] says the ticket is durable — fsynced under `durability = "always"`,
//! written to the OS under `"everysec"` (a killed process then loses nothing; a power failure
//! loses at most about a second, as with Redis's `appendfsync everysec`). Snapshots are
//! cut under the lock with [`Persist::begin_snapshot`] (which starts a new segment at exactly
//! that point) and written outside it with [`Persist::finish_snapshot`], which then deletes the
//! segments the snapshot covers.
//!
//! It does not decide what the records mean (the core replays them in
//! `Replica::recover`), and never retries a failed write or fsync: the first
//! IO error stops the node ([`Persist::failed`]).

pub mod frame;

mod cipher;
mod files;
mod recover;
mod writer;

pub use recover::Recovered;

use crate::config::{Durability, Persistence};
use files::DataDir;
use sessionmesh_core::replica::{Record, Snapshot};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use writer::{Item, Shared};

/// Why persistence failed.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// A file operation failed. At start, nothing was changed beyond what the message says;
    /// while running, the node stops: records after the last durable ticket may be lost.
    #[error("cannot {op} {path}: {error}")]
    Io {
        /// What was attempted (`write`, `fsync`, `rename`, ...).
        op: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// Another process holds the data folder. Nothing was changed.
    #[error("{path} is in use by another sessionmesh process")]
    Locked {
        /// The folder.
        path: PathBuf,
    },
    /// The folder holds another number of shards than the configuration asks for (or the
    /// one-shard layout, which keeps no shard folders). Nothing was changed; the node does not
    /// start.
    #[error("{path} holds {found} shard(s) but [cluster] shards = {want}: a region cannot be resharded in place; move the folder away and the region restores everything from its peers")]
    Layout {
        /// The region's folder.
        path: PathBuf,
        /// What the folder holds.
        found: u16,
        /// What the configuration asks for.
        want: u16,
    },
    /// The newest snapshot is damaged. Nothing was changed; the node does not start.
    #[error("snapshot {path} is corrupt: {reason}")]
    CorruptSnapshot {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A log segment is damaged somewhere other than a torn tail of the last segment.
    /// Nothing was changed; the node does not start.
    #[error("log segment {path} is corrupt at byte {offset}: {reason}")]
    CorruptLog {
        /// The file.
        path: PathBuf,
        /// Where the damage starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The encryption key is missing, wrong, unreadable, or does not fit the folder. Nothing
    /// was read or changed; the node does not start.
    #[error("{path}: {reason}")]
    Key {
        /// The key file or the folder's key-check file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A log frame or snapshot body does not authenticate under the key (tampering). Nothing
    /// was changed; the node does not start.
    #[error(
        "{path} does not decrypt at byte {offset}: tampered with, or written with another key"
    )]
    Decrypt {
        /// The file.
        path: PathBuf,
        /// Where the body starts.
        offset: u64,
    },
    /// State could not be encoded (a bug, or a record beyond the frame limit). The node
    /// stops; nothing of the failed step was written.
    #[error("cannot encode state for the log: {0}")]
    Encode(String),
}

impl PersistError {
    fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> PersistError {
        let path = path.to_owned();
        move |error| PersistError::Io { op, path, error }
    }
}

/// A place in the log: the batch of records queued by one locked step. Tickets grow with
/// queue order, so waiting for one waits for every earlier one too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(u64);

/// One region's open data folder and its log writer.
#[derive(Debug)]
pub struct Persist {
    dir: Arc<DataDir>,
    shared: Arc<Shared>,
    durability: Durability,
    snapshot_every_frames: u64,
    snapshot_every: Duration,
    /// The segment the writer is in (or will be in, once it sees the queued rotation).
    segment: AtomicU64,
    frames_since_snapshot: AtomicU64,
    /// Frames since the last snapshot that changed a key. Only these make a snapshot due by
    /// time: an idle region still logs a push and a watermark or two every second, and
    /// rewriting the whole state for those (gigabytes at a million sessions) every
    /// `snapshot_every_secs` would buy nothing; they still count toward `snapshot_every_frames`.
    keyed_since_snapshot: AtomicU64,
    last_snapshot: Mutex<Instant>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// See [`Persist::backlogged`].
    max_queued_records: u64,
}

impl Persist {
    /// Opens (creating if needed) region `region`'s folder, recovers what it holds and starts
    /// the writer in a fresh segment. Changes on disk: a torn tail is truncated and files a
    /// finished snapshot made obsolete are deleted.
    pub fn open(
        settings: &Persistence,
        region: &str,
    ) -> Result<(Persist, Recovered), PersistError> {
        Persist::open_in(settings, &settings.region_dir(region), region.to_string())
    }

    /// Opens every shard's folder of region `region` ([`Persist::open`] for each, all at
    /// once: recovery reads each shard's snapshot and log on a thread of its own). One shard
    /// keeps its files in the region's folder itself (the layout before shards); more keep
    /// them in `shard-000`, `shard-001`, ... under it, and a `SHARDS` file there says how many,
    /// so that a folder is never read with another count ([`PersistError::Layout`]).
    pub fn open_shards(
        settings: &Persistence,
        region: &str,
        shards: u16,
    ) -> Result<Vec<(Persist, Recovered)>, PersistError> {
        let root = settings.region_dir(region);
        check_layout(&root, shards)?;
        if shards <= 1 {
            return Ok(vec![Persist::open(settings, region)?]);
        }
        std::thread::scope(|s| {
            let opening: Vec<_> = (0..shards)
                .map(|i| {
                    let dir = root.join(format!("shard-{i:03}"));
                    let label = format!("{region}-{i}");
                    s.spawn(move || Persist::open_in(settings, &dir, label))
                })
                .collect();
            opening
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    }

    /// [`Persist::open`] on folder `path`, named `label` in the log and the writer thread.
    fn open_in(
        settings: &Persistence,
        path: &Path,
        label: String,
    ) -> Result<(Persist, Recovered), PersistError> {
        let region = label.as_str();
        let dir = Arc::new(DataDir::open(
            path,
            settings.encryption_key_file.as_deref(),
        )?);
        let (recovered, segment) = recover::recover(&dir)?;
        tracing::info!(
            region,
            dir = %dir.path().display(),
            snapshot = ?recovered.snapshot_id,
            keys = recovered.snapshot.keys.len(),
            frames = recovered.frames,
            records = recovered.records.len(),
            truncated_bytes = recovered.truncated,
            "recovered state from disk"
        );
        let shared = Arc::new(Shared::new(&dir, segment)?);
        let thread = {
            let (shared, d) = (shared.clone(), dir.clone());
            let mode = settings.durability;
            std::thread::Builder::new()
                .name(format!("log-{region}"))
                .spawn(move || writer::run(shared, d, mode))
                .map_err(PersistError::io("start the log writer for", dir.path()))?
        };
        let p = Persist {
            dir,
            shared,
            durability: settings.durability,
            snapshot_every_frames: settings.snapshot_every_frames,
            snapshot_every: Duration::from_secs(settings.snapshot_every_secs),
            segment: AtomicU64::new(segment),
            // A long replay counts toward the next snapshot, so restarts stay fast.
            frames_since_snapshot: AtomicU64::new(recovered.frames),
            keyed_since_snapshot: AtomicU64::new(recovered.frames),
            last_snapshot: Mutex::new(Instant::now()),
            thread: Mutex::new(Some(thread)),
            max_queued_records: settings.max_queued_records,
        };
        Ok((p, recovered))
    }

    /// How writes are acknowledged.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// Queues one locked step's records (call it under the replica lock, so the log has the
    /// lock's order). Returns the ticket that outputs of the step wait for.
    pub fn enqueue(&self, records: Vec<Record>) -> Option<Ticket> {
        if records.is_empty() {
            return self.pending();
        }
        let keyed = records.iter().any(changes_a_key);
        let t = {
            let mut q = self.shared.queue();
            if q.closing {
                // Only stray transport callbacks get here, after the last client is gone.
                tracing::debug!(records = records.len(), "log closed: records not written");
                return None;
            }
            self.shared
                .queued_records
                .fetch_add(records.len() as u64, Ordering::Relaxed);
            q.items.push(Item::Batch(records));
            q.enqueued += 1;
            q.enqueued
        };
        self.frames_since_snapshot.fetch_add(1, Ordering::Relaxed);
        if keyed {
            self.keyed_since_snapshot.fetch_add(1, Ordering::Relaxed);
        }
        Some(Ticket(t))
    }

    /// The newest ticket if it is not durable yet: what a reply that may have *seen* queued
    /// changes (a read after another client's write) must wait for.
    pub fn pending(&self) -> Option<Ticket> {
        let t = self.shared.queue().enqueued;
        (self.shared.progress.borrow().durable < t).then_some(Ticket(t))
    }

    /// Waits until `t` is durable: fsynced under `always`, written to the OS (safe from a
    /// process crash, not from a power failure) under `everysec`. `false`: persistence failed
    /// and it never will be — the caller must not acknowledge anything that depends on it.
    pub async fn wait(&self, t: Ticket) -> bool {
        if let Some(done) = self.settled(t) {
            return done;
        }
        // Let every task made ready with this one queue its batch first: one write and one
        // fsync for all of them (see `writer`).
        tokio::task::yield_now().await;
        // Subscribed before trying to lead, so a round that is running now cannot publish
        // unseen.
        let mut rx = self.shared.progress.subscribe();
        loop {
            if let Some(done) = self.settled(t) {
                return done;
            }
            match self.shared.try_flush(&self.dir, self.durability) {
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    self.shared.fail(&e);
                    return false;
                }
                None => {
                    if rx.changed().await.is_err() {
                        return false;
                    }
                }
            }
        }
    }

    /// Like [`Persist::wait`], but the log's own thread does the writing: for waiters that
    /// must not block a runtime thread on an fsync (the replication driver).
    pub async fn wait_background(&self, t: Ticket) -> bool {
        let mut rx = self.shared.progress.subscribe();
        if let Some(done) = self.settled(t) {
            return done;
        }
        self.shared.queue().requested = true;
        self.shared.work.notify_one();
        loop {
            if let Some(done) = self.settled(t) {
                return done;
            }
            if rx.changed().await.is_err() {
                return false;
            }
        }
    }

    /// Records queued and not yet taken by a write round.
    pub fn backlog(&self) -> u64 {
        self.shared.queued_records.load(Ordering::Relaxed)
    }

    /// When more than `max_queued_records` records wait for the log, a future that resolves
    /// once they have been taken by a write round (or persistence failed), after asking the
    /// log's thread for one. The transport awaits it before reading more from a peer: nothing
    /// else bounds what peers' frames queue here, since the replication driver does not wait
    /// for the disk on a runtime thread, and a disk slower than the peers would otherwise
    /// grow the queue without end. QUIC's flow control then slows the peers, whose overflow
    /// catch-up repairs later.
    pub fn backlogged(&self) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        let max = self.max_queued_records;
        if self.backlog() <= max {
            return None;
        }
        let shared = self.shared.clone();
        Some(async move {
            let mut rx = shared.progress.subscribe();
            loop {
                {
                    let mut q = shared.queue();
                    if shared.queued_records.load(Ordering::Relaxed) <= max {
                        return;
                    }
                    q.requested = true;
                }
                shared.work.notify_one();
                // Every round publishes, so a round that ends after the check wakes us.
                if rx.changed().await.is_err() || rx.borrow().failed {
                    return;
                }
            }
        })
    }

    /// `Some(true)` once `t` is durable, `Some(false)` once it never will be, `None` while
    /// it may still become durable.
    fn settled(&self, t: Ticket) -> Option<bool> {
        let p = *self.shared.progress.borrow();
        if p.failed {
            Some(false)
        } else if p.durable >= t.0 {
            Some(true)
        } else {
            None
        }
    }

    /// Whether a snapshot is due: enough frames since the last one, or enough time and at
    /// least one frame that changed a key.
    pub fn snapshot_due(&self) -> bool {
        let n = self.frames_since_snapshot.load(Ordering::Relaxed);
        let keyed = self.keyed_since_snapshot.load(Ordering::Relaxed);
        let last = *self.last_snapshot.lock().unwrap_or_else(|p| p.into_inner());
        n >= self.snapshot_every_frames || (keyed > 0 && last.elapsed() >= self.snapshot_every)
    }

    /// Starts a snapshot: call it under the replica lock, after queueing that step's records,
    /// and take `Replica::snapshot_unsorted` under the same lock. Everything queued so far stays in
    /// the current segment; the log continues in a new one, whose id is returned for
    /// [`Persist::finish_snapshot`].
    pub fn begin_snapshot(&self) -> u64 {
        let id = self.segment.fetch_add(1, Ordering::Relaxed) + 1;
        self.shared.queue().items.push(Item::Rotate(id));
        self.shared.work.notify_one();
        self.frames_since_snapshot.store(0, Ordering::Relaxed);
        self.keyed_since_snapshot.store(0, Ordering::Relaxed);
        *self.last_snapshot.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        id
    }

    /// Writes the snapshot begun as `id` durably, then deletes the segments and snapshots it
    /// replaces. Blocking (run it off the async threads). An error stops the node. `pause` is
    /// how long the copy held the replica lock, for the log line.
    ///
    /// The keys may come in any order: they are sorted into store order here, off the lock,
    /// so that the same state always writes the same bytes and recovery applies keys in the
    /// order it always has.
    pub fn finish_snapshot(
        &self,
        id: u64,
        mut snap: Snapshot,
        pause: Duration,
    ) -> Result<(), PersistError> {
        let started = Instant::now();
        snap.sort_keys();
        let res = self
            .dir
            .write_snapshot(id, &snap)
            .and_then(|bytes| self.dir.remove_before(id).map(|()| bytes));
        match res {
            Ok(bytes) => {
                tracing::info!(
                    snapshot = id,
                    keys = snap.keys.len(),
                    bytes,
                    lock_pause_us = pause.as_micros() as u64,
                    write_ms = started.elapsed().as_millis() as u64,
                    "snapshot written"
                );
                Ok(())
            }
            Err(e) => {
                self.shared.fail(&e);
                Err(e)
            }
        }
    }

    /// Resolves once persistence has failed; returns the reason. The node must stop.
    pub async fn failed(&self) -> String {
        self.shared.fatal.cancelled().await;
        self.failure().unwrap_or_default()
    }

    /// The first fatal error, if persistence failed.
    pub fn failure(&self) -> Option<String> {
        self.shared
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Writes and fsyncs everything queued, stops the writer and unlocks the folder. Blocking.
    /// Later records are dropped (only stray transport callbacks produce any).
    pub fn close(&self) {
        self.shared.queue().closing = true;
        self.shared.work.notify_one();
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            if h.join().is_err() {
                tracing::error!("log writer panicked");
            }
            self.dir.unlock();
        }
    }
}

impl Drop for Persist {
    fn drop(&mut self) {
        self.close();
    }
}

/// Whether replaying `r` changes a key (what makes a time-based snapshot worth writing).
fn changes_a_key(r: &Record) -> bool {
    match r {
        Record::Apply { .. }
        | Record::Remove { .. }
        | Record::Hold { .. }
        | Record::Release { .. } => true,
        Record::Watermark { .. }
        | Record::Clock { .. }
        | Record::Pushed { .. }
        | Record::Restoring { .. }
        | Record::Restored => false,
    }
}

#[cfg(test)]
mod tests;

/// Checks that `root` (a region's folder) holds `shards` shards, or nothing yet, and records
/// the count there if it holds more than one.
fn check_layout(root: &Path, shards: u16) -> Result<(), PersistError> {
    let marker = root.join("SHARDS");
    let found = match std::fs::read_to_string(&marker) {
        Ok(text) => text.trim().parse::<u16>().ok(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(PersistError::io("read", &marker)(e)),
    };
    // Files of the one-shard layout (log segments, snapshots) directly in the folder.
    let flat = std::fs::read_dir(root)
        .map(|d| {
            d.flatten().any(|e| {
                let n = e.file_name();
                let n = n.to_string_lossy();
                n.ends_with(".log") || n.ends_with(".snap")
            })
        })
        .unwrap_or(false);
    let holds = match found {
        Some(n) => n,
        None if flat => 1,
        None => return write_layout(root, &marker, shards),
    };
    if holds != shards {
        return Err(PersistError::Layout {
            path: root.to_owned(),
            found: holds,
            want: shards,
        });
    }
    Ok(())
}

fn write_layout(root: &Path, marker: &Path, shards: u16) -> Result<(), PersistError> {
    if shards <= 1 {
        return Ok(());
    }
    std::fs::create_dir_all(root).map_err(PersistError::io("create", root))?;
    std::fs::write(marker, format!("{shards}\n")).map_err(PersistError::io("write", marker))
}
