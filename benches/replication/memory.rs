//! Memory per session against `redis-server` (and the `redis-server` this bench starts).

use super::*;

/// A `redis-server` this bench starts (and kills when dropped).
pub(crate) struct RedisServer {
    child: Child,
    addr: SocketAddr,
}

impl RedisServer {
    async fn start(port: u64) -> Option<RedisServer> {
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        if std::net::TcpStream::connect(addr).is_ok() {
            panic!("something already listens on {addr}; set BENCH_REDIS_PORT");
        }
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) => {
                eprintln!("cannot start redis-server ({e}): apt-get install -y redis-server");
                return None;
            }
        };
        let server = RedisServer { child, addr };
        eventually("redis-server answers", Duration::from_secs(10), || async {
            std::net::TcpStream::connect(addr)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await;
        Some(server)
    }

    async fn used_memory(&self, con: &mut MultiplexedConnection) -> (u64, u64) {
        let info: String = redis::cmd("INFO")
            .arg("memory")
            .query_async(con)
            .await
            .unwrap();
        let field = |name: &str| -> u64 {
            info.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}:")))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("no {name} in INFO memory"))
        };
        (field("used_memory"), field("used_memory_rss"))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The ~1 KB session of the memory figure: four fields, distinct values per session.
pub(crate) fn session_cmd(i: u64) -> redis::Cmd {
    let mut c = redis::cmd("HSET");
    c.arg(format!("session:{i:08}"))
        .arg("user")
        .arg(format!("user-{i:08}@example.com"))
        .arg("cart")
        .arg(format!("{i:08}").repeat(64))
        .arg("prefs")
        .arg(format!("{:08}", i * 7).repeat(48))
        .arg("seen")
        .arg(format!("{}", 1_700_000_000_000 + i));
    c
}

/// Payload bytes of [`session_cmd`]: key, field names and values.
pub(crate) fn session_payload(i: u64) -> u64 {
    let k = format!("session:{i:08}").len();
    let fields = 4 + 4 + 5 + 4;
    let values = format!("user-{i:08}@example.com").len()
        + 8 * 64
        + 8 * 48
        + format!("{}", 1_700_000_000_000 + i).len();
    (k + fields + values) as u64
}

pub(crate) async fn memory(rows: &mut Vec<Row>) {
    let n = env_u64("BENCH_SESSIONS", 100_000);
    let payload: u64 = (0..n).map(session_payload).sum();
    println!(
        "\n== memory: {n} sessions of {:.0} bytes (key + 4 fields + values)",
        payload as f64 / n as f64
    );
    let Some(redis) = RedisServer::start(env_u64("BENCH_REDIS_PORT", 6391)).await else {
        rows.push(row(
            "memory per ~1 KB session vs Redis",
            "<= 1.5x",
            "skipped: no redis-server".into(),
            None,
        ));
        return;
    };

    let cluster = Cluster::start(1).await;
    let addr = cluster.spec(0).redis;
    // Warm up the node's Redis path and the client so their one-off allocations are not
    // counted as session memory.
    pipelined(addr, 4, 1000, 250, None, |i| {
        let mut c = redis::cmd("SET");
        c.arg(format!("warmup:{i}")).arg("x");
        c
    })
    .await;
    let before = rss();
    let took = pipelined(addr, 4, n, 500, None, session_cmd).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = rss();
    let keys = cluster.node(0).stats().keys;
    let node_per = (after.saturating_sub(before)) as f64 / n as f64;
    println!(
        "sessionmesh (1 region): loaded in {:.2} s, {keys} keys, RSS {:.1} -> {:.1} MiB: {node_per:.0} bytes per session",
        took.as_secs_f64(),
        mib(before),
        mib(after)
    );
    cluster.shutdown().await;

    let mut con = connect(redis.addr).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (used0, rss0) = redis.used_memory(&mut con).await;
    let took = pipelined(redis.addr, 4, n, 500, None, session_cmd).await;
    // used_memory_rss is refreshed by Redis's cron (every 100 ms).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (used1, rss1) = redis.used_memory(&mut con).await;
    let redis_per = (used1.saturating_sub(used0)) as f64 / n as f64;
    let redis_rss_per = (rss1.saturating_sub(rss0)) as f64 / n as f64;
    println!(
        "redis-server: loaded in {:.2} s, used_memory {:.1} -> {:.1} MiB: {redis_per:.0} bytes per session (RSS: {redis_rss_per:.0})",
        took.as_secs_f64(),
        mib(used0),
        mib(used1)
    );
    let ratio = node_per / redis_per;
    println!(
        "ratio: {ratio:.2}x Redis's used_memory, {:.2}x its RSS growth",
        node_per / redis_rss_per
    );
    rows.push(row(
        "memory per ~1 KB session vs Redis",
        "<= 1.5x",
        format!(
            "{node_per:.0} B vs {redis_per:.0} B (used_memory) = {ratio:.2}x; {:.2}x Redis RSS growth",
            node_per / redis_rss_per
        ),
        Some(ratio <= 1.5),
    ));
}
