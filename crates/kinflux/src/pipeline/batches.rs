//! The open batches of a pipeline: one per target, and per database, bucket or retention
//! policy that points are routed to on it. Each blocks, for every partition with points
//! in it, the first offset of those points, until the write that carries it settles.

use std::collections::HashMap;
use std::time::Instant;

use kinflux_batch::{Batch, Batcher, FlushPolicy};
use kinflux_kafka::PartitionKey;
use kinflux_series::Precision;

use super::route::{Route, Routing};
use super::settlement::Outgoing;
use crate::progress::Progress;

/// One open batch.
#[derive(Debug)]
pub(super) struct Open {
    pub(super) target: usize,
    pub(super) route: Route,
    pub(super) batcher: Batcher,
    /// Partitions whose points are in the batch, blocked at their first offset.
    blocks: Blocks,
}

/// The partitions whose points are in one batch, each blocked at its first offset.
#[derive(Debug, Default)]
struct Blocks {
    first_offsets: HashMap<PartitionKey, i64, foldhash::fast::RandomState>,
    /// The partition blocked or found last. A record's partition is mostly the one of the
    /// record before (a fetch answers per partition): found here, it costs no hashing of
    /// its topic (1.8% of the bridge's instructions on JSON).
    last: Option<PartitionKey>,
}

impl Blocks {
    /// Blocks `partition` at `offset` unless it is blocked already; true when it was not
    /// (the caller then blocks it in the progress too).
    fn block(&mut self, partition: &PartitionKey, offset: i64) -> bool {
        if self.last.as_ref() == Some(partition) {
            return false;
        }
        self.last = Some(partition.clone());
        if self.first_offsets.contains_key(partition) {
            return false;
        }
        self.first_offsets.insert(partition.clone(), offset);
        true
    }

    /// Every blocked partition and its first offset, leaving none.
    fn drain(&mut self) -> impl Iterator<Item = (PartitionKey, i64)> + '_ {
        self.last = None;
        self.first_offsets.drain()
    }
}

/// Every open batch, found by (target, route).
#[derive(Debug)]
pub(super) struct OpenBatches {
    policy: FlushPolicy,
    routings: Vec<Routing>,
    opens: Vec<Open>,
    index: HashMap<(usize, Route), usize>,
    /// Per target, its one open batch when it does not route.
    fixed: Vec<Option<usize>>,
}

impl OpenBatches {
    /// The batches of targets routed as `routings` say (one fixed target when empty).
    pub(super) fn new(policy: FlushPolicy, mut routings: Vec<Routing>) -> Self {
        if routings.is_empty() {
            routings.push(Routing::default());
        }
        let mut batches = OpenBatches {
            policy,
            fixed: vec![None; routings.len()],
            routings,
            opens: Vec::new(),
            index: HashMap::new(),
        };
        batches.open_fixed();
        batches
    }

    fn open_fixed(&mut self) {
        for t in 0..self.routings.len() {
            self.fixed[t] = None;
            if self.routings[t].is_fixed() {
                self.fixed[t] = Some(self.open_for(t, Route::default()));
            }
        }
    }

    pub(super) fn policy(&self) -> FlushPolicy {
        self.policy
    }

    pub(super) fn routings(&self) -> &[Routing] {
        &self.routings
    }

    /// The open batch of a target that does not route.
    pub(super) fn fixed(&self, target: usize) -> Option<usize> {
        self.fixed[target]
    }

    /// The open batch of `route` on `target`, opened when there is none.
    pub(super) fn open_for(&mut self, target: usize, route: Route) -> usize {
        if let Some(&i) = self.index.get(&(target, route.clone())) {
            return i;
        }
        let i = self.opens.len();
        self.opens.push(Open {
            target,
            route: route.clone(),
            batcher: Batcher::new(self.policy, Precision::Nanoseconds),
            blocks: Blocks::default(),
        });
        self.index.insert((target, route), i);
        i
    }

    /// Blocks `offset` of `partition` in batch `i` unless the partition blocks an
    /// earlier offset there already. `blocked` lists the batches the current record
    /// blocks in, so that its later points cost no hash lookup.
    pub(super) fn block(
        &mut self,
        i: usize,
        partition: &PartitionKey,
        offset: i64,
        progress: &mut Progress,
        blocked: &mut Vec<usize>,
    ) {
        if blocked.contains(&i) {
            return;
        }
        if self.opens[i].blocks.block(partition, offset) {
            progress.block(partition, offset);
        }
        blocked.push(i);
    }

    pub(super) fn batcher(&mut self, i: usize) -> &mut Batcher {
        &mut self.opens[i].batcher
    }

    /// Batch `i` filled up as `batch`: it leaves with its blocks, and the current record
    /// blocks there again with its next point.
    pub(super) fn filled(&mut self, i: usize, batch: Batch, blocked: &mut Vec<usize>) -> Outgoing {
        blocked.retain(|&b| b != i);
        let open = &mut self.opens[i];
        Outgoing {
            batch,
            blocks: open.blocks.drain().collect(),
            target: open.target,
            route: open.route.clone(),
        }
    }

    /// Closes every batch. The blocks of empty ones are released at once, and the
    /// batches of routes that got no point since the last flush are forgotten.
    pub(super) fn flush(&mut self, progress: &mut Progress) -> Vec<Outgoing> {
        let mut out = Vec::new();
        let mut idle = false;
        for open in &mut self.opens {
            match open.batcher.flush() {
                Some(batch) => out.push(Outgoing {
                    batch,
                    blocks: open.blocks.drain().collect(),
                    target: open.target,
                    route: open.route.clone(),
                }),
                None => {
                    for (partition, offset) in open.blocks.drain() {
                        progress.unblock(&partition, offset);
                    }
                    idle = true;
                }
            }
        }
        if idle && self.opens.len() > self.routings.len() {
            self.forget_idle(&out);
        }
        out
    }

    /// Keeps the batches that just had points, and the fixed ones.
    fn forget_idle(&mut self, flushed: &[Outgoing]) {
        let routings = &self.routings;
        self.opens.retain(|o| {
            routings[o.target].is_fixed()
                || flushed
                    .iter()
                    .any(|f| f.target == o.target && f.route == o.route)
        });
        self.index = self
            .opens
            .iter()
            .enumerate()
            .map(|(i, o)| ((o.target, o.route.clone()), i))
            .collect();
        self.open_fixed();
    }

    /// When the oldest point of any batch is due.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.opens.iter().filter_map(|o| o.batcher.deadline()).min()
    }

    pub(super) fn has_points(&self) -> bool {
        self.opens.iter().any(|o| !o.batcher.is_empty())
    }
}
