//! Many touches of few sessions: bytes replicated grow with sessions and flushes.

use super::*;

pub(crate) async fn touches(rows: &mut Vec<Row>) {
    let touches = env_u64("BENCH_TOUCHES", 1_000_000);
    let sessions = env_u64("BENCH_TOUCH_SESSIONS", 1000);
    let secs = env_u64("BENCH_TOUCH_SECS", 10);
    let batch = 500;
    let pace = Duration::from_secs(secs) / (touches.div_ceil(batch)) as u32;
    println!(
        "\n== touch coalescing: {touches} EXPIRE of {sessions} sessions paced over {secs} s (4 connections, pipelines of {batch})"
    );
    println!(
        "{:>8} {:>8} {:>12} {:>10} {:>10} {:>12} {:>10} {:>14} {:>10}",
        "flush_ms",
        "secs",
        "touches",
        "flushes",
        "frames",
        "bytes",
        "B/touch",
        "sess x flush",
        "B/(s x f)"
    );
    let mut lines = Vec::new();
    for flush_ms in [2, 100] {
        let pair = Pair::start(PairSettings {
            flush_ms,
            max_frame_bytes: [256 * 1024; 2],
        })
        .await;
        let addr = pair.servers[0].redis_addr();
        pipelined(addr, 2, sessions, 500, None, move |i| {
            let mut c = redis::cmd("HSET");
            c.arg(format!("session:{i}"))
                .arg("user")
                .arg(format!("u{i}"));
            c
        })
        .await;
        // Let the creations replicate before counting.
        tokio::time::sleep(Duration::from_millis(200 + 2 * flush_ms)).await;
        let node = pair.servers[0].node().clone();
        let s0 = node.stats();
        let took = pipelined(addr, 4, touches, batch, Some(pace), move |i| {
            let mut c = redis::cmd("EXPIRE");
            c.arg(format!("session:{}", i % sessions)).arg(1800);
            c
        })
        .await;
        // The last flush.
        tokio::time::sleep(Duration::from_millis(2 * flush_ms + 20)).await;
        let s1 = node.stats();
        let bytes = s1.bytes_sent - s0.bytes_sent;
        let frames = s1.frames_sent - s0.frames_sent;
        let flushes = (ms(took) / flush_ms as f64).ceil() as u64;
        // At most every session once per flush, and no more than the touches of that flush.
        let per_flush = sessions.min(touches.div_ceil(flushes.max(1)));
        let bound = flushes * per_flush;
        println!(
            "{flush_ms:>8} {:>8.2} {touches:>12} {flushes:>10} {frames:>10} {bytes:>12} {:>10.2} {bound:>14} {:>10.2}",
            took.as_secs_f64(),
            bytes as f64 / touches as f64,
            bytes as f64 / bound as f64
        );
        lines.push(format!(
            "{flush_ms} ms flush: {bytes} B for {touches} touches in {:.1} s = {:.2} B/touch, {:.1} B per (session x flush)",
            took.as_secs_f64(),
            bytes as f64 / touches as f64,
            bytes as f64 / bound as f64
        ));
        pair.shutdown().await;
    }
    println!(
        "(flushes = run time / flush interval; sess x flush = flushes x min(sessions, touches per flush))"
    );
    rows.push(row(
        "touch coalescing: bytes vs sessions x flushes",
        "follows sessions x flushes",
        lines.join("; "),
        None,
    ));
}
