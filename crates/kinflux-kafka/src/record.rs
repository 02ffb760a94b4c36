//! Records, the partition key and committed offsets handed to the caller.

use std::{fmt, sync::Arc};

use bytes::Bytes;

/// A partition of a topic: the one partition identity of kinflux. Assignments, commits,
/// lag and seeks here, and the facade's progress, metrics and retained records, all key
/// by it.
///
/// The topic is shared (`Arc<str>`) with the records of the partition, so making a key
/// from a [`Record`] costs a reference count, not a copy of the name. Keys order by topic,
/// then partition, and print as `topic/partition`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionKey {
    /// Topic name.
    pub topic: Arc<str>,
    /// Partition index.
    pub partition: i32,
}

impl PartitionKey {
    /// The key of partition `partition` of `topic`.
    pub fn new(topic: impl Into<Arc<str>>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for PartitionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

/// An offset a group committed, and the metadata committed with it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommittedOffset {
    /// The next offset to read.
    pub offset: i64,
    /// What the committer stored with it (empty when nothing).
    pub metadata: String,
}

/// One record read from Kafka.
///
/// Key, value and header values are `Bytes` that share the fetched buffers; cloning a
/// record does not copy its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Topic the record was read from (shared by all records of the partition).
    pub topic: Arc<str>,
    /// Partition the record was read from.
    pub partition: i32,
    /// Offset of the record in its partition.
    pub offset: i64,
    /// Key, if any.
    pub key: Option<Bytes>,
    /// Value, if any (`None` is a tombstone).
    pub value: Option<Bytes>,
    /// Headers, in the order the producer wrote them.
    pub headers: Vec<(String, Bytes)>,
    /// Record timestamp, milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
}

impl Record {
    /// The partition this record was read from.
    pub fn partition_key(&self) -> PartitionKey {
        PartitionKey {
            topic: Arc::clone(&self.topic),
            partition: self.partition,
        }
    }

    /// The offset to commit once this record is processed: the next one to read.
    pub fn next_offset(&self) -> i64 {
        self.offset + 1
    }

    /// Approximate payload size in bytes (key, value and headers).
    pub fn size(&self) -> usize {
        self.key.as_ref().map_or(0, Bytes::len)
            + self.value.as_ref().map_or(0, Bytes::len)
            + self
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    }

    /// Approximate bytes the record holds in memory: its payload, the struct itself, and
    /// the allocator's overhead for each separately allocated buffer. Buffers budgets
    /// with this, not [`size`](Self::size): for a 90-byte line the payload alone was
    /// under half of what the record took.
    pub fn footprint(&self) -> usize {
        /// What an allocation costs beyond its bytes: the allocator's header and the
        /// rounding up to its size classes, on average.
        const PER_BUFFER: usize = 24;
        let buffers = usize::from(self.key.is_some())
            + usize::from(self.value.is_some())
            + 2 * self.headers.len();
        self.size()
            + std::mem::size_of::<Self>()
            + self.headers.capacity() * std::mem::size_of::<(String, Bytes)>()
            + buffers * PER_BUFFER
    }

    /// A record of `topic`/`partition` from the fetch path: key, value and header values
    /// stay slices of the fetched (or decompressed) buffer; header keys become strings (a
    /// header without a value gets an empty one).
    pub fn from_fetched(topic: &Arc<str>, partition: i32, r: crate::fetch::FetchedRecord) -> Self {
        Self {
            topic: Arc::clone(topic),
            partition,
            offset: r.offset,
            key: r.key,
            value: r.value,
            // Most records have no headers: an empty list skips the collect's set-up (1.2%
            // of the bridge's instructions on JSON).
            headers: if r.headers.is_empty() {
                Vec::new()
            } else {
                r.headers
                    .into_iter()
                    .map(|h| {
                        (
                            String::from_utf8_lossy(&h.key).into_owned(),
                            h.value.unwrap_or_default(),
                        )
                    })
                    .collect()
            },
            timestamp_ms: r.timestamp_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(value: &[u8], headers: usize) -> Record {
        Record {
            topic: Arc::from("t"),
            partition: 0,
            offset: 0,
            key: None,
            value: Some(Bytes::copy_from_slice(value)),
            headers: (0..headers)
                .map(|i| (format!("h{i}"), Bytes::from_static(b"v")))
                .collect(),
            timestamp_ms: 0,
        }
    }

    #[test]
    fn partition_keys_share_the_topic_order_by_topic_then_partition_and_print() {
        let r = record(b"x", 0);
        let key = r.partition_key();
        assert!(Arc::ptr_eq(&key.topic, &r.topic));
        assert_eq!(key, PartitionKey::new("t", 0));
        assert_eq!(key.to_string(), "t/0");
        let mut keys = [
            PartitionKey::new("b", 0),
            PartitionKey::new("a", 10),
            PartitionKey::new(String::from("a"), 2),
        ];
        keys.sort();
        let printed: Vec<String> = keys.iter().map(ToString::to_string).collect();
        assert_eq!(printed, ["a/2", "a/10", "b/0"]);
    }

    #[test]
    fn a_small_record_counts_far_more_than_its_payload() {
        let line = record(&[b'x'; 90], 0);
        assert_eq!(line.size(), 90);
        // The struct and the value's allocation outweigh 90 bytes of payload.
        assert!(line.footprint() >= 90 + std::mem::size_of::<Record>() + 24);
        assert!(line.footprint() > 2 * line.size());
        // Each header adds its entry and two buffers.
        let with_headers = record(&[b'x'; 90], 2);
        assert!(with_headers.footprint() >= line.footprint() + 2 * (4 + 48));
    }
}
