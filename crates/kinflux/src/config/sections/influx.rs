//! `[influx]`: where points go.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{duration, optional_duration, redacted};

/// `influx.gzip`: whether request bodies are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(from = "GzipSetting")]
#[non_exhaustive]
pub enum Gzip {
    /// gzip unless the server is on this machine: on loopback, bandwidth is free and the
    /// server spends as much CPU undoing it (a fifth of the bridge's CPU on line protocol).
    #[default]
    Auto,
    /// Always gzip (`true`).
    Always,
    /// Never gzip (`false`).
    Never,
}

impl Gzip {
    /// Whether bodies sent to `url` are compressed.
    pub fn applies_to(self, url: &str) -> bool {
        match self {
            Gzip::Always => true,
            Gzip::Never => false,
            Gzip::Auto => !is_loopback(url),
        }
    }
}

/// What the key may hold: a boolean or `"auto"`.
#[derive(Deserialize)]
#[serde(untagged)]
enum GzipSetting {
    Switch(bool),
    Word(GzipWord),
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum GzipWord {
    Auto,
}

impl From<GzipSetting> for Gzip {
    fn from(s: GzipSetting) -> Self {
        match s {
            GzipSetting::Switch(true) => Gzip::Always,
            GzipSetting::Switch(false) => Gzip::Never,
            GzipSetting::Word(GzipWord::Auto) => Gzip::Auto,
        }
    }
}

/// Whether `url`'s host is this machine: `localhost`, 127.0.0.0/8 or `::1`. A URL that
/// does not parse is not (the writer reports it).
fn is_loopback(url: &str) -> bool {
    let Some(host) = url
        .parse::<hyper::Uri>()
        .ok()
        .and_then(|uri| uri.host().map(str::to_owned))
    else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `influx.api`: which write API the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum InfluxApi {
    /// InfluxDB 1.x, Enterprise: `/write`, database and retention policy, user and password.
    #[default]
    V1,
    /// InfluxDB 2.x and Cloud: `/api/v2/write`, org and bucket, token.
    V2,
    /// InfluxDB 3: `/api/v3/write_lp`, database, token.
    V3,
}

/// `[influx]`: where points are written.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct InfluxConfig {
    /// Base URL, such as `http://127.0.0.1:8086`.
    pub url: String,
    /// The write API.
    #[serde(default)]
    pub api: InfluxApi,
    /// v1 and v3: the database.
    #[serde(default)]
    pub database: Option<String>,
    /// v1: the retention policy (the database's default when absent).
    #[serde(default)]
    pub retention_policy: Option<String>,
    /// v2: the organization.
    #[serde(default)]
    pub org: Option<String>,
    /// v2: the bucket.
    #[serde(default)]
    pub bucket: Option<String>,
    /// v1 and v3: take each point's database from this tag; points without it go to
    /// `database`. `database` may also hold `${topic}`, the record's topic.
    #[serde(default)]
    pub database_tag: Option<String>,
    /// Leave `database_tag` out of the points written.
    #[serde(default)]
    pub exclude_database_tag: bool,
    /// v1: take each point's retention policy from this tag; points without it go to
    /// `retention_policy`.
    #[serde(default)]
    pub retention_policy_tag: Option<String>,
    /// Leave `retention_policy_tag` out of the points written.
    #[serde(default)]
    pub exclude_retention_policy_tag: bool,
    /// v2: take each point's bucket from this tag; points without it go to `bucket`.
    #[serde(default)]
    pub bucket_tag: Option<String>,
    /// Leave `bucket_tag` out of the points written.
    #[serde(default)]
    pub exclude_bucket_tag: bool,
    /// v2 and v3: the API token.
    #[serde(default)]
    pub token: Option<String>,
    /// v1: user name (basic auth).
    #[serde(default)]
    pub username: Option<String>,
    /// v1: password (basic auth).
    #[serde(default)]
    pub password: Option<String>,
    /// gzip request bodies: `true`, `false`, or `"auto"` (the default): gzip unless the
    /// server is on this machine (a loopback address or `localhost`), where compressing
    /// only moves CPU from the server to us and back.
    #[serde(default)]
    pub gzip: Gzip,
    /// gzip level, 0 to 9.
    #[serde(default = "default_gzip_level")]
    pub gzip_level: u32,
    /// Most writes in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Timeout of one write request.
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    /// v1: create the database when it does not exist.
    #[serde(default)]
    pub create_database: bool,
    /// v2: create the bucket in the org when it does not exist.
    #[serde(default)]
    pub create_bucket: bool,
    /// v2: the retention period of a bucket `create_bucket` creates (`"30d"`); forever
    /// when absent.
    #[serde(default, deserialize_with = "optional_duration")]
    pub bucket_retention: Option<Duration>,
    /// Give up on a write after this many attempts; retries forever when absent.
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// Give up on a write after this long; retries forever when absent.
    #[serde(default, deserialize_with = "optional_duration")]
    pub max_retry_time: Option<Duration>,
    /// A PEM file of CA certificates to trust for `https://`.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_gzip_level() -> u32 {
    1
}
fn default_concurrency() -> usize {
    4
}
fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

impl fmt::Debug for InfluxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InfluxConfig")
            .field("url", &self.url)
            .field("api", &self.api)
            .field("database", &self.database)
            .field("retention_policy", &self.retention_policy)
            .field("org", &self.org)
            .field("bucket", &self.bucket)
            .field("database_tag", &self.database_tag)
            .field("exclude_database_tag", &self.exclude_database_tag)
            .field("retention_policy_tag", &self.retention_policy_tag)
            .field(
                "exclude_retention_policy_tag",
                &self.exclude_retention_policy_tag,
            )
            .field("bucket_tag", &self.bucket_tag)
            .field("exclude_bucket_tag", &self.exclude_bucket_tag)
            .field("token", &redacted(&self.token))
            .field("username", &self.username)
            .field("password", &redacted(&self.password))
            .field("gzip", &self.gzip)
            .field("gzip_level", &self.gzip_level)
            .field("concurrency", &self.concurrency)
            .field("timeout", &self.timeout)
            .field("create_database", &self.create_database)
            .field("create_bucket", &self.create_bucket)
            .field("bucket_retention", &self.bucket_retention)
            .field("max_retries", &self.max_retries)
            .field("max_retry_time", &self.max_retry_time)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

#[cfg(test)]
mod gzip_tests {
    use super::*;

    #[test]
    fn auto_leaves_out_only_servers_on_this_machine() {
        for url in [
            "http://127.0.0.1:8086",
            "http://127.9.9.9",
            "http://localhost:8086/",
            "https://LOCALHOST",
            "http://[::1]:8086",
            "http://user:pw@127.0.0.1:8086",
        ] {
            assert!(!Gzip::Auto.applies_to(url), "{url}");
            assert!(Gzip::Always.applies_to(url), "{url}");
        }
        for url in [
            "http://10.0.0.5:8086",
            "https://influx.example.com",
            "http://[2001:db8::1]:8086",
            "http://localhost.example.com",
            "not a url",
        ] {
            assert!(Gzip::Auto.applies_to(url), "{url}");
            assert!(!Gzip::Never.applies_to(url), "{url}");
        }
    }

    #[test]
    fn the_key_takes_a_boolean_or_auto() {
        #[derive(Deserialize)]
        struct T {
            gzip: Gzip,
        }
        let of = |text: &str| toml::from_str::<T>(text).map(|t| t.gzip);
        assert_eq!(of("gzip = true").unwrap(), Gzip::Always);
        assert_eq!(of("gzip = false").unwrap(), Gzip::Never);
        assert_eq!(of("gzip = \"auto\"").unwrap(), Gzip::Auto);
        assert!(of("gzip = \"sometimes\"").is_err());
    }
}
