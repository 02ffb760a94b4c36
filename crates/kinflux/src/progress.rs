//! At-least-once bookkeeping: which offset of each partition may be committed.
//!
//! A record is *handed off* once the pipeline has put all its points into the open batch
//! and started any dead-letter write it needs. Until the write that carries it (a batch to
//! InfluxDB, or a dead-letter record) is acknowledged, its offset stays *blocked*. The
//! committable offset of a partition is then the lowest blocked offset, or one past the
//! last handed-off record when nothing is blocked: every record below it is in InfluxDB or
//! in the dead-letter topic. Several batches of one partition may be in flight and finish
//! in any order; only the unbroken acknowledged prefix is ever committed.

use std::collections::{BTreeMap, HashMap, VecDeque};

use kinflux_kafka::PartitionKey;

/// Progress of one partition.
#[derive(Debug, Default)]
struct Partition {
    /// Offsets that unfinished writes start at, with how many writes start there.
    blocked: BTreeMap<i64, u32>,
    /// The last record handed off.
    handed_off: Option<i64>,
    /// The last offset committed to Kafka (the next offset to read).
    committed: Option<i64>,
    /// (offset, record time in ms) of some handed-off records, for event-time lag.
    times: VecDeque<(i64, i64)>,
    /// The time of the newest record below the committed offset.
    committed_time_ms: Option<i64>,
}

impl Partition {
    fn hand_off(&mut self, offset: i64, time_ms: Option<i64>) {
        let sample = match (self.times.back(), time_ms) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(&(last, _)), Some(_)) => offset - last >= TIME_SAMPLE_EVERY,
        };
        if let (true, Some(t)) = (sample, time_ms) {
            self.times.push_back((offset, t));
        }
        self.handed_off = Some(self.handed_off.map_or(offset, |h| h.max(offset)));
    }
}

/// Sample a record's time for event-time lag at most this often per partition (by offset).
const TIME_SAMPLE_EVERY: i64 = 64;

/// Tracks, per partition, what is handed off and what is still being written, and so which
/// offset is safe to commit.
#[derive(Debug, Default)]
pub struct Progress {
    /// Looked up two or three times per record: a fast hasher, not SipHash (1.5% of the
    /// bridge's CPU on JSON).
    partitions: HashMap<PartitionKey, Partition, foldhash::fast::RandomState>,
}

impl Progress {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks `offset` blocked until [`unblock`](Self::unblock) is called for it: a write
    /// that holds records from `offset` on has started.
    pub fn block(&mut self, partition: &PartitionKey, offset: i64) {
        *self.entry(partition).blocked.entry(offset).or_insert(0) += 1;
    }

    /// Ends one block at `offset`.
    pub fn unblock(&mut self, partition: &PartitionKey, offset: i64) {
        let p = self.entry(partition);
        if let Some(n) = p.blocked.get_mut(&offset) {
            *n -= 1;
            if *n == 0 {
                p.blocked.remove(&offset);
            }
        }
    }

    /// Records that every point of the record at `offset` (with its Kafka timestamp in
    /// milliseconds, if known) has been handed to a write.
    pub fn hand_off(&mut self, partition: &PartitionKey, offset: i64, time_ms: Option<i64>) {
        self.entry(partition).hand_off(offset, time_ms);
    }

    /// [`hand_off`](Self::hand_off) for a run of records of `partition` (offsets with
    /// their times), with one look-up of the partition for all of them.
    pub fn hand_off_run(
        &mut self,
        partition: &PartitionKey,
        run: impl IntoIterator<Item = (i64, Option<i64>)>,
    ) {
        let p = self.entry(partition);
        for (offset, time_ms) in run {
            p.hand_off(offset, time_ms);
        }
    }

    /// The offset below which every handed-off record of `partition` is settled: written
    /// or dead-lettered.
    pub fn settled_below(&self, partition: &PartitionKey) -> Option<i64> {
        let p = self.partitions.get(partition)?;
        let after_handed_off = p.handed_off? + 1;
        Some(match p.blocked.first_key_value() {
            Some((&lowest_blocked, _)) => lowest_blocked.min(after_handed_off),
            None => after_handed_off,
        })
    }

    /// The offset to commit for `partition` (the next one to read), when it moved past
    /// the last commit.
    pub fn committable(&self, partition: &PartitionKey) -> Option<i64> {
        let next = self.settled_below(partition)?;
        match self.partitions.get(partition)?.committed {
            Some(c) if c >= next => None,
            _ => Some(next),
        }
    }

    /// The last offset committed for `partition` by this tracker.
    pub fn committed_offset(&self, partition: &PartitionKey) -> Option<i64> {
        self.partitions.get(partition)?.committed
    }

    /// Every partition with an offset to commit.
    pub fn all_committable(&self) -> Vec<(PartitionKey, i64)> {
        self.partitions
            .keys()
            .filter_map(|k| self.committable(k).map(|o| (k.clone(), o)))
            .collect()
    }

    /// Records that `offset` was committed for `partition`.
    pub fn committed(&mut self, partition: &PartitionKey, offset: i64) {
        let p = self.entry(partition);
        p.committed = Some(p.committed.map_or(offset, |c| c.max(offset)));
        while let Some(&(o, t)) = p.times.front() {
            if o >= offset {
                break;
            }
            p.committed_time_ms = Some(t);
            p.times.pop_front();
        }
    }

    /// The time (ms since the epoch) of the newest sampled record below the committed
    /// offset: the base of event-time lag.
    pub fn committed_time_ms(&self, partition: &PartitionKey) -> Option<i64> {
        self.partitions.get(partition)?.committed_time_ms
    }

    /// Whether any write holding records of `partition` is unfinished.
    pub fn is_blocked(&self, partition: &PartitionKey) -> bool {
        self.partitions
            .get(partition)
            .is_some_and(|p| !p.blocked.is_empty())
    }

    /// Whether any write at all is unfinished.
    pub fn any_blocked(&self) -> bool {
        self.partitions.values().any(|p| !p.blocked.is_empty())
    }

    /// Forgets a partition that left this consumer.
    pub fn forget(&mut self, partition: &PartitionKey) {
        self.partitions.remove(partition);
    }

    fn entry(&mut self, partition: &PartitionKey) -> &mut Partition {
        // `entry` would clone the key (an `Arc` increment) on every call; a partition is
        // new only once.
        if !self.partitions.contains_key(partition) {
            self.partitions
                .insert(partition.clone(), Partition::default());
        }
        self.partitions
            .get_mut(partition)
            .expect("the partition was inserted just above")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p0() -> PartitionKey {
        PartitionKey::new("t", 0)
    }

    #[test]
    fn nothing_is_committable_before_a_hand_off() {
        let mut p = Progress::new();
        assert_eq!(p.committable(&p0()), None);
        p.block(&p0(), 0);
        assert_eq!(p.committable(&p0()), None);
    }

    #[test]
    fn only_the_acknowledged_unbroken_prefix_is_committable() {
        let mut p = Progress::new();
        // Batch A holds 0..100, batch B 100..200; both in flight.
        p.block(&p0(), 0);
        for o in 0..100 {
            p.hand_off(&p0(), o, None);
        }
        p.block(&p0(), 100);
        for o in 100..200 {
            p.hand_off(&p0(), o, None);
        }
        assert_eq!(p.committable(&p0()), Some(0));
        // B finishes first: A still holds 0.
        p.unblock(&p0(), 100);
        assert_eq!(p.committable(&p0()), Some(0));
        p.unblock(&p0(), 0);
        assert_eq!(p.committable(&p0()), Some(200));
        p.committed(&p0(), 200);
        assert_eq!(p.committable(&p0()), None);
        assert!(!p.any_blocked());
    }

    #[test]
    fn a_dead_letter_write_blocks_its_record() {
        let mut p = Progress::new();
        p.hand_off(&p0(), 0, None);
        p.block(&p0(), 1);
        p.hand_off(&p0(), 1, None);
        p.hand_off(&p0(), 2, None);
        assert_eq!(p.committable(&p0()), Some(1));
        p.unblock(&p0(), 1);
        assert_eq!(p.committable(&p0()), Some(3));
    }

    #[test]
    fn two_writes_from_the_same_offset_both_block() {
        let mut p = Progress::new();
        p.block(&p0(), 5);
        p.block(&p0(), 5);
        p.hand_off(&p0(), 9, None);
        p.unblock(&p0(), 5);
        assert_eq!(p.committable(&p0()), Some(5));
        p.unblock(&p0(), 5);
        assert_eq!(p.committable(&p0()), Some(10));
    }

    #[test]
    fn a_run_is_handed_off_as_its_records_one_by_one() {
        let (mut one_by_one, mut as_run) = (Progress::new(), Progress::new());
        for o in 0..150 {
            one_by_one.hand_off(&p0(), o, Some(1_000 + o));
        }
        as_run.hand_off_run(&p0(), (0..100).map(|o| (o, Some(1_000 + o))));
        as_run.hand_off_run(&p0(), (100..150).map(|o| (o, Some(1_000 + o))));
        for p in [&mut one_by_one, &mut as_run] {
            assert_eq!(p.committable(&p0()), Some(150));
            p.committed(&p0(), 140);
        }
        assert_eq!(as_run.committed_time_ms(&p0()), Some(1_128));
        assert_eq!(one_by_one.committed_time_ms(&p0()), Some(1_128));
    }

    #[test]
    fn committed_time_follows_the_commit() {
        let mut p = Progress::new();
        for o in 0..200 {
            p.hand_off(&p0(), o, Some(1_000 + o));
        }
        assert_eq!(p.committed_time_ms(&p0()), None);
        p.committed(&p0(), 100);
        // Sampled every 64 offsets: the newest sample below 100 is offset 64.
        assert_eq!(p.committed_time_ms(&p0()), Some(1_064));
        p.committed(&p0(), 200);
        assert_eq!(p.committed_time_ms(&p0()), Some(1_192));
    }
}
