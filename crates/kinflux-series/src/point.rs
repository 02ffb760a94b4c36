//! The owned point and its builder.

use crate::field::FieldValueRef;
use crate::{FieldSet, FieldValue, Measurement, PointView, SeriesError, TagSet, Timestamp};

/// One InfluxDB point, owned: a measurement, a sorted tag set, at least one field, and an
/// optional timestamp (without one, the database assigns its own clock's time).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Point {
    /// The measurement.
    #[cfg_attr(feature = "serde", serde(rename = "name"))]
    measurement: Measurement,
    /// The tags, sorted by key.
    tags: TagSet,
    /// The fields, in insertion order; never empty.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "non_empty_fields"))]
    fields: FieldSet,
    /// The time, if known.
    #[cfg_attr(feature = "serde", serde(rename = "time"))]
    timestamp: Option<Timestamp>,
}

#[cfg(feature = "serde")]
fn non_empty_fields<'de, D: serde::Deserializer<'de>>(d: D) -> Result<FieldSet, D::Error> {
    let fields = <FieldSet as serde::Deserialize>::deserialize(d)?;
    if fields.is_empty() {
        return Err(serde::de::Error::custom(SeriesError::NoFields));
    }
    Ok(fields)
}

impl Point {
    /// Assembles a point from validated parts. A point without fields is an error.
    pub fn new(
        measurement: Measurement,
        tags: TagSet,
        fields: FieldSet,
        timestamp: Option<Timestamp>,
    ) -> Result<Self, SeriesError> {
        if fields.is_empty() {
            return Err(SeriesError::NoFields);
        }
        Ok(Point {
            measurement,
            tags,
            fields,
            timestamp,
        })
    }

    /// Starts a point of `measurement`; errors surface in [`PointBuilder::build`].
    pub fn builder(measurement: impl Into<String>) -> PointBuilder {
        PointBuilder {
            measurement: measurement.into(),
            tags: TagSet::new(),
            fields: FieldSet::new(),
            timestamp: None,
            error: None,
        }
    }

    /// The measurement.
    pub fn measurement(&self) -> &Measurement {
        &self.measurement
    }

    /// The tags, sorted by key.
    pub fn tags(&self) -> &TagSet {
        &self.tags
    }

    /// The fields, in insertion order.
    pub fn fields(&self) -> &FieldSet {
        &self.fields
    }

    /// The timestamp, if any.
    pub fn timestamp(&self) -> Option<Timestamp> {
        self.timestamp
    }

    /// Sets or clears the timestamp.
    pub fn set_timestamp(&mut self, timestamp: Option<Timestamp>) {
        self.timestamp = timestamp;
    }

    /// Adds a tag at its sorted place; a key already present is an error.
    pub fn add_tag(
        &mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<(), SeriesError> {
        self.tags.insert(key, value)
    }

    /// Sets a field; a key already present takes the new value.
    pub fn set_field(
        &mut self,
        key: impl Into<String>,
        value: impl Into<FieldValue>,
    ) -> Result<(), SeriesError> {
        self.fields.insert(key, value)
    }
}

impl PointView for Point {
    fn measurement(&self) -> &str {
        self.measurement.as_str()
    }

    fn tags(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.tags.iter().map(|t| (t.key.as_str(), t.value.as_str()))
    }

    fn fields(&self) -> impl ExactSizeIterator<Item = (&str, FieldValueRef<'_>)> {
        self.fields
            .iter()
            .map(|f| (f.key.as_str(), f.value.as_ref()))
    }

    fn timestamp(&self) -> Option<Timestamp> {
        self.timestamp
    }
}

/// Builds a [`Point`] step by step; the first invalid part is reported by [`build`](Self::build).
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct PointBuilder {
    measurement: String,
    tags: TagSet,
    fields: FieldSet,
    timestamp: Option<Timestamp>,
    error: Option<SeriesError>,
}

impl PointBuilder {
    /// Adds a tag.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        if self.error.is_none() {
            self.error = self.tags.insert(key, value).err();
        }
        self
    }

    /// Sets a field.
    pub fn field(mut self, key: impl Into<String>, value: impl Into<FieldValue>) -> Self {
        if self.error.is_none() {
            self.error = self.fields.insert(key, value).err();
        }
        self
    }

    /// Sets the timestamp.
    pub fn timestamp(mut self, timestamp: Timestamp) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    /// The point, or the first error met while building it.
    pub fn build(self) -> Result<Point, SeriesError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        Point::new(
            Measurement::new(self.measurement)?,
            self.tags,
            self.fields,
            self.timestamp,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_reports_the_first_error() {
        let err = Point::builder("cpu")
            .tag("host", "")
            .field("time", 1.0)
            .build()
            .unwrap_err();
        assert_eq!(
            err,
            SeriesError::EmptyTagValue {
                key: Some("host".into())
            }
        );
        assert_eq!(
            Point::builder("cpu").tag("host", "a").build().unwrap_err(),
            SeriesError::NoFields
        );
        assert_eq!(
            Point::builder("").field("v", 1i64).build().unwrap_err(),
            SeriesError::EmptyMeasurement
        );
    }

    #[test]
    fn builder_makes_a_sorted_point() {
        let p = Point::builder("cpu")
            .tag("z", "1")
            .tag("a", "2")
            .field("v", 1.5)
            .field("n", 3i64)
            .timestamp(Timestamp::from_nanos(7))
            .build()
            .unwrap();
        let tags: Vec<_> = PointView::tags(&p).collect();
        assert_eq!(tags, [("a", "2"), ("z", "1")]);
        assert_eq!(p.fields().get("n"), Some(&FieldValue::Integer(3)));
        assert_eq!(p.timestamp(), Some(Timestamp::from_nanos(7)));
    }
}
