//! A fetch client without a group: finds partition leaders, keeps one connection per
//! broker, sends Fetch and ListOffsets there, and follows leadership changes.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, MutexGuard},
};

use tokio::task::JoinSet;
use tracing::debug;

use super::{
    metadata::{self, Layout, Leader, OffsetSpec},
    partition::{DecodedPartition, IsolationLevel},
    request::{self, FetchParams, FetchedPartition, PartitionFetch},
};
use crate::{
    config::{SaslConfig, TlsConfig},
    conn::Connection,
    error::{Error, Result, code},
    security::ConnectOptions,
};

/// A partition and the offset to fetch it from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPosition {
    /// Topic name.
    pub topic: Arc<str>,
    /// Partition index.
    pub partition: i32,
    /// First offset wanted.
    pub offset: i64,
}

/// Fetches any partitions from their leaders, outside of a consumer group.
///
/// ```no_run
/// use std::sync::Arc;
/// use kinflux_kafka::fetch::{FetchClient, FetchParams, FetchPosition};
///
/// # async fn run() -> kinflux_kafka::Result<()> {
/// let client = FetchClient::connect(&["127.0.0.1:9092".into()], "me", None, None).await?;
/// let wanted = [FetchPosition { topic: Arc::from("metrics"), partition: 0, offset: 0 }];
/// for p in client.fetch(&wanted, &FetchParams::default()).await? {
///     for r in &p.decoded.records {
///         println!("{}@{}: {:?}", p.partition, r.offset, r.value);
///     }
///     println!("next offset {}, lag {}", p.decoded.next_offset,
///         p.last_stable_offset - p.decoded.next_offset);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct FetchClient {
    opts: ConnectOptions,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    layout: Layout,
    conns: HashMap<i32, Arc<Connection>>,
}

const UNKNOWN_TOPIC_ID: i16 = 100;
const INCONSISTENT_TOPIC_ID: i16 = 103;

/// Errors after which the partition's leader must be looked up again.
fn leader_moved(error_code: i16) -> bool {
    matches!(
        error_code,
        code::NOT_LEADER_OR_FOLLOWER
            | code::LEADER_NOT_AVAILABLE
            | code::UNKNOWN_TOPIC_OR_PARTITION
            | code::FENCED_LEADER_EPOCH
            | code::UNKNOWN_LEADER_EPOCH
            | code::KAFKA_STORAGE_ERROR
            | UNKNOWN_TOPIC_ID
            | INCONSISTENT_TOPIC_ID
    )
}

impl FetchClient {
    /// Connects to the first reachable bootstrap broker (which checks TLS and SASL settings
    /// at once) and keeps its connection for metadata.
    pub async fn connect(
        brokers: &[String],
        client_id: &str,
        tls: Option<&TlsConfig>,
        sasl: Option<&SaslConfig>,
    ) -> Result<Self> {
        let client = Self::with_options(ConnectOptions::new(brokers, client_id, tls, sasl)?);
        drop(client.bootstrap().await?);
        Ok(client)
    }

    /// A client that connects lazily with `opts`.
    pub(crate) fn with_options(opts: ConnectOptions) -> Self {
        Self {
            opts,
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No critical section here panics halfway through an update.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A connection for metadata: any live broker connection, or a new one to a bootstrap
    /// broker.
    async fn bootstrap(&self) -> Result<Arc<Connection>> {
        if let Some(c) = self.lock().conns.values().find(|c| !c.is_closed()) {
            return Ok(Arc::clone(c));
        }
        let mut last = Error::Config("no bootstrap brokers".into());
        for broker in &self.opts.brokers {
            match Connection::connect(broker, &self.opts).await {
                Ok(c) => {
                    let c = Arc::new(c);
                    // Kept under a key no broker id takes, until Metadata names the brokers.
                    self.lock().conns.insert(i32::MIN, Arc::clone(&c));
                    return Ok(c);
                }
                Err(e) if e.is_retryable() => {
                    debug!(broker, error = %e, "bootstrap broker unreachable");
                    last = e;
                }
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// The connection to broker `id`, opened when needed.
    async fn broker(&self, id: i32) -> Result<Arc<Connection>> {
        let addr = {
            let state = self.lock();
            if let Some(c) = state.conns.get(&id).filter(|c| !c.is_closed()) {
                return Ok(Arc::clone(c));
            }
            state.layout.brokers.get(&id).cloned()
        };
        let addr = addr.ok_or_else(|| Error::Config(format!("broker {id} is not in metadata")))?;
        let conn = Arc::new(Connection::connect(&addr, &self.opts).await?);
        self.lock().conns.insert(id, Arc::clone(&conn));
        Ok(conn)
    }

    /// Reads the leaders and ids of `topics` again.
    pub async fn refresh_metadata(&self, topics: &[Arc<str>]) -> Result<()> {
        let conn = self.bootstrap().await?;
        let fresh = match metadata::metadata(&conn, Some(topics)).await {
            Ok(l) => l,
            Err(e) => {
                self.forget_closed();
                return Err(e);
            }
        };
        let mut state = self.lock();
        let layout = &mut state.layout;
        layout.brokers.extend(fresh.brokers);
        for t in topics {
            layout.leaders.retain(|(topic, _), _| topic != t);
            layout.topic_ids.remove(t);
            layout.topic_errors.remove(t);
        }
        layout.topic_ids.extend(fresh.topic_ids);
        layout.leaders.extend(fresh.leaders);
        layout.topic_errors.extend(fresh.topic_errors);
        Ok(())
    }

    /// Every topic of the cluster with its partition count (internal topics left out).
    pub async fn partition_counts(&self) -> Result<BTreeMap<String, i32>> {
        let conn = self.bootstrap().await?;
        let layout = match metadata::metadata(&conn, None).await {
            Ok(l) => l,
            Err(e) => {
                self.forget_closed();
                return Err(e);
            }
        };
        let mut counts: BTreeMap<String, i32> = BTreeMap::new();
        for (topic, _) in layout.leaders.keys() {
            if !layout.internal.contains(topic) {
                *counts.entry(topic.to_string()).or_default() += 1;
            }
        }
        Ok(counts)
    }

    fn forget_closed(&self) {
        self.lock().conns.retain(|_, c| !c.is_closed());
    }

    /// The leader of a partition, refreshing metadata once when it is unknown. `Err` holds
    /// the Kafka error code to report for the partition.
    async fn leader(&self, topic: &Arc<str>, partition: i32) -> Result<Result<Leader, i16>> {
        if let Ok(l) = self.known_leader(topic, partition) {
            return Ok(Ok(l));
        }
        self.refresh_metadata(std::slice::from_ref(topic)).await?;
        Ok(self.known_leader(topic, partition))
    }

    /// The leader as metadata last said, or the error code that explains its absence.
    fn known_leader(&self, topic: &Arc<str>, partition: i32) -> Result<Leader, i16> {
        let state = self.lock();
        let layout = &state.layout;
        let key = (Arc::clone(topic), partition);
        match layout.leaders.get(&key) {
            Some(l) if l.broker >= 0 => Ok(*l),
            Some(_) => Err(code::LEADER_NOT_AVAILABLE),
            None => Err(layout
                .topic_errors
                .get(topic)
                .copied()
                .unwrap_or(code::UNKNOWN_TOPIC_OR_PARTITION)),
        }
    }

    /// Fetches `wanted` from their leaders, one request per leader, all in flight at once.
    /// Each partition may appear once (a broker answers a partition once per request).
    ///
    /// Every partition gets a [`FetchedPartition`]: records, watermarks and the next offset,
    /// or a Kafka error code (a partition without a leader gets `LEADER_NOT_AVAILABLE` or
    /// `UNKNOWN_TOPIC_OR_PARTITION`; its leader is looked up again on the next call). An
    /// `Err` means a request failed as a whole (connection lost, timeout).
    pub async fn fetch(
        &self,
        wanted: &[FetchPosition],
        params: &FetchParams,
    ) -> Result<Vec<FetchedPartition>> {
        let mut out = Vec::with_capacity(wanted.len());
        let mut by_leader: HashMap<i32, Vec<PartitionFetch>> = HashMap::new();
        for w in wanted {
            match self.leader(&w.topic, w.partition).await? {
                Ok(leader) => {
                    let topic_id = self
                        .lock()
                        .layout
                        .topic_ids
                        .get(&w.topic)
                        .copied()
                        .unwrap_or_default();
                    by_leader
                        .entry(leader.broker)
                        .or_default()
                        .push(PartitionFetch {
                            topic: Arc::clone(&w.topic),
                            topic_id,
                            partition: w.partition,
                            offset: w.offset,
                            max_bytes: params.partition_max_bytes,
                            leader_epoch: leader.epoch,
                        });
                }
                Err(error_code) => out.push(unfetched(w, error_code)),
            }
        }
        let mut sends = Vec::with_capacity(by_leader.len());
        for (broker, partitions) in by_leader {
            match self.broker(broker).await {
                Ok(conn) => sends.push((broker, conn, partitions)),
                Err(e) => {
                    self.forget_leader(broker);
                    return Err(e);
                }
            }
        }
        let mut failed = None;
        if sends.len() == 1 {
            // The common case, one leader: no task to spawn.
            for (broker, conn, partitions) in sends {
                let result = request::fetch(&conn, params, &partitions).await;
                self.absorb(broker, result, &mut out, &mut failed);
            }
        } else {
            let mut requests = JoinSet::new();
            for (broker, conn, partitions) in sends {
                let params = params.clone();
                requests.spawn(async move {
                    (broker, request::fetch(&conn, &params, &partitions).await)
                });
            }
            while let Some(joined) = requests.join_next().await {
                let (broker, result) = joined.map_err(|e| Error::Codec {
                    api: "Fetch",
                    message: format!("fetch task ended: {e}"),
                })?;
                self.absorb(broker, result, &mut out, &mut failed);
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Takes one broker's answer: its partitions into `out`, leadership changes into the
    /// layout, a failure into `failed`.
    fn absorb(
        &self,
        broker: i32,
        result: Result<Vec<FetchedPartition>>,
        out: &mut Vec<FetchedPartition>,
        failed: &mut Option<Error>,
    ) {
        match result {
            Ok(parts) => {
                for p in &parts {
                    if leader_moved(p.error_code) {
                        self.leader_changed(p);
                    }
                }
                out.extend(parts);
            }
            Err(e) => {
                self.forget_closed();
                self.forget_leader(broker);
                failed.get_or_insert(e);
            }
        }
    }

    /// Takes the leader the broker named (KIP-951), or forgets the partition's leader so the
    /// next fetch looks it up.
    fn leader_changed(&self, p: &FetchedPartition) {
        let mut state = self.lock();
        let key = (Arc::clone(&p.topic), p.partition);
        match p.current_leader {
            Some((broker, epoch)) if state.layout.brokers.contains_key(&broker) => {
                state.layout.leaders.insert(key, Leader { broker, epoch });
            }
            _ => {
                state.layout.leaders.remove(&key);
            }
        }
    }

    /// Forgets the partitions led by `broker`, after its connection failed.
    fn forget_leader(&self, broker: i32) {
        self.lock().layout.leaders.retain(|_, l| l.broker != broker);
    }

    /// Looks up an offset of one partition on its leader (ListOffsets). `None` when a
    /// timestamp is past every record.
    pub async fn list_offset(
        &self,
        topic: &Arc<str>,
        partition: i32,
        spec: OffsetSpec,
        isolation: IsolationLevel,
    ) -> Result<Option<i64>> {
        let leader = match self.leader(topic, partition).await? {
            Ok(l) => l,
            Err(error_code) => {
                return Err(Error::broker(
                    "ListOffsets",
                    error_code,
                    Some(format!("{topic}/{partition}")),
                ));
            }
        };
        let conn = self.broker(leader.broker).await?;
        let result =
            metadata::list_offset(&conn, topic, partition, leader.epoch, spec, isolation).await;
        if let Err(Error::Broker { code, .. }) = &result {
            if leader_moved(*code) {
                self.lock()
                    .layout
                    .leaders
                    .remove(&(Arc::clone(topic), partition));
            }
        }
        if result.is_err() {
            self.forget_closed();
        }
        result
    }
}

/// The answer for a partition that could not be asked for.
fn unfetched(w: &FetchPosition, error_code: i16) -> FetchedPartition {
    FetchedPartition {
        topic: Arc::clone(&w.topic),
        partition: w.partition,
        fetch_offset: w.offset,
        error_code,
        high_watermark: -1,
        last_stable_offset: -1,
        log_start_offset: -1,
        current_leader: None,
        decoded: DecodedPartition {
            next_offset: w.offset,
            ..DecodedPartition::default()
        },
    }
}
