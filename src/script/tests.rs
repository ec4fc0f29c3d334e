//! The script layer without a node: digests, the cache, argument parsing, and a script run
//! against a stand-in for the shards.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use sessionmesh_core::cmd::CommandId;

fn cmd(args: &[&str]) -> Command {
    let args: Vec<Bytes> = args.iter().map(|a| Bytes::from(a.to_string())).collect();
    Command::new(CommandId::lookup(&args[0]).unwrap(), args).unwrap()
}

#[test]
fn digests_are_sha1_hex() {
    assert_eq!(sha1hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    assert_eq!(
        sha1hex(b"return 1"),
        "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"
    );
}

#[test]
fn the_cache_finds_a_body_by_its_digest_in_either_case() {
    let s = Scripts::default();
    let sha = s.load(&Bytes::from_static(b"return 1")).unwrap();
    assert!(
        s.load(&Bytes::from_static(b"if")).is_err(),
        "a script that does not compile"
    );
    assert_eq!(s.get(sha.as_bytes()).as_deref(), Some(&b"return 1"[..]));
    assert!(s.get(sha.to_uppercase().as_bytes()).is_some());
    assert!(s.get(b"abc").is_none());
    s.flush();
    assert!(s.is_empty());
}

#[test]
fn numkeys_is_checked_as_redis_checks_it() {
    let s = Scripts::default();
    let err = |args: &[&str]| match Call::parse(&cmd(args), &s) {
        Err(Reply::Error(e)) => e.text().to_string(),
        other => panic!("{args:?}: {other:?}"),
    };
    assert_eq!(
        err(&["eval", "return 1", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(&["eval", "return 1", "-1"]),
        "ERR Number of keys can't be negative"
    );
    assert_eq!(
        err(&["eval", "return 1", "2", "k"]),
        "ERR Number of keys can't be greater than number of args"
    );
    assert!(
        err(&["evalsha", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"]).starts_with("NOSCRIPT")
    );
    let c = cmd(&["eval", "return 1", "1", "k", "a", "b"]);
    let call = Call::parse(&c, &s).unwrap();
    assert_eq!((call.keys.len(), call.argv.len()), (1, 2));
    assert!(
        s.get(call.sha.as_bytes()).is_none(),
        "cached only once it compiled"
    );
    let mut run = |_: &Command| Some(Reply::Nil);
    assert_eq!(call.run(&s.start(1), &mut run), Reply::Int(1));
    assert!(s.get(call.sha.as_bytes()).is_some(), "EVAL caches its body");
}

#[test]
fn a_script_runs_its_commands_through_the_runner_it_is_given() {
    let s = Scripts::default();
    let body = "redis.call('set', KEYS[1], ARGV[1]) return {redis.call('get', KEYS[1]), 7, true}";
    let c = cmd(&["eval", body, "1", "k", "v"]);
    let call = Call::parse(&c, &s).unwrap();
    let mut seen = Vec::new();
    let mut run = |c: &Command| {
        seen.push(String::from_utf8_lossy(&c.args()[0]).to_string());
        Some(match c.id().name() {
            "set" => Reply::OK,
            _ => Reply::bulk("v"),
        })
    };
    let state = s.start(1);
    let r = call.run(&state, &mut run);
    assert_eq!(seen, ["set", "get"]);
    assert_eq!(
        r,
        Reply::Array(vec![Reply::bulk("v"), Reply::Int(7), Reply::Int(1)])
    );
    // A runner that refuses a key (it is on a shard not held) is Redis Cluster's error.
    let mut refuse = |_: &Command| None;
    match call.run(&state, &mut refuse) {
        Reply::Error(e) => assert!(
            e.text()
                .starts_with("ERR Script attempted to access a non local key"),
            "{}",
            e.text()
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn globals_do_not_leak_between_scripts() {
    let s = Scripts::default();
    let mut run = |_: &Command| Some(Reply::Nil);
    let set = cmd(&["eval", "x = 1 return 1", "0"]);
    let read = cmd(&["eval", "return x", "0"]);
    for c in [&set, &read] {
        match Call::parse(c, &s).unwrap().run(&s.start(1), &mut run) {
            Reply::Error(_) => {}
            other => panic!("{:?}: {other:?}", c.args()),
        }
    }
}

#[test]
fn a_long_loop_finishes() {
    let s = Scripts::default();
    let c = cmd(&[
        "eval",
        "local t = 0 for i = 1, 3e6 do t = t + 1 end return t",
        "0",
    ]);
    let call = Call::parse(&c, &s).unwrap();
    let state = s.start(1);
    let started = std::time::Instant::now();
    let mut run = |_: &Command| Some(Reply::Nil);
    assert_eq!(call.run(&state, &mut run), Reply::Int(3_000_000));
    assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
}
