//! Decoding client requests: RESP multibulk (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) and inline
//! commands (`GET k\r\n`, as typed into telnet), the two forms a Redis server accepts.
//!
//! Like mini-redis's `Frame::check`, the decoder first tells "need more bytes" from "invalid"
//! by scanning headers, and builds arguments only from a complete command. The scan is
//! resumable: a command arriving in many segments is scanned once, not once per segment. Every
//! bound is checked on the header, before a single byte of what it announces is awaited.
//!
//! Arguments are slices of one fresh copy of the command's bytes, never of the read buffer:
//! a value kept by the store then holds on to its own command, not to a whole read buffer.
//!
//! It does not decode replies or any RESP3 type: clients send only these two forms, in either
//! protocol version.

use bytes::{Buf, Bytes, BytesMut};
use std::fmt;

/// Longest inline command or `*`/`$` header line (Redis's `PROTO_INLINE_MAX_SIZE`).
pub const MAX_LINE: usize = 64 * 1024;

/// Why a request could not be decoded. The connection is unusable afterwards (the position of
/// the next command is unknown), so the server replies `ERR Protocol error: <this>` and closes
/// it. Nothing of the bad command was executed; commands before it were.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A `*` count that is not an integer or exceeds the array limit.
    #[error("invalid multibulk length")]
    InvalidMultibulkLength,
    /// A `$` length that is not an integer, is negative, or exceeds the bulk limit.
    #[error("invalid bulk length")]
    InvalidBulkLength,
    /// No line end within [`MAX_LINE`] bytes of a `*` header.
    #[error("too big mbulk count string")]
    TooBigMultibulkCount,
    /// No line end within [`MAX_LINE`] bytes of a `$` header.
    #[error("too big bulk count string")]
    TooBigBulkCount,
    /// An argument of a multibulk command does not start with `$`.
    #[error("expected '$', got '{}'", Printable(*.0))]
    ExpectedDollar(u8),
    /// Bulk data not followed by `\r\n`.
    #[error("expected '\\r\\n' after bulk data")]
    MissingCrlf,
    /// No line end within [`MAX_LINE`] bytes of an inline command.
    #[error("too big inline request")]
    TooBigInline,
    /// An inline command with an unterminated quote.
    #[error("unbalanced quotes in request")]
    UnbalancedQuotes,
}

/// Displays a byte as Redis's `%c` would, but escaped when it is not printable ASCII, so the
/// error reply stays one valid line.
struct Printable(u8);

impl fmt::Display for Printable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_ascii_graphic() || self.0 == b' ' {
            write!(f, "{}", self.0 as char)
        } else {
            write!(f, "\\x{:02x}", self.0)
        }
    }
}

/// An incremental request decoder, one per connection.
#[derive(Debug)]
pub struct Decoder {
    max_bulk_len: usize,
    max_array_len: usize,
    /// The multibulk command being scanned, if its header has been consumed.
    pending: Option<Pending>,
    /// Argument ranges found so far, relative to the start of the buffer (reused).
    ranges: Vec<(usize, usize)>,
}

/// Progress through a multibulk command whose `*n` header has been consumed.
#[derive(Debug, Clone, Copy)]
struct Pending {
    /// Arguments announced.
    argc: usize,
    /// Offset in the buffer of the next `$` header.
    pos: usize,
}

impl Decoder {
    /// A decoder enforcing these bounds on argument length and count.
    pub fn new(max_bulk_len: usize, max_array_len: usize) -> Decoder {
        Decoder {
            max_bulk_len,
            max_array_len,
            pending: None,
            ranges: Vec::new(),
        }
    }

    /// Changes the bounds; takes effect from the next header (Redis tightens them for clients
    /// that have not authenticated yet).
    pub fn set_limits(&mut self, max_bulk_len: usize, max_array_len: usize) {
        self.max_bulk_len = max_bulk_len;
        self.max_array_len = max_array_len;
    }

    /// Decodes the next command from the front of `buf` into `args` (cleared first).
    ///
    /// `Ok(true)`: a command was decoded and its bytes removed from `buf`. `Ok(false)`: more
    /// bytes are needed (whatever was scanned is remembered, `buf` keeps the bytes). `Err`: the
    /// input is invalid; `buf` and the decoder are then in an unspecified state. Empty commands
    /// (`*0\r\n`, blank lines) are skipped, as Redis does.
    pub fn decode(
        &mut self,
        buf: &mut BytesMut,
        args: &mut Vec<Bytes>,
    ) -> Result<bool, ProtocolError> {
        args.clear();
        loop {
            let pending = match self.pending {
                Some(p) => p,
                None => {
                    let Some(&first) = buf.first() else {
                        return Ok(false);
                    };
                    if first != b'*' {
                        match inline(buf, args, self.max_bulk_len, self.max_array_len)? {
                            Some(true) => return Ok(true),
                            Some(false) => continue,
                            None => return Ok(false),
                        }
                    }
                    let Some(end) = find_cr(buf, 1) else {
                        return if buf.len() > MAX_LINE {
                            Err(ProtocolError::TooBigMultibulkCount)
                        } else {
                            Ok(false)
                        };
                    };
                    let argc = parse_len(&buf[1..end])
                        .filter(|&n| n <= self.max_array_len as i64 && buf[end + 1] == b'\n')
                        .ok_or(ProtocolError::InvalidMultibulkLength)?;
                    buf.advance(end + 2);
                    if argc <= 0 {
                        continue;
                    }
                    self.ranges.clear();
                    let p = Pending {
                        argc: argc as usize,
                        pos: 0,
                    };
                    self.pending = Some(p);
                    p
                }
            };
            let pos = self.scan_bulks(buf, pending)?;
            let Some(pos) = pos else {
                return Ok(false);
            };
            let frame = Bytes::copy_from_slice(&buf[..pos]);
            buf.advance(pos);
            args.extend(self.ranges.iter().map(|&(s, e)| frame.slice(s..e)));
            self.pending = None;
            return Ok(true);
        }
    }

    /// Scans `$len\r\n<data>\r\n` arguments from `p.pos`; returns the command's total length
    /// once all `p.argc` are present.
    fn scan_bulks(&mut self, buf: &[u8], mut p: Pending) -> Result<Option<usize>, ProtocolError> {
        while self.ranges.len() < p.argc {
            let rest = &buf[p.pos..];
            let Some(&first) = rest.first() else {
                break;
            };
            if first != b'$' {
                return Err(ProtocolError::ExpectedDollar(first));
            }
            let Some(end) = find_cr(rest, 1) else {
                if rest.len() > MAX_LINE {
                    return Err(ProtocolError::TooBigBulkCount);
                }
                break;
            };
            let len = parse_len(&rest[1..end])
                .filter(|&n| n >= 0 && n <= self.max_bulk_len as i64 && rest[end + 1] == b'\n')
                .ok_or(ProtocolError::InvalidBulkLength)? as usize;
            let start = p.pos + end + 2;
            let stop = start + len;
            if buf.len() < stop + 2 {
                break;
            }
            if &buf[stop..stop + 2] != b"\r\n" {
                return Err(ProtocolError::MissingCrlf);
            }
            self.ranges.push((start, stop));
            p.pos = stop + 2;
        }
        self.pending = Some(p);
        Ok((self.ranges.len() == p.argc).then_some(p.pos))
    }
}

/// Decodes one inline command line. `Some(true)`: `args` holds it; `Some(false)`: a blank line
/// was consumed; `None`: the line is not complete yet. The multibulk bounds apply too.
fn inline(
    buf: &mut BytesMut,
    args: &mut Vec<Bytes>,
    max_bulk_len: usize,
    max_array_len: usize,
) -> Result<Option<bool>, ProtocolError> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        return if buf.len() > MAX_LINE {
            Err(ProtocolError::TooBigInline)
        } else {
            Ok(None)
        };
    };
    if nl > MAX_LINE {
        return Err(ProtocolError::TooBigInline);
    }
    let line = &buf[..nl];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    split_args(line, args)?;
    if args.len() > max_array_len {
        return Err(ProtocolError::InvalidMultibulkLength);
    }
    if args.iter().any(|a| a.len() > max_bulk_len) {
        return Err(ProtocolError::InvalidBulkLength);
    }
    buf.advance(nl + 1);
    Ok(Some(!args.is_empty()))
}

/// Finds the first `\r` at or after `from` that has a byte after it; that byte must be `\n`
/// (checked by the caller, which knows which error to give). Like Redis, the header ends at the
/// first `\r`.
fn find_cr(buf: &[u8], from: usize) -> Option<usize> {
    let at = buf.get(from..)?.iter().position(|&b| b == b'\r')?;
    let i = from + at;
    (i + 1 < buf.len()).then_some(i)
}

/// Parses a header's number as Redis's `string2ll` does: optional `-`, decimal digits, no
/// leading zeros, no `+`, within `i64`.
fn parse_len(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.split_first()? {
        (b'-', rest) => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 19 || (digits[0] == b'0' && s.len() > 1) {
        return None;
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add((d - b'0') as i64)?;
    }
    Some(if neg { -n } else { n })
}

/// Splits an inline command into arguments with Redis's `sdssplitargs` rules: whitespace
/// separates; `"..."` understands `\n \r \t \b \a \\ \" \xHH`; `'...'` understands `\'`; a
/// closing quote must be followed by whitespace or the end.
pub fn split_args(line: &[u8], args: &mut Vec<Bytes>) -> Result<(), ProtocolError> {
    args.clear();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && is_space(line[i]) {
            i += 1;
        }
        if i >= n {
            return Ok(());
        }
        let mut cur = Vec::new();
        let (mut in_dq, mut in_sq) = (false, false);
        loop {
            if in_dq {
                let Some(&c) = line.get(i) else {
                    return Err(ProtocolError::UnbalancedQuotes);
                };
                if c == b'\\'
                    && line.get(i + 1) == Some(&b'x')
                    && i + 3 < n
                    && line[i + 2].is_ascii_hexdigit()
                    && line[i + 3].is_ascii_hexdigit()
                {
                    cur.push(hex(line[i + 2]) * 16 + hex(line[i + 3]));
                    i += 3;
                } else if c == b'\\' && i + 1 < n {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    if i + 1 < n && !is_space(line[i + 1]) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else if in_sq {
                let Some(&c) = line.get(i) else {
                    return Err(ProtocolError::UnbalancedQuotes);
                };
                if c == b'\\' && line.get(i + 1) == Some(&b'\'') {
                    cur.push(b'\'');
                    i += 1;
                } else if c == b'\'' {
                    if i + 1 < n && !is_space(line[i + 1]) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else {
                match line.get(i) {
                    None => break,
                    Some(&c) if is_space(c) => break,
                    Some(b'"') => in_dq = true,
                    Some(b'\'') => in_sq = true,
                    Some(&c) => cur.push(c),
                }
            }
            i += 1;
        }
        args.push(Bytes::from(cur));
    }
}

/// C's `isspace`.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn hex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    }
}

#[cfg(test)]
mod tests;
