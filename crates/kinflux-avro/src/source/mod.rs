//! Where writer schemas come from: the schema registry, or a directory of `.avsc` files.
//! Both implement [`SchemaSource`], so a decoder takes either.

mod dir;
mod error;
mod references;
mod registry;
#[cfg(feature = "tls")]
mod tls;

use std::future::Future;
use std::sync::Arc;

use apache_avro::Schema;

pub use dir::SchemaDir;
pub use error::RegistryError;
pub use references::Reference;
pub use registry::{RegisteredSchema, RegistryAuth, RegistryClient, RegistryConfig};
#[cfg(feature = "tls")]
pub use tls::tls_trusting;

use crate::SchemaError;

/// Finds writer schemas by their id (the id in the Confluent framing).
///
/// A schema under an id never changes, so implementations cache by id and callers may
/// too.
pub trait SchemaSource: Send + Sync {
    /// The schema with this id; [`SchemaError::UnknownId`] when there is none.
    fn schema(&self, id: u32) -> impl Future<Output = Result<Arc<Schema>, SchemaError>> + Send;
}

impl<T: SchemaSource> SchemaSource for Arc<T> {
    fn schema(&self, id: u32) -> impl Future<Output = Result<Arc<Schema>, SchemaError>> + Send {
        (**self).schema(id)
    }
}

fn parse(what: impl FnOnce() -> String, text: &str) -> Result<Schema, SchemaError> {
    Schema::parse_str(text).map_err(|e| SchemaError::Parse {
        what: what(),
        message: e.to_string(),
    })
}
