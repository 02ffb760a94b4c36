//! `[[outputs.influxdb]]` and `[[outputs.influxdb_v2]]` to `[influx]` tables.

use toml::{Table, Value};

use super::section::{Notes, Section, common_reason};

fn s(v: &str) -> Value {
    Value::String(v.to_owned())
}

/// The `[influx]` table of an influxdb (`v2` false) or influxdb_v2 output.
pub(crate) fn influx(output: &Section<'_>, v2: bool, notes: &mut Notes) -> Table {
    let mut t = Table::new();
    let mut urls = output.strings("urls");
    if urls.is_empty() {
        if let Some(url) = output.str("url") {
            urls.push(url.to_owned());
        }
    }
    let url = urls
        .first()
        .cloned()
        .unwrap_or_else(|| "http://127.0.0.1:8086".to_owned());
    if urls.len() > 1 {
        notes.add(&format!("{}.urls", output.path), "kinflux writes to one URL: the first is kept (Telegraf writes to one of them at a time too)");
    }
    t.insert("url".into(), s(&url));
    if v2 {
        t.insert("api".into(), s("v2"));
        for (from, to) in [
            ("organization", "org"),
            ("bucket", "bucket"),
            ("bucket_tag", "bucket_tag"),
            ("token", "token"),
        ] {
            if let Some(v) = output.str(from) {
                t.insert(to.into(), s(v));
            }
        }
        if let Some(b) = output.bool("exclude_bucket_tag") {
            t.insert("exclude_bucket_tag".into(), Value::Boolean(b));
        }
        // influxdb_v2 compresses by default.
        t.insert(
            "gzip".into(),
            Value::Boolean(output.str("content_encoding").unwrap_or("gzip") == "gzip"),
        );
    } else {
        t.insert("api".into(), s("v1"));
        t.insert(
            "database".into(),
            s(output.str("database").unwrap_or("telegraf")),
        );
        for key in [
            "retention_policy",
            "database_tag",
            "retention_policy_tag",
            "username",
            "password",
        ] {
            if let Some(v) = output.str(key).filter(|v| !v.is_empty()) {
                t.insert(key.into(), s(v));
            }
        }
        for key in ["exclude_database_tag", "exclude_retention_policy_tag"] {
            if let Some(b) = output.bool(key) {
                t.insert(key.into(), Value::Boolean(b));
            }
        }
        // Telegraf creates the database unless told not to.
        let create = !output.bool("skip_database_creation").unwrap_or(false);
        t.insert("create_database".into(), Value::Boolean(create));
        t.insert(
            "gzip".into(),
            Value::Boolean(output.str("content_encoding") == Some("gzip")),
        );
    }
    if let Some(timeout) = output.str("timeout") {
        t.insert("timeout".into(), s(timeout));
    }
    if let Some(ca) = output.str("tls_ca") {
        t.insert("ca_file".into(), s(ca));
    }
    output.leftovers(&output_reason, notes);
    t
}

fn output_reason(key: &str) -> Option<&'static str> {
    if let Some(why) = common_reason(key) {
        return Some(why);
    }
    Some(match key {
        "write_consistency" => "kinflux writes with the server's default consistency",
        "user_agent"
        | "http_headers"
        | "http_proxy"
        | "udp_payload"
        | "influx_uint_support"
        | "influx_omit_timestamp"
        | "insecure_skip_verify"
        | "tls_cert"
        | "tls_key"
        | "tls_key_pwd"
        | "tls_server_name"
        | "max_retries"
        | "content_encoding"
        | "omit_hostname"
        | "concurrent_writes"
        | "rate_limit"
        | "rate_limit_period" => "kinflux has no such option; not carried over",
        _ => return None,
    })
}
