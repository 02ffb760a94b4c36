//! The series key: measurement plus sorted tags, the identity of a series.

use std::fmt;

use crate::{PointView, escape};

/// A series' canonical name, as InfluxDB builds it: the escaped measurement followed by
/// `,key=value` for every tag in key order, escaped as in line protocol. Two points belong
/// to the same series exactly when their series keys are equal.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesKey(String);

impl SeriesKey {
    /// The series key of `point`.
    pub fn of(point: &impl PointView) -> Self {
        let mut bytes = Vec::with_capacity(64);
        Self::write(point, &mut bytes);
        // Escaping only inserts ASCII backslashes in front of ASCII bytes, so the bytes
        // are as valid UTF-8 as the `&str` parts they came from.
        SeriesKey(String::from_utf8(bytes).expect("escaped UTF-8 stays UTF-8"))
    }

    /// Appends the series key of `point` to `out`, for callers that reuse a buffer.
    pub fn write(point: &impl PointView, out: &mut Vec<u8>) {
        escape::measurement(point.measurement(), out);
        for (k, v) in point.tags() {
            out.push(b',');
            escape::key(k, out);
            out.push(b'=');
            escape::key(v, out);
        }
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Point;

    #[test]
    fn series_key_is_escaped_measurement_and_sorted_tags() {
        let p = Point::builder("cpu load")
            .tag("zone", "eu,west")
            .tag("host", "a=b")
            .field("v", 1.0)
            .build()
            .unwrap();
        assert_eq!(
            SeriesKey::of(&p).as_str(),
            r"cpu\ load,host=a\=b,zone=eu\,west"
        );
    }

    #[test]
    fn tag_order_does_not_change_the_series() {
        let a = Point::builder("m")
            .tag("a", "1")
            .tag("b", "2")
            .field("v", 1i64)
            .build();
        let b = Point::builder("m")
            .tag("b", "2")
            .tag("a", "1")
            .field("w", true)
            .build();
        assert_eq!(SeriesKey::of(&a.unwrap()), SeriesKey::of(&b.unwrap()));
    }
}
