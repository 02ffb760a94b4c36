//! JSON records with enrichment (static tags, the topic, the Kafka key and a header as
//! tags, time from the Kafka record), and the metrics endpoint while the pipeline runs.

mod common;

use std::time::Duration;

use common::*;
use kinflux::{CancellationToken, Config, Pipeline};
use kinflux_testkit::influx::{count, query, rows};
use kinflux_testkit::kafka::{keyed, produce};
use kinflux_testkit::{free_port, http};

/// `GET url`: status and body (blocking; the pipeline runs on the runtime's workers).
fn get(url: &str) -> (u16, String) {
    let answer = http::get(url).expect("the metrics endpoint answers");
    (answer.status, answer.body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_records_get_enriched_and_metrics_are_served() {
    let Some((brokers, influx, topic, db)) = case("json", 1).await else {
        return;
    };
    let n = 500i64;
    let records = (0..n)
        .map(|i| {
            let value = format!(r#"{{"room":"r{}","temp":{}.25,"ok":true}}"#, i % 4, i);
            let mut record = keyed(format!("dev{}", i % 3), value, 1_650_000_000_000 + i);
            record.headers.insert("site".to_owned(), b"lab".to_vec());
            record
        })
        .collect();
    produce(&brokers, &topic, 0, records).await;

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
    let (status, health) = get(&format!("http://127.0.0.1:{port}/health"));
    assert_eq!((status, health.as_str()), (200, "ok\n"));
    let (status, text) = get(&format!("http://127.0.0.1:{port}/metrics"));
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
    assert_eq!(get(&format!("http://127.0.0.1:{port}/nope")).0, 404);
    stop.cancel();
    run.await.unwrap().unwrap();

    assert_eq!(count(&influx, &db, "climate", "temp"), n as u64);
    let answer = query(
        &influx,
        &db,
        "SELECT temp, ok, device, region, room, site, topic FROM climate WHERE time = 1650000000007000000",
    );
    let row = &rows(&answer)[0];
    assert_eq!(row[1].as_f64(), Some(7.25), "{answer}");
    assert_eq!(row[2].as_bool(), Some(true));
    assert_eq!(row[3].as_str(), Some("dev1"));
    assert_eq!(row[4].as_str(), Some("eu"));
    assert_eq!(row[5].as_str(), Some("r3"));
    assert_eq!(row[6].as_str(), Some("lab"));
    assert_eq!(row[7].as_str(), Some(topic.as_str()));
}
