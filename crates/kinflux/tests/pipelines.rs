//! Several pipelines and routing, against the real Kafka and InfluxDB (1.x on every
//! configured server, and 2.7): two pipelines of two formats in one process, points routed
//! to databases by tag and by topic, the measurement from the topic, a v1 and a v2 target
//! at once, and offsets committed only once every target holds the records. Each check
//! compares what InfluxDB holds, point by point.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::recent_ms;
use kinflux::{Bridge, CancellationToken, Config, RunSummary};
use kinflux_testkit::influx::{query, rows, v1_servers};
use kinflux_testkit::influx2::Influx2;
use kinflux_testkit::kafka::{create_topic, produce_values, read_all};
use kinflux_testkit::unique;
use serde_json::Value;

/// Runs every pipeline of `config` until each has caught up.
async fn run_bridge(config: &str) -> RunSummary {
    let config = Config::from_toml(config).expect("valid test config");
    let bridge = Bridge::from_config(&config, |b| b.until_caught_up(true)).expect("valid bridge");
    tokio::time::timeout(
        Duration::from_secs(300),
        bridge.run(CancellationToken::new()),
    )
    .await
    .expect("caught up within 5 minutes")
    .expect("ran without error")
}

/// Every point of every measurement of `db` as `measurement,tags fields time`, each
/// column that holds a value, sorted: what a v1 server stores, exactly.
fn v1_points(url: &str, db: &str) -> BTreeSet<String> {
    v1_points_in(url, db, None)
}

/// [`v1_points`] of retention policy `rp` (the database's default when `None`).
fn v1_points_in(url: &str, db: &str, rp: Option<&str>) -> BTreeSet<String> {
    let from = |m: &str| match rp {
        Some(rp) => format!("\"{rp}\".\"{m}\""),
        None => format!("\"{m}\""),
    };
    let measurements = query(url, db, "SHOW MEASUREMENTS");
    let mut out = BTreeSet::new();
    for m in rows(&measurements) {
        let name = m[0].as_str().expect("a measurement name").to_owned();
        let tag_keys: BTreeSet<String> =
            rows(&query(url, db, &format!("SHOW TAG KEYS FROM \"{name}\"")))
                .iter()
                .filter_map(|r| r[0].as_str().map(str::to_owned))
                .collect();
        let answer = query(url, db, &format!("SELECT * FROM {}", from(&name)));
        let columns: Vec<String> = answer
            .pointer("/results/0/series/0/columns")
            .and_then(Value::as_array)
            .map(|c| {
                c.iter()
                    .filter_map(|c| c.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        for row in rows(&answer) {
            let mut tags = Vec::new();
            let mut fields = Vec::new();
            let mut time = String::new();
            for (column, value) in columns.iter().zip(&row) {
                let text = match value {
                    Value::Null => continue,
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                if column == "time" {
                    time = text;
                } else if tag_keys.contains(column) {
                    tags.push(format!(",{column}={text}"));
                } else {
                    fields.push(format!("{column}={text}"));
                }
            }
            out.insert(format!(
                "{name}{} {} {time}",
                tags.concat(),
                fields.join(",")
            ));
        }
    }
    out
}

/// Every point of `bucket` as `measurement,tags field=value time` (one line per field),
/// sorted: what a v2 server stores, exactly.
fn v2_points(server: &Influx2, bucket: &str) -> BTreeSet<String> {
    let rows = server.flux(&format!(
        r#"from(bucket: "{bucket}") |> range(start: 0) |> drop(columns: ["_start", "_stop"]) |> map(fn: (r) => ({{r with _time: uint(v: r._time)}}))"#
    ));
    let mut out = BTreeSet::new();
    let mut header: Vec<String> = Vec::new();
    for row in rows {
        if row.iter().any(|c| c == "_measurement") {
            header = row;
            continue;
        }
        let cell = |name: &str| {
            header
                .iter()
                .position(|h| h == name)
                .map(|i| row[i].clone())
                .unwrap_or_default()
        };
        let mut tags: Vec<String> = header
            .iter()
            .zip(&row)
            .filter(|(h, _)| {
                !h.is_empty() && !h.starts_with('_') && *h != "result" && *h != "table"
            })
            .map(|(h, v)| format!(",{h}={v}"))
            .collect();
        tags.sort();
        out.insert(format!(
            "{}{} {}={} {}",
            cell("_measurement"),
            tags.concat(),
            cell("_field"),
            cell("_value"),
            cell("_time")
        ));
    }
    out
}

fn set(lines: &[String]) -> BTreeSet<String> {
    lines.iter().cloned().collect()
}

/// Two pipelines in one process: line protocol and JSON, each from its own topic, in its
/// own consumer group, both writing to one shared target whose database is the topic.
/// Each stores exactly its points, the bad JSON record goes to its pipeline's dead-letter
/// topic, and both groups committed: a second run reads nothing again.
#[tokio::test]
async fn two_pipelines_of_two_formats_share_a_target_and_commit_apart() {
    let Some(brokers) = kinflux_testkit::require("KINFLUX_KAFKA_BROKERS") else {
        return;
    };
    let Some(influx) = kinflux_testkit::require("KINFLUX_INFLUX_URL") else {
        return;
    };
    let lines_topic = unique("pl_lines");
    let json_topic = unique("pl_json");
    let group = unique("pl_group");
    create_topic(&brokers, &lines_topic, 2).await;
    create_topic(&brokers, &json_topic, 1).await;
    let t0 = recent_ms() * 1_000_000;
    let ms = recent_ms();
    produce_values(
        &brokers,
        &lines_topic,
        0,
        vec![format!("cpu,host=a usage=1.5 {t0}").into_bytes()],
        ms,
    )
    .await;
    produce_values(
        &brokers,
        &lines_topic,
        1,
        vec![format!("cpu,host=b usage=2.5 {t0}\ncpu,host=c usage=3 {}", t0 + 1).into_bytes()],
        ms,
    )
    .await;
    let t0_ms = t0 / 1_000_000;
    produce_values(
        &brokers,
        &json_topic,
        0,
        vec![
            format!(r#"{{"zone":"north","moisture":0.25,"time":{t0_ms}}}"#).into_bytes(),
            b"{not json".to_vec(),
            format!(r#"{{"zone":"south","moisture":0.5,"time":{}}}"#, t0_ms + 1).into_bytes(),
        ],
        ms,
    )
    .await;
    let config = format!(
        r#"
[kafka]
brokers = ["{brokers}"]
group_id = "{group}"
auto_offset_reset = "earliest"
fetch_max_wait = "100ms"

[influx.archive]
url = "{influx}"
database = "${{topic}}"
create_database = true

[dead_letter]
topic = "{group}_dlq"

[[pipeline]]
name = "lines"
[pipeline.kafka]
topics = ["{lines_topic}"]

[[pipeline]]
name = "json"
[pipeline.kafka]
topics = ["{json_topic}"]
[pipeline.decode]
format = "json"
[pipeline.decode.mapping]
measurement = {{ constant = "soil" }}
tags = ["zone"]
timestamp = {{ field = "time", unit = "ms" }}
[pipeline.dead_letter]
topic = "{json_topic}_dlq"
"#
    );
    let summary = run_bridge(&config).await;
    assert_eq!(summary.records_in, 5, "{summary:?}");
    assert_eq!(summary.points_written, 5, "{summary:?}");
    assert_eq!(summary.dead_lettered, 1, "{summary:?}");
    assert_eq!(
        v1_points(&influx, &lines_topic),
        set(&[
            format!("cpu,host=a usage=1.5 {t0}"),
            format!("cpu,host=b usage=2.5 {t0}"),
            format!("cpu,host=c usage=3 {}", t0 + 1),
        ])
    );
    assert_eq!(
        v1_points(&influx, &json_topic),
        set(&[
            format!("soil,zone=north moisture=0.25 {t0}"),
            format!("soil,zone=south moisture=0.5 {}", t0 + 1_000_000),
        ])
    );
    // The bad record went to its pipeline's dead-letter topic, not the shared one.
    let dead = read_all(&brokers, &format!("{json_topic}_dlq"), 0).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].record.value.as_deref(),
        Some(b"{not json".as_slice())
    );
    // Each group committed its own offsets: a second run reads nothing again.
    let again = run_bridge(&config).await;
    assert_eq!(again.records_in, 0, "{again:?}");
    for db in [&lines_topic, &json_topic] {
        kinflux_testkit::influx::drop_database(&influx, db);
    }
}

/// One pipeline, points routed by their `db` tag to two databases (the tag left out of
/// what is written); points without it go to the target's database. On every configured
/// InfluxDB 1.x.
#[tokio::test]
async fn points_are_routed_to_databases_by_tag() {
    let Some(brokers) = kinflux_testkit::require("KINFLUX_KAFKA_BROKERS") else {
        return;
    };
    for influx in v1_servers() {
        let topic = unique("pl_tag");
        let (alpha, beta, rest) = (unique("pl_alpha"), unique("pl_beta"), unique("pl_rest"));
        create_topic(&brokers, &topic, 1).await;
        let t0 = recent_ms() * 1_000_000;
        produce_values(
            &brokers,
            &topic,
            0,
            vec![
                format!("m,db={alpha},k=1 v=1i {t0}\nm,db={beta},k=2 v=2i {t0}").into_bytes(),
                format!("m,k=3 v=3i {t0}\nm,db={alpha},k=4 v=4i {t0}").into_bytes(),
            ],
            recent_ms(),
        )
        .await;
        let config = format!(
            r#"
[kafka]
brokers = ["{brokers}"]
topics = ["{topic}"]
group_id = "{topic}_group"
auto_offset_reset = "earliest"
fetch_max_wait = "100ms"

[influx]
url = "{influx}"
database = "{rest}"
database_tag = "db"
exclude_database_tag = true
create_database = true

[dead_letter]
topic = "{topic}_dlq"
"#
        );
        let summary = run_bridge(&config).await;
        assert_eq!(summary.points_written, 4, "{influx}: {summary:?}");
        assert_eq!(
            v1_points(&influx, &alpha),
            set(&[format!("m,k=1 v=1 {t0}"), format!("m,k=4 v=4 {t0}")]),
            "{influx}"
        );
        assert_eq!(
            v1_points(&influx, &beta),
            set(&[format!("m,k=2 v=2 {t0}")]),
            "{influx}"
        );
        assert_eq!(
            v1_points(&influx, &rest),
            set(&[format!("m,k=3 v=3 {t0}")]),
            "{influx}"
        );
        for db in [&alpha, &beta, &rest] {
            kinflux_testkit::influx::drop_database(&influx, db);
        }
    }
}

/// Routing by topic: two topics of one `topic_regex`, each into the database its name
/// gives (`kafka_${topic}`), each point's measurement the topic's name.
#[tokio::test]
async fn the_topic_names_the_database_and_the_measurement() {
    let Some(brokers) = kinflux_testkit::require("KINFLUX_KAFKA_BROKERS") else {
        return;
    };
    for influx in v1_servers() {
        topic_routing_on(&brokers, &influx).await;
    }
}

async fn topic_routing_on(brokers: &str, influx: &str) {
    let (brokers, influx) = (brokers.to_owned(), influx.to_owned());
    let prefix = unique("pl_topic");
    let (a, b) = (format!("{prefix}_a"), format!("{prefix}_b"));
    let t0 = recent_ms() * 1_000_000;
    for (topic, value) in [(&a, 1), (&b, 2)] {
        create_topic(&brokers, topic, 1).await;
        produce_values(
            &brokers,
            topic,
            0,
            vec![format!("ignored,host=h v={value}i {t0}").into_bytes()],
            recent_ms(),
        )
        .await;
    }
    let config = format!(
        r#"
measurement = "${{topic}}"

[kafka]
brokers = ["{brokers}"]
topic_regex = "^{prefix}_.*"
group_id = "{prefix}_group"
auto_offset_reset = "earliest"
fetch_max_wait = "100ms"
metadata_refresh_interval = "1s"

[influx]
url = "{influx}"
database = "kafka_${{topic}}"
create_database = true

[dead_letter]
topic = "{prefix}_dlq"
"#
    );
    let summary = run_bridge(&config).await;
    assert_eq!(summary.points_written, 2, "{summary:?}");
    assert_eq!(
        v1_points(&influx, &format!("kafka_{a}")),
        set(&[format!("{a},host=h v=1 {t0}")])
    );
    assert_eq!(
        v1_points(&influx, &format!("kafka_{b}")),
        set(&[format!("{b},host=h v=2 {t0}")])
    );
    for topic in [&a, &b] {
        kinflux_testkit::influx::drop_database(&influx, &format!("kafka_{topic}"));
    }
}

/// A v1 and a v2 target at once: every point in the v1 database as it came, and in the
/// v2 bucket its `site` tag names (left out there), or the default bucket.
#[tokio::test]
async fn a_v1_and_a_v2_target_each_get_every_point() {
    let Some(brokers) = kinflux_testkit::require("KINFLUX_KAFKA_BROKERS") else {
        return;
    };
    let Some(server) = Influx2::from_env() else {
        return;
    };
    for influx in v1_servers() {
        let topic = unique("pl_both");
        let db = unique("pl_v1");
        let (oslo, rest) = (unique("pl_oslo"), unique("pl_rest"));
        create_topic(&brokers, &topic, 1).await;
        let t0 = recent_ms() * 1_000_000;
        produce_values(
            &brokers,
            &topic,
            0,
            vec![
                format!("air,site={oslo},room=1 t=20.5 {t0}").into_bytes(),
                format!("air,room=2 t=21.5 {t0}").into_bytes(),
            ],
            recent_ms(),
        )
        .await;
        let config = format!(
            r#"
[kafka]
brokers = ["{brokers}"]
topics = ["{topic}"]
group_id = "{topic}_group"
auto_offset_reset = "earliest"
fetch_max_wait = "100ms"

[influx.one]
url = "{influx}"
database = "{db}"
create_database = true

[influx.two]
api = "v2"
url = "{url}"
org = "{org}"
token = "{token}"
bucket = "{rest}"
bucket_tag = "site"
exclude_bucket_tag = true
create_bucket = true

[dead_letter]
topic = "{topic}_dlq"
"#,
            url = server.url,
            org = server.org,
            token = server.token,
        );
        let summary = run_bridge(&config).await;
        // Each point is written once per target.
        assert_eq!(summary.points_written, 4, "{influx}: {summary:?}");
        assert_eq!(
            v1_points(&influx, &db),
            set(&[
                format!("air,room=1,site={oslo} t=20.5 {t0}"),
                format!("air,room=2 t=21.5 {t0}"),
            ]),
            "{influx}"
        );
        assert_eq!(
            v2_points(&server, &oslo),
            set(&[format!("air,room=1 t=20.5 {t0}")])
        );
        assert_eq!(
            v2_points(&server, &rest),
            set(&[format!("air,room=2 t=21.5 {t0}")])
        );
        kinflux_testkit::influx::drop_database(&influx, &db);
        server.delete_bucket(&oslo);
        server.delete_bucket(&rest);
    }
}

/// The commit rule across targets: while one target is down, the other gets the points
/// but nothing is committed; once both can write, the records are read again and both
/// hold them.
#[tokio::test]
async fn nothing_is_committed_until_every_target_holds_the_records() {
    let Some(brokers) = kinflux_testkit::require("KINFLUX_KAFKA_BROKERS") else {
        return;
    };
    let Some(influx) = kinflux_testkit::require("KINFLUX_INFLUX_URL") else {
        return;
    };
    let topic = unique("pl_commit");
    let (up, down) = (unique("pl_up"), unique("pl_down"));
    create_topic(&brokers, &topic, 1).await;
    let t0 = recent_ms() * 1_000_000;
    produce_values(
        &brokers,
        &topic,
        0,
        vec![format!("m v=1i {t0}").into_bytes()],
        recent_ms(),
    )
    .await;
    let (outage, requests) = common::unavailable_server().await;
    kinflux_testkit::influx::create_database(&influx, &down);
    let config = |second: &str| {
        format!(
            r#"
[kafka]
brokers = ["{brokers}"]
topics = ["{topic}"]
group_id = "{topic}_group"
auto_offset_reset = "earliest"
fetch_max_wait = "100ms"
commit_interval = "100ms"

[influx.up]
url = "{influx}"
database = "{up}"
create_database = true

[influx.second]
url = "{second}"
database = "{down}"

[batch]
max_age = "50ms"

[dead_letter]
topic = "{topic}_dlq"
"#
        )
    };
    let during = Config::from_toml(&config(&outage)).expect("valid");
    let bridge =
        Bridge::from_config(&during, |b| b.drain_timeout(Duration::from_secs(1))).expect("valid");
    let metrics = bridge.metrics();
    let stop = CancellationToken::new();
    let run = tokio::spawn(bridge.run(stop.clone()));
    // The healthy target has the point, the other is retried.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while kinflux_testkit::influx::count(&influx, &up, "m", "v") < 1
        || requests.load(std::sync::atomic::Ordering::SeqCst) < 2
    {
        assert!(tokio::time::Instant::now() < deadline, "no write");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Offset 0 may be committed (nothing below it is settled), never past the record.
    let partitions = metrics.snapshot().partitions;
    assert!(!partitions.is_empty());
    for gauges in partitions.values() {
        assert!(
            gauges.committed.unwrap_or(0) == 0,
            "committed during the outage: {gauges:?}"
        );
    }
    stop.cancel();
    run.await.expect("joined").expect("a clean stop");
    // Both targets up: the record is read again (nothing was committed) and lands in both.
    let after = run_bridge(&config(&influx)).await;
    assert_eq!(after.records_in, 1, "{after:?}");
    assert_eq!(after.points_written, 2, "{after:?}");
    assert_eq!(v1_points(&influx, &down), set(&[format!("m v=1 {t0}")]));
    assert_eq!(v1_points(&influx, &up), set(&[format!("m v=1 {t0}")]));
    for db in [&up, &down] {
        kinflux_testkit::influx::drop_database(&influx, db);
    }
}

/// Retention policies by tag: a point's `rp` tag names its retention policy (the tag left
/// out), the others go to the database's default. On every configured InfluxDB 1.x.
#[tokio::test]
async fn points_are_routed_to_retention_policies_by_tag() {
    let Some(brokers) = kinflux_testkit::require("KINFLUX_KAFKA_BROKERS") else {
        return;
    };
    for influx in v1_servers() {
        let topic = unique("pl_rp");
        let db = unique("pl_rpdb");
        kinflux_testkit::influx::create_database(&influx, &db);
        kinflux_testkit::influx::exec(
            &influx,
            &format!("CREATE RETENTION POLICY \"short\" ON \"{db}\" DURATION 30d REPLICATION 1"),
        );
        create_topic(&brokers, &topic, 1).await;
        let t0 = recent_ms() * 1_000_000;
        produce_values(
            &brokers,
            &topic,
            0,
            vec![format!("m,rp=short,k=1 v=1i {t0}\nm,k=2 v=2i {t0}").into_bytes()],
            recent_ms(),
        )
        .await;
        let config = format!(
            r#"
[kafka]
brokers = ["{brokers}"]
topics = ["{topic}"]
group_id = "{topic}_group"
auto_offset_reset = "earliest"
fetch_max_wait = "100ms"

[influx]
url = "{influx}"
database = "{db}"
retention_policy_tag = "rp"
exclude_retention_policy_tag = true

[dead_letter]
topic = "{topic}_dlq"
"#
        );
        let summary = run_bridge(&config).await;
        assert_eq!(summary.points_written, 2, "{influx}: {summary:?}");
        assert_eq!(
            v1_points_in(&influx, &db, Some("short")),
            set(&[format!("m,k=1 v=1 {t0}")]),
            "{influx}"
        );
        assert_eq!(
            v1_points_in(&influx, &db, Some("autogen")),
            set(&[format!("m,k=2 v=2 {t0}")]),
            "{influx}"
        );
        kinflux_testkit::influx::drop_database(&influx, &db);
    }
}

/// A pipeline whose target refuses its credentials stops, the bridge stops the other
/// pipelines, and the error names the pipeline.
#[tokio::test]
async fn a_failing_pipeline_stops_the_bridge_and_is_named() {
    let Some(brokers) = kinflux_testkit::require("KINFLUX_KAFKA_BROKERS") else {
        return;
    };
    let Some(influx) = kinflux_testkit::require("KINFLUX_INFLUX_URL") else {
        return;
    };
    let Some(server) = Influx2::from_env() else {
        return;
    };
    let topic = unique("pl_fail");
    create_topic(&brokers, &topic, 1).await;
    produce_values(
        &brokers,
        &topic,
        0,
        vec![format!("m v=1i {}", recent_ms() * 1_000_000).into_bytes()],
        recent_ms(),
    )
    .await;
    let config = format!(
        r#"
[kafka]
brokers = ["{brokers}"]
topics = ["{topic}"]
group_id = "{topic}_group"
auto_offset_reset = "earliest"
fetch_max_wait = "100ms"

[influx.good]
url = "{influx}"
database = "{topic}"
create_database = true

[influx.bad]
api = "v2"
url = "{url}"
org = "{org}"
bucket = "{topic}"
token = "not-the-token"

[dead_letter]
topic = "{topic}_dlq"

[[pipeline]]
name = "healthy"
targets = ["good"]

[[pipeline]]
name = "locked-out"
targets = ["bad"]
"#,
        url = server.url,
        org = server.org,
    );
    let config = Config::from_toml(&config).expect("valid");
    let bridge = Bridge::from_config(&config, |b| b).expect("valid");
    let result = tokio::time::timeout(
        Duration::from_secs(60),
        bridge.run(CancellationToken::new()),
    )
    .await
    .expect("the bridge stops by itself");
    let error = result.expect_err("a target refuses the token").to_string();
    assert!(
        error.starts_with("pipeline locked-out: influxdb:"),
        "{error}"
    );
    kinflux_testkit::influx::drop_database(&influx, &topic);
}

/// A line one target refuses and the other stores: the other target keeps it, the record
/// goes to the dead-letter topic with the refusing target's name, and the offset moves
/// on (a second run reads nothing again).
#[tokio::test]
async fn a_record_one_target_refuses_is_dead_lettered_naming_that_target() {
    let Some(brokers) = kinflux_testkit::require("KINFLUX_KAFKA_BROKERS") else {
        return;
    };
    let Some(influx) = kinflux_testkit::require("KINFLUX_INFLUX_URL") else {
        return;
    };
    let topic = unique("pl_refuse");
    let (accepts, refuses) = (unique("pl_accepts"), unique("pl_refuses"));
    let t0 = recent_ms() * 1_000_000;
    // The refusing database holds `v` as a string: an integer `v` conflicts there.
    kinflux_testkit::influx::create_database(&influx, &refuses);
    let seeded = kinflux_testkit::influx::write(
        &influx,
        &refuses,
        "n",
        format!("m v=\"text\" {}", t0 - 1).as_bytes(),
    );
    assert_eq!(seeded.status, 204, "{}", seeded.body);
    create_topic(&brokers, &topic, 1).await;
    produce_values(
        &brokers,
        &topic,
        0,
        vec![format!("m v=1i {t0}").into_bytes()],
        recent_ms(),
    )
    .await;
    let config = format!(
        r#"
[kafka]
brokers = ["{brokers}"]
topics = ["{topic}"]
group_id = "{topic}_group"
auto_offset_reset = "earliest"
fetch_max_wait = "100ms"

[influx.first]
url = "{influx}"
database = "{accepts}"
create_database = true

[influx.second]
url = "{influx}"
database = "{refuses}"

[dead_letter]
topic = "{topic}_dlq"
"#
    );
    let summary = run_bridge(&config).await;
    assert_eq!(summary.points_written, 1, "{summary:?}");
    assert_eq!(summary.dead_lettered, 1, "{summary:?}");
    assert_eq!(v1_points(&influx, &accepts), set(&[format!("m v=1 {t0}")]));
    assert_eq!(
        v1_points(&influx, &refuses),
        set(&[format!("m v=text {}", t0 - 1)])
    );
    let dead = read_all(&brokers, &format!("{topic}_dlq"), 0).await;
    assert_eq!(dead.len(), 1);
    let message = dead[0]
        .record
        .headers
        .get("kinflux.error.message")
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default();
    assert!(
        message.starts_with("target second: line refused by InfluxDB")
            && message.contains("conflict"),
        "{message}"
    );
    let again = run_bridge(&config).await;
    assert_eq!(again.records_in, 0, "{again:?}");
    for db in [&accepts, &refuses] {
        kinflux_testkit::influx::drop_database(&influx, db);
    }
}

/// A tag that names a database that does not exist (and is not to be created) fails only
/// the records routed there: they are dead-lettered, the others are written, the
/// pipeline goes on.
#[tokio::test]
async fn a_tag_naming_a_missing_database_dead_letters_only_its_records() {
    let Some(brokers) = kinflux_testkit::require("KINFLUX_KAFKA_BROKERS") else {
        return;
    };
    let Some(influx) = kinflux_testkit::require("KINFLUX_INFLUX_URL") else {
        return;
    };
    let topic = unique("pl_missing");
    let db = unique("pl_known");
    let missing = unique("pl_nowhere");
    kinflux_testkit::influx::create_database(&influx, &db);
    create_topic(&brokers, &topic, 1).await;
    let t0 = recent_ms() * 1_000_000;
    produce_values(
        &brokers,
        &topic,
        0,
        vec![
            format!("m,k=1 v=1i {t0}").into_bytes(),
            format!("m,db={missing},k=2 v=2i {t0}").into_bytes(),
        ],
        recent_ms(),
    )
    .await;
    let config = format!(
        r#"
[kafka]
brokers = ["{brokers}"]
topics = ["{topic}"]
group_id = "{topic}_group"
auto_offset_reset = "earliest"
fetch_max_wait = "100ms"

[influx]
url = "{influx}"
database = "{db}"
database_tag = "db"

[dead_letter]
topic = "{topic}_dlq"
"#
    );
    let summary = run_bridge(&config).await;
    assert_eq!(summary.points_written, 1, "{summary:?}");
    assert_eq!(summary.dead_lettered, 1, "{summary:?}");
    assert_eq!(v1_points(&influx, &db), set(&[format!("m,k=1 v=1 {t0}")]));
    let dead = read_all(&brokers, &format!("{topic}_dlq"), 0).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0]
            .record
            .headers
            .get("kinflux.source.offset")
            .map(Vec::as_slice),
        Some(b"1".as_slice())
    );
    kinflux_testkit::influx::drop_database(&influx, &db);
}
