//! Where a point came from: the Kafka record, and the offsets a batch covers.

// A list of offset ranges that starts with one range is what we mean, not a typo for a
// range of values.
#![allow(clippy::single_range_in_vec_init)]

use std::ops::Range;
use std::sync::Arc;

/// The Kafka record a point was decoded from.
///
/// This is not `kinflux_kafka::PartitionKey` plus an offset on purpose: kinflux-batch must
/// not depend on Kafka, so that a program batching points from any source pulls in no
/// Kafka client. The fields are the key's (the topic an `Arc<str>` shared with the
/// records), so the facade moves between the two without copying a topic name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordId {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset in its partition.
    pub offset: i64,
}

/// A record a batch holds points of: [`RecordId`] with its topic as an index into the
/// batch's topics. Keeping a `RecordId` per record cloned the topic's `Arc` (an atomic
/// increment, and a decrement when the batch went) for every record of one point: 4.6% of
/// the bridge's CPU on JSON, the lock stalling behind the stores of the line just encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Source {
    /// The topic's index in the batch's topics.
    pub(crate) topic: u32,
    /// The partition.
    pub(crate) partition: i32,
    /// The record's offset in its partition.
    pub(crate) offset: i64,
}

/// The offsets of one partition that a batch holds points of, as sorted, disjoint,
/// non-adjacent ranges (end exclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionCoverage {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The covered offsets.
    pub offsets: Vec<Range<i64>>,
}

/// Groups records by partition and folds their offsets into ranges.
pub(crate) fn coverage_of(records: impl Iterator<Item = RecordId>) -> Vec<PartitionCoverage> {
    let mut sorted: Vec<RecordId> = records.collect();
    // Stable sort: it finds the runs of each partition's records, which arrive in offset
    // order, and merges them instead of comparing from scratch.
    sorted.sort();
    let mut out: Vec<PartitionCoverage> = Vec::new();
    for r in sorted {
        match out.last_mut() {
            Some(c) if c.topic == r.topic && c.partition == r.partition => {
                let last = c
                    .offsets
                    .last_mut()
                    .expect("a coverage entry starts with one range");
                if r.offset < last.end {
                    // The same record contributed several points.
                } else if r.offset == last.end {
                    last.end += 1;
                } else {
                    c.offsets.push(r.offset..r.offset + 1);
                }
            }
            _ => out.push(PartitionCoverage {
                topic: r.topic,
                partition: r.partition,
                offsets: vec![r.offset..r.offset + 1],
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(topic: &str, partition: i32, offset: i64) -> RecordId {
        RecordId {
            topic: topic.into(),
            partition,
            offset,
        }
    }

    #[test]
    fn offsets_fold_into_ranges_per_partition() {
        let records = [
            rec("a", 0, 5),
            rec("a", 0, 3),
            rec("a", 0, 4),
            rec("a", 0, 4),
            rec("a", 0, 9),
            rec("b", 1, 0),
            rec("a", 1, 7),
        ];
        let c = coverage_of(records.into_iter());
        assert_eq!(c.len(), 3);
        assert_eq!(
            (&*c[0].topic, c[0].partition, c[0].offsets.clone()),
            ("a", 0, vec![3..6, 9..10])
        );
        assert_eq!(
            (&*c[1].topic, c[1].partition, c[1].offsets.clone()),
            ("a", 1, vec![7..8])
        );
        assert_eq!(
            (&*c[2].topic, c[2].partition, c[2].offsets.clone()),
            ("b", 1, vec![0..1])
        );
    }
}
