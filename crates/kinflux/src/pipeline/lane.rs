//! A lane: the records of a set of partitions, from the fetch to the commit. It owns the
//! ingest (decoder, enrichment, open batch), the settlement of its writes, the records
//! it retains and the commit progress of its partitions; it shares the write slots, the
//! dead-letter producer and the metrics with any other lane, and leaves the consumer
//! (the group membership, commits, seeks) to its owner.
//!
//! Nothing in it refers to another lane's partitions: the pipeline runs several side by
//! side, each on its own task (`task.rs`), each fed the records of its partitions.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use kinflux_batch::RecordId;
use kinflux_influx::CancellationToken;
use kinflux_kafka::{PartitionKey, Record, UndecodableBatch};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinError;
use tracing::{error, warn};

use super::PipelineError;
use super::held::Held;
use super::ingest::{Ingest, record_time};
use super::retained::Retained;
use super::route::Route;
use super::settlement::{Done, ErrorClass, Judged, Outgoing, Settlement, Verdict, judge};
use crate::decode::DecodeFailure;
use crate::metrics::Metrics;
use crate::progress::Progress;

/// The state of one set of partitions.
#[derive(Debug)]
pub(super) struct Lane {
    ingest: Ingest,
    settlement: Settlement,
    retained: Retained,
    progress: Progress,
    /// The partitions this lane holds now.
    owned: HashSet<PartitionKey>,
    /// Fetched records not taken yet: the rest of a fetch, held while a batch waits for a
    /// write slot, so that no more batches pile up than one.
    held: Held,
    /// Stop taking records while the retained ones take this much memory.
    max_retained_bytes: usize,
    metrics: Arc<Metrics>,
    /// Records, bytes and points taken since the metrics were last told: counted here
    /// and added once per fetch, since the metrics' atomics are shared by every lane.
    taken: Taken,
    fatal: Option<PipelineError>,
}

#[derive(Debug, Default)]
struct Taken {
    records: u64,
    bytes: u64,
    points: u64,
}

impl Lane {
    pub(super) fn new(
        ingest: Ingest,
        settlement: Settlement,
        max_retained_bytes: usize,
        metrics: Arc<Metrics>,
    ) -> Self {
        Lane {
            ingest,
            settlement,
            retained: Retained::default(),
            progress: Progress::new(),
            owned: HashSet::new(),
            held: Held::default(),
            max_retained_bytes,
            metrics,
            taken: Taken::default(),
            fatal: None,
        }
    }

    /// Whether the lane wants another fetch: not while it holds records, a batch waits
    /// for a write slot, or its retained records fill their budget.
    pub(super) fn can_take(&self) -> bool {
        self.held.is_empty()
            && !self.settlement.has_waiting()
            && self.retained.bytes() < self.max_retained_bytes
    }

    /// Whether fetched records wait to be taken.
    pub(super) fn holds_records(&self) -> bool {
        !self.held.is_empty()
    }

    /// Whether held records can be taken now (no batch waits for a slot).
    pub(super) fn can_take_held(&self) -> bool {
        !self.held.is_empty() && !self.settlement.has_waiting()
    }

    /// Takes fetched records (of one partition, in offset order, with their footprint
    /// summed), until a batch has to wait for a write slot; the rest are held for
    /// [`take_held`](Self::take_held).
    pub(super) async fn take(
        &mut self,
        records: Vec<Record>,
        footprint: usize,
        stop: &CancellationToken,
    ) {
        self.held.push(records, footprint);
        self.take_held(stop).await;
    }

    /// Takes held records until none is left or a batch waits for a write slot. When
    /// `stop` fires while a record waits to be decoded, that record and the ones after it
    /// stay held (and are never taken: the loop drains next).
    pub(super) async fn take_held(&mut self, stop: &CancellationToken) {
        // The records of the front chunk taken before the ones taken now were handed
        // off then; the ones taken now are handed off together, when their chunk is all
        // taken or the taking stops (nothing reads the progress meanwhile).
        let mut run_start = self.held.taken().len();
        while !self.settlement.has_waiting() {
            let Some(record) = self.held.next() else {
                break;
            };
            let outcome = take_one(
                &mut self.ingest,
                &mut self.progress,
                &mut self.taken,
                record,
                stop,
            )
            .await;
            if let Some((record, failure)) = outcome.failed {
                self.fail(record, failure.class, failure.message, failure.bad_part);
            }
            for outgoing in outcome.ready {
                self.settlement.submit(outgoing);
            }
            if outcome.interrupted {
                break;
            }
            if let Some(chunk) = self.held.advance() {
                hand_off(&mut self.progress, &chunk.records[run_start..]);
                self.retained.keep(chunk);
                run_start = 0;
            }
        }
        hand_off(&mut self.progress, &self.held.taken()[run_start..]);
        let taken = std::mem::take(&mut self.taken);
        self.metrics.records_in(taken.records, taken.bytes);
        self.metrics.points_decoded(taken.points);
    }

    /// Closes the open batches and sends them (or queues them for a write slot).
    pub(super) fn flush(&mut self) {
        for outgoing in self.ingest.flush(&mut self.progress) {
            self.settlement.submit(outgoing);
        }
    }

    pub(super) fn batch_deadline(&self) -> Option<Instant> {
        self.ingest.deadline()
    }

    pub(super) fn has_open_batch(&self) -> bool {
        self.ingest.has_open_batch()
    }

    /// Whether a batch waits for a write slot.
    pub(super) fn wants_slot(&self) -> bool {
        self.settlement.has_waiting()
    }

    /// The write slots the first waiting batch needs (its target's), while one waits.
    pub(super) fn waiting_slots(&self) -> Option<Arc<Semaphore>> {
        self.settlement.waiting_slots()
    }

    /// Starts the first waiting batch with `permit`, one of its [`waiting_slots`].
    ///
    /// [`waiting_slots`]: Self::waiting_slots
    pub(super) fn start_waiting(&mut self, permit: OwnedSemaphorePermit) {
        self.settlement.start_waiting(permit);
    }

    pub(super) fn has_writes(&self) -> bool {
        self.settlement.has_tasks()
    }

    /// Nothing held, open, waiting or in flight.
    pub(super) fn is_idle(&self) -> bool {
        self.held.is_empty() && !self.has_writes() && !self.wants_slot() && !self.has_open_batch()
    }

    pub(super) async fn next_done(&mut self) -> Option<Result<Done, JoinError>> {
        self.settlement.next_done().await
    }

    /// Cancels the writes in flight and gives up the waiting batches: draining ran out of
    /// time. Their records stay uncommitted.
    pub(super) fn abort(&mut self) {
        self.settlement.abort();
        let n = self.settlement.abandon_waiting();
        if n > 0 {
            warn!(
                batches = n,
                "batches never written; they are read again on restart"
            );
        }
    }

    pub(super) fn is_aborted(&self) -> bool {
        self.settlement.is_aborted()
    }

    /// The first fatal error, once.
    pub(super) fn take_fatal(&mut self) -> Option<PipelineError> {
        self.fatal.take()
    }

    /// Acts on a write that ended.
    pub(super) fn settle(&mut self, done: Result<Done, JoinError>) {
        match done {
            Ok(Done::Write {
                outgoing,
                result,
                elapsed,
            }) => {
                self.metrics.observe_write_latency(elapsed);
                let batch = &outgoing.batch;
                match judge(batch, result, outgoing.route != Route::default()) {
                    Judged::Answered {
                        written,
                        dropped,
                        refused,
                    } => {
                        self.metrics.batch_written(
                            written,
                            dropped,
                            batch.body().len(),
                            batch.merged(),
                        );
                        for (id, reason) in refused {
                            let reason = self.settlement.name_target(outgoing.target, reason);
                            self.fail_by_id(&id, ErrorClass::Rejected, reason);
                        }
                    }
                    Judged::Failed { records, message } => {
                        let message = self.settlement.name_target(outgoing.target, message);
                        for id in records {
                            self.fail_by_id(&id, ErrorClass::WriteFailed, message.clone());
                        }
                    }
                    Judged::Cancelled => return,
                    Judged::Fatal(e) => {
                        self.fatal.get_or_insert(e);
                        return;
                    }
                }
                for (partition, offset) in outgoing.blocks {
                    self.unblock(&partition, offset);
                }
            }
            Ok(Done::DeadLetter {
                partition,
                offset,
                class,
                result,
            }) => match result {
                Ok(()) => {
                    self.metrics.dead_lettered(class);
                    self.unblock(&partition, offset);
                }
                Err(e) => {
                    error!(topic = %partition.topic, partition = partition.partition, offset, error = %e, "dead-letter write failed for good");
                    self.fatal.get_or_insert(PipelineError::DeadLetter(e));
                }
            },
            Err(e) => {
                self.fatal
                    .get_or_insert(PipelineError::Internal(format!("a write task failed: {e}")));
            }
        }
    }

    fn unblock(&mut self, partition: &PartitionKey, offset: i64) {
        self.progress.unblock(partition, offset);
        if let Some(below) = self.progress.settled_below(partition) {
            self.retained.release_below(partition, below);
        }
    }

    fn fail_by_id(&mut self, id: &RecordId, class: ErrorClass, message: String) {
        let partition = PartitionKey::new(id.topic.clone(), id.partition);
        let kept = (self.retained.get(&partition, id.offset))
            .or_else(|| self.held.get_taken(&partition, id.offset));
        match kept.cloned() {
            Some(record) => self.fail(record, class, message, None),
            None if !self.owned.contains(&partition) => {
                warn!(topic = %id.topic, partition = id.partition, offset = id.offset, "refused record of a partition that left; its next owner reads it again");
            }
            None => {
                self.fatal.get_or_insert(PipelineError::Internal(format!(
                    "record {}/{}@{} was refused but is no longer held",
                    id.topic, id.partition, id.offset
                )));
            }
        }
    }

    /// A record that cannot be written: dead-lettered, dropped or stopped at, as
    /// `dead_letter.on_error` says.
    fn fail(
        &mut self,
        record: Record,
        class: ErrorClass,
        message: String,
        bad_part: Option<Vec<u8>>,
    ) {
        let partition = record.partition_key();
        let offset = record.offset;
        match self.settlement.fail(record, class, message, bad_part) {
            Verdict::DeadLettering => self.progress.block(&partition, offset),
            Verdict::Dropped => self.metrics.record_dropped(),
            Verdict::Stop(e) => {
                // Blocked for good: nothing at or after it is committed.
                self.progress.block(&partition, offset);
                self.fatal.get_or_insert(e);
            }
        }
    }

    /// The consumer moved `partition` to `next_offset` over offsets without records for
    /// us (transaction markers, aborted transactions): they count as handed off. The run
    /// loop takes no message while records are held, so every record before it was taken.
    pub(super) fn advance(&mut self, partition: &PartitionKey, next_offset: i64) {
        self.progress.hand_off(partition, next_offset - 1, None);
    }

    /// A record batch the consumer could not decode: counted, logged by the consumer, then
    /// dead-lettered as one record holding the batch's bytes (its offsets blocked until
    /// that write lands), dropped, or stopped at, as `dead_letter.on_error` says.
    pub(super) fn undecodable(&mut self, batch: UndecodableBatch) {
        self.metrics.fetch_error(batch.error.kind());
        let partition = batch.partition.clone();
        let message = format!(
            "record batch at offsets {}..={} cannot be decoded: {}",
            batch.base_offset, batch.last_offset, batch.error
        );
        let timestamp_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let record = Record {
            topic: Arc::clone(&partition.topic),
            partition: partition.partition,
            offset: batch.base_offset,
            key: None,
            value: Some(batch.bytes.clone()),
            headers: Vec::new(),
            timestamp_ms,
        };
        self.fail(record, ErrorClass::Fetch, message, None);
        self.progress.hand_off(&partition, batch.last_offset, None);
    }

    /// A partition assigned to this lane.
    pub(super) fn adopt(&mut self, partition: PartitionKey) {
        self.owned.insert(partition);
    }

    /// Whether `partition` is this lane's now.
    pub(super) fn owns(&self, partition: &PartitionKey) -> bool {
        self.owned.contains(partition)
    }

    pub(super) fn owned(&self) -> impl Iterator<Item = &PartitionKey> {
        self.owned.iter()
    }

    /// Whether a write holding records of `partition` is unfinished.
    pub(super) fn is_blocked(&self, partition: &PartitionKey) -> bool {
        self.progress.is_blocked(partition)
    }

    /// Drops, unwritten, everything held of `lost` partitions, whose group membership was
    /// lost: they belong to another member already, which reads them again from the last
    /// commit (nothing of them is committed from here). Open and waiting batches with
    /// points of them are dropped whole (a lost membership loses every partition at once,
    /// so no batch mixes them with kept ones). Writes spawned but held back since the
    /// membership looked lost end unwritten; writes already sent cannot be called back.
    /// Then the partitions are forgotten.
    pub(super) fn drop_lost(&mut self, lost: &[PartitionKey]) {
        if lost.is_empty() {
            return;
        }
        let is_lost = |o: &Outgoing| o.blocks.iter().any(|(p, _)| lost.contains(p));
        self.settlement.cancel_lost_writes();
        let mut dropped = self.settlement.drop_waiting(is_lost);
        for outgoing in self.ingest.flush(&mut self.progress) {
            if is_lost(&outgoing) {
                dropped += 1;
            } else {
                self.settlement.submit(outgoing);
            }
        }
        for p in lost {
            self.release(p);
        }
        warn!(
            partitions = ?lost,
            batches = dropped,
            "group membership lost: dropped the unwritten batches of its partitions; their new owner reads them again"
        );
    }

    /// Keeps fetched records without taking them (while the membership may be lost).
    pub(super) fn hold(&mut self, records: Vec<Record>, footprint: usize) {
        self.held.push(records, footprint);
    }

    /// Forgets a partition that left (after its last commit).
    pub(super) fn release(&mut self, partition: &PartitionKey) {
        self.held.forget(partition);
        self.progress.forget(partition);
        self.retained.forget(partition);
        self.owned.remove(partition);
    }

    /// The offsets to commit: for each partition held, the next offset below which every
    /// record is settled, where it moved since the last commit.
    pub(super) fn committable(&self) -> Vec<(PartitionKey, i64)> {
        self.progress
            .all_committable()
            .into_iter()
            .filter(|(p, _)| self.owned.contains(p))
            .collect()
    }

    /// Records a commit of `offset` for `partition`.
    pub(super) fn committed(&mut self, partition: &PartitionKey, offset: i64) {
        self.progress.committed(partition, offset);
    }

    pub(super) fn committed_time_ms(&self, partition: &PartitionKey) -> Option<i64> {
        self.progress.committed_time_ms(partition)
    }
}

/// What taking one record gave.
#[derive(Default)]
struct TakeOne {
    /// Batches that filled meanwhile: they must be written, even when `interrupted`
    /// (then they hold points of earlier records only).
    ready: Vec<Outgoing>,
    /// A copy of the record, with why, when some of it cannot be written.
    failed: Option<(Record, DecodeFailure)>,
    /// `stop` fired while the record waited to be decoded: it is not taken, and stays
    /// held.
    interrupted: bool,
}

/// Takes `record` into `ingest`'s open batches. A function of the lane's parts, not a
/// method, so that `record` can stay borrowed from the lane's held chunk.
async fn take_one(
    ingest: &mut Ingest,
    progress: &mut Progress,
    taken: &mut Taken,
    record: &Record,
    stop: &CancellationToken,
) -> TakeOne {
    let Some(value_len) = record.value.as_ref().map(|v| v.len()) else {
        // A tombstone carries no point.
        taken.records += 1;
        return TakeOne::default();
    };
    let ingested = ingest.take(record, progress, stop).await;
    if ingested.interrupted {
        return TakeOne {
            ready: ingested.ready,
            interrupted: true,
            ..TakeOne::default()
        };
    }
    taken.records += 1;
    taken.bytes += value_len as u64;
    taken.points += ingested.points;
    TakeOne {
        ready: ingested.ready,
        failed: ingested.failure.map(|f| (record.clone(), f)),
        interrupted: false,
    }
}

/// Hands off `records`, all taken, of one partition in offset order.
fn hand_off(progress: &mut Progress, records: &[Record]) {
    let Some(first) = records.first() else {
        return;
    };
    let run = records
        .iter()
        .map(|r| (r.offset, record_time(r).map(|t| t.as_nanos() / 1_000_000)));
    progress.hand_off_run(&first.partition_key(), run);
}
