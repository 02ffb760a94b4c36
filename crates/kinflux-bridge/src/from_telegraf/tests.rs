//! `from-telegraf` on the Telegraf files the peers bench runs, and on one with every
//! kind of option.

use super::*;

/// The agent and output of the peers bench (benches/peers/run).
const AGENT: &str = r#"
[agent]
  interval = "10s"
  round_interval = false
  metric_batch_size = 5000
  metric_buffer_limit = 50000
  flush_interval = "1s"
  flush_jitter = "0s"
  omit_hostname = true
  quiet = true
"#;

const OUTPUT: &str = r#"
[[outputs.influxdb]]
  urls = ["http://127.0.0.1:8086"]
  database = "peers"
  skip_database_creation = true
  content_encoding = "gzip"
  timeout = "30s"
"#;

fn input(parser: &str) -> String {
    format!(
        r#"{AGENT}
[[inputs.kafka_consumer]]
  brokers = ["127.0.0.1:9092"]
  topics = ["json"]
  consumer_group = "telegraf-json"
  offset = "oldest"
  max_message_len = 0
  kafka_version = "4.0.0"
  max_undelivered_messages = 400
  {parser}
{OUTPUT}"#
    )
}

/// Loads the produced file as kinflux would (every `${NAME}` resolves to "x").
fn load(toml: &str) -> kinflux::Config {
    kinflux::Config::from_toml_with_env(toml, &|_| Some("x".into()))
        .unwrap_or_else(|e| panic!("{e}\n{toml}"))
}

fn value(toml: &str) -> toml::Table {
    toml::from_str(toml).unwrap()
}

#[test]
fn the_peers_json_v2_input_becomes_a_json_mapping() {
    let conf = input(
        r#"data_format = "json_v2"
  [[inputs.kafka_consumer.json_v2]]
    measurement_name = "peer"
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
      path = "meta.ok"
      rename = "ok"
"#,
    );
    let c = convert(&conf, "box").unwrap();
    load(&c.toml);
    let v = value(&c.toml);
    let d = &v["decode"];
    assert_eq!(d["format"].as_str(), Some("json"));
    assert_eq!(d["types"]["count"].as_str(), Some("int"));
    assert_eq!(d["rename"]["meta_ok"].as_str(), Some("ok"));
    let m = &d["mapping"];
    assert_eq!(m["measurement"]["constant"].as_str(), Some("peer"));
    assert_eq!(m["timestamp"]["format"].as_str(), Some("unix_ms"));
    assert_eq!(m["fields"].as_array().unwrap().len(), 3);
    assert_eq!(v["kafka"]["group_id"].as_str(), Some("telegraf-json"));
    assert_eq!(v["kafka"]["auto_offset_reset"].as_str(), Some("earliest"));
    assert_eq!(v["batch"]["max_points"].as_integer(), Some(5000));
    assert_eq!(v["influx"]["database"].as_str(), Some("peers"));
    assert_eq!(v["influx"]["create_database"].as_bool(), Some(false));
    assert!(v.get("tags").is_none(), "omit_hostname: no host tag");
    for key in [
        "max_undelivered_messages",
        "kafka_version",
        "max_message_len",
        "metric_buffer_limit",
        "flush_jitter",
    ] {
        assert!(
            c.notes.iter().any(|n| n.contains(key)),
            "{key} not named in {:?}",
            c.notes
        );
        assert!(c.toml.contains(key), "{key} not in the file's header");
    }
}

#[test]
fn the_peers_avro_input_becomes_the_telegraf_preset() {
    let conf = input(
        r#"data_format = "avro"
  avro_schema_registry = "http://127.0.0.1:8081/apis/ccompat/v7"
  avro_measurement = "peer"
  avro_tags = ["host", "region"]
  avro_timestamp = "ts"
  avro_timestamp_format = "unix_ms"
  avro_union_mode = "nullable"
  avro_field_separator = "_"
"#,
    );
    let c = convert(&conf, "box").unwrap();
    load(&c.toml);
    let d = &value(&c.toml)["decode"];
    assert_eq!(d["format"].as_str(), Some("avro"));
    assert_eq!(
        d["registry_url"].as_str(),
        Some("http://127.0.0.1:8081/apis/ccompat/v7")
    );
    let t = &d["telegraf"];
    assert_eq!(t["measurement"].as_str(), Some("peer"));
    assert_eq!(t["union_mode"].as_str(), Some("nullable"));
    assert_eq!(t["timestamp_format"].as_str(), Some("unix_ms"));
    assert_eq!(t["tags"].as_array().unwrap().len(), 2);
}

#[test]
fn security_routing_tags_and_several_inputs_carry_over_or_are_named() {
    let conf = r#"
[global_tags]
  dc = "eu"
[agent]
  hostname = "edge-1"
[[inputs.kafka_consumer]]
  brokers = ["k1:9096"]
  topic_regexps = ["^metrics"]
  sasl_username = "bridge"
  sasl_password = "${KAFKA_PASSWORD}"
  sasl_mechanism = "SCRAM-SHA-512"
  enable_tls = true
  tls_ca = "/etc/ca.pem"
  topic_tag = "topic"
  offset = "newest"
  balance_strategy = "sticky"
  name_override = "m"
  data_format = "influx"
  [inputs.kafka_consumer.tags]
    source = "kafka"
[[inputs.kafka_consumer]]
  brokers = ["k1:9092"]
  topics = ["b"]
  data_format = "xpath_json"
[[inputs.kafka_consumer]]
  brokers = ["k1:9092"]
  topics = ["c"]
  data_format = "json"
  json_name_key = "kind"
  tag_keys = ["host"]
  json_time_key = "t"
  json_time_format = "2006-01-02T15:04:05Z07:00"
[[inputs.cpu]]
[[processors.rename]]
[[outputs.influxdb]]
  urls = ["http://a:8086", "http://b:8086"]
  database = "metrics"
  database_tag = "db"
  exclude_database_tag = true
  write_consistency = "any"
[[outputs.influxdb_v2]]
  urls = ["http://c:8087"]
  token = "${INFLUX_TOKEN}"
  organization = "org"
  bucket = "b"
  bucket_tag = "bucket"
"#;
    let c = convert(conf, "box").unwrap();
    let config = load(&c.toml);
    assert_eq!(config.pipelines.len(), 2);
    assert_eq!(config.targets.len(), 2);
    let v = value(&c.toml);
    let pipelines = v["pipeline"].as_array().unwrap();
    assert_eq!(pipelines.len(), 2, "xpath_json is left out:\n{}", c.toml);
    let p = &pipelines[0];
    assert_eq!(p["kafka"]["topic_regex"].as_str(), Some(".*(?:^metrics).*"));
    assert_eq!(
        p["kafka"]["sasl"]["mechanism"].as_str(),
        Some("SCRAM-SHA-512")
    );
    assert_eq!(
        p["kafka"]["sasl"]["password"].as_str(),
        Some("${KAFKA_PASSWORD}")
    );
    assert_eq!(p["kafka"]["tls"]["ca_file"].as_str(), Some("/etc/ca.pem"));
    assert_eq!(p["kafka"]["auto_offset_reset"].as_str(), Some("latest"));
    // Both inputs use Telegraf's default group; kinflux gives each pipeline its own.
    assert_eq!(
        p["kafka"]["group_id"].as_str(),
        Some("telegraf_metrics_consumers-kafka_consumer_1")
    );
    assert_eq!(p["measurement"].as_str(), Some("m"));
    assert_eq!(p["tags"]["host"].as_str(), Some("edge-1"));
    assert_eq!(p["tags"]["dc"].as_str(), Some("eu"));
    assert_eq!(p["tags"]["source"].as_str(), Some("kafka"));
    assert_eq!(p["tags"]["topic_tag"].as_str(), Some("topic"));
    assert_eq!(p["targets"].as_array().unwrap().len(), 2);
    let j = &pipelines[1]["decode"]["mapping"];
    assert_eq!(j["measurement"]["field"].as_str(), Some("kind"));
    assert_eq!(
        j["timestamp"]["format"].as_str(),
        Some("2006-01-02T15:04:05Z07:00")
    );
    let influx = &v["influx"];
    assert_eq!(influx["influxdb_1"]["database_tag"].as_str(), Some("db"));
    assert_eq!(influx["influxdb_1"]["url"].as_str(), Some("http://a:8086"));
    assert_eq!(
        influx["influxdb_v2_1"]["bucket_tag"].as_str(),
        Some("bucket")
    );
    assert_eq!(influx["influxdb_v2_1"]["org"].as_str(), Some("org"));
    for named in [
        "balance_strategy",
        "xpath_json",
        "inputs.cpu",
        "processors",
        "outputs.influxdb[0].urls",
        "write_consistency",
        "Telegraf drops string fields",
    ] {
        assert!(
            c.notes.iter().any(|n| n.contains(named)),
            "{named} not named in {:#?}",
            c.notes
        );
    }
}

#[test]
fn a_file_without_kafka_inputs_or_outputs_is_refused() {
    assert!(matches!(
        convert("[[inputs.cpu]]\n[[outputs.influxdb]]", "h"),
        Err(FromTelegrafError::Nothing(_))
    ));
    assert!(matches!(
        convert(
            "[[inputs.kafka_consumer]]\ntopics = [\"a\"]\n[[outputs.file]]",
            "h"
        ),
        Err(FromTelegrafError::Nothing(_))
    ));
    assert!(matches!(
        convert("not toml [", "h"),
        Err(FromTelegrafError::Syntax(_))
    ));
}
