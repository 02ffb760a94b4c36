//! Helpers shared by the integration tests: where the broker is, unique names, producing
//! test data with rskafka, and a private tansu process for tests that restart the broker
//! or need special flags.

#![allow(dead_code, unreachable_pub)]

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use kinflux_kafka::{Consumer, ConsumerConfig, Message, PartitionKey, Record};
use rskafka::{
    client::{
        Client, ClientBuilder,
        partition::{Compression, UnknownTopicHandling},
    },
    record::Record as RsRecord,
};

/// The broker list from `KINFLUX_KAFKA_BROKERS`. When unset: panics under `CI=true`, otherwise
/// prints a loud SKIPPED line and returns `None` (the test then returns early).
pub fn brokers() -> Option<String> {
    match std::env::var("KINFLUX_KAFKA_BROKERS") {
        Ok(b) if !b.trim().is_empty() => Some(b),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "KINFLUX_KAFKA_BROKERS is not set but CI=true: start tansu (scripts/services start)"
                );
            }
            eprintln!("SKIPPED (no KINFLUX_KAFKA_BROKERS)");
            None
        }
    }
}

/// Like [`brokers`] but for tests that start their own tansu: they need the binary only.
/// Returns `None` (skip) under the same rules as [`brokers`].
pub fn own_broker_allowed() -> bool {
    if tansu_bin().is_some() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("no tansu binary found (KINFLUX_TANSU_BIN, PATH, ~/.cargo/bin) but CI=true");
    }
    eprintln!("SKIPPED (no tansu binary)");
    false
}

/// A name no other test run uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:016x}", fastrand::u64(..))
}

pub fn list(brokers: &str) -> Vec<String> {
    brokers.split(',').map(|s| s.trim().to_owned()).collect()
}

pub async fn client(brokers: &str) -> Client {
    ClientBuilder::new(list(brokers))
        .build()
        .await
        .expect("rskafka client")
}

pub async fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    let c = client(brokers).await;
    c.controller_client()
        .expect("controller")
        .create_topic(topic, partitions, 1, 5_000)
        .await
        .expect("create topic");
}

/// Produces `n` records `"{topic}-{partition}-{i}"` (key `k{i}`) to a partition, starting at
/// index `from`. Returns the offsets.
pub async fn produce(
    brokers: &str,
    topic: &str,
    partition: i32,
    from: usize,
    n: usize,
) -> Vec<i64> {
    let c = client(brokers).await;
    let pc = c
        .partition_client(topic, partition, UnknownTopicHandling::Retry)
        .await
        .expect("partition client");
    let records = (from..from + n)
        .map(|i| RsRecord {
            key: Some(format!("k{i}").into_bytes()),
            value: Some(format!("{topic}-{partition}-{i}").into_bytes()),
            headers: [("h".to_owned(), b"v".to_vec())].into(),
            timestamp: rskafka::chrono::DateTime::from_timestamp_millis(
                1_700_000_000_000 + i as i64,
            )
            .expect("timestamp"),
        })
        .collect();
    pc.produce(records, Compression::NoCompression)
        .await
        .expect("produce")
}

/// A consumer configuration for tests: earliest, short timeouts.
pub fn config(brokers: &str, group: &str, topics: &[&str]) -> ConsumerConfig {
    let mut c = ConsumerConfig::new(list(brokers), group, topics.iter().copied());
    c.auto_offset_reset = kinflux_kafka::AutoOffsetReset::Earliest;
    c.session_timeout = Duration::from_secs(6);
    c.heartbeat_interval = Duration::from_millis(300);
    c.rebalance_timeout = Duration::from_secs(10);
    c.fetch_max_wait = Duration::from_millis(100);
    c
}

/// Receives until `pred` holds for the records seen so far, acknowledging revocations.
/// Panics after `timeout`.
pub async fn recv_until(
    consumer: &mut Consumer,
    timeout: Duration,
    mut pred: impl FnMut(&[Record]) -> bool,
) -> Vec<Record> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + timeout;
    while !pred(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "timed out; got {} records", seen.len());
        match tokio::time::timeout(left, consumer.recv()).await {
            Ok(Ok(Message::Records(rs))) => seen.extend(rs),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("recv failed: {e}"),
            Err(_) => panic!("timed out; got {} records", seen.len()),
        }
    }
    seen
}

/// Keeps receiving (and acknowledging revocations) until the assignment satisfies `pred`
/// and stays so for `settle`.
pub async fn wait_assignment(
    consumer: &mut Consumer,
    timeout: Duration,
    pred: impl Fn(&[PartitionKey]) -> bool,
) -> Vec<PartitionKey> {
    let deadline = Instant::now() + timeout;
    loop {
        let a = consumer.assignment();
        if pred(&a) {
            return a;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "assignment never matched; last {a:?}");
        let step = left.min(Duration::from_millis(200));
        if let Ok(Err(e)) = tokio::time::timeout(step, consumer.recv()).await {
            panic!("recv failed: {e}");
        }
    }
}

/// Finds the tansu binary: `KINFLUX_TANSU_BIN`, `tansu` on PATH, or `~/.cargo/bin/tansu`.
pub fn tansu_bin() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("KINFLUX_TANSU_BIN") {
        return Some(PathBuf::from(p));
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let c = dir.join("tansu");
            if c.is_file() {
                return Some(c);
            }
        }
    }
    let home = std::env::var_os("HOME")?;
    let c = Path::new(&home).join(".cargo/bin/tansu");
    c.is_file().then_some(c)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A tansu broker owned by one test: its own port and SQLite file, killed on drop.
pub struct Tansu {
    pub port: u16,
    /// Port advertised in metadata (differs from `port` behind a TLS terminator).
    pub advertised_port: u16,
    pub dir: PathBuf,
    pub extra: Vec<String>,
    child: Option<Child>,
}

impl Tansu {
    pub fn start(extra: &[&str]) -> Self {
        let port = free_port();
        Self::start_advertising(port, port, extra)
    }

    pub fn start_advertising(port: u16, advertised_port: u16, extra: &[&str]) -> Self {
        let dir = std::env::temp_dir().join(unique("kinflux-tansu"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut t = Self {
            port,
            advertised_port,
            dir,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            child: None,
        };
        t.spawn();
        t
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let bin = tansu_bin().expect("tansu binary");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("tansu.log"))
            .expect("log file");
        let child = Command::new(bin)
            .current_dir(&self.dir)
            .arg("broker")
            .arg("--storage-engine")
            .arg("sqlite://tansu.db")
            .arg("--listener-url")
            .arg(format!("tcp://127.0.0.1:{}", self.port))
            .arg("--advertised-listener-url")
            .arg(format!("tcp://127.0.0.1:{}", self.advertised_port))
            .arg("--silent")
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start tansu");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "tansu did not start; see {:?}",
                self.dir
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops and starts again with the same SQLite file and port (and new flags).
    pub fn restart_with(&mut self, extra: &[&str]) {
        self.stop();
        self.extra = extra.iter().map(|s| (*s).to_owned()).collect();
        self.spawn();
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "kinflux_kafka=info".into()),
        )
        .with_test_writer()
        .try_init();
}
