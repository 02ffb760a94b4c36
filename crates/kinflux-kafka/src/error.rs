//! Errors of the consumer, the group protocol and the dead-letter producer.

use std::time::Duration;

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when talking to Kafka.
///
/// Each error says with [`Error::is_retryable`] whether trying again later can succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is not usable (bad regex, no brokers, unreadable certificate, ...).
    #[error("invalid configuration: {0}")]
    Config(String),

    /// A TCP, TLS or I/O failure on one of our own broker connections.
    #[error("connection to {broker} failed: {source}")]
    Io {
        /// The broker address.
        broker: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The connection was closed while a request was in flight.
    #[error("connection to {broker} closed")]
    ConnectionClosed {
        /// The broker address.
        broker: String,
    },

    /// SASL authentication failed: wrong credentials, a mechanism the broker does not
    /// enable, a token the broker or the token endpoint refused. Permanent: the consumer
    /// stops instead of trying again with the same credentials.
    #[error("SASL {mechanism} authentication with {broker} failed: {message}")]
    Authentication {
        /// The broker address.
        broker: String,
        /// The SASL mechanism (`PLAIN`, `SCRAM-SHA-512`, `OAUTHBEARER`, ...).
        mechanism: &'static str,
        /// What the broker, the token endpoint or the SASL library said.
        message: String,
    },

    /// The OAuth token endpoint could not be reached or failed (not a refusal of the
    /// client: that is [`Error::Authentication`]). Retryable.
    #[error("OAUTHBEARER token endpoint {url} failed: {reason}")]
    TokenEndpoint {
        /// The token endpoint.
        url: String,
        /// What went wrong.
        reason: String,
    },

    /// The TLS handshake failed on a certificate: the broker's is not signed by a trusted
    /// CA or does not name the host, or the broker wants a client certificate that was not
    /// given or that it does not trust. Permanent.
    #[error("TLS with {broker} failed: {message}")]
    Tls {
        /// The broker address.
        broker: String,
        /// What rustls said.
        message: String,
    },

    /// A request could not be encoded or a response could not be decoded.
    #[error("protocol error in {api}: {message}")]
    Codec {
        /// The API (request type) concerned.
        api: &'static str,
        /// What went wrong, from the codec.
        message: String,
    },

    /// The broker does not support any version of an API that we speak.
    #[error("broker {broker} does not support {api} in a version we speak")]
    UnsupportedApi {
        /// The broker address.
        broker: String,
        /// The API concerned.
        api: &'static str,
    },

    /// The broker answered with a Kafka error code.
    #[error("broker answered {api} with error {code} ({name}){}", context_suffix(.context))]
    Broker {
        /// The API concerned.
        api: &'static str,
        /// The Kafka error code.
        code: i16,
        /// The symbolic name of the error code.
        name: &'static str,
        /// Topic/partition or group the error is about, if any.
        context: Option<String>,
    },

    /// A request did not complete in time.
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// What timed out.
        what: &'static str,
        /// The time waited.
        after: Duration,
    },

    /// An error from rskafka (metadata, fetch, produce, list offsets).
    #[error("kafka client error: {0}")]
    Client(#[from] rskafka::client::error::Error),

    /// An error from rskafka when producing.
    #[error("produce failed: {0}")]
    Produce(#[from] rskafka::client::ProduceError),

    /// The consumer has no valid group membership right now (rebalancing or coordinator lost).
    #[error("not a member of group {group_id} right now (rebalance in progress)")]
    NotInGroup {
        /// The consumer group.
        group_id: String,
    },

    /// The partition is not assigned to this consumer.
    #[error("partition {topic}/{partition} is not assigned to this consumer")]
    NotAssigned {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
    },

    /// The consumer was closed.
    #[error("consumer is closed")]
    Closed,
}

fn context_suffix(context: &Option<String>) -> String {
    match context {
        Some(c) => format!(" for {c}"),
        None => String::new(),
    }
}

impl Error {
    /// Whether trying the same operation again later can succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Config(_)
            | Error::Authentication { .. }
            | Error::Tls { .. }
            | Error::Codec { .. }
            | Error::UnsupportedApi { .. }
            | Error::NotAssigned { .. }
            | Error::Closed => false,
            Error::Io { .. }
            | Error::ConnectionClosed { .. }
            | Error::TokenEndpoint { .. }
            | Error::Timeout { .. }
            | Error::NotInGroup { .. } => true,
            Error::Broker { code, .. } => code_is_retryable(*code),
            Error::Client(e) => client_error_is_retryable(e),
            Error::Produce(e) => matches!(
                e,
                rskafka::client::ProduceError::BrokerError(_)
                    | rskafka::client::ProduceError::RequestError(_)
            ),
        }
    }

    /// Whether this error means the group membership is gone and the consumer must rejoin
    /// (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, REBALANCE_IN_PROGRESS, UNKNOWN_MEMBER_ID,
    /// ILLEGAL_GENERATION, FENCED_INSTANCE_ID).
    pub fn needs_rejoin(&self) -> bool {
        matches!(self, Error::Broker { code, .. } if code::needs_rejoin(*code))
            || matches!(self, Error::NotInGroup { .. })
    }

    /// The Kafka error code, if the broker sent one.
    pub fn kafka_code(&self) -> Option<i16> {
        match self {
            Error::Broker { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub(crate) fn broker(api: &'static str, code: i16, context: Option<String>) -> Self {
        Error::Broker {
            api,
            code,
            name: code::name(code),
            context,
        }
    }
}

fn client_error_is_retryable(e: &rskafka::client::error::Error) -> bool {
    use rskafka::client::error::Error as E;
    match e {
        E::Connection(_) | E::Request(_) | E::RetryFailed(_) | E::Timeout => true,
        E::ServerError { protocol_error, .. } => {
            use rskafka::client::error::ProtocolError as P;
            matches!(
                protocol_error,
                P::CorruptMessage
                    | P::UnknownTopicOrPartition
                    | P::LeaderNotAvailable
                    | P::NotLeaderOrFollower
                    | P::RequestTimedOut
                    | P::BrokerNotAvailable
                    | P::ReplicaNotAvailable
                    | P::NetworkException
                    | P::CoordinatorLoadInProgress
                    | P::CoordinatorNotAvailable
                    | P::NotCoordinator
                    | P::NotEnoughReplicas
                    | P::NotEnoughReplicasAfterAppend
                    | P::KafkaStorageError
                    | P::UnknownLeaderEpoch
                    | P::FencedLeaderEpoch
                    | P::OffsetNotAvailable
                    | P::ThrottlingQuotaExceeded
            )
        }
        _ => false,
    }
}

fn code_is_retryable(code: i16) -> bool {
    use code::*;
    matches!(
        code,
        CORRUPT_MESSAGE
            | UNKNOWN_TOPIC_OR_PARTITION
            | LEADER_NOT_AVAILABLE
            | NOT_LEADER_OR_FOLLOWER
            | REQUEST_TIMED_OUT
            | NETWORK_EXCEPTION
            | COORDINATOR_LOAD_IN_PROGRESS
            | COORDINATOR_NOT_AVAILABLE
            | NOT_COORDINATOR
            | NOT_ENOUGH_REPLICAS
            | NOT_ENOUGH_REPLICAS_AFTER_APPEND
            | REBALANCE_IN_PROGRESS
            | UNKNOWN_MEMBER_ID
            | ILLEGAL_GENERATION
            | FENCED_MEMBER_EPOCH
            | STALE_MEMBER_EPOCH
            | UNSTABLE_OFFSET_COMMIT
            | KAFKA_STORAGE_ERROR
            | FETCH_SESSION_ID_NOT_FOUND
            | UNKNOWN_LEADER_EPOCH
            | FENCED_LEADER_EPOCH
            | OFFSET_NOT_AVAILABLE
            | THROTTLING_QUOTA_EXCEEDED
    )
}

/// Kafka protocol error codes used by the group protocol.
pub(crate) mod code {
    pub(crate) const NONE: i16 = 0;
    pub(crate) const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub(crate) const CORRUPT_MESSAGE: i16 = 2;
    pub(crate) const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub(crate) const LEADER_NOT_AVAILABLE: i16 = 5;
    pub(crate) const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    pub(crate) const REQUEST_TIMED_OUT: i16 = 7;
    pub(crate) const NETWORK_EXCEPTION: i16 = 13;
    pub(crate) const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    pub(crate) const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub(crate) const NOT_COORDINATOR: i16 = 16;
    pub(crate) const NOT_ENOUGH_REPLICAS: i16 = 19;
    pub(crate) const NOT_ENOUGH_REPLICAS_AFTER_APPEND: i16 = 20;
    pub(crate) const ILLEGAL_GENERATION: i16 = 22;
    pub(crate) const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    pub(crate) const UNKNOWN_MEMBER_ID: i16 = 25;
    pub(crate) const INVALID_SESSION_TIMEOUT: i16 = 26;
    pub(crate) const REBALANCE_IN_PROGRESS: i16 = 27;
    pub(crate) const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
    pub(crate) const GROUP_AUTHORIZATION_FAILED: i16 = 30;
    pub(crate) const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
    pub(crate) const ILLEGAL_SASL_STATE: i16 = 34;
    pub(crate) const SASL_AUTHENTICATION_FAILED: i16 = 58;
    pub(crate) const KAFKA_STORAGE_ERROR: i16 = 56;
    pub(crate) const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
    pub(crate) const UNKNOWN_LEADER_EPOCH: i16 = 74;
    pub(crate) const FENCED_LEADER_EPOCH: i16 = 75;
    pub(crate) const MEMBER_ID_REQUIRED: i16 = 79;
    pub(crate) const FENCED_INSTANCE_ID: i16 = 82;
    pub(crate) const UNSTABLE_OFFSET_COMMIT: i16 = 88;
    pub(crate) const THROTTLING_QUOTA_EXCEEDED: i16 = 89;
    pub(crate) const OFFSET_NOT_AVAILABLE: i16 = 78;
    pub(crate) const TOPIC_ALREADY_EXISTS: i16 = 36;
    pub(crate) const UNSUPPORTED_VERSION: i16 = 35;
    pub(crate) const FENCED_MEMBER_EPOCH: i16 = 110;
    pub(crate) const UNRELEASED_INSTANCE_ID: i16 = 111;
    pub(crate) const UNSUPPORTED_ASSIGNOR: i16 = 112;
    pub(crate) const STALE_MEMBER_EPOCH: i16 = 113;

    pub(crate) fn needs_rejoin(code: i16) -> bool {
        matches!(
            code,
            NOT_COORDINATOR
                | COORDINATOR_NOT_AVAILABLE
                | COORDINATOR_LOAD_IN_PROGRESS
                | REBALANCE_IN_PROGRESS
                | UNKNOWN_MEMBER_ID
                | ILLEGAL_GENERATION
                | FENCED_INSTANCE_ID
                | FENCED_MEMBER_EPOCH
                | STALE_MEMBER_EPOCH
        )
    }

    pub(crate) fn name(code: i16) -> &'static str {
        match code {
            NONE => "NONE",
            OFFSET_OUT_OF_RANGE => "OFFSET_OUT_OF_RANGE",
            CORRUPT_MESSAGE => "CORRUPT_MESSAGE",
            UNKNOWN_TOPIC_OR_PARTITION => "UNKNOWN_TOPIC_OR_PARTITION",
            LEADER_NOT_AVAILABLE => "LEADER_NOT_AVAILABLE",
            NOT_LEADER_OR_FOLLOWER => "NOT_LEADER_OR_FOLLOWER",
            REQUEST_TIMED_OUT => "REQUEST_TIMED_OUT",
            NETWORK_EXCEPTION => "NETWORK_EXCEPTION",
            COORDINATOR_LOAD_IN_PROGRESS => "COORDINATOR_LOAD_IN_PROGRESS",
            COORDINATOR_NOT_AVAILABLE => "COORDINATOR_NOT_AVAILABLE",
            NOT_COORDINATOR => "NOT_COORDINATOR",
            NOT_ENOUGH_REPLICAS => "NOT_ENOUGH_REPLICAS",
            NOT_ENOUGH_REPLICAS_AFTER_APPEND => "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
            ILLEGAL_GENERATION => "ILLEGAL_GENERATION",
            INCONSISTENT_GROUP_PROTOCOL => "INCONSISTENT_GROUP_PROTOCOL",
            UNKNOWN_MEMBER_ID => "UNKNOWN_MEMBER_ID",
            INVALID_SESSION_TIMEOUT => "INVALID_SESSION_TIMEOUT",
            REBALANCE_IN_PROGRESS => "REBALANCE_IN_PROGRESS",
            TOPIC_AUTHORIZATION_FAILED => "TOPIC_AUTHORIZATION_FAILED",
            GROUP_AUTHORIZATION_FAILED => "GROUP_AUTHORIZATION_FAILED",
            TOPIC_ALREADY_EXISTS => "TOPIC_ALREADY_EXISTS",
            KAFKA_STORAGE_ERROR => "KAFKA_STORAGE_ERROR",
            UNSUPPORTED_SASL_MECHANISM => "UNSUPPORTED_SASL_MECHANISM",
            ILLEGAL_SASL_STATE => "ILLEGAL_SASL_STATE",
            SASL_AUTHENTICATION_FAILED => "SASL_AUTHENTICATION_FAILED",
            FETCH_SESSION_ID_NOT_FOUND => "FETCH_SESSION_ID_NOT_FOUND",
            UNKNOWN_LEADER_EPOCH => "UNKNOWN_LEADER_EPOCH",
            FENCED_LEADER_EPOCH => "FENCED_LEADER_EPOCH",
            OFFSET_NOT_AVAILABLE => "OFFSET_NOT_AVAILABLE",
            MEMBER_ID_REQUIRED => "MEMBER_ID_REQUIRED",
            FENCED_INSTANCE_ID => "FENCED_INSTANCE_ID",
            UNSTABLE_OFFSET_COMMIT => "UNSTABLE_OFFSET_COMMIT",
            THROTTLING_QUOTA_EXCEEDED => "THROTTLING_QUOTA_EXCEEDED",
            UNSUPPORTED_VERSION => "UNSUPPORTED_VERSION",
            FENCED_MEMBER_EPOCH => "FENCED_MEMBER_EPOCH",
            UNRELEASED_INSTANCE_ID => "UNRELEASED_INSTANCE_ID",
            UNSUPPORTED_ASSIGNOR => "UNSUPPORTED_ASSIGNOR",
            STALE_MEMBER_EPOCH => "STALE_MEMBER_EPOCH",
            _ => "UNKNOWN_ERROR_CODE",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_errors_lead_to_rejoin_and_are_retryable() {
        for c in [
            code::NOT_COORDINATOR,
            code::COORDINATOR_NOT_AVAILABLE,
            code::REBALANCE_IN_PROGRESS,
            code::UNKNOWN_MEMBER_ID,
            code::ILLEGAL_GENERATION,
        ] {
            let e = Error::broker("Heartbeat", c, None);
            assert!(e.needs_rejoin(), "{e}");
            assert!(e.is_retryable(), "{e}");
        }
        let e = Error::broker("JoinGroup", code::GROUP_AUTHORIZATION_FAILED, None);
        assert!(!e.needs_rejoin());
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("GROUP_AUTHORIZATION_FAILED"));
    }
}
