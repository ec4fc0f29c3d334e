//! Pub/sub across regions, on real nodes (issue 15 item 5): a message published in one region
//! reaches the subscribers of every region, each once and in publish order, through channels
//! and patterns, with the `redis` crate's RESP3 push frames; a message published while a
//! region is cut off for a moment (UDP relays that drop packets) reaches it once the link is
//! back, in order.

use crate::common::cluster::{Cluster, DEADLINE, NAMES};
use redis::{PushInfo, PushKind, Value};
use tokio::sync::mpsc;

/// A RESP3 connection to region `i` whose pushes (subscription confirmations, messages) go
/// to the returned receiver.
async fn subscriber(
    c: &Cluster,
    i: usize,
) -> (
    redis::aio::MultiplexedConnection,
    mpsc::UnboundedReceiver<PushInfo>,
) {
    let addr = c.spec(i).redis;
    let client = redis::Client::open(format!("redis://{addr}/?protocol=resp3")).unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let config = redis::AsyncConnectionConfig::new().set_push_sender(tx);
    let con = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}", NAMES[i]));
    (con, rx)
}

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        other => format!("{other:?}"),
    }
}

/// The next message (`message` or `pmessage` push) within the deadline, as its data's texts.
async fn next_message(rx: &mut mpsc::UnboundedReceiver<PushInfo>, who: &str) -> Vec<String> {
    loop {
        let p = tokio::time::timeout(DEADLINE, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("{who}: no message within {DEADLINE:?}"))
            .unwrap_or_else(|| panic!("{who}: connection closed"));
        if matches!(p.kind, PushKind::Message | PushKind::PMessage) {
            return p.data.iter().map(text).collect();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_reaches_every_region_once_in_order() {
    let c = Cluster::start(3).await;
    c.wait_connected().await;
    let mut subs = Vec::new();
    for i in 0..3 {
        let (mut con, rx) = subscriber(&c, i).await;
        con.subscribe("session:created").await.unwrap();
        con.psubscribe("session:*").await.unwrap();
        subs.push((con, rx));
    }
    // Region 2 publishes three messages; every region's subscriber hears each twice (once per
    // subscription), in order.
    for n in 0..3 {
        let got: i64 = c
            .cmd(1, &["PUBLISH", "session:created", &format!("s{n}")])
            .await;
        assert_eq!(got, 2, "this region's receivers: one channel, one pattern");
    }
    for (i, (_, rx)) in subs.iter_mut().enumerate() {
        for n in 0..3 {
            let want = format!("s{n}");
            let a = next_message(rx, NAMES[i]).await;
            let b = next_message(rx, NAMES[i]).await;
            let mut kinds = [a.len(), b.len()];
            kinds.sort();
            assert_eq!(
                kinds,
                [2, 3],
                "{}: one message, one pmessage: {a:?} {b:?}",
                NAMES[i]
            );
            assert_eq!(a.last(), Some(&want), "{}: in publish order", NAMES[i]);
            assert_eq!(b.last(), Some(&want), "{}: in publish order", NAMES[i]);
        }
    }
    let numsub: Vec<Value> = c.cmd(2, &["PUBSUB", "NUMSUB", "session:created"]).await;
    assert_eq!(numsub.get(1), Some(&Value::Int(1)));

    // Cut off for less than the link's idle timeout, region 3 gets what region 1 published
    // meanwhile once the link is back (the QUIC stream retransmits it), before what follows.
    c.isolate(2);
    let _: i64 = c.cmd(0, &["PUBLISH", "session:created", "during"]).await;
    c.heal_all();
    let _: i64 = c.cmd(0, &["PUBLISH", "session:created", "after"]).await;
    let (_, rx) = &mut subs[2];
    let mut heard = Vec::new();
    for _ in 0..4 {
        heard.push(
            next_message(rx, NAMES[2])
                .await
                .last()
                .cloned()
                .unwrap_or_default(),
        );
    }
    assert_eq!(heard, ["during", "during", "after", "after"]);
    c.shutdown().await;
}

/// The next push on `rx` whose channel is `channel`, as its data's texts (others skipped).
async fn next_on(
    rx: &mut mpsc::UnboundedReceiver<PushInfo>,
    channel: &str,
    who: &str,
) -> Vec<String> {
    loop {
        let m = next_message(rx, who).await;
        // message: [channel, data]; pmessage: [pattern, channel, data].
        if m.iter().rev().nth(1).map(String::as_str) == Some(channel) {
            return m;
        }
    }
}

/// Spring Session's `RedisIndexedSessionRepository` (and the expiration store of its reactive
/// variant), replayed command for command across two regions (issue 15 item 7): each region's
/// application configures keyspace events and listens on the `created` pattern and the
/// `del`/`expired` key events; a session saved in one region is announced, found by principal
/// and read in the other; its expiry fires `expired` in both, and the clean-up's deletes are
/// heard in both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spring_indexed_session_flow_across_two_regions() {
    let c = Cluster::start(2).await;
    c.wait_connected().await;
    let mut listeners = Vec::new();
    for i in 0..2 {
        // ConfigureNotifyKeyspaceEventsAction: read, then add what is missing.
        let got: Vec<String> = c.cmd(i, &["CONFIG", "GET", "notify-keyspace-events"]).await;
        assert_eq!(got, ["notify-keyspace-events", ""]);
        let _: () = c
            .cmd(i, &["CONFIG", "SET", "notify-keyspace-events", "Egx"])
            .await;
        let got: Vec<String> = c.cmd(i, &["CONFIG", "GET", "notify-keyspace-events"]).await;
        assert_eq!(got, ["notify-keyspace-events", "gxE"]);
        let (mut con, rx) = subscriber(&c, i).await;
        con.psubscribe("spring:session:event:0:created:*")
            .await
            .unwrap();
        con.subscribe(&["__keyevent@0__:del", "__keyevent@0__:expired"])
            .await
            .unwrap();
        listeners.push((con, rx));
    }
    let id = "3f1c9a2e-7b41-4d0e-9c55-2a8d1e6f0b17";
    let session = format!("spring:session:sessions:{id}");
    let expires = format!("spring:session:sessions:expires:{id}");
    let index = "spring:session:index:org.springframework.session.FindByIndexNameSessionRepository.PRINCIPAL_NAME_INDEX_NAME:alice";
    let store = "spring:session:sessions:expirations";
    let now = "1765150000000";
    // Region 1 saves a new session (RedisSessionExpirationPolicy and the principal index).
    let _: () = c
        .cmd(
            0,
            &[
                "HSET",
                &session,
                "creationTime",
                now,
                "lastAccessedTime",
                now,
                "maxInactiveInterval",
                "1",
                "sessionAttr:SPRING_SECURITY_CONTEXT",
                "ctx",
            ],
        )
        .await;
    let _: i64 = c.cmd(0, &["SADD", index, id]).await;
    let _: i64 = c.cmd(0, &["ZADD", store, "1765150001000", id]).await;
    let _: i64 = c.cmd(0, &["APPEND", &expires, ""]).await;
    let _: i64 = c.cmd(0, &["EXPIRE", &expires, "1"]).await;
    let _: i64 = c.cmd(0, &["EXPIRE", &session, "301"]).await;
    let created = format!("spring:session:event:0:created:{id}");
    let _: i64 = c.cmd(0, &["PUBLISH", &created, "session"]).await;

    // Region 2 hears of it and finds it by principal.
    for (i, (_, rx)) in listeners.iter_mut().enumerate() {
        let m = next_on(rx, &created, NAMES[i]).await;
        assert_eq!(m.last().map(String::as_str), Some("session"));
    }
    crate::common::cluster::eventually(
        "region 2 finds the session by principal",
        DEADLINE,
        || async {
            let ids: Vec<String> = c.cmd(1, &["SMEMBERS", index]).await;
            let attrs: std::collections::HashMap<String, String> =
                c.cmd(1, &["HGETALL", &session]).await;
            let due: Vec<String> = c
                .cmd(
                    1,
                    &["ZRANGEBYSCORE", store, "-inf", "+inf", "LIMIT", "0", "100"],
                )
                .await;
            if ids == [id]
                && attrs.get("maxInactiveInterval").map(String::as_str) == Some("1")
                && due == [id]
            {
                Ok(())
            } else {
                Err(format!(
                    "index {ids:?}, session {attrs:?}, expiration store {due:?}"
                ))
            }
        },
    )
    .await;

    // The session's expiry key expires: both regions' listeners hear it.
    for (i, (_, rx)) in listeners.iter_mut().enumerate() {
        let m = next_on(rx, "__keyevent@0__:expired", NAMES[i]).await;
        assert_eq!(m.last(), Some(&expires), "{}", NAMES[i]);
    }
    // The application that heard it first cleans up; both hear the delete.
    let _: i64 = c.cmd(1, &["DEL", &session]).await;
    let _: i64 = c.cmd(1, &["SREM", index, id]).await;
    let _: i64 = c.cmd(1, &["ZREM", store, id]).await;
    for (i, (_, rx)) in listeners.iter_mut().enumerate() {
        let m = next_on(rx, "__keyevent@0__:del", NAMES[i]).await;
        assert_eq!(m.last(), Some(&session), "{}", NAMES[i]);
    }
    let ids: Vec<String> = c.cmd(1, &["SMEMBERS", index]).await;
    assert!(ids.is_empty(), "{ids:?}");
    c.shutdown().await;
}
