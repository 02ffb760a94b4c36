//! What the pipeline's integration tests share beyond the test kit: a bridge
//! configuration for the real servers, running a pipeline until caught up, and Avro
//! schema directories.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

pub use kinflux_testkit::bridge_config::BridgeConfig;

/// One test's share of the servers: `(brokers, influx, topic, db)`, the shared Kafka and
/// InfluxDB, a fresh topic `<name>_<unique>` with `partitions` partitions, and a database
/// name `<name>_db_<unique>`. `None` when the servers are not configured, after the test
/// kit's rule (a loud SKIPPED line, a panic under `CI=true`).
pub async fn case(name: &str, partitions: i32) -> Option<(String, String, String, String)> {
    let brokers = kinflux_testkit::require("KINFLUX_KAFKA_BROKERS")?;
    let influx = kinflux_testkit::require("KINFLUX_INFLUX_URL")?;
    Some(case_on(brokers, influx, name, partitions).await)
}

/// [`case`] on tansu (`KINFLUX_TANSU_BROKERS`), the opt-in compatibility leg: `None` after
/// the test kit's [`tansu_brokers`](kinflux_testkit::tansu_brokers) rule when it is not
/// configured.
pub async fn tansu_case(name: &str, partitions: i32) -> Option<(String, String, String, String)> {
    let brokers = kinflux_testkit::tansu_brokers()?;
    let influx = kinflux_testkit::require("KINFLUX_INFLUX_URL")?;
    Some(case_on(brokers, influx, name, partitions).await)
}

async fn case_on(
    brokers: String,
    influx: String,
    name: &str,
    partitions: i32,
) -> (String, String, String, String) {
    let topic = kinflux_testkit::unique(name);
    let db = kinflux_testkit::unique(&format!("{name}_db"));
    kinflux_testkit::kafka::create_topic(&brokers, &topic, partitions).await;
    (brokers, influx, topic, db)
}

/// The shared Kafka and InfluxDB, `(brokers, influx)`, after the test kit's rule (a
/// loud SKIPPED line, a panic under `CI=true`).
pub fn servers() -> Option<(String, String)> {
    let brokers = kinflux_testkit::require("KINFLUX_KAFKA_BROKERS")?;
    let influx = kinflux_testkit::require("KINFLUX_INFLUX_URL")?;
    Some((brokers, influx))
}

/// A bridge configuration for tests (the test kit's [`BridgeConfig`]) with `extra`
/// sections.
pub fn config_toml(brokers: &str, influx: &str, topic: &str, db: &str, extra: &str) -> String {
    BridgeConfig::new(brokers, influx, topic, db)
        .section(extra)
        .toml()
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
    let dir = std::env::temp_dir().join(kinflux_testkit::unique("schemas"));
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
