//! `[[inputs.kafka_consumer]]` to a pipeline's `kafka`, `tags` and `measurement`.

use toml::{Table, Value};

use super::parser;
use super::section::{Notes, Section, common_reason};

/// One kafka_consumer input, as the tables of a kinflux pipeline.
#[derive(Debug)]
pub(crate) struct Pipeline {
    pub(crate) kafka: Table,
    pub(crate) decode: Table,
    pub(crate) tags: Table,
    /// `name_override`: every point's measurement.
    pub(crate) measurement: Option<String>,
}

/// Telegraf's kafka_consumer defaults.
const DEFAULT_GROUP: &str = "telegraf_metrics_consumers";

fn strings(items: &[String]) -> Value {
    Value::Array(items.iter().cloned().map(Value::String).collect())
}

/// The pipeline of `input`; `None` when its data format cannot be carried over.
pub(crate) fn pipeline(input: &Section<'_>, notes: &mut Notes) -> Option<Pipeline> {
    let mut kafka = Table::new();
    let mut tags = Table::new();
    let mut brokers = input.strings("brokers");
    if brokers.is_empty() {
        brokers.push("localhost:9092".to_owned());
    }
    kafka.insert("brokers".into(), strings(&brokers));
    let topics = input.strings("topics");
    let regexps = input.strings("topic_regexps");
    if !topics.is_empty() {
        kafka.insert("topics".into(), strings(&topics));
    }
    if !regexps.is_empty() {
        // Telegraf matches a regexp anywhere in the name; kinflux matches the whole name.
        let any: Vec<String> = regexps.iter().map(|r| format!(".*(?:{r}).*")).collect();
        if topics.is_empty() {
            kafka.insert("topic_regex".into(), Value::String(any.join("|")));
        } else {
            notes.add(
                &format!("{}.topic_regexps", input.path),
                "kinflux takes topics or one topic_regex, not both: the regexps are left out",
            );
        }
    }
    let group = input.str("consumer_group").unwrap_or(DEFAULT_GROUP);
    kafka.insert("group_id".into(), Value::String(group.to_owned()));
    kafka.insert(
        "client_id".into(),
        Value::String(input.str("client_id").unwrap_or("Telegraf").to_owned()),
    );
    let reset = match input.str("offset") {
        Some("newest") => "latest",
        _ => "earliest",
    };
    kafka.insert("auto_offset_reset".into(), Value::String(reset.into()));
    match input.str("balance_strategy") {
        Some(s @ ("range" | "roundrobin")) => {
            kafka.insert("assignment_strategies".into(), strings(&[s.to_owned()]));
        }
        Some(other) => notes.add(
            &format!("{}.balance_strategy", input.path),
            format!("{other:?} is not carried over: kinflux assigns with range or roundrobin"),
        ),
        None => {}
    }
    if let Some(tls) = tls(input, notes) {
        kafka.insert("tls".into(), Value::Table(tls));
    }
    if let Some(sasl) = sasl(input, notes) {
        kafka.insert("sasl".into(), Value::Table(sasl));
    }
    if let Some(tag) = input.str("topic_tag").filter(|t| !t.is_empty()) {
        tags.insert("topic_tag".into(), Value::String(tag.to_owned()));
    }
    let headers = input.strings("msg_headers_as_tags");
    if !headers.is_empty() {
        tags.insert("header_tags".into(), strings(&headers));
    }
    if let Some(static_tags) = input.table("tags") {
        for (k, v) in static_tags {
            tags.insert(k.clone(), v.clone());
        }
    }
    let measurement = input.str("name_override").map(str::to_owned);
    let mut decode = parser::decode(input, measurement.as_deref(), notes)?;
    if let Some("inner" | "outer") = input.str("timestamp_source") {
        decode.insert("time".into(), Value::String("kafka".into()));
    }
    input.leftovers(&input_reason, notes);
    // json and avro mappings carry name_override themselves.
    let line = decode.get("format").and_then(Value::as_str) == Some("line");
    let measurement = measurement.filter(|_| line);
    Some(Pipeline {
        kafka,
        decode,
        tags,
        measurement,
    })
}

/// `[kafka.tls]` from Telegraf's `enable_tls` and `tls_*` keys.
fn tls(input: &Section<'_>, notes: &mut Notes) -> Option<Table> {
    let mut tls = Table::new();
    for (from, to) in [
        ("tls_ca", "ca_file"),
        ("tls_cert", "cert_file"),
        ("tls_key", "key_file"),
    ] {
        if let Some(v) = input.str(from) {
            tls.insert(to.into(), Value::String(v.to_owned()));
        }
    }
    if let Some(skip) = input.bool("insecure_skip_verify") {
        if skip {
            tls.insert("insecure_skip_verify".into(), Value::Boolean(true));
        }
    }
    for key in [
        "tls_key_pwd",
        "tls_server_name",
        "tls_min_version",
        "tls_cipher_suites",
        "tls_renegotiation_method",
    ] {
        input.drop_key(
            key,
            "kinflux's TLS takes a CA, a client certificate and key (unencrypted PEM) only",
            notes,
        );
    }
    let enabled = input.bool("enable_tls");
    (enabled == Some(true) || (enabled.is_none() && !tls.is_empty())).then_some(tls)
}

/// `[kafka.sasl]` from Telegraf's `sasl_*` keys.
fn sasl(input: &Section<'_>, notes: &mut Notes) -> Option<Table> {
    let username = input.str("sasl_username");
    let mechanism = input.str("sasl_mechanism").filter(|m| !m.is_empty());
    let mut sasl = Table::new();
    match (mechanism.unwrap_or("PLAIN"), username) {
        (m @ ("PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512"), Some(user)) => {
            sasl.insert("mechanism".into(), Value::String(m.into()));
            sasl.insert("username".into(), Value::String(user.into()));
            if let Some(p) = input.str("sasl_password") {
                sasl.insert("password".into(), Value::String(p.into()));
            }
        }
        (_, None) if mechanism.is_none() => {}
        (m, _) => notes.add(
            &format!("{}.sasl_mechanism", input.path),
            format!(
                "{m:?} with these settings is not carried over (kinflux: PLAIN, SCRAM-SHA-256/512 with a user, OAUTHBEARER with a token endpoint)"
            ),
        ),
    }
    for key in [
        "sasl_access_token",
        "sasl_gssapi_service_name",
        "sasl_gssapi_auth_type",
        "sasl_gssapi_kerberos_config_path",
        "sasl_gssapi_key_tab_path",
        "sasl_gssapi_realm",
        "sasl_gssapi_disable_pafxfast",
        "sasl_extensions",
        "sasl_version",
        "sasl_password",
    ] {
        if key == "sasl_password" && !sasl.is_empty() {
            continue;
        }
        input.drop_key(key, "not carried over: kinflux takes PLAIN and SCRAM users, or OAUTHBEARER from a token endpoint", notes);
    }
    (!sasl.is_empty()).then_some(sasl)
}

/// Why a kafka_consumer key is left out.
fn input_reason(key: &str) -> Option<&'static str> {
    if let Some(why) = common_reason(key) {
        return Some(why);
    }
    Some(match key {
        "max_message_len"
        | "max_undelivered_messages"
        | "max_processing_time"
        | "consumer_fetch_default" => {
            "kinflux bounds what it holds with kafka.max_buffered_bytes and kafka.fetch_max_bytes; left out"
        }
        "kafka_version"
        | "version"
        | "connection_strategy"
        | "resolve_canonical_bootstrap_servers_only"
        | "metadata_retry_max"
        | "metadata_retry_type"
        | "metadata_retry_backoff"
        | "metadata_retry_max_duration"
        | "compression"
        | "channel_buffer_size"
        | "keep_alive_period" => {
            "kinflux's Kafka client negotiates API versions and reconnects itself; left out"
        }
        "msg_header_as_metric_name" => "kinflux cannot take the measurement from a header",
        _ => return None,
    })
}
