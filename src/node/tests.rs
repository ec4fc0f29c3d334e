use super::*;
use std::path::Path;

fn node() -> Node {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("regions.toml"))
        .unwrap();
    let config = Config::from_toml(&text, Path::new(".")).unwrap();
    let region = config.region("eu-west").unwrap().clone();
    Node::new(&config, &region)
}

/// A command line, looked up and checked as the Redis server does.
fn args(a: &[&str]) -> Command {
    let line = a
        .iter()
        .map(|s| Bytes::copy_from_slice(s.as_bytes()))
        .collect();
    Command::parse(line).unwrap()
}

#[test]
fn only_writes_carry_a_stamp() {
    let n = node();
    let mut m = Marks::default();
    assert_eq!(
        n.execute_marked(&args(&["SET", "k", "v"]), &mut m),
        Reply::OK
    );
    let writes: Vec<_> = m.writes().collect();
    assert_eq!(writes.len(), 1, "SET writes on one shard");
    let (i, s) = writes[0];
    assert_eq!(s.region, RegionId(2));
    let mut read = Marks::default();
    assert_eq!(
        n.execute_marked(&args(&["GET", "k"]), &mut read),
        Reply::bulk("v")
    );
    assert!(!read.wrote());
    let replies = n.execute_batch_marked(
        &[
            args(&["SET", "k", "w"]),
            args(&["GET", "k"]),
            args(&["HSET", "h", "f", "x"]),
        ],
        false,
        &mut m,
    );
    assert_eq!(replies.len(), 3);
    assert_eq!(replies[1], Reply::bulk("w"), "a pipeline runs in order");
    let later = m.writes().find(|(j, _)| *j == i).map(|(_, s)| s);
    assert!(later.expect("k's shard wrote again") > s);
    assert_eq!(n.peer_regions(), ["us-east", "ap-south"]);
    assert_eq!(n.region_name(), "eu-west");
}

/// A transaction over keys on every shard sees its own writes and leaves each shard's
/// write noted.
#[test]
fn a_transaction_spans_shards() {
    let n = node();
    assert!(n.shard_count() > 1, "the test config has several shards");
    let keys: Vec<String> = (0..32).map(|i| format!("k{i}")).collect();
    let mut cmds: Vec<Command> = keys.iter().map(|k| args(&["SET", k, "1"])).collect();
    let mut mget = vec!["MGET"];
    mget.extend(keys.iter().map(String::as_str));
    cmds.push(args(&mget));
    cmds.push(args(&["DBSIZE"]));
    let mut m = Marks::default();
    let replies = n.execute_batch_marked(&cmds, true, &mut m);
    assert_eq!(replies[32], Reply::Array(vec![Reply::bulk("1"); 32]));
    assert_eq!(replies[33], Reply::Int(32));
    assert_eq!(m.writes().count(), usize::from(n.shard_count()));
}

#[tokio::test]
async fn wait_times_out_with_no_peer_and_reports_zero() {
    let n = node();
    let mut m = Marks::default();
    n.execute_marked(&args(&["SET", "k", "v"]), &mut m);
    let started = std::time::Instant::now();
    assert_eq!(n.wait_regions(&m, 1, 50).await, 0);
    assert!(started.elapsed() >= Duration::from_millis(50));
    // Zero regions asked for: answered at once.
    assert_eq!(n.wait_regions(&m, 0, 0).await, 0);
}

#[test]
fn info_lists_every_peer_offline_before_any_link() {
    let n = node();
    let info = n.info_replication();
    assert!(info.starts_with("# Replication\r\n"), "{info}");
    assert!(info.contains("region:eu-west\r\n"), "{info}");
    assert!(info.contains("connected_regions:0\r\n"), "{info}");
    assert!(
        info.contains("name=us-east,id=1,state=offline,lag_ms=-1"),
        "{info}"
    );
    assert!(info.contains("name=ap-south,id=3,state=offline"), "{info}");
    assert!(
        !n.ready(),
        "not ready within the grace period with no peer up"
    );
}
