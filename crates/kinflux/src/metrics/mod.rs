//! The pipeline's counters and gauges, and their Prometheus text form.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use kinflux_kafka::PartitionKey;

mod server;
pub use server::serve;

/// Why a record went to the dead-letter topic (or was dropped): the
/// `kinflux.error.class` header and the `class` label of the dead-letter counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ErrorClass {
    /// The record could not be decoded (bad line protocol, corrupt Avro, bad JSON).
    Decode,
    /// The record's schema is unknown or lacks a mapped field.
    Schema,
    /// InfluxDB refused the record's line (partial write, type conflict).
    Rejected,
    /// InfluxDB refused the whole batch for good (permissions, missing database).
    WriteFailed,
}

impl ErrorClass {
    /// Every class, in label order.
    pub const ALL: [ErrorClass; 4] = [
        ErrorClass::Decode,
        ErrorClass::Schema,
        ErrorClass::Rejected,
        ErrorClass::WriteFailed,
    ];

    /// The label and header value: `decode`, `schema`, `rejected`, `write_failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Decode => "decode",
            ErrorClass::Schema => "schema",
            ErrorClass::Rejected => "rejected",
            ErrorClass::WriteFailed => "write_failed",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Upper bounds (seconds) of the write-latency histogram buckets.
const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Per-partition gauges, refreshed by the pipeline.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
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

/// Counters the pipeline adds to and the metrics endpoint reads. Cheap to update from any
/// task: every counter is an atomic.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Kafka records consumed.
    pub records_in: AtomicU64,
    /// Bytes of Kafka record values consumed.
    pub record_bytes_in: AtomicU64,
    /// Points decoded, before merging.
    pub points_in: AtomicU64,
    /// Lines InfluxDB acknowledged (points after merging).
    pub points_written: AtomicU64,
    /// Line-protocol bytes InfluxDB acknowledged (before compression).
    pub bytes_written: AtomicU64,
    /// Batches InfluxDB acknowledged.
    pub batches_written: AtomicU64,
    /// Points merged into an earlier point with the same series key and time.
    pub merges: AtomicU64,
    /// Offset commits sent to Kafka.
    pub commits: AtomicU64,
    /// Records dropped (with `on_error = "drop"`).
    pub dropped: AtomicU64,
    dead_letters: [AtomicU64; 4],
    retries: Mutex<BTreeMap<String, u64>>,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    partitions: Mutex<BTreeMap<PartitionKey, PartitionGauges>>,
}

impl Metrics {
    /// Counts a record sent to the dead-letter topic.
    pub fn dead_lettered(&self, class: ErrorClass) {
        self.dead_letters[class.index()].fetch_add(1, Relaxed);
    }

    /// Records dead-lettered for `class` so far.
    pub fn dead_letters(&self, class: ErrorClass) -> u64 {
        self.dead_letters[class.index()].load(Relaxed)
    }

    /// Sets the total of write retries for `cause` (as the writer counts them).
    pub fn set_retries(&self, cause: &str, total: u64) {
        let mut r = self.retries.lock().unwrap_or_else(|e| e.into_inner());
        r.insert(cause.to_owned(), total);
    }

    /// Write retries so far, over all causes.
    pub fn retries_total(&self) -> u64 {
        let r = self.retries.lock().unwrap_or_else(|e| e.into_inner());
        r.values().sum()
    }

    /// Adds one write's latency to the histogram.
    pub fn observe_write_latency(&self, latency: Duration) {
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
    pub fn set_partitions(&self, gauges: BTreeMap<PartitionKey, PartitionGauges>) {
        *self.partitions.lock().unwrap_or_else(|e| e.into_inner()) = gauges;
    }

    /// The gauges of every partition this consumer holds.
    pub fn partitions(&self) -> BTreeMap<PartitionKey, PartitionGauges> {
        self.partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Everything in Prometheus' text exposition format (version 0.0.4).
    pub fn render_prometheus(&self) -> String {
        let mut out = String::with_capacity(4096);
        let counters: [(&str, &str, &AtomicU64); 9] = [
            (
                "kinflux_records_in_total",
                "Kafka records consumed.",
                &self.records_in,
            ),
            (
                "kinflux_record_bytes_in_total",
                "Bytes of Kafka record values consumed.",
                &self.record_bytes_in,
            ),
            (
                "kinflux_points_in_total",
                "Points decoded, before merging.",
                &self.points_in,
            ),
            (
                "kinflux_points_written_total",
                "Points InfluxDB acknowledged, after merging.",
                &self.points_written,
            ),
            (
                "kinflux_bytes_written_total",
                "Line-protocol bytes InfluxDB acknowledged, before compression.",
                &self.bytes_written,
            ),
            (
                "kinflux_batches_written_total",
                "Batches InfluxDB acknowledged.",
                &self.batches_written,
            ),
            (
                "kinflux_merges_total",
                "Points merged into another with the same series key and time.",
                &self.merges,
            ),
            (
                "kinflux_commits_total",
                "Offset commits sent to Kafka.",
                &self.commits,
            ),
            (
                "kinflux_dropped_total",
                "Records dropped on error.",
                &self.dropped,
            ),
        ];
        for (name, help, value) in counters {
            header(&mut out, name, help, "counter");
            let _ = writeln!(out, "{name} {}", value.load(Relaxed));
        }

        header(
            &mut out,
            "kinflux_dead_letters_total",
            "Records sent to the dead-letter topic, by error class.",
            "counter",
        );
        for class in ErrorClass::ALL {
            let _ = writeln!(
                out,
                "kinflux_dead_letters_total{{class=\"{}\"}} {}",
                class.as_str(),
                self.dead_letters(class)
            );
        }

        header(
            &mut out,
            "kinflux_write_retries_total",
            "InfluxDB write retries, by cause.",
            "counter",
        );
        for (cause, n) in self
            .retries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "kinflux_write_retries_total{{cause=\"{}\"}} {n}",
                escape_label(cause)
            );
        }

        header(
            &mut out,
            "kinflux_write_latency_seconds",
            "Latency of InfluxDB writes, retries included.",
            "histogram",
        );
        for (bucket, bound) in self.latency_buckets.iter().zip(LATENCY_BUCKETS) {
            let _ = writeln!(
                out,
                "kinflux_write_latency_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Relaxed)
            );
        }
        let count = self.latency_count.load(Relaxed);
        let _ = writeln!(
            out,
            "kinflux_write_latency_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let sum = self.latency_sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "kinflux_write_latency_seconds_sum {sum}");
        let _ = writeln!(out, "kinflux_write_latency_seconds_count {count}");

        let partitions = self.partitions();
        type Gauge = (
            &'static str,
            &'static str,
            fn(&PartitionGauges) -> Option<f64>,
        );
        let gauges: [Gauge; 4] = [
            (
                "kinflux_lag_records",
                "High watermark minus the consumer position.",
                |g| g.lag.map(|v| v as f64),
            ),
            (
                "kinflux_committed_lag_records",
                "High watermark minus the committed offset.",
                |g| g.committed_lag.map(|v| v as f64),
            ),
            (
                "kinflux_committed_offset",
                "The last committed offset.",
                |g| g.committed.map(|v| v as f64),
            ),
            (
                "kinflux_event_time_lag_seconds",
                "Now minus the time of the newest committed record.",
                |g| g.event_time_lag_seconds,
            ),
        ];
        for (name, help, get) in gauges {
            header(&mut out, name, help, "gauge");
            for (PartitionKey { topic, partition }, g) in &partitions {
                if let Some(v) = get(g) {
                    let _ = writeln!(
                        out,
                        "{name}{{topic=\"{}\",partition=\"{partition}\"}} {v}",
                        escape_label(topic)
                    );
                }
            }
        }
        out
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escapes a label value as the text format requires: backslash, quote and newline.
fn escape_label(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_has_counters_histogram_and_partition_gauges() {
        let m = Metrics::default();
        m.records_in.fetch_add(3, Relaxed);
        m.dead_lettered(ErrorClass::Decode);
        m.set_retries("server_error", 2);
        m.observe_write_latency(Duration::from_millis(20));
        m.observe_write_latency(Duration::from_secs(3));
        let mut parts = BTreeMap::new();
        parts.insert(
            PartitionKey::new("to\"pic", 2),
            PartitionGauges {
                lag: Some(7),
                ..Default::default()
            },
        );
        m.set_partitions(parts);
        let text = m.render_prometheus();
        for line in [
            "kinflux_records_in_total 3",
            "kinflux_dead_letters_total{class=\"decode\"} 1",
            "kinflux_dead_letters_total{class=\"rejected\"} 0",
            "kinflux_write_retries_total{cause=\"server_error\"} 2",
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
}
