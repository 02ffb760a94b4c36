#![doc = include_str!("../README.md")]
#![warn(clippy::unwrap_used)]

mod decoder;
mod error;
pub mod framing;
pub mod mapping;
mod plan;
mod source;
pub mod telegraf;

/// The Avro library whose `Schema` the schema sources hand out.
pub use apache_avro;
pub use decoder::{ConfluentDecoder, SingleObjectDecoder};
pub use error::{DecodeError, Error, PlanError, SchemaError};
pub use mapping::{BytesMode, CollectionMode, Mapping, MeasurementSource, TimestampSource};
pub use plan::DecodePlan;
/// The TLS library the registry client uses, to build a custom [`RegistryConfig::tls`].
#[cfg(feature = "tls")]
pub use rustls;
#[cfg(feature = "tls")]
pub use source::tls_trusting;
pub use source::{
    Reference, RegisteredSchema, RegistryAuth, RegistryClient, RegistryConfig, RegistryError,
    SchemaDir, SchemaSource,
};
pub use telegraf::{TelegrafOptions, UnionMode, decode_telegraf};
