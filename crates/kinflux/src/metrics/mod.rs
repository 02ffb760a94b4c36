//! The pipeline's counters and gauges: updated by the pipeline, read by anyone as a
//! [`MetricsSnapshot`], served as Prometheus text by [`serve`].

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::pipeline::ErrorClass;
use kinflux_kafka::PartitionKey;

mod prometheus;
mod server;
pub use server::serve;

/// Upper bounds (seconds) of the write-latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Per-partition gauges, refreshed by the pipeline.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct PartitionGauges {
    /// High watermark minus the consumer's position.
    pub lag: Option<i64>,
    /// High watermark minus the committed offset.
    pub committed_lag: Option<i64>,
    /// The last committed offset.
    pub committed: Option<i64>,
    /// Seconds between now and the time of the newest committed record.
    pub event_time_lag_seconds: Option<f64>,
}

/// The pipeline's figures. Only the pipeline updates them; read them with
/// [`snapshot`](Self::snapshot). Cheap to update from any task: counters are atomics.
#[derive(Debug, Default)]
pub struct Metrics {
    records_in: AtomicU64,
    record_bytes_in: AtomicU64,
    points_in: AtomicU64,
    points_written: AtomicU64,
    points_dropped_by_influxdb: AtomicU64,
    bytes_written: AtomicU64,
    batches_written: AtomicU64,
    merges: AtomicU64,
    commits: AtomicU64,
    dropped: AtomicU64,
    rebalances: AtomicU64,
    revocations: AtomicU64,
    dead_letters: [AtomicU64; ErrorClass::ALL.len()],
    /// Retries by (target, cause): writers shared by pipelines are counted once.
    retries: Mutex<BTreeMap<(String, String), u64>>,
    fetch_errors: Mutex<BTreeMap<&'static str, u64>>,
    /// Fetches that failed and were retried, by consumer group (each pipeline's consumer
    /// counts its own); reported as the fetch errors of kind `request`.
    fetch_failures: Mutex<BTreeMap<String, u64>>,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    /// By consumer group: the pipelines of a bridge each set their own.
    partitions: Mutex<BTreeMap<String, BTreeMap<PartitionKey, PartitionGauges>>>,
}

/// The write-latency histogram at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct LatencyHistogram {
    /// Writes at or under each bound of [`LATENCY_BUCKETS`] (cumulative, as Prometheus
    /// counts them).
    pub buckets: [u64; LATENCY_BUCKETS.len()],
    /// Every write.
    pub count: u64,
    /// The sum of every write's latency.
    pub sum: Duration,
}

/// The pipeline's figures at one moment: plain numbers, to read, log or export.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Kafka records consumed.
    pub records_in: u64,
    /// Bytes of Kafka record values consumed.
    pub record_bytes_in: u64,
    /// Points decoded, before merging.
    pub points_in: u64,
    /// Points InfluxDB stored (lines, after merging): neither refused by line nor among
    /// the points it reported dropping without naming them.
    pub points_written: u64,
    /// Points InfluxDB reported dropping without naming their lines (for example beyond
    /// the retention policy). Their records cannot be dead-lettered.
    pub points_dropped_by_influxdb: u64,
    /// Line-protocol bytes InfluxDB acknowledged (before compression).
    pub bytes_written: u64,
    /// Batches InfluxDB acknowledged.
    pub batches_written: u64,
    /// Points merged into an earlier point with the same series key and time.
    pub merges: u64,
    /// Offset commits sent to Kafka.
    pub commits: u64,
    /// Records dropped (with `on_error = "drop"`).
    pub dropped: u64,
    /// Rebalances this consumer took part in: assignments it received (the first one
    /// included).
    pub rebalances: u64,
    /// Revocations: partitions taken from this consumer by a rebalance.
    pub revocations: u64,
    /// Records sent to the dead-letter topic, by class (every class present).
    pub dead_letters: BTreeMap<ErrorClass, u64>,
    /// InfluxDB write retries, by cause, as the writer counts them.
    pub retries: BTreeMap<String, u64>,
    /// Kafka fetch errors, by kind: `request` counts fetches that failed and were retried
    /// (no answer, or an error for the partition); the other kinds count record batches
    /// that could not be decoded (`kinflux_kafka::fetch::DecodeError::kind`:
    /// `unknown_codec`, `corrupt_compressed`, `bad_crc`, ...).
    pub fetch_errors: BTreeMap<&'static str, u64>,
    /// How long InfluxDB writes took, retries included.
    pub write_latency: LatencyHistogram,
    /// The gauges of every partition this consumer holds.
    pub partitions: BTreeMap<PartitionKey, PartitionGauges>,
}

impl MetricsSnapshot {
    /// Records sent to the dead-letter topic, over all classes.
    pub fn dead_lettered(&self) -> u64 {
        self.dead_letters.values().sum()
    }

    /// Write retries, over all causes.
    pub fn retries_total(&self) -> u64 {
        self.retries.values().sum()
    }

    /// Records not yet committed, over every partition held (high watermark minus the
    /// committed offset).
    pub fn committed_lag(&self) -> i64 {
        self.partitions
            .values()
            .filter_map(|g| g.committed_lag)
            .sum()
    }

    /// Everything in Prometheus' text exposition format (version 0.0.4).
    pub fn render_prometheus(&self) -> String {
        prometheus::render(self)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section is a plain insert or clone: a panic cannot leave it halfway.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Metrics {
    /// Figures that all start at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every figure as it is now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let mut latency = LatencyHistogram {
            count: self.latency_count.load(Relaxed),
            sum: Duration::from_micros(self.latency_sum_micros.load(Relaxed)),
            ..LatencyHistogram::default()
        };
        for (out, bucket) in latency.buckets.iter_mut().zip(&self.latency_buckets) {
            *out = bucket.load(Relaxed);
        }
        MetricsSnapshot {
            records_in: self.records_in.load(Relaxed),
            record_bytes_in: self.record_bytes_in.load(Relaxed),
            points_in: self.points_in.load(Relaxed),
            points_written: self.points_written.load(Relaxed),
            points_dropped_by_influxdb: self.points_dropped_by_influxdb.load(Relaxed),
            bytes_written: self.bytes_written.load(Relaxed),
            batches_written: self.batches_written.load(Relaxed),
            merges: self.merges.load(Relaxed),
            commits: self.commits.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            rebalances: self.rebalances.load(Relaxed),
            revocations: self.revocations.load(Relaxed),
            dead_letters: ErrorClass::ALL
                .iter()
                .map(|&c| (c, self.dead_letters[c.index()].load(Relaxed)))
                .collect(),
            retries: lock(&self.retries).iter().fold(
                BTreeMap::new(),
                |mut by_cause, ((_, cause), n)| {
                    *by_cause.entry(cause.clone()).or_insert(0) += n;
                    by_cause
                },
            ),
            fetch_errors: self.fetch_errors(),
            write_latency: latency,
            partitions: merged_partitions(&lock(&self.partitions)),
        }
    }

    /// Everything in Prometheus' text exposition format (version 0.0.4).
    pub fn render_prometheus(&self) -> String {
        self.snapshot().render_prometheus()
    }

    pub(crate) fn records_in(&self, records: u64, value_bytes: u64) {
        self.records_in.fetch_add(records, Relaxed);
        self.record_bytes_in.fetch_add(value_bytes, Relaxed);
    }

    pub(crate) fn points_decoded(&self, points: u64) {
        self.points_in.fetch_add(points, Relaxed);
    }

    /// Counts a batch InfluxDB answered: `written` lines stored, `dropped` points it
    /// dropped without naming them.
    pub(crate) fn batch_written(&self, written: usize, dropped: usize, bytes: usize, merged: u64) {
        self.points_written.fetch_add(written as u64, Relaxed);
        self.points_dropped_by_influxdb
            .fetch_add(dropped as u64, Relaxed);
        self.bytes_written.fetch_add(bytes as u64, Relaxed);
        self.batches_written.fetch_add(1, Relaxed);
        self.merges.fetch_add(merged, Relaxed);
    }

    pub(crate) fn committed(&self) {
        self.commits.fetch_add(1, Relaxed);
    }

    pub(crate) fn record_dropped(&self) {
        self.dropped.fetch_add(1, Relaxed);
    }

    pub(crate) fn dead_lettered(&self, class: ErrorClass) {
        self.dead_letters[class.index()].fetch_add(1, Relaxed);
    }

    /// Counts an assignment received in a rebalance.
    pub(crate) fn assigned(&self) {
        self.rebalances.fetch_add(1, Relaxed);
    }

    /// Counts a revocation.
    pub(crate) fn revoked(&self) {
        self.revocations.fetch_add(1, Relaxed);
    }

    /// Sets the total of fetches that failed and were retried (as the consumer of
    /// `group` counts them): the fetch errors of kind `request`, over every group.
    pub(crate) fn set_fetch_failures(&self, group: &str, total: u64) {
        lock(&self.fetch_failures).insert(group.to_owned(), total);
    }

    fn fetch_errors(&self) -> BTreeMap<&'static str, u64> {
        let mut out = lock(&self.fetch_errors).clone();
        let failures = lock(&self.fetch_failures);
        if !failures.is_empty() {
            out.insert("request", failures.values().sum());
        }
        out
    }

    /// Counts a record batch that could not be decoded.
    pub(crate) fn fetch_error(&self, kind: &'static str) {
        *lock(&self.fetch_errors).entry(kind).or_insert(0) += 1;
    }

    /// Sets the total of write retries for `cause` of `target`'s writer (as it counts
    /// them).
    pub(crate) fn set_retries(&self, target: &str, cause: &str, total: u64) {
        lock(&self.retries).insert((target.to_owned(), cause.to_owned()), total);
    }

    /// Adds one write's latency to the histogram.
    pub(crate) fn observe_write_latency(&self, latency: Duration) {
        let secs = latency.as_secs_f64();
        for (bucket, &bound) in self.latency_buckets.iter().zip(&LATENCY_BUCKETS) {
            if secs <= bound {
                bucket.fetch_add(1, Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Relaxed);
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_micros.fetch_add(micros, Relaxed);
    }

    /// Replaces the gauges of every partition this consumer holds.
    pub(crate) fn set_partitions(
        &self,
        group: &str,
        gauges: BTreeMap<PartitionKey, PartitionGauges>,
    ) {
        lock(&self.partitions).insert(group.to_owned(), gauges);
    }
}

/// The gauges of every group's partitions. A partition two pipelines read (each its own
/// group) shows the one further behind.
fn merged_partitions(
    by_group: &BTreeMap<String, BTreeMap<PartitionKey, PartitionGauges>>,
) -> BTreeMap<PartitionKey, PartitionGauges> {
    let mut out: BTreeMap<PartitionKey, PartitionGauges> = BTreeMap::new();
    for gauges in by_group.values() {
        for (key, g) in gauges {
            let behind = |g: &PartitionGauges| g.committed_lag.unwrap_or(i64::MIN);
            match out.get(key) {
                Some(seen) if behind(seen) >= behind(g) => {}
                _ => {
                    out.insert(key.clone(), *g);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_holds_every_figure_and_renders_as_prometheus_text() {
        let m = Metrics::default();
        for _ in 0..3 {
            m.records_in(1, 10);
        }
        m.dead_lettered(ErrorClass::Decode);
        m.batch_written(7, 2, 100, 1);
        m.set_retries("influx", "server_error", 2);
        m.fetch_error("unknown_codec");
        m.fetch_error("unknown_codec");
        m.set_fetch_failures("g", 3);
        m.set_fetch_failures("h", 1);
        m.assigned();
        m.assigned();
        m.revoked();
        m.observe_write_latency(Duration::from_millis(20));
        m.observe_write_latency(Duration::from_secs(3));
        let mut parts = BTreeMap::new();
        parts.insert(
            PartitionKey::new("to\"pic", 2),
            PartitionGauges {
                lag: Some(7),
                committed_lag: Some(9),
                ..Default::default()
            },
        );
        m.set_partitions("g", parts);
        let s = m.snapshot();
        assert_eq!((s.records_in, s.record_bytes_in), (3, 30));
        assert_eq!((s.points_written, s.points_dropped_by_influxdb), (7, 2));
        assert_eq!(s.dead_lettered(), 1);
        assert_eq!(s.dead_letters[&ErrorClass::Rejected], 0);
        assert_eq!(s.retries_total(), 2);
        assert_eq!(s.committed_lag(), 9);
        assert_eq!(s.write_latency.count, 2);

        let text = m.render_prometheus();
        for line in [
            "kinflux_records_in_total 3",
            "kinflux_points_written_total 7",
            "kinflux_points_dropped_by_influxdb_total 2",
            "kinflux_dead_letters_total{class=\"decode\"} 1",
            "kinflux_dead_letters_total{class=\"rejected\"} 0",
            "kinflux_write_retries_total{cause=\"server_error\"} 2",
            "kinflux_fetch_errors_total{kind=\"unknown_codec\"} 2",
            "kinflux_fetch_errors_total{kind=\"request\"} 4",
            "kinflux_rebalances_total 2",
            "kinflux_revocations_total 1",
            "kinflux_write_latency_seconds_bucket{le=\"0.025\"} 1",
            "kinflux_write_latency_seconds_bucket{le=\"5\"} 2",
            "kinflux_write_latency_seconds_bucket{le=\"+Inf\"} 2",
            "kinflux_write_latency_seconds_count 2",
            "kinflux_lag_records{topic=\"to\\\"pic\",partition=\"2\"} 7",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(!text.contains("kinflux_committed_offset{"));
    }

    #[test]
    fn each_group_keeps_its_partitions_and_a_shared_one_shows_the_furthest_behind() {
        let m = Metrics::default();
        let gauges = |lag: i64| PartitionGauges {
            committed_lag: Some(lag),
            ..PartitionGauges::default()
        };
        let (a, b) = (PartitionKey::new("a", 0), PartitionKey::new("b", 0));
        m.set_partitions("g1", BTreeMap::from([(a.clone(), gauges(5))]));
        m.set_partitions("g2", BTreeMap::from([(b.clone(), gauges(2))]));
        // A second pipeline reading `a` in its own group, further behind.
        m.set_partitions("g3", BTreeMap::from([(a.clone(), gauges(9))]));
        let s = m.snapshot();
        assert_eq!(s.partitions.len(), 2);
        assert_eq!(s.partitions[&a].committed_lag, Some(9));
        assert_eq!(s.partitions[&b].committed_lag, Some(2));
        // A refresh replaces only its own group's gauges.
        m.set_partitions("g2", BTreeMap::new());
        assert_eq!(m.snapshot().partitions.len(), 1);
        // Retries of one writer are counted once, whatever pipelines share it.
        m.set_retries("archive", "timeout", 3);
        m.set_retries("archive", "timeout", 4);
        m.set_retries("cloud", "timeout", 1);
        assert_eq!(m.snapshot().retries["timeout"], 5);
    }
}
