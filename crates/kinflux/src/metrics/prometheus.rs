//! A [`MetricsSnapshot`] as Prometheus text (exposition format 0.0.4).

use std::fmt::Write as _;

use kinflux_kafka::PartitionKey;

use super::{LATENCY_BUCKETS, MetricsSnapshot, PartitionGauges};
use crate::pipeline::ErrorClass;

pub(super) fn render(s: &MetricsSnapshot) -> String {
    let mut out = String::with_capacity(4096);
    let counters: [(&str, &str, u64); 12] = [
        (
            "kinflux_records_in_total",
            "Kafka records consumed.",
            s.records_in,
        ),
        (
            "kinflux_record_bytes_in_total",
            "Bytes of Kafka record values consumed.",
            s.record_bytes_in,
        ),
        (
            "kinflux_points_in_total",
            "Points decoded, before merging.",
            s.points_in,
        ),
        (
            "kinflux_points_written_total",
            "Points InfluxDB stored, after merging.",
            s.points_written,
        ),
        (
            "kinflux_points_dropped_by_influxdb_total",
            "Points InfluxDB dropped without naming their lines (beyond the retention policy, ...).",
            s.points_dropped_by_influxdb,
        ),
        (
            "kinflux_bytes_written_total",
            "Line-protocol bytes InfluxDB acknowledged, before compression.",
            s.bytes_written,
        ),
        (
            "kinflux_batches_written_total",
            "Batches InfluxDB acknowledged.",
            s.batches_written,
        ),
        (
            "kinflux_merges_total",
            "Points merged into another with the same series key and time.",
            s.merges,
        ),
        (
            "kinflux_commits_total",
            "Offset commits sent to Kafka.",
            s.commits,
        ),
        (
            "kinflux_dropped_total",
            "Records dropped on error.",
            s.dropped,
        ),
        (
            "kinflux_rebalances_total",
            "Assignments this consumer received in rebalances, the first included.",
            s.rebalances,
        ),
        (
            "kinflux_revocations_total",
            "Revocations: partitions taken from this consumer by a rebalance.",
            s.revocations,
        ),
    ];
    for (name, help, value) in counters {
        header(&mut out, name, help, "counter");
        let _ = writeln!(out, "{name} {value}");
    }

    header(
        &mut out,
        "kinflux_dead_letters_total",
        "Records sent to the dead-letter topic, by error class.",
        "counter",
    );
    for class in ErrorClass::ALL {
        let n = s.dead_letters.get(&class).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "kinflux_dead_letters_total{{class=\"{}\"}} {n}",
            class.as_str()
        );
    }

    header(
        &mut out,
        "kinflux_fetch_errors_total",
        "Kafka fetch errors, by kind: request (a fetch that failed and was retried) or why a record batch could not be decoded.",
        "counter",
    );
    for (kind, n) in &s.fetch_errors {
        let _ = writeln!(out, "kinflux_fetch_errors_total{{kind=\"{kind}\"}} {n}");
    }

    header(
        &mut out,
        "kinflux_write_retries_total",
        "InfluxDB write retries, by cause.",
        "counter",
    );
    for (cause, n) in &s.retries {
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
    let latency = &s.write_latency;
    for (n, bound) in latency.buckets.iter().zip(LATENCY_BUCKETS) {
        let _ = writeln!(
            out,
            "kinflux_write_latency_seconds_bucket{{le=\"{bound}\"}} {n}"
        );
    }
    let count = latency.count;
    let _ = writeln!(
        out,
        "kinflux_write_latency_seconds_bucket{{le=\"+Inf\"}} {count}"
    );
    let _ = writeln!(
        out,
        "kinflux_write_latency_seconds_sum {}",
        latency.sum.as_secs_f64()
    );
    let _ = writeln!(out, "kinflux_write_latency_seconds_count {count}");

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
        for (PartitionKey { topic, partition }, g) in &s.partitions {
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
