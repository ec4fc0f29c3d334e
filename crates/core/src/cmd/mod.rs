//! Redis data commands: parsed from their arguments, applied to the [`Store`] as CRDT deltas.
//!
//! Every write becomes a delta — the registers it sets, all stamped with the command's one
//! stamp — merged into the store exactly as a delta from a peer would be. That is what makes a
//! local write and its replication the same operation, and what the push path later ships.
//!
//! Every command, connection commands included, is described once in [`table`]; a command line
//! becomes a [`Command`] (looked up and arity-checked) once, by the Redis server, and runs here
//! by its handler. One file per family: [`strings`], [`hashes`], [`sets`], [`zsets`], [`keys`] (generic keyspace,
//! TTL, `SCAN`). Connection-level commands (`PING`, `HELLO`, `MULTI`, ...) run in the node's
//! Redis server, not here.
//!
//! Reply shapes and error strings follow Redis 7; `tests/sequential.rs` compares every command
//! against a reference model of Redis over random sequences.

pub mod cas;
pub mod counters;
pub mod glob;
pub mod hashes;
pub mod keys;
pub mod lcs;
pub mod sets;
pub mod strings;
pub mod substrings;
pub mod table;
pub mod zsets;

pub use table::{CommandId, Exec, Flags, Group, KeySpec, Spec, TABLE};

use crate::crdt::{Body, KeyState, Kind, Reg};
use crate::reply::{ErrorKind, Reply};
use crate::stamp::Stamp;
use crate::store::Store;
use bytes::Bytes;

/// What executing one command needs.
pub struct Ctx<'a> {
    /// The key space.
    pub store: &'a mut Store,
    /// "Now" for expiry: the command's stamp for writes, the HLC reading for reads.
    pub now_ms: u64,
    /// The command's stamp (write commands only).
    pub stamp: Option<Stamp>,
    /// Deltas applied by this command, in order.
    pub writes: Vec<(Bytes, KeyState)>,
    /// Registers that lost while applying them.
    pub conflicts: u64,
    /// Fields one hash may hold.
    pub max_hash_fields: usize,
    /// Longest string a command may build (`SETRANGE`, `APPEND`), as Redis's
    /// `proto-max-bulk-len`.
    pub max_string_bytes: usize,
    /// The client's database (the commands that list, count or flush keys need it; every
    /// key argument is already a stored name, see [`crate::db`]).
    pub db: u8,
    /// How many databases the region has (`MOVE`, `COPY … DB`).
    pub databases: u16,
    /// Which shard of how many this is (`FLUSHDB` names the shard's flush marker).
    pub shard: (u16, u16),
}

impl<'a> Ctx<'a> {
    /// The stamp of this write command.
    #[allow(
        clippy::expect_used,
        reason = "the replica stamps every write command before it runs"
    )]
    fn stamp(&self) -> Stamp {
        self.stamp
            .expect("write commands are stamped before they run")
    }

    /// The key's state when a client can see it.
    fn live(&self, key: &Bytes) -> Option<&KeyState> {
        self.store.get(key).filter(|k| k.is_visible(self.now_ms))
    }

    /// The visible type of a key.
    fn kind(&self, key: &Bytes) -> Option<Kind> {
        self.store
            .get(key)
            .and_then(|k| k.visible_kind(self.now_ms))
    }

    /// A delta in the key's current incarnation (which must be live), with `body`.
    #[allow(
        clippy::expect_used,
        reason = "called only for a key the command found live"
    )]
    fn in_place(&self, key: &Bytes, body: Body) -> KeyState {
        let cl = self.store.get(key).expect("key is live").cl.clone();
        KeyState { cl, body }
    }

    /// A delta that starts a fresh incarnation of `key` with `body`, numbered from the stamp
    /// ([`KeyState::fresh_len`]) so that it outranks every earlier incarnation — including ones
    /// this region has already garbage-collected and no longer remembers, which peers may still
    /// hold.
    fn fresh(&self, _key: &Bytes, body: Body) -> KeyState {
        let s = self.stamp();
        KeyState {
            cl: Reg::new(s, KeyState::fresh_len(s)),
            body,
        }
    }

    /// A delta that replaces the whole key (SET semantics): in place with `reset` when the key
    /// is visible, as a fresh incarnation otherwise.
    fn replace(&self, key: &Bytes, mut body: Body) -> KeyState {
        body.reset = Some(self.stamp());
        if self.live(key).is_some() {
            self.in_place(key, body)
        } else {
            self.fresh(key, body)
        }
    }

    /// A delta deleting a live key.
    #[allow(
        clippy::expect_used,
        reason = "called only for a key the command found live"
    )]
    fn delete(&self, key: &Bytes) -> KeyState {
        let cl = &self.store.get(key).expect("key is live").cl;
        KeyState {
            cl: Reg::new(self.stamp(), cl.value + 1),
            body: Body::default(),
        }
    }

    /// Applies a delta to the store and records it.
    fn write(&mut self, key: &Bytes, delta: KeyState) {
        self.conflicts += self.store.apply(key, &delta);
        self.writes.push((key.clone(), delta));
    }
}

/// A command line whose name was looked up in the [`TABLE`] and whose arity was checked, once:
/// the only way to run a command ([`Replica::run`](crate::Replica::run)) is through one, so
/// a handler may index its arguments up to the arity without checking again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    id: CommandId,
    args: Vec<Bytes>,
    /// The client's database ([`crate::db`]); its keys in `args` are already stored names.
    db: u8,
}

impl Command {
    /// `args` (`args[0]` the name) as command `id`; `Err` gives `args` back when their number
    /// does not fit the command's arity (answer [`Reply::wrong_arity`]).
    pub fn new(id: CommandId, args: Vec<Bytes>) -> Result<Command, Vec<Bytes>> {
        if id.spec().arity_ok(args.len()) {
            Ok(Command { id, args, db: 0 })
        } else {
            Err(args)
        }
    }

    /// Looks `args[0]` up and checks the arity: Redis's unknown-command or wrong-arity reply
    /// otherwise.
    pub fn parse(args: Vec<Bytes>) -> Result<Command, Reply> {
        let Some(id) = args.first().and_then(|n| CommandId::lookup(n)) else {
            return Err(unknown_command(&args));
        };
        Command::new(id, args).map_err(|_| Reply::wrong_arity(id.name()))
    }

    /// Which command it is.
    pub fn id(&self) -> CommandId {
        self.id
    }

    /// Its description.
    pub fn spec(&self) -> &'static Spec {
        self.id.spec()
    }

    /// The whole line, name first.
    pub fn args(&self) -> &[Bytes] {
        &self.args
    }

    /// The line back, to reuse its allocation.
    pub fn into_args(self) -> Vec<Bytes> {
        self.args
    }

    /// Its first key, by the table's key spec.
    pub fn first_key(&self) -> Option<&Bytes> {
        self.spec().keys.keys(&self.args).next()
    }

    /// The command as run in database `db`: its keys (by the table's key spec) become their
    /// stored names ([`crate::db::encode`]), and `COPY … DB n`'s destination that of
    /// database `n` (an invalid `n` is left for the command to refuse). Done once, where a
    /// command enters; database 0's ordinary names are not copied.
    pub fn in_db(mut self, db: u8) -> Command {
        self.db = db;
        let spec = self.spec();
        let copy_to = (spec.name == "copy").then(|| copy_db(&self.args)).flatten();
        for i in spec.keys.positions(&self.args) {
            let target = match copy_to {
                Some(d) if i == 2 => d,
                _ => db,
            };
            let a = &mut self.args[i];
            // Database 0's ordinary names stay as they are, untouched (no reference
            // count taken and dropped on the hot path).
            if target != 0 || a.first() == Some(&0xFF) {
                *a = crate::db::encode(target, a);
            }
        }
        self
    }

    /// The same command in database `db`, its arguments as they are (already stored names):
    /// what a command spanning shards hands each shard.
    pub fn with_db(mut self, db: u8) -> Command {
        self.db = db;
        self
    }

    /// The client's database.
    pub fn db(&self) -> u8 {
        self.db
    }

    /// The hash slots of its keys ([`crate::slot::key_slot`]), in argument order: what routes
    /// it to a shard.
    pub fn slots(&self) -> impl Iterator<Item = u16> + '_ {
        self.spec()
            .keys
            .keys(&self.args)
            .map(|k| crate::slot::key_slot(k))
    }
}

/// The database `COPY`'s `DB` option names, when it is a valid index (the last one given).
fn copy_db(args: &[Bytes]) -> Option<u8> {
    let mut out = None;
    let mut i = 3;
    while i + 1 < args.len() {
        if is_opt(&args[i], "DB") {
            out = crate::db::parse_index(&args[i + 1], crate::db::MAX_DATABASES).ok();
            i += 2;
        } else {
            i += 1;
        }
    }
    out
}

/// Redis's reply to a command it does not know.
pub fn unknown_command(args: &[Bytes]) -> Reply {
    let name = args
        .first()
        .map(|a| String::from_utf8_lossy(a))
        .unwrap_or_default();
    let mut msg = format!(
        "ERR unknown command '{}', with args beginning with: ",
        truncate(&name)
    );
    for a in args.iter().skip(1) {
        msg.push_str(&format!("'{}' ", truncate(&String::from_utf8_lossy(a))));
    }
    Reply::error(ErrorKind::UnknownCommand, msg)
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(128) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Runs a data command against `ctx`; a connection command (which the Redis server runs
/// itself) gets the unknown-command reply.
pub fn execute(ctx: &mut Ctx<'_>, cmd: &Command) -> Reply {
    match cmd.spec().exec {
        Exec::Data(run) => run(ctx, cmd.args()),
        Exec::Connection => unknown_command(cmd.args()),
    }
}

/// Parses a signed 64-bit integer argument the way Redis does (no spaces, no `+`).
pub fn parse_i64(b: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(b).ok()?;
    if s.is_empty() || s.starts_with('+') || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    if s.starts_with("-0") {
        return None;
    }
    s.parse().ok()
}

/// Parses a non-negative integer (`COUNT`, cursors).
pub fn parse_u64(b: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(b).ok()?;
    if s.is_empty() || s.starts_with('+') {
        return None;
    }
    s.parse().ok()
}

/// Case-insensitive comparison of an argument with an upper-case option name.
pub fn is_opt(arg: &[u8], opt: &str) -> bool {
    arg.eq_ignore_ascii_case(opt.as_bytes())
}
