//! The group consumer: membership, rebalancing, per-partition fetch with backpressure,
//! explicit commits, lag, pause/resume.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use regex::Regex;
use rskafka::client::{
    Client,
    partition::{OffsetAt, PartitionClient, UnknownTopicHandling},
};
use tokio::{
    sync::{Notify, mpsc, oneshot, watch},
    task::JoinHandle,
    time::Instant,
};
use tracing::{debug, info, warn};

use crate::{
    assignor::{self, Member},
    config::{AutoOffsetReset, ConnectOptions, ConsumerConfig},
    error::{Error, Result, code},
    group::{self, GroupClient, JoinOutcome},
    record::{Record, TopicPartition},
};

/// What [`Consumer::recv`] hands out.
#[derive(Debug)]
#[non_exhaustive]
pub enum Message {
    /// Records of one partition, in offset order.
    Records(Vec<Record>),
    /// These partitions were assigned to this consumer; records follow.
    Assigned(Vec<TopicPartition>),
    /// These partitions are about to leave this consumer. No more records of them follow.
    /// Finish (flush, commit) before the deadline, then call [`Revocation::done`] or drop it.
    Revoked(Revocation),
}

/// Partitions about to be revoked. The rebalance waits until this is dropped (or
/// [`done`](Revocation::done) is called) or until its deadline.
#[derive(Debug)]
pub struct Revocation {
    partitions: Vec<TopicPartition>,
    deadline: Instant,
    _ack: oneshot::Sender<()>,
}

impl Revocation {
    /// The partitions that leave.
    pub fn partitions(&self) -> &[TopicPartition] {
        &self.partitions
    }

    /// When the rebalance goes on without waiting any longer.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Lets the rebalance go on (the same as dropping this value).
    pub fn done(self) {}
}

/// Lag figures of one assigned partition.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionLag {
    /// The partition.
    pub partition: TopicPartition,
    /// High watermark from the last fetch or ListOffsets (`None` before the first).
    pub high_watermark: Option<i64>,
    /// Next offset to hand to the caller.
    pub position: Option<i64>,
    /// Offset last committed by this group (`None` if never).
    pub committed: Option<i64>,
    /// `high_watermark - position`.
    pub lag: Option<i64>,
    /// `high_watermark - committed`.
    pub committed_lag: Option<i64>,
}

/// An offset a group committed, and the metadata committed with it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommittedOffset {
    /// The next offset to read.
    pub offset: i64,
    /// What the committer stored with it (empty when nothing).
    pub metadata: String,
}

/// Per-partition fetch state shared by the fetcher task and the consumer.
#[derive(Debug)]
struct PartitionState {
    tp: TopicPartition,
    /// Bumped per assignment, so batches from an older assignment are recognised.
    epoch: u64,
    buffered: AtomicUsize,
    paused: AtomicBool,
    wake: Notify,
    high_watermark: AtomicI64,
    position: AtomicI64,
    committed: AtomicI64,
    /// A pending seek and the seek generation; batches fetched in an older seek generation
    /// are dropped.
    seek: Mutex<Seek>,
}

#[derive(Debug, Default)]
struct Seek {
    to: Option<i64>,
    generation: u64,
}

const UNKNOWN: i64 = -1;

fn known(v: i64) -> Option<i64> {
    (v >= 0).then_some(v)
}

#[derive(Debug)]
enum Event {
    Batch {
        state: Arc<PartitionState>,
        records: Vec<Record>,
        bytes: usize,
        seek_generation: u64,
    },
    Assigned(Vec<TopicPartition>),
    Revoked(Revocation),
    Fatal(Error),
}

#[derive(Debug, Clone)]
struct Membership {
    group: GroupClient,
    generation_id: i32,
    member_id: String,
}

#[derive(Debug)]
struct Shared {
    config: ConsumerConfig,
    opts: ConnectOptions,
    client: Client,
    topic_regex: Option<Regex>,
    assigned: Mutex<BTreeMap<TopicPartition, Arc<PartitionState>>>,
    paused: Mutex<HashSet<TopicPartition>>,
    membership: Mutex<Option<Membership>>,
    epoch: AtomicI64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Our critical sections never panic halfway through an update.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A Kafka consumer in a consumer group.
///
/// Records come from [`recv`](Consumer::recv), together with rebalance events. Nothing is
/// committed unless [`commit`](Consumer::commit) is called.
#[derive(Debug)]
pub struct Consumer {
    shared: Arc<Shared>,
    rx: mpsc::UnboundedReceiver<Event>,
    shutdown: watch::Sender<bool>,
    group_task: Option<JoinHandle<()>>,
}

impl Drop for Consumer {
    fn drop(&mut self) {
        // Without close() the member just disappears; its session times out on the broker.
        let _ = self.shutdown.send(true);
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
        // Our own connection first: it fails fast on bad credentials or TLS settings, where
        // rskafka would retry until its deadline.
        drop(group::connect_coordinator(&opts, &config.group_id).await?);
        let client = opts.rskafka_client().await?;
        let shared = Arc::new(Shared {
            config,
            opts,
            client,
            topic_regex,
            assigned: Mutex::default(),
            paused: Mutex::default(),
            membership: Mutex::default(),
            epoch: AtomicI64::new(0),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let group_task = tokio::spawn(group_loop(Arc::clone(&shared), tx, shutdown_rx));
        Ok(Self {
            shared,
            rx,
            shutdown,
            group_task: Some(group_task),
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
        loop {
            let event = self.rx.recv().await.ok_or(Error::Closed)?;
            match event {
                Event::Batch {
                    state,
                    records,
                    bytes,
                    seek_generation,
                } => {
                    state.buffered.fetch_sub(bytes, Ordering::AcqRel);
                    state.wake.notify_one();
                    let current = lock(&self.shared.assigned)
                        .get(&state.tp)
                        .is_some_and(|s| s.epoch == state.epoch);
                    if !current || lock(&state.seek).generation != seek_generation {
                        continue;
                    }
                    if let Some(last) = records.last() {
                        state.position.store(last.offset + 1, Ordering::Release);
                    }
                    return Ok(Message::Records(records));
                }
                Event::Assigned(tps) => return Ok(Message::Assigned(tps)),
                Event::Revoked(r) => return Ok(Message::Revoked(r)),
                Event::Fatal(e) => return Err(e),
            }
        }
    }

    /// The partitions assigned to this consumer now.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        lock(&self.shared.assigned).keys().cloned().collect()
    }

    /// Commits offsets: for each partition, the next offset to read (last processed + 1).
    ///
    /// A lost coordinator connection (broker restart) is re-established and the commit tried
    /// again a few times before an error is returned. Fails with a rejoin error
    /// ([`Error::needs_rejoin`]) when the group moved to a new generation.
    pub async fn commit(
        &self,
        offsets: impl IntoIterator<Item = (TopicPartition, i64)>,
    ) -> Result<()> {
        self.commit_with_metadata(offsets, "").await
    }

    /// As [`commit`](Self::commit), with `metadata` committed along with every offset
    /// (Kafka keeps it with the offset; [`committed_with_metadata`](Self::committed_with_metadata)
    /// reads it back). Applications mark what they did up to that offset with it.
    pub async fn commit_with_metadata(
        &self,
        offsets: impl IntoIterator<Item = (TopicPartition, i64)>,
        metadata: &str,
    ) -> Result<()> {
        let offsets: BTreeMap<TopicPartition, i64> = offsets.into_iter().collect();
        if offsets.is_empty() {
            return Ok(());
        }
        let mut backoff = Backoff::new();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let m = lock(&self.shared.membership)
                .clone()
                .ok_or_else(|| Error::NotInGroup {
                    group_id: self.shared.config.group_id.clone(),
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
                Ok(()) => break,
                Err(e) if attempt < 5 && is_coordinator_gone(&e) => {
                    debug!(error = %e, attempt, "commit: reconnecting to the coordinator");
                    tokio::time::sleep(backoff.step()).await;
                    if let Ok(conn) =
                        group::connect_coordinator(&self.shared.opts, &self.shared.config.group_id)
                            .await
                    {
                        let mut membership = lock(&self.shared.membership);
                        if let Some(current) = membership.as_mut().filter(|c| {
                            c.generation_id == m.generation_id && c.member_id == m.member_id
                        }) {
                            current.group.conn = conn;
                        }
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
        let offsets: Vec<(TopicPartition, i64)> = lock(&self.shared.assigned)
            .values()
            .filter_map(|s| known(s.position.load(Ordering::Acquire)).map(|p| (s.tp.clone(), p)))
            .collect();
        self.commit(offsets).await
    }

    /// Lag of every assigned partition, from the last fetched high watermarks.
    pub fn lag(&self) -> Vec<PartitionLag> {
        lock(&self.shared.assigned)
            .values()
            .map(|s| {
                let hw = known(s.high_watermark.load(Ordering::Acquire));
                let position = known(s.position.load(Ordering::Acquire));
                let committed = known(s.committed.load(Ordering::Acquire));
                PartitionLag {
                    partition: s.tp.clone(),
                    high_watermark: hw,
                    position,
                    committed,
                    lag: hw.zip(position).map(|(h, p)| (h - p).max(0)),
                    committed_lag: hw.zip(committed).map(|(h, c)| (h - c).max(0)),
                }
            })
            .collect()
    }

    /// High watermarks of the assigned partitions, as of their last fetch.
    pub fn high_watermarks(&self) -> BTreeMap<TopicPartition, i64> {
        lock(&self.shared.assigned)
            .values()
            .filter_map(|s| {
                known(s.high_watermark.load(Ordering::Acquire)).map(|h| (s.tp.clone(), h))
            })
            .collect()
    }

    /// Asks the partition leader for the low and high watermarks now (ListOffsets).
    pub async fn watermarks(&self, tp: &TopicPartition) -> Result<(i64, i64)> {
        let pc = self.partition_client(tp).await?;
        let low = pc.get_offset(OffsetAt::Earliest).await?;
        let high = pc.get_offset(OffsetAt::Latest).await?;
        Ok((low, high))
    }

    /// The first offset whose timestamp is at or after `timestamp_ms` (ListOffsets with a
    /// timestamp), for backfills; -1 when no record is at or after that time.
    pub async fn offset_for_timestamp(
        &self,
        tp: &TopicPartition,
        timestamp_ms: i64,
    ) -> Result<i64> {
        let pc = self.partition_client(tp).await?;
        let ts = rskafka::chrono::DateTime::from_timestamp_millis(timestamp_ms)
            .ok_or_else(|| Error::Config(format!("timestamp {timestamp_ms} out of range")))?;
        Ok(pc.get_offset(OffsetAt::Timestamp(ts)).await?)
    }

    async fn partition_client(&self, tp: &TopicPartition) -> Result<PartitionClient> {
        Ok(self
            .shared
            .client
            .partition_client(tp.topic.clone(), tp.partition, UnknownTopicHandling::Error)
            .await?)
    }

    /// Committed offsets of this group for any partitions (OffsetFetch).
    pub async fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, Option<i64>>> {
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
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, Option<CommittedOffset>>> {
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
    pub fn seek(&self, tp: &TopicPartition, offset: i64) -> Result<()> {
        let assigned = lock(&self.shared.assigned);
        let state = assigned.get(tp).ok_or_else(|| Error::NotAssigned {
            topic: tp.topic.clone(),
            partition: tp.partition,
        })?;
        {
            let mut seek = lock(&state.seek);
            seek.to = Some(offset);
            seek.generation += 1;
        }
        state.position.store(offset, Ordering::Release);
        state.wake.notify_one();
        Ok(())
    }

    /// Stops fetching these partitions until [`resume`](Self::resume). Batches fetched
    /// before the call may still be handed out. The pause survives rebalances.
    pub fn pause(&self, partitions: &[TopicPartition]) {
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
    pub fn resume(&self, partitions: &[TopicPartition]) {
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
        let _ = self.shutdown.send(true);
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

/// Whether the broker says this member's generation or identity is no longer valid.
fn membership_lost(e: &Error) -> bool {
    matches!(
        e.kafka_code(),
        Some(code::UNKNOWN_MEMBER_ID | code::ILLEGAL_GENERATION | code::FENCED_INSTANCE_ID)
    )
}

/// Whether the coordinator connection is gone or the coordinator moved: reconnecting helps.
fn is_coordinator_gone(e: &Error) -> bool {
    matches!(
        e,
        Error::Io { .. } | Error::ConnectionClosed { .. } | Error::Timeout { .. }
    ) || matches!(
        e.kafka_code(),
        Some(
            code::NOT_COORDINATOR
                | code::COORDINATOR_NOT_AVAILABLE
                | code::COORDINATOR_LOAD_IN_PROGRESS
        )
    )
}

/// Exponential backoff with jitter, capped.
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

impl Backoff {
    const MIN: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    fn new() -> Self {
        Self { next: Self::MIN }
    }

    fn reset(&mut self) {
        self.next = Self::MIN;
    }

    fn step(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        let jitter = rand::random_range(0.5..1.5);
        base.mul_f64(jitter)
    }
}

/// Sleeps, or returns `false` early when the shutdown flag is raised.
async fn sleep_or_shutdown(d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = shutdown.wait_for(|v| *v) => false,
    }
}

/// Why the member left the stable state.
#[derive(Debug)]
enum Exit {
    Rejoin,
    Lost,
    Shutdown,
}

/// The topics we subscribe to and their partition counts.
async fn subscription(shared: &Shared) -> Result<BTreeMap<String, i32>> {
    let topics = shared.client.list_topics().await?;
    let counts: BTreeMap<String, i32> = topics
        .into_iter()
        .map(|t| {
            (
                t.name,
                i32::try_from(t.partitions.len()).unwrap_or(i32::MAX),
            )
        })
        .collect();
    let mut out = BTreeMap::new();
    for t in &shared.config.topics {
        // A topic missing from metadata is still subscribed to, with no partitions yet.
        out.insert(t.clone(), counts.get(t).copied().unwrap_or(0));
    }
    if let Some(re) = &shared.topic_regex {
        for (t, c) in &counts {
            if re.is_match(t) {
                out.insert(t.clone(), *c);
            }
        }
    }
    Ok(out)
}

/// The fetch task of one assigned partition.
struct Fetcher {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

type Fetchers = BTreeMap<TopicPartition, Fetcher>;

/// Stops the fetchers of these partitions and waits until they stopped, so that every batch
/// they fetched is in the channel.
async fn stop_fetchers(fetchers: &mut Fetchers, partitions: &[TopicPartition]) {
    let mut stopped = Vec::new();
    for tp in partitions {
        if let Some(f) = fetchers.remove(tp) {
            let _ = f.stop.send(true);
            stopped.push(f.task);
        }
    }
    for t in stopped {
        let _ = t.await;
    }
}

/// Stops fetching `partitions`, tells the caller with a [`Message::Revoked`] (unless
/// shutting down), waits for the caller or the deadline, then forgets the partitions.
async fn revoke(
    shared: &Shared,
    fetchers: &mut Fetchers,
    partitions: &[TopicPartition],
    tx: &mpsc::UnboundedSender<Event>,
    shutdown: &mut watch::Receiver<bool>,
    announce: bool,
) {
    stop_fetchers(fetchers, partitions).await;
    if announce && !partitions.is_empty() {
        let (ack, acked) = oneshot::channel();
        let deadline = Instant::now() + revoke_window(shared.config.rebalance_timeout);
        let _ = tx.send(Event::Revoked(Revocation {
            partitions: partitions.to_vec(),
            deadline,
            _ack: ack,
        }));
        tokio::select! {
            _ = acked => {}
            _ = tokio::time::sleep_until(deadline) => warn!("revocation not acknowledged before its deadline"),
            () = shutdown_requested(shutdown) => {}
        }
    }
    // Batches of these partitions still queued are dropped by recv() from now on.
    let mut assigned = lock(&shared.assigned);
    for tp in partitions {
        assigned.remove(tp);
    }
}

async fn group_loop(
    shared: Arc<Shared>,
    tx: mpsc::UnboundedSender<Event>,
    mut shutdown: watch::Receiver<bool>,
) {
    let cfg = &shared.config;
    let mut member_id = String::new();
    let mut last_generation = -1;
    // Partitions being fetched; kept across rebalances of a cooperative generation.
    let mut fetchers: Fetchers = BTreeMap::new();
    let mut coordinator: Option<Arc<crate::conn::Connection>> = None;
    let mut backoff = Backoff::new();
    let strategies: Vec<_> = cfg.assignment_strategies.clone();
    'session: loop {
        if *shutdown.borrow() {
            break;
        }
        let reuse = coordinator.take().filter(|c| !c.is_closed());
        let conn = match reuse {
            Some(c) => Ok(c),
            None => group::connect_coordinator(&shared.opts, &cfg.group_id).await,
        };
        let conn = match conn {
            Ok(c) => c,
            Err(e) => {
                if !e.is_retryable() {
                    let _ = tx.send(Event::Fatal(e));
                    break;
                }
                warn!(error = %e, group = cfg.group_id, "cannot reach group coordinator");
                if !sleep_or_shutdown(backoff.step(), &mut shutdown).await {
                    break;
                }
                continue;
            }
        };
        let mut group = GroupClient {
            conn,
            group_id: cfg.group_id.clone(),
            instance_id: cfg.group_instance_id.clone(),
        };
        // Join and sync until we are in a stable generation.
        let (generation_id, assigned, subscribed, protocol) = loop {
            if *shutdown.borrow() {
                break 'session;
            }
            let subscribed = match subscription(&shared).await {
                Ok(s) => s,
                Err(e) => {
                    warn!(error = %e, "metadata request failed");
                    if !sleep_or_shutdown(backoff.step(), &mut shutdown).await {
                        break 'session;
                    }
                    continue;
                }
            };
            let topics: Vec<String> = subscribed.keys().cloned().collect();
            let owned: Vec<TopicPartition> = fetchers.keys().cloned().collect();
            let meta = match assignor::encode_subscription(&topics, last_generation, &owned) {
                Ok(m) => m,
                Err(e) => {
                    let _ = tx.send(Event::Fatal(e));
                    break 'session;
                }
            };
            let protocols: Vec<(&'static str, Bytes)> = strategies
                .iter()
                .map(|s| (s.protocol_name(), meta.clone()))
                .collect();
            let join = group.join(
                &member_id,
                cfg.session_timeout,
                cfg.rebalance_timeout,
                &protocols,
            );
            let joined = tokio::select! {
                r = join => r,
                // JoinGroup may block for a whole rebalance; do not make close() wait for it.
                () = shutdown_requested(&mut shutdown) => {
                    leave_quietly(&group, &member_id).await;
                    break 'session;
                }
            };
            let joined = match joined {
                Ok(JoinOutcome::MemberIdRequired(id)) => {
                    member_id = id;
                    continue;
                }
                Ok(JoinOutcome::Joined(j)) => j,
                Err(e) => {
                    if matches!(e.kafka_code(), Some(code::UNKNOWN_MEMBER_ID)) {
                        member_id.clear();
                    }
                    if membership_lost(&e) && !fetchers.is_empty() {
                        // A cooperative member that kept its partitions lost them now.
                        let all: Vec<TopicPartition> = fetchers.keys().cloned().collect();
                        revoke(&shared, &mut fetchers, &all, &tx, &mut shutdown, true).await;
                        *lock(&shared.membership) = None;
                    }
                    if !e.is_retryable() {
                        let _ = tx.send(Event::Fatal(e));
                        break 'session;
                    }
                    debug!(error = %e, "JoinGroup failed");
                    if !sleep_or_shutdown(backoff.step(), &mut shutdown).await {
                        break 'session;
                    }
                    if e.needs_rejoin()
                        && !matches!(e.kafka_code(), Some(code::REBALANCE_IN_PROGRESS))
                    {
                        continue 'session;
                    }
                    if matches!(
                        e,
                        Error::Io { .. } | Error::ConnectionClosed { .. } | Error::Timeout { .. }
                    ) {
                        continue 'session;
                    }
                    continue;
                }
            };
            member_id = joined.member_id.clone();
            let assignments = if joined.leader == member_id {
                match leader_assignment(&shared, &joined).await {
                    Ok(a) => a,
                    Err(e) => {
                        warn!(error = %e, "cannot compute the assignment");
                        if !sleep_or_shutdown(backoff.step(), &mut shutdown).await {
                            break 'session;
                        }
                        continue;
                    }
                }
            } else {
                Vec::new()
            };
            let sync = group.sync(
                joined.generation_id,
                &member_id,
                &joined.protocol_name,
                assignments,
                cfg.rebalance_timeout,
            );
            let synced = tokio::select! {
                r = sync => r,
                () = shutdown_requested(&mut shutdown) => {
                    leave_quietly(&group, &member_id).await;
                    break 'session;
                }
            };
            let mine = match synced.and_then(assignor::decode_assignment) {
                Ok(a) => a,
                Err(e) => {
                    if matches!(e.kafka_code(), Some(code::UNKNOWN_MEMBER_ID)) {
                        member_id.clear();
                    }
                    if membership_lost(&e) && !fetchers.is_empty() {
                        // A cooperative member that kept its partitions lost them now.
                        let all: Vec<TopicPartition> = fetchers.keys().cloned().collect();
                        revoke(&shared, &mut fetchers, &all, &tx, &mut shutdown, true).await;
                        *lock(&shared.membership) = None;
                    }
                    if !e.is_retryable() {
                        let _ = tx.send(Event::Fatal(e));
                        break 'session;
                    }
                    debug!(error = %e, "SyncGroup failed");
                    if !sleep_or_shutdown(Duration::from_millis(50), &mut shutdown).await {
                        break 'session;
                    }
                    if matches!(
                        e,
                        Error::Io { .. } | Error::ConnectionClosed { .. } | Error::Timeout { .. }
                    ) || matches!(
                        e.kafka_code(),
                        Some(code::NOT_COORDINATOR | code::COORDINATOR_NOT_AVAILABLE)
                    ) {
                        if !sleep_or_shutdown(backoff.step(), &mut shutdown).await {
                            break 'session;
                        }
                        continue 'session;
                    }
                    continue;
                }
            };
            info!(
                group = cfg.group_id,
                member_id = member_id.as_str(),
                generation = joined.generation_id,
                leader = joined.leader == member_id,
                members = joined.members.len(),
                protocol = joined.protocol_name,
                partitions = mine.len(),
                "joined group"
            );
            break (joined.generation_id, mine, subscribed, joined.protocol_name);
        };

        let cooperative = cfg
            .assignment_strategies
            .iter()
            .any(|s| s.is_cooperative() && s.protocol_name() == protocol);
        // Eager generations start from nothing (all was revoked before rejoining);
        // cooperative ones keep what they still own.
        let new: BTreeSet<TopicPartition> = assigned.iter().cloned().collect();
        let revoked: Vec<TopicPartition> = fetchers
            .keys()
            .filter(|tp| !new.contains(*tp))
            .cloned()
            .collect();
        let added: Vec<TopicPartition> = assigned
            .iter()
            .filter(|tp| !fetchers.contains_key(*tp))
            .cloned()
            .collect();
        if !revoked.is_empty() {
            revoke(&shared, &mut fetchers, &revoked, &tx, &mut shutdown, true).await;
        }
        // Committed offsets of the new partitions.
        let committed = if added.is_empty() {
            BTreeMap::new()
        } else {
            match group.fetch_offsets(&added).await {
                Ok(c) => c,
                Err(e) => {
                    warn!(error = %e, "OffsetFetch failed; rejoining");
                    if !sleep_or_shutdown(backoff.step(), &mut shutdown).await {
                        break;
                    }
                    continue;
                }
            }
        };
        backoff.reset();
        last_generation = generation_id;
        *lock(&shared.membership) = Some(Membership {
            group: group.clone(),
            generation_id,
            member_id: member_id.clone(),
        });
        // Announce first, so the event precedes every batch of the new partitions.
        if !added.is_empty() {
            let _ = tx.send(Event::Assigned(added.clone()));
        }
        start_fetchers(&shared, &mut fetchers, &added, &committed, &tx, &shutdown);
        if cooperative && !revoked.is_empty() {
            // KIP-429: after revoking, rejoin at once so the partitions reach their new owner.
            coordinator = Some(Arc::clone(&group.conn));
            continue;
        }

        // Stable: heartbeat, watch metadata, wait for shutdown.
        let mut last_ok = Instant::now();
        let mut coordinator_moved = false;
        let mut next_metadata = Instant::now() + cfg.metadata_refresh_interval;
        let exit = loop {
            tokio::select! {
                _ = tokio::time::sleep(cfg.heartbeat_interval) => {}
                _ = shutdown.wait_for(|v| *v) => break Exit::Shutdown,
            }
            match group.heartbeat(generation_id, &member_id).await {
                Ok(()) => last_ok = Instant::now(),
                Err(e) if e.needs_rejoin() => {
                    if matches!(
                        e.kafka_code(),
                        Some(code::UNKNOWN_MEMBER_ID | code::FENCED_INSTANCE_ID)
                    ) {
                        member_id.clear();
                        break Exit::Lost;
                    }
                    if matches!(e.kafka_code(), Some(code::ILLEGAL_GENERATION)) {
                        break Exit::Lost;
                    }
                    if matches!(
                        e.kafka_code(),
                        Some(code::NOT_COORDINATOR | code::COORDINATOR_NOT_AVAILABLE)
                    ) {
                        coordinator_moved = true;
                    }
                    debug!(error = %e, "rebalance");
                    break Exit::Rejoin;
                }
                Err(e) => {
                    if last_ok.elapsed() < cfg.heartbeat_interval * 2 {
                        warn!(error = %e, "heartbeat failed; reconnecting to the coordinator");
                    } else {
                        debug!(error = %e, "heartbeat failed again");
                    }
                    if last_ok.elapsed() > cfg.session_timeout {
                        break Exit::Lost;
                    }
                    let fresh = lock(&shared.membership)
                        .as_ref()
                        .map(|m| Arc::clone(&m.group.conn))
                        .filter(|c| !c.is_closed());
                    if let Some(c) = fresh {
                        // commit() already reconnected.
                        group.conn = c;
                    } else if group.conn.is_closed() {
                        match group::connect_coordinator(&shared.opts, &cfg.group_id).await {
                            Ok(c) => {
                                group.conn = c;
                                if let Some(m) = lock(&shared.membership).as_mut() {
                                    m.group = group.clone();
                                }
                            }
                            Err(e) => debug!(error = %e, "coordinator reconnect failed"),
                        }
                    }
                    continue;
                }
            }
            if Instant::now() >= next_metadata {
                next_metadata = Instant::now() + cfg.metadata_refresh_interval;
                match subscription(&shared).await {
                    Ok(now) if now != subscribed => {
                        info!("subscribed topics or partitions changed; rejoining");
                        break Exit::Rejoin;
                    }
                    Ok(_) => {}
                    Err(e) => debug!(error = %e, "metadata refresh failed"),
                }
            }
        };

        // Eager protocols (and a lost membership) revoke everything before rejoining; a
        // cooperative member keeps fetching and revokes after the next SyncGroup only what
        // moves.
        if !(cooperative && matches!(exit, Exit::Rejoin)) {
            let all: Vec<TopicPartition> = fetchers.keys().cloned().collect();
            let announce = !matches!(exit, Exit::Shutdown);
            revoke(&shared, &mut fetchers, &all, &tx, &mut shutdown, announce).await;
            *lock(&shared.membership) = None;
        }
        // Keep the coordinator connection for the rejoin, unless the coordinator moved.
        coordinator = (!coordinator_moved).then(|| Arc::clone(&group.conn));
        match exit {
            Exit::Shutdown => {
                leave_quietly(&group, &member_id).await;
                break;
            }
            Exit::Lost => info!(group = cfg.group_id, "group membership lost; rejoining"),
            Exit::Rejoin => {}
        }
    }
    let all: Vec<TopicPartition> = fetchers.keys().cloned().collect();
    stop_fetchers(&mut fetchers, &all).await;
    lock(&shared.assigned).clear();
    *lock(&shared.membership) = None;
}

/// Resolves once the shutdown flag is raised (holding no borrow of the flag afterwards).
async fn shutdown_requested(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|v| *v).await;
}

/// LeaveGroup, best effort and bounded in time: the member is leaving anyway.
async fn leave_quietly(group: &GroupClient, member_id: &str) {
    if member_id.is_empty() {
        return;
    }
    match tokio::time::timeout(Duration::from_secs(5), group.leave(member_id)).await {
        Ok(Ok(())) => debug!(member_id, "left the group"),
        Ok(Err(e)) => debug!(error = %e, "LeaveGroup failed"),
        Err(_) => debug!("LeaveGroup timed out"),
    }
}

fn revoke_window(rebalance_timeout: Duration) -> Duration {
    rebalance_timeout.saturating_sub((rebalance_timeout / 10).max(Duration::from_millis(500)))
}

async fn leader_assignment(
    shared: &Shared,
    joined: &group::Joined,
) -> Result<Vec<(String, Bytes)>> {
    let strategy = shared
        .config
        .assignment_strategies
        .iter()
        .copied()
        .find(|s| s.protocol_name() == joined.protocol_name)
        .ok_or_else(|| {
            Error::Config(format!(
                "unknown assignment protocol {}",
                joined.protocol_name
            ))
        })?;
    let mut members = Vec::with_capacity(joined.members.len());
    let mut all_topics = BTreeSet::new();
    for (id, meta) in &joined.members {
        let sub = assignor::decode_subscription(meta.clone())?;
        let topics: BTreeSet<String> = sub.topics.into_iter().collect();
        all_topics.extend(topics.iter().cloned());
        members.push(Member {
            member_id: id.clone(),
            topics,
            owned: sub.owned,
            generation_id: sub.generation_id,
        });
    }
    let counts: HashMap<String, i32> = shared
        .client
        .list_topics()
        .await?
        .into_iter()
        .map(|t| {
            (
                t.name,
                i32::try_from(t.partitions.len()).unwrap_or(i32::MAX),
            )
        })
        .collect();
    let partitions: BTreeMap<String, i32> = all_topics
        .into_iter()
        .filter_map(|t| counts.get(&t).map(|c| (t, *c)))
        .collect();
    let plan = assignor::assign(strategy, &members, &partitions);
    plan.into_iter()
        .map(|(m, tps)| Ok((m, assignor::encode_assignment(&tps)?)))
        .collect()
}

fn start_fetchers(
    shared: &Arc<Shared>,
    fetchers: &mut Fetchers,
    added: &[TopicPartition],
    committed: &BTreeMap<TopicPartition, Option<i64>>,
    tx: &mpsc::UnboundedSender<Event>,
    shutdown: &watch::Receiver<bool>,
) {
    let epoch = u64::try_from(shared.epoch.fetch_add(1, Ordering::AcqRel)).unwrap_or(0);
    let paused = lock(&shared.paused).clone();
    for tp in added {
        let (stop, stop_rx) = watch::channel(false);
        let c = committed.get(tp).copied().flatten();
        let state = Arc::new(PartitionState {
            tp: tp.clone(),
            epoch,
            buffered: AtomicUsize::new(0),
            paused: AtomicBool::new(paused.contains(tp)),
            wake: Notify::new(),
            high_watermark: AtomicI64::new(UNKNOWN),
            position: AtomicI64::new(c.unwrap_or(UNKNOWN)),
            committed: AtomicI64::new(c.unwrap_or(UNKNOWN)),
            seek: Mutex::default(),
        });
        lock(&shared.assigned).insert(tp.clone(), Arc::clone(&state));
        let task = tokio::spawn(fetch_loop(
            Arc::clone(shared),
            state,
            c,
            tx.clone(),
            stop_rx,
            shutdown.clone(),
        ));
        fetchers.insert(tp.clone(), Fetcher { stop, task });
    }
}

async fn fetch_loop(
    shared: Arc<Shared>,
    state: Arc<PartitionState>,
    committed: Option<i64>,
    tx: mpsc::UnboundedSender<Event>,
    mut stop: watch::Receiver<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    tokio::select! {
        _ = fetch_partition(&shared, &state, committed, &tx) => {}
        _ = stop.wait_for(|v| *v) => {}
        _ = shutdown.wait_for(|v| *v) => {}
    }
}

async fn fetch_partition(
    shared: &Shared,
    state: &Arc<PartitionState>,
    committed: Option<i64>,
    tx: &mpsc::UnboundedSender<Event>,
) {
    let cfg = &shared.config;
    let topic: Arc<str> = Arc::from(state.tp.topic.as_str());
    let partition = state.tp.partition;
    let mut backoff = Backoff::new();
    let pc = loop {
        match shared
            .client
            .partition_client(
                state.tp.topic.clone(),
                partition,
                UnknownTopicHandling::Retry,
            )
            .await
        {
            Ok(pc) => break pc,
            Err(e) => {
                warn!(partition = %state.tp, error = %e, "no partition client yet");
                tokio::time::sleep(backoff.step()).await;
            }
        }
    };
    let mut offset = match committed {
        Some(o) => o,
        None => reset_offset(&pc, cfg.auto_offset_reset, &state.tp).await,
    };
    state.position.store(offset, Ordering::Release);
    let max_wait = i32::try_from(cfg.fetch_max_wait.as_millis()).unwrap_or(i32::MAX);
    loop {
        // Backpressure and pause: wait until the caller drained the buffer / resumed.
        while state.paused.load(Ordering::Acquire)
            || state.buffered.load(Ordering::Acquire) >= cfg.max_buffered_bytes
        {
            state.wake.notified().await;
        }
        let seek_generation = {
            let mut seek = lock(&state.seek);
            if let Some(to) = seek.to.take() {
                offset = to;
            }
            seek.generation
        };
        match pc
            .fetch_records(offset, 1..cfg.fetch_max_bytes, max_wait)
            .await
        {
            Ok((records, hw)) => {
                backoff.reset();
                state.high_watermark.store(hw, Ordering::Release);
                if state.paused.load(Ordering::Acquire) {
                    // Paused while the fetch was in flight: drop it, fetch again on resume.
                    continue;
                }
                if records.is_empty() {
                    if hw > offset {
                        // Data exists but none came back: rskafka drops control batches
                        // (transaction markers). Do not spin on it.
                        debug!(partition = %state.tp, offset, hw, "empty fetch below the high watermark");
                        tokio::time::sleep(cfg.fetch_max_wait).await;
                    }
                    continue;
                }
                let mut bytes = 0;
                let batch: Vec<Record> = records
                    .into_iter()
                    .filter(|r| r.offset >= offset)
                    .map(|r| {
                        let r = Record::from_rskafka(&topic, partition, r);
                        bytes += r.footprint();
                        r
                    })
                    .collect();
                let Some(last) = batch.last() else { continue };
                offset = last.offset + 1;
                state.buffered.fetch_add(bytes, Ordering::AcqRel);
                if tx
                    .send(Event::Batch {
                        state: Arc::clone(state),
                        records: batch,
                        bytes,
                        seek_generation,
                    })
                    .is_err()
                {
                    return;
                }
            }
            Err(rskafka::client::error::Error::ServerError {
                protocol_error: rskafka::client::error::ProtocolError::OffsetOutOfRange,
                ..
            }) => {
                let new = reset_offset(&pc, cfg.auto_offset_reset, &state.tp).await;
                warn!(partition = %state.tp, offset, new, "offset out of range; reset");
                offset = new;
                state.position.store(offset, Ordering::Release);
            }
            Err(e) => {
                let wait = backoff.step();
                warn!(partition = %state.tp, error = %e, ?wait, "fetch failed; retrying");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Where to start when there is no usable committed offset; retries until the broker answers.
async fn reset_offset(pc: &PartitionClient, reset: AutoOffsetReset, tp: &TopicPartition) -> i64 {
    let at = match reset {
        AutoOffsetReset::Earliest => OffsetAt::Earliest,
        AutoOffsetReset::Latest => OffsetAt::Latest,
    };
    let mut backoff = Backoff::new();
    loop {
        match pc.get_offset(at).await {
            Ok(o) => return o,
            Err(e) => {
                warn!(partition = %tp, error = %e, "ListOffsets failed; retrying");
                tokio::time::sleep(backoff.step()).await;
            }
        }
    }
}
