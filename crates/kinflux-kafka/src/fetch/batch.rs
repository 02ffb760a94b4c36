//! Record batches (magic 2) in a fetched partition's bytes.
//!
//! Layout (big-endian): `base_offset: i64, batch_length: i32, partition_leader_epoch: i32,
//! magic: i8, crc: u32, attributes: i16, last_offset_delta: i32, base_timestamp: i64,
//! max_timestamp: i64, producer_id: i64, producer_epoch: i16, base_sequence: i32,
//! record_count: i32, records...`. `batch_length` counts from the leader epoch on; the
//! CRC-32C covers everything from the attributes on.

use bytes::Bytes;

use super::{
    codec::{self, Compression},
    error::{BatchError, DecodeError},
    record::{ControlType, Cursor, FetchedRecord, RecordContext, read_record},
};

/// Bytes before `batch_length` ends: base offset and the length itself.
const LOG_OVERHEAD: usize = 12;
/// The whole batch header, records excluded.
pub const HEADER_LEN: usize = 61;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;

const TIMESTAMP_TYPE_BIT: i16 = 1 << 3;
const TRANSACTIONAL_BIT: i16 = 1 << 4;
const CONTROL_BIT: i16 = 1 << 5;

/// One complete record batch, its header read and its CRC not yet checked.
#[derive(Debug, Clone)]
pub struct Batch {
    bytes: Bytes,
    base_offset: i64,
    attributes: i16,
    last_offset_delta: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    record_count: i32,
}

fn be<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(&b[at..at + N]);
    out
}

impl Batch {
    /// Reads the header of `bytes`, one whole batch. The caller checked that it holds at
    /// least [`HEADER_LEN`] bytes and a magic of 2.
    fn parse(bytes: Bytes) -> Self {
        let b = &bytes[..];
        Self {
            base_offset: i64::from_be_bytes(be(b, 0)),
            attributes: i16::from_be_bytes(be(b, 21)),
            last_offset_delta: i32::from_be_bytes(be(b, 23)),
            base_timestamp: i64::from_be_bytes(be(b, 27)),
            max_timestamp: i64::from_be_bytes(be(b, 35)),
            producer_id: i64::from_be_bytes(be(b, 43)),
            producer_epoch: i16::from_be_bytes(be(b, 51)),
            record_count: i32::from_be_bytes(be(b, 57)),
            bytes,
        }
    }

    /// First offset of the batch.
    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    /// Last offset of the batch (records at its end may have been compacted away; the
    /// offset stays).
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// Offset after the batch: where fetching goes on once it is consumed.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    /// The compression codec.
    pub fn compression(&self) -> Result<Compression, DecodeError> {
        Compression::from_attributes(self.attributes)
    }

    /// Whether the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    /// Whether the batch holds control records (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    /// The producer id, -1 for a producer that is neither idempotent nor transactional.
    pub fn producer_id(&self) -> i64 {
        self.producer_id
    }

    /// The producer epoch.
    pub fn producer_epoch(&self) -> i16 {
        self.producer_epoch
    }

    /// How many records the header announces.
    pub fn record_count(&self) -> i32 {
        self.record_count
    }

    /// The batch's bytes, header included.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Checks the CRC-32C of everything from the attributes on.
    pub fn verify_crc(&self) -> Result<(), DecodeError> {
        let expected = u32::from_be_bytes(be(&self.bytes, CRC_AT));
        let actual = crc32c::crc32c(&self.bytes[ATTRIBUTES_AT..]);
        if expected == actual {
            Ok(())
        } else {
            Err(DecodeError::BadCrc { expected, actual })
        }
    }

    /// The records section, decompressed when the batch is compressed (at most
    /// `max_decompressed` bytes).
    pub fn records_section(&self, max_decompressed: usize) -> Result<Bytes, DecodeError> {
        let raw = self.bytes.slice(HEADER_LEN..);
        match self.compression()? {
            Compression::None => Ok(raw),
            codec => codec::decompress(codec, &raw, max_decompressed).map(Bytes::from),
        }
    }

    /// Appends the batch's records to `out`, all of them or, on error, none.
    pub fn read_records(
        &self,
        max_decompressed: usize,
        out: &mut Vec<FetchedRecord>,
    ) -> Result<(), DecodeError> {
        let section = self.records_section(max_decompressed)?;
        let count = usize::try_from(self.record_count)
            .map_err(|_| DecodeError::Invalid("negative record count"))?;
        // The smallest record takes 7 bytes: do not reserve for a count the bytes cannot
        // hold.
        if count > section.len() / 7 {
            return Err(DecodeError::Invalid(
                "record count larger than the batch can hold",
            ));
        }
        let ctx = RecordContext {
            base_offset: self.base_offset,
            base_timestamp: self.base_timestamp,
            log_append_time: (self.attributes & TIMESTAMP_TYPE_BIT != 0)
                .then_some(self.max_timestamp),
        };
        let start = out.len();
        out.reserve(count);
        let mut cur = Cursor::new(&section);
        for _ in 0..count {
            match read_record(&mut cur, &section, &ctx) {
                Ok(r) => out.push(r),
                Err(e) => {
                    out.truncate(start);
                    return Err(e);
                }
            }
        }
        if !cur.is_empty() {
            out.truncate(start);
            return Err(DecodeError::Invalid("bytes left after the last record"));
        }
        Ok(())
    }

    /// What the first record of a control batch says.
    pub(crate) fn control_type(&self, max_decompressed: usize) -> Result<ControlType, DecodeError> {
        let section = self.records_section(max_decompressed)?;
        let ctx = RecordContext {
            base_offset: self.base_offset,
            base_timestamp: self.base_timestamp,
            log_append_time: None,
        };
        let first = read_record(&mut Cursor::new(&section), &section, &ctx)?;
        ControlType::parse(first.key.as_deref())
    }

    /// A [`BatchError`] for this batch.
    pub(crate) fn error(&self, error: DecodeError) -> BatchError {
        BatchError {
            base_offset: self.base_offset,
            last_offset: self.last_offset(),
            error,
            bytes: self.bytes.clone(),
        }
    }
}

/// The complete record batches in a fetched partition's `records` bytes.
///
/// A partial batch at the end (the broker cuts its answer at the fetch's byte limit) ends
/// the iteration without an error; [`trailing_bytes`](Self::trailing_bytes) tells how many
/// bytes it had. A batch whose header cannot be used yields one error, and the iteration
/// ends there when its length cannot be trusted.
#[derive(Debug, Clone)]
pub struct RecordBatches {
    rest: Bytes,
    done: bool,
}

impl RecordBatches {
    /// Batches of `records`, the bytes of one partition in a Fetch response.
    pub fn new(records: Bytes) -> Self {
        Self {
            rest: records,
            done: false,
        }
    }

    /// Bytes not yet read: after the iteration, those of a partial batch at the end.
    pub fn trailing_bytes(&self) -> usize {
        self.rest.len()
    }
}

impl Iterator for RecordBatches {
    type Item = Result<Batch, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.rest.len() < LOG_OVERHEAD {
            return None;
        }
        let base_offset = i64::from_be_bytes(be(&self.rest, 0));
        let length = i32::from_be_bytes(be(&self.rest, 8));
        let header_error = |error| BatchError {
            base_offset,
            last_offset: base_offset,
            error,
            bytes: Bytes::new(),
        };
        let Some(total) = usize::try_from(length)
            .ok()
            .and_then(|l| l.checked_add(LOG_OVERHEAD))
        else {
            self.done = true;
            return Some(Err(header_error(DecodeError::Invalid(
                "negative batch length",
            ))));
        };
        if self.rest.len() < total {
            // The broker cut the answer inside this batch.
            return None;
        }
        let bytes = self.rest.split_to(total);
        if total <= MAGIC_AT {
            self.done = true;
            return Some(Err(header_error(DecodeError::Invalid(
                "batch length shorter than a header",
            ))));
        }
        let magic = bytes[MAGIC_AT] as i8;
        if magic != 2 {
            // Its length is known: the next batch can still be read.
            return Some(Err(BatchError {
                bytes,
                ..header_error(DecodeError::UnsupportedMagic(magic))
            }));
        }
        if total < HEADER_LEN {
            self.done = true;
            return Some(Err(header_error(DecodeError::Invalid(
                "batch length shorter than a header",
            ))));
        }
        Some(Ok(Batch::parse(bytes)))
    }
}
