//! How a record becomes a point: the serde configuration, with keys named like
//! Telegraf's Avro parser where the meaning is the same.

use kinflux_series::Precision;
use serde::Deserialize;

/// The mapping from an Avro record to a point. Paths name fields by name (nested fields
/// with `.`), so they resolve against any writer schema: fields added or removed by
/// schema evolution are found, or reported, by name.
///
/// ```toml
/// measurement = { constant = "garden" }
/// tags = ["sensor_id", "zone", "plant"]
/// # fields = ["soil_moisture", "battery"]   # default: every other scalar field
/// timestamp = { field = "time" }            # unit from the logical type
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// Where the measurement name comes from.
    pub measurement: MeasurementSource,
    /// Paths of the fields that become tags; the tag key is the flattened path.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Paths of the fields that become fields (a record path takes all of its scalars).
    /// `None` takes every scalar field not used as a tag, the measurement or the time.
    #[serde(default)]
    pub fields: Option<Vec<String>>,
    /// Where the time comes from. Without it, the decode call's fallback is used (the
    /// Kafka record timestamp, in the pipeline).
    #[serde(default)]
    pub timestamp: Option<TimestampSource>,
    /// Paths from `tags` and `fields` that a writer schema may lack (older or newer
    /// schemas); any other mapped path missing from the writer schema is an error.
    #[serde(default)]
    pub optional: Vec<String>,
    /// Joins the names of nested records, array indexes and map keys. Default `_`.
    #[serde(default = "default_separator")]
    pub field_separator: String,
    /// What becomes of `bytes` and `fixed` values. Default: skipped.
    #[serde(default)]
    pub bytes: BytesMode,
    /// What becomes of arrays and maps. Default: skipped.
    #[serde(default)]
    pub collections: CollectionMode,
}

fn default_separator() -> String {
    "_".to_owned()
}

impl Mapping {
    /// A mapping with a constant measurement, no tags, every scalar as a field, and the
    /// time from the fallback; adjust the public fields from there.
    pub fn new(measurement: MeasurementSource) -> Self {
        Mapping {
            measurement,
            tags: Vec::new(),
            fields: None,
            timestamp: None,
            optional: Vec::new(),
            field_separator: default_separator(),
            bytes: BytesMode::default(),
            collections: CollectionMode::default(),
        }
    }
}

/// Where a point's measurement name comes from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeasurementSource {
    /// The same name for every record: `measurement = { constant = "garden" }`.
    Constant(String),
    /// A string or enum field of the record: `measurement = { field = "kind" }`.
    Field(String),
    /// The writer schema's full record name, such as `garden.Reading`:
    /// `measurement = "record_name"`.
    RecordName,
}

/// Where a point's time comes from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimestampSource {
    /// The path of an `int` or `long` field. A null value falls back to the decode
    /// call's fallback time.
    pub field: String,
    /// The unit of the number (`s`, `ms`, `us`, `ns`). Without it, the field must carry a
    /// `timestamp-*` or `local-timestamp-*` logical type, which gives the unit.
    #[serde(default)]
    pub unit: Option<Precision>,
    /// How the time is written, named as Telegraf names it: `unix`, `unix_ms`, `unix_us`,
    /// `unix_ns` (numbers, or numeric strings in JSON), or for JSON strings a Go reference
    /// layout (`2006-01-02T15:04:05Z07:00`) or a strftime format (containing `%`).
    /// Avro takes only the `unix*` formats, as another way to give `unit`.
    #[serde(default)]
    pub format: Option<String>,
    /// JSON: the IANA time zone (or `Local`) of layout times that carry no offset. UTC by
    /// default.
    #[serde(default)]
    pub timezone: Option<String>,
}

impl TimestampSource {
    /// The unit that `unit`, or else a `unix*` `format`, gives; `Err` names a format that
    /// is no unit (a text layout).
    pub fn numeric_unit(&self) -> Result<Option<Precision>, String> {
        match (self.unit, self.format.as_deref()) {
            (Some(unit), _) => Ok(Some(unit)),
            (None, None) => Ok(None),
            (None, Some("unix")) => Ok(Some(Precision::Seconds)),
            (None, Some("unix_ms")) => Ok(Some(Precision::Milliseconds)),
            (None, Some("unix_us")) => Ok(Some(Precision::Microseconds)),
            (None, Some("unix_ns")) => Ok(Some(Precision::Nanoseconds)),
            (None, Some(other)) => Err(format!(
                "timestamp format {other:?} is a text layout; Avro times are numbers (use unix, unix_ms, unix_us or unix_ns)"
            )),
        }
    }
}

/// What becomes of `bytes` and `fixed` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BytesMode {
    /// Left out of the point.
    #[default]
    Skip,
    /// Written as a string field, base64 encoded (standard alphabet, padded).
    Base64,
}

/// What becomes of arrays and maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectionMode {
    /// Left out of the point.
    #[default]
    Skip,
    /// Each element becomes a field: `name_0`, `name_1` for arrays, `name_key` for maps.
    Expand,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_reads_from_toml() {
        let mapping: Mapping = toml::from_str(
            r#"
            measurement = { constant = "garden" }
            tags = ["sensor_id", "zone", "plant"]
            timestamp = { field = "time" }
            "#,
        )
        .unwrap();
        assert_eq!(
            mapping.measurement,
            MeasurementSource::Constant("garden".into())
        );
        assert_eq!(mapping.tags, ["sensor_id", "zone", "plant"]);
        assert_eq!(mapping.fields, None);
        assert_eq!(mapping.field_separator, "_");
        assert_eq!(mapping.timestamp.unwrap().unit, None);

        let mapping: Mapping = toml::from_str(
            r#"
            measurement = "record_name"
            fields = ["a.b"]
            timestamp = { field = "t", unit = "ms" }
            bytes = "base64"
            collections = "expand"
            field_separator = "."
            "#,
        )
        .unwrap();
        assert_eq!(mapping.measurement, MeasurementSource::RecordName);
        assert_eq!(
            mapping.timestamp.unwrap().unit,
            Some(Precision::Milliseconds)
        );
        assert_eq!(mapping.bytes, BytesMode::Base64);
        assert_eq!(mapping.collections, CollectionMode::Expand);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<Mapping>("measurement = \"record_name\"\ntag = []").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
