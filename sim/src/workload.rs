//! The simulated clients: traffic shaped like session middleware.
//!
//! Each command picks a key by Zipf popularity and a region (the session's home region most of
//! the time, any region otherwise — a user whose traffic fails over). Sessions are created
//! (`HSET` of several fields, then `EXPIRE`), touched (`EXPIRE`/`PEXPIRE`, by far the most
//! frequent command), updated (`HSET`, sometimes `HDEL`), read (`HGETALL`, `HGET`; replies are
//! not checked), logged out (`DEL`), made permanent (`PERSIST`, rarely) and left to expire (a
//! share of sessions has TTLs of a few seconds). Plain string keys get `SET … EX|PX` and `GET`.
//! Each user's sessions (four sessions to a user) are kept in a principal index, a set, as
//! Spring Session keeps one: `SADD` on create, `SREM` on logout, `SMEMBERS` among the reads;
//! and every session's expiry in one sorted set, as Spring's reactive repository does
//! (`ZADD` on create, `ZREM` on logout, `ZRANGEBYSCORE … LIMIT` among the reads).
//! Those index commands draw nothing from the random stream, so a seed's other requests are
//! the ones it made before the index existed.
//!
//! The client keeps a hint of which sessions it believes alive, updated from replies, as real
//! middleware does: a touch answering 0 means the session is gone and the next request creates
//! one. The workload never looks inside a replica and never judges replies; the oracles in
//! [`crate::oracle`] do the judging.

use bytes::Bytes;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sessionmesh_core::Reply;

/// Samples ranks `0..n` with probability proportional to `1 / (rank + 1)^s`.
#[derive(Clone, Debug)]
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    /// A sampler over `n ≥ 1` ranks with exponent `s ≥ 0` (0 is uniform).
    pub fn new(n: usize, s: f64) -> Zipf {
        let n = n.max(1);
        let mut cdf = Vec::with_capacity(n);
        let mut total = 0.0;
        for k in 0..n {
            total += 1.0 / ((k + 1) as f64).powf(s);
            cdf.push(total);
        }
        for c in &mut cdf {
            *c /= total;
        }
        Zipf { cdf }
    }

    /// One rank.
    pub fn sample(&self, rng: &mut ChaCha8Rng) -> usize {
        let u: f64 = rng.gen();
        self.cdf
            .partition_point(|&c| c <= u)
            .min(self.cdf.len() - 1)
    }
}

/// What a command was for (counted in the summary and folded into the trace).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum OpKind {
    /// `HSET` of a new session's fields.
    Create,
    /// The `EXPIRE` that follows a create.
    CreateTtl,
    /// `EXPIRE`/`PEXPIRE` of an existing session.
    Touch,
    /// `HSET`/`HDEL` of one field.
    Update,
    /// `HGETALL`/`HGET`/`GET`.
    Read,
    /// `DEL`.
    Logout,
    /// `PERSIST`.
    Persist,
    /// `SET` of a string key.
    SetString,
    /// `FLUSHDB` or `FLUSHALL` (rare: one request in two thousand).
    Flush,
    /// `SADD`/`SREM`/`SMEMBERS` of a user's principal index.
    Index,
}

impl OpKind {
    /// Every kind, in summary order.
    pub const ALL: [OpKind; 10] = [
        OpKind::Create,
        OpKind::CreateTtl,
        OpKind::Touch,
        OpKind::Update,
        OpKind::Read,
        OpKind::Logout,
        OpKind::Persist,
        OpKind::SetString,
        OpKind::Flush,
        OpKind::Index,
    ];

    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Create => "create",
            OpKind::CreateTtl => "create-ttl",
            OpKind::Touch => "touch",
            OpKind::Update => "update",
            OpKind::Read => "read",
            OpKind::Logout => "logout",
            OpKind::Persist => "persist",
            OpKind::SetString => "set",
            OpKind::Flush => "flush",
            OpKind::Index => "index",
        }
    }
}

/// One command for one region.
#[derive(Clone, Debug)]
pub struct Op {
    /// Region position (0-based).
    pub region: usize,
    /// What it is for.
    pub kind: OpKind,
    /// The Redis command.
    pub args: Vec<Bytes>,
    /// Which session it concerns, for feeding the reply back.
    session: Option<usize>,
}

/// The client population.
#[derive(Clone, Debug)]
pub struct Workload {
    regions: usize,
    home_affinity: f64,
    /// Fraction of requests that flush (see `SimConfig::flush_rate`).
    flush_rate: f64,
    /// Whether users' principal indexes are kept (see `SimConfig::principal_index`).
    index: bool,
    sessions: Zipf,
    strings: Zipf,
    /// Believed-alive hint per session.
    alive: Vec<bool>,
    /// Per-session TTL in seconds (short ones expire during the run).
    ttl_s: Vec<u64>,
    /// Session names, built once.
    names: Vec<Bytes>,
    string_names: Vec<Bytes>,
}

impl Workload {
    /// Clients for `regions` regions over `sessions` session keys and `strings` string keys.
    pub fn new(
        rng: &mut ChaCha8Rng,
        regions: usize,
        sessions: usize,
        strings: usize,
        zipf_s: f64,
        home_affinity: f64,
        flush_rate: f64,
    ) -> Workload {
        let sessions = sessions.max(1);
        let strings = strings.max(1);
        let ttl_s = (0..sessions)
            .map(|_| {
                if rng.gen_bool(0.2) {
                    rng.gen_range(1..=8)
                } else {
                    rng.gen_range(20..=900)
                }
            })
            .collect();
        Workload {
            regions: regions.max(1),
            home_affinity,
            flush_rate,
            index: true,
            sessions: Zipf::new(sessions, zipf_s),
            strings: Zipf::new(strings, zipf_s),
            alive: vec![false; sessions],
            ttl_s,
            names: (0..sessions)
                .map(|i| Bytes::from(format!("sess:{i:05}")))
                .collect(),
            string_names: (0..strings)
                .map(|i| Bytes::from(format!("str:{i:04}")))
                .collect(),
        }
    }

    /// Keeps users' principal indexes, or not.
    pub fn with_index(mut self, on: bool) -> Workload {
        self.index = on;
        self
    }

    /// The next client request: one command, or two for a session creation (`HSET` then
    /// `EXPIRE`, sent back to back to the same region). `now_ms` only decorates values.
    pub fn next(&mut self, rng: &mut ChaCha8Rng, now_ms: u64) -> Vec<Op> {
        let x: f64 = rng.gen();
        if x < 0.08 {
            return self.string_op(rng, now_ms);
        }
        if x < 0.08 + self.flush_rate {
            // Every session this client population believes in is gone.
            self.alive.iter_mut().for_each(|a| *a = false);
            let name = if x < 0.08 + self.flush_rate / 2.0 {
                "FLUSHDB"
            } else {
                "FLUSHALL"
            };
            return vec![Op {
                region: rng.gen_range(0..self.regions),
                kind: OpKind::Flush,
                args: vec![Bytes::from_static(name.as_bytes())],
                session: None,
            }];
        }
        let s = self.sessions.sample(rng);
        let region = if rng.gen_bool(self.home_affinity) {
            s % self.regions
        } else {
            rng.gen_range(0..self.regions)
        };
        let key = self.names[s].clone();
        let op = |kind, args: Vec<Bytes>| Op {
            region,
            kind,
            args,
            session: Some(s),
        };
        if !self.alive[s] {
            if rng.gen_bool(0.1) {
                return vec![op(OpKind::Read, cmd(&["HGETALL"], &key, &[]))];
            }
            let fields = [
                b("user"),
                Bytes::from(format!("u{s}")),
                b("csrf"),
                Bytes::from(format!("{:016x}", rng.gen::<u64>())),
                b("created"),
                Bytes::from(now_ms.to_string()),
                b("last"),
                Bytes::from(now_ms.to_string()),
            ];
            let ttl = Bytes::from(self.ttl_s[s].to_string());
            self.alive[s] = true;
            let mut ops = vec![
                op(OpKind::Create, cmd(&["HSET"], &key, &fields)),
                op(OpKind::CreateTtl, cmd(&["EXPIRE"], &key, &[ttl])),
            ];
            if self.index {
                ops.push(op(
                    OpKind::Index,
                    cmd(&["SADD"], &index(s), std::slice::from_ref(&key)),
                ));
                let at = Bytes::from((now_ms + self.ttl_s[s] * 1000).to_string());
                ops.push(op(
                    OpKind::Index,
                    cmd(&["ZADD"], &b(EXPIRATIONS), &[at, key.clone()]),
                ));
            }
            return ops;
        }
        let y: u32 = rng.gen_range(0..1000);
        let one = match y {
            0..=599 => {
                if rng.gen_bool(0.1) {
                    let ms =
                        Bytes::from((self.ttl_s[s] * 1000 + rng.gen_range(0..1000)).to_string());
                    op(OpKind::Touch, cmd(&["PEXPIRE"], &key, &[ms]))
                } else {
                    let ttl = Bytes::from(self.ttl_s[s].to_string());
                    op(OpKind::Touch, cmd(&["EXPIRE"], &key, &[ttl]))
                }
            }
            600..=779 => {
                let field = ["last", "cart", "flash", "views"][rng.gen_range(0..4)];
                if field == "flash" && rng.gen_bool(0.5) {
                    op(OpKind::Update, cmd(&["HDEL"], &key, &[b(field)]))
                } else {
                    let v = Bytes::from(format!("{now_ms}:{}", rng.gen_range(0..1000u32)));
                    op(OpKind::Update, cmd(&["HSET"], &key, &[b(field), v]))
                }
            }
            780..=929 => {
                if rng.gen_bool(0.7) {
                    op(OpKind::Read, cmd(&["HGETALL"], &key, &[]))
                } else if y.is_multiple_of(2) || !self.index {
                    op(OpKind::Read, cmd(&["HGET"], &key, &[b("user")]))
                } else if y % 4 == 1 {
                    // Not a read of the session: its reply says nothing about it.
                    Op {
                        session: None,
                        ..op(OpKind::Index, cmd(&["SMEMBERS"], &index(s), &[]))
                    }
                } else {
                    let now = Bytes::from(now_ms.to_string());
                    let args = [b("-inf"), now, b("LIMIT"), b("0"), b("10")];
                    Op {
                        session: None,
                        ..op(
                            OpKind::Index,
                            cmd(&["ZRANGEBYSCORE"], &b(EXPIRATIONS), &args),
                        )
                    }
                }
            }
            930..=989 => {
                self.alive[s] = false;
                let mut ops = vec![op(OpKind::Logout, cmd(&["DEL"], &key, &[]))];
                if self.index {
                    ops.push(op(
                        OpKind::Index,
                        cmd(&["SREM"], &index(s), std::slice::from_ref(&key)),
                    ));
                    ops.push(op(
                        OpKind::Index,
                        cmd(&["ZREM"], &b(EXPIRATIONS), std::slice::from_ref(&key)),
                    ));
                }
                return ops;
            }
            _ => op(OpKind::Persist, cmd(&["PERSIST"], &key, &[])),
        };
        vec![one]
    }

    fn string_op(&mut self, rng: &mut ChaCha8Rng, now_ms: u64) -> Vec<Op> {
        let k = self.strings.sample(rng);
        let region = rng.gen_range(0..self.regions);
        let key = self.string_names[k].clone();
        let op = |kind, args| {
            vec![Op {
                region,
                kind,
                args,
                session: None,
            }]
        };
        // Some reads and writes name several keys, which most often live on different shards
        // (`MGET`, `MSET`: split by shard and put back together in the region).
        let other = |rng: &mut ChaCha8Rng, s: &Self| s.string_names[s.strings.sample(rng)].clone();
        if rng.gen_bool(0.3) {
            if rng.gen_bool(0.3) {
                let more = [other(rng, self), other(rng, self)];
                return op(OpKind::Read, cmd(&["MGET"], &key, &more));
            }
            return op(OpKind::Read, cmd(&["GET"], &key, &[]));
        }
        let v = Bytes::from(format!("v{now_ms}-{}", rng.gen_range(0..1000u32)));
        match rng.gen_range(0..4) {
            0 if rng.gen_bool(0.5) => {
                let k2 = other(rng, self);
                op(OpKind::SetString, cmd(&["MSET"], &key, &[v.clone(), k2, v]))
            }
            0 => op(OpKind::SetString, cmd(&["SET"], &key, &[v])),
            1 => {
                let ms = Bytes::from(rng.gen_range(500..20_000u64).to_string());
                op(OpKind::SetString, cmd(&["SET"], &key, &[v, b("PX"), ms]))
            }
            _ => {
                let s = Bytes::from(rng.gen_range(1..120u64).to_string());
                op(OpKind::SetString, cmd(&["SET"], &key, &[v, b("EX"), s]))
            }
        }
    }

    /// Feeds a reply back: a touch or field update answering "no such key" means the session
    /// is gone (expired or logged out elsewhere), so the client will create a new one.
    pub fn observe(&mut self, op: &Op, reply: &Reply) {
        let Some(s) = op.session else { return };
        match (op.kind, reply) {
            (OpKind::Touch | OpKind::Persist, Reply::Int(0)) => self.alive[s] = false,
            (OpKind::Read, Reply::Map(m)) if m.is_empty() => self.alive[s] = false,
            (OpKind::Read, Reply::Array(a)) if a.is_empty() => self.alive[s] = false,
            (OpKind::Read, Reply::Nil) => self.alive[s] = false,
            _ => {}
        }
    }
}

/// The sorted set of every session's expiry (Spring's reactive expiration store).
const EXPIRATIONS: &str = "spring:session:sessions:expirations";

/// The principal index of session `s`'s user.
fn index(s: usize) -> Bytes {
    Bytes::from(format!("idx:u{}", s / 4))
}

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

fn cmd(name: &[&'static str], key: &Bytes, rest: &[Bytes]) -> Vec<Bytes> {
    let mut v = Vec::with_capacity(name.len() + 1 + rest.len());
    v.extend(name.iter().map(|s| b(s)));
    v.push(key.clone());
    v.extend(rest.iter().cloned());
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn zipf_prefers_low_ranks() {
        let z = Zipf::new(100, 1.0);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut counts = [0u32; 100];
        for _ in 0..20_000 {
            counts[z.sample(&mut rng)] += 1;
        }
        assert!(counts[0] > counts[1] && counts[1] > counts[10] && counts[10] > counts[99]);
        // Rank 0 gets about 1 / H(100) ≈ 19% of the draws.
        assert!((3_000..5_000).contains(&counts[0]), "{}", counts[0]);
    }

    #[test]
    fn creates_then_touches() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut w = Workload::new(&mut rng, 3, 10, 5, 1.0, 0.8, 0.0);
        let mut kinds = std::collections::BTreeMap::new();
        for t in 0..2_000 {
            for op in w.next(&mut rng, t) {
                assert!(op.region < 3);
                *kinds.entry(op.kind).or_insert(0u32) += 1;
            }
        }
        assert!(kinds[&OpKind::Touch] > kinds[&OpKind::Create]);
        assert_eq!(kinds[&OpKind::Create], kinds[&OpKind::CreateTtl]);
    }
}
