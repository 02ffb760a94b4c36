//! Fetched records a lane has not taken yet, in the chunks the consumer handed over.
//!
//! A chunk (records of one partition, in offset order) is taken in place, record by
//! record, and leaves whole once its last record is taken, to be retained until its
//! writes settle. Moving each record (a 128-byte `Record`) into a queue, out of it and into
//! the retained ones cost 8-10% of the bridge's CPU on Avro and JSON.

use std::collections::VecDeque;

use kinflux_kafka::{PartitionKey, Record};

/// Records of one partition in offset order, and their [`Record::footprint`], summed.
#[derive(Debug)]
pub(super) struct Chunk {
    pub(super) records: Vec<Record>,
    pub(super) footprint: usize,
}

impl Chunk {
    fn is_of(&self, partition: &PartitionKey) -> bool {
        self.records
            .first()
            .is_some_and(|r| r.partition == partition.partition && r.topic == partition.topic)
    }
}

/// The chunks not all taken yet, and how far the front one is taken.
#[derive(Debug, Default)]
pub(super) struct Held {
    /// Never an empty chunk: the front one always has a record to take.
    chunks: VecDeque<Chunk>,
    /// The first record of the front chunk not taken yet.
    next: usize,
}

impl Held {
    /// Holds `records` (of one partition, in offset order) after the chunks held.
    pub(super) fn push(&mut self, records: Vec<Record>, footprint: usize) {
        if !records.is_empty() {
            self.chunks.push_back(Chunk { records, footprint });
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// The next record to take.
    pub(super) fn next(&self) -> Option<&Record> {
        self.chunks.front()?.records.get(self.next)
    }

    /// The records of the front chunk taken so far.
    pub(super) fn taken(&self) -> &[Record] {
        self.chunks
            .front()
            .map_or(&[], |c| &c.records[..self.next.min(c.records.len())])
    }

    /// Moves past the next record. Gives back the front chunk when that was its last.
    pub(super) fn advance(&mut self) -> Option<Chunk> {
        let len = self.chunks.front()?.records.len();
        self.next += 1;
        if self.next < len {
            return None;
        }
        self.next = 0;
        self.chunks.pop_front()
    }

    /// The taken record of `partition` at `offset`, while its chunk is still held.
    pub(super) fn get_taken(&self, partition: &PartitionKey, offset: i64) -> Option<&Record> {
        let chunk = self.chunks.front()?;
        if !chunk.is_of(partition) {
            return None;
        }
        let taken = self.taken();
        let at = taken.partition_point(|r| r.offset < offset);
        taken.get(at).filter(|r| r.offset == offset)
    }

    /// Drops every record of `partition`, taken or not.
    pub(super) fn forget(&mut self, partition: &PartitionKey) {
        if self.chunks.front().is_some_and(|c| c.is_of(partition)) {
            self.next = 0;
        }
        self.chunks.retain(|c| !c.is_of(partition));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(partition: i32, offset: i64) -> Record {
        Record {
            topic: "t".into(),
            partition,
            offset,
            key: None,
            value: None,
            headers: Vec::new(),
            timestamp_ms: 0,
        }
    }

    fn chunk(partition: i32, offsets: std::ops::Range<i64>) -> Vec<Record> {
        offsets.map(|o| record(partition, o)).collect()
    }

    #[test]
    fn chunks_are_taken_in_place_and_leave_whole() {
        let mut held = Held::default();
        held.push(chunk(0, 10..13), 30);
        held.push(Vec::new(), 0);
        held.push(chunk(1, 0..1), 10);
        let p0 = PartitionKey::new("t", 0);
        assert_eq!(held.next().map(|r| r.offset), Some(10));
        assert!(held.advance().is_none());
        assert!(held.advance().is_none());
        assert_eq!(held.taken().len(), 2);
        assert_eq!(held.get_taken(&p0, 11).map(|r| r.offset), Some(11));
        assert!(held.get_taken(&p0, 12).is_none(), "not taken yet");
        let left = held.advance().expect("the chunk's last record was taken");
        assert_eq!((left.records.len(), left.footprint), (3, 30));
        assert_eq!(held.next().map(|r| (r.partition, r.offset)), Some((1, 0)));
        assert!(held.taken().is_empty());
        assert!(held.advance().is_some());
        assert!(held.is_empty() && held.next().is_none() && held.advance().is_none());
    }

    #[test]
    fn forgetting_a_partition_drops_its_chunks_and_keeps_the_others() {
        let mut held = Held::default();
        held.push(chunk(0, 0..3), 3);
        held.push(chunk(1, 0..2), 2);
        held.push(chunk(0, 3..5), 2);
        held.advance();
        held.forget(&PartitionKey::new("t", 0));
        assert_eq!(held.next().map(|r| (r.partition, r.offset)), Some((1, 0)));
        held.advance();
        held.forget(&PartitionKey::new("t", 0));
        assert_eq!(
            held.next().map(|r| (r.partition, r.offset)),
            Some((1, 1)),
            "another partition's front chunk keeps its place"
        );
    }
}
