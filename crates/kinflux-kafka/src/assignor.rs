//! Kafka's consumer protocol payloads and the range and round-robin assignors.
//!
//! The subscription and assignment bytes carried by JoinGroup and SyncGroup follow
//! `ConsumerProtocolSubscription` and `ConsumerProtocolAssignment`: a big-endian `i16`
//! version followed by the message in that version. Java clients and librdkafka read and
//! write the same bytes, so they can share a group with us.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::{
    messages::{
        ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName,
        consumer_protocol_assignment, consumer_protocol_subscription,
    },
    protocol::{Encodable, StrBytes},
};

use crate::{
    config::AssignmentStrategy,
    error::{Error, Result},
    record::PartitionKey,
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
pub(crate) fn encode_subscription(
    topics: &[String],
    generation_id: i32,
    owned: &[PartitionKey],
) -> Result<Bytes> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in owned {
        by_topic.entry(&*tp.topic).or_default().push(tp.partition);
    }
    let sub = ConsumerProtocolSubscription::default()
        .with_owned_partitions(
            by_topic
                .into_iter()
                .map(|(t, ps)| {
                    consumer_protocol_subscription::TopicPartition::default()
                        .with_topic(TopicName(StrBytes::from_string(t.to_owned())))
                        .with_partitions(ps)
                })
                .collect(),
        )
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

    fn nullable_bytes(&mut self) -> Result<()> {
        let n = self.i32()?;
        if n < 0 {
            return Ok(());
        }
        let n = usize::try_from(n).map_err(|_| codec("bad bytes length"))?;
        if self.0.remaining() < n {
            return Err(codec("truncated bytes"));
        }
        self.0.advance(n);
        Ok(())
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

/// A member's subscription as the leader needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Subscription {
    pub(crate) topics: Vec<String>,
    /// Partitions the member owns (version 1+), for sticky assignors.
    pub(crate) owned: Vec<PartitionKey>,
    /// The generation in which it owned them (version 2+; `-1` if unknown).
    pub(crate) generation_id: i32,
}

/// Decodes a member's subscription (any version; fields after `generation_id` are ignored).
pub(crate) fn decode_subscription(bytes: Bytes) -> Result<Subscription> {
    let mut r = Reader(bytes);
    let version = r.i16()?;
    let n = r.len(2)?;
    let topics = (0..n).map(|_| r.string()).collect::<Result<Vec<_>>>()?;
    let mut sub = Subscription {
        topics,
        owned: Vec::new(),
        generation_id: -1,
    };
    if version >= 1 {
        r.nullable_bytes()?; // user data
        let nt = r.len(6)?;
        for _ in 0..nt {
            let topic: Arc<str> = r.string()?.into();
            let np = r.len(4)?;
            for _ in 0..np {
                sub.owned
                    .push(PartitionKey::new(Arc::clone(&topic), r.i32()?));
            }
        }
    }
    if version >= 2 {
        sub.generation_id = r.i32()?;
    }
    Ok(sub)
}

/// Encodes an assignment (version 0).
pub(crate) fn encode_assignment(partitions: &[PartitionKey]) -> Result<Bytes> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        by_topic.entry(&*tp.topic).or_default().push(tp.partition);
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
pub(crate) fn decode_assignment(bytes: Bytes) -> Result<Vec<PartitionKey>> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut r = Reader(bytes);
    let _version = r.i16()?;
    let topics = r.len(6)?;
    let mut out = Vec::new();
    for _ in 0..topics {
        let topic: Arc<str> = r.string()?.into();
        let n = r.len(4)?;
        for _ in 0..n {
            out.push(PartitionKey::new(Arc::clone(&topic), r.i32()?));
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
    /// Partitions owned now (cooperative-sticky only).
    pub(crate) owned: Vec<PartitionKey>,
    /// Generation of that ownership.
    pub(crate) generation_id: i32,
}

/// Assigns partitions to members. `partitions` maps each topic to its partition count.
/// Members are ordered by member id, as in Kafka's assignors.
pub(crate) fn assign(
    strategy: AssignmentStrategy,
    members: &[Member],
    partitions: &BTreeMap<String, i32>,
) -> BTreeMap<String, Vec<PartitionKey>> {
    let mut members: Vec<&Member> = members.iter().collect();
    members.sort_by(|a, b| a.member_id.cmp(&b.member_id));
    let mut out: BTreeMap<String, Vec<PartitionKey>> = members
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
                let name: Arc<str> = Arc::from(topic.as_str());
                let n = i32::try_from(subscribed.len()).unwrap_or(i32::MAX);
                let per = count / n;
                let extra = count % n;
                for (i, m) in subscribed.iter().enumerate() {
                    let i = i32::try_from(i).unwrap_or(i32::MAX);
                    let start = per * i + i.min(extra);
                    let len = per + i32::from(i < extra);
                    if let Some(list) = out.get_mut(&m.member_id) {
                        list.extend(
                            (start..start + len).map(|p| PartitionKey::new(Arc::clone(&name), p)),
                        );
                    }
                }
            }
        }
        AssignmentStrategy::CooperativeSticky => {
            return cooperative_sticky(&members, partitions);
        }
        AssignmentStrategy::RoundRobin => {
            let mut next = 0usize;
            for (topic, &count) in partitions {
                let name: Arc<str> = Arc::from(topic.as_str());
                for p in 0..count.max(0) {
                    // Next member (in circular order) subscribed to this topic.
                    for step in 0..members.len() {
                        let idx = (next + step) % members.len();
                        if members[idx].topics.contains(topic) {
                            if let Some(list) = out.get_mut(&members[idx].member_id) {
                                list.push(PartitionKey::new(Arc::clone(&name), p));
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

/// The cooperative-sticky assignment (KIP-429): balanced, each member keeps what it owns
/// up to its share, and a partition that moves is first only taken away from its owner:
/// it is given to its new owner in the next round, after the owner revoked it.
fn cooperative_sticky(
    members: &[&Member],
    partitions: &BTreeMap<String, i32>,
) -> BTreeMap<String, Vec<PartitionKey>> {
    let mut out: BTreeMap<String, Vec<PartitionKey>> = members
        .iter()
        .map(|m| (m.member_id.clone(), Vec::new()))
        .collect();
    if members.is_empty() {
        return out;
    }
    let all: Vec<PartitionKey> = partitions
        .iter()
        .flat_map(|(t, &n)| {
            let t: Arc<str> = Arc::from(t.as_str());
            (0..n.max(0)).map(move |p| PartitionKey::new(Arc::clone(&t), p))
        })
        .filter(|tp| members.iter().any(|m| m.topics.contains(&*tp.topic)))
        .collect();
    let exists: BTreeSet<&PartitionKey> = all.iter().collect();
    // Valid previous owners: the claim of the highest generation wins.
    let mut owner: BTreeMap<PartitionKey, (&str, i32)> = BTreeMap::new();
    for m in members {
        for tp in &m.owned {
            if !exists.contains(tp) || !m.topics.contains(&*tp.topic) {
                continue;
            }
            let better = owner
                .get(tp)
                .is_none_or(|(_, generation)| m.generation_id > *generation);
            if better {
                owner.insert(tp.clone(), (&m.member_id, m.generation_id));
            }
        }
    }
    let n = members.len();
    let floor = all.len() / n;
    let mut at_ceil_left = all.len() % n;
    // Keep owned partitions up to the share.
    let mut taken: BTreeSet<PartitionKey> = BTreeSet::new();
    for m in members {
        let mine: Vec<&PartitionKey> = owner
            .iter()
            .filter(|(_, (id, _))| *id == m.member_id)
            .map(|(tp, _)| tp)
            .collect();
        let mut keep = floor.min(mine.len());
        if mine.len() > floor && at_ceil_left > 0 {
            keep += 1;
            at_ceil_left -= 1;
        }
        if let Some(list) = out.get_mut(&m.member_id) {
            for tp in mine.into_iter().take(keep) {
                list.push(tp.clone());
                taken.insert(tp.clone());
            }
        }
    }
    // Deal the rest to the members with the fewest partitions (that subscribe to the topic).
    for tp in &all {
        if taken.contains(tp) {
            continue;
        }
        let target = members
            .iter()
            .filter(|m| m.topics.contains(&*tp.topic))
            .filter(|m| {
                let len = out.get(&m.member_id).map_or(0, Vec::len);
                len < floor || (len == floor && at_ceil_left > 0)
            })
            .min_by_key(|m| (out.get(&m.member_id).map_or(0, Vec::len), &m.member_id))
            .or_else(|| {
                members
                    .iter()
                    .filter(|m| m.topics.contains(&*tp.topic))
                    .min_by_key(|m| (out.get(&m.member_id).map_or(0, Vec::len), &m.member_id))
            });
        if let Some(m) = target {
            let list = out.entry(m.member_id.clone()).or_default();
            if list.len() == floor && at_ceil_left > 0 {
                at_ceil_left -= 1;
            }
            list.push(tp.clone());
        }
    }
    // Cooperative: a partition still owned by another member is withheld for one round.
    for (id, list) in out.iter_mut() {
        list.retain(|tp| owner.get(tp).is_none_or(|(o, _)| *o == id.as_str()));
        list.sort();
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
                owned: Vec::new(),
                generation_id: -1,
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
                PartitionKey::new("t1", 0),
                PartitionKey::new("t1", 2),
                PartitionKey::new("t2", 1)
            ]
        );
        assert_eq!(
            a["b"],
            vec![PartitionKey::new("t1", 1), PartitionKey::new("t2", 0)]
        );
    }

    #[test]
    fn payloads_round_trip_and_match_kafka_layout() {
        let sub = encode_subscription(&["abc".to_owned()], 7, &[]).unwrap();
        // version 2, array of 1 string "abc", null user data, no owned partitions, generation 7
        assert_eq!(
            &sub[..],
            &[
                0, 2, 0, 0, 0, 1, 0, 3, b'a', b'b', b'c', 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0,
                0, 7
            ]
        );
        assert_eq!(
            decode_subscription(sub).unwrap().topics,
            vec!["abc".to_owned()]
        );
        let owned = vec![PartitionKey::new("abc", 1), PartitionKey::new("abc", 4)];
        let sub = encode_subscription(&["abc".to_owned()], 9, &owned).unwrap();
        let d = decode_subscription(sub).unwrap();
        assert_eq!((d.owned, d.generation_id), (owned, 9));
        let tps = vec![PartitionKey::new("t", 0), PartitionKey::new("t", 3)];
        let a = encode_assignment(&tps).unwrap();
        assert_eq!(decode_assignment(a).unwrap(), tps);
        assert!(decode_assignment(Bytes::new()).unwrap().is_empty());
        assert!(decode_subscription(Bytes::from_static(&[0])).is_err());
        // A version-0 subscription as librdkafka and old Java clients send it.
        let v0 = Bytes::from_static(&[0, 0, 0, 0, 0, 1, 0, 1, b't', 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(
            decode_subscription(v0).unwrap().topics,
            vec!["t".to_owned()]
        );
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

#[cfg(test)]
mod cooperative_tests {
    use super::*;

    fn member(id: &str, owned: &[i32], generation_id: i32) -> Member {
        Member {
            member_id: id.to_owned(),
            topics: ["t".to_owned()].into(),
            owned: owned.iter().map(|p| PartitionKey::new("t", *p)).collect(),
            generation_id,
        }
    }

    fn parts(a: &BTreeMap<String, Vec<PartitionKey>>, id: &str) -> Vec<i32> {
        a[id].iter().map(|tp| tp.partition).collect()
    }

    #[test]
    fn newcomer_gets_partitions_only_after_the_owner_revoked_them() {
        let counts = BTreeMap::from([("t".to_owned(), 4)]);
        // Round 1: a owns everything, b is new. a keeps two, the two that move go to nobody.
        let a = member("a", &[0, 1, 2, 3], 1);
        let b = member("b", &[], -1);
        let r1 = assign(AssignmentStrategy::CooperativeSticky, &[a, b], &counts);
        assert_eq!(parts(&r1, "a"), vec![0, 1]);
        assert_eq!(parts(&r1, "b"), Vec::<i32>::new());
        // Round 2: a revoked 2 and 3; now b gets them, a keeps its own.
        let a = member("a", &[0, 1], 2);
        let b = member("b", &[], 2);
        let r2 = assign(AssignmentStrategy::CooperativeSticky, &[a, b], &counts);
        assert_eq!(parts(&r2, "a"), vec![0, 1]);
        assert_eq!(parts(&r2, "b"), vec![2, 3]);
    }

    #[test]
    fn departed_members_partitions_go_to_the_others_at_once() {
        let counts = BTreeMap::from([("t".to_owned(), 5)]);
        let a = member("a", &[0, 1], 3);
        let c = member("c", &[4], 3);
        // b (owning 2, 3) is gone: its partitions are unowned and dealt out now.
        let r = assign(AssignmentStrategy::CooperativeSticky, &[a, c], &counts);
        let mut all: Vec<i32> = parts(&r, "a").into_iter().chain(parts(&r, "c")).collect();
        all.sort();
        assert_eq!(all, vec![0, 1, 2, 3, 4]);
        assert!(parts(&r, "a").starts_with(&[0, 1]));
        assert!(parts(&r, "c").contains(&4));
        assert!(parts(&r, "a").len().abs_diff(parts(&r, "c").len()) <= 1);
    }
}
