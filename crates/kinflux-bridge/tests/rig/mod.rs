//! The fault tests' rig: a private tansu and a private influxd that a test can stop and
//! start again, the `kinflux` binary as a child process it can SIGKILL, test data
//! produced with rskafka, and small HTTP/1.0 look-ups of `/query` and `/metrics`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::record::Record;

/// Start of the test data's timestamps (ns): 2020-09-13.
pub(crate) const BASE_NS: i64 = 1_600_000_000_000_000_000;
/// The measurement every test writes.
pub(crate) const MEASUREMENT: &str = "fault";
/// Sensors per partition: series = partitions x sensors.
pub(crate) const SENSORS: usize = 20;

/// Whether the issue's full sizes were asked for (`KINFLUX_FAULTS_FULL=1`).
pub(crate) fn full() -> bool {
    std::env::var("KINFLUX_FAULTS_FULL").is_ok_and(|v| v == "1")
}

/// The tansu and influxd binaries, or `None` after a loud SKIPPED line. Under `CI=true`
/// a missing binary is a failure.
pub(crate) fn binaries(test: &str) -> Option<(PathBuf, PathBuf)> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let influxd = PathBuf::from(
        std::env::var("KINFLUX_INFLUXD").unwrap_or_else(|_| "/usr/bin/influxd".to_owned()),
    );
    let missing = match (tansu_bin(), influxd.is_file()) {
        (Some(tansu), true) => return Some((tansu, influxd)),
        (None, _) => "no tansu binary (KINFLUX_TANSU_BIN, PATH, ~/.cargo/bin/tansu)".to_owned(),
        (_, false) => format!("no influxd at {}", influxd.display()),
    };
    if ci {
        panic!("{test}: {missing}, but CI=true");
    }
    eprintln!("SKIPPED ({missing}): {test}");
    None
}

fn tansu_bin() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("KINFLUX_TANSU_BIN") {
        return Some(PathBuf::from(p));
    }
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(c) = std::env::split_paths(&path)
            .map(|d| d.join("tansu"))
            .find(|c| c.is_file())
        {
            return Some(c);
        }
    }
    let c = Path::new(&std::env::var_os("HOME")?).join(".cargo/bin/tansu");
    c.is_file().then_some(c)
}

/// The `kinflux` binary of this package, which cargo builds before the tests.
fn bridge_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_kinflux"))
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A name no other run uses: letters, digits and underscores (valid for topics and
/// databases alike).
pub(crate) fn unique(prefix: &str) -> String {
    format!("{prefix}_{:012x}", rand::random::<u64>() >> 16)
}

fn wait_for_port(port: u16, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("{what} did not listen on {port}:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill(); // SIGKILL
        let _ = c.wait();
    }
}

/// A tansu broker of one test: its own port and SQLite file, which survive a restart.
pub(crate) struct Tansu {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Tansu {
    pub(crate) fn start(bin: &Path) -> Tansu {
        let mut t = Tansu {
            bin: bin.to_owned(),
            dir: tempfile::tempdir().expect("temp dir"),
            port: free_port(),
            child: None,
        };
        t.resume();
        t
    }

    pub(crate) fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the broker (SIGKILL): only what SQLite committed survives.
    pub(crate) fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// Starts it again on the same port and SQLite file.
    pub(crate) fn resume(&mut self) {
        let log_path = self.dir.path().join("tansu.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("tansu log");
        let child = Command::new(&self.bin)
            .current_dir(self.dir.path())
            .args(["broker", "--storage-engine", "sqlite://tansu.db"])
            .arg("--listener-url")
            .arg(format!("tcp://127.0.0.1:{}", self.port))
            .arg("--advertised-listener-url")
            .arg(format!("tcp://127.0.0.1:{}", self.port))
            .arg("--silent")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("tansu log"))
            .stderr(log)
            .spawn()
            .expect("start tansu");
        self.child = Some(child);
        wait_for_port(self.port, "tansu", &log_path);
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An influxd of one test: its own ports and folders, which survive a restart.
pub(crate) struct Influxd {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Influxd {
    pub(crate) fn start(bin: &Path) -> Influxd {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let d = dir.path().display();
        std::fs::write(
            dir.path().join("influxd.conf"),
            format!(
                "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc}\"\n\
                 [meta]\n  dir = \"{d}/meta\"\n\
                 [data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n\
                 [http]\n  bind-address = \"127.0.0.1:{port}\"\n  log-enabled = false\n\
                 [monitor]\n  store-enabled = false\n",
                rpc = free_port()
            ),
        )
        .expect("influxd config");
        let mut i = Influxd {
            bin: bin.to_owned(),
            dir,
            port,
            child: None,
        };
        i.resume();
        i
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL): an outage.
    pub(crate) fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// Starts it again on the same port and data, and waits until it answers `/ping`.
    pub(crate) fn resume(&mut self) {
        let log_path = self.dir.path().join("influxd.log");
        let log = std::fs::File::create(&log_path).expect("influxd log");
        let child = Command::new(&self.bin)
            .arg("-config")
            .arg(self.dir.path().join("influxd.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start influxd");
        self.child = Some(child);
        wait_for_port(self.port, "influxd", &log_path);
        let deadline = Instant::now() + Duration::from_secs(20);
        while http_get(self.port, "/ping").is_none_or(|(status, _)| status != 204) {
            assert!(Instant::now() < deadline, "influxd never answered /ping");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Influxd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `kinflux` binary as a child process with its config file, log and metrics port.
pub(crate) struct Bridge {
    dir: tempfile::TempDir,
    metrics_port: u16,
    child: Option<Child>,
    starts: usize,
}

impl Bridge {
    /// Writes `config` (with `[metrics] listen` on a free port appended) and starts it.
    pub(crate) fn start(config: &str) -> Bridge {
        let metrics_port = free_port();
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("bridge.toml"),
            format!("{config}\n[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n"),
        )
        .expect("bridge config");
        let mut b = Bridge {
            dir,
            metrics_port,
            child: None,
            starts: 0,
        };
        b.resume();
        b
    }

    /// Starts the (killed) bridge again with the same config; its log is appended to.
    pub(crate) fn resume(&mut self) {
        self.starts += 1;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("bridge log");
        let child = Command::new(bridge_bin())
            .arg("--config")
            .arg(self.dir.path().join("bridge.toml"))
            .arg("--no-progress")
            .env(
                "RUST_LOG",
                std::env::var("KINFLUX_FAULTS_LOG").unwrap_or_else(|_| "info,rskafka=warn".into()),
            )
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("bridge log"))
            .stderr(log)
            .spawn()
            .expect("start the bridge");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.metrics().is_none() {
            self.assert_running();
            assert!(
                Instant::now() < deadline,
                "the bridge never served /metrics:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no drain, no commit, no leaving the group.
    pub(crate) fn kill(&mut self) {
        kill(&mut self.child);
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("bridge running").id()
    }

    /// Panics (with the log) when the process has exited.
    pub(crate) fn assert_running(&mut self) {
        let child = self.child.as_mut().expect("bridge started");
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the bridge exited ({status}):\n{}", self.log());
        }
    }

    /// `/metrics` as text, or `None` when it does not answer.
    pub(crate) fn metrics(&self) -> Option<Metrics> {
        match http_get(self.metrics_port, "/metrics")? {
            (200, body) => Some(Metrics(body)),
            _ => None,
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("bridge.log")
    }

    /// Everything the bridge printed, over all its starts.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// `VmHWM` (peak resident set) and `VmRSS` of the running process, in KiB.
    pub(crate) fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("/proc/<pid>/status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .expect("a kB figure")
        };
        (field("VmHWM:"), field("VmRSS:"))
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- bridge log (started {} times) ---\n{}",
                self.starts,
                self.log()
            );
        }
    }
}

/// One `/metrics` answer (Prometheus text).
#[derive(Debug)]
pub(crate) struct Metrics(String);

impl Metrics {
    /// The samples of `name`: labels text (`{...}` or empty) and value.
    fn samples<'a>(&'a self, name: &'a str) -> impl Iterator<Item = (&'a str, f64)> + 'a {
        self.0.lines().filter_map(move |l| {
            let rest = l.strip_prefix(name)?;
            let (labels, value) = rest.rsplit_once(' ')?;
            (labels.is_empty() || labels.starts_with('{'))
                .then(|| value.parse().ok().map(|v| (labels, v)))
                .flatten()
        })
    }

    /// The sum over all label sets of `name`.
    pub(crate) fn sum(&self, name: &str) -> f64 {
        self.samples(name).map(|(_, v)| v).sum()
    }

    /// The value per label set of `name`.
    pub(crate) fn by_label(&self, name: &str) -> BTreeMap<String, f64> {
        self.samples(name).map(|(l, v)| (l.to_owned(), v)).collect()
    }

    /// The partitions this bridge has now (those with a lag gauge).
    pub(crate) fn partitions(&self) -> Vec<i32> {
        self.samples("kinflux_lag_records")
            .filter_map(|(labels, _)| {
                let (_, rest) = labels.split_once("partition=\"")?;
                rest.split('"').next()?.parse().ok()
            })
            .collect()
    }
}

/// A `GET` over HTTP/1.0 (so the answer is never chunked): status and body.
fn http_get(port: u16, path_and_query: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(
        s,
        "GET {path_and_query} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"
    )
    .ok()?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).ok()?;
    let answer = String::from_utf8(answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// InfluxQL against `db` (`epoch=ns`): the JSON answer.
pub(crate) fn query(influx: &Influxd, db: &str, q: &str) -> serde_json::Value {
    let path = format!(
        "/query?db={}&epoch=ns&q={}",
        percent_encode(db),
        percent_encode(q)
    );
    let (status, body) = http_get(influx.port, &path).expect("InfluxDB answers queries");
    assert_eq!(status, 200, "{q}: {body}");
    serde_json::from_str(&body).expect("JSON answer")
}

/// The rows of the first series of an answer.
pub(crate) fn rows(answer: &serde_json::Value) -> Vec<Vec<serde_json::Value>> {
    answer
        .pointer("/results/0/series/0/values")
        .and_then(|v| v.as_array())
        .map(|rows| {
            rows.iter()
                .map(|r| r.as_array().cloned().unwrap_or_default())
                .collect()
        })
        .unwrap_or_default()
}

/// Points of the test measurement in `db` (0 while the database does not exist).
pub(crate) fn count(influx: &Influxd, db: &str) -> u64 {
    let answer = query(
        influx,
        db,
        &format!("SELECT count(\"v\") FROM \"{MEASUREMENT}\""),
    );
    rows(&answer)
        .first()
        .and_then(|r| r.get(1))
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0)
}

/// The record `i` of `partition`: one point with a timestamp no other record has.
pub(crate) fn line(partition: i32, i: usize) -> Vec<u8> {
    format!(
        "{MEASUREMENT},partition={partition},sensor=s{} v={i}i,x={}.5,note=\"fault test\" {}\n",
        i % SENSORS,
        i % 1000,
        time_of(partition, i)
    )
    .into_bytes()
}

fn time_of(partition: i32, i: usize) -> i64 {
    BASE_NS + (i as i64) * 1_000 + i64::from(partition)
}

/// Waits until InfluxDB holds `expected` points (panics with the bridges' logs after
/// `timeout`), then checks the content is exactly what was produced: the count, the
/// series, the measurements, and a sample of values.
pub(crate) async fn assert_exact(
    influx: &Influxd,
    db: &str,
    partitions: i32,
    per_partition: usize,
    timeout: Duration,
    bridges: &mut [&mut Bridge],
) {
    let expected = partitions as u64 * per_partition as u64;
    let deadline = Instant::now() + timeout;
    loop {
        let n = count(influx, db);
        if n == expected {
            break;
        }
        assert!(n < expected, "more points than produced: {n} > {expected}");
        for b in bridges.iter_mut() {
            b.assert_running();
        }
        assert!(
            Instant::now() < deadline,
            "only {n} of {expected} points after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Anything still in flight would show up now as an extra point.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(count(influx, db), expected);
    let measurements = query(influx, db, "SHOW MEASUREMENTS");
    assert_eq!(
        rows(&measurements),
        vec![vec![serde_json::json!(MEASUREMENT)]]
    );
    let series = query(influx, db, &format!("SHOW SERIES FROM \"{MEASUREMENT}\""));
    assert_eq!(rows(&series).len(), partitions as usize * SENSORS);
    for k in 0..8usize {
        let p = (k as i32) % partitions;
        let i = rand::random_range(0..per_partition);
        let answer = query(
            influx,
            db,
            &format!(
                "SELECT v, x, note, sensor FROM \"{MEASUREMENT}\" WHERE time = {} AND \"partition\" = '{p}'",
                time_of(p, i)
            ),
        );
        let r = rows(&answer);
        assert_eq!(r.len(), 1, "point {p}/{i}: {answer}");
        assert_eq!(r[0][1].as_i64(), Some(i as i64), "{answer}");
        assert_eq!(r[0][2].as_f64(), Some((i % 1000) as f64 + 0.5), "{answer}");
        assert_eq!(r[0][3].as_str(), Some("fault test"), "{answer}");
        assert_eq!(r[0][4].as_str(), Some(format!("s{}", i % SENSORS).as_str()));
    }
}

async fn kafka(brokers: &str) -> Client {
    ClientBuilder::new(vec![brokers.to_owned()])
        .build()
        .await
        .expect("rskafka client")
}

pub(crate) async fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    kafka(brokers)
        .await
        .controller_client()
        .expect("controller")
        .create_topic(topic, partitions, 1, 5_000)
        .await
        .expect("create topic");
}

/// How the test data is produced: `per_partition` records to each of `partitions`, in
/// chunks of `chunk` per partition with `pause` after each round.
#[derive(Debug, Clone)]
pub(crate) struct Stream {
    pub(crate) brokers: String,
    pub(crate) topic: String,
    pub(crate) partitions: i32,
    pub(crate) per_partition: usize,
    pub(crate) chunk: usize,
    pub(crate) pause: Duration,
}

impl Stream {
    /// Produces everything. A failed produce (the broker restarting) is retried with a
    /// new client until it succeeds; a retry may duplicate records in Kafka, which write
    /// the same points again (same series and time), so the expected content holds.
    pub(crate) async fn run(self) {
        let mut client = kafka(&self.brokers).await;
        let mut from = 0;
        while from < self.per_partition {
            let to = (from + self.chunk).min(self.per_partition);
            for p in 0..self.partitions {
                let mut attempts = 0;
                loop {
                    let records: Vec<Record> = (from..to).map(|i| record(p, i)).collect();
                    let sent = tokio::time::timeout(Duration::from_secs(10), async {
                        let pc = client
                            .partition_client(&self.topic, p, UnknownTopicHandling::Retry)
                            .await?;
                        pc.produce(records, Compression::NoCompression).await
                    })
                    .await;
                    if let Ok(Ok(_)) = sent {
                        break;
                    }
                    attempts += 1;
                    assert!(attempts < 60, "producing failed 60 times: {sent:?}");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    if let Ok(Ok(c)) = tokio::time::timeout(
                        Duration::from_secs(5),
                        ClientBuilder::new(vec![self.brokers.clone()]).build(),
                    )
                    .await
                    {
                        client = c;
                    }
                }
            }
            from = to;
            tokio::time::sleep(self.pause).await;
        }
    }
}

fn record(partition: i32, i: usize) -> Record {
    Record {
        key: Some(format!("s{}", i % SENSORS).into_bytes()),
        value: Some(line(partition, i)),
        headers: Default::default(),
        timestamp: rskafka::chrono::DateTime::from_timestamp_millis(1_700_000_000_000 + i as i64)
            .expect("timestamp in range"),
    }
}

/// A bridge configuration: one topic, a group per test, short group timeouts so a killed
/// member is noticed quickly, `create_database`, and a rejected record stops the bridge
/// (a fault test must not hide one). `kafka_extra` and `influx_extra` add keys to
/// `[kafka]` and `[influx]`, `extra` adds sections.
pub(crate) fn config(
    brokers: &str,
    influx: &Influxd,
    topic: &str,
    db: &str,
    kafka_extra: &str,
    influx_extra: &str,
    extra: &str,
) -> String {
    format!(
        r#"
[kafka]
brokers = ["{brokers}"]
topics = ["{topic}"]
group_id = "{topic}_group"
auto_offset_reset = "earliest"
session_timeout = "6s"
heartbeat_interval = "500ms"
rebalance_timeout = "10s"
fetch_max_wait = "100ms"
commit_interval = "1s"
{kafka_extra}

[influx]
url = "{url}"
database = "{db}"
create_database = true
{influx_extra}

[dead_letter]
on_error = "stop"

{extra}
"#,
        url = influx.url(),
    )
}
