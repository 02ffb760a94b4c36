//! The classic group protocol: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! OffsetCommit and OffsetFetch, over a [`Connection`] to the group coordinator.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use bytes::Bytes;
use kafka_protocol::{
    messages::{
        FindCoordinatorRequest, GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest,
        OffsetCommitRequest, OffsetFetchRequest, SyncGroupRequest, TopicName,
        join_group_request::JoinGroupRequestProtocol,
        leave_group_request::MemberIdentity,
        offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic},
        offset_fetch_request::OffsetFetchRequestTopic,
        sync_group_request::SyncGroupRequestAssignment,
    },
    protocol::StrBytes,
};
use tracing::debug;

use crate::{
    conn::Connection,
    error::{Error, Result, code},
    record::{CommittedOffset, PartitionKey},
    security::ConnectOptions,
};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// Asks any bootstrap broker which broker coordinates `group_id`, and connects to it.
pub(crate) async fn connect_coordinator(
    opts: &ConnectOptions,
    group_id: &str,
) -> Result<Arc<Connection>> {
    let mut last_err = Error::Config("no bootstrap brokers".into());
    for broker in &opts.brokers {
        let conn = match Connection::connect(broker, opts).await {
            Ok(c) => c,
            Err(e) => {
                debug!(broker, error = %e, "bootstrap broker unreachable");
                last_err = e;
                continue;
            }
        };
        let v = conn.version::<FindCoordinatorRequest>(3)?;
        let mut req = FindCoordinatorRequest::default().with_key(s(group_id));
        if v >= 1 {
            req = req.with_key_type(0);
        }
        let resp = conn.send(v, &req, REQUEST_TIMEOUT).await?;
        if resp.error_code != code::NONE {
            return Err(Error::broker(
                "FindCoordinator",
                resp.error_code,
                Some(format!("group {group_id}")),
            ));
        }
        let addr = format!("{}:{}", resp.host.as_str(), resp.port);
        debug!(group_id, coordinator = addr, "found group coordinator");
        if addr == broker.as_str() {
            return Ok(Arc::new(conn));
        }
        return Ok(Arc::new(Connection::connect(&addr, opts).await?));
    }
    Err(last_err)
}

/// What JoinGroup told us.
#[derive(Debug)]
pub(crate) struct Joined {
    pub(crate) generation_id: i32,
    pub(crate) member_id: String,
    pub(crate) leader: String,
    pub(crate) protocol_name: String,
    /// Members and their subscription metadata; only filled for the leader.
    pub(crate) members: Vec<(String, Bytes)>,
}

/// The answer to JoinGroup.
#[derive(Debug)]
pub(crate) enum JoinOutcome {
    /// We are a member of this generation.
    Joined(Joined),
    /// KIP-394: join again with this member id.
    MemberIdRequired(String),
}

/// Group membership requests on the coordinator connection.
#[derive(Debug, Clone)]
pub(crate) struct GroupClient {
    pub(crate) conn: Arc<Connection>,
    pub(crate) group_id: String,
    pub(crate) instance_id: Option<String>,
}

impl GroupClient {
    fn context(&self) -> Option<String> {
        Some(format!("group {}", self.group_id))
    }

    pub(crate) async fn join(
        &self,
        member_id: &str,
        session_timeout: Duration,
        rebalance_timeout: Duration,
        protocols: &[(&'static str, Bytes)],
    ) -> Result<JoinOutcome> {
        let v = self.conn.version::<JoinGroupRequest>(7)?;
        let mut req = JoinGroupRequest::default()
            .with_group_id(GroupId(s(&self.group_id)))
            .with_session_timeout_ms(millis(session_timeout))
            .with_member_id(s(member_id))
            .with_protocol_type(StrBytes::from_static_str("consumer"))
            .with_protocols(
                protocols
                    .iter()
                    .map(|(name, meta)| {
                        JoinGroupRequestProtocol::default()
                            .with_name(StrBytes::from_static_str(name))
                            .with_metadata(meta.clone())
                    })
                    .collect(),
            );
        if v >= 1 {
            req = req.with_rebalance_timeout_ms(millis(rebalance_timeout));
        }
        if v >= 5 {
            req = req.with_group_instance_id(self.instance_id.as_deref().map(s));
        }
        let resp = self
            .conn
            .send(v, &req, rebalance_timeout + REQUEST_TIMEOUT)
            .await?;
        if resp.error_code == code::MEMBER_ID_REQUIRED {
            // KIP-394: the broker handed us a member id; join again with it.
            return Ok(JoinOutcome::MemberIdRequired(resp.member_id.to_string()));
        }
        if resp.error_code != code::NONE {
            return Err(Error::broker("JoinGroup", resp.error_code, self.context()));
        }
        Ok(JoinOutcome::Joined(Joined {
            generation_id: resp.generation_id,
            member_id: resp.member_id.to_string(),
            leader: resp.leader.to_string(),
            protocol_name: resp
                .protocol_name
                .map(|p| p.to_string())
                .unwrap_or_default(),
            members: resp
                .members
                .into_iter()
                .map(|m| (m.member_id.to_string(), m.metadata))
                .collect(),
        }))
    }

    pub(crate) async fn sync(
        &self,
        generation_id: i32,
        member_id: &str,
        protocol_name: &str,
        assignments: Vec<(String, Bytes)>,
        rebalance_timeout: Duration,
    ) -> Result<Bytes> {
        let v = self.conn.version::<SyncGroupRequest>(5)?;
        let mut req = SyncGroupRequest::default()
            .with_group_id(GroupId(s(&self.group_id)))
            .with_generation_id(generation_id)
            .with_member_id(s(member_id))
            .with_assignments(
                assignments
                    .into_iter()
                    .map(|(m, a)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(StrBytes::from_string(m))
                            .with_assignment(a)
                    })
                    .collect(),
            );
        if v >= 3 {
            req = req.with_group_instance_id(self.instance_id.as_deref().map(s));
        }
        if v >= 5 {
            req = req
                .with_protocol_type(Some(StrBytes::from_static_str("consumer")))
                .with_protocol_name(Some(s(protocol_name)));
        }
        let resp = self
            .conn
            .send(v, &req, rebalance_timeout + REQUEST_TIMEOUT)
            .await?;
        if resp.error_code != code::NONE {
            return Err(Error::broker("SyncGroup", resp.error_code, self.context()));
        }
        Ok(resp.assignment)
    }

    pub(crate) async fn heartbeat(&self, generation_id: i32, member_id: &str) -> Result<()> {
        let v = self.conn.version::<HeartbeatRequest>(4)?;
        let mut req = HeartbeatRequest::default()
            .with_group_id(GroupId(s(&self.group_id)))
            .with_generation_id(generation_id)
            .with_member_id(s(member_id));
        if v >= 3 {
            req = req.with_group_instance_id(self.instance_id.as_deref().map(s));
        }
        let resp = self.conn.send(v, &req, REQUEST_TIMEOUT).await?;
        if resp.error_code != code::NONE {
            return Err(Error::broker("Heartbeat", resp.error_code, self.context()));
        }
        Ok(())
    }

    pub(crate) async fn leave(&self, member_id: &str) -> Result<()> {
        let v = self.conn.version::<LeaveGroupRequest>(4)?;
        let mut req = LeaveGroupRequest::default().with_group_id(GroupId(s(&self.group_id)));
        if v >= 3 {
            req = req.with_members(vec![
                MemberIdentity::default()
                    .with_member_id(s(member_id))
                    .with_group_instance_id(self.instance_id.as_deref().map(s)),
            ]);
        } else {
            req = req.with_member_id(s(member_id));
        }
        let resp = self.conn.send(v, &req, REQUEST_TIMEOUT).await?;
        if resp.error_code != code::NONE {
            return Err(Error::broker("LeaveGroup", resp.error_code, self.context()));
        }
        Ok(())
    }

    /// Commits offsets (the next offset to read) for a generation, each with `metadata`.
    pub(crate) async fn commit(
        &self,
        generation_id: i32,
        member_id: &str,
        offsets: &BTreeMap<PartitionKey, i64>,
        metadata: &str,
    ) -> Result<()> {
        // v9: members of `consumer` groups must commit with it (same fields as v8).
        let v = self.conn.version::<OffsetCommitRequest>(9)?;
        let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
        for (tp, off) in offsets {
            let mut p = OffsetCommitRequestPartition::default()
                .with_partition_index(tp.partition)
                .with_committed_offset(*off)
                .with_committed_metadata(Some(s(metadata)));
            if v >= 6 {
                p = p.with_committed_leader_epoch(-1);
            }
            by_topic.entry(&*tp.topic).or_default().push(p);
        }
        let mut req = OffsetCommitRequest::default()
            .with_group_id(GroupId(s(&self.group_id)))
            .with_generation_id_or_member_epoch(generation_id)
            .with_member_id(s(member_id))
            .with_topics(
                by_topic
                    .into_iter()
                    .map(|(t, ps)| {
                        OffsetCommitRequestTopic::default()
                            .with_name(TopicName(s(t)))
                            .with_partitions(ps)
                    })
                    .collect(),
            );
        if (2..=4).contains(&v) {
            req = req.with_retention_time_ms(-1);
        }
        if v >= 7 {
            req = req.with_group_instance_id(self.instance_id.as_deref().map(s));
        }
        let resp = self.conn.send(v, &req, REQUEST_TIMEOUT).await?;
        for t in resp.topics {
            for p in t.partitions {
                if p.error_code != code::NONE {
                    return Err(Error::broker(
                        "OffsetCommit",
                        p.error_code,
                        Some(format!("{}/{}", t.name.0.as_str(), p.partition_index)),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Committed offsets; a partition without one maps to `None`.
    pub(crate) async fn fetch_offsets(
        &self,
        partitions: &[PartitionKey],
    ) -> Result<BTreeMap<PartitionKey, Option<i64>>> {
        Ok(self
            .fetch_offsets_with_metadata(partitions)
            .await?
            .into_iter()
            .map(|(tp, c)| (tp, c.map(|c| c.offset)))
            .collect())
    }

    /// Committed offsets with the metadata committed along; `None` without an offset.
    pub(crate) async fn fetch_offsets_with_metadata(
        &self,
        partitions: &[PartitionKey],
    ) -> Result<BTreeMap<PartitionKey, Option<CommittedOffset>>> {
        let v = self.conn.version::<OffsetFetchRequest>(7)?;
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in partitions {
            by_topic.entry(&*tp.topic).or_default().push(tp.partition);
        }
        let req = OffsetFetchRequest::default()
            .with_group_id(GroupId(s(&self.group_id)))
            .with_topics(Some(
                by_topic
                    .into_iter()
                    .map(|(t, ps)| {
                        OffsetFetchRequestTopic::default()
                            .with_name(TopicName(s(t)))
                            .with_partition_indexes(ps)
                    })
                    .collect(),
            ));
        let resp = self.conn.send(v, &req, REQUEST_TIMEOUT).await?;
        if v >= 2 && resp.error_code != code::NONE {
            return Err(Error::broker(
                "OffsetFetch",
                resp.error_code,
                self.context(),
            ));
        }
        let mut out: BTreeMap<PartitionKey, Option<CommittedOffset>> =
            partitions.iter().map(|tp| (tp.clone(), None)).collect();
        for t in resp.topics {
            for p in t.partitions {
                if p.error_code != code::NONE {
                    return Err(Error::broker(
                        "OffsetFetch",
                        p.error_code,
                        Some(format!("{}/{}", t.name.0.as_str(), p.partition_index)),
                    ));
                }
                let tp = PartitionKey::new(t.name.0.as_str(), p.partition_index);
                let committed = (p.committed_offset >= 0).then(|| CommittedOffset {
                    offset: p.committed_offset,
                    metadata: p
                        .metadata
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_default(),
                });
                out.insert(tp, committed);
            }
        }
        Ok(out)
    }
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}
