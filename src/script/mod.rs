//! Scripting: `EVAL`, `EVALSHA`, `EVAL_RO`, `EVALSHA_RO` and `SCRIPT`, with a real Lua 5.1
//! (Redis's dialect, embedded by `mlua` from vendored sources).
//!
//! A script runs **atomically in the region that receives it**: the connection holds the
//! shards of the keys it declares (every shard when it declares none) for the whole script
//! ([`crate::node::Node::hold`]), so no other command and no peer frame runs on them in between,
//! as in Redis. Its `redis.call`s run as ordinary commands of the core and make ordinary deltas:
//! what replicates is the script's **effects**, never the script, so no script is ever evaluated
//! twice or differently elsewhere (another region may hold other data, or another time).
//!
//! Keys a script touches must be declared in `KEYS` when they live on another shard than the
//! declared ones (Redis Cluster's rule, with the shard in place of the node); a call on such a
//! key is answered with Redis Cluster's error, `Script attempted to access a non local key`.
//! A script that declares no key holds every shard, so it may touch any key.
//!
//! The cache of script bodies is the node's (a [`DashMap`] read by every connection thread);
//! compiled functions are cached per thread, each worker thread having its own Lua state
//! ([`lua`]). Cached bodies are per region: `SCRIPT LOAD` in one region does not load the
//! script elsewhere, and `EVALSHA` of a script only ever loaded in another region is answered
//! `NOSCRIPT` (clients then send `EVAL`, which they all do on `NOSCRIPT`).

mod lua;

use bytes::Bytes;
use dashmap::DashMap;
use sessionmesh_core::cmd::{parse_i64, Command};
use sessionmesh_core::{ErrorKind, Reply};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The node's script cache: bodies by their lower-case SHA-1 hex digest; and the scripts
/// running now, by connection (for `BUSY` and `SCRIPT KILL`).
#[derive(Debug, Default)]
pub struct Scripts {
    bodies: DashMap<String, Bytes>,
    running: DashMap<u64, Arc<Run>>,
    /// `running.len()`, read on every command of every connection (one load).
    count: AtomicUsize,
}

/// One script running.
#[derive(Debug)]
pub struct Run {
    started: Instant,
    /// Set by `SCRIPT KILL`; the script's instruction hook raises an error when it sees it.
    kill: AtomicBool,
    /// The script ran a write command: it can no longer be killed (its writes stand).
    wrote: AtomicBool,
}

impl Run {
    /// Notes that the script ran a write command.
    pub fn wrote(&self) {
        self.wrote.store(true, Ordering::Relaxed);
    }

    fn killed(&self) -> bool {
        self.kill.load(Ordering::Relaxed)
    }
}

/// `BUSY`, for commands sent while a script is past `busy-reply-threshold`.
pub const BUSY: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT.";

impl Scripts {
    /// Compiles `body` and caches it; returns its digest, or Redis's compile error
    /// (`SCRIPT LOAD`).
    pub fn load(&self, body: &Bytes) -> Result<String, Reply> {
        let sha = sha1hex(body);
        lua::compile(body, &sha)?;
        self.insert(&sha, body);
        Ok(sha)
    }

    /// Caches `body` under `sha` (a script that compiled).
    fn insert(&self, sha: &str, body: &Bytes) {
        if !self.bodies.contains_key(sha) {
            self.bodies.insert(sha.to_owned(), body.clone());
        }
    }

    /// The body cached under `sha` (any case), if any.
    pub fn get(&self, sha: &[u8]) -> Option<Bytes> {
        if sha.len() != 40 {
            return None;
        }
        let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
        self.bodies.get(&sha).map(|b| b.clone())
    }

    /// Empties the cache (`SCRIPT FLUSH`).
    pub fn flush(&self) {
        self.bodies.clear();
    }

    /// A run registered nowhere: a transaction that holds its shards without a script.
    pub fn unregistered() -> Arc<Run> {
        Arc::new(Run {
            started: Instant::now(),
            kill: AtomicBool::new(false),
            wrote: AtomicBool::new(false),
        })
    }

    /// Connection `conn` starts a script.
    pub fn start(&self, conn: u64) -> Arc<Run> {
        let run = Arc::new(Run {
            started: Instant::now(),
            kill: AtomicBool::new(false),
            wrote: AtomicBool::new(false),
        });
        if self.running.insert(conn, Arc::clone(&run)).is_none() {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
        run
    }

    /// Connection `conn`'s script ended.
    pub fn end(&self, conn: u64) {
        if self.running.remove(&conn).is_some() {
            self.count.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Whether a script of another connection than `conn` runs (one atomic load when none
    /// does).
    pub fn others_running(&self, conn: u64) -> bool {
        self.count.load(Ordering::Relaxed) > 0 && self.running.iter().any(|e| *e.key() != conn)
    }

    /// Whether a script of another connection than `conn` has run longer than `threshold_ms`
    /// (one atomic load when none runs).
    pub fn busy(&self, conn: u64, threshold_ms: u64) -> bool {
        self.count.load(Ordering::Relaxed) > 0
            && self.running.iter().any(|e| {
                *e.key() != conn && e.started.elapsed().as_millis() >= u128::from(threshold_ms)
            })
    }

    /// `SCRIPT KILL` from connection `conn`: stops another connection's script that has not
    /// written (Redis's replies: `NOTBUSY`, `UNKILLABLE`, or `OK`).
    pub fn kill(&self, conn: u64) -> Reply {
        let Some(run) = self
            .running
            .iter()
            .filter(|e| *e.key() != conn)
            .map(|e| Arc::clone(e.value()))
            .next()
        else {
            return Reply::error(
                ErrorKind::Other,
                "NOTBUSY No scripts in execution right now.",
            );
        };
        if run.wrote.load(Ordering::Relaxed) {
            return Reply::error(
                ErrorKind::Other,
                "UNKILLABLE Sorry the script already executed write commands against the \
                 dataset. You can either wait the script termination or kill the server in a \
                 hard way using the SHUTDOWN NOSAVE command.",
            );
        }
        run.kill.store(true, Ordering::Relaxed);
        Reply::OK
    }

    /// How many scripts are cached (`INFO`'s `number_of_cached_scripts`).
    pub fn len(&self) -> usize {
        self.bodies.len()
    }

    /// Whether no script is cached.
    pub fn is_empty(&self) -> bool {
        self.bodies.is_empty()
    }
}

/// The lower-case SHA-1 hex digest of `b`, as Redis names scripts.
pub fn sha1hex(b: &[u8]) -> String {
    sha1_smol::Sha1::from(b).digest().to_string()
}

/// One script call, parsed: `EVAL body numkeys key... arg...` and its variants.
#[derive(Debug)]
pub struct Call<'a> {
    /// The script's body.
    pub body: Bytes,
    /// Its digest.
    pub sha: String,
    /// `KEYS`.
    pub keys: &'a [Bytes],
    /// `ARGV`.
    pub argv: &'a [Bytes],
    /// `EVAL_RO`/`EVALSHA_RO`: write commands are refused.
    pub read_only: bool,
    /// Where an `EVAL` body is cached once it compiled (`None` for `EVALSHA`).
    cache: Option<&'a Scripts>,
}

impl<'a> Call<'a> {
    /// Parses `cmd` (one of the four `EVAL` commands), finding an `EVALSHA` body in `scripts`
    /// (an `EVAL` body is cached there when it runs, if it compiles). Errors are Redis's, in
    /// Redis's order.
    pub fn parse(cmd: &'a Command, scripts: &'a Scripts) -> Result<Call<'a>, Reply> {
        let args = cmd.args();
        let name = cmd.id().name();
        let by_sha = name.starts_with("evalsha");
        let numkeys = parse_i64(&args[2]).ok_or_else(|| {
            Reply::err_of(ErrorKind::Value, "value is not an integer or out of range")
        })?;
        if numkeys < 0 {
            return Err(Reply::err_of(
                ErrorKind::Value,
                "Number of keys can't be negative",
            ));
        }
        let rest = &args[3..];
        if numkeys as u64 > rest.len() as u64 {
            return Err(Reply::err_of(
                ErrorKind::Value,
                "Number of keys can't be greater than number of args",
            ));
        }
        let (keys, argv) = rest.split_at(numkeys as usize);
        let (body, sha) = if by_sha {
            match scripts.get(&args[1]) {
                Some(b) => (b, String::from_utf8_lossy(&args[1]).to_ascii_lowercase()),
                None => return Err(noscript()),
            }
        } else {
            (args[1].clone(), sha1hex(&args[1]))
        };
        Ok(Call {
            body,
            sha,
            keys,
            argv,
            read_only: name.ends_with("_ro"),
            cache: (!by_sha).then_some(scripts),
        })
    }

    /// Runs the script, its commands through `run` (see [`crate::node::Node::hold`]);
    /// `state` is where `SCRIPT KILL` reaches it.
    pub fn run(&self, state: &Arc<Run>, run: &mut dyn FnMut(&Command) -> Option<Reply>) -> Reply {
        lua::eval(self, state, run)
    }

    /// The script compiled: an `EVAL` body joins the cache.
    fn compiled(&self) {
        if let Some(s) = self.cache {
            s.insert(&self.sha, &self.body);
        }
    }
}

/// `NOSCRIPT`, for an `EVALSHA` of a script this region has not cached.
pub fn noscript() -> Reply {
    Reply::error(
        ErrorKind::Other,
        "NOSCRIPT No matching script. Please use EVAL.",
    )
}

/// `SCRIPT LOAD|EXISTS|FLUSH|KILL|HELP`.
pub fn script_command(args: &[Bytes], scripts: &Scripts) -> Reply {
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    let arity = |ok: bool| {
        (!ok).then(|| {
            Reply::err_of(
                ErrorKind::Arity,
                format_args!("wrong number of arguments for 'script|{sub}' command"),
            )
        })
    };
    match sub.as_str() {
        "load" => arity(args.len() == 3).unwrap_or_else(|| match scripts.load(&args[2]) {
            Ok(sha) => Reply::Bulk(Bytes::from(sha)),
            Err(e) => e,
        }),
        "exists" => arity(args.len() >= 3).unwrap_or_else(|| {
            Reply::Array(
                args[2..]
                    .iter()
                    .map(|s| Reply::Int(i64::from(scripts.get(s).is_some())))
                    .collect(),
            )
        }),
        "flush" => {
            if let Some(e) = arity(args.len() <= 3) {
                return e;
            }
            let mode_ok = args
                .get(2)
                .is_none_or(|m| m.eq_ignore_ascii_case(b"sync") || m.eq_ignore_ascii_case(b"async"));
            if !mode_ok {
                return Reply::err("SCRIPT FLUSH only support SYNC|ASYNC option");
            }
            scripts.flush();
            lua::forget_compiled();
            Reply::OK
        }
        // Answered by the connection, which knows who asks (`Scripts::kill`).
        "kill" => arity(args.len() == 2).unwrap_or_else(|| scripts.kill(u64::MAX)),
        "help" => Reply::Array(
            [
                "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "EXISTS <sha1> [<sha1> ...]",
                "    Return information about the existence of the scripts in the script cache.",
                "FLUSH [ASYNC|SYNC]",
                "    Flush the Lua scripts cache. Very dangerous on replicas.",
                "    When called without the optional mode argument, the behavior is determined by the",
                "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
                "    * ASYNC: Asynchronously flush the scripts cache.",
                "    * SYNC: Synchronously flush the scripts cache.",
                "KILL",
                "    Kill the currently executing Lua script.",
                "LOAD <script>",
                "    Load a script into the scripts cache without executing it.",
                "HELP",
                "    Prints this help.",
            ]
            .into_iter()
            .map(Reply::Simple)
            .collect(),
        ),
        _ => Reply::err_of(
            ErrorKind::UnknownCommand,
            format_args!(
                "unknown subcommand '{}'. Try SCRIPT HELP.",
                String::from_utf8_lossy(&args[1])
            ),
        ),
    }
}

#[cfg(test)]
mod tests;
