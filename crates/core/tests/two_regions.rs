//! Small, hand-driven scenarios of the replication protocol: replicas wired directly, frames
//! delivered (or dropped) by the test. The simulator covers the same ground at scale.

use bytes::Bytes;
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
    /// cut[i][j]: frames from i to j are dropped.
    cut: Vec<Vec<bool>>,
}

impl Mesh {
    fn new(n: u16) -> Mesh {
        let ids: Vec<RegionId> = (1..=n).map(RegionId).collect();
        let mut rs: Vec<Replica> = ids
            .iter()
            .map(|r| Replica::new(Config::new(*r, &ids)))
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
            cut: vec![vec![false; n as usize]; n as usize],
        }
    }

    /// Delivers frames until none is left, then runs timers at `t`.
    fn settle(&mut self, t: u64) {
        for _ in 0..50 {
            let mut moved = false;
            for i in 0..self.rs.len() {
                self.rs[i].handle_timeout(Now::at(t));
                while let Some(tx) = self.rs[i].poll_transmit() {
                    moved = true;
                    let j = tx.to.0 as usize - 1;
                    if !self.cut[i][j] {
                        let from = RegionId(i as u16 + 1);
                        self.rs[j]
                            .handle_frame(from, &tx.bytes, Now::at(t))
                            .unwrap();
                    }
                }
            }
            if !moved {
                return;
            }
        }
    }
}

#[test]
fn write_replicates_and_delete_wins() {
    let mut m = Mesh::new(2);
    assert_eq!(cmd(&mut m.rs[0], "HSET s user ann", 1000), Reply::Int(1));
    m.settle(1010);
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
