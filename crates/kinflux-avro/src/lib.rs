#![doc = include_str!("../README.md")]
#![warn(clippy::unwrap_used)]

mod error;
pub mod mapping;
mod plan;
mod source;

pub use error::{DecodeError, Error, PlanError, SchemaError};
pub use mapping::{BytesMode, CollectionMode, Mapping, MeasurementSource, TimestampSource};
pub use plan::DecodePlan;
pub use source::RegistryError;
