//! A region in shards answers exactly as a region in one piece (`sessionmesh_core::shard`):
//! the same random command sequences, run on one replica and on 4 and 7 shards, get the same
//! replies, and `SCAN` walks every key of every shard.

// Test code: a failed unwrap is a failed test, and nothing here is reachable from outside.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use bytes::Bytes;
use proptest::prelude::*;
use sessionmesh_core::cmd::Command;
use sessionmesh_core::shard::{self, ShardSet};
use sessionmesh_core::{Config, Now, RegionId, Replica, Reply};
use std::collections::BTreeSet;

fn region(n: u16) -> Vec<Replica> {
    let ids = [RegionId(1), RegionId(2)];
    (0..n)
        .map(|i| {
            Replica::new(Config {
                shard: i,
                shards: n,
                ..Config::new(ids[0], &ids)
            })
        })
        .collect()
}

fn line(words: &[String]) -> Command {
    Command::parse(
        words
            .iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect(),
    )
    .unwrap()
}

/// Keys spread over shards, some sharing a hash tag (and so a shard).
const KEYS: [&str; 8] = ["a", "b", "c", "{u}:1", "{u}:2", "session:9", "x", "{u}"];

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(KEYS.to_vec()).prop_map(str::to_string)
}

fn keys(max: usize) -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(key(), 1..=max)
}

fn command() -> impl Strategy<Value = Vec<String>> {
    let v = prop::sample::select(vec!["1", "v", "22"]).prop_map(str::to_string);
    prop_oneof![
        (key(), v.clone()).prop_map(|(k, v)| vec!["SET".into(), k, v]),
        key().prop_map(|k| vec!["GET".into(), k]),
        (key(), v.clone()).prop_map(|(k, v)| vec!["HSET".into(), k, "f".into(), v]),
        key().prop_map(|k| vec!["HGETALL".into(), k]),
        keys(4).prop_map(|ks| [vec!["MGET".into()], ks].concat()),
        keys(3).prop_map(|ks| {
            let mut l = vec!["MSET".to_string()];
            for k in ks {
                l.push(k);
                l.push("m".into());
            }
            l
        }),
        // A key without its value: Redis's arity error, from one shard or from several (it
        // once read past the end of the line when the keys spanned shards).
        prop::collection::vec(key(), 2..=3).prop_map(|ks| {
            let mut l = vec!["MSET".to_string()];
            for k in ks {
                l.push(k);
                l.push("m".into());
            }
            l.pop();
            l
        }),
        keys(3).prop_map(|ks| [vec!["DEL".into()], ks].concat()),
        keys(3).prop_map(|ks| [vec!["UNLINK".into()], ks].concat()),
        keys(4).prop_map(|ks| [vec!["EXISTS".into()], ks].concat()),
        (key(), key()).prop_map(|(a, b)| vec!["RENAME".into(), a, b]),
        (key(), key()).prop_map(|(a, b)| vec!["LCS".into(), a, b, "IDX".into()]),
        key().prop_map(|k| vec!["PEXPIRE".into(), k, "50".into()]),
        key().prop_map(|k| vec!["PTTL".into(), k]),
        key().prop_map(|k| vec!["TYPE".into(), k]),
        Just(vec!["DBSIZE".into()]),
        Just(vec!["KEYS".into(), "*".into()]),
        Just(vec!["KEYS".into(), "{u}*".into()]),
        // Numbered databases and flushes: a command runs in the database drawn with it.
        (key(), prop::sample::select(vec!["0", "1", "2"])).prop_map(|(k, d)| vec![
            "MOVE".into(),
            k,
            d.into()
        ]),
        (key(), key(), prop::sample::select(vec!["0", "1", "2"])).prop_map(|(a, b, d)| vec![
            "COPY".into(),
            a,
            b,
            "DB".into(),
            d.into()
        ]),
        Just(vec!["FLUSHDB".into()]),
        Just(vec!["FLUSHALL".into()]),
    ]
}

#[test]
fn mset_with_a_key_missing_its_value_is_an_arity_error_across_shards() {
    let mut four = region(4);
    let words: Vec<String> = ["MSET", "a", "1", "b", "2", "session:9"]
        .map(String::from)
        .to_vec();
    let reply = shard::run(&mut four, &line(&words), Now::at(1_000));
    assert_eq!(reply, Reply::wrong_arity("mset"));
}

/// Every key a full `SCAN` walk of database `db` returns, and how many calls it took.
fn scan_all(r: &mut Vec<Replica>, db: u8, now: Now) -> (BTreeSet<Bytes>, usize) {
    let mut cursor = "0".to_string();
    let mut seen = BTreeSet::new();
    for calls in 1..10_000 {
        let reply = shard::run(
            r,
            &line(&["SCAN".into(), cursor.clone(), "COUNT".into(), "2".into()]).in_db(db),
            now,
        );
        let Reply::Array(parts) = reply else {
            panic!("SCAN answered {reply:?}");
        };
        let (Reply::Bulk(next), Reply::Array(keys)) = (&parts[0], &parts[1]) else {
            panic!("SCAN answered {parts:?}");
        };
        for k in keys {
            let Reply::Bulk(k) = k else { panic!() };
            seen.insert(k.clone());
        }
        cursor = String::from_utf8(next.to_vec()).unwrap();
        if cursor == "0" {
            return (seen, calls);
        }
    }
    panic!("SCAN never finished");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn shards_answer_as_one_replica(cmds in prop::collection::vec((0u8..3, command()), 1..40)) {
        let mut one = region(1);
        let mut four = region(4);
        let mut seven = region(7);
        for (i, (db, words)) in cmds.iter().enumerate() {
            let now = Now::at(1_000 + 10 * i as u64);
            let c = line(words).in_db(*db);
            let want = shard::run(&mut one, &c, now);
            prop_assert_eq!(&shard::run(&mut four, &c, now), &want, "4 shards: {:?}", words);
            prop_assert_eq!(&shard::run(&mut seven, &c, now), &want, "7 shards: {:?}", words);
        }
        let now = Now::at(1_000 + 10 * cmds.len() as u64);
        for db in 0..3u8 {
        let keys = |r: &mut Vec<Replica>| match shard::run(r, &line(&["KEYS".into(), "*".into()]).in_db(db), now) {
            Reply::Array(k) => k
                .into_iter()
                .map(|k| match k { Reply::Bulk(b) => b, _ => panic!() })
                .collect::<BTreeSet<_>>(),
            other => panic!("{other:?}"),
        };
        let all = keys(&mut one);
        for r in [&mut one, &mut four, &mut seven] {
            let (seen, _) = scan_all(r, db, now);
            prop_assert_eq!(&seen, &all);
            // A COUNT larger than the key space returns it all in one call.
            let reply = shard::run(r, &line(&["SCAN".into(), "0".into(), "COUNT".into(), "1000".into()]).in_db(db), now);
            let Reply::Array(parts) = reply else { panic!("{reply:?}") };
            prop_assert_eq!(&parts[0], &Reply::bulk("0"), "one call");
            let Reply::Array(found) = &parts[1] else { panic!("{parts:?}") };
            let found: BTreeSet<Bytes> = found
                .iter()
                .map(|k| match k { Reply::Bulk(b) => b.clone(), _ => panic!() })
                .collect();
            prop_assert_eq!(&found, &all);
        }
        }
    }
}

#[test]
fn a_command_touches_its_keys_shards() {
    let n = 4;
    let t = |words: &[&str]| {
        let c = line(&words.iter().map(|w| w.to_string()).collect::<Vec<_>>());
        shard::touches(&c, n)
    };
    let one = |k: &str| {
        let mut s = ShardSet::default();
        s.insert(shard::shard_of_key(k.as_bytes(), n));
        s
    };
    assert_eq!(t(&["GET", "{u}:1"]), one("u"));
    assert_eq!(t(&["MGET", "{u}:1", "{u}:2", "u"]), one("u"));
    assert_eq!(t(&["DBSIZE"]), ShardSet::all(n));
    assert_eq!(t(&["KEYS", "*"]), ShardSet::all(n));
    // SCAN touches the shard its cursor is in, and those after it.
    let mut last_two = ShardSet::default();
    last_two.insert(2);
    last_two.insert(3);
    assert_eq!(t(&["SCAN", &(2u64 << 56).to_string()]), last_two);
    assert!(t(&["PING"]).is_empty());
    let mut both = one("a");
    both.union(one("b"));
    assert_eq!(t(&["MSET", "a", "1", "b", "2"]), both);
}

/// A SCAN cursor never names a shard past the last: a made-up one ends the walk.
#[test]
fn a_cursor_past_the_last_shard_ends_the_walk() {
    let mut r = region(4);
    let reply = shard::run(
        &mut r,
        &line(&["SCAN".into(), (9u64 << 56).to_string()]),
        Now::at(1),
    );
    assert_eq!(
        reply,
        Reply::Array(vec![Reply::bulk("0"), Reply::Array(Vec::new())])
    );
}

#[test]
fn direct_names_the_one_shard_of_single_shard_commands() {
    let n = 4;
    let d = |words: &[&str]| {
        let c = line(&words.iter().map(|w| w.to_string()).collect::<Vec<_>>());
        shard::direct(&c, n)
    };
    let u = Some(shard::shard_of_key(b"u", n));
    assert_eq!(d(&["GET", "{u}:1"]), u);
    assert_eq!(d(&["MSET", "{u}:1", "1", "{u}:2", "2"]), u);
    assert_eq!(d(&["SCAN", "0"]), None);
    assert_eq!(d(&["DBSIZE"]), None);
    assert_eq!(d(&["PING"]), None);
    let spread = KEYS
        .iter()
        .map(|k| shard::shard_of_key(k.as_bytes(), n))
        .collect::<BTreeSet<_>>();
    assert!(spread.len() > 1, "the test keys span shards");
    assert_eq!(d(&["MGET", "a", "b", "c", "x", "session:9"]), None);
    let c = line(&["GET".into(), "a".into()]);
    assert_eq!(shard::direct(&c, 1), Some(0));
    let mut set = ShardSet::default();
    for i in [0, 63, 64, 200, 255] {
        set.insert(i);
    }
    assert_eq!(set.iter().collect::<Vec<_>>(), [0, 63, 64, 200, 255]);
    assert_eq!(set.len(), 5);
}
