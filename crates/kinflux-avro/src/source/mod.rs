//! Where writer schemas come from: the schema registry, or a directory of `.avsc` files.

mod error;

pub use error::RegistryError;
