//! The configuration file: defaults, `${ENV}` references, errors that name the key, and
//! secrets that never show in Debug output.

use kinflux::config::{Config, ConfigError, Format, Gzip, InfluxApi, OnError, StartAt};

const MINIMAL: &str = r#"
[kafka]
brokers = ["127.0.0.1:9092"]
topics = ["t"]
group_id = "g"

[influx]
url = "http://127.0.0.1:8086"
database = "db"

[dead_letter]
topic = "t-dlq"
"#;

fn env(name: &str) -> Option<String> {
    match name {
        "INFLUX_PASSWORD" => Some("hunter2".into()),
        "INFLUX_TOKEN" => Some("tok-3141".into()),
        _ => None,
    }
}

fn error_of(text: &str) -> String {
    Config::from_toml_with_env(text, &env)
        .unwrap_err()
        .to_string()
}

#[test]
fn the_minimal_file_gets_documented_defaults() {
    let c = Config::from_toml(MINIMAL).unwrap();
    assert_eq!(c.pipelines[0].decode.format, Format::Line);
    assert_eq!(c.targets[0].influx.api, InfluxApi::V1);
    assert_eq!(c.targets[0].influx.concurrency, 4);
    assert_eq!(c.targets[0].influx.gzip, Gzip::Auto);
    assert_eq!(c.pipelines[0].batch.max_points, 5000);
    assert_eq!(c.pipelines[0].kafka.start_at, StartAt::Committed);
    assert_eq!(c.pipelines[0].dead_letter.on_error, OnError::DeadLetter);
    assert_eq!(
        c.pipelines[0].kafka.commit_interval,
        std::time::Duration::from_secs(5)
    );
    assert_eq!(
        c.pipelines[0].kafka.consumer.isolation_level,
        kinflux_kafka::IsolationLevel::ReadCommitted
    );
}

#[test]
fn isolation_level_takes_kafkas_names() {
    let text = MINIMAL.replace("[kafka]", "[kafka]\nisolation_level = \"read_uncommitted\"");
    let c = Config::from_toml(&text).unwrap();
    assert_eq!(
        c.pipelines[0].kafka.consumer.isolation_level,
        kinflux_kafka::IsolationLevel::ReadUncommitted
    );
    let bad = MINIMAL.replace("[kafka]", "[kafka]\nisolation_level = \"read_some\"");
    // Flattened into [kafka], the error names the accepted values.
    assert!(
        error_of(&bad).contains("read_committed"),
        "{}",
        error_of(&bad)
    );
}

#[test]
fn the_example_files_are_valid() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/");
    Config::load(format!("{root}bridge.toml")).unwrap();
    let text = std::fs::read_to_string(format!("{root}pipelines.toml")).unwrap();
    let token = |name: &str| (name == "INFLUX_TOKEN").then(|| "t".to_owned());
    let c = Config::from_toml_with_env(&text, &token).unwrap();
    let names: Vec<&str> = c.pipelines.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["telegraf", "garden"]);
    assert_eq!(c.pipelines[1].kafka.consumer.group_id, "kinflux-garden");
    kinflux::Bridge::from_config(&c, |b| b).unwrap();
    let garden = std::fs::read_to_string(format!("{root}garden.toml")).unwrap();
    let lookup = |name: &str| match name {
        "KINFLUX_KAFKA_BROKERS" => Some("127.0.0.1:9092".to_owned()),
        "KINFLUX_INFLUX_URL" => Some("http://127.0.0.1:8086".to_owned()),
        "KINFLUX_DEMO_GROUP" => Some("demo".to_owned()),
        _ => None,
    };
    let c = Config::from_toml_with_env(&garden, &lookup).unwrap();
    assert_eq!(c.pipelines[0].decode.format, Format::Avro);
    let garden = std::fs::read_to_string(format!("{root}garden_registry.toml")).unwrap();
    let lookup = |name: &str| match name {
        "KINFLUX_REGISTRY_URL" => Some("http://127.0.0.1:8081/apis/ccompat/v7".to_owned()),
        other => lookup(other),
    };
    let c = Config::from_toml_with_env(&garden, &lookup).unwrap();
    assert_eq!(
        c.pipelines[0].decode.registry_url.as_deref(),
        Some("http://127.0.0.1:8081/apis/ccompat/v7")
    );
}

#[test]
fn v2_bucket_creation_keys_are_read() {
    let v2 = MINIMAL.replace(
        "database = \"db\"",
        "api = \"v2\"\norg = \"o\"\nbucket = \"b\"\ntoken = \"t\"\ncreate_bucket = true\nbucket_retention = \"30d\"",
    );
    let c = Config::from_toml(&v2).unwrap();
    assert_eq!(c.targets[0].influx.api, InfluxApi::V2);
    assert!(c.targets[0].influx.create_bucket);
    assert_eq!(
        c.targets[0].influx.bucket_retention,
        Some(std::time::Duration::from_secs(30 * 86_400))
    );
}

#[test]
fn an_unreadable_registry_ca_file_names_its_key() {
    let toml = format!(
        "{MINIMAL}\n[decode]\nformat = \"avro\"\nregistry_url = \"https://127.0.0.1:1\"\nregistry_ca_file = \"/nonexistent/ca.pem\"\n[decode.mapping]\nmeasurement = {{ constant = \"m\" }}\n"
    );
    let config = Config::from_toml(&toml).unwrap();
    let Err(err) = kinflux::PipelineBuilder::from_config(&config) else {
        panic!("an unreadable CA file is refused");
    };
    let err = err.to_string();
    assert!(err.contains("decode.registry_ca_file"), "{err}");
}

#[test]
fn errors_name_the_key() {
    let missing_db = MINIMAL.replace("database = \"db\"", "");
    assert_eq!(
        error_of(&missing_db),
        "influx.database: required with api = \"v1\""
    );
    let v2 = MINIMAL.replace("database = \"db\"", "api = \"v2\"\norg = \"o\"");
    assert_eq!(error_of(&v2), "influx.bucket: required with api = \"v2\"");
    let typo = MINIMAL.replace("[influx]", "[influx]\nconcurency = 3");
    assert!(
        error_of(&typo).starts_with("influx.concurency: unknown field `concurency`"),
        "{}",
        error_of(&typo)
    );
    let bad_duration = MINIMAL.replace("[batch]", "").replace(
        "[dead_letter]",
        "[batch]\nmax_age = \"soon\"\n[dead_letter]",
    );
    assert!(
        error_of(&bad_duration).starts_with("batch.max_age:"),
        "{}",
        error_of(&bad_duration)
    );
    let no_dlq = MINIMAL.replace("topic = \"t-dlq\"", "");
    assert!(
        error_of(&no_dlq).starts_with("dead_letter.topic: required"),
        "{}",
        error_of(&no_dlq)
    );
    let bad_start = MINIMAL.replace(
        "group_id = \"g\"",
        "group_id = \"g\"\nstart_at = \"yesterday\"",
    );
    assert!(
        error_of(&bad_start).contains("RFC 3339"),
        "{}",
        error_of(&bad_start)
    );
    let contradiction = MINIMAL.replace(
        "group_id = \"g\"",
        "group_id = \"g\"\nstart_at = \"latest\"\nauto_offset_reset = \"earliest\"",
    );
    assert!(
        error_of(&contradiction).starts_with("kafka.start_at: start_at = \"latest\""),
        "{}",
        error_of(&contradiction)
    );
    let avro = MINIMAL.replace(
        "[influx]",
        "[decode]\nformat = \"avro\"\n[decode.mapping]\nmeasurement = \"record_name\"\n\n[influx]",
    );
    assert_eq!(
        error_of(&avro),
        "decode.registry_url: set `registry_url` or `schema_dir` for Confluent-framed Avro"
    );
    let tag = MINIMAL.replace("[influx]", "[tags]\ntime = \"x\"\n\n[influx]");
    assert_eq!(
        error_of(&tag),
        "tags.time: tag key \"time\" is reserved for the timestamp"
    );
    assert!(matches!(
        Config::from_toml_with_env("kafka = 3", &env).unwrap_err(),
        ConfigError::Invalid { .. }
    ));
}

#[test]
fn env_references_fill_secrets_and_missing_ones_name_the_key() {
    let with_secrets = MINIMAL.replace(
        "database = \"db\"",
        "database = \"db\"\nusername = \"bridge\"\npassword = \"${INFLUX_PASSWORD}\"",
    );
    let c = Config::from_toml_with_env(&with_secrets, &env).unwrap();
    assert_eq!(c.targets[0].influx.password.as_deref(), Some("hunter2"));
    let unset = with_secrets.replace("INFLUX_PASSWORD", "NOPE");
    assert_eq!(
        error_of(&unset),
        "influx.password: environment variable NOPE is not set"
    );
}

#[test]
fn secrets_never_show_in_debug_output() {
    let text = MINIMAL
        .replace(
            "database = \"db\"",
            "database = \"db\"\nusername = \"bridge\"\npassword = \"${INFLUX_PASSWORD}\"\ntoken = \"${INFLUX_TOKEN}\"",
        )
        .replace(
            "group_id = \"g\"",
            "group_id = \"g\"\n[kafka.sasl]\nmechanism = \"SCRAM-SHA-512\"\nusername = \"u\"\npassword = \"${INFLUX_PASSWORD}\"",
        );
    let c = Config::from_toml_with_env(&text, &env).unwrap();
    let debug = format!("{c:?} {c:#?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(!debug.contains("tok-3141"), "{debug}");
    assert!(debug.contains("<redacted>"));
}

/// Every section refuses a key it does not know, and the error names the key: a typo
/// must not fall back silently to a default. `[kafka]` flattens the consumer's options,
/// where serde's `deny_unknown_fields` alone would let a typo through.
#[test]
fn every_section_refuses_an_unknown_key() {
    let sections = [
        ("kafka", "[kafka]"),
        ("decode", "[decode]"),
        ("batch", "[batch]"),
        ("influx", "[influx]"),
        ("dead_letter", "[dead_letter]"),
        ("metrics", "[metrics]"),
        ("metrics.internal", "[metrics.internal]"),
    ];
    for (name, header) in sections {
        let text = if MINIMAL.contains(header) {
            MINIMAL.replace(header, &format!("{header}\nbogus = 1"))
        } else {
            format!("{MINIMAL}\n{header}\nbogus = 1\n")
        };
        let error = error_of(&text);
        assert!(
            error.starts_with(name) && error.contains("unknown field `bogus`"),
            "[{name}]: {error}"
        );
    }
    // Several at once are all named; known keys next to them are not.
    let two = MINIMAL.replace(
        "[kafka]",
        "[kafka]\nbogus = 1\nstart_at = \"latest\"\nbrokerz = []",
    );
    let error = error_of(&two);
    assert!(error.contains("`bogus`, `brokerz`"), "{error}");
    assert!(!error.contains("start_at"), "{error}");
    // Keys of the consumer's options still reach it.
    let c = Config::from_toml(&MINIMAL.replace("[kafka]", "[kafka]\nclient_id = \"me\"")).unwrap();
    assert_eq!(c.pipelines[0].kafka.consumer.client_id, "me");
    // In [tags], every other key is a static tag by design; its value must be text.
    let tags = format!("{MINIMAL}\n[tags]\nregion = \"eu\"\n");
    let c = Config::from_toml(&tags).unwrap();
    assert_eq!(
        c.pipelines[0]
            .tags
            .static_tags
            .get("region")
            .map(String::as_str),
        Some("eu")
    );
    let bad_tag = format!("{MINIMAL}\n[tags]\nregion = 1\n");
    assert!(
        error_of(&bad_tag).starts_with("tags"),
        "{}",
        error_of(&bad_tag)
    );
}

#[test]
fn tls_verification_is_off_only_when_the_file_says_so() {
    let plain = Config::from_toml(MINIMAL).unwrap();
    assert!(!kinflux::pipeline::skips_tls_verification(&plain));
    let verified =
        Config::from_toml(&format!("{MINIMAL}\n[kafka.tls]\nca_file = \"/x.pem\"\n")).unwrap();
    assert!(!kinflux::pipeline::skips_tls_verification(&verified));
    let skipped = Config::from_toml(&format!(
        "{MINIMAL}\n[kafka.tls]\ninsecure_skip_verify = true\n"
    ))
    .unwrap();
    assert!(kinflux::pipeline::skips_tls_verification(&skipped));
}

#[test]
fn metrics_are_off_by_default_and_a_bare_port_is_loopback() {
    let c = Config::from_toml(MINIMAL).unwrap();
    assert_eq!(c.metrics.listen, None);
    let c = Config::from_toml(&format!("{MINIMAL}\n[metrics]\nlisten = \":9273\"\n")).unwrap();
    assert_eq!(c.metrics.listen, Some("127.0.0.1:9273".parse().unwrap()));
}

const PIPELINES: &str = r#"
[kafka]
brokers = ["127.0.0.1:9092"]
group_id = "bridge"
[kafka.sasl]
mechanism = "PLAIN"
username = "u"
password = "${INFLUX_PASSWORD}"

[influx.archive]
url = "http://127.0.0.1:8086"
database = "${topic}"
create_database = true

[influx.cloud]
api = "v2"
url = "http://127.0.0.1:8087"
org = "o"
bucket = "default"
token = "${INFLUX_TOKEN}"
bucket_tag = "site"
exclude_bucket_tag = true

[registries.main]
url = "http://127.0.0.1:8081"
password = "${INFLUX_PASSWORD}"
username = "r"

[batch]
max_points = 100

[dead_letter]
topic = "shared-dlq"

[[pipeline]]
name = "telegraf"
targets = ["archive"]
[pipeline.kafka]
topics = ["telegraf"]

[[pipeline]]
name = "garden"
targets = ["archive", "cloud"]
measurement = "${topic}"
[pipeline.kafka]
topic_regex = "^garden\\..*"
group_id = "garden-readers"
start_at = "earliest"
[pipeline.decode]
format = "avro"
registry = "main"
[pipeline.decode.mapping]
measurement = { constant = "garden" }
[pipeline.batch]
max_age = "250ms"
[pipeline.dead_letter]
topic = "garden-dlq"
"#;

#[test]
fn several_pipelines_inherit_the_top_level_and_reference_targets_by_name() {
    let c = Config::from_toml_with_env(PIPELINES, &env).unwrap();
    assert_eq!(c.pipelines.len(), 2);
    assert_eq!(
        c.targets
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        ["archive", "cloud"]
    );
    let (t, g) = (&c.pipelines[0], &c.pipelines[1]);
    assert_eq!(t.name, "telegraf");
    // Each pipeline is its own consumer group: derived from [kafka], or its own.
    assert_eq!(t.kafka.consumer.group_id, "bridge-telegraf");
    assert_eq!(g.kafka.consumer.group_id, "garden-readers");
    // The connection is written once.
    assert_eq!(g.kafka.consumer.brokers, ["127.0.0.1:9092"]);
    assert!(g.kafka.consumer.sasl.is_some() && t.kafka.consumer.sasl.is_some());
    // A pipeline that names its topics inherits none (topic_regex here, not topics).
    assert!(g.kafka.consumer.topics.is_empty());
    assert_eq!(
        g.kafka.consumer.topic_regex.as_deref(),
        Some("^garden\\..*")
    );
    assert_eq!(g.kafka.start_at, StartAt::Earliest);
    assert_eq!(t.kafka.start_at, StartAt::Committed);
    // Sections inherit key by key.
    assert_eq!(g.batch.max_points, 100);
    assert_eq!(g.batch.max_age, std::time::Duration::from_millis(250));
    assert_eq!(t.batch.max_age, std::time::Duration::from_secs(1));
    assert_eq!(t.dead_letter.topic.as_deref(), Some("shared-dlq"));
    assert_eq!(g.dead_letter.topic.as_deref(), Some("garden-dlq"));
    assert_eq!(g.decode.format, Format::Avro);
    assert_eq!(t.decode.format, Format::Line);
    // The registry is referenced by name.
    assert_eq!(
        g.decode.registry_url.as_deref(),
        Some("http://127.0.0.1:8081")
    );
    assert_eq!(g.decode.registry_password.as_deref(), Some("hunter2"));
    assert_eq!(t.targets, ["archive"]);
    assert_eq!(g.targets, ["archive", "cloud"]);
    // `${topic}` is the record's topic where a point is routed, not an environment
    // variable.
    assert_eq!(g.measurement.as_deref(), Some("${topic}"));
    let archive = c.target("archive").unwrap();
    assert_eq!(archive.influx.database.as_deref(), Some("${topic}"));
    let cloud = c.target("cloud").unwrap();
    assert_eq!(cloud.influx.bucket_tag.as_deref(), Some("site"));
    assert!(cloud.influx.exclude_bucket_tag);
    let debug = format!("{c:?}");
    assert!(
        !debug.contains("hunter2") && !debug.contains("tok-3141"),
        "{debug}"
    );
    // A file of several pipelines is not one pipeline.
    assert!(
        kinflux::Pipeline::from_config(&c)
            .unwrap_err()
            .to_string()
            .contains("2 pipelines")
    );
    kinflux::Bridge::from_config(&c, |b| b).unwrap();
}

#[test]
fn the_single_pipeline_shape_is_one_pipeline_with_its_group_unchanged() {
    let c = Config::from_toml(MINIMAL).unwrap();
    assert_eq!(c.pipelines.len(), 1);
    assert_eq!(c.pipelines[0].name, kinflux::config::SINGLE_PIPELINE);
    assert_eq!(c.pipelines[0].kafka.consumer.group_id, "g");
    assert_eq!(c.targets.len(), 1);
    assert_eq!(c.targets[0].name, kinflux::config::SINGLE_TARGET);
    assert_eq!(c.pipelines[0].targets, ["influx"]);
    // Routing keys work in the one-pipeline shape too.
    let routed = MINIMAL.replace(
        "database = \"db\"",
        "database = \"kafka_${topic}\"\ndatabase_tag = \"db\"\nexclude_database_tag = true",
    );
    let c = Config::from_toml_with_env(&routed, &env).unwrap();
    assert_eq!(
        c.targets[0].influx.database.as_deref(),
        Some("kafka_${topic}")
    );
    // Elsewhere `${topic}` is an environment variable as before.
    let elsewhere = MINIMAL.replace("topics = [\"t\"]", "topics = [\"${topic}\"]");
    assert_eq!(
        error_of(&elsewhere),
        "kafka.topics[0]: environment variable topic is not set"
    );
}

#[test]
fn errors_in_a_pipeline_name_the_pipeline() {
    let cases = [
        (
            PIPELINES.replace("name = \"telegraf\"\n", ""),
            "pipeline[0].name: required",
        ),
        (
            PIPELINES.replace("name = \"garden\"", "name = \"telegraf\""),
            "pipeline[telegraf].name: two pipelines have this name",
        ),
        (
            PIPELINES.replace("targets = [\"archive\"]", "targets = [\"archve\"]"),
            "pipeline[telegraf].targets: no target named \"archve\"",
        ),
        (
            PIPELINES.replace("max_age = \"250ms\"", "max_age = \"soon\""),
            "pipeline[garden].batch.max_age:",
        ),
        (
            PIPELINES.replace("registry = \"main\"", "registry = \"other\""),
            "pipeline[garden].decode.registry: no [registries.other] table",
        ),
        (
            PIPELINES.replace(
                "group_id = \"garden-readers\"",
                "group_id = \"bridge-telegraf\"",
            ),
            "pipeline[garden].kafka.group_id: pipeline \"telegraf\" has this consumer group too",
        ),
        (
            PIPELINES.replace(
                "topics = [\"telegraf\"]",
                "topics = [\"telegraf\"]\nbogus = 1",
            ),
            "pipeline[telegraf].kafka: unknown field `bogus`",
        ),
        (
            PIPELINES.replace("measurement = \"${topic}\"", "measurment = \"x\""),
            "pipeline[garden].measurment: unknown field",
        ),
        (
            PIPELINES.replace(
                "[pipeline.dead_letter]\ntopic = \"garden-dlq\"",
                "[pipeline.dead_letter]\npartitions = 0",
            ),
            "pipeline[garden].dead_letter.partitions: must be at least 1",
        ),
        (
            PIPELINES.replace("bucket_tag = \"site\"", "database_tag = \"site\""),
            "influx.cloud.database_tag: only with api = \"v1\" or \"v3\"",
        ),
        (
            PIPELINES.replace("org = \"o\"\n", ""),
            "influx.cloud.org: required with api = \"v2\"",
        ),
        (
            PIPELINES.replace(
                "[pipeline.decode.mapping]\nmeasurement = { constant = \"garden\" }\n",
                "",
            ),
            "pipeline[garden].decode.mapping: required with format = \"avro\"",
        ),
    ];
    for (text, expected) in cases {
        let error = error_of(&text);
        assert!(
            error.starts_with(expected),
            "expected {expected:?}, got {error:?}"
        );
    }
}

#[test]
fn a_pipeline_on_another_cluster_takes_its_connection_by_name() {
    let text = PIPELINES
        .replace(
            "[registries.main]",
            "[clusters.east]\nbrokers = [\"east:9093\"]\n[clusters.east.tls]\nca_file = \"/etc/east-ca.pem\"\n\n[registries.main]",
        )
        .replace(
            "topics = [\"telegraf\"]",
            "topics = [\"telegraf\"]\ncluster = \"east\"",
        );
    let c = Config::from_toml_with_env(&text, &env).unwrap();
    let (t, g) = (&c.pipelines[0], &c.pipelines[1]);
    assert_eq!(t.kafka.consumer.brokers, ["east:9093"]);
    assert!(t.kafka.consumer.tls.is_some());
    // [kafka]'s SASL belongs to [kafka]'s cluster, not to another.
    assert!(t.kafka.consumer.sasl.is_none());
    // Everything else still comes from [kafka].
    assert_eq!(t.kafka.consumer.group_id, "bridge-telegraf");
    assert_eq!(g.kafka.consumer.brokers, ["127.0.0.1:9092"]);
    assert!(g.kafka.consumer.sasl.is_some());
    let unknown = text.replace("cluster = \"east\"", "cluster = \"west\"");
    assert!(
        error_of(&unknown)
            .starts_with("pipeline[telegraf].kafka.cluster: no [clusters.west] table"),
        "{}",
        error_of(&unknown)
    );
}

#[test]
fn tasks_is_a_pipeline_key_of_at_least_one() {
    assert_eq!(Config::from_toml(MINIMAL).unwrap().pipelines[0].tasks, None);
    let two = format!("tasks = 2\n{MINIMAL}");
    assert_eq!(Config::from_toml(&two).unwrap().pipelines[0].tasks, Some(2));
    let zero = format!("tasks = 0\n{MINIMAL}");
    assert!(error_of(&zero).starts_with("tasks:"), "{}", error_of(&zero));
}
