//! The Fetch request over one of our connections, and its response decoded per partition.

use std::{sync::Arc, time::Duration};

use kafka_protocol::messages::{
    FetchRequest, FetchResponse, TopicName,
    fetch_request::{FetchPartition, FetchTopic},
};
use uuid::Uuid;

use super::partition::{
    AbortedTransaction, DecodeOptions, DecodedPartition, IsolationLevel, decode_partition,
};
use crate::{
    conn::{Connection, Request},
    error::{Error, Result, code},
};

impl Request for FetchRequest {
    const KEY: i16 = kafka_protocol::messages::ApiKey::Fetch as i16;
    const NAME: &'static str = "Fetch";
    type Response = FetchResponse;
}

/// The highest Fetch version we send. From 13 on topics are named by id; 18 adds fields
/// for replicas only.
const MAX_VERSION: i16 = 17;
/// The last version that names topics.
const LAST_VERSION_WITH_NAMES: i16 = 12;
/// What a response may take beyond the broker's `max_wait`.
const NETWORK_SLACK: Duration = Duration::from_secs(30);

/// Request-wide settings of a fetch.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FetchParams {
    /// How long the broker may wait for `min_bytes` to arrive.
    pub max_wait: Duration,
    /// The broker answers as soon as it has this many bytes.
    pub min_bytes: i32,
    /// Upper bound of the whole response (the first batch comes whole even if larger).
    pub max_bytes: i32,
    /// Upper bound of bytes per partition.
    pub partition_max_bytes: i32,
    /// Isolation level and decoder limits.
    pub decode: DecodeOptions,
}

impl Default for FetchParams {
    fn default() -> Self {
        Self {
            max_wait: Duration::from_millis(500),
            min_bytes: 1,
            max_bytes: 50 * 1024 * 1024,
            partition_max_bytes: 50 * 1024 * 1024,
            decode: DecodeOptions::default(),
        }
    }
}

/// One partition to fetch.
#[derive(Debug, Clone)]
pub(crate) struct PartitionFetch {
    /// Topic name.
    pub(crate) topic: Arc<str>,
    /// Topic id from Metadata; nil when unknown, which limits the request to Fetch v12.
    pub(crate) topic_id: Uuid,
    /// Partition index.
    pub(crate) partition: i32,
    /// First offset wanted.
    pub(crate) offset: i64,
    /// Upper bound of bytes for this partition.
    pub(crate) max_bytes: i32,
    /// The leader epoch we know, or -1.
    pub(crate) leader_epoch: i32,
}

/// What a fetch brought for one partition.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FetchedPartition {
    /// Topic name.
    pub topic: Arc<str>,
    /// Partition index.
    pub partition: i32,
    /// The offset the fetch asked for.
    pub fetch_offset: i64,
    /// Kafka error code for this partition (0 for none).
    pub error_code: i16,
    /// Offset after the last replicated record.
    pub high_watermark: i64,
    /// Offset below which every transaction is decided (-1 when the broker does not say).
    pub last_stable_offset: i64,
    /// First offset still in the log (-1 when the broker does not say).
    pub log_start_offset: i64,
    /// The leader the broker names when it is no longer the leader (KIP-951), if any.
    pub current_leader: Option<(i32, i32)>,
    /// Records, next offset and a possible decode error.
    pub decoded: DecodedPartition,
}

impl FetchedPartition {
    /// The end a consumer can reach under `level`: the last stable offset under
    /// `read_committed` (the high watermark when the broker leaves it out), the high
    /// watermark otherwise.
    pub fn end_offset(&self, level: IsolationLevel) -> i64 {
        match level {
            IsolationLevel::ReadCommitted if self.last_stable_offset >= 0 => {
                self.last_stable_offset
            }
            _ => self.high_watermark,
        }
    }
}

/// The Fetch version to use on `conn` for `partitions`.
fn version(conn: &Connection, partitions: &[PartitionFetch]) -> Result<i16> {
    let cap = if partitions.iter().all(|p| !p.topic_id.is_nil()) {
        MAX_VERSION
    } else {
        LAST_VERSION_WITH_NAMES
    };
    conn.version::<FetchRequest>(cap)
}

fn build(params: &FetchParams, partitions: &[PartitionFetch]) -> FetchRequest {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for p in partitions {
        let partition = FetchPartition::default()
            .with_partition(p.partition)
            .with_fetch_offset(p.offset)
            .with_partition_max_bytes(p.max_bytes)
            .with_current_leader_epoch(p.leader_epoch);
        match topics
            .iter_mut()
            .find(|t| t.topic.as_str() == &*p.topic && t.topic_id == p.topic_id)
        {
            Some(t) => t.partitions.push(partition),
            None => topics.push(
                FetchTopic::default()
                    .with_topic(TopicName(kafka_protocol::protocol::StrBytes::from_string(
                        p.topic.to_string(),
                    )))
                    .with_topic_id(p.topic_id)
                    .with_partitions(vec![partition]),
            ),
        }
    }
    FetchRequest::default()
        .with_max_wait_ms(i32::try_from(params.max_wait.as_millis()).unwrap_or(i32::MAX))
        .with_min_bytes(params.min_bytes)
        .with_max_bytes(params.max_bytes)
        .with_isolation_level(params.decode.isolation_level.wire_value())
        // No fetch session: every request is a full one.
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(topics)
}

/// Sends one Fetch for `partitions` (all led by the broker of `conn`) and decodes each
/// partition's records. A partition error or a batch that does not decode is reported in
/// its [`FetchedPartition`]; only a failed request or a request-wide error is an `Err`.
pub(crate) async fn fetch(
    conn: &Connection,
    params: &FetchParams,
    partitions: &[PartitionFetch],
) -> Result<Vec<FetchedPartition>> {
    let version = version(conn, partitions)?;
    let request = build(params, partitions);
    let response = conn
        .send(version, &request, params.max_wait + NETWORK_SLACK)
        .await?;
    answers(response, version, params, partitions)
}

/// Matches a Fetch response at `version` to the `partitions` asked for and decodes each
/// partition's records. Pure, so the fuzz targets run it on any bytes the broker may send.
pub(crate) fn answers(
    response: FetchResponse,
    version: i16,
    params: &FetchParams,
    partitions: &[PartitionFetch],
) -> Result<Vec<FetchedPartition>> {
    if response.error_code != code::NONE {
        return Err(Error::broker("Fetch", response.error_code, None));
    }
    // Which requested partition each answer belongs to (by name up to v12, by id after).
    let by_id = version > LAST_VERSION_WITH_NAMES;
    let mut unanswered: Vec<&PartitionFetch> = partitions.iter().collect();
    let mut out = Vec::with_capacity(partitions.len());
    for topic in response.responses {
        for p in topic.partitions {
            let Some(i) = unanswered.iter().position(|r| {
                r.partition == p.partition_index
                    && if by_id {
                        r.topic_id == topic.topic_id
                    } else {
                        &*r.topic == topic.topic.as_str()
                    }
            }) else {
                continue;
            };
            let req = unanswered.swap_remove(i);
            let aborted: Vec<AbortedTransaction> = p
                .aborted_transactions
                .unwrap_or_default()
                .iter()
                .map(|t| AbortedTransaction {
                    producer_id: t.producer_id.0,
                    first_offset: t.first_offset,
                })
                .collect();
            let decoded = match p.records {
                Some(records) if p.error_code == code::NONE => {
                    decode_partition(records, req.offset, &aborted, &params.decode)
                }
                _ => DecodedPartition {
                    next_offset: req.offset,
                    ..DecodedPartition::default()
                },
            };
            let leader = &p.current_leader;
            out.push(FetchedPartition {
                topic: Arc::clone(&req.topic),
                partition: req.partition,
                fetch_offset: req.offset,
                error_code: p.error_code,
                high_watermark: p.high_watermark,
                last_stable_offset: p.last_stable_offset,
                log_start_offset: p.log_start_offset,
                current_leader: (leader.leader_id.0 >= 0)
                    .then_some((leader.leader_id.0, leader.leader_epoch)),
                decoded,
            });
        }
    }
    Ok(out)
}
