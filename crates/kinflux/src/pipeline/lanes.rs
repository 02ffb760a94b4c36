//! The lanes of a run, each on its own task, and which partition each holds.
//!
//! A lane is started when a partition needs a home and every lane started so far holds
//! one: so at most `tasks` lanes run, and never more than the partitions assigned. A new
//! partition goes to the lane that holds the fewest.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kinflux_batch::FlushPolicy;
use kinflux_influx::CancellationToken;
use kinflux_kafka::{DeadLetterProducer, MembershipProbe, PartitionKey};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinError, JoinSet};
use tracing::info;

use super::Target;
use super::enrich::Enrichment;
use super::ingest::Ingest;
use super::lane::Lane;
use super::settlement::{Settlement, WritePool};
use super::task::{Control, Feed, LaneEnd, LaneInbox, Queued, Report, run_lane};
use crate::config::OnError;
use crate::decode::Decode;
use crate::metrics::Metrics;

/// Fetch chunks queued for a lane beyond the one it works on: enough to keep it busy
/// while the loop receives the next, few enough to bound the memory.
const FEED_DEPTH: usize = 2;

/// What every lane is made of; the shared parts are cloned handles.
#[derive(Debug)]
pub(super) struct LaneParts {
    pub(super) decoder: Arc<dyn Decode>,
    pub(super) enrichment: Enrichment,
    pub(super) batch: FlushPolicy,
    /// The pipeline's targets, and how each routes points.
    pub(super) targets: Vec<Target>,
    /// The measurement of every point, replacing the data's.
    pub(super) measurement: Option<String>,
    /// The targets' write pools, in the targets' order.
    pub(super) pools: Vec<WritePool>,
    pub(super) dead_letters: Option<Arc<DeadLetterProducer>>,
    pub(super) on_error: OnError,
    pub(super) abort: CancellationToken,
    /// The budget of retained records of the whole run, shared out between the lanes.
    pub(super) max_retained_bytes: usize,
    pub(super) metrics: Arc<Metrics>,
    pub(super) drain_timeout: Duration,
    /// Whether the consumer's group membership is (most likely) lost.
    pub(super) membership: MembershipProbe,
}

/// The way to one lane's task.
#[derive(Debug)]
struct LaneHandle {
    feed: mpsc::Sender<Feed>,
    control: mpsc::UnboundedSender<Control>,
    /// How many partitions it holds.
    holds: usize,
}

/// The lanes of a run.
#[derive(Debug)]
pub(super) struct Lanes {
    parts: LaneParts,
    /// At most this many lanes.
    tasks: usize,
    lanes: Vec<LaneHandle>,
    /// Which lane holds each assigned partition.
    homes: HashMap<PartitionKey, usize, foldhash::fast::RandomState>,
    running: JoinSet<LaneEnd>,
    /// Records handed to lanes and not taken yet.
    queued: Arc<Queued>,
    /// Stops every lane (a child of the run's stop, also fired when the run ends).
    stop: CancellationToken,
}

impl Lanes {
    pub(super) fn new(parts: LaneParts, tasks: usize, stop: &CancellationToken) -> Self {
        Lanes {
            // Half the budget for records queued to lanes, half for the records they
            // retain: together what one lane retained alone before.
            queued: Arc::new(Queued::new((parts.max_retained_bytes / 2).max(1))),
            parts,
            tasks: tasks.max(1),
            lanes: Vec::new(),
            homes: HashMap::default(),
            running: JoinSet::new(),
            stop: stop.child_token(),
        }
    }

    /// The lane that holds `partition`.
    pub(super) fn home(&self, partition: &PartitionKey) -> Option<usize> {
        self.homes.get(partition).copied()
    }

    /// Every assigned partition.
    pub(super) fn partitions(&self) -> impl Iterator<Item = &PartitionKey> {
        self.homes.keys()
    }

    /// Picks the lane for a partition just assigned (starting one if every lane holds
    /// some and fewer than `tasks` run).
    pub(super) fn place(&mut self, partition: PartitionKey) -> usize {
        if let Some(&i) = self.homes.get(&partition) {
            return i;
        }
        let fewest = self
            .lanes
            .iter()
            .enumerate()
            .min_by_key(|(_, l)| l.holds)
            .map(|(i, l)| (i, l.holds));
        let i = match fewest {
            Some((i, 0)) => i,
            Some((i, _)) if self.lanes.len() >= self.tasks => i,
            _ => self.start_lane(),
        };
        self.lanes[i].holds += 1;
        self.homes.insert(partition, i);
        i
    }

    /// Forgets where a revoked partition lived.
    pub(super) fn unplace(&mut self, partition: &PartitionKey) {
        if let Some(i) = self.homes.remove(partition) {
            self.lanes[i].holds -= 1;
        }
    }

    fn start_lane(&mut self) -> usize {
        let p = &self.parts;
        let lane = Lane::new(
            Ingest::new(p.decoder.clone(), p.enrichment.clone(), p.batch)
                .with_targets(&p.targets, p.measurement.clone()),
            Settlement::new(
                p.pools.clone(),
                p.dead_letters.clone(),
                p.on_error,
                p.abort.clone(),
            )
            .with_membership(p.membership.clone()),
            (p.max_retained_bytes / 2 / self.tasks).max(1),
            p.metrics.clone(),
        );
        let (feed_tx, feed) = mpsc::channel(FEED_DEPTH);
        let (control_tx, control) = mpsc::unbounded_channel();
        self.running.spawn(run_lane(
            lane,
            LaneInbox {
                feed,
                control,
                queued: self.queued.clone(),
                membership: p.membership.clone(),
            },
            p.pools.clone(),
            // A token of its own: no lock shared with the other lanes.
            self.stop.child_token(),
            p.drain_timeout,
        ));
        self.lanes.push(LaneHandle {
            feed: feed_tx,
            control: control_tx,
            holds: 0,
        });
        info!(lanes = self.lanes.len(), "lane started");
        self.lanes.len() - 1
    }

    /// The footprint of records handed to lanes and not taken yet.
    pub(super) fn queued(&self) -> Arc<Queued> {
        self.queued.clone()
    }

    /// A sender of lane `i`'s feed.
    pub(super) fn feed(&self, i: usize) -> mpsc::Sender<Feed> {
        self.lanes[i].feed.clone()
    }

    /// Every lane's commit progress. A lane that ended is left out.
    pub(super) async fn reports(&self) -> Vec<Report> {
        let mut asked = Vec::with_capacity(self.lanes.len());
        for lane in &self.lanes {
            let (tx, rx) = oneshot::channel();
            if lane.control.send(Control::Report(tx)).is_ok() {
                asked.push(rx);
            }
        }
        let mut reports = Vec::with_capacity(asked.len());
        for rx in asked {
            if let Ok(r) = rx.await {
                reports.push(r);
            }
        }
        reports
    }

    /// Tells the lanes which offsets were committed.
    pub(super) fn committed(&self, offsets: &[(PartitionKey, i64)]) {
        for lane in &self.lanes {
            // A lane that ended has nothing left to track.
            let _ = lane.control.send(Control::Committed(offsets.to_vec()));
        }
    }

    /// The next lane that ended on its own (a fatal error); pends while none did.
    pub(super) async fn next_ended(&mut self) -> Result<LaneEnd, JoinError> {
        match self.running.join_next().await {
            Some(ended) => ended,
            None => std::future::pending().await,
        }
    }

    /// Stops every lane and waits until each has drained.
    pub(super) async fn finish(&mut self) -> Vec<Result<LaneEnd, JoinError>> {
        self.stop.cancel();
        let mut ends = Vec::new();
        while let Some(end) = self.running.join_next().await {
            ends.push(end);
        }
        ends
    }
}
