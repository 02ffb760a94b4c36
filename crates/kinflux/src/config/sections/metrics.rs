//! `[metrics]`: where the bridge reports on itself.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::duration;

/// `[metrics]`: how the bridge reports on itself.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MetricsConfig {
    /// Serve `/metrics` (Prometheus text) and `/health` here.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// Also write the bridge's own figures to InfluxDB.
    #[serde(default)]
    pub internal: Option<InternalMetricsConfig>,
}

/// `[metrics.internal]`: self-metrics written to InfluxDB.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct InternalMetricsConfig {
    /// How often.
    #[serde(default = "default_internal_interval", deserialize_with = "duration")]
    pub interval: Duration,
    /// The measurement name.
    #[serde(default = "default_internal_measurement")]
    pub measurement: String,
}

fn default_internal_interval() -> Duration {
    Duration::from_secs(10)
}
fn default_internal_measurement() -> String {
    "kinflux_internal".into()
}
