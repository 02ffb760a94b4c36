//! The group consumer, split by the state each part owns:
//!
//! - this module: the handle the caller holds ([`Consumer`]), and what it shares with the
//!   background tasks;
//! - `session`: the classic group membership (find the coordinator, join, sync, heartbeat,
//!   leave);
//! - `heartbeat_session`, `heartbeat_rpc`: the membership of the `consumer` protocol
//!   (KIP-848), where the broker assigns;
//! - `verdict`: the one classification of failed group requests that the session acts on;
//! - `revoke`: revoking partitions (both protocols), lost memberships included;
//! - `fetcher`: one task per assigned partition, with its buffer, pause and seek state;
//! - `leader`: the assignment the group leader computes for every member.

mod fetcher;
mod heartbeat_rpc;
mod heartbeat_session;
mod leader;
mod message;
mod revoke;
mod session;
mod verdict;

pub use message::{Message, PartitionLag, Revocation, UndecodableBatch};
pub use revoke::MembershipProbe;

use std::{
    collections::{BTreeMap, HashSet},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use kinflux_backoff::{Backoff, BackoffConfig, RetryLog};
use regex::Regex;
use tokio::{sync::mpsc, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::{
    config::{ConsumerConfig, GroupProtocol},
    conn::Connection,
    error::{Error, Result},
    fetch::{BatchError, FetchClient, IsolationLevel, OffsetSpec},
    group::{self, GroupClient},
    record::{CommittedOffset, PartitionKey, Record},
    security::ConnectOptions,
};
use fetcher::{PartitionState, known};
use heartbeat_session::HeartbeatSession;
use session::{Membership, Session};

/// The waits of every retry loop of the consumer (reconnects, rejoins, fetches); no limit.
const RETRY: BackoffConfig = BackoffConfig::new(Duration::from_millis(100), Duration::from_secs(5));

/// [`Consumer::commit`] tries this often before it reports the error.
const COMMIT_ATTEMPTS: u32 = 5;

/// What the background tasks send to [`Consumer::recv`].
#[derive(Debug)]
enum Event {
    Batch {
        state: Arc<PartitionState>,
        records: Vec<Record>,
        bytes: usize,
        /// Where the partition's position is after these records (past control batches
        /// and aborted transactions).
        next_offset: i64,
        seek_generation: u64,
    },
    Undecodable {
        state: Arc<PartitionState>,
        failure: BatchError,
        seek_generation: u64,
    },
    Assigned(Vec<PartitionKey>),
    Revoked(Revocation),
    Fatal(Error),
}

/// What the handle, the session and the fetchers share.
#[derive(Debug)]
struct Shared {
    config: ConsumerConfig,
    opts: ConnectOptions,
    /// Leaders, connections, Fetch and ListOffsets.
    fetch: FetchClient,
    topic_regex: Option<Regex>,
    /// The fetch state of every assigned partition.
    assigned: Mutex<BTreeMap<PartitionKey, Arc<PartitionState>>>,
    /// Paused partitions, assigned or not: a pause survives rebalances.
    paused: Mutex<HashSet<PartitionKey>>,
    /// The generation this member is in, while it is in one.
    membership: Mutex<Option<Membership>>,
    /// The coordinator fenced this member (another instance took its static id): what it
    /// holds is not its own any more. Cleared when it joins again.
    fenced: AtomicBool,
    /// One retry log for all fetchers: a broker outage is one streak, not one per partition.
    fetch_log: RetryLog,
    /// Fetches that failed and were retried: no answer, or an error for the partition.
    fetch_failures: AtomicU64,
    /// One retry log for every commit: each commit call retries with a backoff of its
    /// own, and a coordinator outage is still one warn a minute, not one per commit.
    commit_log: RetryLog,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Our critical sections never panic halfway through an update.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The first connection to the group coordinator. A broker that is up but has no
/// coordinator yet (a new cluster creates `__consumer_offsets` on the first
/// FindCoordinator and answers COORDINATOR_NOT_AVAILABLE meanwhile) is waited for, up to
/// [`FIRST_COORDINATOR_WAIT`]; any other error is returned at once.
async fn first_coordinator(opts: &ConnectOptions, group_id: &str) -> Result<Arc<Connection>> {
    let mut backoff: Option<Backoff> = None;
    loop {
        match group::connect_coordinator(opts, group_id).await {
            Ok(conn) => {
                if let Some(b) = backoff.as_mut() {
                    b.succeeded();
                }
                return Ok(conn);
            }
            Err(e) if e.kafka_code().is_some() && verdict::coordinator_gone(&e) => {
                let b = backoff.get_or_insert_with(|| {
                    let config = RETRY.with_max_elapsed(Some(FIRST_COORDINATOR_WAIT));
                    Backoff::new(
                        config,
                        format!("finding the coordinator of group {group_id}"),
                    )
                });
                let Ok(delay) = b.next_delay(&e) else {
                    return Err(e);
                };
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// How long [`Consumer::connect`] waits for a coordinator that is not ready yet.
const FIRST_COORDINATOR_WAIT: Duration = Duration::from_secs(30);

/// A Kafka consumer in a consumer group.
///
/// Records come from [`recv`](Consumer::recv), together with rebalance events. Nothing is
/// committed unless [`commit`](Consumer::commit) is called.
#[derive(Debug)]
pub struct Consumer {
    shared: Arc<Shared>,
    rx: mpsc::UnboundedReceiver<Event>,
    shutdown: CancellationToken,
    group_task: Option<JoinHandle<()>>,
    /// A message [`recv`](Self::recv) owes after the one it returned.
    pending: Option<Message>,
}

impl Drop for Consumer {
    fn drop(&mut self) {
        // Without close() the member just disappears; its session times out on the broker.
        self.shutdown.cancel();
        if let Some(t) = self.group_task.take() {
            t.abort();
        }
    }
}

impl Consumer {
    /// Connects to the cluster and starts joining the group in the background.
    pub async fn connect(config: ConsumerConfig) -> Result<Self> {
        config.validate()?;
        let topic_regex = config
            .topic_regex
            .as_deref()
            .map(|r| Regex::new(&format!("^(?:{r})$")))
            .transpose()
            .map_err(|e| Error::Config(format!("topic_regex: {e}")))?;
        let opts = ConnectOptions::new(
            &config.brokers,
            &config.client_id,
            config.tls.as_ref(),
            config.sasl.as_ref(),
        )?;
        // The coordinator first: it fails fast on bad credentials or TLS settings.
        let coordinator = first_coordinator(&opts, &config.group_id).await?;
        // No fall back to classic: the user asked for the other protocol's behaviour
        // (broker-side assignment, incremental rebalances), and a group's members must
        // agree on it.
        if config.group_protocol == GroupProtocol::Consumer
            && !heartbeat_rpc::supported(&coordinator)
        {
            return Err(heartbeat_rpc::unsupported());
        }
        drop(coordinator);
        let shared = Arc::new(Shared {
            config,
            fetch: FetchClient::with_options(opts.clone()),
            opts,
            topic_regex,
            assigned: Mutex::default(),
            paused: Mutex::default(),
            membership: Mutex::default(),
            fenced: AtomicBool::new(false),
            fetch_log: RetryLog::new(),
            fetch_failures: AtomicU64::new(0),
            commit_log: RetryLog::new(),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let shutdown = CancellationToken::new();
        let group_task = match shared.config.group_protocol {
            GroupProtocol::Consumer => {
                let session = HeartbeatSession::new(Arc::clone(&shared), tx, shutdown.clone());
                tokio::spawn(session.run())
            }
            _ => {
                let session = Session::new(Arc::clone(&shared), tx, shutdown.clone());
                tokio::spawn(session.run())
            }
        };
        Ok(Self {
            shared,
            rx,
            shutdown,
            group_task: Some(group_task),
            pending: None,
        })
    }

    /// The next batch of records or rebalance event. Waits until there is one.
    ///
    /// Returns an error only when the consumer cannot go on (for example a failed SASL
    /// authentication); transient failures are retried in the background.
    ///
    /// Cancel-safe: dropping the future (in `tokio::select!`) loses nothing. Heartbeats run
    /// in a background task, so taking long between calls does not cost the membership; but
    /// a [`Message::Revoked`] waits behind the batches fetched before it, so a slow caller
    /// may see it after its deadline (then its commits fail and the records are read again
    /// by the next owner: at-least-once).
    pub async fn recv(&mut self) -> Result<Message> {
        if let Some(message) = self.pending.take() {
            return Ok(message);
        }
        loop {
            let event = self.rx.recv().await.ok_or(Error::Closed)?;
            match event {
                Event::Batch {
                    state,
                    records,
                    bytes,
                    next_offset,
                    seek_generation,
                } => {
                    state.buffered.fetch_sub(bytes, Ordering::AcqRel);
                    state.wake.notify_one();
                    if !self.current(&state, seek_generation) {
                        continue;
                    }
                    let before = state.position.swap(next_offset, Ordering::AcqRel);
                    let after_records = records.last().map_or(before, |r| r.offset + 1);
                    let advanced = (next_offset > after_records).then(|| Message::Advanced {
                        partition: state.tp.clone(),
                        next_offset,
                    });
                    if records.is_empty() {
                        match advanced {
                            Some(m) => return Ok(m),
                            None => continue,
                        }
                    }
                    self.pending = advanced;
                    return Ok(Message::Records(records));
                }
                Event::Undecodable {
                    state,
                    failure,
                    seek_generation,
                } => {
                    if !self.current(&state, seek_generation) {
                        continue;
                    }
                    let batch = UndecodableBatch::new(state.tp.clone(), failure);
                    state
                        .position
                        .fetch_max(batch.next_offset(), Ordering::AcqRel);
                    return Ok(Message::Undecodable(batch));
                }
                Event::Assigned(tps) => return Ok(Message::Assigned(tps)),
                Event::Revoked(r) => return Ok(Message::Revoked(r)),
                Event::Fatal(e) => return Err(e),
            }
        }
    }

    /// Whether an event of `state` still counts: same assignment, no seek since.
    fn current(&self, state: &PartitionState, seek_generation: u64) -> bool {
        lock(&self.shared.assigned)
            .get(&state.tp)
            .is_some_and(|s| s.epoch == state.epoch)
            && state.seek_generation() == seek_generation
    }

    /// Fetch requests that failed since [`connect`](Self::connect) and were retried: no
    /// answer (connection lost, timeout) or an error for the partition (leader moved,
    /// ...). Rising steadily, it means a broker is not well.
    pub fn fetch_failures(&self) -> u64 {
        self.shared.fetch_failures.load(Ordering::Relaxed)
    }

    /// The partitions assigned to this consumer now.
    pub fn assignment(&self) -> Vec<PartitionKey> {
        lock(&self.shared.assigned).keys().cloned().collect()
    }

    /// Commits offsets: for each partition, the next offset to read (last processed + 1).
    ///
    /// A lost coordinator connection (broker restart) is re-established and the commit tried
    /// again a few times before an error is returned. Fails with a rejoin error
    /// ([`Error::needs_rejoin`]) when the group moved to a new generation.
    pub async fn commit(
        &self,
        offsets: impl IntoIterator<Item = (PartitionKey, i64)>,
    ) -> Result<()> {
        self.commit_with_metadata(offsets, "").await
    }

    /// As [`commit`](Self::commit), with `metadata` committed along with every offset
    /// (Kafka keeps it with the offset; [`committed_with_metadata`](Self::committed_with_metadata)
    /// reads it back). Applications mark what they did up to that offset with it.
    pub async fn commit_with_metadata(
        &self,
        offsets: impl IntoIterator<Item = (PartitionKey, i64)>,
        metadata: &str,
    ) -> Result<()> {
        let offsets: BTreeMap<PartitionKey, i64> = offsets.into_iter().collect();
        if offsets.is_empty() {
            return Ok(());
        }
        let group_id = &self.shared.config.group_id;
        // Made at the first failure: most commits need none.
        let mut backoff: Option<Backoff> = None;
        loop {
            let m = lock(&self.shared.membership)
                .clone()
                .ok_or_else(|| Error::NotInGroup {
                    group_id: group_id.clone(),
                })?;
            let result = if m.group.conn.is_closed() {
                Err(Error::ConnectionClosed {
                    broker: "group coordinator".into(),
                })
            } else {
                m.group
                    .commit(m.generation_id, &m.member_id, &offsets, metadata)
                    .await
            };
            match result {
                Ok(()) => {
                    if let Some(b) = backoff.as_mut() {
                        b.succeeded();
                    }
                    break;
                }
                // The heartbeat task is about to learn the new epoch (KIP-848): the next
                // round reads it from the membership.
                Err(e) if e.kafka_code() == Some(crate::error::code::STALE_MEMBER_EPOCH) => {
                    let b = backoff.get_or_insert_with(|| {
                        let config = RETRY.with_max_attempts(Some(COMMIT_ATTEMPTS));
                        Backoff::with_log(
                            config,
                            format!("offset commit of group {group_id}"),
                            self.shared.commit_log.clone(),
                        )
                    });
                    let Ok(delay) = b.next_delay(&e) else {
                        return Err(e);
                    };
                    tokio::time::sleep(delay).await;
                }
                Err(e) if verdict::coordinator_gone(&e) => {
                    let b = backoff.get_or_insert_with(|| {
                        let config = RETRY.with_max_attempts(Some(COMMIT_ATTEMPTS));
                        Backoff::with_log(
                            config,
                            format!("offset commit of group {group_id}"),
                            self.shared.commit_log.clone(),
                        )
                    });
                    let Ok(delay) = b.next_delay(&e) else {
                        return Err(e);
                    };
                    tokio::time::sleep(delay).await;
                    match group::connect_coordinator(&self.shared.opts, group_id).await {
                        Ok(conn) => {
                            let mut membership = lock(&self.shared.membership);
                            if let Some(current) = membership.as_mut().filter(|c| {
                                c.generation_id == m.generation_id && c.member_id == m.member_id
                            }) {
                                current.group.conn = conn;
                            }
                        }
                        // Refused credentials or certificate: no attempt left can help.
                        Err(refused) if !refused.is_retryable() => return Err(refused),
                        Err(_) => {}
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let assigned = lock(&self.shared.assigned);
        for (tp, off) in &offsets {
            if let Some(s) = assigned.get(tp) {
                s.committed.store(*off, Ordering::Release);
            }
        }
        Ok(())
    }

    /// Commits the current position (everything handed out by [`recv`](Self::recv)) of
    /// every assigned partition.
    pub async fn commit_positions(&self) -> Result<()> {
        let offsets: Vec<(PartitionKey, i64)> = lock(&self.shared.assigned)
            .values()
            .filter_map(|s| known(s.position.load(Ordering::Acquire)).map(|p| (s.tp.clone(), p)))
            .collect();
        self.commit(offsets).await
    }

    /// Whether the group membership is lost, or most likely so: see [`MembershipProbe`],
    /// which answers the same from another task.
    pub fn membership_lost(&self) -> bool {
        self.membership_probe().lost()
    }

    /// A handle that tells whether the membership is lost, for tasks that write what this
    /// consumer read.
    pub fn membership_probe(&self) -> MembershipProbe {
        MembershipProbe::new(Arc::clone(&self.shared))
    }

    /// Lag of every assigned partition, from the last fetch's watermarks: to the last
    /// stable offset under `read_committed`, to the high watermark otherwise.
    pub fn lag(&self) -> Vec<PartitionLag> {
        let level = self.shared.config.isolation_level;
        lock(&self.shared.assigned)
            .values()
            .map(|s| {
                let hw = known(s.high_watermark.load(Ordering::Acquire));
                let lso = known(s.last_stable_offset.load(Ordering::Acquire));
                let end = match level {
                    IsolationLevel::ReadCommitted => lso.or(hw),
                    _ => hw,
                };
                let position = known(s.position.load(Ordering::Acquire));
                let committed = known(s.committed.load(Ordering::Acquire));
                PartitionLag {
                    partition: s.tp.clone(),
                    high_watermark: hw,
                    last_stable_offset: lso,
                    position,
                    committed,
                    lag: end.zip(position).map(|(e, p)| (e - p).max(0)),
                    committed_lag: end.zip(committed).map(|(e, c)| (e - c).max(0)),
                }
            })
            .collect()
    }

    /// High watermarks of the assigned partitions, as of their last fetch.
    pub fn high_watermarks(&self) -> BTreeMap<PartitionKey, i64> {
        lock(&self.shared.assigned)
            .values()
            .filter_map(|s| {
                known(s.high_watermark.load(Ordering::Acquire)).map(|h| (s.tp.clone(), h))
            })
            .collect()
    }

    /// Asks the partition leader (ListOffsets) for the low watermark and the end this
    /// consumer can reach: the last stable offset under `read_committed`, the high
    /// watermark under `read_uncommitted`.
    ///
    /// An end the broker does not give (a negative offset) is an error, never 0: callers
    /// must not take an unknown end for an empty partition. A missing log start is 0.
    pub async fn watermarks(&self, tp: &PartitionKey) -> Result<(i64, i64)> {
        let level = self.shared.config.isolation_level;
        let fetch = &self.shared.fetch;
        let low = fetch
            .list_offset(&tp.topic, tp.partition, OffsetSpec::Earliest, level)
            .await?;
        let end = fetch
            .list_offset(&tp.topic, tp.partition, OffsetSpec::Latest, level)
            .await?;
        let end = end.ok_or_else(|| Error::Codec {
            api: "ListOffsets",
            message: format!("no end offset for {tp}"),
        })?;
        Ok((low.unwrap_or(0), end))
    }

    /// The first offset whose timestamp is at or after `timestamp_ms` (ListOffsets with a
    /// timestamp), for backfills; -1 when no record is at or after that time.
    pub async fn offset_for_timestamp(&self, tp: &PartitionKey, timestamp_ms: i64) -> Result<i64> {
        let offset = self
            .shared
            .fetch
            .list_offset(
                &tp.topic,
                tp.partition,
                OffsetSpec::Timestamp(timestamp_ms),
                self.shared.config.isolation_level,
            )
            .await?;
        Ok(offset.unwrap_or(-1))
    }

    /// Committed offsets of this group for any partitions (OffsetFetch).
    pub async fn committed(
        &self,
        partitions: &[PartitionKey],
    ) -> Result<BTreeMap<PartitionKey, Option<i64>>> {
        Ok(self
            .committed_with_metadata(partitions)
            .await?
            .into_iter()
            .map(|(tp, c)| (tp, c.map(|c| c.offset)))
            .collect())
    }

    /// Committed offsets of this group, with the metadata committed along (OffsetFetch).
    pub async fn committed_with_metadata(
        &self,
        partitions: &[PartitionKey],
    ) -> Result<BTreeMap<PartitionKey, Option<CommittedOffset>>> {
        let member = lock(&self.shared.membership).clone();
        let group = match member {
            Some(m) => m.group,
            None => GroupClient {
                conn: group::connect_coordinator(&self.shared.opts, &self.shared.config.group_id)
                    .await?,
                group_id: self.shared.config.group_id.clone(),
                instance_id: None,
            },
        };
        group.fetch_offsets_with_metadata(partitions).await
    }

    /// Moves an assigned partition to `offset`: the next records handed out start there.
    /// Batches fetched before the call are dropped. Combine with
    /// [`offset_for_timestamp`](Self::offset_for_timestamp) for backfills.
    pub fn seek(&self, tp: &PartitionKey, offset: i64) -> Result<()> {
        let assigned = lock(&self.shared.assigned);
        let state = assigned.get(tp).ok_or_else(|| Error::NotAssigned {
            topic: tp.topic.to_string(),
            partition: tp.partition,
        })?;
        state.seek(offset);
        Ok(())
    }

    /// Stops fetching these partitions until [`resume`](Self::resume). Batches fetched
    /// before the call may still be handed out. The pause survives rebalances.
    pub fn pause(&self, partitions: &[PartitionKey]) {
        let mut paused = lock(&self.shared.paused);
        let assigned = lock(&self.shared.assigned);
        for tp in partitions {
            paused.insert(tp.clone());
            if let Some(s) = assigned.get(tp) {
                s.paused.store(true, Ordering::Release);
            }
        }
    }

    /// Fetches these partitions again.
    pub fn resume(&self, partitions: &[PartitionKey]) {
        let mut paused = lock(&self.shared.paused);
        let assigned = lock(&self.shared.assigned);
        for tp in partitions {
            paused.remove(tp);
            if let Some(s) = assigned.get(tp) {
                s.paused.store(false, Ordering::Release);
                s.wake.notify_one();
            }
        }
    }

    /// Leaves the group cleanly (LeaveGroup), so its partitions move to the other members
    /// at once. Commit what you processed before calling this.
    pub async fn close(mut self) -> Result<()> {
        self.shutdown.cancel();
        // Drop pending events: this also releases a revocation the group task may wait for.
        self.rx.close();
        while self.rx.try_recv().is_ok() {}
        if let Some(mut t) = self.group_task.take() {
            // The task leaves the group within seconds; do not hang on a dead broker.
            if tokio::time::timeout(Duration::from_secs(10), &mut t)
                .await
                .is_err()
            {
                warn!("group task did not stop in time; aborting it");
                t.abort();
            }
        }
        Ok(())
    }
}
