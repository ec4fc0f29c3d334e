//! Hash commands: HSET HMSET HSETNX HGET HMGET HGETALL HDEL HEXISTS HLEN HKEYS HVALS.
//!
//! A command line is parsed once into a [`HashOp`] (its key and fields, borrowed from the
//! line) by its command's parser, then [`run`]: nothing after parsing reads an argument by
//! position.
//!
//! Each field is its own LWW register, so concurrent writes of different fields of one session
//! both survive. `HDEL` writes a field tombstone (a register holding `None`) so that it beats
//! older writes of the field arriving later.

use super::Ctx;
use crate::crdt::{Body, KeyState, Kind, Reg};
use crate::fields::Fields;
use crate::reply::Reply;
use bytes::Bytes;

/// The visible hash at `key`: `Ok(None)` if absent, `Err` for a string.
fn hash_of<'c>(ctx: &'c Ctx<'_>, key: &Bytes) -> Result<Option<&'c KeyState>, Reply> {
    match ctx.kind(key) {
        None => Ok(None),
        Some(Kind::String | Kind::Set | Kind::ZSet) => Err(Reply::wrong_type()),
        Some(Kind::Hash) => Ok(ctx.store.get(key)),
    }
}

/// Live fields of a visible hash, in field order, counted values included.
fn live_fields(k: &KeyState) -> impl Iterator<Item = (Bytes, Bytes)> + '_ {
    k.body.live_fields()
}

/// The value of a field a client sees, counted values included ([`crate::counter`]).
pub(super) fn field(k: &KeyState, f: &Bytes) -> Option<Bytes> {
    k.body.field_value(f)
}

/// Writes `fields` into the hash at `key`, creating it if absent.
fn write_fields(ctx: &mut Ctx<'_>, key: &Bytes, fields: Fields) {
    let s = ctx.stamp();
    let delta = if ctx.live(key).is_some() {
        ctx.in_place(
            key,
            Body {
                fields,
                ..Body::default()
            },
        )
    } else {
        let body = Body {
            kind: Some(Reg::new(s, Kind::Hash)),
            fields,
            ..Body::default()
        };
        ctx.fresh(key, body)
    };
    ctx.write(key, delta);
}

/// A hash command, parsed: its key and the fields it names, borrowed from the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashOp<'a> {
    /// `HSET key field value [field value ...]` (`HMSET`: `ok` replies `OK`).
    Set {
        /// The hash.
        key: &'a Bytes,
        /// Field-value pairs.
        pairs: Pairs<'a>,
        /// `HMSET`: reply `OK` instead of the count of new fields.
        ok: bool,
    },
    /// `HSETNX key field value`.
    SetNx {
        /// The hash.
        key: &'a Bytes,
        /// The field.
        field: &'a Bytes,
        /// Its value.
        value: &'a Bytes,
    },
    /// `HGET key field`.
    Get {
        /// The hash.
        key: &'a Bytes,
        /// The field.
        field: &'a Bytes,
    },
    /// `HMGET key field [field ...]`.
    MGet {
        /// The hash.
        key: &'a Bytes,
        /// The fields.
        fields: &'a [Bytes],
    },
    /// `HGETALL key`.
    GetAll {
        /// The hash.
        key: &'a Bytes,
    },
    /// `HDEL key field [field ...]`.
    Del {
        /// The hash.
        key: &'a Bytes,
        /// The fields.
        fields: &'a [Bytes],
    },
    /// `HEXISTS key field`.
    Exists {
        /// The hash.
        key: &'a Bytes,
        /// The field.
        field: &'a Bytes,
    },
    /// `HLEN key`.
    Len {
        /// The hash.
        key: &'a Bytes,
    },
    /// `HKEYS key`.
    Keys {
        /// The hash.
        key: &'a Bytes,
    },
    /// `HVALS key`.
    Vals {
        /// The hash.
        key: &'a Bytes,
    },
}

/// Field-value pairs of a command line: an even number of arguments, checked when parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pairs<'a>(&'a [Bytes]);

impl<'a> Pairs<'a> {
    /// `args` as pairs, if there is an even number of them.
    pub fn new(args: &'a [Bytes]) -> Option<Pairs<'a>> {
        args.len().is_multiple_of(2).then_some(Pairs(args))
    }

    /// The pairs, in order.
    pub fn iter(self) -> impl Iterator<Item = (&'a Bytes, &'a Bytes)> {
        self.0.chunks_exact(2).map(|p| (&p[0], &p[1]))
    }
}

/// Argument `i` of a line whose arity the table checked (a syntax error, never a panic, if
/// a caller skipped the check).
fn arg(args: &[Bytes], i: usize) -> Result<&Bytes, Reply> {
    args.get(i).ok_or_else(Reply::syntax)
}

/// The parsers, one per command (the table points at each): the only place that reads a hash
/// command's arguments by position. `args[0]` is the name.
mod parse {
    use super::*;

    pub(super) fn set(args: &[Bytes], ok: bool) -> Result<HashOp<'_>, Reply> {
        let pairs = Pairs::new(args.get(2..).unwrap_or_default())
            .ok_or_else(|| Reply::wrong_arity(if ok { "hmset" } else { "hset" }))?;
        Ok(HashOp::Set {
            key: arg(args, 1)?,
            pairs,
            ok,
        })
    }

    pub(super) fn setnx(args: &[Bytes]) -> Result<HashOp<'_>, Reply> {
        Ok(HashOp::SetNx {
            key: arg(args, 1)?,
            field: arg(args, 2)?,
            value: arg(args, 3)?,
        })
    }

    pub(super) fn key_field(
        args: &[Bytes],
        op: for<'a> fn(&'a Bytes, &'a Bytes) -> HashOp<'a>,
    ) -> Result<HashOp<'_>, Reply> {
        Ok(op(arg(args, 1)?, arg(args, 2)?))
    }

    pub(super) fn key_fields(
        args: &[Bytes],
        op: for<'a> fn(&'a Bytes, &'a [Bytes]) -> HashOp<'a>,
    ) -> Result<HashOp<'_>, Reply> {
        Ok(op(arg(args, 1)?, args.get(2..).unwrap_or_default()))
    }

    pub(super) fn key(
        args: &[Bytes],
        op: for<'a> fn(&'a Bytes) -> HashOp<'a>,
    ) -> Result<HashOp<'_>, Reply> {
        Ok(op(arg(args, 1)?))
    }
}

/// The table's entry point of each hash command: parse, then run.
macro_rules! entries {
    ($($name:ident => $parse:expr;)*) => {
        $(
            pub(super) fn $name(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
                let parsed: Result<HashOp<'_>, Reply> = $parse(args);
                match parsed {
                    Ok(op) => run(ctx, op),
                    Err(e) => e,
                }
            }
        )*
    };
}

entries! {
    hset => |a| parse::set(a, false);
    hmset => |a| parse::set(a, true);
    hsetnx => parse::setnx;
    hget => |a| parse::key_field(a, |key, field| HashOp::Get { key, field });
    hexists => |a| parse::key_field(a, |key, field| HashOp::Exists { key, field });
    hmget => |a| parse::key_fields(a, |key, fields| HashOp::MGet { key, fields });
    hdel => |a| parse::key_fields(a, |key, fields| HashOp::Del { key, fields });
    hgetall => |a| parse::key(a, |key| HashOp::GetAll { key });
    hlen => |a| parse::key(a, |key| HashOp::Len { key });
    hkeys => |a| parse::key(a, |key| HashOp::Keys { key });
    hvals => |a| parse::key(a, |key| HashOp::Vals { key });
}

/// Runs a parsed hash command.
pub fn run(ctx: &mut Ctx<'_>, op: HashOp<'_>) -> Reply {
    match op {
        HashOp::Set { key, pairs, ok } => run_hset(ctx, key, pairs, ok),
        HashOp::SetNx { key, field, value } => run_hsetnx(ctx, key, field, value),
        HashOp::Get { key, field: f } => match hash_of(ctx, key) {
            Err(r) => r,
            Ok(k) => Reply::opt(k.and_then(|k| field(k, f))),
        },
        HashOp::MGet { key, fields } => match hash_of(ctx, key) {
            Err(r) => r,
            Ok(k) => Reply::Array(
                fields
                    .iter()
                    .map(|f| Reply::opt(k.and_then(|k| field(k, f))))
                    .collect(),
            ),
        },
        HashOp::GetAll { key } => match hash_of(ctx, key) {
            Err(r) => r,
            Ok(None) => Reply::Map(Vec::new()),
            Ok(Some(k)) => Reply::Map(
                live_fields(k)
                    .map(|(f, v)| (Reply::Bulk(f), Reply::Bulk(v)))
                    .collect(),
            ),
        },
        HashOp::Del { key, fields } => run_hdel(ctx, key, fields),
        HashOp::Exists { key, field: f } => match hash_of(ctx, key) {
            Err(r) => r,
            Ok(k) => Reply::Int(i64::from(k.and_then(|k| field(k, f)).is_some())),
        },
        HashOp::Len { key } => match hash_of(ctx, key) {
            Err(r) => r,
            // A count needs no order (a large hash would sort its fields for it).
            Ok(k) => Reply::Int(k.map_or(0, |k| k.body.live_field_count() as i64)),
        },
        HashOp::Keys { key } => match hash_of(ctx, key) {
            Err(r) => r,
            Ok(k) => Reply::Array(
                k.into_iter()
                    .flat_map(live_fields)
                    .map(|(f, _)| Reply::Bulk(f))
                    .collect(),
            ),
        },
        HashOp::Vals { key } => match hash_of(ctx, key) {
            Err(r) => r,
            Ok(k) => Reply::Array(
                k.into_iter()
                    .flat_map(live_fields)
                    .map(|(_, v)| Reply::Bulk(v))
                    .collect(),
            ),
        },
    }
}

fn run_hset(ctx: &mut Ctx<'_>, key: &Bytes, pairs: Pairs<'_>, ok: bool) -> Reply {
    let existing = match hash_of(ctx, key) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let s = ctx.stamp();
    let mut fields = Fields::new();
    let mut added = 0;
    for (f, v) in pairs.iter() {
        let is_new = existing.and_then(|k| field(k, f)).is_none() && !fields.contains_key(f);
        if is_new {
            added += 1;
        }
        fields.insert(f.clone(), Reg::new(s, Some(v.clone())));
    }
    // Field registers held, deleted fields included (they take memory too until the key is
    // replaced): an O(1) count, so the check costs nothing on a large hash.
    let held = existing.map_or(0, |k| k.body.fields.len());
    if held + added as usize > ctx.max_hash_fields {
        return too_many_fields(ctx.max_hash_fields);
    }
    write_fields(ctx, key, fields);
    if ok {
        Reply::OK
    } else {
        Reply::Int(added)
    }
}

fn run_hsetnx(ctx: &mut Ctx<'_>, key: &Bytes, f: &Bytes, v: &Bytes) -> Reply {
    match hash_of(ctx, key) {
        Err(r) => r,
        Ok(Some(k)) if field(k, f).is_some() => Reply::Int(0),
        Ok(k) => {
            if k.map_or(0, |k| k.body.fields.len()) >= ctx.max_hash_fields {
                return too_many_fields(ctx.max_hash_fields);
            }
            let s = ctx.stamp();
            let mut fields = Fields::new();
            fields.insert(f.clone(), Reg::new(s, Some(v.clone())));
            write_fields(ctx, key, fields);
            Reply::Int(1)
        }
    }
}

/// The error for a hash that would grow beyond the configured bound.
pub(super) fn too_many_fields(max: usize) -> Reply {
    Reply::err(format!(
        "hash would exceed the maximum of {max} fields (redis.max_hash_fields)"
    ))
}

fn run_hdel(ctx: &mut Ctx<'_>, key: &Bytes, names: &[Bytes]) -> Reply {
    let k = match hash_of(ctx, key) {
        Err(r) => return r,
        Ok(None) => return Reply::Int(0),
        Ok(Some(k)) => k,
    };
    let s = ctx.stamp();
    let mut fields = Fields::new();
    for f in names {
        if field(k, f).is_some() {
            fields.insert(f.clone(), Reg::new(s, None));
        }
    }
    let removed = fields.len() as i64;
    if removed > 0 {
        let delta = ctx.in_place(
            key,
            Body {
                fields,
                ..Body::default()
            },
        );
        ctx.write(key, delta);
    }
    Reply::Int(removed)
}
