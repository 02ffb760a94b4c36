//! The pipeline: Kafka records in, InfluxDB points out, offsets committed only behind
//! what is written or dead-lettered.

mod build;
mod enrich;
mod run;

use std::sync::Arc;
use std::time::Duration;

pub use kinflux_influx::CancellationToken;

use crate::config::{Config, ConfigError};
use crate::metrics::Metrics;

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
    /// Points InfluxDB acknowledged (after merging).
    pub points_written: u64,
    /// Records sent to the dead-letter topic.
    pub dead_lettered: u64,
    /// Records dropped (`on_error = "drop"`).
    pub dropped: u64,
    /// How long the run took.
    pub elapsed: Duration,
}

/// A configured Kafka-to-InfluxDB pipeline.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use kinflux::{CancellationToken, Config, Pipeline};
///
/// let config = Config::load("examples/bridge.toml")?;
/// let stop = CancellationToken::new();
/// let pipeline = Pipeline::new(config).until_caught_up(true);
/// let summary = pipeline.run(stop).await?;
/// println!("{} points written", summary.points_written);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Pipeline {
    config: Config,
    metrics: Arc<Metrics>,
    until_caught_up: bool,
    drain_timeout: Duration,
}

impl Pipeline {
    /// A pipeline for `config`.
    pub fn new(config: Config) -> Self {
        Pipeline {
            config,
            metrics: Arc::new(Metrics::default()),
            until_caught_up: false,
            drain_timeout: Duration::from_secs(30),
        }
    }

    /// Stop once every assigned partition is written up to the high watermark it had when
    /// it was assigned (for backfills, tests and the demo).
    pub fn until_caught_up(mut self, yes: bool) -> Self {
        self.until_caught_up = yes;
        self
    }

    /// How long a stop waits for writes in flight before it cancels them (default 30 s).
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// The counters of this pipeline, to read while it runs.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Runs until `stop` is cancelled, then drains: flushes the batch, waits for writes in
    /// flight (up to the drain timeout), commits, and leaves the group.
    pub async fn run(self, stop: CancellationToken) -> Result<RunSummary, PipelineError> {
        let server = match self.config.metrics.listen {
            Some(addr) => Some(
                crate::metrics::serve(addr, self.metrics.clone(), stop.clone())
                    .await
                    .map_err(PipelineError::Metrics)?,
            ),
            None => None,
        };
        let run = run::Run::start(
            &self.config,
            self.metrics.clone(),
            self.until_caught_up,
            self.drain_timeout,
        )
        .await?;
        let result = run.run(stop).await;
        if let Some(server) = server {
            server.abort();
        }
        result
    }
}
