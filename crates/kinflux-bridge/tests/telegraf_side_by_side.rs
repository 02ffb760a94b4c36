//! Telegraf and kinflux on the same topics, from the same Telegraf file: Telegraf runs the
//! file, `kinflux from-telegraf` converts it (the Avro input becomes the `telegraf`
//! preset, the json_v2 input a JSON mapping), kinflux runs the conversion, and both
//! databases must hold the same points: measurements, tags, fields, field types, times.
//!
//! Needs Telegraf (`KINFLUX_TELEGRAF_BIN`, built by `scripts/services install telegraf`
//! into `~/.cache/kinflux/telegraf-<version>/telegraf`), Apache Kafka, InfluxDB 1.x and
//! Apicurio. Without `KINFLUX_TELEGRAF_BIN` it says so and passes.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use kinflux_avro::apache_avro::types::Value as Avro;
use kinflux_avro::apache_avro::{Schema, to_avro_datum};
use kinflux_avro::framing::write_confluent_header;
use kinflux_avro::{RegistryClient, RegistryConfig};
use kinflux_testkit::influx::{count, drop_database, query};
use kinflux_testkit::kafka::{create_topic, produce_values};
use kinflux_testkit::{require_or_skip, unique};
use serde_json::Value;

const N: usize = 300;

const SCHEMA: &str = r#"{
  "type": "record", "name": "Reading", "namespace": "side",
  "fields": [
    {"name": "host", "type": "string"},
    {"name": "region", "type": ["null", "string"]},
    {"name": "ts", "type": "long"},
    {"name": "value", "type": ["null", "double"]},
    {"name": "count", "type": "long"},
    {"name": "ratio", "type": "float"},
    {"name": "ok", "type": "boolean"},
    {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["SOIL", "AIR"]}},
    {"name": "pos", "type": {"type": "record", "name": "Pos", "fields": [
      {"name": "lat", "type": "double"}, {"name": "lon", "type": "double"}]}},
    {"name": "levels", "type": {"type": "array", "items": "int"}},
    {"name": "spot", "type": ["null", "side.Pos"]},
    {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "tags", "type": {"type": "map", "values": "string"}}
  ]
}"#;

const BASE_MS: i64 = 1_700_000_000_000;

/// The Avro records: some values null, whole and fractional doubles, a float.
fn avro_values(schema: &Schema, id: u32) -> Vec<Vec<u8>> {
    (0..N)
        .map(|i| {
            let region = if i % 5 == 0 {
                Avro::Union(0, Box::new(Avro::Null))
            } else {
                Avro::Union(1, Box::new(Avro::String(format!("r{}", i % 2))))
            };
            let value = if i % 7 == 0 {
                Avro::Union(0, Box::new(Avro::Null))
            } else {
                Avro::Union(1, Box::new(Avro::Double(i as f64 / 2.0)))
            };
            let pos = |lat: f64, lon: f64| {
                Avro::Record(vec![
                    ("lat".into(), Avro::Double(lat)),
                    ("lon".into(), Avro::Double(lon)),
                ])
            };
            let spot = if i % 3 == 0 {
                Avro::Union(0, Box::new(Avro::Null))
            } else {
                Avro::Union(1, Box::new(pos(1.0, i as f64)))
            };
            let site = [("site".to_owned(), Avro::String(format!("s{}", i % 2)))];
            let r = Avro::Record(vec![
                ("host".into(), Avro::String(format!("h{}", i % 3))),
                ("region".into(), region),
                ("ts".into(), Avro::Long(BASE_MS + i as i64)),
                ("value".into(), value),
                ("count".into(), Avro::Long(i as i64)),
                ("ratio".into(), Avro::Float(i as f32 / 10.0)),
                ("ok".into(), Avro::Boolean(i % 2 == 0)),
                (
                    "kind".into(),
                    Avro::Enum((i % 2) as u32, ["SOIL", "AIR"][i % 2].into()),
                ),
                ("pos".into(), pos(52.0 + i as f64 / 100.0, 13.0)),
                (
                    "levels".into(),
                    Avro::Array(vec![Avro::Int(i as i32), Avro::Int(1)]),
                ),
                ("spot".into(), spot),
                ("at".into(), Avro::TimestampMillis(BASE_MS + i as i64)),
                ("tags".into(), Avro::Map(site.into_iter().collect())),
            ]);
            let mut out = Vec::new();
            write_confluent_header(id, &mut out);
            out.extend(to_avro_datum(schema, r).expect("the record fits the schema"));
            out
        })
        .collect()
}

/// The JSON records: whole and fractional numbers in one field, strings, booleans.
fn json_values() -> Vec<Vec<u8>> {
    (0..N)
        .map(|i| {
            let value = if i % 2 == 0 {
                format!("{i}")
            } else {
                format!("{i}.25")
            };
            format!(
                r#"{{"host":"h{}","region":"r{}","time":{},"value":{value},"count":{i},"ok":{},"note":"n{}","meta":{{"ok":{}}}}}"#,
                i % 3,
                i % 2,
                BASE_MS + i as i64,
                i % 2 == 0,
                i % 4,
                i % 3 == 0
            )
            .into_bytes()
        })
        .collect()
}

/// The Telegraf file: one kafka_consumer input per `(topic, group, parser)`, one InfluxDB
/// 1.x output.
fn telegraf_conf(
    brokers: &str,
    inputs: &[(String, String, String)],
    influx: &str,
    db: &str,
) -> String {
    let mut conf = String::from(
        "[agent]\n  omit_hostname = true\n  flush_interval = \"1s\"\n  metric_batch_size = 1000\n",
    );
    for (topic, group, parser) in inputs {
        conf.push_str(&format!(
            r#"[[inputs.kafka_consumer]]
  brokers = ["{brokers}"]
  topics = ["{topic}"]
  consumer_group = "{group}"
  offset = "oldest"
  kafka_version = "4.0.0"
  {parser}
"#
        ));
    }
    conf.push_str(&format!(
        "[[outputs.influxdb]]\n  urls = [\"{influx}\"]\n  database = \"{db}\"\n"
    ));
    conf
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Every point of `db`, by measurement and series, with field types: what must agree.
fn stored(influx: &str, db: &str) -> (Vec<Value>, Vec<Value>) {
    let points = query(influx, db, "SELECT * FROM /.*/ GROUP BY *");
    let mut series = points["results"][0]["series"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    series.sort_by_key(|s| s.to_string());
    let types = query(influx, db, "SHOW FIELD KEYS");
    let mut types = types["results"][0]["series"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    types.sort_by_key(|s| s.to_string());
    (series, types)
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < timeout,
            "{what}: not done after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Runs Telegraf on the file `conf(db, group_prefix)` gives until every `(measurement,
/// field)` has `N` points, then converts the same file for another database and groups
/// with `kinflux from-telegraf`, runs kinflux on it until caught up, and compares.
fn run_both(
    telegraf: &str,
    dir: &Path,
    conf: impl Fn(&str, &str) -> String,
    influx: &str,
    measurements: &[(&str, &str)],
) {
    let (db_t, db_k) = (unique("side_telegraf"), unique("side_kinflux"));
    let telegraf_file = dir.join(format!("{db_t}.conf"));
    std::fs::write(&telegraf_file, conf(&db_t, &unique("side_telegraf"))).unwrap();
    let log = std::fs::File::create(dir.join(format!("{db_t}.log"))).unwrap();
    let child = Command::new(telegraf)
        .arg("--config")
        .arg(&telegraf_file)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start telegraf");
    let child = Killed(child);
    wait_for("telegraf", Duration::from_secs(120), || {
        measurements
            .iter()
            .all(|(m, f)| count(influx, &db_t, m, f) >= N as u64)
    });
    drop(child);

    let kinflux_source = dir.join(format!("{db_k}.telegraf.conf"));
    std::fs::write(&kinflux_source, conf(&db_k, &unique("side_kinflux"))).unwrap();
    let kinflux_file = dir.join(format!("{db_k}.toml"));
    let out = Command::new(env!("CARGO_BIN_EXE_kinflux"))
        .arg("from-telegraf")
        .arg(&kinflux_source)
        .arg("--output")
        .arg(&kinflux_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_kinflux"))
        .args(["run", "--no-progress", "--until-caught-up", "--config"])
        .arg(&kinflux_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kinflux run: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(&kinflux_file).unwrap()
    );

    let (series_t, types_t) = stored(influx, &db_t);
    let (series_k, types_k) = stored(influx, &db_k);
    assert_eq!(types_k, types_t, "field types differ");
    assert_eq!(series_k.len(), series_t.len(), "series differ");
    for (k, t) in series_k.iter().zip(&series_t) {
        assert_eq!(k, t, "a series differs");
    }
    let points: usize = series_t
        .iter()
        .map(|s| s["values"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(points, N * measurements.len(), "every record is one point");
    for t in &types_t {
        eprintln!(
            "side by side: {}: {} field keys",
            t["name"],
            t["values"].as_array().map_or(0, Vec::len)
        );
    }
    eprintln!(
        "side by side: {points} points in {} series, the same in both",
        series_t.len()
    );
    drop_database(influx, &db_t);
    drop_database(influx, &db_k);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinflux_stores_what_telegraf_stores_for_the_same_avro_and_json_topics() {
    let Ok(telegraf) = std::env::var("KINFLUX_TELEGRAF_BIN") else {
        eprintln!("SKIPPED: set KINFLUX_TELEGRAF_BIN to a Telegraf binary to compare with it");
        return;
    };
    let (brokers, influx, registry_url) = require_or_skip!(
        "KINFLUX_KAFKA_BROKERS",
        "KINFLUX_INFLUX_URL",
        "KINFLUX_REGISTRY_URL"
    );
    let dir = tempfile::tempdir().unwrap();

    // Avro, Confluent framing, the schema in Apicurio.
    let avro_topic = unique("side_avro");
    create_topic(&brokers, &avro_topic, 1).await;
    let registry = RegistryClient::new(RegistryConfig::new(&registry_url)).unwrap();
    let id = registry
        .register(&format!("{avro_topic}-value"), SCHEMA)
        .await
        .unwrap();
    let schema = Schema::parse_str(SCHEMA).unwrap();
    produce_values(&brokers, &avro_topic, 0, avro_values(&schema, id), BASE_MS).await;
    let avro_parser = format!(
        r#"data_format = "avro"
  avro_schema_registry = "{registry_url}"
  avro_tags = ["host", "region"]
  avro_timestamp = "ts"
  avro_timestamp_format = "unix_ms"
  avro_field_separator = "_""#
    );
    // JSON with json_v2: tags, typed and untyped fields, a nested path, unix_ms times.
    let json_topic = unique("side_json");
    create_topic(&brokers, &json_topic, 1).await;
    produce_values(&brokers, &json_topic, 0, json_values(), BASE_MS).await;
    let json_parser = r#"data_format = "json_v2"
  [[inputs.kafka_consumer.json_v2]]
    measurement_name = "side_json"
    timestamp_path = "time"
    timestamp_format = "unix_ms"
    [[inputs.kafka_consumer.json_v2.tag]]
      path = "host"
    [[inputs.kafka_consumer.json_v2.tag]]
      path = "region"
    [[inputs.kafka_consumer.json_v2.field]]
      path = "value"
    [[inputs.kafka_consumer.json_v2.field]]
      path = "count"
      type = "int"
    [[inputs.kafka_consumer.json_v2.field]]
      path = "ok"
    [[inputs.kafka_consumer.json_v2.field]]
      path = "note"
    [[inputs.kafka_consumer.json_v2.field]]
      path = "meta.ok"
      rename = "meta_flag""#;
    // One Telegraf file with both inputs: from-telegraf makes two [[pipeline]] tables.
    let dir = dir.path().to_owned();
    tokio::task::spawn_blocking(move || {
        run_both(
            &telegraf,
            &dir,
            |db, group| {
                let inputs = [
                    (
                        avro_topic.clone(),
                        format!("{group}-avro"),
                        avro_parser.clone(),
                    ),
                    (
                        json_topic.clone(),
                        format!("{group}-json"),
                        json_parser.to_owned(),
                    ),
                ];
                telegraf_conf(&brokers, &inputs, &influx, db)
            },
            &influx,
            &[("side.Reading", "count"), ("side_json", "count")],
        )
    })
    .await
    .unwrap();
}
