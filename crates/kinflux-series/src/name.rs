//! Validated names: measurements, tag keys and values, field keys.
//!
//! The checks live in plain functions so that the borrowed [`PointRef`](crate::PointRef)
//! runs exactly the same rules as the owned types without allocating.

use std::fmt;

use crate::SeriesError;

/// The key InfluxDB reserves for a point's timestamp.
pub const TIME_KEY: &str = "time";

pub(crate) fn check_measurement(name: &str) -> Result<(), SeriesError> {
    if name.is_empty() {
        return Err(SeriesError::EmptyMeasurement);
    }
    Ok(())
}

pub(crate) fn check_tag_key(key: &str) -> Result<(), SeriesError> {
    if key.is_empty() {
        return Err(SeriesError::EmptyTagKey);
    }
    if key == TIME_KEY {
        return Err(SeriesError::ReservedKey { kind: "tag" });
    }
    Ok(())
}

pub(crate) fn check_tag_value(key: Option<&str>, value: &str) -> Result<(), SeriesError> {
    if value.is_empty() {
        return Err(SeriesError::EmptyTagValue {
            key: key.map(str::to_owned),
        });
    }
    Ok(())
}

pub(crate) fn check_field_key(key: &str) -> Result<(), SeriesError> {
    if key.is_empty() {
        return Err(SeriesError::EmptyFieldKey);
    }
    if key == TIME_KEY {
        return Err(SeriesError::ReservedKey { kind: "field" });
    }
    Ok(())
}

/// Defines a validated string newtype: the check runs once, in `new`.
macro_rules! validated_name {
    ($(#[$doc:meta])* $name:ident, |$arg:ident| $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        #[cfg_attr(feature = "serde", serde(try_from = "String", into = "String"))]
        pub struct $name(pub(crate) String);

        impl $name {
            /// Validates `name` and wraps it.
            pub fn new(name: impl Into<String>) -> Result<Self, SeriesError> {
                let name = name.into();
                {
                    let $arg: &str = &name;
                    $check?;
                }
                Ok(Self(name))
            }

            /// The name as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The name as an owned `String`.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = SeriesError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = SeriesError;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(n: $name) -> String {
                n.0
            }
        }
    };
}

validated_name!(
    /// A measurement name: not empty.
    Measurement,
    |name| check_measurement(name)
);
validated_name!(
    /// A tag key: not empty and not `time`.
    TagKey,
    |name| check_tag_key(name)
);
validated_name!(
    /// A tag value: not empty.
    TagValue,
    |name| check_tag_value(None, name)
);
validated_name!(
    /// A field key: not empty and not `time`.
    FieldKey,
    |name| check_field_key(name)
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_reserved_names_are_refused() {
        assert_eq!(
            Measurement::new("").unwrap_err(),
            SeriesError::EmptyMeasurement
        );
        assert_eq!(TagKey::new("").unwrap_err(), SeriesError::EmptyTagKey);
        assert_eq!(
            TagKey::new("time").unwrap_err(),
            SeriesError::ReservedKey { kind: "tag" }
        );
        assert_eq!(
            FieldKey::new("time").unwrap_err(),
            SeriesError::ReservedKey { kind: "field" }
        );
        assert_eq!(
            TagValue::new("").unwrap_err().to_string(),
            "tag has an empty value"
        );
        assert_eq!(Measurement::new("cpu").unwrap().as_str(), "cpu");
        // `time` is a fine measurement name.
        assert!(Measurement::new("time").is_ok());
    }
}
