//! 1% malformed records: every good point is written, every bad record is in the
//! dead-letter topic with headers saying why, and records in = points written + records
//! dead-lettered.

mod common;

use std::collections::HashMap;

use common::*;
use kinflux::avro::apache_avro::{Schema, to_avro_datum, types::Value};
use kinflux::avro::framing::write_confluent_header;
use kinflux_testkit::influx::count;
use kinflux_testkit::kafka::{RecordAndOffset, produce_values, read_all};

const N: usize = 4_000;

fn headers(r: &RecordAndOffset) -> HashMap<String, String> {
    r.record
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_line_protocol_goes_to_the_dead_letter_topic_with_headers() {
    let Some((brokers, influx, topic, db)) = case("badlp", 2).await else {
        return;
    };
    let mut bad = Vec::new();
    for p in 0..2 {
        let values = (0..N)
            .map(|i| {
                if i % 100 == 7 {
                    bad.push((p, i));
                    format!("bad,p={p} v=\"unterminated {i}\n").into_bytes()
                } else {
                    format!(
                        "good,p={p} v={i}i {}\n",
                        1_600_000_000_000_000_000i64 + i as i64
                    )
                    .into_bytes()
                }
            })
            .collect();
        produce_values(&brokers, &topic, p, values, 1_700_000_000_000).await;
    }
    let summary = run_until_caught_up(&config_toml(&brokers, &influx, &topic, &db, "")).await;

    let good = (2 * N - bad.len()) as u64;
    assert_eq!(summary.records_in, (2 * N) as u64);
    assert_eq!(summary.points_written, good);
    assert_eq!(summary.dead_lettered, bad.len() as u64);
    assert_eq!(
        summary.records_in,
        summary.points_written + summary.dead_lettered
    );
    assert_eq!(count(&influx, &db, "good", "v"), good);

    let dead = read_all(&brokers, &format!("{topic}_dlq"), 0).await;
    assert_eq!(dead.len(), bad.len());
    let mut seen: Vec<(i32, usize)> = dead
        .iter()
        .map(|r| {
            let h = headers(r);
            assert_eq!(h["kinflux.error.class"], "decode");
            assert_eq!(h["kinflux.source.topic"], topic);
            assert!(h["kinflux.error.message"].starts_with("1:"), "{h:?}");
            let value = String::from_utf8(r.record.value.clone().unwrap()).unwrap();
            assert!(
                value.starts_with("bad,"),
                "the original value is kept: {value}"
            );
            let p: i32 = h["kinflux.source.partition"].parse().unwrap();
            let offset: usize = h["kinflux.source.offset"].parse().unwrap();
            (p, offset)
        })
        .collect();
    seen.sort();
    bad.sort();
    assert_eq!(seen, bad, "each bad record once, by partition and offset");
}

const SCHEMA: &str = r#"{"type":"record","name":"R","namespace":"t","fields":[
    {"name":"id","type":"string"},{"name":"v","type":"double"},
    {"name":"time","type":{"type":"long","logicalType":"timestamp-millis"}}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_avro_and_unknown_schema_ids_are_dead_lettered() {
    let Some((brokers, influx, topic, db)) = case("badavro", 1).await else {
        return;
    };
    let dir = schema_dir(&[(1, SCHEMA)]);
    let schema = Schema::parse_str(SCHEMA).unwrap();

    let mut expected_class = HashMap::new();
    let values = (0..N)
        .map(|i| {
            let record = Value::Record(vec![
                ("id".into(), Value::String(format!("s{}", i % 10))),
                ("v".into(), Value::Double(i as f64)),
                (
                    "time".into(),
                    Value::TimestampMillis(1_600_000_000_000 + i as i64),
                ),
            ]);
            let mut out = Vec::new();
            match i % 100 {
                13 => {
                    // Unknown schema id 99.
                    expected_class.insert(i, "schema");
                    write_confluent_header(99, &mut out);
                    out.extend(to_avro_datum(&schema, record).unwrap());
                }
                57 => {
                    // Truncated body.
                    expected_class.insert(i, "decode");
                    write_confluent_header(1, &mut out);
                    let body = to_avro_datum(&schema, record).unwrap();
                    out.extend(&body[..body.len() - 3]);
                }
                _ => {
                    write_confluent_header(1, &mut out);
                    out.extend(to_avro_datum(&schema, record).unwrap());
                }
            }
            out
        })
        .collect();
    produce_values(&brokers, &topic, 0, values, 1_700_000_000_000).await;

    let extra = avro_decode_toml(&dir, "reading", "id");
    let summary = run_until_caught_up(&config_toml(&brokers, &influx, &topic, &db, &extra)).await;
    let bad = expected_class.len() as u64;
    assert_eq!(summary.records_in, N as u64);
    assert_eq!(summary.dead_lettered, bad);
    assert_eq!(summary.points_written, N as u64 - bad);
    assert_eq!(count(&influx, &db, "reading", "v"), N as u64 - bad);

    let dead = read_all(&brokers, &format!("{topic}_dlq"), 0).await;
    assert_eq!(dead.len() as u64, bad);
    for r in &dead {
        let h = headers(r);
        let offset: usize = h["kinflux.source.offset"].parse().unwrap();
        assert_eq!(h["kinflux.error.class"], expected_class[&offset], "{h:?}");
    }
    std::fs::remove_dir_all(dir).ok();
}
