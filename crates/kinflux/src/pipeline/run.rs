//! The pipeline's loop: the consumer (group membership, commits, positions) and the lane
//! that takes its records, driven until a stop, a fatal error, or (on request) until
//! every assigned partition is caught up.
//!
//! Every wait of the loop also watches the stop signal: a stop drains within the drain
//! timeout even when InfluxDB or the schema registry is down.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kinflux_influx::CancellationToken;
use kinflux_kafka::{Consumer, Message, PartitionKey, Revocation};
use tokio::sync::Semaphore;
use tracing::{debug, error, info, warn};

use super::caught_up::{Progress, all_caught_up};
use super::lane::Lane;
use super::self_metrics::SelfMetrics;
use super::settlement::WritePool;
use super::start::Backfill;
use super::{PipelineError, RunSummary};
use crate::metrics::{Metrics, PartitionGauges};

/// What the loop is set to do.
#[derive(Debug, Clone)]
pub(super) struct RunSettings {
    pub(super) commit_interval: Duration,
    pub(super) drain_timeout: Duration,
    pub(super) until_caught_up: bool,
    pub(super) backfill: Option<Backfill>,
    /// The consumer group: the metrics keep each pipeline's partition gauges under it.
    pub(super) group: String,
}

pub(super) struct Run {
    consumer: Consumer,
    lane: Lane,
    /// The write pools of the pipeline's targets; the first takes the self-metrics.
    pools: Vec<WritePool>,
    settings: RunSettings,
    metrics: Arc<Metrics>,
    self_metrics: Option<SelfMetrics>,
    /// `until_caught_up`: the high watermark of each partition when it was assigned.
    targets: HashMap<PartitionKey, i64>,
    seen_assignment: bool,
    fatal: Option<PipelineError>,
    started: Instant,
}

impl Run {
    pub(super) fn new(
        consumer: Consumer,
        lane: Lane,
        pools: Vec<WritePool>,
        settings: RunSettings,
        metrics: Arc<Metrics>,
        self_metrics: Option<SelfMetrics>,
    ) -> Self {
        Run {
            consumer,
            lane,
            pools,
            settings,
            metrics,
            self_metrics,
            targets: HashMap::new(),
            seen_assignment: false,
            fatal: None,
            started: Instant::now(),
        }
    }

    /// Runs until `stop` fires, a fatal error, or (with `until_caught_up`) every assigned
    /// partition is written up to the high watermark it had when it was assigned. Drains
    /// before it returns: flushes, waits for writes, commits, leaves the group.
    pub(super) async fn run(
        mut self,
        stop: CancellationToken,
    ) -> Result<RunSummary, PipelineError> {
        let commit_interval = self.settings.commit_interval;
        let mut tick = tokio::time::interval(commit_interval.min(Duration::from_secs(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_commit = Instant::now();
        let far = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
        let result = loop {
            if let Some(e) = self.fatal.take().or_else(|| self.lane.take_fatal()) {
                break Err(e);
            }
            if self.settings.until_caught_up && self.caught_up() {
                info!("caught up with the end offsets of every assigned partition");
                break Ok(());
            }
            if self.lane.can_take_held() {
                // The rest of a fetch, now that a write slot is free.
                if stop.is_cancelled() {
                    break Ok(());
                }
                self.lane.take_held(&stop).await;
                continue;
            }
            let deadline = self
                .lane
                .batch_deadline()
                .map_or(far, tokio::time::Instant::from_std);
            let can_take = self.lane.can_take();
            let wants_slot = self.lane.wants_slot();
            let has_open_batch = self.lane.has_open_batch();
            let has_writes = self.lane.has_writes();
            let slots = self.slots();
            tokio::select! {
                biased;
                _ = stop.cancelled() => break Ok(()),
                Some(done) = self.lane.next_done(), if has_writes => self.lane.settle(done),
                Ok(permit) = slots.acquire_owned(), if wants_slot => {
                    self.lane.start_waiting(permit);
                }
                _ = tokio::time::sleep_until(deadline), if has_open_batch => self.lane.flush(),
                _ = tick.tick() => {
                    if last_commit.elapsed() >= commit_interval || self.settings.until_caught_up {
                        self.commit().await;
                        last_commit = Instant::now();
                    }
                    self.refresh_metrics();
                    if let (Some(s), Some(pool)) = (&mut self.self_metrics, self.pools.first()) {
                        s.tick(&self.metrics, pool.writer());
                    }
                }
                message = self.consumer.recv(), if can_take => match message {
                    Ok(m) => self.on_message(m, &stop).await,
                    Err(e) => break Err(PipelineError::Kafka(e)),
                },
            }
        };
        self.drain().await;
        let Run {
            consumer,
            metrics,
            started,
            ..
        } = self;
        if let Err(e) = consumer.close().await {
            warn!(error = %e, "leaving the consumer group failed");
        }
        let m = metrics.snapshot();
        let summary = RunSummary {
            records_in: m.records_in,
            points_written: m.points_written,
            dead_lettered: m.dead_lettered(),
            dropped: m.dropped,
            elapsed: started.elapsed(),
        };
        result.map(|()| summary)
    }

    async fn on_message(&mut self, message: Message, stop: &CancellationToken) {
        match message {
            Message::Records(records) => self.lane.take(records, stop).await,
            Message::Advanced {
                partition,
                next_offset,
            } => self.lane.advance(&partition, next_offset),
            Message::Undecodable(batch) => self.lane.undecodable(batch),
            Message::Assigned(partitions) => self.on_assigned(partitions).await,
            Message::Revoked(revocation) => self.on_revoked(revocation, stop).await,
            other => debug!(?other, "ignoring consumer message"),
        }
    }

    async fn on_assigned(&mut self, partitions: Vec<PartitionKey>) {
        info!(partitions = ?partitions, "partitions assigned");
        self.seen_assignment = true;
        for tp in partitions {
            if self.settings.until_caught_up && !self.targets.contains_key(&tp) {
                match self.consumer.watermarks(&tp).await {
                    Ok((_, high)) => {
                        self.targets.insert(tp.clone(), high);
                    }
                    Err(e) => warn!(partition = %tp, error = %e, "cannot read the end offset"),
                }
            }
            if let Some(backfill) = &self.settings.backfill {
                if let Err(e) = backfill.apply(&self.consumer, &tp).await {
                    error!(partition = %tp, error = %e, "cannot apply kafka.start_at");
                    self.fatal.get_or_insert(PipelineError::Kafka(e));
                }
            }
            self.lane.adopt(tp);
        }
    }

    async fn on_revoked(&mut self, revocation: Revocation, stop: &CancellationToken) {
        let leaving: Vec<PartitionKey> = revocation.partitions().to_vec();
        info!(partitions = ?revocation.partitions(), "partitions revoked; settling them before they leave");
        self.lane.flush();
        let deadline = revocation.deadline();
        while leaving.iter().any(|p| self.lane.is_blocked(p))
            && (self.lane.has_writes() || self.lane.wants_slot())
        {
            let has_writes = self.lane.has_writes();
            let wants_slot = self.lane.wants_slot();
            let slots = self.slots();
            tokio::select! {
                biased;
                _ = stop.cancelled() => {
                    warn!("stopping with writes of revoked partitions in flight; the next owner re-reads them");
                    break;
                }
                Some(done) = self.lane.next_done(), if has_writes => self.lane.settle(done),
                Ok(permit) = slots.acquire_owned(), if wants_slot => {
                    self.lane.start_waiting(permit);
                }
                _ = tokio::time::sleep_until(deadline) => {
                    warn!("revocation deadline reached with writes in flight; the next owner re-reads them");
                    break;
                }
                else => break,
            }
        }
        self.commit().await;
        for p in &leaving {
            self.lane.release(p);
            self.targets.remove(p);
        }
        revocation.done();
    }

    /// Commits, for every partition held, the offset below which every record is settled.
    async fn commit(&mut self) {
        let offsets = self.lane.committable();
        if offsets.is_empty() {
            return;
        }
        let request = offsets.iter().cloned();
        let mark = self.settings.backfill.as_ref().map_or("", Backfill::mark);
        match self.consumer.commit_with_metadata(request, mark).await {
            Ok(()) => {
                for (p, offset) in &offsets {
                    self.lane.committed(p, *offset);
                }
                self.metrics.committed();
                debug!(?offsets, "committed");
            }
            Err(e) => warn!(error = %e, "commit failed; retrying at the next interval"),
        }
    }

    fn caught_up(&self) -> bool {
        if !self.seen_assignment || !self.lane.is_idle() {
            return false;
        }
        let lag = self.consumer.lag();
        all_caught_up(self.lane.owned().map(|p| {
            let fetched = lag.iter().find(|l| l.partition == *p);
            Progress {
                target: self.targets.get(p).copied(),
                committed: self
                    .lane
                    .committed_offset(p)
                    .max(fetched.and_then(|l| l.committed)),
                fetched_end: fetched.and_then(|l| l.high_watermark),
            }
        }))
    }

    fn refresh_metrics(&self) {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let gauges = self
            .consumer
            .lag()
            .into_iter()
            .map(|l| {
                let key = l.partition;
                let event_time_lag_seconds = self
                    .lane
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
        self.metrics.set_partitions(&self.settings.group, gauges);
        for pool in &self.pools {
            let stats = pool.writer().stats().snapshot();
            for (cause, n) in [
                ("connection", stats.retries_connection),
                ("timeout", stats.retries_timeout),
                ("throttled", stats.retries_throttled),
                ("server_error", stats.retries_server_error),
            ] {
                self.metrics.set_retries(pool.name(), cause, n);
            }
        }
    }

    /// The write slots the first waiting batch needs (any target's while none waits:
    /// the branch that takes one is off then).
    fn slots(&self) -> Arc<Semaphore> {
        self.lane
            .waiting_slots()
            .or_else(|| self.pools.first().map(WritePool::slots))
            .unwrap_or_else(|| Arc::new(Semaphore::new(0)))
    }

    /// Flushes, waits for every write (giving up on them after the drain timeout), and
    /// commits what is settled.
    async fn drain(&mut self) {
        self.lane.flush();
        let deadline = tokio::time::Instant::now() + self.settings.drain_timeout;
        while self.lane.has_writes() || self.lane.wants_slot() {
            let has_writes = self.lane.has_writes();
            let wants_slot = self.lane.wants_slot();
            let aborted = self.lane.is_aborted();
            let slots = self.slots();
            tokio::select! {
                Some(done) = self.lane.next_done(), if has_writes => self.lane.settle(done),
                Ok(permit) = slots.acquire_owned(), if wants_slot => {
                    self.lane.start_waiting(permit);
                }
                _ = tokio::time::sleep_until(deadline), if !aborted => {
                    warn!("drain deadline reached; cancelling writes in flight (they are read again on restart)");
                    self.lane.abort();
                }
                else => break,
            }
        }
        self.commit().await;
        self.refresh_metrics();
    }
}
