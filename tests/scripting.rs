//! Scripting as users meet it: `EVAL`/`EVALSHA`/`SCRIPT` replies compared with a real
//! `redis-server` step by step (RESP2 and RESP3), the lock-release scripts of phpredis and
//! Laravel across three regions, a script's effects (not the script) replicating, the
//! declared-keys rule across shards, and scripts inside `MULTI`.
//!
//! The differential part needs `redis-server` on the PATH (`.ci/run` installs it and sets
//! `SESSIONMESH_REQUIRE_REDIS=1`); elsewhere it says loudly that it did not run.
//! `SESSIONMESH_DIFF_TRACE=1` prints every step with Redis's reply.

// Test code: a failed unwrap is a failed test, and nothing here is reachable from outside.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod common;

use common::cluster::{eventually, Cluster, DEADLINE};
use redis::aio::MultiplexedConnection;
use redis::Value;
use sessionmesh_harness::redis_server::{connect, send, RedisServer, Reply};

/// phpredis's session lock release (`redis.session.locking_enabled=1`), as it sends it.
const PHPREDIS_RELEASE: &str =
    "if redis.call(\"get\",KEYS[1]) == ARGV[1] then return redis.call(\"del\",KEYS[1]) else return 0 end";

/// Laravel's `Lock::release` script (`LuaScripts::releaseLock`).
const LARAVEL_RELEASE: &str = "if redis.call('get',KEYS[1]) == ARGV[1] then\n    return redis.call('del',KEYS[1])\nelse\n    return 0\nend";

/// Steps: each a command line. `$x` anywhere (bodies included) is the key `x` under the run's
/// prefix, so runs never share keys on our node; a step starting with `!` is one where Redis
/// answers with an error, checked too.
#[rustfmt::skip]
const STEPS: &[&[&str]] = &[
    // Conversions, Lua to RESP.
    &["EVAL", "return 1", "0"], &["EVAL", "return true", "0"], &["EVAL", "return false", "0"],
    &["EVAL", "return nil", "0"], &["EVAL", "return 3.7", "0"], &["EVAL", "return -3.7", "0"],
    &["EVAL", "return {1,2,{3,'x'},nil,4}", "0"], &["EVAL", "return {}", "0"],
    &["EVAL", "return {1,{2,{3}}}", "0"], &["EVAL", "return", "0"], &["EVAL", "return 1e20", "0"],
    &["EVAL", "return 2^53", "0"], &["!EVAL", "return 'a\nb'", "0"],
    &["EVAL", "return {ok='fine'}", "0"], &["!EVAL", "return {err='boom'}", "0"],
    &["EVAL", "return redis.status_reply('FINE')", "0"],
    &["!EVAL", "return redis.error_reply('My Error')", "0"],
    &["!EVAL", "return redis.error_reply('ERR x')", "0"],
    &["!EVAL", "return redis.status_reply(1)", "0"], &["!EVAL", "return redis.error_reply()", "0"],
    // KEYS and ARGV.
    &["EVAL", "return KEYS[1]..ARGV[1]..#KEYS..#ARGV", "1", "$k1", "a1", "a2"],
    &["EVAL", "return {KEYS[1],KEYS[2],ARGV[1]}", "2", "{t}$k1", "{t}$k2", "a1"],
    &["EVAL", "return #KEYS + #ARGV", "0"],
    // Argument errors.
    &["!EVAL", "return 1"], &["!EVAL", "return 1", "x"], &["!EVAL", "return 1", "-1"],
    &["!EVAL", "return 1", "2", "$a"], &["!EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "0"],
    &["!EVALSHA", "fff", "0"],
    // Commands from scripts, RESP to Lua and back.
    &["EVAL", "return redis.call('set',KEYS[1],'b')", "1", "$a"],
    &["EVAL", "return redis.call('get',KEYS[1])", "1", "$a"],
    &["EVAL", "return redis.call('get',KEYS[1])", "1", "$nokey"],
    &["EVAL", "return redis.call('set',KEYS[1],1.5)", "1", "$a"],
    &["EVAL", "return redis.call('get',KEYS[1])", "1", "$a"],
    &["EVAL", "return redis.call('set',KEYS[1],10)", "1", "$a"],
    &["EVAL", "return redis.call('hset',KEYS[1],'a','1','b','2')", "1", "$h"],
    &["EVAL", "return redis.call('hgetall',KEYS[1])", "1", "$h"],
    &["EVAL", "return redis.call('hmget',KEYS[1],'a','zz')", "1", "$h"],
    &["EVAL", "return redis.call('expire',KEYS[1],'100')", "1", "$h"],
    &["EVAL", "return redis.call('ttl',KEYS[1])", "1", "$h"],
    &["EVAL", "return redis.call('type',KEYS[1])", "1", "$h"],
    &["EVAL", "return redis.call('exists',KEYS[1],KEYS[2])", "2", "{t}$h", "{t}$a"],
    &["EVAL", "return redis.call('ping')", "0"], &["EVAL", "return redis.call('ping','x')", "0"],
    &["EVAL", "return redis.call('echo','x')", "0"],
    &["EVAL", "return redis.call('select','0')", "0"],
    &["!EVAL", "return redis.call(KEYS[1] and 'get' or 'get', KEYS[1], 'extra')", "1", "$a"],
    &["!EVAL", "return redis.call('hget',KEYS[1],'f')", "1", "$a"],
    &["!EVAL", "local x = redis.call('hget',KEYS[1],'f') return 1", "1", "$a"],
    &["!EVAL", "return redis.pcall('hget',KEYS[1],'f')", "1", "$a"],
    &["EVAL", "local ok, e = pcall(function() redis.call('hget',KEYS[1],'f') end) return e", "1", "$a"],
    &["EVAL", "local ok, e = pcall(function() redis.call('nosuch') end) return e", "0"],
    &["EVAL", "local ok, e = pcall(function() error({err='X y'}) end) return type(e)", "0"],
    &["EVAL", "local ok, e = pcall(function() local x = 1 + nil end) return e", "0"],
    &["EVAL", "local r = redis.pcall('hget',KEYS[1],'f') return r.err", "1", "$a"],
    // Errors raised from scripts, and where.
    &["!EVAL", "return redis.call('nosuch')", "0"], &["!EVAL", "return redis.call('get')", "0"],
    &["!EVAL", "return redis.call()", "0"], &["!EVAL", "return redis.call('get',{})", "0"],
    &["!EVAL", "return redis.call(1)", "0"],
    &["!EVAL", "return redis.call('eval','return 1','0')", "0"],
    &["!EVAL", "return redis.call('multi')", "0"],
    &["!EVAL", "return redis.call('wait','0','0')", "0"],
    &["!EVAL", "return 1+nil", "0"], &["!EVAL", "error('raw')", "0"],
    &["!EVAL", "error({err='TBL x'})", "0"], &["!EVAL", "\n\nerror('line3')", "0"],
    &["!EVAL", "local a = 1\nlocal b = redis.call('nosuch')", "0"],
    &["!EVAL", "if", "0"], &["!EVAL", "return redis.sha1hex()", "0"],
    // The sandbox: no globals created or read, read-only libraries, nothing of os or io.
    &["!EVAL", "x = 1", "0"], &["!EVAL", "return x", "0"], &["!EVAL", "return os", "0"],
    &["!EVAL", "return io", "0"], &["!EVAL", "string.x = 1", "0"],
    &["!EVAL", "redis.call = nil", "0"], &["!EVAL", "return require", "0"],
    &["EVAL", "local t = {} for i=1,3 do t[i]=i*i end return t", "0"],
    &["EVAL", "return string.upper('abc') .. ('d'):upper()", "0"],
    &["EVAL", "return table.concat({1,2,3},',')", "0"], &["EVAL", "return math.floor(2.5)", "0"],
    &["EVAL", "return tonumber('12') + #tostring(12.5)", "0"],
    &["EVAL", "return loadstring('return 5')()", "0"], &["EVAL", "return select('#', 1, 2)", "0"],
    &["EVAL", "return redis.sha1hex('')", "0"], &["EVAL", "return redis.sha1hex(1)", "0"],
    &["EVAL", "return redis.log(redis.LOG_WARNING,'hi')", "0"],
    &["EVAL", "return redis.setresp(2)", "0"],
    // Read-only scripts.
    &["!EVAL_RO", "return redis.call('set',KEYS[1],'b')", "1", "$a"],
    &["EVAL_RO", "return redis.call('get',KEYS[1])", "1", "$a"],
    // The script cache.
    &["SCRIPT", "LOAD", "return 1"],
    &["SCRIPT", "EXISTS", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "abc"],
    &["EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"],
    &["EVALSHA", "E0E1F9FABFC9D4800C877A703B823AC0578FF8DB", "0"],
    &["EVALSHA_RO", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"],
    &["SCRIPT", "EXISTS", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"],
    &["!SCRIPT", "KILL"], &["SCRIPT", "FLUSH", "ASYNC"],
    &["SCRIPT", "EXISTS", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"],
    &["!EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"],
    &["SCRIPT", "FLUSH"], &["SCRIPT", "FLUSH", "SYNC"], &["!SCRIPT", "FLUSH", "NOPE"],
    &["!SCRIPT", "NOPE"], &["!SCRIPT", "LOAD"], &["!SCRIPT", "LOAD", "a", "b"],
    &["!SCRIPT", "EXISTS"], &["!SCRIPT"], &["!SCRIPT", "LOAD", "if"],
    // Locks, as the session handlers take and release them.
    &["SET", "$lock", "tok1", "NX", "PX", "30000"],
    &["EVAL", PHPREDIS_RELEASE, "1", "$lock", "nope"],
    &["EVAL", PHPREDIS_RELEASE, "1", "$lock", "tok1"], &["EXISTS", "$lock"],
    &["SET", "$lock", "tok2", "NX", "PX", "30000"],
    &["EVAL", LARAVEL_RELEASE, "1", "$lock", "tok2"], &["EXISTS", "$lock"],
];

/// `arg` with every `$name` put under `prefix`.
fn under(arg: &str, prefix: &str) -> String {
    let mut out = String::with_capacity(arg.len() + prefix.len());
    let mut rest = arg;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        out.push_str(prefix);
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_replies_match_redis_step_by_step() {
    let Some(server) = RedisServer::start("the scripting differential test") else {
        return;
    };
    let trace = std::env::var_os("SESSIONMESH_DIFF_TRACE").is_some();
    let c = Cluster::start(1).await;
    let (mut differ, mut bad_steps, mut steps) = (Vec::new(), Vec::new(), 0);
    for proto in [2, 3] {
        let query = if proto == 3 { "?protocol=resp3" } else { "" };
        let mut theirs = connect(&format!("{}{query}", server.url())).await;
        let mut ours = connect(&format!("redis://{}/{query}", c.spec(0).redis)).await;
        let prefix = format!("r{proto}:");
        for (m, step) in STEPS.iter().enumerate() {
            let marked = step[0].starts_with('!');
            let mut argv: Vec<String> = step.iter().map(|a| under(a, &prefix)).collect();
            argv[0] = argv[0].trim_start_matches('!').to_owned();
            let (want, got) = (send(&mut theirs, &argv).await, send(&mut ours, &argv).await);
            steps += 1;
            let line = format!("{step:?}");
            if trace {
                println!("RESP{proto} step {m}: {line}: {want:?}");
            }
            if marked != want.is_err() {
                bad_steps.push(format!("RESP{proto} step {m}: {line}: {want:?}"));
            }
            if want != got {
                differ.push(format!(
                    "RESP{proto} step {m}: {line}:\n  redis={want:?}\n  ours ={got:?}"
                ));
            }
        }
    }
    println!("compared {steps} scripting steps (RESP2 and RESP3) with redis-server");
    assert!(
        bad_steps.is_empty(),
        "redis-server's error replies are not where the steps mark them (`!`):\n{}",
        bad_steps.join("\n")
    );
    assert!(
        differ.is_empty(),
        "{} of {steps} replies differ from redis-server's:\n{}",
        differ.len(),
        differ.join("\n")
    );
    c.shutdown().await;
}

async fn q(con: &mut MultiplexedConnection, line: &[&str]) -> Reply {
    let argv: Vec<String> = line.iter().map(|s| s.to_string()).collect();
    send(con, &argv).await
}

fn bulk(s: &str) -> Reply {
    Ok(Value::BulkString(s.as_bytes().to_vec()))
}

/// A session lock taken with `SET NX PX` in one region and released with phpredis's script in
/// another: the release's effect (a delete) reaches every region, and a wrong token releases
/// nothing anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_released_by_script_in_another_region_is_gone_everywhere() {
    let c = Cluster::start(3).await;
    c.wait_connected().await;
    let mut us = c.redis(0).await;
    let mut eu = c.redis(1).await;
    let lock = "PHPREDIS_SESSION:abc_LOCK";
    assert_eq!(
        q(&mut us, &["SET", lock, "host-1", "NX", "PX", "30000"]).await,
        Ok(Value::Okay)
    );
    c.converge_get(lock, Some("host-1")).await;
    assert_eq!(
        q(&mut eu, &["EVAL", PHPREDIS_RELEASE, "1", lock, "host-2"]).await,
        Ok(Value::Int(0)),
        "a wrong token released the lock"
    );
    assert_eq!(
        q(&mut eu, &["EVAL", PHPREDIS_RELEASE, "1", lock, "host-1"]).await,
        Ok(Value::Int(1))
    );
    c.converge_gone(lock).await;
    // EVALSHA of a script this region cached (every EVAL caches it), then in a region that
    // never saw it: NOSCRIPT, which clients answer with EVAL.
    let sha = sessionmesh::script::sha1hex(PHPREDIS_RELEASE.as_bytes());
    assert_eq!(
        q(&mut eu, &["EVALSHA", &sha, "1", lock, "host-1"]).await,
        Ok(Value::Int(0))
    );
    let mut ap = c.redis(2).await;
    let r = q(&mut ap, &["EVALSHA", &sha, "1", lock, "host-1"]).await;
    assert!(
        matches!(&r, Err(e) if e.starts_with("NOSCRIPT")),
        "EVALSHA in a region that never loaded the script: {r:?}"
    );
    c.shutdown().await;
}

/// A script's writes replicate as the deltas they made, never as the script: a script that
/// copies one key into another in region 1 while region 2, cut off, holds another value of the
/// source, leaves the copy region 1 made in every region after the heal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_replicates_its_effects_not_itself() {
    let c = Cluster::start(3).await;
    c.wait_connected().await;
    let mut us = c.redis(0).await;
    let mut eu = c.redis(1).await;
    q(&mut us, &["SET", "{s}src", "seen-in-us"]).await.unwrap();
    c.converge_get("{s}src", Some("seen-in-us")).await;
    c.isolate(1);
    q(&mut eu, &["SET", "{s}src", "seen-in-eu"]).await.unwrap();
    let copy = "local v = redis.call('get', KEYS[1]) redis.call('set', KEYS[2], v) \
                redis.call('hset', KEYS[3], 'from', v, 'at', 'us') \
                redis.call('expire', KEYS[3], 600) return v";
    assert_eq!(
        q(&mut us, &["EVAL", copy, "3", "{s}src", "{s}dst", "{s}sess"]).await,
        bulk("seen-in-us")
    );
    c.heal_all();
    c.converge_get("{s}dst", Some("seen-in-us")).await;
    for i in 0..3 {
        let mut con = c.redis(i).await;
        eventually(
            &format!("region {i} holds the script's hash"),
            DEADLINE,
            || {
                let mut con = con.clone();
                async move {
                    let h = q(&mut con, &["HGET", "{s}sess", "from"]).await;
                    let ttl = q(&mut con, &["TTL", "{s}sess"]).await;
                    match (h, ttl) {
                        (Ok(v), Ok(Value::Int(t))) if v == bulk("seen-in-us").unwrap() && t > 0 => {
                            Ok(())
                        }
                        other => Err(format!("{other:?}")),
                    }
                }
            },
        )
        .await;
        let _ = &mut con;
    }
    c.shutdown().await;
}

/// Keys on another shard than the declared ones are refused (Redis Cluster's rule, shards in
/// place of nodes); a script that declares no key may touch any; scripts run inside `MULTI`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeclared_keys_on_other_shards_are_refused_and_scripts_run_in_multi() {
    let c = Cluster::start(1).await;
    assert!(c.node(0).shard_count() > 1, "the test needs several shards");
    let n = c.node(0).shard_count();
    let home = "k0";
    let shard = |k: &str| sessionmesh_core::shard::shard_of_key(k.as_bytes(), n);
    let other = (1..)
        .map(|i| format!("k{i}"))
        .find(|k| shard(k) != shard(home))
        .unwrap();
    let mut con = c.redis(0).await;
    let body = "redis.call('set', KEYS[1], 'a') return redis.call('set', ARGV[1], 'b')";
    let r = q(&mut con, &["EVAL", body, "1", home, &other]).await;
    assert!(
        matches!(&r, Err(e) if e.contains("Script attempted to access a non local key")),
        "an undeclared key on another shard: {r:?}"
    );
    // The declared key's write stands (Redis does not roll a script back either).
    assert_eq!(q(&mut con, &["GET", home]).await, bulk("a"));
    assert_eq!(q(&mut con, &["EXISTS", &other]).await, Ok(Value::Int(0)));
    let keyless = "redis.call('set', ARGV[1], 'x') redis.call('set', ARGV[2], 'y') \
                   return redis.call('mget', ARGV[1], ARGV[2])";
    assert_eq!(
        q(&mut con, &["EVAL", keyless, "0", home, &other]).await,
        Ok(Value::Array(vec![bulk("x").unwrap(), bulk("y").unwrap()]))
    );
    let mut pipe = redis::pipe();
    pipe.atomic()
        .cmd("SET")
        .arg(home)
        .arg("in-multi")
        .cmd("EVAL")
        .arg("return redis.call('get', KEYS[1])")
        .arg(1)
        .arg(home)
        .cmd("GET")
        .arg(&other);
    let r: Vec<Value> = pipe.query_async(&mut con).await.unwrap();
    assert_eq!(
        r,
        vec![Value::Okay, bulk("in-multi").unwrap(), bulk("y").unwrap()]
    );
    c.shutdown().await;
}

/// A connection that waits for a reply as long as it takes (a script's own).
async fn patient(c: &Cluster) -> MultiplexedConnection {
    let client = redis::Client::open(format!("redis://{}/", c.spec(0).redis)).unwrap();
    let cfg = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    client
        .get_multiplexed_async_connection_with_config(&cfg)
        .await
        .unwrap()
}

/// A script that runs past `busy-reply-threshold` gets other connections answered `BUSY`, and
/// `SCRIPT KILL` from one of them stops it (it wrote nothing); one that wrote is `UNKILLABLE`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_script_is_answered_busy_and_can_be_killed() {
    // Four serving threads, connections dealt out in turn: the spinning script's thread is
    // not the other connections' (a connection on the same thread would wait for it).
    let c = Cluster::start_tuned(
        &[0],
        &[
            ("redis.busy_reply_threshold_ms", "200"),
            ("redis.io_threads", "4"),
        ],
    )
    .await;
    let mut spinner = patient(&c).await;
    let mut other = c.redis(0).await;
    assert_eq!(
        q(&mut other, &["SCRIPT", "KILL"]).await,
        Err("NOTBUSY No scripts in execution right now.".into())
    );
    let spin = tokio::spawn(async move {
        q(
            &mut spinner,
            &["EVAL", "local i = 0 while true do i = i + 1 end", "0"],
        )
        .await
    });
    eventually("a command is answered BUSY", DEADLINE, || {
        let mut con = other.clone();
        async move {
            match q(&mut con, &["GET", "k"]).await {
                Err(e) if e.starts_with("BUSY") => Ok(()),
                r => Err(format!("{r:?}")),
            }
        }
    })
    .await;
    assert_eq!(q(&mut other, &["SCRIPT", "KILL"]).await, Ok(Value::Okay));
    let r = spin.await.unwrap();
    assert!(
        matches!(&r, Err(e) if e.contains("Script killed by user with SCRIPT KILL")),
        "the killed script's reply: {r:?}"
    );
    assert_eq!(q(&mut other, &["GET", "k"]).await, Ok(Value::Nil));

    // A script that wrote cannot be killed; it runs to its end.
    let mut writer = patient(&c).await;
    let mut third = c.redis(0).await;
    let body = "redis.call('set', 'w', '1') local t = 0 for i = 1, 2e8 do t = t + 1 end \
                return redis.call('get', 'w')";
    let run = tokio::spawn(async move { q(&mut writer, &["EVAL", body, "0"]).await });
    eventually("the writing script is busy", DEADLINE, || {
        let mut con = third.clone();
        async move {
            match q(&mut con, &["SCRIPT", "KILL"]).await {
                Err(e) if e.starts_with("UNKILLABLE") => Ok(()),
                r => Err(format!("{r:?}")),
            }
        }
    })
    .await;
    assert_eq!(run.await.unwrap(), bulk("1"));
    let _ = &mut third;
    c.shutdown().await;
}
