//! The pipeline's loop: the consumer (group membership, commits, positions), feeding the
//! lanes that take its records, each on its own task, driven until a stop, a fatal error,
//! or (on request) until every assigned partition is caught up.
//!
//! Every wait of the loop also watches the stop signal: a stop drains within the drain
//! timeout even when InfluxDB or the schema registry is down.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kinflux_influx::CancellationToken;
use kinflux_kafka::{Consumer, Message, PartitionKey, Record, Revocation};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

use super::caught_up::{Progress, all_caught_up};
use super::lanes::Lanes;
use super::self_metrics::SelfMetrics;
use super::settlement::WritePool;
use super::start::Backfill;
use super::task::{Feed, LaneEnd};
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
    lanes: Lanes,
    /// The write pools of the pipeline's targets; the first takes the self-metrics.
    pools: Vec<WritePool>,
    settings: RunSettings,
    metrics: Arc<Metrics>,
    self_metrics: Option<SelfMetrics>,
    /// `until_caught_up`: the high watermark of each partition when it was assigned.
    targets: HashMap<PartitionKey, i64>,
    /// The offset this run last committed for each partition it holds.
    committed: HashMap<PartitionKey, i64>,
    /// The time of the newest record below each partition's committed offset.
    committed_times: HashMap<PartitionKey, i64>,
    /// Whether every lane was idle at the last report.
    idle: bool,
    /// A feed the lane it goes to has no room for yet; nothing is received meanwhile.
    pending: Option<(usize, Feed)>,
    seen_assignment: bool,
    fatal: Option<PipelineError>,
    started: Instant,
}

impl Run {
    pub(super) fn new(
        consumer: Consumer,
        lanes: Lanes,
        pools: Vec<WritePool>,
        settings: RunSettings,
        metrics: Arc<Metrics>,
        self_metrics: Option<SelfMetrics>,
    ) -> Self {
        Run {
            consumer,
            lanes,
            pools,
            settings,
            metrics,
            self_metrics,
            targets: HashMap::new(),
            committed: HashMap::new(),
            committed_times: HashMap::new(),
            idle: false,
            pending: None,
            seen_assignment: false,
            fatal: None,
            started: Instant::now(),
        }
    }

    /// Runs until `stop` fires, a fatal error, or (with `until_caught_up`) every assigned
    /// partition is written up to the high watermark it had when it was assigned. Drains
    /// before it returns: every lane flushes and waits for its writes, then the loop
    /// commits and leaves the group.
    pub(super) async fn run(
        mut self,
        stop: CancellationToken,
    ) -> Result<RunSummary, PipelineError> {
        let commit_interval = self.settings.commit_interval;
        let mut tick = tokio::time::interval(commit_interval.min(Duration::from_secs(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_commit = Instant::now();
        let mut ended_early: Vec<LaneEnd> = Vec::new();
        let result = loop {
            if let Some(e) = self.fatal.take() {
                break Err(e);
            }
            let pending_to = self.pending.as_ref().map(|(i, _)| self.lanes.feed(*i));
            let has_pending = pending_to.is_some();
            let queued = self.lanes.queued();
            // While the membership is (most likely) lost the lanes take nothing, so their
            // queue may stay full; the revocation that settles it must still come through.
            let lanes_full = queued.is_full() && !self.consumer.membership_lost();
            tokio::select! {
                biased;
                _ = stop.cancelled() => break Ok(()),
                ended = self.lanes.next_ended() => match ended {
                    Ok(mut end) => {
                        let e = end.fatal.take().unwrap_or_else(|| {
                            PipelineError::Internal("a lane ended without a reason".into())
                        });
                        ended_early.push(end);
                        break Err(e);
                    }
                    Err(e) => break Err(PipelineError::Internal(format!("a lane failed: {e}"))),
                },
                permit = reserve(pending_to), if has_pending => {
                    if let (Some(permit), Some((_, feed))) = (permit, self.pending.take()) {
                        permit.send(feed);
                    }
                }
                _ = tick.tick() => {
                    let due = last_commit.elapsed() >= commit_interval || self.settings.until_caught_up;
                    self.gather_and_commit(due).await;
                    if due {
                        last_commit = Instant::now();
                    }
                    if self.settings.until_caught_up && self.caught_up() {
                        info!("caught up with the end offsets of every assigned partition");
                        break Ok(());
                    }
                    self.refresh_metrics();
                    if let (Some(s), Some(pool)) = (&mut self.self_metrics, self.pools.first()) {
                        s.tick(&self.metrics, pool.writer());
                    }
                }
                _ = queued.freed(), if lanes_full => {}
                message = self.consumer.recv(), if !has_pending && !lanes_full => match message {
                    Ok(m) => self.on_message(m, &stop).await,
                    Err(e) => break Err(PipelineError::Kafka(e)),
                },
            }
        };
        self.drain(ended_early).await;
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
            Message::Records(records) => {
                let Some(first) = records.first() else {
                    return;
                };
                let partition = first.partition_key();
                let bytes = records.iter().map(Record::footprint).sum();
                self.lanes.queued().add(bytes);
                self.route(&partition, Feed::Records(records, bytes));
            }
            Message::Advanced {
                partition,
                next_offset,
            } => {
                let feed = Feed::Advanced {
                    partition: partition.clone(),
                    next_offset,
                };
                self.route(&partition, feed);
            }
            Message::Undecodable(batch) => {
                let partition = batch.partition.clone();
                self.route(&partition, Feed::Undecodable(batch));
            }
            Message::Assigned(partitions) => {
                self.metrics.assigned();
                self.on_assigned(partitions, stop).await;
            }
            Message::Revoked(revocation) => {
                self.metrics.revoked();
                self.on_revoked(revocation, stop).await;
            }
            other => debug!(?other, "ignoring consumer message"),
        }
    }

    /// Hands `feed` to the lane holding `partition`, or keeps it pending while that
    /// lane's feed is full.
    fn route(&mut self, partition: &PartitionKey, feed: Feed) {
        let Some(i) = self.lanes.home(partition) else {
            warn!(%partition, "a message for a partition no lane holds; ignored");
            self.unqueue(&feed);
            return;
        };
        match self.lanes.feed(i).try_send(feed) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(feed)) => self.pending = Some((i, feed)),
            // The lane ended: the loop hears why next.
            Err(mpsc::error::TrySendError::Closed(feed)) => self.unqueue(&feed),
        }
    }

    /// Records that no lane will take leave the budget of queued records.
    fn unqueue(&self, feed: &Feed) {
        if let Feed::Records(_, bytes) = feed {
            self.lanes.queued().release(*bytes);
        }
    }

    /// Sends `feed` to lane `i`, waiting for room unless `stop` fires first.
    async fn send(&self, i: usize, feed: Feed, stop: &CancellationToken) {
        let to = self.lanes.feed(i);
        tokio::select! {
            _ = stop.cancelled() => {}
            // A closed feed is a lane that ended: the loop hears why next.
            _ = to.send(feed) => {}
        }
    }

    async fn on_assigned(&mut self, partitions: Vec<PartitionKey>, stop: &CancellationToken) {
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
            let i = self.lanes.place(tp.clone());
            self.send(i, Feed::Adopt(tp), stop).await;
        }
    }

    /// Revoke, flush, commit: each lane holding a leaving partition flushes and waits
    /// for its writes (until the revocation's deadline), then the loop commits what they
    /// settled and lets the rebalance go on.
    async fn on_revoked(&mut self, revocation: Revocation, stop: &CancellationToken) {
        let leaving: Vec<PartitionKey> = revocation.partitions().to_vec();
        let lost = revocation.lost();
        if lost {
            warn!(partitions = ?leaving, "group membership lost; dropping what is held of its partitions unwritten");
        } else {
            info!(partitions = ?leaving, "partitions revoked; settling them before they leave");
        }
        let mut by_lane: HashMap<usize, Vec<PartitionKey>> = HashMap::new();
        for p in &leaving {
            if let Some(i) = self.lanes.home(p) {
                by_lane.entry(i).or_default().push(p.clone());
            }
        }
        let deadline = revocation.deadline();
        let mut replies = Vec::new();
        for (i, partitions) in by_lane {
            let (reply, rx) = oneshot::channel();
            let feed = Feed::Revoke {
                partitions,
                deadline,
                lost,
                reply,
            };
            self.send(i, feed, stop).await;
            replies.push(rx);
        }
        let mut settled = Vec::new();
        for rx in replies {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep_until(deadline) => break,
                answer = rx => settled.extend(answer.unwrap_or_default()),
            }
        }
        let mut offsets = self.gather().await;
        offsets.extend(settled);
        // A lost membership commits nothing: the coordinator refuses it, and another
        // member owns these partitions now.
        if !lost {
            self.commit(offsets).await;
        }
        for p in &leaving {
            self.lanes.unplace(p);
            self.targets.remove(p);
            self.committed.remove(p);
            self.committed_times.remove(p);
        }
        revocation.done();
    }

    /// Asks every lane for its progress; returns the offsets to commit.
    async fn gather(&mut self) -> Vec<(PartitionKey, i64)> {
        let reports = self.lanes.reports().await;
        self.idle = reports.iter().all(|r| r.idle);
        let mut offsets = Vec::new();
        for r in reports {
            offsets.extend(r.committable);
            self.committed_times.extend(r.committed_times);
        }
        offsets
    }

    async fn gather_and_commit(&mut self, commit: bool) {
        let offsets = self.gather().await;
        if commit {
            self.commit(offsets).await;
        }
    }

    /// Commits `offsets`, below each of which every record of its partition is settled.
    async fn commit(&mut self, offsets: Vec<(PartitionKey, i64)>) {
        if offsets.is_empty() {
            return;
        }
        if self.consumer.membership_lost() {
            debug!("group membership most likely lost; not committing");
            return;
        }
        let request = offsets.iter().cloned();
        let mark = self.settings.backfill.as_ref().map_or("", Backfill::mark);
        match self.consumer.commit_with_metadata(request, mark).await {
            Ok(()) => {
                for (p, offset) in &offsets {
                    let c = self.committed.entry(p.clone()).or_insert(*offset);
                    *c = (*c).max(*offset);
                }
                self.lanes.committed(&offsets);
                self.metrics.committed();
                debug!(?offsets, "committed");
            }
            Err(e) => warn!(error = %e, "commit failed; retrying at the next interval"),
        }
    }

    fn caught_up(&self) -> bool {
        if !self.seen_assignment || !self.idle {
            return false;
        }
        let lag = self.consumer.lag();
        all_caught_up(self.lanes.partitions().map(|p| {
            let fetched = lag.iter().find(|l| l.partition == *p);
            Progress {
                target: self.targets.get(p).copied(),
                committed: self
                    .committed
                    .get(p)
                    .copied()
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
                    .committed_times
                    .get(&key)
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
        self.metrics
            .set_fetch_failures(&self.settings.group, self.consumer.fetch_failures());
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

    /// Stops every lane, waits until each has flushed and written (or given up after the
    /// drain timeout), and commits what they settled.
    async fn drain(&mut self, ended_early: Vec<LaneEnd>) {
        let mut offsets: Vec<(PartitionKey, i64)> = Vec::new();
        for end in ended_early {
            offsets.extend(end.committable);
        }
        for end in self.lanes.finish().await {
            match end {
                Ok(end) => {
                    if let Some(e) = end.fatal {
                        warn!(error = %e, "a lane failed while draining");
                    }
                    offsets.extend(end.committable);
                }
                Err(e) => error!(error = %e, "a lane failed while draining"),
            }
        }
        self.commit(offsets).await;
        self.refresh_metrics();
    }
}

/// Room in the feed `to`, or never when there is no feed to wait for; `None` when the
/// lane ended.
async fn reserve(to: Option<mpsc::Sender<Feed>>) -> Option<mpsc::OwnedPermit<Feed>> {
    match to {
        Some(to) => to.reserve_owned().await.ok(),
        None => std::future::pending().await,
    }
}
