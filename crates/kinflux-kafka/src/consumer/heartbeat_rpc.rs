//! The requests of the `consumer` group protocol (KIP-848): ConsumerGroupHeartbeat, and the
//! Metadata lookup that maps the topic ids of its assignments to names.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    time::Duration,
};

use kafka_protocol::{
    messages::{
        ConsumerGroupHeartbeatRequest, GroupId, MetadataRequest, TopicName,
        consumer_group_heartbeat_request::TopicPartitions,
    },
    protocol::StrBytes,
};
use uuid::Uuid;

use crate::{
    config::ConsumerConfig,
    conn::Connection,
    error::{Error, Result, code},
    record::PartitionKey,
};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What the member tells the coordinator with every heartbeat. The whole state is sent
/// each time (the protocol allows leaving unchanged fields out; sending them is valid and
/// keeps the member right after a reconnect).
#[derive(Debug)]
pub(super) struct Beat<'a> {
    pub(super) group_id: &'a str,
    pub(super) member_id: &'a str,
    /// 0 to join, -1 to leave, -2 to leave as a static member, else the current epoch.
    pub(super) member_epoch: i32,
    pub(super) instance_id: Option<&'a str>,
    pub(super) rebalance_timeout: Duration,
    pub(super) topics: &'a [String],
    pub(super) topic_regex: Option<&'a str>,
    pub(super) assignor: Option<&'a str>,
    /// The partitions this member owns now, by topic id.
    pub(super) owned: &'a BTreeMap<Uuid, Vec<i32>>,
}

impl<'a> Beat<'a> {
    /// This member's heartbeat at `member_epoch`, owning `owned`.
    pub(super) fn new(
        cfg: &'a ConsumerConfig,
        member_id: &'a str,
        member_epoch: i32,
        owned: &'a BTreeMap<Uuid, Vec<i32>>,
    ) -> Self {
        Beat {
            group_id: &cfg.group_id,
            member_id,
            member_epoch,
            instance_id: cfg.group_instance_id.as_deref(),
            rebalance_timeout: cfg.rebalance_timeout,
            topics: &cfg.topics,
            topic_regex: cfg.topic_regex.as_deref(),
            assignor: cfg.group_remote_assignor.map(|a| a.name()),
            owned,
        }
    }
}

/// What the coordinator answered.
#[derive(Debug)]
pub(super) struct Beaten {
    pub(super) member_id: Option<String>,
    pub(super) member_epoch: i32,
    pub(super) heartbeat_interval: Duration,
    /// The member's whole target assignment so far, when it changed.
    pub(super) assignment: Option<BTreeMap<Uuid, Vec<i32>>>,
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// Whether the coordinator speaks ConsumerGroupHeartbeat at all.
pub(super) fn supported(conn: &Connection) -> bool {
    conn.version::<ConsumerGroupHeartbeatRequest>(1).is_ok()
}

/// The error for a cluster without the `consumer` group protocol, worded as the Java
/// client's.
pub(super) fn unsupported() -> Error {
    Error::Config(
        "the cluster does not support the new CONSUMER group protocol (KIP-848, Apache Kafka \
         4.0 or later); set group_protocol = \"classic\""
            .into(),
    )
}

/// Sends one heartbeat.
pub(super) async fn heartbeat(conn: &Connection, beat: &Beat<'_>) -> Result<Beaten> {
    let v = conn
        .version::<ConsumerGroupHeartbeatRequest>(1)
        .map_err(|_| unsupported())?;
    if beat.topic_regex.is_some() && v < 1 {
        return Err(Error::Config(
            "topic_regex with group_protocol = \"consumer\" needs Apache Kafka 4.0 or later".into(),
        ));
    }
    let leaving = beat.member_epoch < 0;
    let mut req = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s(beat.group_id)))
        .with_member_id(s(beat.member_id))
        .with_member_epoch(beat.member_epoch)
        .with_instance_id(beat.instance_id.map(s));
    if !leaving {
        let owned = beat
            .owned
            .iter()
            .map(|(id, ps)| {
                TopicPartitions::default()
                    .with_topic_id(*id)
                    .with_partitions(ps.clone())
            })
            .collect();
        let names = (!beat.topics.is_empty() || beat.topic_regex.is_none())
            .then(|| beat.topics.iter().map(|t| TopicName(s(t))).collect());
        req = req
            .with_rebalance_timeout_ms(
                i32::try_from(beat.rebalance_timeout.as_millis()).unwrap_or(i32::MAX),
            )
            .with_subscribed_topic_names(names)
            .with_server_assignor(beat.assignor.map(s))
            .with_topic_partitions(Some(owned));
        if v >= 1 {
            req = req.with_subscribed_topic_regex(beat.topic_regex.map(s));
        }
    } else {
        req = req.with_rebalance_timeout_ms(-1);
    }
    let resp = conn.send(v, &req, REQUEST_TIMEOUT).await?;
    if resp.error_code != code::NONE {
        let context = match resp.error_message {
            Some(m) => format!("group {}: {}", beat.group_id, m.as_str()),
            None => format!("group {}", beat.group_id),
        };
        if resp.error_code == code::UNSUPPORTED_VERSION {
            return Err(unsupported());
        }
        return Err(Error::broker(
            "ConsumerGroupHeartbeat",
            resp.error_code,
            Some(context),
        ));
    }
    Ok(Beaten {
        member_id: resp.member_id.map(|m| m.to_string()),
        member_epoch: resp.member_epoch,
        heartbeat_interval: Duration::from_millis(
            u64::try_from(resp.heartbeat_interval_ms).unwrap_or(0),
        ),
        assignment: resp.assignment.map(|a| {
            a.topic_partitions
                .into_iter()
                .map(|t| (t.topic_id, t.partitions))
                .collect()
        }),
    })
}

/// Topic id to name, for every topic of the cluster (Metadata v10 and later carry ids).
pub(super) async fn topic_names(conn: &Connection) -> Result<HashMap<Uuid, String>> {
    let v = conn.version::<MetadataRequest>(12)?;
    if v < 10 {
        return Err(unsupported());
    }
    let req = MetadataRequest::default().with_topics(None);
    let resp = conn.send(v, &req, REQUEST_TIMEOUT).await?;
    Ok(resp
        .topics
        .into_iter()
        .filter(|t| t.error_code == code::NONE)
        .filter_map(|t| Some((t.topic_id, t.name?.0.to_string())))
        .collect())
}

/// An assignment by topic id as partitions by name; `None` when an id is not in `names`
/// (a topic created since the last metadata lookup).
pub(super) fn resolve(
    assignment: &BTreeMap<Uuid, Vec<i32>>,
    names: &HashMap<Uuid, String>,
) -> Option<BTreeSet<PartitionKey>> {
    let mut out = BTreeSet::new();
    for (id, ps) in assignment {
        let name = names.get(id)?;
        out.extend(ps.iter().map(|p| PartitionKey::new(name.as_str(), *p)));
    }
    Some(out)
}

/// The partitions of `owned` by topic id, as the heartbeat reports them.
pub(super) fn by_id(
    owned: &[PartitionKey],
    names: &HashMap<Uuid, String>,
) -> BTreeMap<Uuid, Vec<i32>> {
    let ids: HashMap<&str, Uuid> = names.iter().map(|(id, n)| (n.as_str(), *id)).collect();
    let mut out: BTreeMap<Uuid, Vec<i32>> = BTreeMap::new();
    for tp in owned {
        if let Some(id) = ids.get(&*tp.topic) {
            out.entry(*id).or_default().push(tp.partition);
        }
    }
    out
}

/// A new member id: KIP-1082 has the client make it (ConsumerGroupHeartbeat v1), unique
/// and kept for the life of the consumer.
pub(super) fn new_member_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    let hi = h.finish();
    h.write_u64(hi);
    let lo = h.finish();
    Uuid::from_u64_pair(hi, lo).simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_by_topic_id_map_to_names_and_back() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let names: HashMap<Uuid, String> = [(a, "alpha".to_string()), (b, "beta".to_string())]
            .into_iter()
            .collect();
        let assignment: BTreeMap<Uuid, Vec<i32>> =
            [(a, vec![0, 2]), (b, vec![1])].into_iter().collect();
        let tps = resolve(&assignment, &names).expect("all ids known");
        let expected: BTreeSet<PartitionKey> = [
            PartitionKey::new("alpha", 0),
            PartitionKey::new("alpha", 2),
            PartitionKey::new("beta", 1),
        ]
        .into_iter()
        .collect();
        assert_eq!(tps, expected);
        let back = by_id(&tps.into_iter().collect::<Vec<_>>(), &names);
        assert_eq!(back, assignment);
        let unknown: BTreeMap<Uuid, Vec<i32>> = [(Uuid::from_u128(3), vec![0])].into();
        assert!(resolve(&unknown, &names).is_none());
        assert_ne!(new_member_id(), new_member_id());
        assert_eq!(new_member_id().len(), 32);
    }
}
