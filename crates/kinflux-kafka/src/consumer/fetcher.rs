//! The fetchers: one task per assigned partition. Each fetches in offset order into the
//! consumer's channel and stops while its partition is paused or its buffer is full.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use kinflux_backoff::Backoff;
use rskafka::client::{
    error::{Error as ClientError, ProtocolError},
    partition::{OffsetAt, PartitionClient, UnknownTopicHandling},
};
use tokio::{
    sync::{Notify, mpsc},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::{Event, RETRY, Shared, lock};
use crate::{config::AutoOffsetReset, record::PartitionKey, record::Record};

/// An offset or watermark not known yet.
const UNKNOWN: i64 = -1;

/// `Some` for a known offset.
pub(super) fn known(v: i64) -> Option<i64> {
    (v >= 0).then_some(v)
}

/// The fetch state of one assigned partition, shared by its fetcher and the handle.
#[derive(Debug)]
pub(super) struct PartitionState {
    pub(super) tp: PartitionKey,
    /// Which assignment this is, so batches from an older one are recognised.
    pub(super) epoch: u64,
    /// Bytes fetched but not yet handed to the caller ([`Record::footprint`]).
    pub(super) buffered: AtomicUsize,
    pub(super) paused: AtomicBool,
    /// Wakes the fetcher after a drain, a resume or a seek.
    pub(super) wake: Notify,
    pub(super) high_watermark: AtomicI64,
    /// The next offset to hand to the caller.
    pub(super) position: AtomicI64,
    pub(super) committed: AtomicI64,
    /// A pending seek and the seek generation; batches fetched in an older seek generation
    /// are dropped.
    seek: Mutex<Seek>,
}

#[derive(Debug, Default)]
struct Seek {
    to: Option<i64>,
    generation: u64,
}

impl PartitionState {
    /// Moves the partition to `offset`: the fetcher starts there, and what it fetched
    /// before is dropped.
    pub(super) fn seek(&self, offset: i64) {
        {
            let mut seek = lock(&self.seek);
            seek.to = Some(offset);
            seek.generation += 1;
        }
        self.position.store(offset, Ordering::Release);
        self.wake.notify_one();
    }

    /// The seek generation now.
    pub(super) fn seek_generation(&self) -> u64 {
        lock(&self.seek).generation
    }
}

/// The fetch task of one assigned partition.
#[derive(Debug)]
struct Fetcher {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// The partitions this member fetches now, each with its task. A cooperative member keeps
/// them across rebalances.
#[derive(Debug, Default)]
pub(super) struct Fetchers {
    running: BTreeMap<PartitionKey, Fetcher>,
    /// Assignments made so far; the next one's epoch.
    epoch: u64,
}

impl Fetchers {
    /// The partitions being fetched.
    pub(super) fn partitions(&self) -> Vec<PartitionKey> {
        self.running.keys().cloned().collect()
    }

    pub(super) fn contains(&self, tp: &PartitionKey) -> bool {
        self.running.contains_key(tp)
    }

    /// Starts fetching `added`, each from its committed offset or by `auto_offset_reset`.
    /// The tasks stop with `shutdown` at the latest.
    pub(super) fn start(
        &mut self,
        shared: &Arc<Shared>,
        added: &[PartitionKey],
        committed: &BTreeMap<PartitionKey, Option<i64>>,
        tx: &mpsc::UnboundedSender<Event>,
        shutdown: &CancellationToken,
    ) {
        let epoch = self.epoch;
        self.epoch += 1;
        let paused = lock(&shared.paused).clone();
        for tp in added {
            let c = committed.get(tp).copied().flatten();
            let state = Arc::new(PartitionState {
                tp: tp.clone(),
                epoch,
                buffered: AtomicUsize::new(0),
                paused: AtomicBool::new(paused.contains(tp)),
                wake: Notify::new(),
                high_watermark: AtomicI64::new(UNKNOWN),
                position: AtomicI64::new(c.unwrap_or(UNKNOWN)),
                committed: AtomicI64::new(c.unwrap_or(UNKNOWN)),
                seek: Mutex::default(),
            });
            lock(&shared.assigned).insert(tp.clone(), Arc::clone(&state));
            let stop = shutdown.child_token();
            let fetch = fetch_partition(Arc::clone(shared), state, c, tx.clone());
            let stopped = stop.clone();
            let task = tokio::spawn(async move {
                tokio::select! {
                    () = fetch => {}
                    () = stopped.cancelled() => {}
                }
            });
            self.running.insert(tp.clone(), Fetcher { stop, task });
        }
    }

    /// Stops the fetchers of these partitions and waits until they stopped, so that every
    /// batch they fetched is in the channel.
    pub(super) async fn stop(&mut self, partitions: &[PartitionKey]) {
        let mut stopped = Vec::new();
        for tp in partitions {
            if let Some(f) = self.running.remove(tp) {
                f.stop.cancel();
                stopped.push(f.task);
            }
        }
        for t in stopped {
            let _ = t.await;
        }
    }
}

/// How long to wait after a failure. [`RETRY`] has no limit; were one added, a fetcher
/// would keep trying at the longest wait rather than stop.
fn delay(backoff: &mut Backoff, why: impl std::fmt::Display) -> Duration {
    backoff.next_delay(why).unwrap_or(RETRY.max)
}

/// Fetches one partition until the channel closes (the task is stopped from outside).
async fn fetch_partition(
    shared: Arc<Shared>,
    state: Arc<PartitionState>,
    committed: Option<i64>,
    tx: mpsc::UnboundedSender<Event>,
) {
    let cfg = &shared.config;
    let tp = &state.tp;
    let mut backoff = Backoff::with_log(RETRY, "Kafka fetch", shared.fetch_log.clone());
    let pc = loop {
        match shared
            .client
            .partition_client(&*tp.topic, tp.partition, UnknownTopicHandling::Retry)
            .await
        {
            Ok(pc) => break pc,
            Err(e) => {
                let wait = delay(&mut backoff, format_args!("{tp}: no partition client: {e}"));
                tokio::time::sleep(wait).await;
            }
        }
    };
    let mut offset = match committed {
        Some(o) => o,
        None => reset_offset(&pc, cfg.auto_offset_reset, tp, &mut backoff).await,
    };
    state.position.store(offset, Ordering::Release);
    let max_wait = i32::try_from(cfg.fetch_max_wait.as_millis()).unwrap_or(i32::MAX);
    loop {
        // Backpressure and pause: wait until the caller drained the buffer / resumed.
        while state.paused.load(Ordering::Acquire)
            || state.buffered.load(Ordering::Acquire) >= cfg.max_buffered_bytes
        {
            state.wake.notified().await;
        }
        let seek_generation = {
            let mut seek = lock(&state.seek);
            if let Some(to) = seek.to.take() {
                offset = to;
            }
            seek.generation
        };
        match pc
            .fetch_records(offset, 1..cfg.fetch_max_bytes, max_wait)
            .await
        {
            Ok((records, hw)) => {
                backoff.succeeded();
                state.high_watermark.store(hw, Ordering::Release);
                if state.paused.load(Ordering::Acquire) {
                    // Paused while the fetch was in flight: drop it, fetch again on resume.
                    continue;
                }
                if records.is_empty() {
                    if hw > offset {
                        // Data exists but none came back: rskafka drops control batches
                        // (transaction markers). Do not spin on it.
                        debug!(partition = %tp, offset, hw, "empty fetch below the high watermark");
                        tokio::time::sleep(cfg.fetch_max_wait).await;
                    }
                    continue;
                }
                let mut bytes = 0;
                let batch: Vec<Record> = records
                    .into_iter()
                    .filter(|r| r.offset >= offset)
                    .map(|r| {
                        let r = Record::from_rskafka(&tp.topic, tp.partition, r);
                        bytes += r.footprint();
                        r
                    })
                    .collect();
                let Some(last) = batch.last() else { continue };
                offset = last.offset + 1;
                state.buffered.fetch_add(bytes, Ordering::AcqRel);
                let event = Event::Batch {
                    state: Arc::clone(&state),
                    records: batch,
                    bytes,
                    seek_generation,
                };
                if tx.send(event).is_err() {
                    return;
                }
            }
            Err(ClientError::ServerError {
                protocol_error: ProtocolError::OffsetOutOfRange,
                ..
            }) => {
                let new = reset_offset(&pc, cfg.auto_offset_reset, tp, &mut backoff).await;
                warn!(partition = %tp, offset, new, "offset out of range; reset");
                offset = new;
                state.position.store(offset, Ordering::Release);
            }
            Err(e) => {
                let wait = delay(&mut backoff, format_args!("{tp}: {e}"));
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Where to start when there is no usable committed offset; retries until the broker answers.
async fn reset_offset(
    pc: &PartitionClient,
    reset: AutoOffsetReset,
    tp: &PartitionKey,
    backoff: &mut Backoff,
) -> i64 {
    let at = match reset {
        AutoOffsetReset::Earliest => OffsetAt::Earliest,
        AutoOffsetReset::Latest => OffsetAt::Latest,
    };
    loop {
        match pc.get_offset(at).await {
            Ok(o) => {
                backoff.succeeded();
                return o;
            }
            Err(e) => {
                let wait = delay(backoff, format_args!("{tp}: ListOffsets: {e}"));
                tokio::time::sleep(wait).await;
            }
        }
    }
}
