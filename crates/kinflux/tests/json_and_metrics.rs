//! JSON records with enrichment (static tags, the topic, the Kafka key and a header as
//! tags, time from the Kafka record), and the metrics endpoint while the pipeline runs.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use kinflux::{CancellationToken, Config, Pipeline};
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::record::Record as RsRecord;

async fn get(url: &str) -> (u16, String) {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let response = client.get(url.parse().unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_records_get_enriched_and_metrics_are_served() {
    let Some((brokers, influx)) = servers() else {
        return;
    };
    let topic = unique("json");
    let db = unique("json_db");
    create_topic(&brokers, &topic, 1).await;
    let client = kafka(&brokers).await;
    let pc = client
        .partition_client(topic.as_str(), 0, UnknownTopicHandling::Retry)
        .await
        .unwrap();
    let n = 500i64;
    let records = (0..n)
        .map(|i| RsRecord {
            key: Some(format!("dev{}", i % 3).into_bytes()),
            value: Some(
                format!(r#"{{"room":"r{}","temp":{}.25,"ok":true}}"#, i % 4, i).into_bytes(),
            ),
            headers: [("site".to_owned(), b"lab".to_vec())].into(),
            timestamp: rskafka::chrono::DateTime::from_timestamp_millis(1_650_000_000_000 + i)
                .unwrap(),
        })
        .collect();
    pc.produce(records, Compression::NoCompression)
        .await
        .unwrap();

    let port = free_port();
    let extra = format!(
        r#"
[decode]
format = "json"
[decode.mapping]
measurement = {{ constant = "climate" }}
tags = ["room"]

[tags]
topic_tag = "topic"
key_tag = "device"
header_tags = ["site"]
region = "eu"

[metrics]
listen = "127.0.0.1:{port}"
"#
    );
    let config = Config::from_toml(&config_toml(&brokers, &influx, &topic, &db, &extra)).unwrap();
    let stop = CancellationToken::new();
    let pipeline = Pipeline::from_config(&config).unwrap();
    let metrics = pipeline.metrics();
    let run = tokio::spawn(pipeline.run(stop.clone()));

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while metrics.snapshot().points_written < n as u64 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "pipeline made no progress"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, health) = get(&format!("http://127.0.0.1:{port}/health")).await;
    assert_eq!((status, health.as_str()), (200, "ok\n"));
    let (status, text) = get(&format!("http://127.0.0.1:{port}/metrics")).await;
    assert_eq!(status, 200);
    for line in [
        format!("kinflux_records_in_total {n}"),
        format!("kinflux_points_written_total {n}"),
        "kinflux_dead_letters_total{class=\"decode\"} 0".to_owned(),
        "# TYPE kinflux_write_latency_seconds histogram".to_owned(),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(
        text.lines().any(|l| l.starts_with(&format!(
            "kinflux_lag_records{{topic=\"{topic}\",partition=\"0\"}}"
        ))),
        "{text}"
    );
    assert_eq!(get(&format!("http://127.0.0.1:{port}/nope")).await.0, 404);
    stop.cancel();
    run.await.unwrap().unwrap();

    assert_eq!(count(&influx, &db, "climate", "temp").await, n as u64);
    let answer = query(
        &influx,
        &db,
        "SELECT temp, ok, device, region, room, site, topic FROM climate WHERE time = 1650000000007000000",
    )
    .await;
    let row = &rows(&answer)[0];
    assert_eq!(row[1].as_f64(), Some(7.25), "{answer}");
    assert_eq!(row[2].as_bool(), Some(true));
    assert_eq!(row[3].as_str(), Some("dev1"));
    assert_eq!(row[4].as_str(), Some("eu"));
    assert_eq!(row[5].as_str(), Some("r3"));
    assert_eq!(row[6].as_str(), Some("lab"));
    assert_eq!(row[7].as_str(), Some(topic.as_str()));
}
