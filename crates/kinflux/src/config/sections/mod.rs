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

use serde::Deserializer;

use super::ConfigError;

pub use batch::BatchConfig;
pub use dead_letter::{DeadLetterSection, OnError};
pub use decode::{AvroConfig, DecodeConfig, Format, Framing, TimeSource};
pub use influx::{Gzip, InfluxApi, InfluxConfig};
pub use kafka::{KafkaSection, StartAt};
pub use metrics::{InternalMetricsConfig, MetricsConfig};
pub use tags::TagsConfig;

/// The whole configuration of a bridge: its pipelines, the InfluxDB targets they write
/// to, and how it reports on itself.
///
/// A file without `[[pipeline]]` tables describes one pipeline (named
/// [`SINGLE_PIPELINE`](crate::config::SINGLE_PIPELINE)) with its sections at the top
/// level; with them, each table is a pipeline that inherits the top-level sections' keys
/// it does not set (`examples/pipelines.toml`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// The pipelines, in file order; at least one.
    pub pipelines: Vec<PipelineConfig>,
    /// Every InfluxDB target the file defines, by name order.
    pub targets: Vec<TargetConfig>,
    /// Where the bridge reports on itself.
    pub metrics: MetricsConfig,
}

/// One pipeline: where its records come from, how they become points, and where those
/// go.
#[derive(Clone)]
#[non_exhaustive]
pub struct PipelineConfig {
    /// Its name (`[[pipeline]] name`), in logs and in its default consumer group.
    pub name: String,
    /// Where records come from: the top-level `[kafka]` with the pipeline's own keys.
    pub kafka: KafkaSection,
    /// How record values become points.
    pub decode: DecodeConfig,
    /// Tags added to every point.
    pub tags: TagsConfig,
    /// When batches are flushed (per target and per database or bucket).
    pub batch: BatchConfig,
    /// The names of the targets every point is written to (see [`Config::target`]).
    pub targets: Vec<String>,
    /// What happens to records that cannot be written.
    pub dead_letter: DeadLetterSection,
    /// The measurement of every point, replacing the data's: `"${topic}"` is the record's
    /// topic.
    pub measurement: Option<String>,
    /// How many tasks decode and batch side by side (`tasks`); the assigned partitions
    /// are spread over them. `None`: the number of cores (never more than partitions
    /// assigned).
    pub tasks: Option<usize>,
    /// `pipeline[<name>].` in the several-pipelines shape, empty otherwise: errors name
    /// keys with it.
    pub(crate) key_prefix: String,
}

/// One InfluxDB target: an `[influx]` or `[influx.<name>]` table.
#[derive(Clone)]
#[non_exhaustive]
pub struct TargetConfig {
    /// Its name: `influx` for a file's one `[influx]` table, else the table's name.
    pub name: String,
    /// Where and how to write, and how points are routed to databases or buckets.
    pub influx: InfluxConfig,
    /// The table's key (`influx` or `influx.<name>`), for errors.
    pub(crate) key: String,
}

// By hand: the keys errors are named with are no setting (check-config prints these).
impl std::fmt::Debug for PipelineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineConfig")
            .field("name", &self.name)
            .field("kafka", &self.kafka)
            .field("decode", &self.decode)
            .field("tags", &self.tags)
            .field("batch", &self.batch)
            .field("targets", &self.targets)
            .field("dead_letter", &self.dead_letter)
            .field("measurement", &self.measurement)
            .finish()
    }
}

impl std::fmt::Debug for TargetConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetConfig")
            .field("name", &self.name)
            .field("influx", &self.influx)
            .finish()
    }
}

impl TargetConfig {
    pub(crate) fn new(name: String, key: String, influx: InfluxConfig) -> Self {
        TargetConfig { name, influx, key }
    }
}

impl Config {
    /// The target named `name`.
    pub fn target(&self, name: &str) -> Option<&TargetConfig> {
        self.targets.iter().find(|t| t.name == name)
    }

    /// The targets of `pipeline`, in its order.
    pub fn targets_of<'a>(
        &'a self,
        pipeline: &'a PipelineConfig,
    ) -> impl Iterator<Item = &'a TargetConfig> + 'a {
        pipeline.targets.iter().filter_map(|n| self.target(n))
    }

    /// The file's one pipeline, or an error that says the file has several (run those
    /// with [`Bridge`](crate::Bridge)).
    pub fn single(&self) -> Result<&PipelineConfig, ConfigError> {
        match self.pipelines.as_slice() {
            [one] => Ok(one),
            many => Err(ConfigError::invalid(
                "pipeline",
                format!(
                    "the file has {} pipelines; run them with kinflux::Bridge",
                    many.len()
                ),
            )),
        }
    }
}

impl PipelineConfig {
    /// The error `e` with its key named as written in the file.
    pub(crate) fn within(&self, e: ConfigError) -> ConfigError {
        match e {
            ConfigError::Invalid { key, message }
                if !self.key_prefix.is_empty() && !key.starts_with("influx") =>
            {
                ConfigError::Invalid {
                    key: format!("{}{key}", self.key_prefix),
                    message,
                }
            }
            other => other,
        }
    }
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
    /// values in range, for every pipeline and target; and that no two pipelines share a
    /// consumer group.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        for target in &self.targets {
            target.validate()?;
        }
        for (i, p) in self.pipelines.iter().enumerate() {
            p.validate().map_err(|e| p.within(e))?;
            crate::pipeline::settings_of(self, p)
                .validate()
                .map_err(|e| p.within(e))?;
            if let Some(other) = self.pipelines[..i]
                .iter()
                .find(|o| o.kafka.consumer.group_id == p.kafka.consumer.group_id)
            {
                return Err(p.within(ConfigError::invalid(
                    "kafka.group_id",
                    format!(
                        "pipeline {:?} has this consumer group too; each pipeline needs its own (a rebalance or a slow target of one would hold the other's commits)",
                        other.name
                    ),
                )));
            }
        }
        Ok(())
    }
}

impl TargetConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let i = &self.influx;
        let key = |k: &str| format!("{}.{k}", self.key);
        if i.api == InfluxApi::V1 && i.username.is_some() != i.password.is_some() {
            return Err(ConfigError::invalid(
                key("password"),
                "set both `username` and `password`, or neither",
            ));
        }
        let refuse = |set: bool, k: &str, apis: &str| {
            if set {
                Err(ConfigError::invalid(key(k), format!("only with {apis}")))
            } else {
                Ok(())
            }
        };
        let v2 = i.api == InfluxApi::V2;
        refuse(
            v2 && i.database_tag.is_some(),
            "database_tag",
            "api = \"v1\" or \"v3\"",
        )?;
        refuse(!v2 && i.bucket_tag.is_some(), "bucket_tag", "api = \"v2\"")?;
        refuse(
            i.api != InfluxApi::V1 && i.retention_policy_tag.is_some(),
            "retention_policy_tag",
            "api = \"v1\"",
        )?;
        for (k, tag) in [
            ("database_tag", &i.database_tag),
            ("bucket_tag", &i.bucket_tag),
            ("retention_policy_tag", &i.retention_policy_tag),
        ] {
            if let Some(tag) = tag {
                kinflux_series::Tag::new(tag.as_str(), "x")
                    .map_err(|e| ConfigError::invalid(key(k), e.to_string()))?;
            }
        }
        Ok(())
    }
}

impl PipelineConfig {
    /// The checks of `[decode]` that only the configuration file needs.
    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(m) = &self.measurement {
            if m.is_empty() {
                return Err(ConfigError::invalid("measurement", "must not be empty"));
            }
        }
        let d = &self.decode;
        match d.format {
            Format::Line | Format::TelegrafJson => {}
            Format::Json => {
                if d.mapping.is_none() {
                    return Err(ConfigError::invalid(
                        "decode.mapping",
                        "required with format = \"json\"",
                    ));
                }
            }
            Format::Avro => {
                if !d.types.is_empty() || d.numbers != crate::decode::NumberMode::Float {
                    return Err(ConfigError::invalid(
                        "decode.types",
                        "Avro field types come from the schema",
                    ));
                }
                if !d.rename.is_empty() {
                    return Err(ConfigError::invalid(
                        "decode.rename",
                        "renames apply to JSON; with Avro, name the fields in the schema (aliases) or the mapping",
                    ));
                }
                if d.mapping.is_some() && d.telegraf.is_some() {
                    return Err(ConfigError::invalid(
                        "decode.telegraf",
                        "set `mapping` or the `telegraf` preset, not both",
                    ));
                }
                if d.mapping.is_none() && d.telegraf.is_none() {
                    return Err(ConfigError::invalid(
                        "decode.mapping",
                        "required with format = \"avro\" (or the `telegraf` preset)",
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

        Ok(())
    }
}
