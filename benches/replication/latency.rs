//! Cross-region visibility latency, loopback and through a delaying relay.

use super::*;

/// Percentiles of replication latency: (p50, p99, max, timeouts).
pub(crate) struct Latency {
    p50: Duration,
    p99: Duration,
    max: Duration,
    missed: u64,
}

/// `writes` times: SET in region 0, then GET in region 1 until it shows the value.
pub(crate) async fn measure_latency(cluster: &Cluster, tag: &str, writes: u64) -> Latency {
    let mut w = connect(cluster.spec(0).redis).await;
    let mut r = connect(cluster.spec(1).redis).await;
    let deadline = Duration::from_secs(5);
    let mut samples = Vec::with_capacity(writes as usize);
    let mut missed = 0;
    for i in 0..writes {
        let key = format!("lat:{tag}:{i}");
        let value = format!("v{i}");
        let () = redis::cmd("SET")
            .arg(&key)
            .arg(&value)
            .query_async(&mut w)
            .await
            .unwrap();
        let acked = Instant::now();
        loop {
            let got: Option<String> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut r)
                .await
                .unwrap();
            if got.as_deref() == Some(value.as_str()) {
                samples.push(acked.elapsed());
                break;
            }
            if acked.elapsed() > deadline {
                missed += 1;
                break;
            }
        }
    }
    samples.sort();
    let at = |p: f64| {
        samples
            .get(((samples.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or_default()
    };
    Latency {
        p50: at(0.50),
        p99: at(0.99),
        max: samples.last().copied().unwrap_or_default(),
        missed,
    }
}

pub(crate) async fn latency(rows: &mut Vec<Row>) {
    let writes = env_u64("BENCH_LAT_WRITES", 1000);
    let delayed_writes = env_u64("BENCH_LAT_DELAYED_WRITES", 300);
    let d = env_u64("BENCH_DELAY_MS", 30);
    println!("\n== replication latency: SET acked in region 0 -> visible to GET in region 1");
    let cluster = Cluster::start(2).await;
    // Warm-up: connections, caches, congestion window.
    measure_latency(&cluster, "warmup", 50).await;
    for (delay, n) in [(0, writes), (d, delayed_writes)] {
        cluster.relay(0, 1).delay_to_b(Duration::from_millis(delay));
        cluster.relay(0, 1).delay_to_a(Duration::from_millis(delay));
        if delay > 0 {
            measure_latency(&cluster, &format!("warmup{delay}"), 20).await;
        }
        let l = measure_latency(&cluster, &format!("d{delay}"), n).await;
        let budget = delay as f64 + 5.0;
        println!(
            "one-way delay {delay} ms, {n} writes: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, not visible within 5 s: {}",
            ms(l.p50),
            ms(l.p99),
            ms(l.max),
            l.missed
        );
        let (figure, target) = if delay == 0 {
            (
                "replication latency p99, loopback".to_string(),
                "<= 5 ms".to_string(),
            )
        } else {
            (
                format!("replication latency p99, {delay} ms one-way delay"),
                format!("<= {budget:.0} ms"),
            )
        };
        rows.push(row(
            &figure,
            &target,
            format!(
                "p50 {:.2} / p99 {:.2} / max {:.2} ms ({n} writes, {} missed)",
                ms(l.p50),
                ms(l.p99),
                ms(l.max),
                l.missed
            ),
            Some(ms(l.p99) <= budget && l.missed == 0),
        ));
    }
    cluster.shutdown().await;
}
