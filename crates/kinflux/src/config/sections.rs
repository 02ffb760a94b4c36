//! The sections of the configuration file, one struct each.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use kinflux_series::Precision;
use serde::{Deserialize, Deserializer};

use super::ConfigError;

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

/// `[kafka]`: the consumer's options (see `kinflux_kafka::ConsumerConfig`) plus where to
/// start and how often to commit.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct KafkaSection {
    /// Where each assigned partition starts (see [`StartAt`]).
    #[serde(default)]
    pub start_at: StartAt,
    /// How often offsets are committed (they are also committed on revoke and shutdown).
    #[serde(default = "default_commit_interval", deserialize_with = "duration")]
    pub commit_interval: Duration,
    /// Brokers, topics, group and the rest of the consumer's options.
    #[serde(flatten)]
    pub consumer: kinflux_kafka::ConsumerConfig,
}

fn default_commit_interval() -> Duration {
    Duration::from_secs(5)
}

/// `kafka.start_at`: where a partition starts when the pipeline gets it.
///
/// Like Kafka Connect and Telegraf, `Earliest` and `Latest` apply only where the group has
/// no committed offset: a restart, or a partition moving to another process, goes on from
/// the committed offset. An offset or a time is a backfill, applied once per group and
/// partition: the offset it starts at is committed with a mark, and a restart or the next
/// owner of the partition that finds the mark goes on from the committed offset. Another
/// offset or time is another backfill, applied once again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StartAt {
    /// The group's committed offset; where there is none, `auto_offset_reset`.
    #[default]
    Committed,
    /// The group's committed offset; where there is none, the earliest offset still in the
    /// log (sets `auto_offset_reset = "earliest"`).
    Earliest,
    /// The group's committed offset; where there is none, the end of the log (sets
    /// `auto_offset_reset = "latest"`).
    Latest,
    /// A backfill from this offset in every partition, once per group.
    Offset(i64),
    /// A backfill from the first record at or after this time (milliseconds since the
    /// epoch, found with ListOffsets), once per group.
    Time(i64),
}

impl<'de> Deserialize<'de> for StartAt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Offset(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Offset(o) if o >= 0 => Ok(StartAt::Offset(o)),
            Raw::Offset(o) => Err(serde::de::Error::custom(format!("offset {o} is negative"))),
            Raw::Text(t) => match t.as_str() {
                "committed" => Ok(StartAt::Committed),
                "earliest" => Ok(StartAt::Earliest),
                "latest" => Ok(StartAt::Latest),
                other => {
                    let time = humantime::parse_rfc3339_weak(other).map_err(|_| {
                        serde::de::Error::custom(format!(
                            "expected \"committed\", \"earliest\", \"latest\", an offset or an RFC 3339 time, not {other:?}"
                        ))
                    })?;
                    let ms = time
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_err(|_| serde::de::Error::custom("time is before 1970"))?
                        .as_millis();
                    Ok(StartAt::Time(
                        i64::try_from(ms).map_err(serde::de::Error::custom)?,
                    ))
                }
            },
        }
    }
}

/// `decode.format`: what record values hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Format {
    /// InfluxDB line protocol, any number of lines per record.
    #[default]
    Line,
    /// Avro, framed as `decode.framing` says.
    Avro,
    /// One JSON object per record.
    Json,
}

/// `decode.framing`: how an Avro record names its schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Framing {
    /// Confluent wire format: magic byte 0 and a 4-byte schema id.
    #[default]
    Confluent,
    /// Avro single-object encoding: `C3 01` and the schema's fingerprint.
    SingleObject,
    /// The bare Avro body, written with `decode.schema_file`.
    Plain,
}

/// `decode.time`: where a point's time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum TimeSource {
    /// The time in the data; the Kafka record timestamp when the data has none. Never the
    /// bridge's clock, so a replay writes the same points again.
    #[default]
    Data,
    /// Always the Kafka record timestamp.
    Kafka,
}

/// `[decode]`: how record values become points.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DecodeConfig {
    /// What the values hold.
    #[serde(default)]
    pub format: Format,
    /// The unit of line-protocol timestamps in the data.
    #[serde(default)]
    pub precision: Precision,
    /// Where a point's time comes from.
    #[serde(default)]
    pub time: TimeSource,
    /// Avro and JSON: how a record maps to a point.
    #[serde(default)]
    pub mapping: Option<kinflux_avro::Mapping>,
    /// Avro: how records name their schema.
    #[serde(default)]
    pub framing: Framing,
    /// Avro: the Confluent Schema Registry.
    #[serde(default)]
    pub registry_url: Option<String>,
    /// Avro: registry user (basic auth).
    #[serde(default)]
    pub registry_username: Option<String>,
    /// Avro: registry password (basic auth).
    #[serde(default)]
    pub registry_password: Option<String>,
    /// Avro: registry bearer token.
    #[serde(default)]
    pub registry_token: Option<String>,
    /// Avro: a PEM file of the CA certificates to trust for an `https://` registry,
    /// instead of the web roots.
    #[serde(default)]
    pub registry_ca_file: Option<PathBuf>,
    /// Avro: a directory of `<id>.avsc` files, instead of a registry.
    #[serde(default)]
    pub schema_dir: Option<PathBuf>,
    /// Avro: the schema of `plain` and `single-object` records.
    #[serde(default)]
    pub schema_file: Option<PathBuf>,
}

/// The settings of the Avro decoder, split out of `[decode]`.
pub type AvroConfig = DecodeConfig;

impl fmt::Debug for DecodeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecodeConfig")
            .field("format", &self.format)
            .field("precision", &self.precision)
            .field("time", &self.time)
            .field("mapping", &self.mapping)
            .field("framing", &self.framing)
            .field("registry_url", &self.registry_url)
            .field("registry_username", &self.registry_username)
            .field("registry_password", &redacted(&self.registry_password))
            .field("registry_token", &redacted(&self.registry_token))
            .field("registry_ca_file", &self.registry_ca_file)
            .field("schema_dir", &self.schema_dir)
            .field("schema_file", &self.schema_file)
            .finish()
    }
}

/// `[tags]`: tags added to every point. A tag the data already has keeps its value.
#[derive(Debug, Clone, Default, Deserialize)]
#[non_exhaustive]
pub struct TagsConfig {
    /// Add the source topic under this tag key.
    #[serde(default)]
    pub topic_tag: Option<String>,
    /// Add the record key (as UTF-8) under this tag key.
    #[serde(default)]
    pub key_tag: Option<String>,
    /// Add these record headers (as UTF-8) as tags of the same name.
    #[serde(default)]
    pub header_tags: Vec<String>,
    /// Every other key is a static tag: `region = "eu-west"`.
    #[serde(flatten)]
    pub static_tags: BTreeMap<String, String>,
}

/// `[batch]`: when a batch is flushed to InfluxDB.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BatchConfig {
    /// Most points (after merging) in one write.
    #[serde(default = "default_max_points")]
    pub max_points: usize,
    /// Most bytes of line protocol in one write.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// Longest time a point waits before its batch is written.
    #[serde(default = "default_max_age", deserialize_with = "duration")]
    pub max_age: Duration,
    /// Sort each batch by series key.
    #[serde(default = "yes")]
    pub sort_by_series: bool,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_points: default_max_points(),
            max_bytes: default_max_bytes(),
            max_age: default_max_age(),
            sort_by_series: true,
        }
    }
}

fn default_max_points() -> usize {
    5_000
}
fn default_max_bytes() -> usize {
    4 << 20
}
fn default_max_age() -> Duration {
    Duration::from_secs(1)
}
fn yes() -> bool {
    true
}

/// `influx.api`: which write API the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum InfluxApi {
    /// InfluxDB 1.x, Enterprise: `/write`, database and retention policy, user and password.
    #[default]
    V1,
    /// InfluxDB 2.x and Cloud: `/api/v2/write`, org and bucket, token.
    V2,
    /// InfluxDB 3: `/api/v3/write_lp`, database, token.
    V3,
}

/// `[influx]`: where points are written.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct InfluxConfig {
    /// Base URL, such as `http://127.0.0.1:8086`.
    pub url: String,
    /// The write API.
    #[serde(default)]
    pub api: InfluxApi,
    /// v1 and v3: the database.
    #[serde(default)]
    pub database: Option<String>,
    /// v1: the retention policy (the database's default when absent).
    #[serde(default)]
    pub retention_policy: Option<String>,
    /// v2: the organization.
    #[serde(default)]
    pub org: Option<String>,
    /// v2: the bucket.
    #[serde(default)]
    pub bucket: Option<String>,
    /// v2 and v3: the API token.
    #[serde(default)]
    pub token: Option<String>,
    /// v1: user name (basic auth).
    #[serde(default)]
    pub username: Option<String>,
    /// v1: password (basic auth).
    #[serde(default)]
    pub password: Option<String>,
    /// gzip request bodies.
    #[serde(default = "yes")]
    pub gzip: bool,
    /// gzip level, 0 to 9.
    #[serde(default = "default_gzip_level")]
    pub gzip_level: u32,
    /// Most writes in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Timeout of one write request.
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    /// v1: create the database when it does not exist.
    #[serde(default)]
    pub create_database: bool,
    /// v2: create the bucket in the org when it does not exist.
    #[serde(default)]
    pub create_bucket: bool,
    /// v2: the retention period of a bucket `create_bucket` creates (`"30d"`); forever
    /// when absent.
    #[serde(default, deserialize_with = "optional_duration")]
    pub bucket_retention: Option<Duration>,
    /// Give up on a write after this many attempts; retries forever when absent.
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// Give up on a write after this long; retries forever when absent.
    #[serde(default, deserialize_with = "optional_duration")]
    pub max_retry_time: Option<Duration>,
    /// A PEM file of CA certificates to trust for `https://`.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_gzip_level() -> u32 {
    1
}
fn default_concurrency() -> usize {
    4
}
fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

impl fmt::Debug for InfluxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InfluxConfig")
            .field("url", &self.url)
            .field("api", &self.api)
            .field("database", &self.database)
            .field("retention_policy", &self.retention_policy)
            .field("org", &self.org)
            .field("bucket", &self.bucket)
            .field("token", &redacted(&self.token))
            .field("username", &self.username)
            .field("password", &redacted(&self.password))
            .field("gzip", &self.gzip)
            .field("gzip_level", &self.gzip_level)
            .field("concurrency", &self.concurrency)
            .field("timeout", &self.timeout)
            .field("create_database", &self.create_database)
            .field("create_bucket", &self.create_bucket)
            .field("bucket_retention", &self.bucket_retention)
            .field("max_retries", &self.max_retries)
            .field("max_retry_time", &self.max_retry_time)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// `dead_letter.on_error`: what happens to a record that cannot be decoded or that
/// InfluxDB refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum OnError {
    /// Write it to the dead-letter topic, with headers saying why, and go on.
    #[default]
    DeadLetter,
    /// Count it, log it, and go on.
    Drop,
    /// Stop the bridge without committing past it.
    Stop,
}

/// `[dead_letter]`: the topic for records that cannot be written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DeadLetterSection {
    /// The dead-letter topic.
    #[serde(default)]
    pub topic: Option<String>,
    /// What happens to a bad record.
    #[serde(default)]
    pub on_error: OnError,
    /// Create the topic when it does not exist.
    #[serde(default = "yes")]
    pub create_topic: bool,
    /// Partitions of a created topic.
    #[serde(default = "one")]
    pub partitions: i32,
}

fn one() -> i32 {
    1
}

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

fn redacted(secret: &Option<String>) -> Option<&'static str> {
    secret.as_ref().map(|_| "<redacted>")
}

/// A duration as a humantime string (`"1s"`, `"250ms"`) or milliseconds.
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Millis(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Millis(ms) => Ok(Duration::from_millis(ms)),
        Raw::Text(s) => humantime::parse_duration(s.trim()).map_err(serde::de::Error::custom),
    }
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
