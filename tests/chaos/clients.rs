//! Seeded clients: each owns a few keys, writes them at its home region one operation at a
//! time, reads them anywhere, and records every operation with its outcome.

use super::history::{History, Op, Outcome, Record};
use super::mesh::{connect, NAMES};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use redis::aio::MultiplexedConnection;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const CLIENTS: usize = 6;
pub const KEYS_PER_CLIENT: usize = 8;
/// How long an operation may take before the client gives up on it (outcome unknown).
const OP_TIMEOUT: Duration = Duration::from_secs(1);

/// What the clients share with the test.
pub struct Shared {
    pub history: Mutex<History>,
    pub urls: Vec<String>,
    pub epoch: Instant,
    /// Set during quiescence: clients finish their operation and wait.
    pub paused: AtomicBool,
    pub in_flight: AtomicUsize,
    pub stop: AtomicBool,
}

impl Shared {
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

pub async fn run_client(shared: Arc<Shared>, client: usize, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (0x9e37_79b9 * (client as u64 + 1)));
    let home = client % NAMES.len();
    let mut conns: Vec<Option<MultiplexedConnection>> = vec![None; NAMES.len()];
    let mut conn_gen = 0u64;
    let mut seq = 0u64;
    while !shared.stop.load(Ordering::SeqCst) {
        if shared.paused.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        shared.in_flight.fetch_add(1, Ordering::SeqCst);
        // Checked again: the test sets `paused` and then waits for `in_flight` to drain.
        if shared.paused.load(Ordering::SeqCst) {
            shared.in_flight.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        let key = format!("c{client}:k{}", rng.gen_range(0..KEYS_PER_CLIENT));
        let roll = rng.gen_range(0..100);
        let (op, region) = match roll {
            0..45 => {
                seq += 1;
                let value = format!("{client}-{seq}");
                (
                    Op::Set {
                        value,
                        ttl_ms: 600_000,
                        short: false,
                    },
                    home,
                )
            }
            45..55 => {
                seq += 1;
                let value = format!("{client}-{seq}");
                let ttl_ms = rng.gen_range(300..=1500);
                (
                    Op::Set {
                        value,
                        ttl_ms,
                        short: true,
                    },
                    home,
                )
            }
            55..65 => (Op::Del, home),
            65..73 => (Op::Expire, home),
            73..95 => {
                let region = rng.gen_range(0..NAMES.len());
                (Op::Get { region }, region)
            }
            _ => (Op::Wait, home),
        };
        let start_ms = shared.now_ms();
        let cmd = match &op {
            Op::Set { value, ttl_ms, .. } => {
                let mut c = redis::cmd("SET");
                c.arg(&key).arg(value).arg("PX").arg(*ttl_ms);
                c
            }
            Op::Del => {
                let mut c = redis::cmd("DEL");
                c.arg(&key);
                c
            }
            Op::Expire => {
                let mut c = redis::cmd("PEXPIRE");
                c.arg(&key).arg(600_000);
                c
            }
            Op::Get { .. } => {
                let mut c = redis::cmd("GET");
                c.arg(&key);
                c
            }
            Op::Wait => {
                let mut c = redis::cmd("WAIT");
                c.arg(1).arg(100);
                c
            }
        };
        if conns[region].is_none() {
            if let Ok(c) = connect(&shared.urls[region]).await {
                conns[region] = Some(c);
                if region == home {
                    conn_gen += 1;
                }
            }
        }
        let outcome = match conns[region].as_mut() {
            None => Outcome::NotSent,
            Some(c) => {
                match tokio::time::timeout(OP_TIMEOUT, cmd.query_async::<redis::Value>(c)).await {
                    Err(_) => Outcome::Unknown("timed out".into()),
                    // Refused while the region restores: not executed.
                    Ok(Err(e)) if e.code() == Some("LOADING") => Outcome::NotSent,
                    Ok(Err(e)) => Outcome::Unknown(e.to_string()),
                    Ok(Ok(v)) => match v {
                        redis::Value::Okay => Outcome::Ok,
                        redis::Value::SimpleString(s) if s == "OK" => Outcome::Ok,
                        redis::Value::Int(n) => Outcome::Int(n),
                        redis::Value::Nil => Outcome::Value(None),
                        redis::Value::BulkString(b) => {
                            Outcome::Value(Some(String::from_utf8_lossy(&b).into_owned()))
                        }
                        other => Outcome::Unknown(format!("unexpected reply {other:?}")),
                    },
                }
            }
        };
        let failed = matches!(outcome, Outcome::Unknown(_));
        if failed {
            // A fresh connection for the next operation; the old one's command may still run.
            conns[region] = None;
        }
        shared.history.lock().unwrap().push(Record {
            client,
            conn: conn_gen,
            key,
            home,
            op,
            start_ms,
            end_ms: shared.now_ms(),
            outcome: outcome.clone(),
        });
        if failed && region == home {
            conns[home] = settle(&shared, home).await;
            if conns[home].is_some() {
                conn_gen += 1;
            }
        }
        shared.in_flight.fetch_sub(1, Ordering::SeqCst);
        if matches!(outcome, Outcome::NotSent) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        } else {
            tokio::time::sleep(Duration::from_millis(rng.gen_range(5..40))).await;
        }
    }
}

/// After an operation at the home region got no reply, waits (ten seconds at most) until a
/// new connection's read is answered there, so the unanswered command (held while the region
/// restored, say) has run or died before the client's next write: the checker assumes an
/// unanswered write happened at its place in the client's order, or not at all.
async fn settle(shared: &Shared, home: usize) -> Option<MultiplexedConnection> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !shared.stop.load(Ordering::SeqCst) {
        if let Ok(mut c) = connect(&shared.urls[home]).await {
            // A data command: held like the unanswered one while the region restores (PING
            // is answered at once, as Redis answers it while loading).
            let mut probe = redis::cmd("EXISTS");
            probe.arg("settle-probe");
            let answered =
                tokio::time::timeout(Duration::from_secs(5), probe.query_async::<i64>(&mut c))
                    .await;
            if let Ok(Ok(_)) = answered {
                // The held command woke with the probe; give it a moment to finish.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return Some(c);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}
