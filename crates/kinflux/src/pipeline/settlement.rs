//! Settlement: what becomes of the records once the ingest lets go of them. Batches are
//! written to InfluxDB through the shared write slots, bad records go to the dead-letter
//! topic (or are dropped, or stop the pipeline), and each answer is judged here: what a
//! failure means, and which records it concerns.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kinflux_backoff::{Backoff, BackoffConfig, RetryLog};
use kinflux_batch::{Batch, RecordId};
use kinflux_influx::{CancellationToken, LineBatch, WriteError, WriteOutcome, Writer};
use kinflux_kafka::{DeadLetterProducer, DeadLetterReason, MembershipProbe, PartitionKey, Record};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinError, JoinSet};
use tracing::{error, warn};

use super::PipelineError;
use super::route::Route;
use crate::config::OnError;

/// Why a record went to the dead-letter topic (or was dropped): the
/// `kinflux.error.class` header and the `class` label of the dead-letter counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ErrorClass {
    /// The record could not be decoded (bad line protocol, corrupt Avro, bad JSON).
    Decode,
    /// The record's schema is unknown or lacks a mapped field.
    Schema,
    /// InfluxDB refused the record's line (partial write, type conflict).
    Rejected,
    /// InfluxDB refused the whole batch for good (permissions, missing database).
    WriteFailed,
    /// A Kafka record batch could not be decoded (unknown codec, corrupt compressed bytes,
    /// bad CRC): its raw bytes stand for its records.
    Fetch,
}

impl ErrorClass {
    /// Every class, in label order.
    pub const ALL: [ErrorClass; 5] = [
        ErrorClass::Decode,
        ErrorClass::Schema,
        ErrorClass::Rejected,
        ErrorClass::WriteFailed,
        ErrorClass::Fetch,
    ];

    /// The label and header value: `decode`, `schema`, `rejected`, `write_failed`,
    /// `fetch`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Decode => "decode",
            ErrorClass::Schema => "schema",
            ErrorClass::Rejected => "rejected",
            ErrorClass::WriteFailed => "write_failed",
            ErrorClass::Fetch => "fetch",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// The InfluxDB writer and its write slots, shared by everything that writes batches: at
/// most `concurrency` batches are written at once, whoever sends them.
#[derive(Debug, Clone)]
pub(crate) struct WritePool {
    /// The target's name, which its retries are counted under.
    name: Arc<str>,
    writer: Writer,
    slots: Arc<Semaphore>,
}

impl WritePool {
    pub(crate) fn new(name: &str, writer: Writer, concurrency: usize) -> Self {
        WritePool {
            name: name.into(),
            writer,
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn writer(&self) -> &Writer {
        &self.writer
    }

    /// The slots, to wait for one without borrowing the pool.
    pub(crate) fn slots(&self) -> Arc<Semaphore> {
        self.slots.clone()
    }
}

/// A flushed batch, the offsets it blocks until it is settled, and where it goes: the
/// index of its target, and the database (or bucket) and retention policy on it.
#[derive(Debug)]
pub(super) struct Outgoing {
    pub(super) batch: Batch,
    pub(super) blocks: Vec<(PartitionKey, i64)>,
    pub(super) target: usize,
    pub(super) route: Route,
}

/// What a write task reports back.
#[derive(Debug)]
pub(super) enum Done {
    /// A batch write to InfluxDB ended.
    Write {
        /// Boxed: a `Batch` is most of the enum's size, and a dead letter's report
        /// should not carry its room.
        outgoing: Box<Outgoing>,
        result: Result<WriteOutcome, WriteError>,
        elapsed: Duration,
    },
    /// A record was written to the dead-letter topic (or that failed for good).
    DeadLetter {
        partition: PartitionKey,
        offset: i64,
        class: ErrorClass,
        result: Result<(), kinflux_kafka::Error>,
    },
}

/// What an InfluxDB answer means for a batch's records.
#[derive(Debug)]
pub(super) enum Judged {
    /// InfluxDB answered: `written` lines stored, `dropped` points dropped without being
    /// named, and these records' lines refused (each to be failed as `Rejected`).
    Answered {
        written: usize,
        dropped: usize,
        refused: Vec<(RecordId, String)>,
    },
    /// The whole batch failed for good: every record fails as `WriteFailed`.
    Failed {
        records: Vec<RecordId>,
        message: String,
    },
    /// Draining ran out of time: the records stay uncommitted and are read again by
    /// whoever owns their partitions next.
    Cancelled,
    /// No record can be written until the configuration changes.
    Fatal(PipelineError),
}

/// Decides what a write's result means. `routed`: the batch went to a database, bucket or
/// retention policy a tag or the topic chose, where a missing one concerns only its
/// records (a typo in a tag must not stop the pipeline) and fails them.
pub(super) fn judge(
    batch: &Batch,
    result: Result<WriteOutcome, WriteError>,
    routed: bool,
) -> Judged {
    match result {
        Ok(outcome) => {
            let mut refused: Vec<(RecordId, String)> = Vec::new();
            for line in outcome.rejected() {
                for id in batch.records_of_line(line.index) {
                    if !refused.iter().any(|(f, _)| *f == id) {
                        refused.push((id, format!("line refused by InfluxDB: {}", line.reason)));
                    }
                }
            }
            let dropped = match &outcome {
                WriteOutcome::Partial(p) => p.unattributed.as_ref().map_or(0, |d| {
                    warn!(points = d.count, reason = %d.reason, "InfluxDB dropped points without naming them; their records cannot be dead-lettered");
                    d.count
                }),
                _ => 0,
            };
            Judged::Answered {
                written: outcome.written(),
                dropped,
                refused,
            }
        }
        Err(WriteError::Cancelled) => Judged::Cancelled,
        Err(e @ WriteError::NotFound { .. }) if routed => failed(batch, &e),
        Err(e @ (WriteError::Refused { .. } | WriteError::GaveUp { .. })) => failed(batch, &e),
        Err(e) => {
            // Credentials, a missing database, a bad URL.
            error!(error = %e, "InfluxDB refuses every write; stopping");
            Judged::Fatal(PipelineError::Influx(e))
        }
    }
}

/// The whole batch failed for good.
fn failed(batch: &Batch, e: &WriteError) -> Judged {
    warn!(error = %e, lines = batch.line_count(), "InfluxDB did not take a batch");
    let mut records: Vec<RecordId> = (0..batch.line_count())
        .flat_map(|l| batch.records_of_line(l))
        .collect();
    records.sort();
    records.dedup();
    Judged::Failed {
        records,
        message: e.to_string(),
    }
}

/// Waits while `membership` says it is lost: `true` when it is kept after all (the write
/// may be sent), `false` when `lost_writes` or `abort` fired first (it must not be).
async fn wait_while_lost(
    membership: &MembershipProbe,
    lost_writes: &CancellationToken,
    abort: &CancellationToken,
) -> bool {
    /// How often a held-back write looks at the membership again (the probe has no
    /// notification: it compares the last heartbeat's time with the session timeout).
    const RECHECK: Duration = Duration::from_millis(20);
    while membership.lost() {
        tokio::select! {
            () = lost_writes.cancelled() => return false,
            () = abort.cancelled() => return false,
            () = tokio::time::sleep(RECHECK) => {}
        }
    }
    true
}

/// What `dead_letter.on_error` made of a bad record.
#[derive(Debug)]
pub(super) enum Verdict {
    /// A dead-letter write started: its offset stays blocked until it is done.
    DeadLettering,
    /// Dropped and counted.
    Dropped,
    /// The pipeline stops; the record blocks its offset for good.
    Stop(PipelineError),
}

/// The waits between attempts to write a record to the dead-letter topic.
const DEAD_LETTER_RETRY: BackoffConfig =
    BackoffConfig::new(Duration::from_millis(100), Duration::from_secs(30));

/// Writes in flight to InfluxDB and the dead-letter topic, and batches waiting for a slot.
#[derive(Debug)]
pub(super) struct Settlement {
    /// One per target, in the order of [`Outgoing::target`].
    pools: Vec<WritePool>,
    /// The writers of routed databases, buckets and retention policies, made once.
    routed: HashMap<(usize, Route), Writer>,
    dead_letters: Option<Arc<DeadLetterProducer>>,
    on_error: OnError,
    /// Cancels writes in flight; fired only when draining takes too long.
    abort: CancellationToken,
    tasks: JoinSet<Done>,
    /// Batches waiting for a write slot. Consumption stops while there are any: that is
    /// the backpressure.
    waiting: VecDeque<Outgoing>,
    /// One log for every dead-letter task's retries: an outage is one streak of warnings.
    dead_letter_log: RetryLog,
    /// While the group membership is (most likely) lost, batches wait instead of being
    /// written: they may be dropped as lost next.
    membership: Option<MembershipProbe>,
    /// Fired when the lane drops the batches of a lost membership: writes that were
    /// spawned before the process stopped, and held back since, end unwritten.
    lost_writes: CancellationToken,
}

impl Settlement {
    pub(super) fn new(
        pools: Vec<WritePool>,
        dead_letters: Option<Arc<DeadLetterProducer>>,
        on_error: OnError,
        abort: CancellationToken,
    ) -> Self {
        Settlement {
            pools,
            routed: HashMap::new(),
            dead_letters,
            on_error,
            abort,
            tasks: JoinSet::new(),
            waiting: VecDeque::new(),
            dead_letter_log: RetryLog::new(),
            membership: None,
            lost_writes: CancellationToken::new(),
        }
    }

    /// Holds batches back while `membership` says it is lost.
    pub(super) fn with_membership(mut self, membership: MembershipProbe) -> Self {
        self.membership = Some(membership);
        self
    }

    fn membership_lost(&self) -> bool {
        self.membership.as_ref().is_some_and(MembershipProbe::lost)
    }

    /// Starts writing `outgoing` when a slot is free, or queues it.
    pub(super) fn submit(&mut self, outgoing: Outgoing) {
        if self.waiting.is_empty() && !self.membership_lost() {
            if let Ok(permit) = self.pools[outgoing.target]
                .slots
                .clone()
                .try_acquire_owned()
            {
                self.spawn_write(outgoing, permit);
                return;
            }
        }
        self.waiting.push_back(outgoing);
    }

    /// Starts the first waiting batch with a slot just acquired.
    pub(super) fn start_waiting(&mut self, permit: OwnedSemaphorePermit) {
        if let Some(outgoing) = self.waiting.pop_front() {
            self.spawn_write(outgoing, permit);
        }
    }

    /// Drops the waiting batches `which` picks (of partitions whose membership was lost);
    /// how many.
    pub(super) fn drop_waiting(&mut self, which: impl Fn(&Outgoing) -> bool) -> usize {
        let before = self.waiting.len();
        self.waiting.retain(|o| !which(o));
        before - self.waiting.len()
    }

    /// Ends, unwritten, the writes held back while the membership is lost (their batches'
    /// partitions are being dropped as lost). Later writes are not affected.
    pub(super) fn cancel_lost_writes(&mut self) {
        self.lost_writes.cancel();
        self.lost_writes = CancellationToken::new();
    }

    /// Gives up the batches still waiting (at the drain deadline): their offsets stay
    /// blocked, so nothing at or after them is committed.
    pub(super) fn abandon_waiting(&mut self) -> usize {
        let n = self.waiting.len();
        self.waiting.clear();
        n
    }

    /// `reason`, naming the target it concerns when there are several (so a dead letter
    /// says which InfluxDB refused it).
    pub(super) fn name_target(&self, target: usize, reason: String) -> String {
        match self.pools.get(target) {
            Some(pool) if self.pools.len() > 1 => format!("target {}: {reason}", pool.name()),
            _ => reason,
        }
    }

    /// The write slots of the first waiting batch's target.
    pub(super) fn waiting_slots(&self) -> Option<Arc<Semaphore>> {
        let first = self.waiting.front()?;
        Some(self.pools[first.target].slots())
    }

    pub(super) fn has_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    pub(super) fn has_tasks(&self) -> bool {
        !self.tasks.is_empty()
    }

    /// The next write that ended; `None` when none is in flight.
    pub(super) async fn next_done(&mut self) -> Option<Result<Done, JoinError>> {
        self.tasks.join_next().await
    }

    /// Cancels every write in flight (they end with `Cancelled`).
    pub(super) fn abort(&self) {
        self.abort.cancel();
    }

    pub(super) fn is_aborted(&self) -> bool {
        self.abort.is_cancelled()
    }

    /// The writer of a batch's target and route.
    fn writer_of(&mut self, outgoing: &Outgoing) -> Result<Writer, WriteError> {
        let base = &self.pools[outgoing.target].writer;
        if outgoing.route == Route::default() {
            return Ok(base.clone());
        }
        let key = (outgoing.target, outgoing.route.clone());
        if let Some(w) = self.routed.get(&key) {
            return Ok(w.clone());
        }
        let r = &outgoing.route;
        let writer = base.routed(r.database.as_deref(), r.retention_policy.as_deref())?;
        self.routed.insert(key, writer.clone());
        Ok(writer)
    }

    fn spawn_write(&mut self, outgoing: Outgoing, permit: OwnedSemaphorePermit) {
        let writer = self.writer_of(&outgoing);
        let batch = &outgoing.batch;
        let starts = batch.line_starts().iter().map(|&s| s as usize).collect();
        let lines = LineBatch::with_line_starts(batch.body().clone(), starts);
        let membership = self.membership.clone();
        let (lost_writes, abort) = (self.lost_writes.clone(), self.abort.clone());
        self.tasks.spawn(async move {
            let started = Instant::now();
            // Spawned, then the process was stopped past the session timeout (SIGSTOP, a
            // stalled host) before this task ran: the partitions are most likely another
            // member's now. Wait for a heartbeat to say otherwise, or for the lane to drop
            // them; a write already on the wire cannot be called back, one not yet sent can.
            let dropped = match &membership {
                Some(m) => !wait_while_lost(m, &lost_writes, &abort).await,
                None => false,
            };
            let result = match writer {
                _ if dropped => Err(WriteError::Cancelled),
                Ok(writer) => writer.write(lines).await,
                Err(e) => Err(e),
            };
            drop(permit);
            Done::Write {
                outgoing: Box::new(outgoing),
                result,
                elapsed: started.elapsed(),
            }
        });
    }

    /// Acts on a record that cannot be written, as `dead_letter.on_error` says.
    pub(super) fn fail(
        &mut self,
        mut record: Record,
        class: ErrorClass,
        message: String,
        bad_part: Option<Vec<u8>>,
    ) -> Verdict {
        let partition = record.partition_key();
        let offset = record.offset;
        match (self.on_error, &self.dead_letters) {
            (OnError::DeadLetter, Some(producer)) => {
                let producer = producer.clone();
                let abort = self.abort.clone();
                let log = self.dead_letter_log.clone();
                if let Some(part) = bad_part {
                    record.value = Some(Bytes::from(part));
                }
                let reason = DeadLetterReason::new(class.as_str(), message);
                self.tasks.spawn(async move {
                    let result = send_dead_letter(&producer, &record, &reason, &abort, log).await;
                    Done::DeadLetter {
                        partition,
                        offset,
                        class,
                        result,
                    }
                });
                Verdict::DeadLettering
            }
            (OnError::Stop, _) => {
                error!(topic = %partition.topic, partition = partition.partition, offset, class = class.as_str(), %message, "stopping on a record that cannot be written");
                Verdict::Stop(PipelineError::Stopped {
                    topic: partition.topic.to_string(),
                    partition: partition.partition,
                    offset,
                    reason: message,
                })
            }
            _ => {
                warn!(topic = %partition.topic, partition = partition.partition, offset, class = class.as_str(), %message, "dropping a record that cannot be written");
                Verdict::Dropped
            }
        }
    }
}

/// Writes one record to the dead-letter topic, retrying what can be retried until it
/// lands or the pipeline is aborted.
async fn send_dead_letter(
    producer: &DeadLetterProducer,
    record: &Record,
    reason: &DeadLetterReason,
    abort: &CancellationToken,
    log: RetryLog,
) -> Result<(), kinflux_kafka::Error> {
    retry_dead_letter(|| producer.send(record, reason), abort, log).await
}

/// The retry loop of [`send_dead_letter`]: `send` again after a retryable error, with
/// the waits and the rate-limited log of a [`Backoff`], until it succeeds, fails for
/// good, or `abort` fires.
async fn retry_dead_letter<F, Fut>(
    mut send: F,
    abort: &CancellationToken,
    log: RetryLog,
) -> Result<(), kinflux_kafka::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(i32, i64), kinflux_kafka::Error>>,
{
    let mut backoff: Option<Backoff> = None;
    loop {
        match send().await {
            Ok(_) => {
                if let Some(backoff) = &mut backoff {
                    backoff.succeeded();
                }
                return Ok(());
            }
            Err(e) if e.is_retryable() => {
                let backoff = backoff.get_or_insert_with(|| {
                    Backoff::with_log(DEAD_LETTER_RETRY, "dead-letter write", log.clone())
                });
                if backoff.wait(&e, abort).await.is_err() {
                    // Aborted: the record's offset stays blocked, and is read again.
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn timeout() -> kinflux_kafka::Error {
        kinflux_kafka::Error::Timeout {
            what: "produce",
            after: Duration::from_secs(1),
        }
    }

    /// A long dead-letter outage logs the start of the streak at warn, then at most one
    /// warn a minute, and its end at info: not one warn per retry.
    #[tokio::test(start_paused = true)]
    async fn a_dead_letter_outage_logs_rate_limited_warnings() {
        const DOWN: usize = 40;
        let (_guard, captured) = kinflux_testkit::logs::capture();
        let calls = Cell::new(0usize);
        let send = || {
            let n = calls.get();
            calls.set(n + 1);
            async move { if n < DOWN { Err(timeout()) } else { Ok((0, 7)) } }
        };
        let started = tokio::time::Instant::now();
        let abort = CancellationToken::new();
        retry_dead_letter(send, &abort, RetryLog::new())
            .await
            .expect("lands after the outage");
        assert_eq!(calls.get(), DOWN + 1);
        let minutes = usize::try_from(started.elapsed().as_secs() / 60).expect("short");

        let text = kinflux_testkit::logs::text(&captured);
        let warns = text
            .lines()
            .filter(|l| l.contains("WARN") && l.contains("dead-letter write"))
            .count();
        assert!(
            warns >= 1 && warns <= 1 + minutes,
            "{warns} warnings: {text}"
        );
        assert!(warns < DOWN / 4, "{text}");
        assert!(
            text.contains(&format!("dead-letter write recovered after {DOWN} retries")),
            "{text}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_abort_ends_the_retries_and_a_permanent_error_is_not_retried() {
        let abort = CancellationToken::new();
        let stopper = abort.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            stopper.cancel();
        });
        let result = retry_dead_letter(|| async { Err(timeout()) }, &abort, RetryLog::new()).await;
        assert!(matches!(result, Err(kinflux_kafka::Error::Timeout { .. })));

        let calls = Cell::new(0usize);
        let permanent = || {
            calls.set(calls.get() + 1);
            async { Err(kinflux_kafka::Error::Closed) }
        };
        let result = retry_dead_letter(permanent, &CancellationToken::new(), RetryLog::new()).await;
        assert!(matches!(result, Err(kinflux_kafka::Error::Closed)));
        assert_eq!(calls.get(), 1);
    }
}
