//! Field types for formats without a schema: `decode.types` pins a field's type, and
//! numbers without one are floats (as Telegraf's json_v2 parser makes them) unless
//! `decode.numbers = "auto"` asks for whole numbers as integers.

use std::borrow::Cow;
use std::collections::BTreeMap;

use kinflux_series::{FieldValue, FieldValueRef};
use serde::Deserialize;
use serde_json::Number;

use super::value::Json;

/// A field's type, as `decode.types` pins it. Telegraf's names (`int`, `uint`, `bool`)
/// are accepted too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum FieldType {
    /// A 64-bit float.
    Float,
    /// A signed 64-bit integer.
    #[serde(alias = "int")]
    Integer,
    /// An unsigned 64-bit integer.
    #[serde(alias = "uint", alias = "unsigned")]
    UInteger,
    /// A boolean.
    #[serde(alias = "bool")]
    Boolean,
    /// A string.
    String,
}

/// `decode.numbers`: the type of a JSON number whose field has no pinned type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum NumberMode {
    /// Every number is a float, so `20` and `20.5` in one field never conflict.
    #[default]
    Float,
    /// Whole numbers that fit an `i64` are integers, larger ones unsigned, others floats
    /// (kinflux's behaviour before 0.2).
    Auto,
}

/// How values of a schemaless format become fields: pinned types, renames, the number
/// default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Typing {
    /// The type of a field, by its key as written (after `rename`).
    #[serde(default)]
    pub types: BTreeMap<String, FieldType>,
    /// New names for tag and field keys, by the flattened key: `{ "tags_host" = "host" }`.
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    /// The type of numbers whose field has no pinned type.
    #[serde(default)]
    pub numbers: NumberMode,
}

impl Typing {
    /// The key `key` is written as.
    pub fn key<'k>(&'k self, key: &'k str) -> &'k str {
        self.renamed(key).unwrap_or(key)
    }

    /// The new name of `key`, when `rename` gives one.
    pub(crate) fn renamed(&self, key: &str) -> Option<&str> {
        if self.rename.is_empty() {
            return None;
        }
        self.rename.get(key).map(String::as_str)
    }

    /// The field value of `v` under the written key `key`; `Ok(None)` for `null` and for
    /// arrays and objects (which the caller flattens). Fails, naming nothing, when a
    /// pinned type cannot hold the value; the caller names the field.
    /// Strings are borrowed from the document unless a pinned type converts them.
    pub(crate) fn field<'v>(
        &self,
        key: &str,
        v: &'v Json<'v>,
    ) -> Result<Option<FieldValueRef<'v>>, String> {
        match self.pinned(key) {
            None => Ok(self.natural(v)),
            Some(ty) => convert(v, ty).map(|value| Some(value.into())),
        }
    }

    /// As [`field`](Self::field), for a value given away by a caller that keeps no tree
    /// (the decoder's flat path): a string is moved into the field, borrowed or not.
    pub(crate) fn field_of<'v>(
        &self,
        key: &str,
        v: Json<'v>,
    ) -> Result<Option<FieldValueRef<'v>>, String> {
        match (self.pinned(key), v) {
            (None, Json::String(s)) => Ok(Some(FieldValueRef::String(s))),
            (None, Json::Number(n)) => Ok(Some(self.number(&n))),
            (None, Json::Bool(b)) => Ok(Some(FieldValueRef::Boolean(b))),
            (None, Json::Null | Json::Array(_) | Json::Object(_)) => Ok(None),
            (Some(ty), v) => convert(&v, ty).map(|value| Some(value.into())),
        }
    }

    /// The type `decode.types` pins for the field written as `key`.
    fn pinned(&self, key: &str) -> Option<FieldType> {
        if self.types.is_empty() {
            None
        } else {
            self.types.get(key).copied()
        }
    }

    /// A value without a pinned type.
    fn natural<'v>(&self, v: &'v Json<'v>) -> Option<FieldValueRef<'v>> {
        Some(match v {
            Json::Bool(b) => FieldValueRef::Boolean(*b),
            Json::String(s) => FieldValueRef::String(Cow::Borrowed(s.as_ref())),
            Json::Number(n) => self.number(n),
            Json::Null | Json::Array(_) | Json::Object(_) => return None,
        })
    }

    /// A number without a pinned type, as `numbers` says.
    fn number(&self, n: &Number) -> FieldValueRef<'static> {
        match self.numbers {
            NumberMode::Float => FieldValueRef::Float(as_f64(n)),
            NumberMode::Auto => auto(n),
        }
    }
}

fn as_f64(n: &Number) -> f64 {
    // serde_json always has an f64 for a number (arbitrary precision is not enabled).
    n.as_f64().unwrap_or(f64::NAN)
}

fn auto(n: &Number) -> FieldValueRef<'static> {
    if let Some(i) = n.as_i64() {
        FieldValueRef::Integer(i)
    } else if let Some(u) = n.as_u64() {
        FieldValueRef::UInteger(u)
    } else {
        FieldValueRef::Float(as_f64(n))
    }
}

/// `v` as `ty`: numbers, numeric strings and booleans convert where no information is
/// lost; a fraction never becomes an integer silently.
fn convert(v: &Json<'_>, ty: FieldType) -> Result<FieldValue, String> {
    let cannot = || format!("cannot convert {v} to {}", type_name(ty));
    match (ty, v) {
        (_, Json::Array(_) | Json::Object(_) | Json::Null) => Err(cannot()),
        (FieldType::String, Json::String(s)) => Ok(FieldValue::String(s.to_string())),
        (FieldType::String, other) => Ok(FieldValue::String(other.to_string())),
        (FieldType::Float, Json::Number(n)) => Ok(FieldValue::Float(as_f64(n))),
        (FieldType::Float, Json::String(s)) => s
            .trim()
            .parse::<f64>()
            .map(FieldValue::Float)
            .map_err(|_| cannot()),
        (FieldType::Float, Json::Bool(b)) => Ok(FieldValue::Float(f64::from(u8::from(*b)))),
        (FieldType::Integer, Json::Number(n)) => n
            .as_i64()
            .or_else(|| whole(n).filter(|f| f.abs() < 9.2e18).map(|f| f as i64))
            .map(FieldValue::Integer)
            .ok_or_else(cannot),
        (FieldType::Integer, Json::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(FieldValue::Integer)
            .map_err(|_| cannot()),
        (FieldType::Integer, Json::Bool(b)) => Ok(FieldValue::Integer(i64::from(*b))),
        (FieldType::UInteger, Json::Number(n)) => n
            .as_u64()
            .or_else(|| {
                whole(n)
                    .filter(|f| (0.0..1.8e19).contains(f))
                    .map(|f| f as u64)
            })
            .map(FieldValue::UInteger)
            .ok_or_else(cannot),
        (FieldType::UInteger, Json::String(s)) => s
            .trim()
            .parse::<u64>()
            .map(FieldValue::UInteger)
            .map_err(|_| cannot()),
        (FieldType::UInteger, Json::Bool(b)) => Ok(FieldValue::UInteger(u64::from(*b))),
        (FieldType::Boolean, Json::Bool(b)) => Ok(FieldValue::Boolean(*b)),
        (FieldType::Boolean, Json::String(s)) => {
            parse_bool(s).map(FieldValue::Boolean).ok_or_else(cannot)
        }
        (FieldType::Boolean, Json::Number(n)) => match (n.as_u64(), n.as_f64()) {
            (Some(0), _) => Ok(FieldValue::Boolean(false)),
            (Some(1), _) => Ok(FieldValue::Boolean(true)),
            (None, Some(f)) if f.to_bits() == 0.0f64.to_bits() => Ok(FieldValue::Boolean(false)),
            (None, Some(f)) if f.to_bits() == 1.0f64.to_bits() => Ok(FieldValue::Boolean(true)),
            _ => Err(cannot()),
        },
    }
}

/// A number with no fraction, as a float.
fn whole(n: &Number) -> Option<f64> {
    n.as_f64().filter(|f| f.fract() == 0.0)
}

/// The spellings Go's `strconv.ParseBool` takes.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

fn type_name(ty: FieldType) -> &'static str {
    match ty {
        FieldType::Float => "float",
        FieldType::Integer => "integer",
        FieldType::UInteger => "uinteger",
        FieldType::Boolean => "boolean",
        FieldType::String => "string",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn typing(types: &[(&str, FieldType)]) -> Typing {
        Typing {
            types: types.iter().map(|(k, t)| ((*k).to_owned(), *t)).collect(),
            ..Typing::default()
        }
    }

    #[test]
    fn numbers_are_floats_unless_pinned_or_auto() {
        let t = typing(&[("count", FieldType::Integer), ("id", FieldType::String)]);
        fn v(s: &str) -> Json<'_> {
            super::super::read::read(s).unwrap()
        }
        assert_eq!(
            t.field("temp", &v("20")),
            Ok(Some(FieldValueRef::Float(20.0)))
        );
        assert_eq!(
            t.field("count", &v("20")),
            Ok(Some(FieldValueRef::Integer(20)))
        );
        assert_eq!(
            t.field("count", &v("\"20\"")),
            Ok(Some(FieldValueRef::Integer(20)))
        );
        assert_eq!(
            t.field("count", &v("2e3")),
            Ok(Some(FieldValueRef::Integer(2000)))
        );
        assert_eq!(
            t.field("count", &v("20.5")),
            Err("cannot convert 20.5 to integer".into())
        );
        assert_eq!(
            t.field("id", &v("7")),
            Ok(Some(FieldValueRef::String("7".into())))
        );
        let auto = Typing {
            numbers: NumberMode::Auto,
            ..Typing::default()
        };
        assert_eq!(
            auto.field("x", &v("20")),
            Ok(Some(FieldValueRef::Integer(20)))
        );
        assert_eq!(
            auto.field("x", &v("20.5")),
            Ok(Some(FieldValueRef::Float(20.5)))
        );
        let on = typing(&[("on", FieldType::Boolean)]);
        assert_eq!(
            on.field("on", &v("\"T\"")),
            Ok(Some(FieldValueRef::Boolean(true)))
        );
        assert!(on.field("on", &v("2")).is_err());
        assert!(on.field("on", &v("{}")).is_err());
    }

    proptest! {
        /// Whatever number a field carries, its type without a pin is float: a whole
        /// number in one record and a fraction in the next never conflict.
        #[test]
        fn unpinned_numbers_never_change_type(n in any::<i64>(), f in any::<f64>().prop_filter("finite", |f| f.is_finite())) {
            let t = Typing::default();
            let (whole, fraction) = (Json::Number(n.into()), Json::Number(Number::from_f64(f).unwrap()));
            let a = t.field("v", &whole).unwrap().unwrap();
            let b = t.field("v", &fraction).unwrap().unwrap();
            prop_assert_eq!(a.type_name(), b.type_name());
        }

        /// A pinned integer takes every i64, written as a number or as a string.
        #[test]
        fn pinned_integers_round_trip(n in any::<i64>()) {
            let t = typing(&[("n", FieldType::Integer)]);
            let (number, string) = (Json::Number(n.into()), Json::String(n.to_string().into()));
            prop_assert_eq!(t.field("n", &number), Ok(Some(FieldValueRef::Integer(n))));
            prop_assert_eq!(t.field("n", &string), Ok(Some(FieldValueRef::Integer(n))));
        }
    }
}
