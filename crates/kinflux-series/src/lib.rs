#![doc = include_str!("../README.md")]
#![warn(clippy::unwrap_used)]

mod error;
pub mod escape;
mod field;
mod name;
mod point;
mod series_key;
mod tag;
mod time;
mod view;

pub use error::SeriesError;
pub use field::{Field, FieldSet, FieldValue, FieldValueRef};
pub use name::{FieldKey, Measurement, TIME_KEY, TagKey, TagValue};
pub use point::{Point, PointBuilder};
pub use series_key::SeriesKey;
pub use tag::{Tag, TagSet};
pub use time::{Precision, Timestamp};
pub use view::{PointRef, PointView};
