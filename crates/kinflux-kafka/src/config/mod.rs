//! Consumer, TLS and SASL options: data only. What turns them into connections
//! (rustls, SASL, the rskafka client) is in `security`; the TLS and SASL options themselves
//! ([`TlsConfig`], [`SaslConfig`], [`OAuthConfig`]) live in a module of their own and are
//! re-exported here.
//!
//! Every struct deserializes with serde. Durations accept a number of milliseconds (`3000`)
//! or a humantime string (`"3s"`, `"500ms"`, `"1m 30s"`). Defaults follow Kafka's.

mod security;

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::{
    error::{Error, Result},
    fetch::IsolationLevel,
};
pub use security::{Credentials, OAuthConfig, SaslConfig, SaslMechanism, TlsConfig};

/// Where a consumer starts when its group has no committed offset for a partition, or when
/// the committed offset is no longer in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum AutoOffsetReset {
    /// The oldest record still kept: the default, as in Kafka Connect's sinks and
    /// Telegraf's kafka_consumer, so that a new group loses nothing already in the topic.
    #[default]
    Earliest,
    /// The end of the log: only records produced from now on.
    Latest,
}

/// Which partition assignment strategies this consumer offers to its group, in order of
/// preference. The group leader picks the first one that every member supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub enum AssignmentStrategy {
    /// Kafka's `range` assignor: consecutive partitions of each topic per member.
    #[serde(rename = "range")]
    Range,
    /// Kafka's `roundrobin` assignor: all partitions dealt out one by one.
    #[serde(rename = "roundrobin")]
    RoundRobin,
    /// Kafka's `cooperative-sticky` assignor with incremental rebalancing (KIP-429):
    /// members keep their partitions during a rebalance and only the partitions that move
    /// are revoked.
    #[serde(rename = "cooperative-sticky")]
    CooperativeSticky,
}

/// Which group protocol the consumer speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum GroupProtocol {
    /// JoinGroup, SyncGroup and Heartbeat; the group leader assigns the partitions with
    /// one of `assignment_strategies`.
    #[default]
    Classic,
    /// KIP-848 (Kafka 4.0+): ConsumerGroupHeartbeat only; the broker assigns partitions
    /// incrementally with its own assignor (`group_remote_assignor`) and sets the session
    /// timeout and heartbeat interval (`group.consumer.*` broker settings), so
    /// `session_timeout`, `heartbeat_interval` and `assignment_strategies` do not apply.
    /// A broker without it is an error at connect, not a silent fall back to classic.
    Consumer,
}

/// The broker-side assignors of the `consumer` group protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum RemoteAssignor {
    /// Spreads the partitions of all subscribed topics evenly, sticky across rebalances.
    Uniform,
    /// Consecutive partitions of each topic per member, as the classic `range`.
    Range,
}

impl RemoteAssignor {
    /// The name the broker knows it by.
    pub fn name(self) -> &'static str {
        match self {
            RemoteAssignor::Uniform => "uniform",
            RemoteAssignor::Range => "range",
        }
    }
}

impl AssignmentStrategy {
    /// The protocol name sent in JoinGroup, the same as the Java client and librdkafka use.
    pub fn protocol_name(self) -> &'static str {
        match self {
            AssignmentStrategy::Range => "range",
            AssignmentStrategy::RoundRobin => "roundrobin",
            AssignmentStrategy::CooperativeSticky => "cooperative-sticky",
        }
    }

    /// Whether this strategy rebalances incrementally (keeps partitions across rebalances).
    pub fn is_cooperative(self) -> bool {
        matches!(self, AssignmentStrategy::CooperativeSticky)
    }
}

/// Options of a group consumer.
///
/// Only `brokers`, `group_id` and one of `topics`/`topic_regex` are required; everything else
/// has Kafka's default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ConsumerConfig {
    /// Bootstrap brokers, `host:port`.
    pub brokers: Vec<String>,
    /// Topics to consume.
    #[serde(default)]
    pub topics: Vec<String>,
    /// Consume every topic whose whole name matches this regular expression; the topic list is
    /// re-read from metadata every `metadata_refresh_interval`.
    #[serde(default)]
    pub topic_regex: Option<String>,
    /// The consumer group.
    pub group_id: String,
    /// Client id sent to the brokers.
    #[serde(default = "default_client_id")]
    pub client_id: String,
    /// Static membership: a stable id per process, so a restart within the session timeout
    /// does not trigger a rebalance.
    #[serde(default)]
    pub group_instance_id: Option<String>,
    /// How long the coordinator waits for a heartbeat before it evicts this member.
    #[serde(default = "default_session_timeout", deserialize_with = "duration")]
    pub session_timeout: Duration,
    /// How often heartbeats are sent.
    #[serde(default = "default_heartbeat_interval", deserialize_with = "duration")]
    pub heartbeat_interval: Duration,
    /// How long a rebalance may take; also the deadline given to the caller to finish
    /// its work on revoked partitions.
    #[serde(default = "default_rebalance_timeout", deserialize_with = "duration")]
    pub rebalance_timeout: Duration,
    /// Where to start without a committed offset, or when it is out of range.
    #[serde(default)]
    pub auto_offset_reset: AutoOffsetReset,
    /// Upper bound of bytes returned by one fetch of one partition. Default 50 MiB, as
    /// Kafka's `fetch.max.bytes`. A fetch starts only while the partition's buffer is below
    /// `max_buffered_bytes`, and asks for no more than the room left in it (at least
    /// 64 KiB; a record batch larger than that still comes whole).
    #[serde(default = "default_fetch_max_bytes")]
    pub fetch_max_bytes: i32,
    /// How long the broker may wait for data before it answers a fetch.
    #[serde(default = "default_fetch_max_wait", deserialize_with = "duration")]
    pub fetch_max_wait: Duration,
    /// Which records of transactional producers are handed out: `read_committed` (the
    /// default) skips the records of aborted transactions and reads no further than the
    /// last stable offset; `read_uncommitted` hands out every record. Transaction markers
    /// are never handed out.
    #[serde(default)]
    pub isolation_level: IsolationLevel,
    /// Bytes fetched but not yet handed to the caller, per partition, counted as
    /// [`Record::footprint`](crate::Record::footprint). A partition whose buffer is full
    /// stops fetching until the caller drains it. Default 16 MiB: a backlog flows as fast as
    /// with 64 MiB, at about half the peak memory.
    #[serde(default = "default_max_buffered_bytes")]
    pub max_buffered_bytes: usize,
    /// How often metadata is re-read to find new topics (regex) and partitions.
    #[serde(default = "default_metadata_refresh", deserialize_with = "duration")]
    pub metadata_refresh_interval: Duration,
    /// Assignment strategies offered, in order of preference.
    #[serde(default = "default_strategies")]
    pub assignment_strategies: Vec<AssignmentStrategy>,
    /// The group protocol: `classic` (default) or `consumer` (KIP-848).
    #[serde(default)]
    pub group_protocol: GroupProtocol,
    /// With the `consumer` protocol: the broker's assignor to use; absent means the
    /// broker's default (`group.consumer.assignors`, uniform first).
    #[serde(default)]
    pub group_remote_assignor: Option<RemoteAssignor>,
    /// TLS; absent means plaintext.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// SASL; absent means no authentication.
    #[serde(default)]
    pub sasl: Option<SaslConfig>,
}

impl ConsumerConfig {
    /// A configuration with Kafka's defaults for the given brokers, group and topics.
    pub fn new(
        brokers: impl IntoIterator<Item = impl Into<String>>,
        group_id: impl Into<String>,
        topics: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            brokers: brokers.into_iter().map(Into::into).collect(),
            topics: topics.into_iter().map(Into::into).collect(),
            topic_regex: None,
            group_id: group_id.into(),
            client_id: default_client_id(),
            group_instance_id: None,
            session_timeout: default_session_timeout(),
            heartbeat_interval: default_heartbeat_interval(),
            rebalance_timeout: default_rebalance_timeout(),
            auto_offset_reset: AutoOffsetReset::default(),
            fetch_max_bytes: default_fetch_max_bytes(),
            fetch_max_wait: default_fetch_max_wait(),
            isolation_level: IsolationLevel::default(),
            max_buffered_bytes: default_max_buffered_bytes(),
            metadata_refresh_interval: default_metadata_refresh(),
            assignment_strategies: default_strategies(),
            group_protocol: GroupProtocol::Classic,
            group_remote_assignor: None,
            tls: None,
            sasl: None,
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.brokers.is_empty() {
            return Err(Error::Config("`brokers` is empty".into()));
        }
        if self.group_id.is_empty() {
            return Err(Error::Config("`group_id` is empty".into()));
        }
        if self.topics.is_empty() && self.topic_regex.is_none() {
            return Err(Error::Config("set `topics` or `topic_regex`".into()));
        }
        if self.heartbeat_interval >= self.session_timeout {
            return Err(Error::Config(
                "`heartbeat_interval` must be shorter than `session_timeout`".into(),
            ));
        }
        if self.fetch_max_bytes <= 0 {
            return Err(Error::Config("`fetch_max_bytes` must be positive".into()));
        }
        if self.assignment_strategies.is_empty() {
            return Err(Error::Config("`assignment_strategies` is empty".into()));
        }
        if let Some(sasl) = &self.sasl {
            sasl.validate()?;
        }
        Ok(())
    }
}

fn default_client_id() -> String {
    "kinflux".into()
}
fn default_session_timeout() -> Duration {
    Duration::from_secs(45)
}
fn default_heartbeat_interval() -> Duration {
    Duration::from_secs(3)
}
fn default_rebalance_timeout() -> Duration {
    Duration::from_secs(300)
}
fn default_fetch_max_bytes() -> i32 {
    50 * 1024 * 1024
}
fn default_fetch_max_wait() -> Duration {
    Duration::from_millis(500)
}
fn default_max_buffered_bytes() -> usize {
    16 * 1024 * 1024
}
fn default_metadata_refresh() -> Duration {
    Duration::from_secs(300)
}
fn default_strategies() -> Vec<AssignmentStrategy> {
    vec![AssignmentStrategy::Range, AssignmentStrategy::RoundRobin]
}

/// Deserializes a duration from milliseconds (number) or a humantime string (`"1s"`,
/// `"250ms"`): the form every duration key of kinflux's configuration takes.
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Millis(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Millis(ms) => Ok(Duration::from_millis(ms)),
        Raw::Text(s) => humantime::parse_duration(s.trim()).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_deserializes_with_humantime_and_millis() {
        let c: ConsumerConfig = serde_json::from_str(
            r#"{"brokers":["b:9092"],"group_id":"g","topics":["t"],
                "session_timeout":"10s","heartbeat_interval":1000,
                "auto_offset_reset":"earliest",
                "sasl":{"mechanism":"SCRAM-SHA-512","username":"u","password":"hunter2"}}"#,
        )
        .expect("valid config");
        assert_eq!(c.session_timeout, Duration::from_secs(10));
        assert_eq!(c.heartbeat_interval, Duration::from_secs(1));
        assert_eq!(c.rebalance_timeout, Duration::from_secs(300));
        assert_eq!(c.auto_offset_reset, AutoOffsetReset::Earliest);
        c.validate().expect("valid");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(dbg.contains("<redacted>"));
    }

    #[test]
    fn config_without_topics_is_rejected() {
        let c = ConsumerConfig::new(["b:1"], "g", Vec::<String>::new());
        assert!(matches!(c.validate(), Err(Error::Config(_))));
    }
}
