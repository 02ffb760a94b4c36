//! The group leader's job: read every member's subscription, look up the partition counts,
//! and assign partitions with the strategy the group chose.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;

use super::Shared;
use crate::{
    assignor::{self, Member},
    error::{Error, Result},
    group,
};

/// The assignment of every member, encoded for SyncGroup.
pub(super) async fn assignment(
    shared: &Shared,
    joined: &group::Joined,
) -> Result<Vec<(String, Bytes)>> {
    let strategy = shared
        .config
        .assignment_strategies
        .iter()
        .copied()
        .find(|s| s.protocol_name() == joined.protocol_name)
        .ok_or_else(|| {
            Error::Config(format!(
                "unknown assignment protocol {}",
                joined.protocol_name
            ))
        })?;
    let mut members = Vec::with_capacity(joined.members.len());
    let mut all_topics = BTreeSet::new();
    for (id, meta) in &joined.members {
        let sub = assignor::decode_subscription(meta.clone())?;
        let topics: BTreeSet<String> = sub.topics.into_iter().collect();
        all_topics.extend(topics.iter().cloned());
        members.push(Member {
            member_id: id.clone(),
            topics,
            owned: sub.owned,
            generation_id: sub.generation_id,
        });
    }
    let counts: HashMap<String, i32> = partition_counts(shared).await?.into_iter().collect();
    let partitions: BTreeMap<String, i32> = all_topics
        .into_iter()
        .filter_map(|t| counts.get(&t).map(|c| (t, *c)))
        .collect();
    let plan = assignor::assign(strategy, &members, &partitions);
    plan.into_iter()
        .map(|(m, tps)| Ok((m, assignor::encode_assignment(&tps)?)))
        .collect()
}

/// Every topic of the cluster with its partition count (metadata).
pub(super) async fn partition_counts(shared: &Shared) -> Result<BTreeMap<String, i32>> {
    shared.fetch.partition_counts().await
}
