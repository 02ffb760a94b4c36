//! JSON objects to points, with the same mapping options as Avro.
//!
//! JSON has no schema, so the mapping is applied to each object as it comes: a mapped path
//! that is missing is an error unless it is listed in `optional`, and `null` leaves its
//! tag or field out. A record that is an array of objects gives one point per object.
//! Numbers are floats unless `decode.types` pins a field's type or `decode.numbers =
//! "auto"` (see [`Typing`]); keys can be renamed. A time field is a number in `unit`, an
//! RFC 3339 string, or whatever `timestamp.format` says (see [`TimeFormat`]).
//!
//! Telegraf's JSON output format (`{"name","tags","fields","timestamp"}`) is decoded by
//! [`TelegrafJsonDecoder`].

mod flat;
mod read;
mod telegraf;
mod types;
mod value;

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt::Write as _;

use kinflux_avro::{CollectionMode, Mapping, MeasurementSource};
use kinflux_series::{FieldValueRef, Point, PointRef, Precision, Timestamp};

pub use telegraf::TelegrafJsonDecoder;
pub use types::{FieldType, NumberMode, Typing};
use value::{Json, Object};

use super::time_format::TimeFormat;

/// Why a JSON record did not give a point.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// The bytes are not JSON.
    #[error("not valid JSON: {0}")]
    Syntax(String),
    /// The value is not an object (or an array of objects).
    #[error("expected a JSON object, found {0}")]
    NotAnObject(&'static str),
    /// A mapped path is missing and not optional.
    #[error("mapped path {0:?} is missing")]
    Missing(String),
    /// A value has a type the mapping cannot use there, or cannot be converted to the
    /// type `decode.types` pins.
    #[error("{path:?}: {message}")]
    Type {
        /// The path, or the field's key.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The mapped parts do not make a valid point.
    #[error(transparent)]
    Point(#[from] kinflux_series::SeriesError),
    /// One object of an array failed.
    #[error("array element {index}: {error}")]
    Element {
        /// The element's index.
        index: usize,
        /// Why it failed.
        error: Box<JsonError>,
    },
}

/// Why a mapping cannot be used for JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonMappingError {
    /// JSON objects have no record name.
    #[error("measurement = \"record_name\" needs a schema; use a constant or a field with JSON")]
    RecordName,
    /// The timestamp's format or time zone is not usable.
    #[error("timestamp: {0}")]
    Time(String),
}

/// How a mapped time is read.
#[derive(Debug, Clone)]
struct TimeSpec {
    path: Vec<String>,
    /// Numbers in this unit; `None` refuses numbers.
    unit: Option<Precision>,
    /// Strings (and, for `unix*`, numbers) in this format; `None` reads RFC 3339.
    format: Option<TimeFormat>,
}

/// Decodes JSON objects with a [`Mapping`].
#[derive(Debug, Clone)]
pub struct JsonDecoder {
    mapping: Mapping,
    typing: Typing,
    tags: Vec<(Vec<String>, String)>,
    fields: Option<Vec<Vec<String>>>,
    time: Option<TimeSpec>,
    measurement_path: Option<Vec<String>>,
    /// The top-level members that are not fields: measurement, tags, time.
    used_top: Vec<String>,
    /// The nested paths that are not fields. Apart from `used_top` so that the members
    /// of a flat object are checked by name alone.
    used_nested: Vec<Vec<String>>,
    optional: HashSet<String>,
    /// How flat objects are mapped as they are read; `None` when the mapping needs the
    /// tree for every record.
    flat: Option<flat::FlatPlan>,
}

fn split_path(p: &str) -> Vec<String> {
    p.split('.').map(str::to_owned).collect()
}

impl JsonDecoder {
    /// A decoder for `mapping`, numbers as floats and no renames.
    pub fn new(mapping: Mapping) -> Result<Self, JsonMappingError> {
        Self::with_typing(mapping, Typing::default())
    }

    /// A decoder for `mapping`, with field types and renames from `typing`.
    pub fn with_typing(mapping: Mapping, typing: Typing) -> Result<Self, JsonMappingError> {
        let measurement_path = match &mapping.measurement {
            MeasurementSource::Constant(_) => None,
            MeasurementSource::Field(path) => Some(split_path(path)),
            MeasurementSource::RecordName => return Err(JsonMappingError::RecordName),
        };
        let time = match &mapping.timestamp {
            None => None,
            Some(t) => {
                let format = t
                    .format
                    .as_deref()
                    .map(|f| TimeFormat::new(f, t.timezone.as_deref()))
                    .transpose()
                    .map_err(JsonMappingError::Time)?;
                Some(TimeSpec {
                    path: split_path(&t.field),
                    unit: t.unit,
                    format,
                })
            }
        };
        let sep = &mapping.field_separator;
        let tags: Vec<_> = mapping
            .tags
            .iter()
            .map(|p| {
                let path = split_path(p);
                let key = typing.key(&path.join(sep)).to_owned();
                (path, key)
            })
            .collect();
        let used = (tags.iter().map(|(p, _)| p))
            .chain(&measurement_path)
            .chain(time.as_ref().map(|t| &t.path));
        let (mut used_top, mut used_nested) = (Vec::new(), Vec::new());
        for path in used {
            match &path[..] {
                [name] => used_top.push(name.clone()),
                _ => used_nested.push(path.clone()),
            }
        }
        let mut decoder = JsonDecoder {
            tags,
            fields: mapping
                .fields
                .as_ref()
                .map(|f| f.iter().map(|p| split_path(p)).collect()),
            time,
            optional: mapping.optional.iter().cloned().collect(),
            measurement_path,
            used_top,
            used_nested,
            typing,
            mapping,
            flat: None,
        };
        decoder.flat = flat::FlatPlan::new(&decoder);
        Ok(decoder)
    }

    /// Decodes one JSON object; `fallback` is the time when the mapping has none or the
    /// object's time is null. An array is refused here: see [`decode_all`](Self::decode_all).
    pub fn decode(&self, bytes: &[u8], fallback: Option<Timestamp>) -> Result<Point, JsonError> {
        let text = utf8(bytes)?;
        if let Some(point) = self.flat(text, fallback) {
            return Ok(point.into_owned());
        }
        match read::read(text)? {
            Json::Object(root) => self.point(&root, fallback).map(PointRef::into_owned),
            other => Err(JsonError::NotAnObject(kind(&other))),
        }
    }

    /// Decodes a JSON object, or an array of objects (one point each).
    pub fn decode_all(
        &self,
        bytes: &[u8],
        fallback: Option<Timestamp>,
    ) -> Result<Vec<Point>, JsonError> {
        let mut points = Vec::new();
        self.decode_each(bytes, fallback, &mut |p| points.push(p.into_owned()))?;
        Ok(points)
    }

    /// Decodes a JSON object or an array of objects, handing each point to `emit` as a
    /// view that borrows from `bytes` (what the pipeline batches, without an owned
    /// [`Point`] per record). Stops at the first element that fails (the record goes to
    /// the dead-letter topic whole), so nothing is emitted from a record that fails.
    pub fn decode_each(
        &self,
        bytes: &[u8],
        fallback: Option<Timestamp>,
        emit: &mut dyn FnMut(PointRef<'_>),
    ) -> Result<(), JsonError> {
        let text = utf8(bytes)?;
        if let Some(point) = self.flat(text, fallback) {
            emit(point);
            return Ok(());
        }
        match read::read(text)? {
            Json::Object(root) => emit(self.point(&root, fallback)?),
            Json::Array(items) => {
                let points = items
                    .iter()
                    .enumerate()
                    .map(|(index, item)| {
                        let point = match item {
                            Json::Object(o) => self.point(o, fallback),
                            other => Err(JsonError::NotAnObject(kind(other))),
                        };
                        point.map_err(|e| JsonError::Element {
                            index,
                            error: Box::new(e),
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                points.into_iter().for_each(emit);
            }
            other => return Err(JsonError::NotAnObject(kind(&other))),
        }
        Ok(())
    }

    /// The point of `text` by the flat path, when the mapping allows it and the text is
    /// a flat object that maps without error.
    fn flat<'v>(&'v self, text: &'v str, fallback: Option<Timestamp>) -> Option<PointRef<'v>> {
        self.flat
            .as_ref()
            .and_then(|plan| self.flat_point(plan, text, fallback))
    }

    /// The point of one object. Its names and strings borrow from the document and the
    /// mapping: building an owned point (a `String` per name and value) and freeing it
    /// were a fifth of the bridge's CPU on JSON.
    fn point<'v>(
        &'v self,
        root: &'v Object<'v>,
        fallback: Option<Timestamp>,
    ) -> Result<PointRef<'v>, JsonError> {
        let measurement = match (&self.mapping.measurement, &self.measurement_path) {
            (MeasurementSource::Constant(c), _) => Cow::Borrowed(c.as_str()),
            (_, Some(path)) => match self.lookup(root, path)? {
                Some(Json::String(s)) => Cow::Borrowed(s.as_ref()),
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
        let mut tags = Vec::with_capacity(self.tags.len());
        for (path, key) in &self.tags {
            let key = Cow::Borrowed(key.as_str());
            match self.lookup(root, path)? {
                None | Some(Json::Null) => {}
                Some(Json::String(s)) => tags.push((key, Cow::Borrowed(s.as_ref()))),
                Some(v @ (Json::Number(_) | Json::Bool(_))) => {
                    tags.push((key, Cow::Owned(v.to_string())))
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
        if let Some(spec) = &self.time {
            match self.lookup(root, &spec.path)? {
                None | Some(Json::Null) => {}
                Some(v) => timestamp = Some(time_of(v, spec)?),
            }
        }

        let mut fields = Vec::new();
        let mut key = String::new();
        match &self.fields {
            Some(paths) => {
                for path in paths {
                    if let Some(v) = self.lookup(root, path)? {
                        key.clear();
                        join_into(&mut key, path, &self.mapping.field_separator);
                        self.flatten(&mut key, None, v, &mut fields)?;
                    }
                }
            }
            None => {
                let mut path: Vec<&str> = Vec::new();
                for (k, v) in root.iter() {
                    match v {
                        Json::Object(_) | Json::Array(_) => {
                            path.push(k);
                            self.flatten_unused(&mut path, &mut key, v, &mut fields)?;
                            path.pop();
                        }
                        // A top-level scalar (the usual flat object): named as written,
                        // borrowed, with no path to build or join.
                        scalar if !self.is_used(&[k]) => {
                            self.scalar_field(k, Some(k), scalar, &mut fields)?
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(PointRef::new(measurement, tags, fields, timestamp)?)
    }

    /// The value at `path`; `Ok(None)` when an optional path is missing.
    fn lookup<'v>(
        &self,
        root: &'v Object<'v>,
        path: &[String],
    ) -> Result<Option<&'v Json<'v>>, JsonError> {
        let mut current = root.get(&path[0]);
        for part in &path[1..] {
            current = match current {
                Some(Json::Object(o)) => o.get(part),
                Some(Json::Null) => return Ok(None),
                _ => None,
            };
        }
        match current {
            Some(v) => Ok(Some(v)),
            None if self.optional.contains(&path.join(".")) => Ok(None),
            None => Err(JsonError::Missing(path.join("."))),
        }
    }

    /// Every value under `path` that is not a tag, the measurement or the time.
    fn flatten_unused<'v>(
        &'v self,
        path: &mut Vec<&'v str>,
        key: &mut String,
        v: &'v Json<'v>,
        fields: &mut Vec<Field<'v>>,
    ) -> Result<(), JsonError> {
        if self.is_used(path) {
            return Ok(());
        }
        if let Json::Object(o) = v {
            for (k, child) in o.iter() {
                path.push(k);
                self.flatten_unused(path, key, child, fields)?;
                path.pop();
            }
            Ok(())
        } else {
            key.clear();
            join_into(key, path, &self.mapping.field_separator);
            // A top-level member's key is its name in the document: borrowed, not copied.
            let as_written = match path[..] {
                [name] => Some(name),
                _ => None,
            };
            self.flatten(key, as_written, v, fields)
        }
    }

    /// The fields of `v` under `key` (objects and, when expanded, arrays flattened).
    /// `as_written` is `key` borrowed from the document, when it is one member's name.
    fn flatten<'v>(
        &'v self,
        key: &mut String,
        as_written: Option<&'v str>,
        v: &'v Json<'v>,
        fields: &mut Vec<Field<'v>>,
    ) -> Result<(), JsonError> {
        let sep = &self.mapping.field_separator;
        let len = key.len();
        match v {
            Json::Object(o) => {
                for (k, child) in o.iter() {
                    key.push_str(sep);
                    key.push_str(k);
                    self.flatten(key, None, child, fields)?;
                    key.truncate(len);
                }
            }
            Json::Array(items) => {
                if self.mapping.collections == CollectionMode::Expand {
                    for (i, child) in items.iter().enumerate() {
                        key.push_str(sep);
                        let _ = write!(key, "{i}");
                        self.flatten(key, None, child, fields)?;
                        key.truncate(len);
                    }
                }
            }
            scalar => self.scalar_field(key, as_written, scalar, fields)?,
        }
        Ok(())
    }

    /// Whether `path` is the measurement, a tag or the time.
    fn is_used(&self, path: &[&str]) -> bool {
        match path {
            [name] => self.used_top.iter().any(|u| u == name),
            _ => self
                .used_nested
                .iter()
                .any(|u| u.len() == path.len() && u.iter().zip(path.iter()).all(|(a, b)| a == b)),
        }
    }

    /// The field of the scalar `v` under the joined path `key`, named by `rename` or as
    /// written (`as_written`, borrowed from the document, when the path is one member).
    fn scalar_field<'v>(
        &'v self,
        key: &str,
        as_written: Option<&'v str>,
        v: &'v Json<'v>,
        fields: &mut Vec<Field<'v>>,
    ) -> Result<(), JsonError> {
        let written: Cow<'v, str> = match (self.typing.renamed(key), as_written) {
            (Some(renamed), _) => Cow::Borrowed(renamed),
            (None, Some(name)) => Cow::Borrowed(name),
            (None, None) => Cow::Owned(key.to_owned()),
        };
        match self.typing.field(&written, v) {
            Ok(Some(value)) => fields.push((written, value)),
            Ok(None) => {}
            Err(message) => {
                return Err(JsonError::Type {
                    path: written.into_owned(),
                    message,
                });
            }
        }
        Ok(())
    }
}

/// A field as [`PointRef::new`] takes it.
type Field<'v> = (Cow<'v, str>, FieldValueRef<'v>);

fn join_into<S: AsRef<str>>(out: &mut String, path: &[S], sep: &str) {
    for (i, part) in path.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(part.as_ref());
    }
}

/// The record read as a tree.
fn parse(bytes: &[u8]) -> Result<Json<'_>, JsonError> {
    read::read(utf8(bytes)?)
}

/// The record as text, checked as UTF-8 once, whole: serde_json's `from_slice` checked
/// every string apart, 5% of the bridge's instructions on JSON (callgrind).
fn utf8(bytes: &[u8]) -> Result<&str, JsonError> {
    std::str::from_utf8(bytes)
        .map_err(|e| JsonError::Syntax(format!("the record is not UTF-8: {e}")))
}

impl super::Decode for JsonDecoder {
    fn decode_record<'a>(
        &'a self,
        input: super::Input<'a>,
        out: &'a mut super::Emitter<'_>,
    ) -> super::Decoding<'a> {
        let mut emit = |point: PointRef<'_>| out.point(point);
        match self.decode_each(input.value, input.default_time, &mut emit) {
            Ok(()) => super::Decoding::ok(),
            Err(e) => super::Decoding::failed(super::DecodeFailure::new(
                crate::pipeline::ErrorClass::Decode,
                e.to_string(),
            )),
        }
    }
}

fn time_of(v: &Json<'_>, spec: &TimeSpec) -> Result<Timestamp, JsonError> {
    let bad = |message: String| JsonError::Type {
        path: spec.path.join("."),
        message,
    };
    match (v, &spec.format) {
        (Json::Number(n), Some(format)) if format.is_unix() => format.parse_number(n).map_err(bad),
        (Json::Number(n), _) => {
            let raw = n
                .as_i64()
                .ok_or_else(|| bad(format!("time {n} is not a whole number that fits i64")))?;
            let unit = spec
                .unit
                .ok_or_else(|| bad("a numeric time needs `unit` or a unix `format`".into()))?;
            Timestamp::from_precision(raw, unit).map_err(|e| bad(e.to_string()))
        }
        (Json::String(s), Some(format)) => format.parse_str(s).map_err(bad),
        (Json::String(s), None) => rfc3339(s).map_err(bad),
        (other, _) => Err(bad(format!(
            "a time must be a number or a string, found {}",
            kind(other)
        ))),
    }
}

fn rfc3339(s: &str) -> Result<Timestamp, String> {
    let t =
        humantime::parse_rfc3339_weak(s).map_err(|e| format!("time {s:?} is not RFC 3339: {e}"))?;
    let nanos = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| "time is before 1970".to_owned())?
        .as_nanos();
    i64::try_from(nanos)
        .map(Timestamp::from_nanos)
        .map_err(|_| "time is out of range".to_owned())
}

fn kind(v: &Json<'_>) -> &'static str {
    v.kind()
}

#[cfg(test)]
mod tests;
