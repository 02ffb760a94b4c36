//! The dead-letter producer: records that cannot be processed go to a topic of their own,
//! unchanged, with headers that say why.

use std::{
    collections::BTreeMap,
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use serde::Deserialize;
use tracing::info;

use crate::{
    config::{SaslConfig, TlsConfig},
    error::{Error, Result},
    record::Record,
    security::ConnectOptions,
};

/// Header carrying the error class (for example `decode` or `rejected`).
pub const HEADER_ERROR_CLASS: &str = "kinflux.error.class";
/// Header carrying the error message.
pub const HEADER_ERROR_MESSAGE: &str = "kinflux.error.message";
/// Header carrying the source topic.
pub const HEADER_SOURCE_TOPIC: &str = "kinflux.source.topic";
/// Header carrying the source partition (decimal).
pub const HEADER_SOURCE_PARTITION: &str = "kinflux.source.partition";
/// Header carrying the source offset (decimal).
pub const HEADER_SOURCE_OFFSET: &str = "kinflux.source.offset";

/// Options of the dead-letter producer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DeadLetterConfig {
    /// Bootstrap brokers, `host:port`.
    pub brokers: Vec<String>,
    /// The dead-letter topic.
    pub topic: String,
    /// Client id sent to the brokers.
    #[serde(default = "default_client_id")]
    pub client_id: String,
    /// Create the topic when it does not exist.
    #[serde(default)]
    pub create_topic: bool,
    /// Partitions of a created topic.
    #[serde(default = "one")]
    pub partitions: i32,
    /// Replication factor of a created topic.
    #[serde(default = "one_i16")]
    pub replication_factor: i16,
    /// TLS; absent means plaintext.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// SASL; absent means no authentication.
    #[serde(default)]
    pub sasl: Option<SaslConfig>,
}

fn default_client_id() -> String {
    "kinflux-dead-letter".into()
}
fn one() -> i32 {
    1
}
fn one_i16() -> i16 {
    1
}

impl DeadLetterConfig {
    /// Options for a dead-letter topic, not created when missing.
    pub fn new(
        brokers: impl IntoIterator<Item = impl Into<String>>,
        topic: impl Into<String>,
    ) -> Self {
        Self {
            brokers: brokers.into_iter().map(Into::into).collect(),
            topic: topic.into(),
            client_id: default_client_id(),
            create_topic: false,
            partitions: 1,
            replication_factor: 1,
            tls: None,
            sasl: None,
        }
    }
}

/// Why a record goes to the dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterReason {
    /// Short class of the error, e.g. `decode` or `rejected`.
    pub class: String,
    /// Human-readable message.
    pub message: String,
}

impl DeadLetterReason {
    /// A reason with a class and a message.
    pub fn new(class: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            class: class.into(),
            message: message.into(),
        }
    }
}

/// Writes records to the dead-letter topic.
///
/// The partition is chosen like the Java client's default partitioner: murmur2 of the key
/// modulo the partition count; records without a key go round-robin.
#[derive(Debug)]
pub struct DeadLetterProducer {
    topic: String,
    partitions: Vec<PartitionClient>,
    next: AtomicUsize,
}

impl DeadLetterProducer {
    /// Connects, and creates the topic if it is missing and `create_topic` allows it.
    pub async fn connect(config: DeadLetterConfig) -> Result<Self> {
        let opts = ConnectOptions::new(
            &config.brokers,
            &config.client_id,
            config.tls.as_ref(),
            config.sasl.as_ref(),
        )?;
        opts.check_refusal().await?;
        let client = opts.rskafka_client().await?;
        let mut count = partition_count(&client, &config.topic).await?;
        if count.is_none() {
            if !config.create_topic {
                return Err(Error::Config(format!(
                    "dead-letter topic {} does not exist and create_topic is false",
                    config.topic
                )));
            }
            let controller = client.controller_client()?;
            match controller
                .create_topic(
                    config.topic.clone(),
                    config.partitions,
                    config.replication_factor,
                    10_000,
                )
                .await
            {
                Ok(()) => info!(topic = config.topic, "created dead-letter topic"),
                // Somebody else created it at the same time: fine.
                Err(rskafka::client::error::Error::ServerError {
                    protocol_error: rskafka::client::error::ProtocolError::TopicAlreadyExists,
                    ..
                }) => {}
                Err(e) => return Err(e.into()),
            }
            for _ in 0..50 {
                count = partition_count(&client, &config.topic).await?;
                if count.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let count = count.ok_or_else(|| Error::Timeout {
            what: "dead-letter topic creation",
            after: Duration::from_secs(5),
        })?;
        let mut partitions = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        for p in 0..count {
            partitions.push(
                client
                    .partition_client(config.topic.clone(), p, UnknownTopicHandling::Retry)
                    .await?,
            );
        }
        Ok(Self {
            topic: config.topic,
            partitions,
            next: AtomicUsize::new(0),
        })
    }

    /// The dead-letter topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The partition a record with this key goes to.
    pub fn partition_for(&self, key: Option<&[u8]>) -> i32 {
        let n = self.partitions.len().max(1);
        let idx = match key {
            Some(k) => (to_positive(murmur2(k)) as usize) % n,
            None => self.next.fetch_add(1, Ordering::Relaxed) % n,
        };
        i32::try_from(idx).unwrap_or(0)
    }

    /// Writes the record's key, value, headers and timestamp, plus the error headers, to the
    /// dead-letter topic. Returns the partition and offset written.
    pub async fn send(&self, record: &Record, reason: &DeadLetterReason) -> Result<(i32, i64)> {
        let partition = self.partition_for(record.key.as_deref());
        let client = usize::try_from(partition)
            .ok()
            .and_then(|p| self.partitions.get(p))
            .ok_or_else(|| {
                Error::Config(format!(
                    "dead-letter topic {} has no partitions",
                    self.topic
                ))
            })?;
        let mut headers: BTreeMap<String, Vec<u8>> = record
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.to_vec()))
            .collect();
        headers.insert(HEADER_ERROR_CLASS.into(), reason.class.as_bytes().to_vec());
        headers.insert(
            HEADER_ERROR_MESSAGE.into(),
            reason.message.as_bytes().to_vec(),
        );
        headers.insert(HEADER_SOURCE_TOPIC.into(), record.topic.as_bytes().to_vec());
        headers.insert(
            HEADER_SOURCE_PARTITION.into(),
            record.partition.to_string().into_bytes(),
        );
        headers.insert(
            HEADER_SOURCE_OFFSET.into(),
            record.offset.to_string().into_bytes(),
        );
        let timestamp = rskafka::chrono::DateTime::from_timestamp_millis(record.timestamp_ms)
            .unwrap_or_default();
        let out = rskafka::record::Record {
            key: record.key.as_ref().map(|k| k.to_vec()),
            value: record.value.as_ref().map(|v| v.to_vec()),
            headers,
            timestamp,
        };
        let offsets = client
            .produce(vec![out], Compression::NoCompression)
            .await?;
        let offset = offsets.first().copied().ok_or_else(|| Error::Codec {
            api: "Produce",
            message: "no offset in the produce response".into(),
        })?;
        Ok((partition, offset))
    }
}

async fn partition_count(client: &rskafka::client::Client, topic: &str) -> Result<Option<i32>> {
    Ok(client
        .list_topics()
        .await?
        .into_iter()
        .find(|t| t.name == topic)
        .map(|t| i32::try_from(t.partitions.len()).unwrap_or(i32::MAX))
        .filter(|c| *c > 0))
}

/// Kafka's murmur2 hash, as in the Java client's `Utils.murmur2`.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    // Kafka hashes with a Java int length; keys longer than 2 GiB do not exist in Kafka.
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let mut h: u32 = SEED ^ len;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

fn to_positive(v: i32) -> u32 {
    (v & 0x7fff_ffff) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka_java_client() {
        // Values from Kafka's UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21"), -973_932_308);
        assert_eq!(murmur2(b"foobar"), -790_332_482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985_981_536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1_486_304_829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58_897_971
        );
        assert_eq!(murmur2(b"abc"), 479_470_107);
        assert_eq!(to_positive(-973_932_308), 1_173_551_340);
    }
}
