//! Avro end to end through a schema change in the middle of the stream: records written
//! with schema 1, then with schema 2 (a field added with a default, a field removed), all
//! map to points by field name.

mod common;

use common::*;
use kinflux::avro::apache_avro::{Schema, to_avro_datum, types::Value};
use kinflux::avro::framing::write_confluent_header;
use kinflux_testkit::influx::{count, query, rows};
use kinflux_testkit::kafka::produce_values;

const V1: &str = r#"{"type":"record","name":"Reading","namespace":"garden","fields":[
    {"name":"sensor_id","type":"string"},
    {"name":"soil_moisture","type":"double"},
    {"name":"battery","type":"double"},
    {"name":"time","type":{"type":"long","logicalType":"timestamp-millis"}}]}"#;

// Version 2 drops `battery` and adds `temperature` and a nullable `note`.
const V2: &str = r#"{"type":"record","name":"Reading","namespace":"garden","fields":[
    {"name":"sensor_id","type":"string"},
    {"name":"temperature","type":"float","default":0.0},
    {"name":"soil_moisture","type":"double"},
    {"name":"note","type":["null","string"],"default":null},
    {"name":"time","type":{"type":"long","logicalType":"timestamp-millis"}}]}"#;

/// `n` Confluent-framed readings: the first half with schema `id1` (V1), the rest with
/// `id2` (V2).
fn readings(n: usize, id1: u32, id2: u32) -> Vec<Vec<u8>> {
    let (v1, v2) = (
        Schema::parse_str(V1).unwrap(),
        Schema::parse_str(V2).unwrap(),
    );
    (0..n)
        .map(|i| {
            let time = Value::TimestampMillis(1_600_000_000_000 + i as i64);
            let sensor = Value::String(format!("s{}", i % 5));
            let mut out = Vec::new();
            if i < n / 2 {
                write_confluent_header(id1, &mut out);
                let r = Value::Record(vec![
                    ("sensor_id".into(), sensor),
                    ("soil_moisture".into(), Value::Double(i as f64 / 10.0)),
                    ("battery".into(), Value::Double(0.9)),
                    ("time".into(), time),
                ]);
                out.extend(to_avro_datum(&v1, r).unwrap());
            } else {
                write_confluent_header(id2, &mut out);
                let note = if i % 2 == 0 {
                    Value::Union(1, Box::new(Value::String("watered".into())))
                } else {
                    Value::Union(0, Box::new(Value::Null))
                };
                let r = Value::Record(vec![
                    ("sensor_id".into(), sensor),
                    ("temperature".into(), Value::Float(21.5)),
                    ("soil_moisture".into(), Value::Double(i as f64 / 10.0)),
                    ("note".into(), note),
                    ("time".into(), time),
                ]);
                out.extend(to_avro_datum(&v2, r).unwrap());
            }
            out
        })
        .collect()
}

/// What `n` readings leave in `db`: every point, each version's fields, exact values.
fn check_stored(influx: &str, db: &str, n: usize) {
    assert_eq!(count(influx, db, "garden", "soil_moisture"), n as u64);
    assert_eq!(count(influx, db, "garden", "battery"), n as u64 / 2);
    assert_eq!(count(influx, db, "garden", "temperature"), n as u64 / 2);
    assert_eq!(count(influx, db, "garden", "note"), n as u64 / 4);
    // A value from each version, exactly.
    for i in [10usize, n - 10] {
        let t = (1_600_000_000_000 + i as i64) * 1_000_000;
        let answer = query(
            influx,
            db,
            &format!("SELECT soil_moisture, sensor_id FROM garden WHERE time = {t}"),
        );
        let r = rows(&answer);
        assert_eq!(r[0][1].as_f64(), Some(i as f64 / 10.0));
        assert_eq!(r[0][2].as_str(), Some(format!("s{}", i % 5).as_str()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_of_both_schema_versions_map_by_name() {
    let Some((brokers, influx, topic, db)) = case("evolve", 1).await else {
        return;
    };
    let dir = schema_dir(&[(1, V1), (2, V2)]);
    let n = 2_000usize;
    produce_values(&brokers, &topic, 0, readings(n, 1, 2), 1_700_000_000_000).await;

    let extra = avro_decode_toml(&dir, "garden", "sensor_id");
    let summary = run_until_caught_up(&config_toml(&brokers, &influx, &topic, &db, &extra)).await;
    assert_eq!(summary.points_written, n as u64);
    assert_eq!(summary.dead_lettered, 0);
    check_stored(&influx, &db, n);
    std::fs::remove_dir_all(dir).ok();
}

/// The same through the real Apicurio Registry (`KINFLUX_REGISTRY_URL`): both versions
/// registered under one subject, the bridge fetches each id as it first meets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_change_mid_stream_through_the_real_registry() {
    let Some(registry_url) = kinflux_testkit::require("KINFLUX_REGISTRY_URL") else {
        return;
    };
    let Some((brokers, influx, topic, db)) = case("evolve_reg", 1).await else {
        return;
    };
    let registry =
        kinflux::avro::RegistryClient::new(kinflux::avro::RegistryConfig::new(&registry_url))
            .unwrap();
    let subject = format!("{topic}-value");
    let id1 = registry.register(&subject, V1).await.unwrap();
    let id2 = registry.register(&subject, V2).await.unwrap();
    assert_ne!(id1, id2);
    let n = 1_000usize;
    produce_values(
        &brokers,
        &topic,
        0,
        readings(n, id1, id2),
        1_700_000_000_000,
    )
    .await;

    let extra = format!(
        r#"
[decode]
format = "avro"
registry_url = "{registry_url}"
[decode.mapping]
measurement = {{ constant = "garden" }}
tags = ["sensor_id"]
timestamp = {{ field = "time" }}
"#
    );
    let summary = run_until_caught_up(&config_toml(&brokers, &influx, &topic, &db, &extra)).await;
    assert_eq!(summary.points_written, n as u64);
    assert_eq!(summary.dead_lettered, 0);
    check_stored(&influx, &db, n);
}
