//! The one error type of this crate.

use crate::Precision;

/// Why a name, a value, a timestamp or a whole point is not valid in InfluxDB's model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SeriesError {
    /// A measurement name was empty.
    #[error("measurement name is empty")]
    EmptyMeasurement,
    /// A tag key was empty.
    #[error("tag key is empty")]
    EmptyTagKey,
    /// A tag value was empty; InfluxDB drops such tags, so we refuse them explicitly.
    #[error("tag{} has an empty value", key.as_deref().map(|k| format!(" {k:?}")).unwrap_or_default())]
    EmptyTagValue {
        /// The tag's key, when known.
        key: Option<String>,
    },
    /// A field key was empty.
    #[error("field key is empty")]
    EmptyFieldKey,
    /// A tag or field was named `time`, which InfluxDB reserves for the timestamp.
    #[error("{kind} key \"time\" is reserved for the timestamp")]
    ReservedKey {
        /// `"tag"` or `"field"`.
        kind: &'static str,
    },
    /// Two tags had the same key.
    #[error("tag key {key:?} appears more than once")]
    DuplicateTag {
        /// The repeated key.
        key: String,
    },
    /// A float field was NaN or infinite, which InfluxDB cannot store.
    #[error("field {key:?} is not a finite float")]
    NonFiniteFloat {
        /// The field's key.
        key: String,
    },
    /// A point had no fields; InfluxDB needs at least one.
    #[error("point has no fields")]
    NoFields,
    /// Converting a timestamp to nanoseconds overflowed an `i64`.
    #[error("timestamp {value} in {precision} overflows the nanosecond range of i64")]
    TimestampOverflow {
        /// The value as given.
        value: i64,
        /// The precision it was given in.
        precision: Precision,
    },
    /// A precision name was not one of `ns`, `us`, `ms`, `s`.
    #[error("unknown precision {0:?}: expected ns, us, ms or s")]
    UnknownPrecision(String),
}
