//! The bridge against the real Apicurio Registry behind a TLS front whose CA the test
//! generates (`decode.registry_ca_file`), and the registry going away mid-stream:
//! consumption pauses and resumes once it is back, without dead letters.

mod common;

use std::time::{Duration, Instant};

use common::*;
use kinflux::avro::apache_avro::{Schema, to_avro_datum, types::Value};
use kinflux::avro::framing::write_confluent_header;
use kinflux::avro::{RegistryClient, RegistryConfig};
use kinflux_testkit::influx::count;
use kinflux_testkit::kafka::produce_values;
use kinflux_testkit::tls_front::TlsFront;

const V1: &str = r#"{"type":"record","name":"Tls","namespace":"kinflux.test","fields":[
    {"name":"id","type":"string"},
    {"name":"v","type":"double"},
    {"name":"time","type":{"type":"long","logicalType":"timestamp-millis"}}]}"#;
const V2: &str = r#"{"type":"record","name":"Tls","namespace":"kinflux.test","fields":[
    {"name":"id","type":"string"},
    {"name":"v","type":"double"},
    {"name":"w","type":"long","default":0},
    {"name":"time","type":{"type":"long","logicalType":"timestamp-millis"}}]}"#;

/// `range` readings framed with schema `id`, written with `text`.
fn readings(range: std::ops::Range<usize>, id: u32, text: &str) -> Vec<Vec<u8>> {
    let schema = Schema::parse_str(text).unwrap();
    range
        .map(|i| {
            let mut fields = vec![
                ("id".into(), Value::String(format!("s{}", i % 3))),
                ("v".into(), Value::Double(i as f64)),
            ];
            if text == V2 {
                fields.push(("w".into(), Value::Long(i as i64)));
            }
            fields.push((
                "time".into(),
                Value::TimestampMillis(1_600_000_000_000 + i as i64),
            ));
            let mut out = Vec::new();
            write_confluent_header(id, &mut out);
            out.extend(to_avro_datum(&schema, Value::Record(fields)).unwrap());
            out
        })
        .collect()
}

/// The front's address, the registry's plain URL and its path, after the rule.
async fn front() -> Option<(TlsFront, String, String)> {
    let plain = kinflux_testkit::require("KINFLUX_REGISTRY_URL")?;
    let rest = plain
        .strip_prefix("http://")
        .expect("an http:// registry URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    Some((
        TlsFront::start(authority).await,
        plain.clone(),
        path.to_owned(),
    ))
}

fn decode_toml(url: &str, ca_file: &std::path::Path) -> String {
    format!(
        r#"
[decode]
format = "avro"
registry_url = "{url}"
registry_ca_file = "{}"
[decode.mapping]
measurement = {{ constant = "tls" }}
tags = ["id"]
timestamp = {{ field = "time" }}
"#,
        ca_file.display()
    )
}

async fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_registry_is_reached_with_the_ca_file_and_refused_without() {
    let Some((front, plain, path)) = front().await else {
        return;
    };
    let Some((brokers, influx, topic, db)) = case("reg_tls", 1).await else {
        return;
    };
    let registry = RegistryClient::new(RegistryConfig::new(&plain)).unwrap();
    let id = registry
        .register(&format!("{topic}-value"), V1)
        .await
        .unwrap();
    produce_values(&brokers, &topic, 0, readings(0..50, id, V1), recent_ms()).await;
    let https = format!("{}{path}", front.url());
    let toml = config_toml(
        &brokers,
        &influx,
        &topic,
        &db,
        &decode_toml(&https, &front.ca_file),
    );
    let summary = run_until_caught_up(&toml).await;
    assert_eq!((summary.points_written, summary.dead_lettered), (50, 0));
    assert_eq!(count(&influx, &db, "tls", "v"), 50);

    // The web roots do not know the test CA: the client refuses the front.
    let mut untrusting = RegistryConfig::new(&https);
    untrusting.retries = 0;
    let err = RegistryClient::new(untrusting)
        .unwrap()
        .schema_by_id(id)
        .await;
    assert!(err.is_err(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_going_away_mid_stream_pauses_and_resumes_without_dead_letters() {
    let Some((front, plain, path)) = front().await else {
        return;
    };
    let Some((brokers, influx, topic, db)) = case("reg_gone", 1).await else {
        return;
    };
    let registry = RegistryClient::new(RegistryConfig::new(&plain)).unwrap();
    let subject = format!("{topic}-value");
    let id1 = registry.register(&subject, V1).await.unwrap();
    produce_values(&brokers, &topic, 0, readings(0..100, id1, V1), recent_ms()).await;

    let https = format!("{}{path}", front.url());
    let toml = config_toml(
        &brokers,
        &influx,
        &topic,
        &db,
        &decode_toml(&https, &front.ca_file),
    );
    let config = kinflux::Config::from_toml(&toml).unwrap();
    let pipeline = kinflux::PipelineBuilder::from_config(&config)
        .unwrap()
        .build()
        .unwrap();
    let stop = kinflux::CancellationToken::new();
    let running = tokio::spawn(pipeline.run(stop.clone()));
    let stored = || count(&influx, &db, "tls", "v");
    wait_for("the first 100 points", Duration::from_secs(60), || {
        stored() == 100
    })
    .await;

    // The registry goes away; records with a schema id the bridge has not met arrive.
    front.stop();
    let id2 = registry.register(&subject, V2).await.unwrap();
    assert_ne!(id1, id2);
    produce_values(
        &brokers,
        &topic,
        0,
        readings(100..200, id2, V2),
        recent_ms(),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        stored(),
        100,
        "nothing past the unknown schema while the registry is away"
    );
    assert!(!running.is_finished(), "the bridge waits, it does not stop");

    front.resume().await;
    wait_for("the other 100 points", Duration::from_secs(90), || {
        stored() == 200
    })
    .await;
    assert_eq!(count(&influx, &db, "tls", "w"), 100);
    stop.cancel();
    let summary = running.await.unwrap().unwrap();
    assert_eq!(summary.dead_lettered, 0, "{summary:?}");
    assert_eq!(summary.dropped, 0, "{summary:?}");
    assert_eq!(summary.points_written, 200, "{summary:?}");
}
