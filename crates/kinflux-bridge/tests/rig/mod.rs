//! The fault tests' rig: a private Apache Kafka and a private influxd (the test kit's
//! restartable processes), the `kinflux` binary as a child process a test can SIGKILL,
//! the test data, and what InfluxDB must hold at the end.

// Shared by several test binaries (faults, cluster, network, chaos); each uses a part.
#![allow(dead_code, unused_imports)]

pub(crate) mod tap;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kinflux_testkit::bridge_config::BridgeConfig;
pub(crate) use kinflux_testkit::influx::rows;
pub(crate) use kinflux_testkit::kafka::create_topic;
pub(crate) use kinflux_testkit::netns::Netns;
pub(crate) use kinflux_testkit::process::{Influxd, KafkaBroker, KafkaCluster, send_signal};
pub(crate) use kinflux_testkit::unique;
use kinflux_testkit::{free_port, http, influx, kafka};
use rskafka::client::ClientBuilder;
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::record::Record;

/// Start of the test data's timestamps (ns): 2020-09-13.
pub(crate) const BASE_NS: i64 = 1_600_000_000_000_000_000;
/// The measurement every test writes.
pub(crate) const MEASUREMENT: &str = "fault";
/// Sensors per partition: series = partitions x sensors.
pub(crate) const SENSORS: usize = 20;

/// Whether the full sizes were asked for (`KINFLUX_FAULTS_FULL=1`).
pub(crate) fn full() -> bool {
    std::env::var("KINFLUX_FAULTS_FULL").is_ok_and(|v| v == "1")
}

/// A private Kafka broker and influxd for one test, or `None` after a loud SKIPPED line
/// (a failure under `CI=true`) when `KINFLUX_KAFKA_HOME` or influxd is missing.
pub(crate) fn servers() -> Option<(KafkaBroker, Influxd)> {
    let influx = Influxd::start("")?;
    let broker = KafkaBroker::start()?;
    // A bridge started on a cluster this fresh exits on COORDINATOR_NOT_AVAILABLE (see
    // kinflux-kafka's `connect_waits_for_the_coordinator_of_a_fresh_cluster`); these
    // tests are about faults later on.
    broker.wait_for_group_coordinator();
    Some((broker, influx))
}

/// The `kinflux` binary of this package, which cargo builds before the tests, or
/// `KINFLUX_BRIDGE_BIN` (a copy, so that a long run survives a rebuild meanwhile).
fn bridge_bin() -> PathBuf {
    std::env::var_os("KINFLUX_BRIDGE_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_kinflux")),
        PathBuf::from,
    )
}

fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill(); // SIGKILL
        let _ = c.wait();
    }
}

/// The `kinflux` binary as a child process with its config file, log and metrics port.
pub(crate) struct Bridge {
    dir: tempfile::TempDir,
    /// `ip:port` of its `/metrics`.
    metrics: String,
    /// The network namespace it runs in (`ip netns exec`), if any.
    netns: Option<String>,
    child: Option<Child>,
    starts: usize,
}

impl Bridge {
    /// Writes `config` (with `[metrics] listen` on a free port appended) and starts it.
    pub(crate) fn start(config: &str) -> Bridge {
        Bridge::start_in(config, None)
    }

    /// [`start`](Self::start) inside network namespace `netns` (its `/metrics` on the
    /// namespace's address), or here.
    pub(crate) fn start_in(config: &str, netns: Option<&Netns>) -> Bridge {
        let ip = netns.map_or_else(|| "127.0.0.1".to_owned(), Netns::ip);
        let metrics = format!("{ip}:{}", free_port());
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("bridge.toml"),
            format!("{config}\n[metrics]\nlisten = \"{metrics}\"\n"),
        )
        .expect("bridge config");
        let mut b = Bridge {
            dir,
            metrics,
            netns: netns.map(|n| n.name().to_owned()),
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
        let mut command = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(bridge_bin());
                c
            }
            None => Command::new(bridge_bin()),
        };
        let child = command
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

    /// SIGSTOP: the process freezes (no heartbeat, no write) until [`cont`](Self::cont).
    pub(crate) fn stop(&self) {
        send_signal(self.pid(), "STOP");
    }

    /// SIGCONT after [`stop`](Self::stop).
    pub(crate) fn cont(&self) {
        send_signal(self.pid(), "CONT");
    }

    /// Whether the process runs (was not killed, and has not exited).
    pub(crate) fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// How many times it was started.
    pub(crate) fn starts(&self) -> usize {
        self.starts
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
        let answer = http::get(&format!("http://{}/metrics", self.metrics)).ok()?;
        (answer.status == 200).then_some(Metrics(answer.body))
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("bridge.log")
    }

    /// Everything the bridge printed, over all its starts.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// What this bridge's last "joined group" log line says: the generation and whether
    /// it leads the group (the member that computes the assignment). `None` before it
    /// joined.
    pub(crate) fn last_join(&self) -> Option<(i64, bool)> {
        let log = self.log();
        let line = log.lines().rev().find(|l| l.contains("joined group"))?;
        let value = |key: &str| {
            let (_, rest) = line.split_once(&format!(" {key}="))?;
            rest.split_whitespace().next().map(str::to_owned)
        };
        let generation = value("generation")?.parse().ok()?;
        let leader = value("leader")? == "true";
        Some((generation, leader))
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

/// The sum of committed lag over the partitions of `bridges`, once every one of
/// `partitions` has a committed lag gauge on some bridge.
pub(crate) fn committed_lag(bridges: &[&Bridge], partitions: i32) -> Option<f64> {
    let mut seen = Vec::new();
    let mut lag = 0.0;
    for b in bridges {
        let m = b.metrics()?;
        for (labels, v) in m.by_label("kinflux_committed_lag_records") {
            seen.push(labels);
            lag += v;
        }
    }
    seen.sort();
    seen.dedup();
    (seen.len() == partitions as usize).then_some(lag)
}

/// Waits until every partition is committed up to its high watermark.
pub(crate) async fn assert_committed(bridges: &[&Bridge], partitions: i32, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let lag = committed_lag(bridges, partitions);
        if lag == Some(0.0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "committed lag still {lag:?} after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until `pred` holds for the partitions of (a, b), as their `/metrics` show them.
pub(crate) async fn wait_partitions(
    a: &mut Bridge,
    b: &mut Bridge,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&[i32], &[i32]) -> bool,
) -> (Vec<i32>, Vec<i32>) {
    let deadline = Instant::now() + timeout;
    loop {
        let pa = a.metrics().map(|m| m.partitions()).unwrap_or_default();
        let pb = b.metrics().map(|m| m.partitions()).unwrap_or_default();
        if pred(&pa, &pb) {
            return (pa, pb);
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {timeout:?}; partitions {pa:?} and {pb:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the bridge wrote something (it joined and reads).
pub(crate) async fn wait_written(bridge: &mut Bridge, influx: &Influxd, db: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(influx, db) == 0 {
        bridge.assert_running();
        assert!(Instant::now() < deadline, "nothing written within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// InfluxQL against `db` (`epoch=ns`): the JSON answer.
pub(crate) fn query(influx: &Influxd, db: &str, q: &str) -> serde_json::Value {
    influx::query(&influx.url(), db, q)
}

/// Points of the test measurement in `db` (0 while the database does not exist).
pub(crate) fn count(influx: &Influxd, db: &str) -> u64 {
    influx::count(&influx.url(), db, MEASUREMENT, "v")
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
    /// `per_partition` records to each of `partitions` of `topic`, 200 a partition and
    /// round with 250 ms between rounds.
    pub(crate) fn new(brokers: &str, topic: &str, partitions: i32, per_partition: usize) -> Stream {
        Stream {
            brokers: brokers.to_owned(),
            topic: topic.to_owned(),
            partitions,
            per_partition,
            chunk: 200,
            pause: Duration::from_millis(250),
        }
    }

    /// Records per partition and round.
    pub(crate) fn chunk(mut self, chunk: usize) -> Stream {
        self.chunk = chunk;
        self
    }

    /// The pause between rounds.
    pub(crate) fn pause(mut self, pause: Duration) -> Stream {
        self.pause = pause;
        self
    }

    /// Produces in the background; await the handle for the end.
    pub(crate) fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run())
    }

    /// Produces in the background until [`OpenStream::stop`], `per_partition` then being
    /// only a cap: for a test whose faults last as long as this machine makes them (a
    /// fixed-size stream outlasted three broker restarts on one machine and not on a
    /// slower one).
    pub(crate) fn spawn_until_stopped(self) -> OpenStream {
        let stop = Arc::new(AtomicBool::new(false));
        let handle = tokio::spawn(self.produce(Some(Arc::clone(&stop))));
        OpenStream { stop, handle }
    }

    /// Produces everything. A failed produce (the broker restarting) is retried with a
    /// new client until it succeeds; a retry may duplicate records in Kafka, which write
    /// the same points again (same series and time), so the expected content holds.
    pub(crate) async fn run(self) {
        let per_partition = self.per_partition;
        let produced = self.produce(None).await;
        assert_eq!(produced, per_partition);
    }

    /// Produces whole rounds until `per_partition` or `stop`: the records produced to
    /// each partition.
    async fn produce(self, stop: Option<Arc<AtomicBool>>) -> usize {
        let stopped = || stop.as_ref().is_some_and(|s| s.load(Ordering::Acquire));
        let mut client = kafka::client(&self.brokers).await;
        let mut from = 0;
        while from < self.per_partition && !stopped() {
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
        from
    }
}

/// A stream producing in the background until stopped.
pub(crate) struct OpenStream {
    stop: Arc<AtomicBool>,
    handle: tokio::task::JoinHandle<usize>,
}

impl OpenStream {
    /// Whether it ended by itself (reached its cap, or panicked).
    pub(crate) fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Ends it after the current round: the records it produced to each partition.
    pub(crate) async fn stop(self) -> usize {
        self.stop.store(true, Ordering::Release);
        self.handle.await.expect("producer")
    }
}

fn record(partition: i32, i: usize) -> Record {
    kafka::keyed(
        format!("s{}", i % SENSORS),
        line(partition, i),
        1_700_000_000_000 + i as i64,
    )
}

/// A bridge configuration: one topic, a group per test, short group timeouts so a killed
/// member is noticed quickly, `create_database`, a rejected record stops the bridge (a
/// fault test must not hide one), and two tasks, so that the faults meet partitions
/// spread over lanes. `kafka_extra` and `influx_extra` add keys to `[kafka]` and
/// `[influx]`, `extra` adds sections.
pub(crate) fn config(
    brokers: &str,
    influx: &Influxd,
    topic: &str,
    db: &str,
    kafka_extra: &str,
    influx_extra: &str,
    extra: &str,
) -> String {
    config_url(
        brokers,
        &influx.url(),
        topic,
        db,
        kafka_extra,
        influx_extra,
        extra,
    )
}

/// [`config`] writing to `influx_url` (a proxy in front of the test's influxd, say).
pub(crate) fn config_url(
    brokers: &str,
    influx_url: &str,
    topic: &str,
    db: &str,
    kafka_extra: &str,
    influx_extra: &str,
    extra: &str,
) -> String {
    base(
        brokers,
        influx_url,
        topic,
        db,
        kafka_extra,
        influx_extra,
        extra,
    )
    .tasks(2)
    .toml()
}

/// [`config`] with `tasks` left at its default (the number of cores).
pub(crate) fn config_with_default_tasks(
    brokers: &str,
    influx: &Influxd,
    topic: &str,
    db: &str,
    kafka_extra: &str,
    influx_extra: &str,
    extra: &str,
) -> String {
    base(
        brokers,
        &influx.url(),
        topic,
        db,
        kafka_extra,
        influx_extra,
        extra,
    )
    .toml()
}

fn base(
    brokers: &str,
    influx_url: &str,
    topic: &str,
    db: &str,
    kafka_extra: &str,
    influx_extra: &str,
    extra: &str,
) -> BridgeConfig {
    BridgeConfig::new(brokers, influx_url, topic, db)
        .kafka(kafka_extra)
        .influx(influx_extra)
        .dead_letter("on_error = \"stop\"")
        .section(extra)
}
