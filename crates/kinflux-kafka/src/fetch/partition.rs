//! The records one fetched partition hands out, under an isolation level.

use std::collections::{HashSet, VecDeque};

use bytes::Bytes;
use serde::Deserialize;

use super::{
    batch::RecordBatches,
    codec::Compression,
    error::BatchError,
    record::{ControlType, FetchedRecord},
};

/// Which records of transactional producers a consumer sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum IsolationLevel {
    /// Every record, those of open and aborted transactions included (Kafka's
    /// `read_uncommitted`).
    ReadUncommitted,
    /// Only records outside transactions and of committed transactions, and nothing past the
    /// last stable offset (Kafka's `read_committed`).
    #[default]
    ReadCommitted,
}

impl IsolationLevel {
    /// The value of the Fetch request's `isolation_level` field.
    pub fn wire_value(self) -> i8 {
        match self {
            IsolationLevel::ReadUncommitted => 0,
            IsolationLevel::ReadCommitted => 1,
        }
    }
}

/// An aborted transaction in a Fetch response: the producer and the first offset it wrote
/// in that transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AbortedTransaction {
    /// First offset of the transaction in this partition.
    pub first_offset: i64,
    /// The transactional producer.
    pub producer_id: i64,
}

/// How [`decode_partition`] reads batches.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DecodeOptions {
    /// Which records to hand out. Default `read_committed`.
    pub isolation_level: IsolationLevel,
    /// Check each batch's CRC-32C. Default on, as Kafka's `check.crcs`.
    pub verify_crc: bool,
    /// Largest decompressed records section of one batch. Default 256 MiB.
    pub max_decompressed_bytes: usize,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            isolation_level: IsolationLevel::default(),
            verify_crc: true,
            max_decompressed_bytes: 256 * 1024 * 1024,
        }
    }
}

impl DecodeOptions {
    /// Default options with the given isolation level.
    pub fn with_isolation_level(isolation_level: IsolationLevel) -> Self {
        Self {
            isolation_level,
            ..Self::default()
        }
    }
}

/// What one fetched partition yields.
#[derive(Debug, Clone, Default)]
pub struct DecodedPartition {
    /// Records to hand out, in offset order, none before the fetch offset.
    pub records: Vec<FetchedRecord>,
    /// Where the next fetch starts: past every batch read, control batches and aborted
    /// transactions included. On an error, where the failed batch's unread records begin.
    pub next_offset: i64,
    /// The batch that stopped decoding. The records before it are in `records`; none of
    /// its own are.
    pub error: Option<BatchError>,
    /// Records dropped because their transaction was aborted (read_committed only).
    pub aborted_records: u64,
    /// Control batches passed over.
    pub control_batches: u64,
    /// Bytes of a partial batch at the end, cut by the fetch's byte limit.
    pub trailing_bytes: usize,
    /// Data batches read, by codec, indexed by [`Compression::id`].
    pub batches_by_codec: [u32; 5],
}

impl DecodedPartition {
    /// How many data batches compressed with `codec` were read.
    pub fn batches_with(&self, codec: Compression) -> u32 {
        usize::try_from(codec.id())
            .ok()
            .and_then(|i| self.batches_by_codec.get(i))
            .copied()
            .unwrap_or(0)
    }
}

/// Reads the `records` bytes of one partition of a Fetch response, fetched from
/// `fetch_offset`.
///
/// Under `read_committed`, `aborted` is the response's aborted-transactions list. A batch
/// of producer P is dropped when P has an aborted transaction whose first offset is at or
/// before the batch's last offset and whose abort marker has not been passed yet: this is
/// what Kafka's Java consumer does (`CompletedFetch`). Under `read_uncommitted` the list is
/// ignored. Control batches are never handed out in either level.
pub fn decode_partition(
    records: Bytes,
    fetch_offset: i64,
    aborted: &[AbortedTransaction],
    options: &DecodeOptions,
) -> DecodedPartition {
    let read_committed = options.isolation_level == IsolationLevel::ReadCommitted;
    let mut pending: VecDeque<AbortedTransaction> = if read_committed {
        let mut list = aborted.to_vec();
        list.sort_unstable();
        list.into()
    } else {
        VecDeque::new()
    };
    let mut aborted_producers: HashSet<i64> = HashSet::new();
    let mut out = DecodedPartition {
        next_offset: fetch_offset,
        ..DecodedPartition::default()
    };
    let limit = options.max_decompressed_bytes;
    let mut batches = RecordBatches::new(records);
    for batch in batches.by_ref() {
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                out.error = Some(e);
                break;
            }
        };
        if options.verify_crc {
            if let Err(e) = batch.verify_crc() {
                out.error = Some(batch.error(e));
                break;
            }
        }
        let next = batch.next_offset();
        if read_committed && batch.producer_id() >= 0 {
            while let Some(t) = pending
                .front()
                .filter(|t| t.first_offset <= batch.last_offset())
            {
                aborted_producers.insert(t.producer_id);
                pending.pop_front();
            }
            if batch.is_control() {
                match batch.control_type(limit) {
                    Ok(ControlType::Abort) => {
                        aborted_producers.remove(&batch.producer_id());
                    }
                    Ok(_) => {}
                    Err(e) => {
                        out.error = Some(batch.error(e));
                        break;
                    }
                }
            } else if batch.is_transactional() && aborted_producers.contains(&batch.producer_id()) {
                out.aborted_records += u64::try_from(batch.record_count()).unwrap_or(0);
                out.next_offset = out.next_offset.max(next);
                continue;
            }
        }
        if batch.is_control() {
            out.control_batches += 1;
            out.next_offset = out.next_offset.max(next);
            continue;
        }
        let start = out.records.len();
        if let Err(e) = batch.read_records(limit, &mut out.records) {
            out.error = Some(batch.error(e));
            break;
        }
        // A batch may start before the fetch offset: drop what the caller already has.
        let position = out.next_offset;
        if out.records[start..].iter().any(|r| r.offset < position) {
            let batch_records = out.records.split_off(start);
            out.records
                .extend(batch_records.into_iter().filter(|r| r.offset >= position));
        }
        if let Some(n) = batch
            .compression()
            .ok()
            .and_then(|c| usize::try_from(c.id()).ok())
            .and_then(|i| out.batches_by_codec.get_mut(i))
        {
            *n += 1;
        }
        out.next_offset = out.next_offset.max(next);
    }
    out.trailing_bytes = batches.trailing_bytes();
    out
}
