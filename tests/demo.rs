//! `sessionmesh demo`, run as a user runs it (`cargo run --release -- demo`): the README's first
//! command, so it has to work out of the box.
//!
//! The built binary is started as a child process on a three-region config with free loopback
//! ports, makes its own development certificates in `--data`, and is driven through its Redis
//! ports (the `redis` crate) and its console (standard input, replies on standard output):
//!
//! - with relays (the default): a write replicates; `isolate <region>` really cuts that region
//!   off (its next write stays invisible elsewhere), `links` says so, and after `heal` the write
//!   arrives everywhere;
//! - with `--direct`: a write replicates without relays, and link commands answer that there is
//!   no relay on that link.
//!
//! Waiting is by polling with deadlines; the only bounded wait is the short window that shows a
//! write cut off by `isolate` does not arrive.

// Test code: a failed unwrap is a failed test, and nothing here is reachable from outside.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use redis::aio::MultiplexedConnection;
use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tempfile::TempDir;

use sessionmesh_harness::ports::Ports;

/// How long any wait for something that should happen may take: generous, since two cores
/// are shared with other builds; a healthy run needs well under a second for each.
const DEADLINE: Duration = Duration::from_secs(20);
/// How long a write made during `isolate` is watched for not arriving.
const ABSENCE_WINDOW: Duration = Duration::from_millis(1500);
/// The regions, in id order.
const NAMES: [&str; 3] = ["us-east", "eu-west", "ap-south"];

/// Writes a three-region config into `dir` and returns its path and the regions' ports. No
/// certificates: the demo makes its own (and moves the config's cert paths to them).
fn write_config(dir: &Path) -> (PathBuf, Vec<Ports>) {
    let ports = Ports::free(NAMES.len());
    // Fast loss detection and reconnects, so a healed link is back in well under a second.
    let mut text = String::from(
        "[tls]\nca = \"certs/ca.pem\"\n\n[replication]\ncatchup_interval_ms = 200\n\n\
         [transport]\nkeep_alive_ms = 150\nidle_timeout_ms = 1000\nreconnect_min_ms = 20\n\
         reconnect_max_ms = 200\n\n[persistence]\ndata_dir = \"data\"\n",
    );
    for (i, (name, p)) in NAMES.iter().zip(&ports).enumerate() {
        text.push_str(&format!(
            "\n[[regions]]\nname = \"{name}\"\nid = {}\nredis = \"127.0.0.1:{}\"\n\
             gossip = \"127.0.0.1:{}\"\nhttp = \"127.0.0.1:{}\"\n",
            i + 1,
            p.redis,
            p.gossip,
            p.http
        ));
    }
    let config = dir.join("regions.toml");
    std::fs::write(&config, text).unwrap();
    (config, ports)
}

/// A running `sessionmesh demo`; killed when dropped so a failing test leaves nothing behind.
struct Demo {
    /// In a mutex so a wait can notice the demo exited (and stop waiting at once).
    child: Mutex<Child>,
    stdin: ChildStdin,
    /// Every line the demo printed on standard output so far (banner and console replies).
    stdout: Arc<Mutex<Vec<String>>>,
    /// Standard error (the log).
    log: PathBuf,
    /// `redis://` URL of each region, in id order.
    urls: Vec<String>,
    /// Config, certificates and data; removed after the child is killed.
    _dir: TempDir,
}

impl Demo {
    /// Starts `sessionmesh demo` (with `extra` arguments) on a fresh three-region config and
    /// waits until every region serves data commands.
    async fn start(extra: &[&str]) -> Demo {
        let dir = tempfile::tempdir().unwrap();
        let (config, ports) = write_config(dir.path());
        let log = dir.path().join("demo.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_sessionmesh"))
            .arg("demo")
            .arg("--config")
            .arg(&config)
            .arg("--data")
            .arg(dir.path().join("d"))
            .args(extra)
            .env("RUST_LOG", "info,quinn=warn,rustls=warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn sessionmesh demo");
        let stdin = child.stdin.take().unwrap();
        let out = child.stdout.take().unwrap();
        let stdout = Arc::new(Mutex::new(Vec::new()));
        {
            let stdout = stdout.clone();
            // Ends at EOF, when the child is gone.
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    stdout.lock().unwrap().push(line);
                }
            });
        }
        let demo = Demo {
            child: Mutex::new(child),
            stdin,
            stdout,
            log,
            urls: ports
                .iter()
                .map(|p| format!("redis://127.0.0.1:{}/", p.redis))
                .collect(),
            _dir: dir,
        };
        for (i, name) in NAMES.iter().enumerate() {
            // A data command: answered LOADING until the region has heard from its peers.
            eventually(
                &format!("{name} to serve"),
                || async {
                    let mut c = demo.try_connect(i).await?;
                    redis::cmd("EXISTS")
                        .arg("startup-probe")
                        .query_async::<i64>(&mut c)
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string())
                },
                &demo,
            )
            .await;
        }
        demo
    }

    async fn try_connect(&self, i: usize) -> Result<MultiplexedConnection, String> {
        let client = redis::Client::open(self.urls[i].as_str()).map_err(|e| e.to_string())?;
        tokio::time::timeout(
            Duration::from_secs(2),
            client.get_multiplexed_async_connection(),
        )
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| e.to_string())
    }

    /// One connection per region, in id order.
    async fn connect_all(&self) -> Vec<MultiplexedConnection> {
        let mut all = Vec::new();
        for (i, name) in NAMES.iter().enumerate() {
            let c = self.try_connect(i).await.unwrap_or_else(|e| {
                panic!("cannot connect to {name}: {e}\n{}", self.diagnostics())
            });
            all.push(c);
        }
        all
    }

    /// Types `line` into the demo's console; returns how many stdout lines came before it, so
    /// [`Demo::expect_reply`] only looks at what follows.
    fn type_line(&mut self, line: &str) -> usize {
        let seen = self.stdout.lock().unwrap().len();
        writeln!(self.stdin, "{line}")
            .and_then(|()| self.stdin.flush())
            .unwrap_or_else(|e| panic!("cannot write `{line}` to the console: {e}"));
        seen
    }

    /// Waits until the demo printed `want` on a line of its own after the first `after` lines.
    async fn expect_reply(&self, after: usize, want: &str) {
        eventually(
            &format!("the console to reply `{want}`"),
            || async {
                let out = self.stdout.lock().unwrap();
                if out.iter().skip(after).any(|l| l.trim() == want) {
                    Ok(())
                } else {
                    Err(format!("{} lines since the command", out.len() - after))
                }
            },
            self,
        )
        .await;
    }

    /// The exit status, if the demo is no longer running.
    fn exited(&self) -> Option<std::process::ExitStatus> {
        self.child.lock().unwrap().try_wait().ok().flatten()
    }

    /// The demo's standard output so far and the tail of its log, for failure messages.
    fn diagnostics(&self) -> String {
        let out = self.stdout.lock().unwrap().join("\n");
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(60)..].join("\n");
        format!("--- demo stdout ---\n{out}\n--- demo log (last 60 lines) ---\n{tail}")
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Polls `check` until it is `Ok` (the harness's `eventually_or`); panics with what was
/// awaited, its last reason and the demo's output after [`DEADLINE`], or at once if the demo
/// exited.
async fn eventually<F, Fut>(what: &str, mut check: F, demo: &Demo)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let check = &mut check;
    sessionmesh_harness::eventually_or(
        what,
        DEADLINE,
        move || {
            let fut = check();
            async move {
                let why = match fut.await {
                    Ok(()) => return Ok(()),
                    Err(why) => why,
                };
                if let Some(code) = demo.exited() {
                    panic!(
                        "the demo exited ({code}) while waiting for {what}: {why}\n{}",
                        demo.diagnostics()
                    );
                }
                Err(why)
            }
        },
        || format!("\n{}", demo.diagnostics()),
    )
    .await
}

async fn set(c: &MultiplexedConnection, key: &str, value: &str) -> Result<(), String> {
    let mut c = c.clone();
    let reply = tokio::time::timeout(
        Duration::from_secs(5),
        redis::cmd("SET")
            .arg(key)
            .arg(value)
            .query_async::<String>(&mut c),
    )
    .await
    .map_err(|_| format!("SET {key} timed out"))?
    .map_err(|e| e.to_string())?;
    if reply == "OK" {
        Ok(())
    } else {
        Err(format!("SET {key} answered {reply:?}"))
    }
}

async fn get(c: &MultiplexedConnection, key: &str) -> Result<Option<String>, String> {
    let mut c = c.clone();
    tokio::time::timeout(
        Duration::from_secs(5),
        redis::cmd("GET").arg(key).query_async(&mut c),
    )
    .await
    .map_err(|_| format!("GET {key} timed out"))?
    .map_err(|e| e.to_string())
}

/// Waits until region `i` returns `value` for `key`.
async fn arrives(demo: &Demo, cons: &[MultiplexedConnection], i: usize, key: &str, value: &str) {
    eventually(
        &format!("{key} = {value:?} to reach {}", NAMES[i]),
        || async {
            match get(&cons[i], key).await? {
                Some(v) if v == value => Ok(()),
                other => Err(format!("GET {key} = {other:?}")),
            }
        },
        demo,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_replicates_and_its_console_cuts_links() {
    let started = Instant::now();
    let mut demo = Demo::start(&[]).await;
    let cons = demo.connect_all().await;
    let [r1, r2, r3] = NAMES;

    set(&cons[0], "session:1", "alice")
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", demo.diagnostics()));
    arrives(&demo, &cons, 2, "session:1", "alice").await;

    // Cut region 1 off; the reply is printed once every relay drops its datagrams.
    let seen = demo.type_line(&format!("isolate {r1}"));
    demo.expect_reply(seen, &format!("{r1} cut off from every other region"))
        .await;
    let seen = demo.type_line("links");
    demo.expect_reply(seen, &format!("{r1} <-> {r2}: cut"))
        .await;
    demo.expect_reply(seen, &format!("{r1} <-> {r3}: cut"))
        .await;
    demo.expect_reply(seen, &format!("{r2} <-> {r3}: up")).await;

    // A write while cut off: acknowledged in region 1, seen nowhere else.
    set(&cons[0], "session:2", "bob")
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", demo.diagnostics()));
    assert_eq!(
        get(&cons[0], "session:2").await.unwrap().as_deref(),
        Some("bob"),
        "{r1} does not return its own write"
    );
    let window = Instant::now();
    while window.elapsed() < ABSENCE_WINDOW {
        for i in [1, 2] {
            let got = get(&cons[i], "session:2")
                .await
                .unwrap_or_else(|e| panic!("GET in {}: {e}\n{}", NAMES[i], demo.diagnostics()));
            assert_eq!(
                got,
                None,
                "a write in isolated {r1} reached {} {:?} after isolate\n{}",
                NAMES[i],
                window.elapsed(),
                demo.diagnostics()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Heal: the write made during the cut arrives everywhere.
    let seen = demo.type_line("heal");
    demo.expect_reply(seen, "every link healed").await;
    arrives(&demo, &cons, 1, "session:2", "bob").await;
    arrives(&demo, &cons, 2, "session:2", "bob").await;
    let seen = demo.type_line("links");
    demo.expect_reply(seen, &format!("{r1} <-> {r2}: up")).await;
    demo.expect_reply(seen, &format!("{r1} <-> {r3}: up")).await;
    println!("with relays: {:.2}s", started.elapsed().as_secs_f64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_direct_replicates_without_relays() {
    let started = Instant::now();
    let mut demo = Demo::start(&["--direct"]).await;
    let cons = demo.connect_all().await;
    let [r1, _, r3] = NAMES;

    set(&cons[0], "session:1", "alice")
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", demo.diagnostics()));
    arrives(&demo, &cons, 1, "session:1", "alice").await;
    arrives(&demo, &cons, 2, "session:1", "alice").await;

    // No relays: the console has no link to cut.
    let seen = demo.type_line(&format!("partition {r1} {r3}"));
    demo.expect_reply(seen, "no relay on that link").await;
    println!("direct: {:.2}s", started.elapsed().as_secs_f64());
}
