//! A dry run: records through the pipeline's decoder, enrichment, measurement and routing,
//! to see what would be written where, without Kafka's group, commits or InfluxDB.
//! `kinflux test` is built on it.

use std::borrow::Cow;
use std::sync::Arc;

use kinflux_influx::{Api, WriterConfig};
use kinflux_kafka::Record;
use kinflux_line::EncodeError;
use kinflux_series::{PointRef, PointView, Precision};

use super::PipelineBuilder;
use super::enrich::Enrichment;
use super::ingest::record_time;
use super::route::{Routing, fill};
use super::settlement::ErrorClass;
use crate::decode::{Decode, DecodeFailure, Decoded, Emitter, Input, Unavailable};

/// Decodes records as the pipeline would, and says what it would write to which target;
/// made by [`PipelineBuilder::dry_run`].
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use kinflux::{Config, PipelineBuilder};
/// use kinflux::kafka::Record;
///
/// let config = Config::from_toml(
///     "[kafka]\nbrokers = [\"127.0.0.1:9092\"]\ntopics = [\"t\"]\ngroup_id = \"g\"\n\
///      [influx]\nurl = \"http://127.0.0.1:8086\"\ndatabase = \"d\"\n\
///      [tags]\nsite = \"north\"\n[dead_letter]\non_error = \"drop\"\n",
/// )?;
/// let dry_run = PipelineBuilder::from_config(&config)?.dry_run();
/// let record = Record {
///     topic: "t".into(),
///     partition: 0,
///     offset: 0,
///     key: None,
///     value: Some("cpu usage=1 1700000000000000000\nnot line protocol".into()),
///     headers: Vec::new(),
///     timestamp_ms: 1_700_000_000_000,
/// };
/// let preview = dry_run.record(&record).await.expect("no registry to wait for");
/// assert_eq!(preview.points[0].line, "cpu,site=north usage=1 1700000000000000000");
/// assert_eq!((preview.points[0].target.as_str(), preview.points[0].database.as_str()), ("influx", "d"));
/// assert!(preview.dead_letter.is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct DryRun {
    decoder: Arc<dyn Decode>,
    enrichment: Enrichment,
    measurement: Option<String>,
    targets: Vec<DryTarget>,
}

/// A target as a dry run needs it: its name, its own database, and its routing.
#[derive(Debug, Clone)]
struct DryTarget {
    name: String,
    /// The writer's own database (v1, v3) or bucket (v2), and retention policy (v1).
    database: String,
    retention_policy: Option<String>,
    routing: Routing,
}

/// What the pipeline would make of one record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Preview {
    /// Each point as it would be written to each of its targets (before merging with
    /// other records' points), in the order the decoder gave them.
    pub points: Vec<PreviewPoint>,
    /// Why the record, or part of it, would go to the dead-letter topic.
    pub dead_letter: Option<DeadLetterPreview>,
}

/// One point on one target.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PreviewPoint {
    /// The target's name (`influx`, or the `[influx.<name>]` table's).
    pub target: String,
    /// The database (v1, v3) or bucket (v2) it goes to, after routing.
    pub database: String,
    /// v1: the retention policy, after routing; `None` is the database's default.
    pub retention_policy: Option<String>,
    /// The line, without its newline, the timestamp in nanoseconds.
    pub line: String,
}

/// A dead letter a dry run found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetterPreview {
    /// The class, as the dead-letter header names it.
    pub class: ErrorClass,
    /// Why, with positions where there are any.
    pub reason: String,
    /// Whether only part of the record is bad (its other lines are written).
    pub partial: bool,
}

impl From<DecodeFailure> for DeadLetterPreview {
    fn from(f: DecodeFailure) -> Self {
        DeadLetterPreview {
            class: f.class,
            reason: f.message,
            partial: f.bad_part.is_some(),
        }
    }
}

/// The writer's own database or bucket, and retention policy.
fn own_database(writer: &WriterConfig) -> (String, Option<String>) {
    match &writer.api {
        Api::V1 {
            database,
            retention_policy,
            ..
        } => (database.clone(), retention_policy.clone()),
        Api::V2 { bucket, .. } => (bucket.clone(), None),
        Api::V3 { database, .. } => (database.clone(), None),
        _ => (String::new(), None),
    }
}

impl PipelineBuilder {
    /// A [`DryRun`] with this builder's decoder, tags, time source, measurement and
    /// targets.
    pub fn dry_run(&self) -> DryRun {
        DryRun {
            decoder: self.decoder_shared(),
            enrichment: self.enrichment(),
            measurement: self.measurement_template().map(str::to_owned),
            targets: self
                .target_specs()
                .map(|(name, writer, routing)| {
                    let (database, retention_policy) = own_database(writer);
                    DryTarget {
                        name: name.to_owned(),
                        database,
                        retention_policy,
                        routing: routing.clone(),
                    }
                })
                .collect(),
        }
    }
}

impl DryRun {
    /// Decodes `record`, enriches and routes its points as the pipeline would. `Err` when
    /// the decoder's source is unavailable (the schema registry): the pipeline would wait
    /// and decode the record again.
    pub async fn record(&self, record: &Record) -> Result<Preview, Unavailable> {
        let time = record_time(record);
        let Some(input) = Input::of_record(record, time) else {
            // A tombstone carries no point, and is no error.
            return Ok(Preview::default());
        };
        let measurement = self.measurement.as_deref().map(|m| fill(m, &record.topic));
        let mut points = Vec::new();
        let mut rejected: Vec<String> = Vec::new();
        let mut sink = |decoded: Decoded<'_>| {
            // Lines are never forwarded as they came here (see the emitter below).
            let Decoded::Point(mut point, raw) = decoded else {
                return;
            };
            if let Err(e) = self.enrichment.apply(&mut point, record, time) {
                rejected.push(e.to_string());
                return;
            }
            if let Some(m) = &measurement {
                if let Err(e) = point.set_measurement(Cow::Borrowed(m.as_str())) {
                    rejected.push(e.to_string());
                    return;
                }
            }
            match self.on_targets(&point, raw.fields, &record.topic) {
                Ok(mut each) => points.append(&mut each),
                Err(e) => rejected.push(e),
            }
        };
        let failure = {
            let mut out = Emitter::new(&mut sink, false);
            self.decoder.decode_record(input, &mut out).finish().await?
        };
        // As the pipeline does: points that cannot be written send the whole record.
        let failure = if rejected.is_empty() {
            failure
        } else {
            let message = rejected.join("; ");
            Some(match failure {
                Some(f) => DecodeFailure::new(f.class, format!("{}; {message}", f.message)),
                None => DecodeFailure::new(ErrorClass::Decode, message),
            })
        };
        Ok(Preview {
            points,
            dead_letter: failure.map(DeadLetterPreview::from),
        })
    }

    /// `point` as each target would write it, or why none can. `raw_fields` is the field
    /// section as it came in a line-protocol record, which the pipeline copies as it is.
    fn on_targets(
        &self,
        point: &PointRef<'_>,
        raw_fields: Option<&[u8]>,
        topic: &str,
    ) -> Result<Vec<PreviewPoint>, String> {
        let mut out = Vec::with_capacity(self.targets.len());
        for t in &self.targets {
            let route = t.routing.of_point(point, &t.routing.of_topic(topic));
            let mut written = point.clone();
            t.routing.strip(&mut written);
            let line = encode(&written, raw_fields)
                .map_err(|e| format!("{}: {e}", point.measurement()))?;
            out.push(PreviewPoint {
                target: t.name.clone(),
                database: route.database.unwrap_or_else(|| t.database.clone()),
                retention_policy: route
                    .retention_policy
                    .or_else(|| t.retention_policy.clone()),
                line: String::from_utf8_lossy(&line).trim_end().to_owned(),
            });
        }
        Ok(out)
    }
}

/// The line the pipeline's batcher writes for `point`: its field section copied as it
/// came when there is one, else the whole point encoded.
fn encode(point: &PointRef<'_>, raw_fields: Option<&[u8]>) -> Result<Vec<u8>, EncodeError> {
    let mut line = Vec::new();
    let Some(fields) = raw_fields else {
        kinflux_line::encode_point(point, Precision::Nanoseconds, &mut line)?;
        return Ok(line);
    };
    kinflux_line::encode_series_key(point, &mut line)?;
    line.push(b' ');
    line.extend_from_slice(fields);
    if let Some(ts) = point.timestamp() {
        line.push(b' ');
        kinflux_line::encode_timestamp(ts, Precision::Nanoseconds, &mut line)?;
    }
    Ok(line)
}
