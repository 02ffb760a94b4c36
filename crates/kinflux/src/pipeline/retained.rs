//! Records handed off but not yet settled, kept so that a line InfluxDB refuses can be
//! dead-lettered as the record it came from. They count against
//! `kafka.max_buffered_bytes`: consumption pauses while too many are held.
//!
//! Kept in the chunks they were fetched in (see `held.rs`), one move a chunk, not one a
//! record. A chunk leaves once every record in it is settled, but its settled records
//! leave the budget as they settle: a chunk whose last record waits in a batch that is
//! still filling must not stop the fetches that would fill it.

use std::collections::{HashMap, VecDeque};

use kinflux_kafka::{PartitionKey, Record};

use super::held::Chunk;

/// Unsettled records, per partition in offset order.
#[derive(Debug, Default)]
pub(super) struct Retained {
    chunks: HashMap<PartitionKey, VecDeque<Kept>, foldhash::fast::RandomState>,
    /// The footprints of the records not settled yet, summed.
    bytes: usize,
}

/// A chunk, and how much of its footprint has left the budget.
#[derive(Debug)]
struct Kept {
    chunk: Chunk,
    /// The share of its records settled (at the front), as a part of its footprint.
    released: usize,
}

impl Kept {
    fn records(&self) -> &[Record] {
        &self.chunk.records
    }

    /// The footprint still counted.
    fn counted(&self) -> usize {
        self.chunk.footprint - self.released
    }
}

impl Retained {
    /// Keeps `chunk` (which comes after every chunk kept for its partition).
    pub(super) fn keep(&mut self, chunk: Chunk) {
        let Some(first) = chunk.records.first() else {
            return;
        };
        let partition = first.partition_key();
        self.bytes += chunk.footprint;
        let kept = Kept { chunk, released: 0 };
        self.chunks.entry(partition).or_default().push_back(kept);
    }

    /// The record of `partition` at `offset`, if it is kept.
    pub(super) fn get(&self, partition: &PartitionKey, offset: i64) -> Option<&Record> {
        let chunks = self.chunks.get(partition)?;
        let at = chunks.partition_point(|c| c.records().last().is_some_and(|r| r.offset < offset));
        let records = chunks.get(at)?.records();
        let at = records.partition_point(|r| r.offset < offset);
        records.get(at).filter(|r| r.offset == offset)
    }

    /// Lets go of the records of `partition` below `offset`: no write refers to them any
    /// more. Chunks all below it leave; the share of the next one below it leaves the
    /// budget.
    pub(super) fn release_below(&mut self, partition: &PartitionKey, offset: i64) {
        let Some(chunks) = self.chunks.get_mut(partition) else {
            return;
        };
        while let Some(front) = chunks.front_mut() {
            let records = front.chunk.records.len();
            let below = front.records().partition_point(|r| r.offset < offset);
            if below == records {
                self.bytes -= front.counted();
                chunks.pop_front();
                continue;
            }
            // Records are about the same size within a fetch: a share by count.
            let released = front.chunk.footprint * below / records;
            if released > front.released {
                self.bytes -= released - front.released;
                front.released = released;
            }
            break;
        }
    }

    /// Lets go of every record of a partition that left.
    pub(super) fn forget(&mut self, partition: &PartitionKey) {
        if let Some(chunks) = self.chunks.remove(partition) {
            self.bytes -= chunks.iter().map(Kept::counted).sum::<usize>();
        }
    }

    /// What the kept records take in memory.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(offsets: std::ops::Range<i64>) -> Chunk {
        let records: Vec<Record> = offsets
            .map(|offset| Record {
                topic: "t".into(),
                partition: 0,
                offset,
                key: None,
                value: Some(bytes::Bytes::from_static(b"m v=1")),
                headers: Vec::new(),
                timestamp_ms: 0,
            })
            .collect();
        let footprint = records.iter().map(Record::footprint).sum();
        Chunk { records, footprint }
    }

    #[test]
    fn bytes_go_back_to_zero_whichever_way_records_leave() {
        let p = PartitionKey::new("t", 0);
        let mut r = Retained::default();
        r.keep(chunk(0..2));
        r.keep(chunk(2..5));
        assert!(r.bytes() > 0);
        assert_eq!(r.get(&p, 2).map(|r| r.offset), Some(2));
        assert_eq!(r.get(&p, 1).map(|r| r.offset), Some(1));
        assert!(r.get(&p, 5).is_none());
        let before = r.bytes();
        r.release_below(&p, 3);
        assert!(r.get(&p, 1).is_none(), "its chunk is all below 3");
        let third = chunk(2..5).footprint / 3;
        assert_eq!(
            r.bytes(),
            before - chunk(0..2).footprint - third,
            "a settled record of a kept chunk leaves the budget"
        );
        assert_eq!(
            r.get(&p, 2).map(|r| r.offset),
            Some(2),
            "a chunk stays while any of its records is unsettled"
        );
        r.release_below(&p, 5);
        assert!(r.get(&p, 4).is_none());
        r.keep(chunk(5..6));
        r.forget(&p);
        assert_eq!(r.bytes(), 0, "a revoked partition gives back what it took");
    }
}
