//! `kinflux test` against the real Kafka: records of the configured topics are decoded
//! and printed as the pipeline would write them, without joining the group, committing or
//! writing to InfluxDB; and records from files, one per line.

use std::path::Path;
use std::process::{Command, Output};

use kinflux_testkit::bridge_config::BridgeConfig;
use kinflux_testkit::{influx, kafka, require, unique};

fn kinflux() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kinflux"));
    c.env_remove("NO_COLOR").env_remove("RUST_LOG");
    c
}

fn run(cmd: &mut Command) -> (Output, String) {
    let out = cmd.output().expect("run kinflux");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, stdout)
}

fn write_config(dir: &Path, toml: &str) -> std::path::PathBuf {
    let path = dir.join("bridge.toml");
    std::fs::write(&path, toml).expect("write the config");
    path
}

/// The consumer groups the broker knows, by Python's confluent-kafka (librdkafka).
fn groups(brokers: &str) -> Option<Vec<String>> {
    let script = "import sys\nfrom confluent_kafka.admin import AdminClient\n\
                  a = AdminClient({'bootstrap.servers': sys.argv[1]})\n\
                  r = a.list_consumer_groups().result(20)\n\
                  print('\\n'.join(g.group_id for g in r.valid))\n";
    let out = Command::new("python3")
        .args(["-c", script, brokers])
        .output()
        .ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn test_prints_what_would_be_written_and_where_without_joining_or_writing() {
    let (Some(brokers), Some(url)) = (
        require("KINFLUX_KAFKA_BROKERS"),
        require("KINFLUX_INFLUX_URL"),
    ) else {
        return;
    };
    let topic = unique("dry_run");
    let database = topic.replace('-', "_");
    kafka::create_topic(&brokers, &topic, 2).await;
    let base = 1_700_000_000_000;
    kafka::produce_values(
        &brokers,
        &topic,
        0,
        vec![
            b"soil,zone=north moisture=0.31 1700000000000000000".to_vec(),
            b"soil,zone=north moisture=0.32 1700000001000000000\nnot line protocol".to_vec(),
        ],
        base,
    )
    .await;
    kafka::produce_values(
        &brokers,
        &topic,
        1,
        vec![b"soil,zone=south moisture=0.5".to_vec()],
        base + 10,
    )
    .await;

    let dir = tempfile::tempdir().expect("temp dir");
    let config = BridgeConfig::new(&brokers, &url, &topic, &database)
        .section("[tags]\ntopic_tag = \"topic\"\nsite = \"east\"")
        .toml();
    let config = write_config(dir.path(), &config);
    let (out, stdout) = run(kinflux()
        .args(["test", "--from", "earliest", "--config"])
        .arg(&config));
    // A dead letter makes the exit status 1.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let target = format!("-> influx v1 {url} db={database}");
    for expected in [
        format!("# {topic}/0@0: 1 point(s) {target}"),
        format!("soil,site=east,topic={topic},zone=north moisture=0.31 1700000000000000000"),
        format!("soil,site=east,topic={topic},zone=north moisture=0.32 1700000001000000000"),
        // No time in the data: the Kafka record's (base + 10 + 1 ms).
        format!("soil,site=east,topic={topic},zone=south moisture=0.5 1700000000011000000"),
        "# 3 record(s): 3 point(s), 1 dead letter(s)".to_owned(),
    ] {
        assert!(
            stdout.lines().any(|l| l == expected),
            "missing {expected:?} in\n{stdout}"
        );
    }
    let dead = stdout
        .lines()
        .find(|l| l.contains("dead letter"))
        .expect("a dead-letter line");
    assert!(
        dead.starts_with(&format!(
            "# {topic}/0@1: dead letter (to {topic}_dlq), part of it, class decode: "
        )),
        "{dead}"
    );
    // Every other line is a comment: stdout is line protocol as it would be written.
    let points = stdout.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(points, 3, "{stdout}");

    // The newest two records, in time order.
    let (out, stdout) = run(kinflux()
        .args(["test", "--max-records", "2", "--config"])
        .arg(&config));
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let records: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with(&format!("# {topic}/")))
        .collect();
    assert!(
        records[0].starts_with(&format!("# {topic}/0@1")),
        "{stdout}"
    );
    assert!(
        records
            .last()
            .is_some_and(|l| l.starts_with(&format!("# {topic}/1@0"))),
        "{stdout}"
    );
    assert!(
        stdout.contains("# 2 record(s): 2 point(s), 1 dead letter(s)"),
        "{stdout}"
    );

    // Only good records: exit 0.
    let (out, stdout) = run(kinflux()
        .args(["test", "--max-records", "1", "--config"])
        .arg(&config));
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("# 1 record(s): 1 point(s), 0 dead letter(s)"),
        "{stdout}"
    );

    // Nothing joined, committed or written.
    if let Some(groups) = groups(&brokers) {
        assert!(!groups.contains(&format!("{topic}_group")), "{groups:?}");
    }
    let databases = influx::query(&url, "", "SHOW DATABASES");
    assert!(!databases.to_string().contains(&database), "{databases}");
}

#[test]
fn test_reads_records_from_files_one_per_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    // The servers are never asked: an input file needs no Kafka and no InfluxDB.
    let config = BridgeConfig::new(
        "127.0.0.1:1",
        "http://127.0.0.1:1",
        "readings",
        "garden",
    )
    .section(
        "[decode]\nformat = \"json\"\n[decode.mapping]\nmeasurement = { constant = \"soil\" }\n\
         tags = [\"zone\"]\nfields = [\"moisture\"]\ntimestamp = { field = \"time\", unit = \"s\" }",
    )
    .toml();
    let config = write_config(dir.path(), &config);
    let input = dir.path().join("readings.jsonl");
    std::fs::write(
        &input,
        "{\"zone\": \"north\", \"moisture\": 0.25, \"time\": 1700000000}\n\n\
         {\"zone\": \"south\", \"moisture\": 0.5, \"time\": 1700000060}\n",
    )
    .expect("write input");
    let (out, stdout) = run(kinflux()
        .args(["test", "--config"])
        .arg(&config)
        .arg("--input")
        .arg(&input));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("soil,zone=north moisture=0.25 1700000000000000000"),
        "{stdout}"
    );
    assert!(
        stdout.contains("soil,zone=south moisture=0.5 1700000060000000000"),
        "{stdout}"
    );
    assert!(
        stdout.contains("-> influx v1 http://127.0.0.1:1 db=garden"),
        "{stdout}"
    );

    std::fs::write(&input, "{\"zone\": \"north\"}\n[1, 2]\n").expect("write input");
    let (out, stdout) = run(kinflux()
        .args(["test", "--config"])
        .arg(&config)
        .arg("--input")
        .arg(dir.path().join("readings.jsonl")));
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let dead = stdout
        .lines()
        .filter(|l| {
            l.starts_with("# readings/0@")
                && l.contains(": dead letter (to readings_dlq), the record, class decode: ")
        })
        .count();
    assert_eq!(dead, 2, "{stdout}");
    assert!(
        stdout.contains("mapped path \"time\" is missing"),
        "{stdout}"
    );
    assert!(
        stdout.contains("# 2 record(s): 0 point(s), 2 dead letter(s)"),
        "{stdout}"
    );
}

#[test]
fn test_reads_binary_records_one_per_file() {
    use kinflux::avro::apache_avro::types::Value;
    use kinflux::avro::apache_avro::{Schema, to_avro_datum};

    let dir = tempfile::tempdir().expect("temp dir");
    let schema_text = r#"{"type": "record", "name": "Reading", "fields": [
        {"name": "zone", "type": "string"},
        {"name": "moisture", "type": "double"},
        {"name": "time", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}"#;
    let schema = Schema::parse_str(schema_text).expect("schema");
    std::fs::write(dir.path().join("reading.avsc"), schema_text).expect("write schema");
    let input = dir.path().join("records");
    std::fs::create_dir(&input).expect("input dir");
    for (name, zone, moisture, time) in [
        ("1.avro", "north", 0.25, 1_700_000_000_000i64),
        ("2.avro", "south", 0.5, 1_700_000_060_000),
    ] {
        let value = Value::Record(vec![
            ("zone".into(), Value::String(zone.into())),
            ("moisture".into(), Value::Double(moisture)),
            ("time".into(), Value::TimestampMillis(time)),
        ]);
        let bytes = to_avro_datum(&schema, value).expect("encode");
        std::fs::write(input.join(name), bytes).expect("write record");
    }
    std::fs::write(input.join("3.avro"), [0x02]).expect("write a truncated record");
    let config = BridgeConfig::new("127.0.0.1:1", "http://127.0.0.1:1", "readings", "garden")
        .section(&format!(
            "[decode]\nformat = \"avro\"\nframing = \"plain\"\nschema_file = \"{}\"\n\
             [decode.mapping]\nmeasurement = {{ constant = \"soil\" }}\ntags = [\"zone\"]\n\
             fields = [\"moisture\"]\ntimestamp = {{ field = \"time\" }}",
            dir.path().join("reading.avsc").display()
        ))
        .toml();
    let config = write_config(dir.path(), &config);
    let (out, stdout) = run(kinflux()
        .args(["test", "--config"])
        .arg(&config)
        .arg("--input")
        .arg(&input));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("soil,zone=north moisture=0.25 1700000000000000000"),
        "{stdout}"
    );
    assert!(
        stdout.contains("soil,zone=south moisture=0.5 1700000060000000000"),
        "{stdout}"
    );
    assert!(
        stdout
            .contains("# readings/0@2: dead letter (to readings_dlq), the record, class decode: "),
        "{stdout}"
    );
    assert!(
        stdout.contains("# 3 record(s): 2 point(s), 1 dead letter(s)"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn test_covers_every_pipeline_and_shows_each_points_routed_target() {
    let (Some(brokers), Some(v1), Some(v2), Some(token), Some(org)) = (
        require("KINFLUX_KAFKA_BROKERS"),
        require("KINFLUX_INFLUX_URL"),
        require("KINFLUX_INFLUX2_URL"),
        require("KINFLUX_INFLUX2_TOKEN"),
        require("KINFLUX_INFLUX2_ORG"),
    ) else {
        return;
    };
    let lp_topic = unique("dry_lp");
    let js_topic = unique("dry_js");
    kafka::create_topic(&brokers, &lp_topic, 1).await;
    kafka::create_topic(&brokers, &js_topic, 1).await;
    kafka::produce_values(
        &brokers,
        &lp_topic,
        0,
        vec![b"cpu,host=a,site=oslo usage=1 1700000000000000000\ncpu,host=b usage=2 1700000000000000000".to_vec()],
        1_700_000_000_000,
    )
    .await;
    kafka::produce_values(
        &brokers,
        &js_topic,
        0,
        vec![b"{\"v\": 3, \"t\": 1700000000}".to_vec()],
        1_700_000_000_000,
    )
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        &format!(
            "[kafka]\nbrokers = [\"{brokers}\"]\ngroup_id = \"dry\"\n\
             [influx.archive]\nurl = \"{v1}\"\ndatabase = \"${{topic}}\"\n\
             [influx.sites]\napi = \"v2\"\nurl = \"{v2}\"\norg = \"{org}\"\ntoken = \"{token}\"\n\
             bucket = \"unsorted\"\nbucket_tag = \"site\"\nexclude_bucket_tag = true\n\
             [dead_letter]\non_error = \"drop\"\n\
             [[pipeline]]\nname = \"lp\"\ntargets = [\"archive\", \"sites\"]\n\
             kafka = {{ topics = [\"{lp_topic}\"] }}\n\
             [[pipeline]]\nname = \"js\"\ntargets = [\"sites\"]\nmeasurement = \"${{topic}}\"\n\
             kafka = {{ topics = [\"{js_topic}\"] }}\n\
             decode = {{ format = \"json\", mapping = {{ measurement = {{ constant = \"m\" }}, \
             fields = [\"v\"], timestamp = {{ field = \"t\", unit = \"s\" }} }} }}\n"
        ),
    );
    let (out, stdout) = run(kinflux().args(["test", "--config"]).arg(&config));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = format!(
        "# pipeline lp\n\
         # {lp_topic}/0@0: 4 point(s) on 3 destinations\n\
         # -> archive: influx v1 {v1} db={lp_topic}\n\
         cpu,host=a,site=oslo usage=1 1700000000000000000\n\
         cpu,host=b usage=2 1700000000000000000\n\
         # -> sites: influx v2 {v2} org={org} bucket=oslo\n\
         cpu,host=a usage=1 1700000000000000000\n\
         # -> sites: influx v2 {v2} org={org} bucket=unsorted\n\
         cpu,host=b usage=2 1700000000000000000\n\
         # pipeline js\n\
         # {js_topic}/0@0: 1 point(s) -> sites: influx v2 {v2} org={org} bucket=unsorted\n\
         {js_topic} v=3.0 1700000000000000000\n\
         # 2 record(s): 5 point(s), 0 dead letter(s)\n"
    );
    assert_eq!(stdout, expected);
    assert!(!stdout.contains(&token));

    // One pipeline; --input needs one named when the file has several.
    let (out, stdout) = run(kinflux()
        .args(["test", "--pipeline", "js", "--config"])
        .arg(&config));
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(!stdout.contains("# pipeline lp"), "{stdout}");
    let input = dir.path().join("in.lp");
    std::fs::write(&input, "m v=1 1\n").expect("write input");
    let (out, _) = run(kinflux()
        .args(["test", "--config"])
        .arg(&config)
        .arg("--input")
        .arg(&input));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("name the one the input is for with --pipeline")
    );
    let (out, stdout) = run(kinflux()
        .args(["test", "--pipeline", "lp", "--config"])
        .arg(&config)
        .arg("--input")
        .arg(&input));
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "# -> archive: influx v1 {v1} db={lp_topic}\nm v=1 1\n"
        )),
        "{stdout}"
    );
}
