//! What `CONFIG SET` may change while the server runs, and `CONFIG SET`/`RESETSTAT` themselves.
//!
//! A documented subset: `busy-reply-threshold` (and its old name `lua-time-limit`), which the
//! scripts read (docs/DESIGN.md, "Scripts"), and `notify-keyspace-events`, kept and reported
//! in Redis's normalised form for the keyspace-notification issue to act on. Every other
//! parameter is refused with Redis's error for an unknown one: the bounds of `[redis]` are
//! read on every command from the server's options and change with a restart.

use super::*;
use std::sync::atomic::AtomicU32;

/// The settings `CONFIG SET` changes, shared by every connection of a server.
#[derive(Debug)]
pub(super) struct Settings {
    busy_reply_threshold_ms: AtomicU64,
    notify_keyspace_events: AtomicU32,
}

impl Settings {
    pub(super) fn new(limits: &Limits) -> Settings {
        Settings {
            busy_reply_threshold_ms: AtomicU64::new(limits.busy_reply_threshold_ms),
            notify_keyspace_events: AtomicU32::new(0),
        }
    }

    /// `busy-reply-threshold`, in milliseconds.
    pub(super) fn busy_reply_threshold_ms(&self) -> u64 {
        self.busy_reply_threshold_ms.load(Ordering::Relaxed)
    }

    /// `notify-keyspace-events` as class bits ([`sessionmesh_core::notify::class`]).
    pub(super) fn notify_keyspace_classes(&self) -> u32 {
        self.notify_keyspace_events.load(Ordering::Relaxed)
    }

    /// `notify-keyspace-events` as Redis prints it.
    pub(super) fn notify_keyspace_events(&self) -> String {
        events_string(self.notify_keyspace_events.load(Ordering::Relaxed))
    }

    /// `CONFIG SET name value [name value ...]`: all or nothing, as in Redis 7.
    pub(super) fn set(&self, args: &[Bytes]) -> Reply {
        if args.len() < 4 {
            return Reply::wrong_arity("config|set");
        }
        if !args.len().is_multiple_of(2) {
            return Reply::err_of(ErrorKind::Syntax, "syntax error");
        }
        let mut busy = None;
        let mut events = None;
        for pair in args[2..].chunks(2) {
            let name = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
            let failed = |why: &str| {
                Reply::err(format_args!(
                    "CONFIG SET failed (possibly related to argument '{name}') - {why}"
                ))
            };
            match name.as_str() {
                "busy-reply-threshold" | "lua-time-limit" => {
                    match sessionmesh_core::cmd::parse_i64(&pair[1]) {
                        Some(v) if v >= 0 => busy = Some(v as u64),
                        Some(_) => {
                            return failed(
                                "argument must be between 0 and 9223372036854775807 inclusive",
                            )
                        }
                        None => {
                            return failed("argument couldn't be parsed into an integer");
                        }
                    }
                }
                "notify-keyspace-events" => match events_flags(&pair[1]) {
                    Some(f) => events = Some(f),
                    None => return failed("Invalid event class character. Use 'Ag$lshzxeKEtmdn'."),
                },
                _ => {
                    return Reply::err(format_args!(
                        "Unknown option or number of arguments for CONFIG SET - '{}'",
                        String::from_utf8_lossy(&pair[0])
                    ))
                }
            }
        }
        if let Some(v) = busy {
            self.busy_reply_threshold_ms.store(v, Ordering::Relaxed);
        }
        if let Some(f) = events {
            self.notify_keyspace_events.store(f, Ordering::Relaxed);
        }
        Reply::OK
    }
}

// Redis's keyspace-event classes (`notify.c`), the core's ([`sessionmesh_core::notify`]).
use sessionmesh_core::notify::class::{
    EVICTED, EXPIRED, GENERIC, HASH, KEYEVENT, KEYSPACE, KEY_MISS, LIST, MODULE, NEW, SET, STREAM,
    STRING, ZSET,
};
const ALL: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// The classes of `s`, or `None` for a character Redis refuses.
fn events_flags(s: &[u8]) -> Option<u32> {
    let mut f = 0;
    for c in s {
        f |= match c {
            b'A' => ALL,
            b'g' => GENERIC,
            b'$' => STRING,
            b'l' => LIST,
            b's' => SET,
            b'h' => HASH,
            b'z' => ZSET,
            b'x' => EXPIRED,
            b'e' => EVICTED,
            b'K' => KEYSPACE,
            b'E' => KEYEVENT,
            b't' => STREAM,
            b'm' => KEY_MISS,
            b'd' => MODULE,
            b'n' => NEW,
            _ => return None,
        };
    }
    Some(f)
}

/// The classes as Redis prints them (`A` for all of its alias).
fn events_string(f: u32) -> String {
    let mut s = String::new();
    if f & ALL == ALL {
        s.push('A');
    } else {
        for (bit, c) in [
            (GENERIC, 'g'),
            (STRING, '$'),
            (LIST, 'l'),
            (SET, 's'),
            (HASH, 'h'),
            (ZSET, 'z'),
            (EXPIRED, 'x'),
            (EVICTED, 'e'),
            (STREAM, 't'),
            (MODULE, 'd'),
            (NEW, 'n'),
        ] {
            if f & bit != 0 {
                s.push(c);
            }
        }
    }
    for (bit, c) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
        if f & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// `TIME`: seconds and microseconds of the wall clock, as bulk strings.
pub(super) fn time() -> Reply {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Reply::Array(vec![
        Reply::bulk(d.as_secs().to_string()),
        Reply::bulk(d.subsec_micros().to_string()),
    ])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn event_classes_print_as_redis_prints_them() {
        for (set, shown) in [
            ("KEA", "AKE"),
            ("Ex", "xE"),
            ("gK", "gK"),
            ("", ""),
            ("mn", "nm"),
            ("AKEm", "AKEm"),
            ("$lshzxetdg", "A"),
        ] {
            let f = events_flags(set.as_bytes()).unwrap();
            assert_eq!(events_string(f), shown, "{set}");
        }
        assert!(events_flags(b"Q").is_none());
    }

    #[test]
    fn time_is_seconds_and_microseconds() {
        let Reply::Array(parts) = time() else {
            panic!("TIME is an array");
        };
        let n: Vec<u64> = parts
            .iter()
            .map(|p| match p {
                Reply::Bulk(b) => std::str::from_utf8(b).unwrap().parse().unwrap(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(n[0] > 1_700_000_000 && n[1] < 1_000_000, "{n:?}");
    }
}
