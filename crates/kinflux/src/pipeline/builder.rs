//! Building a pipeline in code: the consumer's and the writer's configurations, then
//! whatever else the configuration file can set, checked in [`PipelineBuilder::build`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kinflux_batch::FlushPolicy;
use kinflux_influx::{Api, CancellationToken, Writer, WriterConfig};
use kinflux_kafka::{AutoOffsetReset, ConsumerConfig, DeadLetterConfig};
use kinflux_series::Precision;

use super::enrich::Enrichment;
use super::route::{Routing, names_topic};
use super::run::RunSettings;
use super::settlement::WritePool;
use super::start::Backfill;
use super::{Pipeline, Target};
use crate::config::{ConfigError, InternalMetricsConfig, OnError, StartAt, TagsConfig, TimeSource};
use crate::decode::{Decode, LineDecoder};
use crate::metrics::Metrics;

/// Sets up a [`Pipeline`]; made by [`Pipeline::builder`].
///
/// Every setting has the default the configuration file documents
/// (`examples/bridge.toml`), except that a dead-letter topic must be given with
/// [`dead_letter`](Self::dead_letter), or another [`on_error`](Self::on_error) chosen.
/// [`build`](Self::build) checks the whole, and names the configuration key at fault.
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct PipelineBuilder {
    consumer: ConsumerConfig,
    /// The first is the writer of [`Pipeline::builder`]; at least one.
    targets: Vec<TargetSpec>,
    measurement: Option<String>,
    name: String,
    decoder: Arc<dyn Decode>,
    dead_letter: Option<DeadLetterConfig>,
    on_error: OnError,
    tags: TagsConfig,
    time: TimeSource,
    batch: FlushPolicy,
    start_at: StartAt,
    commit_interval: Duration,
    metrics_listen: Option<SocketAddr>,
    internal_metrics: Option<InternalMetricsConfig>,
    until_caught_up: bool,
    drain_timeout: Duration,
    tasks: Option<usize>,
    shared_metrics: Option<Arc<Metrics>>,
    abort: Option<CancellationToken>,
}

/// A target as the builder holds it: its writer's configuration, or the write pool a
/// [`crate::Bridge`] shares among the pipelines that write to it.
#[derive(Debug)]
pub(crate) struct TargetSpec {
    /// The configuration file's name of the target, for logs.
    pub(crate) name: String,
    /// The configuration file's key of the target (`influx`, `influx.<name>`), for errors.
    pub(crate) key: String,
    pub(crate) writer: WriterConfig,
    pub(crate) routing: Routing,
    pub(crate) pool: Option<WritePool>,
}

impl PipelineBuilder {
    pub(super) fn new(consumer: ConsumerConfig, writer: WriterConfig) -> Self {
        PipelineBuilder {
            consumer,
            targets: vec![TargetSpec {
                name: crate::config::SINGLE_TARGET.to_owned(),
                key: "influx".to_owned(),
                writer,
                routing: Routing::default(),
                pool: None,
            }],
            measurement: None,
            name: crate::config::SINGLE_PIPELINE.to_owned(),
            decoder: Arc::new(LineDecoder::new(Precision::Nanoseconds)),
            dead_letter: None,
            on_error: OnError::DeadLetter,
            tags: TagsConfig::default(),
            time: TimeSource::Data,
            batch: FlushPolicy {
                max_points: 5_000,
                max_bytes: 4 << 20,
                max_age: Duration::from_secs(1),
                sort_by_series: true,
            },
            start_at: StartAt::Committed,
            commit_interval: Duration::from_secs(5),
            metrics_listen: None,
            internal_metrics: None,
            until_caught_up: false,
            drain_timeout: Duration::from_secs(30),
            tasks: None,
            shared_metrics: None,
            abort: None,
        }
    }

    /// How the writer of [`Pipeline::builder`] chooses each point's database, bucket or
    /// retention policy (default: all go to the writer's own).
    pub fn routing(mut self, routing: Routing) -> Self {
        if let Some(first) = self.targets.first_mut() {
            first.routing = routing;
        }
        self
    }

    /// Also writes every point to this InfluxDB, routed as `routing` says. An offset is
    /// committed only when every target holds its records (or they are dead-lettered).
    pub fn also_write_to(mut self, writer: WriterConfig, routing: Routing) -> Self {
        let n = self.targets.len();
        self.targets.push(TargetSpec {
            name: format!("target{n}"),
            key: "influx".to_owned(),
            writer,
            routing,
            pool: None,
        });
        self
    }

    /// Sets every point's measurement, replacing the data's; `"${topic}"` in it is the
    /// record's topic.
    pub fn measurement(mut self, measurement: impl Into<String>) -> Self {
        self.measurement = Some(measurement.into());
        self
    }

    /// The pipeline's name, in its logs (default `default`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Replaces the targets (a configuration file's, some with pools shared by a bridge).
    pub(crate) fn targets(mut self, targets: Vec<TargetSpec>) -> Self {
        if !targets.is_empty() {
            self.targets = targets;
        }
        self
    }

    pub(crate) fn without_metrics_listen(mut self) -> Self {
        self.metrics_listen = None;
        self
    }

    pub(crate) fn without_internal_metrics(mut self) -> Self {
        self.internal_metrics = None;
        self
    }

    /// Counts into `metrics` (shared by the pipelines of a bridge) instead of its own.
    pub(crate) fn shared_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.shared_metrics = Some(metrics);
        self
    }

    /// Cancels writes in flight with `abort` (shared by the pipelines of a bridge, whose
    /// writers they share) when draining takes too long.
    pub(crate) fn shared_abort(mut self, abort: CancellationToken) -> Self {
        self.abort = Some(abort);
        self
    }

    /// How record values become points (default: line protocol with nanosecond
    /// timestamps). An `Arc` of a decoder is a decoder too, to share one.
    pub fn decoder(mut self, decoder: impl Decode) -> Self {
        self.decoder = Arc::new(decoder);
        self
    }

    pub(crate) fn shared_decoder(mut self, decoder: Arc<dyn Decode>) -> Self {
        self.decoder = decoder;
        self
    }

    pub(super) fn decoder_shared(&self) -> Arc<dyn Decode> {
        Arc::clone(&self.decoder)
    }

    pub(super) fn enrichment(&self) -> Enrichment {
        Enrichment::new(self.tags.clone(), self.time)
    }

    /// The consumer's configuration: brokers, topics, group, TLS and SASL.
    pub fn consumer_config(&self) -> &ConsumerConfig {
        &self.consumer
    }

    /// Each target's name and writer configuration (URL, API, database or bucket,
    /// credentials), in order.
    pub fn writer_configs(&self) -> impl Iterator<Item = (&str, &WriterConfig)> {
        self.targets.iter().map(|t| (t.name.as_str(), &t.writer))
    }

    /// Each target's name, writer configuration and routing, for a dry run.
    pub(super) fn target_specs(&self) -> impl Iterator<Item = (&str, &WriterConfig, &Routing)> {
        self.targets
            .iter()
            .map(|t| (t.name.as_str(), &t.writer, &t.routing))
    }

    /// The measurement that replaces every point's (`${topic}`: the record's topic).
    pub(super) fn measurement_template(&self) -> Option<&str> {
        self.measurement.as_deref()
    }

    /// The dead-letter producer's configuration, when records go to a dead-letter topic.
    pub fn dead_letter_config(&self) -> Option<&DeadLetterConfig> {
        self.dead_letter.as_ref()
    }

    /// The topic records that cannot be written go to (with `on_error` = dead-letter, the
    /// default).
    pub fn dead_letter(mut self, config: DeadLetterConfig) -> Self {
        self.dead_letter = Some(config);
        self
    }

    /// What happens to a record that cannot be decoded or that InfluxDB refuses.
    pub fn on_error(mut self, on_error: OnError) -> Self {
        self.on_error = on_error;
        self
    }

    /// Tags added to every point (`[tags]`).
    pub fn tags(mut self, tags: TagsConfig) -> Self {
        self.tags = tags;
        self
    }

    /// Where a point's time comes from (`decode.time`).
    pub fn time_source(mut self, time: TimeSource) -> Self {
        self.time = time;
        self
    }

    /// When a batch is written (`[batch]`).
    pub fn batch(mut self, policy: FlushPolicy) -> Self {
        self.batch = policy;
        self
    }

    /// Where each partition starts (`kafka.start_at`): `Earliest` and `Latest` apply
    /// where the group has no committed offset; an offset or a time is a backfill, applied
    /// once per group.
    pub fn start_at(mut self, start_at: StartAt) -> Self {
        self.start_at = start_at;
        self
    }

    /// How often offsets are committed (`kafka.commit_interval`; also on revoke and
    /// shutdown).
    pub fn commit_interval(mut self, interval: Duration) -> Self {
        self.commit_interval = interval;
        self
    }

    /// Serve `/metrics` and `/health` here (`metrics.listen`).
    pub fn metrics_listen(mut self, addr: SocketAddr) -> Self {
        self.metrics_listen = Some(addr);
        self
    }

    /// Also write the pipeline's own figures to InfluxDB (`[metrics.internal]`).
    pub fn internal_metrics(mut self, config: InternalMetricsConfig) -> Self {
        self.internal_metrics = Some(config);
        self
    }

    /// Stop once every assigned partition is written up to the high watermark it had when
    /// it was assigned (for backfills, tests and the demo). An end offset that is not
    /// known never counts as reached: the run goes on while it holds no partition (after a
    /// rebalance took them all), while a partition's end could not be read, and while an
    /// end of 0 is not confirmed by a fetch.
    pub fn until_caught_up(mut self, yes: bool) -> Self {
        self.until_caught_up = yes;
        self
    }

    /// How long a stop waits for writes in flight before it gives up on them (default
    /// 30 s); they are read again after a restart.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// How many tasks decode and batch side by side (`tasks`): the partitions are spread
    /// over them, each with its own decoder state, batches and commit bookkeeping,
    /// sharing the write slots, the dead-letter producer and the group membership.
    /// Default: the number of cores. Never more run than partitions are assigned.
    pub fn tasks(mut self, tasks: usize) -> Self {
        self.tasks = Some(tasks);
        self
    }

    /// Checks every setting, and what one setting requires of another, without touching
    /// the network. Errors name the configuration file's key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_consumer(&self.consumer)?;
        for (key, value) in &self.tags.static_tags {
            kinflux_series::Tag::new(key.as_str(), value.as_str())
                .map_err(|e| ConfigError::invalid(format!("tags.{key}"), e.to_string()))?;
        }
        if self.batch.max_points == 0 {
            return Err(ConfigError::invalid(
                "batch.max_points",
                "must be at least 1",
            ));
        }
        if self.batch.max_bytes < 1024 {
            return Err(ConfigError::invalid(
                "batch.max_bytes",
                "must be at least 1024",
            ));
        }
        for target in &self.targets {
            validate_writer(&target.writer, &target.key)?;
            validate_routing(target)?;
        }
        if let Some(m) = &self.measurement {
            let sample = super::route::fill(m, "topic");
            kinflux_series::Measurement::new(sample.as_str())
                .map_err(|e| ConfigError::invalid("measurement", e.to_string()))?;
        }
        if self.on_error == OnError::DeadLetter && self.dead_letter.is_none() {
            return Err(ConfigError::invalid(
                "dead_letter.topic",
                "required with on_error = \"dead-letter\" (the default); or set on_error = \"drop\" or \"stop\"",
            ));
        }
        if let Some(dl) = &self.dead_letter {
            if dl.topic.is_empty() {
                return Err(ConfigError::invalid(
                    "dead_letter.topic",
                    "must not be empty",
                ));
            }
            if dl.partitions < 1 {
                return Err(ConfigError::invalid(
                    "dead_letter.partitions",
                    "must be at least 1",
                ));
            }
        }
        if let StartAt::Offset(o) = self.start_at {
            if o < 0 {
                return Err(ConfigError::invalid(
                    "kafka.start_at",
                    format!("offset {o} is negative"),
                ));
            }
        }
        if self.tasks == Some(0) {
            return Err(ConfigError::invalid("tasks", "must be at least 1"));
        }
        if self.commit_interval.is_zero() {
            return Err(ConfigError::invalid(
                "kafka.commit_interval",
                "must be longer than 0",
            ));
        }
        if self
            .internal_metrics
            .as_ref()
            .is_some_and(|m| m.interval.is_zero())
        {
            return Err(ConfigError::invalid(
                "metrics.internal.interval",
                "must be longer than 0",
            ));
        }
        Ok(())
    }

    /// Checks the settings ([`validate`](Self::validate)) and builds the pipeline. Nothing
    /// connects yet: [`Pipeline::run`] does.
    pub fn build(self) -> Result<Pipeline, ConfigError> {
        self.validate()?;
        let PipelineBuilder {
            mut consumer,
            targets,
            measurement,
            name,
            decoder,
            dead_letter,
            on_error,
            tags,
            time,
            batch,
            start_at,
            commit_interval,
            metrics_listen,
            internal_metrics,
            until_caught_up,
            drain_timeout,
            tasks,
            shared_metrics,
            abort,
        } = self;
        match start_at {
            StartAt::Earliest => consumer.auto_offset_reset = AutoOffsetReset::Earliest,
            StartAt::Latest => consumer.auto_offset_reset = AutoOffsetReset::Latest,
            _ => {}
        }
        let abort = abort.unwrap_or_default();
        let targets = targets
            .into_iter()
            .map(|t| {
                let create_database = t.writer.create_database
                    && !t.routing.destination.as_deref().is_some_and(names_topic);
                let pool = match t.pool {
                    Some(pool) => pool,
                    None => pool_of(&t.name, t.writer, batch.max_bytes, abort.clone())
                        .map_err(|e| ConfigError::invalid(t.key.clone(), e.to_string()))?,
                };
                Ok(Target {
                    name: t.name,
                    pool,
                    routing: t.routing,
                    create_database,
                })
            })
            .collect::<Result<Vec<Target>, ConfigError>>()?;
        let dead_letter = match on_error {
            OnError::DeadLetter => dead_letter,
            _ => None,
        };
        let group = consumer.group_id.clone();
        Ok(Pipeline {
            name,
            consumer,
            targets,
            measurement,
            decoder,
            dead_letter,
            on_error,
            enrichment: Enrichment::new(tags, time),
            batch,
            tasks: tasks.unwrap_or_else(default_tasks),
            settings: RunSettings {
                commit_interval,
                drain_timeout,
                until_caught_up,
                backfill: Backfill::new(start_at),
                group,
            },
            metrics_listen,
            internal_metrics,
            metrics: shared_metrics.unwrap_or_default(),
            abort,
        })
    }
}

/// The writer of `writer` and its write slots: batches carry nanosecond timestamps, and
/// one batch (up to `max_batch_bytes`) fits one request.
pub(crate) fn pool_of(
    name: &str,
    mut writer: WriterConfig,
    max_batch_bytes: usize,
    abort: CancellationToken,
) -> Result<WritePool, kinflux_influx::WriteError> {
    writer.precision = Precision::Nanoseconds;
    writer.max_body_bytes = writer
        .max_body_bytes
        .max(max_batch_bytes.saturating_add(1024));
    let concurrency = writer.max_in_flight;
    let writer = Writer::with_shutdown(writer, abort)?;
    Ok(WritePool::new(name, writer, concurrency))
}

fn validate_routing(t: &TargetSpec) -> Result<(), ConfigError> {
    let r = &t.routing;
    let v1 = matches!(t.writer.api, Api::V1 { .. });
    if !v1 && (r.retention_policy.is_some() || r.retention_policy_tag.is_some()) {
        let key = if r.retention_policy_tag.is_some() {
            "retention_policy_tag"
        } else {
            "retention_policy"
        };
        return Err(ConfigError::invalid(
            format!("{}.{key}", t.key),
            "only with api = \"v1\"",
        ));
    }
    Ok(())
}

fn validate_consumer(k: &ConsumerConfig) -> Result<(), ConfigError> {
    if k.brokers.is_empty() {
        return Err(ConfigError::invalid(
            "kafka.brokers",
            "list at least one broker",
        ));
    }
    if k.topics.is_empty() && k.topic_regex.is_none() {
        return Err(ConfigError::invalid(
            "kafka.topics",
            "set `topics` or `topic_regex`",
        ));
    }
    if let Some(re) = &k.topic_regex {
        regex::Regex::new(re)
            .map_err(|e| ConfigError::invalid("kafka.topic_regex", e.to_string()))?;
    }
    if k.group_id.is_empty() {
        return Err(ConfigError::invalid("kafka.group_id", "must not be empty"));
    }
    if k.heartbeat_interval >= k.session_timeout {
        return Err(ConfigError::invalid(
            "kafka.heartbeat_interval",
            "must be shorter than `session_timeout`",
        ));
    }
    if k.fetch_max_bytes <= 0 {
        return Err(ConfigError::invalid(
            "kafka.fetch_max_bytes",
            "must be positive",
        ));
    }
    if k.assignment_strategies.is_empty() {
        return Err(ConfigError::invalid(
            "kafka.assignment_strategies",
            "list at least one",
        ));
    }
    Ok(())
}

fn validate_writer(w: &WriterConfig, target: &str) -> Result<(), ConfigError> {
    if !(w.url.starts_with("http://") || w.url.starts_with("https://")) {
        return Err(ConfigError::invalid(
            format!("{target}.url"),
            "must start with http:// or https://",
        ));
    }
    let need = |key: &str, api: &str, value: &str| {
        if value.is_empty() {
            Err(ConfigError::invalid(
                format!("{target}.{key}"),
                format!("required with api = \"{api}\""),
            ))
        } else {
            Ok(())
        }
    };
    match &w.api {
        Api::V1 { database, .. } => need("database", "v1", database)?,
        Api::V2 { org, bucket, token } => {
            need("org", "v2", org)?;
            need("bucket", "v2", bucket)?;
            need("token", "v2", token.expose())?;
        }
        Api::V3 { database, .. } => need("database", "v3", database)?,
        _ => {}
    }
    if w.gzip_level.is_some_and(|l| l > 9) {
        return Err(ConfigError::invalid(
            format!("{target}.gzip_level"),
            "must be 0 to 9",
        ));
    }
    if w.max_in_flight == 0 {
        return Err(ConfigError::invalid(
            format!("{target}.concurrency"),
            "must be at least 1",
        ));
    }
    Ok(())
}

/// The number of cores (1 when it cannot be read).
fn default_tasks() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}
