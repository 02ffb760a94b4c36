//! A lane on its own tokio task: fed, in order, by the loop that owns the consumer
//! (records, partitions adopted and revoked), asked for its commit progress on the side,
//! and drained when the run stops or the lane meets a fatal error.
//!
//! With a multi-thread runtime each lane decodes and batches on its own worker thread;
//! the write slots, the dead-letter producer and the metrics stay shared.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kinflux_influx::CancellationToken;
use kinflux_kafka::{MembershipProbe, PartitionKey, Record, UndecodableBatch};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, warn};

use super::PipelineError;
use super::lane::Lane;
use super::settlement::WritePool;

/// What the loop feeds a lane, in the consumer's order.
#[derive(Debug)]
pub(super) enum Feed {
    /// Records of one partition the lane holds, in offset order, and their footprint
    /// (counted in the [`Queued`] budget until the lane has taken them all).
    Records(Vec<Record>, usize),
    /// The partition's position moved over offsets without records.
    Advanced {
        partition: PartitionKey,
        next_offset: i64,
    },
    /// A record batch the consumer could not decode.
    Undecodable(UndecodableBatch),
    /// A partition now the lane's.
    Adopt(PartitionKey),
    /// Partitions leaving: flush, wait for their writes (until `deadline`), then answer
    /// with their offsets to commit and forget them. When the membership was `lost`, drop
    /// what is held of them unwritten instead, and answer with nothing to commit.
    Revoke {
        partitions: Vec<PartitionKey>,
        deadline: Instant,
        lost: bool,
        reply: oneshot::Sender<Vec<(PartitionKey, i64)>>,
    },
}

/// What the loop asks of a lane on the side, served before any record.
#[derive(Debug)]
pub(super) enum Control {
    /// The lane's commit progress, now.
    Report(oneshot::Sender<Report>),
    /// These offsets were committed.
    Committed(Vec<(PartitionKey, i64)>),
}

/// A lane's commit progress.
#[derive(Debug, Default)]
pub(super) struct Report {
    /// For each partition held, the offset below which every record is settled, where
    /// it moved since the last commit.
    pub(super) committable: Vec<(PartitionKey, i64)>,
    /// The time of the newest record below each held partition's committed offset.
    pub(super) committed_times: Vec<(PartitionKey, i64)>,
    /// Nothing held, open, waiting or in flight.
    pub(super) idle: bool,
}

/// How a lane ended: its fatal error, if any, and the offsets it settled while draining.
#[derive(Debug)]
pub(super) struct LaneEnd {
    pub(super) fatal: Option<PipelineError>,
    pub(super) committable: Vec<(PartitionKey, i64)>,
}

/// The ends of the channels a lane's task reads.
pub(super) struct LaneInbox {
    pub(super) feed: mpsc::Receiver<Feed>,
    pub(super) control: mpsc::UnboundedReceiver<Control>,
    pub(super) queued: Arc<Queued>,
    /// Whether the consumer's group membership is (most likely) lost: then the lane
    /// writes nothing (issue 17).
    pub(super) membership: MembershipProbe,
}

/// The footprint of the records handed to lanes and not taken yet, shared by the loop
/// and every lane: the loop receives from the consumer only while it is under
/// `kafka.max_buffered_bytes`. Without it, each lane's queue held whole fetches while the
/// consumer fetched again (490 MiB of RSS on a backlog of 4 partitions).
#[derive(Debug)]
pub(super) struct Queued {
    bytes: AtomicUsize,
    limit: usize,
    freed: Notify,
}

impl Queued {
    pub(super) fn new(limit: usize) -> Self {
        Queued {
            bytes: AtomicUsize::new(0),
            limit,
            freed: Notify::new(),
        }
    }

    pub(super) fn add(&self, bytes: usize) {
        self.bytes.fetch_add(bytes, Ordering::AcqRel);
    }

    pub(super) fn release(&self, bytes: usize) {
        if bytes > 0 {
            self.bytes.fetch_sub(bytes, Ordering::AcqRel);
            self.freed.notify_one();
        }
    }

    pub(super) fn is_full(&self) -> bool {
        self.bytes.load(Ordering::Acquire) >= self.limit
    }

    /// Returns once a lane took records.
    pub(super) async fn freed(&self) {
        self.freed.notified().await;
    }
}

/// Runs `lane` until `stop` fires, its feed closes, or it meets a fatal error; then
/// drains it (flush, wait for writes up to `drain_timeout`) and says what to commit.
pub(super) async fn run_lane(
    mut lane: Lane,
    mut inbox: LaneInbox,
    pools: Vec<WritePool>,
    stop: CancellationToken,
    drain_timeout: Duration,
) -> LaneEnd {
    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    let any_slots = pools.first().map(WritePool::slots);
    // The footprint of the records received and not all taken yet.
    let mut held_bytes = 0usize;
    let fatal = loop {
        if held_bytes > 0 && !lane.holds_records() {
            inbox.queued.release(std::mem::take(&mut held_bytes));
        }
        if let Some(e) = lane.take_fatal() {
            break Some(e);
        }
        // Stopped past the session timeout (SIGSTOP, a stalled host), the partitions are
        // most likely someone else's: write nothing until a heartbeat says otherwise or
        // they are revoked as lost. Timers that fired meanwhile must not win that race.
        let lost = inbox.membership.lost();
        if lane.can_take_held() && !lost {
            // The rest of a fetch, now that a write slot is free.
            if stop.is_cancelled() {
                break None;
            }
            lane.take_held(&stop).await;
            // Serve a waiting question between fetch chunks.
            while let Ok(c) = inbox.control.try_recv() {
                on_control(&mut lane, c);
            }
            continue;
        }
        let deadline = lane.batch_deadline().map_or(far, Instant::from_std);
        let can_take = lane.can_take();
        let wants_slot = lane.wants_slot();
        let has_open_batch = lane.has_open_batch();
        let has_writes = lane.has_writes();
        let slots = slots_for(&lane, any_slots.as_ref());
        tokio::select! {
            biased;
            _ = stop.cancelled() => break None,
            Some(c) = inbox.control.recv() => on_control(&mut lane, c),
            Some(done) = lane.next_done(), if has_writes => lane.settle(done),
            Ok(permit) = slots.acquire_owned(), if wants_slot && !lost => {
                if !inbox.membership.lost() {
                    lane.start_waiting(permit);
                }
            }
            _ = tokio::time::sleep_until(deadline), if has_open_batch && !lost => {
                if !inbox.membership.lost() {
                    lane.flush();
                }
            }
            // While lost, the feed is read all the same: the revocation comes that way.
            feed = inbox.feed.recv(), if can_take || lost => match feed {
                Some(feed) => {
                    if let Feed::Records(_, bytes) = &feed {
                        held_bytes += bytes;
                    }
                    let lost = inbox.membership.lost();
                    on_feed(&mut lane, feed, any_slots.as_ref(), &stop, lost).await;
                }
                None => break None,
            },
        }
    };
    inbox.queued.release(held_bytes);
    if inbox.membership.lost() {
        let owned: Vec<PartitionKey> = lane.owned().cloned().collect();
        lane.drop_lost(&owned);
    }
    drain(&mut lane, any_slots.as_ref(), drain_timeout).await;
    LaneEnd {
        fatal: fatal.or_else(|| lane.take_fatal()),
        committable: lane.committable(),
    }
}

fn on_control(lane: &mut Lane, control: Control) {
    match control {
        Control::Report(reply) => {
            let committable = lane.committable();
            let committed_times = lane
                .owned()
                .filter_map(|p| lane.committed_time_ms(p).map(|t| (p.clone(), t)))
                .collect();
            let report = Report {
                committable,
                committed_times,
                idle: lane.is_idle(),
            };
            // The loop stopped waiting (it is stopping): nothing to do.
            let _ = reply.send(report);
        }
        Control::Committed(offsets) => {
            for (p, offset) in offsets {
                if lane.owns(&p) {
                    lane.committed(&p, offset);
                }
            }
        }
    }
}

async fn on_feed(
    lane: &mut Lane,
    feed: Feed,
    slots: Option<&Arc<Semaphore>>,
    stop: &CancellationToken,
    lost: bool,
) {
    match feed {
        Feed::Records(records, footprint) => {
            let Some(first) = records.first() else {
                return;
            };
            if !lane.owns(&first.partition_key()) {
                // Fetched before its partition was revoked: the next owner reads it again.
                debug!(topic = %first.topic, partition = first.partition, "dropping records of a partition that left");
                return;
            }
            if lost {
                lane.hold(records, footprint);
            } else {
                lane.take(records, footprint, stop).await;
            }
        }
        Feed::Advanced {
            partition,
            next_offset,
        } => {
            if lane.owns(&partition) {
                lane.advance(&partition, next_offset);
            }
        }
        Feed::Undecodable(batch) => {
            if lane.owns(&batch.partition) {
                lane.undecodable(batch);
            }
        }
        Feed::Adopt(partition) => lane.adopt(partition),
        Feed::Revoke {
            partitions,
            lost: true,
            reply,
            ..
        } => {
            let held: Vec<PartitionKey> = partitions.into_iter().filter(|p| lane.owns(p)).collect();
            lane.drop_lost(&held);
            // Nothing of a lost partition is committed.
            let _ = reply.send(Vec::new());
        }
        Feed::Revoke {
            partitions,
            deadline,
            lost: false,
            reply,
        } => {
            settle_leaving(lane, &partitions, deadline, slots, stop).await;
            let leaving: Vec<(PartitionKey, i64)> = lane
                .committable()
                .into_iter()
                .filter(|(p, _)| partitions.contains(p))
                .collect();
            for p in &partitions {
                lane.release(p);
            }
            // The loop stopped waiting (deadline or stop): it commits without them.
            let _ = reply.send(leaving);
        }
    }
}

/// Flushes and waits until no write holds records of `leaving`, the deadline passes, or
/// `stop` fires.
async fn settle_leaving(
    lane: &mut Lane,
    leaving: &[PartitionKey],
    deadline: Instant,
    any_slots: Option<&Arc<Semaphore>>,
    stop: &CancellationToken,
) {
    if !leaving.iter().any(|p| lane.owns(p)) {
        return;
    }
    lane.flush();
    while leaving.iter().any(|p| lane.is_blocked(p)) && (lane.has_writes() || lane.wants_slot()) {
        let has_writes = lane.has_writes();
        let wants_slot = lane.wants_slot();
        let slots = slots_for(lane, any_slots);
        tokio::select! {
            biased;
            _ = stop.cancelled() => {
                warn!("stopping with writes of revoked partitions in flight; the next owner re-reads them");
                return;
            }
            Some(done) = lane.next_done(), if has_writes => lane.settle(done),
            Ok(permit) = slots.acquire_owned(), if wants_slot => {
                lane.start_waiting(permit);
            }
            _ = tokio::time::sleep_until(deadline) => {
                warn!("revocation deadline reached with writes in flight; the next owner re-reads them");
                return;
            }
            else => return,
        }
    }
}

/// Flushes, waits for every write (giving up on them after `timeout`).
async fn drain(lane: &mut Lane, any_slots: Option<&Arc<Semaphore>>, timeout: Duration) {
    lane.flush();
    let deadline = Instant::now() + timeout;
    while lane.has_writes() || lane.wants_slot() {
        let has_writes = lane.has_writes();
        let wants_slot = lane.wants_slot();
        let aborted = lane.is_aborted();
        let slots = slots_for(lane, any_slots);
        tokio::select! {
            Some(done) = lane.next_done(), if has_writes => lane.settle(done),
            Ok(permit) = slots.acquire_owned(), if wants_slot => {
                lane.start_waiting(permit);
            }
            _ = tokio::time::sleep_until(deadline), if !aborted => {
                warn!("drain deadline reached; cancelling writes in flight (they are read again on restart)");
                lane.abort();
            }
            else => break,
        }
    }
}

/// The write slots the lane's first waiting batch needs (its target's), or any target's
/// while none waits (the branch that uses them is off then).
fn slots_for(lane: &Lane, any: Option<&Arc<Semaphore>>) -> Arc<Semaphore> {
    lane.waiting_slots()
        .or_else(|| any.cloned())
        .unwrap_or_else(|| Arc::new(Semaphore::new(0)))
}
