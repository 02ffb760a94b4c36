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
use tokio::{
    sync::{Notify, mpsc},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use super::{Event, RETRY, Shared, lock};
use crate::{
    config::AutoOffsetReset,
    error::{Error, code},
    fetch::{
        DecodeOptions, FetchClient, FetchParams, FetchPosition, FetchedPartition, IsolationLevel,
        OffsetSpec,
    },
    record::{PartitionKey, Record},
};

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
    pub(super) last_stable_offset: AtomicI64,
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
                last_stable_offset: AtomicI64::new(UNKNOWN),
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

/// How many bytes of buffer (counted as [`Record::footprint`]) a fetched byte takes, at
/// most, for small records: the record's struct and its allocations come on top of its
/// bytes (90-byte lines: about 2.5).
const FOOTPRINT_PER_WIRE_BYTE: usize = 3;

/// The least a fetch asks for, however full the buffer: small fetches cost a round trip
/// each.
const MIN_FETCH_BYTES: usize = 64 * 1024;

/// Fetches one partition until the channel closes (the task is stopped from outside).
async fn fetch_partition(
    shared: Arc<Shared>,
    state: Arc<PartitionState>,
    committed: Option<i64>,
    tx: mpsc::UnboundedSender<Event>,
) {
    let cfg = &shared.config;
    let tp = &state.tp;
    let level = cfg.isolation_level;
    let mut backoff = Backoff::with_log(RETRY, "Kafka fetch", shared.fetch_log.clone());
    let reset = cfg.auto_offset_reset;
    let mut offset = match committed {
        Some(o) => o,
        None => match reset_offset(&shared.fetch, reset, tp, level, &mut backoff).await {
            Ok(o) => o,
            Err(refused) => return fatal(&tx, refused),
        },
    };
    state.position.store(offset, Ordering::Release);
    let mut params = FetchParams {
        max_wait: cfg.fetch_max_wait,
        max_bytes: cfg.fetch_max_bytes,
        partition_max_bytes: cfg.fetch_max_bytes,
        decode: DecodeOptions::with_isolation_level(level),
        ..FetchParams::default()
    };
    // The first batch of a partition that failed to decode: it is fetched once more before
    // it counts as undecodable (a transient corruption reads right the second time).
    let mut failed_once: Option<i64> = None;
    loop {
        // Backpressure and pause: wait until the caller drained the buffer / resumed.
        while state.paused.load(Ordering::Acquire)
            || state.buffered.load(Ordering::Acquire) >= cfg.max_buffered_bytes
        {
            state.wake.notified().await;
        }
        // Ask for what fits the room left in the buffer, not for a whole `fetch_max_bytes`:
        // a 50 MiB answer per partition on top of a full buffer was 430 MiB of RSS for 4
        // partitions.
        let room = cfg
            .max_buffered_bytes
            .saturating_sub(state.buffered.load(Ordering::Acquire));
        let ask = room / FOOTPRINT_PER_WIRE_BYTE;
        let ask = i32::try_from(ask.max(MIN_FETCH_BYTES)).unwrap_or(i32::MAX);
        params.max_bytes = ask.min(cfg.fetch_max_bytes);
        params.partition_max_bytes = params.max_bytes;
        let seek_generation = {
            let mut seek = lock(&state.seek);
            if let Some(to) = seek.to.take() {
                offset = to;
                failed_once = None;
            }
            seek.generation
        };
        let answer = match fetch_once(&shared.fetch, tp, offset, &params).await {
            Ok(a) => a,
            Err(NoAnswer::Refused(e)) => return fatal(&tx, e),
            Err(NoAnswer::Retry(why)) => {
                shared.fetch_failures.fetch_add(1, Ordering::Relaxed);
                let wait = delay(&mut backoff, why);
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        match answer.error_code {
            code::NONE => backoff.succeeded(),
            code::OFFSET_OUT_OF_RANGE => {
                let new = match reset_offset(&shared.fetch, reset, tp, level, &mut backoff).await {
                    Ok(o) => o,
                    Err(refused) => return fatal(&tx, refused),
                };
                warn!(partition = %tp, offset, new, "offset out of range; reset");
                offset = new;
                state.position.store(offset, Ordering::Release);
                continue;
            }
            other => {
                shared.fetch_failures.fetch_add(1, Ordering::Relaxed);
                // The client already forgot a leader that moved; ask again after a wait.
                let wait = delay(
                    &mut backoff,
                    format_args!("{tp}: Fetch: {}", code::name(other)),
                );
                tokio::time::sleep(wait).await;
                continue;
            }
        }
        state
            .high_watermark
            .store(answer.high_watermark, Ordering::Release);
        state
            .last_stable_offset
            .store(answer.last_stable_offset, Ordering::Release);
        if state.paused.load(Ordering::Acquire) {
            // Paused while the fetch was in flight: drop it, fetch again on resume.
            continue;
        }
        let decoded = answer.decoded;
        let next_offset = decoded.next_offset;
        let mut bytes = 0;
        let records: Vec<Record> = decoded
            .records
            .into_iter()
            .map(|r| {
                let r = Record::from_fetched(&tp.topic, tp.partition, r);
                bytes += r.footprint();
                r
            })
            .collect();
        if !records.is_empty() || next_offset > offset {
            state.buffered.fetch_add(bytes, Ordering::AcqRel);
            let event = Event::Batch {
                state: Arc::clone(&state),
                records,
                bytes,
                next_offset,
                seek_generation,
            };
            if tx.send(event).is_err() {
                return;
            }
        }
        offset = next_offset;
        let Some(failure) = decoded.error else {
            continue;
        };
        if failed_once != Some(failure.base_offset) {
            failed_once = Some(failure.base_offset);
            warn!(topic = %tp.topic, partition = tp.partition, offset = failure.base_offset, error = %failure.error, "record batch does not decode; fetching it once more");
            continue;
        }
        failed_once = None;
        error!(
            topic = %tp.topic,
            partition = tp.partition,
            offset = failure.base_offset,
            last_offset = failure.last_offset,
            kind = failure.error.kind(),
            error = %failure.error,
            "record batch cannot be decoded; handing it to the caller and reading on after it"
        );
        offset = offset.max(failure.last_offset.saturating_add(1));
        let event = Event::Undecodable {
            state: Arc::clone(&state),
            failure,
            seek_generation,
        };
        if tx.send(event).is_err() {
            return;
        }
    }
}

/// Why a fetch has no answer to act on.
enum NoAnswer {
    /// The broker refused our credentials or certificate: the consumer stops.
    Refused(Error),
    /// Anything else: tried again after a backoff.
    Retry(String),
}

/// Ends the consumer with `e` (a refusal); the group session stops every fetcher then.
fn fatal(tx: &mpsc::UnboundedSender<Event>, e: Error) {
    let _ = tx.send(Event::Fatal(e));
}

/// Whether `e` says the broker refused our credentials or certificate.
fn refused(e: &Error) -> bool {
    matches!(e, Error::Authentication { .. } | Error::Tls { .. })
}

/// One Fetch of one partition; `Err` says why there is no answer to act on.
async fn fetch_once(
    fetch: &FetchClient,
    tp: &PartitionKey,
    offset: i64,
    params: &FetchParams,
) -> Result<FetchedPartition, NoAnswer> {
    let wanted = [FetchPosition {
        topic: Arc::clone(&tp.topic),
        partition: tp.partition,
        offset,
    }];
    match fetch.fetch(&wanted, params).await {
        Ok(answers) => answers.into_iter().next().ok_or_else(|| {
            NoAnswer::Retry(format!(
                "{tp}: the broker left the partition out of its answer"
            ))
        }),
        Err(e) if refused(&e) => Err(NoAnswer::Refused(e)),
        Err(e) => Err(NoAnswer::Retry(format!("{tp}: {e}"))),
    }
}

/// Where to start when there is no usable committed offset; retries until the broker
/// answers, unless it refuses our credentials or certificate.
async fn reset_offset(
    fetch: &FetchClient,
    reset: AutoOffsetReset,
    tp: &PartitionKey,
    level: IsolationLevel,
    backoff: &mut Backoff,
) -> Result<i64, Error> {
    let spec = match reset {
        AutoOffsetReset::Earliest => OffsetSpec::Earliest,
        AutoOffsetReset::Latest => OffsetSpec::Latest,
    };
    loop {
        match fetch
            .list_offset(&tp.topic, tp.partition, spec, level)
            .await
        {
            Ok(o) => {
                backoff.succeeded();
                return Ok(o.unwrap_or(0));
            }
            Err(e) if refused(&e) => return Err(e),
            Err(e) => {
                let wait = delay(backoff, format_args!("{tp}: ListOffsets: {e}"));
                tokio::time::sleep(wait).await;
            }
        }
    }
}
