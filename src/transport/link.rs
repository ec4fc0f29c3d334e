//! One live connection to a peer: its send-stream writers, its receive-stream readers, and
//! the bookkeeping that makes `connected`/`disconnected` pair up even when an acceptor
//! replaces an old connection with a new one.

use super::{bump, code, Link, PeerSpec, Queue, Stream, Transport};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::Instrument;

/// Bytes read from a stream at a time.
const READ_CHUNK: usize = 64 * 1024;
/// Most bytes of queued frames handed to one stream write.
const MAX_BATCH_BYTES: usize = 256 * 1024;
/// Room for the frame header beyond `max_frame_bytes` when bounding a partial frame.
const HEADER_SLACK: usize = 1024;

impl Transport {
    /// Runs one connection to `peer` until it closes or the transport shuts down.
    pub(super) async fn run_link(self: Arc<Self>, peer: PeerSpec, conn: quinn::Connection) {
        let mut sends = Vec::with_capacity(Stream::ALL.len());
        for s in Stream::ALL {
            let mut send = match conn.open_uni().await {
                Ok(send) => send,
                Err(e) => {
                    tracing::debug!(error = %e, "could not open stream");
                    return;
                }
            };
            if send.write_all(&[s.tag()]).await.is_err() {
                return;
            }
            sends.push(send);
        }
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let cap = self.settings.queue_frames;
        let mut queues = Vec::new();
        let mut receivers = Vec::new();
        for _ in Stream::ALL {
            let (tx, rx) = mpsc::channel(cap);
            let bytes = Arc::new(AtomicUsize::new(0));
            receivers.push((rx, bytes.clone()));
            queues.push(Queue { tx, bytes });
        }
        let Ok(queues) = <[Queue; 2]>::try_from(queues) else {
            unreachable!("one queue per stream kind");
        };
        let link = Link {
            generation,
            conn: conn.clone(),
            queues,
        };
        let old = self.links().insert(peer.id, link);
        if let Some(old) = old {
            // The peer restarted (or re-dialed after a loss we have not noticed yet): the new
            // connection wins, and the old one's loss is reported before the new one's start.
            old.conn
                .close(code::REPLACED, b"replaced by a newer connection");
            self.handler.disconnected(peer.id);
        }
        bump(&self.counters.connections, 1);
        tracing::info!(remote = %conn.remote_address(), "peer connected");
        self.handler.connected(peer.id);

        let mut tasks = JoinSet::new();
        for ((send, (rx, bytes)), stream) in sends.into_iter().zip(receivers).zip(Stream::ALL) {
            tasks.spawn(
                self.clone()
                    .write_stream(peer.id, stream, send, rx, bytes)
                    .instrument(tracing::Span::current()),
            );
        }
        tasks.spawn(
            self.clone()
                .accept_streams(peer.id, conn.clone())
                .instrument(tracing::Span::current()),
        );

        let reason = tokio::select! {
            e = conn.closed() => e.to_string(),
            _ = self.shutdown.cancelled() => {
                conn.close(code::SHUTDOWN, b"shutdown");
                "shutdown".to_string()
            }
        };
        tasks.abort_all();
        let current = {
            let mut links = self.links();
            let current = links
                .get(&peer.id)
                .is_some_and(|l| l.generation == generation);
            if current {
                links.remove(&peer.id);
            }
            current
        };
        if current {
            self.handler.disconnected(peer.id);
        }
        tracing::info!(%reason, "peer disconnected");
    }

    async fn write_stream(
        self: Arc<Self>,
        peer: u16,
        stream: Stream,
        mut send: quinn::SendStream,
        mut rx: mpsc::Receiver<Vec<u8>>,
        queued: Arc<AtomicUsize>,
    ) {
        let mut batch: Vec<bytes::Bytes> = Vec::new();
        while let Some(frame) = rx.recv().await {
            // Every frame already queued goes out in the same write: the shards' drivers queue
            // their pushes and acks independently, and one stream write per frame cost more
            // than the frames' contents (each write wakes the connection's driver).
            let mut len = frame.len();
            batch.push(frame.into());
            while len < MAX_BATCH_BYTES {
                match rx.try_recv() {
                    Ok(f) => {
                        len += f.len();
                        batch.push(f.into());
                    }
                    Err(_) => break,
                }
            }
            queued.fetch_sub(len, Ordering::Relaxed);
            let n = batch.len() as u64;
            if send.write_all_chunks(&mut batch).await.is_err() {
                return;
            }
            batch.clear();
            bump(&self.counters.frames_sent, n);
            bump(&self.counters.bytes_sent, len as u64);
            if stream == Stream::CatchUp {
                self.handler.drained(peer, stream);
            }
        }
    }

    async fn accept_streams(self: Arc<Self>, peer: u16, conn: quinn::Connection) {
        let mut readers = JoinSet::new();
        loop {
            tokio::select! {
                s = conn.accept_uni() => match s {
                    Ok(recv) => {
                        readers.spawn(
                            self.clone()
                                .read_stream(peer, conn.clone(), recv)
                                .instrument(tracing::Span::current()),
                        );
                    }
                    Err(_) => return,
                },
                Some(_) = readers.join_next(), if !readers.is_empty() => {}
            }
        }
    }

    /// Reads one stream: its tag, then frames cut by the handler, each handed over whole.
    async fn read_stream(
        self: Arc<Self>,
        peer: u16,
        conn: quinn::Connection,
        mut recv: quinn::RecvStream,
    ) {
        let mut tag = [0u8; 1];
        if recv.read_exact(&mut tag).await.is_err() {
            return;
        }
        let Some(stream) = Stream::from_tag(tag[0]) else {
            self.bad_frame(&conn, "unknown stream tag");
            return;
        };
        let limit = self.max_frame_bytes + HEADER_SLACK;
        let mut buf: Vec<u8> = Vec::new();
        let mut chunk = vec![0u8; READ_CHUNK];
        loop {
            if let Some(slow_down) = self.handler.backpressure() {
                slow_down.await;
            }
            let n = match recv.read(&mut chunk).await {
                Ok(Some(n)) => n,
                Ok(None) | Err(_) => return,
            };
            buf.extend_from_slice(&chunk[..n]);
            let mut start = 0;
            loop {
                let rest = &buf[start..];
                match self.handler.frame_len(rest) {
                    Ok(Some(len)) if len > 0 && len <= rest.len() && len <= limit => {
                        bump(&self.counters.frames_received, 1);
                        bump(&self.counters.bytes_received, len as u64);
                        if let Err(e) = self.handler.frame(peer, &rest[..len]) {
                            self.bad_frame(&conn, &e.0);
                            return;
                        }
                        start += len;
                    }
                    Ok(Some(len)) => {
                        self.bad_frame(&conn, &format!("frame of {len} bytes out of bounds"));
                        return;
                    }
                    Ok(None) if rest.len() > limit => {
                        self.bad_frame(&conn, "frame larger than max_frame_bytes");
                        return;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        self.bad_frame(&conn, &e.0);
                        return;
                    }
                }
            }
            buf.drain(..start);
            tracing::trace!(?stream, buffered = buf.len(), "read");
        }
    }

    fn bad_frame(&self, conn: &quinn::Connection, reason: &str) {
        bump(&self.counters.bad_frames, 1);
        tracing::warn!(reason, "malformed frame: closing connection");
        conn.close(code::BAD_FRAME, b"malformed frame");
    }
}
