//! The bridge's own figures, written to InfluxDB as one point every interval
//! (`[metrics.internal]`). They are not Kafka records: no offset waits for them, and a
//! failure is only logged.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use kinflux_influx::{LineBatch, Writer};
use kinflux_series::{Point, Precision, Timestamp};
use tokio::task::JoinHandle;
use tracing::warn;

use super::ErrorClass;
use crate::config::InternalMetricsConfig;
use crate::metrics::{Metrics, MetricsSnapshot};

/// Writes the self-metrics point when it is due.
#[derive(Debug)]
pub(super) struct SelfMetrics {
    config: InternalMetricsConfig,
    /// The consumer group, the point's `group` tag.
    group: String,
    last: Instant,
    /// The write in flight: the next waits for it, so an outage piles none up.
    in_flight: Option<JoinHandle<()>>,
}

impl SelfMetrics {
    pub(super) fn new(config: InternalMetricsConfig, group: String) -> Self {
        SelfMetrics {
            config,
            group,
            last: Instant::now(),
            in_flight: None,
        }
    }

    /// Writes the point if the interval went by and the last write ended.
    pub(super) fn tick(&mut self, metrics: &Metrics, writer: &Writer) {
        if self.last.elapsed() < self.config.interval
            || self.in_flight.as_ref().is_some_and(|w| !w.is_finished())
        {
            return;
        }
        self.last = Instant::now();
        let body = match self.encode(&metrics.snapshot()) {
            Ok(body) => body,
            Err(e) => {
                warn!(error = %e, "cannot encode the self-metrics point");
                return;
            }
        };
        let writer = writer.clone();
        self.in_flight = Some(tokio::spawn(async move {
            if let Err(e) = writer.write(LineBatch::new(body)).await {
                warn!(error = %e, "writing self-metrics failed");
            }
        }));
    }

    fn encode(&self, m: &MetricsSnapshot) -> Result<Vec<u8>, String> {
        let count = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let mut point =
            Point::builder(self.config.measurement.as_str()).tag("group", self.group.as_str());
        for (name, value) in [
            ("records_in", m.records_in),
            ("points_in", m.points_in),
            ("points_written", m.points_written),
            ("points_dropped_by_influxdb", m.points_dropped_by_influxdb),
            ("batches_written", m.batches_written),
            ("merges", m.merges),
            ("dropped", m.dropped),
            ("retries", m.retries_total()),
        ] {
            point = point.field(name, count(value));
        }
        for class in ErrorClass::ALL {
            let n = m.dead_letters.get(&class).copied().unwrap_or(0);
            point = point.field(format!("dead_letters_{}", class.as_str()), count(n));
        }
        point = point.field("lag", m.committed_lag());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        let point = point
            .timestamp(Timestamp::from_nanos(now))
            .build()
            .map_err(|e| e.to_string())?;
        let mut body = Vec::new();
        kinflux_line::encode_point(&point, Precision::Nanoseconds, &mut body)
            .map_err(|e| e.to_string())?;
        Ok(body)
    }
}
