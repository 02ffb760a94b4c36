//! `[tags]`: tags added to every point.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `[tags]`: tags added to every point. A tag the data already has keeps its value.
#[derive(Debug, Clone, Default, Deserialize)]
#[non_exhaustive]
pub struct TagsConfig {
    /// Add the source topic under this tag key.
    #[serde(default)]
    pub topic_tag: Option<String>,
    /// Add the record key (as UTF-8) under this tag key.
    #[serde(default)]
    pub key_tag: Option<String>,
    /// Add these record headers (as UTF-8) as tags of the same name.
    #[serde(default)]
    pub header_tags: Vec<String>,
    /// Every other key is a static tag: `region = "eu-west"`.
    #[serde(flatten)]
    pub static_tags: BTreeMap<String, String>,
}
