//! Our own fetch path: the Fetch request over the crate's connection, and a decoder of
//! Kafka's v2 record batches that hands out `Bytes` slices of the response.
//!
//! - [`batch`] walks the record batches of a fetched partition: header, CRC-32C,
//!   attributes, and decompression (gzip, snappy, lz4, zstd, each behind the crate feature
//!   of the same name, all on by default);
//! - [`record`] reads the records of one batch: varint fields, headers, control records;
//! - [`decode_partition`] applies the isolation level: under `read_committed` the records
//!   of aborted transactions are dropped exactly as Kafka's Java consumer drops them, and
//!   control batches are never handed out but move the position past them;
//! - [`FetchClient`] sends Fetch (and the Metadata it needs for topic ids and leaders) to
//!   each partition's leader and returns per partition the records, watermarks and the
//!   next offset to fetch.
//!
//! Nothing here panics on input data: every malformed byte becomes a [`DecodeError`].
//!
//! ```
//! use kinflux_kafka::fetch::{DecodeOptions, build::BatchBuilder, decode_partition};
//!
//! // A fetched partition's `records` field: here one uncompressed batch with one record.
//! let data = BatchBuilder::new(7).record(None, Some(b"hello"), &[]).build()?;
//! let decoded = decode_partition(data, 7, &[], &DecodeOptions::default());
//! assert!(decoded.error.is_none());
//! assert_eq!(decoded.records[0].offset, 7);
//! assert_eq!(decoded.records[0].value.as_deref(), Some(&b"hello"[..]));
//! assert_eq!(decoded.next_offset, 8);
//! # Ok::<(), kinflux_kafka::fetch::DecodeError>(())
//! ```

pub mod batch;
pub mod build;
mod client;
mod codec;
mod error;
#[cfg(feature = "lz4")]
mod lz4;
mod metadata;
mod partition;
pub mod record;
pub(crate) mod request;

pub use batch::{Batch, RecordBatches};
pub use client::{FetchClient, FetchPosition};
pub use codec::Compression;
pub use error::{BatchError, DecodeError};
pub use metadata::OffsetSpec;
pub use partition::{
    AbortedTransaction, DecodeOptions, DecodedPartition, IsolationLevel, decode_partition,
};
pub use record::{FetchedRecord, Header};
pub use request::{FetchParams, FetchedPartition};
#[cfg(test)]
mod tests;
