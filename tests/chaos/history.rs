//! Every client operation, as recorded, and the checker run at each quiescence point.
//!
//! Each key is written by one client only, always at its home region, one operation at a time,
//! so the writes to a key are totally ordered by the client. The checker folds a key's
//! operations since the last quiescence point into the set of states the key may be in:
//!
//! - an acknowledged operation is applied to every candidate state (a `PEXPIRE` or a `GET` at
//!   the home region also filters the candidates by its reply: that is read-your-writes, and a
//!   deleted or expired session that came back shows up there);
//! - an operation with no reply (timed out, connection lost) may or may not have happened:
//!   both the states before and after it stay candidates;
//! - an acknowledged write whose home region later lost its disk in the same period (emptied,
//!   or rolled back to a backup taken before the write finished), and that no `WAIT` showed
//!   held by another region, may be lost legitimately: it counts as unacknowledged;
//! - a short TTL (at most 1.5 s) has always run out by the time a quiescence point is checked.
//!
//! At the quiescence point, every region must hold the same keys, every key in one of its
//! candidate states, every present key with a TTL (the clients never write one without), and
//! no key that no client wrote. The observed state is then the next period's starting state.
//! Values are unique (`client-sequence`), so any value read anywhere must be one the key's
//! client wrote: a value nobody wrote is reported at once.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// One client operation.
#[derive(Clone, Debug)]
pub enum Op {
    /// `SET key value PX ttl`; `short` when the TTL is at most 1.5 s.
    Set {
        value: String,
        ttl_ms: u64,
        short: bool,
    },
    Del,
    /// `PEXPIRE key 600000`.
    Expire,
    /// `GET key` at `region`.
    Get {
        region: usize,
    },
    /// `WAIT 1 100` on the client's connection to its home region.
    Wait,
}

/// What came back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Int(i64),
    Value(Option<String>),
    Ok,
    /// Not sent (no connection), or refused with `LOADING` (a region restoring): it did not
    /// happen.
    NotSent,
    /// Sent, and no reply: it may or may not have happened.
    Unknown(String),
}

#[derive(Clone, Debug)]
pub struct Record {
    pub client: usize,
    /// The client's connection generation (a `WAIT` covers writes on its own connection).
    pub conn: u64,
    pub key: String,
    pub home: usize,
    pub op: Op,
    pub start_ms: u64,
    pub end_ms: u64,
    pub outcome: Outcome,
}

/// A key's state, as the checker models it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    Absent,
    /// Present with a long TTL.
    Long(String),
    /// Present with a TTL of at most 1.5 s: it may have expired.
    Short(String),
}

impl State {
    fn value(&self) -> Option<&str> {
        match self {
            State::Absent => None,
            State::Long(v) | State::Short(v) => Some(v),
        }
    }
}

/// A restart of a region that destroyed part of its disk: writes it acknowledged after
/// `lost_after_ms` and before `killed_ms` may be gone (unless a `WAIT` showed another region
/// held them).
#[derive(Clone, Debug)]
pub struct DiskLoss {
    pub region: usize,
    pub lost_after_ms: u64,
    pub killed_ms: u64,
}

/// A violation found by the checker.
#[derive(Debug)]
pub struct Violation {
    pub key: String,
    pub what: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.what)
    }
}

/// The whole history, and each key's state at the last quiescence point.
#[derive(Default)]
pub struct History {
    pub records: Vec<Record>,
    /// Index of the first record of the current period.
    period_start: usize,
    /// When the current period began (the last quiescence point passed).
    pub period_start_ms: u64,
    base: BTreeMap<String, State>,
    /// Every value each key's client ever tried to write.
    written: BTreeMap<String, BTreeSet<String>>,
    pub losses: Vec<DiskLoss>,
}

impl History {
    pub fn push(&mut self, r: Record) {
        if let Op::Set { value, .. } = &r.op {
            self.written
                .entry(r.key.clone())
                .or_default()
                .insert(value.clone());
        }
        self.records.push(r);
    }

    fn period(&self) -> &[Record] {
        &self.records[self.period_start..]
    }

    /// Whether acknowledged write `r` may have been lost with its home region's disk.
    fn maybe_lost(&self, r: &Record) -> bool {
        self.losses.iter().any(|l| {
            l.region == r.home
                && r.end_ms > l.lost_after_ms
                && r.end_ms <= l.killed_ms
                && !self.period().iter().any(|w| {
                    matches!(w.op, Op::Wait)
                        && w.client == r.client
                        && w.conn == r.conn
                        && w.start_ms >= r.end_ms
                        && w.end_ms <= l.killed_ms
                        && matches!(w.outcome, Outcome::Int(n) if n >= 1)
                })
        })
    }

    /// The states `key` may be in now, or the violations its own history shows.
    pub fn candidates(&self, key: &str) -> Result<BTreeSet<State>, Violation> {
        let mut states: BTreeSet<State> = [self.base.get(key).cloned().unwrap_or(State::Absent)]
            .into_iter()
            .collect();
        for r in self.period().iter().filter(|r| r.key == key) {
            let uncertain = match &r.outcome {
                Outcome::NotSent => continue,
                Outcome::Unknown(_) => true,
                _ => self.maybe_lost(r),
            };
            let next = self.apply(r, &states)?;
            if uncertain {
                states.extend(next);
            } else {
                states = next;
            }
        }
        Ok(states)
    }

    /// The candidate states after `r` (acknowledged, or assumed to have happened).
    fn apply(&self, r: &Record, states: &BTreeSet<State>) -> Result<BTreeSet<State>, Violation> {
        let violation = |what: String| Violation {
            key: r.key.clone(),
            what,
        };
        let out: BTreeSet<State> = match (&r.op, &r.outcome) {
            (Op::Set { value, short, .. }, _) => {
                let v = value.clone();
                [if *short {
                    State::Short(v)
                } else {
                    State::Long(v)
                }]
                .into()
            }
            (Op::Del, _) => [State::Absent].into(),
            (Op::Expire, Outcome::Int(1)) => states
                .iter()
                .filter_map(|s| s.value().map(|v| State::Long(v.to_string())))
                .collect(),
            (Op::Expire, Outcome::Int(_)) => states
                .iter()
                .filter(|s| !matches!(s, State::Long(_)))
                .map(|_| State::Absent)
                .collect(),
            (Op::Expire, _) => states
                .iter()
                .flat_map(|s| match s {
                    State::Short(v) => vec![State::Long(v.clone()), State::Absent],
                    other => vec![other.clone()],
                })
                .collect(),
            (Op::Get { region }, Outcome::Value(got)) => {
                if let Some(v) = got {
                    if !self.written.get(&r.key).is_some_and(|w| w.contains(v)) {
                        return Err(violation(format!(
                            "GET at region {region} returned {v:?}, a value nobody wrote"
                        )));
                    }
                }
                if *region != r.home {
                    return Ok(states.clone());
                }
                states
                    .iter()
                    .filter_map(|s| match (s, got) {
                        (State::Absent, None) | (State::Short(_), None) => Some(State::Absent),
                        (State::Long(v) | State::Short(v), Some(g)) if v == g => Some(s.clone()),
                        _ => None,
                    })
                    .collect()
            }
            (Op::Get { .. } | Op::Wait, _) => states.clone(),
        };
        if out.is_empty() {
            return Err(violation(format!(
                "{:?} at {} ms replied {:?}, which no candidate state {:?} allows",
                r.op, r.end_ms, r.outcome, states
            )));
        }
        Ok(out)
    }

    /// Checks the regions' `dumps` (all of them identical already) against every key's
    /// candidates; on success they become the next period's starting states.
    pub fn check_quiescent(
        &mut self,
        dump: &BTreeMap<String, (String, i64)>,
        now_ms: u64,
    ) -> Vec<Violation> {
        let mut violations = Vec::new();
        let keys: BTreeSet<String> = self
            .records
            .iter()
            .map(|r| r.key.clone())
            .chain(dump.keys().cloned())
            .collect();
        let mut observed = BTreeMap::new();
        for key in keys {
            let got = dump.get(&key);
            if let Some((v, pttl)) = got {
                if !self.written.get(&key).is_some_and(|w| w.contains(v)) {
                    violations.push(Violation {
                        key: key.clone(),
                        what: format!("holds {v:?}, a value nobody wrote"),
                    });
                    continue;
                }
                if *pttl < 0 {
                    violations.push(Violation {
                        key: key.clone(),
                        what: format!("holds {v:?} with PTTL {pttl}: its TTL was lost"),
                    });
                    continue;
                }
            }
            let state = match got {
                None => State::Absent,
                Some((v, _)) => State::Long(v.clone()),
            };
            match self.candidates(&key) {
                Err(v) => violations.push(v),
                Ok(c) => {
                    let allowed = match &state {
                        State::Absent => {
                            c.contains(&State::Absent)
                                || c.iter().any(|s| matches!(s, State::Short(_)))
                        }
                        State::Long(v) => c.contains(&State::Long(v.clone())),
                        State::Short(_) => unreachable!(),
                    };
                    if !allowed {
                        violations.push(Violation {
                            key: key.clone(),
                            what: format!("holds {state:?}; allowed: {c:?}"),
                        });
                    }
                }
            }
            observed.insert(key, state);
        }
        if violations.is_empty() {
            self.base = observed;
            self.period_start = self.records.len();
            self.period_start_ms = now_ms;
        }
        violations
    }

    /// The records of `key` since the last quiescence point, one per line, for a failure
    /// report.
    pub fn describe(&self, key: &str) -> String {
        let mut out = format!(
            "  state at the last quiescence point ({} ms): {:?}\n",
            self.period_start_ms,
            self.base.get(key).unwrap_or(&State::Absent)
        );
        for r in self.period().iter().filter(|r| r.key == key) {
            out.push_str(&format!(
                "  {:>6}..{:>6} ms  home {} conn {}  {:?} -> {:?}\n",
                r.start_ms, r.end_ms, r.home, r.conn, r.op, r.outcome
            ));
        }
        for l in &self.losses {
            out.push_str(&format!("  disk loss: {l:?}\n"));
        }
        out
    }

    /// Counts of outcomes, for the summary line.
    pub fn tally(&self) -> (usize, usize, usize) {
        let acked = self
            .records
            .iter()
            .filter(|r| !matches!(r.outcome, Outcome::NotSent | Outcome::Unknown(_)))
            .count();
        let unknown = self
            .records
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Unknown(_)))
            .count();
        let not_sent = self
            .records
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::NotSent))
            .count();
        (acked, unknown, not_sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(key: &str, op: Op, outcome: Outcome, t: u64) -> Record {
        Record {
            client: 0,
            conn: 0,
            key: key.into(),
            home: 0,
            op,
            start_ms: t,
            end_ms: t + 1,
            outcome,
        }
    }

    fn set(v: &str) -> Op {
        Op::Set {
            value: v.into(),
            ttl_ms: 600_000,
            short: false,
        }
    }

    /// The checker itself can fail: a lost acknowledged write, a resurrected delete, a value
    /// nobody wrote, a dropped TTL and a stale read at the home region are all reported.
    #[test]
    fn the_checker_catches_what_it_is_for() {
        let mut h = History::default();
        h.push(rec("a", set("1"), Outcome::Ok, 0));
        h.push(rec("a", set("2"), Outcome::Ok, 10));
        let dump = |v: &str, pttl| [("a".to_string(), (v.to_string(), pttl))].into();
        assert_eq!(
            h.check_quiescent(&dump("1", 5000), 20).len(),
            1,
            "lost write"
        );
        assert_eq!(h.check_quiescent(&dump("9", 5000), 20).len(), 1, "phantom");
        assert_eq!(h.check_quiescent(&dump("2", -1), 20).len(), 1, "TTL lost");
        assert!(h.check_quiescent(&dump("2", 5000), 20).is_empty());
        h.push(rec("a", Op::Del, Outcome::Int(1), 30));
        assert_eq!(
            h.check_quiescent(&dump("2", 5000), 40).len(),
            1,
            "resurrected"
        );
        h.push(rec(
            "a",
            Op::Get { region: 0 },
            Outcome::Value(Some("2".into())),
            35,
        ));
        assert_eq!(
            h.check_quiescent(&BTreeMap::new(), 40).len(),
            1,
            "stale home read"
        );
        let mut h2 = History::default();
        h2.push(rec("a", set("1"), Outcome::Ok, 0));
        h2.push(rec("a", set("2"), Outcome::Unknown("timeout".into()), 10));
        assert!(
            h2.check_quiescent(&dump("1", 5000), 20).is_empty(),
            "uncertain kept"
        );
        let mut h3 = History::default();
        h3.push(rec("a", set("1"), Outcome::Ok, 0));
        h3.losses.push(DiskLoss {
            region: 0,
            lost_after_ms: 0,
            killed_ms: 5,
        });
        assert!(
            h3.check_quiescent(&BTreeMap::new(), 20).is_empty(),
            "lost with the disk"
        );
    }
}
