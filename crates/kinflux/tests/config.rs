//! The configuration file: defaults, `${ENV}` references, errors that name the key, and
//! secrets that never show in Debug output.

use kinflux::config::{Config, ConfigError, Format, InfluxApi, OnError, StartAt};

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
    assert_eq!(c.decode.format, Format::Line);
    assert_eq!(c.influx.api, InfluxApi::V1);
    assert_eq!(c.influx.concurrency, 4);
    assert!(c.influx.gzip);
    assert_eq!(c.batch.max_points, 5000);
    assert_eq!(c.kafka.start_at, StartAt::Committed);
    assert_eq!(c.dead_letter.on_error, OnError::DeadLetter);
    assert_eq!(c.kafka.commit_interval, std::time::Duration::from_secs(5));
    assert_eq!(
        c.kafka.consumer.isolation_level,
        kinflux_kafka::IsolationLevel::ReadCommitted
    );
}

#[test]
fn isolation_level_takes_kafkas_names() {
    let text = MINIMAL.replace("[kafka]", "[kafka]\nisolation_level = \"read_uncommitted\"");
    let c = Config::from_toml(&text).unwrap();
    assert_eq!(
        c.kafka.consumer.isolation_level,
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
    let garden = std::fs::read_to_string(format!("{root}garden.toml")).unwrap();
    let lookup = |name: &str| match name {
        "KINFLUX_KAFKA_BROKERS" => Some("127.0.0.1:9092".to_owned()),
        "KINFLUX_INFLUX_URL" => Some("http://127.0.0.1:8086".to_owned()),
        "KINFLUX_DEMO_GROUP" => Some("demo".to_owned()),
        _ => None,
    };
    let c = Config::from_toml_with_env(&garden, &lookup).unwrap();
    assert_eq!(c.decode.format, Format::Avro);
    let garden = std::fs::read_to_string(format!("{root}garden_registry.toml")).unwrap();
    let lookup = |name: &str| match name {
        "KINFLUX_REGISTRY_URL" => Some("http://127.0.0.1:8081/apis/ccompat/v7".to_owned()),
        other => lookup(other),
    };
    let c = Config::from_toml_with_env(&garden, &lookup).unwrap();
    assert_eq!(
        c.decode.registry_url.as_deref(),
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
    assert_eq!(c.influx.api, InfluxApi::V2);
    assert!(c.influx.create_bucket);
    assert_eq!(
        c.influx.bucket_retention,
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
    assert_eq!(c.influx.password.as_deref(), Some("hunter2"));
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
    assert_eq!(c.kafka.consumer.client_id, "me");
    // In [tags], every other key is a static tag by design; its value must be text.
    let tags = format!("{MINIMAL}\n[tags]\nregion = \"eu\"\n");
    let c = Config::from_toml(&tags).unwrap();
    assert_eq!(
        c.tags.static_tags.get("region").map(String::as_str),
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
