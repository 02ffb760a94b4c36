//! `[decode]`: how record values become points.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use kinflux_series::Precision;
use serde::Deserialize;

use super::redacted;
use crate::decode::{FieldType, NumberMode, Typing};

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
    /// JSON: an object, or an array of objects, per record, mapped by `decode.mapping`.
    Json,
    /// Telegraf's JSON output format: `{"name","tags","fields","timestamp"}` per metric,
    /// an array of them, or `{"metrics": [..]}`; timestamps in `decode.precision`.
    #[serde(rename = "telegraf-json")]
    TelegrafJson,
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
    /// JSON: the type of a field, by its key as written: `{ temp = "float", count =
    /// "integer", on = "boolean", id = "string" }`. Avro types come from the schema.
    #[serde(default)]
    pub types: BTreeMap<String, FieldType>,
    /// JSON: new names for tag and field keys, by the flattened key:
    /// `{ "tags_host" = "host" }`.
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    /// JSON: the type of numbers whose field `types` does not name: `float` (default, as
    /// Telegraf's json_v2) or `auto` (whole numbers as integers).
    #[serde(default)]
    pub numbers: NumberMode,
    /// Avro: decode as Telegraf's avro parser does, with its option names (instead of
    /// `mapping`), so the same topic gives the same series.
    #[serde(default)]
    pub telegraf: Option<kinflux_avro::TelegrafOptions>,
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

impl DecodeConfig {
    /// The field types and renames of schemaless formats.
    pub fn typing(&self) -> Typing {
        Typing {
            types: self.types.clone(),
            rename: self.rename.clone(),
            numbers: self.numbers,
        }
    }
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
            .field("types", &self.types)
            .field("rename", &self.rename)
            .field("numbers", &self.numbers)
            .field("telegraf", &self.telegraf)
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
