//! The gossip wire format: versioned, length-prefixed MessagePack frames.
//!
//! A frame is `len: u32 (big endian) | version: u8 | shard: u16 (big endian) | body`, where
//! `len` counts everything after itself, `shard` names the shard of the region's key space the
//! message belongs to (shard `i` of one region talks only to shard `i` of another: each is an
//! independent replica, see [`crate::shard`]), and the body is one [`Message`] encoded with
//! `rmp-serde` (structs as arrays, byte strings as MessagePack `bin`). The shard sits in the
//! header, not the body, so a node routes a frame to its shard ([`frame_shard`]) without
//! decoding it, and the shard that built it never copies it to add one.
//!
//! [`frame_len`] tells "need more bytes" from "invalid" before anything is parsed, so a stream
//! reader can cut frames without trusting them; [`decode`] parses a whole frame or rejects it
//! whole, so a malformed frame never applies half a batch.

use crate::crdt::{KeyState, Reg};
use crate::hlc::Hlc;
use crate::stamp::RegionId;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The only version this code speaks (2: the shard id joined the header).
pub const VERSION: u8 = 2;

/// Bytes before the body: length, version, shard.
const HEADER: usize = 7;

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

/// What the last part of a catch-up answer says about the sender when it built the answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    /// The sender's watermarks.
    pub wm: Watermarks,
    /// The greatest stamp of the requester's own writes that the sender has seen (in its
    /// store or held back for clock skew): a requester that restarted from less than
    /// everything issues no stamp at or below it, so it never reuses a stamp it issued before
    /// the loss that the sender still holds.
    pub yours: Hlc,
    /// The watermarks of the newest report of the requester's that the sender holds (from
    /// before the requester's restart, if it restarted): a restarted requester whose state is
    /// behind them may hold keys the sender has collected since (see
    /// [`Message::CensusPart`]).
    pub your_report: Option<Watermarks>,
    /// Set when the sender was restoring from a state that may hold keys every other region
    /// has since collected (its census was not done) when it took the answer's snapshot: a
    /// restoring requester that took keys from it checks them by census too (see
    /// [`Message::CensusPart`]), or a logout undone by the sender's rollback would live on.
    #[serde(default)]
    pub unsettled: bool,
}

/// Everything regions say to each other.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// The sender's own writes with stamps in `(from, to]` (all of them when every push since
    /// `from` arrived), coalesced per key. `report` rides on the periodic push, with the latest
    /// reports the sender holds of other regions (`relayed`), so that a region cut off from
    /// one peer still hears of it through the others.
    Push {
        /// The sender's `to` of its previous push.
        from: Hlc,
        /// The sender's clock at this push.
        to: Hlc,
        /// Key deltas.
        entries: Vec<Entry>,
        /// The sender's progress report, made at `to`.
        report: Option<Report>,
        /// Reports of other regions the sender holds (newest of each), for garbage collection
        /// and liveness at regions that cannot hear those regions directly.
        relayed: Vec<(RegionId, Report)>,
        /// Set while the sender is restoring (it restarted, perhaps from less than everything
        /// it had issued), to an id of that restart: its pushes carry its new writes but it
        /// cannot vouch for the writes it lost, so the receiver must not advance its watermark
        /// for the sender past them, nor ask the sender for them (it does not have them), nor
        /// trust what the sender reported before the restart.
        restoring: Option<u64>,
    },
    /// The receiver holds every write of ours up to `upto` (answer to a push, and a periodic
    /// progress note).
    Ack {
        /// The sender's watermark for the receiver's writes.
        upto: Hlc,
        /// A run of the receiver's pushes that arrived without a gap between them, `(from,
        /// to]`, although not contiguous with `upto` (one went missing, or the receiver is
        /// restoring): the sender holds those writes too (`WAIT` counts them).
        run: Option<(Hlc, Hlc)>,
        /// The sender's watermarks for every origin: a region whose own watermark for an
        /// origin stays behind these for long fetches that origin's writes through the sender
        /// (progress, not connection, decides routing).
        wm: Watermarks,
    },
    /// "Send me what I miss": every current winner newer than my watermarks.
    CatchUpRequest {
        /// Request id, echoed in the parts.
        id: u64,
        /// The requester's watermarks.
        wm: Watermarks,
        /// As in [`Message::Push`]: the requester's restart id while it is restoring.
        restoring: Option<u64>,
    },
    /// One part of the answer to a [`Message::CatchUpRequest`].
    CatchUpPart {
        /// The request id.
        id: u64,
        /// Part number, from 0.
        seq: u32,
        /// Key deltas.
        entries: Vec<Entry>,
        /// On the last part: the sender's state when it built the answer.
        done: Option<Done>,
    },
    /// "You were silent longer than the grace period": the receiver asks for a catch-up from
    /// nothing.
    Evicted,
    /// A restarted region whose persisted state is older than what it had reported lists the
    /// keys it holds (with their incarnation register), part by part: it may hold keys that
    /// every region had seen deleted and that the receiver has since collected.
    CensusPart {
        /// Census id, echoed in the answers.
        id: u64,
        /// Part number.
        seq: u32,
        /// Keys and their `cl` registers.
        keys: Vec<(Bytes, Reg<u64>)>,
    },
    /// The answer to one [`Message::CensusPart`]: those of its keys whose incarnation the
    /// sender held and has collected (it holds no such key, and its watermark covers the
    /// incarnation): dead everywhere.
    CensusDead {
        /// The census id.
        id: u64,
        /// The part answered.
        seq: u32,
        /// The dead keys, with the `cl` register they were listed with.
        dead: Vec<(Bytes, Reg<u64>)>,
    },
    /// A message `PUBLISH`ed in the sender's region, for the receiver's subscribers. Not
    /// state: never stored, acknowledged or caught up; a message a cut link drops is lost
    /// (`docs/DESIGN.md` §3, "Pub/sub"). Sent on the delta stream, so one region's messages
    /// arrive in the order it published them. Last in the enum: the other messages keep their
    /// encoding.
    Publish {
        /// The channel.
        channel: Bytes,
        /// The message.
        message: Bytes,
    },
}

/// One change of a replica's durable state, in the order it happened (see
/// [`crate::Ready::records`]). The node appends these to its log; replaying them over the
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
    /// The region started restoring: it holds every write of its own up to `floor` and gets
    /// the rest back from its peers (see [`crate::Replica::restoring`]). A restart before
    /// [`Record::Restored`] restores again from this floor, not from its clock.
    Restoring {
        /// Every write of this region with a stamp up to here is held.
        floor: Hlc,
    },
    /// Every peer has answered: the region holds again every write of its own that any peer
    /// held.
    Restored,
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
    /// A frame for another shard than the one decoding it.
    #[error("frame for shard {got}, expected shard {want}")]
    Shard {
        /// The shard the frame names.
        got: u16,
        /// The shard that received it.
        want: u16,
    },
}

/// The length of the first frame in `buf`: `Ok(None)` when more bytes are needed, `Err` when
/// the prefix can never be valid.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, WireError> {
    frame_len_max(buf, HARD_MAX_FRAME)
}

/// Like [`frame_len`] with a custom size limit.
#[allow(
    clippy::expect_used,
    reason = "the prefix is sliced to exactly 4 bytes"
)]
pub fn frame_len_max(buf: &[u8], max: usize) -> Result<Option<usize>, WireError> {
    let Some(prefix) = buf.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(prefix.try_into().expect("4 bytes")) as usize;
    if len < HEADER - 4 || len > max.min(HARD_MAX_FRAME) {
        return Err(WireError::BadLength(len));
    }
    Ok((buf.len() >= 4 + len).then_some(4 + len))
}

/// The shard a complete frame (as [`frame_len`] cut it) is for; `None` if it is too short to
/// say.
pub fn frame_shard(frame: &[u8]) -> Option<u16> {
    let b = frame.get(5..HEADER)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// Encodes one message of `shard` as a complete frame.
#[allow(
    clippy::expect_used,
    reason = "encoding plain data into a Vec cannot fail"
)]
pub fn encode(shard: u16, msg: &Message) -> Vec<u8> {
    let [hi, lo] = shard.to_be_bytes();
    let mut out = vec![0, 0, 0, 0, VERSION, hi, lo];
    rmp_serde::encode::write(&mut out, msg).expect("encoding to a Vec cannot fail");
    let len = (out.len() - 4) as u32;
    out[..4].copy_from_slice(&len.to_be_bytes());
    out
}

/// Encodes the entries of one catch-up part on their own, as they appear inside a
/// [`Message::CatchUpPart`]: [`encode_part`] wraps them in a frame without encoding them again,
/// so one answer's parts are encoded once whichever peers they go to.
#[allow(
    clippy::expect_used,
    reason = "encoding plain data into a Vec cannot fail"
)]
pub fn encode_entries(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    rmp_serde::encode::write(&mut out, entries).expect("encoding to a Vec cannot fail");
    out
}

/// The frame of `Message::CatchUpPart { id, seq, entries, done }` around entries already
/// encoded by [`encode_entries`]: byte for byte what [`encode`] gives for that message (the
/// tests check it), so the receiver decodes it as any other frame.
///
/// The part's fields before and after the entries are taken from encodings of the same message
/// with no entries (MessagePack writes a struct as an array of its fields in order, and an
/// empty array as one byte), so this depends on nothing but the field order.
pub fn encode_part(shard: u16, id: u64, seq: u32, entries: &[u8], done: Option<&Done>) -> Vec<u8> {
    // `[..][0x90][nil]` without `done`: the bytes before the entries are all but the last two.
    let bare = encode(
        shard,
        &Message::CatchUpPart {
            id,
            seq,
            entries: Vec::new(),
            done: None,
        },
    );
    let head = &bare[..bare.len() - 2];
    let tail = match done {
        None => vec![0xc0],
        Some(d) => {
            let with = encode(
                shard,
                &Message::CatchUpPart {
                    id,
                    seq,
                    entries: Vec::new(),
                    done: Some(d.clone()),
                },
            );
            with[head.len() + 1..].to_vec()
        }
    };
    let mut out = Vec::with_capacity(head.len() + entries.len() + tail.len());
    out.extend_from_slice(head);
    out.extend_from_slice(entries);
    out.extend_from_slice(&tail);
    let len = (out.len() - 4) as u32;
    out[..4].copy_from_slice(&len.to_be_bytes());
    out
}

/// Decodes exactly one complete frame, which must be for `shard`.
pub fn decode(shard: u16, frame: &[u8], max: usize) -> Result<Message, WireError> {
    let n = frame_len_max(frame, max)?.ok_or(WireError::BadLength(frame.len()))?;
    if n != frame.len() {
        return Err(WireError::Trailing(frame.len() - n));
    }
    let version = frame[4];
    if version != VERSION {
        return Err(WireError::Version(version));
    }
    let got = frame_shard(frame).ok_or(WireError::BadLength(frame.len()))?;
    if got != shard {
        return Err(WireError::Shard { got, want: shard });
    }
    let body = &frame[HEADER..];
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
    // A count adds its target, its epoch stamp and a 128-bit total to its register.
    let counts: usize = st
        .body
        .counts
        .iter()
        .map(|c| c.target.as_ref().map_or(1, |t| t.len() + 5) + 40)
        .sum();
    key.len() + fields + string + field_headers + counts + regs * 24 + 16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A part framed around entries encoded once is the same frame, byte for byte, as the
    /// message encoded whole, for ids and sequence numbers of every MessagePack width, with and
    /// without `done`.
    #[test]
    fn part_around_encoded_entries_is_the_plain_encoding() {
        use crate::crdt::Kind;
        use crate::stamp::Stamp;
        let entries: Vec<Entry> = (0..5u64)
            .map(|i| {
                let s = Stamp::new(Hlc::new(1_000 + i, 0), RegionId(2));
                let mut st = KeyState::incarnation(1, s);
                st.body.kind = Some(Reg::new(s, Kind::String));
                st.body.string = Some(Reg::new(s, Bytes::from(vec![b'v'; i as usize * 40])));
                (Bytes::from(format!("key:{i}")), st)
            })
            .collect();
        let done = Done {
            wm: vec![(RegionId(1), Hlc::new(5, 1)), (RegionId(2), Hlc::new(7, 0))],
            yours: Hlc::new(3, 0),
            your_report: Some(vec![(RegionId(1), Hlc::new(2, 0))]),
            unsettled: true,
        };
        for id in [0u64, 1, 127, 128, 144, 70_000, u64::MAX] {
            for seq in [0u32, 1, 144, 65_536] {
                for n in [0, 1, 5] {
                    for d in [None, Some(&done)] {
                        let whole = encode(
                            3,
                            &Message::CatchUpPart {
                                id,
                                seq,
                                entries: entries[..n].to_vec(),
                                done: d.cloned(),
                            },
                        );
                        let framed = encode_part(3, id, seq, &encode_entries(&entries[..n]), d);
                        assert_eq!(framed, whole, "id {id} seq {seq} entries {n}");
                    }
                }
            }
        }
    }

    #[test]
    fn need_more_vs_invalid() {
        assert_eq!(frame_len(&[0, 0]), Ok(None));
        assert_eq!(frame_len(&[0, 0, 0, 0]), Err(WireError::BadLength(0)));
        assert_eq!(frame_len(&[0, 0, 0, 2]), Err(WireError::BadLength(2)));
        assert_eq!(frame_len(&[0, 0, 0, 3, 2]), Ok(None));
        assert_eq!(
            frame_len(&[0xff, 0xff, 0xff, 0xff]),
            Err(WireError::BadLength(u32::MAX as usize))
        );
        let f = encode(7, &Message::Evicted);
        assert_eq!(frame_len(&f), Ok(Some(f.len())));
        assert_eq!(frame_shard(&f), Some(7));
        assert_eq!(decode(7, &f, 1024), Ok(Message::Evicted));
        assert_eq!(
            decode(6, &f, 1024),
            Err(WireError::Shard { got: 7, want: 6 })
        );
    }

    #[test]
    fn rejects_bad_version_and_garbage() {
        let mut f = encode(0, &Message::Evicted);
        f[4] = 9;
        assert_eq!(decode(0, &f, 1024), Err(WireError::Version(9)));
        let g = [0, 0, 0, 5, VERSION, 0, 0, 0xc1, 0xc1];
        assert!(matches!(decode(0, &g, 1024), Err(WireError::Malformed(_))));
    }
}
