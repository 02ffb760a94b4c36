//! The pipeline's loop: consume, decode, batch, write, dead-letter, commit.
//!
//! One task owns the consumer, the decoder, the batcher and the bookkeeping. Writes to
//! InfluxDB and to the dead-letter topic run as tasks of their own (at most
//! `influx.concurrency` writes at once) and report back to the loop, which alone decides
//! what may be committed.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kinflux_batch::{Batch, Batcher, FlushPolicy, RecordId};
use kinflux_influx::{CancellationToken, LineBatch, WriteError, WriteOutcome, Writer};
use kinflux_kafka::{
    Consumer, DeadLetterProducer, DeadLetterReason, Message, PartitionKey, Record, Revocation,
};
use kinflux_line::EncodeError;
use kinflux_series::{PointRef, PointView, Precision, Timestamp};
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

use super::enrich::Enrichment;
use super::{PipelineError, RunSummary};
use crate::config::{Config, OnError, StartAt};
use crate::decode::{DecodeFailure, Decoded, Decoder};
use crate::metrics::{ErrorClass, Metrics, PartitionGauges};
use crate::progress::Progress;

/// What a write task reports back.
enum Done {
    /// A batch write to InfluxDB ended.
    Write {
        batch: Batch,
        /// The offsets this batch blocks, released when it is settled.
        blocks: Vec<(PartitionKey, i64)>,
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

pub(super) struct Run {
    consumer: Option<Consumer>,
    writer: Writer,
    dead_letters: Option<Arc<DeadLetterProducer>>,
    decoder: Decoder,
    enrichment: Enrichment,
    batcher: Batcher,
    /// Where a changed series key is encoded before it is added with its copied fields.
    key_scratch: Vec<u8>,
    on_error: OnError,
    concurrency: usize,
    commit_interval: Duration,
    max_buffered_bytes: usize,
    drain_timeout: Duration,
    until_caught_up: bool,
    metrics: Arc<Metrics>,
    /// Cancels writes in flight; fired only when draining takes too long.
    abort: CancellationToken,

    progress: Progress,
    /// Partitions whose points are in the batch being built, blocked at their first offset.
    open_blocks: HashMap<PartitionKey, i64>,
    tasks: JoinSet<Done>,
    writes_in_flight: usize,
    /// Records handed off but not yet settled, per partition in offset order: a refused
    /// line is dead-lettered as the record it came from.
    retained: HashMap<PartitionKey, VecDeque<Record>>,
    retained_bytes: usize,
    assigned: HashSet<PartitionKey>,
    /// `--until-caught-up`: the high watermark of each partition when it was assigned.
    targets: HashMap<PartitionKey, i64>,
    seen_assignment: bool,
    /// `kafka.start_at`, applied once to each partition the first time it is assigned.
    start_at: StartAt,
    positioned: HashSet<PartitionKey>,
    fatal: Option<PipelineError>,
    started: Instant,
    /// Self-metrics written to InfluxDB: the settings, the group, and when they were last
    /// written.
    internal: Option<(crate::config::InternalMetricsConfig, String, Instant)>,
    /// The self-metrics write in flight: the next waits for it, so an outage piles none up.
    internal_write: Option<tokio::task::JoinHandle<()>>,
}

/// Adds a line-protocol point by copying its field section as it came, and its series key
/// too when the enrichment added no tag, instead of encoding the point again: encoding
/// was a fifth of the bridge's CPU on line protocol.
fn forward(
    batcher: &mut Batcher,
    scratch: &mut Vec<u8>,
    point: &PointRef<'_>,
    series_key: Option<&[u8]>,
    fields: &[u8],
    source: RecordId,
) -> Result<Option<Batch>, EncodeError> {
    let series_key = match series_key {
        Some(key) => key,
        None => {
            scratch.clear();
            kinflux_line::encode_series_key(point, scratch)?;
            scratch.as_slice()
        }
    };
    batcher.add_encoded(series_key, fields, point.timestamp(), source)
}

fn record_time(record: &Record) -> Option<Timestamp> {
    Timestamp::from_precision(record.timestamp_ms, Precision::Milliseconds).ok()
}

impl Run {
    pub(super) async fn start(
        config: &Config,
        metrics: Arc<Metrics>,
        until_caught_up: bool,
        drain_timeout: Duration,
    ) -> Result<Run, PipelineError> {
        let abort = CancellationToken::new();
        let writer = super::build::writer(config, abort.clone())?;
        if config.influx.create_database {
            writer
                .create_database()
                .await
                .map_err(PipelineError::Influx)?;
        }
        let decoder = super::build::decoder(config)?;
        let dead_letters = match (
            config.dead_letter.on_error,
            super::build::dead_letter_config(config),
        ) {
            (OnError::DeadLetter, Some(c)) => Some(Arc::new(
                DeadLetterProducer::connect(c)
                    .await
                    .map_err(PipelineError::DeadLetter)?,
            )),
            _ => None,
        };
        let consumer = Consumer::connect(config.kafka.consumer.clone())
            .await
            .map_err(PipelineError::Kafka)?;
        let policy = FlushPolicy {
            max_points: config.batch.max_points,
            max_bytes: config.batch.max_bytes,
            max_age: config.batch.max_age,
            sort_by_series: config.batch.sort_by_series,
        };
        Ok(Run {
            consumer: Some(consumer),
            writer,
            dead_letters,
            decoder,
            enrichment: Enrichment::new(config.tags.clone(), config.decode.time),
            batcher: Batcher::new(policy, Precision::Nanoseconds),
            key_scratch: Vec::new(),
            on_error: config.dead_letter.on_error,
            concurrency: config.influx.concurrency,
            commit_interval: config.kafka.commit_interval,
            max_buffered_bytes: config.kafka.consumer.max_buffered_bytes,
            drain_timeout,
            until_caught_up,
            metrics,
            abort,
            progress: Progress::new(),
            open_blocks: HashMap::new(),
            tasks: JoinSet::new(),
            writes_in_flight: 0,
            retained: HashMap::new(),
            retained_bytes: 0,
            assigned: HashSet::new(),
            targets: HashMap::new(),
            seen_assignment: false,
            start_at: config.kafka.start_at,
            positioned: HashSet::new(),
            fatal: None,
            started: Instant::now(),
            internal_write: None,
            internal: config
                .metrics
                .internal
                .clone()
                .map(|c| (c, config.kafka.consumer.group_id.clone(), Instant::now())),
        })
    }

    /// Runs until `stop` fires, a fatal error, or (with `until_caught_up`) every assigned
    /// partition is written up to the high watermark it had when it was assigned. Drains
    /// before it returns: flushes, waits for writes, commits, leaves the group.
    pub(super) async fn run(
        mut self,
        stop: CancellationToken,
    ) -> Result<RunSummary, PipelineError> {
        let mut tick = tokio::time::interval(self.commit_interval.min(Duration::from_secs(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_commit = Instant::now();
        let far = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
        let result = loop {
            if let Some(e) = self.fatal.take() {
                break Err(e);
            }
            if self.until_caught_up && self.caught_up() {
                info!("caught up with the high watermarks of every assigned partition");
                break Ok(());
            }
            let can_receive = self.retained_bytes < self.max_buffered_bytes;
            let deadline = self
                .batcher
                .deadline()
                .map_or(far, tokio::time::Instant::from_std);
            let Some(consumer) = self.consumer.as_mut() else {
                break Ok(());
            };
            tokio::select! {
                biased;
                _ = stop.cancelled() => break Ok(()),
                Some(done) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    self.on_task_result(done);
                }
                _ = tokio::time::sleep_until(deadline), if !self.batcher.is_empty() => {
                    self.flush_open().await;
                }
                _ = tick.tick() => {
                    if last_commit.elapsed() >= self.commit_interval || self.until_caught_up {
                        self.commit().await;
                        last_commit = Instant::now();
                    }
                    self.refresh_metrics();
                    self.write_internal_metrics();
                }
                message = consumer.recv(), if can_receive => match message {
                    Ok(m) => self.on_message(m).await,
                    Err(e) => break Err(PipelineError::Kafka(e)),
                },
            }
        };
        self.drain().await;
        if let Some(consumer) = self.consumer.take() {
            if let Err(e) = consumer.close().await {
                warn!(error = %e, "leaving the consumer group failed");
            }
        }
        self.refresh_metrics();
        let m = &self.metrics;
        let summary = RunSummary {
            records_in: m.records_in.load(Relaxed),
            points_written: m.points_written.load(Relaxed),
            dead_lettered: ErrorClass::ALL.iter().map(|c| m.dead_letters(*c)).sum(),
            dropped: m.dropped.load(Relaxed),
            elapsed: self.started.elapsed(),
        };
        result.map(|()| summary)
    }

    async fn on_message(&mut self, message: Message) {
        match message {
            Message::Records(records) => {
                for record in records {
                    self.on_record(record).await;
                }
            }
            Message::Assigned(partitions) => self.on_assigned(partitions).await,
            Message::Revoked(revocation) => self.on_revoked(revocation).await,
            other => debug!(?other, "ignoring consumer message"),
        }
    }

    async fn on_assigned(&mut self, partitions: Vec<PartitionKey>) {
        info!(partitions = ?partitions, "partitions assigned");
        self.seen_assignment = true;
        for tp in partitions {
            if self.until_caught_up && !self.targets.contains_key(&tp) {
                if let Some(consumer) = &self.consumer {
                    match consumer.watermarks(&tp).await {
                        Ok((_, high)) => {
                            self.targets.insert(tp.clone(), high);
                        }
                        Err(e) => {
                            warn!(partition = %tp, error = %e, "cannot read the high watermark")
                        }
                    }
                }
            }
            if self.start_at != StartAt::Committed && self.positioned.insert(tp.clone()) {
                self.position(&tp).await;
            }
            self.assigned.insert(tp);
        }
    }

    /// Moves a newly assigned partition to where `kafka.start_at` says.
    async fn position(&mut self, tp: &PartitionKey) {
        let Some(consumer) = &self.consumer else {
            return;
        };
        let offset = match self.start_at {
            StartAt::Committed => return,
            StartAt::Offset(o) => Ok(o),
            StartAt::Earliest => consumer.watermarks(tp).await.map(|(low, _)| low),
            StartAt::Latest => consumer.watermarks(tp).await.map(|(_, high)| high),
            StartAt::Time(ms) => consumer.offset_for_timestamp(tp, ms).await,
        };
        match offset.and_then(|o| consumer.seek(tp, o).map(|()| o)) {
            Ok(o) => info!(partition = %tp, offset = o, start_at = ?self.start_at, "positioned"),
            Err(e) => {
                error!(partition = %tp, error = %e, "cannot apply kafka.start_at");
                self.fatal.get_or_insert(PipelineError::Kafka(e));
            }
        }
    }

    async fn on_revoked(&mut self, revocation: Revocation) {
        let leaving: Vec<PartitionKey> = revocation.partitions().to_vec();
        info!(partitions = ?revocation.partitions(), "partitions revoked; settling them before they leave");
        self.flush_open().await;
        let deadline = revocation.deadline();
        while leaving.iter().any(|p| self.progress.is_blocked(p)) && !self.tasks.is_empty() {
            tokio::select! {
                Some(done) = self.tasks.join_next() => self.on_task_result(done),
                _ = tokio::time::sleep_until(deadline) => {
                    warn!("revocation deadline reached with writes in flight; the next owner re-reads them");
                    break;
                }
            }
        }
        self.commit().await;
        for p in &leaving {
            self.progress.forget(p);
            self.assigned.remove(p);
            self.targets.remove(p);
            if let Some(records) = self.retained.remove(p) {
                self.retained_bytes -= records.iter().map(Record::size).sum::<usize>();
            }
        }
        revocation.done();
    }

    async fn on_record(&mut self, record: Record) {
        self.metrics.records_in.fetch_add(1, Relaxed);
        let partition = record.partition_key();
        let offset = record.offset;
        let time = record_time(&record);
        let Some(value) = record.value.clone() else {
            // A tombstone carries no point.
            self.progress
                .hand_off(&partition, offset, Some(record.timestamp_ms));
            return;
        };
        self.metrics
            .record_bytes_in
            .fetch_add(value.len() as u64, Relaxed);

        let mut attempt = 0u32;
        let (failure, ready) = loop {
            let mut ready: Vec<(Batch, Vec<(PartitionKey, i64)>)> = Vec::new();
            let mut rejected_points: Vec<String> = Vec::new();
            let mut points = 0u64;
            let Run {
                decoder,
                enrichment,
                batcher,
                open_blocks,
                progress,
                key_scratch,
                ..
            } = self;
            // Whether this partition already blocks an offset in the open batch; kept
            // here so that a point costs no hash lookup (SipHash was 1.5% of the CPU).
            let mut blocked = open_blocks.contains_key(&partition);
            let lines = enrichment.is_noop();
            let mut emit = |decoded: Decoded<'_>| {
                let mut decoded = decoded;
                let mut tags_before = 0;
                if let Decoded::Point(point, _) = &mut decoded {
                    tags_before = point.tags().len();
                    if let Err(e) = enrichment.apply(point, &record, time) {
                        rejected_points.push(e.to_string());
                        return;
                    }
                }
                // Blocked before the point goes in: adding it may flush the batch.
                if !blocked {
                    progress.block(&partition, offset);
                    open_blocks.insert(partition.clone(), offset);
                    blocked = true;
                }
                let id = RecordId {
                    topic: partition.topic.clone(),
                    partition: partition.partition,
                    offset,
                };
                let added = match decoded {
                    Decoded::Line {
                        series_key,
                        fields,
                        timestamp,
                        written_time,
                    } => match written_time {
                        Some(time) => batcher.add_encoded_written(series_key, fields, time, id),
                        None => batcher.add_encoded(series_key, fields, timestamp, id),
                    },
                    Decoded::Point(point, raw) => match raw.fields {
                        Some(fields) => {
                            let key = raw.series_key.filter(|_| point.tags().len() == tags_before);
                            forward(batcher, key_scratch, &point, key, fields, id)
                        }
                        None => batcher.add(&point, id),
                    },
                };
                match added {
                    Ok(Some(batch)) => {
                        points += 1;
                        ready.push((batch, open_blocks.drain().collect()));
                        blocked = false;
                    }
                    Ok(None) => points += 1,
                    Err(e) => rejected_points.push(e.to_string()),
                }
            };
            match decoder.decode_raw(&value, time, lines, &mut emit).await {
                Ok(mut failure) => {
                    self.metrics.points_in.fetch_add(points, Relaxed);
                    if !rejected_points.is_empty() {
                        let message = rejected_points.join("; ");
                        failure = Some(match failure {
                            Some(mut f) => {
                                f.message = format!("{}; {message}", f.message);
                                f.bad_part = None;
                                f
                            }
                            None => DecodeFailure {
                                class: ErrorClass::Decode,
                                message,
                                bad_part: None,
                            },
                        });
                    }
                    break (failure, ready);
                }
                Err(unavailable) => {
                    // Nothing was emitted: the schema could not be had. Wait and decode
                    // the record again; consumption pauses meanwhile.
                    attempt += 1;
                    let wait = Duration::from_millis(100u64 << attempt.min(8));
                    warn!(error = %unavailable, ?wait, "schema source unavailable; retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        };

        self.retained_bytes += record.footprint();
        self.retained
            .entry(partition.clone())
            .or_default()
            .push_back(record);
        if let Some(failure) = failure {
            let record = self.retained_record(&partition, offset).cloned();
            if let Some(record) = record {
                self.fail_record(record, failure.class, failure.message, failure.bad_part);
            }
        }
        self.progress
            .hand_off(&partition, offset, time.map(|t| t.as_nanos() / 1_000_000));
        for (batch, blocks) in ready {
            self.dispatch(batch, blocks).await;
        }
    }

    fn retained_record(&self, partition: &PartitionKey, offset: i64) -> Option<&Record> {
        let records = self.retained.get(partition)?;
        let at = records.partition_point(|r| r.offset < offset);
        records.get(at).filter(|r| r.offset == offset)
    }

    /// Sends what is collected to InfluxDB.
    async fn flush_open(&mut self) {
        match self.batcher.flush() {
            Some(batch) => {
                let blocks = self.open_blocks.drain().collect();
                self.dispatch(batch, blocks).await;
            }
            None => {
                for (partition, offset) in self.open_blocks.drain() {
                    self.progress.unblock(&partition, offset);
                }
            }
        }
    }

    /// Starts writing `batch`, after waiting for a free slot when `concurrency` writes are
    /// in flight: the loop stops consuming meanwhile, which is the backpressure.
    async fn dispatch(&mut self, batch: Batch, blocks: Vec<(PartitionKey, i64)>) {
        while self.writes_in_flight >= self.concurrency {
            match self.tasks.join_next().await {
                Some(done) => self.on_task_result(done),
                None => break,
            }
        }
        self.writes_in_flight += 1;
        let writer = self.writer.clone();
        let starts = batch.line_starts().iter().map(|&s| s as usize).collect();
        let lines = LineBatch::with_line_starts(batch.body().clone(), starts);
        self.tasks.spawn(async move {
            let started = Instant::now();
            let result = writer.write(lines).await;
            Done::Write {
                batch,
                blocks,
                result,
                elapsed: started.elapsed(),
            }
        });
    }

    fn on_task_result(&mut self, done: Result<Done, tokio::task::JoinError>) {
        match done {
            Ok(Done::Write {
                batch,
                blocks,
                result,
                elapsed,
            }) => {
                self.writes_in_flight -= 1;
                self.on_write(batch, blocks, result, elapsed);
            }
            Ok(Done::DeadLetter {
                partition,
                offset,
                class,
                result,
            }) => match result {
                Ok(()) => {
                    self.metrics.dead_lettered(class);
                    self.progress.unblock(&partition, offset);
                    self.prune(&partition);
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

    fn on_write(
        &mut self,
        batch: Batch,
        blocks: Vec<(PartitionKey, i64)>,
        result: Result<WriteOutcome, WriteError>,
        elapsed: Duration,
    ) {
        self.metrics.observe_write_latency(elapsed);
        match result {
            Ok(outcome) => {
                let rejected = outcome.rejected();
                let written = batch.line_count().saturating_sub(rejected.len());
                self.metrics
                    .points_written
                    .fetch_add(written as u64, Relaxed);
                self.metrics
                    .bytes_written
                    .fetch_add(batch.body().len() as u64, Relaxed);
                self.metrics.batches_written.fetch_add(1, Relaxed);
                self.metrics.merges.fetch_add(batch.merged(), Relaxed);
                let mut failed: Vec<(RecordId, String)> = Vec::new();
                for line in rejected {
                    for id in batch.records_of_line(line.index) {
                        if !failed.iter().any(|(f, _)| f == id) {
                            failed.push((
                                id.clone(),
                                format!("line refused by InfluxDB: {}", line.reason),
                            ));
                        }
                    }
                }
                for (id, reason) in failed {
                    self.fail_by_id(&id, ErrorClass::Rejected, reason);
                }
            }
            Err(WriteError::Cancelled) => {
                // Draining ran out of time: these records stay uncommitted and are read
                // again by whoever owns their partitions next.
                return;
            }
            Err(e @ (WriteError::Refused { .. } | WriteError::GaveUp { .. })) => {
                warn!(error = %e, lines = batch.line_count(), "InfluxDB did not take a batch");
                let mut ids: Vec<&RecordId> = (0..batch.line_count())
                    .flat_map(|l| batch.records_of_line(l))
                    .collect();
                ids.sort();
                ids.dedup();
                for id in ids {
                    self.fail_by_id(id, ErrorClass::WriteFailed, e.to_string());
                }
            }
            Err(e) => {
                // Credentials, a missing database, a bad URL: no record can be written
                // until the configuration changes.
                error!(error = %e, "InfluxDB refuses every write; stopping");
                self.fatal.get_or_insert(PipelineError::Influx(e));
                return;
            }
        }
        for (partition, offset) in blocks {
            self.progress.unblock(&partition, offset);
            self.prune(&partition);
        }
    }

    fn fail_by_id(&mut self, id: &RecordId, class: ErrorClass, message: String) {
        let partition = PartitionKey::new(id.topic.clone(), id.partition);
        match self.retained_record(&partition, id.offset).cloned() {
            Some(record) => self.fail_record(record, class, message, None),
            None if !self.assigned.contains(&partition) => {
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

    /// Acts on a record that cannot be written, as `dead_letter.on_error` says.
    fn fail_record(
        &mut self,
        record: Record,
        class: ErrorClass,
        message: String,
        bad_part: Option<Vec<u8>>,
    ) {
        let partition = record.partition_key();
        let offset = record.offset;
        match (self.on_error, &self.dead_letters) {
            (OnError::DeadLetter, Some(producer)) => {
                self.progress.block(&partition, offset);
                let producer = producer.clone();
                let abort = self.abort.clone();
                let mut record = record;
                if let Some(part) = bad_part {
                    record.value = Some(Bytes::from(part));
                }
                let reason = DeadLetterReason::new(class.as_str(), message);
                self.tasks.spawn(async move {
                    let result = send_dead_letter(&producer, &record, &reason, &abort).await;
                    Done::DeadLetter {
                        partition,
                        offset,
                        class,
                        result,
                    }
                });
            }
            (OnError::Stop, _) => {
                // Blocked for good: nothing at or after it is committed.
                self.progress.block(&partition, offset);
                error!(topic = %partition.topic, partition = partition.partition, offset, class = class.as_str(), %message, "stopping on a record that cannot be written");
                self.fatal.get_or_insert(PipelineError::Stopped {
                    topic: partition.topic.to_string(),
                    partition: partition.partition,
                    offset,
                    reason: message,
                });
            }
            _ => {
                warn!(topic = %partition.topic, partition = partition.partition, offset, class = class.as_str(), %message, "dropping a record that cannot be written");
                self.metrics.dropped.fetch_add(1, Relaxed);
            }
        }
    }

    /// Drops retained records that no write can refer to any more.
    fn prune(&mut self, partition: &PartitionKey) {
        let Some(done_below) = self.progress.settled_below(partition) else {
            return;
        };
        if let Some(records) = self.retained.get_mut(partition) {
            while records.front().is_some_and(|r| r.offset < done_below) {
                if let Some(r) = records.pop_front() {
                    self.retained_bytes -= r.footprint();
                }
            }
        }
    }

    async fn commit(&mut self) {
        let Some(consumer) = &self.consumer else {
            return;
        };
        let offsets: Vec<(PartitionKey, i64)> = self
            .progress
            .all_committable()
            .into_iter()
            .filter(|(p, _)| self.assigned.contains(p))
            .collect();
        if offsets.is_empty() {
            return;
        }
        match consumer.commit(offsets.iter().cloned()).await {
            Ok(()) => {
                for (p, offset) in &offsets {
                    self.progress.committed(p, *offset);
                }
                self.metrics.commits.fetch_add(1, Relaxed);
                debug!(?offsets, "committed");
            }
            Err(e) => warn!(error = %e, "commit failed; retrying at the next interval"),
        }
    }

    fn caught_up(&self) -> bool {
        if !self.seen_assignment || !self.tasks.is_empty() || !self.batcher.is_empty() {
            return false;
        }
        let lag = self
            .consumer
            .as_ref()
            .map(Consumer::lag)
            .unwrap_or_default();
        self.assigned.iter().all(|p| {
            let Some(&target) = self.targets.get(p) else {
                return false;
            };
            let committed_by_us = self.progress.committed_offset(p);
            let committed_by_group = lag
                .iter()
                .find(|l| l.partition == *p)
                .and_then(|l| l.committed);
            target == 0
                || committed_by_us
                    .max(committed_by_group)
                    .is_some_and(|c| c >= target)
        })
    }

    fn refresh_metrics(&self) {
        let Some(consumer) = &self.consumer else {
            return;
        };
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let gauges = consumer
            .lag()
            .into_iter()
            .map(|l| {
                let key = l.partition.clone();
                let event_time_lag_seconds = self
                    .progress
                    .committed_time_ms(&key)
                    .map(|t| (now_ms - t) as f64 / 1000.0);
                let g = PartitionGauges {
                    lag: l.lag,
                    committed_lag: l.committed_lag,
                    committed: l.committed,
                    event_time_lag_seconds,
                };
                (key, g)
            })
            .collect();
        self.metrics.set_partitions(gauges);
        let stats = self.writer.stats().snapshot();
        self.metrics
            .set_retries("connection", stats.retries_connection);
        self.metrics.set_retries("timeout", stats.retries_timeout);
        self.metrics
            .set_retries("throttled", stats.retries_throttled);
        self.metrics
            .set_retries("server_error", stats.retries_server_error);
    }

    /// Writes the bridge's own counters to InfluxDB as one point, when due. They are not
    /// Kafka records: no offset waits for them, and a failure is only logged.
    fn write_internal_metrics(&mut self) {
        let Some((config, group, last)) = &mut self.internal else {
            return;
        };
        if last.elapsed() < config.interval
            || self
                .internal_write
                .as_ref()
                .is_some_and(|w| !w.is_finished())
        {
            return;
        }
        *last = Instant::now();
        let m = &self.metrics;
        let lag: i64 = m
            .partitions()
            .values()
            .filter_map(|g| g.committed_lag)
            .sum();
        let mut point = kinflux_series::Point::builder(config.measurement.as_str())
            .tag("group", group.as_str());
        for (name, value) in [
            ("records_in", m.records_in.load(Relaxed)),
            ("points_in", m.points_in.load(Relaxed)),
            ("points_written", m.points_written.load(Relaxed)),
            ("batches_written", m.batches_written.load(Relaxed)),
            ("merges", m.merges.load(Relaxed)),
            ("dropped", m.dropped.load(Relaxed)),
            ("retries", m.retries_total()),
        ] {
            point = point.field(name, i64::try_from(value).unwrap_or(i64::MAX));
        }
        for class in ErrorClass::ALL {
            let name = format!("dead_letters_{}", class.as_str());
            point = point.field(
                name,
                i64::try_from(m.dead_letters(class)).unwrap_or(i64::MAX),
            );
        }
        point = point.field("lag", lag);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        let mut body = Vec::new();
        let encoded = point
            .timestamp(Timestamp::from_nanos(now))
            .build()
            .map_err(|e| e.to_string())
            .and_then(|p| {
                kinflux_line::encode_point(&p, Precision::Nanoseconds, &mut body)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = encoded {
            warn!(error = %e, "cannot encode the self-metrics point");
            return;
        }
        let writer = self.writer.clone();
        self.internal_write = Some(tokio::spawn(async move {
            if let Err(e) = writer.write(LineBatch::new(body)).await {
                warn!(error = %e, "writing self-metrics failed");
            }
        }));
    }

    /// Flushes, waits for every write (cancelling them after `drain_timeout`), and commits.
    async fn drain(&mut self) {
        self.flush_open().await;
        let deadline = tokio::time::Instant::now() + self.drain_timeout;
        while !self.tasks.is_empty() {
            tokio::select! {
                Some(done) = self.tasks.join_next() => self.on_task_result(done),
                _ = tokio::time::sleep_until(deadline), if !self.abort.is_cancelled() => {
                    warn!("drain deadline reached; cancelling writes in flight (they are read again on restart)");
                    self.abort.cancel();
                }
            }
        }
        self.commit().await;
    }
}

/// Writes one record to the dead-letter topic, retrying what can be retried until it
/// lands or the pipeline is aborted.
async fn send_dead_letter(
    producer: &DeadLetterProducer,
    record: &Record,
    reason: &DeadLetterReason,
    abort: &CancellationToken,
) -> Result<(), kinflux_kafka::Error> {
    let mut wait = Duration::from_millis(100);
    loop {
        match producer.send(record, reason).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_retryable() && !abort.is_cancelled() => {
                warn!(error = %e, ?wait, "dead-letter write failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = abort.cancelled() => return Err(e),
                }
                wait = (wait * 2).min(Duration::from_secs(30));
            }
            Err(e) => return Err(e),
        }
    }
}
