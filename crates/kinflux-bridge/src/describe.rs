//! What a configuration will do, in one line: the start-up log line, and the targets that
//! `kinflux test` and `check-config --connect` name. Secrets never appear: tokens and
//! passwords are left out, and a URL's user information is replaced.

use std::fmt::Write as _;

use kinflux::Config;
use kinflux::config::{Format, InfluxApi, InfluxConfig, OnError, PipelineConfig};

/// `url` with any `user:password@` replaced by `<redacted>@`.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://<redacted>@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// Where points go: the API, the server and the database, bucket or retention policy.
pub(crate) fn target(i: &InfluxConfig) -> String {
    let url = redact_url(&i.url);
    let text = |v: &Option<String>| v.as_deref().unwrap_or("").to_owned();
    match i.api {
        InfluxApi::V1 => {
            let mut out = format!("influx v1 {url} db={}", text(&i.database));
            if let Some(rp) = &i.retention_policy {
                let _ = write!(out, " rp={rp}");
            }
            out
        }
        InfluxApi::V2 => format!(
            "influx v2 {url} org={} bucket={}",
            text(&i.org),
            text(&i.bucket)
        ),
        InfluxApi::V3 => format!("influx v3 {url} db={}", text(&i.database)),
        _ => format!("influx {url}"),
    }
}

/// A target with the database (or bucket) and retention policy a point is routed to.
pub(crate) fn routed(i: &InfluxConfig, database: &str, retention_policy: Option<&str>) -> String {
    let url = redact_url(&i.url);
    match i.api {
        InfluxApi::V2 => format!(
            "influx v2 {url} org={} bucket={database}",
            i.org.as_deref().unwrap_or("")
        ),
        InfluxApi::V3 => format!("influx v3 {url} db={database}"),
        _ => match retention_policy {
            Some(rp) => format!("influx v1 {url} db={database} rp={rp}"),
            None => format!("influx v1 {url} db={database}"),
        },
    }
}

/// Every pipeline of `config`, `; `-separated: [`pipeline`] each, named when there are
/// several.
pub(crate) fn pipelines(config: &Config) -> String {
    let several = config.pipelines.len() > 1;
    let each: Vec<String> = config
        .pipelines
        .iter()
        .map(|p| {
            let line = pipeline(config, p);
            if several {
                format!("pipeline {}: {line}", p.name)
            } else {
                line
            }
        })
        .collect();
    each.join(" | ")
}

/// One pipeline in one line: source, decoding, targets, and what happens to bad records.
pub(crate) fn pipeline(config: &Config, p: &PipelineConfig) -> String {
    let c = &p.kafka.consumer;
    let topics = match &c.topic_regex {
        Some(regex) => format!("topic_regex={regex}"),
        None => format!("topics={}", c.topics.join(",")),
    };
    let security = match (&c.tls, &c.sasl) {
        (Some(_), Some(s)) => format!(" sasl_ssl/{}", s.mechanism().name()),
        (None, Some(s)) => format!(" sasl_plaintext/{}", s.mechanism().name()),
        (Some(_), None) => " ssl".to_owned(),
        (None, None) => String::new(),
    };
    let format = match p.decode.format {
        Format::Line => "line protocol",
        Format::Avro => "avro",
        Format::Json => "json",
        _ => "other",
    };
    let errors = match (&p.dead_letter.on_error, &p.dead_letter.topic) {
        (OnError::DeadLetter, Some(topic)) => format!("dead letters to {topic}"),
        (OnError::Drop, _) => "bad records dropped".to_owned(),
        (OnError::Stop, _) => "stops at a bad record".to_owned(),
        _ => "dead letters".to_owned(),
    };
    let targets: Vec<String> = config
        .targets_of(p)
        .map(|t| {
            if config.targets.len() > 1 {
                format!("{} ({})", t.name, target(&t.influx))
            } else {
                target(&t.influx)
            }
        })
        .collect();
    format!(
        "kafka {}{security} {topics} group={} ({format}) -> {}; {errors}",
        c.brokers.join(","),
        c.group_id,
        targets.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_information_in_a_url_is_redacted() {
        assert_eq!(
            redact_url("https://admin:hunter2@influx.example:8086/x@y"),
            "https://<redacted>@influx.example:8086/x@y"
        );
        assert_eq!(redact_url("http://127.0.0.1:8086"), "http://127.0.0.1:8086");
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn several_pipelines_and_targets_are_named() {
        let config = Config::from_toml(
            "[kafka]\nbrokers = [\"b:9092\"]\ngroup_id = \"g\"\n\
             [influx.old]\nurl = \"http://h:8086\"\ndatabase = \"d\"\n\
             [influx.new]\nurl = \"http://h:8087\"\napi = \"v2\"\norg = \"o\"\nbucket = \"b\"\ntoken = \"t\"\n\
             [[pipeline]]\nname = \"lp\"\ntargets = [\"old\", \"new\"]\nkafka = { topics = [\"t1\"] }\n\
             dead_letter = { on_error = \"drop\" }\n\
             [[pipeline]]\nname = \"js\"\ntargets = [\"new\"]\nkafka = { topics = [\"t2\"] }\n\
             dead_letter = { topic = \"dlq\" }\n\
             decode = { format = \"json\", mapping = { measurement = { constant = \"m\" }, fields = [\"v\"] } }\n",
        )
        .expect("valid");
        assert_eq!(
            pipelines(&config),
            "pipeline lp: kafka b:9092 topics=t1 group=g-lp (line protocol) -> \
             old (influx v1 http://h:8086 db=d), new (influx v2 http://h:8087 org=o bucket=b); \
             bad records dropped | pipeline js: kafka b:9092 topics=t2 group=g-js (json) -> \
             new (influx v2 http://h:8087 org=o bucket=b); dead letters to dlq"
        );
    }

    #[test]
    fn the_pipeline_line_names_the_target_and_no_secret() {
        let config = Config::from_toml(
            "[kafka]\nbrokers = [\"b:9092\"]\ntopics = [\"t1\", \"t2\"]\ngroup_id = \"g\"\n\
             sasl = { mechanism = \"PLAIN\", username = \"u\", password = \"kafka-secret\" }\n\
             [influx]\nurl = \"http://u:influx-secret@h:8087\"\napi = \"v2\"\norg = \"o\"\n\
             bucket = \"b\"\ntoken = \"the-token\"\n[dead_letter]\ntopic = \"dlq\"\n",
        )
        .expect("valid");
        let line = pipelines(&config);
        assert_eq!(
            line,
            "kafka b:9092 sasl_plaintext/PLAIN topics=t1,t2 group=g (line protocol) -> \
             influx v2 http://<redacted>@h:8087 org=o bucket=b; dead letters to dlq"
        );
        for secret in ["kafka-secret", "influx-secret", "the-token"] {
            assert!(!line.contains(secret), "{line}");
        }
    }
}
