//! Apache Kafka, three KRaft nodes of one test, each broker and controller in one JVM:
//! topics get three replicas and `min.insync.replicas` 2, so any one node can die. Each
//! node can be killed, stopped (controlled shutdown), paused and started again, and the
//! cluster says which node leads a partition and which coordinates a group.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use super::child::ServerProcess;
use super::kafka::{START_TIMEOUT, STARTED, classpath_and_java, cluster_id, java_command, log4j};
use crate::kafka_wire::{self, PartitionState};
use crate::names::free_port;

/// Heap of each node's JVM.
const HEAP: &str = "512m";
/// Nodes in the cluster.
const NODES: usize = 3;

/// One node: its ports and its process.
#[derive(Debug)]
struct Node {
    id: i32,
    port: u16,
    process: ServerProcess,
}

/// Three Kafka nodes of one test, PLAINTEXT on free ports of `host` (127.0.0.1, or an
/// address of a network namespace's link), the controllers on 127.0.0.1.
#[derive(Debug)]
pub struct KafkaCluster {
    java: PathBuf,
    classpath: String,
    host: String,
    nodes: Vec<Node>,
}

impl KafkaCluster {
    /// Three nodes listening on 127.0.0.1. See [`start_on`](Self::start_on).
    pub fn start() -> Option<KafkaCluster> {
        KafkaCluster::start_on("127.0.0.1")
    }

    /// Formats three nodes' storage, starts them listening on `host` (an address of this
    /// machine), and waits until each serves clients and the group coordinator answers.
    /// `None` after the [`crate::env`] rule when `KINFLUX_KAFKA_HOME` or `java` is missing.
    ///
    /// # Panics
    /// When a node does not start.
    pub fn start_on(host: &str) -> Option<KafkaCluster> {
        let (classpath, java) = classpath_and_java()?;
        let ports: Vec<(u16, u16)> = (0..NODES).map(|_| (free_port(), free_port())).collect();
        let voters = ports
            .iter()
            .enumerate()
            .map(|(i, (_, controller))| format!("{}@127.0.0.1:{controller}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let cluster = cluster_id();
        let mut formats = Vec::new();
        let mut nodes = Vec::new();
        for (i, (port, controller)) in ports.into_iter().enumerate() {
            let id = i32::try_from(i + 1).expect("three nodes");
            let process = ServerProcess::new("kafka-node");
            let dir = process.dir().to_owned();
            std::fs::write(
                dir.join("server.properties"),
                properties(id, host, port, controller, &voters, &dir),
            )
            .expect("write server.properties");
            std::fs::write(dir.join("log4j2.properties"), log4j(&dir))
                .expect("write log4j2.properties");
            // The three storage formats (a JVM each) run side by side.
            let mut format = java_command(&java, &classpath, "256m", "kafka.tools.StorageTool");
            format
                .args(["format", "--cluster-id", &cluster])
                .args(["--config", "server.properties"])
                .current_dir(&dir)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            formats.push(format.spawn().expect("run the storage tool"));
            nodes.push(Node { id, port, process });
        }
        for mut format in formats {
            let status = format.wait().expect("wait for the storage tool");
            assert!(status.success(), "kafka storage format failed: {status}");
        }
        let mut cluster = KafkaCluster {
            java,
            classpath,
            host: host.to_owned(),
            nodes,
        };
        for id in cluster.ids() {
            cluster.spawn(id);
        }
        for id in cluster.ids() {
            cluster.wait_started(id, 0);
        }
        cluster.wait_for_group_coordinator();
        Some(cluster)
    }

    /// The node ids, 1 to 3.
    pub fn ids(&self) -> Vec<i32> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// Every node's `host:port`, comma separated, for `KINFLUX_KAFKA_BROKERS`-style
    /// settings.
    pub fn brokers(&self) -> String {
        self.ids()
            .iter()
            .map(|&id| self.address(id))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Node `id`'s `host:port`.
    pub fn address(&self, id: i32) -> String {
        format!("{}:{}", self.host, self.node(id).port)
    }

    /// Node `id`'s PLAINTEXT port.
    pub fn port(&self, id: i32) -> u16 {
        self.node(id).port
    }

    /// Node `id`'s process id, while it runs.
    pub fn pid(&self, id: i32) -> Option<u32> {
        self.node(id).process.pid()
    }

    /// Whether node `id` runs (was not killed or stopped).
    pub fn is_running(&self, id: i32) -> bool {
        self.pid(id).is_some()
    }

    fn node(&self, id: i32) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    fn node_mut(&mut self, id: i32) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    /// The addresses of the nodes that run, to ask metadata of.
    fn live(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.process.pid().is_some())
            .map(|n| format!("{}:{}", self.host, n.port))
            .collect()
    }

    /// Everything node `id` logged, over all its starts.
    pub fn log(&self, id: i32) -> String {
        std::fs::read_to_string(self.node(id).process.dir().join("kafka.log")).unwrap_or_default()
    }

    /// SIGKILL node `id`: no controlled shutdown.
    pub fn kill(&mut self, id: i32) {
        self.node_mut(id).process.kill();
    }

    /// SIGTERM node `id` (a controlled shutdown: its partitions' leadership moves first)
    /// and waits until it exits (SIGKILL after two minutes).
    pub fn stop(&mut self, id: i32) {
        self.node_mut(id)
            .process
            .terminate(Duration::from_secs(120));
    }

    /// Starts node `id` again (after [`kill`](Self::kill) or [`stop`](Self::stop)) on the
    /// same ports and data, and waits until it serves clients.
    ///
    /// # Panics
    /// When it does not start.
    pub fn resume(&mut self, id: i32) {
        let log = self.node(id).process.dir().join("kafka.log");
        let before = std::fs::read_to_string(&log).map_or(0, |l| l.len());
        self.spawn(id);
        self.wait_started(id, before);
    }

    fn spawn(&mut self, id: i32) {
        let mut command: Command = java_command(&self.java, &self.classpath, HEAP, "kafka.Kafka");
        command.arg("server.properties");
        self.node_mut(id).process.spawn(command);
    }

    /// Waits until node `id`'s log, after its first `before` bytes, says it started.
    fn wait_started(&mut self, id: i32, before: usize) {
        let host = self.host.clone();
        let node = self.node_mut(id);
        let log = node.process.dir().join("kafka.log");
        let port = node.port;
        node.process.wait_until(START_TIMEOUT, &log, || {
            std::fs::read_to_string(&log)
                .is_ok_and(|text| text.get(before..).is_some_and(|new| new.contains(STARTED)))
                && std::net::TcpStream::connect((host.as_str(), port)).is_ok()
        });
    }

    /// The partitions of `topic` (partition: leader, replicas, in-sync replicas), as the
    /// first live node that answers knows them.
    ///
    /// # Panics
    /// When no live node answers.
    pub fn partitions(&self, topic: &str) -> BTreeMap<i32, PartitionState> {
        let mut last = None;
        for broker in self.live() {
            match kafka_wire::metadata(&broker, topic) {
                Ok((_, partitions)) if !partitions.is_empty() => return partitions,
                Ok(_) => last = Some(format!("{broker}: no partitions")),
                Err(e) => last = Some(format!("{broker}: {e}")),
            }
        }
        panic!("no live node has metadata of {topic}: {last:?}")
    }

    /// The node that leads the most partitions of `topic` (the lowest id among equals).
    ///
    /// # Panics
    /// When no partition has a leader.
    pub fn busiest_leader(&self, topic: &str) -> i32 {
        let mut led: BTreeMap<i32, usize> = BTreeMap::new();
        for state in self.partitions(topic).values() {
            if state.leader >= 0 {
                *led.entry(state.leader).or_default() += 1;
            }
        }
        let most = led
            .values()
            .copied()
            .max()
            .expect("a partition with a leader");
        led.into_iter()
            .find(|&(_, n)| n == most)
            .map(|(id, _)| id)
            .expect("the maximum is there")
    }

    /// The running node that coordinates consumer group `group`, once one does.
    ///
    /// # Panics
    /// When none does within two minutes.
    pub fn coordinator(&self, group: &str) -> i32 {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let found = self
                .live()
                .iter()
                .find_map(|b| match kafka_wire::coordinator(b, group) {
                    // Metadata can name a node just killed for a moment.
                    Ok((0, node)) if self.is_running(node) => Some(node),
                    _ => None,
                });
            if let Some(node) = found {
                return node;
            }
            assert!(
                Instant::now() < deadline,
                "no coordinator for group {group} after {START_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The offsets group `group` committed for `partitions` of `topic` (-1 where none), as
    /// its coordinator answers now; `None` while no coordinator answers (one moving).
    pub fn committed(
        &self,
        group: &str,
        topic: &str,
        partitions: &[i32],
    ) -> Option<BTreeMap<i32, i64>> {
        self.live().iter().find_map(|b| {
            let (error, node) = kafka_wire::coordinator(b, group).ok()?;
            if error != 0 || !self.is_running(node) {
                return None;
            }
            kafka_wire::committed(&self.address(node), group, topic, partitions).ok()
        })
    }

    /// Waits until the group coordinator answers (a fresh cluster creates
    /// `__consumer_offsets` on the first FindCoordinator).
    ///
    /// # Panics
    /// When it does not within two minutes.
    pub fn wait_for_group_coordinator(&self) {
        self.coordinator("kinflux-testkit");
    }

    /// Waits until every partition of `topic` has a leader and all its replicas in sync
    /// (after a node came back: before the next one may go in a rolling restart).
    ///
    /// # Panics
    /// When that does not happen within `timeout`.
    pub fn wait_in_sync(&self, topic: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let partitions = self.partitions(topic);
            if partitions
                .values()
                .all(|p| p.leader >= 0 && p.isr.len() == p.replicas.len())
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{topic} not fully in sync within {timeout:?}: {partitions:?}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Sets config `name` of `topic` to `value` (`min.insync.replicas`, say) through the
    /// first live node that takes it.
    ///
    /// # Panics
    /// When no live node does.
    pub fn set_topic_config(&self, topic: &str, name: &str, value: &str) {
        let mut last = None;
        for broker in self.live() {
            match kafka_wire::set_topic_config(&broker, topic, name, value) {
                Ok(0) => return,
                other => last = Some(format!("{broker}: {other:?}")),
            }
        }
        panic!("could not set {name}={value} on {topic}: {last:?}")
    }
}

fn properties(
    id: i32,
    host: &str,
    port: u16,
    controller: u16,
    voters: &str,
    dir: &std::path::Path,
) -> String {
    format!(
        "process.roles=broker,controller
node.id={id}
controller.quorum.voters={voters}
listeners=PLAINTEXT://{host}:{port},CONTROLLER://127.0.0.1:{controller}
advertised.listeners=PLAINTEXT://{host}:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={data}
num.partitions=1
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
group.initial.rebalance.delay.ms=0
log.retention.ms=-1
auto.create.topics.enable=true
# A killed follower leaves the ISR within 10 s, so writes with acks=all go on.
replica.lag.time.max.ms=10000
",
        data = dir.join("data").display()
    )
}
