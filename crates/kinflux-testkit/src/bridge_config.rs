//! A kinflux configuration file (the bridge's TOML) for tests: the test's servers, topic
//! and database, a consumer group of the topic's own, group timeouts short enough that a
//! killed member is noticed within seconds, and `create_database`; a test adds its keys
//! and sections.

/// The configuration file of one test's pipeline; [`toml`](Self::toml) writes it.
///
/// ```
/// let toml = kinflux_testkit::bridge_config::BridgeConfig::new(
///     "127.0.0.1:9092",
///     "http://127.0.0.1:8086",
///     "readings",
///     "readings_db",
/// )
/// .kafka("start_at = \"earliest\"")
/// .section("[batch]\nmax_points = 500")
/// .toml();
/// assert!(toml.contains("group_id = \"readings_group\""));
/// assert!(toml.contains(r#"brokers = ["127.0.0.1:9092"]"#));
/// assert!(toml.contains("topic = \"readings_dlq\""));
/// ```
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    brokers: String,
    influx_url: String,
    topic: String,
    database: String,
    group: String,
    kafka: Vec<String>,
    influx: Vec<String>,
    dead_letter: String,
    sections: Vec<String>,
    tasks: Option<usize>,
}

impl BridgeConfig {
    /// Reads `topic` from `brokers` (`host:port`, comma-separated) as group `<topic>_group` from the earliest offset,
    /// writes to `database` at `influx_url` (creating it), and dead-letters to
    /// `<topic>_dlq`.
    pub fn new(brokers: &str, influx_url: &str, topic: &str, database: &str) -> BridgeConfig {
        BridgeConfig {
            brokers: brokers.to_owned(),
            influx_url: influx_url.to_owned(),
            topic: topic.to_owned(),
            database: database.to_owned(),
            group: format!("{topic}_group"),
            kafka: Vec::new(),
            influx: Vec::new(),
            dead_letter: format!("topic = \"{topic}_dlq\""),
            sections: Vec::new(),
            tasks: None,
        }
    }

    /// Another consumer group.
    pub fn group(mut self, group: &str) -> BridgeConfig {
        group.clone_into(&mut self.group);
        self
    }

    /// Adds keys to `[kafka]` (one or more `key = value` lines).
    pub fn kafka(mut self, lines: &str) -> BridgeConfig {
        self.kafka.push(lines.to_owned());
        self
    }

    /// Adds keys to `[influx]`.
    pub fn influx(mut self, lines: &str) -> BridgeConfig {
        self.influx.push(lines.to_owned());
        self
    }

    /// Replaces the keys of `[dead_letter]` (`on_error = "stop"`, say).
    pub fn dead_letter(mut self, lines: &str) -> BridgeConfig {
        lines.clone_into(&mut self.dead_letter);
        self
    }

    /// Adds whole sections (`[batch]`, `[decode]`, `[tags]`, `[metrics]`, ...).
    pub fn section(mut self, text: &str) -> BridgeConfig {
        self.sections.push(text.to_owned());
        self
    }

    /// Sets `tasks` (how many tasks decode and batch side by side; the bridge's
    /// default is the number of cores).
    pub fn tasks(mut self, tasks: usize) -> BridgeConfig {
        self.tasks = Some(tasks);
        self
    }

    /// The configuration file.
    pub fn toml(&self) -> String {
        format!(
            r#"{tasks}
[kafka]
brokers = [{brokers}]
topics = ["{topic}"]
group_id = "{group}"
auto_offset_reset = "earliest"
session_timeout = "6s"
heartbeat_interval = "500ms"
rebalance_timeout = "10s"
fetch_max_wait = "100ms"
commit_interval = "500ms"
{kafka}

[influx]
url = "{influx_url}"
database = "{database}"
create_database = true
{influx}

[dead_letter]
{dead_letter}

{sections}
"#,
            tasks = self.tasks.map_or(String::new(), |n| format!("tasks = {n}")),
            brokers = crate::kafka::bootstrap(&self.brokers)
                .iter()
                .map(|b| format!("\"{b}\""))
                .collect::<Vec<_>>()
                .join(", "),
            topic = self.topic,
            group = self.group,
            kafka = self.kafka.join("\n"),
            influx_url = self.influx_url,
            database = self.database,
            influx = self.influx.join("\n"),
            dead_letter = self.dead_letter,
            sections = self.sections.join("\n"),
        )
    }
}
