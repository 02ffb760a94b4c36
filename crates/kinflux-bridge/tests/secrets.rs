//! No configured secret ever shows: the `kinflux` binary runs against the real servers of
//! `scripts/services` with every kind of secret configured (taken from the environment
//! through `${NAME}`, as a deployment would), reads good Avro records and bad ones that go
//! to the dead-letter topic, and then its logs (at debug level), `check-config` output,
//! and the dead-letter records' headers, keys and values are searched for every secret
//! value, and for the HTTP basic-auth header it would make of it. None may be there.
//!
//! Two runs cover the kinds one configuration cannot hold at once, and a third set of
//! runs has each credential refused (the error path):
//! - SASL/PLAIN password, InfluxDB 1.x (`KINFLUX_INFLUX_URL`) user and password, registry
//!   user and password;
//! - OAUTHBEARER client secret, InfluxDB 2 token, registry token.
//!
//! The InfluxDB 1.x and Apicurio servers run without authentication, so they ignore the
//! credentials they are sent; the Kafka listeners and InfluxDB 2 check theirs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use kinflux_testkit::influx2::Influx2;
use kinflux_testkit::{free_port, http, influx, kafka, require_or_skip, unique};

/// Good records (each one point) and bad ones of each kind per run.
const GOOD: usize = 20;
const BAD_BYTES: usize = 5;
const UNKNOWN_SCHEMA: usize = 5;
/// A schema id Apicurio has not given out.
const MISSING_ID: u32 = 2_000_000_000;

const SCHEMA: &str = r#"{"type":"record","name":"Reading","namespace":"kinflux.secrets","fields":[{"name":"v","type":"double"}]}"#;

/// One secret: what it is, and its value.
struct Secret {
    what: String,
    value: String,
}

impl Secret {
    fn new(what: &str, value: &str) -> Secret {
        Secret {
            what: what.to_owned(),
            value: value.to_owned(),
        }
    }

    /// The password and the `Authorization: Basic` value made of it with `user`.
    fn basic(what: &str, user: &str, password: &str) -> [Secret; 2] {
        let header = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        [
            Secret::new(what, password),
            Secret::new(&format!("{what} (basic auth header)"), &header),
        ]
    }
}

/// Panics, naming the place, the secret and the line, when `text` holds a secret.
fn assert_no_secret(place: &str, text: &str, secrets: &[Secret]) {
    for s in secrets {
        if let Some(line) = text.lines().find(|l| l.contains(&s.value)) {
            panic!("{place} shows the {}: {line}", s.what);
        }
    }
}

fn bridge_bin() -> &'static str {
    env!("CARGO_BIN_EXE_kinflux")
}

/// Registers the test schema under `subject`; its id.
fn register(registry: &str, subject: &str) -> u32 {
    let body = serde_json::json!({ "schema": SCHEMA }).to_string();
    let answer = http::request(
        "POST",
        &format!("{registry}/subjects/{subject}/versions"),
        &[("Content-Type", "application/vnd.schemaregistry.v1+json")],
        body.as_bytes(),
    )
    .expect("the registry answers");
    assert_eq!(answer.status, 200, "register: {}", answer.body);
    let v: serde_json::Value = serde_json::from_str(&answer.body).expect("JSON");
    let id = v["id"].as_u64().expect("an id");
    u32::try_from(id).expect("a 32-bit id")
}

/// A Confluent-framed Avro record of the test schema: magic 0, schema id, then `v` as
/// Avro's 8-byte little-endian double.
fn framed(id: u32, v: f64) -> Vec<u8> {
    let mut out = vec![0];
    out.extend(id.to_be_bytes());
    out.extend(v.to_le_bytes());
    out
}

/// Produces the good and the bad records of one run; the number of bad ones.
async fn produce(brokers: &str, topic: &str, id: u32) -> usize {
    let mut records = Vec::new();
    let base = 1_700_000_000_000;
    for i in 0..GOOD {
        records.push(kafka::record(framed(id, i as f64), base + i as i64));
    }
    for i in 0..BAD_BYTES {
        records.push(kafka::record(
            format!("not avro {i}"),
            base + 1000 + i as i64,
        ));
    }
    for i in 0..UNKNOWN_SCHEMA {
        records.push(kafka::record(
            framed(MISSING_ID, i as f64),
            base + 2000 + i as i64,
        ));
    }
    kafka::produce(brokers, topic, 0, records).await;
    BAD_BYTES + UNKNOWN_SCHEMA
}

/// The `[decode]` section: Avro through the registry.
fn decode_section(registry: &str, auth: &str) -> String {
    format!(
        "[decode]\nformat = \"avro\"\nregistry_url = \"{registry}\"\n{auth}\n\
         [decode.mapping]\nmeasurement = {{ constant = \"secrets\" }}\n"
    )
}

/// The `[kafka]` section (`sasl` is an inline table, or empty) and `[dead_letter]`.
fn kafka_section(brokers: &str, topic: &str, sasl: &str) -> String {
    let sasl = if sasl.is_empty() {
        String::new()
    } else {
        format!("sasl = {sasl}")
    };
    format!(
        "[kafka]\nbrokers = [\"{brokers}\"]\ntopics = [\"{topic}\"]\ngroup_id = \"{topic}_group\"\n\
         auto_offset_reset = \"earliest\"\nfetch_max_wait = \"100ms\"\ncommit_interval = \"500ms\"\n\
         {sasl}\n\n[dead_letter]\ntopic = \"{topic}_dlq\"\n"
    )
}

/// What one run leaves to search.
struct Run {
    /// `check-config`'s stdout and stderr.
    check_config: String,
    /// The bridge's log, at debug level.
    log: String,
}

/// Writes `config`, runs `check-config` and then the bridge with `env` (the secrets),
/// until `done` says the records are through; the outputs.
fn run_bridge(
    dir: &Path,
    config: &str,
    env: &[(&str, &str)],
    mut done: impl FnMut() -> bool,
) -> Run {
    let metrics_port = free_port();
    let path: PathBuf = dir.join("bridge.toml");
    std::fs::write(
        &path,
        format!("{config}\n[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n"),
    )
    .expect("write the config");
    let command = |args: &[&str]| {
        let mut c = Command::new(bridge_bin());
        c.args(args).arg("--config").arg(&path);
        c.env("NO_COLOR", "1").env_remove("RUST_LOG");
        for (k, v) in env {
            c.env(k, v);
        }
        c
    };

    let out = command(&["check-config"])
        .output()
        .expect("run check-config");
    let check_config = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "check-config: {check_config}");
    assert!(check_config.contains("<redacted>"), "{check_config}");

    let log_path = dir.join("bridge.log");
    let log = std::fs::File::create(&log_path).expect("bridge log");
    let mut child: Child = command(&["run", "--no-progress"])
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("bridge log"))
        .stderr(log)
        .spawn()
        .expect("start the bridge");
    let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(90);
    while !done() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the bridge exited ({status}):\n{}", read_log());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the records never got through:\n{}", read_log());
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    // A clean stop logs the drain and the last commit too.
    let stopped = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(stopped.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.wait();
    Run {
        check_config,
        log: read_log(),
    }
}

/// Searches the run's outputs and the dead-letter topic for every secret.
async fn assert_nothing_leaks(
    brokers: &str,
    topic: &str,
    bad: usize,
    run: &Run,
    secrets: &[Secret],
) {
    // The log is at debug level and covers the whole life of the bridge, or the search
    // proves little.
    assert!(run.log.contains("DEBUG"), "no debug lines:\n{}", run.log);
    assert!(
        run.log.contains("dead"),
        "no dead letters logged:\n{}",
        run.log
    );
    assert_no_secret("the bridge's log", &run.log, secrets);
    assert_no_secret("check-config", &run.check_config, secrets);

    let dead = kafka::read_all(brokers, &format!("{topic}_dlq"), 0).await;
    assert_eq!(dead.len(), bad, "every bad record is dead-lettered");
    for r in &dead {
        let mut text = String::new();
        for (name, value) in &r.record.headers {
            text.push_str(&format!("{name}: {}\n", String::from_utf8_lossy(value)));
        }
        assert!(text.contains("schema") || text.contains("decode"), "{text}");
        assert_no_secret("a dead-letter header", &text, secrets);
        for part in [&r.record.key, &r.record.value].into_iter().flatten() {
            assert_no_secret(
                "a dead-letter key or value",
                &String::from_utf8_lossy(part),
                secrets,
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_plain_influx_v1_and_registry_passwords_never_show() {
    let (plain_brokers, sasl_brokers, user, password, influx_url, registry) = require_or_skip!(
        "KINFLUX_KAFKA_BROKERS",
        "KINFLUX_KAFKA_SASL_PLAINTEXT_BROKERS",
        "KINFLUX_KAFKA_SASL_USERNAME",
        "KINFLUX_KAFKA_SASL_PASSWORD",
        "KINFLUX_INFLUX_URL",
        "KINFLUX_REGISTRY_URL"
    );
    let topic = unique("secrets_v1");
    let db = unique("secrets_db");
    kafka::create_topic(&plain_brokers, &topic, 1).await;
    kafka::create_topic(&plain_brokers, &format!("{topic}_dlq"), 1).await;
    let id = register(&registry, &format!("{topic}-value"));
    let bad = produce(&plain_brokers, &topic, id).await;

    let influx_password = format!("influx-pw-{}", unique("s"));
    let registry_password = format!("registry-pw-{}", unique("s"));
    let mut secrets = Vec::new();
    secrets.push(Secret::new("SASL password", &password));
    secrets.extend(Secret::basic(
        "InfluxDB password",
        "bridge",
        &influx_password,
    ));
    secrets.extend(Secret::basic(
        "registry password",
        "reader",
        &registry_password,
    ));

    let config = format!(
        "{}\n[influx]\nurl = \"{influx_url}\"\ndatabase = \"{db}\"\ncreate_database = true\n\
         username = \"bridge\"\npassword = \"${{SECRETS_INFLUX_PASSWORD}}\"\n\n{}",
        kafka_section(
            &sasl_brokers,
            &topic,
            &format!(
                "{{ mechanism = \"PLAIN\", username = \"{user}\", password = \"${{SECRETS_SASL_PASSWORD}}\" }}"
            )
        ),
        decode_section(
            &registry,
            "registry_username = \"reader\"\nregistry_password = \"${SECRETS_REGISTRY_PASSWORD}\""
        ),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let dlq = format!("{topic}_dlq");
    let run = {
        let brokers = plain_brokers.clone();
        let (influx_url, db) = (influx_url.clone(), db.clone());
        tokio::task::spawn_blocking(move || {
            let handle = tokio::runtime::Handle::current();
            run_bridge(
                dir.path(),
                &config,
                &[
                    ("SECRETS_SASL_PASSWORD", &password),
                    ("SECRETS_INFLUX_PASSWORD", &influx_password),
                    ("SECRETS_REGISTRY_PASSWORD", &registry_password),
                ],
                || {
                    influx::count(&influx_url, &db, "secrets", "v") == GOOD as u64
                        && handle.block_on(kafka::watermarks(&brokers, &dlq, 0)).1 == bad as i64
                },
            )
        })
        .await
        .expect("the bridge run")
    };
    assert_nothing_leaks(&plain_brokers, &topic, bad, &run, &secrets).await;
    influx::drop_database(&influx_url, &db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_secret_influx_token_and_registry_token_never_show() {
    let (plain_brokers, oauth_brokers, token_url, client_id, client_secret, registry) = require_or_skip!(
        "KINFLUX_KAFKA_BROKERS",
        "KINFLUX_KAFKA_OAUTH_BROKERS",
        "KINFLUX_OAUTH_TOKEN_URL",
        "KINFLUX_OAUTH_CLIENT_ID",
        "KINFLUX_OAUTH_CLIENT_SECRET",
        "KINFLUX_REGISTRY_URL"
    );
    let Some(influx2) = Influx2::from_env() else {
        return;
    };
    let topic = unique("secrets_v2");
    let bucket = unique("secrets_bucket");
    kafka::create_topic(&plain_brokers, &topic, 1).await;
    kafka::create_topic(&plain_brokers, &format!("{topic}_dlq"), 1).await;
    let id = register(&registry, &format!("{topic}-value"));
    let bad = produce(&plain_brokers, &topic, id).await;

    let registry_token = format!("registry-token-{}", unique("s"));
    let secrets = [
        Secret::new("OAuth client secret", &client_secret),
        Secret::new("InfluxDB token", &influx2.token),
        Secret::new("registry token", &registry_token),
    ];

    let config = format!(
        "{}\n[influx]\nurl = \"{}\"\napi = \"v2\"\norg = \"{}\"\nbucket = \"{bucket}\"\n\
         create_bucket = true\ntoken = \"${{SECRETS_INFLUX_TOKEN}}\"\n\n{}",
        kafka_section(
            &oauth_brokers,
            &topic,
            &format!(
                "{{ mechanism = \"OAUTHBEARER\", token_url = \"{token_url}\", client_id = \"{client_id}\", \
                 client_secret = \"${{SECRETS_OAUTH_SECRET}}\", scope = \"kafka\" }}"
            )
        ),
        influx2.url,
        influx2.org,
        decode_section(&registry, "registry_token = \"${SECRETS_REGISTRY_TOKEN}\""),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let dlq = format!("{topic}_dlq");
    let run = {
        let brokers = plain_brokers.clone();
        let influx2 = influx2.clone();
        let bucket = bucket.clone();
        tokio::task::spawn_blocking(move || {
            let handle = tokio::runtime::Handle::current();
            let token = influx2.token.clone();
            run_bridge(
                dir.path(),
                &config,
                &[
                    ("SECRETS_OAUTH_SECRET", &client_secret),
                    ("SECRETS_INFLUX_TOKEN", &token),
                    ("SECRETS_REGISTRY_TOKEN", &registry_token),
                ],
                || {
                    influx2.bucket(&bucket).is_some()
                        && influx2.count(&bucket, "secrets", "v") == GOOD
                        && handle.block_on(kafka::watermarks(&brokers, &dlq, 0)).1 == bad as i64
                },
            )
        })
        .await
        .expect("the bridge run")
    };
    assert_nothing_leaks(&plain_brokers, &topic, bad, &run, &secrets).await;
    influx2.delete_bucket(&bucket);
}

/// Runs the bridge with `config` and `env` until it exits or `limit` passes; its log, at
/// debug level.
fn run_until_exit(dir: &Path, config: &str, env: &[(&str, &str)], limit: Duration) -> String {
    let path = dir.join("wrong.toml");
    std::fs::write(&path, config).expect("write the config");
    let log_path = dir.join("wrong.log");
    let log = std::fs::File::create(&log_path).expect("bridge log");
    let mut c = Command::new(bridge_bin());
    c.args(["run", "--no-progress", "--config"]).arg(&path);
    c.env("NO_COLOR", "1").env("RUST_LOG", "debug");
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("bridge log"))
        .stderr(log)
        .spawn()
        .expect("start the bridge");
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("wait").is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    let _ = child.wait();
    std::fs::read_to_string(&log_path).unwrap_or_default()
}

/// Refused credentials are where a secret is most tempting to print: a wrong SASL
/// password, a wrong OAuth client secret and a wrong InfluxDB token each make the bridge
/// fail or retry, and its log names the failure but never the value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_are_reported_without_their_values() {
    let (plain_brokers, sasl_brokers, user, oauth_brokers, token_url, client_id) = require_or_skip!(
        "KINFLUX_KAFKA_BROKERS",
        "KINFLUX_KAFKA_SASL_PLAINTEXT_BROKERS",
        "KINFLUX_KAFKA_SASL_USERNAME",
        "KINFLUX_KAFKA_OAUTH_BROKERS",
        "KINFLUX_OAUTH_TOKEN_URL",
        "KINFLUX_OAUTH_CLIENT_ID"
    );
    let Some(influx2) = Influx2::from_env() else {
        return;
    };
    let topic = unique("secrets_wrong");
    kafka::create_topic(&plain_brokers, &topic, 1).await;
    let wrong = format!("wrong-{}", unique("s"));
    let influx_v1 = format!(
        "\n[influx]\nurl = \"http://127.0.0.1:{}\"\ndatabase = \"d\"\n",
        free_port()
    );
    let cases = [
        (
            "SASL/PLAIN",
            format!(
                "{}{influx_v1}",
                kafka_section(
                    &sasl_brokers,
                    &topic,
                    &format!(
                        "{{ mechanism = \"PLAIN\", username = \"{user}\", password = \"${{SECRETS_WRONG}}\" }}"
                    )
                )
            ),
        ),
        (
            "OAUTHBEARER",
            format!(
                "{}{influx_v1}",
                kafka_section(
                    &oauth_brokers,
                    &topic,
                    &format!(
                        "{{ mechanism = \"OAUTHBEARER\", token_url = \"{token_url}\", \
                         client_id = \"{client_id}\", client_secret = \"${{SECRETS_WRONG}}\" }}"
                    )
                )
            ),
        ),
        (
            "InfluxDB token",
            format!(
                "{}\n[influx]\nurl = \"{}\"\napi = \"v2\"\norg = \"{}\"\nbucket = \"b\"\n\
                 token = \"${{SECRETS_WRONG}}\"\n",
                kafka_section(&plain_brokers, &topic, ""),
                influx2.url,
                influx2.org
            ),
        ),
    ];
    let secrets = [Secret::new("wrong secret", &wrong)];
    for (what, config) in cases {
        let dir = tempfile::tempdir().expect("temp dir");
        let wrong = wrong.clone();
        let log = tokio::task::spawn_blocking(move || {
            run_until_exit(
                dir.path(),
                &config,
                &[("SECRETS_WRONG", &wrong)],
                Duration::from_secs(20),
            )
        })
        .await
        .expect("the bridge run");
        let lower = log.to_lowercase();
        assert!(
            lower.contains("auth") || lower.contains("401") || lower.contains("denied"),
            "{what}: the log names no refusal:\n{log}"
        );
        assert_no_secret(&format!("the log of a refused {what}"), &log, &secrets);
    }
}
