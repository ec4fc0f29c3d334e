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
    let (r, s, _) = n.execute_stamped(&args(&["SET", "k", "v"]));
    assert_eq!(r, Reply::OK);
    let s = s.expect("SET writes");
    assert_eq!(s.region, RegionId(2));
    assert_eq!(n.last_write(), Some(s));
    let (r, none, _) = n.execute_stamped(&args(&["GET", "k"]));
    assert_eq!(r, Reply::bulk("v"));
    assert_eq!(none, None);
    let (replies, last, _) = n.execute_batch_stamped(&[
        args(&["SET", "a", "1"]),
        args(&["GET", "a"]),
        args(&["HSET", "h", "f", "x"]),
    ]);
    assert_eq!(replies.len(), 3);
    assert!(last.expect("batch wrote") > s);
    assert_eq!(n.peer_regions(), ["us-east", "ap-south"]);
    assert_eq!(n.region_name(), "eu-west");
}

#[tokio::test]
async fn wait_times_out_with_no_peer_and_reports_zero() {
    let n = node();
    let (_, s, _) = n.execute_stamped(&args(&["SET", "k", "v"]));
    let started = std::time::Instant::now();
    assert_eq!(n.wait_regions(s.unwrap(), 1, 50).await, 0);
    assert!(started.elapsed() >= Duration::from_millis(50));
    // Zero regions asked for: answered at once.
    assert_eq!(n.wait_regions(s.unwrap(), 0, 0).await, 0);
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
