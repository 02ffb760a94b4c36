//! A flushed batch: the body to write and the records it answers for.

use std::ops::Range;

use std::sync::Arc;

use bytes::Bytes;
use kinflux_series::Precision;

use crate::record::Source;
use crate::{PartitionCoverage, RecordId};

/// A flushed batch: line protocol ready to write, one line per merged point, and for every
/// line the records it came from, so that a line the database refuses can be sent to the
/// dead-letter topic on its own.
#[derive(Debug, Clone)]
pub struct Batch {
    pub(crate) body: Bytes,
    pub(crate) line_starts: Vec<u32>,
    /// `record_refs[line_records[i]..line_records[i + 1]]` index line `i`'s records.
    pub(crate) line_records: Vec<u32>,
    /// Indices into `records`, grouped by line.
    pub(crate) record_refs: Vec<u32>,
    /// The records the batch's points came from, each once per run of points from it.
    pub(crate) records: Vec<Source>,
    /// The topics of `records`, each once.
    pub(crate) topics: Vec<Arc<str>>,
    pub(crate) precision: Precision,
    pub(crate) points_in: u64,
    pub(crate) merged: u64,
}

impl Batch {
    /// The line-protocol body: `\n`-terminated lines.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The precision the timestamps in the body are written in.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// How many lines the body holds.
    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }

    /// The byte range of line `index` in the body, newline included.
    pub fn line_range(&self, index: usize) -> Option<Range<usize>> {
        let start = *self.line_starts.get(index)? as usize;
        let end = self
            .line_starts
            .get(index + 1)
            .map_or(self.body.len(), |&e| e as usize);
        Some(start..end)
    }

    /// The byte offset where each line starts.
    pub fn line_starts(&self) -> &[u32] {
        &self.line_starts
    }

    /// The records line `index` was built from (several when points were merged).
    pub fn records_of_line(
        &self,
        index: usize,
    ) -> impl ExactSizeIterator<Item = RecordId> + Clone + '_ {
        let refs = match (
            self.line_records.get(index),
            self.line_records.get(index + 1),
        ) {
            (Some(&a), Some(&b)) => &self.record_refs[a as usize..b as usize],
            _ => &[],
        };
        refs.iter()
            .map(|&r| self.record_id(self.records[r as usize]))
    }

    fn record_id(&self, source: Source) -> RecordId {
        RecordId {
            topic: Arc::clone(&self.topics[source.topic as usize]),
            partition: source.partition,
            offset: source.offset,
        }
    }

    /// The offsets, per partition, that have points in this batch.
    ///
    /// Worked out on each call (it sorts the batch's record ids), not at the flush: the
    /// pipeline does its offset bookkeeping as records go in and never needs it.
    pub fn coverage(&self) -> Vec<PartitionCoverage> {
        crate::record::coverage_of(self.records.iter().map(|&s| self.record_id(s)))
    }

    /// Points added to make this batch, before merging.
    pub fn points_in(&self) -> u64 {
        self.points_in
    }

    /// Points that were merged into an earlier line with the same series key and
    /// timestamp: `points_in() - merged() == line_count()`.
    pub fn merged(&self) -> u64 {
        self.merged
    }
}
