//! The `telegraf` preset: Avro records to points exactly as Telegraf's avro parser
//! (`plugins/parsers/avro`, goavro's native values, jeremywohl/flatten) makes metrics,
//! with its option names, so a topic read by kinflux and by Telegraf stores the same
//! series.
//!
//! What Telegraf does and the preset mirrors: tags and fields name top-level fields only;
//! without `fields`, every top-level field whose name is no written tag key is a field (so
//! the timestamp and measurement fields are fields too); records, maps and arrays flatten
//! with `field_separator` (empty by default: `a=["x","y"]` gives `a0`, `a1`); with
//! `union_mode = "flatten"` a union value adds its branch's type name (`temp_double`), with
//! `nullable` or `any` it keeps the field's name; `null` leaves a field out; `float`
//! widens to a float64 as Go does; logical time and decimal values are left out of
//! fields (Telegraf cannot store Go's `time.Time` or `*big.Rat` values); a record without
//! fields is an error; the measurement is `measurement_field`'s value, else
//! `measurement`, else the schema's `namespace.name`.
//!
//! Where the preset differs, on purpose: a point without `timestamp` takes the Kafka
//! record's time (Telegraf takes the time of ingestion, so replays differ); logical time
//! and decimal values used as tags are left out (Telegraf writes Go's `String()` of them);
//! with `nullable`/`any`, a top-level record or map field keeps its first member in
//! schema order (Telegraf keeps one picked by Go's random map order).

use std::cell::OnceCell;
use std::collections::BTreeMap;

use apache_avro::Schema;
use apache_avro::schema::{Name, Namespace, ResolvedSchema};
use apache_avro::types::Value;
use kinflux_series::{FieldValue, Point, Timestamp};
use serde::Deserialize;

use crate::{DecodeError, PlanError};

/// Telegraf's avro parser options, named as Telegraf names them without the `avro_`
/// prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TelegrafOptions {
    /// `avro_measurement`: the measurement when `measurement_field` gives none.
    #[serde(default)]
    pub measurement: Option<String>,
    /// `avro_measurement_field`: the top-level field whose value names the measurement.
    #[serde(default)]
    pub measurement_field: Option<String>,
    /// `avro_tags`: top-level fields that become tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// `avro_fields`: top-level fields that become fields; empty takes every field whose
    /// name is no tag key.
    #[serde(default)]
    pub fields: Vec<String>,
    /// `avro_timestamp`: the top-level field with the time.
    #[serde(default)]
    pub timestamp: Option<String>,
    /// `avro_timestamp_format`: `unix` (default), `unix_ms`, `unix_us` or `unix_ns`.
    #[serde(default)]
    pub timestamp_format: Option<String>,
    /// `avro_field_separator`: joins flattened names; empty by default, as in Telegraf.
    #[serde(default)]
    pub field_separator: String,
    /// `avro_union_mode`: `flatten` (default), `nullable` or `any`.
    #[serde(default)]
    pub union_mode: UnionMode,
}

/// `avro_union_mode`: how a union value is named.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum UnionMode {
    /// The branch's type name is added to the field name: `value_double`.
    #[default]
    Flatten,
    /// The field keeps its name; a null leaves it out.
    Nullable,
    /// As `nullable` (goavro never hands Telegraf a named null).
    Any,
}

impl TelegrafOptions {
    /// Checks the options as Telegraf's `Init` does.
    pub fn validate(&self) -> Result<(), PlanError> {
        match self.timestamp_format.as_deref() {
            None | Some("unix" | "unix_ms" | "unix_us" | "unix_ns") => Ok(()),
            Some(other) => Err(PlanError::InvalidMapping(format!(
                "invalid timestamp format {other:?}: Telegraf's avro parser takes unix, unix_ms, unix_us or unix_ns"
            ))),
        }
    }

    fn factor(&self) -> i128 {
        match self.timestamp_format.as_deref() {
            Some("unix_ms") => 1_000_000,
            Some("unix_us") => 1_000,
            Some("unix_ns") => 1,
            _ => 1_000_000_000,
        }
    }
}

/// A value as goavro hands it to Telegraf.
#[derive(Debug, Clone, PartialEq)]
enum Native {
    Nil,
    Bool(bool),
    Int(i64),
    Float32(f32),
    Float64(f64),
    Str(String),
    /// `map[string]interface{}`: a record, a map, or a union's `{type: value}`.
    Map(Vec<(String, Native)>),
    List(Vec<Native>),
    /// A value Telegraf cannot store as a field (time.Time, time.Duration, *big.Rat).
    Opaque,
}

/// Decodes `body`, written with `schema`, into the metrics Telegraf would make. A
/// top-level array gives a metric per record; elements that fail are left out, as
/// Telegraf leaves them out.
pub fn decode_telegraf(
    schema: &Schema,
    body: &[u8],
    options: &TelegrafOptions,
    fallback: Option<Timestamp>,
) -> Result<Vec<Point>, DecodeError> {
    let mut reader = body;
    let value = apache_avro::from_avro_datum(schema, &mut reader, None)
        .map_err(|e| DecodeError::Telegraf(format!("not valid Avro for the schema: {e}")))?;
    let native = Walk {
        root: schema,
        names: OnceCell::new(),
    }
    .native(value, schema, &None);
    let schema_name = root_name(schema);
    match native {
        Native::Map(data) => Ok(vec![metric(&data, options, &schema_name, fallback)?]),
        Native::List(items) => Ok(items
            .iter()
            .filter_map(|item| match item {
                Native::Map(data) => metric(data, options, &schema_name, fallback).ok(),
                _ => None,
            })
            .collect()),
        _ => Err(DecodeError::Telegraf(
            "the record is neither a record nor an array of records".into(),
        )),
    }
}

/// Telegraf's fallback measurement: the schema's `namespace` and `name` joined by `.`.
fn root_name(schema: &Schema) -> String {
    let name = match schema {
        Schema::Record(r) => &r.name,
        Schema::Array(a) => match &*a.items {
            Schema::Record(r) => &r.name,
            _ => return String::new(),
        },
        _ => return String::new(),
    };
    match &name.namespace {
        Some(ns) => format!("{ns}.{}", name.name),
        None => name.name.clone(),
    }
}

struct Walk<'s> {
    root: &'s Schema,
    /// The schema's named types, resolved at the first reference to one (most schemas
    /// have none, and resolving costs a map per record).
    names: OnceCell<Option<ResolvedSchema<'s>>>,
}

impl<'s> Walk<'s> {
    fn native(&self, value: Value, schema: &'s Schema, ns: &Namespace) -> Native {
        let schema = match schema {
            Schema::Ref { name } => {
                let resolved = self
                    .names
                    .get_or_init(|| ResolvedSchema::try_from(self.root).ok());
                match resolved
                    .as_ref()
                    .and_then(|r| r.get_names().get(&name.fully_qualified_name(ns)))
                {
                    Some(found) => *found,
                    None => schema,
                }
            }
            other => other,
        };
        match (value, schema) {
            (Value::Null, _) => Native::Nil,
            (Value::Boolean(b), _) => Native::Bool(b),
            (Value::Int(i), _) => Native::Int(i64::from(i)),
            (Value::Long(i), _)
            | (Value::TimestampNanos(i), _)
            | (Value::LocalTimestampMillis(i), _)
            | (Value::LocalTimestampMicros(i), _)
            | (Value::LocalTimestampNanos(i), _) => Native::Int(i),
            (Value::Float(f), _) => Native::Float32(f),
            (Value::Double(f), _) => Native::Float64(f),
            (Value::String(s), _) | (Value::Enum(_, s), _) => Native::Str(s),
            (Value::Uuid(u), _) => Native::Str(u.to_string()),
            (Value::Bytes(b), _) | (Value::Fixed(_, b), _) => {
                Native::Str(String::from_utf8_lossy(&b).into_owned())
            }
            (Value::Union(i, v), Schema::Union(u)) => match u.variants().get(i as usize) {
                Some(branch) if !matches!(*v, Value::Null) => {
                    let name = self.type_name(branch, ns);
                    Native::Map(vec![(name, self.native(*v, branch, ns))])
                }
                _ => Native::Nil,
            },
            (Value::Record(fields), Schema::Record(r)) => {
                let inner = r.name.fully_qualified_name(ns).namespace;
                Native::Map(
                    fields
                        .into_iter()
                        .zip(&r.fields)
                        .map(|((k, v), f)| (k, self.native(v, &f.schema, &inner)))
                        .collect(),
                )
            }
            (Value::Array(items), Schema::Array(a)) => Native::List(
                items
                    .into_iter()
                    .map(|v| self.native(v, &a.items, ns))
                    .collect(),
            ),
            (Value::Map(map), Schema::Map(m)) => {
                // Go's map order is random; sorted keys give the same flattened names.
                let sorted: BTreeMap<_, _> = map.into_iter().collect();
                Native::Map(
                    sorted
                        .into_iter()
                        .map(|(k, v)| (k, self.native(v, &m.types, ns)))
                        .collect(),
                )
            }
            _ => Native::Opaque,
        }
    }

    /// The name goavro gives a union branch.
    fn type_name(&self, schema: &Schema, ns: &Namespace) -> String {
        let full = |n: &Name| n.fully_qualified_name(ns).fullname(None);
        match schema {
            Schema::Null => "null".into(),
            Schema::Boolean => "boolean".into(),
            Schema::Int => "int".into(),
            Schema::Long
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => "long".into(),
            Schema::Float => "float".into(),
            Schema::Double => "double".into(),
            Schema::Bytes | Schema::BigDecimal => "bytes".into(),
            Schema::String | Schema::Uuid => "string".into(),
            Schema::Date => "int.date".into(),
            Schema::TimeMillis => "int.time-millis".into(),
            Schema::TimeMicros => "long.time-micros".into(),
            Schema::TimestampMillis => "long.timestamp-millis".into(),
            Schema::TimestampMicros => "long.timestamp-micros".into(),
            Schema::Decimal(_) => "bytes.decimal".into(),
            Schema::Array(_) => "array".into(),
            Schema::Map(_) => "map".into(),
            Schema::Union(_) | Schema::Duration => "union".into(),
            Schema::Record(r) => full(&r.name),
            Schema::Enum(e) => full(&e.name),
            Schema::Fixed(f) => full(&f.name),
            Schema::Ref { name } => full(name),
        }
    }
}

/// jeremywohl/flatten: nested maps and lists joined with `sep`, leaves kept.
fn flatten(key: String, v: &Native, sep: &str, out: &mut Vec<(String, Native)>) {
    match v {
        Native::Map(entries) => {
            for (k, child) in entries {
                flatten(format!("{key}{sep}{k}"), child, sep, out);
            }
        }
        Native::List(items) => {
            for (i, child) in items.iter().enumerate() {
                flatten(format!("{key}{sep}{i}"), child, sep, out);
            }
        }
        leaf => out.push((key, leaf.clone())),
    }
}

/// Telegraf's `flattenItem`.
fn flatten_item(name: &str, v: &Native, options: &TelegrafOptions) -> Vec<(String, Native)> {
    let mut out = Vec::new();
    match (options.union_mode, v) {
        (UnionMode::Flatten, _) | (_, Native::List(_) | Native::Nil) => {
            flatten(name.to_owned(), v, &options.field_separator, &mut out)
        }
        (_, Native::Map(entries)) => {
            if let Some((_, first)) = entries.first() {
                out.push((name.to_owned(), first.clone()));
            }
        }
        (_, leaf) => out.push((name.to_owned(), leaf.clone())),
    }
    out
}

/// Go's `internal.ToString`; `None` where Telegraf fails (and skips the tag).
fn to_string(v: &Native) -> Option<String> {
    Some(match v {
        Native::Nil => String::new(),
        Native::Bool(b) => b.to_string(),
        Native::Int(i) => i.to_string(),
        Native::Float32(f) => f.to_string(),
        Native::Float64(f) => f.to_string(),
        Native::Str(s) => s.clone(),
        Native::Map(_) | Native::List(_) | Native::Opaque => return None,
    })
}

/// Telegraf's `convertField`: what a field holds, `None` for what it cannot store.
fn to_field(v: &Native) -> Option<FieldValue> {
    Some(match v {
        Native::Bool(b) => FieldValue::Boolean(*b),
        Native::Int(i) => FieldValue::Integer(*i),
        Native::Float32(f) if f.is_finite() => FieldValue::Float(f64::from(*f)),
        Native::Float64(f) if f.is_finite() => FieldValue::Float(*f),
        Native::Str(s) => FieldValue::String(s.clone()),
        _ => return None,
    })
}

fn get<'d>(data: &'d [(String, Native)], key: &str) -> &'d Native {
    data.iter()
        .find(|(k, _)| k == key)
        .map_or(&Native::Nil, |(_, v)| v)
}

/// Telegraf's `createMetric`.
fn metric(
    data: &[(String, Native)],
    options: &TelegrafOptions,
    schema_name: &str,
    fallback: Option<Timestamp>,
) -> Result<Point, DecodeError> {
    let fail = |m: String| DecodeError::Telegraf(m);
    let mut tags: BTreeMap<String, String> = BTreeMap::new();
    for tag in &options.tags {
        for (k, v) in flatten_item(tag, get(data, tag), options) {
            if let Some(s) = to_string(&v) {
                tags.insert(k, s);
            }
        }
    }
    let names: Vec<&str> = if options.fields.is_empty() {
        data.iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !tags.contains_key(*k))
            .collect()
    } else {
        options.fields.iter().map(String::as_str).collect()
    };
    let mut fields: BTreeMap<String, FieldValue> = BTreeMap::new();
    for name in names {
        for (k, v) in flatten_item(name, get(data, name), options) {
            match to_field(&v) {
                Some(value) => fields.insert(k, value),
                None => fields.remove(&k),
            };
        }
    }
    if fields.is_empty() {
        return Err(fail(
            "number of fields is 0; unable to create metric".into(),
        ));
    }
    let from_field = options
        .measurement_field
        .as_deref()
        .and_then(|f| to_string(get(data, f)))
        .filter(|s| !s.is_empty());
    let measurement = from_field
        .or_else(|| options.measurement.clone().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| schema_name.to_owned());
    let timestamp = match &options.timestamp {
        Some(field) => Some(
            unix_time(get(data, field), options.factor()).ok_or_else(|| {
                fail(format!(
                    "could not parse field {field:?} as {}",
                    options.timestamp_format.as_deref().unwrap_or("unix")
                ))
            })?,
        ),
        None => fallback,
    };
    let mut point = Point::builder(measurement);
    for (k, v) in tags {
        if !v.is_empty() && !k.is_empty() {
            point = point.tag(k, v);
        }
    }
    for (k, v) in fields {
        point = point.field(k, v);
    }
    if let Some(t) = timestamp {
        point = point.timestamp(t);
    }
    point.build().map_err(|e| fail(e.to_string()))
}

/// Telegraf's `fmt.Sprintf("%v")` of the value, parsed as an exact decimal unix time.
fn unix_time(v: &Native, factor: i128) -> Option<Timestamp> {
    let text = match v {
        Native::Int(i) => i.to_string(),
        Native::Float32(f) => f.to_string(),
        Native::Float64(f) => f.to_string(),
        Native::Str(s) => s.replace(' ', ""),
        _ => return None,
    };
    let (whole, fraction) = match text.split_once(['.', ',']) {
        Some((w, f)) => (w, f),
        None => (text.as_str(), ""),
    };
    let negative = whole.starts_with('-');
    let digits = whole.trim_start_matches(['-', '+']);
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (digits.is_empty() && fraction.is_empty()) || !all_digits(digits) || !all_digits(fraction) {
        return None;
    }
    let int: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    let mut nanos = int.checked_mul(factor)?;
    let fraction = &fraction[..fraction.len().min(19)];
    if !fraction.is_empty() {
        let f: i128 = fraction.parse().ok()?;
        nanos += f * factor / 10i128.pow(u32::try_from(fraction.len()).ok()?);
    }
    if negative {
        nanos = -nanos;
    }
    i64::try_from(nanos).ok().map(Timestamp::from_nanos)
}

#[cfg(test)]
mod tests;
