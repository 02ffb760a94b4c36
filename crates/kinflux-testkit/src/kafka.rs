//! Kafka from the test's side, with rskafka: a client, topics, producing test records,
//! reading a partition back, and watermarks. Every helper panics on a broker error: a test
//! cannot go on without its data.

use rskafka::chrono::{DateTime, Utc};
use rskafka::client::partition::{Compression, OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
pub use rskafka::record::{Record, RecordAndOffset};

/// Records per produce request at most.
const CHUNK_RECORDS: usize = 2_000;
/// Payload bytes per produce request at most: well under the broker's default
/// `message.max.bytes` (1 MiB), which bounds one record batch.
const CHUNK_BYTES: usize = 512 * 1024;
/// How long CreateTopics may take on the broker, in milliseconds.
const CREATE_TIMEOUT_MS: i32 = 10_000;

/// The bootstrap list of a `KINFLUX_KAFKA_BROKERS`-style value (`host:port,host:port`).
pub fn bootstrap(brokers: &str) -> Vec<String> {
    brokers
        .split(',')
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(str::to_owned)
        .collect()
}

/// An rskafka client of `brokers`.
///
/// # Panics
/// When no broker answers.
pub async fn client(brokers: &str) -> Client {
    ClientBuilder::new(bootstrap(brokers))
        .build()
        .await
        .unwrap_or_else(|e| panic!("rskafka client of {brokers}: {e}"))
}

/// Creates `topic` with `partitions` partitions, each with one replica.
///
/// # Panics
/// When the broker refuses (the topic exists, say).
pub async fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    create_topic_replicated(brokers, topic, partitions, 1).await;
}

/// Creates `topic` with `partitions` partitions of `replication` replicas each.
///
/// # Panics
/// When the broker refuses (too few brokers for `replication`, say).
pub async fn create_topic_replicated(
    brokers: &str,
    topic: &str,
    partitions: i32,
    replication: i16,
) {
    client(brokers)
        .await
        .controller_client()
        .expect("a controller client")
        .create_topic(topic, partitions, replication, CREATE_TIMEOUT_MS)
        .await
        .unwrap_or_else(|e| panic!("create topic {topic}: {e}"));
    // CreateTopics answers once the controller has the topic; a broker's metadata cache
    // may lag behind, and a group leader that assigns from it then sees no partitions.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let listed = client(brokers)
            .await
            .list_topics()
            .await
            .ok()
            .and_then(|topics| {
                topics
                    .into_iter()
                    .find(|t| t.name == topic)
                    .map(|t| t.partitions.len())
            });
        if listed == Some(partitions as usize) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "topic {topic} not in metadata 30 s after creation"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The partition ids of `topic`, in order.
///
/// # Panics
/// When the broker does not know `topic`.
pub async fn partitions(brokers: &str, topic: &str) -> Vec<i32> {
    let topics = client(brokers)
        .await
        .list_topics()
        .await
        .expect("list topics");
    let mut ids: Vec<i32> = topics
        .into_iter()
        .find(|t| t.name == topic)
        .unwrap_or_else(|| panic!("no topic {topic} on {brokers}"))
        .partitions
        .into_iter()
        .collect();
    ids.sort_unstable();
    ids
}

/// A record timestamp from milliseconds since the epoch.
///
/// # Panics
/// When `ms` is outside chrono's range.
pub fn timestamp(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).expect("timestamp in chrono's range")
}

/// A record with `value` at `timestamp_ms`, without key or headers (set its `key` and
/// `headers` fields for those).
pub fn record(value: impl Into<Vec<u8>>, timestamp_ms: i64) -> Record {
    Record {
        key: None,
        value: Some(value.into()),
        headers: Default::default(),
        timestamp: timestamp(timestamp_ms),
    }
}

/// A record with `key` and `value` at `timestamp_ms`, without headers.
pub fn keyed(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>, timestamp_ms: i64) -> Record {
    Record {
        key: Some(key.into()),
        ..record(value, timestamp_ms)
    }
}

async fn partition_client(client: &Client, topic: &str, partition: i32) -> PartitionClient {
    client
        .partition_client(topic, partition, UnknownTopicHandling::Retry)
        .await
        .unwrap_or_else(|e| panic!("partition client of {topic}/{partition}: {e}"))
}

/// Produces `records` to one partition of `topic`, in requests of at most 2,000 records
/// and 512 KiB, uncompressed. Returns their offsets.
///
/// # Panics
/// When a produce request fails.
pub async fn produce(brokers: &str, topic: &str, partition: i32, records: Vec<Record>) -> Vec<i64> {
    produce_with(&client(brokers).await, topic, partition, records).await
}

/// [`produce`] through a client of the caller's (one with TLS or SASL, say).
///
/// # Panics
/// When a produce request fails.
pub async fn produce_with(
    client: &Client,
    topic: &str,
    partition: i32,
    records: Vec<Record>,
) -> Vec<i64> {
    let partition_client = partition_client(client, topic, partition).await;
    let mut offsets = Vec::with_capacity(records.len());
    let mut records = records.into_iter().peekable();
    while records.peek().is_some() {
        let mut chunk = Vec::new();
        let mut bytes = 0;
        while let Some(next) = records.next_if(|r| {
            chunk.is_empty() || (chunk.len() < CHUNK_RECORDS && bytes + size(r) <= CHUNK_BYTES)
        }) {
            bytes += size(&next);
            chunk.push(next);
        }
        offsets.extend(
            partition_client
                .produce(chunk, Compression::NoCompression)
                .await
                .unwrap_or_else(|e| panic!("produce to {topic}/{partition}: {e}")),
        );
    }
    offsets
}

fn size(record: &Record) -> usize {
    record.key.as_ref().map_or(0, Vec::len)
        + record.value.as_ref().map_or(0, Vec::len)
        + record
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
}

/// Produces `values` to one partition: value `i` (from 0) gets the key `k{i+1}` and the
/// timestamp `base_ms + i + 1`. Returns their offsets.
///
/// # Panics
/// When a produce request fails.
pub async fn produce_values(
    brokers: &str,
    topic: &str,
    partition: i32,
    values: Vec<Vec<u8>>,
    base_ms: i64,
) -> Vec<i64> {
    let records = (1..)
        .zip(values)
        .map(|(i, value)| keyed(format!("k{i}"), value, base_ms + i))
        .collect();
    produce(brokers, topic, partition, records).await
}

/// Every record of one partition of `topic`, from its first offset to its high
/// watermark when the call began.
///
/// # Panics
/// When a fetch fails.
pub async fn read_all(brokers: &str, topic: &str, partition: i32) -> Vec<RecordAndOffset> {
    let client = client(brokers).await;
    let partition_client = partition_client(&client, topic, partition).await;
    let mut offset = partition_client
        .get_offset(OffsetAt::Earliest)
        .await
        .unwrap_or_else(|e| panic!("earliest offset of {topic}/{partition}: {e}"));
    let end = partition_client
        .get_offset(OffsetAt::Latest)
        .await
        .unwrap_or_else(|e| panic!("latest offset of {topic}/{partition}: {e}"));
    let mut out = Vec::new();
    let mut empty_fetches = 0;
    while offset < end {
        let (records, _high) = partition_client
            .fetch_records(offset, 1..10_000_000, 500)
            .await
            .unwrap_or_else(|e| panic!("fetch {topic}/{partition} at {offset}: {e}"));
        match records.last() {
            Some(last) => offset = last.offset + 1,
            None => {
                // Only control records (transaction markers) can stand between here and
                // `end`; they never come back, so give up rather than loop forever.
                empty_fetches += 1;
                assert!(
                    empty_fetches < 20,
                    "{topic}/{partition}: no records from {offset} on, below {end}"
                );
            }
        }
        out.extend(records.into_iter().filter(|r| r.offset < end));
    }
    out
}

/// The low and high watermarks of one partition: its first offset and the offset the
/// next record will get.
///
/// # Panics
/// When the broker does not answer ListOffsets.
pub async fn watermarks(brokers: &str, topic: &str, partition: i32) -> (i64, i64) {
    let client = client(brokers).await;
    let partition_client = partition_client(&client, topic, partition).await;
    let low = partition_client.get_offset(OffsetAt::Earliest).await;
    let high = partition_client.get_offset(OffsetAt::Latest).await;
    match (low, high) {
        (Ok(low), Ok(high)) => (low, high),
        (low, high) => panic!("watermarks of {topic}/{partition}: {low:?} {high:?}"),
    }
}

/// The error code a broker answers FindCoordinator (v1) for consumer group `group` with:
/// 0 once the group coordinator is up, 15 (COORDINATOR_NOT_AVAILABLE) while a fresh
/// cluster is still creating `__consumer_offsets` ([`crate::kafka_wire::coordinator`]
/// also says which node it is).
///
/// # Errors
/// When `broker` (one `host:port`) cannot be reached or answers out of protocol.
pub fn find_coordinator(broker: &str, group: &str) -> std::io::Result<i16> {
    crate::kafka_wire::coordinator(broker, group).map(|(error, _)| error)
}
