//! The pipeline: Kafka records in, InfluxDB points out, offsets committed only behind
//! what is written or dead-lettered.
//!
//! Following one record: the loop (`run.rs`, which owns the consumer) receives it and
//! hands it, in the chunk it was fetched in, to the lane holding its partition
//! (`lanes.rs`; each lane runs on a task of its own, `task.rs`, `lane.rs`), which holds
//! the chunk (`held.rs`) and takes its records in place: its ingest (`ingest.rs`)
//! decodes each into the open batches, one per target and per database its points are
//! routed to (`batches.rs`, `route.rs`); a full batch goes to the settlement
//! (`settlement.rs`), which writes it through its target's write slots and judges the
//! answer; refused lines are dead-lettered as the records they came from, which the lane
//! retains, chunk by chunk, until then (`retained.rs`); and the commit progress
//! ([`crate::progress`]) says which offset the loop may commit. Where a partition starts
//! is `start.rs`; the self-metrics writer is `self_metrics.rs`; several pipelines in one
//! process are a [`Bridge`] (`bridge.rs`).

mod batches;
mod bridge;
mod builder;
mod caught_up;
mod dry_run;
mod enrich;
mod from_config;
mod held;
mod ingest;
mod lane;
mod lanes;
mod retained;
mod route;
mod run;
mod self_metrics;
mod settlement;
mod start;
mod task;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use bridge::Bridge;
pub use builder::PipelineBuilder;
pub use dry_run::{DeadLetterPreview, DryRun, Preview, PreviewPoint};
pub(crate) use from_config::settings_of;
pub use from_config::skips_tls_verification;
pub use kinflux_influx::CancellationToken;
pub use route::Routing;
pub use settlement::ErrorClass;

use kinflux_batch::FlushPolicy;
use kinflux_kafka::{Consumer, ConsumerConfig, DeadLetterConfig, DeadLetterProducer};

use crate::config::{Config, ConfigError, InternalMetricsConfig, OnError};
use crate::decode::Decode;
use crate::metrics::Metrics;
use enrich::Enrichment;
use lanes::{LaneParts, Lanes};
use run::{Run, RunSettings};
use self_metrics::SelfMetrics;
use settlement::WritePool;

/// Why the pipeline stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// The configuration cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The consumer cannot go on.
    #[error("kafka: {0}")]
    Kafka(kinflux_kafka::Error),
    /// InfluxDB refuses every write (credentials, a missing database, a bad URL).
    #[error("influxdb: {0}")]
    Influx(kinflux_influx::WriteError),
    /// The dead-letter topic cannot be written.
    #[error("dead-letter topic: {0}")]
    DeadLetter(kinflux_kafka::Error),
    /// `on_error = "stop"` met a record that cannot be written.
    #[error("stopped at {topic}/{partition}@{offset}: {reason}")]
    Stopped {
        /// The record's topic.
        topic: String,
        /// The record's partition.
        partition: i32,
        /// The record's offset.
        offset: i64,
        /// Why it cannot be written.
        reason: String,
    },
    /// The metrics endpoint could not be served.
    #[error("metrics endpoint: {0}")]
    Metrics(std::io::Error),
    /// One pipeline of a [`Bridge`] failed (and the bridge stopped the others).
    #[error("pipeline {name}: {source}")]
    Pipeline {
        /// The pipeline's name.
        name: String,
        /// Why it failed.
        source: Box<PipelineError>,
    },
    /// A broken invariant of the pipeline itself.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Totals of a run that ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunSummary {
    /// Kafka records consumed.
    pub records_in: u64,
    /// Points InfluxDB stored (after merging).
    pub points_written: u64,
    /// Records sent to the dead-letter topic.
    pub dead_lettered: u64,
    /// Records dropped (`on_error = "drop"`).
    pub dropped: u64,
    /// How long the run took.
    pub elapsed: Duration,
}

/// A Kafka-to-InfluxDB pipeline, ready to run.
///
/// Made in code with [`Pipeline::builder`], or from a configuration file with
/// [`Pipeline::from_config`] (the crate's documentation runs one).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use kinflux::{CancellationToken, Config, Pipeline};
///
/// let config = Config::load("examples/bridge.toml")?;
/// let pipeline = Pipeline::from_config(&config)?;
/// let summary = pipeline.run(CancellationToken::new()).await?;
/// println!("{} points written", summary.points_written);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Pipeline {
    name: String,
    consumer: ConsumerConfig,
    targets: Vec<Target>,
    measurement: Option<String>,
    decoder: Arc<dyn Decode>,
    dead_letter: Option<DeadLetterConfig>,
    on_error: OnError,
    enrichment: Enrichment,
    batch: FlushPolicy,
    /// At most this many lanes, each on its own task.
    tasks: usize,
    settings: RunSettings,
    metrics_listen: Option<SocketAddr>,
    internal_metrics: Option<InternalMetricsConfig>,
    metrics: Arc<Metrics>,
    /// Cancels writes in flight; fired only when draining takes too long.
    abort: CancellationToken,
}

/// An InfluxDB target of a pipeline: its write pool (perhaps shared with other
/// pipelines) and how points are routed on it.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    name: String,
    pool: WritePool,
    routing: route::Routing,
    /// Create the writer's own database or bucket at start.
    create_database: bool,
}

impl Pipeline {
    /// A builder for a pipeline that reads with `consumer` and writes with `writer`.
    pub fn builder(
        consumer: ConsumerConfig,
        writer: kinflux_influx::WriterConfig,
    ) -> PipelineBuilder {
        PipelineBuilder::new(consumer, writer)
    }

    /// The pipeline a configuration file describes ([`PipelineBuilder::from_config`],
    /// built).
    /// A file with several pipelines is an error here: run those with [`Bridge`].
    pub fn from_config(config: &Config) -> Result<Pipeline, ConfigError> {
        PipelineBuilder::from_config(config)?.build()
    }

    /// The pipeline's name (`[[pipeline]] name`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The figures of this pipeline, to read while it runs
    /// ([`Metrics::snapshot`]).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Connects, then runs until `stop` is cancelled, then drains: flushes the batch,
    /// waits for writes in flight (up to the drain timeout), commits, and leaves the
    /// group.
    pub async fn run(self, stop: CancellationToken) -> Result<RunSummary, PipelineError> {
        let server = match self.metrics_listen {
            Some(addr) => Some(
                crate::metrics::serve(addr, self.metrics.clone(), stop.clone())
                    .await
                    .map_err(PipelineError::Metrics)?,
            ),
            None => None,
        };
        let started = std::time::Instant::now();
        let result = match self.connect(&stop).await {
            Ok(Some(run)) => run.run(stop).await,
            // Stopped before it joined the group: nothing was read, so nothing to drain.
            Ok(None) => Ok(RunSummary {
                records_in: 0,
                points_written: 0,
                dead_lettered: 0,
                dropped: 0,
                elapsed: started.elapsed(),
            }),
            Err(e) => Err(e),
        };
        if let Some(server) = server {
            server.abort();
        }
        result
    }

    /// The run, ready to go; `None` when `stop` came while waiting for InfluxDB.
    async fn connect(self, stop: &CancellationToken) -> Result<Option<Run>, PipelineError> {
        for target in &self.targets {
            if target.create_database {
                // Waits out an InfluxDB that is not up yet (retried as writes are); a stop
                // meanwhile ends the run cleanly before it joins the group.
                let writer = target.pool.writer();
                tokio::select! {
                    created = writer.create_database() => created.map_err(PipelineError::Influx)?,
                    () = stop.cancelled() => return Ok(None),
                }
            }
        }
        let targets: Vec<&str> = self.targets.iter().map(|t| t.name.as_str()).collect();
        tracing::info!(pipeline = %self.name, group = %self.consumer.group_id, ?targets, "pipeline connecting");
        let dead_letters = match self.dead_letter {
            Some(c) => Some(Arc::new(
                DeadLetterProducer::connect(c)
                    .await
                    .map_err(PipelineError::DeadLetter)?,
            )),
            None => None,
        };
        let self_metrics = self
            .internal_metrics
            .map(|c| SelfMetrics::new(c, self.consumer.group_id.clone()));
        let max_retained_bytes = self.consumer.max_buffered_bytes;
        let consumer = Consumer::connect(self.consumer)
            .await
            .map_err(PipelineError::Kafka)?;
        let pools: Vec<WritePool> = self.targets.iter().map(|t| t.pool.clone()).collect();
        let parts = LaneParts {
            decoder: self.decoder,
            enrichment: self.enrichment,
            batch: self.batch,
            targets: self.targets,
            measurement: self.measurement,
            pools: pools.clone(),
            dead_letters,
            on_error: self.on_error,
            abort: self.abort,
            max_retained_bytes,
            metrics: self.metrics.clone(),
            drain_timeout: self.settings.drain_timeout,
            membership: consumer.membership_probe(),
        };
        let lanes = Lanes::new(parts, self.tasks, stop);
        Ok(Some(Run::new(
            consumer,
            lanes,
            pools,
            self.settings,
            self.metrics,
            self_metrics,
        )))
    }
}
