//! Replies to Redis commands, independent of the wire encoding (RESP2 or RESP3).
//!
//! The core answers commands with [`Reply`] values; the node's RESP layer encodes them. Keeping
//! replies as data lets the simulator and the reference-model tests compare them directly.

use bytes::Bytes;

/// The answer to one command, shaped like Redis's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+OK` and friends.
    Simple(&'static str),
    /// `-ERR ...`; the string includes the error prefix (`ERR`, `WRONGTYPE`, ...).
    Error(String),
    /// `:n`
    Int(i64),
    /// `$n` bulk string.
    Bulk(Bytes),
    /// The null bulk string (`$-1` in RESP2, `_` in RESP3).
    Nil,
    /// `*n` array.
    Array(Vec<Reply>),
    /// A map (RESP3 `%`, flattened to an array in RESP2), used by `HGETALL`.
    Map(Vec<(Reply, Reply)>),
}

impl Reply {
    /// `+OK`.
    pub const OK: Reply = Reply::Simple("OK");

    /// An error reply with the `ERR` prefix.
    pub fn err(msg: impl std::fmt::Display) -> Reply {
        Reply::Error(format!("ERR {msg}"))
    }

    /// Redis's reply to a command with the wrong number of arguments.
    pub fn wrong_arity(cmd: &str) -> Reply {
        Reply::Error(format!(
            "ERR wrong number of arguments for '{}' command",
            cmd.to_ascii_lowercase()
        ))
    }

    /// `ERR syntax error`.
    pub fn syntax() -> Reply {
        Reply::err("syntax error")
    }

    /// The `WRONGTYPE` error.
    pub fn wrong_type() -> Reply {
        Reply::Error("WRONGTYPE Operation against a key holding the wrong kind of value".into())
    }

    /// `ERR value is not an integer or out of range`.
    pub fn not_integer() -> Reply {
        Reply::err("value is not an integer or out of range")
    }

    /// A bulk reply from anything byte-like.
    pub fn bulk(b: impl Into<Bytes>) -> Reply {
        Reply::Bulk(b.into())
    }

    /// `Bulk` for `Some`, `Nil` for `None`.
    pub fn opt(b: Option<Bytes>) -> Reply {
        b.map_or(Reply::Nil, Reply::Bulk)
    }

    /// True for error replies.
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }
}
