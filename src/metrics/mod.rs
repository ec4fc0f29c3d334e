//! Every metric the node exports: names, help texts, label keys, the live recorders, and the
//! rendering of `/metrics`. No other module names a metric: the core reports plain values
//! ([`Stats`], [`PeerStatus`](sessionmesh_core::replica::PeerStatus), events), the node and the
//! transport plain counters, and the Redis server calls the recorders of [`Metrics`].
//!
//! # Which crate, and why
//!
//! `prometheus-client` (the Prometheus project's Rust client), not `metrics` +
//! `metrics-exporter-prometheus`:
//!
//! - A `prometheus_client` registry is an ordinary value. Each region renders its own, so
//!   several regions in one process (the tests, `sessionmesh demo`) never mix samples. The
//!   `metrics` facade records through one process-wide recorder (or a thread-local one swapped
//!   in around each call), the wrong shape for several nodes per process.
//! - Most of what operators want is read, not counted: the core already keeps its counters.
//!   Those are rendered as constant gauges and counters of a registry built for each scrape
//!   ([`render`]), with nothing polling in between and no second copy of the core's numbers.
//! - It renders the Prometheus text format straight into a `String`. We serve that from our
//!   own `/metrics` route; the crate opens no listener and starts no task.
//!
//! # Live and scraped values
//!
//! Only two things are recorded as they happen, both by the Redis server: command latency
//! ([`Metrics::commands_executed`]) and error replies ([`Metrics::error_reply`]). They live in
//! atomics owned by the node (one [`Metrics`] per node). The latency histogram is our own small
//! lock-free one: the crate's `Histogram` takes a mutex per observation, and this sits on the
//! path of every command. Everything else (keys, tombstones, conflicts, expirations, per-peer
//! lag and traffic, transport counters, memory) is read when `/metrics` is requested.
//!
//! # Labels
//!
//! `region` on every sample (a constant label of the per-scrape registry), so regions stay
//! apart even when one Prometheus job scrapes a whole demo. `command` is a lower-case name from
//! the core's command table (`sessionmesh_core::cmd::TABLE`); anything else is `other`. `kind` comes from
//! the fixed list of [`ErrorKind`] and the peer-side kinds below. `peer` is a region name from
//! `regions.toml`. Never a key, a client address or a client name.
//!
//! # Units
//!
//! Prometheus base units: seconds and bytes. Replication lag and clock offset are exported in
//! seconds with millisecond resolution, although `/status` and `INFO` show milliseconds.
//! Memory is the process's resident set (`VmRSS` of `/proc/self/status`, Linux only): regions
//! sharing a process report the same figure.

use crate::transport::TransportStats;
use crate::view::{NodeCounters, PeerView};
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use sessionmesh_core::cmd::CommandId;
use sessionmesh_core::Stats;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

mod render;

use render::HistogramValue;
pub use render::{render, resident_memory_bytes, Scrape};

/// Prefix of every metric name.
pub const PREFIX: &str = "sessionmesh";
/// Label: the region a sample comes from (on every sample).
pub const LABEL_REGION: &str = "region";
/// Label: the command of a latency sample.
pub const LABEL_COMMAND: &str = "command";
/// Label: the kind of an error.
pub const LABEL_KIND: &str = "kind";
/// Label: the peer region of a per-peer sample.
pub const LABEL_PEER: &str = "peer";

/// `Content-Type` of what [`render`] returns (the Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Upper bounds of the latency buckets, in ns: 1 µs to 1 s. A command runs in about a
/// microsecond; the upper buckets are there for lock waits and pathological keys.
const LATENCY_BOUNDS_NS: [u64; 18] = [
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    1_000_000_000,
];

/// A command as the latency histogram knows it: its [`CommandId`] in the core's command table,
/// or [`MetricId::OTHER`] for a name the table does not list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricId(u8);

// One byte holds every table index plus `OTHER`.
const _: () = assert!(CommandId::COUNT < u8::MAX as usize);

impl MetricId {
    /// Names outside the table.
    pub const OTHER: MetricId = MetricId(CommandId::COUNT as u8);

    /// The series of `id` (`None`: [`MetricId::OTHER`]).
    pub fn of(id: Option<CommandId>) -> MetricId {
        id.map_or(MetricId::OTHER, |id| MetricId(id.index() as u8))
    }

    /// The series of table index `i` (past the table: [`MetricId::OTHER`]).
    pub fn at(i: usize) -> MetricId {
        MetricId::of(CommandId::from_index(i))
    }

    /// Its position among the series.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// The `command` label value.
    pub fn name(self) -> &'static str {
        CommandId::from_index(self.index()).map_or("other", CommandId::name)
    }
}

/// What kind of error a client was answered with: the core's [`ErrorKind`], which every error
/// reply carries from where it was made. The kinds that come from peers (`bad_frame`,
/// `peer_refused`, `handshake`) are read from the transport at scrape time instead.
pub use sessionmesh_core::ErrorKind;

/// The live metrics of one node: recorded by the Redis server as commands run, rendered by
/// [`render`]. Plain atomics; recording never blocks.
#[derive(Debug)]
pub struct Metrics {
    /// One histogram per [`MetricId`].
    latency: Box<[Latency]>,
    /// One counter per [`ErrorKind`], in [`ErrorKind::ALL`] order.
    errors: [AtomicU64; ErrorKind::ALL.len()],
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// Empty metrics.
    pub fn new() -> Metrics {
        Metrics {
            latency: (0..=CommandId::COUNT).map(|_| Latency::default()).collect(),
            errors: Default::default(),
        }
    }

    /// Records that `cmds` were executed together in `elapsed` (one batch under one lock of
    /// the node: each of them waited for all of it, so each is observed with the whole time).
    /// Runs of the same command are observed once, with their count.
    pub fn commands_executed(&self, cmds: &[MetricId], elapsed: Duration) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let mut rest = cmds;
        while let Some(first) = rest.first() {
            let run = rest.iter().take_while(|c| *c == first).count();
            self.latency[first.index()].observe(ns, run as u64);
            rest = &rest[run..];
        }
    }

    /// Counts an error reply sent to a client, by the kind it carries.
    pub fn error_reply(&self, e: &sessionmesh_core::Error) {
        self.client_error(e.kind());
    }

    /// Counts an error of a known kind.
    #[allow(clippy::expect_used, reason = "every ErrorKind is in ErrorKind::ALL")]
    pub fn client_error(&self, kind: ErrorKind) {
        let i = ErrorKind::ALL
            .iter()
            .position(|k| *k == kind)
            .expect("ALL lists every kind");
        self.errors[i].fetch_add(1, Ordering::Relaxed);
    }

    /// How many errors of `kind` were counted (tests).
    pub fn errors(&self, kind: ErrorKind) -> u64 {
        ErrorKind::ALL
            .iter()
            .position(|k| *k == kind)
            .map_or(0, |i| self.errors[i].load(Ordering::Relaxed))
    }
}

/// A latency histogram: per-bucket counts (not cumulative) and the sum, in ns.
#[derive(Debug, Default)]
struct Latency {
    /// `buckets[i]` counts observations `<= LATENCY_BOUNDS_NS[i]` and above the bound before;
    /// the last one counts everything above the largest bound.
    buckets: [AtomicU64; LATENCY_BOUNDS_NS.len() + 1],
    sum_ns: AtomicU64,
}

impl Latency {
    fn observe(&self, ns: u64, n: u64) {
        let i = LATENCY_BOUNDS_NS.partition_point(|b| *b < ns);
        self.buckets[i].fetch_add(n, Ordering::Relaxed);
        self.sum_ns
            .fetch_add(ns.saturating_mul(n), Ordering::Relaxed);
    }

    /// The histogram as Prometheus wants it, or `None` if nothing was observed (a command
    /// nobody runs adds no series).
    fn snapshot(&self) -> Option<HistogramValue> {
        let mut total = 0;
        let mut buckets = Vec::with_capacity(self.buckets.len());
        for (i, b) in self.buckets.iter().enumerate() {
            total += b.load(Ordering::Relaxed);
            let le = LATENCY_BOUNDS_NS
                .get(i)
                .map_or(f64::INFINITY, |ns| secs(*ns));
            buckets.push((le, total));
        }
        (total > 0).then(|| HistogramValue {
            sum: secs(self.sum_ns.load(Ordering::Relaxed)),
            // Derived from the buckets so the two agree even if a command lands mid-scrape.
            count: total,
            buckets,
        })
    }
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Error replies carry the kind they are counted under (the labels are those the texts
    /// were classified into before kinds were typed).
    #[test]
    fn errors_carry_their_kind() {
        use sessionmesh_core::Reply;
        let kind = |r: Reply| match r {
            Reply::Error(e) => e.kind(),
            _ => unreachable!(),
        };
        assert_eq!(kind(Reply::wrong_type()), ErrorKind::WrongType);
        assert_eq!(kind(Reply::syntax()), ErrorKind::Syntax);
        assert_eq!(kind(Reply::wrong_arity("get")), ErrorKind::Arity);
        assert_eq!(kind(Reply::not_integer()), ErrorKind::Value);
        let unknown = sessionmesh_core::cmd::unknown_command(&[bytes::Bytes::from("NOPE")]);
        assert_eq!(kind(unknown), ErrorKind::UnknownCommand);
        assert_eq!(
            kind(crate::resp::commands::unknown_subcommand(b"x", "CLIENT")),
            ErrorKind::UnknownCommand
        );
        assert_eq!(kind(Reply::err("no such key")), ErrorKind::Other);
        let labels: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.label()).collect();
        assert_eq!(
            labels,
            [
                "protocol",
                "wrongtype",
                "syntax",
                "arity",
                "unknown_command",
                "auth",
                "limit",
                "value",
                "transaction",
                "other"
            ]
        );
    }

    #[test]
    fn latency_buckets_are_cumulative_and_runs_count_each_command() {
        let m = Metrics::new();
        let set = MetricId::of(CommandId::lookup(b"set"));
        let get = MetricId::of(CommandId::lookup(b"get"));
        assert_eq!((set.name(), get.name()), ("set", "get"));
        assert_eq!(MetricId::of(None).name(), "other");
        m.commands_executed(&[set, set, get, set], Duration::from_micros(3));
        let h = m.latency[set.index()].snapshot().unwrap();
        assert_eq!(h.count, 3);
        // 3 µs is above the 2.5 µs bound and within the 5 µs one.
        assert_eq!(h.buckets[1], (2.5e-6, 0));
        assert_eq!(h.buckets[2], (5e-6, 3));
        assert_eq!(h.buckets.last(), Some(&(f64::INFINITY, 3)));
        assert!((h.sum - 9e-6).abs() < 1e-12);
        assert_eq!(m.latency[get.index()].snapshot().unwrap().count, 1);
        assert!(m.latency[MetricId::OTHER.index()].snapshot().is_none());
    }
}
