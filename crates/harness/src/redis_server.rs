//! A real `redis-server` to compare with (the differential tests): a child process on a free
//! loopback port, stopped on drop.

use std::process::{Child, Command, Stdio};

/// A `redis-server` child on a free port, stopped on drop.
pub struct RedisServer {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RedisServer {
    /// Starts `redis-server` without persistence, or says loudly that `what` did not run and
    /// returns `None` when it is not installed. `SESSIONMESH_REQUIRE_REDIS` (set by `.ci/run`,
    /// which installs it) turns its absence into a failure.
    pub fn start(what: &str) -> Option<RedisServer> {
        let port = crate::ports::Ports::free(1)[0].redis;
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match child {
            Ok(child) => Some(RedisServer { child, port }),
            Err(e) => {
                assert!(
                    std::env::var_os("SESSIONMESH_REQUIRE_REDIS").is_none(),
                    "redis-server is required here and could not start: {e}"
                );
                eprintln!("NOTE: redis-server not found ({e}); {what} did not run");
                None
            }
        }
    }

    /// Its URL for the `redis` crate.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

/// A reply as the differential tests compare them: a value, or an error's full text (code
/// included).
pub type Reply = Result<redis::Value, String>;

/// Sends one command line and returns its reply, an error reply as its text.
pub async fn send(con: &mut redis::aio::MultiplexedConnection, args: &[String]) -> Reply {
    let mut c = redis::cmd(&args[0]);
    for a in &args[1..] {
        c.arg(a.as_str());
    }
    c.query_async::<redis::Value>(con)
        .await
        .map_err(|e| match e.code() {
            Some(code) => format!("{code} {}", e.detail().unwrap_or("")),
            None => format!("(not a server error) {e}"),
        })
}

/// A connection to `url` once it answers (within [`crate::cluster::DEADLINE`]).
pub async fn connect(url: &str) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(url).unwrap();
    crate::eventually(
        &format!("{url} answers"),
        crate::cluster::DEADLINE,
        || async {
            match client.get_multiplexed_async_connection().await {
                Ok(_) => Ok(()),
                Err(e) => Err(e.to_string()),
            }
        },
    )
    .await;
    client.get_multiplexed_async_connection().await.unwrap()
}
