//! Revoking partitions, the same for both group protocols: stop fetching them, tell the
//! caller (saying whether the membership was lost), wait for it or the deadline, forget
//! them.

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::{Event, Revocation, Shared, fetcher::Fetchers, lock};
use crate::record::PartitionKey;

/// How a revocation goes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Revoke {
    /// Tell the caller (not on shutdown or after a fatal error).
    pub(super) announce: bool,
    /// The membership is lost: the caller must not write or commit these partitions.
    pub(super) lost: bool,
}

/// Tells whether the group membership of a [`Consumer`](super::Consumer) is lost, or most
/// likely so, as far as the member can tell without asking: the coordinator fenced it, or
/// no heartbeat succeeded for the session timeout (the process was stopped, the host
/// stalled, the network was down), so the coordinator has handed its partitions to others.
/// Check it before writing or committing what was read: the [`Message::Revoked`] that
/// says so (with [`Revocation::lost`]) comes only after the next heartbeat. Back to
/// `false` once a heartbeat succeeds or the member joins again.
///
/// [`Message::Revoked`]: super::Message::Revoked
#[derive(Debug, Clone)]
pub struct MembershipProbe {
    shared: Arc<Shared>,
}

impl MembershipProbe {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        MembershipProbe { shared }
    }

    /// Whether the membership is lost, or most likely so.
    pub fn lost(&self) -> bool {
        if self.shared.fenced.load(Ordering::Relaxed) {
            return true;
        }
        lock(&self.shared.membership)
            .as_ref()
            .is_some_and(|m| m.confirmed_at.elapsed() > self.shared.config.session_timeout)
    }
}

/// An ordinary revocation: announced, the membership kept.
pub(super) const KEPT: Revoke = Revoke {
    announce: true,
    lost: false,
};

/// Whether the member was fenced (cleared by the next join).
pub(super) fn shared_fenced(shared: &Shared, fenced: bool) {
    shared.fenced.store(fenced, Ordering::Relaxed);
}

/// Stops fetching `partitions`, tells the caller with a [`Message::Revoked`] (when
/// `how.announce`), waits for the caller or the deadline, then forgets the partitions.
/// Both group protocols revoke through here.
///
/// [`Message::Revoked`]: super::Message::Revoked
pub(super) async fn revoke(
    shared: &Shared,
    fetchers: &mut Fetchers,
    tx: &mpsc::UnboundedSender<Event>,
    shutdown: &CancellationToken,
    partitions: &[PartitionKey],
    how: Revoke,
) {
    fetchers.stop(partitions).await;
    if how.announce && !partitions.is_empty() {
        let (ack, acked) = oneshot::channel();
        let deadline = Instant::now() + revoke_window(shared.config.rebalance_timeout);
        let _ = tx.send(Event::Revoked(Revocation {
            partitions: partitions.to_vec(),
            deadline,
            lost: how.lost,
            _ack: ack,
        }));
        tokio::select! {
            _ = acked => {}
            () = tokio::time::sleep_until(deadline) => warn!("revocation not acknowledged before its deadline"),
            () = shutdown.cancelled() => {}
        }
    }
    // Batches of these partitions still queued are dropped by recv() from now on.
    let mut assigned = lock(&shared.assigned);
    for tp in partitions {
        assigned.remove(tp);
    }
}

/// How long the caller may take over a revocation: 90 % of the rebalance timeout, at
/// least half a second less than all of it.
fn revoke_window(rebalance_timeout: Duration) -> Duration {
    rebalance_timeout.saturating_sub((rebalance_timeout / 10).max(Duration::from_millis(500)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_revocation_window_leaves_room_before_the_rebalance_timeout() {
        assert_eq!(
            revoke_window(Duration::from_secs(300)),
            Duration::from_secs(270)
        );
        assert_eq!(
            revoke_window(Duration::from_secs(2)),
            Duration::from_millis(1500)
        );
        assert_eq!(revoke_window(Duration::from_millis(300)), Duration::ZERO);
    }
}
