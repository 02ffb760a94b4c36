//! What [`Consumer::recv`](super::Consumer::recv) hands out, and the lag figures.

use bytes::Bytes;
use tokio::{sync::oneshot, time::Instant};

use crate::{
    fetch::{BatchError, DecodeError},
    record::{PartitionKey, Record},
};

/// What [`Consumer::recv`](super::Consumer::recv) hands out.
#[derive(Debug)]
#[non_exhaustive]
pub enum Message {
    /// Records of one partition, in offset order.
    Records(Vec<Record>),
    /// The partition's position moved to `next_offset` over offsets that hold no record for
    /// the caller: transaction markers, records of aborted transactions (under
    /// `read_committed`), or gaps compaction left. Once every record before it is
    /// processed, `next_offset` may be committed; without that, a log ending in a
    /// transaction marker would show a lag of one for ever.
    Advanced {
        /// The partition.
        partition: PartitionKey,
        /// The next offset to read.
        next_offset: i64,
    },
    /// A record batch that cannot be decoded: unknown codec, corrupt compressed bytes, a
    /// CRC that does not match (it was fetched twice). The consumer goes on after it; the
    /// caller decides whether its offsets go to a dead-letter topic or the run stops.
    Undecodable(UndecodableBatch),
    /// These partitions were assigned to this consumer; records follow.
    Assigned(Vec<PartitionKey>),
    /// These partitions are about to leave this consumer. No more records of them follow.
    /// Finish (flush, commit) before the deadline, then call [`Revocation::done`] or drop it;
    /// unless [`Revocation::lost`] says they are gone already: then drop them unwritten.
    Revoked(Revocation),
}

/// A batch the consumer could not decode, and the offsets it covers.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UndecodableBatch {
    /// The partition.
    pub partition: PartitionKey,
    /// First offset of the batch.
    pub base_offset: i64,
    /// Last offset of the batch, as its header says.
    pub last_offset: i64,
    /// Why it does not decode.
    pub error: DecodeError,
    /// The batch as fetched, header included (empty when its length was unreadable).
    pub bytes: Bytes,
}

impl UndecodableBatch {
    pub(super) fn new(partition: PartitionKey, failure: BatchError) -> Self {
        Self {
            partition,
            base_offset: failure.base_offset,
            last_offset: failure.last_offset,
            error: failure.error,
            bytes: failure.bytes,
        }
    }

    /// The offset after the batch: the next one to read, and the one to commit once the
    /// batch is dealt with.
    pub fn next_offset(&self) -> i64 {
        self.last_offset.saturating_add(1)
    }
}

/// Partitions about to be revoked. The rebalance waits until this is dropped (or
/// [`done`](Revocation::done) is called) or until its deadline.
#[derive(Debug)]
pub struct Revocation {
    pub(super) partitions: Vec<PartitionKey>,
    pub(super) deadline: Instant,
    pub(super) lost: bool,
    pub(super) _ack: oneshot::Sender<()>,
}

impl Revocation {
    /// The partitions that leave.
    pub fn partitions(&self) -> &[PartitionKey] {
        &self.partitions
    }

    /// When the rebalance goes on without waiting any longer.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the group membership was lost (the coordinator no longer knows this member,
    /// fenced it, or its session timed out): the partitions belong to another member
    /// already. Then nothing of them may be written or committed; drop what is held of
    /// them (the new owner reads it again from the last commit).
    pub fn lost(&self) -> bool {
        self.lost
    }

    /// Lets the rebalance go on (the same as dropping this value).
    pub fn done(self) {}
}

/// Lag figures of one assigned partition.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionLag {
    /// The partition.
    pub partition: PartitionKey,
    /// High watermark from the last fetch (`None` before the first).
    pub high_watermark: Option<i64>,
    /// Last stable offset from the last fetch: below it every transaction is decided
    /// (`None` before the first fetch, or when the broker does not say).
    pub last_stable_offset: Option<i64>,
    /// Next offset to hand to the caller.
    pub position: Option<i64>,
    /// Offset last committed by this group (`None` if never).
    pub committed: Option<i64>,
    /// What is left to read: from `position` to the end the consumer can reach, the last
    /// stable offset under `read_committed`, the high watermark under `read_uncommitted`.
    pub lag: Option<i64>,
    /// From `committed` to that same end.
    pub committed_lag: Option<i64>,
}
