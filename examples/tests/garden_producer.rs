//! The garden producer against the Kafka at `KINFLUX_KAFKA_BROKERS`: records land
//! partitioned by sensor, decode with `kinflux-avro` to the garden points, and a rerun
//! writes the same bytes.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use kinflux_avro::{ConfluentDecoder, Mapping, SchemaDir};
use kinflux_series::{PointView, Timestamp};
use kinflux_testkit::process::example_binary;
use kinflux_testkit::{kafka, require_or_skip, unique};

/// Every record of `topic`, per partition, in offset order: (key, value).
async fn read_topic(brokers: &str, topic: &str) -> BTreeMap<i32, Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = BTreeMap::new();
    for p in kafka::partitions(brokers, topic).await {
        let records = kafka::read_all(brokers, topic, p).await;
        let pairs = records
            .into_iter()
            .map(|r| {
                (
                    r.record.key.unwrap_or_default(),
                    r.record.value.unwrap_or_default(),
                )
            })
            .collect();
        out.insert(p, pairs);
    }
    out
}

fn run_producer(producer: &Path, brokers: &str, topic: &str, schema_dir: &Path) {
    let status = Command::new(producer)
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
    let brokers = require_or_skip!("KINFLUX_KAFKA_BROKERS");
    let Some(producer) = example_binary("garden_producer") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let first = unique("garden_producer");
    run_producer(&producer, &brokers, &first, dir.path());
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

    let second = unique("garden_producer_rerun");
    run_producer(&producer, &brokers, &second, dir.path());
    assert_eq!(read_topic(&brokers, &second).await, records);
}
