//! Counters that add up across regions: `INCRBY` and friends on a string, `HINCRBY` and
//! `HINCRBYFLOAT` on a hash field.
//!
//! A counter cannot be a last-writer-wins register: two regions that each add 1 while cut off
//! would both write "their" total, and one addition would be lost. So an increment writes no
//! value. Each region keeps its own running total of what it added to a *target* (the string, or
//! one hash field), a [`Count`], which only that region ever writes: its greatest stamp holds its
//! latest total, so merging is last-writer-wins per (target, region) and nothing is lost. The
//! value a client sees is the target's *base* (the string or field register, as the last
//! `SET`/`HSET` wrote it, or 0) plus every region's total.
//!
//! **Epochs.** A `SET`/`HSET`/`HDEL` of the target, or a `SET` replacing the whole key, starts a
//! new epoch: the stamp of the base register (or of the key's `reset`, whichever is later; see
//! [`Body::epoch`]). A region's total belongs to the epoch it was counted in, and only the
//! current epoch's totals count. The increments the writer saw are therefore absorbed in the
//! value it wrote, and increments made elsewhere that had not seen it belong to an older epoch
//! and are discarded: the write that resets wins over concurrent increments, as a delete wins
//! over concurrent writes (DESIGN §2, "Counters"). A total of an older epoch can never count
//! again (epochs only grow), so [`Body::normalize`](crate::crdt::Body) drops it, and a region
//! that increments in a new epoch starts its total from zero.
//!
//! **Numbers.** Totals are exact decimals: an `i128` of units of 10⁻¹⁷, the 17 fractional
//! digits Redis prints for `INCRBYFLOAT`. Integers (any `i64`) and the decimals sessions count
//! in are exact; Redis computes floats in `long double`, so the two differ past about 19
//! significant digits, and magnitudes from 10²¹ up are refused here (DESIGN §2).

use crate::crdt::Body;
use crate::reg::Reg;
use crate::stamp::{RegionId, Stamp};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Units per 1: totals are integers of 10⁻¹⁷.
pub const SCALE: i128 = 100_000_000_000_000_000;

/// The largest magnitude a total may reach: 10²¹, comfortably inside `i128` even summed over
/// many regions. Beyond it `INCRBYFLOAT` answers as Redis does for an infinite result.
pub const MAX_UNITS: i128 = 1_000 * 1_000_000_000_000_000_000 * SCALE;

/// One region's running total for one target, in one epoch.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Tally {
    /// The epoch the total was counted in ([`Body::epoch`] when it was written).
    pub epoch: Option<Stamp>,
    /// The total, in units of 10⁻¹⁷.
    pub units: i128,
}

/// A region's total for a target: `target` `None` is the string, `Some(f)` hash field `f`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    /// The string (`None`) or a hash field.
    pub target: Option<Bytes>,
    /// The region that counted (and the only one that writes this register).
    pub region: RegionId,
    /// The total, stamped with that region's latest increment.
    pub tally: Reg<Tally>,
}

/// A key's counts, sorted by (target, region) so that equal states compare equal. Boxed and
/// optional: every key's body carries one, and almost none count.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
#[allow(clippy::box_collection)] // the box is the point: 8 bytes in every body, not 24
pub struct Counts(Option<Box<Vec<Count>>>);

impl Counts {
    /// True when there is no count.
    pub fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|v| v.is_empty())
    }

    /// The counts, in (target, region) order.
    pub fn iter(&self) -> std::slice::Iter<'_, Count> {
        match &self.0 {
            Some(v) => v.iter(),
            None => [].iter(),
        }
    }

    /// Counts `c` in, last-writer-wins per (target, region).
    pub fn merge_one(&mut self, c: &Count) {
        let v = self.0.get_or_insert_with(Default::default);
        let key = (c.target.as_ref(), c.region);
        match v.binary_search_by(|m| (m.target.as_ref(), m.region).cmp(&key)) {
            Ok(i) => {
                if v[i].tally.loses_to(&c.tally) {
                    v[i].tally = c.tally.clone();
                }
            }
            Err(i) => v.insert(i, c.clone()),
        }
    }

    /// Keeps the counts for which `keep` holds; returns how many were dropped.
    pub fn retain(&mut self, mut keep: impl FnMut(&Count) -> bool) -> u64 {
        let Some(v) = self.0.as_mut() else { return 0 };
        let before = v.len();
        v.retain(|c| keep(c));
        let dropped = (before - v.len()) as u64;
        if v.is_empty() {
            self.0 = None;
        }
        dropped
    }

    /// The counts for which `keep` holds, copied.
    pub fn filtered(&self, keep: impl Fn(&Count) -> bool) -> Counts {
        let v: Vec<Count> = self.iter().filter(|c| keep(c)).cloned().collect();
        Counts((!v.is_empty()).then(|| Box::new(v)))
    }
}

impl FromIterator<Count> for Counts {
    fn from_iter<I: IntoIterator<Item = Count>>(iter: I) -> Counts {
        let mut c = Counts::default();
        for x in iter {
            c.merge_one(&x);
        }
        c
    }
}

impl Body {
    /// The epoch of `target` ([`crate::counter`]): the stamp of its base register or the key's
    /// `reset`, whichever is later. Both only grow as states merge, so neither does this.
    pub fn epoch(&self, target: Option<&Bytes>) -> Option<Stamp> {
        let base = match target {
            None => self.string.as_ref().map(|r| r.stamp),
            Some(f) => self.fields.get(f).map(|r| r.stamp),
        };
        base.max(self.reset)
    }

    /// The counts of `target` that belong to its current epoch.
    fn current_counts<'a>(&'a self, target: Option<&'a Bytes>) -> impl Iterator<Item = &'a Count> {
        let epoch = self.epoch(target);
        self.counts
            .iter()
            .filter(move |c| c.target.as_ref() == target && c.tally.value.epoch == epoch)
    }

    /// `region`'s total for `target` in the current epoch (0 when it has none): what its next
    /// increment adds to.
    pub fn own_units(&self, target: Option<&Bytes>, region: RegionId) -> i128 {
        self.current_counts(target)
            .find(|c| c.region == region)
            .map_or(0, |c| c.tally.value.units)
    }

    /// Drops the totals of past epochs; returns how many. A delta may lack the base register
    /// a total was counted against, so only totals *older* than the epoch this state knows are
    /// dropped: they are older than the epoch of every state this one merges into.
    pub(crate) fn drop_past_counts(&mut self) -> u64 {
        if self.counts.is_empty() {
            return 0;
        }
        let counts = std::mem::take(&mut self.counts);
        let mut counts = counts;
        let dropped = counts.retain(|c| c.tally.value.epoch >= self.epoch(c.target.as_ref()));
        self.counts = counts;
        dropped
    }

    /// The string value a client sees: the string register plus the current totals.
    pub fn string_value(&self) -> Option<Bytes> {
        let base = self.string.as_ref().map(|r| &r.value);
        if self.counts.is_empty() {
            return base.cloned();
        }
        counted(base, self.current_counts(None))
    }

    /// The value of hash field `f` a client sees, counts included.
    pub fn field_value(&self, f: &Bytes) -> Option<Bytes> {
        let base = self.fields.get(f).and_then(|r| r.value.as_ref());
        if self.counts.is_empty() {
            return base.cloned();
        }
        counted(base, self.current_counts(Some(f)))
    }

    /// The live fields of a hash and their values, in field order.
    pub fn live_fields(&self) -> Box<dyn Iterator<Item = (Bytes, Bytes)> + '_> {
        let plain = self
            .fields
            .iter()
            .filter_map(|(f, r)| r.value.as_ref().map(|v| (f.clone(), v.clone())));
        if self.counts.is_empty() {
            return Box::new(plain);
        }
        let mut all: std::collections::BTreeMap<Bytes, Bytes> = std::collections::BTreeMap::new();
        let named = self
            .fields
            .iter()
            .map(|(f, _)| f)
            .chain(self.counts.iter().filter_map(|c| c.target.as_ref()));
        for f in named {
            if !all.contains_key(f) {
                if let Some(v) = self.field_value(f) {
                    all.insert(f.clone(), v);
                }
            }
        }
        Box::new(all.into_iter())
    }

    /// How many fields a client sees.
    pub fn live_field_count(&self) -> usize {
        if self.counts.is_empty() {
            self.fields
                .iter_unordered()
                .filter(|(_, r)| r.value.is_some())
                .count()
        } else {
            self.live_fields().count()
        }
    }

    /// True when a client sees at least one field.
    pub fn has_live_field(&self) -> bool {
        self.fields.iter_unordered().any(|(_, r)| r.value.is_some())
            || self
                .counts
                .iter()
                .any(|c| c.target.is_some() && self.field_value_of_count(c))
    }

    fn field_value_of_count(&self, c: &Count) -> bool {
        c.target
            .as_ref()
            .is_some_and(|f| c.tally.value.epoch == self.epoch(Some(f)))
    }

    /// True when the string has content: a register, or a current total.
    pub fn has_string(&self) -> bool {
        self.string.is_some() || self.current_counts(None).next().is_some()
    }
}

/// `base` plus `counts`: the base itself when no region counted in this epoch, or when the base
/// is not a number (a `SET` of text concurrent with nothing: the counts of its epoch came from
/// regions that read it as a number, so this only happens for states built by hand).
fn counted<'a>(base: Option<&Bytes>, counts: impl Iterator<Item = &'a Count>) -> Option<Bytes> {
    let mut any = false;
    let mut sum: i128 = 0;
    for c in counts {
        any = true;
        sum = sum.saturating_add(c.tally.value.units);
    }
    if !any {
        return base.cloned();
    }
    let start = match base {
        None => 0,
        Some(b) => match parse_decimal(b) {
            Decimal::Finite(u) => u,
            _ => return Some(b.clone()),
        },
    };
    Some(Bytes::from(format_units(start.saturating_add(sum))))
}

/// A number as Redis's `strtold` reads it, in units of 10⁻¹⁷.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decimal {
    /// A finite number within [`MAX_UNITS`], rounded to 17 fractional digits.
    Finite(i128),
    /// `inf`, `infinity` (any case, either sign), or a finite number beyond [`MAX_UNITS`].
    Huge,
    /// Not a number Redis accepts.
    Invalid,
}

/// Parses a float the way Redis's `string2ld` accepts one: no leading space, nothing after
/// the number, an optional sign, digits with an optional point, an optional exponent; `inf`
/// and `infinity`; hexadecimal integers (`0x10`). `nan` is refused, as Redis refuses it.
pub fn parse_decimal(b: &[u8]) -> Decimal {
    if b.is_empty() || b.len() >= 5 * 1024 {
        return Decimal::Invalid;
    }
    let (neg, rest) = match b[0] {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    if rest.eq_ignore_ascii_case(b"inf") || rest.eq_ignore_ascii_case(b"infinity") {
        return Decimal::Huge;
    }
    let sign = |u: i128| if neg { -u } else { u };
    if rest.len() > 2 && (rest.starts_with(b"0x") || rest.starts_with(b"0X")) {
        let mut v: i128 = 0;
        for &d in &rest[2..] {
            let Some(x) = (d as char).to_digit(16) else {
                return Decimal::Invalid;
            };
            v = match v.checked_mul(16).and_then(|v| v.checked_add(i128::from(x))) {
                Some(v) => v,
                None => return Decimal::Huge,
            };
            if v > MAX_UNITS / SCALE {
                return Decimal::Huge;
            }
        }
        return Decimal::Finite(sign(v * SCALE));
    }
    // Digits, the position of the point, and the exponent.
    let mut digits: Vec<u8> = Vec::new();
    let mut point: Option<usize> = None;
    let mut i = 0;
    let mut seen_digit = false;
    while i < rest.len() {
        match rest[i] {
            d @ b'0'..=b'9' => {
                seen_digit = true;
                digits.push(d - b'0');
            }
            b'.' if point.is_none() => point = Some(digits.len()),
            _ => break,
        }
        i += 1;
    }
    if !seen_digit {
        return Decimal::Invalid;
    }
    let mut exp: i64 = 0;
    if i < rest.len() {
        if !matches!(rest[i], b'e' | b'E') {
            return Decimal::Invalid;
        }
        i += 1;
        let (eneg, estart) = match rest.get(i) {
            Some(b'-') => (true, i + 1),
            Some(b'+') => (false, i + 1),
            _ => (false, i),
        };
        let e = &rest[estart..];
        if e.is_empty() || !e.iter().all(u8::is_ascii_digit) {
            return Decimal::Invalid;
        }
        for &d in e {
            exp = (exp * 10 + i64::from(d - b'0')).min(1_000_000);
        }
        if eneg {
            exp = -exp;
        }
    }
    // value = digits × 10^(exp - fraction digits); units = value × 10^17.
    let frac = (digits.len() - point.unwrap_or(digits.len())) as i64;
    let shift = exp - frac + 17;
    let first = digits.iter().position(|&d| d != 0);
    let Some(first) = first else {
        return Decimal::Finite(0);
    };
    let digits = &digits[first..];
    let units = if shift >= 0 {
        if digits.len() as i64 + shift > 39 {
            return Decimal::Huge;
        }
        let mut v: i128 = 0;
        for &d in digits {
            v = v * 10 + i128::from(d);
        }
        match v.checked_mul(10i128.pow(shift as u32)) {
            Some(v) => v,
            None => return Decimal::Huge,
        }
    } else {
        // Drop the last -shift digits, rounding half to even.
        let keep = digits.len() as i64 + shift;
        if keep < 0 {
            return Decimal::Finite(0);
        }
        let keep = keep as usize;
        if keep > 39 {
            return Decimal::Huge;
        }
        let mut v: i128 = 0;
        for &d in &digits[..keep] {
            v = v * 10 + i128::from(d);
        }
        let dropped = &digits[keep..];
        let up = match dropped.first() {
            Some(&d) if d > 5 => true,
            Some(5) => dropped[1..].iter().any(|&d| d != 0) || v % 2 == 1,
            _ => false,
        };
        v + i128::from(up)
    };
    if units >= MAX_UNITS {
        return Decimal::Huge;
    }
    Decimal::Finite(sign(units))
}

/// A total as Redis prints an `INCRBYFLOAT` result: the integer when it is whole, otherwise up
/// to 17 fractional digits with trailing zeros dropped.
pub fn format_units(u: i128) -> String {
    let neg = u < 0;
    let a = u.unsigned_abs();
    let scale = SCALE as u128;
    let (int, frac) = (a / scale, a % scale);
    let sign = if neg { "-" } else { "" };
    if frac == 0 {
        format!("{sign}{int}")
    } else {
        let f = format!("{frac:017}");
        format!("{sign}{int}.{}", f.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Decimal {
        parse_decimal(s.as_bytes())
    }

    fn round_trip(s: &str) -> String {
        match p(s) {
            Decimal::Finite(u) => format_units(u),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn parses_what_redis_strtold_accepts() {
        // Each pair was checked against redis-server 7: `INCRBYFLOAT k <s>` on a missing key.
        for (s, want) in [
            ("10.5", "10.5"),
            ("1e3", "1000"),
            (".5", "0.5"),
            ("5.", "5"),
            ("-.5e1", "-5"),
            ("-0.0", "0"),
            ("1.0e-20", "0"),
            ("1e-17", "0.00000000000000001"),
            ("1.23456789012345678e-5", "0.00001234567890123"),
            ("0x10", "16"),
            ("+7", "7"),
            ("2.50", "2.5"),
        ] {
            assert_eq!(round_trip(s), want, "{s}");
        }
        for s in [
            "", " 5", "5 ", "abc", "nan", "1e", "1e+", "0x", "--1", "1.2.3", "e5",
        ] {
            assert_eq!(p(s), Decimal::Invalid, "{s:?}");
        }
        for s in ["inf", "-Infinity", "1e400", "1e21"] {
            assert_eq!(p(s), Decimal::Huge, "{s}");
        }
    }

    #[test]
    fn sums_are_exact_where_redis_long_double_rounds_to_them() {
        let a = match p("0.1") {
            Decimal::Finite(u) => u,
            _ => unreachable!(),
        };
        let b = match p("0.2") {
            Decimal::Finite(u) => u,
            _ => unreachable!(),
        };
        assert_eq!(format_units(a + b), "0.3");
        assert_eq!(format_units(-a), "-0.1");
        assert_eq!(
            format_units(i128::from(i64::MIN) * SCALE),
            i64::MIN.to_string()
        );
    }

    #[test]
    fn counts_merge_last_writer_wins_per_target_and_region() {
        use crate::hlc::Hlc;
        let st = |h: u64, r: u16| Stamp::new(Hlc(h), RegionId(r));
        let c = |t: Option<&str>, r: u16, h: u64, units: i128| Count {
            target: t.map(|t| Bytes::copy_from_slice(t.as_bytes())),
            region: RegionId(r),
            tally: Reg::new(st(h, r), Tally { epoch: None, units }),
        };
        let a: Counts = [c(None, 1, 5, 10), c(Some("f"), 2, 3, 1)]
            .into_iter()
            .collect();
        let b: Counts = [c(Some("f"), 2, 4, 2), c(None, 1, 2, 7)]
            .into_iter()
            .collect();
        let mut ab = a.clone();
        b.iter().for_each(|x| ab.merge_one(x));
        let mut ba = b.clone();
        a.iter().for_each(|x| ba.merge_one(x));
        assert_eq!(ab, ba);
        let got: Vec<i128> = ab.iter().map(|c| c.tally.value.units).collect();
        assert_eq!(got, vec![10, 2]);
    }

    fn st(h: u64, r: u16) -> Stamp {
        Stamp::new(crate::hlc::Hlc::new(h, 0), RegionId(r))
    }

    fn total(region: u16, h: u64, epoch: Option<Stamp>, n: i128) -> Count {
        Count {
            target: None,
            region: RegionId(region),
            tally: Reg::new(
                st(h, region),
                Tally {
                    epoch,
                    units: n * SCALE,
                },
            ),
        }
    }

    #[test]
    fn a_key_that_never_counted_encodes_as_before_and_totals_round_trip() {
        use crate::crdt::{KeyState, Kind};
        let mut k = KeyState::incarnation(1, st(1, 1));
        k.body.kind = Some(Reg::new(st(1, 1), Kind::String));
        k.body.string = Some(Reg::new(st(1, 1), Bytes::from_static(b"7")));
        let bytes = rmp_serde::to_vec(&k.body).unwrap_or_default();
        // reset, kind, string, fields, ttl: the five fields bodies had before counters.
        assert_eq!(bytes[0], 0x95);
        k.body.counts = [total(2, 3, Some(st(1, 1)), -(i128::from(i64::MAX)))]
            .into_iter()
            .collect();
        let bytes = rmp_serde::to_vec(&k).unwrap_or_default();
        let back: KeyState = rmp_serde::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, k);
    }

    #[test]
    fn totals_add_up_and_a_set_starts_a_new_epoch() {
        use crate::crdt::{KeyState, Kind};
        let mut k = KeyState::incarnation(1, st(1, 1));
        k.body.kind = Some(Reg::new(st(1, 1), Kind::String));
        k.body.string = Some(Reg::new(st(1, 1), Bytes::from_static(b"10")));
        let epoch = k.body.epoch(None);
        // Two regions count in the same epoch: both count.
        let mut a = k.clone();
        a.body.counts = [total(1, 5, epoch, 3)].into_iter().collect();
        let mut b = k.clone();
        b.body.counts = [total(2, 6, epoch, 4)].into_iter().collect();
        a.merge(&b);
        assert_eq!(a.body.string_value().as_deref(), Some(&b"17"[..]));
        // A SET later than both: their totals belong to a past epoch and are dropped.
        let mut set = KeyState {
            cl: a.cl.clone(),
            body: Body::default(),
        };
        set.body.reset = Some(st(8, 1));
        set.body.string = Some(Reg::new(st(8, 1), Bytes::from_static(b"1")));
        a.merge(&set);
        assert_eq!(a.body.string_value().as_deref(), Some(&b"1"[..]));
        assert!(a.body.counts.is_empty());
        // An increment that had not seen the SET arrives late: dropped too.
        let mut late = KeyState {
            cl: a.cl.clone(),
            body: Body::default(),
        };
        late.body.counts = [total(2, 9, epoch, 5)].into_iter().collect();
        a.merge(&late);
        assert_eq!(a.body.string_value().as_deref(), Some(&b"1"[..]));
        // One that had seen it counts.
        late.body.counts = [total(2, 10, a.body.epoch(None), 2)].into_iter().collect();
        a.merge(&late);
        assert_eq!(a.body.string_value().as_deref(), Some(&b"3"[..]));
    }
}
