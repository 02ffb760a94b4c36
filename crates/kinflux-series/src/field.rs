//! Typed field values and the field set of a point.

use std::borrow::Cow;

use crate::SeriesError;
use crate::name::{FieldKey, check_field_key};

/// A field's value: InfluxDB's five field types.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum FieldValue {
    /// A 64-bit float; must be finite.
    #[cfg_attr(feature = "serde", serde(rename = "float"))]
    Float(f64),
    /// A signed 64-bit integer (`i` suffix in line protocol).
    #[cfg_attr(feature = "serde", serde(rename = "int"))]
    Integer(i64),
    /// An unsigned 64-bit integer (`u` suffix in line protocol).
    #[cfg_attr(feature = "serde", serde(rename = "uint"))]
    UInteger(u64),
    /// A UTF-8 string.
    #[cfg_attr(feature = "serde", serde(rename = "string"))]
    String(String),
    /// A boolean.
    #[cfg_attr(feature = "serde", serde(rename = "bool"))]
    Boolean(bool),
}

impl FieldValue {
    /// A borrowed view of this value.
    pub fn as_ref(&self) -> FieldValueRef<'_> {
        match self {
            FieldValue::Float(v) => FieldValueRef::Float(*v),
            FieldValue::Integer(v) => FieldValueRef::Integer(*v),
            FieldValue::UInteger(v) => FieldValueRef::UInteger(*v),
            FieldValue::String(v) => FieldValueRef::String(Cow::Borrowed(v)),
            FieldValue::Boolean(v) => FieldValueRef::Boolean(*v),
        }
    }

    /// The name of this value's type, as InfluxDB names it in type-conflict errors.
    pub fn type_name(&self) -> &'static str {
        self.as_ref().type_name()
    }
}

macro_rules! field_value_from {
    ($($t:ty => $variant:ident),* $(,)?) => {$(
        impl From<$t> for FieldValue {
            fn from(v: $t) -> Self {
                FieldValue::$variant(v.into())
            }
        }
    )*};
}
field_value_from!(
    f64 => Float, f32 => Float, i64 => Integer, i32 => Integer, u64 => UInteger,
    u32 => UInteger, bool => Boolean, String => String, &str => String,
);

/// Takes an owned value as a view that owns its string: for decoders that borrow most
/// values from their input and convert a few.
impl From<FieldValue> for FieldValueRef<'static> {
    fn from(v: FieldValue) -> Self {
        match v {
            FieldValue::Float(v) => FieldValueRef::Float(v),
            FieldValue::Integer(v) => FieldValueRef::Integer(v),
            FieldValue::UInteger(v) => FieldValueRef::UInteger(v),
            FieldValue::String(v) => FieldValueRef::String(Cow::Owned(v)),
            FieldValue::Boolean(v) => FieldValueRef::Boolean(v),
        }
    }
}

/// A borrowed field value, as produced by zero-copy decoders: strings borrow the input
/// unless unescaping had to allocate.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FieldValueRef<'a> {
    /// A 64-bit float.
    Float(f64),
    /// A signed 64-bit integer.
    Integer(i64),
    /// An unsigned 64-bit integer.
    UInteger(u64),
    /// A UTF-8 string.
    String(Cow<'a, str>),
    /// A boolean.
    Boolean(bool),
}

impl FieldValueRef<'_> {
    /// An owned copy.
    pub fn into_owned(self) -> FieldValue {
        match self {
            FieldValueRef::Float(v) => FieldValue::Float(v),
            FieldValueRef::Integer(v) => FieldValue::Integer(v),
            FieldValueRef::UInteger(v) => FieldValue::UInteger(v),
            FieldValueRef::String(v) => FieldValue::String(v.into_owned()),
            FieldValueRef::Boolean(v) => FieldValue::Boolean(v),
        }
    }

    /// The name of this value's type, as InfluxDB names it: `float`, `integer`,
    /// `unsigned`, `string`, `boolean`.
    pub fn type_name(&self) -> &'static str {
        match self {
            FieldValueRef::Float(_) => "float",
            FieldValueRef::Integer(_) => "integer",
            FieldValueRef::UInteger(_) => "unsigned",
            FieldValueRef::String(_) => "string",
            FieldValueRef::Boolean(_) => "boolean",
        }
    }
}

pub(crate) fn check_field(key: &str, value: &FieldValueRef<'_>) -> Result<(), SeriesError> {
    check_field_key(key)?;
    if let FieldValueRef::Float(v) = value {
        if !v.is_finite() {
            return Err(SeriesError::NonFiniteFloat {
                key: key.to_owned(),
            });
        }
    }
    Ok(())
}

/// One field of a point: a key and a typed value.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Field {
    /// The field key.
    pub key: FieldKey,
    /// The field value.
    pub value: FieldValue,
}

/// The fields of a point, in insertion order. Setting a key again keeps its first position
/// and the last value, as InfluxDB keeps the last value of a repeated field.
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct FieldSet(pub(crate) Vec<Field>);

impl FieldSet {
    /// An empty field set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value`, replacing an earlier value of the same key. Fails on an
    /// invalid key or a non-finite float.
    pub fn insert(
        &mut self,
        key: impl Into<String>,
        value: impl Into<FieldValue>,
    ) -> Result<(), SeriesError> {
        let key = key.into();
        let value = value.into();
        check_field(&key, &value.as_ref())?;
        match self.0.iter_mut().find(|f| f.key.as_str() == key) {
            Some(existing) => existing.value = value,
            None => self.0.push(Field {
                key: FieldKey::new(key)?,
                value,
            }),
        }
        Ok(())
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&FieldValue> {
        self.0
            .iter()
            .find(|f| f.key.as_str() == key)
            .map(|f| &f.value)
    }

    /// The fields in insertion order.
    pub fn iter(&self) -> std::slice::Iter<'_, Field> {
        self.0.iter()
    }

    /// How many fields there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a FieldSet {
    type Item = &'a Field;
    type IntoIter = std::slice::Iter<'a, Field>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for FieldSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let fields = Vec::<Field>::deserialize(d)?;
        let mut set = FieldSet::new();
        for f in fields {
            set.insert(f.key, f.value)
                .map_err(serde::de::Error::custom)?;
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owned_value_becomes_the_same_view() {
        for value in [
            FieldValue::Float(1.5),
            FieldValue::Integer(-3),
            FieldValue::UInteger(u64::MAX),
            FieldValue::String("a \"b\"".into()),
            FieldValue::Boolean(true),
        ] {
            let view = FieldValueRef::from(value.clone());
            assert_eq!(view, value.as_ref());
            assert_eq!(view.into_owned(), value);
        }
    }

    #[test]
    fn repeated_field_keeps_first_position_and_last_value() {
        let mut f = FieldSet::new();
        f.insert("a", 1i64).unwrap();
        f.insert("b", true).unwrap();
        f.insert("a", 2.5).unwrap();
        let got: Vec<_> = f
            .iter()
            .map(|f| (f.key.as_str(), f.value.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a", FieldValue::Float(2.5)),
                ("b", FieldValue::Boolean(true))
            ]
        );
    }

    #[test]
    fn non_finite_floats_are_refused() {
        let mut f = FieldSet::new();
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(
                f.insert("v", v).unwrap_err(),
                SeriesError::NonFiniteFloat { key: "v".into() }
            );
        }
        assert!(f.is_empty());
    }
}
