//! Numbered databases (`SELECT`): one key space per shard, the database in the key's name.
//!
//! Redis keeps a separate dictionary per database. Here every shard keeps one store, and a key
//! of database `d > 0` is stored under an *internal name* that carries `d`; database 0's keys
//! are stored under their own bytes, so the hot path (and every journal, snapshot and frame
//! written before databases existed) is unchanged. The encoding:
//!
//! | internal name                  | meaning                                   |
//! | ------------------------------ | ----------------------------------------- |
//! | first byte not `0xFF`          | database 0, the name itself                |
//! | `0xFF 0x00` + name             | database 0, a name that starts with `0xFF` |
//! | `0xFF d` + name, `1 ≤ d ≤ 254`  | database `d`                               |
//! | `0xFF 0xFF` + anything          | the store's own keys (flush markers), in no database |
//!
//! It is injective, so no two (database, name) pairs share a stored key, and no client can
//! name a system key. The price: a database-0 key whose name starts with byte `0xFF` stored by
//! a version before databases existed reads, after the upgrade, as a key of another database
//! (such names are not UTF-8 and no session middleware makes them; `docs/DESIGN.md` says so).
//!
//! A key's hash slot is that of its client-visible name ([`user_part`]), so a key keeps its
//! shard in every database (`MOVE` never crosses shards) and cluster-aware clients see
//! Redis's slots.
//!
//! Translation happens once, where a command enters ([`crate::cmd::Command::in_db`]): every
//! command handler, the replication protocol, the journal and the garbage collector see only
//! internal names. The commands that *return* key names (`KEYS`, `SCAN`; `RANDOMKEY` does not exist yet) turn
//! them back with [`split`], and those that count (`DBSIZE`) count per database.

use bytes::{BufMut, Bytes, BytesMut};

/// The first byte of every name that is not a plain database-0 name.
const ESCAPE: u8 = 0xFF;
/// The second byte of the store's own keys.
const SYSTEM: u8 = 0xFF;

/// The most databases a region may have (`databases` in `regions.toml`): indexes `0..=254`.
pub const MAX_DATABASES: u16 = 255;

/// Redis's default number of databases.
pub const DEFAULT_DATABASES: u16 = 16;

/// The stored name of `key` in database `db`. Database 0's names are shared, not copied,
/// unless they start with `0xFF`.
pub fn encode(db: u8, key: &Bytes) -> Bytes {
    if db == 0 && key.first() != Some(&ESCAPE) {
        return key.clone();
    }
    debug_assert!(db != SYSTEM, "database 255 does not exist");
    let mut b = BytesMut::with_capacity(key.len() + 2);
    b.put_u8(ESCAPE);
    b.put_u8(db);
    b.put_slice(key);
    b.freeze()
}

/// The database and client-visible name of a stored key; `None` for the store's own keys.
pub fn split(stored: &[u8]) -> Option<(u8, &[u8])> {
    match stored {
        [ESCAPE, SYSTEM, ..] => None,
        [ESCAPE, db, rest @ ..] => Some((*db, rest)),
        // A lone 0xFF can only have been stored before databases existed: database 0's.
        _ => Some((0, stored)),
    }
}

/// The database of a stored key (`None`: a system key).
pub fn db_of(stored: &[u8]) -> Option<u8> {
    match stored.first() {
        Some(&ESCAPE) => split(stored).map(|(d, _)| d),
        _ => Some(0),
    }
}

/// The client-visible name of a stored key (system keys: the whole stored name), which is
/// what its hash slot is computed from.
pub fn user_part(stored: &[u8]) -> &[u8] {
    match stored.first() {
        Some(&ESCAPE) => split(stored).map_or(stored, |(_, k)| k),
        _ => stored,
    }
}

/// The client-visible name of a stored key, as its own `Bytes` (shared when database 0's).
pub fn user_key(stored: &Bytes) -> Bytes {
    let k = user_part(stored);
    if k.len() == stored.len() {
        stored.clone()
    } else {
        stored.slice(stored.len() - k.len()..)
    }
}

/// The same client-visible name in database `db`.
pub fn moved(stored: &Bytes, db: u8) -> Bytes {
    encode(db, &user_key(stored))
}

/// The flush marker of database `db` ([`FLUSH_ALL`] for every database) in shard `shard` of a
/// region of `shards`: a system key whose incarnation stamp is that shard's latest flush (see
/// [`crate::store`]). Its name carries a hash tag chosen so that it hashes into that very
/// shard, like every key a shard holds: whatever attributes keys to shards by their slot (the
/// simulator's oracles, say) finds it where it is.
pub fn flush_marker(db: u8, shard: u16, shards: u16) -> Bytes {
    let shards = shards.max(1);
    let tag = (0u32..)
        .map(|i| i.to_string())
        .find(|t| {
            crate::slot::shard_of(
                crate::slot::crc16(t.as_bytes()) & (crate::slot::SLOTS - 1),
                shards,
            ) == shard % shards
        })
        .unwrap_or_default();
    let mut b = vec![ESCAPE, SYSTEM, b'F', db, b'{'];
    b.extend_from_slice(tag.as_bytes());
    b.push(b'}');
    Bytes::from(b)
}

/// The "database" of `FLUSHALL`'s marker.
pub const FLUSH_ALL: u8 = 0xFF;

/// Which database a flush marker flushes (`Some(FLUSH_ALL)` for all); `None` when `stored` is
/// not a flush marker.
pub fn flush_marker_db(stored: &[u8]) -> Option<u8> {
    match stored {
        [ESCAPE, SYSTEM, b'F', db, ..] => Some(*db),
        _ => None,
    }
}

/// Parses a database index argument as Redis does: not an integer → `Err(None)` (Redis's
/// "value is not an integer" error), outside `0..databases` → `Err(Some(()))` ("DB index is
/// out of range").
pub fn parse_index(arg: &[u8], databases: u16) -> Result<u8, Option<()>> {
    let n = crate::cmd::parse_i64(arg).ok_or(None)?;
    if n < 0 || n >= i64::from(databases.min(MAX_DATABASES)) {
        return Err(Some(()));
    }
    u8::try_from(n).map_err(|_| Some(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_never_collide() {
        let names: [&[u8]; 5] = [b"", b"a", b"\xff", b"\xff\x00x", b"\xff\xffF\x00"];
        let mut seen = std::collections::BTreeSet::new();
        for db in [0u8, 1, 2, 254] {
            for n in names {
                let k = Bytes::copy_from_slice(n);
                let s = encode(db, &k);
                assert_eq!(split(&s), Some((db, n)), "{db} {n:?}");
                assert_eq!(user_part(&s), n);
                assert_eq!(user_key(&s), k);
                assert!(flush_marker_db(&s).is_none());
                assert!(seen.insert(s), "two names share {db} {n:?}");
            }
        }
        assert_eq!(split(&flush_marker(3, 0, 1)), None);
        assert_eq!(
            flush_marker_db(&flush_marker(FLUSH_ALL, 2, 4)),
            Some(FLUSH_ALL)
        );
        // Each shard's marker hashes into that shard.
        for shards in [1u16, 4, 7, 16] {
            for s in 0..shards {
                let m = flush_marker(1, s, shards);
                assert_eq!(crate::shard::shard_of_key(&m, shards), s, "{shards} {s}");
            }
        }
        // Database 0's ordinary names are stored as they are.
        assert_eq!(encode(0, &Bytes::from_static(b"sess:1")), "sess:1");
        assert_eq!(moved(&encode(3, &Bytes::from_static(b"k")), 0), "k");
    }

    #[test]
    fn indexes_parse_as_redis() {
        assert_eq!(parse_index(b"0", 16), Ok(0));
        assert_eq!(parse_index(b"15", 16), Ok(15));
        assert_eq!(parse_index(b"16", 16), Err(Some(())));
        assert_eq!(parse_index(b"-1", 16), Err(Some(())));
        assert_eq!(parse_index(b"x", 16), Err(None));
        assert_eq!(parse_index(b"254", 255), Ok(254));
    }
}
