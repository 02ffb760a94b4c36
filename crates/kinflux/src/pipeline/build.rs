//! Turning the configuration into the pipeline's parts.

use kinflux_avro::{DecodePlan, RegistryAuth, RegistryClient, RegistryConfig, SchemaDir};
use kinflux_influx::{RetryPolicy, Secret, Writer, WriterConfig};
use kinflux_kafka::DeadLetterConfig;
use kinflux_series::Precision;

use super::PipelineError;
use crate::config::{Config, Format, Framing, InfluxApi};
use crate::decode::{AvroDecoder, Decoder, JsonDecoder, Schemas};

pub(crate) fn writer_config(config: &Config) -> WriterConfig {
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
    // Batches carry nanosecond timestamps: the batcher writes them in this precision.
    w.precision = Precision::Nanoseconds;
    w.gzip_level = i.gzip.then_some(i.gzip_level);
    w.request_timeout = i.timeout;
    w.max_in_flight = i.concurrency;
    w.create_database = i.create_database;
    w.ca_file = i.ca_file.clone();
    w.max_body_bytes = w
        .max_body_bytes
        .max(config.batch.max_bytes.saturating_add(1024));
    w.retry = RetryPolicy {
        max_attempts: i.max_retries,
        max_elapsed: i.max_retry_time,
        ..RetryPolicy::default()
    };
    w
}

pub(crate) fn writer(
    config: &Config,
    shutdown: kinflux_influx::CancellationToken,
) -> Result<Writer, PipelineError> {
    Writer::with_shutdown(writer_config(config), shutdown).map_err(PipelineError::Influx)
}

pub(crate) fn dead_letter_config(config: &Config) -> Option<DeadLetterConfig> {
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

pub(crate) fn decoder(config: &Config) -> Result<Decoder, PipelineError> {
    let d = &config.decode;
    let bad = |key: &str, message: String| {
        PipelineError::Config(crate::config::ConfigError::invalid(key, message))
    };
    match d.format {
        Format::Line => Ok(Decoder::Line(kinflux_line::ParseOptions {
            precision: d.precision,
            default_time: None,
        })),
        Format::Json => {
            let mapping = d
                .mapping
                .clone()
                .ok_or_else(|| bad("decode.mapping", "required".into()))?;
            JsonDecoder::new(mapping)
                .map(Decoder::Json)
                .map_err(|e| bad("decode.mapping.measurement", e.to_string()))
        }
        Format::Avro => {
            let mapping = d
                .mapping
                .clone()
                .ok_or_else(|| bad("decode.mapping", "required".into()))?;
            let read_schema = || -> Result<kinflux_avro::apache_avro::Schema, PipelineError> {
                let path = d
                    .schema_file
                    .as_ref()
                    .ok_or_else(|| bad("decode.schema_file", "required".into()))?;
                let text = std::fs::read_to_string(path)
                    .map_err(|e| bad("decode.schema_file", format!("{}: {e}", path.display())))?;
                kinflux_avro::apache_avro::Schema::parse_str(&text)
                    .map_err(|e| bad("decode.schema_file", e.to_string()))
            };
            let avro = match d.framing {
                Framing::Confluent => {
                    let schemas = match (&d.registry_url, &d.schema_dir) {
                        (Some(url), _) => {
                            let mut rc = RegistryConfig::new(url.clone());
                            rc.auth = match (
                                &d.registry_username,
                                &d.registry_password,
                                &d.registry_token,
                            ) {
                                (Some(u), Some(p), _) => Some(RegistryAuth::Basic {
                                    username: u.clone(),
                                    password: p.clone(),
                                }),
                                (_, _, Some(t)) => Some(RegistryAuth::Bearer(t.clone())),
                                _ => None,
                            };
                            Schemas::Registry(
                                RegistryClient::new(rc)
                                    .map_err(|e| bad("decode.registry_url", e.to_string()))?,
                            )
                        }
                        (None, Some(dir)) => Schemas::Dir(SchemaDir::new(dir.clone())),
                        (None, None) => {
                            return Err(bad(
                                "decode.registry_url",
                                "set `registry_url` or `schema_dir`".into(),
                            ));
                        }
                    };
                    AvroDecoder::confluent(schemas, mapping)
                }
                Framing::SingleObject => {
                    let schema = read_schema()?;
                    AvroDecoder::SingleObject(kinflux_avro::SingleObjectDecoder::new(
                        [&schema],
                        &mapping,
                    ))
                }
                Framing::Plain => {
                    let schema = read_schema()?;
                    AvroDecoder::Plain(
                        DecodePlan::compile(&schema, &mapping)
                            .map_err(|e| bad("decode.mapping", e.to_string()))?,
                    )
                }
            };
            Ok(Decoder::Avro(avro))
        }
    }
}
