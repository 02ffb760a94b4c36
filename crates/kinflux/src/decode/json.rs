//! JSON objects to points, with the same mapping options as Avro.
//!
//! JSON has no schema, so the mapping is applied to each object as it comes: a mapped path
//! that is missing is an error unless it is listed in `optional`, and `null` leaves its
//! tag or field out. Numbers that are whole and fit an `i64` become integers, larger whole
//! numbers unsigned integers, others floats. A time field is a number in `unit`, or an
//! RFC 3339 string.

use std::collections::HashSet;

use kinflux_avro::{CollectionMode, Mapping, MeasurementSource};
use kinflux_series::{FieldValue, Point, Precision, Timestamp};
use serde_json::{Map, Value};

/// Why a JSON record did not give a point.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// The bytes are not JSON.
    #[error("not valid JSON: {0}")]
    Syntax(String),
    /// The value is not an object.
    #[error("expected a JSON object, found {0}")]
    NotAnObject(&'static str),
    /// A mapped path is missing and not optional.
    #[error("mapped path {0:?} is missing")]
    Missing(String),
    /// A value has a type the mapping cannot use there.
    #[error("{path:?}: {message}")]
    Type {
        /// The path.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The mapped parts do not make a valid point.
    #[error(transparent)]
    Point(#[from] kinflux_series::SeriesError),
}

/// Why a mapping cannot be used for JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonMappingError {
    /// JSON objects have no record name.
    #[error("measurement = \"record_name\" needs a schema; use a constant or a field with JSON")]
    RecordName,
}

/// Decodes JSON objects with a [`Mapping`].
#[derive(Debug, Clone)]
pub struct JsonDecoder {
    mapping: Mapping,
    tags: Vec<Vec<String>>,
    fields: Option<Vec<Vec<String>>>,
    time: Option<(Vec<String>, Option<Precision>)>,
    measurement_path: Option<Vec<String>>,
    optional: HashSet<String>,
}

fn split_path(p: &str) -> Vec<String> {
    p.split('.').map(str::to_owned).collect()
}

impl JsonDecoder {
    /// A decoder for `mapping`.
    pub fn new(mapping: Mapping) -> Result<Self, JsonMappingError> {
        let measurement_path = match &mapping.measurement {
            MeasurementSource::Constant(_) => None,
            MeasurementSource::Field(path) => Some(split_path(path)),
            MeasurementSource::RecordName => return Err(JsonMappingError::RecordName),
        };
        Ok(JsonDecoder {
            tags: mapping.tags.iter().map(|p| split_path(p)).collect(),
            fields: mapping
                .fields
                .as_ref()
                .map(|f| f.iter().map(|p| split_path(p)).collect()),
            time: mapping
                .timestamp
                .as_ref()
                .map(|t| (split_path(&t.field), t.unit)),
            optional: mapping.optional.iter().cloned().collect(),
            measurement_path,
            mapping,
        })
    }

    /// Decodes one JSON object; `fallback` is the time when the mapping has none or the
    /// object's time is null.
    pub fn decode(&self, bytes: &[u8], fallback: Option<Timestamp>) -> Result<Point, JsonError> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| JsonError::Syntax(e.to_string()))?;
        let Value::Object(root) = value else {
            return Err(JsonError::NotAnObject(kind(&value)));
        };
        let sep = &self.mapping.field_separator;

        let measurement = match (&self.mapping.measurement, &self.measurement_path) {
            (MeasurementSource::Constant(c), _) => c.clone(),
            (_, Some(path)) => match self.lookup(&root, path)? {
                Some(Value::String(s)) => s.clone(),
                Some(other) => {
                    return Err(JsonError::Type {
                        path: path.join("."),
                        message: format!("a measurement must be a string, found {}", kind(other)),
                    });
                }
                None => return Err(JsonError::Missing(path.join("."))),
            },
            _ => return Err(JsonError::Missing("measurement".into())),
        };
        let mut point = Point::builder(measurement);
        let mut used: HashSet<Vec<String>> = HashSet::new();
        if let Some(p) = &self.measurement_path {
            used.insert(p.clone());
        }

        for path in &self.tags {
            used.insert(path.clone());
            match self.lookup(&root, path)? {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) => point = point.tag(path.join(sep), s.as_str()),
                Some(v @ (Value::Number(_) | Value::Bool(_))) => {
                    point = point.tag(path.join(sep), v.to_string())
                }
                Some(other) => {
                    return Err(JsonError::Type {
                        path: path.join("."),
                        message: format!(
                            "a tag must be a string, number or boolean, found {}",
                            kind(other)
                        ),
                    });
                }
            }
        }

        let mut timestamp = fallback;
        if let Some((path, unit)) = &self.time {
            used.insert(path.clone());
            match self.lookup(&root, path)? {
                None | Some(Value::Null) => {}
                Some(v) => timestamp = Some(time_of(v, *unit, path)?),
            }
        }

        let mut fields: Vec<(String, FieldValue)> = Vec::new();
        match &self.fields {
            Some(paths) => {
                for path in paths {
                    match self.lookup(&root, path)? {
                        None | Some(Value::Null) => {}
                        Some(v) => self.flatten(path.join(sep), v, &mut fields),
                    }
                }
            }
            None => {
                for (k, v) in &root {
                    self.flatten_unused(vec![k.clone()], v, &used, &mut fields);
                }
            }
        }
        for (k, v) in fields {
            point = point.field(k, v);
        }
        if let Some(t) = timestamp {
            point = point.timestamp(t);
        }
        Ok(point.build()?)
    }

    /// The value at `path`; `Ok(None)` when an optional path is missing.
    fn lookup<'v>(
        &self,
        root: &'v Map<String, Value>,
        path: &[String],
    ) -> Result<Option<&'v Value>, JsonError> {
        let mut current = root.get(&path[0]);
        for part in &path[1..] {
            current = match current {
                Some(Value::Object(o)) => o.get(part),
                Some(Value::Null) => return Ok(None),
                _ => None,
            };
        }
        match current {
            Some(v) => Ok(Some(v)),
            None if self.optional.contains(&path.join(".")) => Ok(None),
            None => Err(JsonError::Missing(path.join("."))),
        }
    }

    fn flatten_unused(
        &self,
        path: Vec<String>,
        v: &Value,
        used: &HashSet<Vec<String>>,
        out: &mut Vec<(String, FieldValue)>,
    ) {
        if used.contains(&path) {
            return;
        }
        if let Value::Object(o) = v {
            for (k, child) in o {
                let mut p = path.clone();
                p.push(k.clone());
                self.flatten_unused(p, child, used, out);
            }
        } else {
            self.flatten(path.join(&self.mapping.field_separator), v, out);
        }
    }

    fn flatten(&self, key: String, v: &Value, out: &mut Vec<(String, FieldValue)>) {
        let sep = &self.mapping.field_separator;
        match v {
            Value::Null => {}
            Value::Bool(b) => out.push((key, FieldValue::Boolean(*b))),
            Value::String(s) => out.push((key, FieldValue::String(s.clone()))),
            Value::Number(n) => {
                let value = if let Some(i) = n.as_i64() {
                    FieldValue::Integer(i)
                } else if let Some(u) = n.as_u64() {
                    FieldValue::UInteger(u)
                } else {
                    FieldValue::Float(n.as_f64().unwrap_or(f64::NAN))
                };
                out.push((key, value));
            }
            Value::Object(o) => {
                for (k, child) in o {
                    self.flatten(format!("{key}{sep}{k}"), child, out);
                }
            }
            Value::Array(items) => {
                if self.mapping.collections == CollectionMode::Expand {
                    for (i, child) in items.iter().enumerate() {
                        self.flatten(format!("{key}{sep}{i}"), child, out);
                    }
                }
            }
        }
    }
}

impl super::Decode for JsonDecoder {
    fn decode_record<'a>(
        &'a self,
        input: super::Input<'a>,
        out: &'a mut super::Emitter<'_>,
    ) -> super::Decoding<'a> {
        match self.decode(input.value, input.default_time) {
            Ok(point) => {
                out.point(point.as_point_ref());
                super::Decoding::ok()
            }
            Err(e) => super::Decoding::failed(super::DecodeFailure::new(
                crate::pipeline::ErrorClass::Decode,
                e.to_string(),
            )),
        }
    }
}

fn time_of(v: &Value, unit: Option<Precision>, path: &[String]) -> Result<Timestamp, JsonError> {
    let bad = |message: String| JsonError::Type {
        path: path.join("."),
        message,
    };
    match v {
        Value::Number(n) => {
            let raw = n
                .as_i64()
                .ok_or_else(|| bad(format!("time {n} is not a whole number that fits i64")))?;
            let unit =
                unit.ok_or_else(|| bad("a numeric time needs `unit` in the mapping".into()))?;
            Timestamp::from_precision(raw, unit).map_err(|e| bad(e.to_string()))
        }
        Value::String(s) => {
            let t = humantime::parse_rfc3339_weak(s)
                .map_err(|e| bad(format!("time {s:?} is not RFC 3339: {e}")))?;
            let nanos = t
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|_| bad("time is before 1970".into()))?
                .as_nanos();
            i64::try_from(nanos)
                .map(Timestamp::from_nanos)
                .map_err(|_| bad("time is out of range".into()))
        }
        other => Err(bad(format!(
            "a time must be a number or a string, found {}",
            kind(other)
        ))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kinflux_series::PointView;

    fn mapping(toml: &str) -> Mapping {
        toml::from_str(toml).unwrap()
    }

    #[test]
    fn object_maps_to_tags_fields_and_time() {
        let d = JsonDecoder::new(mapping(
            r#"
            measurement = { constant = "garden" }
            tags = ["sensor.id", "zone"]
            timestamp = { field = "ts", unit = "ms" }
            "#,
        ))
        .unwrap();
        let p = d
            .decode(
                br#"{"sensor":{"id":"s1","kind":"soil"},"zone":3,"ts":1700000000000,"moisture":0.4,"count":7,"big":18446744073709551615,"ok":true,"note":null,"list":[1,2]}"#,
                None,
            )
            .unwrap();
        assert_eq!(p.measurement().as_str(), "garden");
        assert_eq!(
            PointView::tags(&p).collect::<Vec<_>>(),
            [("sensor_id", "s1"), ("zone", "3")]
        );
        assert_eq!(
            p.timestamp(),
            Some(Timestamp::from_nanos(1_700_000_000_000_000_000))
        );
        let f = p.fields();
        assert_eq!(
            f.get("sensor_kind"),
            Some(&FieldValue::String("soil".into()))
        );
        assert_eq!(f.get("moisture"), Some(&FieldValue::Float(0.4)));
        assert_eq!(f.get("count"), Some(&FieldValue::Integer(7)));
        assert_eq!(f.get("big"), Some(&FieldValue::UInteger(u64::MAX)));
        assert_eq!(f.get("ok"), Some(&FieldValue::Boolean(true)));
        assert_eq!(f.get("note"), None);
        assert_eq!(f.get("list_0"), None);
        assert_eq!(f.len(), 5);
    }

    #[test]
    fn explicit_fields_expand_arrays_and_rfc3339_times_parse() {
        let d = JsonDecoder::new(mapping(
            r#"
            measurement = { field = "kind" }
            fields = ["v"]
            collections = "expand"
            timestamp = { field = "at" }
            "#,
        ))
        .unwrap();
        let p = d
            .decode(
                br#"{"kind":"m","v":[1.5,2],"at":"2023-11-14T22:13:20Z","other":1}"#,
                None,
            )
            .unwrap();
        assert_eq!(p.measurement().as_str(), "m");
        assert_eq!(p.fields().get("v_0"), Some(&FieldValue::Float(1.5)));
        assert_eq!(p.fields().get("v_1"), Some(&FieldValue::Integer(2)));
        assert_eq!(p.fields().get("other"), None);
        assert_eq!(
            p.timestamp(),
            Some(Timestamp::from_nanos(1_700_000_000_000_000_000))
        );
    }

    #[test]
    fn missing_paths_fail_unless_optional_and_null_time_falls_back() {
        let d = JsonDecoder::new(mapping(
            r#"
            measurement = { constant = "m" }
            tags = ["a", "b"]
            optional = ["b"]
            timestamp = { field = "t", unit = "s" }
            "#,
        ))
        .unwrap();
        let fallback = Some(Timestamp::from_nanos(5));
        let p = d.decode(br#"{"a":"x","t":null,"v":1}"#, fallback).unwrap();
        assert_eq!(p.timestamp(), fallback);
        assert_eq!(
            d.decode(br#"{"v":1,"t":1}"#, None).unwrap_err(),
            JsonError::Missing("a".into())
        );
        assert!(matches!(
            d.decode(b"[1]", None),
            Err(JsonError::NotAnObject(_))
        ));
        assert!(matches!(
            d.decode(b"{nope", None),
            Err(JsonError::Syntax(_))
        ));
        assert!(matches!(
            d.decode(br#"{"a":"x","t":"soon","v":1}"#, None),
            Err(JsonError::Type { .. })
        ));
        assert!(matches!(
            d.decode(br#"{"a":"x","t":1}"#, None),
            Err(JsonError::Point(_))
        ));
    }

    #[test]
    fn record_name_is_refused_for_json() {
        let m = mapping("measurement = \"record_name\"");
        assert_eq!(
            JsonDecoder::new(m).unwrap_err(),
            JsonMappingError::RecordName
        );
    }
}
