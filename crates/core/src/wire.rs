//! The gossip wire format: versioned, length-prefixed MessagePack frames.
//!
//! A frame is `len: u32 (big endian) | version: u8 | body`, where `len` counts the version byte
//! and the body, and the body is one [`Message`] encoded with `rmp-serde` (structs as arrays,
//! byte strings as MessagePack `bin`).
//!
//! [`frame_len`] tells "need more bytes" from "invalid" before anything is parsed, so a stream
//! reader can cut frames without trusting them; [`decode`] parses a whole frame or rejects it
//! whole, so a malformed frame never applies half a batch.

use crate::crdt::KeyState;
use crate::hlc::Hlc;
use crate::stamp::RegionId;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The only version this code speaks.
pub const VERSION: u8 = 1;

/// Frames larger than this are refused outright, whatever the configured limit.
pub const HARD_MAX_FRAME: usize = 64 * 1024 * 1024;

/// A region's watermarks: for each origin, the greatest HLC up to which it holds every write.
pub type Watermarks = Vec<(RegionId, Hlc)>;

/// One key's delta.
pub type Entry = (Bytes, KeyState);

/// What a region tells others about its progress, for garbage collection and `WAIT`.
///
/// Promise: every write the sender made up to `hlc` has stamp `<= hlc`, every later one `> hlc`,
/// and `wm` were its watermarks at that moment (its own entry is `hlc`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The sender's clock when it made the report.
    pub hlc: Hlc,
    /// The sender's watermarks at that moment.
    pub wm: Watermarks,
}

/// Everything regions say to each other.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// The sender's own writes with stamps in `(from, to]` (all of them when every push since
    /// `from` arrived), coalesced per key. `report` rides on the periodic push.
    Push {
        /// The sender's `to` of its previous push.
        from: Hlc,
        /// The sender's clock at this push.
        to: Hlc,
        /// Key deltas.
        entries: Vec<Entry>,
        /// The sender's progress report, made at `to`.
        report: Option<Report>,
    },
    /// The receiver now holds every write of ours up to this HLC (answer to a push).
    Ack {
        /// The receiver's watermark for us.
        upto: Hlc,
    },
    /// "Send me what I miss": every current winner newer than my watermarks.
    CatchUpRequest {
        /// Request id, echoed in the parts.
        id: u64,
        /// The requester's watermarks.
        wm: Watermarks,
    },
    /// One part of the answer to a [`Message::CatchUpRequest`].
    CatchUpPart {
        /// The request id.
        id: u64,
        /// Part number, from 0.
        seq: u32,
        /// Key deltas.
        entries: Vec<Entry>,
        /// On the last part: the sender's watermarks when it built the answer.
        done: Option<Watermarks>,
    },
    /// "You were silent longer than the grace period": the receiver asks for a catch-up from
    /// nothing.
    Evicted,
}

/// One change of a replica's durable state, in the order it happened (see
/// [`crate::Replica::take_records`]). The node appends these to its log; replaying them over the
/// last snapshot with [`crate::Replica::recover`] gives back the state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// A delta merged into a key (a local write, or what was new in a remote delta).
    Apply {
        /// The key.
        key: Bytes,
        /// The registers merged.
        delta: KeyState,
    },
    /// A key removed by garbage collection or resynchronisation.
    Remove {
        /// The key.
        key: Bytes,
    },
    /// The watermark of `origin` advanced to `hlc`.
    Watermark {
        /// The origin region.
        origin: RegionId,
        /// The new watermark.
        hlc: Hlc,
    },
    /// The clock moved to `hlc` without any other record saying so (a write command that
    /// changed nothing, or a peer telling us it holds stamps of ours we had lost).
    Clock {
        /// The clock's value.
        hlc: Hlc,
    },
    /// Our writes up to `to` were pushed.
    Pushed {
        /// The push's `to`.
        to: Hlc,
    },
    /// A delta was held back because of clock skew.
    Hold {
        /// The key.
        key: Bytes,
        /// The held delta.
        delta: KeyState,
        /// The peer it came from.
        peer: RegionId,
        /// Whether its `cl` register was news when held.
        cl_new: bool,
    },
    /// A held delta was released (and applied, which an `Apply` record follows).
    Release {
        /// The key.
        key: Bytes,
    },
}

/// Why a frame was refused. The receiver's state is unchanged.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    /// The length prefix is zero or larger than allowed.
    #[error("frame length {0} out of bounds")]
    BadLength(usize),
    /// The version byte is one we do not speak.
    #[error("unsupported wire version {0}")]
    Version(u8),
    /// The body is not a valid message.
    #[error("malformed frame body: {0}")]
    Malformed(String),
    /// A frame with bytes after the message.
    #[error("{0} trailing bytes after message")]
    Trailing(usize),
}

/// The length of the first frame in `buf`: `Ok(None)` when more bytes are needed, `Err` when
/// the prefix can never be valid.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, WireError> {
    frame_len_max(buf, HARD_MAX_FRAME)
}

/// Like [`frame_len`] with a custom size limit.
pub fn frame_len_max(buf: &[u8], max: usize) -> Result<Option<usize>, WireError> {
    let Some(prefix) = buf.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(prefix.try_into().expect("4 bytes")) as usize;
    if len == 0 || len > max.min(HARD_MAX_FRAME) {
        return Err(WireError::BadLength(len));
    }
    Ok((buf.len() >= 4 + len).then_some(4 + len))
}

/// Encodes one message as a complete frame.
pub fn encode(msg: &Message) -> Vec<u8> {
    let mut out = vec![0, 0, 0, 0, VERSION];
    rmp_serde::encode::write(&mut out, msg).expect("encoding to a Vec cannot fail");
    let len = (out.len() - 4) as u32;
    out[..4].copy_from_slice(&len.to_be_bytes());
    out
}

/// Decodes exactly one complete frame.
pub fn decode(frame: &[u8], max: usize) -> Result<Message, WireError> {
    let n = frame_len_max(frame, max)?.ok_or(WireError::BadLength(frame.len()))?;
    if n != frame.len() {
        return Err(WireError::Trailing(frame.len() - n));
    }
    let version = frame[4];
    if version != VERSION {
        return Err(WireError::Version(version));
    }
    let body = &frame[5..];
    let mut de = rmp_serde::Deserializer::new(body);
    let msg = Message::deserialize(&mut de).map_err(|e| WireError::Malformed(e.to_string()))?;
    let rest = de.get_ref().len();
    if rest != 0 {
        return Err(WireError::Trailing(rest));
    }
    Ok(msg)
}

/// A cheap upper estimate of an entry's encoded size, used to cut frames.
pub fn approx_size(key: &[u8], st: &KeyState) -> usize {
    let regs = st.register_count() as usize + 1;
    let fields: usize = st
        .body
        .fields
        .iter_unordered()
        .map(|(f, r)| f.len() + r.value.as_ref().map_or(0, |v| v.len()))
        .sum();
    let string = st.body.string.as_ref().map_or(0, |r| r.value.len());
    // A register is at most: array headers (2), HLC (9), region (3), value header (5).
    let field_headers = st.body.fields.len() * 5;
    key.len() + fields + string + field_headers + regs * 24 + 16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn need_more_vs_invalid() {
        assert_eq!(frame_len(&[0, 0]), Ok(None));
        assert_eq!(frame_len(&[0, 0, 0, 0]), Err(WireError::BadLength(0)));
        assert_eq!(frame_len(&[0, 0, 0, 3, 1]), Ok(None));
        assert_eq!(
            frame_len(&[0xff, 0xff, 0xff, 0xff]),
            Err(WireError::BadLength(u32::MAX as usize))
        );
        let f = encode(&Message::Evicted);
        assert_eq!(frame_len(&f), Ok(Some(f.len())));
        assert_eq!(decode(&f, 1024), Ok(Message::Evicted));
    }

    #[test]
    fn rejects_bad_version_and_garbage() {
        let mut f = encode(&Message::Evicted);
        f[4] = 9;
        assert_eq!(decode(&f, 1024), Err(WireError::Version(9)));
        let g = [0, 0, 0, 3, VERSION, 0xc1, 0xc1];
        assert!(matches!(decode(&g, 1024), Err(WireError::Malformed(_))));
    }
}
