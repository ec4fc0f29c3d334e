use super::*;

const GOOD: &str = r#"
[tls]
ca = "certs/ca.pem"

[[regions]]
name = "a"
id = 1
redis = "127.0.0.1:6401"
gossip = "127.0.0.1:7401"
http = "127.0.0.1:9401"

[[regions]]
name = "b"
id = 2
redis = "127.0.0.1:6402"
gossip = "127.0.0.1:7402"
http = "127.0.0.1:9402"
"#;

fn err(text: &str) -> String {
    Config::from_toml(text, Path::new("/etc/sm"))
        .unwrap_err()
        .to_string()
}

#[test]
fn parses_the_real_regions_toml() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../regions.toml");
    let c = Config::load(&path).unwrap();
    assert_eq!(c.region_names(), ["us-east", "eu-west", "ap-south"]);
    let ids: Vec<u16> = c.regions().iter().map(|r| r.id).collect();
    assert_eq!(ids, [1, 2, 3]);
    let us = c.region("us-east").unwrap();
    assert_eq!(us.redis, "127.0.0.1:6401".parse().unwrap());
    assert_eq!(us.gossip, "127.0.0.1:7401".parse().unwrap());
    assert_eq!(us.http, "127.0.0.1:9401".parse().unwrap());
    assert!(us.cert.ends_with("certs/us-east.pem"));
    assert!(us.key.ends_with("certs/us-east.key"));
    assert!(c.ca().ends_with("certs/ca.pem"));
    for r in c.regions() {
        assert!(r.redis.ip().is_loopback() && r.gossip.ip().is_loopback());
        assert!(r.http.ip().is_loopback());
    }
    assert!(c.latency_ms("us-east", "eu-west").is_some());
    assert!(c.latency_ms("ap-south", "eu-west").is_some());
}

#[test]
fn defaults_and_relative_paths() {
    let c = Config::from_toml(GOOD, Path::new("/etc/sm")).unwrap();
    assert_eq!(c.ca(), Path::new("/etc/sm/certs/ca.pem"));
    assert_eq!(
        c.region("b").unwrap().cert,
        Path::new("/etc/sm/certs/b.pem")
    );
    assert_eq!(c.region("b").unwrap().key, Path::new("/etc/sm/certs/b.key"));
    assert_eq!(c.replication(), &Replication::default());
    assert_eq!(c.transport(), &TransportSettings::default());
    let moved = c.with_cert_dir(Path::new("/tmp/x"));
    assert_eq!(moved.region("a").unwrap().cert, Path::new("/tmp/x/a.pem"));
}

#[test]
fn bad_address_names_its_key() {
    let e = err(&GOOD.replace("127.0.0.1:6402", "localhost:6402"));
    assert!(e.starts_with("regions[1].redis: "), "{e}");
}

#[test]
fn duplicate_address_names_both_keys() {
    let e = err(&GOOD.replace("127.0.0.1:7402", "127.0.0.1:7401"));
    assert!(e.starts_with("regions[1].gossip: "), "{e}");
    assert!(e.contains("regions[0].gossip"), "{e}");
}

#[test]
fn duplicate_id_and_name_name_their_keys() {
    let e = err(&GOOD.replace("id = 2", "id = 1"));
    assert!(e.starts_with("regions[1].id: "), "{e}");
    let e = err(&GOOD.replace("name = \"b\"", "name = \"a\""));
    assert!(e.starts_with("regions[1].name: "), "{e}");
}

#[test]
fn out_of_range_id_and_bad_name() {
    let e = err(&GOOD.replace("id = 2", "id = 70000"));
    assert!(e.starts_with("regions[1].id: "), "{e}");
    let e = err(&GOOD.replace("id = 2", "id = 0"));
    assert!(e.starts_with("regions[1].id: "), "{e}");
    let e = err(&GOOD.replace("name = \"b\"", "name = \"Bad_Name\""));
    assert!(e.starts_with("regions[1].name: "), "{e}");
}

#[test]
fn unknown_key_is_refused_and_named() {
    let e = err(&format!("{GOOD}\n[replication]\nflush_interval = 3\n"));
    assert!(e.contains("unknown field `flush_interval`"), "{e}");
    let e = err(&GOOD.replace("http = \"127.0.0.1:9402\"", "htp = \"x\""));
    assert!(e.contains("htp"), "{e}");
}

#[test]
fn replication_and_transport_bounds() {
    let e = err(&format!("{GOOD}\n[replication]\nflush_interval_ms = 0\n"));
    assert!(e.starts_with("replication.flush_interval_ms: "), "{e}");
    let e = err(&format!(
        "{GOOD}\n[transport]\nkeep_alive_ms = 5000\nidle_timeout_ms = 1000\n"
    ));
    assert!(e.starts_with("transport.keep_alive_ms: "), "{e}");
}

#[test]
fn redis_settings() {
    let c = Config::from_toml(
        &format!("{GOOD}\n[redis]\nrequirepass = \"s3cret\"\nmax_clients = 10\n"),
        Path::new("."),
    )
    .unwrap();
    assert_eq!(c.redis().requirepass.as_deref(), Some("s3cret"));
    assert_eq!(c.redis().max_clients, Some(10));
    assert_eq!(c.redis().max_pipeline, None);
    let e = err(&format!("{GOOD}\n[redis]\nmax_pipeline = 0\n"));
    assert!(e.starts_with("redis.max_pipeline: "), "{e}");
    let e = err(&format!("{GOOD}\n[redis]\nrequirepass = \"\"\n"));
    assert!(e.starts_with("redis.requirepass: "), "{e}");
    assert_eq!(c.redis().io_threads, None);
    let c = Config::from_toml(
        &format!("{GOOD}\n[redis]\nio_threads = 0\n"),
        Path::new("."),
    );
    assert_eq!(c.unwrap().redis().io_threads, Some(0));
    let e = err(&format!("{GOOD}\n[redis]\nio_threads = 5000\n"));
    assert!(
        e.starts_with("redis.io_threads: must be at most 1024"),
        "{e}"
    );
}

#[test]
fn persistence_settings() {
    let c = Config::from_toml(GOOD, Path::new("/etc/sm")).unwrap();
    let p = c.persistence();
    assert_eq!(p.data_dir, Path::new("/etc/sm/data"));
    assert_eq!(p.region_dir("a"), Path::new("/etc/sm/data/a"));
    assert_eq!(p.durability, Durability::Always);
    let c = Config::from_toml(
        &format!("{GOOD}\n[persistence]\ndata_dir = \"/var/sm\"\ndurability = \"everysec\"\n"),
        Path::new("/etc/sm"),
    )
    .unwrap();
    assert_eq!(c.persistence().data_dir, Path::new("/var/sm"));
    assert_eq!(c.persistence().durability, Durability::Everysec);
    let e = err(&format!("{GOOD}\n[persistence]\ndurability = \"never\"\n"));
    assert!(e.starts_with("persistence.durability: "), "{e}");
    let e = err(&format!("{GOOD}\n[persistence]\ndata_dir = \"\"\n"));
    assert!(e.starts_with("persistence.data_dir: "), "{e}");
    let e = err(&format!("{GOOD}\n[persistence]\nsnapshot_every_secs = 0\n"));
    assert!(e.starts_with("persistence.snapshot_every_secs: "), "{e}");
}

#[test]
fn latency_keys_are_checked() {
    let e = err(&format!("{GOOD}\n[latency_ms]\n\"a.c\" = 5\n"));
    assert!(
        e.starts_with("latency_ms.\"a.c\": unknown region `c`"),
        "{e}"
    );
    let e = err(&format!("{GOOD}\n[latency_ms]\n\"ab\" = 5\n"));
    assert!(e.starts_with("latency_ms.\"ab\": "), "{e}");
    let c = Config::from_toml(
        &format!("{GOOD}\n[latency_ms]\n\"a.b\" = 5\n"),
        Path::new("."),
    )
    .unwrap();
    assert_eq!(c.latency_ms("b", "a"), Some(5));
}

#[test]
fn no_regions_and_unknown_region() {
    let e = err("[tls]\nca = \"x\"\n");
    assert!(e.starts_with("regions: "), "{e}");
    let c = Config::from_toml(GOOD, Path::new(".")).unwrap();
    let e = c.region("zz").unwrap_err().to_string();
    assert!(e.contains("zz") && e.contains("a, b"), "{e}");
}

#[test]
fn redis_tls_needs_both_files_and_users_are_checked() {
    let e = err(&format!("{GOOD}\n[redis]\ntls_cert = \"c.pem\"\n"));
    assert!(e.starts_with("redis.tls_key: "), "{e}");
    let e = err(&format!("{GOOD}\n[redis]\ntls_key = \"k.pem\"\n"));
    assert!(e.starts_with("redis.tls_cert: "), "{e}");
    let e = err(&format!("{GOOD}\n[redis.users]\nalice = \"\"\n"));
    assert!(e.starts_with("redis.users.alice: "), "{e}");
    let e = err(&format!("{GOOD}\n[redis.users]\ndefault = \"x\"\n"));
    assert!(e.starts_with("redis.users.default: "), "{e}");
}

/// TCP and UDP ports are separate: a gossip (UDP) port may carry the number of another
/// region's Redis (TCP) port (tests bind ephemeral ports of both kinds and drew such a pair),
/// while two TCP listeners on one address are still refused.
#[test]
fn a_gossip_port_may_share_its_number_with_a_tcp_port() {
    let shared = GOOD.replace("gossip = \"127.0.0.1:7402\"", "gossip = \"127.0.0.1:6401\"");
    let c = Config::from_toml(&shared, Path::new("/etc/sm")).unwrap();
    assert_eq!(
        c.region("b").unwrap().gossip,
        "127.0.0.1:6401".parse().unwrap()
    );
    let clash = GOOD.replace("http = \"127.0.0.1:9402\"", "http = \"127.0.0.1:6401\"");
    let e = err(&clash);
    assert!(
        e.contains("127.0.0.1:6401 is already used by regions[0].redis"),
        "{e}"
    );
}

#[test]
fn a_queue_must_hold_the_largest_frame() {
    let e = err(&format!(
        "{GOOD}\n[replication]\nmax_frame_bytes = 1048576\n[transport]\nqueue_bytes = 65536\n"
    ));
    assert!(e.starts_with("transport.queue_bytes: "), "{e}");
    assert!(e.contains("replication.max_frame_bytes"), "{e}");
    let ok = format!(
        "{GOOD}\n[replication]\nmax_frame_bytes = 65536\n[transport]\nqueue_bytes = 65536\n"
    );
    assert!(Config::from_toml(&ok, Path::new("/etc/sm")).is_ok());
}
