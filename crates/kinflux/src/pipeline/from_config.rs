//! A configuration file's settings as builder calls: `Pipeline::from_config` is a layer
//! over [`PipelineBuilder`].

use kinflux_batch::FlushPolicy;
use kinflux_influx::{RetryPolicy, Secret, WriterConfig};
use kinflux_kafka::DeadLetterConfig;

use super::PipelineBuilder;
use super::builder::TargetSpec;
use super::route::{Routing, names_topic};
use crate::config::{Config, ConfigError, InfluxApi, InfluxConfig, PipelineConfig};

impl PipelineBuilder {
    /// A builder set as `config` says, decoder included (its schema file is read here).
    /// Change what you need, then [`build`](Self::build). A file with several pipelines
    /// is an error here: run those with [`crate::Bridge`].
    pub fn from_config(config: &Config) -> Result<PipelineBuilder, ConfigError> {
        Self::from_pipeline_config(config, config.single()?)
    }

    /// The builder of one of `config`'s pipelines, decoder included.
    pub fn from_pipeline_config(
        config: &Config,
        pipeline: &PipelineConfig,
    ) -> Result<PipelineBuilder, ConfigError> {
        let decoder =
            crate::decode::from_config(&pipeline.decode).map_err(|e| pipeline.within(e))?;
        warn_insecure(pipeline);
        Ok(settings_of(config, pipeline).shared_decoder(decoder))
    }
}

/// TLS verification is off only where the file says so; say it loudly at start.
fn warn_insecure(pipeline: &PipelineConfig) {
    if pipeline_skips_tls_verification(pipeline) {
        tracing::warn!(
            pipeline = %pipeline.name,
            "kafka.tls.insecure_skip_verify = true: the brokers' certificates are NOT \
             verified; anyone on the path can read and change the records"
        );
    }
}

/// Whether the `[kafka.tls]` of any of `config`'s pipelines turns certificate
/// verification off (InfluxDB and the schema registry always verify).
pub fn skips_tls_verification(config: &Config) -> bool {
    config.pipelines.iter().any(pipeline_skips_tls_verification)
}

fn pipeline_skips_tls_verification(pipeline: &PipelineConfig) -> bool {
    pipeline
        .kafka
        .consumer
        .tls
        .as_ref()
        .is_some_and(|t| t.insecure_skip_verify)
}

/// Every setting of `pipeline` but the decoder.
pub(crate) fn settings_of(config: &Config, pipeline: &PipelineConfig) -> PipelineBuilder {
    let b = &pipeline.batch;
    let targets: Vec<TargetSpec> = config
        .targets_of(pipeline)
        .map(|t| TargetSpec {
            name: t.name.clone(),
            key: t.key.clone(),
            writer: writer_config(&t.influx),
            routing: routing_of(&t.influx),
            pool: None,
        })
        .collect();
    let first = targets
        .first()
        .map(|t| t.writer.clone())
        .expect("the configuration gives every pipeline at least one target");
    let mut builder = PipelineBuilder::new(pipeline.kafka.consumer.clone(), first)
        .targets(targets)
        .name(pipeline.name.clone())
        .on_error(pipeline.dead_letter.on_error)
        .tags(pipeline.tags.clone())
        .time_source(pipeline.decode.time)
        .batch(FlushPolicy {
            max_points: b.max_points,
            max_bytes: b.max_bytes,
            max_age: b.max_age,
            sort_by_series: b.sort_by_series,
        })
        .start_at(pipeline.kafka.start_at)
        .commit_interval(pipeline.kafka.commit_interval);
    if let Some(tasks) = pipeline.tasks {
        builder = builder.tasks(tasks);
    }
    if let Some(m) = &pipeline.measurement {
        builder = builder.measurement(m.clone());
    }
    if let Some(dl) = dead_letter_config(pipeline) {
        builder = builder.dead_letter(dl);
    }
    if let Some(addr) = config.metrics.listen {
        builder = builder.metrics_listen(addr);
    }
    if let Some(internal) = &config.metrics.internal {
        builder = builder.internal_metrics(internal.clone());
    }
    builder
}

/// How a target routes points, from its `[influx]` keys.
pub(crate) fn routing_of(i: &InfluxConfig) -> Routing {
    let v2 = i.api == InfluxApi::V2;
    let destination = if v2 { &i.bucket } else { &i.database };
    let (tag, exclude) = if v2 {
        (&i.bucket_tag, i.exclude_bucket_tag)
    } else {
        (&i.database_tag, i.exclude_database_tag)
    };
    let templated = |v: &Option<String>| v.as_deref().filter(|d| names_topic(d)).map(str::to_owned);
    Routing {
        destination: templated(destination),
        destination_tag: tag.clone(),
        exclude_destination_tag: exclude,
        retention_policy: templated(&i.retention_policy),
        retention_policy_tag: i.retention_policy_tag.clone(),
        exclude_retention_policy_tag: i.exclude_retention_policy_tag,
    }
}

pub(crate) fn writer_config(i: &InfluxConfig) -> WriterConfig {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let mut w = match i.api {
        InfluxApi::V1 => {
            let mut w = WriterConfig::v1(&i.url, text(&i.database));
            if let (Some(user), Some(password)) = (&i.username, &i.password) {
                w = w.with_credentials(user.clone(), Secret::new(password.clone()));
            }
            if let Some(rp) = &i.retention_policy {
                w = w.with_retention_policy(rp.clone());
            }
            w
        }
        InfluxApi::V2 => WriterConfig::v2(
            &i.url,
            text(&i.org),
            text(&i.bucket),
            Secret::new(text(&i.token)),
        ),
        InfluxApi::V3 => {
            WriterConfig::v3(&i.url, text(&i.database), i.token.clone().map(Secret::new))
        }
    };
    w.gzip_level = i.gzip.applies_to(&i.url).then_some(i.gzip_level);
    w.request_timeout = i.timeout;
    w.max_in_flight = i.concurrency;
    // One writer switch: v1 creates the database, v2 the bucket.
    w.create_database = match i.api {
        InfluxApi::V2 => i.create_bucket,
        _ => i.create_database,
    };
    w.bucket_retention = i.bucket_retention;
    w.ca_file = i.ca_file.clone();
    w.retry = RetryPolicy {
        max_attempts: i.max_retries,
        max_elapsed: i.max_retry_time,
        ..RetryPolicy::default()
    };
    w
}

fn dead_letter_config(pipeline: &PipelineConfig) -> Option<DeadLetterConfig> {
    let topic = pipeline.dead_letter.topic.as_ref()?;
    let kafka = &pipeline.kafka.consumer;
    let mut c = DeadLetterConfig::new(kafka.brokers.iter().cloned(), topic.clone());
    c.create_topic = pipeline.dead_letter.create_topic;
    c.partitions = pipeline.dead_letter.partitions;
    c.tls = kafka.tls.clone();
    c.sasl = kafka.sasl.clone();
    c.client_id = format!("{}-dead-letter", kafka.client_id);
    Some(c)
}
