//! When a run started with `until_caught_up` may stop: every partition it holds is written
//! up to the end offset that partition had when it was assigned.
//!
//! An end offset nobody knows never counts as "nothing to read": a partition without a
//! target, or with a target of 0 that no fetch has confirmed, keeps the run going. A run
//! that holds no partition (between a revocation and the next assignment) is not caught up
//! either.

/// What a run knows of one partition it holds.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Progress {
    /// The end offset (ListOffsets) when the partition was assigned; `None` when unknown.
    pub(super) target: Option<i64>,
    /// The highest committed offset, by this run or the group.
    pub(super) committed: Option<i64>,
    /// The high watermark the last fetch answered; `None` before any fetch.
    pub(super) fetched_end: Option<i64>,
}

impl Progress {
    fn caught_up(&self) -> bool {
        let Some(target) = self.target else {
            return false;
        };
        if self.committed.is_some_and(|c| c >= target) {
            return true;
        }
        // Nothing committed reaches it: only an empty partition is done, and only when a
        // fetch saw its end at 0 too (ListOffsets alone may answer 0 for an end it lacks).
        target == 0 && self.fetched_end == Some(0)
    }
}

/// Whether the run holds at least one partition and every one is caught up.
pub(super) fn all_caught_up(held: impl IntoIterator<Item = Progress>) -> bool {
    let mut any = false;
    for p in held {
        if !p.caught_up() {
            return false;
        }
        any = true;
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(target: Option<i64>, committed: Option<i64>, fetched_end: Option<i64>) -> Progress {
        Progress {
            target,
            committed,
            fetched_end,
        }
    }

    #[test]
    fn a_target_of_zero_from_list_offsets_alone_is_not_caught_up() {
        // ListOffsets answered 0 while the fetch says 50,000 records wait.
        assert!(!all_caught_up([progress(Some(0), None, Some(50_000))]));
        // No fetch answer yet: the end is unknown, so not caught up either.
        assert!(!all_caught_up([progress(Some(0), None, None)]));
    }

    #[test]
    fn an_empty_partition_confirmed_by_a_fetch_is_caught_up() {
        assert!(all_caught_up([progress(Some(0), None, Some(0))]));
    }

    #[test]
    fn a_partition_without_a_target_is_not_caught_up() {
        assert!(!all_caught_up([progress(None, Some(0), Some(0))]));
        assert!(!all_caught_up([progress(None, Some(500), Some(500))]));
    }

    #[test]
    fn holding_no_partition_is_not_caught_up() {
        assert!(!all_caught_up([]));
    }

    #[test]
    fn commits_up_to_the_target_catch_up() {
        let done = progress(Some(50), Some(50), Some(50));
        assert!(all_caught_up([
            progress(Some(100), Some(100), Some(120)),
            done
        ]));
        assert!(!all_caught_up([
            progress(Some(100), Some(99), Some(120)),
            done
        ]));
    }
}
