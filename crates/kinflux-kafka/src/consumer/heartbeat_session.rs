//! The group membership of the `consumer` protocol (KIP-848): one request,
//! ConsumerGroupHeartbeat, joins (epoch 0), keeps the membership, carries the broker's
//! target assignment and acknowledges it, and leaves (epoch -1, or -2 for a static member).
//!
//! The broker assigns incrementally: it first takes partitions away (the member revokes
//! them through the same [`Message::Revoked`](super::Message::Revoked) path as the classic
//! cooperative protocol: the caller flushes and commits, then the partitions are released
//! by the next heartbeat), and gives them to their new owner once released.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
    time::Duration,
};

use kinflux_backoff::Backoff;
use tokio::{sync::mpsc, time::Instant};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};
use uuid::Uuid;

use super::{
    Event, RETRY, Shared,
    fetcher::Fetchers,
    heartbeat_rpc::{self, Beat},
    lock,
    revoke::{KEPT, Revoke, revoke, shared_fenced},
    session::Membership,
    verdict::Verdict,
};
use crate::{
    error::Error,
    group::{self, GroupClient},
    record::PartitionKey,
};

/// The membership of one consumer in a `consumer` group: the state of its background task.
pub(super) struct HeartbeatSession {
    shared: Arc<Shared>,
    tx: mpsc::UnboundedSender<Event>,
    shutdown: CancellationToken,
    /// Made once by the client (KIP-1082) and kept across rejoins.
    member_id: String,
    /// 0 until the coordinator accepts the member, then the epoch it gives.
    epoch: i32,
    /// The coordinator's interval between heartbeats.
    interval: Duration,
    fetchers: Fetchers,
    group: Option<GroupClient>,
    /// Topic ids of the assignments, to names.
    names: HashMap<Uuid, String>,
    /// The latest target assignment not yet reconciled.
    pending: Option<BTreeMap<Uuid, Vec<i32>>>,
    backoff: Backoff,
}

/// Where the loop goes after a failed heartbeat.
enum Next {
    /// Heartbeat again after the interval.
    Wait,
    /// Heartbeat again after the backoff for this error.
    Retry(Error),
    /// Heartbeat again at once.
    Now,
    /// Stop (shutdown or a fatal error already sent).
    End,
}

impl HeartbeatSession {
    pub(super) fn new(
        shared: Arc<Shared>,
        tx: mpsc::UnboundedSender<Event>,
        shutdown: CancellationToken,
    ) -> Self {
        let what = format!("heartbeating in group {}", shared.config.group_id);
        HeartbeatSession {
            shared,
            tx,
            shutdown,
            member_id: heartbeat_rpc::new_member_id(),
            epoch: 0,
            interval: Duration::from_secs(5),
            fetchers: Fetchers::default(),
            group: None,
            names: HashMap::new(),
            pending: None,
            backoff: Backoff::new(RETRY, what),
        }
    }

    /// Runs until shutdown or a fatal error, then leaves the group and stops every fetcher.
    pub(super) async fn run(mut self) {
        let mut last_ok = Instant::now();
        loop {
            if self.shutdown.is_cancelled() {
                break;
            }
            // The answer vouches for the membership as of when the request left.
            let sent = Instant::now();
            let result = match self.connect().await {
                Ok(group) => {
                    let owned = heartbeat_rpc::by_id(&self.fetchers.partitions(), &self.names);
                    let beat = Beat::new(&self.shared.config, &self.member_id, self.epoch, &owned);
                    tokio::select! {
                        r = heartbeat_rpc::heartbeat(&group.conn, &beat) => r.map(|b| (group, b)),
                        () = self.shutdown.cancelled() => break,
                    }
                }
                Err(e) => Err(e),
            };
            let next = match result {
                Ok((group, beaten)) => {
                    last_ok = Instant::now();
                    self.backoff.succeeded();
                    if let Some(id) = beaten.member_id {
                        self.member_id = id;
                    }
                    if beaten.member_epoch != self.epoch {
                        debug!(epoch = beaten.member_epoch, "member epoch");
                    }
                    self.epoch = beaten.member_epoch;
                    if !beaten.heartbeat_interval.is_zero() {
                        self.interval = beaten.heartbeat_interval;
                    }
                    *lock(&self.shared.membership) = Some(Membership {
                        group: group.clone(),
                        generation_id: self.epoch,
                        member_id: self.member_id.clone(),
                        confirmed_at: sent,
                    });
                    shared_fenced(&self.shared, false);
                    if let Some(a) = beaten.assignment {
                        self.pending = Some(a);
                    }
                    match self.reconcile(&group).await {
                        // Acknowledge a changed assignment at once.
                        Ok(true) => Next::Now,
                        Ok(false) => Next::Wait,
                        Err(e) => self.failed(e, last_ok).await,
                    }
                }
                Err(e) => self.failed(e, last_ok).await,
            };
            let wait = match next {
                Next::End => break,
                Next::Now => continue,
                Next::Retry(e) => {
                    if self.backoff.wait(&e, &self.shutdown).await.is_err() {
                        break;
                    }
                    continue;
                }
                Next::Wait => self.interval,
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.shutdown.cancelled() => break,
            }
        }
        self.leave().await;
    }

    /// The coordinator connection: the one in use while it is open, else a new one.
    async fn connect(&mut self) -> crate::Result<GroupClient> {
        if let Some(g) = self.group.as_ref().filter(|g| !g.conn.is_closed()) {
            return Ok(g.clone());
        }
        let cfg = &self.shared.config;
        let conn = group::connect_coordinator(&self.shared.opts, &cfg.group_id).await?;
        if !heartbeat_rpc::supported(&conn) {
            return Err(heartbeat_rpc::unsupported());
        }
        let g = GroupClient {
            conn,
            group_id: cfg.group_id.clone(),
            instance_id: cfg.group_instance_id.clone(),
        };
        self.group = Some(g.clone());
        Ok(g)
    }

    /// After a failed heartbeat (or coordinator lookup).
    async fn failed(&mut self, e: Error, last_ok: Instant) -> Next {
        let cfg = &self.shared.config;
        match Verdict::of(&e) {
            Verdict::MemberLost { .. } => {
                info!(group = cfg.group_id, error = %e, "group membership lost; rejoining");
                self.lose().await;
                Next::Now
            }
            Verdict::Fenced | Verdict::Fatal | Verdict::Refused => {
                shared_fenced(&self.shared, Verdict::of(&e) == Verdict::Fenced);
                let _ = self.tx.send(Event::Fatal(e));
                Next::End
            }
            Verdict::CoordinatorMoved | Verdict::Disconnected | Verdict::Transient => {
                if matches!(
                    Verdict::of(&e),
                    Verdict::CoordinatorMoved | Verdict::Disconnected
                ) {
                    self.group = None;
                }
                // The coordinator has dropped a member it did not hear from for the
                // session timeout: its partitions are someone else's by now.
                if self.epoch > 0 && last_ok.elapsed() > cfg.session_timeout {
                    info!(group = cfg.group_id, error = %e, "no heartbeat within the session timeout; rejoining");
                    self.lose().await;
                }
                Next::Retry(e)
            }
            // Not an answer of ConsumerGroupHeartbeat; back off rather than spin.
            Verdict::Rebalancing => Next::Retry(e),
        }
    }

    /// The membership is gone (fenced, unknown, timed out): everything owned is lost, and
    /// the member joins again with epoch 0 under the same id.
    async fn lose(&mut self) {
        let all = self.fetchers.partitions();
        let (shared, tx, shutdown) = (&self.shared, &self.tx, &self.shutdown);
        let how = Revoke {
            announce: true,
            lost: true,
        };
        revoke(shared, &mut self.fetchers, tx, shutdown, &all, how).await;
        *lock(&self.shared.membership) = None;
        self.epoch = 0;
        self.pending = None;
    }

    /// Moves the owned partitions toward the pending target: revokes what left it, then
    /// reads the committed offsets of what was added and starts fetching it. `Ok(true)`
    /// when something changed (the next heartbeat acknowledges it).
    async fn reconcile(&mut self, group: &GroupClient) -> crate::Result<bool> {
        let Some(target) = self.pending.clone() else {
            return Ok(false);
        };
        let wanted = match heartbeat_rpc::resolve(&target, &self.names) {
            Some(w) => w,
            None => {
                self.names = heartbeat_rpc::topic_names(&group.conn).await?;
                match heartbeat_rpc::resolve(&target, &self.names) {
                    Some(w) => w,
                    // Metadata lags behind a topic just created; the next heartbeat tries again.
                    None => return Ok(false),
                }
            }
        };
        let owned: BTreeSet<PartitionKey> = self.fetchers.partitions().into_iter().collect();
        let revoked: Vec<PartitionKey> = owned.difference(&wanted).cloned().collect();
        let added: Vec<PartitionKey> = wanted.difference(&owned).cloned().collect();
        if !revoked.is_empty() {
            // Heartbeats go on while the caller flushes and commits: the broker would
            // fence a member silent for its session timeout, however long the revocation
            // may take (up to the rebalance timeout).
            let owned_now = heartbeat_rpc::by_id(&self.fetchers.partitions(), &self.names);
            let (mut epoch, mut newer, mut lost) = (self.epoch, None, None);
            {
                let (shared, tx, shutdown) = (&self.shared, &self.tx, &self.shutdown);
                let revoking = revoke(shared, &mut self.fetchers, tx, shutdown, &revoked, KEPT);
                let alive = keep_alive(
                    shared,
                    group,
                    &self.member_id,
                    &mut epoch,
                    &owned_now,
                    self.interval,
                    &mut newer,
                );
                tokio::pin!(revoking, alive);
                loop {
                    tokio::select! {
                        () = &mut revoking => break,
                        e = &mut alive, if lost.is_none() => lost = Some(e),
                    }
                }
            }
            self.epoch = epoch;
            if let Some(e) = lost {
                return Err(e);
            }
            if let Some(a) = newer {
                // The target moved on meanwhile: release what was revoked first (the
                // next heartbeat), then reconcile toward the newer target.
                self.pending = Some(a);
                return Ok(true);
            }
        }
        if !added.is_empty() {
            let committed = match group.fetch_offsets(&added).await {
                Ok(c) => c,
                Err(e) => {
                    // What was revoked is released by the next heartbeat all the same.
                    return if revoked.is_empty() { Err(e) } else { Ok(true) };
                }
            };
            // Announce first, so the event precedes every batch of the new partitions.
            let _ = self.tx.send(Event::Assigned(added.clone()));
            let (shared, tx, shutdown) = (&self.shared, &self.tx, &self.shutdown);
            self.fetchers
                .start(shared, &added, &committed, tx, shutdown);
        }
        self.pending = None;
        if !revoked.is_empty() || !added.is_empty() {
            info!(
                group = self.shared.config.group_id,
                member_id = self.member_id.as_str(),
                epoch = self.epoch,
                revoked = revoked.len(),
                added = added.len(),
                partitions = wanted.len(),
                "assignment changed"
            );
        }
        Ok(!revoked.is_empty() || !added.is_empty())
    }

    /// Leaves the group (epoch -1; -2 keeps a static member's partitions for its return
    /// within the session timeout), best effort and bounded in time, and stops fetching.
    async fn leave(&mut self) {
        let all = self.fetchers.partitions();
        self.fetchers.stop(&all).await;
        lock(&self.shared.assigned).clear();
        *lock(&self.shared.membership) = None;
        let Some(group) = self.group.take().filter(|g| !g.conn.is_closed()) else {
            return;
        };
        if self.epoch <= 0 {
            return;
        }
        let cfg = &self.shared.config;
        let epoch = if cfg.group_instance_id.is_some() {
            -2
        } else {
            -1
        };
        let beat = Beat {
            group_id: &cfg.group_id,
            member_id: &self.member_id,
            member_epoch: epoch,
            instance_id: cfg.group_instance_id.as_deref(),
            rebalance_timeout: cfg.rebalance_timeout,
            topics: &cfg.topics,
            topic_regex: cfg.topic_regex.as_deref(),
            assignor: None,
            owned: &BTreeMap::new(),
        };
        let leave = heartbeat_rpc::heartbeat(&group.conn, &beat);
        match tokio::time::timeout(Duration::from_secs(5), leave).await {
            Ok(Ok(_)) => debug!(member_id = self.member_id, "left the group"),
            Ok(Err(e)) => debug!(error = %e, "leaving the group failed"),
            Err(_) => debug!("leaving the group timed out"),
        }
    }
}

/// Heartbeats at `interval` with the partitions owned before a revocation, until the
/// member is lost (the error is returned). The newest assignment is kept in `newer`.
async fn keep_alive(
    shared: &Shared,
    group: &GroupClient,
    member_id: &str,
    epoch: &mut i32,
    owned: &BTreeMap<Uuid, Vec<i32>>,
    interval: Duration,
    newer: &mut Option<BTreeMap<Uuid, Vec<i32>>>,
) -> Error {
    loop {
        tokio::time::sleep(interval).await;
        let beat = Beat::new(&shared.config, member_id, *epoch, owned);
        match heartbeat_rpc::heartbeat(&group.conn, &beat).await {
            Ok(b) => {
                *epoch = b.member_epoch;
                if let Some(a) = b.assignment {
                    *newer = Some(a);
                }
                if let Some(m) = lock(&shared.membership).as_mut() {
                    m.generation_id = *epoch;
                }
            }
            Err(e) => match Verdict::of(&e) {
                Verdict::MemberLost { .. }
                | Verdict::Fenced
                | Verdict::Fatal
                | Verdict::Refused => return e,
                // Retried at the next interval; the main loop reconnects afterwards.
                _ => debug!(error = %e, "heartbeat during a revocation failed"),
            },
        }
    }
}
