//! A configuration file's settings as builder calls: `Pipeline::from_config` is a layer
//! over [`PipelineBuilder`].

use kinflux_batch::FlushPolicy;
use kinflux_influx::{RetryPolicy, Secret, WriterConfig};
use kinflux_kafka::DeadLetterConfig;

use super::PipelineBuilder;
use crate::config::{Config, ConfigError, InfluxApi};

impl PipelineBuilder {
    /// A builder set as `config` says, decoder included (its schema file is read here).
    /// Change what you need, then [`build`](Self::build).
    pub fn from_config(config: &Config) -> Result<PipelineBuilder, ConfigError> {
        let decoder = crate::decode::from_config(&config.decode)?;
        warn_insecure(config);
        Ok(settings_of(config).shared_decoder(decoder))
    }
}

/// TLS verification is off only where the file says so; say it loudly at start.
fn warn_insecure(config: &Config) {
    if skips_tls_verification(config) {
        tracing::warn!(
            "kafka.tls.insecure_skip_verify = true: the brokers' certificates are NOT \
             verified; anyone on the path can read and change the records"
        );
    }
}

/// Whether `[kafka.tls]` turns certificate verification off (InfluxDB and the
/// schema registry always verify).
pub fn skips_tls_verification(config: &Config) -> bool {
    config
        .kafka
        .consumer
        .tls
        .as_ref()
        .is_some_and(|t| t.insecure_skip_verify)
}

/// Every setting of `config` but the decoder.
pub(crate) fn settings_of(config: &Config) -> PipelineBuilder {
    let b = &config.batch;
    let mut builder = PipelineBuilder::new(config.kafka.consumer.clone(), writer_config(config))
        .on_error(config.dead_letter.on_error)
        .tags(config.tags.clone())
        .time_source(config.decode.time)
        .batch(FlushPolicy {
            max_points: b.max_points,
            max_bytes: b.max_bytes,
            max_age: b.max_age,
            sort_by_series: b.sort_by_series,
        })
        .start_at(config.kafka.start_at)
        .commit_interval(config.kafka.commit_interval);
    if let Some(dl) = dead_letter_config(config) {
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

fn writer_config(config: &Config) -> WriterConfig {
    let i = &config.influx;
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
    w.gzip_level = i.gzip.then_some(i.gzip_level);
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

fn dead_letter_config(config: &Config) -> Option<DeadLetterConfig> {
    let topic = config.dead_letter.topic.as_ref()?;
    let kafka = &config.kafka.consumer;
    let mut c = DeadLetterConfig::new(kafka.brokers.iter().cloned(), topic.clone());
    c.create_topic = config.dead_letter.create_topic;
    c.partitions = config.dead_letter.partitions;
    c.tls = kafka.tls.clone();
    c.sasl = kafka.sasl.clone();
    c.client_id = format!("{}-dead-letter", kafka.client_id);
    Some(c)
}
