//! Small, hand-driven scenarios of the replication protocol: replicas wired directly, frames
//! delivered (or dropped) by the test. The simulator covers the same ground at scale.

// Test code: a failed unwrap is a failed test, and nothing here is reachable from outside.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use bytes::Bytes;
use sessionmesh_core::replica::{Record, Snapshot};
use sessionmesh_core::{Config, Now, RegionId, Replica, Reply};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn cmd(r: &mut Replica, line: &str, t: u64) -> Reply {
    let args: Vec<Bytes> = line.split_whitespace().map(b).collect();
    r.execute(&args, Now::at(t))
}

struct Mesh {
    rs: Vec<Replica>,
    /// Every journal record each replica produced.
    logs: Vec<Vec<Record>>,
    /// cut[i][j]: frames from i to j are dropped.
    cut: Vec<Vec<bool>>,
}

impl Mesh {
    fn new(n: u16) -> Mesh {
        let ids: Vec<RegionId> = (1..=n).map(RegionId).collect();
        let mut rs: Vec<Replica> = ids
            .iter()
            .map(|r| {
                Replica::new(Config {
                    journal: true,
                    ..Config::new(*r, &ids)
                })
            })
            .collect();
        for (i, r) in rs.iter_mut().enumerate() {
            for j in &ids {
                if j.0 as usize != i + 1 {
                    r.handle_connected(*j, Now::at(0));
                }
            }
        }
        Mesh {
            rs,
            logs: vec![Vec::new(); n as usize],
            cut: vec![vec![false; n as usize]; n as usize],
        }
    }

    /// Delivers frames until none is left, then runs timers at `t`.
    fn settle(&mut self, t: u64) {
        for _ in 0..50 {
            let mut moved = false;
            for i in 0..self.rs.len() {
                self.rs[i].handle_timeout(Now::at(t));
                while let Some(tx) = self.rs[i]
                    .poll_transmit()
                    .or_else(|| self.rs[i].poll_catchup(|_| usize::MAX))
                {
                    moved = true;
                    let j = tx.to.0 as usize - 1;
                    let recs = self.rs[i].ready().records;
                    self.logs[i].extend(recs);
                    if !self.cut[i][j] {
                        let from = RegionId(i as u16 + 1);
                        self.rs[j]
                            .handle_frame(from, &tx.bytes, Now::at(t))
                            .unwrap();
                    }
                }
            }
            if !moved {
                for (i, r) in self.rs.iter_mut().enumerate() {
                    self.logs[i].extend(r.ready().records);
                }
                return;
            }
        }
    }
}

#[test]
fn write_replicates_and_delete_wins() {
    let mut m = Mesh::new(2);
    m.settle(1);
    assert_eq!(cmd(&mut m.rs[0], "HSET s user ann", 1000), Reply::Int(1));
    let before = m.rs[0].peer_status()[0].clone();
    assert_eq!(
        before.lag_writes, 1,
        "one write not yet acknowledged: {before:?}"
    );
    m.settle(1010);
    let after = m.rs[0].peer_status()[0].clone();
    assert_eq!(after.lag_writes, 0, "acknowledged: {after:?}");
    assert_eq!(after.lag_ms, 0);
    assert!(after.traffic.frames_sent > before.traffic.frames_sent);
    assert!(after.traffic.frames_received > 0);
    assert_eq!(cmd(&mut m.rs[1], "HGET s user", 1010), Reply::bulk("ann"));
    // Partition; region 2 logs out, region 1 (later in time) writes a field.
    m.cut[0][1] = true;
    m.cut[1][0] = true;
    assert_eq!(cmd(&mut m.rs[1], "DEL s", 2000), Reply::Int(1));
    assert_eq!(cmd(&mut m.rs[0], "HSET s cart 3", 3000), Reply::Int(1));
    m.settle(3000);
    m.cut = vec![vec![false; 2]; 2];
    m.settle(5000);
    m.settle(7000);
    for r in &mut m.rs {
        assert_eq!(cmd(r, "EXISTS s", 7000), Reply::Int(0), "logout must win");
    }
    assert_eq!(m.rs[0].digest(Now::at(7000)), m.rs[1].digest(Now::at(7000)));
}

#[test]
fn catchup_after_partition_and_gc_after_stability() {
    let mut m = Mesh::new(3);
    for i in 0..20 {
        cmd(&mut m.rs[0], &format!("SET k{i} v{i}"), 100 + i);
    }
    m.settle(200);
    m.cut[0][2] = true;
    m.cut[2][0] = true;
    m.cut[1][2] = true;
    m.cut[2][1] = true;
    for i in 0..10 {
        cmd(&mut m.rs[0], &format!("DEL k{i}"), 300 + i);
        cmd(&mut m.rs[2], &format!("SET n{i} x"), 300 + i);
    }
    m.settle(400);
    m.cut = vec![vec![false; 3]; 3];
    for t in [2000, 4000, 6000, 8000] {
        m.settle(t);
    }
    let d: Vec<u64> = m.rs.iter().map(|r| r.digest(Now::at(8000))).collect();
    assert!(d.iter().all(|x| *x == d[0]), "digests differ: {d:?}");
    assert_eq!(cmd(&mut m.rs[2], "DBSIZE", 8000), Reply::Int(20));
    for r in &m.rs {
        assert_eq!(
            r.stats().tombstones,
            0,
            "tombstones should be collected once stable: {:?}",
            r.stats()
        );
    }
}

/// A region away for more writes than its peer keeps history of is caught up anyway: the
/// peer's origin index says it cannot tell, and every key is considered.
#[test]
fn catchup_from_beyond_the_index_history_considers_every_key() {
    let mut m = Mesh::new(2);
    for i in 0..50 {
        cmd(&mut m.rs[0], &format!("SET k{i} v0"), 100 + i);
    }
    m.settle(200);
    m.cut[0][1] = true;
    m.cut[1][0] = true;
    // Thousands of overwrites of 50 keys: far more than the two entries per key kept.
    for round in 1..=100u64 {
        for i in 0..50 {
            cmd(
                &mut m.rs[0],
                &format!("SET k{i} v{round}"),
                300 + round * 60 + i,
            );
        }
    }
    m.settle(7000);
    assert_eq!(m.rs[0].stats().catchup_full_scans, 0);
    assert!(m.rs[0].stats().index_entries <= 2 * 50 + 64);
    m.cut = vec![vec![false; 2]; 2];
    for t in [8000, 10_000, 12_000] {
        m.settle(t);
    }
    assert!(
        m.rs[0].stats().catchup_full_scans >= 1,
        "{:?}",
        m.rs[0].stats()
    );
    for i in 0..50 {
        assert_eq!(
            cmd(&mut m.rs[1], &format!("GET k{i}"), 12_000),
            Reply::bulk("v100")
        );
    }
    assert_eq!(
        m.rs[0].digest(Now::at(12_000)),
        m.rs[1].digest(Now::at(12_000))
    );
}

#[test]
fn expiry_is_local_and_collected() {
    let mut m = Mesh::new(2);
    cmd(&mut m.rs[0], "SET s v PX 500", 1000);
    m.settle(1001);
    assert_eq!(cmd(&mut m.rs[1], "GET s", 1400), Reply::bulk("v"));
    assert_eq!(cmd(&mut m.rs[1], "GET s", 1501), Reply::Nil);
    for t in [3000, 5000, 7000] {
        m.settle(t);
    }
    assert_eq!(m.rs[0].stats().keys, 0);
    assert_eq!(m.rs[1].stats().keys, 0);
}

/// Replaying a replica's journal from nothing rebuilds the state it had.
fn assert_journal_rebuilds(m: &mut Mesh, t: u64) {
    for (i, r) in m.rs.iter_mut().enumerate() {
        m.logs[i].extend(r.ready().records);
        let cfg = r.config().clone();
        let back = Replica::recover(cfg, Snapshot::default(), m.logs[i].clone(), Now::at(t));
        let (a, b) = (r.snapshot(), back.snapshot());
        assert_eq!(a.keys, b.keys, "region {i}: keys differ after replay");
        assert_eq!(a.wm, b.wm, "region {i}: watermarks differ after replay");
        assert_eq!(a.last_push_to, b.last_push_to);
        assert!(back.clock_last() >= a.last_push_to);
        assert_eq!(r.digest(Now::at(t)), back.digest(Now::at(t)));
    }
}

#[test]
fn journal_replay_rebuilds_state() {
    let mut m = Mesh::new(3);
    for i in 0..30 {
        cmd(
            &mut m.rs[i % 3],
            &format!("HSET s{} f{i} v", i % 7),
            100 + i as u64,
        );
        cmd(
            &mut m.rs[(i + 1) % 3],
            &format!("EXPIRE s{} 1", i % 5),
            100 + i as u64,
        );
    }
    m.settle(200);
    cmd(&mut m.rs[0], "DEL s1 s2", 300);
    for t in [1500, 3000, 5000] {
        m.settle(t);
    }
    let stats = m.rs[0].stats();
    assert!(
        stats.collected > 0,
        "the scenario should exercise GC: {stats:?}"
    );
    assert!(m.logs[0].len() > 30);
    assert_journal_rebuilds(&mut m, 5000);
}

/// The fields-per-hash bound answers with an error and changes nothing.
#[test]
fn hash_field_limit_is_an_error_and_changes_nothing() {
    let mut r = Replica::new(Config {
        max_hash_fields: 3,
        ..Config::single()
    });
    assert_eq!(cmd(&mut r, "HSET h a 1 b 2", 10), Reply::Int(2));
    let before = r.digest(Now::at(10));
    let e = cmd(&mut r, "HSET h c 3 d 4", 11);
    assert!(
        matches!(&e, Reply::Error(m) if m.text().starts_with("ERR hash would exceed the maximum of 3 fields")),
        "{e:?}"
    );
    assert_eq!(r.digest(Now::at(11)), before);
    assert_eq!(cmd(&mut r, "HSET h a 9 c 3", 12), Reply::Int(1));
    assert_eq!(
        cmd(&mut r, "HSETNX h d 4", 13),
        Reply::Error(
            "ERR hash would exceed the maximum of 3 fields (redis.max_hash_fields)".into()
        )
    );
    assert_eq!(cmd(&mut r, "HLEN h", 14), Reply::Int(3));
}

/// Two regions catching up from nothing at once share one answer, which leaves part by part
/// only as each requester's link has room: with no room nothing leaves and nothing is lost;
/// with a little room per round the whole answer arrives, in parts no larger than the room.
#[test]
fn catchup_answers_wait_for_room_and_are_shared() {
    let ids = [RegionId(1), RegionId(2), RegionId(3)];
    let mut rs: Vec<Replica> = ids
        .iter()
        .map(|r| {
            let mut c = Config::new(*r, &ids);
            c.catchup_part_bytes = 4096;
            Replica::new(c)
        })
        .collect();
    let value = "v".repeat(60);
    for i in 0..2000 {
        cmd(
            &mut rs[0],
            &format!("SET key:{i:05} {value}"),
            1000 + i / 100,
        );
    }
    let _ = rs[0].ready();
    while rs[0].poll_transmit().is_some() {}
    // Regions 2 and 3 connect to region 1 (only), and ask it for everything.
    let t = 2000;
    for j in 1..3 {
        rs[0].handle_connected(ids[j], Now::at(t));
        rs[j].handle_connected(ids[0], Now::at(t));
    }
    for j in 1..3 {
        rs[j].handle_timeout(Now::at(t + 5000));
        while let Some(tx) = rs[j].poll_transmit() {
            if tx.to == ids[0] {
                rs[0]
                    .handle_frame(ids[j], &tx.bytes, Now::at(t + 5000))
                    .unwrap();
            }
        }
    }
    assert!(rs[0].answering());
    assert!(
        rs[0].stats().catchup_answers_shared >= 1,
        "one answer for both"
    );
    // No room: nothing leaves, and the answer waits.
    assert!(rs[0].poll_catchup(|_| 0).is_none());
    assert!(rs[0].answering());
    // 6 KiB of room per peer per round.
    let room = 6 * 1024;
    let mut parts = [0usize; 3];
    let mut rounds = 0;
    while rs[0].answering() {
        rounds += 1;
        assert!(rounds < 1000, "the answer never completes");
        let mut taken = [0usize; 3];
        while let Some(tx) = rs[0].poll_catchup(|p| room - taken[p.0 as usize - 1]) {
            let j = tx.to.0 as usize - 1;
            assert!(
                tx.bytes.len() <= room - taken[j],
                "a part larger than the room"
            );
            taken[j] += tx.bytes.len();
            parts[j] += 1;
            rs[j]
                .handle_frame(ids[0], &tx.bytes, Now::at(t + 5000))
                .unwrap();
        }
        while rs[0].poll_transmit().is_some() {}
    }
    println!("parts sent: {parts:?} in {rounds} rounds");
    assert!(parts[1] > 20 && parts[1] == parts[2], "{parts:?}");
    for r in &mut rs[1..] {
        assert_eq!(r.live(Now::at(t + 5000)).len(), 2000);
    }
    assert_eq!(
        rs[0].digest(Now::at(t + 5000)),
        rs[1].digest(Now::at(t + 5000))
    );
}

mod counters {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        /// `INCRBY n by` in a region.
        Incr(usize, i64),
        /// `HINCRBY h <field> by` in a region.
        HIncr(usize, u8, i64),
        /// Cut (or restore) the link between two regions, both ways.
        Link(usize, usize, bool),
        /// Deliver what can be delivered.
        Settle,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0usize..3, -50i64..100).prop_map(|(r, by)| Op::Incr(r, by)),
            3 => (0usize..3, 0u8..3, -5i64..20).prop_map(|(r, f, by)| Op::HIncr(r, f, by)),
            2 => (0usize..3, 0usize..3, any::<bool>()).prop_map(|(a, b, cut)| Op::Link(a, b, cut)),
            2 => Just(Op::Settle),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Increments made in three regions under random cuts, heals and deliveries add up to
        /// the same sum in every region once the links are back (issue 14 item 3).
        #[test]
        fn increments_under_partitions_add_up_everywhere(ops in prop::collection::vec(op(), 1..60)) {
            let mut m = Mesh::new(3);
            // The counters exist everywhere first (concurrent creations would be two
            // incarnations, of which the later wins whole).
            cmd(&mut m.rs[0], "SET n 0", 10);
            cmd(&mut m.rs[0], "HSET h f0 0 f1 0 f2 0", 10);
            m.settle(20);
            let (mut n, mut fields) = (0i64, [0i64; 3]);
            let mut t = 100;
            for op in &ops {
                t += 7;
                match *op {
                    Op::Incr(r, by) => {
                        let line = format!("INCRBY n {by}");
                        prop_assert!(matches!(cmd(&mut m.rs[r], &line, t), Reply::Int(_)));
                        n += by;
                    }
                    Op::HIncr(r, f, by) => {
                        let line = format!("HINCRBY h f{f} {by}");
                        prop_assert!(matches!(cmd(&mut m.rs[r], &line, t), Reply::Int(_)));
                        fields[f as usize] += by;
                    }
                    Op::Link(a, b, cut) if a != b => {
                        m.cut[a][b] = cut;
                        m.cut[b][a] = cut;
                    }
                    Op::Link(..) => {}
                    Op::Settle => m.settle(t),
                }
            }
            m.cut = vec![vec![false; 3]; 3];
            for k in 1..=4 {
                m.settle(t + k * 2000);
            }
            let end = t + 8000;
            for (i, r) in m.rs.iter_mut().enumerate() {
                prop_assert_eq!(cmd(r, "GET n", end), Reply::bulk(n.to_string()), "region {}", i + 1);
                for (f, want) in fields.iter().enumerate() {
                    let got = cmd(r, &format!("HGET h f{f}"), end);
                    prop_assert_eq!(got, Reply::bulk(want.to_string()), "region {} field f{}", i + 1, f);
                }
            }
            let d: Vec<u64> = m.rs.iter().map(|r| r.digest(Now::at(end))).collect();
            prop_assert!(d.iter().all(|x| *x == d[0]), "digests differ: {:?}", d);
        }
    }
}

/// `SELECT`, `FLUSHDB` and `FLUSHALL` across regions (issue 14 items 4 and 5).
mod flushes {
    use super::*;
    use proptest::prelude::*;
    use sessionmesh_core::cmd::Command;

    /// A command line run in database `db` of a region at time `t`.
    fn in_db(r: &mut Replica, db: u8, line: &str, t: u64) -> Reply {
        let args: Vec<Bytes> = line.split_whitespace().map(b).collect();
        match Command::parse(args) {
            Ok(c) => r.run(&c.in_db(db), Now::at(t)),
            Err(e) => e,
        }
    }

    fn dbsize(r: &mut Replica, db: u8, t: u64) -> Reply {
        in_db(r, db, "DBSIZE", t)
    }

    /// A flush made while cut off deletes, once the link is back, every key the flusher held
    /// and the writes made concurrently into those keys (delete wins, as for `DEL`); a key
    /// created elsewhere concurrently survives when its creation is stamped after the flush
    /// and dies when stamped before; a key created after the flush was seen survives; other
    /// databases are untouched by `FLUSHDB`; and the tombstones are collected once stable
    /// while nothing comes back.
    #[test]
    fn flush_kills_what_it_covers_and_nothing_else() {
        let mut m = Mesh::new(3);
        for r in 0..3 {
            for i in 0..10 {
                cmd(&mut m.rs[r], &format!("HSET s{r}{i} user u"), 100 + i);
            }
            in_db(&mut m.rs[r], 2, &format!("SET other{r} x"), 120);
        }
        m.settle(200);
        assert_eq!(dbsize(&mut m.rs[2], 0, 200), Reply::Int(30));
        // Region 1 is cut off from both others.
        for j in 1..3 {
            m.cut[0][j] = true;
            m.cut[j][0] = true;
        }
        // Region 2 writes into a session region 1 is about to flush (it never sees the flush
        // first), and creates one key before the flush's time and one after.
        assert_eq!(cmd(&mut m.rs[1], "HSET s00 cart 3", 300), Reply::Int(1));
        assert_eq!(cmd(&mut m.rs[1], "SET before 1", 350), Reply::OK);
        assert_eq!(cmd(&mut m.rs[0], "FLUSHDB", 400), Reply::OK);
        assert_eq!(dbsize(&mut m.rs[0], 0, 400), Reply::Int(0));
        assert_eq!(
            dbsize(&mut m.rs[0], 2, 400),
            Reply::Int(3),
            "FLUSHDB is one database"
        );
        assert_eq!(cmd(&mut m.rs[2], "SET after 1", 500), Reply::OK);
        assert_eq!(cmd(&mut m.rs[0], "SET mine 1", 600), Reply::OK);
        m.settle(700);
        m.cut = vec![vec![false; 3]; 3];
        for t in [2000, 4000, 6000, 8000, 10_000] {
            m.settle(t);
        }
        for (i, r) in m.rs.iter_mut().enumerate() {
            let keys = in_db(r, 0, "KEYS *", 10_000);
            let want = Reply::Array(vec![Reply::bulk("after"), Reply::bulk("mine")]);
            assert_eq!(keys, want, "region {}", i + 1);
            assert_eq!(dbsize(r, 2, 10_000), Reply::Int(3), "region {}", i + 1);
            assert_eq!(
                r.stats().tombstones,
                0,
                "region {}: tombstones collected once stable",
                i + 1
            );
        }
        let d: Vec<u64> = m.rs.iter().map(|r| r.digest(Now::at(10_000))).collect();
        assert!(d.iter().all(|x| *x == d[0]), "digests differ: {d:?}");
        // Each journal, flush marker included, rebuilds its region's state.
        assert_journal_rebuilds(&mut m, 10_000);
    }

    /// `FLUSHALL` covers every database; a later `FLUSHDB` of one, and the order the markers
    /// arrive in, change nothing about the outcome.
    #[test]
    fn flushall_covers_every_database() {
        let mut m = Mesh::new(2);
        for db in 0..4u8 {
            in_db(&mut m.rs[0], db, &format!("SET k{db} v"), 100);
        }
        m.settle(200);
        assert_eq!(dbsize(&mut m.rs[1], 3, 200), Reply::Int(1));
        assert_eq!(in_db(&mut m.rs[1], 3, "FLUSHALL ASYNC", 300), Reply::OK);
        assert_eq!(in_db(&mut m.rs[1], 1, "SET fresh v", 310), Reply::OK);
        m.settle(400);
        for r in &mut m.rs {
            for db in 0..4u8 {
                let want = if db == 1 { 1 } else { 0 };
                assert_eq!(dbsize(r, db, 400), Reply::Int(want), "db {db}");
            }
            assert_eq!(in_db(r, 1, "GET fresh", 400), Reply::bulk("v"));
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        /// `SET k<key> v` in a region and database.
        Set(usize, u8, u8),
        /// `HSET k<key> f<field> v`.
        HSet(usize, u8, u8, u8),
        /// `DEL k<key>`.
        Del(usize, u8, u8),
        /// `FLUSHDB` of a database.
        FlushDb(usize, u8),
        /// `FLUSHALL`.
        FlushAll(usize),
        /// Cut (or restore) the link between two regions, both ways.
        Link(usize, usize, bool),
        /// Deliver what can be delivered.
        Settle,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0usize..3, 0u8..3, 0u8..6).prop_map(|(r, d, k)| Op::Set(r, d, k)),
            3 => (0usize..3, 0u8..3, 0u8..6, 0u8..3).prop_map(|(r, d, k, f)| Op::HSet(r, d, k, f)),
            1 => (0usize..3, 0u8..3, 0u8..6).prop_map(|(r, d, k)| Op::Del(r, d, k)),
            1 => (0usize..3, 0u8..3).prop_map(|(r, d)| Op::FlushDb(r, d)),
            1 => (0usize..3).prop_map(Op::FlushAll),
            2 => (0usize..3, 0usize..3, any::<bool>()).prop_map(|(a, b, cut)| Op::Link(a, b, cut)),
            2 => Just(Op::Settle),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Writes, deletes and flushes in three regions under random cuts and deliveries
        /// converge to one state once the links are back (digests and every database's size
        /// equal everywhere, journals rebuild it); a flush made after that empties every
        /// region, and a write after it is seen everywhere.
        #[test]
        fn flushes_converge_under_partitions(ops in prop::collection::vec(op(), 1..50)) {
            let mut m = Mesh::new(3);
            let mut t = 100;
            for op in &ops {
                t += 7;
                let r = match *op {
                    Op::Set(r, d, k) => in_db(&mut m.rs[r], d, &format!("SET k{k} v{t}"), t),
                    Op::HSet(r, d, k, f) => {
                        in_db(&mut m.rs[r], d, &format!("HSET k{k} f{f} v{t}"), t)
                    }
                    Op::Del(r, d, k) => in_db(&mut m.rs[r], d, &format!("DEL k{k}"), t),
                    Op::FlushDb(r, d) => in_db(&mut m.rs[r], d, "FLUSHDB", t),
                    Op::FlushAll(r) => in_db(&mut m.rs[r], 0, "FLUSHALL", t),
                    Op::Link(a, b, cut) => {
                        if a != b {
                            m.cut[a][b] = cut;
                            m.cut[b][a] = cut;
                        }
                        Reply::OK
                    }
                    Op::Settle => {
                        m.settle(t);
                        Reply::OK
                    }
                };
                // A type conflict (HSET on a string) is an error reply, as from Redis.
                prop_assert!(!matches!(r, Reply::Error(ref e) if !e.text().starts_with("WRONGTYPE")), "{:?}: {:?}", op, r);
            }
            m.cut = vec![vec![false; 3]; 3];
            for k in 1..=4 {
                m.settle(t + k * 2000);
            }
            let end = t + 8000;
            let d: Vec<u64> = m.rs.iter().map(|r| r.digest(Now::at(end))).collect();
            prop_assert!(d.iter().all(|x| *x == d[0]), "digests differ: {:?}", d);
            for db in 0..3u8 {
                let sizes: Vec<Reply> = m.rs.iter_mut().map(|r| dbsize(r, db, end)).collect();
                prop_assert!(sizes.iter().all(|s| *s == sizes[0]), "db {} sizes {:?}", db, sizes);
            }
            assert_journal_rebuilds(&mut m, end);
            prop_assert_eq!(in_db(&mut m.rs[1], 0, "FLUSHALL", end + 1), Reply::OK);
            prop_assert_eq!(in_db(&mut m.rs[2], 2, "SET last v", end + 2), Reply::OK);
            m.settle(end + 100);
            for (i, r) in m.rs.iter_mut().enumerate() {
                for db in 0..3u8 {
                    let want = i64::from(db == 2);
                    prop_assert_eq!(dbsize(r, db, end + 100), Reply::Int(want), "region {} db {}", i + 1, db);
                }
            }
        }
    }
}

/// Sets are add-wins observed-remove sets: the laws from the issue, on replicas exchanging
/// real frames.
mod sets {
    use super::*;
    use proptest::prelude::*;

    fn members(r: &mut Replica, key: &str, t: u64) -> Vec<String> {
        match cmd(r, &format!("SMEMBERS {key}"), t) {
            Reply::Set(items) => items
                .into_iter()
                .map(|m| match m {
                    Reply::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
                    other => panic!("member {other:?}"),
                })
                .collect(),
            other => panic!("SMEMBERS {key}: {other:?}"),
        }
    }

    /// During a partition region 1 removes a member while region 2 adds it again (with an
    /// earlier clock even) and adds another: both regions end with the member (add wins). A
    /// member removed where its add was seen and not re-added is gone everywhere. A `DEL` made
    /// while cut off beats adds made concurrently without having seen it; an `SADD` after the
    /// `DEL` was seen makes a new set.
    #[test]
    fn add_wins_over_a_concurrent_remove_and_del_wins_over_concurrent_adds() {
        let mut m = Mesh::new(2);
        assert_eq!(
            cmd(&mut m.rs[0], "SADD idx:alice s1 s2 s3", 100),
            Reply::Int(3)
        );
        assert_eq!(cmd(&mut m.rs[0], "SADD gone a b", 100), Reply::Int(2));
        m.settle(200);
        assert_eq!(members(&mut m.rs[1], "idx:alice", 200), ["s1", "s2", "s3"]);
        m.cut[0][1] = true;
        m.cut[1][0] = true;
        // Region 2's clock is behind region 1's: its add is stamped earlier than the remove.
        assert_eq!(
            cmd(&mut m.rs[0], "SREM idx:alice s1 s2", 400),
            Reply::Int(2)
        );
        assert_eq!(
            cmd(&mut m.rs[1], "SADD idx:alice s1 s4", 300),
            Reply::Int(1)
        );
        assert_eq!(cmd(&mut m.rs[0], "DEL gone", 400), Reply::Int(1));
        assert_eq!(cmd(&mut m.rs[1], "SADD gone c", 450), Reply::Int(1));
        m.settle(500);
        assert_eq!(members(&mut m.rs[0], "idx:alice", 500), ["s3"]);
        m.cut = vec![vec![false; 2]; 2];
        for t in [2000, 4000] {
            m.settle(t);
        }
        for r in &mut m.rs {
            assert_eq!(members(r, "idx:alice", 4000), ["s1", "s3", "s4"]);
            assert_eq!(cmd(r, "EXISTS gone", 4000), Reply::Int(0), "DEL wins");
        }
        assert_eq!(cmd(&mut m.rs[1], "SADD gone d", 4100), Reply::Int(1));
        m.settle(4200);
        assert_eq!(members(&mut m.rs[0], "gone", 4200), ["d"]);
        assert_journal_rebuilds(&mut m, 4200);
    }

    /// Emptying a set in one region while another adds to it concurrently: the add survives
    /// (the emptied set's incarnation is reused, not replaced), and a later local `SADD` in the
    /// emptying region does not discard it either.
    #[test]
    fn an_emptied_set_keeps_concurrent_adds() {
        let mut m = Mesh::new(2);
        assert_eq!(cmd(&mut m.rs[0], "SADD idx:bob s1", 100), Reply::Int(1));
        m.settle(200);
        m.cut[0][1] = true;
        m.cut[1][0] = true;
        assert_eq!(cmd(&mut m.rs[0], "SREM idx:bob s1", 300), Reply::Int(1));
        assert_eq!(cmd(&mut m.rs[0], "EXISTS idx:bob", 300), Reply::Int(0));
        assert_eq!(
            cmd(&mut m.rs[0], "TYPE idx:bob", 300),
            Reply::Simple("none")
        );
        assert_eq!(cmd(&mut m.rs[0], "SADD idx:bob s2", 350), Reply::Int(1));
        assert_eq!(cmd(&mut m.rs[1], "SADD idx:bob s3", 320), Reply::Int(1));
        m.cut = vec![vec![false; 2]; 2];
        for t in [2000, 4000] {
            m.settle(t);
        }
        for r in &mut m.rs {
            assert_eq!(members(r, "idx:bob", 4000), ["s2", "s3"]);
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        /// `SADD k<key> m<member>` in a region.
        Add(usize, u8, u8),
        /// `SREM k<key> m<member>`.
        Rem(usize, u8, u8),
        /// `SPOP k<key>`.
        Pop(usize, u8),
        /// `DEL k<key>`.
        Del(usize, u8),
        /// `SUNIONSTORE k<dst> k<a> k<b>`.
        Union(usize, u8, u8, u8),
        /// `ZADD z<key> <score> m<member>` (sorted sets converge too).
        ZAdd(usize, u8, u8, u8),
        /// `ZREM z<key> m<member>`.
        ZRem(usize, u8, u8),
        /// Cut (or restore) the link between two regions, both ways.
        Link(usize, usize, bool),
        /// Deliver what can be delivered.
        Settle,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            5 => (0usize..3, 0u8..3, 0u8..5).prop_map(|(r, k, x)| Op::Add(r, k, x)),
            3 => (0usize..3, 0u8..3, 0u8..5).prop_map(|(r, k, x)| Op::Rem(r, k, x)),
            1 => (0usize..3, 0u8..3).prop_map(|(r, k)| Op::Pop(r, k)),
            1 => (0usize..3, 0u8..3).prop_map(|(r, k)| Op::Del(r, k)),
            1 => (0usize..3, 0u8..3, 0u8..3, 0u8..3).prop_map(|(r, d, a, b)| Op::Union(r, d, a, b)),
            2 => (0usize..3, 0u8..2, 0u8..4, 0u8..5).prop_map(|(r, k, x, s)| Op::ZAdd(r, k, x, s)),
            1 => (0usize..3, 0u8..2, 0u8..4).prop_map(|(r, k, x)| Op::ZRem(r, k, x)),
            2 => (0usize..3, 0usize..3, any::<bool>()).prop_map(|(a, b, cut)| Op::Link(a, b, cut)),
            2 => Just(Op::Settle),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Set writes in three regions under random cuts converge once the links are back
        /// (digests and every set equal everywhere, journals rebuild it), and while every
        /// link is up and delivered after each command, the regions answer as one Redis
        /// would: the model is a plain map of sets.
        #[test]
        fn sets_converge_under_partitions(ops in prop::collection::vec(op(), 1..60)) {
            let mut m = Mesh::new(3);
            let mut t = 100;
            for op in &ops {
                t += 7;
                let r = match *op {
                    Op::Add(r, k, x) => cmd(&mut m.rs[r], &format!("SADD k{k} m{x}"), t),
                    Op::Rem(r, k, x) => cmd(&mut m.rs[r], &format!("SREM k{k} m{x}"), t),
                    Op::Pop(r, k) => cmd(&mut m.rs[r], &format!("SPOP k{k}"), t),
                    Op::Del(r, k) => cmd(&mut m.rs[r], &format!("DEL k{k}"), t),
                    Op::Union(r, d, a, b) => {
                        cmd(&mut m.rs[r], &format!("SUNIONSTORE k{d} k{a} k{b}"), t)
                    }
                    Op::ZAdd(r, k, x, s) => cmd(&mut m.rs[r], &format!("ZADD z{k} {s} m{x}"), t),
                    Op::ZRem(r, k, x) => cmd(&mut m.rs[r], &format!("ZREM z{k} m{x}"), t),
                    Op::Link(a, b, cut) => {
                        if a != b {
                            m.cut[a][b] = cut;
                            m.cut[b][a] = cut;
                        }
                        Reply::OK
                    }
                    Op::Settle => {
                        m.settle(t);
                        Reply::OK
                    }
                };
                prop_assert!(!matches!(r, Reply::Error(_)), "{:?}: {:?}", op, r);
            }
            m.cut = vec![vec![false; 3]; 3];
            for k in 1..=4 {
                m.settle(t + k * 2000);
            }
            let end = t + 8000;
            let d: Vec<u64> = m.rs.iter().map(|r| r.digest(Now::at(end))).collect();
            prop_assert!(d.iter().all(|x| *x == d[0]), "digests differ: {:?}", d);
            for k in 0..3 {
                let all: Vec<Vec<String>> =
                    m.rs.iter_mut().map(|r| members(r, &format!("k{k}"), end)).collect();
                prop_assert!(all.iter().all(|s| *s == all[0]), "k{} differs: {:?}", k, all);
            }
            for k in 0..2 {
                let all: Vec<Reply> = m
                    .rs
                    .iter_mut()
                    .map(|r| cmd(r, &format!("ZRANGE z{k} 0 -1 WITHSCORES"), end))
                    .collect();
                prop_assert!(all.iter().all(|s| *s == all[0]), "z{} differs: {:?}", k, all);
            }
            assert_journal_rebuilds(&mut m, end);
        }

        /// Connected and delivered after every command, three regions are one Redis: each
        /// reply and each set is a plain model's.
        #[test]
        fn connected_regions_answer_as_one_server(ops in prop::collection::vec(op(), 1..60)) {
            let mut m = Mesh::new(3);
            let mut model: std::collections::BTreeMap<u8, std::collections::BTreeSet<u8>> =
                Default::default();
            let mut t = 100;
            for op in &ops {
                t += 7;
                match *op {
                    Op::Add(r, k, x) => {
                        let s = model.entry(k).or_default();
                        let want = i64::from(s.insert(x));
                        prop_assert_eq!(cmd(&mut m.rs[r], &format!("SADD k{k} m{x}"), t), Reply::Int(want));
                    }
                    Op::Rem(r, k, x) => {
                        let want = i64::from(model.get_mut(&k).is_some_and(|s| s.remove(&x)));
                        prop_assert_eq!(cmd(&mut m.rs[r], &format!("SREM k{k} m{x}"), t), Reply::Int(want));
                    }
                    Op::Del(r, k) => {
                        let want = i64::from(model.remove(&k).is_some_and(|s| !s.is_empty()));
                        prop_assert_eq!(cmd(&mut m.rs[r], &format!("DEL k{k}"), t), Reply::Int(want));
                    }
                    Op::Union(r, d, a, b) => {
                        let mut u = model.get(&a).cloned().unwrap_or_default();
                        u.extend(model.get(&b).cloned().unwrap_or_default());
                        let want = u.len() as i64;
                        model.insert(d, u);
                        prop_assert_eq!(cmd(&mut m.rs[r], &format!("SUNIONSTORE k{d} k{a} k{b}"), t), Reply::Int(want));
                    }
                    Op::Pop(r, k) => {
                        let got = cmd(&mut m.rs[r], &format!("SPOP k{k}"), t);
                        let s = model.entry(k).or_default();
                        match got {
                            Reply::Nil => prop_assert!(s.is_empty()),
                            Reply::Bulk(b) => {
                                let x: u8 = String::from_utf8_lossy(&b[1..]).parse().unwrap_or(99);
                                prop_assert!(s.remove(&x), "popped m{} not in {:?}", x, s);
                            }
                            other => prop_assert!(false, "SPOP: {:?}", other),
                        }
                    }
                    Op::Link(..) | Op::Settle | Op::ZAdd(..) | Op::ZRem(..) => continue,
                }
                m.settle(t + 1);
                t += 1;
                for k in 0..3u8 {
                    let want: Vec<String> = model
                        .get(&k)
                        .map(|s| s.iter().map(|x| format!("m{x}")).collect())
                        .unwrap_or_default();
                    for r in &mut m.rs {
                        prop_assert_eq!(members(r, &format!("k{k}"), t), want.clone());
                    }
                }
            }
        }
    }
}

/// Sorted sets: members merge as a set's (add wins), a score written in two regions at once
/// takes the later write.
mod zsets {
    use super::*;

    fn range(r: &mut Replica, key: &str, t: u64) -> Vec<(String, String)> {
        match cmd(r, &format!("ZRANGE {key} 0 -1 WITHSCORES"), t) {
            Reply::Pairs(p) => p
                .into_iter()
                .map(|(m, s)| match (m, s) {
                    (Reply::Bulk(m), Reply::Double(x)) => {
                        (String::from_utf8_lossy(&m).into_owned(), x.text())
                    }
                    other => panic!("pair {other:?}"),
                })
                .collect(),
            other => panic!("ZRANGE {key}: {other:?}"),
        }
    }

    #[test]
    fn scores_take_the_later_write_and_members_add_win() {
        let mut m = Mesh::new(2);
        assert_eq!(
            cmd(&mut m.rs[0], "ZADD exp 100 s1 200 s2 300 s3", 100),
            Reply::Int(3)
        );
        m.settle(200);
        m.cut[0][1] = true;
        m.cut[1][0] = true;
        // Region 1 re-scores s1 and removes s2; region 2 re-scores s1 later and re-adds s2.
        assert_eq!(cmd(&mut m.rs[0], "ZADD exp 150 s1", 300), Reply::Int(0));
        assert_eq!(cmd(&mut m.rs[0], "ZREM exp s2 s3", 310), Reply::Int(2));
        assert_eq!(
            cmd(&mut m.rs[1], "ZADD exp 175 s1 250 s2", 320),
            Reply::Int(0)
        );
        m.cut = vec![vec![false; 2]; 2];
        for t in [2000, 4000] {
            m.settle(t);
        }
        let want: Vec<(String, String)> = [("s1", "175"), ("s2", "250")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        for r in &mut m.rs {
            assert_eq!(range(r, "exp", 4000), want);
            assert_eq!(
                cmd(r, "ZRANGEBYSCORE exp -inf 200", 4000),
                Reply::Array(vec![Reply::bulk("s1")])
            );
        }
        assert_journal_rebuilds(&mut m, 4000);
    }
}
