//! Replies to Redis commands, independent of the wire encoding (RESP2 or RESP3).
//!
//! The core answers commands with [`Reply`] values; the node's RESP layer encodes them. Keeping
//! replies as data lets the simulator and the reference-model tests compare them directly.

use bytes::Bytes;
use std::borrow::Cow;

/// What kind of client error a reply is: its metric label (`sessionmesh_errors_total{kind}`),
/// decided where the error is made, never read back from its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A malformed request; the connection is closed.
    Protocol,
    /// `WRONGTYPE`.
    WrongType,
    /// `syntax error` and incompatible or unsupported options.
    Syntax,
    /// Wrong number of arguments.
    Arity,
    /// Unknown command or subcommand.
    UnknownCommand,
    /// `NOAUTH`, `WRONGPASS`, and `AUTH` without a password configured.
    Auth,
    /// A configured bound: max clients, query buffer, `MULTI` queue.
    Limit,
    /// A number or expiry that does not parse or is out of range.
    Value,
    /// `EXECABORT` and misplaced `MULTI`/`EXEC`/`DISCARD`.
    Transaction,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// Every kind, in the order metrics render them.
    pub const ALL: [ErrorKind; 10] = [
        ErrorKind::Protocol,
        ErrorKind::WrongType,
        ErrorKind::Syntax,
        ErrorKind::Arity,
        ErrorKind::UnknownCommand,
        ErrorKind::Auth,
        ErrorKind::Limit,
        ErrorKind::Value,
        ErrorKind::Transaction,
        ErrorKind::Other,
    ];

    /// The `kind` label value.
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::Protocol => "protocol",
            ErrorKind::WrongType => "wrongtype",
            ErrorKind::Syntax => "syntax",
            ErrorKind::Arity => "arity",
            ErrorKind::UnknownCommand => "unknown_command",
            ErrorKind::Auth => "auth",
            ErrorKind::Limit => "limit",
            ErrorKind::Value => "value",
            ErrorKind::Transaction => "transaction",
            ErrorKind::Other => "other",
        }
    }
}

/// An error reply: its [`ErrorKind`] and Redis's exact text (the code included: `ERR ...`,
/// `WRONGTYPE ...`). Two errors are equal when their texts are: the text is what a client
/// sees, the kind is how we count it.
#[derive(Clone, Debug)]
pub struct Error {
    kind: ErrorKind,
    text: Cow<'static, str>,
}

impl Error {
    /// An error of `kind` with the whole `text`, code included.
    pub fn new(kind: ErrorKind, text: impl Into<Cow<'static, str>>) -> Error {
        Error {
            kind,
            text: text.into(),
        }
    }

    /// Its kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Its text, as sent (without the leading `-`).
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl PartialEq for Error {
    fn eq(&self, other: &Error) -> bool {
        self.text == other.text
    }
}

impl Eq for Error {}

/// An error whose kind is not counted apart ([`ErrorKind::Other`]): tests and reference models
/// write the expected text this way.
impl From<String> for Error {
    fn from(text: String) -> Error {
        Error::new(ErrorKind::Other, text)
    }
}

/// See `From<String>`.
impl From<&'static str> for Error {
    fn from(text: &'static str) -> Error {
        Error::new(ErrorKind::Other, text)
    }
}

/// A double in a reply, compared by its bits (so that replies stay `Eq`).
#[derive(Clone, Copy, Debug)]
pub struct Float(pub f64);

impl PartialEq for Float {
    fn eq(&self, other: &Float) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Float {}

impl Float {
    /// As Redis 7.0 writes a double: `inf`, `-inf`, `0` and `-0`, otherwise C's
    /// `%.17g` (17 significant digits, trailing zeros dropped, exponent form below 1e-4 and
    /// from 1e17).
    pub fn text(self) -> String {
        let x = self.0;
        if x.is_infinite() {
            return if x > 0.0 { "inf".into() } else { "-inf".into() };
        }
        if x.is_nan() {
            return "nan".into();
        }
        if x == 0.0 {
            return if x.is_sign_negative() { "-0" } else { "0" }.into();
        }
        // 17 significant digits in exponent form, then laid out as %g would.
        let e = format!("{x:.16e}");
        let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        if !(-4..17).contains(&exp) {
            let m = strip_zeros(mantissa);
            let sign = if exp < 0 { '-' } else { '+' };
            return format!("{m}e{sign}{:02}", exp.abs());
        }
        let decimals = (16 - exp).max(0) as usize;
        strip_zeros(&format!("{x:.decimals$}")).to_string()
    }
}

/// `1.2300` → `1.23`, `5.000` → `5`; a number without a point is left alone.
fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// The answer to one command, shaped like Redis's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+OK` and friends.
    Simple(&'static str),
    /// `-ERR ...`: an [`Error`], its text including the code (`ERR`, `WRONGTYPE`, ...).
    Error(Error),
    /// `:n`
    Int(i64),
    /// `$n` bulk string.
    Bulk(Bytes),
    /// The null bulk string (`$-1` in RESP2, `_` in RESP3).
    Nil,
    /// `*n` array.
    Array(Vec<Reply>),
    /// A set (RESP3 `~`, an array in RESP2): `SMEMBERS`, `SINTER`, `SPOP` with a count.
    Set(Vec<Reply>),
    /// A double (RESP3 `,`, a bulk string in RESP2), written as Redis 7.0 writes one
    /// (`%.17g`, `inf`, `-inf`): a sorted set's scores.
    Double(Float),
    /// Out-of-band data (RESP3 `>`, an array in RESP2): pub/sub messages and subscription
    /// confirmations.
    Push(Vec<Reply>),
    /// Pairs (RESP3: an array of two-element arrays; RESP2: one flat array): a sorted set's
    /// members `WITHSCORES`.
    Pairs(Vec<(Reply, Reply)>),
    /// A map (RESP3 `%`, flattened to an array in RESP2), used by `HGETALL`.
    Map(Vec<(Reply, Reply)>),
    /// The null array (`*-1` in RESP2, `_` in RESP3): `EXEC` aborted by `WATCH`.
    NilArray,
    /// A status (`+...`) made at run time: what a script returns as `{ok = "..."}` or
    /// `redis.status_reply("...")`.
    Status(String),
    /// Text for people (`INFO`, `CLIENT INFO`, `CLIENT LIST`): RESP3's verbatim string (`=`,
    /// format `txt`), a bulk string in RESP2, as Redis answers them.
    Verbatim(Bytes),
}

impl Reply {
    /// `+OK`.
    pub const OK: Reply = Reply::Simple("OK");

    /// An error reply of `kind` with the `ERR` prefix.
    pub fn err_of(kind: ErrorKind, msg: impl std::fmt::Display) -> Reply {
        Reply::Error(Error::new(kind, format!("ERR {msg}")))
    }

    /// An error reply of `kind` with its whole text (a code other than `ERR`).
    pub fn error(kind: ErrorKind, text: impl Into<Cow<'static, str>>) -> Reply {
        Reply::Error(Error::new(kind, text))
    }

    /// An `ERR` reply of no particular kind ([`ErrorKind::Other`]).
    pub fn err(msg: impl std::fmt::Display) -> Reply {
        Reply::err_of(ErrorKind::Other, msg)
    }

    /// Redis's reply to a command with the wrong number of arguments.
    pub fn wrong_arity(cmd: &str) -> Reply {
        Reply::err_of(
            ErrorKind::Arity,
            format_args!(
                "wrong number of arguments for '{}' command",
                cmd.to_ascii_lowercase()
            ),
        )
    }

    /// `ERR syntax error`.
    pub fn syntax() -> Reply {
        Reply::error(ErrorKind::Syntax, "ERR syntax error")
    }

    /// The `WRONGTYPE` error.
    pub fn wrong_type() -> Reply {
        Reply::error(
            ErrorKind::WrongType,
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        )
    }

    /// `ERR value is not an integer or out of range`.
    pub fn not_integer() -> Reply {
        Reply::error(
            ErrorKind::Value,
            "ERR value is not an integer or out of range",
        )
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

#[cfg(test)]
mod tests {
    use super::Float;

    #[test]
    fn doubles_read_as_redis_7_0_writes_them() {
        for (x, want) in [
            (0.1, "0.10000000000000001"),
            (1.0, "1"),
            (2.5, "2.5"),
            (-0.0, "-0"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (1e-5, "1.0000000000000001e-05"),
            (1e16, "10000000000000000"),
            (0.0001, "0.0001"),
            (-3.25, "-3.25"),
            (1e300, "1.0000000000000001e+300"),
        ] {
            assert_eq!(Float(x).text(), want, "{x}");
        }
    }
}
