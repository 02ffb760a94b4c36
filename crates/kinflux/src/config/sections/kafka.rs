//! `[kafka]`: the consumer's options, where partitions start, how often to commit.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};

use super::duration;

/// `[kafka]`: the consumer's options (see `kinflux_kafka::ConsumerConfig`) plus where to
/// start and how often to commit. An unknown key is an error that names it.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawKafkaSection")]
#[non_exhaustive]
pub struct KafkaSection {
    /// Where each assigned partition starts (see [`StartAt`]).
    pub start_at: StartAt,
    /// How often offsets are committed (they are also committed on revoke and shutdown).
    pub commit_interval: Duration,
    /// Brokers, topics, group and the rest of the consumer's options.
    pub consumer: kinflux_kafka::ConsumerConfig,
}

/// `[kafka]` as written. `deny_unknown_fields` does not work next to `flatten` (the
/// flattened `ConsumerConfig` only picks its own keys out, and its own
/// `deny_unknown_fields` never sees the rest), so the keys neither takes are collected in
/// `unknown` and refused by the conversion.
#[derive(Deserialize)]
struct RawKafkaSection {
    #[serde(default)]
    start_at: StartAt,
    #[serde(default = "default_commit_interval", deserialize_with = "duration")]
    commit_interval: Duration,
    #[serde(flatten)]
    consumer: kinflux_kafka::ConsumerConfig,
    #[serde(flatten)]
    unknown: BTreeMap<String, IgnoredAny>,
}

/// Keys of `[kafka]` that nothing reads.
#[derive(Debug)]
struct UnknownKeys(Vec<String>);

impl std::fmt::Display for UnknownKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<String> = self.0.iter().map(|k| format!("`{k}`")).collect();
        let (noun, them) = if keys.len() == 1 {
            ("field", "it")
        } else {
            ("fields", "them")
        };
        write!(
            f,
            "unknown {noun} {} (examples/bridge.toml lists every key of [kafka]; remove {them})",
            keys.join(", ")
        )
    }
}

impl TryFrom<RawKafkaSection> for KafkaSection {
    type Error = UnknownKeys;

    fn try_from(raw: RawKafkaSection) -> Result<Self, UnknownKeys> {
        if !raw.unknown.is_empty() {
            return Err(UnknownKeys(raw.unknown.into_keys().collect()));
        }
        Ok(KafkaSection {
            start_at: raw.start_at,
            commit_interval: raw.commit_interval,
            consumer: raw.consumer,
        })
    }
}

fn default_commit_interval() -> Duration {
    Duration::from_secs(5)
}

/// `kafka.start_at`: where a partition starts when the pipeline gets it.
///
/// Like Kafka Connect and Telegraf, `Earliest` and `Latest` apply only where the group has
/// no committed offset: a restart, or a partition moving to another process, goes on from
/// the committed offset. An offset or a time is a backfill, applied once per group and
/// partition: the offset it starts at is committed with a mark, and a restart or the next
/// owner of the partition that finds the mark goes on from the committed offset. Another
/// offset or time is another backfill, applied once again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StartAt {
    /// The group's committed offset; where there is none, `auto_offset_reset`.
    #[default]
    Committed,
    /// The group's committed offset; where there is none, the earliest offset still in the
    /// log (sets `auto_offset_reset = "earliest"`).
    Earliest,
    /// The group's committed offset; where there is none, the end of the log (sets
    /// `auto_offset_reset = "latest"`).
    Latest,
    /// A backfill from this offset in every partition, once per group.
    Offset(i64),
    /// A backfill from the first record at or after this time (milliseconds since the
    /// epoch, found with ListOffsets), once per group.
    Time(i64),
}

impl<'de> Deserialize<'de> for StartAt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Offset(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Offset(o) if o >= 0 => Ok(StartAt::Offset(o)),
            Raw::Offset(o) => Err(serde::de::Error::custom(format!("offset {o} is negative"))),
            Raw::Text(t) => match t.as_str() {
                "committed" => Ok(StartAt::Committed),
                "earliest" => Ok(StartAt::Earliest),
                "latest" => Ok(StartAt::Latest),
                other => {
                    let time = humantime::parse_rfc3339_weak(other).map_err(|_| {
                        serde::de::Error::custom(format!(
                            "expected \"committed\", \"earliest\", \"latest\", an offset or an RFC 3339 time, not {other:?}"
                        ))
                    })?;
                    let ms = time
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_err(|_| serde::de::Error::custom("time is before 1970"))?
                        .as_millis();
                    Ok(StartAt::Time(
                        i64::try_from(ms).map_err(serde::de::Error::custom)?,
                    ))
                }
            },
        }
    }
}
