//! Sequential equivalence with Redis 7 in one region (SPEC §2): the core answers every command
//! sequence, with time passing between commands, exactly as Redis 7 would.
//!
//! Each command runs on a [`Replica`] and on the reference model in `redis_model.rs`
//! (itself checked against a real `redis-server`); replies must be equal step by step and the
//! live key space (values and absolute expiries) equal after every step. A property test drives
//! random sequences over a small key space, so keys collide, change type and expire (and a
//! second one sequences mostly of sorted-set commands); plain tests pin the edge cases where
//! implementations usually slip, with the reply real Redis 7 gives (`random.rs` and
//! `edge_cases.rs`).
//!
//! A failure prints the whole transcript up to the failing step; proptest prints the shrunk case
//! and stores its seed in `random.proptest-regressions`, which replays it first next time.

// Test code: a failed unwrap is a failed test, and nothing here is reachable from outside.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod edge_cases;
mod random;
mod redis_model;

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use proptest::prelude::*;
use proptest::sample::select;
use redis_model::{Model, ModelValue, Score};
use sessionmesh_core::cmd::Command;
use sessionmesh_core::{Config, Float, Now, Replica, Reply, Value};

/// Wall-clock milliseconds at the start of every run (late 2023).
const T0: u64 = 1_700_000_000_000;

/// The core and the model side by side, at the same `now`, with a transcript for failures.
struct Pair {
    core: Replica,
    /// The core side's selected database: `SELECT` is a connection command, which the
    /// node's Redis server answers; here the pair plays that part.
    db: u8,
    model: Model,
    now: u64,
    transcript: Vec<String>,
}

impl Pair {
    fn new() -> Pair {
        Pair {
            core: Replica::new(Config::single()),
            db: 0,
            model: Model::new(),
            now: T0,
            transcript: Vec::new(),
        }
    }

    fn advance(&mut self, ms: u64) {
        self.now += ms;
        self.transcript.push(format!("  (time +{ms} ms)"));
    }

    /// Runs one command on both sides; `Err` describes a mismatch in reply or in state.
    fn exec(&mut self, args: &[Vec<u8>]) -> Result<Reply, String> {
        let step = self.transcript.len();
        let line = format!("[{step}] t0+{}ms  {}", self.now - T0, show(args));
        let core_args: Vec<Bytes> = args.iter().map(|a| Bytes::from(a.clone())).collect();
        let core = normalize(args, self.core_execute(core_args));
        let model = normalize(args, self.model.execute(args, self.now));
        if core != model {
            return Err(format!(
                "{}\n{line}\nreplies differ:\n  core:  {core:?}\n  model: {model:?}",
                self.transcript.join("\n")
            ));
        }
        self.transcript.push(format!("{line}  -> {core:?}"));
        self.check_state()?;
        Ok(model)
    }

    /// Runs a command line on the core in the selected database, as the node's server does:
    /// `SELECT` by the server's own parser, data commands translated into the database.
    fn core_execute(&mut self, args: Vec<Bytes>) -> Reply {
        let cmd = match Command::parse(args) {
            Ok(c) => c,
            Err(e) => return e,
        };
        if cmd.id().name() == "select" {
            return match sessionmesh::resp::commands::select(cmd.args(), 16) {
                Ok(db) => {
                    self.db = db;
                    Reply::OK
                }
                Err(e) => e,
            };
        }
        self.core.run(&cmd.in_db(self.db), Now::at(self.now))
    }

    /// The live key spaces must match: values and absolute expiries.
    fn check_state(&self) -> Result<(), String> {
        let core = core_state(&self.core, self.now);
        let model = self.model.dump(self.now);
        if core == model {
            return Ok(());
        }
        Err(format!(
            "{}\nlive state differs at t0+{}ms:\n  core:  {}\n  model: {}",
            self.transcript.join("\n"),
            self.now - T0,
            show_state(&core),
            show_state(&model)
        ))
    }

    /// For plain tests: runs a whitespace-separated command (`""` is an empty argument),
    /// checks the two sides agree, and that the reply is `want` (what real Redis 7 answers).
    fn expect(&mut self, cmd: &str, want: Reply) {
        let args: Vec<Vec<u8>> = cmd
            .split_whitespace()
            .map(|a| if a == "\"\"" { vec![] } else { a.into() })
            .collect();
        match self.exec(&args) {
            Ok(got) => assert_eq!(
                got,
                normalize(&args, want),
                "{}\nthe model's reply to `{cmd}` is not Redis's",
                self.transcript.join("\n")
            ),
            Err(mismatch) => panic!("{mismatch}"),
        }
    }

    /// For plain tests: advances time and checks the live states still agree.
    fn wait(&mut self, ms: u64) {
        self.advance(ms);
        if let Err(mismatch) = self.check_state() {
            panic!("{mismatch}");
        }
    }
}

/// The core's live keys in the model's shape (each name prefixed with its database's number).
fn core_state(core: &Replica, now: u64) -> BTreeMap<Vec<u8>, (ModelValue, Option<u64>)> {
    core.live(Now::at(now))
        .into_iter()
        .map(|(stored, (value, expire))| {
            let (db, name) = sessionmesh_core::db::split(&stored).expect("no system key is live");
            let mut key = vec![db];
            key.extend_from_slice(name);
            let value = match value {
                Value::String(s) => ModelValue::String(s.to_vec()),
                Value::Hash(h) => ModelValue::Hash(
                    h.into_iter()
                        .map(|(f, v)| (f.to_vec(), v.to_vec()))
                        .collect(),
                ),
                Value::Set(s) => ModelValue::Set(s.into_iter().map(|m| m.to_vec()).collect()),
                Value::ZSet(z) => ModelValue::ZSet(
                    z.into_iter()
                        .map(|(m, bits)| (m.to_vec(), Score(f64::from_bits(bits))))
                        .collect(),
                ),
            };
            (key, (value, expire))
        })
        .collect()
}

/// Puts replies whose order Redis leaves to its hash tables (KEYS, HKEYS, HVALS, HGETALL, a
/// set's members: SMEMBERS, SINTER, SUNION, SDIFF, SSCAN's page, SPOP and SRANDMEMBER with a
/// count) or to its random picks (ZRANDMEMBER with a count, members or pairs) in a canonical
/// order, so the comparison is about content. No pairs are an empty array: the two are one
/// reply on the wire (`ZRANGE … WITHSCORES` of nothing).
fn normalize(args: &[Vec<u8>], reply: Reply) -> Reply {
    let name = args
        .first()
        .map(|n| n.to_ascii_lowercase())
        .unwrap_or_default();
    let sorted = |mut items: Vec<Reply>| {
        items.sort_by_key(|r| format!("{r:?}"));
        items
    };
    match (name.as_slice(), reply) {
        (_, Reply::Pairs(pairs)) if pairs.is_empty() => Reply::Array(Vec::new()),
        (b"keys" | b"hkeys" | b"hvals", Reply::Array(items)) => Reply::Array(sorted(items)),
        (b"smembers" | b"sinter" | b"sunion" | b"sdiff" | b"spop", Reply::Set(items)) => {
            Reply::Set(sorted(items))
        }
        (b"srandmember" | b"zrandmember", Reply::Array(items)) => Reply::Array(sorted(items)),
        (b"zrandmember", Reply::Pairs(mut pairs)) => {
            pairs.sort_by_key(|p| format!("{p:?}"));
            Reply::Pairs(pairs)
        }
        (b"sscan", Reply::Array(mut page)) => {
            if let Some(Reply::Array(items)) = page.get_mut(1) {
                *items = sorted(std::mem::take(items));
            }
            Reply::Array(page)
        }
        (b"hgetall", Reply::Map(mut pairs)) => {
            pairs.sort_by_key(|p| format!("{p:?}"));
            Reply::Map(pairs)
        }
        (_, reply) => reply,
    }
}

fn show(args: &[Vec<u8>]) -> String {
    args.iter()
        .map(|a| show_bytes(a))
        .collect::<Vec<_>>()
        .join(" ")
}

fn show_bytes(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) if !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || c == '"') => s.into(),
        _ => format!("{:?}", String::from_utf8_lossy(b)),
    }
}

fn show_state(state: &BTreeMap<Vec<u8>, (ModelValue, Option<u64>)>) -> String {
    let keys: Vec<String> = state
        .iter()
        .map(|(k, (v, e))| {
            let v = match v {
                ModelValue::String(s) => show_bytes(s),
                ModelValue::Hash(h) => {
                    let fields: Vec<String> = h
                        .iter()
                        .map(|(f, v)| format!("{}={}", show_bytes(f), show_bytes(v)))
                        .collect();
                    format!("{{{}}}", fields.join(", "))
                }
                ModelValue::Set(s) => {
                    let members: Vec<String> = s.iter().map(|m| show_bytes(m)).collect();
                    format!("set{{{}}}", members.join(", "))
                }
                ModelValue::ZSet(z) => {
                    let members: Vec<String> = z
                        .iter()
                        .map(|(m, x)| format!("{}:{}", show_bytes(m), Float(x.0).text()))
                        .collect();
                    format!("zset{{{}}}", members.join(", "))
                }
            };
            match e {
                Some(at) => format!(
                    "{}: {v} (expires t0+{}ms)",
                    show_bytes(k),
                    *at as i64 - T0 as i64
                ),
                None => format!("{}: {v}", show_bytes(k)),
            }
        })
        .collect();
    format!("{{{}}}", keys.join("; "))
}
