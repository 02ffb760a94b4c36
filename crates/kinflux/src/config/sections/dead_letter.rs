//! `[dead_letter]`: what happens to records that cannot be written.

use serde::Deserialize;

use super::yes;

/// `dead_letter.on_error`: what happens to a record that cannot be decoded or that
/// InfluxDB refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum OnError {
    /// Write it to the dead-letter topic, with headers saying why, and go on.
    #[default]
    DeadLetter,
    /// Count it, log it, and go on.
    Drop,
    /// Stop the bridge without committing past it.
    Stop,
}

/// `[dead_letter]`: the topic for records that cannot be written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DeadLetterSection {
    /// The dead-letter topic.
    #[serde(default)]
    pub topic: Option<String>,
    /// What happens to a bad record.
    #[serde(default)]
    pub on_error: OnError,
    /// Create the topic when it does not exist.
    #[serde(default = "yes")]
    pub create_topic: bool,
    /// Partitions of a created topic.
    #[serde(default = "one")]
    pub partitions: i32,
}

fn one() -> i32 {
    1
}
