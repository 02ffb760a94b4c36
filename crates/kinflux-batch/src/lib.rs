#![doc = include_str!("../README.md")]
#![warn(clippy::unwrap_used)]

mod batch;
mod batcher;
mod field_section;
mod policy;
mod record;

pub use batch::Batch;
pub use batcher::{Batcher, MAX_BATCH_BYTES};
pub use policy::FlushPolicy;
pub use record::{PartitionCoverage, RecordId};
