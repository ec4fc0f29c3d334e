//! Counters across regions, on real nodes with UDP relays that cut packets: increments made on
//! every side of a partition all count after the heal (strings, hash fields, floats); a `SET`
//! resets the count for everything it saw; a delete wins over a concurrent increment; totals
//! survive a restart from the journal.
//!
//! Every wait polls with a deadline and fails naming what did not converge.

use crate::common::cluster::{eventually, Cluster, DEADLINE, NAMES};
use std::time::Duration;

async fn converge_field(c: &Cluster, key: &str, field: &str, want: &str) {
    eventually(
        &format!("HGET {key} {field} == {want}"),
        DEADLINE,
        || async {
            for i in c.running() {
                let got: Option<String> = c.cmd(i, &["HGET", key, field]).await;
                if got.as_deref() != Some(want) {
                    return Err(format!("{} has {got:?}", NAMES[i]));
                }
            }
            Ok(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn increments_on_every_side_of_a_partition_add_up_after_the_heal() {
    let c = Cluster::start(3).await;
    // The counters exist everywhere before the cut (a counter created concurrently in two
    // regions is two incarnations, and the later one wins whole: DESIGN §2).
    let _: i64 = c.cmd(0, &["INCRBY", "hits", "100"]).await;
    let _: i64 = c.cmd(0, &["HSET", "sess", "user", "ann", "n", "1"]).await;
    let _: String = c.cmd(0, &["SET", "credit", "10.5"]).await;
    c.converge_get("hits", Some("100")).await;
    c.converge_get("credit", Some("10.5")).await;
    converge_field(&c, "sess", "n", "1").await;

    c.partition_all();
    let mut want_hits = 100;
    for (i, by) in [(0usize, 7i64), (1, -3), (2, 40)] {
        for _ in 0..5 {
            let _: i64 = c.cmd(i, &["INCRBY", "hits", &by.to_string()]).await;
            want_hits += by;
        }
        let _: i64 = c.cmd(i, &["HINCRBY", "sess", "n", "2"]).await;
        let _: String = c.cmd(i, &["INCRBYFLOAT", "credit", "0.1"]).await;
    }
    // Each side sees only its own increments while cut off.
    let alone: i64 = c.cmd(2, &["GET", "hits"]).await;
    assert_eq!(alone, 300, "ap-south counted 5 × 40 on its own");
    c.heal_all();
    c.converge_get("hits", Some(&want_hits.to_string())).await;
    converge_field(&c, "sess", "n", "7").await;
    converge_field(&c, "sess", "user", "ann").await;
    c.converge_get("credit", Some("10.8")).await;
    // And the counters go on from the sum, in any region.
    let next: i64 = c.cmd(1, &["INCR", "hits"]).await;
    assert_eq!(next, want_hits + 1);
    c.converge_get("hits", Some(&(want_hits + 1).to_string()))
        .await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_resets_what_it_saw_and_wins_over_increments_that_had_not_seen_it() {
    let c = Cluster::start(2).await;
    // Created in one region and seen by the other before it counts (two creations at once
    // would be two incarnations: the later wins whole).
    let _: i64 = c.cmd(0, &["INCRBY", "n", "5"]).await;
    c.converge_get("n", Some("5")).await;
    let _: i64 = c.cmd(1, &["INCRBY", "n", "5"]).await;
    c.converge_get("n", Some("10")).await;
    // SET after both increments were seen: the value is what it set.
    let _: String = c.cmd(1, &["SET", "n", "1"]).await;
    c.converge_get("n", Some("1")).await;
    let _: i64 = c.cmd(0, &["INCR", "n"]).await;
    c.converge_get("n", Some("2")).await;

    // Cut off: us-east counts, eu-west SETs without having seen those increments. The SET
    // wins, as a delete wins over a write that had not seen it.
    c.partition_all();
    let _: i64 = c.cmd(0, &["INCRBY", "n", "100"]).await;
    tokio::time::sleep(Duration::from_millis(15)).await;
    let _: String = c.cmd(1, &["SET", "n", "50"]).await;
    c.heal_all();
    c.converge_get("n", Some("50")).await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_wins_over_a_concurrent_increment() {
    let c = Cluster::start(2).await;
    let _: i64 = c.cmd(0, &["INCR", "lock"]).await;
    c.converge_get("lock", Some("1")).await;
    c.partition_all();
    let _: i64 = c.cmd(0, &["DEL", "lock"]).await;
    tokio::time::sleep(Duration::from_millis(15)).await;
    let _: i64 = c.cmd(1, &["INCRBY", "lock", "10"]).await;
    c.heal_all();
    c.converge_gone("lock").await;
    // An increment made after the delete was seen starts a fresh counter.
    let n: i64 = c.cmd(1, &["INCR", "lock"]).await;
    assert_eq!(n, 1);
    c.converge_get("lock", Some("1")).await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totals_survive_a_restart_and_replicate_to_a_region_that_was_down() {
    let mut c = Cluster::start(2).await;
    let _: i64 = c.cmd(0, &["HINCRBY", "h", "visits", "3"]).await;
    converge_field(&c, "h", "visits", "3").await;
    c.stop(1).await;
    let _: i64 = c.cmd(0, &["HINCRBY", "h", "visits", "4"]).await;
    c.restart(1).await;
    converge_field(&c, "h", "visits", "7").await;
    let n: i64 = c.cmd(1, &["HINCRBY", "h", "visits", "1"]).await;
    assert_eq!(n, 8);
    c.stop(0).await;
    c.restart(0).await;
    converge_field(&c, "h", "visits", "8").await;
    c.shutdown().await;
}
