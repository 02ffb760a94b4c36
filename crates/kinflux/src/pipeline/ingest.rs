//! Ingest: records in, points into the open batch. Owns the decoder's use, the enrichment,
//! the batcher, and which partitions the open batch blocks.
//!
//! The hot path of the pipeline: per line of line protocol it costs one call of the
//! emitter, and no hash lookup (the block of the record's partition is settled once per
//! record).

use std::borrow::Cow;
use std::future::poll_fn;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use kinflux_backoff::{Backoff, BackoffConfig, RetryLog};
use kinflux_batch::{Batch, Batcher, FlushPolicy, RecordId};
use kinflux_influx::CancellationToken;
use kinflux_kafka::{PartitionKey, Record};
use kinflux_line::EncodeError;
use kinflux_series::{PointRef, PointView, Precision, Timestamp};

use super::Target;
use super::batches::OpenBatches;
use super::enrich::Enrichment;
use super::route::{Route, Routing};
use super::settlement::{ErrorClass, Outgoing};
use crate::decode::{Decode, DecodeFailure, Decoded, Emitter, Input};
use crate::progress::Progress;

/// What taking one record gave.
#[derive(Debug, Default)]
pub(super) struct Ingested {
    /// What of the record could not be decoded or batched.
    pub(super) failure: Option<DecodeFailure>,
    /// Batches that filled up while the record's points went in.
    pub(super) ready: Vec<Outgoing>,
    /// Points the record gave.
    pub(super) points: u64,
    /// The stop fired while the record waited to be decoded: it is not taken, and must
    /// not be handed off (it is read again after a restart). `ready` still holds batches
    /// that filled meanwhile, with points of earlier records: they must be written.
    pub(super) interrupted: bool,
}

/// The waits between decoding a record again while its schema cannot be had.
const SCHEMA_RETRY: BackoffConfig =
    BackoffConfig::new(Duration::from_millis(100), Duration::from_secs(30));

/// Decoder, enrichment and the open batches.
#[derive(Debug)]
pub(super) struct Ingest {
    decoder: Arc<dyn Decode>,
    enrichment: Enrichment,
    batches: OpenBatches,
    /// How each target routes points (as `batches` has them, borrowed apart).
    routings: Vec<Routing>,
    /// Every point's measurement (`${topic}`: the record's), replacing the data's.
    measurement: Option<String>,
    /// Points must be built, not forwarded as lines: some target routes by tag or drops
    /// one, or the measurement is set.
    needs_points: bool,
    /// Where a changed series key is encoded before it is added with its copied fields.
    key_scratch: Vec<u8>,
    /// Per target, the batch of the current record's points without routing tags
    /// (`usize::MAX` where the points' tags decide), and the route of its topic.
    record_opens: Vec<usize>,
    record_routes: Vec<Route>,
    /// The batches the current record blocks an offset in.
    record_blocked: Vec<usize>,
    /// One log for every record's schema retries: an outage is one streak of warnings.
    schema_log: RetryLog,
    /// Who the record being decoded is.
    current: CurrentRecord,
}

/// The record being decoded, as the batcher and the blocks name it. Kept from record to
/// record so that its topic is cloned when the topic changes, not for each record: the
/// atomic increment (and the decrement after) of an `Arc` every lane shares stalls behind
/// the stores of the points just batched.
#[derive(Debug)]
struct CurrentRecord {
    id: RecordId,
    partition: PartitionKey,
}

impl CurrentRecord {
    fn new() -> Self {
        let topic: Arc<str> = Arc::from("");
        CurrentRecord {
            id: RecordId {
                topic: Arc::clone(&topic),
                partition: 0,
                offset: 0,
            },
            partition: PartitionKey {
                topic,
                partition: 0,
            },
        }
    }

    /// Now `record`.
    fn set(&mut self, record: &Record) {
        if !Arc::ptr_eq(&self.id.topic, &record.topic) {
            self.id.topic = Arc::clone(&record.topic);
            self.partition.topic = Arc::clone(&record.topic);
        }
        self.id.partition = record.partition;
        self.id.offset = record.offset;
        self.partition.partition = record.partition;
    }
}

/// The Kafka record's time: the time of points whose data has none.
pub(super) fn record_time(record: &Record) -> Option<Timestamp> {
    Timestamp::from_precision(record.timestamp_ms, Precision::Milliseconds).ok()
}

impl Ingest {
    pub(super) fn new(
        decoder: Arc<dyn Decode>,
        enrichment: Enrichment,
        policy: FlushPolicy,
    ) -> Self {
        Ingest {
            decoder,
            enrichment,
            batches: OpenBatches::new(policy, Vec::new()),
            routings: vec![Routing::default()],
            measurement: None,
            needs_points: false,
            key_scratch: Vec::new(),
            record_opens: Vec::new(),
            record_routes: Vec::new(),
            record_blocked: Vec::new(),
            schema_log: RetryLog::new(),
            current: CurrentRecord::new(),
        }
    }

    /// Writes to `targets` (in this order: an [`Outgoing`]'s `target` indexes them),
    /// with every point's measurement set to `measurement` when given.
    pub(super) fn with_targets(mut self, targets: &[Target], measurement: Option<String>) -> Self {
        let routings: Vec<Routing> = targets.iter().map(|t| t.routing.clone()).collect();
        self.needs_points =
            measurement.is_some() || routings.iter().any(|r| r.needs_tags() || r.excludes_tags());
        self.measurement = measurement;
        self.batches = OpenBatches::new(self.batches.policy(), routings);
        self.routings = self.batches.routings().to_vec();
        self
    }

    /// Decodes `record` and adds its points to the open batch, blocking the record's
    /// offset in `progress` before its first point goes in (adding a point may flush).
    ///
    /// When the decoder says its source is unavailable, waits and decodes again; when
    /// `stop` fires meanwhile, the record is left [`interrupted`](Ingested::interrupted).
    pub(super) async fn take(
        &mut self,
        record: &Record,
        progress: &mut Progress,
        stop: &CancellationToken,
    ) -> Ingested {
        // Made at the first failure only: most records decode at once.
        let mut backoff: Option<Backoff> = None;
        // Outside the attempts: a batch that filled during an attempt that then failed or
        // was cancelled holds earlier records' points, and must not be lost.
        let mut ready = Vec::new();
        loop {
            if stop.is_cancelled() {
                break;
            }
            let attempt = {
                // Polled once alone first: most records decode at once, and then neither
                // the stop's waiter list (a lock and a registration) nor a `select!` is
                // touched; the `select!` moved both futures, two `memcpy`s per record
                // (2% of the bridge's instructions on JSON and Avro).
                let mut decoding = pin!(self.decode_once(record, progress, &mut ready));
                match poll_fn(|cx| Poll::Ready(decoding.as_mut().poll(cx))).await {
                    Poll::Ready(attempt) => Some(attempt),
                    Poll::Pending => tokio::select! {
                        biased;
                        attempt = &mut decoding => Some(attempt),
                        _ = stop.cancelled() => None,
                    },
                }
            };
            match attempt {
                Some(Ok((failure, points))) => {
                    if let Some(backoff) = &mut backoff {
                        backoff.succeeded();
                    }
                    return Ingested {
                        failure,
                        ready,
                        points,
                        interrupted: false,
                    };
                }
                None => break,
                Some(Err(unavailable)) => {
                    // The schema could not be had. Decode the record again after a wait;
                    // consumption pauses meanwhile, a stop does not. The backoff never
                    // gives up (no limits), so its only stop is the stop signal.
                    let backoff = backoff.get_or_insert_with(|| {
                        Backoff::with_log(SCHEMA_RETRY, "schema lookup", self.schema_log.clone())
                    });
                    if backoff.wait(&unavailable, stop).await.is_err() {
                        break;
                    }
                }
            }
        }
        Ingested {
            ready,
            interrupted: true,
            ..Ingested::default()
        }
    }

    /// One attempt: the record's failure and its point count, batches that filled going
    /// to `ready`.
    async fn decode_once(
        &mut self,
        record: &Record,
        progress: &mut Progress,
        ready: &mut Vec<Outgoing>,
    ) -> Result<(Option<DecodeFailure>, u64), crate::decode::Unavailable> {
        let offset = record.offset;
        let time = record_time(record);
        let Some(input) = Input::of_record(record, time) else {
            return Ok((None, 0));
        };
        self.route_record(&record.topic);
        self.current.set(record);
        let Ingest {
            decoder,
            enrichment,
            batches,
            routings,
            measurement,
            needs_points,
            key_scratch,
            record_opens,
            record_routes,
            record_blocked,
            schema_log: _,
            current,
        } = self;
        let CurrentRecord { id, partition } = &*current;
        let mut rejected: Vec<String> = Vec::new();
        let mut points = 0u64;
        let forward_lines = enrichment.is_noop() && !*needs_points;
        let measurement = measurement
            .as_deref()
            .map(|m| super::route::fill(m, &record.topic));
        let mut sink = |decoded: Decoded<'_>| {
            let mut decoded = decoded;
            let mut changed = false;
            if let Decoded::Point(point, _) = &mut decoded {
                let tags_before = point.tags().len();
                if let Err(e) = enrichment.apply(point, record, time) {
                    rejected.push(e.to_string());
                    return;
                }
                changed = point.tags().len() != tags_before;
                if let Some(m) = &measurement {
                    if let Err(e) = point.set_measurement(Cow::Borrowed(m.as_str())) {
                        rejected.push(e.to_string());
                        return;
                    }
                    changed = true;
                }
            }
            let mut refused = false;
            for target in 0..record_opens.len() {
                let routing = &routings[target];
                let open = match (&decoded, record_opens[target]) {
                    (Decoded::Point(point, _), usize::MAX) => {
                        let route = routing.of_point(point, &record_routes[target]);
                        batches.open_for(target, route)
                    }
                    (_, open) => open,
                };
                batches.block(open, partition, offset, progress, record_blocked);
                let batcher = batches.batcher(open);
                let added = match &decoded {
                    Decoded::Line {
                        series_key,
                        fields,
                        timestamp,
                        written_time,
                    } => match written_time {
                        Some(time) => batcher.add_encoded_written(series_key, fields, *time, id),
                        None => batcher.add_encoded(series_key, fields, *timestamp, id),
                    },
                    Decoded::Point(point, raw) if routing.excludes_tags() => {
                        let mut point = point.clone();
                        routing.strip(&mut point);
                        match raw.fields {
                            Some(fields) => forward(batcher, key_scratch, &point, None, fields, id),
                            None => batcher.add(&point, id),
                        }
                    }
                    Decoded::Point(point, raw) => match raw.fields {
                        Some(fields) => {
                            let key = raw.series_key.filter(|_| !changed);
                            forward(batcher, key_scratch, point, key, fields, id)
                        }
                        None => batcher.add(point, id),
                    },
                };
                match added {
                    Ok(Some(batch)) => ready.push(batches.filled(open, batch, record_blocked)),
                    Ok(None) => {}
                    Err(e) => {
                        // No target can write it (the line is the same for all but the
                        // tags one excludes): the record goes whole to the dead letters.
                        rejected.push(e.to_string());
                        refused = true;
                        break;
                    }
                }
            }
            if !refused {
                points += 1;
            }
        };
        let mut out = Emitter::new(&mut sink, forward_lines);
        let mut failure = decoder.decode_record(input, &mut out).finish().await?;
        if !rejected.is_empty() {
            // Points the decoder gave that cannot be written: the record goes whole.
            let message = rejected.join("; ");
            failure = Some(match failure {
                Some(f) => DecodeFailure::new(f.class, format!("{}; {message}", f.message)),
                None => DecodeFailure::new(ErrorClass::Decode, message),
            });
        }
        Ok((failure, points))
    }

    /// Sets, for the record of `topic` about to be decoded, each target's batch for
    /// points whose tags do not route them, and the route of the topic.
    fn route_record(&mut self, topic: &str) {
        self.record_blocked.clear();
        let n = self.batches.routings().len();
        self.record_opens.clear();
        self.record_routes.resize(n, Route::default());
        for target in 0..n {
            let open = match self.batches.fixed(target) {
                Some(open) => open,
                None => {
                    let routing = &self.batches.routings()[target];
                    let route = routing.of_topic(topic);
                    if routing.needs_tags() {
                        self.record_routes[target] = route;
                        usize::MAX
                    } else {
                        self.batches.open_for(target, route)
                    }
                }
            };
            self.record_opens.push(open);
        }
    }

    /// Closes the open batches. Those with nothing in them release their blocks at once.
    pub(super) fn flush(&mut self, progress: &mut Progress) -> Vec<Outgoing> {
        self.batches.flush(progress)
    }

    /// When the oldest open batch is due by age.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.batches.deadline()
    }

    pub(super) fn has_open_batch(&self) -> bool {
        self.batches.has_points()
    }
}

/// Adds a line-protocol point by copying its field section as it came, and its series key
/// too when the enrichment added no tag, instead of encoding the point again: encoding
/// was a fifth of the bridge's CPU on line protocol.
fn forward(
    batcher: &mut Batcher,
    scratch: &mut Vec<u8>,
    point: &PointRef<'_>,
    series_key: Option<&[u8]>,
    fields: &[u8],
    source: &RecordId,
) -> Result<Option<Batch>, EncodeError> {
    let series_key = match series_key {
        Some(key) => key,
        None => {
            scratch.clear();
            kinflux_line::encode_series_key(point, scratch)?;
            scratch.as_slice()
        }
    };
    batcher.add_encoded(series_key, fields, point.timestamp(), source)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use kinflux_series::Point;

    use super::*;
    use crate::config::{TagsConfig, TimeSource};
    use crate::decode::{Decoding, Unavailable};

    /// Emits one point per record, but says "unavailable" after emitting on its first call.
    #[derive(Debug, Default)]
    struct Flaky {
        calls: AtomicUsize,
    }

    impl Decode for Flaky {
        fn decode_record<'a>(
            &'a self,
            input: Input<'a>,
            out: &'a mut Emitter<'_>,
        ) -> crate::decode::Decoding<'a> {
            let point = Point::builder("m")
                .field("v", input.value.len() as i64)
                .timestamp(Timestamp::from_nanos(1))
                .build()
                .expect("a valid point");
            out.point(point.as_point_ref());
            if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
                Decoding::Done(Err(Unavailable("registry down".into())))
            } else {
                Decoding::ok()
            }
        }
    }

    fn record(offset: i64) -> Record {
        Record {
            topic: "t".into(),
            partition: 0,
            offset,
            key: None,
            value: Some(bytes::Bytes::from_static(b"x")),
            headers: Vec::new(),
            timestamp_ms: 0,
        }
    }

    #[tokio::test]
    async fn batches_that_fill_during_a_failed_attempt_are_kept() {
        let policy = FlushPolicy {
            max_points: 1,
            ..FlushPolicy::default()
        };
        let enrichment = Enrichment::new(TagsConfig::default(), TimeSource::Data);
        let mut ingest = Ingest::new(Arc::new(Flaky::default()), enrichment, policy);
        let mut progress = Progress::new();
        let stop = CancellationToken::new();
        let ingested = ingest.take(&record(0), &mut progress, &stop).await;
        assert!(!ingested.interrupted);
        // The first attempt's point filled a batch before the decoder gave up: it is
        // handed on with the second attempt's, each with the block it holds.
        assert_eq!(ingested.ready.len(), 2);
        for outgoing in &ingested.ready {
            let partition = kinflux_kafka::PartitionKey::new("t", 0);
            assert_eq!(outgoing.blocks, [(partition, 0)]);
        }
    }

    #[tokio::test]
    async fn a_stop_while_a_record_waits_leaves_it_untaken_but_keeps_filled_batches() {
        #[derive(Debug)]
        struct Down;
        impl Decode for Down {
            fn decode_record<'a>(
                &'a self,
                input: Input<'a>,
                out: &'a mut Emitter<'_>,
            ) -> crate::decode::Decoding<'a> {
                let point = Point::builder("m")
                    .field("v", input.value.len() as i64)
                    .build()
                    .expect("a valid point");
                out.point(point.as_point_ref());
                Decoding::Done(Err(Unavailable("registry down".into())))
            }
        }
        let policy = FlushPolicy {
            max_points: 1,
            ..FlushPolicy::default()
        };
        let enrichment = Enrichment::new(TagsConfig::default(), TimeSource::Data);
        let mut ingest = Ingest::new(Arc::new(Down), enrichment, policy);
        let mut progress = Progress::new();
        let stop = CancellationToken::new();
        let stopper = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            stopper.cancel();
        });
        let ingested = ingest.take(&record(0), &mut progress, &stop).await;
        assert!(ingested.interrupted);
        assert!(!ingested.ready.is_empty());
    }

    /// Says "unavailable" (without emitting) for its first `down` calls.
    #[derive(Debug)]
    struct DownFor {
        down: usize,
        calls: AtomicUsize,
    }

    impl Decode for DownFor {
        fn decode_record<'a>(
            &'a self,
            _input: Input<'a>,
            _out: &'a mut Emitter<'_>,
        ) -> crate::decode::Decoding<'a> {
            if self.calls.fetch_add(1, Ordering::SeqCst) < self.down {
                Decoding::Done(Err(Unavailable("registry down".into())))
            } else {
                Decoding::ok()
            }
        }
    }

    /// A long registry outage logs the start of the streak at warn, then at most one warn
    /// a minute, and its end at info: not one warn per retry.
    #[tokio::test(start_paused = true)]
    async fn a_schema_outage_logs_rate_limited_warnings() {
        const DOWN: usize = 40;
        let (_guard, captured) = kinflux_testkit::logs::capture();
        let enrichment = Enrichment::new(TagsConfig::default(), TimeSource::Data);
        let decoder = Arc::new(DownFor {
            down: DOWN,
            calls: AtomicUsize::new(0),
        });
        let mut ingest = Ingest::new(decoder.clone(), enrichment, FlushPolicy::default());
        let mut progress = Progress::new();
        let stop = CancellationToken::new();
        let started = tokio::time::Instant::now();
        let ingested = ingest.take(&record(0), &mut progress, &stop).await;
        assert!(!ingested.interrupted);
        assert_eq!(decoder.calls.load(Ordering::SeqCst), DOWN + 1);
        let outage = started.elapsed();

        let text = kinflux_testkit::logs::text(&captured);
        let warns: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("WARN") && l.contains("schema lookup"))
            .collect();
        // The first retry, then one per minute of outage at most.
        let minutes = usize::try_from(outage.as_secs() / 60).expect("a short outage");
        assert!(!warns.is_empty(), "no warning in: {text}");
        assert!(
            warns.len() <= 1 + minutes,
            "{} warnings in {outage:?}: {text}",
            warns.len()
        );
        assert!(warns.len() < DOWN / 4, "{text}");
        assert!(
            warns[0].contains("registry down"),
            "the warning says why: {text}"
        );
        assert!(
            text.lines()
                .any(|l| l.contains("INFO")
                    && l.contains(&format!("recovered after {DOWN} retries"))),
            "no recovery line in: {text}"
        );
    }
}
