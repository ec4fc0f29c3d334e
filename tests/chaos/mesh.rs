//! Three `sessionmesh serve` processes on loopback, a seeded [`Relay`] on every link, and what
//! the nemesis does to them: cut, degrade and delay links, SIGKILL a region, start it again
//! with its data folder kept, emptied or rolled back to an older copy, and a new clock offset.
//!
//! Each region has its own config file: its own real addresses, and for every peer it dials
//! (the higher ids) the relay's address, so every datagram between two regions crosses a relay
//! this process controls.

use redis::aio::MultiplexedConnection;
use sessionmesh::certs;
use sessionmesh::config::Config;
use sessionmesh_harness::ports::Ports;
use sessionmesh_harness::Relay;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tempfile::TempDir;

pub const NAMES: [&str; 3] = ["us-east", "eu-west", "ap-south"];

/// Timers short enough that a one-minute run sees reconnects, reroutes, restorations and
/// tombstone collection (grace 8 s, below the longest isolation the nemesis draws) many times.
const SETTINGS: &str = "\
[replication]
flush_interval_ms = 2
max_clock_drift_ms = 500
tombstone_grace_ms = 8000
gc_interval_ms = 500
catchup_interval_ms = 200

[transport]
keep_alive_ms = 150
idle_timeout_ms = 1000
reconnect_min_ms = 20
reconnect_max_ms = 300
";

/// What a restarted region finds in its data folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disk {
    Kept,
    /// Emptied: a replaced disk.
    Wiped,
    /// Replaced with the region's latest backup.
    RolledBack,
}

/// A copy of a region's data folder, taken while the process was stopped with SIGSTOP (what
/// a block-level snapshot of a running machine holds).
pub struct Backup {
    pub dir: TempDir,
    /// Milliseconds since the run started, when the copy was taken.
    pub at_ms: u64,
}

pub struct Mesh {
    pub dir: TempDir,
    ports: Vec<Ports>,
    relays: BTreeMap<(usize, usize), Relay>,
    children: Vec<Option<Child>>,
    pub backups: Vec<Option<Backup>>,
    /// Each region's current clock offset.
    pub offsets: Vec<i64>,
    starts: usize,
}

impl Mesh {
    pub async fn new(seed: u64) -> Mesh {
        let dir = tempfile::tempdir().expect("temp dir");
        let ports = Ports::free(NAMES.len());
        let gossip =
            |i: usize| -> SocketAddr { format!("127.0.0.1:{}", ports[i].gossip).parse().unwrap() };
        let mut relays = BTreeMap::new();
        for i in 0..NAMES.len() {
            for j in i + 1..NAMES.len() {
                let r = Relay::try_start_seeded(gossip(i), gossip(j), seed ^ (i * 4 + j) as u64)
                    .await
                    .expect("relay");
                relays.insert((i, j), r);
            }
        }
        let mesh = Mesh {
            dir,
            ports,
            relays,
            children: (0..NAMES.len()).map(|_| None).collect(),
            backups: (0..NAMES.len()).map(|_| None).collect(),
            offsets: vec![0; NAMES.len()],
            starts: 0,
        };
        for i in 0..NAMES.len() {
            mesh.write_config(i);
        }
        let config = Config::load(&mesh.config_path(0)).expect("chaos config");
        certs::generate(&config, &mesh.dir.path().join("certs")).expect("certs");
        mesh
    }

    fn config_path(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("{}.toml", NAMES[i]))
    }

    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join("data").join(NAMES[i])
    }

    fn write_config(&self, i: usize) {
        let mut text = format!(
            "{SETTINGS}\n[tls]\nca = \"certs/ca.pem\"\n\n[persistence]\ndata_dir = \"data\"\n\
             durability = \"always\"\nsnapshot_every_frames = 500\n"
        );
        for (j, p) in self.ports.iter().enumerate() {
            let gossip = if j > i {
                self.relays[&(i, j)].addr().to_string()
            } else {
                format!("127.0.0.1:{}", p.gossip)
            };
            text.push_str(&format!(
                "\n[[regions]]\nname = \"{}\"\nid = {}\nredis = \"127.0.0.1:{}\"\n\
                 gossip = \"{gossip}\"\nhttp = \"127.0.0.1:{}\"\nclock_offset_ms = {}\n",
                NAMES[j],
                j + 1,
                p.redis,
                p.http,
                if j == i { self.offsets[i] } else { 0 },
            ));
        }
        std::fs::write(self.config_path(i), text).expect("write config");
    }

    pub fn redis_url(&self, i: usize) -> String {
        format!("redis://127.0.0.1:{}/", self.ports[i].redis)
    }

    pub fn is_up(&self, i: usize) -> bool {
        self.children[i].is_some()
    }

    /// Starts region `i` with clock offset `offset_ms` (it answers once it has bound).
    pub fn start(&mut self, i: usize, offset_ms: i64) {
        assert!(self.children[i].is_none());
        self.offsets[i] = offset_ms;
        self.write_config(i);
        self.starts += 1;
        let log = self.log_path(i, self.starts);
        let child = Command::new(env!("CARGO_BIN_EXE_sessionmesh"))
            .args(["serve", "--config"])
            .arg(self.config_path(i))
            .args(["--region", NAMES[i]])
            .env("RUST_LOG", "info,quinn=warn,rustls=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn sessionmesh serve");
        self.children[i] = Some(child);
    }

    fn log_path(&self, i: usize, run: usize) -> PathBuf {
        self.dir.path().join(format!("{}-{run:03}.log", NAMES[i]))
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Prepares stopped region `i`'s data folder for its next start.
    pub fn prepare_disk(&mut self, i: usize, disk: Disk) {
        assert!(self.children[i].is_none());
        let dir = self.data_dir(i);
        match disk {
            Disk::Kept => {}
            Disk::Wiped => {
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).expect("data folder");
            }
            Disk::RolledBack => {
                let backup = self.backups[i].as_ref().expect("a backup to roll back to");
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).expect("data folder");
                copy_dir(backup.dir.path(), &dir);
            }
        }
    }

    /// Copies running region `i`'s data folder while the process is stopped (SIGSTOP ..
    /// SIGCONT), as the region's latest backup.
    pub fn backup(&mut self, i: usize, at_ms: u64) {
        let Some(child) = &self.children[i] else {
            return;
        };
        let pid = child.id() as libc::pid_t;
        let signal = |s: libc::c_int| {
            // SAFETY: kill(2) on our own child's pid, which `child` has not reaped.
            #[allow(unsafe_code)]
            let rc = unsafe { libc::kill(pid, s) };
            assert_eq!(
                rc,
                0,
                "signal {s} to {pid}: {}",
                std::io::Error::last_os_error()
            );
        };
        signal(libc::SIGSTOP);
        // Stopped means every thread: wait until the kernel says so (state `T`), so nothing
        // writes while the copy is taken.
        let stat = format!("/proc/{pid}/stat");
        let asked = std::time::Instant::now();
        while !std::fs::read_to_string(&stat).is_ok_and(|s| {
            s.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('T'))
        }) {
            assert!(
                asked.elapsed() < Duration::from_secs(5),
                "{pid} did not stop"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let copy = tempfile::tempdir().expect("temp dir");
        copy_dir(&self.data_dir(i), copy.path());
        signal(libc::SIGCONT);
        self.backups[i] = Some(Backup { dir: copy, at_ms });
    }

    pub fn relay(&self, i: usize, j: usize) -> &Relay {
        &self.relays[&(i.min(j), i.max(j))]
    }

    /// Every link forwards everything again, at once.
    pub fn heal_all(&self) {
        for r in self.relays.values() {
            r.heal();
            r.set_loss(0.0, 0.0);
            r.delay_to_a(Duration::ZERO);
            r.delay_to_b(Duration::ZERO);
        }
    }

    /// `GET /ready` on region `i`'s HTTP port: whether it answers 200.
    pub fn ready(&self, i: usize) -> bool {
        let addr = format!("127.0.0.1:{}", self.ports[i].http);
        let Ok(mut s) = std::net::TcpStream::connect(&addr) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        if s.write_all(b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .is_err()
        {
            return false;
        }
        let mut head = [0u8; 12];
        s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
    }

    /// The last `lines` lines of region `i`'s latest log.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        let Some(path) = (1..=self.starts)
            .rev()
            .map(|run| self.log_path(i, run))
            .find(|p| p.exists())
        else {
            return String::new();
        };
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        for i in 0..NAMES.len() {
            self.kill(i);
        }
    }
}

/// A connection to `url`, or why not, within a second.
pub async fn connect(url: &str) -> Result<MultiplexedConnection, String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    tokio::time::timeout(
        Duration::from_secs(1),
        client.get_multiplexed_async_connection(),
    )
    .await
    .map_err(|_| "connect timed out".to_string())?
    .map_err(|e| e.to_string())
}

/// One region's keys under `c` (the clients' prefix): value, and whether it has a TTL.
pub type Dump = BTreeMap<String, (String, i64)>;

/// Every key of region `url` with its value and PTTL, or why it could not be read.
pub async fn dump(url: &str) -> Result<Dump, String> {
    let mut c = connect(url).await?;
    let work = async {
        let mut keys = Vec::new();
        let mut cursor = 0u64;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut c)
                .await?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        keys.sort();
        keys.dedup();
        if keys.is_empty() {
            return Ok(Dump::new());
        }
        let mut pipe = redis::pipe();
        for k in &keys {
            pipe.cmd("GET").arg(k).cmd("PTTL").arg(k);
        }
        let replies: Vec<redis::Value> = pipe.query_async(&mut c).await?;
        let mut out = Dump::new();
        for (k, pair) in keys.iter().zip(replies.chunks(2)) {
            let value = match &pair[0] {
                redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                // Expired between SCAN and GET.
                redis::Value::Nil => continue,
                other => format!("{other:?}"),
            };
            let pttl = match &pair[1] {
                redis::Value::Int(n) => *n,
                _ => i64::MIN,
            };
            if pttl == -2 {
                continue;
            }
            out.insert(k.clone(), (value, pttl));
        }
        Ok::<_, redis::RedisError>(out)
    };
    tokio::time::timeout(Duration::from_secs(3), work)
        .await
        .map_err(|_| "dump timed out".to_string())?
        .map_err(|e| e.to_string())
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            // A file the node removed meanwhile (a compacted log) is simply not in the copy.
            let _ = std::fs::copy(entry.path(), &target);
        }
    }
}
