//! Revoking partitions, the same for both group protocols: stop fetching them, tell the
//! caller (saying whether the membership was lost), wait for it or the deadline, forget
//! them.

use std::time::Duration;

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

/// An ordinary revocation: announced, the membership kept.
pub(super) const KEPT: Revoke = Revoke {
    announce: true,
    lost: false,
};

/// Whether the member was fenced (cleared by the next join).
pub(super) fn shared_fenced(shared: &Shared, fenced: bool) {
    shared
        .fenced
        .store(fenced, std::sync::atomic::Ordering::Relaxed);
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
