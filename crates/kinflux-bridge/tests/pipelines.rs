//! The `kinflux` binary with several pipelines: `check-config` on the documented example,
//! and `run --until-caught-up` of two pipelines (line protocol and JSON, each its own
//! consumer group, topic and database) against the real Kafka and InfluxDB.

use std::path::Path;
use std::process::Command;

use kinflux_testkit::influx::{count, drop_database};
use kinflux_testkit::kafka::{create_topic, produce_values};
use kinflux_testkit::unique;

fn kinflux() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kinflux"));
    c.env_remove("NO_COLOR").env_remove("RUST_LOG");
    c
}

#[test]
fn check_config_accepts_the_pipelines_example_and_shows_each_pipeline() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/pipelines.toml");
    let out = kinflux()
        .env("INFLUX_TOKEN", "a-secret-token")
        .args(["check-config", "--config"])
        .arg(&example)
        .output()
        .expect("run kinflux");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "name: \"telegraf\"",
        "name: \"garden\"",
        "\"kinflux-telegraf\"",
        "\"kinflux-garden\"",
        "name: \"sites\"",
    ] {
        assert!(stdout.contains(expected), "{expected}: {stdout}");
    }
    assert!(!stdout.contains("a-secret-token"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_until_caught_up_runs_every_pipeline() {
    let Some(brokers) = kinflux_testkit::require("KINFLUX_KAFKA_BROKERS") else {
        return;
    };
    let Some(influx) = kinflux_testkit::require("KINFLUX_INFLUX_URL") else {
        return;
    };
    let lines = unique("bin_lines");
    let json = unique("bin_json");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
        - 3_600_000;
    for topic in [&lines, &json] {
        create_topic(&brokers, topic, 1).await;
    }
    let line_values = (0..10)
        .map(|i| format!("m,n={i} v={i}i {}", (now_ms + i) * 1_000_000).into_bytes())
        .collect();
    produce_values(&brokers, &lines, 0, line_values, now_ms).await;
    let json_values = (0..7)
        .map(|i| format!(r#"{{"n":"{i}","v":{i},"time":{}}}"#, now_ms + i).into_bytes())
        .collect();
    produce_values(&brokers, &json, 0, json_values, now_ms).await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = dir.path().join("pipelines.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[kafka]
brokers = ["{brokers}"]
group_id = "{lines}_group"
auto_offset_reset = "earliest"
fetch_max_wait = "100ms"

[influx]
url = "{influx}"
database = "${{topic}}"
create_database = true

[dead_letter]
on_error = "drop"

[[pipeline]]
name = "lines"
[pipeline.kafka]
topics = ["{lines}"]

[[pipeline]]
name = "json"
[pipeline.kafka]
topics = ["{json}"]
[pipeline.decode]
format = "json"
[pipeline.decode.mapping]
measurement = {{ constant = "m" }}
tags = ["n"]
timestamp = {{ field = "time", unit = "ms" }}
"#
        ),
    )
    .expect("write the config");
    let out = tokio::task::spawn_blocking(move || {
        kinflux()
            .args(["run", "--until-caught-up", "--no-progress", "--config"])
            .arg(&config)
            .output()
            .expect("run kinflux")
    })
    .await
    .expect("joined");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("done: 17 records in, 17 points written"),
        "{stdout}"
    );
    assert_eq!(count(&influx, &lines, "m", "v"), 10);
    assert_eq!(count(&influx, &json, "m", "v"), 7);
    drop_database(&influx, &lines);
    drop_database(&influx, &json);
}
