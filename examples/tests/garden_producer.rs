//! The garden producer against a real Kafka (tansu): records land partitioned by sensor,
//! decode with `kinflux-avro` to the garden points, and a rerun writes the same bytes.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use kinflux_avro::{ConfluentDecoder, Mapping, SchemaDir};
use kinflux_series::{PointView, Timestamp};
use rskafka::client::ClientBuilder;
use rskafka::client::partition::UnknownTopicHandling;

/// The example binary, built next to this test by `cargo test`.
fn producer() -> PathBuf {
    let deps = std::env::current_exe().expect("test binary path");
    let debug = deps
        .parent()
        .and_then(|d| d.parent())
        .expect("target profile directory");
    debug.join("examples").join("garden_producer")
}

/// Every record of `topic`, per partition, in offset order.
async fn read_topic(brokers: &str, topic: &str) -> BTreeMap<i32, Vec<(Vec<u8>, Vec<u8>)>> {
    let client = ClientBuilder::new(vec![brokers.to_owned()])
        .build()
        .await
        .unwrap();
    let partitions = client
        .list_topics()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.name == topic)
        .expect("the producer created the topic")
        .partitions;
    let mut out = BTreeMap::new();
    for p in partitions {
        let pc = client
            .partition_client(topic, p, UnknownTopicHandling::Retry)
            .await
            .unwrap();
        let mut records = Vec::new();
        let mut offset = 0;
        loop {
            let (batch, high_watermark) =
                pc.fetch_records(offset, 1..1_000_000, 500).await.unwrap();
            for r in batch {
                offset = r.offset + 1;
                records.push((
                    r.record.key.unwrap_or_default(),
                    r.record.value.unwrap_or_default(),
                ));
            }
            if offset >= high_watermark {
                break;
            }
        }
        out.insert(p, records);
    }
    out
}

fn run_producer(brokers: &str, topic: &str, schema_dir: &std::path::Path) {
    let status = Command::new(producer())
        .args(["--brokers", brokers, "--topic", topic, "--partitions", "2"])
        .args(["--count", "300", "--sensors", "7", "--schema-id", "7"])
        .arg("--schema-dir")
        .arg(schema_dir)
        .status()
        .expect("run the garden producer (cargo test builds it)");
    assert!(status.success());
}

#[tokio::test]
async fn produced_garden_records_decode_to_points_and_reruns_write_the_same() {
    let Some(brokers) = common::kafka_brokers() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let first = common::unique("garden-producer");
    run_producer(&brokers, &first, dir.path());
    let records = read_topic(&brokers, &first).await;
    assert_eq!(records.values().map(Vec::len).sum::<usize>(), 300);

    let mapping: Mapping = toml::from_str(
        r#"
        measurement = { constant = "garden" }
        tags = ["sensor_id", "zone", "plant"]
        timestamp = { field = "time" }
        "#,
    )
    .unwrap();
    let decoder = ConfluentDecoder::new(SchemaDir::new(dir.path()), mapping);
    let mut sensor_partition = BTreeMap::new();
    let mut times = Vec::new();
    for (partition, records) in &records {
        for (key, value) in records {
            let point = decoder.decode_owned(value, None).await.unwrap();
            let sensor = point.tags().get("sensor_id").unwrap().as_str().to_owned();
            assert_eq!(sensor.as_bytes(), key.as_slice());
            // One sensor, one partition.
            assert_eq!(
                *sensor_partition.entry(sensor).or_insert(*partition),
                *partition
            );
            assert_eq!(point.measurement().as_str(), "garden");
            assert!(PointView::fields(&point).len() >= 4);
            times.push(point.timestamp().unwrap());
        }
    }
    assert_eq!(sensor_partition.len(), 7);
    times.sort();
    // 300 readings of 7 sensors every 10 s from the fixed start.
    assert_eq!(
        times[0],
        Timestamp::from_nanos(1_700_000_000_000 * 1_000_000)
    );
    assert_eq!(
        times[299],
        Timestamp::from_nanos((1_700_000_000_000 + (299 / 7) * 10_000) * 1_000_000)
    );

    let second = common::unique("garden-producer-rerun");
    run_producer(&brokers, &second, dir.path());
    assert_eq!(read_topic(&brokers, &second).await, records);
}
