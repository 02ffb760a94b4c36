//! `kinflux check-config --connect`: reaches every server the configuration names, one
//! line per check: each bootstrap broker (connection, TLS, SASL), the topics, the
//! dead-letter topic, InfluxDB (ping; an empty write, which InfluxDB answers 204 only when
//! the database or bucket exists and the credentials may write to it) and the schema
//! registry.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use std::collections::BTreeMap;

use kinflux::config::{OnError, PipelineConfig};
use kinflux::influx::{Attempt, LineBatch, WriteError, Writer, WriterConfig};
use kinflux::kafka::ConsumerConfig;
use kinflux::kafka::fetch::FetchClient;
use kinflux::{Config, PipelineBuilder};

use crate::describe;

/// The longest any one check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(15);

/// The outcome of one check.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok(String),
    Failed(String),
}

/// The checks that ran, in order.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) checks: Vec<(String, Outcome)>,
}

impl Report {
    fn push(&mut self, what: impl Into<String>, outcome: Outcome) {
        let what = what.into();
        let line = match &outcome {
            Outcome::Ok(detail) => format!("ok    {what}: {detail}"),
            Outcome::Failed(why) => format!("FAIL  {what}: {why}"),
        };
        println!("{line}");
        self.checks.push((what, outcome));
    }

    /// Whether every check passed.
    pub(crate) fn passed(&self) -> bool {
        self.checks.iter().all(|(_, o)| matches!(o, Outcome::Ok(_)))
    }
}

/// Runs `f`, or fails after [`CHECK_TIMEOUT`].
async fn timed<T, E: Display>(f: impl Future<Output = Result<T, E>>) -> Result<T, String> {
    match tokio::time::timeout(CHECK_TIMEOUT, f).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
    }
}

/// Every check of `config`, printed as it completes: the brokers of each Kafka
/// connection once, each pipeline's topics, each target once, each registry once.
pub(crate) async fn check(config: &Config, builders: &[PipelineBuilder]) -> Report {
    let mut report = Report::default();
    let several = config.pipelines.len() > 1;
    let mut clusters: Vec<(String, Option<BTreeMap<String, i32>>)> = Vec::new();
    for p in &config.pipelines {
        let c = &p.kafka.consumer;
        // Pipelines that share a connection (brokers, TLS, SASL) check it once.
        let key = format!("{:?} {:?} {:?}", c.brokers, c.tls, c.sasl);
        let counts = match clusters.iter().find(|(k, _)| *k == key) {
            Some((_, counts)) => counts.clone(),
            None => {
                let counts = brokers(c, &mut report).await;
                clusters.push((key, counts.clone()));
                counts
            }
        };
        if let Some(counts) = counts {
            let prefix = if several {
                format!("pipeline {}: ", p.name)
            } else {
                String::new()
            };
            topics(p, &counts, &prefix, &mut report);
        }
    }
    let mut targets: Vec<(&str, &WriterConfig)> = Vec::new();
    for (name, writer) in builders.iter().flat_map(PipelineBuilder::writer_configs) {
        if !targets.iter().any(|(n, _)| *n == name) {
            targets.push((name, writer));
        }
    }
    for (name, writer) in targets {
        let described = match config.target(name) {
            Some(t) if config.targets.len() > 1 => {
                format!("{name} ({})", describe::target(&t.influx))
            }
            Some(t) => describe::target(&t.influx),
            None => name.to_owned(),
        };
        influx(writer, &described, &mut report).await;
    }
    let mut registries: Vec<&str> = Vec::new();
    for p in &config.pipelines {
        match p.decode.registry_url.as_deref() {
            Some(url) if !registries.contains(&url) => {
                registries.push(url);
                registry(p, &mut report).await;
            }
            _ => {}
        }
    }
    report
}

/// Each bootstrap broker of `c`; the topics of the first that answered.
async fn brokers(c: &ConsumerConfig, report: &mut Report) -> Option<BTreeMap<String, i32>> {
    let security = match (&c.tls, &c.sasl) {
        (Some(_), Some(s)) => format!("TLS, SASL {}", s.mechanism().name()),
        (None, Some(s)) => format!("SASL {}", s.mechanism().name()),
        (Some(_), None) => "TLS".to_owned(),
        (None, None) => "plaintext".to_owned(),
    };
    // The first broker that answered Metadata: its topics are checked below.
    let mut topics = None;
    for broker in &c.brokers {
        // Kafka answers ApiVersions before authentication: only a Metadata request
        // shows that the broker took the credentials.
        let answered = timed(async {
            let client = FetchClient::connect(
                std::slice::from_ref(broker),
                &c.client_id,
                c.tls.as_ref(),
                c.sasl.as_ref(),
            )
            .await?;
            client.partition_counts().await
        })
        .await;
        let outcome = match answered {
            Ok(counts) => {
                let detail = format!(
                    "connected ({security}), metadata of {} topic(s)",
                    counts.len()
                );
                topics.get_or_insert(counts);
                Outcome::Ok(detail)
            }
            Err(e) if e.ends_with("closed") => Outcome::Failed(format!(
                "{e} (a broker closes connections that do not bring the TLS or SASL its listener expects)"
            )),
            Err(e) => Outcome::Failed(e),
        };
        report.push(format!("kafka broker {broker}"), outcome);
    }
    topics
}

/// The topics (or the regex) and the dead-letter topic of pipeline `p`.
fn topics(p: &PipelineConfig, counts: &BTreeMap<String, i32>, prefix: &str, report: &mut Report) {
    let c = &p.kafka.consumer;
    match &c.topic_regex {
        Some(r) => {
            let matched: Vec<&str> = match regex::Regex::new(&format!("^(?:{r})$")) {
                Ok(re) => counts
                    .keys()
                    .filter(|t| re.is_match(t))
                    .map(String::as_str)
                    .collect(),
                Err(e) => {
                    report.push(
                        format!("{prefix}kafka topic_regex"),
                        Outcome::Failed(e.to_string()),
                    );
                    return;
                }
            };
            // No match yet is not an error: topics created later are picked up.
            report.push(
                format!("{prefix}kafka topic_regex {r}"),
                Outcome::Ok(format!(
                    "matches {} topic(s) now: {}",
                    matched.len(),
                    matched.join(", ")
                )),
            );
        }
        None => {
            for topic in &c.topics {
                let outcome = match counts.get(topic) {
                    Some(n) => Outcome::Ok(format!("exists, {n} partition(s)")),
                    None => Outcome::Failed("does not exist".into()),
                };
                report.push(format!("{prefix}kafka topic {topic}"), outcome);
            }
        }
    }
    let dl = &p.dead_letter;
    if let (OnError::DeadLetter, Some(topic)) = (&dl.on_error, &dl.topic) {
        let outcome = match (counts.get(topic), dl.create_topic) {
            (Some(n), _) => Outcome::Ok(format!("exists, {n} partition(s)")),
            (None, true) => Outcome::Ok("does not exist yet; create_topic creates it".into()),
            (None, false) => Outcome::Failed("does not exist, and create_topic is false".into()),
        };
        report.push(format!("{prefix}kafka dead-letter topic {topic}"), outcome);
    }
}

async fn influx(writer: &WriterConfig, target: &str, report: &mut Report) {
    let mut config = writer.clone();
    config.request_timeout = config.request_timeout.min(CHECK_TIMEOUT);
    let creates = config.create_database;
    let writer = match Writer::new(config) {
        Ok(w) => w,
        Err(e) => {
            report.push(format!("{target} ping"), Outcome::Failed(e.to_string()));
            return;
        }
    };
    match timed(writer.ping()).await {
        Ok(ping) => report.push(
            format!("{target} ping"),
            Outcome::Ok(format!(
                "InfluxDB {} answered in {} ms",
                ping.version.as_deref().unwrap_or("(version not given)"),
                ping.latency.as_millis()
            )),
        ),
        Err(e) => {
            report.push(format!("{target} ping"), Outcome::Failed(e));
            return;
        }
    }
    let empty = LineBatch::new(Vec::new());
    let outcome = match tokio::time::timeout(CHECK_TIMEOUT, writer.write_once(&empty)).await {
        Err(_) => Outcome::Failed(format!("no answer within {CHECK_TIMEOUT:?}")),
        Ok(Attempt::Written) => {
            Outcome::Ok("the database or bucket exists and the credentials may write".into())
        }
        Ok(Attempt::Permanent(WriteError::NotFound { message })) if creates => Outcome::Ok(
            format!("{message}; it is created at start (create_database / create_bucket)"),
        ),
        Ok(Attempt::Permanent(e)) => Outcome::Failed(e.to_string()),
        Ok(other) => Outcome::Failed(format!("unexpected answer to an empty write: {other:?}")),
    };
    report.push(format!("{target} write access"), outcome);
}

async fn registry(p: &PipelineConfig, report: &mut Report) {
    let client = match kinflux::decode::registry_client(&p.decode) {
        Ok(Some(client)) => client,
        Ok(None) => return,
        Err(e) => {
            report.push("schema registry", Outcome::Failed(e.to_string()));
            return;
        }
    };
    let url = p.decode.registry_url.as_deref().unwrap_or_default();
    let outcome = match timed(client.subjects()).await {
        Ok(subjects) => Outcome::Ok(format!("answered, {} subject(s)", subjects.len())),
        Err(e) => Outcome::Failed(e),
    };
    report.push(
        format!("schema registry {}", describe::redact_url(url)),
        outcome,
    );
}
