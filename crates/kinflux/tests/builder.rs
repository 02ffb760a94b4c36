//! A pipeline built in code: the builder checks what `Config::from_toml` checks, names
//! the same keys, and a program's own decoder runs in a real pipeline.

mod common;

use std::time::Duration;

use common::*;
use kinflux::batch::FlushPolicy;
use kinflux::config::{OnError, StartAt};
use kinflux::decode::{Decode, DecodeFailure, Decoding, Emitter, Input};
use kinflux::influx::{Secret, WriterConfig};
use kinflux::kafka::{ConsumerConfig, DeadLetterConfig};
use kinflux::series::Point;
use kinflux::{CancellationToken, ErrorClass, Pipeline, PipelineBuilder};
use kinflux_testkit::influx::count;
use kinflux_testkit::kafka::{create_topic, produce_values, read_all};
use kinflux_testkit::unique;

fn consumer() -> ConsumerConfig {
    ConsumerConfig::new(["127.0.0.1:9092"], "g", ["t"])
}

fn builder() -> PipelineBuilder {
    Pipeline::builder(consumer(), WriterConfig::v1("http://127.0.0.1:8086", "db"))
        .dead_letter(DeadLetterConfig::new(["127.0.0.1:9092"], "t-dlq"))
}

fn error_of(b: PipelineBuilder) -> String {
    b.build().unwrap_err().to_string()
}

#[test]
fn build_checks_every_setting_and_names_the_key() {
    builder().build().expect("a complete builder builds");
    assert!(
        error_of(Pipeline::builder(
            consumer(),
            WriterConfig::v1("http://127.0.0.1:8086", "db")
        ))
        .starts_with("dead_letter.topic: required")
    );
    Pipeline::builder(consumer(), WriterConfig::v1("http://127.0.0.1:8086", "db"))
        .on_error(OnError::Drop)
        .build()
        .expect("no dead-letter topic is needed to drop");
    assert_eq!(
        error_of(Pipeline::builder(
            consumer(),
            WriterConfig::v1("http://127.0.0.1:8086", "")
        )),
        "influx.database: required with api = \"v1\""
    );
    assert_eq!(
        error_of(
            Pipeline::builder(
                consumer(),
                WriterConfig::v2("http://h:8086", "o", "b", Secret::new(""))
            )
            .on_error(OnError::Drop)
        ),
        "influx.token: required with api = \"v2\""
    );
    assert_eq!(
        error_of(
            Pipeline::builder(consumer(), WriterConfig::v1("h:8086", "db")).on_error(OnError::Stop)
        ),
        "influx.url: must start with http:// or https://"
    );
    assert_eq!(
        error_of(builder().batch(FlushPolicy {
            max_points: 0,
            ..FlushPolicy::default()
        })),
        "batch.max_points: must be at least 1"
    );
    assert_eq!(
        error_of(builder().start_at(StartAt::Offset(-3))),
        "kafka.start_at: offset -3 is negative"
    );
    assert_eq!(
        error_of(builder().commit_interval(Duration::ZERO)),
        "kafka.commit_interval: must be longer than 0"
    );
    let mut no_group = consumer();
    no_group.group_id.clear();
    assert_eq!(
        error_of(
            Pipeline::builder(no_group, WriterConfig::v1("http://h:8086", "db"))
                .on_error(OnError::Drop)
        ),
        "kafka.group_id: must not be empty"
    );
    let mut tags = kinflux::config::TagsConfig::default();
    tags.static_tags.insert("time".into(), "x".into());
    assert_eq!(
        error_of(builder().tags(tags)),
        "tags.time: tag key \"time\" is reserved for the timestamp"
    );
}

/// `name,value` text records, the crate documentation's example decoder.
#[derive(Debug)]
struct Csv;

impl Decode for Csv {
    fn decode_record<'a>(&'a self, input: Input<'a>, out: &'a mut Emitter<'_>) -> Decoding<'a> {
        let text = String::from_utf8_lossy(input.value);
        let parsed = text.trim().split_once(',').and_then(|(name, v)| {
            let v: f64 = v.parse().ok()?;
            let mut point = Point::builder(name).field("value", v);
            if let Some(t) = input.default_time {
                point = point.timestamp(t);
            }
            point.build().ok()
        });
        match parsed {
            Some(point) => {
                out.point(point.as_point_ref());
                Decoding::ok()
            }
            None => Decoding::failed(DecodeFailure::new(
                ErrorClass::Decode,
                "expected name,value",
            )),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_programs_own_decoder_runs_in_a_pipeline_built_in_code() {
    let Some((brokers, influx)) = servers() else {
        return;
    };
    let topic = unique("csv");
    let db = unique("csv_db");
    create_topic(&brokers, &topic, 1).await;
    let values = (0..50)
        .map(|i| {
            if i == 7 {
                b"garbage".to_vec()
            } else {
                format!("csv_temp,{i}.5").into_bytes()
            }
        })
        .collect();
    produce_values(&brokers, &topic, 0, values, recent_ms()).await;

    let mut consumer = ConsumerConfig::new([brokers.clone()], format!("{topic}_group"), [&topic]);
    consumer.fetch_max_wait = Duration::from_millis(100);
    consumer.session_timeout = Duration::from_secs(10);
    consumer.heartbeat_interval = Duration::from_secs(1);
    let mut writer = WriterConfig::v1(&influx, &db);
    writer.create_database = true;
    let mut dead_letter = DeadLetterConfig::new([brokers.clone()], format!("{topic}_dlq"));
    dead_letter.create_topic = true;
    let pipeline = Pipeline::builder(consumer, writer)
        .decoder(Csv)
        .dead_letter(dead_letter)
        .start_at(StartAt::Earliest)
        .commit_interval(Duration::from_millis(500))
        .until_caught_up(true)
        .build()
        .unwrap();
    let summary = tokio::time::timeout(
        Duration::from_secs(120),
        pipeline.run(CancellationToken::new()),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!((summary.records_in, summary.points_written), (50, 49));
    assert_eq!(summary.dead_lettered, 1);
    assert_eq!(count(&influx, &db, "csv_temp", "value"), 49);
    let dead = read_all(&brokers, &format!("{topic}_dlq"), 0).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].record.value.as_deref(), Some(&b"garbage"[..]));
}
