//! Thread-per-core serving: connections handed over to threads that each run a single-threaded
//! runtime of their own (`[redis] io_threads`).
//!
//! On tokio's multi-threaded runtime a connection's task may be woken on any worker, and its
//! socket's readiness comes from whichever worker polls the IO driver: on every request some
//! wake-ups cross threads. Here a connection lives on one thread from accept to close — its
//! socket is registered with that thread's own reactor, its task never moves — and shares only
//! what must be shared: the shard locks, the logs' group commit and the drivers' wake-ups.
//! The accept loop stays on the main runtime and deals connections out in turn.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::mpsc;

/// What a serving thread runs for one connection, given the socket registered with its
/// reactor.
type Start =
    Box<dyn FnOnce(tokio::net::TcpStream) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// Threads serving connections, each on a current-thread runtime.
pub(super) struct IoThreads {
    senders: Vec<mpsc::UnboundedSender<(std::net::TcpStream, Start)>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    next: AtomicUsize,
}

impl IoThreads {
    /// Starts `n` serving threads.
    pub(super) fn start(n: usize) -> std::io::Result<IoThreads> {
        let mut senders = Vec::with_capacity(n);
        let mut threads = Vec::with_capacity(n);
        for i in 0..n {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (tx, rx) = mpsc::unbounded_channel();
            senders.push(tx);
            threads.push(
                std::thread::Builder::new()
                    .name(format!("redis-io-{i}"))
                    .spawn(move || rt.block_on(serve(rx)))?,
            );
        }
        Ok(IoThreads {
            senders,
            threads,
            next: AtomicUsize::new(0),
        })
    }

    /// Hands `stream` to the next thread in turn, which runs `start` on it. `Err`: the socket
    /// could not be detached, or that thread is gone; the connection is dropped.
    pub(super) fn hand<F, Fut>(
        &self,
        stream: tokio::net::TcpStream,
        start: F,
    ) -> std::io::Result<()>
    where
        F: FnOnce(tokio::net::TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let std = stream.into_std()?;
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.senders.len();
        let start: Start = Box::new(move |s| Box::pin(start(s)));
        self.senders[i]
            .send((std, start))
            .map_err(|_| std::io::Error::other("serving thread stopped"))
    }

    /// Stops handing out connections and waits (on a blocking thread) until every thread has
    /// finished the connections it runs.
    pub(super) async fn join(self) {
        drop(self.senders);
        let threads = self.threads;
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

/// One serving thread: registers each connection it is handed with its own reactor and runs
/// it; returns once no more will come and all it runs have finished.
async fn serve(mut rx: mpsc::UnboundedReceiver<(std::net::TcpStream, Start)>) {
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            got = rx.recv() => match got {
                Some((std, start)) => match tokio::net::TcpStream::from_std(std) {
                    Ok(s) => {
                        tasks.spawn(start(s));
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot register a handed-over client"),
                },
                None => break,
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    while tasks.join_next().await.is_some() {}
}
