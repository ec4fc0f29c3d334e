//! Recovery through the real files: replicas with a journal, their records persisted as the
//! node does (one batch per step, snapshots in between), then recovered and compared.

use super::*;
use bytes::Bytes;
use sessionmesh_core::{Config as CoreConfig, Now, RegionId, Replica};

fn settings(dir: &Path, durability: Durability) -> Persistence {
    Persistence {
        durability,
        ..Persistence::new(dir.to_owned())
    }
}

/// Region "a" under `everysec`, with `tweak` applied to the settings; `dir` must outlive it.
fn open_everysec(dir: &Path, tweak: impl FnOnce(&mut Persistence)) -> Persist {
    let mut s = settings(dir, Durability::Everysec);
    tweak(&mut s);
    Persist::open(&s, "a").unwrap().0
}

fn core(me: u16) -> CoreConfig {
    CoreConfig {
        journal: true,
        ..CoreConfig::new(RegionId(me), &[RegionId(1), RegionId(2)])
    }
}

fn run(r: &mut Replica, p: &Persist, line: &str, t: u64) {
    let args: Vec<Bytes> = line
        .split_whitespace()
        .map(|s| Bytes::copy_from_slice(s.as_bytes()))
        .collect();
    r.execute(&args, Now::at(t));
    p.enqueue(r.ready().records);
}

/// Delivers every frame between two replicas (and runs their timers at `t`), persisting
/// region 1's records as it goes.
fn settle(rs: &mut [Replica; 2], p: &Persist, t: u64) {
    for _ in 0..20 {
        let mut moved = false;
        for i in 0..2 {
            rs[i].handle_timeout(Now::at(t));
            while let Some(tx) = rs[i]
                .poll_transmit()
                .or_else(|| rs[i].poll_catchup(|_| usize::MAX))
            {
                moved = true;
                let j = 1 - i;
                rs[j]
                    .handle_frame(RegionId(i as u16 + 1), &tx.bytes, Now::at(t))
                    .unwrap();
            }
            let recs = rs[i].ready().records;
            if i == 0 {
                p.enqueue(recs);
            }
        }
        if !moved {
            return;
        }
    }
}

fn assert_same(a: &Replica, b: &Replica, t: u64) {
    let keys = |r: &Replica| {
        r.snapshot()
            .keys
            .into_iter()
            .map(|(k, _)| k)
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(a), keys(b));
    assert_eq!(a.digest(Now::at(t)), b.digest(Now::at(t)));
    assert_eq!(a.snapshot().wm, b.snapshot().wm);
    assert_eq!(a.snapshot().last_push_to, b.snapshot().last_push_to);
}

#[tokio::test]
async fn snapshot_plus_log_recovers_the_state_before_the_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let s = settings(tmp.path(), Durability::Always);
    let (p, rec) = Persist::open(&s, "a").unwrap();
    assert!(rec.records.is_empty() && rec.snapshot.keys.is_empty());
    let mut rs = [Replica::new(core(1)), Replica::new(core(2))];
    for (i, r) in rs.iter_mut().enumerate() {
        r.handle_connected(RegionId(2 - i as u16), Now::at(1));
    }
    let mut t = 1_000;
    for n in 0..50 {
        run(&mut rs[0], &p, &format!("SET k{n} v{n}"), t);
        run(&mut rs[0], &p, &format!("HSET h{} f{n} x", n % 7), t);
        if n % 5 == 0 {
            let args = [
                Bytes::from_static(b"SET"),
                Bytes::from(format!("remote{n}")),
                Bytes::from_static(b"r"),
            ];
            rs[1].execute(&args, Now::at(t));
        }
        t += 3;
        if n == 20 {
            settle(&mut rs, &p, t);
            let id = p.begin_snapshot();
            p.finish_snapshot(id, rs[0].snapshot_unsorted(Vec::new()), Duration::ZERO)
                .unwrap();
        }
    }
    run(&mut rs[0], &p, "DEL k3", t);
    run(&mut rs[0], &p, "EXPIRE k4 1000", t);
    settle(&mut rs, &p, t + 10);
    let t = t + 10;
    let pending = p.pending();
    if let Some(tk) = pending {
        assert!(p.wait(tk).await);
    }
    // "Crash": drop without a snapshot (close only joins the writer; everything was durable).
    drop(p);

    let (p2, rec) = Persist::open(&s, "a").unwrap();
    assert!(rec.snapshot_id.is_some(), "a snapshot was taken");
    assert!(
        !rec.records.is_empty(),
        "records after the snapshot are kept"
    );
    let back = Replica::recover(core(1), rec.snapshot, rec.records, Now::at(t));
    assert!(back
        .live(Now::at(t))
        .keys()
        .any(|k| k.starts_with(b"remote")));
    assert_same(&rs[0], &back, t);
    drop(p2);
}

#[test]
fn a_torn_tail_is_truncated_and_the_whole_frames_recovered() {
    let tmp = tempfile::tempdir().unwrap();
    let mut r = Replica::new(core(1));
    let (p, _) = Persist::open(&settings(tmp.path(), Durability::Everysec), "a").unwrap();
    for n in 0..10 {
        run(&mut r, &p, &format!("SET k{n} v"), 1_000 + n);
    }
    p.close();
    let name = format!("segment-{:020}.log", 1);
    let full = std::fs::read(tmp.path().join("a").join(&name)).unwrap();
    let magic = files::SEGMENT_MAGIC.len();
    let (bodies, tail) = frame::decode(&full[magic..]);
    assert_eq!((bodies.len(), tail), (10, frame::Tail::Clean));
    let ends: Vec<usize> = bodies
        .iter()
        .scan(magic, |at, b| {
            *at += frame::HEADER + b.len();
            Some(*at)
        })
        .collect();
    // Every cut inside the last two frames (the codec's own tests cover every offset).
    for cut in ends[7]..full.len() {
        let sub = tempfile::tempdir().unwrap();
        let d = sub.path().join("a");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(&name), &full[..cut]).unwrap();
        let (p, rec) = Persist::open(&settings(sub.path(), Durability::Everysec), "a").unwrap();
        p.close();
        let whole = ends.iter().filter(|e| **e <= cut).count();
        assert_eq!(rec.frames as usize, whole, "cut at {cut}");
        let back = Replica::recover(core(1), rec.snapshot, rec.records, Now::at(2_000));
        assert_eq!(back.live(Now::at(2_000)).len(), whole, "cut at {cut}");
        // The file was cut back to whole frames.
        let after = std::fs::read(d.join(&name)).unwrap();
        assert_eq!(after.len(), ends[whole - 1], "cut at {cut}");
    }
}

#[test]
fn corruption_before_the_last_segment_is_an_error_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let s = settings(tmp.path(), Durability::Always);
    let mut r = Replica::new(core(1));
    for round in 0..2 {
        let (p, _) = Persist::open(&s, "a").unwrap();
        for n in 0..3 {
            run(&mut r, &p, &format!("SET k{round}{n} v"), 1_000 + n);
        }
        p.close();
    }
    let seg = tmp.path().join("a").join(format!("segment-{:020}.log", 1));
    let mut buf = std::fs::read(&seg).unwrap();
    let last = buf.len() - 1;
    buf[last] ^= 0x40;
    std::fs::write(&seg, &buf).unwrap();
    let e = Persist::open(&s, "a").unwrap_err().to_string();
    assert!(e.contains("segment-00000000000000000001.log"), "{e}");
    assert!(e.contains("CRC"), "{e}");
}

#[tokio::test]
async fn a_write_error_is_final_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let s = settings(tmp.path(), Durability::Always);
    let mut r = Replica::new(core(1));
    let (p, _) = Persist::open(&s, "a").unwrap();
    run(&mut r, &p, "SET a 1", 1_000);
    // The next segment's name is taken: the rotation cannot create it.
    std::fs::write(
        tmp.path().join("a").join(format!("segment-{:020}.log", 2)),
        b"x",
    )
    .unwrap();
    p.begin_snapshot();
    run(&mut r, &p, "SET b 2", 1_001);
    let t = p
        .pending()
        .expect("the write after the rotation is never durable");
    assert!(
        !p.wait(t).await,
        "a ticket after the failure is never durable"
    );
    let reason = tokio::time::timeout(Duration::from_secs(5), p.failed())
        .await
        .expect("failure reported");
    assert!(
        reason.contains("segment-00000000000000000002.log"),
        "{reason}"
    );
}

/// The log and snapshots of an encrypted folder round-trip under the right key; a wrong key, a
/// missing key, or a key for a plain folder are refused before anything is read or changed;
/// tampering with a sealed frame is an error, not a torn tail.
#[tokio::test]
async fn encryption_at_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("key");
    let other = tmp.path().join("other");
    std::fs::write(&key, "11".repeat(32)).unwrap();
    std::fs::write(&other, [9u8; 32]).unwrap();
    let data = tmp.path().join("data");
    let with = |k: Option<&Path>| Persistence {
        encryption_key_file: k.map(Path::to_owned),
        ..settings(&data, Durability::Always)
    };
    let (p, _) = Persist::open(&with(Some(&key)), "a").unwrap();
    let mut r = Replica::new(core(1));
    for n in 0..20 {
        run(
            &mut r,
            &p,
            &format!("SET secret{n} plaintext-marker-{n}"),
            1_000 + n,
        );
    }
    let id = p.begin_snapshot();
    p.finish_snapshot(id, r.snapshot_unsorted(Vec::new()), Duration::ZERO)
        .unwrap();
    run(&mut r, &p, "SET after snapshot-marker", 2_000);
    if let Some(tk) = p.pending() {
        assert!(p.wait(tk).await);
    }
    drop(p);

    // Nothing readable on disk.
    let dir = data.join("a");
    for f in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        assert!(
            !bytes.windows(6).any(|w| w == b"marker"),
            "plaintext on disk"
        );
    }
    let before: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|f| {
            let p = f.unwrap().path();
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();

    let wrong = Persist::open(&with(Some(&other)), "a").unwrap_err();
    assert!(
        wrong.to_string().contains("wrong encryption key"),
        "{wrong}"
    );
    let missing = Persist::open(&with(None), "a").unwrap_err();
    assert!(missing.to_string().contains("encrypted"), "{missing}");
    for (p, b) in &before {
        assert_eq!(&std::fs::read(p).unwrap(), b, "{} changed", p.display());
    }

    let (p, rec) = Persist::open(&with(Some(&key)), "a").unwrap();
    let back = Replica::recover(core(1), rec.snapshot, rec.records, Now::at(3_000));
    assert_same(&r, &back, 3_000);
    drop(p);

    // A key offered for a folder that already holds plain data is refused too.
    let plain = tmp.path().join("plain");
    let (p, _) = Persist::open(&settings(&plain, Durability::Always), "a").unwrap();
    run(&mut Replica::new(core(1)), &p, "SET x y", 1);
    if let Some(tk) = p.pending() {
        assert!(p.wait(tk).await);
    }
    drop(p);
    let e = Persist::open(
        &Persistence {
            encryption_key_file: Some(key.clone()),
            ..settings(&plain, Durability::Always)
        },
        "a",
    )
    .unwrap_err();
    assert!(e.to_string().contains("unencrypted"), "{e}");
}

/// The snapshot layout before keys were shared with the store (`Vec<(Bytes, KeyState)>`),
/// field for field: files must keep encoding exactly as it did.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct PlainSnapshot {
    keys: Vec<(Bytes, sessionmesh_core::KeyState)>,
    wm: Vec<(RegionId, sessionmesh_core::Hlc)>,
    clock: sessionmesh_core::Hlc,
    last_push_to: sessionmesh_core::Hlc,
    dirty: Vec<Bytes>,
    held: Vec<(Bytes, sessionmesh_core::KeyState, RegionId, bool)>,
}

impl PlainSnapshot {
    fn of(s: &Snapshot) -> PlainSnapshot {
        PlainSnapshot {
            keys: s
                .keys
                .iter()
                .map(|(k, st)| (k.clone(), (**st).clone()))
                .collect(),
            wm: s.wm.clone(),
            clock: s.clock,
            last_push_to: s.last_push_to,
            dirty: s.dirty.clone(),
            held: s.held.clone(),
        }
    }
}

/// A snapshot taken unsorted under the lock and finished later, with writes in between, is
/// written in store order, byte for byte as a plain copy of the state at the time it was
/// taken encodes, and decodes to that state.
#[tokio::test]
async fn a_snapshot_file_holds_the_state_when_taken_in_the_old_format() {
    let tmp = tempfile::tempdir().unwrap();
    let s = settings(tmp.path(), Durability::Always);
    let (p, _) = Persist::open(&s, "a").unwrap();
    let mut rs = [Replica::new(core(1)), Replica::new(core(2))];
    for (i, r) in rs.iter_mut().enumerate() {
        r.handle_connected(RegionId(2 - i as u16), Now::at(1));
    }
    let mut t = 1_000;
    for n in 0..300 {
        run(&mut rs[0], &p, &format!("SET k{n} v{n}"), t);
        run(&mut rs[0], &p, &format!("HSET h{} f{n} x{n}", n % 13), t);
        run(&mut rs[0], &p, &format!("SET e{n} v EX 100"), t);
        if n % 4 == 0 {
            run(&mut rs[0], &p, &format!("DEL k{}", n / 2), t);
            let args = [
                Bytes::from_static(b"SET"),
                Bytes::from(format!("remote{n}")),
                Bytes::from_static(b"r"),
            ];
            rs[1].execute(&args, Now::at(t));
        }
        if n % 50 == 0 {
            settle(&mut rs, &p, t);
        }
        t += 3;
    }
    let expected = rs[0].snapshot();
    let plain = PlainSnapshot::of(&expected);
    assert!(!plain.dirty.is_empty() && plain.keys.iter().any(|(k, _)| k.starts_with(b"remote")));
    let order = |k: &Bytes| (sessionmesh_core::store::key_hash(k), k.clone());
    assert!(
        plain
            .keys
            .windows(2)
            .all(|w| order(&w[0].0) < order(&w[1].0)),
        "keys in store order"
    );
    let id = p.begin_snapshot();
    // Room for fewer keys than there are: the list grows under the lock if it must.
    let unsorted = rs[0].snapshot_unsorted(Snapshot::key_room(100));
    // Writes made after the snapshot was taken are not in it.
    for n in 0..300 {
        run(&mut rs[0], &p, &format!("SET k{n} later"), t);
        run(&mut rs[0], &p, &format!("HSET h{} f{n} later", n % 13), t);
    }
    run(&mut rs[0], &p, "DEL e1 e2 e3", t);
    p.finish_snapshot(id, unsorted, Duration::ZERO).unwrap();
    if let Some(tk) = p.pending() {
        assert!(p.wait(tk).await);
    }
    drop(p);

    let file = std::fs::read(tmp.path().join("a").join(format!("snapshot-{id:020}.snap"))).unwrap();
    let body = &file[20..];
    assert!(
        body == rmp_serde::to_vec(&plain).unwrap(),
        "the encoding changed"
    );
    let decoded: PlainSnapshot = rmp_serde::from_slice(body).unwrap();
    assert_eq!(decoded, plain);
    let (p, rec) = Persist::open(&s, "a").unwrap();
    assert_eq!(rec.snapshot_id, Some(id));
    assert_eq!(PlainSnapshot::of(&rec.snapshot), plain);
    // And the log after it brings the later writes back.
    let back = Replica::recover(core(1), rec.snapshot, rec.records, Now::at(t));
    assert_same(&rs[0], &back, t);
    drop(p);
}

/// An idle region logs a push (and watermarks) every second. Those frames alone must not make
/// a time-based snapshot due, or an idle node would rewrite its whole state every
/// `snapshot_every_secs`; a frame that changes a key does.
#[tokio::test]
async fn only_key_changes_make_a_snapshot_due_by_time() {
    let tmp = tempfile::tempdir().unwrap();
    let p = open_everysec(tmp.path(), |s| s.snapshot_every_secs = 0);
    let mut r = Replica::new(core(1));
    r.handle_connected(RegionId(2), Now::at(1));
    for t in [1_000, 2_000, 3_000] {
        r.handle_timeout(Now::at(t));
        let recs = r.ready().records;
        assert!(!recs.is_empty(), "the periodic push is logged");
        assert!(recs.iter().all(|x| !changes_a_key(x)), "{recs:?}");
        p.enqueue(recs);
    }
    assert!(!p.snapshot_due(), "idle frames made a snapshot due");
    run(&mut r, &p, "SET k v", 4_000);
    assert!(p.snapshot_due(), "a changed key did not");
    p.close();
}

/// Past `max_queued_records`, `backlogged` hands out a future that resolves once the log's
/// thread has taken the queue (it is asked to run a round, not left to its once-a-second
/// timer); below the bound there is nothing to wait for.
#[tokio::test]
async fn a_backlog_over_the_bound_is_waited_out() {
    let tmp = tempfile::tempdir().unwrap();
    let p = open_everysec(tmp.path(), |s| s.max_queued_records = 10);
    let mut r = Replica::new(core(1));
    run(&mut r, &p, "SET k v", 1_000);
    let queued = p.backlog();
    // (0 if the log's once-a-second round happened to run in between.)
    assert!(queued <= 10, "{queued} records queued by one SET");
    assert!(p.backlogged().is_none(), "within the bound");
    for n in 1..40 {
        run(&mut r, &p, &format!("SET k{n} v"), 1_000 + n);
    }
    let wait = p.backlogged().expect("over the bound");
    // Well under the log thread's one-second timer: the future asks for a round itself.
    tokio::time::timeout(Duration::from_millis(500), wait)
        .await
        .expect("the log took the queue");
    assert!(p.backlog() <= 10, "{} records still queued", p.backlog());
    assert!(p.backlogged().is_none());
    p.close();
}
