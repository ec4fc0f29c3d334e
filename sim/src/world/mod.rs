//! The discrete-event world: one queue ordered by `(time, seq)`, one ChaCha RNG, `n` real
//! replicas.
//!
//! [`run`] builds the world for a seed, draws (or takes) the fault [`Schedule`], and processes
//! events in order until the regions have converged after the heal (or a deadline passed).
//! Time jumps from event to event; nothing steps per millisecond. Each replica is driven as the
//! core's docs ask: after every `execute` / `handle_*` call the world drains `poll_transmit`,
//! `poll_catchup` (as far as the links' queues have room: `route.rs`) and `poll_event`, and
//! re-arms the replica's single timer from `poll_timeout`; a catch-up part waiting for room is
//! taken when a queued frame is out (`Ev::Pump`).
//!
//! The phases of a run:
//!
//! 1. `0 .. duration_ms`: client traffic ([`crate::workload`]), partitions, crashes and clock
//!    steps as scheduled, random loss, duplication and jitter on every frame.
//! 2. At `duration_ms` ("heal"): traffic stops, every link is repaired, crashed regions restart.
//! 3. Every `probe_every_ms`: are all digests (viewed at one common time) equal, with nothing
//!    dirty or held? The first time they are, the world lingers `linger_ms` more and then runs
//!    the final oracles. If `settle_ms` passes first: "did not converge".
//!
//! Determinism: all randomness comes from the one RNG, all collections that reach output are
//! ordered, and the trace hash folds in every processed event.
//!
//! Files: this one holds the queue, the replicas' driving (`drain`, timers) and client traffic;
//! `route.rs` frames through the links' queues and their delivery; `faults.rs` partitions,
//! crashes and link notifications; `quiesce.rs` sampling, the heal, convergence probes and the
//! final oracles.

mod faults;
mod quiesce;
mod region;
mod route;

use region::Shards;

use crate::clock::WallClock;
use crate::config::{Disk, Schedule, SimConfig};
use crate::net::{Capacity, Links, Network};
use crate::oracle::{rid, Oracles};
use crate::outcome::{Oracle, Outcome, Summary};
use crate::trace::TraceHash;
use crate::workload::{OpKind, Workload};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sessionmesh_core::{Channel, Config, Event, Now, RegionId, Reply};
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Runs one seed under `cfg` and reports what happened.
///
/// Panics if `cfg.schedule` is invalid for `cfg.regions` (see [`Schedule::validate`]), or
/// `cfg.queue_bytes` cannot hold the replicas' largest frame (the node refuses that too).
pub fn run(seed: u64, cfg: &SimConfig) -> Outcome {
    World::new(seed, cfg).run()
}

/// The fault schedule `run(seed, cfg)` uses: `cfg.schedule`, or the one drawn from the seed.
pub fn schedule_for(seed: u64, cfg: &SimConfig) -> Schedule {
    match &cfg.schedule {
        Some(s) => s.clone(),
        None => {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let n = cfg.regions.max(1);
            Schedule::random(
                &mut rng,
                &cfg.chaos,
                n,
                cfg.duration_ms,
                cfg.idle_timeout_ms,
            )
        }
    }
}

/// A region's persisted state: its last snapshot and the journal since.
#[derive(Clone, Debug, Default)]
struct Durable {
    snapshot: sessionmesh_core::replica::Snapshot,
    log: Vec<sessionmesh_core::replica::Record>,
}

/// Journal records between two checkpoints of a simulated region.
const CHECKPOINT_RECORDS: usize = 4_000;

/// How often a copy of each region's state is kept for restarts from an older backup.
const BACKUP_EVERY_MS: u64 = 2_000;

/// How many such copies are kept (the oldest is dropped).
const BACKUPS_KEPT: usize = 32;

/// A restart closure holding what each shard of a crashed region persisted.
type Restore = Box<dyn FnOnce(Vec<Config>, Now) -> Shards>;

#[derive(Debug)]
enum Ev {
    Client,
    Timer {
        region: usize,
        gen: u64,
    },
    Deliver {
        from: usize,
        to: usize,
        channel: Channel,
        bytes: Vec<u8>,
        epoch: u64,
    },
    PartitionStart(usize),
    PartitionEnd(usize),
    Crash {
        region: usize,
        down_ms: u64,
        disk: Disk,
    },
    Restart {
        region: usize,
        crash: u64,
    },
    ClockStep {
        region: usize,
        delta_ms: i64,
    },
    LinkIdle {
        a: usize,
        b: usize,
        gen: u64,
    },
    LinkConnect {
        a: usize,
        b: usize,
        gen: u64,
    },
    /// A catch-up frame of `region`'s is out: there is room for the next part.
    Pump {
        region: usize,
        at: u64,
    },
    Sample,
    Heal,
    Probe,
    Final,
}

struct Queued {
    at: u64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    /// Reversed: `BinaryHeap` is a max-heap and we want the earliest `(at, seq)` first.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

struct Node {
    /// The region's shards, while it is up.
    replica: Option<Shards>,
    restore: Option<Restore>,
    /// What each shard has persisted, as the node does: its last snapshot and every journal
    /// record since. A crash restarts through `Replica::recover` from exactly these, the code
    /// path the node's recovery uses.
    durable: Vec<Durable>,
    /// Per shard, the greatest stamp it issued before the region's last crash.
    issued_before_crash: Vec<sessionmesh_core::Hlc>,
    /// Per shard, after a restart from less than everything: its first stamp must be above
    /// this.
    must_exceed: Vec<Option<sessionmesh_core::Hlc>>,
    /// Copies of its persisted state taken along the way (time, a snapshot per shard),
    /// oldest first, for restarts from an older backup.
    backups: std::collections::VecDeque<(u64, Vec<sessionmesh_core::replica::Snapshot>)>,
    /// While down: what it will restart from, for the oracles (what it still holds).
    down_view: Option<Shards>,
    crashes: u64,
    timer_gen: u64,
    timer_at: Option<u64>,
    /// When the next [`Ev::Pump`] for it is due (catch-up parts waiting for room).
    pump_at: Option<u64>,
    /// From a restart until restored: the catch-up bytes it received.
    restore_bytes: Option<u64>,
    clock: WallClock,
}

struct World<'a> {
    cfg: &'a SimConfig,
    n: usize,
    /// Shards per region.
    shards: u16,
    /// The replicas' hash table seed, from the run's seed (see `sessionmesh_core::seed`).
    hash_seed: u64,
    rng: ChaCha8Rng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Queued>,
    nodes: Vec<Node>,
    net: Network,
    cap: Capacity,
    links: Links,
    schedule: Schedule,
    active: Vec<bool>,
    workload: Workload,
    client_clock: f64,
    healed: bool,
    done: bool,
    samples: u32,
    oracles: Oracles,
    summary: Summary,
    trace: TraceHash,
    transmits: Vec<sessionmesh_core::Transmit>,
    events: Vec<Event>,
    explain: Vec<String>,
    /// What each region last held of `SimConfig::explain_key` (rendered), to log changes.
    explained: Vec<Option<String>>,
}

impl<'a> World<'a> {
    fn new(seed: u64, cfg: &'a SimConfig) -> World<'a> {
        let n = cfg.regions.max(1);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let schedule = match &cfg.schedule {
            Some(s) => {
                if let Err(e) = s.validate(n) {
                    panic!("invalid schedule: {e}");
                }
                s.clone()
            }
            None => Schedule::random(
                &mut rng,
                &cfg.chaos,
                n,
                cfg.duration_ms,
                cfg.idle_timeout_ms,
            ),
        };
        let frame = cfg
            .tuning
            .max_frame_bytes
            .unwrap_or(Config::single().max_frame_bytes);
        if cfg.queue_bytes < frame {
            panic!(
                "invalid config: queue_bytes {} is below max_frame_bytes {frame}",
                cfg.queue_bytes
            );
        }
        let workload = Workload::new(
            &mut rng,
            n,
            cfg.sessions,
            cfg.string_keys,
            cfg.zipf_s,
            cfg.home_affinity,
            cfg.flush_rate,
        )
        .with_index(cfg.principal_index);
        let net = Network::new(
            n,
            cfg.latency.clone(),
            cfg.jitter,
            schedule.loss,
            schedule.duplicate,
        );
        let mut w = World {
            cfg,
            n,
            shards: cfg.shards.max(1),
            hash_seed: seed ^ 0x5eed_0f7a_b1e5,
            rng,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes: Vec::with_capacity(n),
            net,
            cap: Capacity::new(n, cfg.link_bytes_per_ms, cfg.queue_bytes),
            links: Links::new(n),
            active: vec![false; schedule.partitions.len()],
            schedule,
            workload,
            client_clock: 0.0,
            healed: false,
            done: false,
            samples: 0,
            oracles: Oracles::with_shards(cfg.shards.max(1)),
            summary: Summary {
                seed,
                regions: n,
                duration_ms: cfg.duration_ms,
                ..Summary::default()
            },
            trace: TraceHash::new(),
            transmits: Vec::new(),
            events: Vec::new(),
            explain: Vec::new(),
            explained: vec![None; n],
        };
        for i in 0..n {
            let spec = w.schedule.clocks.get(i).copied().unwrap_or_default();
            let replica = Shards::new(w.replica_configs(i));
            let s = usize::from(w.shards);
            w.nodes.push(Node {
                replica: Some(replica),
                restore: None,
                durable: vec![Durable::default(); s],
                issued_before_crash: vec![sessionmesh_core::Hlc::ZERO; s],
                must_exceed: vec![None; s],
                backups: std::collections::VecDeque::new(),
                down_view: None,
                crashes: 0,
                timer_gen: 0,
                timer_at: None,
                pump_at: None,
                restore_bytes: None,
                clock: WallClock::new(spec),
            });
        }
        w.plan();
        w
    }

    fn explaining(&self, key: Option<&bytes::Bytes>) -> bool {
        self.cfg.explain_key.is_some() && self.cfg.explain_key.as_ref() == key
    }

    /// The configs of region `i`'s shards, in order.
    fn replica_configs(&self, i: usize) -> Vec<Config> {
        (0..self.shards)
            .map(|s| {
                let mut c = self.replica_config(i);
                c.shard = s;
                c.shards = self.shards;
                c
            })
            .collect()
    }

    fn replica_config(&self, i: usize) -> Config {
        let ids: Vec<RegionId> = (0..self.n).map(rid).collect();
        let mut c = Config::new(rid(i), &ids);
        c.faults = self.cfg.faults;
        c.record_writes = true;
        c.journal = true;
        c.hash_seed = self.hash_seed;
        let t = &self.cfg.tuning;
        if let Some(v) = t.max_clock_drift_ms {
            c.max_clock_drift_ms = v;
        }
        if let Some(v) = t.flush_interval_ms {
            c.flush_interval_ms = v;
        }
        if let Some(v) = t.catchup_interval_ms {
            c.catchup_interval_ms = v;
        }
        if let Some(v) = t.gc_interval_ms {
            c.gc_interval_ms = v;
        }
        if let Some(v) = t.tombstone_grace_ms {
            c.tombstone_grace_ms = v;
        }
        if let Some(v) = t.progress_interval_ms {
            c.progress_interval_ms = v;
        }
        if let Some(v) = t.reroute_after_ms {
            c.reroute_after_ms = v;
        }
        if let Some(v) = t.max_frame_bytes {
            c.max_frame_bytes = v;
        }
        // As the node sizes them for its transport's queues.
        c.fit_catchup_parts(self.cfg.queue_bytes);
        c
    }

    /// Puts the schedule, the first client request, sampling and the heal on the queue, and
    /// arms every replica's timer.
    fn plan(&mut self) {
        let d = self.cfg.duration_ms;
        for i in 0..self.schedule.partitions.len() {
            let p = self.schedule.partitions[i];
            if p.start_ms < d {
                self.push(p.start_ms, Ev::PartitionStart(i));
                self.push(p.end_ms.min(d), Ev::PartitionEnd(i));
            }
        }
        for c in self.schedule.crashes.clone() {
            if c.at_ms < d {
                let region = usize::from(c.region) - 1;
                self.push(
                    c.at_ms,
                    Ev::Crash {
                        region,
                        down_ms: c.down_ms,
                        disk: c.disk,
                    },
                );
            }
        }
        for s in self.schedule.steps.clone() {
            if s.at_ms < d {
                let region = usize::from(s.region) - 1;
                self.push(
                    s.at_ms,
                    Ev::ClockStep {
                        region,
                        delta_ms: s.delta_ms,
                    },
                );
            }
        }
        if self.cfg.ops_per_sec > 0.0 {
            self.schedule_client();
        }
        self.push(self.cfg.sample_every_ms.max(1), Ev::Sample);
        self.push(d, Ev::Heal);
        for a in 0..self.n {
            for b in a + 1..self.n {
                self.reassess(a, b);
            }
        }
        for i in 0..self.n {
            self.arm_timer(i, false);
        }
    }

    fn push(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Queued {
            at,
            seq: self.seq,
            ev,
        });
    }

    fn now_of(&self, i: usize) -> Now {
        Now {
            mono_ms: self.now,
            wall_ms: self.nodes[i].clock.wall(self.now),
        }
    }

    fn alive(&self, i: usize) -> bool {
        self.nodes[i].replica.is_some()
    }

    fn run(mut self) -> Outcome {
        let hard_end = self.cfg.duration_ms
            + self.cfg.settle_ms
            + self.cfg.linger_ms
            + 10 * self.cfg.probe_every_ms.max(1);
        while let Some(q) = self.queue.pop() {
            if q.at > hard_end {
                break;
            }
            self.now = q.at;
            self.summary.events += 1;
            let label = self
                .cfg
                .explain_key
                .as_ref()
                .map(|_| format!("{:?}", q.ev).chars().take(60).collect::<String>());
            self.step(q.ev);
            if let Some(label) = label {
                self.explain_changes(&label);
            }
            if self.done {
                break;
            }
        }
        if !self.done {
            // The queue ran dry or the hard end passed without a verdict.
            self.final_check("no verdict before the hard end");
        }
        self.summary.writes = self.oracles.writes();
        self.summary.distinct_keys = self.oracles.distinct_keys();
        self.trace.words(&[
            self.summary.writes,
            self.summary.frames_sent,
            self.summary.bytes_sent,
            self.oracles.violations.len() as u64,
        ]);
        Outcome {
            violations: std::mem::take(&mut self.oracles.violations),
            trace_hash: self.trace.finish(),
            summary: self.summary,
            explain: self.explain,
        }
    }

    /// Logs every region whose state of the explained key changed in the last event.
    fn explain_changes(&mut self, label: &str) {
        let Some(k) = self.cfg.explain_key.clone() else {
            return;
        };
        for i in 0..self.n {
            let now = match self.nodes[i].replica.as_ref() {
                Some(r) => format!("{:?}", r.key_state(&k)),
                None => "(down)".to_string(),
            };
            if self.explained[i].as_deref() != Some(now.as_str()) {
                let line = format!("{} {} after {label}: {now}", self.now, rid(i));
                self.explain.push(line);
                self.explained[i] = Some(now);
            }
        }
    }

    fn step(&mut self, ev: Ev) {
        match ev {
            Ev::Client => self.client(),
            Ev::Timer { region, gen } => {
                let node = &mut self.nodes[region];
                if node.timer_gen == gen && node.replica.is_some() {
                    node.timer_at = None;
                    self.trace.words(&[self.now, 4, region as u64]);
                    let now = self.now_of(region);
                    if let Some(r) = self.nodes[region].replica.as_mut() {
                        r.handle_timeout(now);
                    }
                    self.drain(region, true);
                }
            }
            Ev::Deliver {
                from,
                to,
                channel,
                bytes,
                epoch,
            } => self.deliver(from, to, channel, bytes, epoch),
            Ev::PartitionStart(i) => self.partition(i, true),
            Ev::PartitionEnd(i) => self.partition(i, false),
            Ev::Crash {
                region,
                down_ms,
                disk,
            } => self.crash(region, down_ms, disk),
            Ev::Restart { region, crash } => {
                if !self.alive(region) && self.nodes[region].crashes == crash {
                    self.restart(region);
                }
            }
            Ev::ClockStep { region, delta_ms } => {
                if !self.healed {
                    self.nodes[region].clock.step(delta_ms);
                    self.summary.clock_steps += 1;
                    self.trace
                        .words(&[self.now, 9, region as u64, delta_ms as u64]);
                }
            }
            Ev::LinkIdle { a, b, gen } => {
                if self.links.current(a, b, gen) {
                    self.cap.drop_link(a, b);
                    for (x, y) in self.links.idle(a, b) {
                        self.tell_link(x, y, false);
                    }
                }
            }
            Ev::LinkConnect { a, b, gen } => {
                if self.links.current(a, b, gen) {
                    self.cap.drop_link(a, b);
                    for (x, y) in self.links.connect(a, b) {
                        self.tell_link(x, y, false);
                    }
                    self.summary.connects += 1;
                    self.tell_link(a, b, true);
                    self.tell_link(b, a, true);
                }
            }
            Ev::Pump { region, at } => {
                if self.nodes[region].pump_at == Some(at) {
                    self.nodes[region].pump_at = None;
                    self.drain(region, false);
                }
            }
            Ev::Sample => self.sample(),
            Ev::Heal => self.heal(),
            Ev::Probe => self.probe(),
            Ev::Final => self.final_check("after lingering"),
        }
    }

    fn schedule_client(&mut self) {
        let u: f64 = self.rng.gen_range(f64::MIN_POSITIVE..1.0);
        self.client_clock += -u.ln() * 1000.0 / self.cfg.ops_per_sec;
        let at = self.client_clock.ceil() as u64;
        if at < self.cfg.duration_ms {
            self.push(at, Ev::Client);
        }
    }

    fn client(&mut self) {
        if self.healed {
            return;
        }
        let ops = self.workload.next(&mut self.rng, self.now);
        for op in ops {
            *self.summary.commands.entry(op.kind.name()).or_insert(0) += 1;
            let kind = OpKind::ALL.iter().position(|k| *k == op.kind).unwrap_or(0) as u64;
            // A restarted node holds commands back until it may stamp writes (at most the
            // clock drift bound), and refuses them (LOADING) while it restores, for at most
            // `restore_hold_ms`; the simulated clients count them as refused.
            let mono = self.now_of(op.region).mono_ms;
            let hold = self.cfg.restore_hold_ms;
            let ready = self.nodes[op.region].replica.as_ref().is_some_and(|r| {
                r.stamps_ready()
                    && r.restoring()
                        .is_none_or(|s| mono.saturating_sub(s.since_mono_ms) >= hold)
            });
            if !ready {
                self.summary.refused += 1;
                self.trace
                    .words(&[self.now, 1, op.region as u64, kind, u64::MAX]);
                continue;
            }
            let now = self.now_of(op.region);
            let reply = match self.nodes[op.region].replica.as_mut() {
                Some(r) => r.execute(&op.args, now),
                None => continue,
            };
            if reply.is_error() {
                self.summary.error_replies += 1;
            }
            self.trace
                .words(&[self.now, 1, op.region as u64, kind, reply_code(&reply)]);
            if self.explaining(op.args.get(1)) {
                let args: Vec<String> = op
                    .args
                    .iter()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect();
                let r = self.nodes[op.region].replica.as_ref();
                let hlc = r.map(|r| r.clock_last()).unwrap_or_default();
                let line = format!(
                    "{} {} {} -> {reply:?} (hlc {hlc}, wall {})",
                    self.now,
                    rid(op.region),
                    args.join(" "),
                    now.wall_ms
                );
                self.explain.push(line);
            }
            self.workload.observe(&op, &reply);
            self.drain(op.region, false);
        }
        self.schedule_client();
    }

    /// Drains a replica's outputs after a call, checks its clock and re-arms its timer.
    fn drain(&mut self, i: usize, after_timeout: bool) {
        let mut transmits = std::mem::take(&mut self.transmits);
        let mut events = std::mem::take(&mut self.events);
        let clock = {
            let node = &mut self.nodes[i];
            let Some(r) = node.replica.as_mut() else {
                return;
            };
            // Each shard's step ends here: its records reach the simulated disk before any
            // of its frames is routed below (the core's durability rule,
            // `sessionmesh_core::Ready`).
            let mut records = vec![Vec::new(); r.0.len()];
            r.drain(&mut transmits, &mut events, &mut records);
            for (s, (d, recs)) in node.durable.iter_mut().zip(records).enumerate() {
                d.log.extend(recs);
                if d.log.len() >= CHECKPOINT_RECORDS {
                    // A checkpoint, as the node's snapshot + log rotation (per shard).
                    d.snapshot = r.0[s].snapshot();
                    d.log.clear();
                }
            }
            let due = node
                .backups
                .back()
                .is_none_or(|(t, _)| self.now >= t + BACKUP_EVERY_MS);
            if due {
                node.backups.push_back((self.now, r.snapshots()));
                if node.backups.len() > BACKUPS_KEPT {
                    node.backups.pop_front();
                }
            }
            let mut firsts = Vec::new();
            let mut clocks = Vec::with_capacity(r.0.len());
            for (s, shard) in r.0.iter().enumerate() {
                let issued = shard.last_issued();
                if issued > sessionmesh_core::Hlc::ZERO {
                    if let Some(b) = node.must_exceed[s].take() {
                        firsts.push((s as u16, issued, b));
                    }
                }
                clocks.push(shard.clock_last());
            }
            (clocks, firsts)
        };
        let (clocks, firsts) = clock;
        self.take_catchup(i, &mut transmits);
        for (s, issued, before) in firsts {
            self.oracles
                .check_first_stamp(i, s, issued, before, self.now);
        }
        for (s, c) in clocks.into_iter().enumerate() {
            self.oracles
                .check_clock(i, s as u16, c, self.now, "while running");
        }
        for t in transmits.drain(..) {
            self.route(i, t);
        }
        for e in events.drain(..) {
            self.event(i, e);
        }
        self.transmits = transmits;
        self.events = events;
        self.arm_timer(i, after_timeout);
        self.schedule_pump(i);
    }

    fn arm_timer(&mut self, i: usize, after_timeout: bool) {
        let now = self.now;
        let Some(r) = self.nodes[i].replica.as_ref() else {
            return;
        };
        let at = r.poll_timeout().map(|d| {
            if after_timeout && d <= now {
                self.summary.timer_spins += 1;
                now + 1
            } else {
                d.max(now)
            }
        });
        let node = &mut self.nodes[i];
        if at != node.timer_at {
            node.timer_gen += 1;
            node.timer_at = at;
            let gen = node.timer_gen;
            if let Some(at) = at {
                self.push(at, Ev::Timer { region: i, gen });
            }
        }
    }

    fn event(&mut self, i: usize, e: Event) {
        match e {
            // The simulated clients do not subscribe.
            Event::Published { .. } | Event::Keyspace { .. } => {}
            Event::Wrote { key, delta } => {
                if self.explaining(Some(&key)) {
                    self.explain
                        .push(format!("{}   {} wrote {delta:?}", self.now, rid(i)));
                }
                self.trace.word(self.now);
                self.trace.word(50 + i as u64);
                self.trace.bytes(&key);
                let shard = sessionmesh_core::shard::shard_of_key(&key, self.shards);
                if let Some(before) = self.nodes[i].must_exceed[usize::from(shard)] {
                    let s = delta.max_stamp();
                    if s.region == rid(i) {
                        self.oracles
                            .check_first_stamp(i, shard, s.hlc, before, self.now);
                    }
                }
                self.oracles.record_write_at(i, self.now, key, *delta);
            }
            Event::ClockSkew { peer, ahead_ms } => {
                self.summary.skew_events += 1;
                self.trace
                    .words(&[self.now, 51, i as u64, u64::from(peer.0), ahead_ms]);
            }
            Event::Evicted { region } => {
                self.summary.evictions += 1;
                self.trace
                    .words(&[self.now, 52, i as u64, u64::from(region.0)]);
            }
            Event::Resynced { peer } => {
                self.summary.resyncs += 1;
                self.trace
                    .words(&[self.now, 53, i as u64, u64::from(peer.0)]);
            }
            Event::Restoring { floor } => {
                self.trace.words(&[self.now, 55, i as u64, floor.0]);
            }
            Event::Restored { after_ms, keys } => {
                self.summary.max_restore_ms = self.summary.max_restore_ms.max(after_ms);
                // One shard restored; the region is once the last one is.
                let whole = self.nodes[i]
                    .replica
                    .as_ref()
                    .is_none_or(|r| r.restoring().is_none());
                if whole {
                    self.summary.restorations += 1;
                    let bytes = self.nodes[i].restore_bytes.take().unwrap_or(0);
                    self.summary.max_restore_bytes = self.summary.max_restore_bytes.max(bytes);
                }
                self.trace.words(&[self.now, 56, i as u64, keys]);
            }
            Event::BadFrame { peer } => {
                self.trace
                    .words(&[self.now, 54, i as u64, u64::from(peer.0)]);
                let detail = format!("{} reported a bad frame from {peer}", rid(i));
                self.oracles.report(Oracle::Wire, i, self.now, detail);
            }
        }
    }
}

/// A small fingerprint of a reply for the trace.
fn reply_code(r: &Reply) -> u64 {
    match r {
        Reply::Simple(s) => 1 << 32 | s.len() as u64,
        Reply::Error(s) => 2 << 32 | s.text().len() as u64,
        Reply::Int(i) => 3 << 32 ^ *i as u64,
        Reply::Bulk(b) => 4 << 32 | b.len() as u64,
        Reply::Nil => 5 << 32,
        Reply::Array(a) => 6 << 32 | a.len() as u64,
        Reply::Map(m) => 7 << 32 | m.len() as u64,
        Reply::Status(s) => 8 << 32 | s.len() as u64,
        Reply::NilArray => 9 << 32,
        Reply::Verbatim(b) => 10 << 32 | b.len() as u64,
        Reply::Set(a) => 11 << 32 | a.len() as u64,
        Reply::Double(x) => 12 << 32 ^ x.0.to_bits(),
        Reply::Pairs(p) => 13 << 32 | p.len() as u64,
        Reply::Push(a) => 14 << 32 | a.len() as u64,
    }
}
