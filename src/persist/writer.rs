//! The log writer: one OS thread that appends queued records and fsyncs them (group commit).
//!
//! The node queues one batch of records per locked step of the replica, in lock order, and
//! gets a ticket (the batch's sequence number). The writer takes everything queued at once,
//! encodes each batch as one frame, writes them with one `write`, and under
//! `durability = "always"` calls `fdatasync` once for all of them before publishing the highest
//! ticket as durable — so a hundred clients writing at once cost one fsync, not a hundred.
//! Under `"everysec"` it publishes the ticket as soon as the `write` returned (a killed process
//! loses nothing acknowledged) and fsyncs at most once a second, also when idle.
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
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How often `everysec` fsyncs at most.
const EVERYSEC: Duration = Duration::from_secs(1);
/// Write buffers larger than this are released after use rather than kept.
const KEEP_BUFFER: usize = 4 * 1024 * 1024;

/// What the writer has done so far, as waiters see it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Every batch up to this ticket is on disk (fsynced under `always`; written to the OS
    /// under `everysec`).
    pub durable: u64,
    /// The writer stopped on an error; nothing after `durable` will ever be durable.
    pub failed: bool,
}

/// One queued unit of work.
#[derive(Debug)]
pub enum Item {
    /// The records of one locked step, written as one frame.
    Batch(Vec<Record>),
    /// Close the current segment and continue in segment `id`.
    Rotate(u64),
}

/// The queue between the node and the writer.
#[derive(Debug, Default)]
pub struct Queue {
    /// Work not yet taken by the writer, in order.
    pub items: Vec<Item>,
    /// Tickets handed out so far (the last batch queued has this one).
    pub enqueued: u64,
    /// The node is stopping: write what is queued, fsync and end.
    pub closing: bool,
}

/// State shared by the node's side and the writer thread.
#[derive(Debug)]
pub struct Shared {
    /// Work for the writer.
    pub queue: Mutex<Queue>,
    /// Signalled when work is queued or closing is requested.
    pub work: Condvar,
    /// Published after every round.
    pub progress: watch::Sender<Progress>,
    /// The first fatal error, for the operator.
    pub failure: Mutex<Option<String>>,
    /// Cancelled when persistence failed: the node must stop.
    pub fatal: CancellationToken,
}

impl Shared {
    /// A fresh queue; nothing durable yet beyond what recovery found.
    pub fn new() -> Shared {
        Shared {
            queue: Mutex::new(Queue::default()),
            work: Condvar::new(),
            progress: watch::Sender::new(Progress::default()),
            failure: Mutex::new(None),
            fatal: CancellationToken::new(),
        }
    }

    /// The queue, even if a thread panicked while holding it (its contents stay consistent:
    /// every change is a single push or swap).
    pub fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a fatal error, wakes every waiter with the failure and asks the node to stop.
    pub fn fail(&self, e: &PersistError) {
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

/// Runs the writer until the queue is closed (after a final fsync) or an IO error.
pub fn run(shared: Arc<Shared>, dir: Arc<DataDir>, segment: u64, mode: Durability) {
    if let Err(e) = Writer::start(&dir, segment, mode).and_then(|w| w.run(&shared, &dir)) {
        shared.fail(&e);
    }
}

struct Writer {
    file: File,
    segment: u64,
    mode: Durability,
    buf: Vec<u8>,
    body: Vec<u8>,
    unsynced: bool,
    last_sync: Instant,
}

impl Writer {
    fn start(dir: &DataDir, segment: u64, mode: Durability) -> Result<Writer, PersistError> {
        Ok(Writer {
            file: dir.create_segment(segment)?,
            segment,
            mode,
            buf: Vec::new(),
            body: Vec::new(),
            unsynced: false,
            last_sync: Instant::now(),
        })
    }

    fn run(mut self, shared: &Shared, dir: &DataDir) -> Result<(), PersistError> {
        loop {
            let (items, upto, closing) = {
                let mut q = shared.queue();
                while q.items.is_empty() && !q.closing {
                    if !self.unsynced {
                        q = shared.work.wait(q).unwrap_or_else(|p| p.into_inner());
                        continue;
                    }
                    // `everysec` with written but unsynced data: sync it within the second
                    // even if nothing else comes.
                    let left = EVERYSEC.saturating_sub(self.last_sync.elapsed());
                    if left.is_zero() {
                        break;
                    }
                    q = shared
                        .work
                        .wait_timeout(q, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
                (std::mem::take(&mut q.items), q.enqueued, q.closing)
            };
            for item in items {
                match item {
                    Item::Batch(records) => self.encode(dir, &records)?,
                    Item::Rotate(id) => self.rotate(dir, id)?,
                }
            }
            self.write_out(dir)?;
            let due = match self.mode {
                Durability::Always => true,
                Durability::Everysec => closing || self.last_sync.elapsed() >= EVERYSEC,
            };
            if self.unsynced && due {
                self.sync(dir)?;
            }
            shared
                .progress
                .send_modify(|p| p.durable = p.durable.max(upto));
            if closing {
                if self.unsynced {
                    self.sync(dir)?;
                }
                return Ok(());
            }
        }
    }

    /// Appends one batch as one frame (one frame per record if the batch is too large for a
    /// frame; only a batch of huge values gets there, and each record is still whole).
    fn encode(&mut self, dir: &DataDir, records: &[Record]) -> Result<(), PersistError> {
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
        self.last_sync = Instant::now();
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
