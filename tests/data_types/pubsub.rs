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
            assert_eq!(kinds, [2, 3], "{}: one message, one pmessage: {a:?} {b:?}", NAMES[i]);
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
        heard.push(next_message(rx, NAMES[2]).await.last().cloned().unwrap_or_default());
    }
    assert_eq!(heard, ["during", "during", "after", "after"]);
    c.shutdown().await;
}
