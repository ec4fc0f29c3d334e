//! The oracles: what must hold, checked against the regions' observable state.
//!
//! - **Model.** Every local write a replica reports (`Event::Wrote { key, delta }`, enabled by
//!   `Config::record_writes`) is folded per key with `KeyState::merge`. At quiescence the fold,
//!   viewed at the common end time, is the state every region must show: this catches lost
//!   deltas, resurrected deletes and wrong conflict winners, even when all regions agree. The
//!   fold never collects anything, so it is also the reference that garbage collection must be
//!   invisible against (incarnations are numbered from their creation stamp, so a region that
//!   collected a key numbers its re-creation exactly as one that did not). When a region loses
//!   its disk (or is rolled back to an older copy), its writes that no other region held at that
//!   moment, in its state, its skew buffer or a frame in flight, are legitimately gone: they
//!   leave the fold. Every other write of it must come back.
//! - **Convergence.** At quiescence every region's `live()` is identical; on failure the report
//!   names the first differing key and both values.
//! - **Expiry.** No region ever shows a key whose expiry is before the time it judges expiry by
//!   (`max(HLC ms, wall)`), sampled during the run and checked at the end.
//! - **Clock.** Each region's `clock_last()` never decreases, also across crash and restart.
//! - **Bounded memory.** `index_entries`, `dirty` and `held` stay within a multiple of the
//!   number of distinct keys written (not of the number of writes), sampled during the run.
//!
//! Each (oracle, region) pair is reported once, so one broken invariant does not flood the
//! output. This module judges; it never drives a replica (see [`crate::world`]).

use crate::outcome::{Oracle, Violation};
use bytes::Bytes;
use sessionmesh_core::{Hlc, KeyState, RegionId, Stats, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// A region's visible keys: value and absolute expiry in ms.
pub type Live = BTreeMap<Bytes, (Value, Option<u64>)>;

/// One recorded local write.
struct Written {
    region: usize,
    at_ms: u64,
    key: Bytes,
    delta: KeyState,
    lost: bool,
}

/// The oracles' memory of the run, and the violations found so far.
#[derive(Default)]
pub struct Oracles {
    model: BTreeMap<Bytes, KeyState>,
    /// Every write, for leaving out those lost with a disk.
    log: Vec<Written>,
    /// Some write was lost: the fold is rebuilt from `log` without them.
    any_lost: bool,
    writes: u64,
    /// Per (region, shard): each shard keeps a clock of its own.
    hlc_max: BTreeMap<(usize, u16), Hlc>,
    reported: BTreeSet<(Oracle, usize)>,
    /// Violations in detection order.
    pub violations: Vec<Violation>,
    /// Shards per region: which flush marker covers which key.
    pub shards: u16,
}

/// `fold` with every flush applied as the SPEC defines it: a flush marker of database `d`
/// written in shard `s` at stamp `F` kills every incarnation created at or before `F` of every
/// key of `d` in shard `s` — the flush tombstone joined into the key's fold. The replicas do
/// the same join as markers and deltas arrive, in whatever order; this applies it once, at the
/// end, to the fold of everything written.
fn with_flushes(
    fold: &BTreeMap<Bytes, KeyState>,
    shards: u16,
) -> std::borrow::Cow<'_, BTreeMap<Bytes, KeyState>> {
    use sessionmesh_core::{db, shard, store};
    let shards = shards.max(1);
    let flushes: Vec<(u8, u16, sessionmesh_core::Stamp)> = fold
        .iter()
        .filter_map(|(k, s)| {
            let d = db::flush_marker_db(k)?;
            Some((d, shard::shard_of_key(k, shards), s.cl.stamp))
        })
        .collect();
    if flushes.is_empty() {
        return std::borrow::Cow::Borrowed(fold);
    }
    let mut out = fold.clone();
    for (k, s) in out.iter_mut() {
        let Some(d) = db::db_of(k) else { continue };
        let at = shard::shard_of_key(k, shards);
        for (fd, fs, f) in &flushes {
            if *fs == at && (*fd == d || *fd == db::FLUSH_ALL) {
                s.merge(&store::flush_tombstone(*f));
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

impl Oracles {
    /// Oracles for regions of `shards` shards.
    pub fn with_shards(shards: u16) -> Oracles {
        Oracles {
            shards,
            ..Oracles::default()
        }
    }

    /// Records one local write's delta.
    pub fn record_write(&mut self, key: Bytes, delta: KeyState) {
        self.record_write_at(usize::MAX, 0, key, delta);
    }

    /// Records one local write's delta, made by region `region` at `at_ms`.
    pub fn record_write_at(&mut self, region: usize, at_ms: u64, key: Bytes, delta: KeyState) {
        self.log.push(Written {
            region,
            at_ms,
            key: key.clone(),
            delta: delta.clone(),
            lost: false,
        });
        self.writes += 1;
        match self.model.entry(key) {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(delta);
            }
            std::collections::btree_map::Entry::Occupied(mut o) => {
                o.get_mut().merge(&delta);
            }
        }
    }

    /// The folded state of one key (flushes joined in).
    pub fn model_state(&self, key: &Bytes) -> Option<KeyState> {
        with_flushes(&self.fold(), self.shards).get(key).cloned()
    }

    /// Region `region` lost what it held since `since_ms`: its own writes made at or after it,
    /// and any other region's write it may have taken in since. Those that `held(origin, key,
    /// delta)` says no region still holds (the restarting one's recovered state included, for
    /// writes of other origins) are gone, and leave the model. Returns how many.
    ///
    /// Writes of other origins count too: a write can outlive its own region's lost disk
    /// only at the region it reached, and that region losing its disk as well loses the write
    /// for good (found by `generated_schedules_converge`, seed 919204).
    pub fn lose_writes(
        &mut self,
        region: usize,
        since_ms: u64,
        mut held: impl FnMut(usize, &Bytes, &KeyState) -> bool,
    ) -> u64 {
        let mut n = 0;
        for w in self.log.iter_mut() {
            let exposed = w.region != region || w.at_ms >= since_ms;
            if exposed && !w.lost && !held(w.region, &w.key, &w.delta) {
                w.lost = true;
                n += 1;
            }
        }
        self.any_lost |= n > 0;
        n
    }

    /// The fold of every write not lost.
    fn fold(&self) -> std::borrow::Cow<'_, BTreeMap<Bytes, KeyState>> {
        if !self.any_lost {
            return std::borrow::Cow::Borrowed(&self.model);
        }
        let mut m: BTreeMap<Bytes, KeyState> = BTreeMap::new();
        for w in self.log.iter().filter(|w| !w.lost) {
            match m.entry(w.key.clone()) {
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(w.delta.clone());
                }
                std::collections::btree_map::Entry::Occupied(mut o) => {
                    o.get_mut().merge(&w.delta);
                }
            }
        }
        std::borrow::Cow::Owned(m)
    }

    /// Deltas recorded.
    pub fn writes(&self) -> u64 {
        self.writes
    }

    /// Distinct keys written.
    pub fn distinct_keys(&self) -> u64 {
        self.model.len() as u64
    }

    /// How many distinct keys written so far satisfy `pred` (those of one shard, say).
    pub fn distinct_keys_where(&self, pred: impl Fn(&[u8]) -> bool) -> u64 {
        self.model.keys().filter(|k| pred(k)).count() as u64
    }

    /// Reports a violation (once per oracle and region; `region` may be `usize::MAX` for
    /// cluster-wide ones).
    pub fn report(&mut self, oracle: Oracle, region: usize, at_ms: u64, detail: String) {
        if self.reported.insert((oracle, region)) {
            self.violations.push(Violation {
                oracle,
                at_ms,
                detail,
            });
        }
    }

    /// True when some violation of `oracle` was reported.
    pub fn broke(&self, oracle: Oracle) -> bool {
        self.violations.iter().any(|v| v.oracle == oracle)
    }

    /// Clock oracle: `c` is shard `s` of region `i`'s `clock_last()` now.
    pub fn check_clock(&mut self, i: usize, s: u16, c: Hlc, at_ms: u64, context: &str) {
        let prev = self.hlc_max.entry((i, s)).or_insert(Hlc::ZERO);
        if c < *prev {
            let detail = format!(
                "{} shard {s}'s HLC went from {} back to {} ({context})",
                rid(i),
                *prev,
                c
            );
            self.report(Oracle::ClockMonotonic, i, at_ms, detail);
        } else {
            *prev = c;
        }
    }

    /// Restart oracle for a region that restarted from less than everything (a lost disk, an
    /// older copy): its first stamp after the restart, `issued`, is above every stamp it
    /// issued before, `before`.
    pub fn check_first_stamp(&mut self, i: usize, s: u16, issued: Hlc, before: Hlc, at_ms: u64) {
        if issued <= before {
            let detail = format!(
                "{} shard {s} issued {issued} after losing its disk, not above the stamp \
                 {before} it issued before",
                rid(i)
            );
            self.report(Oracle::ClockMonotonic, i, at_ms, detail);
        }
    }

    /// Restart oracle: a region restarted from what it persisted resumes its clock above every
    /// stamp it issued before the crash (its clock may have been further ahead from observing
    /// peers or its wall clock, which issues nothing). Resets the running check to the new
    /// clock.
    pub fn check_restart(&mut self, i: usize, s: u16, restored: Hlc, issued: Hlc, at_ms: u64) {
        if restored < issued {
            let detail = format!(
                "{} shard {s} restarted with its HLC at {restored}, below the stamp {issued} it issued before the crash",
                rid(i)
            );
            self.report(Oracle::ClockMonotonic, i, at_ms, detail);
        }
        self.hlc_max.insert((i, s), restored);
    }

    /// Bounded-memory oracle on one region's stats.
    /// `keys`: how many distinct keys were written to what `s` counts (a shard's share, or
    /// the whole key space; see [`Oracles::distinct_keys_where`]).
    pub fn check_memory(
        &mut self,
        i: usize,
        s: &Stats,
        keys: u64,
        at_ms: u64,
        (factor, slack): (u64, u64),
    ) {
        let bound = factor * keys + slack;
        for (name, v) in [
            ("index_entries", s.index_entries),
            ("dirty", s.dirty),
            ("held", s.held),
        ] {
            if v > bound {
                let detail = format!(
                    "{}: {name} = {v} exceeds {factor} × {keys} distinct keys + {slack} \
                     (after {} writes)",
                    rid(i),
                    self.writes
                );
                self.report(Oracle::BoundedMemory, i, at_ms, detail);
            }
        }
    }

    /// Expiry oracle: region `i` showed `live` while judging expiry at `judged_ms`.
    pub fn check_expiry(&mut self, i: usize, live: &Live, judged_ms: u64, at_ms: u64) {
        let expired = live
            .iter()
            .find(|(_, (_, exp))| exp.is_some_and(|e| e < judged_ms));
        if let Some((k, (v, exp))) = expired {
            let detail = format!(
                "{} shows {} = {} with expiry {} < its clock {}",
                rid(i),
                show_key(k),
                show_value(v),
                exp.unwrap_or_default(),
                judged_ms
            );
            self.report(Oracle::Expiry, i, at_ms, detail);
        }
    }

    /// The expected state at `now_ms`: the fold of every recorded write, each flush joined
    /// into the keys it covers ([`with_flushes`]).
    pub fn expected(&self, now_ms: u64) -> Live {
        with_flushes(&self.fold(), self.shards)
            .iter()
            .filter_map(|(k, s)| s.view(now_ms).map(|v| (k.clone(), v)))
            .collect()
    }

    /// Model oracle: region `i` shows `live`; `expected` is [`Oracles::expected`] at the same
    /// time.
    pub fn check_model(&mut self, i: usize, live: &Live, expected: &Live, at_ms: u64) {
        if let Some(d) = diff(live, &rid(i).to_string(), expected, "model") {
            self.report(Oracle::Model, i, at_ms, d);
        }
    }
}

/// The region id of position `i`.
pub fn rid(i: usize) -> RegionId {
    RegionId(i as u16 + 1)
}

/// A readable account of how `a` and `b` differ (`None` when equal): how many keys differ and
/// the first differing key with both values.
pub fn diff(a: &Live, a_name: &str, b: &Live, b_name: &str) -> Option<String> {
    if a == b {
        return None;
    }
    let keys: BTreeSet<&Bytes> = a.keys().chain(b.keys()).collect();
    let differing: Vec<&Bytes> = keys
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .collect();
    let first = differing.first()?;
    let show = |m: &Live| match m.get(*first) {
        None => "(absent)".to_string(),
        Some((v, None)) => format!("{} (no expiry)", show_value(v)),
        Some((v, Some(e))) => format!("{} (expires {e})", show_value(v)),
    };
    let mut out = format!(
        "{a_name} and {b_name} differ on {} of {}/{} keys; first {}: {a_name} has {}, {b_name} has {}",
        differing.len(),
        a.len(),
        b.len(),
        show_key(first),
        show(a),
        show(b)
    );
    if differing.len() > 1 {
        let more: Vec<String> = differing
            .iter()
            .skip(1)
            .take(4)
            .map(|k| show_key(k))
            .collect();
        let _ = write!(out, "; also {}", more.join(", "));
    }
    Some(out)
}

fn show_key(k: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(k))
}

fn show_value(v: &Value) -> String {
    let s = format!("{v:?}");
    if s.len() > 300 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(300).map_or(s.len(), |(i, _)| i)]
        )
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessionmesh_core::{Body, Kind, Reg, Stamp};

    fn stamp(ms: u64, r: u16) -> Stamp {
        Stamp::new(Hlc::new(ms, 0), RegionId(r))
    }

    /// A fresh hash incarnation `len` created at `at` with one field.
    fn create(len: u64, at: Stamp, field: &'static str) -> KeyState {
        let mut st = KeyState::incarnation(len, at);
        st.body.kind = Some(Reg::new(at, Kind::Hash));
        st.body.fields.insert(
            Bytes::from_static(field.as_bytes()),
            Reg::new(at, Some(Bytes::from_static(b"v"))),
        );
        st
    }

    fn delete(len: u64, at: Stamp) -> KeyState {
        KeyState {
            cl: Reg::new(at, len),
            body: Body::default(),
        }
    }

    #[test]
    fn small_oracles_fire() {
        let mut o = Oracles::default();
        o.record_write(Bytes::from_static(b"k"), create(1, stamp(1, 1), "f"));
        o.check_clock(0, 0, Hlc::new(10, 0), 1, "t");
        o.check_clock(0, 0, Hlc::new(10, 0), 2, "t");
        assert!(o.violations.is_empty());
        o.check_clock(0, 0, Hlc::new(9, 5), 3, "t");
        assert!(o.broke(Oracle::ClockMonotonic));
        let big = Stats {
            index_entries: 1_000,
            ..Stats::default()
        };
        o.check_memory(
            0,
            &Stats {
                index_entries: 8,
                ..Stats::default()
            },
            1,
            4,
            (8, 0),
        );
        assert!(!o.broke(Oracle::BoundedMemory));
        o.check_memory(0, &big, 1, 4, (8, 64));
        assert!(o.broke(Oracle::BoundedMemory));
        let mut live = Live::new();
        live.insert(
            Bytes::from_static(b"k"),
            (Value::String(Bytes::new()), Some(100)),
        );
        o.check_expiry(0, &live, 100, 5);
        assert!(!o.broke(Oracle::Expiry), "expiry == now is still live");
        o.check_expiry(0, &live, 101, 6);
        assert!(o.broke(Oracle::Expiry));
    }

    /// The fold applies delete-wins: a write made without seeing the delete stays dead, a new
    /// incarnation created after it lives.
    #[test]
    fn model_fold_is_delete_wins() {
        let k = Bytes::from_static(b"k");
        let mut o = Oracles::default();
        let born = stamp(1, 1);
        let len = KeyState::fresh_len(born);
        o.record_write(k.clone(), create(len, born, "a"));
        o.record_write(k.clone(), delete(len + 1, stamp(2, 2)));
        o.record_write(k.clone(), create(len, stamp(3, 1), "b"));
        assert!(
            o.expected(10).is_empty(),
            "the late write into the deleted incarnation is dead"
        );
        let again = stamp(4, 3);
        o.record_write(k.clone(), create(KeyState::fresh_len(again), again, "c"));
        assert_eq!(o.expected(10).len(), 1);
    }

    #[test]
    fn diff_names_first_differing_key() {
        let mut a = Live::new();
        let mut b = Live::new();
        a.insert(
            Bytes::from_static(b"k1"),
            (Value::String(Bytes::from_static(b"x")), None),
        );
        b.insert(
            Bytes::from_static(b"k1"),
            (Value::String(Bytes::from_static(b"x")), None),
        );
        assert!(diff(&a, "r1", &b, "r2").is_none());
        b.insert(
            Bytes::from_static(b"k2"),
            (Value::String(Bytes::from_static(b"y")), Some(5)),
        );
        let d = diff(&a, "r1", &b, "r2").unwrap();
        assert!(d.contains("\"k2\""), "{d}");
        assert!(d.contains("r1 has (absent)"), "{d}");
    }
}
