//! What a failed group request means for this member: one classification for JoinGroup,
//! SyncGroup, Heartbeat, ConsumerGroupHeartbeat and OffsetCommit, so every phase of the session decides by the
//! same verdicts.

use crate::error::{Error, code};

/// What a failed group request means for this member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// The coordinator forgot this member (UNKNOWN_MEMBER_ID: join with a new id) or its
    /// generation (ILLEGAL_GENERATION): what it owned is no longer its.
    MemberLost { forget_id: bool },
    /// Another process with the same `group_instance_id` took this member's place
    /// (FENCED_INSTANCE_ID). This one must stop, as the Java client does; rejoining would
    /// fence the other in turn.
    Fenced,
    /// A rebalance began: join again at once.
    Rebalancing,
    /// The coordinator moved or is not ready: find it again.
    CoordinatorMoved,
    /// The connection broke or a request timed out.
    Disconnected,
    /// The broker refused our credentials or certificate (SASL, TLS): stop, as trying
    /// again with the same ones cannot help and only floods the broker's log.
    Refused,
    /// Anything else that may pass.
    Transient,
    /// Trying again cannot help (authorization, configuration, protocol).
    Fatal,
}

impl Verdict {
    pub(super) fn of(e: &Error) -> Self {
        match e.kafka_code() {
            Some(code::UNKNOWN_MEMBER_ID) => Verdict::MemberLost { forget_id: true },
            Some(code::ILLEGAL_GENERATION | code::FENCED_MEMBER_EPOCH) => {
                Verdict::MemberLost { forget_id: false }
            }
            Some(code::FENCED_INSTANCE_ID | code::UNRELEASED_INSTANCE_ID) => Verdict::Fenced,
            Some(code::REBALANCE_IN_PROGRESS) => Verdict::Rebalancing,
            Some(
                code::NOT_COORDINATOR
                | code::COORDINATOR_NOT_AVAILABLE
                | code::COORDINATOR_LOAD_IN_PROGRESS,
            ) => Verdict::CoordinatorMoved,
            _ if matches!(e, Error::Authentication { .. } | Error::Tls { .. }) => Verdict::Refused,
            _ if matches!(
                e,
                Error::Io { .. } | Error::ConnectionClosed { .. } | Error::Timeout { .. }
            ) =>
            {
                Verdict::Disconnected
            }
            _ if e.is_retryable() => Verdict::Transient,
            _ => Verdict::Fatal,
        }
    }
}

/// Whether reconnecting to the coordinator helps after `e`.
pub(super) fn coordinator_gone(e: &Error) -> bool {
    matches!(
        Verdict::of(e),
        Verdict::CoordinatorMoved | Verdict::Disconnected
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn group_errors_are_classified_once_for_every_request() {
        let broker = |c| Error::broker("JoinGroup", c, None);
        let cases = [
            (
                code::UNKNOWN_MEMBER_ID,
                Verdict::MemberLost { forget_id: true },
            ),
            (
                code::ILLEGAL_GENERATION,
                Verdict::MemberLost { forget_id: false },
            ),
            (code::FENCED_INSTANCE_ID, Verdict::Fenced),
            (
                code::FENCED_MEMBER_EPOCH,
                Verdict::MemberLost { forget_id: false },
            ),
            (code::UNRELEASED_INSTANCE_ID, Verdict::Fenced),
            (code::STALE_MEMBER_EPOCH, Verdict::Transient),
            (code::UNSUPPORTED_ASSIGNOR, Verdict::Fatal),
            (code::REBALANCE_IN_PROGRESS, Verdict::Rebalancing),
            (code::NOT_COORDINATOR, Verdict::CoordinatorMoved),
            (code::COORDINATOR_NOT_AVAILABLE, Verdict::CoordinatorMoved),
            (
                code::COORDINATOR_LOAD_IN_PROGRESS,
                Verdict::CoordinatorMoved,
            ),
            (code::UNKNOWN_TOPIC_OR_PARTITION, Verdict::Transient),
            (code::GROUP_AUTHORIZATION_FAILED, Verdict::Fatal),
            (code::INCONSISTENT_GROUP_PROTOCOL, Verdict::Fatal),
        ];
        for (c, verdict) in cases {
            assert_eq!(Verdict::of(&broker(c)), verdict, "{}", code::name(c));
        }
        let closed = Error::ConnectionClosed {
            broker: "b:9092".into(),
        };
        assert_eq!(Verdict::of(&closed), Verdict::Disconnected);
        let timeout = Error::Timeout {
            what: "SyncGroup",
            after: Duration::from_secs(30),
        };
        assert_eq!(Verdict::of(&timeout), Verdict::Disconnected);
        assert!(coordinator_gone(&closed) && coordinator_gone(&broker(code::NOT_COORDINATOR)));
        assert!(!coordinator_gone(&broker(code::REBALANCE_IN_PROGRESS)));
        let refused = Error::Authentication {
            broker: "b:9092".into(),
            mechanism: "SCRAM-SHA-512",
            message: "invalid credentials".into(),
        };
        assert_eq!(Verdict::of(&refused), Verdict::Refused);
        let codec = Error::Codec {
            api: "ConsumerProtocol",
            message: "truncated".into(),
        };
        assert_eq!(Verdict::of(&codec), Verdict::Fatal);
    }
}
