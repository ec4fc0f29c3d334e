//! Chaos: three real `sessionmesh serve` processes on loopback, seeded UDP relays on every
//! link, six clients whose every operation is recorded, and a seeded nemesis that cuts, delays
//! and degrades links, isolates regions, and SIGKILLs regions and starts them again with their
//! data folder kept, emptied or rolled back to an older copy, each start with a new clock
//! offset (±200 ms). Every ~12 s it heals everything, pauses the clients, and checks (see
//! `history.rs`) that every region is ready and holds the same keys, that no value appears that
//! nobody wrote, that every acknowledged write is there (or was overwritten, or may have been
//! lost with its home region's disk, the one loss the product allows), that no deleted or
//! expired session came back, and that no TTL was dropped.
//!
//! - `CHAOS_SEED=n` replays a run's nemesis schedule and clients' choices (the seed is printed
//!   first; the interleaving of real processes is not replayable, the decisions are).
//! - `CHAOS_SECS=n` runs `n` seconds of chaos (default 48; the README gives a long run).
//! - `CHAOS_DISK=keep` never empties or rolls back a disk (only what SPEC §4's SIGKILL
//!   promise covers).
//!
//! Waiting is by polling with deadlines; the only sleeps are the nemesis's own hold times and
//! the clients' think time.

// Test code: a failed unwrap is a failed test, and nothing here is reachable from outside.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod clients;
mod history;
mod mesh;

use clients::{Shared, CLIENTS};
use history::{DiskLoss, History};
use mesh::{Disk, Dump, Mesh, NAMES};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Chaos time between quiescence points.
const PERIOD: Duration = Duration::from_secs(12);
/// How long a quiescence point may take to converge before the run fails.
const CONVERGE_DEADLINE: Duration = Duration::from_secs(40);
/// Backups are taken of each running region this often (the rollback target).
const BACKUP_EVERY: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy)]
enum Action {
    Calm {
        ms: u64,
    },
    Cut {
        a: usize,
        b: usize,
        ms: u64,
    },
    Isolate {
        r: usize,
        ms: u64,
    },
    Loss {
        a: usize,
        b: usize,
        p: f64,
        ms: u64,
    },
    Delay {
        a: usize,
        b: usize,
        delay_ms: u64,
        ms: u64,
    },
    Kill {
        r: usize,
        disk: Disk,
        down_ms: u64,
    },
    /// Isolate `r`, kill it, start it again while still isolated, heal after `ms`.
    KillIsolated {
        r: usize,
        disk: Disk,
        ms: u64,
    },
}

fn draw(rng: &mut ChaCha8Rng, may_destroy: bool) -> Action {
    let n = NAMES.len();
    let r = rng.gen_range(0..n);
    let other = (r + rng.gen_range(1..n)) % n;
    let disk = |rng: &mut ChaCha8Rng| {
        if !may_destroy {
            return Disk::Kept;
        }
        match rng.gen_range(0..3) {
            0 => Disk::Kept,
            1 => Disk::Wiped,
            _ => Disk::RolledBack,
        }
    };
    match rng.gen_range(0..100) {
        0..10 => Action::Calm {
            ms: rng.gen_range(300..1500),
        },
        10..28 => Action::Cut {
            a: r,
            b: other,
            ms: rng.gen_range(500..4000),
        },
        28..40 => Action::Isolate {
            r,
            ms: rng.gen_range(500..3000),
        },
        40..55 => Action::Loss {
            a: r,
            b: other,
            p: rng.gen_range(0.3..0.7),
            ms: rng.gen_range(1000..4000),
        },
        55..65 => Action::Delay {
            a: r,
            b: other,
            delay_ms: rng.gen_range(20..150),
            ms: rng.gen_range(1000..3000),
        },
        65..90 => Action::Kill {
            r,
            disk: disk(rng),
            down_ms: rng.gen_range(200..2000),
        },
        _ => Action::KillIsolated {
            r,
            disk: disk(rng),
            ms: rng.gen_range(1000..3000),
        },
    }
}

fn offset(rng: &mut ChaCha8Rng) -> i64 {
    rng.gen_range(-200..=200)
}

struct Run {
    mesh: Mesh,
    shared: Arc<Shared>,
    rng: ChaCha8Rng,
    seed: u64,
    last_backup: Vec<Instant>,
    actions: Vec<String>,
    converge_ms: Vec<u64>,
    performed: usize,
}

impl Run {
    fn log(&mut self, what: String) {
        let line = format!("{:>6} ms  {what}", self.shared.now_ms());
        println!("{line}");
        self.actions.push(line);
    }

    /// Holds for `ms`, taking each running region's backup when it is due.
    async fn hold(&mut self, ms: u64) {
        let until = Instant::now() + Duration::from_millis(ms);
        loop {
            for i in 0..NAMES.len() {
                if self.mesh.is_up(i) && self.last_backup[i].elapsed() >= BACKUP_EVERY {
                    let at = self.shared.now_ms();
                    self.mesh.backup(i, at);
                    self.last_backup[i] = Instant::now();
                }
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            tokio::time::sleep(left.min(Duration::from_millis(250))).await;
        }
    }

    fn kill(&mut self, r: usize, disk: Disk) -> Option<u64> {
        self.mesh.kill(r);
        let disk = match disk {
            Disk::RolledBack if self.mesh.backups[r].is_none() => Disk::Wiped,
            d => d,
        };
        let period_start = self.shared.history.lock().unwrap().period_start_ms;
        let lost_after = match disk {
            Disk::Kept => None,
            Disk::Wiped => Some(period_start),
            Disk::RolledBack => Some(
                self.mesh.backups[r]
                    .as_ref()
                    .unwrap()
                    .at_ms
                    .max(period_start),
            ),
        };
        let backup_age = self.mesh.backups[r]
            .as_ref()
            .map(|b| self.shared.now_ms() - b.at_ms);
        self.mesh.prepare_disk(r, disk);
        self.log(format!(
            "  {} killed, disk {disk:?}{}",
            NAMES[r],
            match (disk, backup_age) {
                (Disk::RolledBack, Some(age)) => format!(" (backup {age} ms old)"),
                _ => String::new(),
            }
        ));
        lost_after
    }

    /// Starts `r` again; a destroyed disk's loss window closes now.
    fn restart(&mut self, r: usize, lost_after: Option<u64>) {
        let off = offset(&mut self.rng);
        if let Some(lost_after) = lost_after {
            let killed = self.shared.now_ms();
            self.shared.history.lock().unwrap().losses.push(DiskLoss {
                region: r,
                lost_after_ms: lost_after,
                killed_ms: killed,
            });
        }
        self.mesh.start(r, off);
        self.last_backup[r] = Instant::now();
        self.log(format!("  {} started, clock offset {off} ms", NAMES[r]));
    }

    async fn perform(&mut self, action: Action) {
        self.performed += 1;
        self.log(format!("{action:?}"));
        match action {
            Action::Calm { ms } => self.hold(ms).await,
            Action::Cut { a, b, ms } => {
                self.mesh.relay(a, b).partition();
                self.hold(ms).await;
                self.mesh.relay(a, b).heal();
            }
            Action::Isolate { r, ms } => {
                self.isolate(r, true);
                self.hold(ms).await;
                self.isolate(r, false);
            }
            Action::Loss { a, b, p, ms } => {
                self.mesh.relay(a, b).set_loss(p, p);
                self.hold(ms).await;
                self.mesh.relay(a, b).set_loss(0.0, 0.0);
            }
            Action::Delay { a, b, delay_ms, ms } => {
                let relay = self.mesh.relay(a, b);
                relay.delay_to_a(Duration::from_millis(delay_ms));
                relay.delay_to_b(Duration::from_millis(delay_ms));
                self.hold(ms).await;
                let relay = self.mesh.relay(a, b);
                relay.delay_to_a(Duration::ZERO);
                relay.delay_to_b(Duration::ZERO);
            }
            Action::Kill { r, disk, down_ms } => {
                let loss = self.kill(r, disk);
                self.hold(down_ms).await;
                self.restart(r, loss);
            }
            Action::KillIsolated { r, disk, ms } => {
                self.isolate(r, true);
                self.hold(ms / 3).await;
                let loss = self.kill(r, disk);
                self.restart(r, loss);
                self.hold(ms).await;
                self.isolate(r, false);
            }
        }
    }

    fn isolate(&self, r: usize, cut: bool) {
        for o in (0..NAMES.len()).filter(|&o| o != r) {
            if cut {
                self.mesh.relay(r, o).partition();
            } else {
                self.mesh.relay(r, o).heal();
            }
        }
    }

    /// Heals everything, pauses the clients, and polls until every region is ready and all
    /// hold the same keys in a state the history allows; fails the run at the deadline.
    async fn quiesce(&mut self, label: &str) {
        self.mesh.heal_all();
        for r in 0..NAMES.len() {
            if !self.mesh.is_up(r) {
                self.restart(r, None);
            }
        }
        self.shared.paused.store(true, Ordering::SeqCst);
        let drain = Instant::now();
        while self.shared.in_flight.load(Ordering::SeqCst) > 0 {
            assert!(
                drain.elapsed() < Duration::from_secs(20),
                "clients did not pause (seed {})",
                self.seed
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let healed = Instant::now();
        loop {
            let last = match self.check().await {
                Ok(keys) => {
                    let ms = healed.elapsed().as_millis() as u64;
                    self.converge_ms.push(ms);
                    self.log(format!(
                        "quiescence {label}: all regions ready and identical, {keys} keys, \
                         history allows every one ({ms} ms after the heal)"
                    ));
                    break;
                }
                Err(why) => why,
            };
            if healed.elapsed() > CONVERGE_DEADLINE {
                self.fail(label, &last).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.shared.paused.store(false, Ordering::SeqCst);
    }

    /// One look at the cluster: `Ok(keys)` when it passes, or what is wrong.
    async fn check(&mut self) -> Result<usize, String> {
        for (r, name) in NAMES.iter().enumerate() {
            if !self.mesh.ready(r) {
                return Err(format!("{name} is not ready"));
            }
        }
        let dumps = self.dumps().await?;
        if let Some(r) = (1..dumps.len()).find(|&r| !same(&dumps[0], &dumps[r])) {
            return Err(format!(
                "{} and {} differ:\n{}",
                NAMES[0],
                NAMES[r],
                diff(&dumps[0], &dumps[r])
            ));
        }
        let now = self.shared.now_ms();
        let mut history = self.shared.history.lock().unwrap();
        let violations = history.check_quiescent(&dumps[0], now);
        if violations.is_empty() {
            return Ok(dumps[0].len());
        }
        let mut out = String::new();
        for v in &violations {
            let _ = writeln!(out, "{v}\n{}", history.describe(&v.key));
        }
        Err(out)
    }

    async fn dumps(&self) -> Result<Vec<Dump>, String> {
        let mut dumps = Vec::new();
        for (r, name) in NAMES.iter().enumerate() {
            dumps.push(
                mesh::dump(&self.mesh.redis_url(r))
                    .await
                    .map_err(|e| format!("{name}: {e}"))?,
            );
        }
        Ok(dumps)
    }

    async fn fail(&mut self, label: &str, last: &str) -> ! {
        self.shared.stop.store(true, Ordering::SeqCst);
        let mut report = format!(
            "chaos run failed at quiescence {label} (seed {}; replay with CHAOS_SEED={}):\n{last}\n\
             nemesis:\n{}\n",
            self.seed,
            self.seed,
            self.actions.join("\n")
        );
        for (r, name) in NAMES.iter().enumerate() {
            let _ = writeln!(
                report,
                "--- {name} log tail ---\n{}",
                self.mesh.log_tail(r, 25)
            );
        }
        panic!("{report}");
    }
}

/// Same keys, same values, and every TTL present on one present on all.
fn same(a: &Dump, b: &Dump) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ka, (va, ta)), (kb, (vb, tb)))| ka == kb && va == vb && (*ta > 0) == (*tb > 0))
}

fn diff(a: &Dump, b: &Dump) -> String {
    let mut out = String::new();
    for k in a
        .keys()
        .chain(b.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let (x, y) = (a.get(k), b.get(k));
        if x != y {
            let _ = writeln!(out, "  {k}: {x:?} vs {y:?}");
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_converges_and_loses_nothing_acknowledged() {
    let seed = std::env::var("CHAOS_SEED")
        .ok()
        .map(|s| s.parse().expect("CHAOS_SEED is a number"))
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let secs: u64 = std::env::var("CHAOS_SECS")
        .ok()
        .map(|s| s.parse().expect("CHAOS_SECS is a number"))
        .unwrap_or(48);
    let keep_disk = std::env::var("CHAOS_DISK").is_ok_and(|v| v == "keep");
    println!("chaos: CHAOS_SEED={seed} CHAOS_SECS={secs} keep_disk={keep_disk}");

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut mesh = Mesh::new(seed).await;
    let offsets: Vec<i64> = (0..NAMES.len()).map(|_| offset(&mut rng)).collect();
    for (r, off) in offsets.iter().enumerate() {
        mesh.start(r, *off);
    }
    let shared = Arc::new(Shared {
        history: Mutex::new(History::default()),
        urls: (0..NAMES.len()).map(|r| mesh.redis_url(r)).collect(),
        epoch: Instant::now(),
        paused: AtomicBool::new(false),
        in_flight: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
    });
    let mut run = Run {
        mesh,
        shared: shared.clone(),
        rng,
        seed,
        last_backup: vec![Instant::now(); NAMES.len()],
        actions: Vec::new(),
        converge_ms: Vec::new(),
        performed: 0,
    };
    run.log(format!("started, clock offsets {offsets:?}"));
    run.quiesce("0 (start)").await;

    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| tokio::spawn(clients::run_client(shared.clone(), c, seed)))
        .collect();
    let end = Instant::now() + Duration::from_secs(secs);
    let mut period = 0;
    let mut destroying_kills = 0;
    while Instant::now() < end {
        period += 1;
        let period_end = (Instant::now() + PERIOD).min(end);
        // At most one disk-destroying restart per period: two could destroy the only two
        // copies of a write, which no replicated store survives.
        let mut destroyed = false;
        while Instant::now() < period_end {
            let action = draw(&mut run.rng, !destroyed && !keep_disk);
            if let Action::Kill { disk, .. } | Action::KillIsolated { disk, .. } = action {
                if disk != Disk::Kept {
                    destroyed = true;
                    destroying_kills += 1;
                }
            }
            run.perform(action).await;
        }
        run.quiesce(&period.to_string()).await;
    }
    shared.stop.store(true, Ordering::SeqCst);
    shared.paused.store(false, Ordering::SeqCst);
    for c in clients {
        c.await.expect("client task");
    }
    run.quiesce("final").await;

    let (acked, unknown, not_sent) = shared.history.lock().unwrap().tally();
    let worst = run.converge_ms.iter().max().copied().unwrap_or(0);
    println!(
        "chaos passed (seed {seed}): {period} periods, {} nemesis actions, {destroying_kills} \
         disk-destroying restarts; {acked} operations acknowledged, {unknown} unanswered, \
         {not_sent} not sent; converged within {worst} ms of every heal",
        run.performed
    );
    assert!(
        acked > 500,
        "too few operations acknowledged ({acked}) to mean anything"
    );
}
