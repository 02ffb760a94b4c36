//! Kafka's consumer protocol payloads and the range and round-robin assignors.
//!
//! The subscription and assignment bytes carried by JoinGroup and SyncGroup follow
//! `ConsumerProtocolSubscription` and `ConsumerProtocolAssignment`: a big-endian `i16`
//! version followed by the message in that version. Java clients and librdkafka read and
//! write the same bytes, so they can share a group with us.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::{
    messages::{
        ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName,
        consumer_protocol_assignment,
    },
    protocol::{Encodable, StrBytes},
};

use crate::{
    config::AssignmentStrategy,
    error::{Error, Result},
    record::TopicPartition,
};

fn codec(e: impl std::fmt::Display) -> Error {
    Error::Codec {
        api: "ConsumerProtocol",
        message: e.to_string(),
    }
}

/// Version of the subscription we send: 2 carries the member's last generation.
const SUBSCRIPTION_VERSION: i16 = 2;

/// Encodes our subscription: topics, and the last generation this member was part of
/// (`-1` if none). Brokers compare a rejoining member's metadata with the stored one; the
/// generation makes a rejoin after a completed generation visible as a change.
pub(crate) fn encode_subscription(topics: &[String], generation_id: i32) -> Result<Bytes> {
    let sub = ConsumerProtocolSubscription::default()
        .with_topics(
            topics
                .iter()
                .map(|t| StrBytes::from_string(t.clone()))
                .collect(),
        )
        .with_generation_id(generation_id);
    let mut buf = BytesMut::new();
    buf.put_i16(SUBSCRIPTION_VERSION);
    sub.encode(&mut buf, SUBSCRIPTION_VERSION).map_err(codec)?;
    Ok(buf.freeze())
}

/// Reads the consumer protocol payloads of *other* group members (and of the leader's
/// assignment). They are input we do not control, so they are read here with every length
/// checked against the bytes present: kafka-protocol's decoder allocates arrays by their
/// declared length, which a garbage payload could set to two billion.
struct Reader(Bytes);

impl Reader {
    fn i16(&mut self) -> Result<i16> {
        if self.0.remaining() < 2 {
            return Err(codec("truncated payload"));
        }
        Ok(self.0.get_i16())
    }

    fn i32(&mut self) -> Result<i32> {
        if self.0.remaining() < 4 {
            return Err(codec("truncated payload"));
        }
        Ok(self.0.get_i32())
    }

    /// An array length, at most the number of `min_size`-byte elements left.
    fn len(&mut self, min_size: usize) -> Result<usize> {
        let n = self.i32()?;
        let n = usize::try_from(n).map_err(|_| codec("negative array length"))?;
        if n > self.0.remaining() / min_size {
            return Err(codec("array longer than the payload"));
        }
        Ok(n)
    }

    fn string(&mut self) -> Result<String> {
        let n = usize::try_from(self.i16()?).map_err(|_| codec("null string"))?;
        if self.0.remaining() < n {
            return Err(codec("truncated string"));
        }
        let b = self.0.split_to(n);
        String::from_utf8(b.to_vec()).map_err(|_| codec("string is not UTF-8"))
    }
}

/// Decodes a member's subscription into its topics (any version: later fields are ignored).
pub(crate) fn decode_subscription(bytes: Bytes) -> Result<Vec<String>> {
    let mut r = Reader(bytes);
    let _version = r.i16()?;
    let n = r.len(2)?;
    (0..n).map(|_| r.string()).collect()
}

/// Encodes an assignment (version 0).
pub(crate) fn encode_assignment(partitions: &[TopicPartition]) -> Result<Bytes> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    let a = ConsumerProtocolAssignment::default().with_assigned_partitions(
        by_topic
            .into_iter()
            .map(|(t, ps)| {
                consumer_protocol_assignment::TopicPartition::default()
                    .with_topic(TopicName(StrBytes::from_string(t.to_owned())))
                    .with_partitions(ps)
            })
            .collect(),
    );
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    a.encode(&mut buf, 0).map_err(codec)?;
    Ok(buf.freeze())
}

/// Decodes an assignment (any version: user data is ignored); empty bytes mean no
/// partitions.
pub(crate) fn decode_assignment(bytes: Bytes) -> Result<Vec<TopicPartition>> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut r = Reader(bytes);
    let _version = r.i16()?;
    let topics = r.len(6)?;
    let mut out = Vec::new();
    for _ in 0..topics {
        let topic = r.string()?;
        let n = r.len(4)?;
        for _ in 0..n {
            out.push(TopicPartition::new(topic.clone(), r.i32()?));
        }
    }
    out.sort();
    Ok(out)
}

/// One member as seen by the group leader.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) member_id: String,
    pub(crate) topics: BTreeSet<String>,
}

/// Assigns partitions to members. `partitions` maps each topic to its partition count.
/// Members are ordered by member id, as in Kafka's assignors.
pub(crate) fn assign(
    strategy: AssignmentStrategy,
    members: &[Member],
    partitions: &BTreeMap<String, i32>,
) -> BTreeMap<String, Vec<TopicPartition>> {
    let mut members: Vec<&Member> = members.iter().collect();
    members.sort_by(|a, b| a.member_id.cmp(&b.member_id));
    let mut out: BTreeMap<String, Vec<TopicPartition>> = members
        .iter()
        .map(|m| (m.member_id.clone(), Vec::new()))
        .collect();
    match strategy {
        AssignmentStrategy::Range => {
            for (topic, &count) in partitions {
                let subscribed: Vec<&&Member> = members
                    .iter()
                    .filter(|m| m.topics.contains(topic))
                    .collect();
                if subscribed.is_empty() || count <= 0 {
                    continue;
                }
                let n = i32::try_from(subscribed.len()).unwrap_or(i32::MAX);
                let per = count / n;
                let extra = count % n;
                for (i, m) in subscribed.iter().enumerate() {
                    let i = i32::try_from(i).unwrap_or(i32::MAX);
                    let start = per * i + i.min(extra);
                    let len = per + i32::from(i < extra);
                    if let Some(list) = out.get_mut(&m.member_id) {
                        list.extend((start..start + len).map(|p| TopicPartition::new(topic, p)));
                    }
                }
            }
        }
        AssignmentStrategy::RoundRobin => {
            let mut next = 0usize;
            for (topic, &count) in partitions {
                for p in 0..count.max(0) {
                    // Next member (in circular order) subscribed to this topic.
                    for step in 0..members.len() {
                        let idx = (next + step) % members.len();
                        if members[idx].topics.contains(topic) {
                            if let Some(list) = out.get_mut(&members[idx].member_id) {
                                list.push(TopicPartition::new(topic, p));
                            }
                            next = idx + 1;
                            break;
                        }
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(ids: &[&str], topics: &[&str]) -> Vec<Member> {
        ids.iter()
            .map(|id| Member {
                member_id: (*id).to_owned(),
                topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            })
            .collect()
    }

    #[test]
    fn range_gives_consecutive_partitions_and_extras_to_first_members() {
        let parts = BTreeMap::from([("t".to_owned(), 5)]);
        let a = assign(
            AssignmentStrategy::Range,
            &members(&["b", "a"], &["t"]),
            &parts,
        );
        let ps = |m: &str| a[m].iter().map(|tp| tp.partition).collect::<Vec<_>>();
        assert_eq!(ps("a"), vec![0, 1, 2]);
        assert_eq!(ps("b"), vec![3, 4]);
    }

    #[test]
    fn roundrobin_deals_partitions_across_topics() {
        let parts = BTreeMap::from([("t1".to_owned(), 3), ("t2".to_owned(), 2)]);
        let a = assign(
            AssignmentStrategy::RoundRobin,
            &members(&["a", "b"], &["t1", "t2"]),
            &parts,
        );
        assert_eq!(
            a["a"],
            vec![
                TopicPartition::new("t1", 0),
                TopicPartition::new("t1", 2),
                TopicPartition::new("t2", 1)
            ]
        );
        assert_eq!(
            a["b"],
            vec![TopicPartition::new("t1", 1), TopicPartition::new("t2", 0)]
        );
    }

    #[test]
    fn payloads_round_trip_and_match_kafka_layout() {
        let sub = encode_subscription(&["abc".to_owned()], 7).unwrap();
        // version 2, array of 1 string "abc", null user data, no owned partitions, generation 7
        assert_eq!(
            &sub[..],
            &[
                0, 2, 0, 0, 0, 1, 0, 3, b'a', b'b', b'c', 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0,
                0, 7
            ]
        );
        assert_eq!(decode_subscription(sub).unwrap(), vec!["abc".to_owned()]);
        let tps = vec![TopicPartition::new("t", 0), TopicPartition::new("t", 3)];
        let a = encode_assignment(&tps).unwrap();
        assert_eq!(decode_assignment(a).unwrap(), tps);
        assert!(decode_assignment(Bytes::new()).unwrap().is_empty());
        assert!(decode_subscription(Bytes::from_static(&[0])).is_err());
        // A version-0 subscription as librdkafka and old Java clients send it.
        let v0 = Bytes::from_static(&[0, 0, 0, 0, 0, 1, 0, 1, b't', 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(decode_subscription(v0).unwrap(), vec!["t".to_owned()]);
    }

    #[test]
    fn garbage_payloads_are_errors_not_panics() {
        // A declared array length of two billion must not allocate.
        let huge = Bytes::from_static(&[0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 1, b'x']);
        assert!(decode_subscription(huge.clone()).is_err());
        assert!(decode_assignment(huge).is_err());
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    (seed & 0xff) as u8
                })
                .collect();
            let _ = decode_subscription(Bytes::from(bytes.clone()));
            let _ = decode_assignment(Bytes::from(bytes));
        }
    }
}
