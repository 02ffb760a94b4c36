//! Mappings against the real servers: JSON with pinned types, renames, arrays of objects
//! and layout times (a whole number and a fraction in one field never conflict; a value
//! that cannot be converted is dead-lettered with its field named); Telegraf's JSON output
//! format; and Avro with the `telegraf` preset, its schema in Apicurio referencing a type
//! registered under another subject.

mod common;

use std::collections::HashMap;

use common::*;
use kinflux::avro::apache_avro::types::{Record, Value as Avro};
use kinflux::avro::apache_avro::{Schema, to_avro_datum};
use kinflux::avro::framing::write_confluent_header;
use kinflux::avro::{Reference, RegistryClient, RegistryConfig};
use kinflux_testkit::influx::{count, query, rows};
use kinflux_testkit::kafka::{produce_values, read_all};

/// `SHOW FIELD KEYS FROM m`: field key to type.
fn field_types(influx: &str, db: &str, m: &str) -> HashMap<String, String> {
    let answer = query(influx, db, &format!("SHOW FIELD KEYS FROM \"{m}\""));
    rows(&answer)
        .into_iter()
        .map(|r| {
            (
                r[0].as_str().unwrap().to_owned(),
                r[1].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_types_renames_arrays_and_layout_times_land_as_configured() {
    let Some((brokers, influx, topic, db)) = case("mapjson", 1).await else {
        return;
    };
    let mut values = Vec::new();
    for i in 0..100 {
        // One record of two objects; `temp` whole in one, a fraction in the other.
        values.push(
            format!(
                r#"[{{"tags":{{"host":"h{}"}},"at":"2023-11-14 23:{}:{:02}","temp":{i},"c":"{i}"}},
                   {{"tags":{{"host":"h{}"}},"at":"2023-11-14 23:{}:{:02}","temp":{i}.5,"c":{i}}}]"#,
                i % 2,
                13 + i / 60,
                i % 60,
                i % 2 + 2,
                13 + i / 60,
                i % 60
            )
            .into_bytes(),
        );
    }
    // Unconvertible: `c` pinned to integer.
    values.push(
        br#"{"tags":{"host":"h9"},"at":"2023-11-14 23:13:00","temp":1,"c":"seven"}"#.to_vec(),
    );
    produce_values(&brokers, &topic, 0, values, 1_650_000_000_000).await;

    let extra = r#"
[decode]
format = "json"
types = { count = "integer" }
rename = { "tags_host" = "host", "c" = "count" }
[decode.mapping]
measurement = { constant = "climate" }
tags = ["tags.host"]
timestamp = { field = "at", format = "2006-01-02 15:04:05", timezone = "Europe/Berlin" }
"#;
    let summary = run_until_caught_up(&config_toml(&brokers, &influx, &topic, &db, extra)).await;
    assert_eq!(summary.records_in, 101);
    assert_eq!(summary.dead_lettered, 1);
    assert_eq!(count(&influx, &db, "climate", "temp"), 200);
    let types = field_types(&influx, &db, "climate");
    assert_eq!(types["temp"], "float", "{types:?}");
    assert_eq!(types["count"], "integer", "{types:?}");
    let answer = query(
        &influx,
        &db,
        "SELECT temp, count FROM climate WHERE host = 'h3' AND time = '2023-11-14T22:13:01Z'",
    );
    let row = &rows(&answer)[0];
    assert_eq!(
        (row[1].as_f64(), row[2].as_i64()),
        (Some(1.5), Some(1)),
        "{answer}"
    );

    let dead = read_all(&brokers, &format!("{topic}_dlq"), 0).await;
    assert_eq!(dead.len(), 1);
    let message = dead[0]
        .record
        .headers
        .get("kinflux.error.message")
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap();
    assert!(
        message.contains("\"count\"") && message.contains("seven"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegrafs_json_output_format_is_read_as_telegraf_wrote_it() {
    let Some((brokers, influx, topic, db)) = case("maptgjson", 1).await else {
        return;
    };
    let values = (0..50)
        .map(|i| {
            if i % 2 == 0 {
                format!(
                    r#"{{"fields":{{"usage":{i},"up":true}},"name":"cpu","tags":{{"host":"a"}},"timestamp":{}}}"#,
                    1_700_000_000 + i
                )
            } else {
                format!(
                    r#"{{"metrics":[{{"fields":{{"usage":{i}.5}},"name":"cpu","tags":{{"host":"b"}},"timestamp":{t}}},{{"fields":{{"free":{i}}},"name":"mem","tags":{{}},"timestamp":{t}}}]}}"#,
                    t = 1_700_000_000 + i
                )
            }
            .into_bytes()
        })
        .collect();
    produce_values(&brokers, &topic, 0, values, 1_650_000_000_000).await;
    let extra = "[decode]\nformat = \"telegraf-json\"\nprecision = \"s\"\n";
    let summary = run_until_caught_up(&config_toml(&brokers, &influx, &topic, &db, extra)).await;
    assert_eq!(summary.dead_lettered, 0);
    assert_eq!(count(&influx, &db, "cpu", "usage"), 50);
    assert_eq!(count(&influx, &db, "mem", "free"), 25);
    assert_eq!(field_types(&influx, &db, "cpu")["usage"], "float");
    let answer = query(
        &influx,
        &db,
        "SELECT usage FROM cpu WHERE host = 'b' AND time = 1700000001000000000",
    );
    assert_eq!(rows(&answer)[0][1].as_f64(), Some(1.5), "{answer}");
}

const POS: &str = r#"{"type":"record","name":"Pos","namespace":"map","fields":[{"name":"lat","type":"double"},{"name":"lon","type":"double"}]}"#;
const READING: &str = r#"{"type":"record","name":"Reading","namespace":"map","fields":[
  {"name":"host","type":"string"},{"name":"ts","type":"long"},
  {"name":"temp","type":["null","double"]},{"name":"pos","type":"map.Pos"}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_telegraf_avro_preset_reads_schemas_with_references_from_apicurio() {
    let Some((brokers, influx, topic, db)) = case("mapavro", 1).await else {
        return;
    };
    let Some(registry_url) = kinflux_testkit::require("KINFLUX_REGISTRY_URL") else {
        return;
    };
    let registry = RegistryClient::new(RegistryConfig::new(&registry_url)).unwrap();
    let pos_subject = kinflux_testkit::unique("map_pos");
    registry.register(&pos_subject, POS).await.unwrap();
    let id = registry
        .register_with_references(
            &format!("{topic}-value"),
            READING,
            &[Reference {
                name: "map.Pos".into(),
                subject: pos_subject,
                version: 1,
            }],
        )
        .await
        .unwrap();
    // The producer writes with the schema the references resolve to.
    let schema = Schema::parse_str(&READING.replace("\"map.Pos\"", POS)).unwrap();
    let values = (0..60)
        .map(|i| {
            let mut r = Record::new(&schema).unwrap();
            r.put("host", format!("h{}", i % 3));
            r.put("ts", 1_700_000_000_000i64 + i);
            let temp = match i % 4 {
                0 => Avro::Union(0, Box::new(Avro::Null)),
                _ => Avro::Union(1, Box::new(Avro::Double(i as f64))),
            };
            r.put("temp", temp);
            r.put(
                "pos",
                Avro::Record(vec![
                    ("lat".into(), Avro::Double(1.0)),
                    ("lon".into(), Avro::Double(2.0)),
                ]),
            );
            let mut out = Vec::new();
            write_confluent_header(id, &mut out);
            out.extend(to_avro_datum(&schema, r).unwrap());
            out
        })
        .collect();
    produce_values(&brokers, &topic, 0, values, 1_650_000_000_000).await;
    let extra = format!(
        r#"
[decode]
format = "avro"
registry_url = "{registry_url}"
[decode.telegraf]
measurement = "reading"
tags = ["host"]
timestamp = "ts"
timestamp_format = "unix_ms"
field_separator = "_"
"#
    );
    let summary = run_until_caught_up(&config_toml(&brokers, &influx, &topic, &db, &extra)).await;
    assert_eq!(summary.dead_lettered, 0);
    assert_eq!(count(&influx, &db, "reading", "pos_lat"), 60);
    // Telegraf's default union mode names the branch; a null leaves the field out.
    assert_eq!(count(&influx, &db, "reading", "temp_double"), 45);
    let types = field_types(&influx, &db, "reading");
    assert_eq!(
        types["ts"], "integer",
        "Telegraf keeps the time field as a field: {types:?}"
    );
    let answer = query(
        &influx,
        &db,
        "SELECT temp_double FROM reading WHERE time = 1700000000001000000",
    );
    assert_eq!(rows(&answer)[0][1].as_f64(), Some(1.0), "{answer}");
}
