//! What operators see: `/metrics` of live regions has every family of SPEC §6, the families
//! move when the regions work, and two regions in one process never mix their samples;
//! `/status` carries what `sessionmesh status` prints, and the subcommand prints it.

// Test code: a failed unwrap is a failed test, and nothing here is reachable from outside.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod common;

use common::cluster::{eventually, Cluster, DEADLINE, NAMES};

/// The value of the sample `name` whose labels include every pair of `labels`, if any.
fn sample(body: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    body.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (series, value) = l.rsplit_once(' ')?;
        let (n, rest) = series.split_once('{').unwrap_or((series, "}"));
        let has_all = labels
            .iter()
            .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
        (n == name && has_all).then(|| value.parse().ok())?
    })
}

fn must(body: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    sample(body, name, labels).unwrap_or_else(|| panic!("no {name}{labels:?} in:\n{body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_cover_the_spec_and_move_with_work() {
    let c = Cluster::start(2).await;
    let (us, eu) = (NAMES[0], NAMES[1]);
    let (code, before) = c.http_get(0, "/metrics").await;
    assert_eq!(code, 200);
    let region = [("region", us)];
    let to_eu = [("region", us), ("peer", eu)];
    // Families present before any command (the latency histogram appears with its first one).
    for name in [
        "sessionmesh_keys",
        "sessionmesh_tombstones",
        "sessionmesh_held_deltas",
        "sessionmesh_conflicts_total",
        "sessionmesh_expired_keys_total",
        "sessionmesh_process_resident_memory_bytes",
        "sessionmesh_ready",
    ] {
        must(&before, name, &region);
    }
    for name in [
        "sessionmesh_peer_connected",
        "sessionmesh_peer_replication_lag_writes",
        "sessionmesh_peer_clock_offset_seconds",
        "sessionmesh_peer_sent_bytes_total",
        "sessionmesh_peer_sent_frames_total",
        "sessionmesh_peer_received_bytes_total",
        "sessionmesh_peer_received_frames_total",
    ] {
        must(&before, name, &to_eu);
    }
    assert_eq!(must(&before, "sessionmesh_peer_connected", &to_eu), 1.0);
    assert!(
        must(
            &before,
            "sessionmesh_process_resident_memory_bytes",
            &region
        ) > 0.0
    );
    for kind in [
        "wrongtype",
        "unknown_command",
        "protocol",
        "bad_frame",
        "peer_refused",
    ] {
        must(
            &before,
            "sessionmesh_errors_total",
            &[("region", us), ("kind", kind)],
        );
    }

    // Work: writes, and two errors of known kinds.
    for i in 0..20 {
        let _: String = c.cmd(0, &["SET", &format!("m{i}"), "v"]).await;
    }
    let _: i64 = c.cmd(0, &["HSET", "h", "f", "v"]).await;
    let mut con = c.redis(0).await;
    let wrong: redis::RedisResult<String> = redis::cmd("GET").arg("h").query_async(&mut con).await;
    assert!(wrong.is_err());
    let unknown: redis::RedisResult<String> = redis::cmd("NOPE").query_async(&mut con).await;
    assert!(unknown.is_err());
    c.converge_get("m19", Some("v")).await;

    let (_, after) = c.http_get(0, "/metrics").await;
    let set = [("region", us), ("command", "set")];
    assert!(must(&after, "sessionmesh_command_duration_seconds_count", &set) >= 20.0);
    assert!(must(&after, "sessionmesh_command_duration_seconds_sum", &set) > 0.0);
    let inf = [("region", us), ("command", "set"), ("le", "+Inf")];
    assert!(must(&after, "sessionmesh_command_duration_seconds_bucket", &inf) >= 20.0);
    assert!(
        must(&after, "sessionmesh_keys", &region)
            >= must(&before, "sessionmesh_keys", &region) + 21.0
    );
    for family in [
        "sessionmesh_peer_sent_bytes_total",
        "sessionmesh_peer_sent_frames_total",
    ] {
        assert!(
            must(&after, family, &to_eu) > must(&before, family, &to_eu),
            "{family}"
        );
    }
    let kind = |k| [("region", us), ("kind", k)];
    assert!(must(&after, "sessionmesh_errors_total", &kind("wrongtype")) >= 1.0);
    assert!(must(&after, "sessionmesh_errors_total", &kind("unknown_command")) >= 1.0);
    assert!(must(&after, "sessionmesh_local_writes_total", &region) >= 21.0);
    // Exists from the start; only a catch-up from beyond the index's history moves it.
    must(&after, "sessionmesh_catchup_full_scans_total", &region);

    // The peer applied what it received, and acknowledges every write in the end.
    let (_, theirs) = c.http_get(1, "/metrics").await;
    let from_us = [("region", eu), ("peer", us)];
    assert!(must(&theirs, "sessionmesh_peer_received_bytes_total", &from_us) > 0.0);
    eventually("eu-west acknowledges every write", DEADLINE, || async {
        let (_, body) = c.http_get(0, "/metrics").await;
        match sample(&body, "sessionmesh_peer_replication_lag_writes", &to_eu) {
            Some(0.0) => Ok(()),
            v => Err(format!("lag_writes {v:?}")),
        }
    })
    .await;

    // Regions in one process keep their samples apart: every sample of eu-west is eu-west's,
    // and the SETs run on us-east are not in it.
    for line in theirs.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.contains("region=\"eu-west\""), "{line}");
    }
    assert_eq!(
        sample(
            &theirs,
            "sessionmesh_command_duration_seconds_count",
            &[("command", "set")]
        ),
        None
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_json_and_the_status_command_show_every_region() {
    let mut c = Cluster::start(2).await;
    let _: String = c.cmd(0, &["SET", "k", "v"]).await;
    c.converge_get("k", Some("v")).await;
    let (code, body) = c.http_get(0, "/status").await;
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["keys"].as_u64().unwrap() >= 1, "{v}");
    assert!(v["memory_bytes"].as_u64().unwrap() > 0, "{v}");
    let peer = &v["peers"][0];
    assert_eq!(peer["name"], NAMES[1]);
    assert!(peer["lag_writes"].is_u64(), "{v}");
    assert!(peer["clock_offset_ms"].is_i64(), "{v}");
    assert!(peer["bytes_sent"].as_u64().unwrap() > 0, "{v}");

    let config = c.dir().join(format!("{}.toml", NAMES[0]));
    let run = |config: std::path::PathBuf| {
        tokio::task::spawn_blocking(move || {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_sessionmesh"))
                .args(["status", "--config"])
                .arg(&config)
                .output()
                .expect("run sessionmesh status");
            assert!(out.status.success(), "{out:?}");
            String::from_utf8(out.stdout).unwrap()
        })
    };
    let table = run(config.clone()).await.unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("REGION"), "{table}");
    for col in [
        "REACHABLE",
        "LAG_MS",
        "LAG_WRITES",
        "OFFSET_MS",
        "KEYS",
        "MEMORY",
    ] {
        assert!(lines[0].contains(col), "{table}");
    }
    for (name, peer) in [(NAMES[0], NAMES[1]), (NAMES[1], NAMES[0])] {
        let row = lines
            .iter()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no row for {name}:\n{table}"));
        assert!(row.contains("yes") && row.contains(peer), "{table}");
        assert!(row.contains("online"), "{table}");
    }

    // A region that is down is listed as unreachable; the command still succeeds.
    c.stop(1).await;
    let table = run(config).await.unwrap();
    let row = table
        .lines()
        .find(|l| l.starts_with(NAMES[1]))
        .unwrap_or_else(|| panic!("no row for {}:\n{table}", NAMES[1]));
    assert!(row.contains("no"), "{table}");
    c.shutdown().await;
}
