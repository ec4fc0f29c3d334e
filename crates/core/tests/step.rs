//! The step contract (`Replica::ready`): what a step reports is what it did.

// Test code: a failed unwrap is a failed test, and nothing here is reachable from outside.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use bytes::Bytes;
use sessionmesh_core::{Config, Now, RegionId, Replica};

fn run(r: &mut Replica, line: &str, t: u64) {
    let args: Vec<Bytes> = line
        .split_whitespace()
        .map(|s| Bytes::copy_from_slice(s.as_bytes()))
        .collect();
    r.execute(&args, Now::at(t));
}

#[test]
fn a_step_reports_its_write_its_records_and_an_earlier_deadline() {
    let ids = [RegionId(1), RegionId(2)];
    let mut r = Replica::new(Config {
        journal: true,
        ..Config::new(ids[0], &ids)
    });
    r.handle_connected(ids[1], Now::at(1_000));
    r.handle_timeout(Now::at(1_000));
    while r.poll_transmit().is_some() {}
    let first = r.ready();
    assert_eq!(first.step, 1);
    assert!(first.wrote.is_none());
    let idle = first.deadline.expect("timers armed");
    assert!(idle > 1_000, "nothing due right after the timers ran");

    // A read: no write, no record, the deadline unchanged.
    run(&mut r, "GET k", 1_001);
    let read = r.ready();
    assert_eq!(read.step, 2);
    assert!(read.wrote.is_none() && read.records.is_empty());
    assert_eq!(read.deadline, Some(idle));
    assert!(!read.sooner);

    // A write: its stamp, its journal record, and the flush timer armed before the others.
    run(&mut r, "SET k v", 1_002);
    let write = r.ready();
    assert_eq!(write.step, 3);
    assert_eq!(write.wrote, r.last_write());
    assert!(write.wrote.is_some());
    assert!(!write.records.is_empty());
    assert!(write.sooner && write.deadline < Some(idle), "{write:?}");

    // Two writes in one step: the later one's stamp, both journalled.
    run(&mut r, "SET a 1", 1_003);
    run(&mut r, "SET b 2", 1_003);
    let batch = r.ready();
    assert_eq!(batch.wrote, r.last_write());
    assert!(batch.records.len() >= 2);
    assert!(!batch.sooner, "the flush was already armed");
}
