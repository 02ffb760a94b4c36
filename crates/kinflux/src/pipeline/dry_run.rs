//! A dry run: records through the pipeline's decoder and enrichment, to see what would be
//! written, without Kafka's group, commits or InfluxDB. `kinflux test` is built on it.

use std::sync::Arc;

use kinflux_kafka::Record;
use kinflux_series::{PointView, Precision};

use super::PipelineBuilder;
use super::enrich::Enrichment;
use super::ingest::record_time;
use super::settlement::ErrorClass;
use crate::decode::{Decode, DecodeFailure, Decoded, Emitter, Input, Unavailable};

/// Decodes records as the pipeline would, and says what it would write; made by
/// [`PipelineBuilder::dry_run`].
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
/// assert_eq!(preview.lines, ["cpu,site=north usage=1 1700000000000000000"]);
/// assert!(preview.dead_letter.is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct DryRun {
    decoder: Arc<dyn Decode>,
    enrichment: Enrichment,
}

/// What the pipeline would make of one record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Preview {
    /// The line protocol it would write (before merging with other records' points),
    /// one line per point, without the newline, timestamps in nanoseconds.
    pub lines: Vec<String>,
    /// Why the record, or part of it, would go to the dead-letter topic.
    pub dead_letter: Option<DeadLetterPreview>,
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

impl PipelineBuilder {
    /// A [`DryRun`] with this builder's decoder, tags and time source.
    pub fn dry_run(&self) -> DryRun {
        DryRun {
            decoder: self.decoder_shared(),
            enrichment: self.enrichment(),
        }
    }
}

impl DryRun {
    /// Decodes `record` and enriches its points as the pipeline would. `Err` when the
    /// decoder's source is unavailable (the schema registry): the pipeline would wait and
    /// decode the record again.
    pub async fn record(&self, record: &Record) -> Result<Preview, Unavailable> {
        let time = record_time(record);
        let Some(input) = Input::of_record(record, time) else {
            // A tombstone carries no point, and is no error.
            return Ok(Preview::default());
        };
        let mut lines = Vec::new();
        let mut rejected: Vec<String> = Vec::new();
        let enrichment = &self.enrichment;
        let mut sink = |decoded: Decoded<'_>| {
            // Lines are never forwarded as they came here (see the emitter below).
            let Decoded::Point(mut point, _) = decoded else {
                return;
            };
            if let Err(e) = enrichment.apply(&mut point, record, time) {
                rejected.push(e.to_string());
                return;
            }
            let mut out = Vec::new();
            match kinflux_line::encode_point(&point, Precision::Nanoseconds, &mut out) {
                Ok(()) => {
                    let text = String::from_utf8_lossy(&out);
                    lines.push(text.trim_end_matches('\n').to_owned());
                }
                Err(e) => rejected.push(format!("{}: {e}", point.measurement())),
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
            lines,
            dead_letter: failure.map(DeadLetterPreview::from),
        })
    }
}
