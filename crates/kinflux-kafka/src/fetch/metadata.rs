//! Metadata and ListOffsets over our own connection: who leads each partition, the topic
//! ids that Fetch v13+ needs, and offsets by time.

use std::{collections::HashMap, sync::Arc, time::Duration};

use kafka_protocol::{
    messages::{
        ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, TopicName,
        list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic},
        metadata_request::MetadataRequestTopic,
    },
    protocol::StrBytes,
};
use uuid::Uuid;

use super::partition::IsolationLevel;
use crate::{
    conn::{Connection, Request},
    error::{Error, Result, code},
};

impl Request for ListOffsetsRequest {
    const KEY: i16 = kafka_protocol::messages::ApiKey::ListOffsets as i16;
    const NAME: &'static str = "ListOffsets";
    type Response = ListOffsetsResponse;
}

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a partition lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Leader {
    /// The leader's broker id, -1 while there is none.
    pub(crate) broker: i32,
    /// The leader epoch, -1 when unknown.
    pub(crate) epoch: i32,
}

/// What Metadata told about some topics.
#[derive(Debug, Default)]
pub(crate) struct Layout {
    /// Broker id to `host:port`.
    pub(crate) brokers: HashMap<i32, String>,
    /// Topic name to id (nil before Metadata v10).
    pub(crate) topic_ids: HashMap<Arc<str>, Uuid>,
    /// Partition leaders.
    pub(crate) leaders: HashMap<(Arc<str>, i32), Leader>,
    /// Topics the broker answered with an error (unknown topic, not authorized).
    pub(crate) topic_errors: HashMap<Arc<str>, i16>,
    /// Kafka's internal topics (`__consumer_offsets`, `__transaction_state`).
    pub(crate) internal: std::collections::HashSet<Arc<str>>,
}

/// Asks for the layout of `topics`, or of every topic when `None`.
pub(crate) async fn metadata(conn: &Connection, topics: Option<&[Arc<str>]>) -> Result<Layout> {
    let version = conn.version::<MetadataRequest>(12)?;
    let request = MetadataRequest::default()
        .with_topics(topics.map(|topics| {
            topics
                .iter()
                .map(|t| {
                    MetadataRequestTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string(t.to_string()))))
                })
                .collect()
        }))
        .with_allow_auto_topic_creation(false);
    let response = conn.send(version, &request, REQUEST_TIMEOUT).await?;
    let mut layout = Layout {
        brokers: response
            .brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
            .collect(),
        ..Layout::default()
    };
    for t in response.topics {
        let Some(name) = t.name else { continue };
        let name: Arc<str> = Arc::from(name.as_str());
        if t.error_code != code::NONE {
            layout.topic_errors.insert(name, t.error_code);
            continue;
        }
        if t.is_internal {
            layout.internal.insert(Arc::clone(&name));
        }
        layout.topic_ids.insert(Arc::clone(&name), t.topic_id);
        for p in t.partitions {
            layout.leaders.insert(
                (Arc::clone(&name), p.partition_index),
                Leader {
                    broker: p.leader_id.0,
                    epoch: p.leader_epoch,
                },
            );
        }
    }
    Ok(layout)
}

/// Which offset [`FetchClient::list_offset`](super::FetchClient::list_offset) looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The end: the high watermark under `read_uncommitted`, the last stable offset under
    /// `read_committed`.
    Latest,
    /// The first offset whose timestamp is at or after this many ms since the epoch (the
    /// end when there is none).
    Timestamp(i64),
}

impl OffsetSpec {
    fn wire(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(t) => t,
        }
    }
}

/// One ListOffsets round trip for one partition, on the connection to its leader.
/// Returns the offset, or the end of the log when a timestamp is past every record.
pub(crate) async fn list_offset(
    conn: &Connection,
    topic: &str,
    partition: i32,
    leader_epoch: i32,
    spec: OffsetSpec,
    isolation: IsolationLevel,
) -> Result<Option<i64>> {
    let version = conn.version::<ListOffsetsRequest>(7)?;
    let request = ListOffsetsRequest::default()
        .with_replica_id((-1).into())
        .with_isolation_level(isolation.wire_value())
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(partition)
                        .with_current_leader_epoch(leader_epoch)
                        .with_timestamp(spec.wire()),
                ]),
        ]);
    let response = conn.send(version, &request, REQUEST_TIMEOUT).await?;
    let answer = response
        .topics
        .into_iter()
        .flat_map(|t| t.partitions)
        .find(|p| p.partition_index == partition)
        .ok_or_else(|| Error::Codec {
            api: "ListOffsets",
            message: format!("no answer for {topic}/{partition}"),
        })?;
    if answer.error_code != code::NONE {
        return Err(Error::broker(
            "ListOffsets",
            answer.error_code,
            Some(format!("{topic}/{partition}")),
        ));
    }
    Ok((answer.offset >= 0).then_some(answer.offset))
}
