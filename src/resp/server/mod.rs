//! The Redis TCP server: accepts clients, decodes their commands, runs them, writes replies.
//!
//! One tokio task per connection, each in its own `tracing` span, on one of the serving
//! threads of `pool` (`io_threads`, thread-per-core) or on the caller's runtime. A connection
//! reads what the socket has, executes every complete command in it (consecutive data
//! commands as one batch under one lock of the node), and writes all the replies with one
//! write: pipelining costs a syscall per batch, not per command. Connection-level commands
//! (`PING`, `HELLO`, `AUTH`, `CLIENT`, `INFO`, `COMMAND`, `CONFIG`, `SELECT`, `QUIT`, `RESET`,
//! `MULTI`/`EXEC`/`DISCARD`, `WATCH`/`UNWATCH`, `WAIT`, `TIME`, `SAVE`/`BGSAVE`/`LASTSAVE`, and
//! the scripts, `EVAL` and `SCRIPT`, in `script.rs`) are handled here; every other command goes
//! to the node.
//!
//! With persistence, each executed batch is one step of the core and comes with its ticket; as
//! the core's durability rule says (`sessionmesh_core::Ready`), replies are written only once
//! the highest ticket since the last write is durable (one wait per pipelined batch, shared
//! with every client through the log's group commit).
//!
//! Bounds ([`Limits`]): the decoder refuses oversized headers before reading what they
//! announce; input waiting for execution and the MULTI queue are capped; and replies are
//! written out (and the client's input left unread, in its socket) whenever they pass the
//! output bound, so a client that stops reading stalls only itself.
//!
//! TLS on the listener and named users come from [`ServerOptions`]. It does not do pub/sub or
//! blocking commands other than `WAIT`. The connection commands that need no IO (`HELLO`,
//! `AUTH`, `CLIENT`, `INFO`, `CONFIG GET`) are in `connection.rs`, what `CONFIG SET` changes in
//! `settings.rs`.

use super::commands::{self, ClientState, REDIS_VERSION};
use super::decode::{Decoder, ProtocolError};
use super::encode::{encode, encode_error, Proto};
use super::{Backend, Limits};
use crate::metrics::{ErrorKind, MetricId};
use crate::node::Marks;
use crate::node::Node;
use bytes::{Bytes, BytesMut};
use sessionmesh_core::cmd::{Command, CommandId, Flags};
use sessionmesh_core::Reply;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

mod clients;
mod connection;
mod pool;
mod script;
mod settings;
mod subscribe;

/// The reply to a data command while a restarted region restores from its peers (Redis says
/// `LOADING Redis is loading the dataset in memory` while it loads; clients treat the code the
/// same way: not executed, try again).
pub const LOADING: &str = "LOADING sessionmesh is restoring this region's data from its peers";

/// How much to make room for before each read.
const READ_CHUNK: usize = 16 * 1024;
/// Most data commands executed under one lock of the node: long enough to amortise the lock
/// over a pipeline, short enough not to stall other connections.
const MAX_BATCH: usize = 64;
/// Buffers and argument vectors larger than this are dropped after use rather than kept.
const KEEP_BUFFER: usize = 256 * 1024;
const KEEP_ARGS: usize = 64;

/// Everything [`serve_redis_with`] can be configured with.
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// Per-connection and per-server bounds.
    pub limits: Limits,
    /// Redis's `requirepass`: when set, clients must `AUTH` (or `HELLO ... AUTH default pw`)
    /// before any other command, as the `default` user.
    pub requirepass: Option<Bytes>,
    /// ACL-style named users and their passwords (`AUTH user pass`). When any is set, clients
    /// must authenticate; the `default` user then only exists if `requirepass` is set.
    pub users: std::collections::BTreeMap<Bytes, Bytes>,
    /// When set, clients must speak TLS (`rediss://`); the handshake happens before anything
    /// else and a client that fails it is dropped.
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    /// Threads that serve connections, each on a runtime of its own (see `pool`); 0: on the
    /// runtime that calls [`serve_redis_with`].
    pub io_threads: usize,
}

impl ServerOptions {
    /// Whether a new connection starts authenticated (no password and no users configured).
    fn open(&self) -> bool {
        self.requirepass.is_none() && self.users.is_empty()
    }
}

/// Serves the Redis protocol on `listener` with the node's data until `shutdown` turns true
/// (or its sender is dropped); then closes every connection and returns.
pub async fn serve_redis(
    listener: TcpListener,
    node: Arc<Node>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let opts = ServerOptions {
        limits,
        ..ServerOptions::default()
    };
    let token = CancellationToken::new();
    let serve = serve_redis_with(listener, node, opts, token.clone());
    tokio::pin!(serve);
    tokio::select! {
        _ = &mut serve => return,
        _ = stopped(&mut shutdown) => token.cancel(),
    }
    serve.await;
}

/// Resolves once `rx` says true, or its sender is gone.
async fn stopped(rx: &mut watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// [`serve_redis`] for any [`Backend`], with every option, until `shutdown` is cancelled.
pub async fn serve_redis_with<B: Backend>(
    listener: TcpListener,
    backend: Arc<B>,
    opts: ServerOptions,
    shutdown: CancellationToken,
) {
    let local = listener.local_addr().ok();
    let shared = Arc::new(Shared {
        scripts: crate::script::Scripts::default(),
        settings: settings::Settings::new(&opts.limits),
        opts,
        clients: AtomicUsize::new(0),
        registry: clients::Registry::default(),
        next_id: AtomicU64::new(1),
        started: Instant::now(),
        port: local.map_or(0, |a| a.port()),
    });
    let mut tasks = JoinSet::new();
    let pool = match shared.opts.io_threads {
        0 => None,
        n => match pool::IoThreads::start(n) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the Redis serving threads");
                return;
            }
        },
    };
    loop {
        let accepted = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        while tasks.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let max = shared.opts.limits.max_clients;
        if shared.clients.fetch_add(1, Ordering::AcqRel) >= max {
            shared.clients.fetch_sub(1, Ordering::AcqRel);
            // Debug, not warn: a client retrying in a loop would flood the log; the refusals
            // are counted (`errors{kind="limit"}`).
            tracing::debug!(%peer, max, "refusing client: max number of clients reached");
            if let Some(m) = backend.metrics() {
                m.client_error(ErrorKind::Limit);
            }
            // A fresh socket's send buffer is empty, so this cannot block; if it fails the
            // client just sees the connection close.
            let _ = stream.try_write(b"-ERR max number of clients reached\r\n");
            continue;
        }
        // Held by the connection's future: whatever ends it (closed, a failed TLS handshake,
        // a serving thread that could not take it) gives the slot back.
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        // Its own token, a child of the server's: `CLIENT KILL` cancels it alone.
        let token = shutdown.child_token();
        shared.registry.add(
            id,
            clients::Entry {
                token: token.clone(),
                addr: peer.to_string(),
                laddr: local.map_or_else(String::new, |a| a.to_string()),
                user: "default".to_owned(),
                line: String::new(),
                since: Instant::now(),
            },
        );
        let slot = ClientSlot(shared.clone(), id);
        let span =
            tracing::info_span!("redis", region = %backend.region_name(), client = id, %peer);
        let conn = Conn::new(id, peer, backend.clone(), shared.clone(), token);
        let tls = shared.opts.tls.clone();
        let start = move |stream: tokio::net::TcpStream| {
            async move {
                let _slot = slot;
                match tls {
                    None => conn.run(stream).await,
                    Some(cfg) => {
                        // Bounded: a client that never finishes the handshake holds a slot
                        // for ten seconds at most.
                        let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
                        let hs = tokio::time::timeout(
                            std::time::Duration::from_secs(10),
                            acceptor.accept(stream),
                        )
                        .await;
                        match hs {
                            Ok(Ok(tls)) => conn.run(tls).await,
                            Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                            Err(_) => tracing::debug!("TLS handshake timed out"),
                        }
                    }
                }
            }
            .instrument(span)
        };
        match &pool {
            None => {
                tasks.spawn(start(stream));
            }
            Some(p) => {
                if let Err(e) = p.hand(stream, start) {
                    tracing::warn!(error = %e, "cannot hand a client over");
                }
            }
        }
    }
    // Every connection watches the same signal; wait for them to finish.
    while tasks.join_next().await.is_some() {}
    if let Some(p) = pool {
        p.join().await;
    }
}

/// State shared by all connections of one server.
struct Shared {
    opts: ServerOptions,
    /// The node's script cache (`EVALSHA`, `SCRIPT LOAD`).
    scripts: crate::script::Scripts,
    /// What `CONFIG SET` changes.
    settings: settings::Settings,
    clients: AtomicUsize,
    /// Every open connection (`CLIENT LIST`, `CLIENT KILL`).
    registry: clients::Registry,
    next_id: AtomicU64,
    started: Instant,
    port: u16,
}

/// What the connection loop does after a command.
enum Step {
    /// Go on with the next command.
    Next,
    /// Write what is pending and close (`QUIT`).
    Close,
    /// Block on `WAIT`.
    Wait { regions: usize, timeout_ms: u64 },
}

/// A key `WATCH`ed by a connection.
struct Watched {
    key: Bytes,
    /// Its state when watched: `EXEC` aborts if the key holds another by then.
    state: Option<sessionmesh_core::KeyState>,
    /// Whether it existed for clients then (an expiry since changes no state, yet aborts).
    existed: bool,
}

/// A transaction being queued.
#[derive(Default)]
struct Multi {
    queue: Vec<Command>,
    /// A command was refused while queueing: `EXEC` aborts.
    dirty: bool,
    /// The database a queued `SELECT` will have selected by then: the commands queued after
    /// it run there (their keys are translated as they are queued).
    db: Option<u8>,
}

/// One client connection.
struct Conn<B> {
    backend: Arc<B>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    peer: SocketAddr,
    client: ClientState,
    proto: Proto,
    authed: bool,
    multi: Option<Multi>,
    /// `WATCH`ed keys: each with its state then, and whether it existed (for `EXEC`).
    watched: Vec<Watched>,
    /// This connection's last write per shard (for `WAIT`), and what the replies in `wbuf`
    /// wait for before they may be written.
    marks: Marks,
    decoder: Decoder,
    rbuf: BytesMut,
    wbuf: BytesMut,
    /// Data commands decoded but not yet executed.
    batch: Vec<Command>,
    /// Which command each entry of `batch` is, for the latency histogram.
    batch_ids: Vec<MetricId>,
    /// Emptied argument vectors, reused.
    spare: Vec<Vec<Bytes>>,
    /// `CLIENT KILL` matched this connection: it answers, then closes.
    kill_me: bool,
    /// Its subscriptions, if any (`SUBSCRIBE`, `PSUBSCRIBE`).
    subs: Option<subscribe::Subscribed>,
}

impl<B: Backend> Conn<B> {
    fn new(
        id: u64,
        peer: SocketAddr,
        backend: Arc<B>,
        shared: Arc<Shared>,
        shutdown: CancellationToken,
    ) -> Conn<B> {
        let limits = &shared.opts.limits;
        let decoder = Decoder::new(limits.max_bulk_len, limits.max_array_len);
        let mut conn = Conn {
            backend,
            peer,
            client: ClientState {
                id,
                ..ClientState::default()
            },
            proto: Proto::Resp2,
            authed: shared.opts.open(),
            multi: None,
            watched: Vec::new(),
            marks: Marks::default(),
            decoder,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            wbuf: BytesMut::with_capacity(READ_CHUNK),
            batch: Vec::new(),
            batch_ids: Vec::new(),
            spare: Vec::new(),
            kill_me: false,
            subs: None,
            shared,
            shutdown,
        };
        conn.apply_auth_limits();
        conn.publish();
        conn
    }

    async fn run<S: AsyncRead + AsyncWrite + Unpin>(mut self, mut stream: S) {
        tracing::debug!("connected");
        match self.serve(&mut stream).await {
            Ok(()) => tracing::debug!("closed"),
            Err(e) => tracing::debug!(error = %e, "closed on IO error"),
        }
        self.unsubscribe_all();
        let _ = stream.shutdown().await;
    }

    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(&mut self, stream: &mut S) -> io::Result<()> {
        let mut args = Vec::new();
        loop {
            let mut since_write = 0;
            loop {
                if since_write >= self.shared.opts.limits.max_pipeline
                    || self.wbuf.len() >= self.shared.opts.limits.max_output_buffer
                {
                    self.settle_scripts().await;
                    self.flush_batch();
                    if !self.write_out(stream).await? {
                        return Ok(());
                    }
                    since_write = 0;
                }
                match self.decoder.decode(&mut self.rbuf, &mut args) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => return self.protocol_error(stream, e).await,
                }
                since_write += 1;
                // After a restart, until the node has restored what it lost from its peers
                // (or `restore_hold_ms` has passed), data commands are refused with LOADING,
                // and until it may stamp writes they wait; connection commands (AUTH, HELLO,
                // CLIENT, PING, INFO, ...) are answered, as Redis answers them while it loads.
                // Two atomic loads once that is over.
                // The one lookup of this command's name.
                let id = CommandId::lookup(&args[0]);
                if !(self.backend.is_serving() && self.backend.is_writable())
                    && commands::held_while_restoring(id)
                {
                    if !self.backend.is_serving() {
                        self.refuse(Reply::error(ErrorKind::Other, LOADING));
                        continue;
                    }
                    self.settle_scripts().await;
                    self.flush_batch();
                    if !self.write_out(stream).await? {
                        return Ok(());
                    }
                    self.backend.writable().await;
                }
                // While another connection's script runs, nothing else does, as in Redis: this
                // command waits (without holding its thread), and past `busy-reply-threshold`
                // is answered BUSY unless Redis serves it then. One atomic load when no script
                // runs.
                // `SCRIPT KILL` too waits until the script is past the threshold, as Redis
                // reads nothing before then.
                if self.shared.scripts.others_running(self.client.id)
                    && !self.wait_for_scripts().await
                    && !self.allowed_while_busy(id, &args)
                {
                    self.refuse(Reply::error(ErrorKind::Other, crate::script::BUSY));
                    continue;
                }
                match self.dispatch(id, &mut args) {
                    Step::Next => {}
                    Step::Close => {
                        self.settle_scripts().await;
                        self.flush_batch();
                        self.write_out(stream).await?;
                        return Ok(());
                    }
                    Step::Wait {
                        regions,
                        timeout_ms,
                    } => {
                        self.settle_scripts().await;
                        self.flush_batch();
                        if !self.write_out(stream).await? {
                            return Ok(());
                        }
                        let started = Instant::now();
                        let go_on = self.wait(stream, regions, timeout_ms).await?;
                        self.executed(&[MetricId::of(CommandId::lookup(b"wait"))], started);
                        if !go_on {
                            return Ok(());
                        }
                    }
                }
                if args.capacity() > KEEP_ARGS {
                    args = Vec::new();
                }
            }
            self.settle_scripts().await;
            self.flush_batch();
            if !self.write_out(stream).await? {
                return Ok(());
            }
            if self.rbuf.len() > self.shared.opts.limits.max_query_buffer {
                tracing::warn!(
                    bytes = self.rbuf.len(),
                    "query buffer limit exceeded; closing"
                );
                self.count_error(ErrorKind::Limit);
                encode_error(
                    "ERR Protocol error: query buffer limit exceeded",
                    &mut self.wbuf,
                );
                self.write_out(stream).await?;
                return Ok(());
            }
            if self.rbuf.is_empty() && self.rbuf.capacity() > KEEP_BUFFER {
                self.rbuf = BytesMut::with_capacity(READ_CHUNK);
            }
            self.rbuf.reserve(READ_CHUNK);
            let n = tokio::select! {
                biased;
                r = stream.read_buf(&mut self.rbuf) => Some(r?),
                d = subscribe::next(&mut self.subs) => {
                    // A message for this subscriber (and whatever else waits), written
                    // between replies.
                    if let Some(d) = d {
                        self.reply(subscribe::message(d));
                    }
                    while let Some(d) = self.subs.as_mut().and_then(|s| s.rx.try_recv().ok()) {
                        self.reply(subscribe::message(d));
                    }
                    None
                }
                _ = self.shutdown.cancelled() => return Ok(()),
            };
            if n == Some(0) {
                return Ok(());
            }
        }
    }

    /// Replies with the protocol error and ends the connection, as Redis does.
    async fn protocol_error<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
        e: ProtocolError,
    ) -> io::Result<()> {
        tracing::debug!(error = %e, "protocol error; closing");
        self.count_error(ErrorKind::Protocol);
        self.flush_batch();
        encode_error(&format!("ERR Protocol error: {e}"), &mut self.wbuf);
        self.write_out(stream).await?;
        Ok(())
    }

    /// Writes all pending replies, once what they depend on is durable; `false` if shutdown
    /// interrupted it.
    async fn write_out<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
    ) -> io::Result<bool> {
        if self.wbuf.is_empty() {
            return Ok(true);
        }
        if self.marks.pending() {
            let ok = tokio::select! {
                biased;
                ok = self.backend.durable(&self.marks) => ok,
                _ = self.shutdown.cancelled() => return Ok(false),
            };
            self.marks.clear_tickets();
            if !ok {
                // Not durable and never will be: the client gets no reply, not a false one.
                return Err(io::Error::other("persistence failed; replies withheld"));
            }
        }
        tokio::select! {
            biased;
            r = stream.write_all(&self.wbuf) => r?,
            _ = self.shutdown.cancelled() => return Ok(false),
        }
        self.wbuf.clear();
        if self.wbuf.capacity() > KEEP_BUFFER {
            self.wbuf = BytesMut::with_capacity(READ_CHUNK);
        }
        Ok(true)
    }

    /// Appends a reply after those of any batched commands.
    fn reply(&mut self, r: Reply) {
        self.flush_batch();
        self.note_error(&r);
        encode(&r, self.proto, &mut self.wbuf);
    }

    /// Counts `r` if it is an error reply (by kind, from its text).
    fn note_error(&self, r: &Reply) {
        if let (Reply::Error(e), Some(m)) = (r, self.backend.metrics()) {
            m.error_reply(e);
        }
    }

    /// Counts an error the server answers without a [`Reply`] (it closes the connection).
    fn count_error(&self, kind: ErrorKind) {
        if let Some(m) = self.backend.metrics() {
            m.client_error(kind);
        }
    }

    /// Records that `cmds` ran from `started` until now.
    fn executed(&self, cmds: &[MetricId], started: Instant) {
        if let Some(m) = self.backend.metrics() {
            m.commands_executed(cmds, started.elapsed());
        }
    }

    /// Executes the batched data commands and encodes their replies.
    fn flush_batch(&mut self) {
        // One clock read per batch: the latency histogram observes the batch's time for each
        // of its commands (they all wait for it).
        if self.batch.is_empty() {
            return;
        }
        let started = Instant::now();
        match self.batch.len() {
            1 => {
                let r = self.backend.execute(&self.batch[0], &mut self.marks);
                self.executed(&self.batch_ids, started);
                self.note_error(&r);
                encode(&r, self.proto, &mut self.wbuf);
            }
            _ => {
                let replies = self
                    .backend
                    .execute_batch(&self.batch, false, &mut self.marks);
                self.executed(&self.batch_ids, started);
                for r in &replies {
                    self.note_error(r);
                    encode(r, self.proto, &mut self.wbuf);
                }
            }
        }
        self.batch_ids.clear();
        for c in self.batch.drain(..) {
            let mut v = c.into_args();
            if v.capacity() <= KEEP_ARGS {
                v.clear();
                self.spare.push(v);
            }
        }
    }

    /// Routes one command (`id`: its table entry, looked up once by the caller): batches data
    /// commands, queues inside `MULTI`, runs the rest.
    fn dispatch(&mut self, id: Option<CommandId>, args: &mut Vec<Bytes>) -> Step {
        let spec = id.map(CommandId::spec);
        let allowed_unauthed = spec.is_some_and(|s| s.flags.contains(Flags::NO_AUTH));
        if !self.authed && !allowed_unauthed {
            self.refuse(Reply::error(
                ErrorKind::Auth,
                "NOAUTH Authentication required.",
            ));
            return Step::Next;
        }
        let Some(id) = id else {
            self.refuse(sessionmesh_core::cmd::unknown_command(args));
            return Step::Next;
        };
        let spare = self.spare.pop().unwrap_or_default();
        let db = self
            .multi
            .as_ref()
            .and_then(|m| m.db)
            .unwrap_or(self.client.db);
        let cmd = match Command::new(id, std::mem::replace(args, spare)) {
            Ok(cmd) => cmd.in_db(db),
            Err(back) => {
                self.spare.push(std::mem::replace(args, back));
                self.refuse(Reply::wrong_arity(id.name()));
                return Step::Next;
            }
        };
        let control = matches!(
            id.name(),
            "multi" | "exec" | "discard" | "quit" | "reset" | "watch"
        );
        if let Some(m) = &mut self.multi {
            if !control {
                if m.queue.len() >= self.shared.opts.limits.max_multi_queue {
                    m.dirty = true;
                    self.reply(Reply::err_of(
                        ErrorKind::Limit,
                        "too many commands queued in MULTI",
                    ));
                } else {
                    if id.name() == "select" {
                        if let Ok(d) =
                            commands::select(cmd.args(), self.shared.opts.limits.databases)
                        {
                            m.db = Some(d);
                        }
                    }
                    m.queue.push(cmd);
                    self.reply(Reply::Simple("QUEUED"));
                }
                return Step::Next;
            }
        }
        if let Some(e) = self.subscribed_refusal(&cmd) {
            self.refuse(e);
            return Step::Next;
        }
        if cmd.spec().is_data() {
            return self.data(cmd);
        }
        let mut step = self.connection(id, &cmd);
        // Only these change the `CLIENT LIST` line: a PING or an INFO formats nothing.
        if matches!(
            id.name(),
            "client" | "hello" | "auth" | "reset" | "multi" | "exec" | "discard" | "select"
        ) {
            self.publish();
        }
        if self.kill_me {
            step = Step::Close;
        }
        // The line's vector serves the next command (a PING-heavy client allocates nothing).
        let mut v = cmd.into_args();
        if v.capacity() <= KEEP_ARGS {
            v.clear();
            self.spare.push(v);
        }
        step
    }

    /// Runs a connection command (`cmd` is command `id`).
    fn connection(&mut self, id: CommandId, cmd: &Command) -> Step {
        match id.name() {
            "quit" => {
                self.reply(Reply::OK);
                Step::Close
            }
            "subscribe" | "psubscribe" => {
                self.subscribe(&cmd.args()[1..], id.name() == "psubscribe");
                Step::Next
            }
            "unsubscribe" | "punsubscribe" => {
                self.unsubscribe(&cmd.args()[1..], id.name() == "punsubscribe");
                Step::Next
            }
            "publish" => {
                let n = self.backend.publish(&cmd.args()[1], &cmd.args()[2]);
                self.reply(Reply::Int(n as i64));
                Step::Next
            }
            "pubsub" => {
                let r = self.pubsub(cmd.args());
                self.reply(r);
                Step::Next
            }
            "ping" if self.subs.is_some() && self.proto == Proto::Resp2 => {
                let r = self
                    .subscribed_ping(cmd.args())
                    .unwrap_or_else(|| commands::ping(cmd.args()));
                self.reply(r);
                Step::Next
            }
            "reset" => {
                self.unsubscribe_all();
                self.multi = None;
                self.watched.clear();
                self.proto = Proto::Resp2;
                self.client.name = None;
                self.client.user = None;
                self.client.db = 0;
                self.authed = self.shared.opts.open();
                self.apply_auth_limits();
                self.reply(Reply::Simple("RESET"));
                Step::Next
            }
            "multi" => {
                if self.multi.is_some() {
                    self.reply(Reply::err_of(
                        ErrorKind::Transaction,
                        "MULTI calls can not be nested",
                    ));
                } else {
                    self.multi = Some(Multi::default());
                    self.reply(Reply::OK);
                }
                Step::Next
            }
            "discard" => {
                self.watched.clear();
                let r = match self.multi.take() {
                    Some(_) => Reply::OK,
                    None => Reply::err_of(ErrorKind::Transaction, "DISCARD without MULTI"),
                };
                self.reply(r);
                Step::Next
            }
            "exec" => {
                self.flush_batch();
                let started = Instant::now();
                let r = self.exec();
                self.executed(&[MetricId::of(Some(id))], started);
                if let Reply::Array(rs) = &r {
                    // Errors inside the transaction count as any other reply's would.
                    rs.iter().for_each(|r| self.note_error(r));
                }
                self.reply(r);
                Step::Next
            }
            "eval" | "evalsha" | "eval_ro" | "evalsha_ro" => {
                self.flush_batch();
                let started = Instant::now();
                let r = self.eval(cmd);
                self.executed(&[MetricId::of(Some(id))], started);
                self.reply(r);
                Step::Next
            }
            "watch" => {
                let r = if self.multi.is_some() {
                    Reply::err_of(ErrorKind::Transaction, "WATCH inside MULTI is not allowed")
                } else {
                    self.flush_batch();
                    self.watch(&cmd.args()[1..]);
                    Reply::OK
                };
                self.reply(r);
                Step::Next
            }
            "wait" => match wait_args(cmd.args()) {
                Ok((regions, timeout_ms)) => Step::Wait {
                    regions,
                    timeout_ms,
                },
                Err(e) => {
                    self.reply(e);
                    Step::Next
                }
            },
            _ => {
                let r = self.connection_command(cmd);
                self.reply(r);
                Step::Next
            }
        }
    }

    /// Batches a data command.
    fn data(&mut self, cmd: Command) -> Step {
        self.batch_ids.push(MetricId::of(Some(cmd.id())));
        self.batch.push(cmd);
        if self.batch.len() >= MAX_BATCH {
            self.flush_batch();
        }
        Step::Next
    }

    /// Replies with an error that, inside `MULTI`, also dooms the transaction.
    fn refuse(&mut self, r: Reply) {
        if let Some(m) = &mut self.multi {
            m.dirty = true;
        }
        self.reply(r);
    }

    /// `EXEC`: runs the queue, data commands as one atomic batch.
    fn exec(&mut self) -> Reply {
        let Some(m) = self.multi.take() else {
            return Reply::err_of(ErrorKind::Transaction, "EXEC without MULTI");
        };
        let watched = std::mem::take(&mut self.watched);
        if m.dirty {
            return Reply::error(
                ErrorKind::Transaction,
                "EXECABORT Transaction discarded because of previous errors.",
            );
        }
        if !watched.is_empty() || m.queue.iter().any(|c| script::is_eval(c.id())) {
            return self.exec_held(m.queue, watched);
        }
        let data: Vec<Command> = m
            .queue
            .iter()
            .filter(|c| c.spec().is_data())
            .cloned()
            .collect();
        let replies = if data.is_empty() {
            Vec::new()
        } else {
            self.backend.execute_batch(&data, true, &mut self.marks)
        };
        let mut replies = replies.into_iter();
        let mut out = Vec::with_capacity(m.queue.len());
        for cmd in &m.queue {
            if cmd.spec().is_data() {
                out.push(replies.next().unwrap_or(Reply::Nil));
                continue;
            }
            out.push(match cmd.id().name() {
                // Inside a transaction WAIT cannot block; it reports the count now.
                "wait" => match wait_args(cmd.args()) {
                    Ok(_) => Reply::Int(self.held_now() as i64),
                    Err(e) => e,
                },
                _ => self.connection_command(cmd),
            });
        }
        Reply::Array(out)
    }

    /// How many other regions hold this connection's last write now.
    fn held_now(&self) -> usize {
        if self.marks.wrote() {
            self.backend.regions_holding(&self.marks)
        } else {
            // Nothing written: every region holds all of it.
            self.backend.peer_count()
        }
    }

    /// `WAIT`: blocks until enough regions hold this connection's last write, the timeout,
    /// shutdown, or the client going away. Returns `false` if the connection should close.
    async fn wait<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
        regions: usize,
        timeout_ms: u64,
    ) -> io::Result<bool> {
        if !self.marks.wrote() {
            let n = self.held_now();
            self.reply(Reply::Int(n as i64));
            return Ok(true);
        }
        let (backend, writes) = (self.backend.clone(), self.marks.stamps());
        let fut = backend.wait_regions(&writes, regions, timeout_ms);
        tokio::pin!(fut);
        let limit = self.shared.opts.limits.max_query_buffer;
        loop {
            // Keep reading meanwhile (bounded) so a client that hangs up is noticed.
            self.rbuf.reserve(READ_CHUNK);
            tokio::select! {
                biased;
                n = &mut fut => {
                    self.reply(Reply::Int(n as i64));
                    return Ok(true);
                }
                _ = self.shutdown.cancelled() => return Ok(false),
                r = stream.read_buf(&mut self.rbuf), if self.rbuf.len() < limit => {
                    if r? == 0 {
                        return Ok(false);
                    }
                }
            }
        }
    }
}

/// Parses `WAIT numregions timeout`.
fn wait_args(args: &[Bytes]) -> Result<(usize, u64), Reply> {
    let n = sessionmesh_core::cmd::parse_i64(&args[1]).ok_or_else(Reply::not_integer)?;
    let t = sessionmesh_core::cmd::parse_i64(&args[2]).ok_or_else(|| {
        Reply::err_of(
            ErrorKind::Value,
            "timeout is not an integer or out of range",
        )
    })?;
    if t < 0 {
        return Err(Reply::err_of(ErrorKind::Value, "timeout is negative"));
    }
    Ok((n.max(0) as usize, t as u64))
}

/// Holds one of the `maxclients` slots for a connection's lifetime.
struct ClientSlot(Arc<Shared>, u64);

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.0.registry.remove(self.1);
        self.0.clients.fetch_sub(1, Ordering::AcqRel);
    }
}
