//! Apache Kafka, one node in KRaft mode (broker and controller in one JVM), run from the
//! jars of `KINFLUX_KAFKA_HOME/libs` the way `bin/kafka-server-start.sh` runs them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;

use super::child::{ServerProcess, listening};
use crate::names::{free_port, random_u64};

/// The line the broker logs once it serves clients.
pub(super) const STARTED: &str = "Kafka Server started";
/// A JVM start, log recovery after a SIGKILL, on a loaded 2-core machine.
pub(super) const START_TIMEOUT: Duration = Duration::from_secs(120);

/// A single-node Apache Kafka of one test: PLAINTEXT on a free port of 127.0.0.1, its
/// controller on another, data and log (`kafka.log`) in its own temporary directory.
///
/// Tuned for tests: heap capped at 384 MiB, replication factors 1, no initial rebalance
/// delay (`group.initial.rebalance.delay.ms=0`), one `__consumer_offsets` partition so
/// the first group starts quickly.
#[derive(Debug)]
pub struct KafkaBroker {
    java: PathBuf,
    classpath: String,
    port: u16,
    process: ServerProcess,
}

impl KafkaBroker {
    /// Formats the storage and starts the broker; waits until it serves clients. `None`
    /// after the [`crate::env`] rule when `KINFLUX_KAFKA_HOME` is not set or `java` is
    /// missing.
    ///
    /// # Panics
    /// When the broker does not start.
    pub fn start() -> Option<KafkaBroker> {
        KafkaBroker::start_with("")
    }

    /// [`start`](Self::start) with extra `server.properties` lines (later keys win).
    ///
    /// # Panics
    /// When the broker does not start.
    pub fn start_with(extra_properties: &str) -> Option<KafkaBroker> {
        let (classpath, java) = classpath_and_java()?;
        let process = ServerProcess::new("kafka");
        let (port, controller) = (free_port(), free_port());
        let dir = process.dir().to_owned();
        std::fs::write(
            dir.join("server.properties"),
            properties(&dir, port, controller, extra_properties),
        )
        .expect("write server.properties");
        std::fs::write(dir.join("log4j2.properties"), log4j(&dir))
            .expect("write log4j2.properties");
        let mut broker = KafkaBroker {
            java,
            classpath,
            port,
            process,
        };
        broker.format();
        broker.resume();
        Some(broker)
    }

    /// `127.0.0.1:PORT`, for `KINFLUX_KAFKA_BROKERS`-style settings.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The PLAINTEXT port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The broker's directory: `server.properties`, `data/`, `kafka.log`.
    pub fn dir(&self) -> &Path {
        self.process.dir()
    }

    /// Everything the broker logged, over all its starts.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("kafka.log")).unwrap_or_default()
    }

    /// SIGKILL: no controlled shutdown; what the OS has of the data files survives.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts the (killed) broker again on the same ports and data, and waits until it
    /// serves clients.
    ///
    /// # Panics
    /// When the broker does not start.
    pub fn resume(&mut self) {
        let log = self.dir().join("kafka.log");
        let before = std::fs::read_to_string(&log).map_or(0, |l| l.len());
        let mut command = self.java_command("kafka.Kafka");
        command.arg("server.properties");
        self.process.spawn(command);
        let port = self.port;
        self.process.wait_until(START_TIMEOUT, &log, || {
            std::fs::read_to_string(&log)
                .is_ok_and(|text| text.get(before..).is_some_and(|new| new.contains(STARTED)))
                && listening(port)
        });
    }

    /// Waits until the group coordinator answers FindCoordinator without an error.
    ///
    /// A fresh cluster creates `__consumer_offsets` on the first FindCoordinator and
    /// answers COORDINATOR_NOT_AVAILABLE (a retriable error) until it is ready; [`start`]
    /// does not wait for that, so that a test can see how a client copes. Tests about
    /// something else call this first.
    ///
    /// [`start`]: Self::start
    ///
    /// # Panics
    /// When the coordinator is not up within two minutes.
    pub fn wait_for_group_coordinator(&self) {
        let deadline = std::time::Instant::now() + START_TIMEOUT;
        loop {
            let code = crate::kafka::find_coordinator(&self.brokers(), "kinflux-testkit");
            if matches!(code, Ok(0)) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no group coordinator after {START_TIMEOUT:?}: {code:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// [`kill`](Self::kill), then [`resume`](Self::resume).
    pub fn restart(&mut self) {
        self.kill();
        self.resume();
    }

    fn java_command(&self, main: &str) -> Command {
        java_command(&self.java, &self.classpath, "384m", main)
    }

    /// `kafka-storage.sh format`: a new cluster id, the KRaft metadata log in `data/`.
    fn format(&mut self) {
        let mut command = self.java_command("kafka.tools.StorageTool");
        command
            .args(["format", "--cluster-id", &cluster_id()])
            .args(["--config", "server.properties"]);
        self.process.run_to_end(command);
    }
}

/// A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (`Uuid.toString`).
pub(super) fn cluster_id() -> String {
    // Like Kafka's `Uuid.randomUuid`, never an id that starts with '-': the storage tool's
    // argument parser takes one for an option (1 start in 64 failed before).
    loop {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&random_u64().to_be_bytes());
        bytes[8..].copy_from_slice(&random_u64().to_be_bytes());
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        if !id.starts_with('-') {
            return id;
        }
    }
}

/// `java` running class `main` on `classpath` with at most `heap` of heap, logging with
/// the `log4j2.properties` of the working directory.
pub(super) fn java_command(java: &Path, classpath: &str, heap: &str, main: &str) -> Command {
    let mut command = Command::new(java);
    command
        .args([
            "-Xms64m",
            &format!("-Xmx{heap}"),
            "-XX:+ExitOnOutOfMemoryError",
        ])
        .arg("-Djava.awt.headless=true")
        .arg("-Dlog4j2.configurationFile=log4j2.properties")
        .arg("-cp")
        .arg(classpath)
        .arg(main);
    command
}

/// The Kafka classpath (`KINFLUX_KAFKA_HOME/libs/*`) and `java`; `None` after the
/// [`crate::env`] rule when either is missing.
pub(super) fn classpath_and_java() -> Option<(String, PathBuf)> {
    let home = PathBuf::from(crate::require("KINFLUX_KAFKA_HOME")?);
    if !crate::env::available(
        home.join("libs").is_dir(),
        &format!("KINFLUX_KAFKA_HOME={} has no libs/", home.display()),
    ) {
        return None;
    }
    Some((format!("{}/libs/*", home.display()), java()?))
}

/// `java` of `JAVA_HOME`, else on `PATH`.
pub(super) fn java() -> Option<PathBuf> {
    let from_home = std::env::var_os("JAVA_HOME")
        .map(|home| PathBuf::from(home).join("bin").join("java"))
        .filter(|java| java.is_file());
    let java = from_home.or_else(|| super::on_path("java"));
    if java.is_none() {
        crate::env::missing("no java (JAVA_HOME or PATH) to run Kafka");
    }
    java
}

fn properties(dir: &Path, port: u16, controller: u16, extra: &str) -> String {
    format!(
        "process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={data}
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.ms=-1
auto.create.topics.enable=true
{extra}
",
        data = dir.join("data").display()
    )
}

/// Log4j 2 in properties form (no YAML module needed): INFO to `kafka.log`, appended over
/// restarts; the client library's chatter only from WARN.
pub(super) fn log4j(dir: &Path) -> String {
    format!(
        "status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log}
appender.file.append = true
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
",
        log = dir.join("kafka.log").display()
    )
}
