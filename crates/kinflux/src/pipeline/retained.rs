//! Records handed off but not yet settled, kept so that a line InfluxDB refuses can be
//! dead-lettered as the record it came from. They count against
//! `kafka.max_buffered_bytes`: consumption pauses while too many are held.

use std::collections::{HashMap, VecDeque};

use kinflux_kafka::Record;

use kinflux_kafka::PartitionKey;

/// Unsettled records, per partition in offset order.
#[derive(Debug, Default)]
pub(super) struct Retained {
    records: HashMap<PartitionKey, VecDeque<Record>, foldhash::fast::RandomState>,
    /// Their [`Record::footprint`], summed.
    bytes: usize,
}

impl Retained {
    /// Keeps `record` (which comes after every record kept for its partition).
    pub(super) fn keep(&mut self, partition: &PartitionKey, record: Record) {
        self.bytes += record.footprint();
        match self.records.get_mut(partition) {
            Some(records) => records.push_back(record),
            None => {
                self.records
                    .insert(partition.clone(), VecDeque::from([record]));
            }
        }
    }

    /// The record of `partition` at `offset`, if it is kept.
    pub(super) fn get(&self, partition: &PartitionKey, offset: i64) -> Option<&Record> {
        let records = self.records.get(partition)?;
        let at = records.partition_point(|r| r.offset < offset);
        records.get(at).filter(|r| r.offset == offset)
    }

    /// Lets go of the records of `partition` below `offset`: no write refers to them any
    /// more.
    pub(super) fn release_below(&mut self, partition: &PartitionKey, offset: i64) {
        if let Some(records) = self.records.get_mut(partition) {
            while records.front().is_some_and(|r| r.offset < offset) {
                if let Some(r) = records.pop_front() {
                    self.bytes -= r.footprint();
                }
            }
        }
    }

    /// Lets go of every record of a partition that left.
    pub(super) fn forget(&mut self, partition: &PartitionKey) {
        if let Some(records) = self.records.remove(partition) {
            self.bytes -= records.iter().map(Record::footprint).sum::<usize>();
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

    fn record(offset: i64) -> Record {
        Record {
            topic: "t".into(),
            partition: 0,
            offset,
            key: None,
            value: Some(bytes::Bytes::from_static(b"m v=1")),
            headers: Vec::new(),
            timestamp_ms: 0,
        }
    }

    #[test]
    fn bytes_go_back_to_zero_whichever_way_records_leave() {
        let p = PartitionKey::new("t", 0);
        let mut r = Retained::default();
        for o in 0..4 {
            r.keep(&p, record(o));
        }
        assert!(r.bytes() > 0);
        assert_eq!(r.get(&p, 2).map(|r| r.offset), Some(2));
        r.release_below(&p, 2);
        assert!(r.get(&p, 1).is_none());
        r.forget(&p);
        assert_eq!(r.bytes(), 0, "a revoked partition gives back what it took");
    }
}
