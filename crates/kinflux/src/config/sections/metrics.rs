//! `[metrics]`: where the bridge reports on itself.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::duration;

/// `[metrics]`: how the bridge reports on itself.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MetricsConfig {
    /// Serve `/metrics` (Prometheus text) and `/health` here; absent, nothing is served.
    /// An address without a host (`":9273"` or `"9273"`) binds to loopback only; name
    /// `0.0.0.0:9273` to serve every interface.
    #[serde(default, deserialize_with = "listen_addr")]
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

/// Parses `host:port`, `:port` or `port`; the last two mean loopback, so the figures are
/// never exposed on every interface by accident.
fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    let port = text.strip_prefix(':').unwrap_or(text);
    if let Ok(port) = port.parse::<u16>() {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    text.parse::<SocketAddr>()
        .map_err(|e| format!("metrics.listen {text:?}: {e} (expected host:port, :port or port)"))
}

fn listen_addr<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Listen {
        Text(String),
        Port(u16),
    }
    match Option::<Listen>::deserialize(d)? {
        None => Ok(None),
        Some(Listen::Port(port)) => Ok(Some(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))),
        Some(Listen::Text(text)) => parse_listen(&text)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

fn default_internal_interval() -> Duration {
    Duration::from_secs(10)
}
fn default_internal_measurement() -> String {
    "kinflux_internal".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_without_a_host_binds_to_loopback() {
        for text in [":9273", "9273", " 9273 "] {
            assert_eq!(
                parse_listen(text).expect("valid"),
                "127.0.0.1:9273".parse::<SocketAddr>().expect("literal")
            );
        }
        assert_eq!(
            parse_listen("0.0.0.0:9273").expect("valid"),
            "0.0.0.0:9273".parse::<SocketAddr>().expect("literal")
        );
        assert_eq!(
            parse_listen("[::1]:1").expect("valid"),
            "[::1]:1".parse::<SocketAddr>().expect("literal")
        );
        assert!(parse_listen("").is_err());
        assert!(parse_listen("host:port").is_err());
        assert!(parse_listen("70000").is_err());
    }

    #[test]
    fn metrics_are_off_unless_configured() {
        let c: MetricsConfig = toml::from_str("").expect("empty section");
        assert!(c.listen.is_none());
        let c: MetricsConfig = toml::from_str("listen = \":9273\"").expect("port only");
        assert_eq!(
            c.listen,
            Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 9273)))
        );
        let c: MetricsConfig = toml::from_str("listen = 9274").expect("bare port");
        assert_eq!(
            c.listen,
            Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 9274)))
        );
    }
}
