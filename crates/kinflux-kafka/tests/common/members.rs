//! Group members on other clients, run as processes: librdkafka (Python confluent-kafka,
//! `tests/python/rdkafka_member.py`) and Kafka's own Java client (`tests/java/GroupMember.java`,
//! a single-file program on `KINFLUX_KAFKA_HOME`'s classpath). Both speak one protocol:
//! `owns [partitions]` on stderr after every change of the assignment, a JSON report as the
//! last line of stdout.

use std::{
    collections::BTreeMap,
    path::Path,
    process::Stdio,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, BufReader},
    process::{Child, Command},
    task::JoinHandle,
};

/// Which client a member runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    Librdkafka,
    Java,
}

impl Client {
    /// Whether this machine can run it (the test kit's rule applies when not).
    pub fn available(self) -> bool {
        match self {
            Client::Librdkafka => kinflux_testkit::env::available(
                std::process::Command::new("python3")
                    .args(["-c", "import confluent_kafka"])
                    .status()
                    .is_ok_and(|s| s.success()),
                "python3 with confluent-kafka is missing (pip install confluent-kafka)",
            ),
            Client::Java => {
                kinflux_testkit::require("KINFLUX_KAFKA_HOME").is_some()
                    && kinflux_testkit::env::available(
                        std::process::Command::new("java")
                            .arg("-version")
                            .stderr(Stdio::null())
                            .status()
                            .is_ok_and(|s| s.success()),
                        "java (17 or later, a JDK) is not on PATH",
                    )
            }
        }
    }

    fn command(self) -> Command {
        let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
        match self {
            Client::Librdkafka => {
                let mut c = Command::new("python3");
                c.arg(tests.join("python/rdkafka_member.py"));
                c
            }
            Client::Java => {
                let home = std::env::var("KINFLUX_KAFKA_HOME").unwrap_or_default();
                let mut c = Command::new("java");
                c.args(["-Xmx256m", "-XX:TieredStopAtLevel=1", "-cp"])
                    .arg(format!("{home}/libs/*"))
                    .arg(tests.join("java/GroupMember.java"));
                c
            }
        }
    }
}

/// What a member reports when it leaves.
#[derive(Debug)]
pub struct Report {
    /// The partitions it owned last.
    pub assigned: Vec<i32>,
    /// The offsets it read, per partition.
    pub consumed: BTreeMap<i32, Vec<i64>>,
}

/// A running member.
#[derive(Debug)]
pub struct Member {
    pub client: Client,
    child: Child,
    owns: Arc<Mutex<Option<Vec<i32>>>>,
    committed: Arc<AtomicBool>,
    stdout: JoinHandle<String>,
}

impl Member {
    /// Joins `group` on `topic` with the assignor `strategy` (`range`, `roundrobin`,
    /// `cooperative-sticky`), reads until `expect` records came and commits them; then it
    /// stays in the group until [`release`](Self::release)d, and leaves.
    pub fn start(
        client: Client,
        brokers: &str,
        group: &str,
        topic: &str,
        strategy: &str,
        expect: usize,
    ) -> Member {
        let mut child = client
            .command()
            .args(["member", "--brokers", brokers, "--group", group])
            .args(["--topic", topic, "--strategy", strategy])
            .args(["--expect", &expect.to_string(), "--timeout", "90"])
            .args(["--linger", "true"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start the {client:?} member: {e}"));
        let owns: Arc<Mutex<Option<Vec<i32>>>> = Arc::default();
        let committed = Arc::new(AtomicBool::new(false));
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let (latest, done) = (Arc::clone(&owns), Arc::clone(&committed));
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                match line.strip_prefix("owns ") {
                    Some(list) => {
                        *latest.lock().expect("owns lock") = Some(parse_list(list));
                    }
                    None if line == "committed" => done.store(true, Ordering::SeqCst),
                    None => eprintln!("{client:?} member: {line}"),
                }
            }
        });
        let mut out = child.stdout.take().expect("stdout");
        let stdout = tokio::spawn(async move {
            let mut text = String::new();
            let _ = out.read_to_string(&mut text).await;
            text
        });
        Member {
            client,
            child,
            owns,
            committed,
            stdout,
        }
    }

    /// Whether it has read its records and committed them.
    pub fn has_committed(&self) -> bool {
        self.committed.load(Ordering::SeqCst)
    }

    /// Lets it leave the group (closes its stdin).
    pub fn release(&mut self) {
        drop(self.child.stdin.take());
    }

    /// The partitions it owns now, once it had an assignment.
    pub fn owns(&self) -> Option<Vec<i32>> {
        self.owns.lock().expect("owns lock").clone()
    }

    /// Releases it, waits until it has left, and returns its report.
    pub async fn finish(mut self) -> Report {
        self.release();
        let status = self.child.wait().await.expect("wait for the member");
        let out = self.stdout.await.expect("stdout task");
        assert!(
            status.success(),
            "{:?} member failed: {status}",
            self.client
        );
        let report: serde_json::Value = out
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or_else(|| panic!("{:?} member printed no report: {out}", self.client));
        let ints = |v: &serde_json::Value| -> Vec<i64> {
            v.as_array()
                .expect("a list")
                .iter()
                .map(|x| x.as_i64().expect("an integer"))
                .collect()
        };
        Report {
            assigned: ints(&report["assigned"])
                .into_iter()
                .map(|p| p as i32)
                .collect(),
            consumed: report["consumed"]
                .as_object()
                .expect("consumed")
                .iter()
                .map(|(p, offsets)| (p.parse().expect("a partition"), ints(offsets)))
                .collect(),
        }
    }
}

/// The committed offsets of `group` for partitions `0..partitions` of `topic`, as `client`
/// reads them (negative: none).
pub async fn committed(
    client: Client,
    brokers: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> BTreeMap<i32, i64> {
    let out = client
        .command()
        .args([
            "committed",
            "--brokers",
            brokers,
            "--group",
            group,
            "--topic",
            topic,
        ])
        .args(["--partitions", &partitions.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .await
        .unwrap_or_else(|e| panic!("run {client:?}: {e}"));
    assert!(out.status.success(), "{client:?} committed: {}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or("");
    let v: BTreeMap<String, i64> = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("{client:?} committed printed {text:?}: {e}"));
    v.into_iter()
        .map(|(p, o)| (p.parse().expect("a partition"), o))
        .collect()
}

/// `[0, 1, 2]` (Python's and Java's list syntax alike).
fn parse_list(text: &str) -> Vec<i32> {
    text.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .filter_map(|p| p.trim().parse().ok())
        .collect()
}
