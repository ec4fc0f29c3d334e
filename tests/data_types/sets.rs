//! Sets across regions, on real nodes (issue 15 item 1): members added on both sides of a
//! partition are all there after the heal; a member removed on one side while the other adds
//! it again stays (add wins); a `DEL` made while cut off wins over adds made concurrently
//! without having seen it; set algebra across shards answers as one server.
//!
//! Every wait polls with a deadline and fails naming what did not converge.

use crate::common::cluster::{eventually, Cluster, DEADLINE, NAMES};

/// Polls until `SMEMBERS key` is `want` (sorted) in every running region.
async fn converge_members(c: &Cluster, key: &str, want: &[&str]) {
    eventually(
        &format!("SMEMBERS {key} == {want:?} everywhere"),
        DEADLINE,
        || async {
            for i in c.running() {
                let mut got: Vec<String> = c.cmd(i, &["SMEMBERS", key]).await;
                got.sort();
                if got != want {
                    return Err(format!("{} has {got:?}", NAMES[i]));
                }
            }
            Ok(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_added_and_removed_on_both_sides_of_a_partition() {
    let c = Cluster::start(3).await;
    let n: i64 = c
        .cmd(0, &["SADD", "principal:alice", "s1", "s2", "s3"])
        .await;
    assert_eq!(n, 3);
    let n: i64 = c.cmd(0, &["SADD", "doomed", "x"]).await;
    assert_eq!(n, 1);
    converge_members(&c, "principal:alice", &["s1", "s2", "s3"]).await;
    converge_members(&c, "doomed", &["x"]).await;

    c.isolate(0);
    // The isolated region logs s1 and s2 out and deletes a set; the others log alice in again
    // with s1 (a concurrent add), add s4, and add to the set being deleted.
    let n: i64 = c.cmd(0, &["SREM", "principal:alice", "s1", "s2"]).await;
    assert_eq!(n, 2);
    let n: i64 = c.cmd(0, &["DEL", "doomed"]).await;
    assert_eq!(n, 1);
    let n: i64 = c.cmd(1, &["SADD", "principal:alice", "s1", "s4"]).await;
    assert_eq!(n, 1, "s1 was still a member in region 2");
    let n: i64 = c.cmd(2, &["SADD", "doomed", "y"]).await;
    assert_eq!(n, 1);
    let mine: Vec<String> = c.cmd(0, &["SMEMBERS", "principal:alice"]).await;
    assert_eq!(mine, ["s3"], "the isolated region sees only its own writes");
    c.heal_all();

    converge_members(&c, "principal:alice", &["s1", "s3", "s4"]).await;
    converge_members(&c, "doomed", &[]).await;
    for i in c.running() {
        let t: String = c.cmd(i, &["TYPE", "doomed"]).await;
        assert_eq!(
            t, "none",
            "{}: DEL wins over adds that had not seen it",
            NAMES[i]
        );
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_algebra_across_shards_replicates_its_result() {
    let c = Cluster::start_tuned(&[0, 0], &[("cluster.shards", "4")]).await;
    // Plain names land on different shards; the result is written where `dst` lives.
    let _: i64 = c.cmd(0, &["SADD", "a", "1", "2", "3"]).await;
    let _: i64 = c.cmd(0, &["SADD", "b", "2", "3", "4"]).await;
    let n: i64 = c.cmd(0, &["SINTERSTORE", "both", "a", "b"]).await;
    assert_eq!(n, 2);
    let n: i64 = c.cmd(0, &["SINTERCARD", "2", "a", "b", "LIMIT", "1"]).await;
    assert_eq!(n, 1);
    let n: i64 = c.cmd(0, &["SMOVE", "a", "b", "1"]).await;
    assert_eq!(n, 1);
    converge_members(&c, "both", &["2", "3"]).await;
    converge_members(&c, "a", &["2", "3"]).await;
    converge_members(&c, "b", &["1", "2", "3", "4"]).await;
    let mut diff: Vec<String> = c.cmd(1, &["SDIFF", "b", "a"]).await;
    diff.sort();
    assert_eq!(diff, ["1", "4"]);
    c.shutdown().await;
}
