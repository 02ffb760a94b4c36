//! Where a partition starts when this pipeline gets it (`kafka.start_at`).
//!
//! `committed`, `earliest` and `latest` are the consumer's own rule: the group's committed
//! offset, and where there is none, the earliest or latest offset (`earliest` and `latest`
//! set `auto_offset_reset`). A restart, or a partition moving to another process, goes on
//! from the committed offset.
//!
//! An explicit offset or time is a backfill, applied once per group and partition: the
//! partition is moved there and the offset committed at once with a mark naming the
//! backfill (Kafka keeps commit metadata with the offset). Every later commit carries the
//! same mark, so a restart, or the next owner of the partition, finds it and goes on from
//! the committed offset instead of starting over. A different offset or time is a new
//! backfill and is applied once again.

use kinflux_kafka::{Consumer, PartitionKey};
use tracing::{info, warn};

use crate::config::StartAt;

/// A backfill from an explicit offset or time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Backfill {
    start_at: StartAt,
    /// The commit metadata that says this backfill was applied.
    mark: String,
}

impl Backfill {
    /// The backfill `start_at` asks for; `None` for `committed`, `earliest` and `latest`.
    pub(super) fn new(start_at: StartAt) -> Option<Self> {
        let mark = match start_at {
            StartAt::Offset(o) => format!("kinflux.start_at=offset:{o}"),
            StartAt::Time(ms) => format!("kinflux.start_at=time_ms:{ms}"),
            _ => return None,
        };
        Some(Backfill { start_at, mark })
    }

    /// The metadata every commit of this pipeline carries.
    pub(super) fn mark(&self) -> &str {
        &self.mark
    }

    /// Moves `tp` to where the backfill starts and commits that offset with the mark,
    /// unless the group's committed offset already carries the mark. Returns the offset
    /// moved to.
    pub(super) async fn apply(
        &self,
        consumer: &Consumer,
        tp: &PartitionKey,
    ) -> Result<Option<i64>, kinflux_kafka::Error> {
        let committed = consumer
            .committed_with_metadata(std::slice::from_ref(tp))
            .await?
            .remove(tp)
            .flatten();
        if let Some(c) = committed.filter(|c| c.metadata == self.mark) {
            info!(partition = %tp, offset = c.offset, start_at = ?self.start_at, "backfill already applied by this group; going on from the committed offset");
            return Ok(None);
        }
        let offset = match self.start_at {
            StartAt::Offset(o) => o,
            StartAt::Time(ms) => match consumer.offset_for_timestamp(tp, ms).await? {
                // No record at or after that time (the broker answers -1): the end.
                o if o < 0 => consumer.watermarks(tp).await?.1,
                o => o,
            },
            _ => return Ok(None),
        };
        consumer.seek(tp, offset)?;
        info!(partition = %tp, offset, start_at = ?self.start_at, "backfill: partition moved");
        if let Err(e) = consumer
            .commit_with_metadata([(tp.clone(), offset)], &self.mark)
            .await
        {
            // The next commit of this partition carries the mark; until then a restart
            // applies the backfill again, which re-reads nothing that was committed.
            warn!(partition = %tp, error = %e, "cannot commit the backfill's start yet");
        }
        Ok(Some(offset))
    }
}
