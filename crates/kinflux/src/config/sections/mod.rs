//! The sections of the configuration file, one module each, and the checks that span
//! them.

mod batch;
mod dead_letter;
mod decode;
mod influx;
mod kafka;
mod metrics;
mod tags;

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::ConfigError;

pub use batch::BatchConfig;
pub use dead_letter::{DeadLetterSection, OnError};
pub use decode::{AvroConfig, DecodeConfig, Format, Framing, TimeSource};
pub use influx::{InfluxApi, InfluxConfig};
pub use kafka::{KafkaSection, StartAt};
pub use metrics::{InternalMetricsConfig, MetricsConfig};
pub use tags::TagsConfig;

/// The whole configuration of a bridge.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Where records come from.
    pub kafka: KafkaSection,
    /// How record values become points.
    #[serde(default)]
    pub decode: DecodeConfig,
    /// Tags added to every point.
    #[serde(default)]
    pub tags: TagsConfig,
    /// When batches are flushed.
    #[serde(default)]
    pub batch: BatchConfig,
    /// Where points go.
    pub influx: InfluxConfig,
    /// What happens to records that cannot be written.
    #[serde(default)]
    pub dead_letter: DeadLetterSection,
    /// Where the bridge reports on itself.
    #[serde(default)]
    pub metrics: MetricsConfig,
}

fn yes() -> bool {
    true
}

fn redacted(secret: &Option<String>) -> Option<&'static str> {
    secret.as_ref().map(|_| "<redacted>")
}

/// A duration as a humantime string (`"1s"`, `"250ms"`) or milliseconds.
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    kinflux_kafka::config::duration(d)
}

fn optional_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

impl Config {
    /// Checks what the types alone cannot: required keys that depend on other keys, and
    /// values in range. The settings a [`crate::PipelineBuilder`] also has are checked by
    /// the builder's own [`validate`](crate::PipelineBuilder::validate); the rest here.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        crate::pipeline::settings_of(self).validate()?;

        let d = &self.decode;
        match d.format {
            Format::Line => {}
            Format::Json => {
                if d.mapping.is_none() {
                    return Err(ConfigError::invalid(
                        "decode.mapping",
                        "required with format = \"json\"",
                    ));
                }
            }
            Format::Avro => {
                if d.mapping.is_none() {
                    return Err(ConfigError::invalid(
                        "decode.mapping",
                        "required with format = \"avro\"",
                    ));
                }
                match d.framing {
                    Framing::Confluent if d.registry_url.is_none() && d.schema_dir.is_none() => {
                        return Err(ConfigError::invalid(
                            "decode.registry_url",
                            "set `registry_url` or `schema_dir` for Confluent-framed Avro",
                        ));
                    }
                    Framing::Plain | Framing::SingleObject if d.schema_file.is_none() => {
                        return Err(ConfigError::invalid(
                            "decode.schema_file",
                            "required with framing = \"plain\" or \"single-object\"",
                        ));
                    }
                    _ => {}
                }
            }
        }

        let i = &self.influx;
        if i.api == InfluxApi::V1 && i.username.is_some() != i.password.is_some() {
            return Err(ConfigError::invalid(
                "influx.password",
                "set both `username` and `password`, or neither",
            ));
        }
        Ok(())
    }
}
