//! Helpers shared by the pipeline's integration tests: where the real servers are, unique
//! names, producing records with rskafka, and querying InfluxDB.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::client::{Client as KafkaClient, ClientBuilder};
use rskafka::record::Record as RsRecord;

fn required(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Some(v),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{var} is not set but CI=true: start the servers (scripts/services start)");
            }
            eprintln!("SKIPPED (no {var}; run scripts/services start and export its status)");
            None
        }
    }
}

/// `(KINFLUX_KAFKA_BROKERS, KINFLUX_INFLUX_URL)`, or `None` (skip loudly) outside CI.
pub fn servers() -> Option<(String, String)> {
    Some((
        required("KINFLUX_KAFKA_BROKERS")?,
        required("KINFLUX_INFLUX_URL")?,
    ))
}

/// A name no other test run uses (letters, digits and underscores: valid everywhere).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{:012x}", rand::random::<u64>() >> 16)
}

pub async fn kafka(brokers: &str) -> KafkaClient {
    ClientBuilder::new(brokers.split(',').map(str::to_owned).collect())
        .build()
        .await
        .expect("rskafka client")
}

pub async fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    kafka(brokers)
        .await
        .controller_client()
        .expect("controller")
        .create_topic(topic, partitions, 1, 5_000)
        .await
        .expect("create topic");
}

/// Produces `values` to one partition, in chunks, with record timestamps
/// `base_ms + index`.
pub async fn produce(
    brokers: &str,
    topic: &str,
    partition: i32,
    values: Vec<Vec<u8>>,
    base_ms: i64,
) {
    let client = kafka(brokers).await;
    let pc = client
        .partition_client(topic, partition, UnknownTopicHandling::Retry)
        .await
        .expect("partition client");
    let mut index = 0i64;
    let mut values = values.into_iter().peekable();
    while values.peek().is_some() {
        let chunk: Vec<RsRecord> = values
            .by_ref()
            .take(2_000)
            .map(|v| {
                index += 1;
                RsRecord {
                    key: Some(format!("k{index}").into_bytes()),
                    value: Some(v),
                    headers: Default::default(),
                    timestamp: rskafka::chrono::DateTime::from_timestamp_millis(base_ms + index)
                        .expect("timestamp in range"),
                }
            })
            .collect();
        pc.produce(chunk, Compression::NoCompression)
            .await
            .expect("produce");
    }
}

/// Every record of a topic's partition, read with rskafka from the start.
pub async fn read_all(
    brokers: &str,
    topic: &str,
    partition: i32,
) -> Vec<rskafka::record::RecordAndOffset> {
    let client = kafka(brokers).await;
    let pc = client
        .partition_client(topic, partition, UnknownTopicHandling::Retry)
        .await
        .expect("partition client");
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let (records, high) = pc
            .fetch_records(offset, 1..10_000_000, 500)
            .await
            .expect("fetch");
        if let Some(last) = records.last() {
            offset = last.offset + 1;
        }
        out.extend(records);
        if offset >= high {
            return out;
        }
    }
}

/// `POST /query` with `epoch=ns`; the JSON answer.
pub async fn query(url: &str, db: &str, q: &str) -> serde_json::Value {
    let form = format!(
        "db={}&epoch=ns&q={}",
        db,
        q.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' =>
                    (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    );
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = Request::post(format!("{url}/query"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(form)))
        .expect("request");
    let response = client.request(request).await.expect("query InfluxDB");
    let body = response
        .into_body()
        .collect()
        .await
        .expect("answer")
        .to_bytes();
    serde_json::from_slice(&body).expect("JSON answer")
}

/// The rows of the first series of an answer.
pub fn rows(answer: &serde_json::Value) -> Vec<Vec<serde_json::Value>> {
    answer
        .pointer("/results/0/series/0/values")
        .and_then(|v| v.as_array())
        .map(|rows| {
            rows.iter()
                .map(|r| r.as_array().cloned().unwrap_or_default())
                .collect()
        })
        .unwrap_or_default()
}

/// `SELECT count(field) FROM measurement`.
pub async fn count(url: &str, db: &str, measurement: &str, field: &str) -> u64 {
    let answer = query(
        url,
        db,
        &format!("SELECT count(\"{field}\") FROM \"{measurement}\""),
    )
    .await;
    rows(&answer)
        .first()
        .and_then(|r| r.get(1))
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0)
}

/// A bridge configuration for tests: the real servers, a fresh group, `create_database`.
pub fn config_toml(brokers: &str, influx: &str, topic: &str, db: &str, extra: &str) -> String {
    format!(
        r#"
[kafka]
brokers = ["{brokers}"]
topics = ["{topic}"]
group_id = "{topic}_group"
auto_offset_reset = "earliest"
session_timeout = "10s"
heartbeat_interval = "1s"
rebalance_timeout = "10s"
fetch_max_wait = "100ms"
commit_interval = "500ms"

[influx]
url = "{influx}"
database = "{db}"
create_database = true

[dead_letter]
topic = "{topic}_dlq"

{extra}
"#
    )
}

/// Runs a pipeline for `config` until caught up, with a generous limit.
pub async fn run_until_caught_up(config: &str) -> kinflux::RunSummary {
    let config = kinflux::Config::from_toml(config).expect("valid test config");
    let pipeline = kinflux::PipelineBuilder::from_config(&config)
        .expect("pipeline settings")
        .until_caught_up(true)
        .build()
        .expect("valid pipeline");
    tokio::time::timeout(
        Duration::from_secs(300),
        pipeline.run(kinflux::CancellationToken::new()),
    )
    .await
    .expect("pipeline caught up within 5 minutes")
    .expect("pipeline ran without error")
}

/// A fresh directory of `<id>.avsc` files, for Confluent-framed test records.
pub fn schema_dir(schemas: &[(u32, &str)]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(unique("schemas"));
    std::fs::create_dir_all(&dir).expect("schema dir");
    for (id, text) in schemas {
        std::fs::write(dir.join(format!("{id}.avsc")), text).expect("schema file");
    }
    dir
}

/// The `[decode]` section for Confluent-framed Avro from `dir`: a constant measurement,
/// one tag, and the time from the `time` field.
pub fn avro_decode_toml(dir: &std::path::Path, measurement: &str, tag: &str) -> String {
    format!(
        r#"
[decode]
format = "avro"
schema_dir = "{}"
[decode.mapping]
measurement = {{ constant = "{measurement}" }}
tags = ["{tag}"]
timestamp = {{ field = "time" }}
"#,
        dir.display()
    )
}

/// A port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("local address")
        .port()
}

/// An HTTP server on 127.0.0.1 that answers every request with `503 Service
/// Unavailable`: a schema registry (or InfluxDB) in an outage. Returns its base URL and
/// the count of requests it answered.
pub async fn unavailable_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let mut seen = Vec::new();
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                    if seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        seen.clear();
                        counter.fetch_add(1, Ordering::SeqCst);
                        let answer = "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: 44\r\n\r\n{\"error_code\":50003,\"message\":\"unavailable\"}";
                        if stream.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, requests)
}

/// A record timestamp an hour ago, in milliseconds. Records produced with much older
/// timestamps are deleted by the broker's time retention (7 days by default) at its next
/// retention check, possibly in the middle of a test.
pub fn recent_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64;
    now - 3_600_000
}
