//! One scrape: the values a [`Scrape`] carries, rendered in the Prometheus text format into a
//! registry built for that scrape (the live histograms and counters come from [`Metrics`]).

use super::*;

/// Everything one scrape renders, read from a region at one moment (`Node::scrape`): plain
/// values, so this module knows nothing of the node.
pub struct Scrape<'a> {
    /// The region's name (the `region` label).
    pub region: &'a str,
    /// The live metrics the Redis server records into.
    pub live: &'a Metrics,
    /// The core's counters and gauges.
    pub stats: Stats,
    /// Every peer.
    pub peers: Vec<PeerView>,
    /// What `/ready` answers.
    pub ready: bool,
    /// Restoring after a restart.
    pub restoring: bool,
    /// The node's own counters.
    pub counters: NodeCounters,
    /// The transport's counters (zeros before it is attached or after it stopped).
    pub transport: TransportStats,
}

/// Renders a region's metrics in the Prometheus text format: the live ones from its
/// [`Metrics`], and everything else as read into `s`.
pub fn render(s: &Scrape<'_>) -> String {
    let mut reg = Registry::with_prefix_and_labels(
        PREFIX,
        [(LABEL_REGION.into(), s.region.to_string().into())].into_iter(),
    );
    let live = s.live;
    let stats = &s.stats;
    let peers = &s.peers;

    // Requests.
    let latency: Vec<_> = (0..=CommandId::COUNT)
        .filter_map(|i| {
            let id = MetricId::at(i);
            let h = live.latency[id.index()].snapshot()?;
            Some((vec![(LABEL_COMMAND, id.name().to_string())], h))
        })
        .collect();
    reg.register(
        "command_duration_seconds",
        "Time to execute Redis commands, lock wait included, durability wait and network \
         excluded; commands of one pipelined batch share its time",
        Samples::new(MetricType::Histogram, latency),
    );
    reg.register(
        "errors",
        "Errors by kind: replies to clients, and frames or connections refused from peers",
        Samples::new(MetricType::Counter, errors(live, &s.transport)),
    );

    // Data.
    data_metrics(&mut reg, stats);
    if let Some(rss) = resident_memory_bytes() {
        reg.register(
            "process_resident_memory_bytes",
            "Resident memory of the whole process (VmRSS); regions sharing a process report \
             the same figure",
            ConstGauge::new(rss),
        );
    }
    reg.register(
        "ready",
        "1 when the region reports ready (see /ready)",
        ConstGauge::new(i64::from(s.ready)),
    );
    reg.register(
        "restoring",
        "1 while the region, after a restart, is getting back from its peers what it may have \
         lost (not ready meanwhile)",
        ConstGauge::new(i64::from(s.restoring)),
    );

    // Peers and the mesh.
    peer_metrics(&mut reg, peers);
    let c = s.counters;
    let counters = [
        (
            "dropped_transmits",
            "Frames the transport could not take (peer down or its queue full); catch-up \
             repairs what they carried",
            c.dropped_transmits,
        ),
        (
            "log_backpressure",
            "Times reading from peers paused until the log had taken what was queued \
             (more than persistence.max_queued_records records waited for the disk)",
            c.backpressure,
        ),
        (
            "clock_skew_events",
            "Frames from a peer whose stamps were too far ahead of our clock",
            c.clock_skew_events,
        ),
        (
            "peer_evictions",
            "Times a peer was silent beyond the tombstone grace and stopped holding back GC",
            c.evictions,
        ),
        (
            "resyncs",
            "Full resynchronisations from a peer after being away beyond the grace",
            c.resyncs,
        ),
    ];
    for (name, help, v) in counters {
        reg.register(name, help, ConstCounter::new(v));
    }
    let t = &s.transport;
    let transport = [
        (
            "transport_connections",
            "QUIC connections established with peers",
            t.connections,
        ),
        (
            "transport_sent_frames",
            "Frames written to QUIC streams, all peers",
            t.frames_sent,
        ),
        (
            "transport_sent_bytes",
            "Bytes written to QUIC streams, all peers",
            t.bytes_sent,
        ),
        (
            "transport_received_frames",
            "Complete frames read from QUIC streams, all peers",
            t.frames_received,
        ),
        (
            "transport_received_bytes",
            "Bytes of complete frames read from QUIC streams, all peers",
            t.bytes_received,
        ),
        (
            "transport_dropped_queue_full",
            "Frames dropped because a peer's stream queue was full",
            t.dropped_queue_full,
        ),
        (
            "transport_dropped_no_link",
            "Frames dropped because no connection to the peer was up",
            t.dropped_no_link,
        ),
    ];
    for (name, help, v) in transport {
        reg.register(name, help, ConstCounter::new(v));
    }

    let mut out = String::new();
    // Writing to a String cannot fail; a metric that could not encode is a bug of ours.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &reg);
    out
}

/// The per-kind error counters: clients' from the live counters, peers' from the transport.
fn errors(live: &Metrics, t: &TransportStats) -> Vec<(Labels, ConstCounter)> {
    let mut rows: Vec<(Labels, ConstCounter)> = ErrorKind::ALL
        .iter()
        .map(|k| {
            (
                vec![(LABEL_KIND, k.label().to_string())],
                ConstCounter::new(live.errors(*k)),
            )
        })
        .collect();
    // Every malformed frame closes its connection in the transport, which counts it whether
    // the framing or the core found the fault: the one count of bad frames.
    for (kind, v) in [
        ("bad_frame", t.bad_frames),
        ("peer_refused", t.refused_peers),
        ("handshake", t.handshake_failures),
    ] {
        rows.push((vec![(LABEL_KIND, kind.to_string())], ConstCounter::new(v)));
    }
    rows
}

/// The core's data gauges and counters.
fn data_metrics(reg: &mut Registry, s: &Stats) {
    let gauges = [
        (
            "keys",
            "Keys stored (sessions), tombstones and expired keys awaiting collection included",
            s.keys,
        ),
        (
            "tombstones",
            "Deleted or expired keys pending collection (until every region holds the delete)",
            s.tombstones,
        ),
        (
            "held_deltas",
            "Key deltas held back because their stamps are ahead of our clock (skew)",
            s.held,
        ),
        (
            "dirty_keys",
            "Keys written here and not yet pushed to peers",
            s.dirty,
        ),
        (
            "index_entries",
            "Entries of the origin/stamp index that serves catch-up",
            s.index_entries,
        ),
    ];
    for (name, help, v) in gauges {
        reg.register(name, help, ConstGauge::new(v));
    }
    let counters = [
        (
            "conflicts",
            "Writes that lost to a concurrent write with a greater stamp, or to a delete",
            s.conflicts,
        ),
        (
            "expired_keys",
            "Expired keys reclaimed (rate() gives expirations per second)",
            s.expired,
        ),
        (
            "collected_keys",
            "Tombstones and expired keys garbage-collected",
            s.collected,
        ),
        (
            "local_writes",
            "Write commands executed in this region",
            s.local_writes,
        ),
        (
            "catchup_full_scans",
            "Catch-up requests from further back than the origin index's history, answered by \
             a pass over every key",
            s.catchup_full_scans,
        ),
        (
            "reroutes",
            "Catch-up requests made because a connected region's writes stalled while a peer \
             held them (progress, not connection, decides routing)",
            s.reroutes,
        ),
        (
            "restorations",
            "Restorations from peers completed since start (after a restart)",
            s.restored,
        ),
        (
            "census_dropped_keys",
            "Keys a restored region dropped because a peer had collected them (deleted or \
             expired everywhere while its persisted state was behind)",
            s.census_dropped,
        ),
    ];
    for (name, help, v) in counters {
        reg.register(name, help, ConstCounter::new(v));
    }
}

/// Per-peer families, one sample per peer region (a sample is left out while it has no
/// meaning yet: no lag before the peer acknowledged anything).
fn peer_metrics(reg: &mut Registry, peers: &[PeerView]) {
    let gauge = |f: &dyn Fn(&PeerView) -> Option<i64>| {
        per_peer(peers, MetricType::Gauge, |p| f(p).map(ConstGauge::new))
    };
    let seconds = |f: &dyn Fn(&PeerView) -> Option<f64>| {
        per_peer(peers, MetricType::Gauge, |p| f(p).map(ConstGauge::new))
    };
    let counter = |f: &dyn Fn(&PeerView) -> Option<u64>| {
        per_peer(peers, MetricType::Counter, |p| f(p).map(ConstCounter::new))
    };
    let ms = |v: u64| v as f64 / 1e3;
    reg.register(
        "peer_connected",
        "1 when a QUIC connection to the peer is up and a frame from it decoded",
        gauge(&|p| Some(i64::from(p.link.connected && p.link.trusted))),
    );
    reg.register(
        "peer_connects",
        "Connections established with the peer",
        counter(&|p| Some(p.link.connects)),
    );
    reg.register(
        "peer_evicted",
        "1 while the peer is evicted (silent beyond the tombstone grace)",
        gauge(&|p| Some(i64::from(p.replication.as_ref()?.evicted))),
    );
    reg.register(
        "peer_last_frame_age_seconds",
        "Time since the last frame from the peer was applied",
        seconds(&|p| p.since_last_frame_ms.map(ms)),
    );
    reg.register(
        "peer_replication_lag_seconds",
        "How far the peer's acknowledgement trails our newest write, in time",
        seconds(&|p| p.lag_ms.map(ms)),
    );
    reg.register(
        "peer_replication_lag_writes",
        "Write commands of ours the peer has not acknowledged yet",
        gauge(&|p| i64::try_from(p.replication.as_ref()?.lag_writes).ok()),
    );
    reg.register(
        "peer_clock_offset_seconds",
        "The peer's clock minus ours at its last push, one-way latency included (signed)",
        seconds(&|p| Some(p.replication.as_ref()?.clock_offset_ms as f64 / 1e3)),
    );
    let traffic = |f: fn(&sessionmesh_core::replica::Traffic) -> u64| {
        counter(&move |p: &PeerView| Some(f(&p.replication.as_ref()?.traffic)))
    };
    reg.register(
        "peer_sent_frames",
        "Gossip frames produced for the peer",
        traffic(|t| t.frames_sent),
    );
    reg.register(
        "peer_sent_bytes",
        "Gossip bytes produced for the peer",
        traffic(|t| t.bytes_sent),
    );
    reg.register(
        "peer_received_frames",
        "Valid gossip frames applied from the peer",
        traffic(|t| t.frames_received),
    );
    reg.register(
        "peer_received_bytes",
        "Bytes of valid gossip frames applied from the peer",
        traffic(|t| t.bytes_received),
    );
}

/// One sample per peer that `f` has a value for, labelled with the peer's name.
fn per_peer<M>(
    peers: &[PeerView],
    kind: MetricType,
    f: impl Fn(&PeerView) -> Option<M>,
) -> Samples<M> {
    let rows = peers
        .iter()
        .filter_map(|p| Some((vec![(LABEL_PEER, p.name.clone())], f(p)?)))
        .collect();
    Samples::new(kind, rows)
}

/// The process's resident memory, from `/proc/self/status` (`VmRSS`, in kB); `None` where
/// there is no procfs.
pub fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Label pairs of one sample, besides `region`.
type Labels = Vec<(&'static str, String)>;

/// One family of samples taken at scrape time: a label set and a value per sample.
#[derive(Debug)]
struct Samples<M> {
    kind: MetricType,
    rows: Vec<(Labels, M)>,
}

impl<M> Samples<M> {
    fn new(kind: MetricType, rows: Vec<(Labels, M)>) -> Samples<M> {
        Samples { kind, rows }
    }
}

impl<M: EncodeMetric + fmt::Debug + Send + Sync + 'static> EncodeMetric for Samples<M> {
    fn encode(&self, mut encoder: MetricEncoder) -> fmt::Result {
        for (labels, m) in &self.rows {
            m.encode(encoder.encode_family(labels)?)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        self.kind
    }

    /// A family without samples (no peer acknowledged yet, no command run) is left out whole.
    fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// A histogram's values at scrape time; buckets cumulative, bounds in seconds.
#[derive(Debug)]
pub(super) struct HistogramValue {
    pub(super) sum: f64,
    pub(super) count: u64,
    pub(super) buckets: Vec<(f64, u64)>,
}

impl EncodeMetric for HistogramValue {
    fn encode(&self, mut encoder: MetricEncoder) -> fmt::Result {
        encoder.encode_histogram::<NoLabelSet>(self.sum, self.count, &self.buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}
