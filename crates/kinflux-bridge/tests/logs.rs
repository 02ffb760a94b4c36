//! What `kinflux run` logs, as a log shipper reads it (`--log-format json`), against the
//! real Kafka and an InfluxDB that is down at first: the start line names the version and
//! the pipeline without a secret; the outage is one warn, however many retries; the
//! recovery is logged at info; and `/metrics` counts the rebalance, the fetch errors and
//! the retries.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kinflux_testkit::{free_port, influx, kafka, require, unique};
use serde_json::Value;

/// Kills the bridge when the test ends, however it ends.
struct Bridge(Child);

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The JSON log lines written so far.
fn log_lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn message(line: &Value) -> &str {
    line["fields"]["message"].as_str().unwrap_or_default()
}

/// Waits up to `within` for `check` to hold.
fn wait_for(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    check()
}

/// From now on, forwards every connection to `port` to `upstream`: InfluxDB comes up.
fn forward(port: u16, upstream: String) {
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the InfluxDB port");
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue;
            };
            for (mut from, mut to) in [
                (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                ),
                (server, client),
            ] {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(std::net::Shutdown::Both);
                });
            }
        }
    });
}

/// `GET /metrics` of the bridge.
fn metrics(port: u16) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_name_the_pipeline_warn_once_per_outage_and_say_when_it_recovered() {
    let (Some(brokers), Some(url)) = (
        require("KINFLUX_KAFKA_BROKERS"),
        require("KINFLUX_INFLUX_URL"),
    ) else {
        return;
    };
    let topic = unique("logs");
    let database = topic.replace('-', "_");
    kafka::create_topic(&brokers, &topic, 1).await;
    influx::create_database(&url, &database);
    let values = (0..5)
        .map(|i| format!("soil,zone=z{i} moisture=0.{i} 170000000{i}000000000").into_bytes())
        .collect();
    kafka::produce_values(&brokers, &topic, 0, values, 1_700_000_000_000).await;

    let influx_port = free_port();
    let metrics_port = free_port();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("bridge.toml");
    std::fs::write(
        &config,
        format!(
            "[kafka]\nbrokers = [\"{brokers}\"]\ntopics = [\"{topic}\"]\ngroup_id = \"{topic}_group\"\n\
             auto_offset_reset = \"earliest\"\nfetch_max_wait = \"100ms\"\n\
             [influx]\nurl = \"http://127.0.0.1:{influx_port}\"\ndatabase = \"{database}\"\n\
             username = \"writer\"\npassword = \"influx-secret-7\"\ntimeout = \"2s\"\n\
             [batch]\nmax_age = \"100ms\"\n\
             [dead_letter]\ntopic = \"{topic}_dlq\"\n\
             [metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n"
        ),
    )
    .expect("write the config");
    let log = dir.path().join("bridge.log");
    let bridge = Command::new(env!("CARGO_BIN_EXE_kinflux"))
        .env_remove("RUST_LOG")
        .args(["run", "--no-progress", "--log-format", "json", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start kinflux");
    let _bridge = Bridge(bridge);

    let is_retry_warn = |l: &Value| {
        l["level"] == "WARN" && message(l).starts_with("InfluxDB write failed, retrying in ")
    };
    assert!(
        wait_for(Duration::from_secs(20), || log_lines(&log)
            .iter()
            .any(is_retry_warn)),
        "no retry warning:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // Retries go on (every few hundred ms at first): still one warn.
    std::thread::sleep(Duration::from_secs(3));
    let m = metrics(metrics_port);
    let retries: f64 = m
        .lines()
        .filter(|l| l.starts_with("kinflux_write_retries_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(retries >= 3.0, "{m}");
    forward(influx_port, url.trim_start_matches("http://").to_owned());
    assert!(
        wait_for(Duration::from_secs(30), || {
            influx::count(&url, &database, "soil", "moisture") == 5
        }),
        "the points did not land"
    );
    let recovered = |l: &Value| {
        l["level"] == "INFO" && message(l).starts_with("InfluxDB write recovered after ")
    };
    assert!(
        wait_for(Duration::from_secs(5), || log_lines(&log)
            .iter()
            .any(recovered)),
        "no recovery line:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    let lines = log_lines(&log);
    let first = &lines[0];
    assert_eq!(first["level"], "INFO", "{first}");
    let start = message(first);
    assert!(
        start.starts_with(&format!("kinflux {} starting: kafka {brokers} topics={topic} group={topic}_group (line protocol) -> influx v1 http://127.0.0.1:{influx_port} db={database}; dead letters to {topic}_dlq", env!("CARGO_PKG_VERSION"))),
        "{first}"
    );
    assert_eq!(first["fields"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        lines.iter().filter(|l| is_retry_warn(l)).count(),
        1,
        "{lines:#?}"
    );
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        !text.contains("influx-secret-7"),
        "a secret in the log:\n{text}"
    );

    let m = metrics(metrics_port);
    for expected in ["kinflux_rebalances_total 1", "kinflux_revocations_total 0"] {
        assert!(
            m.lines().any(|l| l == expected),
            "missing {expected:?} in\n{m}"
        );
    }
    assert!(
        m.lines()
            .any(|l| l.starts_with("kinflux_fetch_errors_total{kind=\"request\"} ")),
        "{m}"
    );
    influx::drop_database(&url, &database);
}
