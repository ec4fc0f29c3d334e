//! RESP conformance: a real server on 127.0.0.1:0 over a real [`Node`], driven by the `redis`
//! client crate and by raw bytes. Checks reply shapes of every supported command, Redis's error
//! strings, pipelining, MULTI/EXEC, HELLO 3, QUIT, limits and hostile input.

// Test code: a failed unwrap is a failed test, and nothing here is reachable from outside.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use redis::Value as V;
use sessionmesh::config::Config;
use sessionmesh::node::Node;
use sessionmesh::resp::{serve_redis, serve_redis_with, Limits, ServerOptions};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const TWO_REGIONS: &str = r#"
[tls]
ca = "certs/ca.pem"

# The peer never comes: serve at once, instead of answering LOADING while "restoring" from it
# and holding writes until the clock is past the drift bound.
[replication]
restore_hold_ms = 0
max_clock_drift_ms = 0

[[regions]]
name = "a"
id = 1
redis = "127.0.0.1:6401"
gossip = "127.0.0.1:7401"
http = "127.0.0.1:9401"

[[regions]]
name = "b"
id = 2
redis = "127.0.0.1:6402"
gossip = "127.0.0.1:7402"
http = "127.0.0.1:9402"
"#;

/// A node of region "a" whose one peer ("b") is never connected (so it serves at once:
/// `restore_hold_ms = 0`).
fn node() -> Arc<Node> {
    let config = Config::from_toml(TWO_REGIONS, Path::new("/nonexistent")).unwrap();
    let region = config.region("a").unwrap().clone();
    Arc::new(Node::new(&config, &region))
}

struct Server {
    addr: SocketAddr,
    stop: CancellationToken,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn start_with(opts: ServerOptions) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(serve_redis_with(listener, node(), opts, stop.clone()));
    Server { addr, stop }
}

async fn start() -> Server {
    start_with(ServerOptions::default()).await
}

async fn client(addr: SocketAddr, resp3: bool) -> redis::aio::MultiplexedConnection {
    let proto = if resp3 { "?protocol=resp3" } else { "" };
    redis::Client::open(format!("redis://{addr}/{proto}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Runs one command; a server error becomes `Err("CODE detail")`.
async fn q(con: &mut redis::aio::MultiplexedConnection, args: &[&str]) -> Result<V, String> {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async::<V>(con).await.map_err(|e| {
        format!(
            "{} {}",
            e.code().unwrap_or("?"),
            e.detail().unwrap_or_default()
        )
        .trim_end()
        .to_string()
    })
}

fn bulk(s: &str) -> V {
    V::BulkString(s.as_bytes().to_vec())
}

fn status(s: &str) -> V {
    V::SimpleString(s.to_string())
}

/// Sends raw bytes and reads until `expect` bytes arrived (or EOF, or a timeout).
async fn raw(s: &mut TcpStream, send: &[u8], expect: usize) -> Vec<u8> {
    s.write_all(send).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    while got.len() < expect {
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Ok(Err(_)) => break,
        }
    }
    got
}

/// Whether the server closed the connection (reads EOF) within a second.
async fn closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

#[tokio::test]
async fn connection_commands() {
    let srv = start().await;
    let mut c = client(srv.addr, false).await;
    assert_eq!(q(&mut c, &["PING"]).await, Ok(status("PONG")));
    assert_eq!(q(&mut c, &["ping", "hi"]).await, Ok(bulk("hi")));
    assert_eq!(q(&mut c, &["ECHO", "x y"]).await, Ok(bulk("x y")));
    assert_eq!(q(&mut c, &["SELECT", "0"]).await, Ok(V::Okay));
    assert_eq!(q(&mut c, &["SELECT", "1"]).await, Ok(V::Okay));
    assert_eq!(
        q(&mut c, &["SELECT", "16"]).await,
        Err("ERR DB index is out of range".into())
    );
    assert_eq!(q(&mut c, &["SELECT", "0"]).await, Ok(V::Okay));
    assert_eq!(
        q(&mut c, &["SELECT", "x"]).await,
        Err("ERR value is not an integer or out of range".into())
    );
    assert_eq!(
        q(&mut c, &["AUTH", "pw"]).await,
        Err(
            "ERR AUTH <password> called without any password configured for the default user. \
             Are you sure your configuration is correct?"
                .into()
        )
    );
    assert_eq!(q(&mut c, &["AUTH", "default", "x"]).await, Ok(V::Okay));
    assert_eq!(
        q(&mut c, &["AUTH", "bob", "x"]).await,
        Err("WRONGPASS invalid username-password pair or user is disabled.".into())
    );
    assert_eq!(q(&mut c, &["CLIENT", "SETNAME", "web1"]).await, Ok(V::Okay));
    assert_eq!(q(&mut c, &["CLIENT", "GETNAME"]).await, Ok(bulk("web1")));
    assert!(matches!(q(&mut c, &["CLIENT", "ID"]).await, Ok(V::Int(n)) if n > 0));
    assert_eq!(
        q(&mut c, &["CLIENT", "SETINFO", "LIB-NAME", "x"]).await,
        Ok(V::Okay)
    );
    assert_eq!(
        q(&mut c, &["CLIENT", "SETINFO", "COLOR", "x"]).await,
        Err("ERR Unrecognized option 'COLOR'".into())
    );
    assert_eq!(
        q(&mut c, &["CLIENT", "SETNAME", "a b"]).await,
        Err("ERR Client names cannot contain spaces, newlines or special characters.".into())
    );
    assert_eq!(
        q(&mut c, &["CLIENT", "FOO"]).await,
        Err("ERR unknown subcommand 'FOO'. Try CLIENT HELP.".into())
    );
    // NO-EVICT and NO-TOUCH: on/off, shown in CLIENT INFO's flags.
    let flags = |info: Result<V, String>| match info {
        Ok(V::BulkString(b)) => String::from_utf8(b)
            .unwrap()
            .split(' ')
            .find_map(|f| f.strip_prefix("flags=").map(str::to_owned))
            .unwrap(),
        other => panic!("CLIENT INFO: {other:?}"),
    };
    assert_eq!(flags(q(&mut c, &["CLIENT", "INFO"]).await), "N");
    assert_eq!(q(&mut c, &["CLIENT", "NO-EVICT", "on"]).await, Ok(V::Okay));
    assert_eq!(q(&mut c, &["CLIENT", "NO-TOUCH", "ON"]).await, Ok(V::Okay));
    assert_eq!(flags(q(&mut c, &["CLIENT", "INFO"]).await), "eT");
    assert_eq!(q(&mut c, &["CLIENT", "NO-EVICT", "off"]).await, Ok(V::Okay));
    assert_eq!(flags(q(&mut c, &["CLIENT", "INFO"]).await), "T");
    assert_eq!(
        q(&mut c, &["CLIENT", "NO-EVICT", "maybe"]).await,
        Err("ERR syntax error".into())
    );
    assert_eq!(
        q(&mut c, &["CLIENT", "NO-TOUCH"]).await,
        Err("ERR wrong number of arguments for 'client|no-touch' command".into())
    );
    let Ok(V::BulkString(info)) = q(&mut c, &["INFO"]).await else {
        panic!("INFO is a bulk string")
    };
    let info = String::from_utf8(info).unwrap();
    for section in [
        "# Server",
        "# Clients",
        "# Keyspace",
        "# Replication",
        "redis_version:",
    ] {
        assert!(info.contains(section), "{section} in {info}");
    }
    let Ok(V::BulkString(info)) = q(&mut c, &["INFO", "clients"]).await else {
        panic!()
    };
    let info = String::from_utf8(info).unwrap();
    assert!(info.starts_with("# Clients") && !info.contains("# Server"));
    let Ok(V::Int(count)) = q(&mut c, &["COMMAND", "COUNT"]).await else {
        panic!()
    };
    assert!(count >= 50);
    let Ok(V::Array(all)) = q(&mut c, &["COMMAND"]).await else {
        panic!()
    };
    assert_eq!(all.len() as i64, count);
    let Ok(V::Array(info)) = q(&mut c, &["COMMAND", "INFO", "get", "nope"]).await else {
        panic!()
    };
    assert_eq!(info[1], V::Nil);
    let V::Array(get) = &info[0] else { panic!() };
    assert_eq!(get[0], bulk("get"));
    assert_eq!(get[1], V::Int(2));
    let Ok(V::Array(docs)) = q(&mut c, &["COMMAND", "DOCS", "set"]).await else {
        panic!()
    };
    assert_eq!(docs[0], bulk("set"));
    assert_eq!(
        q(&mut c, &["CONFIG", "GET", "maxclients"]).await,
        Ok(V::Array(vec![bulk("maxclients"), bulk("10000")]))
    );
    assert_eq!(
        q(&mut c, &["CONFIG", "GET", "nonexistent"]).await,
        Ok(V::Array(vec![]))
    );
    assert_eq!(
        q(&mut c, &["CONFIG", "SET", "x", "y"]).await,
        Err("ERR Unknown option or number of arguments for CONFIG SET - 'x'".into())
    );
    assert_eq!(
        q(&mut c, &["PING", "a", "b"]).await,
        Err("ERR wrong number of arguments for 'ping' command".into())
    );
}

/// Every data command's reply shape through the server, RESP2.
#[tokio::test]
async fn data_command_shapes() {
    let srv = start().await;
    let mut c = client(srv.addr, false).await;
    let ok = Ok(V::Okay);
    let cases: Vec<(&[&str], Result<V, String>)> = vec![
        (&["SET", "s", "v"], ok.clone()),
        (&["GET", "s"], Ok(bulk("v"))),
        (&["GET", "missing"], Ok(V::Nil)),
        (&["SET", "s", "w", "GET"], Ok(bulk("v"))),
        (&["SET", "s", "x", "NX"], Ok(V::Nil)),
        (&["SETEX", "e", "100", "v"], ok.clone()),
        (&["PSETEX", "pe", "100000", "v"], ok.clone()),
        (&["SETNX", "n", "v"], Ok(V::Int(1))),
        (&["SETNX", "n", "v"], Ok(V::Int(0))),
        (&["GETEX", "n", "EX", "100"], Ok(bulk("v"))),
        (&["GETDEL", "n"], Ok(bulk("v"))),
        (&["MSET", "m1", "a", "m2", "b"], ok.clone()),
        (
            &["MGET", "m1", "missing", "m2"],
            Ok(V::Array(vec![bulk("a"), V::Nil, bulk("b")])),
        ),
        (&["APPEND", "m1", "bc"], Ok(V::Int(3))),
        (&["STRLEN", "m1"], Ok(V::Int(3))),
        (&["EXISTS", "m1", "m2", "missing"], Ok(V::Int(2))),
        (&["TYPE", "m1"], Ok(status("string"))),
        (&["TYPE", "missing"], Ok(status("none"))),
        (&["RENAME", "m1", "m3"], ok.clone()),
        (&["RENAME", "missing", "x"], Err("ERR no such key".into())),
        (&["EXPIRE", "m3", "100"], Ok(V::Int(1))),
        (&["TTL", "m3"], Ok(V::Int(100))),
        (&["PERSIST", "m3"], Ok(V::Int(1))),
        (&["TTL", "m3"], Ok(V::Int(-1))),
        (&["TTL", "missing"], Ok(V::Int(-2))),
        (&["PTTL", "missing"], Ok(V::Int(-2))),
        (&["PEXPIRE", "m3", "100000"], Ok(V::Int(1))),
        (&["EXPIREAT", "m3", "99999999999"], Ok(V::Int(1))),
        (&["PEXPIREAT", "m3", "99999999999000"], Ok(V::Int(1))),
        (&["HSET", "h", "f1", "a", "f2", "b"], Ok(V::Int(2))),
        (&["HMSET", "h", "f3", "c"], ok.clone()),
        (&["HSETNX", "h", "f1", "z"], Ok(V::Int(0))),
        (&["HGET", "h", "f1"], Ok(bulk("a"))),
        (
            &["HMGET", "h", "f1", "nope"],
            Ok(V::Array(vec![bulk("a"), V::Nil])),
        ),
        (&["HEXISTS", "h", "f2"], Ok(V::Int(1))),
        (&["HLEN", "h"], Ok(V::Int(3))),
        (&["HDEL", "h", "f3", "nope"], Ok(V::Int(1))),
        (&["HKEYS", "h"], Ok(V::Array(vec![bulk("f1"), bulk("f2")]))),
        (&["HVALS", "h"], Ok(V::Array(vec![bulk("a"), bulk("b")]))),
        (
            &["HGETALL", "h"],
            Ok(V::Array(vec![bulk("f1"), bulk("a"), bulk("f2"), bulk("b")])),
        ),
        (
            &["GET", "h"],
            Err("WRONGTYPE Operation against a key holding the wrong kind of value".into()),
        ),
        (&["DEL", "m2", "missing"], Ok(V::Int(1))),
        (&["UNLINK", "m3"], Ok(V::Int(1))),
        (
            &["GET"],
            Err("ERR wrong number of arguments for 'get' command".into()),
        ),
    ];
    for (args, want) in cases {
        let got = q(&mut c, args).await;
        let got = match (&got, &want) {
            // Ordering of hash fields is the core's business; compare sorted.
            (Ok(V::Array(g)), Ok(V::Array(_)))
                if args[0].starts_with('H') && args[0] != "HMGET" =>
            {
                let mut g = g.clone();
                g.sort_by_key(|v| format!("{v:?}"));
                let Ok(V::Array(mut w)) = want.clone() else {
                    unreachable!()
                };
                w.sort_by_key(|v| format!("{v:?}"));
                assert_eq!(g, w, "{args:?}");
                continue;
            }
            _ => got,
        };
        assert_eq!(got, want, "{args:?}");
    }
    let Ok(V::Int(n)) = q(&mut c, &["DBSIZE"]).await else {
        panic!()
    };
    assert!(n >= 3);
    let Ok(V::Array(scan)) = q(&mut c, &["SCAN", "0", "MATCH", "*", "COUNT", "1000"]).await else {
        panic!()
    };
    assert_eq!(scan.len(), 2);
    assert!(matches!(&scan[1], V::Array(keys) if keys.len() as i64 == n));
    let Ok(V::Array(keys)) = q(&mut c, &["KEYS", "*"]).await else {
        panic!()
    };
    assert_eq!(keys.len() as i64, n);
    let Ok(V::BulkString(info)) = q(&mut c, &["INFO", "keyspace"]).await else {
        panic!()
    };
    assert!(String::from_utf8(info)
        .unwrap()
        .contains(&format!("db0:keys={n}")));
}

#[tokio::test]
async fn unknown_command_keeps_the_connection() {
    let srv = start().await;
    let mut c = client(srv.addr, false).await;
    assert_eq!(
        q(&mut c, &["FOO", "a", "b"]).await,
        Err("ERR unknown command 'FOO', with args beginning with: 'a' 'b'".into())
    );
    assert_eq!(q(&mut c, &["PING"]).await, Ok(status("PONG")));
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    let got = raw(&mut s, b"*1\r\n$4\r\nNOPE\r\nPING\r\n", 60).await;
    assert_eq!(
        got,
        b"-ERR unknown command 'NOPE', with args beginning with: \r\n+PONG\r\n"
    );
}

#[tokio::test]
async fn pipelining() {
    let srv = start().await;
    let mut c = client(srv.addr, false).await;
    let mut p = redis::pipe();
    for i in 0..200 {
        p.cmd("SET").arg(format!("k{i}")).arg(i);
        p.cmd("GET").arg(format!("k{i}"));
    }
    let got: Vec<V> = p.query_async(&mut c).await.unwrap();
    assert_eq!(got.len(), 400);
    assert_eq!(got[398], V::Okay);
    assert_eq!(got[399], bulk("199"));

    // Raw: many commands in one write, mixing data and connection commands, answered in order.
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    let mut req = Vec::new();
    let mut want = Vec::new();
    for i in 0..3000 {
        req.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n$2\r\npk\r\n${}\r\n{i}\r\n",
                i.to_string().len()
            )
            .as_bytes(),
        );
        want.extend_from_slice(b"+OK\r\n");
        if i % 7 == 0 {
            req.extend_from_slice(b"PING\r\n");
            want.extend_from_slice(b"+PONG\r\n");
        }
        req.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$2\r\npk\r\n");
        want.extend_from_slice(format!("${}\r\n{i}\r\n", i.to_string().len()).as_bytes());
    }
    let got = raw(&mut s, &req, want.len()).await;
    assert_eq!(got.len(), want.len());
    assert!(got == want);
}

#[tokio::test]
async fn multi_exec() {
    let srv = start().await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    let req = b"MULTI\r\nSET t 1\r\nPING\r\nGET t\r\nHSET t f v\r\nEXEC\r\n";
    let want: &[u8] = b"+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*4\r\n+OK\r\n+PONG\r\n$1\r\n1\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
    assert_eq!(raw(&mut s, req, want.len()).await, want);

    let want: &[u8] = b"-ERR EXEC without MULTI\r\n";
    assert_eq!(raw(&mut s, b"EXEC\r\n", want.len()).await, want);
    let want: &[u8] = b"-ERR DISCARD without MULTI\r\n";
    assert_eq!(raw(&mut s, b"DISCARD\r\n", want.len()).await, want);

    // Errors at queue time abort the transaction; nothing of it runs.
    let req = b"MULTI\r\nMULTI\r\nSET t 2\r\nNOSUCH\r\nGET\r\nEXEC\r\nGET t\r\n";
    let want: &[u8] = b"+OK\r\n-ERR MULTI calls can not be nested\r\n+QUEUED\r\n\
-ERR unknown command 'NOSUCH', with args beginning with: \r\n\
-ERR wrong number of arguments for 'get' command\r\n\
-EXECABORT Transaction discarded because of previous errors.\r\n$1\r\n1\r\n";
    assert_eq!(raw(&mut s, req, want.len()).await, want);

    let want: &[u8] = b"+OK\r\n+QUEUED\r\n+OK\r\n$1\r\n1\r\n";
    assert_eq!(
        raw(
            &mut s,
            b"MULTI\r\nSET t 3\r\nDISCARD\r\nGET t\r\n",
            want.len()
        )
        .await,
        want
    );

    // RESET leaves a transaction too.
    let want: &[u8] = b"+OK\r\n+QUEUED\r\n+RESET\r\n$1\r\n1\r\n";
    assert_eq!(
        raw(
            &mut s,
            b"MULTI\r\nSET t 4\r\nRESET\r\nGET t\r\n",
            want.len()
        )
        .await,
        want
    );

    // The redis crate's atomic pipeline.
    let mut c = client(srv.addr, false).await;
    let (a, b): (String, i64) = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("x")
        .arg("y")
        .ignore()
        .cmd("GET")
        .arg("x")
        .cmd("HSET")
        .arg("hx")
        .arg("f")
        .arg("v")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!((a.as_str(), b), ("y", 1));
}

#[tokio::test]
async fn hello_and_resp3() {
    let srv = start().await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    let got = raw(&mut s, b"HELLO 3\r\n", 80).await;
    assert!(
        got.starts_with(b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    let want: &[u8] = b"_\r\n";
    assert_eq!(raw(&mut s, b"GET nothing\r\n", want.len()).await, want);
    let want: &[u8] = b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n";
    raw(&mut s, b"HSET h3 f v\r\n", 4).await;
    assert_eq!(raw(&mut s, b"HGETALL h3\r\n", want.len()).await, want);
    let want: &[u8] = b"-NOPROTO unsupported protocol version\r\n";
    assert_eq!(raw(&mut s, b"HELLO 4\r\n", want.len()).await, want);
    let want: &[u8] = b"-ERR Protocol version is not an integer or out of range\r\n";
    assert_eq!(raw(&mut s, b"HELLO x\r\n", want.len()).await, want);
    // Back to RESP2.
    let got = raw(&mut s, b"HELLO 2 SETNAME n2\r\n", 20).await;
    assert!(got.starts_with(b"*14\r\n"));

    // The redis crate negotiating RESP3 itself.
    let mut c = client(srv.addr, true).await;
    assert_eq!(q(&mut c, &["GET", "nothing"]).await, Ok(V::Nil));
    assert_eq!(
        q(&mut c, &["HGETALL", "h3"]).await,
        Ok(V::Map(vec![(bulk("f"), bulk("v"))]))
    );
    let Ok(V::Map(cfg)) = q(&mut c, &["CONFIG", "GET", "timeout"]).await else {
        panic!()
    };
    assert_eq!(cfg, vec![(bulk("timeout"), bulk("0"))]);
}

#[tokio::test]
async fn quit_and_inline() {
    let srv = start().await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    let want: &[u8] = b"+PONG\r\n+OK\r\n$3\r\nb c\r\n";
    assert_eq!(
        raw(&mut s, b"PING\r\nSET a \"b c\"\r\nGET a\n", want.len()).await,
        want
    );
    let want: &[u8] = b"+OK\r\n";
    assert_eq!(
        raw(&mut s, b"QUIT\r\nPING\r\n", want.len() + 10).await,
        want
    );
    assert!(closed(&mut s).await);
}

#[tokio::test]
async fn protocol_errors_reply_then_close() {
    let srv = start().await;
    let cases: &[(&[u8], &[u8])] = &[
        (
            b"*1\r\n$-5\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*99999999\r\n",
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1\r\n:5\r\n",
            b"-ERR Protocol error: expected '$', got ':'\r\n",
        ),
        (
            b"GET \"a\r\n",
            b"-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
        // A command before the bad one still runs and is answered first.
        (
            b"PING\r\n*x\r\n",
            b"+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n",
        ),
    ];
    for (send, want) in cases {
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        assert_eq!(raw(&mut s, send, want.len() + 100).await, *want);
        assert!(closed(&mut s).await);
    }
    let mut c = client(srv.addr, false).await;
    assert_eq!(q(&mut c, &["PING"]).await, Ok(status("PONG")));
}

#[tokio::test]
async fn limits() {
    let limits = Limits {
        max_bulk_len: 1000,
        max_array_len: 5,
        max_clients: 2,
        max_multi_queue: 2,
        ..Limits::default()
    };
    let srv = start_with(ServerOptions {
        limits,
        ..ServerOptions::default()
    })
    .await;
    let mut a = TcpStream::connect(srv.addr).await.unwrap();
    let want: &[u8] = b"-ERR Protocol error: invalid bulk length\r\n";
    assert_eq!(
        raw(&mut a, b"*2\r\n$3\r\nGET\r\n$1001\r\n", want.len()).await,
        want
    );
    assert!(closed(&mut a).await);
    drop(a);
    let mut a = TcpStream::connect(srv.addr).await.unwrap();
    let want: &[u8] = b"-ERR Protocol error: invalid multibulk length\r\n";
    assert_eq!(raw(&mut a, b"*6\r\n", want.len()).await, want);
    drop(a);
    tokio::time::sleep(Duration::from_millis(100)).await;

    let mut a = TcpStream::connect(srv.addr).await.unwrap();
    let want: &[u8] = b"+OK\r\n+QUEUED\r\n+QUEUED\r\n-ERR too many commands queued in MULTI\r\n-EXECABORT Transaction discarded because of previous errors.\r\n";
    assert_eq!(
        raw(
            &mut a,
            b"MULTI\r\nPING\r\nPING\r\nPING\r\nEXEC\r\n",
            want.len()
        )
        .await,
        want
    );
    let mut b = TcpStream::connect(srv.addr).await.unwrap();
    assert_eq!(raw(&mut b, b"PING\r\n", 7).await, b"+PONG\r\n");
    let mut c = TcpStream::connect(srv.addr).await.unwrap();
    let want: &[u8] = b"-ERR max number of clients reached\r\n";
    assert_eq!(raw(&mut c, b"PING\r\n", want.len()).await, want);
    assert!(closed(&mut c).await);
    drop((a, b));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut d = TcpStream::connect(srv.addr).await.unwrap();
    assert_eq!(raw(&mut d, b"PING\r\n", 7).await, b"+PONG\r\n");
}

#[tokio::test]
async fn requirepass() {
    let srv = start_with(ServerOptions {
        limits: Limits::default(),
        requirepass: Some("s3cret".into()),
        ..ServerOptions::default()
    })
    .await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    let want: &[u8] = b"-NOAUTH Authentication required.\r\n-WRONGPASS invalid username-password pair or user is disabled.\r\n+OK\r\n$-1\r\n";
    assert_eq!(
        raw(
            &mut s,
            b"GET k\r\nAUTH nope\r\nAUTH s3cret\r\nGET k\r\n",
            want.len()
        )
        .await,
        want
    );
    // Unauthenticated clients get tiny limits, as in Redis.
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    let want: &[u8] = b"-ERR Protocol error: invalid multibulk length\r\n";
    assert_eq!(raw(&mut s, b"*11\r\n", want.len()).await, want);
    // HELLO with AUTH authenticates and switches protocol at once.
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    let got = raw(&mut s, b"HELLO 3 AUTH default s3cret\r\n", 10).await;
    assert!(got.starts_with(b"%7\r\n"));
}

#[tokio::test]
async fn wait_reports_regions() {
    let srv = start().await;
    let mut c = client(srv.addr, false).await;
    // Nothing written yet on this connection: the one peer trivially holds it all.
    assert_eq!(q(&mut c, &["WAIT", "1", "0"]).await, Ok(V::Int(1)));
    q(&mut c, &["SET", "w", "1"]).await.unwrap();
    // The peer is never connected: the wait times out with 0.
    let t = std::time::Instant::now();
    assert_eq!(q(&mut c, &["WAIT", "1", "50"]).await, Ok(V::Int(0)));
    assert!(t.elapsed() >= Duration::from_millis(45));
    assert_eq!(q(&mut c, &["WAIT", "0", "0"]).await, Ok(V::Int(0)));
    assert_eq!(
        q(&mut c, &["WAIT", "1", "-1"]).await,
        Err("ERR timeout is negative".into())
    );
}

/// A client that pipelines big reads and never reads replies stalls only itself: the server
/// buffers about one reply for it, not all of them.
#[tokio::test]
async fn slow_reader_is_bounded() {
    let srv = start().await;
    let mut c = client(srv.addr, false).await;
    let big = "x".repeat(256 * 1024);
    q(&mut c, &["SET", "big", &big]).await.unwrap();
    let rss = || {
        let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
        s.split(' ')
            .nth(1)
            .and_then(|p| p.parse::<u64>().ok())
            .unwrap_or(0)
            * 4096
    };
    let before = rss();
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    // 2000 x 256 KiB = 500 MiB of replies if the server buffered them all.
    let req = b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n".repeat(2000);
    s.write_all(&req).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let grown = rss().saturating_sub(before);
    assert!(grown < 64 << 20, "grew by {grown} bytes");
    // Others are served meanwhile.
    assert_eq!(q(&mut c, &["PING"]).await, Ok(status("PONG")));
}

#[tokio::test]
async fn garbage_never_kills_the_server() {
    use rand::{Rng, SeedableRng};
    let srv = start().await;
    let seed = std::env::var("SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7u64);
    println!("seed {seed}");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    for _ in 0..50 {
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        let len = rng.gen_range(1..4096);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        // Sometimes make it look like RESP.
        if rng.gen_bool(0.5) {
            bytes.splice(0..0, b"*3\r\n$3\r\nSET\r\n".iter().copied());
        }
        let _ = s.write_all(&bytes).await;
        let mut buf = [0u8; 1024];
        let _ = tokio::time::timeout(Duration::from_millis(20), s.read(&mut buf)).await;
    }
    let mut c = client(srv.addr, false).await;
    assert_eq!(q(&mut c, &["PING"]).await, Ok(status("PONG")));
}

#[tokio::test]
async fn shutdown_closes_connections() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(serve_redis(listener, node(), Limits::default(), rx));
    let mut s = TcpStream::connect(addr).await.unwrap();
    assert_eq!(raw(&mut s, b"PING\r\n", 7).await, b"+PONG\r\n");
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("server stops")
        .unwrap();
    assert!(closed(&mut s).await);
}

/// ACL-style users: `AUTH user pass` for configured users, NOAUTH before, WRONGPASS for a wrong
/// pair, and the default user disabled when only named users are configured.
#[tokio::test]
async fn named_users() {
    let srv = start_with(ServerOptions {
        limits: Limits::default(),
        users: [("alice".into(), "wonder".into())].into_iter().collect(),
        ..ServerOptions::default()
    })
    .await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    let wrong: &[u8] = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n";
    let mut want = b"-NOAUTH Authentication required.\r\n".to_vec();
    want.extend_from_slice(wrong);
    want.extend_from_slice(wrong);
    want.extend_from_slice(b"+OK\r\n$-1\r\n");
    assert_eq!(
        raw(
            &mut s,
            b"GET k\r\nAUTH alice nope\r\nAUTH default wonder\r\nAUTH alice wonder\r\nGET k\r\n",
            want.len()
        )
        .await,
        want
    );
}

/// TLS on the Redis listener, through the `redis` crate's own TLS support: a client that
/// trusts the CA talks to the node; a plain-text client gets nothing served.
#[tokio::test]
async fn tls_listener_with_the_redis_crate() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.subject_alt_names = vec![SanType::IpAddress("127.0.0.1".parse().unwrap())];
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let cfg = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let srv = start_with(ServerOptions {
        tls: Some(Arc::new(cfg)),
        ..ServerOptions::default()
    })
    .await;

    let client = redis::Client::build_with_tls(
        format!("rediss://{}/", srv.addr),
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(ca_cert.pem().into_bytes()),
        },
    )
    .unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SET")
        .arg("secure")
        .arg("yes")
        .query_async(&mut c)
        .await
        .unwrap();
    let v: String = redis::cmd("GET")
        .arg("secure")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(v, "yes");

    // Plain text on the TLS port is not a Redis conversation.
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(b"PING\r\n").await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut buf)).await;
    assert!(
        !buf.starts_with(b"+PONG"),
        "served plain text on a TLS listener"
    );
}

/// `CLIENT LIST` shows every connection, in id order, with its name and user; `CLIENT KILL`
/// closes the ones its filter matches (by id, address, user, skipping the caller unless
/// `SKIPME no`), and the old `CLIENT KILL ip:port` form answers `OK` or `No such client`.
#[tokio::test]
async fn client_list_and_kill() {
    let mut users = std::collections::BTreeMap::new();
    users.insert(
        bytes::Bytes::from_static(b"app"),
        bytes::Bytes::from_static(b"pw"),
    );
    let s = start_with(ServerOptions {
        requirepass: Some("top".into()),
        users,
        ..ServerOptions::default()
    })
    .await;
    let mut admin = TcpStream::connect(s.addr).await.unwrap();
    raw(&mut admin, b"AUTH top\r\nCLIENT SETNAME admin\r\n", 10).await;
    let mut app = TcpStream::connect(s.addr).await.unwrap();
    raw(
        &mut app,
        b"AUTH app pw\r\nCLIENT SETNAME worker\r\nCLIENT ID\r\n",
        14,
    )
    .await;
    let mut other = TcpStream::connect(s.addr).await.unwrap();
    raw(&mut other, b"AUTH top\r\nPING\r\n", 12).await;

    let list = bulk_reply(&mut admin, b"CLIENT LIST\r\n").await;
    let lines: Vec<&str> = list.lines().filter(|l| l.contains("id=")).collect();
    assert_eq!(lines.len(), 3, "{list}");
    assert!(
        lines[0].contains("name=admin") && lines[0].contains("user=default"),
        "{list}"
    );
    assert!(
        lines[1].contains("name=worker") && lines[1].contains("user=app"),
        "{list}"
    );
    let ids: Vec<u64> = lines
        .iter()
        .map(|l| {
            l.split(' ')
                .next()
                .unwrap()
                .strip_prefix("id=")
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in id order: {ids:?}");
    let addr_of = |l: &str| {
        l.split(' ')
            .find_map(|f| f.strip_prefix("addr="))
            .unwrap()
            .to_owned()
    };

    // Filters.
    let one = bulk_reply(
        &mut admin,
        format!("CLIENT LIST ID {}\r\n", ids[1]).as_bytes(),
    )
    .await;
    assert!(
        one.contains("name=worker") && one.lines().count() == 1,
        "{one}"
    );
    assert_eq!(
        raw(&mut admin, b"CLIENT LIST TYPE pubsub\r\n", 6).await,
        b"$0\r\n\r\n"
    );
    assert_eq!(
        raw(&mut admin, b"CLIENT LIST TYPE foo\r\n", 10).await,
        b"-ERR Unknown client type 'foo'\r\n"
    );
    assert_eq!(
        raw(&mut admin, b"CLIENT KILL USER nobody\r\n", 10).await,
        b"-ERR No such user 'nobody'\r\n"
    );
    assert_eq!(
        raw(&mut admin, b"CLIENT KILL ID 999999\r\n", 4).await,
        b":0\r\n"
    );

    // By user: only the worker is `app`.
    assert_eq!(
        raw(&mut admin, b"CLIENT KILL USER app\r\n", 4).await,
        b":1\r\n"
    );
    assert!(closed(&mut app).await, "the killed connection is closed");
    // Old form, by address.
    let gone = format!("CLIENT KILL {}\r\n", addr_of(lines[1]));
    assert_eq!(
        raw(&mut admin, gone.as_bytes(), 10).await,
        b"-ERR No such client\r\n"
    );
    let by_addr = format!("CLIENT KILL {}\r\n", addr_of(lines[2]));
    assert_eq!(raw(&mut admin, by_addr.as_bytes(), 5).await, b"+OK\r\n");
    assert!(closed(&mut other).await);
    // The caller is skipped unless it asks otherwise; then it answers and closes.
    assert_eq!(
        raw(&mut admin, b"CLIENT KILL USER default\r\n", 4).await,
        b":0\r\n"
    );
    assert_eq!(
        raw(&mut admin, b"CLIENT KILL USER default SKIPME no\r\n", 4).await,
        b":1\r\n"
    );
    assert!(closed(&mut admin).await);
    let mut last = TcpStream::connect(s.addr).await.unwrap();
    raw(&mut last, b"AUTH top\r\n", 5).await;
    let list = bulk_reply(&mut last, b"CLIENT LIST\r\n").await;
    assert_eq!(
        list.matches("id=").count(),
        1,
        "closed connections leave the list: {list}"
    );
}

/// Sends `cmd` and reads one bulk-string reply whole.
async fn bulk_reply(s: &mut TcpStream, cmd: &[u8]) -> String {
    s.write_all(cmd).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(2).position(|w| w == b"\r\n") {
            let header = std::str::from_utf8(&got[..end]).unwrap();
            let len: usize = header.strip_prefix('$').expect(header).parse().unwrap();
            if got.len() >= end + 2 + len + 2 {
                return String::from_utf8(got[end + 2..end + 2 + len].to_vec()).unwrap();
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("a reply within 5 s")
            .unwrap();
        assert!(n > 0, "closed before the reply: {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
}
