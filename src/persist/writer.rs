//! The log writer: appends queued records (group write) and fsyncs them (group commit).
//!
//! The node queues one batch of records per locked step of the replica, in lock order, and
//! gets a ticket (the batch's sequence number). A ticket is durable once its frame is fsynced
//! (`durability = "always"`) or written to the OS (`"everysec"`: a killed process loses
//! nothing acknowledged).
//!
//! Whoever needs a ticket writes the log itself: the waiting task yields once, so that every
//! connection made ready by the same poll has queued its batch, then becomes the *leader* if
//! nobody holds the log ([`Shared::try_flush`]): it takes everything queued, encodes each
//! batch as one frame, writes them with one `write`, under `always` calls `fdatasync` once for
//! all of them, and publishes the highest ticket. Tasks that find the log taken wait for that
//! publication and lead the next round if theirs was not in it. This is Redis's event loop —
//! write (and fsync) the AOF once per turn, before the replies — so a hundred clients writing
//! at once cost one write and one fsync, not a hundred. Like Redis's `appendfsync always`,
//! the fsync blocks the leader's runtime thread for its length (about 100 µs on this
//! project's disks). The first design handed every batch to a writer thread and woke the
//! waiting tasks back from it; that cost more CPU than the write itself (measured: 4 µs per
//! SET on the writer thread plus 2–5 µs of wake-ups on the runtime, and an fsync for every
//! few batches instead of every turn).
//!
//! One OS thread per log remains. It runs a round when the replication driver asks
//! ([`super::Persist::wait_background`]: acks and pushes must not block a runtime thread on an
//! fsync, and their latency matters less than a client's), once a second for what nobody waits
//! for (`everysec`'s fsync, and records such as watermarks queued by an idle peer's frames),
//! and at close, when it writes and fsyncs everything.
//!
//! A rotation request in the queue closes the current segment (fsynced) and starts the next,
//! so everything queued before a snapshot is in older segments and everything after in newer
//! ones.
//!
//! Any IO error is final: the writer publishes the failure and stops; nothing is retried,
//! because after a failed fsync the kernel may have dropped the dirty pages it could not write.

use super::files::DataDir;
use super::frame;
use super::PersistError;
use crate::config::Durability;
use sessionmesh_core::replica::Record;
use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How often the thread writes and fsyncs what nobody waited for (`everysec`'s second).
const EVERYSEC: Duration = Duration::from_secs(1);
/// Write buffers larger than this are released after use rather than kept.
const KEEP_BUFFER: usize = 4 * 1024 * 1024;

/// What the writer has done so far, as waiters see it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Progress {
    /// Every batch up to this ticket is on disk (fsynced under `always`; written to the OS
    /// under `everysec`).
    pub durable: u64,
    /// The writer stopped on an error; nothing after `durable` will ever be durable.
    pub failed: bool,
}

/// One queued unit of work.
#[derive(Debug)]
pub(super) enum Item {
    /// The records of one locked step, written as one frame.
    Batch(Vec<Record>),
    /// Close the current segment and continue in segment `id`.
    Rotate(u64),
}

/// The queue between the node and the writer.
#[derive(Debug, Default)]
pub(super) struct Queue {
    /// Work not yet taken by the writer, in order.
    pub items: Vec<Item>,
    /// Tickets handed out so far (the last batch queued has this one).
    pub enqueued: u64,
    /// The node is stopping: write what is queued, fsync and end.
    pub closing: bool,
    /// Someone waits for the thread to run a round now ([`super::Persist::wait_background`]).
    pub requested: bool,
}

/// The open log segment and the writer's buffers.
#[derive(Debug)]
pub(super) struct LogFile {
    file: File,
    segment: u64,
    buf: Vec<u8>,
    body: Vec<u8>,
    unsynced: bool,
}

/// State shared by the node's side and the writer thread.
#[derive(Debug)]
pub(super) struct Shared {
    /// Work for the writer.
    pub queue: Mutex<Queue>,
    /// Signalled when a round is requested or closing is.
    pub work: Condvar,
    /// The log file. Taken before the queue by whoever writes, so batches reach the file in
    /// queue order even when several tasks write.
    log: Mutex<LogFile>,
    /// Published after every write (`everysec`) or fsync (`always`).
    pub progress: watch::Sender<Progress>,
    /// The first fatal error, for the operator.
    pub failure: Mutex<Option<String>>,
    /// Cancelled when persistence failed: the node must stop.
    pub fatal: CancellationToken,
    /// Records in the queue's items (see [`super::Persist::backlog`]). Changed only with the
    /// queue locked, but read without it: the transport reads it before every read from a
    /// peer.
    pub queued_records: AtomicU64,
}

impl Shared {
    /// A fresh queue writing into a new `segment`; nothing durable yet beyond what recovery
    /// found.
    pub(super) fn new(dir: &DataDir, segment: u64) -> Result<Shared, PersistError> {
        Ok(Shared {
            queue: Mutex::new(Queue::default()),
            work: Condvar::new(),
            log: Mutex::new(LogFile::start(dir, segment)?),
            progress: watch::Sender::new(Progress::default()),
            failure: Mutex::new(None),
            fatal: CancellationToken::new(),
            queued_records: AtomicU64::new(0),
        })
    }

    /// The queue, even if a thread panicked while holding it (its contents stay consistent:
    /// every change is a single push or swap).
    pub(super) fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn log(&self) -> MutexGuard<'_, LogFile> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Leads one round if nobody else is writing: writes everything queued, fsyncs it under
    /// `always`, then publishes. `None`: another task or the thread holds the log; its
    /// publication, which comes after it lets go of the log, wakes those waiting.
    pub(super) fn try_flush(
        &self,
        dir: &DataDir,
        mode: Durability,
    ) -> Option<Result<(), PersistError>> {
        let log = match self.log.try_lock() {
            Ok(log) => log,
            Err(std::sync::TryLockError::WouldBlock) => return None,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
        };
        Some(self.round(log, dir, mode == Durability::Always))
    }

    /// One round with the log held: write what is queued, fsync if `sync`, let go of the log,
    /// publish (always, so that every task waiting for this round wakes, even if its ticket was
    /// queued too late for it and it must lead the next one).
    fn round(
        &self,
        mut log: MutexGuard<'_, LogFile>,
        dir: &DataDir,
        sync: bool,
    ) -> Result<(), PersistError> {
        if self.progress.borrow().failed {
            // The file is in an unknown state; nothing more goes into it.
            return Err(PersistError::Encode("the log already failed".into()));
        }
        let (items, upto) = {
            let mut q = self.queue();
            self.queued_records.store(0, Ordering::Relaxed);
            (std::mem::take(&mut q.items), q.enqueued)
        };
        for item in items {
            match item {
                Item::Batch(records) => log.encode(dir, &records)?,
                Item::Rotate(id) => log.rotate(dir, id)?,
            }
        }
        log.write_out(dir)?;
        if sync && log.unsynced {
            log.sync(dir)?;
        }
        drop(log);
        self.progress
            .send_modify(|p| p.durable = p.durable.max(upto));
        Ok(())
    }

    /// Records a fatal error, wakes every waiter with the failure and asks the node to stop.
    pub(super) fn fail(&self, e: &PersistError) {
        tracing::error!(error = %e, "persistence failed; stopping the node");
        let mut f = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        if f.is_none() {
            *f = Some(e.to_string());
        }
        drop(f);
        self.progress.send_modify(|p| p.failed = true);
        self.fatal.cancel();
    }
}

/// Runs the writer thread until the queue is closed (after a final fsync) or an IO error.
pub(super) fn run(shared: Arc<Shared>, dir: Arc<DataDir>, mode: Durability) {
    if let Err(e) = run_loop(&shared, &dir, mode) {
        shared.fail(&e);
    }
}

fn run_loop(shared: &Shared, dir: &DataDir, mode: Durability) -> Result<(), PersistError> {
    let mut last_sync = Instant::now();
    loop {
        let closing = {
            let q = shared.queue();
            let (mut q, _) = shared
                .work
                .wait_timeout_while(q, EVERYSEC.saturating_sub(last_sync.elapsed()), |q| {
                    !q.closing && !q.requested
                })
                .unwrap_or_else(|p| p.into_inner());
            q.requested = false;
            q.closing
        };
        // Under `always` every round is fsynced: that is what durable means. Under `everysec`
        // a requested round only writes; the fsync comes once a second, and at close.
        let sync = mode == Durability::Always || closing || last_sync.elapsed() >= EVERYSEC;
        shared.round(shared.log(), dir, sync)?;
        if sync {
            last_sync = Instant::now();
        }
        if closing {
            return Ok(());
        }
    }
}

impl LogFile {
    fn start(dir: &DataDir, segment: u64) -> Result<LogFile, PersistError> {
        Ok(LogFile {
            file: dir.create_segment(segment)?,
            segment,
            buf: Vec::new(),
            body: Vec::new(),
            unsynced: false,
        })
    }

    /// Appends one batch as one frame (one frame per record if the batch is too large for a
    /// frame; only a batch of huge values gets there, and each record is still whole).
    fn encode(&mut self, dir: &DataDir, records: &[Record]) -> Result<(), PersistError> {
        if !dir.encrypts() {
            // Straight into the write buffer, behind room for the header: no second copy of
            // every record, and the buffer keeps its capacity from one round to the next
            // (a body moved out per round was regrown by doubling every time).
            let start = self.buf.len();
            self.buf.extend_from_slice(&[0; frame::HEADER]);
            rmp_serde::encode::write(&mut self.buf, records)
                .map_err(|e| PersistError::Encode(e.to_string()))?;
            if self.buf.len() - start - frame::HEADER <= frame::MAX_BODY {
                frame::finish_in_place(&mut self.buf, start);
                return Ok(());
            }
            self.buf.truncate(start);
        }
        self.body.clear();
        rmp_serde::encode::write(&mut self.body, records)
            .map_err(|e| PersistError::Encode(e.to_string()))?;
        // Encryption adds 28 bytes (nonce and tag); keep the limit check on the sealed size.
        if self.body.len() + 28 <= frame::MAX_BODY {
            let sealed = dir.seal(std::mem::take(&mut self.body));
            frame::encode(&sealed, &mut self.buf);
            return Ok(());
        }
        for r in records {
            self.body.clear();
            rmp_serde::encode::write(&mut self.body, std::slice::from_ref(r))
                .map_err(|e| PersistError::Encode(e.to_string()))?;
            if self.body.len() + 28 > frame::MAX_BODY {
                return Err(PersistError::Encode(format!(
                    "one record of {} bytes exceeds the frame limit",
                    self.body.len()
                )));
            }
            let sealed = dir.seal(std::mem::take(&mut self.body));
            frame::encode(&sealed, &mut self.buf);
        }
        Ok(())
    }

    fn write_out(&mut self, dir: &DataDir) -> Result<(), PersistError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.file
            .write_all(&self.buf)
            .map_err(PersistError::io("write", &dir.segment(self.segment)))?;
        self.unsynced = true;
        self.buf.clear();
        if self.buf.capacity() > KEEP_BUFFER {
            self.buf = Vec::new();
            self.body = Vec::new();
        }
        Ok(())
    }

    fn sync(&mut self, dir: &DataDir) -> Result<(), PersistError> {
        self.file
            .sync_data()
            .map_err(PersistError::io("fsync", &dir.segment(self.segment)))?;
        self.unsynced = false;
        Ok(())
    }

    /// Finishes the current segment durably, then starts segment `id`: a segment is only
    /// ever created after all before it are on disk, so only the last one can have a torn
    /// tail.
    fn rotate(&mut self, dir: &DataDir, id: u64) -> Result<(), PersistError> {
        self.write_out(dir)?;
        if self.unsynced {
            self.sync(dir)?;
        }
        self.file = dir.create_segment(id)?;
        self.segment = id;
        Ok(())
    }
}
