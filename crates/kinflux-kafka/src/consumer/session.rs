//! The group session: find the coordinator, join and sync until this member is in a stable
//! generation, keep it with heartbeats, and leave it; revoking and assigning partitions on
//! the way. Every failed group request goes through one classification, [`Verdict`].

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::Duration,
};

use bytes::Bytes;
use kinflux_backoff::Backoff;
use tokio::{sync::mpsc, time::Instant};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{
    Event, RETRY, Shared,
    fetcher::Fetchers,
    leader, lock,
    revoke::{Revoke, revoke, shared_fenced},
    verdict::Verdict,
};
use crate::{
    assignor,
    conn::Connection,
    error::Error,
    group::{self, GroupClient, JoinOutcome},
    record::PartitionKey,
};

/// The generation this member is in, as [`Consumer::commit`](super::Consumer::commit)
/// needs it.
#[derive(Debug, Clone)]
pub(super) struct Membership {
    pub(super) group: GroupClient,
    pub(super) generation_id: i32,
    pub(super) member_id: String,
    /// When the coordinator last confirmed the membership (join, sync or heartbeat):
    /// past the session timeout, the coordinator has most likely dropped this member.
    pub(super) confirmed_at: Instant,
}

/// Where the session goes instead of on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Detour {
    /// Find the coordinator again, then join.
    Reconnect,
    /// Shut down, or a fatal error was sent to the caller.
    End,
}

/// Why the member left a stable generation.
#[derive(Debug)]
enum Exit {
    Rejoin { coordinator_moved: bool },
    Lost,
    Shutdown,
    Fatal(Error),
}

/// What a stable generation gave this member.
#[derive(Debug)]
struct Generation {
    id: i32,
    assigned: Vec<PartitionKey>,
    /// The topics subscribed to and their partition counts when it was joined.
    subscribed: BTreeMap<String, i32>,
    /// Whether its assignor rebalances incrementally (KIP-429).
    cooperative: bool,
}

/// How often the metadata is read while a subscribed topic has no partitions yet.
const MISSING_TOPIC_REFRESH: Duration = Duration::from_secs(1);

/// The group membership of one consumer: the state machine of its background task.
pub(super) struct Session {
    shared: Arc<Shared>,
    tx: mpsc::UnboundedSender<Event>,
    shutdown: CancellationToken,
    member_id: String,
    /// The last generation this member was in (`-1`: none), sent in its subscription.
    last_generation: i32,
    fetchers: Fetchers,
    /// The coordinator connection to join over next, when it is still good.
    coordinator: Option<Arc<Connection>>,
    backoff: Backoff,
}

impl Session {
    pub(super) fn new(
        shared: Arc<Shared>,
        tx: mpsc::UnboundedSender<Event>,
        shutdown: CancellationToken,
    ) -> Self {
        let what = format!("joining group {}", shared.config.group_id);
        Session {
            shared,
            tx,
            shutdown,
            member_id: String::new(),
            last_generation: -1,
            fetchers: Fetchers::default(),
            coordinator: None,
            backoff: Backoff::new(RETRY, what),
        }
    }

    /// Runs until shutdown or a fatal error, then stops every fetcher.
    pub(super) async fn run(mut self) {
        while let Some(mut group) = self.connect().await {
            let generation = match self.join(&group).await {
                Ok(g) => g,
                Err(Detour::Reconnect) => continue,
                Err(Detour::End) => break,
            };
            match self.start(&group, &generation).await {
                Ok(false) => {}
                Ok(true) => {
                    // KIP-429: after revoking, rejoin at once so the partitions reach their
                    // new owner.
                    self.coordinator = Some(Arc::clone(&group.conn));
                    continue;
                }
                Err(Detour::Reconnect) => continue,
                Err(Detour::End) => break,
            }
            let exit = self.stay(&mut group, &generation).await;
            // Eager protocols (and a lost membership) revoke everything before rejoining; a
            // cooperative member keeps fetching and revokes after the next SyncGroup only
            // what moves.
            let keep = generation.cooperative && matches!(exit, Exit::Rejoin { .. });
            if let Exit::Fatal(e) = &exit {
                // A fenced member must not write or commit what it held while draining.
                shared_fenced(&self.shared, Verdict::of(e) == Verdict::Fenced);
            }
            if !keep {
                let announce = !matches!(exit, Exit::Shutdown | Exit::Fatal(_));
                let lost = matches!(exit, Exit::Lost);
                self.revoke_all(announce, lost).await;
            }
            // Keep the coordinator connection for the rejoin, unless the coordinator moved.
            self.coordinator = match exit {
                Exit::Rejoin {
                    coordinator_moved: true,
                } => None,
                _ => Some(Arc::clone(&group.conn)),
            };
            match exit {
                Exit::Shutdown => {
                    leave_quietly(&group, &self.member_id).await;
                    break;
                }
                Exit::Fatal(e) => {
                    let _ = self.tx.send(Event::Fatal(e));
                    break;
                }
                Exit::Lost => info!(
                    group = self.shared.config.group_id,
                    "group membership lost; rejoining"
                ),
                Exit::Rejoin { .. } => {}
            }
        }
        let all = self.fetchers.partitions();
        self.fetchers.stop(&all).await;
        lock(&self.shared.assigned).clear();
        *lock(&self.shared.membership) = None;
    }

    /// A connection to the group coordinator: the one kept from the last generation, or a
    /// new one. `None` on shutdown or a fatal error.
    async fn connect(&mut self) -> Option<GroupClient> {
        let shared = Arc::clone(&self.shared);
        let cfg = &shared.config;
        loop {
            if self.shutdown.is_cancelled() {
                return None;
            }
            let conn = match self.coordinator.take().filter(|c| !c.is_closed()) {
                Some(c) => Ok(c),
                None => group::connect_coordinator(&shared.opts, &cfg.group_id).await,
            };
            match conn {
                Ok(conn) => {
                    return Some(GroupClient {
                        conn,
                        group_id: cfg.group_id.clone(),
                        instance_id: cfg.group_instance_id.clone(),
                    });
                }
                Err(e) if !e.is_retryable() => {
                    let _ = self.tx.send(Event::Fatal(e));
                    return None;
                }
                Err(e) => self.back_off(&e).await.ok()?,
            }
        }
    }

    /// JoinGroup and SyncGroup until this member is in a stable generation.
    async fn join(&mut self, group: &GroupClient) -> Result<Generation, Detour> {
        let shared = Arc::clone(&self.shared);
        let cfg = &shared.config;
        loop {
            if self.shutdown.is_cancelled() {
                return Err(Detour::End);
            }
            let subscribed = match subscription(&shared).await {
                Ok(s) => s,
                Err(e) => {
                    self.back_off(&e).await?;
                    continue;
                }
            };
            let topics: Vec<String> = subscribed.keys().cloned().collect();
            let owned = self.fetchers.partitions();
            let meta = assignor::encode_subscription(&topics, self.last_generation, &owned)
                .map_err(|e| self.fatal(e))?;
            let protocols: Vec<(&'static str, Bytes)> = cfg
                .assignment_strategies
                .iter()
                .map(|s| (s.protocol_name(), meta.clone()))
                .collect();
            let join = group.join(
                &self.member_id,
                cfg.session_timeout,
                cfg.rebalance_timeout,
                &protocols,
            );
            let joined = tokio::select! {
                r = join => r,
                // JoinGroup may block for a whole rebalance; do not make close() wait for it.
                () = self.shutdown.cancelled() => {
                    leave_quietly(group, &self.member_id).await;
                    return Err(Detour::End);
                }
            };
            let joined = match joined {
                Ok(JoinOutcome::MemberIdRequired(id)) => {
                    self.member_id = id;
                    continue;
                }
                Ok(JoinOutcome::Joined(j)) => j,
                Err(e) => {
                    self.failed("JoinGroup", e).await?;
                    continue;
                }
            };
            self.member_id = joined.member_id.clone();
            let leader = joined.leader == self.member_id;
            let assignments = if leader {
                match leader::assignment(&shared, &joined).await {
                    Ok(a) => a,
                    Err(e) => {
                        self.back_off(&e).await?;
                        continue;
                    }
                }
            } else {
                Vec::new()
            };
            let sync = group.sync(
                joined.generation_id,
                &self.member_id,
                &joined.protocol_name,
                assignments,
                cfg.rebalance_timeout,
            );
            let synced = tokio::select! {
                r = sync => r,
                () = self.shutdown.cancelled() => {
                    leave_quietly(group, &self.member_id).await;
                    return Err(Detour::End);
                }
            };
            let mine = match synced.and_then(assignor::decode_assignment) {
                Ok(a) => a,
                Err(e) => {
                    self.failed("SyncGroup", e).await?;
                    continue;
                }
            };
            info!(
                group = cfg.group_id,
                member_id = self.member_id.as_str(),
                generation = joined.generation_id,
                leader,
                members = joined.members.len(),
                protocol = joined.protocol_name,
                partitions = mine.len(),
                "joined group"
            );
            let cooperative = cfg
                .assignment_strategies
                .iter()
                .any(|s| s.is_cooperative() && s.protocol_name() == joined.protocol_name);
            return Ok(Generation {
                id: joined.generation_id,
                assigned: mine,
                subscribed,
                cooperative,
            });
        }
    }

    /// After a failed JoinGroup or SyncGroup: `Ok` to join again over the same connection,
    /// or where to go instead.
    async fn failed(&mut self, request: &'static str, e: Error) -> Result<(), Detour> {
        match Verdict::of(&e) {
            Verdict::Fatal | Verdict::Fenced | Verdict::Refused => Err(self.fatal(e)),
            Verdict::MemberLost { forget_id } => {
                debug!(error = %e, "{request} failed; joining again");
                if forget_id {
                    self.member_id.clear();
                }
                // A cooperative member kept its partitions into this rebalance; no more.
                self.revoke_all(true, true).await;
                self.pause_briefly().await
            }
            Verdict::Rebalancing => {
                debug!(error = %e, "{request} failed; joining again");
                self.pause_briefly().await
            }
            Verdict::CoordinatorMoved | Verdict::Disconnected => {
                self.back_off(&e).await?;
                Err(Detour::Reconnect)
            }
            Verdict::Transient => self.back_off(&e).await,
        }
    }

    /// Starts a stable generation: revokes what moved away, reads the committed offsets of
    /// what was added, announces it and starts fetching it. `Ok(true)` when the member must
    /// rejoin at once (a cooperative member that revoked partitions).
    async fn start(
        &mut self,
        group: &GroupClient,
        generation: &Generation,
    ) -> Result<bool, Detour> {
        // Eager generations start from nothing (all was revoked before rejoining);
        // cooperative ones keep what they still own.
        let new: BTreeSet<&PartitionKey> = generation.assigned.iter().collect();
        let revoked: Vec<PartitionKey> = self
            .fetchers
            .partitions()
            .into_iter()
            .filter(|tp| !new.contains(tp))
            .collect();
        let added: Vec<PartitionKey> = generation
            .assigned
            .iter()
            .filter(|tp| !self.fetchers.contains(tp))
            .cloned()
            .collect();
        if !revoked.is_empty() {
            self.revoke(&revoked, true).await;
        }
        let committed = if added.is_empty() {
            BTreeMap::new()
        } else {
            match group.fetch_offsets(&added).await {
                Ok(c) => c,
                Err(e) => {
                    self.back_off(&e).await?;
                    return Err(Detour::Reconnect);
                }
            }
        };
        self.backoff.succeeded();
        self.last_generation = generation.id;
        *lock(&self.shared.membership) = Some(Membership {
            group: group.clone(),
            generation_id: generation.id,
            member_id: self.member_id.clone(),
            confirmed_at: Instant::now(),
        });
        shared_fenced(&self.shared, false);
        // Announce first, so the event precedes every batch of the new partitions.
        if !added.is_empty() {
            let _ = self.tx.send(Event::Assigned(added.clone()));
        }
        let (shared, tx, shutdown) = (&self.shared, &self.tx, &self.shutdown);
        self.fetchers
            .start(shared, &added, &committed, tx, shutdown);
        Ok(generation.cooperative && !revoked.is_empty())
    }

    /// The stable generation: heartbeats, and a metadata check now and then, until
    /// something ends it.
    async fn stay(&mut self, group: &mut GroupClient, generation: &Generation) -> Exit {
        let shared = Arc::clone(&self.shared);
        let cfg = &shared.config;
        let mut last_ok = Instant::now();
        // A topic subscribed to but not (yet) in the metadata, as right after its creation,
        // is looked for every second rather than at the next refresh, minutes away.
        let refresh = if generation.subscribed.values().any(|count| *count == 0) {
            cfg.metadata_refresh_interval.min(MISSING_TOPIC_REFRESH)
        } else {
            cfg.metadata_refresh_interval
        };
        let mut next_metadata = Instant::now() + refresh;
        loop {
            tokio::select! {
                () = tokio::time::sleep(cfg.heartbeat_interval) => {}
                () = self.shutdown.cancelled() => return Exit::Shutdown,
            }
            // The answer vouches for the membership as of when the request left: one
            // sent before a SIGSTOP and read after SIGCONT says nothing of the time between.
            let sent = Instant::now();
            match group.heartbeat(generation.id, &self.member_id).await {
                Ok(()) => {
                    last_ok = Instant::now();
                    if let Some(m) = lock(&self.shared.membership).as_mut() {
                        m.confirmed_at = sent;
                    }
                }
                Err(e) => match Verdict::of(&e) {
                    Verdict::Fenced | Verdict::Refused => return Exit::Fatal(e),
                    Verdict::MemberLost { forget_id } => {
                        if forget_id {
                            self.member_id.clear();
                        }
                        return Exit::Lost;
                    }
                    Verdict::Rebalancing => {
                        debug!(error = %e, "rebalance");
                        return Exit::Rejoin {
                            coordinator_moved: false,
                        };
                    }
                    Verdict::CoordinatorMoved => {
                        debug!(error = %e, "coordinator moved");
                        return Exit::Rejoin {
                            coordinator_moved: true,
                        };
                    }
                    // The connection broke, or an answer that says nothing about the group:
                    // reconnect and keep trying until the session would have timed out. The
                    // JoinGroup that follows decides what a lasting error means.
                    Verdict::Disconnected | Verdict::Transient | Verdict::Fatal => {
                        if last_ok.elapsed() > cfg.session_timeout {
                            return Exit::Lost;
                        }
                        if let Err(refused) = self.reconnect_heartbeat(group, &e, last_ok).await {
                            return Exit::Fatal(refused);
                        }
                        continue;
                    }
                },
            }
            if Instant::now() >= next_metadata {
                next_metadata = Instant::now() + refresh;
                match subscription(&shared).await {
                    Ok(now) if now != generation.subscribed => {
                        info!("subscribed topics or partitions changed; rejoining");
                        return Exit::Rejoin {
                            coordinator_moved: false,
                        };
                    }
                    Ok(_) => {}
                    Err(e) => debug!(error = %e, "metadata refresh failed"),
                }
            }
        }
    }

    /// After a failed heartbeat: use the connection `commit()` made, or make one. An error
    /// only when the broker refused the new connection's credentials.
    async fn reconnect_heartbeat(
        &self,
        group: &mut GroupClient,
        e: &Error,
        last_ok: Instant,
    ) -> Result<(), Error> {
        let cfg = &self.shared.config;
        if last_ok.elapsed() < cfg.heartbeat_interval * 2 {
            warn!(error = %e, "heartbeat failed; reconnecting to the coordinator");
        } else {
            debug!(error = %e, "heartbeat failed again");
        }
        let fresh = lock(&self.shared.membership)
            .as_ref()
            .map(|m| Arc::clone(&m.group.conn))
            .filter(|c| !c.is_closed());
        if let Some(c) = fresh {
            group.conn = c;
        } else if group.conn.is_closed() {
            match group::connect_coordinator(&self.shared.opts, &cfg.group_id).await {
                Ok(c) => {
                    group.conn = c;
                    if let Some(m) = lock(&self.shared.membership).as_mut() {
                        m.group = group.clone();
                    }
                }
                Err(e) if Verdict::of(&e) == Verdict::Refused => return Err(e),
                Err(e) => debug!(error = %e, "coordinator reconnect failed"),
            }
        }
        Ok(())
    }

    /// Sends `e` to the caller as the end of the consumer.
    fn fatal(&self, e: Error) -> Detour {
        shared_fenced(&self.shared, Verdict::of(&e) == Verdict::Fenced);
        let _ = self.tx.send(Event::Fatal(e));
        Detour::End
    }

    /// Waits the backoff after a failure (logged there); `End` on shutdown.
    async fn back_off(&mut self, e: &Error) -> Result<(), Detour> {
        self.backoff
            .wait(e, &self.shutdown)
            .await
            .map_err(|_| Detour::End)
    }

    /// A moment before joining again after the group moved on: the rebalance is already
    /// under way, and a backoff would only make it longer.
    async fn pause_briefly(&self) -> Result<(), Detour> {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(50)) => Ok(()),
            () = self.shutdown.cancelled() => Err(Detour::End),
        }
    }

    /// Revokes every partition being fetched, and forgets the membership.
    /// `lost`: the membership is gone, so the partitions are someone else's already.
    async fn revoke_all(&mut self, announce: bool, lost: bool) {
        let all = self.fetchers.partitions();
        let (shared, tx, shutdown) = (&self.shared, &self.tx, &self.shutdown);
        let how = Revoke { announce, lost };
        revoke(shared, &mut self.fetchers, tx, shutdown, &all, how).await;
        *lock(&self.shared.membership) = None;
    }

    async fn revoke(&mut self, partitions: &[PartitionKey], announce: bool) {
        let (shared, tx, shutdown) = (&self.shared, &self.tx, &self.shutdown);
        let how = Revoke {
            announce,
            lost: false,
        };
        revoke(shared, &mut self.fetchers, tx, shutdown, partitions, how).await;
    }
}

/// LeaveGroup, best effort and bounded in time: the member is leaving anyway.
async fn leave_quietly(group: &GroupClient, member_id: &str) {
    if member_id.is_empty() {
        return;
    }
    match tokio::time::timeout(Duration::from_secs(5), group.leave(member_id)).await {
        Ok(Ok(())) => debug!(member_id, "left the group"),
        Ok(Err(e)) => debug!(error = %e, "LeaveGroup failed"),
        Err(_) => debug!("LeaveGroup timed out"),
    }
}

/// The topics this member subscribes to and their partition counts.
pub(super) async fn subscription(shared: &Shared) -> crate::Result<BTreeMap<String, i32>> {
    let counts = leader::partition_counts(shared).await?;
    let mut out = BTreeMap::new();
    for t in &shared.config.topics {
        // A topic missing from metadata is still subscribed to, with no partitions yet.
        out.insert(t.clone(), counts.get(t).copied().unwrap_or(0));
    }
    if let Some(re) = &shared.topic_regex {
        for (t, c) in &counts {
            if re.is_match(t) {
                out.insert(t.clone(), *c);
            }
        }
    }
    Ok(out)
}
