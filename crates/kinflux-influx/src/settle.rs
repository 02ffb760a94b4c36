//! Settling one batch: the parts it is sent in, how their line indexes map back, and
//! what they came to.

use std::collections::{BTreeMap, VecDeque};

use crate::LineBatch;
use crate::outcome::{PartialWrite, RejectedLine, UnattributedDrop, WriteOutcome};
use crate::stats::WriterStats;

/// How many times the rest of a body is sent again to learn about errors InfluxDB hid.
/// Each round removes at least one line, so this only bounds the cost; past it the lines
/// not confirmed are reported as refused rather than assumed stored.
pub(crate) const MAX_RESEND_ROUNDS: u8 = 64;
/// A part of the caller's batch, and how its line indexes map back.
pub(crate) struct Chunk {
    pub(crate) batch: LineBatch,
    pub(crate) origin: Origin,
    pub(crate) resend_rounds: u8,
}

pub(crate) enum Origin {
    /// Line `i` of the chunk is line `offset + i` of the caller's batch.
    Offset(usize),
    /// Line `i` of the chunk is line `indexes[i]` of the caller's batch.
    Listed(Vec<usize>),
}

impl Chunk {
    pub(crate) fn original(&self, i: usize) -> usize {
        match &self.origin {
            Origin::Offset(offset) => offset + i,
            Origin::Listed(indexes) => indexes.get(i).copied().unwrap_or(usize::MAX),
        }
    }

    pub(crate) fn halves(&self) -> (Chunk, Chunk) {
        let mid = self.batch.len() / 2;
        let part = |from: usize, to: usize| Chunk {
            batch: self.batch.slice(from, to),
            origin: match &self.origin {
                Origin::Offset(offset) => Origin::Offset(offset + from),
                Origin::Listed(indexes) => Origin::Listed(indexes[from..to].to_vec()),
            },
            resend_rounds: self.resend_rounds,
        };
        (part(0, mid), part(mid, self.batch.len()))
    }

    pub(crate) fn without(&self, rejected: &[RejectedLine]) -> Chunk {
        let refused = |i: usize| rejected.iter().any(|r| r.index == i);
        Chunk {
            batch: self.batch.select(|i| !refused(i)),
            origin: Origin::Listed(
                (0..self.batch.len())
                    .filter(|i| !refused(*i))
                    .map(|i| self.original(i))
                    .collect(),
            ),
            resend_rounds: self.resend_rounds + 1,
        }
    }
}

/// What the parts of one batch came to, in terms of the caller's line indexes.
#[derive(Default)]
pub(crate) struct Settlement {
    rejected: BTreeMap<usize, String>,
    unattributed: Option<UnattributedDrop>,
}

impl Settlement {
    /// Records refused lines; returns what must be sent again, if anything.
    pub(crate) fn partial(
        &mut self,
        chunk: &Chunk,
        refused: &[RejectedLine],
        dropped: Option<UnattributedDrop>,
        resend_rest: bool,
    ) -> Option<Chunk> {
        for line in refused {
            self.rejected
                .insert(chunk.original(line.index), line.reason.clone());
        }
        // Resending only makes progress when lines were removed.
        if resend_rest && !refused.is_empty() && chunk.batch.len() > refused.len() {
            let rest = chunk.without(refused);
            if chunk.resend_rounds < MAX_RESEND_ROUNDS {
                return Some(rest);
            }
            for i in 0..rest.batch.len() {
                self.rejected.insert(
                    rest.original(i),
                    "not confirmed: InfluxDB reported too many distinct errors in this batch"
                        .to_owned(),
                );
            }
        } else if let Some(dropped) = dropped {
            merge_drop(&mut self.unattributed, dropped);
        }
        None
    }

    /// A 413: the halves to send instead, or the single line refused.
    pub(crate) fn too_large(&mut self, chunk: &Chunk, message: &str) -> Vec<Chunk> {
        if chunk.batch.len() > 1 {
            let (first, second) = chunk.halves();
            return vec![first, second];
        }
        self.rejected.insert(
            chunk.original(0),
            format!("line larger than the server accepts: {message}"),
        );
        Vec::new()
    }

    pub(crate) fn finish(self, lines: usize, stats: &WriterStats) -> WriteOutcome {
        let refused = self.rejected.len() + self.unattributed.as_ref().map_or(0, |d| d.count);
        stats.lines(lines.saturating_sub(refused), refused);
        if self.rejected.is_empty() && self.unattributed.is_none() {
            return WriteOutcome::Written { lines };
        }
        WriteOutcome::Partial(PartialWrite {
            lines,
            rejected: self
                .rejected
                .into_iter()
                .map(|(index, reason)| RejectedLine { index, reason })
                .collect(),
            unattributed: self.unattributed,
        })
    }
}

/// Puts parts back at the front of the queue, in their order.
pub(crate) fn push_front_all(queue: &mut VecDeque<Chunk>, parts: impl IntoIterator<Item = Chunk>) {
    let parts: Vec<Chunk> = parts.into_iter().collect();
    for part in parts.into_iter().rev() {
        queue.push_front(part);
    }
}

fn merge_drop(total: &mut Option<UnattributedDrop>, drop: UnattributedDrop) {
    match total {
        Some(t) => {
            t.count += drop.count;
            if !t.reason.contains(&drop.reason) {
                t.reason.push_str("; ");
                t.reason.push_str(&drop.reason);
            }
        }
        None => *total = Some(drop),
    }
}
