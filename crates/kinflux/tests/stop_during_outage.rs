//! A stop drains within the drain timeout even while InfluxDB or the schema registry is
//! down, and what was not written then is read again after a restart.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use kinflux::avro::apache_avro::{Schema, to_avro_datum, types::Value};
use kinflux::avro::framing::write_confluent_header;
use kinflux::{CancellationToken, Config, PipelineBuilder, RunSummary};
use kinflux_testkit::influx::count;
use kinflux_testkit::kafka::{create_topic, produce_values};
use kinflux_testkit::{free_port, unique};

const DRAIN: Duration = Duration::from_secs(2);

/// Runs `toml` until `ready` says so, stops it, and returns how long the stop took.
async fn stop_when(
    toml: &str,
    ready: impl Fn(&kinflux::MetricsSnapshot) -> bool,
) -> (Duration, RunSummary) {
    let config = Config::from_toml(toml).expect("valid test config");
    let pipeline = PipelineBuilder::from_config(&config)
        .unwrap()
        .drain_timeout(DRAIN)
        .build()
        .unwrap();
    let metrics = pipeline.metrics();
    let stop = CancellationToken::new();
    let run = tokio::spawn(pipeline.run(stop.clone()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready(&metrics.snapshot()) {
        assert!(Instant::now() < deadline, "the outage never showed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the pipeline get stuck behind the outage.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stopped = Instant::now();
    stop.cancel();
    let summary = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the stop drained within 30 s")
        .unwrap()
        .expect("a drained run ends without error");
    (stopped.elapsed(), summary)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_drains_in_time_while_influxdb_is_down() {
    let Some((brokers, influx)) = servers() else {
        return;
    };
    let topic = unique("outage");
    let db = unique("outage_db");
    create_topic(&brokers, &topic, 1).await;
    let n = 2_000;
    let values = (0..n)
        .map(|i| format!("outage v={i}i {}\n", 1_600_000_000_000_000_000i64 + i).into_bytes())
        .collect();
    produce_values(&brokers, &topic, 0, values, recent_ms()).await;

    // InfluxDB is down (nothing listens), one write at a time, batches of 100: the first
    // write retries, and the next batch waits for its slot.
    let down = format!("http://127.0.0.1:{}", free_port());
    let extra = "[batch]\nmax_points = 100\nmax_age = \"50ms\"\n";
    let good = config_toml(&brokers, &influx, &topic, &db, extra);
    let toml = good
        .replace(&format!("url = \"{influx}\""), &format!("url = \"{down}\""))
        .replace(
            "create_database = true",
            "create_database = false\nconcurrency = 1",
        );
    let (took, first) = stop_when(&toml, |m| m.records_in >= 200).await;
    assert!(
        took < DRAIN + Duration::from_secs(8),
        "the stop took {took:?} with a drain timeout of {DRAIN:?}"
    );
    assert_eq!(first.points_written, 0);

    // Nothing was committed: the restart reads and writes every record.
    let second = run_until_caught_up(&good).await;
    assert_eq!(second.records_in, n as u64);
    assert_eq!(count(&influx, &db, "outage", "v"), n as u64);
}

const SCHEMA: &str = r#"{"type":"record","name":"R","namespace":"t","fields":[
    {"name":"id","type":"string"},{"name":"v","type":"double"},
    {"name":"time","type":{"type":"long","logicalType":"timestamp-millis"}}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_drains_in_time_while_the_schema_registry_is_down() {
    let Some((brokers, influx)) = servers() else {
        return;
    };
    let topic = unique("regoutage");
    let db = unique("regoutage_db");
    create_topic(&brokers, &topic, 1).await;
    let schema = Schema::parse_str(SCHEMA).unwrap();
    let n = 3;
    let values = (0..n)
        .map(|i| {
            let record = Value::Record(vec![
                ("id".into(), Value::String(format!("s{i}"))),
                ("v".into(), Value::Double(i as f64)),
                (
                    "time".into(),
                    Value::TimestampMillis(1_600_000_000_000 + i as i64),
                ),
            ]);
            let mut out = Vec::new();
            write_confluent_header(1, &mut out);
            out.extend(to_avro_datum(&schema, record).unwrap());
            out
        })
        .collect();
    produce_values(&brokers, &topic, 0, values, recent_ms()).await;

    let (registry, requests) = unavailable_server().await;
    let decode = |source: &str| {
        format!(
            r#"
[decode]
format = "avro"
{source}
[decode.mapping]
measurement = {{ constant = "reg" }}
tags = ["id"]
timestamp = {{ field = "time" }}
"#
        )
    };
    let toml = config_toml(
        &brokers,
        &influx,
        &topic,
        &db,
        &decode(&format!("registry_url = \"{registry}\"")),
    );
    let seen = requests.clone();
    let (took, first) = stop_when(&toml, move |_| seen.load(Ordering::SeqCst) > 0).await;
    assert!(
        took < DRAIN + Duration::from_secs(8),
        "the stop took {took:?} with a drain timeout of {DRAIN:?}"
    );
    assert_eq!(first.records_in, 0, "no record could be decoded");

    // The record that waited was not committed: with its schema at hand, the restart
    // writes all three.
    let dir = schema_dir(&[(1, SCHEMA)]);
    let toml = config_toml(
        &brokers,
        &influx,
        &topic,
        &db,
        &decode(&format!("schema_dir = \"{}\"", dir.display())),
    );
    assert_eq!(run_until_caught_up(&toml).await.records_in, n as u64);
    assert_eq!(count(&influx, &db, "reg", "v"), n as u64);
}

/// With `create_database`, a pipeline whose InfluxDB does not answer waits for it at start
/// instead of failing, and a stop then ends the run cleanly, before it joins the group.
#[tokio::test]
async fn a_stop_while_waiting_to_create_the_database_ends_the_run_cleanly() {
    // Nothing listens on either port: InfluxDB refuses connections, and Kafka is never
    // reached (the stop comes first).
    let mut writer = kinflux::influx::WriterConfig::v1(
        format!("http://127.0.0.1:{}", free_port()),
        unique("never_created"),
    );
    writer.create_database = true;
    let brokers = format!("127.0.0.1:{}", free_port());
    let consumer = kinflux::kafka::ConsumerConfig::new([brokers.as_str()], "g", ["t"]);
    let pipeline = kinflux::Pipeline::builder(consumer, writer)
        .on_error(kinflux::config::OnError::Drop)
        .build()
        .expect("a valid pipeline");
    let stop = CancellationToken::new();
    let run = tokio::spawn(pipeline.run(stop.clone()));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!run.is_finished(), "it should wait for InfluxDB");
    stop.cancel();
    let summary = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the stop ends the wait")
        .unwrap()
        .expect("a stop is not an error");
    assert_eq!(summary.records_in, 0);
    assert_eq!(summary.points_written, 0);
}
